/* RDP accountant of the sampled Gaussian mechanism: see include/fedhpc/privacy.h.
 *
 * A port of the published formulas as implemented in TF Privacy rdp_accountant.py and
 * Opacus analysis/rdp.py (_compute_log_a_for_int_alpha, _compute_log_a_for_frac_alpha,
 * _compute_rdp, get_privacy_spent). Everything stays in log space.
 */
#include "fedhpc/privacy.h"

#include <math.h>
#include <stddef.h>

#define NFRAC 99 /* orders 1.1 .. 10.9 */

double privacy_order(int i)
{
    if (i < 0 || i >= PRIVACY_NORDERS) return NAN;
    if (i < NFRAC) return 1.0 + (double)(i + 1) / 10.0; /* same float ops as Python 1 + x / 10.0 */
    return (double)(12 + (i - NFRAC));
}

/* log(exp(x) + exp(y)) */
static double log_add(double x, double y)
{
    double a = fmin(x, y), b = fmax(x, y);
    if (a == -INFINITY) return b;
    return log1p(exp(a - b)) + b;
}

/* log(exp(x) - exp(y)) for x >= y; NaN when x < y (Opacus raises there). */
static double log_sub(double x, double y)
{
    if (x < y) return NAN;
    if (y == -INFINITY) return x;
    if (x == y) return -INFINITY;
    return x + log(-expm1(y - x));
}

/* log(erfc(x)), accurate also where erfc underflows (x large). */
static double log_erfc(double x)
{
    if (x < 25.0) return log(erfc(x));
    /* erfc(x) = exp(-x^2) / (x sqrt(pi)) * (1 - 1/(2x^2) + 3/(2x^2)^2 - 15/(2x^2)^3 + ...) */
    double r = 1.0 / (2.0 * x * x), term = 1.0, sum = 1.0;
    for (int k = 1; k <= 8; k++) {
        term *= -(2.0 * k - 1.0) * r;
        sum += term;
    }
    return -x * x - log(x) - 0.57236494292470008707 /* log(pi)/2 */ + log(sum);
}

/* log(1 - q) accurately for small q */
static double log1m(double q) { return log1p(-q); }

/* log A_alpha for integer alpha >= 2: log sum_i C(alpha,i) q^i (1-q)^(alpha-i) e^{(i^2-i)/(2s^2)} */
static double log_a_int(double q, double sigma, long alpha)
{
    double la = -INFINITY, lq = log(q), l1q = log1m(q), s2 = 2.0 * sigma * sigma;
    double lg_a1 = lgamma((double)alpha + 1.0);
    for (long i = 0; i <= alpha; i++) {
        double lbin = lg_a1 - lgamma((double)i + 1.0) - lgamma((double)(alpha - i) + 1.0);
        double di = (double)i;
        double s = lbin + di * lq + (double)(alpha - i) * l1q + (di * di - di) / s2;
        la = log_add(la, s);
    }
    return la;
}

/* log A_alpha for fractional alpha: the two series of Mironov et al. (Sec. 3.3) with log erfc. */
static double log_a_frac(double q, double sigma, double alpha)
{
    double la0 = -INFINITY, la1 = -INFINITY;
    double lq = log(q), l1q = log1m(q), s2 = 2.0 * sigma * sigma, rs = sqrt(2.0) * sigma;
    double z0 = sigma * sigma * log(1.0 / q - 1.0) + 0.5;
    /* binom(alpha, i) tracked as sign * exp(lcoef): binom(alpha, i) = binom(alpha, i-1) (alpha-i+1)/i */
    double lcoef = 0.0;
    int sign = 1;
    for (long i = 0;; i++) {
        if (i > 0) {
            double f = (alpha - (double)i + 1.0) / (double)i;
            if (f < 0) sign = -sign;
            lcoef += log(fabs(f));
        }
        double di = (double)i, j = alpha - di;
        double lt0 = lcoef + di * lq + j * l1q;
        double lt1 = lcoef + j * lq + di * l1q;
        double le0 = log(0.5) + log_erfc((di - z0) / rs);
        double le1 = log(0.5) + log_erfc((z0 - j) / rs);
        double ls0 = lt0 + (di * di - di) / s2 + le0;
        double ls1 = lt1 + (j * j - j) / s2 + le1;
        if (sign > 0) {
            la0 = log_add(la0, ls0);
            la1 = log_add(la1, ls1);
        } else {
            la0 = log_sub(la0, ls0);
            la1 = log_sub(la1, ls1);
        }
        if (isnan(la0) || isnan(la1)) return NAN;
        if (fmax(ls0, ls1) < -30.0) break;
        if (i > 10000000L) return NAN; /* did not converge: never seen for sane arguments */
    }
    return log_add(la0, la1);
}

double privacy_rdp_sgm(double q, double sigma, double alpha)
{
    if (!(q >= 0.0 && q <= 1.0) || !(sigma >= 0.0) || !(alpha > 1.0) || isnan(alpha))
        return NAN;
    if (q == 0.0) return 0.0;
    if (sigma == 0.0) return INFINITY;
    if (isinf(sigma)) return 0.0;
    if (q == 1.0) return alpha / (2.0 * sigma * sigma);
    if (isinf(alpha)) return INFINITY;
    double la;
    if (alpha == floor(alpha) && alpha < 1e6)
        la = log_a_int(q, sigma, (long)alpha);
    else
        la = log_a_frac(q, sigma, alpha);
    return la / (alpha - 1.0);
}

void privacy_accountant_init(privacy_accountant *a)
{
    for (int i = 0; i < PRIVACY_NORDERS; i++) a->rdp[i] = 0.0;
    a->steps = 0;
}

