/* Multi-center federated learning on MPI rank groups, read top to bottom:
 *
 *   state replicated on every rank: K centers [K x P], every client's cluster assignment,
 *   (FedPer) which clients have a personal head; heads themselves live on disk (io_state)
 *   for each round r = 1..R:
 *     sample m clients; rank p hosts the p-th block of ceil(m / ranks) of them (the layout of
 *       dist_gram, so the similarity step needs no data movement; cross-silo: rank p = client p)
 *     each host picks its clients' starting center (IFCA: lowest loss of all centers on the
 *       client's training rows; otherwise its assigned center; a client without an assignment
 *       yet: lowest loss, or FeSEM the center its update from the warm-up model is most
 *       similar to), puts the client's own head on it (FedPer), trains locally
 *     assignment step: FeSEM nearest center (L2, shared layers) to the trained model; IFCA the
 *       chosen center; after the warm-up the first assignment is k-means with restarts (or
 *       spectral) on the Gram matrix of the client models computed by ScaLAPACK (dist_gram);
 *       clients not sampled keep their assignment (per-client state, in checkpoints)
 *     assignments all-reduced (exact integers): every rank knows every member of every cluster
 *     per cluster: comm_split of the ranks hosting its members; they sum n_i/N_k * model_i in
 *       fixed point with their own integer all-reduce (exact, any placement) — or, with
 *       [secagg], run their own secure-aggregation round on that communicator (masks per
 *       cluster, the cluster's lowest rank is its aggregator); members that drop out
 *       ([secagg] dropout: after reporting their cluster and sharing keys) are left out and the
 *       sum is rescaled by N_k / N_k(survivors); with [fl] aggregator a robust rule instead,
 *       over the members' updates on the same hosts (robust_round.c, robust_agg_comm); the
 *       cluster's aggregator broadcasts the center
 *     a center no assigned client uses any more restarts from the round's worst-fit client
 *     evaluation: every client's accuracy on its own held-out rows with its own model (its
 *       center plus its head), mean, 10th percentile, per-cluster accuracy, cluster sizes and
 *       the adjusted Rand index against the data set's true groups -> <out>/clusters.csv
 */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/cluster.h"
#include "fedhpc/loop.h"
#include "fedhpc/robust.h"
#include "fedhpc/sample.h"
#include "fedhpc/secagg_round.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { M_OFF = 0, M_NONE = 1, M_FESEM = 2, M_IFCA = 3, M_CFL = 4, M_ORACLE = 5 };
enum { U_LOSS, U_ROWS, U_CLIENTS, U_REJ, U_STOP, U_N };
#define LOSS_SCALE 1048576.0
#define REJ_FLAG (1LL << 40)

typedef struct {
    fl_worker *wk;       /* the loop's worker                                         */
    io_state *heads;     /* FedPer: [C, hlen] personal heads                          */
    int32_t C, K;
    int64_t P, base, hlen; /* shared prefix [0, base), head [base, P)                  */
    float *centers;      /* [K * P]                                                   */
    int32_t *assign;     /* [C]                                                       */
    uint8_t *known;      /* [C] the client has an assignment (kept while it is not sampled) */
    float *ref;          /* [P] fesem: the warm-up model (start of the first assignment round) */
    double *fit;         /* [m] the round's clients' mean training loss (re-seeding: worst fit) */
    uint8_t *wasempty;   /* [K] a cluster reported empty (warn once)                   */
    int32_t *truth;      /* [C] true groups or NULL                                   */
    uint8_t *seen;       /* [C] FedPer: head written                                  */
    int32_t *ids;        /* [C] */
    int64_t *start, *count, *ntr; /* [C] */
    int64_t *lab;        /* [C + U_N] assignments of the round + counters             */
    float *x;
    int32_t *y;
    int64_t xcap;
    float *models;       /* [ceil(C / ranks) * P] this rank's trained client models    */
    float *cur;          /* [P] */
    int64_t *acc;        /* [P] */
    int64_t *nk;         /* [K] rows of each cluster this round                        */
    double *cacc;        /* [C] per-client accuracy                                    */
    double *closs;       /* [C] per-client mean test loss                              */
    FILE *csv;
    float *old;          /* CFL: [K * P] centers at the start of the round              */
    double *unorm;       /* CFL: [C] update norms of the round's clients                */
    int64_t active;      /* CFL: clusters in use                                        */
    secagg_engine sa;    /* [secagg]: per-cluster rounds; [secagg] dropout; record files     */
    privacy_run pv;      /* [privacy] sample: DP-SGD inside every client; client: see dp_*  */
    /* [privacy] mode = client: every client adds its clipped update u = model - center into
     * slot k of one [K * P] vector (zeros elsewhere), summed over all ranks (or by secure
     * aggregation) with the count of unclipped updates behind it, and noised as one vector: the
     * cluster a client joins stays inside the noised sum. */
    int64_t *kacc;       /* [K * P + 1] this rank's sum (no secagg)                      */
    float *kdec;         /* [K * P] the noised mean update of every slot                 */
    fl_agg agg;          /* the aggregation stages over pv, sa and kacc                  */
    int32_t *mids, *mfirst; /* [m], [ranks + 1]: a cluster's members, placed on its hosts
                             * ([privacy] client: mfirst holds the round's client blocks) */
    int32_t largest;     /* the cluster with the most members at the last evaluation   */
    int32_t n;           /* clients of the round                                       */
    int64_t c0, c1;      /* this rank's block of them                                  */
    int32_t *na;         /* [m] the round's new assignments                            */
    uint8_t *okc;        /* [m] the round's accepted updates                           */
    int64_t sa_aborted;  /* [secagg] this round: clusters aborted; sat: this rank's clusters' */
    double sat[4];       /* mask bytes, mask seconds, raw ChaCha20 bytes, raw seconds   */
    robust_agg rb;       /* [fl] aggregator != mean: the rule per cluster over the shared layers */
    int64_t *size;       /* evaluation, reseed_empty: [2K] clients per cluster (all, with an assignment) */
    double *kstat, *v;   /* evaluation: [2K] accuracy sums, counts; [C] accuracies of clients with rows */
    int32_t *ka;         /* evaluation: [2C] assigned clients' clusters, then their true groups */
    void *owned[40];     /* the arrays above from own(), freed together                 */
    int nowned, oom;
} cl_state;

/* A zeroed array of n elements owned by the state (freed by cluster_free); NULL (and s->oom
 * set) when out of memory. */
static void *own(cl_state *s, int64_t n, size_t size)
{
    if (s->nowned == (int)(sizeof s->owned / sizeof *s->owned)) abort(); /* a programming error: raise owned[] */
    void *p = fh_calloc((size_t)n, size);
    s->oom |= !p;
    s->owned[s->nowned++] = p; /* NULL too: free(NULL) does nothing */
    return p;
}

static void cluster_free(fl_loop *L)
{
    cl_state *s = L->s;
    if (!s) return;
    io_state_close(s->heads);
    for (int i = 0; i < s->nowned; i++) free(s->owned[i]);
    free(s->x);
    free(s->y);
    secagg_engine_free(&s->sa);
    privacy_run_free(&s->pv);
    robust_agg_free(&s->rb);
    if (s->csv) fclose(s->csv);
}

/* The model client cid uses when starting from center k: the center, with the client's own
 * head when FedPer has given it one. */
static fh_status client_model(const config_t *cfg, cl_state *s, int32_t cid, int32_t k, float *out)
{
    memcpy(out, s->centers + (int64_t)k * s->P, (size_t)s->P * sizeof *out);
    if (cfg->cluster.personalize == 1 && s->seen[cid]) FH_TRY(io_state_read(s->heads, cid, out + s->base));
    return FH_OK;
}

