/* [model] lightgcn in the one training loop (include/fedhpc/gnn.h; docs/recommend.md).
 *
 * src/fl/fedavg.c calls gnn_run_init from its init, gnn_run_local in place of fl_local_train in
 * its local-work stage, and gnn_run_evaluate as its evaluation. The item embeddings are the
 * model's flat parameter buffer and go through the engine's aggregation stages unchanged (exact
 * fixed-point sum); the user embeddings are the personal part (FedPer-style): each client's
 * row of an io_state [clients, users * dim] indexed by the global user id (the users a client
 * does not hold stay zero), saved in checkpoints as the field "gnn_users". A user's row starts
 * at gnn_init_user's draw the first time its client trains or is evaluated.
 */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/gnn.h"
#include "fedhpc/loop.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPK 10
#define MSCALE 1099511627776.0 /* 2^40: fixed point of the per-user metrics (exact sums) */

struct gnn_run {
    const config_t *cfg;
    int32_t dim, K, ni, nusers;
    int32_t sage;         /* [model] graphsage (else lightgcn)                          */
    int64_t P;            /* the shared part: items * dim (graphsage: + weights)        */
    int dedicated;        /* rank 0 a dedicated aggregator: it reads no client's rows   */
    int64_t *popc;        /* [ni] global training interactions ([model] gnn_weighting)  */
    float *global;        /* [P] the round's global items (gnn_weighting = items)       */
    int64_t row;          /* floats of a client's store row: nusers * dim            */
    io_state *store;      /* [C, row] user embeddings                                */
    float *urow;          /* [row]                                                    */
    float *u0;            /* [local users, dim]                                       */
    int64_t u0cap;
    float *pop;           /* [ni] global training interactions of each item           */
    float *lpop;          /* [ni] the evaluated client's own training interactions    */
    float *scores;        /* [ni]                                                     */
    uint8_t *skip;        /* [ni]                                                     */
    gnn_graph g;
    gnn_ws ws;
    float *x;             /* rows read here (evaluation, set-up)                      */
    int32_t *y, *us, *it;
    uint8_t *held;
    int64_t cap, dcap;
    FILE *csv;            /* rank 0: recommend.csv                                    */
};

/* The clients of this rank's evaluation slab (none on a dedicated aggregator). */
static void slab(const gnn_run *R, const fl_loop *L, int32_t *c0, int32_t *c1)
{
    const int32_t p = L->w->rank - R->dedicated, np = L->w->size - R->dedicated;
    *c0 = p < 0 ? 0 : (int32_t)((int64_t)L->C * p / np);
    *c1 = p < 0 ? 0 : (int32_t)((int64_t)L->C * (p + 1) / np);
}

/* Rows x [n, 2] (user, held-out flag), y [n] (item) into R->us, it, held; checks them. */
static fh_status decode(gnn_run *R, int32_t cid, const float *x, const int32_t *y, int64_t n)
{
    if (n > R->dcap) {
        free(R->us); free(R->it); free(R->held);
        R->us = malloc((size_t)n * sizeof *R->us);
        R->it = malloc((size_t)n * sizeof *R->it);
        R->held = malloc((size_t)n * sizeof *R->held);
        R->dcap = R->us && R->it && R->held ? n : 0;
        FH_CHECK_ALLOC(R->dcap ? R->us : NULL);
    }
    for (int64_t k = 0; k < n; k++) {
        const float u = x[2 * k], h = x[2 * k + 1];
        if (!(u >= 0 && u < 16777216.0f && u == floorf(u)) || (h != 0 && h != 1) || y[k] < 0 || y[k] >= R->ni)
            return fh_error_set(FH_EINPUT, "%s: client %d, interaction %lld: expected (user >= 0 integer, held-out 0|1; "
                                "item in [0, %d)), got (%g, %g; %d): not a `fedhpc prepare movielens` file?",
                                R->cfg->data.file, cid, (long long)k, R->ni, (double)u, (double)h, y[k]);
        R->us[k] = (int32_t)u;
        R->held[k] = (uint8_t)h;
        R->it[k] = y[k];
    }
    return FH_OK;
}

static fh_status read_client(gnn_run *R, fl_loop *L, int32_t cid, int64_t *n)
{
    int64_t start;
    FH_TRY(io_data_client_ranges(L->data, &cid, 1, &start, n));
    FH_TRY(fl_read_rows(L->data, 1, &start, n, 2, &R->x, &R->y, &R->cap)); /* rows of 2 floats */
    return decode(R, cid, R->x, R->y, *n);
}

