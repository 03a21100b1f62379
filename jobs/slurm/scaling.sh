#!/bin/sh
# jobs/slurm/scaling.sh — strong and weak scaling of one experiment over 1, 2, 4, ... ranks.
#
#   sh jobs/slurm/scaling.sh [options] CONFIG.ini [section.key=value ...]
#   sh jobs/slurm/scaling.sh --collect --out DIR
#
#   --ranks "1 2 4 8"   rank counts (default "1 2 4 8"); the first is the baseline
#   --mode M            strong, weak or both (default both)
#   --rounds R          rounds a run (default 10); timed are all but the first round and the
#                       evaluated ones (test evaluation only after the last round)
#   --out DIR           output directory (default runs/scaling)
#   --direct            run each size here with mpirun, one after the other (on a workstation
#                       or inside an salloc/sbatch allocation) instead of submitting Slurm jobs
#   --wait              (Slurm) wait until every job and the collection have finished
#   --collect           only collect DIR/*/metrics.csv into the CSVs and plot (what the final
#                       Slurm job runs)
#   --sbatch-args "..." extra sbatch options for every job (partition, account, time, ...)
#
# Strong scaling keeps [train] clients_per_round fixed (the config's value, default 10) for
# every rank count; weak scaling gives every rank the same work: clients_per_round = that value
# times ranks / the baseline ranks. Slurm mode submits one jobs/slurm/scaling.sbatch job per
# (mode, ranks) with --ntasks=ranks, then a collection job that depends on all of them.
#
# Files in DIR:
#   strong-P/, weak-P/   each run's output (metrics.csv, run.yaml, model.h5, job.out)
#   rounds.csv           mode,ranks,clients_per_round,round,wall_s — every timed round of every run
#   scaling.csv          mode,ranks,clients_per_round,rounds_timed,round_s_median,round_s_mean,
#                        speedup,efficiency — strong: speedup = T(P0)/T(P),
#                        efficiency = speedup * P0 / P; weak: efficiency = T(P0)/T(P),
#                        speedup = efficiency * P / P0 (scaled speedup); T = median round time
#   speedup.png, efficiency.png   both modes against the ideal line (gnuplot)
# Environment: FEDHPC (the binary, default bin/fedhpc), MPIRUN (default "mpirun"; --direct),
# FEDHPC_LAUNCHER / FEDHPC_LAUNCHER_ARGS (Slurm jobs, see scaling.sbatch).
set -u
ranks="1 2 4 8"
mode=both
rounds=10
out=runs/scaling
direct=0
wait=0
collect=0
sbatch_args=""
die() { echo "scaling.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case $1 in
    --ranks) [ $# -ge 2 ] || die "--ranks needs a value"; ranks=$2; shift 2 ;;
    --mode) [ $# -ge 2 ] || die "--mode needs a value"; mode=$2; shift 2 ;;
    --rounds) [ $# -ge 2 ] || die "--rounds needs a value"; rounds=$2; shift 2 ;;
    --out) [ $# -ge 2 ] || die "--out needs a value"; out=$2; shift 2 ;;
    --sbatch-args) [ $# -ge 2 ] || die "--sbatch-args needs a value"; sbatch_args=$2; shift 2 ;;
    --direct) direct=1; shift ;;
    --wait) wait=1; shift ;;
    --collect) collect=1; shift ;;
    -h | --help) sed -n '2,35p' "$0"; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
    esac
done
case $mode in strong) modes=strong ;; weak) modes=weak ;; both) modes="strong weak" ;; *) die "--mode must be strong, weak or both" ;; esac
for p in $ranks; do case $p in '' | *[!0-9]* | 0) die "--ranks: '$p' is not a positive integer" ;; esac; done
case $rounds in '' | *[!0-9]* | 0) die "--rounds: '$rounds' is not a positive integer" ;; esac
p0=$(echo $ranks | cut -d' ' -f1)

