# Fuzzing regression inputs (docs/fuzzing.md): every seed (tests/fuzz/corpus/NAME) and every input
# a fuzzer once crashed or hung on (tests/corpus/NAME) replayed through its harness built with the
# normal compiler ($FEDHPC_REPLAY_DIR/fuzz_replay_NAME; `make test` builds them, `make asan` under
# ASan + UBSan), and the regression files fed to the real commands: CSVs to `fedhpc prepare`,
# HDF5 files to `fedhpc inspect`, checkpoints to `fedhpc run` as the file to resume from,
# configurations to `fedhpc run`. Clean exit 0 or 2, never a crash.
. "$(dirname "$0")/lib.sh"
echo "fuzz corpus regression tests"
R=${FEDHPC_REPLAY_DIR:-$FEDHPC_ROOT/build}
for h in csv config data_io ckpt secagg compress; do
    set -- "tests/fuzz/corpus/$h"
    [ -d "tests/corpus/$h" ] && set -- "$@" "tests/corpus/$h"
    if [ ! -x "$R/fuzz_replay_$h" ]; then
        bad "$R/fuzz_replay_$h is not built (make test builds it)"
        continue
    fi
    n=$(find "$@" -type f | wc -l)
    check "$h: $n inputs replayed through the harness" "$R/fuzz_replay_$h" "$@"
done

# clean exit: 0 or 2 with one message, no crash and no MPI abort trace
clean_exit() {
    d=$1; shift
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    if { [ "$rc" = 0 ] || [ "$rc" = 2 ]; } && ! grep -q -E "MPI_ABORT|MPI_Abort|backtrace|Segmentation|Sanitizer|runtime error" "$T/err"; then
        ok "$d (exit $rc)"
    else
        bad "$d (exit $rc)"
        sed 's/^/       | /' "$T/err" | tail -15
    fi
}
for f in tests/corpus/csv/*; do
    [ -f "$f" ] || continue
    tail -c +4 "$f" > "$T/in.csv" # the harness's 3 option bytes
    label=$(head -1 "$T/in.csv" | cut -d, -f1 | tr -d '\r')
    clean_exit "prepare $(basename "$f")" "$FEDHPC" prepare "csv:$T/in.csv" --label "${label:-x}" --clients 1 \
        --partition iid --seed 1 --out "$T/csv.h5"
    rm -f "$T/csv.h5"
done
for f in tests/corpus/data_io/* tests/corpus/ckpt/*; do
    [ -f "$f" ] || continue
    clean_exit "inspect $f" "$FEDHPC" inspect "$f"
done
# checkpoints as `fedhpc run --resume` reads them (a seed data file of 6 clients, a tiny run)
printf '[data]\nfile = %s\n[model]\ntype = logreg\n[train]\nrounds = 1\nclients_per_round = 2\n[output]\nprogress = off\n' \
    "$FEDHPC_ROOT/tests/fuzz/corpus/data_io/natural.h5" > "$T/resume.ini"
for f in tests/corpus/ckpt/*; do
    [ -f "$f" ] || continue
    clean_exit "resume from $f" "$FEDHPC" run "$T/resume.ini" output.dir="$T/resume" checkpoint.resume="$f"
    rm -rf "$T/resume"
done
for f in tests/corpus/config/*; do
    [ -f "$f" ] || continue
    perl -0777 -ne 'print((split /\0/, $_, 2)[0])' "$f" > "$T/in.ini" # the INI part (overrides: replayed above)
    clean_exit "run $(basename "$f")" "$FEDHPC" run "$T/in.ini" data.file="$T/none.h5" output.dir="$T/run"
done
finish corpus
