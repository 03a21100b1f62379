/* `fedhpc run CONFIG.ini [section.key=value ...]`: train, writing into [output] dir:
 *   config.ini   the resolved configuration (every key)
 *   metrics.csv  one row a round
 *   model.h5     the final parameters and architecture
 *   run.yaml     a record of the run: ranks, timers (min/avg/max over ranks), final metrics
 * Rank 0 writes; every rank agrees on failures before anyone exits. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "fedhpc/config.h"
#include "fedhpc/fl.h"
#include "fedhpc/io.h"
#include "fedhpc/loop.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *USAGE =
    "usage: mpirun -np P fedhpc run CONFIG.ini [section.key=value ...] [--resume [PATH]]\n"
    "       fedhpc run --help-config     every configuration key with its default\n"
    "\n"
    "Trains as configured (FedAvg, FedProx, FedAvgM, FedAdam, FedYogi, SCAFFOLD or the\n"
    "centralized baseline). Clients are spread over all ranks; rank 0 also aggregates, evaluates\n"
    "and writes [output] dir: config.ini, metrics.csv, model.h5, run.yaml.\n"
    "Overrides after the file replace its values, e.g. train.rounds=5 fl.algorithm=fedprox.\n"
    "The final model is bit-identical for any number of ranks.\n"
    "\n"
    "Checkpoints: [checkpoint] every = N writes DIR/ckpt_R.h5 every N rounds (dir defaults to\n"
    "<output dir>/checkpoints). --resume continues from the newest valid checkpoint there (a\n"
    "fresh start if there is none); --resume PATH from that file or directory. The resumed run\n"
    "ends with the same model as an uninterrupted one, with any number of ranks.\n"
    "On SIGTERM or SIGUSR1 the run finishes the round in progress, writes a checkpoint and\n"
    "exits with status 3 (resubmit with --resume). Exit status: 0 done, 1 runtime error,\n"
    "2 bad input, 3 stopped with a checkpoint.\n"
    "\n"
    "Environment: FEDHPC_KERNELS=blas uses OpenBLAS instead of fedhpc's AVX-512 minibatch\n"
    "kernels; FEDHPC_BLAS_SETUP=0 (or OPENBLAS_CORETYPE set) leaves OpenBLAS's kernel choice\n"
    "alone (otherwise fedhpc picks the newest set the CPU supports; run.yaml: blas_core).\n";

#define EXIT_STOPPED 3

static void on_signal(int sig)
{
    (void)sig;
    fh_request_stop();
}

typedef struct {
    const config_t *cfg;
    const comm_t *world;
    FILE *metrics;
    char metrics_path[CONFIG_PATH_MAX + 32];
    int tty;
    double t_start;
    fl_round_stats last;      /* the last evaluated round */
    double train_s;
    int32_t first_round;      /* the first round this process ran */
} run_ctx;

static void fmt_num(char *b, size_t n, double v)
{
    if (isnan(v)) snprintf(b, n, "nan");
    else snprintf(b, n, "%.6g", v);
}

/* Open metrics.csv at the first round this process runs: a fresh file at round 1; after a
 * resume, the rows of earlier rounds are kept (rows of rounds being redone are dropped). */
