/* Federated clustering of customer embeddings (issue 15; include/fedhpc/embed.h, docs/embed.md):
 * federated k-means++ and Lloyd iterations on exact fixed-point sums, the simplified
 * silhouette, the choice of k, PCA from the exact covariance, a federated 2-D histogram and the
 * clusters' feature profiles. Rows stay on their rank; only aggregates are all-reduced. */
#include "fedhpc/embed.h"
#include "fedhpc/agg.h"
#include "fedhpc/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK (the symmetric eigensolver of the PCA) */
extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
                   double *work, const int *lwork, int *info);

/* The fixed-point exponent s of a sum whose terms' absolute values add up to at most `bound`:
 * bound * 2^s <= 2^61 (room for the all-reduce), at most 2^40 (resolution 1e-12). */
static int fx_exp(double bound)
{
    if (!(bound > 0)) return 40;
    int e;
    frexp(bound, &e); /* bound < 2^e */
    const int s = 61 - e;
    return s > 40 ? 40 : s;
}

__attribute__((optimize("no-math-errno"))) static inline int64_t fxd(double v, int s)
{
    return (int64_t)llrint(ldexp(v, s));
}

static double sqdist(const float *x, const double *c, int32_t dim)
{
    double s = 0;
    for (int32_t j = 0; j < dim; j++) {
        const double e = (double)x[j] - c[j];
        s += e * e;
    }
    return s;
}

/* the nearest center (ties: the lower index) and its squared distance */
static int32_t nearest(const float *x, const double *cen, int32_t k, int32_t dim, double *d2)
{
    int32_t b = 0;
    double bd = sqdist(x, cen, dim);
    for (int32_t c = 1; c < k; c++) {
        const double d = sqdist(x, cen + (size_t)c * dim, dim);
        if (d < bd) {
            bd = d;
            b = c;
        }
    }
    if (d2) *d2 = bd;
    return b;
}

/* global row count and max |x| of n rows of `width` values x (FH_EINPUT with message `bad` for
 * non-finite values) */
static fh_status rows_scan(const comm_t *c, const float *x, int64_t n, int64_t width, const char *bad, int64_t *N,
                           double *maxabs)
{
    double mx = 0;
    for (int64_t i = 0; i < n * width; i++) {
        const double a = fabs((double)x[i]);
        if (!(a <= mx)) mx = a; /* NaN propagates */
    }
    FH_TRY(comm_allreduce_sum_i64(c, &n, 1));
    FH_TRY(comm_allreduce_max_f64(c, &mx, 1));
    if (!isfinite(mx)) return fh_error_set(FH_EINPUT, "%s", bad);
    *N = n;
    *maxabs = mx;
    return FH_OK;
}
#define EMB_BAD "embeddings: non-finite values (is the model file diverged?)"

/* ---- k-means ------------------------------------------------------------------------------ */

typedef struct {
    int64_t *cnt;    /* [C] rows of every client (all ranks)     */
    int64_t *off;    /* [C + 1] their global row offsets          */
    int64_t *holder; /* [C] rank holding the client (in cnt's block) */
    int32_t *lidx;   /* [C] local index of the client or -1       */
} km_layout;

static void layout_free(km_layout *L)
{
    free(L->cnt); /* cnt and holder: one allocation */
    free(L->off);
    free(L->lidx);
}

static fh_status layout_make(const embed_rows *E, km_layout *L)
{
    const int32_t C = E->clients;
    memset(L, 0, sizeof *L);
    int64_t *v = L->cnt = fh_calloc((size_t)2 * (size_t)C, sizeof *v);
    L->off = fh_calloc((size_t)C + 1, sizeof *L->off);
    L->lidx = malloc((size_t)C * sizeof *L->lidx);
    if (!v || !L->off || !L->lidx) {
        layout_free(L);
        return fh_error_set(FH_ENOMEM, "out of memory for the client layout");
    }
    for (int32_t c = 0; c < C; c++) L->lidx[c] = -1;
    for (int32_t i = 0; i < E->nloc; i++) {
        v[E->client[i]] = E->first[i + 1] - E->first[i];
        v[C + E->client[i]] = E->c->rank + 1;
        L->lidx[E->client[i]] = i;
    }
    fh_status st = comm_allreduce_sum_i64(E->c, v, 2 * (int64_t)C);
    L->holder = v + C;
    for (int32_t c = 0; c < C; c++) {
        L->off[c + 1] = L->off[c] + L->cnt[c];
        L->holder[c] -= 1;
    }
    return st;
}

