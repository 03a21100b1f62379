# Stragglers, partial work and asynchronous FL on the virtual clock (issue 7): wait_all is the
# plain engine; every mode gives bit-identical models for -np 1, 2 and 4; the issue's
# comparisons at CI scale (thresholds from measured runs, see docs/results.md); exact resume from a
# mid-run checkpoint with in-flight clients; plot against virtual time; bad input.
. "$(dirname "$0")/lib.sh"
echo "async tests"
FM=data/fmnist_dir05_c100.h5
[ -f "$FM" ] || { bad "missing $FM (run make data)"; finish async; exit 1; }

cat > "$T/a.ini" <<INI
[data]
file = $FM
[model]
type = mlp
hidden = 16
[train]
rounds = 4
clients_per_round = 10
batch_size = 10
lr = 0.05
eval_every = 1
[output]
progress = off
[system]
speed_sigma = 1
[async]
mode = wait_all
concurrency = 10
buffer = 5
deadline = 60
INI
run() { # run NP DIR overrides...
    np=$1; d=$2; shift 2
    $MPIRUN -np "$np" "$FEDHPC" run "$T/a.ini" output.dir="$T/$d" "$@" >"$T/log.$d" 2>&1 ||
        { bad "run $d (-np $np $*)"; tail -5 "$T/log.$d"; }
}
# first virtual time at which the test accuracy reaches $2 (empty if never)
t_reach() { awk -F, -v a="$2" 'NR>1 && $4!="nan" && $4+0>=a {print $2; exit}' "$1/async.csv"; }
# mean of a column over the last 5 evaluated rows
last5() { awk -F, -v c="$2" 'NR==1{for(i=1;i<=NF;i++) if($i==c) k=i; next} $k!="nan"{v[n++]=$k} END{for(i=n-5;i<n;i++) s+=v[i]; print s/5}' "$1/async.csv"; }

# 1. wait_all on the virtual clock is the plain engine (same sample, shuffles, aggregation)
run 1 off async.mode=off
run 1 wa1
run 2 wa2
same_model "$T/off/model.h5" "$T/wa1/model.h5" && ok "wait_all = plain FedAvg (bit-identical)" || bad "wait_all differs from plain FedAvg"

# 2. every mode: bit-identical for -np 1, 2, 4 (updates applied in virtual-time order)
for mode in wait_all drop partial fedasync fedbuff; do
    r=4
    case $mode in fedasync) r=12 ;; fedbuff) r=4 ;; esac
    for np in 1 2 4; do run $np "$mode.np$np" async.mode=$mode train.rounds=$r; done
    for np in 2 4; do
        same_model "$T/$mode.np1/model.h5" "$T/$mode.np$np/model.h5" && ok "$mode: -np $np bit-identical to -np 1" ||
            bad "$mode: -np $np differs from -np 1"
    done
    if same_csv 1,2,4- "$T/$mode.np1/async.csv" "$T/$mode.np4/async.csv"; then
        ok "$mode: async.csv (all but wall time) identical for -np 1 and 4"
    else bad "$mode: async.csv differs between -np 1 and 4"; fi
done
# staleness: async updates are stale, synchronous ones never
st=$(awk -F, 'NR>1 && $9+0>m {m=$9} END{print m+0}' "$T/fedasync.np1/async.csv")
[ "$st" -gt 0 ] && ok "fedasync: stale updates seen (max staleness $st)" || bad "fedasync: no staleness recorded"
st=$(awk -F, 'NR>1 && $9+0>m {m=$9} END{print m+0}' "$T/wait_all.np1/async.csv")
[ "$(wc -l <"$T/wait_all.np1/async.csv")" -ge 2 ] && [ "$st" = 0 ] && ok "wait_all: staleness 0" || bad "wait_all: staleness $st (or no async.csv)"

