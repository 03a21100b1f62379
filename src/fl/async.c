/* Stragglers, partial work and asynchronous FL on a virtual clock (issue 7).
 *
 *   rank 0 (aggregator)                          ranks 1..P-1 (client hosts)
 *   -------------------                          ---------------------------
 *   plan jobs: (client, start model version,     loop: receive a job header + start model,
 *     local steps, virtual start/finish time)          read the client's rows, train
 *   hand pending jobs to free ranks (Isend)            (fl_local_train), send back the
 *   Irecv from any source, comm_waitany                update (local - start)
 *   apply updates in virtual-time order          until a stop header arrives
 *     (ties: job id), never in arrival order
 *
 * Synchronous modes (wait_all, drop, partial) run rounds: the round's m sampled clients (the
 * engine's sample) start at the round's virtual start time; wait_all waits for all, drop
 * discards those finishing after the deadline, partial gives each the steps that fit before
 * the deadline and aggregates FedNova-normalised. wait_all gives the plain engine's model.
 * Asynchronous modes keep `concurrency` clients training; when one finishes (virtual time),
 * its update is applied (FedAsync) or buffered (FedBuff), and an idle client, drawn uniformly
 * from rng_stream(seed, 0, job, RNG_ASYNC), starts from the current model.
 * With one rank, rank 0 trains the jobs itself. The model is the same for any rank count:
 * what is computed and in which order it is applied depends only on the virtual clock.
 * With [secagg] (FedBuff and the synchronous modes) the hosts keep their updates and a buffer
 * or round is summed by one secure-aggregation round over all ranks (src/fl/async_secagg.c).
 */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/async.h"
#include "fedhpc/loop.h"
#include "fedhpc/sample.h"
#include "fedhpc/server.h"
#include "fedhpc/privacy.h"
#include "async_sa.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { J_FREE = 0, J_PENDING, J_RUNNING, J_DONE };
#define RES_HDR 64 /* bytes of a result header: int64 id, status, steps, seen, ok; double loss */

double as_staleness_weight(int32_t kind, double a, double b, int64_t tau)
{
    if (tau < 0) tau = 0;
    switch (kind) {
    case AS_STALE_POLY: return pow(1.0 + (double)tau, -a);
    case AS_STALE_HINGE: return (double)tau <= b ? 1.0 : 1.0 / (a * ((double)tau - b) + 1.0);
    default: return 1.0;
    }
}

double as_fednova_coeffs(int32_t n, const int64_t *weight, const int64_t *steps, double rho, double *coef)
{
    double N = 0, teff = 0;
    for (int32_t i = 0; i < n; i++) N += (double)weight[i];
    if (N <= 0) return 0;
    for (int32_t i = 0; i < n; i++) {
        const double t = (double)steps[i];
        const double a = rho > 0 ? (t - rho * (1 - pow(rho, t)) / (1 - rho)) / (1 - rho) : t;
        coef[i] = a; /* a_i for now */
        teff += (double)weight[i] / N * a;
    }
    for (int32_t i = 0; i < n; i++) coef[i] = coef[i] > 0 ? (double)weight[i] / N * teff / coef[i] : 0;
    return teff;
}

int32_t as_earliest(int32_t n, const double *t, const int64_t *id)
{
    int32_t best = -1;
    for (int32_t i = 0; i < n; i++) {
        if (isnan(t[i])) continue;
        if (best < 0 || t[i] < t[best] || (t[i] == t[best] && id[i] < id[best])) best = i;
    }
    return best;
}

/* ---- one job: train a client from a start model (any rank) ------------------------------- */
typedef struct {
    const config_t *cfg;
    io_data *data;
    fl_worker *wk;         /* the loop's worker */
    float *x;
    int32_t *y;
    int64_t cap;
} job_runner;

/* hdr: job id, client, shuffle key, max steps. out: delta[P]; res: steps, seen, ok, loss. With
 * [secagg] (sa != NULL) the update is held on this rank (as_sa_hold). */
static fh_status job_run(job_runner *jr, as_sa *sa, const int64_t *hdr, const float *start, float *delta,
                         int64_t *steps, int64_t *seen, int64_t *ok, double *loss)
{
    const config_t *cfg = jr->cfg;
    const int64_t P = jr->wk->m->nparams, d = jr->wk->m->in;
    const int32_t cid = (int32_t)hdr[1];
    int64_t s0 = 0, n = 0;
    FH_TRY(io_data_client_ranges(jr->data, &cid, 1, &s0, &n));
    FH_TRY(fl_read_rows(jr->data, 1, &s0, &n, (int32_t)d, &jr->x, &jr->y, &jr->cap));
    fl_local_opts o = fl_local_opts_make(cfg, start);
    jr->wk->max_steps = hdr[3];
    memcpy(delta, start, (size_t)P * sizeof *delta);
    *loss = 0;
    *steps = *seen = 0;
    if (n > 0)
        FH_TRY(fl_local_train(jr->wk, &o, rng_stream((uint64_t)cfg->train.seed, (uint64_t)cid, (uint64_t)hdr[2], RNG_SHUFFLE),
                              jr->x, jr->y, n, delta, loss, steps, seen));
    for (int64_t j = 0; j < P; j++) delta[j] -= start[j];
    double norm;
    *ok = n > 0 && isfinite(*loss) && fl_update_ok(delta, P, cfg->fl.max_update_norm, &norm);
    return sa ? as_sa_hold(sa, hdr[0], delta, (int)*ok) : FH_OK;
}

/* A client-host rank: serve jobs until the stop header. Returns its first failure. With
 * [secagg] (sa != NULL) an update stays here until a release command names it (async_sa.h):
 * only the result header goes to rank 0. */
static fh_status host_loop(const comm_t *w, job_runner *jr, int64_t P, as_sa *sa)
{
    float *start = malloc((size_t)P * sizeof *start);
    char *out = malloc(RES_HDR + (size_t)P * sizeof(float));
    fh_status first = start && out ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory on rank %d", w->rank);
    for (;;) {
        int64_t hdr[4];
        fh_status st = comm_recv_bytes(w, hdr, sizeof hdr, 0, AS_TAG_JOB);
        if (st != FH_OK) return st; /* the link is gone: nothing sensible left */
        if (hdr[0] == AS_CMD_RELEASE && sa) { /* a buffer is released: join its secure aggregation */
            st = as_sa_serve(sa, w, hdr);
            if (st != FH_OK && first == FH_OK) first = st; /* keep serving: rank 0 collects and stops */
            continue;
        }
        if (hdr[0] < 0) break;
        st = comm_recv_bytes(w, start ? (void *)start : (void *)out, start ? P * (int64_t)sizeof(float) : 0, 0, AS_TAG_MODEL);
        if (st != FH_OK) return st;
        int64_t r[5] = {hdr[0], 0, 0, 0, 0};
        double loss = 0;
        fh_status js = first == FH_OK ? job_run(jr, sa, hdr, start, (float *)(out + RES_HDR), &r[2], &r[3], &r[4], &loss)
                                      : first;
        if (js != FH_OK && first == FH_OK) first = js;
        r[1] = js;
        char tiny[RES_HDR], *msg = out ? out : tiny; /* no out: js is the allocation failure, a header only */
        memcpy(msg, r, sizeof r);
        memcpy(msg + sizeof r, &loss, sizeof loss);
        st = comm_send_bytes(w, msg, RES_HDR + (js == FH_OK && !sa ? P * (int64_t)sizeof(float) : 0), 0, AS_TAG_RES);
        if (st != FH_OK) return st;
    }
    free(start); free(out);
    return first;
}

