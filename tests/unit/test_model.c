/* Tests of src/model: shapes, initialisation, gradients (finite differences and a double
 * precision reference), training, prediction and the evaluation metrics. */
#include "tests.h"

#include "fedhpc/model.h"
#include "fedhpc/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ---------------------------------------------------------------------------- */

/* Fill a[n] with uniform values in [lo, hi). */
static void fill_uniform(float *a, size_t n, double lo, double hi, uint64_t seed)
{
    rng_t r = rng_stream(seed, 99, 0, RNG_SAMPLE);
    for (size_t i = 0; i < n; i++) a[i] = (float)(lo + (hi - lo) * rng_uniform(&r));
}

/* Independent double-precision forward pass: sum over rows of the class-weighted
 * cross-entropy. *mask (optional) gets a hash of the ReLU on/off pattern, so a caller can tell
 * whether a perturbation crossed a kink. */
static double ref_loss(const model_t *m, const double *p, const float *x, const int32_t *y,
                       int32_t n, uint64_t *mask)
{
    double a[2][256], loss = 0.0;
    uint64_t h = 1469598103934665603ULL;
    for (int32_t i = 0; i < n; i++) {
        int cur = 0;
        for (int32_t k = 0; k < m->in; k++) a[0][k] = x[(size_t)i * m->in + k];
        for (int32_t l = 0; l < m->nlayers; l++) {
            const int32_t fi = m->fan_in[l], fo = m->fan_out[l];
            for (int32_t o = 0; o < fo; o++) {
                double z = p[m->b_off[l] + o];
                for (int32_t k = 0; k < fi; k++) z += a[cur][k] * p[m->w_off[l] + (int64_t)k * fo + o];
                if (l < m->nlayers - 1) {
                    h = (h ^ (uint64_t)(z > 0)) * 1099511628211ULL;
                    z = z > 0 ? z : 0;
                }
                a[1 - cur][o] = z;
            }
            cur = 1 - cur;
        }
        const double w = m->class_weight ? m->class_weight[y[i]] : 1.0;
        const double *z = a[cur];
        if (m->type == MODEL_LOGREG && m->classes == 2) {
            const double p1 = 1.0 / (1.0 + exp(-z[0]));
            loss -= w * log(y[i] == 1 ? p1 : 1.0 - p1);
        } else {
            double mx = z[0], s = 0;
            for (int32_t k = 1; k < m->classes; k++) mx = z[k] > mx ? z[k] : mx;
            for (int32_t k = 0; k < m->classes; k++) s += exp(z[k] - mx);
            loss -= w * (z[y[i]] - mx - log(s));
        }
    }
    if (mask) *mask = h;
    return loss;
}

/* Gradient check of model m on n random rows (n <= 16, widths <= 256):
 *  (1) the float loss equals the double reference loss;
 *  (2) the analytic float gradient equals central differences of the double reference
 *      (eps 1e-5 in double: accurate to ~1e-9) on every coordinate, to relative 1e-3;
 *  (3) it equals central differences of model_loss_grad itself (eps 1e-2 in float, the
 *      difference quotient formed in double from the float parameters actually used) on
 *      random coordinates whose perturbation does not cross a ReLU kink, to relative 1e-2. */
static void check_gradient(const model_t *m, int32_t n, uint64_t seed)
{
    const int64_t P = m->nparams;
    float *params = malloc((size_t)P * sizeof *params), *grad = malloc((size_t)P * sizeof *grad),
          *g2 = malloc((size_t)P * sizeof *g2), x[16 * 64];
    double *pd = calloc((size_t)P, sizeof *pd);
    int32_t y[16];
    model_ws *ws = model_ws_create(m, n);
    CU_ASSERT_FATAL(params && grad && g2 && pd && ws && n <= 16 && m->in <= 64);
    model_init_params(m, params, seed);
    /* non-zero biases (and logreg weights) so every parameter matters */
    fill_uniform(g2, (size_t)P, -0.5, 0.5, seed + 1);
    for (int64_t j = 0; j < P; j++) params[j] += g2[j];
    fill_uniform(x, (size_t)n * m->in, -1.5, 1.5, seed + 2);
    rng_t r = rng_stream(seed, 3, 0, RNG_SAMPLE);
    for (int32_t i = 0; i < n; i++) y[i] = (int32_t)rng_below(&r, (uint64_t)m->classes);
    for (int64_t j = 0; j < P; j++) pd[j] = params[j];

    /* garbage in grad: model_loss_grad must overwrite, not accumulate */
    for (int64_t j = 0; j < P; j++) grad[j] = 1e3f;
    const double loss = model_loss_grad(m, params, x, y, n, grad, ws);
    uint64_t mask0;
    const double want = ref_loss(m, pd, x, y, n, &mask0);
    CU_ASSERT_DOUBLE_EQUAL(loss, want, 1e-5 * fabs(want) + 1e-6);

    /* (2) every coordinate against the double reference */
    double worst2 = 0;
    for (int64_t j = 0; j < P; j++) {
        const double keep = pd[j], h = 1e-5;
        pd[j] = keep + h;
        const double lp = ref_loss(m, pd, x, y, n, NULL);
        pd[j] = keep - h;
        const double lm = ref_loss(m, pd, x, y, n, NULL);
        pd[j] = keep;
        const double fd = (lp - lm) / (2 * h) / n;
        const double err = fabs(grad[j] - fd) / fmax(fmax(fabs(grad[j]), fabs(fd)), 1e-3);
        if (err > worst2) worst2 = err;
    }
    CU_ASSERT(worst2 < 1e-3);

    /* (3) random coordinates against float central differences of model_loss_grad */
    int checked = 0;
    double worst3 = 0;
    for (int t = 0; t < 40; t++) {
        const int64_t j = (int64_t)rng_below(&r, (uint64_t)P);
        const float keep = params[j];
        const float hi = keep + 1e-2f, lo = keep - 1e-2f;
        uint64_t mp, mm;
        pd[j] = hi;
        ref_loss(m, pd, x, y, n, &mp);
        pd[j] = lo;
        ref_loss(m, pd, x, y, n, &mm);
        pd[j] = keep;
        if (mp != mask0 || mm != mask0) continue; /* crosses a ReLU kink: FD meaningless */
        params[j] = hi;
        const double lp = model_loss_grad(m, params, x, y, n, g2, ws);
        params[j] = lo;
        const double lm = model_loss_grad(m, params, x, y, n, g2, ws);
        params[j] = keep;
        const double fd = (lp - lm) / ((double)hi - (double)lo) / n;
        const double err = fabs(grad[j] - fd) / fmax(fmax(fabs(grad[j]), fabs(fd)), 1e-2);
        if (err > worst3) worst3 = err;
        checked++;
    }
    CU_ASSERT(checked >= 30);
    CU_ASSERT(worst3 < 1e-2);

    model_ws_free(ws);
    free(params);
    free(grad);
    free(g2);
    free(pd);
}

