/* Internal to src/model: the attention model over item sets (attn.c), called by model.c's
 * dispatch (include/fedhpc/model.h describes the model). */
#ifndef FEDHPC_MODEL_ATTN_H
#define FEDHPC_MODEL_ATTN_H

#include "fedhpc/model.h"

typedef struct attn_ws attn_ws;

attn_ws *attn_ws_create(const model_t *m, int32_t max_batch);
void attn_ws_free(attn_ws *w);
int32_t attn_ws_max_batch(const attn_ws *w);
void attn_init_params(const model_t *m, float *params, uint64_t seed);
/* As model_loss_grad (1 <= n <= max_batch, labels checked by the caller); NAN (zero grad) when
 * a row holds a value that is not -1 or an item index. */
double attn_loss_grad(const model_t *m, const float *params, const float *x, const int32_t *y,
                      int32_t n, float *grad, attn_ws *w);
/* As model_predict (any n, in chunks); rows out of range give NAN probabilities. */
void attn_predict(const model_t *m, const float *params, const float *x, int32_t n, float *probs,
                  attn_ws *w);
/* As model_loss_grad_clipped: one row at a time through attn_loss_grad (the attention model has
 * no closed form for per-example norms); allocates one [nparams] scratch buffer. */
double attn_loss_grad_clipped(const model_t *m, const float *params, const float *x,
                              const int32_t *y, int32_t n, double clip, float *grad_sum,
                              double *norms, attn_ws *w);
fh_status attn_embed_ws(const model_t *m, const float *params, const float *x, int32_t n,
                        float *emb, attn_ws *w);

#endif
