/* The CNN of McMahan et al. 2017 on the flat float32 parameter buffer (MODEL_CNN).
 *
 *   input  [side, side, ch] (channels last; Fashion-MNIST: 28 x 28 x 1, from in = 784)
 *   conv 5x5 'same', c1 filters, ReLU, max-pool 2     -> [side/2, side/2, c1]
 *   conv 5x5 'same', c2 filters, ReLU, max-pool 2     -> [side/4, side/4, c2]
 *   fc fc units, ReLU; fc classes, softmax
 * Defaults 32, 64, 512: 1,663,370 parameters for 28 x 28 x 1 and 10 classes.
 *
 * Buffer layout: the four layers as in dense models, W_l [fan_in, fan_out] row-major then b_l;
 * a conv layer's W is [25 * in_channels, filters], row (ky * 5 + kx) * in_channels + c (the
 * layout oneDNN calls hwio).
 *
 * The convolutions (forward, backward-data, backward-weights with bias) run on oneDNN
 * (conv_dnnl.c); the dense layers on the row-streaming AVX-512 kernels below for n <= 12 rows
 * and on cblas_sgemm otherwise; ReLU + max-pool and its gradient are here. Forward and backward
 * run in chunks of at most CNN_CHUNK samples (the pre-pool outputs exist for one chunk only);
 * per sample the ws keeps the pooled outputs and a one-byte code per pooled value: which of
 * the window's four inputs was the max, or that the max was <= 0 (the ReLU passes no gradient).
 * Everything, oneDNN's primitives for every chunk size included, is made in cnn_ws_create: no
 * allocation in cnn_loss_grad / cnn_sgd_step / cnn_predict.
 *
 * cnn_sgd_step (n <= 12 rows, AVX-512): each dense layer takes its step inside the backward
 * pass, in the same sweep over its weights that computes the delta below it (fc_bwd_sgd): the
 * 1.6M-weight fc1 gradient is never stored. Only the convolutions' 52k parameters go through
 * the gradient buffer.
 */
#define _GNU_SOURCE
#include "fedhpc/optim.h"
#include "conv_dnnl.h"
#include "kern.h"
#include "model_cnn.h"

#include <cblas.h>
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CNN_K 5     /* kernel side */
#define CNN_CHUNK 16
#define CNN_NOGRAD 4 /* pooling code: the pooled value is <= 0 */

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
    float *z;      /* [chunk * max(S*S*C1, S2*S2*C2)] pre-pool conv outputs, then their gradient */
    float *p1;     /* [max_batch, S2*S2*C1] pooled conv1                                   */
    uint8_t *a1;   /* [max_batch, S2*S2*C1] pooling codes (arg-max 0..3, or CNN_NOGRAD)   */
    float *p2;     /* [max_batch, S4*S4*C2] pooled conv2 (input of fc1)                    */
    uint8_t *a2;
    float *a3;     /* [max_batch, F] fc1 activations                                       */
    float *lg;     /* [max_batch, K] logits                                                */
    float *d4, *d3, *dp2; /* [max_batch, K], [max_batch, F], [max_batch, S4*S4*C2]         */
    float *dp1;    /* [chunk, S2*S2*C1]                                                    */
    cnn_conv *conv;
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
    size_t nz = px1 * w->C1, nz2 = px2 * w->C2;
    if (nz2 > nz) nz = nz2;
    const size_t n1 = px2 * w->C1, n2 = px4 * w->C2;
    /* in floats; the code arrays (bytes) get a quarter of theirs, rounded up */
    const size_t sizes[] = {ch * nz, B * n1, (B * n1 + 3) / 4, B * n2, (B * n2 + 3) / 4, B * w->F,
                            B * w->K, B * w->K, B * w->F, B * n2, ch * n1};
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) total += sizes[i] + 16;
    w->buf = malloc(total * sizeof(float));
    w->conv = cnn_conv_create(m, w->chunk);
    if (!w->buf || !w->conv) {
        cnn_ws_free(w);
        return NULL;
    }
    float *p = w->buf;
    void **slots[] = {(void **)&w->z, (void **)&w->p1, (void **)&w->a1, (void **)&w->p2,
                      (void **)&w->a2, (void **)&w->a3, (void **)&w->lg, (void **)&w->d4,
                      (void **)&w->d3, (void **)&w->dp2, (void **)&w->dp1};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        *slots[i] = p;
        p += sizes[i] + 16; /* keep 64-byte steps between arrays */
    }
    return w;
}

