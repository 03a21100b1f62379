/* Clustering helpers of multi-center FL: adjusted Rand index, k-means++ seeding, Lloyd's
 * k-means, spectral clustering (eigenvectors from ScaLAPACK via dist_syevd), FeSEM's nearest
 * center. Deterministic: randomness from rng_stream(seed, 0, round, RNG_CLUSTER). */
#include "fedhpc/cluster.h"
#include "fedhpc/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

double cl_ari(const int32_t *a, const int32_t *b, int32_t n)
{
    int32_t ka = 0, kb = 0;
    for (int32_t i = 0; i < n; i++) {
        if (a[i] + 1 > ka) ka = a[i] + 1;
        if (b[i] + 1 > kb) kb = b[i] + 1;
    }
    double *t = fh_calloc((size_t)ka * (size_t)kb + (size_t)ka + (size_t)kb, sizeof *t); /* table, rows, columns */
    if (!t) return NAN;
    double *ra = t + (int64_t)ka * kb, *rb = ra + ka;
    for (int32_t i = 0; i < n; i++) {
        t[(int64_t)a[i] * kb + b[i]] += 1;
        ra[a[i]] += 1;
        rb[b[i]] += 1;
    }
#define C2(x) ((x) * ((x) - 1) / 2.0)
    double sij = 0, sa = 0, sb = 0;
    for (int64_t i = 0; i < (int64_t)ka * kb; i++) sij += C2(t[i]);
    for (int32_t i = 0; i < ka; i++) sa += C2(ra[i]);
    for (int32_t j = 0; j < kb; j++) sb += C2(rb[j]);
    const double tot = C2((double)n), exp = tot > 0 ? sa * sb / tot : 0, mx = 0.5 * (sa + sb);
#undef C2
    free(t);
    if (mx - exp == 0) return 1.0; /* both labelings trivial (one cluster, or all singletons) */
    return (sij - exp) / (mx - exp);
}

void cl_gram_derive(const double *G, int32_t n, double *D2, double *Cs)
{
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = 0; j < n; j++) {
            const double gii = G[(int64_t)i * n + i], gjj = G[(int64_t)j * n + j], gij = G[(int64_t)i * n + j];
            if (D2) {
                double d = gii + gjj - 2 * gij;
                D2[(int64_t)i * n + j] = i == j || d < 0 ? 0 : d;
            }
            if (Cs) Cs[(int64_t)i * n + j] = i == j ? 1.0 : (gii > 0 && gjj > 0 ? gij / sqrt(gii * gjj) : 0.0);
        }
}

/* k-means++ seeding from stream (seed, restart, round, RNG_CLUSTER). */
static fh_status kmeanspp_stream(const double *D2, int32_t n, int32_t k, uint64_t seed, int64_t round, int32_t restart,
                                 int32_t *seeds)
{
    if (k > n) return fh_error_set(FH_EINPUT, "[cluster] k = %d: more centers than the %d clients", k, n);
    double *mind = malloc((size_t)n * sizeof *mind);
    FH_CHECK_ALLOC(mind);
    rng_t r = rng_stream(seed, (uint64_t)restart, (uint64_t)round, RNG_CLUSTER);
    seeds[0] = (int32_t)rng_below(&r, (uint64_t)n);
    for (int32_t i = 0; i < n; i++) mind[i] = D2[(int64_t)i * n + seeds[0]];
    for (int32_t s = 1; s < k; s++) {
        double tot = 0;
        for (int32_t i = 0; i < n; i++) tot += mind[i];
        int32_t pick = -1;
        if (tot > 0) {
            double u = rng_uniform(&r) * tot, cum = 0;
            for (int32_t i = 0; i < n; i++) {
                cum += mind[i];
                if (mind[i] > 0 && u < cum) { pick = i; break; }
            }
            /* not found (rounding at the end): the last item with positive distance */
            for (int32_t i = n - 1; i >= 0 && pick < 0; i--)
                if (mind[i] > 0) pick = i;
        }
        /* still none (all remaining items coincide with seeds): take the first unused one */
        for (int32_t i = 0; i < n && pick < 0; i++) {
            int used = 0;
            for (int32_t t = 0; t < s; t++) used |= seeds[t] == i;
            if (!used) pick = i;
        }
        seeds[s] = pick;
        for (int32_t i = 0; i < n; i++) {
            double d = D2[(int64_t)i * n + pick];
            if (d < mind[i]) mind[i] = d;
        }
        mind[pick] = 0;
    }
    free(mind);
    return FH_OK;
}

