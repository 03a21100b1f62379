/* fedhpc/privacy.h — differential privacy in training (src/privacy/dp.c); the accountant it
 * composes is in fedhpc/accountant.h.
 *
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
#ifndef FEDHPC_PRIVACY_H
#define FEDHPC_PRIVACY_H

#include "fedhpc/accountant.h"
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

/* The seed of every DP noise and sampling stream when [privacy] noise_key names a secret file:
 * BLAKE2b (libsodium crypto_generichash) of [train] seed keyed by the file's first 32-64 bytes.
 * Without a key the streams derive from the public seed alone (reproducible by anyone holding
 * the configuration: a simulation, not a deployment). FH_EINPUT naming the file. */
fh_status privacy_keyed_seed(const char *path, uint64_t seed, uint64_t *out);
/* A new 32-byte secret from libsodium's CSPRNG in path (mode 0600; never overwrites). */
fh_status privacy_new_key(const char *path);

/* What the privacy module needs from outside its [privacy] section (fl_loop_privacy fills it
 * from the configuration). */
typedef struct {
    uint64_t seed;                   /* [train] seed (keyed by [privacy] noise_key when set)      */
    int32_t batch_size, local_epochs;/* [train]: DP-SGD's sampling rate and steps                 */
    double min_survivors;            /* fewest clients a completed round can have ([secagg]
                                      * threshold and dropouts); 0: every client of the round     */
    int secagg;                      /* [secagg] enabled                                          */
    int scaffold, centralized;       /* [fl] algorithm (refused combinations)                     */
} privacy_env;

/* Set up from [privacy] and env; clients = total clients, m = a round's.
 * FH_EINPUT naming the key for inconsistent settings. */
fh_status privacy_run_init(privacy_run *p, const config_privacy *cp, const privacy_env *env, int32_t clients, int32_t m);
void privacy_run_free(privacy_run *p);
/* Before round `round` with sampled clients ids[n] (rows count[n]): fix the round's sigma and
 * account it; *stop = 1 (nothing recorded) if that would take epsilon over the budget. */
fh_status privacy_run_begin(privacy_run *p, int64_t round, const int32_t *ids,
                            const int64_t *count, int32_t n, int *stop);
/* Scale u[P] down to L2 norm `clip` if it is longer; returns 1 if it was not clipped (the
 * clipping of privacy_client_update, for a client host that clips before masking: DP-FedBuff
 * with [secagg], src/fl/async_secagg.c). */
int privacy_clip(float *u, int64_t P, double clip);
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