void cnn_ws_free(cnn_ws *w)
{
    if (!w) return;
    cnn_conv_free(w->conv);
    free(w->buf);
    free(w);
}

/* ---- ReLU + max-pool -------------------------------------------------------------------- */
/* relu + 2x2 max-pool of z [ns, S, S, C] into p [ns, S/2, S/2, C]; code[o] is the window
 * position (0: dy 0 dx 0, 1: 0 1, 2: 1 0, 3: 1 1) of the first maximum, or CNN_NOGRAD when
 * the maximum is <= 0. relu(max z) = max relu(z). */
static void relu_pool_ref(const float *z, int32_t ns, int32_t S, int32_t C, float *p, uint8_t *code)
{
    const int32_t H = S / 2;
    const size_t row = (size_t)S * C;
    for (int32_t s = 0; s < ns; s++)
        for (int32_t y = 0; y < H; y++)
            for (int32_t x = 0; x < H; x++) {
                const size_t o = (((size_t)s * H + y) * H + x) * C;
                const float *q[4];
                q[0] = z + (((size_t)s * S + 2 * y) * S + 2 * x) * C;
                q[1] = q[0] + C;
                q[2] = q[0] + row;
                q[3] = q[2] + C;
                for (int32_t c = 0; c < C; c++) {
                    float v = q[0][c];
                    uint8_t k = 0;
                    for (uint8_t t = 1; t < 4; t++)
                        if (q[t][c] > v) {
                            v = q[t][c];
                            k = t;
                        }
                    p[o + c] = v > 0.0f ? v : 0.0f;
                    code[o + c] = v > 0.0f ? k : CNN_NOGRAD;
                }
            }
}

/* Gradient through relu + pool: dz [ns, S, S, C] (every entry written) gets dp where the code
 * says the pooled value came from, 0 elsewhere. */
static void unpool_ref(const float *dp, const uint8_t *code, int32_t ns, int32_t S, int32_t C, float *dz)
{
    const int32_t H = S / 2;
    const size_t row = (size_t)S * C;
    for (int32_t s = 0; s < ns; s++)
        for (int32_t y = 0; y < H; y++)
            for (int32_t x = 0; x < H; x++) {
                const size_t o = (((size_t)s * H + y) * H + x) * C;
                float *q[4];
                q[0] = dz + (((size_t)s * S + 2 * y) * S + 2 * x) * C;
                q[1] = q[0] + C;
                q[2] = q[0] + row;
                q[3] = q[2] + C;
                for (int32_t c = 0; c < C; c++)
                    for (uint8_t t = 0; t < 4; t++) q[t][c] = code[o + c] == t ? dp[o + c] : 0.0f;
            }
}

#define CNN_AVX512 __attribute__((target("avx512f")))

static inline CNN_AVX512 __mmask16 cnn_mask(int32_t left)
{
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1u);
}

