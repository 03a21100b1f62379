/* Tabular data sets from CSV files (see include/fedhpc/data.h).
 *
 * Steps: read the whole file and tokenise it in place (header row, comma separators,
 * double-quoted fields with "" escapes, \r\n line ends; a UTF-8 BOM and blank lines are
 * skipped); map the label column to classes; split rows into train/test with the RNG_SPLIT
 * stream; decide each column's kind (numeric when every non-missing cell parses completely as
 * a finite number, else categorical); fit the encoding on the training rows only; encode both
 * splits.
 *
 * Conventions worth knowing:
 *  - missing cells are "", "NA" and "?" (unquoted fields are trimmed of spaces, tabs and \r),
 *    and any cell that spells a non-finite number (nan, inf, -Infinity, 1e999: strtod reads it
 *    completely, but not as a finite value), counted in data_set.nonfinite_cells;
 *  - numeric columns: (v - mean) / std with population statistics of the training rows,
 *    std 1 when the column is (numerically) constant, missing cells -> mean (i.e. 0);
 *  - categorical columns: one-hot over the categories seen in training (strcmp order),
 *    missing -> the most frequent one (ties: the first in order), unseen -> all zeros;
 *  - a column without any non-missing value in the training rows is COL_DROPPED;
 *  - class and key names are sorted numerically when every value is a number, else by strcmp;
 *  - encoding entries that do not apply to a column's kind are mean 0, std 1, ncat 0,
 *    cat NULL, mode -1, first_feature -1.
 */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "fedhpc/data.h"
#include "fedhpc/rng.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Sorted distinct values of a list of strings (pointers into the file buffer, not copies). */
typedef struct {
    const char **val;  /* [n] distinct values in strcmp order (for bsearch)           */
    int64_t *count;    /* [n] how often each occurs                                    */
    int32_t *index;    /* [n] position of val[i] in the presentation order             */
    const char **ordered; /* [n] presentation order (numeric when all values are numbers) */
    int32_t n;
} distinct;

/* Everything the loader allocates besides the output; freed by csv_ctx_free. */
typedef struct {
    const char *path;
    char *buf;          /* file contents; every cell points into it */
    int32_t ncols;
    char **header;      /* [ncols] */
    int64_t nrows, cap;
    char **cell;        /* [nrows * ncols], row-major */
    int64_t *line;      /* [nrows] line number where each row starts */
    char **rec;         /* fields of the record being parsed */
    int32_t rec_cap;
    int32_t label_col, by_col;
    int32_t *label;     /* [nrows] class of each row */
    int64_t *train_rows, *test_rows, *val_rows;
    int64_t ntrain, ntest, nval;
    const char **vals;  /* [nrows] scratch for distinct_build */
    distinct labels, keys, cats;
} csv_ctx;

#define CSV_OOM() fh_error_set(FH_ENOMEM, "out of memory at %s:%d", __FILE__, __LINE__)

/* ---- small helpers --------------------------------------------------------------------- */

/* 1 when s is completely a number that is not finite (nan, inf, overflow such as 1e999). */
static int cell_nonfinite(const char *s)
{
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    return end != s && *end == 0 && !isfinite(x); /* overflow (1e999) gives HUGE_VAL */
}

static int cell_missing(const char *s)
{
    return s[0] == 0 || strcmp(s, "NA") == 0 || strcmp(s, "?") == 0 || cell_nonfinite(s);
}

/* 1 when s is completely a finite number (stored in *v). */
static int cell_number(const char *s, double *v)
{
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || *end != 0 || !isfinite(x)) return 0;
    *v = x;
    return 1;
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Numeric order (all values are known to be numbers); ties by strcmp so "1" != "1.0". */
static int cmp_nump(const void *a, const void *b)
{
    const char *sa = *(const char *const *)a, *sb = *(const char *const *)b;
    double va = 0, vb = 0;
    cell_number(sa, &va);
    cell_number(sb, &vb);
    if (va < vb) return -1;
    if (va > vb) return 1;
    return strcmp(sa, sb);
}

