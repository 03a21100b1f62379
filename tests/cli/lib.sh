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

# same_model A.h5 B.h5: bit-identical parameters (h5diff compares values exactly; a missing
# file or dataset is h5diff exit 2, not "same")
same_model() { h5diff -q "$1" "$2" /params /params; }

# differs A.h5 B.h5 [h5diff options]: the parameters differ. Only h5diff's "differ" (exit 1)
# counts: never write `same_model A B && bad || ok`, which reads a failing h5diff (exit 2: a
# missing file or dataset; 127: no h5diff) as "different". Other exits are reported and fail.
differs() {
    _a=$1 _b=$2
    shift 2
    h5diff -q "$@" "$_a" "$_b" /params /params >"$T/h5diff.err" 2>&1
    _rc=$?
    [ $_rc = 1 ] && return 0
    [ $_rc = 0 ] || echo "       | h5diff failed (exit $_rc): $(head -1 "$T/h5diff.err")"
    return 1
}

# same_csv COLUMNS A B: both CSV files exist with a header and at least one row, and agree on
# the columns COLUMNS (a `cut -f` list). Two missing or empty files are not "the same".
same_csv() {
    [ -s "$2" ] && [ -s "$3" ] && [ "$(wc -l <"$2")" -ge 2 ] && [ "$(wc -l <"$3")" -ge 2 ] &&
        [ "$(cut -d, -f"$1" "$2")" = "$(cut -d, -f"$1" "$3")" ]
}

# nums VALUE...: every value is a finite number (not empty, not nan): guard awk comparisons,
# where an empty string compares as a string ("0.7" > "" is true)
nums() {
    for _v in "$@"; do echo "$_v" | grep -q -E '^-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$' || return 1; done
}

# csv_last FILE COLUMN: value of a named column in the last row of a CSV
csv_col_last() {
    awk -F, -v c="$2" 'NR==1{for(i=1;i<=NF;i++) if($i==c) k=i; next} {v=$k} END{print v}' "$1"
}

# runini INI NP OUT [k=v ...]: `fedhpc run INI` on NP ranks into $T/OUT (log $T/OUT.log); a failed
# run is a failed check with the log's tail
runini() { ini=$1; np=$2; out=$3; shift 3; $MPIRUN -np "$np" "$FEDHPC" run "$ini" output.dir="$T/$out" "$@" >"$T/$out.log" 2>&1 ||
    { bad "run $out (exit $?)"; tail -5 "$T/$out.log"; }; }
# run_np NP ARGS...: `fedhpc run ARGS` on NP ranks (log $T/log)
run_np() { np=$1; shift; $MPIRUN -np "$np" "$FEDHPC" run "$@" >"$T/log" 2>&1 || { bad "run -np $np $*"; tail -5 "$T/log"; }; }

finish() {
    echo "$1: $PASS passed, $FAIL failed"
    [ "$FAIL" = 0 ]
}