/* The graph of a client's decoded rows and its user embeddings (from the store, or drawn). */
static fh_status client_setup(gnn_run *R, int32_t cid, int64_t n)
{
    gnn_graph_free(&R->g);
    FH_TRY(gnn_graph_build(&R->g, R->ni, R->us, R->it, R->held, n));
    for (int32_t a = 0; a < R->g.nu; a++)
        if (R->g.user[a] >= R->nusers)
            return fh_error_set(FH_EINPUT, "%s: client %d: user %d, but the data set has %d users", R->cfg->data.file, cid,
                                R->g.user[a], R->nusers);
    const int64_t need = (int64_t)R->g.nu * R->dim;
    if (need > R->u0cap) {
        free(R->u0);
        R->u0 = malloc((size_t)need * sizeof *R->u0);
        R->u0cap = R->u0 ? need : 0;
        FH_CHECK_ALLOC(R->u0);
    }
    FH_TRY(io_state_read(R->store, cid, R->urow));
    for (int32_t a = 0; a < R->g.nu; a++) {
        const float *src = R->urow + (int64_t)R->g.user[a] * R->dim;
        float *dst = R->u0 + (int64_t)a * R->dim;
        int zero = 1;
        for (int32_t q = 0; q < R->dim && zero; q++) zero = src[q] == 0.0f;
        if (zero) gnn_init_user((uint64_t)R->cfg->train.seed, R->g.user[a], R->dim, dst);
        else memcpy(dst, src, (size_t)R->dim * sizeof *dst);
    }
    return FH_OK;
}

