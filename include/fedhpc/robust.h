/* fedhpc/robust.h — robust aggregation ([fl] aggregator, docs/robust.md).
 *
 * Rules (the algorithms, src/agg/robust.c: no MPI, plain arrays):
 *   krum / multikrum   Blanchard et al. 2017: client i's score is the sum of its squared
 *                      distances to its n - f - 2 nearest other updates; Krum takes the update
 *                      with the least score, Multi-Krum the mean of the n - f least
 *   median             coordinate-wise median (Yin et al. 2018)
 *   trimmed_mean       coordinate-wise mean after cutting floor(t n) values at each end (Yin 2018)
 *   norm_bound         every update clipped to an L2 bound, then the exact weighted mean, plus
 *                      optional Gaussian noise on the aggregate (Sun et al. 2019, weak DP)
 * The rules are unweighted (every accepted update counts once), as in the papers; norm_bound
 * keeps FedAvg's n_i / N weights.
 *
 * Distribution (the driver, src/fl/robust_round.c): the P coordinates are cut into one slice
 * per rank; each rank keeps its own clients' accepted updates (packed by destination slice),
 * one all-to-all gives every rank its slice of every accepted update, the rank computes the
 * rule on its slice, and one all-gather assembles the aggregate on every rank. Krum's pairwise
 * distances come from a Gram matrix in fixed point: the dot product of each fixed block of
 * coordinates (slices start at block boundaries) in double, scaled by a power of two and rounded
 * to int64, the integers summed over the slices with an integer all-reduce, so the selection
 * and the model are bit-identical for any number of ranks. No rank holds every update.
 */
#ifndef FEDHPC_ROBUST_H
#define FEDHPC_ROBUST_H

#include "fedhpc/comm.h"
#include "fedhpc/config.h"

#include <stdint.h>

/* ---- the rules on plain arrays (src/agg/robust.c) --------------------------------------------
 * R is an n x len row-major block: row i = client i's values of `len` coordinates (stride len).
 * tmp: scratch of n floats. Outputs are len floats. */
/* Coordinate-wise median (n >= 1): the middle value, or the mean of the two middle values
 * (computed in double) for even n. */
void robust_median(const float *R, int32_t n, int64_t len, float *out, float *tmp);
/* Coordinate-wise trimmed mean: the k smallest and k largest values of each coordinate cut
 * (n - 2k >= 1), the rest averaged in double in ascending order. */
void robust_trimmed_mean(const float *R, int32_t n, int64_t len, int32_t k, float *out, float *tmp);
/* out = mean of the rows rows[nrows] of R (summed in double in the order given). */
void robust_mean_rows(const float *R, int64_t len, const int32_t *rows, int32_t nrows, float *out);
/* Values cut at each end by trimmed_mean: floor(t * n), at most (n - 1) / 2. */
int32_t robust_trim_count(int32_t n, double t);
/* Krum neighbours n - f - 2, within [1, n - 1] (0 for n = 1). */
int32_t robust_krum_neighbors(int32_t n, int32_t f);
/* Multi-Krum's selection size n - f, at least 1. */
int32_t robust_multikrum_count(int32_t n, int32_t f);

/* Exact Gram matrix in fixed point. shift: the power of two such that every |<u_i, u_j>| and
 * every partial sum fits with room (max_norm^2 * 2^shift < 2^59); max_norm: the largest L2
 * norm of the updates. */
int robust_gram_shift(double max_norm);
/* G[i * n + j] (j <= i) += sum over the blocks of ROBUST_GRAM_BLOCK coordinates of
 * llrint(2^shift * <R_i, R_j> over the block), each block's dot product summed in double in a
 * fixed order (8 lanes). The slice R must start at a multiple of ROBUST_GRAM_BLOCK of the full
 * vector: then every block is whole in one slice, computed by the same code whatever the
 * slicing, and the integer sums over slices do not depend on how the coordinates were cut. */
#define ROBUST_GRAM_BLOCK 1024
void robust_gram_add(const float *R, int32_t n, int64_t len, int shift, int64_t *G);
/* Krum on the full symmetric Gram G[n x n] (lower triangle read): score[i] = sum of the k
 * least squared distances G_ii + G_jj - 2 G_ij (j != i, k = robust_krum_neighbors), summed in
 * double in ascending order; sel[0..m) = the m clients with the least scores (ties: lower index),
 * sorted by index. dist: scratch of n doubles. Returns m (at most n). */
