# The batch-job scripts in jobs/ without a batch system: syntax of every script, their argument
# checks, run.sbatch's stop-and-requeue logic with a stand-in `scontrol` (the real Slurm path
# is tests/cli/test_slurm.sh), a PBS dry run and a full PBS walltime-stop-resubmit cycle with
# stand-in `qsub`/`qstat`, and the scaling script on 1 and 2 ranks (--direct) producing its
# CSVs and PNGs. Resumed models must equal the uninterrupted run's bit for bit.
. "$(dirname "$0")/lib.sh"
echo "job script tests"
FM=$FEDHPC_ROOT/data/fmnist_dir05_c100.h5
[ -f "$FM" ] || { bad "missing $FM (run make data)"; finish jobs; exit 1; }

# 1. syntax
for s in jobs/slurm/run.sbatch jobs/slurm/scaling.sbatch jobs/pbs/run.pbs jobs/slurm/scaling.sh; do
    bash -n "$s" 2>"$T/err" && ok "bash -n $s" || { bad "bash -n $s"; cat "$T/err"; }
done
sh -n jobs/slurm/scaling.sh && ok "sh -n jobs/slurm/scaling.sh (POSIX sh)" || bad "sh -n scaling.sh"
grep -q '^#SBATCH --signal=B:USR1@' jobs/slurm/run.sbatch && grep -q '^#SBATCH --requeue' jobs/slurm/run.sbatch &&
    ok "run.sbatch asks for the warning signal and is requeueable" || bad "run.sbatch #SBATCH header"
grep -q '^#PBS -l walltime=' jobs/pbs/run.pbs && grep -q '^#PBS -r y' jobs/pbs/run.pbs && ok "run.pbs #PBS header" || bad "run.pbs #PBS header"

# 2. argument checks
bash jobs/slurm/run.sbatch >/dev/null 2>"$T/err"
[ $? = 2 ] && grep -q usage "$T/err" && ok "run.sbatch without a config: usage, exit 2" || bad "run.sbatch without arguments"
FEDHPC_LAUNCHER=qrsh bash jobs/slurm/run.sbatch x.ini >/dev/null 2>"$T/err"
[ $? = 2 ] && grep -q FEDHPC_LAUNCHER "$T/err" && ok "run.sbatch: bad FEDHPC_LAUNCHER, exit 2" || bad "run.sbatch bad launcher"
env -u FEDHPC_CONFIG bash jobs/pbs/run.pbs >/dev/null 2>"$T/err"
[ $? = 2 ] && grep -q FEDHPC_CONFIG "$T/err" && ok "run.pbs without FEDHPC_CONFIG: exit 2" || bad "run.pbs without FEDHPC_CONFIG"
refused=0
for a in "--ranks 0" "--ranks x" "--mode diagonal" "--rounds -1" "--bogus"; do
    # shellcheck disable=SC2086
    sh jobs/slurm/scaling.sh --direct $a "$T/x.ini" >/dev/null 2>"$T/err"
    [ $? = 2 ] && [ -s "$T/err" ] && refused=$((refused + 1)) || bad "scaling.sh $a: not refused with exit 2"
done
[ $refused = 5 ] && ok "scaling.sh refuses bad --ranks/--mode/--rounds/options (exit 2)"

# The experiment: a few seconds of training, checkpoint every 5 rounds. The PBS cycle below
# stops a run 3 s into a 5 s "walltime", so the run must take longer than that on this
# machine: 20 calibration rounds set the number of rounds (at least 60) for about 8 s.
R=${FEDHPC_JOBS_ROUNDS:-60}
write_ini() {
cat >"$T/e.ini" <<INI
[data]
file = $FM
[model]
type = mlp
hidden = 64
[train]
rounds = $R
clients_per_round = 10
batch_size = 10
eval_every = 20
[checkpoint]
every = 5
[output]
progress = lines
INI
}
write_ini
if [ -z "${FEDHPC_JOBS_ROUNDS:-}" ] &&
    "$FEDHPC" run "$T/e.ini" output.dir="$T/cal" checkpoint.every=0 train.rounds=20 >/dev/null 2>&1; then
    R=$(awk -F, 'NR > 1 {s += $2} END {r = s > 0 ? int(20 * 8 / s) + 1 : 60; print (r < 60 ? 60 : (r > 20000 ? 20000 : r))}' "$T/cal/metrics.csv")
    write_ini
fi
"$FEDHPC" run "$T/e.ini" output.dir="$T/ref" checkpoint.every=0 >"$T/ref.log" 2>&1 &&
    ok "reference run ($R rounds, $(awk -F, 'NR>1{s+=$2} END{printf "%.1f", s}' "$T/ref/metrics.csv") s of rounds)" ||
    { bad "reference run"; tail -5 "$T/ref.log"; finish jobs; exit 1; }
rounds_once() { [ "$(awk -F, 'NR>1{print $1}' "$1" | tr '\n' ' ')" = "$(seq 1 "$R" | tr '\n' ' ')" ]; }