/* Evaluate every client on its own held-out rows (all its rows if the data set has no local
 * split) with its own model; rank 0 fills the stats and writes a clusters.csv row. */
static fh_status cluster_evaluate(fl_loop *L, int32_t r, fl_round_stats *rs)
{
    const comm_t *w = L->w;
    const model_t *md = L->md;
    cl_state *s = L->s;
    const int32_t C = s->C, K = s->K;
    const int64_t e0 = dist_rows_first(C, w->size, w->rank), e1 = dist_rows_first(C, w->size, w->rank + 1);
    for (int32_t c = 0; c < C; c++) s->ids[c] = c;
    fh_status st = io_data_client_ranges(L->data, s->ids, C, s->start, s->count);
    for (int32_t c = 0; st == FH_OK && c < C; c++) {
        const int64_t t = io_data_local_test_rows(L->meta, s->count[c]); /* 0: no local split */
        s->start[c] += t > 0 ? s->count[c] - t : 0;
        s->count[c] = t > 0 ? t : s->count[c];
    }
    if (st == FH_OK) st = fl_read_rows(L->data, (int32_t)(e1 - e0), s->start + e0, s->count + e0, md->in, &s->x, &s->y, &s->xcap);
    if ((st = comm_agree(w, st)) != FH_OK) return st;
    for (int32_t c = 0; c < C; c++) s->cacc[c] = s->closs[c] = 0;
    int64_t row = 0;
    for (int64_t c = e0; st == FH_OK && c < e1; c++) {
        metrics_t mt;
        st = client_model(L->cfg, s, (int32_t)c, s->assign[c], s->cur);
        if (st == FH_OK && s->count[c] > 0)
            st = model_evaluate(md, s->cur, s->x + row * md->in, s->y + row, s->count[c], s->wk->ws, s->wk->ws_rows, &mt);
        s->cacc[c] = s->count[c] > 0 ? mt.accuracy : -1.0; /* -1: no rows */
        s->closs[c] = s->count[c] > 0 ? mt.loss : 0;
        row += s->count[c];
    }
    if ((st = comm_agree(w, st)) != FH_OK) return st;
    FH_TRY(comm_allreduce_sum_f64(w, s->cacc, C)); /* one non-zero term per entry: exact */
    FH_TRY(comm_allreduce_sum_f64(w, s->closs, C));
    /* sizes and the largest cluster (its center is evaluated on the global test split) */
    int64_t *size = s->size, *ksz = s->size + K;
    double *kacc = s->kstat, lsum = 0; /* sums, counts */
    int32_t *ka = s->ka, *kt = s->ka + C; /* ARI: clusters, true groups */
    int32_t nv = 0, na = 0, nonempty = 0, big = 0;
    memset(size, 0, 2 * (size_t)K * sizeof *size);
    memset(kacc, 0, 2 * (size_t)K * sizeof *kacc);
    for (int32_t c = 0; c < C; c++) {
        const int32_t k = s->assign[c];
        size[k]++;
        if (s->cacc[c] >= 0) {
            kacc[k] += s->cacc[c];
            kacc[K + k] += 1;
            lsum += s->closs[c];
            s->v[nv++] = s->cacc[c];
        }
        if (s->known[c]) { /* ARI over the clients that have an assignment (a client never sampled has none) */
            ksz[k]++;
            ka[na] = k;
            kt[na++] = s->truth ? s->truth[c] : 0;
        }
    }
    for (int32_t k = 0; k < K; k++) {
        if (size[k] > size[big]) big = k;
        nonempty += ksz[k] > 0;
    }
    s->largest = big;
    fl_acc_summary(s->v, nv, &rs->client_acc_mean, &rs->client_acc_p10);
    if (w->rank == 0 && L->test.n > 0)
        st = fl_testset_eval(&L->test, md, s->centers + (int64_t)big * s->P, s->wk->ws, s->wk->ws_rows, &rs->test);
    st = comm_agree(w, st);
    if (st == FH_OK && w->rank == 0 && s->csv) {
        double ari = s->truth && na > 0 ? cl_ari(ka, kt, na) : NAN;
        fprintf(s->csv, "%d,%.6f,%.6f,%.6f,", r, ari, rs->client_acc_mean, rs->client_acc_p10);
        for (int32_t k = 0; k < K; k++) fprintf(s->csv, "%s%lld", k ? ";" : "", (long long)size[k]);
        fputc(',', s->csv);
        for (int32_t k = 0; k < K; k++)
            fprintf(s->csv, "%s%.4f", k ? ";" : "", kacc[K + k] > 0 ? kacc[k] / kacc[K + k] : NAN);
        fprintf(s->csv, ",%d,%d,%.6f\n", nonempty, na, nv ? lsum / nv : NAN);
        fflush(s->csv);
    }
    return st;
}

/* The assignments in a checkpoint, each checked to name a cluster that exists. */
static fh_status assign_save(void *p, const comm_t *w, ckpt *h)
{
    (void)w;
    const cl_state *s = p;
    return ckpt_put_array(h, "cluster_assign", CKPT_I32, s->assign, s->C);
}

static fh_status assign_load(void *p, const comm_t *w, ckpt *h)
{
    (void)w;
    cl_state *s = p;
    FH_TRY(ckpt_get_array(h, "cluster_assign", CKPT_I32, s->assign, s->C));
    for (int32_t c = 0; c < s->C; c++)
        if (s->assign[c] < 0 || s->assign[c] >= s->K)
            return fh_error_set(FH_EINPUT, "%s: cluster_assign: client %d in cluster %d, expected [0, %d)", ckpt_path(h), c,
                                s->assign[c], s->K);
    return FH_OK;
}

/* Bi-partition m items by complete-linkage agglomeration on similarities S[m x m] (Sattler et
 * al.'s choice): merge the two groups whose least similar pair is most similar until two
 * remain. lab[a] in {0, 1}; the group of item 0 is 0. O(m^3). */
static fh_status bipartition(const double *S, int32_t m, int32_t *lab)
{
    double *L = malloc((size_t)m * (size_t)m * sizeof *L);
    int32_t *g = malloc((size_t)m * sizeof *g); /* item -> the item naming its group (g[p] == p: p names one) */
    if (!L || !g) {
        free(L); free(g);
        return fh_error_set(FH_ENOMEM, "out of memory for the CFL bi-partition");
    }
    memcpy(L, S, (size_t)m * (size_t)m * sizeof *L);
    for (int32_t a = 0; a < m; a++) g[a] = a;
    for (int32_t left = m; left > 2; left--) {
        int32_t bp = -1, bq = -1;
        for (int32_t p = 0; p < m; p++)
            for (int32_t q = p + 1; g[p] == p && q < m; q++)
                if (g[q] == q && (bp < 0 || L[(int64_t)p * m + q] > L[(int64_t)bp * m + bq])) {
                    bp = p;
                    bq = q;
                }
        for (int32_t x = 0; x < m; x++) {
            double v = L[(int64_t)bp * m + x] < L[(int64_t)bq * m + x] ? L[(int64_t)bp * m + x] : L[(int64_t)bq * m + x];
            L[(int64_t)bp * m + x] = L[(int64_t)x * m + bp] = v;
        }
        for (int32_t a = 0; a < m; a++)
            if (g[a] == bq) g[a] = bp;
    }
    for (int32_t a = 0; a < m; a++) lab[a] = g[a] != g[0];
    free(L); free(g);
    return FH_OK;
}

