/* Server optimizers applied to the averaged client update (Reddi et al. 2021 for FedAdam and
 * FedYogi; FedAvgM is server momentum). Every rank applies the same step to the same exact
 * aggregate, so no broadcast of the new model is needed. */
#include "fedhpc/server.h"

#include <math.h>
#include <stdlib.h>

fh_status fl_server_init(fl_server *s, const config_fl *c, int64_t P)
{
    s->alg = c->algorithm;
    s->P = P;
    s->lr = c->server_lr;
    s->momentum = c->server_momentum;
    s->beta1 = c->beta1;
    s->beta2 = c->beta2;
    s->tau = c->tau;
    s->m = s->v = NULL;
    if (s->alg == ALG_FEDAVGM || s->alg == ALG_FEDADAM || s->alg == ALG_FEDYOGI) {
        s->m = fh_calloc((size_t)P, sizeof *s->m);
        FH_CHECK_ALLOC(s->m);
    }
    if (s->alg == ALG_FEDADAM || s->alg == ALG_FEDYOGI) {
        s->v = malloc((size_t)P * sizeof *s->v);
        FH_CHECK_ALLOC(s->v);
        /* v_0 = tau^2 as in Reddi et al.'s experiments */
        for (int64_t j = 0; j < P; j++) s->v[j] = (float)(s->tau * s->tau);
    }
    return FH_OK;
}

void fl_server_free(fl_server *s)
{
    free(s->m);
    free(s->v);
    s->m = s->v = NULL;
}

void fl_server_step(fl_server *s, const float *d, float *w)
{
    const int64_t P = s->P;
    const float lr = (float)s->lr;
    switch (s->alg) {
    case ALG_FEDAVGM: {
        const float b = (float)s->momentum;
        for (int64_t j = 0; j < P; j++) {
            s->m[j] = b * s->m[j] + d[j];
            w[j] += lr * s->m[j];
        }
        break;
    }
    case ALG_FEDADAM:
    case ALG_FEDYOGI: {
        const float b1 = (float)s->beta1, b2 = (float)s->beta2, tau = (float)s->tau;
        const int yogi = s->alg == ALG_FEDYOGI;
        for (int64_t j = 0; j < P; j++) {
            float g = d[j], g2 = g * g;
            s->m[j] = b1 * s->m[j] + (1 - b1) * g;
            if (yogi) {
                float diff = s->v[j] - g2;
                s->v[j] -= (1 - b2) * g2 * (float)((diff > 0) - (diff < 0));
            } else {
                s->v[j] = b2 * s->v[j] + (1 - b2) * g2;
            }
            w[j] += lr * s->m[j] / (sqrtf(s->v[j]) + tau);
        }
        break;
    }
    default: /* FedAvg, FedProx, SCAFFOLD: x += server_lr * mean delta */
        for (int64_t j = 0; j < P; j++) w[j] += lr * d[j];
        break;
    }
}
