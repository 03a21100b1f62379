/* libFuzzer harness: what a malicious client can send in a secure-aggregation round
 * (src/privacy/secagg.c, shamir.c): its public keys (decoded by every neighbour's X25519 key
 * agreement and crypto_box), its encrypted share pairs (opened by secagg_client_unmask), its
 * masked input, and its unmasking answers (parsed by the aggregator in secagg_server_unmask,
 * Shamir reconstruction included), plus any number of extra forged answers.
 *
 * Input: n = 2 + b[0] % 7 clients, neighbours k = b[1] % n (0: full graph), threshold
 * fraction (b[2] + 1) / 256, malicious client m = b[3] % n, survivors from the bits of b[4]
 * (the malicious client always survives), flags b[5] (bit 0: replace m's public keys, bit 1:
 * its ciphertexts, bit 2: its masked input, bit 3: its answers); then the replaced messages
 * in that order (64, deg * 128, 8 * 4, deg * 56 bytes), and the rest as extra answers
 * (56 bytes each). libsodium's randomness is a fixed-seed generator so that runs repeat.
 * Checked: no crash, only documented statuses, and with no message replaced and no extra
 * answer, a round that does not abort gives the exact sum of the survivors' inputs.
 */
#include "fuzz_common.h"
#include "fedhpc/secagg.h"

#include <sodium.h>

static uint64_t g_rng;
static uint64_t splitmix(void)
{
    uint64_t z = (g_rng += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static const char *rb_name(void) { return "fedhpc-fuzz-fixed"; }
static uint32_t rb_random(void) { return (uint32_t)splitmix(); }
static void rb_buf(void *const buf, const size_t n)
{
    unsigned char *p = buf;
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)splitmix();
}
static randombytes_implementation k_rb = {rb_name, rb_random, NULL, NULL, rb_buf, NULL};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (randombytes_set_implementation(&k_rb) != 0) abort();
    if (secagg_init() != FH_OK) abort();
    return fz_init(argc, argv);
}

enum { L = 4, MAXN = 8 };

