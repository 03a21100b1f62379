/* Partitioners: assign training rows to federated clients (see include/fedhpc/data.h).
 *
 *  iid       rows shuffled (RNG_PARTITION), dealt into `clients` contiguous parts whose sizes
 *            differ by at most one.
 *  dirichlet label skew (Hsu et al. 2019): per class k, proportions p ~ Dir(alpha) over the
 *            clients (Gamma draws from stream (seed, k, attempt, RNG_DIRICHLET)); the class's
 *            rows, shuffled with (seed, k, attempt, RNG_PARTITION), are cut at
 *            floor(cumsum(p) * n_k). Retried with attempt + 1 until every client has at least
 *            min_size rows (at most DIRICHLET_ATTEMPTS attempts).
 *  shards    McMahan et al. 2017: rows sorted by label (stable), cut into 2 * clients shards of
 *            equal size (sizes differ by at most one row); a shuffled shard order
 *            (RNG_PARTITION) gives client c shards order[2c] and order[2c + 1].
 *  natural   client = row_key[i]; the number of clients is nkeys.
 *  quantity  quantity skew: weights w_c = exp(alpha * N(0,1)) (RNG_SIZES); each client gets
 *            min_size rows plus a share of the remaining rows proportional to w_c
 *            (largest-remainder rounding, so sizes sum to n); rows shuffled (RNG_PARTITION)
 *            and dealt in client order.
 */
#include "fedhpc/data.h"
#include "fedhpc/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { DIRICHLET_ATTEMPTS = 1000 };

static const char *const part_names[] = {"iid", "dirichlet", "shards", "natural", "quantity"};
#define PART_COUNT ((int)(sizeof part_names / sizeof part_names[0]))

fh_status part_parse(const char *s, part_kind *out)
{
    for (int k = 0; s && k < PART_COUNT; k++)
        if (strcmp(s, part_names[k]) == 0) {
            *out = (part_kind)k;
            return FH_OK;
        }
    return fh_error_set(FH_EINPUT,
                        "unknown partition '%s' (expected iid, dirichlet, shards, natural or quantity)",
                        s ? s : "(null)");
}

const char *part_name(part_kind k)
{
    return (int)k >= 0 && (int)k < PART_COUNT ? part_names[k] : "unknown";
}

/* perm = 0..n-1 shuffled with the (seed, 0, 0, RNG_PARTITION) stream. */
static fh_status shuffled_rows(uint64_t seed, int64_t n, int64_t **perm)
{
    *perm = fh_calloc((size_t)n, sizeof **perm);
    FH_CHECK_ALLOC(*perm);
    for (int64_t i = 0; i < n; i++) (*perm)[i] = i;
    rng_t r = rng_stream(seed, 0, 0, RNG_PARTITION);
    rng_shuffle_i64(&r, *perm, (size_t)n);
    return FH_OK;
}

/* Deal perm[0..n) to clients in order: client c gets the next size[c] rows. */
static void deal(const int64_t *perm, const int64_t *size, int32_t clients, int32_t *client_of_row)
{
    int64_t i = 0;
    for (int32_t c = 0; c < clients; c++)
        for (int64_t k = 0; k < size[c]; k++) client_of_row[perm[i++]] = c;
}

static fh_status part_iid(const part_opts *o, int64_t n, int32_t *client_of_row)
{
    int64_t *perm;
    FH_TRY(shuffled_rows(o->seed, n, &perm));
    for (int32_t c = 0; c < o->clients; c++) {
        int64_t lo = n * c / o->clients, hi = n * (c + 1) / o->clients;
        for (int64_t i = lo; i < hi; i++) client_of_row[perm[i]] = c;
    }
    free(perm);
    return FH_OK;
}

/* Scratch of the Dirichlet partitioner. */
typedef struct {
    int64_t *class_start; /* [nclasses + 1] offsets of each class in by_class */
    int64_t *by_class;    /* [n] row indices grouped by class (ascending within a class) */
    int64_t *rows;        /* [n] one class's rows, shuffled */
    double *p;            /* [clients] proportions */
    int64_t *size;        /* [clients] rows per client in this attempt */
} dir_scratch;

static void dir_scratch_free(dir_scratch *s)
{
    free(s->class_start);
    free(s->by_class);
    free(s->rows);
    free(s->p);
    free(s->size);
}

