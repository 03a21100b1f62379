#!/bin/sh
# Gradient-leakage sweep (docs/leakage.md): Fashion-MNIST (20 iid clients), MLP 784-200-10 at its
# initial model, lr 0.05, full-batch local steps; attacks: analytic + gradient matching (Adam,
# cosine loss, 2000 iterations). Each setting attacks the rows of TARGETS clients (default
# 0 1 2) and reports the mean over them.
#   rows 1: batch size 1, 4, 16, 64 x local epochs 1, 5 (no defence)
#   variants: Euclidean loss (Zhu et al.), joint soft labels (DLG), true labels, a TV prior
#   rows 2: batch 1, E = 1 under each defence: DP-SGD (sample level) and client-level DP at
#           epsilon 1, 10, 100, 1000, 10000 for this one round; top-k 10% and 1%; secure
#           aggregation of 2, 10 clients (the attacker sees only the sum)
# Writes OUT/sweep.csv (one row per setting, target and method), OUT/sweep.md (the table) and
# OUT/leakage_b1.png, OUT/leakage_b4.png, OUT/leakage_secagg2.png (originals / analytic /
# optimisation). Runs one process at a time (the attack runs on one rank).
#   sh jobs/attacks/leakage.sh [OUT]        (from the repository root, after make)
set -eu
OUT=${1:-runs/leakage}
TARGETS=${TARGETS:-0 1 2}
FEDHPC=${FEDHPC:-bin/fedhpc}
DATA=data/fmnist_iid_c20.h5
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
mkdir -p "$OUT"
[ -f "$DATA" ] || "$FEDHPC" prepare fmnist --cache data/cache/fashion-mnist --clients 20 --partition iid --seed 1 --out "$DATA"
INI=jobs/attacks/leakage_fmnist.ini
CSV="$OUT/sweep.csv"
first=1
# one NAME [key=value ...]: the setting on every target, rows appended to sweep.csv
one() {
    name=$1; shift
    for t in $TARGETS; do
        d="$OUT/$name/t$t"
        mkdir -p "$OUT/$name"
        "$FEDHPC" attack leakage "$INI" data.file="$DATA" leakage.target_client="$t" output.dir="$d" "$@" >"$d.log" 2>&1 ||
            { echo "leakage sweep: $name target $t failed (see $d.log)" >&2; exit 1; }
        if [ $first = 1 ]; then echo "setting,target,$(head -1 "$d/leakage_summary.csv")" >"$CSV"; first=0; fi
        tail -n +2 "$d/leakage_summary.csv" | sed "s/^/$name,$t,/" >>"$CSV"
    done
    echo "leakage sweep: $name done"
}
for b in 1 4 16 64; do
    for e in 1 5; do one "b${b}_e$e" leakage.batch=$b train.local_epochs=$e; done
done
# attack variants (no defence): DLG's Euclidean loss, DLG's joint soft labels, the true labels
# (an upper bound), a total-variation prior
one b1_l2 leakage.batch=1 leakage.loss=l2
one b4_joint leakage.batch=4 leakage.labels=joint
one b4_truelabels leakage.batch=4 leakage.labels=true
one b16_tv leakage.batch=16 leakage.tv=0.01
for eps in 1 10 100 1000 10000; do
    one "dpsgd_eps$eps" leakage.defence=dp_sample leakage.epsilon=$eps privacy.clip=1
    one "cdp_eps$eps" leakage.defence=dp_client leakage.epsilon=$eps privacy.clip=0.5
done
one topk10 leakage.defence=topk leakage.topk=0.1
one topk1 leakage.defence=topk leakage.topk=0.01
one secagg2 leakage.defence=secagg leakage.secagg_clients=2
one secagg10 leakage.defence=secagg leakage.secagg_clients=10
cp "$OUT/b1_e1/t0/leakage.png" "$OUT/leakage_b1.png"
cp "$OUT/b4_e1/t0/leakage.png" "$OUT/leakage_b4.png"
cp "$OUT/secagg2/t0/leakage.png" "$OUT/leakage_secagg2.png"

# the Markdown table: means over targets; PSNR in dB (99 = exact, MSE < 1e-10); prior = every row
# guessed as the mean of the target client's rows
awk -F, -v targets="$(echo $TARGETS | wc -w)" '
NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
{
    k = $1; if (!(k in seen)) { seen[k] = 1; order[++n] = k }
    b[k] = $c["batch"]; e[k] = $c["local_epochs"]; df[k] = $c["defence"]; sg[k] = $c["sigma"]; ep[k] = $c["epsilon"]
    tk[k] = $c["topk"]; K[k] = $c["clients_summed"]
    m = $c["method"]
    p[k, m] += $c["psnr_mean"]; s[k, m] += $c["ssim_mean"]; l[k, m] += $c["label_acc"]; cnt[k, m]++
}
END {
    print "| setting | batch | E | defence | sigma | epsilon | prior PSNR | analytic PSNR | optimisation PSNR | optimisation SSIM | labels (iDLG) |"
    print "|---|---|---|---|---|---|---|---|---|---|---|"
    for (i = 1; i <= n; i++) {
        k = order[i]
        d = df[k]; if (d == "topk") d = "top-k " tk[k] * 100 "%"; if (d == "secagg") d = "secagg, sum of " K[k]
        sgs = (sg[k] == 0) ? "-" : sprintf("%.3g", sg[k]); eps = (ep[k] == "inf") ? "-" : ep[k]
        printf "| %s | %s | %s | %s | %s | %s | %.1f | %.1f | %.1f | %.2f | %.0f%% |\n", k, b[k], e[k], d, sgs, eps,
            p[k, "prior_mean"] / cnt[k, "prior_mean"], p[k, "analytic"] / cnt[k, "analytic"], p[k, "optimization"] / cnt[k, "optimization"],
            s[k, "optimization"] / cnt[k, "optimization"], 100 * l[k, "analytic"] / cnt[k, "analytic"]
    }
}' "$CSV" >"$OUT/sweep.md"
cat "$OUT/sweep.md"
