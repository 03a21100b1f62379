/* Internal to src/model: the CNN (cnn.c), called by model.c's dispatch. */
#ifndef FEDHPC_MODEL_CNN_H
#define FEDHPC_MODEL_CNN_H

#include "fedhpc/model.h"

typedef struct cnn_ws cnn_ws;

/* The default CNN for in = 784 (28 x 28 x 1): 32, 64, 512; other inputs: FH_EINPUT. */
fh_status model_create_cnn_default(model_t *m, int32_t in, int32_t classes);
cnn_ws *cnn_ws_create(const model_t *m, int32_t max_batch);
void cnn_ws_free(cnn_ws *w);
/* As model_loss_grad (1 <= n <= max_batch and labels already checked by the caller). */
double cnn_loss_grad(const model_t *m, const float *params, const float *x, const int32_t *y,
                     int32_t n, float *grad, cnn_ws *w);
/* As model_sgd_step (same conditions): for n <= KERN_MAX_ROWS on AVX-512 the dense layers step
 * inside the backward pass and only the conv parameters (grad[0, w_off[2])) are stored; otherwise
 * cnn_loss_grad into grad, then params -= lr * grad. NAN if a oneDNN call fails (a bug: the
 * primitives are made in cnn_ws_create; the dense layers may have taken their step by then). */
double cnn_sgd_step(const model_t *m, float *params, const float *x, const int32_t *y, int32_t n,
                    float lr, float *grad, cnn_ws *w);
void cnn_predict(const model_t *m, const float *params, const float *x, int32_t n, float *probs,
                 cnn_ws *w);

#endif
