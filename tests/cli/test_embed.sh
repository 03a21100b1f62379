#!/bin/sh
# fedhpc embed (issue 15, docs/embed.md): a small MLP trained on the credit data, then its
# customer embeddings and their federated clustering: every output exists, the outputs are
# bit-identical for -np 1, 2 and 4, the PNG is a PNG, the cluster table is complete, and bad
# input (no model file, a model of another shape, k out of range, a model without an
# embedding, a missing party file) exits 2 with one message; per-party files (prepare --parties)
# give the same outputs as the shared file.
. "$(dirname "$0")/lib.sh"

echo "test_embed"
if ! "$FEDHPC" prepare credit_data --clients 6 --partition dirichlet --seed 1 --out "$T/cr.h5" >"$T/prep.log" 2>&1; then
    bad "prepare credit_data"; tail -3 "$T/prep.log"; finish embed; exit 1
fi
cat >"$T/e.ini" <<EOF
[data]
file = $T/cr.h5
[model]
type = mlp
hidden = 32,16
[train]
rounds = 8
clients_per_round = 6
batch_size = 32
lr = 0.05
seed = 3
[output]
dir = $T/run
progress = off
EOF
check "train a small MLP (2 ranks)" $MPIRUN -np 2 "$FEDHPC" run "$T/e.ini"

"$FEDHPC" embed --help | grep -q "k-min" && ok "embed --help" || bad "embed --help"
"$FEDHPC" --help | grep -q "embed CONFIG.ini" && ok "fedhpc --help lists embed" || bad "fedhpc --help lists embed"

check "embed -np 1" "$FEDHPC" embed "$T/e.ini" --k-min 2 --k-max 5 --out "$T/o1"
check "embed -np 2" $MPIRUN -np 2 "$FEDHPC" embed "$T/e.ini" --k-min 2 --k-max 5 --out "$T/o2"
check "embed -np 4" $MPIRUN -np 4 "$FEDHPC" embed "$T/e.ini" --k-min 2 --k-max 5 --out "$T/o4"

all=1
for f in embeddings.h5 clusters.csv clusters.md cluster_features.csv k_selection.csv embed_pca.csv embed_pca.png; do
    [ -s "$T/o1/$f" ] || { all=0; echo "       | missing $f"; }
done
[ $all = 1 ] && ok "every output written" || bad "every output written"

same=1
for f in clusters.csv clusters.md cluster_features.csv k_selection.csv embed_pca.csv; do
    for np in 2 4; do cmp -s "$T/o1/$f" "$T/o$np/$f" || { same=0; echo "       | $f differs for -np $np"; }; done
done
for np in 2 4; do
    for d in embedding cluster pca centers client_offsets; do
        h5diff -q "$T/o1/embeddings.h5" "$T/o$np/embeddings.h5" "/$d" "/$d" || { same=0; echo "       | /$d differs for -np $np"; }
    done
done
[ $same = 1 ] && ok "outputs bit-identical for -np 1, 2, 4" || bad "outputs bit-identical for -np 1, 2, 4"

[ "$(head -c 8 "$T/o1/embed_pca.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] && ok "embed_pca.png is a PNG" ||
    bad "embed_pca.png is a PNG"

# the embeddings file: one row per training row, width 16, clusters in [0, k)
rows=$(h5dump -H -d /embedding "$T/o1/embeddings.h5" | grep -o "( [0-9]*, [0-9]* )" | head -1)
k=$(awk -F, 'NR>1 && $5==1 {print $1}' "$T/o1/k_selection.csv")
train=$("$FEDHPC" inspect "$T/cr.h5" | grep -o -E "[0-9]+ train rows|train rows *:? *[0-9]+" | grep -o -E "[0-9]+" | head -1)
[ "$rows" = "( $train, 16 )" ] && ok "embeddings: $rows (train rows x hidden width)" || bad "embeddings shape '$rows', train rows '$train'"
nk=$(($(wc -l <"$T/o1/clusters.csv") - 1))
[ -n "$k" ] && [ "$nk" = "$k" ] && ok "cluster table: $nk clusters, the chosen k" || bad "cluster table $nk rows, k '$k'"
sum=$(awk -F, 'NR>1{s+=$2} END{print s}' "$T/o1/clusters.csv")
[ "$sum" = "$train" ] && ok "cluster sizes add up to the $train rows" || bad "cluster sizes add up to $sum, not $train"
maxc=$(h5dump -d /cluster -y -w 0 "$T/o1/embeddings.h5" | tr ',' '\n' | grep -E '^ *[0-9]+ *$' | sort -n | tail -1 | tr -d ' ')
[ -n "$maxc" ] && [ "$maxc" -lt "$k" ] && ok "clusters in [0, k)" || bad "largest cluster id '$maxc' with k '$k'"
s=$(awk -F, 'NR>1 && $5==1 {print $2}' "$T/o1/k_selection.csv")
nums "$s" && awk -v s="$s" 'BEGIN{exit !(s > 0 && s <= 1)}' && ok "silhouette $s in (0, 1]" || bad "silhouette '$s'"
grep -q "Seniority\|Income\|Age" "$T/o1/clusters.md" && ok "profiles name the data's features" ||
    bad "profiles name the data's features"
