/* The credit study (docs/credit.md): the decision threshold comes from the validation split
 * (prepare --val-frac, /val) and never from the test split. */
#define _POSIX_C_SOURCE 200809L
#include "tests.h"

#include "fedhpc/fl.h"
#include "fedhpc/io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CR_D 3
#define CR_TRAIN 40
#define CR_VAL 30
#define CR_TEST 30

/* Row i of a toy table: 3 features and a label, class 1 the minority (about 1 in 3). */
static void cr_row(int i, float *x, int32_t *y)
{
    for (int j = 0; j < CR_D; j++) x[j] = (float)(((i + 3) * (17 + 6 * j)) % 23) / 7.0f - 1.5f;
    *y = x[0] + 0.5f * x[1] > 0.6f;
    if (i % 7 == 3) *y = !*y; /* some noise */
}

/* A data file with the given splits; flip_test: the test labels inverted. val: a /val split. */
static void cr_write(const char *path, int val, int flip_test)
{
    static float x[CR_TRAIN * CR_D], vx[CR_VAL * CR_D], tx[CR_TEST * CR_D];
    static int32_t y[CR_TRAIN], vy[CR_VAL], ty[CR_TEST];
    for (int i = 0; i < CR_TRAIN; i++) cr_row(i, x + i * CR_D, y + i);
    for (int i = 0; i < CR_VAL; i++) cr_row(1000 + i, vx + i * CR_D, vy + i);
    for (int i = 0; i < CR_TEST; i++) {
        cr_row(2000 + i, tx + i * CR_D, ty + i);
        if (flip_test) ty[i] = !ty[i];
    }
    data_set ds;
    memset(&ds, 0, sizeof ds);
    snprintf(ds.name, sizeof ds.name, "toy");
    ds.nclasses = 2;
    char *names[2] = {"good", "bad"};
    ds.class_name = names;
    ds.train = (data_table){CR_TRAIN, CR_D, x, y};
    ds.test = (data_table){CR_TEST, CR_D, tx, ty};
    if (val) ds.val = (data_table){CR_VAL, CR_D, vx, vy};
    int64_t perm[CR_TRAIN], off[5] = {0, 10, 20, 30, 40};
    for (int i = 0; i < CR_TRAIN; i++) perm[i] = i;
    io_data_meta m;
    memset(&m, 0, sizeof m);
    snprintf(m.dataset, sizeof m.dataset, "toy");
    snprintf(m.partition, sizeof m.partition, "iid");
    m.clients = 4;
    m.seed = 1;
    CU_ASSERT_EQUAL(io_data_write(path, &ds, &m, perm, off, NULL), FH_OK);
}

/* Evaluate a fixed logreg on a file as the training loop does (fl_testset_eval); on rank 0,
 * the metrics and the rows read from each split. */
static void cr_eval(const char *path, metrics_t *out, int64_t *val_read, int64_t *test_read, int64_t *val_rows)
{
    comm_t *w = &g_test_world;
    io_data *h = NULL;
    io_data_meta meta;
    CU_ASSERT_EQUAL_FATAL(io_data_open(path, w, &h, &meta), FH_OK);
    int64_t bytes;
    CU_ASSERT_EQUAL(io_data_verify(h, w, &bytes), FH_OK); /* the /val checksums too */
    *val_rows = meta.val_rows;
    model_t m;
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_LOGREG, CR_D, 2, NULL, 0), FH_OK);
    float params[CR_D + 1] = {1.3f, 0.6f, -0.2f, -0.4f};
    model_ws *ws = model_ws_create(&m, 8);
    fl_testset t;
    CU_ASSERT_EQUAL_FATAL(fl_testset_load(&t, w, h, &meta), FH_OK);
    if (w->rank == 0) CU_ASSERT_EQUAL(fl_testset_eval(&t, &m, params, ws, 8, out), FH_OK);
    *val_read = io_data_rows_read(h, "val");
    *test_read = io_data_rows_read(h, "test");
    fl_testset_free(&t);
    model_ws_free(ws);
    io_data_close(h);
}

