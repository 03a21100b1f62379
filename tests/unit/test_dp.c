/* Tests of DP in training: per-example clipped gradients (model_loss_grad_clipped) against a
 * loop of batch-of-one clipping, DP-FedAvg clipping/weights, accounting per round and the
 * budget stop, adaptive clipping, and heterogeneous composition of a noise schedule. */
#include "tests.h"

#include "fedhpc/fl.h"
#include "fedhpc/model.h"
#include "fedhpc/privacy.h"
#include "fedhpc/rng.h"
#include "fedhpc/secagg_round.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void check_clipped(model_type type, int32_t classes, double clip)
{
    model_t m;
    const int32_t in = 7, n = 13, hidden[2] = {9, 5};
    CU_ASSERT_EQUAL_FATAL(model_create(&m, type, in, classes, hidden, type == MODEL_MLP ? 2 : 0), FH_OK);
    float *p = malloc((size_t)m.nparams * sizeof *p), *g = malloc((size_t)m.nparams * sizeof *g),
          *g1 = malloc((size_t)m.nparams * sizeof *g1), *want = calloc((size_t)m.nparams, sizeof *want);
    float x[13 * 7];
    int32_t y[13];
    model_init_params(&m, p, 5);
    rng_t r = rng_stream(1, 2, 3, RNG_INIT);
    for (int64_t j = 0; j < m.nparams; j++) p[j] += (float)(0.3 * rng_normal(&r)); /* non-zero biases */
    for (int i = 0; i < n * in; i++) x[i] = (float)(2.0 * rng_normal(&r));
    for (int i = 0; i < n; i++) y[i] = (int32_t)rng_below(&r, (uint64_t)classes);
    model_ws *ws = model_ws_create(&m, 32);
    double norms[13], lsum = 0;
    int clipped = 0;
    if (clip <= 0) { /* clip at the median per-example norm: both cases occur */
        double nn[13];
        for (int i = 0; i < n; i++) {
            model_loss_grad(&m, p, x + i * in, y + i, 1, g1, ws);
            double s = 0;
            for (int64_t j = 0; j < m.nparams; j++) s += (double)g1[j] * g1[j];
            nn[i] = sqrt(s);
        }
        for (int i = 0; i < n; i++) /* insertion sort */
            for (int k = i; k > 0 && nn[k] < nn[k - 1]; k--) {
                double t = nn[k]; nn[k] = nn[k - 1]; nn[k - 1] = t;
            }
        clip = nn[n / 2];
    }
    for (int i = 0; i < n; i++) { /* the reference: batch of one, clipped one by one */
        lsum += model_loss_grad(&m, p, x + i * in, y + i, 1, g1, ws);
        double s = 0;
        for (int64_t j = 0; j < m.nparams; j++) s += (double)g1[j] * g1[j];
        double c = sqrt(s) > clip ? clip / sqrt(s) : 1.0;
        clipped += c < 1.0;
        for (int64_t j = 0; j < m.nparams; j++) want[j] += (float)(c * g1[j]);
        norms[i] = sqrt(s);
    }
    CU_ASSERT(clipped > 0 && clipped < n); /* the test exercises both cases */
    double got_norms[13];
    double loss = model_loss_grad_clipped(&m, p, x, y, n, clip, g, got_norms, ws);
    CU_ASSERT(fabs(loss - lsum) < 1e-4 * (1 + fabs(lsum)));
    double maxd = 0, maxw = 0;
    for (int64_t j = 0; j < m.nparams; j++) {
        maxd = fmax(maxd, fabs(g[j] - want[j]));
        maxw = fmax(maxw, fabs(want[j]));
    }
    CU_ASSERT(maxd <= 1e-5 * (1 + maxw));
    for (int i = 0; i < n; i++) CU_ASSERT(fabs(got_norms[i] - norms[i]) <= 1e-4 * (1 + norms[i]));
    model_ws_free(ws);
    free(p); free(g); free(g1); free(want);
}

static void test_clipped_logreg(void) { check_clipped(MODEL_LOGREG, 4, -1); }
static void test_clipped_binary(void) { check_clipped(MODEL_LOGREG, 2, -1); }
static void test_clipped_mlp(void) { check_clipped(MODEL_MLP, 3, -1); }

static void cfg_client(config_t *c)
{
    config_defaults(c);
    c->privacy.mode = PRIVACY_CLIENT;
    c->privacy.noise = 1.1;
    c->privacy.clip = 0.5;
    c->privacy.delta = 1e-5;
}

