/* MovieLens ratings as implicit-feedback interactions for LightGCN (issue 15; docs/recommend.md).
 *
 * Input: a CSV (plain or gzip, read with zlib) with a header naming at least movieId, userId,
 * rating, timestamp (genres for --partition genre; title and year name the items; an optional
 * enterprise column assigns rows to clients as given). Output: a data_set whose training rows
 * are interactions x = [user, heldout], y = item, the items as classes (names "title (year)"),
 * no test split (each user's held-out interactions are rows with heldout = 1), and the client
 * of every row.
 */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/data.h"
#include "fedhpc/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define ML_MAX_FIELDS 16

typedef struct {
    int64_t movie, user, ts;
    double rating;
    int32_t genre;  /* index into the genre names (first listed genre), -1: none */
    int32_t ent;    /* the enterprise column, -1: none                          */
    int64_t line;
    char *title;    /* "title (year)" of the movie (owned by the first row of it) */
} ml_row;

/* Split a CSV line in place into at most max fields ("..." with "" escapes). */
static int split_csv(char *s, char **f, int max)
{
    int n = 0;
    char *w = s;
    while (n < max) {
        f[n++] = w;
        if (*s == '"') {
            s++;
            for (;;) {
                if (*s == '"' && s[1] == '"') { *w++ = '"'; s += 2; }
                else if (*s == '"') { s++; break; }
                else if (!*s) break;
                else *w++ = *s++;
            }
        }
        while (*s && *s != ',' && *s != '\n' && *s != '\r') *w++ = *s++;
        if (*s != ',') { *w = 0; break; }
        *w++ = 0;
        s++;
        w = s;
    }
    return n;
}

