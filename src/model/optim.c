/* The optimizer room (include/fedhpc/optim.h): one SGD step with momentum, weight decay, the
 * FedProx proximal term and the SCAFFOLD correction. The loops keep the operation order of
 * the code they replaced (each term a pass of its own, in float), so models are bit-identical. */
#include "fedhpc/optim.h"

#include <stdlib.h>
#include <string.h>

fh_status optim_init(optim_state *s, const optim_opts *o, int64_t n)
{
    optim_attach(s, NULL, n);
    if (o->momentum == 0) return FH_OK;
    s->mom = fh_calloc((size_t)(n > 0 ? n : 1), sizeof *s->mom);
    if (!s->mom)
        return fh_error_set(FH_ENOMEM, "out of memory for a momentum buffer (%lld parameters)", (long long)n);
    s->owned = 1;
    return FH_OK;
}

void optim_attach(optim_state *s, float *mom, int64_t n)
{
    s->n = n;
    s->mom = mom;
    s->owned = 0;
}

void optim_reset(optim_state *s)
{
    if (s->mom) memset(s->mom, 0, (size_t)s->n * sizeof *s->mom);
}

void optim_free(optim_state *s)
{
    if (s->owned) free(s->mom);
    optim_attach(s, NULL, s->n);
}

int optim_is_plain(const optim_opts *o, const optim_state *s)
{
    return o->weight_decay == 0 && o->mu == 0 && !o->c_diff && !s->mom;
}

void optim_sgd(float *params, const float *grad, float lr, int64_t n)
{
    for (int64_t j = 0; j < n; j++) params[j] -= lr * grad[j];
}

void optim_step(const optim_opts *o, optim_state *s, float *params, float *g)
{
    const int64_t n = s->n;
    const float lr = o->lr, mom = o->momentum, wd = o->weight_decay, mu = o->mu;
    if (wd != 0)
        for (int64_t j = 0; j < n; j++) g[j] += wd * params[j];
    if (mu != 0)
        for (int64_t j = 0; j < n; j++) g[j] += mu * (params[j] - o->global[j]);
    if (o->c_diff)
        for (int64_t j = 0; j < n; j++) g[j] += o->c_diff[j];
    if (!s->mom) {
        optim_sgd(params, g, lr, n);
        return;
    }
    float *v = s->mom;
    for (int64_t j = 0; j < n; j++) {
        v[j] = mom * v[j] + g[j];
        params[j] -= lr * v[j];
    }
}
