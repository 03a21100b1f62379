#define _POSIX_C_SOURCE 200809L
/* Differential privacy in training: DP-FedAvg (client level), DP-SGD accounting (sample
 * level), adaptive clipping and the norm-driven noise schedule. See include/fedhpc/privacy.h. */
#include "fedhpc/privacy.h"
#include "fedhpc/agg.h"
#include "fedhpc/comm.h"
#include "fedhpc/rng.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

fh_status privacy_keyed_seed(const char *path, uint64_t seed, uint64_t *out)
{
    unsigned char key[64], h[8], in[8];
    FILE *f = fopen(path, "rb");
    if (!f) return fh_error_set(FH_EINPUT, "[privacy] noise_key '%s': cannot read it (make one with: fedhpc privacy --new-key %s)",
                                path, path);
    const size_t n = fread(key, 1, sizeof key, f);
    fclose(f);
    if (n < 32) {
        sodium_memzero(key, sizeof key);
        return fh_error_set(FH_EINPUT, "[privacy] noise_key '%s': %zu bytes, expected a secret of at least 32 (fedhpc privacy --new-key)",
                            path, n);
    }
    for (int i = 0; i < 8; i++) in[i] = (unsigned char)(seed >> (8 * i));
    crypto_generichash(h, sizeof h, in, sizeof in, key, n < crypto_generichash_KEYBYTES_MAX ? n : crypto_generichash_KEYBYTES_MAX);
    sodium_memzero(key, sizeof key);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)h[i] << (8 * i);
    *out = v;
    return FH_OK;
}

fh_status privacy_new_key(const char *path)
{
    unsigned char key[32];
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) return fh_error_set(FH_EINPUT, "%s: cannot create the key file (%s; an existing key is never overwritten)", path,
                                    strerror(errno));
    randombytes_buf(key, sizeof key);
    const ssize_t w = write(fd, key, sizeof key);
    sodium_memzero(key, sizeof key);
    if (close(fd) != 0 || w != (ssize_t)sizeof key) {
        unlink(path);
        return fh_error_set(FH_EIO, "%s: cannot write the key file", path);
    }
    return FH_OK;
}

fh_status privacy_run_init(privacy_run *p, const config_privacy *cp, const privacy_env *env, int32_t clients, int32_t m)
{
    memset(p, 0, sizeof *p);
    p->mode = cp->mode;
    p->clients = clients;
    p->m = m;
    p->seed = env->seed;
    if (cp->mode != PRIVACY_NONE && cp->noise_key[0]) FH_TRY(privacy_keyed_seed(cp->noise_key, env->seed, &p->seed));
    p->delta = cp->delta;
    p->budget = cp->budget;
    p->base_sigma = p->sigma = p->sigma_update = cp->noise;
    p->clip = cp->clip;
    p->adaptive = cp->adaptive;
    p->quantile = cp->quantile;
    p->clip_lr = cp->clip_lr;
    p->count_noise = cp->count_noise > 0 ? cp->count_noise : m / 20.0;
    p->schedule = cp->schedule;
    p->sched_min = cp->schedule_min;
    p->placement = cp->placement;
    p->poisson = cp->sampling == 0;
    p->batch = env->batch_size;
    p->epochs = env->local_epochs;
    p->fedbuff_bound = cp->fedbuff_accounting == 0;
    /* distributed noise must reach sigma*C even when only the fewest clients a completed round
     * can have send their shares */
    p->n_min = env->min_survivors > 0 ? env->min_survivors : m;
    privacy_accountant_init(&p->acct);
    if (p->mode == PRIVACY_NONE) return FH_OK;
    if (p->mode == PRIVACY_CLIENT && p->placement == 1 && !env->secagg)
        return fh_error_set(FH_EINPUT, "[privacy] placement = distributed needs [secagg] enabled = on (without it the aggregator sees each noised update)");
    if (p->mode == PRIVACY_CLIENT && env->scaffold)
        return fh_error_set(FH_EINPUT, "[privacy] mode = client: not supported with [fl] algorithm = scaffold (control variates are not privatised)");
    if (env->centralized)
        return fh_error_set(FH_EINPUT, "[privacy] mode: not supported with [fl] algorithm = centralized");
    if (p->mode == PRIVACY_SAMPLE) {
        if (env->batch_size < 1)
            return fh_error_set(FH_EINPUT, "[privacy] mode = sample needs [train] batch_size >= 1 (the expected DP-SGD batch)");
        p->per = malloc((size_t)clients * sizeof *p->per);
        FH_CHECK_ALLOC(p->per);
        for (int32_t i = 0; i < clients; i++) privacy_accountant_init(&p->per[i]);
    }
    if (p->mode == PRIVACY_CLIENT && p->adaptive) {
        const double z = p->base_sigma, sb = p->count_noise;
        if (z <= 0 || 2 * sb <= z)
            return fh_error_set(FH_EINPUT, "[privacy] count_noise: adaptive clipping needs 2 * count_noise (%g) > noise (%g) > 0", 2 * sb, z);
    }
    return FH_OK;
}

