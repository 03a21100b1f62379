#!/bin/sh
# The attention model over item sets (issue 15, docs/retail.md) end to end on a slice of the
# real supermarket baskets: prepare (item sets + CSR), FedAvg bit-identical on -np 1, 2, 4,
# checkpoint resume exact, secure aggregation and DP-SGD run, bad baskets refused (exit 2).
. "$(dirname "$0")/lib.sh"
echo "attention model tests"
D="$T/data"
mkdir -p "$D"
head -600 data/supermarket_baskets.csv >"$D/supermarket_baskets.csv"
cp data/supermarket_items.txt "$D/"
check "prepare supermarket (600 baskets, 4 clients, iid)" "$FEDHPC" prepare supermarket --data-dir "$D" --clients 4 \
    --partition iid --seed 3 --out "$T/sm.h5"
# the CSR datasets hold exactly the items of the padded rows
h5dump -d /train/item_offsets -y -w 0 "$T/sm.h5" >/dev/null 2>&1 &&
    h5dump -d /train/items -y -w 0 -o "$T/items.txt" "$T/sm.h5" >/dev/null 2>&1 &&
    h5dump -d /train/x -y -w 0 -o "$T/x.txt" "$T/sm.h5" >/dev/null 2>&1 &&
    nnz=$(tr ',' '\n' <"$T/items.txt" | grep -c -E '^ *[0-9]+ *$') &&
    pos=$(tr ',' '\n' <"$T/x.txt" | grep -E '^ *-?[0-9.]+ *$' | grep -c -v -E '^ *-1 *$') &&
    [ "$nnz" = "$pos" ] && [ "$nnz" -gt 5000 ] && ok "CSR items ($nnz) = the padded rows' items" || bad "CSR items (nnz ${nnz:-?}, padded ${pos:-?})"
"$FEDHPC" inspect "$T/sm.h5" 2>&1 | grep -q "items       216 (item sets" && ok "inspect shows the 216 items" || bad "inspect items"
check "prepare supermarket --encoding multihot" "$FEDHPC" prepare supermarket --data-dir "$D" --clients 4 --partition dirichlet \
    --alpha 0.5 --seed 3 --encoding multihot --out "$T/smm.h5"
cat >"$T/a.ini" <<INI
[data]
file = $T/sm.h5
[model]
type = attention
attn_dim = 8
attn_heads = 2
[train]
rounds = 4
clients_per_round = 3
local_epochs = 1
batch_size = 16
lr = 0.1
seed = 5
[fl]
algorithm = fedavg
[output]
dir = $T/np1
INI
check "FedAvg attention -np 1" "$FEDHPC" run "$T/a.ini" checkpoint.every=2
for np in 2 4; do
    $MPIRUN -np $np "$FEDHPC" run "$T/a.ini" output.dir="$T/np$np" >"$T/np$np.log" 2>&1 &&
        same_model "$T/np1/model.h5" "$T/np$np/model.h5" && ok "-np $np: model bit-identical to -np 1" ||
        { bad "-np $np model"; tail -5 "$T/np$np.log" | sed 's/^/       | /'; }
done
auc=$(csv_col_last "$T/np1/metrics.csv" auc)
nums "$auc" && awk -v a="$auc" 'BEGIN{exit !(a > 0.6)}' && ok "test AUC after 4 rounds $auc > 0.6" || bad "test AUC '$auc'"
# fedhpc embed on the attention model: the customer embeddings (width attn_dim), clustered; the
# cluster table profiles purchases by department name (the items), the same on -np 1 and 2
"$FEDHPC" embed "$T/a.ini" --k 3 --out "$T/emb1" >"$T/emb1.log" 2>&1 &&
    $MPIRUN -np 2 "$FEDHPC" embed "$T/a.ini" --k 3 --out "$T/emb2" >"$T/emb2.log" 2>&1 &&
    grep -q "embeddings of width 8 (attention)" "$T/emb1.log" && cmp -s "$T/emb1/clusters.csv" "$T/emb2/clusters.csv" &&
    grep -q "Items ranked by the share" "$T/emb1/clusters.md" && grep -q "vegetables\|frozen foods\|biscuits" "$T/emb1/clusters.md" &&
    ok "embed: attention embeddings clustered, purchase profiles by department, -np 1 == -np 2" ||
    { bad "embed on the attention model"; tail -5 "$T/emb1.log" "$T/emb2.log" | sed 's/^/       | /'; }
$MPIRUN -np 2 "$FEDHPC" run "$T/a.ini" output.dir="$T/res" checkpoint.resume="$T/np1/checkpoints/ckpt_00000002.h5" >"$T/res.log" 2>&1 &&
    same_model "$T/np1/model.h5" "$T/res/model.h5" && ok "resumed from the round-2 checkpoint on -np 2: bit-identical" ||
    { bad "resume"; tail -5 "$T/res.log" | sed 's/^/       | /'; }
