/* Secure aggregation (Bonawitz et al. 2017; SecAgg+ graphs of Bell et al. 2020) on Z_2^64.
 * See include/fedhpc/secagg.h for the protocol. All primitives are libsodium's. */
#include "fedhpc/secagg.h"
#include "fedhpc/rng.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#define PT_BYTES (8 + 16 * SHAMIR_K32 / 2 * 2) /* u, v, 5 + 5 shares = 88 */
/* Keystream is made and added in blocks of 8 KiB: the block, the zeros it is XORed from and
 * the vector's block (24 KiB) stay in a 32 KiB L1 data cache across all of a client's keys.
 * The stream does not depend on the block size (block b starts at ChaCha20 counter b * 128). */
#define PRG_WORDS 1024

static _Thread_local int64_t g_prg_bytes;
static const unsigned char k_zeros[PRG_WORDS * sizeof(uint64_t)]; /* keystream = ChaCha20 XOR 0 */

fh_status secagg_init(void)
{
    if (sodium_init() < 0) return fh_error_set(FH_EINTERNAL, "libsodium initialisation failed");
    return FH_OK;
}

int64_t secagg_prg_bytes(void) { return g_prg_bytes; }

/* ---- graph ------------------------------------------------------------------------------ */
static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

fh_status secagg_graph_build(secagg_graph *g, int32_t n, int32_t k, uint64_t seed, int64_t round)
{
    memset(g, 0, sizeof *g);
    if (n < 1) return fh_error_set(FH_EINPUT, "secagg: no clients");
    int32_t half = k > 0 ? (k + 1) / 2 : n;
    const int full = k <= 0 || 2 * (int64_t)half >= n - 1;
    g->n = n;
    g->deg = full ? n - 1 : 2 * half;
    g->nbr = malloc((size_t)n * (size_t)(g->deg ? g->deg : 1) * sizeof *g->nbr);
    FH_CHECK_ALLOC(g->nbr);
    if (full) {
        for (int32_t u = 0; u < n; u++) {
            int32_t *o = g->nbr + (size_t)u * g->deg, c = 0;
            for (int32_t v = 0; v < n; v++)
                if (v != u) o[c++] = v;
        }
        return FH_OK;
    }
    uint32_t *perm = malloc((size_t)n * sizeof *perm);
    int32_t *pos = malloc((size_t)n * sizeof *pos);
    if (!perm || !pos) {
        free(perm);
        free(pos);
        secagg_graph_free(g);
        return fh_error_set(FH_ENOMEM, "out of memory for the secagg graph");
    }
    for (int32_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    rng_t r = rng_stream(seed, 0, (uint64_t)round, RNG_SECAGG);
    rng_shuffle_u32(&r, perm, (size_t)n);
    for (int32_t i = 0; i < n; i++) pos[perm[i]] = i;
    for (int32_t u = 0; u < n; u++) {
        int32_t *o = g->nbr + (size_t)u * g->deg, c = 0;
        for (int32_t j = 1; j <= half; j++) {
            o[c++] = (int32_t)perm[(pos[u] + j) % n];
            o[c++] = (int32_t)perm[(pos[u] - j + n) % n];
        }
        qsort(o, (size_t)g->deg, sizeof *o, cmp_i32);
    }
    free(perm);
    free(pos);
    return FH_OK;
}

void secagg_graph_free(secagg_graph *g)
{
    free(g->nbr);
    memset(g, 0, sizeof *g);
}

int32_t secagg_graph_slot(const secagg_graph *g, int32_t u, int32_t v)
{
    const int32_t *o = g->nbr + (size_t)u * g->deg;
    int32_t lo = 0, hi = g->deg - 1;
    while (lo <= hi) {
        int32_t mid = (lo + hi) / 2;
        if (o[mid] == v) return mid;
        if (o[mid] < v) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

/* ---- primitives ---------------------------------------------------------------------------- */
/* v[j] += b[j] (sign > 0) or v[j] -= b[j], mod 2^64: AVX2 where the CPU has it, else SSE2
 * (x86-64 baseline), else plain C. Same result either way (integer adds). */
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2"))) static void add_avx2(uint64_t *v, const uint64_t *b, int64_t w, int sign)
{
    int64_t j = 0;
    if (sign > 0)
        for (; j + 4 <= w; j += 4)
            _mm256_storeu_si256((__m256i *)(v + j), _mm256_add_epi64(_mm256_loadu_si256((const __m256i *)(v + j)),
                                                                     _mm256_loadu_si256((const __m256i *)(b + j))));
    else
        for (; j + 4 <= w; j += 4)
            _mm256_storeu_si256((__m256i *)(v + j), _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)(v + j)),
                                                                     _mm256_loadu_si256((const __m256i *)(b + j))));
    for (; j < w; j++) v[j] = sign > 0 ? v[j] + b[j] : v[j] - b[j];
}

