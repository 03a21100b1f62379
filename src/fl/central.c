/* The centralized baseline: the same model trained on the pooled training data.
 *
 * The pooled rows are cut into S fixed shards (config [fl] central_shards), dealt to ranks
 * round-robin, each rank reading only its shards' rows. A global minibatch of B rows takes
 * B/S rows from every shard (each shard walks its own permutation, stream (seed, shard, pass,
 * RNG_CENTRAL)); shard gradients are encoded in fixed point and summed with one integer
 * all-reduce per step, so the model is the same for any number of ranks <= S.
 */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/loop.h"
#include "fedhpc/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t start, n;   /* rows [start, start + n) of the pooled training data */
    int64_t off;        /* this shard's rows inside the rank's buffer          */
    int32_t *perm;      /* [n] current pass order                              */
    int64_t cursor;     /* next position in perm                               */
    int64_t pass;       /* passes started                                      */
    int32_t id;
} shard;

static void shard_next_pass(shard *sh, uint64_t seed)
{
    for (int64_t i = 0; i < sh->n; i++) sh->perm[i] = (int32_t)i;
    rng_t r = rng_stream(seed, (uint64_t)sh->id, (uint64_t)sh->pass, RNG_CENTRAL);
    rng_shuffle_u32(&r, (uint32_t *)sh->perm, (size_t)sh->n);
    sh->pass++;
    sh->cursor = 0;
}

/* A shard's position after `steps` global steps of b rows each: the pass it is in and the
 * cursor within (passes are pure functions of (seed, shard, pass)). */
static void shard_seek(shard *sh, uint64_t seed, int64_t steps, int64_t b)
{
    int64_t taken = steps * b;
    sh->pass = taken / sh->n;
    shard_next_pass(sh, seed);
    sh->cursor = taken % sh->n;
}

typedef struct {
    shard *sh;                 /* [nmine] this rank's shards               */
    int32_t nmine, S;
    int64_t *st_rows, *n_rows; /* [nmine] their row ranges                 */
    float *x, *xb, *mom, *dec; /* rows of my shards; a batch; momentum; the decoded sum */
    int32_t *y, *yb;
    int64_t *acc;              /* [P + 3] gradient sum | loss | rows | stop */
    int64_t B, steps_per_epoch;
    int full, seeked;
} central_state;

static fh_status central_init(fl_loop *L)
{
    const config_t *cfg = L->cfg;
    const comm_t *w = L->w;
    const int64_t P = L->P, d = L->md->in, N = L->meta->train_rows;
    int32_t S = cfg->fl.central_shards;
    if (S > N) S = (int32_t)N;
    if (w->size > S)
        return fh_error_set(FH_EINPUT, "%s: [fl] central_shards = %d but %d ranks: use at most %d ranks or more shards",
                            cfg->data.file, S, w->size, S);
    central_state *c = L->s = fh_calloc(1, sizeof *c);
    FH_CHECK_ALLOC(c);
    c->S = S;
    c->B = cfg->train.batch_size > 0 && cfg->train.batch_size < N ? cfg->train.batch_size : N;
    c->steps_per_epoch = (N + c->B - 1) / c->B;
    c->full = c->B == N;
    const int64_t B = c->B;

    /* my shards */
    for (int32_t s = w->rank; s < S; s += w->size) c->nmine++;
    c->sh = fh_calloc((size_t)c->nmine, sizeof *c->sh);
    c->st_rows = fh_calloc((size_t)c->nmine, sizeof *c->st_rows);
    c->n_rows = fh_calloc((size_t)c->nmine, sizeof *c->n_rows);
    int64_t rows = 0, maxb = 0;
    fh_status st = c->sh && c->st_rows && c->n_rows ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory");
    for (int32_t i = 0, s = w->rank; st == FH_OK && s < S; s += w->size, i++) {
        shard *h = &c->sh[i];
        h->id = s;
        h->start = N * s / S;
        h->n = N * (s + 1) / S - h->start;
        h->off = rows;
        h->perm = malloc((size_t)h->n * sizeof *h->perm);
        if (!h->perm) st = fh_error_set(FH_ENOMEM, "out of memory");
        c->st_rows[i] = h->start;
        c->n_rows[i] = h->n;
        rows += h->n;
        int64_t b = B / S + (s < B % S);
        if (b > maxb) maxb = b;
    }
    if (st == FH_OK) {
        c->x = malloc((size_t)(rows ? rows : 1) * (size_t)d * sizeof *c->x);
        c->y = malloc((size_t)(rows ? rows : 1) * sizeof *c->y);
        c->xb = malloc((size_t)(maxb ? maxb : 1) * (size_t)d * sizeof *c->xb);
        c->yb = malloc((size_t)(maxb ? maxb : 1) * sizeof *c->yb);
        c->mom = fh_calloc((size_t)P, sizeof *c->mom);
        c->dec = malloc((size_t)P * sizeof *c->dec);
        c->acc = malloc((size_t)(P + 3) * sizeof *c->acc);
        if (!c->x || !c->y || !c->xb || !c->yb || !c->mom || !c->dec || !c->acc)
            st = fh_error_set(FH_ENOMEM, "out of memory");
    }
    if (st == FH_OK) st = io_data_read_ranges(L->data, "train", c->nmine, c->st_rows, c->n_rows, c->x, c->y);
    /* the centralized worker holds one shard batch (at least 256 rows, at most 1024) */
    if (st == FH_OK) {
        fl_worker_free(&L->wk);
        st = fl_worker_init(&L->wk, L->md, maxb < 1024 ? (int32_t)(maxb > 256 ? maxb : 256) : 1024);
    }
    fl_loop_field(L, "params", FL_FIELD_ARRAY, CKPT_F32, L->params, P);
    fl_loop_field(L, "central_momentum", FL_FIELD_ARRAY, CKPT_F32, c->mom, P);
    return comm_agree(w, st);
}

