/* Secure aggregation inside the training loop (include/fedhpc/secagg_round.h): the message flow of include/fedhpc/secagg.h
 * over the comm layer (rank 0 is the aggregator). */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/rng.h"
#include "fedhpc/agg.h"
#include "fedhpc/secagg_round.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

int secagg_dropped(uint64_t seed, double rate, int32_t cid, int64_t round)
{
    if (rate <= 0) return 0;
    rng_t r = rng_stream(seed, (uint64_t)cid, (uint64_t)round, RNG_DROPOUT);
    return rng_uniform(&r) < rate;
}

int secagg_late_dropped(uint64_t seed, double rate, int32_t cid, int64_t round)
{
    if (rate <= 0) return 0;
    rng_t r = rng_stream(seed, (uint64_t)cid, (uint64_t)round, RNG_LATE_DROPOUT);
    return rng_uniform(&r) < rate;
}

void secagg_record_path(const char *path, int rank, char *out, size_t cap)
{
    const size_t n = strlen(path);
    if (rank == 0) snprintf(out, cap, "%s", path);
    else if (n > 3 && strcmp(path + n - 3, ".h5") == 0) snprintf(out, cap, "%.*s.rank%d.h5", (int)(n - 3), path, rank);
    else snprintf(out, cap, "%s.rank%d", path, rank);
}

double secagg_min_survivors(const config_secagg *sa, int32_t m)
{
    if (sa->dropout <= 0 && !sa->enabled) return m;
    const int32_t deg = sa->neighbors > 0 && sa->neighbors < m - 1 ? sa->neighbors + (sa->neighbors & 1) : m - 1;
    const double t = ceil(sa->threshold * (deg > 0 ? deg : 1));
    return t < 1 ? 1 : t;
}

fh_status secagg_engine_init(secagg_engine *e, const config_secagg *sa, uint64_t seed, int multi, const comm_t *w, int64_t nacc,
                             int64_t nparams)
{
    memset(e, 0, sizeof *e);
    e->enabled = sa->enabled;
    e->masks = sa->masks;
    e->k = sa->neighbors;
    e->thr_frac = sa->threshold;
    e->dropout = sa->dropout;
    e->late_dropout = sa->late_dropout;
    e->seed = seed;
    e->nacc = nacc;
    e->nparams = nparams;
    e->group = -1;
    e->truth_on = sa->truth[0] != 0;
    /* the plain loop has one aggregator (rank 0); in the multi-center loop every rank may be a
     * cluster's aggregator and records what it receives in its own file */
    if (w->rank == 0 || multi) {
        char path[CONFIG_PATH_MAX + 32];
        if (e->enabled && sa->transcript[0]) {
            secagg_record_path(sa->transcript, w->rank, path, sizeof path);
            FH_TRY(io_rec_create(path, "fedhpc-secagg-transcript", &e->rec));
        }
        if (e->truth_on) {
            secagg_record_path(sa->truth, w->rank, path, sizeof path);
            FH_TRY(io_rec_create(path, "fedhpc-secagg-truth", &e->truth));
        }
        for (int i = 0; i < 2; i++) {
            io_rec *h = i ? e->truth : e->rec;
            if (!h) continue;
            FH_TRY(io_rec_put_i64(h, "words", nacc));
            FH_TRY(io_rec_put_i64(h, "params", nparams));
            FH_TRY(io_rec_put_i64(h, "fixed_point_bits", 32));
            FH_TRY(io_rec_put_i64(h, "seed", (int64_t)seed));
            FH_TRY(io_rec_put_i64(h, "secagg", e->enabled));
            FH_TRY(io_rec_put_i64(h, "masks", e->enabled && e->masks));
        }
    }
    if (!e->enabled) return FH_OK;
    FH_TRY(secagg_init());
    return FH_OK;
}

void secagg_engine_free(secagg_engine *e)
{
    free(e->cbuf);
    e->cbuf = NULL;
    io_rec_close(e->rec);
    io_rec_close(e->truth);
    e->rec = e->truth = NULL;
}