fh_status gnn_run_init(gnn_run **out, fl_loop *L, int dedicated)
{
    const config_t *cfg = L->cfg;
    const comm_t *w = L->w;
    gnn_run *R = *out = fh_calloc(1, sizeof *R);
    FH_CHECK_ALLOC(R);
    R->cfg = cfg;
    R->dedicated = dedicated && L->w->size > 1;
    R->dim = L->md->fan_out[0];
    R->sage = L->md->type == MODEL_GRAPHSAGE;
    R->K = R->sage ? L->md->nlayers : cfg->model.gnn_layers; /* graphsage: one layer per [model] hidden value */
    R->P = L->P;
    R->ni = L->md->classes;
    R->pop = fh_calloc((size_t)R->ni, sizeof *R->pop);
    R->scores = malloc((size_t)R->ni * sizeof *R->scores);
    R->lpop = malloc((size_t)R->ni * sizeof *R->lpop);
    R->skip = fh_calloc((size_t)R->ni, sizeof *R->skip);
    int64_t *cnt = fh_calloc((size_t)R->ni + 1, sizeof *cnt);
    fh_status st = R->pop && R->lpop && R->scores && R->skip && cnt ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory");
    /* every client of this rank's slab: the largest user id, item popularity */
    int32_t c0, c1;
    slab(R, L, &c0, &c1);
    double umax = -1;
    for (int32_t c = c0; st == FH_OK && c < c1; c++) {
        int64_t n = 0;
        st = read_client(R, L, c, &n);
        for (int64_t k = 0; st == FH_OK && k < n; k++) {
            if (R->us[k] > umax) umax = R->us[k];
            if (!R->held[k]) cnt[R->it[k]]++;
        }
    }
    st = comm_agree(w, st);
    if (st == FH_OK) st = comm_agree(w, comm_allreduce_max_f64(w, &umax, 1));
    if (st == FH_OK) st = comm_agree(w, comm_allreduce_sum_i64(w, cnt, R->ni));
    for (int32_t i = 0; st == FH_OK && i < R->ni; i++) R->pop[i] = (float)cnt[i];
    R->popc = cnt;
    R->nusers = (int32_t)umax + 1;
    R->row = (int64_t)R->nusers * R->dim;
    /* --partition users: enterprises hold disjoint users; a shared user is bad input */
    if (st == FH_OK && !strcmp(L->meta->partition, "users")) {
        int64_t *in = fh_calloc((size_t)R->nusers * 2, sizeof *in); /* [user]: clients holding it; client id + 1 */
        st = in ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory");
        for (int32_t c = c0; st == FH_OK && c < c1; c++) {
            int64_t n = 0;
            st = read_client(R, L, c, &n);
            for (int64_t k = 0; st == FH_OK && k < n; k++)
                if (in[R->nusers + R->us[k]] != c + 1) {
                    in[R->us[k]] += 1;
                    in[R->nusers + R->us[k]] = c + 1;
                }
        }
        st = comm_agree(w, st);
        if (st == FH_OK) st = comm_agree(w, comm_allreduce_sum_i64(w, in, (int64_t)R->nusers));
        for (int32_t u = 0; st == FH_OK && u < R->nusers; u++)
            if (in[u] > 1)
                st = fh_error_set(FH_EINPUT, "%s: user %d is held by %lld clients, but the partition is 'users' "
                                  "(enterprises hold disjoint sets of users)", cfg->data.file, u, (long long)in[u]);
        free(in);
    }
    R->urow = st == FH_OK ? malloc((size_t)(R->row ? R->row : 1) * sizeof *R->urow) : NULL;
    if (st == FH_OK && !R->urow) st = fh_error_set(FH_ENOMEM, "out of memory");
    st = comm_agree(w, st);
    if (st == FH_OK) st = comm_agree(w, fl_state_create(cfg, w, "gnn_users.h5", L->C, R->row, &R->store));
    if (st == FH_OK && cfg->model.gnn_weighting == 1 && L->m < L->C)
        st = fh_error_set(FH_EINPUT, "[model] gnn_weighting = items needs every client every round: [train] "
                          "clients_per_round = %d but the data set has %d clients", cfg->train.clients_per_round, L->C);
    if (st == FH_OK && (cfg->model.gnn_weighting == 1 || cfg->fl.algorithm == ALG_FEDPROX)) {
        R->global = malloc((size_t)L->P * sizeof *R->global);
        if (!R->global) st = fh_error_set(FH_ENOMEM, "out of memory");
    }
    if (st == FH_OK) fl_loop_field(L, "gnn_users", FL_FIELD_ROWS, CKPT_F32, R->store, R->row);
    if (st == FH_OK && w->rank == 0) {
        char path[CONFIG_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/recommend.csv", cfg->output.dir);
        const int resume = cfg->checkpoint.resume[0] != 0;
        R->csv = fopen(path, resume ? "a" : "w");
        if (!R->csv) st = fh_error_set(FH_EIO, "%s: cannot write", path);
        else if (!resume || ftell(R->csv) == 0)
            fprintf(R->csv, "round,users,precision10,recall10,f1_10,ndcg10,pop_precision10,pop_recall10,pop_f1_10,"
                    "pop_ndcg10,lpop_precision10,lpop_recall10,lpop_f1_10,lpop_ndcg10\n");
    }
    return comm_agree(w, st);
}

fh_status gnn_run_local(gnn_run *R, int32_t cid, int64_t r, const float *x, const int32_t *y, int64_t n, int64_t N_round,
                        float *params, double *loss, int64_t *steps, int64_t *seen)
{
    const config_t *cfg = R->cfg;
    *loss = 0;
    *steps = *seen = 0;
    FH_TRY(decode(R, cid, x, y, n));
    FH_TRY(client_setup(R, cid, n));
    const gnn_opts o = {R->dim, R->K, cfg->train.local_epochs, cfg->train.batch_size, cfg->train.lr,
                        cfg->train.weight_decay, cfg->fl.algorithm == ALG_FEDPROX ? cfg->fl.mu : 0.0, R->sage, R->global};
    const uint64_t seed = (uint64_t)cfg->train.seed;
    if (R->global) memcpy(R->global, params, (size_t)R->P * sizeof *params);
    FH_TRY(gnn_train(&R->g, &o, rng_stream(seed, (uint64_t)cid, (uint64_t)r, RNG_SHUFFLE),
                     rng_stream(seed, (uint64_t)cid, (uint64_t)r, RNG_GNN_NEG), R->u0, params, &R->ws, loss, steps, seen));
    if (R->global && cfg->model.gnn_weighting == 1 && n > 0) { /* gnn_weighting = items: item i's update scaled so that FedAvg's weight n/N_round
                               * becomes c_i / C_i (this client's / every client's training interactions) */
        const double base = (double)N_round / (double)n;
        for (int32_t i = 0; i < R->ni; i++) {
            if (R->popc[i] == 0) continue; /* nobody's training item: plain FedAvg */
            const float f = (float)(base * (double)(R->g.iptr[i + 1] - R->g.iptr[i]) / (double)R->popc[i]);
            float *p = params + (int64_t)i * R->dim;
            const float *g0 = R->global + (int64_t)i * R->dim;
            for (int32_t q = 0; q < R->dim; q++) p[q] = g0[q] + f * (p[q] - g0[q]);
        }
    }
    for (int32_t a = 0; a < R->g.nu; a++)
        memcpy(R->urow + (int64_t)R->g.user[a] * R->dim, R->u0 + (int64_t)a * R->dim, (size_t)R->dim * sizeof *R->u0);
    return io_state_write(R->store, cid, R->urow);
}

fh_status gnn_run_evaluate(gnn_run *R, fl_loop *L, int32_t r, double out[12])
{
    int64_t acc[10] = {0}; /* model P, R, NDCG; global popularity; the client's own popularity (fixed
                            * point); users */
    int32_t c0, c1, top[TOPK], got;
    slab(R, L, &c0, &c1);
    fh_status st = FH_OK;
    for (int32_t c = c0; st == FH_OK && c < c1; c++) {
        int64_t n = 0;
        st = read_client(R, L, c, &n);
        if (st == FH_OK) st = client_setup(R, c, n);
        if (st == FH_OK)
            st = R->sage ? gnn_sage_forward(&R->g, R->dim, R->K, R->u0, L->params, &R->ws)
                         : gnn_forward(&R->g, R->dim, R->K, R->u0, L->params, &R->ws);
        const gnn_graph *g = &R->g;
        for (int32_t i = 0; st == FH_OK && i < R->ni; i++) R->lpop[i] = (float)(g->iptr[i + 1] - g->iptr[i]);
        for (int32_t a = 0; st == FH_OK && a < g->nu; a++) {
            const int32_t nh = (int32_t)(g->hptr[a + 1] - g->hptr[a]);
            if (nh == 0) continue;
            const int32_t *rel = g->hidx + g->hptr[a];
            for (int64_t e = g->uptr[a]; e < g->uptr[a + 1]; e++) R->skip[g->uidx[e]] = 1;
            const float *fu = R->ws.uf + (int64_t)a * R->dim;
            for (int32_t j = 0; j < R->ni; j++) {
                const float *fi = R->ws.if_ + (int64_t)j * R->dim;
                float s = 0;
                for (int32_t q = 0; q < R->dim; q++) s += fu[q] * fi[q];
                R->scores[j] = s;
            }
            const float *by[3] = {R->scores, R->pop, R->lpop}; /* the model; global and own popularity */
            for (int b = 0; b < 3; b++) {
                double m[3];
                gnn_topk(by[b], R->ni, R->skip, TOPK, top, &got);
                gnn_rank_metrics(top, got, rel, nh, &m[0], &m[1], &m[2]);
                if (got < TOPK) m[0] = m[0] * got / TOPK;
                for (int k = 0; k < 3; k++) acc[3 * b + k] += (int64_t)llrint(m[k] * MSCALE);
            }
            acc[9] += 1;
            for (int64_t e = g->uptr[a]; e < g->uptr[a + 1]; e++) R->skip[g->uidx[e]] = 0;
        }
    }
    FH_TRY(comm_agree(L->w, st));
    FH_TRY(comm_agree(L->w, comm_allreduce_sum_i64(L->w, acc, 10)));
    const double users = (double)acc[9];
    for (int b = 0; b < 3; b++) {
        const double P = users > 0 ? (double)acc[3 * b] / MSCALE / users : NAN;
        const double Rc = users > 0 ? (double)acc[3 * b + 1] / MSCALE / users : NAN;
        out[4 * b] = P;
        out[4 * b + 1] = Rc;
        out[4 * b + 2] = P + Rc > 0 ? 2 * P * Rc / (P + Rc) : 0.0;
        out[4 * b + 3] = users > 0 ? (double)acc[3 * b + 2] / MSCALE / users : NAN;
    }
    if (R->csv) {
        fprintf(R->csv, "%d,%lld", r, (long long)acc[9]);
        for (int k = 0; k < 12; k++) fprintf(R->csv, ",%.6f", out[k]);
        fputc('\n', R->csv);
        fflush(R->csv);
    }
    return FH_OK;
}

void gnn_run_free(gnn_run *R)
{
    if (!R) return;
    io_state_close(R->store);
    if (R->csv) fclose(R->csv);
    gnn_graph_free(&R->g);
    gnn_ws_free(&R->ws);
    free(R->urow); free(R->u0); free(R->pop); free(R->popc); free(R->global); free(R->lpop); free(R->scores); free(R->skip);
    free(R->x); free(R->y); free(R->us); free(R->it); free(R->held);
    free(R);
}
