/* Evaluation metrics (loss, accuracy, macro-F1, binary ROC-AUC): see include/fedhpc/model.h.
 *
 * metrics_eval (all rows at once) and model_evaluate (batches through model_predict) share one
 * accumulator, so both give the same numbers for the same probabilities: it sums the loss in
 * row order, keeps a confusion matrix and, for binary tasks, the n scores p(class 1) split by
 * label (positives from the front of one buffer, negatives from its back) for the AUC.
 */
#include "fedhpc/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int32_t classes;
    int64_t cap;      /* rows the score buffer holds (binary tasks)                     */
    int64_t n;        /* rows added so far                                              */
    double loss_sum;  /* sum of -log(max(p_y, 1e-12))                                    */
    int64_t correct;  /* rows whose argmax is the label                                  */
    int64_t *conf;    /* [classes, classes]: conf[true * classes + predicted]            */
    double *score;    /* [cap] binary only: p(class 1); positives at [0, npos),
                         negatives at [cap - nneg, cap)                                   */
    int64_t npos, nneg;
    int score_nan;    /* a NaN score was seen (AUC undefined)                            */
    double thr;       /* decision threshold to report F1 at (NAN: none)                 */
} metrics_acc;

static void metrics_acc_free(metrics_acc *a)
{
    free(a->conf);
    free(a->score);
    memset(a, 0, sizeof *a);
}

/* An accumulator for up to n rows of `classes` classes. */
static fh_status metrics_acc_init(metrics_acc *a, int32_t classes, int64_t n)
{
    memset(a, 0, sizeof *a);
    if (n <= 0) return fh_error_set(FH_EINPUT, "metrics: no rows to evaluate");
    if (classes < 2) return fh_error_set(FH_EINPUT, "metrics: %d classes (need at least 2)", classes);
    a->classes = classes;
    a->cap = n;
    a->thr = NAN;
    a->conf = fh_calloc((size_t)classes * (size_t)classes, sizeof *a->conf);
    FH_CHECK_ALLOC(a->conf);
    if (classes == 2) {
        a->score = fh_calloc((size_t)n, sizeof *a->score);
        if (!a->score) {
            metrics_acc_free(a);
            return fh_error_set(FH_ENOMEM, "out of memory at %s:%d", __FILE__, __LINE__);
        }
    }
    return FH_OK;
}

/* Add k rows: probs [k, classes], labels y [k]. */
static fh_status metrics_acc_add(metrics_acc *a, const float *probs, const int32_t *y, int64_t k)
{
    const int32_t c = a->classes;
    if (k > a->cap - a->n)
        return fh_error_set(FH_EINTERNAL, "internal error at %s:%d: more rows than announced",
                            __FILE__, __LINE__);
    for (int64_t i = 0; i < k; i++) {
        const int32_t yi = y[i];
        if (yi < 0 || yi >= c)
            return fh_error_set(FH_EINPUT, "metrics: label %d of row %lld outside [0, %d)", yi,
                                (long long)(a->n + i), c);
        const float *p = probs + (size_t)i * (size_t)c; /* [c] */
        double py = p[yi];
        if (py < 1e-12) py = 1e-12; /* NaN stays NaN */
        a->loss_sum -= log(py);
        int32_t best = 0; /* argmax, ties to the lowest index */
        for (int32_t j = 1; j < c; j++)
            if (p[j] > p[best]) best = j;
        a->correct += best == yi;
        a->conf[(size_t)yi * (size_t)c + (size_t)best]++;
        if (a->score) {
            const double s = p[1];
            if (isnan(s)) a->score_nan = 1;
            if (yi == 1) a->score[a->npos++] = s;
            else a->score[a->cap - ++a->nneg] = s;
        }
    }
    a->n += k;
    return FH_OK;
}

static int metrics_cmp_f64(const void *pa, const void *pb)
{
    const double x = *(const double *)pa, y = *(const double *)pb;
    return (x > y) - (x < y);
}

/* ROC-AUC = P(score_pos > score_neg) + 0.5 P(equal) (the Mann-Whitney U statistic with
 * average ranks for ties, over npos * nneg). Sorts the score buffer in place. */
static double metrics_auc(metrics_acc *a)
{
    if (!a->score || a->npos == 0 || a->nneg == 0 || a->score_nan) return NAN;
    double *pos = a->score, *neg = a->score + (a->cap - a->nneg);
    qsort(pos, (size_t)a->npos, sizeof *pos, metrics_cmp_f64);
    qsort(neg, (size_t)a->nneg, sizeof *neg, metrics_cmp_f64);
    double u = 0.0;
    int64_t lt = 0, le = 0; /* negatives < s and <= s, for the current positive score s */
    for (int64_t i = 0; i < a->npos; i++) {
        const double s = pos[i];
        while (lt < a->nneg && neg[lt] < s) lt++;
        if (le < lt) le = lt;
        while (le < a->nneg && neg[le] <= s) le++;
        u += (double)lt + 0.5 * (double)(le - lt);
    }
    return u / ((double)a->npos * (double)a->nneg);
}

