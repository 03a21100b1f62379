/* t-of-n Shamir secret sharing over GF(2^61 - 1). Random coefficients from libsodium. */
#include "fedhpc/secagg.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static uint64_t red(unsigned __int128 x)
{
    uint64_t lo = (uint64_t)(x & SHAMIR_P), hi = (uint64_t)(x >> 61);
    uint64_t r = lo + hi; /* < 2^62 + 2^67 / 2^61 fits */
    r = (r & SHAMIR_P) + (r >> 61);
    return r >= SHAMIR_P ? r - SHAMIR_P : r;
}

uint64_t shamir_mul(uint64_t a, uint64_t b) { return red((unsigned __int128)a * b); }
static uint64_t add_p(uint64_t a, uint64_t b)
{
    uint64_t r = a + b;
    return r >= SHAMIR_P ? r - SHAMIR_P : r;
}
static uint64_t sub_p(uint64_t a, uint64_t b) { return a >= b ? a - b : a + SHAMIR_P - b; }

uint64_t shamir_inv(uint64_t a)
{
    uint64_t r = 1, e = SHAMIR_P - 2;
    while (e) {
        if (e & 1) r = shamir_mul(r, a);
        a = shamir_mul(a, a);
        e >>= 1;
    }
    return r;
}

static uint64_t rand_elem(void)
{
    for (;;) {
        uint64_t v;
        randombytes_buf(&v, sizeof v);
        v &= SHAMIR_P;
        if (v != SHAMIR_P) return v;
    }
}

fh_status shamir_split(const uint64_t *secret, int k, int t, int n, const uint64_t *xs,
                       uint64_t *shares)
{
    if (k < 1 || t < 1 || n < t)
        return fh_error_set(FH_EINPUT, "shamir: need 1 <= t <= n (t=%d, n=%d)", t, n);
    for (int i = 0; i < n; i++) {
        if (xs[i] == 0 || xs[i] >= SHAMIR_P) return fh_error_set(FH_EINPUT, "shamir: bad x");
        for (int j = 0; j < i; j++)
            if (xs[j] == xs[i]) return fh_error_set(FH_EINPUT, "shamir: duplicate x");
    }
    for (int j = 0; j < k; j++)
        if (secret[j] >= SHAMIR_P) return fh_error_set(FH_EINPUT, "shamir: secret not in field");
    /* t coefficients of a degree t-1 polynomial: any threshold up to n (no fixed cap) */
    uint64_t *coef = malloc((size_t)t * sizeof *coef);
    if (!coef) return fh_error_set(FH_ENOMEM, "shamir: out of memory for a threshold of %d", t);
    for (int j = 0; j < k; j++) {
        coef[0] = secret[j];
        for (int d = 1; d < t; d++) coef[d] = rand_elem();
        for (int i = 0; i < n; i++) { /* Horner */
            uint64_t y = 0;
            for (int d = t - 1; d >= 0; d--) y = add_p(shamir_mul(y, xs[i]), coef[d]);
            shares[(size_t)i * k + j] = y;
        }
    }
    sodium_memzero(coef, (size_t)t * sizeof *coef);
    free(coef);
    return FH_OK;
}

fh_status shamir_combine(const uint64_t *xs, const uint64_t *shares, int m, int k,
                         uint64_t *secret)
{
    if (m < 1 || k < 1) return fh_error_set(FH_EINPUT, "shamir: no shares");
    for (int j = 0; j < k; j++) secret[j] = 0;
    for (int i = 0; i < m; i++) {
        if (xs[i] == 0 || xs[i] >= SHAMIR_P) return fh_error_set(FH_EINPUT, "shamir: bad x");
        /* Lagrange basis at 0: prod_{l != i} x_l / (x_l - x_i) */
        uint64_t num = 1, den = 1;
        for (int l = 0; l < m; l++) {
            if (l == i) continue;
            if (xs[l] == xs[i]) return fh_error_set(FH_EINPUT, "shamir: duplicate x");
            num = shamir_mul(num, xs[l]);
            den = shamir_mul(den, sub_p(xs[l], xs[i]));
        }
        const uint64_t li = shamir_mul(num, shamir_inv(den));
        for (int j = 0; j < k; j++)
            secret[j] = add_p(secret[j], shamir_mul(li, shares[(size_t)i * k + j]));
    }
    return FH_OK;
}

void shamir_pack32(const uint8_t in[32], uint64_t out[SHAMIR_K32])
{
    uint8_t buf[7 * SHAMIR_K32] = {0};
    memcpy(buf, in, 32);
    for (int j = 0; j < SHAMIR_K32; j++) {
        uint64_t v = 0;
        for (int b = 6; b >= 0; b--) v = (v << 8) | buf[7 * j + b];
        out[j] = v;
    }
}

void shamir_unpack32(const uint64_t in[SHAMIR_K32], uint8_t out[32])
{
    uint8_t buf[7 * SHAMIR_K32];
    for (int j = 0; j < SHAMIR_K32; j++)
        for (int b = 0; b < 7; b++) buf[7 * j + b] = (uint8_t)(in[j] >> (8 * b));
    memcpy(out, buf, 32);
}
