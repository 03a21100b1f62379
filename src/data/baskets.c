/* Item-set ("basket") data sets: supermarket baskets and CoIL 2000 product holdings
 * (include/fedhpc/data.h: data_load_supermarket, data_load_ticdata).
 *
 * Each customer (row) is a set of item indices. Two encodings:
 *   DATA_ITEMS_INDEX     x[L] = the sorted distinct item indices as floats, then -1 padding,
 *                        L = the longest set over both splits; data_set.items = vocabulary
 *                        (the io layer also stores the sets as CSR: docs/file-formats.md)
 *   DATA_ITEMS_MULTIHOT  x[items] = 1 for each held item (bag of departments), items = 0
 * The test split: round(test_frac * n) rows drawn with the RNG_SPLIT stream (as CSV data);
 * both splits keep file order.
 */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/data.h"
#include "fedhpc/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t n, cap;
    int64_t *off;    /* [n + 1] */
    int32_t *idx;    /* [nnz]   */
    int64_t nnz, idx_cap;
    int32_t *y;      /* [n]     */
    int32_t *key;    /* [n] natural key (ticdata --by), or NULL */
} sets_t;

static void sets_free(sets_t *s)
{
    free(s->off);
    free(s->idx);
    free(s->y);
    free(s->key);
    memset(s, 0, sizeof *s);
}

/* Append one set (items sorted and made distinct in place) with label y and key. */
static fh_status sets_add(sets_t *s, int32_t *items, int32_t k, int32_t y, int32_t key)
{
    if (s->n + 1 >= s->cap) {
        int64_t nc = s->cap ? 2 * s->cap : 1024;
        int64_t *no = realloc(s->off, (size_t)(nc + 1) * sizeof *no);
        if (no) s->off = no;
        int32_t *ny = realloc(s->y, (size_t)nc * sizeof *ny);
        if (ny) s->y = ny;
        int32_t *nk = realloc(s->key, (size_t)nc * sizeof *nk);
        if (nk) s->key = nk;
        if (!no || !ny || !nk) return fh_error_set(FH_ENOMEM, "out of memory reading item sets");
        if (s->cap == 0) s->off[0] = 0;
        s->cap = nc;
    }
    /* insertion sort (sets are small), then drop repeats */
    for (int32_t i = 1; i < k; i++) {
        int32_t v = items[i], j = i;
        while (j > 0 && items[j - 1] > v) {
            items[j] = items[j - 1];
            j--;
        }
        items[j] = v;
    }
    int32_t m = 0;
    for (int32_t i = 0; i < k; i++)
        if (m == 0 || items[i] != items[m - 1]) items[m++] = items[i];
    if (s->nnz + m > s->idx_cap) {
        int64_t nc = s->idx_cap ? 2 * s->idx_cap : 16384;
        while (nc < s->nnz + m) nc *= 2;
        int32_t *ni = realloc(s->idx, (size_t)nc * sizeof *ni);
        if (!ni) return fh_error_set(FH_ENOMEM, "out of memory reading item sets");
        s->idx = ni;
        s->idx_cap = nc;
    }
    memcpy(s->idx + s->nnz, items, (size_t)m * sizeof *items);
    s->nnz += m;
    s->y[s->n] = y;
    s->key[s->n] = key;
    s->n++;
    s->off[s->n] = s->nnz;
    return FH_OK;
}

static char *str_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static void trim_eol(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = 0;
}

