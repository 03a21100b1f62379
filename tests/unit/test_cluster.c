/* Multi-center FL helpers: the ScaLAPACK similarity step against serial LAPACK (run under
 * -np 1, 2, 4 by the unit runner), the adjusted Rand index on hand cases, FeSEM's and IFCA's
 * assignment steps, k-means++ / k-means / spectral clustering on toy data, client groups. */
#include "tests.h"

#include "fedhpc/data.h"
#include "fedhpc/cluster.h"
#include "fedhpc/fl.h"
#include "fedhpc/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
            double *work, const int *lwork, int *info);

static void fill(float *a, int64_t n, uint64_t id)
{
    rng_t r = rng_stream(7, id, 0, RNG_INIT);
    for (int64_t i = 0; i < n; i++) a[i] = (float)(rng_uniform(&r) * 2 - 1);
}

static void gram_case(int n, int p);
static void test_gram_matches_serial(void)
{
    gram_case(13, 37);
    gram_case(5, 9000); /* more than one column panel */
}

static void gram_case(int n, int p)
{
    comm_t *w = &g_test_world;
    float *A = malloc(sizeof(float) * n * p);
    double *G = malloc(sizeof(double) * n * n);
    fill(A, (int64_t)n * p, 1);
    const int64_t r0 = dist_rows_first(n, w->size, w->rank), r1 = dist_rows_first(n, w->size, w->rank + 1);
    dist_info info;
    CU_ASSERT_EQUAL_FATAL(dist_gram(w, n, p, A + r0 * p, 4, G, &info), FH_OK);
    CU_ASSERT_EQUAL(info.nprow * info.npcol, w->size);
    CU_ASSERT(info.local_elems < (int64_t)n * p || w->size == 1); /* no rank holds all of A */
    (void)r1;
    double maxerr = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int k = 0; k < p; k++) s += (double)A[i * p + k] * (double)A[j * p + k];
            double e = fabs(G[i * n + j] - s);
            if (e > maxerr) maxerr = e;
        }
    CU_ASSERT(maxerr < 1e-12 * p);
    free(A);
    free(G);
}

static void test_syevd_matches_serial(void)
{
    comm_t *w = &g_test_world;
    const int n = 11;
    float *B = malloc(sizeof(float) * n * n);
    double *S = malloc(sizeof(double) * n * n), *ref = malloc(sizeof(double) * n * n), *wv = malloc(sizeof(double) * n),
           *wr = malloc(sizeof(double) * n), *Z = malloc(sizeof(double) * n * n), work[1024];
    fill(B, (int64_t)n * n, 2);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) S[i * n + j] = ref[i * n + j] = (double)B[i * n + j] + (double)B[j * n + i];
    CU_ASSERT_EQUAL_FATAL(dist_syevd(w, n, S, 2, wv, Z), FH_OK);
    int info = 0, lw = 1024;
    dsyev_("V", "L", &n, ref, &n, wr, work, &lw, &info); /* ref: column j = eigenvector j */
    CU_ASSERT_EQUAL(info, 0);
    for (int j = 0; j < n; j++) {
        CU_ASSERT(fabs(wv[j] - wr[j]) < 1e-10);
        double dot = 0;
        for (int i = 0; i < n; i++) dot += Z[i + j * n] * ref[i + j * n];
        CU_ASSERT(fabs(fabs(dot) - 1) < 1e-9); /* same vector up to sign */
    }
    free(B); free(S); free(ref); free(wv); free(wr); free(Z);
}