/* relu_pool_ref, 16 channels at a time (same results) */
static CNN_AVX512 void relu_pool_avx512(const float *z, int32_t ns, int32_t S, int32_t C, float *p,
                                        uint8_t *code)
{
    const int32_t H = S / 2;
    const size_t row = (size_t)S * C;
    const __m512 zero = _mm512_setzero_ps();
    const __m512i one = _mm512_set1_epi32(1), two = _mm512_set1_epi32(2),
                  three = _mm512_set1_epi32(3), nograd = _mm512_set1_epi32(CNN_NOGRAD);
    for (int32_t s = 0; s < ns; s++)
        for (int32_t y = 0; y < H; y++)
            for (int32_t x = 0; x < H; x++) {
                const size_t o = (((size_t)s * H + y) * H + x) * C;
                const float *q0 = z + (((size_t)s * S + 2 * y) * S + 2 * x) * C, *q1 = q0 + C,
                            *q2 = q0 + row, *q3 = q2 + C;
                for (int32_t c = 0; c < C; c += 16) {
                    const __mmask16 mk = cnn_mask(C - c);
                    __m512 v = _mm512_maskz_loadu_ps(mk, q0 + c), t = _mm512_maskz_loadu_ps(mk, q1 + c);
                    __m512i k = _mm512_setzero_si512();
                    __mmask16 gt = _mm512_cmp_ps_mask(t, v, _CMP_GT_OQ);
                    v = _mm512_mask_mov_ps(v, gt, t);
                    k = _mm512_mask_mov_epi32(k, gt, one);
                    t = _mm512_maskz_loadu_ps(mk, q2 + c);
                    gt = _mm512_cmp_ps_mask(t, v, _CMP_GT_OQ);
                    v = _mm512_mask_mov_ps(v, gt, t);
                    k = _mm512_mask_mov_epi32(k, gt, two);
                    t = _mm512_maskz_loadu_ps(mk, q3 + c);
                    gt = _mm512_cmp_ps_mask(t, v, _CMP_GT_OQ);
                    v = _mm512_mask_mov_ps(v, gt, t);
                    k = _mm512_mask_mov_epi32(k, gt, three);
                    const __mmask16 pos = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);
                    _mm512_mask_storeu_ps(p + o + c, mk, _mm512_maskz_mov_ps(pos, v));
                    _mm512_mask_cvtepi32_storeu_epi8(code + o + c, mk, _mm512_mask_mov_epi32(nograd, pos, k));
                }
            }
}

/* unpool_ref, 16 channels at a time */
static CNN_AVX512 void unpool_avx512(const float *dp, const uint8_t *code, int32_t ns, int32_t S,
                                     int32_t C, float *dz)
{
    const int32_t H = S / 2;
    const size_t row = (size_t)S * C;
    const __m512i k1 = _mm512_set1_epi32(1), k2 = _mm512_set1_epi32(2), k3 = _mm512_set1_epi32(3);
    for (int32_t s = 0; s < ns; s++)
        for (int32_t y = 0; y < H; y++)
            for (int32_t x = 0; x < H; x++) {
                const size_t o = (((size_t)s * H + y) * H + x) * C;
                float *q0 = dz + (((size_t)s * S + 2 * y) * S + 2 * x) * C, *q1 = q0 + C,
                      *q2 = q0 + row, *q3 = q2 + C;
                for (int32_t c = 0; c < C; c += 16) {
                    const __mmask16 mk = cnn_mask(C - c);
                    uint8_t tail[16] = {0};
                    const uint8_t *cp = code + o + c;
                    if (C - c < 16) {
                        memcpy(tail, cp, (size_t)(C - c));
                        cp = tail;
                    }
                    const __m512i k = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)cp));
                    const __m512 d = _mm512_maskz_loadu_ps(mk, dp + o + c);
                    _mm512_mask_storeu_ps(q0 + c, mk, _mm512_maskz_mov_ps(_mm512_testn_epi32_mask(k, k), d));
                    _mm512_mask_storeu_ps(q1 + c, mk, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(k, k1), d));
                    _mm512_mask_storeu_ps(q2 + c, mk, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(k, k2), d));
                    _mm512_mask_storeu_ps(q3 + c, mk, _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(k, k3), d));
                }
            }
}

static void relu_pool(const float *z, int32_t ns, int32_t S, int32_t C, float *p, uint8_t *code)
{
    if (kern_available()) relu_pool_avx512(z, ns, S, C, p, code);
    else relu_pool_ref(z, ns, S, C, p, code);
}

static void unpool(const float *dp, const uint8_t *code, int32_t ns, int32_t S, int32_t C, float *dz)
{
    if (kern_available()) unpool_avx512(dp, code, ns, S, C, dz);
    else unpool_ref(dp, code, ns, S, C, dz);
}

