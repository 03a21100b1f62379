#!/bin/sh
# The measured tables of docs/vertical.md: vertical LR vs centralized LR (loss equality, time per
# step by key size), split NN vs centralized, federated transfer learning vs B alone / centralized.
#   sh jobs/vertical/tables.sh [OUTDIR]      (from the repository root; default runs/vertical)
# Prints one line per table row; every run's metrics.csv stays in OUTDIR. The 2048-bit LR rows
# take several minutes (Paillier encryption of every training residual, every step).
set -eu
OUT=${1:-runs/vertical}
B=${FEDHPC_BIN:-$PWD/bin/fedhpc}
D=$PWD/data
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
MPIRUN="mpirun --oversubscribe"
mkdir -p "$OUT"
cd "$OUT"
$B prepare wa_churn --data-dir "$D" --vertical 2 --party-columns "$D/wa_churn.vertical" --seed 1 --out wa2.h5
$B prepare credit_data --data-dir "$D" --vertical 2 --party-columns "$D/credit_data.vertical" --seed 1 --out cr2.h5
$B prepare wa_churn --data-dir "$D" --vertical 3 --seed 1 --out wa3.h5
maxdiff() { paste -d, "$1" "$2" | awk -F, 'NR > 1 { d = $2 - $5; if (d < 0) d = -d; if (d > m) m = d } END { printf "%.3g", m }'; }
echo "== vertical LR = centralized LR (20 steps, 512-bit keys)"
for s in wa2:2 cr2:2 wa3:3; do
    d=${s%%:*} k=${s##*:}
    $MPIRUN -np $k $B vertical train $d.h5 --parties $k --out lr_$d --steps 20 --key-bits 512
    $B vertical central $d.h5 --parties $k --out lrc_$d --steps 20
    echo "$d: max |loss difference| $(maxdiff lrc_$d/metrics.csv lr_$d/metrics.csv); last: $(tail -n 1 lr_$d/metrics.csv)"
done
echo "== time per LR step by key size (wa_churn, 3 steps)"
for kb in 1024 2048; do $MPIRUN -np 2 $B vertical train wa2.h5 --parties 2 --out lr_wa2_$kb --steps 3 --key-bits $kb; done
echo "== split NN vs centralized (300 steps)"
for s in wa2:2 cr2:2 wa3:3; do
    d=${s%%:*} k=${s##*:}
    SN="--model splitnn --steps 300 --lr 0.3 --hidden 16"
    $MPIRUN -np $k $B vertical train $d.h5 --parties $k --out sn_$d $SN
    $B vertical central $d.h5 --parties $k --out snc_$d $SN
    [ $k = 2 ] && $B vertical central $d.h5 --parties $k --out snj_$d $SN --joined-mlp
    [ $k = 2 ] && $B vertical central $d.h5 --parties $k --out lrc300_$d --steps 300 --lr 0.5
    for r in sn snc snj lrc300; do [ -f ${r}_$d/metrics.csv ] && echo "$d $r: $(tail -n 1 ${r}_$d/metrics.csv)"; done
done
echo "== federated transfer learning (--own-frac 0.3, 300 steps)"
for ds in wa_churn credit_data; do for ov in 0.5 0.1; do
    o=${ds}_$ov
    $B prepare $ds --data-dir "$D" --vertical 2 --party-columns "$D/$ds.vertical" --seed 1 --overlap $ov --own-frac 0.3 --out $o.h5 >/dev/null
    $MPIRUN -np 2 $B vertical train $o.h5 --parties 2 --out ftl_$o --model ftl --steps 300 --lr 0.3
    $B vertical central $o.h5 --parties 2 --out ftl_$o --model ftl --steps 300 --lr 0.3
    echo "$ds overlap $ov: $(tail -n 1 ftl_$o/ftl.csv) $(tail -n 2 ftl_$o/ftl_baselines.csv | tr '\n' ' ')"
done; done
