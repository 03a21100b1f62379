/* Secure aggregation inside the training loop: the message flow of include/fedhpc/secagg.h
 * over the comm layer (rank 0 is the aggregator). */
#include "fedhpc/rng.h"
#include "fedhpc/secagg.h"

#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int secagg_dropped(uint64_t seed, double rate, int32_t cid, int64_t round)
{
    if (rate <= 0) return 0;
    rng_t r = rng_stream(seed, (uint64_t)cid, (uint64_t)round, RNG_DROPOUT);
    return rng_uniform(&r) < rate;
}

fh_status secagg_engine_init(secagg_engine *e, const config_t *cfg, int64_t nacc)
{
    memset(e, 0, sizeof *e);
    e->enabled = cfg->sa_enabled;
    e->k = cfg->sa_neighbors;
    e->thr_frac = cfg->sa_threshold;
    e->dropout = cfg->sa_dropout;
    e->seed = (uint64_t)cfg->seed;
    e->nacc = nacc;
    if (!e->enabled) return FH_OK;
    FH_TRY(secagg_init());
    return FH_OK;
}

void secagg_engine_free(secagg_engine *e)
{
    free(e->cbuf);
    e->cbuf = NULL;
}

fh_status secagg_engine_begin(secagg_engine *e, int32_t nloc)
{
    if (nloc > e->cap) {
        free(e->cbuf);
        e->cbuf = malloc((size_t)nloc * (size_t)e->nacc * sizeof *e->cbuf);
        FH_CHECK_ALLOC(e->cbuf);
        e->cap = nloc;
    }
    e->nloc = nloc;
    if (nloc) memset(e->cbuf, 0, (size_t)nloc * (size_t)e->nacc * sizeof *e->cbuf);
    return FH_OK;
}

int64_t *secagg_engine_buffer(secagg_engine *e, int32_t i) { return e->cbuf + (size_t)i * (size_t)e->nacc; }

/* Raw crypto_stream_chacha20 throughput now, on this rank (keystream into a cache-resident
 * 32 KiB buffer, as the masks are made): measured just before masking, under the same load. */
static double chacha_raw_gbps(void)
{
    enum { RAW_BYTES = 32768, RAW_REPS = 512 };
    static unsigned char buf[RAW_BYTES];
    unsigned char key[32] = {1}, nonce[8] = {0};
    crypto_stream_chacha20(buf, RAW_BYTES, nonce, key); /* warm up */
    const double t0 = fh_wtime();
    for (int i = 0; i < RAW_REPS; i++) {
        nonce[0] = (unsigned char)i;
        nonce[1] = (unsigned char)(i >> 8);
        crypto_stream_chacha20(buf, RAW_BYTES, nonce, key);
    }
    const double dt = fh_wtime() - t0;
    return dt > 0 ? (double)RAW_BYTES * RAW_REPS / dt / 1e9 : NAN;
}

#define TAG_INBOX 7102
#define TAG_MASKED 7103

