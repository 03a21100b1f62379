/* Paillier encryption over GMP with g = n + 1 (include/fedhpc/he.h): key generation, encryption
 * (plain and CRT for key holders), CRT decryption, homomorphic addition and scalar
 * multiplication, fixed-size serialization, and the packing of int64 words into plaintexts.
 * Randomness from libsodium only; big integers from GMP only. */
#include "fedhpc/he.h"

#include "fbase.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(unsigned long) == 8, "the packing assumes 64-bit unsigned long (mpz_set_ui)");
_Static_assert(sizeof(mp_limb_t) == 8, "the packing assumes 64-bit GMP limbs");

/* Overwrite x's limbs (a secret) with zeros; x = 0. */
static void mpz_wipe(mpz_t x)
{
    const size_t n = mpz_size(x);
    if (n) sodium_memzero(mpz_limbs_modify(x, (mp_size_t)n), n * sizeof(mp_limb_t));
    mpz_set_ui(x, 0);
}

/* bytes of x's magnitude (mpz_sizeinbase has no base 256) */
static size_t nbytes(const mpz_t x) { return (mpz_sizeinbase(x, 2) + 7) / 8; }

/* x = a uniform random integer of `bits` bits (at most 8192: [he] key_bits' range) from
 * randombytes_buf (top bits not forced). */
static void rand_bits(mpz_t x, int bits)
{
    uint8_t b[1024];
    if (bits > 8192) bits = 8192;
    const size_t nb = ((size_t)bits + 7) / 8;
    randombytes_buf(b, nb);
    if (bits % 8) b[0] &= (uint8_t)((1u << (bits % 8)) - 1);
    mpz_import(x, nb, 1, 1, 1, 0, b);
    sodium_memzero(b, nb);
}

/* r uniform in [1, n) with gcd(r, n) = 1 (rejection sampling). */
static void rand_unit(const he_pub *pub, mpz_t r)
{
    mpz_t g;
    mpz_init(g);
    for (;;) {
        rand_bits(r, pub->bits);
        if (mpz_sgn(r) == 0 || mpz_cmp(r, pub->n) >= 0) continue;
        mpz_gcd(g, r, pub->n);
        if (mpz_cmp_ui(g, 1) == 0) break;
    }
    mpz_clear(g);
}

static void pub_init_from_n(he_pub *pub, const mpz_t n)
{
    mpz_init_set(pub->n, n);
    mpz_init(pub->n2);
    mpz_mul(pub->n2, n, n);
    pub->bits = (int)mpz_sizeinbase(n, 2);
    pub->ct_bytes = ((size_t)2 * (size_t)pub->bits + 7) / 8;
    uint8_t b[1024] = {0}; /* n has at most 8192 bits: every caller checks */
    const size_t nb = ((size_t)pub->bits + 7) / 8;
    mpz_export(b + nb - nbytes(n), NULL, 1, 1, 1, 0, n);
    crypto_generichash(pub->id, HE_ID_BYTES, b, nb, NULL, 0);
}

fh_status he_pub_from_n(const mpz_t n, he_pub *pub)
{
    if (mpz_sizeinbase(n, 2) < 64 || mpz_sizeinbase(n, 2) > 8192 || mpz_even_p(n))
        return fh_error_set(FH_EINPUT, "Paillier public key: n must be odd, of 64 to 8192 bits");
    pub_init_from_n(pub, n);
    return FH_OK;
}

void he_pub_copy(he_pub *dst, const he_pub *src) { pub_init_from_n(dst, src->n); }

void he_pub_free(he_pub *pub)
{
    mpz_clear(pub->n);
    mpz_clear(pub->n2);
    memset(pub, 0, sizeof *pub);
}

/* h = L_p((n+1)^(p-1) mod p^2)^-1 mod p with L_p(x) = (x - 1) / p. */
static int hfun(mpz_t h, const mpz_t n, const mpz_t p, const mpz_t p2)
{
    mpz_t g, e;
    mpz_inits(g, e, NULL);
    mpz_add_ui(g, n, 1);
    mpz_sub_ui(e, p, 1);
    mpz_powm_sec(h, g, e, p2);
    mpz_sub_ui(h, h, 1);
    mpz_divexact(h, h, p);
    const int ok = mpz_invert(h, h, p) != 0;
    mpz_clears(g, e, NULL);
    return ok;
}

