/* fedhpc/config.h — experiment configuration: INI files (libinih) plus command-line overrides.
 *
 * Every key is declared once in a table (src/config/config.c) with its type, default, whether it
 * changes training (checkpoints refuse to resume across such changes) and a one-line doc;
 * `fedhpc run --help-config` prints the table and docs/configuration.md documents it.
 */
#ifndef FEDHPC_CONFIG_H
#define FEDHPC_CONFIG_H

#include "fedhpc/common.h"

#include <stdint.h>
#include <stdio.h>

#define CONFIG_PATH_MAX 1024
#define CONFIG_MAX_HIDDEN 8

typedef enum {
    ALG_FEDAVG = 0, ALG_FEDPROX, ALG_FEDAVGM, ALG_FEDADAM, ALG_FEDYOGI, ALG_SCAFFOLD, ALG_CENTRALIZED
} fl_algorithm;

/* One struct per section of the INI file; a module is handed the sections it reads
 * (fl_server_init gets cfg->fl, sys_profile_init cfg->system, ...). */
/* [secagg] dedicated_aggregator */
enum { SA_DEDICATED_AUTO = 0, SA_DEDICATED_OFF = 1, SA_DEDICATED_ON = 2 };
/* [fl] aggregator (the order of the KEYS enum string) */
enum { AGGR_MEAN = 0, AGGR_KRUM, AGGR_MULTIKRUM, AGGR_MEDIAN, AGGR_TRIMMED_MEAN, AGGR_NORM_BOUND };

typedef struct {
    char file[CONFIG_PATH_MAX];            /* the prepared data set (HDF5)                  */
    int32_t verify;                        /* 0 off, 1 on (checksums at start)              */
} config_data;

typedef struct {
    int32_t type;                          /* model_type (model.h)                          */
    int32_t hidden[CONFIG_MAX_HIDDEN];     /* MLP hidden widths                             */
    int32_t nhidden;
    int32_t class_weights;                 /* 0 none, 1 balanced (inverse class frequency)  */
    double focal_gamma;                    /* focal loss gamma, 0: cross-entropy (credit.md) */
    int32_t attn_dim, attn_heads;          /* attention: embedding size d, heads            */
    int32_t gnn_layers;                    /* lightgcn: propagation layers K (docs/recommend.md) */
    int32_t gnn_weighting;                 /* lightgcn: 0 rows (FedAvg), 1 items               */
} config_model;

typedef struct {
    int32_t rounds, clients_per_round, local_epochs, batch_size, eval_every;
    double lr, momentum, weight_decay;
    int64_t seed;                          /* of every random stream                        */
} config_train;

typedef struct {
    int32_t algorithm;                     /* fl_algorithm                                  */
    double mu, server_lr, server_momentum, beta1, beta2, tau, max_update_norm;
    int32_t central_shards;
    int32_t max_rejected_rounds;           /* stop after this many all-rejected rounds (0 off) */
    /* robust aggregation (include/fedhpc/robust.h, docs/robust.md) */
    int32_t aggregator;                    /* AGGR_MEAN, AGGR_KRUM, ...                     */
    int32_t byzantine_f;                   /* Krum / Multi-Krum: tolerated Byzantine clients */
    double trim_fraction;                  /* trimmed mean: fraction cut at each end, [0, 0.5) */
    double norm_bound, norm_bound_noise;   /* norm bounding: L2 bound, Gaussian noise std    */
} config_fl;

typedef struct {
    char dir[CONFIG_PATH_MAX];
    int32_t progress;                      /* 0 auto (bar on a TTY), 1 lines, 2 off         */
} config_output;

typedef struct {
    int32_t every;                         /* rounds between checkpoints; 0 = off           */
    int32_t keep;                          /* newest checkpoints kept                       */
    char dir[CONFIG_PATH_MAX];             /* "" = <output dir>/checkpoints                  */
    char resume[CONFIG_PATH_MAX];          /* "" no, "auto" newest in ckpt dir, or a path    */
} config_checkpoint;

