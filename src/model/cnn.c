/* The CNN of McMahan et al. 2017 on the flat float32 parameter buffer (MODEL_CNN).
 *
 *   input  [side, side, ch] (channels last; Fashion-MNIST: 28 x 28 x 1, from in = 784)
 *   conv 5x5 'same', c1 filters, ReLU, max-pool 2     -> [side/2, side/2, c1]
 *   conv 5x5 'same', c2 filters, ReLU, max-pool 2     -> [side/4, side/4, c2]
 *   fc fc units, ReLU; fc classes, softmax
 * Defaults 32, 64, 512: 1,663,370 parameters for 28 x 28 x 1 and 10 classes.
 *
 * Buffer layout: the four layers as in dense models, W_l [fan_in, fan_out] row-major then b_l;
 * a conv layer's W is [25 * in_channels, filters], row (ky * 5 + kx) * in_channels + c, so a
 * convolution is one sgemm of the im2col matrix [pixels, 25 * in_channels] with W.
 *
 * Forward and backward run in chunks of at most CNN_CHUNK samples (the im2col matrices and
 * pre-pool outputs exist for one chunk only); per sample the ws keeps the pooled outputs and
 * the arg-max position of each pooling window. Everything is allocated in cnn_ws_create:
 * no allocation in cnn_loss_grad / cnn_predict.
 */
#include "kern.h"
#include "model_cnn.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CNN_K 5     /* kernel side */
#define CNN_PAD 2   /* 'same' padding */
#define CNN_CHUNK 16

fh_status model_create_cnn(model_t *m, int32_t side, int32_t channels, int32_t c1, int32_t c2,
                           int32_t fc, int32_t classes)
{
    memset(m, 0, sizeof *m);
    if (side < 4 || side % 4 != 0 || side > 4096)
        return fh_error_set(FH_EINPUT, "cnn: input side %d (need a multiple of 4, 4 to 4096)", side);
    if (channels < 1 || c1 < 1 || c2 < 1 || fc < 1 || channels > 4096 || c1 > 4096 || c2 > 4096 ||
        fc > 1 << 20)
        return fh_error_set(FH_EINPUT, "cnn: bad widths (channels %d, conv %d/%d, fc %d)", channels,
                            c1, c2, fc);
    if (classes < 2) return fh_error_set(FH_EINPUT, "cnn: %d classes (need at least 2)", classes);
    const int64_t s4 = side / 4;
    const int64_t fi[4] = {CNN_K * CNN_K * channels, CNN_K * CNN_K * c1, s4 * s4 * c2, fc};
    const int64_t fo[4] = {c1, c2, fc, classes};
    if (fi[2] > INT32_MAX) return fh_error_set(FH_EINPUT, "cnn: too many parameters");
    m->type = MODEL_CNN;
    m->in = side * side * channels;
    m->classes = classes;
    m->nlayers = 4;
    int64_t off = 0;
    for (int l = 0; l < 4; l++) {
        m->fan_in[l] = (int32_t)fi[l];
        m->fan_out[l] = (int32_t)fo[l];
        m->w_off[l] = off;
        m->b_off[l] = off + fi[l] * fo[l];
        off += fi[l] * fo[l] + fo[l];
    }
    m->nparams = off;
    m->cnn_side = side;
    m->cnn_channels = channels;
    return FH_OK;
}

fh_status model_create_cnn_default(model_t *m, int32_t in, int32_t classes)
{
    if (in != 28 * 28) {
        memset(m, 0, sizeof *m);
        return fh_error_set(FH_EINPUT,
                            "[model] type = cnn: the data set has %d features, the CNN needs 784 (28 x 28 x 1 images)", in);
    }
    return model_create_cnn(m, 28, 1, 32, 64, 512, classes);
}

/* ---- workspace -------------------------------------------------------------------------- */

