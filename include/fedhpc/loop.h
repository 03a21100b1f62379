/* fedhpc/loop.h — the one training loop, the strategies that fill it in, and their state as data.
 *
 * fl_train (src/fl/loop.c) is the only training loop:
 *
 *   setup        model, class weights, initial parameters, a worker, the test split
 *   strategy     ->init: its buffers, and its saved fields (fl_loop_save_field)
 *   resume       [checkpoint] resume: every saved field read back from the checkpoint
 *   for r = r_done + 1 .. [train] rounds:
 *     ->round    plan (who trains, from which model), local work, aggregate, server step
 *     ->evaluate every [train] eval_every rounds and the last one
 *     report     on_round (metrics.csv, progress), then ->report (the strategy's own CSV)
 *     checkpoint every [checkpoint] every rounds, and when a rank was asked to stop
 *   ->finish     the final model into res->params on every rank
 *
 * A strategy is a table of functions (fl_strategy). The dispatcher (fl_strategy_pick) chooses
 * one from the configuration: the synchronous FedAvg family (src/fl/fedavg.c), the centralized
 * baseline (central.c), multi-center clusters (cluster.c) and asynchronous FL on a virtual
 * clock (async.c).
 *
 * State as data: a strategy lists what a checkpoint holds once, as fields {name, kind, type,
 * pointer, length}; checkpoint save and resume both walk that list (fl_loop_ckpt_save /
 * fl_loop_ckpt_resume), so the two can never disagree.
 */
#ifndef FEDHPC_LOOP_H
#define FEDHPC_LOOP_H

#include "fedhpc/ckpt.h"
#include "fedhpc/fl.h"

#include <stdint.h>

typedef enum {
    FL_FIELD_ARRAY, /* a replicated array: ptr [n] of `type` (the same on every rank)            */
    FL_FIELD_I64,   /* one int64_t scalar at ptr                                                 */
    FL_FIELD_F64,   /* one double scalar at ptr                                                  */
    FL_FIELD_ROWS,  /* per-client rows: ptr is an io_state of [clients, n] floats; each rank
                     * writes and reads its slab of clients                                     */
    FL_FIELD_HOOK   /* anything else: save(ptr, w, h) and load(ptr, w, h)                       */
} fl_field_kind;

typedef struct {
    const char *name;   /* dataset / attribute name in the checkpoint                           */
    fl_field_kind kind;
    ckpt_type type;     /* ARRAY: element type                                                  */
    void *ptr;
    int64_t n;          /* ARRAY: elements; ROWS: floats a row                                   */
    fh_status (*save)(void *ptr, const comm_t *w, ckpt *h); /* HOOK */
    fh_status (*load)(void *ptr, const comm_t *w, ckpt *h); /* HOOK */
} fl_field;

#define FL_MAX_FIELDS 32

typedef struct fl_loop fl_loop;

typedef struct {
    const char *name;   /* "fedavg", "centralized", "cluster", "async"                           */
    const char *unit;   /* what a round is called in notices ("round", "server update")          */
    /* Buffers, the fields a checkpoint holds, and L->w when the strategy runs on part of the
     * ranks (L->passive on the others). Collective over L->world. */
    fh_status (*init)(fl_loop *L);
    /* Round r: plan, local work, aggregate, server step; fills rs (not the test metrics).
     * *stop: some rank was asked to stop (agreed over L->w). *done: no round happened and the
     * run ends here (privacy budget, virtual-time limit): not an error. Collective over L->w. */
    fh_status (*round)(fl_loop *L, int32_t r, fl_round_stats *rs, int *stop, int *done);
    /* Test metrics of the current model(s) into rs (rs->evaluated is set). Collective. */
    fh_status (*evaluate)(fl_loop *L, int32_t r, fl_round_stats *rs);
    /* Optional: after on_round, the strategy's own per-round record. */
    fh_status (*report)(fl_loop *L, const fl_round_stats *rs);
    /* Optional: after the last round (st: how the loop ended), the final model into
     * res->params on every rank of L->world; returns the run's status. */
    fh_status (*finish)(fl_loop *L, fh_status st);
    void (*free)(fl_loop *L);
} fl_strategy;

struct fl_loop {
    const config_t *cfg;
    const comm_t *world;      /* every rank of the run                                           */
    const comm_t *w;          /* the ranks that run the loop (world, or rank 0 alone for async)  */
    io_data *data;
    const io_data_meta *meta;
    fl_result *res;
    const model_t *md;        /* == &res->model                                                  */
    float *params;            /* [P] == res->params: the global model                            */
    int64_t P;
    int32_t C;                /* clients in the data set                                         */
    int32_t m;                /* clients a round ([train] clients_per_round, at most C)          */
    fl_worker wk;             /* local training and evaluation scratch                           */
    fl_testset test;          /* the test split (rank 0)                                         */
    int passive;              /* this rank takes no part in the loop (async client hosts)        */
    fl_field fields[FL_MAX_FIELDS];
    int32_t nfields;
    void *s;                  /* the strategy's own state                                        */
};

/* The strategy for a configuration. */
const fl_strategy *fl_strategy_pick(const config_t *cfg);
extern const fl_strategy fl_strategy_fedavg, fl_strategy_central, fl_strategy_cluster, fl_strategy_async;

/* Add a field to the loop's checkpoint list (init only). A NULL ptr is skipped (state that
 * this configuration does not have). */
void fl_loop_field(fl_loop *L, const char *name, fl_field_kind kind, ckpt_type type, void *ptr, int64_t n);
void fl_loop_hook(fl_loop *L, const char *name, void *ptr, fh_status (*save)(void *, const comm_t *, ckpt *),
                  fh_status (*load)(void *, const comm_t *, ckpt *));