/* ---- types and shapes ------------------------------------------------------------------- */

static void test_parse_type(void)
{
    model_type t;
    CU_ASSERT_EQUAL(model_parse_type("logreg", &t), FH_OK);
    CU_ASSERT_EQUAL(t, MODEL_LOGREG);
    CU_ASSERT_EQUAL(model_parse_type("mlp", &t), FH_OK);
    CU_ASSERT_EQUAL(t, MODEL_MLP);
    CU_ASSERT_EQUAL(model_parse_type("rnn", &t), FH_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), "rnn"));
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), "logreg, mlp"));
    CU_ASSERT_EQUAL(model_parse_type("MLP", &t), FH_EINPUT);
    CU_ASSERT_STRING_EQUAL(model_type_name(MODEL_LOGREG), "logreg");
    CU_ASSERT_STRING_EQUAL(model_type_name(MODEL_MLP), "mlp");
}

static void test_shapes(void)
{
    model_t m;
    /* binary logreg: one sigmoid logit, in + 1 parameters; nhidden ignored */
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_LOGREG, 20, 2, NULL, 5), FH_OK);
    CU_ASSERT_EQUAL(m.nlayers, 1);
    CU_ASSERT_EQUAL(m.fan_in[0], 20);
    CU_ASSERT_EQUAL(m.fan_out[0], 1);
    CU_ASSERT_EQUAL(m.w_off[0], 0);
    CU_ASSERT_EQUAL(m.b_off[0], 20);
    CU_ASSERT_EQUAL(m.nparams, 21);
    CU_ASSERT_PTR_NULL(m.class_weight);

    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_LOGREG, 784, 10, NULL, 0), FH_OK);
    CU_ASSERT_EQUAL(m.fan_out[0], 10);
    CU_ASSERT_EQUAL(m.b_off[0], 7840);
    CU_ASSERT_EQUAL(m.nparams, 7850);

    const int32_t h[2] = {200, 200};
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_MLP, 784, 10, h, 2), FH_OK);
    CU_ASSERT_EQUAL(m.nlayers, 3);
    const int32_t fi[3] = {784, 200, 200}, fo[3] = {200, 200, 10};
    const int64_t wo[3] = {0, 157000, 197200}, bo[3] = {156800, 197000, 199200};
    for (int l = 0; l < 3; l++) {
        CU_ASSERT_EQUAL(m.fan_in[l], fi[l]);
        CU_ASSERT_EQUAL(m.fan_out[l], fo[l]);
        CU_ASSERT_EQUAL(m.w_off[l], wo[l]);
        CU_ASSERT_EQUAL(m.b_off[l], bo[l]);
    }
    CU_ASSERT_EQUAL(m.nparams, 199210);

    /* mlp keeps a 2-unit softmax for binary tasks */
    const int32_t h1[1] = {3};
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_MLP, 4, 2, h1, 1), FH_OK);
    CU_ASSERT_EQUAL(m.fan_out[1], 2);
    CU_ASSERT_EQUAL(m.nparams, 4 * 3 + 3 + 3 * 2 + 2);

    const int32_t bad[2] = {5, 0};
    int32_t many[MODEL_MAX_LAYERS];
    for (int i = 0; i < MODEL_MAX_LAYERS; i++) many[i] = 2;
    CU_ASSERT_EQUAL(model_create(&m, MODEL_LOGREG, 0, 2, NULL, 0), FH_EINPUT);
    CU_ASSERT_EQUAL(model_create(&m, MODEL_LOGREG, 3, 1, NULL, 0), FH_EINPUT);
    CU_ASSERT_EQUAL(model_create(&m, MODEL_MLP, 3, 2, h, 0), FH_EINPUT);
    CU_ASSERT_EQUAL(model_create(&m, MODEL_MLP, 3, 2, NULL, 1), FH_EINPUT);
    CU_ASSERT_EQUAL(model_create(&m, MODEL_MLP, 3, 2, bad, 2), FH_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), "width 0"));
    CU_ASSERT_EQUAL(model_create(&m, MODEL_MLP, 3, 2, many, MODEL_MAX_LAYERS), FH_EINPUT);
    CU_ASSERT_EQUAL(model_create(&m, MODEL_MLP, 3, 2, many, MODEL_MAX_LAYERS - 1), FH_OK);
    CU_ASSERT_EQUAL(m.nlayers, MODEL_MAX_LAYERS);
}