static fh_status metrics_open(run_ctx *c, int32_t first_round)
{
    const char *hdr = "round,wall_s,train_loss,test_loss,accuracy,f1,auc,bytes_up,bytes_down,"
                      "client_acc_mean,client_acc_p10,clients,rejected,"
                      "epsilon,dropped,secagg_aborted,mask_gbps,chacha_gbps,malicious,attack_success,"
                      "f1_minority,pr_auc,threshold,f1_minority_thr,f1_thr\n"; /* last 5: docs/credit.md */
    char tmp[CONFIG_PATH_MAX + 64];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", c->metrics_path, (long)getpid());
    FILE *in = first_round > 1 ? fopen(c->metrics_path, "r") : NULL, *out = fopen(tmp, "w");
    if (!out) {
        if (in) fclose(in);
        return fh_error_set(FH_EIO, "%s: cannot write", tmp);
    }
    fputs(hdr, out);
    char line[4096];
    if (in && fgets(line, sizeof line, in))
        while (fgets(line, sizeof line, in))
            if (atol(line) >= 1 && atol(line) < first_round) fputs(line, out);
    if (in) fclose(in);
    if (fclose(out) != 0 || rename(tmp, c->metrics_path) != 0) {
        unlink(tmp);
        return fh_error_set(FH_EIO, "%s: cannot write", c->metrics_path);
    }
    if (!(c->metrics = fopen(c->metrics_path, "a"))) return fh_error_set(FH_EIO, "%s: cannot write", c->metrics_path);
    return FH_OK;
}

/* [privacy] (issue 12): under DP only what the mechanism releases, and what follows from it, is
 * published. The participants' mean training loss, their accuracies on their own rows and the
 * count of rejected updates are exact functions of their data with no noise on them, so they
 * are written as nan in metrics.csv, the progress lines, run.yaml and the summary. Test-split
 * metrics (server data, computed from the released model), epsilon and the simulated dropouts
 * stay. */
static void dp_redact(const config_t *cfg, fl_round_stats *s)
{
    if (!cfg->privacy.mode) return;
    s->train_loss = s->client_acc_mean = s->client_acc_p10 = NAN;
    s->rejected = -1; /* written as nan */
}

static void fmt_count(char *b, size_t n, int32_t v)
{
    if (v < 0) snprintf(b, n, "nan");
    else snprintf(b, n, "%d", v);
}

static fh_status on_round(const fl_round_stats *s_in, void *user)
{
    run_ctx *c = user;
    fl_round_stats red = *s_in;
    dp_redact(c->cfg, &red);
    const fl_round_stats *s = &red;
    if (s->evaluated) c->last = *s;
    if (c->world->rank != 0) return FH_OK;
    if (s->notice && s->notice[0]) fprintf(stderr, "fedhpc run: %s\n", s->notice);
    if (!c->metrics) FH_TRY(metrics_open(c, s->round));
    char tl[32], ls[32], ac[32], f1[32], au[32], cm[32], cp[32];
    fmt_num(tl, sizeof tl, s->train_loss);
    fmt_num(ls, sizeof ls, s->test.loss);
    fmt_num(ac, sizeof ac, s->test.accuracy);
    fmt_num(f1, sizeof f1, s->test.f1);
    fmt_num(au, sizeof au, s->test.auc);
    fmt_num(cm, sizeof cm, s->client_acc_mean);
    fmt_num(cp, sizeof cp, s->client_acc_p10);
    char ep[32], mg[32], cg[32]; /* [privacy] / [secagg] columns */
    fmt_num(ep, sizeof ep, s->epsilon);
    fmt_num(mg, sizeof mg, s->mask_gbps);
    fmt_num(cg, sizeof cg, s->chacha_gbps);
    char rj[16], ml[16], bd[32]; /* [attack] columns */
    fmt_count(rj, sizeof rj, s->rejected);
    fmt_count(ml, sizeof ml, s->malicious);
    fmt_num(bd, sizeof bd, s->attack_success);
    char cr[5][32]; /* credit study (binary tasks): minority F1, PR-AUC, validation threshold */
    const double crv[5] = {s->test.f1_minority, s->test.pr_auc, s->test.threshold, s->test.f1_minority_thr, s->test.f1_thr};
    for (int i = 0; i < 5; i++) fmt_num(cr[i], sizeof cr[i], crv[i]);
    fprintf(c->metrics, "%d,%.6f,%s,%s,%s,%s,%s,%lld,%lld,%s,%s,%d,%s,%s,%d,%d,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", s->round,
            s->wall_s, tl, ls, ac, f1, au, (long long)s->bytes_up, (long long)s->bytes_down, cm, cp, s->clients, rj, ep,
            s->dropped, s->secagg_aborted, mg, cg, ml, bd, cr[0], cr[1], cr[2], cr[3], cr[4]);
    if (fflush(c->metrics) != 0)
        return fh_error_set(FH_EIO, "%s: cannot write metrics", c->metrics_path);
    if (c->cfg->output.progress == 2) return FH_OK;
    if (!c->first_round) c->first_round = s->round; /* after a resume, rounds before it took no time here */
    double el = fh_wtime() - c->t_start, eta = el / (s->round - c->first_round + 1) * (s->rounds - s->round);
    char acc[64] = "";
    if (!isnan(c->last.test.accuracy)) snprintf(acc, sizeof acc, " | acc %.4f", c->last.test.accuracy);
    if (!isnan(c->last.test.auc)) snprintf(acc + strlen(acc), sizeof acc - strlen(acc), " auc %.4f", c->last.test.auc);
    if (c->tty && c->cfg->output.progress == 0) {
        printf("\rround %d/%d | loss %.4f%s | rejected %s | %.1fs elapsed, ETA %.0fs   ", s->round, s->rounds,
               s->train_loss, acc, rj, el, eta);
        if (s->round == s->rounds) printf("\n");
        fflush(stdout);
    } else if (s->evaluated || s->round == s->rounds) {
        printf("round %d/%d | loss %.4f%s | rejected %s | %.1fs elapsed, ETA %.0fs\n", s->round, s->rounds,
               s->train_loss, acc, rj, el, eta);
        fflush(stdout);
    }
    return FH_OK;
}