/* The seed from row j of client cl: the mean of the EMBED_SEED_POOL rows of that client nearest
 * to it (ties: lower row), computed on the holding rank and broadcast. */
static fh_status seed_center(const embed_rows *E, const km_layout *L, int32_t cl, int64_t j, double *center)
{
    const int32_t dim = E->dim;
    const int holder = (int)L->holder[cl];
    fh_status st = FH_OK;
    if (E->c->rank == holder) {
        const int32_t li = L->lidx[cl];
        const int64_t r0 = E->first[li], nc = E->first[li + 1] - r0;
        const float *xr = E->x + (size_t)(r0 + j) * dim;
        const int64_t m = nc < EMBED_SEED_POOL ? nc : EMBED_SEED_POOL;
        double *d = malloc((size_t)nc * sizeof *d);
        uint8_t *used = calloc((size_t)nc, 1);
        if (!d || !used) st = fh_error_set(FH_ENOMEM, "out of memory in k-means seeding");
        for (int32_t t = 0; t < dim && st == FH_OK; t++) center[t] = 0;
        if (st == FH_OK) {
            for (int64_t i = 0; i < nc; i++) {
                double s = 0;
                for (int32_t t = 0; t < dim; t++) {
                    const double e = (double)E->x[(size_t)(r0 + i) * dim + t] - xr[t];
                    s += e * e;
                }
                d[i] = s;
            }
            for (int64_t p = 0; p < m; p++) {
                int64_t b = -1;
                for (int64_t i = 0; i < nc; i++)
                    if (!used[i] && (b < 0 || d[i] < d[b])) b = i;
                used[b] = 1;
            }
            for (int64_t i = 0; i < nc; i++) /* summed in row order */
                if (used[i])
                    for (int32_t t = 0; t < dim; t++) center[t] += E->x[(size_t)(r0 + i) * dim + t];
            for (int32_t t = 0; t < dim; t++) center[t] /= (double)m;
        }
        free(d);
        free(used);
    }
    st = comm_agree(E->c, st);
    if (st == FH_OK) st = comm_bcast(E->c, center, (int64_t)dim * (int64_t)sizeof *center, holder);
    return st;
}

/* global row g -> (client, row within it) */
static void row_locate(const km_layout *L, int32_t C, int64_t g, int32_t *cl, int64_t *j)
{
    int32_t lo = 0, hi = C - 1;
    while (lo < hi) { /* the last client with off <= g and rows */
        const int32_t mid = (lo + hi + 1) / 2;
        if (L->off[mid] <= g) lo = mid;
        else hi = mid - 1;
    }
    while (L->cnt[lo] == 0) lo++; /* never past the end: g < N */
    *cl = lo;
    *j = g - L->off[lo];
}

/* A D^2 draw. The D^2 mass of every client (its rows' distances mind in fixed point, exponent
 * s2), summed exactly over the ranks; *T += the total. Then, when there is mass, the draw
 * u < total mass from r: client *cl whose mass holds it and, on the rank holding that client,
 * the row *j within it (the holder of cl knows j). */
static fh_status d2_draw(const embed_rows *E, const km_layout *L, const double *mind, int s2, int64_t *mass, rng_t *r,
                         int64_t *T, int32_t *cl, int64_t *j)
{
    memset(mass, 0, (size_t)E->clients * sizeof *mass);
    for (int32_t i = 0; i < E->nloc; i++) {
        int64_t m = 0;
        for (int64_t row = E->first[i]; row < E->first[i + 1]; row++) m += fxd(mind[row], s2);
        mass[E->client[i]] = m;
    }
    FH_TRY(comm_allreduce_sum_i64(E->c, mass, E->clients));
    for (int32_t c = 0; c < E->clients; c++) *T += mass[c];
    if (*T == 0) return FH_OK;
    int64_t u = (int64_t)rng_below(r, (uint64_t)*T);
    int32_t c;
    for (c = 0; c < E->clients && u >= mass[c]; c++) u -= mass[c];
    const int32_t li = L->lidx[c];
    if (li >= 0) {
        int64_t cum = 0;
        for (*j = 0; *j < E->first[li + 1] - E->first[li]; (*j)++) {
            cum += fxd(mind[E->first[li] + *j], s2);
            if (u < cum) break;
        }
    }
    *cl = c;
    return FH_OK;
}

