/* `fedhpc attack leakage CONFIG.ini [section.key=value ...]`: the gradient-leakage attack of
 * issue 13 (docs/leakage.md). The attacker is the aggregator holding one client's update for
 * one round: the target client ([leakage] target_client) trains on [leakage] batch of its rows
 * from the initial model exactly as the engine's clients do (fl_local_train: [train] lr,
 * local_epochs, batch_size; DP-SGD for the dp_sample defence), the defence is applied to the
 * update, and the attacker reconstructs the rows from it (src/attack/leakage.c).
 *
 * Writes into [output] dir: leakage.csv (one row per attacked row and method),
 * leakage_summary.csv (one row per method) and, for image data, leakage.png (originals on top,
 * the analytic and the optimisation reconstructions below).
 *
 * Runs on rank 0: the data file is opened collectively (parallel HDF5), then rank 0 reads the
 * rows and attacks; the other ranks wait for the agreed status. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "fedhpc/config.h"
#include "fedhpc/fl.h"
#include "fedhpc/io.h"
#include "fedhpc/leakage.h"
#include "fedhpc/privacy.h"
#include "fedhpc/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *USAGE =
    "usage: fedhpc attack leakage CONFIG.ini [section.key=value ...]\n"
    "\n"
    "Gradient leakage (docs/leakage.md): the aggregator holds one client's update for one round\n"
    "and reconstructs the client's training rows from it. The target client ([leakage]\n"
    "target_client) trains on [leakage] batch of its rows from the initial model as the engine\n"
    "does ([train] lr, local_epochs, batch_size), under the [leakage] defence (none, dp_sample,\n"
    "dp_client, topk, secagg); the attacks are the analytic one (x = dW/db of the first layer,\n"
    "labels from the last bias gradient) and gradient matching with Adam ([leakage] iters, step,\n"
    "loss, labels, tv). Models: logreg, mlp and cnn (cnn: the optimisation attack only).\n"
    "[leakage] model = model.h5 (from fedhpc run) attacks a later round instead of the initial model.\n"
    "Writes [output] dir/leakage.csv (per row: MSE, PSNR, SSIM, label, features within 0.1 std),\n"
    "leakage_summary.csv (per method) and leakage.png (images: originals, analytic, optimisation).\n"
    "Runs on rank 0 (other ranks only open the data file). `fedhpc run --help-config` lists the\n"
    "[leakage] keys. Exit status: 0 done, 1 runtime error, 2 bad input.\n";

static fh_status check_inputs(int argc, char **argv, config_t *cfg)
{
    config_defaults(cfg);
    if (argc < 2 || strcmp(argv[1], "leakage") != 0)
        return fh_error_set(FH_EINPUT, "attack: expected 'leakage' as the first argument, got '%s' (see fedhpc attack --help)",
                            argc < 2 ? "(nothing)" : argv[1]);
    if (argc < 3 || argv[2][0] == '-')
        return fh_error_set(FH_EINPUT, "attack leakage: expected CONFIG.ini as the argument (see fedhpc attack --help)");
    FH_TRY(config_load(cfg, argv[2]));
    for (int i = 3; i < argc; i++) {
        if (argv[i][0] == '-')
            return fh_error_set(FH_EINPUT, "attack leakage: unknown option '%s' (see fedhpc attack --help)", argv[i]);
        FH_TRY(config_override(cfg, argv[i]));
    }
    FH_TRY(config_validate(cfg, argv[2]));
    FH_TRY(config_check_paths(cfg));
    if (cfg->leakage.model[0]) FH_TRY(fh_path_check("[leakage] model", cfg->leakage.model, FH_PATH_READ_FILE));
    if (cfg->leakage.optimizer == 1 && cfg->leakage.labels == 1)
        return fh_error_set(FH_EINPUT, "[leakage] optimizer = lbfgs optimises the inputs with fixed labels: "
                                       "expected [leakage] labels = idlg or true, not joint");
    if (cfg->model.type != MODEL_LOGREG && cfg->model.type != MODEL_MLP && cfg->model.type != MODEL_CNN)
        return fh_error_set(FH_EINPUT, "[model] type = %s: the leakage attack supports logreg, mlp and cnn",
                            model_type_name((model_type)cfg->model.type));
    /* the CNN (src/model/dgrad_cnn.c): the optimisation attack only, the closed form needs a
     * fully connected first layer */
    if (cfg->model.type == MODEL_CNN && cfg->leakage.method == 1)
        return fh_error_set(FH_EINPUT, "[leakage] method = analytic needs a fully connected first layer: "
                                       "expected method = optimization or all with [model] type = cnn");
    if (cfg->model.type == MODEL_CNN && cfg->leakage.defence == LEAK_DEF_DP_SAMPLE)
        return fh_error_set(FH_EINPUT, "[leakage] defence = dp_sample (DP-SGD) is not supported with [model] type = cnn: "
                                       "expected none, dp_client, topk or secagg");
    return FH_OK;
}

