#!/bin/sh
# FedAsync and FedBuff vs synchronous wait_all on the issue-7 workload (jobs/async/fmnist_dir03.ini):
# virtual time until the test accuracy first reaches 75% and 80%, per seed, and the ratio to
# wait_all. Also writes OUT/tta/accuracy_vs_virtual_time.png for the first seed.
# Usage (from the repository root): sh jobs/async/time_to_accuracy.sh   [FEDHPC= OUT= SEEDS= NICE=]
cd "$(dirname "$0")/../.." || exit 1
SEEDS=${SEEDS:-"1 2 3"}
. jobs/async/common.sh
CFG=jobs/async/fmnist_dir03.ini
[ -f data/fmnist_dir03_c100.h5 ] || $FEDHPC prepare fmnist --clients 100 --partition dirichlet --alpha 0.3 \
    --seed 1 --out data/fmnist_dir03_c100.h5 || exit 1
for s in $SEEDS; do
    run "tta/wait_all_s$s" $CFG async.mode=wait_all train.rounds=40 train.seed=$s || exit 1
    run "tta/fedasync_s$s" $CFG async.mode=fedasync train.rounds=600 train.eval_every=5 train.seed=$s || exit 1
    run "tta/fedbuff_s$s" $CFG async.mode=fedbuff train.rounds=120 train.seed=$s || exit 1
done
reach() { awk -F, -v a="$2" 'NR>1 && $4!="nan" && $4+0>=a {print $2; f=1; exit} END{if(!f) print "never"}' "$OUT/tta/$1/async.csv"; }
echo "| seed | wait_all to 75% | to 80% | FedAsync to 75% | to 80% | FedBuff to 75% | to 80% | FedAsync / wait_all (75%) | FedBuff / wait_all (75%) |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for s in $SEEDS; do
    w=$(reach wait_all_s$s 0.75); a=$(reach fedasync_s$s 0.75); b=$(reach fedbuff_s$s 0.75)
    r() { awk -v x="$1" -v y="$2" 'BEGIN{if(x=="never"||y=="never") print "–"; else printf "%.2f", x/y}'; }
    f0() { case $1 in never) printf never ;; *) printf "%.0f" "$1" ;; esac; }
    echo "| $s | $(f0 $w) | $(f0 $(reach wait_all_s$s 0.80)) | $(f0 $a) | $(f0 $(reach fedasync_s$s 0.80)) | $(f0 $b) |" \
        "$(f0 $(reach fedbuff_s$s 0.80)) | $(r "$a" "$w") | $(r "$b" "$w") |"
done
s1=$(echo $SEEDS | cut -d' ' -f1)
$FEDHPC plot --x virtual_time "$OUT/tta/wait_all_s$s1" "$OUT/tta/fedasync_s$s1" "$OUT/tta/fedbuff_s$s1" \
    --out "$OUT/tta/accuracy_vs_virtual_time.png" >/dev/null