static void distinct_free(distinct *d)
{
    free(d->val);
    free(d->count);
    free(d->index);
    free(d->ordered);
    memset(d, 0, sizeof *d);
}

/* Distinct values of vals[0..n) (vals is reordered). numeric_order: present them in numeric
 * order when every value is a number. */
static fh_status distinct_build(const char **vals, int64_t n, int numeric_order, distinct *d)
{
    distinct_free(d);
    qsort(vals, (size_t)n, sizeof *vals, cmp_strp);
    int64_t nu = 0;
    for (int64_t i = 0; i < n; i++)
        if (i == 0 || strcmp(vals[i], vals[i - 1]) != 0) nu++;
    if (nu > INT32_MAX) return fh_error_set(FH_EINPUT, "too many distinct values (%lld)", (long long)nu);
    d->val = fh_calloc((size_t)nu, sizeof *d->val);
    d->count = fh_calloc((size_t)nu, sizeof *d->count);
    d->index = fh_calloc((size_t)nu, sizeof *d->index);
    d->ordered = fh_calloc((size_t)nu, sizeof *d->ordered);
    if (!d->val || !d->count || !d->index || !d->ordered) return CSV_OOM();
    d->n = (int32_t)nu;
    int64_t u = -1;
    for (int64_t i = 0; i < n; i++) {
        if (i == 0 || strcmp(vals[i], vals[i - 1]) != 0) d->val[++u] = vals[i];
        d->count[u]++;
    }
    int all_numeric = numeric_order;
    double v;
    for (int32_t i = 0; i < d->n && all_numeric; i++) all_numeric = cell_number(d->val[i], &v);
    memcpy(d->ordered, d->val, (size_t)d->n * sizeof *d->ordered);
    if (all_numeric) qsort(d->ordered, (size_t)d->n, sizeof *d->ordered, cmp_nump);
    for (int32_t i = 0; i < d->n; i++) {
        const char **p = bsearch(&d->ordered[i], d->val, (size_t)d->n, sizeof *d->val, cmp_strp);
        d->index[p - d->val] = i;
    }
    return FH_OK;
}

/* Presentation index of s, or -1 when s is not one of the values. */
static int32_t distinct_find(const distinct *d, const char *s)
{
    if (d->n == 0) return -1;
    const char **p = bsearch(&s, d->val, (size_t)d->n, sizeof *d->val, cmp_strp);
    return p ? d->index[p - d->val] : -1;
}

/* ---- reading and tokenising ------------------------------------------------------------ */

static fh_status csv_read_file(csv_ctx *c, size_t *len)
{
    struct stat sb;
    if (stat(c->path, &sb) == 0 && S_ISDIR(sb.st_mode))
        return fh_error_set(FH_EINPUT, "%s: is a directory (expected a CSV file)", c->path);
    FILE *f = fopen(c->path, "rb");
    if (!f) return fh_error_set(FH_EINPUT, "%s: cannot open (%s)", c->path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    c->buf = malloc(cap);
    if (!c->buf) {
        fclose(f);
        return CSV_OOM();
    }
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(c->buf, cap * 2);
            if (!nb) {
                fclose(f);
                return CSV_OOM();
            }
            c->buf = nb;
            cap *= 2;
        }
        size_t got = fread(c->buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) return fh_error_set(FH_EIO, "%s: read error", c->path);
    c->buf[n] = 0;
    if (memchr(c->buf, 0, n))
        return fh_error_set(FH_EINPUT, "%s: contains NUL bytes (expected a text CSV file)", c->path);
    *len = n;
    return FH_OK;
}

static fh_status csv_rec_push(csv_ctx *c, int32_t *nf, char *field)
{
    if (*nf == c->rec_cap) {
        int32_t ncap = c->rec_cap ? 2 * c->rec_cap : 64;
        char **nr = realloc(c->rec, (size_t)ncap * sizeof *nr);
        if (!nr) return CSV_OOM();
        c->rec = nr;
        c->rec_cap = ncap;
    }
    c->rec[(*nf)++] = field;
    return FH_OK;
}

