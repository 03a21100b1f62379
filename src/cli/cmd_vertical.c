/* `fedhpc prepare DATASET --vertical K` and `fedhpc vertical train|central` (docs/vertical.md). */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "fedhpc/data.h"
#include "fedhpc/io.h"
#include "fedhpc/rng.h"
#include "fedhpc/vfl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *PREP_USAGE =
    "usage: fedhpc prepare DATASET --vertical K --out OUT.h5 --seed S\n"
    "                      [--party-columns FILE] [--overlap F] [--own-frac G] [--test-frac T]\n"
    "                      [--label COL --positive VALUE] [--data-dir DIR]\n"
    "\n"
    "Vertical split (docs/vertical.md): the columns of a CSV data set go to K parties, each party\n"
    "writes OUT.party<p>.h5 with its customers' ids and its columns; party 0 (A) holds the label.\n"
    "DATASET: wa_churn (data/wa_churn.csv, label churn = Yes), credit_data (data/credit_data.csv,\n"
    "label Status = bad) or csv:PATH (--label, --positive required). Customer ids: C<row number>.\n"
    "  --party-columns FILE  lines 'P: COL COL ...' (columns listed nowhere are dropped; the label\n"
    "                        goes to party 0); without it: a seeded round-robin split of the columns\n"
    "  --overlap F           each party p >= 1 holds the ids of a random F of A's customers (0.8)\n"
    "  --own-frac G          ... plus G * rows customers of its own that A lacks (0.1)\n"
    "  --test-frac T         A marks a random T of its rows as held-out evaluation rows (0.2)\n";

typedef struct {
    const char *dataset, *out, *colfile, *label, *positive, *data_dir;
    long long parties, seed;
    double overlap, own_frac, test_frac;
} vprep_args;

static fh_status vprep_parse(int argc, char **argv, vprep_args *a)
{
    memset(a, 0, sizeof *a);
    a->seed = -1;
    a->overlap = 0.8;
    a->own_frac = 0.1;
    a->test_frac = 0.2;
    a->data_dir = "data";
    for (int i = 1; i < argc; i++) {
        const char *o, *v;
        FH_TRY(cli_arg("prepare", argc, argv, &i, &a->dataset, &o, &v));
        if (!o) continue;
        if (!strcmp(o, "--vertical")) FH_TRY(cli_parse_long("prepare", o, v, 2, VFL_MAX_PARTIES, &a->parties));
        else if (!strcmp(o, "--seed")) FH_TRY(cli_parse_long("prepare", o, v, 0, (long long)9e18, &a->seed));
        else if (!strcmp(o, "--overlap")) FH_TRY(cli_parse_double("prepare", o, v, 1e-9, 1.0, &a->overlap));
        else if (!strcmp(o, "--own-frac")) FH_TRY(cli_parse_double("prepare", o, v, 0.0, 0.9, &a->own_frac));
        else if (!strcmp(o, "--test-frac")) FH_TRY(cli_parse_double("prepare", o, v, 0.0, 0.9, &a->test_frac));
        else if (!strcmp(o, "--party-columns")) a->colfile = v;
        else if (!strcmp(o, "--out")) a->out = v;
        else if (!strcmp(o, "--label")) a->label = v;
        else if (!strcmp(o, "--positive")) a->positive = v;
        else if (!strcmp(o, "--data-dir")) a->data_dir = v;
        else return fh_error_set(FH_EINPUT, "prepare --vertical: unknown option '%s' (see fedhpc prepare --vertical 2 --help)", o);
    }
    if (!a->dataset) return fh_error_set(FH_EINPUT, "prepare: expected a DATASET (wa_churn, credit_data, csv:PATH)");
    if (!a->out) return fh_error_set(FH_EINPUT, "prepare: --out FILE.h5 is required");
    if (a->seed < 0) return fh_error_set(FH_EINPUT, "prepare: --seed S is required");
    FH_TRY(fh_path_check("prepare --out", a->out, FH_PATH_WRITE_FILE));
    if (a->colfile) FH_TRY(fh_path_check("prepare --party-columns", a->colfile, FH_PATH_READ_FILE));
    return FH_OK;
}

