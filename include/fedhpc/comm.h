/* fedhpc/comm.h — the communication layer: the only module that calls MPI.
 *
 * Algorithms see a comm_t and these verbs. All collectives are called by every rank of the
 * communicator. Every function returns FH_OK or FH_EMPI (with a message).
 */
#ifndef FEDHPC_COMM_H
#define FEDHPC_COMM_H

#include "fedhpc/common.h"

#include <mpi.h>
#include <stdint.h>

typedef struct {
    MPI_Comm comm; /* the communicator (the io layer hands it to MPI-IO) */
    int rank;
    int size;
} comm_t;

/* MPI_Init (errors returned, not fatal) and the world communicator. */
fh_status comm_init(int *argc, char ***argv, comm_t *world);
/* MPI_Finalize if initialised and not finalised. */
void comm_finalize(void);
/* Abort every rank (last resort when ranks cannot agree). */
void comm_abort(const comm_t *c, int code);

/* All ranks agree on failure: returns the status of the lowest-ranked failing rank (FH_OK if
 * none) on every rank, and copies that rank's error message into every rank's buffer. */
fh_status comm_agree(const comm_t *c, fh_status local);

/* In-place element-wise sums. Integer sums are exact and independent of reduction order. */
fh_status comm_allreduce_sum_i64(const comm_t *c, int64_t *buf, int64_t n);
fh_status comm_allreduce_sum_f64(const comm_t *c, double *buf, int64_t n);
fh_status comm_allreduce_max_f64(const comm_t *c, double *buf, int64_t n);
fh_status comm_allreduce_min_f64(const comm_t *c, double *buf, int64_t n);

/* Broadcast bytes from root. */
fh_status comm_bcast(const comm_t *c, void *buf, int64_t bytes, int root);

/* Gather variable-length double arrays to root: each rank sends n_local values; on root,
 * out must hold the sum of all n_local, concatenated in rank order. */
fh_status comm_gatherv_f64(const comm_t *c, const double *local, int64_t n_local, double *out,
                           int root);

fh_status comm_barrier(const comm_t *c);

/* Timer statistics across ranks: min, mean, max of a local value. */
fh_status comm_stats(const comm_t *c, double local, double *min, double *avg, double *max);

#endif
