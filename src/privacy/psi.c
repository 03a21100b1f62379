/* Two-party Diffie-Hellman private set intersection over ristretto255 (include/fedhpc/psi.h,
 * docs/psi.md). All primitives from libsodium; no MPI, no HDF5. */
#include "fedhpc/psi.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PSI_VERSION 1
static const char PSI_DOMAIN[] = "fedhpc-psi-v1"; /* hashed with its NUL: domain separation */

typedef struct {
    uint8_t pt[PSI_POINT_BYTES];
    size_t idx;
} psi_item;

struct psi_party {
    int role;
    uint8_t session[PSI_SESSION_BYTES];
    uint8_t sk[PSI_SK_BYTES];
    uint8_t peer_pk[PSI_PK_BYTES];
    uint8_t scalar[crypto_core_ristretto255_SCALARBYTES];
    size_t n;
    psi_item *own;       /* H(x)^a sorted by bytes; idx = position in the caller's list   */
    size_t n_peer;
    uint8_t *peer_dbl;   /* H(y)^ba of the peer's points, sorted (after message 1 arrives) */
    int sent1, got1, got2;
    size_t *result;
    size_t n_result;
};

static fh_status psi_init(void)
{
    if (sodium_init() < 0) return fh_error_set(FH_EINTERNAL, "psi: libsodium failed to initialize");
    return FH_OK;
}

static int item_cmp(const void *x, const void *y)
{
    return memcmp(((const psi_item *)x)->pt, ((const psi_item *)y)->pt, PSI_POINT_BYTES);
}

static int pt_cmp(const void *x, const void *y) { return memcmp(x, y, PSI_POINT_BYTES); }

static int idx_cmp(const void *x, const void *y)
{
    const size_t a = *(const size_t *)x, b = *(const size_t *)y;
    return (a > b) - (a < b);
}

fh_status psi_keypair(uint8_t *pk, uint8_t *sk)
{
    FH_TRY(psi_init());
    if (crypto_sign_keypair(pk, sk) != 0) return fh_error_set(FH_EINTERNAL, "psi: key generation failed");
    return FH_OK;
}

fh_status psi_session_new(uint8_t *session)
{
    FH_TRY(psi_init());
    randombytes_buf(session, PSI_SESSION_BYTES);
    return FH_OK;
}

/* H(id): 64-byte generichash of DOMAIN\0 || id, mapped to a ristretto255 point. */
static void psi_hash_id(const char *id, uint8_t *pt)
{
    uint8_t h[crypto_core_ristretto255_HASHBYTES];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const unsigned char *)PSI_DOMAIN, sizeof PSI_DOMAIN);
    crypto_generichash_update(&st, (const unsigned char *)id, strlen(id));
    crypto_generichash_final(&st, h, sizeof h);
    crypto_core_ristretto255_from_hash(pt, h);
}

void psi_party_free(psi_party *p)
{
    if (!p) return;
    free(p->own);
    free(p->peer_dbl);
    free(p->result);
    sodium_memzero(p, sizeof *p);
    free(p);
}

fh_status psi_party_new(psi_party **out, int role, const uint8_t *session, const uint8_t *my_sk,
                        const uint8_t *peer_pk, const char *const *ids, size_t n)
{
    *out = NULL;
    FH_TRY(psi_init());
    if (role != PSI_ROLE_A && role != PSI_ROLE_B)
        return fh_error_set(FH_EINPUT, "psi: role %d: expected 0 (A) or 1 (B)", role);
    if (n > 0 && !ids) return fh_error_set(FH_EINPUT, "psi: %zu ids but no id list", n);
    psi_party *p = calloc(1, sizeof *p);
    FH_CHECK_ALLOC(p);
    p->role = role;
    memcpy(p->session, session, PSI_SESSION_BYTES);
    memcpy(p->sk, my_sk, PSI_SK_BYTES);
    memcpy(p->peer_pk, peer_pk, PSI_PK_BYTES);
    p->n = n;
    p->own = fh_calloc(n, sizeof *p->own);
    if (!p->own) {
        psi_party_free(p);
        return fh_error_set(FH_ENOMEM, "out of memory at %s:%d", __FILE__, __LINE__);
    }
    /* duplicates: compare the unblinded hashes H(x) (equal ids <=> equal points) */
    for (size_t i = 0; i < n; i++) {
        if (!ids[i]) {
            psi_party_free(p);
            return fh_error_set(FH_EINPUT, "psi: id %zu is NULL", i);
        }
        psi_hash_id(ids[i], p->own[i].pt);
        p->own[i].idx = i;
    }
    qsort(p->own, n, sizeof *p->own, item_cmp);
    for (size_t i = 1; i < n; i++)
        if (memcmp(p->own[i - 1].pt, p->own[i].pt, PSI_POINT_BYTES) == 0) {
            size_t a = p->own[i - 1].idx, b = p->own[i].idx;
            if (a > b) { size_t t = a; a = b; b = t; }
            fh_error_set(FH_EINPUT, "psi: duplicate id '%s' at positions %zu and %zu (ids must be a set)",
                         ids[a], a, b);
            psi_party_free(p);
            return FH_EINPUT;
        }
    crypto_core_ristretto255_scalar_random(p->scalar);
    for (size_t i = 0; i < n; i++)
        if (crypto_scalarmult_ristretto255(p->own[i].pt, p->scalar, p->own[i].pt) != 0) {
            const size_t bad = p->own[i].idx;
            psi_party_free(p);
            return fh_error_set(FH_EINTERNAL, "psi: blinding id %zu gave the identity", bad);
        }
    /* message 1 is sorted by the blinded bytes: a random order unrelated to the input order */
    qsort(p->own, n, sizeof *p->own, item_cmp);
    *out = p;
    return FH_OK;
}

