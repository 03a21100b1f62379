/* Tests of the CNN (src/model/cnn.c): shapes, bad inputs, and gradients against central
 * differences of an independent double-precision reference written with direct convolution
 * loops (no im2col, no BLAS), on small CNNs built with model_create_cnn. */
#include "tests.h"

#include "fedhpc/model.h"
#include "fedhpc/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the reference: direct loops in double --------------------------------------------- */

/* 'same' 5x5 conv of in [S, S, C] with W [(ky*5+kx)*C + c, F], b [F]; relu; 2x2 max-pool. */
static void ref_conv_block(const double *in, int S, int C, const float *W, const float *b, int F,
                           double *out /* [S/2, S/2, F] */)
{
    double *z = malloc((size_t)S * S * F * sizeof *z);
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
            for (int f = 0; f < F; f++) {
                double s = b[f];
                for (int ky = 0; ky < 5; ky++)
                    for (int kx = 0; kx < 5; kx++) {
                        int iy = y + ky - 2, ix = x + kx - 2;
                        if (iy < 0 || iy >= S || ix < 0 || ix >= S) continue;
                        for (int c = 0; c < C; c++)
                            s += in[((size_t)iy * S + ix) * C + c] * W[((size_t)(ky * 5 + kx) * C + c) * F + f];
                    }
                z[((size_t)y * S + x) * F + f] = s > 0 ? s : 0;
            }
    const int H = S / 2;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < H; x++)
            for (int f = 0; f < F; f++) {
                double v = -1e300;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) {
                        double t = z[((size_t)(2 * y + dy) * S + 2 * x + dx) * F + f];
                        v = t > v ? t : v;
                    }
                out[((size_t)y * H + x) * F + f] = v;
            }
    free(z);
}

/* Mean cross-entropy of the CNN on n rows, in double. */
static double ref_loss(const model_t *m, const float *p, const float *x, const int32_t *y, int n)
{
    const int S = m->cnn_side, C0 = m->cnn_channels, C1 = m->fan_out[0], C2 = m->fan_out[1];
    const int F = m->fan_out[2], K = m->classes, n2 = m->fan_in[2];
    double *in = malloc((size_t)S * S * C0 * sizeof *in), *a1 = malloc((size_t)S * S * C1 * sizeof *a1),
           *a2 = malloc((size_t)n2 * sizeof *a2), *a3 = malloc((size_t)F * sizeof *a3),
           *z = malloc((size_t)K * sizeof *z);
    double loss = 0;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < S * S * C0; k++) in[k] = x[(size_t)i * m->in + k];
        ref_conv_block(in, S, C0, p + m->w_off[0], p + m->b_off[0], C1, a1);
        ref_conv_block(a1, S / 2, C1, p + m->w_off[1], p + m->b_off[1], C2, a2);
        for (int f = 0; f < F; f++) {
            double s = p[m->b_off[2] + f];
            for (int k = 0; k < n2; k++) s += a2[k] * p[m->w_off[2] + (size_t)k * F + f];
            a3[f] = s > 0 ? s : 0;
        }
        double mx = -1e300;
        for (int c = 0; c < K; c++) {
            double s = p[m->b_off[3] + c];
            for (int f = 0; f < F; f++) s += a3[f] * p[m->w_off[3] + (size_t)f * K + c];
            z[c] = s;
            mx = s > mx ? s : mx;
        }
        double se = 0;
        for (int c = 0; c < K; c++) se += exp(z[c] - mx);
        loss += log(se) - (z[y[i]] - mx);
    }
    free(in); free(a1); free(a2); free(a3); free(z);
    return loss / n;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_cnn_shapes(void)
{
    model_t m;
    model_type t;
    CU_ASSERT_EQUAL(model_parse_type("cnn", &t), FH_OK);
    CU_ASSERT_EQUAL(t, MODEL_CNN);
    CU_ASSERT_STRING_EQUAL(model_type_name(MODEL_CNN), "cnn");
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_CNN, 784, 10, NULL, 0), FH_OK);
    /* McMahan et al. 2017: 1,663,370 parameters for 28 x 28 x 1 and 10 classes */
    CU_ASSERT_EQUAL(m.nparams, 1663370);
    CU_ASSERT_EQUAL(m.in, 784);
    CU_ASSERT_EQUAL(m.fan_in[2], 7 * 7 * 64);
    CU_ASSERT_EQUAL(model_create(&m, MODEL_CNN, 23, 2, NULL, 0), FH_EINPUT); /* lending_club */
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), "784"));
    CU_ASSERT_EQUAL(model_create_cnn(&m, 10, 1, 2, 2, 2, 2), FH_EINPUT); /* side not % 4 */
    CU_ASSERT_EQUAL(model_create_cnn(&m, 8, 1, 2, 2, 2, 1), FH_EINPUT);  /* 1 class */
    CU_ASSERT_EQUAL(model_create_cnn(&m, 8, 0, 2, 2, 2, 3), FH_EINPUT);
}