static fh_status vprep(const vprep_args *a)
{
    data_csv_opts co = {.label = a->label, .positive = a->positive, .seed = (uint64_t)a->seed};
    char path[2048];
    if (!strcmp(a->dataset, "wa_churn") || !strcmp(a->dataset, "credit_data")) {
        int wa = !strcmp(a->dataset, "wa_churn");
        snprintf(path, sizeof path, "%s/%s.csv", a->data_dir, a->dataset);
        if (!co.label) co.label = wa ? "churn" : "Status";
        if (!co.positive) co.positive = wa ? "Yes" : "bad";
    } else if (!strncmp(a->dataset, "csv:", 4)) {
        if (!co.label || !co.positive)
            return fh_error_set(FH_EINPUT, "prepare %s: --label COLUMN and --positive VALUE are required", a->dataset);
        snprintf(path, sizeof path, "%s", a->dataset + 4);
    } else {
        return fh_error_set(FH_EINPUT, "prepare --vertical: unknown DATASET '%s' (expected wa_churn, credit_data or csv:PATH)", a->dataset);
    }
    FH_TRY(fh_path_check("prepare DATASET", path, FH_PATH_READ_FILE));
    data_set ds;
    memset(&ds, 0, sizeof ds);
    FH_TRY(data_load_csv(path, &co, &ds));
    const data_encoding *e = ds.enc;
    const int32_t K = (int32_t)a->parties;
    const int64_t n = ds.train.n;
    int32_t *col_party = fh_calloc((size_t)e->ncols, sizeof *col_party);
    uint8_t *holds = fh_calloc((size_t)(n * K), 1);
    fh_status st = col_party && holds ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory");
    if (st == FH_OK)
        st = a->colfile ? vfl_columns_file(a->colfile, e, K, col_party) : vfl_columns_seeded(e, K, (uint64_t)a->seed, col_party);
    if (st == FH_OK) st = vfl_overlap(n, K, a->overlap, a->own_frac, (uint64_t)a->seed, holds);
    const int64_t tag = vfl_tag(ds.name[0] ? a->dataset : a->dataset, (uint64_t)a->seed, K, a->overlap);
    char pp[2100];
    int32_t p = 0;
    for (; st == FH_OK && p < K; p++) {
        vfl_party_data pd;
        memset(&pd, 0, sizeof pd);
        pd.parties = K;
        pd.party = p;
        pd.has_label = p == 0;
        pd.seed = a->seed;
        pd.tag = tag;
        int32_t *feat = fh_calloc((size_t)ds.train.d, sizeof *feat);
        int32_t d = 0;
        for (int32_t j = 0; feat && j < e->ncols; j++) {
            if (col_party[j] != p || e->first_feature[j] < 0 || e->kind[j] == COL_LABEL) continue;
            int32_t w = e->kind[j] == COL_CATEGORICAL ? e->ncat[j] : 1;
            for (int32_t k = 0; k < w; k++) feat[d++] = e->first_feature[j] + k;
        }
        int64_t rows = 0;
        for (int64_t i = 0; i < n; i++) rows += holds[(int64_t)p * n + i];
        /* each party's rows in an order of its own (the common order comes from sorting ids) */
        int64_t *order = fh_calloc((size_t)rows, sizeof *order);
        pd.d = d;
        pd.rows = rows;
        pd.ids = fh_calloc((size_t)rows, sizeof *pd.ids);
        pd.x = fh_calloc((size_t)(rows * (d ? d : 1)), sizeof *pd.x);
        char(*names)[VFL_NAME_BYTES] = fh_calloc((size_t)(d ? d : 1), sizeof *names);
        if (p == 0) {
            pd.y = fh_calloc((size_t)rows, sizeof *pd.y);
            pd.test = fh_calloc((size_t)rows, 1);
        }
        if (!feat || !order || !pd.ids || !pd.x || !names || (p == 0 && (!pd.y || !pd.test))) {
            st = fh_error_set(FH_ENOMEM, "out of memory");
        } else {
            int64_t m = 0;
            for (int64_t i = 0; i < n; i++)
                if (holds[(int64_t)p * n + i]) order[m++] = i;
            rng_t r = rng_stream((uint64_t)a->seed, (uint64_t)p, 3, RNG_PARTITION);
            rng_shuffle_i64(&r, order, (size_t)rows);
            rng_t rt = rng_stream((uint64_t)a->seed, 0, 3, RNG_SPLIT);
            for (int64_t k = 0; k < rows; k++) {
                int64_t i = order[k];
                snprintf(pd.ids[k], VFL_ID_BYTES, "C%06lld", (long long)(i + 1));
                for (int32_t f = 0; f < d; f++) pd.x[k * d + f] = (double)ds.train.x[i * ds.train.d + feat[f]];
                if (p == 0) {
                    pd.y[k] = ds.train.y[i];
                    pd.test[k] = 0;
                }
            }
            if (p == 0) { /* the held-out rows: a random T of A's rows, drawn in data-row order */
                uint8_t *t = fh_calloc((size_t)n, 1);
                if (!t) st = fh_error_set(FH_ENOMEM, "out of memory");
                for (int64_t i = 0; t && i < n; i++)
                    if (holds[i]) t[i] = rng_uniform(&rt) < a->test_frac;
                for (int64_t k = 0; t && k < rows; k++) pd.test[k] = t[order[k]];
                free(t);
            }
            for (int32_t f = 0; f < d; f++) snprintf(names[f], VFL_NAME_BYTES, "%s", e->feature_name[feat[f]]);
            io_data_party_path(a->out, p, pp, sizeof pp);
            if (st == FH_OK) st = vfl_party_write(pp, &pd, names);
            if (st == FH_OK)
                printf("prepare: %s party %d -> %s: %lld customers, %d features%s\n", a->dataset, p, pp, (long long)rows, d,
                       p == 0 ? " + label" : "");
        }
        free(feat);
        free(order);
        free(names);
        vfl_party_free(&pd);
    }
    if (st == FH_OK) { /* evaluation only: the labels of the customers A lacks (FTL table) */
        vfl_party_data ev;
        memset(&ev, 0, sizeof ev);
        ev.parties = K;
        ev.has_label = 1;
        ev.d = 1;
        ev.seed = a->seed;
        ev.tag = tag;
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++) m += !holds[i];
        ev.rows = m;
        ev.ids = fh_calloc((size_t)m, sizeof *ev.ids);
        ev.x = fh_calloc((size_t)m, sizeof *ev.x);
        ev.y = fh_calloc((size_t)m, sizeof *ev.y);
        ev.test = fh_calloc((size_t)m, 1);
        char names[1][VFL_NAME_BYTES] = {"none"};
        if (!ev.ids || !ev.x || !ev.y || !ev.test) st = fh_error_set(FH_ENOMEM, "out of memory");
        rng_t rh = rng_stream((uint64_t)a->seed, 0, 4, RNG_SPLIT);
        for (int64_t i = 0, k = 0; st == FH_OK && i < n; i++) {
            if (holds[i]) continue;
            snprintf(ev.ids[k], VFL_ID_BYTES, "C%06lld", (long long)(i + 1));
            ev.y[k] = ds.train.y[i];
            ev.test[k] = rng_uniform(&rh) < 0.5; /* 1: evaluation half, 0: training half (oracle) */
            k++;
        }
        char base[2100];
        snprintf(base, sizeof base, "%s", a->out);
        char *dot = strrchr(base, '.');
        if (dot && !strcmp(dot, ".h5")) *dot = 0;
        snprintf(pp, sizeof pp, "%.2000s.eval.h5", base);
        if (st == FH_OK) st = vfl_party_write(pp, &ev, names);
        if (st == FH_OK) printf("prepare: evaluation labels of the %lld customers party 0 lacks -> %s\n", (long long)m, pp);
        vfl_party_free(&ev);
    }
    if (st != FH_OK)
        for (int32_t q = 0; q < p; q++) {
            io_data_party_path(a->out, q, pp, sizeof pp);
            unlink(pp);
        }
    free(col_party);
    free(holds);
    data_free(&ds);
    return st;
}

