/* fedhpc_bench — the measurements of `make bench` (tests/bench/run_bench.sh runs them).
 *
 *   fedhpc_bench round CONFIG [k=v ...]      items 1, 2 (ranks): seconds a round of the real
 *                                            loop (fl_train) and the compute floor (the same
 *                                            cblas_sgemm calls, same shapes and count, alone);
 *                                            round_step: the same round vs the model's own
 *                                            step (model_sgd_step) on batches of the same sizes
 *   fedhpc_bench local CONFIG B [k=v ...]    item 2: GFLOP/s of fl_local_train on one client
 *                                            vs a bare loop of its sgemm calls
 *   fedhpc_bench agg P CLIENTS REPS          item 3: fx_accumulate + comm_allreduce_sum_i64
 *                                            vs a triad + memcpy loop of the same bytes
 *   fedhpc_bench ckpt DIR P REPS             item 6: checkpoint write/read vs plain write/read
 *   fedhpc_bench robust P CLIENTS REPS       item 7: each [fl] aggregator's aggregation (the
 *                                            robust stage: keep/clip, all-to-all, rule,
 *                                            all-gather) vs the plain FedAvg aggregation
 *                                            (fx_accumulate + integer all-reduce + decode)
 *   fedhpc_bench gen-clients SRC.h5 N ROWS SEED OUT.h5 [TEST_ROWS]
 *                                            item 4: N clients of ROWS rows each, drawn with
 *                                            replacement from SRC's training rows (io layer);
 *                                            the test split copied (its first TEST_ROWS rows)
 *   fedhpc_bench blas                        the OpenBLAS kernel set fedhpc runs with (after
 *                                            model_blas_setup), exported for the reference
 *   fedhpc_bench export CONFIG OUTDIR [k=v]  item 5: the data set, partition and each
 *                                            round's sampled clients as raw little-endian
 *                                            arrays for the PyTorch reference (mlp, cnn,
 *                                            attention: padded item rows, L/items/d/heads)
 * Every command prints CSV rows "name,key=value;...,value1,value2,ratio" on rank 0.
 * Library calls only (no MPI or HDF5 here): linked against libfedhpc.a.
 */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/model.h"
#include "fedhpc/ckpt.h"
#include "fedhpc/config.h"
#include "fedhpc/fl.h"
#include "fedhpc/gnn.h"
#include "fedhpc/sample.h"
#include "fedhpc/io.h"
#include "fedhpc/rng.h"
#include "fedhpc/robust.h"

#include <cblas.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static comm_t W;

static int die(const char *what)
{
    if (W.rank == 0) fprintf(stderr, "fedhpc_bench: %s: %s\n", what, fh_error_msg());
    comm_finalize();
    exit(1);
}
#define CK(e) do { if ((e) != FH_OK) die(#e); } while (0)

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void load_cfg(config_t *c, const char *path, int argc, char **argv)
{
    config_defaults(c);
    CK(config_load(c, path));
    for (int i = 0; i < argc; i++) CK(config_override(c, argv[i]));
    CK(config_validate(c, path));
}

/* ---- the sgemm calls of one minibatch (mirrors src/model/model.c and cnn.c) ------------ */
typedef struct {
    float *a, *b, *c; /* scratch large enough for any call */
} gemm_buf;

typedef void (*gemm_fn)(gemm_buf *g, int ta, int tb, int m, int n, int k, double *flops);

static void gemm_run(gemm_buf *g, int ta, int tb, int m, int n, int k, double *flops)
{
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m,
                n, k, 1.0f, g->a, ta ? m : k, g->b, tb ? k : n, 0.0f, g->c, n);
    *flops += 2.0 * m * n * k;
}

/* Largest operand (floats) of any call of a batch of up to nb rows. */
static size_t batch_max_operand(const model_t *m, int nb)
{
    size_t mx = (size_t)m->nparams;
    if (m->type == MODEL_CNN) {
        const size_t ch = nb < 16 ? (size_t)nb : 16, S = (size_t)m->cnn_side;
        const size_t c1 = ch * S * S * (size_t)m->fan_in[0], c2 = ch * S * S / 4 * (size_t)m->fan_in[1];
        mx = c1 > mx ? c1 : mx;
        mx = c2 > mx ? c2 : mx;
        const size_t z = ch * S * S * (size_t)m->fan_out[0];
        mx = z > mx ? z : mx;
    }
    for (int l = 0; l < m->nlayers; l++) {
        const size_t a = (size_t)nb * (size_t)(m->fan_in[l] > m->fan_out[l] ? m->fan_in[l] : m->fan_out[l]);
        mx = a > mx ? a : mx;
    }
    return mx;
}

/* The calls model_loss_grad makes for nb rows. */
static void batch_calls(const model_t *m, int nb, gemm_buf *g, gemm_fn f, double *flops)
{
    if (m->type != MODEL_CNN) {
        for (int l = 0; l < m->nlayers; l++) f(g, 0, 0, nb, m->fan_out[l], m->fan_in[l], flops);
        for (int l = m->nlayers - 1; l >= 0; l--) {
            f(g, 1, 0, m->fan_in[l], m->fan_out[l], nb, flops);
            if (l > 0) f(g, 0, 1, nb, m->fan_in[l], m->fan_out[l], flops);
        }
        return;
    }
    const int S = m->cnn_side, S2 = S / 2, C1 = m->fan_out[0], C2 = m->fan_out[1];
    const int F = m->fan_out[2], K = m->classes, n2 = m->fan_in[2];
    for (int s0 = 0; s0 < nb; s0 += 16) {
        const int ns = nb - s0 < 16 ? nb - s0 : 16;
        f(g, 0, 0, ns * S * S, C1, m->fan_in[0], flops);
        f(g, 0, 0, ns * S2 * S2, C2, m->fan_in[1], flops);
    }
    f(g, 0, 0, nb, F, n2, flops);
    f(g, 0, 0, nb, K, F, flops);
    f(g, 1, 0, F, K, nb, flops);
    f(g, 0, 1, nb, F, K, flops);
    f(g, 1, 0, n2, F, nb, flops);
    f(g, 0, 1, nb, n2, F, flops);
    for (int s0 = 0; s0 < nb; s0 += 16) {
        const int ns = nb - s0 < 16 ? nb - s0 : 16;
        f(g, 1, 0, m->fan_in[1], C2, ns * S2 * S2, flops);
        f(g, 0, 1, ns * S2 * S2, m->fan_in[1], C2, flops);
        f(g, 1, 0, m->fan_in[0], C1, ns * S * S, flops);
    }
}

