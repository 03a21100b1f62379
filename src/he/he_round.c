/* Paillier aggregation inside the training loop (include/fedhpc/he.h): key distribution under
 * libsodium sealed boxes through the aggregator (rank 0), per-client packing and encryption in
 * parallel over ciphertexts (OpenMP), the ciphertext product per rank and across ranks (at the
 * aggregator, rank 0), and decryption at the client hosts. */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/agg.h"
#include "fedhpc/he.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TAG_HE_PKS 7201
#define TAG_HE_SEALED 7202
#define TAG_HE_RELAY 7203
#define TAG_HE_CT 7204

/* CPU seconds of this process, every thread (the machine may be shared: wall time is not the cost) */
static double cpu_now(void)
{
    struct timespec t;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t) != 0) return 0;
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static size_t n_bytes(int bits) { return ((size_t)bits + 7) / 8; }

/* Key distribution. Ranks >= first_host host clients and must hold the key; gen = the last rank
 * generates it. Every host makes a box key pair (crypto_box_keypair) and sends its public key to
 * rank 0; rank 0 forwards them to gen; gen seals the key bytes for each other host
 * (crypto_box_seal) and returns them with n to rank 0; rank 0 relays each sealed key to its host
 * and broadcasts n. Rank 0 sees box public keys, sealed boxes and n; it opens a box only if it
 * hosts clients itself (first_host = 0). */
static fh_status distribute_key(he_engine *e, const config_he *cfg, const comm_t *w, int first_host)
{
    const int bits = cfg->key_bits, gen = w->size - 1, me = w->rank;
    const int holder = me >= first_host;
    const size_t kb = he_key_bytes(bits), nb = n_bytes(bits), sb = crypto_box_SEALBYTES + kb;
    uint8_t pk[crypto_box_PUBLICKEYBYTES] = {0}, sk[crypto_box_SECRETKEYBYTES];
    uint8_t *pks = calloc((size_t)w->size, sizeof pk);
    uint8_t *blob = calloc(1, nb + (size_t)w->size * sb); /* n, then a sealed key a rank */
    uint8_t *kbuf = sodium_malloc(kb);
    fh_status st = pks && blob && kbuf ? FH_OK : fh_error_set(FH_ENOMEM, "[he] key distribution: out of memory");
    if (holder && me != gen) crypto_box_keypair(pk, sk);
    /* 1. box public keys to rank 0, and on to the generator */
    void *all = NULL;
    int64_t *counts = calloc((size_t)w->size, sizeof *counts);
    if (!counts) st = fh_error_set(FH_ENOMEM, "[he] key distribution: out of memory");
    fh_status cst = comm_gather_bytes(w, pk, sizeof pk, &all, counts, 0);
    if (cst == FH_OK && me == 0 && all && pks) memcpy(pks, all, (size_t)w->size * sizeof pk);
    free(all);
    free(counts);
    if (cst == FH_OK && gen != 0) {
        if (me == 0) cst = comm_send_bytes(w, pks, (int64_t)w->size * (int64_t)sizeof pk, gen, TAG_HE_PKS);
        if (me == gen) cst = comm_recv_bytes(w, pks, (int64_t)w->size * (int64_t)sizeof pk, 0, TAG_HE_PKS);
    }
    if (st == FH_OK) st = cst;
    /* 2. the generator makes the key and seals it for every other host */
    if (me == gen && st == FH_OK) {
        st = he_keygen(bits, &e->key);
        if (st == FH_OK) {
            e->has_key = 1;
            he_key_export(&e->key, kbuf);
            const size_t l = (mpz_sizeinbase(e->key.pub.n, 2) + 7) / 8;
            mpz_export(blob + nb - l, NULL, 1, 1, 1, 0, e->key.pub.n);
            for (int r = first_host; r < w->size && st == FH_OK; r++)
                if (r != gen && crypto_box_seal(blob + nb + (size_t)r * sb, kbuf, kb, pks + (size_t)r * sizeof pk) != 0)
                    st = fh_error_set(FH_EINTERNAL, "[he] crypto_box_seal failed");
        }
    }
    st = comm_agree(w, st);
    /* 3. sealed keys and n to rank 0, which relays each sealed key to its host */
    if (st == FH_OK && gen != 0) {
        const int64_t tot = (int64_t)(nb + (size_t)w->size * sb);
        if (me == gen) st = comm_send_bytes(w, blob, tot, 0, TAG_HE_SEALED);
        if (me == 0) st = comm_recv_bytes(w, blob, tot, gen, TAG_HE_SEALED);
        for (int r = 1; r < w->size && st == FH_OK; r++) {
            if (r == gen || r < first_host) continue;
            if (me == 0) st = comm_send_bytes(w, blob + nb + (size_t)r * sb, (int64_t)sb, r, TAG_HE_RELAY);
            if (me == r) st = comm_recv_bytes(w, blob + nb + (size_t)r * sb, (int64_t)sb, 0, TAG_HE_RELAY);
        }
    }
    if (st == FH_OK) st = comm_bcast(w, blob, (int64_t)nb, 0); /* n from rank 0 to everyone */
    st = comm_agree(w, st);
    mpz_t n;
    mpz_init(n);
    if (st == FH_OK) {
        mpz_import(n, nb, 1, 1, 1, 0, blob);
        st = he_pub_from_n(n, &e->pub);
    }
    /* 4. every other host opens its box */
    if (st == FH_OK && holder && me != gen) {
        if (crypto_box_seal_open(kbuf, blob + nb + (size_t)me * sb, sb, pk, sk) != 0)
            st = fh_error_set(FH_EINPUT, "[he] the sealed Paillier key does not open with this rank's box key");
        else if ((st = he_key_import(bits, kbuf, &e->key)) == FH_OK) {
            e->has_key = 1;
            if (mpz_cmp(e->key.pub.n, n) != 0)
                st = fh_error_set(FH_EINPUT, "[he] the received secret key does not match the broadcast public key");
        }
    }
    mpz_clear(n);
    sodium_memzero(sk, sizeof sk);
    if (kbuf) sodium_free(kbuf);
    free(pks);
    free(blob);
    return comm_agree(w, st);
}