static fh_status kmeanspp(const embed_rows *E, const km_layout *L, int64_t N, int32_t k, uint64_t seed,
                          double *centers)
{
    const int32_t C = E->clients, dim = E->dim;
    double *mind = malloc((size_t)(E->n > 0 ? E->n : 1) * sizeof *mind);
    int64_t *mass = malloc((size_t)C * sizeof *mass);
    fh_status st = mind && mass ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory in k-means seeding");
    rng_t r = rng_stream(seed, (uint64_t)k, 0, RNG_EMBED);
    int s2 = 40;
    for (int32_t s = 0; st == FH_OK && s < k; s++) {
        int32_t cl = 0;
        int64_t j = 0;
        int64_t T = 0;
        if (s > 0 && (st = d2_draw(E, L, mind, s2, mass, &r, &T, &cl, &j)) != FH_OK) break;
        if (T == 0) row_locate(L, C, (int64_t)rng_below(&r, (uint64_t)N), &cl, &j); /* first seed, or all at distance 0 */
        double *cen = centers + (size_t)s * dim;
        if ((st = seed_center(E, L, cl, j, cen)) != FH_OK) break;
        double mx = 0;
        for (int64_t i = 0; i < E->n; i++) {
            const double d = sqdist(E->x + (size_t)i * dim, cen, dim);
            if (s == 0 || d < mind[i]) mind[i] = d;
            if (mind[i] > mx) mx = mind[i];
        }
        if (s == 0) { /* the masses only shrink from here: one exponent for all draws */
            st = comm_allreduce_max_f64(E->c, &mx, 1);
            s2 = fx_exp(mx * (double)N);
        }
    }
    free(mind);
    free(mass);
    return st;
}

/* Empty clusters after a Lloyd step get a new seed by the same D^2 sampling against the other
 * centers (stream (seed, k, 1 + it, RNG_EMBED)); *done: clusters reseeded (0 when every row
 * sits on a center). */
static fh_status reseed_empty(const embed_rows *E, const km_layout *L, int64_t N, int32_t k, const int64_t *cnt,
                              uint64_t seed, int32_t it, double *centers, int32_t *done)
{
    const int32_t C = E->clients, dim = E->dim;
    uint8_t *live = malloc((size_t)k);
    double *mind = malloc((size_t)(E->n > 0 ? E->n : 1) * sizeof *mind);
    int64_t *mass = malloc((size_t)C * sizeof *mass);
    fh_status st = live && mind && mass ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory in k-means");
    *done = 0;
    double mx = 0;
    for (int32_t c = 0; st == FH_OK && c < k; c++) live[c] = cnt[c] > 0;
    for (int64_t i = 0; st == FH_OK && i < E->n; i++) {
        mind[i] = INFINITY;
        for (int32_t c = 0; c < k; c++)
            if (live[c]) mind[i] = fmin(mind[i], sqdist(E->x + (size_t)i * dim, centers + (size_t)c * dim, dim));
        if (mind[i] > mx) mx = mind[i];
    }
    if (st == FH_OK) st = comm_allreduce_max_f64(E->c, &mx, 1);
    const int s2 = fx_exp(mx * (double)N);
    rng_t r = rng_stream(seed, (uint64_t)k, (uint64_t)it + 1, RNG_EMBED);
    for (int32_t e = 0; st == FH_OK && e < k; e++) {
        if (live[e]) continue;
        int64_t T = 0, j = 0;
        int32_t cl;
        if ((st = d2_draw(E, L, mind, s2, mass, &r, &T, &cl, &j)) != FH_OK) break;
        if (T == 0) break; /* every row sits on a center */
        double *cen = centers + (size_t)e * dim;
        if ((st = seed_center(E, L, cl, j, cen)) != FH_OK) break;
        live[e] = 1;
        (*done)++;
        for (int64_t i = 0; i < E->n; i++) mind[i] = fmin(mind[i], sqdist(E->x + (size_t)i * dim, cen, dim));
    }
    free(live);
    free(mind);
    free(mass);
    return st;
}

