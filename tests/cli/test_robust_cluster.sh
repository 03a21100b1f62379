# Robust aggregation per cluster in multi-center FL (docs/robust.md#multi-center-fl, issue 13):
# each cluster's new center is the rule applied to its members' updates on the cluster's rank
# group. FeSEM and IFCA with median and trimmed_mean: bit-identical on -np 1, 2, 4 (model and
# every cluster's accuracy), different from the mean, the 4 permute-labels groups still found
# (ARI 1.0); Multi-Krum, norm_bound, method = none and FedPer run identically on two rank
# counts; a checkpoint resume onto another -np is exact.
# Logreg on Fashion-MNIST: 7,850 parameters, 8 Gram blocks: 2 and 4 ranks cut real slices.
. "$(dirname "$0")/lib.sh"
echo "robust aggregation per cluster tests"
CACHE=data/cache/fashion-mnist
[ -f "$CACHE/train-images-idx3-ubyte.gz" ] || { bad "missing $CACHE (run make data)"; finish robust_cluster; exit 1; }
check "prepare fmnist 40 clients, 4 permute-labels groups" "$FEDHPC" prepare fmnist --cache $CACHE --clients 40 \
    --partition iid --seed 1 --groups 4 --group-transform permute-labels --local-test-frac 0.2 --out "$T/perm.h5"
cat > "$T/c.ini" <<INI
[data]
file = $T/perm.h5
[model]
type = logreg
[train]
rounds = 4
clients_per_round = 40
batch_size = 50
lr = 0.05
eval_every = 2
[cluster]
method = fesem
k = 4
[fl]
trim_fraction = 0.2
[output]
progress = off
INI
# run NP DIR ARGS...: one rank without mpirun (an MPI singleton, the same as -np 1)
run() {
    np=$1 d=$2; shift 2
    if [ "$np" = 1 ]; then set -- "$FEDHPC" run "$T/c.ini" output.dir="$T/$d" "$@"
    else set -- $MPIRUN -np "$np" "$FEDHPC" run "$T/c.ini" output.dir="$T/$d" "$@"; fi
    "$@" >"$T/log" 2>&1 || { bad "run -np $np $d"; tail -5 "$T/log"; }
}
# same_run A B: the same model (the largest cluster's center) and the same clusters.csv (sizes,
# ARI, mean and 10th percentile client accuracy, every cluster's accuracy, at every evaluation)
same_run() { same_model "$T/$1/model.h5" "$T/$2/model.h5" && cmp -s "$T/$1/clusters.csv" "$T/$2/clusters.csv"; }

run 1 fesem_mean
run 1 ifca_mean cluster.method=ifca
for m in fesem ifca; do
    for a in median trimmed_mean; do
        for np in 1 2 4; do run $np "${m}_${a}_$np" cluster.method=$m fl.aggregator=$a; done
        if same_run "${m}_${a}_1" "${m}_${a}_2" && same_run "${m}_${a}_1" "${m}_${a}_4"; then
            ok "$m + $a: -np 1, 2, 4 bit-identical (model, clusters.csv)"
        else bad "$m + $a: -np 1, 2, 4 differ"; fi
        if differs "$T/${m}_${a}_1/model.h5" "$T/${m}_mean/model.h5"; then ok "$m + $a: not the mean's model"
        else bad "$m + $a: the same model as the mean"; fi
        ari=$(csv_col_last "$T/${m}_${a}_1/clusters.csv" ari)
        acc=$(csv_col_last "$T/${m}_${a}_1/clusters.csv" client_acc_mean)
        macc=$(csv_col_last "$T/${m}_mean/clusters.csv" client_acc_mean)
        if nums "$ari" && awk -v a="$ari" 'BEGIN{exit !(a == 1)}'; then ok "$m + $a: groups recovered (ARI $ari)"
        else bad "$m + $a: ARI $ari, expected 1"; fi
        if nums "$acc" "$macc" && awk -v a="$acc" -v b="$macc" 'BEGIN{exit !(a > b - 0.05)}'; then
            ok "$m + $a: mean client accuracy $acc (mean aggregation $macc)"
        else bad "$m + $a: mean client accuracy $acc, mean aggregation $macc"; fi
    done
done

# the other rules and methods on two rank counts
run 1 mk1 fl.aggregator=multikrum fl.byzantine_f=2
run 4 mk4 fl.aggregator=multikrum fl.byzantine_f=2
same_run mk1 mk4 && differs "$T/mk1/model.h5" "$T/fesem_mean/model.h5" &&
    ok "fesem + multikrum: -np 1 and 4 bit-identical, not the mean" || bad "fesem + multikrum"
run 1 nb1 fl.aggregator=norm_bound fl.norm_bound=0.5 fl.norm_bound_noise=0.001
run 2 nb2 fl.aggregator=norm_bound fl.norm_bound=0.5 fl.norm_bound_noise=0.001
same_run nb1 nb2 && differs "$T/nb1/model.h5" "$T/fesem_mean/model.h5" &&
    ok "fesem + norm_bound (+ noise): -np 1 and 2 bit-identical, not the mean" || bad "fesem + norm_bound"
# with secagg, IFCA runs without warm-up (K random centers) and without re-seeding
I0="cluster.method=ifca cluster.warmup=0 cluster.reseed=off"
run 2 nbsa $I0 fl.aggregator=norm_bound fl.norm_bound=0.5 secagg.enabled=on
run 2 nbnosa $I0 fl.aggregator=norm_bound fl.norm_bound=0.5
run 2 ifca0_mean $I0
same_run nbsa nbnosa && differs "$T/nbsa/model.h5" "$T/ifca0_mean/model.h5" &&
    ok "ifca + norm_bound + secure aggregation per cluster (-np 2): the same as without masks, not the mean" ||
    bad "ifca + norm_bound + secure aggregation"
run 1 none1 cluster.method=none fl.aggregator=median model.type=mlp model.hidden=8 personalize.mode=fedper
run 4 none4 cluster.method=none fl.aggregator=median model.type=mlp model.hidden=8 personalize.mode=fedper
run 1 nonemean cluster.method=none model.type=mlp model.hidden=8 personalize.mode=fedper
same_run none1 none4 && differs "$T/none1/model.h5" "$T/nonemean/model.h5" &&
    ok "method none + FedPer + median: -np 1 and 4 bit-identical, not the mean" || bad "method none + FedPer + median"

# checkpoint after round 2 on -np 2, resumed on -np 4: the uninterrupted run's result
O="cluster.method=ifca fl.aggregator=trimmed_mean checkpoint.every=2"
run 2 part $O train.rounds=2
run 4 part $O --resume
if grep -q "resuming after round 2" "$T/log" && same_run ifca_trimmed_mean_1 part; then
    ok "ifca + trimmed_mean: resume after round 2 (-np 2 -> 4) equals the uninterrupted run"
else bad "ifca + trimmed_mean: resumed run differs"; fi

expect_input_error "median + clusters + secure aggregation" "[fl] aggregator = median: not with [secagg]" \
    "$FEDHPC" run "$T/c.ini" cluster.method=ifca cluster.warmup=0 fl.aggregator=median secagg.enabled=on output.dir="$T/x1"
expect_input_error "krum + clusters + client-level DP" "[fl] aggregator = krum: not with [privacy] mode = client" \
    "$FEDHPC" run "$T/c.ini" cluster.method=none fl.aggregator=krum privacy.mode=client output.dir="$T/x2"
finish robust_cluster