/* The calls of E epochs of minibatches of B over n rows (as fl_local_train). */
static void client_calls(const model_t *m, int64_t n, int32_t B, int32_t E, int32_t ws_rows,
                         gemm_buf *g, gemm_fn f, double *flops)
{
    const int64_t b = B > 0 && B < n ? B : n;
    for (int32_t e = 0; e < E; e++)
        for (int64_t b0 = 0; b0 < n; b0 += b) {
            int64_t nb = n - b0 < b ? n - b0 : b;
            for (int64_t r = 0; r < nb; r += ws_rows)
                batch_calls(m, (int)(nb - r < ws_rows ? nb - r : ws_rows), g, f, flops);
        }
}

static void gemm_alloc(gemm_buf *g, size_t n)
{
    g->a = calloc(n, sizeof(float));
    g->b = calloc(n, sizeof(float));
    g->c = calloc(n, sizeof(float));
    if (!g->a || !g->b || !g->c) {
        fprintf(stderr, "fedhpc_bench: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) g->a[i] = g->b[i] = 1e-3f * (float)(i % 97);
}

/* ---- round: real rounds vs the floor ------------------------------------------------------ */
typedef struct {
    double *wall, *floor;
    int n, cap;
    double acc;
    const config_t *cfg;
    io_data *data;
    const io_data_meta *meta;
    const fl_result *res;
    gemm_buf g;
    int32_t *ids, *first;
    int64_t *start, *count;
    double *step;         /* per round: the step floor                                */
    model_ws *ws;         /* step floor: the model's own step on synthetic batches     */
    float *sp, *sg, *sx;  /* [P] parameters, [P] gradient scratch, [B, in] batch       */
    int32_t *sy;
} walls;

/* The step floor of round r: model_sgd_step (what fl_local_train calls for plain minibatch
 * SGD: fused kernels, oneDNN convolutions) on synthetic batches of the same sizes, alone. */
static fh_status round_step_floor(walls *w, double *out)
{
    const config_t *cfg = w->cfg;
    const model_t *m = &w->res->model;
    const int32_t B = cfg->train.batch_size;
    if (!w->ws) {
        w->ws = model_ws_create(m, B);
        w->sp = malloc((size_t)m->nparams * sizeof *w->sp);
        w->sg = malloc((size_t)m->nparams * sizeof *w->sg);
        w->sx = malloc((size_t)B * (size_t)m->in * sizeof *w->sx);
        w->sy = malloc((size_t)B * sizeof *w->sy);
        if (!w->ws || !w->sp || !w->sg || !w->sx || !w->sy) return fh_error_set(FH_ENOMEM, "out of memory");
        for (int64_t i = 0; i < (int64_t)B * m->in; i++) w->sx[i] = (float)((i * 37) % 101) / 101.0f;
        for (int32_t i = 0; i < B; i++) w->sy[i] = i % m->classes;
    }
    memcpy(w->sp, w->res->params, (size_t)m->nparams * sizeof *w->sp);
    FH_TRY(comm_barrier(&W));
    const double t0 = fh_wtime();
    for (int32_t i = w->first[W.rank]; i < w->first[W.rank + 1]; i++)
        for (int32_t e = 0; e < cfg->train.local_epochs; e++)
            for (int64_t b0 = 0; b0 < w->count[i]; b0 += B) {
                const int32_t nb = (int32_t)(w->count[i] - b0 < B ? w->count[i] - b0 : B);
                model_sgd_step(m, w->sp, w->sx, w->sy, nb, (float)cfg->train.lr, w->sg, w->ws);
            }
    double t = fh_wtime() - t0;
    FH_TRY(comm_allreduce_max_f64(&W, &t, 1));
    *out = t;
    return FH_OK;
}

/* The floor of round r: this rank's clients' sgemm calls alone; max over ranks. */
static fh_status round_floor(walls *w, int32_t r, double *out)
{
    const config_t *cfg = w->cfg;
    const model_t *m = &w->res->model;
    const int32_t C = w->meta->clients, mm = cfg->train.clients_per_round < C ? cfg->train.clients_per_round : C;
    const int32_t wr = fl_worker_rows(cfg);
    if (!w->g.a) {
        const int32_t bmax = cfg->train.batch_size > 0 && cfg->train.batch_size < wr ? cfg->train.batch_size : wr;
        gemm_alloc(&w->g, batch_max_operand(m, bmax));
        w->ids = malloc((size_t)mm * sizeof *w->ids);
        w->first = malloc((size_t)(W.size + 1) * sizeof *w->first);
        w->start = malloc((size_t)mm * sizeof *w->start);
        w->count = malloc((size_t)mm * sizeof *w->count);
        if (!w->ids || !w->first || !w->start || !w->count) return fh_error_set(FH_ENOMEM, "out of memory");
    }
    int32_t n;
    FH_TRY(fl_sample_clients((uint64_t)cfg->train.seed, r, C, mm, w->ids, &n));
    FH_TRY(io_data_client_ranges(w->data, w->ids, n, w->start, w->count));
    fl_assign_ranks(w->count, n, W.size, w->first);
    double fl = 0;
    FH_TRY(comm_barrier(&W));
    const double t0 = fh_wtime();
    for (int32_t i = w->first[W.rank]; i < w->first[W.rank + 1]; i++)
        client_calls(m, w->count[i], cfg->train.batch_size, cfg->train.local_epochs, wr, &w->g, gemm_run, &fl);
    double t = fh_wtime() - t0;
    FH_TRY(comm_allreduce_max_f64(&W, &t, 1)); /* the slowest rank bounds the round */
    *out = t;
    return FH_OK;
}

/* After each round (inside fl_train, so the two are measured side by side): its floor. */
static fh_status on_round(const fl_round_stats *s, void *user)
{
    walls *w = user;
    if (s->evaluated) {
        w->acc = s->test.accuracy;
        return FH_OK;
    }
    if (w->n >= w->cap) return FH_OK;
    w->wall[w->n] = s->wall_s;
    FH_TRY(round_floor(w, s->round, &w->floor[w->n]));
    if (w->step && w->cfg->train.batch_size > 0) FH_TRY(round_step_floor(w, &w->step[w->n]));
    w->n++;
    return FH_OK;
}

static int cmd_round(int argc, char **argv)
{
    if (argc < 1) return die("usage: round CONFIG [k=v ...]");
    config_t cfg;
    load_cfg(&cfg, argv[0], argc - 1, argv + 1);
    cfg.train.eval_every = 1 << 30; /* evaluate after the last round only: rounds 1..R-1 are timed */
    cfg.output.progress = 2;
    io_data *data;
    io_data_meta meta;
    CK(io_data_open(cfg.data.file, &W, &data, &meta));
    walls wl;
    memset(&wl, 0, sizeof wl);
    wl.wall = calloc((size_t)cfg.train.rounds, sizeof(double));
    wl.floor = calloc((size_t)cfg.train.rounds, sizeof(double));
    wl.step = calloc((size_t)cfg.train.rounds, sizeof(double));
    wl.cap = cfg.train.rounds;
    wl.acc = NAN;
    wl.cfg = &cfg;
    wl.data = data;
    wl.meta = &meta;
    fl_result res;
    wl.res = &res;
    CK(fl_train(&cfg, &W, data, &meta, on_round, &wl, &res));
    if (W.rank == 0 && wl.n > 0) {
        double mw = median(wl.wall, wl.n), mf = median(wl.floor, wl.n);
        printf("round,model=%s;ranks=%d;rounds=%d;B=%d,%.6f,%.6f,%.3f\n", model_type_name(res.model.type),
               W.size, wl.n, cfg.train.batch_size, mw, mf, mw / mf);
        if (cfg.train.batch_size > 0) {
            const double ms = median(wl.step, wl.n);
            printf("round_step,model=%s;ranks=%d;rounds=%d;B=%d,%.6f,%.6f,%.3f\n", model_type_name(res.model.type),
                   W.size, wl.n, cfg.train.batch_size, mw, ms, mw / ms);
        }
        printf("accuracy,model=%s;ranks=%d;rounds=%d,%.4f,,\n", model_type_name(res.model.type), W.size,
               cfg.train.rounds, wl.acc);
    }
    model_ws_free(wl.ws);
    free(wl.sp); free(wl.sg); free(wl.sx); free(wl.sy); free(wl.step);
    io_data_close(data);
    fl_result_free(&res);
    return 0;
}

/* ---- local: fl_local_train vs a bare sgemm loop --------------------------------------------- */
static int cmd_local(int argc, char **argv)
{
    if (argc < 2) return die("usage: local CONFIG B [k=v ...]");
    config_t cfg;
    load_cfg(&cfg, argv[0], argc - 2, argv + 2);
    cfg.train.batch_size = atoi(argv[1]);
    io_data *data;
    io_data_meta meta;
    CK(io_data_open(cfg.data.file, &W, &data, &meta));
    fl_result res;
    CK(fl_model_setup(&cfg, data, &meta, &res));
    const model_t *m = &res.model;
    /* the median-sized client of round 1 */
    const int32_t C = meta.clients, mm = cfg.train.clients_per_round < C ? cfg.train.clients_per_round : C;
    int32_t *ids = malloc((size_t)mm * sizeof *ids), n;
    int64_t *start = malloc((size_t)mm * sizeof *start), *count = malloc((size_t)mm * sizeof *count);
    CK(fl_sample_clients((uint64_t)cfg.train.seed, 1, C, mm, ids, &n));
    CK(io_data_client_ranges(data, ids, n, start, count));
    int32_t best = 0;
    for (int32_t i = 0; i < n; i++) if (count[i] > count[best]) best = i;
    int64_t rows = count[best] < 2000 ? count[best] : 2000;
    float *x = malloc((size_t)rows * (size_t)m->in * sizeof *x);
    int32_t *y = malloc((size_t)rows * sizeof *y);
    CK(io_data_read_ranges(data, "train", 1, start + best, &rows, x, y));
    const int32_t wr = fl_worker_rows(&cfg);
    fl_worker wk;
    CK(fl_worker_init(&wk, m, wr));
    float *p = malloc((size_t)m->nparams * sizeof *p);
    fl_local_opts o;
    memset(&o, 0, sizeof o);
    o.global = res.params;
    o.lr = cfg.train.lr;
    o.epochs = 1;
    o.batch = cfg.train.batch_size;
    gemm_buf g;
    gemm_alloc(&g, batch_max_operand(m, cfg.train.batch_size < wr ? cfg.train.batch_size : wr));
    const int reps = 5;
    double tl[5], tg[5], flops = 0;
    for (int k = 0; k < reps; k++) {
        memcpy(p, res.params, (size_t)m->nparams * sizeof *p);
        double loss; int64_t steps, seen;
        double t0 = fh_wtime();
        CK(fl_local_train(&wk, &o, rng_stream(1, 1, 1, RNG_SHUFFLE), x, y, rows, p, &loss, &steps, &seen));
        tl[k] = fh_wtime() - t0;
        flops = 0;
        t0 = fh_wtime();
        client_calls(m, rows, cfg.train.batch_size, 1, wr, &g, gemm_run, &flops);
        tg[k] = fh_wtime() - t0;
    }
    if (W.rank == 0) {
        double ml = median(tl, reps), mg = median(tg, reps);
        printf("local,model=%s;B=%d;rows=%lld,%.3f,%.3f,%.3f\n", model_type_name(m->type),
               cfg.train.batch_size, (long long)rows, flops / ml / 1e9, flops / mg / 1e9, mg / ml);
    }
    fl_worker_free(&wk);
    io_data_close(data);
    fl_result_free(&res);
    return 0;
}

/* ---- agg: the round's reduction vs triad + memcpy of the same bytes -------------------------- */
static int cmd_agg(int argc, char **argv)
{
    if (argc < 3) return die("usage: agg P CLIENTS REPS");
    const int64_t P = atoll(argv[0]);
    const int clients = atoi(argv[1]), reps = atoi(argv[2]) < 1 ? 1 : atoi(argv[2]);
    const int c0 = (int)((int64_t)clients * W.rank / W.size), c1 = (int)((int64_t)clients * (W.rank + 1) / W.size);
    float *v = malloc((size_t)P * sizeof *v);
    int64_t *acc = malloc((size_t)P * sizeof *acc);
    double *accd = malloc((size_t)P * sizeof *accd);
    int64_t *cp = malloc((size_t)P * sizeof *cp);
    if (!v || !acc || !accd || !cp) return die("out of memory");
    rng_t r = rng_stream(1, 0, 0, RNG_INIT);
    for (int64_t j = 0; j < P; j++) v[j] = (float)(1e-3 * (rng_uniform(&r) - 0.5));
    memset(cp, 0, (size_t)P * sizeof *cp);
    double *ta = calloc((size_t)reps, sizeof *ta), *tb = calloc((size_t)reps, sizeof *tb);
    for (int k = 0; k < reps; k++) {
        CK(comm_barrier(&W));
        double t0 = fh_wtime();
        memset(acc, 0, (size_t)P * sizeof *acc);
        for (int c = c0; c < c1; c++) fx_accumulate(acc, v, 1.0 / clients, P);
        CK(comm_allreduce_sum_i64(&W, acc, P));
        ta[k] = fh_wtime() - t0;
        CK(comm_allreduce_max_f64(&W, &ta[k], 1));
        CK(comm_barrier(&W));
        t0 = fh_wtime();
        memset(accd, 0, (size_t)P * sizeof *accd);
        const double wgt = 1.0 / clients;
        for (int c = c0; c < c1; c++)
            for (int64_t j = 0; j < P; j++) accd[j] += wgt * v[j]; /* triad: same bytes */
        memcpy(cp, accd, (size_t)P * sizeof *cp);                 /* the buffer moved once */
        tb[k] = fh_wtime() - t0;
        CK(comm_allreduce_max_f64(&W, &tb[k], 1));
    }
    if (W.rank == 0) {
        /* bytes a rank touches: per client 4P read + 8P read + 8P written, plus 16P copied */
        const double bytes = ((double)(c1 - c0) * 20.0 + 16.0) * (double)P;
        const double ma = median(ta, reps), mb = median(tb, reps);
        printf("agg,params=%lld;ranks=%d;clients=%d,%.3f,%.3f,%.3f\n", (long long)P, W.size, clients,
               bytes / ma / 1e9, bytes / mb / 1e9, mb / ma);
    }
    (void)accd[0];
    return 0;
}

/* ---- robust: each aggregator vs the plain FedAvg aggregation, side by side ---------------------- */
/* Timed as the engine spends it after local training: mean = fx_accumulate of every local update,
 * the integer all-reduce and the decode; norm_bound adds the clip (the reject stage has the norm)
 * and, with noise, one Gaussian a parameter; krum, multikrum, median, trimmed_mean = keep every
 * accepted update, all-to-all, the rule on the slice, all-gather. The updates' L2 norms (the
 * reject stage computes them for every aggregator) are not timed. */
static int cmd_robust(int argc, char **argv)
{
    if (argc < 3) return die("usage: robust P CLIENTS REPS");
    const int64_t P = atoll(argv[0]);
    const int clients = atoi(argv[1]), reps = atoi(argv[2]) < 1 ? 1 : atoi(argv[2]);
    /* the clients in contiguous blocks over the ranks, as the FedAvg strategy places them */
    const int c0 = (int)((int64_t)clients * W.rank / W.size), c1 = (int)((int64_t)clients * (W.rank + 1) / W.size);
    const int nloc = c1 - c0;
    float *U = malloc((size_t)(nloc ? nloc : 1) * (size_t)P * sizeof *U), *u = malloc((size_t)P * sizeof *u);
    float *dec = malloc((size_t)P * sizeof *dec);
    int64_t *acc = malloc((size_t)P * sizeof *acc);
    double *norm = calloc((size_t)(nloc ? nloc : 1), sizeof *norm);
    if (!U || !u || !dec || !acc || !norm) return die("out of memory");
    for (int c = c0; c < c1; c++) { /* client c's update: N(0, 1e-3^2) from its own stream */
        rng_t r = rng_stream(1, (uint64_t)c, 0, RNG_INIT);
        float *x = U + (int64_t)(c - c0) * P;
        for (int64_t j = 0; j < P; j++) x[j] = (float)(1e-3 * rng_normal(&r));
        for (int64_t j = 0; j < P; j++) norm[c - c0] += (double)x[j] * x[j];
        norm[c - c0] = sqrt(norm[c - c0]);
    }
    /* variant v: its [fl] aggregator and norm_bound_noise */
    static const char *names[] = {"mean", "krum", "multikrum", "median", "trimmed_mean", "norm_bound", "norm_bound_noise"};
    static const int rule[] = {AGGR_MEAN, AGGR_KRUM, AGGR_MULTIKRUM, AGGR_MEDIAN, AGGR_TRIMMED_MEAN, AGGR_NORM_BOUND,
                               AGGR_NORM_BOUND};
    enum { NV = 7 };
    robust_agg ra[NV];
    config_t cfg;
    config_defaults(&cfg);
    cfg.fl.byzantine_f = clients >= 7 ? 2 : 0;
    cfg.fl.trim_fraction = 0.2;
    cfg.fl.norm_bound = 0.5e-3 * sqrt((double)P); /* about half the update norms: every update clipped */
    const double noise = 1e-4;
    for (int v = 1; v < NV; v++) {
        cfg.fl.aggregator = rule[v];
        CK(comm_agree(&W, robust_agg_init(&ra[v], &cfg, clients, P, &W)));
    }
    double *t = calloc((size_t)NV * (size_t)reps, sizeof *t);
    if (!t) return die("out of memory");
    for (int rep = 0; rep < reps; rep++)
        for (int v = 0; v < NV; v++) {
            double tv = 0;
            CK(comm_barrier(&W));
            if (rule[v] == AGGR_MEAN || rule[v] == AGGR_NORM_BOUND) { /* the fixed-point path */
                double t0 = fh_wtime();
                memset(acc, 0, (size_t)P * sizeof *acc);
                tv += fh_wtime() - t0;
                for (int c = 0; c < nloc; c++) {
                    memcpy(u, U + (int64_t)c * P, (size_t)P * sizeof *u); /* the engine clips its own copy */
                    t0 = fh_wtime();
                    if (rule[v] == AGGR_NORM_BOUND) robust_clip(u, P, cfg.fl.norm_bound, norm[c]);
                    fx_accumulate(acc, u, 1.0 / clients, P);
                    tv += fh_wtime() - t0;
                }
                t0 = fh_wtime();
                CK(comm_allreduce_sum_i64(&W, acc, P));
                fx_decode(acc, 1.0, dec, P);
                if (v == NV - 1) robust_noise(dec, P, noise, 1, rep);
                tv += fh_wtime() - t0;
            } else {
                const double t0 = fh_wtime();
                CK(robust_agg_begin(&ra[v], nloc));
                for (int c = 0; c < nloc; c++) robust_agg_keep(&ra[v], U + (int64_t)c * P, norm[c]);
                CK(robust_agg_run(&ra[v], &W));
                tv = fh_wtime() - t0;
            }
            CK(comm_allreduce_max_f64(&W, &tv, 1)); /* the slowest rank's time */
            t[v * reps + rep] = tv;
        }
    double med[NV];
    for (int v = 0; v < NV; v++) med[v] = median(t + v * reps, reps);
    if (W.rank == 0)
        for (int v = 1; v < NV; v++)
            printf("robust,params=%lld;ranks=%d;clients=%d;aggregator=%s,%.6f,%.6f,%.3f\n", (long long)P, W.size, clients,
                   names[v], med[0], med[v], med[v] / med[0]);
    for (int v = 1; v < NV; v++) robust_agg_free(&ra[v]);
    free(U); free(u); free(dec); free(acc); free(norm); free(t);
    return 0;
}

/* ---- ckpt: checkpoint write/read vs plain sequential write/read ------------------------------ */
static int cmd_ckpt(int argc, char **argv)
{
    if (argc < 3) return die("usage: ckpt DIR P REPS");
    const char *dir = argv[0];
    const int64_t P = atoll(argv[1]);
    const int reps = atoi(argv[2]) < 1 ? 1 : atoi(argv[2]);
    float *v = malloc((size_t)P * sizeof *v), *back = malloc((size_t)P * sizeof *back);
    if (!v || !back) return die("out of memory");
    for (int64_t j = 0; j < P; j++) v[j] = (float)j * 1e-6f;
    double *tw = calloc((size_t)reps, sizeof *tw), *tr = calloc((size_t)reps, sizeof *tr),
           *pw = calloc((size_t)reps, sizeof *pw), *pr = calloc((size_t)reps, sizeof *pr);
    char plain[4096];
    snprintf(plain, sizeof plain, "%s/plain.bin", dir);
    mkdir(dir, 0777);
    for (int k = 0; k < reps; k++) {
        ckpt *h;
        CK(comm_barrier(&W));
        double t0 = fh_wtime();
        CK(ckpt_create(dir, k + 1, 42, &W, &h));
        CK(ckpt_put_array(h, "params", CKPT_F32, v, P));
        CK(ckpt_commit(h, 2));
        tw[k] = fh_wtime() - t0;
        t0 = fh_wtime();
        int64_t round;
        CK(ckpt_open(dir, 42, &W, &h, &round));
        if (!h) return die("no checkpoint written");
        CK(ckpt_get_array(h, "params", CKPT_F32, back, P));
        ckpt_close(h);
        tr[k] = fh_wtime() - t0;
        if (memcmp(back, v, (size_t)P * sizeof *v) != 0) return die("checkpoint read back differs");
        if (W.rank == 0) { /* plain: write + fsync + rename, then read */
            char tmp[4200];
            snprintf(tmp, sizeof tmp, "%s.tmp", plain);
            t0 = fh_wtime();
            FILE *f = fopen(tmp, "wb");
            if (!f || fwrite(v, sizeof *v, (size_t)P, f) != (size_t)P || fflush(f) || fsync(fileno(f)))
                return die("plain write");
            fclose(f);
            rename(tmp, plain);
            pw[k] = fh_wtime() - t0;
            t0 = fh_wtime();
            f = fopen(plain, "rb");
            if (!f || fread(back, sizeof *v, (size_t)P, f) != (size_t)P) return die("plain read");
            fclose(f);
            pr[k] = fh_wtime() - t0;
        }
    }
    if (W.rank == 0) {
        const double mb = (double)P * 4 / 1e6;
        const double a = median(tw, reps), b = median(pw, reps), c = median(tr, reps), d = median(pr, reps);
        printf("ckpt_write,params=%lld;MB=%.1f,%.1f,%.1f,%.3f\n", (long long)P, mb, mb / a, mb / b, b / a);
        printf("ckpt_read,params=%lld;MB=%.1f,%.1f,%.1f,%.3f\n", (long long)P, mb, mb / c, mb / d, d / c);
        unlink(plain);
    }
    return 0;
}

/* ---- gen-clients: N clients of lending_club rows re-sampled -------------------------------- */
static int cmd_gen(int argc, char **argv)
{
    if (argc < 5) return die("usage: gen-clients SRC.h5 N ROWS SEED OUT.h5 [TEST_ROWS]");
    const int32_t N = atoi(argv[1]), R = atoi(argv[2]);
    const uint64_t seed = (uint64_t)atoll(argv[3]);
    if (N < 1 || R < 1) return die("N and ROWS must be >= 1");
    io_data *src;
    io_data_meta sm;
    CK(io_data_open(argv[0], &W, &src, &sm));
    float *sx = malloc((size_t)sm.train_rows * sm.features * sizeof *sx);
    int32_t *sy = malloc((size_t)sm.train_rows * sizeof *sy);
    int64_t s0 = 0;
    CK(io_data_read_ranges(src, "train", 1, &s0, &sm.train_rows, sx, sy));
    if (argc > 5 && atoll(argv[5]) >= 0 && atoll(argv[5]) < sm.test_rows) sm.test_rows = atoll(argv[5]);
    data_set ds;
    memset(&ds, 0, sizeof ds);
    snprintf(ds.name, sizeof ds.name, "%s", sm.dataset);
    ds.nclasses = sm.classes;
    char names[64][64];
    char *np[64];
    if (sm.classes > 64) return die("too many classes");
    CK(io_data_class_names(src, names));
    for (int k = 0; k < sm.classes; k++) np[k] = names[k];
    ds.class_name = np;
    const int64_t n = (int64_t)N * R;
    ds.train.n = n;
    ds.train.d = sm.features;
    ds.train.x = malloc((size_t)n * sm.features * sizeof(float));
    ds.train.y = malloc((size_t)n * sizeof(int32_t));
    ds.test.n = sm.test_rows;
    ds.test.d = sm.features;
    ds.test.x = malloc((size_t)(sm.test_rows ? sm.test_rows : 1) * sm.features * sizeof(float));
    ds.test.y = malloc((size_t)(sm.test_rows ? sm.test_rows : 1) * sizeof(int32_t));
    int64_t *perm = malloc((size_t)n * sizeof *perm), *off = malloc((size_t)(N + 1) * sizeof *off);
    if (!ds.train.x || !ds.train.y || !perm || !off || !ds.test.x) return die("out of memory");
    if (sm.test_rows) CK(io_data_read_ranges(src, "test", 1, &s0, &sm.test_rows, ds.test.x, ds.test.y));
    rng_t r = rng_stream(seed, 0, 0, RNG_PARTITION);
    for (int64_t i = 0; i < n; i++) {
        const int64_t k = (int64_t)rng_below(&r, (uint64_t)sm.train_rows);
        memcpy(ds.train.x + i * sm.features, sx + k * sm.features, (size_t)sm.features * sizeof *sx);
        ds.train.y[i] = sy[k];
        perm[i] = i;
    }
    for (int32_t c = 0; c <= N; c++) off[c] = (int64_t)c * R;
    io_data_meta om = sm;
    snprintf(om.partition, sizeof om.partition, "resampled");
    om.clients = N;
    om.train_rows = n;
    om.seed = (int64_t)seed;
    om.has_client_names = 0;
    io_data_close(src);
    CK(io_data_write(argv[4], &ds, &om, perm, off, NULL));
    if (W.rank == 0) printf("gen-clients,clients=%d;rows=%d,%lld,,\n", N, R, (long long)n);
    return 0;
}

/* ---- export: raw arrays for the PyTorch reference ------------------------------------------ */
static void write_raw(const char *dir, const char *name, const void *p, size_t bytes)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, bytes, f) != bytes || fclose(f)) {
        fprintf(stderr, "fedhpc_bench: cannot write %s\n", path);
        exit(1);
    }
}

