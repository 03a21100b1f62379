/* Unit tests of communication compression (include/fedhpc/compress.h) and of its aggregation
 * stage (src/fl/compress_stage.c): QSGD unbiasedness, top-k selection and tie-break, error
 * feedback conservation, encode/decode round trips, message sizes, malformed messages, the
 * sparse fixed-point accumulation, the residual store. */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/agg.h"
#include "fedhpc/compress.h"
#include "fedhpc/loop.h"
#include "tests.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fill(float *v, int64_t n, uint64_t seed)
{
    rng_t r = rng_stream(seed, 7, 0, 1);
    for (int64_t j = 0; j < n; j++) v[j] = (float)(rng_normal(&r) * (j % 5 == 0 ? 3.0 : 0.3));
}

static cz_params par(int method, int bits, int bucket, double fraction, int majority)
{
    return (cz_params){method, bits, bucket, fraction, majority};
}

/* E[decode(encode(v))] = v: the mean of N draws (streams of N rounds) within 5 standard errors */
static void test_qsgd_unbiased(void)
{
    enum { P = 48, N = 20000 };
    float v[P], dec[P], val[P];
    uint32_t idx[P];
    double sum[P];
    uint8_t msg[512];
    fill(v, P, 3);
    for (int bits = 2; bits <= 4; bits += 2) {
        const cz_params p = par(CZ_QSGD, bits, 16, 0, 0);
        const int s = (1 << (bits - 1)) - 1;
        memset(sum, 0, sizeof sum);
        for (int t = 0; t < N; t++) {
            rng_t r = rng_stream(1, 2, (uint64_t)t, RNG_COMPRESS);
            const size_t len = cz_encode(&p, v, P, &r, idx, msg);
            CU_ASSERT_EQUAL_FATAL(len, cz_bytes(&p, P));
            CU_ASSERT_EQUAL_FATAL(cz_decode_dense(&p, msg, len, P, NULL, idx, val, dec), FH_OK);
            for (int j = 0; j < P; j++) sum[j] += dec[j];
        }
        for (int b = 0; b < P / 16; b++) {
            double nb = 0;
            for (int j = 16 * b; j < 16 * b + 16; j++) nb += (double)v[j] * v[j];
            nb = sqrt(nb);
            const double se = nb / s / 2 / sqrt((double)N); /* largest standard error of one mean */
            for (int j = 16 * b; j < 16 * b + 16; j++) {
                const double m = sum[j] / N;
                if (fabs(m - v[j]) > 5 * se + 1e-6) {
                    fprintf(stderr, "qsgd bits %d: coordinate %d mean %.6f, v %.6f (se %.2g)\n", bits, j, m, v[j], se);
                    CU_FAIL("qsgd is biased");
                }
            }
        }
    }
}

/* Each decoded coordinate is one of the two levels around v (same sign); codes fit the bits */
static void test_qsgd_levels(void)
{
    enum { P = 1000 };
    float v[P], dec[P], val[P];
    uint32_t idx[P];
    uint8_t msg[4096];
    fill(v, P, 5);
    v[10] = 0;
    const cz_params p = par(CZ_QSGD, 3, 0, 0, 0); /* one bucket, s = 3 */
    rng_t r = rng_stream(1, 1, 1, RNG_COMPRESS);
    const size_t len = cz_encode(&p, v, P, &r, idx, msg);
    CU_ASSERT_EQUAL(len, 4 + (P * 3 + 7) / 8);
    CU_ASSERT_EQUAL_FATAL(cz_decode_dense(&p, msg, len, P, NULL, idx, val, dec), FH_OK);
    double n = 0;
    for (int j = 0; j < P; j++) n += (double)v[j] * v[j];
    n = sqrt(n);
    for (int j = 0; j < P; j++) {
        const double lv = fabs((double)v[j]) / n * 3, ld = fabs((double)dec[j]) / n * 3;
        CU_ASSERT(fabs(ld - floor(lv)) < 1e-4 || fabs(ld - ceil(lv)) < 1e-4);
        CU_ASSERT(dec[j] == 0 || (dec[j] < 0) == (v[j] < 0));
    }
    CU_ASSERT_EQUAL(dec[10], 0.0f);
}

