/* Unit tests of the attention model over item sets (src/model/attn.c): gradient against central
 * differences of an independent double-precision reference, masking of padding, embeddings. */
#define _POSIX_C_SOURCE 200809L
#include "tests.h"

#include "fedhpc/io.h"
#include "fedhpc/model.h"
#include "fedhpc/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Mean loss of n rows in double precision, written from the model's definition (model.h) with
 * plain loops: no code shared with src/model/attn.c. */
static double ref_loss(const model_t *m, const float *pf, const float *x, const int32_t *y, int n)
{
    const int L = m->in, d = m->attn_dim, h = m->attn_heads, dh = d / h, C = m->classes;
    const float *E = pf + m->w_off[0], *Wq = pf + m->w_off[1], *Wk = pf + m->w_off[2], *Wv = pf + m->w_off[3],
                *u = pf + m->w_off[4], *Wc = pf + m->w_off[5], *bc = pf + m->b_off[5];
    double *X = calloc((size_t)L * d, sizeof *X), *Q = calloc((size_t)L * d, sizeof *Q),
           *K = calloc((size_t)L * d, sizeof *K), *V = calloc((size_t)L * d, sizeof *V),
           *H = calloc((size_t)L * d, sizeof *H), *z = calloc((size_t)d, sizeof *z), *lg = calloc((size_t)C, sizeof *lg),
           *a = calloc((size_t)L, sizeof *a);
    double total = 0;
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * L;
        for (int p = 0; p < L; p++)
            for (int c = 0; c < d; c++) X[p * d + c] = xi[p] >= 0 ? E[(int)xi[p] * d + c] : 0.0;
        for (int p = 0; p < L; p++)
            for (int c = 0; c < d; c++) {
                double q = 0, k = 0, v = 0;
                for (int e = 0; e < d; e++) {
                    q += X[p * d + e] * Wq[e * d + c];
                    k += X[p * d + e] * Wk[e * d + c];
                    v += X[p * d + e] * Wv[e * d + c];
                }
                Q[p * d + c] = q;
                K[p * d + c] = k;
                V[p * d + c] = v;
            }
        for (int p = 0; p < L * d; p++) H[p] = X[p];
        for (int hh = 0; hh < h; hh++)
            for (int p = 0; p < L; p++) {
                if (xi[p] < 0) continue;
                double mx = -1e300, s = 0;
                for (int q = 0; q < L; q++) {
                    a[q] = 0;
                    if (xi[q] < 0) continue;
                    for (int c = 0; c < dh; c++) a[q] += Q[p * d + hh * dh + c] * K[q * d + hh * dh + c];
                    a[q] /= sqrt((double)dh);
                    if (a[q] > mx) mx = a[q];
                }
                for (int q = 0; q < L; q++) {
                    a[q] = xi[q] >= 0 ? exp(a[q] - mx) : 0;
                    s += a[q];
                }
                for (int c = 0; c < dh; c++)
                    for (int q = 0; q < L; q++) H[p * d + hh * dh + c] += a[q] / s * V[q * d + hh * dh + c];
            }
        for (int c = 0; c < d; c++) z[c] = 0;
        for (int p = 0; p < L; p++) {
            if (xi[p] < 0) continue;
            double sc = 0;
            for (int c = 0; c < d; c++) sc += H[p * d + c] * u[c];
            const double g = 1.0 / (1.0 + exp(-sc));
            for (int c = 0; c < d; c++) z[c] += g * H[p * d + c];
        }
        double mx = -1e300, s = 0;
        for (int k = 0; k < C; k++) {
            lg[k] = bc[k];
            for (int c = 0; c < d; c++) lg[k] += z[c] * Wc[c * C + k];
            if (lg[k] > mx) mx = lg[k];
        }
        for (int k = 0; k < C; k++) s += exp(lg[k] - mx);
        total += log(s) - (lg[y[i]] - mx);
    }
    free(X); free(Q); free(K); free(V); free(H); free(z); free(lg); free(a);
    return total / n;
}

/* n random item sets of lengths 1..L over `items` items (distinct, then -1 padding). */
static void random_sets(rng_t *r, int n, int L, int items, float *x)
{
    for (int i = 0; i < n; i++) {
        const int k = 1 + (int)rng_below(r, (uint64_t)L);
        for (int p = 0; p < L; p++) x[i * L + p] = -1.0f;
        for (int p = 0; p < k; p++) {
            int v, dup;
            do {
                v = (int)rng_below(r, (uint64_t)items);
                dup = 0;
                for (int q = 0; q < p; q++) dup |= x[i * L + q] == (float)v;
            } while (dup);
            x[i * L + p] = (float)v;
        }
    }
}

