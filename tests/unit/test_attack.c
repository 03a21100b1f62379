/* [attack] (src/attack/poison.c): who is malicious, poisoned rows, poisoned updates. */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/attack.h"
#include "fedhpc/config.h"
#include "fedhpc/rng.h"
#include "tests.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static config_attack att(int32_t mode, double fraction)
{
    config_t c;
    config_defaults(&c);
    c.attack.mode = mode;
    c.attack.fraction = fraction;
    return c.attack;
}

/* per_round: round(fraction * n) of the round's clients, the same set whatever the order of the
 * list (a pure function of seed, round and client id: no rank, no order), none before start_round */
static void test_pick_per_round(void)
{
    config_attack a = att(ATTACK_SIGN_FLIP, 0.1);
    int32_t ids[100], rev[100];
    uint8_t mal[100], mal2[100];
    for (int32_t i = 0; i < 100; i++) ids[i] = 3 * i + 1, rev[99 - i] = 3 * i + 1;
    const double fr[] = {0, 0.04, 0.1, 0.25, 0.5, 1};
    for (int f = 0; f < 6; f++) {
        a.fraction = fr[f];
        for (int32_t n = 1; n <= 100; n += 33) {
            const int32_t k = attack_pick(&a, 7, 5, ids, n, NULL, mal);
            int32_t s = 0;
            for (int32_t i = 0; i < n; i++) s += mal[i];
            CU_ASSERT_EQUAL(k, s);
            CU_ASSERT_EQUAL(k, (int32_t)llround(fr[f] * n));
        }
    }
    a.fraction = 0.2;
    CU_ASSERT_EQUAL(attack_pick(&a, 7, 5, ids, 100, NULL, mal), 20);
    CU_ASSERT_EQUAL(attack_pick(&a, 7, 5, rev, 100, NULL, mal2), 20);
    for (int32_t i = 0; i < 100; i++) CU_ASSERT_EQUAL(mal[i], mal2[99 - i]); /* same clients */
    attack_pick(&a, 7, 6, ids, 100, NULL, mal2);
    CU_ASSERT(memcmp(mal, mal2, 100) != 0); /* another round, another draw */
    attack_pick(&a, 8, 5, ids, 100, NULL, mal2);
    CU_ASSERT(memcmp(mal, mal2, 100) != 0); /* another seed */
    a.start_round = 6;
    CU_ASSERT_EQUAL(attack_pick(&a, 7, 5, ids, 100, NULL, mal), 0);
    CU_ASSERT_EQUAL(attack_pick(&a, 7, 6, ids, 100, NULL, mal), 20);
    a.mode = ATTACK_NONE;
    CU_ASSERT_EQUAL(attack_pick(&a, 7, 6, ids, 100, NULL, mal), 0);
    /* over many rounds every position is picked about equally often (no bias to the list head) */
    a = att(ATTACK_SCALE, 0.1);
    int32_t hits[10] = {0};
    for (int32_t r = 1; r <= 2000; r++) {
        int32_t sampled[10];
        for (int32_t i = 0; i < 10; i++) sampled[i] = (r * 10 + i) % 100;
        CU_ASSERT_EQUAL(attack_pick(&a, 1, r, sampled, 10, NULL, mal), 1);
        for (int32_t i = 0; i < 10; i++) hits[i] += mal[i];
    }
    for (int32_t i = 0; i < 10; i++) CU_ASSERT(hits[i] > 130 && hits[i] < 270);
}

/* fixed: round(fraction * C) clients for the whole run; a round's malicious clients are exactly
 * its members of that set */
