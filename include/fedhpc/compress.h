/* fedhpc/compress.h — communication compression of client updates (src/agg/compress.c): pure
 * functions, no MPI, no HDF5. An update v[P] is encoded into a byte message — what a client
 * would put on the wire — and decoded back; the aggregation stage (src/fl/compress_stage.c)
 * accumulates the decoded message into the rank's fixed-point sum.
 *
 * Methods and message layouts (little-endian; the decoder knows P and the parameters, so no
 * header is sent):
 *
 *   qsgd    stochastic quantization (Alistarh et al. 2017) with `bits` bits a coordinate:
 *           s = 2^(bits-1) - 1 magnitude levels, so 2^bits - 1 quantization points
 *           {-s..s}/s; coordinates in buckets of `bucket` (0: one bucket), each with its L2
 *           norm n_b: v_i ~ n_b * sign(v_i) * l / s with l = floor(r) + [U < r - floor(r)],
 *           r = |v_i| / n_b * s, U uniform from the stream: unbiased, E[dec] = v.
 *           Message: nb float32 norms, then the codes l + s (0..2s) packed bits-wide in one
 *           bit stream: 4 * nb + ceil(P * bits / 8) bytes.
 *   topk    the k = max(1, round(fraction * P)) coordinates of largest |v_i| (ties: lower
 *           index first, deterministic), unscaled. Message: k uint32 indices (ascending),
 *           then k float32 values: 8k bytes.
 *   randk   k coordinates drawn uniformly without replacement from the stream, unscaled
 *           (biased like topk; scaling by P/k would make it unbiased but multiply the
 *           variance by P/k). The decoder draws the same indices from the same stream
 *           (seed, client, round), so only the values travel: 4k bytes.
 *   signsgd the signs (bit 1 = negative; 0 counts as positive) packed 8 a byte, with the scale
 *           mean |v_i| (EF-signSGD, Karimireddy et al. 2019): 4 + ceil(P / 8) bytes; with
 *           majority vote (Bernstein et al. 2018) no scale: ceil(P / 8) bytes, decoded to +-1.
 */
#ifndef FEDHPC_COMPRESS_H
#define FEDHPC_COMPRESS_H

#include "fedhpc/common.h"
#include "fedhpc/rng.h"

#include <stddef.h>
#include <stdint.h>

typedef enum { CZ_NONE = 0, CZ_QSGD = 1, CZ_TOPK = 2, CZ_RANDK = 3, CZ_SIGNSGD = 4 } cz_method;

typedef struct {
    int32_t method;   /* cz_method                                                     */
    int32_t bits;     /* qsgd: bits a coordinate, 2..16                                */
    int32_t bucket;   /* qsgd: coordinates a norm (0: the whole vector)                 */
    double fraction;  /* topk/randk: kept fraction of the coordinates, (0, 1]          */
    int32_t majority; /* signsgd: 1 majority vote (signs only)                          */
} cz_params;

/* Coordinates kept by topk/randk: max(1, round(fraction * P)), at most P. */
int64_t cz_k(const cz_params *p, int64_t P);
/* Size in bytes of the message of a P-vector (every method's size depends on P only). */
size_t cz_bytes(const cz_params *p, int64_t P);
/* Sparse methods (topk, randk): 1; dense (qsgd, signsgd): 0. */
int cz_sparse(const cz_params *p);

/* Encode v[P] into msg[cz_bytes]. rng: the client's stream for this round (qsgd rounding,
 * randk indices); idx[P]: scratch. Returns the bytes written (cz_bytes). v must be finite. */
size_t cz_encode(const cz_params *p, const float *v, int64_t P, rng_t *rng, uint32_t *idx, uint8_t *msg);

/* Decode a sparse message (topk, randk) into nnz = k entries idx[k] (ascending), val[k].
 * rng: the same stream the encoder was given (randk indices); idx needs room for P (randk
 * draws in it). FH_EFAULT if len is not the message size or an index is out of range. */
fh_status cz_decode_sparse(const cz_params *p, const uint8_t *msg, size_t len, int64_t P, rng_t *rng, uint32_t *idx,
                           float *val, int64_t *nnz);
/* Decode any message into the dense out[P] (zeros where nothing was sent). idx[P], val[P]:
 * scratch for the sparse methods. FH_EFAULT for a malformed message. */
fh_status cz_decode_dense(const cz_params *p, const uint8_t *msg, size_t len, int64_t P, rng_t *rng, uint32_t *idx,
                          float *val, float *out);

/* Multiply the decoded value of a message by f (0 <= f <= 1) in place: the float fields
 * (qsgd norms, topk/randk values, signsgd scale). Used to clip after compression under
 * client-level DP. Majority-vote messages have no scale (unchanged). */
void cz_scale(const cz_params *p, uint8_t *msg, size_t len, int64_t P, float f);

/* acc[idx[i]] += round(weight * val[i] * 2^32) for i < nnz: the fixed-point encoding of
 * agg.h (fx_accumulate) on the sparse entries only; the dense vector is never formed. */
void cz_accumulate_sparse(int64_t *acc, const uint32_t *idx, const float *val, int64_t nnz, double weight);

#endif