/* The fixed-base table of a generator of the subgroup of order p - 1 of Z*_{p^2} (the n-th
 * residues' half mod p^2), or NULL when p - 1 does not split into primes below 2^18 (keygen's 2 k < 2^18) and one
 * probable prime. The subgroup is the image of Z*_p under a -> a^p mod p^2 (the lift), so the
 * lift of a generator h of Z*_p generates it; h is the least h >= 2 with h^((p-1)/l) != 1 mod p
 * for every prime l | p - 1. */
static he_fbase *lift_table(const mpz_t p, const mpz_t p2)
{
    enum { MAXF = 64 };
    mpz_t rest, f[MAXF], e, h;
    int nf = 0, ok = 1;
    mpz_inits(rest, e, h, NULL);
    mpz_sub_ui(rest, p, 1);
    for (unsigned long l = 2; l < (1ul << 18) && ok; l += 1 + (l > 2)) {
        if (!mpz_divisible_ui_p(rest, l)) continue;
        if (nf == MAXF) { ok = 0; break; }
        mpz_init_set_ui(f[nf++], l);
        do mpz_divexact_ui(rest, rest, l); while (mpz_divisible_ui_p(rest, l));
    }
    if (ok && mpz_cmp_ui(rest, 1) != 0) {
        ok = nf < MAXF && mpz_probab_prime_p(rest, 30);
        if (ok) mpz_init_set(f[nf++], rest);
    }
    he_fbase *t = NULL;
    for (unsigned long hv = 2; ok && hv < 1000 && !t; hv++) {
        int gen = 1;
        for (int i = 0; i < nf && gen; i++) {
            mpz_sub_ui(e, p, 1);
            mpz_divexact(e, e, f[i]);
            mpz_set_ui(h, hv);
            mpz_powm_sec(h, h, e, p);
            gen = mpz_cmp_ui(h, 1) != 0;
        }
        if (!gen) continue;
        mpz_set_ui(h, hv);
        mpz_powm_sec(h, h, p, p2);
        t = fbase_new(h, p2, (int)mpz_sizeinbase(p, 2));
        break;
    }
    for (int i = 0; i < nf; i++) mpz_clear(f[i]);
    mpz_wipe(rest);
    mpz_clears(rest, e, h, NULL);
    return t;
}

fh_status he_key_from_primes(const mpz_t p, const mpz_t q, he_key *k)
{
    memset(k, 0, sizeof *k);
    if (mpz_cmp_ui(p, 3) < 0 || mpz_cmp_ui(q, 3) < 0 || mpz_cmp(p, q) == 0 || !mpz_probab_prime_p(p, 40) ||
        !mpz_probab_prime_p(q, 40) || mpz_sizeinbase(p, 2) + mpz_sizeinbase(q, 2) > 8192)
        return fh_error_set(FH_EINPUT, "Paillier key: p and q must be two distinct odd primes (n of at most 8192 bits)");
    mpz_t n, phi, g;
    mpz_inits(n, phi, g, NULL);
    mpz_mul(n, p, q);
    mpz_sub_ui(phi, p, 1);
    mpz_sub_ui(g, q, 1);
    mpz_mul(phi, phi, g);
    mpz_gcd(g, n, phi);
    const int coprime = mpz_cmp_ui(g, 1) == 0;
    if (!coprime) {
        mpz_clears(n, phi, g, NULL);
        return fh_error_set(FH_EINPUT, "Paillier key: gcd(pq, (p-1)(q-1)) != 1");
    }
    pub_init_from_n(&k->pub, n);
    mpz_inits(k->p, k->q, k->p2, k->q2, k->hp, k->hq, k->qinv, k->q2inv, NULL);
    mpz_set(k->p, p);
    mpz_set(k->q, q);
    mpz_mul(k->p2, p, p);
    mpz_mul(k->q2, q, q);
    int ok = hfun(k->hp, n, k->p, k->p2) && hfun(k->hq, n, k->q, k->q2);
    ok = ok && mpz_invert(k->qinv, k->q, k->p) && mpz_invert(k->q2inv, k->q2, k->p2);
    mpz_clears(n, phi, g, NULL);
    if (!ok) {
        he_key_free(k);
        return fh_error_set(FH_EINPUT, "Paillier key: not invertible (not a valid key)");
    }
    k->fb[0] = lift_table(k->p, k->p2);
    k->fb[1] = k->fb[0] ? lift_table(k->q, k->q2) : NULL;
    if (!k->fb[1]) fbase_free(k->fb[0]), k->fb[0] = NULL;
    return FH_OK;
}

