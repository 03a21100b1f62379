/* Tests of src/privacy/shamir.c and src/privacy/secagg.c: Shamir t-of-n, masks cancelling
 * exactly in Z_2^64, dropout recovery, abort below the threshold, SecAgg+ graphs, and masked
 * inputs uncorrelated with the true inputs. */
#include "tests.h"

#include "fedhpc/rng.h"
#include "fedhpc/secagg.h"
#include "fedhpc/secagg_round.h"

#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static void test_shamir(void)
{
    uint64_t secret[3] = {12345, SHAMIR_P - 1, 0}, xs[7], sh[7 * 3], out[3];
    for (int i = 0; i < 7; i++) xs[i] = (uint64_t)i + 1;
    CU_ASSERT_EQUAL_FATAL(shamir_split(secret, 3, 4, 7, xs, sh), FH_OK);
    /* any 4 of the 7 shares reconstruct; try several subsets */
    const int subsets[4][4] = {{0, 1, 2, 3}, {3, 4, 5, 6}, {0, 2, 4, 6}, {6, 1, 5, 2}};
    for (int s = 0; s < 4; s++) {
        uint64_t x4[4], s4[4 * 3];
        for (int i = 0; i < 4; i++) {
            x4[i] = xs[subsets[s][i]];
            memcpy(s4 + 3 * i, sh + 3 * subsets[s][i], 3 * sizeof *sh);
        }
        CU_ASSERT_EQUAL(shamir_combine(x4, s4, 4, 3, out), FH_OK);
        CU_ASSERT(memcmp(out, secret, sizeof out) == 0);
    }
    /* 3 shares (below t) do not give the secret */
    CU_ASSERT_EQUAL(shamir_combine(xs, sh, 3, 3, out), FH_OK);
    CU_ASSERT(memcmp(out, secret, sizeof out) != 0);
    /* pack/unpack 32 bytes */
    uint8_t k[32], k2[32];
    for (int i = 0; i < 32; i++) k[i] = (uint8_t)(255 - 7 * i);
    uint64_t e[SHAMIR_K32];
    shamir_pack32(k, e);
    for (int j = 0; j < SHAMIR_K32; j++) CU_ASSERT(e[j] < SHAMIR_P);
    shamir_unpack32(e, k2);
    CU_ASSERT(memcmp(k, k2, 32) == 0);
    CU_ASSERT_EQUAL(shamir_mul(shamir_inv(987654321), 987654321), 1);
    CU_ASSERT_EQUAL(shamir_split(secret, 3, 8, 7, xs, sh), FH_EINPUT);
}

/* Thresholds above 64 (issue 12: shamir_split refused t > 64, so secure aggregation failed
 * above ~129 clients on the full graph): t = 300 of n = 1000 shares at x = 1..n, any t of them
 * reconstruct, t - 1 do not. */
static void test_shamir_large_threshold(void)
{
    enum { N = 1000, T = 300, K = 2 };
    uint64_t secret[K] = {987654321987ULL, SHAMIR_P - 2}, out[K];
    uint64_t *xs = malloc(N * sizeof *xs), *sh = malloc((size_t)N * K * sizeof *sh);
    uint64_t *x2 = malloc(T * sizeof *x2), *s2 = malloc((size_t)T * K * sizeof *s2);
    CU_ASSERT_FATAL(xs && sh && x2 && s2);
    for (int i = 0; i < N; i++) xs[i] = (uint64_t)i + 1;
    CU_ASSERT_EQUAL_FATAL(shamir_split(secret, K, T, N, xs, sh), FH_OK);
    for (int off = 0; off < 3; off++) { /* every third share from offset off: T of them */
        for (int i = 0; i < T; i++) {
            x2[i] = xs[3 * i + off];
            memcpy(s2 + (size_t)K * i, sh + (size_t)K * (3 * i + off), K * sizeof *sh);
        }
        CU_ASSERT_EQUAL(shamir_combine(x2, s2, T, K, out), FH_OK);
        CU_ASSERT(memcmp(out, secret, sizeof out) == 0);
    }
    CU_ASSERT_EQUAL(shamir_combine(x2, s2, T - 1, K, out), FH_OK);
    CU_ASSERT(memcmp(out, secret, sizeof out) != 0);
    CU_ASSERT_EQUAL(shamir_split(secret, K, N, N, xs, sh), FH_OK); /* t = n */
    free(xs); free(sh); free(x2); free(s2);
}