# 3. the issue's comparisons at CI scale (measured: wait_all reaches 0.65 at virtual time 1153,
#    FedAsync and FedBuff at 312; see docs/results.md for the full-size runs)
run 1 cmp_wa train.rounds=8
run 1 cmp_fa async.mode=fedasync train.rounds=60 train.eval_every=5
run 1 cmp_fb async.mode=fedbuff train.rounds=12
tw=$(t_reach "$T/cmp_wa" 0.65); ta=$(t_reach "$T/cmp_fa" 0.65); tb=$(t_reach "$T/cmp_fb" 0.65)
echo "       time to 65% accuracy: wait_all ${tw:-never}, fedasync ${ta:-never}, fedbuff ${tb:-never}"
if [ -n "$tw" ] && [ -n "$ta" ] && awk -v a="$ta" -v w="$tw" 'BEGIN{exit !(a <= w / 2)}'; then
    ok "fedasync reaches 65% in at most half the virtual time of wait_all"
else bad "fedasync not twice as fast as wait_all to 65%"; fi
if [ -n "$tw" ] && [ -n "$tb" ] && awk -v a="$tb" -v w="$tw" 'BEGIN{exit !(a <= w / 2)}'; then
    ok "fedbuff reaches 65% in at most half the virtual time of wait_all"
else bad "fedbuff not twice as fast as wait_all to 65%"; fi
# same deadline (30), drop vs partial (FedNova, p_i = samples processed), means over seeds 1-3 of
# the last-5-round accuracy and fast-minus-slow quartile gap after 15 rounds. Measured over
# seeds 1-6: partial wins on every seed at deadline 30 (mean 0.733 vs 0.702, gap 0.014 vs 0.025);
# at deadline 60 only on average (0.745 vs 0.732, 4 of 6 seeds), so that is not asserted.
ad=0; ap=0; gd=0; gp=0; sd=0; sp=0
for s in 1 2 3; do
    run 1 cmp_dr$s async.mode=drop async.deadline=30 train.rounds=15 train.seed=$s
    run 1 cmp_pa$s async.mode=partial async.deadline=30 train.rounds=15 train.seed=$s
    ad=$(awk -v a="$ad" -v b="$(last5 "$T/cmp_dr$s" accuracy)" 'BEGIN{print a + b / 3}')
    ap=$(awk -v a="$ap" -v b="$(last5 "$T/cmp_pa$s" accuracy)" 'BEGIN{print a + b / 3}')
    gd=$(awk -v a="$gd" -v b="$(last5 "$T/cmp_dr$s" gap_fast_minus_slow)" 'BEGIN{print a + b / 3}')
    gp=$(awk -v a="$gp" -v b="$(last5 "$T/cmp_pa$s" gap_fast_minus_slow)" 'BEGIN{print a + b / 3}')
    # updates applied from the slowest quartile
    sd=$((sd + $(awk -F, '$3=="slow"{s+=$6} END{print s+0}' "$T/cmp_dr$s/participation.csv")))
    sp=$((sp + $(awk -F, '$3=="slow"{s+=$6} END{print s+0}' "$T/cmp_pa$s/participation.csv")))
done
echo "       deadline 30, 3 seeds: drop acc $ad gap $gd | partial acc $ap gap $gp"
awk -v p="$ap" -v d="$ad" 'BEGIN{exit !(p > d)}' && ok "partial beats drop in mean accuracy ($ap > $ad)" ||
    bad "partial does not beat drop ($ap vs $ad)"
awk -v p="$gp" -v d="$gd" 'BEGIN{exit !(p < d)}' && ok "partial narrows the slow-fast gap ($gp < $gd)" ||
    bad "partial does not narrow the gap ($gp vs $gd)"