static void add_sse2(uint64_t *v, const uint64_t *b, int64_t w, int sign)
{
    int64_t j = 0;
    if (sign > 0)
        for (; j + 2 <= w; j += 2)
            _mm_storeu_si128((__m128i *)(v + j), _mm_add_epi64(_mm_loadu_si128((const __m128i *)(v + j)),
                                                               _mm_loadu_si128((const __m128i *)(b + j))));
    else
        for (; j + 2 <= w; j += 2)
            _mm_storeu_si128((__m128i *)(v + j), _mm_sub_epi64(_mm_loadu_si128((const __m128i *)(v + j)),
                                                               _mm_loadu_si128((const __m128i *)(b + j))));
    for (; j < w; j++) v[j] = sign > 0 ? v[j] + b[j] : v[j] - b[j];
}

static void add_words(uint64_t *v, const uint64_t *b, int64_t w, int sign)
{
    static _Thread_local int avx2 = -1;
    if (avx2 < 0) avx2 = __builtin_cpu_supports("avx2") ? 1 : 0; /* same answer in every thread */
    if (avx2) add_avx2(v, b, w, sign);
    else add_sse2(v, b, w, sign);
}
#else
static void add_words(uint64_t *v, const uint64_t *b, int64_t w, int sign)
{
    if (sign > 0)
        for (int64_t j = 0; j < w; j++) v[j] += b[j]; /* little-endian words */
    else
        for (int64_t j = 0; j < w; j++) v[j] -= b[j];
}
#endif

void secagg_prg_add(const uint8_t key[32], int64_t round, int sign, uint64_t *vec, int64_t len)
{
    uint64_t buf[PRG_WORDS];
    uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
    for (int i = 0; i < 8 && i < (int)sizeof nonce; i++) nonce[i] = (uint8_t)((uint64_t)round >> (8 * i));
    uint64_t ic = 0;
    for (int64_t o = 0; o < len; o += PRG_WORDS) {
        const int64_t w = len - o < PRG_WORDS ? len - o : PRG_WORDS;
        const size_t bytes = (size_t)w * sizeof(uint64_t);
        crypto_stream_chacha20_xor_ic((unsigned char *)buf, k_zeros, bytes, nonce, ic, key);
        ic += PRG_WORDS * sizeof(uint64_t) / 64;
        add_words(vec + o, buf, w, sign); /* little-endian words */
        g_prg_bytes += (int64_t)bytes;
    }
    sodium_memzero(buf, sizeof buf);
}

/* vec += sum_i sign_i * ChaCha20(key_i): the vector is walked once, in 8 KiB blocks, and every
 * key's keystream block is made into an L1-resident buffer and added to the vector's block
 * while both are in L1 (memory traffic of one pass over the vector, not one pass per key; no
 * keystream ever goes to memory). Same result as secagg_prg_add per key. */
static void prg_add_many(const uint8_t (*keys)[32], const int *signs, int nk, int64_t round,
                         uint64_t *vec, int64_t len)
{
    uint64_t buf[PRG_WORDS];
    uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
    for (int i = 0; i < 8 && i < (int)sizeof nonce; i++) nonce[i] = (uint8_t)((uint64_t)round >> (8 * i));
    uint64_t ic = 0;
    for (int64_t o = 0; o < len; o += PRG_WORDS) {
        const int64_t w = len - o < PRG_WORDS ? len - o : PRG_WORDS;
        const size_t bytes = (size_t)w * sizeof(uint64_t);
        uint64_t *v = vec + o;
        for (int k = 0; k < nk; k++) {
            crypto_stream_chacha20_xor_ic((unsigned char *)buf, k_zeros, bytes, nonce, ic, keys[k]);
            add_words(v, buf, w, signs[k]);
        }
        ic += PRG_WORDS * sizeof(uint64_t) / 64;
        g_prg_bytes += (int64_t)bytes * nk;
    }
    sodium_memzero(buf, sizeof buf);
}

