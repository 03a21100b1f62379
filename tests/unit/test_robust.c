/* Unit tests of robust aggregation (include/fedhpc/robust.h): every rule against a naive
 * implementation written differently (order statistics by counting, distances in double) on
 * random inputs from rng streams — odd and even client counts, many ties, the qsort path — plus
 * the exactness of the sliced fixed-point Gram matrix and the distributed driver against the
 * rules run on all updates at once (under mpirun: any number of ranks). */
#include "tests.h"

#include "fedhpc/robust.h"
#include "fedhpc/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* n x len values; ties: drawn from 9 values (many equal entries per coordinate) */
static void fill(float *R, int64_t n, uint64_t seed, int ties)
{
    rng_t r = rng_stream(seed, 11, 0, RNG_SAMPLE);
    for (int64_t i = 0; i < n; i++)
        R[i] = ties ? (float)((double)rng_below(&r, 9) * 0.25 - 1.0) : (float)rng_normal(&r);
}

/* the t-th smallest of v[n] (0-based) by counting: x such that #{< x} <= t < #{<= x} */
static float order_stat(const float *v, int32_t n, int32_t t)
{
    for (int32_t i = 0; i < n; i++) {
        int32_t lt = 0, le = 0;
        for (int32_t j = 0; j < n; j++) {
            lt += v[j] < v[i];
            le += v[j] <= v[i];
        }
        if (lt <= t && t < le) return v[i];
    }
    return NAN;
}

static void column(const float *R, int32_t n, int64_t len, int64_t c, float *v)
{
    for (int32_t i = 0; i < n; i++) v[i] = R[(int64_t)i * len + c];
}

static void test_median(void)
{
    const int64_t len = 53;
    static float R[70 * 53];
    float out[53], tmp[70], v[70];
    /* up to 64 clients: ranks counted over tiles; 65 and 70: the sort */
    const int32_t ns[] = {1, 2, 3, 4, 5, 6, 7, 10, 11, 33, 48, 64, 65, 70};
    for (int ties = 0; ties < 2; ties++)
        for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
            const int32_t n = ns[t];
            fill(R, n * len, 100 + t, ties);
            robust_median(R, n, len, out, tmp);
            int bad = 0;
            for (int64_t c = 0; c < len; c++) {
                column(R, n, len, c, v);
                const float want = n % 2 ? order_stat(v, n, n / 2)
                                         : (float)(0.5 * ((double)order_stat(v, n, n / 2 - 1) + (double)order_stat(v, n, n / 2)));
                bad += memcmp(&want, &out[c], sizeof want) != 0;
            }
            CU_ASSERT_EQUAL(bad, 0);
        }
}

static void test_trimmed_mean(void)
{
    const int64_t len = 41;
    static float R[67 * 41];
    float out[41], tmp[67], v[67];
    const int32_t ns[] = {1, 2, 3, 4, 5, 9, 10, 12, 35, 40, 67};
    const double ts[] = {0, 0.1, 0.2, 0.34, 0.49};
    for (int ties = 0; ties < 2; ties++)
        for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
            for (size_t b = 0; b < sizeof ts / sizeof ts[0]; b++) {
                const int32_t n = ns[a];
                const int32_t k = robust_trim_count(n, ts[b]);
                CU_ASSERT_EQUAL(k, (int32_t)floor(ts[b] * n));
                CU_ASSERT(n - 2 * k >= 1);
                fill(R, n * len, 200 + a * 10 + b, ties);
                robust_trimmed_mean(R, n, len, k, out, tmp);
                int bad = 0;
                for (int64_t c = 0; c < len; c++) {
                    column(R, n, len, c, v);
                    double s = 0;
                    for (int32_t t = k; t < n - k; t++) s += (double)order_stat(v, n, t);
                    const float want = (float)(s / (n - 2 * k));
                    bad += memcmp(&want, &out[c], sizeof want) != 0;
                }
                CU_ASSERT_EQUAL(bad, 0);
            }
    /* k = 0 is the plain mean, (n-1)/2 for odd n the median */
    fill(R, 7 * len, 5, 0);
    float med[41];
    robust_trimmed_mean(R, 7, len, 3, out, tmp);
    robust_median(R, 7, len, med, tmp);
    CU_ASSERT_EQUAL(memcmp(out, med, sizeof(float) * (size_t)len), 0);
}

