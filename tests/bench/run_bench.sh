#!/bin/sh
# The benchmark suite of `make bench` (issue 5). Every figure is a ratio of two things measured
# side by side in this run, each the median of REPS repetitions (or of the rounds of a run).
#
#   sh tests/bench/run_bench.sh [--smoke]
#
# env: FEDHPC_ROOT (repo), FEDHPC_BIN (fedhpc), FEDHPC_BENCH (fedhpc_bench), OUT (output dir,
# default runs/bench), REPS (default 5), MODELS (default "mlp cnn attention": the models of items 1
# and 5; attention = the item-set model on the supermarket baskets, item 5 only). --smoke: 1-2
# rounds, tiny sizes (CI: checks that every benchmark still runs and writes its CSV row; no
# timing is asserted).
# Output: $OUT/results-DATE.csv (name,params,value1,value2,ratio) and $OUT/results-DATE.md.
set -u
ROOT=${FEDHPC_ROOT:-$(pwd)}
FEDHPC=${FEDHPC_BIN:-$ROOT/bin/fedhpc}
BENCH=${FEDHPC_BENCH:-$(dirname "$FEDHPC")/fedhpc_bench}
OUT=${OUT:-$ROOT/runs/bench}
REPS=${REPS:-5}
MODELS=${MODELS:-mlp cnn attention}
SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
MPIRUN="mpirun --oversubscribe"
CFG=$ROOT/jobs/configs/fmnist_fedavg.ini
H5=$ROOT/data/fmnist_dir05_c100.h5
LC=$ROOT/data/lending_club_natural.h5
mkdir -p "$OUT"
STAMP=$(date -u +%Y%m%d-%H%M%S)
CSV=$OUT/results-$STAMP.csv
MD=$OUT/results-$STAMP.md
WORK=$OUT/work-$STAMP
mkdir -p "$WORK"
echo "name,params,value1,value2,ratio" > "$CSV"
log() { echo "bench: $*" >&2; }
# Both stacks on the same OpenBLAS kernels: fedhpc picks them itself when OpenBLAS does not know
# the CPU (src/model/blas.c); PyTorch links the same OpenBLAS, so it gets the same choice.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
    OPENBLAS_CORETYPE=$("$BENCH" blas 2>/dev/null | tail -n 1)
    export OPENBLAS_CORETYPE
fi
log "OpenBLAS kernels: ${OPENBLAS_CORETYPE:-default}"
row() { grep -E "^[a-z_-]+," | tee -a "$CSV"; }
# summed peak RSS (MB) of the files PREFIX.*
rss_sum() { cat "$1".* | awk '/rss_kb/ {s += $2} END {printf "%.1f", s / 1024}'; }
PEAK="sh $ROOT/tests/bench/peak_rss.sh"
# median seconds a round of the first N-1 rounds (the last one evaluates) of RUN/metrics.csv
round_median() {
    awk -F, 'NR > 1 {print $2}' "$1/metrics.csv" | head -n $(($2 - 1)) | sort -g |
        awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'
}

if [ "$SMOKE" = 1 ]; then
    R=2; RC=2; AGG_P="100000"; AGG_NP="2"; SCALE="1000"; CK_P=100000; REPS=1; TORCH_R=2; CNN_R=2; ATTN_R=2
    ROB_P="100000"; ROB_NP="2"
    CNN_SET="train.clients_per_round=2"
else
    R=6; RC=6; AGG_P="100000 1000000 10000000"; AGG_NP="2 8"; SCALE="10000 100000 1000000"
    CK_P=10000000; TORCH_R=6; CNN_R=6; CNN_SET=""; ATTN_R=6
    ROB_P="100000 1000000"; ROB_NP="1 2 4"
fi
[ -f "$H5" ] || { log "missing $H5 (make data)"; exit 1; }
if [ ! -f "$LC" ]; then
    LC=$WORK/lending_club_natural.h5
    "$FEDHPC" prepare lending_club --partition natural --by addr_state --seed 1 --out "$LC" >/dev/null || exit 1
fi
if [ "$SMOKE" = 1 ]; then # a tiny Fashion-MNIST: 20 clients of 20 re-sampled rows, 200 test rows
    "$BENCH" gen-clients "$H5" 20 20 1 "$WORK/fmnist_tiny.h5" 200 >/dev/null || exit 1
    H5=$WORK/fmnist_tiny.h5
fi

# 1. compute floor, and 2 ranks vs 1 (MLP and CNN); rounds 1..R-1 timed, R includes evaluation
for np in 1 2; do
    log "1. round time vs sgemm floor, mlp, $np rank(s)"
    $MPIRUN -np $np "$BENCH" round "$CFG" data.file="$H5" train.rounds=$R | row