/* ---- the aggregator ------------------------------------------------------------------------ */
typedef struct {
    int64_t id;            /* job id (-1: free slot)                                    */
    int32_t client, state, rank;
    int64_t version;       /* model version it started from                            */
    double t_start, t_fin; /* virtual times                                            */
    int64_t max_steps;     /* 0: all epochs                                            */
    int64_t shuffle;       /* shuffle stream round key                                 */
    float *start, *delta;  /* [P]                                                      */
    int64_t steps, seen, ok;
    double loss;
} as_job;

typedef struct {
    const config_t *cfg;
    const comm_t *w;
    int64_t P;
    job_runner *jr;         /* rank 0's own runner (one rank; evaluation workspace)     */
    int32_t nslots;
    as_job *jobs;
    double *tfin;           /* [nslots] finish times of occupied slots (NAN: none)      */
    int64_t *jid;
    int nw;                 /* client-host ranks                                        */
    comm_req *rreq, *sreq;  /* [nw] receives (any source), [2 * nw] sends               */
    char **rbuf;            /* [nw] receive buffers                                     */
    int64_t (*shdr)[4];     /* [nw] job headers being sent                              */
    int32_t *busy;          /* [nw] slot a host works on, or -1                         */
    float *starts, *deltas; /* [nslots * P] the jobs' start models and updates (jobs[i].start, .delta) */
    int host_failed;        /* a host reported a failure (its message comes via agree)  */
    as_sa *sa;              /* [secagg]: updates stay where they were trained, or NULL   */
    int posted;             /* hosts whose receive is posted                            */
} agg_t;

/* Hand pending jobs (lowest id first) to free hosts; with no hosts, train them here. */
static fh_status agg_pump(agg_t *a)
{
    for (;;) {
        int32_t best = -1;
        for (int32_t i = 0; i < a->nslots; i++)
            if (a->jobs[i].state == J_PENDING && (best < 0 || a->jobs[i].id < a->jobs[best].id)) best = i;
        if (best < 0) return FH_OK;
        as_job *j = &a->jobs[best];
        int64_t hdr[4] = {j->id, j->client, j->shuffle, j->max_steps};
        if (a->nw == 0) {
            FH_TRY(job_run(a->jr, a->sa, hdr, j->start, j->delta, &j->steps, &j->seen, &j->ok, &j->loss)); /* rank 0 hosts */
            j->rank = 0;
            j->state = J_DONE;
            continue;
        }
        int h = -1;
        for (int i = 0; i < a->nw && h < 0; i++)
            if (a->busy[i] < 0) h = i;
        if (h < 0) return FH_OK;
        for (int k = 0; k < 2; k++) FH_TRY(comm_wait(&a->sreq[2 * h + k]));
        memcpy(a->shdr[h], hdr, sizeof hdr);
        FH_TRY(comm_isend_bytes(a->w, a->shdr[h], sizeof hdr, h + 1, AS_TAG_JOB, &a->sreq[2 * h]));
        FH_TRY(comm_isend_bytes(a->w, j->start, a->P * (int64_t)sizeof(float), h + 1, AS_TAG_MODEL, &a->sreq[2 * h + 1]));
        a->busy[h] = best;
        j->state = J_RUNNING;
        j->rank = h + 1;
    }
}

/* Complete one receive (whichever host finishes first), store the result in its job. */
static fh_status agg_receive_one(agg_t *a)
{
    int idx = -1, src = -1;
    FH_TRY(comm_waitany(a->nw, a->rreq, &idx, &src));
    if (idx < 0 || src < 1 || src > a->nw) return fh_error_set(FH_EINTERNAL, "async: no receive pending");
    const int h = src - 1;
    int64_t r[5];
    memcpy(r, a->rbuf[idx], sizeof r);
    const int32_t slot = a->busy[h];
    if (slot < 0 || a->jobs[slot].id != r[0])
        return fh_error_set(FH_EINTERNAL, "async: rank %d returned job %lld it was not given", src, (long long)r[0]);
    as_job *j = &a->jobs[slot];
    if (r[1] != FH_OK) a->host_failed = 1;
    else if (!a->sa) memcpy(j->delta, a->rbuf[idx] + RES_HDR, (size_t)a->P * sizeof(float));
    j->steps = r[2];
    j->seen = r[3];
    j->ok = r[1] == FH_OK ? r[4] : 0;
    memcpy(&j->loss, a->rbuf[idx] + sizeof r, sizeof j->loss);
    j->state = J_DONE;
    a->busy[h] = -1;
    return comm_irecv_bytes(a->w, a->rbuf[idx], RES_HDR + a->P * (int64_t)sizeof(float), COMM_ANY_SOURCE, AS_TAG_RES,
                            &a->rreq[idx]);
}

/* Block until the job in `slot` has its result (keeping every host busy meanwhile). */
static fh_status agg_wait(agg_t *a, int32_t slot)
{
    for (;;) {
        FH_TRY(agg_pump(a));
        if (a->jobs[slot].state == J_DONE || a->host_failed) return FH_OK;
        FH_TRY(agg_receive_one(a));
    }
}

/* Collect results of running jobs, then stop every host. */
static fh_status agg_stop(agg_t *a)
{
    fh_status st = FH_OK;
    /* a.posted hosts have receives posted (all of them once agg_init got that far) */
    for (int i = 0; i < a->posted; i++)
        while (st == FH_OK && a->busy[i] >= 0) st = agg_receive_one(a);
    for (int i = 0; i < a->w->size - 1; i++) {
        fh_status s2 = i < a->posted ? comm_cancel(&a->rreq[i]) : FH_OK;
        for (int k = 0; i < a->posted && k < 2; k++) comm_wait(&a->sreq[2 * i + k]);
        if (st == FH_OK) st = s2;
        int64_t hdr[4] = {-1, 0, 0, 0}; /* every host gets its stop, whatever happened */
        s2 = comm_send_bytes(a->w, hdr, sizeof hdr, i + 1, AS_TAG_JOB);
        if (st == FH_OK) st = s2;
    }
    return st;
}

/* ---- the loop state on rank 0 (everything a checkpoint holds) ---------------------------- */
typedef struct {
    double now;            /* virtual time                                              */
    int64_t version;       /* server model version (= server updates so far)            */
    int64_t next_job;      /* next job id                                               */
    int64_t *acc;          /* [P] FedBuff / round accumulator (fixed point)             */
    int64_t nbuf;          /* FedBuff: updates in the buffer                            */
    int64_t *started, *applied, *discarded; /* [C] per client                           */
    int64_t *stale_hist;   /* [STALE_BINS] staleness of applied updates (last bin: more) */
    uint8_t *busyc;        /* [C] client is training                                    */
    /* [privacy] mode = client with FedBuff (NULL / 0 otherwise)                            */
    uint8_t *inbuf;        /* [C] client has an update in the current buffer            */
    int64_t *joined;       /* [C] applied buffers the client contributed to             */
    int64_t below;         /* updates of the current buffer that were not clipped       */
    int dp_stop;           /* the next buffer would exceed [privacy] epsilon_budget     */
} as_state;
#define STALE_BINS 1025

