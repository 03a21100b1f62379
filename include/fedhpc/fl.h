/* fedhpc/fl.h — federated training: client sampling, local training, exact aggregation,
 * server optimizers, the training loop, and the centralized baseline.
 *
 * The loop sees the comm layer (comm_*) and the I/O layer (io_*), never MPI or HDF5 directly.
 * Exactness: client updates are weighted, encoded in fixed point (2^-32 steps) as int64 and
 * summed with one integer all-reduce per round, so the sum is the same for any placement of
 * clients on ranks and any reduction order; every rank then applies the same server step.
 */
#ifndef FEDHPC_FL_H
#define FEDHPC_FL_H

#include "fedhpc/agg.h"
#include "fedhpc/ckpt.h"
#include "fedhpc/comm.h"
#include "fedhpc/common.h"
#include "fedhpc/config.h"
#include "fedhpc/io.h"
#include "fedhpc/model.h"
#include "fedhpc/privacy.h"
#include "fedhpc/rng.h"

#include <stdint.h>

/* ---- sampling (src/fl/sample.c) --------------------------------------------------------- */
/* m distinct clients out of C for round r, sorted ascending (Floyd's algorithm on
 * rng_stream(seed, 0, r, RNG_SAMPLE); memory O(m)). m >= C gives all clients. */
fh_status fl_sample_clients(uint64_t seed, int64_t round, int32_t C, int32_t m, int32_t *out,
                            int32_t *n_out);
/* Split n clients with row counts count[] over P ranks in contiguous, row-balanced blocks:
 * rank p gets clients [first[p], first[p + 1]). first has P + 1 entries. */
void fl_assign_ranks(const int64_t *count, int32_t n, int P, int32_t *first);

/* ---- local training (src/fl/client.c) --------------------------------------------------- */
typedef struct {
    const float *global; /* [P] the round's starting model (FedProx anchor)             */
    const float *c_diff; /* [P] SCAFFOLD correction c - c_i, or NULL                    */
    double lr, momentum, weight_decay, mu; /* mu > 0: FedProx proximal term             */
    int32_t epochs, batch;                 /* batch 0: full batch                       */
} fl_local_opts;

typedef struct {
    const model_t *m;
    model_ws *ws;     /* scratch for up to ws_rows rows                                     */
    int32_t ws_rows;
    float *grad;      /* [P] */
    float *grad2;     /* [P] chunk accumulator for batches larger than ws_rows (on first use) */
    float *mom;       /* [P] momentum buffer (on first use: momentum or DP-SGD)             */
    float *xb;        /* [ws_rows, in] gathered batch                                       */
    int32_t *yb;      /* [ws_rows]                                                          */
    int32_t *order;   /* [max rows of a client] epoch permutation                           */
    int64_t order_cap;
    const privacy_sgd *dp; /* non-NULL: fl_local_train runs DP-SGD (privacy.h); set per client */
    int64_t max_steps;     /* > 0: fl_local_train stops after this many SGD steps (partial
                            * work, [async] partial; not with DP-SGD); set per client       */
} fl_worker;

/* The local-training options of a configuration ([train] lr, momentum, weight_decay, epochs,
 * batch; [fl] mu when the algorithm is FedProx) from the round's starting model `global`: the
 * one place every strategy builds them. c_diff is NULL (SCAFFOLD sets it per client). */
fl_local_opts fl_local_opts_make(const config_t *cfg, const float *global);

fh_status fl_worker_init(fl_worker *w, const model_t *m, int32_t ws_rows);
/* The rows a worker's scratch holds (every training loop uses it, so chunked gradients and
 * evaluation batches are the same everywhere): the batch size (1024 for full batch), at
 * least 256 — 16 for the CNN (its conv chunk), whose scratch is ~63 KB a row — and at most 8192. */
int32_t fl_worker_rows(const config_t *cfg);
void fl_worker_free(fl_worker *w);
/* Mean loss gradient over n rows (in chunks of ws_rows), returned as the loss SUM. */
double fl_grad_rows(fl_worker *w, const float *params, const float *x, const int32_t *y, int64_t n);
/* Train params (in: global, out: local) on one client's rows with SGD; returns the summed
 * minibatch loss over all steps in *loss_sum, steps in *steps, rows visited in *rows. */
fh_status fl_local_train(fl_worker *w, const fl_local_opts *o, rng_t shuffle, const float *x,
                         const int32_t *y, int64_t n, float *params, double *loss_sum,
                         int64_t *steps, int64_t *rows);