static void check_cnn_gradient(int side, int ch, int c1, int c2, int fc, int K, int n, uint64_t seed)
{
    model_t m;
    CU_ASSERT_EQUAL_FATAL(model_create_cnn(&m, side, ch, c1, c2, fc, K), FH_OK);
    const int64_t P = m.nparams;
    float *p = malloc((size_t)P * sizeof *p), *g = malloc((size_t)P * sizeof *g),
          *pp = malloc((size_t)P * sizeof *pp), *x = malloc((size_t)n * m.in * sizeof *x),
          *probs = malloc((size_t)n * K * sizeof *probs);
    int32_t *y = malloc((size_t)n * sizeof *y);
    model_ws *ws = model_ws_create(&m, n);
    CU_ASSERT_FATAL(p && g && pp && x && y && probs && ws);
    model_init_params(&m, p, seed);
    rng_t r = rng_stream(seed, 1, 0, RNG_INIT);
    for (int64_t j = 0; j < P; j++) p[j] += (float)(0.05 * (rng_uniform(&r) - 0.5)); /* biases != 0 */
    for (int64_t k = 0; k < (int64_t)n * m.in; k++) x[k] = (float)(2.0 * rng_uniform(&r) - 1.0);
    for (int i = 0; i < n; i++) y[i] = (int32_t)rng_below(&r, (uint64_t)K);

    for (int64_t j = 0; j < P; j++) g[j] = 1e3f; /* must be overwritten, not accumulated */
    const double loss = model_loss_grad(&m, p, x, y, n, g, ws);
    const double want = ref_loss(&m, p, x, y, n);
    CU_ASSERT_DOUBLE_EQUAL(loss / n, want, 1e-5 * fabs(want) + 1e-6);

    /* every coordinate against central differences of the double reference */
    memcpy(pp, p, (size_t)P * sizeof *pp);
    double worst = 0;
    int64_t bad = 0;
    for (int64_t j = 0; j < P; j++) {
        const float h = 1e-3f;
        pp[j] = p[j] + h;
        const double lp = ref_loss(&m, pp, x, y, n);
        pp[j] = p[j] - h;
        const double lm = ref_loss(&m, pp, x, y, n);
        pp[j] = p[j];
        const double fd = (lp - lm) / (2.0 * h);
        const double err = fabs(g[j] - fd) / fmax(fmax(fabs(g[j]), fabs(fd)), 1e-3);
        if (err > worst) worst = err;
        if (err > 1e-2) bad++;
    }
    /* a ReLU / max-pool kink within h of a coordinate can spoil its difference quotient:
     * allow a handful of such coordinates, never a systematic error */
    CU_ASSERT(bad <= P / 200);
    if (bad > P / 200) fprintf(stderr, "cnn gradient: %lld of %lld coordinates off (worst %.3g)\n",
                               (long long)bad, (long long)P, worst);

    /* predictions: rows sum to 1, and a second ws with fewer rows (chunked) agrees */
    model_predict(&m, p, x, n, probs, ws);
    model_ws *ws3 = model_ws_create(&m, 3);
    float *probs3 = malloc((size_t)n * K * sizeof *probs3);
    CU_ASSERT_FATAL(ws3 && probs3);
    model_predict(&m, p, x, n, probs3, ws3);
    double maxdiff = 0;
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int c = 0; c < K; c++) {
            s += probs[i * K + c];
            maxdiff = fmax(maxdiff, fabs(probs[i * K + c] - probs3[i * K + c]));
        }
        CU_ASSERT_DOUBLE_EQUAL(s, 1.0, 1e-5);
    }
    CU_ASSERT(maxdiff < 1e-5);
    model_ws_free(ws3);
    free(probs3);
    model_ws_free(ws);
    free(p); free(g); free(pp); free(x); free(y); free(probs);
}

static void test_cnn_gradient_small(void) { check_cnn_gradient(8, 2, 3, 4, 5, 3, 5, 11); }
/* 20 rows: more than one chunk of 16, so the conv weight gradients accumulate over chunks */
static void test_cnn_gradient_chunks(void) { check_cnn_gradient(4, 1, 2, 3, 4, 2, 20, 12); }