/* One attempt: fills client_of_row and s->size. */
static void dirichlet_attempt(const part_opts *o, int32_t nclasses, uint64_t attempt,
                              dir_scratch *s, int32_t *client_of_row)
{
    int32_t C = o->clients;
    memset(s->size, 0, (size_t)C * sizeof *s->size);
    for (int32_t k = 0; k < nclasses; k++) {
        int64_t nk = s->class_start[k + 1] - s->class_start[k];
        if (nk == 0) continue;
        rng_t g = rng_stream(o->seed, (uint64_t)k, attempt, RNG_DIRICHLET);
        double sum = 0;
        for (int32_t c = 0; c < C; c++) sum += s->p[c] = rng_gamma(&g, o->alpha);
        if (!(sum > 0) || !isfinite(sum)) { /* every draw underflowed: all mass on one client */
            memset(s->p, 0, (size_t)C * sizeof *s->p);
            s->p[rng_below(&g, (uint64_t)C)] = sum = 1.0;
        }
        memcpy(s->rows, s->by_class + s->class_start[k], (size_t)nk * sizeof *s->rows);
        rng_t r = rng_stream(o->seed, (uint64_t)k, attempt, RNG_PARTITION);
        rng_shuffle_i64(&r, s->rows, (size_t)nk);
        double cum = 0;
        int64_t lo = 0;
        for (int32_t c = 0; c < C; c++) {
            cum += s->p[c];
            int64_t hi = c == C - 1 ? nk : (int64_t)floor(cum / sum * (double)nk);
            if (hi > nk) hi = nk;
            if (hi < lo) hi = lo;
            for (int64_t i = lo; i < hi; i++) client_of_row[s->rows[i]] = c;
            s->size[c] += hi - lo;
            lo = hi;
        }
    }
}

static fh_status part_dirichlet(const part_opts *o, const int32_t *y, int64_t n, int32_t nclasses,
                                int32_t *client_of_row)
{
    if (!(o->alpha > 0) || !isfinite(o->alpha))
        return fh_error_set(FH_EINPUT, "dirichlet partition: alpha %g: expected a positive number",
                            o->alpha);
    if ((int64_t)o->min_size * o->clients > n)
        return fh_error_set(FH_EINPUT,
                            "dirichlet partition: min_size %d is unreachable: "
                            "%d clients x %d rows > %lld rows",
                            o->min_size, o->clients, o->min_size, (long long)n);
    dir_scratch s = {0};
    s.class_start = fh_calloc((size_t)nclasses + 1, sizeof *s.class_start);
    s.by_class = fh_calloc((size_t)n, sizeof *s.by_class);
    s.rows = fh_calloc((size_t)n, sizeof *s.rows);
    s.p = fh_calloc((size_t)o->clients, sizeof *s.p);
    s.size = fh_calloc((size_t)o->clients, sizeof *s.size);
    if (!s.class_start || !s.by_class || !s.rows || !s.p || !s.size) {
        dir_scratch_free(&s);
        return fh_error_set(FH_ENOMEM, "out of memory at %s:%d", __FILE__, __LINE__);
    }
    for (int64_t i = 0; i < n; i++) s.class_start[y[i] + 1]++;
    for (int32_t k = 0; k < nclasses; k++) s.class_start[k + 1] += s.class_start[k];
    int64_t *cursor = fh_calloc((size_t)nclasses, sizeof *cursor);
    if (!cursor) {
        dir_scratch_free(&s);
        return fh_error_set(FH_ENOMEM, "out of memory at %s:%d", __FILE__, __LINE__);
    }
    memcpy(cursor, s.class_start, (size_t)nclasses * sizeof *cursor);
    for (int64_t i = 0; i < n; i++) s.by_class[cursor[y[i]]++] = i;
    free(cursor);
    for (uint64_t attempt = 0; attempt < DIRICHLET_ATTEMPTS; attempt++) {
        dirichlet_attempt(o, nclasses, attempt, &s, client_of_row);
        int64_t smallest = n;
        for (int32_t c = 0; c < o->clients; c++)
            if (s.size[c] < smallest) smallest = s.size[c];
        if (smallest >= o->min_size) {
            dir_scratch_free(&s);
            return FH_OK;
        }
    }
    dir_scratch_free(&s);
    return fh_error_set(FH_EINPUT,
                        "dirichlet partition: min_size %d unreachable for %d clients with alpha %g "
                        "(%d attempts); use fewer clients, a smaller min_size or a larger alpha",
                        o->min_size, o->clients, o->alpha, DIRICHLET_ATTEMPTS);
}

