/* fedhpc/secagg.h — secure aggregation (Bonawitz et al. 2017, SecAgg+ of Bell et al. 2020) over
 * the engine's fixed-point Z_2^64 encoding, and t-of-n Shamir secret sharing.
 *
 * Cryptography is libsodium only: X25519 (crypto_box_keypair, crypto_scalarmult) for key
 * agreement, BLAKE2b (crypto_generichash) to hash a shared point into a ChaCha20 key, ChaCha20
 * (crypto_stream_chacha20_xor_ic) to expand mask seeds into Z_2^64 vectors, and crypto_box
 * (X25519 + XSalsa20-Poly1305) to encrypt share payloads between clients. Secret keys and
 * self-mask seeds come from libsodium's CSPRNG (never from the public config seed). Shamir
 * sharing is over the prime field GF(2^61 - 1).
 *
 * One round of the protocol (n clients with round indices 0..n-1, neighbour graph G):
 *   1. every client u makes two X25519 key pairs (c: encryption, s: masking) and a 32-byte
 *      self-mask seed b_u; the aggregator relays the public keys to everyone;
 *   2. u splits s_sk_u and b_u t-of-deg(u) among its neighbours, encrypts each neighbour's
 *      share pair with crypto_box under (c_sk_u, c_pk_v), the aggregator relays them;
 *   3. u sends y_u = x_u + PRG(b_u) + sum_{v in G(u)} sign(u,v) PRG(KA(s_sk_u, s_pk_v))
 *      (sign +1 if u < v, -1 if u > v; all arithmetic mod 2^64) — pairwise masks cancel;
 *   4. the aggregator announces who sent (survivors); each survivor v decrypts its shares and
 *      reveals, for each neighbour u, the share of b_u if u survived, else of s_sk_u (never both);
 *   5. the aggregator reconstructs, removes survivors' self masks and the pairwise masks that
 *      survivors added towards dropped clients, and obtains the exact sum of survivors' x_u.
 * If any needed secret has fewer than t shares (too few surviving neighbours) the round aborts:
 * nothing is reconstructed, the masked inputs reveal nothing.
 *
 * No MPI here: the engine moves the byte strings with the comm layer.
 */
#ifndef FEDHPC_SECAGG_H
#define FEDHPC_SECAGG_H

#include "fedhpc/common.h"

#include <stdint.h>

/* ---- Shamir secret sharing over GF(p), p = 2^61 - 1 (src/privacy/shamir.c) ------------- */
#define SHAMIR_P 0x1FFFFFFFFFFFFFFFULL
/* Elements of a 32-byte secret (7 bytes an element). */
#define SHAMIR_K32 5

uint64_t shamir_mul(uint64_t a, uint64_t b);
uint64_t shamir_inv(uint64_t a); /* a != 0 */
/* Split k secret field elements (each < p) into n shares at x = xs[i] (distinct, non-zero,
 * < p) with threshold t (1 <= t <= n): shares[i * k + j] is share i of element j. The random
 * polynomial coefficients come from libsodium's CSPRNG. FH_EINPUT for bad t/n/xs. */
fh_status shamir_split(const uint64_t *secret, int k, int t, int n, const uint64_t *xs,
                       uint64_t *shares);
/* Reconstruct k elements from m >= t shares (xs[i], shares[i * k + j]) by Lagrange
 * interpolation at 0. With fewer than t shares the result is a uniformly random-looking
 * value (the caller must check m >= t). FH_EINPUT for duplicate/zero xs or m < 1. */
fh_status shamir_combine(const uint64_t *xs, const uint64_t *shares, int m, int k,
                         uint64_t *secret);
/* 32 bytes <-> SHAMIR_K32 field elements (56 bits each, zero padded). */
void shamir_pack32(const uint8_t in[32], uint64_t out[SHAMIR_K32]);
void shamir_unpack32(const uint64_t in[SHAMIR_K32], uint8_t out[32]);

/* ---- neighbour graph --------------------------------------------------------------------- */
typedef struct {
    int32_t n;      /* clients in the round                                     */
    int32_t deg;    /* neighbours of every client (n - 1 for the full graph)     */
    int32_t *nbr;   /* [n * deg] neighbours of client u at nbr[u * deg ..], sorted */
} secagg_graph;