/* The ChaCha20 key of pair (u, v): BLAKE2b(X25519(sk_u, pk_v) || s_pk of the lower index ||
 * s_pk of the higher). Both ends compute the same key. */
static fh_status pair_key(const uint8_t *sk_u, int32_t u, int32_t v, const uint8_t *pks,
                          uint8_t key[32])
{
    const uint8_t *pk_u = pks + (size_t)u * SECAGG_PK_BYTES + 32, *pk_v = pks + (size_t)v * SECAGG_PK_BYTES + 32;
    uint8_t q[crypto_scalarmult_BYTES];
    if (crypto_scalarmult(q, sk_u, pk_v) != 0)
        return fh_error_set(FH_EINPUT, "secagg: client %d sent a weak public key", v);
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, 32);
    crypto_generichash_update(&h, q, sizeof q);
    crypto_generichash_update(&h, u < v ? pk_u : pk_v, 32);
    crypto_generichash_update(&h, u < v ? pk_v : pk_u, 32);
    crypto_generichash_final(&h, key, 32);
    sodium_memzero(q, sizeof q);
    return FH_OK;
}

/* ---- client ----------------------------------------------------------------------------- */
fh_status secagg_client_setup(secagg_client *c, int32_t u, uint8_t *pk)
{
    FH_TRY(secagg_init());
    memset(c, 0, sizeof *c);
    c->id = u;
    if (crypto_box_keypair(c->c_pk, c->c_sk) != 0)
        return fh_error_set(FH_EINTERNAL, "secagg: crypto_box_keypair failed");
    randombytes_buf(c->s_sk, sizeof c->s_sk);
    if (crypto_scalarmult_base(c->s_pk, c->s_sk) != 0)
        return fh_error_set(FH_EINTERNAL, "secagg: crypto_scalarmult_base failed");
    randombytes_buf(c->b, sizeof c->b);
    memcpy(pk, c->c_pk, 32);
    memcpy(pk + 32, c->s_pk, 32);
    return FH_OK;
}

typedef struct {
    int32_t u, v;
    uint64_t sb[SHAMIR_K32], ss[SHAMIR_K32];
} share_pt;

fh_status secagg_client_share(const secagg_client *c, const secagg_graph *g, const uint8_t *pks,
                              int32_t t, uint8_t *ct)
{
    const int32_t deg = g->deg, u = c->id;
    if (t < 1 || t > deg) return fh_error_set(FH_EINPUT, "secagg: threshold %d not in [1, %d]", t, deg);
    uint64_t sb[SHAMIR_K32], ss[SHAMIR_K32];
    shamir_pack32(c->b, sb);
    shamir_pack32(c->s_sk, ss);
    uint64_t *xs = malloc((size_t)deg * sizeof *xs);
    uint64_t *shb = malloc((size_t)deg * SHAMIR_K32 * sizeof *shb);
    uint64_t *shs = malloc((size_t)deg * SHAMIR_K32 * sizeof *shs);
    fh_status st = xs && shb && shs ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory (secagg shares)");
    const int32_t *nb = g->nbr + (size_t)u * deg;
    for (int32_t i = 0; st == FH_OK && i < deg; i++) xs[i] = (uint64_t)nb[i] + 1;
    if (st == FH_OK) st = shamir_split(sb, SHAMIR_K32, t, deg, xs, shb);
    if (st == FH_OK) st = shamir_split(ss, SHAMIR_K32, t, deg, xs, shs);
    for (int32_t i = 0; st == FH_OK && i < deg; i++) {
        share_pt pt;
        memset(&pt, 0, sizeof pt);
        pt.u = u;
        pt.v = nb[i];
        memcpy(pt.sb, shb + (size_t)i * SHAMIR_K32, sizeof pt.sb);
        memcpy(pt.ss, shs + (size_t)i * SHAMIR_K32, sizeof pt.ss);
        uint8_t *o = ct + (size_t)i * SECAGG_CT_BYTES;
        randombytes_buf(o, crypto_box_NONCEBYTES);
        if (crypto_box_easy(o + crypto_box_NONCEBYTES, (const unsigned char *)&pt, sizeof pt, o,
                            pks + (size_t)nb[i] * SECAGG_PK_BYTES, c->c_sk) != 0)
            st = fh_error_set(FH_EINPUT, "secagg: cannot encrypt for client %d", nb[i]);
        sodium_memzero(&pt, sizeof pt);
    }
    if (xs) sodium_memzero(shb, (size_t)deg * SHAMIR_K32 * sizeof *shb);
    if (shs) sodium_memzero(shs, (size_t)deg * SHAMIR_K32 * sizeof *shs);
    free(xs);
    free(shb);
    free(shs);
    sodium_memzero(sb, sizeof sb);
    sodium_memzero(ss, sizeof ss);
    return st;
}