/* Krum the textbook way: squared distances in double, sort each row, pick the least scores */
static void naive_krum(const float *R, int32_t n, int64_t len, int32_t f, int32_t m, int32_t *sel, double *score)
{
    const int32_t k = robust_krum_neighbors(n, f);
    double *d = malloc((size_t)n * sizeof *d);
    for (int32_t i = 0; i < n; i++) {
        int32_t c = 0;
        for (int32_t j = 0; j < n; j++) {
            if (j == i) continue;
            double s = 0;
            for (int64_t x = 0; x < len; x++) {
                const double e = (double)R[(int64_t)i * len + x] - (double)R[(int64_t)j * len + x];
                s += e * e;
            }
            d[c++] = s;
        }
        for (int32_t a = 0; a < c; a++) /* selection sort */
            for (int32_t b = a + 1; b < c; b++)
                if (d[b] < d[a]) { const double t = d[a]; d[a] = d[b]; d[b] = t; }
        score[i] = 0;
        for (int32_t t = 0; t < k; t++) score[i] += d[t];
    }
    char *used = calloc((size_t)n, 1);
    for (int32_t t = 0; t < m; t++) {
        int32_t b = -1;
        for (int32_t i = 0; i < n; i++)
            if (!used[i] && (b < 0 || score[i] < score[b])) b = i;
        used[b] = 1;
    }
    int32_t c = 0;
    for (int32_t i = 0; i < n; i++)
        if (used[i]) sel[c++] = i;
    free(used);
    free(d);
}

static void gram_of(const float *R, int32_t n, int64_t len, int64_t *G)
{
    double mx = 0;
    for (int32_t i = 0; i < n; i++) {
        double s = 0;
        for (int64_t x = 0; x < len; x++) s += (double)R[(int64_t)i * len + x] * R[(int64_t)i * len + x];
        if (sqrt(s) > mx) mx = sqrt(s);
    }
    memset(G, 0, (size_t)n * n * sizeof *G);
    robust_gram_add(R, n, len, robust_gram_shift(mx), G);
}

static void test_krum(void)
{
    enum { NMAX = 30, LEN = 300 };
    float *R = malloc(sizeof(float) * NMAX * LEN);
    int64_t *G = malloc(sizeof(int64_t) * NMAX * NMAX);
    int32_t sel[NMAX], nsel[NMAX];
    double score[NMAX], nscore[NMAX], dist[NMAX];
    const int32_t ns[] = {3, 4, 5, 6, 7, 10, 11, 30};
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++)
        for (int32_t f = 0; 2 * f + 2 < ns[a] && f < 4; f++)
            for (int multi = 0; multi < 2; multi++) {
                const int32_t n = ns[a];
                fill(R, (int64_t)n * LEN, 300 + a * 7 + (size_t)f, 0);
                /* clients at different scales: distinct scores, far from ties */
                for (int32_t i = 0; i < n; i++)
                    for (int64_t x = 0; x < LEN; x++) R[(int64_t)i * LEN + x] *= (float)(0.01 * (1 + (i * 7) % n));
                gram_of(R, n, LEN, G);
                const int32_t m = multi ? robust_multikrum_count(n, f) : 1;
                const int32_t got = robust_krum_select(G, n, f, m, sel, score, dist);
                naive_krum(R, n, LEN, f, m, nsel, nscore);
                CU_ASSERT_EQUAL(got, m);
                CU_ASSERT_EQUAL(memcmp(sel, nsel, sizeof(int32_t) * (size_t)m), 0);
            }
    free(R);
    free(G);
}

