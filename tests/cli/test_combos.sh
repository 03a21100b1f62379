# Features as stages of the one loop (issue 11): combinations that the four separate loops
# refused now run, are bit-identical across rank counts and resume exactly; what is still
# refused is refused for a stated reason of privacy or mathematics.
. "$(dirname "$0")/lib.sh"
echo "combination tests"
CACHE=data/cache/fashion-mnist
[ -f "$CACHE/train-images-idx3-ubyte.gz" ] || { bad "missing $CACHE (run make data)"; finish combos; exit 1; }
check "prepare fmnist 4 permute-labels groups" "$FEDHPC" prepare fmnist --cache $CACHE --clients 40 --partition iid --seed 1 \
    --groups 4 --group-transform permute-labels --local-test-frac 0.2 --out "$T/perm.h5"
cat > "$T/perm.ini" <<INI
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
[output]
progress = off
INI
run() { run_np "$@"; }
eps_last() { csv_col_last "$1/metrics.csv" epsilon; }

# exact NAME DIR OVERRIDES...: the run is bit-identical on -np 2 and 4, accounts a finite epsilon,
# and a run stopped after round 2 resumes (on -np 4) to the same model and epsilon
exact() {
    name=$1 d=$2; shift 2
    run 2 "$T/perm.ini" "$@" output.dir="$T/$d.2"
    run 4 "$T/perm.ini" "$@" output.dir="$T/$d.4"
    same_model "$T/$d.2/model.h5" "$T/$d.4/model.h5" && ok "$name: -np 2 and 4 bit-identical" ||
        bad "$name differs between -np 2 and 4"
    e=$(eps_last "$T/$d.2")
    nums "$e" && awk -v e="$e" 'BEGIN{exit !(e > 0 && e < 1000)}' && ok "$name accounts epsilon ($e after 4 rounds)" ||
        bad "$name epsilon '$e'"
    run 2 "$T/perm.ini" "$@" train.rounds=2 checkpoint.every=2 output.dir="$T/$d.p"
    run 4 "$T/perm.ini" "$@" checkpoint.every=2 output.dir="$T/$d.p" --resume
    grep -q "resuming after round 2" "$T/log" && same_model "$T/$d.2/model.h5" "$T/$d.p/model.h5" &&
        [ "$(eps_last "$T/$d.p")" = "$e" ] && ok "$name resumes exactly (model and epsilon)" || bad "$name resume differs"
}

# DP-SGD inside the clients of a multi-center run: FeSEM assigns from the DP-SGD model
DPS="privacy.mode=sample privacy.noise=0.8 privacy.clip=1.0"
exact "DP-SGD + FeSEM" dps $DPS
run 2 "$T/perm.ini" $DPS personalize.mode=fedper cluster.method=none model.type=mlp model.hidden=16 output.dir="$T/dpsper"
[ -f "$T/dpsper/model.h5" ] && ok "DP-SGD + FedPer runs" || bad "DP-SGD + FedPer"

# client-level DP with clusters: every client's clipped update goes into its cluster's slot of one
# [K x P] vector, noised as one vector (the cluster it joins stays inside the noised sum)
DPC="privacy.mode=client privacy.noise=0.5 privacy.clip=2.0 cluster.method=ifca cluster.warmup=0"
exact "client DP + IFCA" dpc $DPC
run 3 "$T/perm.ini" $DPC secagg.enabled=on output.dir="$T/dpcsa"
same_model "$T/dpc.2/model.h5" "$T/dpcsa/model.h5" && ok "client DP + IFCA + secure aggregation: bit-identical to the run without masks" ||
    bad "client DP + IFCA + secagg differs"
run 2 "$T/perm.ini" $DPC cluster.method=none personalize.mode=fedper model.type=mlp model.hidden=16 output.dir="$T/dpcper"
[ -f "$T/dpcper/model.h5" ] && ok "client DP + FedPer runs" || bad "client DP + FedPer"

# client-level DP with FeSEM from K random centers (warmup 0: no Gram matrix of client models);
# its clusters' slots under secure aggregation too
DPF="privacy.mode=client privacy.noise=0.5 privacy.clip=2.0 cluster.method=fesem cluster.warmup=0"
run 2 "$T/perm.ini" $DPF output.dir="$T/dpf.2"
run 4 "$T/perm.ini" $DPF output.dir="$T/dpf.4"
run 3 "$T/perm.ini" $DPF secagg.enabled=on output.dir="$T/dpfsa"
e=$(eps_last "$T/dpf.2")
same_model "$T/dpf.2/model.h5" "$T/dpf.4/model.h5" && same_model "$T/dpf.2/model.h5" "$T/dpfsa/model.h5" && nums "$e" &&
    ok "client DP + FeSEM (warmup 0): -np 2 = -np 4 = -np 3 with secure aggregation, bit for bit (epsilon $e)" ||
    bad "client DP + FeSEM (warmup 0) differs across -np or with secagg"

