/* fedhpc/agg.h — exact aggregation: fixed-point encoding of weighted client updates and the
 * check that rejects a faulty update before it is summed (src/agg/fixed.c).
 *
 * Exactness: a client's weighted update is encoded in fixed point (2^-32 steps) as int64 and
 * summed with integer additions, so the sum is the same for any placement of clients on ranks
 * and any reduction order. The aggregation stages around the sum — secure aggregation masks
 * (src/privacy/sa_round.c), DP clipping and noise (src/privacy/dp.c) — work on these integers.
 * This room depends on nothing but common.h, so privacy and fl both build on it.
 */
#ifndef FEDHPC_AGG_H
#define FEDHPC_AGG_H

#include "fedhpc/common.h"

#include <stdint.h>

#define FX_SCALE 4294967296.0 /* 2^32 */
/* acc[j] += round(weight * v[j] * 2^32) for j < n. */
void fx_accumulate(int64_t *acc, const float *v, double weight, int64_t n);
/* out[j] = acc[j] * scale / 2^32. */
void fx_decode(const int64_t *acc, double scale, float *out, int64_t n);
/* Largest |v| that fx_accumulate accepts for a sum of weights <= 1 without overflow. */
#define FX_MAX_ABS 1.0e9

/* Check a client update: finite and L2 norm <= max_norm (and every |v| <= FX_MAX_ABS).
 * Returns 1 if acceptable. *norm receives the L2 norm (or NAN). */
int fl_update_ok(const float *v, int64_t n, double max_norm, double *norm);

/* Per-client buffers of a rank (secure aggregation, Paillier: each client encodes into its own):
 * *buf grown to at least nloc x nacc int64 (*cap: clients it holds) and its first nloc x nacc
 * zeroed. */
fh_status fx_bufs_begin(int64_t **buf, int32_t *cap, int32_t nloc, int64_t nacc);

#endif