static void test_pick_fixed(void)
{
    config_attack a = att(ATTACK_BACKDOOR, 0.1);
    a.selection = ATTACK_FIXED;
    uint8_t fixed[1000], again[1000], mal[50];
    CU_ASSERT_EQUAL_FATAL(attack_fixed_set(3, 0.1, 1000, fixed), FH_OK);
    int32_t s = 0;
    for (int32_t c = 0; c < 1000; c++) s += fixed[c];
    CU_ASSERT_EQUAL(s, 100);
    attack_fixed_set(3, 0.1, 1000, again);
    CU_ASSERT(memcmp(fixed, again, 1000) == 0);
    attack_fixed_set(4, 0.1, 1000, again);
    CU_ASSERT(memcmp(fixed, again, 1000) != 0);
    attack_fixed_set(3, 0.37, 1000, again);
    s = 0;
    for (int32_t c = 0; c < 1000; c++) s += again[c];
    CU_ASSERT_EQUAL(s, 370);
    int32_t ids[50];
    for (int32_t i = 0; i < 50; i++) ids[i] = 19 * i + 2;
    const int32_t k = attack_pick(&a, 3, 9, ids, 50, fixed, mal);
    int32_t want = 0;
    for (int32_t i = 0; i < 50; i++) {
        CU_ASSERT_EQUAL(mal[i], fixed[ids[i]]);
        want += fixed[ids[i]];
    }
    CU_ASSERT_EQUAL(k, want);
    CU_ASSERT_EQUAL(attack_count(0.1, 0), 0);
    CU_ASSERT_EQUAL(attack_count(1.0, 7), 7);
    CU_ASSERT_EQUAL(attack_count(0.05, 10), 1); /* round half away from zero */
}

static void test_label_flip(void)
{
    config_attack a = att(ATTACK_LABEL_FLIP, 0.1);
    a.source_class = 3;
    a.target_class = 8;
    attack_geom g = {4, 0, 1};
    float x[40], x0[40];
    int32_t y[10], y0[10];
    for (int i = 0; i < 40; i++) x[i] = x0[i] = (float)i;
    for (int i = 0; i < 10; i++) y[i] = y0[i] = i % 5;
    CU_ASSERT_EQUAL(attack_poison_rows(&a, &g, 1, 1, 0, x, y, 10), 2);
    for (int i = 0; i < 10; i++) CU_ASSERT_EQUAL(y[i], y0[i] == 3 ? 8 : y0[i]);
    CU_ASSERT(memcmp(x, x0, sizeof x) == 0);
    a.mode = ATTACK_SIGN_FLIP; /* update attacks leave the rows alone */
    CU_ASSERT_EQUAL(attack_poison_rows(&a, &g, 1, 1, 0, x, y0, 10), 0);
    CU_ASSERT(memcmp(x, x0, sizeof x) == 0);
}

/* the trigger: exactly the bottom-right t x t pixels of an image, the last t features of a row */
static void test_trigger(void)
{
    config_attack a = att(ATTACK_BACKDOOR, 0.1);
    a.trigger = 3;
    a.trigger_value = 1;
    attack_geom g = attack_geom_of("fashion-mnist", 784, 0, 0);
    CU_ASSERT_EQUAL(g.side, 28);
    float x[784];
    for (int i = 0; i < 784; i++) x[i] = 0.25f;
    attack_apply_trigger(&a, &g, x);
    int set = 0;
    for (int r = 0; r < 28; r++)
        for (int c = 0; c < 28; c++) {
            const int in = r >= 25 && c >= 25;
            CU_ASSERT_EQUAL(x[r * 28 + c], in ? 1.0f : 0.25f);
            set += in;
        }
    CU_ASSERT_EQUAL(set, 9);
    /* a CNN with 2 channels (channels last) */
    attack_geom gc = attack_geom_of("x", 8 * 8 * 2, 8, 2);
    float xc[128] = {0};
    a.trigger = 2;
    attack_apply_trigger(&a, &gc, xc);
    int n = 0;
    for (int i = 0; i < 128; i++) n += xc[i] == 1.0f;
    CU_ASSERT_EQUAL(n, 8);
    CU_ASSERT_EQUAL(xc[(7 * 8 + 7) * 2 + 1], 1.0f);
    CU_ASSERT_EQUAL(xc[(5 * 8 + 7) * 2], 0.0f);
    /* tabular: not a square, or not an image data set */
    attack_geom gt = attack_geom_of("credit", 784, 0, 0);
    CU_ASSERT_EQUAL(gt.side, 0);
    float xt[10] = {0};
    a.trigger = 3;
    a.trigger_value = 5;
    gt.features = 10;
    attack_apply_trigger(&a, &gt, xt);
    for (int i = 0; i < 10; i++) CU_ASSERT_EQUAL(xt[i], i >= 7 ? 5.0f : 0.0f);
}

/* backdoor rows: round(poison_fraction * n) distinct rows get the trigger and the target label,
 * the others are untouched; the same rows for the same (seed, round, client) */