/* Slowest and fastest quartile of clients (by speed, ties by id: the first and last n of the
 * speed order async_ctx.all) with their rows on rank 0 (at most 2000 rows a client) for the
 * accuracy gap. */
typedef struct {
    int32_t n[2];
    int64_t *cnt[2];
    float *x[2];
    int32_t *y[2];
} quartiles;

static const sys_profile *g_sort_prof;
static int cmp_speed(const void *pa, const void *pb)
{
    const int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    const double sa = g_sort_prof->speed[a], sb = g_sort_prof->speed[b];
    if (sa != sb) return sa < sb ? -1 : 1;
    return (a > b) - (a < b);
}

/* order[C]: the clients in id order on entry, sorted by speed on return. */
static fh_status quartiles_load(quartiles *q, const sys_profile *prof, io_data *data, int64_t d, int32_t *order)
{
    const int32_t C = prof->C, nq = C / 4 > 0 ? C / 4 : 1;
    g_sort_prof = prof;
    qsort(order, (size_t)C, sizeof *order, cmp_speed);
    int64_t *st = malloc((size_t)nq * sizeof(int64_t));
    fh_status s = FH_OK;
    for (int k = 0; s == FH_OK && k < 2; k++) {
        q->n[k] = nq;
        q->cnt[k] = malloc((size_t)nq * sizeof(int64_t));
        if (!q->cnt[k] || !st) s = fh_error_set(FH_ENOMEM, "out of memory");
        else s = io_data_client_ranges(data, order + (k == 0 ? 0 : C - nq), nq, st, q->cnt[k]);
        int64_t rows = 0;
        for (int32_t i = 0; s == FH_OK && i < nq; i++) {
            if (q->cnt[k][i] > 2000) q->cnt[k][i] = 2000;
            rows += q->cnt[k][i];
        }
        q->x[k] = malloc((size_t)(rows ? rows : 1) * (size_t)d * sizeof(float));
        q->y[k] = malloc((size_t)(rows ? rows : 1) * sizeof(int32_t));
        if (s == FH_OK && (!q->x[k] || !q->y[k])) s = fh_error_set(FH_ENOMEM, "out of memory for quartile clients");
        if (s == FH_OK) s = io_data_read_ranges(data, "train", nq, st, q->cnt[k], q->x[k], q->y[k]);
    }
    free(st);
    return s;
}

/* Mean over a quartile's clients of their accuracy on their own rows. */
static fh_status quartile_acc(const quartiles *q, int k, job_runner *jr, const float *params, double *out)
{
    const model_t *m = jr->wk->m;
    double s = 0;
    int32_t nc = 0;
    int64_t row = 0;
    for (int32_t i = 0; i < q->n[k]; i++) {
        const int64_t n = q->cnt[k][i];
        if (n == 0) continue;
        metrics_t mt;
        FH_TRY(model_evaluate(m, params, q->x[k] + row * m->in, q->y[k] + row, n, jr->wk->ws, jr->wk->ws_rows, &mt));
        s += mt.accuracy;
        nc++;
        row += n;
    }
    *out = nc ? s / nc : NAN;
    return FH_OK;
}

/* Quantile of the staleness histogram (bins = staleness; the last one: that or more). */
static int64_t hist_quantile(const int64_t *h, double q)
{
    int64_t tot = 0;
    for (int i = 0; i < STALE_BINS; i++) tot += h[i];
    if (!tot) return 0;
    const int64_t want = (int64_t)ceil(q * (double)tot);
    int64_t c = 0;
    for (int i = 0; i < STALE_BINS; i++) {
        c += h[i];
        if (c >= want && c > 0) return i;
    }
    return STALE_BINS - 1;
}

static const char *ASYNC_HDR =
    "round,virtual_time,wall_s,accuracy,f1,updates,discarded,staleness_mean,staleness_max,"
    "staleness_p50_all,staleness_p90_all,acc_slow_q,acc_fast_q,gap_fast_minus_slow,"
    "participation_min,participation_max,clients_never,epsilon,epsilon_max_client\n";

/* Round-level numbers of the reporting step. */
typedef struct {
    int32_t updates, discarded;
    double stale_sum;
    int64_t stale_max;
    double loss;
    int64_t seen;
} round_acc;


/* Start a job in `slot` for client c at the current virtual time from the current model. */
static void job_start(agg_t *a, as_state *s, const sys_profile *prof, const int64_t *count, int32_t slot,
                      int32_t c, int64_t max_steps, int64_t shuffle, const float *params)
{
    const config_t *cfg = a->cfg;
    as_job *j = &a->jobs[slot];
    const int64_t full = sys_full_steps(count[c], cfg->train.local_epochs, cfg->train.batch_size);
    const int64_t steps = max_steps > 0 && max_steps < full ? max_steps : full;
    const double t_fin = sys_advance(prof, c, s->now, sys_job_work(prof, c, steps, a->P));
    *j = (as_job){.id = s->next_job++, .client = c, .state = J_PENDING, .version = s->version, .t_start = s->now,
                  .t_fin = t_fin, .max_steps = steps < full ? steps : 0, .shuffle = shuffle, .start = j->start,
                  .delta = j->delta};
    a->jid[slot] = j->id;
    a->tfin[slot] = t_fin;
    memcpy(j->start, params, (size_t)a->P * sizeof(float));
    s->started[c]++;
    s->busyc[c] = 1;
}

static void job_clear(agg_t *a, as_state *s, int32_t slot)
{
    s->busyc[a->jobs[slot].client] = 0;
    a->jobs[slot].state = J_FREE;
    a->jid[slot] = a->jobs[slot].id = -1;
    a->tfin[slot] = NAN;
}

/* An idle client, uniform from rng_stream(seed, 0, job, RNG_ASYNC); -1 if none is idle. With
 * DP-FedBuff a client with an update in the current buffer waits until the buffer is applied
 * (one update a client a buffer: the sensitivity of the buffer sum is C / K). */
static int32_t pick_idle(const config_t *cfg, const as_state *s, int32_t C)
{
#define AS_IDLE(c) (!s->busyc[c] && !(s->inbuf && s->inbuf[c]))
    int32_t idle = 0;
    for (int32_t c = 0; c < C; c++) idle += AS_IDLE(c);
    if (!idle) return -1;
    rng_t r = rng_stream((uint64_t)cfg->train.seed, 0, (uint64_t)s->next_job, RNG_ASYNC);
    int64_t k = (int64_t)rng_below(&r, (uint64_t)idle);
    for (int32_t c = 0; c < C; c++)
        if (AS_IDLE(c) && k-- == 0) return c;
    return -1;
#undef AS_IDLE
}