static void put_u64(uint8_t *b, uint64_t v)
{
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)b[i] << (8 * i);
    return v;
}

static const char *msg_name(int type)
{
    return type == PSI_MSG_BLINDED ? "message 1 (blinded set)" : "message 2 (re-blinded set)";
}

/* Allocate a message of `count` points with the header filled; points go at msg + HEADER. */
static fh_status msg_alloc(const psi_party *p, int type, size_t count, uint8_t **msg, size_t *len)
{
    if (count > (SIZE_MAX - PSI_HEADER_BYTES - PSI_SIG_BYTES) / PSI_POINT_BYTES)
        return fh_error_set(FH_EINPUT, "psi: %zu ids are too many for one message", count);
    *len = PSI_HEADER_BYTES + count * PSI_POINT_BYTES + PSI_SIG_BYTES;
    uint8_t *m = malloc(*len);
    FH_CHECK_ALLOC(m);
    memcpy(m, "FPSI", 4);
    m[4] = PSI_VERSION;
    m[5] = (uint8_t)type;
    m[6] = (uint8_t)p->role;
    m[7] = 0;
    memcpy(m + 8, p->session, PSI_SESSION_BYTES);
    put_u64(m + 40, (uint64_t)count);
    *msg = m;
    return FH_OK;
}

static fh_status msg_sign(const psi_party *p, uint8_t *msg, size_t len)
{
    if (crypto_sign_detached(msg + len - PSI_SIG_BYTES, NULL, msg, len - PSI_SIG_BYTES, p->sk) != 0)
        return fh_error_set(FH_EINTERNAL, "psi: signing failed");
    return FH_OK;
}

/* Check a received message of `type` from the peer; on success *pts / *count name its points. */
static fh_status msg_check(const psi_party *p, int type, const uint8_t *msg, size_t len,
                           const uint8_t **pts, size_t *count)
{
    const char *what = msg_name(type);
    if (!msg || len < PSI_HEADER_BYTES + PSI_SIG_BYTES)
        return fh_error_set(FH_EINPUT, "psi: %s: truncated: %zu bytes, expected at least %d", what,
                            msg ? len : 0, PSI_HEADER_BYTES + PSI_SIG_BYTES);
    const uint64_t c = get_u64(msg + 40);
    const size_t body = len - PSI_HEADER_BYTES - PSI_SIG_BYTES;
    if (body % PSI_POINT_BYTES != 0 || c != body / PSI_POINT_BYTES)
        return fh_error_set(FH_EINPUT,
                            "psi: %s: length %zu bytes does not match its count %llu (truncated or "
                            "extended)", what, len, (unsigned long long)c);
    if (crypto_sign_verify_detached(msg + len - PSI_SIG_BYTES, msg, len - PSI_SIG_BYTES, p->peer_pk) != 0)
        return fh_error_set(FH_EINPUT,
                            "psi: %s: signature does not verify under the peer's key (message modified "
                            "or not from the peer)", what);
    if (memcmp(msg, "FPSI", 4) != 0) return fh_error_set(FH_EINPUT, "psi: %s: bad magic", what);
    if (msg[4] != PSI_VERSION)
        return fh_error_set(FH_EINPUT, "psi: %s: version %u, expected %d", what, msg[4], PSI_VERSION);
    if (sodium_memcmp(msg + 8, p->session, PSI_SESSION_BYTES) != 0)
        return fh_error_set(FH_EINPUT, "psi: %s: from another session (replayed or misrouted)", what);
    if (msg[6] != (uint8_t)(1 - p->role))
        return fh_error_set(FH_EINPUT, "psi: %s: sender role %u, expected the peer's role %d (reflected "
                            "message?)", what, msg[6], 1 - p->role);
    if (msg[5] != (uint8_t)type)
        return fh_error_set(FH_EINPUT, "psi: %s: got message type %u, expected %d (out of order or "
                            "replayed)", what, msg[5], type);
    if (msg[7] != 0) return fh_error_set(FH_EINPUT, "psi: %s: reserved byte is not 0", what);
    *pts = msg + PSI_HEADER_BYTES;
    *count = (size_t)c;
    for (size_t i = 0; i < *count; i++)
        if (!crypto_core_ristretto255_is_valid_point(*pts + i * PSI_POINT_BYTES))
            return fh_error_set(FH_EINPUT, "psi: %s: point %zu is not a valid ristretto255 point", what, i);
    return FH_OK;
}

