/* Unit tests of the gradient-leakage room (include/fedhpc/leakage.h): the double backward
 * against central finite differences, the double-precision gradient against the engine's
 * model_loss_grad, the closed-form attacks, the metrics and the PNG writer; the same two checks
 * for the CNN (src/model/dgrad_cnn.c). */
#include "fedhpc/leakage.h"
#include "fedhpc/rng.h"
#include "tests.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A model with random (not zero) parameters, so every layer matters. */
static float *rand_params(const model_t *m, uint64_t seed, double scale)
{
    float *p = malloc((size_t)m->nparams * sizeof *p);
    rng_t r = rng_stream(seed, 7, 0, RNG_LEAKAGE);
    for (int64_t j = 0; j < m->nparams; j++) p[j] = (float)(scale * rng_normal(&r));
    return p;
}

static void rand_fill(double *a, size_t n, uint64_t seed, uint64_t id)
{
    rng_t r = rng_stream(seed, id, 1, RNG_LEAKAGE);
    for (size_t i = 0; i < n; i++) a[i] = rng_normal(&r);
}

/* The three dense shapes: a 2-hidden-layer MLP, multinomial and binary logistic regression. */
static void make_model(int which, model_t *m)
{
    const int32_t hid[2] = {7, 5};
    fh_status st = which == 0   ? model_create(m, MODEL_MLP, 6, 4, hid, 2)
                   : which == 1 ? model_create(m, MODEL_LOGREG, 6, 3, NULL, 0)
                                : model_create(m, MODEL_LOGREG, 6, 2, NULL, 0);
    CU_ASSERT_FATAL(st == FH_OK);
}

/* leakage_net_grad agrees with the engine's float gradient (same loss, same layout). */
static void test_grad_matches_engine(void)
{
    for (int which = 0; which < 3; which++) {
        model_t m;
        make_model(which, &m);
        const int32_t n = 3;
        float *p = rand_params(&m, 11 + which, 0.5);
        double xd[18];
        float xf[18];
        rand_fill(xd, 18, 3, which);
        for (int i = 0; i < 18; i++) xf[i] = (float)xd[i];
        for (int i = 0; i < 18; i++) xd[i] = xf[i];
        int32_t y[3] = {0, 1, m.classes - 1};
        leakage_net *net = leakage_net_create(&m, p, n);
        CU_ASSERT_FATAL(net != NULL);
        double *g = malloc((size_t)m.nparams * sizeof *g);
        float *gf = malloc((size_t)m.nparams * sizeof *gf);
        model_ws *ws = model_ws_create(&m, n);
        const double l1 = leakage_net_grad(net, xd, y, NULL, n, g);
        const double l2 = model_loss_grad(&m, p, xf, y, n, gf, ws);
        CU_ASSERT_DOUBLE_EQUAL(l1, l2, 1e-4 * (1 + fabs(l2)));
        double err = 0, mx = 0;
        for (int64_t j = 0; j < m.nparams; j++) {
            err = fmax(err, fabs(g[j] - gf[j]));
            mx = fmax(mx, fabs(g[j]));
        }
        CU_ASSERT(mx > 1e-3);
        CU_ASSERT(err <= 1e-5 * (1 + mx));
        model_ws_free(ws);
        free(g);
        free(gf);
        free(p);
        leakage_net_free(net);
    }
}

/* phi(x, Y) = <v, g(x, Y)> */
static double phi(leakage_net *net, const model_t *m, const double *x, const int32_t *y,
                  const double *ys, int32_t n, const double *v, double *g)
{
    leakage_net_grad(net, x, y, ys, n, g);
    double s = 0;
    for (int64_t j = 0; j < m->nparams; j++) s += v[j] * g[j];
    return s;
}

/* The objective a finite-difference check perturbs: phi, or the matching loss of the attack. */
typedef struct {
    leakage_net *net;
    const model_t *m;
    const double *x, *ys, *v, *t; /* t: the attack's target (match); NULL: phi              */
    const int32_t *y;
    const uint8_t *mask;
    int32_t n, kind;
    double *g, *vout;
} fd_ctx;

static double fd_objective(const fd_ctx *c)
{
    if (!c->t) return phi(c->net, c->m, c->x, c->y, c->ys, c->n, c->v, c->g);
    leakage_net_grad(c->net, c->x, c->y, NULL, c->n, c->g);
    return leakage_match(c->kind, c->g, c->t, c->mask, c->m->nparams, c->vout);
}

