/* fedhpc/cluster.h — the mathematics of multi-center FL (src/fl/kmeans.c, cluster.c): ARI,
 * distances from Gram matrices, k-means++, spectral clustering, nearest centers.
 */
#ifndef FEDHPC_CLUSTER_H
#define FEDHPC_CLUSTER_H

#include "fedhpc/comm.h"
#include "fedhpc/common.h"

#include <stdint.h>

/* Multi-center FL is a strategy of the one loop (include/fedhpc/loop.h, src/fl/cluster.c):
 * [cluster] method fesem | ifca | cfl | none, [personalize] fedper, [run] clients_per_rank.
 * Clusters are rank groups: after each assignment step the ranks hosting a cluster's members
 * form its communicator (comm_split) and aggregate it exactly (fixed point) with their own
 * collective; the cluster's aggregator rank (its lowest) broadcasts the new center. Writes
 * <output dir>/clusters.csv (rank 0) with cluster sizes, per-cluster accuracy and ARI. */
/* Adjusted Rand index (Hubert and Arabie 1985) of two labelings of n items (labels >= 0). */
double cl_ari(const int32_t *a, const int32_t *b, int32_t n);
/* Squared L2 distances D2[n x n] and cosine similarities Cs[n x n] (either may be NULL) from a
 * Gram matrix G[n x n]. A zero vector has similarity 0 to everything (1 to itself). */
void cl_gram_derive(const double *G, int32_t n, double *D2, double *Cs);
/* k-means++ seeding on pairwise squared distances D2[n x n], deterministic from
 * rng_stream(seed, 0, round, RNG_CLUSTER): seeds[k] distinct item indices (k <= n). */
fh_status cl_kmeanspp(const double *D2, int32_t n, int32_t k, uint64_t seed, int64_t round, int32_t *seeds);
/* k-means on pairwise squared distances D2[n x n] alone (kernel Lloyd: the distance of item i
 * to a cluster's mean is derived from D2), `restarts` times (>= 1), restart t seeded by
 * k-means++ from rng_stream(seed, t, round, RNG_CLUSTER) (restart 0 = cl_kmeanspp), at most
 * `iters` Lloyd iterations each; a cluster that empties takes the item farthest from its own
 * cluster's mean. assign[n]: the restart with the lowest total within-cluster squared distance
 * (*objective, may be NULL; ties: the lowest restart). Deterministic for a given D2. */
fh_status cl_kmeans_d2(const double *D2, int32_t n, int32_t k, uint64_t seed, int64_t round, int32_t restarts,
                       int32_t iters, int32_t *assign, double *objective);
/* One restart t of cl_kmeans_d2: cur[n] its assignment, *objective its total within-cluster
 * squared distance (the caller may score restarts otherwise, e.g. by loss). */
fh_status cl_kmeans_d2_restart(const double *D2, int32_t n, int32_t k, uint64_t seed, int64_t round, int32_t t,
                               int32_t iters, int32_t *cur, double *objective);
/* assign[i] = argmin_j dist[i * k + j] (ties: lowest j). */
void cl_argmin(const double *dist, int32_t n, int32_t k, int32_t *assign);
/* Lloyd's k-means of rows X[n x dim] (double), seeded by k-means++ on their distances;
 * `iters` iterations at most. */
fh_status cl_kmeans(const double *X, int32_t n, int32_t dim, int32_t k, uint64_t seed, int32_t iters,
                    int32_t *assign);
/* Spectral clustering (Ng, Jordan and Weiss 2001) of n items with similarity S[n x n]
 * (affinity max(S, 0), symmetric normalised), eigenvectors from dist_syevd (ScaLAPACK) on c:
 * the k leading eigenvectors, rows normalised, then k-means. Collective over c. */
fh_status cl_spectral(const comm_t *c, const double *S, int32_t n, int32_t k, uint64_t seed, int32_t *assign);
/* FeSEM assignment step: nearest (L2) of k centers[k x P] to model[P] over the first `len`
 * parameters; *d2 (may be NULL) receives the squared distance to it. Ties: lowest index. */
int32_t cl_nearest_center(const float *model, const float *centers, int32_t k, int64_t P, int64_t len,
                          double *d2);

#endif