static void test_graph(void)
{
    secagg_graph g;
    CU_ASSERT_EQUAL_FATAL(secagg_graph_build(&g, 40, 8, 7, 3), FH_OK);
    CU_ASSERT_EQUAL(g.deg, 8);
    for (int32_t u = 0; u < g.n; u++)
        for (int32_t i = 0; i < g.deg; i++) {
            int32_t v = g.nbr[u * g.deg + i];
            CU_ASSERT(v != u);
            CU_ASSERT(secagg_graph_slot(&g, v, u) >= 0); /* symmetric */
        }
    secagg_graph_free(&g);
    CU_ASSERT_EQUAL_FATAL(secagg_graph_build(&g, 5, 8, 7, 3), FH_OK);
    CU_ASSERT_EQUAL(g.deg, 4); /* k >= n - 1: full graph */
    secagg_graph_free(&g);
}

/* Run the protocol for n clients with inputs x[u][len]; alive[u] = 0 drops u after step 2;
 * answers[u] = 0 (answers may be NULL: all answer) drops a survivor u late, after step 3 (its
 * masked input is in the sum, it sends no unmasking answers).
 * Returns the aggregator's result in sum and *aborted; masked inputs into rec (may be NULL). */
static void run_protocol_late(int32_t n, int32_t k, int32_t t, const uint8_t *alive, const uint8_t *answers,
                              int64_t len, const uint64_t *x, uint64_t *sum, int *aborted, uint64_t *rec)
{
    secagg_graph g;
    CU_ASSERT_EQUAL_FATAL(secagg_graph_build(&g, n, k, 11, 5), FH_OK);
    const int32_t deg = g.deg;
    secagg_client *cl = calloc((size_t)n, sizeof *cl);
    uint8_t *pks = malloc((size_t)n * SECAGG_PK_BYTES);
    uint8_t *ct = malloc((size_t)n * deg * SECAGG_CT_BYTES);
    uint8_t *inbox = malloc((size_t)deg * SECAGG_CT_BYTES);
    uint8_t *resp = malloc((size_t)n * deg * SECAGG_RESP_BYTES);
    uint64_t *y = malloc((size_t)len * sizeof *y);
    for (int32_t u = 0; u < n; u++)
        CU_ASSERT_EQUAL_FATAL(secagg_client_setup(&cl[u], u, pks + u * SECAGG_PK_BYTES), FH_OK);
    for (int32_t u = 0; u < n; u++)
        CU_ASSERT_EQUAL_FATAL(secagg_client_share(&cl[u], &g, pks, t, ct + (size_t)u * deg * SECAGG_CT_BYTES), FH_OK);
    memset(sum, 0, (size_t)len * sizeof *sum);
    for (int32_t u = 0; u < n; u++) {
        if (!alive[u]) continue;
        memcpy(y, x + (size_t)u * len, (size_t)len * sizeof *y);
        CU_ASSERT_EQUAL_FATAL(secagg_client_mask(&cl[u], &g, pks, 5, y, len), FH_OK);
        if (rec) memcpy(rec + (size_t)u * len, y, (size_t)len * sizeof *y);
        for (int64_t j = 0; j < len; j++) sum[j] += y[j];
    }
    int64_t nresp = 0;
    for (int32_t v = 0; v < n; v++) {
        if (!alive[v] || (answers && !answers[v])) continue;
        for (int32_t i = 0; i < deg; i++) { /* the relay: what u encrypted for v */
            int32_t u = g.nbr[v * deg + i];
            int32_t slot = secagg_graph_slot(&g, u, v);
            memcpy(inbox + (size_t)i * SECAGG_CT_BYTES, ct + ((size_t)u * deg + slot) * SECAGG_CT_BYTES, SECAGG_CT_BYTES);
        }
        CU_ASSERT_EQUAL_FATAL(secagg_client_unmask(&cl[v], &g, pks, inbox, alive, resp + nresp * SECAGG_RESP_BYTES), FH_OK);
        nresp += deg;
    }
    CU_ASSERT_EQUAL(secagg_server_unmask(&g, pks, alive, t, resp, nresp, 5, sum, len, aborted), FH_OK);
    free(cl); free(pks); free(ct); free(inbox); free(resp); free(y);
    secagg_graph_free(&g);
}

