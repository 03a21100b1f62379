/* The synchronous FedAvg family as a strategy of the loop (FedAvg, FedProx, FedAvgM, FedAdam,
 * FedYogi, SCAFFOLD; with [privacy] and [secagg] stages around the aggregate). A round:
 *
 *   sample m clients (same list on every rank, from the (seed, r) stream)
 *   place them on ranks in contiguous row-balanced blocks (over ranks 1..size-1 with a dedicated
 *     aggregator, [secagg] dedicated_aggregator); each rank reads only its rows
 *   each rank trains its clients from the global model; update = local - global
 *   reject faulty updates (NaN/Inf/absurd norm); encode n_i/N * update in fixed point
 *   one integer all-reduce of [updates | SCAFFOLD control deltas | round counters]
 *     (or, with [secagg], one secure-aggregation round over the masked client vectors)
 *   every rank applies the same server step (FedAvg/FedAvgM/FedAdam/FedYogi/SCAFFOLD)
 * Evaluation: rank 0 on the test split; per-client accuracy gathered from the hosts.
 * What each rank sees: docs/threat-model.md.
 */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/attack.h"
#include "fedhpc/gnn.h"
#include "fedhpc/loop.h"
#include "fedhpc/robust.h"
#include "fedhpc/sample.h"
#include "fedhpc/server.h"
#include "fedhpc/he.h"
#include "fedhpc/secagg_round.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* the round counters appended to the integer reduction */
enum { T_LOSS, T_ROWS_SEEN, T_ACC_ROWS, T_REJ_CLIENTS, T_REJ_ROWS, T_ACC_CLIENTS, T_STOP,
       T_DP_BELOW /* [privacy] adaptive clipping: unclipped updates */,
       T_BYTES_UP /* [compress]: bytes of the encoded client messages */, T_N };
#define LOSS_SCALE 1048576.0 /* 2^20: fixed point of summed losses */

typedef struct {
    fl_server srv;
    io_state *cstate;          /* SCAFFOLD c_i store                       */
    float *local;              /* [P] a client's model / update; after the
                                  round's local work, the decoded aggregate */
    float *c, *ci, *cdiff;     /* [P] SCAFFOLD: server c, client c_i, c-c_i */
    int64_t *acc;              /* [P * (1 + scaffold) + T_N]               */
    int64_t nacc;
    int32_t *ids, *first;      /* [m], [P+1]                               */
    int64_t *start, *count;    /* [m]                                      */
    int32_t n, c0, c1;         /* the round's clients; this rank's [c0, c1) */
    int dedicated;             /* [secagg] dedicated_aggregator, or per-party data files:
                                  rank 0 hosts no clients */
    int32_t *party;            /* [3m + K + 1] per-party data files: the party of each of the
                                  round's clients (rank party + 1 hosts it), then place_parties'
                                  scratch; NULL: a shared file */
    int64_t *party_tmp;        /* [m] place_parties' scratch                                   */
    fl_rows rows;              /* a group of this rank's clients' rows      */
    privacy_run pv;            /* [privacy] DP state and accountant (src/privacy/dp.c)  */
    secagg_engine sa;          /* [secagg] per-client masked contributions (sa_round.c) */
    fl_agg agg;                /* the aggregation stages over pv, sa and acc            */
    fl_compress *cz;           /* [compress] NULL or the compression stage (compress_stage.c) */
    robust_agg rb;             /* [fl] aggregator != mean (src/fl/robust_round.c)        */
    he_engine he;              /* [he] Paillier aggregation (src/he/he_round.c)         */
    attack_run atk;            /* [attack] malicious clients (src/attack/poison.c)      */
    gnn_run *gnn;              /* [model] lightgcn: user embeddings, evaluation (src/fl/gnn_run.c) */
} fedavg_state;


