/* Double backward of the engine's CNN (src/model/cnn.c) for the gradient-leakage attack: the
 * MODEL_CNN half of leakage_net_* (include/fedhpc/leakage.h), reached through those functions.
 * Private to src/model/. */
#ifndef FEDHPC_DGRAD_CNN_H
#define FEDHPC_DGRAD_CNN_H

#include "fedhpc/model.h"

#include <stdint.h>

typedef struct leakage_cnn leakage_cnn;

/* NULL (FH_ENOMEM set) on failure; m->type must be MODEL_CNN. params copied to double. */
leakage_cnn *leakage_cnn_create(const model_t *m, const float *params, int32_t max_batch);
void leakage_cnn_free(leakage_cnn *c);
/* as leakage_net_grad */
double leakage_cnn_grad(leakage_cnn *c, const double *x, const int32_t *y, const double *ysoft, int32_t n,
                        double *grad);
/* as leakage_net_dgrad */
void leakage_cnn_dgrad(leakage_cnn *c, const double *v, double *xbar, double *ybar);

#endif
