/* [model] lightgcn (src/model/gnn.c): the gradient of LightGCN + BPR against central finite
 * differences, propagation on a hand example, top-k ties and ranking metrics on a
 * hand-computed list. */
#include "fedhpc/gnn.h"
#include "tests.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 4 users (global ids 10, 11, 12, 13) x 6 items, 10 training edges, 2 held out */
static const int32_t G_U[] = {10, 10, 10, 11, 11, 12, 12, 12, 13, 13, 10, 12};
static const int32_t G_I[] = {0, 1, 2, 1, 3, 0, 4, 5, 2, 5, 4, 1};
static const uint8_t G_H[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1};

static void check_grad(int32_t K)
{
    gnn_graph g;
    CU_ASSERT_EQUAL_FATAL(gnn_graph_build(&g, 6, G_U, G_I, G_H, 12), FH_OK);
    CU_ASSERT_EQUAL(g.nu, 4);
    CU_ASSERT_EQUAL(g.nnz, 10);
    CU_ASSERT_EQUAL(g.nheld, 2);
    const int32_t dim = 3;
    float u0[12], i0[18];
    rng_t r = rng_stream(7, 0, 0, 99);
    for (int k = 0; k < 12; k++) u0[k] = (float)(0.8 * rng_normal(&r));
    for (int k = 0; k < 18; k++) i0[k] = (float)(0.8 * rng_normal(&r));
    /* (local user, positive, negative) */
    const int32_t tri[] = {0, 1, 3, 1, 3, 5, 2, 4, 2, 3, 5, 0, 0, 0, 4};
    const int32_t nb = 5;
    const double lambda = 0.05;
    gnn_ws w;
    memset(&w, 0, sizeof w);
    double bpr;
    CU_ASSERT_EQUAL_FATAL(gnn_forward(&g, dim, K, u0, i0, &w), FH_OK);
    gnn_bpr_grad(&g, dim, K, u0, i0, tri, nb, lambda, &w, &bpr);
    float gu[12], gi[18];
    memcpy(gu, w.gu0, sizeof gu);
    memcpy(gi, w.gi0, sizeof gi);
    int bad = 0;
    for (int which = 0; which < 2; which++) {
        float *p = which ? i0 : u0;
        const float *an = which ? gi : gu;
        for (int k = 0; k < (which ? 18 : 12); k++) {
            const float keep = p[k], h = 1e-2f;
            double f[2];
            for (int s = 0; s < 2; s++) {
                p[k] = keep + (s ? -h : h);
                gnn_forward(&g, dim, K, u0, i0, &w);
                f[s] = gnn_bpr_grad(&g, dim, K, u0, i0, tri, nb, lambda, &w, &bpr);
            }
            p[k] = keep;
            const double fd = (f[0] - f[1]) / (2.0 * h);
            if (fabs(fd - an[k]) > 1e-3 + 1e-2 * fabs(fd)) bad++;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* the gradient is not trivially zero */
    double norm = 0;
    for (int k = 0; k < 18; k++) norm += (double)gi[k] * gi[k];
    CU_ASSERT(norm > 1e-4);
    gnn_ws_free(&w);
    gnn_graph_free(&g);
}

/* GraphSAGE-mean: the gradient w.r.t. the user rows, the item rows and every layer weight */
static void check_sage(int32_t K)
{
    gnn_graph g;
    CU_ASSERT_EQUAL_FATAL(gnn_graph_build(&g, 6, G_U, G_I, G_H, 12), FH_OK);
    const int32_t dim = 3;
    const int64_t P = gnn_sage_nparams(6, dim, K);
    float u0[12], p[6 * 3 + 3 * 2 * 3 * 3], gu[12], gp[6 * 3 + 3 * 2 * 3 * 3];
    rng_t r = rng_stream(11, 0, 0, 99);
    for (int k = 0; k < 12; k++) u0[k] = (float)(0.8 * rng_normal(&r));
    gnn_sage_init(p, 6, dim, K, 5);
    for (int64_t k = 0; k < 18; k++) p[k] = (float)(0.8 * rng_normal(&r));
    const int32_t tri[] = {0, 1, 3, 1, 3, 5, 2, 4, 2, 3, 5, 0, 0, 0, 4};
    gnn_ws w;
    memset(&w, 0, sizeof w);
    double bpr;
    CU_ASSERT_EQUAL_FATAL(gnn_sage_forward(&g, dim, K, u0, p, &w), FH_OK);
    gnn_sage_grad(&g, dim, K, u0, p, tri, 5, 0.05, &w, &bpr);
    memcpy(gu, w.gu0, sizeof gu);
    memcpy(gp, w.gi0, (size_t)P * sizeof *gp);
    int bad = 0, checked = 0;
    for (int which = 0; which < 2; which++) {
        float *x = which ? p : u0;
        const float *an = which ? gp : gu;
        for (int64_t k = 0; k < (which ? P : 12); k++) {
            const float keep = x[k], h = 2e-3f; /* small: a ReLU kink within h breaks the difference */
            double f[2];
            for (int s = 0; s < 2; s++) {
                x[k] = keep + (s ? -h : h);
                gnn_sage_forward(&g, dim, K, u0, p, &w);
                f[s] = gnn_sage_grad(&g, dim, K, u0, p, tri, 5, 0.05, &w, &bpr);
            }
            x[k] = keep;
            const double fd = (f[0] - f[1]) / (2.0 * h);
            if (fabs(fd - an[k]) > 2e-3 + 2e-2 * fabs(fd)) { bad++; if (getenv("GNN_DEBUG")) fprintf(stderr, "K=%d which=%d k=%lld fd=%g an=%g\n", K, which, (long long)k, fd, an[k]); }
            checked++;
        }
    }
    CU_ASSERT_EQUAL(checked, 12 + P);
    CU_ASSERT_EQUAL(bad, 0);
    double norm = 0;
    for (int64_t k = 18; k < P; k++) norm += (double)gp[k] * gp[k];
    CU_ASSERT(K == 0 || norm > 1e-6); /* the weights get a gradient */
    gnn_ws_free(&w);
    gnn_graph_free(&g);
}

static void test_sage_k1(void) { check_sage(1); }
static void test_sage_k2(void) { check_sage(2); }
static void test_sage_k3(void) { check_sage(3); }
static void test_grad_k0(void) { check_grad(0); }
static void test_grad_k2(void) { check_grad(2); }
static void test_grad_k3(void) { check_grad(3); }

static void test_graph(void)
{
    gnn_graph g;
    CU_ASSERT_EQUAL_FATAL(gnn_graph_build(&g, 6, G_U, G_I, G_H, 12), FH_OK);
    CU_ASSERT_EQUAL(g.user[0], 10);
    CU_ASSERT_EQUAL(g.user[3], 13);
    CU_ASSERT_DOUBLE_EQUAL(g.du[0], 1.0 / sqrt(3.0), 1e-7); /* user 10: items 0, 1, 2 (4 held out) */
    CU_ASSERT_DOUBLE_EQUAL(g.di[1], 1.0 / sqrt(2.0), 1e-7); /* item 1: users 10, 11 (12 held out)  */
    CU_ASSERT_EQUAL(g.hidx[g.hptr[0]], 4);
    gnn_graph_free(&g);
    /* a duplicate interaction is bad input */
    const int32_t u[] = {1, 1}, it[] = {2, 2};
    CU_ASSERT_EQUAL(gnn_graph_build(&g, 3, u, it, NULL, 2), FH_EINPUT);
    const int32_t it2[] = {2, 3}; /* item out of range */
    CU_ASSERT_EQUAL(gnn_graph_build(&g, 3, u, it2, NULL, 2), FH_EINPUT);
}

/* one user - one item, dim 1, K = 1: u1 = i0, i1 = u0; final = mean of the layers */
static void test_propagate(void)
{
    gnn_graph g;
    const int32_t u[] = {0}, it[] = {0};
    CU_ASSERT_EQUAL_FATAL(gnn_graph_build(&g, 2, u, it, NULL, 1), FH_OK);
    float u0[1] = {1.0f}, i0[2] = {2.0f, 5.0f};
    gnn_ws w;
    memset(&w, 0, sizeof w);
    CU_ASSERT_EQUAL_FATAL(gnn_forward(&g, 1, 1, u0, i0, &w), FH_OK);
    CU_ASSERT_DOUBLE_EQUAL(w.uf[0], 1.5, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(w.if_[0], 1.5, 1e-7);
    CU_ASSERT_DOUBLE_EQUAL(w.if_[1], 2.5, 1e-7); /* an isolated item: (5 + 0) / 2 */
    gnn_ws_free(&w);
    gnn_graph_free(&g);
}

static void test_topk(void)
{
    const float s[] = {0.5f, 0.9f, 0.1f, 0.9f, 0.7f, 0.95f};
    const uint8_t skip[] = {0, 0, 0, 0, 0, 1};
    int32_t top[3], got;
    gnn_topk(s, 6, skip, 3, top, &got);
    CU_ASSERT_EQUAL(got, 3);
    CU_ASSERT_EQUAL(top[0], 1); /* ties: the lower index first */
    CU_ASSERT_EQUAL(top[1], 3);
    CU_ASSERT_EQUAL(top[2], 4);
    gnn_topk(s, 2, NULL, 3, top, &got);
    CU_ASSERT_EQUAL(got, 2);
    CU_ASSERT_EQUAL(top[0], 1);
}

/* hits at ranks 2 and 5 of 10, 3 relevant items: P = 0.2, R = 2/3,
 * NDCG = (1/log2 3 + 1/log2 6) / (1 + 1/log2 3 + 1/log2 4) = 0.477623703503 */
static void test_metrics(void)
{
    const int32_t top[] = {5, 2, 9, 1, 7, 3, 4, 8, 0, 6}, rel[] = {2, 7, 11};
    double p, r, n;
    gnn_rank_metrics(top, 10, rel, 3, &p, &r, &n);
    CU_ASSERT_DOUBLE_EQUAL(p, 0.2, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r, 2.0 / 3.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(n, 0.477623703503, 1e-9);
    const int32_t rel1[] = {5}; /* a hit at rank 1 with one relevant item: NDCG 1 */
    gnn_rank_metrics(top, 10, rel1, 1, &p, &r, &n);
    CU_ASSERT_DOUBLE_EQUAL(n, 1.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(r, 1.0, 1e-12);
    const int32_t rel0[] = {42};
    gnn_rank_metrics(top, 10, rel0, 1, &p, &r, &n);
    CU_ASSERT_DOUBLE_EQUAL(p + r + n, 0.0, 1e-12);
}

/* local training lowers the BPR loss on a tiny graph, and is a pure function of its streams */
static void test_train(void)
{
    gnn_graph g;
    CU_ASSERT_EQUAL_FATAL(gnn_graph_build(&g, 6, G_U, G_I, G_H, 12), FH_OK);
    float u0[2][8], i0[2][12];
    for (int c = 0; c < 2; c++) {
        rng_t r = rng_stream(3, 0, 0, 99);
        for (int k = 0; k < 8; k++) u0[c][k] = (float)(0.1 * rng_normal(&r));
        for (int k = 0; k < 12; k++) i0[c][k] = (float)(0.1 * rng_normal(&r));
    }
    gnn_opts o = {2, 2, 1, 4, 0.05, 0.0, 0.0, 0, NULL};
    gnn_ws w;
    memset(&w, 0, sizeof w);
    double first, last;
    int64_t steps, seen;
    CU_ASSERT_EQUAL(gnn_train(&g, &o, rng_stream(1, 0, 1, RNG_SHUFFLE), rng_stream(1, 0, 1, RNG_GNN_NEG), u0[0], i0[0], &w,
                              &first, &steps, &seen), FH_OK);
    CU_ASSERT_EQUAL(steps, 3);
    CU_ASSERT_EQUAL(seen, 10);
    o.epochs = 60;
    CU_ASSERT_EQUAL(gnn_train(&g, &o, rng_stream(1, 0, 2, RNG_SHUFFLE), rng_stream(1, 0, 2, RNG_GNN_NEG), u0[0], i0[0], &w,
                              &last, &steps, &seen), FH_OK);
    CU_ASSERT(last / (double)seen < 0.9 * first / 10.0);
    /* the same streams from the same start: the same result bit for bit */
    o.epochs = 1;
    gnn_train(&g, &o, rng_stream(1, 0, 1, RNG_SHUFFLE), rng_stream(1, 0, 1, RNG_GNN_NEG), u0[1], i0[1], &w, &first, &steps,
              &seen);
    o.epochs = 60;
    gnn_train(&g, &o, rng_stream(1, 0, 2, RNG_SHUFFLE), rng_stream(1, 0, 2, RNG_GNN_NEG), u0[1], i0[1], &w, &first, &steps,
              &seen);
    CU_ASSERT(memcmp(u0[0], u0[1], sizeof u0[0]) == 0 && memcmp(i0[0], i0[1], sizeof i0[0]) == 0);
    gnn_ws_free(&w);
    gnn_graph_free(&g);
}

void tests_register_gnn(void)
{
    CU_pSuite s = CU_add_suite("gnn", NULL, NULL);
    tests_add(s, "grad_k0", test_grad_k0);
    tests_add(s, "grad_k2", test_grad_k2);
    tests_add(s, "grad_k3", test_grad_k3);
    tests_add(s, "sage_k1", test_sage_k1);
    tests_add(s, "sage_k2", test_sage_k2);
    tests_add(s, "sage_k3", test_sage_k3);
    tests_add(s, "graph", test_graph);
    tests_add(s, "propagate", test_propagate);
    tests_add(s, "topk", test_topk);
    tests_add(s, "metrics", test_metrics);
    tests_add(s, "train", test_train);
}
