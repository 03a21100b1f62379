#!/bin/sh
# Same deadline, drop vs partial (issue 7): Fashion-MNIST Dirichlet 0.3, 100 clients, speeds
# log-normal sigma 1, 80 rounds, deadlines 50 and 100 virtual seconds, SEEDS (default 10 seeds;
# the seed sets speeds, client sampling, initial model and shuffles; the partition is fixed).
# Per run: accuracy and fast-minus-slow quartile gap as means over the last 10 rounds, the final
# accuracy, updates applied from the slowest quartile, clients never heard from; the table shows
# mean +- sd over seeds and on how many seeds the method's last-10 accuracy beats drop's.
# Usage (from the repository root): sh jobs/async/partial_vs_drop.sh   [FEDHPC= OUT= SEEDS= NICE=]
cd "$(dirname "$0")/../.." || exit 1
. jobs/async/common.sh
CFG=jobs/async/fmnist_dir03.ini
[ -f data/fmnist_dir03_c100.h5 ] || $FEDHPC prepare fmnist --clients 100 --partition dirichlet --alpha 0.3 \
    --seed 1 --out data/fmnist_dir03_c100.h5 || exit 1
METHODS="drop partial partial_data partial_none"
for s in $SEEDS; do for d in 50 100; do for m in $METHODS; do
    case $m in
    drop) o="async.mode=drop" ;;
    partial) o="async.mode=partial async.partial_weights=work" ;;
    partial_data) o="async.mode=partial async.partial_weights=data" ;;
    partial_none) o="async.mode=partial async.partial_weights=none" ;;
    esac
    run "pd/${m}_d${d}_s$s" $CFG $o async.deadline=$d train.seed=$s || exit 1
done; done; done
# one line a run: acc10 gap10 final slow_updates never
stats() {
    f=$OUT/pd/$1/async.csv
    a=$(col "$f" accuracy); g=$(col "$f" gap_fast_minus_slow); nv=$(col "$f" clients_never)
    su=$(awk -F, '$3=="slow"{s+=$6} END{print s+0}' "$OUT/pd/$1/participation.csv")
    awk -F, -v a="$a" -v g="$g" -v nv="$nv" -v su="$su" 'NR>1 && $a!="nan"{A[n]=$a; G[n]=$g; N=$nv; n++}
        END{for(i=n-10;i<n;i++){x+=A[i]; y+=G[i]} printf "%.6f %.6f %.6f %d %d\n", x/10, y/10, A[n-1], su, N}' "$f"
}
echo "| deadline | method | accuracy (mean of last 10 rounds) | minus drop (paired) | seeds beating drop | final accuracy | fast-slow gap (last 10) | seeds with a smaller gap | slow-quartile updates | clients never heard |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for d in 50 100; do for m in $METHODS; do
    : >"$OUT/pd/.t"
    for s in $SEEDS; do echo "$(stats ${m}_d${d}_s$s) $(stats drop_d${d}_s$s | cut -d' ' -f1,2)" >>"$OUT/pd/.t"; done
    ms() { cut -d' ' -f"$1" "$OUT/pd/.t" | mean_sd | awk '{printf "%.4f ± %.4f", $1, $2}'; }
    diff=$(awk '{print $1 - $6}' "$OUT/pd/.t" | mean_sd | awk '{printf "%+.4f ± %.4f", $1, $2}')
    wins=$(awk '$1>$6{w++} END{print w+0 "/" NR}' "$OUT/pd/.t")
    gwins=$(awk '$2<$7{w++} END{print w+0 "/" NR}' "$OUT/pd/.t")
    [ $m = drop ] && { wins="–"; gwins="–"; diff="–"; }
    echo "| $d | $m | $(ms 1) | $diff | $wins | $(ms 3) | $(ms 2) | $gwins |" \
        "$(cut -d' ' -f4 "$OUT/pd/.t" | mean_sd | awk '{printf "%.0f", $1}') | $(cut -d' ' -f5 "$OUT/pd/.t" | mean_sd | awk '{printf "%.1f", $1}') |"
done; done
rm -f "$OUT/pd/.t"