static void run_protocol(int32_t n, int32_t k, int32_t t, const uint8_t *alive, int64_t len,
                         const uint64_t *x, uint64_t *sum, int *aborted, uint64_t *rec)
{
    run_protocol_late(n, k, t, alive, NULL, len, x, sum, aborted, rec);
}

static void check_exact_len(int32_t n, int32_t k, int32_t t, double drop, int64_t len)
{
    uint64_t *x = malloc((size_t)n * len * sizeof *x), *sum = malloc(len * sizeof *sum),
             *want = calloc(len, sizeof *want);
    uint8_t *alive = malloc((size_t)n);
    rng_t r = rng_stream(3, 0, 0, RNG_DROPOUT);
    for (int32_t u = 0; u < n; u++) {
        alive[u] = rng_uniform(&r) >= drop;
        for (int64_t j = 0; j < len; j++) {
            x[(size_t)u * len + j] = (uint64_t)(int64_t)(rng_normal(&r) * 1e9);
            if (alive[u]) want[j] += x[(size_t)u * len + j];
        }
    }
    int aborted = -1;
    run_protocol(n, k, t, alive, len, x, sum, &aborted, NULL);
    CU_ASSERT_EQUAL(aborted, 0);
    CU_ASSERT(memcmp(sum, want, len * sizeof *sum) == 0);
    free(x); free(sum); free(want); free(alive);
}

static void check_exact(int32_t n, int32_t k, int32_t t, double drop) { check_exact_len(n, k, t, drop, 1000); }
static void test_masks_cancel(void) { check_exact(12, 0, 6, 0.0); }
/* Several 8 KiB keystream blocks and an odd tail: the clients' masks (all keys added block by
 * block, SIMD adds) are removed exactly by the aggregator's per-key secagg_prg_add. */
static void test_masks_cancel_multiblock(void) { check_exact_len(10, 0, 4, 0.3, 3 * 1024 + 517); }

/* secagg_prg_add is the ChaCha20 keystream (nonce = round, counter from 0) read as
 * little-endian words, whatever the block size it is made in; subtracting undoes adding. */
static void test_prg_is_chacha20(void)
{
    const int64_t len = 2 * 1024 + 333;
    uint8_t key[32];
    for (int i = 0; i < 32; i++) key[i] = (uint8_t)(7 * i + 1);
    unsigned char nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
    const int64_t round = 0x0102030405LL;
    for (int i = 0; i < 8 && i < (int)sizeof nonce; i++) nonce[i] = (unsigned char)((uint64_t)round >> (8 * i));
    unsigned char *ks = malloc((size_t)len * 8);
    uint64_t *v = calloc((size_t)len, sizeof *v), *w = malloc((size_t)len * sizeof *w);
    CU_ASSERT_FATAL(ks && v && w);
    CU_ASSERT_EQUAL_FATAL(secagg_init(), FH_OK);
    crypto_stream_chacha20(ks, (unsigned long long)len * 8, nonce, key);
    rng_t r = rng_stream(4, 0, 0, RNG_DP);
    for (int64_t j = 0; j < len; j++) v[j] = w[j] = rng_u64(&r);
    secagg_prg_add(key, round, +1, v, len);
    int same = 1;
    for (int64_t j = 0; j < len; j++) {
        uint64_t k = 0;
        for (int b = 0; b < 8; b++) k |= (uint64_t)ks[j * 8 + b] << (8 * b);
        same &= v[j] == w[j] + k;
    }
    CU_ASSERT(same);
    secagg_prg_add(key, round, -1, v, len);
    CU_ASSERT(memcmp(v, w, (size_t)len * sizeof *v) == 0);
    free(ks); free(v); free(w);
}
static void test_dropout_recovery(void) { check_exact(20, 0, 8, 0.3); }
static void test_secagg_plus(void) { check_exact(30, 8, 4, 0.1); }
/* A threshold above 64 in the protocol (80 clients on the full graph, t = 70): exact with
 * dropouts (tests/cli/test_privacy_run.sh runs 150 clients, t = 75, end to end) */
