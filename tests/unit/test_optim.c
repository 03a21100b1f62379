/* Unit tests of the optimizer room (include/fedhpc/optim.h): each term of the step against a
 * plain reference (the same float operations written out, bit for bit, and a double reference
 * up to rounding), the momentum state, and model_sgd_step (the fused fast path) against
 * model_loss_grad + optim_step. */
#include "tests.h"

#include "fedhpc/model.h"
#include "fedhpc/optim.h"
#include "fedhpc/rng.h"
#include "../../src/model/kern.h" /* kern_available: whether the fused kernels run here */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N 37

static void fill(float *a, int64_t n, double lo, double hi, uint64_t seed)
{
    rng_t r = rng_stream(seed, 7, 0, RNG_SAMPLE);
    for (int64_t i = 0; i < n; i++) a[i] = (float)(lo + (hi - lo) * rng_uniform(&r));
}

/* The textbook step, one element at a time, in float (the contract's operation order) and in
 * double (v: momentum buffers; NULL: none). */
static void ref_step(const optim_opts *o, float *w, const float *g0, float *v, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        float g = g0[j];
        if (o->weight_decay != 0) g = g + o->weight_decay * w[j];
        if (o->mu != 0) g = g + o->mu * (w[j] - o->global[j]);
        if (o->c_diff) g = g + o->c_diff[j];
        if (v) {
            v[j] = o->momentum * v[j] + g;
            g = v[j];
        }
        w[j] = w[j] - o->lr * g;
    }
}
static void ref_step_d(const optim_opts *o, double *w, const float *g0, double *v, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        double g = g0[j] + (double)o->weight_decay * w[j] + (double)o->mu * (w[j] - o->global[j])
                   + (o->c_diff ? (double)o->c_diff[j] : 0);
        if (v) {
            v[j] = (double)o->momentum * v[j] + g;
            g = v[j];
        }
        w[j] -= (double)o->lr * g;
    }
}

/* Three steps of optim_step from the same start as both references (owned state); with_c:
 * a SCAFFOLD correction. */
static void check_terms(optim_opts o, int with_c, const char *what)
{
    float w[N], w0[N], w_ref[N], g[N], g0[N], global[N], c[N], v_ref[N];
    double wd[N], vd[N];
    fill(w, N, -1, 1, 1);
    fill(global, N, -1, 1, 2);
    fill(c, N, -0.2, 0.2, 3);
    o.global = global;
    o.c_diff = with_c ? c : NULL;
    memcpy(w0, w, sizeof w);
    memcpy(w_ref, w, sizeof w);
    for (int j = 0; j < N; j++) wd[j] = w[j], vd[j] = 0, v_ref[j] = 0;
    optim_state s;
    CU_ASSERT_EQUAL_FATAL(optim_init(&s, &o, N), FH_OK);
    CU_ASSERT((s.mom != NULL) == (o.momentum != 0));
    CU_ASSERT(optim_is_plain(&o, &s) == (o.weight_decay == 0 && o.mu == 0 && !o.c_diff && o.momentum == 0));
    for (int t = 0; t < 3; t++) {
        fill(g0, N, -0.5, 0.5, 10 + t);
        memcpy(g, g0, sizeof g);
        optim_step(&o, &s, w, g);
        ref_step(&o, w_ref, g0, o.momentum != 0 ? v_ref : NULL, N);
        ref_step_d(&o, wd, g0, o.momentum != 0 ? vd : NULL, N);
    }
    double err = 0, moved = 0;
    for (int j = 0; j < N; j++) err = fmax(err, fabs(w[j] - wd[j]));
    for (int j = 0; j < N; j++) moved = fmax(moved, fabs(w[j] - w0[j]));
    CU_ASSERT(memcmp(w, w_ref, sizeof w) == 0); /* bit for bit: the documented operation order */
    CU_ASSERT(err < 1e-5);                      /* the formula: a double reference, rounding */
    CU_ASSERT(moved > 1e-3);
    if (memcmp(w, w_ref, sizeof w) != 0 || err >= 1e-5) fprintf(stderr, "optim %s: error %.3g\n", what, err);
    optim_free(&s);
    CU_ASSERT_PTR_NULL(s.mom);
}

static void test_plain(void) { check_terms((optim_opts){.lr = 0.1f}, 0, "plain"); }
static void test_weight_decay(void) { check_terms((optim_opts){.lr = 0.1f, .weight_decay = 0.01f}, 0, "weight decay"); }
static void test_fedprox(void) { check_terms((optim_opts){.lr = 0.1f, .mu = 0.5f}, 0, "fedprox"); }
static void test_scaffold(void) { check_terms((optim_opts){.lr = 0.1f}, 1, "scaffold"); }
static void test_momentum(void) { check_terms((optim_opts){.lr = 0.1f, .momentum = 0.9f}, 0, "momentum"); }
static void test_all_terms(void)
{
    check_terms((optim_opts){.lr = 0.05f, .momentum = 0.5f, .weight_decay = 1e-3f, .mu = 0.1f}, 1, "all terms");
}

/* The plain step is optim_sgd; the direction is left in grad; a lent buffer runs the
 * recurrence even at momentum 0 (v = g) and is never freed; optim_reset zeroes it. */
