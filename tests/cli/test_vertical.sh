#!/bin/sh
# Vertical FL (docs/vertical.md): prepare --vertical, PSI at each party, vertical LR equal to the
# centralized LR to 1e-6 on the loss, the same results for any -np, exact resume, bad input.
# Small data: the first 600 customers of wa_churn, 512-bit Paillier keys (test-only size).
#   sh tests/cli/test_vertical.sh      Last line: "vertical: N passed, N failed".
. "$(dirname "$0")/lib.sh"
echo "vertical FL tests"

head -601 data/wa_churn.csv >"$T/wa.csv"
cat >"$T/cols.txt" <<'EOF'
# telco: usage / service columns, and the label
0: churn tenure phone_service multiple_lines internet_service online_security online_backup device_protection
0: tech_support streaming_tv streaming_movies contract monthly_charges total_charges
# bank / retailer: demographic and payment columns
1: female senior_citizen partner dependents paperless_billing payment_method
EOF
P="csv:$T/wa.csv --label churn --positive Yes"
check "prepare --vertical 2 with --party-columns" $FEDHPC prepare $P --vertical 2 --party-columns "$T/cols.txt" --seed 5 --overlap 0.8 --out "$T/v2.h5"
check "prepare --vertical 3 (seeded column split)" $FEDHPC prepare $P --vertical 3 --seed 7 --overlap 0.9 --out "$T/v3.h5"
VT="--steps 6 --lr 0.5 --key-bits 512"

# 1. the 1e-6 equality: vertical LR (2 parties, PSI, masks, Paillier) vs centralized LR on the joined columns
check "vertical LR, 2 parties on 2 ranks" $MPIRUN -np 2 $FEDHPC vertical train "$T/v2.h5" --parties 2 --out "$T/a" $VT
check "centralized LR on the joined columns" $FEDHPC vertical central "$T/v2.h5" --parties 2 --out "$T/c" $VT
close() { # close A B: same steps, |loss difference| <= 1e-6 at every step, and some training happened
    awk -F, 'NR == FNR { l[$1] = $2; next } FNR > 1 { n++; d = $2 - l[$1]; if (d < 0) d = -d; if (d > m) m = d; if ($1 > 0 && $2 < first) dec = 1 }
             FNR == 2 { first = $2 } END { printf "max |loss difference| %.3g over %d steps\n", m, n; exit !(n == 7 && m <= 1e-6 && dec) }' "$1" "$2"
}
if msg=$(close "$T/c/metrics.csv" "$T/a/metrics.csv"); then ok "vertical = centralized LR to 1e-6 ($msg)"; else bad "vertical vs centralized: $msg"; fi
check "vertical LR, 3 parties on 3 ranks" $MPIRUN -np 3 $FEDHPC vertical train "$T/v3.h5" --parties 3 --out "$T/a3" $VT
check "centralized LR, 3 parties joined" $FEDHPC vertical central "$T/v3.h5" --parties 3 --out "$T/c3" $VT
if msg=$(close "$T/c3/metrics.csv" "$T/a3/metrics.csv"); then ok "3 parties (pairwise masks): vertical = centralized to 1e-6 ($msg)"; else bad "3 parties: $msg"; fi

# 2. PSI: every party ends with exactly the common ids (the plain join of the reference), in one order
for d in a a3; do
    c=$([ $d = a ] && echo c || echo c3); k=$([ $d = a ] && echo 1 || echo 2)
    n=$(wc -l <"$T/$c/common.txt")
    good=1
    for p in $(seq 0 $k); do cmp -s "$T/$d/party$p.common.txt" "$T/$c/common.txt" || good=0; done
    rows0=$(h5dump -a /rows "$T/$(echo $d | sed 's/a3/v3/; s/^a$/v2/').party0.h5" 2>/dev/null | awk '/\(0\)/ { print $2 }')
    [ $good = 1 ] && [ "$n" -gt 50 ] && [ "$n" -lt "${rows0:-0}" ] && ok "PSI ($((k + 1)) parties): each party holds exactly the $n common ids (party 0 has $rows0)" ||
        bad "PSI ($((k + 1)) parties): common ids differ from the plain join (n=$n, rows0=$rows0)"
done

# 3. the same results for any -np: extra ranks take no part
check "3 parties on 4 ranks" $MPIRUN -np 4 $FEDHPC vertical train "$T/v3.h5" --parties 3 --out "$T/a3x" $VT
same=1
cmp -s "$T/a3/metrics.csv" "$T/a3x/metrics.csv" || same=0
for p in 0 1 2; do h5diff -q "$T/a3/party$p.model.h5" "$T/a3x/party$p.model.h5" || same=0; done
[ $same = 1 ] && ok "-np 3 and -np 4: bit-identical losses and party models" || bad "-np 3 vs 4 differ"

# 4. exact resume: stop after 3 steps with a checkpoint, resume to 6
check "stop after step 3" $MPIRUN -np 2 $FEDHPC vertical train "$T/v2.h5" --parties 2 --out "$T/r" $VT --checkpoint-every 3 --stop-after 3
check "resume to step 6" $MPIRUN -np 2 $FEDHPC vertical train "$T/v2.h5" --parties 2 --out "$T/r" $VT --resume
same=1
cmp -s "$T/a/metrics.csv" "$T/r/metrics.csv" || same=0
for p in 0 1; do h5diff -q "$T/a/party$p.model.h5" "$T/r/party$p.model.h5" || same=0; done
[ $same = 1 ] && ok "resume: bit-identical losses and party models" || bad "resume differs from the uninterrupted run"