/* ---- forward ---------------------------------------------------------------------------- */

/* Forward through both conv blocks for samples [s0, s0 + ns): p1/a1/p2/a2 of those samples. */
static fh_status conv_forward(const model_t *m, const float *params, const float *x, int32_t s0,
                              int32_t ns, cnn_ws *w)
{
    const size_t n1 = (size_t)w->S2 * w->S2 * w->C1, n2 = (size_t)w->S4 * w->S4 * w->C2;
    FH_TRY(cnn_conv_fwd(w->conv, 0, ns, x + (size_t)s0 * m->in, params + m->w_off[0],
                        params + m->b_off[0], w->z));
    relu_pool(w->z, ns, w->S, w->C1, w->p1 + s0 * n1, w->a1 + s0 * n1);
    FH_TRY(cnn_conv_fwd(w->conv, 1, ns, w->p1 + s0 * n1, params + m->w_off[1], params + m->b_off[1], w->z));
    relu_pool(w->z, ns, w->S2, w->C2, w->p2 + s0 * n2, w->a2 + s0 * n2);
    return FH_OK;
}

/* ---- dense layers -----------------------------------------------------------------------
 * For minibatches (n <= KERN_MAX_ROWS rows, AVX-512) the two kernels below are made for a
 * weight matrix W [K, N] larger than L2 (fc1: 3136 x 512, 6.4 MB). Walking W in 32-column
 * strips over all K rows (kern_dense_fwd / kern_dense_sgd: 2 KB steps the hardware prefetcher
 * does not follow) or packing it (OpenBLAS) took 1.7-2.1 ms a forward product here, against
 * 0.7 ms for:
 *   forward:  blocks of CNN_KB rows of W; for each 32-column strip the n x 32 outputs stay in
 *             registers over the block while the next block is prefetched into L2. Every output
 *             is b + A[r, 0] W[0, j] + A[r, 1] W[1, j] + ... in that order (as kern_dense_fwd:
 *             the same bits whatever n).
 *   backward: one sweep over W, row by row (prefetched two rows ahead), computes both the delta
 *             below the layer, Out[r, k] = D[r] . W[k] (W before the step), and the step
 *             W[k] -= lr sum_r A[r, k] D[r] (rows in order, as kern_dense_sgd): W is read and
 *             written once and its gradient never stored. 0.7 ms for fc1, against 2.8-3.5 ms
 *             for cblas_sgemm (D W^T) followed by kern_dense_sgd. */
#define CNN_KB 32

/* rb (a constant after inlining) rows of the forward product */
static inline __attribute__((always_inline, target("avx512f"))) void
fc_fwd_rows(const int rb, int32_t K, int32_t N, const float *A, const float *W, float *Z)
{
    for (int32_t k0 = 0; k0 < K; k0 += CNN_KB) {
        const int32_t kb = K - k0 < CNN_KB ? K - k0 : CNN_KB;
        const int32_t next = K - k0 - kb < CNN_KB ? K - k0 - kb : CNN_KB; /* rows to prefetch */
        for (int32_t j = 0; j < N; j += 32) {
            const __mmask16 m0 = cnn_mask(N - j), m1 = N - j > 16 ? cnn_mask(N - j - 16) : 0;
            __m512 acc0[KERN_MAX_ROWS], acc1[KERN_MAX_ROWS];
#pragma GCC unroll 12
            for (int r = 0; r < rb; r++) {
                acc0[r] = _mm512_maskz_loadu_ps(m0, Z + (size_t)r * N + j);
                acc1[r] = _mm512_maskz_loadu_ps(m1, Z + (size_t)r * N + j + 16);
            }
            const float *wk = W + (size_t)k0 * N + j;
            for (int32_t k = 0; k < kb; k++, wk += N) {
                if (k < next) {
                    _mm_prefetch((const char *)(wk + (size_t)kb * N), _MM_HINT_T1);
                    _mm_prefetch((const char *)(wk + (size_t)kb * N + 16), _MM_HINT_T1);
                }
                const __m512 w0 = _mm512_maskz_loadu_ps(m0, wk), w1 = _mm512_maskz_loadu_ps(m1, wk + 16);
#pragma GCC unroll 12
                for (int r = 0; r < rb; r++) {
                    const __m512 a = _mm512_set1_ps(A[(size_t)r * K + k0 + k]);
                    acc0[r] = _mm512_fmadd_ps(a, w0, acc0[r]);
                    acc1[r] = _mm512_fmadd_ps(a, w1, acc1[r]);
                }
            }
#pragma GCC unroll 12
            for (int r = 0; r < rb; r++) {
                _mm512_mask_storeu_ps(Z + (size_t)r * N + j, m0, acc0[r]);
                _mm512_mask_storeu_ps(Z + (size_t)r * N + j + 16, m1, acc1[r]);
            }
        }
    }
}

