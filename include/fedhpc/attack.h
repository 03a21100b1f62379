/* fedhpc/attack.h — poisoning and backdoor attacks by malicious clients ([attack] keys,
 * src/attack/poison.c, docs/attacks.md).
 *
 * Threat model: a share of the clients is malicious. They follow the protocol (they train from
 * the global model and send one update a round) but poison what they train on (label flipping,
 * a backdoor trigger) and/or what they send (sign flip, scaling, Gaussian noise, model
 * replacement, Bagdasaryan et al. 2020). The server and the honest clients are honest.
 *
 * Everything here is a pure function of (seed, round, client): which clients are malicious, which
 * of their rows are poisoned, the noise of a Gaussian update. So an attacked run is bit-identical
 * for any number of ranks, and after a checkpoint resume (there is no attack state to save).
 * No MPI, no HDF5: the FedAvg strategy (src/fl/fedavg.c) calls these hooks around local
 * training, and the evaluation (src/fl/evaluate.c) the trigger.
 */
#ifndef FEDHPC_ATTACK_H
#define FEDHPC_ATTACK_H

#include "fedhpc/common.h"
#include "fedhpc/config.h"

#include <stdint.h>

/* [attack] mode (the index in the key table's choice list) */
typedef enum {
    ATTACK_NONE = 0, ATTACK_LABEL_FLIP, ATTACK_SIGN_FLIP, ATTACK_SCALE, ATTACK_GAUSSIAN, ATTACK_BACKDOOR
} attack_mode;
/* [attack] selection */
enum { ATTACK_PER_ROUND = 0, ATTACK_FIXED = 1 };

/* Where a trigger goes in a row of `features` values. */
typedef struct {
    int32_t features;
    int32_t side;     /* images: side x side pixels of `channels` values, channels last; 0: tabular */
    int32_t channels;
} attack_geom;

/* The name of an [attack] mode ("backdoor", ...). */
const char *attack_mode_name(int32_t mode);

/* Cross-key checks of [attack] in configuration file `path` (config_validate calls it): the
 * FedAvg family only; label_flip with source_class != target_class. FH_EINPUT naming the key. */
fh_status attack_config_check(const config_t *c, const char *path);

/* The geometry of a data set: images when the model is a CNN (cnn_side > 0), or the data set's
 * name contains "mnist" and features is a square; tabular otherwise. */
attack_geom attack_geom_of(const char *dataset, int32_t features, int32_t cnn_side, int32_t cnn_channels);

/* Check [attack] a against the data: target (and source) class below `classes`; a backdoor
 * trigger that fits the image (trigger <= side) or the row (trigger <= features). FH_EINPUT
 * naming the key and the data file `file`. */
fh_status attack_data_check(const config_attack *a, const attack_geom *g, int32_t classes, const char *file);

/* round(fraction * n): how many of n clients are malicious. */
int32_t attack_count(double fraction, int32_t n);

/* fixed selection: mal[C] = 1 for the attack_count(fraction, C) clients with the smallest keys of
 * the (seed, client, RNG_ATTACK) streams, 0 for the others. Returns FH_ENOMEM or FH_OK. */
fh_status attack_fixed_set(uint64_t seed, double fraction, int32_t C, uint8_t *mal);

/* The malicious clients among a round's sampled clients ids[n] (the same list on every rank):
 * mal[n] = 1 / 0. Nobody before [attack] start_round or with mode none. per_round: the
 * attack_count(fraction, n) clients with the smallest (seed, client, round, RNG_ATTACK) keys;
 * fixed: the members of fixed[C] (attack_fixed_set). Returns the number flagged, or -1 (out of
 * memory). */
int32_t attack_pick(const config_attack *a, uint64_t seed, int32_t round, const int32_t *ids, int32_t n,
                    const uint8_t *fixed, uint8_t *mal);

/* 1 when mode poisons the training rows (label_flip, backdoor). */
int attack_poisons_rows(const config_attack *a);
/* 1 when mode changes the update (sign_flip, scale, gaussian, backdoor). */
int attack_poisons_update(const config_attack *a);

/* Put the trigger into one row x[features]: the bottom-right trigger x trigger square of an image
 * (every channel), or the last `trigger` features, set to trigger_value. */
void attack_apply_trigger(const config_attack *a, const attack_geom *g, float *x);

/* Poison a malicious client's rows x[n, features], y[n] in place (a copy of its data):
 * label_flip: every label source_class becomes target_class; backdoor: round(poison_fraction * n)
 * rows drawn from the (seed, client, round, RNG_ATTACK_DATA) stream get the trigger and label
 * target_class. Other modes: nothing. Returns the number of rows changed. */
int64_t attack_poison_rows(const config_attack *a, const attack_geom *g, uint64_t seed, int32_t round, int32_t cid,
                           float *x, int32_t *y, int64_t n);

/* The scale of a malicious update: [attack] boost, or with boost = 0 (backdoor model replacement)
 * N_round / (n_i * server_lr * k): k malicious clients of weight n_i / N_round together replace
 * the global model (Bagdasaryan et al. 2020: gamma = n / eta). */
double attack_boost(const config_attack *a, int64_t n_i, int64_t N_round, double server_lr, int32_t k);

/* Poison a malicious client's update u[P] in place: sign_flip u = -boost u; scale and backdoor
 * u = boost u; gaussian u_j = boost * rms(u) * N(0,1) from the (seed, client, round,
 * RNG_ATTACK_DATA) stream. label_flip / none: nothing. */
void attack_poison_update(const config_attack *a, uint64_t seed, int32_t round, int32_t cid, float *u, int64_t P,
                          double boost);

/* The attack of one run of the FedAvg strategy: what its hooks need. */
typedef struct {
    config_attack a;
    uint64_t seed;
    double server_lr;
    attack_geom g;
    uint8_t *fixed;       /* [C] fixed selection, or NULL                                   */
    uint8_t *mal;         /* [m] the round's malicious clients (positions in the round's list) */
    int32_t k;            /* how many this round                                            */
    int32_t round;
    float *x;             /* a malicious client's poisoned copy of its rows                 */
    int32_t *y;
    int64_t cap;          /* rows of x, y                                                   */
} attack_run;

/* Set up for C clients, m a round; mode none leaves r inert (every hook does nothing). Checks the
 * data (attack_data_check). */
fh_status attack_run_init(attack_run *r, const config_t *cfg, const attack_geom *g, int32_t classes, int32_t C,
                          int32_t m);
void attack_run_free(attack_run *r);
/* Start round `round` with its sampled clients ids[n]. */
fh_status attack_run_round(attack_run *r, int32_t round, const int32_t *ids, int32_t n);
/* Before local training of the client at position i of the round (id cid) with rows *x, *y:
 * a malicious client's rows are copied, poisoned, and *x, *y pointed at the copy. */
fh_status attack_run_rows(attack_run *r, int32_t i, int32_t cid, const float **x, const int32_t **y, int64_t n);
/* After local training: poison the update u[P] of a malicious client (n_i rows of the round's
 * N_round). */
void attack_run_update(attack_run *r, int32_t i, int32_t cid, float *u, int64_t P, int64_t n_i, int64_t N_round);

#endif
