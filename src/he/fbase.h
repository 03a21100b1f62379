/* Fixed-base exponentiation modulo an odd N (src/he/fbase.c): g^x mod N for one base g and secret
 * exponents x of up to `ebits` bits, by a comb over a precomputed table (docs/he.md "Fixed-base
 * encryption"). Side-channel silent like mpz_powm_sec: the table entry of each w-bit digit is read
 * with mpn_sec_tabselect (every entry is touched), products with mpn_sec_mul, Montgomery reduction
 * with mpn_sec_mul, mpn_add_n and mpn_cnd_add_n; the sequence of operations depends on the sizes
 * only. Private to src/he. */
#ifndef FEDHPC_HE_FBASE_H
#define FEDHPC_HE_FBASE_H

#include <gmp.h>

enum { FB_W = 5 };             /* digit bits: 32 entries a digit (fastest at 2048 and 3072 bits) */

typedef struct he_fbase {
    mp_size_t n;               /* limbs of N                                                      */
    int digits;                /* ceil(ebits / FB_W)                                              */
    mp_limb_t *N;              /* [n] the modulus                                                 */
    mp_limb_t *ninv;           /* [n] -N^-1 mod B^n (Montgomery)                                  */
    mp_limb_t *one;            /* [n] 1 (to leave the Montgomery form)                            */
    mp_limb_t *tab;            /* [digits][2^FB_W][n] g^(j 2^(FB_W i)) B^n mod N                  */
} he_fbase;

/* Table for base g (0 < g < N, N odd) and exponents below 2^ebits. NULL if out of memory. */
he_fbase *fbase_new(const mpz_t g, const mpz_t N, int ebits);
void fbase_free(he_fbase *f);
/* out = g^x mod N for 0 <= x < 2^ebits: 0, or -1 if x is out of range or scratch memory is not
 * available (out unchanged). */
int fbase_pow(const he_fbase *f, mpz_t out, const mpz_t x);

#endif
