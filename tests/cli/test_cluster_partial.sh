# Multi-center FL under partial participation (issue 18): an MLP, 40 clients in 4 permute-labels
# groups, a quarter of them a round. FeSEM and IFCA recover the groups (ARI >= 0.9 over the
# clients that have been sampled, no empty cluster); IFCA from K random centers (warmup = 0)
# re-seeds its emptied centers and recovers them too (bit-identical with -np 2 and 3); FeSEM is
# bit-identical with -np 1, 2, 4;
# a resume after round 5 (when most clients have no assignment yet) onto another -np is exact.
. "$(dirname "$0")/lib.sh"
echo "cluster partial-participation tests"
CACHE=data/cache/fashion-mnist
[ -f "$CACHE/train-images-idx3-ubyte.gz" ] || { bad "missing $CACHE (run make data)"; finish cluster_partial; exit 1; }
check "prepare fmnist 40 clients, 4 permute-labels groups" "$FEDHPC" prepare fmnist --cache $CACHE --clients 40 --partition iid \
    --seed 1 --groups 4 --group-transform permute-labels --local-test-frac 0.2 --out "$T/perm.h5"
cat > "$T/p.ini" <<INI
[data]
file = $T/perm.h5
[model]
type = mlp
hidden = 32
[train]
rounds = 15
clients_per_round = 10
batch_size = 50
lr = 0.05
eval_every = 5
[cluster]
method = fesem
k = 4
[checkpoint]
every = 5
[output]
progress = off
INI
run() { run_np "$@"; }
# recovered: DIR NAME: ARI >= 0.9 and every cluster has clients at the last evaluation
recovered() {
    ari=$(csv_col_last "$1/clusters.csv" ari)
    ne=$(csv_col_last "$1/clusters.csv" nonempty)
    na=$(csv_col_last "$1/clusters.csv" assigned)
    if nums "$ari" && awk -v a="$ari" 'BEGIN{exit !(a >= 0.9)}' && [ "$ne" = 4 ]; then
        ok "$2: ARI $ari over $na sampled clients, 4 non-empty clusters"
    else bad "$2: ARI $ari, $ne non-empty clusters"; fi
}
run 1 "$T/p.ini" output.dir="$T/fesem1"
run 2 "$T/p.ini" output.dir="$T/fesem2"
run 4 "$T/p.ini" output.dir="$T/fesem4"
recovered "$T/fesem2" "fesem, 25% of the clients a round"
if same_model "$T/fesem1/model.h5" "$T/fesem2/model.h5" && same_model "$T/fesem2/model.h5" "$T/fesem4/model.h5" &&
    cmp -s "$T/fesem1/clusters.csv" "$T/fesem2/clusters.csv" && cmp -s "$T/fesem2/clusters.csv" "$T/fesem4/clusters.csv"; then
    ok "fesem: -np 1, 2 and 4 bit-identical (model, assignments, accuracies)"
else bad "fesem: -np 1, 2, 4 differ"; fi
run 2 "$T/p.ini" cluster.method=ifca output.dir="$T/ifca"
recovered "$T/ifca" "ifca, 25% of the clients a round"
run 2 "$T/p.ini" cluster.method=ifca cluster.warmup=0 output.dir="$T/ifca0"
recovered "$T/ifca0" "ifca from 4 random centers (warmup 0)"
n=$(grep -c "has no clients; re-seeded from client" "$T/log")
if [ "$n" -ge 1 ]; then ok "ifca warmup 0: $n emptied centers re-seeded, one line each"; else bad "ifca warmup 0: no re-seeding reported"; fi
run 3 "$T/p.ini" cluster.method=ifca cluster.warmup=0 output.dir="$T/ifca0n3"
if same_model "$T/ifca0/model.h5" "$T/ifca0n3/model.h5" && cmp -s "$T/ifca0/clusters.csv" "$T/ifca0n3/clusters.csv"; then
    ok "ifca warmup 0 with re-seeding: -np 2 and 3 bit-identical"