# 5. split NN: within 1 AUC point of the same network trained centrally; -np; resume
SN="--model splitnn --steps 40 --lr 0.3 --hidden 8 --seed 3"
check "split NN, 2 parties on 2 ranks" $MPIRUN -np 2 $FEDHPC vertical train "$T/v2.h5" --parties 2 --out "$T/s" $SN
check "split NN, 2 parties on 3 ranks" $MPIRUN -np 3 $FEDHPC vertical train "$T/v2.h5" --parties 2 --out "$T/sx" $SN
check "split NN, centralized on the joined columns" $FEDHPC vertical central "$T/v2.h5" --parties 2 --out "$T/sc" $SN
a=$(tail -n 1 "$T/s/metrics.csv" | cut -d, -f3); b=$(tail -n 1 "$T/sc/metrics.csv" | cut -d, -f3); a0=$(sed -n 2p "$T/s/metrics.csv" | cut -d, -f2); a1=$(tail -n 1 "$T/s/metrics.csv" | cut -d, -f2)
awk -v a="$a" -v b="$b" -v l0="$a0" -v l1="$a1" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.01 && a > 0.7 && l1 < l0 - 0.05) }' &&
    ok "split NN test AUC $a vs centralized $b (within 1 point; loss $a0 -> $a1)" || bad "split NN AUC $a vs centralized $b (loss $a0 -> $a1)"
same=1
cmp -s "$T/s/metrics.csv" "$T/sx/metrics.csv" || same=0
for p in 0 1; do h5diff -q "$T/s/party$p.model.h5" "$T/sx/party$p.model.h5" || same=0; done
[ $same = 1 ] && ok "split NN -np 2 and -np 3: bit-identical" || bad "split NN -np 2 vs 3 differ"
check "split NN: stop after step 20" $MPIRUN -np 2 $FEDHPC vertical train "$T/v2.h5" --parties 2 --out "$T/sr" $SN --stop-after 20
check "split NN: resume to step 40" $MPIRUN -np 2 $FEDHPC vertical train "$T/v2.h5" --parties 2 --out "$T/sr" $SN --resume
same=1
cmp -s "$T/s/metrics.csv" "$T/sr/metrics.csv" || same=0
for p in 0 1; do h5diff -q "$T/s/party$p.model.h5" "$T/sr/party$p.model.h5" || same=0; done
[ $same = 1 ] && ok "split NN resume: bit-identical" || bad "split NN resume differs"

# 6. federated transfer learning: B scores its customers that A lacks
check "prepare with more own customers at B" $FEDHPC prepare $P --vertical 2 --party-columns "$T/cols.txt" --seed 5 --overlap 0.6 --own-frac 0.3 --out "$T/f.h5"
FT="--model ftl --steps 40 --lr 0.3 --hidden 8"
check "FTL on 2 ranks" $MPIRUN -np 2 $FEDHPC vertical train "$T/f.h5" --parties 2 --out "$T/ftl" $FT
check "FTL baselines (B alone, centralized)" $FEDHPC vertical central "$T/f.h5" --parties 2 --out "$T/ftl" $FT
f=$(tail -n 1 "$T/ftl/ftl.csv"); nb=$(grep -c . "$T/ftl/ftl_baselines.csv")
echo "$f" | awk -F, '{ exit !($1 == "ftl" && $2 > 20 && $3 > 0.55 && $3 <= 1) }' && [ "$nb" = 3 ] &&
    ok "FTL scores B's own customers: $f; baselines: $(tail -n 2 "$T/ftl/ftl_baselines.csv" | tr '\n' ' ')" || bad "FTL table: '$f', baselines $nb lines"
expect_input_error "FTL with 3 parties" "exactly 2 parties" $MPIRUN -np 3 $FEDHPC vertical train "$T/v3.h5" --parties 3 --out "$T/m" $FT

# 7. bad input: clear message, exit 2, once
printf '0: churn tenure contract\n1: tenure female\n' >"$T/overlap.txt"
expect_input_error "overlapping column assignments" "overlapping column assignments" \
    $MPIRUN -np 2 $FEDHPC prepare $P --vertical 2 --party-columns "$T/overlap.txt" --seed 1 --out "$T/bad.h5"
printf '0: churn tenure contract\n1: churn female\n' >"$T/label2.txt"
expect_input_error "a label column at two parties" "a label column at two parties" \
    $FEDHPC prepare $P --vertical 2 --party-columns "$T/label2.txt" --seed 1 --out "$T/bad.h5"
$FEDHPC prepare $P --vertical 2 --party-columns "$T/cols.txt" --seed 6 --out "$T/other.h5" >/dev/null
cp "$T/v2.party0.h5" "$T/mix.party0.h5"
cp "$T/other.party1.h5" "$T/mix.party1.h5"
expect_input_error "party files whose ids do not match" "party files whose ids do not match" \
    $MPIRUN -np 2 $FEDHPC vertical train "$T/mix.h5" --parties 2 --out "$T/m" $VT
expect_input_error "fewer ranks than parties" "need at least 3 ranks" \
    $MPIRUN -np 2 $FEDHPC vertical train "$T/v3.h5" --parties 3 --out "$T/m" $VT
expect_input_error "resume without checkpoints" "party0.ckpt.h5" \
    $MPIRUN -np 2 $FEDHPC vertical train "$T/v2.h5" --parties 2 --out "$T/none" $VT --resume

finish vertical