/* ---- server optimizers (src/fl/server.c) ------------------------------------------------ */
typedef struct {
    int32_t alg;
    int64_t P;
    double lr, momentum, beta1, beta2, tau;
    float *m, *v; /* [P] first/second moments (FedAvgM/FedAdam/FedYogi), NULL otherwise */
} fl_server;

/* From [fl] (the algorithm and the server optimizer's settings). */
fh_status fl_server_init(fl_server *s, const config_fl *c, int64_t P);
void fl_server_free(fl_server *s);
/* Apply the averaged client update delta[P] (new - old) to params[P]. */
void fl_server_step(fl_server *s, const float *delta, float *params);

/* ---- the training loop (src/fl/loop.c; strategies in fedavg.c, central.c, cluster.c, async.c) */
typedef struct {
    int32_t round, rounds;
    double wall_s;            /* this round's wall time (max over ranks)                  */
    double train_loss;        /* mean minibatch loss of the round's local training         */
    int32_t evaluated;        /* 1 when test metrics below are fresh                       */
    metrics_t test;
    double client_acc_mean;   /* accuracy of the new model on each participant's own data */
    double client_acc_p10;    /*   mean and 10th percentile (NAN when not evaluated)       */
    int32_t clients, rejected;
    int32_t applied;          /* updates that reached the model this round (-1: not counted) */
    int64_t bytes_up, bytes_down;
    const char *notice;       /* first round after a resume: where from (and warnings)     */
    /* [privacy] / [secagg] */
    double epsilon;           /* epsilon spent so far at [privacy] delta (NAN: no DP)       */
    int32_t dropped;          /* clients that dropped out this round (simulated)            */
    int32_t secagg_aborted;   /* 1: fewer than t survivors, the round's update was skipped  */
    double mask_gbps;         /* secagg mask generation, GB/s of keystream (NAN: off)       */
    double chacha_gbps;       /* raw ChaCha20 throughput in the same run (NAN: off)         */
} fl_round_stats;

/* Round r of `rounds` with `clients` participants; every metric NAN (not measured), counters 0. */
void fl_stats_init(fl_round_stats *s, int32_t r, int32_t rounds, int32_t clients);

/* Called on every rank after each round (rank 0 writes metrics); non-OK stops training. */
typedef fh_status (*fl_round_fn)(const fl_round_stats *s, void *user);

typedef struct {
    model_t model;
    float *params;     /* [model.nparams] the final model after fl_train                 */
    float *class_w;    /* [classes] or NULL                                              */
    char notice[4096]; /* set when resumed from a checkpoint (and warnings about it)     */
} fl_result;

/* The checkpoint directory of a configuration ([checkpoint] dir or <output dir>/checkpoints). */
void fl_ckpt_dir(const config_t *cfg, char *out, size_t cap);
/* Start the checkpoint of round r in that directory (collective over w). */
fh_status fl_ckpt_begin(const config_t *cfg, const comm_t *w, int64_t r, ckpt **h);
/* Commit h when st is FH_OK (keeping [checkpoint] keep files), abandon it otherwise. */
fh_status fl_ckpt_end(const config_t *cfg, ckpt *h, fh_status st);
/* Open the checkpoint to resume from: [checkpoint] resume = auto takes the newest valid one in
 * the checkpoint directory (*h = NULL when there is none: a fresh start), otherwise the file or
 * directory named, which must hold one. Writes "resuming after <unit> R from PATH" (after any
 * warnings about damaged files skipped) into notice. Collective over w. */
fh_status fl_ckpt_resume_open(const config_t *cfg, const comm_t *w, const char *unit, ckpt **h,
                              int64_t *round, char *notice, size_t cap);
/* Read n row ranges of the training split into *x [rows, d] and *y, growing them as needed
 * (*cap: their capacity in rows). */
fh_status fl_read_rows(io_data *data, int32_t n, const int64_t *start, const int64_t *count, int32_t d,
                       float **x, int32_t **y, int64_t *cap);

/* Train as configured on the open data set; every rank returns the same final model.
 * With [checkpoint] resume set, continues from a checkpoint (see include/fedhpc/ckpt.h);
 * after fh_request_stop() on any rank it finishes the round, checkpoints and returns
 * FH_ESTOPPED. */
fh_status fl_train(const config_t *cfg, const comm_t *world, io_data *data,
                   const io_data_meta *meta, fl_round_fn on_round, void *user, fl_result *out);
void fl_result_free(fl_result *r);

/* Evaluation of the test split on rank 0 (src/fl/evaluate.c, shared by every strategy). The split is read
 * from the data file a chunk at a time at each evaluation, not held. */
