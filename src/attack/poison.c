/* Poisoning and backdoor attacks by malicious clients: who is malicious, what they train on,
 * what they send. Pure functions of (seed, round, client); see include/fedhpc/attack.h and
 * docs/attacks.md. */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/attack.h"
#include "fedhpc/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const MODE_NAMES[] = {"none", "label_flip", "sign_flip", "scale", "gaussian", "backdoor"};

const char *attack_mode_name(int32_t m)
{
    return m >= 0 && m <= ATTACK_BACKDOOR ? MODE_NAMES[m] : "?";
}

fh_status attack_config_check(const config_t *c, const char *path)
{
    const config_attack *a = &c->attack;
    if (a->mode == ATTACK_NONE) return FH_OK;
    const char *other = c->async.mode ? "[async] mode"
                        : c->cluster.method ? "[cluster] method"
                        : c->cluster.personalize ? "[personalize] mode"
                        : c->cluster.clients_per_rank ? "[run] clients_per_rank"
                        : c->fl.algorithm == ALG_CENTRALIZED ? "[fl] algorithm = centralized" : NULL;
    if (other)
        return fh_error_set(FH_EINPUT, "%s: [attack] mode = %s: only for the synchronous FedAvg family "
                            "(fedavg, fedprox, fedavgm, fedadam, fedyogi, scaffold), not with %s", path,
                            attack_mode_name(a->mode), other);
    if (a->mode == ATTACK_LABEL_FLIP && a->source_class == a->target_class)
        return fh_error_set(FH_EINPUT, "%s: [attack] source_class = target_class = %d: label_flip needs two different "
                            "classes (source_class is relabelled target_class)", path, a->source_class);
    return FH_OK;
}

attack_geom attack_geom_of(const char *dataset, int32_t features, int32_t cnn_side, int32_t cnn_channels)
{
    attack_geom g = {features, 0, 1};
    if (cnn_side > 0) {
        g.side = cnn_side;
        g.channels = cnn_channels > 0 ? cnn_channels : 1;
        return g;
    }
    const int32_t s = (int32_t)llround(sqrt((double)features));
    if (dataset && strstr(dataset, "mnist") && s > 0 && s * s == features) g.side = s;
    return g;
}

fh_status attack_data_check(const config_attack *a, const attack_geom *g, int32_t classes, const char *file)
{
    if (a->mode == ATTACK_NONE) return FH_OK;
    if ((a->mode == ATTACK_LABEL_FLIP || a->mode == ATTACK_BACKDOOR) && a->target_class >= classes)
        return fh_error_set(FH_EINPUT, "[attack] target_class = %d: %s has %d classes (expected 0..%d)", a->target_class,
                            file, classes, classes - 1);
    if (a->mode == ATTACK_LABEL_FLIP && a->source_class >= classes)
        return fh_error_set(FH_EINPUT, "[attack] source_class = %d: %s has %d classes (expected 0..%d)", a->source_class,
                            file, classes, classes - 1);
    if (a->mode == ATTACK_BACKDOOR) {
        if (g->side > 0 && a->trigger > g->side)
            return fh_error_set(FH_EINPUT, "[attack] trigger = %d: larger than the %dx%d images of %s (expected 1..%d)",
                                a->trigger, g->side, g->side, file, g->side);
        if (g->side == 0 && a->trigger > g->features)
            return fh_error_set(FH_EINPUT, "[attack] trigger = %d: more than the %d features of %s (expected 1..%d)",
                                a->trigger, g->features, file, g->features);
    }
    return FH_OK;
}

int32_t attack_count(double fraction, int32_t n)
{
    if (n <= 0 || !(fraction > 0)) return 0;
    const int64_t k = llround(fraction * (double)n);
    return k > n ? n : (int32_t)k;
}

/* a client's key: ties (never in practice) broken by the client id */
typedef struct {
    uint64_t key;
    int32_t id, pos;
} keyed;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* the fixed set's keys use round UINT64_MAX, a round no run reaches */
static uint64_t client_key(uint64_t seed, int32_t cid, uint64_t round)
{
    rng_t r = rng_stream(seed, (uint64_t)cid, round, RNG_ATTACK);
    return rng_u64(&r);
}