fh_status cl_kmeanspp(const double *D2, int32_t n, int32_t k, uint64_t seed, int64_t round, int32_t *seeds)
{
    return kmeanspp_stream(D2, n, k, seed, round, 0, seeds);
}

/* Squared distance of every item to the mean of every cluster, from D2 alone:
 * ||x_i - mu_S||^2 = (1/|S|) sum_{j in S} D2_ij - (1/(2|S|^2)) sum_{j,l in S} D2_jl.
 * An empty cluster is at distance +inf. */
static void kernel_dist(const double *D2, int32_t n, int32_t k, const int32_t *assign, int32_t *cnt, double *within,
                        double *dist)
{
    memset(cnt, 0, (size_t)k * sizeof *cnt);
    for (int32_t j = 0; j < k; j++) within[j] = 0;
    for (int32_t i = 0; i < n; i++) cnt[assign[i]]++;
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = 0; j < n; j++)
            if (assign[i] == assign[j]) within[assign[i]] += D2[(int64_t)i * n + j];
    for (int32_t i = 0; i < n; i++) {
        for (int32_t c = 0; c < k; c++) dist[(int64_t)i * k + c] = 0;
        for (int32_t j = 0; j < n; j++) dist[(int64_t)i * k + assign[j]] += D2[(int64_t)i * n + j];
        for (int32_t c = 0; c < k; c++)
            dist[(int64_t)i * k + c] = cnt[c] ? dist[(int64_t)i * k + c] / cnt[c] - within[c] / (2.0 * cnt[c] * cnt[c]) : INFINITY;
    }
}

fh_status cl_kmeans_d2_restart(const double *D2, int32_t n, int32_t k, uint64_t seed, int64_t round, int32_t t,
                               int32_t iters, int32_t *cur, double *objective)
{
    double *dist = malloc((size_t)n * (size_t)k * sizeof *dist), *within = malloc((size_t)k * sizeof *within);
    int32_t *seeds = malloc((size_t)k * sizeof *seeds), *cnt = malloc((size_t)k * sizeof *cnt);
    fh_status st = dist && within && seeds && cnt ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory in k-means");
    if (st == FH_OK) st = kmeanspp_stream(D2, n, k, seed, round, t, seeds);
    double obj = 0;
    for (int32_t i = 0; st == FH_OK && i < n; i++)
        for (int32_t c = 0; c < k; c++) dist[(int64_t)i * k + c] = D2[(int64_t)i * n + seeds[c]];
    if (st == FH_OK) cl_argmin(dist, n, k, cur);
    for (int32_t c = 0; st == FH_OK && c < k; c++) cur[seeds[c]] = c; /* a seed is in its own cluster (duplicates) */
    for (int32_t it = 0; st == FH_OK && it <= iters; it++) {
        kernel_dist(D2, n, k, cur, cnt, within, dist);
        obj = 0;
        for (int32_t i = 0; i < n; i++) obj += dist[(int64_t)i * k + cur[i]];
        if (it == iters) break;
        int changed = 0;
        for (int32_t i = 0; i < n; i++) {
            int32_t b = cur[i];
            for (int32_t c = 0; c < k; c++)
                if (dist[(int64_t)i * k + c] < dist[(int64_t)i * k + b]) b = c;
            changed |= b != cur[i];
            cur[i] = b;
        }
        /* an emptied cluster takes the item farthest from its own cluster's mean */
        for (int32_t c = 0; c < k; c++) {
            int32_t m = 0, far = -1;
            for (int32_t i = 0; i < n; i++) m += cur[i] == c;
            for (int32_t i = 0; !m && i < n; i++) { /* c has no member */
                int32_t sz = 0;
                for (int32_t j = 0; j < n; j++) sz += cur[j] == cur[i];
                if (sz > 1 && (far < 0 || dist[(int64_t)i * k + cur[i]] > dist[(int64_t)far * k + cur[far]])) far = i;
            }
            if (far >= 0) {
                cur[far] = c;
                changed = 1;
            }
        }
        if (!changed) break;
    }
    *objective = obj;
    free(dist); free(within); free(seeds); free(cnt);
    return st;
}

