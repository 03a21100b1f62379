/* fedhpc/privacy.h — Rényi-DP accountant for the sampled Gaussian mechanism (DP-SGD, DP-FedAvg).
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
#ifndef FEDHPC_PRIVACY_H
#define FEDHPC_PRIVACY_H

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

/* ---- differential privacy in training (src/privacy/dp.c) ---------------------------------
 * Client-level DP-FedAvg (McMahan et al. 2018): each update clipped to L2 norm C and weighted
 * 1/m (m = clients a round, a fixed denominator); Gaussian noise of std sigma*C added to the
 * exact integer sum — once, from the stream (seed, 0, round, RNG_DP), identically on every
 * rank ("central"), or shared out as N(0, sigma^2 C^2 / n_min) per client before masking
 * ("distributed", n_min = the fewest clients a completed round can have). Accounted as the
 * sampled Gaussian mechanism with q = m / clients, one step a round.
 * Sample-level DP-SGD (Abadi et al. 2016) inside each client: per-example clipping
 * (model_loss_grad_clipped), noise std sigma*C on each batch sum, batches by Poisson sampling
 * at rate B/n_i (or fixed-size shuffled batches, accounted with the same q). Each client has
 * its own accountant (q_i = B/n_i, E*n_i/B steps a round it takes part in); the reported
 * epsilon is the largest over clients.
 * Adaptive clipping (Andrew et al. 2021): clients add the bit [norm <= C] to the sum; the noised
 * count sets C <- C exp(-eta (b - gamma)); the update noise becomes
 * z_u = (z^-2 - (2 sigma_b)^-2)^-1/2 so that the round is accounted at multiplier z.
 * Norm schedule (in the spirit of Wei & Liu 2022): sigma_r = sigma * clamp(g_r / g_1, min, 1),
 * g = the signal norm estimated from the released noised update (post-processing); every
 * round's own sigma is composed exactly in the accountant.
 */
#include "fedhpc/ckpt.h"
#include "fedhpc/config.h"

enum { PRIVACY_NONE = 0, PRIVACY_CLIENT = 1, PRIVACY_SAMPLE = 2 };

/* DP-SGD options of one client in one round (fl_local_opts.dp). */
typedef struct {
    double clip, sigma;   /* per-example clipping norm C, noise multiplier      */
    int32_t poisson;      /* 1: Poisson batches at rate batch/n; 0: fixed size   */
    uint64_t seed, client, round; /* noise/sampling streams RNG_DPSGD, RNG_DPSGD_SAMPLE */
} privacy_sgd;

typedef struct {
    int32_t mode, clients, m, adaptive, schedule, placement, poisson, batch, epochs;
    int32_t fedbuff_bound; /* DP-FedBuff: 1 enforce the no-sampling bound, 0 the q = K/C figure */
    uint64_t seed;
    double delta, budget, base_sigma, quantile, clip_lr, count_noise, sched_min, n_min;
    double clip;          /* current clipping norm C                                 */
    double sigma;         /* this round's accounted noise multiplier                  */
    double sigma_update;  /* multiplier of the noise on the update sum (adaptive: z_u) */
    double eps;           /* epsilon spent so far (max over clients in sample mode)   */
    double g1;            /* schedule: first round's estimated signal norm             */
    privacy_accountant acct;  /* client mode                                          */
    privacy_accountant *per;  /* sample mode: [clients]                               */
} privacy_run;

/* Set up from [privacy] (and [train], [secagg]); clients = total clients, m = a round's.
 * FH_EINPUT naming the key for inconsistent settings. */
fh_status privacy_run_init(privacy_run *p, const config_t *cfg, int32_t clients, int32_t m);
void privacy_run_free(privacy_run *p);
/* Before round `round` with sampled clients ids[n] (rows count[n]): fix the round's sigma and
 * account it; *stop = 1 (nothing recorded) if that would take epsilon over the budget. */