fh_status he_engine_init(he_engine *e, const config_he *cfg, const comm_t *w, int64_t nacc, int64_t max_clients,
                         int first_host)
{
    memset(e, 0, sizeof *e);
    if (!cfg->enabled) return FH_OK;
    e->enabled = 1;
    e->nacc = nacc;
    e->key_holder0 = first_host;
    FH_TRY(he_pack_plan(cfg->key_bits, cfg->pack, max_clients, &e->plan)); /* the same on every rank */
    if (sodium_init() < 0) return fh_error_set(FH_EINTERNAL, "[he] libsodium failed to initialize");
    FH_TRY(distribute_key(e, cfg, w, first_host));
    e->ncts = he_vec_cts(&e->plan, nacc);
    e->ct = malloc(he_vec_bytes(&e->pub, &e->plan, nacc));
    FH_CHECK_ALLOC(e->ct);
    e->ct_bytes_client = (int64_t)he_vec_bytes(&e->pub, &e->plan, nacc);
    e->plain_bytes_client = nacc * (int64_t)sizeof(int64_t);
    return FH_OK;
}

void he_engine_free(he_engine *e)
{
    if (!e->enabled) return;
    free(e->cbuf);
    free(e->ct);
    if (e->pub.bits) he_pub_free(&e->pub);
    he_key_free(&e->key);
    memset(e, 0, sizeof *e);
}

fh_status he_engine_begin(he_engine *e, int32_t nloc)
{
    FH_TRY(fx_bufs_begin(&e->cbuf, &e->cap, nloc, e->nacc));
    e->nloc = nloc;
    return FH_OK;
}

int64_t *he_engine_buffer(he_engine *e, int32_t i) { return e->cbuf + (size_t)i * (size_t)e->nacc; }

/* inout[i] = in[i] inout[i] mod n^2 over serialized ciphertexts (the aggregator's step) */
static void ct_combine(const he_pub *pub, const uint8_t *in, uint8_t *inout, int64_t count)
{
    const size_t cb = pub->ct_bytes;
#pragma omp parallel
    {
        mpz_t a, b;
        mpz_inits(a, b, NULL);
#pragma omp for schedule(static)
        for (int64_t i = 0; i < count; i++) {
            mpz_import(a, cb, 1, 1, 1, 0, in + (size_t)i * cb);
            mpz_import(b, cb, 1, 1, 1, 0, inout + (size_t)i * cb);
            he_add(pub, a, a, b);
            he_ct_export(pub, inout + (size_t)i * cb, a);
        }
        mpz_clears(a, b, NULL);
    }
}

/* 1. encrypt: ciphertexts [j0, j1) of every local client's vector, packed; multiplied into this
 * rank's product (e->ct). Local; adds its wall and CPU seconds to enc_s and enc_cpu. */