static void check_attn_gradient(int L, int items, int d, int heads, int C, int n, uint64_t seed)
{
    model_t m;
    CU_ASSERT_EQUAL_FATAL(model_create_attn(&m, L, items, d, heads, C), FH_OK);
    const int64_t P = m.nparams;
    CU_ASSERT_EQUAL(P, (int64_t)items * d + 3 * d * d + d + d * C + C);
    float *p = malloc((size_t)P * sizeof *p), *g = malloc((size_t)P * sizeof *g), *pp = malloc((size_t)P * sizeof *pp),
          *x = malloc((size_t)n * L * sizeof *x);
    int32_t *y = malloc((size_t)n * sizeof *y);
    model_ws *ws = model_ws_create(&m, n);
    CU_ASSERT_FATAL(p && g && pp && x && y && ws);
    model_init_params(&m, p, seed);
    rng_t r = rng_stream(seed, 1, 0, RNG_INIT);
    for (int64_t j = 0; j < P; j++) p[j] += (float)(0.4 * (rng_uniform(&r) - 0.5)); /* u, bc != 0 */
    random_sets(&r, n, L, items, x);
    for (int i = 0; i < n; i++) y[i] = (int32_t)rng_below(&r, (uint64_t)C);
    for (int64_t j = 0; j < P; j++) g[j] = 1e3f; /* must be overwritten */
    const double loss = model_loss_grad(&m, p, x, y, n, g, ws);
    const double want = ref_loss(&m, p, x, y, n);
    CU_ASSERT_DOUBLE_EQUAL(loss / n, want, 1e-5 * fabs(want) + 1e-6);
    memcpy(pp, p, (size_t)P * sizeof *pp);
    double worst = 0;
    for (int64_t j = 0; j < P; j++) {
        const float hstep = 1e-3f;
        pp[j] = p[j] + hstep;
        const double lp = ref_loss(&m, pp, x, y, n);
        pp[j] = p[j] - hstep;
        const double lm = ref_loss(&m, pp, x, y, n);
        pp[j] = p[j];
        const double fd = (lp - lm) / ((double)(p[j] + hstep) - (double)(p[j] - hstep));
        const double err = fabs(g[j] - fd) / fmax(fmax(fabs(g[j]), fabs(fd)), 1e-3);
        if (err > worst) worst = err;
    }
    /* smooth model (no ReLU kinks): every coordinate within 1 % (float gradient vs double
     * central differences; typical error is 1e-4) */
    CU_ASSERT(worst < 1e-2);
    if (getenv("ATTN_SHOW") || worst >= 1e-2) fprintf(stderr, "attention gradient: worst relative error %.3g\n", worst);
    model_ws_free(ws);
    free(p); free(g); free(pp); free(x); free(y);
}

static void test_attn_gradient_one_head(void) { check_attn_gradient(5, 7, 4, 1, 2, 6, 31); }
static void test_attn_gradient_heads(void) { check_attn_gradient(6, 9, 6, 3, 3, 5, 32); }

static void test_attn_shapes(void)
{
    model_t m;
    CU_ASSERT_EQUAL(model_create_attn(&m, 5, 10, 6, 4, 2), FH_EINPUT); /* heads must divide d */
    CU_ASSERT_EQUAL(model_create_attn(&m, 5, 0, 6, 2, 2), FH_EINPUT);
    CU_ASSERT_EQUAL(model_create_attn(&m, 0, 10, 6, 2, 2), FH_EINPUT);
    CU_ASSERT_EQUAL(model_create_attn(&m, 5, 10, 6, 2, 1), FH_EINPUT);
    CU_ASSERT_EQUAL(model_create_attn(&m, 5, 10, 6, 3, 2), FH_OK);
    model_type t;
    CU_ASSERT_EQUAL(model_parse_type("attention", &t), FH_OK);
    CU_ASSERT_EQUAL(t, MODEL_ATTENTION);
}

/* Padding changes nothing: the same sets padded to L = 4 and to L = 9 (and with padding
 * interleaved between the items) give the same probabilities, embeddings and gradients; a row's
 * output does not depend on the other rows of its batch; a bad index gives NAN. */
