# [compress] end to end (docs/compression.md): every method gives a bit-identical model on -np
# 1, 2 and 4; a run with error feedback resumes exactly from a checkpoint (the residuals are in
# it) on another number of ranks; bytes_up is the encoded messages' size and smaller than
# uncompressed; top-k composes with secure aggregation (same model) and with client DP; what
# does not compose, and bad values, exit 2 with one message.
. "$(dirname "$0")/lib.sh"
echo "compression tests"
check "prepare credit_data 8 clients" "$FEDHPC" prepare credit_data --clients 8 --partition iid --seed 1 --out "$T/cd.h5"
cat >"$T/c.ini" <<INI
[data]
file = $T/cd.h5
[model]
type = mlp
hidden = 16
[train]
rounds = 6
clients_per_round = 5
batch_size = 32
lr = 0.1
eval_every = 3
[output]
progress = off
INI
# run NP DIR OVERRIDES...: -np 1 as a singleton (no mpirun: faster to start)
run() {
    np=$1; d=$2; shift 2
    if [ "$np" = 1 ]; then set -- "$FEDHPC" run "$T/c.ini" output.dir="$T/$d" "$@"
    else set -- $MPIRUN -np "$np" "$FEDHPC" run "$T/c.ini" output.dir="$T/$d" "$@"; fi
    "$@" >"$T/log" 2>&1 || { bad "run -np $np $d"; tail -5 "$T/log"; }
}
sum_col() { awk -F, -v c="$2" 'NR==1{for(i=1;i<=NF;i++) if($i==c) k=i; next} {s+=$k} END{printf "%.0f", s}' "$1"; }

run 2 none
NONE_BYTES=$(sum_col "$T/none/metrics.csv" bytes_up)
# P from the uncompressed count: 8 bytes (fixed point) a parameter a client
P=$(awk -F, 'NR==1{for(i=1;i<=NF;i++) h[$i]=i; next} NR==2{printf "%d", $h["bytes_up"] / 8 / $h["clients"]}' "$T/none/metrics.csv")

# name | overrides | expected bytes of one client's message (awk expression of P)
CASES='qsgd|compress.method=qsgd compress.bits=4 compress.bucket=64|4 * int((P + 63) / 64) + int((4 * P + 7) / 8)
topk_ef|compress.method=topk compress.fraction=0.05 compress.error_feedback=on|8 * int(0.05 * P + 0.5)
randk_ef|compress.method=randk compress.fraction=0.1 compress.error_feedback=on|4 * int(0.1 * P + 0.5)
sign_ef|compress.method=signsgd compress.error_feedback=on|4 + int((P + 7) / 8)
vote|compress.method=signsgd compress.vote=majority fl.server_lr=0.01|int((P + 7) / 8)'
while IFS='|' read -r name over expr; do
    # shellcheck disable=SC2086
    for np in 1 2 4; do run $np "${name}_$np" $over </dev/null; done
    if same_model "$T/${name}_1/model.h5" "$T/${name}_2/model.h5" && same_model "$T/${name}_1/model.h5" "$T/${name}_4/model.h5"; then
        ok "$name: bit-identical on -np 1, 2, 4"
    else bad "$name: models differ across -np"; fi
    if differs "$T/none/model.h5" "$T/${name}_2/model.h5"; then ok "$name: not the uncompressed model"; else bad "$name: same as none"; fi
    want=$(awk -v P="$P" 'BEGIN{printf "%d", '"$expr"'}')
    # every round: bytes_up = accepted clients x the message size
    if awk -F, -v m="$want" 'NR==1{for(i=1;i<=NF;i++) h[$i]=i; next}
        {if ($h["bytes_up"] != ($h["clients"] - $h["rejected"]) * m) bad=1; n++}
        END{exit !(n == 6 && !bad)}' "$T/${name}_2/metrics.csv"; then
        ok "$name: bytes_up = clients x $want-byte messages (P = $P)"
    else bad "$name: bytes_up is not clients x $want"; cut -d, -f1,8,12,13 "$T/${name}_2/metrics.csv" | head -3; fi
    b=$(sum_col "$T/${name}_2/metrics.csv" bytes_up)
    if nums "$b" && [ "$b" -lt "$NONE_BYTES" ]; then ok "$name: bytes up $b < $NONE_BYTES uncompressed"; else bad "$name: bytes up $b"; fi