/* ---- binary: minority F1, average precision, thresholds (credit study, docs/credit.md) ----- */

/* Rows of the sorted (ascending) array v[n] with value >= t. */
static int64_t count_ge(const double *v, int64_t n, double t)
{
    int64_t lo = 0, hi = n; /* first index with v >= t */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (v[mid] < t) lo = mid + 1;
        else hi = mid;
    }
    return n - lo;
}

/* F1 of class 1, class 0 and their macro mean for the decision p1 >= t (sorted pos/neg). */
static void f1_at(const double *pos, int64_t np, const double *neg, int64_t nn, double t, double *f1c1,
                  double *f1c0, double *macro)
{
    const int64_t tp = count_ge(pos, np, t), fp = count_ge(neg, nn, t), fn = np - tp, tn = nn - fp;
    double s = 0;
    int k = 0;
    *f1c1 = tp + fp + fn ? 2.0 * (double)tp / (double)(2 * tp + fp + fn) : NAN;
    *f1c0 = tn + fn + fp ? 2.0 * (double)tn / (double)(2 * tn + fn + fp) : NAN;
    if (!isnan(*f1c1)) s += *f1c1, k++;
    if (!isnan(*f1c0)) s += *f1c0, k++;
    *macro = k ? s / k : NAN;
}

/* Average precision of the minority class (min 1: score p1 over pos; min 0: score -p1 over neg)
 * from the sorted arrays: walk the scores from the most to the least minority-like, one step
 * per distinct score. */
static double average_precision(const double *pos, int64_t np, const double *neg, int64_t nn, int min)
{
    const double *P = min ? pos : neg, *N = min ? neg : pos; /* P: minority rows */
    const int64_t nP = min ? np : nn, nN = min ? nn : np;
    int64_t i = 0, j = 0, tp = 0, fp = 0; /* rows of P and N taken so far */
    double ap = 0, rprev = 0;
    /* the k-th most minority-like: min 1 from the top of ascending arrays, min 0 from the bottom */
#define AT(A, n, k) (min ? (A)[(n) - 1 - (k)] : (A)[k])
#define BEFORE(x, y) (min ? (x) > (y) : (x) < (y))
    while (i < nP || j < nN) {
        double s; /* the next distinct score */
        if (i < nP && (j >= nN || !BEFORE(AT(N, nN, j), AT(P, nP, i)))) s = AT(P, nP, i);
        else s = AT(N, nN, j);
        while (i < nP && AT(P, nP, i) == s) i++, tp++;
        while (j < nN && AT(N, nN, j) == s) j++, fp++;
        const double r = (double)tp / (double)nP;
        if (tp + fp > 0) ap += (r - rprev) * (double)tp / (double)(tp + fp);
        rprev = r;
    }
#undef AT
#undef BEFORE
    return ap;
}

/* Fills the binary-only fields of out (NAN when they do not apply). Needs the score buffer sorted
 * (metrics_auc sorted it). */
static void metrics_binary(const metrics_acc *a, metrics_t *out)
{
    out->f1_minority = out->pr_auc = out->thr_best = out->f1_minority_thr = out->f1_thr = NAN;
    out->threshold = a->thr;
    if (!a->score || a->npos == 0 || a->nneg == 0 || a->score_nan) return;
    const double *pos = a->score, *neg = a->score + (a->cap - a->nneg);
    const int min = a->npos <= a->nneg; /* the minority class */
    const int64_t *cf = a->conf; /* argmax decision: conf[true * 2 + predicted] */
    const int64_t tp = cf[min * 3], fp = cf[(1 - min) * 2 + min], fn = cf[min * 2 + (1 - min)];
    out->f1_minority = 2.0 * (double)tp / (double)(2 * tp + fp + fn);
    out->pr_auc = average_precision(pos, a->npos, neg, a->nneg, min);
    double best = -1;
    for (int side = 0; side < 2; side++) { /* every score seen is a candidate */
        const double *v = side ? neg : pos;
        const int64_t nv = side ? a->nneg : a->npos;
        for (int64_t k = 0; k < nv; k++) {
            if (k > 0 && v[k] == v[k - 1]) continue;
            double f1, f0, mac;
            f1_at(pos, a->npos, neg, a->nneg, v[k], &f1, &f0, &mac);
            const double f = min ? f1 : f0;
            if (f > best || (f == best && v[k] < out->thr_best)) {
                best = f;
                out->thr_best = v[k];
            }
        }
    }
    if (!isnan(a->thr)) {
        double f1, f0;
        f1_at(pos, a->npos, neg, a->nneg, a->thr, &f1, &f0, &out->f1_thr);
        out->f1_minority_thr = min ? f1 : f0;
    }
}

