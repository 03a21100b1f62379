/* fedhpc/local.h — local training on one client's rows (src/fl/client.c): minibatch SGD
 * through the optimizer room (fedhpc/optim.h), DP-SGD, partial work; the worker's scratch.
 */
#ifndef FEDHPC_LOCAL_H
#define FEDHPC_LOCAL_H

#include "fedhpc/common.h"
#include "fedhpc/config.h"
#include "fedhpc/model.h"
#include "fedhpc/privacy.h"
#include "fedhpc/rng.h"

#include <stdint.h>

typedef struct {
    const float *global; /* [P] the round's starting model (FedProx anchor)             */
    const float *c_diff; /* [P] SCAFFOLD correction c - c_i, or NULL                    */
    double lr, momentum, weight_decay, mu; /* mu > 0: FedProx proximal term             */
    int32_t epochs, batch;                 /* batch 0: full batch                       */
} fl_local_opts;

typedef struct {
    const model_t *m;
    model_ws *ws;     /* scratch for up to ws_rows rows                                     */
    int32_t ws_rows;
    float *grad;      /* [P] */
    float *grad2;     /* [P] chunk accumulator for batches larger than ws_rows (on first use) */
    float *mom;       /* [P] momentum buffer (on first use: momentum or DP-SGD)             */
    float *xb;        /* [ws_rows, in] gathered batch                                       */
    int32_t *yb;      /* [ws_rows]                                                          */
    int32_t *order;   /* [max rows of a client] epoch permutation                           */
    int64_t order_cap;
    const privacy_sgd *dp; /* non-NULL: fl_local_train runs DP-SGD (privacy.h); set per client */
    int64_t max_steps;     /* > 0: fl_local_train stops after this many SGD steps (partial
                            * work, [async] partial; not with DP-SGD); set per client       */
} fl_worker;

/* The local-training options of a configuration ([train] lr, momentum, weight_decay, epochs,
 * batch; [fl] mu when the algorithm is FedProx) from the round's starting model `global`: the
 * one place every strategy builds them. c_diff is NULL (SCAFFOLD sets it per client). */
fl_local_opts fl_local_opts_make(const config_t *cfg, const float *global);

fh_status fl_worker_init(fl_worker *w, const model_t *m, int32_t ws_rows);
/* The rows a worker's scratch holds (every training loop uses it, so chunked gradients and
 * evaluation batches are the same everywhere): the batch size (1024 for full batch), at
 * least 256 — 16 for the CNN (its conv chunk), whose scratch is ~63 KB a row — and at most 8192. */
int32_t fl_worker_rows(const config_t *cfg);
void fl_worker_free(fl_worker *w);
/* Mean loss gradient over n rows (in chunks of ws_rows), returned as the loss SUM. */
double fl_grad_rows(fl_worker *w, const float *params, const float *x, const int32_t *y, int64_t n);
/* Train params (in: global, out: local) on one client's rows with SGD; returns the summed
 * minibatch loss over all steps in *loss_sum, steps in *steps, rows visited in *rows. */
fh_status fl_local_train(fl_worker *w, const fl_local_opts *o, rng_t shuffle, const float *x,
                         const int32_t *y, int64_t n, float *params, double *loss_sum,
                         int64_t *steps, int64_t *rows);

#endif