fh_status attack_fixed_set(uint64_t seed, double fraction, int32_t C, uint8_t *mal)
{
    const int32_t k = attack_count(fraction, C);
    memset(mal, 0, (size_t)(C > 0 ? C : 0));
    if (k == 0) return FH_OK;
    keyed *v = malloc((size_t)C * sizeof *v);
    if (!v) return fh_error_set(FH_ENOMEM, "out of memory for the [attack] fixed set of %d clients", C);
    for (int32_t c = 0; c < C; c++) v[c] = (keyed){client_key(seed, c, UINT64_MAX), c, c};
    qsort(v, (size_t)C, sizeof *v, cmp_keyed);
    for (int32_t i = 0; i < k; i++) mal[v[i].id] = 1;
    free(v);
    return FH_OK;
}

int32_t attack_pick(const config_attack *a, uint64_t seed, int32_t round, const int32_t *ids, int32_t n,
                    const uint8_t *fixed, uint8_t *mal)
{
    memset(mal, 0, (size_t)(n > 0 ? n : 0));
    if (a->mode == ATTACK_NONE || round < a->start_round || n <= 0) return 0;
    int32_t k = 0;
    if (a->selection == ATTACK_FIXED) {
        for (int32_t i = 0; i < n; i++) k += mal[i] = fixed ? fixed[ids[i]] : 0;
        return k;
    }
    k = attack_count(a->fraction, n);
    if (k == 0) return 0;
    keyed *v = malloc((size_t)n * sizeof *v);
    if (!v) return -1;
    for (int32_t i = 0; i < n; i++) v[i] = (keyed){client_key(seed, ids[i], (uint64_t)round), ids[i], i};
    qsort(v, (size_t)n, sizeof *v, cmp_keyed);
    for (int32_t i = 0; i < k; i++) mal[v[i].pos] = 1;
    free(v);
    return k;
}

int attack_poisons_rows(const config_attack *a)
{
    return a->mode == ATTACK_LABEL_FLIP || a->mode == ATTACK_BACKDOOR;
}

int attack_poisons_update(const config_attack *a)
{
    return a->mode == ATTACK_SIGN_FLIP || a->mode == ATTACK_SCALE || a->mode == ATTACK_GAUSSIAN ||
           a->mode == ATTACK_BACKDOOR;
}

void attack_apply_trigger(const config_attack *a, const attack_geom *g, float *x)
{
    const float v = (float)a->trigger_value;
    const int32_t t = a->trigger;
    if (g->side > 0) {
        const int32_t s = g->side, ch = g->channels;
        for (int32_t r = s - t; r < s; r++)
            for (int32_t c = s - t; c < s; c++)
                for (int32_t k = 0; k < ch; k++) x[((int64_t)r * s + c) * ch + k] = v;
    } else {
        for (int32_t j = g->features - t; j < g->features; j++) x[j] = v;
    }
}

int64_t attack_poison_rows(const config_attack *a, const attack_geom *g, uint64_t seed, int32_t round, int32_t cid,
                           float *x, int32_t *y, int64_t n)
{
    int64_t changed = 0;
    if (a->mode == ATTACK_LABEL_FLIP) {
        for (int64_t i = 0; i < n; i++)
            if (y[i] == a->source_class) {
                y[i] = a->target_class;
                changed++;
            }
        return changed;
    }
    if (a->mode != ATTACK_BACKDOOR || n <= 0) return 0;
    int64_t k = llround(a->poison_fraction * (double)n);
    if (k > n) k = n;
    /* k distinct rows: the first k steps of a Fisher-Yates shuffle of the row indices */
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    rng_t r = rng_stream(seed, (uint64_t)cid, (uint64_t)round, RNG_ATTACK_DATA);
    if (!idx) { /* no memory for the index: the first k rows (still deterministic) */
        for (int64_t i = 0; i < k; i++) {
            attack_apply_trigger(a, g, x + i * g->features);
            y[i] = a->target_class;
        }
        return k;
    }
    for (int64_t i = 0; i < n; i++) idx[i] = i;
    for (int64_t i = 0; i < k; i++) {
        const int64_t j = i + (int64_t)rng_below(&r, (uint64_t)(n - i));
        const int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
        attack_apply_trigger(a, g, x + idx[i] * g->features);
        y[idx[i]] = a->target_class;
    }
    free(idx);
    return k;
}

double attack_boost(const config_attack *a, int64_t n_i, int64_t N_round, double server_lr, int32_t k)
{
    if (a->boost > 0 || a->mode != ATTACK_BACKDOOR) return a->boost;
    if (n_i <= 0 || server_lr <= 0 || k <= 0) return 1.0;
    return (double)N_round / ((double)n_i * server_lr * (double)k);
}