/* ---- the attacked round --------------------------------------------------------------- */

typedef struct {
    const config_t *cfg;
    const io_data_meta *meta;
    model_t *m;
    const float *global;   /* [P] the round's model (the initial one)                  */
    int32_t K;             /* clients whose updates the attacker sees (secagg: K > 1)  */
    int32_t n;             /* rows per client                                          */
    float *x;              /* [K * n, d] the clients' batches (target first)            */
    int32_t *y;            /* [K * n]                                                   */
    double *fstd;          /* [d] std of each feature over the target client's rows     */
    double *fmean;         /* [d] their mean: the "prior" baseline reconstruction        */
    int64_t steps;         /* local steps of the target                                */
    double unorm;          /* L2 norm of the target's update before the defence         */
    double sigma, eps;     /* DP defences: noise multiplier and this round's epsilon     */
} leak_round;

/* Read the rows of the K clients and pick n of each (rng_stream(seed, client, 0, RNG_LEAKAGE)). */
static fh_status read_batches(io_data *data, leak_round *r)
{
    const config_t *cfg = r->cfg;
    const int32_t d = r->meta->features, n = r->n;
    for (int32_t k = 0; k < r->K; k++) {
        const int32_t cid = (cfg->leakage.target_client + k) % r->meta->clients;
        int64_t start, count;
        FH_TRY(io_data_client_ranges(data, &cid, 1, &start, &count));
        if (start < 0) /* a per-party file without this client's rows */
            return fh_error_set(FH_EINPUT, "[leakage] client %d: its rows are not in %s", cid, cfg->data.file);
        count -= io_data_local_test_rows(r->meta, count);
        if (count < n)
            return fh_error_set(FH_EINPUT, "[leakage] batch = %d: client %d of %s has only %lld training rows", n, cid,
                                cfg->data.file, (long long)count);
        float *x = malloc((size_t)count * d * sizeof *x);
        int32_t *y = malloc((size_t)count * sizeof *y);
        int64_t *idx = malloc((size_t)count * sizeof *idx);
        fh_status st = x && y && idx ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory for client %d's rows", cid);
        if (st == FH_OK) st = io_data_read_ranges(data, "train", 1, &start, &count, x, y);
        if (st == FH_OK) {
            for (int64_t i = 0; i < count; i++) idx[i] = i;
            rng_t g = rng_stream((uint64_t)cfg->train.seed, (uint64_t)cid, 0, RNG_LEAKAGE);
            rng_shuffle_i64(&g, idx, (size_t)count);
            for (int32_t i = 0; i < n; i++) {
                memcpy(r->x + ((size_t)k * n + i) * d, x + (size_t)idx[i] * d, (size_t)d * sizeof *x);
                r->y[(size_t)k * n + i] = y[idx[i]];
            }
            if (k == 0) /* feature spread of the target's rows (the tabular metric) */
                for (int32_t j = 0; j < d; j++) {
                    double s = 0, s2 = 0;
                    for (int64_t i = 0; i < count; i++) {
                        const double v = x[(size_t)i * d + j];
                        s += v;
                        s2 += v * v;
                    }
                    const double mu = s / count, var = s2 / count - mu * mu;
                    r->fstd[j] = var > 0 ? sqrt(var) : 0;
                    r->fmean[j] = mu;
                }
        }
        free(x);
        free(y);
        free(idx);
        FH_TRY(st);
    }
    return FH_OK;
}