struct cnn_ws {
    int32_t max_batch, chunk;
    int32_t S, S2, S4, C0, C1, C2, F, K; /* shapes */
    float *col;    /* [chunk * max(S*S*25*C0, S2*S2*25*C1)] im2col (and its gradient)      */
    float *z;      /* [chunk * max(S*S*C1, S2*S2*C2)] pre-pool conv outputs (and gradient) */
    float *p1;     /* [max_batch, S2*S2*C1] pooled conv1                                   */
    int32_t *i1;   /* [max_batch, S2*S2*C1] arg-max within the chunk's z                   */
    float *p2;     /* [max_batch, S4*S4*C2] pooled conv2 (input of fc1)                    */
    int32_t *i2;
    float *a3;     /* [max_batch, F] fc1 activations                                       */
    float *lg;     /* [max_batch, K] logits                                                */
    float *d4, *d3, *dp2; /* [max_batch, K], [max_batch, F], [max_batch, S4*S4*C2]         */
    float *dp1;    /* [chunk, S2*S2*C1]                                                    */
    void *buf;
};

cnn_ws *cnn_ws_create(const model_t *m, int32_t max_batch)
{
    if (!m || m->type != MODEL_CNN || max_batch < 1) return NULL;
    cnn_ws *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->max_batch = max_batch;
    w->chunk = max_batch < CNN_CHUNK ? max_batch : CNN_CHUNK;
    w->S = m->cnn_side;
    w->S2 = w->S / 2;
    w->S4 = w->S / 4;
    w->C0 = m->cnn_channels;
    w->C1 = m->fan_out[0];
    w->C2 = m->fan_out[1];
    w->F = m->fan_out[2];
    w->K = m->classes;
    const size_t B = (size_t)max_batch, ch = (size_t)w->chunk;
    const size_t px1 = (size_t)w->S * w->S, px2 = (size_t)w->S2 * w->S2, px4 = (size_t)w->S4 * w->S4;
    size_t ncol = px1 * 25 * w->C0, ncol2 = px2 * 25 * w->C1;
    if (ncol2 > ncol) ncol = ncol2;
    size_t nz = px1 * w->C1, nz2 = px2 * w->C2;
    if (nz2 > nz) nz = nz2;
    const size_t n1 = px2 * w->C1, n2 = px4 * w->C2;
    const size_t sizes[] = {ch * ncol, ch * nz, B * n1, B * n1, B * n2, B * n2, B * w->F, B * w->K,
                            B * w->K, B * w->F, B * n2, ch * n1};
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) total += sizes[i] + 16;
    w->buf = malloc(total * sizeof(float));
    if (!w->buf) {
        free(w);
        return NULL;
    }
    float *p = w->buf;
    float **slots[] = {&w->col, &w->z, &w->p1, NULL, &w->p2, NULL, &w->a3, &w->lg,
                       &w->d4, &w->d3, &w->dp2, &w->dp1};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        if (slots[i]) *slots[i] = p;
        else if (i == 3) w->i1 = (int32_t *)p;
        else w->i2 = (int32_t *)p;
        p += sizes[i] + 16; /* keep 64-byte steps between arrays */
    }
    return w;
}

void cnn_ws_free(cnn_ws *w)
{
    if (!w) return;
    free(w->buf);
    free(w);
}

/* ---- building blocks -------------------------------------------------------------------- */

