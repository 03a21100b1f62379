#!/bin/sh
# Mask generation vs raw ChaCha20, side by side in the same run: every round of a secagg run
# writes mask_gbps and chacha_gbps (rank 0) to metrics.csv — the masks of each of its clients
# (X25519 key agreements included) followed by raw crypto_stream_chacha20 over 1/16 of those
# keystream bytes, both in CPU seconds of the masking thread (src/privacy/sa_round.c).
# Prints every round's pair and the median ratio.
#
#   sh jobs/privacy/maskrate.sh DATA.h5 HIDDEN NEIGHBORS RUNS ROUNDS [extra overrides...]
#   e.g. sh jobs/privacy/maskrate.sh runs/privacy/fm1000.h5 128 16 2 3    (100k parameters, k = 16)
# FEDHPC (default bin/fedhpc), NP (default 2) and OUT (default /tmp/maskrate) may be set.
set -u
[ $# -ge 5 ] || { sed -n '2,11p' "$0"; exit 2; }
data=$1 hidden=$2 k=$3 runs=$4 rounds=$5
shift 5
FEDHPC=${FEDHPC:-bin/fedhpc}
NP=${NP:-2}
OUT=${OUT:-/tmp/maskrate}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
mkdir -p "$OUT"
cat >"$OUT/maskrate.ini" <<INI
[data]
file = $data
[model]
type = mlp
hidden = $hidden
[train]
rounds = $rounds
clients_per_round = 100
local_epochs = 1
batch_size = 10
lr = 0.05
eval_every = 1000
[secagg]
enabled = on
dedicated_aggregator = off
neighbors = $k
[output]
progress = off
INI
: >"$OUT/ratios"
i=0
while [ $i -lt "$runs" ]; do
    i=$((i + 1))
    d=$OUT/run$i
    mpirun -np "$NP" "$FEDHPC" run "$OUT/maskrate.ini" output.dir="$d" "$@" >"$d.log" 2>&1 ||
        { echo "run $i failed:"; tail -5 "$d.log"; exit 1; }
    awk -F, -v run=$i 'NR==1{for(j=1;j<=NF;j++){if($j=="mask_gbps")m=j; if($j=="chacha_gbps")c=j}; next}
        {printf "run %d round %d: mask %.3f GB/s, raw ChaCha20 %.3f GB/s, mask/raw %.1f%%\n", run, $1, $m, $c, 100*$m/$c}' \
        "$d/metrics.csv"
    awk -F, 'NR==1{for(j=1;j<=NF;j++){if($j=="mask_gbps")m=j; if($j=="chacha_gbps")c=j}; next} {print 100*$m/$c}' \
        "$d/metrics.csv" >>"$OUT/ratios"
done
sort -n "$OUT/ratios" | awk '{v[NR]=$1} END{m = NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2;
    printf "median mask/raw over %d side-by-side measurements: %.1f%% (min %.1f%%, max %.1f%%)\n", NR, m, v[1], v[NR]}'