typedef struct {                           /* src/privacy/dp.c                               */
    int32_t mode;                          /* 0 none, 1 client (DP-FedAvg), 2 sample (DP-SGD) */
    double clip, noise, delta, budget;
    int32_t sampling;                      /* DP-SGD: 0 poisson, 1 fixed                     */
    int32_t placement;                     /* client DP: 0 central, 1 distributed            */
    int32_t adaptive;                      /* 0 off, 1 quantile clipping (Andrew et al.)     */
    double quantile, clip_lr, count_noise;
    int32_t schedule;                      /* 0 constant, 1 norm-driven noise schedule       */
    double schedule_min;
    int32_t fedbuff_accounting;            /* DP-FedBuff budget: 0 bound (no sampling), 1 sampled q = K/C */
    char noise_key[CONFIG_PATH_MAX];       /* "" or a secret key file keying the DP streams   */
} config_privacy;

typedef struct {                           /* src/privacy/secagg.c, sa_round.c               */
    int32_t enabled, neighbors;
    double threshold, dropout;
    char transcript[CONFIG_PATH_MAX];      /* "" or HDF5 file of all the aggregator receives   */
    char truth[CONFIG_PATH_MAX];           /* TEST ONLY: "" or HDF5 file of the true inputs    */
    int32_t masks;                         /* 1 on; 0 TEST ONLY: inputs sent unmasked          */
    int32_t dedicated_aggregator;          /* SA_DEDICATED_AUTO|OFF|ON: rank 0 hosts no clients */
    double late_dropout;                   /* simulated dropouts after sending, before answering */
} config_secagg;

typedef struct {                           /* [he] src/he/ (docs/he.md)                      */
    int32_t enabled;                       /* 0 off, 1 on: Paillier aggregation              */
    int32_t key_bits;                      /* bits of n                                      */
    int32_t pack;                          /* int64 words a plaintext (0 = as many as fit)   */
} config_he;

typedef struct {                           /* [cluster] [personalize] [run]: src/fl/cluster.c */
    int32_t method;                        /* 0 off, 1 none, 2 fesem, 3 ifca, 4 cfl, 5 oracle */
    int32_t k;                             /* number of centers                              */
    int32_t init;                          /* 0 kmeans++ on client models, 1 spectral        */
    int32_t warmup;                        /* FedAvg warm-up rounds before the first assign   */
    double eps1, eps2;                     /* CFL: mean-update / max-update norm thresholds   */
    int32_t restarts;                      /* k-means restarts of the first assignment        */
    int32_t restart_score;                 /* restarts kept by: 0 distance, 1 training loss   */
    int32_t assign_new;                    /* new clients: 0 auto, 1 loss, 2 similarity       */
    int32_t reseed;                        /* 0 off, 1 on (a client's model), 2 split          */
    int32_t personalize;                   /* [personalize] mode: 0 none, 1 fedper           */
    int32_t clients_per_rank;              /* [run]: 0 any (cross-device), 1 cross-silo      */
} config_cluster;

typedef struct {                           /* src/fl/system.c                                */
    double sigma;                          /* log-normal speed sigma                         */
    char speeds[CONFIG_PATH_MAX];          /* CSV of per-client speeds ("" = log-normal)      */
    double step_time;                      /* virtual seconds of one local step at speed 1    */
    double on, off;                        /* availability: on/off period lengths (0 = always) */
    double comm_per_byte;                  /* virtual seconds per byte sent or received        */
} config_system;

typedef struct {                           /* src/fl/async.c                                 */
    int32_t mode;                          /* 0 off, 1 wait_all, 2 drop, 3 partial, 4 fedasync, 5 fedbuff */
    double deadline;                       /* drop/partial: round deadline (virtual seconds)   */
    int32_t concurrency;                   /* fedasync/fedbuff: clients training at once        */
    int32_t buffer;                        /* fedbuff: K updates per server step               */
    int32_t max_staleness;                 /* updates staler than this are discarded          */
    int32_t staleness;                     /* 0 constant, 1 polynomial, 2 hinge                */
    double alpha, a, b;                    /* fedasync mixing weight; staleness parameters    */
    double max_vtime;                      /* stop at this virtual time (0 = no limit)         */
    double min_fraction;                   /* partial: least fraction of the full steps kept    */
    int32_t partial_weights;               /* partial: 0 work, 1 data (FedNova p_i), 2 none      */
} config_async;