/* Split sets into train/test rows and encode them into out (items = vocabulary). */
static fh_status sets_encode(const sets_t *s, int32_t items, const data_items_opts *o, const char *path,
                             data_set *out)
{
    const int64_t n = s->n;
    const int64_t ntest = llround(o->test_frac * (double)n);
    if (n < 2 || ntest >= n)
        return fh_error_set(FH_EINPUT, "%s: %lld customers with test fraction %g leave no training rows", path,
                            (long long)n, o->test_frac);
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    unsigned char *is_test = calloc((size_t)n, 1);
    if (!perm || !is_test) {
        free(perm);
        free(is_test);
        return fh_error_set(FH_ENOMEM, "out of memory");
    }
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    rng_t r = rng_stream(o->seed, 0, 0, RNG_SPLIT);
    rng_shuffle_i64(&r, perm, (size_t)n);
    for (int64_t i = 0; i < ntest; i++) is_test[perm[i]] = 1;
    free(perm);
    int32_t L = 1;
    for (int64_t i = 0; i < n; i++)
        if (s->off[i + 1] - s->off[i] > L) L = (int32_t)(s->off[i + 1] - s->off[i]);
    const int multihot = o->encoding == DATA_ITEMS_MULTIHOT;
    const int32_t d = multihot ? items : L;
    data_table *tr = &out->train, *te = &out->test;
    tr->n = n - ntest;
    te->n = ntest;
    tr->d = te->d = d;
    tr->x = malloc((size_t)tr->n * (size_t)d * sizeof(float));
    te->x = malloc((size_t)(te->n ? te->n : 1) * (size_t)d * sizeof(float));
    tr->y = malloc((size_t)tr->n * sizeof(int32_t));
    te->y = malloc((size_t)(te->n ? te->n : 1) * sizeof(int32_t));
    if (o->by) out->row_key = malloc((size_t)tr->n * sizeof(int32_t));
    if (!tr->x || !te->x || !tr->y || !te->y || (o->by && !out->row_key)) {
        free(is_test);
        return fh_error_set(FH_ENOMEM, "out of memory");
    }
    int64_t it = 0, ie = 0;
    for (int64_t i = 0; i < n; i++) {
        data_table *t = is_test[i] ? te : tr;
        int64_t row = is_test[i] ? ie++ : it++;
        float *x = t->x + row * d;
        for (int32_t j = 0; j < d; j++) x[j] = multihot ? 0.0f : -1.0f;
        for (int64_t q = s->off[i]; q < s->off[i + 1]; q++) {
            if (multihot) x[s->idx[q]] = 1.0f;
            else x[q - s->off[i]] = (float)s->idx[q];
        }
        t->y[row] = s->y[i];
        if (!is_test[i] && o->by) out->row_key[row] = s->key[i];
    }
    free(is_test);
    if (multihot) { /* plain features: no item vocabulary in the file */
        for (int32_t k = 0; out->item_name && k < items; k++) free(out->item_name[k]);
        free(out->item_name);
        out->item_name = NULL;
        out->items = 0;
    }
    return FH_OK;
}

