#!/bin/sh
# s/round and peak RSS of [model] lightgcn next to the same model in plain PyTorch
# (tests/bench/reference/lightgcn_torch.py) on the pooled MovieLens graph (docs/recommend.md).
#   jobs/recommend/bench_torch.sh [OUT_DIR]        env: FEDHPC, FEDHPC_BENCH (fedhpc_bench next to
#                                                  FEDHPC), ROUNDS (5), DIM (32), LAYERS (2)
# Like for like: `fedhpc_bench export-gnn` writes what fedhpc trains on (graph, initial user and
# item embeddings, every step's (user, positive, negative) triples from fedhpc's streams) and the
# PyTorch model trains on exactly that; the row params_max_abs_diff compares the final item
# embeddings (value 1: PyTorch vs fedhpc; value 2: fedhpc's final vs initial, for scale).
# One process each, one thread each (OPENBLAS_NUM_THREADS=1; torch.set_num_threads(1)). fedhpc's
# s/round: the median wall_s of rounds 1..R-1 in metrics.csv (the last round also evaluates);
# PyTorch's: the median epoch time (no evaluation). Peak RSS: /usr/bin/time's maximum resident
# set of the whole process (tests/bench/peak_rss.sh).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-/tmp/fedhpc-recommend-bench}
FEDHPC=${FEDHPC:-$ROOT/bin/fedhpc}
FEDHPC_BENCH=${FEDHPC_BENCH:-$(dirname "$FEDHPC")/fedhpc_bench}
ROUNDS=${ROUNDS:-5}
DIM=${DIM:-32}
LAYERS=${LAYERS:-2}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
mkdir -p "$OUT"
[ -f "$OUT/pooled.h5" ] || "$FEDHPC" prepare movielens --clients 1 --partition users --seed 1 --data-dir "$ROOT/data" \
    --out "$OUT/pooled.h5" >/dev/null
cat >"$OUT/b.ini" <<INI
[data]
file = $OUT/pooled.h5
[model]
type = lightgcn
hidden = $DIM
gnn_layers = $LAYERS
[train]
rounds = $ROUNDS
clients_per_round = 1
local_epochs = 1
batch_size = 1024
lr = 0.02
weight_decay = 0.0001
seed = 1
eval_every = $ROUNDS
[output]
dir = $OUT/fedhpc
INI
sh "$ROOT/tests/bench/peak_rss.sh" "$OUT/rss_fedhpc" "$FEDHPC" run "$OUT/b.ini" >"$OUT/fedhpc.log" 2>&1
fs=$(awk -F, -v R="$ROUNDS" 'NR > 1 && $1 < R {print $2}' "$OUT/fedhpc/metrics.csv" | sort -g |
     awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')
fr=$(awk '/rss_kb/ {printf "%.1f", $2 / 1024}' "$OUT/rss_fedhpc.0")
fn=$(tail -1 "$OUT/fedhpc/recommend.csv" | cut -d, -f6)
"$FEDHPC_BENCH" export-gnn "$OUT/b.ini" "$OUT/export" >/dev/null
sh "$ROOT/tests/bench/peak_rss.sh" "$OUT/rss_torch" /usr/bin/python3 "$ROOT/tests/bench/reference/lightgcn_torch.py" \
    "$OUT/export" "$OUT/torch_items.f32" >"$OUT/torch.csv" 2>"$OUT/torch.log"
ts=$(cut -d, -f3 "$OUT/torch.csv")
tn=$(cut -d, -f4 "$OUT/torch.csv")
tr=$(awk '/rss_kb/ {printf "%.1f", $2 / 1024}' "$OUT/rss_torch.0")
h5dump -d /params -b LE -o "$OUT/fedhpc_items.f32" "$OUT/fedhpc/model.h5" >/dev/null
pd=$(/usr/bin/python3 -c 'import sys, numpy as np
f, t, i = (np.fromfile(p, "<f4") for p in sys.argv[1:4])
print("%.3g,%.3g" % (np.abs(f - t).max() if len(f) == len(t) else float("nan"), np.abs(f - i).max()))' \
    "$OUT/fedhpc_items.f32" "$OUT/torch_items.f32" "$OUT/export/init_items.f32")
echo "what,fedhpc,pytorch"
echo "s_per_round,$fs,$ts"
echo "peak_rss_mb,$fr,$tr"
echo "ndcg10_after_$ROUNDS,$fn,$tn"
echo "params_max_abs_diff,$pd"