fh_status secagg_client_mask(const secagg_client *c, const secagg_graph *g, const uint8_t *pks,
                             int64_t round, uint64_t *vec, int64_t len)
{
    const int32_t u = c->id, nk = g->deg + 1;
    uint8_t(*keys)[32] = malloc((size_t)nk * sizeof *keys);
    int *signs = malloc((size_t)nk * sizeof *signs);
    fh_status st = keys && signs ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory (secagg masks)");
    if (st == FH_OK) {
        memcpy(keys[0], c->b, 32); /* the self mask */
        signs[0] = +1;
    }
    const int32_t *nb = g->nbr + (size_t)u * g->deg;
    for (int32_t i = 0; st == FH_OK && i < g->deg; i++) {
        st = pair_key(c->s_sk, u, nb[i], pks, keys[i + 1]);
        signs[i + 1] = u < nb[i] ? +1 : -1;
    }
    if (st == FH_OK) prg_add_many((const uint8_t(*)[32])keys, signs, nk, round, vec, len);
    if (keys) sodium_memzero(keys, (size_t)nk * sizeof *keys);
    free(keys);
    free(signs);
    return st;
}

typedef struct {
    int32_t owner, holder, kind, pad;
    uint64_t sh[SHAMIR_K32];
} resp_t;

fh_status secagg_client_unmask(const secagg_client *c, const secagg_graph *g, const uint8_t *pks,
                               const uint8_t *in_ct, const uint8_t *alive, uint8_t *resp)
{
    _Static_assert(sizeof(share_pt) + crypto_box_NONCEBYTES + crypto_box_MACBYTES == SECAGG_CT_BYTES,
                   "ciphertext size");
    _Static_assert(sizeof(resp_t) == SECAGG_RESP_BYTES, "response size");
    const int32_t v = c->id;
    const int32_t *nb = g->nbr + (size_t)v * g->deg;
    for (int32_t i = 0; i < g->deg; i++) {
        const int32_t u = nb[i];
        const uint8_t *ci = in_ct + (size_t)i * SECAGG_CT_BYTES;
        share_pt pt;
        if (crypto_box_open_easy((unsigned char *)&pt, ci + crypto_box_NONCEBYTES,
                                 SECAGG_CT_BYTES - crypto_box_NONCEBYTES, ci,
                                 pks + (size_t)u * SECAGG_PK_BYTES, c->c_sk) != 0 ||
            pt.u != u || pt.v != v)
            return fh_error_set(FH_EINPUT, "secagg: share from client %d to %d does not authenticate", u, v);
        resp_t r;
        memset(&r, 0, sizeof r);
        r.owner = u;
        r.holder = v;
        r.kind = alive[u] ? 0 : 1; /* survivor: self-mask seed share; dropped: mask-key share */
        memcpy(r.sh, alive[u] ? pt.sb : pt.ss, sizeof r.sh);
        memcpy(resp + (size_t)i * SECAGG_RESP_BYTES, &r, sizeof r);
        sodium_memzero(&pt, sizeof pt);
    }
    return FH_OK;
}