/* Parse the record starting at *pos (in place) into c->rec[0..*nf). *line is the current line
 * number (advanced past the record); *blank is set for an empty or whitespace-only line. */
static fh_status csv_next_record(csv_ctx *c, size_t len, size_t *pos, int64_t *line,
                                 int32_t *nf, int *blank)
{
    char *b = c->buf;
    size_t r = *pos, w = *pos;
    int64_t start_line = *line;
    int any_quoted = 0;
    *nf = 0;
    for (;;) { /* one field per iteration */
        while (r < len && (b[r] == ' ' || b[r] == '\t')) r++;
        size_t fstart = w;
        if (r < len && b[r] == '"') {
            any_quoted = 1;
            r++;
            for (;;) {
                if (r >= len)
                    return fh_error_set(FH_EINPUT, "%s:%lld: unterminated quoted field", c->path,
                                        (long long)start_line);
                char ch = b[r++];
                if (ch == '"') {
                    if (r < len && b[r] == '"') r++;
                    else break;
                } else if (ch == '\n') {
                    (*line)++;
                }
                b[w++] = ch;
            }
            while (r < len && (b[r] == ' ' || b[r] == '\t' || b[r] == '\r')) r++;
            if (r < len && b[r] != ',' && b[r] != '\n')
                return fh_error_set(FH_EINPUT,
                                    "%s:%lld: unexpected '%c' after a closing quote "
                                    "(expected , or end of line)",
                                    c->path, (long long)*line, b[r]);
        } else {
            while (r < len && b[r] != ',' && b[r] != '\n') b[w++] = b[r++];
            while (w > fstart && (b[w - 1] == ' ' || b[w - 1] == '\t' || b[w - 1] == '\r')) w--;
        }
        char sep = r < len ? b[r] : '\n';
        r++;
        b[w++] = 0; /* w <= r - 1 here, so this never overwrites unread input */
        FH_TRY(csv_rec_push(c, nf, b + fstart));
        if (sep == '\n') {
            (*line)++;
            break;
        }
    }
    *pos = r > len ? len : r;
    *blank = *nf == 1 && !any_quoted && c->rec[0][0] == 0;
    return FH_OK;
}

static fh_status csv_tokenise(csv_ctx *c)
{
    size_t len = 0, pos = 0;
    FH_TRY(csv_read_file(c, &len));
    if (len >= 3 && memcmp(c->buf, "\xEF\xBB\xBF", 3) == 0) pos = 3; /* UTF-8 byte-order mark */
    int64_t line = 1;
    int have_header = 0;
    while (pos < len) {
        int64_t rec_line = line;
        int32_t nf = 0;
        int blank = 0;
        FH_TRY(csv_next_record(c, len, &pos, &line, &nf, &blank));
        if (blank) continue;
        if (!have_header) {
            c->ncols = nf;
            c->header = fh_calloc((size_t)nf, sizeof *c->header);
            if (!c->header) return CSV_OOM();
            memcpy(c->header, c->rec, (size_t)nf * sizeof *c->header);
            for (int32_t j = 0; j < nf; j++)
                for (int32_t k = 0; k < j; k++)
                    if (strcmp(c->header[j], c->header[k]) == 0)
                        return fh_error_set(FH_EINPUT,
                                            "%s:%lld: duplicate column name '%s' (columns %d and %d)",
                                            c->path, (long long)rec_line, c->header[j], k + 1,
                                            j + 1);
            have_header = 1;
            continue;
        }
        if (nf != c->ncols)
            return fh_error_set(FH_EINPUT, "%s:%lld: expected %d fields, found %d", c->path,
                                (long long)rec_line, c->ncols, nf);
        if (c->nrows == c->cap) {
            int64_t ncap = c->cap ? 2 * c->cap : 1024;
            char **ncell = realloc(c->cell, (size_t)ncap * (size_t)c->ncols * sizeof *ncell);
            if (!ncell) return CSV_OOM();
            c->cell = ncell;
            int64_t *nline = realloc(c->line, (size_t)ncap * sizeof *nline);
            if (!nline) return CSV_OOM();
            c->line = nline;
            c->cap = ncap;
        }
        memcpy(c->cell + c->nrows * c->ncols, c->rec, (size_t)nf * sizeof *c->cell);
        c->line[c->nrows++] = rec_line;
    }
    if (!have_header) return fh_error_set(FH_EINPUT, "%s: empty file (expected a header row)", c->path);
    if (c->nrows == 0)
        return fh_error_set(FH_EINPUT, "%s: no data rows after the header", c->path);
    return FH_OK;
}