/* The record name round_R[/cluster_K]/leaf. */
static const char *rec_name(const secagg_engine *e, int64_t round, const char *leaf)
{
    static char buf[128];
    if (e->group >= 0) snprintf(buf, sizeof buf, "round_%08lld/cluster_%d/%s", (long long)round, e->group, leaf);
    else snprintf(buf, sizeof buf, "round_%08lld/%s", (long long)round, leaf);
    return buf;
}

fh_status secagg_engine_record_aggregate(secagg_engine *e, const comm_t *w, int64_t round,
                                         const int32_t *ids, int32_t n, const int64_t *acc)
{
    if (!e->truth || w->rank != 0) return FH_OK;
    if (!io_rec_has(e->truth, rec_name(e, round, "clients")))
        FH_TRY(io_rec_put(e->truth, rec_name(e, round, "clients"), IO_I32, n, 0, ids));
    FH_TRY(io_rec_put(e->truth, rec_name(e, round, "aggregate"), IO_I64, e->nacc, 0, acc));
    return io_rec_flush(e->truth);
}

fh_status secagg_engine_record_value(secagg_engine *e, const comm_t *w, int64_t round, const char *leaf, int64_t v)
{
    if (!e->truth || w->rank != 0) return FH_OK;
    FH_TRY(io_rec_put(e->truth, rec_name(e, round, leaf), IO_I64, 1, 0, &v));
    return io_rec_flush(e->truth);
}

fh_status secagg_engine_begin(secagg_engine *e, int32_t nloc)
{
    FH_TRY(fx_bufs_begin(&e->cbuf, &e->cap, nloc, e->nacc));
    e->nloc = nloc;
    return FH_OK;
}

int64_t *secagg_engine_buffer(secagg_engine *e, int32_t i) { return e->cbuf + (size_t)i * (size_t)e->nacc; }

/* CPU seconds of the calling thread: time slices lost to other processes on a shared machine
 * count neither for the masks nor for the raw ChaCha20 they are compared with. */
static double cpu_now(void)
{
    struct timespec t;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) != 0) return fh_wtime();
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Raw crypto_stream_chacha20 over `bytes` (rounded up to 32 KiB pieces, into one cache-resident
 * buffer); returns the CPU seconds it took and adds the bytes to *done. */
static double chacha_raw(int64_t bytes, int64_t *done)
{
    enum { RAW_BYTES = 32768 };
    static _Thread_local unsigned char buf[RAW_BYTES];
    static _Thread_local uint64_t ctr;
    unsigned char key[32] = {1}, nonce[8];
    const double t0 = cpu_now();
    for (int64_t o = 0; o < bytes; o += RAW_BYTES) {
        ctr++;
        for (int i = 0; i < 8; i++) nonce[i] = (unsigned char)(ctr >> (8 * i));
        crypto_stream_chacha20(buf, RAW_BYTES, nonce, key);
        *done += RAW_BYTES;
    }
    return cpu_now() - t0;
}

#define TAG_INBOX 7102
#define TAG_MASKED 7103