/* im2col of ns images in [ns, S, S, C] into col [ns * S * S, 25 * C] ('same' padding). */
static void im2col(const float *in, int32_t ns, int32_t S, int32_t C, float *col)
{
    const size_t rowlen = (size_t)25 * C;
    for (int32_t s = 0; s < ns; s++) {
        const float *img = in + (size_t)s * S * S * C;
        for (int32_t y = 0; y < S; y++)
            for (int32_t x = 0; x < S; x++) {
                float *r = col + (((size_t)s * S + y) * S + x) * rowlen;
                for (int32_t ky = 0; ky < CNN_K; ky++) {
                    const int32_t iy = y + ky - CNN_PAD;
                    float *rk = r + (size_t)ky * CNN_K * C;
                    if (iy < 0 || iy >= S) {
                        memset(rk, 0, (size_t)CNN_K * C * sizeof *rk);
                        continue;
                    }
                    const int32_t x0 = x - CNN_PAD;
                    if (x0 >= 0 && x0 + CNN_K <= S) {
                        memcpy(rk, img + ((size_t)iy * S + x0) * C, (size_t)CNN_K * C * sizeof *rk);
                        continue;
                    }
                    for (int32_t kx = 0; kx < CNN_K; kx++) {
                        const int32_t ix = x0 + kx;
                        if (ix < 0 || ix >= S) memset(rk + (size_t)kx * C, 0, (size_t)C * sizeof *rk);
                        else memcpy(rk + (size_t)kx * C, img + ((size_t)iy * S + ix) * C, (size_t)C * sizeof *rk);
                    }
                }
            }
    }
}

/* Adjoint of im2col: out [ns, S, S, C] = sum of the col entries that read each input. */
static void col2im(const float *col, int32_t ns, int32_t S, int32_t C, float *out)
{
    const size_t rowlen = (size_t)25 * C;
    memset(out, 0, (size_t)ns * S * S * C * sizeof *out);
    for (int32_t s = 0; s < ns; s++) {
        float *img = out + (size_t)s * S * S * C;
        for (int32_t y = 0; y < S; y++)
            for (int32_t x = 0; x < S; x++) {
                const float *r = col + (((size_t)s * S + y) * S + x) * rowlen;
                for (int32_t ky = 0; ky < CNN_K; ky++) {
                    const int32_t iy = y + ky - CNN_PAD;
                    if (iy < 0 || iy >= S) continue;
                    for (int32_t kx = 0; kx < CNN_K; kx++) {
                        const int32_t ix = x + kx - CNN_PAD;
                        if (ix < 0 || ix >= S) continue;
                        const float *src = r + ((size_t)ky * CNN_K + kx) * C;
                        float *dst = img + ((size_t)iy * S + ix) * C;
                        for (int32_t c = 0; c < C; c++) dst[c] += src[c];
                    }
                }
            }
    }
}

/* Z [ns * px, co] = col W + b. */
static void conv_gemm(const float *col, int32_t rows, int32_t fi, int32_t co, const float *w,
                      const float *b, float *z)
{
    for (int32_t i = 0; i < rows; i++) memcpy(z + (size_t)i * co, b, (size_t)co * sizeof *z);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, co, fi, 1.0f, col, fi, w, co,
                1.0f, z, co);
}

/* relu + 2x2 max-pool of z [ns, S, S, C] into p [ns, S/2, S/2, C]; idx holds the arg-max's
 * offset in z (within the chunk). relu(max z) = max relu(z). */
static void relu_pool(const float *z, int32_t ns, int32_t S, int32_t C, float *p, int32_t *idx)
{
    const int32_t H = S / 2;
    for (int32_t s = 0; s < ns; s++)
        for (int32_t y = 0; y < H; y++)
            for (int32_t x = 0; x < H; x++) {
                const size_t o = (((size_t)s * H + y) * H + x) * C;
                const size_t i00 = (((size_t)s * S + 2 * y) * S + 2 * x) * C;
                const size_t i01 = i00 + C, i10 = i00 + (size_t)S * C, i11 = i10 + C;
                for (int32_t c = 0; c < C; c++) {
                    size_t best = i00 + c;
                    float v = z[best];
                    if (z[i01 + c] > v) { v = z[i01 + c]; best = i01 + c; }
                    if (z[i10 + c] > v) { v = z[i10 + c]; best = i10 + c; }
                    if (z[i11 + c] > v) { v = z[i11 + c]; best = i11 + c; }
                    p[o + c] = v > 0.0f ? v : 0.0f;
                    idx[o + c] = (int32_t)best;
                }
            }
}

