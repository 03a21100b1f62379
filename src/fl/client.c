/* Local training on one client's rows: minibatch SGD with momentum, weight decay, the FedProx
 * proximal term and the SCAFFOLD correction (the step: optim_step, include/fedhpc/optim.h).
 * Shuffles come from the client's own stream. */
#include "fedhpc/fl.h"
#include "fedhpc/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

fh_status fl_worker_init(fl_worker *w, const model_t *m, int32_t ws_rows)
{
    memset(w, 0, sizeof *w);
    w->m = m;
    w->ws_rows = ws_rows;
    w->ws = model_ws_create(m, ws_rows);
    size_t P = (size_t)m->nparams;
    w->grad = malloc(P * sizeof *w->grad);
    w->xb = malloc((size_t)ws_rows * (size_t)m->in * sizeof *w->xb);
    w->yb = malloc((size_t)ws_rows * sizeof *w->yb);
    if (!w->ws || !w->grad || !w->xb || !w->yb) {
        fl_worker_free(w);
        return fh_error_set(FH_ENOMEM, "out of memory for a worker (%lld parameters)", (long long)P);
    }
    return FH_OK;
}

int32_t fl_worker_rows(const config_t *cfg)
{
    const int32_t lo = cfg->model.type == MODEL_CNN ? 16 : 256;
    int32_t r = cfg->train.batch_size > 0 ? cfg->train.batch_size : 1024;
    if (r < lo) r = lo;
    return r > 8192 ? 8192 : r;
}

void fl_worker_free(fl_worker *w)
{
    model_ws_free(w->ws);
    free(w->grad);
    free(w->grad2);
    free(w->mom);
    free(w->xb);
    free(w->yb);
    free(w->order);
    memset(w, 0, sizeof *w);
}

/* A second [P] buffer (*buf: grad2 or mom), allocated the first time a client needs it: plain
 * minibatch SGD never does, so a CNN worker holds two fewer parameter-sized buffers. */
static fh_status worker_buffer(const fl_worker *w, float **buf)
{
    if (!*buf) *buf = malloc((size_t)w->m->nparams * sizeof **buf);
    return *buf ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory for a worker (%lld parameters)", (long long)w->m->nparams);
}

double fl_grad_rows(fl_worker *w, const float *params, const float *x, const int32_t *y, int64_t n)
{
    const int64_t P = w->m->nparams;
    if (n <= w->ws_rows) return model_loss_grad(w->m, params, x, y, (int32_t)n, w->grad, w->ws);
    if (worker_buffer(w, &w->grad2) != FH_OK) return NAN; /* callers reject a NaN loss */
    /* larger batches: mean over chunks, weighted by chunk size */
    double loss = 0;
    memset(w->grad2, 0, (size_t)P * sizeof *w->grad2);
    for (int64_t r = 0; r < n; r += w->ws_rows) {
        int32_t k = (int32_t)(n - r < w->ws_rows ? n - r : w->ws_rows);
        loss += model_loss_grad(w->m, params, x + r * w->m->in, y + r, k, w->grad, w->ws);
        const float f = (float)k / (float)n;
        for (int64_t j = 0; j < P; j++) w->grad2[j] += f * w->grad[j];
    }
    memcpy(w->grad, w->grad2, (size_t)P * sizeof *w->grad);
    return loss;
}

/* The client step of fl_local_opts in optim's terms (the coefficients rounded to float). */
static optim_opts local_optim(const fl_local_opts *o)
{
    return (optim_opts){.lr = (float)o->lr, .momentum = (float)o->momentum,
                        .weight_decay = (float)o->weight_decay, .mu = (float)o->mu,
                        .global = o->global, .c_diff = o->c_diff};
}

/* ---- DP-SGD (Abadi et al. 2016): a separate branch, taken when w->dp is set ------------ */
/* Batches: Poisson (each row independently with rate B/n, round(n/B) steps an epoch) or fixed
 * size B in a shuffled order. Per step: the sum of per-example clipped gradients
 * (model_loss_grad_clipped, in chunks of ws_rows), plus N(0, (sigma C)^2) noise, over B. */
