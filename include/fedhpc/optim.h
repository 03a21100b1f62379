/* The optimizer room: the one SGD step of every local training loop (src/model/optim.c).
 *
 * Users: fl_local_train's minibatch and full-batch paths and its DP-SGD branch
 * (src/fl/client.c), the centralized baseline's step after the all-reduce (src/fl/central.c),
 * and the plain step after the gradient in model_sgd_step / cnn_sgd_step (optim_sgd).
 *
 * The step, for j < n, given the gradient g of the mean loss at params w:
 *
 *     g_j += wd * w_j                  if weight_decay != 0      (L2 weight decay)
 *     g_j += mu * (w_j - global_j)     if mu != 0                (FedProx proximal term)
 *     g_j += c_diff_j                  if c_diff != NULL         (SCAFFOLD correction c - c_i)
 *     v_j  = momentum * v_j + g_j;  w_j -= lr * v_j     if the state has a momentum buffer v
 *     w_j -= lr * g_j                                   otherwise
 *
 * in float, each term added in this order, every product rounded before its sum (no fused
 * multiply-add): the floating-point operations are those of the loops this room replaced, so
 * every model is bit-identical to before.
 *
 * The state owns the momentum buffer v (zeroed at init / optim_reset). optim_init allocates it
 * only when momentum != 0; a caller that keeps its own buffer lends it with optim_attach, and
 * then the recurrence runs whatever momentum is (DP-SGD always has, with momentum 0 too).
 *
 * Fast path: model_sgd_step (src/model/model.c, cnn.c) computes w -= lr * g with fused kernels
 * that never store g (the dense layers step inside the backward pass, with FMA; the result
 * equals "model_loss_grad, then optim_step" up to float rounding, exactly without the kernels).
 * It implements only the plain step, so a caller may use it instead of
 * model_loss_grad + optim_step exactly when optim_is_plain(o, s): no weight decay, no proximal
 * term, no SCAFFOLD correction and no momentum buffer. fl_local_train does so for minibatches
 * that fit the worker's scratch.
 */
#ifndef FEDHPC_OPTIM_H
#define FEDHPC_OPTIM_H

#include "fedhpc/common.h"

typedef struct {
    float lr;            /* step size                                                    */
    float momentum;      /* heavy-ball coefficient (0: optim_init allocates no buffer)   */
    float weight_decay;  /* L2 coefficient wd (0: term skipped)                          */
    float mu;            /* FedProx proximal weight (0: term skipped)                    */
    const float *global; /* [n] FedProx anchor w_global, the round's starting model
                          * (read only when mu != 0)                                     */
    const float *c_diff; /* [n] SCAFFOLD correction c - c_i, or NULL                     */
} optim_opts;

typedef struct {
    int64_t n;  /* parameters                                                            */
    float *mom; /* [n] momentum buffer v, or NULL: no momentum                           */
    int owned;  /* 1: optim_free frees mom (optim_init); 0: lent (optim_attach)          */
} optim_state;

/* A state for n parameters: a zeroed momentum buffer if o->momentum != 0, else none. */
fh_status optim_init(optim_state *s, const optim_opts *o, int64_t n);
/* A state using the caller's buffer mom[n] (NULL: none) as is (not zeroed, not freed). */
void optim_attach(optim_state *s, float *mom, int64_t n);
/* Zero the momentum buffer (a new round / client). */
void optim_reset(optim_state *s);
/* Free an owned buffer; the state is then empty (no momentum). */
void optim_free(optim_state *s);

/* 1 if the step is the plain w -= lr * g (so model_sgd_step's fused kernels may take it). */
int optim_is_plain(const optim_opts *o, const optim_state *s);

/* One step on params[s->n] with the gradient grad[s->n]. grad is scratch: it is left holding
 * the direction g + wd w + mu (w - global) + c_diff (before the momentum). */
void optim_step(const optim_opts *o, optim_state *s, float *params, float *grad);

/* The plain step params[j] -= lr * grad[j], j < n (optim_step without terms or momentum;
 * model_sgd_step's paths that do store the gradient). */
void optim_sgd(float *params, const float *grad, float lr, int64_t n);

#endif