/* ---- initialisation --------------------------------------------------------------------- */

static void test_init_deterministic(void)
{
    const int32_t h[2] = {50, 30};
    model_t m;
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_MLP, 40, 5, h, 2), FH_OK);
    const size_t P = (size_t)m.nparams;
    float *a = malloc(P * sizeof *a), *b = malloc(P * sizeof *b), *c = malloc(P * sizeof *c);
    CU_ASSERT_FATAL(a && b && c);
    memset(b, 0xff, P * sizeof *b);
    model_init_params(&m, a, 7);
    model_init_params(&m, b, 7);
    model_init_params(&m, c, 8);
    CU_ASSERT_EQUAL(memcmp(a, b, P * sizeof *a), 0);
    size_t same = 0;
    for (size_t j = 0; j < P; j++) same += a[j] == c[j];
    CU_ASSERT(same < P / 10 + 1); /* only the zero biases agree */

    /* He-uniform bound for hidden layers, Glorot for the output, zero biases */
    for (int32_t l = 0; l < m.nlayers; l++) {
        const double fi = m.fan_in[l], fo = m.fan_out[l];
        const double lim = l == m.nlayers - 1 ? sqrt(6 / (fi + fo)) : sqrt(6 / fi);
        const int64_t nw = (int64_t)m.fan_in[l] * m.fan_out[l];
        double mx = 0, sum = 0, sq = 0;
        for (int64_t j = 0; j < nw; j++) {
            const double w = a[m.w_off[l] + j];
            mx = fmax(mx, fabs(w));
            sum += w;
            sq += w * w;
        }
        CU_ASSERT(mx <= lim);
        CU_ASSERT(mx > 0.95 * lim);
        CU_ASSERT(fabs(sum / nw) < 0.1 * lim);
        CU_ASSERT_DOUBLE_EQUAL(sq / nw, lim * lim / 3, 0.15 * lim * lim / 3); /* var of U(-a,a) */
        for (int32_t k = 0; k < m.fan_out[l]; k++) CU_ASSERT_EQUAL(a[m.b_off[l] + k], 0.0f);
    }
    /* the first number of the RNG_INIT stream is the first weight */
    rng_t r = rng_stream(7, 0, 0, RNG_INIT);
    CU_ASSERT_EQUAL(a[0], (float)((2 * rng_uniform(&r) - 1) * sqrt(6.0 / 40)));

    /* logreg: all zeros */
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_LOGREG, 40, 5, NULL, 0), FH_OK);
    model_init_params(&m, a, 7);
    for (int64_t j = 0; j < m.nparams; j++) CU_ASSERT_EQUAL(a[j], 0.0f);
    free(a);
    free(b);
    free(c);
}

/* ---- gradients -------------------------------------------------------------------------- */

static void test_grad_mlp(void)
{
    const int32_t h[2] = {4, 3};
    model_t m;
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_MLP, 5, 3, h, 2), FH_OK);
    check_gradient(&m, 7, 11);
    const float cw[3] = {0.5f, 2.0f, 1.25f};
    m.class_weight = cw;
    check_gradient(&m, 7, 12);
}

static void test_grad_mlp_binary_deep(void)
{
    const int32_t h[3] = {6, 5, 4};
    model_t m;
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_MLP, 4, 2, h, 3), FH_OK);
    check_gradient(&m, 9, 21);
}

static void test_grad_logreg(void)
{
    model_t m;
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_LOGREG, 5, 2, NULL, 0), FH_OK);
    check_gradient(&m, 7, 31);
    const float cw2[2] = {3.0f, 0.75f};
    m.class_weight = cw2;
    check_gradient(&m, 7, 32);

    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_LOGREG, 5, 4, NULL, 0), FH_OK);
    check_gradient(&m, 7, 33);
    const float cw4[4] = {1.0f, 0.2f, 4.0f, 1.5f};
    m.class_weight = cw4;
    check_gradient(&m, 7, 34);
}

static void test_loss_extreme_logits_finite(void)
{
    /* huge logits: log-sum-exp and the stable softplus keep loss and gradient finite */
    model_t m;
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_LOGREG, 1, 2, NULL, 0), FH_OK);
    float p[2] = {1000.0f, 0.0f}, g[2], x[2] = {1.0f, -1.0f};
    int32_t y[2] = {0, 0};
    model_ws *ws = model_ws_create(&m, 2);
    CU_ASSERT_FATAL(ws != NULL);
    double loss = model_loss_grad(&m, p, x, y, 2, g, ws);
    CU_ASSERT_DOUBLE_EQUAL(loss, 1000.0, 1e-3); /* row 1: z = 1000, y = 0; row 2: ~0 */
    CU_ASSERT_DOUBLE_EQUAL(g[0], 0.5, 1e-6);    /* mean of (1 - 0) * 1 and (0 - 0) * -1 */
    CU_ASSERT_DOUBLE_EQUAL(g[1], 0.5, 1e-6);
    model_ws_free(ws);

    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_LOGREG, 1, 3, NULL, 0), FH_OK);
    float p3[6] = {500.0f, -500.0f, 0.0f, 0.0f, 0.0f, 0.0f}, g3[6], probs[3];
    ws = model_ws_create(&m, 1);
    CU_ASSERT_FATAL(ws != NULL);
    loss = model_loss_grad(&m, p3, x, y + 0, 1, g3, ws); /* z = {500, -500, 0}, y = 0 */
    CU_ASSERT_DOUBLE_EQUAL(loss, 0.0, 1e-6);
    int32_t y1 = 1;
    loss = model_loss_grad(&m, p3, x, &y1, 1, g3, ws);
    CU_ASSERT_DOUBLE_EQUAL(loss, 1000.0, 1e-2);
    for (int j = 0; j < 6; j++) CU_ASSERT(isfinite(g3[j]));
    model_predict(&m, p3, x, 1, probs, ws);
    CU_ASSERT_DOUBLE_EQUAL(probs[0], 1.0, 1e-7);
    CU_ASSERT_EQUAL(probs[1], 0.0f);
    model_ws_free(ws);
}

