#!/bin/sh
# Label flipping: 10% of each round's clients relabel their T-shirts (0) as pullovers (2);
# attack success = test T-shirts classified as pullovers.
# Clean vs attacked FedAvg for each defence in AGGREGATORS (default "mean maxnorm clip"; add the
# robust aggregators, e.g. AGGREGATORS="mean maxnorm clip krum median trimmed_mean norm_bound"),
# SEEDS (default 1 2 3). See jobs/attacks/study.sh for every variable; results in
# runs/attacks/label_flip/{results.csv,table.md,label_flip.png}.
ATTACK=label_flip BOOSTS=${BOOSTS:-"1"} exec sh "$(dirname "$0")/study.sh" "$@"