static void test_state_and_sgd(void)
{
    float w[N], w2[N], g[N], g0[N], v[N];
    fill(w, N, -1, 1, 4);
    fill(g0, N, -0.5, 0.5, 5);
    memcpy(w2, w, sizeof w);
    memcpy(g, g0, sizeof g);
    optim_state s;
    const optim_opts plain = {.lr = 0.25f};
    CU_ASSERT_EQUAL(optim_init(&s, &plain, N), FH_OK);
    CU_ASSERT_PTR_NULL(s.mom);
    optim_step(&plain, &s, w, g);
    optim_sgd(w2, g0, 0.25f, N);
    CU_ASSERT(memcmp(w, w2, sizeof w) == 0);
    CU_ASSERT(memcmp(g, g0, sizeof g) == 0); /* no terms: grad untouched */
    /* the direction: g + wd w */
    const optim_opts wd = {.lr = 0.25f, .weight_decay = 0.5f};
    memcpy(g, g0, sizeof g);
    memcpy(w2, w, sizeof w);
    optim_step(&wd, &s, w, g);
    for (int j = 0; j < N; j++) CU_ASSERT(g[j] == g0[j] + 0.5f * w2[j]);
    /* lent buffer, momentum 0 */
    for (int j = 0; j < N; j++) v[j] = 3.0f;
    optim_attach(&s, v, N);
    CU_ASSERT(!optim_is_plain(&plain, &s));
    optim_reset(&s);
    for (int j = 0; j < N; j++) CU_ASSERT(v[j] == 0);
    memcpy(g, g0, sizeof g);
    optim_step(&plain, &s, w, g);
    CU_ASSERT(memcmp(v, g0, sizeof v) == 0);
    optim_free(&s); /* not owned: v stays */
    CU_ASSERT_PTR_NULL(s.mom);
    CU_ASSERT(memcmp(v, g0, sizeof v) == 0);
}

/* model_sgd_step (the fast path) against model_loss_grad + optim_step with plain options:
 * bit for bit where it stores the gradient (more than KERN_MAX_ROWS rows, or without the
 * AVX-512 kernels: FEDHPC_KERNELS=blas), up to float rounding where the kernels fuse it. */
static void check_fast_path(model_t *m, const char *what)
{
    const int64_t P = m->nparams;
    float *p0 = malloc((size_t)P * sizeof *p0), *a = malloc((size_t)P * sizeof *a),
          *b = malloc((size_t)P * sizeof *b), *g = malloc((size_t)P * sizeof *g),
          *x = malloc(13 * (size_t)m->in * sizeof *x);
    int32_t y[13];
    model_ws *ws = model_ws_create(m, 16);
    CU_ASSERT_FATAL(p0 && a && b && g && x && ws);
    model_init_params(m, p0, 5);
    fill(g, P, -0.05, 0.05, 6);
    for (int64_t j = 0; j < P; j++) p0[j] += g[j]; /* logreg starts at 0 */
    fill(x, 13 * (int64_t)m->in, 0, 1, 7);
    for (int i = 0; i < 13; i++) y[i] = (i * 7 + 3) % m->classes;
    const optim_opts o = {.lr = 0.05f};
    optim_state s;
    optim_attach(&s, NULL, P);
    CU_ASSERT(optim_is_plain(&o, &s));
    const int32_t ns[] = {1, 10, 12, 13};
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
        const int32_t n = ns[k];
        memcpy(a, p0, (size_t)P * sizeof *a);
        memcpy(b, p0, (size_t)P * sizeof *b);
        const double la = model_sgd_step(m, a, x, y, n, o.lr, g, ws);
        const double lb = model_loss_grad(m, b, x, y, n, g, ws);
        optim_step(&o, &s, b, g);
        double err = 0, moved = 0;
        for (int64_t j = 0; j < P; j++) {
            err = fmax(err, fabs((double)a[j] - b[j]) / (1e-3 + fabs((double)b[j] - p0[j])));
            moved = fmax(moved, fabs((double)a[j] - p0[j]));
        }
        CU_ASSERT(moved > 1e-5);
        CU_ASSERT(fabs(la - lb) <= 1e-5 * (1 + fabs(lb)));
        if (n > KERN_MAX_ROWS || !kern_available()) {
            CU_ASSERT(memcmp(a, b, (size_t)P * sizeof *a) == 0);
            CU_ASSERT(la == lb);
        } else {
            CU_ASSERT(err < 2e-3);
        }
        if (err >= 2e-3) fprintf(stderr, "optim fast path %s n=%d: relative error %.3g\n", what, n, err);
    }
    model_ws_free(ws);
    free(p0); free(a); free(b); free(g); free(x);
}

static void test_fast_path_mlp(void)
{
    const int32_t h[2] = {33, 17};
    model_t m;
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_MLP, 37, 10, h, 2), FH_OK);
    check_fast_path(&m, "mlp");
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_LOGREG, 50, 4, h, 0), FH_OK);
    check_fast_path(&m, "logreg");
}

static void test_fast_path_cnn(void)
{
    model_t m;
    CU_ASSERT_EQUAL_FATAL(model_create_cnn(&m, 8, 2, 3, 4, 5, 3), FH_OK);
    check_fast_path(&m, "cnn");
}

void tests_register_optim(void)
{
    CU_pSuite s = CU_add_suite("optim", NULL, NULL);
    tests_add(s, "plain", test_plain);
    tests_add(s, "weight_decay", test_weight_decay);
    tests_add(s, "fedprox", test_fedprox);
    tests_add(s, "scaffold", test_scaffold);
    tests_add(s, "momentum", test_momentum);
    tests_add(s, "all_terms", test_all_terms);
    tests_add(s, "state_and_sgd", test_state_and_sgd);
    tests_add(s, "fast_path_mlp", test_fast_path_mlp);
    tests_add(s, "fast_path_cnn", test_fast_path_cnn);
}