/* Z [n, N] = A [n, K] W [K, N] + b, 1 <= n <= KERN_MAX_ROWS. */
static CNN_AVX512 void fc_fwd(int32_t n, int32_t K, int32_t N, const float *A, const float *W,
                              const float *b, float *Z)
{
    for (int32_t r = 0; r < n; r++) memcpy(Z + (size_t)r * N, b, (size_t)N * sizeof *Z);
    switch (n) { /* one specialisation per row count keeps the accumulators in registers */
#define FWD_CASE(R) case R: fc_fwd_rows(R, K, N, A, W, Z); break;
        FWD_CASE(1) FWD_CASE(2) FWD_CASE(3) FWD_CASE(4) FWD_CASE(5) FWD_CASE(6)
        FWD_CASE(7) FWD_CASE(8) FWD_CASE(9) FWD_CASE(10) FWD_CASE(11) FWD_CASE(12)
#undef FWD_CASE
    default: break;
    }
}

/* rb (a constant after inlining) rows of the fused backward + step; b is done by the caller */
static inline __attribute__((always_inline, target("avx512f"))) void
fc_bwd_sgd_rows(const int rb, int32_t K, int32_t N, const float *A, const float *D, float lr,
                float *W, float *Out)
{
    const __m512 nlr = _mm512_set1_ps(-lr);
    for (int32_t k = 0; k < K; k++) {
        __m512 a[KERN_MAX_ROWS], acc[KERN_MAX_ROWS];
#pragma GCC unroll 12
        for (int r = 0; r < rb; r++) {
            a[r] = _mm512_set1_ps(A[(size_t)r * K + k]);
            acc[r] = _mm512_setzero_ps();
        }
        float *wk = W + (size_t)k * N;
        const int pf = k + 2 < K;
        for (int32_t j = 0; j < N; j += 16) {
            const __mmask16 mk = cnn_mask(N - j);
            if (pf) _mm_prefetch((const char *)(wk + 2 * (size_t)N + j), _MM_HINT_T0);
            const __m512 w = _mm512_maskz_loadu_ps(mk, wk + j);
            __m512 d = _mm512_maskz_loadu_ps(mk, D + j);
            acc[0] = _mm512_fmadd_ps(d, w, acc[0]);
            __m512 g = _mm512_mul_ps(a[0], d);
#pragma GCC unroll 12
            for (int r = 1; r < rb; r++) {
                d = _mm512_maskz_loadu_ps(mk, D + (size_t)r * N + j);
                acc[r] = _mm512_fmadd_ps(d, w, acc[r]);
                g = _mm512_fmadd_ps(a[r], d, g);
            }
            _mm512_mask_storeu_ps(wk + j, mk, _mm512_fmadd_ps(nlr, g, w));
        }
        if (Out) {
#pragma GCC unroll 12
            for (int r = 0; r < rb; r++) Out[(size_t)r * K + k] = _mm512_reduce_add_ps(acc[r]);
        }
    }
}

