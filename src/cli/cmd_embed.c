/* `fedhpc embed CONFIG.ini [options] [section.key=value ...]` (issue 15, docs/embed.md): customer
 * embeddings of a trained model and their federated clustering.
 *
 * Clients are placed on ranks in contiguous row-balanced blocks (fl_assign_ranks); each rank
 * reads only its clients' rows and computes their embeddings (model_embed) there, client by
 * client, so a row's embedding is the same whatever -np. Federated k-means, the choice of k,
 * the silhouette, the PCA and the cluster profiles use only exact aggregates
 * (src/fl/embed.c). Outputs in --out DIR ([output] dir by default):
 *   embeddings.h5         per row: embedding, cluster, 2-D PCA (src/io/embed_io.c)
 *   clusters.csv, clusters.md   the cluster table (size, silhouette, labels, top features)
 *   cluster_features.csv  every feature's mean per cluster and overall
 *   k_selection.csv       silhouette and inertia for every k tried (automatic k)
 *   embed_pca.csv, embed_pca.png  the federated 2-D histogram of the PCA, drawn by gnuplot */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "fedhpc/config.h"
#include "fedhpc/embed.h"
#include "fedhpc/fl.h"
#include "fedhpc/io.h"
#include "fedhpc/sample.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *USAGE =
    "usage: fedhpc embed CONFIG.ini [--model FILE.h5] [--k K | --k-min A --k-max B] [--iters N]\n"
    "                    [--top N] [--min-cell N] [--out DIR] [section.key=value ...]\n"
    "\n"
    "Customer embeddings and their federated clustering (docs/embed.md). CONFIG.ini is the\n"
    "configuration `fedhpc run` trained with; the model is [output] dir/model.h5 unless --model\n"
    "names one. Every rank computes the embeddings of the clients it holds (mlp: the last hidden\n"
    "layer's activations); rows never leave their rank. Federated k-means (k-means++ seeding from\n"
    "the counter-based streams, exact fixed-point sums and counts) clusters them; without --k, k\n"
    "is chosen in [--k-min, --k-max] (default 2..8) by the highest federated (simplified)\n"
    "silhouette. Bit-identical outputs for any -np.\n"
    "\n"
    "options:\n"
    "  --model FILE.h5   the trained model (default: [output] dir/model.h5)\n"
    "  --k K             a fixed number of clusters (2..64)\n"
    "  --k-min A, --k-max B   the range of k tried (2 <= A <= B <= 64; default 2 and 8)\n"
    "  --iters N         at most N Lloyd iterations (default 100)\n"
    "  --top N           features listed per cluster in the table (default 5)\n"
    "  --min-cell N      the plot leaves out histogram cells of fewer than N customers (default 1)\n"
    "  --out DIR         output directory (default: [output] dir)\n"
    "\n"
    "writes DIR/embeddings.h5 (per training row: embedding, cluster, PCA), clusters.csv,\n"
    "clusters.md, cluster_features.csv, k_selection.csv, embed_pca.csv and embed_pca.png.\n"
    "exit status: 0 done, 1 runtime error, 2 bad input (config, option, model or data file).\n";

typedef struct {
    config_t cfg;
    char model[CONFIG_PATH_MAX + 16];
    char out[CONFIG_PATH_MAX];
    int32_t k, kmin, kmax, iters, top, min_cell;
} embed_opts;

static fh_status opt_int(const char *opt, const char *v, long long lo, long long hi, int32_t *out)
{
    long long x;
    FH_TRY(cli_parse_long("embed", opt, v, lo, hi, &x));
    *out = (int32_t)x;
    return FH_OK;
}