/* top-k keeps the k largest |v|; ties broken by the lower index; indices ascending */
static void test_topk_largest(void)
{
    enum { P = 2000 };
    float v[P], val[P];
    uint32_t idx[P], di[P];
    uint8_t msg[8 * P];
    rng_t r0 = rng_stream(9, 0, 0, 1);
    for (int j = 0; j < P; j++) v[j] = (float)((int)rng_below(&r0, 50) - 25) * 0.5f; /* many ties */
    for (double f = 0.001; f <= 0.5; f *= 7) {
        const cz_params p = par(CZ_TOPK, 0, 0, f, 0);
        const int64_t k = cz_k(&p, P);
        const size_t len = cz_encode(&p, v, P, NULL, idx, msg);
        CU_ASSERT_EQUAL(len, (size_t)(8 * k));
        int64_t nnz = 0;
        CU_ASSERT_EQUAL_FATAL(cz_decode_sparse(&p, msg, len, P, NULL, di, val, &nnz), FH_OK);
        CU_ASSERT_EQUAL_FATAL(nnz, k);
        char kept[P] = {0};
        for (int64_t i = 0; i < k; i++) {
            kept[di[i]] = 1;
            CU_ASSERT_EQUAL(val[i], v[di[i]]);
            if (i) CU_ASSERT(di[i] > di[i - 1]);
        }
        /* every kept one comes before every dropped one in (|v| desc, index asc) */
        float minkept = INFINITY;
        int64_t maxidx_at_min = -1;
        for (int j = 0; j < P; j++)
            if (kept[j] && fabsf(v[j]) <= minkept) {
                if (fabsf(v[j]) < minkept) maxidx_at_min = -1;
                minkept = fabsf(v[j]);
                if (j > maxidx_at_min) maxidx_at_min = j;
            }
        for (int j = 0; j < P; j++)
            if (!kept[j]) {
                CU_ASSERT(fabsf(v[j]) <= minkept);
                if (fabsf(v[j]) == minkept) CU_ASSERT(j > maxidx_at_min);
            }
    }
}

/* Error feedback: v = u + e_old; e_new = v - sent; v == sent + e_new exactly (sparse methods)
 * and within float rounding (dense ones); the stage's residual store holds e_new */
static void test_ef_conservation(void)
{
    enum { P = 3000 };
    static float u[P], e[P], v[P], dec[P], val[P], en[P];
    static uint32_t idx[P];
    static uint8_t msg[8 * P];
    const cz_params ps[] = {par(CZ_TOPK, 0, 0, 0.01, 0), par(CZ_RANDK, 0, 0, 0.05, 0), par(CZ_QSGD, 4, 64, 0, 0),
                            par(CZ_SIGNSGD, 0, 0, 0, 0)};
    for (size_t m = 0; m < sizeof ps / sizeof ps[0]; m++) {
        fill(e, P, 11);
        for (int round = 1; round <= 3; round++) {
            fill(u, P, 100 + (uint64_t)round);
            for (int j = 0; j < P; j++) v[j] = u[j] + e[j];
            rng_t r = rng_stream(1, 4, (uint64_t)round, RNG_COMPRESS), rd = r;
            const size_t len = cz_encode(&ps[m], v, P, &r, idx, msg);
            CU_ASSERT_EQUAL_FATAL(cz_decode_dense(&ps[m], msg, len, P, &rd, idx, val, dec), FH_OK);
            for (int j = 0; j < P; j++) en[j] = v[j] - dec[j];
            int exact = 1;
            double worst = 0;
            for (int j = 0; j < P; j++) {
                if (dec[j] + en[j] != v[j]) exact = 0;
                worst = fmax(worst, fabs((double)dec[j] + en[j] - v[j]) / fmax(fmax(fabs(v[j]), fabs(dec[j])), 1e-30));
            }
            if (cz_sparse(&ps[m])) CU_ASSERT(exact);
            CU_ASSERT(worst < 1e-6);
            memcpy(e, en, sizeof e);
        }
    }
    /* the stage: residual store after two rounds of client `rank` equals the pure computation */
    config_t cfg;
    config_defaults(&cfg);
    snprintf(cfg.output.dir, sizeof cfg.output.dir, "%s", g_test_tmpdir);
    cfg.compress.method = CZ_TOPK;
    cfg.compress.fraction = 0.02;
    cfg.compress.error_feedback = 1;
    const comm_t *w = &g_test_world;
    fl_compress *z = NULL;
    CU_ASSERT_EQUAL_FATAL(fl_compress_init(&z, &cfg, w, w->size, P), FH_OK);
    static int64_t buf[P];
    const cz_params p = par(CZ_TOPK, 0, 0, 0.02, 0);
    memset(e, 0, sizeof e);
    memset(buf, 0, sizeof buf);
    int64_t bytes = 0;
    for (int round = 1; round <= 2; round++) {
        fill(u, P, 200 + (uint64_t)round);
        for (int j = 0; j < P; j++) v[j] = u[j] + e[j];
        rng_t r = rng_stream(1, (uint64_t)w->rank, (uint64_t)round, RNG_COMPRESS), rd = r;
        const size_t len = cz_encode(&p, v, P, &r, idx, msg);
        CU_ASSERT_EQUAL(cz_decode_dense(&p, msg, len, P, &rd, idx, val, dec), FH_OK);
        for (int j = 0; j < P; j++) e[j] = v[j] - dec[j];
        CU_ASSERT_EQUAL(fl_compress_add(z, buf, round, w->rank, u, 1.0, 0.0, &bytes), FH_OK);
        CU_ASSERT_EQUAL(bytes, (int64_t)len);
    }
    CU_ASSERT_EQUAL(io_state_read(fl_compress_residuals(z), w->rank, en), FH_OK);
    CU_ASSERT(memcmp(en, e, sizeof e) == 0);
    fl_compress_free(z);
}