static void test_threshold_over_64(void) { check_exact_len(80, 0, 70, 0.05, 64); }

static void test_abort_below_threshold(void)
{
    const int32_t n = 8;
    const int64_t len = 64;
    uint64_t x[8 * 64], sum[64];
    for (int i = 0; i < 8 * 64; i++) x[i] = (uint64_t)i;
    uint8_t alive[8] = {1, 1, 1, 0, 0, 0, 0, 0}; /* 3 survivors, t = 5 */
    int aborted = 0;
    run_protocol(n, 0, 5, alive, len, x, sum, &aborted, NULL);
    CU_ASSERT_EQUAL(aborted, 1);
    int zero = 1;
    for (int j = 0; j < len; j++) zero &= sum[j] == 0;
    CU_ASSERT(zero);
}

/* Late dropouts ([secagg] late_dropout): survivors that sent their masked input but do not
 * answer the unmasking request. Their inputs are in the sum; the other survivors' answers
 * remove their self masks (and the masks towards early dropouts): the exact sum of all
 * survivors' inputs, on the full graph and on a SecAgg+ graph. */
static void check_late(int32_t n, int32_t k, int32_t t, double drop, double late)
{
    const int64_t len = 300;
    uint64_t *x = malloc((size_t)n * len * sizeof *x), *sum = malloc(len * sizeof *sum),
             *want = calloc(len, sizeof *want);
    uint8_t *alive = malloc((size_t)n), *answers = malloc((size_t)n);
    rng_t r = rng_stream(5, 0, 0, RNG_DROPOUT);
    int32_t nlate = 0;
    for (int32_t u = 0; u < n; u++) {
        alive[u] = rng_uniform(&r) >= drop;
        answers[u] = rng_uniform(&r) >= late;
        nlate += alive[u] && !answers[u];
        for (int64_t j = 0; j < len; j++) {
            x[(size_t)u * len + j] = (uint64_t)(int64_t)(rng_normal(&r) * 1e9);
            if (alive[u]) want[j] += x[(size_t)u * len + j];
        }
    }
    CU_ASSERT(nlate > 0);
    int aborted = -1;
    run_protocol_late(n, k, t, alive, answers, len, x, sum, &aborted, NULL);
    CU_ASSERT_EQUAL(aborted, 0);
    CU_ASSERT(memcmp(sum, want, len * sizeof *sum) == 0);
    free(x); free(sum); free(want); free(alive); free(answers);
}
static void test_late_dropout_recovery(void) { check_late(20, 0, 6, 0.2, 0.3); }
static void test_late_dropout_secagg_plus(void) { check_late(30, 8, 3, 0.1, 0.2); }

/* Enough survivors (7 of 8, t = 5) but only 4 of them answer: the round aborts, the sum is 0 */
static void test_late_dropout_abort(void)
{
    const int32_t n = 8;
    const int64_t len = 64;
    uint64_t x[8 * 64], sum[64];
    for (int i = 0; i < 8 * 64; i++) x[i] = (uint64_t)(3 * i + 1);
    uint8_t alive[8] = {1, 1, 1, 1, 1, 1, 1, 0}, answers[8] = {1, 0, 1, 0, 1, 0, 1, 1};
    int aborted = 0;
    run_protocol_late(n, 0, 5, alive, answers, len, x, sum, &aborted, NULL);
    CU_ASSERT_EQUAL(aborted, 1);
    int zero = 1;
    for (int j = 0; j < len; j++) zero &= sum[j] == 0;
    CU_ASSERT(zero);
}

