/* Unit tests of vertical FL (src/vfl): column assignment, overlap, party files, loss/AUC, the
 * PSI chain over two ranks (under mpirun -np >= 2). */
#define _POSIX_C_SOURCE 200809L
#include "../../src/vfl/vfl_internal.h"
#include "fedhpc/io.h"
#include "fedhpc/vfl.h"
#include "tests.h"

#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* columns: y (label), a (numeric), b (categorical, 2), c (numeric), e (numeric) */
static data_encoding *enc5(void)
{
    static char *names[5] = {"y", "a", "b", "c", "e"};
    static int32_t kind[5] = {COL_LABEL, COL_NUMERIC, COL_CATEGORICAL, COL_NUMERIC, COL_NUMERIC};
    static int32_t first[5] = {-1, 0, 1, 3, 4};
    static int32_t ncat[5] = {0, 0, 2, 0, 0};
    static data_encoding e;
    e.ncols = 5;
    e.col_name = names;
    e.kind = kind;
    e.first_feature = first;
    e.ncat = ncat;
    e.d = 5;
    return &e;
}

static fh_status colfile(const char *text, int32_t K, int32_t *cp)
{
    char path[600];
    snprintf(path, sizeof path, "%s/cols.%d.txt", g_test_tmpdir, g_test_world.rank);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return vfl_columns_file(path, enc5(), K, cp);
}

static void test_columns_file(void)
{
    int32_t cp[5];
    CU_ASSERT_EQUAL(colfile("# a comment\n0: y a b\n1: c, e\n", 2, cp), FH_OK);
    CU_ASSERT(cp[0] == 0 && cp[1] == 0 && cp[2] == 0 && cp[3] == 1 && cp[4] == 1);
    CU_ASSERT_EQUAL(colfile("0: a\n1: c\n", 2, cp), FH_OK); /* b, e dropped; label at 0 anyway */
    CU_ASSERT(cp[0] == 0 && cp[1] == 0 && cp[2] == -1 && cp[3] == 1 && cp[4] == -1);
    CU_ASSERT_EQUAL(colfile("0: a b\n1: b c\n", 2, cp), FH_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), "overlapping column assignments"));
    CU_ASSERT_EQUAL(colfile("0: a\n1: y c\n", 2, cp), FH_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), "label column at two parties"));
    CU_ASSERT_EQUAL(colfile("0: a\n1: zz\n", 2, cp), FH_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), "no column 'zz'"));
    CU_ASSERT_EQUAL(colfile("0: a\n2: c\n", 2, cp), FH_EINPUT);
    CU_ASSERT_EQUAL(colfile("0: a b c e\n", 2, cp), FH_EINPUT); /* party 1 without columns */
    CU_ASSERT_EQUAL(colfile("a b\n", 2, cp), FH_EINPUT);
}

static void test_columns_seeded(void)
{
    int32_t a[5], b[5];
    CU_ASSERT_EQUAL(vfl_columns_seeded(enc5(), 2, 7, a), FH_OK);
    CU_ASSERT_EQUAL(vfl_columns_seeded(enc5(), 2, 7, b), FH_OK);
    CU_ASSERT_EQUAL(memcmp(a, b, sizeof a), 0);
    CU_ASSERT_EQUAL(a[0], 0);
    int cnt[2] = {0, 0};
    for (int j = 1; j < 5; j++) {
        CU_ASSERT(a[j] == 0 || a[j] == 1);
        if (a[j] >= 0) cnt[a[j]]++;
    }
    CU_ASSERT(cnt[0] == 2 && cnt[1] == 2);
    CU_ASSERT_EQUAL(vfl_columns_seeded(enc5(), 5, 7, a), FH_EINPUT); /* 4 feature columns */
}

static void test_overlap(void)
{
    const int64_t n = 20000;
    const int32_t K = 3;
    uint8_t *h = malloc((size_t)(n * K)), *h2 = malloc((size_t)(n * K));
    CU_ASSERT_EQUAL_FATAL(vfl_overlap(n, K, 0.6, 0.1, 11, h), FH_OK);
    CU_ASSERT_EQUAL(vfl_overlap(n, K, 0.6, 0.1, 11, h2), FH_OK);
    CU_ASSERT_EQUAL(memcmp(h, h2, (size_t)(n * K)), 0);
    int64_t na = 0;
    for (int64_t i = 0; i < n; i++) na += h[i];
    CU_ASSERT_EQUAL(na, n - 2 * 2000);
    for (int p = 1; p < K; p++) {
        int64_t own = 0, shared = 0;
        for (int64_t i = 0; i < n; i++) {
            if (!h[p * n + i]) continue;
            if (h[i]) shared++;
            else own++;
        }
        CU_ASSERT_EQUAL(own, 2000);
        CU_ASSERT(fabs((double)shared / (double)na - 0.6) < 0.02);
    }
    /* the own customers of different parties are disjoint */
    for (int64_t i = 0; i < n; i++) CU_ASSERT(h[i] || !(h[n + i] && h[2 * n + i]));
    CU_ASSERT_EQUAL(vfl_overlap(n, K, 0.0, 0.1, 11, h), FH_EINPUT);
    CU_ASSERT_EQUAL(vfl_overlap(100, K, 0.5, 0.5, 11, h), FH_EINPUT);
    free(h);
    free(h2);
}