void attack_poison_update(const config_attack *a, uint64_t seed, int32_t round, int32_t cid, float *u, int64_t P,
                          double boost)
{
    switch (a->mode) {
    case ATTACK_SIGN_FLIP:
        for (int64_t j = 0; j < P; j++) u[j] = (float)(-boost * u[j]);
        break;
    case ATTACK_SCALE:
    case ATTACK_BACKDOOR:
        for (int64_t j = 0; j < P; j++) u[j] = (float)(boost * u[j]);
        break;
    case ATTACK_GAUSSIAN: {
        double ss = 0;
        for (int64_t j = 0; j < P; j++) ss += (double)u[j] * u[j];
        const double sd = P > 0 ? boost * sqrt(ss / (double)P) : 0;
        rng_t r = rng_stream(seed, (uint64_t)cid, (uint64_t)round, RNG_ATTACK_DATA);
        for (int64_t j = 0; j < P; j++) u[j] = (float)(sd * rng_normal(&r));
        break;
    }
    default:
        break;
    }
}

/* ---- the FedAvg strategy's hooks ------------------------------------------------------- */
fh_status attack_run_init(attack_run *r, const config_t *cfg, const attack_geom *g, int32_t classes, int32_t C,
                          int32_t m)
{
    memset(r, 0, sizeof *r);
    r->a = cfg->attack;
    r->seed = (uint64_t)cfg->train.seed;
    r->server_lr = cfg->fl.server_lr;
    r->g = *g;
    if (r->a.mode == ATTACK_NONE) return FH_OK;
    FH_TRY(attack_data_check(&r->a, g, classes, cfg->data.file));
    r->mal = calloc((size_t)(m > 0 ? m : 1), 1);
    if (!r->mal) return fh_error_set(FH_ENOMEM, "out of memory");
    if (r->a.selection == ATTACK_FIXED) {
        r->fixed = malloc((size_t)(C > 0 ? C : 1));
        if (!r->fixed) return fh_error_set(FH_ENOMEM, "out of memory");
        FH_TRY(attack_fixed_set(r->seed, r->a.fraction, C, r->fixed));
    }
    return FH_OK;
}

void attack_run_free(attack_run *r)
{
    free(r->fixed);
    free(r->mal);
    free(r->x);
    free(r->y);
    memset(r, 0, sizeof *r);
}

fh_status attack_run_round(attack_run *r, int32_t round, const int32_t *ids, int32_t n)
{
    r->round = round;
    r->k = 0;
    if (r->a.mode == ATTACK_NONE) return FH_OK;
    r->k = attack_pick(&r->a, r->seed, round, ids, n, r->fixed, r->mal);
    if (r->k < 0) return fh_error_set(FH_ENOMEM, "out of memory");
    return FH_OK;
}

fh_status attack_run_rows(attack_run *r, int32_t i, int32_t cid, const float **x, const int32_t **y, int64_t n)
{
    if (r->k <= 0 || !r->mal[i] || !attack_poisons_rows(&r->a) || n <= 0) return FH_OK;
    const int64_t d = r->g.features;
    if (n > r->cap) {
        float *nx = realloc(r->x, (size_t)(n * d) * sizeof *nx);
        if (nx) r->x = nx;
        int32_t *ny = realloc(r->y, (size_t)n * sizeof *ny);
        if (ny) r->y = ny;
        if (!nx || !ny) return fh_error_set(FH_ENOMEM, "out of memory for %lld poisoned rows", (long long)n);
        r->cap = n;
    }
    memcpy(r->x, *x, (size_t)(n * d) * sizeof *r->x);
    memcpy(r->y, *y, (size_t)n * sizeof *r->y);
    attack_poison_rows(&r->a, &r->g, r->seed, r->round, cid, r->x, r->y, n);
    *x = r->x;
    *y = r->y;
    return FH_OK;
}

void attack_run_update(attack_run *r, int32_t i, int32_t cid, float *u, int64_t P, int64_t n_i, int64_t N_round)
{
    if (r->k <= 0 || !r->mal[i] || !attack_poisons_update(&r->a)) return;
    attack_poison_update(&r->a, r->seed, r->round, cid, u, P, attack_boost(&r->a, n_i, N_round, r->server_lr, r->k));
}