static fh_status check_inputs(int argc, char **argv, embed_opts *o)
{
    memset(o, 0, sizeof *o);
    config_defaults(&o->cfg);
    o->kmin = 2;
    o->kmax = 8;
    o->iters = 100;
    o->top = 5;
    o->min_cell = 1;
    if (argc < 2 || argv[1][0] == '-')
        return fh_error_set(FH_EINPUT, "embed: expected CONFIG.ini as the first argument (see fedhpc embed --help)");
    FH_TRY(config_load(&o->cfg, argv[1]));
    int kset = 0, rangeset = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-') {
            FH_TRY(config_override(&o->cfg, a));
            continue;
        }
        if (i + 1 >= argc) return fh_error_set(FH_EINPUT, "embed: option %s needs a value (see fedhpc embed --help)", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--model")) snprintf(o->model, sizeof o->model, "%s", v);
        else if (!strcmp(a, "--out")) snprintf(o->out, sizeof o->out, "%s", v);
        else if (!strcmp(a, "--k")) {
            FH_TRY(opt_int("--k", v, 2, EMBED_K_MAX, &o->k));
            kset = 1;
        } else if (!strcmp(a, "--k-min")) {
            FH_TRY(opt_int("--k-min", v, 2, EMBED_K_MAX, &o->kmin));
            rangeset = 1;
        } else if (!strcmp(a, "--k-max")) {
            FH_TRY(opt_int("--k-max", v, 2, EMBED_K_MAX, &o->kmax));
            rangeset = 1;
        } else if (!strcmp(a, "--iters")) FH_TRY(opt_int("--iters", v, 1, 100000, &o->iters));
        else if (!strcmp(a, "--top")) FH_TRY(opt_int("--top", v, 1, 100, &o->top));
        else if (!strcmp(a, "--min-cell")) FH_TRY(opt_int("--min-cell", v, 1, 1000000000, &o->min_cell));
        else return fh_error_set(FH_EINPUT, "embed: unknown option '%s' (see fedhpc embed --help)", a);
    }
    if (kset && rangeset) return fh_error_set(FH_EINPUT, "embed: --k fixes k; expected either --k or --k-min/--k-max");
    if (o->kmin > o->kmax)
        return fh_error_set(FH_EINPUT, "embed: --k-min = %d > --k-max = %d: expected k_min <= k_max", o->kmin, o->kmax);
    FH_TRY(config_validate(&o->cfg, argv[1]));
    FH_TRY(fh_path_check("[data] file", o->cfg.data.file, FH_PATH_READ_FILE));
    const int model_given = o->model[0] != 0;
    if (!model_given) snprintf(o->model, sizeof o->model, "%s/model.h5", o->cfg.output.dir);
    FH_TRY(fh_path_check(model_given ? "--model" : "the model ([output] dir/model.h5; --model names another)", o->model,
                         FH_PATH_READ_FILE));
    if (!o->out[0]) snprintf(o->out, sizeof o->out, "%s", o->cfg.output.dir);
    FH_TRY(fh_path_check("--out", o->out, FH_PATH_WRITE_DIR));
    return FH_OK;
}

/* CSV field: quoted, quotes doubled */
static void csv_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* Markdown cell: '|' escaped */
static void md_str(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '|') fputc('\\', f);
        fputc(*s, f);
    }
}

typedef struct {
    int32_t k, F, C, D, G, nk;
    int items; /* item-set data: the features are the items (1: the customer holds it) */
    int64_t N;
    const double *cmean, *omean, *csil, *ksil, *kin, *kch;
    const double *mul, *add; /* [F] feature value in the data's units: x * mul + add */
    const int64_t *sizes, *lcount, *grid;
    double sil, lo[2], hi[2], var[2], totvar;
    char (*fname)[64], (*cname)[64];
    embed_km_stats S;
} embed_report;

/* top features of cluster q by sign * (cluster mean - overall mean), descending (sign -1: the
 * most under-represented); ties: lower index */
static void top_features(const embed_report *R, int32_t q, int32_t top, double sign, int32_t *idx)
{
    for (int32_t t = 0; t < top; t++) {
        int32_t b = -1;
        for (int32_t j = 0; j < R->F; j++) {
            int used = 0;
            for (int32_t u = 0; u < t; u++) used |= idx[u] == j;
            if (used) continue;
            const double d = sign * (R->cmean[(size_t)q * R->F + j] - R->omean[j]);
            if (b < 0 || d > sign * (R->cmean[(size_t)q * R->F + b] - R->omean[b])) b = j;
        }
        idx[t] = b;
    }
}

/* the features of idx as "name cluster (all); ..." in the data's units */
static void md_features(FILE *f, const embed_report *R, int32_t q, const int32_t *idx, int32_t top)
{
    for (int32_t t = 0; t < top; t++) {
        const int32_t j = idx[t];
        const double cm = R->cmean[(size_t)q * R->F + j] * R->mul[j] + R->add[j], om = R->omean[j] * R->mul[j] + R->add[j];
        fprintf(f, "%s", t ? "; " : "");
        md_str(f, R->fname[j]);
        fprintf(f, " %.3f (%.3f)", fabs(cm) < 5e-4 ? 0.0 : cm, fabs(om) < 5e-4 ? 0.0 : om); /* no "-0.000" */
    }
}

