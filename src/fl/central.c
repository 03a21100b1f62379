/* The centralized baseline: the same model trained on the pooled training data.
 *
 * The pooled rows are cut into S fixed shards (config [fl] central_shards), dealt to ranks
 * round-robin, each rank reading only its shards' rows. A global minibatch of B rows takes
 * B/S rows from every shard (each shard walks its own permutation, stream (seed, shard, pass,
 * RNG_CENTRAL)); shard gradients are encoded in fixed point and summed with one integer
 * all-reduce per step, so the model is the same for any number of ranks <= S.
 */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/ckpt.h"
#include "fedhpc/fl.h"
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

static fh_status central_save(const config_t *cfg, const comm_t *w, const float *params, const float *mom,
                              int64_t P, int32_t r)
{
    ckpt *h = NULL;
    FH_TRY(fl_ckpt_begin(cfg, w, r, &h));
    fh_status st = ckpt_put_array(h, "params", CKPT_F32, params, P);
    if (st == FH_OK) st = ckpt_put_array(h, "central_momentum", CKPT_F32, mom, P);
    return fl_ckpt_end(cfg, h, st);
}

static fh_status central_resume(const config_t *cfg, const comm_t *w, float *params, float *mom, int64_t P,
                                int32_t *r_done, fl_result *res)
{
    ckpt *h = NULL;
    int64_t round = 0;
    *r_done = 0;
    FH_TRY(fl_ckpt_resume_open(cfg, w, "round", &h, &round, res->notice, sizeof res->notice));
    if (!h) return FH_OK;
    fh_status st = ckpt_get_array(h, "params", CKPT_F32, params, P);
    if (st == FH_OK) st = ckpt_get_array(h, "central_momentum", CKPT_F32, mom, P);
    ckpt_close(h);
    st = comm_agree(w, st);
    if (st == FH_OK) *r_done = (int32_t)round;
    return st;
}