int32_t robust_krum_select(const int64_t *G, int32_t n, int32_t f, int32_t m, int32_t *sel, double *score,
                           double *dist);
/* Clip u[P] to L2 norm <= bound (scaled by bound / norm). norm: u's L2 norm if known (the
 * reject stage computed it), or < 0 to compute it here. Returns the norm before clipping. */
double robust_clip(float *u, int64_t P, double bound, double norm);
/* v[P] += std * N(0, 1) from the stream (seed, 0, round, RNG_ROBUST): the same on every rank. */
void robust_noise(float *v, int64_t P, double std, uint64_t seed, int64_t round);
/* The same from the stream (seed, id, round, RNG_ROBUST): id = 0 is robust_noise; multi-center
 * FL uses id = 1 + cluster, so that every center gets its own noise. */
void robust_noise_at(float *v, int64_t P, double std, uint64_t seed, uint64_t id, int64_t round);

/* ---- the distributed driver (src/fl/robust_round.c) ------------------------------------------ */
typedef struct robust_agg {
    int32_t rule;          /* AGGR_* ([fl] aggregator)                                           */
    int32_t f;             /* [fl] byzantine_f                                                   */
    double trim, bound, noise;
    uint64_t seed;
    int64_t P;
    int32_t m;             /* clients a round                                                    */
    int size, rank;        /* of the communicator the rounds run on                              */
    int64_t *off;          /* [size + 1] coordinate slice of each rank                           */
    int32_t cap, nloc, nkeep; /* rows allocated, this round's local clients, accepted kept       */
    float *keep;           /* [cap * P] accepted local updates, packed by destination slice:
                              slice q of kept update a at off[q] * nloc + a * len_q            */
    double *norms;         /* [cap] their L2 norms                                               */
    float *recv;           /* [m * max slice] this rank's slice of every accepted update         */
    float *slice;          /* [max slice] this rank's slice of the aggregate                     */
    float *out;            /* [P] the aggregate (after robust_agg_run, when have)                */
    int64_t *cnt, *G;      /* [size] accepted per rank; [m * m] Gram                             */
    int32_t *sel;          /* [m] Krum / Multi-Krum selection                                    */
    double *score, *dist;  /* [m], [m]                                                           */
    float *tmp;            /* [m]                                                                */
    int32_t nacc, nsel;    /* accepted over all ranks, selected (Krum)                           */
    int scap;              /* ranks off/cnt are allocated for                                    */
    int64_t lcap;          /* slice length recv/slice are allocated for                          */
    int have;              /* an aggregate exists this round (nacc > 0)                          */
} robust_agg;

/* From [fl] for rounds of m clients over P parameters on the ranks of w. Bad input (Krum with
 * m <= 2 byzantine_f + 2): FH_EINPUT naming the keys. The same result on every rank. */
fh_status robust_agg_init(robust_agg *a, const config_t *cfg, int32_t m, int64_t P, const comm_t *w);
void robust_agg_free(robust_agg *a);
/* Run the following rounds on the ranks of c instead (multi-center FL: a cluster's rank group,
 * src/fl/cluster.c): the slices are re-cut for c->size ranks, still at Gram block boundaries,
 * so the result does not depend on the communicator. first = 1: c's rank 0 owns no slice
 * ([secagg] dedicated_aggregator). Call before robust_agg_begin; local, not collective. */
fh_status robust_agg_comm(robust_agg *a, const comm_t *c, int first);
/* 1 when the rule needs the individual updates (krum, multikrum, median, trimmed_mean): they
 * are kept (robust_agg_keep) instead of summed in fixed point. 0 for norm_bound. */
int robust_agg_slices(const robust_agg *a);
/* Start a round with nloc local clients. */
fh_status robust_agg_begin(robust_agg *a, int32_t nloc);
/* Keep one accepted local update u[P] of L2 norm `norm` (the clients in the round's order). */
void robust_agg_keep(robust_agg *a, const float *u, double norm);
/* The rule over every rank's kept updates: a->out on every rank (a->have = 0 when no update was
 * accepted anywhere). Collective over w. */
fh_status robust_agg_run(robust_agg *a, const comm_t *w);

#endif