/* privacy_run_init with its environment from a whole configuration (as fl_loop_privacy does) */
static fh_status pv_init(privacy_run *p, const config_t *c, int32_t clients, int32_t m)
{
    const privacy_env env = {(uint64_t)c->train.seed, c->train.batch_size, c->train.local_epochs,
                             secagg_min_survivors(&c->secagg, m), c->secagg.enabled,
                             c->fl.algorithm == ALG_SCAFFOLD, c->fl.algorithm == ALG_CENTRALIZED};
    return privacy_run_init(p, &c->privacy, &env, clients, m);
}

static void test_client_clip_weight(void)
{
    config_t c;
    cfg_client(&c);
    privacy_run p;
    CU_ASSERT_EQUAL_FATAL(pv_init(&p, &c, 1000, 100), FH_OK);
    float u[4] = {3, 4, 0, 0}, v[4] = {0.1f, 0.2f, 0, 0};
    int64_t below = 0;
    double w = privacy_client_update(&p, 1, 7, u, 4, &below);
    CU_ASSERT_DOUBLE_EQUAL(w, 0.01, 1e-15);
    CU_ASSERT_DOUBLE_EQUAL(sqrt(u[0] * u[0] + u[1] * u[1]), 0.5, 1e-6);
    CU_ASSERT_EQUAL(below, 0);
    privacy_client_update(&p, 1, 7, v, 4, &below);
    CU_ASSERT_EQUAL(below, 1);
    CU_ASSERT(v[0] == 0.1f && v[1] == 0.2f);
    privacy_run_free(&p);
}

/* epsilon after r rounds == the accountant of r SGM steps at q = m / clients; the budget
 * stops before the round that would exceed it */
static void test_accounting_and_budget(void)
{
    config_t c;
    cfg_client(&c);
    c.privacy.budget = 2.0;
    privacy_run p;
    CU_ASSERT_EQUAL_FATAL(pv_init(&p, &c, 1000, 100), FH_OK);
    privacy_accountant a;
    privacy_accountant_init(&a);
    int stop = 0, r;
    for (r = 1; r <= 1000; r++) {
        CU_ASSERT_EQUAL_FATAL(privacy_run_begin(&p, r, NULL, NULL, 0, &stop), FH_OK);
        if (stop) break;
        privacy_accountant_step(&a, 0.1, 1.1, 1);
        double eps;
        privacy_epsilon(&a, 1e-5, &eps, NULL);
        CU_ASSERT_DOUBLE_EQUAL(p.eps, eps, 1e-12);
        CU_ASSERT(p.eps <= 2.0);
    }
    CU_ASSERT(stop == 1 && r > 2 && r < 1000);
    privacy_accountant_step(&a, 0.1, 1.1, 1); /* the refused round would have exceeded it */
    double eps;
    privacy_epsilon(&a, 1e-5, &eps, NULL);
    CU_ASSERT(eps > 2.0);
    privacy_run_free(&p);
}

/* adaptive clipping: the update multiplier z_u = (z^-2 - (2 sigma_b)^-2)^-1/2, C moves
 * towards the target quantile, and the round is accounted at z */
static void test_adaptive_clip(void)
{
    config_t c;
    cfg_client(&c);
    c.privacy.adaptive = 1;
    c.privacy.count_noise = 5;
    c.privacy.clip_lr = 0.2;
    c.privacy.quantile = 0.5;
    privacy_run p;
    CU_ASSERT_EQUAL_FATAL(pv_init(&p, &c, 1000, 100), FH_OK);
    int stop;
    privacy_run_begin(&p, 1, NULL, NULL, 0, &stop);
    CU_ASSERT_DOUBLE_EQUAL(p.sigma_update, 1.0 / sqrt(1 / (1.1 * 1.1) - 1 / 100.0), 1e-12);
    CU_ASSERT(p.sigma_update > 1.1);
    float rel[1] = {0}; /* a released update (P = 0: its values do not matter here) */
    privacy_run_end(&p, 1, 100, rel, 0); /* every update unclipped: C shrinks */
    CU_ASSERT(p.clip < 0.5);
    const double c1 = p.clip;
    privacy_run_begin(&p, 2, NULL, NULL, 0, &stop);
    privacy_run_end(&p, 2, 0, rel, 0); /* every update clipped: C grows */
    CU_ASSERT(p.clip > c1);
    /* an aborted secure-aggregation round (issue 12): nothing released, the count of 0 came
     * from the discarded sum; C stays */
    const double c2 = p.clip;
    for (int r = 3; r <= 5; r++) {
        privacy_run_begin(&p, r, NULL, NULL, 0, &stop);
        privacy_run_end(&p, r, 0, NULL, 0);
        CU_ASSERT_EQUAL(p.clip, c2);
    }
    privacy_run_free(&p);
    c.privacy.count_noise = 0.5; /* 2 sigma_b <= z: no noise left for the update */
    CU_ASSERT_EQUAL(pv_init(&p, &c, 1000, 100), FH_EINPUT);
    privacy_run_free(&p);
}

