/* Evaluation shared by every strategy: the test split on rank 0 (streamed from the data file a
 * chunk at a time), and each participant's accuracy on its own rows gathered on rank 0. */
#include "fedhpc/loop.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

fh_status fl_testset_load(fl_testset *t, const comm_t *world, io_data *data, const io_data_meta *meta)
{
    memset(t, 0, sizeof *t);
    if (world->rank == 0 && meta->test_rows > 0) {
        t->data = data;
        t->n = meta->test_rows;
        t->d = meta->features;
        t->val_n = meta->classes == 2 ? meta->val_rows : 0; /* decision threshold (binary only) */
    }
    return FH_OK;
}

void fl_testset_free(fl_testset *t)
{
    free(t->x);
    free(t->y);
    memset(t, 0, sizeof *t);
}

/* Rows read a time (*rows): a multiple of the model's batch, so the numbers equal
 * model_evaluate's on the whole split (at least 256 rows: 0.8 MB for Fashion-MNIST instead of
 * 31 MB held); t's buffers grown to hold them. */
static fh_status testset_chunk(fl_testset *t, int32_t ws_rows, int64_t *rows)
{
    const int64_t chunk = (int64_t)ws_rows * (ws_rows >= 256 ? 1 : 256 / ws_rows);
    *rows = t->n < chunk ? t->n : chunk;
    if (*rows > t->cap) {
        free(t->x);
        free(t->y);
        t->x = malloc((size_t)*rows * (size_t)t->d * sizeof *t->x);
        t->y = malloc((size_t)*rows * sizeof *t->y);
        t->cap = t->x && t->y ? *rows : 0;
        if (!t->cap) return fh_error_set(FH_ENOMEM, "out of memory for %lld test rows", (long long)*rows);
    }
    return FH_OK;
}

/* Metrics of split ("test" or "val", n rows) a chunk at a time (testset_chunk), with the F1
 * scores at decision threshold thr (NAN: none). */
static fh_status split_eval(fl_testset *t, const char *split, int64_t n, const model_t *m, const float *params,
                            model_ws *ws, int32_t ws_rows, double thr, metrics_t *out)
{
    int64_t rows;
    FH_TRY(testset_chunk(t, ws_rows, &rows));
    model_eval *e;
    FH_TRY(model_eval_begin(m, n, ws_rows, &e));
    model_eval_set_threshold(e, thr);
    fh_status st = FH_OK;
    for (int64_t r = 0; r < n && st == FH_OK; r += rows) {
        int64_t k = n - r < rows ? n - r : rows;
        st = io_data_read_ranges(t->data, split, 1, &r, &k, t->x, t->y);
        if (st == FH_OK) st = model_eval_add(e, params, t->x, t->y, k, ws);
    }
    if (st != FH_OK) {
        model_eval_free(e);
        return st;
    }
    return model_eval_end(e, out);
}

/* The test split a chunk at a time; with a validation split (binary), the decision threshold
 * chosen on it first (credit study, docs/credit.md). */
fh_status fl_testset_eval(fl_testset *t, const model_t *m, const float *params, model_ws *ws,
                          int32_t ws_rows, metrics_t *out)
{
    double thr = NAN;
    if (t->val_n > 0 && m->classes == 2) {
        metrics_t v;
        FH_TRY(split_eval(t, "val", t->val_n, m, params, ws, ws_rows, NAN, &v));
        thr = v.thr_best; /* NAN when the validation split has one class only */
    }
    return split_eval(t, "test", t->n, m, params, ws, ws_rows, thr, out);
}

static int cmp_f64(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void fl_acc_summary(double *acc, int32_t n, double *mean, double *p10)
{
    double s = 0;
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++)
        if (!isnan(acc[i])) {
            s += acc[i];
            acc[k++] = acc[i];
        }
    qsort(acc, (size_t)k, sizeof *acc, cmp_f64);
    *mean = k ? s / k : NAN;
    *p10 = k ? acc[(int32_t)floor(0.1 * (k - 1))] : NAN;
}