static int cmp_i64(const void *a, const void *b)
{
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int32_t index_of(const int64_t *a, int32_t n, int64_t v)
{
    int32_t lo = 0, hi = n;
    while (lo < hi) {
        const int32_t mid = lo + (hi - lo) / 2;
        if (a[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* sort of positive rows: user, then time, then movie */
static const ml_row *g_rows;
static int cmp_rows(const void *a, const void *b)
{
    const ml_row *x = &g_rows[*(const int64_t *)a], *y = &g_rows[*(const int64_t *)b];
    if (x->user != y->user) return x->user < y->user ? -1 : 1;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    if (x->movie != y->movie) return x->movie < y->movie ? -1 : 1;
    return 0;
}

static int parse_i64(const char *s, int64_t *v)
{
    char *end;
    long long x = strtoll(s, &end, 10);
    if (end == s || *end) return 0;
    *v = x;
    return 1;
}

fh_status data_load_movielens(const char *path, const data_ml_opts *o, data_set *out, int32_t **client_of_row)
{
    memset(out, 0, sizeof *out);
    *client_of_row = NULL;
    const int by_genre = !strcmp(o->partition, "genre");
    if (!by_genre && strcmp(o->partition, "users") != 0)
        return fh_error_set(FH_EINPUT, "prepare movielens --partition %s: expected users or genre", o->partition);
    gzFile gz = gzopen(path, "rb");
    if (!gz) return fh_error_set(FH_EINPUT, "%s: cannot open the MovieLens CSV", path);
    char line[8192], *f[ML_MAX_FIELDS];
    enum { C_MOVIE, C_TITLE, C_YEAR, C_GENRES, C_USER, C_RATING, C_TS, C_ENT, C_N };
    static const char *names[C_N] = {"movieId", "title", "year", "genres", "userId", "rating", "timestamp", "enterprise"};
    int col[C_N];
    for (int k = 0; k < C_N; k++) col[k] = -1;
    fh_status st = FH_OK;
    if (!gzgets(gz, line, sizeof line)) st = fh_error_set(FH_EINPUT, "%s: empty file (expected a header row)", path);
    int ncol = st == FH_OK ? split_csv(line, f, ML_MAX_FIELDS) : 0;
    for (int c = 0; c < ncol; c++)
        for (int k = 0; k < C_N; k++)
            if (!strcmp(f[c], names[k])) col[k] = c;
    const int need[] = {C_MOVIE, C_USER, C_RATING, C_TS};
    for (size_t k = 0; st == FH_OK && k < sizeof need / sizeof need[0]; k++)
        if (col[need[k]] < 0) st = fh_error_set(FH_EINPUT, "%s:1: no column '%s' in the header", path, names[need[k]]);
    if (st == FH_OK && by_genre && col[C_GENRES] < 0)
        st = fh_error_set(FH_EINPUT, "%s:1: --partition genre needs a 'genres' column", path);
    ml_row *rows = NULL;
    int64_t n = 0, cap = 0, lineno = 1;
    char **genre = NULL;
    int32_t ngenre = 0;
    while (st == FH_OK && gzgets(gz, line, sizeof line)) {
        lineno++;
        if (line[0] == '\n' || line[0] == '\r' || !line[0]) continue;
        const int nf = split_csv(line, f, ML_MAX_FIELDS);
        if (nf != ncol) {
            st = fh_error_set(FH_EINPUT, "%s:%lld: %d fields, expected %d as in the header", path, (long long)lineno, nf, ncol);
            break;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 65536;
            ml_row *r = realloc(rows, (size_t)cap * sizeof *r);
            if (!r) { st = fh_error_set(FH_ENOMEM, "out of memory"); break; }
            rows = r;
        }
        ml_row *r = &rows[n];
        memset(r, 0, sizeof *r);
        r->line = lineno;
        r->genre = r->ent = -1;
        char *end;
        r->rating = strtod(f[col[C_RATING]], &end);
        if (!parse_i64(f[col[C_MOVIE]], &r->movie) || !parse_i64(f[col[C_USER]], &r->user) ||
            !parse_i64(f[col[C_TS]], &r->ts) || end == f[col[C_RATING]] || *end) {
            st = fh_error_set(FH_EINPUT, "%s:%lld: movieId, userId, timestamp must be integers and rating a number",
                              path, (long long)lineno);
            break;
        }
        if (!(r->rating >= 0.5 && r->rating <= 5.0)) {
            st = fh_error_set(FH_EINPUT, "%s:%lld: rating %s outside the 0.5-5 scale", path, (long long)lineno,
                              f[col[C_RATING]]);
            break;
        }
        if (col[C_ENT] >= 0) {
            int64_t e;
            if (!parse_i64(f[col[C_ENT]], &e) || e < 0 || e >= o->clients) {
                st = fh_error_set(FH_EINPUT, "%s:%lld: enterprise '%s': expected an integer in [0, %d) (--clients)", path,
                                  (long long)lineno, f[col[C_ENT]], o->clients);
                break;
            }
            r->ent = (int32_t)e;
        }
        if (col[C_GENRES] >= 0) { /* the first listed genre */
            char *g = f[col[C_GENRES]];
            g[strcspn(g, "|")] = 0;
            int32_t k = 0;
            while (k < ngenre && strcmp(genre[k], g)) k++;
            if (k == ngenre) {
                char **ng = realloc(genre, ((size_t)ngenre + 1) * sizeof *ng);
                if (ng) genre = ng;
                if (!ng || !(genre[ngenre] = strdup(g))) { st = fh_error_set(FH_ENOMEM, "out of memory"); break; }
                ngenre++;
            }
            r->genre = k;
        }
        char t[512];
        snprintf(t, sizeof t, "%s%s%s%s", col[C_TITLE] >= 0 ? f[col[C_TITLE]] : "movie",
                 col[C_YEAR] >= 0 ? " (" : "", col[C_YEAR] >= 0 ? f[col[C_YEAR]] : "", col[C_YEAR] >= 0 ? ")" : "");
        if (col[C_TITLE] < 0 || !f[col[C_TITLE]][0]) snprintf(t, sizeof t, "movie %lld", (long long)r->movie);
        r->title = strdup(t);
        if (!r->title) { st = fh_error_set(FH_ENOMEM, "out of memory"); break; }
        n++;
    }
    if (st == FH_OK && gzeof(gz) == 0) st = fh_error_set(FH_EINPUT, "%s: read error after line %lld", path, (long long)lineno);
    gzclose(gz);
    if (st == FH_OK && n == 0) st = fh_error_set(FH_EINPUT, "%s: no ratings", path);
    /* users and items: sorted distinct ids over every rating (the catalogue) */
    int64_t *uid = NULL, *mid = NULL;
    int32_t nu = 0, nm = 0;
    if (st == FH_OK) {
        uid = malloc((size_t)n * sizeof *uid);
        mid = malloc((size_t)n * sizeof *mid);
        if (!uid || !mid) st = fh_error_set(FH_ENOMEM, "out of memory");
    }
    if (st == FH_OK) {
        for (int64_t k = 0; k < n; k++) { uid[k] = rows[k].user; mid[k] = rows[k].movie; }
        qsort(uid, (size_t)n, sizeof *uid, cmp_i64);
        qsort(mid, (size_t)n, sizeof *mid, cmp_i64);
        for (int64_t k = 0; k < n; k++) if (k == 0 || uid[k] != uid[nu - 1]) uid[nu++] = uid[k];
        for (int64_t k = 0; k < n; k++) if (k == 0 || mid[k] != mid[nm - 1]) mid[nm++] = mid[k];
        out->nclasses = nm;
        out->class_name = fh_calloc((size_t)nm, sizeof *out->class_name);
        if (!out->class_name) st = fh_error_set(FH_ENOMEM, "out of memory");
    }
    /* the positive interactions, by user then time; held-out: the latest floor(f * n_u) */
    int64_t *pos = NULL, npos = 0;
    int32_t *item_genre = NULL, *client_of_item = NULL, *client_of_user = NULL;
    if (st == FH_OK) {
        pos = malloc((size_t)n * sizeof *pos);
        item_genre = malloc((size_t)nm * sizeof *item_genre);
        client_of_item = malloc((size_t)nm * sizeof *client_of_item);
        client_of_user = malloc((size_t)nu * sizeof *client_of_user);
        if (!pos || !item_genre || !client_of_item || !client_of_user) st = fh_error_set(FH_ENOMEM, "out of memory");
    }
    for (int64_t k = 0; st == FH_OK && k < n; k++) {
        const int32_t it = index_of(mid, nm, rows[k].movie);
        if (!out->class_name[it]) {
            out->class_name[it] = rows[k].title;
            rows[k].title = NULL;
            item_genre[it] = rows[k].genre;
        }
        if (rows[k].rating >= o->min_rating) pos[npos++] = k;
    }
    if (st == FH_OK && npos == 0) st = fh_error_set(FH_EINPUT, "%s: no rating >= %g (--min-rating)", path, o->min_rating);
    if (st == FH_OK) {
        g_rows = rows;
        qsort(pos, (size_t)npos, sizeof *pos, cmp_rows);
        out->train.n = npos;
        out->train.d = 2;
        out->train.x = malloc((size_t)npos * 2 * sizeof *out->train.x);
        out->train.y = malloc((size_t)npos * sizeof *out->train.y);
        out->test.d = 2;
        *client_of_row = malloc((size_t)npos * sizeof **client_of_row);
        if (!out->train.x || !out->train.y || !*client_of_row) st = fh_error_set(FH_ENOMEM, "out of memory");
    }
    /* clients: the enterprise column as given, or a partition of the users / of the genres */
    const int32_t K = o->clients;
    for (int32_t u = 0; st == FH_OK && u < nu; u++) client_of_user[u] = -1;
    for (int32_t i = 0; st == FH_OK && i < nm; i++) client_of_item[i] = -1;
    if (st == FH_OK && col[C_ENT] >= 0) {
        for (int64_t p = 0; st == FH_OK && p < npos; p++) {
            const ml_row *r = &rows[pos[p]];
            int32_t *own = by_genre ? &client_of_item[index_of(mid, nm, r->movie)] : &client_of_user[index_of(uid, nu, r->user)];
            if (*own >= 0 && *own != r->ent)
                st = fh_error_set(FH_EINPUT, "%s:%lld: %s %lld is in enterprise %d and enterprise %d, but --partition %s "
                                  "says enterprises hold disjoint %s", path, (long long)r->line,
                                  by_genre ? "movie" : "user", (long long)(by_genre ? r->movie : r->user), *own, r->ent,
                                  o->partition, by_genre ? "item catalogues" : "sets of users");
            *own = r->ent;
        }
    } else if (st == FH_OK && !by_genre) {
        if (K > nu) st = fh_error_set(FH_EINPUT, "prepare movielens: --clients %d but only %d users", K, nu);
        uint32_t *perm = malloc((size_t)nu * sizeof *perm);
        if (st == FH_OK && !perm) st = fh_error_set(FH_ENOMEM, "out of memory");
        if (st == FH_OK) {
            rng_t r = rng_stream(o->seed, 0, 0, RNG_PARTITION);
            for (int32_t u = 0; u < nu; u++) perm[u] = (uint32_t)u;
            rng_shuffle_u32(&r, perm, (size_t)nu);
            for (int32_t p = 0; p < nu; p++) client_of_user[perm[p]] = p % K;
        }
        free(perm);
    } else if (st == FH_OK) { /* genres (first listed) by positive interactions, greedily onto the lightest client */
        int64_t *gcnt = fh_calloc((size_t)ngenre + 1, sizeof *gcnt), *load = fh_calloc((size_t)K, sizeof *load);
        int32_t *gcl = malloc(((size_t)ngenre + 1) * sizeof *gcl);
        uint8_t *done = fh_calloc((size_t)ngenre + 1, 1);
        if (!gcnt || !load || !gcl || !done) st = fh_error_set(FH_ENOMEM, "out of memory");
        if (st == FH_OK && K > ngenre)
            st = fh_error_set(FH_EINPUT, "prepare movielens --partition genre: --clients %d but only %d genres", K, ngenre);
        for (int64_t p = 0; st == FH_OK && p < npos; p++) gcnt[rows[pos[p]].genre]++;
        for (int32_t step = 0; st == FH_OK && step < ngenre; step++) {
            int32_t best = -1;
            for (int32_t gi = 0; gi < ngenre; gi++)
                if (!done[gi] && (best < 0 || gcnt[gi] > gcnt[best] ||
                                  (gcnt[gi] == gcnt[best] && strcmp(genre[gi], genre[best]) < 0)))
                    best = gi;
            int32_t c = 0;
            for (int32_t q = 1; q < K; q++)
                if (load[q] < load[c]) c = q;
            done[best] = 1;
            gcl[best] = c;
            load[c] += gcnt[best];
        }
        for (int32_t i = 0; st == FH_OK && i < nm; i++) client_of_item[i] = item_genre[i] >= 0 ? gcl[item_genre[i]] : 0;
        free(gcnt); free(load); free(gcl); free(done);
    }
    /* rows: x = [user, heldout], y = item */
    for (int64_t p0 = 0; st == FH_OK && p0 < npos;) {
        int64_t p1 = p0;
        while (p1 < npos && rows[pos[p1]].user == rows[pos[p0]].user) p1++;
        const int64_t nh = (int64_t)floor(o->test_frac * (double)(p1 - p0));
        for (int64_t p = p0; p < p1; p++) {
            const ml_row *r = &rows[pos[p]];
            const int32_t u = index_of(uid, nu, r->user), it = index_of(mid, nm, r->movie);
            out->train.x[2 * p] = (float)u;
            out->train.x[2 * p + 1] = p >= p1 - nh ? 1.0f : 0.0f;
            out->train.y[p] = it;
            (*client_of_row)[p] = by_genre ? client_of_item[it] : client_of_user[u];
            if ((*client_of_row)[p] < 0) (*client_of_row)[p] = 0; /* enterprise column: never set only if unused */
        }
        p0 = p1;
    }
    if (st == FH_OK) snprintf(out->name, sizeof out->name, "movielens");
    for (int64_t k = 0; k < n; k++) free(rows[k].title);
    for (int32_t k = 0; k < ngenre; k++) free(genre[k]);
    free(genre); free(rows); free(uid); free(mid); free(pos);
    free(item_genre); free(client_of_item); free(client_of_user);
    if (st != FH_OK) {
        free(*client_of_row);
        *client_of_row = NULL;
        data_free(out);
    }
    return st;
}
