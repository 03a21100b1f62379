# Shared by the jobs/async scripts (sourced). FEDHPC: the binary (default bin/fedhpc); OUT: where
# runs go (default runs/async); SEEDS: train.seed values (default 1..10); NICE: e.g. "nice -n 5".
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
FEDHPC=${FEDHPC:-bin/fedhpc}
OUT=${OUT:-runs/async}
SEEDS=${SEEDS:-"1 2 3 4 5 6 7 8 9 10"}
mkdir -p "$OUT"
# run DIR overrides...: one run unless DIR already holds a finished one
run() {
    _run_d=$1; shift
    [ -f "$OUT/$_run_d/model.h5" ] && return 0
    mkdir -p "$(dirname "$OUT/$_run_d")"
    $NICE "$FEDHPC" run "$@" output.dir="$OUT/$_run_d" >"$OUT/$_run_d.log" 2>&1 ||
        { echo "FAILED: $_run_d (see $OUT/$_run_d.log)" >&2; return 1; }
}
# col FILE NAME: index of column NAME in the CSV header of FILE
col() { head -1 "$1" | tr ',' '\n' | grep -nx "$2" | cut -d: -f1; }
# mean_sd: mean and sample sd of the numbers on stdin, as "mean sd n"
mean_sd() { awk '{s+=$1; q+=$1*$1; n++} END{m=s/n; v=n>1?(q-n*m*m)/(n-1):0; if(v<0)v=0; printf "%.4f %.4f %d\n", m, sqrt(v), n}'; }
