/* Internal to src/model: the CNN's two 5x5 'same' convolutions on oneDNN (conv_dnnl.c).
 *
 * Activations are channels-last [ns, side, side, channels] (oneDNN "nhwc") and the weights stay
 * in the parameter buffer's layout W[(ky * 5 + kx) * C_in + c, C_out] (oneDNN "hwio"); each
 * call reorders them to and from the blocked layouts oneDNN's AVX-512 kernels use. Primitives
 * for every chunk size 1..chunk are made in cnn_conv_create; the calls allocate nothing.
 * One thread per process (the caller's), so results are the same bits run to run.
 */
#ifndef FEDHPC_MODEL_CONV_DNNL_H
#define FEDHPC_MODEL_CONV_DNNL_H

#include "fedhpc/model.h"

typedef struct cnn_conv cnn_conv;

/* Convolutions l = 0 (side S, C0 -> C1 channels) and 1 (side S/2, C1 -> C2) of the CNN m, for
 * ns = 1..chunk samples. NULL (and fh_error_set) when oneDNN fails or memory runs out. */
cnn_conv *cnn_conv_create(const model_t *m, int32_t chunk);
void cnn_conv_free(cnn_conv *c);

/* z [ns, S_l, S_l, Cout] = conv_l(in [ns, S_l, S_l, Cin]; W hwio) + b. */
fh_status cnn_conv_fwd(cnn_conv *c, int l, int32_t ns, const float *in, const float *W,
                       const float *b, float *z);
/* din [ns, S_l, S_l, Cin] = gradient w.r.t. the input for the output gradient dz (l = 1 only:
 * conv 0's input is the data). */
fh_status cnn_conv_bwd_data(cnn_conv *c, int l, int32_t ns, const float *dz, const float *W,
                            float *din);
/* dW (hwio), db = gradient w.r.t. W_l, b_l for inputs in and output gradient dz, summed over the
 * ns samples; accumulate != 0 adds to dW, db instead of overwriting them. */
fh_status cnn_conv_bwd_weights(cnn_conv *c, int l, int32_t ns, const float *in, const float *dz,
                               float *dW, float *db, int accumulate);

#endif