/* The late-dropout stream is not the early one: over 4000 (client, round) pairs at rate 0.5
 * the two agree about half of the time */
static void test_late_dropout_stream(void)
{
    int agree = 0;
    for (int32_t c = 0; c < 200; c++)
        for (int64_t r = 1; r <= 20; r++)
            agree += secagg_dropped(7, 0.5, c, r) == secagg_late_dropped(7, 0.5, c, r);
    CU_ASSERT(agree > 1800 && agree < 2200);
    CU_ASSERT_EQUAL(secagg_late_dropped(7, 0.0, 3, 1), 0);
}

/* Everything the aggregator receives from a client (its masked input) is uniform in Z_2^64:
 * its correlation with the client's true input is ~ 0 (|r| < 4/sqrt(len)), and the
 * top bit is set about half of the time. */
static void test_masked_uncorrelated(void)
{
    const int32_t n = 6;
    const int64_t len = 20000;
    uint64_t *x = malloc((size_t)n * len * sizeof *x), *rec = malloc((size_t)n * len * sizeof *rec),
             *sum = malloc(len * sizeof *sum);
    uint8_t alive[6] = {1, 1, 1, 1, 1, 1};
    rng_t r = rng_stream(9, 0, 0, RNG_DP);
    for (int64_t i = 0; i < n * len; i++) x[i] = (uint64_t)(int64_t)(rng_normal(&r) * 4294967296.0);
    int aborted = 0;
    run_protocol(n, 0, 3, alive, len, x, sum, &aborted, rec);
    for (int32_t u = 0; u < n; u++) {
        double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
        int64_t top = 0;
        for (int64_t j = 0; j < len; j++) {
            double a = (double)(int64_t)x[u * len + j], b = (double)(int64_t)rec[u * len + j];
            sx += a; sy += b; sxx += a * a; syy += b * b; sxy += a * b;
            top += (int64_t)(rec[u * len + j] >> 63);
        }
        double cov = sxy / len - sx / len * sy / len;
        double corr = cov / sqrt((sxx / len - sx * sx / len / len) * (syy / len - sy * sy / len / len));
        CU_ASSERT(fabs(corr) < 4.0 / sqrt((double)len));
        CU_ASSERT(fabs((double)top / len - 0.5) < 0.02);
    }
    free(x); free(rec); free(sum);
}

void tests_register_secagg_transcript(CU_pSuite s); /* test_secagg_transcript.c */

void tests_register_secagg(void)
{
    CU_pSuite s = CU_add_suite("secagg", NULL, NULL);
    tests_add(s, "shamir_t_of_n", test_shamir);
    tests_add(s, "shamir_threshold_over_64", test_shamir_large_threshold);
    tests_add(s, "graph_harary", test_graph);
    tests_add(s, "masks_cancel_exactly", test_masks_cancel);
    tests_add(s, "masks_cancel_multiblock", test_masks_cancel_multiblock);
    tests_add(s, "prg_is_chacha20", test_prg_is_chacha20);
    tests_add(s, "dropout_recovery", test_dropout_recovery);
    tests_add(s, "secagg_plus_k_neighbours", test_secagg_plus);
    tests_add(s, "threshold_over_64_full_graph", test_threshold_over_64);
    tests_add(s, "abort_below_threshold", test_abort_below_threshold);
    tests_add(s, "late_dropout_recovery", test_late_dropout_recovery);
    tests_add(s, "late_dropout_secagg_plus", test_late_dropout_secagg_plus);
    tests_add(s, "late_dropout_abort", test_late_dropout_abort);
    tests_add(s, "late_dropout_stream", test_late_dropout_stream);
    tests_add(s, "masked_input_uncorrelated", test_masked_uncorrelated);
    tests_register_secagg_transcript(s); /* only with FEDHPC_SA_TRANSCRIPT set */
}