int cmd_prepare_vertical(int argc, char **argv, const comm_t *world)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            if (world->rank == 0) fputs(PREP_USAGE, stdout);
            return 0;
        }
    vprep_args a;
    fh_status st = vprep_parse(argc, argv, &a);
    if (st == FH_OK && world->rank == 0) st = vprep(&a);
    st = comm_agree(world, st);
    return cli_report(world, "prepare", st);
}

/* ---- fedhpc vertical ------------------------------------------------------------------------ */
static const char *VUSAGE =
    "usage: fedhpc vertical train OUT.h5 --parties K --out DIR [options]   (mpirun -np >= K)\n"
    "       fedhpc vertical central OUT.h5 --parties K --out DIR [options] (one process)\n"
    "\n"
    "Vertical FL on the party files of `fedhpc prepare DATASET --vertical K --out OUT.h5`\n"
    "(docs/vertical.md): party p runs on rank p and reads only OUT.party<p>.h5; PSI of the customer\n"
    "ids, then full-batch training on the common customers. `central` trains the same model on the\n"
    "joined columns in one process (the reference).\n"
    "  --model lr|splitnn|ftl logistic regression (default), split neural network, or federated\n"
    "                         transfer learning (2 parties; scores B's customers A lacks)\n"
    "  --steps N              full-batch steps (default 20)\n"
    "  --lr L                 learning rate (default 0.5 for lr, 0.1 for splitnn and ftl)\n"
    "  --hidden H             split NN: width of every bottom model and of the top hidden layer (16)\n"
    "  --seed S               split NN initialisation (default 1)\n"
    "  --ftl-gamma G          FTL: weight of the representation alignment loss (0.1)\n"
    "  --joined-mlp           central split NN: one bottom model over all joined columns (a plain\n"
    "                         MLP) instead of one bottom model per party's columns\n"
    "  --key-bits B           Paillier modulus bits (default 2048; 512/1024 for tests only)\n"
    "  --checkpoint-every K   write DIR/party<p>.ckpt.h5 every K steps\n"
    "  --stop-after S         stop after step S (with a checkpoint there)\n"
    "  --resume               continue from DIR/party<p>.ckpt.h5\n"
    "Writes DIR/metrics.csv (step,loss,test_auc) and DIR/party<p>.model.h5.\n";