/* ---- aggregator ------------------------------------------------------------------------- */
fh_status secagg_server_unmask(const secagg_graph *g, const uint8_t *pks, const uint8_t *alive,
                               int32_t t, const uint8_t *resp, int64_t nresp, int64_t round,
                               uint64_t *sum, int64_t len, int *aborted)
{
    const int32_t n = g->n, deg = g->deg;
    *aborted = 0;
    int32_t responders = 0; /* survivors that answered (a late dropper is a survivor that did not) */
    int32_t *cnt = fh_calloc((size_t)n, sizeof *cnt);
    uint8_t *answered = fh_calloc((size_t)n, 1);
    uint64_t *xs = malloc((size_t)n * (size_t)(deg ? deg : 1) * sizeof *xs);
    uint64_t *sh = malloc((size_t)n * (size_t)(deg ? deg : 1) * SHAMIR_K32 * sizeof *sh);
    fh_status st = cnt && answered && xs && sh ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory (secagg unmask)");
    /* collect the shares of each owner (one per holder; kind must match what the owner needs) */
    for (int64_t i = 0; st == FH_OK && i < nresp; i++) {
        resp_t r;
        memcpy(&r, resp + (size_t)i * SECAGG_RESP_BYTES, sizeof r);
        if (r.owner < 0 || r.owner >= n || r.holder < 0 || r.holder >= n || !alive[r.holder] ||
            r.kind != (alive[r.owner] ? 0 : 1) || secagg_graph_slot(g, r.holder, r.owner) < 0) {
            st = fh_error_set(FH_EINPUT, "secagg: malformed unmasking answer");
            break;
        }
        const int32_t k = cnt[r.owner];
        for (int32_t j = 0; j < k; j++)
            if (xs[(size_t)r.owner * deg + j] == (uint64_t)r.holder + 1)
                st = fh_error_set(FH_EINPUT, "secagg: duplicate unmasking answer");
        if (st != FH_OK) break;
        xs[(size_t)r.owner * deg + k] = (uint64_t)r.holder + 1;
        memcpy(sh + ((size_t)r.owner * deg + k) * SHAMIR_K32, r.sh, sizeof r.sh);
        cnt[r.owner] = k + 1;
        responders += !answered[r.holder];
        answered[r.holder] = 1;
    }
    /* abort, revealing nothing, unless every needed secret has t shares (from the responders:
     * a survivor's self mask is removed whether or not it answered itself) */
    int abort_round = responders < t;
    for (int32_t u = 0; st == FH_OK && u < n && !abort_round; u++) {
        int needed = alive[u];
        if (!alive[u]) /* a dropped client's key is needed if a survivor masked towards it */
            for (int32_t i = 0; i < deg; i++) needed |= alive[g->nbr[(size_t)u * deg + i]];
        if (needed && cnt[u] < t) abort_round = 1;
    }
    if (st == FH_OK && abort_round) {
        memset(sum, 0, (size_t)len * sizeof *sum);
        *aborted = 1;
    }
    for (int32_t u = 0; st == FH_OK && !abort_round && u < n; u++) {
        if (cnt[u] == 0) continue;
        uint64_t sec[SHAMIR_K32];
        uint8_t s32[32];
        st = shamir_combine(xs + (size_t)u * deg, sh + (size_t)u * deg * SHAMIR_K32, t, SHAMIR_K32, sec);
        if (st != FH_OK) break;
        shamir_unpack32(sec, s32);
        if (alive[u]) {
            secagg_prg_add(s32, round, -1, sum, len);
        } else {
            uint8_t pk[32];
            if (crypto_scalarmult_base(pk, s32) != 0 ||
                sodium_memcmp(pk, pks + (size_t)u * SECAGG_PK_BYTES + 32, 32) != 0) {
                st = fh_error_set(FH_EINPUT, "secagg: reconstructed key of client %d does not match", u);
                break;
            }
            for (int32_t i = 0; st == FH_OK && i < deg; i++) {
                const int32_t v = g->nbr[(size_t)u * deg + i];
                if (!alive[v]) continue;
                uint8_t key[32];
                st = pair_key(s32, u, v, pks, key);
                /* v added sign(v, u) = +1 if v < u; remove it */
                if (st == FH_OK) secagg_prg_add(key, round, v < u ? -1 : +1, sum, len);
                sodium_memzero(key, sizeof key);
            }
        }
        sodium_memzero(s32, sizeof s32);
        sodium_memzero(sec, sizeof sec);
    }
    free(cnt);
    free(answered);
    free(xs);
    free(sh);
    return st;
}