static fh_status write_reports(const embed_opts *o, const embed_report *R)
{
    char path[CONFIG_PATH_MAX + 64];
    const int32_t k = R->k, F = R->F, C = R->C, top = o->top < F ? o->top : F;
    int32_t *idx = malloc((size_t)top * sizeof *idx);
    FH_CHECK_ALLOC(idx);
    fh_status st = FH_OK;
    /* clusters.csv */
    snprintf(path, sizeof path, "%s/clusters.csv", o->out);
    FILE *f = fopen(path, "w");
    if (!f) st = fh_error_set(FH_EIO, "%s: cannot write", path);
    if (f) {
        fprintf(f, "cluster,size,share,silhouette");
        for (int32_t c = 0; c < C; c++) {
            fprintf(f, ",");
            char h[96];
            snprintf(h, sizeof h, "share_%s", R->cname[c]);
            csv_str(f, h);
        }
        fprintf(f, ",top_features,bottom_features\n");
        for (int32_t q = 0; q < k; q++) {
            fprintf(f, "%d,%lld,%.6f,%.6f", q, (long long)R->sizes[q], (double)R->sizes[q] / (double)R->N, R->csil[q]);
            for (int32_t c = 0; c < C; c++)
                fprintf(f, ",%.6f", R->sizes[q] ? (double)R->lcount[(size_t)q * C + c] / (double)R->sizes[q] : NAN);
            for (int sg = 1; sg >= -1; sg -= 2) {
                top_features(R, q, top, sg, idx);
                char buf[64 * 100 + 100] = "";
                for (int32_t t = 0; t < top; t++) {
                    strcat(buf, t ? ";" : "");
                    strncat(buf, R->fname[idx[t]], 63);
                }
                fputc(',', f);
                csv_str(f, buf);
            }
            fputc('\n', f);
        }
        if (fclose(f) != 0 && st == FH_OK) st = fh_error_set(FH_EIO, "%s: cannot write", path);
    }
    /* cluster_features.csv */
    snprintf(path, sizeof path, "%s/cluster_features.csv", o->out);
    if (st == FH_OK && !(f = fopen(path, "w"))) st = fh_error_set(FH_EIO, "%s: cannot write", path);
    if (st == FH_OK) {
        fprintf(f, "cluster,feature,cluster_mean,overall_mean,difference,cluster_mean_data,overall_mean_data\n");
        for (int32_t q = 0; q < k; q++)
            for (int32_t j = 0; j < F; j++) {
                const double cm = R->cmean[(size_t)q * F + j];
                fprintf(f, "%d,", q);
                csv_str(f, R->fname[j]);
                fprintf(f, ",%.6g,%.6g,%.6g,%.6g,%.6g\n", cm, R->omean[j], cm - R->omean[j], cm * R->mul[j] + R->add[j],
                        R->omean[j] * R->mul[j] + R->add[j]);
            }
        if (fclose(f) != 0) st = fh_error_set(FH_EIO, "%s: cannot write", path);
    }
    /* k_selection.csv */
    snprintf(path, sizeof path, "%s/k_selection.csv", o->out);
    if (st == FH_OK && !(f = fopen(path, "w"))) st = fh_error_set(FH_EIO, "%s: cannot write", path);
    if (st == FH_OK) {
        fprintf(f, "k,silhouette,inertia,calinski_harabasz,chosen\n");
        for (int32_t i = 0; i < R->nk; i++) {
            const int32_t kk = o->k ? o->k : o->kmin + i;
            fprintf(f, "%d,%.6f,%.6g,%.6g,%d\n", kk, R->ksil[i], R->kin[i], R->kch[i], kk == k);
        }
        if (fclose(f) != 0) st = fh_error_set(FH_EIO, "%s: cannot write", path);
    }
    /* clusters.md */
    snprintf(path, sizeof path, "%s/clusters.md", o->out);
    if (st == FH_OK && !(f = fopen(path, "w"))) st = fh_error_set(FH_EIO, "%s: cannot write", path);
    if (st == FH_OK) {
        fprintf(f, "# Customer clusters\n\n");
        fprintf(f, "%lld customers (rows), embeddings of width %d, k = %d (%s), mean silhouette %.4f "
                   "(simplified, federated), inertia %.6g, %d Lloyd iteration(s)%s, %d empty cluster(s) re-seeded.\n\n",
                (long long)R->N, R->D, k, o->k ? "fixed by --k" : "highest silhouette", R->sil, R->S.inertia, R->S.iters,
                R->S.converged ? ", converged" : "", R->S.reseeded);
        fprintf(f, "| cluster | customers | share | silhouette | %s | more than average: cluster mean (all) | "
                   "less than average: cluster mean (all) |\n",
                C == 2 ? "share of label" : "top label (share)");
        fprintf(f, "|---:|---:|---:|---:|---|---|---|\n");
        for (int32_t q = 0; q < k; q++) {
            fprintf(f, "| %d | %lld | %.1f%% | %.3f | ", q, (long long)R->sizes[q], 100.0 * R->sizes[q] / R->N, R->csil[q]);
            int32_t bc = C == 2 ? 1 : 0;
            for (int32_t c = 1; C != 2 && c < C; c++)
                if (R->lcount[(size_t)q * C + c] > R->lcount[(size_t)q * C + bc]) bc = c;
            md_str(f, R->cname[bc]);
            fprintf(f, " %.1f%% | ", R->sizes[q] ? 100.0 * R->lcount[(size_t)q * C + bc] / R->sizes[q] : 0.0);
            top_features(R, q, top, 1, idx);
            md_features(f, R, q, idx, top);
            fprintf(f, " | ");
            top_features(R, q, top, -1, idx);
            md_features(f, R, q, idx, top);
            fprintf(f, " |\n");
        }
        if (R->items)
            fprintf(f, "\nItems ranked by the share of the cluster's customers holding them - the share among all "
                       "customers, largest and smallest (the cluster's purchase profile).\n");
        else
            fprintf(f, "\nFeatures ranked by cluster mean - overall mean of the model's inputs (standardised numeric "
                       "columns, one-hot shares), largest and smallest; the values shown are in the data's units "
                       "(for a 0/1 or one-hot column: the share of customers with it).\n");
        if (fclose(f) != 0) st = fh_error_set(FH_EIO, "%s: cannot write", path);
    }
    /* embed_pca.csv: per cell of the histogram, its centre, majority cluster and count */
    snprintf(path, sizeof path, "%s/embed_pca.csv", o->out);
    if (st == FH_OK && !(f = fopen(path, "w"))) st = fh_error_set(FH_EIO, "%s: cannot write", path);
    if (st == FH_OK) {
        const int32_t G = R->G;
        fprintf(f, "pc1,pc2,cluster,count\n");
        for (int32_t iy = 0; iy < G; iy++)
            for (int32_t ix = 0; ix < G; ix++) {
                const int64_t *cell = R->grid + ((size_t)iy * G + ix) * k;
                int64_t tot = 0;
                int32_t b = 0;
                for (int32_t q = 0; q < k; q++) {
                    tot += cell[q];
                    if (cell[q] > cell[b]) b = q;
                }
                if (!tot || tot < o->min_cell) continue; /* --min-cell: cells of fewer customers not drawn */
                fprintf(f, "%.6g,%.6g,%d,%lld\n", R->lo[0] + (ix + 0.5) * (R->hi[0] - R->lo[0]) / G,
                        R->lo[1] + (iy + 0.5) * (R->hi[1] - R->lo[1]) / G, b, (long long)tot);
            }
        if (fclose(f) != 0) st = fh_error_set(FH_EIO, "%s: cannot write", path);
    }
    /* embed_pca.png with gnuplot (temp file + rename) */
    if (st == FH_OK) {
        char png[CONFIG_PATH_MAX + 64], tmp[CONFIG_PATH_MAX + 96];
        snprintf(png, sizeof png, "%s/embed_pca.png", o->out);
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld.png", png, (long)getpid());
        FILE *g = popen("gnuplot", "w");
        if (!g) st = fh_error_set(FH_EIO, "cannot start gnuplot (install gnuplot-nox)");
        if (g) {
            const double tv = R->totvar > 0 ? R->totvar : 1;
            fprintf(g, "set terminal pngcairo size 900,700 noenhanced\nset output '%s'\n"
                       "set datafile separator ','\nset key outside right\n"
                       "set title 'Customer embeddings: PCA, coloured by cluster (k = %d; point size ~ log customers per cell)'\n"
                       "set xlabel 'PC1 (%.1f%% of variance)'\nset ylabel 'PC2 (%.1f%% of variance)'\n"
                       "set xrange [%.9g:%.9g]\nset yrange [%.9g:%.9g]\n"
                       "plot for [c=0:%d] '%s' skip 1 using ($3==c?$1:1/0):2:(0.4+0.35*log(1+$4)) "
                       "with points pt 7 ps variable lc c+1 title sprintf('cluster %%d', c)\n",
                    tmp, k, 100 * R->var[0] / tv, 100 * R->var[1] / tv, R->lo[0], R->hi[0], R->lo[1], R->hi[1], k - 1, path);
            const int rc = pclose(g);
            if (rc != 0 || access(tmp, R_OK) != 0 || rename(tmp, png) != 0) {
                unlink(tmp);
                st = fh_error_set(FH_EIO, "gnuplot failed to draw %s (is gnuplot-nox installed?)", png);
            }
        }
    }
    free(idx);
    return st;
}

