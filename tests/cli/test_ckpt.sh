# Checkpoints and restart, end to end on real data (include/fedhpc/ckpt.h): kill -9 at random
# moments (also inside checkpoint writes) and resume until done; resume on another number of
# ranks; SIGTERM / SIGUSR1 stop with exit status 3 and a checkpoint; a damaged newest checkpoint
# (truncated, or one byte of a dataset flipped) is skipped with a warning; a changed training
# configuration is refused; metrics.csv holds every round exactly once. Every final model must
# equal the uninterrupted run's bit for bit.
. "$(dirname "$0")/lib.sh"
echo "checkpoint tests"
FM=$FEDHPC_ROOT/data/fmnist_dir05_c100.h5
[ -f "$FM" ] || { bad "missing $FM (run make data)"; finish ckpt; exit 1; }
R=30
cat >"$T/c.ini" <<INI
[data]
file = $FM
[model]
type = mlp
hidden = 32
[train]
rounds = $R
clients_per_round = 6
batch_size = 20
lr = 0.05
momentum = 0.5
eval_every = 10
[fl]
algorithm = fedavg
[checkpoint]
every = 1
keep = 3
[output]
progress = lines
INI

# children PID: the pids whose parent is PID (from /proc, no procps needed)
children() {
    awk -v p="$1" '{pid = $1; sub(/.*\) /, ""); if ($2 == p) print pid}' /proc/[0-9]*/stat 2>/dev/null
}
# rows FILE: the data rows of a metrics.csv
rows() { [ -f "$1" ] && echo $(($(wc -l <"$1") - 1)) || echo 0; }
# wait_rows FILE N PID: until FILE has N data rows (or PID has ended)
wait_rows() {
    i=0
    while [ "$(rows "$1")" -lt "$2" ] && kill -0 "$3" 2>/dev/null && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
}
# newest_round DIR: the round of the newest checkpoint file in DIR (0 if none)
newest_round() {
    n=$(ls "$1" 2>/dev/null | sed -n 's/^ckpt_0*\([0-9][0-9]*\)\.h5$/\1/p' | sort -n | tail -1)
    echo "${n:-0}"
}
# rounds_once FILE: rounds 1..R exactly once, in order
rounds_once() { [ "$(awk -F, 'NR>1{print $1}' "$1" | tr '\n' ' ')" = "$(seq 1 "$R" | tr '\n' ' ')" ]; }
# same_metrics A B: identical metrics.csv but for the wall time column
same_metrics() { same_csv 1,3- "$1" "$2"; }

# 0. the uninterrupted reference (no checkpoints)
$MPIRUN -np 2 "$FEDHPC" run "$T/c.ini" checkpoint.every=0 output.dir="$T/ref" >"$T/ref.log" 2>&1 &&
    [ -f "$T/ref/model.h5" ] && ok "reference run ($R rounds, -np 2)" || { bad "reference run"; tail -5 "$T/ref.log"; finish ckpt; exit 1; }
[ ! -d "$T/ref/checkpoints" ] || [ -z "$(ls "$T/ref/checkpoints")" ] && ok "checkpoint.every=0: no checkpoint written" ||
    bad "checkpoints written with checkpoint.every=0"

# 1. --resume with no checkpoint starts from round 0 and gives the same model
$MPIRUN -np 2 "$FEDHPC" run "$T/c.ini" output.dir="$T/fresh" --resume >"$T/fresh.log" 2>&1 &&
    same_model "$T/ref/model.h5" "$T/fresh/model.h5" && ok "--resume without a checkpoint: fresh start, same model" ||
    { bad "--resume without a checkpoint"; tail -5 "$T/fresh.log" | sed 's/^/       | /'; }
n=$(ls "$T/fresh/checkpoints" 2>/dev/null | grep -c '^ckpt_.*\.h5$')
[ "$n" = 3 ] && ok "checkpoint.keep=3: 3 checkpoint files kept" || bad "$n checkpoint files kept, expected 3"
[ "$(newest_round "$T/fresh/checkpoints")" = "$R" ] && ok "newest checkpoint is round $R" || bad "newest checkpoint round $(newest_round "$T/fresh/checkpoints")"
"$FEDHPC" inspect "$T/fresh/checkpoints/$(ls "$T/fresh/checkpoints" | grep '^ckpt_' | sort | tail -1)" >"$T/insp" 2>&1 &&
    grep -q -i "round" "$T/insp" && ok "fedhpc inspect shows a checkpoint" || { bad "inspect checkpoint"; head -5 "$T/insp"; }