static void test_backdoor_rows(void)
{
    config_attack a = att(ATTACK_BACKDOOR, 0.1);
    a.trigger = 2;
    a.target_class = 9;
    a.poison_fraction = 0.3;
    attack_geom g = {16, 4, 1};
    enum { N = 50 };
    float x[N * 16], x2[N * 16];
    int32_t y[N], y2[N];
    for (int i = 0; i < N * 16; i++) x[i] = x2[i] = 0.5f;
    for (int i = 0; i < N; i++) y[i] = y2[i] = i % 9;
    CU_ASSERT_EQUAL(attack_poison_rows(&a, &g, 1, 4, 7, x, y, N), 15);
    attack_poison_rows(&a, &g, 1, 4, 7, x2, y2, N);
    CU_ASSERT(memcmp(x, x2, sizeof x) == 0 && memcmp(y, y2, sizeof y) == 0);
    int poisoned = 0;
    for (int i = 0; i < N; i++) {
        const float *r = x + i * 16;
        const int trig = r[10] == 1.0f && r[11] == 1.0f && r[14] == 1.0f && r[15] == 1.0f;
        int other = 1;
        for (int j = 0; j < 16; j++)
            if (j != 10 && j != 11 && j != 14 && j != 15 && r[j] != 0.5f) other = 0;
        CU_ASSERT(other);
        if (trig) {
            CU_ASSERT_EQUAL(y[i], 9);
            poisoned++;
        } else {
            CU_ASSERT_EQUAL(r[10], 0.5f);
            CU_ASSERT_EQUAL(y[i], i % 9);
        }
    }
    CU_ASSERT_EQUAL(poisoned, 15);
    for (int i = 0; i < N * 16; i++) x2[i] = 0.5f;
    for (int i = 0; i < N; i++) y2[i] = i % 9;
    attack_poison_rows(&a, &g, 1, 4, 8, x2, y2, N); /* another client: other rows */
    CU_ASSERT(memcmp(y, y2, sizeof y) != 0);
}

