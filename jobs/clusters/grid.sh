#!/bin/sh
# Multi-center FL under partial participation (issue 18): a grid of
#   seeds x models x participation x group transforms x k (groups, groups + 1) x methods,
# each cell against FedAvg ([cluster] method = none: one center, evaluated per client).
# Fashion-MNIST split iid into CLIENTS clients in NGROUPS groups (prepare --groups,
# --group-transform permute-labels | rotate, data seed = run seed), ROUNDS rounds.
# Writes OUT/runs.csv (one line per run), OUT/grid.csv and OUT/grid.md (mean and minimum over
# seeds) and OUT/grid.png (gnuplot). Runs already in runs.csv are skipped (the script resumes).
#   sh jobs/clusters/grid.sh                       # the reduced grid of docs/multi-center.md
#   MODELS="logreg mlp cnn" PARTS="100 50 25 10" sh jobs/clusters/grid.sh   # the full grid
#   CLIENTS=400 PARTS=5 MODELS=cnn KS=4 BATCH=20 ROUNDS=12 EXTRA=cluster.warmup=3 NP=1 \
#       OUT=jobs/results/clusters_cnn sh jobs/clusters/grid.sh            # the CNN cell of the docs
#   MODELS=cnn PARTS="100 50 25 10" TRAIN_ROWS=8000 BATCH=20 ROUNDS=12 EXTRA=cluster.warmup=3 \
#       OUT=jobs/results/clusters_cnn80 sh jobs/clusters/grid.sh          # the CNN grid of the docs
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FEDHPC=${FEDHPC:-$ROOT/bin/fedhpc}
CACHE=${CACHE:-$ROOT/data/cache/fashion-mnist}
OUT=${OUT:-$ROOT/jobs/results/clusters}
SEEDS=${SEEDS:-"1 2 3"}
MODELS=${MODELS:-"logreg mlp"}
PARTS=${PARTS:-"100 25 10"}
TRANSFORMS=${TRANSFORMS:-"permute-labels rotate"}
METHODS=${METHODS:-"fesem ifca"}
CLIENTS=${CLIENTS:-80}
NGROUPS=${NGROUPS:-4}
ROUNDS=${ROUNDS:-20}
HIDDEN=${HIDDEN:-64}
NP=${NP:-2}
KS=${KS:-"$NGROUPS $((NGROUPS + 1))"}
BATCH=${BATCH:-50}
EXTRA=${EXTRA:-}                     # more run overrides, e.g. cluster.warmup=3
TRAIN_ROWS=${TRAIN_ROWS:-}           # prepare --train-rows N: the first N training rows (CNN grid)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
mkdir -p "$OUT"
RUNS=$OUT/runs.csv
[ -s "$RUNS" ] || echo "transform,model,part,k,method,seed,ari,nonempty,assigned,client_acc_mean,client_acc_p10" >"$RUNS"

