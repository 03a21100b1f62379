/* The federated training loop, read top to bottom:
 *
 *   for each round r = 1..R:
 *     sample m clients (same list on every rank, from the (seed, r) stream)
 *     place them on ranks in contiguous row-balanced blocks; each rank reads only its rows
 *     each rank trains its clients from the global model; update = local - global
 *     reject faulty updates (NaN/Inf/absurd norm); encode n_i/N * update in fixed point
 *     one integer all-reduce of [updates | SCAFFOLD control deltas | round counters]
 *     every rank applies the same server step (FedAvg/FedAvgM/FedAdam/FedYogi/SCAFFOLD)
 *     rank 0 evaluates on the test split; per-client accuracy gathered from the hosts
 */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/async.h"
#include "fedhpc/ckpt.h"
#include "fedhpc/fl.h"
#include "fedhpc/secagg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the round counters appended to the integer reduction */
enum { T_LOSS, T_ROWS_SEEN, T_ACC_ROWS, T_REJ_CLIENTS, T_REJ_ROWS, T_ACC_CLIENTS, T_STOP,
       T_DP_BELOW /* [privacy] adaptive clipping: unclipped updates */, T_N };
#define LOSS_SCALE 1048576.0 /* 2^20: fixed point of summed losses */

fh_status fl_model_setup(const config_t *cfg, io_data *data, const io_data_meta *meta, fl_result *res)
{
    memset(res, 0, sizeof *res);
    FH_TRY(model_create(&res->model, (model_type)cfg->model_type, meta->features, meta->classes,
                        cfg->hidden, cfg->nhidden));
    if (cfg->class_weights == 1) {
        int64_t *cnt = fh_calloc((size_t)meta->classes, sizeof *cnt);
        res->class_w = fh_calloc((size_t)meta->classes, sizeof *res->class_w);
        FH_CHECK_ALLOC(cnt && res->class_w ? res->class_w : NULL);
        fh_status st = io_data_class_counts(data, cnt);
        if (st != FH_OK) {
            free(cnt);
            return st;
        }
        int64_t n = 0;
        for (int32_t k = 0; k < meta->classes; k++) n += cnt[k];
        for (int32_t k = 0; k < meta->classes; k++)
            res->class_w[k] = cnt[k] ? (float)((double)n / ((double)meta->classes * (double)cnt[k])) : 0.0f;
        free(cnt);
        res->model.class_weight = res->class_w;
    }
    res->params = malloc((size_t)res->model.nparams * sizeof *res->params);
    FH_CHECK_ALLOC(res->params);
    model_init_params(&res->model, res->params, (uint64_t)cfg->seed);
    return FH_OK;
}

void fl_result_free(fl_result *r)
{
    free(r->params);
    free(r->class_w);
    memset(r, 0, sizeof *r);
}

fh_status fl_testset_load(fl_testset *t, const comm_t *world, io_data *data, const io_data_meta *meta)
{
    memset(t, 0, sizeof *t);
    if (world->rank == 0 && meta->test_rows > 0) {
        t->data = data;
        t->n = meta->test_rows;
        t->d = meta->features;
    }
    return FH_OK;
}

void fl_testset_free(fl_testset *t)
{
    free(t->x);
    free(t->y);
    memset(t, 0, sizeof *t);
}

/* Rows read a time: a multiple of the model's batch, so the numbers equal model_evaluate's on
 * the whole split (at least 256 rows: 0.8 MB for Fashion-MNIST instead of 31 MB held). */
fh_status fl_testset_eval(fl_testset *t, const model_t *m, const float *params, model_ws *ws,
                          int32_t ws_rows, metrics_t *out)
{
    const int64_t chunk = (int64_t)ws_rows * (ws_rows >= 256 ? 1 : 256 / ws_rows);
    const int64_t rows = t->n < chunk ? t->n : chunk;
    if (rows > t->cap) {
        free(t->x);
        free(t->y);
        t->x = malloc((size_t)rows * (size_t)t->d * sizeof *t->x);
        t->y = malloc((size_t)rows * sizeof *t->y);
        t->cap = t->x && t->y ? rows : 0;
        if (!t->cap) return fh_error_set(FH_ENOMEM, "out of memory for %lld test rows", (long long)rows);
    }
    model_eval *e;
    FH_TRY(model_eval_begin(m, t->n, ws_rows, &e));
    fh_status st = FH_OK;
    for (int64_t r = 0; r < t->n && st == FH_OK; r += rows) {
        int64_t k = t->n - r < rows ? t->n - r : rows;
        st = io_data_read_ranges(t->data, "test", 1, &r, &k, t->x, t->y);
        if (st == FH_OK) st = model_eval_add(e, params, t->x, t->y, k, ws);
    }
    if (st != FH_OK) {
        model_eval_free(e);
        return st;
    }
    return model_eval_end(e, out);
}