/* norm schedule: sigma follows the decay of the released update norm (floored), and the
 * epsilon is the heterogeneous composition of every round's own sigma */
static void test_schedule_composition(void)
{
    config_t c;
    cfg_client(&c);
    c.privacy.schedule = 1;
    c.privacy.schedule_min = 0.5;
    c.privacy.noise = 2.0;
    privacy_run p;
    CU_ASSERT_EQUAL_FATAL(pv_init(&p, &c, 1000, 100), FH_OK);
    privacy_accountant a;
    privacy_accountant_init(&a);
    float out[1000];
    int stop;
    const double scale[5] = {1.0, 0.8, 0.6, 0.3, 0.1};
    for (int r = 1; r <= 5; r++) {
        privacy_run_begin(&p, r, NULL, NULL, 0, &stop);
        privacy_accountant_step(&a, 0.1, p.sigma, 1);
        /* a released update of signal norm 10 * scale plus the noise of this round */
        rng_t g = rng_stream(4, 0, (uint64_t)r, RNG_DP);
        const double nsd = p.sigma_update * p.clip / 100;
        for (int j = 0; j < 1000; j++) out[j] = (float)(10 * scale[r - 1] / sqrt(1000.0) + nsd * rng_normal(&g));
        privacy_run_end(&p, r, 0, out, 1000);
        if (r >= 2) CU_ASSERT(fabs(p.sigma / 2.0 - fmax(scale[r - 1], 0.5)) < 0.1);
    }
    double eps;
    privacy_epsilon(&a, 1e-5, &eps, NULL);
    CU_ASSERT_DOUBLE_EQUAL(p.eps, eps, 1e-12);
    privacy_run_free(&p);
}

/* distributed noise (issue 12): a completed secure-aggregation round has k >= n_min survivors,
 * and a survivor whose update was rejected still sends its noise share (a zero update plus
 * the share), so the noise on the decoded sum has variance k / n_min (sigma_u C / m)^2 >=
 * (sigma_u C / m)^2 however many were rejected. Here exactly n_min clients survive and a
 * quarter of them are rejected; the measured variance of the weighted sum over 20,000
 * coordinates is the target (relative standard error ~1%). */
static void test_distributed_noise_with_rejections(void)
{
    config_t c;
    cfg_client(&c);
    c.privacy.placement = 1;
    c.secagg.enabled = 1;
    c.secagg.threshold = 0.5;
    const int32_t m = 40, P = 20000;
    privacy_run p;
    CU_ASSERT_EQUAL_FATAL(pv_init(&p, &c, 400, m), FH_OK);
    const int32_t nmin = (int32_t)p.n_min;
    CU_ASSERT_EQUAL(nmin, 20); /* ceil(0.5 * 39) */
    int stop;
    CU_ASSERT_EQUAL_FATAL(privacy_run_begin(&p, 3, NULL, NULL, 0, &stop), FH_OK);
    int64_t *acc = calloc((size_t)P, sizeof *acc);
    float *u = malloc((size_t)P * sizeof *u);
    CU_ASSERT_FATAL(acc && u);
    int64_t below = 0;
    for (int32_t k = 0; k < nmin; k++) { /* the survivors: clients 100..119 */
        const int32_t cid = 100 + k;
        for (int32_t j = 0; j < P; j++) u[j] = (float)NAN; /* what a rejected client trained */
        double w;
        if (k % 4 == 0) {
            w = privacy_client_rejected(&p, 3, cid, u, P);
            CU_ASSERT_DOUBLE_EQUAL(w, 1.0 / m, 1e-15);
        } else {
            memset(u, 0, (size_t)P * sizeof *u); /* an accepted zero update: its share only */
            w = privacy_client_update(&p, 3, cid, u, P, &below);
        }
        if (w > 0) fx_accumulate(acc, u, w, P); /* as src/fl/engine.c does */
    }
    float *out = malloc((size_t)P * sizeof *out);
    CU_ASSERT_FATAL(out != NULL);
    privacy_run_decode(&p, 3, acc, P, out); /* distributed: adds nothing more */
    double ss = 0;
    for (int32_t j = 0; j < P; j++) ss += (double)out[j] * out[j];
    const double var = ss / P, target = pow(p.sigma_update * p.clip / m, 2);
    CU_ASSERT(var >= 0.95 * target);
    CU_ASSERT(fabs(var / target - 1) < 0.05);
    /* central placement or no DP: nothing to add for a rejected client, u untouched */
    u[0] = 7;
    p.placement = 0;
    CU_ASSERT_EQUAL(privacy_client_rejected(&p, 3, 100, u, P), 0.0);
    p.placement = 1;
    p.mode = PRIVACY_NONE;
    CU_ASSERT_EQUAL(privacy_client_rejected(&p, 3, 100, u, P), 0.0);
    CU_ASSERT_EQUAL(u[0], 7);
    free(acc); free(u); free(out);
    privacy_run_free(&p);
}

