/* Tests of src/privacy/psi.c (docs/psi.md): two-party DH-PSI over ristretto255. Random id sets
 * with a known overlap (ids drawn from rng streams) give each party exactly the intersection;
 * empty and full intersections; duplicate ids refused; a flipped byte, a truncated message, a
 * message from another session, a replayed or reflected message and a wrong signing key are
 * refused with FH_EINPUT naming what failed; blinded values of the same id differ between
 * sessions. Pure computation: every rank runs it alone. */
#include "tests.h"

#include "fedhpc/psi.h"
#include "fedhpc/rng.h"

#include <sodium.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* n distinct ids "cust-<64-bit hex>" from the stream (seed, id); test-only purpose 0 */
static char **make_ids(uint64_t seed, uint64_t id, size_t n)
{
    char **v = calloc(n ? n : 1, sizeof *v);
    rng_t r = rng_stream(seed, id, 0, 0);
    for (size_t i = 0; i < n; i++) {
        v[i] = malloc(32);
        snprintf(v[i], 32, "cust-%016llx", (unsigned long long)rng_u64(&r));
    }
    return v;
}

static void free_ids(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* A = common[0..nc) + onlyA, B = onlyB + common, each list shuffled by a stream; checks that both
 * sides learn exactly the positions of the common ids. */
static void check_overlap(uint64_t seed, size_t nc, size_t na_only, size_t nb_only)
{
    char **c = make_ids(seed, 1, nc), **xa = make_ids(seed, 2, na_only), **xb = make_ids(seed, 3, nb_only);
    const size_t na = nc + na_only, nb = nc + nb_only;
    const char **a = calloc(na + 1, sizeof *a), **b = calloc(nb + 1, sizeof *b);
    int *a_common = calloc(na + 1, sizeof *a_common), *b_common = calloc(nb + 1, sizeof *b_common);
    for (size_t i = 0; i < nc; i++) a[i] = c[i], a_common[i] = 1;
    for (size_t i = 0; i < na_only; i++) a[nc + i] = xa[i];
    for (size_t i = 0; i < nb_only; i++) b[i] = xb[i];
    for (size_t i = 0; i < nc; i++) b[nb_only + i] = c[i], b_common[nb_only + i] = 1;
    rng_t r = rng_stream(seed, 4, 0, 0);
    for (size_t i = na; i > 1; i--) { /* Fisher-Yates, keeping the flags aligned */
        size_t j = rng_below(&r, i);
        const char *t = a[i - 1]; a[i - 1] = a[j]; a[j] = t;
        int f = a_common[i - 1]; a_common[i - 1] = a_common[j]; a_common[j] = f;
    }
    for (size_t i = nb; i > 1; i--) {
        size_t j = rng_below(&r, i);
        const char *t = b[i - 1]; b[i - 1] = b[j]; b[j] = t;
        int f = b_common[i - 1]; b_common[i - 1] = b_common[j]; b_common[j] = f;
    }
    size_t *ia, *ib, nia, nib;
    CU_ASSERT_EQUAL_FATAL(psi_run_local(a, na, b, nb, &ia, &nia, &ib, &nib), FH_OK);
    CU_ASSERT_EQUAL(nia, nc);
    CU_ASSERT_EQUAL(nib, nc);
    size_t k = 0;
    for (size_t i = 0; i < na; i++)
        if (a_common[i]) {
            CU_ASSERT(k < nia && ia[k] == i);
            k++;
        }
    k = 0;
    for (size_t i = 0; i < nb; i++)
        if (b_common[i]) {
            CU_ASSERT(k < nib && ib[k] == i);
            k++;
        }
    /* the two index lists name the same ids, as sets */
    for (size_t i = 0; i < nia && i < nib; i++) {
        int found = 0;
        for (size_t j = 0; j < nib; j++) found |= strcmp(a[ia[i]], b[ib[j]]) == 0;
        CU_ASSERT(found);
    }
    free(ia);
    free(ib);
    free(a);
    free(b);
    free(a_common);
    free(b_common);
    free_ids(c, nc);
    free_ids(xa, na_only);
    free_ids(xb, nb_only);
}

static void test_random_overlap(void)
{
    check_overlap(11, 37, 50, 13);
    check_overlap(12, 1, 0, 200);
    check_overlap(13, 100, 3, 0);
}

static void test_empty(void)
{
    check_overlap(21, 0, 40, 30); /* disjoint */
    check_overlap(22, 0, 0, 10);  /* one side empty */
    check_overlap(23, 0, 0, 0);   /* both empty */
}

static void test_identical(void) { check_overlap(31, 64, 0, 0); }

static void test_duplicates_refused(void)
{
    const char *ids[] = {"alice", "bob", "carol", "bob"};
    uint8_t pk[PSI_PK_BYTES], sk[PSI_SK_BYTES], s[PSI_SESSION_BYTES];
    CU_ASSERT_EQUAL_FATAL(psi_keypair(pk, sk), FH_OK);
    CU_ASSERT_EQUAL_FATAL(psi_session_new(s), FH_OK);
    psi_party *p = NULL;
    CU_ASSERT_EQUAL(psi_party_new(&p, PSI_ROLE_A, s, sk, pk, ids, 4), FH_EINPUT);
    CU_ASSERT_PTR_NULL(p);
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), "duplicate id 'bob' at positions 1 and 3"));
    size_t *ia, *ib, nia, nib;
    CU_ASSERT_EQUAL(psi_run_local(ids, 3, ids, 4, &ia, &nia, &ib, &nib), FH_EINPUT);
    CU_ASSERT_EQUAL(psi_party_new(&p, 2, s, sk, pk, ids, 3), FH_EINPUT);
    /* ids differing only after a prefix, and the empty id, are distinct */
    const char *ok[] = {"", "a", "ab", "b"};
    CU_ASSERT_EQUAL(psi_run_local(ok, 4, ok + 1, 3, &ia, &nia, &ib, &nib), FH_OK);
    CU_ASSERT_EQUAL(nia, 3);
    CU_ASSERT(nia == 3 && ia[0] == 1 && ia[1] == 2 && ia[2] == 3);
    free(ia);
    free(ib);
}

