/* Fixed-point encoding of weighted updates, and the client-update sanity check. */
#include "fedhpc/agg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* no-math-errno lets GCC inline llrint as one cvtsd2si (the same rounding, the current mode:
 * bit-identical sums) instead of a libm call per parameter: the reduction ran at ~15-35% of
 * memory bandwidth with the call (issue 5, item 3). */
__attribute__((optimize("no-math-errno")))
void fx_accumulate(int64_t *acc, const float *v, double weight, int64_t n)
{
    const double s = weight * FX_SCALE;
    for (int64_t j = 0; j < n; j++) acc[j] += (int64_t)llrint(s * (double)v[j]);
}

void fx_decode(const int64_t *acc, double scale, float *out, int64_t n)
{
    const double s = scale / FX_SCALE;
    for (int64_t j = 0; j < n; j++) out[j] = (float)((double)acc[j] * s);
}

int fl_update_ok(const float *v, int64_t n, double max_norm, double *norm)
{
    double ss = 0, mx = 0;
    for (int64_t j = 0; j < n; j++) {
        double a = fabs((double)v[j]);
        ss += a * a;
        if (!(a <= mx)) mx = a; /* NaN propagates into mx */
    }
    double nrm = sqrt(ss);
    *norm = isfinite(nrm) && isfinite(mx) ? nrm : NAN;
    return isfinite(nrm) && isfinite(mx) && nrm <= max_norm && mx <= FX_MAX_ABS;
}

fh_status fx_bufs_begin(int64_t **buf, int32_t *cap, int32_t nloc, int64_t nacc)
{
    if (nloc > *cap) {
        free(*buf);
        *buf = malloc((size_t)nloc * (size_t)nacc * sizeof **buf);
        *cap = *buf ? nloc : 0;
        FH_CHECK_ALLOC(*buf);
    }
    if (nloc) memset(*buf, 0, (size_t)nloc * (size_t)nacc * sizeof **buf);
    return FH_OK;
}