# 2. SIGTERM to a single-rank run: exit status 3 and a checkpoint; resume on 3 ranks
"$FEDHPC" run "$T/c.ini" checkpoint.every=0 output.dir="$T/term" >"$T/term.log" 2>"$T/term.err" &
pid=$!
wait_rows "$T/term/metrics.csv" 5 $pid
kill -TERM $pid
wait $pid
rc=$?
k=$(newest_round "$T/term/checkpoints")
[ $rc = 3 ] && [ "$k" -ge 5 ] && [ "$k" -lt $R ] && ok "SIGTERM: exit status 3, checkpoint of round $k (checkpoint.every=0)" ||
    { bad "SIGTERM: exit $rc, checkpoint round $k"; tail -3 "$T/term.err" | sed 's/^/       | /'; }
[ "$(rows "$T/term/metrics.csv")" = "$k" ] && ok "metrics.csv ends at the checkpoint's round $k" || bad "metrics.csv has $(rows "$T/term/metrics.csv") rows after the stop at $k"
$MPIRUN -np 3 "$FEDHPC" run "$T/c.ini" checkpoint.every=0 output.dir="$T/term" --resume >"$T/term2.log" 2>&1 &&
    same_model "$T/ref/model.h5" "$T/term/model.h5" && ok "resumed on -np 3 after a -np 1 stop: model bit-identical" ||
    { bad "resume -np 1 -> 3"; tail -5 "$T/term2.log" | sed 's/^/       | /'; }
rounds_once "$T/term/metrics.csv" && same_metrics "$T/ref/metrics.csv" "$T/term/metrics.csv" &&
    ok "metrics.csv after the restart == uninterrupted (rounds 1..$R once)" || bad "metrics.csv after SIGTERM + resume"

# 3. SIGUSR1 to mpirun (forwarded to every rank) on 2 ranks: exit 3; resume on 1 rank
$MPIRUN -np 2 "$FEDHPC" run "$T/c.ini" output.dir="$T/usr1" >"$T/usr1.log" 2>&1 &
pid=$!
wait_rows "$T/usr1/metrics.csv" 8 $pid
kill -USR1 $pid
wait $pid
rc=$?
k=$(newest_round "$T/usr1/checkpoints")
[ $rc = 3 ] && [ "$k" -ge 8 ] && [ "$k" -lt $R ] && ok "SIGUSR1 to mpirun -np 2: exit status 3 after round $k" ||
    { bad "SIGUSR1: exit $rc, checkpoint round $k"; tail -3 "$T/usr1.log" | sed 's/^/       | /'; }
cp -r "$T/usr1" "$T/usr1.saved"
"$FEDHPC" run "$T/c.ini" output.dir="$T/usr1" --resume >"$T/usr1b.log" 2>&1 &&
    same_model "$T/ref/model.h5" "$T/usr1/model.h5" && ok "resumed on -np 1 after a -np 2 stop: model bit-identical" ||
    { bad "resume -np 2 -> 1"; tail -5 "$T/usr1b.log" | sed 's/^/       | /'; }

# 4. a changed training configuration is refused (exit 2, one message), output settings are not
for o in train.lr=0.1 train.seed=7 model.hidden=33 fl.algorithm=fedprox; do
    rm -rf "$T/chg"
    cp -r "$T/usr1.saved" "$T/chg"
    np=1
    [ $o = train.lr=0.1 ] && np=2
    $MPIRUN -np $np "$FEDHPC" run "$T/c.ini" output.dir="$T/chg" "$o" --resume >"$T/chg.out" 2>"$T/chg.err"
    rc=$?
    n=$(grep -c "error" "$T/chg.err")
    if [ $rc = 2 ] && [ "$n" = 1 ] && ! grep -q -E "MPI_ABORT|MPI_Abort" "$T/chg.err"; then ok "resume with $o refused (-np $np, exit 2, one message)"
    else bad "resume with $o: exit $rc, $n error lines"; sed 's/^/       | /' "$T/chg.err" | head -5; fi
    [ $o = fl.algorithm=fedprox ] && sed 's/^/       | /' "$T/chg.err" | cut -c1-160 | head -2
