#!/bin/sh
# Privacy-utility, client-level DP-FedAvg(M): Fashion-MNIST, 1000 iid clients, 100 a round (q=0.1),
# 50 rounds, MLP 784-32-10, E=1, B=10, C=0.5, server momentum 0.9, delta=1e-5.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
B=runs/privacy/fedhpc
for e in 1 2 4 8 inf; do
  if [ $e = inf ]; then extra="privacy.noise=0"; else
    s=$($B privacy --sample-rate 0.1 --steps 50 --delta 1e-5 --target-epsilon $e | sed 's/^sigma = \([0-9.]*\).*/\1/')
    extra="privacy.noise=$s privacy.epsilon_budget=$e"; fi
  mpirun -np 2 $B run runs/privacy/dpfedavg.ini $extra output.dir=runs/privacy/tab/cl_$e > runs/privacy/tab/cl_$e.log 2>&1
done
