#!/bin/sh
# Retail study (docs/retail.md): test ROC-AUC of the supermarket high/low label (and CoIL 2000
# CARAVAN) with FedAvg, iid vs non-IID partitions, attention model on item sets vs logistic
# regression on bag-of-items (multi-hot). Prints one markdown row per setting (mean and each seed).
#   usage: jobs/retail/auc.sh [OUTDIR]   (from the repository root)
#   env:   FEDHPC_BIN (default bin/fedhpc), SEEDS (default "1 2 3"), ROUNDS (default 30),
#          NP (MPI ranks, default 2), DATASETS (default "supermarket ticdata"),
#          EXTRA (overrides for every run, e.g. "fl.algorithm=fedavgm fl.server_momentum=0.9")
set -eu
OUT=${1:-runs/retail}
BIN=${FEDHPC_BIN:-bin/fedhpc}
SEEDS=${SEEDS:-1 2 3}
ROUNDS=${ROUNDS:-30}
NP=${NP:-2}
DATASETS=${DATASETS:-supermarket ticdata}
EXTRA=${EXTRA:-}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
mkdir -p "$OUT"
auc() { awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i=="auc") k=i; next} {v=$k} END{print v}' "$1"; }
# ROC-AUC of the number of items of each test customer alone (no model): h5dump the CSR offsets
size_auc() { # FILE.h5 (item-set encoding)
  h5dump -d /test/item_offsets -y -w 0 -o "$OUT/off.txt" "$1" >/dev/null
  h5dump -d /test/y -y -w 0 -o "$OUT/y.txt" "$1" >/dev/null
  tr ',' '\n' <"$OUT/off.txt" | tr -d ' ' | grep . | awk 'NR>1{print $1-p} {p=$1}' >"$OUT/size.txt"
  tr ',' '\n' <"$OUT/y.txt" | tr -d ' ' | grep . >"$OUT/lab.txt"
  paste -d' ' "$OUT/size.txt" "$OUT/lab.txt" | sort -n -k1,1 | awk '
    { v[NR]=$1; y[NR]=$2 } END {
      n=NR; i=1; rs=0; np=0
      while (i<=n) { j=i; while (j<n && v[j+1]==v[i]) j++
        r=(i+j)/2; for (k=i;k<=j;k++) if (y[k]==1) { rs+=r; np++ }
        i=j+1 }
      nn=n-np; printf "%.4f", (rs - np*(np+1)/2) / (np*nn) }'
}
echo "| data | partition | model | test ROC-AUC mean | per seed ($SEEDS) |"
echo "|---|---|---|---|---|"
for ds in $DATASETS; do
  for part in iid noniid; do
    for model in attention logreg; do
      vals=""
      for s in $SEEDS; do
        enc=items; [ $model = logreg ] && enc=multihot
        if [ $ds = supermarket ]; then
          if [ $part = iid ]; then P="--clients 10 --partition iid"; else P="--clients 10 --partition dirichlet --alpha 0.5"; fi
        else
          if [ $part = iid ]; then P="--clients 10 --partition iid"; else P="--partition natural --by MOSHOOFD"; fi
        fi
        f="$OUT/${ds}_${part}_${enc}_s$s.h5"
        [ -s "$f" ] || "$BIN" prepare $ds $P --seed "$s" --encoding $enc --out "$f" >/dev/null
        d="$OUT/run_${ds}_${part}_${model}_s$s"
        cw=none; [ $ds = ticdata ] && cw=balanced
        cat >"$OUT/cfg_${ds}_${part}_${model}_s$s.ini" <<INI
[data]
file = $f
[model]
type = $model
class_weights = $cw
attn_dim = 16
attn_heads = 2
[train]
rounds = $ROUNDS
clients_per_round = 10
local_epochs = 1
batch_size = 16
lr = 0.05
seed = $s
eval_every = $ROUNDS
[fl]
algorithm = fedavg
[output]
dir = $d
INI
        [ -s "$d/metrics.csv" ] || mpirun --oversubscribe -np "$NP" "$BIN" run "$OUT/cfg_${ds}_${part}_${model}_s$s.ini" $EXTRA >/dev/null
        vals="$vals $(auc "$d/metrics.csv")"
      done
      mean=$(echo $vals | awk '{s=0; for(i=1;i<=NF;i++) s+=$i; printf "%.4f", s/NF}')
      pn=iid; [ $part = noniid ] && { [ $ds = supermarket ] && pn="dirichlet 0.5 (label skew)" || pn="natural by MOSHOOFD"; }
      mn="attention (d 16, 2 heads) on item sets"; [ $model = logreg ] && mn="logistic regression on multi-hot"
      echo "| $ds | $pn | $mn | $mean |$(echo $vals | awk '{for(i=1;i<=NF;i++) printf " %.4f", $i}') |"
    done
    if [ $part = iid ]; then # the test split depends on the seed only: the same for both partitions
      vals=""
      for s in $SEEDS; do vals="$vals $(size_auc "$OUT/${ds}_iid_items_s$s.h5")"; done
      mean=$(echo $vals | awk '{s=0; for(i=1;i<=NF;i++) s+=$i; printf "%.4f", s/NF}')
      echo "| $ds | (any) | number of items alone, no training | $mean |$(echo $vals | awk '{for(i=1;i<=NF;i++) printf " %.4f", $i}') |"
    fi
  done
done