/* Job j's update applied at staleness tau: the client's, the round's and the histogram's counts. */
static void note_applied(as_state *s, round_acc *ra, const as_job *j, int64_t tau)
{
    s->applied[j->client]++;
    ra->updates++;
    ra->loss += j->loss;
    ra->seen += j->seen;
    s->stale_hist[tau < STALE_BINS - 1 ? tau : STALE_BINS - 1]++;
    ra->stale_sum += (double)tau;
    if (tau > ra->stale_max) ra->stale_max = tau;
}

static fh_status check_async_config(const config_t *cfg, const io_data_meta *meta)
{
    const int md = cfg->async.mode;
    if ((md == AS_DROP || md == AS_PARTIAL) && !(cfg->async.deadline > 0))
        return fh_error_set(FH_EINPUT, "[async] deadline: expected a positive deadline for mode %s, got %g",
                            md == AS_DROP ? "drop" : "partial", cfg->async.deadline);
    if ((cfg->system.on > 0) != (cfg->system.off > 0))
        return fh_error_set(FH_EINPUT, "[system] on/off: set both periods (or neither), got on = %g, off = %g",
                            cfg->system.on, cfg->system.off);
    if (cfg->fl.algorithm == ALG_SCAFFOLD || cfg->fl.algorithm == ALG_CENTRALIZED)
        return fh_error_set(FH_EINPUT, "[async] mode: not available with [fl] algorithm = %s (use fedavg, fedprox, "
                            "fedavgm, fedadam or fedyogi)", config_algorithm_name(cfg->fl.algorithm));
    if (md == AS_FEDASYNC && cfg->fl.algorithm != ALG_FEDAVG && cfg->fl.algorithm != ALG_FEDPROX)
        return fh_error_set(FH_EINPUT, "[async] mode = fedasync mixes models itself: [fl] algorithm must be fedavg or "
                            "fedprox, got %s", config_algorithm_name(cfg->fl.algorithm));
    /* config_validate refuses [async] with [cluster]/[personalize], and allows [privacy] with
     * [async] only as mode = client with mode = fedbuff */
    if (cfg->privacy.mode == PRIVACY_CLIENT && cfg->privacy.schedule != 0)
        return fh_error_set(FH_EINPUT, "[privacy] schedule = norm: not available with [async] mode = fedbuff (yet)");
    if (cfg->privacy.mode == PRIVACY_CLIENT && cfg->async.buffer > meta->clients)
        return fh_error_set(FH_EINPUT, "[async] buffer: DP-FedBuff takes one update a client a buffer, so the buffer "
                            "(%d) must not exceed the %d clients", cfg->async.buffer, meta->clients);
    /* DP-FedBuff: every staleness weight is <= 1 (a, b >= 0): a weighted clipped update adds at most C / K */
    return FH_OK;
}


/* ---- the strategy: rank 0 runs the loop on a one-rank communicator, the others serve jobs ---- */
typedef struct {
    comm_t self;            /* rank 0 alone (the loop's communicator there)              */
    job_runner jr;
    sys_profile prof;
    agg_t a;
    as_state s;
    fl_server srv;
    quartiles q;
    privacy_run pv;         /* [privacy] state (mode none unless DP-FedBuff)             */
    int64_t *count, *start; /* [C] every client's rows                                   */
    int32_t *all;           /* [C] clients sorted by speed (participation.csv)           */
    FILE *csv;              /* async.csv                                                 */
    double t0;
    round_acc ra;           /* the round being reported                                  */
    double slow, fast;      /* quartile accuracies of the last evaluation                */
    double eps_client;      /* DP-FedBuff: the bound without sampling (privacy_client_bound) */
    int serving;            /* rank 0: the hosts are serving jobs and must be stopped     */
    fh_status host_st;      /* a host: how its job loop ended                            */
    int32_t *ids;           /* sync rounds: [m] scratch                                  */
    int64_t *stp, *wts;
    double *coef;
    float *dec;             /* [P] the decoded aggregate                                 */
    as_sa sa;               /* [secagg] (sa.e.enabled, every rank): held updates, buffer and engine
                             * (src/fl/async_secagg.c); rank 0 reaches it as a.sa            */
} async_ctx;

/* The number of client slots (save = 0: checked against this run's). */
static fh_status slots_io(void *p, const comm_t *w, ckpt *h, int save)
{
    (void)w;
    const agg_t *a = p;
    int64_t v = a->nslots;
    if (save) return ckpt_put_i64(h, "as_slots", v);
    FH_TRY(ckpt_get_i64(h, "as_slots", &v));
    if (v != a->nslots)
        return fh_error_set(FH_EINPUT, "%s: written with %lld client slots, this run has %d", ckpt_path(h), (long long)v,
                            a->nslots);
    return FH_OK;
}
static fh_status slots_save(void *p, const comm_t *w, ckpt *h) { return slots_io(p, w, h, 1); }
static fh_status slots_load(void *p, const comm_t *w, ckpt *h) { return slots_io(p, w, h, 0); }

/* The jobs in flight (their start models: the field as_job_start): saved as they are (recomputed
 * after a resume: deterministic). save = 0: loaded. */
static fh_status jobs_io(void *p, const comm_t *w, ckpt *h, int save)
{
    (void)w;
    async_ctx *x = p;
    agg_t *a = &x->a;
    const int32_t ns = a->nslots;
    int64_t *ji = malloc((size_t)(ns ? ns : 1) * 6 * sizeof *ji);
    double *jt = malloc((size_t)(ns ? ns : 1) * 2 * sizeof *jt);
    fh_status st = ji && jt ? FH_OK : fh_error_set(FH_ENOMEM, save ? "out of memory for the checkpoint" : "out of memory");
    if (st == FH_OK && ns && !save) st = ckpt_get_array(h, "as_job_int", CKPT_I64, ji, 6 * ns);
    if (st == FH_OK && ns && !save) st = ckpt_get_array(h, "as_job_time", CKPT_F64, jt, 2 * ns);
    for (int32_t i = 0; st == FH_OK && i < ns; i++) {
        as_job *j = &a->jobs[i];
        int64_t *v = ji + 6 * i;
        double *t = jt + 2 * i;
        if (save) {
            memcpy(v, (int64_t[6]){j->id, j->client, j->version, j->max_steps, j->shuffle, 0}, 6 * sizeof *v);
            memcpy(t, (double[2]){j->t_start, j->t_fin}, 2 * sizeof *t);
            continue;
        }
        j->id = a->jid[i] = v[0];
        if (j->id < 0) continue;
        /* in flight when saved: pending, recomputed (deterministic) */
        *j = (as_job){.id = v[0], .client = (int32_t)v[1], .version = v[2], .max_steps = v[3], .shuffle = v[4],
                      .t_start = t[0], .t_fin = t[1], .state = J_PENDING, .start = j->start, .delta = j->delta};
        a->tfin[i] = t[1];
        x->s.busyc[j->client] = 1;
    }
    if (st == FH_OK && ns && save) st = ckpt_put_array(h, "as_job_int", CKPT_I64, ji, 6 * ns);
    if (st == FH_OK && ns && save) st = ckpt_put_array(h, "as_job_time", CKPT_F64, jt, 2 * ns);
    free(ji); free(jt);
    /* checkpoints follow a server update; the updates of a part-filled buffer would be held on
     * hosts that a resumed run does not have */
    if (st == FH_OK && !save && x->a.sa && x->s.nbuf != 0)
        st = fh_error_set(FH_EINPUT, "%s: [secagg] with FedBuff: written with %lld updates in the buffer (expected 0)",
                          ckpt_path(h), (long long)x->s.nbuf);
    return st;
}
static fh_status jobs_save(void *p, const comm_t *w, ckpt *h) { return jobs_io(p, w, h, 1); }
static fh_status jobs_load(void *p, const comm_t *w, ckpt *h) { return jobs_io(p, w, h, 0); }

