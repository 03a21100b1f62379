/* Customer embeddings and their federated clustering (issue 15, src/fl/embed.c): federated
 * k-means against the serial k-means of src/fl/kmeans.c and against its own fixed point (every
 * center the mean of its rows, every row at its nearest center), bit-identical results for
 * three placements of the clients on the ranks (run under -np 1, 2, 4), the silhouette against
 * serial computations and hand values, the choice of k, the PCA against serial LAPACK, and
 * model_embed against a hand-written forward pass. */
#include "tests.h"

#include "fedhpc/cluster.h"
#include "fedhpc/embed.h"
#include "fedhpc/model.h"
#include "fedhpc/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
            double *work, const int *lwork, int *info);

/* the fixture: 6 clients (one without rows), 3 well-separated blobs in 3-D */
#define NC 6
#define DIM 3
static const int64_t ROWS[NC] = {9, 0, 14, 5, 11, 13};
static int64_t g_n;
static float *g_x;     /* [g_n, DIM] all rows, client by client */
static int32_t *g_lab; /* [g_n] the blob of each row            */
static int64_t g_off[NC + 1];

static void fixture(void)
{
    if (g_x) return;
    g_off[0] = 0;
    for (int c = 0; c < NC; c++) g_off[c + 1] = g_off[c] + ROWS[c];
    g_n = g_off[NC];
    g_x = malloc((size_t)g_n * DIM * sizeof *g_x);
    g_lab = malloc((size_t)g_n * sizeof *g_lab);
    const double mu[3][DIM] = {{0, 0, 0}, {8, 1, -2}, {-3, 9, 4}};
    rng_t r = rng_stream(11, 0, 0, RNG_INIT);
    for (int64_t i = 0; i < g_n; i++) {
        const int b = (int)rng_below(&r, 3);
        g_lab[i] = b;
        for (int d = 0; d < DIM; d++) g_x[i * DIM + d] = (float)(mu[b][d] + 0.7 * rng_normal(&r));
    }
}

/* This rank's share of the rows under a placement owner[c] (a rank for every client). */
typedef struct {
    int32_t ids[NC];
    int64_t first[NC + 1];
    float *x;
    int64_t *grow; /* global row of each local row */
    embed_rows E;
} placed;

static void place(placed *p, const comm_t *c, const int *owner)
{
    fixture();
    int32_t nloc = 0;
    p->first[0] = 0;
    p->x = malloc((size_t)g_n * DIM * sizeof *p->x);
    p->grow = malloc((size_t)g_n * sizeof *p->grow);
    for (int cl = 0; cl < NC; cl++) {
        if (owner[cl] != c->rank) continue;
        p->ids[nloc] = cl;
        for (int64_t i = g_off[cl]; i < g_off[cl + 1]; i++) {
            const int64_t j = p->first[nloc] + (i - g_off[cl]);
            memcpy(p->x + j * DIM, g_x + i * DIM, DIM * sizeof *g_x);
            p->grow[j] = i;
        }
        p->first[nloc + 1] = p->first[nloc] + ROWS[cl];
        nloc++;
    }
    p->E = (embed_rows){.c = c, .dim = DIM, .n = p->first[nloc], .x = p->x, .clients = NC, .nloc = nloc,
                        .client = p->ids, .first = p->first};
}

static void unplace(placed *p)
{
    free(p->x);
    free(p->grow);
}

/* three placements: blocks over the world, round-robin over the world, all on this rank alone */
static void owners(int kind, int size, int *owner)
{
    for (int c = 0; c < NC; c++) owner[c] = kind == 0 ? c * size / NC : kind == 1 ? (NC - 1 - c) % size : 0;
}