/* ---- training --------------------------------------------------------------------------- */

/* n rows of 2-D points around `classes` well separated centres. */
static void make_blobs(float *x, int32_t *y, int32_t n, int32_t classes, uint64_t seed)
{
    rng_t r = rng_stream(seed, 5, 0, RNG_SAMPLE);
    for (int32_t i = 0; i < n; i++) {
        const int32_t c = i % classes;
        const double ang = 6.283185307179586 * c / classes;
        x[2 * i] = (float)(2.5 * cos(ang) + 0.4 * rng_normal(&r));
        x[2 * i + 1] = (float)(2.5 * sin(ang) + 0.4 * rng_normal(&r));
        y[i] = c;
    }
}

/* Full-batch gradient descent for `steps` steps; returns the final mean loss. */
static double train(const model_t *m, float *params, const float *x, const int32_t *y, int32_t n,
                    int steps, float lr, double *first)
{
    float *g = malloc((size_t)m->nparams * sizeof *g);
    model_ws *ws = model_ws_create(m, n);
    CU_ASSERT_FATAL(g && ws);
    double loss = 0;
    for (int s = 0; s < steps; s++) {
        loss = model_loss_grad(m, params, x, y, n, g, ws) / n;
        if (s == 0) *first = loss;
        for (int64_t j = 0; j < m->nparams; j++) params[j] -= lr * g[j];
    }
    loss = model_loss_grad(m, params, x, y, n, g, ws) / n;
    model_ws_free(ws);
    free(g);
    return loss;
}

static void test_sgd_reduces_loss(void)
{
    enum { N = 90 };
    float x[2 * N];
    int32_t y[N];
    make_blobs(x, y, N, 3, 1);
    const int32_t h[1] = {8};
    model_t m;
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_MLP, 2, 3, h, 1), FH_OK);
    float *p = malloc((size_t)m.nparams * sizeof *p);
    CU_ASSERT_FATAL(p != NULL);
    model_init_params(&m, p, 3);
    double first, last = train(&m, p, x, y, N, 300, 0.3f, &first);
    CU_ASSERT(first > 0.5);
    CU_ASSERT(last < 0.05);
    model_ws *ws = model_ws_create(&m, 16);
    metrics_t mt;
    CU_ASSERT_EQUAL(model_evaluate(&m, p, x, y, N, ws, 16, &mt), FH_OK);
    CU_ASSERT_DOUBLE_EQUAL(mt.accuracy, 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(mt.f1, 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(mt.loss, last, 1e-5);
    CU_ASSERT(isnan(mt.auc));
    model_ws_free(ws);
    free(p);

    /* binary logistic regression from zeros */
    make_blobs(x, y, N, 2, 2);
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_LOGREG, 2, 2, NULL, 0), FH_OK);
    float q[3];
    model_init_params(&m, q, 3);
    last = train(&m, q, x, y, N, 300, 0.5f, &first);
    CU_ASSERT_DOUBLE_EQUAL(first, log(2.0), 1e-6);
    CU_ASSERT(last < 0.05);
}

/* ---- prediction ------------------------------------------------------------------------- */

static void test_predict(void)
{
    /* binary logreg by hand: z = 1*x0 - 2*x1 + 0.5 */
    model_t m;
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_LOGREG, 2, 2, NULL, 0), FH_OK);
    const float p[3] = {1.0f, -2.0f, 0.5f}, x[4] = {1.0f, 1.0f, 0.0f, -1.0f};
    float probs[4];
    model_ws *ws = model_ws_create(&m, 2);
    CU_ASSERT_FATAL(ws != NULL);
    model_predict(&m, p, x, 2, probs, ws);
    CU_ASSERT_DOUBLE_EQUAL(probs[1], 1 / (1 + exp(0.5)), 1e-6);  /* z = -0.5 */
    CU_ASSERT_DOUBLE_EQUAL(probs[0], 1 - 1 / (1 + exp(0.5)), 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(probs[3], 1 / (1 + exp(-2.5)), 1e-6); /* z = 2.5 */
    CU_ASSERT_DOUBLE_EQUAL(probs[2], 1 - 1 / (1 + exp(-2.5)), 1e-6);
    model_ws_free(ws);

    /* mlp: rows sum to 1, and more rows than the ws holds give the same numbers */
    const int32_t h[2] = {16, 8};
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_MLP, 6, 4, h, 2), FH_OK);
    float *pm = malloc((size_t)m.nparams * sizeof *pm), xs[37 * 6], pa[37 * 4], pb[37 * 4];
    CU_ASSERT_FATAL(pm != NULL);
    model_init_params(&m, pm, 5);
    fill_uniform(xs, 37 * 6, -1, 1, 6);
    model_ws *big = model_ws_create(&m, 37), *small = model_ws_create(&m, 5);
    CU_ASSERT_FATAL(big && small);
    model_predict(&m, pm, xs, 37, pa, big);
    model_predict(&m, pm, xs, 37, pb, small);
    for (int i = 0; i < 37; i++) {
        double s = 0;
        for (int k = 0; k < 4; k++) {
            s += pa[i * 4 + k];
            CU_ASSERT(pa[i * 4 + k] > 0.0f && pa[i * 4 + k] < 1.0f);
            CU_ASSERT_DOUBLE_EQUAL(pa[i * 4 + k], pb[i * 4 + k], 1e-6);
        }
        CU_ASSERT_DOUBLE_EQUAL(s, 1.0, 1e-6);
    }
    /* a loss_grad with more rows than the ws holds is refused with NaN and a zero gradient */
    int32_t ys[37] = {0};
    float *g = malloc((size_t)m.nparams * sizeof *g);
    CU_ASSERT_FATAL(g != NULL);
    CU_ASSERT(isnan(model_loss_grad(&m, pm, xs, ys, 37, g, small)));
    CU_ASSERT_EQUAL(g[0], 0.0f);
    ys[3] = 4; /* label out of range */
    CU_ASSERT(isnan(model_loss_grad(&m, pm, xs, ys, 37, g, big)));
    CU_ASSERT_DOUBLE_EQUAL(model_loss_grad(&m, pm, xs, ys, 0, g, big), 0.0, 0.0);
    model_ws_free(big);
    model_ws_free(small);
    free(pm);
    free(g);
}

