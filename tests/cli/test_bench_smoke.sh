#!/bin/sh
# Smoke test of the benchmark suite (issue 5): every benchmark of tests/bench/run_bench.sh runs
# for 1-2 rounds on tiny sizes and writes its CSV row. No timing is asserted (speed is judged
# by `make bench`, never by tests).
#   sh tests/cli/test_bench_smoke.sh     (FEDHPC_BIN=path overrides bin/fedhpc; fedhpc_bench is
#                                         taken from the same directory)
# The PyTorch reference needs Debian's python3-torch and python3-mpi4py: installed here when
# running as root (about 50 s with apt-get update on the CI machine), otherwise that item is
# skipped with a message.
. "$(dirname "$0")/lib.sh"
echo "benchmark suite smoke test"
BENCH=$(dirname "$FEDHPC")/fedhpc_bench
H5=$FEDHPC_ROOT/data/fmnist_dir05_c100.h5

if [ ! -x "$BENCH" ] || [ ! -f "$H5" ]; then
    bad "needs $BENCH and $H5 (make all data)"
    finish bench_smoke
    exit 1
fi

# /usr/bin/time (Debian's time) measures peak RSS per rank
if [ ! -x /usr/bin/time ] && [ "$(id -u)" = 0 ]; then
    sh tests/cli/deps.sh time >/dev/null 2>&1 || true
fi
if [ ! -x /usr/bin/time ]; then
    bad "/usr/bin/time missing (apt-get install time)"
    finish bench_smoke
    exit 1
fi
torch=1
if ! /usr/bin/python3 -c "import torch, mpi4py" 2>/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        echo "  installing python3-torch python3-mpi4py (Debian) for the reference"
        sh tests/cli/deps.sh python3-torch python3-mpi4py python3-numpy time >/dev/null 2>&1 || true
    fi
    /usr/bin/python3 -c "import torch, mpi4py" 2>/dev/null || {
        torch=0
        echo "  SKIP the PyTorch reference: python3-torch/python3-mpi4py not installed (not root)"
    }
fi

OUT=$T/bench
if FEDHPC_BENCH=$BENCH OUT=$OUT sh tests/bench/run_bench.sh --smoke >"$T/log" 2>&1; then
    ok "run_bench.sh --smoke exits 0"
else
    bad "run_bench.sh --smoke failed"
    tail -30 "$T/log" | sed 's/^/       | /'
fi
CSV=$OUT/results-latest.csv

# has NAME PARAMS_REGEX: a row named NAME whose value columns are numbers
has() {
    if grep -E "^$1,$2" "$CSV" 2>/dev/null | awk -F, '
        { for (i = 3; i <= 5; i++) if ($i != "" && $i !~ /^-?[0-9.]+(e[-+]?[0-9]+)?$/) bad = 1; n++ }
        END { exit (n > 0 && !bad) ? 0 : 1 }'; then
        ok "row $1 $2"
    else
        bad "no numeric row $1 $2 in $CSV"
    fi
}
has round "model=mlp;ranks=1"
has round "model=mlp;ranks=2"
has round "model=cnn;ranks=1"
has round "model=cnn;ranks=2"
has accuracy "model=cnn"
has local "model=mlp;B=10"
has local "model=mlp;B=64"
has agg "params=100000;ranks=2"
has scale "clients=1000"
has ckpt_write "params=100000"
has ckpt_read "params=100000"
for a in krum multikrum median trimmed_mean norm_bound; do has robust "params=100000;ranks=2;clients=10;aggregator=$a"; done
if [ "$torch" = 1 ]; then
    has torch_time "model=mlp"
    has torch_rss_mb "model=mlp"
    has torch_accuracy "model=mlp"
    has torch_time "model=cnn"
    has torch_time "model=attention"
    has torch_rss_mb "model=attention"
    has torch_auc "model=attention"
    # the attention model in PyTorch is fedhpc's: the same parameters to float rounding after 2 rounds
    d=$(awk -F, '/^torch_params,model=attention/ {print $3}' "$CSV" 2>/dev/null)
    nums "$d" && awk -v d="$d" 'BEGIN {exit !(d < 1e-4)}' && ok "attention: PyTorch parameters within $d of fedhpc's" ||
        bad "attention: PyTorch vs fedhpc parameters (max abs difference '${d:-}')"
    has torch_time "model=lightgcn"
    has torch_rss_mb "model=lightgcn"
    has torch_ndcg "model=lightgcn"
    # lightgcn in PyTorch on fedhpc's exported embeddings and triples: the same item embeddings
    # to float rounding after 2 epochs (their change from the initial ones is about 1)
    d=$(awk -F, '/^torch_params,model=lightgcn/ {print $3}' "$CSV" 2>/dev/null)
    nums "$d" && awk -v d="$d" 'BEGIN {exit !(d < 1e-4)}' && ok "lightgcn: PyTorch item embeddings within $d of fedhpc's" ||
        bad "lightgcn: PyTorch vs fedhpc item embeddings (max abs difference '${d:-}')"
fi
# the Markdown table has a line per CSV row
if [ -f "$OUT/results-latest.md" ] &&
   [ "$(grep -c '^| ' "$OUT/results-latest.md")" -eq "$(wc -l < "$CSV")" ]; then
    ok "Markdown table"
else
    bad "Markdown table missing or incomplete"
fi
finish bench_smoke
