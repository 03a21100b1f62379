# Poisoning and backdoor attacks ([attack], issue 13; docs/attacks.md): a tiny backdoor run on
# Fashion-MNIST whose backdoor success is far above the clean run's (the same run with no
# malicious client), bit-identical models and metrics for -np 1 and 2 for each kind of attack,
# the backdoor curve in `fedhpc plot`, and bad input.
. "$(dirname "$0")/lib.sh"
echo "attack tests"
FM=data/fmnist_dir05_c100.h5
[ -f "$FM" ] || { bad "missing $FM (run make data)"; finish attack; exit 1; }

cat > "$T/a.ini" <<INI
[data]
file = $FM
[model]
type = mlp
hidden = 64
[train]
rounds = 20
clients_per_round = 10
batch_size = 10
lr = 0.05
eval_every = 10
[output]
progress = off
[attack]
mode = backdoor
fraction = 0.1
boost = 3
trigger = 4
target_class = 2
INI

run() { # run NAME NP OVERRIDES...
    _n=$1 _np=$2; shift 2
    if [ "$_np" = 1 ]; then _l=; else _l="$MPIRUN -np $_np"; fi
    $_l "$FEDHPC" run "$T/a.ini" output.dir="$T/$_n" "$@" >"$T/$_n.log" 2>&1 ||
        { bad "run $_n (-np $_np $*)"; tail -5 "$T/$_n.log" | sed 's/^/       | /'; }
}

# 1. backdoor vs clean: fraction = 0 is the same run with no malicious client (the metric is
#    still measured: how often a clean model calls a triggered image the target class)
run clean 1 attack.fraction=0
run bd1 1
run bd2 2
c=$(csv_col_last "$T/clean/metrics.csv" attack_success) b=$(csv_col_last "$T/bd1/metrics.csv" attack_success)
ca=$(csv_col_last "$T/clean/metrics.csv" accuracy) ba=$(csv_col_last "$T/bd1/metrics.csv" accuracy)
if nums "$c" "$b" "$ca" "$ba" && awk -v c="$c" -v b="$b" 'BEGIN{exit !(b >= 0.8 && c <= 0.2 && b >= c + 0.5)}'; then
    ok "backdoor success $b with 10% malicious clients (clean run: $c)"
else
    bad "backdoor success $b vs clean $c (wanted >= 0.8 and <= 0.2)"
fi
awk -v c="$ca" -v b="$ba" 'BEGIN{exit !(b >= c - 0.05)}' && ok "main-task accuracy $ba kept (clean $ca)" ||
    bad "main-task accuracy $ba vs clean $ca"
m=$(awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i=="malicious") k=i; next} {s+=$k} END{print s}' "$T/bd1/metrics.csv")
[ "$m" = 20 ] && ok "one malicious client of 10 every round (20 in 20 rounds)" || bad "malicious clients: $m (wanted 20)"
same_model "$T/bd1/model.h5" "$T/bd2/model.h5" && ok "backdoor: bit-identical model for -np 1 and 2" ||
    bad "backdoor: models differ between -np 1 and 2"
same_csv 1,5,19,20 "$T/bd1/metrics.csv" "$T/bd2/metrics.csv" && ok "backdoor: same accuracy, malicious, attack_success for -np 1 and 2" ||
    bad "backdoor: metrics differ between -np 1 and 2"
differs "$T/clean/model.h5" "$T/bd1/model.h5" && ok "the attack changes the model" || bad "attacked model == clean model"

