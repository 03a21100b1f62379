# The core engine end to end on real data: exact aggregation (bit-identical models for any
# number of ranks), FedAvg = centralized step for one full-batch client, every algorithm runs
# and learns, faulty updates are rejected, outputs and tools work.
. "$(dirname "$0")/lib.sh"
echo "engine tests"
FM=data/fmnist_dir05_c100.h5
[ -f "$FM" ] || { bad "missing $FM (run make data)"; finish engine; exit 1; }
"$FEDHPC" prepare lending_club --partition natural --seed 1 --out "$T/lc.h5" >/dev/null && ok "prepare lending_club natural" || bad "prepare lending_club"
"$FEDHPC" prepare lending_club --clients 1 --partition iid --seed 1 --out "$T/lc1.h5" >/dev/null || bad "prepare lc1"

cat > "$T/small.ini" <<INI
[data]
file = $FM
[model]
type = mlp
hidden = 32
[train]
rounds = 3
clients_per_round = 7
batch_size = 10
lr = 0.05
momentum = 0.5
weight_decay = 0.0001
eval_every = 1
INI

# 1. bit-identical models with -np 1, 2, 3, 4 (and 8 oversubscribed) for several algorithms
for alg in fedavg scaffold fedadam; do
    for np in 1 2 3 4 8; do
        $MPIRUN -np $np "$FEDHPC" run "$T/small.ini" fl.algorithm=$alg output.dir="$T/$alg.np$np" >"$T/log" 2>&1 ||
            { bad "$alg -np $np run"; tail -5 "$T/log"; }
    done
    for np in 2 3 4 8; do
        if same_model "$T/$alg.np1/model.h5" "$T/$alg.np$np/model.h5"; then ok "$alg: -np $np model bit-identical to -np 1"
        else bad "$alg: -np $np model differs from -np 1"; fi
    done
done
if same_csv 3- "$T/fedavg.np1/metrics.csv" "$T/fedavg.np4/metrics.csv"; then
    ok "metrics (all but wall time) identical for -np 1 and 4"
else bad "metrics differ between -np 1 and 4"; fi

# 2. the centralized baseline is rank-count independent too
for np in 1 2 4; do
    $MPIRUN -np $np "$FEDHPC" run "$T/small.ini" data.file="$T/lc.h5" model.type=logreg fl.algorithm=centralized \
        train.rounds=2 output.dir="$T/cen.np$np" >/dev/null 2>&1 || bad "centralized -np $np"
done
same_model "$T/cen.np1/model.h5" "$T/cen.np2/model.h5" && same_model "$T/cen.np1/model.h5" "$T/cen.np4/model.h5" &&
    ok "centralized: bit-identical for -np 1, 2, 4" || bad "centralized differs across -np"

# 3. one client, E = 1, full batch: one FedAvg round equals one centralized gradient step
common="data.file=$T/lc1.h5 model.type=mlp model.hidden=16 train.rounds=1 train.batch_size=0 train.momentum=0 train.weight_decay=0.001"
$MPIRUN -np 1 "$FEDHPC" run "$T/small.ini" $common fl.algorithm=fedavg output.dir="$T/eq_fa" >/dev/null 2>&1 || bad "eq fedavg"
$MPIRUN -np 2 "$FEDHPC" run "$T/small.ini" $common fl.algorithm=centralized output.dir="$T/eq_ce" >/dev/null 2>&1 || bad "eq centralized"
$MPIRUN -np 1 "$FEDHPC" run "$T/small.ini" $common train.lr=0 output.dir="$T/eq_0" >/dev/null 2>&1 || bad "eq lr=0"
differs "$T/eq_fa/model.h5" "$T/eq_0/model.h5" -d 1e-4 && ok "the full-batch step moves the model by more than 1e-4" ||
    bad "the FedAvg step did not move the model (or h5diff failed)"
if h5diff -q -d 1e-6 "$T/eq_fa/model.h5" "$T/eq_ce/model.h5" /params /params; then
    ok "one full-batch FedAvg round == one centralized step (|diff| <= 1e-6)"
else bad "FedAvg round != centralized step"; h5diff -d 1e-6 "$T/eq_fa/model.h5" "$T/eq_ce/model.h5" /params /params | head -5; fi

# 4. every algorithm runs and learns something on fmnist (accuracy well above 10% chance)
for alg in fedavg fedprox fedavgm fedadam fedyogi scaffold; do
    extra=""
    case $alg in fedadam|fedyogi) extra="fl.server_lr=0.01";; fedavgm) extra="fl.server_momentum=0.5";; esac
    $MPIRUN -np 2 "$FEDHPC" run "$T/small.ini" fl.algorithm=$alg train.rounds=4 $extra output.dir="$T/alg_$alg" >/dev/null 2>&1 || bad "$alg run"
    acc=$(csv_col_last "$T/alg_$alg/metrics.csv" accuracy)
    if awk -v a="$acc" 'BEGIN{exit !(a > 0.45)}'; then ok "$alg learns: accuracy $acc after 4 rounds"; else bad "$alg accuracy $acc"; fi
done

# 5. faulty updates are rejected and counted, never averaged in
$MPIRUN -np 2 "$FEDHPC" run "$T/small.ini" train.rounds=2 train.lr=1e6 fl.max_update_norm=1e3 output.dir="$T/rej" >/dev/null 2>&1 || bad "rejection run"
rej=$(csv_col_last "$T/rej/metrics.csv" rejected)
[ "$rej" = 7 ] && ok "absurd updates rejected (7 of 7 in the round)" || bad "rejected = $rej, expected 7"
$MPIRUN -np 1 "$FEDHPC" run "$T/small.ini" train.rounds=2 train.lr=0 output.dir="$T/rej0" >/dev/null 2>&1
same_model "$T/rej/model.h5" "$T/rej0/model.h5" && ok "model unchanged when all updates are rejected" || bad "rejected updates changed the model"

# 6. outputs and tools
for f in config.ini metrics.csv model.h5 run.yaml; do
    [ -s "$T/fedavg.np2/$f" ] && ok "output $f" || bad "missing output $f"
done
[ "$(wc -l < "$T/fedavg.np2/metrics.csv")" = 4 ] && ok "metrics.csv has a row a round" || bad "metrics.csv rows"
head -1 "$T/fedavg.np2/metrics.csv" | grep -q '^round,wall_s,train_loss,test_loss,accuracy,f1,auc,bytes_up,bytes_down' &&
    ok "metrics.csv columns" || bad "metrics.csv header"
"$FEDHPC" run "$T/fedavg.np2/config.ini" output.dir="$T/rerun" >/dev/null 2>&1 &&
    same_model "$T/fedavg.np1/model.h5" "$T/rerun/model.h5" && ok "the echoed config.ini reproduces the model" || bad "config.ini rerun"
"$FEDHPC" inspect "$FM" > "$T/insp" 2>&1 && grep -q "clients     100" "$T/insp" && grep -q "rows per client: min" "$T/insp" &&
    ok "inspect data file" || bad "inspect data"
"$FEDHPC" inspect "$T/fedavg.np2/model.h5" > "$T/insm" 2>&1 && grep -q "fedhpc model" "$T/insm" && ok "inspect model file" || bad "inspect model"
"$FEDHPC" plot "$T/fedavg.np2" >/dev/null 2>&1 && [ -s "$T/fedavg.np2/learning_curve.png" ] &&
    head -c 8 "$T/fedavg.np2/learning_curve.png" | grep -q PNG && ok "plot writes a PNG" || bad "plot"
finish engine