fh_status psi_msg_blinded(psi_party *p, uint8_t **msg, size_t *len)
{
    *msg = NULL;
    *len = 0;
    if (p->sent1) return fh_error_set(FH_EINPUT, "psi: message 1 was already produced in this session");
    uint8_t *m;
    size_t l;
    FH_TRY(msg_alloc(p, PSI_MSG_BLINDED, p->n, &m, &l));
    for (size_t i = 0; i < p->n; i++)
        memcpy(m + PSI_HEADER_BYTES + i * PSI_POINT_BYTES, p->own[i].pt, PSI_POINT_BYTES);
    fh_status st = msg_sign(p, m, l);
    if (st != FH_OK) {
        free(m);
        return st;
    }
    p->sent1 = 1;
    *msg = m;
    *len = l;
    return FH_OK;
}

fh_status psi_recv_blinded(psi_party *p, const uint8_t *msg, size_t len, uint8_t **reply,
                           size_t *reply_len)
{
    *reply = NULL;
    *reply_len = 0;
    const uint8_t *pts;
    size_t c;
    FH_TRY(msg_check(p, PSI_MSG_BLINDED, msg, len, &pts, &c));
    if (p->got1)
        return fh_error_set(FH_EINPUT, "psi: message 1 (blinded set): already received (replayed)");
    for (size_t i = 1; i < c; i++)
        if (memcmp(pts + (i - 1) * PSI_POINT_BYTES, pts + i * PSI_POINT_BYTES, PSI_POINT_BYTES) >= 0)
            return fh_error_set(FH_EINPUT, "psi: message 1 (blinded set): points are not strictly "
                                "sorted at %zu (duplicates or a revealing order)", i);
    uint8_t *m;
    size_t l;
    FH_TRY(msg_alloc(p, PSI_MSG_REBLINDED, c, &m, &l));
    uint8_t *dbl = fh_calloc(c, PSI_POINT_BYTES);
    if (!dbl) {
        free(m);
        return fh_error_set(FH_ENOMEM, "out of memory at %s:%d", __FILE__, __LINE__);
    }
    for (size_t i = 0; i < c; i++) {
        uint8_t *o = m + PSI_HEADER_BYTES + i * PSI_POINT_BYTES;
        if (crypto_scalarmult_ristretto255(o, p->scalar, pts + i * PSI_POINT_BYTES) != 0) {
            free(m);
            free(dbl);
            return fh_error_set(FH_EINPUT, "psi: message 1 (blinded set): point %zu is the identity", i);
        }
        memcpy(dbl + i * PSI_POINT_BYTES, o, PSI_POINT_BYTES);
    }
    fh_status st = msg_sign(p, m, l);
    if (st != FH_OK) {
        free(m);
        free(dbl);
        return st;
    }
    qsort(dbl, c, PSI_POINT_BYTES, pt_cmp);
    p->peer_dbl = dbl;
    p->n_peer = c;
    p->got1 = 1;
    *reply = m;
    *reply_len = l;
    return FH_OK;
}