/* scores are fixed point: score / 2^shift is the squared-distance sum, to ~P * 2^-shift */
static void test_krum_scores(void)
{
    enum { N = 9, LEN = 1000 };
    float R[N * LEN];
    int64_t G[N * N];
    int32_t sel[N], nsel[N];
    double score[N], nscore[N], dist[N];
    fill(R, N * LEN, 77, 0);
    double mx = 0;
    for (int32_t i = 0; i < N; i++) {
        double s = 0;
        for (int64_t x = 0; x < LEN; x++) s += (double)R[i * LEN + x] * R[i * LEN + x];
        if (sqrt(s) > mx) mx = sqrt(s);
    }
    const int shift = robust_gram_shift(mx);
    CU_ASSERT(mx * mx * ldexp(1.0, shift) < ldexp(1.0, 59));
    CU_ASSERT(mx * mx * ldexp(1.0, shift) >= ldexp(1.0, 58));
    memset(G, 0, sizeof G);
    robust_gram_add(R, N, LEN, shift, G);
    robust_krum_select(G, N, 2, 1, sel, score, dist);
    naive_krum(R, N, LEN, 2, 1, nsel, nscore);
    for (int32_t i = 0; i < N; i++) CU_ASSERT(fabs(ldexp(score[i], -shift) - nscore[i]) <= 1e-9 * nscore[i]);
}

/* duplicated updates: equal scores, the lowest index wins in both implementations */
static void test_krum_ties(void)
{
    enum { N = 8, LEN = 64 };
    float R[N * LEN];
    int64_t G[N * N];
    int32_t sel[N], nsel[N];
    double score[N], nscore[N], dist[N];
    fill(R, N * LEN, 91, 1);
    for (int64_t x = 0; x < LEN; x++) R[5 * LEN + x] = R[2 * LEN + x] = R[6 * LEN + x];
    gram_of(R, N, LEN, G);
    for (int32_t m = 1; m <= N; m++) {
        robust_krum_select(G, N, 1, m, sel, score, dist);
        naive_krum(R, N, LEN, 1, m, nsel, nscore);
        CU_ASSERT_EQUAL(memcmp(sel, nsel, sizeof(int32_t) * (size_t)m), 0);
    }
    CU_ASSERT_EQUAL(score[2], score[5]);
    CU_ASSERT_EQUAL(score[2], score[6]);
}

/* Byzantine updates far away are never chosen; the robust rules stay near the honest ones */
static void test_byzantine(void)
{
    enum { N = 11, F = 3, LEN = 200 };
    float R[N * LEN], out[LEN], tmp[N];
    int64_t G[N * N];
    int32_t sel[N];
    double score[N], dist[N];
    fill(R, N * LEN, 5, 0);
    for (int64_t x = 0; x < N * LEN; x++) R[x] *= 0.01f;
    for (int32_t i = 4; i < 4 + F; i++) /* clients 4, 5, 6: scaled sign flip */
        for (int64_t x = 0; x < LEN; x++) R[i * LEN + x] = -100.0f + R[i * LEN + x];
    gram_of(R, N, LEN, G);
    int32_t m = robust_krum_select(G, N, F, 1, sel, score, dist);
    CU_ASSERT(m == 1 && (sel[0] < 4 || sel[0] > 6));
    m = robust_krum_select(G, N, F, robust_multikrum_count(N, F), sel, score, dist);
    CU_ASSERT_EQUAL(m, N - F);
    for (int32_t t = 0; t < m; t++) CU_ASSERT(sel[t] < 4 || sel[t] > 6);
    robust_median(R, N, LEN, out, tmp);
    for (int64_t x = 0; x < LEN; x++) CU_ASSERT(fabsf(out[x]) < 0.1f);
    robust_trimmed_mean(R, N, LEN, robust_trim_count(N, 0.3), out, tmp);
    for (int64_t x = 0; x < LEN; x++) CU_ASSERT(fabsf(out[x]) < 0.1f);
}

