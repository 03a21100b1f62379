/* The aggregator-transcript checker: reads what the aggregator received during a real
 * `fedhpc run` with [secagg] transcript (written by src/privacy/sa_round.c), the test-only
 * [secagg] truth dump of the same run (every client's unmasked input, gathered by the engine
 * for this purpose only) and the truth dump of the same run WITHOUT secure aggregation (its
 * aggregates), and measures how much of each client's update the aggregator can read.
 *
 * Registered only when FEDHPC_SA_TRANSCRIPT names a directory holding transcript.h5, truth.h5
 * and plain_truth.h5 (and their .rankN.h5 siblings from multi-center runs, where each cluster's
 * aggregator records its own rounds; tests/cli/test_privacy_run.sh makes them), as
 *     FEDHPC_SA_TRANSCRIPT=DIR FEDHPC_SA_EXPECT=masked|clear fedhpc_tests secagg/transcript_check
 * expect = masked: for every client that sent an input in every round (and cluster),
 *   |corr(masked input, true input)| < 5/sqrt(P) over the P update words (as signed 64-bit
 *   integers), the signs agree on 50% +- 5 sigma of the non-zero words, < 1% of the words are
 *   equal; the plain sum of the masked inputs differs from the true sum in > 99% of the words
 *   (the aggregator needs the unmasking shares); each unmasking answer reveals only the share
 *   the protocol allows (self-mask seed of a survivor, key of a dropped client, never both);
 *   and the unmasked sum equals the sum of the survivors' true inputs and the plain run's
 *   aggregate, word for word.
 * expect = clear (the control case, a run with [secagg] masks = off): the same measurements
 *   must see the updates (corr > 0.99, every word equal), so the thresholds above would fail
 *   if masking were off; the sums must still match. */
#define _POSIX_C_SOURCE 200809L
#include "tests.h"

#include "fedhpc/io.h"
#include "fedhpc/secagg_round.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t rounds, groups, aborted_groups, inputs, dropped, nnz;
    double max_abs_r, min_r, max_sign_dev, max_equal_frac, min_maskedsum_diff_frac;
    int64_t sum_mismatch, plain_mismatch, resp_errors, resp_total;
    int64_t P;
} tr_stats;

static char g_dir[1024];

typedef struct {
    int32_t owner, holder, kind, pad;
    uint64_t sh[SHAMIR_K32];
} tr_resp;

/* The record files of one kind: NAME.h5 and, from a multi-center run (every rank may aggregate a
 * cluster), NAME.rank1.h5, NAME.rank2.h5, ... (secagg_record_path). */
#define TR_MAXF 256
typedef struct {
    io_rec *f[TR_MAXF];
    int n;
} tr_set;

static fh_status set_open(tr_set *t, const char *dir, const char *name, const char *format)
{
    memset(t, 0, sizeof *t);
    char base[1100], p[1200];
    snprintf(base, sizeof base, "%s/%s.h5", dir, name);
    FH_TRY(io_rec_open(base, format, &t->f[0]));
    t->n = 1;
    for (int q = 1; q < TR_MAXF; q++) {
        secagg_record_path(base, q, p, sizeof p);
        FILE *f = fopen(p, "rb");
        if (!f) break;
        fclose(f);
        FH_TRY(io_rec_open(p, format, &t->f[t->n]));
        t->n++;
    }
    return FH_OK;
}

static void set_close(tr_set *t)
{
    for (int i = 0; i < t->n; i++) io_rec_close(t->f[i]);
    t->n = 0;
}

/* The file holding dataset/group `name` (NULL if none does). */
static io_rec *set_find(const tr_set *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (io_rec_has(t->f[i], name)) return t->f[i];
    return NULL;
}

