#!/bin/sh
# Attack study (issue 13, docs/attacks.md): clean vs attacked FedAvg on Fashion-MNIST for each
# defence / aggregator and seed. The clean run of a (defence, seed) is the same configuration
# with [attack] fraction = 0 (no malicious client; attack_success still measured, so the clean
# model's own rate of calling a triggered image the target is the baseline).
#
#   ATTACK=backdoor|label_flip|sign_flip|scale|gaussian   the [attack] mode (required)
#   AGGREGATORS="mean maxnorm clip"   defences, one column group each:
#        mean      plain FedAvg (weighted mean), no defence
#        maxnorm   [fl] max_update_norm = $MAXNORM (updates with a larger L2 norm are rejected)
#        clip      [privacy] mode = client, clip = $CLIP, noise = $NOISE (norm bounding with
#                  equal weights 1/m; with NOISE > 0, Sun et al. 2019's weak DP)
#        other     passed as [fl] aggregator = NAME (the robust aggregators: krum, median,
#                  trimmed_mean, norm_bound, once merged)
#   BOOSTS="1 3"     [attack] boost values, one row each (a row per defence x boost)
#   FRACTION=0.1     [attack] fraction (of the sampled clients each round)
#   SEEDS="1 2 3"    ROUNDS=30   NP=1 (ranks; results are bit-identical for any NP)
#   MAXNORM=3  CLIP=0.5  NOISE=0   EXTRA="section.key=value ..." (added to every run)
#   OUT=runs/attacks/$ATTACK   FEDHPC=bin/fedhpc
# Writes $OUT/results.csv (one line per run), $OUT/table.md (means ± sd over seeds) and
# $OUT/$ATTACK.png (accuracy and attack success per defence). `sh jobs/attacks/study.sh --table`
# only rebuilds the table and plot from results.csv.
cd "$(dirname "$0")/../.." || exit 1
: "${ATTACK:?set ATTACK=backdoor|label_flip|sign_flip|scale|gaussian}"
AGGREGATORS=${AGGREGATORS:-"mean maxnorm clip"}
BOOSTS=${BOOSTS:-"1 3"}
FRACTION=${FRACTION:-0.1}
SEEDS=${SEEDS:-"1 2 3"}
ROUNDS=${ROUNDS:-30}
NP=${NP:-1}
MAXNORM=${MAXNORM:-3}
CLIP=${CLIP:-0.5}
NOISE=${NOISE:-0}
EXTRA=${EXTRA:-}
OUT=${OUT:-runs/attacks/$ATTACK}
FEDHPC=${FEDHPC:-bin/fedhpc}
CFG=jobs/attacks/fmnist_attack.ini
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
export OMPI_MCA_rmaps_base_oversubscribe=1
mkdir -p "$OUT" || exit 1

defence() { # the overrides of a defence name
    case $1 in
    mean) echo "" ;;
    maxnorm) echo "fl.max_update_norm=$MAXNORM" ;;
    clip) echo "privacy.mode=client privacy.clip=$CLIP privacy.noise=$NOISE" ;;
    *) echo "fl.aggregator=$1" ;;
    esac
}
col() { awk -F, -v c="$2" 'NR==1{for(i=1;i<=NF;i++) if($i==c) k=i; next} {v=$k} END{print v}' "$1"; }
# the column's sum over rounds; nan when no round has a value (rejected under DP is not published)
colsum() { awk -F, -v c="$2" 'NR==1{for(i=1;i<=NF;i++) if($i==c) k=i; next} $k!="nan"{s+=$k; n++} END{if(n) print s; else print "nan"}' "$1"; }

run() { # run NAME DEFENCE BOOST FRACTION SEED: one training run, one line of results.csv
    d=$OUT/runs/$1
    if [ ! -f "$d/model.h5" ]; then
        # shellcheck disable=SC2046,SC2086 # overrides are word-split on purpose
        mpirun --oversubscribe -np "$NP" "$FEDHPC" run $CFG attack.mode=$ATTACK attack.boost=$3 attack.fraction=$4 \
            train.seed=$5 train.rounds=$ROUNDS $(defence "$2") $EXTRA output.dir="$d" >"$d.log" 2>&1 ||
            { echo "study: run $1 failed (see $d.log)" >&2; tail -3 "$d.log" >&2; return 1; }
    fi
    echo "$ATTACK,$2,$3,$4,$5,$(col "$d/metrics.csv" accuracy),$(col "$d/metrics.csv" attack_success),$(colsum "$d/metrics.csv" rejected),$(colsum "$d/metrics.csv" malicious)" >>"$OUT/results.csv"
}