/* Full graph (k <= 0 or k >= n - 1), or the SecAgg+ Harary graph H(n, k): clients placed on a
 * ring in a random order (permutation from rng_stream(seed, 0, round, RNG_SECAGG)), each
 * joined to its k/2 ring neighbours on each side (k rounded up to even). */
fh_status secagg_graph_build(secagg_graph *g, int32_t n, int32_t k, uint64_t seed, int64_t round);
void secagg_graph_free(secagg_graph *g);
/* Position of v among u's neighbours, or -1. */
int32_t secagg_graph_slot(const secagg_graph *g, int32_t u, int32_t v);

/* ---- clients and aggregator -------------------------------------------------------------- */
#define SECAGG_PK_BYTES 64   /* c_pk || s_pk                                       */
#define SECAGG_CT_BYTES 128  /* nonce(24) || box(MAC 16 + u, v, 2 x 5 shares = 88) */
#define SECAGG_RESP_BYTES 56 /* owner(4), holder(4), kind(4), pad(4), 5 x uint64  */

typedef struct {
    int32_t id;                /* round index u                              */
    uint8_t c_pk[32], c_sk[32]; /* encryption key pair (crypto_box)          */
    uint8_t s_pk[32], s_sk[32]; /* masking key pair (X25519)                 */
    uint8_t b[32];              /* self-mask seed                            */
} secagg_client;

/* libsodium initialisation (idempotent). FH_EINTERNAL if it fails. */
fh_status secagg_init(void);
/* Step 1: fresh keys and seed for client u; pk receives c_pk || s_pk (SECAGG_PK_BYTES). */
fh_status secagg_client_setup(secagg_client *c, int32_t u, uint8_t *pk);
/* Step 2: ct[i * SECAGG_CT_BYTES] is the encrypted share pair for the i-th neighbour of u.
 * pks: all n clients' public keys (n * SECAGG_PK_BYTES). t: threshold (1 <= t <= deg). */
fh_status secagg_client_share(const secagg_client *c, const secagg_graph *g, const uint8_t *pks,
                              int32_t t, uint8_t *ct);
/* Step 3: add the self mask and the pairwise masks to vec[len] (mod 2^64) in place. */
fh_status secagg_client_mask(const secagg_client *c, const secagg_graph *g, const uint8_t *pks,
                             int64_t round, uint64_t *vec, int64_t len);
/* Step 4: survivor v's answers. in_ct[i * SECAGG_CT_BYTES] is what the i-th neighbour u of v
 * encrypted for v; alive[n] says who sent a masked input. resp receives deg(v) answers of
 * SECAGG_RESP_BYTES. FH_EINPUT if a ciphertext does not authenticate. */
fh_status secagg_client_unmask(const secagg_client *c, const secagg_graph *g, const uint8_t *pks,
                               const uint8_t *in_ct, const uint8_t *alive, uint8_t *resp);
/* Step 5: the aggregator. sum[len] holds the wraparound sum of the survivors' masked inputs;
 * resp holds nresp answers from survivors; survivors that do not answer (late dropouts: their
 * input is in the sum) are unmasked from the others' answers. On success sum becomes the exact
 * sum of the survivors' inputs and *aborted = 0. If fewer than t survivors answered, or some
 * needed secret has fewer than t shares, *aborted = 1, sum is zeroed and FH_OK is returned. */
fh_status secagg_server_unmask(const secagg_graph *g, const uint8_t *pks, const uint8_t *alive,
                               int32_t t, const uint8_t *resp, int64_t nresp, int64_t round,
                               uint64_t *sum, int64_t len, int *aborted);

/* Add sign * ChaCha20(key, nonce = round) expanded as uint64 words to vec[len]. */
void secagg_prg_add(const uint8_t key[32], int64_t round, int sign, uint64_t *vec, int64_t len);
/* Bytes of keystream expanded by the calling thread so far (for throughput reports). */
int64_t secagg_prg_bytes(void);

#endif