void privacy_run_free(privacy_run *p)
{
    free(p->per);
    p->per = NULL;
}

static void sample_steps(const privacy_run *p, int64_t n, double *q, int64_t *steps)
{
    const int64_t B = p->batch;
    *q = n > 0 ? (B >= n ? 1.0 : (double)B / (double)n) : 0.0;
    int64_t per_epoch = p->poisson ? (int64_t)llround((double)n / (double)B) : (n + B - 1) / B;
    if (per_epoch < 1) per_epoch = 1;
    *steps = n > 0 ? per_epoch * p->epochs : 0;
}

fh_status privacy_run_begin(privacy_run *p, int64_t round, const int32_t *ids,
                            const int64_t *count, int32_t n, int *stop)
{
    (void)round;
    *stop = 0;
    if (p->mode == PRIVACY_CLIENT) {
        /* the round's multipliers (sigma from the schedule, split for adaptive clipping) */
        const double z = p->sigma;
        p->sigma_update = z;
        if (p->adaptive && z > 0) {
            const double sb2 = 2 * p->count_noise;
            p->sigma_update = 1.0 / sqrt(1.0 / (z * z) - 1.0 / (sb2 * sb2));
        }
        privacy_accountant a = p->acct;
        FH_TRY(privacy_accountant_step(&a, (double)p->m / (double)p->clients, z, 1));
        double eps;
        FH_TRY(privacy_epsilon(&a, p->delta, &eps, NULL));
        if (p->budget > 0 && eps > p->budget) {
            *stop = 1;
            return FH_OK;
        }
        p->acct = a;
        p->eps = eps;
    } else if (p->mode == PRIVACY_SAMPLE) {
        privacy_accountant *tmp = malloc((size_t)(n ? n : 1) * sizeof *tmp);
        FH_CHECK_ALLOC(tmp);
        double worst = p->eps;
        fh_status st = FH_OK;
        for (int32_t i = 0; i < n && st == FH_OK; i++) {
            double q, eps;
            int64_t steps;
            sample_steps(p, count[i], &q, &steps);
            tmp[i] = p->per[ids[i]];
            st = privacy_accountant_step(&tmp[i], q, p->sigma, steps);
            if (st == FH_OK) st = privacy_epsilon(&tmp[i], p->delta, &eps, NULL);
            if (st == FH_OK && eps > worst) worst = eps;
        }
        if (st == FH_OK && p->budget > 0 && worst > p->budget) *stop = 1;
        if (st == FH_OK && !*stop) {
            for (int32_t i = 0; i < n; i++) p->per[ids[i]] = tmp[i];
            p->eps = worst;
        }
        free(tmp);
        return st;
    }
    return FH_OK;
}

/* Distributed placement: client cid's share of the round's noise, N(0, sigma_u^2 C^2 / n_min)
 * per coordinate from (seed, cid, round, RNG_DP_CLIENT), added to u[P]. */
static void add_noise_share(const privacy_run *p, int64_t round, int32_t cid, float *u, int64_t P)
{
    const double sd = p->sigma_update * p->clip / sqrt(p->n_min);
    rng_t r = rng_stream(p->seed, (uint64_t)cid, (uint64_t)round, RNG_DP_CLIENT);
    for (int64_t j = 0; j < P; j++) u[j] += (float)(sd * rng_normal(&r));
}

double privacy_client_rejected(const privacy_run *p, int64_t round, int32_t cid, float *u, int64_t P)
{
    if (p->mode != PRIVACY_CLIENT || p->placement != 1 || !(p->sigma_update > 0)) return 0.0;
    memset(u, 0, (size_t)P * sizeof *u);
    add_noise_share(p, round, cid, u, P);
    return 1.0 / p->m;
}