/* Everything the aggregator's checkpoint holds, in the order it is checked on resume. */
static void async_fields(fl_loop *L, async_ctx *x)
{
    const int64_t P = L->P, C = L->C;
    as_state *s = &x->s;
    fl_loop_hook(L, "as_slots", &x->a, slots_save, slots_load);
    fl_loop_field(L, "as_now", FL_FIELD_F64, CKPT_F64, &s->now, 1);
    fl_loop_field(L, "as_version", FL_FIELD_I64, CKPT_I64, &s->version, 1);
    fl_loop_field(L, "as_next_job", FL_FIELD_I64, CKPT_I64, &s->next_job, 1);
    fl_loop_field(L, "as_nbuf", FL_FIELD_I64, CKPT_I64, &s->nbuf, 1);
    fl_loop_field(L, "params", FL_FIELD_ARRAY, CKPT_F32, L->params, P);
    fl_loop_field(L, "server_m", FL_FIELD_ARRAY, CKPT_F32, x->srv.m, P);
    fl_loop_field(L, "server_v", FL_FIELD_ARRAY, CKPT_F32, x->srv.v, P);
    fl_loop_field(L, "as_acc", FL_FIELD_ARRAY, CKPT_I64, s->acc, P);
    fl_loop_field(L, "as_started", FL_FIELD_ARRAY, CKPT_I64, s->started, C);
    fl_loop_field(L, "as_applied", FL_FIELD_ARRAY, CKPT_I64, s->applied, C);
    fl_loop_field(L, "as_discarded", FL_FIELD_ARRAY, CKPT_I64, s->discarded, C);
    fl_loop_field(L, "as_stale_hist", FL_FIELD_ARRAY, CKPT_I64, s->stale_hist, STALE_BINS);
    if (s->inbuf) { /* DP-FedBuff: who is in the buffer, buffers joined (the privacy state: fl_loop_privacy) */
        fl_loop_field(L, "as_dp_inbuf", FL_FIELD_ARRAY, CKPT_U8, s->inbuf, C);
        fl_loop_field(L, "as_dp_joined", FL_FIELD_ARRAY, CKPT_I64, s->joined, C);
        fl_loop_field(L, "as_dp_below", FL_FIELD_I64, CKPT_I64, &s->below, 1);
    }
    fl_loop_hook(L, "as_jobs", x, jobs_save, jobs_load);
    fl_loop_field(L, "as_job_start", FL_FIELD_ARRAY, CKPT_F32, x->a.starts, (int64_t)x->a.nslots * P);
}

/* Rank 0's buffers, profiles, quartiles and the fields of its checkpoints. */
static fh_status async_init_aggregator(fl_loop *L, async_ctx *x, int32_t M)
{
    const config_t *cfg = L->cfg;
    const int64_t P = L->P;
    const int32_t C = L->C;
    as_state *s = &x->s;
    agg_t *a = &x->a; /* M job slots; the hosts' requests and buffers, their receives posted */
    *a = (agg_t){.cfg = cfg, .w = L->world, .P = P, .jr = &x->jr, .sa = cfg->secagg.enabled ? &x->sa : NULL, .nslots = M,
                 .nw = L->world->size - 1};
    a->jobs = fh_calloc((size_t)M, sizeof *a->jobs);
    a->tfin = malloc((size_t)M * sizeof *a->tfin);
    a->jid = malloc((size_t)M * sizeof *a->jid);
    a->rreq = malloc((size_t)(a->nw + 1) * sizeof *a->rreq);
    a->sreq = malloc((size_t)(2 * a->nw + 1) * sizeof *a->sreq);
    a->rbuf = fh_calloc((size_t)(a->nw + 1), sizeof *a->rbuf);
    a->shdr = malloc((size_t)(a->nw + 1) * sizeof *a->shdr);
    a->busy = malloc((size_t)(a->nw + 1) * sizeof *a->busy);
    a->starts = fh_calloc((size_t)M * (size_t)P, sizeof *a->starts);
    a->deltas = malloc((size_t)M * (size_t)P * sizeof *a->deltas);
    FH_CHECK_ALLOC(a->jobs && a->tfin && a->jid && a->rreq && a->sreq && a->rbuf && a->shdr && a->busy && a->starts &&
                   a->deltas ? a->busy : NULL);
    for (int32_t i = 0; i < M; i++) {
        a->jid[i] = a->jobs[i].id = -1;
        a->jobs[i].start = a->starts + (int64_t)i * P;
        a->jobs[i].delta = a->deltas + (int64_t)i * P;
        a->tfin[i] = NAN;
    }
    for (int i = 0; i < a->nw; i++) {
        a->rbuf[i] = malloc(RES_HDR + (size_t)P * sizeof(float));
        FH_CHECK_ALLOC(a->rbuf[i]);
        a->busy[i] = -1;
        a->sreq[2 * i] = a->sreq[2 * i + 1] = COMM_REQ_NULL;
        FH_TRY(comm_irecv_bytes(a->w, a->rbuf[i], RES_HDR + P * (int64_t)sizeof(float), COMM_ANY_SOURCE, AS_TAG_RES,
                                &a->rreq[i]));
        a->posted = i + 1;
    }
    FH_TRY(fl_server_init(&x->srv, &cfg->fl, P));
    /* DP-FedBuff: a "round" of the privacy state is a buffer of K updates (q = K / C) */
    FH_TRY(fl_loop_privacy(L, &x->pv, cfg->async.buffer));
    s->acc = fh_calloc((size_t)P, sizeof *s->acc);
    s->started = fh_calloc((size_t)C, sizeof *s->started);
    s->applied = fh_calloc((size_t)C, sizeof *s->applied);
    s->discarded = fh_calloc((size_t)C, sizeof *s->discarded);
    s->stale_hist = fh_calloc(STALE_BINS, sizeof *s->stale_hist);
    s->busyc = fh_calloc((size_t)C, 1);
    x->count = malloc((size_t)C * sizeof *x->count);
    x->start = malloc((size_t)C * sizeof *x->start);
    x->all = malloc((size_t)C * sizeof *x->all);
    x->ids = malloc((size_t)M * sizeof *x->ids);
    x->stp = malloc((size_t)M * sizeof *x->stp);
    x->wts = malloc((size_t)M * sizeof *x->wts);
    x->coef = malloc((size_t)M * sizeof *x->coef);
    x->dec = malloc((size_t)P * sizeof *x->dec);
    const int dp = x->pv.mode == PRIVACY_CLIENT; /* DP-FedBuff only */
    s->inbuf = dp ? fh_calloc((size_t)C, 1) : NULL;
    s->joined = dp ? fh_calloc((size_t)C, sizeof *s->joined) : NULL;
    if (!s->acc || !s->started || !s->applied || !s->discarded || !s->stale_hist || !s->busyc || !x->count || !x->start ||
        !x->all || !x->ids || !x->stp || !x->wts || !x->coef || !x->dec || (dp && (!s->inbuf || !s->joined)))
        return fh_error_set(FH_ENOMEM, "out of memory");
    for (int32_t c = 0; c < C; c++) x->all[c] = c;
    FH_TRY(io_data_client_ranges(L->data, x->all, C, x->start, x->count));
    FH_TRY(quartiles_load(&x->q, &x->prof, L->data, L->md->in, x->all));
    async_fields(L, x);
    return FH_OK;
}

