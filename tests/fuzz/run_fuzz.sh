#!/bin/sh
# Run libFuzzer harnesses for a fixed time each (`make fuzz`; docs/fuzzing.md):
#   sh tests/fuzz/run_fuzz.sh SECONDS NAME...
# Each build-fuzz/fuzz_NAME runs under nice -n 19 on build-fuzz/corpus/NAME (grown run after run),
# its seeds tests/fuzz/corpus/NAME and its regression inputs tests/corpus/NAME. Limits: 20 s an
# input, 2 GiB RSS. A crash or leak saves the input as build-fuzz/artifacts/NAME-crash-* (-leak-).
# The HDF5 harnesses (data_io, ckpt) run in fork mode and go on after a crash: libhdf5 itself has
# memory errors on damaged files, so every crash is replayed and classified by
# tests/fuzz/triage.sh; only crashes in fedhpc's code fail the run, libhdf5's are counted.
# One summary line a harness; full logs in build-fuzz/logs/NAME.log; FUZZ_JOBS harnesses at a
# time (default 2). Exits non-zero if any harness failed.
secs=${1:?usage: run_fuzz.sh SECONDS NAME...}
shift
cd "${FEDHPC_ROOT:-$(dirname "$0")/../..}" || exit 1
B=build-fuzz
mkdir -p "$B/logs" "$B/artifacts"
run_one() {
    h=$1
    mkdir -p "$B/corpus/$h"
    dirs="$B/corpus/$h tests/fuzz/corpus/$h"
    [ -d "tests/corpus/$h" ] && dirs="$dirs tests/corpus/$h"
    dict=""
    [ -f "tests/fuzz/$h.dict" ] && dict="-dict=tests/fuzz/$h.dict"
    log="$B/logs/$h.log"
    mode=""
    case "$h" in data_io | ckpt) mode="-fork=1 -ignore_crashes=1" ;; esac
    touch "$B/artifacts/.start-$h"
    # shellcheck disable=SC2086
    # FUZZ_SEED (default 1) fixes libFuzzer's mutation sequence, so a CI smoke run explores the
    # same inputs every time; FUZZ_SEED=0 draws a new seed (the long campaigns of docs/fuzzing.md)
    nice -n 19 "$B/fuzz_$h" -seed="${FUZZ_SEED:-1}" -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -max_len=16384 \
        -print_final_stats=1 -artifact_prefix="$B/artifacts/$h-" $mode $dict $dirs >"$log" 2>&1
    rc=$?
    hdf5=0
    nr=0
    bad=0
    for a in "$B/artifacts/$h"-*; do # triage what this run found
        [ -f "$a" ] && [ "$a" -nt "$B/artifacts/.start-$h" ] || continue
        c=$(sh tests/fuzz/triage.sh "$B/fuzz_$h" "$a")
        case "$c" in
            libhdf5*) hdf5=$((hdf5 + 1)) ;;
            none*) nr=$((nr + 1)) ;;
            *) bad=1; echo "    $a: $c" ;;
        esac
    done
    # fork mode exits non-zero after ignored crashes: it passed if it ran to the end
    [ -n "$mode" ] && grep -q "^INFO: exiting:" "$log" && rc=0
    [ "$bad" = 1 ] && rc=1
    if [ -n "$mode" ]; then
        last=$(grep -E '^#[0-9]+: cov' "$log" | tail -1)
        execs=$(printf '%s' "$last" | sed -n 's/^#\([0-9]*\):.*/\1/p')
        cov=$(printf '%s' "$last" | sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\) corp: \([0-9]*\).*/cov \1, features \2, corpus \3/p')
    else
        execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -n 's/.*cov: \([0-9]*\) ft: \([0-9]*\) corp: \([^ ]*\).*/cov \1, features \2, corpus \3/p')
    fi
    note=""
    [ "$hdf5" != 0 ] && note=", $hdf5 crashes inside libhdf5 (not fedhpc; docs/fuzzing.md)"
    [ "$nr" != 0 ] && note="$note, $nr crashes that do not reproduce alone"
    if [ "$rc" = 0 ]; then
        echo "fuzz $h: ok, ${secs}s, ${execs:-?} executions, ${cov:-?}$note"
    else
        echo "fuzz $h: FAILED (exit $rc) after ${execs:-?} executions; see $log"
        grep -E "ERROR:|SUMMARY:|Test unit written|fuzz: " "$log" | head -8 | sed 's/^/    /'
    fi
}
# Harnesses run FUZZ_JOBS (2) at a time, each on one core; summaries print in the given order.
jobs=${FUZZ_JOBS:-2}
n=0
for h in "$@"; do
    rm -f "$B/logs/$h.summary"
    run_one "$h" >"$B/logs/$h.summary" 2>&1 &
    n=$((n + 1))
    [ "$n" -ge "$jobs" ] && { wait; n=0; }
done
wait
fail=0
for h in "$@"; do
    cat "$B/logs/$h.summary"
    grep -q "^fuzz $h: ok" "$B/logs/$h.summary" || fail=1
done
exit $fail