static fh_status fedavg_init(fl_loop *L)
{
    const config_t *cfg = L->cfg;
    const comm_t *w = L->w;
    /* [secagg] dedicated_aggregator: rank 0 aggregates (and evaluates) only, hosting no clients;
     * so it does with per-party data files (prepare --parties), where rank p + 1 is party p */
    const int ded = config_sa_dedicated(cfg) || L->meta->parties > 0;
    if (ded && w->size < 2)
        return fh_error_set(FH_EINPUT, "[secagg] dedicated_aggregator = %s: needs at least 2 ranks: rank 0 aggregates only "
                            "and hosts no clients (run with mpirun -np 2 or more, or set dedicated_aggregator = off, "
                            "where the one process holds every client's rows, keys and updates)",
                            cfg->secagg.dedicated_aggregator == SA_DEDICATED_ON ? "on" : "auto (on with [secagg] enabled = on)");
    if (w->size - ded > L->C)
        return fh_error_set(FH_EINPUT, "%s: %d clients, but %d ranks%s: run with at most %d ranks", cfg->data.file, L->C,
                            w->size, ded ? " (rank 0 a dedicated aggregator)" : "", L->C + ded);
    fedavg_state *s = L->s = fh_calloc(1, sizeof *s);
    FH_CHECK_ALLOC(s);
    const int64_t P = L->P;
    const int32_t m = L->m;
    const int scaffold = cfg->fl.algorithm == ALG_SCAFFOLD;
    s->nacc = P * (1 + scaffold) + T_N;
    s->dedicated = ded;
    fh_status st = fl_server_init(&s->srv, &cfg->fl, P);
    if (st == FH_OK) {
        s->local = malloc((size_t)P * sizeof *s->local);
        s->acc = malloc((size_t)s->nacc * sizeof *s->acc);
        s->ids = malloc((size_t)m * sizeof *s->ids);
        s->first = malloc((size_t)(w->size + 1) * sizeof *s->first);
        s->start = malloc((size_t)m * sizeof *s->start);
        s->count = malloc((size_t)m * sizeof *s->count);
        if (L->meta->parties > 0) {
            s->party = malloc((size_t)(3 * m + L->meta->parties + 1) * sizeof *s->party);
            s->party_tmp = malloc((size_t)m * sizeof *s->party_tmp);
        }
        if (scaffold) {
            s->c = fh_calloc((size_t)P, sizeof *s->c);
            s->ci = malloc((size_t)P * sizeof *s->ci);
            s->cdiff = malloc((size_t)P * sizeof *s->cdiff);
        }
        if (!s->local || !s->acc || !s->ids || !s->first || !s->start || !s->count || (L->meta->parties > 0 && (!s->party || !s->party_tmp)) ||
            (scaffold && (!s->c || !s->ci || !s->cdiff)))
            st = fh_error_set(FH_ENOMEM, "out of memory for %lld parameters", (long long)P);
    }
    st = comm_agree(w, st);
    if (st == FH_OK && scaffold) st = comm_agree(w, fl_state_create(cfg, w, "client_state.h5", L->C, P, &s->cstate));
    if (st == FH_OK) st = comm_agree(w, fl_loop_privacy(L, &s->pv, m));
    if (st == FH_OK) st = comm_agree(w, secagg_engine_init(&s->sa, &cfg->secagg, (uint64_t)cfg->train.seed, 0, w, s->nacc, P));
    if (st == FH_OK) st = fl_compress_init(&s->cz, cfg, w, L->C, P);
    if (st == FH_OK) st = comm_agree(w, he_engine_init(&s->he, &cfg->he, w, s->nacc, m, ded));
    s->agg = (fl_agg){&s->pv, &s->sa, s->acc, s->nacc, cfg->fl.max_update_norm, s->cz, 0, NULL, &s->he};
    if (st == FH_OK && cfg->fl.aggregator != AGGR_MEAN) { /* robust aggregation: no state across rounds */
        st = comm_agree(w, robust_agg_init(&s->rb, cfg, m, P, w));
        s->agg.rb = &s->rb;
    }
    if (st == FH_OK) { /* [attack]: a pure function of (seed, round, client), nothing to checkpoint */
        const attack_geom g = attack_geom_of(L->meta->dataset, L->md->in, L->md->type == MODEL_CNN ? L->md->cnn_side : 0,
                                             L->md->cnn_channels);
        st = comm_agree(w, attack_run_init(&s->atk, cfg, &g, L->md->classes, L->C, m));
    }
    if (st == FH_OK && (L->md->type == MODEL_LIGHTGCN || L->md->type == MODEL_GRAPHSAGE))
        st = gnn_run_init(&s->gnn, L, ded); /* [model] lightgcn | graphsage */
    /* Everything needed to continue exactly after a round: the model, the server optimizer's
     * moments, SCAFFOLD's server and client control variates, and the [privacy] state. Sampling,
     * shuffles, DP noise and dropouts are pure functions of (seed, round, client), and secure
     * aggregation starts afresh every round (new keys), so no RNG or secagg state is needed. */
    fl_loop_field(L, "params", FL_FIELD_ARRAY, CKPT_F32, L->params, P);
    fl_loop_field(L, "server_m", FL_FIELD_ARRAY, CKPT_F32, s->srv.m, P);
    fl_loop_field(L, "server_v", FL_FIELD_ARRAY, CKPT_F32, s->srv.v, P);
    fl_loop_field(L, "scaffold_c", FL_FIELD_ARRAY, CKPT_F32, s->c, P);
    fl_loop_field(L, "scaffold_ci", FL_FIELD_ROWS, CKPT_F32, s->cstate, P);
    fl_loop_field(L, "compress_residual", FL_FIELD_ROWS, CKPT_F32, fl_compress_residuals(s->cz), P);
    return st;
}

