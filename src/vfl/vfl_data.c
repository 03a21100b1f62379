/* Vertical FL data: column assignment, partial overlap of customers, party files (docs/vertical.md). */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/io.h"
#include "fedhpc/rng.h"
#include "fedhpc/vfl.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int32_t col_find(const data_encoding *e, const char *name)
{
    for (int32_t j = 0; j < e->ncols; j++)
        if (!strcmp(e->col_name[j], name)) return j;
    return -1;
}

fh_status vfl_columns_file(const char *path, const data_encoding *e, int32_t parties, int32_t *col_party)
{
    FILE *f = fopen(path, "r");
    if (!f) return fh_error_set(FH_EINPUT, "prepare --party-columns %s: cannot open for reading", path);
    for (int32_t j = 0; j < e->ncols; j++) col_party[j] = -1;
    int32_t *line_of = fh_calloc((size_t)e->ncols, sizeof *line_of);
    FH_CHECK_ALLOC(line_of);
    char buf[8192];
    long lineno = 0;
    fh_status st = FH_OK;
    int32_t label = -1;
    for (int32_t j = 0; j < e->ncols; j++)
        if (e->kind[j] == COL_LABEL) label = j;
    while (st == FH_OK && fgets(buf, sizeof buf, f)) {
        lineno++;
        char *h = strchr(buf, '#');
        if (h) *h = 0;
        char *s = buf;
        while (isspace((unsigned char)*s)) s++;
        if (!*s) continue;
        char *colon = strchr(s, ':');
        char *end = NULL;
        long p = colon ? strtol(s, &end, 10) : -1;
        if (!colon || end == s || (end && *end != ':' && !isspace((unsigned char)*end))) {
            st = fh_error_set(FH_EINPUT, "%s:%ld: expected 'PARTY: COLUMN COLUMN ...'", path, lineno);
            break;
        }
        if (p < 0 || p >= parties) {
            st = fh_error_set(FH_EINPUT, "%s:%ld: party %ld outside 0..%d (--vertical %d)", path, lineno, p, parties - 1,
                              parties);
            break;
        }
        for (char *tok = strtok(colon + 1, " \t,\r\n"); tok && st == FH_OK; tok = strtok(NULL, " \t,\r\n")) {
            int32_t j = col_find(e, tok);
            if (j < 0) {
                st = fh_error_set(FH_EINPUT, "%s:%ld: no column '%s' in the data set", path, lineno, tok);
            } else if (j == label && p != 0) {
                st = fh_error_set(FH_EINPUT, "%s:%ld: the label column '%s' at party %ld: the label belongs to party 0 "
                                  "only (a label column at two parties)", path, lineno, tok, p);
            } else if (col_party[j] >= 0) {
                st = fh_error_set(FH_EINPUT, "%s:%ld: column '%s' assigned to party %ld and, on line %d, to party %d "
                                  "(overlapping column assignments)", path, lineno, tok, p, line_of[j], col_party[j]);
            } else {
                col_party[j] = (int32_t)p;
                line_of[j] = (int32_t)lineno;
            }
        }
    }
    fclose(f);
    free(line_of);
    if (st != FH_OK) return st;
    if (label >= 0) col_party[label] = 0;
    for (int32_t p = 0; p < parties; p++) {
        int any = 0;
        for (int32_t j = 0; j < e->ncols; j++)
            if (col_party[j] == p && e->first_feature[j] >= 0 && e->kind[j] != COL_LABEL) any = 1;
        if (!any) return fh_error_set(FH_EINPUT, "%s: party %d has no feature column (expected a line '%d: COLUMN ...')", path, p, p);
    }
    return FH_OK;
}

fh_status vfl_columns_seeded(const data_encoding *e, int32_t parties, uint64_t seed, int32_t *col_party)
{
    uint32_t *ord = fh_calloc((size_t)e->ncols, sizeof *ord);
    FH_CHECK_ALLOC(ord);
    uint32_t m = 0;
    for (int32_t j = 0; j < e->ncols; j++) {
        col_party[j] = e->kind[j] == COL_LABEL ? 0 : -1;
        if (e->kind[j] != COL_LABEL && e->first_feature[j] >= 0) ord[m++] = (uint32_t)j;
    }
    if ((int32_t)m < parties) {
        free(ord);
        return fh_error_set(FH_EINPUT, "prepare --vertical %d: only %u feature columns", parties, m);
    }
    rng_t r = rng_stream(seed, 0, 0, RNG_PARTITION);
    rng_shuffle_u32(&r, ord, m);
    for (uint32_t k = 0; k < m; k++) col_party[ord[k]] = (int32_t)(k % (uint32_t)parties);
    free(ord);
    return FH_OK;
}