# 2. the other attacks (and the fixed selection) are bit-identical for -np 1 and 2 too
for a in "label_flip selection=fixed" "sign_flip" "gaussian selection=fixed" "scale"; do
    set -- $a
    mode=$1 sel=${2:-selection=per_round}
    run "${mode}_1" 1 attack.mode=$mode attack.$sel attack.boost=2 attack.source_class=0 train.rounds=4 train.eval_every=4
    run "${mode}_2" 2 attack.mode=$mode attack.$sel attack.boost=2 attack.source_class=0 train.rounds=4 train.eval_every=4
    m=$(awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i=="malicious") k=i; next} {s+=$k} END{print s+0}' "$T/${mode}_1/metrics.csv")
    if [ "$m" -gt 0 ] && same_model "$T/${mode}_1/model.h5" "$T/${mode}_2/model.h5" &&
        same_csv 1,5,19 "$T/${mode}_1/metrics.csv" "$T/${mode}_2/metrics.csv"; then
        ok "$mode ($sel, $m malicious updates): bit-identical for -np 1 and 2"
    else
        bad "$mode ($sel): differs between -np 1 and 2"
    fi
done
bs=$(csv_col_last "$T/sign_flip_1/metrics.csv" attack_success)
[ "$bs" = nan ] && ok "attack_success is nan for sign_flip (an untargeted attack)" || bad "attack_success '$bs' for sign_flip"

# 3. a checkpoint resume continues the attack exactly (there is no attack state: everything is a
#    function of seed, round and client), here from -np 1 to -np 2 with a fixed malicious set
run r8 1 attack.selection=fixed attack.fraction=0.3 train.rounds=8 train.eval_every=4
run r4 1 attack.selection=fixed attack.fraction=0.3 train.rounds=4 train.eval_every=4 checkpoint.every=4
$MPIRUN -np 2 "$FEDHPC" run "$T/a.ini" output.dir="$T/r4" attack.selection=fixed attack.fraction=0.3 train.rounds=8 \
    train.eval_every=4 checkpoint.resume=auto >"$T/r4b.log" 2>&1 || bad "resumed run"
if grep -q "resuming after round 4" "$T/r4b.log" && same_model "$T/r8/model.h5" "$T/r4/model.h5" &&
    same_csv 1,5,19,20 "$T/r8/metrics.csv" "$T/r4/metrics.csv"; then
    ok "resume after round 4 (-np 1 -> 2): bit-identical model and attack metrics"
else
    bad "resume of an attacked run differs"
fi

# 4. the plot shows the backdoor curve
if command -v gnuplot >/dev/null 2>&1; then
    check "fedhpc plot of a backdoor run" "$FEDHPC" plot "$T/bd1" --out "$T/bd.png"
    [ -s "$T/bd.png" ] && ok "plot written" || bad "no plot"
fi

# 5. bad input: one message naming the key, exit 2 (under -np 2: once, from every rank's agreement)
expect_input_error "unknown attack mode" "[attack] mode: expected one of none|label_flip" \
    $MPIRUN -np 2 "$FEDHPC" run "$T/a.ini" output.dir="$T/x" attack.mode=poison
expect_input_error "fraction outside [0, 1]" "[attack] fraction: expected a number in [0, 1], got '1.5'" \
    $MPIRUN -np 2 "$FEDHPC" run "$T/a.ini" output.dir="$T/x" attack.fraction=1.5
expect_input_error "negative fraction" "[attack] fraction: expected a number in [0, 1], got '-0.1'" \
    "$FEDHPC" run "$T/a.ini" output.dir="$T/x" attack.fraction=-0.1
expect_input_error "label_flip source = target" "[attack] source_class = target_class = 2" \
    "$FEDHPC" run "$T/a.ini" output.dir="$T/x" attack.mode=label_flip attack.source_class=2
expect_input_error "trigger larger than the image" "[attack] trigger = 29: larger than the 28x28 images" \
    $MPIRUN -np 2 "$FEDHPC" run "$T/a.ini" output.dir="$T/x" attack.trigger=29
expect_input_error "target class out of range" "[attack] target_class = 10:" \
    "$FEDHPC" run "$T/a.ini" output.dir="$T/x" attack.target_class=10
expect_input_error "attack with async" "[attack] mode = backdoor: only for the synchronous FedAvg family" \
    "$FEDHPC" run "$T/a.ini" output.dir="$T/x" async.mode=fedbuff
finish attack