static void fedavg_free(fl_loop *L)
{
    fedavg_state *s = L->s;
    if (!s) return;
    fl_server_free(&s->srv);
    io_state_close(s->cstate);
    free(s->local); free(s->c); free(s->ci); free(s->cdiff);
    free(s->acc); free(s->ids); free(s->first); free(s->party); free(s->party_tmp); free(s->start); free(s->count); free(s->rows.x); free(s->rows.y);
    privacy_run_free(&s->pv);
    secagg_engine_free(&s->sa);
    fl_compress_free(s->cz);
    robust_agg_free(&s->rb);
    he_engine_free(&s->he);
    attack_run_free(&s->atk);
    gnn_run_free(s->gnn);
}

/* SCAFFOLD option II after a client's accepted update s->local: c_i+ = c_i - c + (x - y_i)/(K lr),
 * delta c_i = c_i+ - c_i summed with weight 1/m into acc + P; c_i stored. */
static fh_status scaffold_client(const config_t *cfg, fedavg_state *s, int64_t P, int32_t cid, int64_t steps,
                                 int32_t m, int64_t *acc)
{
    const double inv = 1.0 / ((double)steps * cfg->train.lr);
    double norm;
    for (int64_t j = 0; j < P; j++) s->cdiff[j] = (float)(-(double)s->c[j] - inv * s->local[j]);
    if (!fl_update_ok(s->cdiff, P, FX_MAX_ABS, &norm))
        return fh_error_set(FH_EFAULT, "SCAFFOLD control variate of client %d is not finite", cid);
    fx_accumulate(acc + P, s->cdiff, 1.0 / m, P);
    for (int64_t j = 0; j < P; j++) s->ci[j] += s->cdiff[j];
    return io_state_write(s->cstate, cid, s->ci);
}