fh_status vfl_overlap(int64_t n, int32_t parties, double overlap, double own_frac, uint64_t seed, uint8_t *holds)
{
    if (!(overlap > 0 && overlap <= 1)) return fh_error_set(FH_EINPUT, "prepare --overlap %g: expected 0 < F <= 1", overlap);
    int64_t own = (int64_t)floor(own_frac * (double)n);
    int64_t na = n - own * (parties - 1);
    if (own < 0 || na < 2)
        return fh_error_set(FH_EINPUT, "prepare --own-frac %g with %d parties leaves no rows for party 0", own_frac, parties);
    int64_t *perm = fh_calloc((size_t)n, sizeof *perm);
    FH_CHECK_ALLOC(perm);
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    rng_t r = rng_stream(seed, 0, 1, RNG_PARTITION);
    rng_shuffle_i64(&r, perm, (size_t)n);
    memset(holds, 0, (size_t)n * (size_t)parties);
    for (int64_t k = 0; k < na; k++) holds[perm[k]] = 1;
    for (int32_t p = 1; p < parties; p++) {
        for (int64_t k = na + own * (p - 1); k < na + own * p; k++) holds[(int64_t)p * n + perm[k]] = 1;
        rng_t rp = rng_stream(seed, (uint64_t)p, 2, RNG_PARTITION);
        for (int64_t k = 0; k < na; k++)
            if (rng_uniform(&rp) < overlap) holds[(int64_t)p * n + perm[k]] = 1;
    }
    free(perm);
    return FH_OK;
}

int64_t vfl_tag(const char *dataset, uint64_t seed, int32_t parties, double overlap)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a over the inputs */
    for (const char *s = dataset; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    uint64_t v[3] = {seed, (uint64_t)parties, (uint64_t)llround(overlap * 1e9)};
    for (int k = 0; k < 3; k++)
        for (int b = 0; b < 8; b++) h = (h ^ ((v[k] >> (8 * b)) & 0xff)) * 1099511628211ull;
    return (int64_t)(h >> 1);
}

fh_status vfl_party_write(const char *path, const vfl_party_data *pd, char (*names)[VFL_NAME_BYTES])
{
    io_rec *h = NULL;
    FH_TRY(io_rec_create(path, "fedhpc-vertical", &h));
    fh_status st = io_rec_put_i64(h, "parties", pd->parties);
    if (st == FH_OK) st = io_rec_put_i64(h, "party", pd->party);
    if (st == FH_OK) st = io_rec_put_i64(h, "features", pd->d);
    if (st == FH_OK) st = io_rec_put_i64(h, "rows", pd->rows);
    if (st == FH_OK) st = io_rec_put_i64(h, "has_label", pd->has_label);
    if (st == FH_OK) st = io_rec_put_i64(h, "seed", pd->seed);
    if (st == FH_OK) st = io_rec_put_i64(h, "tag", pd->tag);
    if (st == FH_OK) st = io_rec_put(h, "ids", IO_U8, pd->rows, VFL_ID_BYTES, pd->ids);
    if (st == FH_OK) st = io_rec_put(h, "x", IO_F64, pd->rows, pd->d, pd->x);
    if (st == FH_OK) st = io_rec_put(h, "names", IO_U8, pd->d, VFL_NAME_BYTES, names);
    if (st == FH_OK && pd->has_label) st = io_rec_put(h, "y", IO_I32, pd->rows, 0, pd->y);
    if (st == FH_OK && pd->has_label) st = io_rec_put(h, "test", IO_U8, pd->rows, 0, pd->test);
    io_rec_close(h);
    return st;
}