/* SGD on a fixed batch lowers the loss (the gradient points downhill at full size too). */
static void test_cnn_learns(void)
{
    model_t m;
    CU_ASSERT_EQUAL_FATAL(model_create_cnn(&m, 12, 1, 4, 4, 8, 2), FH_OK);
    const int n = 16;
    float *p = malloc((size_t)m.nparams * sizeof *p), *g = malloc((size_t)m.nparams * sizeof *g),
          *x = malloc((size_t)n * m.in * sizeof *x);
    int32_t y[16];
    model_ws *ws = model_ws_create(&m, n);
    CU_ASSERT_FATAL(p && g && x && ws);
    model_init_params(&m, p, 3);
    /* class 1: a bright square in the top-left corner; class 0: bottom-right */
    for (int i = 0; i < n; i++) {
        y[i] = i % 2;
        for (int k = 0; k < m.in; k++) x[(size_t)i * m.in + k] = 0;
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++) {
                int yy = y[i] ? a + 1 : 7 + a, xx = y[i] ? b + 1 : 7 + b;
                x[(size_t)i * m.in + yy * 12 + xx] = 1.0f;
            }
    }
    const double l0 = model_loss_grad(&m, p, x, y, n, g, ws) / n;
    double l = l0;
    for (int it = 0; it < 30; it++) {
        for (int64_t j = 0; j < m.nparams; j++) p[j] -= 0.1f * g[j];
        l = model_loss_grad(&m, p, x, y, n, g, ws) / n;
    }
    CU_ASSERT(l < 0.5 * l0);
    model_ws_free(ws);
    free(p); free(g); free(x);
}

/* model_sgd_step (fused for n <= 12 rows: the dense layers step inside the backward pass) does
 * what model_loss_grad + params -= lr * grad does, up to float rounding; the same bits twice and
 * with a second ws; a bad label or too many rows leave the parameters alone. */
static void check_cnn_sgd_step(int side, int ch, int c1, int c2, int fc, int K, uint64_t seed)
{
    model_t m;
    CU_ASSERT_EQUAL_FATAL(model_create_cnn(&m, side, ch, c1, c2, fc, K), FH_OK);
    const int64_t P = m.nparams;
    const int nmax = 13;
    float *p0 = malloc((size_t)P * sizeof *p0), *a = malloc((size_t)P * sizeof *a),
          *b = malloc((size_t)P * sizeof *b), *g = malloc((size_t)P * sizeof *g),
          *x = malloc((size_t)nmax * m.in * sizeof *x);
    int32_t y[13];
    model_ws *ws = model_ws_create(&m, 16), *ws2 = model_ws_create(&m, 12);
    CU_ASSERT_FATAL(p0 && a && b && g && x && ws && ws2);
    model_init_params(&m, p0, seed);
    rng_t r = rng_stream(seed, 1, 0, RNG_INIT);
    for (int64_t j = 0; j < P; j++) p0[j] += (float)(0.05 * (rng_uniform(&r) - 0.5));
    for (int64_t k = 0; k < (int64_t)nmax * m.in; k++) x[k] = (float)rng_uniform(&r);
    for (int i = 0; i < nmax; i++) y[i] = (int32_t)rng_below(&r, (uint64_t)K);
    const int ns[] = {1, 5, 10, 12, 13};
    for (size_t t = 0; t < sizeof ns / sizeof *ns; t++) {
        const int n = ns[t];
        const float lr = 0.05f;
        memcpy(a, p0, (size_t)P * sizeof *a);
        const double la = model_sgd_step(&m, a, x, y, n, lr, g, ws);
        const double lb = model_loss_grad(&m, p0, x, y, n, g, ws);
        double err = 0, moved = 0, moved_conv = 0;
        for (int64_t j = 0; j < P; j++) {
            b[j] = p0[j] - lr * g[j];
            err = fmax(err, fabs((double)a[j] - b[j]) / (1e-3 + fabs(b[j] - p0[j])));
            moved = fmax(moved, fabs((double)a[j] - p0[j]));
            if (j < m.w_off[2]) moved_conv = fmax(moved_conv, fabs((double)a[j] - p0[j]));
        }
        CU_ASSERT(moved > 1e-4);      /* the step did something, */
        CU_ASSERT(moved_conv > 1e-6); /* the convolutions too,   */
        CU_ASSERT(err < 2e-3);        /* and the same thing, up to float rounding */
        if (err >= 2e-3) fprintf(stderr, "cnn sgd step n=%d: relative error %.3g\n", n, err);
        CU_ASSERT(fabs(la - lb) <= 1e-5 * (1 + fabs(lb)));
        /* deterministic: the same step again, and on another ws, gives the same bits */
        memcpy(b, p0, (size_t)P * sizeof *b);
        model_sgd_step(&m, b, x, y, n, lr, g, ws);
        CU_ASSERT(memcmp(a, b, (size_t)P * sizeof *a) == 0);
        if (n <= 12) {
            memcpy(b, p0, (size_t)P * sizeof *b);
            model_sgd_step(&m, b, x, y, n, lr, g, ws2);
            CU_ASSERT(memcmp(a, b, (size_t)P * sizeof *a) == 0);
        }
    }
    /* a bad label, or more rows than the ws holds: NAN, parameters untouched */
    memcpy(a, p0, (size_t)P * sizeof *a);
    int32_t ybad[3] = {0, (int32_t)K, 1};
    CU_ASSERT(isnan(model_sgd_step(&m, a, x, ybad, 3, 0.1f, g, ws)));
    CU_ASSERT(isnan(model_sgd_step(&m, a, x, y, 13, 0.1f, g, ws2)));
    CU_ASSERT(memcmp(a, p0, (size_t)P * sizeof *a) == 0);
    model_ws_free(ws);
    model_ws_free(ws2);
    free(p0); free(a); free(b); free(g); free(x);
}