/* encode -> decode for every method; randk draws the same indices in the decoder */
static void test_round_trip(void)
{
    enum { P = 777 };
    float v[P], dec[P], val[P];
    uint32_t idx[P];
    uint8_t msg[8 * P];
    fill(v, P, 21);
    /* qsgd with 16 bits: within one level */
    cz_params p = par(CZ_QSGD, 16, 100, 0, 0);
    rng_t r = rng_stream(1, 1, 1, RNG_COMPRESS);
    size_t len = cz_encode(&p, v, P, &r, idx, msg);
    CU_ASSERT_EQUAL(cz_decode_dense(&p, msg, len, P, NULL, idx, val, dec), FH_OK);
    for (int j = 0; j < P; j++) CU_ASSERT(fabs(dec[j] - v[j]) <= 20.0 / 32767 + 1e-6);
    /* topk with fraction 1: lossless */
    p = par(CZ_TOPK, 0, 0, 1.0, 0);
    len = cz_encode(&p, v, P, NULL, idx, msg);
    CU_ASSERT_EQUAL(cz_decode_dense(&p, msg, len, P, NULL, idx, val, dec), FH_OK);
    CU_ASSERT(memcmp(dec, v, sizeof v) == 0);
    /* randk: the decoder's indices are the encoder's; values exact; the rest zero */
    p = par(CZ_RANDK, 0, 0, 0.1, 0);
    r = rng_stream(1, 3, 5, RNG_COMPRESS);
    rng_t rd = r;
    len = cz_encode(&p, v, P, &r, idx, msg);
    CU_ASSERT_EQUAL(len, (size_t)(4 * 78));
    CU_ASSERT_EQUAL(cz_decode_dense(&p, msg, len, P, &rd, idx, val, dec), FH_OK);
    int nz = 0;
    for (int j = 0; j < P; j++) {
        if (dec[j] != 0) nz++;
        CU_ASSERT(dec[j] == 0 || dec[j] == v[j]);
    }
    CU_ASSERT_EQUAL(nz, 78);
    /* signsgd: mean |v| times the sign; majority: +-1 */
    p = par(CZ_SIGNSGD, 0, 0, 0, 0);
    len = cz_encode(&p, v, P, NULL, idx, msg);
    CU_ASSERT_EQUAL(len, (size_t)(4 + (P + 7) / 8));
    CU_ASSERT_EQUAL(cz_decode_dense(&p, msg, len, P, NULL, idx, val, dec), FH_OK);
    double a = 0;
    for (int j = 0; j < P; j++) a += fabs((double)v[j]);
    const float sc = (float)(a / P);
    for (int j = 0; j < P; j++) CU_ASSERT_EQUAL(dec[j], v[j] < 0 ? -sc : sc);
    p.majority = 1;
    len = cz_encode(&p, v, P, NULL, idx, msg);
    CU_ASSERT_EQUAL(len, (size_t)((P + 7) / 8));
    CU_ASSERT_EQUAL(cz_decode_dense(&p, msg, len, P, NULL, idx, val, dec), FH_OK);
    for (int j = 0; j < P; j++) CU_ASSERT_EQUAL(dec[j], v[j] < 0 ? -1.0f : 1.0f);
    /* cz_scale halves what is decoded */
    p = par(CZ_TOPK, 0, 0, 0.05, 0);
    len = cz_encode(&p, v, P, NULL, idx, msg);
    cz_scale(&p, msg, len, P, 0.5f);
    CU_ASSERT_EQUAL(cz_decode_dense(&p, msg, len, P, NULL, idx, val, dec), FH_OK);
    for (int j = 0; j < P; j++) CU_ASSERT(dec[j] == 0 || dec[j] == 0.5f * v[j]);
}