/* ---- metrics ---------------------------------------------------------------------------- */

static void test_metrics_multiclass(void)
{
    /* 4 classes, class 3 never appears nor is predicted (left out of macro-F1).
     * y     = 0 0 0 1 1 2
     * pred  = 0 0 1 1 2 2      confusion: TP/FP/FN  c0 2/0/1, c1 1/1/1, c2 1/1/0
     * F1 = (4/5 + 2/4 + 2/3) / 3;  accuracy 4/6 */
    const float probs[6 * 4] = {
        0.7f, 0.1f, 0.1f, 0.1f, /* pred 0, y 0: p_y 0.7 */
        0.4f, 0.3f, 0.2f, 0.1f, /* pred 0, y 0: p_y 0.4 */
        0.2f, 0.5f, 0.2f, 0.1f, /* pred 1, y 0: p_y 0.2 */
        0.1f, 0.6f, 0.2f, 0.1f, /* pred 1, y 1: p_y 0.6 */
        0.0f, 0.0f, 1.0f, 0.0f, /* pred 2, y 1: p_y 0 -> clamped to 1e-12 */
        0.3f, 0.1f, 0.5f, 0.1f, /* pred 2, y 2: p_y 0.5 */
    };
    const int32_t y[6] = {0, 0, 0, 1, 1, 2};
    metrics_t mt;
    CU_ASSERT_EQUAL_FATAL(metrics_eval(probs, y, 6, 4, &mt), FH_OK);
    CU_ASSERT_DOUBLE_EQUAL(mt.accuracy, 4.0 / 6.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(mt.f1, (0.8 + 0.5 + 2.0 / 3.0) / 3.0, 1e-12);
    const double want = -(log(0.7f) + log(0.4f) + log(0.2f) + log(0.6f) + log(1e-12) + log(0.5f)) / 6;
    CU_ASSERT_DOUBLE_EQUAL(mt.loss, want, 1e-9);
    CU_ASSERT(isnan(mt.auc));

    /* argmax ties go to the lowest index */
    const float tie[2 * 3] = {0.4f, 0.4f, 0.2f, 0.2f, 0.4f, 0.4f};
    const int32_t yt[2] = {1, 2};
    CU_ASSERT_EQUAL_FATAL(metrics_eval(tie, yt, 2, 3, &mt), FH_OK);
    CU_ASSERT_DOUBLE_EQUAL(mt.accuracy, 0.0, 1e-12);
    /* predicted 0 and 1; true 1 and 2: every class has F1 0 */
    CU_ASSERT_DOUBLE_EQUAL(mt.f1, 0.0, 1e-12);
    const int32_t yt2[2] = {0, 1};
    CU_ASSERT_EQUAL_FATAL(metrics_eval(tie, yt2, 2, 3, &mt), FH_OK);
    CU_ASSERT_DOUBLE_EQUAL(mt.accuracy, 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(mt.f1, 1.0, 1e-12);

    /* bad input */
    CU_ASSERT_EQUAL(metrics_eval(probs, y, 0, 4, &mt), FH_EINPUT);
    const int32_t ybad[2] = {0, 3};
    CU_ASSERT_EQUAL(metrics_eval(tie, ybad, 2, 3, &mt), FH_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), "label 3"));
}

/* probs [n, 2] with p(class 1) = s[i] */
static void binary_probs(const float *s, int n, float *probs)
{
    for (int i = 0; i < n; i++) {
        probs[2 * i] = 1.0f - s[i];
        probs[2 * i + 1] = s[i];
    }
}

