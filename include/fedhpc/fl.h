/* fedhpc/fl.h — the training loop's public face: fl_train, its result and round statistics,
 * and the set-up, evaluation and checkpoint pieces every strategy shares. The pieces live in
 * their own headers: sample.h (who trains), local.h (local training), server.h (server
 * optimizers), cluster.h (multi-center mathematics), loop.h (the loop, strategies, stages).
 *
 * The loop sees the comm layer (comm_*) and the I/O layer (io_*), never MPI or HDF5 directly.
 * Exactness: client updates are weighted, encoded in fixed point (2^-32 steps) as int64 and
 * summed with one integer all-reduce per round, so the sum is the same for any placement of
 * clients on ranks and any reduction order; every rank then applies the same server step.
 */
#ifndef FEDHPC_FL_H
#define FEDHPC_FL_H

#include "fedhpc/agg.h"
#include "fedhpc/attack.h"
#include "fedhpc/ckpt.h"
#include "fedhpc/comm.h"
#include "fedhpc/common.h"
#include "fedhpc/config.h"
#include "fedhpc/io.h"
#include "fedhpc/model.h"
#include "fedhpc/privacy.h"
#include "fedhpc/rng.h"

#include <stdint.h>

#include "fedhpc/local.h"

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
    /* [attack] */
    int32_t malicious;        /* malicious clients this round (-1: no attack)               */
    double attack_success;    /* backdoor: triggered test rows of true class != target
                                 classified as target; label_flip: test rows of the source
                                 class classified as target (NAN: other modes, not evaluated) */
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

/* The per-client state store <output dir>/name: clients rows of dim floats (io_state_create). */
fh_status fl_state_create(const config_t *cfg, const comm_t *w, const char *name, int32_t clients, int64_t dim,
                          io_state **out);
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
    int64_t val_n;   /* validation rows on rank 0 (prepare --val-frac; 0: none) */
    int32_t d;       /* features                                 */
    float *x;        /* [cap, d] one chunk                       */
    int32_t *y;      /* [cap]                                    */
    int64_t cap;
} fl_testset;
fh_status fl_testset_load(fl_testset *t, const comm_t *world, io_data *data, const io_data_meta *meta);
void fl_testset_free(fl_testset *t);
/* Metrics of params on the test split (rank 0, t->n > 0), ws_rows rows a model_predict call:
 * equal to model_evaluate on the whole split held in memory. Binary task with a validation
 * split (t->val_n > 0): first the validation split is read and its thr_best (the threshold
 * maximising minority F1 there) becomes out->threshold, at which the test split's
 * f1_minority_thr and f1_thr are reported; the test split plays no part in choosing it. */
fh_status fl_testset_eval(fl_testset *t, const model_t *m, const float *params, model_ws *ws,
                          int32_t ws_rows, metrics_t *out);
/* [attack] attack success of params (rank 0): backdoor, the fraction of test rows whose true
 * class is not a->target_class that are classified as target_class once the trigger is applied;
 * label_flip, the fraction of test rows of source_class classified as target_class. */
fh_status fl_testset_attack(fl_testset *t, const model_t *m, const float *params, model_ws *ws, int32_t ws_rows,
                           const config_attack *a, const attack_geom *g, double *rate);
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
/* Mean and 10th percentile of the accuracies acc[n] that are not NaN (NaN if none); acc is
 * compacted and sorted. */
void fl_acc_summary(double *acc, int32_t n, double *mean, double *p10);
/* Set up model, class weights and initial params (src/fl/loop.c). */
fh_status fl_model_setup(const config_t *cfg, io_data *data, const io_data_meta *meta, fl_result *res);

#endif