typedef struct {
    const uint8_t *p;
    size_t left;
} reader;
static const uint8_t *take(reader *r, size_t n)
{
    if (r->left < n) return NULL;
    const uint8_t *q = r->p;
    r->p += n;
    r->left -= n;
    return q;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 6) return 0;
    g_rng = 0x5eed;
    const int32_t n = 2 + data[0] % (MAXN - 1), k = data[1] % n, m = data[3] % n;
    const double thr = (data[2] + 1) / 256.0;
    const uint8_t flags = data[5];
    reader rd = {data + 6, size - 6};
    const int64_t round = 1;

    secagg_graph g;
    if (secagg_graph_build(&g, n, k, 7, round) != FH_OK) abort();
    const int32_t deg = g.deg;
    int32_t t = (int32_t)(thr * deg + 0.999999);
    if (t < 1) t = 1;
    if (t > deg) t = deg;

    secagg_client cl[MAXN];
    uint8_t pks[MAXN * SECAGG_PK_BYTES], alive[MAXN];
    uint8_t *ct = calloc((size_t)n * deg, SECAGG_CT_BYTES), *inbox = calloc((size_t)deg, SECAGG_CT_BYTES);
    uint64_t x[MAXN][L], want[L] = {0}, sum[L] = {0};
    int replaced = 0;
    fh_status st = FH_OK;
    for (int32_t u = 0; u < n; u++) {
        if (secagg_client_setup(&cl[u], u, pks + (size_t)u * SECAGG_PK_BYTES) != FH_OK) abort();
        alive[u] = u == m || ((data[4] >> u) & 1);
    }
    const uint8_t *q;
    if ((flags & 1) && (q = take(&rd, SECAGG_PK_BYTES))) {
        memcpy(pks + (size_t)m * SECAGG_PK_BYTES, q, SECAGG_PK_BYTES);
        replaced = 1;
    }
    /* 2. shares (an honest client may refuse a malicious key: FH_EINPUT) */
    for (int32_t u = 0; u < n && st == FH_OK; u++)
        st = secagg_client_share(&cl[u], &g, pks, t, ct + (size_t)u * deg * SECAGG_CT_BYTES);
    fz_status_ok(st);
    if ((flags & 2) && (q = take(&rd, (size_t)deg * SECAGG_CT_BYTES))) {
        memcpy(ct + (size_t)m * deg * SECAGG_CT_BYTES, q, (size_t)deg * SECAGG_CT_BYTES);
        replaced = 1;
    }
    /* 3. masked inputs x_u = (u + 1, ...) */
    for (int32_t u = 0; u < n && st == FH_OK; u++) {
        for (int j = 0; j < L; j++) x[u][j] = (uint64_t)(u + 1) * (j + 1);
        if (!alive[u]) continue;
        for (int j = 0; j < L; j++) want[j] += x[u][j];
        uint64_t y[L];
        memcpy(y, x[u], sizeof y);
        st = secagg_client_mask(&cl[u], &g, pks, round, y, L);
        if (u == m && (flags & 4) && (q = take(&rd, sizeof y))) {
            memcpy(y, q, sizeof y);
            replaced = 1;
        }
        for (int j = 0; st == FH_OK && j < L; j++) sum[j] += y[j];
    }
    fz_status_ok(st);
    /* 4. answers of the survivors, the malicious client's possibly replaced, extra ones after */
    const size_t extra = st == FH_OK ? rd.left / SECAGG_RESP_BYTES : 0;
    uint8_t *resp = calloc((size_t)n * deg + extra + 1, SECAGG_RESP_BYTES);
    int64_t nresp = 0;
    for (int32_t v = 0; v < n && st == FH_OK; v++) {
        if (!alive[v]) continue;
        for (int32_t i = 0; i < deg; i++) {
            const int32_t u = g.nbr[(size_t)v * deg + i], slot = secagg_graph_slot(&g, u, v);
            if (slot < 0) abort();
            memcpy(inbox + (size_t)i * SECAGG_CT_BYTES, ct + ((size_t)u * deg + slot) * SECAGG_CT_BYTES,
                   SECAGG_CT_BYTES);
        }
        uint8_t *r = resp + (size_t)nresp * SECAGG_RESP_BYTES;
        fh_status us = secagg_client_unmask(&cl[v], &g, pks, inbox, alive, r);
        fz_status_ok(us);
        if (v == m && (flags & 8) && (q = take(&rd, (size_t)deg * SECAGG_RESP_BYTES))) {
            memcpy(r, q, (size_t)deg * SECAGG_RESP_BYTES);
            replaced = 1;
            us = FH_OK;
        }
        if (us == FH_OK) nresp += deg; /* a survivor whose shares do not open sends nothing */
        else if (v != m) replaced = 1; /* a forged share made an honest client fail */
    }
    const size_t nx = rd.left / SECAGG_RESP_BYTES;
    if (st == FH_OK && nx) {
        memcpy(resp + (size_t)nresp * SECAGG_RESP_BYTES, rd.p, nx * SECAGG_RESP_BYTES);
        nresp += (int64_t)nx;
        replaced = 1;
    }
    /* 5. the aggregator */
    if (st == FH_OK) {
        int aborted = -1;
        st = secagg_server_unmask(&g, pks, alive, t, resp, nresp, round, sum, L, &aborted);
        fz_status_ok(st);
        if (st == FH_OK && aborted != 0 && aborted != 1) abort();
        if (st == FH_OK && !aborted && !replaced && memcmp(sum, want, sizeof sum) != 0) {
            fprintf(stderr, "fuzz: honest secagg round gave a wrong sum\n");
            abort();
        }
    }
    free(resp);
    free(ct);
    free(inbox);
    secagg_graph_free(&g);
    sodium_memzero(cl, sizeof cl);
    return 0;
}