static fh_status part_shards(const part_opts *o, const int32_t *y, int64_t n, int32_t nclasses,
                             int32_t *client_of_row)
{
    int64_t nshards = 2 * (int64_t)o->clients;
    if (n < nshards)
        return fh_error_set(FH_EINPUT,
                            "shards partition: %lld rows cannot make %lld shards (2 per client)",
                            (long long)n, (long long)nshards);
    int64_t *cnt = fh_calloc((size_t)nclasses + 1, sizeof *cnt);
    int64_t *sorted = fh_calloc((size_t)n, sizeof *sorted);
    uint32_t *order = fh_calloc((size_t)nshards, sizeof *order);
    if (!cnt || !sorted || !order) {
        free(cnt);
        free(sorted);
        free(order);
        return fh_error_set(FH_ENOMEM, "out of memory at %s:%d", __FILE__, __LINE__);
    }
    for (int64_t i = 0; i < n; i++) cnt[y[i] + 1]++;
    for (int32_t k = 0; k < nclasses; k++) cnt[k + 1] += cnt[k];
    for (int64_t i = 0; i < n; i++) sorted[cnt[y[i]]++] = i; /* stable counting sort */
    for (int64_t s = 0; s < nshards; s++) order[s] = (uint32_t)s;
    rng_t r = rng_stream(o->seed, 0, 0, RNG_PARTITION);
    rng_shuffle_u32(&r, order, (size_t)nshards);
    for (int64_t k = 0; k < nshards; k++) {
        int64_t s = order[k], lo = n * s / nshards, hi = n * (s + 1) / nshards;
        for (int64_t i = lo; i < hi; i++) client_of_row[sorted[i]] = (int32_t)(k / 2);
    }
    free(cnt);
    free(sorted);
    free(order);
    return FH_OK;
}

static fh_status part_quantity(const part_opts *o, int64_t n, int32_t *client_of_row)
{
    int32_t C = o->clients;
    if (!(o->alpha >= 0) || !isfinite(o->alpha))
        return fh_error_set(FH_EINPUT,
                            "quantity partition: alpha (log-normal sigma) %g: expected a number >= 0",
                            o->alpha);
    if ((int64_t)o->min_size * C > n)
        return fh_error_set(FH_EINPUT,
                            "quantity partition: min_size %d is unreachable: "
                            "%d clients x %d rows > %lld rows",
                            o->min_size, C, o->min_size, (long long)n);
    double *w = fh_calloc((size_t)C, sizeof *w);
    int64_t *size = fh_calloc((size_t)C, sizeof *size);
    if (!w || !size) {
        free(w);
        free(size);
        return fh_error_set(FH_ENOMEM, "out of memory at %s:%d", __FILE__, __LINE__);
    }
    rng_t g = rng_stream(o->seed, 0, 0, RNG_SIZES);
    double wsum = 0;
    for (int32_t c = 0; c < C; c++) wsum += w[c] = exp(o->alpha * rng_normal(&g));
    /* min_size each, then the rest by largest remainder (ties: lower client id) */
    int64_t rest = n - (int64_t)o->min_size * C, given = 0;
    for (int32_t c = 0; c < C; c++) {
        w[c] = (double)rest * w[c] / wsum; /* quota */
        size[c] = (int64_t)floor(w[c]);
        if (size[c] > rest) size[c] = rest;
        w[c] -= (double)size[c];           /* remainder */
        given += size[c];
    }
    while (given > rest) { /* rounding overshoot (not expected): take from the largest */
        int32_t big = 0;
        for (int32_t c = 1; c < C; c++)
            if (size[c] > size[big]) big = c;
        size[big]--;
        given--;
    }
    for (; given < rest; given++) {
        int32_t best = 0;
        for (int32_t c = 1; c < C; c++)
            if (w[c] > w[best]) best = c;
        size[best]++;
        w[best] = -1.0;
    }
    for (int32_t c = 0; c < C; c++) size[c] += o->min_size;
    int64_t *perm = NULL;
    fh_status st = shuffled_rows(o->seed, n, &perm);
    if (st == FH_OK) deal(perm, size, C, client_of_row);
    free(perm);
    free(w);
    free(size);
    return st;
}