done <<EOF
$CASES
EOF

# resume: 3 rounds with a checkpoint on 2 ranks, then rounds 4..6 on 4 ranks == the 6-round run
run 2 rs_a compress.method=topk compress.fraction=0.05 compress.error_feedback=on train.rounds=3 checkpoint.every=3
if h5ls "$T/rs_a/checkpoints/"*.h5 2>/dev/null | grep -q compress_residual; then ok "checkpoint holds compress_residual"
else bad "no compress_residual in the checkpoint"; fi
run 4 rs_a compress.method=topk compress.fraction=0.05 compress.error_feedback=on checkpoint.every=3 checkpoint.resume=auto
if same_model "$T/topk_ef_2/model.h5" "$T/rs_a/model.h5"; then ok "topk + error feedback: resume on -np 4 is exact"
else bad "resume with error feedback differs"; fi

# secure aggregation: the masked ring sums the fixed-point decoded values, the same model
run 3 sa compress.method=topk compress.fraction=0.05 compress.error_feedback=on secagg.enabled=on
if same_model "$T/topk_ef_2/model.h5" "$T/sa/model.h5"; then ok "topk + secagg: the same model as without"
else bad "topk + secagg differs"; fi
# client DP (clip, compress, clip again; noise on the sum) runs and accounts epsilon
run 2 dp compress.method=qsgd compress.bits=4 privacy.mode=client privacy.clip=0.5 privacy.noise=0.5
e=$(csv_col_last "$T/dp/metrics.csv" epsilon)
if nums "$e"; then ok "qsgd + client DP: epsilon $e"; else bad "qsgd + client DP: epsilon '$e'"; fi

# a server optimizer: FedAdam on QSGD-decoded updates, bit-identical on -np 1 and 4
run 1 adam_1 compress.method=qsgd compress.bits=4 fl.algorithm=fedadam fl.server_lr=0.01
run 4 adam_4 compress.method=qsgd compress.bits=4 fl.algorithm=fedadam fl.server_lr=0.01
if same_model "$T/adam_1/model.h5" "$T/adam_4/model.h5"; then ok "fedadam + qsgd: bit-identical on -np 1, 4"
else bad "fedadam + qsgd differs across -np"; fi
# DP-SGD: compressing its output is post-processing
run 2 dpsgd compress.method=randk compress.fraction=0.2 compress.error_feedback=on privacy.mode=sample privacy.noise=0.8
e=$(csv_col_last "$T/dpsgd/metrics.csv" epsilon)
if nums "$e"; then ok "randk + DP-SGD: epsilon $e"; else bad "randk + DP-SGD: epsilon '$e'"; fi

# what does not compose, and bad values: exit 2, one message
R="$FEDHPC run $T/c.ini output.dir=$T/bad"
expect_input_error "unknown method" "[compress] method" $R compress.method=zip
expect_input_error "bits out of range" "[compress] bits" $R compress.method=qsgd compress.bits=1
expect_input_error "fraction 0" "[compress] fraction" $R compress.method=topk compress.fraction=0
expect_input_error "error feedback without a method" "error_feedback = on needs [compress] method" $R compress.error_feedback=on
expect_input_error "majority vote + error feedback" "vote = majority: not supported" $R compress.method=signsgd compress.vote=majority compress.error_feedback=on
expect_input_error "majority with topk" "only with method = signsgd" $R compress.method=topk compress.vote=majority
expect_input_error "scaffold" "[fl] algorithm = scaffold" $R compress.method=topk fl.algorithm=scaffold
expect_input_error "async" "with [async]" $R compress.method=topk async.mode=fedbuff
expect_input_error "distributed DP noise" "placement = distributed: not supported" $R compress.method=topk privacy.mode=client privacy.noise=1 privacy.placement=distributed secagg.enabled=on
finish compress