[ "$sp" -gt "$sd" ] && ok "slow quartile updates applied: partial $sp > drop $sd" || bad "slow quartile: partial $sp, drop $sd"
# the other partial weightings run, differ from the default, and stay bit-identical for -np 2
for pw in data none; do
    run 1 "pw_$pw.np1" async.mode=partial async.partial_weights=$pw
    run 2 "pw_$pw.np2" async.mode=partial async.partial_weights=$pw
    same_model "$T/pw_$pw.np1/model.h5" "$T/pw_$pw.np2/model.h5" && ok "partial_weights=$pw: -np 2 bit-identical" ||
        bad "partial_weights=$pw: -np 2 differs"
    differs "$T/pw_$pw.np1/model.h5" "$T/partial.np1/model.h5" && ok "partial_weights=$pw differs from work" ||
        bad "partial_weights=$pw gives the default's model (or h5diff failed)"
done
# availability periods and communication cost slow the clock down, deterministically
run 1 avail1 async.mode=fedbuff system.on=50 system.off=50 system.comm_per_byte=0.0001
run 2 avail2 async.mode=fedbuff system.on=50 system.off=50 system.comm_per_byte=0.0001
same_model "$T/avail1/model.h5" "$T/avail2/model.h5" && ok "availability + comm cost: -np 2 bit-identical" ||
    bad "availability: -np 2 differs"
v0=$(csv_col_last "$T/fedbuff.np1/async.csv" virtual_time); v1=$(csv_col_last "$T/avail1/async.csv" virtual_time)
nums "$v0" "$v1" && awk -v a="$v1" -v b="$v0" 'BEGIN{exit !(a > b)}' && ok "off periods and comm cost take virtual time ($v0 -> $v1)" ||
    bad "availability did not slow the clock ($v0 -> $v1)"

# 4. exact resume with clients in flight: stop after 6 updates (checkpoint every 3), resume with
#    another rank count, compare with the uninterrupted run
for mode in fedbuff fedasync partial; do
    r=10; [ $mode = fedasync ] && r=20
    run 2 "full.$mode" async.mode=$mode train.rounds=$r
    run 2 "part.$mode" async.mode=$mode train.rounds=$((r / 2)) checkpoint.every=$((r / 2)) checkpoint.dir="$T/ck.$mode"
    run 4 "part.$mode" async.mode=$mode train.rounds=$r checkpoint.dir="$T/ck.$mode" --resume
    grep -q "resuming after server update $((r / 2))" "$T/log.part.$mode" && ok "$mode: resumed after update $((r / 2))" ||
        bad "$mode: no resume notice"
    same_model "$T/full.$mode/model.h5" "$T/part.$mode/model.h5" && ok "$mode: resumed run (-np 2 then 4) = uninterrupted" ||
        bad "$mode: resumed model differs"
    if same_csv 1,2,4- "$T/full.$mode/async.csv" "$T/part.$mode/async.csv"; then
        ok "$mode: async.csv continues exactly"
    else bad "$mode: async.csv differs after resume"; fi
done

# 5. client-level DP with FedBuff: clip each update to C, noise sigma*C/K on each buffer of K,
#    accounted as the sampled Gaussian with q = K/C per applied buffer (async.csv epsilon) and by
#    the no-sampling bound from the busiest client (epsilon_max_client), which is the one
#    enforced and reported in metrics.csv by default (issue 12: [privacy] fedbuff_accounting);
#    -np 1/2/4 identical, epsilon as `fedhpc privacy` computes it, exact resume, the budget
#    stops cleanly on the chosen figure
DP="async.mode=fedbuff privacy.mode=client privacy.clip=1 privacy.noise=1 privacy.delta=1e-5"
for np in 1 2 4; do run $np "dp.np$np" $DP train.rounds=12; done
for np in 2 4; do
    same_model "$T/dp.np1/model.h5" "$T/dp.np$np/model.h5" && ok "dp-fedbuff: -np $np bit-identical to -np 1" ||
        bad "dp-fedbuff: -np $np differs"
done
e=$(csv_col_last "$T/dp.np1/async.csv" epsilon)
want=$("$FEDHPC" privacy --sample-rate 0.05 --steps 12 --noise 1 --delta 1e-5 | sed 's/^epsilon = \([0-9.]*\).*/\1/')
awk -v a="$e" -v b="$want" 'BEGIN{exit !(a - b < 1e-3 && b - a < 1e-3)}' && ok "dp-fedbuff: epsilon $e = q 0.05, 12 steps ($want)" ||
    bad "dp-fedbuff: epsilon $e, expected $want"