static fh_status async_init(fl_loop *L)
{
    const config_t *cfg = L->cfg;
    const comm_t *w = L->world;
    const int32_t C = L->C;
    FH_TRY(check_async_config(cfg, L->meta));
    if (w->size > 1 && w->size - 1 > C)
        return fh_error_set(FH_EINPUT, "%s: %d clients, but %d client-host ranks: run with at most %d ranks",
                            cfg->data.file, C, w->size - 1, C + 1);
    async_ctx *x = L->s = fh_calloc(1, sizeof *x);
    FH_CHECK_ALLOC(x);
    int32_t M = cfg->async.mode <= AS_PARTIAL ? L->m
              : (cfg->async.concurrency > 0 ? cfg->async.concurrency : cfg->train.clients_per_round);
    if (M > C) M = C;
    /* a one-rank communicator for rank 0's checkpoints (collective over the world) */
    FH_TRY(comm_split(w, w->rank == 0 ? 0 : -1, 0, &x->self));
    x->jr = (job_runner){.cfg = cfg, .data = L->data, .wk = &L->wk};
    /* device profiles on every rank, so that a bad speeds file stops every rank here */
    FH_TRY(comm_agree(w, sys_profile_init(&x->prof, &cfg->system, (uint64_t)cfg->train.seed, C)));
    if (cfg->secagg.enabled) /* FedBuff: every rank takes part in a buffer's round */
        FH_TRY(comm_agree(w, as_sa_init(&x->sa, cfg, w, L->P)));
    if (w->rank != 0) { /* a client host: serve jobs until rank 0 stops it */
        x->host_st = host_loop(w, &x->jr, L->P, cfg->secagg.enabled ? &x->sa : NULL);
        L->passive = 1;
        return FH_OK;
    }
    x->serving = 1;
    L->w = &x->self;
    return async_init_aggregator(L, x, M);
}