fh_status data_load_supermarket(const char *dir, const data_items_opts *o, data_set *out)
{
    memset(out, 0, sizeof *out);
    if (o->by)
        return fh_error_set(FH_EINPUT, "prepare supermarket: --by %s: the baskets have no customer column for a natural "
                            "partition (use --partition iid, dirichlet or quantity)", o->by);
    char path[2048], ipath[2048];
    snprintf(path, sizeof path, "%s/supermarket_baskets.csv", dir);
    snprintf(ipath, sizeof ipath, "%s/supermarket_items.txt", dir);
    fh_status st = FH_OK;
    char *line = NULL;
    size_t cap = 0;
    /* item names: one a line */
    FILE *f = fopen(ipath, "r");
    if (!f) return fh_error_set(FH_EINPUT, "%s: cannot read the item names (one department a line)", ipath);
    int32_t items = 0, icap = 0;
    char **names = NULL;
    while (getline(&line, &cap, f) > 0) {
        trim_eol(line);
        if (!line[0]) continue;
        if (items == icap) {
            icap = icap ? 2 * icap : 256;
            char **nn = realloc(names, (size_t)icap * sizeof *nn);
            if (!nn) { st = fh_error_set(FH_ENOMEM, "out of memory"); break; }
            names = nn;
        }
        if (!(names[items] = str_dup(line))) { st = fh_error_set(FH_ENOMEM, "out of memory"); break; }
        items++;
    }
    fclose(f);
    out->item_name = names;
    out->items = items;
    if (st == FH_OK && items < 1) st = fh_error_set(FH_EINPUT, "%s: no item names", ipath);
    if (st != FH_OK) {
        free(line);
        data_free(out);
        return st;
    }
    f = fopen(path, "r");
    if (!f) {
        free(line);
        data_free(out);
        return fh_error_set(FH_EINPUT, "%s: cannot read the baskets (basket_id,high|low,items)", path);
    }
    sets_t s;
    memset(&s, 0, sizeof s);
    int32_t *buf = malloc((size_t)items * 4 * sizeof *buf);
    int64_t lineno = 0;
    if (!buf) st = fh_error_set(FH_ENOMEM, "out of memory");
    while (st == FH_OK && getline(&line, &cap, f) > 0) {
        lineno++;
        trim_eol(line);
        if (!line[0]) continue;
        char *c1 = strchr(line, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
        if (!c1 || !c2) {
            st = fh_error_set(FH_EINPUT, "%s:%lld: expected basket_id,high|low,items", path, (long long)lineno);
            break;
        }
        *c2 = 0;
        const char *lab = c1 + 1;
        int32_t y = !strcmp(lab, "high") ? 1 : !strcmp(lab, "low") ? 0 : -1;
        if (y < 0) {
            st = fh_error_set(FH_EINPUT, "%s:%lld: total '%s': expected high or low", path, (long long)lineno, lab);
            break;
        }
        int32_t k = 0;
        char *p = c2 + 1;
        while (st == FH_OK) {
            while (*p == ' ' || *p == '\t') p++;
            if (!*p) break;
            char *e;
            long v = strtol(p, &e, 10);
            if (e == p || (*e && *e != ' ' && *e != '\t')) {
                st = fh_error_set(FH_EINPUT, "%s:%lld: item '%.20s': expected a department index 1..%d", path,
                                  (long long)lineno, p, items);
                break;
            }
            if (v < 1 || v > items) {
                st = fh_error_set(FH_EINPUT, "%s:%lld: item index %ld out of range: expected 1..%d (the departments "
                                  "of %s)", path, (long long)lineno, v, items, ipath);
                break;
            }
            if (k == items * 4) {
                st = fh_error_set(FH_EINPUT, "%s:%lld: more than %d items in one basket", path, (long long)lineno,
                                  items * 4);
                break;
            }
            buf[k++] = (int32_t)(v - 1);
            p = e;
        }
        if (st == FH_OK && k == 0)
            st = fh_error_set(FH_EINPUT, "%s:%lld: empty basket (no items): every basket needs at least one "
                              "department", path, (long long)lineno);
        if (st == FH_OK) st = sets_add(&s, buf, k, y, 0);
    }
    fclose(f);
    free(line);
    free(buf);
    if (st == FH_OK && s.n == 0) st = fh_error_set(FH_EINPUT, "%s: no baskets", path);
    if (st == FH_OK) st = sets_encode(&s, items, o, path, out);
    sets_free(&s);
    if (st == FH_OK) {
        snprintf(out->name, sizeof out->name, "supermarket");
        out->nclasses = 2;
        out->class_name = calloc(2, sizeof *out->class_name);
        if (!out->class_name || !(out->class_name[0] = str_dup("low")) || !(out->class_name[1] = str_dup("high")))
            st = fh_error_set(FH_ENOMEM, "out of memory");
    }
    if (st != FH_OK) data_free(out);
    return st;
}

/* Split a CSV line at commas, in place; a field in double quotes may hold commas (the quotes
 * are removed; ticdata has no escaped quotes). Returns the field count. */
static int32_t split_commas(char *line, char **f, int32_t max)
{
    int32_t n = 0;
    char *p = line;
    while (n < max) {
        if (*p == '"') {
            char *q = strchr(p + 1, '"');
            if (q) {
                f[n++] = p + 1;
                *q = 0;
                if (q[1] != ',') break;
                p = q + 2;
                continue;
            }
        }
        f[n++] = p;
        char *c = strchr(p, ',');
        if (!c) break;
        *c = 0;
        p = c + 1;
    }
    return n;
}

fh_status data_load_ticdata(const char *path, const data_items_opts *o, data_set *out)
{
    memset(out, 0, sizeof *out);
    enum { MAXC = 256 };
    char *fld[MAXC], *hdr[MAXC];
    char *line = NULL, *hline = NULL;
    size_t cap = 0;
    fh_status st = FH_OK;
    FILE *f = fopen(path, "r");
    if (!f) return fh_error_set(FH_EINPUT, "%s: cannot read the CoIL 2000 data (ticdata.csv)", path);
    if (getline(&hline, &cap, f) <= 0) {
        fclose(f);
        free(hline);
        return fh_error_set(FH_EINPUT, "%s: empty file (expected a header row)", path);
    }
    cap = 0;
    trim_eol(hline);
    const int32_t nc = split_commas(hline, hdr, MAXC);
    /* items: the A* (number of policies) columns after the last P* (contribution) column */
    int32_t lastp = -1, lab = -1, by = -1;
    for (int32_t j = 0; j < nc; j++) {
        if (hdr[j][0] == 'P') lastp = j;
        if (!strcmp(hdr[j], "CARAVAN")) lab = j;
        if (o->by && !strcmp(hdr[j], o->by)) by = j;
    }
    int32_t col[MAXC], items = 0;
    for (int32_t j = lastp + 1; j < nc; j++)
        if (hdr[j][0] == 'A') col[items++] = j;
    if (lab < 0) st = fh_error_set(FH_EINPUT, "%s: no label column CARAVAN", path);
    else if (items < 1) st = fh_error_set(FH_EINPUT, "%s: no product columns A* after the P* columns", path);
    else if (o->by && by < 0) st = fh_error_set(FH_EINPUT, "prepare ticdata --by %s: no such column in %s", o->by, path);
    /* vocabulary: the product columns, plus "(none)" for customers holding no product */
    out->item_name = calloc((size_t)items + 1, sizeof *out->item_name);
    if (st == FH_OK && !out->item_name) st = fh_error_set(FH_ENOMEM, "out of memory");
    for (int32_t k = 0; st == FH_OK && k <= items; k++)
        if (!(out->item_name[k] = str_dup(k < items ? hdr[col[k]] : "(none)"))) st = fh_error_set(FH_ENOMEM, "out of memory");
    out->items = items + 1;
    sets_t s;
    memset(&s, 0, sizeof s);
    char **keys = NULL;
    int32_t nkeys = 0, kcap = 0;
    int32_t buf[MAXC];
    int64_t lineno = 1;
    while (st == FH_OK && getline(&line, &cap, f) > 0) {
        lineno++;
        trim_eol(line);
        if (!line[0]) continue;
        if (split_commas(line, fld, MAXC) != nc) {
            st = fh_error_set(FH_EINPUT, "%s:%lld: expected %d fields", path, (long long)lineno, nc);
            break;
        }
        int32_t y = !strcmp(fld[lab], "insurance") ? 1 : !strcmp(fld[lab], "noinsurance") ? 0 : -1;
        if (y < 0) {
            st = fh_error_set(FH_EINPUT, "%s:%lld: CARAVAN '%s': expected insurance or noinsurance", path,
                              (long long)lineno, fld[lab]);
            break;
        }
        int32_t k = 0;
        for (int32_t q = 0; q < items; q++) {
            char *e;
            double v = strtod(fld[col[q]], &e);
            if (e == fld[col[q]] || *e || !isfinite(v) || v < 0) {
                st = fh_error_set(FH_EINPUT, "%s:%lld: column %s = '%s': expected a count >= 0", path,
                                  (long long)lineno, hdr[col[q]], fld[col[q]]);
                break;
            }
            if (v > 0) buf[k++] = q;
        }
        if (st != FH_OK) break;
        if (k == 0) buf[k++] = items; /* "(none)" */
        int32_t key = 0;
        if (by >= 0) {
            for (key = 0; key < nkeys && strcmp(keys[key], fld[by]) != 0; key++) {}
            if (key == nkeys) {
                if (nkeys == kcap) {
                    kcap = kcap ? 2 * kcap : 64;
                    char **nk = realloc(keys, (size_t)kcap * sizeof *nk);
                    if (!nk) { st = fh_error_set(FH_ENOMEM, "out of memory"); break; }
                    keys = nk;
                }
                if (!(keys[nkeys] = str_dup(fld[by]))) { st = fh_error_set(FH_ENOMEM, "out of memory"); break; }
                nkeys++;
            }
        }
        st = sets_add(&s, buf, k, y, key);
    }
    fclose(f);
    free(line);
    free(hline);
    if (st == FH_OK) st = sets_encode(&s, out->items, o, path, out);
    sets_free(&s);
    if (st == FH_OK && o->by) { /* keys in sorted order, as the CSV loader does */
        int32_t *rank = malloc((size_t)(nkeys ? nkeys : 1) * sizeof *rank);
        char **sorted = malloc((size_t)(nkeys ? nkeys : 1) * sizeof *sorted);
        if (!rank || !sorted) st = fh_error_set(FH_ENOMEM, "out of memory");
        for (int32_t a = 0; st == FH_OK && a < nkeys; a++) {
            int32_t r = 0;
            for (int32_t b = 0; b < nkeys; b++) r += strcmp(keys[b], keys[a]) < 0;
            rank[a] = r;
            sorted[r] = keys[a];
        }
        if (st == FH_OK) {
            for (int64_t i = 0; i < out->train.n; i++) out->row_key[i] = rank[out->row_key[i]];
            free(keys);
            keys = sorted;
            sorted = NULL;
        }
        free(rank);
        free(sorted);
        out->key_name = keys;
        out->nkeys = nkeys;
        keys = NULL;
    }
    for (int32_t k = 0; keys && k < nkeys; k++) free(keys[k]);
    free(keys);
    if (st == FH_OK) {
        snprintf(out->name, sizeof out->name, "ticdata");
        out->nclasses = 2;
        out->class_name = calloc(2, sizeof *out->class_name);
        if (!out->class_name || !(out->class_name[0] = str_dup("noinsurance")) ||
            !(out->class_name[1] = str_dup("insurance")))
            st = fh_error_set(FH_ENOMEM, "out of memory");
    }
    if (st != FH_OK) data_free(out);
    return st;
}
