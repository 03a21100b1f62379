#!/bin/sh
# The Paillier cost table of docs/he.md: raw rates on one core (key_bits 2048, 3072) and one
# aggregation round three ways in the same run (plain integer all-reduce, secure aggregation,
# [he]) at scaled sizes that fit a shared 2-core machine. Writes runs/he/cost.csv.
#   sh jobs/he/cost.sh [SECONDS]      (SECONDS of CPU time a rate; default 2)
# Larger sizes: HE_COST_CASES="P:CLIENTS:KEY_BITS:RANKS ..." (e.g. "100000:100:2048:16" on a node).
set -e
cd "$(dirname "$0")/../.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
B=${FEDHPC_HE_BENCH:-bin/fedhpc_he_bench}
S=${1:-2}
mkdir -p runs/he
out=runs/he/cost.csv
: > "$out"
for kb in 2048 3072; do OMP_NUM_THREADS=1 $B rates $kb "$S" | tee -a "$out"; done
# ranks x OpenMP threads = the 2 cores
for c in ${HE_COST_CASES:-10000:4:2048:1 10000:4:2048:2 10000:4:3072:2 100000:2:2048:2 1000:100:2048:2 1000:100:3072:2}; do
    P=${c%%:*}; r=${c#*:}; n=${r%%:*}; r=${r#*:}; kb=${r%%:*}; np=${r#*:}
    t=$((2 / np)); [ $t -ge 1 ] || t=1
    OMP_NUM_THREADS=$t mpirun --oversubscribe -np "$np" $B cost "$P" "$n" "$kb" | tee -a "$out"
done
