/* Latent client groups with known structure: K groups of clients, each group seeing its own
 * transform of the data (rotated images, or a fixed label permutation). Used to test
 * multi-center FL: the true group of every client is stored in the data file. */
#define _DEFAULT_SOURCE
#include "fedhpc/data.h"
#include "fedhpc/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

fh_status group_parse(const char *s, group_kind *out)
{
    if (!strcmp(s, "rotate")) *out = GROUP_ROTATE;
    else if (!strcmp(s, "permute-labels")) *out = GROUP_PERMUTE_LABELS;
    else return fh_error_set(FH_EINPUT, "prepare --group-transform: expected rotate or permute-labels, got '%s'", s);
    return FH_OK;
}

const char *group_name(group_kind k) { return k == GROUP_ROTATE ? "rotate" : "permute-labels"; }

fh_status group_assign(int32_t clients, int32_t K, uint64_t seed, int32_t *group)
{
    if (K < 1 || K > clients)
        return fh_error_set(FH_EINPUT, "prepare --groups %d: expected between 1 and the number of clients (%d)", K, clients);
    uint32_t *order = malloc((size_t)clients * sizeof *order);
    FH_CHECK_ALLOC(order);
    for (int32_t c = 0; c < clients; c++) order[c] = (uint32_t)c;
    rng_t r = rng_stream(seed, 0, 0, RNG_GROUPS);
    rng_shuffle_u32(&r, order, (size_t)clients);
    for (int32_t i = 0; i < clients; i++) group[order[i]] = i % K;
    free(order);
    return FH_OK;
}

void group_label_perm(int32_t g, uint64_t seed, int32_t nclasses, int32_t *perm)
{
    uint32_t *p = (uint32_t *)perm;
    for (int32_t k = 0; k < nclasses; k++) p[k] = (uint32_t)k;
    if (g == 0) return;
    rng_t r = rng_stream(seed, (uint64_t)g, 1, RNG_GROUPS);
    rng_shuffle_u32(&r, p, (size_t)nclasses);
}

static void rotate_image(const float *in, float *out, int s, double deg)
{
    const double a = deg * 3.14159265358979323846 / 180.0, ca = cos(a), sa = sin(a), c = (s - 1) / 2.0;
    for (int i = 0; i < s; i++)
        for (int j = 0; j < s; j++) {
            /* output pixel (i, j) samples the input at the inverse rotation (bilinear) */
            double y = (i - c) * ca - (j - c) * sa + c, x = (i - c) * sa + (j - c) * ca + c;
            int y0 = (int)floor(y), x0 = (int)floor(x);
            double fy = y - y0, fx = x - x0, v = 0;
            for (int dy = 0; dy < 2; dy++)
                for (int dx = 0; dx < 2; dx++) {
                    int yy = y0 + dy, xx = x0 + dx;
                    if (yy < 0 || yy >= s || xx < 0 || xx >= s) continue;
                    v += (dy ? fy : 1 - fy) * (dx ? fx : 1 - fx) * in[yy * s + xx];
                }
            out[i * s + j] = (float)v;
        }
}

fh_status group_apply(group_kind kind, int32_t K, uint64_t seed, int32_t nclasses, int32_t d,
                      float *x, int32_t *y, int64_t n, const int32_t *row_group)
{
    if (kind == GROUP_PERMUTE_LABELS) {
        int32_t *perm = malloc((size_t)K * (size_t)nclasses * sizeof *perm);
        FH_CHECK_ALLOC(perm);
        for (int32_t g = 0; g < K; g++) group_label_perm(g, seed, nclasses, perm + (int64_t)g * nclasses);
        for (int64_t i = 0; i < n; i++) y[i] = perm[(int64_t)row_group[i] * nclasses + y[i]];
        free(perm);
        return FH_OK;
    }
    int s = (int)lround(sqrt((double)d));
    if ((int64_t)s * s != d)
        return fh_error_set(FH_EINPUT, "prepare --group-transform rotate: needs square images, but rows have %d features", d);
    float *tmp = malloc((size_t)d * sizeof *tmp);
    FH_CHECK_ALLOC(tmp);
    for (int64_t i = 0; i < n; i++) {
        if (row_group[i] == 0) continue;
        rotate_image(x + i * d, tmp, s, 360.0 * row_group[i] / K);
        memcpy(x + i * d, tmp, (size_t)d * sizeof *tmp);
    }
    free(tmp);
    return FH_OK;
}
