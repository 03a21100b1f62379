/* fedhpc/rng.h — counter-based random streams.
 *
 * Every random decision in fedhpc draws from a stream keyed by (seed, id, round, purpose):
 * the i-th number of a stream is a pure function of the key and i (SplitMix64 finaliser of
 * key + i * golden-ratio), so results do not depend on which rank draws them or in what
 * order streams are created. Never use rand().
 */
#ifndef FEDHPC_RNG_H
#define FEDHPC_RNG_H

#include <stdint.h>
#include <stddef.h>

/* Purposes: one per call site that draws randomness. Append only (values are part of the
 * reproducibility contract). */
enum {
    RNG_INIT = 1,       /* model initialisation                       */
    RNG_SAMPLE = 2,     /* clients sampled in a round                 */
    RNG_SHUFFLE = 3,    /* a client's minibatch order                 */
    RNG_PARTITION = 4,  /* data partitioning                          */
    RNG_SPLIT = 5,      /* train/test split                           */
    RNG_DIRICHLET = 6,  /* Dirichlet proportions                      */
    RNG_SIZES = 7,      /* quantity-skew sizes                        */
    RNG_CENTRAL = 8,    /* centralized baseline shard order           */
    RNG_DP = 9,         /* differential-privacy noise                 */
    RNG_DROPOUT = 10,   /* simulated dropouts                         */
    RNG_SYSTEM = 11,    /* device profiles                            */
    RNG_CLUSTER = 12,   /* cluster initialisation                     */
    RNG_SECAGG = 13,    /* secure-aggregation neighbour graph         */
    RNG_DP_CLIENT = 14, /* a client's share of distributed DP noise   */
    RNG_DPSGD = 15,     /* DP-SGD noise inside a client               */
    RNG_DPSGD_SAMPLE = 16, /* DP-SGD Poisson sampling inside a client  */
    RNG_GROUPS = 17,    /* latent client groups and their transforms  */
    RNG_ASYNC = 18,     /* asynchronous FL: which idle client starts next */
    RNG_LATE_DROPOUT = 19, /* secagg: late dropouts (sent the input, no unmasking answer) */
    RNG_COMPRESS = 20,  /* [compress]: qsgd rounding, randk indices of a client's update */
    RNG_ROBUST = 21,    /* robust aggregation: norm_bound noise on the aggregate */
    RNG_ATTACK = 22,    /* [attack]: which clients are malicious      */
    RNG_ATTACK_DATA = 23, /* [attack]: poisoned rows, Gaussian updates  */
    RNG_RESEED = 24,    /* [cluster] reseed = split: an emptied center's perturbation */
    /* gradient leakage (issue 13; a high value apart from other attack streams) */
    RNG_LEAKAGE = 40,   /* leakage attack: target rows, dummies, defence noise */
    /* customer embeddings (issue 15, `fedhpc embed`) */
    RNG_EMBED = 41,     /* federated k-means++ seeding of the embeddings' clusters */
    /* GNN recommendation (issue 15; src/model/gnn.c, src/fl/gnn_run.c) */
    RNG_GNN_NEG = 42,   /* lightgcn: BPR negative items of a client's round */
    RNG_GNN_USER = 43   /* lightgcn: initial embedding of a user (id = user) */
};

typedef struct {
    uint64_t key; /* hash of (seed, id, round, purpose) */
    uint64_t ctr; /* index of the next number           */
} rng_t;

/* The stream for (seed, id, round, purpose); id is a client id, shard id, or 0. */
rng_t rng_stream(uint64_t seed, uint64_t id, uint64_t round, uint32_t purpose);
/* Next 64 random bits. */
uint64_t rng_u64(rng_t *r);
/* Uniform double in [0, 1) with 53 random bits. */
double rng_uniform(rng_t *r);
/* Uniform integer in [0, n) without modulo bias (n > 0). */
uint64_t rng_below(rng_t *r, uint64_t n);
/* Standard normal (Box-Muller, no cached second value so streams stay position-pure). */
double rng_normal(rng_t *r);
/* Gamma(shape, 1) (Marsaglia-Tsang; shape < 1 by boosting). */
double rng_gamma(rng_t *r, double shape);
/* Fisher-Yates shuffle of a[0..n). */
void rng_shuffle_u32(rng_t *r, uint32_t *a, size_t n);
void rng_shuffle_i64(rng_t *r, int64_t *a, size_t n);

#endif