/* The noise multiplier of a DP defence: [privacy] noise, or the smallest sigma keeping `steps`
 * steps at rate q within ([leakage] epsilon, [privacy] delta); *eps: the epsilon spent. */
static fh_status dp_sigma(const config_t *cfg, double q, int64_t steps, double *sigma, double *eps)
{
    *sigma = cfg->privacy.noise;
    if (cfg->leakage.epsilon > 0)
        FH_TRY(privacy_sigma_for_epsilon(q, steps, cfg->privacy.delta, cfg->leakage.epsilon, sigma));
    *eps = INFINITY;
    if (*sigma > 0) {
        privacy_accountant a;
        privacy_accountant_init(&a);
        FH_TRY(privacy_accountant_step(&a, q, *sigma, steps));
        FH_TRY(privacy_epsilon(&a, cfg->privacy.delta, eps, NULL));
    }
    return FH_OK;
}

static int cmp_desc(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The update the attacker observes, into obs[P] (double): each client trains on its batch; the
 * defence applies; secagg sums the K updates. */
static fh_status observed_update(leak_round *r, double *obs)
{
    const config_t *cfg = r->cfg;
    const model_t *m = r->m;
    const int64_t P = m->nparams;
    const int32_t n = r->n, d = m->in, def = cfg->leakage.defence;
    float *loc = malloc((size_t)P * sizeof *loc);
    double *u = malloc((size_t)P * sizeof *u);
    fl_worker w;
    fh_status st = loc && u ? fl_worker_init(&w, m, n < 16 ? 16 : n) : fh_error_set(FH_ENOMEM, "out of memory");
    if (st != FH_OK) {
        free(loc);
        free(u);
        return st;
    }
    const int64_t B = cfg->train.batch_size > 0 && cfg->train.batch_size < n ? cfg->train.batch_size : n;
    const int64_t per_epoch = (n + B - 1) / B;
    r->sigma = 0;
    r->eps = INFINITY;
    if (def == LEAK_DEF_DP_SAMPLE)
        st = dp_sigma(cfg, (double)B / n, (int64_t)cfg->train.local_epochs * per_epoch, &r->sigma, &r->eps);
    else if (def == LEAK_DEF_DP_CLIENT)
        st = dp_sigma(cfg, 1.0, 1, &r->sigma, &r->eps);
    for (int64_t j = 0; j < P; j++) obs[j] = 0;
    const fl_local_opts o = fl_local_opts_make(cfg, r->global);
    for (int32_t k = 0; st == FH_OK && k < r->K; k++) {
        const int32_t cid = (cfg->leakage.target_client + k) % r->meta->clients;
        memcpy(loc, r->global, (size_t)P * sizeof *loc);
        privacy_sgd dp = {cfg->privacy.clip, r->sigma, cfg->privacy.sampling == 0, (uint64_t)cfg->train.seed,
                          (uint64_t)cid, 1};
        w.dp = def == LEAK_DEF_DP_SAMPLE ? &dp : NULL;
        double loss;
        int64_t steps, rows;
        st = fl_local_train(&w, &o, rng_stream((uint64_t)cfg->train.seed, (uint64_t)cid, 1, RNG_SHUFFLE),
                            r->x + (size_t)k * n * d, r->y + (size_t)k * n, n, loc, &loss, &steps, &rows);
        if (st != FH_OK) break;
        if (k == 0) r->steps = steps;
        for (int64_t j = 0; j < P; j++) u[j] = (double)loc[j] - (double)r->global[j];
        if (k == 0) {
            double s = 0;
            for (int64_t j = 0; j < P; j++) s += u[j] * u[j];
            r->unorm = sqrt(s);
        }
        if (def == LEAK_DEF_DP_CLIENT) { /* clip to C, then N(0, (sigma C)^2) on every entry */
            double s = 0;
            for (int64_t j = 0; j < P; j++) s += u[j] * u[j];
            const double C = cfg->privacy.clip, f = sqrt(s) > C ? C / sqrt(s) : 1.0;
            rng_t g = rng_stream((uint64_t)cfg->train.seed, (uint64_t)cid, 2, RNG_LEAKAGE);
            for (int64_t j = 0; j < P; j++) u[j] = u[j] * f + r->sigma * C * rng_normal(&g);
        } else if (def == LEAK_DEF_TOPK) { /* keep the ceil(topk P) largest magnitudes */
            int64_t keep = (int64_t)ceil(cfg->leakage.topk * (double)P);
            double *a = malloc((size_t)P * sizeof *a);
            if (!a) {
                st = fh_error_set(FH_ENOMEM, "out of memory");
                break;
            }
            for (int64_t j = 0; j < P; j++) a[j] = fabs(u[j]);
            /* threshold = the keep-th largest |u| (a partial selection by sorting a copy) */
            qsort(a, (size_t)P, sizeof *a, cmp_desc);
            const double thr = a[keep - 1];
            free(a);
            int64_t kept = 0;
            for (int64_t j = 0; j < P; j++) {
                if (fabs(u[j]) >= thr && kept < keep && u[j] != 0) kept++;
                else u[j] = 0;
            }
        }
        for (int64_t j = 0; j < P; j++) obs[j] += u[j];
    }
    fl_worker_free(&w);
    free(loc);
    free(u);
    return st;
}

/* ---- evaluation ------------------------------------------------------------------------ */

typedef struct {
    double mse, psnr, ssim, feat;
    int32_t rec;           /* index of the matched reconstruction */
} row_score;

/* One-to-one greedy matching of the n originals to the c reconstructions (c >= n, or reuse
 * when c < n) by ascending MSE; scores per original. */
static fh_status match_rows(const leak_round *r, const double *orig, const double *rec, int32_t c,
                            int side, row_score *sc)
{
    const int32_t n = r->n, d = r->m->in;
    double *e = malloc((size_t)n * c * sizeof *e);
    uint8_t *used = calloc((size_t)c, 1), *done = calloc((size_t)n, 1);
    if (!e || !used || !done) {
        free(e);
        free(used);
        free(done);
        return fh_error_set(FH_ENOMEM, "out of memory");
    }
    for (int32_t i = 0; i < n; i++)
        for (int32_t k = 0; k < c; k++) e[(size_t)i * c + k] = leakage_mse(orig + (size_t)i * d, rec + (size_t)k * d, d);
    for (int32_t t = 0; t < n; t++) {
        int32_t bi = -1, bk = -1;
        for (int32_t i = 0; i < n; i++) {
            if (done[i]) continue;
            for (int32_t k = 0; k < c; k++) {
                if (used[k] && c >= n) continue;
                if (bi < 0 || e[(size_t)i * c + k] < e[(size_t)bi * c + bk]) {
                    bi = i;
                    bk = k;
                }
            }
        }
        done[bi] = 1;
        used[bk] = 1;
        const double *o = orig + (size_t)bi * d, *x = rec + (size_t)bk * d;
        row_score *s = sc + bi;
        s->rec = bk;
        s->mse = e[(size_t)bi * c + bk];
        s->psnr = side > 0 ? leakage_psnr(s->mse) : NAN; /* PSNR: images in [0, 1] only */
        s->ssim = side > 0 ? leakage_ssim(o, x, side) : NAN;
        int32_t ok = 0;
        for (int32_t j = 0; j < d; j++) ok += fabs(o[j] - x[j]) <= 0.1 * r->fstd[j] + 1e-12;
        s->feat = (double)ok / d;
    }
    free(e);
    free(used);
    free(done);
    return FH_OK;
}

/* fraction of the true labels (a multiset) found among the recovered ones */
static double label_acc(const int32_t *truth, int32_t nt, const int32_t *rec, int32_t nr, int32_t classes)
{
    int32_t *c = calloc((size_t)classes, sizeof *c);
    if (!c) return NAN;
    for (int32_t i = 0; i < nr; i++) c[rec[i]]++;
    int32_t hit = 0;
    for (int32_t i = 0; i < nt; i++)
        if (c[truth[i]] > 0) {
            c[truth[i]]--;
            hit++;
        }
    free(c);
    return (double)hit / nt;
}

static const char *DEF_NAMES[] = {"none", "dp_sample", "dp_client", "topk", "secagg"};

static void summary_row(FILE *f, const leak_round *r, const char *method, const row_score *sc, double lacc,
                        double mloss, double secs)
{
    const config_t *cfg = r->cfg;
    double pm = 0, px = -INFINITY, sm = 0, mm = 0, fm = 0;
    for (int32_t i = 0; i < r->n; i++) {
        pm += sc[i].psnr;
        px = fmax(px, sc[i].psnr);
        sm += sc[i].ssim;
        mm += sc[i].mse;
        fm += sc[i].feat;
    }
    const int32_t n = r->n;
    fprintf(f, "%s,%s,%d,%d,%d,%s,%.6g,%.6g,%.6g,%.6g,%d,%s,%.4f,%.4f,%.4f,%.6g,%.4f,%.4f,%.6g,%.3f\n", r->meta->dataset,
            model_type_name(r->m->type), n, cfg->train.local_epochs, cfg->train.batch_size, DEF_NAMES[cfg->leakage.defence],
            r->sigma, r->eps, cfg->privacy.clip, cfg->leakage.defence == LEAK_DEF_TOPK ? cfg->leakage.topk : 1.0,
            r->K, method, pm / n, px, sm / n, mm / n, fm / n, lacc, mloss, secs);
}

static fh_status attack(const config_t *cfg, io_data *data, const io_data_meta *meta, const comm_t *w)
{
    (void)w;
    fl_result res;
    FH_TRY(fl_model_setup(cfg, data, meta, &res)); /* the engine's model at round 1 */
    if (cfg->leakage.model[0]) { /* or a later round's global model */
        int64_t np = res.model.nparams;
        fh_status sm = io_model_read(cfg->leakage.model, res.params, &np);
        if (sm == FH_OK && np != res.model.nparams)
            sm = fh_error_set(FH_EINPUT, "[leakage] model = %s: %lld parameters, the configured %s has %lld",
                              cfg->leakage.model, (long long)np, model_type_name(res.model.type),
                              (long long)res.model.nparams);
        if (sm != FH_OK) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", fh_error_msg());
            fl_result_free(&res);
            if (strstr(msg, "[leakage] model")) return fh_error_set(sm, "%s", msg);
            return fh_error_set(sm, "[leakage] model: %s (expected a model.h5 of the configured [model])", msg);
        }
    }
    leak_round r = {.cfg = cfg, .meta = meta, .m = &res.model, .global = res.params, .n = cfg->leakage.batch,
                    .K = cfg->leakage.defence == LEAK_DEF_SECAGG ? cfg->leakage.secagg_clients : 1};
    const model_t *m = &res.model;
    const int32_t d = m->in, n = r.n, NA = r.K * n, C = m->classes;
    const int64_t P = m->nparams;
    const int side = strncmp(meta->dataset, "fmnist", 6) == 0 && d == 784 ? 28 : 0;
    fh_status st = FH_OK;
    if (r.K > meta->clients)
        st = fh_error_set(FH_EINPUT, "[leakage] secagg_clients = %d but %s has %d clients", r.K, cfg->data.file,
                          meta->clients);
    if (st == FH_OK && cfg->leakage.target_client >= meta->clients)
        st = fh_error_set(FH_EINPUT, "[leakage] target_client = %d but %s has %d clients (0..%d)",
                          cfg->leakage.target_client, cfg->data.file, meta->clients, meta->clients - 1);
    r.x = malloc((size_t)NA * d * sizeof *r.x);
    r.y = malloc((size_t)NA * sizeof *r.y);
    r.fstd = malloc((size_t)d * sizeof *r.fstd);
    r.fmean = malloc((size_t)d * sizeof *r.fmean);
    double *obs = malloc((size_t)P * sizeof *obs), *orig = malloc((size_t)n * d * sizeof *orig);
    const int32_t hmax = m->fan_out[0];
    double *cand = malloc((size_t)(hmax + 1) * d * sizeof *cand), *xd = malloc((size_t)NA * d * sizeof *xd);
    int32_t *lab = malloc((size_t)NA * sizeof *lab);
    uint8_t *mask = malloc((size_t)P);
    row_score *sa = calloc((size_t)n, sizeof *sa), *so = calloc((size_t)n, sizeof *so);
    if (st == FH_OK && (!r.x || !r.y || !r.fstd || !r.fmean || !obs || !orig || !cand || !xd || !lab || !mask || !sa || !so))
        st = fh_error_set(FH_ENOMEM, "out of memory for the leakage attack");
    if (st == FH_OK) st = read_batches(data, &r);
    if (st == FH_OK) st = observed_update(&r, obs);
    FILE *fr = NULL, *fs = NULL;
    char path[CONFIG_PATH_MAX + 64];
    if (st == FH_OK) st = cli_mkdirs(cfg->output.dir);
    if (st == FH_OK) {
        snprintf(path, sizeof path, "%s/leakage.csv", cfg->output.dir);
        fr = fopen(path, "w");
        snprintf(path, sizeof path, "%s/leakage_summary.csv", cfg->output.dir);
        fs = fopen(path, "w");
        if (!fr || !fs) st = fh_error_set(FH_EIO, "%s: cannot write", cfg->output.dir);
    }
    if (st == FH_OK) {
        for (size_t j = 0; j < (size_t)n * d; j++) orig[j] = r.x[j];
        /* the observed update as a gradient: -update / (lr * steps) (per client under secagg) */
        const double scale = -1.0 / (cfg->train.lr * (double)(r.steps > 0 ? r.steps : 1) * r.K);
        int64_t nz = 0;
        for (int64_t j = 0; j < P; j++) {
            obs[j] *= scale;
            mask[j] = obs[j] != 0;
            nz += mask[j];
        }
        fprintf(fr, "method,row,label,label_rec,mse,psnr,ssim,feat_within_0.1sd\n");
        fprintf(fs, "dataset,model,batch,local_epochs,batch_size,defence,sigma,epsilon,clip,topk,clients_summed,method,"
                    "psnr_mean,psnr_max,ssim_mean,mse_mean,feat_within_0.1sd,label_acc,match_loss,seconds\n");
        printf("fedhpc attack leakage: %s, %s (%lld parameters), client %d, batch %d, %d local epoch(s), %lld step(s), "
               "update norm %.4g, defence %s%s\n",
               meta->dataset, model_type_name(m->type), (long long)P, cfg->leakage.target_client, n,
               cfg->train.local_epochs, (long long)r.steps, r.unorm, DEF_NAMES[cfg->leakage.defence],
               r.K > 1 ? " (sum of the clients' updates)" : "");
        if (cfg->leakage.defence == LEAK_DEF_DP_SAMPLE || cfg->leakage.defence == LEAK_DEF_DP_CLIENT)
            printf("  noise multiplier %.4g, clip %.4g: epsilon %.4g at delta %.3g for this round\n", r.sigma,
                   cfg->privacy.clip, r.eps, cfg->privacy.delta);
        /* labels (iDLG) from the observed gradient */
        leakage_labels(m, obs, NA, lab);
        const double lacc_idlg = label_acc(r.y, NA, lab, NA, C);
        double *img = NULL;
        const int32_t ni = n < cfg->leakage.images ? n : cfg->leakage.images;
        if (side) img = calloc((size_t)3 * 30 * ni * 30, sizeof *img);
        for (int32_t i = 0; side && img && i < ni; i++)
            for (int32_t p = 0; p < 784; p++) img[(size_t)(1 + p / 28) * (30 * ni) + i * 30 + 1 + p % 28] = orig[(size_t)i * d + p];
        /* the baseline: every row guessed as the mean of the target's rows (what the data
         * distribution alone gives; a reconstruction near it has leaked little) */
        st = match_rows(&r, orig, r.fmean, 1, side, sa);
        for (int32_t i = 0; st == FH_OK && i < n; i++)
            fprintf(fr, "prior_mean,%d,%d,-1,%.6g,%.4f,%.4f,%.4f\n", i, r.y[i], sa[i].mse, sa[i].psnr, sa[i].ssim,
                    sa[i].feat);
        if (st == FH_OK) summary_row(fs, &r, "prior_mean", sa, NAN, NAN, 0);
        /* analytic */
        if (st == FH_OK && cfg->leakage.method != 2 && m->type == MODEL_CNN)
            printf("  analytic:     skipped (the CNN's first layer is a convolution; x = dW/db needs a fully "
                   "connected one)\n");
        if (st == FH_OK && cfg->leakage.method != 2 && m->type != MODEL_CNN) {
            double t0 = fh_wtime();
            /* the least-squares row, then single units by decreasing |db| (NA candidates) */
            leakage_analytic_ls(m, obs, cfg->leakage.defence == LEAK_DEF_TOPK ? mask : NULL, cand);
            int32_t c = 1;
            if (NA > 1) c += leakage_analytic(m, obs, 1e-9, NA - 1 < hmax ? NA - 1 : hmax, cand + d);
            if (side)
                for (size_t j = 0; j < (size_t)c * d; j++) cand[j] = cand[j] < 0 ? 0 : cand[j] > 1 ? 1 : cand[j];
            st = match_rows(&r, orig, cand, c, side, sa);
            for (int32_t i = 0; st == FH_OK && i < n; i++)
                fprintf(fr, "analytic,%d,%d,%d,%.6g,%.4f,%.4f,%.4f\n", i, r.y[i], NA == 1 ? lab[0] : -1, sa[i].mse,
                        sa[i].psnr, sa[i].ssim, sa[i].feat);
            summary_row(fs, &r, "analytic", sa, lacc_idlg, NAN, fh_wtime() - t0);
            for (int32_t i = 0; side && img && i < ni; i++)
                for (int32_t p = 0; p < 784; p++)
                    img[(size_t)(31 + p / 28) * (30 * ni) + i * 30 + 1 + p % 28] = cand[(size_t)sa[i].rec * d + p];
            double pm = 0;
            for (int32_t i = 0; i < n; i++) pm += sa[i].psnr;
            printf("  analytic:     mean PSNR %.2f dB over %d row(s) (%d candidate(s)); labels (iDLG) %.0f%%\n", pm / n,
                   n, c, 100 * lacc_idlg);
        }
        /* optimisation */
        if (st == FH_OK && cfg->leakage.method != 1) {
            double t0 = fh_wtime(), fl = NAN;
            int32_t *dl = malloc((size_t)NA * sizeof *dl);
            if (!dl) st = fh_error_set(FH_ENOMEM, "out of memory");
            if (st == FH_OK) {
                if (cfg->leakage.labels == 2) memcpy(dl, r.y, (size_t)NA * sizeof *dl);
                else memcpy(dl, lab, (size_t)NA * sizeof *dl);
                leakage_dlg_opts o = {.iters = cfg->leakage.iters, .step = cfg->leakage.step,
                                      .loss = cfg->leakage.loss == 0 ? LEAKAGE_LOSS_COSINE : LEAKAGE_LOSS_L2,
                                      .tv = cfg->leakage.tv, .side = side, .lo = side ? 0 : 1, .hi = side ? 1 : 0,
                                      .joint_labels = cfg->leakage.labels == 1, .lbfgs = cfg->leakage.optimizer == 1, .seed = (uint64_t)cfg->train.seed,
                                      .id = (uint64_t)cfg->leakage.target_client + 6};
                st = leakage_dlg(m, res.params, obs, cfg->leakage.defence == LEAK_DEF_TOPK ? mask : NULL, NA, &o, dl, xd, &fl);
            }
            if (st == FH_OK) st = match_rows(&r, orig, xd, NA, side, so);
            const double lacc = st == FH_OK ? label_acc(r.y, NA, dl, NA, C) : NAN;
            for (int32_t i = 0; st == FH_OK && i < n; i++)
                fprintf(fr, "optimization,%d,%d,%d,%.6g,%.4f,%.4f,%.4f\n", i, r.y[i], dl[so[i].rec], so[i].mse,
                        so[i].psnr, so[i].ssim, so[i].feat);
            if (st == FH_OK) {
                summary_row(fs, &r, "optimization", so, lacc, fl, fh_wtime() - t0);
                for (int32_t i = 0; side && img && i < ni; i++)
                    for (int32_t p = 0; p < 784; p++)
                        img[(size_t)(61 + p / 28) * (30 * ni) + i * 30 + 1 + p % 28] = xd[(size_t)so[i].rec * d + p];
                double pm = 0;
                for (int32_t i = 0; i < n; i++) pm += so[i].psnr;
                printf("  optimization: mean PSNR %.2f dB over %d row(s) (%d dummies, %d %s, matching loss "
                       "%.3g); labels %.0f%%\n",
                       pm / n, n, NA, cfg->leakage.iters,
                       cfg->leakage.optimizer == 1 ? "L-BFGS evaluations at most" : "Adam steps", fl, 100 * lacc);
            }
            free(dl);
        }
        if (st == FH_OK && side && img) {
            snprintf(path, sizeof path, "%s/leakage.png", cfg->output.dir);
            const int32_t W = 30 * ni, S = 3; /* each pixel as an S x S block */
            double *big = malloc((size_t)W * S * 90 * S * sizeof *big);
            if (!big) st = fh_error_set(FH_ENOMEM, "out of memory for %s", path);
            for (int32_t yy = 0; big && yy < 90 * S; yy++)
                for (int32_t xx = 0; xx < W * S; xx++) big[(size_t)yy * W * S + xx] = img[(size_t)(yy / S) * W + xx / S];
            if (big) st = leakage_png_write(path, W * S, 90 * S, big);
            free(big);
        }
        free(img);
        printf("  -> %s/leakage.csv, leakage_summary.csv%s\n", cfg->output.dir, side ? ", leakage.png" : "");
    }
    if (fr && fclose(fr) != 0 && st == FH_OK) st = fh_error_set(FH_EIO, "%s/leakage.csv: cannot write", cfg->output.dir);
    if (fs && fclose(fs) != 0 && st == FH_OK)
        st = fh_error_set(FH_EIO, "%s/leakage_summary.csv: cannot write", cfg->output.dir);
    free(r.x);
    free(r.y);
    free(r.fstd);
    free(r.fmean);
    free(obs);
    free(orig);
    free(cand);
    free(xd);
    free(lab);
    free(mask);
    free(sa);
    free(so);
    fl_result_free(&res);
    return st;
}

int cmd_attack(int argc, char **argv, const comm_t *w)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            if (w->rank == 0) fputs(USAGE, stdout);
            return 0;
        }
    config_t cfg;
    fh_status st = comm_agree(w, check_inputs(argc, argv, &cfg));
    if (st != FH_OK) return cli_report(w, "attack", st);
    io_data *data = NULL;
    io_data_meta meta;
    st = comm_agree(w, io_data_open(cfg.data.file, w, &data, &meta));
    if (st != FH_OK) return cli_report(w, "attack", st);
    /* rank 0 attacks (it reads its rows with independent I/O); the rest wait for its status */
    if (w->rank == 0) st = attack(&cfg, data, &meta, w);
    fflush(stdout);
    st = comm_agree(w, st);
    io_data_close(data);
    return cli_report(w, "attack", st);
}