for seed in $SEEDS; do
    for tr in $TRANSFORMS; do
        data=$OUT/data_${tr}_$seed.h5
        [ -f "$data" ] || "$FEDHPC" prepare fmnist --cache "$CACHE" --clients "$CLIENTS" --partition iid --seed "$seed" \
            --groups "$NGROUPS" --group-transform "$tr" --local-test-frac 0.2 \
            ${TRAIN_ROWS:+--train-rows "$TRAIN_ROWS"} --out "$data" >/dev/null
        for model in $MODELS; do
            for part in $PARTS; do
                m=$((CLIENTS * part / 100))
                for cell in "none 1" $(for k in $KS; do for me in $METHODS; do echo "$me,$k"; done; done); do
                    me=${cell%%[ ,]*}
                    k=${cell##*[ ,]}
                    key="$tr,$model,$part,$k,$me,$seed,"
                    grep -q "^$key" "$RUNS" && continue
                    dir=$OUT/run_${tr}_${model}_${part}_${me}_${k}_$seed
                    rm -rf "$dir"
                    mpirun --oversubscribe -np "$NP" "$FEDHPC" run /dev/null data.file="$data" model.type="$model" \
                        model.hidden="$HIDDEN" train.rounds="$ROUNDS" train.clients_per_round="$m" train.batch_size="$BATCH" \
                        train.lr=0.05 train.eval_every="$ROUNDS" train.seed="$seed" cluster.method="$me" cluster.k="$k" \
                        output.progress=off output.dir="$dir" $EXTRA >"$dir.log" 2>&1 || { echo "failed: $key (see $dir.log)"; continue; }
                    row=$(tail -1 "$dir/clusters.csv")
                    echo "$key$(echo "$row" | awk -F, '{print $2","$7","$8","$3","$4}')" >>"$RUNS"
                    echo "$key$(echo "$row" | cut -d, -f2,3,7,8)"
                done
            done
        done
    done
done

# per cell: mean and minimum ARI over seeds, the fewest non-empty clusters, mean per-client
# accuracy of the method and of FedAvg (same seed, model, participation, transform)
awk -F, 'NR == 1 { next }
    $5 == "none" { fa[$1","$2","$3","$6] = $10; next }
    { c = $1","$2","$3","$4","$5; n[c]++; ari[c] += $7; if (!(c in mn) || $7 < mn[c]) mn[c] = $7
      if (!(c in ne) || $8 < ne[c]) ne[c] = $8; acc[c] += $10; seeds[c] = seeds[c] " " $6; asg[c] += $9 }
    END { print "transform,model,part,k,method,seeds,ari_mean,ari_min,nonempty_min,assigned_mean,acc_mean,fedavg_acc_mean"
      for (c in n) { split(c, f, ","); s = 0; split(substr(seeds[c], 2), sd, " ")
        for (i in sd) s += fa[f[1]","f[2]","f[3]","sd[i]]
        printf "%s,%d,%.3f,%.3f,%d,%.1f,%.3f,%.3f\n", c, n[c], ari[c] / n[c], mn[c], ne[c], asg[c] / n[c], acc[c] / n[c], s / n[c] } }' \
    "$RUNS" | { IFS= read -r h; echo "$h"; sort -t, -k1,1 -k2,2 -k3,3nr -k5,5 -k4,4n; } >"$OUT/grid.csv"

{
    echo "| transform | model | participation | k | method | seeds | ARI mean | ARI min | non-empty (min) | clients assigned | mean client acc | FedAvg | gain |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    awk -F, 'NR > 1 { printf "| %s | %s | %s%% | %s | %s | %s | %s | %s | %s / %s | %s | %s | %s | %+.3f |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $4, $10, $11, $12, $11 - $12 }' "$OUT/grid.csv"
} >"$OUT/grid.md"

# PNG: mean ARI and accuracy gain over FedAvg against participation, k = groups, one line per
# (transform, model, method)
if command -v gnuplot >/dev/null; then
    awk -F, -v g="$NGROUPS" 'NR > 1 && $4 == g { f = $1"_"$2"_"$5; print $3, $7, $11 - $12 > (ENVIRON["OUT"] "/plot_" f ".dat") }' OUT="$OUT" "$OUT/grid.csv"
    plots1="" plots2=""
    for f in "$OUT"/plot_*.dat; do
        t=$(basename "$f" .dat | sed 's/^plot_//; s/_/ /g')
        sort -n "$f" -o "$f"
        plots1="$plots1${plots1:+, }'$f' using 1:2 with linespoints title '$t'"
        plots2="$plots2${plots2:+, }'$f' using 1:3 with linespoints title '$t'"
    done
    pmin=$(for p in $PARTS; do echo "$p"; done | sort -n | head -1)
    gnuplot <<GP || echo "grid: gnuplot failed, no PNG"

set terminal pngcairo size 1100,450 noenhanced
set output '$OUT/grid.png'
set multiplot layout 1,2 title 'Multi-center FL, $CLIENTS clients in $NGROUPS groups, k = $NGROUPS, $ROUNDS rounds (mean over seeds)'
set xlabel 'participation (% of clients a round)'
set logscale x
set xrange [$pmin * 0.8:120]
set xtics (5, 10, 25, 50, 100)
set key bottom right font ',8'
set ylabel 'ARI'
set yrange [0.8:1.02]
plot $plots1
set ylabel 'mean per-client accuracy - FedAvg'
set autoscale y
plot $plots2
unset multiplot
GP
    rm -f "$OUT"/plot_*.dat
fi
echo "grid: $OUT/grid.md, $OUT/grid.csv, $OUT/grid.png"