static const char *cell_at(const csv_ctx *c, int64_t row, int32_t col)
{
    return c->cell[row * c->ncols + col];
}

static int32_t csv_column(const csv_ctx *c, const char *name)
{
    for (int32_t j = 0; j < c->ncols; j++)
        if (strcmp(c->header[j], name) == 0) return j;
    return -1;
}

/* ---- labels, split, keys --------------------------------------------------------------- */

static fh_status csv_labels(csv_ctx *c, const data_csv_opts *o, data_set *out)
{
    const char *lname = c->header[c->label_col];
    for (int64_t i = 0; i < c->nrows; i++) {
        const char *s = cell_at(c, i, c->label_col);
        if (cell_missing(s))
            return fh_error_set(FH_EINPUT, "%s:%lld: missing value%s%s%s in label column '%s'", c->path,
                                (long long)c->line[i], cell_nonfinite(s) ? " '" : "", cell_nonfinite(s) ? s : "",
                                cell_nonfinite(s) ? "'" : "", lname);
        c->vals[i] = s;
    }
    FH_TRY(distinct_build(c->vals, c->nrows, 1, &c->labels));
    c->label = fh_calloc((size_t)c->nrows, sizeof *c->label);
    if (!c->label) return CSV_OOM();
    if (o->positive) {
        if (distinct_find(&c->labels, o->positive) < 0)
            return fh_error_set(FH_EINPUT, "%s: label column '%s' never has the positive value '%s'",
                                c->path, lname, o->positive);
        out->class_name = fh_calloc(2, sizeof *out->class_name);
        if (!out->class_name) return CSV_OOM();
        out->nclasses = 2;
        size_t len = strlen(o->positive) + 5;
        out->class_name[0] = malloc(len);
        if (!out->class_name[0]) return CSV_OOM();
        snprintf(out->class_name[0], len, "not %s", o->positive);
        out->class_name[1] = strdup(o->positive);
        if (!out->class_name[1]) return CSV_OOM();
        if (c->labels.n < 2)
            return fh_error_set(FH_EINPUT,
                                "%s: label column '%s' is '%s' in every row: --positive %s leaves no "
                                "negative rows (expected at least 2 classes)", c->path, lname,
                                o->positive, o->positive);
        for (int64_t i = 0; i < c->nrows; i++)
            c->label[i] = strcmp(cell_at(c, i, c->label_col), o->positive) == 0;
        return FH_OK;
    }
    if (c->labels.n < 2)
        return fh_error_set(FH_EINPUT,
                            "%s: label column '%s' has a single value '%s' (expected at least 2 "
                            "classes)", c->path, lname, c->labels.val[0]);
    out->class_name = fh_calloc((size_t)c->labels.n, sizeof *out->class_name);
    if (!out->class_name) return CSV_OOM();
    out->nclasses = c->labels.n;
    for (int32_t k = 0; k < c->labels.n; k++) {
        out->class_name[k] = strdup(c->labels.ordered[k]);
        if (!out->class_name[k]) return CSV_OOM();
    }
    for (int64_t i = 0; i < c->nrows; i++)
        c->label[i] = distinct_find(&c->labels, cell_at(c, i, c->label_col));
    return FH_OK;
}