/* One round (and cluster) group: name prefix "round_R" or "round_R/cluster_K". */
static fh_status check_group(const tr_set *trs, const tr_set *truths, const tr_set *plains, const char *grp, int64_t L,
                             tr_stats *s)
{
    char nm[256];
    int64_t n, c, nr, rc;
#define NM(leaf) (snprintf(nm, sizeof nm, "%s/%s", grp, leaf), nm)
    io_rec *tr = set_find(trs, NM("clients"));
    if (tr && !io_rec_has(tr, NM("masked_input"))) { /* a one-client round: aborted before anything was sent */
        int32_t ab = 0;
        FH_TRY(io_rec_get(tr, NM("aborted"), IO_I32, &ab, 1));
        if (ab != 1) return fh_error_set(FH_EINPUT, "%s: no masked inputs, but not aborted", grp);
        s->aborted_groups++;
        return FH_OK;
    }
    io_rec *truth = set_find(truths, NM("input")), *plain = set_find(plains, NM("aggregate"));
    if (!tr || !truth || !plain)
        return fh_error_set(FH_EINPUT, "%s: missing from the %s", grp, !tr ? "transcript" : !truth ? "truth dump" : "plain run's truth dump");
    FH_TRY(io_rec_shape(tr, NM("clients"), &n, &c));
    FH_TRY(io_rec_shape(tr, NM("unmask_responses"), &nr, &rc));
    int32_t *ids = malloc((size_t)n * sizeof *ids), *ids2 = malloc((size_t)n * sizeof *ids2), aborted = 0;
    uint8_t *alive = malloc((size_t)n), *resp = malloc((size_t)(nr ? nr : 1) * SECAGG_RESP_BYTES);
    uint64_t *y = malloc((size_t)(n * L) * sizeof *y), *usum = malloc((size_t)L * sizeof *usum);
    int64_t *x = malloc((size_t)(n * L) * sizeof *x), *agg = malloc((size_t)L * sizeof *agg);
    uint64_t *tsum = calloc((size_t)L, sizeof *tsum), *msum = calloc((size_t)L, sizeof *msum);
    fh_status st = ids && ids2 && alive && resp && y && usum && x && agg && tsum && msum ? FH_OK : FH_ENOMEM;
    if (st == FH_OK) st = io_rec_get(tr, NM("clients"), IO_I32, ids, n);
    if (st == FH_OK) st = io_rec_get(tr, NM("alive"), IO_U8, alive, n);
    if (st == FH_OK) st = io_rec_get(tr, NM("masked_input"), IO_U64, y, n * L);
    if (st == FH_OK) st = io_rec_get(tr, NM("unmasked_sum"), IO_U64, usum, L);
    if (st == FH_OK) st = io_rec_get(tr, NM("aborted"), IO_I32, &aborted, 1);
    if (st == FH_OK) st = io_rec_get(tr, NM("unmask_responses"), IO_U8, resp, nr * SECAGG_RESP_BYTES);
    if (st == FH_OK) st = io_rec_get(truth, NM("clients"), IO_I32, ids2, n);
    if (st == FH_OK) st = io_rec_get(truth, NM("input"), IO_I64, x, n * L);
    if (st == FH_OK) st = io_rec_get(plain, NM("aggregate"), IO_I64, agg, L);
    if (st == FH_OK && memcmp(ids, ids2, (size_t)n * sizeof *ids) != 0)
        st = fh_error_set(FH_EINPUT, "%s: the truth file has other clients", grp);
    const int64_t P = s->P;
    for (int64_t v = 0; st == FH_OK && v < n; v++) {
        const uint64_t *yv = y + v * L;
        const int64_t *xv = x + v * L;
        if (!alive[v]) {
            s->dropped++;
            continue;
        }
        for (int64_t j = 0; j < L; j++) {
            tsum[j] += (uint64_t)xv[j];
            msum[j] += yv[j];
        }
        /* correlation of the signed 64-bit words; sign agreement and equal words */
        double mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
        int64_t nz = 0, agree = 0, eq = 0;
        for (int64_t j = 0; j < P; j++) {
            mx += (double)xv[j];
            my += (double)(int64_t)yv[j];
        }
        mx /= (double)P;
        my /= (double)P;
        for (int64_t j = 0; j < P; j++) {
            const double a = (double)xv[j] - mx, b = (double)(int64_t)yv[j] - my;
            sxx += a * a;
            syy += b * b;
            sxy += a * b;
            eq += (uint64_t)xv[j] == yv[j];
            if (xv[j] != 0) {
                nz++;
                agree += (xv[j] < 0) == ((int64_t)yv[j] < 0);
            }
        }
        if (sxx <= 0 || nz == 0) continue; /* a rejected or empty client: nothing to hide */
        const double r = syy > 0 ? sxy / sqrt(sxx * syy) : 0.0;
        const double dev = fabs((double)agree / (double)nz - 0.5) / (0.5 / sqrt((double)nz));
        s->inputs++;
        s->nnz += nz;
        if (fabs(r) > s->max_abs_r) s->max_abs_r = fabs(r);
        if (r < s->min_r) s->min_r = r;
        if (dev > s->max_sign_dev) s->max_sign_dev = dev;
        if ((double)eq / (double)P > s->max_equal_frac) s->max_equal_frac = (double)eq / (double)P;
    }
    if (st == FH_OK) {
        int64_t d = 0;
        for (int64_t j = 0; j < L; j++) d += msum[j] != tsum[j];
        const double f = (double)d / (double)L;
        if (f < s->min_maskedsum_diff_frac) s->min_maskedsum_diff_frac = f;
        for (int64_t j = 0; j < L; j++) {
            s->sum_mismatch += !aborted && usum[j] != tsum[j];
            s->plain_mismatch += !aborted && usum[j] != (uint64_t)agg[j];
        }
        /* each answer: a share of the self-mask seed of a survivor (kind 0) or of the key of a
         * dropped client (kind 1), from a surviving neighbour, one per (owner, holder) */
        for (int64_t i = 0; i < nr; i++) {
            tr_resp a;
            memcpy(&a, resp + i * SECAGG_RESP_BYTES, sizeof a);
            s->resp_total++;
            int bad = a.owner < 0 || a.owner >= n || a.holder < 0 || a.holder >= n || !alive[a.holder] ||
                      a.kind != (alive[a.owner] ? 0 : 1);
            for (int64_t k = 0; !bad && k < i; k++) {
                tr_resp b;
                memcpy(&b, resp + k * SECAGG_RESP_BYTES, sizeof b);
                bad = b.owner == a.owner && b.holder == a.holder;
            }
            s->resp_errors += bad;
        }
        s->groups++;
    }
#undef NM
    free(ids); free(ids2); free(alive); free(resp); free(y); free(usum); free(x); free(agg); free(tsum); free(msum);
    return st;
}