/* The [privacy] state of a strategy with m clients a round (a DP-FedBuff buffer: K): set up
 * from the configuration, and saved in checkpoints as the field "privacy". Not collective. */
fh_status fl_loop_privacy(fl_loop *L, privacy_run *pv, int32_t m);

/* Write the checkpoint of round r: every field (collective over L->w). */
fh_status fl_loop_ckpt_save(fl_loop *L, int32_t r);
/* Read every field from the checkpoint [checkpoint] resume names: auto, the newest valid one in the
 * checkpoint directory ([checkpoint] dir or <output dir>/checkpoints; none: a fresh start), or
 * the file or directory named, which must hold one. *r_done = its round (0: a fresh start);
 * L->res->notice: "resuming after <unit> R from PATH" after any warnings about damaged files. */
fh_status fl_loop_ckpt_resume(fl_loop *L, const char *unit, int32_t *r_done);

/* ---- aggregation stages (src/fl/stage.c): the same for every strategy ----------------------
 * A client's update goes through: reject (not finite, or L2 norm above [fl] max_update_norm) ->
 * privacy (client-level DP: clip to C, plus the client's distributed noise share; a rejected
 * client still adds its share) -> encode (weighted, fixed point, into the client's buffer: its
 * own with [secagg]) -> sum (one integer all-reduce, or one secure-aggregation round) -> decode
 * (plus the central DP noise). */
struct secagg_engine;
struct robust_agg;
struct he_engine;
typedef struct {
    privacy_run *pv;          /* NULL or the DP state (mode none: no privacy stage)              */
    struct secagg_engine *sa; /* NULL or the masks (disabled: a plain all-reduce)                */
    int64_t *acc;             /* [nacc] this rank's plain sum; after fl_agg_sum, the total       */
    int64_t nacc;
    double max_norm;          /* [fl] max_update_norm                                            */
    struct fl_compress *cz;   /* NULL or [compress] (src/fl/compress_stage.c)                    */
    int64_t sent;             /* [compress]: bytes of the last accepted client's message         */
    struct robust_agg *rb;    /* NULL or [fl] aggregator != mean (include/fedhpc/robust.h): accepted
                               * updates are clipped (norm_bound) or kept and combined by the rule
                               * in fl_agg_sum (the counters still summed); fl_agg_decode gives the
                               * rule's aggregate                                                 */
    struct he_engine *he;     /* NULL or [he]: per-client buffers summed under Paillier          */
} fl_agg;

/* [compress] (src/fl/compress_stage.c, include/fedhpc/compress.h): after privacy, a client's
 * update (plus its error-feedback residual) is encoded into a byte message, decoded, and the
 * decoded values accumulated into its buffer (sparse methods: only the k entries). Residuals
 * live in an io_state ([clients, P] on disk, saved in checkpoints): memory grows with the
 * round's clients, not all clients. */
typedef struct fl_compress fl_compress;
/* NULL in *z for [compress] method = none. Collective over w (the residual file). */
fh_status fl_compress_init(fl_compress **z, const config_t *cfg, const comm_t *w, int32_t C, int64_t P);
void fl_compress_free(fl_compress *z);
/* The residual store for fl_loop_field(FL_FIELD_ROWS), or NULL without error feedback. */
io_state *fl_compress_residuals(fl_compress *z);
/* Majority vote: clients add +-1 with weight 1 and the decode is the sign of the sum. */
int fl_compress_majority(const fl_compress *z);
/* Compress u[P] of client cid (modified: u + residual), accumulate the decoded message into
 * buf with weight; clip > 0 (client DP): the decoded message is scaled to norm <= clip. *bytes:
 * the message size. */
fh_status fl_compress_add(fl_compress *z, int64_t *buf, int64_t round, int32_t cid, float *u, double weight,
                          double clip, int64_t *bytes);

/* Start a round with nloc clients on this rank: zeroed sum and buffers. */
fh_status fl_agg_begin(fl_agg *a, int32_t nloc);
/* Where the i-th local client's contribution goes (its own buffer with secagg). */
int64_t *fl_agg_buffer(fl_agg *a, int32_t i);
/* Reject, privacy, [compress], encode u[P] (modified) of client cid into buf with `weight` (under
 * client DP: 1/m after clipping; *below counts unclipped updates). usable = 0 rejects (no rows,
 * loss not finite). Returns 1 if accepted (a->sent: its message bytes with [compress]), 0 if
 * rejected, -1 on an error of the compression stage (fh_error set). */
int fl_agg_add(fl_agg *a, int64_t *buf, int64_t round, int32_t cid, float *u, int64_t P, int usable, double weight,
               int64_t *below);
/* Sum over the ranks of w: clients [first[p], first[p+1]) of ids[n] on rank p; the last `clear`
 * words are counters summed in the clear before the masked vectors. Collective. */
fh_status fl_agg_sum(fl_agg *a, const comm_t *w, int64_t round, const int32_t *ids, const int32_t *first, int32_t n,
                     int64_t clear);
/* The secure-aggregation round aborted (too few survivors): the sum must not be used. */
int fl_agg_aborted(const fl_agg *a);
/* out[len] = acc * scale / 2^32, or under client DP the decoded sum plus the central noise. */
void fl_agg_decode(const fl_agg *a, int64_t round, const int64_t *acc, int64_t len, double scale, float *out);

/* Rows of a rank's clients are read in groups of at most ~4 MB (or one client): the end of the
 * group that starts at client i of [i, end). */
int32_t fl_rows_group(const int64_t *count, int32_t i, int32_t end, int64_t d);

#endif
