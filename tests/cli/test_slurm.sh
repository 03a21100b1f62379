# A real single-node Slurm on this machine: munged, slurmctld and slurmd (Debian's munge and
# slurm-wlm) with a generated slurm.conf (proctrack/linuxproc, task/none: no cgroups, so it runs
# in a container), munge key, state, logs and pid files in a temporary directory.
# 1. jobs/slurm/run.sbatch is submitted with a 1-minute time limit and --signal=B:USR1@45 on an
#    experiment sized to ~60 s of training on this machine: Slurm's time-limit warning stops
#    the run (checkpoint, exit status 3) and the script requeues the job, at least once; the
#    final model must equal an uninterrupted run's bit for bit, metrics.csv every round once.
# 2. jobs/slurm/scaling.sh submits its jobs (1 and 2 ranks, strong and weak) and the collection.
# 3. run.sbatch with srun as the launcher, stopped by `scancel --signal=USR1 --batch`.
# Only the daemons started here are stopped (by pid), after cancelling this cluster's jobs.
# Needs root (the daemons run as root, as in CI); installs munge and slurm-wlm if missing.
. "$(dirname "$0")/lib.sh"
echo "slurm tests"
FM=$FEDHPC_ROOT/data/fmnist_dir05_c100.h5
[ -f "$FM" ] || { bad "missing $FM (run make data)"; finish slurm; exit 1; }

skip() {
    echo "  SKIP $*"
    finish slurm
    exit 0
}
if [ "$(id -u)" != 0 ]; then
    skip "the Slurm daemons need root here (run the test as root, as CI does)"
fi
sh tests/cli/deps.sh munge slurm-wlm || { bad "installing munge slurm-wlm failed"; finish slurm; exit 1; }
for b in munged slurmctld slurmd; do
    [ -x /usr/sbin/$b ] || { bad "/usr/sbin/$b missing after installing munge slurm-wlm"; finish slurm; exit 1; }
done

# munged refuses a socket in a directory that others cannot traverse: its own directory in /tmp
S=$(mktemp -d /tmp/fedhpc-slurm-XXXXXX) || { bad "mktemp"; finish slurm; exit 1; }
chmod 755 "$S"
mkdir -p "$S/state" "$S/spool"
export SLURM_CONF=$S/slurm.conf
DAEMONS=""

