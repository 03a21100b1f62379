#!/bin/sh
# Federated vs centralized LightGCN on MovieLens (issue 15; table in docs/recommend.md).
#   jobs/recommend/study.sh [OUT_DIR]
# Prepares the pooled graph (--clients 1: the centralized baseline) and 2, 5, 10 enterprises
# (--partition users, and --partition genre), trains each with the same settings (one local
# epoch a round, every client every round, so every run makes the same passes over the data),
# and prints the last round of each run's recommend.csv (the model and the popularity baseline).
# Environment: FEDHPC (binary; copy it, e.g. /tmp/gnn_bin/fedhpc, so rebuilds do not disturb a
# study), NP (ranks, default 1), ROUNDS (default 20), DIM (32), LAYERS (2), LR (0.01), SEED (1),
# PARTS ("users genre"), EXTRA (more key=value overrides for every run, e.g.
# "model.gnn_weighting=items" or "model.gnn_layers=0" for the ablations of docs/recommend.md).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-/tmp/fedhpc-recommend}
FEDHPC=${FEDHPC:-$ROOT/bin/fedhpc}
NP=${NP:-1}
ROUNDS=${ROUNDS:-20}
DIM=${DIM:-32}
LAYERS=${LAYERS:-2}
LR=${LR:-0.01}
SEED=${SEED:-1}
PARTS=${PARTS-"users genre"}
EXTRA=${EXTRA:-}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
mkdir -p "$OUT"
cat >"$OUT/base.ini" <<INI
[model]
type = lightgcn
hidden = $DIM
gnn_layers = $LAYERS
[train]
rounds = $ROUNDS
clients_per_round = 1000
local_epochs = 1
batch_size = 1024
lr = $LR
weight_decay = 0.0001
seed = $SEED
eval_every = 5
INI
run() { # NAME PARTITION CLIENTS
    f="$OUT/$1.h5"
    [ -f "$f" ] || "$FEDHPC" prepare movielens --clients "$3" --partition "$2" --seed "$SEED" --data-dir "$ROOT/data" \
        --out "$f" >/dev/null
    np=$NP
    [ "$np" -gt "$3" ] && np=$3
    mpirun --oversubscribe -np "$np" "$FEDHPC" run "$OUT/base.ini" data.file="$f" output.dir="$OUT/$1" $EXTRA >"$OUT/$1.log" 2>&1
    s=$(grep -E "s/round" "$OUT/$1.log" | sed 's/.*), //')
    printf '%-12s %s  (%s)\n' "$1" "$(tail -1 "$OUT/$1/recommend.csv")" "$s"
}
echo "name         $(head -1 "$OUT/central/recommend.csv" 2>/dev/null || echo "round,users,P@10,R@10,F1@10,NDCG@10,(global popularity),(own popularity)")"
run central users 1
for p in $PARTS; do
    for k in 2 5 10; do run "$p$k" "$p" "$k"; done
done