/* Local work of one round on this rank: train the clients [c0, c1) of s->ids. */
static fh_status round_local(fl_loop *L, fedavg_state *s, int64_t round, int64_t N_round, int32_t m)
{
    const config_t *cfg = L->cfg;
    const int64_t P = L->P, d = L->md->in;
    const int scaffold = cfg->fl.algorithm == ALG_SCAFFOLD;
    const int32_t c0 = s->c0, c1 = s->c1;
    const float *params = L->params;
    fl_local_opts o = fl_local_opts_make(cfg, params);
    int64_t row = 0;
    int32_t g1 = c0; /* clients [.., g1) have their rows in s->rows */
    for (int32_t i = c0; i < c1; i++) {
        if (i == g1) { /* the next group of clients: one read of at most ~4 MB (or one client) */
            g1 = fl_rows_group(s->count, i, c1, d);
            FH_TRY(fl_read_rows(L->data, g1 - i, s->start + i, s->count + i, (int32_t)d, &s->rows.x, &s->rows.y,
                                &s->rows.cap));
            row = 0;
        }
        const int32_t cid = s->ids[i];
        const int64_t n = s->count[i];
        const float *xi = s->rows.x + row * d;
        const int32_t *yi = s->rows.y + row;
        row += n;
        FH_TRY(attack_run_rows(&s->atk, i, cid, &xi, &yi, n)); /* [attack]: a malicious client's poisoned copy */
        /* [secagg]/[privacy]: simulated dropout; with secagg each client fills its own buffer */
        if (secagg_dropped((uint64_t)cfg->train.seed, cfg->secagg.dropout, cid, round)) continue;
        int64_t *acc = fl_agg_buffer(&s->agg, i - c0);
        int64_t *tail = acc + P * (1 + scaffold);
        privacy_sgd dpo;
        if (s->pv.mode == PRIVACY_SAMPLE) {
            privacy_sgd_opts(&s->pv, round, cid, &dpo);
            L->wk.dp = &dpo;
        }
        if (scaffold) {
            FH_TRY(io_state_read(s->cstate, cid, s->ci));
            for (int64_t j = 0; j < P; j++) s->cdiff[j] = s->c[j] - s->ci[j];
            o.c_diff = s->cdiff;
        }
        memcpy(s->local, params, (size_t)P * sizeof *s->local);
        double loss = 0;
        int64_t steps = 0, seen = 0;
        if (s->gnn) /* [model] lightgcn: the graph model's local work (src/fl/gnn_run.c) */
            FH_TRY(gnn_run_local(s->gnn, cid, round, xi, yi, n, N_round, s->local, &loss, &steps, &seen));
        else if (n > 0)
            FH_TRY(fl_local_train(&L->wk, &o, rng_stream((uint64_t)cfg->train.seed, (uint64_t)cid, (uint64_t)round, RNG_SHUFFLE),
                                  xi, yi, n, s->local, &loss, &steps, &seen));
        L->wk.dp = NULL;
        for (int64_t j = 0; j < P; j++) s->local[j] -= params[j]; /* the update */
        attack_run_update(&s->atk, i, cid, s->local, P, n, N_round); /* [attack] */
        const int added = fl_agg_add(&s->agg, acc, round, cid, s->local, P, n > 0 && isfinite(loss),
                                     (double)n / (double)N_round, &tail[T_DP_BELOW]);
        if (added < 0) return FH_EIO; /* [compress] stage: residual I/O (message set) */
        if (!added) {
            tail[T_REJ_CLIENTS] += 1;
            tail[T_REJ_ROWS] += n;
            continue;
        }
        tail[T_LOSS] += (int64_t)llrint(loss * LOSS_SCALE);
        tail[T_ROWS_SEEN] += seen;
        tail[T_ACC_ROWS] += n;
        tail[T_ACC_CLIENTS] += 1;
        tail[T_BYTES_UP] += s->agg.sent;
        if (scaffold) FH_TRY(scaffold_client(cfg, s, P, cid, steps, m, acc));
    }
    return FH_OK;
}

/* Every rank applies the same server step to the decoded sum. */
static void round_server(fl_loop *L, fedavg_state *s, int32_t r, int64_t N_round)
{
    const int64_t P = L->P;
    const int64_t *tail = s->acc + s->nacc - T_N;
    float *dec = s->local; /* the client buffer is free once the local work is done */
    const int aborted = fl_agg_aborted(&s->agg);
    if (s->pv.mode == PRIVACY_CLIENT) { /* [privacy] DP-FedAvg: sum / m + noise */
        if (!aborted) {
            fl_agg_decode(&s->agg, r, s->acc, P, 1.0, dec);
            fl_server_step(&s->srv, dec, L->params);
        }
        privacy_run_end(&s->pv, r, tail[T_DP_BELOW], aborted ? NULL : dec, P);
    } else if (tail[T_ACC_ROWS] > 0) {
        fl_agg_decode(&s->agg, r, s->acc, P, (double)N_round / (double)tail[T_ACC_ROWS], dec);
        fl_server_step(&s->srv, dec, L->params);
        if (s->c) {
            /* c += (|S|/N) * mean over accepted clients of delta c_i */
            fx_decode(s->acc + P, (double)s->n / (double)tail[T_ACC_CLIENTS], dec, P);
            const float f = (float)tail[T_ACC_CLIENTS] / (float)L->C;
            for (int64_t j = 0; j < P; j++) s->c[j] += f * dec[j];
        }
    }
}