typedef struct {
    io_data *data;   /* the open data set (not owned)            */
    int64_t n;       /* test rows on rank 0 (0 elsewhere)        */
    int32_t d;       /* features                                 */
    float *x;        /* [cap, d] one chunk                       */
    int32_t *y;      /* [cap]                                    */
    int64_t cap;
} fl_testset;
fh_status fl_testset_load(fl_testset *t, const comm_t *world, io_data *data, const io_data_meta *meta);
void fl_testset_free(fl_testset *t);
/* Metrics of params on the test split (rank 0, t->n > 0), ws_rows rows a model_predict call:
 * equal to model_evaluate on the whole split held in memory. */
fh_status fl_testset_eval(fl_testset *t, const model_t *m, const float *params, model_ws *ws,
                          int32_t ws_rows, metrics_t *out);
/* Row buffers that grow to the largest group of clients read at once. */
typedef struct {
    float *x;      /* [cap, features] */
    int32_t *y;    /* [cap]           */
    int64_t cap;
} fl_rows;
/* Accuracy of params on each of this rank's n_local clients' rows (rows start[i].. count[i],
 * read in groups of about 4 MB into *rows), gathered on rank 0 over n_total clients: mean and
 * 10th percentile (clients without rows are left out). Collective. */
fh_status fl_client_accuracy(const comm_t *w, fl_worker *wk, const float *params, io_data *data,
                             const int64_t *start, const int64_t *count, int32_t n_local,
                             int32_t n_total, fl_rows *rows, double *mean, double *p10);
/* Set up model, class weights and initial params (src/fl/loop.c). */
fh_status fl_model_setup(const config_t *cfg, io_data *data, const io_data_meta *meta, fl_result *res);

/* ---- multi-center FL (src/fl/cluster.c, src/fl/kmeans.c; issue 4) ------------------------ */
/* Multi-center FL is a strategy of the one loop (include/fedhpc/loop.h, src/fl/cluster.c):
 * [cluster] method fesem | ifca | cfl | none, [personalize] fedper, [run] clients_per_rank.
 * Clusters are rank groups: after each assignment step the ranks hosting a cluster's members
 * form its communicator (comm_split) and aggregate it exactly (fixed point) with their own
 * collective; the cluster's aggregator rank (its lowest) broadcasts the new center. Writes
 * <output dir>/clusters.csv (rank 0) with cluster sizes, per-cluster accuracy and ARI. */
/* Adjusted Rand index (Hubert and Arabie 1985) of two labelings of n items (labels >= 0). */
double cl_ari(const int32_t *a, const int32_t *b, int32_t n);
/* Squared L2 distances D2[n x n] and cosine similarities Cs[n x n] (either may be NULL) from a
 * Gram matrix G[n x n]. A zero vector has similarity 0 to everything (1 to itself). */
void cl_gram_derive(const double *G, int32_t n, double *D2, double *Cs);
/* k-means++ seeding on pairwise squared distances D2[n x n], deterministic from
 * rng_stream(seed, 0, round, RNG_CLUSTER): seeds[k] distinct item indices (k <= n). */
fh_status cl_kmeanspp(const double *D2, int32_t n, int32_t k, uint64_t seed, int64_t round, int32_t *seeds);
/* assign[i] = argmin_j dist[i * k + j] (ties: lowest j). */
void cl_argmin(const double *dist, int32_t n, int32_t k, int32_t *assign);
/* Lloyd's k-means of rows X[n x dim] (double), seeded by k-means++ on their distances;
 * `iters` iterations at most. */
fh_status cl_kmeans(const double *X, int32_t n, int32_t dim, int32_t k, uint64_t seed, int32_t iters,
                    int32_t *assign);
/* Spectral clustering (Ng, Jordan and Weiss 2001) of n items with similarity S[n x n]
 * (affinity max(S, 0), symmetric normalised), eigenvectors from dist_syevd (ScaLAPACK) on c:
 * the k leading eigenvectors, rows normalised, then k-means. Collective over c. */
fh_status cl_spectral(const comm_t *c, const double *S, int32_t n, int32_t k, uint64_t seed, int32_t *assign);
/* FeSEM assignment step: nearest (L2) of k centers[k x P] to model[P] over the first `len`
 * parameters; *d2 (may be NULL) receives the squared distance to it. Ties: lowest index. */
int32_t cl_nearest_center(const float *model, const float *centers, int32_t k, int64_t P, int64_t len,
                          double *d2);

#endif