static void test_update(void)
{
    config_attack a = att(ATTACK_SIGN_FLIP, 0.1);
    enum { P = 20000 };
    float *u = malloc(P * sizeof *u), *v = malloc(P * sizeof *v);
    CU_ASSERT_FATAL(u && v);
    rng_t r = rng_stream(1, 2, 3, RNG_INIT);
    double ss = 0;
    for (int j = 0; j < P; j++) {
        u[j] = v[j] = (float)(0.01 * rng_normal(&r));
        ss += (double)u[j] * u[j];
    }
    const double rms = sqrt(ss / P);
    attack_poison_update(&a, 1, 1, 0, u, P, 2.0);
    for (int j = 0; j < P; j++) CU_ASSERT_EQUAL(u[j], (float)(-2.0 * v[j]));
    memcpy(u, v, P * sizeof *u);
    a.mode = ATTACK_SCALE;
    attack_poison_update(&a, 1, 1, 0, u, P, 3.0);
    for (int j = 0; j < P; j++) CU_ASSERT_EQUAL(u[j], (float)(3.0 * v[j]));
    memcpy(u, v, P * sizeof *u);
    a.mode = ATTACK_LABEL_FLIP; /* a data attack sends its honest update */
    attack_poison_update(&a, 1, 1, 0, u, P, 3.0);
    CU_ASSERT(memcmp(u, v, P * sizeof *u) == 0);
    a.mode = ATTACK_GAUSSIAN;
    attack_poison_update(&a, 1, 1, 0, u, P, 4.0);
    double s2 = 0, dot = 0, mean = 0;
    for (int j = 0; j < P; j++) {
        s2 += (double)u[j] * u[j];
        dot += (double)u[j] * v[j];
        mean += u[j];
    }
    CU_ASSERT(fabs(sqrt(s2 / P) / rms - 4.0) < 0.1);
    CU_ASSERT(fabs(dot / sqrt(s2 * ss)) < 0.05); /* noise, not the update */
    CU_ASSERT(fabs(mean / P) < 0.05 * rms * 4);
    /* deterministic: the same input, seed, round and client give the same noise bit for bit */
    float *w = malloc(P * sizeof *w);
    CU_ASSERT_FATAL(w != NULL);
    rng_t r2 = rng_stream(1, 2, 3, RNG_INIT);
    for (int j = 0; j < P; j++) v[j] = w[j] = (float)(0.01 * rng_normal(&r2));
    attack_poison_update(&a, 1, 1, 0, v, P, 4.0);
    CU_ASSERT(memcmp(u, v, P * sizeof *u) == 0);
    attack_poison_update(&a, 1, 1, 1, w, P, 4.0); /* another client: other noise */
    CU_ASSERT(memcmp(u, w, P * sizeof *u) != 0);
    free(w);
    free(u);
    free(v);
    /* model replacement: boost 0 = N_round / (n_i * server_lr * k) */
    a = att(ATTACK_BACKDOOR, 0.1);
    a.boost = 0;
    CU_ASSERT_DOUBLE_EQUAL(attack_boost(&a, 100, 1000, 1.0, 1), 10.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(attack_boost(&a, 100, 1000, 0.5, 2), 10.0, 1e-12);
    a.boost = 3;
    CU_ASSERT_DOUBLE_EQUAL(attack_boost(&a, 100, 1000, 1.0, 1), 3.0, 1e-12);
}

/* the hooks: an honest client trains on its own rows; a malicious one on a poisoned copy */
static void test_run_hooks(void)
{
    config_t c;
    config_defaults(&c);
    c.attack.mode = ATTACK_LABEL_FLIP;
    c.attack.fraction = 0.5;
    c.attack.source_class = 0;
    c.attack.target_class = 1;
    attack_geom g = {3, 0, 1};
    attack_run r;
    CU_ASSERT_EQUAL_FATAL(attack_run_init(&r, &c, &g, 2, 10, 4), FH_OK);
    int32_t ids[4] = {0, 3, 5, 9};
    CU_ASSERT_EQUAL(attack_run_round(&r, 1, ids, 4), FH_OK);
    CU_ASSERT_EQUAL(r.k, 2);
    float x[6] = {1, 2, 3, 4, 5, 6};
    int32_t y[2] = {0, 0};
    for (int32_t i = 0; i < 4; i++) {
        const float *xi = x;
        const int32_t *yi = y;
        CU_ASSERT_EQUAL(attack_run_rows(&r, i, ids[i], &xi, &yi, 2), FH_OK);
        if (r.mal[i]) {
            CU_ASSERT(xi != x && yi != y);
            CU_ASSERT(yi[0] == 1 && yi[1] == 1 && xi[5] == 6);
        } else {
            CU_ASSERT(xi == x && yi == y);
        }
        CU_ASSERT(y[0] == 0 && y[1] == 0); /* the client's own rows are never changed */
    }
    attack_run_free(&r);
}

static void test_bad_input(void)
{
    config_t c;
    config_defaults(&c);
    c.attack.mode = ATTACK_LABEL_FLIP;
    c.attack.source_class = c.attack.target_class = 4;
    CU_ASSERT_EQUAL(attack_config_check(&c, "x.ini"), FH_EINPUT);
    CU_ASSERT(strstr(fh_error_msg(), "source_class") != NULL);
    c.attack.source_class = 1;
    CU_ASSERT_EQUAL(attack_config_check(&c, "x.ini"), FH_OK);
    c.async.mode = 5;
    CU_ASSERT_EQUAL(attack_config_check(&c, "x.ini"), FH_EINPUT);
    c.async.mode = 0;
    c.attack.mode = ATTACK_BACKDOOR;
    c.attack.trigger = 29;
    attack_geom g = attack_geom_of("fmnist", 784, 0, 0);
    CU_ASSERT_EQUAL(attack_data_check(&c.attack, &g, 10, "f.h5"), FH_EINPUT);
    CU_ASSERT(strstr(fh_error_msg(), "[attack] trigger") != NULL);
    c.attack.trigger = 28;
    CU_ASSERT_EQUAL(attack_data_check(&c.attack, &g, 10, "f.h5"), FH_OK);
    c.attack.target_class = 10;
    CU_ASSERT_EQUAL(attack_data_check(&c.attack, &g, 10, "f.h5"), FH_EINPUT);
    CU_ASSERT(strstr(fh_error_msg(), "[attack] target_class") != NULL);
}

void tests_register_attack(void)
{
    CU_pSuite s = CU_add_suite("attack", NULL, NULL);
    tests_add(s, "pick_per_round", test_pick_per_round);
    tests_add(s, "pick_fixed", test_pick_fixed);
    tests_add(s, "label_flip", test_label_flip);
    tests_add(s, "trigger", test_trigger);
    tests_add(s, "backdoor_rows", test_backdoor_rows);
    tests_add(s, "update", test_update);
    tests_add(s, "run_hooks", test_run_hooks);
    tests_add(s, "bad_input", test_bad_input);
}
