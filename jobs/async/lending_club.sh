#!/bin/sh
# lending_club by state (50 clients, jobs/configs/lending_club_fedavg.ini: logistic regression,
# balanced class weights, E = 1, B = 16, lr 0.05), speeds log-normal sigma 1: synchronous FedAvg
# (wait_all, 20 rounds of all 50 clients), FedBuff and FedAsync applying the same 1000 client
# updates (20 passes over the data), and the centralized baseline at the same 20 passes (epochs),
# with the config's lr 0.05 and with lr 0.01. Final-model test metrics, mean +- sd over SEEDS.
# Usage (from the repository root): sh jobs/async/lending_club.sh   [FEDHPC= OUT= SEEDS= NICE=]
cd "$(dirname "$0")/../.." || exit 1
. jobs/async/common.sh
C=jobs/configs/lending_club_fedavg.ini
S="system.speed_sigma=1 output.progress=off"
METHODS="central central_lr0.01 wait_all fedbuff fedasync"
for s in $SEEDS; do for m in $METHODS; do
    case $m in
    central) o="fl.algorithm=centralized" ;;
    central_lr0.01) o="fl.algorithm=centralized train.lr=0.01" ;;
    wait_all) o="async.mode=wait_all" ;;
    fedbuff) o="async.mode=fedbuff async.concurrency=20 async.buffer=10 train.rounds=100 train.eval_every=5" ;;
    fedasync) o="async.mode=fedasync async.concurrency=20 train.rounds=1000 train.eval_every=50" ;;
    esac
    run "lc/${m}_s$s" $C $S $o train.seed=$s || exit 1
done; done
# final f1 auc accuracy [virtual time] of a run
final() {
    f=$OUT/lc/$1/metrics.csv
    awk -F, -v a="$(col "$f" f1)" -v b="$(col "$f" auc)" -v c="$(col "$f" accuracy)" 'NR>1{x=$a; y=$b; z=$c} END{printf "%s %s %s", x, y, z}' "$f"
    if [ -f "$OUT/lc/$1/async.csv" ]; then echo " $(tail -1 "$OUT/lc/$1/async.csv" | cut -d, -f2)"; else echo " nan"; fi
}
echo "| method | macro-F1 | ROC-AUC | accuracy | virtual time | F1 - wait_all | F1 - central (lr 0.05) | F1 - central (lr 0.01) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for m in $METHODS; do
    : >"$OUT/lc/.t"
    for s in $SEEDS; do
        echo "$(final ${m}_s$s) $(final wait_all_s$s | cut -d' ' -f1) $(final central_s$s | cut -d' ' -f1) $(final central_lr0.01_s$s | cut -d' ' -f1)" >>"$OUT/lc/.t"
    done
    ms() { cut -d' ' -f"$1" "$OUT/lc/.t" | mean_sd | awk '{printf "%.4f ± %.4f", $1, $2}'; }
    dif() { awk -v k="$1" '{s+=$1-$k} END{printf "%+.4f", s/NR}' "$OUT/lc/.t"; }
    vt=$(cut -d' ' -f4 "$OUT/lc/.t" | awk '$1!="nan"{s+=$1; n++} END{if(n) printf "%.0f", s/n; else printf "–"}')
    echo "| $m | $(ms 1) | $(ms 2) | $(ms 3) | $vt | $(dif 5) | $(dif 6) | $(dif 7) |"
done
rm -f "$OUT/lc/.t"