/* Central differences (step h) of the objective along each of z[k] (a buffer the context
 * reads) against the analytic derivative an[k]: the largest error; *fd_max and *an_max (may be
 * NULL) receive the largest |difference| and |an|. */
static double fd_check(const fd_ctx *c, double *z, int32_t k, const double *an, double h, double *fd_max,
                       double *an_max)
{
    double err = 0, mf = 0, ma = 0;
    for (int32_t j = 0; j < k; j++) {
        const double z0 = z[j];
        z[j] = z0 + h;
        const double fp = fd_objective(c);
        z[j] = z0 - h;
        const double fm = fd_objective(c);
        z[j] = z0;
        const double fd = (fp - fm) / (2 * h);
        err = fmax(err, fabs(fd - an[j]));
        mf = fmax(mf, fabs(fd));
        ma = fmax(ma, fabs(an[j]));
    }
    if (fd_max) *fd_max = mf;
    if (an_max) *an_max = ma;
    return err;
}

/* xbar (and ybar for soft targets) against central differences of phi, for hard and soft
 * targets and every model shape. */
static void test_dgrad_fd(void)
{
    for (int which = 0; which < 3; which++)
        for (int soft = 0; soft < 2; soft++) {
            model_t m;
            make_model(which, &m);
            const int32_t n = 3, d = m.in, C = m.classes;
            float *p = rand_params(&m, 21 + which, 0.6);
            double x[18], xbar[18], ys[12], ybar[12], *v = malloc((size_t)m.nparams * sizeof *v);
            double *g = malloc((size_t)m.nparams * sizeof *g);
            rand_fill(x, (size_t)n * d, 5, which);
            rand_fill(v, (size_t)m.nparams, 6, which);
            int32_t y[3] = {1, 0, C - 1};
            for (int32_t i = 0; i < n; i++) { /* soft targets: a softmax of random logits */
                double s = 0;
                for (int32_t k = 0; k < C; k++) s += (ys[i * C + k] = exp(0.7 * sin(3.0 * i + k)));
                for (int32_t k = 0; k < C; k++) ys[i * C + k] /= s;
            }
            const double *yp = soft ? ys : NULL;
            leakage_net *net = leakage_net_create(&m, p, n);
            CU_ASSERT_FATAL(net != NULL);
            leakage_net_grad(net, x, y, yp, n, g);
            leakage_net_dgrad(net, v, xbar, soft ? ybar : NULL);
            const fd_ctx c = {.net = net, .m = &m, .x = x, .ys = yp, .v = v, .y = y, .n = n, .g = g};
            double mx;
            const double err = fd_check(&c, x, n * d, xbar, 1e-6, &mx, NULL);
            CU_ASSERT(mx > 1e-3);
            CU_ASSERT(err <= 1e-6 * (1 + mx));
            if (soft) CU_ASSERT(fd_check(&c, ys, n * C, ybar, 1e-6, NULL, NULL) <= 1e-6);
            free(v);
            free(g);
            free(p);
            leakage_net_free(net);
        }
}

/* The whole chain the attack descends: R(x) = match(g(x), t) for the L2 and cosine losses,
 * with and without a mask; dR/dx from leakage_match + leakage_net_dgrad against differences. */
static void test_match_fd(void)
{
    model_t m;
    make_model(0, &m);
    const int32_t n = 2, d = m.in;
    const int64_t P = m.nparams;
    float *p = rand_params(&m, 31, 0.6);
    double x[12], xbar[12], *t = malloc((size_t)P * sizeof *t), *g = malloc((size_t)P * sizeof *g);
    double *v = malloc((size_t)P * sizeof *v);
    uint8_t *mask = malloc((size_t)P);
    rand_fill(x, (size_t)n * d, 8, 0);
    rand_fill(t, (size_t)P, 9, 0);
    for (int64_t j = 0; j < P; j++) {
        t[j] *= 0.1;
        mask[j] = (uint8_t)(j % 3 != 0);
    }
    int32_t y[2] = {2, 0};
    leakage_net *net = leakage_net_create(&m, p, n);
    CU_ASSERT_FATAL(net != NULL);
    for (int kind = 0; kind < 2; kind++)
        for (int mk = 0; mk < 2; mk++) {
            const uint8_t *mm = mk ? mask : NULL;
            leakage_net_grad(net, x, y, NULL, n, g);
            leakage_match(kind, g, t, mm, P, v);
            leakage_net_dgrad(net, v, xbar, NULL);
            const fd_ctx c = {.net = net, .m = &m, .x = x, .t = t, .y = y, .mask = mm, .n = n, .kind = kind,
                              .g = g, .vout = v};
            double mx;
            const double err = fd_check(&c, x, n * d, xbar, 1e-6, &mx, NULL);
            CU_ASSERT(mx > 1e-4);
            CU_ASSERT(err <= 1e-5 * (1 + mx));
        }
    leakage_net_free(net);
    free(t);
    free(g);
    free(v);
    free(mask);
    free(p);
}