fh_status embed_kmeans(const embed_rows *E, int32_t k, uint64_t seed, int32_t iters, double *centers,
                       int32_t *assign, embed_km_stats *stats)
{
    if (k < 1 || k > EMBED_K_MAX)
        return fh_error_set(FH_EINPUT, "k = %d: expected 1 <= k <= %d clusters", k, EMBED_K_MAX);
    int64_t N;
    double maxabs;
    FH_TRY(rows_scan(E->c, E->x, E->n, E->dim, EMB_BAD, &N, &maxabs));
    if (k > N) return fh_error_set(FH_EINPUT, "k = %d: more clusters than the %lld rows", k, (long long)N);
    const int32_t dim = E->dim;
    km_layout L;
    FH_TRY(layout_make(E, &L));
    const int64_t nacc = (int64_t)k * dim + k + 1;
    int64_t *acc = malloc((size_t)nacc * sizeof *acc);
    fh_status st = acc ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory in k-means");
    if (st == FH_OK) st = kmeanspp(E, &L, N, k, seed, centers);
    const int s = fx_exp(maxabs * (double)N);
    const double w = ldexp(1.0, s - 32), inv = ldexp(1.0, -s);
    for (int64_t i = 0; i < E->n; i++) assign[i] = -1;
    embed_km_stats S = {0};
    S.rows = N;
    for (int32_t it = 0; st == FH_OK; it++) {
        memset(acc, 0, (size_t)nacc * sizeof *acc);
        int64_t *cnt = acc + (int64_t)k * dim;
        for (int64_t i = 0; i < E->n; i++) {
            const float *x = E->x + (size_t)i * dim;
            const int32_t b = nearest(x, centers, k, dim, NULL);
            acc[nacc - 1] += b != assign[i];
            assign[i] = b;
            fx_accumulate(acc + (size_t)b * dim, x, w, dim);
            cnt[b]++;
        }
        if ((st = comm_allreduce_sum_i64(E->c, acc, nacc)) != FH_OK) break;
        S.iters = it;
        S.empty = 0;
        for (int32_t c = 0; c < k; c++) S.empty += cnt[c] == 0;
        const int still = acc[nacc - 1] == 0 && it > 0;
        if (still && S.empty == 0) {
            S.converged = 1;
            break;
        }
        if (it >= iters) break;
        for (int32_t c = 0; c < k; c++)
            if (cnt[c] > 0)
                for (int32_t t = 0; t < dim; t++)
                    centers[(size_t)c * dim + t] = (double)acc[(size_t)c * dim + t] * inv / (double)cnt[c];
        if (S.empty) { /* an empty cluster gets a new seed; without one it keeps its center */
            int32_t done = 0;
            if ((st = reseed_empty(E, &L, N, k, cnt, seed, it, centers, &done)) != FH_OK) break;
            S.reseeded += done;
            if (!done && still) {
                S.converged = 1;
                break;
            }
        }
    }
    if (st == FH_OK) { /* inertia: exact sum of the squared distances */
        double mx = 0;
        for (int64_t i = 0; i < E->n; i++) {
            const double d = sqdist(E->x + (size_t)i * dim, centers + (size_t)assign[i] * dim, dim);
            if (d > mx) mx = d;
        }
        st = comm_allreduce_max_f64(E->c, &mx, 1);
        const int si = fx_exp(mx * (double)N);
        int64_t tot = 0;
        for (int64_t i = 0; st == FH_OK && i < E->n; i++)
            tot += fxd(sqdist(E->x + (size_t)i * dim, centers + (size_t)assign[i] * dim, dim), si);
        if (st == FH_OK) st = comm_allreduce_sum_i64(E->c, &tot, 1);
        S.inertia = ldexp((double)tot, -si);
    }
    if (stats) *stats = S;
    free(acc);
    layout_free(&L);
    return st;
}

/* ---- silhouette ------------------------------------------------------------------------- */