# the busiest client joined n buffers (each at most once): epsilon of n unsampled Gaussian steps
n=$(awk -F, 'NR>1 && $6+0>m {m=$6} END{print m+0}' "$T/dp.np1/participation.csv")
e1=$(csv_col_last "$T/dp.np1/async.csv" epsilon_max_client)
want=$("$FEDHPC" privacy --sample-rate 1 --steps "$n" --noise 1 --delta 1e-5 | sed 's/^epsilon = \([0-9.]*\).*/\1/')
awk -v a="$e1" -v b="$want" 'BEGIN{exit !(a - b < 1e-3 && b - a < 1e-3)}' &&
    ok "dp-fedbuff: epsilon_max_client $e1 = $n unsampled steps" || bad "dp-fedbuff: epsilon_max_client $e1, expected $want ($n steps)"
em=$(csv_col_last "$T/dp.np1/metrics.csv" epsilon)
[ -n "$e1" ] && [ "$em" = "$e1" ] && grep -q "fedbuff_accounting = bound" "$T/log.dp.np1" &&
    ok "dp-fedbuff: metrics.csv epsilon is the bound ($em), named at the start" ||
    bad "dp-fedbuff: metrics.csv epsilon '$em', bound '$e1' (or no accounting line)"
q=$(awk -F, 'NR==1{for(i=1;i<=NF;i++) k[$i]=i; next} {print $k["acc_slow_q"] "," $k["acc_fast_q"]}' "$T/dp.np1/async.csv" | sort -u)
[ "$q" = "nan,nan" ] && ok "dp-fedbuff: no un-noised quartile accuracies in async.csv" || bad "dp-fedbuff: quartile accuracies '$q'"
run 2 dp.full $DP train.rounds=10
run 2 dp.part $DP train.rounds=5 checkpoint.every=5 checkpoint.dir="$T/ck.dp"
run 4 dp.part $DP train.rounds=10 checkpoint.dir="$T/ck.dp" --resume
same_model "$T/dp.full/model.h5" "$T/dp.part/model.h5" && ok "dp-fedbuff: resumed run (-np 2 then 4) = uninterrupted" ||
    bad "dp-fedbuff: resumed model differs"
same_csv 1,2,4- "$T/dp.full/async.csv" "$T/dp.part/async.csv" &&
    ok "dp-fedbuff: async.csv (epsilon too) continues exactly" || bad "dp-fedbuff: async.csv differs after resume"
# sampled: epsilon after 6 buffers 1.984, after 7 above 2
run 1 dp.budget $DP train.rounds=12 privacy.epsilon_budget=2 privacy.fedbuff_accounting=sampled
r=$(csv_col_last "$T/dp.budget/async.csv" round); e=$(csv_col_last "$T/dp.budget/async.csv" epsilon)
[ "$r" = 6 ] && awk -v e="$e" 'BEGIN{exit !(e <= 2)}' && grep -q "fedbuff_accounting = sampled" "$T/log.dp.budget" &&
    ok "dp-fedbuff, sampled accounting: budget 2 stops after buffer $r (epsilon $e)" ||
    bad "dp-fedbuff, sampled accounting: budget 2: $r buffers, epsilon $e"
# bound (default): one buffer is 4.73 (sigma 1), two 7.08; budget 5 stops before the first
# client would join a second buffer, after 5 buffers (the sampled figure stays below 2 for 12)
run 1 dp.bbound $DP train.rounds=12 privacy.epsilon_budget=5
r=$(csv_col_last "$T/dp.bbound/async.csv" round); e=$(csv_col_last "$T/dp.bbound/async.csv" epsilon_max_client)
em=$(csv_col_last "$T/dp.bbound/metrics.csv" epsilon)
[ "$r" = 5 ] && [ "$em" = "$e" ] && awk -v e="$e" 'BEGIN{exit !(e <= 5)}' &&
    ok "dp-fedbuff, bound accounting (default): budget 5 stops after buffer $r (epsilon_max_client $e)" ||
    bad "dp-fedbuff, bound accounting: budget 5: $r buffers, epsilon_max_client $e, metrics.csv epsilon $em"