static void test_threshold_from_validation(void)
{
    comm_t *w = &g_test_world;
    char pa[600], pb[600], pn[600];
    snprintf(pa, sizeof pa, "%s/credit_a.h5", g_test_tmpdir);
    snprintf(pb, sizeof pb, "%s/credit_b.h5", g_test_tmpdir);
    snprintf(pn, sizeof pn, "%s/credit_n.h5", g_test_tmpdir);
    if (w->rank == 0) {
        cr_write(pa, 1, 0);
        cr_write(pb, 1, 1); /* the same validation split, the test labels inverted */
        cr_write(pn, 0, 0); /* no validation split */
    }
    comm_barrier(w);
    metrics_t a, b, n;
    int64_t va, ta, vb, tb, vn, tn, ra, rn;
    cr_eval(pa, &a, &va, &ta, &ra);
    cr_eval(pb, &b, &vb, &tb, &ra);
    cr_eval(pn, &n, &vn, &tn, &rn);
    CU_ASSERT_EQUAL(ra, CR_VAL);
    CU_ASSERT_EQUAL(rn, 0);
    if (w->rank != 0) return;
    /* the threshold is the validation split's best one, computed here independently */
    float vx[CR_VAL * CR_D], probs[CR_VAL * 2];
    int32_t vy[CR_VAL];
    for (int i = 0; i < CR_VAL; i++) cr_row(1000 + i, vx + i * CR_D, vy + i);
    model_t m;
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_LOGREG, CR_D, 2, NULL, 0), FH_OK);
    float params[CR_D + 1] = {1.3f, 0.6f, -0.2f, -0.4f};
    model_ws *ws = model_ws_create(&m, CR_VAL);
    model_predict(&m, params, vx, CR_VAL, probs, ws);
    model_ws_free(ws);
    metrics_t v;
    CU_ASSERT_EQUAL_FATAL(metrics_eval(probs, vy, CR_VAL, 2, &v), FH_OK);
    CU_ASSERT(!isnan(v.thr_best));
    CU_ASSERT_DOUBLE_EQUAL(a.threshold, v.thr_best, 0);
    /* inverting every test label changes the test metrics but not the threshold */
    CU_ASSERT_DOUBLE_EQUAL(b.threshold, a.threshold, 0);
    CU_ASSERT(fabs(b.f1_minority_thr - a.f1_minority_thr) > 1e-3 || fabs(b.accuracy - a.accuracy) > 1e-3);
    CU_ASSERT(fabs(b.accuracy + a.accuracy - 1.0) < 1e-12);
    /* the threshold applied: f1 at it equals metrics_eval_at on the test rows */
    float tx[CR_TEST * CR_D], tp[CR_TEST * 2];
    int32_t ty[CR_TEST];
    for (int i = 0; i < CR_TEST; i++) cr_row(2000 + i, tx + i * CR_D, ty + i);
    ws = model_ws_create(&m, CR_TEST);
    model_predict(&m, params, tx, CR_TEST, tp, ws);
    model_ws_free(ws);
    metrics_t want;
    CU_ASSERT_EQUAL_FATAL(metrics_eval_at(tp, ty, CR_TEST, 2, v.thr_best, &want), FH_OK);
    CU_ASSERT_DOUBLE_EQUAL(a.f1_minority_thr, want.f1_minority_thr, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(a.f1_thr, want.f1_thr, 1e-12);
    /* every split read exactly once per evaluation; without /val: no threshold, nothing read */
    CU_ASSERT_EQUAL(va, CR_VAL);
    CU_ASSERT_EQUAL(ta, CR_TEST);
    CU_ASSERT_EQUAL(vn, 0);
    CU_ASSERT_EQUAL(tn, CR_TEST);
    CU_ASSERT(isnan(n.threshold) && isnan(n.f1_minority_thr));
    CU_ASSERT_DOUBLE_EQUAL(n.f1_minority, a.f1_minority, 0);
}

/* Focal loss ([model] focal_gamma): the loss against the formula, the gradient against central
 * differences of the loss, gamma 0 = cross-entropy. */
