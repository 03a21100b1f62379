# Robust aggregation ([fl] aggregator, docs/robust.md): every rule gives a bit-identical model on
# -np 1, 2 and 4 and changes the model (it is applied), composes with a server optimizer, with
# secure aggregation (norm_bound) and with checkpoint/resume; bad input is refused with exit 2.
# MLP 119-64-2: 7,810 parameters, several Gram blocks of 1024, so 2 and 4 ranks really split them.
. "$(dirname "$0")/lib.sh"
echo "robust aggregation tests"
"$FEDHPC" prepare lending_club --clients 20 --partition iid --seed 1 --out "$T/lc.h5" >/dev/null &&
    ok "prepare lending_club 20 iid clients" || bad "prepare lending_club"
cat > "$T/r.ini" <<INI
[data]
file = $T/lc.h5
[model]
type = mlp
hidden = 64
[train]
rounds = 3
clients_per_round = 9
batch_size = 20
lr = 0.05
[output]
progress = off
INI
# run NP ARGS...: one rank without mpirun (an MPI singleton: the same as -np 1, and quicker)
run() {
    np=$1; shift
    if [ "$np" = 1 ]; then set -- "$FEDHPC" run "$T/r.ini" "$@"; else set -- $MPIRUN -np "$np" "$FEDHPC" run "$T/r.ini" "$@"; fi
    "$@" >"$T/log" 2>&1 || { bad "run -np $np $*"; tail -5 "$T/log"; }
}

# 1. every robust aggregator: bit-identical on -np 1, 2, 4, and not the plain mean
NB="fl.norm_bound=0.05 fl.norm_bound_noise=0.001"
for a in mean krum multikrum median trimmed_mean norm_bound; do
    extra=""
    [ $a = norm_bound ] && extra=$NB
    [ $a = trimmed_mean ] && extra="fl.trim_fraction=0.25"
    [ $a = krum ] || [ $a = multikrum ] && extra="fl.byzantine_f=2"
    if [ $a = mean ]; then run 1 output.dir="$T/mean.1"; continue; fi # -np: test_engine.sh
    for np in 1 2 4; do run $np fl.aggregator=$a $extra output.dir="$T/$a.$np"; done
    same_model "$T/$a.1/model.h5" "$T/$a.2/model.h5" && same_model "$T/$a.1/model.h5" "$T/$a.4/model.h5" &&
        ok "$a: -np 1, 2, 4 bit-identical" || bad "$a: models differ between -np 1, 2, 4"
    differs "$T/mean.1/model.h5" "$T/$a.1/model.h5" && ok "$a: the model differs from the plain mean (the rule applies)" ||
        bad "$a: same model as the plain mean"
done
run 3 fl.aggregator=median secagg.dedicated_aggregator=on output.dir="$T/median.ded"
same_model "$T/median.1/model.h5" "$T/median.ded/model.h5" &&
    ok "median with a dedicated aggregator (rank 0 owns no slice): the same model" || bad "median with a dedicated aggregator differs"
same_csv 3- "$T/median.1/metrics.csv" "$T/median.4/metrics.csv" && ok "median: metrics identical on -np 1 and 4" ||
    bad "median: metrics differ between -np 1 and 4"
l1=$(awk -F, 'NR==2{print $3}' "$T/multikrum.1/metrics.csv")
l3=$(csv_col_last "$T/multikrum.1/metrics.csv" train_loss)
nums "$l1" "$l3" && awk -v a="$l1" -v b="$l3" 'BEGIN{exit !(b < 0.95 * a)}' && ok "multikrum trains (train loss $l1 -> $l3)" ||
    bad "multikrum train loss '$l1' -> '$l3'"

