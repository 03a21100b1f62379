#!/bin/sh
# [model] lightgcn (issue 15, docs/recommend.md): prepare movielens, a few federated rounds;
# the item embeddings bit-identical on -np 1, 2, 4 (and recommend.csv the same); resume from a
# checkpoint exact, including the clients' personal user embeddings (the resumed run starts
# from a fresh gnn_users.h5 in another directory); bad input: exit 2 with one clear message.
. "$(dirname "$0")/lib.sh"

echo "test_gnn"
ML=data/movielens.csv.gz
check "prepare movielens --partition users (4 clients)" \
    "$FEDHPC" prepare movielens --clients 4 --partition users --seed 3 --out "$T/u4.h5"
check "prepare movielens --partition genre (3 clients)" \
    "$FEDHPC" prepare movielens --clients 3 --partition genre --seed 3 --out "$T/g3.h5"

cat >"$T/g.ini" <<INI
[data]
file = $T/u4.h5
[model]
type = lightgcn
hidden = 8
gnn_layers = 2
[train]
rounds = 3
clients_per_round = 4
local_epochs = 1
batch_size = 1024
lr = 0.05
weight_decay = 0.0001
seed = 5
INI

for np in 1 2 4; do
    $MPIRUN -np $np "$FEDHPC" run "$T/g.ini" output.dir="$T/np$np" >"$T/np$np.log" 2>&1 ||
        { bad "run -np $np"; tail -5 "$T/np$np.log" | sed 's/^/       | /'; }
done
for np in 2 4; do
    same_model "$T/np1/model.h5" "$T/np$np/model.h5" && ok "-np $np: item embeddings bit-identical to -np 1" ||
        bad "-np $np: model differs from -np 1"
    cmp -s "$T/np1/recommend.csv" "$T/np$np/recommend.csv" && ok "-np $np: recommend.csv identical to -np 1" ||
        bad "-np $np: recommend.csv differs"
done
# [model] gnn_weighting = items: also bit-identical across rank counts, and not the FedAvg model
$MPIRUN -np 1 "$FEDHPC" run "$T/g.ini" model.gnn_weighting=items output.dir="$T/iw1" >"$T/iw1.log" 2>&1 &&
    $MPIRUN -np 4 "$FEDHPC" run "$T/g.ini" model.gnn_weighting=items output.dir="$T/iw4" >"$T/iw4.log" 2>&1 ||
    { bad "gnn_weighting = items runs"; tail -5 "$T/iw1.log" "$T/iw4.log" | sed 's/^/       | /'; }
same_model "$T/iw1/model.h5" "$T/iw4/model.h5" && ok "gnn_weighting = items: -np 4 bit-identical to -np 1" ||
    bad "gnn_weighting = items: -np 4 differs"
differs "$T/np1/model.h5" "$T/iw1/model.h5" && ok "gnn_weighting = items changes the model" || bad "items = rows?"

# [model] graphsage (hidden = 8,8: two layers): bit-identical on -np 1 and 3, and it learns
$MPIRUN -np 1 "$FEDHPC" run "$T/g.ini" model.type=graphsage model.hidden=8,8 output.dir="$T/sg1" >"$T/sg1.log" 2>&1 &&
    $MPIRUN -np 3 "$FEDHPC" run "$T/g.ini" model.type=graphsage model.hidden=8,8 output.dir="$T/sg3" >"$T/sg3.log" 2>&1 ||
    { bad "graphsage runs"; tail -5 "$T/sg1.log" "$T/sg3.log" | sed 's/^/       | /'; }
same_model "$T/sg1/model.h5" "$T/sg3/model.h5" && cmp -s "$T/sg1/recommend.csv" "$T/sg3/recommend.csv" &&
    ok "graphsage: -np 3 model and recommend.csv identical to -np 1" || bad "graphsage: -np 3 differs"
awk -F, 'NR == 4 { exit !($6 > 0.01) }' "$T/sg1/recommend.csv" &&
    ok "graphsage: NDCG@10 after 3 rounds > 0.01 (5x a random ranking)" || bad "graphsage NDCG: $(tail -1 "$T/sg1/recommend.csv")"

# the metrics are real numbers in [0, 1] for both the model and the popularity baseline
awk -F, 'NR > 1 { for (i = 3; i <= 10; i++) if (!($i >= 0 && $i <= 1)) bad = 1; if ($2 < 100) bad = 1; n++ }
         END { exit !(n == 3 && !bad) }' "$T/np1/recommend.csv" &&
    ok "recommend.csv: 3 rounds, > 100 users, P/R/F1/NDCG@10 in [0, 1]" || bad "recommend.csv content"
# the model learns: a random ranking of ~9000 items has NDCG@10 ~ 0.002; after 3 rounds > 0.02
awk -F, 'NR == 4 { exit !($6 > 0.02) }' "$T/np1/recommend.csv" &&
    ok "NDCG@10 after 3 rounds > 0.02 (10x a random ranking)" || bad "NDCG@10 after 3 rounds: $(tail -1 "$T/np1/recommend.csv")"

# resume: 2 rounds with a checkpoint, then rounds 3 from it in a fresh output directory
$MPIRUN -np 2 "$FEDHPC" run "$T/g.ini" train.rounds=2 checkpoint.every=2 output.dir="$T/part" >"$T/part.log" 2>&1 &&
    $MPIRUN -np 4 "$FEDHPC" run "$T/g.ini" output.dir="$T/res" checkpoint.resume="$T/part/checkpoints" >"$T/res.log" 2>&1 ||
    { bad "checkpoint + resume runs"; tail -5 "$T/part.log" "$T/res.log" | sed 's/^/       | /'; }