/* Out [n, K] = D [n, N] W^T (NULL: not needed), then W -= lr A^T D, b -= lr colsum(D). */
static CNN_AVX512 void fc_bwd_sgd(int32_t n, int32_t K, int32_t N, const float *A, const float *D,
                                  float lr, float *W, float *b, float *Out)
{
    switch (n) { /* one specialisation per row count keeps a and acc in registers */
#define BWD_CASE(R) case R: fc_bwd_sgd_rows(R, K, N, A, D, lr, W, Out); break;
        BWD_CASE(1) BWD_CASE(2) BWD_CASE(3) BWD_CASE(4) BWD_CASE(5) BWD_CASE(6)
        BWD_CASE(7) BWD_CASE(8) BWD_CASE(9) BWD_CASE(10) BWD_CASE(11) BWD_CASE(12)
#undef BWD_CASE
    default: return;
    }
    for (int32_t j = 0; j < N; j++) {
        float s = D[j];
        for (int32_t r = 1; r < n; r++) s += D[(size_t)r * N + j];
        b[j] = fmaf(-lr, s, b[j]);
    }
}

/* Dense layer forward: out [n, fo] = in W + b (relu if asked). */
static void dense_forward(const float *in, int32_t n, int32_t fi, int32_t fo, const float *W,
                          const float *b, float *out, int relu)
{
    if (n <= KERN_MAX_ROWS && kern_available()) {
        fc_fwd(n, fi, fo, in, W, b, out);
    } else {
        for (int32_t i = 0; i < n; i++) memcpy(out + (size_t)i * fo, b, (size_t)fo * sizeof *out);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, fo, fi, 1.0f, in, fi, W, fo,
                    1.0f, out, fo);
    }
    if (relu) kern_relu(out, (size_t)n * fo);
}

static fh_status cnn_forward(const model_t *m, const float *params, const float *x, int32_t n, cnn_ws *w)
{
    for (int32_t s0 = 0; s0 < n; s0 += w->chunk)
        FH_TRY(conv_forward(m, params, x, s0, n - s0 < w->chunk ? n - s0 : w->chunk, w));
    dense_forward(w->p2, n, m->fan_in[2], w->F, params + m->w_off[2], params + m->b_off[2], w->a3, 1);
    dense_forward(w->a3, n, m->fan_in[3], w->K, params + m->w_off[3], params + m->b_off[3], w->lg, 0);
    return FH_OK;
}

/* ---- backward --------------------------------------------------------------------------- */

/* softmax cross-entropy (class-weighted) of the logits; dLoss/dlogits of the mean loss into d4.
 * Returns the loss sum. */
static double cnn_output_loss(const model_t *m, const int32_t *y, int32_t n, cnn_ws *w)
{
    const int32_t K = w->K;
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
    return loss;
}

static void colsum(const float *d, int32_t n, int32_t k, float *out)
{
    memcpy(out, d, (size_t)k * sizeof *out);
    for (int32_t i = 1; i < n; i++)
        for (int32_t j = 0; j < k; j++) out[j] += d[(size_t)i * k + j];
}

/* Gradients of both conv blocks from dp2 (dLoss/dp2 of all n samples) into grad's conv part
 * (W_0, b_0, W_1, b_1), chunk by chunk: the chunks' weight gradients add up. */
static fh_status conv_backward(const model_t *m, const float *params, const float *x, int32_t n,
                               float *grad, cnn_ws *w)
{
    const size_t n1 = (size_t)w->S2 * w->S2 * w->C1, n2 = (size_t)w->S4 * w->S4 * w->C2;
    for (int32_t s0 = 0; s0 < n; s0 += w->chunk) {
        const int32_t ns = n - s0 < w->chunk ? n - s0 : w->chunk;
        const int acc = s0 != 0;
        /* conv2: dZ2 from dp2 through relu + pool; dW1, db1; dp1 */
        unpool(w->dp2 + s0 * n2, w->a2 + s0 * n2, ns, w->S2, w->C2, w->z);
        FH_TRY(cnn_conv_bwd_weights(w->conv, 1, ns, w->p1 + s0 * n1, w->z, grad + m->w_off[1],
                                    grad + m->b_off[1], acc));
        FH_TRY(cnn_conv_bwd_data(w->conv, 1, ns, w->z, params + m->w_off[1], w->dp1));
        /* conv1: dZ1 from dp1; dW0, db0 */
        unpool(w->dp1, w->a1 + s0 * n1, ns, w->S, w->C1, w->z);
        FH_TRY(cnn_conv_bwd_weights(w->conv, 0, ns, x + (size_t)s0 * m->in, w->z,
                                    grad + m->w_off[0], grad + m->b_off[0], acc));
    }
    return FH_OK;
}