static int cmp_f64(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Rows of a rank's clients are read in groups of at most this many floats (4 MB) or one client:
 * memory follows the largest client, not the number of clients a rank trains in a round. */
#define ROWS_READ_FLOATS (1 << 20)

/* The end of the group of clients [i, end) that starts at i. */
static int32_t rows_group(const int64_t *count, int32_t i, int32_t end, int64_t d)
{
    int64_t rows = count[i];
    int32_t g = i + 1;
    for (; g < end && (rows + count[g]) * d <= ROWS_READ_FLOATS; g++) rows += count[g];
    return g;
}

fh_status fl_client_accuracy(const comm_t *w, fl_worker *wk, const float *params, io_data *data,
                             const int64_t *start, const int64_t *count, int32_t n_local,
                             int32_t n_total, fl_rows *rows, double *mean, double *p10)
{
    double *acc = fh_calloc((size_t)n_local, sizeof *acc), *all = NULL;
    FH_CHECK_ALLOC(acc);
    fh_status st = FH_OK;
    const int32_t d = wk->m->in;
    int64_t row = 0;
    for (int32_t i = 0, g1 = 0; i < n_local && st == FH_OK; i++) {
        if (i == g1) {
            g1 = rows_group(count, i, n_local, d);
            st = fl_read_rows(data, g1 - i, start + i, count + i, d, &rows->x, &rows->y, &rows->cap);
            if (st != FH_OK) break;
            row = 0;
        }
        metrics_t mt;
        if (count[i] == 0) { /* a client without rows has no accuracy */
            acc[i] = NAN;
            continue;
        }
        st = model_evaluate(wk->m, params, rows->x + row * d, rows->y + row, count[i], wk->ws,
                            wk->ws_rows, &mt);
        acc[i] = mt.accuracy;
        row += count[i];
    }
    st = comm_agree(w, st);
    if (st == FH_OK && w->rank == 0) {
        all = fh_calloc((size_t)n_total, sizeof *all);
        if (!all) st = fh_error_set(FH_ENOMEM, "out of memory");
    }
    st = comm_agree(w, st);
    if (st == FH_OK) st = comm_gatherv_f64(w, acc, n_local, all, 0);
    if (st == FH_OK && w->rank == 0 && n_total > 0) {
        double s = 0;
        int32_t k = 0;
        for (int32_t i = 0; i < n_total; i++)
            if (!isnan(all[i])) {
                s += all[i];
                all[k++] = all[i];
            }
        qsort(all, (size_t)k, sizeof *all, cmp_f64);
        *mean = k ? s / k : NAN;
        *p10 = k ? all[(int32_t)floor(0.1 * (k - 1))] : NAN;
    }
    free(acc);
    free(all);
    return st;
}

/* Everything the loop owns, freed in one place. */
typedef struct {
    fl_worker wk;
    fl_server srv;
    fl_testset test;
    io_state *cstate;          /* SCAFFOLD c_i store                       */
    float *local;              /* [P] a client's model / update; after the
                                  round's local work, the decoded aggregate */
    float *c, *ci, *cdiff;     /* [P] SCAFFOLD: server c, client c_i, c-c_i */
    float *dec;                /* == local (not a buffer of its own)       */
    int64_t *acc;              /* [P * (1 + scaffold) + T_N]               */
    int32_t *ids, *first;      /* [m], [P+1]                               */
    int64_t *start, *count;    /* [m]                                      */
    fl_rows rows;              /* a group of this rank's clients' rows      */
    privacy_run pv;            /* [privacy] DP state and accountant (src/privacy/dp.c)  */
    secagg_engine sa;          /* [secagg] per-client masked contributions (sa_round.c) */
} loop_state;

static void loop_free(loop_state *s)
{
    fl_worker_free(&s->wk);
    fl_server_free(&s->srv);
    fl_testset_free(&s->test);
    io_state_close(s->cstate);
    free(s->local); free(s->c); free(s->ci); free(s->cdiff);
    free(s->acc); free(s->ids); free(s->first); free(s->start); free(s->count); free(s->rows.x); free(s->rows.y);
    privacy_run_free(&s->pv);
    secagg_engine_free(&s->sa);
}

/* Local work of one round on this rank: train the clients [c0, c1) of s->ids. */
static fh_status round_local(const config_t *cfg, const comm_t *w, io_data *data, loop_state *s,
                             int64_t round, int32_t c0, int32_t c1, int64_t N_round, int32_t m,
                             const float *params)
{
    const model_t *md = s->wk.m;
    const int64_t P = md->nparams, d = md->in;
    const int scaffold = cfg->algorithm == ALG_SCAFFOLD;
    (void)w;
    int64_t *tail = s->acc + P * (1 + scaffold);
    if (s->sa.enabled) FH_TRY(secagg_engine_begin(&s->sa, c1 - c0));
    fl_local_opts o = {params, NULL, cfg->lr, cfg->momentum, cfg->weight_decay,
                       cfg->algorithm == ALG_FEDPROX ? cfg->mu : 0.0, cfg->local_epochs, cfg->batch_size};
    int64_t row = 0;
    int32_t g1 = c0; /* clients [.., g1) have their rows in s->rows */
    for (int32_t i = c0; i < c1; i++) {
        if (i == g1) { /* the next group of clients: one read of at most ~4 MB (or one client) */
            g1 = rows_group(s->count, i, c1, d);
            FH_TRY(fl_read_rows(data, g1 - i, s->start + i, s->count + i, (int32_t)d, &s->rows.x, &s->rows.y, &s->rows.cap));
            row = 0;
        }
        const int32_t cid = s->ids[i];
        const int64_t n = s->count[i];
        const float *xi = s->rows.x + row * d;
        const int32_t *yi = s->rows.y + row;
        row += n;
        /* [secagg]/[privacy]: simulated dropout; with secagg each client fills its own buffer */
        if (secagg_dropped((uint64_t)cfg->seed, cfg->sa_dropout, cid, round)) continue;
        int64_t *acc = s->sa.enabled ? secagg_engine_buffer(&s->sa, i - c0) : s->acc;
        tail = acc + P * (1 + scaffold);
        privacy_sgd dpo;
        if (s->pv.mode == PRIVACY_SAMPLE) {
            privacy_sgd_opts(&s->pv, round, cid, &dpo);
            s->wk.dp = &dpo;
        }
        if (scaffold) {
            FH_TRY(io_state_read(s->cstate, cid, s->ci));
            for (int64_t j = 0; j < P; j++) s->cdiff[j] = s->c[j] - s->ci[j];
            o.c_diff = s->cdiff;
        }
        memcpy(s->local, params, (size_t)P * sizeof *s->local);
        double loss = 0;
        int64_t steps = 0, seen = 0;
        if (n > 0)
            FH_TRY(fl_local_train(&s->wk, &o, rng_stream((uint64_t)cfg->seed, (uint64_t)cid, (uint64_t)round, RNG_SHUFFLE),
                                  xi, yi, n, s->local, &loss, &steps, &seen));
        s->wk.dp = NULL;
        for (int64_t j = 0; j < P; j++) s->local[j] -= params[j]; /* the update */
        double norm;
        if (n == 0 || !isfinite(loss) || !fl_update_ok(s->local, P, cfg->max_update_norm, &norm)) {
            tail[T_REJ_CLIENTS] += 1;
            tail[T_REJ_ROWS] += n;
            continue;
        }
        double wgt = (double)n / (double)N_round;
        if (s->pv.mode == PRIVACY_CLIENT) /* clip to C (+ distributed noise), weight 1/m */
            wgt = privacy_client_update(&s->pv, round, cid, s->local, P, &tail[T_DP_BELOW]);
        fx_accumulate(acc, s->local, wgt, P);
        tail[T_LOSS] += (int64_t)llrint(loss * LOSS_SCALE);
        tail[T_ROWS_SEEN] += seen;
        tail[T_ACC_ROWS] += n;
        tail[T_ACC_CLIENTS] += 1;
        if (scaffold) {
            /* option II: c_i+ = c_i - c + (x - y_i)/(K lr); delta c_i = c_i+ - c_i */
            const double inv = 1.0 / ((double)steps * cfg->lr);
            for (int64_t j = 0; j < P; j++) s->cdiff[j] = (float)(-(double)s->c[j] - inv * s->local[j]);
            if (!fl_update_ok(s->cdiff, P, FX_MAX_ABS, &norm))
                return fh_error_set(FH_EFAULT, "SCAFFOLD control variate of client %d is not finite", cid);
            fx_accumulate(acc + P, s->cdiff, 1.0 / m, P);
            for (int64_t j = 0; j < P; j++) s->ci[j] += s->cdiff[j];
            FH_TRY(io_state_write(s->cstate, cid, s->ci));
        }
    }
    return FH_OK;
}

void fl_stats_init(fl_round_stats *s, int32_t r, int32_t rounds, int32_t clients)
{
    memset(s, 0, sizeof *s);
    s->round = r;
    s->rounds = rounds;
    s->clients = clients;
    s->train_loss = s->client_acc_mean = s->client_acc_p10 = NAN;
    s->test.loss = s->test.accuracy = s->test.f1 = s->test.auc = NAN;
    s->epsilon = s->mask_gbps = s->chacha_gbps = NAN;
    s->notice = "";
}

void fl_ckpt_dir(const config_t *cfg, char *out, size_t cap)
{
    if (cfg->ckpt_dir[0]) snprintf(out, cap, "%s", cfg->ckpt_dir);
    else snprintf(out, cap, "%s/checkpoints", cfg->out_dir);
}

fh_status fl_ckpt_begin(const config_t *cfg, const comm_t *w, int64_t r, ckpt **h)
{
    char dir[CONFIG_PATH_MAX + 16];
    fl_ckpt_dir(cfg, dir, sizeof dir);
    return ckpt_create(dir, r, config_train_hash(cfg), w, h);
}

fh_status fl_ckpt_end(const config_t *cfg, ckpt *h, fh_status st)
{
    if (st != FH_OK) {
        ckpt_abort(h);
        return st;
    }
    return ckpt_commit(h, cfg->ckpt_keep);
}

fh_status fl_ckpt_resume_open(const config_t *cfg, const comm_t *w, const char *unit, ckpt **h,
                              int64_t *round, char *notice, size_t cap)
{
    char dir[CONFIG_PATH_MAX + 16];
    fl_ckpt_dir(cfg, dir, sizeof dir);
    const int autom = strcmp(cfg->resume, "auto") == 0;
    *h = NULL;
    *round = 0;
    FH_TRY(ckpt_open(autom ? dir : cfg->resume, config_train_hash(cfg), w, h, round));
    if (!*h) return autom ? FH_OK : fh_error_set(FH_EINPUT, "--resume %s: no checkpoint there", cfg->resume);
    if (*round > cfg->rounds) { /* nothing to continue: refuse before anything is rewritten */
        fh_status st = fh_error_set(FH_EINPUT, "%s: checkpoint is after %s %lld but [train] rounds = %d "
                                    "(expected rounds >= %lld to resume)", ckpt_path(*h), unit,
                                    (long long)*round, cfg->rounds, (long long)*round);
        ckpt_close(*h);
        *h = NULL;
        return st;
    }
    snprintf(notice, cap, "%s%sresuming after %s %lld from %s", ckpt_warning(*h), ckpt_warning(*h)[0] ? "\n" : "",
             unit, (long long)*round, ckpt_path(*h));
    return FH_OK;
}

fh_status fl_read_rows(io_data *data, int32_t n, const int64_t *start, const int64_t *count, int32_t d,
                       float **x, int32_t **y, int64_t *cap)
{
    int64_t rows = 0;
    for (int32_t i = 0; i < n; i++) rows += count[i];
    if (rows > *cap) {
        free(*x);
        free(*y);
        *x = malloc((size_t)rows * (size_t)d * sizeof **x);
        *y = malloc((size_t)rows * sizeof **y);
        *cap = *x && *y ? rows : 0;
        FH_CHECK_ALLOC(*cap ? *x : NULL);
    }
    return io_data_read_ranges(data, "train", n, start, count, *x, *y);
}

/* This rank's slab of per-client rows in checkpoints: clients [C*rank/size, C*(rank+1)/size). */
static void client_slab(const comm_t *w, int32_t C, int32_t *c0, int32_t *c1)
{
    *c0 = (int32_t)((int64_t)C * w->rank / w->size);
    *c1 = (int32_t)((int64_t)C * (w->rank + 1) / w->size);
}

/* Everything needed to continue exactly after round r: the model, the server optimizer's
 * moments, SCAFFOLD's server and client control variates, and the [privacy] state (accountants,
 * epsilon so far, adaptive clip norm, noise schedule). Sampling, shuffles, DP noise and dropouts
 * are pure functions of (seed, round, client), and secure aggregation starts afresh every round
 * (new keys), so no RNG or secagg state is needed. */
static fh_status loop_save(const config_t *cfg, const comm_t *w, loop_state *s, const float *params,
                           int64_t P, int32_t C, int32_t r)
{
    ckpt *h = NULL;
    FH_TRY(fl_ckpt_begin(cfg, w, r, &h));
    fh_status st = ckpt_put_array(h, "params", CKPT_F32, params, P);
    if (st == FH_OK && s->srv.m) st = ckpt_put_array(h, "server_m", CKPT_F32, s->srv.m, P);
    if (st == FH_OK && s->srv.v) st = ckpt_put_array(h, "server_v", CKPT_F32, s->srv.v, P);
    if (st == FH_OK && s->cstate) {
        st = ckpt_put_array(h, "scaffold_c", CKPT_F32, s->c, P);
        int32_t c0, c1;
        client_slab(w, C, &c0, &c1);
        float *slab = malloc((size_t)(c1 > c0 ? c1 - c0 : 1) * (size_t)P * sizeof *slab);
        fh_status ls = slab ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory for the checkpoint slab");
        for (int32_t c = c0; ls == FH_OK && c < c1; c++) ls = io_state_read(s->cstate, c, slab + (int64_t)(c - c0) * P);
        ls = comm_agree(w, ls);
        if (st == FH_OK) st = ls;
        if (st == FH_OK) st = ckpt_put_rows(h, "scaffold_ci", CKPT_F32, C, P, c0, c1 - c0, slab);
        free(slab);
    }
    if (st == FH_OK) st = privacy_run_save(&s->pv, w, h);
    return fl_ckpt_end(cfg, h, st);
}

/* Restore the state saved by loop_save; *r_done is the round the checkpoint ends (0: none). */
static fh_status loop_resume(const config_t *cfg, const comm_t *w, loop_state *s, float *params,
                             int64_t P, int32_t C, int32_t *r_done, fl_result *res)
{
    ckpt *h = NULL;
    int64_t round = 0;
    *r_done = 0;
    FH_TRY(fl_ckpt_resume_open(cfg, w, "round", &h, &round, res->notice, sizeof res->notice));
    if (!h) return FH_OK; /* nothing to resume: a fresh start */
    fh_status st = ckpt_get_array(h, "params", CKPT_F32, params, P);
    if (st == FH_OK && s->srv.m) st = ckpt_get_array(h, "server_m", CKPT_F32, s->srv.m, P);
    if (st == FH_OK && s->srv.v) st = ckpt_get_array(h, "server_v", CKPT_F32, s->srv.v, P);
    if (st == FH_OK && s->cstate) {
        st = ckpt_get_array(h, "scaffold_c", CKPT_F32, s->c, P);
        int32_t c0, c1;
        client_slab(w, C, &c0, &c1);
        for (int32_t c = c0; st == FH_OK && c < c1; c++) {
            st = ckpt_get_rows(h, "scaffold_ci", CKPT_F32, P, c, 1, s->ci);
            if (st == FH_OK) st = io_state_write(s->cstate, c, s->ci);
        }
    }
    if (st == FH_OK) st = privacy_run_load(&s->pv, w, h);
    ckpt_close(h);
    st = comm_agree(w, st);
    if (st == FH_OK) *r_done = (int32_t)round;
    return st;
}

fh_status fl_train(const config_t *cfg, const comm_t *w, io_data *data, const io_data_meta *meta,
                   fl_round_fn on_round, void *user, fl_result *res)
{
    if (cfg->cl_method || cfg->pers_mode || cfg->clients_per_rank) return fl_train_cluster(cfg, w, data, meta, on_round, user, res);
    if (cfg->as_mode != AS_OFF) return fl_train_async(cfg, w, data, meta, on_round, user, res); /* issue 7 */
    if (cfg->algorithm == ALG_CENTRALIZED)
        return fl_train_centralized(cfg, w, data, meta, on_round, user, res);
    if (w->size > meta->clients)
        return fh_error_set(FH_EINPUT, "%s: %d clients, but %d ranks: run with at most %d ranks",
                            cfg->data_file, meta->clients, w->size, meta->clients);
    FH_TRY(fl_model_setup(cfg, data, meta, res));
    const model_t *md = &res->model;
    const int64_t P = md->nparams;
    const int scaffold = cfg->algorithm == ALG_SCAFFOLD;
    const int32_t C = meta->clients, m = cfg->clients_per_round < C ? cfg->clients_per_round : C;
    const int64_t nacc = P * (1 + scaffold) + T_N;
    float *params = res->params;

    loop_state s;
    memset(&s, 0, sizeof s);
    fh_status st = fl_worker_init(&s.wk, md, fl_worker_rows(cfg));
    if (st == FH_OK) st = fl_server_init(&s.srv, cfg, P);
    if (st == FH_OK) {
        s.local = malloc((size_t)P * sizeof *s.local);
        s.dec = s.local; /* free once round_local is done with it */
        s.acc = malloc((size_t)nacc * sizeof *s.acc);
        s.ids = malloc((size_t)m * sizeof *s.ids);
        s.first = malloc((size_t)(w->size + 1) * sizeof *s.first);
        s.start = malloc((size_t)m * sizeof *s.start);
        s.count = malloc((size_t)m * sizeof *s.count);
        if (scaffold) {
            s.c = fh_calloc((size_t)P, sizeof *s.c);
            s.ci = malloc((size_t)P * sizeof *s.ci);
            s.cdiff = malloc((size_t)P * sizeof *s.cdiff);
        }
        if (!s.local || !s.acc || !s.ids || !s.first || !s.start || !s.count ||
            (scaffold && (!s.c || !s.ci || !s.cdiff)))
            st = fh_error_set(FH_ENOMEM, "out of memory for %lld parameters", (long long)P);
    }
    st = comm_agree(w, st);
    if (st == FH_OK) st = fl_testset_load(&s.test, w, data, meta);
    if (st == FH_OK && scaffold) {
        char path[CONFIG_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/client_state.h5", cfg->out_dir);
        st = comm_agree(w, io_state_create(path, w, C, P, &s.cstate));
    }
    if (st == FH_OK) st = comm_agree(w, privacy_run_init(&s.pv, cfg, C, m));
    if (st == FH_OK) st = comm_agree(w, secagg_engine_init(&s.sa, cfg, w, nacc, P));
    int32_t r_done = 0;
    if (st == FH_OK && cfg->resume[0]) st = loop_resume(cfg, w, &s, params, P, C, &r_done, res);

    for (int32_t r = r_done + 1; st == FH_OK && r <= cfg->rounds; r++) {
        double t0 = fh_wtime();
        int32_t n = 0;
        st = fl_sample_clients((uint64_t)cfg->seed, r, C, m, s.ids, &n);
        if (st == FH_OK) st = io_data_client_ranges(data, s.ids, n, s.start, s.count);
        if ((st = comm_agree(w, st)) != FH_OK) break;
        int64_t N_round = 0;
        for (int32_t i = 0; i < n; i++) N_round += s.count[i];
        fl_assign_ranks(s.count, n, w->size, s.first);
        const int32_t c0 = s.first[w->rank], c1 = s.first[w->rank + 1];
        int dp_stop = 0; /* [privacy] account the round; stop cleanly before exceeding the budget */
        if ((st = comm_agree(w, privacy_run_begin(&s.pv, r, s.ids, s.count, n, &dp_stop))) != FH_OK || dp_stop) break;

        memset(s.acc, 0, (size_t)nacc * sizeof *s.acc);
        s.acc[P * (1 + scaffold) + T_STOP] = fh_stop_requested();
        st = round_local(cfg, w, data, &s, r, c0, c1, N_round, n, params);
        if ((st = comm_agree(w, st)) != FH_OK) break;
        if (s.sa.enabled) { /* [secagg] rank-level counters in the clear, client vectors masked */
            if ((st = comm_allreduce_sum_i64(w, s.acc + P * (1 + scaffold), T_N)) != FH_OK) break;
            if ((st = secagg_engine_round(&s.sa, w, r, s.ids, s.first, n, s.acc)) != FH_OK) break;
        } else if ((st = comm_allreduce_sum_i64(w, s.acc, nacc)) != FH_OK) break;
        if ((st = comm_agree(w, secagg_engine_record_aggregate(&s.sa, w, r, s.ids, n, s.acc))) != FH_OK) break; /* test only */

        const int64_t *tail = s.acc + P * (1 + scaffold);
        if (s.pv.mode == PRIVACY_CLIENT) { /* [privacy] DP-FedAvg: sum / m + noise */
            if (!s.sa.aborted) {
                privacy_run_decode(&s.pv, r, s.acc, P, s.dec);
                fl_server_step(&s.srv, s.dec, params);
            }
            privacy_run_end(&s.pv, r, tail[T_DP_BELOW], s.sa.aborted ? NULL : s.dec, P);
        } else if (tail[T_ACC_ROWS] > 0) {
            fx_decode(s.acc, (double)N_round / (double)tail[T_ACC_ROWS], s.dec, P);
            fl_server_step(&s.srv, s.dec, params);
            if (scaffold) {
                /* c += (|S|/N) * mean over accepted clients of delta c_i */
                fx_decode(s.acc + P, (double)n / (double)tail[T_ACC_CLIENTS], s.dec, P);
                const float f = (float)tail[T_ACC_CLIENTS] / (float)C;
                for (int64_t j = 0; j < P; j++) s.c[j] += f * s.dec[j];
            }
        }

        fl_round_stats rs;
        fl_stats_init(&rs, r, cfg->rounds, n);
        rs.rejected = (int32_t)tail[T_REJ_CLIENTS];
        rs.train_loss = tail[T_ROWS_SEEN] ? (double)tail[T_LOSS] / LOSS_SCALE / (double)tail[T_ROWS_SEEN] : NAN;
        rs.bytes_down = (int64_t)n * P * (int64_t)sizeof(float) * (1 + scaffold);
        rs.bytes_up = (int64_t)n * P * (int64_t)sizeof(int64_t) * (1 + scaffold);
        rs.epsilon = s.pv.mode ? s.pv.eps : NAN; /* [privacy] / [secagg] */
        for (int32_t i = 0; i < n; i++) rs.dropped += secagg_dropped((uint64_t)cfg->seed, cfg->sa_dropout, s.ids[i], r);
        rs.secagg_aborted = s.sa.enabled ? s.sa.aborted : 0;
        rs.mask_gbps = s.sa.enabled && s.sa.mask_s > 0 ? (double)s.sa.mask_bytes / s.sa.mask_s / 1e9 : NAN;
        rs.chacha_gbps = s.sa.enabled ? s.sa.chacha_gbps : NAN;
        if (r % cfg->eval_every == 0 || r == cfg->rounds) {
            rs.evaluated = 1;
            st = FH_OK;
            if (w->rank == 0 && s.test.n > 0)
                st = fl_testset_eval(&s.test, md, params, s.wk.ws, s.wk.ws_rows, &rs.test);
            if ((st = comm_agree(w, st)) != FH_OK) break;
            st = fl_client_accuracy(w, &s.wk, params, data, s.start + c0, s.count + c0, c1 - c0, n, &s.rows,
                                    &rs.client_acc_mean, &rs.client_acc_p10);
            if (st != FH_OK) break;
        }
        rs.notice = r == r_done + 1 ? res->notice : "";
        rs.wall_s = fh_wtime() - t0;
        st = comm_agree(w, on_round ? on_round(&rs, user) : FH_OK);
        /* checkpoint every N rounds, and when any rank was asked to stop (SIGTERM/SIGUSR1) */
        const int stop = tail[T_STOP] > 0 && r < cfg->rounds;
        if (st == FH_OK && ((cfg->ckpt_every > 0 && r % cfg->ckpt_every == 0) || stop))
            st = loop_save(cfg, w, &s, params, P, C, r);
        if (st == FH_OK && stop) {
            st = fh_error_set(FH_ESTOPPED, "stopped on request after round %d of %d; checkpoint written", r, cfg->rounds);
            break;
        }
    }
    loop_free(&s);
    return st;
}