/* Gradient through relu + pool: dz (size nz, zeroed here) gets dp where the pooled value > 0. */
static void unpool(const float *dp, const float *p, const int32_t *idx, size_t n, float *dz, size_t nz)
{
    memset(dz, 0, nz * sizeof *dz);
    for (size_t k = 0; k < n; k++)
        if (p[k] > 0.0f) dz[idx[k]] = dp[k];
}

/* Forward through both conv blocks for samples [s0, s0 + ns): p1/i1/p2/i2 of those samples. */
static void conv_forward(const model_t *m, const float *params, const float *x, int32_t s0,
                         int32_t ns, cnn_ws *w)
{
    const int32_t S = w->S, S2 = w->S2;
    const size_t n1 = (size_t)S2 * S2 * w->C1, n2 = (size_t)w->S4 * w->S4 * w->C2;
    im2col(x + (size_t)s0 * m->in, ns, S, w->C0, w->col);
    conv_gemm(w->col, ns * S * S, m->fan_in[0], w->C1, params + m->w_off[0], params + m->b_off[0], w->z);
    relu_pool(w->z, ns, S, w->C1, w->p1 + s0 * n1, w->i1 + s0 * n1);
    im2col(w->p1 + s0 * n1, ns, S2, w->C1, w->col);
    conv_gemm(w->col, ns * S2 * S2, m->fan_in[1], w->C2, params + m->w_off[1], params + m->b_off[1], w->z);
    relu_pool(w->z, ns, S2, w->C2, w->p2 + s0 * n2, w->i2 + s0 * n2);
}

/* Dense layer forward: out [n, fo] = in W + b (relu if asked). */
static void dense_forward(const float *in, int32_t n, int32_t fi, int32_t fo, const float *W,
                          const float *b, float *out, int relu)
{
    for (int32_t i = 0; i < n; i++) memcpy(out + (size_t)i * fo, b, (size_t)fo * sizeof *out);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, fo, fi, 1.0f, in, fi, W, fo, 1.0f,
                out, fo);
    if (relu)
        kern_relu(out, (size_t)n * fo);
}

static void cnn_forward(const model_t *m, const float *params, const float *x, int32_t n, cnn_ws *w)
{
    for (int32_t s0 = 0; s0 < n; s0 += w->chunk)
        conv_forward(m, params, x, s0, n - s0 < w->chunk ? n - s0 : w->chunk, w);
    dense_forward(w->p2, n, m->fan_in[2], w->F, params + m->w_off[2], params + m->b_off[2], w->a3, 1);
    dense_forward(w->a3, n, m->fan_in[3], w->K, params + m->w_off[3], params + m->b_off[3], w->lg, 0);
}

static void colsum(const float *d, int32_t n, int32_t k, float *out, int accumulate)
{
    if (!accumulate) memset(out, 0, (size_t)k * sizeof *out);
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = 0; j < k; j++) out[j] += d[(size_t)i * k + j];
}

