#!/bin/sh
# The credit-scoring study (issue 16, after Imteaj & Amini 2022; docs/credit.md).
# Cells: data set {lending_club, credit_data} x skew {natural, dirichlet, quantity} x method
# {fedavg, fedprox, clustered, async, centralized, focal (FedAvg with the focal loss, gamma 2, on
# top of the balanced class weights)}, plus weak (resource-constrained) agents under
# natural skew: speeds log-normal sigma 1 and a round deadline, the weak agents' late updates
# dropped ("without weak agents", weak_drop) or their partial work kept ("with weak agents",
# weak_partial). Every cell over SEEDS (train.seed: initial model, sampling, shuffles, speeds;
# the partition and the train/validation/test split are fixed, prepare --seed 1).
# Data: prepare --val-frac 0.15 (validation split for the decision threshold, never the test
# split); lending_club natural = one client per addr_state (50), credit_data natural = one client
# per Age in years (50; Age is then not a feature); dirichlet alpha 0.5 and quantity sigma 1 with
# 20 clients.
# Writes $OUT/credit.csv (one row a run: final-round test metrics), $OUT/credit_table.md (mean +-
# sd over seeds) and $OUT/credit_f1.png, $OUT/credit_weak.png (gnuplot).
# Usage (from the repository root): sh jobs/studies/credit/run.sh  [FEDHPC= OUT= SEEDS= ROUNDS= SHORT=1]
#   SHORT=1: one seed, 4 rounds (the CI version, tests/cli/test_credit.sh).
cd "$(dirname "$0")/../../.." || exit 1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
FEDHPC=${FEDHPC:-bin/fedhpc}
OUT=${OUT:-runs/credit}
if [ -n "$SHORT" ]; then SEEDS=${SEEDS:-1}; ROUNDS=${ROUNDS:-4}; else SEEDS=${SEEDS:-"1 2 3 4 5"}; ROUNDS=${ROUNDS:-30}; fi
CFG=jobs/studies/credit/credit.ini
DATASETS="lc cd"
SKEWS="natural dirichlet quantity"
METHODS="fedavg fedprox clustered async centralized focal"
WEAK="weak_drop weak_partial"
DEADLINE=${DEADLINE:-20}
mkdir -p "$OUT/data" || exit 1

# prepare DS SKEW: the data file
prep() {
    f=$OUT/data/$1_$2.h5
    [ -f "$f" ] && return 0
    case $1 in lc) d=lending_club; by=addr_state ;; cd) d=credit_data; by=Age ;; esac
    case $2 in
    natural) p="--partition natural --by $by" ;;
    dirichlet) p="--partition dirichlet --alpha 0.5 --clients 20" ;;
    quantity) p="--partition quantity --alpha 1 --clients 20" ;;
    esac
    "$FEDHPC" prepare $d $p --seed 1 --val-frac 0.15 --out "$f" >"$f.log" 2>&1 ||
        { echo "FAILED: prepare $1 $2 (see $f.log)" >&2; return 1; }
}
# run DIR overrides...: one training run unless DIR already holds a finished one
run() {
    _d=$OUT/runs/$1; shift
    [ -f "$_d/model.h5" ] && return 0
    mkdir -p "$_d"
    "$FEDHPC" run $CFG "$@" output.dir="$_d" >"$_d.log" 2>&1 ||
        { echo "FAILED: $_d (see $_d.log)" >&2; return 1; }
}
for ds in $DATASETS; do for sk in $SKEWS; do
    prep $ds $sk || exit 1
    C=$(grep -o '[0-9]* clients' "$OUT/data/${ds}_$sk.h5.log" | head -1 | cut -d' ' -f1)
    ms=$METHODS; [ $sk = natural ] && ms="$METHODS $WEAK"
    for s in $SEEDS; do for m in $ms; do
        case $m in
        fedavg) o="" ;;
        fedprox) o="fl.algorithm=fedprox fl.mu=0.01" ;;
        clustered) o="cluster.method=ifca cluster.k=2" ;;
        async) o="async.mode=fedbuff async.concurrency=10 async.buffer=10 system.speed_sigma=1 train.rounds=$((ROUNDS * C / 10))" ;;
        centralized) o="fl.algorithm=centralized" ;;
        focal) o="model.focal_gamma=2" ;;
        weak_drop) o="system.speed_sigma=1 async.mode=drop async.deadline=$DEADLINE" ;;
        weak_partial) o="system.speed_sigma=1 async.mode=partial async.deadline=$DEADLINE" ;;
        esac
        run "${ds}_${sk}/${m}_s$s" data.file="$OUT/data/${ds}_$sk.h5" train.rounds=$ROUNDS $o train.seed=$s || exit 1
    done; done