# Stop what this test started, and only that: jobs on this test's cluster, then the daemons by pid.
cleanup() {
    trap - EXIT INT TERM
    if [ -n "$DAEMONS" ]; then
        ids=$(squeue -h -o %i 2>/dev/null)
        if [ -n "$ids" ]; then
            scancel $ids 2>/dev/null
            i=0
            while [ -n "$(squeue -h -o %i 2>/dev/null)" ] && [ $i -lt 30 ]; do sleep 1; i=$((i + 1)); done
        fi
        for p in $DAEMONS; do kill "$p" 2>/dev/null; done
        i=0
        while [ $i -lt 20 ]; do
            alive=""
            for p in $DAEMONS; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
            [ -z "$alive" ] && break
            sleep 0.5
            i=$((i + 1))
        done
        for p in $alive; do kill -9 "$p" 2>/dev/null; done
        wait 2>/dev/null
    fi
    rm -rf "$T" "$S"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port P: nothing listens on TCP port P
free_port() {
    h=$(printf '%04X' "$1")
    ! grep -q -i ":$h " /proc/net/tcp /proc/net/tcp6 2>/dev/null
}
port=$((20000 + $$ % 20000))
while ! free_port $port || ! free_port $((port + 1)); do port=$((port + 2)); done

# munge: a fresh key, its own socket
dd if=/dev/urandom of="$S/munge.key" bs=1024 count=1 2>/dev/null
chmod 400 "$S/munge.key"
/usr/sbin/munged -F --key-file="$S/munge.key" --socket="$S/munge.sock" --pid-file="$S/munged.pid" \
    --log-file="$S/munged.log" --seed-file="$S/munged.seed" >"$S/munged.out" 2>&1 &
DAEMONS="$DAEMONS $!"
i=0
while [ ! -S "$S/munge.sock" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
if munge -S "$S/munge.sock" -n </dev/null | unmunge -S "$S/munge.sock" >/dev/null 2>&1; then ok "munged runs (own key and socket)"
else
    bad "munged does not work"; sed 's/^/       | /' "$S/munged.log" "$S/munged.out" | tail -20; finish slurm; exit 1
fi

# slurm.conf: this node as slurmd -C reports it, no cgroups (containers), root daemons
node=$(/usr/sbin/slurmd -C | head -1)
name=$(echo "$node" | sed 's/^NodeName=\([^ ]*\).*/\1/')
cat >"$SLURM_CONF" <<EOF
ClusterName=fedhpctest
SlurmctldHost=$name(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$S/munge.sock,cred_expire=5
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/slurmctld.log
SlurmdLogFile=$S/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=10
OverTimeLimit=0
MinJobAge=600
InactiveLimit=0
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=test Nodes=$name Default=YES MaxTime=INFINITE State=UP
EOF
/usr/sbin/slurmctld -D -f "$SLURM_CONF" >"$S/slurmctld.out" 2>&1 &
DAEMONS="$DAEMONS $!"
/usr/sbin/slurmd -D -f "$SLURM_CONF" >"$S/slurmd.out" 2>&1 &
DAEMONS="$DAEMONS $!"
i=0
while [ "$(sinfo -h -o %t 2>/dev/null)" != idle ] && [ $i -lt 60 ]; do sleep 0.5; i=$((i + 1)); done
if [ "$(sinfo -h -o %t 2>/dev/null)" = idle ]; then ok "slurmctld + slurmd up, node $name idle (ports $port, $((port + 1)))"
else
    bad "the Slurm node did not become idle"
    sinfo 2>&1 | sed 's/^/       | /'
    tail -15 "$S/slurmctld.log" "$S/slurmd.log" "$S/slurmctld.out" "$S/slurmd.out" 2>&1 | sed 's/^/       | /'
    finish slurm; exit 1
fi

# job_field JOBID FIELD: a field of `scontrol show job`
job_field() { scontrol -o show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
# wait_job JOBID SECONDS: until the job has ended; prints the final state
wait_job() {
    i=0
    while [ $i -lt "$2" ]; do
        s=$(job_field "$1" JobState)
        case $s in COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED) echo "$s"; return;; esac
        sleep 2
        i=$((i + 2))
    done
    echo "still $(job_field "$1" JobState) after $2 s"
}

# The experiment: about 60 s of single-rank training, sized on this machine (in the job, next to
# the reference run, it takes about twice as long), so that a 1-minute time limit with the
# warning 45 s before it interrupts the job at least once (Slurm checks time limits every 30 s:
# the signal comes 15 to 45 s into the job).
cat >"$T/exp.ini" <<INI
[data]
file = $FM
[model]
type = mlp
hidden = 64
[train]
clients_per_round = 10
batch_size = 10
lr = 0.05
eval_every = 50
[checkpoint]
every = 50
keep = 2
[output]
progress = lines
INI
"$FEDHPC" run "$T/exp.ini" train.rounds=11 output.dir="$T/cal" checkpoint.every=0 >"$T/cal.log" 2>&1 ||
    { bad "calibration run"; tail -5 "$T/cal.log"; finish slurm; exit 1; }
ROUNDS=${FEDHPC_SLURM_ROUNDS:-$(awk -F, -v t="${FEDHPC_SLURM_TRAIN_S:-60}" 'NR>2 && NR<12 {s+=$2; n++}
    END {r = int(t / (s / n)); if (r < 100) r = 100; if (r > 50000) r = 50000; print r}' "$T/cal/metrics.csv")}
echo "       $ROUNDS rounds (~${FEDHPC_SLURM_TRAIN_S:-60} s on 1 rank here)"
sed -i "s/^\[train\]\$/[train]\nrounds = $ROUNDS/" "$T/exp.ini"

# the uninterrupted reference, on 1 rank (the model is the same for any number of ranks)
t0=$(date +%s)
"$FEDHPC" run "$T/exp.ini" output.dir="$T/ref" checkpoint.every=0 >"$T/ref.log" 2>&1 &
refpid=$!

job=$(sbatch --parsable --ntasks=2 --time=1 --signal=B:USR1@45 --output="$T/job-%j.out" \
    --export=ALL,FEDHPC="$FEDHPC" jobs/slurm/run.sbatch "$T/exp.ini" output.dir="$T/run" 2>"$T/sbatch.err")
if [ -n "$job" ]; then ok "sbatch jobs/slurm/run.sbatch: job $job"; else bad "sbatch failed"; sed 's/^/       | /' "$T/sbatch.err"; fi
state=$(wait_job "$job" ${FEDHPC_SLURM_WAIT:-420})
wait $refpid || bad "the reference run failed: $(tail -3 "$T/ref.log")"
restarts=$(job_field "$job" Restarts)
echo "       job $job: $state, exit code $(job_field "$job" ExitCode), $restarts restarts, $(( $(date +%s) - t0 )) s"
sed 's/^/       | /' "$T"/job-"$job".out | grep -E "run.sbatch|error|Error|ERROR|resum|warning" | head -40
[ "$state" = COMPLETED ] && [ "$(job_field "$job" ExitCode)" = 0:0 ] && ok "the job completed with exit code 0" ||
    { bad "job ended $state, exit code $(job_field "$job" ExitCode)"; tail -30 "$T/job-$job.out" | sed 's/^/       | /'; }
[ "${restarts:-0}" -ge 1 ] && ok "the job was requeued $restarts times (Restarts=$restarts)" || bad "the job was never requeued"
n=$(grep -c "received SIGUSR1" "$T/job-$job.out")
[ "$n" -ge 1 ] && ok "Slurm's time-limit warning (SIGUSR1) reached the job $n times" || bad "no SIGUSR1 from Slurm in the job log"
n=$(grep -c "stopped with a checkpoint written; requeueing" "$T/job-$job.out")
[ "$n" -ge 1 ] && [ "$n" = "${restarts:-0}" ] && ok "every stop wrote a checkpoint and requeued ($n)" ||
    bad "requeue lines $n, restarts ${restarts:-0}"
if [ -f "$T/run/model.h5" ] && same_model "$T/ref/model.h5" "$T/run/model.h5"; then
    ok "final model of the requeued job == uninterrupted run, bit for bit"
else bad "the requeued job's model differs from the uninterrupted run (or is missing)"; fi
if [ -f "$T/run/metrics.csv" ] && [ "$(awk -F, 'NR>1{print $1}' "$T/run/metrics.csv" | tr '\n' ' ')" = "$(seq 1 "$ROUNDS" | tr '\n' ' ')" ]; then
    ok "metrics.csv: rounds 1..$ROUNDS exactly once across $((restarts + 1)) runs"
else bad "metrics.csv rounds are not 1..$ROUNDS exactly once"; fi
if same_csv 3- "$T/ref/metrics.csv" "$T/run/metrics.csv"; then
    ok "metrics.csv (all but wall time) identical to the uninterrupted run"
else bad "metrics.csv differs from the uninterrupted run"; fi

# The scaling script submits one job a size to Slurm, then collects and plots.
if FEDHPC=$FEDHPC sh jobs/slurm/scaling.sh --ranks "1 2" --rounds 4 --out "$T/scal" --wait "$T/exp.ini" >"$T/scal.log" 2>&1 &&
    [ -s "$T/scal/scaling.csv" ] && [ -s "$T/scal/speedup.png" ] && [ -s "$T/scal/efficiency.png" ]; then
    ok "scaling.sh through Slurm: $(($(wc -l <"$T/scal/scaling.csv") - 1)) rows, speedup.png, efficiency.png"
else
    bad "scaling.sh through Slurm"
    tail -20 "$T/scal.log" "$T"/scal/*/job.out 2>&1 | sed 's/^/       | /'
fi

# srun as the launcher (Open MPI through Slurm's PMIx plugin), stopped with an explicit
# `scancel --signal=USR1 --batch` (what the warning does, at a moment of our choosing)
"$FEDHPC" run "$T/exp.ini" train.rounds=40 checkpoint.every=0 output.dir="$T/ref40" >"$T/ref40.log" 2>&1 &
refpid=$!
job=$(sbatch --parsable --ntasks=2 --time=5 --output="$T/srun-%j.out" \
    --export=ALL,FEDHPC="$FEDHPC",FEDHPC_LAUNCHER=srun,FEDHPC_LAUNCHER_ARGS=--mpi=pmix \
    jobs/slurm/run.sbatch "$T/exp.ini" train.rounds=40 output.dir="$T/srun" 2>"$T/sbatch.err")
i=0
while [ "$(cat "$T/srun/metrics.csv" 2>/dev/null | wc -l)" -lt 6 ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i + 1)); done
scancel --signal=USR1 --batch "$job"
state=$(wait_job "$job" 240)
wait $refpid || bad "the 40-round reference failed"
if [ "$state" = COMPLETED ] && [ "$(job_field "$job" Restarts)" -ge 1 ] && grep -q "srun --kill-on-bad-exit=1 --mpi=pmix" "$T/srun-$job.out" &&
    same_model "$T/ref40/model.h5" "$T/srun/model.h5"; then
    ok "srun launcher: stopped by scancel --signal=USR1 --batch, requeued, model bit-identical"
else
    bad "srun launcher job $job: $state, restarts $(job_field "$job" Restarts)"
    tail -15 "$T/srun-$job.out" | sed 's/^/       | /'
fi

pids=$DAEMONS
cleanup
left=""
for p in $pids; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
[ -z "$left" ] && ok "the daemons started here are stopped" || bad "daemons still running:$left"
finish slurm
