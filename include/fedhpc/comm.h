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

/* ---- sub-communicators (multi-center FL: a cluster's ranks) ---------------------------- */
/* Ranks of c with the same color >= 0 form one new communicator, ordered by key; a rank with
 * color < 0 gets none (out->comm = MPI_COMM_NULL, rank -1, size 0). Collective over c. */
fh_status comm_split(const comm_t *c, int color, int key, comm_t *out);
/* Free a communicator made by comm_split (no-op for MPI_COMM_NULL). */
void comm_free(comm_t *c);

/* ---- distributed dense linear algebra on ScaLAPACK (src/comm/dist.c) --------------------- */
/* Why linear algebra lives in the communication layer: ScaLAPACK's process grids (BLACS) are
 * built from the MPI communicator itself (Csys2blacs_handle(MPI_Comm)) and redistribute the
 * matrices with their own messages, so this is communication code that only this layer can
 * write without handing MPI handles up. What it exports is plain arrays in and out: the
 * clustering code (src/fl/cluster.c, kmeans.c) sees no MPI and no BLACS. */
/* Layout of the row-distributed input of dist_gram: rank r holds rows
 * [min(n, r*mb), min(n, (r+1)*mb)) with mb = ceil(n / size) (some ranks may hold none). */
int64_t dist_rows_first(int64_t n, int size, int rank);
typedef struct {
    int nprow, npcol, nb;      /* the BLACS grid and block size used                          */
    int64_t local_elems;       /* elements of one panel of A this rank held on the 2-D grid  */
} dist_info;
/* Gram matrix G = A A^T (n x n, double, full symmetric, the same on every rank) of the n x p
 * matrix A given as this rank's rows (row-major float, layout of dist_rows_first). A goes
 * through in column panels (8192 parameters): each panel is copied into a [size x 1] BLACS grid,
 * redistributed block-cyclically (nb x nb blocks) over a near-square grid (PDGEMR2D) and
 * accumulated there with PDSYRK; no rank holds all of A, and besides its own rows a rank holds
 * only two panels (about 2 * n * 8192 / size doubles) and G.
 * Collective over c. */
fh_status dist_gram(const comm_t *c, int64_t n, int64_t p, const float *rows, int nb, double *G,
                    dist_info *info);
/* All eigenvalues w[n] (ascending) and eigenvectors Z[n x n] (column j = vector j, stored
 * column-major: Z[i + j*n]) of the symmetric n x n matrix S (same on every rank), with PDSYEVD
 * on a block-cyclic grid; results the same on every rank. Collective over c. */
fh_status dist_syevd(const comm_t *c, int64_t n, const double *S, int nb, double *w, double *Z);

/* ---- point-to-point byte transfers (secure aggregation relays, src/privacy/sa_round.c) --- */
/* Send / receive n bytes to / from one rank (blocking; any size, sent in chunks < 1 GiB). */
fh_status comm_send_bytes(const comm_t *c, const void *buf, int64_t n, int dest, int tag);
fh_status comm_recv_bytes(const comm_t *c, void *buf, int64_t n, int src, int tag);
/* Gather variable-length byte strings to root over point-to-point messages: on root, *out is
 * a malloc'd concatenation in rank order (caller frees) and counts[size] the lengths; other
 * ranks get *out = NULL. Collective over c. */
fh_status comm_gather_bytes(const comm_t *c, const void *local, int64_t n_local, void **out,
                            int64_t *counts, int root);

/* ---- non-blocking point-to-point (asynchronous FL, src/fl/async.c) ------------------------ */
typedef MPI_Request comm_req;
#define COMM_REQ_NULL MPI_REQUEST_NULL
#define COMM_ANY_SOURCE (-1)
/* Start sending / receiving n bytes (n < 2^31) to / from one rank (src may be
 * COMM_ANY_SOURCE); the buffer must stay untouched until the request completes. */
fh_status comm_isend_bytes(const comm_t *c, const void *buf, int64_t n, int dest, int tag, comm_req *req);
fh_status comm_irecv_bytes(const comm_t *c, void *buf, int64_t n, int src, int tag, comm_req *req);
/* Wait until one of reqs[n] completes (MPI_Waitany): *idx its index (-1 if all are
 * COMM_REQ_NULL), *src the sender of a receive; the request becomes COMM_REQ_NULL. */
fh_status comm_waitany(int n, comm_req *reqs, int *idx, int *src);
/* The same without blocking (MPI_Testany): *idx = -1 when none has completed. */
fh_status comm_testany(int n, comm_req *reqs, int *idx, int *src);
/* Wait for one request (no-op for COMM_REQ_NULL). */
fh_status comm_wait(comm_req *req);
/* Cancel a pending receive and complete it (no-op for COMM_REQ_NULL). */
fh_status comm_cancel(comm_req *req);

#endif