fh_status cl_kmeans_d2(const double *D2, int32_t n, int32_t k, uint64_t seed, int64_t round, int32_t restarts,
                       int32_t iters, int32_t *assign, double *objective)
{
    int32_t *cur = malloc((size_t)(n > 0 ? n : 1) * sizeof *cur);
    fh_status st = cur ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory in k-means");
    double best = INFINITY, obj = 0;
    for (int32_t t = 0; st == FH_OK && t < (restarts < 1 ? 1 : restarts); t++) {
        st = cl_kmeans_d2_restart(D2, n, k, seed, round, t, iters, cur, &obj);
        if (st == FH_OK && obj < best) { /* ties: the lowest restart */
            best = obj;
            memcpy(assign, cur, (size_t)n * sizeof *assign);
        }
    }
    if (objective) *objective = best;
    free(cur);
    return st;
}

void cl_argmin(const double *dist, int32_t n, int32_t k, int32_t *assign)
{
    for (int32_t i = 0; i < n; i++) {
        int32_t b = 0;
        for (int32_t j = 1; j < k; j++)
            if (dist[(int64_t)i * k + j] < dist[(int64_t)i * k + b]) b = j;
        assign[i] = b;
    }
}

/* ||a - b||^2 of two dim-vectors */
static double sqdist(const double *a, const double *b, int32_t dim)
{
    double s = 0;
    for (int32_t d = 0; d < dim; d++) {
        double e = a[d] - b[d];
        s += e * e;
    }
    return s;
}

fh_status cl_kmeans(const double *X, int32_t n, int32_t dim, int32_t k, uint64_t seed, int32_t iters,
                    int32_t *assign)
{
    double *D2 = malloc((size_t)n * (size_t)n * sizeof *D2), *cen = malloc((size_t)k * (size_t)dim * sizeof *cen),
           *dist = malloc((size_t)n * (size_t)k * sizeof *dist);
    int32_t *seeds = malloc((size_t)k * sizeof *seeds), *cnt = malloc((size_t)k * sizeof *cnt);
    fh_status st = D2 && cen && dist && seeds && cnt ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory in k-means");
    if (st == FH_OK) {
        for (int32_t i = 0; i < n; i++)
            for (int32_t j = 0; j < n; j++) D2[(int64_t)i * n + j] = sqdist(X + (int64_t)i * dim, X + (int64_t)j * dim, dim);
        st = cl_kmeanspp(D2, n, k, seed, 0, seeds);
    }
    for (int32_t j = 0; st == FH_OK && j < k; j++)
        memcpy(cen + (int64_t)j * dim, X + (int64_t)seeds[j] * dim, (size_t)dim * sizeof *cen);
    for (int32_t it = 0; st == FH_OK && it < iters; it++) {
        for (int32_t i = 0; i < n; i++)
            for (int32_t j = 0; j < k; j++)
                dist[(int64_t)i * k + j] = sqdist(X + (int64_t)i * dim, cen + (int64_t)j * dim, dim);
        int changed = it == 0;
        for (int32_t i = 0; i < n; i++) {
            int32_t old = assign[i];
            cl_argmin(dist + (int64_t)i * k, 1, k, assign + i);
            changed |= old != assign[i];
        }
        if (!changed) break;
        memset(cnt, 0, (size_t)k * sizeof *cnt);
        for (int32_t i = 0; i < n; i++) cnt[assign[i]]++;
        for (int32_t j = 0; j < k; j++) /* an empty cluster keeps its center */
            for (int32_t d = 0; cnt[j] && d < dim; d++) cen[(int64_t)j * dim + d] = 0;
        for (int32_t i = 0; i < n; i++)
            for (int32_t d = 0; d < dim; d++) cen[(int64_t)assign[i] * dim + d] += X[(int64_t)i * dim + d] / cnt[assign[i]];
    }
    free(D2); free(cen); free(dist); free(seeds); free(cnt);
    return st;
}