# 2. composition: a server optimizer; norm_bound under secure aggregation (clipped at the client,
# before masking: the same model as without masks); resume from a checkpoint on another -np
run 1 fl.aggregator=median fl.algorithm=fedadam fl.server_lr=0.01 output.dir="$T/adam.1"
run 4 fl.aggregator=median fl.algorithm=fedadam fl.server_lr=0.01 output.dir="$T/adam.4"
same_model "$T/adam.1/model.h5" "$T/adam.4/model.h5" && differs "$T/median.1/model.h5" "$T/adam.1/model.h5" &&
    ok "median + FedAdam: bit-identical on -np 1 and 4, and not the FedAvg step" || bad "median + FedAdam"
run 3 fl.aggregator=norm_bound $NB secagg.enabled=on output.dir="$T/nbsa"
same_model "$T/norm_bound.1/model.h5" "$T/nbsa/model.h5" && ok "norm_bound + secure aggregation: the same model as without masks" ||
    bad "norm_bound + secagg differs"
run 2 fl.aggregator=krum fl.byzantine_f=2 train.rounds=2 checkpoint.every=2 output.dir="$T/kr.p"
run 4 fl.aggregator=krum fl.byzantine_f=2 checkpoint.every=2 output.dir="$T/kr.p" --resume
grep -q "resuming after round 2" "$T/log" && same_model "$T/krum.1/model.h5" "$T/kr.p/model.h5" &&
    ok "krum: stopped after round 2 on -np 2, resumed on -np 4: the same model" || bad "krum resume differs"

# 3. bad input: one message naming the key, exit 2, the same on every rank
R2="$MPIRUN -np 2 $FEDHPC run $T/r.ini output.dir=$T/bad"
R="$FEDHPC run $T/r.ini output.dir=$T/bad"
expect_input_error "krum with byzantine_f too large for n = 9 (-np 2)" "[fl] byzantine_f = 4: too large" $R2 fl.aggregator=krum fl.byzantine_f=4
expect_input_error "multikrum with 3 clients a round and f = 1" "[fl] byzantine_f = 1: too large" $R fl.aggregator=multikrum train.clients_per_round=3
expect_input_error "trim_fraction = 0.5" "[fl] trim_fraction: expected a number in [0, 0.5), got 0.5" $R fl.aggregator=trimmed_mean fl.trim_fraction=0.5
expect_input_error "trim_fraction = -0.1" "[fl] trim_fraction: expected a number in [0, 0.5]" $R fl.trim_fraction=-0.1
expect_input_error "unknown aggregator" "[fl] aggregator: expected one of mean|krum" $R fl.aggregator=geomed
expect_input_error "median + secure aggregation (-np 2)" "a coordinate-wise median or trimmed mean of masked inputs is meaningless" $R2 fl.aggregator=median secagg.enabled=on
expect_input_error "krum + secure aggregation" "[fl] aggregator = krum: not with [secagg]" $R fl.aggregator=krum secagg.enabled=on
expect_input_error "multikrum + client-level DP" "[fl] aggregator = multikrum: not with [privacy] mode = client" $R fl.aggregator=multikrum privacy.mode=client
expect_input_error "median + SCAFFOLD" "[fl] aggregator = median: not with [fl] algorithm = scaffold" $R fl.aggregator=median fl.algorithm=scaffold
expect_input_error "norm_bound_noise without norm_bound" "[fl] norm_bound_noise: only with [fl] aggregator = norm_bound" $R fl.aggregator=median fl.norm_bound_noise=0.1
expect_input_error "trimmed_mean + clusters + secure aggregation" "[fl] aggregator = trimmed_mean: not with [secagg]" $R fl.aggregator=trimmed_mean cluster.method=ifca cluster.warmup=0 secagg.enabled=on
expect_input_error "median + clusters + client-level DP" "[fl] aggregator = median: not with [privacy] mode = client" $R fl.aggregator=median cluster.method=none privacy.mode=client
expect_input_error "krum + async" "[fl] aggregator = krum: not built yet for [async]" $R fl.aggregator=krum async.mode=fedbuff
finish robust