done; done

# the CSV: final-round test metrics of every run
col() { head -1 "$1" | tr ',' '\n' | grep -nx "$2" | cut -d: -f1; }
CSV=$OUT/credit.csv
echo "dataset,skew,method,seed,f1_minority_thr,f1_minority,f1_macro,f1_macro_thr,auc,pr_auc,accuracy,threshold" >"$CSV"
for ds in $DATASETS; do for sk in $SKEWS; do
    ms=$METHODS; [ $sk = natural ] && ms="$METHODS $WEAK"
    for m in $ms; do for s in $SEEDS; do
        f=$OUT/runs/${ds}_$sk/${m}_s$s/metrics.csv
        line=""
        for c in f1_minority_thr f1_minority f1 f1_thr auc pr_auc accuracy threshold; do
            line="$line,$(tail -1 "$f" | cut -d, -f"$(col "$f" $c)")"
        done
        echo "$ds,$sk,$m,$s$line" >>"$CSV"
    done; done
done; done

# the Markdown tables: mean +- sd over seeds; FL minus centralized on the minority F1 paired by
# seed (mean +- sd, and on how many seeds |FL - centralized| <= 0.03); weak agents
MD=$OUT/credit_table.md
{
echo "| data set | skew | method | minority F1 (validation threshold) | FL - centralized (paired) | seeds within 0.03 | minority F1 (argmax) | macro-F1 (val. thr.) | ROC-AUC | PR-AUC |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"
awk -F, 'NR == FNR { if (FNR > 1 && $3 == "centralized") c[$1, $2, $4] = $5; next }
FNR > 1 {
    k = $1 "," $2 "," $3; if (!(k in n)) order[++nk] = k
    n[k]++; for (i = 5; i <= 10; i++) { s[k, i] += $i; q[k, i] += $i * $i }
    d = $5 - c[$1, $2, $4]; ds[k] += d; dq[k] += d * d; if (d <= 0.03 && d >= -0.03) w[k]++
}
function msd(a, b, m,   v) { v = m > 1 ? (b - m * (a / m) ^ 2) / (m - 1) : 0; if (v < 0) v = 0; return sqrt(v) }
function ms(k, i) { return sprintf("%.3f ± %.3f", s[k, i] / n[k], msd(s[k, i], q[k, i], n[k])) }
END {
    for (j = 1; j <= nk; j++) {
        k = order[j]; split(k, a, ",")
        if (a[3] == "centralized") { d = "–"; wn = "–" }
        else { d = sprintf("%+.3f ± %.3f", ds[k] / n[k], msd(ds[k], dq[k], n[k])); wn = (w[k] + 0) "/" n[k] }
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", a[1] == "lc" ? "lending_club" : "credit_data", a[2], a[3],
            ms(k, 5), d, wn, ms(k, 6), ms(k, 8), ms(k, 9), ms(k, 10)
    }
}' "$CSV" "$CSV"
echo
echo "Weak agents (natural skew; speeds log-normal sigma 1, deadline $DEADLINE virtual seconds): minority F1 at the validation threshold, paired by seed."
echo
echo "| data set | FedAvg, everyone waited for | without weak agents (drop) | with weak agents (partial work) | with - without | seeds where with > without | centralized |"
echo "|---|---:|---:|---:|---:|---:|---:|"
awk -F, 'NR > 1 && $2 == "natural" { v[$1, $3, $4] = $5; seeds[$4] = 1; dsn[$1] = 1 }
END {
    split("lc cd", D, " ")
    for (j = 1; j <= 2; j++) {
        x = D[j]; if (!(x in dsn)) continue
        split("", S); split("", Q); n = 0; dd = 0; dq = 0; win = 0
        for (s in seeds) {
            n++; split("fedavg weak_drop weak_partial centralized", M, " ")
            for (i = 1; i <= 4; i++) { S[i] += v[x, M[i], s]; Q[i] += v[x, M[i], s] ^ 2 }
            d = v[x, "weak_partial", s] - v[x, "weak_drop", s]; dd += d; dq += d * d; win += d > 0
        }
        printf "| %s", x == "lc" ? "lending_club" : "credit_data"
        for (i = 1; i <= 4; i++) {
            if (i == 4) printf " | %+.3f ± %.3f | %d/%d", dd / n, sd(dd, dq, n), win, n
            printf " | %.3f ± %.3f", S[i] / n, sd(S[i], Q[i], n)
        }
        printf " |\n"
    }
}
function sd(a, b, m,   t) { t = m > 1 ? (b - m * (a / m) ^ 2) / (m - 1) : 0; return sqrt(t < 0 ? 0 : t) }' "$CSV"
} >"$MD"