# 3. run.sbatch outside Slurm with a stand-in scontrol: SIGUSR1 to the script (what
#    --signal=B:USR1 does) -> the run stops with a checkpoint -> `scontrol requeue JOBID`
#    (the stand-in ends the script as Slurm's requeue does) -> the restart completes the run
mkdir -p "$T/fake"
cat >"$T/fake/scontrol" <<EOF
#!/bin/sh
echo "\$*" >>"$T/scontrol.calls"
kill -TERM \$PPID
EOF
chmod +x "$T/fake/scontrol"
PATH=$T/fake:$PATH SLURM_JOB_ID=77 SLURM_NTASKS=2 FEDHPC=$FEDHPC bash jobs/slurm/run.sbatch "$T/e.ini" \
    output.dir="$T/sb" >"$T/sb1.log" 2>&1 &
pid=$!
i=0
while [ "$(cat "$T/sb/metrics.csv" 2>/dev/null | wc -l)" -lt 8 ] && kill -0 $pid 2>/dev/null && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
kill -USR1 $pid
wait $pid
rc=$?
[ $rc = 3 ] && [ "$(cat "$T/scontrol.calls" 2>/dev/null)" = "requeue 77" ] &&
    ok "run.sbatch: SIGUSR1 -> run stopped (exit 3) -> scontrol requeue 77" ||
    { bad "run.sbatch stop/requeue: exit $rc, scontrol calls: $(cat "$T/scontrol.calls" 2>/dev/null)"; tail -8 "$T/sb1.log" | sed 's/^/       | /'; }
PATH=$T/fake:$PATH SLURM_JOB_ID=77 SLURM_NTASKS=1 SLURM_RESTART_COUNT=1 FEDHPC=$FEDHPC bash jobs/slurm/run.sbatch \
    "$T/e.ini" output.dir="$T/sb" >"$T/sb2.log" 2>&1
rc=$?
[ $rc = 0 ] && same_model "$T/ref/model.h5" "$T/sb/model.h5" && rounds_once "$T/sb/metrics.csv" &&
    ok "run.sbatch restart (1 task instead of 2) resumed: model bit-identical, metrics rounds once" ||
    { bad "run.sbatch restart: exit $rc"; tail -8 "$T/sb2.log" | sed 's/^/       | /'; }
FEDHPC_MAX_REQUEUES=0 PATH=$T/fake:$PATH SLURM_JOB_ID=78 SLURM_NTASKS=1 FEDHPC=$FEDHPC bash jobs/slurm/run.sbatch \
    "$T/e.ini" output.dir="$T/sbmax" >"$T/sb3.log" 2>&1 &
pid=$!
i=0
while [ ! -s "$T/sbmax/metrics.csv" ] && kill -0 $pid 2>/dev/null && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
sleep 0.3
kill -TERM $pid
wait $pid
rc=$?
# (scontrol.calls exists: the requeue of job 77 above wrote it; a missing file is not "no requeue")
[ $rc = 3 ] && [ -f "$T/scontrol.calls" ] && ! grep -q "requeue 78" "$T/scontrol.calls" && grep -q "not requeued" "$T/sb3.log" &&
    ok "run.sbatch: SIGTERM (scancel) -> checkpoint, exit 3, no requeue" || { bad "run.sbatch SIGTERM: exit $rc"; tail -5 "$T/sb3.log"; }

# 4. PBS dry run in an emulated PBS environment
printf 'node1\nnode1\nnode2\nnode2\n' >"$T/nodefile"
PBS_O_WORKDIR=$FEDHPC_ROOT PBS_JOBID=4242.server PBS_NODEFILE=$T/nodefile FEDHPC_CONFIG=jobs/configs/fmnist_fedavg.ini \
    FEDHPC_ARGS="train.rounds=5 checkpoint.every=1" FEDHPC_WALLTIME=01:00:00 FEDHPC_MARGIN=120 FEDHPC_DRY_RUN=1 \
    bash jobs/pbs/run.pbs >"$T/dry.out" 2>&1
rc=$?
sed 's/^/       | /' "$T/dry.out"
[ $rc = 0 ] && grep -q "mpirun -np 4 --hostfile $T/nodefile .*fedhpc run jobs/configs/fmnist_fedavg.ini train.rounds=5 checkpoint.every=1 --resume" "$T/dry.out" &&
    grep -q "after 3480s" "$T/dry.out" &&
    grep -q "qsub -V -v FEDHPC_RESUBMIT_COUNT=1 -W depend=afterany:4242.server $FEDHPC_ROOT/jobs/pbs/run.pbs" "$T/dry.out" &&
    ok "run.pbs dry run: 4 ranks from PBS_NODEFILE, stop at walltime - 120 s, resubmission command" || bad "run.pbs dry run"