static void test_kmeans_matches_serial(void)
{
    comm_t *w = &g_test_world, self;
    CU_ASSERT_EQUAL_FATAL(comm_split(w, w->rank, 0, &self), FH_OK);
    int owner[NC];
    owners(2, 1, owner);
    placed p;
    place(&p, &self, owner); /* every row on this rank: the serial reference */
    const int32_t k = 3;
    double cen[3 * DIM];
    int32_t *as = malloc((size_t)g_n * sizeof *as), *ref = malloc((size_t)g_n * sizeof *ref);
    embed_km_stats S;
    CU_ASSERT_EQUAL_FATAL(embed_kmeans(&p.E, k, 5, 100, cen, as, &S), FH_OK);
    CU_ASSERT_EQUAL(S.converged, 1);
    CU_ASSERT_EQUAL(S.rows, g_n);
    CU_ASSERT_EQUAL(S.empty, 0);
    /* a serial Lloyd k-means in double from the same seeds (iters = 0 returns the k-means++
     * seeds) reaches the same partition and centers; both find the true blobs (ARI 1) */
    double seeds[3 * DIM];
    CU_ASSERT_EQUAL_FATAL(embed_kmeans(&p.E, k, 5, 0, seeds, ref, NULL), FH_OK);
    for (int64_t i = 0; i < g_n; i++) ref[i] = -1;
    for (int it = 0; it < 100; it++) {
        int changed = 0;
        for (int64_t i = 0; i < g_n; i++) {
            int32_t b = 0;
            double bd = INFINITY;
            for (int32_t c = 0; c < k; c++) {
                double d2 = 0;
                for (int d = 0; d < DIM; d++) d2 += pow((double)g_x[i * DIM + d] - seeds[c * DIM + d], 2);
                if (d2 < bd) {
                    bd = d2;
                    b = c;
                }
            }
            changed |= b != ref[i];
            ref[i] = b;
        }
        if (!changed) break;
        for (int32_t c = 0; c < k; c++) {
            double s[DIM] = {0};
            int64_t m = 0;
            for (int64_t i = 0; i < g_n; i++)
                if (ref[i] == c) {
                    m++;
                    for (int d = 0; d < DIM; d++) s[d] += g_x[i * DIM + d];
                }
            for (int d = 0; m && d < DIM; d++) seeds[c * DIM + d] = s[d] / m;
        }
    }
    CU_ASSERT(memcmp(as, ref, (size_t)g_n * sizeof *as) == 0);
    for (int j = 0; j < k * DIM; j++) CU_ASSERT_DOUBLE_EQUAL(cen[j], seeds[j], 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(cl_ari(as, g_lab, (int32_t)g_n), 1.0, 1e-12);
    /* a Lloyd fixed point: every center is the mean of its rows (to the 2^-40 resolution of the
     * fixed-point sums), every row at its nearest center; the inertia is their squared distances */
    double inertia = 0;
    for (int32_t c = 0; c < k; c++) {
        double s[DIM] = {0};
        int64_t m = 0;
        for (int64_t i = 0; i < g_n; i++)
            if (as[i] == c) {
                m++;
                for (int d = 0; d < DIM; d++) s[d] += g_x[i * DIM + d];
            }
        CU_ASSERT(m > 0);
        for (int d = 0; d < DIM; d++) CU_ASSERT_DOUBLE_EQUAL(cen[c * DIM + d], s[d] / m, 1e-9);
    }
    for (int64_t i = 0; i < g_n; i++) {
        double best = INFINITY, own = 0;
        for (int32_t c = 0; c < k; c++) {
            double d2 = 0;
            for (int d = 0; d < DIM; d++) d2 += pow(g_x[i * DIM + d] - cen[c * DIM + d], 2);
            if (d2 < best) best = d2;
            if (c == as[i]) own = d2;
        }
        CU_ASSERT_EQUAL(own, best);
        inertia += own;
    }
    CU_ASSERT_DOUBLE_EQUAL(S.inertia, inertia, 1e-9 * inertia);
    /* k out of range, more clusters than rows */
    CU_ASSERT_EQUAL(embed_kmeans(&p.E, 0, 5, 10, cen, as, NULL), FH_EINPUT);
    CU_ASSERT_EQUAL(embed_kmeans(&p.E, EMBED_K_MAX + 1, 5, 10, cen, as, NULL), FH_EINPUT);
    CU_ASSERT_EQUAL(embed_kmeans(&p.E, (int32_t)g_n + 1, 5, 10, cen, as, NULL), FH_EINPUT); /* g_n + 1 <= 64 */
    free(as);
    free(ref);
    unplace(&p);
    comm_free(&self);
}

/* The same centers, assignments, inertia and silhouette bit for bit under three placements. */
static void test_kmeans_exact_any_placement(void)
{
    comm_t *w = &g_test_world, self;
    CU_ASSERT_EQUAL_FATAL(comm_split(w, w->rank, 0, &self), FH_OK);
    fixture();
    for (int32_t k = 4; k <= 16; k += 12) { /* k = 16: re-seeding on the way */
    double cen[3][16 * DIM], sil[3], inertia[3];
    int32_t *glob[3], res[3];
    for (int kind = 0; kind < 3; kind++) {
        int owner[NC];
        owners(kind, w->size, owner);
        placed p;
        place(&p, kind == 2 ? &self : w, owner);
        int32_t *as = malloc((size_t)(g_n + 1) * sizeof *as);
        embed_km_stats S;
        CU_ASSERT_EQUAL_FATAL(embed_kmeans(&p.E, k, 9, 100, cen[kind], as, &S), FH_OK);
        CU_ASSERT_EQUAL_FATAL(embed_silhouette(&p.E, k, cen[kind], as, &sil[kind], NULL, NULL), FH_OK);
        inertia[kind] = S.inertia;
        res[kind] = S.reseeded;
        /* every rank's assignments into the global order (a sum: each row from one rank) */
        int64_t *g = calloc((size_t)g_n, sizeof *g);
        for (int64_t i = 0; i < p.E.n; i++) g[p.grow[i]] = as[i] + 1;
        if (kind != 2) CU_ASSERT_EQUAL(comm_allreduce_sum_i64(w, g, g_n), FH_OK);
        glob[kind] = malloc((size_t)g_n * sizeof *glob[kind]);
        for (int64_t i = 0; i < g_n; i++) glob[kind][i] = (int32_t)g[i] - 1;
        free(g);
        free(as);
        unplace(&p);
    }
    for (int kind = 1; kind < 3; kind++) {
        CU_ASSERT(memcmp(cen[0], cen[kind], (size_t)k * DIM * sizeof cen[0][0]) == 0);
        CU_ASSERT(memcmp(glob[0], glob[kind], (size_t)g_n * sizeof *glob[0]) == 0);
        CU_ASSERT(memcmp(&sil[0], &sil[kind], sizeof sil[0]) == 0);
        CU_ASSERT(memcmp(&inertia[0], &inertia[kind], sizeof inertia[0]) == 0);
        CU_ASSERT_EQUAL(res[0], res[kind]);
    }
    if (k == 16) CU_ASSERT(res[0] > 0); /* the re-seeding path was taken */
    for (int kind = 0; kind < 3; kind++) free(glob[kind]);
    }
    comm_free(&self);
}

static void test_silhouette(void)
{
    comm_t *w = &g_test_world;
    /* hand case for the full silhouette: {0, 1} and {10, 11} on a line, and a singleton {30} */
    const float x[5] = {0, 1, 10, 11, 30};
    const int32_t a[5] = {0, 0, 1, 1, 2};
    /* row 0: a = 1, b = mean(10, 11) = 10.5; row 1: a = 1, b = 9.5; row 2: a = 1, b = 9.5;
     * row 3: a = 1, b = mean(11, 10) = 10.5 (to cluster 0) vs 19 (to 30); row 4: singleton 0 */
    const double want = ((1 - 1 / 10.5) + (1 - 1 / 9.5) + (1 - 1 / 9.5) + (1 - 1 / 10.5) + 0) / 5;
    CU_ASSERT_DOUBLE_EQUAL(embed_silhouette_full(x, 5, 1, a, 3), want, 1e-12);
    /* the simplified silhouette, federated, against a serial computation on the fixture */
    int owner[NC];
    owners(0, w->size, owner);
    placed p;
    place(&p, w, owner);
    double cen[3 * DIM] = {0, 0, 0, 8, 1, -2, -3, 9, 4}; /* the blob means as centers */
    int32_t *as = malloc((size_t)(p.E.n + 1) * sizeof *as);
    for (int64_t i = 0; i < p.E.n; i++) as[i] = g_lab[p.grow[i]];
    double mean, per[3];
    int64_t sizes[3];
    CU_ASSERT_EQUAL_FATAL(embed_silhouette(&p.E, 3, cen, as, &mean, per, sizes), FH_OK);
    double tot = 0, pc[3] = {0};
    int64_t cnt[3] = {0};
    for (int64_t i = 0; i < g_n; i++) cnt[g_lab[i]]++;
    for (int64_t i = 0; i < g_n; i++) {
        double d[3];
        for (int c = 0; c < 3; c++) {
            d[c] = 0;
            for (int t = 0; t < DIM; t++) d[c] += pow(g_x[i * DIM + t] - cen[c * DIM + t], 2);
            d[c] = sqrt(d[c]);
        }
        const int own = g_lab[i];
        double b = INFINITY;
        for (int c = 0; c < 3; c++)
            if (c != own) b = fmin(b, d[c]);
        const double s = (b - d[own]) / fmax(b, d[own]);
        tot += s;
        pc[own] += s;
    }
    CU_ASSERT_DOUBLE_EQUAL(mean, tot / g_n, 1e-9);
    for (int c = 0; c < 3; c++) {
        CU_ASSERT_EQUAL(sizes[c], cnt[c]);
        CU_ASSERT_DOUBLE_EQUAL(per[c], pc[c] / cnt[c], 1e-9);
    }
    CU_ASSERT(mean > 0.6); /* well-separated blobs */
    /* and close to the full silhouette of the same partition */
    const double full = embed_silhouette_full(g_x, g_n, DIM, g_lab, 3);
    CU_ASSERT(fabs(full - mean) < 0.15);
    free(as);
    unplace(&p);
}

static void test_select_k(void)
{
    comm_t *w = &g_test_world;
    int owner[NC];
    owners(1, w->size, owner);
    placed p;
    place(&p, w, owner);
    int32_t best = 0;
    double sil[5], in[5], ch[5];
    CU_ASSERT_EQUAL_FATAL(embed_select_k(&p.E, 2, 6, 3, 100, &best, sil, in, ch), FH_OK);
    CU_ASSERT_EQUAL(best, 3); /* three blobs */
    for (int i = 0; i < 5; i++) CU_ASSERT(sil[i] <= sil[1]);
    CU_ASSERT(in[1] < in[0]);
    CU_ASSERT(ch[1] > ch[0] && ch[1] > 10); /* Calinski-Harabasz also peaks at 3 over 2 */
    /* CH from its definition with T from the data */
    double mu[DIM] = {0}, T = 0;
    for (int64_t i = 0; i < g_n; i++)
        for (int d = 0; d < DIM; d++) mu[d] += g_x[i * DIM + d] / (double)g_n;
    for (int64_t i = 0; i < g_n; i++)
        for (int d = 0; d < DIM; d++) T += pow(g_x[i * DIM + d] - mu[d], 2);
    CU_ASSERT_DOUBLE_EQUAL(ch[1], ((T - in[1]) / 2) / (in[1] / (double)(g_n - 3)), 1e-6 * ch[1]);
    CU_ASSERT_EQUAL(embed_select_k(&p.E, 1, 6, 3, 100, &best, NULL, NULL, NULL), FH_EINPUT);
    CU_ASSERT_EQUAL(embed_select_k(&p.E, 5, 4, 3, 100, &best, NULL, NULL, NULL), FH_EINPUT);
    /* many clusters for 52 rows: emptied clusters are re-seeded, none is left empty */
    double cen[12 * DIM];
    int32_t *as = malloc((size_t)(p.E.n + 1) * sizeof *as);
    embed_km_stats S;
    CU_ASSERT_EQUAL_FATAL(embed_kmeans(&p.E, 12, 8, 100, cen, as, &S), FH_OK);
    CU_ASSERT_EQUAL(S.empty, 0);
    free(as);
    unplace(&p);
}

static void test_pca(void)
{
    comm_t *w = &g_test_world;
    int owner[NC];
    owners(0, w->size, owner);
    placed p;
    place(&p, w, owner);
    double mean[DIM], axes[2 * DIM], var[2], total;
    CU_ASSERT_EQUAL_FATAL(embed_pca2(&p.E, mean, axes, var, &total), FH_OK);
    /* serial: the covariance in double, LAPACK */
    double mu[DIM] = {0}, cov[DIM * DIM] = {0}, ev[DIM], work[64];
    for (int64_t i = 0; i < g_n; i++)
        for (int a = 0; a < DIM; a++) mu[a] += g_x[i * DIM + a] / (double)g_n;
    for (int64_t i = 0; i < g_n; i++)
        for (int a = 0; a < DIM; a++)
            for (int b = 0; b < DIM; b++) cov[a * DIM + b] += (g_x[i * DIM + a] - mu[a]) * (g_x[i * DIM + b] - mu[b]) / g_n;
    int n = DIM, lw = 64, info;
    double tr = cov[0] + cov[4] + cov[8];
    dsyev_("V", "U", &n, cov, &n, ev, work, &lw, &info);
    CU_ASSERT_EQUAL(info, 0);
    CU_ASSERT_DOUBLE_EQUAL(total, tr, 1e-9);
    for (int a = 0; a < DIM; a++) CU_ASSERT_DOUBLE_EQUAL(mean[a], mu[a], 1e-9);
    for (int q = 0; q < 2; q++) {
        CU_ASSERT_DOUBLE_EQUAL(var[q], ev[DIM - 1 - q], 1e-8);
        double dot = 0;
        for (int a = 0; a < DIM; a++) dot += axes[q * DIM + a] * cov[(DIM - 1 - q) * DIM + a];
        CU_ASSERT_DOUBLE_EQUAL(fabs(dot), 1.0, 1e-8); /* the same axis up to its sign */
    }
    /* projections: centred, the first coordinate's variance is var[0] */
    float *pr = malloc((size_t)(p.E.n + 1) * 2 * sizeof *pr);
    embed_project(p.E.x, p.E.n, DIM, mean, axes, pr);
    double s[2] = {0, 0};
    for (int64_t i = 0; i < p.E.n; i++) {
        s[0] += pr[i * 2];
        s[1] += (double)pr[i * 2] * pr[i * 2];
    }
    CU_ASSERT_EQUAL(comm_allreduce_sum_f64(w, s, 2), FH_OK);
    CU_ASSERT_DOUBLE_EQUAL(s[0] / g_n, 0, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(s[1] / g_n, var[0], 1e-4 * var[0]);
    /* the 2-D histogram counts every row once */
    int32_t *as = calloc((size_t)(p.E.n + 1), sizeof *as);
    int64_t cnt[8 * 8 * 1];
    double lo[2], hi[2];
    CU_ASSERT_EQUAL(embed_grid(w, pr, p.E.n, as, 1, 8, cnt, lo, hi), FH_OK);
    int64_t t = 0;
    for (int i = 0; i < 64; i++) t += cnt[i];
    CU_ASSERT_EQUAL(t, g_n);
    CU_ASSERT(lo[0] < hi[0] && lo[1] < hi[1]);
    free(as);
    free(pr);
    unplace(&p);
}

static void test_model_embed(void)
{
    model_t m;
    const int32_t hid[2] = {5, 4};
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_MLP, 3, 2, hid, 2), FH_OK);
    CU_ASSERT_EQUAL(model_embed_dim(&m), 4);
    float *par = malloc((size_t)m.nparams * sizeof *par);
    model_init_params(&m, par, 4);
    for (int64_t j = 0; j < m.nparams; j++) par[j] += 0.01f * (float)(j % 7); /* non-zero biases */
    model_ws *ws = model_ws_create(&m, 3); /* fewer rows than x: chunks */
    fixture();
    const int32_t n = 7;
    float emb[7 * 4];
    CU_ASSERT_EQUAL_FATAL(model_embed(&m, par, g_x, n, emb, ws), FH_OK);
    for (int32_t i = 0; i < n; i++) {
        double h1[5], h2[4];
        for (int o = 0; o < 5; o++) {
            double s = par[m.b_off[0] + o];
            for (int a = 0; a < 3; a++) s += g_x[i * 3 + a] * par[m.w_off[0] + a * 5 + o];
            h1[o] = s > 0 ? s : 0;
        }
        for (int o = 0; o < 4; o++) {
            double s = par[m.b_off[1] + o];
            for (int a = 0; a < 5; a++) s += h1[a] * par[m.w_off[1] + a * 4 + o];
            h2[o] = s > 0 ? s : 0;
            CU_ASSERT_DOUBLE_EQUAL(emb[i * 4 + o], h2[o], 1e-5);
        }
    }
    model_ws_free(ws);
    free(par);
    model_t lr;
    CU_ASSERT_EQUAL_FATAL(model_create(&lr, MODEL_LOGREG, 3, 2, NULL, 0), FH_OK);
    CU_ASSERT_EQUAL(model_embed_dim(&lr), 0);
    float p1[4] = {0}, e1[4];
    model_ws *w2 = model_ws_create(&lr, 2);
    CU_ASSERT_EQUAL(model_embed(&lr, p1, g_x, 1, e1, w2), FH_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), "logreg"));
    model_ws_free(w2);
}

void tests_register_embed(void)
{
    CU_pSuite s = CU_add_suite("embed", NULL, NULL);
    tests_add(s, "kmeans_matches_serial", test_kmeans_matches_serial);
    tests_add(s, "kmeans_exact_any_placement", test_kmeans_exact_any_placement);
    tests_add(s, "silhouette", test_silhouette);
    tests_add(s, "select_k", test_select_k);
    tests_add(s, "pca_histogram", test_pca);
    tests_add(s, "model_embed_mlp", test_model_embed);
}