/* Write `text` to path via a temporary file and rename. */
static fh_status write_file_atomic(const char *path, void (*fill)(FILE *, const void *), const void *arg)
{
    char tmp[CONFIG_PATH_MAX + 64];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return fh_error_set(FH_EIO, "%s: cannot write", tmp);
    fill(f, arg);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return fh_error_set(FH_EIO, "%s: cannot write", path);
    }
    return FH_OK;
}

static void fill_config(FILE *f, const void *cfg) { config_write(cfg, f); }

typedef struct {
    const run_ctx *c;
    const io_data_meta *meta;
    const fl_result *res;
    double tmin, tavg, tmax;
    int64_t verify_bytes;
    double verify_s;
} yaml_arg;

static void fill_yaml(FILE *f, const void *p)
{
    const yaml_arg *a = p;
    const config_t *cfg = a->c->cfg;
    const fl_round_stats *s = &a->c->last;
    char host[256] = "?";
    gethostname(host, sizeof host - 1);
    time_t now = time(NULL);
    char date[64];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    fprintf(f, "fedhpc_run:\n  date: %s\n  host: %s\n  ranks: %d\n  blas_core: %s\n", date, host, a->c->world->size,
            model_blas_core());
    fprintf(f, "  data: {file: \"%s\", dataset: \"%s\", partition: %s, clients: %d, train_rows: %lld, test_rows: %lld}\n",
            cfg->data.file, a->meta->dataset, a->meta->partition, a->meta->clients, (long long)a->meta->train_rows,
            (long long)a->meta->test_rows);
    fprintf(f, "  data_verify: {checksums: %s, bytes: %lld, seconds: %.3f}\n",
            !a->meta->checksums ? "none" : cfg->data.verify ? "ok" : "skipped", (long long)a->verify_bytes, a->verify_s);
    fprintf(f, "  model: {type: %s, parameters: %lld}\n", model_type_name(a->res->model.type), (long long)a->res->model.nparams);
    fprintf(f, "  algorithm: %s\n  rounds: %d\n  seed: %lld\n", config_algorithm_name(cfg->fl.algorithm), cfg->train.rounds,
            (long long)cfg->train.seed);
    fprintf(f, "  train_seconds: {min: %.3f, avg: %.3f, max: %.3f}\n", a->tmin, a->tavg, a->tmax);
    fprintf(f, "  final: {round: %d, test_loss: %.6g, accuracy: %.6g, f1: %.6g, auc: %.6g, client_acc_mean: %.6g, client_acc_p10: %.6g}\n",
            s->round, s->test.loss, s->test.accuracy, s->test.f1, s->test.auc, s->client_acc_mean, s->client_acc_p10);
    if (cfg->attack.mode) /* [attack] */
        fprintf(f, "  attack: {mode: %s, fraction: %.6g, boost: %.6g, attack_success: %.6g}\n", attack_mode_name(cfg->attack.mode),
                cfg->attack.fraction, cfg->attack.boost, s->attack_success);
    fprintf(f, "  config_train_hash: \"%016llx\"\n", (unsigned long long)config_train_hash(cfg));
}