fh_status secagg_engine_round(secagg_engine *e, const comm_t *w, int64_t round,
                              const int32_t *ids, const int32_t *first, int32_t n, int64_t *acc)
{
    const int root = 0;
    const int32_t c0 = first[w->rank], nloc = first[w->rank + 1] - c0;
    const int64_t L = e->nacc;
    secagg_graph g;
    FH_TRY(secagg_graph_build(&g, n, e->k, e->seed, round));
    const int32_t deg = g.deg;
    int32_t t = (int32_t)ceil(e->thr_frac * deg);
    if (t < 1) t = 1;
    e->aborted = 0;
    e->dropped = 0;
    e->mask_s = 0;
    e->mask_bytes = 0;

    secagg_client *cl = calloc((size_t)(nloc ? nloc : 1), sizeof *cl);
    uint8_t *pks = malloc((size_t)n * SECAGG_PK_BYTES);
    uint8_t *mypk = malloc((size_t)(nloc ? nloc : 1) * SECAGG_PK_BYTES);
    uint8_t *ct = malloc((size_t)(nloc ? nloc : 1) * deg * SECAGG_CT_BYTES + 1);
    uint8_t *inbox = malloc((size_t)(nloc ? nloc : 1) * deg * SECAGG_CT_BYTES + 1);
    uint8_t *alive = calloc((size_t)n, 1), *myalive = calloc((size_t)(nloc ? nloc : 1), 1);
    uint8_t *resp = malloc((size_t)(nloc ? nloc : 1) * deg * SECAGG_RESP_BYTES + 1);
    uint64_t *sum = w->rank == root ? calloc((size_t)L, sizeof *sum) : malloc((size_t)L * sizeof *sum);
    uint64_t *rx = w->rank == root ? malloc((size_t)L * sizeof *rx) : NULL;
    int64_t *counts = calloc((size_t)w->size, sizeof *counts);
    void *all = NULL;
    fh_status st = cl && pks && mypk && ct && inbox && alive && myalive && resp && sum && counts &&
                           (w->rank != root || rx)
                       ? FH_OK
                       : fh_error_set(FH_ENOMEM, "out of memory for secure aggregation");
    st = comm_agree(w, st);

    /* 1. keys: gathered on the aggregator, broadcast to every client */
    for (int32_t i = 0; st == FH_OK && i < nloc; i++)
        st = secagg_client_setup(&cl[i], c0 + i, mypk + (size_t)i * SECAGG_PK_BYTES);
    st = comm_agree(w, st);
    if (st == FH_OK) st = comm_gather_bytes(w, mypk, (int64_t)nloc * SECAGG_PK_BYTES, &all, counts, root);
    if (st == FH_OK && w->rank == root) memcpy(pks, all, (size_t)n * SECAGG_PK_BYTES);
    free(all);
    all = NULL;
    if ((st = comm_agree(w, st)) == FH_OK) st = comm_bcast(w, pks, (int64_t)n * SECAGG_PK_BYTES, root);

    /* 2. encrypted shares: to the aggregator, relayed point-to-point to the recipients' ranks */
    for (int32_t i = 0; st == FH_OK && i < nloc; i++)
        st = secagg_client_share(&cl[i], &g, pks, t, ct + (size_t)i * deg * SECAGG_CT_BYTES);
    st = comm_agree(w, st);
    if (st == FH_OK) st = comm_gather_bytes(w, ct, (int64_t)nloc * deg * SECAGG_CT_BYTES, &all, counts, root);
    if ((st = comm_agree(w, st)) == FH_OK) {
        if (w->rank == root) {
            const uint8_t *cts = all;
            for (int q = 0; q < w->size && st == FH_OK; q++) {
                const int32_t v0 = first[q], v1 = first[q + 1];
                uint8_t *box = q == root ? inbox : malloc((size_t)(v1 - v0) * deg * SECAGG_CT_BYTES + 1);
                if (!box) {
                    st = fh_error_set(FH_ENOMEM, "out of memory relaying shares");
                    break;
                }
                for (int32_t v = v0; v < v1; v++)
                    for (int32_t i = 0; i < deg; i++) {
                        const int32_t u = g.nbr[(size_t)v * deg + i], slot = secagg_graph_slot(&g, u, v);
                        memcpy(box + ((size_t)(v - v0) * deg + i) * SECAGG_CT_BYTES,
                               cts + ((size_t)u * deg + slot) * SECAGG_CT_BYTES, SECAGG_CT_BYTES);
                    }
                if (q != root) {
                    st = comm_send_bytes(w, box, (int64_t)(v1 - v0) * deg * SECAGG_CT_BYTES, q, TAG_INBOX);
                    free(box);
                }
            }
        } else {
            st = comm_recv_bytes(w, inbox, (int64_t)nloc * deg * SECAGG_CT_BYTES, root, TAG_INBOX);
        }
    }
    free(all);
    all = NULL;
    st = comm_agree(w, st);

    /* 3. masked inputs of the clients that did not drop, each sent to the aggregator alone */
    e->chacha_gbps = chacha_raw_gbps();
    for (int32_t i = 0; st == FH_OK && i < nloc; i++) {
        myalive[i] = !secagg_dropped(e->seed, e->dropout, ids[c0 + i], round);
        if (!myalive[i]) continue;
        const int64_t b0 = secagg_prg_bytes();
        const double t0 = fh_wtime();
        st = secagg_client_mask(&cl[i], &g, pks, round, (uint64_t *)secagg_engine_buffer(e, i), L);
        e->mask_s += fh_wtime() - t0;
        e->mask_bytes += secagg_prg_bytes() - b0;
    }
    st = comm_agree(w, st);
    if (st == FH_OK) st = comm_gather_bytes(w, myalive, nloc, &all, counts, root);
    if (st == FH_OK && w->rank == root) memcpy(alive, all, (size_t)n);
    free(all);
    all = NULL;
    if ((st = comm_agree(w, st)) == FH_OK) {
        if (w->rank == root) {
            for (int32_t i = 0; i < nloc; i++)
                if (myalive[i]) {
                    const uint64_t *y = (const uint64_t *)secagg_engine_buffer(e, i);
                    for (int64_t j = 0; j < L; j++) sum[j] += y[j];
                }
            for (int q = 0; q < w->size && st == FH_OK; q++) {
                if (q == root) continue;
                for (int32_t v = first[q]; v < first[q + 1] && st == FH_OK; v++) {
                    if (!alive[v]) continue;
                    st = comm_recv_bytes(w, rx, L * (int64_t)sizeof *rx, q, TAG_MASKED);
                    for (int64_t j = 0; st == FH_OK && j < L; j++) sum[j] += rx[j];
                }
            }
        } else {
            for (int32_t i = 0; i < nloc && st == FH_OK; i++)
                if (myalive[i])
                    st = comm_send_bytes(w, secagg_engine_buffer(e, i), L * (int64_t)sizeof(int64_t), root, TAG_MASKED);
        }
    }
    /* 4. the survivor set; survivors answer with the shares the aggregator may see */
    if ((st = comm_agree(w, st)) == FH_OK) st = comm_bcast(w, alive, n, root);
    int32_t nal = 0;
    for (int32_t i = 0; st == FH_OK && i < nloc; i++) {
        if (!myalive[i]) continue;
        st = secagg_client_unmask(&cl[i], &g, pks, inbox + (size_t)i * deg * SECAGG_CT_BYTES, alive,
                                  resp + (size_t)nal * deg * SECAGG_RESP_BYTES);
        nal++;
    }
    st = comm_agree(w, st);
    if (st == FH_OK) st = comm_gather_bytes(w, resp, (int64_t)nal * deg * SECAGG_RESP_BYTES, &all, counts, root);
    /* 5. the aggregator unmasks (or aborts) and shares the sum */
    int32_t flag = 0;
    if (st == FH_OK && w->rank == root) {
        int64_t tot = 0;
        for (int q = 0; q < w->size; q++) tot += counts[q];
        int ab = 0;
        st = secagg_server_unmask(&g, pks, alive, t, all, tot / SECAGG_RESP_BYTES, round, sum, L, &ab);
        flag = ab;
    }
    free(all);
    if ((st = comm_agree(w, st)) == FH_OK) st = comm_bcast(w, &flag, sizeof flag, root);
    if (st == FH_OK) st = comm_bcast(w, sum, L * (int64_t)sizeof *sum, root);
    if (st == FH_OK) {
        e->aborted = flag;
        for (int32_t v = 0; v < n; v++) e->dropped += !alive[v];
        if (!flag)
            for (int64_t j = 0; j < L; j++) acc[j] = (int64_t)((uint64_t)acc[j] + sum[j]);
    }
    if (cl) sodium_memzero(cl, (size_t)(nloc ? nloc : 1) * sizeof *cl);
    free(cl); free(pks); free(mypk); free(ct); free(inbox); free(alive); free(myalive); free(resp);
    free(sum); free(rx); free(counts);
    secagg_graph_free(&g);
    return st;
}
