# Paillier aggregation ([he], docs/he.md) end to end on a small data set (lending_club, logreg,
# key_bits 1024): the model is bit-identical to the plain run's on -np 1, 2 and 4, with a
# dedicated aggregator (rank 0 holds no key), with SCAFFOLD across a checkpoint resume and with
# client-level DP (their sums go through the same stage); bad [he] settings are refused with
# exit 2 and one clear message.
. "$(dirname "$0")/lib.sh"
echo "he tests"
"$FEDHPC" prepare lending_club --clients 12 --partition iid --seed 1 --out "$T/lc.h5" >/dev/null || bad "prepare lending_club"
cat > "$T/p.ini" <<INI
[data]
file = $T/lc.h5
[model]
type = logreg
[train]
rounds = 3
clients_per_round = 8
batch_size = 20
lr = 0.05
[output]
progress = off
[he]
key_bits = 1024
INI
run() { runini "$T/p.ini" "$@"; }

run 1 plain
for np in 1 2 4; do
    run $np he$np he.enabled=on
    same_model "$T/plain/model.h5" "$T/he$np/model.h5" && ok "-np $np: [he] model = plain model, bit for bit" ||
        bad "-np $np: [he] model differs from the plain run's"
done
# the plain model did train (the comparison is not between two untouched initial models)
init_same=$(params "$T/plain/model.h5" | awk '$1 != 0' | wc -l)
[ "$init_same" -gt 0 ] && ok "plain model has $init_same nonzero parameters" || bad "plain model is all zeros"
# a dedicated aggregator (rank 0 holds no key), pack = 3, with client-level DP (central noise)
run 1 dpplain privacy.mode=client privacy.clip=1 privacy.noise=0.5
run 3 heded he.enabled=on secagg.dedicated_aggregator=on he.pack=3 privacy.mode=client privacy.clip=1 privacy.noise=0.5
same_model "$T/dpplain/model.h5" "$T/heded/model.h5" &&
    ok "-np 3, dedicated aggregator, pack = 3, client DP: [he] model = plain -np 1 model" ||
    bad "-np 3 dedicated aggregator with client DP: model differs"
# SCAFFOLD (two vectors a client), stopped after round 2 and resumed from its checkpoint (a new
# key after the resume: no HE state is saved, none is needed)
run 1 scplain fl.algorithm=scaffold train.rounds=4
run 2 schE fl.algorithm=scaffold he.enabled=on train.rounds=2 checkpoint.every=1
run 2 schE fl.algorithm=scaffold he.enabled=on train.rounds=4 checkpoint.every=1 --resume
grep -q "resuming after round 2" "$T/schE.log" && same_model "$T/scplain/model.h5" "$T/schE/model.h5" &&
    ok "SCAFFOLD, [he] -np 2, resumed after round 2 = plain -np 1, bit for bit" || bad "SCAFFOLD + resume: [he] model differs"

np2="$MPIRUN -np 2 $FEDHPC"
# 8 clients a round: slots of 64 + 3 bits, floor(1023 / 67) = 15 fit a 1024-bit plaintext
expect_input_error "pack beyond the bound" "[he] pack = 16 with key_bits = 1024: a slot holds a 64-bit word plus 3 headroom bits" \
    $np2 run "$T/p.ini" output.dir="$T/bad1" he.enabled=on he.pack=16
expect_input_error "he with secagg" "[he] enabled = on: not with [secagg] enabled = on" \
    $np2 run "$T/p.ini" output.dir="$T/bad2" he.enabled=on secagg.enabled=on
expect_input_error "key_bits not a multiple of 64" "[he] key_bits: key_bits must be a multiple of 64" \
    $np2 run "$T/p.ini" output.dir="$T/bad3" he.enabled=on he.key_bits=1100
# the cost bench (docs/he.md): one round three ways, exact; and the same round encrypted in pieces,
# stopped after 3 pieces and resumed from its state files (the long 1M x 3072-bit row is run so)
HB=$(dirname "$FEDHPC")/fedhpc_he_bench
if [ -x "$HB" ]; then
    $MPIRUN -np 2 "$HB" cost 3000 6 1024 >"$T/hb1.csv" 2>"$T/hb1.log"
    grep -q "exact=1" "$T/hb1.csv" && ok "he_bench cost: plain = secagg = [he] sum" || bad "he_bench cost: $(cat "$T/hb1.csv" "$T/hb1.log")"
    HE_COST_CHUNK=4 HE_COST_STOP=3 $MPIRUN -np 2 "$HB" cost 3000 6 1024 "$T/hbs" >"$T/hb2.csv" 2>"$T/hb2.log"
    rc=$?
    HE_COST_CHUNK=4 $MPIRUN -np 2 "$HB" cost 3000 6 1024 "$T/hbs" >"$T/hb3.csv" 2>"$T/hb3.log"
    [ $rc = 3 ] && [ ! -s "$T/hb2.csv" ] && grep -q "resuming .*: 12 of [0-9]* ciphertexts done" "$T/hb3.log" &&
        grep -q "exact=1,pieces=2" "$T/hb3.csv" && [ ! -e "$T/hbs.rank0" ] &&
        ok "he_bench cost, stopped after 3 pieces and resumed: exact, 2 pieces, state files removed" ||
        bad "he_bench resume: rc=$rc $(cat "$T/hb3.csv" "$T/hb2.log" "$T/hb3.log")"
else
    bad "$HB missing (make all)"
fi
finish he