# collect: every metrics.csv under $out into rounds.csv and scaling.csv, then the two plots
collect() {
    printf 'mode,ranks,clients_per_round,round,wall_s\n' >"$out/rounds.csv"
    found=0
    for d in "$out"/strong-* "$out"/weak-*; do
        [ -f "$d/metrics.csv" ] || continue
        found=1
        m=$(basename "$d" | cut -d- -f1)
        p=$(basename "$d" | cut -d- -f2)
        # timed: the training rounds, not the first (start-up: page cache, first allocations)
        # nor those with a test evaluation (always the last); all rounds if that leaves none
        awk -F, -v m="$m" -v p="$p" 'NR==1{for(i=1;i<=NF;i++){if($i=="round")r=i; if($i=="wall_s")w=i; if($i=="clients")c=i; if($i=="test_loss")e=i}; next}
            {row[NR]=m","p","$c","$r","$w; ev[NR]=($e!="nan")}
            END{k=0; for(i=3;i<=NR;i++) if(!ev[i]){print row[i]; k++}
                if(!k) for(i=2;i<=NR;i++) print row[i]}' "$d/metrics.csv" >>"$out/rounds.csv"
    done
    [ $found = 1 ] || { echo "scaling.sh: no metrics.csv under $out" >&2; return 1; }
    # median and mean a (mode, ranks); speedup and efficiency against the smallest rank count
    sort -t, -k1,1 -k2,2n -k5,5g "$out/rounds.csv" | awk -F, '
        NR==1 || $1=="mode" {next}
        {k=$1","$2; if(!(k in n)){keys[++nk]=k; cpr[k]=$3}; n[k]++; v[k,n[k]]=$5; s[k]+=$5}
        END{
            print "mode,ranks,clients_per_round,rounds_timed,round_s_median,round_s_mean,speedup,efficiency"
            for(i=1;i<=nk;i++){k=keys[i]; split(k,a,","); c=n[k]
                med=(c%2)?v[k,(c+1)/2]:(v[k,c/2]+v[k,c/2+1])/2
                if(!(a[1] in base)){base[a[1]]=med; bp[a[1]]=a[2]}
                t0=base[a[1]]; q0=bp[a[1]]
                if(a[1]=="strong"){sp=t0/med; ef=sp*q0/a[2]} else {ef=t0/med; sp=ef*a[2]/q0}
                printf "%s,%d,%d,%d,%.6f,%.6f,%.4f,%.4f\n", a[1], a[2], cpr[k], c, med, s[k]/c, sp, ef}
        }' >"$out/scaling.csv"
    for m in strong weak; do grep "^$m," "$out/scaling.csv" >"$out/.$m.dat" || true; done
    command -v gnuplot >/dev/null || { echo "scaling.sh: gnuplot not found (install gnuplot-nox): no plots" >&2; return 1; }
    maxp=$(awk -F, 'NR>1 && $2>m{m=$2} END{print m+0}' "$out/scaling.csv")
    p0=$(awk -F, 'NR>1 && (m=="" || $2<m){m=$2} END{print m+0}' "$out/scaling.csv")
    plots() { # column title-of-ideal
        sep=""
        for m in strong weak; do
            [ -s "$out/.$m.dat" ] || continue
            printf '%s"%s/.%s.dat" using 2:%s with linespoints pt 7 title "%s"' "$sep" "$out" "$m" "$1" "$m"
            sep=", "
        done
        printf '%s%s with lines dt 2 lc rgb "gray" title "ideal"\n' "$sep" "$2"
    }
    gnuplot <<EOF || { echo "scaling.sh: gnuplot failed" >&2; return 1; }
set datafile separator ","
set terminal pngcairo size 800,500 noenhanced
set key top left
set grid
set xlabel "ranks"
set xrange [0:$((maxp + 1))]
set output "$out/speedup.png"
set title "fedhpc speedup (strong: T(P0)/T(P); weak: scaled, P/P0 * T(P0)/T(P)); P0 = $p0"
set ylabel "speedup"
plot $(plots 7 "x/$p0")
set output "$out/efficiency.png"
set title "fedhpc parallel efficiency (median round time)"
set ylabel "efficiency"
set key bottom left
set yrange [0:1.15<*]
plot $(plots 8 1)
EOF
    rm -f "$out/.strong.dat" "$out/.weak.dat"
    echo "scaling.sh: $out/scaling.csv, $out/rounds.csv, $out/speedup.png, $out/efficiency.png"
    column -s, -t <"$out/scaling.csv" 2>/dev/null || cat "$out/scaling.csv"
}