/* A session driven by hand, so messages can be tampered with. */
typedef struct {
    uint8_t pka[PSI_PK_BYTES], ska[PSI_SK_BYTES], pkb[PSI_PK_BYTES], skb[PSI_SK_BYTES];
    uint8_t session[PSI_SESSION_BYTES];
    psi_party *A, *B;
    uint8_t *a1, *b1, *a2, *b2;
    size_t la1, lb1, la2, lb2;
} sess;

static const char *IDS_A[] = {"u1", "u2", "u3", "u4", "u5"};
static const char *IDS_B[] = {"u4", "u9", "u2", "u7"};

static void sess_open(sess *s)
{
    memset(s, 0, sizeof *s);
    CU_ASSERT_EQUAL_FATAL(psi_keypair(s->pka, s->ska), FH_OK);
    CU_ASSERT_EQUAL_FATAL(psi_keypair(s->pkb, s->skb), FH_OK);
    CU_ASSERT_EQUAL_FATAL(psi_session_new(s->session), FH_OK);
    CU_ASSERT_EQUAL_FATAL(psi_party_new(&s->A, PSI_ROLE_A, s->session, s->ska, s->pkb, IDS_A, 5), FH_OK);
    CU_ASSERT_EQUAL_FATAL(psi_party_new(&s->B, PSI_ROLE_B, s->session, s->skb, s->pka, IDS_B, 4), FH_OK);
    CU_ASSERT_EQUAL_FATAL(psi_msg_blinded(s->A, &s->a1, &s->la1), FH_OK);
    CU_ASSERT_EQUAL_FATAL(psi_msg_blinded(s->B, &s->b1, &s->lb1), FH_OK);
}

static void sess_close(sess *s)
{
    psi_party_free(s->A);
    psi_party_free(s->B);
    free(s->a1);
    free(s->b1);
    free(s->a2);
    free(s->b2);
}

static int err_has(const char *what) { return strstr(fh_error_msg(), what) != NULL; }

