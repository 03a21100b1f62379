/* Local training on one client's rows: minibatch SGD with momentum, weight decay, the FedProx
 * proximal term and the SCAFFOLD correction. Shuffles come from the client's own stream. */
#include "fedhpc/fl.h"

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
    w->grad2 = malloc(P * sizeof *w->grad2);
    w->mom = malloc(P * sizeof *w->mom);
    w->xb = malloc((size_t)ws_rows * (size_t)m->in * sizeof *w->xb);
    w->yb = malloc((size_t)ws_rows * sizeof *w->yb);
    if (!w->ws || !w->grad || !w->grad2 || !w->mom || !w->xb || !w->yb) {
        fl_worker_free(w);
        return fh_error_set(FH_ENOMEM, "out of memory for a worker (%lld parameters)", (long long)P);
    }
    return FH_OK;
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

double fl_grad_rows(fl_worker *w, const float *params, const float *x, const int32_t *y, int64_t n)
{
    const int64_t P = w->m->nparams;
    if (n <= w->ws_rows) return model_loss_grad(w->m, params, x, y, (int32_t)n, w->grad, w->ws);
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
    memset(w->mom, 0, (size_t)P * sizeof *w->mom);
    const float lr = (float)o->lr, mom = (float)o->momentum, wd = (float)o->weight_decay,
                mu = (float)o->mu;
    double loss = 0;
    int64_t k = 0, seen = 0;
    for (int32_t e = 0; e < o->epochs; e++) {
        for (int64_t i = 0; i < n; i++) w->order[i] = (int32_t)i;
        if (B < n) rng_shuffle_u32(&shuffle, (uint32_t *)w->order, (size_t)n);
        for (int64_t b0 = 0; b0 < n; b0 += B) {
            int64_t nb = n - b0 < B ? n - b0 : B;
            if (B == n) {
                loss += fl_grad_rows(w, params, x, y, n);
            } else {
                for (int64_t i = 0; i < nb; i++) {
                    int32_t r = w->order[b0 + i];
                    memcpy(w->xb + i * d, x + (int64_t)r * d, (size_t)d * sizeof *x);
                    w->yb[i] = y[r];
                }
                loss += fl_grad_rows(w, params, w->xb, w->yb, nb);
            }
            float *g = w->grad;
            if (wd != 0)
                for (int64_t j = 0; j < P; j++) g[j] += wd * params[j];
            if (mu != 0)
                for (int64_t j = 0; j < P; j++) g[j] += mu * (params[j] - o->global[j]);
            if (o->c_diff)
                for (int64_t j = 0; j < P; j++) g[j] += o->c_diff[j];
            if (mom != 0) {
                for (int64_t j = 0; j < P; j++) {
                    w->mom[j] = mom * w->mom[j] + g[j];
                    params[j] -= lr * w->mom[j];
                }
            } else {
                for (int64_t j = 0; j < P; j++) params[j] -= lr * g[j];
            }
            k++;
            seen += nb;
        }
    }
    *loss_sum = loss;
    *steps = k;
    *rows = seen;
    return FH_OK;
}