# PNGs: minority F1 (validation threshold) per method, one cluster per data set x skew
awk -F, 'NR > 1 && $3 !~ /^weak/ { k = ($1 == "lc" ? "lending_club" : "credit_data") "/" $2; s[k, $3] += $5; n[k, $3]++; if (!(k in seen)) { seen[k] = 1; ks[++nk] = k } }
END { split("fedavg fedprox clustered async centralized focal", M, " ")
      for (j = 1; j <= nk; j++) { printf "%s", ks[j]; for (i = 1; i <= 6; i++) printf " %.4f", s[ks[j], M[i]] / n[ks[j], M[i]]; printf "\n" } }' \
    "$CSV" >"$OUT/credit_f1.dat"
awk -F, 'NR > 1 && $2 == "natural" && ($3 == "fedavg" || $3 ~ /^weak/ || $3 == "centralized") { s[$1, $3] += $5; n[$1, $3]++ }
END { split("lc cd", D, " "); split("fedavg weak_drop weak_partial centralized", M, " ")
      for (j = 1; j <= 2; j++) { printf "%s", D[j] == "lc" ? "lending_club" : "credit_data"; for (i = 1; i <= 4; i++) printf " %.4f", s[D[j], M[i]] / n[D[j], M[i]]; printf "\n" } }' \
    "$CSV" >"$OUT/credit_weak.dat"
if command -v gnuplot >/dev/null 2>&1; then
    gnuplot <<GP || echo "gnuplot failed (the CSV and the table are written)" >&2
set terminal png size 1000,480 noenhanced
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set yrange [0:1]
set key top left
set ylabel "minority-class F1 (threshold from the validation split)"
set xtics rotate by -20
set output "$OUT/credit_f1.png"
set title "Credit study: minority F1 over seeds ($SEEDS), $ROUNDS rounds"
plot "$OUT/credit_f1.dat" using 2:xtic(1) title "FedAvg", '' using 3 title "FedProx", '' using 4 title "clustered (IFCA k=2)", \
     '' using 5 title "async (FedBuff)", '' using 6 title "centralized", '' using 7 title "FedAvg + focal loss"
set output "$OUT/credit_weak.png"
set title "Weak agents (speeds log-normal sigma 1, deadline $DEADLINE), natural skew"
plot "$OUT/credit_weak.dat" using 2:xtic(1) title "FedAvg (all wait)", '' using 3 title "without weak agents (drop)", \
     '' using 4 title "with weak agents (partial work)", '' using 5 title "centralized"
GP
fi
cat "$MD"