fh_status cl_spectral(const comm_t *c, const double *S, int32_t n, int32_t k, uint64_t seed, int32_t *assign)
{
    double *L = malloc((size_t)n * (size_t)n * sizeof *L), *Z = malloc((size_t)n * (size_t)n * sizeof *Z),
           *w = malloc((size_t)n * sizeof *w), *deg = fh_calloc((size_t)n, sizeof *deg),
           *E = malloc((size_t)n * (size_t)k * sizeof *E);
    fh_status st = L && Z && w && deg && E ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory in spectral clustering");
    if (st == FH_OK) {
        for (int32_t i = 0; i < n; i++) /* deg: zeroed */
            for (int32_t j = 0; j < n; j++) deg[i] += S[(int64_t)i * n + j] > 0 ? S[(int64_t)i * n + j] : 0;
        for (int32_t i = 0; i < n; i++)
            for (int32_t j = 0; j < n; j++) {
                double a = S[(int64_t)i * n + j] > 0 ? S[(int64_t)i * n + j] : 0;
                L[(int64_t)i * n + j] = deg[i] > 0 && deg[j] > 0 ? a / sqrt(deg[i] * deg[j]) : 0;
            }
        st = dist_syevd(c, n, L, 32, w, Z);
    }
    /* the k largest eigenvalues are the last k columns; fix each vector's sign */
    for (int32_t j = 0; st == FH_OK && j < k; j++) {
        const double *v = Z + (int64_t)(n - 1 - j) * n;
        int32_t big = 0;
        for (int32_t i = 1; i < n; i++)
            if (fabs(v[i]) > fabs(v[big]) + 1e-12) big = i;
        const double sg = v[big] < 0 ? -1 : 1;
        for (int32_t i = 0; i < n; i++) E[(int64_t)i * k + j] = sg * v[i];
    }
    for (int32_t i = 0; st == FH_OK && i < n; i++) {
        double s = 0;
        for (int32_t j = 0; j < k; j++) s += E[(int64_t)i * k + j] * E[(int64_t)i * k + j];
        s = s > 0 ? 1 / sqrt(s) : 0;
        for (int32_t j = 0; j < k; j++) E[(int64_t)i * k + j] *= s;
    }
    if (st == FH_OK) st = cl_kmeans(E, n, k, k, seed, 100, assign);
    free(L); free(Z); free(w); free(deg); free(E);
    return st;
}

int32_t cl_nearest_center(const float *model, const float *centers, int32_t k, int64_t P, int64_t len,
                          double *d2)
{
    int32_t best = 0;
    double bd = INFINITY;
    for (int32_t j = 0; j < k; j++) {
        const float *c = centers + (int64_t)j * P;
        double s = 0;
        for (int64_t i = 0; i < len; i++) {
            double e = (double)model[i] - (double)c[i];
            s += e * e;
        }
        if (s < bd) {
            bd = s;
            best = j;
        }
    }
    if (d2) *d2 = bd;
    return best;
}