fh_status embed_silhouette(const embed_rows *E, int32_t k, const double *centers, const int32_t *assign,
                           double *mean, double *per_cluster, int64_t *sizes)
{
    const int32_t dim = E->dim;
    int64_t *v = fh_calloc((size_t)2 * (size_t)k, sizeof *v); /* counts, then silhouette sums */
    FH_CHECK_ALLOC(v);
    for (int64_t i = 0; i < E->n; i++) v[assign[i]]++;
    fh_status st = comm_allreduce_sum_i64(E->c, v, k);
    int64_t N = 0;
    for (int32_t c = 0; c < k; c++) N += v[c];
    const int s = fx_exp((double)N);
    for (int64_t i = 0; st == FH_OK && i < E->n; i++) {
        const float *x = E->x + (size_t)i * dim;
        const int32_t own = assign[i];
        if (v[own] <= 1) continue; /* a singleton: s = 0 */
        const double a = sqrt(sqdist(x, centers + (size_t)own * dim, dim));
        double b = INFINITY;
        for (int32_t c = 0; c < k; c++)
            if (c != own && v[c] > 0) b = fmin(b, sqrt(sqdist(x, centers + (size_t)c * dim, dim)));
        if (!isfinite(b)) continue; /* one non-empty cluster: s = 0 */
        const double mx = fmax(a, b), si = mx > 0 ? (b - a) / mx : 0;
        v[k + own] += fxd(si, s);
    }
    if (st == FH_OK) st = comm_allreduce_sum_i64(E->c, v + k, k);
    if (st == FH_OK) {
        int64_t tot = 0;
        for (int32_t c = 0; c < k; c++) {
            tot += v[k + c];
            if (per_cluster) per_cluster[c] = v[c] ? ldexp((double)v[k + c], -s) / (double)v[c] : NAN;
            if (sizes) sizes[c] = v[c];
        }
        *mean = N ? ldexp((double)tot, -s) / (double)N : NAN;
    }
    free(v);
    return st;
}

double embed_silhouette_full(const float *x, int64_t n, int32_t dim, const int32_t *assign, int32_t k)
{
    double *sum = malloc((size_t)k * sizeof *sum);
    int64_t *cnt = fh_calloc((size_t)k, sizeof *cnt);
    if (!sum || !cnt) {
        free(sum);
        free(cnt);
        return NAN;
    }
    for (int64_t i = 0; i < n; i++) cnt[assign[i]]++;
    double tot = 0;
    for (int64_t i = 0; i < n; i++) {
        for (int32_t c = 0; c < k; c++) sum[c] = 0;
        for (int64_t j = 0; j < n; j++) {
            if (j == i) continue;
            double s = 0;
            for (int32_t t = 0; t < dim; t++) {
                const double e = (double)x[(size_t)i * dim + t] - x[(size_t)j * dim + t];
                s += e * e;
            }
            sum[assign[j]] += sqrt(s);
        }
        const int32_t own = assign[i];
        if (cnt[own] <= 1) continue;
        const double a = sum[own] / (double)(cnt[own] - 1);
        double b = INFINITY;
        for (int32_t c = 0; c < k; c++)
            if (c != own && cnt[c] > 0) b = fmin(b, sum[c] / (double)cnt[c]);
        if (!isfinite(b)) continue;
        const double mx = fmax(a, b);
        tot += mx > 0 ? (b - a) / mx : 0;
    }
    free(sum);
    free(cnt);
    return n ? tot / (double)n : NAN;
}

fh_status embed_select_k(const embed_rows *E, int32_t kmin, int32_t kmax, uint64_t seed, int32_t iters,
                         int32_t *best, double *sil, double *inertia, double *ch)
{
    if (kmin < 2 || kmax < kmin || kmax > EMBED_K_MAX)
        return fh_error_set(FH_EINPUT, "k range %d..%d: expected 2 <= k_min <= k_max <= %d", kmin, kmax, EMBED_K_MAX);
    double *cen = malloc((size_t)kmax * E->dim * sizeof *cen);
    int32_t *as = malloc((size_t)(E->n > 0 ? E->n : 1) * sizeof *as);
    fh_status st = cen && as ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory choosing k");
    double bs = -INFINITY, T = NAN;
    *best = kmin;
    embed_km_stats S1;
    if (st == FH_OK && ch) st = embed_kmeans(E, 1, seed, 1, cen, as, &S1); /* the total sum of squares */
    if (st == FH_OK && ch) T = S1.inertia;
    for (int32_t k = kmin; st == FH_OK && k <= kmax; k++) {
        embed_km_stats S;
        double m = NAN;
        st = embed_kmeans(E, k, seed, iters, cen, as, &S);
        if (st == FH_OK) st = embed_silhouette(E, k, cen, as, &m, NULL, NULL);
        if (st != FH_OK) break;
        if (sil) sil[k - kmin] = m;
        if (inertia) inertia[k - kmin] = S.inertia;
        if (ch) /* Calinski-Harabasz: between / within sums of squares, per degree of freedom */
            ch[k - kmin] = S.rows > k && S.inertia > 0 ? ((T - S.inertia) / (k - 1)) / (S.inertia / (double)(S.rows - k)) : NAN;
        if (m > bs) {
            bs = m;
            *best = k;
        }
    }
    free(cen);
    free(as);
    return st;
}

