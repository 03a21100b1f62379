/* Secure aggregation with FedBuff (issue 11): the group of a secure-aggregation round is the
 * buffer, formed when it fills; see src/fl/async_sa.h for the protocol. */
#define _POSIX_C_SOURCE 200809L
#include "async_sa.h"
#include "fedhpc/agg.h"
#include "fedhpc/privacy.h"

#include <stdlib.h>
#include <string.h>

fh_status as_sa_init(as_sa *s, const config_t *cfg, const comm_t *w, int64_t P)
{
    memset(s, 0, sizeof *s);
    s->P = P;
    s->nacc = P + (cfg->privacy.mode == PRIVACY_CLIENT); /* DP-FedBuff: + the unclipped count */
    s->sum = fh_calloc((size_t)s->nacc, sizeof *s->sum);
    FH_CHECK_ALLOC(s->sum);
    /* one aggregator (rank 0): transcript and truth files there only */
    return secagg_engine_init(&s->e, &cfg->secagg, (uint64_t)cfg->train.seed, 0, w, s->nacc, P);
}

void as_sa_free(as_sa *s)
{
    for (int32_t i = 0; i < s->hcap; i++) free(s->held[i].delta);
    free(s->held); free(s->sum); free(s->buf); free(s->drop);
    secagg_engine_free(&s->e);
    memset(s, 0, sizeof *s);
}

static int32_t held_find(const as_sa *s, int64_t id)
{
    for (int32_t i = 0; i < s->hcap; i++)
        if (s->held[i].id == id) return i;
    return -1;
}

static void held_drop(as_sa *s, int64_t id)
{
    const int32_t i = id >= 0 ? held_find(s, id) : -1;
    if (i >= 0) s->held[i].id = -1; /* the buffer stays for the next job */
}

fh_status as_sa_hold(as_sa *s, int64_t id, const float *delta, int ok)
{
    if (!ok) return FH_OK; /* rank 0 never names an unusable update */
    int32_t i = held_find(s, -1);
    if (i < 0) { /* grow: a host holds its finished jobs until the next release */
        const int32_t cap = s->hcap ? 2 * s->hcap : 4;
        as_sa_held *p = realloc(s->held, (size_t)cap * sizeof *p);
        FH_CHECK_ALLOC(p);
        s->held = p;
        for (int32_t k = s->hcap; k < cap; k++) s->held[k] = (as_sa_held){-1, NULL};
        i = s->hcap;
        s->hcap = cap;
    }
    if (!s->held[i].delta && !(s->held[i].delta = malloc((size_t)s->P * sizeof(float))))
        return fh_error_set(FH_ENOMEM, "out of memory holding the update of job %lld", (long long)id);
    memcpy(s->held[i].delta, delta, (size_t)s->P * sizeof(float));
    s->held[i].id = id;
    return FH_OK;
}

static fh_status entry_push(as_sa_entry **v, int32_t *n, int32_t *cap, as_sa_entry e)
{
    if (*n == *cap) {
        const int32_t c = *cap ? 2 * *cap : 8;
        as_sa_entry *p = realloc(*v, (size_t)c * sizeof *p);
        FH_CHECK_ALLOC(p);
        *v = p;
        *cap = c;
    }
    (*v)[(*n)++] = e;
    return FH_OK;
}

fh_status as_sa_add(as_sa *s, int64_t id, int32_t rank, int32_t client, double weight)
{
    return entry_push(&s->buf, &s->nbuf, &s->bcap, (as_sa_entry){id, rank, client, weight});
}

fh_status as_sa_discard(as_sa *s, int64_t id, int32_t rank)
{
    if (rank != 0) return entry_push(&s->drop, &s->ndrop, &s->dcap, (as_sa_entry){id, rank, -1, 0});
    held_drop(s, id); /* trained here (one rank) */
    return FH_OK;
}

/* Command layout after the header {AS_CMD_RELEASE, round, n, drops}, all int64: first[size+1],
 * ids[n], jobs[n], weights[n] (double bits), clip (double bits), dropped jobs[drops]. */
static int64_t cmd_words(int size, int64_t n, int64_t nd) { return size + 1 + 3 * n + 1 + nd; }

/* This rank's part of the round of command cmd (n clients): its clients first[rank]..first[rank+1]
 * of ids[n] encode their held updates jobs[] with weights[] (clipped to clip > 0 first, the
 * unclipped bit in word P), then the engine's round over w. Every rank calls it; local failures
 * are agreed before the round. */