fh_status privacy_accountant_step(privacy_accountant *a, double q, double sigma, int64_t steps)
{
    if (!(q >= 0.0 && q <= 1.0))
        return fh_error_set(FH_EINPUT, "privacy: sample rate %g is not in [0, 1]", q);
    if (!(sigma >= 0.0) || isinf(sigma))
        return fh_error_set(FH_EINPUT, "privacy: noise multiplier %g is not a finite number >= 0",
                            sigma);
    if (steps < 0)
        return fh_error_set(FH_EINPUT, "privacy: step count %lld is negative", (long long)steps);
    if (steps == 0) return FH_OK;
    double add[PRIVACY_NORDERS];
    for (int i = 0; i < PRIVACY_NORDERS; i++) {
        double alpha = privacy_order(i), r = privacy_rdp_sgm(q, sigma, alpha);
        if (isnan(r))
            return fh_error_set(FH_EFAULT,
                                "privacy: RDP of q=%g, sigma=%g at order %g is not a number", q,
                                sigma, alpha);
        add[i] = r == 0.0 ? 0.0 : r * (double)steps; /* 0 * inf never happens: steps > 0 */
    }
    for (int i = 0; i < PRIVACY_NORDERS; i++) a->rdp[i] += add[i];
    a->steps += steps;
    return FH_OK;
}

void privacy_accountant_merge(privacy_accountant *a, const privacy_accountant *b)
{
    int64_t steps = b->steps;
    for (int i = 0; i < PRIVACY_NORDERS; i++) a->rdp[i] += b->rdp[i];
    a->steps += steps;
}

static fh_status check_delta(double delta)
{
    if (!(delta > 0.0 && delta < 1.0))
        return fh_error_set(FH_EINPUT, "privacy: delta %g is not in (0, 1)", delta);
    return FH_OK;
}

fh_status privacy_rdp_to_epsilon(const double *orders, const double *rdp, int n, double delta,
                                 double *eps, double *best_order)
{
    FH_TRY(check_delta(delta));
    if (n < 1) return fh_error_set(FH_EINPUT, "privacy: no Renyi orders given");
    double ld = log(delta), best = NAN, best_a = NAN;
    for (int i = 0; i < n; i++) {
        double al = orders[i];
        if (!(al > 1.0) || isinf(al))
            return fh_error_set(FH_EINPUT, "privacy: Renyi order %g is not a finite number > 1",
                                al);
        double e = rdp[i] - (ld + log(al)) / (al - 1.0) + log((al - 1.0) / al);
        if (isnan(e)) continue;            /* np.nanargmin ignores NaN */
        if (isnan(best) || e < best) {     /* first minimum wins, as argmin */
            best = e;
            best_a = al;
        }
    }
    *eps = isnan(best) ? INFINITY : best; /* all NaN: no privacy (Opacus returns inf, nan) */
    if (best_order) *best_order = best_a;
    return FH_OK;
}

fh_status privacy_epsilon(const privacy_accountant *a, double delta, double *eps,
                          double *best_order)
{
    FH_TRY(check_delta(delta));
    int any = 0;
    for (int i = 0; i < PRIVACY_NORDERS; i++) any |= a->rdp[i] != 0.0;
    if (!any) { /* nothing spent */
        *eps = 0.0;
        if (best_order) *best_order = NAN;
        return FH_OK;
    }
    double orders[PRIVACY_NORDERS];
    for (int i = 0; i < PRIVACY_NORDERS; i++) orders[i] = privacy_order(i);
    return privacy_rdp_to_epsilon(orders, a->rdp, PRIVACY_NORDERS, delta, eps, best_order);
}

/* epsilon of `steps` steps at (q, sigma) */
static fh_status eps_of(double q, double sigma, int64_t steps, double delta, double *eps)
{
    privacy_accountant a;
    privacy_accountant_init(&a);
    FH_TRY(privacy_accountant_step(&a, q, sigma, steps));
    return privacy_epsilon(&a, delta, eps, NULL);
}

fh_status privacy_sigma_for_epsilon(double q, int64_t steps, double delta, double target_eps,
                                    double *sigma)
{
    if (!(q >= 0.0 && q <= 1.0))
        return fh_error_set(FH_EINPUT, "privacy: sample rate %g is not in [0, 1]", q);
    if (steps < 0)
        return fh_error_set(FH_EINPUT, "privacy: step count %lld is negative", (long long)steps);
    FH_TRY(check_delta(delta));
    if (!(target_eps > 0.0) || isinf(target_eps))
        return fh_error_set(FH_EINPUT, "privacy: target epsilon %g is not a finite number > 0",
                            target_eps);
    if (q == 0.0 || steps == 0) {
        *sigma = 0.0;
        return FH_OK;
    }
    const double max_sigma = 1e6;
    double lo = 0.0, hi = 1.0, e;
    for (;;) {
        FH_TRY(eps_of(q, hi, steps, delta, &e));
        if (e <= target_eps) break;
        lo = hi;
        hi *= 2.0;
        if (hi > max_sigma)
            return fh_error_set(FH_EINPUT,
                                "privacy: target epsilon %g is out of reach at delta %g "
                                "(even noise multiplier %g does not get there)",
                                target_eps, delta, max_sigma);
    }
    /* invariant: eps(lo) > target (or lo == 0), eps(hi) <= target */
    while (hi - lo > 1e-7 * hi) {
        double mid = 0.5 * (lo + hi);
        FH_TRY(eps_of(q, mid, steps, delta, &e));
        if (e <= target_eps) hi = mid;
        else lo = mid;
    }
    *sigma = hi;
    return FH_OK;
}