/* ---- PCA, 2-D histogram, profiles ---------------------------------------------------------- */

fh_status embed_pca2(const embed_rows *E, double *mean, double *axes, double *var, double *total)
{
    const int32_t dim = E->dim;
    int64_t N;
    double maxabs;
    FH_TRY(rows_scan(E->c, E->x, E->n, E->dim, EMB_BAD, &N, &maxabs));
    if (N < 1 || dim < 1) return fh_error_set(FH_EINPUT, "PCA: no rows");
    const int64_t nacc = dim + (int64_t)dim * dim;
    int64_t *acc = fh_calloc((size_t)nacc, sizeof *acc);
    double *G = malloc((size_t)dim * dim * sizeof *G), *work = NULL;
    double *ev = malloc((size_t)dim * sizeof *ev);
    fh_status st = acc && G && ev ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory for the PCA");
    const int s1 = fx_exp(maxabs * (double)N), s2 = fx_exp(maxabs * maxabs * (double)N);
    /* per client: the sum of x and of x x^T in double in row order on the rank holding it (the
     * same numbers whatever the placement), then added in fixed point */
    for (int32_t ci = 0; st == FH_OK && ci < E->nloc; ci++) {
        for (int64_t j = 0; j < (int64_t)dim * dim; j++) G[j] = 0;
        for (int64_t i = E->first[ci]; i < E->first[ci + 1]; i++) {
            const float *x = E->x + (size_t)i * dim;
            fx_accumulate(acc, x, ldexp(1.0, s1 - 32), dim);
            for (int32_t a = 0; a < dim; a++) {
                const double xa = x[a];
                for (int32_t b = a; b < dim; b++) G[(size_t)a * dim + b] += xa * x[b];
            }
        }
        for (int32_t a = 0; a < dim; a++)
            for (int32_t b = a; b < dim; b++) acc[dim + (size_t)a * dim + b] += fxd(G[(size_t)a * dim + b], s2);
    }
    if (st == FH_OK) st = comm_allreduce_sum_i64(E->c, acc, nacc);
    if (st == FH_OK) {
        for (int32_t a = 0; a < dim; a++) mean[a] = ldexp((double)acc[a], -s1) / (double)N;
        *total = 0;
        for (int32_t a = 0; a < dim; a++)
            for (int32_t b = a; b < dim; b++) {
                const double c = ldexp((double)acc[dim + (size_t)a * dim + b], -s2) / (double)N - mean[a] * mean[b];
                G[(size_t)a * dim + b] = G[(size_t)b * dim + a] = c;
                if (a == b) *total += c;
            }
        int n = dim, lwork = -1, info = 0;
        double q;
        dsyev_("V", "U", &n, G, &n, ev, &q, &lwork, &info);
        lwork = info == 0 ? (int)q : 3 * dim;
        work = malloc((size_t)lwork * sizeof *work);
        if (!work) st = fh_error_set(FH_ENOMEM, "out of memory for the PCA");
        if (st == FH_OK) dsyev_("V", "U", &n, G, &n, ev, work, &lwork, &info);
        if (st == FH_OK && info != 0) st = fh_error_set(FH_EINPUT, "PCA: the eigensolver failed (dsyev info %d)", info);
    }
    for (int32_t p = 0; st == FH_OK && p < 2; p++) {
        const int32_t col = dim - 1 - p; /* eigenvalues ascending; column col is its vector */
        double *ax = axes + (size_t)p * dim;
        if (col < 0) {
            for (int32_t a = 0; a < dim; a++) ax[a] = 0;
            var[p] = 0;
            continue;
        }
        int32_t big = 0;
        for (int32_t a = 0; a < dim; a++) {
            ax[a] = G[(size_t)col * dim + a];
            if (fabs(ax[a]) > fabs(ax[big])) big = a;
        }
        if (ax[big] < 0)
            for (int32_t a = 0; a < dim; a++) ax[a] = -ax[a];
        var[p] = ev[col] > 0 ? ev[col] : 0;
    }
    free(acc);
    free(G);
    free(ev);
    free(work);
    return st;
}