/* message sizes as documented, and malformed messages refused */
static void test_bytes(void)
{
    const int64_t P = 199210; /* the default MLP 784-200-200-10 */
    CU_ASSERT_EQUAL(cz_bytes(&(cz_params){CZ_QSGD, 8, 512, 0, 0}, P), (size_t)(4 * 390 + P));
    CU_ASSERT_EQUAL(cz_bytes(&(cz_params){CZ_QSGD, 2, 0, 0, 0}, P), (size_t)(4 + (2 * P + 7) / 8));
    CU_ASSERT_EQUAL(cz_bytes(&(cz_params){CZ_TOPK, 0, 0, 0.01, 0}, P), (size_t)(8 * 1992));
    CU_ASSERT_EQUAL(cz_bytes(&(cz_params){CZ_RANDK, 0, 0, 0.01, 0}, P), (size_t)(4 * 1992));
    CU_ASSERT_EQUAL(cz_bytes(&(cz_params){CZ_SIGNSGD, 0, 0, 0, 0}, P), (size_t)(4 + 24902));
    CU_ASSERT_EQUAL(cz_k(&(cz_params){CZ_TOPK, 0, 0, 1e-9, 0}, P), 1);
    enum { Q = 100 };
    float v[Q], dec[Q], val[Q];
    uint32_t idx[Q];
    uint8_t msg[8 * Q];
    fill(v, Q, 1);
    const cz_params p = par(CZ_TOPK, 0, 0, 0.1, 0);
    size_t len = cz_encode(&p, v, Q, NULL, idx, msg);
    CU_ASSERT_EQUAL(cz_decode_dense(&p, msg, len - 1, Q, NULL, idx, val, dec), FH_EFAULT);
    msg[0] = 200; /* index 200 >= P */
    CU_ASSERT_EQUAL(cz_decode_dense(&p, msg, len, Q, NULL, idx, val, dec), FH_EFAULT);
    const cz_params q = par(CZ_QSGD, 2, 0, 0, 0);
    len = cz_encode(&q, v, Q, &(rng_t){0, 0}, idx, msg);
    msg[4] = 0xff; /* code 3 > 2s = 2 */
    CU_ASSERT_EQUAL(cz_decode_dense(&q, msg, len, Q, NULL, idx, val, dec), FH_EFAULT);
}

/* the sparse accumulation equals fx_accumulate of the densified vector */
static void test_sparse_accumulate(void)
{
    enum { P = 500 };
    float v[P], dense[P], val[P];
    uint32_t idx[P];
    uint8_t msg[8 * P];
    int64_t a[P] = {0}, b[P] = {0};
    fill(v, P, 2);
    const cz_params p = par(CZ_TOPK, 0, 0, 0.03, 0);
    const size_t len = cz_encode(&p, v, P, NULL, idx, msg);
    int64_t nnz = 0;
    CU_ASSERT_EQUAL(cz_decode_sparse(&p, msg, len, P, NULL, idx, val, &nnz), FH_OK);
    cz_accumulate_sparse(a, idx, val, nnz, 0.37);
    CU_ASSERT_EQUAL(cz_decode_dense(&p, msg, len, P, NULL, idx, val, dense), FH_OK);
    fx_accumulate(b, dense, 0.37, P);
    CU_ASSERT(memcmp(a, b, sizeof a) == 0);
}

void tests_register_compress(void)
{
    CU_pSuite s = CU_add_suite("compress", NULL, NULL);
    tests_add(s, "qsgd_unbiased", test_qsgd_unbiased);
    tests_add(s, "qsgd_levels", test_qsgd_levels);
    tests_add(s, "topk_largest", test_topk_largest);
    tests_add(s, "ef_conservation", test_ef_conservation);
    tests_add(s, "round_trip", test_round_trip);
    tests_add(s, "bytes", test_bytes);
    tests_add(s, "sparse_accumulate", test_sparse_accumulate);
}
