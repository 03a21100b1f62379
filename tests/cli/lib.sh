# Shared helpers of the shell tests (sourced). Each test script counts its checks and ends with
# `finish NAME`, printing "NAME: N passed, N failed" and exiting non-zero on any failure.
set -u
: "${FEDHPC_ROOT:=$(cd "$(dirname "$0")/../.." && pwd)}"
cd "$FEDHPC_ROOT" || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
FEDHPC="${FEDHPC_BIN:-$FEDHPC_ROOT/bin/fedhpc}"
MPIRUN="mpirun --oversubscribe"
PASS=0
FAIL=0
T=$(mktemp -d "${TMPDIR:-/tmp}/fedhpc-cli-XXXXXX")
trap 'rm -rf "$T"' EXIT

ok() { PASS=$((PASS + 1)); echo "  ok   $*"; }
bad() { FAIL=$((FAIL + 1)); echo "  FAIL $*"; }

# check DESCRIPTION COMMAND...: the command must succeed
check() {
    d=$1; shift
    if "$@" >"$T/out" 2>&1; then ok "$d"; else bad "$d (exit $?)"; sed 's/^/       | /' "$T/out" | tail -20; fi
}

# expect_input_error DESCRIPTION SUBSTRING COMMAND...: exit status 2 and the message on stderr
# exactly once (one report, not one per rank), with no MPI abort trace.
expect_input_error() {
    d=$1; want=$2; shift 2
    "$@" >"$T/out" 2>"$T/err"
    rc=$?
    n=$(grep -c -F -- "$want" "$T/err")
    if [ "$rc" = 2 ] && [ "$n" = 1 ] && ! grep -q -E "MPI_ABORT|MPI_Abort|backtrace|Segmentation" "$T/err"; then
        ok "$d"
    else
        bad "$d (exit $rc, message found $n times; wanted '$want')"
        sed 's/^/       | /' "$T/err" | head -20
    fi
}

# params FILE.h5: print the model parameters as text (for exact or tolerant comparisons)
params() { h5dump -d /params -y -w 0 -m %.9g "$1" | tr ',' '\n' | grep -E '^ *-?[0-9.]' | tr -d ' '; }

# same_model A.h5 B.h5: bit-identical parameters (h5diff compares values exactly)
same_model() { h5diff -q "$1" "$2" /params /params; }

# csv_last FILE COLUMN: value of a named column in the last row of a CSV
csv_col_last() {
    awk -F, -v c="$2" 'NR==1{for(i=1;i<=NF;i++) if($i==c) k=i; next} {v=$k} END{print v}' "$1"
}

finish() {
    echo "$1: $PASS passed, $FAIL failed"
    [ "$FAIL" = 0 ]
}