static void test_tampered_detected(void)
{
    sess s;
    sess_open(&s);
    CU_ASSERT_EQUAL(s.la1, PSI_HEADER_BYTES + 5 * PSI_POINT_BYTES + PSI_SIG_BYTES);
    uint8_t *reply;
    size_t rl;
    /* every single flipped byte (header, points, signature) of message 1 is refused */
    int refused = 0;
    for (size_t i = 0; i < s.la1; i++) {
        uint8_t *m = malloc(s.la1);
        memcpy(m, s.a1, s.la1);
        m[i] ^= 0x01;
        if (psi_recv_blinded(s.B, m, s.la1, &reply, &rl) == FH_EINPUT) refused++;
        else free(reply);
        free(m);
    }
    CU_ASSERT_EQUAL(refused, (int)s.la1);
    /* a flipped point byte: the signature names it */
    s.a1[PSI_HEADER_BYTES + 7] ^= 0x80;
    CU_ASSERT_EQUAL(psi_recv_blinded(s.B, s.a1, s.la1, &reply, &rl), FH_EINPUT);
    CU_ASSERT(err_has("message 1") && err_has("signature does not verify"));
    s.a1[PSI_HEADER_BYTES + 7] ^= 0x80;
    /* truncated: by one point, by one byte, to less than a header */
    CU_ASSERT_EQUAL(psi_recv_blinded(s.B, s.a1, s.la1 - PSI_POINT_BYTES, &reply, &rl), FH_EINPUT);
    CU_ASSERT(err_has("does not match its count"));
    CU_ASSERT_EQUAL(psi_recv_blinded(s.B, s.a1, s.la1 - 1, &reply, &rl), FH_EINPUT);
    CU_ASSERT(err_has("truncated"));
    CU_ASSERT_EQUAL(psi_recv_blinded(s.B, s.a1, 20, &reply, &rl), FH_EINPUT);
    CU_ASSERT(err_has("truncated: 20 bytes"));
    /* a truncated message with its count rewritten still fails the signature */
    uint8_t *t = malloc(s.la1);
    memcpy(t, s.a1, s.la1);
    t[40] = 4;
    memmove(t + PSI_HEADER_BYTES + 4 * PSI_POINT_BYTES, s.a1 + s.la1 - PSI_SIG_BYTES, PSI_SIG_BYTES);
    CU_ASSERT_EQUAL(psi_recv_blinded(s.B, t, s.la1 - PSI_POINT_BYTES, &reply, &rl), FH_EINPUT);
    CU_ASSERT(err_has("signature does not verify"));
    free(t);
    /* reflected: A's own message given back to A (signed by A, not by the peer B) */
    CU_ASSERT_EQUAL(psi_recv_blinded(s.A, s.a1, s.la1, &reply, &rl), FH_EINPUT);
    CU_ASSERT(err_has("signature does not verify"));
    /* message 2 before message 1: refused */
    CU_ASSERT_EQUAL(psi_recv_reblinded(s.B, s.a1, s.la1), FH_EINPUT);
    CU_ASSERT(err_has("got message type 1, expected 2"));
    /* the untouched messages still complete the protocol (the failures changed no state) */
    CU_ASSERT_EQUAL_FATAL(psi_recv_blinded(s.B, s.a1, s.la1, &s.b2, &s.lb2), FH_OK);
    CU_ASSERT_EQUAL_FATAL(psi_recv_blinded(s.A, s.b1, s.lb1, &s.a2, &s.la2), FH_OK);
    /* replay of message 1 within the session */
    CU_ASSERT_EQUAL(psi_recv_blinded(s.B, s.a1, s.la1, &reply, &rl), FH_EINPUT);
    CU_ASSERT(err_has("already received (replayed)"));
    /* flipped byte in message 2 */
    s.b2[PSI_HEADER_BYTES] ^= 0x04;
    CU_ASSERT_EQUAL(psi_recv_reblinded(s.A, s.b2, s.lb2), FH_EINPUT);
    CU_ASSERT(err_has("message 2") && err_has("signature"));
    s.b2[PSI_HEADER_BYTES] ^= 0x04;
    const size_t *r;
    size_t nr;
    CU_ASSERT_EQUAL(psi_result(s.A, &r, &nr), FH_EINPUT);
    CU_ASSERT_EQUAL_FATAL(psi_recv_reblinded(s.A, s.b2, s.lb2), FH_OK);
    CU_ASSERT_EQUAL_FATAL(psi_recv_reblinded(s.B, s.a2, s.la2), FH_OK);
    CU_ASSERT_EQUAL(psi_recv_reblinded(s.B, s.a2, s.la2), FH_EINPUT);
    CU_ASSERT(err_has("replayed"));
    CU_ASSERT_EQUAL_FATAL(psi_result(s.A, &r, &nr), FH_OK);
    CU_ASSERT(nr == 2 && r[0] == 1 && r[1] == 3); /* u2, u4 */
    CU_ASSERT_EQUAL_FATAL(psi_result(s.B, &r, &nr), FH_OK);
    CU_ASSERT(nr == 2 && r[0] == 0 && r[1] == 2); /* u4, u2 */
    sess_close(&s);
}