/* DP-FedBuff (issue 12): by default the budget holds for the no-sampling bound (the client in
 * the most buffers, n, spent n Gaussian steps at q = 1), not only for q = K/C */
static void test_fedbuff_accounting(void)
{
    config_t c;
    cfg_client(&c);
    c.privacy.noise = 1.0;
    c.privacy.budget = 5.0; /* one unsampled step at sigma 1: 4.73, two: 7.08 */
    enum { C = 100, K = 5 };
    int64_t joined[C] = {0};
    uint8_t pending[C] = {0};
    for (int mode = 0; mode < 2; mode++) {
        c.privacy.fedbuff_accounting = mode; /* 0 bound (default), 1 sampled */
        privacy_run p;
        CU_ASSERT_EQUAL_FATAL(pv_init(&p, &c, C, K), FH_OK);
        CU_ASSERT_EQUAL(p.fedbuff_bound, mode == 0);
        memset(joined, 0, sizeof joined);
        int stop = 0, b;
        for (b = 1; b <= 40 && !stop; b++) {
            memset(pending, 0, sizeof pending);
            for (int k = 0; k < K; k++) pending[(b * 7 + k) % C] = 1; /* clients 7b..7b+4 mod 100 */
            CU_ASSERT_EQUAL_FATAL(privacy_fedbuff_begin(&p, b, joined, pending, C, &stop), FH_OK);
            if (stop) break;
            for (int i = 0; i < C; i++) joined[i] += pending[i];
            double eb;
            CU_ASSERT_EQUAL(privacy_client_bound(&p, joined, NULL, C, &eb), FH_OK);
            if (mode == 0) CU_ASSERT(eb <= 5.0);
        }
        if (mode == 0) CU_ASSERT(stop && b == 15); /* clients 5-9: 7-9 were in buffer 1 */
        if (mode == 1) CU_ASSERT(!stop && p.eps < 5.0); /* q = 0.05 over 40 buffers: below 5 */
        privacy_run_free(&p);
    }
}

/* sample mode: each client's epsilon is its own composition; the report is the maximum */
static void test_sample_accounting(void)
{
    config_t c;
    config_defaults(&c);
    c.privacy.mode = PRIVACY_SAMPLE;
    c.privacy.noise = 1.0;
    c.train.batch_size = 10;
    c.train.local_epochs = 2;
    privacy_run p;
    CU_ASSERT_EQUAL_FATAL(pv_init(&p, &c, 3, 2), FH_OK);
    int32_t ids[2] = {0, 2};
    int64_t cnt[2] = {100, 400};
    int stop;
    privacy_run_begin(&p, 1, ids, cnt, 2, &stop);
    privacy_accountant a0, a2;
    privacy_accountant_init(&a0);
    privacy_accountant_init(&a2);
    privacy_accountant_step(&a0, 0.1, 1.0, 20);
    privacy_accountant_step(&a2, 0.025, 1.0, 80);
    double e0, e2;
    privacy_epsilon(&a0, 1e-5, &e0, NULL);
    privacy_epsilon(&a2, 1e-5, &e2, NULL);
    CU_ASSERT_DOUBLE_EQUAL(p.eps, fmax(e0, e2), 1e-12);
    CU_ASSERT(p.per[1].steps == 0);
    privacy_run_free(&p);
}

void tests_register_dp(void)
{
    CU_pSuite s = CU_add_suite("dp", NULL, NULL);
    tests_add(s, "clipped_grad_logreg_equals_batch_of_one", test_clipped_logreg);
    tests_add(s, "clipped_grad_binary_equals_batch_of_one", test_clipped_binary);
    tests_add(s, "clipped_grad_mlp_equals_batch_of_one", test_clipped_mlp);
    tests_add(s, "client_clip_and_weight", test_client_clip_weight);
    tests_add(s, "accounting_and_budget", test_accounting_and_budget);
    tests_add(s, "adaptive_clipping", test_adaptive_clip);
    tests_add(s, "schedule_heterogeneous_composition", test_schedule_composition);
    tests_add(s, "sample_level_per_client", test_sample_accounting);
    tests_add(s, "distributed_noise_with_rejected_clients", test_distributed_noise_with_rejections);
    tests_add(s, "fedbuff_budget_on_the_bound", test_fedbuff_accounting);
}