fh_status he_engine_encrypt(he_engine *e, int64_t j0, int64_t j1)
{
    const he_pub *pub = &e->pub;
    const size_t cb = pub->ct_bytes;
    const int64_t L = e->nacc, S = e->plan.slots;
    uint8_t *cts = e->ct + HE_ID_BYTES;
    if (e->nloc > 0 && !e->has_key) return fh_error_set(FH_EINTERNAL, "[he] a rank without the key hosts clients");
    if (j0 < 0 || j1 > e->ncts || j0 > j1)
        return fh_error_set(FH_EINTERNAL, "[he] ciphertexts [%lld, %lld) outside [0, %lld)", (long long)j0,
                            (long long)j1, (long long)e->ncts);
    double t0 = fh_wtime(), u0 = cpu_now();
    int bad = 0;
#pragma omp parallel
    {
        mpz_t m, c, prod;
        mpz_inits(m, c, prod, NULL);
#pragma omp for schedule(dynamic, 8)
        for (int64_t j = j0; j < j1; j++) {
            const int cnt = (int)(L - j * S < S ? L - j * S : S);
            mpz_set_ui(prod, 1); /* Enc(0) with r = 1: the identity of the product */
            for (int32_t i = 0; i < e->nloc; i++) {
                he_pack(&e->plan, he_engine_buffer(e, i) + j * S, cnt, m);
                if (he_encrypt_crt(&e->key, c, m) != FH_OK) { /* cannot happen: m < 2^(key_bits-1) < n */
#pragma omp atomic write
                    bad = 1;
                }
                if (i == 0) mpz_swap(prod, c);
                else he_add(pub, prod, prod, c);
            }
            he_ct_export(pub, cts + (size_t)j * cb, prod);
        }
        mpz_clears(m, c, prod, NULL);
    }
    e->enc_s += fh_wtime() - t0;
    e->enc_cpu += cpu_now() - u0;
    return bad ? fh_error_set(FH_EINTERNAL, "[he] a packed plaintext exceeded n") : FH_OK;
}

fh_status he_engine_round(he_engine *e, const comm_t *w, int32_t n, int64_t *acc)
{
    if (n <= 0) return FH_OK;
    e->enc_s = e->enc_cpu = 0;
    fh_status st = he_engine_encrypt(e, 0, e->ncts);
    return he_engine_combine(e, w, n, acc, st);
}

fh_status he_engine_combine(he_engine *e, const comm_t *w, int32_t n, int64_t *acc, fh_status enc_status)
{
    if (n > e->plan.max_summands)
        return comm_agree(w, fh_error_set(FH_EINTERNAL, "[he] %d clients in a round, planned for %lld", n,
                                          (long long)e->plan.max_summands));
    const he_pub *pub = &e->pub;
    const size_t cb = pub->ct_bytes;
    const int64_t ncts = e->ncts, L = e->nacc;
    uint8_t *cts = e->ct + HE_ID_BYTES;
    memcpy(e->ct, pub->id, HE_ID_BYTES);
    double t1 = fh_wtime();
    FH_TRY(comm_agree(w, enc_status)); /* also waits for the slowest rank: timed apart from the aggregation */
    e->wait_s = fh_wtime() - t1;
    t1 = fh_wtime();
    double u1 = cpu_now();
    fh_status st;

    /* 2. aggregate: every rank's product to rank 0 (the aggregator), which multiplies them, then
     * the total to every rank. A star, not a tree or an MPI reduction: the inner nodes of a
     * reduction tree would be client hosts, which hold the key and could decrypt the partial
     * sum of another rank's clients; rank 0 combines everything, in rank order. */
    const int64_t vb = ncts * (int64_t)cb;
    uint8_t *rx = w->rank == 0 && w->size > 1 ? malloc((size_t)vb) : NULL;
    st = comm_agree(w, w->rank == 0 && w->size > 1 && !rx ? fh_error_set(FH_ENOMEM, "[he] out of memory") : FH_OK);
    for (int q = 1; q < w->size && st == FH_OK; q++) {
        if (w->rank == 0) {
            st = comm_recv_bytes(w, rx, vb, q, TAG_HE_CT);
            if (st == FH_OK) ct_combine(&e->pub, rx, cts, ncts);
        } else if (w->rank == q) {
            st = comm_send_bytes(w, cts, vb, 0, TAG_HE_CT);
        }
    }
    free(rx);
    if (st == FH_OK) st = comm_bcast(w, e->ct, (int64_t)(HE_ID_BYTES + (size_t)vb), 0);
    FH_TRY(comm_agree(w, st));
    double t2 = fh_wtime(), u2 = cpu_now();
    e->agg_s = t2 - t1;
    e->agg_cpu = u2 - u1;

    /* 3. decrypt: the key holders split the ciphertexts; one exact integer sum shares the words */
    int64_t *dec = calloc((size_t)L, sizeof *dec);
    st = dec ? FH_OK : fh_error_set(FH_ENOMEM, "[he] out of memory");
    if (st == FH_OK && e->has_key) {
        const int64_t H = w->size - e->key_holder0, h = w->rank - e->key_holder0;
        st = he_vec_decrypt(&e->key, &e->plan, e->ct, L, n, ncts * h / H, ncts * (h + 1) / H, dec);
    }
    st = comm_agree(w, st);
    if (st == FH_OK) st = comm_agree(w, comm_allreduce_sum_i64(w, dec, L));
    if (st == FH_OK)
        for (int64_t j = 0; j < L; j++) acc[j] = (int64_t)((uint64_t)acc[j] + (uint64_t)dec[j]);
    free(dec);
    e->dec_s = fh_wtime() - t2;
    e->dec_cpu = cpu_now() - u2;
    return st;
}
