/* fedhpc/embed.h — federated clustering of customer embeddings (issue 15, `fedhpc embed`,
 * docs/embed.md; src/fl/embed.c).
 *
 * Every rank holds the embedding rows of its own clients (computed there with model_embed);
 * rows never leave their rank. What crosses ranks is aggregates: per-cluster sums and counts,
 * per-client k-means++ masses, covariance sums, histogram counts. Every sum is a fixed-point
 * int64 sum (fx_accumulate, include/fedhpc/agg.h) with a power-of-two scale chosen from the
 * global maximum |value| and the row count so that no sum can overflow, so every result is
 * the same bit for bit whatever the placement of clients on ranks (-np 1, 2, 4, ...).
 * Randomness: rng_stream(seed, k, 0, RNG_EMBED) only.
 */
#ifndef FEDHPC_EMBED_H
#define FEDHPC_EMBED_H

#include "fedhpc/comm.h"
#include "fedhpc/common.h"

#include <stdint.h>

/* k-means++ seeds are not rows: the seed is the mean of the EMBED_SEED_POOL rows of the chosen
 * row's client nearest to it (fewer if the client has fewer rows), so no single customer's
 * embedding is sent to the other ranks. */
#define EMBED_SEED_POOL 5
#define EMBED_K_MAX 64

/* One rank's rows. Its clients are client[0..nloc) (ascending global ids); client i owns rows
 * [first[i], first[i + 1]) of x. Every rank passes the same `clients` and `dim`. */
typedef struct {
    const comm_t *c;
    int32_t dim;           /* values per row                                   */
    int64_t n;             /* rows on this rank (first[nloc])                  */
    const float *x;        /* [n, dim]                                         */
    int32_t clients;       /* clients in all                                   */
    int32_t nloc;          /* clients on this rank                             */
    const int32_t *client; /* [nloc] their global ids                          */
    const int64_t *first;  /* [nloc + 1] their row ranges in x                 */
} embed_rows;

typedef struct {
    int32_t iters;         /* Lloyd iterations run                              */
    int32_t converged;     /* 1: the last iteration changed no assignment       */
    int64_t rows;          /* rows in all                                       */
    double inertia;        /* sum of squared distances to the assigned center   */
    int32_t empty;         /* clusters left empty at the end                    */
    int32_t reseeded;      /* empty clusters given a new seed on the way        */
} embed_km_stats;

/* Federated k-means (Lloyd) of the rows into k clusters: k-means++ seeding (D^2 sampling: each
 * client's D^2 mass is summed exactly, the client is drawn from them, then the row within the
 * client on the rank holding it; the seed is the pool mean above), then at most `iters`
 * iterations of assign + exact per-cluster sums and counts, stopping early when no assignment
 * changes. Ties go to the lower cluster index; a cluster left empty by an iteration gets a new
 * seed by the same D^2 sampling against the other centers (stream (seed, k, 1 + iteration,
 * RNG_EMBED)); only when every row sits on a center does it stay empty (and keep its center).
 * Writes centers[k, dim] (the same on every rank) and assign[n] (this rank's rows), consistent
 * with each other (the assignment is to the nearest returned center). k < 1, k > EMBED_K_MAX or
 * more clusters than rows: FH_EINPUT. Collective over E->c. */
fh_status embed_kmeans(const embed_rows *E, int32_t k, uint64_t seed, int32_t iters, double *centers,
                       int32_t *assign, embed_km_stats *stats);

/* Simplified silhouette (Hruschka et al. 2004; centroid-based): for row i, a = distance to its
 * own center, b = distance to the nearest other non-empty center, s_i = (b - a) / max(a, b)
 * (0 when both are 0, and for rows of a cluster of one row). *mean = the mean of s_i over all
 * rows; per_cluster[k] (may be NULL) the mean within each cluster (NAN for an empty one);
 * sizes[k] (may be NULL) the rows per cluster. Exact sums; collective. */
fh_status embed_silhouette(const embed_rows *E, int32_t k, const double *centers, const int32_t *assign,
                           double *mean, double *per_cluster, int64_t *sizes);

/* The full silhouette (Rousseeuw 1987) of n rows held in one place (O(n^2), for tests and
 * small samples): mean over rows of (b - a) / max(a, b), a the mean distance to the other rows
 * of its cluster, b the smallest mean distance to another cluster; 0 for singletons. */
double embed_silhouette_full(const float *x, int64_t n, int32_t dim, const int32_t *assign, int32_t k);

/* The choice of k: embed_kmeans for every k in [kmin, kmax] (seed stream k), scored by
 * embed_silhouette; *best = the k with the highest mean silhouette (ties: the smaller k).
 * sil[], inertia[], ch[] (kmax - kmin + 1 each, may be NULL) receive every k's score, inertia
 * and Calinski-Harabasz index ((T - W) / (k - 1)) / (W / (N - k)) (T: the total sum of
 * squares, exact from a k = 1 run; W: the inertia), reported next to the silhouette.
 * Collective. */
fh_status embed_select_k(const embed_rows *E, int32_t kmin, int32_t kmax, uint64_t seed, int32_t iters,
                         int32_t *best, double *sil, double *inertia, double *ch);

/* PCA of the rows from the exact federated mean and covariance (LAPACK dsyev on every rank, the
 * same input so the same result): mean[dim], axes[2, dim] (the two leading eigenvectors, each
 * with its largest-magnitude entry positive), var[2] their eigenvalues, *total the trace.
 * Collective. */
fh_status embed_pca2(const embed_rows *E, double *mean, double *axes, double *var, double *total);
/* proj[n, 2] = (x_i - mean) . axes (local, no communication). */
void embed_project(const float *x, int64_t n, int32_t dim, const double *mean, const double *axes, float *proj);

/* Federated 2-D histogram of proj[n, 2] by cluster: counts[g * g * k] (cell (ix, iy) of cluster
 * c at (iy * g + ix) * k + c) over the box lo[2]..hi[2] (the global min and max, also
 * returned). Exact; collective. */
fh_status embed_grid(const comm_t *c, const float *proj, int64_t n, const int32_t *assign, int32_t k, int32_t g,
                     int64_t *counts, double *lo, double *hi);

/* Cluster profiles: the mean of each of f input features per cluster, cmean[k, f], and over all
 * rows, omean[f]; label counts per cluster lcount[k, classes]. x[n, f] and y[n] are this rank's
 * rows (the data rows the embeddings came from). Exact sums; collective. */
fh_status embed_profile(const comm_t *c, const float *x, const int32_t *y, int64_t n, int32_t f, int32_t classes,
                        const int32_t *assign, int32_t k, double *cmean, double *omean, int64_t *lcount);

#endif
