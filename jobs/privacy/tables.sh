#!/bin/sh
# Build the privacy-utility table + PNG and the secagg cost table from runs/privacy/tab/*/metrics.csv
cd runs/privacy/tab
last() { awk -F, -v c="$2" 'NR==1{for(i=1;i<=NF;i++) if($i==c) k=i; next} $5!="nan"{v=$k} END{print v}' "$1"; }
echo "| target epsilon | DP-SGD (10 silos) test accuracy | epsilon spent | DP-FedAvg (1000 clients) test accuracy | epsilon spent |"
echo "|---:|---:|---:|---:|---:|"
: > pu.dat
for e in 1 2 4 8 inf; do
  a=$(last sgd_$e/metrics.csv accuracy); s=$(last sgd_$e/metrics.csv epsilon)
  b=$(last cl_$e/metrics.csv accuracy); t=$(last cl_$e/metrics.csv epsilon)
  echo "| $e | $a | $s | $b | $t |"
  x=$e; [ $e = inf ] && x=16
  echo "$x $a $b" >> pu.dat
done
gnuplot <<GP
set terminal pngcairo size 800,500
set output 'runs/privacy/privacy_utility.png'
set logscale x 2
set xrange [0.9:18]
set xtics ("1" 1, "2" 2, "4" 4, "8" 8, "inf" 16)
set xlabel "epsilon (delta = 1e-5)"
set ylabel "test accuracy"
set key bottom right
set grid
set title "Fashion-MNIST: privacy vs utility"
plot 'pu.dat' u 1:2 w lp lw 2 t "sample-level DP-SGD, 10 silos, MLP 784-100-10", \
     'pu.dat' u 1:3 w lp lw 2 t "client-level DP-FedAvgM, 1000 clients (100/round), MLP 784-32-10"
GP
echo
echo "| parameters | graph | dropout | s/round without secagg | s/round with secagg | overhead | mask GB/s | raw ChaCha20 GB/s | mask / raw |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|"
for h in 128 1262; do
  P=$([ $h = 128 ] && echo 101,770 || echo 1,003,300)
  for d in 0 0.1; do
    base=$(awk -F, 'NR>=2 && NR<=3{s+=$2; n++} END{printf "%.2f", s/n}' sa_${h}_plain_$d/metrics.csv)
    for k in 0 16; do
      f=sa_${h}_k${k}_$d/metrics.csv
      [ -f $f ] || continue
      awk -F, -v P="$P" -v k=$k -v d=$d -v base=$base 'NR>=2 && NR<=3{s+=$2; m+=$17; c+=$18; n++} END{
        g = (k == 0 ? "full (99)" : "k = 16"); printf "| %s | %s | %d%% | %s | %.2f | %.1fx | %.2f | %.2f | %.0f%% |\n", P, g, d*100, base, s/n, (s/n)/base, m/n, c/n, 100*m/c}' $f
    done
  done
done