static void test_loss_auc(void)
{
    double z[4] = {-2, 0.5, 3, 0}, r[4];
    int32_t y[4] = {0, 1, 1, 0};
    double want = 0;
    for (int i = 0; i < 4; i++) {
        double p = 1 / (1 + exp(-z[i]));
        want += -(y[i] ? log(p) : log(1 - p));
    }
    CU_ASSERT(fabs(vfl_logloss(z, y, 4, r) - want / 4) < 1e-12);
    CU_ASSERT(fabs(r[1] - (1 / (1 + exp(-0.5)) - 1)) < 1e-12);
    double s1[4] = {0.1, 0.2, 0.8, 0.9};
    int32_t y1[4] = {0, 0, 1, 1}, y2[4] = {1, 1, 0, 0};
    CU_ASSERT_DOUBLE_EQUAL(vfl_auc(s1, y1, 4), 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(vfl_auc(s1, y2, 4), 0.0, 1e-12);
    double s3[4] = {0.5, 0.5, 0.5, 0.5};
    CU_ASSERT_DOUBLE_EQUAL(vfl_auc(s3, y1, 4), 0.5, 1e-12);
    double s4[4] = {0.1, 0.9, 0.2, 0.8}; /* one of four pairs misordered */
    int32_t y4[4] = {0, 0, 1, 1};
    CU_ASSERT_DOUBLE_EQUAL(vfl_auc(s4, y4, 4), 0.5, 1e-12);
}

static void test_party_file(void)
{
    vfl_party_data pd, rd;
    memset(&pd, 0, sizeof pd);
    char ids[3][VFL_ID_BYTES] = {"C000003", "C000001", "C000002"};
    double x[6] = {1, 2, 3, 4, 5, 6};
    int32_t y[3] = {1, 0, 1};
    uint8_t t[3] = {0, 1, 0};
    char names[2][VFL_NAME_BYTES] = {"f0", "f1"};
    pd.parties = 2; pd.party = 0; pd.has_label = 1; pd.rows = 3; pd.d = 2; pd.seed = 4; pd.tag = 99;
    pd.ids = ids; pd.x = x; pd.y = y; pd.test = t;
    char path[600];
    snprintf(path, sizeof path, "%s/vfl.%d.h5", g_test_tmpdir, g_test_world.rank);
    CU_ASSERT_EQUAL_FATAL(vfl_party_write(path, &pd, names), FH_OK);
    CU_ASSERT_EQUAL_FATAL(vfl_party_read(path, &rd), FH_OK);
    CU_ASSERT(rd.rows == 3 && rd.d == 2 && rd.tag == 99 && rd.has_label == 1 && rd.party == 0);
    CU_ASSERT_EQUAL(memcmp(rd.x, x, sizeof x), 0);
    CU_ASSERT_EQUAL(memcmp(rd.y, y, sizeof y), 0);
    CU_ASSERT_EQUAL(memcmp(rd.test, t, sizeof t), 0);
    CU_ASSERT_STRING_EQUAL(rd.ids[0], "C000003");
    size_t all[3] = {0, 1, 2};
    int64_t idx[3];
    vfl_sort_rows(&rd, all, 3, idx);
    CU_ASSERT(idx[0] == 1 && idx[1] == 2 && idx[2] == 0);
    vfl_party_free(&rd);
    CU_ASSERT_EQUAL(vfl_party_read("/nonexistent.h5", &rd), FH_EINPUT);
}

/* PSI chain on ranks 0 (A: C0000..C0099) and 1 (B: C0150 down to C0050): both end with the 50
 * common ids C0050..C0099, in the same (sorted) order. Other ranks take no part. */
static void test_psi_chain(void)
{
    const comm_t *w = &g_test_world;
    if (w->size < 2) return;
    vfl_party_data pd;
    memset(&pd, 0, sizeof pd);
    int me = w->rank;
    if (me < 2) {
        pd.rows = me == 0 ? 100 : 101;
        pd.ids = calloc((size_t)pd.rows, sizeof *pd.ids);
        for (int64_t i = 0; i < pd.rows; i++)
            snprintf(pd.ids[i], VFL_ID_BYTES, "C%04d", me == 0 ? (int)i : 150 - (int)i);
    }
    int64_t *rows = NULL, n = -1;
    fh_status st = me < 2 ? vfl_psi(w, 2, &pd, &rows, &n) : FH_OK;
    CU_ASSERT_EQUAL(st, FH_OK);
    if (me < 2) {
        CU_ASSERT_EQUAL(n, 50);
        for (int64_t i = 0; i < n && i < 50; i++) {
            char want[16];
            snprintf(want, sizeof want, "C%04d", 50 + (int)i);
            CU_ASSERT_STRING_EQUAL(pd.ids[rows[i]], want);
        }
    }
    free(rows);
    free(pd.ids);
}

/* A party file with a duplicate id is refused on every rank before any PSI message (no hang). */
static void test_duplicate_ids(void)
{
    const comm_t *w = &g_test_world;
    if (w->size < 2) return;
    char base[600], path[700];
    snprintf(base, sizeof base, "%s/dup.h5", g_test_tmpdir);
    if (w->rank == 0)
        for (int p = 0; p < 2; p++) {
            vfl_party_data pd;
            memset(&pd, 0, sizeof pd);
            char ids[3][VFL_ID_BYTES] = {"C1", "C2", "C1"};
            double x[3] = {1, 2, 3};
            int32_t y[3] = {0, 1, 0};
            uint8_t t[3] = {0, 0, 0};
            char names[1][VFL_NAME_BYTES] = {"f"};
            pd.parties = 2; pd.party = p; pd.has_label = p == 0; pd.rows = 3; pd.d = 1; pd.tag = 5;
            pd.ids = ids; pd.x = x; pd.y = p == 0 ? y : NULL; pd.test = p == 0 ? t : NULL;
            if (p == 1) snprintf(ids[2], VFL_ID_BYTES, "C3");
            io_data_party_path(base, p, path, sizeof path);
            CU_ASSERT_EQUAL(vfl_party_write(path, &pd, names), FH_OK);
        }
    comm_barrier(w);
    vfl_opts o;
    memset(&o, 0, sizeof o);
    o.data = base;
    o.out_dir = g_test_tmpdir;
    o.parties = 2;
    o.steps = 1;
    o.lr = 0.1;
    o.key_bits = 512;
    vfl_result r;
    CU_ASSERT_EQUAL(vfl_train(w, &o, &r), FH_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), "ids must be unique"));
}