int he_key_fixed_base(const he_key *k) { return k->fb[0] != NULL && k->fb[1] != NULL; }

/* a random prime of exactly `bits` bits with the top two bits set */
static void rand_prime(mpz_t p, int bits)
{
    for (;;) {
        rand_bits(p, bits);
        mpz_setbit(p, (mp_bitcnt_t)bits - 1);
        mpz_setbit(p, (mp_bitcnt_t)bits - 2);
        mpz_setbit(p, 0);
        mpz_nextprime(p, p);
        if ((int)mpz_sizeinbase(p, 2) == bits && mpz_probab_prime_p(p, 40)) return;
    }
}

/* a random prime p of exactly `bits` bits with the top two bits set and p - 1 = 2 k p', p' a
 * random prime of bits - 17 bits, k < 2^17: k from a random start in the range that keeps p's top
 * bits, stepped until 2 k p' + 1 is a probable prime */
static void rand_prime_2kp(mpz_t p, int bits)
{
    mpz_t q, lo, hi, k;
    mpz_inits(q, lo, hi, k, NULL);
    for (int found = 0; !found;) {
        rand_prime(q, bits - 17);
        mpz_mul_2exp(q, q, 1); /* 2 p' */
        mpz_set_ui(lo, 3);
        mpz_mul_2exp(lo, lo, (mp_bitcnt_t)bits - 2);
        mpz_cdiv_q(lo, lo, q); /* 2 k p' >= 3 2^(bits-2) */
        mpz_set_ui(hi, 0);
        mpz_setbit(hi, (mp_bitcnt_t)bits);
        mpz_sub_ui(hi, hi, 2);
        mpz_fdiv_q(hi, hi, q); /* 2 k p' + 1 < 2^bits */
        mpz_sub(hi, hi, lo);   /* k - lo in [0, hi] */
        rand_bits(k, (int)mpz_sizeinbase(hi, 2) + 8);
        mpz_mod(k, k, hi);
        for (unsigned long tries = 0; !found && mpz_cmp_ui(hi, tries) > 0; tries++) {
            mpz_add_ui(k, k, 1);
            if (mpz_cmp(k, hi) > 0) mpz_set_ui(k, 0);
            mpz_add(p, k, lo);
            mpz_mul(p, p, q);
            mpz_add_ui(p, p, 1);
            found = mpz_probab_prime_p(p, 25) != 0;
        }
    }
    mpz_wipe(q);
    mpz_clears(q, lo, hi, k, NULL);
}

fh_status he_keygen(int bits, he_key *k)
{
    if (bits < 512 || bits > 8192 || bits % 16)
        return fh_error_set(FH_EINPUT, "Paillier key_bits %d: expected a multiple of 16 in [512, 8192]", bits);
    mpz_t p, q;
    mpz_inits(p, q, NULL);
    fh_status st;
    for (;;) {
        rand_prime_2kp(p, bits / 2);
        do rand_prime_2kp(q, bits / 2); while (mpz_cmp(p, q) == 0);
        if (mpz_cmp(p, q) < 0) mpz_swap(p, q);
        st = he_key_from_primes(p, q, k);
        if (st != FH_OK || (int)mpz_sizeinbase(k->pub.n, 2) == bits) break;
        he_key_free(k);
    }
    /* overwrite the primes' limbs before their memory goes back (copies GMP made while computing
     * are out of reach: a limitation of keeping secrets in mpz_t) */
    mpz_wipe(p);
    mpz_wipe(q);
    mpz_clears(p, q, NULL);
    return st;
}

void he_key_free(he_key *k)
{
    if (!k->pub.bits) return;
    he_pub_free(&k->pub);
    fbase_free(k->fb[0]);
    fbase_free(k->fb[1]);
    mpz_t *s[] = {&k->p, &k->q, &k->p2, &k->q2, &k->hp, &k->hq, &k->qinv, &k->q2inv};
    for (size_t i = 0; i < sizeof s / sizeof *s; i++) {
        mpz_wipe(*s[i]);
        mpz_clear(*s[i]);
    }
    memset(k, 0, sizeof *k);
}

