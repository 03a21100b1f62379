/* fedhpc/async.h — client heterogeneity on a virtual clock, and asynchronous FL (issue 7).
 *
 * Device profiles (src/fl/system.c): every client has a compute speed (log-normal
 * exp(sigma * N(0,1)) from rng_stream(seed, client, 0, RNG_SYSTEM), or a CSV of speeds), an
 * availability pattern (on for `on`, off for `off` virtual seconds, periodically, with a phase
 * drawn from rng_stream(seed, client, 1, RNG_SYSTEM); work pauses while off) and a
 * communication cost per byte. A job of `steps` local SGD steps needs
 *   work = comm_per_byte * 8 * P  +  steps * step_time / speed     (on-time seconds).
 *
 * The training loop (src/fl/async.c) is a discrete-event simulation in virtual time: rank 0
 * (the aggregator) decides which client trains when and from which model version, hands jobs
 * to the other ranks (client hosts) with point-to-point messages as they become free, collects
 * the updates with non-blocking receives (comm_waitany), and applies them in virtual-time order
 * (ties: job id), so the model is the same for any number of ranks.
 */
#ifndef FEDHPC_ASYNC_H
#define FEDHPC_ASYNC_H

#include "fedhpc/common.h"
#include "fedhpc/config.h"
#include "fedhpc/fl.h"

#include <stdint.h>

enum { AS_OFF = 0, AS_WAIT_ALL, AS_DROP, AS_PARTIAL, AS_FEDASYNC, AS_FEDBUFF };
enum { AS_STALE_CONSTANT = 0, AS_STALE_POLY, AS_STALE_HINGE };
/* [async] partial_weights: FedNova p_i by samples processed this round (work), by client rows
 * (data: Wang et al.'s n_i / n), or no normalisation (none: sum_i (n_i / n) delta_i). */
enum { AS_PW_WORK = 0, AS_PW_DATA, AS_PW_NONE };

/* ---- device profiles (src/fl/system.c) ------------------------------------------------- */
typedef struct {
    int32_t C;
    double *speed;  /* [C] > 0                                  */
    double *phase;  /* [C] in [0, on + off)                     */
    double on, off, step_time, comm_per_byte;
} sys_profile;

/* Profiles of C clients from [system] and the run's seed (speeds CSV: FH_EINPUT naming the file and line). */
fh_status sys_profile_init(sys_profile *p, const config_system *sys, uint64_t seed, int32_t C);
void sys_profile_free(sys_profile *p);
/* On-time of client c in [t0, t1). */
double sys_on_time(const sys_profile *p, int32_t c, double t0, double t1);
/* The virtual time at which `work` on-time seconds started at t0 are done. */
double sys_advance(const sys_profile *p, int32_t c, double t0, double work);
/* Work (on-time seconds) of a job of `steps` local steps on a model of P parameters. */
double sys_job_work(const sys_profile *p, int32_t c, int64_t steps, int64_t P);
/* Local steps client c completes between t0 and t1 (at most max_steps). */
int64_t sys_steps_before(const sys_profile *p, int32_t c, double t0, double t1, int64_t P, int64_t max_steps);
/* Local steps of a full job: epochs * ceil(n / batch) (batch 0 or >= n: one step an epoch). */
int64_t sys_full_steps(int64_t n, int32_t epochs, int32_t batch);

/* ---- asynchronous aggregation rules (src/fl/async.c) --------------------------------- */
/* Staleness weight s(tau): constant 1; polynomial (1 + tau)^-a; hinge 1 if tau <= b else
 * 1 / (a (tau - b) + 1). */
double as_staleness_weight(int32_t kind, double a, double b, int64_t tau);
/* FedNova (Wang et al. 2020) for n clients of weight[i] (rows, or samples processed) that did
 * steps[i] local SGD steps with momentum rho: a_i = (steps_i - rho (1 - rho^steps_i) / (1 - rho))
 * / (1 - rho) (= steps_i without momentum), p_i = weight_i / sum weight, tau_eff = sum p_i a_i;
 * the aggregate update is sum_i coef[i] * delta_i with coef[i] = p_i * tau_eff / a_i.
 * Returns tau_eff. With weight = samples processed and plain SGD, every coef is about
 * B tau_eff / sum weight: each processed minibatch counts once. */
double as_fednova_coeffs(int32_t n, const int64_t *weight, const int64_t *steps, double rho, double *coef);
/* Index of the earliest event among n (time t[i], ties: smaller id[i]); -1 if n == 0 or every
 * t is NAN (NAN marks an empty slot). */
int32_t as_earliest(int32_t n, const double *t, const int64_t *id);

/* [async] mode != off is a strategy of the one loop (fl_strategy_async, src/fl/async.c). It
 * writes <output dir>/async.csv (one row per server update: virtual time, staleness, slow/fast
 * quartile accuracy; with [privacy] mode = client (FedBuff only) the epsilon accounted with
 * q = K / clients per applied buffer, and the bound without sampling from the client in the
 * most buffers) and <output dir>/participation.csv (per client: speed, jobs started, updates
 * applied/discarded). on_round is called on rank 0 only. */

#endif