/* Shuffle row indices with the RNG_SPLIT stream; the first round(test_frac * n) are test rows.
 * Both splits keep file order. */
static fh_status csv_split(csv_ctx *c, const data_csv_opts *o)
{
    int64_t n = c->nrows;
    int64_t ntest = llround(o->test_frac * (double)n);
    if (ntest >= n)
        return fh_error_set(FH_EINPUT, "%s: test fraction %g of %lld rows leaves no training rows",
                            c->path, o->test_frac, (long long)n);
    c->train_rows = fh_calloc((size_t)n, sizeof *c->train_rows);
    c->test_rows = fh_calloc((size_t)n, sizeof *c->test_rows);
    if (!c->train_rows || !c->test_rows) return CSV_OOM();
    int64_t *perm = c->train_rows; /* borrowed as scratch, rewritten below */
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    rng_t r = rng_stream(o->seed, 0, 0, RNG_SPLIT);
    rng_shuffle_i64(&r, perm, (size_t)n);
    unsigned char *is_test = fh_calloc((size_t)n, 1);
    if (!is_test) return CSV_OOM();
    for (int64_t i = 0; i < ntest; i++) is_test[perm[i]] = 1;
    c->ntrain = c->ntest = 0;
    for (int64_t i = 0; i < n; i++) {
        if (is_test[i]) c->test_rows[c->ntest++] = i;
        else c->train_rows[c->ntrain++] = i;
    }
    free(is_test);
    /* --val-frac (credit study): the next round(val_frac * n) rows of the same shuffle leave the
     * training rows for a validation split; the test split is the same with or without it */
    int64_t nval = llround(o->val_frac * (double)n);
    if (nval > 0) {
        if (ntest + nval >= n)
            return fh_error_set(FH_EINPUT, "%s: test fraction %g and validation fraction %g of %lld rows leave no training rows",
                                c->path, o->test_frac, o->val_frac, (long long)n);
        c->val_rows = fh_calloc((size_t)nval, sizeof *c->val_rows);
        unsigned char *is_val = fh_calloc((size_t)n, 1);
        int64_t *p2 = fh_calloc((size_t)n, sizeof *p2);
        if (!c->val_rows || !is_val || !p2) {
            free(is_val);
            free(p2);
            return CSV_OOM();
        }
        rng_t r2 = rng_stream(o->seed, 0, 0, RNG_SPLIT);
        for (int64_t i = 0; i < n; i++) p2[i] = i;
        rng_shuffle_i64(&r2, p2, (size_t)n); /* the same shuffle as above */
        for (int64_t i = ntest; i < ntest + nval; i++) is_val[p2[i]] = 1;
        free(p2);
        int64_t k = 0;
        c->nval = 0;
        for (int64_t t = 0; t < c->ntrain; t++) {
            const int64_t i = c->train_rows[t];
            if (is_val[i]) c->val_rows[c->nval++] = i;
            else c->train_rows[k++] = i;
        }
        c->ntrain = k;
        free(is_val);
    }
    return FH_OK;
}

static fh_status csv_keys(csv_ctx *c, data_set *out)
{
    const char *bname = c->header[c->by_col];
    for (int64_t t = 0; t < c->ntrain; t++) {
        int64_t i = c->train_rows[t];
        const char *s = cell_at(c, i, c->by_col);
        if (cell_missing(s))
            return fh_error_set(FH_EINPUT, "%s:%lld: missing value%s%s%s in the --by column '%s'",
                                c->path, (long long)c->line[i], cell_nonfinite(s) ? " '" : "", cell_nonfinite(s) ? s : "",
                                cell_nonfinite(s) ? "'" : "", bname);
        c->vals[t] = s;
    }
    FH_TRY(distinct_build(c->vals, c->ntrain, 1, &c->keys));
    out->key_name = fh_calloc((size_t)c->keys.n, sizeof *out->key_name);
    if (!out->key_name) return CSV_OOM();
    out->nkeys = c->keys.n;
    for (int32_t k = 0; k < c->keys.n; k++) {
        out->key_name[k] = strdup(c->keys.ordered[k]);
        if (!out->key_name[k]) return CSV_OOM();
    }
    out->row_key = fh_calloc((size_t)c->ntrain, sizeof *out->row_key);
    if (!out->row_key) return CSV_OOM();
    for (int64_t t = 0; t < c->ntrain; t++)
        out->row_key[t] = distinct_find(&c->keys, cell_at(c, c->train_rows[t], c->by_col));
    return FH_OK;
}