static void metrics_acc_finish(metrics_acc *a, metrics_t *out)
{
    const int32_t c = a->classes;
    out->loss = a->loss_sum / (double)a->n;
    out->accuracy = (double)a->correct / (double)a->n;
    double f1 = 0.0;
    int32_t counted = 0;
    for (int32_t k = 0; k < c; k++) {
        int64_t tp = a->conf[(size_t)k * c + k], fp = 0, fn = 0;
        for (int32_t j = 0; j < c; j++) {
            if (j == k) continue;
            fp += a->conf[(size_t)j * c + k]; /* true j, predicted k */
            fn += a->conf[(size_t)k * c + j]; /* true k, predicted j */
        }
        if (tp + fp + fn == 0) continue; /* no support and never predicted */
        f1 += 2.0 * (double)tp / (double)(2 * tp + fp + fn);
        counted++;
    }
    out->f1 = counted ? f1 / counted : NAN;
    out->auc = metrics_auc(a);
    metrics_binary(a, out);
}

fh_status metrics_eval(const float *probs, const int32_t *y, int64_t n, int32_t classes,
                       metrics_t *out)
{
    return metrics_eval_at(probs, y, n, classes, NAN, out);
}

fh_status metrics_eval_at(const float *probs, const int32_t *y, int64_t n, int32_t classes,
                          double thr, metrics_t *out)
{
    metrics_acc a;
    FH_TRY(metrics_acc_init(&a, classes, n));
    a.thr = thr;
    fh_status st = metrics_acc_add(&a, probs, y, n);
    if (st == FH_OK) metrics_acc_finish(&a, out);
    metrics_acc_free(&a);
    return st;
}

struct model_eval {
    metrics_acc a;
    const model_t *m;
    int32_t rows;  /* batch of model_predict calls */
    float *probs;  /* [rows, classes]              */
};

void model_eval_free(model_eval *e)
{
    if (!e) return;
    metrics_acc_free(&e->a);
    free(e->probs);
    free(e);
}

fh_status model_eval_begin(const model_t *m, int64_t n, int32_t max_batch, model_eval **out)
{
    *out = NULL;
    if (max_batch < 1) return fh_error_set(FH_EINPUT, "evaluate: batch of %d rows", max_batch);
    model_eval *e = calloc(1, sizeof *e);
    FH_CHECK_ALLOC(e);
    fh_status st = metrics_acc_init(&e->a, m->classes, n);
    if (st != FH_OK) {
        free(e);
        return st;
    }
    e->m = m;
    e->rows = (int32_t)(n < max_batch ? n : max_batch);
    e->probs = malloc((size_t)e->rows * (size_t)m->classes * sizeof *e->probs);
    if (!e->probs) {
        model_eval_free(e);
        return fh_error_set(FH_ENOMEM, "out of memory at %s:%d", __FILE__, __LINE__);
    }
    *out = e;
    return FH_OK;
}

fh_status model_eval_add(model_eval *e, const float *params, const float *x, const int32_t *y,
                         int64_t k, model_ws *ws)
{
    fh_status st = FH_OK;
    for (int64_t r = 0; r < k && st == FH_OK; r += e->rows) {
        const int32_t b = (int32_t)(k - r < e->rows ? k - r : e->rows);
        model_predict(e->m, params, x + (size_t)r * (size_t)e->m->in, b, e->probs, ws);
        st = metrics_acc_add(&e->a, e->probs, y + r, b);
    }
    return st;
}

void model_eval_set_threshold(model_eval *e, double thr) { e->a.thr = thr; }

fh_status model_eval_end(model_eval *e, metrics_t *out)
{
    fh_status st = e->a.n == e->a.cap ? FH_OK
                                      : fh_error_set(FH_EINTERNAL, "internal error at %s:%d: %lld of %lld rows evaluated",
                                                     __FILE__, __LINE__, (long long)e->a.n, (long long)e->a.cap);
    if (st == FH_OK) metrics_acc_finish(&e->a, out);
    model_eval_free(e);
    return st;
}

fh_status model_evaluate(const model_t *m, const float *params, const float *x, const int32_t *y,
                         int64_t n, model_ws *ws, int32_t max_batch, metrics_t *out)
{
    model_eval *e;
    FH_TRY(model_eval_begin(m, n, max_batch, &e));
    fh_status st = model_eval_add(e, params, x, y, n, ws);
    if (st != FH_OK) {
        model_eval_free(e);
        return st;
    }
    return model_eval_end(e, out);
}