double cnn_loss_grad(const model_t *m, const float *params, const float *x, const int32_t *y,
                     int32_t n, float *grad, cnn_ws *w)
{
    if (cnn_forward(m, params, x, n, w) != FH_OK) goto fail;
    const double loss = cnn_output_loss(m, y, n, w);
    const int32_t K = w->K, F = w->F, n2 = m->fan_in[2];
    /* fc2 */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, F, K, n, 1.0f, w->a3, F, w->d4, K, 0.0f,
                grad + m->w_off[3], K);
    colsum(w->d4, n, K, grad + m->b_off[3]);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, F, K, 1.0f, w->d4, K,
                params + m->w_off[3], K, 0.0f, w->d3, F);
    kern_relu_mask(w->d3, w->a3, (size_t)n * F);
    /* fc1 */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n2, F, n, 1.0f, w->p2, n2, w->d3, F, 0.0f,
                grad + m->w_off[2], F);
    colsum(w->d3, n, F, grad + m->b_off[2]);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n2, F, 1.0f, w->d3, F,
                params + m->w_off[2], F, 0.0f, w->dp2, n2);
    if (conv_backward(m, params, x, n, grad, w) != FH_OK) goto fail;
    return loss;
fail: /* oneDNN failed on a primitive made in cnn_ws_create: a bug, reported as NAN */
    memset(grad, 0, (size_t)m->nparams * sizeof *grad);
    return NAN;
}

double cnn_sgd_step(const model_t *m, float *params, const float *x, const int32_t *y, int32_t n,
                    float lr, float *grad, cnn_ws *w)
{
    if (n > KERN_MAX_ROWS || !kern_available()) {
        const double loss = cnn_loss_grad(m, params, x, y, n, grad, w);
        if (isnan(loss)) return loss;
        optim_sgd(params, grad, lr, m->nparams);
        return loss;
    }
    if (cnn_forward(m, params, x, n, w) != FH_OK) return NAN;
    const double loss = cnn_output_loss(m, y, n, w);
    const int32_t K = w->K, F = w->F, n2 = m->fan_in[2];
    /* fc2 and fc1: the delta below each (with W before its step) and the step, in one pass */
    fc_bwd_sgd(n, F, K, w->a3, w->d4, lr, params + m->w_off[3], params + m->b_off[3], w->d3);
    kern_relu_mask(w->d3, w->a3, (size_t)n * F);
    fc_bwd_sgd(n, n2, F, w->p2, w->d3, lr, params + m->w_off[2], params + m->b_off[2], w->dp2);
    /* the convolutions: gradient (52k floats for the default CNN), then the step */
    if (conv_backward(m, params, x, n, grad, w) != FH_OK) return NAN;
    optim_sgd(params, grad, lr, m->w_off[2]); /* the conv parameters come first */
    return loss;
}

void cnn_predict(const model_t *m, const float *params, const float *x, int32_t n, float *probs,
                 cnn_ws *w)
{
    for (int32_t r = 0; r < n; r += w->max_batch) {
        const int32_t k = n - r < w->max_batch ? n - r : w->max_batch;
        if (cnn_forward(m, params, x + (size_t)r * m->in, k, w) != FH_OK) {
            for (size_t i = (size_t)r * w->K; i < (size_t)n * w->K; i++) probs[i] = NAN;
            return;
        }
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
