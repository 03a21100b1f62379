#!/bin/sh
# Multi-center FL on a natural grouping of real data (issue 18): CoIL 2000 insurance customers
# (data/ticdata.csv, docs/data.md), one client per customer subtype (--by STYPE, 39 clients), the
# true group of a client its main customer type (--group-by MOSHOOFD, 10 groups: 99.3 % of the
# rows agree with their client's group). FeSEM and IFCA with k = 10 against FedAvg ([cluster]
# method = none), logistic regression on the 523 encoded features, label CARAVAN (6 % insured),
# participation 100 % and 25 %, seeds 1-3, 30 rounds. Writes OUT/runs.csv and OUT/table.md (ARI
# and mean per-client accuracy at the last round, mean and minimum over seeds). [cluster] method =
# oracle puts every client in its true group's center: what a perfect clustering would give.
# DATA=lending_club instead: LendingClub loans (data/lending_club.csv), one client per US state
# (--by addr_state, 50 clients of 14 to 1,070 rows), the true group of a client its U.S.
# Census region (--group-map data/us_regions.csv: 4 groups), label Class (5 % bad), k = 4.
#   sh jobs/clusters/natural.sh            # TICDATA=path/to/ticdata.csv (default data/ticdata.csv)
#   DATA=lending_club OUT=runs/clusters_region sh jobs/clusters/natural.sh
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FEDHPC=${FEDHPC:-$ROOT/bin/fedhpc}
TICDATA=${TICDATA:-$ROOT/data/ticdata.csv}
DATA=${DATA:-ticdata}
OUT=${OUT:-$ROOT/runs/clusters_natural}
SEEDS=${SEEDS:-"1 2 3"}
PARTS=${PARTS:-"100 25"}
EXTRA=${EXTRA:-}        # more run overrides, e.g. cluster.init=spectral
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
mkdir -p "$OUT"
data=$OUT/$DATA.h5
case $DATA in
ticdata)
    NCLIENTS=39 K=10
    [ -f "$data" ] || "$FEDHPC" prepare "csv:$TICDATA" --label CARAVAN --positive insurance --partition natural --by STYPE \
        --group-by MOSHOOFD --min-size 1 --local-test-frac 0.2 --seed 1 --out "$data" ;;
lending_club)
    NCLIENTS=50 K=4
    [ -f "$data" ] || "$FEDHPC" prepare lending_club --data-dir "$ROOT/data" --partition natural --by addr_state \
        --group-map "$ROOT/data/us_regions.csv" --min-size 1 --local-test-frac 0.2 --seed 1 --out "$data" ;;
*) echo "natural.sh: DATA=$DATA: expected ticdata or lending_club" >&2; exit 2 ;;
esac
cat >"$OUT/base.ini" <<INI
[data]
file = $data
[model]
type = logreg
[train]
rounds = 30
batch_size = 20
lr = 0.05
eval_every = 30
[cluster]
k = $K
[output]
progress = off
INI
echo "part,method,seed,ari,nonempty,client_acc_mean,client_loss_mean" >"$OUT/runs.csv"
for part in $PARTS; do
    m=$(( (NCLIENTS * part + 99) / 100 ))
    for method in fesem ifca oracle none; do
        for seed in $SEEDS; do
            d=$OUT/${method}_p${part}_s$seed
            mpirun -np 2 "$FEDHPC" run "$OUT/base.ini" cluster.method=$method train.clients_per_round=$m train.seed=$seed \
                output.dir="$d" $EXTRA >"$d.log" 2>&1 || { echo "run $d failed (see $d.log)" >&2; exit 1; }
            tail -1 "$d/clusters.csv" | awk -F, -v p="$part" -v me="$method" -v s="$seed" \
                '{print p "," me "," s "," $2 "," $7 "," $3 "," $9}' >>"$OUT/runs.csv"
        done
    done
done
{
    echo "| participation | method | ARI mean (min) | non-empty clusters (mean) | mean per-client accuracy | mean per-client test loss |"
    echo "|---:|---|---:|---:|---:|---:|"
    awk -F, 'NR > 1 { k = $1 "," $2; n[k]++; a[k] += $4; c[k] += $6; l[k] += $7; if (!(k in mi) || $4 < mi[k]) mi[k] = $4; ne[k] += $5 }
    END { for (k in n) { split(k, f, ","); printf "| %s %% | %s | %.3f (%.3f) | %.1f | %.4f | %.4f |\n", f[1], f[2], a[k] / n[k], mi[k], ne[k] / n[k], c[k] / n[k], l[k] / n[k] } }' \
        "$OUT/runs.csv" | sort -t'|' -k2,2nr -k3,3
} >"$OUT/table.md"
cat "$OUT/table.md"