/* ---- encoding -------------------------------------------------------------------------- */

static fh_status enc_alloc(data_encoding *e, int32_t ncols)
{
    size_t n = (size_t)ncols;
    e->col_name = fh_calloc(n, sizeof *e->col_name);
    e->kind = fh_calloc(n, sizeof *e->kind);
    e->mean = fh_calloc(n, sizeof *e->mean);
    e->std = fh_calloc(n, sizeof *e->std);
    e->first_feature = fh_calloc(n, sizeof *e->first_feature);
    e->ncat = fh_calloc(n, sizeof *e->ncat);
    e->cat = fh_calloc(n, sizeof *e->cat);
    e->mode = fh_calloc(n, sizeof *e->mode);
    if (!e->col_name || !e->kind || !e->mean || !e->std || !e->first_feature || !e->ncat ||
        !e->cat || !e->mode)
        return CSV_OOM();
    e->ncols = ncols;
    return FH_OK;
}

/* Numeric column statistics over the training rows; COL_DROPPED when no value is present. */
static void enc_fit_numeric(const csv_ctx *c, data_encoding *e, int32_t j)
{
    double sum = 0, v;
    int64_t cnt = 0;
    for (int64_t t = 0; t < c->ntrain; t++) {
        const char *s = cell_at(c, c->train_rows[t], j);
        if (!cell_missing(s) && cell_number(s, &v)) {
            sum += v;
            cnt++;
        }
    }
    if (cnt == 0) {
        e->kind[j] = COL_DROPPED;
        return;
    }
    double mean = sum / (double)cnt, ss = 0;
    for (int64_t t = 0; t < c->ntrain; t++) {
        const char *s = cell_at(c, c->train_rows[t], j);
        if (!cell_missing(s) && cell_number(s, &v)) ss += (v - mean) * (v - mean);
    }
    double sd = sqrt(ss / (double)cnt);
    /* constant columns: rounding leaves a tiny std that would blow values up */
    if (!(sd > 1e-9 * fmax(1.0, fabs(mean)))) sd = 1.0;
    e->mean[j] = mean;
    e->std[j] = sd;
}

/* Categories of a column over the training rows; COL_DROPPED when no value is present. */
static fh_status enc_fit_categorical(csv_ctx *c, data_encoding *e, int32_t j)
{
    int64_t cnt = 0;
    for (int64_t t = 0; t < c->ntrain; t++) {
        const char *s = cell_at(c, c->train_rows[t], j);
        if (!cell_missing(s)) c->vals[cnt++] = s;
    }
    if (cnt == 0) {
        e->kind[j] = COL_DROPPED;
        return FH_OK;
    }
    FH_TRY(distinct_build(c->vals, cnt, 0, &c->cats));
    e->cat[j] = fh_calloc((size_t)c->cats.n, sizeof *e->cat[j]);
    if (!e->cat[j]) return CSV_OOM();
    e->ncat[j] = c->cats.n;
    int32_t mode = 0;
    for (int32_t k = 0; k < c->cats.n; k++) {
        e->cat[j][k] = strdup(c->cats.val[k]);
        if (!e->cat[j][k]) return CSV_OOM();
        if (c->cats.count[k] > c->cats.count[mode]) mode = k;
    }
    e->mode[j] = mode;
    return FH_OK;
}

