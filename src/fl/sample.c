/* Deterministic client sampling and the placement of a round's clients on ranks. */
#include "fedhpc/rng.h"
#include "fedhpc/sample.h"

#include <stdlib.h>

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

fh_status fl_sample_clients(uint64_t seed, int64_t round, int32_t C, int32_t m, int32_t *out,
                            int32_t *n_out)
{
    if (m >= C) {
        for (int32_t i = 0; i < C; i++) out[i] = i;
        *n_out = C;
        return FH_OK;
    }
    /* Floyd: for j = C-m .. C-1 pick t in [0, j]; take t unless taken, then j. The set is an
     * open-addressing hash of size >= 2m (memory grows with m, not with C). */
    uint32_t cap = 16;
    while (cap < 2u * (uint32_t)m) cap <<= 1;
    int32_t *set = malloc(cap * sizeof *set);
    FH_CHECK_ALLOC(set);
    for (uint32_t i = 0; i < cap; i++) set[i] = -1;
    rng_t r = rng_stream(seed, 0, (uint64_t)round, RNG_SAMPLE);
    int32_t n = 0;
    for (int64_t j = (int64_t)C - m; j < C; j++) {
        int32_t t = (int32_t)rng_below(&r, (uint64_t)j + 1);
        for (int pass = 0; pass < 2; pass++) {
            uint32_t h = ((uint32_t)t * 2654435761u) & (cap - 1);
            while (set[h] != -1 && set[h] != t) h = (h + 1) & (cap - 1);
            if (set[h] == -1) {
                set[h] = t;
                out[n++] = t;
                break;
            }
            t = (int32_t)j; /* t was taken: j cannot be (it is new this step) */
        }
    }
    free(set);
    qsort(out, (size_t)n, sizeof *out, cmp_i32);
    *n_out = n;
    return FH_OK;
}

void fl_assign_ranks(const int64_t *count, int32_t n, int P, int32_t *first)
{
    int64_t total = 0;
    for (int32_t i = 0; i < n; i++) total += count[i];
    /* client i goes to the rank whose share of rows contains the midpoint of its rows */
    int64_t cum = 0;
    int p = 0;
    first[0] = 0;
    for (int32_t i = 0; i < n; i++) {
        double mid = (double)cum + 0.5 * (double)count[i];
        int q = total > 0 ? (int)(mid * P / (double)total) : (int)((int64_t)i * P / n);
        if (q >= P) q = P - 1;
        while (p < q) first[++p] = i;
        cum += count[i];
    }
    while (p < P) first[++p] = n;
}