done
for np in 1 2; do
    case " $MODELS " in *" cnn "*) ;; *) break ;; esac
    log "1. round time vs sgemm floor, cnn, $np rank(s)"
    $MPIRUN -np $np "$BENCH" round "$CFG" data.file="$H5" model.type=cnn train.rounds=$CNN_R $CNN_SET | row
done
# 2. local training GFLOP/s vs bare sgemm, B = 10 and 64
for b in 10 64; do
    log "2. local epoch GFLOP/s, B=$b"
    "$BENCH" local "$CFG" $b data.file="$H5" | row
done
# 3. aggregation GB/s vs triad+memcpy of the same bytes
for np in $AGG_NP; do
    for p in $AGG_P; do
        log "3. aggregation, $p parameters, $np ranks"
        $MPIRUN -np $np "$BENCH" agg $p 100 $REPS | row
    done
done
# 4. client scale: logreg on lending_club rows re-sampled, 100 clients a round, 2 ranks
for n in $SCALE; do
    log "4. client scale, $n clients"
    f=$WORK/lc_$n.h5
    "$BENCH" gen-clients "$LC" $n 4 1 "$f" >/dev/null || exit 1
    $MPIRUN -np 2 $PEAK "$WORK/rss_$n" "$FEDHPC" run "$ROOT/jobs/configs/lending_club_fedavg.ini" data.file="$f" \
        train.clients_per_round=100 train.rounds=$RC train.eval_every=1000 output.progress=off \
        output.dir="$WORK/scale_$n" >/dev/null 2>"$WORK/scale_$n.err" || { log "scale run failed"; cat "$WORK/scale_$n.err" >&2; exit 1; }
    rss=$(rss_sum "$WORK/rss_$n")
    # seconds a round: median over the rounds without evaluation (all but the last)
    spr=$(round_median "$WORK/scale_$n" $RC)
    echo "scale,clients=$n;ranks=2;per_round=100,$spr,$rss," | row
    rm -f "$f"
done
# 5. the PyTorch + mpi4py reference, same data, partition, clients, initial weights
# the attention model's data: the supermarket baskets of data/ as item sets, 10 clients (iid);
# --smoke: the first 600 baskets, 4 clients
attn_data() {
    [ -n "${SM:-}" ] && return 0
    SM=$WORK/supermarket_iid.h5
    if [ "$SMOKE" = 1 ]; then
        mkdir -p "$WORK/smdata" && head -n 600 "$ROOT/data/supermarket_baskets.csv" > "$WORK/smdata/supermarket_baskets.csv" &&
            cp "$ROOT/data/supermarket_items.txt" "$WORK/smdata/" || return 1
        "$FEDHPC" prepare supermarket --data-dir "$WORK/smdata" --clients 4 --partition iid --seed 1 --out "$SM" >/dev/null
    else
        "$FEDHPC" prepare supermarket --data-dir "$ROOT/data" --clients 10 --partition iid --seed 1 --out "$SM" >/dev/null
    fi
}
# the last value of column NAME of a metrics.csv
csv_last() { awk -F, -v c="$2" 'NR == 1 {for (i = 1; i <= NF; i++) if ($i == c) k = i; next} {v = $k} END {print v}' "$1"; }
if /usr/bin/python3 -c "import torch, mpi4py" 2>/dev/null; then
    for model in $MODELS; do
        r=$TORCH_R; set_extra=""; mcfg=$CFG; mh5=$H5
        if [ $model = cnn ]; then r=$CNN_R; set_extra="model.type=cnn $CNN_SET"; fi
        if [ $model = attention ]; then # the item-set model on the supermarket baskets (docs/retail.md)
            attn_data || exit 1
            r=$ATTN_R; mcfg=$ROOT/jobs/configs/supermarket_attention.ini; mh5=$SM
        fi
        log "5. fedhpc vs PyTorch reference, $model, 2 ranks, $r rounds"
        "$BENCH" export "$mcfg" "$WORK/exp_$model" data.file="$mh5" train.rounds=$r $set_extra || exit 1
        # fedhpc as users run it (`fedhpc run`, evaluation after the last round only): seconds a
        # round = median of rounds 1..r-1 from metrics.csv, peak RSS of the real program
        $MPIRUN -np 2 $PEAK "$WORK/frss_$model" "$FEDHPC" run "$mcfg" data.file="$mh5" train.rounds=$r \
            train.eval_every=$r output.progress=off output.dir="$WORK/frun_$model" $set_extra >/dev/null || exit 1
        FEDAVG_TORCH_DUMP="$WORK/tparams_$model.f32" $MPIRUN -np 2 $PEAK "$WORK/trss_$model" /usr/bin/python3 \
            "$ROOT/tests/bench/reference/fedavg_torch.py" "$WORK/exp_$model" > "$WORK/t_$model.csv" || exit 1
        fs=$(round_median "$WORK/frun_$model" $r)
        fa=$(csv_last "$WORK/frun_$model/metrics.csv" accuracy)
        ts=$(awk -F, '/^torch,/ {print $3}' "$WORK/t_$model.csv")
        ta=$(awk -F, '/^torch,/ {print $4}' "$WORK/t_$model.csv")
        frss=$(rss_sum "$WORK/frss_$model")
        trss=$(rss_sum "$WORK/trss_$model")
        echo "torch_time,model=$model;ranks=2;rounds=$r,$fs,$ts,$(awk "BEGIN {printf \"%.3f\", $ts / $fs}")" | row
        echo "torch_rss_mb,model=$model;ranks=2,$frss,$trss,$(awk "BEGIN {printf \"%.3f\", $trss / $frss}")" | row
        echo "torch_accuracy,model=$model;rounds=$r,$fa,$ta,$(awk "BEGIN {printf \"%.4f\", $fa - $ta}")" | row
        if [ $model = attention ]; then # ROC-AUC, and the largest parameter difference of the two models
            fauc=$(csv_last "$WORK/frun_$model/metrics.csv" auc)
            tauc=$(awk -F, '/^torch,/ {print $6}' "$WORK/t_$model.csv")
            echo "torch_auc,model=$model;rounds=$r,$fauc,$tauc,$(awk "BEGIN {printf \"%.4f\", $fauc - $tauc}")" | row
            if h5dump -d /params -b LE -o "$WORK/fparams_$model.bin" "$WORK/frun_$model/model.h5" >/dev/null 2>&1; then
                /usr/bin/python3 -c 'import sys, numpy as np