/* the Gram over arbitrary coordinate cuts sums to the same integers: -np independence */
static void test_gram_slices(void)
{
    enum { N = 7, LEN = 5000 };
    float *R = malloc(sizeof(float) * N * LEN), *S0 = malloc(sizeof(float) * (N * LEN + 1)), *S = S0 + 1; /* misaligned */
    int64_t G[N * N], H[N * N];
    fill(R, N * LEN, 8, 0);
    const int shift = robust_gram_shift(200.0);
    memset(G, 0, sizeof G);
    robust_gram_add(R, N, LEN, shift, G);
    const int64_t B = ROBUST_GRAM_BLOCK, cuts[] = {0, B, 2 * B, 4 * B, 5000}; /* slices start at block multiples */
    memset(H, 0, sizeof H);
    for (size_t c = 0; c + 1 < sizeof cuts / sizeof cuts[0]; c++) {
        const int64_t a = cuts[c], len = cuts[c + 1] - cuts[c];
        for (int32_t i = 0; i < N; i++) memcpy(S + i * len, R + (int64_t)i * LEN + a, sizeof(float) * (size_t)len);
        robust_gram_add(S, N, len, shift, H);
    }
    CU_ASSERT_EQUAL(memcmp(G, H, sizeof G), 0);
    for (int32_t i = 0; i < N; i++)
        for (int32_t j = 0; j <= i; j++) {
            double d = 0;
            for (int64_t x = 0; x < LEN; x++) d += (double)R[i * LEN + x] * R[j * LEN + x];
            CU_ASSERT(fabs(ldexp((double)G[i * N + j], -shift) - d) < 1e-9 * (1 + fabs(d)));
        }
    free(R);
    free(S0);
}

static void test_mean_clip_noise(void)
{
    enum { N = 6, LEN = 100 };
    float R[N * LEN], out[LEN];
    fill(R, N * LEN, 4, 0);
    const int32_t rows[] = {0, 2, 5};
    robust_mean_rows(R, LEN, rows, 3, out);
    for (int64_t x = 0; x < LEN; x++) {
        const float want = (float)(((double)R[x] + R[2 * LEN + x] + R[5 * LEN + x]) / 3);
        CU_ASSERT_EQUAL(memcmp(&want, &out[x], sizeof want), 0);
    }
    float u[LEN], v[LEN];
    memcpy(u, R, sizeof u);
    memcpy(v, R, sizeof v);
    const double n0 = robust_clip(u, LEN, 1e6, -1);
    CU_ASSERT_EQUAL(memcmp(u, v, sizeof u), 0); /* under the bound: untouched */
    float w[LEN];
    memcpy(w, u, sizeof w);
    const double n1 = robust_clip(u, LEN, 0.5, -1);
    CU_ASSERT_DOUBLE_EQUAL(n0, n1, 0);
    CU_ASSERT_DOUBLE_EQUAL(robust_clip(w, LEN, 0.5, n0), n0, 0); /* the norm given: the same clip */
    CU_ASSERT_EQUAL(memcmp(u, w, sizeof w), 0);
    double ss = 0;
    for (int64_t x = 0; x < LEN; x++) ss += (double)u[x] * u[x];
    CU_ASSERT(fabs(sqrt(ss) - 0.5) < 1e-6);
    CU_ASSERT(fabs(u[3] / v[3] - 0.5 / n0) < 1e-6);
    /* noise: a pure function of (seed, round) */
    memset(u, 0, sizeof u);
    memset(v, 0, sizeof v);
    robust_noise(u, LEN, 0.1, 3, 7);
    robust_noise(v, LEN, 0.1, 3, 7);
    CU_ASSERT_EQUAL(memcmp(u, v, sizeof u), 0);
    robust_noise(v, LEN, 0.1, 3, 8);
    CU_ASSERT(memcmp(u, v, sizeof u) != 0);
    CU_ASSERT_EQUAL(robust_krum_neighbors(1, 0), 0);
    CU_ASSERT_EQUAL(robust_krum_neighbors(2, 0), 1);
    CU_ASSERT_EQUAL(robust_krum_neighbors(10, 2), 6);
    CU_ASSERT_EQUAL(robust_krum_neighbors(4, 3), 1);
    CU_ASSERT_EQUAL(robust_multikrum_count(10, 2), 8);
    CU_ASSERT_EQUAL(robust_multikrum_count(3, 5), 1);
}

/* The driver over the test's ranks against the rules on all updates at once: n clients placed
 * on the ranks in contiguous blocks (as the FedAvg strategy does), some rejected (not kept). */
