/* libFuzzer harness: the compressed-message decoders (src/agg/compress.c) on what a malicious
 * client can send, and the encoders on any update.
 *
 * Input: method = 1 + b[0] % 4 (qsgd, topk, randk, signsgd), bits = 2 + b[1] % 15, bucket =
 * b[2] * 4 (0: one bucket), fraction = (b[3] + 1) / 256, majority = b[4] & 1, P = 1 + (b[5] |
 * b[6] << 8) % 2048; the rest is (a) decoded as a message (cz_decode_dense, and cz_decode_sparse
 * for topk/randk) — the length is whatever it is — and (b) read as float32 values, made finite,
 * padded with zeros to P, encoded and decoded back.
 * Checked: no crash, only FH_OK or FH_EFAULT from a decoder, a decoded message finite where its
 * float fields are, and for (b): the message has cz_bytes bytes and decodes; top-k/rand-k
 * values equal the update's at the sent indices; QSGD within one level of the update.
 */
#include "fuzz_common.h"
#include "fedhpc/compress.h"

#include <math.h>

int LLVMFuzzerInitialize(int *argc, char ***argv) { return fz_init(argc, argv); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 7) return 0;
    cz_params p = {1 + data[0] % 4, 2 + data[1] % 15, data[2] * 4, (data[3] + 1) / 256.0, data[4] & 1};
    const int64_t P = 1 + (int64_t)((data[5] | data[6] << 8) % 2048);
    data += 7;
    size -= 7;
    float *v = calloc((size_t)P, sizeof *v), *out = malloc((size_t)P * sizeof *out), *val = malloc((size_t)P * sizeof *val);
    uint32_t *idx = malloc((size_t)P * sizeof *idx);
    uint8_t *msg = malloc(cz_bytes(&p, P) + 1);
    if (!v || !out || !val || !idx || !msg) abort();

    /* (a) the bytes as a message */
    rng_t r = rng_stream(1, 2, 3, RNG_COMPRESS);
    fh_status st = cz_decode_dense(&p, data, size, P, &r, idx, val, out);
    if (st != FH_OK && st != FH_EFAULT) abort();
    if (cz_sparse(&p)) {
        int64_t nnz = -1;
        r = rng_stream(1, 2, 3, RNG_COMPRESS);
        st = cz_decode_sparse(&p, data, size, P, &r, idx, val, &nnz);
        if (st != FH_OK && st != FH_EFAULT) abort();
        if (st == FH_OK && (nnz != cz_k(&p, P))) abort();
        for (int64_t i = 0; st == FH_OK && i < nnz; i++)
            if ((int64_t)idx[i] >= P || (i && idx[i] <= idx[i - 1])) abort();
    }

    /* (b) the bytes as an update */
    for (int64_t j = 0; j < P && (size_t)(4 * j + 4) <= size; j++) {
        float f;
        memcpy(&f, data + 4 * j, 4);
        v[j] = isfinite(f) && fabsf(f) < 1e18f ? f : 0.0f;
    }
    r = rng_stream(1, 2, 3, RNG_COMPRESS);
    rng_t rd = r;
    const size_t len = cz_encode(&p, v, P, &r, idx, msg);
    if (len != cz_bytes(&p, P)) abort();
    if (cz_decode_dense(&p, msg, len, P, &rd, idx, val, out) != FH_OK) abort();
    if (p.method == CZ_TOPK || p.method == CZ_RANDK) {
        int64_t nz = 0;
        for (int64_t j = 0; j < P; j++) {
            if (out[j] != 0 && out[j] != v[j]) abort();
            nz += out[j] != 0;
        }
        if (nz > cz_k(&p, P)) abort();
    } else if (p.method == CZ_QSGD) {
        double nmax = 0; /* the largest bucket norm bounds one level */
        const int64_t B = p.bucket > 0 ? p.bucket : P;
        for (int64_t b = 0; b * B < P; b++) {
            double s = 0;
            for (int64_t j = b * B; j < P && j < (b + 1) * B; j++) s += (double)v[j] * v[j];
            nmax = fmax(nmax, sqrt(s));
        }
        const double level = nmax / ((1 << (p.bits - 1)) - 1);
        for (int64_t j = 0; j < P; j++)
            if (!(fabs((double)out[j] - v[j]) <= level * 1.0001 + nmax * 1e-6 + 1e-37)) abort();
    }
    free(v); free(out); free(val); free(idx); free(msg);
    return 0;
}