static fh_status part_natural(const int32_t *row_key, int64_t n, int32_t nkeys,
                              int32_t *client_of_row)
{
    if (!row_key || nkeys < 1)
        return fh_error_set(FH_EINPUT,
                            "natural partition needs a grouping column (--by) in the data set");
    if (nkeys > n)
        return fh_error_set(FH_EINPUT, "natural partition: %d groups but only %lld rows", nkeys,
                            (long long)n);
    for (int64_t i = 0; i < n; i++) {
        if (row_key[i] < 0 || row_key[i] >= nkeys)
            return fh_error_set(FH_EINPUT, "natural partition: row %lld has group %d, expected 0..%d",
                                (long long)i, row_key[i], nkeys - 1);
        client_of_row[i] = row_key[i];
    }
    return FH_OK;
}

fh_status part_assign(const part_opts *o, const int32_t *y, int64_t n, int32_t nclasses,
                      const int32_t *row_key, int32_t nkeys, int32_t *client_of_row)
{
    if (!o || !client_of_row || (n > 0 && !y))
        return fh_error_set(FH_EINTERNAL, "part_assign: NULL argument");
    if (n < 1) return fh_error_set(FH_EINPUT, "%s partition: no rows to partition", part_name(o->kind));
    if (o->kind == PART_NATURAL) return part_natural(row_key, n, nkeys, client_of_row);
    if (o->clients < 1 || o->clients > n)
        return fh_error_set(FH_EINPUT, "%s partition: cannot split %lld rows among %d clients "
                            "(expected 1..%lld clients)", part_name(o->kind), (long long)n,
                            o->clients, (long long)n);
    if (o->min_size < 0)
        return fh_error_set(FH_EINPUT, "%s partition: min_size %d: expected >= 0",
                            part_name(o->kind), o->min_size);
    if (o->kind == PART_DIRICHLET || o->kind == PART_SHARDS) {
        if (nclasses < 1)
            return fh_error_set(FH_EINPUT, "%s partition: %d classes", part_name(o->kind), nclasses);
        for (int64_t i = 0; i < n; i++)
            if (y[i] < 0 || y[i] >= nclasses)
                return fh_error_set(FH_EINPUT, "%s partition: label %d of row %lld outside 0..%d",
                                    part_name(o->kind), y[i], (long long)i, nclasses - 1);
    }
    switch (o->kind) {
    case PART_IID: return part_iid(o, n, client_of_row);
    case PART_DIRICHLET: return part_dirichlet(o, y, n, nclasses, client_of_row);
    case PART_SHARDS: return part_shards(o, y, n, nclasses, client_of_row);
    case PART_QUANTITY: return part_quantity(o, n, client_of_row);
    default: break;
    }
    return fh_error_set(FH_EINPUT, "unknown partition kind %d", (int)o->kind);
}

fh_status part_layout(const int32_t *client_of_row, int64_t n, int32_t clients, int64_t *perm,
                      int64_t *offsets)
{
    if (clients < 1 || n < 0 || (n > 0 && (!client_of_row || !perm)) || !offsets)
        return fh_error_set(FH_EINTERNAL, "part_layout: bad arguments (n %lld, clients %d)",
                            (long long)n, clients);
    int64_t *cursor = fh_calloc((size_t)clients, sizeof *cursor);
    FH_CHECK_ALLOC(cursor);
    memset(offsets, 0, ((size_t)clients + 1) * sizeof *offsets);
    for (int64_t i = 0; i < n; i++) {
        int32_t c = client_of_row[i];
        if (c < 0 || c >= clients) {
            free(cursor);
            return fh_error_set(FH_EINTERNAL,
                                "part_layout: row %lld assigned to client %d, expected 0..%d",
                                (long long)i, c, clients - 1);
        }
        offsets[c + 1]++;
    }
    for (int32_t c = 0; c < clients; c++) {
        offsets[c + 1] += offsets[c];
        cursor[c] = offsets[c];
    }
    for (int64_t i = 0; i < n; i++) perm[cursor[client_of_row[i]]++] = i;
    free(cursor);
    return FH_OK;
}