static fh_status local_train_dp(fl_worker *w, const fl_local_opts *o, rng_t shuffle,
                                const float *x, const int32_t *y, int64_t n, float *params,
                                double *loss_sum, int64_t *steps, int64_t *rows)
{
    const model_t *m = w->m;
    const int64_t P = m->nparams, d = m->in;
    const privacy_sgd *dp = w->dp;
    const int64_t B = o->batch > 0 ? o->batch : n;
    const double q = B >= n ? 1.0 : (double)B / (double)n;
    int64_t per_epoch = dp->poisson ? (int64_t)llround((double)n / (double)B) : (n + B - 1) / B;
    if (per_epoch < 1) per_epoch = 1;
    rng_t noise = rng_stream(dp->seed, dp->client, dp->round, RNG_DPSGD);
    rng_t samp = rng_stream(dp->seed, dp->client, dp->round, RNG_DPSGD_SAMPLE);
    FH_TRY(worker_buffer(w, &w->grad2));
    FH_TRY(worker_buffer(w, &w->mom));
    const optim_opts oo = local_optim(o);
    optim_state os; /* the worker's buffer: the momentum recurrence runs even at momentum 0 */
    optim_attach(&os, w->mom, P);
    optim_reset(&os);
    double loss = 0;
    int64_t k = 0, seen = 0;
    for (int32_t e = 0; e < o->epochs; e++) {
        for (int64_t i = 0; i < n; i++) w->order[i] = (int32_t)i;
        if (!dp->poisson) rng_shuffle_u32(&shuffle, (uint32_t *)w->order, (size_t)n);
        for (int64_t s = 0; s < per_epoch; s++) {
            memset(w->grad2, 0, (size_t)P * sizeof *w->grad2);
            int64_t r0 = 0, r1 = 0; /* fixed: rows order[r0..r1); Poisson: scan all rows */
            if (!dp->poisson) {
                r0 = s * B;
                r1 = r0 + B < n ? r0 + B : n;
            }
            int64_t nb = 0, fill = 0;
            for (int64_t i = dp->poisson ? 0 : r0; i < (dp->poisson ? n : r1) || fill > 0;) {
                if (i < (dp->poisson ? n : r1)) {
                    const int64_t r = w->order[i++];
                    if (dp->poisson && !(q >= 1.0 || rng_uniform(&samp) < q)) continue;
                    memcpy(w->xb + fill * d, x + r * d, (size_t)d * sizeof *x);
                    w->yb[fill++] = y[r];
                    if (fill < w->ws_rows) continue;
                }
                loss += model_loss_grad_clipped(m, params, w->xb, w->yb, (int32_t)fill, dp->clip,
                                                w->grad, NULL, w->ws);
                for (int64_t j = 0; j < P; j++) w->grad2[j] += w->grad[j];
                nb += fill;
                fill = 0;
            }
            float *g = w->grad;
            const double sd = dp->sigma * dp->clip;
            for (int64_t j = 0; j < P; j++)
                g[j] = (float)(((double)w->grad2[j] + sd * rng_normal(&noise)) / (double)B);
            optim_step(&oo, &os, params, g);
            k++;
            seen += nb;
        }
    }
    *loss_sum = loss;
    *steps = k;
    *rows = seen;
    return FH_OK;
}

fh_status fl_local_train(fl_worker *w, const fl_local_opts *o, rng_t shuffle, const float *x,
                         const int32_t *y, int64_t n, float *params, double *loss_sum,
                         int64_t *steps, int64_t *rows)
{
    const model_t *m = w->m;
    const int64_t P = m->nparams, d = m->in;
    const int64_t B = o->batch > 0 && o->batch < n ? o->batch : n;
    if (n > w->order_cap) {
        free(w->order);
        w->order = malloc((size_t)n * sizeof *w->order);
        FH_CHECK_ALLOC(w->order);
        w->order_cap = n;
    }
    if (w->dp) return local_train_dp(w, o, shuffle, x, y, n, params, loss_sum, steps, rows);
    const optim_opts oo = local_optim(o);
    optim_state os; /* the worker's buffer, when there is momentum */
    if (oo.momentum != 0) FH_TRY(worker_buffer(w, &w->mom));
    optim_attach(&os, oo.momentum != 0 ? w->mom : NULL, P);
    optim_reset(&os);
    /* plain SGD on minibatches: one fused step (model_sgd_step), no gradient round trip */
    const int plain = optim_is_plain(&oo, &os) && B < n && B <= w->ws_rows;
    double loss = 0;
    int64_t k = 0, seen = 0;
    const int64_t kmax = w->max_steps > 0 ? w->max_steps : INT64_MAX; /* partial work */
    for (int32_t e = 0; e < o->epochs && k < kmax; e++) {
        for (int64_t i = 0; i < n; i++) w->order[i] = (int32_t)i;
        if (B < n) rng_shuffle_u32(&shuffle, (uint32_t *)w->order, (size_t)n);
        for (int64_t b0 = 0; b0 < n && k < kmax; b0 += B) {
            int64_t nb = n - b0 < B ? n - b0 : B;
            if (B == n) {
                loss += fl_grad_rows(w, params, x, y, n);
            } else {
                for (int64_t i = 0; i < nb; i++) {
                    int32_t r = w->order[b0 + i];
                    memcpy(w->xb + i * d, x + (int64_t)r * d, (size_t)d * sizeof *x);
                    w->yb[i] = y[r];
                }
                if (plain) {
                    loss += model_sgd_step(m, params, w->xb, w->yb, (int32_t)nb, oo.lr, w->grad, w->ws);
                    k++;
                    seen += nb;
                    continue;
                }
                loss += fl_grad_rows(w, params, w->xb, w->yb, nb);
            }
            optim_step(&oo, &os, params, w->grad);
            k++;
            seen += nb;
        }
    }
    *loss_sum = loss;
    *steps = k;
    *rows = seen;
    return FH_OK;
}