/* ||model - start||_2 of a client's local work; *base_norm: the same over [0, base). */
static double update_norm(const float *model, const float *start, int64_t P, int64_t base, double *base_norm)
{
    double u = 0;
    for (int64_t j = 0; j < P; j++) {
        if (j == base) *base_norm = sqrt(u);
        const double d = (double)model[j] - (double)start[j];
        u += d * d;
    }
    if (base >= P) *base_norm = sqrt(u);
    return sqrt(u);
}

/* CFL (Sattler et al. 2020): after aggregation, the first active cluster whose mean update is
 * small (< eps1) while some member's update is large (> eps2) is bi-partitioned by complete
 * linkage on the cosine similarities of its members' updates (Gram matrix on ScaLAPACK);
 * the new cluster starts from the same center. s->models holds the trained models; they are
 * turned into updates here. Returns with na[] and the assignments updated. Collective. */
static fh_status cfl_split(const config_t *cfg, const comm_t *w, cl_state *s, int32_t r, const char **note)
{
    const int64_t P = s->P, c0 = s->c0;
    const int32_t n = s->n;
    const uint8_t *okc = s->okc;
    int32_t split = -1, mk = 0, *na = s->na;
    static char buf[256];
    int at = snprintf(buf, sizeof buf, "cfl round %d: |mean update| / max |update| per cluster:", r);
    for (int32_t k = 0; k < s->active && s->active < s->K && split < 0; k++) {
        const double mean = update_norm(s->centers + k * P, s->old + k * P, s->base, s->base, &(double){0});
        double mx = 0;
        int32_t cnt = 0;
        for (int32_t i = 0; i < n; i++)
            if (okc[i] && na[i] == k) {
                cnt++;
                if (s->unorm[i] > mx) mx = s->unorm[i];
            }
        if (cnt > 0 && at < (int)sizeof buf - 40) at += snprintf(buf + at, sizeof buf - (size_t)at, " %d: %.3g/%.3g", k, mean, mx);
        if (cnt >= 2 && mean < cfg->cluster.eps1 && mx > cfg->cluster.eps2) {
            split = k;
            mk = cnt;
        }
    }
    *note = buf;
    if (split < 0) return FH_OK;
    for (int64_t i = c0; i < s->c1; i++)
        for (int64_t j = 0; j < P; j++) s->models[(i - c0) * P + j] -= s->old[(int64_t)na[i] * P + j];
    double *G = malloc((size_t)n * (size_t)n * sizeof *G), *Cs = malloc((size_t)n * (size_t)n * sizeof *Cs),
           *S = malloc((size_t)mk * (size_t)mk * sizeof *S);
    int32_t *mem = malloc((size_t)mk * sizeof *mem), *lab = malloc((size_t)mk * sizeof *lab);
    fh_status st = G && Cs && S && mem && lab ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory for the CFL split");
    st = comm_agree(w, st);
    if (st == FH_OK) st = dist_gram(w, n, P, s->models, 64, G, NULL);
    if (st == FH_OK) {
        cl_gram_derive(G, n, NULL, Cs);
        int32_t t = 0;
        for (int32_t i = 0; i < n; i++)
            if (okc[i] && na[i] == split) mem[t++] = i;
        for (int32_t a = 0; a < mk; a++)
            for (int32_t b = 0; b < mk; b++) S[(int64_t)a * mk + b] = Cs[(int64_t)mem[a] * n + mem[b]];
        st = bipartition(S, mk, lab);
    }
    if (st == FH_OK) {
        const int32_t nk = (int32_t)s->active++;
        for (int32_t a = 0; a < mk; a++)
            if (lab[a] != lab[0]) na[mem[a]] = nk; /* the part without the first member moves */
        memcpy(s->centers + (int64_t)nk * P, s->centers + (int64_t)split * P, (size_t)P * sizeof *s->centers);
        if (at < (int)sizeof buf - 40) snprintf(buf + at, sizeof buf - (size_t)at, "; split %d -> %d + %d", split, split, nk);
        for (int32_t c = 0; c < s->C; c++) /* members of the split cluster not in the round: to be re-assigned */
            if (s->assign[c] == split) s->known[c] = 0;
        for (int32_t i = 0; i < n; i++) {
            s->assign[s->ids[i]] = na[i];
            if (okc[i]) s->known[s->ids[i]] = 1;
        }
    }
    free(G); free(Cs); free(S); free(mem); free(lab);
    return st;
}

/* The first FeSEM/IFCA assignment after the warm-up: k-means (k-means++ seeding, [cluster]
 * restarts restarts, the lowest total within-cluster distance kept) or spectral clustering on
 * the Gram matrix of the n trained client models, computed on ScaLAPACK from each rank's rows. */
/* [cluster] restart_score = loss: the total training loss of the round's accepted clients when
 * each is evaluated on its own training rows with the row-weighted mean of its cluster's client
 * models under assignment as[n] (means: exact fixed-point sums, one all-reduce; the loss summed
 * in fixed point too, so the score is the same for any -np). acc [K * P], mean [K * P]. */
static fh_status restart_loss(const comm_t *w, cl_state *s, const model_t *md, const int32_t *as, int32_t n,
                              int64_t *acc, float *mean, int64_t *score)
{
    const int64_t P = s->P;
    const int32_t K = s->K;
    int64_t *nk = s->nk; /* scratch: the aggregation step recomputes it */
    for (int32_t k = 0; k < K; k++) nk[k] = 0;
    for (int32_t i = 0; i < n; i++)
        if (s->okc[i]) nk[as[i]] += s->ntr[i];
    memset(acc, 0, (size_t)K * (size_t)P * sizeof *acc);
    for (int64_t i = s->c0; i < s->c1; i++)
        if (s->okc[i] && s->ntr[i] > 0)
            fx_accumulate(acc + (int64_t)as[i] * P, s->models + (i - s->c0) * P, (double)s->ntr[i] / (double)nk[as[i]], P);
    FH_TRY(comm_allreduce_sum_i64(w, acc, (int64_t)K * P));
    for (int32_t k = 0; k < K; k++)
        if (nk[k] > 0) fx_decode(acc + (int64_t)k * P, 1.0, mean + (int64_t)k * P, P);
    fh_status st = FH_OK;
    int64_t row = 0;
    *score = 0;
    for (int64_t i = s->c0; st == FH_OK && i < s->c1; i++) {
        const int64_t ni = s->ntr[i];
        if (s->okc[i] && ni > 0) {
            metrics_t mt;
            st = model_evaluate(md, mean + (int64_t)as[i] * P, s->x + row * md->in, s->y + row, ni, s->wk->ws,
                                s->wk->ws_rows, &mt);
            if (st == FH_OK) *score += (int64_t)llrint(mt.loss * (double)ni * LOSS_SCALE);
        }
        row += ni;
    }
    FH_TRY(comm_agree(w, st));
    return comm_allreduce_sum_i64(w, score, 1);
}