static void test_wrong_session_and_key(void)
{
    sess s, t;
    sess_open(&s);
    sess_open(&t);
    uint8_t *reply;
    size_t rl;
    /* a message of another session signed by the right key: re-key t's party A with s's key */
    psi_party *A2 = NULL;
    CU_ASSERT_EQUAL_FATAL(psi_party_new(&A2, PSI_ROLE_A, t.session, s.ska, s.pkb, IDS_A, 5), FH_OK);
    uint8_t *m;
    size_t l;
    CU_ASSERT_EQUAL_FATAL(psi_msg_blinded(A2, &m, &l), FH_OK);
    CU_ASSERT_EQUAL(psi_recv_blinded(s.B, m, l, &reply, &rl), FH_EINPUT);
    CU_ASSERT(err_has("from another session"));
    free(m);
    psi_party_free(A2);
    /* a message of another session under other keys */
    CU_ASSERT_EQUAL(psi_recv_blinded(s.B, t.a1, t.la1, &reply, &rl), FH_EINPUT);
    CU_ASSERT(err_has("signature does not verify"));
    /* the session goes on */
    CU_ASSERT_EQUAL(psi_recv_blinded(s.B, s.a1, s.la1, &s.b2, &s.lb2), FH_OK);
    sess_close(&s);
    sess_close(&t);
}

/* Validly signed (the test holds A's key) but malformed messages: the checks after the signature */
static void resign(uint8_t *m, size_t l, const uint8_t *sk)
{
    crypto_sign_detached(m + l - PSI_SIG_BYTES, NULL, m, l - PSI_SIG_BYTES, sk);
}