void embed_project(const float *x, int64_t n, int32_t dim, const double *mean, const double *axes, float *proj)
{
    for (int64_t i = 0; i < n; i++)
        for (int32_t p = 0; p < 2; p++) {
            double s = 0;
            for (int32_t a = 0; a < dim; a++) s += ((double)x[(size_t)i * dim + a] - mean[a]) * axes[(size_t)p * dim + a];
            proj[(size_t)i * 2 + p] = (float)s;
        }
}

fh_status embed_grid(const comm_t *c, const float *proj, int64_t n, const int32_t *assign, int32_t k, int32_t g,
                     int64_t *counts, double *lo, double *hi)
{
    for (int p = 0; p < 2; p++) {
        lo[p] = INFINITY;
        hi[p] = -INFINITY;
    }
    for (int64_t i = 0; i < n; i++)
        for (int p = 0; p < 2; p++) {
            lo[p] = fmin(lo[p], proj[(size_t)i * 2 + p]);
            hi[p] = fmax(hi[p], proj[(size_t)i * 2 + p]);
        }
    FH_TRY(comm_allreduce_min_f64(c, lo, 2));
    FH_TRY(comm_allreduce_max_f64(c, hi, 2));
    for (int p = 0; p < 2; p++)
        if (!(hi[p] > lo[p])) { /* one point, or no rows */
            lo[p] = isfinite(lo[p]) ? lo[p] - 1 : -1;
            hi[p] = lo[p] + 2;
        }
    memset(counts, 0, (size_t)g * g * k * sizeof *counts);
    for (int64_t i = 0; i < n; i++) {
        int32_t cell[2];
        for (int p = 0; p < 2; p++) {
            int32_t v = (int32_t)floor(((double)proj[(size_t)i * 2 + p] - lo[p]) / (hi[p] - lo[p]) * g);
            cell[p] = v < 0 ? 0 : v >= g ? g - 1 : v;
        }
        counts[((size_t)cell[1] * g + cell[0]) * k + assign[i]]++;
    }
    return comm_allreduce_sum_i64(c, counts, (int64_t)g * g * k);
}

fh_status embed_profile(const comm_t *c, const float *x, const int32_t *y, int64_t n, int32_t f, int32_t classes,
                        const int32_t *assign, int32_t k, double *cmean, double *omean, int64_t *lcount)
{
    int64_t N;
    double mx;
    FH_TRY(rows_scan(c, x, n, f, "cluster profiles: non-finite feature values", &N, &mx));
    const int s = fx_exp(mx * (double)N);
    const int64_t nacc = (int64_t)k * f + k + (int64_t)k * classes;
    int64_t *acc = fh_calloc((size_t)nacc, sizeof *acc);
    FH_CHECK_ALLOC(acc);
    int64_t *cnt = acc + (int64_t)k * f, *lab = cnt + k;
    for (int64_t i = 0; i < n; i++) {
        fx_accumulate(acc + (size_t)assign[i] * f, x + (size_t)i * f, ldexp(1.0, s - 32), f);
        cnt[assign[i]]++;
        lab[(size_t)assign[i] * classes + y[i]]++;
    }
    fh_status st = comm_allreduce_sum_i64(c, acc, nacc);
    if (st == FH_OK) {
        for (int32_t j = 0; j < f; j++) {
            int64_t t = 0;
            for (int32_t q = 0; q < k; q++) {
                t += acc[(size_t)q * f + j];
                cmean[(size_t)q * f + j] = cnt[q] ? ldexp((double)acc[(size_t)q * f + j], -s) / (double)cnt[q] : NAN;
            }
            omean[j] = N ? ldexp((double)t, -s) / (double)N : NAN;
        }
        memcpy(lcount, lab, (size_t)k * classes * sizeof *lcount);
    }
    free(acc);
    return st;
}