static fh_status enc_fit(csv_ctx *c, data_encoding *e)
{
    FH_TRY(enc_alloc(e, c->ncols));
    for (int32_t j = 0; j < c->ncols; j++) {
        e->col_name[j] = strdup(c->header[j]);
        if (!e->col_name[j]) return CSV_OOM();
        e->std[j] = 1.0;
        e->mode[j] = -1;
        e->first_feature[j] = -1;
        if (j == c->label_col) {
            e->kind[j] = COL_LABEL;
            continue;
        }
        if (j == c->by_col) {
            e->kind[j] = COL_DROPPED;
            continue;
        }
        int numeric = 1;
        double v;
        for (int64_t i = 0; i < c->nrows && numeric; i++) {
            const char *s = cell_at(c, i, j);
            numeric = cell_missing(s) || cell_number(s, &v);
        }
        e->kind[j] = numeric ? COL_NUMERIC : COL_CATEGORICAL;
        if (numeric) enc_fit_numeric(c, e, j);
        else FH_TRY(enc_fit_categorical(c, e, j));
    }
    /* feature layout */
    int64_t d = 0;
    for (int32_t j = 0; j < c->ncols; j++) {
        if (e->kind[j] == COL_NUMERIC) e->first_feature[j] = (int32_t)d++;
        else if (e->kind[j] == COL_CATEGORICAL) {
            e->first_feature[j] = (int32_t)d;
            d += e->ncat[j];
        }
        if (d > INT32_MAX / 2)
            return fh_error_set(FH_EINPUT, "%s: too many features after one-hot encoding", c->path);
    }
    if (d == 0)
        return fh_error_set(FH_EINPUT, "%s: no feature columns besides the label (and --by) column",
                            c->path);
    e->feature_name = fh_calloc((size_t)d, sizeof *e->feature_name);
    if (!e->feature_name) return CSV_OOM();
    e->d = (int32_t)d;
    for (int32_t j = 0; j < c->ncols; j++) {
        if (e->kind[j] == COL_NUMERIC) {
            e->feature_name[e->first_feature[j]] = strdup(e->col_name[j]);
            if (!e->feature_name[e->first_feature[j]]) return CSV_OOM();
        } else if (e->kind[j] == COL_CATEGORICAL) {
            for (int32_t k = 0; k < e->ncat[j]; k++) {
                size_t len = strlen(e->col_name[j]) + strlen(e->cat[j][k]) + 2;
                char *s = malloc(len);
                if (!s) return CSV_OOM();
                snprintf(s, len, "%s=%s", e->col_name[j], e->cat[j][k]);
                e->feature_name[e->first_feature[j] + k] = s;
            }
        }
    }
    return FH_OK;
}

/* Encode the listed rows into t (x and y). */
static fh_status enc_apply(const csv_ctx *c, const data_encoding *e, const int64_t *rows,
                           int64_t n, data_table *t)
{
    t->x = fh_calloc((size_t)n * (size_t)e->d, sizeof *t->x);
    t->y = fh_calloc((size_t)n, sizeof *t->y);
    if (!t->x || !t->y) return CSV_OOM();
    t->n = n;
    t->d = e->d;
    for (int64_t r = 0; r < n; r++) {
        int64_t i = rows[r];
        float *x = t->x + r * e->d;
        t->y[r] = c->label[i];
        for (int32_t j = 0; j < c->ncols; j++) {
            const char *s = cell_at(c, i, j);
            if (e->kind[j] == COL_NUMERIC) {
                double v = e->mean[j]; /* imputed when missing */
                if (!cell_missing(s)) cell_number(s, &v);
                x[e->first_feature[j]] = (float)((v - e->mean[j]) / e->std[j]);
            } else if (e->kind[j] == COL_CATEGORICAL) {
                int32_t k = e->mode[j];
                if (!cell_missing(s)) {
                    char **p = bsearch(&s, e->cat[j], (size_t)e->ncat[j], sizeof *e->cat[j],
                                       cmp_strp);
                    k = p ? (int32_t)(p - e->cat[j]) : -1; /* unseen: all zeros */
                }
                if (k >= 0) x[e->first_feature[j] + k] = 1.0f;
            }
        }
    }
    return FH_OK;
}