/* Batch of one: the analytic attack returns the input exactly (MLP and logreg), and the label
 * comes from the sign of the last bias gradient. */
static void test_analytic_single(void)
{
    for (int which = 0; which < 3; which++) {
        model_t m;
        make_model(which, &m);
        float *p = rand_params(&m, 41 + which, 0.5);
        double x[6], *g = malloc((size_t)m.nparams * sizeof *g), cand[6 * 8];
        rand_fill(x, 6, 10, which);
        for (int32_t y0 = 0; y0 < m.classes; y0++) {
            int32_t y = y0, lab = -1;
            leakage_net *net = leakage_net_create(&m, p, 1);
            leakage_net_grad(net, x, &y, NULL, 1, g);
            leakage_net_free(net);
            const int32_t c = leakage_analytic(&m, g, 1e-6, 8, cand);
            CU_ASSERT(c >= 1);
            for (int32_t k = 0; k < c; k++)
                CU_ASSERT(leakage_mse(cand + 6 * k, x, 6) < 1e-16);
            double ls[6];
            leakage_analytic_ls(&m, g, NULL, ls);
            CU_ASSERT(leakage_mse(ls, x, 6) < 1e-16);
            leakage_labels(&m, g, 1, &lab);
            CU_ASSERT_EQUAL(lab, y);
        }
        free(g);
        free(p);
    }
}

/* Label counts of a batch from an untrained (near-uniform) model. */
static void test_labels_batch(void)
{
    model_t m;
    make_model(1, &m); /* logreg, 3 classes, zero weights: p = 1/3 */
    float *p = calloc((size_t)m.nparams, sizeof *p);
    double x[6 * 5], *g = malloc((size_t)m.nparams * sizeof *g);
    rand_fill(x, 30, 12, 0);
    int32_t y[5] = {2, 0, 2, 2, 1}, lab[5];
    leakage_net *net = leakage_net_create(&m, p, 5);
    leakage_net_grad(net, x, y, NULL, 5, g);
    leakage_labels(&m, g, 5, lab);
    const int32_t want[5] = {0, 1, 2, 2, 2};
    for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(lab[i], want[i]);
    leakage_net_free(net);
    free(g);
    free(p);
}

/* The optimisation attack (Adam, then L-BFGS) recovers a single row of a small MLP from its
 * gradient. */
static void test_dlg_small(void)
{
    model_t m;
    const int32_t hid[1] = {16};
    CU_ASSERT_FATAL(model_create(&m, MODEL_MLP, 8, 3, hid, 1) == FH_OK);
    float *p = rand_params(&m, 51, 0.4);
    double x[8], xr[8], *g = malloc((size_t)m.nparams * sizeof *g);
    rng_t r = rng_stream(1, 2, 3, RNG_LEAKAGE);
    for (int i = 0; i < 8; i++) x[i] = rng_uniform(&r);
    int32_t y = 1, lab = 1;
    leakage_net *net = leakage_net_create(&m, p, 1);
    leakage_net_grad(net, x, &y, NULL, 1, g);
    leakage_net_free(net);
    leakage_dlg_opts o = {.iters = 600, .step = 0.1, .loss = LEAKAGE_LOSS_COSINE, .lo = 0, .hi = 1,
                          .seed = 3, .id = 0};
    double fl = 1;
    CU_ASSERT_FATAL(leakage_dlg(&m, p, g, NULL, 1, &o, &lab, xr, &fl) == FH_OK);
    CU_ASSERT(fl < 1e-3);
    CU_ASSERT(leakage_psnr(leakage_mse(x, xr, 8)) > 25);
    /* projected L-BFGS on the same problem: it only ever goes down from the start */
    o.lbfgs = 1;
    double fl2 = 1;
    CU_ASSERT_FATAL(leakage_dlg(&m, p, g, NULL, 1, &o, &lab, xr, &fl2) == FH_OK);
    CU_ASSERT(fl2 < 1e-6);
    CU_ASSERT(leakage_psnr(leakage_mse(x, xr, 8)) > 25);
    o.joint_labels = 1; /* not with joint labels */
    CU_ASSERT(leakage_dlg(&m, p, g, NULL, 1, &o, &lab, xr, &fl2) == FH_EINPUT);
    free(g);
    free(p);
}