static void test_driver(void)
{
    const comm_t *w = &g_test_world;
    enum { M = 13, P = 5003 }; /* several Gram blocks: real slices on 2-4 ranks */
    const int rules[] = {AGGR_KRUM, AGGR_MULTIKRUM, AGGR_MEDIAN, AGGR_TRIMMED_MEAN};
    float *U = malloc(sizeof(float) * M * P), *A = malloc(sizeof(float) * M * P), *want = malloc(sizeof(float) * P);
    /* (every rank computes the same reference; the driver splits the coordinates) */
    float tmp[M];
    int64_t G[M * M];
    int32_t sel[M];
    double score[M], dist[M];
    fill(U, (int64_t)M * P, 42, 0);
    for (int32_t i = 0; i < M; i++)
        for (int64_t x = 0; x < P; x++) U[i * P + x] *= (float)(0.1 * (1 + i % 4));
    const int rejected[M] = {0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0};
    int32_t n = 0;
    for (int32_t i = 0; i < M; i++)
        if (!rejected[i]) memcpy(A + (int64_t)n++ * P, U + (int64_t)i * P, sizeof(float) * P);
    for (size_t t = 0; t < sizeof rules / sizeof rules[0]; t++) {
        config_t cfg;
        config_defaults(&cfg);
        cfg.fl.aggregator = rules[t];
        cfg.fl.byzantine_f = 2;
        cfg.fl.trim_fraction = 0.2;
        robust_agg a;
        CU_ASSERT_EQUAL_FATAL(robust_agg_init(&a, &cfg, M, P, w), FH_OK);
        const int32_t c0 = (int32_t)((int64_t)M * w->rank / w->size), c1 = (int32_t)((int64_t)M * (w->rank + 1) / w->size);
        CU_ASSERT_EQUAL(robust_agg_begin(&a, c1 - c0), FH_OK);
        for (int32_t i = c0; i < c1; i++)
            if (!rejected[i]) {
                double ss = 0;
                for (int64_t x = 0; x < P; x++) ss += (double)U[i * P + x] * U[i * P + x];
                robust_agg_keep(&a, U + (int64_t)i * P, sqrt(ss));
            }
        CU_ASSERT_EQUAL_FATAL(robust_agg_run(&a, w), FH_OK);
        CU_ASSERT(a.have && a.nacc == n);
        if (rules[t] == AGGR_MEDIAN) robust_median(A, n, P, want, tmp);
        else if (rules[t] == AGGR_TRIMMED_MEAN) robust_trimmed_mean(A, n, P, robust_trim_count(n, 0.2), want, tmp);
        else {
            gram_of(A, n, P, G);
            const int32_t m = robust_krum_select(G, n, 2, rules[t] == AGGR_KRUM ? 1 : n - 2, sel, score, dist);
            robust_mean_rows(A, P, sel, m, want);
            CU_ASSERT_EQUAL(a.nsel, m);
        }
        CU_ASSERT_EQUAL(memcmp(a.out, want, sizeof(float) * P), 0);
        robust_agg_free(&a);
    }
    /* Krum's bound n > 2f + 2 */
    config_t cfg;
    config_defaults(&cfg);
    cfg.fl.aggregator = AGGR_KRUM;
    cfg.fl.byzantine_f = 5;
    robust_agg a;
    CU_ASSERT_EQUAL(robust_agg_init(&a, &cfg, 12, P, w), FH_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), "byzantine_f"));
    robust_agg_free(&a);
    CU_ASSERT_EQUAL(robust_agg_init(&a, &cfg, 13, P, w), FH_OK);
    robust_agg_free(&a);
    free(U);
    free(A);
    free(want);
}

/* Multi-center FL (src/fl/cluster.c): one driver reused for several clusters, each on the
 * communicator of the ranks hosting its members (robust_agg_comm), against the rules on that
 * cluster's updates at once. Clusters: i % 3 == 0 (on few ranks: clients 0..5 only), the
 * rest, then all clients on the world again (the slices re-cut up and down). */
