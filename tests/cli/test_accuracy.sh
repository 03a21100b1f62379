# What the core engine must show on real data (shortened where docs/results.md has the full run):
# - FedAvg on Fashion-MNIST (100 clients, Dirichlet 0.5, 10 a round, E=1, B=10, lr 0.05,
#   MLP 200-200): the full 50 rounds reach >= 80% (docs/results.md); here 10 rounds must reach >= 77%.
# - FedAvg on lending_club split by state: test ROC-AUC within 0.02 of the centralized
#   baseline trained for the same number of epochs (20).
. "$(dirname "$0")/lib.sh"
echo "accuracy tests"
$MPIRUN -np 2 "$FEDHPC" run jobs/configs/fmnist_fedavg.ini train.rounds=10 output.dir="$T/fm" >"$T/log" 2>&1 || { bad "fmnist run"; tail "$T/log"; }
acc=$(csv_col_last "$T/fm/metrics.csv" accuracy)
awk -v a="$acc" 'BEGIN{exit !(a >= 0.77)}' && ok "fmnist FedAvg: accuracy $acc >= 0.77 after 10 rounds" || bad "fmnist accuracy $acc < 0.77"
pacc=$(csv_col_last "$T/fm/metrics.csv" client_acc_p10)
awk -v a="$pacc" -v b="$acc" 'BEGIN{exit !(a > 0.3 && a <= 1)}' && ok "per-client accuracy reported (10th percentile $pacc)" || bad "client_acc_p10 = $pacc"

"$FEDHPC" prepare lending_club --partition natural --seed 1 --out "$T/lc.h5" >/dev/null || bad "prepare lending_club"
for alg in fedavg centralized; do
    $MPIRUN -np 2 "$FEDHPC" run jobs/configs/lending_club_fedavg.ini data.file="$T/lc.h5" fl.algorithm=$alg \
        output.dir="$T/lc_$alg" >"$T/log" 2>&1 || { bad "lending_club $alg"; tail "$T/log"; }
done
fa=$(csv_col_last "$T/lc_fedavg/metrics.csv" auc)
ce=$(csv_col_last "$T/lc_centralized/metrics.csv" auc)
awk -v a="$fa" -v c="$ce" 'BEGIN{d=a-c; if(d<0)d=-d; exit !(d <= 0.02 && a > 0.65)}' &&
    ok "lending_club by state: FedAvg AUC $fa within 0.02 of centralized $ce" || bad "lending_club AUC FedAvg $fa vs centralized $ce"
finish accuracy