fh_status vfl_party_read(const char *path, vfl_party_data *pd)
{
    memset(pd, 0, sizeof *pd);
    io_rec *h = NULL;
    FH_TRY(io_rec_open(path, "fedhpc-vertical", &h));
    int64_t v[7];
    const char *key[7] = {"parties", "party", "features", "rows", "has_label", "seed", "tag"};
    fh_status st = FH_OK;
    for (int k = 0; k < 7 && st == FH_OK; k++) st = io_rec_get_i64(h, key[k], &v[k]);
    if (st == FH_OK && (v[0] < 1 || v[0] > VFL_MAX_PARTIES || v[1] < 0 || v[1] >= v[0] || v[2] < 1 || v[3] < 0))
        st = fh_error_set(FH_EINPUT, "%s: bad vertical party file attributes", path);
    if (st == FH_OK) {
        pd->parties = (int32_t)v[0];
        pd->party = (int32_t)v[1];
        pd->d = (int32_t)v[2];
        pd->rows = v[3];
        pd->has_label = (int32_t)v[4];
        pd->seed = v[5];
        pd->tag = v[6];
        pd->ids = fh_calloc((size_t)pd->rows, sizeof *pd->ids);
        pd->x = fh_calloc((size_t)(pd->rows * pd->d), sizeof *pd->x);
        if (!pd->ids || !pd->x) st = fh_error_set(FH_ENOMEM, "out of memory");
    }
    if (st == FH_OK) st = io_rec_get(h, "ids", IO_U8, pd->ids, pd->rows * VFL_ID_BYTES);
    if (st == FH_OK) st = io_rec_get(h, "x", IO_F64, pd->x, pd->rows * pd->d);
    if (st == FH_OK && pd->has_label) {
        pd->y = fh_calloc((size_t)pd->rows, sizeof *pd->y);
        pd->test = fh_calloc((size_t)pd->rows, 1);
        if (!pd->y || !pd->test) st = fh_error_set(FH_ENOMEM, "out of memory");
        if (st == FH_OK) st = io_rec_get(h, "y", IO_I32, pd->y, pd->rows);
        if (st == FH_OK) st = io_rec_get(h, "test", IO_U8, pd->test, pd->rows);
        for (int64_t i = 0; st == FH_OK && i < pd->rows; i++)
            if (pd->y[i] != 0 && pd->y[i] != 1) st = fh_error_set(FH_EINPUT, "%s: label %d at row %lld (expected 0/1)", path, pd->y[i], (long long)i);
    }
    for (int64_t i = 0; st == FH_OK && i < pd->rows; i++)
        pd->ids[i][VFL_ID_BYTES - 1] = 0;
    io_rec_close(h);
    if (st != FH_OK) vfl_party_free(pd);
    return st;
}

void vfl_party_free(vfl_party_data *pd)
{
    free(pd->ids);
    free(pd->x);
    free(pd->y);
    free(pd->test);
    memset(pd, 0, sizeof *pd);
}

static const vfl_party_data *g_sort_pd;
static int cmp_rows(const void *a, const void *b)
{
    return strcmp(g_sort_pd->ids[*(const int64_t *)a], g_sort_pd->ids[*(const int64_t *)b]);
}

fh_status vfl_sort_rows(const vfl_party_data *pd, const size_t *rows, size_t n, int64_t *idx)
{
    for (size_t i = 0; i < n; i++) idx[i] = (int64_t)rows[i];
    g_sort_pd = pd;
    qsort(idx, n, sizeof *idx, cmp_rows);
    g_sort_pd = NULL;
    return FH_OK;
}

double vfl_logloss(const double *z, const int32_t *y, int64_t n, double *r)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        /* log(1 + e^z) - y z, computed stably */
        double zi = z[i];
        double sp = zi > 0 ? zi + log1p(exp(-zi)) : log1p(exp(zi));
        s += sp - (y[i] ? zi : 0.0);
        double p = zi >= 0 ? 1.0 / (1.0 + exp(-zi)) : exp(zi) / (1.0 + exp(zi));
        if (r) r[i] = p - (double)y[i];
    }
    return n ? s / (double)n : 0.0;
}

typedef struct {
    double s;
    int32_t y;
} sy_t;
static int cmp_sy(const void *a, const void *b)
{
    double x = ((const sy_t *)a)->s, y = ((const sy_t *)b)->s;
    return x < y ? -1 : x > y;
}

double vfl_auc(const double *s, const int32_t *y, int64_t n)
{
    sy_t *v = fh_calloc((size_t)n, sizeof *v);
    if (!v) return NAN;
    for (int64_t i = 0; i < n; i++) v[i] = (sy_t){s[i], y[i]};
    qsort(v, (size_t)n, sizeof *v, cmp_sy);
    double rank_pos = 0;
    int64_t npos = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        while (j < n && v[j].s == v[i].s) j++;
        double avg = 0.5 * (double)(i + 1 + j); /* ranks i+1 .. j */
        for (int64_t k = i; k < j; k++)
            if (v[k].y) {
                rank_pos += avg;
                npos++;
            }
        i = j;
    }
    free(v);
    int64_t nneg = n - npos;
    if (!npos || !nneg) return NAN;
    return (rank_pos - 0.5 * (double)npos * (double)(npos + 1)) / ((double)npos * (double)nneg);
}

fh_status vfl_write_ids(const char *path, const vfl_party_data *pd, const int64_t *rows, int64_t n)
{
    FILE *f = fopen(path, "w");
    if (!f) return fh_error_set(FH_EIO, "%s: cannot write", path);
    for (int64_t i = 0; i < n; i++) fprintf(f, "%s\n", pd->ids[rows ? rows[i] : i]);
    if (fclose(f) != 0) return fh_error_set(FH_EIO, "%s: cannot write", path);
    return FH_OK;
}