/* c = (1 + m n) x mod n^2 for x = r^n mod n^2 */
static void finish_enc(const he_pub *pub, mpz_t c, const mpz_t m, const mpz_t x)
{
    mpz_t t;
    mpz_init(t);
    mpz_mul(t, m, pub->n);
    mpz_add_ui(t, t, 1);
    mpz_mul(c, t, x);
    mpz_mod(c, c, pub->n2);
    mpz_clear(t);
}

static fh_status check_m(const he_pub *pub, const mpz_t m)
{
    if (mpz_sgn(m) < 0 || mpz_cmp(m, pub->n) >= 0)
        return fh_error_set(FH_EINPUT, "Paillier: plaintext out of range [0, n)");
    return FH_OK;
}

static fh_status check_r(const he_pub *pub, const mpz_t r)
{
    mpz_t g;
    mpz_init(g);
    mpz_gcd(g, r, pub->n);
    const int ok = mpz_sgn(r) > 0 && mpz_cmp(r, pub->n) < 0 && mpz_cmp_ui(g, 1) == 0;
    mpz_clear(g);
    return ok ? FH_OK : fh_error_set(FH_EINPUT, "Paillier: r must be a unit in [1, n)");
}

fh_status he_encrypt_r(const he_pub *pub, mpz_t c, const mpz_t m, const mpz_t r)
{
    FH_TRY(check_m(pub, m));
    FH_TRY(check_r(pub, r));
    mpz_t x;
    mpz_init(x);
    mpz_powm(x, r, pub->n, pub->n2); /* public exponent n; r is the secret, but a fresh one */
    finish_enc(pub, c, m, x);
    mpz_clear(x);
    return FH_OK;
}

fh_status he_encrypt(const he_pub *pub, mpz_t c, const mpz_t m)
{
    FH_TRY(check_m(pub, m));
    mpz_t r;
    mpz_init(r);
    rand_unit(pub, r);
    fh_status st = he_encrypt_r(pub, c, m, r);
    mpz_wipe(r);
    mpz_clear(r);
    return st;
}

/* x uniform in [1, p) (p an odd prime, so a unit) by rejection over randombytes_buf */
static void rand_below(mpz_t x, const mpz_t p)
{
    const int bits = (int)mpz_sizeinbase(p, 2);
    do rand_bits(x, bits); while (mpz_sgn(x) == 0 || mpz_cmp(x, p) >= 0);
}

/* c = (1 + m n) x mod n^2 with x the CRT combination of the halves xa mod p^2, xb mod q^2 (wiped) */
static void crt_finish(const he_key *k, mpz_t c, const mpz_t m, mpz_t xa, mpz_t xb)
{
    mpz_t x;
    mpz_init(x);
    /* x = xb + q^2 ((xa - xb) (q^2)^-1 mod p^2) */
    mpz_sub(x, xa, xb);
    mpz_mul(x, x, k->q2inv);
    mpz_mod(x, x, k->p2);
    mpz_mul(x, x, k->q2);
    mpz_add(x, x, xb);
    finish_enc(&k->pub, c, m, x);
    mpz_wipe(xa);
    mpz_wipe(xb);
    mpz_wipe(x);
    mpz_clear(x);
}

fh_status he_encrypt_crt_ab(const he_key *k, mpz_t c, const mpz_t m, const mpz_t a, const mpz_t b)
{
    const he_pub *pub = &k->pub;
    FH_TRY(check_m(pub, m));
    if (mpz_sgn(a) <= 0 || mpz_cmp(a, k->p) >= 0 || mpz_sgn(b) <= 0 || mpz_cmp(b, k->q) >= 0)
        return fh_error_set(FH_EINPUT, "Paillier: a must be in [1, p) and b in [1, q)");
    mpz_t xa, xb;
    mpz_inits(xa, xb, NULL);
    mpz_powm_sec(xa, a, k->p, k->p2); /* a^p mod p^2: the lift of a of order dividing p - 1 */
    mpz_powm_sec(xb, b, k->q, k->q2);
    crt_finish(k, c, m, xa, xb);
    mpz_clears(xa, xb, NULL);
    return FH_OK;
}