int privacy_clip(float *u, int64_t P, double clip)
{
    double s = 0;
    for (int64_t j = 0; j < P; j++) s += (double)u[j] * u[j];
    const double norm = sqrt(s);
    if (norm <= clip) return 1;
    const float f = (float)(clip / norm);
    for (int64_t j = 0; j < P; j++) u[j] *= f;
    return 0;
}

double privacy_client_update(const privacy_run *p, int64_t round, int32_t cid, float *u,
                             int64_t P, int64_t *below)
{
    *below += privacy_clip(u, P, p->clip);
    if (p->placement == 1 && p->sigma_update > 0) add_noise_share(p, round, cid, u, P);
    return 1.0 / p->m;
}

void privacy_run_decode(privacy_run *p, int64_t round, const int64_t *acc, int64_t P, float *out)
{
    fx_decode(acc, 1.0, out, P);
    if (p->placement == 0 && p->sigma_update > 0) {
        const double sd = p->sigma_update * p->clip / p->m;
        rng_t r = rng_stream(p->seed, 0, (uint64_t)round, RNG_DP);
        for (int64_t j = 0; j < P; j++) out[j] += (float)(sd * rng_normal(&r));
    }
}

void privacy_run_end(privacy_run *p, int64_t round, int64_t below, const float *out, int64_t P)
{
    if (p->mode != PRIVACY_CLIENT) return;
    const double C = p->clip;
    if (p->schedule == 1 && out) {
        /* signal norm^2 of the mean update, estimated from the released noised update */
        double s = 0;
        for (int64_t j = 0; j < P; j++) s += (double)out[j] * out[j];
        const double nsd = p->sigma_update * C / p->m;
        const double g = sqrt(fmax(s - (double)P * nsd * nsd, 0.0));
        if (round == 1 || p->g1 <= 0) p->g1 = g;
        double ratio = p->g1 > 0 ? g / p->g1 : 1.0;
        if (!(ratio <= 1.0)) ratio = 1.0;
        if (ratio < p->sched_min) ratio = p->sched_min;
        p->sigma = p->base_sigma * ratio;
    }
    /* an aborted secure-aggregation round (out == NULL) released nothing: its count of
     * unclipped updates was discarded with the masked sum (0, which would raise C) */
    if (p->adaptive && out) {
        rng_t r = rng_stream(p->seed, 1, (uint64_t)round, RNG_DP);
        const double b = ((double)below + p->count_noise * rng_normal(&r)) / p->m;
        p->clip = C * exp(-p->clip_lr * (b - p->quantile));
    }
}

fh_status privacy_client_bound(const privacy_run *p, const int64_t *joined, const uint8_t *pending,
                               int32_t C, double *eps)
{
    int64_t n = 0;
    for (int32_t c = 0; c < C; c++) {
        const int64_t k = joined[c] + (pending && pending[c] ? 1 : 0);
        if (k > n) n = k;
    }
    privacy_accountant a;
    privacy_accountant_init(&a);
    FH_TRY(privacy_accountant_step(&a, 1.0, p->base_sigma, n));
    return privacy_epsilon(&a, p->delta, eps, NULL);
}

fh_status privacy_fedbuff_begin(privacy_run *p, int64_t b, const int64_t *joined, const uint8_t *pending,
                                int32_t C, int *stop)
{
    *stop = 0;
    if (!p->fedbuff_bound) return privacy_run_begin(p, b, NULL, NULL, 0, stop);
    double eb;
    FH_TRY(privacy_client_bound(p, joined, pending, C, &eb));
    if (p->budget > 0 && eb > p->budget) {
        *stop = 1;
        return FH_OK;
    }
    /* the q = K/C figure is still accounted (async.csv epsilon), not enforced */
    const double budget = p->budget;
    p->budget = 0;
    fh_status st = privacy_run_begin(p, b, NULL, NULL, 0, stop);
    p->budget = budget;
    return st;
}

void privacy_sgd_opts(const privacy_run *p, int64_t round, int32_t cid, privacy_sgd *o)
{
    o->clip = p->clip;
    o->sigma = p->sigma;
    o->poisson = p->poisson;
    o->seed = p->seed;
    o->client = (uint64_t)cid;
    o->round = (uint64_t)round;
}