# 5b. secure aggregation with FedBuff (issue 11): the buffer is the secure-aggregation group,
#     formed when it fills; the hosts keep their updates until then and rank 0 receives only the
#     masked inputs. Same fixed-point words, exact sum: bit-identical to plain FedBuff for any
#     rank count (the run "fedbuff.np1" above is plain FedBuff with 4 buffers)
SA="async.mode=fedbuff secagg.enabled=on"
for np in 1 2 4; do run $np "sa.np$np" $SA train.rounds=4 secagg.transcript="$T/sa.np$np.tr.h5"; done
for np in 1 2 4; do
    same_model "$T/fedbuff.np1/model.h5" "$T/sa.np$np/model.h5" &&
        ok "fedbuff + secagg: -np $np bit-identical to plain fedbuff -np 1" || bad "fedbuff + secagg: -np $np differs"
done
same_csv 1,2,4- "$T/fedbuff.np1/async.csv" "$T/sa.np4/async.csv" && ok "fedbuff + secagg: async.csv as plain fedbuff" ||
    bad "fedbuff + secagg: async.csv differs from plain fedbuff"
# one round a released buffer (buffer number = version + 1), K = 5 masked inputs in each
n=$(h5ls "$T/sa.np2.tr.h5" 2>/dev/null | grep -c '^round_')
m=$(h5ls "$T/sa.np2.tr.h5/round_00000004/masked_input" 2>/dev/null | grep -c '{5, ')
[ "$n" = 4 ] && [ "$m" = 1 ] && ok "fedbuff + secagg: 4 rounds of 5 masked inputs in the transcript" ||
    bad "fedbuff + secagg: transcript has $n rounds (masked_input of round 4: $m)"
# stale updates discarded at the hosts (max_staleness 0), DP-FedBuff clipping at the hosts
run 1 sa.stale.plain async.mode=fedbuff async.max_staleness=0 train.rounds=5
run 3 sa.stale $SA async.max_staleness=0 train.rounds=5
d=$(awk -F, 'NR>1{s+=$7} END{print s+0}' "$T/sa.stale/async.csv")
[ "$d" -gt 0 ] && same_model "$T/sa.stale.plain/model.h5" "$T/sa.stale/model.h5" &&
    ok "fedbuff + secagg: $d stale updates dropped at the hosts, -np 3 bit-identical" || bad "fedbuff + secagg, max_staleness 0: differs ($d discarded)"
run 4 sa.dp $DP secagg.enabled=on train.rounds=12
same_model "$T/dp.np1/model.h5" "$T/sa.dp/model.h5" && ok "dp-fedbuff + secagg (clipped at the hosts): -np 4 bit-identical to dp-fedbuff" ||
    bad "dp-fedbuff + secagg differs from dp-fedbuff"
# exact resume: the updates held on hosts are recomputed like any job in flight
run 2 sa.full $SA train.rounds=10
run 2 sa.part $SA train.rounds=5 checkpoint.every=5 checkpoint.dir="$T/ck.sa"
run 1 sa.part $SA train.rounds=10 checkpoint.dir="$T/ck.sa" --resume
grep -q "resuming after server update 5" "$T/log.sa.part" && same_model "$T/full.fedbuff/model.h5" "$T/sa.part/model.h5" &&
    same_model "$T/sa.full/model.h5" "$T/sa.part/model.h5" &&
    ok "fedbuff + secagg: resumed run (-np 2 then 1) = uninterrupted = plain fedbuff" || bad "fedbuff + secagg: resumed model differs"
