/* Communication compression of client updates: encoders and decoders of the messages described
 * in include/fedhpc/compress.h. Pure functions of their inputs and the stream they are given. */
#include "fedhpc/compress.h"
#include "fedhpc/agg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- little-endian fields -------------------------------------------------------------- */
static void put_u32(uint8_t *b, uint32_t x)
{
    b[0] = (uint8_t)x;
    b[1] = (uint8_t)(x >> 8);
    b[2] = (uint8_t)(x >> 16);
    b[3] = (uint8_t)(x >> 24);
}

static uint32_t get_u32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static void put_f32(uint8_t *b, float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    put_u32(b, x);
}

static float get_f32(const uint8_t *b)
{
    uint32_t x = get_u32(b);
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* ---- sizes ----------------------------------------------------------------------------- */
int64_t cz_k(const cz_params *p, int64_t P)
{
    int64_t k = (int64_t)llround(p->fraction * (double)P);
    if (k < 1) k = 1;
    return k > P ? P : k;
}

static int64_t qsgd_buckets(const cz_params *p, int64_t P)
{
    return p->bucket > 0 ? (P + p->bucket - 1) / p->bucket : 1;
}

size_t cz_bytes(const cz_params *p, int64_t P)
{
    switch (p->method) {
    case CZ_QSGD: return (size_t)(4 * qsgd_buckets(p, P) + (P * p->bits + 7) / 8);
    case CZ_TOPK: return (size_t)(8 * cz_k(p, P));
    case CZ_RANDK: return (size_t)(4 * cz_k(p, P));
    case CZ_SIGNSGD: return (size_t)((p->majority ? 0 : 4) + (P + 7) / 8);
    default: return (size_t)P * sizeof(float);
    }
}

int cz_sparse(const cz_params *p)
{
    return p->method == CZ_TOPK || p->method == CZ_RANDK;
}

/* ---- top-k selection: a strict total order (|v| descending, then index ascending) ----------- */
static int before(const float *v, uint32_t a, uint32_t b)
{
    const float x = fabsf(v[a]), y = fabsf(v[b]);
    return x > y || (x == y && a < b);
}

static int cmp_u32(const void *a, const void *b)
{
    const uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static const float *g_sort_v; /* for the qsort fallback only (single-threaded use) */
static int cmp_order(const void *a, const void *b)
{
    const uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return before(g_sort_v, x, y) ? -1 : before(g_sort_v, y, x) ? 1 : 0;
}

/* Rearrange idx[0..n) so that idx[0..k) are the k first in the order (any order among them). */
static void select_first(const float *v, uint32_t *idx, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n - 1; /* the k-th (0-based k-1) lies in [lo, hi] */
    int budget = 64;
    while (hi > lo) {
        if (--budget == 0) { /* pathological pivots: sort the rest */
            g_sort_v = v;
            qsort(idx + lo, (size_t)(hi - lo + 1), sizeof *idx, cmp_order);
            return;
        }
        /* median of three as the pivot, moved to hi */
        const int64_t mid = lo + (hi - lo) / 2;
        uint32_t a = idx[lo], b = idx[mid], c = idx[hi];
        int64_t pi;
        if (before(v, a, b)) pi = before(v, b, c) ? mid : (before(v, a, c) ? hi : lo);
        else pi = before(v, a, c) ? lo : (before(v, b, c) ? hi : mid);
        uint32_t t = idx[pi]; idx[pi] = idx[hi]; idx[hi] = t;
        const uint32_t piv = idx[hi];
        int64_t s = lo;
        for (int64_t i = lo; i < hi; i++)
            if (before(v, idx[i], piv)) { t = idx[i]; idx[i] = idx[s]; idx[s] = t; s++; }
        idx[hi] = idx[s];
        idx[s] = piv;
        if (s == k - 1) return;
        if (s < k - 1) lo = s + 1;
        else hi = s - 1;
    }
}

/* randk: k distinct indices from the stream, ascending in idx[0..k) (partial Fisher-Yates). */
static void randk_indices(rng_t *rng, uint32_t *idx, int64_t P, int64_t k)
{
    for (int64_t i = 0; i < P; i++) idx[i] = (uint32_t)i;
    for (int64_t i = 0; i < k; i++) {
        const int64_t j = i + (int64_t)rng_below(rng, (uint64_t)(P - i));
        const uint32_t t = idx[i]; idx[i] = idx[j]; idx[j] = t;
    }
    qsort(idx, (size_t)k, sizeof *idx, cmp_u32);
}

/* ---- encoders -------------------------------------------------------------------------- */
static size_t qsgd_encode(const cz_params *p, const float *v, int64_t P, rng_t *rng, uint8_t *msg)
{
    const int64_t nb = qsgd_buckets(p, P), B = p->bucket > 0 ? p->bucket : P;
    const int32_t s = (1 << (p->bits - 1)) - 1;
    uint8_t *codes = msg + 4 * nb;
    memset(codes, 0, (size_t)((P * p->bits + 7) / 8));
    uint64_t bitpos = 0;
    for (int64_t b = 0; b < nb; b++) {
        const int64_t j0 = b * B, j1 = j0 + B < P ? j0 + B : P;
        double ss = 0;
        for (int64_t j = j0; j < j1; j++) ss += (double)v[j] * v[j];
        const double nrm = sqrt(ss);
        float nf = (float)nrm;
        if ((double)nf < nrm) nf = nextafterf(nf, INFINITY); /* |v_j| <= nf: r <= s */
        put_f32(msg + 4 * b, nf);
        for (int64_t j = j0; j < j1; j++) {
            /* one uniform a coordinate, drawn whatever the value: positions in the stream fixed */
            const double u = rng_uniform(rng);
            int32_t l = 0;
            if (nf > 0) {
                const double r = fabs((double)v[j]) / (double)nf * s;
                l = (int32_t)floor(r);
                if (u < r - l) l++;
                if (l > s) l = s;
            }
            const uint32_t code = (uint32_t)(s + (v[j] < 0 ? -l : l));
            for (int32_t q = 0; q < p->bits; q++, bitpos++)
                if (code >> q & 1u) codes[bitpos >> 3] |= (uint8_t)(1u << (bitpos & 7));
        }
    }
    return cz_bytes(p, P);
}

size_t cz_encode(const cz_params *p, const float *v, int64_t P, rng_t *rng, uint32_t *idx, uint8_t *msg)
{
    switch (p->method) {
    case CZ_QSGD: return qsgd_encode(p, v, P, rng, msg);
    case CZ_TOPK: {
        const int64_t k = cz_k(p, P);
        for (int64_t i = 0; i < P; i++) idx[i] = (uint32_t)i;
        select_first(v, idx, P, k);
        qsort(idx, (size_t)k, sizeof *idx, cmp_u32);
        for (int64_t i = 0; i < k; i++) {
            put_u32(msg + 4 * i, idx[i]);
            put_f32(msg + 4 * k + 4 * i, v[idx[i]]);
        }
        return cz_bytes(p, P);
    }
    case CZ_RANDK: {
        const int64_t k = cz_k(p, P);
        randk_indices(rng, idx, P, k);
        for (int64_t i = 0; i < k; i++) put_f32(msg + 4 * i, v[idx[i]]);
        return cz_bytes(p, P);
    }
    case CZ_SIGNSGD: {
        uint8_t *bits = msg;
        if (!p->majority) {
            double a = 0;
            for (int64_t j = 0; j < P; j++) a += fabs((double)v[j]);
            put_f32(msg, (float)(a / (double)P));
            bits = msg + 4;
        }
        memset(bits, 0, (size_t)((P + 7) / 8));
        for (int64_t j = 0; j < P; j++)
            if (v[j] < 0) bits[j >> 3] |= (uint8_t)(1u << (j & 7));
        return cz_bytes(p, P);
    }
    default: /* none: the raw float32 vector */
        for (int64_t j = 0; j < P; j++) put_f32(msg + 4 * j, v[j]);
        return cz_bytes(p, P);
    }
}

/* ---- decoders -------------------------------------------------------------------------- */
static fh_status bad_len(const cz_params *p, size_t len, int64_t P)
{
    return fh_error_set(FH_EFAULT, "compressed message: %zu bytes, expected %zu for %lld parameters (method %d)", len,
                        cz_bytes(p, P), (long long)P, p->method);
}

fh_status cz_decode_sparse(const cz_params *p, const uint8_t *msg, size_t len, int64_t P, rng_t *rng, uint32_t *idx,
                           float *val, int64_t *nnz)
{
    if (!cz_sparse(p)) return fh_error_set(FH_EFAULT, "cz_decode_sparse: method %d is not sparse", p->method);
    if (len != cz_bytes(p, P)) return bad_len(p, len, P);
    const int64_t k = cz_k(p, P);
    if (p->method == CZ_TOPK) {
        for (int64_t i = 0; i < k; i++) {
            idx[i] = get_u32(msg + 4 * i);
            if ((int64_t)idx[i] >= P || (i > 0 && idx[i] <= idx[i - 1]))
                return fh_error_set(FH_EFAULT, "compressed message: index %u at %lld out of range or order", idx[i],
                                    (long long)i);
            val[i] = get_f32(msg + 4 * k + 4 * i);
        }
    } else {
        randk_indices(rng, idx, P, k);
        for (int64_t i = 0; i < k; i++) val[i] = get_f32(msg + 4 * i);
    }
    *nnz = k;
    return FH_OK;
}

fh_status cz_decode_dense(const cz_params *p, const uint8_t *msg, size_t len, int64_t P, rng_t *rng, uint32_t *idx,
                          float *val, float *out)
{
    if (len != cz_bytes(p, P)) return bad_len(p, len, P);
    switch (p->method) {
    case CZ_TOPK:
    case CZ_RANDK: {
        int64_t nnz = 0;
        FH_TRY(cz_decode_sparse(p, msg, len, P, rng, idx, val, &nnz));
        memset(out, 0, (size_t)P * sizeof *out);
        for (int64_t i = 0; i < nnz; i++) out[idx[i]] = val[i];
        return FH_OK;
    }
    case CZ_QSGD: {
        const int64_t nb = qsgd_buckets(p, P), B = p->bucket > 0 ? p->bucket : P;
        const int32_t s = (1 << (p->bits - 1)) - 1;
        const uint8_t *codes = msg + 4 * nb;
        uint64_t bitpos = 0;
        for (int64_t b = 0; b < nb; b++) {
            const double nf = (double)get_f32(msg + 4 * b);
            const int64_t j0 = b * B, j1 = j0 + B < P ? j0 + B : P;
            for (int64_t j = j0; j < j1; j++) {
                uint32_t code = 0;
                for (int32_t q = 0; q < p->bits; q++, bitpos++) code |= (uint32_t)(codes[bitpos >> 3] >> (bitpos & 7) & 1u) << q;
                if (code > (uint32_t)(2 * s)) return fh_error_set(FH_EFAULT, "compressed message: qsgd code %u > %d", code, 2 * s);
                out[j] = (float)(nf * ((int32_t)code - s) / s);
            }
        }
        return FH_OK;
    }
    case CZ_SIGNSGD: {
        const float sc = p->majority ? 1.0f : get_f32(msg);
        const uint8_t *bits = p->majority ? msg : msg + 4;
        for (int64_t j = 0; j < P; j++) out[j] = bits[j >> 3] >> (j & 7) & 1u ? -sc : sc;
        return FH_OK;
    }
    default:
        for (int64_t j = 0; j < P; j++) out[j] = get_f32(msg + 4 * j);
        return FH_OK;
    }
}

void cz_scale(const cz_params *p, uint8_t *msg, size_t len, int64_t P, float f)
{
    (void)len;
    int64_t off = 0, n = 0;
    switch (p->method) {
    case CZ_QSGD: n = qsgd_buckets(p, P); break;
    case CZ_TOPK: off = 4 * cz_k(p, P); n = cz_k(p, P); break;
    case CZ_RANDK: n = cz_k(p, P); break;
    case CZ_SIGNSGD: n = p->majority ? 0 : 1; break;
    default: n = P; break;
    }
    for (int64_t i = 0; i < n; i++) put_f32(msg + off + 4 * i, get_f32(msg + off + 4 * i) * f);
}

__attribute__((optimize("no-math-errno")))
void cz_accumulate_sparse(int64_t *acc, const uint32_t *idx, const float *val, int64_t nnz, double weight)
{
    const double s = weight * FX_SCALE; /* exactly fx_accumulate's arithmetic */
    for (int64_t i = 0; i < nnz; i++) acc[idx[i]] += (int64_t)llrint(s * (double)val[i]);
}