static fh_status vparse(int argc, char **argv, vfl_opts *o)
{
    memset(o, 0, sizeof *o);
    o->steps = 20;
    o->lr = -1;
    o->key_bits = 2048;
    o->hidden = 16;
    o->seed = 1;
    o->ftl_gamma = 0.1;
    for (int i = 2; i < argc; i++) {
        const char *s = argv[i];
        if (s[0] != '-') {
            if (o->data) return fh_error_set(FH_EINPUT, "vertical: unexpected argument '%s'", s);
            o->data = s;
            continue;
        }
        if (!strcmp(s, "--resume")) {
            o->resume = 1;
            continue;
        }
        if (!strcmp(s, "--joined-mlp")) {
            o->joined = 1;
            continue;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return fh_error_set(FH_EINPUT, "vertical %s: expected a value", s);
        i++;
        long long t;
        if (!strcmp(s, "--parties")) { FH_TRY(cli_parse_long("vertical", s, v, 2, VFL_MAX_PARTIES, &t)); o->parties = (int32_t)t; }
        else if (!strcmp(s, "--steps")) { FH_TRY(cli_parse_long("vertical", s, v, 1, 1000000, &t)); o->steps = (int32_t)t; }
        else if (!strcmp(s, "--hidden")) { FH_TRY(cli_parse_long("vertical", s, v, 1, 4096, &t)); o->hidden = (int32_t)t; }
        else if (!strcmp(s, "--seed")) { FH_TRY(cli_parse_long("vertical", s, v, 0, (long long)9e18, &t)); o->seed = (uint64_t)t; }
        else if (!strcmp(s, "--key-bits")) { FH_TRY(cli_parse_long("vertical", s, v, 512, 8192, &t)); o->key_bits = (int)t; }
        else if (!strcmp(s, "--checkpoint-every")) { FH_TRY(cli_parse_long("vertical", s, v, 0, 1000000, &t)); o->ckpt_every = (int32_t)t; }
        else if (!strcmp(s, "--stop-after")) { FH_TRY(cli_parse_long("vertical", s, v, 0, 1000000, &t)); o->stop_after = (int32_t)t; }
        else if (!strcmp(s, "--ftl-gamma")) FH_TRY(cli_parse_double("vertical", s, v, 0.0, 1e6, &o->ftl_gamma));
        else if (!strcmp(s, "--lr")) FH_TRY(cli_parse_double("vertical", s, v, 1e-9, 1e3, &o->lr));
        else if (!strcmp(s, "--out")) o->out_dir = v;
        else if (!strcmp(s, "--model")) {
            if (!strcmp(v, "lr")) o->model = 0;
            else if (!strcmp(v, "splitnn")) o->model = 1;
            else if (!strcmp(v, "ftl")) o->model = 2;
            else return fh_error_set(FH_EINPUT, "vertical --model '%s': expected lr, splitnn or ftl", v);
        } else return fh_error_set(FH_EINPUT, "vertical: unknown option '%s' (see fedhpc vertical --help)", s);
    }
    if (o->model == 2 && (o->resume || o->ckpt_every || o->stop_after))
        return fh_error_set(FH_EINPUT, "vertical --model ftl: no checkpoints (--resume, --checkpoint-every, --stop-after)");
    if (o->key_bits % 16) return fh_error_set(FH_EINPUT, "vertical --key-bits %d: expected a multiple of 16", o->key_bits);
    if (o->lr < 0) o->lr = o->model ? 0.1 : 0.5;
    if (!o->data) return fh_error_set(FH_EINPUT, "vertical: expected the data file OUT.h5 (as given to prepare --out)");
    if (!o->parties) return fh_error_set(FH_EINPUT, "vertical: --parties K is required");
    if (!o->out_dir) return fh_error_set(FH_EINPUT, "vertical: --out DIR is required");
    if (o->stop_after && o->ckpt_every == 0) o->ckpt_every = o->stop_after;
    FH_TRY(fh_path_check("vertical --out", o->out_dir, FH_PATH_WRITE_DIR));
    return FH_OK;
}

int cmd_vertical(int argc, char **argv, const comm_t *world)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            if (world->rank == 0) fputs(VUSAGE, stdout);
            return 0;
        }
    const char *sub = argc > 1 ? argv[1] : "";
    vfl_opts o;
    fh_status st = FH_OK;
    if (strcmp(sub, "train") && strcmp(sub, "central"))
        st = fh_error_set(FH_EINPUT, "vertical: expected 'train' or 'central' (see fedhpc vertical --help)");
    if (st == FH_OK) st = vparse(argc, argv, &o);
    if (st == FH_OK && world->rank == 0) st = cli_mkdirs(o.out_dir);
    st = comm_agree(world, st);
    if (st != FH_OK) return cli_report(world, "vertical", st);
    vfl_result res;
    memset(&res, 0, sizeof res);
    if (!strcmp(sub, "central")) {
        if (world->rank == 0) st = vfl_central(&o, &res);
        st = comm_agree(world, st);
    } else {
        st = vfl_train(world, &o, &res);
    }
    if (st == FH_OK && world->rank == 0)
        printf("vertical %s: %lld common customers (%lld train, %lld test); loss %.9f, test AUC %.4f; %.4f s/step\n", sub,
               (long long)res.n_common, (long long)res.n_train, (long long)res.n_test, res.loss, res.test_auc,
               res.sec_per_step);
    return cli_report(world, "vertical", st);
}