fh_status he_encrypt_crt_r(const he_key *k, mpz_t c, const mpz_t m, const mpz_t r)
{
    FH_TRY(check_m(&k->pub, m));
    FH_TRY(check_r(&k->pub, r));
    /* r^n mod p^2 depends on r mod p only and equals (r^q mod p)^p mod p^2; likewise for q */
    mpz_t a, b;
    mpz_inits(a, b, NULL);
    mpz_mod(a, r, k->p);
    mpz_powm_sec(a, a, k->q, k->p);
    mpz_mod(b, r, k->q);
    mpz_powm_sec(b, b, k->p, k->q);
    fh_status st = he_encrypt_crt_ab(k, c, m, a, b);
    mpz_wipe(a);
    mpz_wipe(b);
    mpz_clears(a, b, NULL);
    return st;
}

/* x uniform in [0, p - 1): rand_below's [1, p) shifted down */
static void rand_exponent(mpz_t x, const mpz_t p)
{
    rand_below(x, p);
    mpz_sub_ui(x, x, 1);
}

fh_status he_encrypt_crt(const he_key *k, mpz_t c, const mpz_t m)
{
    FH_TRY(check_m(&k->pub, m));
    if (he_key_fixed_base(k)) {
        mpz_t x, xa, xb;
        mpz_inits(x, xa, xb, NULL);
        rand_exponent(x, k->p);
        int ok = fbase_pow(k->fb[0], xa, x) == 0;
        rand_exponent(x, k->q);
        ok = ok && fbase_pow(k->fb[1], xb, x) == 0;
        mpz_wipe(x);
        if (ok) crt_finish(k, c, m, xa, xb);
        mpz_clears(x, xa, xb, NULL);
        return ok ? FH_OK : fh_error_set(FH_ENOMEM, "Paillier: out of memory (fixed-base scratch)");
    }
    mpz_t a, b;
    mpz_inits(a, b, NULL);
    rand_below(a, k->p);
    rand_below(b, k->q);
    fh_status st = he_encrypt_crt_ab(k, c, m, a, b);
    mpz_wipe(a);
    mpz_wipe(b);
    mpz_clears(a, b, NULL);
    return st;
}

/* m_p = L_p(c^(p-1) mod p^2) h mod p */
static void dec_half(mpz_t mp, const mpz_t c, const mpz_t p, const mpz_t p2, const mpz_t h)
{
    mpz_t e, x;
    mpz_inits(e, x, NULL);
    mpz_sub_ui(e, p, 1);
    mpz_mod(x, c, p2);
    mpz_powm_sec(x, x, e, p2);
    mpz_sub_ui(x, x, 1);
    mpz_divexact(x, x, p);
    mpz_mul(x, x, h);
    mpz_mod(mp, x, p);
    mpz_clears(e, x, NULL);
}

/* CRT decryption of a ciphertext known to be in range */
static void dec_raw(const he_key *k, mpz_t m, const mpz_t c)
{
    mpz_t mp, mq;
    mpz_inits(mp, mq, NULL);
    dec_half(mp, c, k->p, k->p2, k->hp);
    dec_half(mq, c, k->q, k->q2, k->hq);
    /* m = mq + q ((mp - mq) q^-1 mod p) */
    mpz_sub(mp, mp, mq);
    mpz_mul(mp, mp, k->qinv);
    mpz_mod(mp, mp, k->p);
    mpz_mul(mp, mp, k->q);
    mpz_add(m, mp, mq);
    mpz_clears(mp, mq, NULL);
}

fh_status he_decrypt(const he_key *k, mpz_t m, const mpz_t c)
{
    const he_pub *pub = &k->pub;
    mpz_t mp, mq;
    mpz_inits(mp, mq, NULL);
    mpz_gcd(mp, c, pub->n);
    const int ok = mpz_sgn(c) > 0 && mpz_cmp(c, pub->n2) < 0 && mpz_cmp_ui(mp, 1) == 0;
    if (!ok) {
        mpz_clears(mp, mq, NULL);
        return fh_error_set(FH_EINPUT, "Paillier: not a ciphertext of this key (outside [1, n^2) or not a unit)");
    }
    mpz_clears(mp, mq, NULL);
    dec_raw(k, m, c);
    return FH_OK;
}