else bad "ifca warmup 0: -np 2 and 3 differ"; fi
# resume after round 5 onto -np 4: the assignments kept for unsampled clients are in the checkpoint
run 2 "$T/p.ini" train.rounds=5 output.dir="$T/part"
run 4 "$T/p.ini" output.dir="$T/part" --resume
if grep -q "resuming after round 5" "$T/log" && same_model "$T/fesem2/model.h5" "$T/part/model.h5" &&
    cmp -s "$T/fesem2/clusters.csv" "$T/part/clusters.csv"; then
    ok "fesem: resume after round 5 (-np 2 -> 4) ends bit-identical to the uninterrupted run"
else bad "fesem: resumed run differs"; fi
# k-means restarts of the first assignment scored by the clients' training loss: same on -np 1, 3
run 1 "$T/p.ini" cluster.restart_score=loss output.dir="$T/rsl1"
run 3 "$T/p.ini" cluster.restart_score=loss output.dir="$T/rsl3"
recovered "$T/rsl3" "fesem, restarts scored by loss"
if same_model "$T/rsl1/model.h5" "$T/rsl3/model.h5" && cmp -s "$T/rsl1/clusters.csv" "$T/rsl3/clusters.csv"; then
    ok "restart_score = loss: -np 1 and 3 bit-identical"
else bad "restart_score = loss: -np 1 and 3 differ"; fi
# the oracle: every client in its true group's center from round 1
run 2 "$T/p.ini" cluster.method=oracle output.dir="$T/oracle"
ari=$(csv_col_last "$T/oracle/clusters.csv" ari); ne=$(csv_col_last "$T/oracle/clusters.csv" nonempty)
na=$(csv_col_last "$T/oracle/clusters.csv" assigned); lo=$(csv_col_last "$T/oracle/clusters.csv" client_loss_mean)
if [ "$ari" = 1.000000 ] && [ "$ne" = 4 ] && [ "$na" = 40 ] && nums "$lo"; then
    ok "oracle: all 40 clients in their true groups from the start (ARI 1, 4 clusters), client_loss_mean $lo"
else bad "oracle: ARI $ari, $ne clusters, $na assigned, loss '$lo'"; fi
expect_input_error "oracle with k other than the true groups" "[cluster] method = oracle: needs a data file with true client groups" \
    "$FEDHPC" run "$T/p.ini" cluster.method=oracle cluster.k=5 output.dir="$T/x3"
expect_input_error "similarity is fesem only" "[cluster] assign_new = similarity" \
    "$FEDHPC" run "$T/p.ini" cluster.method=ifca cluster.assign_new=similarity output.dir="$T/x1"
expect_input_error "loss-based first assignment refused with DP-SGD" "[cluster] assign_new = loss with [privacy] mode = sample" \
    "$FEDHPC" run "$T/p.ini" cluster.assign_new=loss privacy.mode=sample privacy.noise=1 output.dir="$T/x2"
# a natural grouping of real data as the true groups (prepare --group-by): ticdata's 39 customer
# subtypes (clients) within 10 main types
"$FEDHPC" prepare csv:data/ticdata.csv --label CARAVAN --positive insurance --partition natural --by STYPE \
    --group-by MOSHOOFD --min-size 1 --local-test-frac 0.2 --seed 1 --out "$T/tic.h5" >"$T/tic.log" 2>&1 &&
    grep -q -- "--group-by MOSHOOFD: 10 groups; 99.3 %" "$T/tic.log" &&
    [ "$(h5dump -a /groups "$T/tic.h5" 2>/dev/null | sed -n 's/^ *(0): //p')" = 10 ] &&
    ok "prepare --group-by MOSHOOFD: 10 true groups of the 39 subtypes, 99.3 % of rows agree" ||
    { bad "prepare --group-by"; cat "$T/tic.log"; }