static fh_status round_local(as_sa *s, const comm_t *w, int64_t round, int64_t n, const int64_t *cmd)
{
    const int size = w->size;
    int32_t *first = cmd ? malloc((size_t)(size + 1 + n) * sizeof *first) : NULL;
    if (!first) /* rank 0 and the other hosts skip the round with this message */
        return comm_agree(w, fh_error_set(FH_ENOMEM, "out of memory on rank %d", w->rank));
    const int64_t *jobs = cmd + size + 1 + n;
    int32_t *ids = first + size + 1;
    double clip;
    for (int q = 0; q <= size; q++) first[q] = (int32_t)cmd[q];
    for (int64_t k = 0; k < n; k++) ids[k] = (int32_t)cmd[size + 1 + k];
    memcpy(&clip, jobs + 2 * n, sizeof clip);
    const int32_t c0 = first[w->rank], nloc = first[w->rank + 1] - c0;
    int64_t *acc = s->sum;
    memset(acc, 0, (size_t)s->nacc * sizeof *acc);
    fh_status st = secagg_engine_begin(&s->e, nloc);
    for (int32_t i = 0; st == FH_OK && i < nloc; i++) {
        const int32_t h = held_find(s, jobs[c0 + i]);
        if (h < 0) {
            st = fh_error_set(FH_EINTERNAL, "async secagg: rank %d does not hold job %lld", w->rank,
                              (long long)jobs[c0 + i]);
            break;
        }
        int64_t *buf = secagg_engine_buffer(&s->e, i);
        float *d = s->held[h].delta;
        double wt;
        memcpy(&wt, jobs + n + c0 + i, sizeof wt);
        if (clip > 0) buf[s->P] = privacy_clip(d, s->P, clip); /* as privacy_client_update at rank 0 */
        fx_accumulate(buf, d, wt, s->P);
        s->held[h].id = -1;
    }
    st = comm_agree(w, st);
    if (st == FH_OK) st = secagg_engine_round(&s->e, w, round, ids, first, (int32_t)n, acc);
    if (st == FH_OK) {
        s->aborted = s->e.aborted;
        st = comm_agree(w, secagg_engine_record_aggregate(&s->e, w, round, ids, (int32_t)n, acc)); /* test only */
    }
    free(first);
    return st;
}

fh_status as_sa_release(as_sa *s, const comm_t *w, int64_t round, double clip)
{
    const int size = w->size;
    const int32_t n = s->nbuf;
    int64_t *cmd = calloc((size_t)(cmd_words(size, n, s->ndrop) + 1), sizeof *cmd);
    int32_t *fill = calloc((size_t)size, sizeof *fill);
    fh_status st = cmd && fill ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory");
    int64_t *jobs = cmd ? cmd + size + 1 + n : NULL; /* no arithmetic on a failed allocation */
    /* the clients grouped by the rank that holds their update (in buffer order within a rank) */
    for (int32_t i = 0; st == FH_OK && i < n; i++) cmd[s->buf[i].rank + 1]++;
    for (int q = 0; st == FH_OK && q < size; q++) cmd[q + 1] += cmd[q];
    for (int32_t i = 0; st == FH_OK && i < n; i++) {
        const as_sa_entry *e = &s->buf[i];
        const int64_t k = cmd[e->rank] + fill[e->rank]++;
        cmd[size + 1 + k] = e->client;
        jobs[k] = e->id;
        memcpy(jobs + n + k, &e->weight, sizeof e->weight);
    }
    if (st == FH_OK) memcpy(jobs + 2 * n, &clip, sizeof clip);
    /* every host gets its command (on the job channel, after the jobs it was given) */
    for (int q = 1; st == FH_OK && q < size; q++) {
        int64_t nd = 0, *drops = jobs + 2 * n + 1;
        for (int32_t i = 0; i < s->ndrop; i++)
            if (s->drop[i].rank == q) drops[nd++] = s->drop[i].id;
        const int64_t hdr[4] = {AS_CMD_RELEASE, round, n, nd};
        st = comm_send_bytes(w, hdr, sizeof hdr, q, AS_TAG_JOB);
        if (st == FH_OK) st = comm_send_bytes(w, cmd, cmd_words(size, n, nd) * (int64_t)sizeof *cmd, q, AS_TAG_JOB);
    }
    s->nbuf = s->ndrop = 0;
    if (st == FH_OK) st = round_local(s, w, round, n, cmd);
    free(cmd); free(fill);
    return st;
}

fh_status as_sa_serve(as_sa *s, const comm_t *w, const int64_t *hdr)
{
    const int64_t round = hdr[1], n = hdr[2], nd = hdr[3], words = cmd_words(w->size, n, nd);
    int64_t *cmd = malloc((size_t)words * sizeof *cmd);
    /* the command's payload is read whatever happens, so that the job channel stays in step */
    fh_status st = comm_recv_bytes(w, cmd, cmd ? words * (int64_t)sizeof *cmd : 0, 0, AS_TAG_JOB);
    if (st == FH_OK) {
        for (int64_t i = 0; cmd && i < nd; i++) held_drop(s, cmd[words - nd + i]);
        st = round_local(s, w, round, n, cmd); /* no cmd: every rank skips the round */
    }
    free(cmd);
    return st;
}
