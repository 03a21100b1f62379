#!/bin/sh
# Backdoor (Bagdasaryan et al. 2020): 10% of each round's clients put a 4x4 white corner square on half
# their rows labelled pullover, and scale their update by BOOST (1: data poisoning only; 3: a
# boosted, model-replacement-style update).
# Clean vs attacked FedAvg for each defence in AGGREGATORS (default "mean maxnorm clip"; add the
# robust aggregators, e.g. AGGREGATORS="mean maxnorm clip krum median trimmed_mean norm_bound"),
# SEEDS (default 1 2 3). See jobs/attacks/study.sh for every variable; results in
# runs/attacks/backdoor/{results.csv,table.md,backdoor.png}.
ATTACK=backdoor BOOSTS=${BOOSTS:-"1 3"} exec sh "$(dirname "$0")/study.sh" "$@"