/* Everything about the inputs, checked on every rank before any output exists. */
static fh_status check_inputs(int argc, char **argv, config_t *cfg, const char **cfg_path)
{
    config_defaults(cfg);
    if (argc < 2 || argv[1][0] == '-')
        return fh_error_set(FH_EINPUT, "run: expected CONFIG.ini as the first argument (see fedhpc run --help)");
    *cfg_path = argv[1];
    FH_TRY(config_load(cfg, argv[1]));
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--resume")) {
            /* --resume [PATH]: a following argument without '=' names the checkpoint */
            const char *p = i + 1 < argc && argv[i + 1][0] != '-' && !strchr(argv[i + 1], '=') ? argv[++i] : "auto";
            if (strlen(p) >= sizeof cfg->checkpoint.resume) return fh_error_set(FH_EINPUT, "run --resume: path too long");
            snprintf(cfg->checkpoint.resume, sizeof cfg->checkpoint.resume, "%s", p);
            continue;
        }
        if (argv[i][0] == '-')
            return fh_error_set(FH_EINPUT, "run: unknown option '%s' (see fedhpc run --help)", argv[i]);
        FH_TRY(config_override(cfg, argv[i]));
    }
    FH_TRY(config_validate(cfg, argv[1]));
    return config_check_paths(cfg);
}

static fh_status check_shape(const config_t *cfg, const io_data_meta *meta, int ranks)
{
    model_t m; /* the model must fit the data before any output exists */
    if (cfg->model.type == MODEL_ATTENTION) /* attention: item sets (src/model/attn.c) */
        FH_TRY(model_create_attn(&m, meta->features, meta->items, cfg->model.attn_dim, cfg->model.attn_heads, meta->classes));
    else
        FH_TRY(model_create(&m, (model_type)cfg->model.type, meta->features, meta->classes, cfg->model.hidden, cfg->model.nhidden));
    if (cfg->fl.algorithm == ALG_CENTRALIZED) {
        int32_t S = cfg->fl.central_shards;
        if (ranks > S)
            return fh_error_set(FH_EINPUT, "[fl] central_shards = %d but %d ranks: use at most %d ranks", S, ranks, S);
    } else if (ranks > meta->clients) {
        return fh_error_set(FH_EINPUT, "%s: %d clients, but %d ranks: run with at most %d ranks", cfg->data.file,
                            meta->clients, ranks, meta->clients);
    }
    return FH_OK;
}

/* [data] file prepared with --parties K (docs/data.md): every rank has read the aggregator's
 * file (metadata, row counts, test split); rank 0 keeps it, rank p + 1 opens party p's file and
 * no other. Needs K + 1 ranks and the FedAvg family. Then every rank checks its own file's
 * checksums (*bytes: summed). Collective. */