static int cmd_export(int argc, char **argv)
{
    if (argc < 2) return die("usage: export CONFIG OUTDIR [k=v ...]");
    config_t cfg;
    load_cfg(&cfg, argv[0], argc - 2, argv + 2);
    io_data *data;
    io_data_meta meta;
    CK(io_data_open(cfg.data.file, &W, &data, &meta));
    const char *dir = argv[1];
    mkdir(dir, 0777);
    const int64_t n = meta.train_rows, t = meta.test_rows, d = meta.features;
    float *x = malloc((size_t)(n > t ? n : t) * d * sizeof *x);
    int32_t *y = malloc((size_t)(n > t ? n : t) * sizeof *y);
    int64_t s0 = 0;
    CK(io_data_read_ranges(data, "train", 1, &s0, (int64_t *)&n, x, y));
    write_raw(dir, "train_x.f32", x, (size_t)n * d * 4);
    write_raw(dir, "train_y.i32", y, (size_t)n * 4);
    CK(io_data_read_ranges(data, "test", 1, &s0, (int64_t *)&t, x, y));
    write_raw(dir, "test_x.f32", x, (size_t)t * d * 4);
    write_raw(dir, "test_y.i32", y, (size_t)t * 4);
    const int32_t C = meta.clients, mm = cfg.train.clients_per_round < C ? cfg.train.clients_per_round : C;
    int32_t *all = malloc((size_t)C * sizeof *all), *ids = malloc((size_t)cfg.train.rounds * mm * sizeof *ids);
    int64_t *start = malloc((size_t)C * sizeof *start), *count = malloc((size_t)C * sizeof *count),
            *off = malloc((size_t)(C + 1) * sizeof *off);
    for (int32_t c = 0; c < C; c++) all[c] = c;
    CK(io_data_client_ranges(data, all, C, start, count));
    for (int32_t c = 0; c < C; c++) off[c] = start[c];
    off[C] = n;
    write_raw(dir, "client_offsets.i64", off, (size_t)(C + 1) * 8);
    for (int32_t r = 1; r <= cfg.train.rounds; r++) {
        int32_t k;
        CK(fl_sample_clients((uint64_t)cfg.train.seed, r, C, mm, ids + (size_t)(r - 1) * mm, &k));
    }
    write_raw(dir, "round_clients.i32", ids, (size_t)cfg.train.rounds * mm * 4);
    /* each (round, client)'s minibatch order, drawn exactly as fl_local_train draws it, so the
     * reference trains on the same batches in the same order */
    int64_t tot = 0;
    for (int64_t i = 0; i < (int64_t)cfg.train.rounds * mm; i++) tot += count[ids[i]] * cfg.train.local_epochs;
    int32_t *ord = malloc((size_t)(tot > 0 ? tot : 1) * sizeof *ord);
    int64_t *ooff = malloc(((size_t)cfg.train.rounds * mm + 1) * sizeof *ooff);
    if (!ord || !ooff) return die("out of memory");
    int64_t pos = 0;
    for (int32_t r = 1; r <= cfg.train.rounds; r++)
        for (int32_t i = 0; i < mm; i++) {
            const int32_t c = ids[(size_t)(r - 1) * mm + i];
            const int64_t nc = count[c];
            ooff[(size_t)(r - 1) * mm + i] = pos;
            rng_t sh = rng_stream((uint64_t)cfg.train.seed, (uint64_t)c, (uint64_t)r, RNG_SHUFFLE);
            for (int32_t e = 0; e < cfg.train.local_epochs; e++, pos += nc) {
                for (int64_t j = 0; j < nc; j++) ord[pos + j] = (int32_t)j;
                if (cfg.train.batch_size > 0 && cfg.train.batch_size < nc) rng_shuffle_u32(&sh, (uint32_t *)ord + pos, (size_t)nc);
            }
        }
    ooff[(size_t)cfg.train.rounds * mm] = pos;
    write_raw(dir, "batch_order.i32", ord, (size_t)pos * 4);
    write_raw(dir, "batch_order_offsets.i64", ooff, ((size_t)cfg.train.rounds * mm + 1) * 8);
    free(ord);
    free(ooff);
    fl_result res; /* the initial model, so that both stacks start from the same weights */
    CK(fl_model_setup(&cfg, data, &meta, &res));
    write_raw(dir, "init_params.f32", res.params, (size_t)res.model.nparams * 4);
    FILE *f;
    char path[4200];
    snprintf(path, sizeof path, "%s/meta.txt", dir);
    f = fopen(path, "w");
    fprintf(f, "features %d\nclasses %d\nclients %d\ntrain_rows %lld\ntest_rows %lld\nrounds %d\n"
               "clients_per_round %d\nbatch %d\nepochs %d\nlr %.17g\nseed %lld\nmodel %s\nhidden",
            meta.features, meta.classes, C, (long long)n, (long long)t, cfg.train.rounds, mm,
            cfg.train.batch_size, cfg.train.local_epochs, cfg.train.lr, (long long)cfg.train.seed,
            model_type_name((model_type)cfg.model.type));
    for (int i = 0; i < cfg.model.nhidden; i++) fprintf(f, " %d", cfg.model.hidden[i]);
    fprintf(f, "\n");
    /* the loss's class weights ([model] class_weights; 1 each for none), and for the attention
     * model its shape: rows of L = features item indices as floats, -1 padding (train_x/test_x) */
    fprintf(f, "class_weights");
    for (int32_t k = 0; k < meta.classes; k++) fprintf(f, " %.9g", res.model.class_weight ? res.model.class_weight[k] : 1.0);
    fprintf(f, "\n");
    fprintf(f, "focal_gamma %.9g\n", (double)res.model.focal_gamma);
    if (res.model.type == MODEL_ATTENTION)
        fprintf(f, "L %d\nitems %d\nattn_dim %d\nattn_heads %d\n", res.model.in, res.model.attn_items,
                res.model.attn_dim, res.model.attn_heads);
    fclose(f);
    fl_result_free(&res);
    io_data_close(data);
    return 0;
}