static void test_metrics_auc(void)
{
    float probs[2 * 8];
    metrics_t mt;
    /* positives 0.35, 0.8; negatives 0.1, 0.4: 3 of 4 pairs ordered */
    const float s1[4] = {0.1f, 0.4f, 0.35f, 0.8f};
    const int32_t y1[4] = {0, 0, 1, 1};
    binary_probs(s1, 4, probs);
    CU_ASSERT_EQUAL_FATAL(metrics_eval(probs, y1, 4, 2, &mt), FH_OK);
    CU_ASSERT_DOUBLE_EQUAL(mt.auc, 0.75, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(mt.accuracy, 0.75, 1e-12); /* 0.35 -> class 0 */
    /* class 0: TP 2 FP 1 FN 0 -> 4/5; class 1: TP 1 FP 0 FN 1 -> 2/3 */
    CU_ASSERT_DOUBLE_EQUAL(mt.f1, (0.8 + 2.0 / 3.0) / 2, 1e-12);

    /* ties: positives {0.5, 0.9, 0.5}, negatives {0.5, 0.2, 0.5}
     * pairs: 0.5 vs {0.5, 0.2, 0.5} = 0.5 + 1 + 0.5 = 2 (twice), 0.9 -> 3; U = 7 of 9 */
    const float s2[6] = {0.5f, 0.5f, 0.9f, 0.2f, 0.5f, 0.5f};
    const int32_t y2[6] = {1, 0, 1, 0, 0, 1};
    binary_probs(s2, 6, probs);
    CU_ASSERT_EQUAL_FATAL(metrics_eval(probs, y2, 6, 2, &mt), FH_OK);
    CU_ASSERT_DOUBLE_EQUAL(mt.auc, 7.0 / 9.0, 1e-12);

    /* all scores equal: 0.5; perfectly reversed: 0 */
    const float s3[4] = {0.3f, 0.3f, 0.3f, 0.3f};
    binary_probs(s3, 4, probs);
    CU_ASSERT_EQUAL_FATAL(metrics_eval(probs, y1, 4, 2, &mt), FH_OK);
    CU_ASSERT_DOUBLE_EQUAL(mt.auc, 0.5, 1e-12);
    const float s4[4] = {0.9f, 0.8f, 0.2f, 0.1f};
    binary_probs(s4, 4, probs);
    CU_ASSERT_EQUAL_FATAL(metrics_eval(probs, y1, 4, 2, &mt), FH_OK);
    CU_ASSERT_DOUBLE_EQUAL(mt.auc, 0.0, 1e-12);

    /* one class present: AUC undefined */
    const int32_t y5[4] = {1, 1, 1, 1};
    CU_ASSERT_EQUAL_FATAL(metrics_eval(probs, y5, 4, 2, &mt), FH_OK);
    CU_ASSERT(isnan(mt.auc));
    CU_ASSERT_DOUBLE_EQUAL(mt.accuracy, 0.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(mt.f1, (0.0 + 2.0 / 3.0) / 2, 1e-12); /* class 0: FP 2 -> F1 0 */
}

static void test_evaluate_matches_metrics_eval(void)
{
    enum { N = 103 };
    float x[N * 6], probs[N * 5];
    int32_t y[N];
    fill_uniform(x, N * 6, -2, 2, 41);
    rng_t r = rng_stream(42, 0, 0, RNG_SAMPLE);
    const int32_t h[1] = {7};
    const int32_t classes[3] = {2, 5, 2};
    const model_type types[3] = {MODEL_LOGREG, MODEL_MLP, MODEL_MLP};
    for (int c = 0; c < 3; c++) {
        model_t m;
        CU_ASSERT_EQUAL_FATAL(model_create(&m, types[c], 6, classes[c], h, 1), FH_OK);
        float *p = malloc((size_t)m.nparams * sizeof *p);
        CU_ASSERT_FATAL(p != NULL);
        model_init_params(&m, p, 9);
        fill_uniform(p, (size_t)m.nparams, -0.6, 0.6, 43 + c); /* logreg would be all zero */
        for (int i = 0; i < N; i++) y[i] = (int32_t)rng_below(&r, (uint64_t)classes[c]);
        model_ws *all = model_ws_create(&m, N), *ws = model_ws_create(&m, 16);
        CU_ASSERT_FATAL(all && ws);
        model_predict(&m, p, x, N, probs, all);
        metrics_t want, got;
        CU_ASSERT_EQUAL_FATAL(metrics_eval(probs, y, N, classes[c], &want), FH_OK);
        CU_ASSERT_EQUAL_FATAL(model_evaluate(&m, p, x, y, N, ws, 16, &got), FH_OK);
        CU_ASSERT_DOUBLE_EQUAL(got.loss, want.loss, 1e-6);
        CU_ASSERT_DOUBLE_EQUAL(got.accuracy, want.accuracy, 1e-12);
        CU_ASSERT_DOUBLE_EQUAL(got.f1, want.f1, 1e-12);
        if (classes[c] == 2) {
            CU_ASSERT_DOUBLE_EQUAL(got.auc, want.auc, 1e-9);
            CU_ASSERT(want.auc > 0.0 && want.auc < 1.0);
        } else {
            CU_ASSERT(isnan(got.auc) && isnan(want.auc));
        }
        CU_ASSERT(want.accuracy > 0.0 && want.f1 > 0.0 && want.loss > 0.0);
        /* batch larger than n, and one row at a time */
        CU_ASSERT_EQUAL(model_evaluate(&m, p, x, y, N, all, N, &got), FH_OK);
        CU_ASSERT_DOUBLE_EQUAL(got.accuracy, want.accuracy, 1e-12);
        CU_ASSERT_EQUAL(model_evaluate(&m, p, x, y, N, ws, 1, &got), FH_OK);
        CU_ASSERT_DOUBLE_EQUAL(got.loss, want.loss, 1e-6);
        CU_ASSERT_DOUBLE_EQUAL(got.f1, want.f1, 1e-12);
        CU_ASSERT_EQUAL(model_evaluate(&m, p, x, y, 0, ws, 16, &got), FH_EINPUT);
        model_ws_free(all);
        model_ws_free(ws);
        free(p);
    }
}

/* model_sgd_step (fused kernels for <= 12 rows, else gradient + update) against
 * model_loss_grad followed by params -= lr * grad; and the small-batch forward against the
 * BLAS forward of a larger batch. Widths 33 and 17 exercise the masked column tails. */
static void test_sgd_step_matches_grad(void)
{
    const int32_t h[2] = {33, 17};
    struct { model_type t; int32_t in, classes, nh; } cases[] = {
        {MODEL_MLP, 37, 10, 2}, {MODEL_MLP, 37, 2, 2}, {MODEL_LOGREG, 37, 2, 0}, {MODEL_LOGREG, 50, 4, 0}};
    const int32_t ns[] = {1, 5, 10, 12, 13};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        model_t m;
        CU_ASSERT_EQUAL_FATAL(model_create(&m, cases[c].t, cases[c].in, cases[c].classes, h, cases[c].nh), FH_OK);
        const int64_t P = m.nparams;
        float *p0 = malloc((size_t)P * sizeof *p0), *a = malloc((size_t)P * sizeof *a),
              *b = malloc((size_t)P * sizeof *b), *g = malloc((size_t)P * sizeof *g),
              *x = malloc(13 * (size_t)m.in * sizeof *x), *pr = malloc(13 * (size_t)m.classes * sizeof *pr),
              *pr1 = malloc(13 * (size_t)m.classes * sizeof *pr1);
        int32_t y[13];
        model_ws *ws = model_ws_create(&m, 16);
        CU_ASSERT_PTR_NOT_NULL_FATAL(ws);
        model_init_params(&m, p0, 3 + c);
        fill_uniform(p0, (size_t)P, -0.3, 0.3, 40 + c); /* logreg starts at 0: use random weights */
        fill_uniform(x, 13 * (size_t)m.in, -1, 1, 50 + c);
        for (int i = 0; i < 13; i++) y[i] = (i * 7 + 3) % m.classes;
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++) {
            const int32_t n = ns[k];
            const float lr = 0.1f;
            memcpy(a, p0, (size_t)P * sizeof *a);
            const double la = model_sgd_step(&m, a, x, y, n, lr, g, ws);
            const double lb = model_loss_grad(&m, p0, x, y, n, g, ws);
            double err = 0, moved = 0;
            for (int64_t j = 0; j < P; j++) {
                b[j] = p0[j] - lr * g[j];
                err = fmax(err, fabs((double)a[j] - b[j]) / (1e-3 + fabs(b[j] - p0[j])));
                moved = fmax(moved, fabs((double)a[j] - p0[j]));
            }
            CU_ASSERT(moved > 1e-4);     /* the step did something                      */
            CU_ASSERT(err < 2e-3);       /* and the same thing, up to float rounding     */
            CU_ASSERT(fabs(la - lb) <= 1e-5 * (1 + fabs(lb)));
            /* deterministic: the same step twice gives the same bits */
            memcpy(b, p0, (size_t)P * sizeof *b);
            model_sgd_step(&m, b, x, y, n, lr, g, ws);
            CU_ASSERT(memcmp(a, b, (size_t)P * sizeof *a) == 0);
        }
        /* forward: rows 0..11 alone (kernels) vs as part of 13 rows (BLAS) */
        model_predict(&m, p0, x, 12, pr, ws);
        model_predict(&m, p0, x, 13, pr1, ws);
        double e = 0;
        for (int i = 0; i < 12 * m.classes; i++) e = fmax(e, fabs((double)pr[i] - pr1[i]));
        CU_ASSERT(e < 1e-5);
        /* a bad label leaves the parameters alone and returns NAN */
        memcpy(a, p0, (size_t)P * sizeof *a);
        int32_t ybad[3] = {0, m.classes, 1};
        CU_ASSERT(isnan(model_sgd_step(&m, a, x, ybad, 3, 0.1f, g, ws)));
        model_ws_free(ws);
        free(p0); free(a); free(b); free(g); free(x); free(pr); free(pr1);
    }
}