static fh_status embed_run(const embed_opts *o, io_data *data, const io_data_meta *meta, const comm_t *w)
{
    const config_t *cfg = &o->cfg;
    fl_result res;
    FH_TRY(fl_model_setup(cfg, data, meta, &res));
    model_t *m = &res.model;
    const int32_t D = model_embed_dim(m), F = meta->features, C = meta->clients, CL = meta->classes;
    fh_status st = FH_OK;
    if (D < 1)
        st = fh_error_set(FH_EINPUT, "[model] type = %s has no customer embedding: expected mlp (the last hidden layer's "
                                     "activations) or attention", model_type_name(m->type));
    if (st == FH_OK) { /* the model file must be this configuration's model */
        int64_t np = m->nparams;
        st = io_model_read(o->model, res.params, &np);
        const int more = st != FH_OK && strstr(fh_error_msg(), "room for") != NULL; /* the file has more */
        if (more || (st == FH_OK && np != m->nparams)) {
            char got[64];
            const char *msg = fh_error_msg(), *e = more ? strstr(msg, " parameters, room for") : NULL, *b = e;
            while (b && b > msg && b[-1] >= '0' && b[-1] <= '9') b--; /* the file's count in the message */
            if (b && b < e) snprintf(got, sizeof got, "has %.*s", (int)(e - b), b);
            else if (more) snprintf(got, sizeof got, "has more");
            else snprintf(got, sizeof got, "has %lld", (long long)np);
            st = fh_error_set(FH_EINPUT,
                              "model file %s does not match the configuration: [model] type = %s with its hidden widths "
                              "on [data] file %s (%d features, %d classes) has %lld parameters, the file %s "
                              "(was the model trained with this configuration?)",
                              o->model, model_type_name(m->type), cfg->data.file, F, CL, (long long)m->nparams, got);
        }
    }
    st = comm_agree(w, st);
    if (st != FH_OK) {
        fl_result_free(&res);
        return st;
    }
    /* placement: contiguous row-balanced blocks of clients; with per-party files, party p's
     * clients on rank p % size, which reads them from the party's own file */
    int32_t *ids = malloc((size_t)C * sizeof *ids), *first = malloc(((size_t)w->size + 1) * sizeof *first),
            *party = malloc((size_t)C * sizeof *party), *loc = malloc((size_t)C * sizeof *loc);
    int64_t *start = malloc((size_t)C * sizeof *start), *count = malloc((size_t)C * sizeof *count),
            *coff = malloc(((size_t)C + 1) * sizeof *coff), *gfirst = malloc((size_t)C * sizeof *gfirst);
    int32_t nloc = 0;
    if (!ids || !first || !party || !loc || !start || !count || !coff || !gfirst)
        st = fh_error_set(FH_ENOMEM, "out of memory");
    for (int32_t c = 0; st == FH_OK && c < C; c++) ids[c] = c;
    if (st == FH_OK) st = io_data_client_ranges(data, ids, C, start, count);
    if (st == FH_OK) st = io_data_client_parties(data, ids, C, party);
    if (st == FH_OK) {
        coff[0] = 0;
        for (int32_t c = 0; c < C; c++) coff[c + 1] = coff[c] + count[c];
        if (meta->parties > 0)
            for (int32_t c = 0; c < C; c++) {
                if (party[c] % w->size == w->rank) loc[nloc++] = c;
            }
        else {
            fl_assign_ranks(count, C, w->size, first);
            for (int32_t c = first[w->rank]; c < first[w->rank + 1]; c++) loc[nloc++] = c;
        }
        for (int32_t i = 0; i < nloc; i++) gfirst[i] = coff[loc[i]];
    }
    st = comm_agree(w, st);
    int64_t *lfirst = malloc(((size_t)nloc + 1) * sizeof *lfirst);
    float *x = NULL, *emb = NULL, *proj = NULL;
    int32_t *y = NULL, *assign = NULL;
    int64_t cap = 0, n = 0;
    if (st == FH_OK && !lfirst) st = fh_error_set(FH_ENOMEM, "out of memory");
    if (st == FH_OK) {
        lfirst[0] = 0;
        for (int32_t i = 0; i < nloc; i++) lfirst[i + 1] = lfirst[i] + count[loc[i]];
        n = lfirst[nloc];
        if (meta->parties == 0) {
            int64_t *ls = malloc(((size_t)nloc + 1) * sizeof *ls), *lc = malloc(((size_t)nloc + 1) * sizeof *lc);
            if (!ls || !lc) st = fh_error_set(FH_ENOMEM, "out of memory");
            for (int32_t i = 0; st == FH_OK && i < nloc; i++) {
                ls[i] = start[loc[i]];
                lc[i] = count[loc[i]];
            }
            if (st == FH_OK && n > 0) st = fl_read_rows(data, nloc, ls, lc, F, &x, &y, &cap);
            free(ls);
            free(lc);
        } else if (n > 0) {
            x = malloc((size_t)n * F * sizeof *x);
            y = malloc((size_t)n * sizeof *y);
            if (!x || !y) st = fh_error_set(FH_ENOMEM, "out of memory for the rows");
        }
    }
    if (meta->parties > 0) { /* every rank opens the files of its parties on its own */
        comm_t self;
        int have_self = 0;
        st = comm_agree(w, st);
        if (st == FH_OK) st = comm_agree(w, comm_split(w, w->rank, 0, &self));
        have_self = st == FH_OK;
        for (int32_t p = w->rank; st == FH_OK && p < meta->parties; p += w->size) {
            char pp[CONFIG_PATH_MAX + 32];
            io_data_party_path(cfg->data.file, p, pp, sizeof pp);
            io_data *ph = NULL;
            io_data_meta pm;
            st = io_data_open(pp, &self, &ph, &pm);
            if (st == FH_OK && (pm.features != F || pm.classes != CL || pm.clients != C || pm.party != p))
                st = fh_error_set(FH_EINPUT, "%s: party %d of %d features, %d classes, %d clients; expected party %d of %s "
                                  "(%d features, %d classes, %d clients)", pp, pm.party, pm.features, pm.classes,
                                  pm.clients, p, cfg->data.file, F, CL, C);
            for (int32_t i = 0; st == FH_OK && i < nloc; i++) {
                if (party[loc[i]] != p || count[loc[i]] == 0) continue;
                int64_t s0, c0;
                st = io_data_client_ranges(ph, loc + i, 1, &s0, &c0);
                if (st == FH_OK && (s0 < 0 || c0 != count[loc[i]]))
                    st = fh_error_set(FH_EINPUT, "%s: client %d: its %lld rows are not in this file", pp, loc[i],
                                      (long long)count[loc[i]]);
                if (st == FH_OK)
                    st = io_data_read_ranges(ph, "train", 1, &s0, &c0, x + (size_t)lfirst[i] * F, y + lfirst[i]);
            }
            if (ph) io_data_close(ph);
        }
        if (have_self) comm_free(&self);
    }
    model_ws *ws = st == FH_OK ? model_ws_create(m, 256) : NULL;
    if (st == FH_OK) {
        emb = malloc((size_t)(n > 0 ? n : 1) * D * sizeof *emb);
        proj = malloc((size_t)(n > 0 ? n : 1) * 2 * sizeof *proj);
        assign = malloc((size_t)(n > 0 ? n : 1) * sizeof *assign);
        if (!ws || !emb || !proj || !assign) st = fh_error_set(FH_ENOMEM, "out of memory for the embeddings");
    }
    /* each client's rows in chunks from its own first row: the same computation on any -np */
    for (int32_t i = 0; st == FH_OK && i < nloc; i++)
        st = model_embed(m, res.params, x + (size_t)lfirst[i] * F, (int32_t)(lfirst[i + 1] - lfirst[i]),
                         emb + (size_t)lfirst[i] * D, ws);
    st = comm_agree(w, st);
    const int32_t nk = o->k ? 1 : o->kmax - o->kmin + 1, G = 64;
    /* the profiles' features: the model's inputs, or for item-set data (prepare supermarket|
     * ticdata: rows of item indices) each item, 1 when the customer holds it */
    const int32_t FP = meta->items > 0 ? meta->items : F;
    float *xp = x;
    if (st == FH_OK && meta->items > 0 && n > 0) {
        xp = fh_calloc((size_t)n * FP, sizeof *xp);
        if (!xp) st = fh_error_set(FH_ENOMEM, "out of memory for the item profiles");
        for (int64_t i = 0; xp && i < n; i++)
            for (int32_t t = 0; t < F; t++) {
                const float v = x[(size_t)i * F + t];
                if (v >= 0 && v < (float)FP) xp[(size_t)i * FP + (int32_t)v] = 1;
            }
    }
    st = comm_agree(w, st);
    embed_report R = {.F = FP, .items = meta->items > 0, .C = CL, .D = D, .G = G, .nk = nk};
    double *ksil = calloc((size_t)nk, sizeof *ksil), *kin = calloc((size_t)nk, sizeof *kin), *kch = calloc((size_t)nk, sizeof *kch);
    double *centers = malloc((size_t)EMBED_K_MAX * D * sizeof *centers), *csil = malloc(EMBED_K_MAX * sizeof *csil);
    double *mean = malloc((size_t)D * sizeof *mean), *axes = malloc((size_t)2 * D * sizeof *axes);
    double *cmean = malloc((size_t)EMBED_K_MAX * FP * sizeof *cmean), *omean = malloc((size_t)FP * sizeof *omean);
    int64_t *sizes = malloc(EMBED_K_MAX * sizeof *sizes), *lcount = malloc((size_t)EMBED_K_MAX * CL * sizeof *lcount);
    char(*fname)[64] = calloc((size_t)FP, 64), (*cname)[64] = calloc((size_t)CL, 64);
    double *mul = malloc((size_t)FP * sizeof *mul), *add = malloc((size_t)FP * sizeof *add);
    if (st == FH_OK && (!ksil || !kin || !kch || !centers || !csil || !mean || !axes || !cmean || !omean || !sizes || !lcount ||
                        !fname || !cname || !mul || !add))
        st = fh_error_set(FH_ENOMEM, "out of memory");
    embed_rows E = {.c = w, .dim = D, .n = n, .x = emb, .clients = C, .nloc = nloc, .client = loc, .first = lfirst};
    int32_t k = o->k;
    const uint64_t seed = (uint64_t)cfg->train.seed;
    int64_t N = 0;
    for (int32_t c = 0; c < C && st == FH_OK; c++) N += count[c];
    if (st == FH_OK && (o->k ? o->k : o->kmax) > N)
        st = fh_error_set(FH_EINPUT, "%s = %d: more clusters than the %lld training rows of %s", o->k ? "--k" : "--k-max",
                          o->k ? o->k : o->kmax, (long long)N, cfg->data.file);
    if (st == FH_OK) st = embed_select_k(&E, o->k ? o->k : o->kmin, o->k ? o->k : o->kmax, seed, o->iters, &k, ksil, kin, kch);
    if (st == FH_OK) st = embed_kmeans(&E, k, seed, o->iters, centers, assign, &R.S);
    if (st == FH_OK) st = embed_silhouette(&E, k, centers, assign, &R.sil, csil, sizes);
    if (st == FH_OK) st = embed_pca2(&E, mean, axes, R.var, &R.totvar);
    if (st == FH_OK) embed_project(emb, n, D, mean, axes, proj);
    int64_t *grid = st == FH_OK ? malloc((size_t)G * G * k * sizeof *grid) : NULL;
    if (st == FH_OK && !grid) st = fh_error_set(FH_ENOMEM, "out of memory");
    if (st == FH_OK) st = embed_grid(w, proj, n, assign, k, G, grid, R.lo, R.hi);
    if (st == FH_OK) st = embed_profile(w, xp, y, n, FP, CL, assign, k, cmean, omean, lcount);
    int found = 0;
    if (st == FH_OK) st = meta->items > 0 ? io_data_item_names(data, fname, &found) : io_data_feature_names(data, fname, &found);
    if (st == FH_OK) st = io_data_class_names(data, cname);
    int scaled = 0;
    for (int32_t j = 0; st == FH_OK && meta->items > 0 && j < FP; j++) mul[j] = 1, add[j] = 0; /* shares */
    if (st == FH_OK && meta->items == 0) st = io_data_feature_scale(data, mul, add, &scaled);
    for (int32_t j = 0; st == FH_OK && !found && j < FP; j++) snprintf(fname[j], 64, meta->items > 0 ? "item_%d" : "feature_%d", j);
    st = comm_agree(w, st);
    if (st == FH_OK && w->rank == 0) st = cli_mkdirs(o->out);
    st = comm_agree(w, st);
    char path[CONFIG_PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/embeddings.h5", o->out);
    if (st == FH_OK) {
        io_embed_meta em = {.rows = N, .dim = D, .clients = C, .k = k, .client_offsets = coff, .centers = centers,
                            .silhouette = R.sil, .model_file = o->model, .data_file = cfg->data.file};
        st = io_embed_write(path, w, &em, nloc, gfirst, lfirst, emb, assign, proj);
    }
    if (st == FH_OK && w->rank == 0) {
        R.k = k;
        R.N = N;
        R.cmean = cmean;
        R.omean = omean;
        R.csil = csil;
        R.ksil = ksil;
        R.kin = kin;
        R.kch = kch;
        R.mul = mul;
        R.add = add;
        R.sizes = sizes;
        R.lcount = lcount;
        R.grid = grid;
        R.fname = fname;
        R.cname = cname;
        st = write_reports(o, &R);
        if (st == FH_OK) {
            printf("fedhpc embed: %lld customers of %d clients on %d rank(s), embeddings of width %d (%s)\n",
                   (long long)N, C, w->size, D, model_type_name(m->type));
            if (!o->k)
                for (int32_t i = 0; i < nk; i++)
                    printf("  k = %2d: silhouette %.4f, inertia %.6g, Calinski-Harabasz %.5g%s\n", o->kmin + i, ksil[i],
                           kin[i], kch[i],
                           o->kmin + i == k ? "  <- chosen" : "");
            printf("  k = %d: silhouette %.4f (simplified, federated), %d Lloyd iteration(s)%s, %d empty cluster(s) "
                   "re-seeded, PCA: %.1f%% + %.1f%% of the variance\n",
                   k, R.sil, R.S.iters, R.S.converged ? " (converged)" : "", R.S.reseeded, 100 * R.var[0] / (R.totvar > 0 ? R.totvar : 1),
                   100 * R.var[1] / (R.totvar > 0 ? R.totvar : 1));
            for (int32_t q = 0; q < k && q < 16; q++)
                printf("  cluster %2d: %7lld customers (%5.1f%%), silhouette %.3f\n", q, (long long)sizes[q],
                       100.0 * sizes[q] / N, csil[q]);
            if (k > 16) printf("  ... (%d clusters in all: clusters.md)\n", k);
            printf("  -> %s/embeddings.h5, clusters.csv, clusters.md, cluster_features.csv, k_selection.csv, "
                   "embed_pca.csv, embed_pca.png\n",
                   o->out);
        }
    }
    fflush(stdout);
    free(ids); free(first); free(party); free(loc); free(start); free(count); free(coff); free(gfirst); free(lfirst);
    if (xp != x) free(xp);
    free(x); free(y); free(emb); free(proj); free(assign);
    free(ksil); free(kin); free(kch); free(centers); free(csil); free(mean); free(axes); free(cmean); free(omean);
    free(sizes); free(lcount); free(fname); free(cname); free(mul); free(add); free(grid);
    model_ws_free(ws);
    fl_result_free(&res);
    return st;
}

int cmd_embed(int argc, char **argv, const comm_t *w)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            if (w->rank == 0) fputs(USAGE, stdout);
            return 0;
        }
    embed_opts *o = malloc(sizeof *o);
    if (!o) return cli_report(w, "embed", comm_agree(w, fh_error_set(FH_ENOMEM, "out of memory")));
    fh_status st = comm_agree(w, check_inputs(argc, argv, o));
    io_data *data = NULL;
    io_data_meta meta;
    if (st == FH_OK) st = comm_agree(w, io_data_open(o->cfg.data.file, w, &data, &meta));
    if (st == FH_OK) st = comm_agree(w, embed_run(o, data, &meta, w));
    if (data) io_data_close(data);
    free(o);
    return cli_report(w, "embed", st);
}