static fh_status check_dir(const char *dir, tr_stats *s)
{
    tr_set tr, truth, plain;
    memset(s, 0, sizeof *s);
    s->min_r = 2;
    s->min_maskedsum_diff_frac = 2;
    memset(&truth, 0, sizeof truth);
    memset(&plain, 0, sizeof plain);
    fh_status st = set_open(&tr, dir, "transcript", "fedhpc-secagg-transcript");
    if (st == FH_OK) st = set_open(&truth, dir, "truth", "fedhpc-secagg-truth");
    if (st == FH_OK) st = set_open(&plain, dir, "plain_truth", "fedhpc-secagg-truth");
    int64_t L = 0;
    if (st == FH_OK) st = io_rec_get_i64(tr.f[0], "words", &L);
    if (st == FH_OK) st = io_rec_get_i64(tr.f[0], "params", &s->P);
    for (int64_t r = 1; st == FH_OK; r++) {
        char g[128], cl[160];
        snprintf(g, sizeof g, "round_%08lld", (long long)r);
        if (!set_find(&tr, g)) break;
        s->rounds++;
        snprintf(cl, sizeof cl, "%s/clients", g);
        if (set_find(&tr, cl)) {
            st = check_group(&tr, &truth, &plain, g, L, s);
            continue;
        }
        for (int k = 0; st == FH_OK && k < 4096; k++) { /* multi-center: round_R/cluster_K */
            snprintf(cl, sizeof cl, "%s/cluster_%d/clients", g, k);
            if (!set_find(&tr, cl)) continue;
            snprintf(cl, sizeof cl, "%s/cluster_%d", g, k);
            st = check_group(&tr, &truth, &plain, cl, L, s);
        }
    }
    set_close(&tr);
    set_close(&truth);
    set_close(&plain);
    return st;
}

static void test_transcript_check(void)
{
    const char *expect = getenv("FEDHPC_SA_EXPECT");
    const int clear = expect && strcmp(expect, "clear") == 0;
    tr_stats s;
    fh_status st = check_dir(g_dir, &s);
    if (st != FH_OK) printf("\n  transcript check: %s\n", fh_error_msg());
    CU_ASSERT_EQUAL_FATAL(st, FH_OK);
    const double rmax = 5.0 / sqrt((double)s.P);
    if (g_test_world.rank == 0)
        printf("\n  transcript %s (%s): %lld rounds, %lld groups, %lld masked inputs (%lld dropped clients), P = %lld\n"
               "    max |corr(masked, true)| %.4f (bound 5/sqrt(P) = %.4f), min corr %.4f\n"
               "    max sign-agreement deviation %.2f sigma, max fraction of equal words %.4f\n"
               "    sum of masked inputs != true sum in >= %.4f of the words\n"
               "    unmasked sum != true sum: %lld words, != plain run's aggregate: %lld words; bad unmasking answers %lld of %lld\n",
               g_dir, clear ? "control: masks off" : "masked", (long long)s.rounds, (long long)s.groups,
               (long long)s.inputs, (long long)s.dropped, (long long)s.P, s.max_abs_r, rmax, s.min_r, s.max_sign_dev,
               s.max_equal_frac, s.min_maskedsum_diff_frac, (long long)s.sum_mismatch, (long long)s.plain_mismatch,
               (long long)s.resp_errors, (long long)s.resp_total);
    CU_ASSERT(s.rounds >= 1);
    CU_ASSERT(s.inputs >= 1);
    CU_ASSERT_EQUAL(s.sum_mismatch, 0);
    CU_ASSERT_EQUAL(s.plain_mismatch, 0);
    CU_ASSERT_EQUAL(s.resp_errors, 0);
    if (clear) { /* the control: every measurement sees the updates */
        CU_ASSERT(s.min_r > 0.99);
        CU_ASSERT(s.max_abs_r > rmax);
        CU_ASSERT(s.max_equal_frac > 0.99);
        CU_ASSERT(s.min_maskedsum_diff_frac < 0.01);
    } else {
        CU_ASSERT(s.max_abs_r < rmax);
        CU_ASSERT(s.max_sign_dev < 5.0);
        CU_ASSERT(s.max_equal_frac < 0.01);
        CU_ASSERT(s.min_maskedsum_diff_frac > 0.99);
    }
}

/* Called by tests_register_secagg (test_secagg.c). */
void tests_register_secagg_transcript(CU_pSuite s)
{
    const char *d = getenv("FEDHPC_SA_TRANSCRIPT");
    if (!d || !d[0]) return;
    snprintf(g_dir, sizeof g_dir, "%s", d);
    tests_add(s, "transcript_check", test_transcript_check);
}