# 5. a full PBS cycle with stand-in qstat (walltime) and qsub (records the resubmission): the
#    timer stops the run before the "walltime", the job resubmits itself, the next job resumes
cat >"$T/fake/qstat" <<EOF
#!/bin/sh
printf 'Job Id: %s\n    Resource_List.nodes = 1:ppn=2\n    Resource_List.walltime = ${FEDHPC_JOBS_WALLTIME:-00:00:05}\n' "\$2"
EOF
cat >"$T/fake/qsub" <<EOF
#!/bin/sh
echo "\$*" >>"$T/qsub.calls"
echo "\$(( \$(wc -l <"$T/qsub.calls") + 100 )).server"
EOF
chmod +x "$T/fake/qstat" "$T/fake/qsub"
printf 'localhost\nlocalhost\n' >"$T/nodefile2"
count=0
job=100.server
while :; do
    PATH=$T/fake:$PATH PBS_O_WORKDIR=$FEDHPC_ROOT PBS_JOBID=$job PBS_NODEFILE=$T/nodefile2 FEDHPC=$FEDHPC \
        FEDHPC_CONFIG=$T/e.ini FEDHPC_ARGS="output.dir=$T/pbs" FEDHPC_MARGIN=${FEDHPC_JOBS_MARGIN:-2} \
        FEDHPC_RESUBMIT_COUNT=$count bash jobs/pbs/run.pbs >>"$T/pbs.log" 2>&1
    rc=$?
    # exit 3: stopped with a checkpoint; the job resubmitted itself when qsub was called
    [ "$(cat "$T/qsub.calls" 2>/dev/null | wc -l)" -gt $count ] || break
    [ $rc = 3 ] || echo "       | job $job: exit $rc (stopped before it could checkpoint), resubmitted"
    count=$((count + 1))
    job=$((count + 100)).server
    [ $count -lt 15 ] || break
done
tail -1 "$T/qsub.calls" 2>/dev/null | sed 's/^/       | last resubmission: qsub /'
[ $rc = 0 ] && [ $count -ge 1 ] && ok "run.pbs: stopped by its walltime timer and resubmitted $count times, then complete" ||
    { bad "run.pbs cycle: exit $rc after $count resubmissions"; tail -8 "$T/pbs.log" | sed 's/^/       | /'; }
grep -q -- "-W depend=afterany:100.server $FEDHPC_ROOT/jobs/pbs/run.pbs" "$T/qsub.calls" 2>/dev/null &&
    grep -q "FEDHPC_RESUBMIT_COUNT=1 " "$T/qsub.calls" && ok "resubmission depends on the stopped job (afterany) and counts" ||
    bad "resubmission arguments: $(head -1 "$T/qsub.calls" 2>/dev/null)"
same_model "$T/ref/model.h5" "$T/pbs/model.h5" 2>/dev/null && rounds_once "$T/pbs/metrics.csv" &&
    ok "PBS cycle: model bit-identical to the uninterrupted run, metrics rounds 1..$R once" || bad "PBS cycle model/metrics"

# 6. the scaling script, directly on 1 and 2 ranks: CSVs and PNGs
FEDHPC=$FEDHPC sh jobs/slurm/scaling.sh --direct --ranks "1 2" --rounds 4 --out "$T/scal" "$T/e.ini" >"$T/scal.log" 2>&1
rc=$?
sed 's/^/       | /' "$T/scal.log" | tail -5
[ $rc = 0 ] && [ "$(wc -l <"$T/scal/scaling.csv")" = 5 ] && ok "scaling.sh --direct: scaling.csv with strong and weak rows for 1 and 2 ranks" ||
    { bad "scaling.sh --direct: exit $rc"; tail -5 "$T/scal.log"; }
head -1 "$T/scal/scaling.csv" | grep -q '^mode,ranks,clients_per_round,rounds_timed,round_s_median,round_s_mean,speedup,efficiency$' &&
    ok "scaling.csv columns" || bad "scaling.csv header"
# rounds 2 and 3 are timed (not round 1, not the evaluated last round): 2 a run, 4 runs
[ "$(grep -c -E '^(strong|weak),' "$T/scal/rounds.csv")" = 8 ] && ok "rounds.csv: the timed rounds of every run (8)" || bad "rounds.csv rows"
awk -F, 'NR>1 { c = ($1 == "weak") ? 10 * $2 : 10; if ($3 != c) exit 1
    if ($2 == 1 && ($7 != 1 || $8 != 1)) exit 1
    if ($1 == "strong" && ($8 - $7 / $2 > 1e-3 || $7 / $2 - $8 > 1e-3)) exit 1
    if ($1 == "weak" && ($7 - $8 * $2 > 1e-3 || $8 * $2 - $7 > 1e-3)) exit 1 }
    END { if (NR < 5) exit 1 }' "$T/scal/scaling.csv" &&
    ok "speedup/efficiency consistent; weak runs 10 clients a rank" || { bad "scaling.csv values"; cat "$T/scal/scaling.csv"; }
for p in speedup efficiency; do
    [ -s "$T/scal/$p.png" ] && head -c 8 "$T/scal/$p.png" | grep -q PNG && ok "$p.png is a PNG" || bad "$p.png"
done
[ "$(awk -F, '$1=="strong" && $2==2 {print $3}' "$T/scal/rounds.csv" | sort -u)" = 10 ] && ok "strong: 10 clients a round on 2 ranks too" ||
    bad "strong scaling clients"
finish jobs
