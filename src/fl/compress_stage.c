/* [compress] as an aggregation stage (include/fedhpc/loop.h, fl_agg_add): after reject and
 * privacy, before the fixed-point sum. For a client's accepted update u:
 *
 *   v = u + e_i                      (e_i: the client's residual; 0 without error feedback)
 *   msg = encode(v)                  the bytes the client would send (compress.h)
 *   dec = decode(msg)                what the aggregator receives; under client DP scaled to
 *                                    norm <= C (the message's float fields times C / |dec|)
 *   buf += fixed point(weight * dec) dense methods over P, sparse ones over the k entries
 *   e_i = v - dec                    stored back (error feedback)
 *
 * Randomness (qsgd rounding, randk indices) from rng_stream(seed, client, round, RNG_COMPRESS):
 * the same on any rank, so the sum is bit-identical for any number of ranks.
 */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/compress.h"
#include "fedhpc/loop.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct fl_compress {
    cz_params p;
    uint64_t seed;
    int64_t P;
    int ef;
    io_state *resid;   /* [C, P] residuals (error feedback)       */
    float *e, *dec;    /* [P] residual row, decoded message       */
    float *val;        /* [P] sparse values                       */
    uint32_t *idx;     /* [P] sparse indices / scratch            */
    uint8_t *msg;      /* [cz_bytes] the encoded message          */
    size_t cap;
};

fh_status fl_compress_init(fl_compress **out, const config_t *cfg, const comm_t *w, int32_t C, int64_t P)
{
    *out = NULL;
    const config_compress *c = &cfg->compress;
    if (c->method == CZ_NONE) return FH_OK;
    if (P > (int64_t)UINT32_MAX)
        return fh_error_set(FH_EINPUT, "[compress] method: %lld parameters do not fit 32-bit indices", (long long)P);
    fl_compress *z = fh_calloc(1, sizeof *z);
    FH_CHECK_ALLOC(z);
    z->p = (cz_params){c->method, c->bits, c->bucket, c->fraction, c->vote == 1};
    z->seed = (uint64_t)cfg->train.seed;
    z->P = P;
    z->ef = c->error_feedback;
    z->cap = cz_bytes(&z->p, P);
    z->e = malloc((size_t)P * sizeof *z->e);
    z->dec = malloc((size_t)P * sizeof *z->dec);
    z->val = malloc((size_t)P * sizeof *z->val);
    z->idx = malloc((size_t)P * sizeof *z->idx);
    z->msg = malloc(z->cap);
    fh_status st = FH_OK;
    if (!z->e || !z->dec || !z->val || !z->idx || !z->msg)
        st = fh_error_set(FH_ENOMEM, "[compress]: out of memory for %lld parameters", (long long)P);
    st = comm_agree(w, st);
    if (st == FH_OK && z->ef) st = comm_agree(w, fl_state_create(cfg, w, "compress_residual.h5", C, P, &z->resid));
    *out = z;
    return st;
}

void fl_compress_free(fl_compress *z)
{
    if (!z) return;
    io_state_close(z->resid);
    free(z->e); free(z->dec); free(z->val); free(z->idx); free(z->msg);
    free(z);
}

io_state *fl_compress_residuals(fl_compress *z)
{
    return z ? z->resid : NULL;
}

int fl_compress_majority(const fl_compress *z)
{
    return z && z->p.method == CZ_SIGNSGD && z->p.majority;
}

static double norm_of(const float *v, int64_t n)
{
    double s = 0;
    for (int64_t j = 0; j < n; j++) s += (double)v[j] * v[j];
    return sqrt(s);
}

/* Decode the message as the aggregator receives it: sparse (idx/val, *nnz) or dense (z->dec). */
static fh_status decode(fl_compress *z, int64_t round, int32_t cid, size_t len, int64_t *nnz)
{
    rng_t r = rng_stream(z->seed, (uint64_t)cid, (uint64_t)round, RNG_COMPRESS);
    if (cz_sparse(&z->p)) return cz_decode_sparse(&z->p, z->msg, len, z->P, &r, z->idx, z->val, nnz);
    *nnz = z->P;
    return cz_decode_dense(&z->p, z->msg, len, z->P, &r, z->idx, z->val, z->dec);
}

fh_status fl_compress_add(fl_compress *z, int64_t *buf, int64_t round, int32_t cid, float *u, double weight,
                          double clip, int64_t *bytes)
{
    const int64_t P = z->P;
    const int sparse = cz_sparse(&z->p);
    if (z->ef) {
        FH_TRY(io_state_read(z->resid, cid, z->e));
        for (int64_t j = 0; j < P; j++) u[j] += z->e[j];
    }
    rng_t r = rng_stream(z->seed, (uint64_t)cid, (uint64_t)round, RNG_COMPRESS);
    const size_t len = cz_encode(&z->p, u, P, &r, z->idx, z->msg);
    int64_t nnz = 0;
    FH_TRY(decode(z, round, cid, len, &nnz)); /* the aggregator's side */
    if (clip > 0) { /* client DP: the contribution's norm stays <= C after compression */
        const double n = norm_of(sparse ? z->val : z->dec, nnz);
        if (n > clip) {
            cz_scale(&z->p, z->msg, len, P, (float)(clip / n));
            FH_TRY(decode(z, round, cid, len, &nnz));
        }
    }
    if (sparse) cz_accumulate_sparse(buf, z->idx, z->val, nnz, weight); /* the k entries only */
    else fx_accumulate(buf, z->dec, weight, P);
    if (z->ef) { /* e = v - decoded (sparse: v everywhere but the sent entries) */
        if (sparse) {
            memcpy(z->e, u, (size_t)P * sizeof *z->e);
            for (int64_t i = 0; i < nnz; i++) z->e[z->idx[i]] = u[z->idx[i]] - z->val[i];
        } else {
            for (int64_t j = 0; j < P; j++) z->e[j] = u[j] - z->dec[j];
        }
        FH_TRY(io_state_write(z->resid, cid, z->e));
    }
    *bytes = (int64_t)len;
    return FH_OK;
}