static fh_status open_parties(const config_t *cfg, const comm_t *w, io_data **data, io_data_meta *meta, int64_t *bytes)
{
    const int32_t K = meta->parties;
    if (meta->party != -1)
        return fh_error_set(FH_EINPUT, "[data] file = %s is party %d's file of a data set prepared with --parties; name the "
                            "aggregator's file (the --out FILE.h5 of prepare)", cfg->data.file, meta->party);
    if (w->size != K + 1)
        return fh_error_set(FH_EINPUT, "[data] file = %s: prepared for %d parties: run on %d ranks (rank 0 aggregates, rank p + 1 "
                            "holds party p's file), not %d", cfg->data.file, K, K + 1, w->size);
    if (fl_strategy_pick(cfg) != &fl_strategy_fedavg)
        return fh_error_set(FH_EINPUT, "[data] file = %s: per-party data files run with the FedAvg family only, not with "
                            "[fl] algorithm = centralized, [cluster] or [async] (they place clients on ranks by round)", cfg->data.file);
    /* the collective open is closed collectively; then each rank opens its one file alone */
    io_data_close(*data);
    *data = NULL;
    char path[CONFIG_PATH_MAX + 32];
    if (w->rank > 0) io_data_party_path(cfg->data.file, w->rank - 1, path, sizeof path);
    else snprintf(path, sizeof path, "%s", cfg->data.file);
    io_data_meta pm;
    fh_status st = io_data_open(path, NULL, data, &pm);
    if (w->rank > 0) {
        if (st == FH_OK && (pm.parties != K || pm.party != w->rank - 1 || pm.clients != meta->clients ||
                            pm.features != meta->features || pm.classes != meta->classes))
            st = fh_error_set(FH_EINPUT, "%s: not party %d's file of %s (parties %d, party %d, clients %d): mixed data sets "
                              "(re-run fedhpc prepare --parties)", path, w->rank - 1, cfg->data.file, pm.parties, pm.party, pm.clients);
    }
    *bytes = 0;
    if (st == FH_OK && cfg->data.verify) st = io_data_verify(*data, NULL, bytes); /* each its own file */
    FH_TRY(comm_agree(w, st));
    int64_t t[2] = {pm.train_rows, *bytes};
    FH_TRY(comm_allreduce_sum_i64(w, t, 2));
    meta->train_rows = t[0]; /* over the parties' files */
    *bytes = t[1];
    return FH_OK;
}