same_model "$T/np1/model.h5" "$T/res/model.h5" && ok "resumed (-np 2 -> 4): model bit-identical" || bad "resumed model differs"
tail -1 "$T/np1/recommend.csv" >"$T/a.last"
tail -1 "$T/res/recommend.csv" >"$T/b.last"
cmp -s "$T/a.last" "$T/b.last" && ok "resumed: round 3's metrics identical (user embeddings restored)" ||
    bad "resumed metrics differ: $(cat "$T/a.last") vs $(cat "$T/b.last")"
# the checkpoint holds the trained user embeddings (non-zero rows of every client)
CK=$(ls "$T/part/checkpoints"/*.h5 2>/dev/null | tail -1)
nz=$(h5dump -d /gnn_users -y -w 0 "$CK" 2>/dev/null | tr ',' '\n' | grep -E '^ *-?[0-9]' | awk '$1 != 0' | wc -l)
[ "${nz:-0}" -gt 1000 ] && ok "checkpoint holds gnn_users ($nz non-zero values)" ||
    { bad "no trained gnn_users in the checkpoint ($CK)"; h5ls -r "$CK" 2>&1 | head | sed 's/^/       | /'; }

# [secagg] with a dedicated aggregator: the same model, and rank 0 reads no client's rows (the
# set-up and the evaluation of lightgcn run on the other ranks); the truth record counts them
mkdir -p "$T/tr"
$MPIRUN -np 3 "$FEDHPC" run "$T/g.ini" output.dir="$T/sa" secagg.enabled=on secagg.truth="$T/tr/sa.h5" >"$T/sa.log" 2>&1 ||
    { bad "secagg run"; tail -5 "$T/sa.log" | sed 's/^/       | /'; }
same_model "$T/np1/model.h5" "$T/sa/model.h5" && cmp -s "$T/np1/recommend.csv" "$T/sa/recommend.csv" &&
    ok "[secagg] (-np 3, dedicated aggregator): model and recommend.csv identical to the plain run" || bad "secagg run differs"
r0=$(for r in 1 2 3; do h5dump -d "/round_0000000$r/aggregator_train_rows" "$T/tr/sa.h5" 2>/dev/null | sed -n 's/^ *(0): //p'; done | tr '\n' ' ')
[ "$r0" = "0 0 0 " ] && ok "[secagg]: the dedicated aggregator read no training rows (rounds 1-3: $r0)" ||
    bad "[secagg]: the aggregator read training rows: '$r0'"

# genre partition: a run works
check "genre partition: 1 round on 3 ranks" $MPIRUN -np 3 "$FEDHPC" run "$T/g.ini" data.file="$T/g3.h5" train.rounds=1 \
    output.dir="$T/genre"

# bad input
mkdir -p "$T/bad1" "$T/bad2" "$T/bad3"
{ echo "movieId,title,year,genres,userId,rating,timestamp,enterprise"; echo "3,C,1995,Drama,1,4.0,10,1";
  echo "3,C,1995,Drama,2,5,11,0"; } | gzip >"$T/bad3/movielens.csv.gz"
{ echo "movieId,title,year,genres,userId,rating,timestamp"; echo "1,A,1995,Drama,1,4.0,10"; echo "2,B,1995,Comedy,1,7,11"; } |
    gzip >"$T/bad1/movielens.csv.gz"
expect_input_error "a rating outside 0.5-5: exit 2" "rating 7 outside the 0.5-5 scale" \
    "$FEDHPC" prepare movielens --clients 1 --partition users --seed 1 --data-dir "$T/bad1" --out "$T/x.h5"
{ echo "movieId,title,year,genres,userId,rating,timestamp,enterprise"; echo "1,A,1995,Drama,1,4.0,10,0";
  echo "2,B,1995,Comedy,2,5,11,1"; echo "3,C,1995,Comedy,1,5,12,1"; } | gzip >"$T/bad2/movielens.csv.gz"
expect_input_error "a user in two enterprises (--partition users): exit 2" "user 1 is in enterprise 0 and enterprise 1" \
    "$FEDHPC" prepare movielens --clients 2 --partition users --seed 1 --data-dir "$T/bad2" --out "$T/x.h5"
expect_input_error "a movie in two enterprises (--partition genre): exit 2" "movie 3 is in enterprise 1 and enterprise 0" \
    "$FEDHPC" prepare movielens --clients 2 --partition genre --seed 1 --data-dir "$T/bad3" --out "$T/x.h5"
expect_input_error "--partition other: exit 2" "expected users or genre" \
    "$FEDHPC" prepare movielens --clients 2 --partition iid --seed 1 --out "$T/x.h5"
expect_input_error "lightgcn with [fl] algorithm = centralized: exit 2" "runs with the FedAvg family only" \
    $MPIRUN -np 2 "$FEDHPC" run "$T/g.ini" fl.algorithm=centralized output.dir="$T/c"
expect_input_error "lightgcn with two [model] hidden values: exit 2" "lightgcn takes one value, the embedding dimension" \
    "$FEDHPC" run "$T/g.ini" model.hidden=32,32 output.dir="$T/h"
expect_input_error "gnn_weighting = items with clients sampled: exit 2" "gnn_weighting = items needs every client" \
    $MPIRUN -np 2 "$FEDHPC" run "$T/g.ini" model.gnn_weighting=items train.clients_per_round=2 output.dir="$T/iw"
expect_input_error "graphsage with layers of different widths: exit 2" "every layer has the embedding dimension" \
    "$FEDHPC" run "$T/g.ini" model.type=graphsage model.hidden=8,4 output.dir="$T/h2"
expect_input_error "lightgcn on a non-movielens file: exit 2" "expected 2 (user, held-out flag)" \
    "$FEDHPC" run "$T/g.ini" data.file=tests/cli/fixtures/old_format_v1.h5 output.dir="$T/o"

finish test_gnn