# dropouts: the dropped clients' updates are not in the sum; the run completes
run 2 sa.drop $SA secagg.dropout=0.2 train.rounds=4 secagg.transcript="$T/sa.drop.tr.h5"
a=$(h5dump -d /round_00000001/alive -d /round_00000002/alive -d /round_00000003/alive -d /round_00000004/alive \
    "$T/sa.drop.tr.h5" 2>/dev/null | grep -A1 'DATA {' | grep '):' | sed 's/.*)://' | grep -o '0' | wc -l)
[ -s "$T/sa.drop/model.h5" ] && [ "$a" -gt 0 ] && differs "$T/fedbuff.np1/model.h5" "$T/sa.drop/model.h5" &&
    ok "fedbuff + secagg, dropout 0.2: completes without the $a dropped updates" || bad "fedbuff + secagg, dropout 0.2 ($a dropped)"
# what the aggregator receives shows no client's update: the transcript checker of
# test_privacy_run.sh (tests/unit/test_secagg_transcript.c) on FedBuff's transcript (-np 3, 10%
# dropout), and the control run with masks off, where it must read every update. The "plain"
# aggregates are the run's own truth record (the plain async loop writes none; the model
# bit-identity to plain FedBuff is checked above)
TESTS="${FEDHPC_TESTS:-$(dirname "$FEDHPC")/fedhpc_tests}"
mkdir -p "$T/satr" "$T/satrc"
TR="$SA secagg.dropout=0.1 secagg.threshold=0.25"
run 3 sa.tr $TR secagg.transcript="$T/satr/transcript.h5" secagg.truth="$T/satr/truth.h5"
run 2 sa.trc $TR secagg.masks=off secagg.transcript="$T/satrc/transcript.h5" secagg.truth="$T/satrc/truth.h5"
cp "$T/satr/truth.h5" "$T/satr/plain_truth.h5"; cp "$T/satrc/truth.h5" "$T/satrc/plain_truth.h5"
same_model "$T/sa.tr/model.h5" "$T/sa.trc/model.h5" && ok "fedbuff + secagg, dropout 0.1: masks-off control (-np 2) = -np 3" ||
    bad "fedbuff + secagg: masks-off control differs"
FEDHPC_SA_TRANSCRIPT="$T/satr" FEDHPC_SA_EXPECT=masked "$TESTS" secagg/transcript_check >"$T/tcheck.out" 2>&1 &&
    ok "fedbuff + secagg: transcript (-np 3, 10% dropout) shows no client's update" ||
    { bad "fedbuff + secagg: transcript check (masked)"; tail -8 "$T/tcheck.out" | sed 's/^/       | /'; }
FEDHPC_SA_TRANSCRIPT="$T/satrc" FEDHPC_SA_EXPECT=clear "$TESTS" secagg/transcript_check >"$T/tcheck.out" 2>&1 &&
    ok "fedbuff + secagg: the checker reads every update of the masks-off control" ||
    { bad "fedbuff + secagg: transcript check (control)"; tail -8 "$T/tcheck.out" | sed 's/^/       | /'; }
# the synchronous modes: a round's accepted updates are one secure-aggregation round once all are
# in (the "$mode.np1" runs above are the plain ones); resume across rank counts
for mode in wait_all drop partial; do
    run 3 "sa.$mode" async.mode=$mode secagg.enabled=on
    same_model "$T/$mode.np1/model.h5" "$T/sa.$mode/model.h5" && ok "$mode + secagg: -np 3 bit-identical to plain $mode" ||
        bad "$mode + secagg differs from plain $mode"
done
run 2 sa.pr.part async.mode=partial secagg.enabled=on train.rounds=2 checkpoint.every=2 checkpoint.dir="$T/ck.sapr"
run 1 sa.pr.part async.mode=partial secagg.enabled=on checkpoint.dir="$T/ck.sapr" --resume
same_model "$T/partial.np1/model.h5" "$T/sa.pr.part/model.h5" && ok "partial + secagg: resumed (-np 2 then 1) = plain partial" ||
    bad "partial + secagg: resumed model differs"