done
rm -rf "$T/chg"
cp -r "$T/usr1.saved" "$T/chg"
$MPIRUN -np 2 "$FEDHPC" run "$T/c.ini" output.dir="$T/chg" output.progress=off checkpoint.keep=5 --resume >"$T/chg.out" 2>&1 &&
    same_model "$T/ref/model.h5" "$T/chg/model.h5" && ok "resume with other output/checkpoint settings allowed, same model" ||
    { bad "resume with changed output settings"; tail -5 "$T/chg.out" | sed 's/^/       | /'; }

# 5. damaged newest checkpoint: truncated, or one byte flipped inside a dataset -> warning,
#    the previous checkpoint is used, same final model
newest=$(ls "$T/usr1.saved/checkpoints" | grep '^ckpt_' | sort | tail -1)
k=$(newest_round "$T/usr1.saved/checkpoints")
# dataset_offset FILE NAME: byte offset of a contiguous dataset's data in the file
dataset_offset() { h5dump -p -H -d "/$2" "$1" 2>/dev/null | awk '/CONTIGUOUS/{c=1} c && $1=="OFFSET"{print $2; exit}'; }
for damage in truncate flip; do
    rm -rf "$T/dmg"
    cp -r "$T/usr1.saved" "$T/dmg"
    f=$T/dmg/checkpoints/$newest
    size=$(wc -c <"$f")
    if [ $damage = truncate ]; then
        head -c $((size / 2)) "$f" >"$f.cut" && mv "$f.cut" "$f"
        what="truncated to $((size / 2)) of $size bytes"
    else
        off=$(dataset_offset "$f" params)
        [ -n "$off" ] || { bad "no data offset of a contiguous /params in $newest (h5dump -p)"; continue; }
        off=$((off + 1000))
        b=$(od -A n -t u1 -j $off -N 1 "$f" | tr -d ' ')
        printf "$(printf '\\%03o' $(((b + 1) % 256)))" | dd of="$f" bs=1 seek=$off conv=notrunc 2>/dev/null
        h5dump -d /params "$f" >/dev/null 2>&1 && what="byte $off (inside /params) $b -> $(((b + 1) % 256)), still a readable HDF5 file" ||
            what="byte $off inside /params flipped"
    fi
    $MPIRUN -np 2 "$FEDHPC" run "$T/c.ini" output.dir="$T/dmg" --resume >"$T/dmg.out" 2>"$T/dmg.err"
    rc=$?
    if [ $rc = 0 ] && grep -q "$newest" "$T/dmg.err" && same_model "$T/ref/model.h5" "$T/dmg/model.h5"; then
        ok "newest checkpoint $damage ($what): warned, resumed from round $((k - 1)), same model"
        echo "       | $(grep "$newest" "$T/dmg.err" | head -1 | cut -c1-150)"
    else
        bad "damaged ($damage) newest checkpoint: exit $rc"; sed 's/^/       | /' "$T/dmg.err" | head -8
    fi
    rounds_once "$T/dmg/metrics.csv" && ok "metrics.csv rounds 1..$R once after redoing round $k" || bad "metrics.csv after the $damage resume"
done