static void test_metrics_png(void)
{
    double a[28 * 28], b[28 * 28];
    for (int i = 0; i < 28 * 28; i++) {
        a[i] = (i % 28) / 27.0;
        b[i] = a[i] + (i % 2 ? 0.1 : -0.1);
    }
    CU_ASSERT_DOUBLE_EQUAL(leakage_ssim(a, a, 28), 1.0, 1e-12);
    CU_ASSERT(leakage_ssim(a, b, 28) < 0.9);
    CU_ASSERT_DOUBLE_EQUAL(leakage_mse(a, b, 784), 0.01, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(leakage_psnr(0.01), 20.0, 1e-12);
    char path[600];
    snprintf(path, sizeof path, "%s/leak_%d.png", g_test_tmpdir, g_test_world.rank);
    CU_ASSERT_FATAL(leakage_png_write(path, 28, 28, a) == FH_OK);
    FILE *f = fopen(path, "rb");
    unsigned char sig[16];
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT(fread(sig, 1, 16, f) == 16);
    fclose(f);
    CU_ASSERT(memcmp(sig, "\x89PNG\r\n\x1a\n", 8) == 0);
    CU_ASSERT(memcmp(sig + 12, "IHDR", 4) == 0);
    remove(path);
}

/* ---- the CNN (src/model/dgrad_cnn.c) ----------------------------------------------------- */

/* the double-precision CNN gradient against the engine's (oneDNN convolutions, float): a small
 * CNN with 2 input channels, batch 3, and the default 28 x 28 CNN (1.66M parameters), batch 2 */
static void test_cnn_grad_matches_engine(void)
{
    for (int big = 0; big < 2; big++) {
        model_t m;
        fh_status st = big ? model_create(&m, MODEL_CNN, 784, 10, NULL, 0) : model_create_cnn(&m, 8, 2, 3, 4, 6, 5);
        CU_ASSERT_FATAL(st == FH_OK);
        const int32_t n = big ? 2 : 3, d = m.in;
        float *p = rand_params(&m, 31 + big, big ? 0.05 : 0.4);
        double *xd = malloc((size_t)n * d * sizeof *xd), *g = malloc((size_t)m.nparams * sizeof *g);
        float *xf = malloc((size_t)n * d * sizeof *xf), *gf = malloc((size_t)m.nparams * sizeof *gf);
        rng_t r = rng_stream(9, big, 2, RNG_LEAKAGE);
        for (int32_t j = 0; j < n * d; j++) xd[j] = xf[j] = (float)rng_uniform(&r);
        int32_t y[3] = {1, m.classes - 1, 0};
        leakage_net *net = leakage_net_create(&m, p, n);
        CU_ASSERT_FATAL(net != NULL);
        model_ws *ws = model_ws_create(&m, n);
        CU_ASSERT_FATAL(ws != NULL);
        const double l1 = leakage_net_grad(net, xd, y, NULL, n, g);
        const double l2 = model_loss_grad(&m, p, xf, y, n, gf, ws);
        CU_ASSERT_DOUBLE_EQUAL(l1, l2, 1e-5 * (1 + fabs(l2)));
        /* per block (conv 0, conv 1, fc 1, fc 2): max error relative to the block's max */
        for (int32_t l = 0; l < 4; l++) {
            const int64_t j0 = m.w_off[l], j1 = m.b_off[l] + m.fan_out[l];
            double err = 0, mx = 0;
            for (int64_t j = j0; j < j1; j++) {
                err = fmax(err, fabs(g[j] - gf[j]));
                mx = fmax(mx, fabs(g[j]));
            }
            CU_ASSERT(mx > 1e-4);
            CU_ASSERT(err <= 1e-5 * mx);
            if (!(err <= 1e-5 * mx)) printf("\n  cnn %d layer %d: error %.3g, max %.3g\n", big, l, err, mx);
        }
        model_ws_free(ws);
        leakage_net_free(net);
        free(xd);
        free(xf);
        free(g);
        free(gf);
        free(p);
    }
}

/* xbar = d <v, g(x)> / dx of the CNN (and ybar for soft targets) against central differences;
 * and the check is sensitive: xbar is linear in v, and the part of xbar carried by each of the
 * eight parameter blocks of v (W0, b0, ..., b3) is far above the tolerance, so dropping any
 * block's terms from the double backward would fail the check. */
static void test_cnn_dgrad_fd(void)
{
    model_t m;
    CU_ASSERT_FATAL(model_create_cnn(&m, 8, 2, 3, 4, 6, 5) == FH_OK);
    const int32_t n = 2, d = m.in, C = m.classes;
    const int64_t P = m.nparams;
    float *p = rand_params(&m, 41, 0.5);
    double *x = malloc((size_t)n * d * sizeof *x), *xbar = malloc((size_t)n * d * sizeof *xbar);
    double *xb2 = malloc((size_t)n * d * sizeof *xb2), *v = malloc((size_t)P * sizeof *v);
    double *vb = malloc((size_t)P * sizeof *vb), *g = malloc((size_t)P * sizeof *g);
    double ys[10], ybar[10];
    rand_fill(x, (size_t)n * d, 15, 0);
    rand_fill(v, (size_t)P, 16, 0);
    int32_t y[2] = {3, 0};
    for (int32_t i = 0; i < n; i++) {
        double s = 0;
        for (int32_t k = 0; k < C; k++) s += (ys[i * C + k] = exp(0.7 * sin(3.0 * i + k)));
        for (int32_t k = 0; k < C; k++) ys[i * C + k] /= s;
    }
    leakage_net *net = leakage_net_create(&m, p, n);
    CU_ASSERT_FATAL(net != NULL);
    const double h = 1e-6, tol = 1e-7; /* measured: 6e-8 and 9e-8 for max |xbar| 11 and 9 */
    for (int soft = 0; soft < 2; soft++) {
        const double *yp = soft ? ys : NULL;
        leakage_net_grad(net, x, y, yp, n, g);
        leakage_net_dgrad(net, v, xbar, soft ? ybar : NULL);
        const fd_ctx c = {.net = net, .m = &m, .x = x, .ys = yp, .v = v, .y = y, .n = n, .g = g};
        double mx;
        const double err = fd_check(&c, x, n * d, xbar, h, NULL, &mx);
        CU_ASSERT(mx > 1e-2);
        CU_ASSERT(err <= tol * (1 + mx));
        if (!(err <= tol * (1 + mx))) printf("\n  cnn dgrad (soft %d): error %.3g, max %.3g\n", soft, err, mx);
        if (soft) CU_ASSERT(fd_check(&c, ys, n * C, ybar, h, NULL, NULL) <= 1e-6);
        /* sensitivity: each block's share of xbar */
        leakage_net_grad(net, x, y, yp, n, g);
        for (int32_t l = 0; l < 4; l++)
            for (int bias = 0; bias < 2; bias++) {
                const int64_t j0 = bias ? m.b_off[l] : m.w_off[l], j1 = bias ? m.b_off[l] + m.fan_out[l] : m.b_off[l];
                for (int64_t j = 0; j < P; j++) vb[j] = j >= j0 && j < j1 ? v[j] : 0;
                leakage_net_dgrad(net, vb, xb2, NULL);
                double part = 0;
                for (int32_t j = 0; j < n * d; j++) part = fmax(part, fabs(xb2[j]));
                CU_ASSERT(part > 100 * tol * (1 + mx));
                if (!(part > 100 * tol * (1 + mx)))
                    printf("\n  cnn dgrad: block %d%s carries only %.3g\n", l, bias ? "b" : "W", part);
            }
    }
    leakage_net_free(net);
    free(x);
    free(xbar);
    free(xb2);
    free(v);
    free(vb);
    free(g);
    free(p);
}

void tests_register_leakage(void)
{
    CU_pSuite s = CU_add_suite("leakage", NULL, NULL);
    tests_add(s, "grad_matches_engine", test_grad_matches_engine);
    tests_add(s, "dgrad_fd", test_dgrad_fd);
    tests_add(s, "match_fd", test_match_fd);
    tests_add(s, "analytic_single", test_analytic_single);
    tests_add(s, "labels_batch", test_labels_batch);
    tests_add(s, "dlg_small", test_dlg_small);
    tests_add(s, "metrics_png", test_metrics_png);
    tests_add(s, "cnn_grad_matches_engine", test_cnn_grad_matches_engine);
    tests_add(s, "cnn_dgrad_fd", test_cnn_dgrad_fd);
}