/* Per-party data files: the round's clients grouped by party (a stable counting sort of ids,
 * start, count; the exact sum does not depend on the order) and first[] from the groups: party
 * p's clients on rank p + 1, none on rank 0. */
static fh_status place_parties(fl_loop *L, fedavg_state *s, int32_t n)
{
    const int32_t K = L->meta->parties;
    FH_TRY(io_data_client_parties(L->data, s->ids, n, s->party));
    int32_t *pos = s->party + n, *at = s->party + 2 * n; /* [n] where client i goes; [K + 1] next slot */
    int32_t *ib = s->party + 2 * n + K + 1;              /* [n] */
    int64_t *buf = s->party_tmp;                         /* [n] */
    for (int32_t p = 0; p <= K + 1; p++) s->first[p] = 0;
    for (int32_t i = 0; i < n; i++) s->first[s->party[i] + 2]++;
    for (int32_t p = 2; p <= K + 1; p++) s->first[p] += s->first[p - 1];
    for (int32_t p = 0; p <= K; p++) at[p] = s->first[p + 1];
    for (int32_t i = 0; i < n; i++) pos[i] = at[s->party[i]]++;
    for (int32_t i = 0; i < n; i++) buf[pos[i]] = s->start[i];
    memcpy(s->start, buf, (size_t)n * sizeof *buf);
    for (int32_t i = 0; i < n; i++) buf[pos[i]] = s->count[i];
    memcpy(s->count, buf, (size_t)n * sizeof *buf);
    for (int32_t i = 0; i < n; i++) ib[pos[i]] = s->ids[i];
    memcpy(s->ids, ib, (size_t)n * sizeof *ib);
    return FH_OK;
}