fh_status privacy_run_begin(privacy_run *p, int64_t round, const int32_t *ids,
                            const int64_t *count, int32_t n, int *stop);
/* Client mode: clip update u[P] to C (and add the client's distributed noise share);
 * *below += 1 if it was not clipped. Returns the fixed-point weight (1/m). */
double privacy_client_update(const privacy_run *p, int64_t round, int32_t cid, float *u,
                             int64_t P, int64_t *below);
/* Client mode, distributed placement: client cid's update was rejected (non-finite, too large,
 * no rows) but the client still sends a (masked) input and counts as a secure-aggregation
 * survivor. u[P] becomes its noise share alone (a zero update plus the share it would have
 * added to an accepted one), so a completed round with k >= n_min survivors carries noise of
 * variance k sigma_u^2 C^2 / n_min >= sigma_u^2 C^2 whatever was rejected. Returns the weight
 * to accumulate u with (1/m), or 0 when there is nothing to add (u untouched: other modes,
 * central placement, no noise). */
double privacy_client_rejected(const privacy_run *p, int64_t round, int32_t cid, float *u, int64_t P);
/* Client mode: out[P] = decoded sum acc[P] plus the central noise (sigma_update * C / m). */
void privacy_run_decode(privacy_run *p, int64_t round, const int64_t *acc, int64_t P, float *out);
/* After the round: adapt C from the exact count `below` of unclipped updates (noised here),
 * and the schedule from the released update out[P]. out == NULL: the round released nothing
 * (an aborted secure-aggregation round) and neither C nor the schedule changes. */
void privacy_run_end(privacy_run *p, int64_t round, int64_t below, const float *out, int64_t P);
/* DP-FedBuff ([async] mode = fedbuff, a "round" = a buffer of m = K updates), with no privacy
 * amplification by sampling: a client is in at most one update of a buffer, and every released
 * buffer is a Gaussian mechanism of multiplier base_sigma for the clients in it (the others'
 * buffers do not depend on their data), so the client in the most buffers, n of them, has spent
 * the epsilon of n Gaussian steps at q = 1. joined[C]: buffers each client is in; pending[C]
 * (may be NULL): 1 for the clients of a buffer about to be released (counted as joined). */
fh_status privacy_client_bound(const privacy_run *p, const int64_t *joined, const uint8_t *pending,
                               int32_t C, double *eps);
/* DP-FedBuff, before releasing buffer b (clients pending[C], joined[C] before it): account it
 * like privacy_run_begin (the q = K/C accountant, p->eps) and check [privacy] epsilon_budget
 * against the figure [privacy] fedbuff_accounting chooses: bound (default) -> the
 * privacy_client_bound after this buffer, sampled -> the q = K/C epsilon. *stop = 1 (nothing
 * recorded) if the buffer would exceed the budget. */
fh_status privacy_fedbuff_begin(privacy_run *p, int64_t b, const int64_t *joined, const uint8_t *pending,
                                int32_t C, int *stop);
/* Sample mode: DP-SGD options of client cid in this round. */
void privacy_sgd_opts(const privacy_run *p, int64_t round, int32_t cid, privacy_sgd *o);
/* Checkpoints (called by the training loop's save/resume; collective over w, the checkpoint's
 * communicator; the state is replicated, so rank 0's copy is written). Everything the run
 * carries from one round to the next: clip norm C (adaptive clipping), the schedule's sigma and
 * g_1, the current multipliers, epsilon so far, and the RDP vector of every order — the
 * accountant of client mode, or every client's accountant in sample mode
 * (dp_client_rdp [clients * PRIVACY_NORDERS], dp_client_steps [clients]). Nothing is written
 * when mode is none. privacy_run_load refuses (FH_EINPUT naming the file) a checkpoint without
 * that state or written for another mode / number of clients. */
fh_status privacy_run_save(const privacy_run *p, const comm_t *w, ckpt *h);
fh_status privacy_run_load(privacy_run *p, const comm_t *w, ckpt *h);

#endif
