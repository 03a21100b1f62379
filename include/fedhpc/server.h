/* fedhpc/server.h — the server optimizers applied to the round's averaged update
 * (src/fl/server.c): FedAvg, FedAvgM, FedAdam, FedYogi (Reddi et al. 2021).
 */
#ifndef FEDHPC_SERVER_H
#define FEDHPC_SERVER_H

#include "fedhpc/common.h"
#include "fedhpc/config.h"

#include <stdint.h>

typedef struct {
    int32_t alg;
    int64_t P;
    double lr, momentum, beta1, beta2, tau;
    float *m, *v; /* [P] first/second moments (FedAvgM/FedAdam/FedYogi), NULL otherwise */
} fl_server;

/* From [fl] (the algorithm and the server optimizer's settings). */
fh_status fl_server_init(fl_server *s, const config_fl *c, int64_t P);
void fl_server_free(fl_server *s);
/* Apply the averaged client update delta[P] (new - old) to params[P]. */
void fl_server_step(fl_server *s, const float *delta, float *params);

#endif
