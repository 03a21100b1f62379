/* Tests of src/fl: sampling, placement, fixed-point exactness, update checks, server steps,
 * local training. */
#include "tests.h"

#include "fedhpc/fl.h"
#include "fedhpc/sample.h"
#include "fedhpc/server.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_sample_clients(void)
{
    int32_t a[50], b[50], n = 0, n2 = 0;
    CU_ASSERT_EQUAL(fl_sample_clients(7, 3, 1000, 50, a, &n), FH_OK);
    CU_ASSERT_EQUAL(n, 50);
    for (int i = 1; i < n; i++) CU_ASSERT(a[i] > a[i - 1]); /* sorted, distinct */
    CU_ASSERT(a[0] >= 0 && a[n - 1] < 1000);
    fl_sample_clients(7, 3, 1000, 50, b, &n2);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
    fl_sample_clients(7, 4, 1000, 50, b, &n2);
    CU_ASSERT_NOT_EQUAL(memcmp(a, b, sizeof a), 0);
    int32_t all[10];
    fl_sample_clients(7, 1, 10, 20, all, &n);
    CU_ASSERT_EQUAL(n, 10);
    for (int i = 0; i < 10; i++) CU_ASSERT_EQUAL(all[i], i);
    /* uniformity: each of 20 clients picked about m/C of 2000 rounds */
    int hits[20] = {0};
    for (int r = 0; r < 2000; r++) {
        int32_t s[5];
        fl_sample_clients(1, r, 20, 5, s, &n);
        for (int i = 0; i < n; i++) hits[s[i]]++;
    }
    for (int c = 0; c < 20; c++) CU_ASSERT(hits[c] > 400 && hits[c] < 600);
}

static void test_assign_ranks(void)
{
    int64_t count[6] = {10, 10, 10, 10, 100, 10};
    int32_t first[5];
    fl_assign_ranks(count, 6, 4, first);
    CU_ASSERT_EQUAL(first[0], 0);
    CU_ASSERT_EQUAL(first[4], 6);
    for (int p = 0; p < 4; p++) CU_ASSERT(first[p] <= first[p + 1]);
    int32_t f1[9];
    fl_assign_ranks(count, 6, 8, f1); /* more ranks than clients: some get none */
    CU_ASSERT_EQUAL(f1[8], 6);
    for (int p = 0; p < 8; p++) CU_ASSERT(f1[p] <= f1[p + 1]);
}

static void test_fixed_point_sum_is_order_independent(void)
{
    enum { P = 1000, K = 7 };
    static float v[K][P];
    rng_t r = rng_stream(3, 0, 0, RNG_INIT);
    for (int k = 0; k < K; k++)
        for (int j = 0; j < P; j++) v[k][j] = (float)(rng_normal(&r) * pow(10.0, (double)(k % 5) - 3));
    int64_t a[P] = {0}, b[P] = {0};
    for (int k = 0; k < K; k++) fx_accumulate(a, v[k], 1.0 / K, P);
    for (int k = K - 1; k >= 0; k--) fx_accumulate(b, v[k], 1.0 / K, P);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
    float out[P];
    fx_decode(a, 1.0, out, P);
    double maxerr = 0;
    for (int j = 0; j < P; j++) {
        double exact = 0;
        for (int k = 0; k < K; k++) exact += (double)v[k][j] / K;
        maxerr = fmax(maxerr, fabs(exact - out[j]) - 1e-6 * fabs(exact));
    }
    CU_ASSERT(maxerr < 1e-8); /* 2^-32 steps, then float rounding */
}

static void test_update_check(void)
{
    float v[4] = {1, 2, 2, 0};
    double norm;
    CU_ASSERT(fl_update_ok(v, 4, 10, &norm));
    CU_ASSERT_DOUBLE_EQUAL(norm, 3.0, 1e-12);
    CU_ASSERT(!fl_update_ok(v, 4, 2.5, &norm)); /* absurd norm */
    v[1] = NAN;
    CU_ASSERT(!fl_update_ok(v, 4, 10, &norm));
    CU_ASSERT(isnan(norm));
    v[1] = INFINITY;
    CU_ASSERT(!fl_update_ok(v, 4, 1e30, &norm));
}