if [ "${1:-}" != --table ]; then
    mkdir -p "$OUT/runs"
    echo "attack,defence,boost,fraction,seed,accuracy,attack_success,rejected,malicious" >"$OUT/results.csv"
    for a in $AGGREGATORS; do
        for s in $SEEDS; do
            run "${a}_clean_s$s" "$a" 1 0 "$s" || exit 1
            for b in $BOOSTS; do run "${a}_b${b}_s$s" "$a" "$b" "$FRACTION" "$s" || exit 1; done
        done
    done
fi

# table: per defence and boost, mean ± sd over seeds of the clean and attacked runs
awk -F, -v attack="$ATTACK" '
function ms(sum, sq, n) { m = sum / n; v = n > 1 ? (sq - n * m * m) / (n - 1) : 0; if (v < 0) v = 0; return sprintf("%.4f ± %.4f", m, sqrt(v)) }
NR == 1 { next }
{
    key = $2 SUBSEP $3 SUBSEP $4
    if ($4 == 0) { ca[$2] += $6; cq[$2] += $6 * $6; cs[$2] += $7; cz[$2] += $7 * $7; cn[$2]++; next }
    if (!(key in n)) { order[++rows] = key }
    n[key]++; aa[key] += $6; aq[key] += $6 * $6; as[key] += $7; az[key] += $7 * $7; ml[key] += $9
    if ($8 == "nan") rjn[key] = 1; else rj[key] += $8
}
END {
    printf "| attack | defence | boost | clean accuracy | attacked accuracy | accuracy change (points) | clean attack success | attacked attack success | malicious updates / rejected updates (all seeds) |\n"
    printf "|---|---|---:|---:|---:|---:|---:|---:|---:|\n"
    for (i = 1; i <= rows; i++) {
        split(order[i], k, SUBSEP); d = k[1]
        sa = ms(as[order[i]], az[order[i]], n[order[i]])
        sc = ms(cs[d], cz[d], cn[d])
        if (attack != "backdoor" && attack != "label_flip") { sa = "—"; sc = "—" }
        r = (order[i] in rjn) ? "not published (DP)" : sprintf("%d", rj[order[i]])
        printf "| %s | %s | %s | %s | %s | %+.1f | %s | %s | %d / %s |\n", attack, d, k[2], ms(ca[d], cq[d], cn[d]),
            ms(aa[order[i]], aq[order[i]], n[order[i]]), 100 * (aa[order[i]] / n[order[i]] - ca[d] / cn[d]), sc, sa, ml[order[i]], r
    }
}' "$OUT/results.csv" >"$OUT/table.md"
cat "$OUT/table.md"

# plot: per defence x boost, mean clean accuracy, attacked accuracy and attack success
awk -F, 'NR == 1 { next }
{ key = $2 " b" $3; if ($4 == 0) { ca[$2] += $6; cn[$2]++; next }
  if (!(key in n)) { order[++rows] = key; def[key] = $2 }
  n[key]++; aa[key] += $6; as[key] += ($7 == "nan" ? 0 : $7) }
END { for (i = 1; i <= rows; i++) { k = order[i]; printf "\"%s\" %.4f %.4f %.4f\n", k, ca[def[k]] / cn[def[k]], aa[k] / n[k], as[k] / n[k] } }' \
    "$OUT/results.csv" >"$OUT/plot.dat"
case $ATTACK in backdoor|label_flip) SUCCESS=", '' using 4 title 'attack success'" ;; *) SUCCESS= ;; esac
if command -v gnuplot >/dev/null 2>&1; then
    gnuplot <<GP && echo "study: $OUT/$ATTACK.png"
set terminal pngcairo size 900,480
set output '$OUT/$ATTACK.png'
set title 'FedAvg on Fashion-MNIST, $ATTACK, fraction $FRACTION malicious, mean over seeds $SEEDS'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set yrange [0:1.05]
set grid ytics
set key outside bottom center horizontal
set xlabel 'defence, attack boost'
plot '$OUT/plot.dat' using 2:xtic(1) title 'clean accuracy', '' using 3 title 'attacked accuracy'$SUCCESS
GP
fi