void he_add(const he_pub *pub, mpz_t c, const mpz_t a, const mpz_t b)
{
    mpz_mul(c, a, b);
    mpz_mod(c, c, pub->n2);
}

void he_mul_scalar(const he_pub *pub, mpz_t c, const mpz_t a, const mpz_t s)
{
    mpz_powm(c, a, s, pub->n2);
}

void he_ct_export(const he_pub *pub, uint8_t *out, const mpz_t c)
{
    const size_t len = nbytes(c);
    memset(out, 0, pub->ct_bytes);
    if (mpz_sgn(c) != 0 && len <= pub->ct_bytes) mpz_export(out + pub->ct_bytes - len, NULL, 1, 1, 1, 0, c);
}

fh_status he_ct_import(const he_pub *pub, mpz_t c, const uint8_t *in)
{
    mpz_import(c, pub->ct_bytes, 1, 1, 1, 0, in);
    if (mpz_sgn(c) == 0 || mpz_cmp(c, pub->n2) >= 0)
        return fh_error_set(FH_EINPUT, "Paillier: serialized ciphertext out of range [1, n^2)");
    return FH_OK;
}

size_t he_key_bytes(int bits) { return 2 * (((size_t)bits / 2 + 7) / 8); }

static void export_fixed(uint8_t *out, size_t len, const mpz_t x)
{
    memset(out, 0, len);
    const size_t l = nbytes(x);
    if (l <= len) mpz_export(out + len - l, NULL, 1, 1, 1, 0, x);
}

void he_key_export(const he_key *k, uint8_t *out)
{
    const size_t half = he_key_bytes(k->pub.bits) / 2;
    export_fixed(out, half, k->p);
    export_fixed(out + half, half, k->q);
}

fh_status he_key_import(int bits, const uint8_t *in, he_key *k)
{
    const size_t half = he_key_bytes(bits) / 2;
    mpz_t p, q;
    mpz_inits(p, q, NULL);
    mpz_import(p, half, 1, 1, 1, 0, in);
    mpz_import(q, half, 1, 1, 1, 0, in + half);
    fh_status st = he_key_from_primes(p, q, k);
    if (st == FH_OK && k->pub.bits != bits) {
        const int got = k->pub.bits;
        he_key_free(k);
        st = fh_error_set(FH_EINPUT, "Paillier key: n has %d bits, expected %d", got, bits);
    }
    mpz_wipe(p);
    mpz_wipe(q);
    mpz_clears(p, q, NULL);
    return st;
}

/* ---- packing ------------------------------------------------------------------------------ */
static int ceil_log2(int64_t m)
{
    int b = 0;
    while (b < 63 && ((int64_t)1 << b) < m) b++;
    return b;
}

fh_status he_pack_plan(int key_bits, int pack, int64_t max_summands, he_pack_plan_t *plan)
{
    if (max_summands < 1) max_summands = 1;
    const int s = HE_SLOT_WORD_BITS + ceil_log2(max_summands);
    const int fit = (key_bits - 1) / s;
    if (fit < 1 || pack > fit)
        return fh_error_set(FH_EINPUT,
                            "[he] pack = %d with key_bits = %d: a slot holds a 64-bit word plus %d headroom bits for "
                            "the sum of up to %lld clients (%d bits), so at most %d slots fit a plaintext "
                            "(slots * %d <= key_bits - 1 = %d); lower [he] pack (0 = as many as fit) or raise [he] key_bits",
                            pack, key_bits, s - HE_SLOT_WORD_BITS, (long long)max_summands, s, fit, s, key_bits - 1);
    plan->slot_bits = s;
    plan->slots = pack > 0 ? pack : fit;
    plan->max_summands = max_summands;
    return FH_OK;
}

void he_pack(const he_pack_plan_t *plan, const int64_t *x, int cnt, mpz_t m)
{
    mpz_set_ui(m, 0);
    for (int t = cnt - 1; t >= 0; t--) {
        mpz_mul_2exp(m, m, (mp_bitcnt_t)plan->slot_bits);
        mpz_add_ui(m, m, (unsigned long)((uint64_t)x[t] ^ ((uint64_t)1 << 63))); /* x + 2^63 */
    }
}

/* 0 ok, 1 bits beyond the slots / too many summands, 2 a slot out of range (no error set: also
 * called from OpenMP threads, and the error message buffer is shared) */