/* async.csv: fresh at the start, rows up to the resumed update kept after a resume. */
static fh_status async_open_csv(const config_t *cfg, async_ctx *x, int32_t r_done)
{
    char path[CONFIG_PATH_MAX + 32], tmp[CONFIG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/async.csv", cfg->output.dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *in = r_done > 0 ? fopen(path, "r") : NULL, *out = fopen(tmp, "w");
    if (out) {
        fputs(ASYNC_HDR, out);
        char line[4096];
        if (in && fgets(line, sizeof line, in))
            while (fgets(line, sizeof line, in))
                if (atol(line) >= 1 && atol(line) <= r_done) fputs(line, out);
    }
    if (in) fclose(in);
    if (!out || fclose(out) != 0 || rename(tmp, path) != 0 || !(x->csv = fopen(path, "a")))
        return fh_error_set(FH_EIO, "%s: cannot write", path);
    x->t0 = fh_wtime();
    return FH_OK;
}

/* A synchronous round on the virtual clock (wait_all, drop, partial): the round's clients start
 * together; the round ends when the last finishes (wait_all) or at the deadline. */
static fh_status sync_round(fl_loop *L, async_ctx *x, int32_t r, int *done)
{
    const config_t *cfg = L->cfg;
    agg_t *a = &x->a;
    as_state *s = &x->s;
    const int64_t P = L->P, *count = x->count;
    const sys_profile *prof = &x->prof;
    round_acc *ra = &x->ra;
    int32_t n = 0, *ids = x->ids;
    FH_TRY(fl_sample_clients((uint64_t)cfg->train.seed, r, L->C, a->nslots, ids, &n));
    const double T = s->now, D = T + cfg->async.deadline;
    *done = cfg->async.max_vtime > 0 && T >= cfg->async.max_vtime; /* 0 on entry (the loop's) */
    if (*done) return FH_OK;
    double end = T;
    int64_t N_round = 0;
    for (int32_t i = 0; i < n; i++) {
        const int32_t c = ids[i];
        N_round += count[c];
        const int64_t full = sys_full_steps(count[c], cfg->train.local_epochs, cfg->train.batch_size);
        const double fin = sys_advance(prof, c, T, sys_job_work(prof, c, full, P));
        if (fin > end) end = fin;
        int64_t k = full;
        if (cfg->async.mode == AS_DROP && fin > D) k = -1;
        if (cfg->async.mode == AS_PARTIAL && fin > D) {
            k = sys_steps_before(prof, c, T, D, P, full);
            if (k == 0 || (double)k < cfg->async.min_fraction * (double)full) k = -1;
        }
        if (k < 0) { /* counted as started and discarded; a client without rows has nothing to run */
            ra->discarded++;
            s->discarded[c]++;
            s->started[c]++;
        } else if (count[c] > 0)
            job_start(a, s, prof, count, i, c, k, r, L->params);
    }
    if (cfg->async.mode != AS_WAIT_ALL && end > D) end = D;
    for (int32_t i = 0; i < n; i++)
        if (a->jobs[i].id >= 0) FH_TRY(agg_wait(a, i));
    if (a->host_failed) return FH_OK; /* async_round ends the run */
    /* aggregate in client order; exact integer sums */
    memset(s->acc, 0, (size_t)P * sizeof *s->acc);
    int32_t k = 0;
    int64_t acc_rows = 0;
    for (int32_t i = 0; i < n; i++) {
        as_job *j = &a->jobs[i];
        if (j->id < 0) continue;
        if (!j->ok) {
            ra->discarded++;
            s->discarded[j->client]++;
            continue;
        }
        x->stp[k] = j->steps;
        /* FedNova weights p_i: samples processed this round (work) or client rows (data) */
        x->wts[k] = cfg->async.partial_weights == AS_PW_WORK ? j->seen : count[j->client];
        ids[k++] = i;
    }
    const int nova = cfg->async.mode == AS_PARTIAL && cfg->async.partial_weights != AS_PW_NONE;
    if (nova) as_fednova_coeffs(k, x->wts, x->stp, cfg->train.momentum, x->coef);
    for (int32_t t = 0; t < k; t++) {
        as_job *j = &a->jobs[ids[t]];
        const double wt = nova ? x->coef[t] : (double)count[j->client] / (double)N_round;
        if (x->a.sa) FH_TRY(as_sa_add(&x->sa, j->id, j->rank, j->client, wt)); /* held on its host */
        else fx_accumulate(s->acc, j->delta, wt, P);
        acc_rows += count[j->client];
        note_applied(s, ra, j, 0);
    }
    int64_t *sum = s->acc;
    if (acc_rows > 0 && x->a.sa) { /* [secagg]: the round's accepted updates, one secure aggregation */
        FH_TRY(as_sa_release(&x->sa, L->world, s->version + 1, 0.0));
        sum = x->sa.sum;
    }
    if (acc_rows > 0 && !x->sa.aborted) {
        fx_decode(sum, nova ? 1.0 : (double)N_round / (double)acc_rows, x->dec, P);
        fl_server_step(&x->srv, x->dec, L->params);
    }
    for (int32_t i = 0; i < n; i++)
        if (a->jobs[i].id >= 0) job_clear(a, s, i);
    s->now = end;
    s->version++;
    return FH_OK;
}

/* Start jobs in the free slots, the freed slot `from` first, from the current model. */
static void async_fill(fl_loop *L, async_ctx *x, int32_t from)
{
    agg_t *a = &x->a;
    for (int32_t k = 0; k < a->nslots; k++) {
        const int32_t slot = (from + k) % a->nslots;
        if (a->jobs[slot].id >= 0) continue;
        const int32_t c = pick_idle(L->cfg, &x->s, L->C);
        if (c < 0) break;
        job_start(a, &x->s, &x->prof, x->count, slot, c, 0, x->s.next_job + 1, L->params); /* shuffle key: id + 1 */
    }
}

/* One update applied by FedAsync or added to FedBuff's buffer (DP-FedBuff: clipped, and the
 * buffer released with its noise when full). *stepped: the model changed. Under [secagg] rank 0
 * notes the update's place in the buffer (its host keeps the update); at K updates the buffer is
 * released as secure-aggregation round version + 1 (src/fl/async_sa.h). The hosts encode the
 * very fixed-point words that plain FedBuff (and DP-FedBuff, clipping first) adds here, so the
 * exact sum and the model are the same. */
static fh_status async_apply(fl_loop *L, async_ctx *x, as_job *j, double sw, int *stepped)
{
    const config_t *cfg = L->cfg;
    as_state *s = &x->s;
    const int64_t P = L->P;
    const int32_t K = cfg->async.buffer;
    float *params = L->params;
    if (cfg->async.mode == AS_FEDASYNC) {
        const float al = (float)(cfg->async.alpha * sw);
        for (int64_t p = 0; p < P; p++) params[p] += al * (j->start[p] + j->delta[p] - params[p]);
        *stepped = 1;
        return FH_OK;
    }
    /* FedBuff; DP-FedBuff: clip to C, weight s(t) / K <= 1 / K; the buffer is buffer number
     * version + 1 (its noise stream and accounting step) */
    const int dp = x->pv.mode == PRIVACY_CLIENT;
    const int64_t b = s->version + 1;
    if (x->a.sa) /* DP: the weight privacy_client_update gives (1 / m, m = K) */
        FH_TRY(as_sa_add(&x->sa, j->id, j->rank, j->client, dp ? sw * (1.0 / x->pv.m) : sw / K));
    else
        fx_accumulate(s->acc, j->delta,
                      dp ? sw * privacy_client_update(&x->pv, b, j->client, j->delta, P, &s->below) : sw / K, P);
    if (dp) s->inbuf[j->client] = 1;
    if (++s->nbuf < K) return FH_OK;
    if (dp) { /* DP-FedBuff, buffer b full: the accountant's check before it is released (s->dp_stop: it
               * would exceed [privacy] epsilon_budget; not released, the run ends with the last model) */
        FH_TRY(privacy_fedbuff_begin(&x->pv, b, s->joined, s->inbuf, L->C, &s->dp_stop));
        if (s->dp_stop) return FH_OK;
    }
    int64_t *sum = s->acc, below = s->below;
    int ab = 0;
    if (x->a.sa) { /* [P] (+1 with DP: the unclipped updates, summed under the masks) */
        FH_TRY(as_sa_release(&x->sa, L->world, b, dp ? x->pv.clip : 0.0));
        sum = x->sa.sum;
        ab = x->sa.aborted; /* too few survivors: nothing to apply (as in sync FedAvg) */
        below = dp ? sum[P] : 0;
    }
    if (dp) privacy_run_decode(&x->pv, b, sum, P, x->dec);
    else fx_decode(sum, 1.0, x->dec, P);
    if (!ab) fl_server_step(&x->srv, x->dec, params);
    memset(s->acc, 0, (size_t)P * sizeof *s->acc);
    s->nbuf = 0;
    *stepped = 1;
    if (!dp) return FH_OK;
    privacy_run_end(&x->pv, b, below, ab ? NULL : x->dec, P);
    s->below = 0;
    for (int32_t c = 0; c < L->C; c++) {
        s->joined[c] += s->inbuf[c];
        s->inbuf[c] = 0;
    }
    return FH_OK;
}

/* An asynchronous round (FedAsync, FedBuff): finished jobs are applied in virtual-time order
 * until the model changes once. */
static fh_status async_round_events(fl_loop *L, async_ctx *x, int *done)
{
    const config_t *cfg = L->cfg;
    agg_t *a = &x->a;
    as_state *s = &x->s;
    /* fills the slots at a fresh start; a no-op otherwise: every event below refills what it frees,
     * so a round (and a restored checkpoint) ends with no free slot that an idle client could take */
    async_fill(L, x, 0);
    for (int stepped = 0; !stepped;) {
        const int32_t i = as_earliest(a->nslots, a->tfin, a->jid);
        if (i < 0) return fh_error_set(FH_EINTERNAL, "async: no client in flight");
        *done = cfg->async.max_vtime > 0 && a->tfin[i] > cfg->async.max_vtime; /* 0 on entry (the loop's) */
        if (*done) return FH_OK;
        FH_TRY(agg_wait(a, i));
        if (a->host_failed) return FH_OK; /* async_round ends the run */
        as_job *j = &a->jobs[i];
        s->now = j->t_fin;
        const int64_t tau = s->version - j->version;
        if (j->ok && tau <= cfg->async.max_staleness) {
            FH_TRY(async_apply(L, x, j, as_staleness_weight(cfg->async.staleness, cfg->async.a, cfg->async.b, tau), &stepped));
            note_applied(s, &x->ra, j, tau);
        } else {
            if (x->a.sa && j->ok) FH_TRY(as_sa_discard(&x->sa, j->id, j->rank)); /* held: drop it */
            s->discarded[j->client]++;
            x->ra.discarded++;
        }
        job_clear(a, s, i);
        if (stepped) s->version++;
        if (s->dp_stop) return FH_OK; /* async_round ends the run */
        /* the next clients start now, from the current model: in the freed slot (without DP the
         * only free one), then in slots left empty while every idle client was in the buffer */
        async_fill(L, x, i);
    }
    return FH_OK;
}

static fh_status async_round(fl_loop *L, int32_t r, fl_round_stats *rs, int *stop, int *done)
{
    const config_t *cfg = L->cfg;
    async_ctx *x = L->s;
    if (!x->csv) FH_TRY(async_open_csv(cfg, x, r - 1));
    memset(&x->ra, 0, sizeof x->ra);
    x->slow = x->fast = NAN;
    FH_TRY(cfg->async.mode <= AS_PARTIAL ? sync_round(L, x, r, done) : async_round_events(L, x, done));
    *done |= x->a.host_failed || x->s.dp_stop; /* a host failed, or DP-FedBuff's budget is spent */
    if (*done) return FH_OK;
    const round_acc *ra = &x->ra;
    rs->clients = rs->applied = ra->updates;
    rs->rejected = ra->discarded;
    rs->train_loss = ra->seen ? ra->loss / (double)ra->seen : NAN;
    rs->bytes_down = (int64_t)(ra->updates + ra->discarded) * L->P * (int64_t)sizeof(float);
    rs->bytes_up = rs->bytes_down;
    x->eps_client = NAN;
    if (x->pv.mode == PRIVACY_CLIENT) {
        FH_TRY(privacy_client_bound(&x->pv, x->s.joined, NULL, L->C, &x->eps_client));
        rs->epsilon = x->pv.fedbuff_bound ? x->eps_client : x->pv.eps; /* the enforced one (issue 12) */
    }
    if (x->a.sa) { /* the buffer's secure-aggregation round (rank 0 counts the dropped clients) */
        rs->secagg_aborted = x->sa.aborted;
        rs->dropped = x->sa.e.dropped;
    }
    *stop = fh_stop_requested();
    return FH_OK;
}

static fh_status async_evaluate(fl_loop *L, int32_t r, fl_round_stats *rs)
{
    (void)r;
    async_ctx *x = L->s;
    if (L->test.n > 0) FH_TRY(fl_testset_eval(&L->test, L->md, L->params, L->wk.ws, L->wk.ws_rows, &rs->test));
    for (int k = 0; k < 2; k++) FH_TRY(quartile_acc(&x->q, k, &x->jr, L->params, k ? &x->fast : &x->slow));
    if (x->pv.mode) x->slow = x->fast = NAN; /* [privacy]: clients' own rows, un-noised (issue 12) */
    return FH_OK;
}

/* One async.csv row a server update. */
static fh_status async_report(fl_loop *L, const fl_round_stats *rs)
{
    async_ctx *x = L->s;
    const as_state *s = &x->s;
    const round_acc *ra = &x->ra;
    int64_t pmin = INT64_MAX, pmax = 0, never = 0;
    for (int32_t c = 0; c < L->C; c++) {
        const int64_t p = s->applied[c];
        if (p < pmin) pmin = p;
        if (p > pmax) pmax = p;
        never += p == 0;
    }
    fprintf(x->csv, "%d,%.9g,%.6f,%.6g,%.6g,%d,%d,%.6g,%lld,%lld,%lld,%.6g,%.6g,%.6g,%lld,%lld,%lld,%.6g,%.6g\n",
            rs->round, s->now, fh_wtime() - x->t0, rs->test.accuracy, rs->test.f1, ra->updates, ra->discarded,
            ra->updates ? ra->stale_sum / ra->updates : NAN, (long long)ra->stale_max,
            (long long)hist_quantile(s->stale_hist, 0.5), (long long)hist_quantile(s->stale_hist, 0.9), x->slow, x->fast,
            x->fast - x->slow, (long long)pmin, (long long)pmax, (long long)never,
            x->pv.mode == PRIVACY_CLIENT ? x->pv.eps : NAN, x->eps_client); /* q = K/C, the bound */
    if (fflush(x->csv) != 0) return fh_error_set(FH_EIO, "%s/async.csv: cannot write", L->cfg->output.dir);
    return FH_OK;
}

/* participation.csv: per client (sorted by speed) its jobs and updates. */
static fh_status async_participation(const fl_loop *L, const async_ctx *x)
{
    char path[CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/participation.csv", L->cfg->output.dir);
    FILE *f = fopen(path, "w");
    if (!f) return fh_error_set(FH_EIO, "%s: cannot write", path);
    fprintf(f, "client,speed,quartile,rows,jobs_started,updates_applied,updates_discarded\n");
    const int32_t C = L->C, nq = x->q.n[0];
    for (int32_t i = 0; i < C; i++) {
        const int32_t c = x->all[i]; /* sorted by speed */
        const char *qn = i < nq ? "slow" : i >= C - nq ? "fast" : "mid";
        fprintf(f, "%d,%.6g,%s,%lld,%lld,%lld,%lld\n", c, x->prof.speed[c], qn, (long long)x->count[c],
                (long long)x->s.started[c], (long long)x->s.applied[c], (long long)x->s.discarded[c]);
    }
    return fclose(f) == 0 ? FH_OK : fh_error_set(FH_EIO, "%s: cannot write", path);
}

/* Rank 0 stops the hosts; every rank agrees on the outcome and returns the aggregator's model. */
static fh_status async_finish(fl_loop *L, fh_status st)
{
    async_ctx *x = L->s;
    if (!x) return st;
    const comm_t *w = L->world;
    if (x->csv) fclose(x->csv);
    x->csv = NULL;
    if (L->passive) {
        st = comm_agree(w, x->host_st);
    } else if (x->serving) {
        if (st == FH_OK && !x->a.host_failed) st = async_participation(L, x);
        fh_status ss = agg_stop(&x->a);
        if (st == FH_OK) st = ss;
        /* a host's failure: let comm_agree carry that host's own message */
        st = comm_agree(w, x->a.host_failed && st == FH_OK ? FH_OK : st);
        if (st == FH_OK && x->a.host_failed) st = fh_error_set(FH_EINTERNAL, "a client host failed");
    } else {
        return st; /* failed before the hosts started serving: every rank failed alike */
    }
    if (st == FH_OK || st == FH_ESTOPPED) {
        fh_status bs = comm_bcast(w, L->params, L->P * (int64_t)sizeof(float), 0);
        if (bs != FH_OK) st = bs;
    }
    return st;
}

static void async_free(fl_loop *L)
{
    async_ctx *x = L->s;
    if (!x) return;
    agg_t *a = &x->a; /* agg_init's arrays */
    for (int i = 0; a->rbuf && i < a->nw; i++) free(a->rbuf[i]);
    free(a->jobs); free(a->tfin); free(a->jid); free(a->rreq); free(a->sreq); free(a->rbuf); free(a->shdr);
    free(a->busy); free(a->starts); free(a->deltas);
    for (int k = 0; k < 2; k++) { /* quartiles_load's */
        free(x->q.cnt[k]); free(x->q.x[k]); free(x->q.y[k]);
    }
    fl_server_free(&x->srv);
    as_state *s = &x->s;
    free(s->acc); free(s->started); free(s->applied); free(s->discarded); free(s->stale_hist); free(s->busyc);
    free(s->inbuf); free(s->joined);
    privacy_run_free(&x->pv);
    free(x->count); free(x->start); free(x->all);
    free(x->ids); free(x->stp); free(x->wts); free(x->coef); free(x->dec);
    sys_profile_free(&x->prof);
    free(x->jr.x); free(x->jr.y);
    as_sa_free(&x->sa); /* zeroed without [secagg] */
    comm_free(&x->self);
}

const fl_strategy fl_strategy_async = {
    .name = "async",
    .unit = "server update",
    .init = async_init,
    .round = async_round,
    .evaluate = async_evaluate,
    .report = async_report,
    .finish = async_finish,
    .free = async_free,
};
