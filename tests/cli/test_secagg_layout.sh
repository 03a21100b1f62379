# Who hosts what under secure aggregation (issue 12 item 7), end to end on Fashion-MNIST:
# [secagg] dedicated_aggregator keeps rank 0 free of clients (it aggregates and evaluates on the
# test split) with the model bit-identical to the plain run and to dedicated_aggregator = off on
# -np 2 and 3; rank 0 reads no training row (the test-only [secagg] truth record counts the rows
# every io_data_read_ranges on rank 0 read, and the same count is > 0 when rank 0 hosts
# clients); -np 1 and multi-center FL are refused with the reason; [secagg] late_dropout
# (survivors that do not answer the unmasking request) gives the model of the plain run over the
# same contributing clients, and too many late dropouts abort the round.
. "$(dirname "$0")/lib.sh"
echo "secagg layout tests"
FM=data/fmnist_dir05_c100.h5
[ -f "$FM" ] || { bad "missing $FM (run make data)"; finish secagg_layout; exit 1; }
cat > "$T/p.ini" <<INI
[data]
file = $FM
[model]
type = mlp
hidden = 16
[train]
rounds = 3
clients_per_round = 12
batch_size = 20
lr = 0.05
eval_every = 1
[output]
progress = off
INI
run() { runini "$T/p.ini" "$@"; }
# rows0 TRUTH: rank 0's training rows read, after rounds 1, 2, 3 (cumulative; the evaluation of
# round r, client accuracies included, is counted by round r + 1's record)
rows0() { for r in 1 2 3; do h5dump -d "/round_0000000$r/aggregator_train_rows" "$1" 2>/dev/null | sed -n 's/^ *(0): //p'; done | tr '\n' ' '; }
# ones FILE DATASET: how many 1s in a uint8 vector of the transcript
ones() { h5dump -d "$2" -y -w 0 "$1" 2>/dev/null | sed -n '/DATA {/,/}/p' | tr ',' '\n' | grep -cE '^ *1 *$'; }
colsum() { awk -F, -v c="$2" 'NR==1{for(i=1;i<=NF;i++) if($i==c) k=i; next} {s+=$k} END{print s+0}' "$1"; }

# 1. the dedicated aggregator: same model, rank 0 reads no training row
mkdir -p "$T/tr"
run 2 plain secagg.dropout=0.1 secagg.truth="$T/tr/plain.h5"
for np in 2 3; do
    run $np ded$np secagg.dropout=0.1 secagg.enabled=on secagg.threshold=0.25 secagg.truth="$T/tr/ded$np.h5"
    run $np off$np secagg.dropout=0.1 secagg.enabled=on secagg.threshold=0.25 secagg.dedicated_aggregator=off \
        secagg.truth="$T/tr/off$np.h5"
    if same_model "$T/plain/model.h5" "$T/ded$np/model.h5" && same_model "$T/plain/model.h5" "$T/off$np/model.h5"; then
        ok "-np $np: secagg with a dedicated aggregator (auto) = dedicated_aggregator = off = plain (-np 2), bit for bit"
    else bad "-np $np: models differ (dedicated, off, plain)"; fi
    d=$(rows0 "$T/tr/ded$np.h5") o=$(echo $(rows0 "$T/tr/off$np.h5"))
    if [ "$d" = "0 0 0 " ]; then ok "-np $np, dedicated aggregator: rank 0 read 0 training rows after rounds 1, 2, 3"
    else bad "-np $np, dedicated aggregator: rank 0 read training rows: '$d'"; fi
    if nums $o && [ "$(echo $o | awk '{print $3}')" -gt 0 ]; then ok "-np $np, dedicated_aggregator = off: rank 0 hosts clients, read $o rows (the check can fail)"
    else bad "-np $np, dedicated_aggregator = off: expected rank 0 to read rows, got '$o'"; fi
done
# without secagg (auto = off there) rank 0 hosts clients; on applies to the plain all-reduce too
p=$(echo $(rows0 "$T/tr/plain.h5"))
nums $p && [ "$(echo $p | awk '{print $3}')" -gt 0 ] && ok "plain run (auto = off without secagg): rank 0 read $p rows" ||
    bad "plain run: rank 0 rows '$p'"
