/* Fixed-base comb exponentiation with Montgomery products from GMP's side-channel silent mpn
 * functions (src/he/fbase.h). */
#include "fbase.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* r = a b B^-n mod N for a, b < N; t: scratch of 6n limbs + mpn_sec_mul_itch(n, n) */
static void mont_mul(const he_fbase *f, mp_limb_t *r, const mp_limb_t *a, const mp_limb_t *b, mp_limb_t *t)
{
    const mp_size_t n = f->n;
    mp_limb_t *T = t, *u = t + 2 * n, *v = t + 4 * n, *scr = t + 6 * n;
    mpn_sec_mul(T, a, n, b, n, scr);          /* T = a b < N B^n                               */
    mpn_sec_mul(u, T, n, f->ninv, n, scr);    /* m = T (-N^-1) mod B^n: the low n limbs of u  */
    mpn_sec_mul(v, u, n, f->N, n, scr);       /* m N                                           */
    const mp_limb_t c = mpn_add_n(v, v, T, 2 * n); /* T + m N = 0 mod B^n, < 2 N B^n           */
    const mp_limb_t borrow = mpn_sub_n(r, v + n, f->N, n);
    mpn_cnd_add_n((1 - c) & borrow, r, r, f->N, n); /* below N already: undo the subtraction    */
}

static size_t scratch_limbs(mp_size_t n) { return (size_t)(6 * n + mpn_sec_mul_itch(n, n)); }

/* x's limbs, zero-padded to n */
static void limbs_of(mp_limb_t *out, mp_size_t n, const mpz_t x)
{
    memset(out, 0, (size_t)n * sizeof *out);
    mpz_export(out, NULL, -1, sizeof *out, 0, 0, x);
}

he_fbase *fbase_new(const mpz_t g, const mpz_t N, int ebits)
{
    he_fbase *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    const mp_size_t n = (mp_size_t)mpz_size(N);
    f->n = n;
    f->digits = (ebits + FB_W - 1) / FB_W;
    const size_t entries = (size_t)f->digits << FB_W;
    f->N = malloc(3 * (size_t)n * sizeof *f->N);
    f->tab = malloc(entries * (size_t)n * sizeof *f->tab);
    mp_limb_t *t = malloc((scratch_limbs(n) + 2 * (size_t)n) * sizeof *t);
    mpz_t R, x;
    mpz_inits(R, x, NULL);
    if (!f->N || !f->tab || !t) {
        free(t);
        mpz_clears(R, x, NULL);
        fbase_free(f);
        return NULL;
    }
    f->ninv = f->N + n;
    f->one = f->N + 2 * n;
    limbs_of(f->N, n, N);
    mpz_setbit(R, (mp_bitcnt_t)n * GMP_NUMB_BITS);
    mpz_invert(x, N, R);
    mpz_sub(x, R, x);
    limbs_of(f->ninv, n, x);
    mpz_set_ui(x, 1);
    limbs_of(f->one, n, x);
    /* base_i = g^(2^(FB_W i)) in Montgomery form; entry j of digit i = base_i^j */
    mp_limb_t *base = t + scratch_limbs(n), *scr = t;
    mpz_mul(x, g, R);
    mpz_mod(x, x, N);
    limbs_of(base, n, x);
    mpz_mod(x, R, N); /* 1 in Montgomery form */
    for (int i = 0; i < f->digits; i++) {
        mp_limb_t *row = f->tab + ((size_t)i << FB_W) * (size_t)n;
        limbs_of(row, n, x);
        for (int j = 1; j < (1 << FB_W); j++) mont_mul(f, row + (size_t)j * n, row + (size_t)(j - 1) * n, base, scr);
        mont_mul(f, base + n, row + (size_t)((1 << FB_W) - 1) * n, base, scr);
        memcpy(base, base + n, (size_t)n * sizeof *base);
    }
    free(t);
    mpz_clears(R, x, NULL);
    return f;
}

void fbase_free(he_fbase *f)
{
    if (!f) return;
    free(f->N);
    free(f->tab);
    free(f);
}

int fbase_pow(const he_fbase *f, mpz_t out, const mpz_t x)
{
    const mp_size_t n = f->n;
    const size_t xl = ((size_t)f->digits * FB_W + GMP_NUMB_BITS - 1) / GMP_NUMB_BITS + 1;
    if (mpz_sgn(x) < 0 || mpz_sizeinbase(x, 2) > (size_t)f->digits * FB_W) return -1;
    mp_limb_t *t = malloc((scratch_limbs(n) + 3 * (size_t)n + xl) * sizeof *t);
    if (!t) return -1;
    mp_limb_t *acc = t + scratch_limbs(n), *sel = acc + n, *tmp = sel + n, *e = tmp + n;
    memset(e, 0, xl * sizeof *e);
    mpz_export(e, NULL, -1, sizeof *e, 0, 0, x);
    for (int i = 0; i < f->digits; i++) {
        const size_t bit = (size_t)i * FB_W, l = bit / GMP_NUMB_BITS, s = bit % GMP_NUMB_BITS;
        mp_limb_t d = e[l] >> s;
        if (s + FB_W > GMP_NUMB_BITS) d |= e[l + 1] << (GMP_NUMB_BITS - s);
        d &= (1u << FB_W) - 1;
        mpn_sec_tabselect(i ? sel : acc, f->tab + ((size_t)i << FB_W) * (size_t)n, n, (mp_size_t)1 << FB_W, d);
        if (i) {
            mont_mul(f, tmp, acc, sel, t);
            memcpy(acc, tmp, (size_t)n * sizeof *acc);
        }
    }
    mont_mul(f, tmp, acc, f->one, t);
    mpz_import(out, (size_t)n, -1, sizeof *tmp, 0, 0, tmp);
    sodium_memzero(t, (scratch_limbs(n) + 3 * (size_t)n + xl) * sizeof *t); /* the exponent, partial powers */
    free(t);
    return 0;
}