# IFCA from random centers collapses to 2 of 4 groups (seed 1); under secure aggregation
# re-seeding from a client's model is not possible, but reseed = split (the largest center +-
# noise, no client data) recovers the 4 groups, with secure aggregation too (there the split's
# one-member clusters keep their centers: secagg_aborted; -np 2 and 3 bit-identical)
SPL="cluster.method=ifca cluster.warmup=0 train.rounds=20 train.eval_every=20"
run 2 "$T/perm.ini" $SPL cluster.reseed=off output.dir="$T/spoff"
run 2 "$T/perm.ini" $SPL cluster.reseed=split output.dir="$T/spl"
cp "$T/log" "$T/spl.log"
run 3 "$T/perm.ini" $SPL cluster.reseed=split secagg.enabled=on output.dir="$T/splsa"
run 2 "$T/perm.ini" $SPL cluster.reseed=split secagg.enabled=on output.dir="$T/splsa2"
aoff=$(csv_col_last "$T/spoff/clusters.csv" ari); aspl=$(csv_col_last "$T/spl/clusters.csv" ari)
asa=$(csv_col_last "$T/splsa/clusters.csv" ari)
nums "$aoff" "$aspl" "$asa" && awk -v a="$aoff" -v b="$aspl" -v c="$asa" 'BEGIN{exit !(a < 0.9 && b >= 0.9 && c >= 0.9)}' &&
    grep -q "re-seeded from cluster .* center" "$T/spl.log" && same_model "$T/splsa2/model.h5" "$T/splsa/model.h5" &&
    same_csv 2- "$T/splsa2/clusters.csv" "$T/splsa/clusters.csv" &&
    ok "IFCA from random centers, 20 rounds: ARI $aoff with reseed off, $aspl with reseed = split, $asa with split and secagg (-np 2 = 3)" ||
    bad "reseed = split: ARI off '$aoff', split '$aspl', split + secagg '$asa' (or secagg -np 2 and 3 differ)"

# refused, with the reason
expect_input_error "reseed = split with client DP refused (reads the clients' un-noised cluster choices)" \
    "[cluster] reseed = split with [privacy] mode = client" "$FEDHPC" run "$T/perm.ini" $DPC cluster.reseed=split output.dir="$T/x5"
expect_input_error "DP-SGD + FeSEM from random centers refused (first choice by loss reads raw rows)" \
    "fesem with warmup = 0 and [privacy] mode = sample" "$FEDHPC" run "$T/perm.ini" $DPS cluster.warmup=0 output.dir="$T/x4"
expect_input_error "client DP + FeSEM refused (needs pairwise similarities of client models)" \
    "its assignment step needs the pairwise similarities" "$FEDHPC" run "$T/perm.ini" $DPC cluster.method=fesem cluster.warmup=1 output.dir="$T/x2"
expect_input_error "client DP with clusters and distributed noise refused" "would cover only its own cluster's slot" \
    "$FEDHPC" run "$T/perm.ini" $DPC privacy.placement=distributed secagg.enabled=on output.dir="$T/x3"
expect_input_error "DP-SGD + IFCA refused (cluster choice reads raw rows)" "IFCA picks each client's cluster" \
    "$FEDHPC" run "$T/perm.ini" $DPS cluster.method=ifca output.dir="$T/x1"
expect_input_error "[async] with multi-center FL refused (synchronous rounds; was silently ignored)" \
    "[async] mode: not with [cluster], [personalize] or [run] clients_per_rank" \
    "$FEDHPC" run "$T/perm.ini" async.mode=fedbuff output.dir="$T/x6"
# the loop's guard: a run in which every update is rejected stops with an error, not a success
$MPIRUN -np 2 "$FEDHPC" run "$T/perm.ini" cluster.method=off fl.max_update_norm=1e-6 output.dir="$T/rej" >"$T/log" 2>&1
rc=$?
[ "$rc" = 1 ] && grep -q "every client update was rejected in 3 rounds in a row" "$T/log" &&
    [ "$(grep -c "warning: round [12]: every client update was rejected" "$T/log")" = 2 ] &&
    ok "every update rejected: warned twice, stopped after 3 rounds (exit 1)" || { bad "all-rejected guard (exit $rc)"; tail -3 "$T/log"; }
$MPIRUN -np 2 "$FEDHPC" run "$T/perm.ini" fl.max_update_norm=1e-6 output.dir="$T/rejc" >"$T/log" 2>&1
rc=$?
[ "$rc" = 1 ] && grep -q "every client update was rejected in 3 rounds" "$T/log" && ok "the same guard in a multi-center run" ||
    bad "all-rejected guard, FeSEM (exit $rc)"
finish combos
