/* fedhpc/accountant.h — Rényi-DP accountant for the sampled Gaussian mechanism (DP-SGD, DP-FedAvg).
 *
 * One step of the sampled Gaussian mechanism (SGM) with sampling rate q and noise multiplier
 * sigma (noise std / clipping norm) has, at Rényi order alpha > 1 (Mironov, Talwar, Zhang 2019),
 *     RDP(alpha) = log(A_alpha) / (alpha - 1),
 *     A_alpha    = E_{z~N(0,sigma^2)} [ ((1-q) + q exp((2z-1) / (2 sigma^2)))^alpha ],
 * computed as in TF Privacy's rdp_accountant.py / Opacus' analysis/rdp.py: for integer alpha by
 * the binomial expansion in log space, for fractional alpha by the two erfc series. Special
 * cases: q = 0 -> 0; sigma = 0 (q > 0) -> +inf; q = 1 -> alpha / (2 sigma^2) (plain Gaussian).
 *
 * RDP composes additively per order, so an accountant keeps one running sum per order of the
 * Opacus DEFAULT_ALPHAS list ([1 + x/10 for x in 1..99] + [12..63], 151 orders) and steps with
 * different (q, sigma) can be mixed. The (epsilon, delta) conversion is the improved bound of
 * Balle et al. 2020 ("Hypothesis testing interpretations and Rényi DP"), as in Opacus'
 * get_privacy_spent:
 *     eps = min over alpha of  rdp(alpha) - (log(delta) + log(alpha)) / (alpha - 1)
 *                              + log((alpha - 1) / alpha).
 *
 * Pure math: no MPI, no I/O, no global state (thread-safe apart from fh_error_set).
 */
#ifndef FEDHPC_ACCOUNTANT_H
#define FEDHPC_ACCOUNTANT_H

#include "fedhpc/common.h"

#include <stdint.h>

/* Number of Rényi orders tracked (Opacus DEFAULT_ALPHAS). */
#define PRIVACY_NORDERS 151

/* The running privacy loss of a training run. Plain data: copy it, checkpoint it as bytes. */
typedef struct {
    double rdp[PRIVACY_NORDERS]; /* accumulated RDP at privacy_order(i), i < PRIVACY_NORDERS */
    int64_t steps;               /* number of mechanism steps recorded (all (q, sigma) mixed)  */
} privacy_accountant;

/* The i-th Rényi order, 0 <= i < PRIVACY_NORDERS: 1 + (i+1)/10.0 for i < 99 (1.1 .. 10.9),
 * then 12 + (i-99) (12 .. 63); bitwise equal to Opacus' DEFAULT_ALPHAS[i]. NaN out of range. */
double privacy_order(int i);

/* RDP of ONE step of the sampled Gaussian mechanism.
 *   q      sampling rate (probability that a record/client takes part), 0 <= q <= 1
 *   sigma  noise multiplier (Gaussian std divided by the L2 sensitivity), sigma >= 0
 *   alpha  Rényi order, alpha > 1 (any real; integer orders use the exact binomial sum)
 * Returns the RDP epsilon at order alpha (>= 0), +INFINITY when sigma == 0 and q > 0, or NaN
 * for arguments out of range (does not set an error message). */
double privacy_rdp_sgm(double q, double sigma, double alpha);

/* Start an accountant with no privacy loss (every order 0, steps 0). */
void privacy_accountant_init(privacy_accountant *a);

/* Record `steps` steps of the SGM with sampling rate q and noise multiplier sigma.
 *   a      accountant to update (not modified on error)
 *   q      sampling rate in [0, 1]
 *   sigma  noise multiplier >= 0 (0 with q > 0 makes every order infinite: no privacy)
 *   steps  number of steps >= 0 (each step adds privacy_rdp_sgm(q, sigma, alpha) per order)
 * Returns FH_OK; FH_EINPUT (with message) for q, sigma or steps out of range or not finite;
 * FH_EFAULT if the RDP evaluation produced NaN. */
fh_status privacy_accountant_step(privacy_accountant *a, double q, double sigma, int64_t steps);

/* Add the privacy loss of accountant `b` to `a` (composition of two runs/phases).
 *   a  accountant to update;  b  accountant to add (may equal a). Never fails. */
void privacy_accountant_merge(privacy_accountant *a, const privacy_accountant *b);

/* Convert RDP values at given orders to (epsilon, delta)-DP (Balle et al. 2020 bound, as
 * Opacus get_privacy_spent: NaN entries are ignored; if all are NaN, eps = +inf).
 *   orders      n Rényi orders, each > 1
 *   rdp         n RDP values (the accumulated totals at those orders; +inf allowed)
 *   n           number of orders, n >= 1
 *   delta       target delta, 0 < delta < 1
 *   eps         out: the smallest epsilon over the orders (+INFINITY if none is finite)
 *   best_order  out (may be NULL): the order attaining it (NaN when every entry is NaN)
 * Returns FH_OK, or FH_EINPUT for a bad delta, n or order. */
fh_status privacy_rdp_to_epsilon(const double *orders, const double *rdp, int n, double delta,
                                 double *eps, double *best_order);

/* Epsilon spent so far at the given delta.
 *   a           the accountant
 *   delta       target delta, 0 < delta < 1
 *   eps         out: epsilon (0 when no privacy loss was recorded, e.g. no steps or q = 0 —
 *               unlike Opacus, which would report the conversion slack of a zero RDP curve;
 *               +INFINITY when a step had sigma = 0)
 *   best_order  out (may be NULL): the Rényi order attaining the minimum (NaN when eps is 0)
 * Returns FH_OK or FH_EINPUT for a bad delta. */
fh_status privacy_epsilon(const privacy_accountant *a, double delta, double *eps,
                          double *best_order);

/* The smallest noise multiplier for which `steps` steps at sampling rate q stay within
 * (target_eps, delta)-DP: bracketing by doubling, then bisection to 1e-7 relative in sigma.
 * The returned sigma is the upper end of the final bracket, so its epsilon is <= target_eps.
 *   q           sampling rate, 0 <= q <= 1 (q = 0 or steps = 0 give sigma = 0: no noise needed)
 *   steps       number of steps >= 0
 *   delta       target delta, 0 < delta < 1
 *   target_eps  target epsilon > 0 (finite)
 *   sigma       out: the noise multiplier
 * Returns FH_OK; FH_EINPUT (with message) for bad arguments or a target so small that no
 * sigma up to 1e6 reaches it. */
fh_status privacy_sigma_for_epsilon(double q, int64_t steps, double delta, double target_eps,
                                    double *sigma);

#endif