f, t, i = (np.fromfile(p, "<f4") for p in sys.argv[1:4])
print("torch_params,model=attention;rounds=%s,%.3g,%.3g,%.3g" % (sys.argv[4], np.abs(f - t).max(), np.abs(f - i).max(),
      np.abs(f - t).max() / np.abs(f - i).max()))' "$WORK/fparams_$model.bin" "$WORK/tparams_$model.f32" \
                    "$WORK/exp_$model/init_params.f32" $r | row
            fi
        fi
    done
else
    log "5. SKIPPED: /usr/bin/python3 cannot import torch and mpi4py (apt-get install python3-torch python3-mpi4py)"
    echo "torch_time,skipped=python3-torch missing,,," >> "$CSV"
fi
# 5b. [model] lightgcn (docs/recommend.md) vs the same model in PyTorch, pooled MovieLens, 1 process,
# the same initial embeddings and BPR minibatches (fedhpc_bench export-gnn)
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
    gr=5; [ "$SMOKE" = 1 ] && gr=2
    log "5b. lightgcn vs PyTorch (tests/bench/reference/lightgcn_torch.py), pooled MovieLens, 1 process, $gr epochs"
    FEDHPC="$FEDHPC" FEDHPC_BENCH="$BENCH" ROUNDS=$gr sh "$ROOT/jobs/recommend/bench_torch.sh" "$WORK/gnn" >"$WORK/gnn.csv" || exit 1
    awk -F, -v r=$gr '$1 == "s_per_round" { printf "torch_time,model=lightgcn;ranks=1;rounds=%d,%s,%s,%.3f\n", r, $2, $3, $3 / $2 }
        $1 == "peak_rss_mb" { printf "torch_rss_mb,model=lightgcn;ranks=1,%s,%s,%.3f\n", $2, $3, $3 / $2 }
        $1 ~ /^ndcg10/ { printf "torch_ndcg,model=lightgcn;rounds=%d,%s,%s,%.4f\n", r, $2, $3, $2 - $3 }
        $1 == "params_max_abs_diff" { printf "torch_params,model=lightgcn;rounds=%d,%s,%s,%.3g\n", r, $2, $3, $2 / $3 }' \
        "$WORK/gnn.csv" | row
fi
# 6. checkpoint write/read vs plain sequential write/read
log "6. checkpoint I/O, $CK_P parameters"
"$BENCH" ckpt "$WORK/ckpt" $CK_P $REPS | row

# 7. robust aggregation ([fl] aggregator): each rule's aggregation vs the plain FedAvg aggregation,
# 10 clients a round, side by side in one process (docs/robust.md)
for np in $ROB_NP; do
    for p in $ROB_P; do
        log "7. robust aggregation, $p parameters, $np ranks"
        $MPIRUN -np $np "$BENCH" robust $p 10 $REPS | row
    done
done

# the Markdown table
{
    echo "| benchmark | parameters | value 1 | value 2 | ratio |"
    echo "|---|---|---:|---:|---:|"
    tail -n +2 "$CSV" | awk -F, '{printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5}'
} > "$MD"
cp "$CSV" "$OUT/results-latest.csv"
cp "$MD" "$OUT/results-latest.md"
rm -rf "$WORK"
log "wrote $CSV and $MD"