run 3 plainded secagg.dropout=0.1 secagg.dedicated_aggregator=on secagg.truth="$T/tr/plainded.h5"
d=$(rows0 "$T/tr/plainded.h5")
same_model "$T/plain/model.h5" "$T/plainded/model.h5" && [ "$d" = "0 0 0 " ] &&
    ok "no secagg, dedicated_aggregator = on (-np 3): same model, rank 0 read no training row" ||
    bad "no secagg, dedicated_aggregator = on: model differs or rank 0 read '$d'"
# 2. refusals
expect_input_error "-np 1 with secagg (dedicated aggregator by default) is refused" \
    "needs at least 2 ranks: rank 0 aggregates only" "$FEDHPC" run "$T/p.ini" secagg.enabled=on output.dir="$T/x1"
expect_input_error "-np 1 with dedicated_aggregator = on is refused" \
    "needs at least 2 ranks: rank 0 aggregates only" "$FEDHPC" run "$T/p.ini" secagg.dedicated_aggregator=on output.dir="$T/x2"
run 1 one secagg.dropout=0.1 secagg.enabled=on secagg.threshold=0.25 secagg.dedicated_aggregator=off
same_model "$T/plain/model.h5" "$T/one/model.h5" && ok "-np 1 with dedicated_aggregator = off (one process holds everything): same model" ||
    bad "-np 1, dedicated_aggregator = off: model differs"
expect_input_error "dedicated_aggregator = on with clusters is refused, naming the reason" \
    "[secagg] dedicated_aggregator = on: not supported with [cluster]" $MPIRUN -np 2 "$FEDHPC" run "$T/p.ini" \
    secagg.enabled=on secagg.dedicated_aggregator=on cluster.method=none output.dir="$T/x3"
run 2 clauto secagg.enabled=on cluster.method=none train.rounds=1
[ -f "$T/clauto/model.h5" ] && ok "clusters with dedicated_aggregator = auto: not applied, the run trains" || bad "clusters with auto"
expect_input_error "late_dropout without secagg is refused" "[secagg] late_dropout needs [secagg] enabled = on" \
    $MPIRUN -np 2 "$FEDHPC" run "$T/p.ini" secagg.late_dropout=0.2 output.dir="$T/x4"
# 3. late dropouts: their inputs were sent, so they are in the sum; the other survivors unmask.
#    The plain run excludes the early dropouts only (same dropout stream), so its model is the one
#    over the same contributing clients
run 3 late secagg.dropout=0.1 secagg.late_dropout=0.3 secagg.enabled=on secagg.threshold=0.25 \
    secagg.transcript="$T/tr/late_transcript.h5"
al=0 an=0
for r in 1 2 3; do
    al=$((al + $(ones "$T/tr/late_transcript.h5" "/round_0000000$r/alive")))
    an=$((an + $(ones "$T/tr/late_transcript.h5" "/round_0000000$r/answered")))
done
ab=$(colsum "$T/late/metrics.csv" secagg_aborted)
if [ "$an" -lt "$al" ] && [ "$ab" = 0 ] && same_model "$T/plain/model.h5" "$T/late/model.h5"; then
    ok "30% late dropouts (-np 3): $((al - an)) of $al survivors did not answer, no round aborted, model = plain run's"
else bad "late dropouts: survivors $al, answered $an, aborted $ab, or the model differs from the plain run's"; fi
# too many late dropouts: every round aborts, the model stays at its initialisation
run 2 lateab secagg.late_dropout=0.8 secagg.enabled=on secagg.threshold=0.5 train.rounds=2
run 2 init train.lr=0 train.rounds=1
ab=$(colsum "$T/lateab/metrics.csv" secagg_aborted) dr=$(colsum "$T/lateab/metrics.csv" dropped)
[ "$ab" = 2 ] && [ "$dr" = 0 ] && same_model "$T/lateab/model.h5" "$T/init/model.h5" &&
    ok "80% late dropouts, t = 50%: both rounds aborted (no early dropouts), model unchanged" ||
    bad "too many late dropouts: aborted '$ab', dropped '$dr', or the model moved"
finish secagg_layout