/* Pairwise masks of parties 1..3 (K = 4) cancel in the sum mod 2^64; each masked vector alone
 * is far from the plain one. Keys: pair {p, q} shares key[p][q] == key[q][p]. */
static void test_masks_cancel(void)
{
    const int K = 4;
    const int64_t n = 64;
    uint8_t key[4][4][crypto_kx_SESSIONKEYBYTES];
    for (int p = 1; p < K; p++)
        for (int q = p + 1; q < K; q++) {
            randombytes_buf(key[p][q], sizeof key[p][q]);
            memcpy(key[q][p], key[p][q], sizeof key[p][q]);
        }
    uint64_t sum[64] = {0}, plain[64], q[64], scratch[64];
    int differs = 1;
    for (int p = 1; p < K; p++) {
        for (int64_t i = 0; i < n; i++) q[i] = plain[i] = (uint64_t)(1000 * p + i);
        vfl_mask_apply(K, p, key[p], 7, q, scratch, n);
        int same = 0;
        for (int64_t i = 0; i < n; i++) same += q[i] == plain[i];
        if (same > 2) differs = 0;
        for (int64_t i = 0; i < n; i++) sum[i] += q[i];
    }
    CU_ASSERT(differs);
    for (int64_t i = 0; i < n; i++) CU_ASSERT_EQUAL(sum[i], (uint64_t)(6000 + 3 * i));
}

void tests_register_vfl(void)
{
    CU_pSuite s = CU_add_suite("vfl", NULL, NULL);
    tests_add(s, "columns_file", test_columns_file);
    tests_add(s, "columns_seeded", test_columns_seeded);
    tests_add(s, "overlap", test_overlap);
    tests_add(s, "loss_auc", test_loss_auc);
    tests_add(s, "party_file", test_party_file);
    tests_add(s, "psi_chain", test_psi_chain);
    tests_add(s, "duplicate_ids", test_duplicate_ids);
    tests_add(s, "masks_cancel", test_masks_cancel);
}
