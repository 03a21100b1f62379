/* The centralized reference of vertical FL: one process joins the parties' columns of the common
 * customers (by id, in plain) and trains the same model on them (docs/vertical.md). */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/io.h"
#include "fedhpc/vfl.h"
#include "vfl_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const vfl_party_data *g_pd;
static int cmp_id(const void *key, const void *b)
{
    return strcmp((const char *)key, g_pd->ids[*(const int64_t *)b]);
}

/* joined table of the common customers: x[n, D] (party 0's columns first), y, test */
fh_status vfl_join(const vfl_opts *o, double **xo, int32_t **yo, uint8_t **to, int64_t *no, int32_t *Do, int32_t *dp)
{
    const int K = o->parties;
    vfl_party_data pd[VFL_MAX_PARTIES];
    int64_t *srt[VFL_MAX_PARTIES];
    memset(pd, 0, sizeof pd);
    memset(srt, 0, sizeof srt);
    fh_status st = FH_OK;
    char path[2100];
    int32_t D = 0;
    for (int p = 0; p < K && st == FH_OK; p++) {
        io_data_party_path(o->data, p, path, sizeof path);
        st = vfl_party_read(path, &pd[p]);
        if (st == FH_OK && (pd[p].party != p || pd[p].parties != K || pd[p].tag != pd[0].tag))
            st = fh_error_set(FH_EINPUT, "%s: not party %d of the same prepare run as party 0 (party files whose ids do not match)", path, p);
        if (st == FH_OK) {
            D += pd[p].d;
            dp[p] = pd[p].d;
            size_t *all = fh_calloc((size_t)pd[p].rows, sizeof *all);
            srt[p] = fh_calloc((size_t)pd[p].rows, sizeof *srt[p]);
            if (!all || !srt[p]) st = fh_error_set(FH_ENOMEM, "out of memory");
            for (int64_t i = 0; st == FH_OK && i < pd[p].rows; i++) all[i] = (size_t)i;
            if (st == FH_OK) st = vfl_sort_rows(&pd[p], all, (size_t)pd[p].rows, srt[p]);
            free(all);
        }
    }
    int64_t n = 0;
    double *x = NULL;
    int32_t *y = NULL;
    uint8_t *t = NULL;
    if (st == FH_OK) {
        x = fh_calloc((size_t)(pd[0].rows * D), sizeof *x);
        y = fh_calloc((size_t)pd[0].rows, sizeof *y);
        t = fh_calloc((size_t)pd[0].rows, 1);
        if (!x || !y || !t) st = fh_error_set(FH_ENOMEM, "out of memory");
    }
    snprintf(path, sizeof path, "%s/common.txt", o->out_dir);
    FILE *ids = st == FH_OK ? fopen(path, "w") : NULL;
    for (int64_t k = 0; st == FH_OK && k < pd[0].rows; k++) {
        const int64_t i0 = srt[0][k];
        int64_t at[VFL_MAX_PARTIES];
        at[0] = i0;
        int all = 1;
        for (int p = 1; p < K && all; p++) {
            g_pd = &pd[p];
            const int64_t *f = bsearch(pd[0].ids[i0], srt[p], (size_t)pd[p].rows, sizeof *srt[p], cmp_id);
            if (f) at[p] = *f;
            else all = 0;
        }
        if (!all) continue;
        int32_t off = 0;
        for (int p = 0; p < K; p++) {
            memcpy(x + n * D + off, pd[p].x + at[p] * pd[p].d, (size_t)pd[p].d * sizeof *x);
            off += pd[p].d;
        }
        if (ids) fprintf(ids, "%s\n", pd[0].ids[i0]);
        y[n] = pd[0].y[i0];
        t[n] = pd[0].test[i0];
        n++;
    }
    if (ids) fclose(ids);
    for (int p = 0; p < K; p++) {
        vfl_party_free(&pd[p]);
        free(srt[p]);
    }
    if (st == FH_OK && n == 0) st = fh_error_set(FH_EINPUT, "vertical central: no customer id is common to the %d party files", K);
    if (st != FH_OK) {
        free(x); free(y); free(t);
        return st;
    }
    *xo = x; *yo = y; *to = t; *no = n; *Do = D;
    return FH_OK;
}

fh_status vfl_central(const vfl_opts *o, vfl_result *res)
{
    memset(res, 0, sizeof *res);
    if (o->model == 2) return vfl_ftl_central(o, res);
    double *x = NULL;
    int32_t *y = NULL;
    uint8_t *t = NULL;
    int64_t n = 0;
    int32_t D = 0;
    int32_t dp[VFL_MAX_PARTIES];
    FH_TRY(vfl_join(o, &x, &y, &t, &n, &D, dp));
    if (o->model == 1) {
        fh_status st = vfl_splitnn_central(o, x, y, t, n, D, dp, res);
        free(x); free(y); free(t);
        return st;
    }
    int64_t ntr = 0, nte = 0;
    for (int64_t i = 0; i < n; i++) { if (t[i]) nte++; else ntr++; }
    res->n_common = n;
    res->n_train = ntr;
    res->n_test = nte;
    double *w = fh_calloc((size_t)D + 1, sizeof *w), *g = fh_calloc((size_t)D + 1, sizeof *g);
    double *ztr = fh_calloc((size_t)n, sizeof *ztr), *zte = fh_calloc((size_t)n, sizeof *zte), *r = fh_calloc((size_t)n, sizeof *r);
    int32_t *ytr = fh_calloc((size_t)n, sizeof *ytr), *yte = fh_calloc((size_t)n, sizeof *yte);
    char path[2100];
    snprintf(path, sizeof path, "%s/metrics.csv", o->out_dir);
    FILE *mf = fopen(path, "w");
    fh_status st = w && g && ztr && zte && r && ytr && yte ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory");
    if (st == FH_OK && !mf) st = fh_error_set(FH_EIO, "%s: cannot write", path);
    if (mf) fprintf(mf, "step,loss,test_auc\n");
    double t0 = fh_wtime();
    for (int64_t s = 0; st == FH_OK && s <= o->steps; s++) {
        int64_t a = 0, b = 0;
        for (int64_t i = 0; i < n; i++) {
            double z = w[D];
            for (int32_t j = 0; j < D; j++) z += x[i * D + j] * w[j];
            if (t[i]) { zte[b] = z; yte[b++] = y[i]; }
            else { ztr[a] = z; ytr[a++] = y[i]; }
        }
        res->loss = vfl_logloss(ztr, ytr, ntr, r);
        res->test_auc = nte ? vfl_auc(zte, yte, nte) : NAN;
        fprintf(mf, "%lld,%.17g,%.17g\n", (long long)s, res->loss, res->test_auc);
        if (s == o->steps) break;
        memset(g, 0, ((size_t)D + 1) * sizeof *g);
        a = 0;
        for (int64_t i = 0; i < n; i++) {
            if (t[i]) continue;
            for (int32_t j = 0; j < D; j++) g[j] += x[i * D + j] * r[a];
            g[D] += r[a++];
        }
        for (int32_t j = 0; j <= D; j++) w[j] -= o->lr * (g[j] / (double)ntr);
    }
    res->sec_per_step = o->steps ? (fh_wtime() - t0) / o->steps : 0;
    if (mf) fclose(mf);
    if (st == FH_OK) {
        snprintf(path, sizeof path, "%s/central.model.h5", o->out_dir);
        st = vfl_write_vec(path, "fedhpc-vertical-model", w, D + 1);
    }
    free(w); free(g); free(ztr); free(zte); free(r); free(ytr); free(yte);
    free(x); free(y); free(t);
    return st;
}
