#!/bin/sh
# One PNG for the whole multi-center grid of docs/multi-center.md: the grid.csv files that
# jobs/clusters/grid.sh wrote (e.g. the logreg/MLP grid and the CNN grid, run with different
# sizes), three panels against participation: mean ARI with k = groups, mean ARI with k = groups
# + 1, and the mean per-client accuracy gain over FedAvg with k = groups; one line per
# (model, transform, method).
#   sh jobs/clusters/plot_all.sh OUT.png GROUPS GRID.csv [GRID.csv ...]
#   sh jobs/clusters/plot_all.sh docs/clusters/grid_all.png 4 docs/clusters/grid.csv docs/clusters/cnn_grid80.csv
set -eu
[ $# -ge 3 ] || { echo "usage: plot_all.sh OUT.png GROUPS GRID.csv [GRID.csv ...]" >&2; exit 2; }
out=$1 g=$2
shift 2
for f in "$@"; do [ -r "$f" ] || { echo "plot_all.sh: cannot read $f" >&2; exit 2; }; done
command -v gnuplot >/dev/null || { echo "plot_all.sh: gnuplot not found" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# grid.csv: transform,model,part,k,method,seeds,ari_mean,ari_min,nonempty_min,assigned_mean,acc_mean,fedavg_acc_mean
awk -F, -v g="$g" -v d="$tmp" 'FNR > 1 && ($4 == g || $4 == g + 1) {
        f = d "/" ($4 == g ? "a" : "b") "_" $2 "_" $1 "_" $5 ".dat"
        print $3, $7, $11 - $12 > f }' "$@"
p1="" p2="" p3=""
for f in "$tmp"/a_*.dat "$tmp"/b_*.dat; do
    [ -f "$f" ] || continue
    sort -n "$f" -o "$f"
    t=$(basename "$f" .dat | sed 's/^[ab]_//; s/_/ /g')
    case $(basename "$f") in
    a_*) p1="$p1${p1:+, }'$f' using 1:2 with linespoints title '$t'"
         p3="$p3${p3:+, }'$f' using 1:3 with linespoints title '$t'" ;;
    b_*) p2="$p2${p2:+, }'$f' using 1:2 with linespoints title '$t'" ;;
    esac
done
[ -n "$p1" ] || { echo "plot_all.sh: no rows with k = $g in $*" >&2; exit 2; }
gnuplot <<GP
set terminal pngcairo size 1500,480 noenhanced
set output '$out.tmp'
set multiplot layout 1,3 title 'Multi-center FL under partial participation, $g groups (mean over 3 seeds)'
set xlabel 'participation (% of clients a round)'
set logscale x
set xrange [8:120]
set xtics (10, 25, 50, 100)
set key bottom right font ',7'
set ylabel 'ARI, k = $g'
set yrange [:1.02]
plot $p1
set ylabel 'ARI, k = $((g + 1))'
plot $p2
set ylabel 'mean per-client accuracy - FedAvg, k = $g'
set autoscale y
set offsets 0, 0, 0.3, 0
set key top right font ',7'
plot $p3
unset multiplot
GP
mv "$out.tmp" "$out"
echo "plot_all.sh: $out"
