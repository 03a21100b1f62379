#!/bin/sh
# Privacy-utility, sample-level DP-SGD: Fashion-MNIST, 10 iid clients (all every round), MLP 784-100-10,
# E=1, expected batch 60 (q=0.01), 5 rounds = 500 steps per client, C=1, delta=1e-5.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
B=runs/privacy/fedhpc
for e in 1 2 4 8 inf; do
  if [ $e = inf ]; then extra="privacy.mode=none"; else
    s=$($B privacy --sample-rate 0.01 --steps 500 --delta 1e-5 --target-epsilon $e | sed 's/^sigma = \([0-9.]*\).*/\1/')
    extra="privacy.noise=$s privacy.epsilon_budget=$e"; fi
  mpirun -np 2 $B run runs/privacy/dpsgd.ini train.rounds=5 $extra output.dir=runs/privacy/tab/sgd_$e > runs/privacy/tab/sgd_$e.log 2>&1
done