$MPIRUN -np 2 "$FEDHPC" run "$T/p.ini" data.file="$T/tic.h5" model.type=logreg cluster.k=10 train.clients_per_round=39 \
    train.rounds=3 output.dir="$T/tic" >"$T/tic_run.log" 2>&1 && a=$(csv_col_last "$T/tic/clusters.csv" ari) && nums "$a" &&
    ok "fesem on the natural grouping reports an ARI ($a after 3 rounds)" || { bad "fesem on ticdata"; tail -3 "$T/tic_run.log"; }
expect_input_error "--group-by a numeric column" "expected a categorical column" \
    "$FEDHPC" prepare csv:data/ticdata.csv --label CARAVAN --partition natural --by STYPE --group-by MAANTHUI --seed 1 --out "$T/x.h5"
expect_input_error "--group-by without --partition natural" "--group-by COLUMN needs --partition natural" \
    "$FEDHPC" prepare csv:data/ticdata.csv --label CARAVAN --partition iid --clients 4 --group-by MOSHOOFD --seed 1 --out "$T/x.h5"
# LendingClub's 50 state clients grouped by U.S. Census region (prepare --group-map)
"$FEDHPC" prepare lending_club --partition natural --by addr_state --group-map data/us_regions.csv --min-size 1 \
    --local-test-frac 0.2 --seed 1 --out "$T/lc.h5" >"$T/lc.log" 2>&1 &&
    grep -q "4 groups: 0=West (13 clients) 1=South (17 clients) 2=Northeast (9 clients) 3=Midwest (11 clients)" "$T/lc.log" &&
    [ "$(h5dump -a /groups "$T/lc.h5" 2>/dev/null | sed -n 's/^ *(0): //p')" = 4 ] &&
    ok "prepare --group-map data/us_regions.csv: the 50 states in 4 Census regions (13/17/9/11)" ||
    { bad "prepare --group-map"; cat "$T/lc.log"; }
grep -v "^TX," data/us_regions.csv >"$T/no_tx.csv"
expect_input_error "--group-map without a line for a client's value" "no line for 'TX'" \
    "$FEDHPC" prepare lending_club --partition natural --by addr_state --group-map "$T/no_tx.csv" --seed 1 --out "$T/x.h5"
printf 'state,region\nCA\n' >"$T/bad_map.csv"
expect_input_error "--group-map with a malformed line" "bad_map.csv:2: expected 'value,group'" \
    "$FEDHPC" prepare lending_club --partition natural --by addr_state --group-map "$T/bad_map.csv" --seed 1 --out "$T/x.h5"
expect_input_error "--group-map without --partition natural" "--group-map FILE needs --partition natural" \
    "$FEDHPC" prepare lending_club --partition iid --clients 4 --group-map data/us_regions.csv --seed 1 --out "$T/x.h5"
# --train-rows: the first N Fashion-MNIST training rows (the CNN cells of the grid)
"$FEDHPC" prepare fmnist --cache $CACHE --clients 80 --partition iid --seed 1 --groups 4 --group-transform rotate \
    --local-test-frac 0.2 --train-rows 8000 --out "$T/small.h5" >"$T/small.log" 2>&1 &&
    grep -q "8000 train rows, 10000 test rows" "$T/small.log" && ok "prepare --train-rows 8000: 8000 training rows, the whole test split" ||
    { bad "prepare --train-rows"; cat "$T/small.log"; }
expect_input_error "--train-rows above the data set" "Fashion-MNIST has 60000 training rows" \
    "$FEDHPC" prepare fmnist --cache $CACHE --clients 4 --partition iid --train-rows 60001 --seed 1 --out "$T/x.h5"
expect_input_error "--train-rows on a CSV data set" "--train-rows applies to fmnist" \
    "$FEDHPC" prepare lending_club --clients 4 --partition iid --train-rows 100 --seed 1 --out "$T/x.h5"
finish cluster_partial