fh_status secagg_engine_round(secagg_engine *e, const comm_t *w, int64_t round,
                              const int32_t *ids, const int32_t *first, int32_t n, int64_t *acc)
{
    const int root = 0;
    const int32_t c0 = first[w->rank], nloc = first[w->rank + 1] - c0;
    const int64_t L = e->nacc;
    if (n < 2) { /* one client's input cannot be hidden in a sum: the round aborts (nothing sent) */
        e->aborted = 1;
        e->dropped = 0;
        e->mask_s = e->raw_s = 0;
        e->mask_bytes = e->raw_bytes = 0;
        e->chacha_gbps = NAN;
        fh_status rst = FH_OK;
        if (w->rank == root && e->rec) {
            const int32_t one = 1;
            rst = io_rec_put(e->rec, rec_name(e, round, "clients"), IO_I32, n, 0, ids);
            if (rst == FH_OK) rst = io_rec_put(e->rec, rec_name(e, round, "aborted"), IO_I32, 1, 0, &one);
        }
        return comm_agree(w, rst);
    }
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
    fh_status rst = FH_OK; /* recording (the aggregator only); agreed at the end */
    io_rec *rec = w->rank == root ? e->rec : NULL;
    if (st == FH_OK && rec) {
        rst = io_rec_put(rec, rec_name(e, round, "clients"), IO_I32, n, 0, ids);
        if (rst == FH_OK) rst = io_rec_put(rec, rec_name(e, round, "neighbors"), IO_I32, n, deg, g.nbr);
        if (rst == FH_OK) rst = io_rec_put(rec, rec_name(e, round, "threshold"), IO_I32, 1, 0, &t);
        if (rst == FH_OK) rst = io_rec_put(rec, rec_name(e, round, "public_keys"), IO_U8, n, SECAGG_PK_BYTES, pks);
    }

    /* 2. encrypted shares: to the aggregator, relayed point-to-point to the recipients' ranks */
    for (int32_t i = 0; st == FH_OK && i < nloc; i++)
        st = secagg_client_share(&cl[i], &g, pks, t, ct + (size_t)i * deg * SECAGG_CT_BYTES);
    st = comm_agree(w, st);
    if (st == FH_OK) st = comm_gather_bytes(w, ct, (int64_t)nloc * deg * SECAGG_CT_BYTES, &all, counts, root);
    if (st == FH_OK && rec && rst == FH_OK) /* row u * deg + i: u's shares for its i-th neighbour */
        rst = io_rec_put(rec, rec_name(e, round, "encrypted_shares"), IO_U8, (int64_t)n * deg, SECAGG_CT_BYTES, all);
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

    /* TEST ONLY ([secagg] truth): the unmasked buffers, gathered to rank 0 */
    if (st == FH_OK && e->truth_on) {
        st = comm_gather_bytes(w, e->cbuf, (int64_t)nloc * L * (int64_t)sizeof(int64_t), &all, counts, root);
        if (st == FH_OK && w->rank == root) {
            fh_status ts = io_rec_put(e->truth, rec_name(e, round, "clients"), IO_I32, n, 0, ids);
            if (ts == FH_OK) ts = io_rec_put(e->truth, rec_name(e, round, "input"), IO_I64, n, L, all);
            if (rst == FH_OK) rst = ts;
        }
        free(all);
        all = NULL;
        st = comm_agree(w, st);
    }

    /* 3. masked inputs of the clients that did not drop, each sent to the aggregator alone.
     * Throughput side by side: after each client's masks (its X25519 key agreements included),
     * raw ChaCha20 over 1/16 of the keystream bytes it made (256 KiB .. 16 MiB), both in CPU
     * seconds of this thread, so the two rates see the same machine state */
    e->raw_s = 0;
    e->raw_bytes = 0;
    for (int32_t i = 0; st == FH_OK && i < nloc; i++) {
        myalive[i] = !secagg_dropped(e->seed, e->dropout, ids[c0 + i], round);
        if (!myalive[i] || !e->masks) continue;
        const int64_t b0 = secagg_prg_bytes();
        const double t0 = cpu_now();
        st = secagg_client_mask(&cl[i], &g, pks, round, (uint64_t *)secagg_engine_buffer(e, i), L);
        e->mask_s += cpu_now() - t0;
        const int64_t b = secagg_prg_bytes() - b0;
        e->mask_bytes += b;
        int64_t rb = b / 16;
        rb = rb < (256 << 10) ? (256 << 10) : rb > (16 << 20) ? (16 << 20) : rb;
        e->raw_s += chacha_raw(rb, &e->raw_bytes);
    }
    e->chacha_gbps = e->raw_s > 0 ? (double)e->raw_bytes / e->raw_s / 1e9 : NAN;
    st = comm_agree(w, st);
    if (st == FH_OK) st = comm_gather_bytes(w, myalive, nloc, &all, counts, root);
    if (st == FH_OK && w->rank == root) memcpy(alive, all, (size_t)n);
    free(all);
    all = NULL;
    if ((st = comm_agree(w, st)) == FH_OK) {
        if (w->rank == root) {
            const char *mname = rec_name(e, round, "masked_input");
            char mname_buf[128];
            snprintf(mname_buf, sizeof mname_buf, "%s", mname);
            for (int32_t i = 0; i < nloc; i++)
                if (myalive[i]) {
                    const uint64_t *y = (const uint64_t *)secagg_engine_buffer(e, i);
                    for (int64_t j = 0; j < L; j++) sum[j] += y[j];
                    if (rec && rst == FH_OK) rst = io_rec_put_rows(rec, mname_buf, IO_U64, n, L, c0 + i, 1, y);
                }
            for (int q = 0; q < w->size && st == FH_OK; q++) {
                if (q == root) continue;
                for (int32_t v = first[q]; v < first[q + 1] && st == FH_OK; v++) {
                    if (!alive[v]) continue;
                    st = comm_recv_bytes(w, rx, L * (int64_t)sizeof *rx, q, TAG_MASKED);
                    for (int64_t j = 0; st == FH_OK && j < L; j++) sum[j] += rx[j];
                    if (st == FH_OK && rec && rst == FH_OK) rst = io_rec_put_rows(rec, mname_buf, IO_U64, n, L, v, 1, rx);
                }
            }
            if (rec && rst == FH_OK) rst = io_rec_put(rec, rec_name(e, round, "alive"), IO_U8, n, 0, alive);
        } else {
            for (int32_t i = 0; i < nloc && st == FH_OK; i++)
                if (myalive[i])
                    st = comm_send_bytes(w, secagg_engine_buffer(e, i), L * (int64_t)sizeof(int64_t), root, TAG_MASKED);
        }
    }
    /* 4. the survivor set; survivors answer with the shares the aggregator may see. A late
     * dropper ([secagg] late_dropout) sent its masked input, so it is a survivor (its input is in
     * the sum and its self mask must be removed), but it does not answer: the aggregator unmasks
     * with the answers of the other survivors (the responders), or aborts */
    if ((st = comm_agree(w, st)) == FH_OK) st = comm_bcast(w, alive, n, root);
    int32_t nal = 0;
    for (int32_t i = 0; st == FH_OK && i < nloc; i++) {
        if (!myalive[i] || secagg_late_dropped(e->seed, e->late_dropout, ids[c0 + i], round)) continue;
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
        if (rec && rst == FH_OK)
            rst = io_rec_put(rec, rec_name(e, round, "unmask_responses"), IO_U8, tot / SECAGG_RESP_BYTES, SECAGG_RESP_BYTES, all);
        if (rec && rst == FH_OK) { /* who answered (the holders of the answers) */
            uint8_t *ans = calloc((size_t)n, 1);
            if (!ans) rst = fh_error_set(FH_ENOMEM, "out of memory recording the responders");
            for (int64_t i = 0; ans && i < tot / SECAGG_RESP_BYTES; i++) {
                int32_t h;
                memcpy(&h, (const uint8_t *)all + (size_t)i * SECAGG_RESP_BYTES + 4, sizeof h);
                if (h >= 0 && h < n) ans[h] = 1;
            }
            if (ans) rst = io_rec_put(rec, rec_name(e, round, "answered"), IO_U8, n, 0, ans);
            free(ans);
        }
        int ab = 0;
        if (e->masks) st = secagg_server_unmask(&g, pks, alive, t, all, tot / SECAGG_RESP_BYTES, round, sum, L, &ab);
        flag = ab;
        if (st == FH_OK && rec && rst == FH_OK) rst = io_rec_put(rec, rec_name(e, round, "unmasked_sum"), IO_U64, L, 0, sum);
        if (st == FH_OK && rec && rst == FH_OK) rst = io_rec_put(rec, rec_name(e, round, "aborted"), IO_I32, 1, 0, &flag);
        if (rec && rst == FH_OK) rst = io_rec_flush(rec);
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
    return comm_agree(w, st != FH_OK ? st : rst);
}