static void test_signed_malformed(void)
{
    sess s;
    sess_open(&s);
    uint8_t *reply, *m = malloc(s.la1);
    size_t rl;
    uint8_t *pt = m + PSI_HEADER_BYTES;
    /* two points swapped: not sorted */
    memcpy(m, s.a1, s.la1);
    memcpy(pt, s.a1 + PSI_HEADER_BYTES + PSI_POINT_BYTES, PSI_POINT_BYTES);
    memcpy(pt + PSI_POINT_BYTES, s.a1 + PSI_HEADER_BYTES, PSI_POINT_BYTES);
    resign(m, s.la1, s.ska);
    CU_ASSERT_EQUAL(psi_recv_blinded(s.B, m, s.la1, &reply, &rl), FH_EINPUT);
    CU_ASSERT(err_has("not strictly sorted at 1"));
    /* a repeated point */
    memcpy(m, s.a1, s.la1);
    memcpy(pt + PSI_POINT_BYTES, pt, PSI_POINT_BYTES);
    resign(m, s.la1, s.ska);
    CU_ASSERT_EQUAL(psi_recv_blinded(s.B, m, s.la1, &reply, &rl), FH_EINPUT);
    CU_ASSERT(err_has("not strictly sorted at 1"));
    /* an invalid encoding (all 0xff is not canonical) */
    memcpy(m, s.a1, s.la1);
    memset(pt + 2 * PSI_POINT_BYTES, 0xff, PSI_POINT_BYTES);
    resign(m, s.la1, s.ska);
    CU_ASSERT_EQUAL(psi_recv_blinded(s.B, m, s.la1, &reply, &rl), FH_EINPUT);
    CU_ASSERT(err_has("point 2 is not a valid ristretto255 point"));
    /* the identity (all zero, sorts first) */
    memcpy(m, s.a1, s.la1);
    memset(pt, 0, PSI_POINT_BYTES);
    resign(m, s.la1, s.ska);
    CU_ASSERT_EQUAL(psi_recv_blinded(s.B, m, s.la1, &reply, &rl), FH_EINPUT);
    CU_ASSERT(err_has("point 0 is the identity"));
    /* wrong version, reserved byte, reflected role */
    memcpy(m, s.a1, s.la1);
    m[4] = 2;
    resign(m, s.la1, s.ska);
    CU_ASSERT_EQUAL(psi_recv_blinded(s.B, m, s.la1, &reply, &rl), FH_EINPUT);
    CU_ASSERT(err_has("version 2, expected 1"));
    memcpy(m, s.a1, s.la1);
    m[6] = PSI_ROLE_B;
    resign(m, s.la1, s.ska);
    CU_ASSERT_EQUAL(psi_recv_blinded(s.B, m, s.la1, &reply, &rl), FH_EINPUT);
    CU_ASSERT(err_has("sender role 1"));
    free(m);
    /* message 2 with a count that is not one per own id: B answers A's 5 points; give A a
     * re-signed copy without its last point */
    CU_ASSERT_EQUAL_FATAL(psi_recv_blinded(s.B, s.a1, s.la1, &s.b2, &s.lb2), FH_OK);
    CU_ASSERT_EQUAL_FATAL(psi_recv_blinded(s.A, s.b1, s.lb1, &s.a2, &s.la2), FH_OK);
    const size_t l4 = s.lb2 - PSI_POINT_BYTES;
    uint8_t *m4 = malloc(l4);
    memcpy(m4, s.b2, l4 - PSI_SIG_BYTES);
    m4[40] = 4;
    resign(m4, l4, s.skb);
    CU_ASSERT_EQUAL(psi_recv_reblinded(s.A, m4, l4), FH_EINPUT);
    CU_ASSERT(err_has("4 points, expected 5 (one per own id)"));
    free(m4);
    CU_ASSERT_EQUAL(psi_recv_reblinded(s.A, s.b2, s.lb2), FH_OK);
    sess_close(&s);
}

static void test_fresh_blinding(void)
{
    /* the same ids in two sessions give disjoint blinded values (fresh scalars), and in one
     * session the blinded values are not the plain hashes' order */
    sess s, t;
    sess_open(&s);
    sess_open(&t);
    CU_ASSERT_EQUAL_FATAL(s.la1, t.la1);
    int same = 0;
    for (size_t i = 0; i < 5; i++)
        for (size_t j = 0; j < 5; j++)
            same += memcmp(s.a1 + PSI_HEADER_BYTES + i * PSI_POINT_BYTES,
                           t.a1 + PSI_HEADER_BYTES + j * PSI_POINT_BYTES, PSI_POINT_BYTES) == 0;
    CU_ASSERT_EQUAL(same, 0);
    /* message 1 is strictly sorted by bytes */
    for (size_t i = 1; i < 5; i++)
        CU_ASSERT(memcmp(s.a1 + PSI_HEADER_BYTES + (i - 1) * PSI_POINT_BYTES,
                         s.a1 + PSI_HEADER_BYTES + i * PSI_POINT_BYTES, PSI_POINT_BYTES) < 0);
    sess_close(&s);
    sess_close(&t);
}

void tests_register_psi(void)
{
    CU_pSuite s = CU_add_suite("psi", NULL, NULL);
    tests_add(s, "random_overlap", test_random_overlap);
    tests_add(s, "empty", test_empty);
    tests_add(s, "identical", test_identical);
    tests_add(s, "duplicates_refused", test_duplicates_refused);
    tests_add(s, "tampered_detected", test_tampered_detected);
    tests_add(s, "wrong_session_and_key", test_wrong_session_and_key);
    tests_add(s, "signed_malformed", test_signed_malformed);
    tests_add(s, "fresh_blinding", test_fresh_blinding);
}