static void focal_fd(model_t *m, int32_t n, uint64_t seed)
{
    const int64_t P = m->nparams;
    float *pr = malloc((size_t)P * sizeof *pr), *g = malloc((size_t)P * sizeof *g), *g2 = malloc((size_t)P * sizeof *g2);
    float x[8 * 4];
    int32_t y[8];
    CU_ASSERT_FATAL(pr && g && g2 && n <= 8 && m->in <= 4);
    model_init_params(m, pr, seed);
    for (int64_t j = 0; j < P; j++) pr[j] += (float)((j * 7 + 3) % 11) / 11.0f - 0.5f;
    for (int i = 0; i < n * m->in; i++) x[i] = (float)((i * 13 + 5) % 17) / 8.0f - 1.0f;
    for (int i = 0; i < n; i++) y[i] = (i * 5 + 1) % m->classes;
    model_ws *ws = model_ws_create(m, n);
    model_loss_grad(m, pr, x, y, n, g, ws);
    double worst = 0;
    for (int64_t j = 0; j < P; j++) {
        const float keep = pr[j], h = 1e-2f;
        pr[j] = keep + h;
        const float up = pr[j];
        const double lp = model_loss_grad(m, pr, x, y, n, g2, ws);
        pr[j] = keep - h;
        const float dn = pr[j];
        const double lm = model_loss_grad(m, pr, x, y, n, g2, ws);
        pr[j] = keep;
        const double fd = (lp - lm) / ((double)up - (double)dn) / n;
        const double err = fabs(g[j] - fd) / fmax(fmax(fabs(g[j]), fabs(fd)), 1e-3);
        if (err > worst) worst = err;
    }
    CU_ASSERT(worst < 1e-2);
    /* the fused SGD step (small batches) returns the same loss */
    float *pa = malloc((size_t)P * sizeof *pa);
    memcpy(pa, pr, (size_t)P * sizeof *pa);
    const double l0 = model_loss_grad(m, pr, x, y, n, g, ws), l1 = model_sgd_step(m, pa, x, y, n, 0.1f, g2, ws);
    CU_ASSERT_DOUBLE_EQUAL(l0, l1, 1e-6 * fabs(l0) + 1e-9);
    model_ws_free(ws);
    free(pr); free(g); free(g2); free(pa);
}

static void test_focal_loss(void)
{
    model_t m;
    /* one row, z = 0.5, y = 1: p = sigmoid(.5); FL = (1 - p)^2 (-log p); with class weight 3 */
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_LOGREG, 1, 2, NULL, 0), FH_OK);
    float pr[2] = {0.5f, 0.0f}, g[2], x[1] = {1.0f};
    int32_t y[1] = {1};
    model_ws *ws = model_ws_create(&m, 1);
    const double p = 1.0 / (1.0 + exp(-0.5));
    m.focal_gamma = 2.0f;
    CU_ASSERT_DOUBLE_EQUAL(model_loss_grad(&m, pr, x, y, 1, g, ws), (1 - p) * (1 - p) * -log(p), 1e-6);
    /* dFL/dz = g q^g p log p - q^(g+1), q = 1 - p */
    CU_ASSERT_DOUBLE_EQUAL(g[0], 2 * (1 - p) * (1 - p) * p * log(p) - pow(1 - p, 3), 1e-6);
    const float cw[2] = {0.5f, 3.0f};
    m.class_weight = cw;
    CU_ASSERT_DOUBLE_EQUAL(model_loss_grad(&m, pr, x, y, 1, g, ws), 3 * (1 - p) * (1 - p) * -log(p), 1e-6);
    /* gamma 0 through the focal path is the cross-entropy */
    m.class_weight = NULL;
    m.focal_gamma = 1e-30f;
    const double lf = model_loss_grad(&m, pr, x, y, 1, g, ws);
    const float gf = g[0];
    m.focal_gamma = 0.0f;
    CU_ASSERT_DOUBLE_EQUAL(lf, model_loss_grad(&m, pr, x, y, 1, g, ws), 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(gf, g[0], 1e-6);
    model_ws_free(ws);
    /* gradients: binary logreg with class weights, softmax logreg, mlp */
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_LOGREG, 4, 2, NULL, 0), FH_OK);
    m.focal_gamma = 2.0f;
    m.class_weight = cw;
    focal_fd(&m, 6, 11);
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_LOGREG, 4, 3, NULL, 0), FH_OK);
    m.focal_gamma = 1.5f;
    focal_fd(&m, 7, 12);
    const int32_t hid[1] = {5};
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_MLP, 4, 3, hid, 1), FH_OK);
    m.focal_gamma = 2.0f;
    focal_fd(&m, 8, 13);
}

void tests_register_credit(void)
{
    CU_pSuite s = CU_add_suite("credit", NULL, NULL);
    tests_add(s, "threshold_from_validation", test_threshold_from_validation);
    tests_add(s, "focal_loss", test_focal_loss);
}