/* export-gnn CONFIG OUTDIR [k=v ...]: what [model] lightgcn's local training uses on a data set of
 * ONE client (the pooled graph, `fedhpc prepare movielens --clients 1`), so that
 * tests/bench/reference/lightgcn_torch.py trains the same model on the same minibatches: the
 * graph (training edges in CSR order as local user, item; the 1/sqrt(degree) factors), the
 * held-out edges, the initial item and user embeddings, and every round's triples (local user,
 * positive, negative) in training order, drawn by gnn_epoch_order/gnn_draw_triples from the
 * streams gnn_run_local gives gnn_train. One round = a fresh gnn_train call (Adam moments reset;
 * the user embeddings carry over). */
static int cmd_export_gnn(int argc, char **argv)
{
    if (argc < 2) return die("usage: export-gnn CONFIG OUTDIR [k=v ...]");
    config_t cfg;
    load_cfg(&cfg, argv[0], argc - 2, argv + 2);
    if (cfg.model.type != MODEL_LIGHTGCN) return die("export-gnn: [model] type must be lightgcn");
    io_data *data;
    io_data_meta meta;
    CK(io_data_open(cfg.data.file, &W, &data, &meta));
    if (meta.clients != 1) return die("export-gnn: the data set must have one client (the pooled graph: --clients 1)");
    const char *dir = argv[1];
    mkdir(dir, 0777);
    int32_t c0 = 0;
    int64_t start, n;
    CK(io_data_client_ranges(data, &c0, 1, &start, &n));
    float *x = malloc((size_t)(n ? n : 1) * 2 * sizeof *x);
    int32_t *y = malloc((size_t)(n ? n : 1) * sizeof *y), *us = malloc((size_t)(n ? n : 1) * sizeof *us);
    uint8_t *held = malloc((size_t)(n ? n : 1));
    if (!x || !y || !us || !held) return die("out of memory");
    CK(io_data_read_ranges(data, "train", 1, &start, &n, x, y));
    for (int64_t k = 0; k < n; k++) { /* as gnn_run.c decodes a row */
        us[k] = (int32_t)x[2 * k];
        held[k] = x[2 * k + 1] != 0;
    }
    const int32_t ni = meta.classes, dim = cfg.model.hidden[0], K = cfg.model.gnn_layers;
    gnn_graph g;
    CK(gnn_graph_build(&g, ni, us, y, held, n));
    const int64_t nnz = g.nnz;
    int32_t *eu = malloc((size_t)(nnz ? nnz : 1) * sizeof *eu), *hu = malloc((size_t)(g.nheld ? g.nheld : 1) * sizeof *hu);
    if (!eu || !hu) return die("out of memory");
    for (int32_t a = 0; a < g.nu; a++) {
        for (int64_t e = g.uptr[a]; e < g.uptr[a + 1]; e++) eu[e] = a;
        for (int64_t e = g.hptr[a]; e < g.hptr[a + 1]; e++) hu[e] = a;
    }
    write_raw(dir, "edge_user.i32", eu, (size_t)nnz * 4);
    write_raw(dir, "edge_item.i32", g.uidx, (size_t)nnz * 4);
    write_raw(dir, "held_user.i32", hu, (size_t)g.nheld * 4);
    write_raw(dir, "held_item.i32", g.hidx, (size_t)g.nheld * 4);
    write_raw(dir, "du.f32", g.du, (size_t)g.nu * 4);
    write_raw(dir, "di.f32", g.di, (size_t)ni * 4);
    fl_result res; /* the initial item embeddings, as the loop draws them */
    CK(fl_model_setup(&cfg, data, &meta, &res));
    write_raw(dir, "init_items.f32", res.params, (size_t)res.model.nparams * 4);
    float *u0 = malloc((size_t)(g.nu ? g.nu : 1) * dim * sizeof *u0);
    if (!u0) return die("out of memory");
    for (int32_t a = 0; a < g.nu; a++) gnn_init_user((uint64_t)cfg.train.seed, g.user[a], dim, u0 + (int64_t)a * dim);
    write_raw(dir, "init_users.f32", u0, (size_t)g.nu * dim * 4);
    /* the triples: rounds x epochs x nnz, in training order */
    const int64_t per = nnz * cfg.train.local_epochs;
    int32_t *tri = malloc((size_t)(per ? per : 1) * cfg.train.rounds * 3 * sizeof *tri),
            *order = malloc((size_t)(nnz ? nnz : 1) * sizeof *order);
    if (!tri || !order) return die("out of memory");
    const int64_t B = cfg.train.batch_size > 0 && cfg.train.batch_size < nnz ? cfg.train.batch_size : nnz;
    int64_t pos = 0;
    for (int32_t r = 1; r <= cfg.train.rounds; r++) {
        rng_t sh = rng_stream((uint64_t)cfg.train.seed, 0, (uint64_t)r, RNG_SHUFFLE),
              ng = rng_stream((uint64_t)cfg.train.seed, 0, (uint64_t)r, RNG_GNN_NEG);
        for (int32_t ep = 0; ep < cfg.train.local_epochs; ep++) {
            gnn_epoch_order(&g, &sh, order);
            for (int64_t b0 = 0; b0 < nnz; b0 += B, pos += B) {
                const int32_t nb = (int32_t)(nnz - b0 < B ? nnz - b0 : B);
                gnn_draw_triples(&g, order + b0, eu, nb, &ng, tri + 3 * pos);
                if (nb < B) pos -= B - nb;
            }
        }
    }
    write_raw(dir, "triples.i32", tri, (size_t)pos * 3 * 4);
    char path[4200];
    snprintf(path, sizeof path, "%s/meta.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f) return die("export-gnn: cannot write meta.txt");
    /* Adam as gnn_train: beta 0.9/0.999, eps 1e-8 added to sqrt(v), the bias correction folded
     * into the step lr * sqrt(1 - beta2^t) / (1 - beta1^t) (computed in double, applied in float) */
    fprintf(f, "users %d\nitems %d\nedges %lld\nheld %lld\ndim %d\nlayers %d\nrounds %d\nepochs %d\nbatch %lld\n"
               "lr %.17g\nweight_decay %.17g\nbeta1 0.9\nbeta2 0.999\neps 1e-8\nseed %lld\n",
            g.nu, ni, (long long)nnz, (long long)g.nheld, dim, K, cfg.train.rounds, cfg.train.local_epochs, (long long)B,
            cfg.train.lr, cfg.train.weight_decay, (long long)cfg.train.seed);
    fclose(f);
    free(tri); free(order); free(u0); free(eu); free(hu); free(x); free(y); free(us); free(held);
    gnn_graph_free(&g);
    fl_result_free(&res);
    io_data_close(data);
    return 0;
}

int main(int argc, char **argv)
{
    model_blas_setup(argv); /* OpenBLAS kernels for this CPU (may re-execute) */
    if (comm_init(&argc, &argv, &W) != FH_OK) return 1;
    if (argc < 2) {
        if (W.rank == 0) fprintf(stderr, "usage: fedhpc_bench round|local|agg|ckpt|robust|gen-clients|export|export-gnn|blas ...\n");
        comm_finalize();
        return 2;
    }
    const char *c = argv[1];
    int rc;
    if (!strcmp(c, "round")) rc = cmd_round(argc - 2, argv + 2);
    else if (!strcmp(c, "local")) rc = cmd_local(argc - 2, argv + 2);
    else if (!strcmp(c, "agg")) rc = cmd_agg(argc - 2, argv + 2);
    else if (!strcmp(c, "ckpt")) rc = cmd_ckpt(argc - 2, argv + 2);
    else if (!strcmp(c, "robust")) rc = cmd_robust(argc - 2, argv + 2);
    else if (!strcmp(c, "gen-clients")) rc = cmd_gen(argc - 2, argv + 2);
    else if (!strcmp(c, "export")) rc = cmd_export(argc - 2, argv + 2);
    else if (!strcmp(c, "export-gnn")) rc = cmd_export_gnn(argc - 2, argv + 2);
    else if (!strcmp(c, "blas")) { /* the OpenBLAS kernel set in use, for the reference's env */
        if (W.rank == 0) printf("%s\n", model_blas_core());
        rc = 0;
    }
    else {
        if (W.rank == 0) fprintf(stderr, "fedhpc_bench: unknown command %s\n", c);
        rc = 2;
    }
    fflush(stdout);
    comm_finalize();
    return rc;
}