static void test_attn_masking(void)
{
    enum { N = 5, IT = 12, D = 8, HD = 2, C = 2, L1 = 4, L2 = 9 };
    model_t m1, m2;
    CU_ASSERT_EQUAL_FATAL(model_create_attn(&m1, L1, IT, D, HD, C), FH_OK);
    CU_ASSERT_EQUAL_FATAL(model_create_attn(&m2, L2, IT, D, HD, C), FH_OK);
    CU_ASSERT_EQUAL_FATAL(m1.nparams, m2.nparams);
    const int64_t P = m1.nparams;
    float *p = malloc((size_t)P * sizeof *p), *g1 = malloc((size_t)P * sizeof *g1), *g2 = malloc((size_t)P * sizeof *g2);
    float x1[N * L1], x2[N * L2], x3[N * L2], pr1[N * C], pr2[N * C], pr3[N * C], e1[N * D], e2[N * D], e3[D];
    int32_t y[N];
    model_ws *w1 = model_ws_create(&m1, N), *w2 = model_ws_create(&m2, N);
    CU_ASSERT_FATAL(p && g1 && g2 && w1 && w2);
    model_init_params(&m1, p, 5);
    rng_t r = rng_stream(5, 2, 0, RNG_INIT);
    for (int64_t j = 0; j < P; j++) p[j] += (float)(0.4 * (rng_uniform(&r) - 0.5));
    random_sets(&r, N, L1, IT, x1);
    for (int i = 0; i < N; i++) {
        y[i] = i % 2;
        int k = 0;
        for (int q = 0; q < L2; q++) x2[i * L2 + q] = q < L1 ? x1[i * L1 + q] : -1.0f;
        for (int q = 0; q < L2; q++) x3[i * L2 + q] = -1.0f;
        for (int q = 0; q < L1; q++) /* items at positions 2q + (i % 2): padding in between */
            if (x1[i * L1 + q] >= 0) x3[i * L2 + 2 * k++ + i % 2] = x1[i * L1 + q];
    }
    model_predict(&m1, p, x1, N, pr1, w1);
    model_predict(&m2, p, x2, N, pr2, w2);
    model_predict(&m2, p, x3, N, pr3, w2);
    double dp = 0;
    for (int k = 0; k < N * C; k++) dp = fmax(dp, fmax(fabs(pr1[k] - pr2[k]), fabs(pr1[k] - pr3[k])));
    CU_ASSERT(dp < 1e-6);
    CU_ASSERT_EQUAL(attn_embed(&m1, p, x1, N, e1, w1), FH_OK);
    CU_ASSERT_EQUAL(attn_embed(&m2, p, x3, N, e2, w2), FH_OK);
    double de = 0;
    for (int k = 0; k < N * D; k++) de = fmax(de, fabs(e1[k] - e2[k]));
    CU_ASSERT(de < 1e-5);
    /* row 3 alone: the same embedding as inside the batch (bit for bit) */
    CU_ASSERT_EQUAL(attn_embed(&m1, p, x1 + 3 * L1, 1, e3, w1), FH_OK);
    CU_ASSERT(memcmp(e3, e1 + 3 * D, sizeof e3) == 0);
    const double l1 = model_loss_grad(&m1, p, x1, y, N, g1, w1);
    const double l2 = model_loss_grad(&m2, p, x3, y, N, g2, w2);
    CU_ASSERT_DOUBLE_EQUAL(l1, l2, 1e-5 * fabs(l1));
    double dg = 0;
    for (int64_t j = 0; j < P; j++) dg = fmax(dg, fabs(g1[j] - g2[j]) / fmax(fabs(g1[j]), 1e-3));
    CU_ASSERT(dg < 1e-4);
    /* an index out of range or a non-integer: NAN, and embed refuses */
    x1[2] = (float)IT;
    CU_ASSERT(isnan(model_loss_grad(&m1, p, x1, y, N, g1, w1)));
    CU_ASSERT_EQUAL(attn_embed(&m1, p, x1, N, e1, w1), FH_EINPUT);
    x1[2] = 0.5f;
    CU_ASSERT(isnan(model_loss_grad(&m1, p, x1, y, N, g1, w1)));
    model_ws_free(w1);
    model_ws_free(w2);
    free(p); free(g1); free(g2);
}