grep -q "^| 0 |" "$T/o1/clusters.md" && ok "clusters.md has the table" || bad "clusters.md has the table"
"$FEDHPC" inspect "$T/o1/embeddings.h5" >"$T/insp" 2>&1 && grep -q "k = $k," "$T/insp" &&
    [ "$(awk '/sizes/{s=0; for(i=2;i<=NF;i++) s+=$i; print s}' "$T/insp")" = "$train" ] &&
    ok "inspect embeddings.h5: k and cluster sizes" || { bad "inspect embeddings.h5"; head -8 "$T/insp"; }
check "fixed --k 3" "$FEDHPC" embed "$T/e.ini" --k 3 --out "$T/k3"
[ "$(($(wc -l <"$T/k3/clusters.csv") - 1))" = 3 ] && ok "--k 3: three clusters" || bad "--k 3: three clusters"

check "--min-cell 5" "$FEDHPC" embed "$T/e.ini" --k-min 2 --k-max 5 --min-cell 5 --out "$T/mc"
a=$(awk -F, 'NR>1' "$T/o1/embed_pca.csv" | wc -l)
b=$(awk -F, 'NR>1' "$T/mc/embed_pca.csv" | wc -l)
small=$(awk -F, 'NR>1 && $4 < 5' "$T/mc/embed_pca.csv" | wc -l)
[ "$b" -lt "$a" ] && [ "$small" = 0 ] && ok "--min-cell 5: $b of $a plotted cells, none under 5 customers" ||
    bad "--min-cell 5: $b of $a cells, $small under 5"

# bad input: exit 2, one message (also from 2 ranks)
expect_input_error "no model file" "model.h5" $MPIRUN -np 2 "$FEDHPC" embed "$T/e.ini" output.dir="$T/none" --out "$T/x"
expect_input_error "model of another shape" "does not match the configuration" $MPIRUN -np 2 "$FEDHPC" embed "$T/e.ini" \
    model.hidden=8 --out "$T/x"
expect_input_error "k out of range" "--k" "$FEDHPC" embed "$T/e.ini" --k 1
expect_input_error "k-max out of range" "--k-max" $MPIRUN -np 2 "$FEDHPC" embed "$T/e.ini" --k-max 65
expect_input_error "k-min > k-max" "--k-min = 6 > --k-max = 3" "$FEDHPC" embed "$T/e.ini" --k-min 6 --k-max 3
expect_input_error "unknown option" "unknown option '--kk'" "$FEDHPC" embed "$T/e.ini" --kk 3
expect_input_error "no config" "expected CONFIG.ini" "$FEDHPC" embed
expect_input_error "logreg has no embedding" "has no customer embedding" "$FEDHPC" embed "$T/e.ini" model.type=logreg \
    --out "$T/x"
# per-party files (prepare --parties 3: the same clients and rows, one file per party): each rank
# reads its parties' files; the outputs equal those of the shared file
if "$FEDHPC" prepare credit_data --clients 6 --partition dirichlet --seed 1 --parties 3 --out "$T/p.h5" >"$T/prep2.log" 2>&1; then
    check "embed per-party files -np 2" $MPIRUN -np 2 "$FEDHPC" embed "$T/e.ini" data.file="$T/p.h5" --k-min 2 --k-max 5 \
        --out "$T/pp"
    same=1
    for f in clusters.csv clusters.md cluster_features.csv k_selection.csv embed_pca.csv; do
        cmp -s "$T/o1/$f" "$T/pp/$f" || { same=0; echo "       | $f differs"; }
    done
    h5diff -q "$T/o1/embeddings.h5" "$T/pp/embeddings.h5" /embedding /embedding || same=0
    [ $same = 1 ] && ok "per-party files: the same outputs as the shared file" || bad "per-party files: the same outputs"
    mv "$T/p.party1.h5" "$T/p.party1.moved"
    expect_input_error "a party file missing" "p.party1.h5" $MPIRUN -np 2 "$FEDHPC" embed "$T/e.ini" data.file="$T/p.h5" \
        --out "$T/x"
else
    bad "prepare --parties 3"; tail -3 "$T/prep2.log"
fi
finish embed