static fh_status initial_assignment(const config_t *cfg, const comm_t *w, cl_state *s, int32_t n, int32_t r,
                                    const model_t *md, int32_t *out)
{
    double *G = malloc((size_t)n * (size_t)n * sizeof *G), *D = malloc((size_t)n * (size_t)n * sizeof *D);
    fh_status st = comm_agree(w, G && D ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory for the similarity step"));
    if (st == FH_OK) st = dist_gram(w, n, s->P, s->models, 64, G, NULL);
    if (st == FH_OK) /* spectral: cosine similarities; k-means: squared distances */
        cfg->cluster.init == 1 ? cl_gram_derive(G, n, NULL, D) : cl_gram_derive(G, n, D, NULL);
    if (st == FH_OK && cfg->cluster.init == 1) {
        st = cl_spectral(w, D, n, s->K, (uint64_t)cfg->train.seed, out);
    } else if (st == FH_OK && cfg->cluster.restart_score == 1) {
        /* every restart scored by the clients' training loss under its clusters' mean models */
        const int64_t KP = (int64_t)s->K * s->P;
        int64_t *acc = malloc((size_t)KP * sizeof *acc), best = INT64_MAX, score = 0;
        float *mean = malloc((size_t)KP * sizeof *mean);
        int32_t *cur = malloc((size_t)n * sizeof *cur);
        st = comm_agree(w, acc && mean && cur ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory for the restart scores"));
        for (int32_t t = 0; st == FH_OK && t < cfg->cluster.restarts; t++) {
            double obj;
            st = cl_kmeans_d2_restart(D, n, s->K, (uint64_t)cfg->train.seed, r, t, 100, cur, &obj);
            if (st == FH_OK) st = restart_loss(w, s, md, cur, n, acc, mean, &score);
            if (st == FH_OK && score < best) { /* ties: the lowest restart */
                best = score;
                memcpy(out, cur, (size_t)n * sizeof *out);
            }
        }
        free(acc); free(mean); free(cur);
    } else if (st == FH_OK) {
        st = cl_kmeans_d2(D, n, s->K, (uint64_t)cfg->train.seed, r, cfg->cluster.restarts, 100, out, NULL);
    }
    free(G); free(D);
    return st;
}

static fh_status cluster_check(const config_t *cfg, const comm_t *w, int32_t C, int32_t m)
{
    if (cfg->fl.algorithm != ALG_FEDAVG)
        return fh_error_set(FH_EINPUT, "[cluster]/[personalize]: centers are model averages; set [fl] algorithm = fedavg (got %s)",
                            config_algorithm_name(cfg->fl.algorithm));
    if (cfg->cluster.clients_per_rank == 1 && (w->size != C || m != C))
        return fh_error_set(FH_EINPUT, "[run] clients_per_rank = 1 (cross-silo): run with -np %d (one rank per client, "
                            "got %d) and [train] clients_per_round >= %d", C, w->size, C);
    if (w->size > m)
        return fh_error_set(FH_EINPUT, "%s: %d clients a round, but %d ranks: run with at most %d ranks",
                            cfg->data.file, m, w->size, m);
    const int32_t K = cfg->cluster.method <= M_NONE ? 1 : cfg->cluster.k;
    if (K > m) return fh_error_set(FH_EINPUT, "[cluster] k = %d: more centers than clients a round (%d)", K, m);
    if (cfg->cluster.assign_new == 2 && cfg->cluster.method != M_FESEM)
        return fh_error_set(FH_EINPUT, "[cluster] assign_new = similarity: fesem only (the drift of each center from the "
                            "warm-up model); use loss or auto with method = %s",
                            cfg->cluster.method == M_IFCA ? "ifca" : cfg->cluster.method == M_CFL ? "cfl" : "none");
    if (cfg->cluster.assign_new == 1 && cfg->cluster.method == M_FESEM && cfg->privacy.mode == 2)
        return fh_error_set(FH_EINPUT, "[cluster] assign_new = loss with [privacy] mode = sample: not supported: the loss of "
                            "every center is computed on the client's raw rows, outside DP-SGD; use assign_new = similarity "
                            "(or auto)");
    /* fesem with warmup = 0 starts from K random centers (as ifca): a new client picks its first
     * center by loss; there is no warm-up model for the similarity rule */
    if (cfg->cluster.method == M_FESEM && cfg->cluster.warmup == 0 && cfg->cluster.assign_new == 2)
        return fh_error_set(FH_EINPUT, "[cluster] assign_new = similarity with warmup = 0: the similarity rule compares a "
                            "client's update with each center's drift from the warm-up model; set warmup >= 1 or assign_new = loss");
    if (cfg->cluster.method == M_FESEM && cfg->cluster.warmup == 0 && cfg->privacy.mode == 2)
        return fh_error_set(FH_EINPUT, "[cluster] method = fesem with warmup = 0 and [privacy] mode = sample: not supported: a "
                            "new client's first center would be chosen by the loss on its raw rows (outside DP-SGD), and "
                            "the similarity rule needs a warm-up model; set warmup >= 1");
    return FH_OK;
}

static fh_status cluster_alloc(cl_state *s, int32_t m, int nranks, int cfl)
{
    const int64_t C = s->C, K = s->K, P = s->P, mb = (m + nranks - 1) / nranks;
    s->centers = own(s, K * P, sizeof *s->centers);
    s->assign = own(s, C, sizeof *s->assign);
    s->known = own(s, C, 1);
    s->ref = own(s, P, sizeof *s->ref);
    s->fit = own(s, m, sizeof *s->fit);
    s->wasempty = own(s, K, 1);
    s->seen = own(s, C, sizeof *s->seen);
    s->ids = own(s, C, sizeof *s->ids);
    s->start = own(s, C, sizeof *s->start);
    s->count = own(s, C, sizeof *s->count);
    s->ntr = own(s, C, sizeof *s->ntr);
    s->lab = own(s, C + U_N, sizeof *s->lab);
    s->models = own(s, mb * P, sizeof *s->models);
    s->cur = own(s, P, sizeof *s->cur);
    s->acc = own(s, P, sizeof *s->acc);
    s->nk = own(s, K, sizeof *s->nk);
    s->cacc = own(s, C, sizeof *s->cacc);
    s->closs = own(s, C, sizeof *s->closs);
    s->mids = own(s, m, sizeof *s->mids);
    s->mfirst = own(s, nranks + 1, sizeof *s->mfirst);
    s->na = own(s, m, sizeof *s->na);
    s->okc = own(s, m, 1);
    s->size = own(s, 2 * K, sizeof *s->size);
    s->kstat = own(s, 2 * K, sizeof *s->kstat);
    s->v = own(s, C, sizeof *s->v);
    s->ka = own(s, 2 * C, sizeof *s->ka);
    s->active = 1;
    if (cfl) {
        s->old = own(s, K * P, sizeof *s->old);
        s->unorm = own(s, C, sizeof *s->unorm);
    }
    if (s->oom)
        return fh_error_set(FH_ENOMEM, "out of memory for %d centers of %lld parameters", (int)K, (long long)P);
    return FH_OK;
}

static fh_status cluster_init(fl_loop *L)
{
    const config_t *cfg = L->cfg;
    const comm_t *w = L->w;
    const model_t *md = L->md;
    FH_TRY(cluster_check(cfg, w, L->C, L->m));
    cl_state *s = L->s = fh_calloc(1, sizeof *s);
    FH_CHECK_ALLOC(s);
    s->wk = &L->wk;
    s->C = L->C;
    s->K = cfg->cluster.method <= M_NONE ? 1 : cfg->cluster.k;
    s->P = L->P;
    s->base = cfg->cluster.personalize == 1 ? md->w_off[md->nlayers - 1] : s->P;
    s->hlen = s->P - s->base;
    const int64_t P = s->P;
    fh_status st = cluster_alloc(s, L->m, w->size, cfg->cluster.method == M_CFL);
    if (st == FH_OK && L->meta->has_client_group) {
        s->truth = own(s, s->C, sizeof *s->truth);
        st = s->truth ? io_data_client_groups(L->data, s->truth) : fh_error_set(FH_ENOMEM, "out of memory");
    }
    if (st == FH_OK && cfg->cluster.method == M_ORACLE) { /* the true groups, fixed for the whole run */
        if (!s->truth || L->meta->groups != s->K)
            st = fh_error_set(FH_EINPUT, "[cluster] method = oracle: needs a data file with true client groups (prepare "
                              "--groups, --group-by or --group-map) and k = its number of groups: %s has %d groups, k = %d",
                              cfg->data.file, s->truth ? L->meta->groups : 0, s->K);
        for (int32_t c = 0; st == FH_OK && c < s->C; c++) {
            s->assign[c] = s->truth[c];
            s->known[c] = 1;
        }
    }
    st = comm_agree(w, st);
    if (st == FH_OK && cfg->cluster.personalize == 1)
        st = comm_agree(w, fl_state_create(cfg, w, "client_heads.h5", s->C, s->hlen, &s->heads));
    if (st == FH_OK && w->rank == 0) {
        char path[CONFIG_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/clusters.csv", cfg->output.dir);
        s->csv = fopen(path, cfg->checkpoint.resume[0] ? "a" : "w");
        if (!s->csv) st = fh_error_set(FH_EIO, "%s: cannot write", path);
        else if (ftell(s->csv) == 0) fprintf(s->csv, "round,ari,client_acc_mean,client_acc_p10,cluster_sizes,cluster_acc,nonempty,assigned,client_loss_mean\n");
    }
    st = comm_agree(w, st);
    /* initial centers: IFCA and FeSEM with warmup = 0 from K independent initialisations, the
     * others from the model's */
    for (int32_t k = 0; st == FH_OK && k < s->K; k++) {
        float *ck = s->centers + (int64_t)k * P;
        if ((cfg->cluster.method == M_IFCA || cfg->cluster.method == M_FESEM) && cfg->cluster.warmup == 0) {
            /* K independent initialisations (plus N(0, 0.01^2) so that all-zero inits differ) */
            rng_t rk = rng_stream((uint64_t)cfg->train.seed, (uint64_t)k, 0, RNG_CLUSTER);
            model_init_params(md, ck, rng_u64(&rk));
            for (int64_t j = 0; j < P; j++) ck[j] += (float)(0.01 * rng_normal(&rk));
        } else {
            memcpy(ck, L->params, (size_t)P * sizeof *s->centers);
        }
    }
    if (st == FH_OK) memcpy(s->ref, L->params, (size_t)P * sizeof *s->ref);
    /* [fl] aggregator: each cluster's rule runs on its own rank group (robust_agg_comm) over the
     * shared layers [0, base); no state across rounds */
    if (st == FH_OK && cfg->fl.aggregator != AGGR_MEAN) st = comm_agree(w, robust_agg_init(&s->rb, cfg, L->m, s->base, w));
    if (st == FH_OK) st = comm_agree(w, fl_loop_privacy(L, &s->pv, L->m));
    const int64_t nsa = s->pv.mode == PRIVACY_CLIENT ? (int64_t)s->K * P + 1 : P;
    if (st == FH_OK && s->pv.mode == PRIVACY_CLIENT) {
        s->kacc = own(s, nsa, sizeof *s->kacc);
        s->kdec = own(s, nsa - 1, sizeof *s->kdec);
        st = comm_agree(w, s->kacc && s->kdec ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory"));
    }
    if (st == FH_OK) st = comm_agree(w, secagg_engine_init(&s->sa, &cfg->secagg, (uint64_t)cfg->train.seed, 1, w, nsa, nsa - (s->pv.mode == PRIVACY_CLIENT)));
    s->agg = (fl_agg){&s->pv, &s->sa, s->kacc, nsa, cfg->fl.max_update_norm, NULL, 0, NULL, NULL};
    /* a checkpoint: centers, every client's assignment, which clients have a head, and the heads
     * themselves (row-distributed). Sampling and shuffles are pure functions of (seed, round,
     * client), so nothing else is needed. */
    fl_loop_field(L, "centers", FL_FIELD_ARRAY, CKPT_F32, s->centers, (int64_t)s->K * P);
    fl_loop_hook(L, "cluster_assign", s, assign_save, assign_load);
    fl_loop_field(L, "cluster_known", FL_FIELD_ARRAY, CKPT_U8, s->known, s->C);
    fl_loop_field(L, "cluster_ref", FL_FIELD_ARRAY, CKPT_F32, s->ref, P);
    fl_loop_field(L, "head_seen", FL_FIELD_ARRAY, CKPT_U8, s->seen, s->C);
    fl_loop_field(L, "cfl_active", FL_FIELD_I64, CKPT_I64, &s->active, 1);
    fl_loop_field(L, "client_heads", FL_FIELD_ROWS, CKPT_F32, s->heads, s->hlen);
    return st;
}

/* [privacy] mode = client: client cid's update u = model - center k (FedPer: the shared layers
 * only; heads stay personal), clipped to C, into slot k of its [K * P] contribution. Returns 0
 * if the stage rejected it (then only its distributed noise share is in the buffer). */
static int dp_slot_add(cl_state *s, int32_t r, int64_t i, int32_t cid, int32_t k, const float *model)
{
    const int64_t P = s->P, KP = (int64_t)s->K * P;
    int64_t *buf = fl_agg_buffer(&s->agg, (int32_t)(i - s->c0));
    const float *ck = s->centers + (int64_t)k * P;
    for (int64_t j = 0; j < P; j++) s->cur[j] = j < s->base ? model[j] - ck[j] : 0.0f;
    return fl_agg_add(&s->agg, buf + (int64_t)k * P, r, cid, s->cur, P, 1, 0.0, &buf[KP]);
}

/* [privacy] mode = client: the [K * P] sum over every rank (all-reduce, or one secure-aggregation
 * round over the world), noised as one vector (independent noise in every slot, the DP-FedAvg
 * mechanism of multiplier sigma for every client: it is in one slot); center k moves by K times
 * its slot (the mean of its members' updates when the K clusters are equally large). */
static fh_status cluster_aggregate_dp(fl_loop *L, cl_state *s, int32_t r)
{
    const comm_t *w = L->w;
    const int64_t P = s->P, KP = (int64_t)s->K * P;
    for (int p = 0; p <= w->size; p++) s->mfirst[p] = (int32_t)dist_rows_first(s->n, w->size, p);
    FH_TRY(fl_agg_sum(&s->agg, w, r, s->ids, s->mfirst, s->n, 0));
    s->sa_aborted = fl_agg_aborted(&s->agg);
    if (!s->sa_aborted) {
        fl_agg_decode(&s->agg, r, s->kacc, KP, 1.0, s->kdec);
        for (int64_t j = 0; j < KP; j++) s->centers[j] += (float)s->K * s->kdec[j];
    }
    privacy_run_end(&s->pv, r, s->kacc[KP], s->sa_aborted ? NULL : s->kdec, KP);
    return FH_OK;
}

/* FeSEM, a client seen for the first time: it has trained from the warm-up model (s->ref);
 * the center whose drift from the centers' mean, c_k - mean_j c_j, has the highest cosine
 * similarity with the client's update model - ref (shared layers). Ties: the lowest index. */
static int32_t similar_center(const cl_state *s, const float *model)
{
    const int64_t P = s->P;
    int32_t best = 0;
    double bs = -INFINITY;
    for (int32_t k = 0; k < s->K; k++) {
        double dot = 0, nn = 0;
        for (int64_t j = 0; j < s->base; j++) {
            double mean = 0;
            for (int32_t q = 0; q < s->K; q++) mean += (double)s->centers[(int64_t)q * P + j];
            const double d = (double)s->centers[(int64_t)k * P + j] - mean / s->K;
            dot += d * ((double)model[j] - (double)s->ref[j]);
            nn += d * d;
        }
        const double sc = nn > 0 ? dot / sqrt(nn) : -INFINITY;
        if (sc > bs) {
            bs = sc;
            best = k;
        }
    }
    return best;
}

/* Local work of round r on this rank's block [c0, c1): each client starts from its center (IFCA:
 * the one with the lowest loss on its rows), trains, and reports its new cluster in s->lab. */
static fh_status cluster_local(fl_loop *L, cl_state *s, int32_t r, int warm)
{
    const config_t *cfg = L->cfg;
    const model_t *md = L->md;
    const int64_t P = s->P;
    const int32_t K = s->K;
    int64_t *tail = s->lab + s->n;
    fl_local_opts o = fl_local_opts_make(cfg, NULL);
    fh_status st = FH_OK;
    int64_t row = 0;
    for (int64_t i = s->c0; st == FH_OK && i < s->c1; i++) {
        const int32_t cid = s->ids[i];
        const float *xi = s->x + row * md->in;
        const int32_t *yi = s->y + row;
        const int64_t ni = s->ntr[i];
        row += ni;
        float *loc = s->models + (i - s->c0) * P;
        int32_t k0 = s->assign[cid];
        /* a client without an assignment (first sampled after the first assignment, or a CFL
         * cluster split while it was away) picks one by loss or by the similarity of its update */
        const int32_t kmax = cfg->cluster.method == M_CFL ? (int32_t)s->active : K;
        const int dpsgd = s->pv.mode == PRIVACY_SAMPLE;
        const int by_sim = !warm && !s->known[cid] && kmax > 1 && cfg->cluster.method == M_FESEM &&
                           (cfg->cluster.assign_new == 2 || (cfg->cluster.assign_new == 0 && cfg->cluster.warmup > 0));
        /* with DP-SGD nothing may read the raw rows outside it: no loss-based choice (CFL keeps
         * the parent cluster; fesem with assign_new = loss is refused), and FeSEM's similarity
         * uses the one DP-SGD training of the round, from ref, instead of a training of its own */
        const int fresh = !warm && !s->known[cid] && kmax > 1 && cfg->cluster.method >= M_FESEM && (by_sim || !dpsgd);
        const int sim_once = by_sim && dpsgd;
        if (by_sim && !sim_once && ni > 0) {
            memcpy(loc, s->ref, (size_t)P * sizeof *loc);
            o.global = s->ref;
            st = fl_local_train(s->wk, &o, rng_stream((uint64_t)cfg->train.seed, (uint64_t)cid, (uint64_t)r, RNG_SHUFFLE), xi, yi,
                                ni, loc, &(double){0}, &(int64_t){0}, &(int64_t){0});
            if (st == FH_OK) k0 = similar_center(s, loc);
        }
        if (((cfg->cluster.method == M_IFCA && !warm) || (fresh && !by_sim)) && st == FH_OK) {
            /* the center with the lowest loss on the client's rows */
            double best = INFINITY;
            for (int32_t k = 0; st == FH_OK && k < kmax; k++) {
                metrics_t mt;
                st = client_model(cfg, s, cid, k, s->cur);
                if (st == FH_OK && ni > 0) st = model_evaluate(md, s->cur, xi, yi, ni, s->wk->ws, s->wk->ws_rows, &mt);
                if (st == FH_OK && ni > 0 && mt.loss < best) {
                    best = mt.loss;
                    k0 = k;
                }
            }
        }
        if (st == FH_OK && sim_once) memcpy(loc, s->ref, (size_t)P * sizeof *loc);
        else if (st == FH_OK) st = client_model(cfg, s, cid, k0, loc);
        double loss = 0;
        int64_t steps = 0, seen = 0;
        o.global = sim_once ? s->ref : s->centers + (int64_t)k0 * P;
        privacy_sgd dpo;
        if (s->pv.mode == PRIVACY_SAMPLE) { /* DP-SGD: the trained model, and all that follows from it, is private */
            privacy_sgd_opts(&s->pv, r, cid, &dpo);
            s->wk->dp = &dpo;
        }
        if (st == FH_OK && ni > 0)
            st = fl_local_train(s->wk, &o, rng_stream((uint64_t)cfg->train.seed, (uint64_t)cid, (uint64_t)r, RNG_SHUFFLE), xi, yi,
                                ni, loc, &loss, &steps, &seen);
        s->wk->dp = NULL;
        if (st != FH_OK) break;
        double norm, ubase = 0; /* ||model - start|| over all parameters, and over the shared layers (CFL) */
        const double unorm = update_norm(loc, o.global, P, s->base, &ubase);
        const int ok = ni > 0 && isfinite(loss) && fl_update_ok(loc, P, FX_MAX_ABS, &norm) &&
                       unorm <= cfg->fl.max_update_norm; /* [fl] max_update_norm */
        int32_t k1 = k0;
        if (ok && sim_once) k1 = similar_center(s, loc);
        else if (ok && cfg->cluster.method == M_FESEM && !warm) k1 = cl_nearest_center(loc, s->centers, K, P, s->base, NULL);
        /* [privacy] client: the stage may still reject it (counted as rejected, not accepted) */
        const int in = ok && (!s->kacc || secagg_dropped((uint64_t)cfg->train.seed, cfg->secagg.dropout, cid, r) ||
                              dp_slot_add(s, r, i, cid, k1, loc));
        s->lab[i] = k1 + 1 + (in ? 0 : REJ_FLAG);
        s->fit[i] = in && seen > 0 ? loss / (double)seen : 0; /* mean training loss per row */
        if (s->unorm) s->unorm[i] = in ? ubase : 0;
        if (!in) {
            tail[U_REJ] += 1;
            continue;
        }
        tail[U_LOSS] += (int64_t)llrint(loss * LOSS_SCALE);
        tail[U_ROWS] += seen;
        tail[U_CLIENTS] += 1;
        if (cfg->cluster.personalize == 1) st = io_state_write(s->heads, cid, loc + s->base);
    }
    return st;
}

/* Cluster k's new center: its hosts (the ranks holding its members) sum n_i/N_k * model_i in
 * fixed point on their own communicator — or run their own secure-aggregation round on it —
 * and the cluster's aggregator (its lowest rank) broadcasts the center. */
static fh_status cluster_aggregate_one(fl_loop *L, cl_state *s, int32_t r, int32_t k)
{
    const config_t *cfg = L->cfg;
    const comm_t *w = L->w;
    const int64_t P = s->P, mb = (L->m + w->size - 1) / w->size;
    const int32_t n = s->n;
    /* members in round order, the ranks hosting them (block i / mb), who drops out */
    int host = 0, root = -1, nh = 0, nm = 0;
    int64_t nk_alive = 0;
    for (int32_t i = 0; i < n; i++)
        if (s->okc[i] && s->na[i] == k) {
            const int h = (int)(i / mb);
            if (root < 0) root = h;
            if (i >= s->c0 && i < s->c1) host = 1;
            if (nm == 0 || (int)(s->mids[nm - 1] / mb) != h) s->mfirst[nh++] = nm; /* a new host */
            s->mids[nm++] = i; /* round index for now, client id below */
            if (!secagg_dropped((uint64_t)cfg->train.seed, cfg->secagg.dropout, s->ids[i], r)) nk_alive += s->ntr[i];
        }
    s->mfirst[nh] = nm;
    comm_t ck;
    fh_status st = comm_split(w, host ? 0 : -1, w->rank, &ck);
    int aborted = 0;
    /* [fl] aggregator (docs/robust.md#multi-center-fl): rob = the rule on the members' updates
     * u_i = model_i - c_k over the shared layers [0, base), on this cluster's hosts (the head
     * layers, FedPer, keep the weighted mean); nb = norm_bound: u_i clipped, then the mean */
    const int rob = s->rb.rule != AGGR_MEAN && robust_agg_slices(&s->rb);
    const int nb = s->rb.rule == AGGR_NORM_BOUND;
    const int64_t base = s->base, a0 = rob ? base : 0; /* the mean over [a0, P) */
    float *ckc = s->centers + (int64_t)k * P;
    if (st == FH_OK && host) {
        /* my members: those in block ck.rank of the host list */
        const int32_t m0 = s->mfirst[ck.rank], m1 = s->mfirst[ck.rank + 1];
        const double inv = 1.0 / (double)s->nk[k];
        memset(s->acc, 0, (size_t)P * sizeof *s->acc);
        if (s->sa.enabled) st = secagg_engine_begin(&s->sa, m1 - m0);
        if (st == FH_OK && rob) st = robust_agg_comm(&s->rb, &ck, 0);
        if (st == FH_OK && rob) st = robust_agg_begin(&s->rb, m1 - m0);
        for (int32_t j = m0; st == FH_OK && j < m1; j++) {
            const int32_t i = s->mids[j];
            if (secagg_dropped((uint64_t)cfg->train.seed, cfg->secagg.dropout, s->ids[i], r)) continue;
            int64_t *acc = s->sa.enabled ? secagg_engine_buffer(&s->sa, j - m0) : s->acc;
            const float *mi = s->models + (i - s->c0) * P;
            if (rob || nb) {
                double nn = 0;
                for (int64_t c = 0; c < base; c++) {
                    s->cur[c] = mi[c] - ckc[c];
                    nn += (double)s->cur[c] * (double)s->cur[c];
                }
                const double norm = sqrt(nn);
                if (rob) robust_agg_keep(&s->rb, s->cur, norm);
                if (nb && norm > s->rb.bound) { /* the member's model becomes c_k + clip(u_i) */
                    robust_clip(s->cur, base, s->rb.bound, norm);
                    for (int64_t c = 0; c < base; c++) s->cur[c] += ckc[c];
                    memcpy(s->cur + base, mi + base, (size_t)(P - base) * sizeof *s->cur);
                    mi = s->cur;
                }
            }
            if (P > a0) fx_accumulate(acc + a0, mi + a0, (double)s->ntr[i] * inv, P - a0);
        }
        for (int32_t j = 0; j < nm; j++) s->mids[j] = s->ids[s->mids[j]];
        if (rob) st = comm_agree(&ck, st); /* every host enters the rule's collectives, or none */
        s->sa.group = k;
        if (st == FH_OK && s->sa.enabled) {
            st = secagg_engine_round(&s->sa, &ck, r, s->mids, s->mfirst, nm, s->acc);
            aborted = s->sa.aborted;
            const double t[4] = {(double)s->sa.mask_bytes, s->sa.mask_s, (double)s->sa.raw_bytes, s->sa.raw_s};
            for (int q = 0; q < 4; q++) s->sat[q] += t[q];
        } else if (st == FH_OK && rob) { /* the rule over the shared layers, the mean over the head */
            st = robust_agg_run(&s->rb, &ck);
            if (st == FH_OK && P > a0) st = comm_allreduce_sum_i64(&ck, s->acc + a0, P - a0);
        } else if (st == FH_OK) {
            st = comm_allreduce_sum_i64(&ck, s->acc, P);
        }
        if (st == FH_OK) st = secagg_engine_record_aggregate(&s->sa, &ck, r, s->mids, nm, s->acc); /* test only */
        st = comm_agree(&ck, st);
        /* rescaled to the survivors' rows; kept when none survived or the round aborted */
        if (st == FH_OK && ck.rank == 0 && rob && s->rb.have) {
            for (int64_t c = 0; c < base; c++) ckc[c] += s->rb.out[c];
            if (P > a0) fx_decode(s->acc + a0, (double)s->nk[k] / (double)nk_alive, ckc + a0, P - a0);
        } else if (st == FH_OK && ck.rank == 0 && !rob && nk_alive > 0 && !aborted) {
            fx_decode(s->acc, (double)s->nk[k] / (double)nk_alive, ckc, P);
            if (nb) robust_noise_at(ckc, base, s->rb.noise, s->rb.seed, 1 + (uint64_t)k, r); /* weak DP, per center */
        }
        if (ck.rank == 0) s->sa_aborted += aborted;
    }
    comm_free(&ck);
    st = comm_agree(w, st);
    if (st == FH_OK) st = comm_bcast(w, s->centers + (int64_t)k * P, P * (int64_t)sizeof(float), root);
    return st;
}

/* Re-seeding from a client's model: not with [privacy] or [secagg] (a center would be one
 * client's model, and the clients' training losses that pick it would cross ranks in the clear). */
static int reseed_possible(const config_t *cfg, const cl_state *s)
{
    return cfg->cluster.reseed == 1 && !s->sa.enabled && s->pv.mode == 0;
}

/* A center that no client with an assignment uses any more (emptied, or merged into another)
 * restarts: reseed = on from the trained model of the round's worst-fit client (highest mean
 * training loss per row) of a cluster with at least 2 clients, which joins it (not with [privacy]
 * or [secagg]: the warning only); reseed = split with the largest cluster's center c as c + d and
 * c - d (no client data). One line on rank 0. */
static fh_status reseed_empty(fl_loop *L, cl_state *s, int32_t r)
{
    const config_t *cfg = L->cfg;
    const comm_t *w = L->w;
    const int32_t n = s->n, kmax = cfg->cluster.method == M_CFL ? (int32_t)s->active : s->K;
    const int can = reseed_possible(cfg, s);
    int64_t *size = s->size; /* clients with an assignment per cluster */
    memset(size, 0, (size_t)s->K * sizeof *size);
    for (int32_t c = 0; c < s->C; c++)
        if (s->known[c]) size[s->assign[c]]++;
    fh_status st = FH_OK;
    for (int32_t k = 0; st == FH_OK && k < kmax; k++) {
        if (size[k] > 0) {
            s->wasempty[k] = 0;
            continue;
        }
        int32_t big = -1, pick = -1;
        /* reseed = split: the largest cluster's center +- the same noise */
        for (int32_t q = 0; cfg->cluster.reseed == 2 && q < kmax; q++)
            if (size[q] >= 2 && (big < 0 || size[q] > size[big])) big = q;
        if (big >= 0) {
            rng_t g = rng_stream((uint64_t)cfg->train.seed, (uint64_t)k, (uint64_t)r, RNG_RESEED);
            float *ck = s->centers + (int64_t)k * s->P, *cb = s->centers + (int64_t)big * s->P;
            for (int64_t j = 0; j < s->P; j++) { /* c_big +- delta: its members split by side */
                const float d = (float)(0.01 * rng_normal(&g));
                ck[j] = cb[j] + d;
                cb[j] -= d;
            }
            if (w->rank == 0 && !s->wasempty[k])
                fprintf(stderr, "fedhpc run: round %d: cluster %d has no clients; re-seeded from cluster %d's center "
                        "(%lld clients) plus noise\n", r, k, big, (long long)size[big]);
            s->wasempty[k] = 1; /* empty until a client joins: re-seeded again next round, reported once */
            continue;
        }
        for (int32_t i = 0; can && i < n; i++)
            if (s->okc[i] && size[s->na[i]] >= 2 && (pick < 0 || s->fit[i] > s->fit[pick])) pick = i;
        if (pick < 0) {
            if (w->rank == 0 && !s->wasempty[k])
                fprintf(stderr, "fedhpc run: round %d: cluster %d has no clients%s\n", r, k,
                        can ? " (no client to re-seed it from this round)" : " ([cluster] reseed is off or not possible)");
            s->wasempty[k] = 1;
            continue;
        }
        int host = 0;
        while (dist_rows_first(n, w->size, host + 1) <= pick) host++;
        if (w->rank == host)
            memcpy(s->centers + (int64_t)k * s->P, s->models + (pick - s->c0) * s->P, (size_t)s->P * sizeof *s->centers);
        st = comm_bcast(w, s->centers + (int64_t)k * s->P, s->P * (int64_t)sizeof(float), host);
        if (w->rank == 0)
            fprintf(stderr, "fedhpc run: round %d: cluster %d has no clients; re-seeded from client %d (worst fit, mean "
                    "training loss %.4g, from cluster %d)\n", r, k, s->ids[pick], s->fit[pick], s->na[pick]);
        size[s->na[pick]]--;
        size[k]++;
        s->na[pick] = k;
        s->assign[s->ids[pick]] = k;
        s->wasempty[k] = 0;
    }
    return st;
}

/* After the local work: every rank learns every sampled client's new cluster (exact integers),
 * FeSEM/IFCA's first assignment after the warm-up, then each cluster aggregates its members. */
static fh_status cluster_aggregate(fl_loop *L, cl_state *s, int32_t r, int clustered)
{
    const config_t *cfg = L->cfg;
    const comm_t *w = L->w;
    const int32_t n = s->n, K = s->K;
    FH_TRY(comm_allreduce_sum_i64(w, s->lab, n + U_N));
    if (reseed_possible(cfg, s)) { /* the clients' training losses: only where re-seeding reads them */
        for (int32_t i = 0; i < n; i++) /* one non-zero term per entry: exact */
            if (i < s->c0 || i >= s->c1) s->fit[i] = 0;
        FH_TRY(comm_allreduce_sum_f64(w, s->fit, n));
    }
    if (s->unorm) { /* one non-zero term per entry: exact */
        for (int32_t i = 0; i < n; i++)
            if (i < s->c0 || i >= s->c1) s->unorm[i] = 0;
        FH_TRY(comm_allreduce_sum_f64(w, s->unorm, n));
        memcpy(s->old, s->centers, (size_t)K * (size_t)s->P * sizeof *s->old);
    }
    for (int32_t i = 0; i < n; i++) {
        s->okc[i] = s->lab[i] < REJ_FLAG;
        s->na[i] = (int32_t)((s->lab[i] % REJ_FLAG) - 1);
    }
    fh_status st = FH_OK;
    if (clustered && r == cfg->cluster.warmup) {
        st = initial_assignment(cfg, w, s, n, r, L->md, s->na);
        memcpy(s->ref, s->centers, (size_t)s->P * sizeof *s->ref); /* every client started from it */
    }
    FH_TRY(comm_agree(w, st));
    const int assigned = !clustered || r >= cfg->cluster.warmup;
    for (int32_t i = 0; i < n; i++) {
        s->assign[s->ids[i]] = s->na[i];
        if (s->okc[i] && assigned) s->known[s->ids[i]] = 1;
        if (s->okc[i] && cfg->cluster.personalize == 1) s->seen[s->ids[i]] = 1;
    }
    memset(s->nk, 0, (size_t)K * sizeof *s->nk);
    for (int32_t i = 0; i < n; i++)
        if (s->okc[i]) s->nk[s->na[i]] += s->ntr[i];
    s->sa_aborted = 0;
    memset(s->sat, 0, sizeof s->sat);
    if (s->kacc) st = cluster_aggregate_dp(L, s, r);
    for (int32_t k = 0; !s->kacc && st == FH_OK && k < K; k++)
        if (s->nk[k] > 0) st = cluster_aggregate_one(L, s, r, k); /* no members: the center is kept */
    if (!s->kacc && st == FH_OK && s->sa.enabled) st = comm_allreduce_sum_i64(w, &s->sa_aborted, 1);
    if (st == FH_OK && assigned && cfg->cluster.method >= M_FESEM && cfg->cluster.method != M_ORACLE) st = reseed_empty(L, s, r);
    return st;
}

static fh_status cluster_round(fl_loop *L, int32_t r, fl_round_stats *rs, int *stop, int *done)
{
    const config_t *cfg = L->cfg;
    const comm_t *w = L->w;
    cl_state *s = L->s;
    const int clustered = cfg->cluster.method == M_FESEM || cfg->cluster.method == M_IFCA;
    int32_t n = 0;
    fh_status st = fl_sample_clients((uint64_t)cfg->train.seed, r, s->C, L->m, s->ids, &n);
    if (st == FH_OK) st = io_data_client_ranges(L->data, s->ids, n, s->start, s->count);
    for (int32_t i = 0; st == FH_OK && i < n; i++) s->ntr[i] = s->count[i] - io_data_local_test_rows(L->meta, s->count[i]);
    s->n = n;
    s->c0 = dist_rows_first(n, w->size, w->rank);
    s->c1 = dist_rows_first(n, w->size, w->rank + 1);
    if (st == FH_OK)
        st = fl_read_rows(L->data, (int32_t)(s->c1 - s->c0), s->start + s->c0, s->ntr + s->c0, L->md->in, &s->x, &s->y, &s->xcap);
    FH_TRY(comm_agree(w, st));
    /* [privacy] account the round; stop cleanly before exceeding the budget */
    FH_TRY(comm_agree(w, privacy_run_begin(&s->pv, r, s->ids, s->ntr, n, done)));
    if (*done) return FH_OK;
    const int warm = clustered && r <= cfg->cluster.warmup;
    memset(s->lab, 0, ((size_t)n + U_N) * sizeof *s->lab);
    int64_t *tail = s->lab + n;
    tail[U_STOP] = fh_stop_requested();
    if (s->kacc) FH_TRY(comm_agree(w, fl_agg_begin(&s->agg, (int32_t)(s->c1 - s->c0))));
    FH_TRY(comm_agree(w, cluster_local(L, s, r, warm)));
    FH_TRY(cluster_aggregate(L, s, r, clustered));
    if (s->unorm) FH_TRY(cfl_split(cfg, w, s, r, &rs->notice));
    rs->clients = n;
    rs->epsilon = s->pv.mode ? s->pv.eps : NAN;
    rs->rejected = (int32_t)tail[U_REJ];
    rs->applied = (int32_t)tail[U_CLIENTS];
    rs->train_loss = tail[U_ROWS] ? (double)tail[U_LOSS] / LOSS_SCALE / (double)tail[U_ROWS] : NAN;
    rs->bytes_down = (int64_t)n * s->P * (int64_t)sizeof(float);
    rs->bytes_up = (int64_t)n * s->P * (int64_t)sizeof(int64_t);
    for (int32_t i = 0; i < n; i++) rs->dropped += secagg_dropped((uint64_t)cfg->train.seed, cfg->secagg.dropout, s->ids[i], r);
    rs->secagg_aborted = (int32_t)s->sa_aborted; /* clusters whose secagg round aborted */
    rs->mask_gbps = s->sa.enabled && s->sat[1] > 0 ? s->sat[0] / s->sat[1] / 1e9 : NAN;
    rs->chacha_gbps = s->sa.enabled && s->sat[3] > 0 ? s->sat[2] / s->sat[3] / 1e9 : NAN;
    *stop = tail[U_STOP] > 0;
    return FH_OK;
}

/* The final model: the center of the largest cluster (all centers are in checkpoints). */
static fh_status cluster_finish(fl_loop *L, fh_status st)
{
    cl_state *s = L->s;
    if (st == FH_OK && s) memcpy(L->params, s->centers + (int64_t)s->largest * s->P, (size_t)s->P * sizeof *L->params);
    return st;
}

const fl_strategy fl_strategy_cluster = {
    .name = "cluster",
    .unit = "round",
    .init = cluster_init,
    .round = cluster_round,
    .evaluate = cluster_evaluate,
    .finish = cluster_finish,
    .free = cluster_free,
};