$MPIRUN -np 2 "$FEDHPC" run "$T/a.ini" output.dir="$T/sa" secagg.enabled=on secagg.threshold=0.5 >"$T/sa.log" 2>&1 &&
    same_model "$T/np1/model.h5" "$T/sa/model.h5" && ok "secure aggregation: the same model as plain FedAvg (exact sums)" ||
    { bad "secagg"; tail -5 "$T/sa.log" | sed 's/^/       | /'; }
$MPIRUN -np 2 "$FEDHPC" run "$T/a.ini" output.dir="$T/dps" privacy.mode=sample privacy.noise=1 privacy.clip=1 train.rounds=2 \
    >"$T/dps.log" 2>&1 && eps=$(csv_col_last "$T/dps/metrics.csv" epsilon) && nums "$eps" &&
    differs "$T/np1/model.h5" "$T/dps/model.h5" && ok "DP-SGD (per-example clipping, one row at a time) runs: epsilon $eps" ||
    { bad "DP-SGD"; tail -5 "$T/dps.log" | sed 's/^/       | /'; }
# the other algorithms and client-level DP run on the flat buffer unchanged
for o in fl.algorithm=fedprox fl.algorithm=fedadam fl.algorithm=scaffold fl.algorithm=centralized privacy.mode=client; do
    "$FEDHPC" run "$T/a.ini" $o train.rounds=2 output.dir="$T/alg" >"$T/alg.log" 2>&1 && a=$(csv_col_last "$T/alg/metrics.csv" auc) &&
        nums "$a" && ok "$o: runs, test AUC $a" || { bad "$o"; tail -3 "$T/alg.log" | sed 's/^/       | /'; }
    rm -rf "$T/alg"
done
sed -e "s|sm.h5|smm.h5|" -e "s|attention|logreg|" "$T/a.ini" >"$T/l.ini"
check "logistic regression on the multi-hot encoding" "$FEDHPC" run "$T/l.ini" output.dir="$T/lr"
# bad input
expect_input_error "attention needs item-set data" "needs an item-set data file" "$FEDHPC" run "$T/l.ini" model.type=attention output.dir="$T/x0"
expect_input_error "heads must divide attn_dim" "[model] attn_heads = 3: expected a divisor of [model] attn_dim = 8" \
    $MPIRUN -np 2 "$FEDHPC" run "$T/a.ini" model.attn_heads=3 output.dir="$T/x1"
expect_input_error "backdoor refused (rows are item indices)" "[attack] mode = backdoor is not supported with [model] type = attention" \
    "$FEDHPC" run "$T/a.ini" attack.mode=backdoor output.dir="$T/x2"
expect_input_error "focal loss refused (attention's loss is cross-entropy)" "[model] focal_gamma = 2: supported with [model] type = logreg or mlp" \
    "$FEDHPC" run "$T/a.ini" model.focal_gamma=2 output.dir="$T/x3"
mkdir -p "$T/bad1" "$T/bad2"
cp "$D/supermarket_items.txt" "$T/bad1/"
cp "$D/supermarket_items.txt" "$T/bad2/"
{ head -3 "$D/supermarket_baskets.csv"; echo "4,low,3 217 5"; } >"$T/bad1/supermarket_baskets.csv"
{ head -3 "$D/supermarket_baskets.csv"; echo "4,high,"; } >"$T/bad2/supermarket_baskets.csv"
expect_input_error "item index out of range" "supermarket_baskets.csv:4: item index 217 out of range: expected 1..216" \
    $MPIRUN -np 2 "$FEDHPC" prepare supermarket --data-dir "$T/bad1" --clients 2 --partition iid --seed 1 --out "$T/b1.h5"
expect_input_error "empty basket" "supermarket_baskets.csv:4: empty basket (no items)" \
    $MPIRUN -np 2 "$FEDHPC" prepare supermarket --data-dir "$T/bad2" --clients 2 --partition iid --seed 1 --out "$T/b2.h5"
expect_input_error "no natural column in the baskets" "the baskets have no customer column" \
    "$FEDHPC" prepare supermarket --data-dir "$D" --partition natural --by x --seed 1 --out "$T/b3.h5"
expect_input_error "bad --encoding" "prepare --encoding 'onehot': expected items or multihot" \
    "$FEDHPC" prepare supermarket --data-dir "$D" --clients 2 --partition iid --seed 1 --encoding onehot --out "$T/b4.h5"
check "prepare ticdata --partition natural --by MOSHOOFD" "$FEDHPC" prepare ticdata --partition natural --by MOSHOOFD --seed 1 \
    --out "$T/tic.h5"
finish attention
