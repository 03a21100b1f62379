#!/bin/sh
# Sign flipping: 10% of each round's clients send -BOOST times their honest update.
# Clean vs attacked FedAvg for each defence in AGGREGATORS (default "mean maxnorm clip"; add the
# robust aggregators, e.g. AGGREGATORS="mean maxnorm clip krum median trimmed_mean norm_bound"),
# SEEDS (default 1 2 3). See jobs/attacks/study.sh for every variable; results in
# runs/attacks/sign_flip/{results.csv,table.md,sign_flip.png}.
ATTACK=sign_flip BOOSTS=${BOOSTS:-"1 4"} exec sh "$(dirname "$0")/study.sh" "$@"