/* ---- checkpoints ---------------------------------------------------------------------------- */
fh_status privacy_run_save(const privacy_run *p, const comm_t *w, ckpt *h)
{
    if (p->mode == PRIVACY_NONE) return FH_OK;
    FH_TRY(ckpt_put_i64(h, "dp_mode", p->mode));
    FH_TRY(ckpt_put_i64(h, "dp_clients", p->clients));
    FH_TRY(ckpt_put_f64(h, "dp_clip", p->clip));
    FH_TRY(ckpt_put_f64(h, "dp_sigma", p->sigma));
    FH_TRY(ckpt_put_f64(h, "dp_sigma_update", p->sigma_update));
    FH_TRY(ckpt_put_f64(h, "dp_eps", p->eps));
    FH_TRY(ckpt_put_f64(h, "dp_g1", p->g1));
    FH_TRY(ckpt_put_i64(h, "dp_steps", p->acct.steps));
    FH_TRY(ckpt_put_array(h, "dp_rdp", CKPT_F64, p->acct.rdp, PRIVACY_NORDERS));
    if (p->mode != PRIVACY_SAMPLE) return FH_OK;
    const int64_t C = p->clients;
    double *rdp = malloc((size_t)(C ? C : 1) * PRIVACY_NORDERS * sizeof *rdp);
    int64_t *steps = malloc((size_t)(C ? C : 1) * sizeof *steps);
    fh_status st = rdp && steps ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory for the privacy checkpoint");
    for (int64_t c = 0; st == FH_OK && c < C; c++) {
        memcpy(rdp + c * PRIVACY_NORDERS, p->per[c].rdp, sizeof p->per[c].rdp);
        steps[c] = p->per[c].steps;
    }
    st = comm_agree(w, st); /* every rank or none reaches the collective writes */
    if (st == FH_OK) st = ckpt_put_array(h, "dp_client_rdp", CKPT_F64, rdp, C * PRIVACY_NORDERS);
    if (st == FH_OK) st = ckpt_put_array(h, "dp_client_steps", CKPT_I64, steps, C);
    free(rdp);
    free(steps);
    return st;
}

fh_status privacy_run_load(privacy_run *p, const comm_t *w, ckpt *h)
{
    (void)w; /* reads are independent: every rank reads the replicated state */
    if (p->mode == PRIVACY_NONE) return FH_OK;
    if (!ckpt_has(h, "dp_rdp"))
        return fh_error_set(FH_EINPUT, "%s: no privacy accountant state in this checkpoint (written without [privacy] or by an older fedhpc)",
                            ckpt_path(h));
    int64_t mode = 0, clients = 0;
    FH_TRY(ckpt_get_i64(h, "dp_mode", &mode));
    FH_TRY(ckpt_get_i64(h, "dp_clients", &clients));
    if (mode != p->mode || clients != p->clients)
        return fh_error_set(FH_EINPUT, "%s: privacy state of mode %lld with %lld clients, this run has mode %d with %d clients",
                            ckpt_path(h), (long long)mode, (long long)clients, p->mode, p->clients);
    FH_TRY(ckpt_get_f64(h, "dp_clip", &p->clip));
    FH_TRY(ckpt_get_f64(h, "dp_sigma", &p->sigma));
    FH_TRY(ckpt_get_f64(h, "dp_sigma_update", &p->sigma_update));
    FH_TRY(ckpt_get_f64(h, "dp_eps", &p->eps));
    FH_TRY(ckpt_get_f64(h, "dp_g1", &p->g1));
    FH_TRY(ckpt_get_i64(h, "dp_steps", &p->acct.steps));
    FH_TRY(ckpt_get_array(h, "dp_rdp", CKPT_F64, p->acct.rdp, PRIVACY_NORDERS));
    if (p->mode != PRIVACY_SAMPLE) return FH_OK;
    const int64_t C = p->clients;
    double *rdp = malloc((size_t)(C ? C : 1) * PRIVACY_NORDERS * sizeof *rdp);
    int64_t *steps = malloc((size_t)(C ? C : 1) * sizeof *steps);
    fh_status st = rdp && steps ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory for the privacy checkpoint");
    if (st == FH_OK) st = ckpt_get_array(h, "dp_client_rdp", CKPT_F64, rdp, C * PRIVACY_NORDERS);
    if (st == FH_OK) st = ckpt_get_array(h, "dp_client_steps", CKPT_I64, steps, C);
    for (int64_t c = 0; st == FH_OK && c < C; c++) {
        memcpy(p->per[c].rdp, rdp + c * PRIVACY_NORDERS, sizeof p->per[c].rdp);
        p->per[c].steps = steps[c];
    }
    free(rdp);
    free(steps);
    return st;
}
