#!/bin/sh
# compare_ref.sh REF NEW [CASES_FILE ...]: run every case with two fedhpc binaries (e.g. a build of
# main and of a branch) and compare the final models' /params exactly (h5diff, no tolerance).
# Prints one line per case and "compare_ref: N passed, N failed"; exits non-zero on a failure.
# Not a test_*.sh on purpose: tests/run_all.sh does not run it (it needs a reference binary).
#
# A cases file (default tests/cli/compare_ref.cases) has one case a line:
#     NAME  CONFIG.ini  [section.key=value ...]
# ('#' starts a comment; output.dir is set by this script). Environment:
#     NP=2              ranks of every run
#     REF_CACHE=DIR     keep REF's models in DIR/NAME and reuse them while the REF binary,
#                       config file, overrides and NP are unchanged (a refactor's loop re-runs NEW only)
#     FEDHPC_KERNELS    passed through (blas: the portable paths the AVX-512 kernels replace)
# Example: sh tests/cli/compare_ref.sh /work/ref/fedhpc-base bin/fedhpc
#          REF_CACHE=/tmp/refc sh tests/cli/compare_ref.sh /work/ref/fedhpc-base bin/fedhpc my.cases
. "$(dirname "$0")/lib.sh"
if [ $# -lt 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then
    echo "usage: $0 REF_BINARY NEW_BINARY [CASES_FILE ...]" >&2
    exit 2
fi
REF=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
NEW=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
shift 2
[ $# -eq 0 ] && set -- tests/cli/compare_ref.cases tests/cli/compare_ref_more.cases
NP=${NP:-2}

# run BINARY OUTDIR CONFIG [OVERRIDES...]: one training run, its log in OUTDIR/log
run_one() {
    bin=$1 out=$2 cfg=$3; shift 3
    mkdir -p "$out"
    nice $MPIRUN -np "$NP" "$bin" run "$cfg" "$@" output.dir="$out" </dev/null >"$out/log" 2>&1
}

# the data sets of compare_ref_more.cases (prepared once, like `make data`)
CACHE=data/cache/fashion-mnist
[ -f data/ref_perm.h5 ] || "$NEW" prepare fmnist --cache $CACHE --clients 40 --partition iid --seed 1 --groups 4 \
    --group-transform permute-labels --local-test-frac 0.2 --out data/ref_perm.h5 >/dev/null || exit 1
[ -f data/ref_lc.h5 ] || "$NEW" prepare lending_club --clients 20 --partition iid --seed 1 --out data/ref_lc.h5 >/dev/null ||
    exit 1

for f in "$@"; do
    while read -r name cfg overrides; do
        case "$name" in ''|'#'*) continue ;; esac
        # shellcheck disable=SC2086 # overrides are word-split on purpose
        set -- $overrides
        t0=$(date +%s)
        key="$(sha1sum <"$REF" | cut -c1-16) $(sha1sum <"$cfg" | cut -c1-16) NP=$NP K=${FEDHPC_KERNELS:-} $overrides"
        if [ -n "${REF_CACHE:-}" ]; then ref_out=$REF_CACHE/$name; else ref_out=$T/ref/$name; fi
        if [ -f "$ref_out/model.h5" ] && [ "$(cat "$ref_out/key" 2>/dev/null)" = "$key" ]; then
            :
        else
            rm -rf "$ref_out"
            if ! run_one "$REF" "$ref_out" "$cfg" "$@"; then
                bad "$name: the REF run failed"; tail -5 "$ref_out/log" | sed 's/^/       | /'; continue
            fi
            echo "$key" >"$ref_out/key"
        fi
        new_out=$T/new/$name
        if ! run_one "$NEW" "$new_out" "$cfg" "$@"; then
            bad "$name: the NEW run failed"; tail -5 "$new_out/log" | sed 's/^/       | /'; continue
        fi
        if same_model "$ref_out/model.h5" "$new_out/model.h5" >"$T/diff" 2>&1; then
            ok "$name ($(( $(date +%s) - t0 ))s)"
        else
            bad "$name: models differ"; head -5 "$T/diff" | sed 's/^/       | /'
        fi
    done <"$f"
done
finish compare_ref
