#!/bin/sh
# Client-level DP: DP-FedBuff (noise sigma*C/K on each buffer of K = 100 updates, accounted as
# the sampled Gaussian with q = K/C per applied buffer) vs synchronous DP-FedAvg (noise on each
# round of 100 clients, q = 0.1), same 50 noisy steps, same sigma for each target epsilon
# (`fedhpc privacy --sample-rate 0.1 --steps 50`). Test accuracy after the last step, mean over
# SEEDS (default 1 2 3); epsilon columns of the last row; virtual time of both (the synchronous
# clock does not depend on the model, so its virtual time is that of `wait_all` without DP).
# Usage (from the repository root): sh jobs/async/dp_fedbuff.sh   [FEDHPC= OUT= SEEDS= NICE=]
cd "$(dirname "$0")/../.." || exit 1
SEEDS=${SEEDS:-"1 2 3"}
. jobs/async/common.sh
CFG=jobs/async/dp_fedbuff.ini
[ -f data/fmnist_iid_c1000.h5 ] || $FEDHPC prepare fmnist --clients 1000 --partition iid --seed 1 \
    --out data/fmnist_iid_c1000.h5 || exit 1
EPS="1 2 4 8 inf"
for s in $SEEDS; do
    run "dp/wait_all_s$s" $CFG privacy.mode=none async.mode=wait_all train.seed=$s || exit 1
    for e in $EPS; do
        if [ $e = inf ]; then sig=0; else
            sig=$($FEDHPC privacy --sample-rate 0.1 --steps 50 --delta 1e-5 --target-epsilon $e | sed 's/^sigma = \([0-9.]*\).*/\1/')
        fi
        run "dp/fedavg_e${e}_s$s" $CFG async.mode=off privacy.noise=$sig train.seed=$s || exit 1
        run "dp/fedbuff_e${e}_s$s" $CFG privacy.noise=$sig train.seed=$s || exit 1
    done
done
last() { f=$1; awk -F, -v k="$(col "$f" "$2")" 'NR>1{v=$k} END{print v}' "$f"; }
echo "| target epsilon | sigma | DP-FedAvg accuracy | DP-FedBuff accuracy | epsilon (q = 0.1, both) | DP-FedBuff epsilon without sampling (busiest client) | virtual time DP-FedAvg | DP-FedBuff |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for e in $EPS; do
    sig=$(grep -h "^noise" "$OUT"/dp/fedbuff_e${e}_s*/config.ini | head -1 | sed 's/.*= *//' | awk '{printf "%.3f", $1}')
    a=$(for s in $SEEDS; do last "$OUT/dp/fedavg_e${e}_s$s/metrics.csv" accuracy; done | mean_sd | awk '{printf "%.4f ± %.4f", $1, $2}')
    b=$(for s in $SEEDS; do last "$OUT/dp/fedbuff_e${e}_s$s/metrics.csv" accuracy; done | mean_sd | awk '{printf "%.4f ± %.4f", $1, $2}')
    s1=$(echo $SEEDS | cut -d' ' -f1)
    ea=$(last "$OUT/dp/fedbuff_e${e}_s$s1/async.csv" epsilon)
    eb=$(for s in $SEEDS; do last "$OUT/dp/fedbuff_e${e}_s$s/async.csv" epsilon_max_client; done | sort -g | tail -1)
    va=$(for s in $SEEDS; do last "$OUT/dp/wait_all_s$s/async.csv" virtual_time; done | mean_sd | awk '{printf "%.0f", $1}')
    vb=$(for s in $SEEDS; do last "$OUT/dp/fedbuff_e${e}_s$s/async.csv" virtual_time; done | mean_sd | awk '{printf "%.0f", $1}')
    echo "| $e | $sig | $a | $b | $ea | $eb | $va | $vb |"
done