/* DP-SGD per-example clipping: sum of clipped per-row gradients, each of norm <= clip. */
static void test_attn_clipped(void)
{
    enum { N = 4, IT = 6, D = 4, L = 3 };
    model_t m;
    CU_ASSERT_EQUAL_FATAL(model_create_attn(&m, L, IT, D, 2, 2), FH_OK);
    const int64_t P = m.nparams;
    float *p = malloc((size_t)P * sizeof *p), *gs = malloc((size_t)P * sizeof *gs), *g1 = malloc((size_t)P * sizeof *g1),
          *acc = calloc((size_t)P, sizeof *acc);
    float x[N * L];
    int32_t y[N] = {0, 1, 1, 0};
    double norms[N];
    model_ws *ws = model_ws_create(&m, N);
    CU_ASSERT_FATAL(p && gs && g1 && acc && ws);
    model_init_params(&m, p, 9);
    rng_t r = rng_stream(9, 3, 0, RNG_INIT);
    random_sets(&r, N, L, IT, x);
    const double clip = 0.05;
    const double loss = model_loss_grad_clipped(&m, p, x, y, N, clip, gs, norms, ws);
    CU_ASSERT(isfinite(loss));
    double lsum = 0;
    for (int i = 0; i < N; i++) {
        lsum += model_loss_grad(&m, p, x + i * L, y + i, 1, g1, ws);
        double s = 0;
        for (int64_t j = 0; j < P; j++) s += (double)g1[j] * g1[j];
        CU_ASSERT_DOUBLE_EQUAL(sqrt(s), norms[i], 1e-6 * sqrt(s));
        const double c = sqrt(s) > clip ? clip / sqrt(s) : 1.0;
        for (int64_t j = 0; j < P; j++) acc[j] += (float)(c * g1[j]);
    }
    CU_ASSERT_DOUBLE_EQUAL(loss, lsum, 1e-9);
    double dmax = 0;
    for (int64_t j = 0; j < P; j++) dmax = fmax(dmax, fabs(acc[j] - gs[j]));
    CU_ASSERT(dmax < 1e-6);
    model_ws_free(ws);
    free(p); free(gs); free(g1); free(acc);
}

/* Item-set data through the I/O layer (one process, a file per rank): rows come back as written,
 * meta.items is the vocabulary, and a row holding a non-index is refused on reading. */
static void test_attn_io_items(void)
{
    enum { N = 4, L = 3 };
    float x[N * L] = {0, 2, -1, 4, -1, -1, 1, 3, 4, 2, -1, -1}, tx[L] = {3, -1, -1}, back[N * L];
    int32_t y[N] = {0, 1, 1, 0}, ty[1] = {1}, yb[N];
    char *cls[2] = {"low", "high"};
    data_set ds;
    memset(&ds, 0, sizeof ds);
    snprintf(ds.name, sizeof ds.name, "items");
    ds.nclasses = 2;
    ds.class_name = cls;
    ds.train = (data_table){N, L, x, y};
    ds.test = (data_table){1, L, tx, ty};
    ds.items = 5;
    int64_t perm[N] = {0, 1, 2, 3}, off[3] = {0, 2, 4};
    io_data_meta m;
    memset(&m, 0, sizeof m);
    snprintf(m.dataset, sizeof m.dataset, "items");
    snprintf(m.partition, sizeof m.partition, "iid");
    m.clients = 2;
    char path[700];
    snprintf(path, sizeof path, "%s/items%d.h5", g_test_tmpdir, g_test_world.rank);
    CU_ASSERT_EQUAL_FATAL(io_data_write(path, &ds, &m, perm, off, NULL), FH_OK);
    io_data *h = NULL;
    io_data_meta rm;
    CU_ASSERT_EQUAL_FATAL(io_data_open(path, NULL, &h, &rm), FH_OK);
    CU_ASSERT_EQUAL(rm.items, 5);
    CU_ASSERT_EQUAL(rm.features, L);
    int64_t st0 = 0, cn = N;
    CU_ASSERT_EQUAL(io_data_read_ranges(h, "train", 1, &st0, &cn, back, yb), FH_OK);
    CU_ASSERT(memcmp(back, x, sizeof x) == 0);
    io_data_close(h);
    x[4] = 5.0f; /* item 5 of a 5-item vocabulary */
    CU_ASSERT_EQUAL_FATAL(io_data_write(path, &ds, &m, perm, off, NULL), FH_OK);
    CU_ASSERT_EQUAL_FATAL(io_data_open(path, NULL, &h, &rm), FH_OK);
    CU_ASSERT_EQUAL(io_data_read_ranges(h, "train", 1, &st0, &cn, back, yb), FH_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), "neither an item index in [0, 5) nor -1"));
    io_data_close(h);
    unlink(path);
}

void tests_register_attn(void)
{
    CU_pSuite s = CU_add_suite("attn", NULL, NULL);
    tests_add(s, "shapes", test_attn_shapes);
    tests_add(s, "gradient_one_head", test_attn_gradient_one_head);
    tests_add(s, "gradient_heads", test_attn_gradient_heads);
    tests_add(s, "masking", test_attn_masking);
    tests_add(s, "clipped", test_attn_clipped);
    tests_add(s, "io_items", test_attn_io_items);
}
