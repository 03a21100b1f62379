# Multi-center FL (issue 4): FeSEM, IFCA (and CFL) recover 4 permute-labels groups (ARI >= 0.9) and
# beat FedAvg's mean per-client held-out accuracy by >= 20 points; the result is bit-identical
# with -np 2 and 4; FedPer beats FedAvg's mean per-client accuracy at Dirichlet alpha = 0.1;
# cross-silo mode (one rank per client); bad settings are clear input errors.
. "$(dirname "$0")/lib.sh"
echo "cluster tests"
CACHE=data/cache/fashion-mnist
[ -f "$CACHE/train-images-idx3-ubyte.gz" ] || { bad "missing $CACHE (run make data)"; finish cluster; exit 1; }
check "prepare fmnist 4 permute-labels groups" "$FEDHPC" prepare fmnist --cache $CACHE --clients 40 --partition iid --seed 1 \
    --groups 4 --group-transform permute-labels --local-test-frac 0.2 --out "$T/perm.h5"
check "prepare fmnist Dirichlet 0.1" "$FEDHPC" prepare fmnist --cache $CACHE --clients 20 --partition dirichlet --alpha 0.1 \
    --seed 2 --local-test-frac 0.2 --out "$T/dir.h5"
check "prepare 4 clients, 2 groups" "$FEDHPC" prepare fmnist --cache $CACHE --clients 4 --partition iid --seed 3 \
    --groups 2 --group-transform permute-labels --local-test-frac 0.2 --out "$T/silo.h5"
if h5dump -d /train/client_group "$T/perm.h5" >/dev/null 2>&1; then ok "client_group stored"; else bad "no /train/client_group"; fi

cat > "$T/perm.ini" <<INI
[data]
file = $T/perm.h5
[model]
type = logreg
[train]
rounds = 6
clients_per_round = 40
batch_size = 50
lr = 0.05
eval_every = 6
[cluster]
method = fesem
k = 4
[output]
progress = off
INI
run() { run_np "$@"; }
run 2 "$T/perm.ini" output.dir="$T/fesem2"
run 4 "$T/perm.ini" output.dir="$T/fesem4"
run 2 "$T/perm.ini" cluster.method=ifca output.dir="$T/ifca2"
run 4 "$T/perm.ini" cluster.method=ifca output.dir="$T/ifca4"
run 2 "$T/perm.ini" cluster.method=none output.dir="$T/none2"
fedavg=$(csv_col_last "$T/none2/clusters.csv" client_acc_mean)
for m in fesem ifca; do
    ari=$(csv_col_last "$T/${m}2/clusters.csv" ari)
    acc=$(csv_col_last "$T/${m}2/clusters.csv" client_acc_mean)
    if awk -v a="$ari" 'BEGIN{exit !(a >= 0.9)}'; then ok "$m recovers the groups (ARI $ari)"; else bad "$m ARI $ari < 0.9"; fi
    if nums "$acc" "$fedavg" && awk -v a="$acc" -v b="$fedavg" 'BEGIN{exit !(a >= b + 0.2)}'; then ok "$m mean client accuracy $acc >= FedAvg $fedavg + 0.20"
    else bad "$m mean client accuracy $acc not 20 points above FedAvg $fedavg"; fi
    if same_model "$T/${m}2/model.h5" "$T/${m}4/model.h5" &&
        same_csv 2- "$T/${m}2/clusters.csv" "$T/${m}4/clusters.csv"; then
        ok "$m: -np 2 and -np 4 bit-identical (model, assignments, accuracies)"
    else bad "$m: -np 2 and -np 4 differ"; fi
done

# CFL: recursive bi-partitions by cosine similarity of updates find the 4 groups
run 2 "$T/perm.ini" cluster.method=cfl cluster.eps1=0.25 cluster.eps2=0.6 train.rounds=10 train.eval_every=10 output.dir="$T/cfl"
ari=$(csv_col_last "$T/cfl/clusters.csv" ari)
if awk -v a="$ari" 'BEGIN{exit !(a >= 0.9)}'; then ok "cfl finds the split (ARI $ari after 10 rounds)"; else bad "cfl ARI $ari < 0.9"; fi

# FedPer: shared base, personal output layer, at Dirichlet 0.1
cat > "$T/fp.ini" <<INI
[data]
file = $T/dir.h5
[model]
type = mlp
hidden = 32
[train]
rounds = 3
clients_per_round = 20
batch_size = 50
lr = 0.05
eval_every = 3
[cluster]
method = none
[output]
progress = off
INI
run 2 "$T/fp.ini" output.dir="$T/fa"
run 2 "$T/fp.ini" personalize.mode=fedper output.dir="$T/fp"
a=$(csv_col_last "$T/fa/clusters.csv" client_acc_mean)
b=$(csv_col_last "$T/fp/clusters.csv" client_acc_mean)
if nums "$a" "$b" && awk -v a="$a" -v b="$b" 'BEGIN{exit !(b > a)}'; then ok "FedPer mean client accuracy $b > FedAvg $a (Dirichlet 0.1)"
else bad "FedPer $b not above FedAvg $a"; fi

# cross-silo: rank i is client i
run 4 "$T/perm.ini" data.file="$T/silo.h5" run.clients_per_rank=1 cluster.k=2 train.clients_per_round=4 output.dir="$T/silo"
if [ -s "$T/silo/clusters.csv" ] && [ -f "$T/silo/model.h5" ]; then ok "cross-silo run (-np 4 = 4 clients)"; else bad "cross-silo run"; fi

# checkpoints: centers, assignments and FedPer heads; resume (on another -np) is exact
O="model.type=mlp model.hidden=16 personalize.mode=fedper train.rounds=4 train.eval_every=2 checkpoint.every=2"
run 2 "$T/perm.ini" $O output.dir="$T/full"
run 2 "$T/perm.ini" $O train.rounds=2 output.dir="$T/part"
run 4 "$T/perm.ini" $O output.dir="$T/part" --resume
if grep -q "resuming after round 2" "$T/log" && same_model "$T/full/model.h5" "$T/part/model.h5" &&
    cmp -s "$T/full/clusters.csv" "$T/part/clusters.csv"; then
    ok "resume after round 2 (-np 2 -> 4) ends bit-identical to the uninterrupted run (FeSEM + FedPer)"
else bad "resumed multi-center run differs"; fi

expect_input_error "cross-silo needs -np = clients" "clients_per_rank = 1" \
    $MPIRUN -np 2 "$FEDHPC" run "$T/perm.ini" run.clients_per_rank=1 output.dir="$T/x1"
expect_input_error "unknown method" "[cluster] method" "$FEDHPC" run "$T/perm.ini" cluster.method=kmeans output.dir="$T/x2"
expect_input_error "clustering needs fedavg" "set [fl] algorithm = fedavg" "$FEDHPC" run "$T/perm.ini" fl.algorithm=fedprox output.dir="$T/x3"
expect_input_error "--groups without a transform" "--group-transform" \
    "$FEDHPC" prepare fmnist --cache $CACHE --clients 4 --partition iid --seed 1 --groups 2 --out "$T/x.h5"
finish cluster