static fh_status fedavg_round(fl_loop *L, int32_t r, fl_round_stats *rs, int *stop, int *done)
{
    const config_t *cfg = L->cfg;
    const comm_t *w = L->w;
    fedavg_state *s = L->s;
    const int64_t P = L->P;
    int32_t n = 0;
    fh_status st = fl_sample_clients((uint64_t)cfg->train.seed, r, L->C, L->m, s->ids, &n);
    if (st == FH_OK) st = io_data_client_ranges(L->data, s->ids, n, s->start, s->count);
    if (st == FH_OK) st = attack_run_round(&s->atk, r, s->ids, n); /* [attack] who is malicious */
    FH_TRY(comm_agree(w, st));
    s->n = n;
    int64_t N_round = 0;
    for (int32_t i = 0; i < n; i++) N_round += s->count[i];
    /* contiguous row-balanced blocks over all ranks, or over ranks 1..size-1 with a dedicated
     * aggregator (first[0] = first[1] = 0: rank 0 trains nothing and reads no training rows);
     * with per-party files, each party's clients on its rank */
    s->first[0] = 0;
    if (s->party) FH_TRY(comm_agree(w, place_parties(L, s, n)));
    else fl_assign_ranks(s->count, n, w->size - s->dedicated, s->first + s->dedicated);
    s->c0 = s->first[w->rank];
    s->c1 = s->first[w->rank + 1];
    /* [privacy] account the round; stop cleanly before exceeding the budget */
    FH_TRY(comm_agree(w, privacy_run_begin(&s->pv, r, s->ids, s->count, n, done)));
    if (*done) return FH_OK;

    FH_TRY(comm_agree(w, fl_agg_begin(&s->agg, s->c1 - s->c0)));
    int64_t *tail = s->acc + s->nacc - T_N;
    tail[T_STOP] = fh_stop_requested();
    FH_TRY(comm_agree(w, round_local(L, s, r, N_round, n)));
    FH_TRY(fl_agg_sum(&s->agg, w, r, s->ids, s->first, s->n, T_N));
    /* TEST ONLY ([secagg] truth): the training rows rank 0 has read so far */
    FH_TRY(comm_agree(w, secagg_engine_record_value(&s->sa, w, r, "aggregator_train_rows",
                                                     io_data_rows_read(L->data, "train"))));
    round_server(L, s, r, N_round);

    const int scaffold = s->c != NULL;
    rs->clients = n;
    rs->malicious = s->atk.a.mode ? s->atk.k : -1;
    rs->rejected = (int32_t)tail[T_REJ_CLIENTS];
    rs->applied = (int32_t)tail[T_ACC_CLIENTS];
    rs->train_loss = tail[T_ROWS_SEEN] ? (double)tail[T_LOSS] / LOSS_SCALE / (double)tail[T_ROWS_SEEN] : NAN;
    rs->bytes_down = (int64_t)n * P * (int64_t)sizeof(float) * (1 + scaffold);
    rs->bytes_up = (int64_t)n * P * (int64_t)sizeof(int64_t) * (1 + scaffold);
    if (s->cz && !s->sa.enabled) rs->bytes_up = tail[T_BYTES_UP]; /* [compress]: the encoded messages (masked: dense) */
    if (s->he.enabled) rs->bytes_up = (int64_t)n * s->he.ct_bytes_client; /* [he] the ciphertexts a client sends */
    rs->epsilon = s->pv.mode ? s->pv.eps : NAN; /* [privacy] / [secagg] */
    for (int32_t i = 0; i < n; i++) rs->dropped += secagg_dropped((uint64_t)cfg->train.seed, cfg->secagg.dropout, s->ids[i], r);
    rs->secagg_aborted = s->sa.enabled ? s->sa.aborted : 0;
    if (s->sa.enabled) { /* over every rank's masking thread (a dedicated aggregator masks nothing) */
        double t[4] = {(double)s->sa.mask_bytes, s->sa.mask_s, (double)s->sa.raw_bytes, s->sa.raw_s};
        FH_TRY(comm_allreduce_sum_f64(w, t, 4));
        rs->mask_gbps = t[1] > 0 ? t[0] / t[1] / 1e9 : NAN;
        rs->chacha_gbps = t[3] > 0 ? t[2] / t[3] / 1e9 : NAN;
    }
    *stop = tail[T_STOP] > 0;
    return FH_OK;
}

static fh_status fedavg_evaluate(fl_loop *L, int32_t r, fl_round_stats *rs)
{
    fedavg_state *s = L->s;
    if (s->gnn) { /* [model] lightgcn: ranking metrics over every client's held-out interactions */
        double m[12];
        (void)rs; /* metrics.csv's test columns stay nan: the metrics go to recommend.csv */
        return gnn_run_evaluate(s->gnn, L, r, m);
    }
    fh_status st = FH_OK;
    if (L->w->rank == 0 && L->test.n > 0)
        st = fl_testset_eval(&L->test, L->md, L->params, L->wk.ws, L->wk.ws_rows, &rs->test);
    if (st == FH_OK && L->w->rank == 0 && L->test.n > 0 && attack_poisons_rows(&s->atk.a)) /* [attack] */
        st = fl_testset_attack(&L->test, L->md, L->params, L->wk.ws, L->wk.ws_rows, &s->atk.a, &s->atk.g,
                               &rs->attack_success);
    FH_TRY(comm_agree(L->w, st));
    if (s->pv.mode) return FH_OK; /* [privacy]: participants' own accuracies are not released, nor gathered */
    return fl_client_accuracy(L->w, &L->wk, L->params, L->data, s->start + s->c0, s->count + s->c0, s->c1 - s->c0,
                              s->n, &s->rows, &rs->client_acc_mean, &rs->client_acc_p10);
}

const fl_strategy fl_strategy_fedavg = {
    .name = "fedavg",
    .unit = "round",
    .init = fedavg_init,
    .round = fedavg_round,
    .evaluate = fedavg_evaluate,
    .free = fedavg_free,
};