mkdir -p "$out" || exit 1
if [ $collect = 1 ]; then
    collect
    exit $?
fi
[ $# -ge 1 ] || die "expected CONFIG.ini (see --help)"
config=$1
shift
[ -f "$config" ] || die "$config: no such file"
FEDHPC=${FEDHPC:-bin/fedhpc}

# clients_per_round: the last override, else the [train] value in the file, else the default 10
cpr=$(awk -F= '/^[ \t]*\[/{s=$0; gsub(/[][ \t]/,"",s)} s=="train" && $1~/^[ \t]*clients_per_round[ \t]*$/{v=$2; gsub(/[ \t;]/,"",v)} END{print v}' "$config")
for a in "$@"; do case $a in train.clients_per_round=*) cpr=${a#train.clients_per_round=} ;; esac; done
cpr=${cpr:-10}

# args MODE P: the run's overrides
args() {
    c=$cpr
    [ "$1" = weak ] && c=$((cpr * $2 / p0))
    echo "train.rounds=$rounds train.clients_per_round=$c train.eval_every=$rounds checkpoint.every=0 output.progress=lines output.dir=$out/$1-$2"
}

if [ $direct = 1 ]; then
    for m in $modes; do
        for p in $ranks; do
            echo "scaling.sh: $m scaling, $p ranks"
            rm -rf "$out/$m-$p"
            mkdir -p "$out/$m-$p"
            # shellcheck disable=SC2046 # args() is a list of words without spaces
            ${MPIRUN:-mpirun} -np "$p" "$FEDHPC" run "$config" "$@" $(args $m $p) >"$out/$m-$p/job.out" 2>&1 ||
                { echo "scaling.sh: the $m run on $p ranks failed (see $out/$m-$p/job.out):" >&2; tail -5 "$out/$m-$p/job.out" >&2; exit 1; }
        done
    done
    collect
    exit $?
fi

command -v sbatch >/dev/null || die "sbatch not found: run inside Slurm, or use --direct"
here=$(cd "$(dirname "$0")" && pwd)
ids=""
for m in $modes; do
    for p in $ranks; do
        rm -rf "$out/$m-$p"
        mkdir -p "$out/$m-$p"
        # shellcheck disable=SC2046,SC2086 # word lists on purpose
        id=$(sbatch --parsable --ntasks="$p" --job-name="fedhpc-$m-$p" --output="$out/$m-$p/job.out" $sbatch_args \
            --export=ALL,FEDHPC="$FEDHPC" "$here/scaling.sbatch" "$config" "$@" $(args $m $p)) ||
            die "sbatch failed for $m, $p ranks"
        echo "scaling.sh: $m scaling, $p ranks: job $id"
        ids="$ids:$id"
    done
done
# the collection runs when every run has ended (afterany: a failed size is left out, not fatal)
waitopt=""
[ $wait = 1 ] && waitopt=--wait
# shellcheck disable=SC2086
id=$(sbatch --parsable $waitopt --ntasks=1 --job-name=fedhpc-scaling-collect --dependency="afterany$ids" \
    --output="$out/collect.out" $sbatch_args --wrap "sh '$here/scaling.sh' --collect --ranks '$ranks' --out '$out'")
rc=$?
echo "scaling.sh: collection job ${id:-?} runs after$(echo "$ids" | tr ':' ' '); results in $out/scaling.csv"
if [ $wait = 1 ]; then
    cat "$out/collect.out" 2>/dev/null
    exit $rc
fi