int cmd_run(int argc, char **argv, const comm_t *w)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            if (w->rank == 0) fputs(USAGE, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--help-config")) {
            if (w->rank == 0) config_print_help(stdout);
            return 0;
        }
    }
    config_t cfg;
    const char *cfg_path = NULL;
    fh_status st = comm_agree(w, check_inputs(argc, argv, &cfg, &cfg_path));
    if (st != FH_OK) return cli_report(w, "run", st);

    io_data *data = NULL;
    io_data_meta meta;
    st = io_data_open(cfg.data.file, w, &data, &meta);
    if (st == FH_OK) st = check_shape(&cfg, &meta, w->size);
    st = comm_agree(w, st);
    double verify_s = fh_wtime();
    int64_t verify_bytes = 0;
    if (st == FH_OK && meta.parties > 0) st = open_parties(&cfg, w, &data, &meta, &verify_bytes);
    else if (st == FH_OK && cfg.data.verify) st = io_data_verify(data, w, &verify_bytes); /* collective */
    verify_s = fh_wtime() - verify_s;
    if (st != FH_OK) {
        io_data_close(data);
        return cli_report(w, "run", st);
    }

    /* settings the data set caps: record what is used (config.ini); warn once when the value
     * was asked for (not the default) */
    if (cfg.train.clients_per_round > meta.clients) {
        if (w->rank == 0 && !config_key_is_default(&cfg, "train", "clients_per_round"))
            fprintf(stderr, "fedhpc run: warning: [train] clients_per_round = %d but %s has %d clients: using %d "
                    "(recorded in config.ini)\n", cfg.train.clients_per_round, cfg.data.file, meta.clients, meta.clients);
        cfg.train.clients_per_round = meta.clients;
    }
    if (cfg.async.concurrency > meta.clients) {
        if (w->rank == 0 && !config_key_is_default(&cfg, "async", "concurrency"))
            fprintf(stderr, "fedhpc run: warning: [async] concurrency = %d but %s has %d clients: using %d "
                    "(recorded in config.ini)\n", cfg.async.concurrency, cfg.data.file, meta.clients, meta.clients);
        cfg.async.concurrency = meta.clients;
    }
    if (meta.test_rows == 0 && w->rank == 0 && cfg.model.type < MODEL_LIGHTGCN) /* lightgcn, graphsage: recommend.csv */
        fprintf(stderr, "fedhpc run: warning: %s has no test rows (prepared with --test-frac 0): test loss, accuracy, "
                "F1 and AUC will be nan\n", cfg.data.file);
    if (!meta.checksums && cfg.data.verify && w->rank == 0)
        fprintf(stderr, "fedhpc run: note: %s has no checksums (written by an older fedhpc prepare): its contents are "
                "not verified; re-run fedhpc prepare to add them\n", cfg.data.file);
    fflush(stderr);

    run_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.cfg = &cfg;
    ctx.world = w;
    /* Open MPI hands ranks a pseudo-terminal even when mpirun's output goes to a file, so a
     * progress bar is drawn only outside mpirun; under mpirun, plain lines. */
    ctx.tty = isatty(STDOUT_FILENO) && !getenv("OMPI_COMM_WORLD_SIZE");
    ctx.last.test.loss = ctx.last.test.accuracy = ctx.last.test.f1 = ctx.last.test.auc = NAN;
    ctx.last.test.f1_minority = ctx.last.test.pr_auc = ctx.last.test.threshold = ctx.last.test.f1_minority_thr = NAN;
    ctx.last.client_acc_mean = ctx.last.client_acc_p10 = NAN;
    char path[CONFIG_PATH_MAX + 32];
    if (w->rank == 0) {
        st = cli_mkdirs(cfg.output.dir);
        snprintf(path, sizeof path, "%s/config.ini", cfg.output.dir);
        if (st == FH_OK) st = write_file_atomic(path, fill_config, &cfg);
        snprintf(ctx.metrics_path, sizeof ctx.metrics_path, "%s/metrics.csv", cfg.output.dir);
        if (st == FH_OK)
            printf("fedhpc run: %s on %s (%d clients, %s), %s, %d rounds, %d ranks -> %s\n",
                   config_algorithm_name(cfg.fl.algorithm), meta.dataset, meta.clients, meta.partition,
                   model_type_name((model_type)cfg.model.type), cfg.train.rounds, w->size, cfg.output.dir);
        if (st == FH_OK && cfg.privacy.mode == 1 && cfg.async.mode == 5) /* DP-FedBuff (issue 12) */
            printf("fedhpc run: DP-FedBuff: epsilon (metrics.csv, epsilon_budget) is %s ([privacy] fedbuff_accounting = %s)\n",
                   cfg.privacy.fedbuff_accounting == 0 ? "the bound without sampling, from the client in the most buffers"
                                            : "the sampled-Gaussian figure with q = buffer/clients, which assumes "
                                              "each buffer's clients are a uniform sample",
                   cfg.privacy.fedbuff_accounting == 0 ? "bound" : "sampled");
        if (st == FH_OK && cfg.privacy.mode != 0 && !cfg.privacy.noise_key[0])
            fprintf(stderr, "fedhpc run: warning: [privacy] noise_key is not set: the DP noise derives from [train] seed, "
                            "so anyone holding config.ini can regenerate it; epsilon holds only while the seed is secret "
                            "(fedhpc privacy --new-key FILE, docs/threat-model.md)\n");
        fflush(stdout);
    }
    st = comm_agree(w, st);
    fl_result res;
    memset(&res, 0, sizeof res);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    ctx.t_start = fh_wtime();
    if (st == FH_OK) st = fl_train(&cfg, w, data, &meta, on_round, &ctx, &res);
    double train_s = fh_wtime() - ctx.t_start;
    if (ctx.metrics) fclose(ctx.metrics);
    io_data_close(data);

    if (st == FH_ESTOPPED) {
        if (w->rank == 0) {
            fprintf(stderr, "fedhpc run: %s (exit status 3: resubmit with --resume)\n", fh_error_msg());
            fflush(stderr);
        }
        fl_result_free(&res);
        return EXIT_STOPPED;
    }
    if (st == FH_OK && w->rank == 0 && !ctx.metrics && res.notice[0])
        fprintf(stderr, "fedhpc run: %s (nothing left to train)\n", res.notice);
    yaml_arg ya = {&ctx, &meta, &res, 0, 0, 0, verify_bytes, verify_s};
    if (st == FH_OK) st = comm_stats(w, train_s, &ya.tmin, &ya.tavg, &ya.tmax);
    if (st == FH_OK && w->rank == 0) {
        io_model_info info;
        memset(&info, 0, sizeof info);
        snprintf(info.algorithm, sizeof info.algorithm, "%s", config_algorithm_name(cfg.fl.algorithm));
        info.rounds = cfg.train.rounds;
        info.seed = cfg.train.seed;
        snprintf(info.data_file, sizeof info.data_file, "%s", cfg.data.file);
        snprintf(path, sizeof path, "%s/model.h5", cfg.output.dir);
        st = io_model_write(path, &res.model, res.params, &info);
        snprintf(path, sizeof path, "%s/run.yaml", cfg.output.dir);
        if (st == FH_OK) st = write_file_atomic(path, fill_yaml, &ya);
        if (st == FH_OK) {
            const fl_round_stats *s = &ctx.last;
            printf("\n%-22s %s\n", "summary", cfg.output.dir);
            printf("  %-20s %s (%s, %lld parameters)\n", "algorithm", config_algorithm_name(cfg.fl.algorithm),
                   model_type_name(res.model.type), (long long)res.model.nparams);
            printf("  %-20s %d\n", "rounds", s->round);
            printf("  %-20s %.4f\n", "test accuracy", s->test.accuracy);
            printf("  %-20s %.4f\n", "test macro-F1", s->test.f1);
            if (!isnan(s->test.auc)) printf("  %-20s %.4f\n", "test ROC-AUC", s->test.auc);
            if (!isnan(s->test.f1_minority)) /* credit study (docs/credit.md) */
                printf("  %-20s %.4f (argmax), PR-AUC %.4f\n", "test minority F1", s->test.f1_minority, s->test.pr_auc);
            if (!isnan(s->test.threshold))
                printf("  %-20s %.4f at threshold %.4g (chosen on the validation split)\n", "test minority F1",
                       s->test.f1_minority_thr, s->test.threshold);
            printf("  %-20s %.4f\n", "test loss", s->test.loss);
            if (!isnan(s->attack_success)) printf("  %-20s %.4f (%s)\n", "attack success", s->attack_success, attack_mode_name(cfg.attack.mode));
            if (!isnan(s->client_acc_mean))
                printf("  %-20s mean %.4f, 10th percentile %.4f\n", "client accuracy", s->client_acc_mean, s->client_acc_p10);
            printf("  %-20s %.2f s (ranks: min %.2f, max %.2f), %.3f s/round\n", "train time", ya.tavg, ya.tmin, ya.tmax,
                   ya.tmax / (cfg.train.rounds ? cfg.train.rounds : 1));
            printf("  %-20s config.ini metrics.csv model.h5 run.yaml\n", "files");
        }
    }
    st = comm_agree(w, st);
    fl_result_free(&res);
    return cli_report(w, "run", st);
}