static void test_ari_hand_cases(void)
{
    int32_t a[] = {0, 0, 1, 1}, b[] = {0, 0, 1, 2}, c[] = {0, 1, 0, 1}, d[] = {5, 5, 3, 3};
    CU_ASSERT_DOUBLE_EQUAL(cl_ari(a, b, 4), 4.0 / 7.0, 1e-12); /* sklearn: 0.5714... */
    CU_ASSERT_DOUBLE_EQUAL(cl_ari(a, c, 4), -0.5, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(cl_ari(a, d, 4), 1.0, 1e-12); /* relabelled: identical */
    int32_t e[] = {0, 0, 0, 1, 1, 1}, f[] = {0, 0, 1, 1, 2, 2};
    CU_ASSERT_DOUBLE_EQUAL(cl_ari(e, f, 6), 0.8 / 3.3, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(cl_ari(e, f, 6), cl_ari(f, e, 6), 1e-15);
}

static void test_fesem_ifca_steps(void)
{
    /* three centers in 3 parameters; FeSEM compares only the shared prefix `len` */
    const float centers[] = {0, 0, 0, 10, 0, 0, 0, 10, 100};
    const float m1[] = {9, 1, 0}, m2[] = {1, 8, -100}, m3[] = {0.1f, 0.2f, 100};
    double d2;
    CU_ASSERT_EQUAL(cl_nearest_center(m1, centers, 3, 3, 3, &d2), 1);
    CU_ASSERT_DOUBLE_EQUAL(d2, 2.0, 1e-12);
    CU_ASSERT_EQUAL(cl_nearest_center(m2, centers, 3, 3, 2, NULL), 2); /* head ignored */
    CU_ASSERT_EQUAL(cl_nearest_center(m2, centers, 3, 3, 3, NULL), 0);
    CU_ASSERT_EQUAL(cl_nearest_center(m3, centers, 3, 3, 2, NULL), 0);
    /* IFCA: lowest loss, ties to the lowest index */
    const double loss[] = {0.5, 0.2, 0.9, 1.0, 1.0, 0.3, 2.0, 2.0, 2.0};
    int32_t as[3];
    cl_argmin(loss, 3, 3, as);
    CU_ASSERT_EQUAL(as[0], 1);
    CU_ASSERT_EQUAL(as[1], 2);
    CU_ASSERT_EQUAL(as[2], 0);
}

static void test_kmeans_and_spectral_toy(void)
{
    /* 3 blobs of 6 points in 2-D, interleaved order */
    const int n = 18, k = 3;
    double X[36], G[18 * 18], D2[18 * 18], Cs[18 * 18];
    int32_t truth[18], got[18], seeds[3];
    const double cx[3] = {0, 20, 0}, cy[3] = {0, 0, 20};
    rng_t r = rng_stream(3, 0, 0, RNG_INIT);
    for (int i = 0; i < n; i++) {
        truth[i] = i % 3;
        X[2 * i] = cx[i % 3] + rng_normal(&r);
        X[2 * i + 1] = cy[i % 3] + rng_normal(&r);
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) G[i * n + j] = X[2 * i] * X[2 * j] + X[2 * i + 1] * X[2 * j + 1];
    cl_gram_derive(G, n, D2, Cs);
    CU_ASSERT_DOUBLE_EQUAL(D2[0 * n + 3], (X[0] - X[6]) * (X[0] - X[6]) + (X[1] - X[7]) * (X[1] - X[7]), 1e-9);
    CU_ASSERT_EQUAL(cl_kmeanspp(D2, n, k, 5, 1, seeds), FH_OK);
    CU_ASSERT(truth[seeds[0]] != truth[seeds[1]] || truth[seeds[1]] != truth[seeds[2]]);
    CU_ASSERT_EQUAL(cl_kmeans(X, n, 2, k, 5, 50, got), FH_OK);
    CU_ASSERT_DOUBLE_EQUAL(cl_ari(got, truth, n), 1.0, 1e-12);
    /* spectral on a block similarity (collective: every rank, same answer) */
    double S[18 * 18];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) S[i * n + j] = truth[i] == truth[j] ? 0.9 + 0.01 * ((i + j) % 3) : 0.05;
    CU_ASSERT_EQUAL_FATAL(cl_spectral(&g_test_world, S, n, k, 5, got), FH_OK);
    CU_ASSERT_DOUBLE_EQUAL(cl_ari(got, truth, n), 1.0, 1e-12);
}

/* k-means from D2 alone with restarts: 4 blobs of unequal size found exactly; more restarts never
 * raise the objective; deterministic; coinciding items still fill every cluster. */
static void test_kmeans_d2_restarts(void)
{
    enum { N = 40, K = 4 };
    double X[2 * N], D2[N * N], o1, o10, o10b;
    int32_t truth[N], a1[N], a10[N], b10[N];
    const double cx[K] = {0, 8, 0, 8}, cy[K] = {0, 0, 8, 8};
    rng_t r = rng_stream(4, 0, 0, RNG_INIT);
    for (int i = 0; i < N; i++) {
        truth[i] = i < 16 ? 0 : i < 28 ? 1 : i < 36 ? 2 : 3;
        X[2 * i] = cx[truth[i]] + rng_normal(&r);
        X[2 * i + 1] = cy[truth[i]] + rng_normal(&r);
    }
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++)
            D2[i * N + j] = (X[2 * i] - X[2 * j]) * (X[2 * i] - X[2 * j]) + (X[2 * i + 1] - X[2 * j + 1]) * (X[2 * i + 1] - X[2 * j + 1]);
    CU_ASSERT_EQUAL_FATAL(cl_kmeans_d2(D2, N, K, 7, 1, 1, 100, a1, &o1), FH_OK);
    CU_ASSERT_EQUAL_FATAL(cl_kmeans_d2(D2, N, K, 7, 1, 10, 100, a10, &o10), FH_OK);
    CU_ASSERT_EQUAL_FATAL(cl_kmeans_d2(D2, N, K, 7, 1, 10, 100, b10, &o10b), FH_OK);
    CU_ASSERT(o10 <= o1);
    CU_ASSERT_EQUAL(o10, o10b);
    CU_ASSERT_EQUAL(memcmp(a10, b10, sizeof a10), 0);
    CU_ASSERT_DOUBLE_EQUAL(cl_ari(a10, truth, N), 1.0, 1e-12);
    /* the objective is the within-cluster sum of squared distances to the means */
    double mx[K] = {0}, my[K] = {0}, obj = 0;
    int cnt[K] = {0};
    for (int i = 0; i < N; i++) {
        mx[a10[i]] += X[2 * i];
        my[a10[i]] += X[2 * i + 1];
        cnt[a10[i]]++;
    }
    for (int i = 0; i < N; i++) {
        const double dx = X[2 * i] - mx[a10[i]] / cnt[a10[i]], dy = X[2 * i + 1] - my[a10[i]] / cnt[a10[i]];
        obj += dx * dx + dy * dy;
    }
    CU_ASSERT_DOUBLE_EQUAL(o10, obj, 1e-9 * obj);
    /* all items coincide: every cluster still gets one */
    double Z[6 * 6] = {0};
    int32_t az[6], seen[3] = {0, 0, 0};
    CU_ASSERT_EQUAL_FATAL(cl_kmeans_d2(Z, 6, 3, 7, 1, 3, 20, az, NULL), FH_OK);
    for (int i = 0; i < 6; i++) seen[az[i]]++;
    CU_ASSERT(seen[0] > 0 && seen[1] > 0 && seen[2] > 0);
    CU_ASSERT_EQUAL(cl_kmeans_d2(Z, 2, 3, 7, 1, 3, 20, az, NULL), FH_EINPUT);
}