/* ---- entry point ----------------------------------------------------------------------- */

static void csv_ctx_free(csv_ctx *c)
{
    free(c->buf);
    free(c->header);
    free(c->cell);
    free(c->line);
    free(c->rec);
    free(c->label);
    free(c->train_rows);
    free(c->test_rows);
    free(c->val_rows);
    free(c->vals);
    distinct_free(&c->labels);
    distinct_free(&c->keys);
    distinct_free(&c->cats);
}

static fh_status csv_load(csv_ctx *c, const data_csv_opts *o, data_set *out)
{
    if (!o->label || !o->label[0])
        return fh_error_set(FH_EINPUT, "%s: no label column given", c->path);
    if (!(o->val_frac >= 0.0 && o->val_frac < 1.0))
        return fh_error_set(FH_EINPUT, "%s: validation fraction %g: expected a number in [0, 1)",
                            c->path, o->val_frac);
    if (!(o->test_frac >= 0.0 && o->test_frac < 1.0))
        return fh_error_set(FH_EINPUT, "%s: test fraction %g: expected a number in [0, 1)",
                            c->path, o->test_frac);
    FH_TRY(csv_tokenise(c));
    c->label_col = csv_column(c, o->label);
    if (c->label_col < 0)
        return fh_error_set(FH_EINPUT, "%s: label column '%s' not found in the header", c->path,
                            o->label);
    c->by_col = -1;
    if (o->by) {
        c->by_col = csv_column(c, o->by);
        if (c->by_col < 0)
            return fh_error_set(FH_EINPUT, "%s: --by column '%s' not found in the header", c->path,
                                o->by);
        if (c->by_col == c->label_col)
            return fh_error_set(FH_EINPUT, "%s: --by column '%s' is the label column", c->path,
                                o->by);
    }
    c->vals = fh_calloc((size_t)c->nrows, sizeof *c->vals);
    if (!c->vals) return CSV_OOM();
    snprintf(out->name, sizeof out->name, "csv:%s", c->path);
    FH_TRY(csv_labels(c, o, out));
    FH_TRY(csv_split(c, o));
    if (c->by_col >= 0) FH_TRY(csv_keys(c, out));
    out->enc = fh_calloc(1, sizeof *out->enc);
    if (!out->enc) return CSV_OOM();
    FH_TRY(enc_fit(c, out->enc));
    for (int32_t j = 0; j < c->ncols; j++) { /* non-finite numbers among the features: reported */
        int k = out->enc->kind[j];
        if (k == COL_LABEL || j == c->by_col) continue;
        for (int64_t i = 0; i < c->nrows; i++)
            if (cell_nonfinite(cell_at(c, i, j))) {
                if (!out->nonfinite_cells || c->line[i] < out->nonfinite_line ||
                    (c->line[i] == out->nonfinite_line && j < out->nonfinite_col)) {
                    out->nonfinite_line = c->line[i];
                    out->nonfinite_col = j;
                }
                out->nonfinite_cells++;
            }
    }
    FH_TRY(enc_apply(c, out->enc, c->train_rows, c->ntrain, &out->train));
    FH_TRY(enc_apply(c, out->enc, c->test_rows, c->ntest, &out->test));
    if (c->nval > 0) FH_TRY(enc_apply(c, out->enc, c->val_rows, c->nval, &out->val));
    return FH_OK;
}

fh_status data_load_csv(const char *path, const data_csv_opts *o, data_set *out)
{
    if (!path || !o || !out) return fh_error_set(FH_EINTERNAL, "data_load_csv: NULL argument");
    memset(out, 0, sizeof *out);
    csv_ctx c;
    memset(&c, 0, sizeof c);
    c.path = path;
    fh_status st = csv_load(&c, o, out);
    csv_ctx_free(&c);
    if (st != FH_OK) data_free(out);
    return st;
}
