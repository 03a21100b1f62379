# Per-party data files (issue 12 item 7; docs/data.md): `prepare --parties K` writes the
# aggregator's file (metadata, row counts, test split, no training rows) and one file per party
# with only its clients' rows. A run on K + 1 ranks gives rank 0 the aggregator's file and rank
# p + 1 party p's file: the model is bit-identical to the shared-file run (-np 1 and -np 4, with
# and without secure aggregation), resume is exact, and each process opens exactly one party's
# file (traced with strace). Misuse is refused with exit 2.
. "$(dirname "$0")/lib.sh"
echo "per-party data files"
prep() { "$FEDHPC" prepare credit_data --data-dir data --clients 12 --partition dirichlet --alpha 0.5 --seed 5 "$@" \
    >"$T/prep.log" 2>&1 || { bad "prepare $* (exit $?)"; cat "$T/prep.log"; }; }
prep --out "$T/shared.h5"
prep --out "$T/p.h5" --parties 3
attr() { h5dump -a "/$2" "$1" 2>/dev/null | sed -n 's/^ *(0): //p'; }
rows=$(attr "$T/shared.h5" train_rows) r0=$(attr "$T/p.h5" train_rows) t0=$(attr "$T/p.h5" test_rows)
sum=0
for p in 0 1 2; do
    f="$T/p.party$p.h5"
    [ -f "$f" ] || bad "missing $f"
    [ "$(attr "$f" party)" = "$p" ] && [ "$(attr "$f" test_rows)" = 0 ] || bad "$f: party attribute or test rows"
    sum=$((sum + $(attr "$f" train_rows)))
done
nums "$rows" "$r0" && [ "$r0" = 0 ] && [ "$t0" = "$(attr "$T/shared.h5" test_rows)" ] && [ "$sum" = "$rows" ] &&
    ok "prepare --parties 3: aggregator's file with 0 training rows and the test split; the parties' files hold $sum = $rows rows" ||
    bad "prepare --parties: rows shared $rows, aggregator $r0, parties $sum"
"$FEDHPC" inspect "$T/p.party1.h5" >"$T/insp" 2>&1 && grep -q "this file: party 1" "$T/insp" &&
    ok "inspect names the party of a party's file" || { bad "inspect of a party file"; cat "$T/insp"; }

cat >"$T/c.ini" <<INI
[data]
file = $T/shared.h5
[model]
type = mlp
hidden = 8
[train]
rounds = 3
clients_per_round = 6
batch_size = 16
lr = 0.1
[output]
progress = off
INI
run() { runini "$T/c.ini" "$@"; }
run 1 s1
run 4 p4 data.file="$T/p.h5"
run 4 p4sa data.file="$T/p.h5" secagg.enabled=on
same_model "$T/s1/model.h5" "$T/p4/model.h5" && same_model "$T/s1/model.h5" "$T/p4sa/model.h5" &&
    ok "3 parties on -np 4 (plain and secagg) = the shared file on -np 1, bit for bit" || bad "party runs differ from the shared run"
run 4 pk2 data.file="$T/p.h5" train.rounds=2 checkpoint.every=1
run 4 pk2 data.file="$T/p.h5" --resume
grep -q "resuming after round 2" "$T/pk2.log" && same_model "$T/s1/model.h5" "$T/pk2/model.h5" &&
    ok "per-party run resumed after round 2: the same model" || { bad "per-party resume"; tail -3 "$T/pk2.log"; }

# who opens which file: one process per party file, no process opens two parties' files
if command -v strace >/dev/null 2>&1; then
    strace -f -e trace=open,openat -o "$T/trace" $MPIRUN -np 4 "$FEDHPC" run "$T/c.ini" data.file="$T/p.h5" \
        output.dir="$T/tr" train.rounds=1 >"$T/tr.log" 2>&1 || bad "traced run (exit $?)"
    opened() { grep -F "$T/p.party$1.h5\"" "$T/trace" | grep -v ENOENT | awk '{print $1}' | sort -u; }
    a=$(opened 0) b=$(opened 1) c=$(opened 2)
    n=$(printf '%s\n%s\n%s\n' "$a" "$b" "$c" | grep -c .) u=$(printf '%s\n%s\n%s\n' "$a" "$b" "$c" | sort -u | grep -c .)
    [ "$(echo "$a" | grep -c .)" = 1 ] && [ "$(echo "$b" | grep -c .)" = 1 ] && [ "$(echo "$c" | grep -c .)" = 1 ] && [ "$n" = 3 ] && [ "$u" = 3 ] &&
        ok "traced: each party's file is opened by exactly one process, a different one for each party" ||
        bad "traced opens: party0 by '$a', party1 by '$b', party2 by '$c'"
else
    bad "strace not installed (make deps-test installs it)"
fi

expect_input_error "3 parties on -np 3: refused" "run on 4 ranks" \
    $MPIRUN -np 3 "$FEDHPC" run "$T/c.ini" data.file="$T/p.h5" output.dir="$T/e1"
expect_input_error "a party's file as [data] file: refused" "is party 1's file" \
    $MPIRUN -np 4 "$FEDHPC" run "$T/c.ini" data.file="$T/p.party1.h5" output.dir="$T/e2"
expect_input_error "per-party files with [cluster]: refused" "FedAvg family only" \
    $MPIRUN -np 4 "$FEDHPC" run "$T/c.ini" data.file="$T/p.h5" cluster.method=fesem output.dir="$T/e3"
mv "$T/p.party2.h5" "$T/gone.h5"
expect_input_error "a missing party file: refused, naming it" "p.party2.h5: cannot read" \
    $MPIRUN -np 4 "$FEDHPC" run "$T/c.ini" data.file="$T/p.h5" output.dir="$T/e4"
cp "$T/p.party1.h5" "$T/p.party2.h5"
expect_input_error "another party's file under party 2's name: refused" "not party 2's file" \
    $MPIRUN -np 4 "$FEDHPC" run "$T/c.ini" data.file="$T/p.h5" output.dir="$T/e5"
expect_input_error "prepare --parties larger than the clients: refused" "more parties than" \
    "$FEDHPC" prepare credit_data --data-dir data --clients 4 --partition iid --seed 1 --out "$T/x.h5" --parties 5
finish parties
