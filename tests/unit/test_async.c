/* Tests of src/fl/system.c and the rules of src/fl/async.c on hand-computed cases: staleness
 * weights, FedNova coefficients, event ordering, availability periods, partial work. */
#include "tests.h"

#include "fedhpc/async.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_staleness_weights(void)
{
    CU_ASSERT_DOUBLE_EQUAL(as_staleness_weight(AS_STALE_CONSTANT, 0.5, 4, 0), 1.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(as_staleness_weight(AS_STALE_CONSTANT, 0.5, 4, 100), 1.0, 1e-15);
    /* polynomial (1 + tau)^-a: a = 0.5, tau = 3 -> 1/2; tau = 0 -> 1 */
    CU_ASSERT_DOUBLE_EQUAL(as_staleness_weight(AS_STALE_POLY, 0.5, 4, 3), 0.5, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(as_staleness_weight(AS_STALE_POLY, 0.5, 4, 0), 1.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(as_staleness_weight(AS_STALE_POLY, 1.0, 4, 9), 0.1, 1e-15);
    /* hinge: 1 up to b, then 1/(a (tau - b) + 1): a = 1, b = 4 */
    CU_ASSERT_DOUBLE_EQUAL(as_staleness_weight(AS_STALE_HINGE, 1, 4, 4), 1.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(as_staleness_weight(AS_STALE_HINGE, 1, 4, 6), 1.0 / 3.0, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(as_staleness_weight(AS_STALE_HINGE, 2, 1, 3), 0.2, 1e-15);
}

static void test_fednova_coeffs(void)
{
    /* p = (1/4, 3/4), steps (10, 5): tau_eff = 2.5 + 3.75 = 6.25,
     * coef = p_i tau_eff / tau_i = (0.15625, 0.9375) */
    int64_t rows[2] = {100, 300}, steps[2] = {10, 5};
    double coef[2];
    CU_ASSERT_DOUBLE_EQUAL(as_fednova_coeffs(2, rows, steps, 0, coef), 6.25, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(coef[0], 0.15625, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(coef[1], 0.9375, 1e-12);
    /* equal steps: plain FedAvg weights */
    int64_t s2[2] = {7, 7};
    as_fednova_coeffs(2, rows, s2, 0, coef);
    CU_ASSERT_DOUBLE_EQUAL(coef[0], 0.25, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(coef[1], 0.75, 1e-12);
    /* momentum 0.5, 2 steps of a constant gradient move 1 + 1.5 = 2.5 lr g: a = 2.5 */
    int64_t r1[1] = {10}, st1[1] = {2};
    CU_ASSERT_DOUBLE_EQUAL(as_fednova_coeffs(1, r1, st1, 0.5, coef), 2.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(coef[0], 1.0, 1e-12);
    /* normalised: a client with half the steps counts its per-step update at the same rate,
     * sum p_i coef_i a_i / tau_eff == 1 */
    int64_t r3[3] = {50, 20, 30}, st3[3] = {60, 13, 1};
    double c3[3];
    const double te = as_fednova_coeffs(3, r3, st3, 0, c3);
    double s = 0;
    for (int i = 0; i < 3; i++) s += c3[i] * (double)st3[i];
    CU_ASSERT_DOUBLE_EQUAL(s, te, 1e-12);
    /* partial_weights = work: p_i = samples processed (steps * B, B = 10): (600, 130, 10) of 740,
     * tau_eff = (600 * 60 + 130 * 13 + 10 * 1) / 740 = 51.0405..., every coef = 10 tau_eff / 740
     * (each processed minibatch counts once); with rows as weights the 1-step client's update
     * gets coef p_i tau_eff / a_i = 0.3 * 32.9 / 1 = 9.87: its one step stands for 32.9 */
    int64_t w3[3] = {600, 130, 10};
    const double tw = as_fednova_coeffs(3, w3, st3, 0, c3);
    CU_ASSERT_DOUBLE_EQUAL(tw, (600.0 * 60 + 130.0 * 13 + 10.0) / 740, 1e-12);
    for (int i = 0; i < 3; i++) CU_ASSERT_DOUBLE_EQUAL(c3[i], 10 * tw / 740, 1e-12);
    as_fednova_coeffs(3, r3, st3, 0, c3);
    CU_ASSERT_DOUBLE_EQUAL(c3[2], 0.3 * te, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(te, 0.5 * 60 + 0.2 * 13 + 0.3 * 1, 1e-12);
}

static void test_event_order(void)
{
    double t[4] = {5, 3, NAN, 3};
    int64_t id[4] = {0, 7, 1, 2};
    CU_ASSERT_EQUAL(as_earliest(4, t, id), 3); /* tie at 3: smaller job id */
    t[3] = 3.5;
    CU_ASSERT_EQUAL(as_earliest(4, t, id), 1);
    double e[2] = {NAN, NAN};
    CU_ASSERT_EQUAL(as_earliest(2, e, id), -1);
    CU_ASSERT_EQUAL(as_earliest(0, e, id), -1);
}

static void test_availability(void)
{
    double speed = 2, phase = 0;
    sys_profile p = {1, &speed, &phase, 10, 5, 1, 0};
    /* on [0,10), off [10,15), on [15,25), off [25,30) */
    CU_ASSERT_DOUBLE_EQUAL(sys_on_time(&p, 0, 0, 30), 20, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(sys_on_time(&p, 0, 12, 20), 5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(sys_advance(&p, 0, 0, 12), 17, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(sys_advance(&p, 0, 0, 10), 10, 1e-12); /* ends with the on period */
    CU_ASSERT_DOUBLE_EQUAL(sys_advance(&p, 0, 12, 3), 18, 1e-12); /* waits for the next on */
    CU_ASSERT_DOUBLE_EQUAL(sys_advance(&p, 0, 3, 0), 3, 1e-12);
    /* speed 2, step_time 1: 6 steps are 3 seconds of work; 12 on-seconds fit 24 steps */
    CU_ASSERT_DOUBLE_EQUAL(sys_job_work(&p, 0, 6, 1000), 3, 1e-12);
    CU_ASSERT_EQUAL(sys_steps_before(&p, 0, 0, 17, 1000, 100), 24);
    CU_ASSERT_EQUAL(sys_steps_before(&p, 0, 0, 17, 1000, 20), 20);
    /* phase shifts the pattern: phase 12 puts t = 0 at 2 s into an off period */
    phase = 12;
    CU_ASSERT_DOUBLE_EQUAL(sys_advance(&p, 0, 0, 1), 4, 1e-12);
    /* communication: 8 bytes a parameter (down + up) */
    phase = 0;
    p.comm_per_byte = 0.25;
    CU_ASSERT_DOUBLE_EQUAL(sys_job_work(&p, 0, 4, 3), 0.25 * 24 + 2, 1e-12);
    CU_ASSERT_EQUAL(sys_steps_before(&p, 0, 0, 10, 3, 100), 8); /* (10 - 6) * 2 */
    /* always on */
    p.on = p.off = 0;
    CU_ASSERT_DOUBLE_EQUAL(sys_advance(&p, 0, 7, 5), 12, 1e-12);
    CU_ASSERT_EQUAL(sys_full_steps(600, 1, 10), 60);
    CU_ASSERT_EQUAL(sys_full_steps(605, 2, 10), 122);
    CU_ASSERT_EQUAL(sys_full_steps(5, 3, 0), 3);
    CU_ASSERT_EQUAL(sys_full_steps(0, 3, 10), 0);
}

static void test_profiles(void)
{
    config_t c;
    config_defaults(&c);
    c.train.seed = 5;
    c.system.sigma = 1;
    sys_profile a, b;
    CU_ASSERT_EQUAL_FATAL(sys_profile_init(&a, &c.system, (uint64_t)c.train.seed, 400), FH_OK);
    CU_ASSERT_EQUAL_FATAL(sys_profile_init(&b, &c.system, (uint64_t)c.train.seed, 400), FH_OK);
    CU_ASSERT_EQUAL(memcmp(a.speed, b.speed, 400 * sizeof *a.speed), 0); /* pure function of the seed */
    double lm = 0, lv = 0;
    for (int i = 0; i < 400; i++) lm += log(a.speed[i]) / 400;
    for (int i = 0; i < 400; i++) lv += (log(a.speed[i]) - lm) * (log(a.speed[i]) - lm) / 399;
    CU_ASSERT(fabs(lm) < 0.2);
    CU_ASSERT(fabs(sqrt(lv) - 1) < 0.15); /* log-normal sigma 1 */
    sys_profile_free(&b);
    c.train.seed = 6;
    CU_ASSERT_EQUAL_FATAL(sys_profile_init(&b, &c.system, (uint64_t)c.train.seed, 400), FH_OK);
    CU_ASSERT_NOT_EQUAL(memcmp(a.speed, b.speed, 400 * sizeof *a.speed), 0);
    sys_profile_free(&a);
    sys_profile_free(&b);
    /* speeds from a CSV, and a bad line named */
    char path[600];
    snprintf(path, sizeof path, "%s/speeds_%d.csv", g_test_tmpdir, g_test_world.rank);
    FILE *f = fopen(path, "w");
    fputs("client,speed\n0,1.5\n1,0.25\n", f);
    fclose(f);
    snprintf(c.system.speeds, sizeof c.system.speeds, "%s", path);
    CU_ASSERT_EQUAL_FATAL(sys_profile_init(&a, &c.system, (uint64_t)c.train.seed, 2), FH_OK);
    CU_ASSERT_DOUBLE_EQUAL(a.speed[0], 1.5, 0);
    CU_ASSERT_DOUBLE_EQUAL(a.speed[1], 0.25, 0);
    sys_profile_free(&a);
    CU_ASSERT_EQUAL(sys_profile_init(&a, &c.system, (uint64_t)c.train.seed, 3), FH_EINPUT); /* too few */
    f = fopen(path, "w");
    fputs("2\n-1\n", f);
    fclose(f);
    CU_ASSERT_EQUAL(sys_profile_init(&a, &c.system, (uint64_t)c.train.seed, 2), FH_EINPUT);
    CU_ASSERT(strstr(fh_error_msg(), ":2:") != NULL);
    remove(path);
}

/* partial work: fl_worker.max_steps stops local SGD early */
static void test_max_steps(void)
{
    model_t m;
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_LOGREG, 4, 3, NULL, 0), FH_OK);
    enum { N = 100 };
    float x[N * 4];
    int32_t y[N];
    rng_t r = rng_stream(9, 0, 0, RNG_INIT);
    for (int i = 0; i < N * 4; i++) x[i] = (float)rng_normal(&r);
    for (int i = 0; i < N; i++) y[i] = i % 3;
    float *p = calloc((size_t)m.nparams, sizeof *p), *q = calloc((size_t)m.nparams, sizeof *q);
    fl_worker w;
    CU_ASSERT_EQUAL_FATAL(fl_worker_init(&w, &m, 256), FH_OK);
    fl_local_opts o = {q, NULL, 0.1, 0, 0, 0, 2, 10};
    double loss;
    int64_t steps, rows;
    CU_ASSERT_EQUAL(fl_local_train(&w, &o, rng_stream(1, 0, 0, RNG_SHUFFLE), x, y, N, p, &loss, &steps, &rows), FH_OK);
    CU_ASSERT_EQUAL(steps, 20);
    w.max_steps = 13;
    memset(p, 0, (size_t)m.nparams * sizeof *p);
    CU_ASSERT_EQUAL(fl_local_train(&w, &o, rng_stream(1, 0, 0, RNG_SHUFFLE), x, y, N, p, &loss, &steps, &rows), FH_OK);
    CU_ASSERT_EQUAL(steps, 13);
    CU_ASSERT_EQUAL(rows, 130);
    fl_worker_free(&w);
    free(p);
    free(q);
}

void tests_register_async(void)
{
    CU_pSuite s = CU_add_suite("async", NULL, NULL);
    tests_add(s, "staleness_weights", test_staleness_weights);
    tests_add(s, "fednova_coeffs", test_fednova_coeffs);
    tests_add(s, "event_order", test_event_order);
    tests_add(s, "availability", test_availability);
    tests_add(s, "profiles", test_profiles);
    tests_add(s, "max_steps", test_max_steps);
}