# 6. crash test: kill -9 at random moments, alternating 1 and 2 ranks; checkpoint every round,
#    so kills land inside rounds and inside checkpoint writes. Of every four runs, two are
#    killed a random time (up to a round time) after they committed a new checkpoint, one a
#    random time after launch (start-up, reading the checkpoint), one as soon as a checkpoint
#    write has begun (its temporary file exists). Every resume must continue, and the final
#    model must be the uninterrupted one.
seed=${FEDHPC_CKPT_SEED:-$$}
# enough rounds that 12 kills cannot use them all up on a quiet machine (about 0.03 s a round
# there: a kill after a checkpoint costs 1-2 rounds, one after launch up to 0.35 s)
RC=120
"$FEDHPC" run "$T/c.ini" train.rounds=$RC checkpoint.every=0 output.dir="$T/refc" >"$T/refc.log" 2>&1 || bad "crash reference run"
tr=$(awk -F, 'NR>1{s+=$2; n++} END{printf "%.3f", s / n + 0.02}' "$T/refc/metrics.csv")
echo "       crash test: $RC rounds, random seed $seed (FEDHPC_CKPT_SEED reproduces), a round ~ ${tr}s"
delays=$(awk -v s="$seed" -v t="$tr" 'BEGIN{srand(s); for(i=1;i<=24;i++) printf "%.2f ", (i%4==0) ? 0.05 + 0.3*rand() : t*rand()}')
i=0
prev=0
kills=0
mono=1
torn=0
for d in $delays; do
    [ $kills -ge 12 ] && break
    i=$((i + 1))
    k0=$(newest_round "$T/crash/checkpoints")
    [ "$k0" -ge $RC ] && break
    # (stale temporary files of earlier kills would look like a write in progress)
    [ $((i % 4)) = 3 ] && rm -f "$T/crash/checkpoints"/*.tmp
    touch "$T/launch"
    if [ $((i % 2)) = 1 ]; then
        "$FEDHPC" run "$T/c.ini" train.rounds=$RC output.dir="$T/crash" --resume >"$T/crash$i.log" 2>&1 &
    else
        $MPIRUN -np 2 "$FEDHPC" run "$T/c.ini" train.rounds=$RC output.dir="$T/crash" --resume >"$T/crash$i.log" 2>&1 &
    fi
    pid=$!
    killed=0
    if [ $((i % 4)) = 3 ]; then
        j=0
        # -np 1 (i odd): the run is this pid; kill it the moment the temporary file exists
        while [ $j -lt 300000 ]; do
            for f in "$T/crash/checkpoints"/*.tmp; do [ -e "$f" ] && kill -9 $pid && killed=1 && break 2; done
            j=$((j + 1))
        done
        d=0
        when="as soon as $(basename "$f") appeared"
    elif [ $((i % 4)) != 0 ]; then
        j=0
        while [ "$(newest_round "$T/crash/checkpoints")" = "$k0" ] && kill -0 $pid 2>/dev/null && [ $j -lt 400 ]; do sleep 0.05; j=$((j + 1)); done
        when="${d}s after checkpoint $(newest_round "$T/crash/checkpoints")"
    else
        when="${d}s after launch"
    fi
    victims=$pid
    [ "$d" = 0 ] || { victims="$pid $(children $pid)"; sleep "$d"; victims="$victims $(children $pid)"; }
    if [ $killed = 1 ]; then
        kills=$((kills + 1))
    elif kill -0 $pid 2>/dev/null; then
        kill -9 $victims 2>/dev/null
        kills=$((kills + 1))
    else when="$when: had ended"; fi
    wait $pid 2>/dev/null
    # the ranks of a killed mpirun: wait until they are gone
    for v in $victims; do j=0; while kill -0 "$v" 2>/dev/null && [ $j -lt 100 ]; do sleep 0.05; j=$((j + 1)); done; done
    k=$(newest_round "$T/crash/checkpoints")
    # killed inside a checkpoint write: this run left a temporary file that was never renamed
    [ -n "$(find "$T/crash/checkpoints" -type f ! -name 'ckpt_*.h5' -newer "$T/launch" 2>/dev/null)" ] && torn=$((torn + 1))
    [ "$k" -lt "$prev" ] && mono=0
    if grep -q -i "error" "$T/crash$i.log"; then bad "run $i reported an error"; sed 's/^/       | /' "$T/crash$i.log" | head -5; fi
    prev=$k
    echo "       kill -9 ($([ $((i % 2)) = 1 ] && echo "-np 1" || echo "-np 2")) $when -> newest checkpoint round $k"
done
[ $kills -ge 10 ] && ok "$kills runs killed with SIGKILL at random moments" ||
    bad "only $kills runs were still running when killed (raise R or the delays)"
[ $torn -ge 1 ] && ok "$torn of the kills hit a checkpoint write (its temporary file left behind, never renamed)" ||
    bad "no kill hit a checkpoint write"
[ $mono = 1 ] && ok "the newest checkpoint never went back after a kill" || bad "a kill lost a committed checkpoint"
$MPIRUN -np 2 "$FEDHPC" run "$T/c.ini" train.rounds=$RC output.dir="$T/crash" --resume >"$T/crash_end.log" 2>&1
rc=$?
[ $rc = 0 ] && same_model "$T/refc/model.h5" "$T/crash/model.h5" && ok "after $kills kills, the final resume gives the uninterrupted model bit for bit" ||
    { bad "crash test: final resume exit $rc or model differs"; tail -5 "$T/crash_end.log" | sed 's/^/       | /'; }
R=$RC
rounds_once "$T/crash/metrics.csv" && same_metrics "$T/refc/metrics.csv" "$T/crash/metrics.csv" &&
    ok "crash test metrics.csv == uninterrupted (rounds 1..$R exactly once)" ||
    { bad "crash test metrics.csv"; awk -F, 'NR>1{print $1}' "$T/crash/metrics.csv" | tr '\n' ' ' | cut -c1-200; echo; }
finish ckpt