/* Credit study (docs/credit.md): minority-class F1, average precision and the decision
 * threshold, against values computed by hand. */
static void bin_probs(const double *p1, int n, float *probs)
{
    for (int i = 0; i < n; i++) {
        probs[2 * i] = (float)(1.0 - p1[i]);
        probs[2 * i + 1] = (float)p1[i];
    }
}

static void test_metrics_minority(void)
{
    float probs[16];
    metrics_t mt;
    /* minority = class 1 (2 of 6). argmax: rows 0-2 predicted 1: tp 2, fp 1, fn 0 -> F1 4/5.
     * AP: 0.9 (pos) R .5 P 1; 0.8 (neg); 0.6 (pos) R 1 P 2/3 -> .5 + .5 * 2/3 = 5/6.
     * thresholds: .1 -> 1/2, .3 -> 4/7, .4 -> 2/3, .6 -> 4/5, .8 -> 1/2, .9 -> 2/3: best .6.
     * at t = .85: only row 0 is class 1: F1(1) = 2/3, F1(0) = 8/9 (tn 4, fn 1), macro 7/9. */
    const double p1[6] = {0.9, 0.8, 0.6, 0.4, 0.3, 0.1};
    const int32_t y[6] = {1, 0, 1, 0, 0, 0};
    bin_probs(p1, 6, probs);
    CU_ASSERT_EQUAL_FATAL(metrics_eval_at(probs, y, 6, 2, 0.85, &mt), FH_OK);
    CU_ASSERT_DOUBLE_EQUAL(mt.f1_minority, 0.8, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(mt.pr_auc, 5.0 / 6.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(mt.thr_best, (double)(float)0.6, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(mt.threshold, 0.85, 0);
    CU_ASSERT_DOUBLE_EQUAL(mt.f1_minority_thr, 2.0 / 3.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(mt.f1_thr, 7.0 / 9.0, 1e-12);
    /* without a threshold: the threshold fields are NAN, the rest the same */
    CU_ASSERT_EQUAL_FATAL(metrics_eval(probs, y, 6, 2, &mt), FH_OK);
    CU_ASSERT(isnan(mt.threshold) && isnan(mt.f1_minority_thr) && isnan(mt.f1_thr));
    CU_ASSERT_DOUBLE_EQUAL(mt.f1_minority, 0.8, 1e-12);
    /* minority = class 0 (1 of 4), scored by p(class 0): argmax predicts 0 for rows 0, 2:
     * tp 1, fp 1 -> F1 2/3; AP: row 0 comes first, R 1 P 1 -> 1; best threshold on p1: .4
     * (class 0 iff p1 < t: .2 -> 0, .4 -> 1, .6 -> 2/3, .9 -> 1/2) */
    const double q1[4] = {0.2, 0.6, 0.4, 0.9};
    const int32_t y2[4] = {0, 1, 1, 1};
    bin_probs(q1, 4, probs);
    CU_ASSERT_EQUAL_FATAL(metrics_eval_at(probs, y2, 4, 2, 0.5, &mt), FH_OK);
    CU_ASSERT_DOUBLE_EQUAL(mt.f1_minority, 2.0 / 3.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(mt.pr_auc, 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(mt.thr_best, (double)(float)0.4, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(mt.f1_minority_thr, 2.0 / 3.0, 1e-12); /* t .5: rows 0, 2 -> class 0 */
    /* tied scores are one step: AP = 1/2 */
    const double t1[2] = {0.5, 0.5};
    const int32_t y3[2] = {1, 0};
    bin_probs(t1, 2, probs);
    CU_ASSERT_EQUAL_FATAL(metrics_eval(probs, y3, 2, 2, &mt), FH_OK);
    CU_ASSERT_DOUBLE_EQUAL(mt.pr_auc, 0.5, 1e-12);
    /* one class present, or more than two classes: NAN */
    const int32_t y4[2] = {1, 1};
    CU_ASSERT_EQUAL_FATAL(metrics_eval_at(probs, y4, 2, 2, 0.5, &mt), FH_OK);
    CU_ASSERT(isnan(mt.f1_minority) && isnan(mt.pr_auc) && isnan(mt.thr_best) && isnan(mt.f1_minority_thr));
    const float p3[6] = {0.2f, 0.3f, 0.5f, 0.6f, 0.3f, 0.1f};
    const int32_t y5[2] = {2, 0};
    CU_ASSERT_EQUAL_FATAL(metrics_eval(p3, y5, 2, 3, &mt), FH_OK);
    CU_ASSERT(isnan(mt.f1_minority) && isnan(mt.pr_auc));
    /* model_eval with a threshold gives metrics_eval_at's numbers */
    model_t m;
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_LOGREG, 3, 2, NULL, 0), FH_OK);
    float params[4] = {0.7f, -1.1f, 0.4f, 0.05f}, x[24];
    int32_t yy[8];
    for (int i = 0; i < 24; i++) x[i] = (float)((i * 37) % 11) / 5.0f - 1.0f;
    for (int i = 0; i < 8; i++) yy[i] = (i * 5) % 3 == 0;
    model_ws *ws = model_ws_create(&m, 4);
    float pr[16];
    model_predict(&m, params, x, 4, pr, ws);
    model_predict(&m, params, x + 12, 4, pr + 8, ws);
    metrics_t want, got;
    CU_ASSERT_EQUAL_FATAL(metrics_eval_at(pr, yy, 8, 2, 0.45, &want), FH_OK);
    model_eval *e;
    CU_ASSERT_EQUAL_FATAL(model_eval_begin(&m, 8, 4, &e), FH_OK);
    model_eval_set_threshold(e, 0.45);
    CU_ASSERT_EQUAL_FATAL(model_eval_add(e, params, x, yy, 8, ws), FH_OK);
    CU_ASSERT_EQUAL_FATAL(model_eval_end(e, &got), FH_OK);
    CU_ASSERT(memcmp(&want, &got, sizeof want) == 0);
    model_ws_free(ws);
}

void tests_register_model(void)
{
    CU_pSuite s = CU_add_suite("model", NULL, NULL);
    tests_add(s, "parse_type", test_parse_type);
    tests_add(s, "shapes", test_shapes);
    tests_add(s, "init_deterministic", test_init_deterministic);
    tests_add(s, "grad_mlp", test_grad_mlp);
    tests_add(s, "grad_mlp_binary_deep", test_grad_mlp_binary_deep);
    tests_add(s, "grad_logreg", test_grad_logreg);
    tests_add(s, "loss_extreme_logits_finite", test_loss_extreme_logits_finite);
    tests_add(s, "sgd_reduces_loss", test_sgd_reduces_loss);
    tests_add(s, "predict", test_predict);
    tests_add(s, "sgd_step_matches_grad", test_sgd_step_matches_grad);
    tests_add(s, "metrics_multiclass", test_metrics_multiclass);
    tests_add(s, "metrics_auc", test_metrics_auc);
    tests_add(s, "evaluate_matches_metrics_eval", test_evaluate_matches_metrics_eval);
    tests_add(s, "metrics_minority", test_metrics_minority);
}