static int unpack_raw(const he_pack_plan_t *plan, const mpz_t m, int64_t summands, int64_t *x, int cnt)
{
    const int s = plan->slot_bits;
    if (summands > plan->max_summands || mpz_sizeinbase(m, 2) > (size_t)cnt * (size_t)s) return 1;
    mpz_t slot, hi;
    mpz_inits(slot, hi, NULL);
    int bad = 0;
    const uint64_t off = (summands & 1) ? (uint64_t)1 << 63 : 0; /* summands 2^63 mod 2^64 */
    for (int t = 0; t < cnt && !bad; t++) {
        mpz_tdiv_q_2exp(slot, m, (mp_bitcnt_t)t * (mp_bitcnt_t)s);
        mpz_tdiv_r_2exp(slot, slot, (mp_bitcnt_t)s);
        mpz_tdiv_q_2exp(hi, slot, 64);
        if (mpz_cmp_ui(hi, (unsigned long)summands) >= 0) bad = 2; /* a slot sum is < summands 2^64 */
        const uint64_t lo = mpz_size(slot) ? (uint64_t)mpz_getlimbn(slot, 0) : 0;
        x[t] = (int64_t)(lo - off);
    }
    mpz_clears(slot, hi, NULL);
    return bad;
}

static fh_status unpack_err(int code, int cnt)
{
    if (code == 1)
        return fh_error_set(FH_EINPUT, "Paillier: decrypted plaintext has bits beyond its %d slots (wrong key, or "
                            "more summands than [he] pack/key_bits allow)", cnt);
    if (code == 2) return fh_error_set(FH_EINPUT, "Paillier: decrypted slot out of range (wrong key, or an overflow)");
    if (code == 3)
        return fh_error_set(FH_EINPUT, "Paillier: a ciphertext is out of range [1, n^2) of this key (wrong key, or corrupted)");
    return FH_OK;
}

fh_status he_unpack(const he_pack_plan_t *plan, const mpz_t m, int64_t summands, int64_t *x, int cnt)
{
    return unpack_err(unpack_raw(plan, m, summands, x, cnt), cnt);
}

int64_t he_vec_cts(const he_pack_plan_t *plan, int64_t words) { return (words + plan->slots - 1) / plan->slots; }

size_t he_vec_bytes(const he_pub *pub, const he_pack_plan_t *plan, int64_t words)
{
    return HE_ID_BYTES + (size_t)he_vec_cts(plan, words) * pub->ct_bytes;
}

fh_status he_vec_decrypt(const he_key *k, const he_pack_plan_t *plan, const uint8_t *vec, int64_t words,
                         int64_t summands, int64_t c0, int64_t c1, int64_t *x)
{
    if (memcmp(vec, k->pub.id, HE_ID_BYTES) != 0) {
        char a[2 * HE_ID_BYTES + 1], b[2 * HE_ID_BYTES + 1];
        sodium_bin2hex(a, sizeof a, vec, HE_ID_BYTES);
        sodium_bin2hex(b, sizeof b, k->pub.id, HE_ID_BYTES);
        return fh_error_set(FH_EINPUT, "Paillier: the ciphertexts were encrypted under key %s, not this key %s (wrong key)",
                            a, b);
    }
    const uint8_t *cts = vec + HE_ID_BYTES;
    int code = 0;
#pragma omp parallel
    {
        mpz_t c, m;
        mpz_inits(c, m, NULL);
        int mine = 0;
#pragma omp for schedule(dynamic, 4)
        for (int64_t j = c0; j < c1; j++) {
            if (mine) continue;
            const int64_t w0 = j * plan->slots;
            const int cnt = (int)(words - w0 < plan->slots ? words - w0 : plan->slots);
            mpz_import(c, k->pub.ct_bytes, 1, 1, 1, 0, cts + (size_t)j * k->pub.ct_bytes);
            if (mpz_sgn(c) == 0 || mpz_cmp(c, k->pub.n2) >= 0) mine = 3;
            else {
                dec_raw(k, m, c);
                mine = unpack_raw(plan, m, summands, x + w0, cnt);
            }
        }
        mpz_clears(c, m, NULL);
#pragma omp critical(he_status)
        if (mine && !code) code = mine;
    }
    return unpack_err(code, plan->slots);
}