static void test_groups(void)
{
    int32_t g[10], cnt[3] = {0, 0, 0}, perm[10];
    CU_ASSERT_EQUAL(group_assign(10, 3, 9, g), FH_OK);
    for (int i = 0; i < 10; i++) cnt[g[i]]++;
    CU_ASSERT(cnt[0] == 4 && cnt[1] == 3 && cnt[2] == 3);
    CU_ASSERT_EQUAL(group_assign(2, 3, 9, g), FH_EINPUT);
    group_label_perm(0, 9, 10, perm);
    for (int i = 0; i < 10; i++) CU_ASSERT_EQUAL(perm[i], i);
    group_label_perm(2, 9, 10, perm);
    int seen[10] = {0}, moved = 0;
    for (int i = 0; i < 10; i++) {
        seen[perm[i]]++;
        moved += perm[i] != i;
    }
    for (int i = 0; i < 10; i++) CU_ASSERT_EQUAL(seen[i], 1);
    CU_ASSERT(moved > 0);
    /* rotate by 180 degrees twice (K = 2, group 1) maps a 4x4 image onto its reverse */
    float x[16], y0[1] = {0};
    int32_t yy[1] = {0}, rg[1] = {1};
    for (int i = 0; i < 16; i++) x[i] = (float)i;
    CU_ASSERT_EQUAL(group_apply(GROUP_ROTATE, 2, 9, 10, 16, x, yy, 1, rg), FH_OK);
    for (int i = 0; i < 16; i++) CU_ASSERT_DOUBLE_EQUAL(x[i], 15 - i, 1e-4);
    (void)y0;
    CU_ASSERT_EQUAL(group_apply(GROUP_ROTATE, 2, 9, 10, 15, x, yy, 1, rg), FH_EINPUT);
}

void tests_register_cluster(void)
{
    CU_pSuite s = CU_add_suite("cluster", NULL, NULL);
    tests_add(s, "scalapack_gram_matches_serial", test_gram_matches_serial);
    tests_add(s, "scalapack_eigen_matches_lapack", test_syevd_matches_serial);
    tests_add(s, "ari_hand_cases", test_ari_hand_cases);
    tests_add(s, "fesem_ifca_assignment_steps", test_fesem_ifca_steps);
    tests_add(s, "kmeans_spectral_toy", test_kmeans_and_spectral_toy);
    tests_add(s, "kmeans_d2_restarts", test_kmeans_d2_restarts);
    tests_add(s, "client_groups", test_groups);
}