fh_status fl_client_accuracy(const comm_t *w, fl_worker *wk, const float *params, io_data *data,
                             const int64_t *start, const int64_t *count, int32_t n_local,
                             int32_t n_total, fl_rows *rows, double *mean, double *p10)
{
    double *acc = fh_calloc((size_t)n_local, sizeof *acc), *all = NULL;
    FH_CHECK_ALLOC(acc);
    fh_status st = FH_OK;
    const int32_t d = wk->m->in;
    int64_t row = 0;
    for (int32_t i = 0, g1 = 0; i < n_local && st == FH_OK; i++) {
        if (i == g1) {
            g1 = fl_rows_group(count, i, n_local, d);
            st = fl_read_rows(data, g1 - i, start + i, count + i, d, &rows->x, &rows->y, &rows->cap);
            if (st != FH_OK) break;
            row = 0;
        }
        metrics_t mt;
        if (count[i] == 0) { /* a client without rows has no accuracy */
            acc[i] = NAN;
            continue;
        }
        st = model_evaluate(wk->m, params, rows->x + row * d, rows->y + row, count[i], wk->ws,
                            wk->ws_rows, &mt);
        acc[i] = mt.accuracy;
        row += count[i];
    }
    st = comm_agree(w, st);
    if (st == FH_OK && w->rank == 0) {
        all = fh_calloc((size_t)n_total, sizeof *all);
        if (!all) st = fh_error_set(FH_ENOMEM, "out of memory");
    }
    st = comm_agree(w, st);
    if (st == FH_OK) st = comm_gatherv_f64(w, acc, n_local, all, 0);
    if (st == FH_OK && w->rank == 0 && n_total > 0) fl_acc_summary(all, n_total, mean, p10);
    free(acc);
    free(all);
    return st;
}


/* [attack] attack success: the test split read a chunk at a time; the rows the attack aims at
 * (backdoor: true class not the target, with the trigger put in; label_flip: true class the
 * source) and the share of those predicted as the target. */
fh_status fl_testset_attack(fl_testset *t, const model_t *m, const float *params, model_ws *ws, int32_t ws_rows,
                              const config_attack *a, const attack_geom *g, double *rate)
{
    int64_t rows;
    FH_TRY(testset_chunk(t, ws_rows, &rows));
    float *probs = malloc((size_t)ws_rows * (size_t)m->classes * sizeof *probs);
    if (!probs) return fh_error_set(FH_ENOMEM, "out of memory");
    int64_t hit = 0, total = 0;
    fh_status st = FH_OK;
    for (int64_t r = 0; r < t->n && st == FH_OK; r += rows) {
        int64_t k = t->n - r < rows ? t->n - r : rows;
        st = io_data_read_ranges(t->data, "test", 1, &r, &k, t->x, t->y);
        if (st != FH_OK) break;
        int64_t kept = 0; /* rows of another class, triggered, packed at the front */
        for (int64_t i = 0; i < k; i++) {
            if (a->mode == ATTACK_BACKDOOR ? t->y[i] == a->target_class : t->y[i] != a->source_class) continue;
            if (kept != i) memcpy(t->x + kept * t->d, t->x + i * t->d, (size_t)t->d * sizeof *t->x);
            if (a->mode == ATTACK_BACKDOOR) attack_apply_trigger(a, g, t->x + kept * t->d);
            kept++;
        }
        for (int64_t b = 0; b < kept; b += ws_rows) {
            const int32_t nb = (int32_t)(kept - b < ws_rows ? kept - b : ws_rows);
            model_predict(m, params, t->x + b * t->d, nb, probs, ws);
            for (int32_t i = 0; i < nb; i++) {
                const float *p = probs + (int64_t)i * m->classes;
                int32_t best = 0;
                for (int32_t c = 1; c < m->classes; c++)
                    if (p[c] > p[best]) best = c;
                hit += best == a->target_class;
            }
        }
        total += kept;
    }
    free(probs);
    if (st == FH_OK) *rate = total ? (double)hit / (double)total : NAN;
    return st;
}