static void test_server_steps(void)
{
    config_t c;
    config_defaults(&c);
    float d[3] = {0.5f, -1.0f, 0.0f}, w[3] = {1, 1, 1};
    fl_server s;
    CU_ASSERT_EQUAL_FATAL(fl_server_init(&s, &c.fl, 3), FH_OK);
    fl_server_step(&s, d, w);
    CU_ASSERT_DOUBLE_EQUAL(w[0], 1.5, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(w[1], 0.0, 1e-7);
    fl_server_free(&s);
    /* FedAvgM: second step adds momentum * first update */
    c.fl.algorithm = ALG_FEDAVGM;
    c.fl.server_momentum = 0.5;
    float w2[3] = {0, 0, 0};
    CU_ASSERT_EQUAL_FATAL(fl_server_init(&s, &c.fl, 3), FH_OK);
    fl_server_step(&s, d, w2);
    fl_server_step(&s, d, w2);
    CU_ASSERT_DOUBLE_EQUAL(w2[0], 0.5 + 0.75, 1e-6);
    fl_server_free(&s);
    /* FedAdam: the first step moves each coordinate by about server_lr * (1-b1)/sqrt(1-b2) */
    c.fl.algorithm = ALG_FEDADAM;
    c.fl.server_lr = 0.01;
    float w3[3] = {0, 0, 0};
    CU_ASSERT_EQUAL_FATAL(fl_server_init(&s, &c.fl, 3), FH_OK);
    fl_server_step(&s, d, w3);
    double expect = 0.01 * 0.1 * 0.5 / (sqrt(0.99 * 1e-6 + 0.01 * 0.25) + 1e-3);
    CU_ASSERT_DOUBLE_EQUAL(w3[0], expect, 1e-6);
    CU_ASSERT(w3[1] < 0);
    CU_ASSERT_DOUBLE_EQUAL(w3[2], 0.0, 1e-9);
    fl_server_free(&s);
}

/* Full-batch local training for one epoch equals one gradient step of the same model. */
static void test_local_full_batch_is_one_step(void)
{
    model_t m;
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_LOGREG, 4, 3, NULL, 0), FH_OK);
    enum { N = 20 };
    float x[N * 4];
    int32_t y[N];
    rng_t r = rng_stream(9, 0, 0, RNG_INIT);
    for (int i = 0; i < N * 4; i++) x[i] = (float)rng_normal(&r);
    for (int i = 0; i < N; i++) y[i] = i % 3;
    float *p = malloc((size_t)m.nparams * sizeof *p), *q = malloc((size_t)m.nparams * sizeof *q);
    for (int64_t j = 0; j < m.nparams; j++) p[j] = q[j] = (float)(0.1 * rng_normal(&r));
    fl_worker w;
    CU_ASSERT_EQUAL_FATAL(fl_worker_init(&w, &m, 256), FH_OK);
    fl_local_opts o = {q, NULL, 0.1, 0, 0, 0, 1, 0};
    double loss;
    int64_t steps, rows;
    CU_ASSERT_EQUAL(fl_local_train(&w, &o, rng_stream(1, 0, 0, RNG_SHUFFLE), x, y, N, p, &loss, &steps, &rows), FH_OK);
    CU_ASSERT_EQUAL(steps, 1);
    CU_ASSERT_EQUAL(rows, N);
    fl_grad_rows(&w, q, x, y, N);
    for (int64_t j = 0; j < m.nparams; j++) CU_ASSERT_DOUBLE_EQUAL(p[j], q[j] - 0.1f * w.grad[j], 1e-7);
    fl_worker_free(&w);
    free(p);
    free(q);
}

void tests_register_fl(void)
{
    CU_pSuite s = CU_add_suite("fl", NULL, NULL);
    tests_add(s, "sample_clients", test_sample_clients);
    tests_add(s, "assign_ranks", test_assign_ranks);
    tests_add(s, "fixed_point_sum_is_order_independent", test_fixed_point_sum_is_order_independent);
    tests_add(s, "update_check", test_update_check);
    tests_add(s, "server_steps", test_server_steps);
    tests_add(s, "local_full_batch_is_one_step", test_local_full_batch_is_one_step);
}