static void test_driver_groups(void)
{
    const comm_t *w = &g_test_world;
    enum { M = 13, P = 5003 };
    const int rules[] = {AGGR_KRUM, AGGR_MULTIKRUM, AGGR_MEDIAN, AGGR_TRIMMED_MEAN};
    float *U = malloc(sizeof(float) * M * P), *A = malloc(sizeof(float) * M * P), *want = malloc(sizeof(float) * P);
    float tmp[M];
    int64_t G[M * M];
    int32_t sel[M];
    double score[M], dist[M];
    fill(U, (int64_t)M * P, 7, 0);
    const int32_t c0 = (int32_t)((int64_t)M * w->rank / w->size), c1 = (int32_t)((int64_t)M * (w->rank + 1) / w->size);
    for (size_t t = 0; t < sizeof rules / sizeof rules[0]; t++) {
        config_t cfg;
        config_defaults(&cfg);
        cfg.fl.aggregator = rules[t];
        cfg.fl.byzantine_f = 1;
        cfg.fl.trim_fraction = 0.2;
        robust_agg a;
        CU_ASSERT_EQUAL_FATAL(robust_agg_init(&a, &cfg, M, P, w), FH_OK);
        for (int g = 0; g < 3; g++) {
            /* members of group g, in client order */
            int32_t n = 0, host = 0;
            for (int32_t i = 0; i < M; i++) {
                const int in = g == 0 ? i % 3 == 0 && i < 6 : g == 1 ? i % 3 != 0 : 1;
                if (!in) continue;
                memcpy(A + (int64_t)n++ * P, U + (int64_t)i * P, sizeof(float) * P);
                if (i >= c0 && i < c1) host = 1;
            }
            comm_t ck;
            CU_ASSERT_EQUAL_FATAL(comm_split(w, host ? 0 : -1, w->rank, &ck), FH_OK);
            if (host) {
                CU_ASSERT_EQUAL(robust_agg_comm(&a, &ck, 0), FH_OK);
                CU_ASSERT_EQUAL(robust_agg_begin(&a, c1 - c0), FH_OK);
                for (int32_t i = c0; i < c1; i++) {
                    const int in = g == 0 ? i % 3 == 0 && i < 6 : g == 1 ? i % 3 != 0 : 1;
                    if (!in) continue;
                    double ss = 0;
                    for (int64_t x = 0; x < P; x++) ss += (double)U[i * P + x] * U[i * P + x];
                    robust_agg_keep(&a, U + (int64_t)i * P, sqrt(ss));
                }
                CU_ASSERT_EQUAL_FATAL(robust_agg_run(&a, &ck), FH_OK);
                CU_ASSERT(a.have && a.nacc == n);
                if (rules[t] == AGGR_MEDIAN) robust_median(A, n, P, want, tmp);
                else if (rules[t] == AGGR_TRIMMED_MEAN) robust_trimmed_mean(A, n, P, robust_trim_count(n, 0.2), want, tmp);
                else {
                    gram_of(A, n, P, G);
                    const int32_t m = robust_krum_select(G, n, 1, rules[t] == AGGR_KRUM ? 1 : robust_multikrum_count(n, 1),
                                                         sel, score, dist);
                    robust_mean_rows(A, P, sel, m, want);
                    CU_ASSERT_EQUAL(a.nsel, m);
                }
                CU_ASSERT_EQUAL(memcmp(a.out, want, sizeof(float) * P), 0);
            }
            comm_free(&ck);
        }
        robust_agg_free(&a);
    }
    free(U);
    free(A);
    free(want);
}

void tests_register_robust(void)
{
    CU_pSuite s = CU_add_suite("robust", NULL, NULL);
    tests_add(s, "median", test_median);
    tests_add(s, "trimmed_mean", test_trimmed_mean);
    tests_add(s, "krum", test_krum);
    tests_add(s, "krum_scores", test_krum_scores);
    tests_add(s, "krum_ties", test_krum_ties);
    tests_add(s, "byzantine", test_byzantine);
    tests_add(s, "gram_slices", test_gram_slices);
    tests_add(s, "mean_clip_noise", test_mean_clip_noise);
    tests_add(s, "driver", test_driver);
    tests_add(s, "driver_groups", test_driver_groups);
}