fh_status fl_train_centralized(const config_t *cfg, const comm_t *w, io_data *data,
                               const io_data_meta *meta, fl_round_fn on_round, void *user,
                               fl_result *res)
{
    FH_TRY(fl_model_setup(cfg, data, meta, res));
    const model_t *md = &res->model;
    const int64_t P = md->nparams, d = md->in, N = meta->train_rows;
    int32_t S = cfg->central_shards;
    if (S > N) S = (int32_t)N;
    if (w->size > S)
        return fh_error_set(FH_EINPUT, "%s: [fl] central_shards = %d but %d ranks: use at most %d ranks or more shards",
                            cfg->data_file, S, w->size, S);
    const int64_t B = cfg->batch_size > 0 && cfg->batch_size < N ? cfg->batch_size : N;
    const int64_t steps_per_epoch = (N + B - 1) / B;
    const int full = B == N;

    /* my shards */
    int32_t nmine = 0;
    for (int32_t s = w->rank; s < S; s += w->size) nmine++;
    shard *sh = fh_calloc((size_t)nmine, sizeof *sh);
    int64_t *st_rows = fh_calloc((size_t)nmine, sizeof *st_rows), *n_rows = fh_calloc((size_t)nmine, sizeof *n_rows);
    fl_worker wk;
    memset(&wk, 0, sizeof wk);
    fl_testset test;
    memset(&test, 0, sizeof test);
    float *x = NULL, *xb = NULL, *mom = NULL, *dec = NULL;
    int32_t *y = NULL, *yb = NULL;
    int64_t *acc = NULL, rows = 0, maxb = 0;
    fh_status st = sh && st_rows && n_rows ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory");
    for (int32_t i = 0, s = w->rank; st == FH_OK && s < S; s += w->size, i++) {
        sh[i].id = s;
        sh[i].start = N * s / S;
        sh[i].n = N * (s + 1) / S - sh[i].start;
        sh[i].off = rows;
        sh[i].perm = malloc((size_t)sh[i].n * sizeof *sh[i].perm);
        if (!sh[i].perm) st = fh_error_set(FH_ENOMEM, "out of memory");
        st_rows[i] = sh[i].start;
        n_rows[i] = sh[i].n;
        rows += sh[i].n;
        int64_t b = B / S + (s < B % S);
        if (b > maxb) maxb = b;
    }
    if (st == FH_OK) {
        x = malloc((size_t)(rows ? rows : 1) * (size_t)d * sizeof *x);
        y = malloc((size_t)(rows ? rows : 1) * sizeof *y);
        xb = malloc((size_t)(maxb ? maxb : 1) * (size_t)d * sizeof *xb);
        yb = malloc((size_t)(maxb ? maxb : 1) * sizeof *yb);
        mom = fh_calloc((size_t)P, sizeof *mom);
        dec = malloc((size_t)P * sizeof *dec);
        acc = malloc((size_t)(P + 3) * sizeof *acc);
        if (!x || !y || !xb || !yb || !mom || !dec || !acc) st = fh_error_set(FH_ENOMEM, "out of memory");
    }
    if (st == FH_OK) st = io_data_read_ranges(data, "train", nmine, st_rows, n_rows, x, y);
    if (st == FH_OK) st = fl_worker_init(&wk, md, maxb < 1024 ? (int32_t)(maxb > 256 ? maxb : 256) : 1024);
    st = comm_agree(w, st);
    if (st == FH_OK) st = fl_testset_load(&test, w, data, meta);
    float *params = res->params;
    int32_t r_done = 0;
    if (st == FH_OK && cfg->resume[0]) st = central_resume(cfg, w, params, mom, P, &r_done, res);
    const int64_t steps_done = (int64_t)r_done * cfg->local_epochs * steps_per_epoch;
    for (int32_t i = 0; st == FH_OK && i < nmine; i++)
        shard_seek(&sh[i], (uint64_t)cfg->seed, steps_done, B / S + (sh[i].id < B % S));

    const float lr = (float)cfg->lr, mu_m = (float)cfg->momentum, wd = (float)cfg->weight_decay;
    for (int32_t r = r_done + 1; st == FH_OK && r <= cfg->rounds; r++) {
        double t0 = fh_wtime(), loss_round = 0;
        int64_t rows_round = 0, stop = 0;
        for (int64_t step = 0; st == FH_OK && step < cfg->local_epochs * steps_per_epoch; step++) {
            memset(acc, 0, (size_t)(P + 3) * sizeof *acc);
            acc[P + 2] = fh_stop_requested();
            for (int32_t i = 0; i < nmine; i++) {
                shard *h = &sh[i];
                int64_t b = B / S + (h->id < B % S);
                if (b == 0) continue;
                const float *xs = x + h->off * d;
                const int32_t *ys = y + h->off;
                double loss;
                if (full) {
                    loss = fl_grad_rows(&wk, params, xs, ys, h->n);
                } else {
                    for (int64_t k = 0; k < b; k++) {
                        if (h->cursor == h->n) shard_next_pass(h, (uint64_t)cfg->seed);
                        int32_t rr = h->perm[h->cursor++];
                        memcpy(xb + k * d, xs + (int64_t)rr * d, (size_t)d * sizeof *xb);
                        yb[k] = ys[rr];
                    }
                    loss = fl_grad_rows(&wk, params, xb, yb, b);
                }
                double norm;
                if (!fl_update_ok(wk.grad, P, FX_MAX_ABS, &norm) || !isfinite(loss)) {
                    st = fh_error_set(FH_EFAULT, "centralized: the gradient is not finite at round %d (diverged? lower [train] lr)", r);
                    break;
                }
                fx_accumulate(acc, wk.grad, (double)b / (double)B, P);
                acc[P] += (int64_t)llrint(loss * 1048576.0);
                acc[P + 1] += b;
            }
            if ((st = comm_agree(w, st)) != FH_OK) break;
            if ((st = comm_allreduce_sum_i64(w, acc, P + 3)) != FH_OK) break;
            stop |= acc[P + 2] > 0;
            fx_decode(acc, 1.0, dec, P);
            optim_state os; /* the step (include/fedhpc/optim.h); dec becomes the direction */
            optim_attach(&os, mu_m != 0 ? mom : NULL, P);
            optim_step(&(optim_opts){.lr = lr, .momentum = mu_m, .weight_decay = wd}, &os, params, dec);
            loss_round += (double)acc[P] / 1048576.0;
            rows_round += acc[P + 1];
        }
        if (st != FH_OK) break;
        fl_round_stats rs;
        fl_stats_init(&rs, r, cfg->rounds, S);
        if (rows_round) rs.train_loss = loss_round / (double)rows_round;
        if (r % cfg->eval_every == 0 || r == cfg->rounds) {
            rs.evaluated = 1;
            if (w->rank == 0 && test.n > 0)
                st = fl_testset_eval(&test, md, params, wk.ws, wk.ws_rows, &rs.test);
            if ((st = comm_agree(w, st)) != FH_OK) break;
        }
        rs.notice = r == r_done + 1 ? res->notice : "";
        rs.wall_s = fh_wtime() - t0;
        st = comm_agree(w, on_round ? on_round(&rs, user) : FH_OK);
        const int halt = stop && r < cfg->rounds;
        if (st == FH_OK && ((cfg->ckpt_every > 0 && r % cfg->ckpt_every == 0) || halt))
            st = central_save(cfg, w, params, mom, P, r);
        if (st == FH_OK && halt) {
            st = fh_error_set(FH_ESTOPPED, "stopped on request after round %d of %d; checkpoint written", r, cfg->rounds);
            break;
        }
    }
    for (int32_t i = 0; i < nmine; i++) free(sh[i].perm);
    free(sh); free(st_rows); free(n_rows); free(x); free(y); free(xb); free(yb); free(mom); free(dec); free(acc);
    fl_worker_free(&wk);
    fl_testset_free(&test);
    return st;
}