double cnn_loss_grad(const model_t *m, const float *params, const float *x, const int32_t *y,
                     int32_t n, float *grad, cnn_ws *w)
{
    cnn_forward(m, params, x, n, w);
    /* softmax cross-entropy (class-weighted), dLoss/dlogits of the mean loss into d4 */
    const int32_t K = w->K, F = w->F;
    const float *cw = m->class_weight;
    const float inv_n = 1.0f / (float)n;
    double loss = 0.0;
    for (int32_t i = 0; i < n; i++) {
        const float *zi = w->lg + (size_t)i * K;
        float *di = w->d4 + (size_t)i * K;
        float mx = zi[0];
        for (int32_t k = 1; k < K; k++) mx = zi[k] > mx ? zi[k] : mx;
        float s = 0.0f;
        for (int32_t k = 0; k < K; k++) {
            di[k] = expf(zi[k] - mx);
            s += di[k];
        }
        const float wi = cw ? cw[y[i]] : 1.0f;
        loss += (double)(wi * (logf(s) - (zi[y[i]] - mx)));
        const float scale = wi * inv_n / s;
        for (int32_t k = 0; k < K; k++) di[k] *= scale;
        di[y[i]] -= wi * inv_n;
    }
    /* fc2 */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, F, K, n, 1.0f, w->a3, F, w->d4, K, 0.0f,
                grad + m->w_off[3], K);
    colsum(w->d4, n, K, grad + m->b_off[3], 0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, F, K, 1.0f, w->d4, K,
                params + m->w_off[3], K, 0.0f, w->d3, F);
    kern_relu_mask(w->d3, w->a3, (size_t)n * F);
    /* fc1 */
    const int32_t n2 = m->fan_in[2];
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n2, F, n, 1.0f, w->p2, n2, w->d3, F, 0.0f,
                grad + m->w_off[2], F);
    colsum(w->d3, n, F, grad + m->b_off[2], 0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n2, F, 1.0f, w->d3, F,
                params + m->w_off[2], F, 0.0f, w->dp2, n2);
    /* conv blocks, chunk by chunk; dW accumulate over chunks */
    const int32_t S = w->S, S2 = w->S2, C0 = w->C0, C1 = w->C1, C2 = w->C2;
    const size_t n1 = (size_t)S2 * S2 * C1;
    const int32_t fi0 = m->fan_in[0], fi1 = m->fan_in[1];
    for (int32_t s0 = 0; s0 < n; s0 += w->chunk) {
        const int32_t ns = n - s0 < w->chunk ? n - s0 : w->chunk;
        const float beta = s0 == 0 ? 0.0f : 1.0f;
        /* conv2: dZ2 from dp2 through relu + pool */
        const int32_t r2 = ns * S2 * S2;
        unpool(w->dp2 + (size_t)s0 * n2, w->p2 + (size_t)s0 * n2, w->i2 + (size_t)s0 * n2,
               (size_t)ns * n2, w->z, (size_t)r2 * C2);
        im2col(w->p1 + s0 * n1, ns, S2, C1, w->col);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, fi1, C2, r2, 1.0f, w->col, fi1, w->z,
                    C2, beta, grad + m->w_off[1], C2);
        colsum(w->z, r2, C2, grad + m->b_off[1], s0 != 0);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r2, fi1, C2, 1.0f, w->z, C2,
                    params + m->w_off[1], C2, 0.0f, w->col, fi1);
        col2im(w->col, ns, S2, C1, w->dp1);
        /* conv1: dZ1 from dp1 */
        const int32_t r1 = ns * S * S;
        unpool(w->dp1, w->p1 + s0 * n1, w->i1 + s0 * n1, (size_t)ns * n1, w->z, (size_t)r1 * C1);
        im2col(x + (size_t)s0 * m->in, ns, S, C0, w->col);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, fi0, C1, r1, 1.0f, w->col, fi0, w->z,
                    C1, beta, grad + m->w_off[0], C1);
        colsum(w->z, r1, C1, grad + m->b_off[0], s0 != 0);
    }
    return loss;
}

void cnn_predict(const model_t *m, const float *params, const float *x, int32_t n, float *probs,
                 cnn_ws *w)
{
    for (int32_t r = 0; r < n; r += w->max_batch) {
        const int32_t k = n - r < w->max_batch ? n - r : w->max_batch;
        cnn_forward(m, params, x + (size_t)r * m->in, k, w);
        for (int32_t i = 0; i < k; i++) {
            const float *zi = w->lg + (size_t)i * w->K;
            float *pi = probs + ((size_t)r + i) * w->K;
            float mx = zi[0];
            for (int32_t c = 1; c < w->K; c++) mx = zi[c] > mx ? zi[c] : mx;
            float s = 0.0f;
            for (int32_t c = 0; c < w->K; c++) {
                pi[c] = expf(zi[c] - mx);
                s += pi[c];
            }
            for (int32_t c = 0; c < w->K; c++) pi[c] /= s;
        }
    }
}
