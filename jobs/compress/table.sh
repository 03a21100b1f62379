#!/bin/sh
# Communication compression on the default experiment (jobs/configs/fmnist_fedavg.ini: FedAvg,
# Fashion-MNIST, 100 clients Dirichlet(0.5), 10 a round, MLP 784-200-200-10, E=1, B=10, lr 0.05):
# accuracy after ROUNDS rounds and total bytes up for every [compress] setting of the grid.
#
#   sh jobs/compress/table.sh [OUT]        (ROUNDS=50 NP=2 EVAL=5 by default; OUT=runs/compress)
#   ONLY='none|topk1_ef' EXTRA='train.seed=2' sh jobs/compress/table.sh runs/compress_seed2
#                                          (a part of the grid; more overrides for every run)
#
# Writes OUT/table.csv, OUT/table.md and OUT/accuracy_vs_bytes.png (test accuracy against
# cumulative bytes up, log scale, one line per setting). Needs bin/fedhpc and
# data/fmnist_dir05_c100.h5 (make data) and gnuplot.
set -eu
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
OUT=${1:-runs/compress}
ROUNDS=${ROUNDS:-50}
NP=${NP:-2}
EVAL=${EVAL:-5}
FEDHPC=${FEDHPC:-bin/fedhpc}
CFG=${CFG:-jobs/configs/fmnist_fedavg.ini}
mkdir -p "$OUT"

# name | label | overrides
GRID='none|none|compress.method=none
qsgd8|QSGD 8 bits|compress.method=qsgd compress.bits=8
qsgd4|QSGD 4 bits|compress.method=qsgd compress.bits=4
qsgd2|QSGD 2 bits|compress.method=qsgd compress.bits=2
topk10|top-k 10%|compress.method=topk compress.fraction=0.1
topk10_ef|top-k 10% + EF|compress.method=topk compress.fraction=0.1 compress.error_feedback=on
topk1|top-k 1%|compress.method=topk compress.fraction=0.01
topk1_ef|top-k 1% + EF|compress.method=topk compress.fraction=0.01 compress.error_feedback=on
randk10_ef|rand-k 10% + EF|compress.method=randk compress.fraction=0.1 compress.error_feedback=on
signsgd_ef|signSGD (mean) + EF|compress.method=signsgd compress.error_feedback=on
signsgd_vote|signSGD majority vote|compress.method=signsgd compress.vote=majority fl.server_lr=0.001'
[ -z "${ONLY:-}" ] || GRID=$(echo "$GRID" | grep -E "^($ONLY)\|")

echo "$GRID" | while IFS='|' read -r name label over; do
    d=$OUT/$name
    [ -s "$d/metrics.csv" ] && [ "$(tail -1 "$d/metrics.csv" | cut -d, -f1)" = "$ROUNDS" ] && continue
    echo "run $name: $over"
    # shellcheck disable=SC2086
    mpirun -np "$NP" "$FEDHPC" run "$CFG" train.rounds="$ROUNDS" train.eval_every="$EVAL" output.dir="$d" \
        output.progress=off $over ${EXTRA:-} >"$OUT/$name.log" 2>&1 </dev/null
done

# table: the final accuracy, bytes up summed over rounds, the reduction against none
echo "method,setting,accuracy,bytes_up_total,reduction_vs_none,wall_s" >"$OUT/table.csv"
none_bytes=$(awk -F, 'NR==1{for(i=1;i<=NF;i++) h[$i]=i; next} {s+=$h["bytes_up"]} END{printf "%.0f", s}' "$OUT/none/metrics.csv")
echo "$GRID" | while IFS='|' read -r name label over; do
    awk -F, -v name="$name" -v label="$label" -v nb="$none_bytes" '
        NR==1{for(i=1;i<=NF;i++) h[$i]=i; next}
        {s+=$h["bytes_up"]; w+=$h["wall_s"]; if ($h["accuracy"] != "nan") a=$h["accuracy"]}
        END{printf "%s,%s,%.4f,%.0f,%.1f,%.1f\n", name, label, a, s, nb/s, w}' "$OUT/$name/metrics.csv" >>"$OUT/table.csv"
done
{
    echo "| setting | test accuracy after $ROUNDS rounds | bytes up (total) | fewer bytes than none |"
    echo "|---|---:|---:|---:|"
    awk -F, 'NR>1{printf "| %s | %.4f | %.3g | %.1f x |\n", $2, $3, $4, $5}' "$OUT/table.csv"
} >"$OUT/table.md"
cat "$OUT/table.md"

# accuracy against cumulative bytes up (evaluated rounds only)
plot=""
COLORS="#000000 #e41a1c #ff7f00 #fdbf6f #377eb8 #1f78b4 #4daf4a #006d2c #984ea3 #a65628 #f781bf #999999"
i=0
echo "$GRID" | { while IFS='|' read -r name label over; do
    i=$((i + 1))
    col=$(echo $COLORS | cut -d' ' -f$i)
    awk -F, 'NR==1{for(i=1;i<=NF;i++) h[$i]=i; next}
             {s+=$h["bytes_up"]; if ($h["accuracy"] != "nan") printf "%.0f %s\n", s, $h["accuracy"]}' \
        "$OUT/$name/metrics.csv" >"$OUT/$name.dat"
    plot="$plot${plot:+, }'$OUT/$name.dat' using 1:2 with linespoints lw 2 pt $i lc rgb '$col' title '$label'"
done
gnuplot <<GP
set terminal pngcairo size 1000,650
set output '$OUT/accuracy_vs_bytes.png'
set logscale x
set format x '10^{%L}'
set yrange [${YMIN:-0.6}:*]
set xlabel 'cumulative bytes up (all clients)'
set ylabel 'test accuracy'
set key bottom right
set grid
set title 'Fashion-MNIST, FedAvg, $ROUNDS rounds: accuracy against bytes sent by clients'
plot $plot
GP
}
echo "wrote $OUT/table.csv $OUT/table.md $OUT/accuracy_vs_bytes.png"