run 2 sa.dr.drop async.mode=drop secagg.enabled=on secagg.dropout=0.3
d=$(awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i=="dropped") k=i; next} {s+=$k} END{print s+0}' "$T/sa.dr.drop/metrics.csv")
[ -s "$T/sa.dr.drop/model.h5" ] && [ "$d" -gt 0 ] && ok "drop + secagg, dropout 0.3: completes ($d dropped in metrics.csv)" ||
    bad "drop + secagg, dropout 0.3 ($d dropped)"

# 6. plot accuracy against virtual time for several runs
"$FEDHPC" plot --x virtual_time "$T/cmp_wa" "$T/cmp_fa" "$T/cmp_fb" --out "$T/vt.png" >"$T/out" 2>&1 &&
    [ -s "$T/vt.png" ] && ok "plot --x virtual_time draws a PNG" || { bad "plot --x virtual_time"; cat "$T/out"; }
expect_input_error "plot of a missing dir" "plot '$T/nonexistent': No such file or directory (expected a directory" \
    "$FEDHPC" plot --x virtual_time "$T/nonexistent"
mkdir -p "$T/plain"
expect_input_error "plot of a non-async dir" "expected the async.csv" "$FEDHPC" plot --x virtual_time "$T/plain"

# 7. bad input: one message, exit 2, on every rank
expect_input_error "drop without a deadline" "[async] deadline" $MPIRUN -np 2 "$FEDHPC" run "$T/a.ini" \
    output.dir="$T/bad" async.mode=drop async.deadline=0
expect_input_error "unknown mode" "[async] mode" $MPIRUN -np 2 "$FEDHPC" run "$T/a.ini" output.dir="$T/bad" async.mode=fast
expect_input_error "unknown partial weights" "[async] partial_weights" $MPIRUN -np 2 "$FEDHPC" run "$T/a.ini" \
    output.dir="$T/bad" async.mode=partial async.partial_weights=rows
expect_input_error "fedasync with fedadam" "fedasync" $MPIRUN -np 2 "$FEDHPC" run "$T/a.ini" output.dir="$T/bad" \
    async.mode=fedasync fl.algorithm=fedadam
expect_input_error "dp with fedasync" "only mode = client with [async] mode = fedbuff" $MPIRUN -np 2 "$FEDHPC" run "$T/a.ini" output.dir="$T/bad" \
    async.mode=fedasync privacy.mode=client
expect_input_error "sample-level dp with fedbuff" "[privacy] mode" $MPIRUN -np 2 "$FEDHPC" run "$T/a.ini" \
    output.dir="$T/bad" async.mode=fedbuff privacy.mode=sample
expect_input_error "secagg with buffer 1" "[async] buffer = 1: with [secagg]" $MPIRUN -np 2 "$FEDHPC" run "$T/a.ini" \
    output.dir="$T/bad" async.mode=fedbuff secagg.enabled=on async.buffer=1
expect_input_error "secagg with fedasync" "a sum of one update is the update itself" $MPIRUN -np 2 "$FEDHPC" run "$T/a.ini" \
    output.dir="$T/bad" async.mode=fedasync secagg.enabled=on
expect_input_error "secagg dropout without secagg, fedbuff" "need [secagg] enabled = on" $MPIRUN -np 2 "$FEDHPC" run \
    "$T/a.ini" output.dir="$T/bad" async.mode=fedbuff secagg.dropout=0.2
expect_input_error "dp-fedbuff + secagg, distributed noise" "[privacy] placement = distributed: not with [async]" \
    $MPIRUN -np 2 "$FEDHPC" run "$T/a.ini" output.dir="$T/bad" $DP privacy.placement=distributed secagg.enabled=on
printf '0,1\n1,x\n' >"$T/speeds.csv"
expect_input_error "bad speeds CSV" "speeds.csv:2" $MPIRUN -np 2 "$FEDHPC" run "$T/a.ini" output.dir="$T/bad" \
    system.speeds="$T/speeds.csv"
finish async