/* odd widths: every vector loop has a masked tail */
static void test_cnn_sgd_step_small(void) { check_cnn_sgd_step(8, 2, 3, 4, 5, 3, 21); }
/* the paper's CNN: 32 / 64 channels, fc1 3136 x 512 */
static void test_cnn_sgd_step_default(void) { check_cnn_sgd_step(28, 1, 32, 64, 512, 10, 22); }

/* Forward of rows alone and within bigger batches (small-batch kernels, BLAS, chunks of 16)
 * agree, and model_loss_grad gives the same bits run to run and on a fresh ws. */
static void test_cnn_batches_agree(void)
{
    model_t m;
    CU_ASSERT_EQUAL_FATAL(model_create_cnn(&m, 12, 3, 16, 32, 40, 4), FH_OK);
    const int n = 40;
    const int64_t P = m.nparams;
    float *p = malloc((size_t)P * sizeof *p), *g1 = malloc((size_t)P * sizeof *g1),
          *g2 = malloc((size_t)P * sizeof *g2), *x = malloc((size_t)n * m.in * sizeof *x),
          *pa = malloc((size_t)n * 4 * sizeof *pa), *pb = malloc((size_t)n * 4 * sizeof *pb);
    int32_t y[40];
    model_ws *ws = model_ws_create(&m, 64);
    CU_ASSERT_FATAL(p && g1 && g2 && x && pa && pb && ws);
    model_init_params(&m, p, 5);
    rng_t r = rng_stream(5, 1, 0, RNG_INIT);
    for (int64_t k = 0; k < (int64_t)n * m.in; k++) x[k] = (float)(2.0 * rng_uniform(&r) - 1.0);
    for (int i = 0; i < n; i++) y[i] = (int32_t)rng_below(&r, 4);
    model_predict(&m, p, x, n, pa, ws); /* 40 rows: chunks 16 + 16 + 8, BLAS dense layers */
    double e = 0;
    for (int r0 = 0; r0 < n; r0 += 7) { /* 7 rows at a time: one chunk, kernels */
        const int k = n - r0 < 7 ? n - r0 : 7;
        model_predict(&m, p, x + (size_t)r0 * m.in, k, pb + (size_t)r0 * 4, ws);
    }
    for (int i = 0; i < n * 4; i++) e = fmax(e, fabs((double)pa[i] - pb[i]));
    CU_ASSERT(e < 1e-5);
    const double l1 = model_loss_grad(&m, p, x, y, n, g1, ws);
    model_ws *ws2 = model_ws_create(&m, 64);
    CU_ASSERT_FATAL(ws2 != NULL);
    const double l2 = model_loss_grad(&m, p, x, y, n, g2, ws2);
    CU_ASSERT(l1 == l2);
    CU_ASSERT(memcmp(g1, g2, (size_t)P * sizeof *g1) == 0);
    model_ws_free(ws);
    model_ws_free(ws2);
    free(p); free(g1); free(g2); free(x); free(pa); free(pb);
}

void tests_register_cnn(void)
{
    CU_pSuite s = CU_add_suite("cnn", NULL, NULL);
    tests_add(s, "shapes", test_cnn_shapes);
    tests_add(s, "gradient_small", test_cnn_gradient_small);
    tests_add(s, "gradient_chunks", test_cnn_gradient_chunks);
    tests_add(s, "learns", test_cnn_learns);
    tests_add(s, "sgd_step_small", test_cnn_sgd_step_small);
    tests_add(s, "sgd_step_default", test_cnn_sgd_step_default);
    tests_add(s, "batches_agree", test_cnn_batches_agree);
}
