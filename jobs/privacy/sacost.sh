#!/bin/sh
# Secure-aggregation cost: 100 clients a round (Fashion-MNIST, 1000 clients), 2 ranks, rounds 1-2
# (secagg.dedicated_aggregator = off: both runs train on the same 2 ranks, as when the table was made)
# (round 3 also evaluates). MLP 784-128-10 = 101,770 parameters; 784-1262-10 = 1,003,300.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
B=runs/privacy/fedhpc
for h in 128 1262; do
 for d in 0 0.1; do
  mpirun -np 2 $B run runs/privacy/sacost.ini model.hidden=$h secagg.dropout=$d output.dir=runs/privacy/tab/sa_${h}_plain_$d > /dev/null 2>&1
  for k in 0 16; do
   mpirun -np 2 $B run runs/privacy/sacost.ini model.hidden=$h secagg.dropout=$d secagg.enabled=on secagg.dedicated_aggregator=off secagg.neighbors=$k output.dir=runs/privacy/tab/sa_${h}_k${k}_$d > runs/privacy/tab/sa_${h}_k${k}_$d.log 2>&1
   # exit 0 same, 1 different, 2 (a missing model: a failed run) is neither
   h5diff -q runs/privacy/tab/sa_${h}_plain_$d/model.h5 runs/privacy/tab/sa_${h}_k${k}_$d/model.h5 /params /params >/dev/null 2>&1
   case $? in 0) echo "identical $h k$k d$d" ;; 1) echo "DIFFERENT $h k$k d$d" ;; *) echo "ERROR $h k$k d$d: h5diff failed (a run failed?)" ;; esac
  done
 done
done