static void central_free(fl_loop *L)
{
    central_state *c = L->s;
    if (!c) return;
    for (int32_t i = 0; c->sh && i < c->nmine; i++) free(c->sh[i].perm);
    free(c->sh); free(c->st_rows); free(c->n_rows); free(c->x); free(c->y); free(c->xb); free(c->yb);
    free(c->mom); free(c->dec); free(c->acc);
}

/* The summed gradient of this rank's shards' share of one global minibatch into c->acc. */
static fh_status central_shard_grads(fl_loop *L, central_state *c, int32_t r)
{
    const int64_t P = L->P, d = L->md->in, B = c->B;
    const int32_t S = c->S;
    for (int32_t i = 0; i < c->nmine; i++) {
        shard *h = &c->sh[i];
        int64_t b = B / S + (h->id < B % S);
        if (b == 0) continue;
        const float *xs = c->x + h->off * d;
        const int32_t *ys = c->y + h->off;
        double loss;
        if (c->full) {
            loss = fl_grad_rows(&L->wk, L->params, xs, ys, h->n);
        } else {
            for (int64_t k = 0; k < b; k++) {
                if (h->cursor == h->n) shard_next_pass(h, (uint64_t)L->cfg->train.seed);
                int32_t rr = h->perm[h->cursor++];
                memcpy(c->xb + k * d, xs + (int64_t)rr * d, (size_t)d * sizeof *c->xb);
                c->yb[k] = ys[rr];
            }
            loss = fl_grad_rows(&L->wk, L->params, c->xb, c->yb, b);
        }
        double norm;
        if (!fl_update_ok(L->wk.grad, P, FX_MAX_ABS, &norm) || !isfinite(loss))
            return fh_error_set(FH_EFAULT, "centralized: the gradient is not finite at round %d (diverged? lower [train] lr)", r);
        fx_accumulate(c->acc, L->wk.grad, (double)b / (double)B, P);
        c->acc[P] += (int64_t)llrint(loss * 1048576.0);
        c->acc[P + 1] += b;
    }
    return FH_OK;
}

static fh_status central_round(fl_loop *L, int32_t r, fl_round_stats *rs, int *stop, int *done)
{
    const config_t *cfg = L->cfg;
    const comm_t *w = L->w;
    central_state *c = L->s;
    const int64_t P = L->P;
    float *params = L->params;
    (void)done;
    if (!c->seeked) { /* each shard's place after the rounds done (a fresh start or a resume) */
        const int64_t steps_done = (int64_t)(r - 1) * cfg->train.local_epochs * c->steps_per_epoch;
        for (int32_t i = 0; i < c->nmine; i++)
            shard_seek(&c->sh[i], (uint64_t)cfg->train.seed, steps_done, c->B / c->S + (c->sh[i].id < c->B % c->S));
        c->seeked = 1;
    }
    const float lr = (float)cfg->train.lr, mu_m = (float)cfg->train.momentum, wd = (float)cfg->train.weight_decay;
    double loss_round = 0;
    int64_t rows_round = 0;
    for (int64_t step = 0; step < cfg->train.local_epochs * c->steps_per_epoch; step++) {
        memset(c->acc, 0, (size_t)(P + 3) * sizeof *c->acc);
        c->acc[P + 2] = fh_stop_requested();
        FH_TRY(comm_agree(w, central_shard_grads(L, c, r)));
        FH_TRY(comm_allreduce_sum_i64(w, c->acc, P + 3));
        *stop |= c->acc[P + 2] > 0;
        fx_decode(c->acc, 1.0, c->dec, P);
        optim_state os; /* the step (include/fedhpc/optim.h); dec becomes the direction */
        optim_attach(&os, mu_m != 0 ? c->mom : NULL, P);
        optim_step(&(optim_opts){.lr = lr, .momentum = mu_m, .weight_decay = wd}, &os, params, c->dec);
        loss_round += (double)c->acc[P] / 1048576.0;
        rows_round += c->acc[P + 1];
    }
    rs->clients = c->S;
    if (rows_round) rs->train_loss = loss_round / (double)rows_round;
    return FH_OK;
}

static fh_status central_evaluate(fl_loop *L, int32_t r, fl_round_stats *rs)
{
    (void)r;
    fh_status st = FH_OK;
    if (L->w->rank == 0 && L->test.n > 0) st = fl_testset_eval(&L->test, L->md, L->params, L->wk.ws, L->wk.ws_rows, &rs->test);
    return comm_agree(L->w, st);
}

const fl_strategy fl_strategy_central = {
    .name = "centralized",
    .unit = "round",
    .init = central_init,
    .round = central_round,
    .evaluate = central_evaluate,
    .free = central_free,
};