typedef struct {                           /* [compress]: src/agg/compress.c, src/fl/compress_stage.c */
    int32_t method;                        /* cz_method (compress.h): 0 none, qsgd, topk, randk, signsgd */
    int32_t bits;                          /* qsgd: bits a coordinate (2^bits - 1 points)     */
    int32_t bucket;                        /* qsgd: coordinates a norm (0: whole vector)      */
    double fraction;                       /* topk/randk: kept fraction                        */
    int32_t error_feedback;                /* 0 off, 1 on (residual per client, Stich 2018)    */
    int32_t vote;                          /* signsgd: 0 mean (scaled signs), 1 majority       */
} config_compress;
typedef struct {                           /* [attack]: src/attack/poison.c, attack.h        */
    int32_t mode;                          /* attack_mode: none label_flip sign_flip scale gaussian backdoor */
    double fraction;                       /* of the sampled clients (per_round) or all (fixed) */
    int32_t start_round;                   /* first attacked round                            */
    double boost;                          /* update scale (0: backdoor model replacement n/eta) */
    int32_t source_class, target_class;    /* label_flip source -> target; backdoor target     */
    int32_t trigger;                       /* backdoor: k x k corner square (images), k features */
    double trigger_value;                  /* the trigger's pixel / feature value              */
    double poison_fraction;                /* backdoor: fraction of a malicious client's rows   */
    int32_t selection;                     /* 0 per_round, 1 fixed                             */
} config_attack;
/* [leakage] — the gradient-leakage attack of `fedhpc attack leakage` (src/cli/cmd_attack.c,
 * docs/leakage.md); read by no other command */
enum { LEAK_DEF_NONE = 0, LEAK_DEF_DP_SAMPLE, LEAK_DEF_DP_CLIENT, LEAK_DEF_TOPK, LEAK_DEF_SECAGG };
typedef struct {
    int32_t target_client, batch;          /* the attacked client and its rows in the round  */
    int32_t method;                        /* 0 all, 1 analytic, 2 optimization              */
    int32_t iters, loss, labels;           /* loss: 0 cosine, 1 l2; labels: 0 idlg, 1 joint, 2 true */
    int32_t optimizer;                     /* 0 adam, 1 lbfgs                                 */
    double step, tv;                       /* Adam step; total-variation weight              */
    int32_t defence;                       /* LEAK_DEF_*                                     */
    double epsilon;                        /* > 0: DP noise from this per-round epsilon       */
    double topk;                           /* fraction of update entries kept                 */
    int32_t secagg_clients;                /* clients summed under secure aggregation         */
    int32_t images;                        /* images in the PNG grid                          */
    char model[CONFIG_PATH_MAX];           /* "" the initial model, or a model.h5 to attack at */
} config_leakage;

typedef struct {
    config_data data;
    config_model model;
    config_train train;
    config_fl fl;
    config_output output;
    config_checkpoint checkpoint;
    config_privacy privacy;
    config_secagg secagg;
    config_he he;
    config_cluster cluster;
    config_system system;
    config_async async;
    config_compress compress;
    config_attack attack;
    config_leakage leakage;
} config_t;

/* Defaults for every key. */
void config_defaults(config_t *c);
/* Read an INI file over the current values. Unknown section/key, wrong type or out-of-range
 * values: FH_EINPUT "FILE:LINE: [section] key: expected ..., got '...'". */
fh_status config_load(config_t *c, const char *path);
/* Apply one "section.key=value" override. */
fh_status config_override(config_t *c, const char *assignment);
/* Cross-key checks after loading (e.g. data file set). */
fh_status config_validate(const config_t *c, const char *path);
/* Every path key checked against the file system (fh_path_check): [data] file and [system]
 * speeds readable files, [output] dir and [checkpoint] dir usable directories, [checkpoint]
 * resume an existing file or directory (or "auto"), [secagg] transcript/truth writable files. */
fh_status config_check_paths(const config_t *c);
/* 1 when key [section] key has its default value in c (0 also for an unknown key). */
int config_key_is_default(const config_t *c, const char *section, const char *key);
/* [secagg] dedicated_aggregator as it applies to the FedAvg family (src/fl/fedavg.c): on, or auto
 * with [secagg] enabled = on. 1: rank 0 aggregates and hosts no clients. */
int config_sa_dedicated(const config_t *c);
/* Write the resolved configuration as INI (every key, with its doc as a comment). */
void config_write(const config_t *c, FILE *f);
/* Print every key with type, default and doc (for --help-config and docs/configuration.md). */
void config_print_help(FILE *f);
/* 64-bit hash of the training-relevant keys (data, model, train, fl). */
uint64_t config_train_hash(const config_t *c);
/* Name of an algorithm ("fedavg", ...). */
const char *config_algorithm_name(int32_t alg);

#endif