fh_status psi_recv_reblinded(psi_party *p, const uint8_t *msg, size_t len)
{
    const uint8_t *pts;
    size_t c;
    FH_TRY(msg_check(p, PSI_MSG_REBLINDED, msg, len, &pts, &c));
    if (p->got2)
        return fh_error_set(FH_EINPUT, "psi: message 2 (re-blinded set): already received (replayed)");
    if (!p->sent1 || !p->got1)
        return fh_error_set(FH_EINPUT, "psi: message 2 (re-blinded set): arrived before message 1 was %s",
                            !p->sent1 ? "sent" : "received");
    if (c != p->n)
        return fh_error_set(FH_EINPUT, "psi: message 2 (re-blinded set): %zu points, expected %zu (one per "
                            "own id)", c, p->n);
    size_t *res = fh_calloc(c, sizeof *res);
    FH_CHECK_ALLOC(res);
    size_t k = 0;
    for (size_t i = 0; i < c; i++)
        if (p->n_peer && bsearch(pts + i * PSI_POINT_BYTES, p->peer_dbl, p->n_peer, PSI_POINT_BYTES, pt_cmp))
            res[k++] = p->own[i].idx; /* message 2 is aligned with our sorted message 1 */
    qsort(res, k, sizeof *res, idx_cmp);
    free(p->result);
    p->result = res;
    p->n_result = k;
    p->got2 = 1;
    return FH_OK;
}

fh_status psi_result(const psi_party *p, const size_t **idx, size_t *n)
{
    if (!p->got2) return fh_error_set(FH_EINPUT, "psi: no result: the protocol has not completed");
    *idx = p->result;
    *n = p->n_result;
    return FH_OK;
}

fh_status psi_run_local(const char *const *a, size_t na, const char *const *b, size_t nb,
                        size_t **ia, size_t *nia, size_t **ib, size_t *nib)
{
    *ia = *ib = NULL;
    *nia = *nib = 0;
    uint8_t pka[PSI_PK_BYTES], ska[PSI_SK_BYTES], pkb[PSI_PK_BYTES], skb[PSI_SK_BYTES];
    uint8_t session[PSI_SESSION_BYTES];
    FH_TRY(psi_keypair(pka, ska));
    FH_TRY(psi_keypair(pkb, skb));
    FH_TRY(psi_session_new(session));
    psi_party *A = NULL, *B = NULL;
    uint8_t *a1 = NULL, *b1 = NULL, *a2 = NULL, *b2 = NULL;
    size_t la1, lb1, la2, lb2;
    fh_status st = psi_party_new(&A, PSI_ROLE_A, session, ska, pkb, a, na);
    const char *who = "party A";
    if (st == FH_OK) {
        st = psi_party_new(&B, PSI_ROLE_B, session, skb, pka, b, nb);
        who = "party B";
    }
    if (st != FH_OK) { /* name the party whose list was refused */
        char msg[512];
        snprintf(msg, sizeof msg, "%s: %s", who, fh_error_msg());
        fh_error_put(msg);
    }
    if (st == FH_OK) st = psi_msg_blinded(A, &a1, &la1);
    if (st == FH_OK) st = psi_msg_blinded(B, &b1, &lb1);
    if (st == FH_OK) st = psi_recv_blinded(B, a1, la1, &b2, &lb2);
    if (st == FH_OK) st = psi_recv_blinded(A, b1, lb1, &a2, &la2);
    if (st == FH_OK) st = psi_recv_reblinded(A, b2, lb2);
    if (st == FH_OK) st = psi_recv_reblinded(B, a2, la2);
    const size_t *ra = NULL, *rb = NULL;
    size_t nra = 0, nrb = 0;
    if (st == FH_OK) st = psi_result(A, &ra, &nra);
    if (st == FH_OK) st = psi_result(B, &rb, &nrb);
    if (st == FH_OK) {
        *ia = fh_calloc(nra, sizeof **ia);
        *ib = fh_calloc(nrb, sizeof **ib);
        if (!*ia || !*ib) {
            free(*ia);
            free(*ib);
            *ia = *ib = NULL;
            st = fh_error_set(FH_ENOMEM, "out of memory at %s:%d", __FILE__, __LINE__);
        } else {
            memcpy(*ia, ra, nra * sizeof **ia);
            memcpy(*ib, rb, nrb * sizeof **ib);
            *nia = nra;
            *nib = nrb;
        }
    }
    free(a1);
    free(b1);
    free(a2);
    free(b2);
    psi_party_free(A);
    psi_party_free(B);
    sodium_memzero(ska, sizeof ska);
    sodium_memzero(skb, sizeof skb);
    return st;
}
