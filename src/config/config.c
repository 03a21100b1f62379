/* Experiment configuration: one table declares every key (type, default, doc); config_load reads
 * the INI file; "section.key=value" arguments override it. See include/fedhpc/config.h. */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/config.h"
#include "fedhpc/attack.h"
#include "fedhpc/model.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <ini.h>
#include <sys/stat.h>

typedef enum { T_INT, T_I64, T_DOUBLE, T_PATH, T_ENUM, T_INTLIST } key_type;

typedef struct {
    const char *section, *key;
    key_type type;
    size_t off;        /* offset of the field in config_t                        */
    const char *def;   /* default, as it would be written in the file            */
    double lo, hi;     /* valid range for numbers                                 */
    const char *enums; /* T_ENUM: "a|b|c", value = index                          */
    int train;         /* 1: changes training (part of config_train_hash)         */
    const char *doc;
} key_def;

#define F(field) offsetof(config_t, field)
static const key_def KEYS[] = {
    {"data", "file", T_PATH, F(data.file), "", 0, 0, NULL, 1,
     "partitioned data set written by `fedhpc prepare` (HDF5)"},
    {"data", "verify", T_ENUM, F(data.verify), "on", 0, 0, "off|on", 0,
     "on: check the data file's checksums before training (every rank reads 1/P of the file; "
     "docs/data-integrity.md); off: skip the check"},
    {"model", "type", T_ENUM, F(model.type), "mlp", 0, 0, "logreg|mlp|cnn|attention|lightgcn|graphsage", 1,
     "logreg: (multinomial) logistic regression; mlp: ReLU hidden layers + softmax; "
     "cnn: the CNN of McMahan et al. 2017 (28x28 images); attention: self-attention over a "
     "customer's item set + attention pooling (item-set data of `fedhpc prepare supermarket|ticdata`; "
     "docs/retail.md); lightgcn: LightGCN recommendation on a `prepare movielens` file (hidden = the "
     "embedding dimension; docs/recommend.md); graphsage: GraphSAGE-mean on the same data (hidden = the "
     "embedding dimension once per layer)"},
    /* attention model (docs/retail.md) */
    {"model", "attn_dim", T_INT, F(model.attn_dim), "16", 1, 4096, NULL, 1,
     "attention: item and customer embedding size d"},
    {"model", "attn_heads", T_INT, F(model.attn_heads), "2", 1, 4096, NULL, 1,
     "attention: self-attention heads (must divide attn_dim)"},
    /* [model] lightgcn (issue 15, docs/recommend.md) */
    {"model", "gnn_layers", T_INT, F(model.gnn_layers), "2", 0, 8, NULL, 1,
     "lightgcn: propagation layers K over each client's user-item graph (0: matrix factorisation)"},
    {"model", "gnn_weighting", T_ENUM, F(model.gnn_weighting), "rows", 0, 0, "rows|items", 1,
     "lightgcn: rows: FedAvg (every item embedding weighted by the clients' rows); items: each item's "
     "embedding averaged over the clients weighted by their training interactions with it (needs every "
     "client every round)"},
    {"model", "hidden", T_INTLIST, F(model.hidden), "200,200", 1, 1 << 20, NULL, 1,
     "MLP hidden layer widths, comma-separated"},
    {"model", "class_weights", T_ENUM, F(model.class_weights), "none", 0, 0, "none|balanced", 1,
     "balanced: weight the loss of class k by n/(classes*n_k) (imbalanced credit data)"},
    {"model", "focal_gamma", T_DOUBLE, F(model.focal_gamma), "0", 0, 10, NULL, 1,
     "focal loss (Lin et al. 2017): each row's (class-weighted) cross-entropy times (1 - p_y)^gamma, so that "
     "easy rows count less (imbalanced credit data, docs/credit.md); 0: plain cross-entropy. logreg and mlp, "
     "not with [privacy] mode = sample"},
    {"train", "rounds", T_INT, F(train.rounds), "50", 1, 1e9, NULL, 0,
     "communication rounds (not a training setting for checkpoints: a run can be extended)"},
    {"train", "clients_per_round", T_INT, F(train.clients_per_round), "10", 1, 1e9, NULL, 1,
     "clients sampled each round (uniformly without replacement; all if >= clients)"},
    {"train", "local_epochs", T_INT, F(train.local_epochs), "1", 1, 1e6, NULL, 1,
     "local epochs E over a client's data per round (centralized: epochs per round)"},
    {"train", "batch_size", T_INT, F(train.batch_size), "10", 0, 1e9, NULL, 1,
     "minibatch size B; 0 = full batch"},
    {"train", "lr", T_DOUBLE, F(train.lr), "0.05", 0, 1e6, NULL, 1, "client learning rate"},
    {"train", "momentum", T_DOUBLE, F(train.momentum), "0", 0, 0.999999, NULL, 1,
     "client SGD momentum (reset every round)"},
    {"train", "weight_decay", T_DOUBLE, F(train.weight_decay), "0", 0, 1e3, NULL, 1,
     "L2 weight decay added to client gradients"},
    {"train", "seed", T_I64, F(train.seed), "1", 0, 9.2e18, NULL, 1,
     "seed of every random stream (init, sampling, shuffles)"},
    {"train", "eval_every", T_INT, F(train.eval_every), "1", 1, 1e9, NULL, 0,
     "evaluate on the test split every k rounds (and always after the last)"},
    {"fl", "algorithm", T_ENUM, F(fl.algorithm), "fedavg", 0, 0,
     "fedavg|fedprox|fedavgm|fedadam|fedyogi|scaffold|centralized", 1,
     "federated algorithm, or the pooled-data baseline"},
    {"fl", "mu", T_DOUBLE, F(fl.mu), "0.01", 0, 1e6, NULL, 1, "FedProx proximal weight"},
    {"fl", "server_lr", T_DOUBLE, F(fl.server_lr), "1", 0, 1e6, NULL, 1,
     "server learning rate applied to the averaged update"},
    {"fl", "server_momentum", T_DOUBLE, F(fl.server_momentum), "0.9", 0, 0.999999, NULL, 1,
     "FedAvgM server momentum"},
    {"fl", "beta1", T_DOUBLE, F(fl.beta1), "0.9", 0, 0.999999, NULL, 1, "FedAdam/FedYogi beta1"},
    {"fl", "beta2", T_DOUBLE, F(fl.beta2), "0.99", 0, 0.999999, NULL, 1, "FedAdam/FedYogi beta2"},
    {"fl", "tau", T_DOUBLE, F(fl.tau), "0.001", 1e-12, 1e6, NULL, 1,
     "FedAdam/FedYogi adaptivity (epsilon)"},
    {"fl", "max_update_norm", T_DOUBLE, F(fl.max_update_norm), "1e4", 1e-6, 1e9, NULL, 1,
     "client updates with a larger L2 norm (or any NaN/Inf) are rejected"},
    {"fl", "max_rejected_rounds", T_INT, F(fl.max_rejected_rounds), "3", 0, 1e9, NULL, 0,
     "stop with an error after this many consecutive rounds in which every update was rejected "
     "(the model is not moving); 0 = never"},
    /* robust aggregation (src/agg/robust.c, src/fl/robust_round.c, docs/robust.md) */
    {"fl", "aggregator", T_ENUM, F(fl.aggregator), "mean", 0, 0, "mean|krum|multikrum|median|trimmed_mean|norm_bound", 1,
     "how the round's client updates are combined: mean (the exact weighted FedAvg mean); krum / multikrum "
     "(Blanchard et al. 2017: the update, or the mean of the n - f updates, with the least summed squared "
     "distance to its n - f - 2 nearest); median / trimmed_mean (coordinate-wise, Yin et al. 2018); "
     "norm_bound (each update clipped to [fl] norm_bound, then the mean, plus norm_bound_noise; Sun et al. 2019)"},
    {"fl", "byzantine_f", T_INT, F(fl.byzantine_f), "1", 0, 1e6, NULL, 1,
     "krum / multikrum: Byzantine clients f tolerated; needs clients a round n > 2f + 2"},
    {"fl", "trim_fraction", T_DOUBLE, F(fl.trim_fraction), "0.1", 0, 0.5, NULL, 1,
     "trimmed_mean: fraction in [0, 0.5) of the values cut at each end of every coordinate "
     "(floor(fraction * n) each side)"},
    {"fl", "norm_bound", T_DOUBLE, F(fl.norm_bound), "1", 1e-12, 1e9, NULL, 1,
     "norm_bound: L2 bound each client update is clipped to"},
    {"fl", "norm_bound_noise", T_DOUBLE, F(fl.norm_bound_noise), "0", 0, 1e6, NULL, 1,
     "norm_bound: std of the Gaussian noise added to every coordinate of the aggregate (weak DP, Sun et "
     "al. 2019; drawn from the seed: a simulation, not a privacy guarantee)"},
    {"fl", "central_shards", T_INT, F(fl.central_shards), "8", 1, 4096, NULL, 1,
     "centralized: fixed data shards (spread over ranks) whose gradients are summed exactly"},
    {"output", "dir", T_PATH, F(output.dir), "runs/default", 0, 0, NULL, 0,
     "output directory: config.ini, metrics.csv, model.h5"},
    {"output", "progress", T_ENUM, F(output.progress), "auto", 0, 0, "auto|lines|off", 0,
     "auto: one-line progress on a terminal, plain lines otherwise"},
    {"checkpoint", "every", T_INT, F(checkpoint.every), "0", 0, 1e9, NULL, 0,
     "write a checkpoint every N rounds (0: only when stopped by SIGTERM/SIGUSR1)"},
    {"checkpoint", "dir", T_PATH, F(checkpoint.dir), "", 0, 0, NULL, 0,
     "checkpoint directory (empty: <output dir>/checkpoints)"},
    {"checkpoint", "keep", T_INT, F(checkpoint.keep), "3", 1, 1e6, NULL, 0, "newest checkpoints kept"},
    {"checkpoint", "resume", T_PATH, F(checkpoint.resume), "", 0, 0, NULL, 0,
     "auto: continue from the newest valid checkpoint (fresh start if none); or a checkpoint file/dir"},
    /* [privacy] — differential privacy (src/privacy/dp.c) */
    {"privacy", "mode", T_ENUM, F(privacy.mode), "none", 0, 0, "none|client|sample", 1,
     "client: DP-FedAvg (clip each update, Gaussian noise on the sum); sample: DP-SGD inside clients "
     "([model] type = logreg or mlp)"},
    {"privacy", "clip", T_DOUBLE, F(privacy.clip), "1", 1e-9, 1e9, NULL, 1,
     "L2 clipping norm C (client: per update; sample: per example); initial C when adaptive"},
    {"privacy", "noise", T_DOUBLE, F(privacy.noise), "1", 0, 1e6, NULL, 1,
     "noise multiplier sigma (Gaussian std = sigma * C); `fedhpc privacy --target-epsilon` finds it"},
    {"privacy", "delta", T_DOUBLE, F(privacy.delta), "1e-5", 1e-30, 0.5, NULL, 1,
     "delta of the reported (epsilon, delta)"},
    {"privacy", "epsilon_budget", T_DOUBLE, F(privacy.budget), "0", 0, 1e9, NULL, 1,
     "stop before the round that would exceed this epsilon (0: no budget)"},
    {"privacy", "sampling", T_ENUM, F(privacy.sampling), "poisson", 0, 0, "poisson|fixed", 1,
     "DP-SGD batches: poisson (each row with rate batch_size/n) or fixed-size shuffled batches"},
    {"privacy", "placement", T_ENUM, F(privacy.placement), "central", 0, 0, "central|distributed", 1,
     "client DP noise: added once to the exact sum, or shared out to the clients (needs [secagg] on)"},
    {"privacy", "adaptive_clip", T_ENUM, F(privacy.adaptive), "off", 0, 0, "off|on", 1,
     "client DP: quantile-based adaptive clipping (Andrew et al. 2021)"},
    {"privacy", "target_quantile", T_DOUBLE, F(privacy.quantile), "0.5", 0, 1, NULL, 1,
     "adaptive clipping: target fraction of unclipped updates"},
    {"privacy", "clip_lr", T_DOUBLE, F(privacy.clip_lr), "0.2", 0, 100, NULL, 1,
     "adaptive clipping: geometric learning rate of C"},
    {"privacy", "count_noise", T_DOUBLE, F(privacy.count_noise), "0", 0, 1e9, NULL, 1,
     "adaptive clipping: std of the noise on the unclipped count (0: clients_per_round/20)"},
    {"privacy", "schedule", T_ENUM, F(privacy.schedule), "constant", 0, 0, "constant|norm", 1,
     "client DP: norm: scale sigma by the decay of the noised update norm (floor schedule_min)"},
    {"privacy", "schedule_min", T_DOUBLE, F(privacy.schedule_min), "0.5", 0.01, 1, NULL, 1,
     "norm schedule: smallest fraction of the configured sigma"},
    {"privacy", "noise_key", T_PATH, F(privacy.noise_key), "", 0, 0, NULL, 1,
     "secret file (32+ bytes; `fedhpc privacy --new-key FILE` makes one) that keys every DP noise and "
     "sampling stream; empty: the streams derive from [train] seed alone, so anyone holding the "
     "configuration can regenerate the noise (simulation only)"},
    /* not a training setting (like rounds): it only decides where a run stops */
    {"privacy", "fedbuff_accounting", T_ENUM, F(privacy.fedbuff_accounting), "bound", 0, 0, "bound|sampled", 0,
     "DP-FedBuff: the epsilon that epsilon_budget and metrics.csv use. bound: the busiest client's n "
     "buffers as n unsampled Gaussian steps (holds whatever the schedule); sampled: q = K/clients a "
     "buffer (assumes each buffer's clients are a uniform sample, which the scheduler does not ensure)"},
    /* [secagg] — secure aggregation (src/privacy/secagg.c) */
    {"secagg", "enabled", T_ENUM, F(secagg.enabled), "off", 0, 0, "off|on", 0,
     "mask every client's contribution (Bonawitz et al. 2017); the model is bit-identical"},
    {"secagg", "threshold", T_DOUBLE, F(secagg.threshold), "0.5", 0.01, 1, NULL, 0,
     "Shamir threshold t as a fraction of a client's neighbours (t = ceil(f * neighbours))"},
    {"secagg", "neighbors", T_INT, F(secagg.neighbors), "0", 0, 1e6, NULL, 0,
     "SecAgg+: k neighbours a client masks with (0: all clients of the round)"},
    {"secagg", "dropout", T_DOUBLE, F(secagg.dropout), "0", 0, 0.99, NULL, 1,
     "simulated dropout rate (after key sharing, before sending); dropped clients are excluded"},
    {"secagg", "transcript", T_PATH, F(secagg.transcript), "", 0, 0, NULL, 0,
     "HDF5 file of everything the aggregator receives (public keys, encrypted shares, masked inputs, "
     "unmasking shares) and its unmasked sum, every round (\"\": none)"},
    {"secagg", "truth", T_PATH, F(secagg.truth), "", 0, 0, NULL, 0,
     "TEST ONLY, defeats secure aggregation: HDF5 file of every client's unmasked input (gathered to "
     "rank 0) and the round's aggregate, to check a transcript against (\"\": none)"},
    {"secagg", "masks", T_ENUM, F(secagg.masks), "on", 0, 0, "off|on", 0,
     "TEST ONLY: off sends the inputs unmasked (the transcript checker's control case)"},
    /* like threshold (it only decides which rounds abort): not part of config_train_hash */
    {"secagg", "late_dropout", T_DOUBLE, F(secagg.late_dropout), "0", 0, 0.99, NULL, 0,
     "simulated late dropout rate (after sending the masked input, before answering the unmasking "
     "request; independent of dropout): a late dropper's input is in the sum, the other survivors' "
     "answers unmask it; the round aborts if a needed secret has fewer than t answers. Needs enabled = on"},
    {"secagg", "dedicated_aggregator", T_ENUM, F(secagg.dedicated_aggregator), "auto", 0, 0, "auto|off|on", 0,
     "FedAvg family only: on: rank 0 aggregates and evaluates on the test split but hosts no clients "
     "(clients are placed on ranks 1..size-1; needs at least 2 ranks), so it never holds a client's rows, "
     "keys or unmasked update; off: rank 0 also hosts clients; auto: on with [secagg] enabled = on, else off. "
     "The model is the same bit for bit. Multi-center FL ([cluster], [personalize], [run] clients_per_rank) "
     "aggregates each cluster on one of its hosts: auto does not apply there and on is refused "
     "(see docs/threat-model.md)"},
    /* [he] — Paillier aggregation (src/he/, docs/he.md); not training settings: the model is
     * bit-identical with or without it */
    {"he", "enabled", T_ENUM, F(he.enabled), "off", 0, 0, "off|on", 0,
     "sum the clients' fixed-point updates under Paillier encryption (Phong et al. 2018): the clients share "
     "the secret key, the aggregator multiplies ciphertexts only; the model is bit-identical (docs/he.md)"},
    {"he", "key_bits", T_INT, F(he.key_bits), "2048", 1024, 8192, NULL, 0,
     "bits of the Paillier modulus n (a multiple of 64; 2048 or more; 1024 is for tests only, below "
     "112-bit security)"},
    {"he", "pack", T_INT, F(he.pack), "0", 0, 1024, NULL, 0,
     "int64 update words packed into one plaintext, each in a slot of 64 + ceil(log2 clients_per_round) "
     "bits; 0: as many as fit (key_bits - 1) / slot bits; more is refused"},
    /* [cluster] [personalize] [run] — multi-center FL (src/fl/cluster.c) */
    {"cluster", "method", T_ENUM, F(cluster.method), "off", 0, 0, "off|none|fesem|ifca|cfl|oracle", 1,
     "multi-center FL: fesem (Long et al. 2022), ifca (Ghosh et al. 2020), cfl (Sattler et al. 2020); "
     "none: one center (FedAvg) in the multi-center loop, for comparison; oracle: every client in its true "
     "group's center (the data file's /train/client_group, k = its groups), the upper bound a clustering "
     "can reach; off: the plain engine"},
    {"cluster", "k", T_INT, F(cluster.k), "4", 1, 4096, NULL, 1,
     "number of centers (fesem, ifca; cfl: the most clusters it may split into)"},
    {"cluster", "init", T_ENUM, F(cluster.init), "kmeans++", 0, 0, "kmeans++|spectral", 1,
     "fesem/ifca: first assignment by k-means++ on client models, or spectral clustering (ScaLAPACK)"},
    {"cluster", "warmup", T_INT, F(cluster.warmup), "1", 0, 1e6, NULL, 1,
     "fesem/ifca: rounds of local training from the shared initial model before the first assignment "
     "(0: K random initial centers, as in Ghosh et al.; the form secagg and client-level DP accept)"},
    {"cluster", "eps1", T_DOUBLE, F(cluster.eps1), "0.4", 0, 1e9, NULL, 1,
     "cfl: split a cluster when the norm of its mean update is below eps1 ..."},
    {"cluster", "eps2", T_DOUBLE, F(cluster.eps2), "1.6", 0, 1e9, NULL, 1,
     "cfl: ... and its largest client update norm is above eps2"},
    {"cluster", "restarts", T_INT, F(cluster.restarts), "10", 1, 1000, NULL, 1,
     "fesem/ifca (init = kmeans++): k-means restarts of the first assignment, the best kept ([cluster] restart_score)"},
    {"cluster", "restart_score", T_ENUM, F(cluster.restart_score), "distance", 0, 0, "distance|loss", 1,
     "fesem/ifca (init = kmeans++): which k-means restart of the first assignment is kept: distance, the lowest "
     "total within-cluster distance of the client models; loss, the lowest total training loss of the round's "
     "clients under their cluster's mean model (each restart's means are exact fixed-point sums; costs one "
     "evaluation of every client's rows a restart)"},
    {"cluster", "assign_new", T_ENUM, F(cluster.assign_new), "auto", 0, 0, "auto|loss|similarity", 1,
     "a client seen for the first time after the first assignment joins the center with the lowest loss "
     "on its rows (loss), or whose drift from the warm-up model its own update is most similar to "
     "(similarity, fesem with warmup >= 1 only); auto: fesem with a warm-up similarity, otherwise loss"},
    {"cluster", "reseed", T_ENUM, F(cluster.reseed), "on", 0, 0, "off|on|split", 1,
     "fesem/ifca/cfl: a center left with no clients restarts from the round's worst-fit client (on: its "
     "trained model; not with [privacy] or [secagg]) or from the largest cluster's center plus N(0, 0.01^2) "
     "noise (split: no client model, so also with [secagg] and DP-SGD; not with client-level DP, whose "
     "noised sum hides which centers are empty)"},
    {"personalize", "mode", T_ENUM, F(cluster.personalize), "none", 0, 0, "none|fedper", 1,
     "fedper: base layers shared, the output layer (head) kept per client on disk"},
    {"run", "clients_per_rank", T_INT, F(cluster.clients_per_rank), "0", 0, 1, NULL, 0,
     "1: cross-silo, rank i is client i (needs -np = clients); 0: clients spread over ranks"},
    /* [system] [async] — device heterogeneity, virtual clock, async FL (src/fl/system.c, async.c) */
    {"system", "speed_sigma", T_DOUBLE, F(system.sigma), "0", 0, 10, NULL, 1,
     "client speeds log-normal exp(sigma * N(0,1)), drawn from the seed (RNG_SYSTEM); 0: all speed 1"},
    {"system", "speeds", T_PATH, F(system.speeds), "", 0, 0, NULL, 1,
     "CSV of per-client speeds (one number a line, or client,speed; line i = client i) instead of log-normal"},
    {"system", "step_time", T_DOUBLE, F(system.step_time), "1", 1e-9, 1e9, NULL, 1,
     "virtual seconds one local SGD step takes at speed 1 (training time = steps * step_time / speed)"},
    {"system", "on", T_DOUBLE, F(system.on), "0", 0, 1e12, NULL, 1,
     "availability: a client is on for `on` then off for `off` virtual seconds, periodically, with a "
     "random phase per client; work pauses while off (0: always available)"},
    {"system", "off", T_DOUBLE, F(system.off), "0", 0, 1e12, NULL, 1, "availability: off period length"},
    {"system", "comm_per_byte", T_DOUBLE, F(system.comm_per_byte), "0", 0, 1e6, NULL, 1,
     "virtual seconds per byte of model download + upload (4 bytes a parameter each way)"},
    {"async", "mode", T_ENUM, F(async.mode), "off", 0, 0, "off|wait_all|drop|partial|fedasync|fedbuff", 1,
     "off: the plain engine; wait_all: synchronous rounds on the virtual clock; drop: updates after "
     "[async] deadline are discarded; partial: clients do the steps that fit before the deadline, "
     "FedNova-normalised ([async] partial_weights); fedasync (Xie et al. 2019); fedbuff (Nguyen et al. "
     "2022). A round = one server model update"},
    {"async", "deadline", T_DOUBLE, F(async.deadline), "0", 0, 1e15, NULL, 1,
     "drop/partial: round deadline in virtual seconds after the round starts"},
    {"async", "concurrency", T_INT, F(async.concurrency), "0", 0, 1e6, NULL, 1,
     "fedasync/fedbuff: clients training at any time (0: [train] clients_per_round)"},
    {"async", "buffer", T_INT, F(async.buffer), "10", 1, 1e6, NULL, 1,
     "fedbuff: updates K buffered before one server step (weights 1/K, [fl] server_lr); with [secagg] "
     "the group of one secure-aggregation round (K >= 2)"},
    {"async", "max_staleness", T_INT, F(async.max_staleness), "1000000", 0, 1e9, NULL, 1,
     "updates more than this many server versions stale are discarded"},
    {"async", "staleness", T_ENUM, F(async.staleness), "polynomial", 0, 0, "constant|polynomial|hinge", 1,
     "staleness weight s(t): constant 1; polynomial (1+t)^-a; hinge 1 if t <= b else 1/(a(t-b)+1)"},
    {"async", "alpha", T_DOUBLE, F(async.alpha), "0.6", 1e-9, 1, NULL, 1,
     "fedasync: x = (1 - alpha s(t)) x + alpha s(t) x_client"},
    {"async", "a", T_DOUBLE, F(async.a), "0.5", 0, 1e6, NULL, 1, "staleness parameter a (polynomial, hinge)"},
    {"async", "b", T_DOUBLE, F(async.b), "4", 0, 1e9, NULL, 1, "staleness parameter b (hinge)"},
    {"async", "max_vtime", T_DOUBLE, F(async.max_vtime), "0", 0, 1e15, NULL, 0,
     "stop once the virtual clock passes this (0: run [train] rounds server updates)"},
    {"async", "min_fraction", T_DOUBLE, F(async.min_fraction), "0", 0, 1, NULL, 1,
     "partial: a client that fits less than this fraction of its full local steps before the "
     "deadline is dropped"},
    {"async", "partial_weights", T_ENUM, F(async.partial_weights), "work", 0, 0, "work|data|none", 1,
     "partial: FedNova aggregate tau_eff sum_i p_i delta_i / a_i with p_i = the client's share of the "
     "samples processed this round (work), or of the round's data (data: n_i / n, Wang et al.); none: "
     "no normalisation, sum_i (n_i / n) delta_i"},
    /* [compress] — communication compression (src/agg/compress.c, docs/compression.md) */
    {"compress", "method", T_ENUM, F(compress.method), "none", 0, 0, "none|qsgd|topk|randk|signsgd", 1,
     "compress every client update after [privacy] clipping, before the fixed-point sum: qsgd (stochastic "
     "quantization, Alistarh et al. 2017), topk / randk (sparsification), signsgd; bytes_up counts the "
     "encoded messages. FedAvg family only"},
    {"compress", "bits", T_INT, F(compress.bits), "8", 2, 16, NULL, 1,
     "qsgd: bits a coordinate: 2^bits - 1 quantization points {-s..s}/s with s = 2^(bits-1) - 1"},
    {"compress", "bucket", T_INT, F(compress.bucket), "512", 0, 1e9, NULL, 1,
     "qsgd: coordinates sharing one float32 L2 norm (0: one norm for the whole update)"},
    {"compress", "fraction", T_DOUBLE, F(compress.fraction), "0.01", 1e-9, 1, NULL, 1,
     "topk/randk: fraction of the coordinates sent (k = max(1, round(fraction * parameters)))"},
    {"compress", "error_feedback", T_ENUM, F(compress.error_feedback), "off", 0, 0, "off|on", 1,
     "on: each client keeps the residual e of what compression dropped and compresses update + e next "
     "time (Stich et al. 2018); residuals are saved in checkpoints"},
    {"compress", "vote", T_ENUM, F(compress.vote), "mean", 0, 0, "mean|majority", 1,
     "signsgd: mean: each client sends its signs and mean |u|, averaged as usual; majority: signs only, the "
     "server steps by [fl] server_lr * sign(sum of the clients' signs) (Bernstein et al. 2018)"},
    /* [attack] — poisoning and backdoor attacks by malicious clients (src/attack/poison.c, docs/attacks.md) */
    {"attack", "mode", T_ENUM, F(attack.mode), "none", 0, 0, "none|label_flip|sign_flip|scale|gaussian|backdoor", 1,
     "malicious clients: label_flip (source_class -> target_class in their rows); sign_flip (update * -boost); "
     "scale (update * boost); gaussian (update replaced by N(0, (boost * its RMS)^2) per coordinate); "
     "backdoor (trigger + target_class on poison_fraction of their rows, update * boost: model replacement, "
     "Bagdasaryan et al. 2020). FedAvg family only"},
    {"attack", "fraction", T_DOUBLE, F(attack.fraction), "0.1", 0, 1, NULL, 1,
     "malicious share: per_round, round(fraction * sampled clients) of each round's clients; fixed, "
     "round(fraction * clients) clients for the whole run"},
    {"attack", "start_round", T_INT, F(attack.start_round), "1", 1, 1e9, NULL, 1, "first round with an attack"},
    {"attack", "boost", T_DOUBLE, F(attack.boost), "1", 0, 1e6, NULL, 1,
     "scale of a malicious update (sign_flip, scale, backdoor; gaussian: noise RMS over the honest RMS); "
     "0 with backdoor: model replacement, N_round / (n_i * server_lr * malicious clients of the round)"},
    {"attack", "source_class", T_INT, F(attack.source_class), "0", 0, 1e6, NULL, 1, "label_flip: the class relabelled"},
    {"attack", "target_class", T_INT, F(attack.target_class), "2", 0, 1e6, NULL, 1,
     "label_flip: the new label; backdoor: the class a triggered input should get"},
    {"attack", "trigger", T_INT, F(attack.trigger), "4", 1, 1e6, NULL, 1,
     "backdoor trigger size: images (Fashion-MNIST, CNN), a trigger x trigger square in the bottom-right "
     "corner; tabular data, the last `trigger` features"},
    {"attack", "trigger_value", T_DOUBLE, F(attack.trigger_value), "1", -1e6, 1e6, NULL, 1,
     "value the trigger's pixels / features are set to (1: white for images in [0, 1])"},
    {"attack", "poison_fraction", T_DOUBLE, F(attack.poison_fraction), "0.5", 0, 1, NULL, 1,
     "backdoor: fraction of a malicious client's rows given the trigger and target_class (the rest stay "
     "clean, so the main task is kept)"},
    {"attack", "selection", T_ENUM, F(attack.selection), "per_round", 0, 0, "per_round|fixed", 1,
     "per_round: a fresh draw among each round's sampled clients; fixed: one set of clients for the whole run"},
    /* [leakage] — `fedhpc attack leakage` only (src/cli/cmd_attack.c, docs/leakage.md) */
    {"leakage", "target_client", T_INT, F(leakage.target_client), "0", 0, 1e9, NULL, 0,
     "the attacked client (its update for one round, from the initial model)"},
    {"leakage", "batch", T_INT, F(leakage.batch), "1", 1, 4096, NULL, 0,
     "rows of the target client in the attacked round (drawn from its rows by RNG_LEAKAGE); the client "
     "trains [train] local_epochs epochs on them with [train] batch_size (0: one full-batch step an epoch)"},
    {"leakage", "method", T_ENUM, F(leakage.method), "all", 0, 0, "all|analytic|optimization", 0,
     "analytic: x = dW/db of the first layer (Phong et al. 2018) and iDLG labels; optimization: "
     "gradient matching (DLG/iDLG, Geiping et al.'s cosine loss) with Adam; all: both"},
    {"leakage", "optimizer", T_ENUM, F(leakage.optimizer), "adam", 0, 0, "adam|lbfgs", 0,
     "optimization: Adam, or projected L-BFGS (history 10, Armijo backtracking; labels idlg or true)"},
    {"leakage", "iters", T_INT, F(leakage.iters), "2000", 1, 1e7, NULL, 0,
     "optimization: Adam iterations (L-BFGS: loss evaluations)"},
    {"leakage", "step", T_DOUBLE, F(leakage.step), "0.1", 1e-9, 1e3, NULL, 0,
     "optimization: Adam step size (x0.1 at 3/8, 5/8 and 7/8 of the iterations)"},
    {"leakage", "loss", T_ENUM, F(leakage.loss), "cosine", 0, 0, "cosine|l2", 0,
     "optimization: gradient-matching loss, 1 - cosine similarity (Geiping et al. 2020) or squared "
     "Euclidean distance (Zhu et al. 2019)"},
    {"leakage", "labels", T_ENUM, F(leakage.labels), "idlg", 0, 0, "idlg|joint|true", 0,
     "optimization: labels recovered from the last layer's bias gradient (idlg), optimised with the "
     "inputs as soft labels (joint, DLG), or the true ones (true: an upper bound)"},
    {"leakage", "tv", T_DOUBLE, F(leakage.tv), "0", 0, 1e6, NULL, 0,
     "optimization: total-variation prior weight (images only)"},
    {"leakage", "defence", T_ENUM, F(leakage.defence), "none", 0, 0,
     "none|dp_sample|dp_client|topk|secagg", 0,
     "dp_sample: the client trains with DP-SGD ([privacy] clip, noise); dp_client: the update is "
     "clipped to [privacy] clip and noised (std noise * clip) before it leaves the client; topk: only "
     "the largest topk fraction of entries is sent; secagg: the attacker sees only the sum of "
     "secagg_clients clients' updates"},
    {"leakage", "epsilon", T_DOUBLE, F(leakage.epsilon), "0", 0, 1e6, NULL, 0,
     "dp_sample/dp_client: > 0 sets the noise multiplier to the smallest one that keeps this round "
     "within (epsilon, [privacy] delta) (RDP accountant); 0: [privacy] noise"},
    {"leakage", "topk", T_DOUBLE, F(leakage.topk), "0.1", 1e-9, 1, NULL, 0,
     "topk: fraction of the update's entries (largest magnitude) the client sends"},
    {"leakage", "secagg_clients", T_INT, F(leakage.secagg_clients), "10", 2, 1e6, NULL, 0,
     "secagg: clients in the sum (the target and the next ones, each with batch rows)"},
    {"leakage", "model", T_PATH, F(leakage.model), "", 0, 0, NULL, 0,
     "the round's global model: empty for the initial model of [train] seed, or a model.h5 written by "
     "`fedhpc run` (same [model] and data set) to attack a later round"},
    {"leakage", "images", T_INT, F(leakage.images), "8", 1, 64, NULL, 0,
     "images (originals and reconstructions) in leakage.png"},
};
#undef F
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

static const key_def *key_find(const char *section, const char *key)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(KEYS[i].section, section) == 0 && strcmp(KEYS[i].key, key) == 0) return &KEYS[i];
    return NULL;
}

static int section_known(const char *section)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(KEYS[i].section, section) == 0) return 1;
    return 0;
}

static fh_status bad(const char *where, const key_def *k, const char *what, const char *v)
{
    return fh_error_set(FH_EINPUT, "%s: [%s] %s: expected %s, got '%s'", where, k->section, k->key,
                        what, v);
}

/* Parse value `v` for key k into c; `where` names the file:line or the override. */
static fh_status key_set(config_t *c, const key_def *k, const char *v, const char *where)
{
    char *p = (char *)c + k->off;
    char buf[64];
    char *end;
    switch (k->type) {
    case T_INT:
    case T_I64: {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || end == v || *end || x < k->lo || x > k->hi) {
            snprintf(buf, sizeof buf, "an integer in [%.0f, %.0f]", k->lo, k->hi);
            return bad(where, k, buf, v);
        }
        if (k->type == T_INT) *(int32_t *)p = (int32_t)x;
        else *(int64_t *)p = (int64_t)x;
        return FH_OK;
    }
    case T_DOUBLE: {
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x) || x < k->lo || x > k->hi) {
            snprintf(buf, sizeof buf, "a number in [%g, %g]", k->lo, k->hi);
            return bad(where, k, buf, v);
        }
        *(double *)p = x;
        return FH_OK;
    }
    case T_PATH:
        if (strlen(v) >= CONFIG_PATH_MAX) {
            snprintf(buf, sizeof buf, "a path of at most %d bytes", CONFIG_PATH_MAX - 1);
            char got[96];
            snprintf(got, sizeof got, "%.40s... (%zu bytes)", v, strlen(v));
            return bad(where, k, buf, got);
        }
        strcpy(p, v);
        return FH_OK;
    case T_ENUM: {
        const char *s = k->enums;
        size_t vl = strlen(v);
        for (int idx = 0; s && *s; idx++) {
            const char *bar = strchr(s, '|');
            size_t len = bar ? (size_t)(bar - s) : strlen(s);
            if (len == vl && strncmp(s, v, len) == 0) {
                *(int32_t *)p = idx;
                return FH_OK;
            }
            s = bar ? bar + 1 : NULL;
        }
        char what[256];
        snprintf(what, sizeof what, "one of %s", k->enums);
        return bad(where, k, what, v);
    }
    case T_INTLIST: {
        int32_t *arr = (int32_t *)p;
        int32_t *count = &c->model.nhidden; /* the only list key */
        int n = 0;
        const char *s = v;
        while (*s) {
            errno = 0;
            long x = strtol(s, &end, 10);
            while (*end == ' ' || *end == '\t') end++;
            if (errno || end == s || x < k->lo || x > k->hi || n == CONFIG_MAX_HIDDEN ||
                (*end && *end != ','))
                return bad(where, k, "1 to 8 comma-separated positive integers", v);
            arr[n++] = (int32_t)x;
            s = *end ? end + 1 : end;
        }
        if (n == 0) return bad(where, k, "1 to 8 comma-separated positive integers", v);
        *count = n;
        return FH_OK;
    }
    }
    return FH_EINTERNAL;
}

void config_defaults(config_t *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < NKEYS; i++) {
        fh_status st = key_set(c, &KEYS[i], KEYS[i].def, "defaults");
        (void)st; /* defaults are valid by construction (tested) */
    }
}

/* The INI reader is libinih (Debian's libinih1), set up at run time for lines of any length
 * (heap line buffer that grows: ini_use_stack = false, ini_allow_realloc), stopping at the
 * first error, no multi-line continuations. Its handler gets no line numbers, so the file is
 * read whole and fed line by line through a counting reader (ini_parse_stream): every message
 * names FILE:LINE. Section headers are checked first in one pass (libinih accepts '[a] junk' and
 * does not report a section without keys). */
/* Read the whole file into a NUL-terminated buffer (*out, caller frees). */
static fh_status read_whole(const char *path, char **out)
{
    struct stat sb;
    *out = NULL;
    if (stat(path, &sb) != 0)
        return fh_error_set(FH_EINPUT, "%s: cannot read the configuration file: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode))
        return fh_error_set(FH_EINPUT, "%s: is a directory (expected a configuration file CONFIG.ini)", path);
    FILE *f = fopen(path, "rb");
    if (!f) return fh_error_set(FH_EINPUT, "%s: cannot read the configuration file: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(f);
            return fh_error_set(FH_ENOMEM, "out of memory reading %s", path);
        }
        n += fread(buf + n, 1, cap - n - 1, f);
        if (n + 1 < cap) break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) free(buf);
        buf = nb;
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        return fh_error_set(FH_EINPUT, "%s: cannot read the configuration file (read error)", path);
    }
    buf[n] = 0;
    if (memchr(buf, 0, n)) {
        free(buf);
        return fh_error_set(FH_EINPUT, "%s: contains NUL bytes (expected a text configuration file)", path);
    }
    *out = buf;
    return FH_OK;
}

/* Trim spaces, tabs and \r at both ends of s (in place); returns the new start. */
static char *trim_span(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = 0;
    return s;
}

/* Copy of line `line` (1-based) of text into out (trimmed, at most cap - 1 bytes). */
static void text_line(const char *text, int line, char *out, size_t cap)
{
    for (int l = 1; l < line && *text; l++) {
        const char *nl = strchr(text, '\n');
        text = nl ? nl + 1 : text + strlen(text);
    }
    size_t n = strcspn(text, "\n");
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%.*s", (int)(n < sizeof tmp - 1 ? n : sizeof tmp - 1), text);
    snprintf(out, cap, "%s", trim_span(tmp));
}

/* The section headers of text: closed, nothing after them, a known section. */
static fh_status check_headers(const char *path, const char *text)
{
    for (int line = 1; *text; line++) {
        const size_t n = strcspn(text, "\n");
        char hdr[256];
        snprintf(hdr, sizeof hdr, "%.*s", (int)(n < sizeof hdr - 1 ? n : sizeof hdr - 1), text);
        text += n + (text[n] == '\n');
        char *h = trim_span(hdr);
        if (*h != '[') continue;
        char *close = strchr(h, ']');
        if (!close) return fh_error_set(FH_EINPUT, "%s:%d: section header '%s' has no closing ']' (expected [section])", path, line, h);
        char *rest = trim_span(close + 1);
        if (*rest && *rest != ';' && *rest != '#')
            return fh_error_set(FH_EINPUT, "%s:%d: unexpected '%s' after the section header (expected [section] alone)", path,
                                line, rest);
        *close = 0;
        const char *name = trim_span(h + 1);
        if (!section_known(name))
            return fh_error_set(FH_EINPUT, "%s:%d: unknown section [%s] (see fedhpc run --help-config)", path, line, name);
    }
    return FH_OK;
}

typedef struct {
    config_t *c;
    const char *path;
    const char *text;      /* the file's text                                        */
    const char *next;      /* the reader's position in it                            */
    int line;              /* the line the reader last started                       */
    int first_line[NKEYS]; /* line of each key's first assignment (0: none yet)      */
    fh_status st;
} load_ctx;

/* libinih's reader: the next line of the text, or its next piece when it is longer than num. */
static char *read_line(char *str, int num, void *stream)
{
    load_ctx *L = stream;
    if (!*L->next || num < 2) return NULL;
    if (L->next == L->text || L->next[-1] == '\n') L->line++; /* a new line starts */
    size_t n = strcspn(L->next, "\n");
    if (L->next[n] == '\n') n++;
    if (n > (size_t)num - 1) n = (size_t)num - 1;
    memcpy(str, L->next, n);
    str[n] = 0;
    L->next += n;
    return str;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    load_ctx *L = user;
    const int line = L->line;
    if (!*section) {
        L->st = fh_error_set(FH_EINPUT, "%s:%d: key '%s' before any [section] header", L->path, line, name);
        return 0;
    }
    if (!*name) {
        L->st = fh_error_set(FH_EINPUT, "%s:%d: not valid INI syntax: no key before '=' (expected key = value)", L->path, line);
        return 0;
    }
    const key_def *k = key_find(section, name);
    if (!k) {
        L->st = fh_error_set(FH_EINPUT, "%s:%d: unknown key '%s' in [%s] (see fedhpc run --help-config)", L->path, line, name,
                             section);
        return 0;
    }
    const size_t ki = (size_t)(k - KEYS);
    if (L->first_line[ki]) {
        L->st = fh_error_set(FH_EINPUT, "%s:%d: [%s] %s: duplicated (first at line %d)", L->path, line, k->section, k->key,
                             L->first_line[ki]);
        return 0;
    }
    L->first_line[ki] = line;
    char where[CONFIG_PATH_MAX + 32], v[CONFIG_PATH_MAX + 8];
    snprintf(where, sizeof where, "%s:%d", L->path, line);
    if (strlen(value) >= sizeof v) { /* key_set refuses it with the path's limit */
        L->st = key_set(L->c, k, value, where);
        return 0;
    }
    snprintf(v, sizeof v, "%s", value);
    L->st = key_set(L->c, k, trim_span(v), where);
    return L->st == FH_OK;
}

fh_status config_load(config_t *c, const char *path)
{
    char *buf = NULL;
    FH_TRY(read_whole(path, &buf));
    fh_status st = check_headers(path, buf);
    if (st != FH_OK) {
        free(buf);
        return st;
    }
    ini_use_stack = false; /* a heap line buffer that grows: lines of any length */
    ini_allow_realloc = true;
    ini_max_line = 1 << 24;
    ini_stop_on_first_error = true;
    ini_allow_multiline = false;
    load_ctx *L = fh_calloc(1, sizeof *L);
    if (!L) {
        free(buf);
        return fh_error_set(FH_ENOMEM, "out of memory reading %s", path);
    }
    L->c = c;
    L->path = path;
    L->text = L->next = buf;
    /* a UTF-8 byte-order mark is skipped by libinih (ini_allow_bom) */
    L->st = FH_OK;
    const int rc = ini_parse_stream(read_line, L, on_key, L);
    st = L->st;
    if (st == FH_OK && rc > 0) {
        char text[128];
        text_line(buf, rc, text, sizeof text);
        st = fh_error_set(FH_EINPUT, "%s:%d: not valid INI syntax: '%.60s%s' (expected [section] or key = value)", path, rc,
                          text, strlen(text) > 60 ? "..." : "");
    } else if (st == FH_OK && rc < 0) {
        st = fh_error_set(FH_EINPUT, "%s: cannot parse the configuration file (out of memory)", path);
    }
    free(L);
    free(buf);
    return st;
}

fh_status config_override(config_t *c, const char *a)
{
    char *buf = strdup(a);
    FH_CHECK_ALLOC(buf);
    char *eq = strchr(buf, '='), *dot = strchr(buf, '.');
    if (!eq || !dot || dot > eq) {
        free(buf);
        return fh_error_set(FH_EINPUT, "override '%s': expected section.key=value", a);
    }
    *eq = 0;
    *dot = 0;
    char *section = trim_span(buf), *key = trim_span(dot + 1), *value = trim_span(eq + 1);
    const key_def *k = key_find(section, key);
    fh_status st;
    if (!k) {
        st = fh_error_set(FH_EINPUT, "override '%s': unknown key [%s] %s (see fedhpc run --help-config)", a, section, key);
    } else {
        char where[CONFIG_PATH_MAX + 160];
        snprintf(where, sizeof where, strlen(a) > 300 ? "override '%.300s...'" : "override '%s'", a);
        st = key_set(c, k, value, where);
    }
    free(buf);
    return st;
}

/* [compress]: what composes with what (docs/compression.md#what-composes) */
static fh_status compress_validate(const config_t *c, const char *path)
{
    const config_compress *z = &c->compress;
    if (!z->method) {
        if (z->error_feedback || z->vote)
            return fh_error_set(FH_EINPUT, "%s: [compress] %s needs [compress] method (it is none)", path,
                                z->error_feedback ? "error_feedback = on" : "vote = majority");
        return FH_OK;
    }
    if (z->vote && z->method != 4)
        return fh_error_set(FH_EINPUT, "%s: [compress] vote = majority: only with method = signsgd", path);
    if (c->async.mode || c->cluster.method || c->cluster.personalize || c->cluster.clients_per_rank)
        return fh_error_set(FH_EINPUT, "%s: [compress] method: not supported with %s: compression is a stage of the "
                            "synchronous FedAvg family only (not built for the asynchronous job protocol nor the "
                            "multi-center loop)", path, c->async.mode ? "[async]" : "[cluster], [personalize] or [run] clients_per_rank");
    if (c->fl.algorithm == ALG_CENTRALIZED || c->fl.algorithm == ALG_SCAFFOLD)
        return fh_error_set(FH_EINPUT, "%s: [compress] method: not supported with [fl] algorithm = %s: %s", path,
                            config_algorithm_name(c->fl.algorithm),
                            c->fl.algorithm == ALG_CENTRALIZED ? "there are no client updates"
                                                               : "its control-variate deltas would travel uncompressed");
    if (z->vote && z->error_feedback)
        return fh_error_set(FH_EINPUT, "%s: [compress] error_feedback = on with vote = majority: not supported (a majority "
                            "vote sends signs without a scale, so the residual update - sign(update) has no meaning; "
                            "use vote = mean)", path);
    if (c->privacy.mode == 1 && z->vote)
        return fh_error_set(FH_EINPUT, "%s: [compress] vote = majority with [privacy] mode = client: not supported: the "
                            "server takes the sign of the sum, where DP-FedAvg adds its noise to the sum of clipped "
                            "updates (use vote = mean)", path);
    if (c->privacy.mode == 1 && c->privacy.placement == 1)
        return fh_error_set(FH_EINPUT, "%s: [compress] method with [privacy] placement = distributed: not supported: each "
                            "client would compress its noise share, so the sum would no longer carry the Gaussian noise "
                            "the accountant assumes (use placement = central)", path);
    if (c->fl.aggregator != AGGR_MEAN && c->fl.aggregator != AGGR_NORM_BOUND)
        return fh_error_set(FH_EINPUT, "%s: [compress] method with [fl] aggregator = %s: not supported: the robust rules "
                            "combine whole client updates on coordinate slices, where compression sends sparse or "
                            "quantized messages that are summed as they arrive (use aggregator = norm_bound or mean)",
                            path, c->fl.aggregator == AGGR_KRUM ? "krum" : c->fl.aggregator == AGGR_MULTIKRUM ? "multikrum"
                            : c->fl.aggregator == AGGR_MEDIAN ? "median" : "trimmed_mean");
    return FH_OK;
}

/* [fl] aggregator: what robust aggregation composes with (docs/robust.md#composition); the
 * Krum bound n > 2f + 2 needs the number of clients and is checked at start (robust_agg_init). */
static fh_status config_validate_robust(const config_t *c, const char *path, int sa)
{
    static const char *names[] = {"mean", "krum", "multikrum", "median", "trimmed_mean", "norm_bound"};
    const int a = c->fl.aggregator;
    const char *an = names[a];
    if (c->fl.trim_fraction >= 0.5)
        return fh_error_set(FH_EINPUT, "%s: [fl] trim_fraction: expected a number in [0, 0.5), got %g (the fraction cut "
                            "at each end of every coordinate)", path, c->fl.trim_fraction);
    if (c->fl.norm_bound_noise > 0 && a != AGGR_NORM_BOUND)
        return fh_error_set(FH_EINPUT, "%s: [fl] norm_bound_noise: only with [fl] aggregator = norm_bound (got aggregator "
                            "= %s)", path, an);
    if (a == AGGR_MEAN) return FH_OK;
    if (c->fl.algorithm == ALG_CENTRALIZED)
        return fh_error_set(FH_EINPUT, "%s: [fl] aggregator = %s: not for [fl] algorithm = centralized (there are no "
                            "client updates)", path, an);
    /* multi-center FL: the rule per cluster on its rank group (src/fl/cluster.c, docs/robust.md) */
    if (c->async.mode)
        return fh_error_set(FH_EINPUT, "%s: [fl] aggregator = %s: not built yet for [async]; only the synchronous "
                            "FedAvg family and multi-center FL take a robust aggregator (use aggregator = mean there)",
                            path, an);
    if (c->privacy.mode == 1)
        return fh_error_set(FH_EINPUT, "%s: [fl] aggregator = %s: not with [privacy] mode = client: %s", path, an,
                            a == AGGR_NORM_BOUND ? "DP-FedAvg already clips every update (to [privacy] clip) and adds "
                            "accounted noise, which is norm bounding with a guarantee (use aggregator = mean)"
                            : "its noise is calibrated to the sensitivity of the plain mean of clipped updates; the "
                            "sensitivity of a robust rule and its accounting are not built (use aggregator = mean, or "
                            "[privacy] mode = sample)");
    if (a == AGGR_NORM_BOUND) return FH_OK; /* clipping at the client: composes with secure aggregation and SCAFFOLD */
    if (sa)
        return fh_error_set(FH_EINPUT, "%s: [fl] aggregator = %s: not with [secagg]: secure aggregation reveals only the "
                            "sum of the masked updates, and a %s of masked inputs is meaningless (use aggregator = "
                            "norm_bound, which clips at the client before masking, or mean)", path, an,
                            a == AGGR_MEDIAN || a == AGGR_TRIMMED_MEAN ? "coordinate-wise median or trimmed mean"
                                                                       : "Krum score");
    if (c->fl.algorithm == ALG_SCAFFOLD)
        return fh_error_set(FH_EINPUT, "%s: [fl] aggregator = %s: not with [fl] algorithm = scaffold: its control "
                            "variates are averaged over the same clients as the updates, which a robust rule does not "
                            "define (use aggregator = norm_bound or mean)", path, an);
    return FH_OK;
}

fh_status config_validate(const config_t *c, const char *path)
{
    FH_TRY(compress_validate(c, path));
    if (!c->data.file[0])
        return fh_error_set(FH_EINPUT, "%s: [data] file: expected the path of a prepared data set, got nothing", path);
    if (!c->output.dir[0])
        return fh_error_set(FH_EINPUT, "%s: [output] dir: expected a directory, got nothing", path);
    if ((c->secagg.transcript[0] || !c->secagg.masks) && !c->secagg.enabled)
        return fh_error_set(FH_EINPUT, "%s: [secagg] %s needs [secagg] enabled = on", path,
                            c->secagg.transcript[0] ? "transcript" : "masks = off");
    if (c->secagg.late_dropout > 0 && !c->secagg.enabled)
        return fh_error_set(FH_EINPUT, "%s: [secagg] late_dropout needs [secagg] enabled = on (a late dropper is a "
                            "client that sent its masked input and does not answer the unmasking request)", path);
    if (c->secagg.dedicated_aggregator == SA_DEDICATED_ON && (c->cluster.method || c->cluster.personalize || c->cluster.clients_per_rank))
        return fh_error_set(FH_EINPUT, "%s: [secagg] dedicated_aggregator = on: not supported with [cluster], "
                            "[personalize] or [run] clients_per_rank: multi-center FL aggregates each cluster (its "
                            "masks included) on one of the cluster's own hosts, so no rank aggregates without hosting "
                            "clients; use dedicated_aggregator = auto or off (see docs/threat-model.md)", path);
    if (c->secagg.dedicated_aggregator == SA_DEDICATED_ON && (c->async.mode || c->fl.algorithm == ALG_CENTRALIZED))
        return fh_error_set(FH_EINPUT, "%s: [secagg] dedicated_aggregator = on: only for the synchronous FedAvg family, "
                            "not with %s", path, c->async.mode ? "[async]" : "[fl] algorithm = centralized");
    if (c->async.mode && (c->cluster.method || c->cluster.personalize || c->cluster.clients_per_rank))
        return fh_error_set(FH_EINPUT, "%s: [async] mode: not with [cluster], [personalize] or [run] clients_per_rank: "
                            "multi-center FL runs synchronous rounds (each center is the mean of its members' models "
                            "of the round) and would silently ignore [async]; set [async] mode = off", path);
    const int sa_any = c->secagg.enabled || c->secagg.dropout > 0 || c->secagg.truth[0];
    if (sa_any && c->fl.algorithm == ALG_CENTRALIZED)
        return fh_error_set(FH_EINPUT, "%s: [secagg]: not for [fl] algorithm = centralized (there are no client updates)", path);
    /* [privacy] / [secagg] are stages of the one loop; what is refused below is refused for a
     * stated reason of privacy or mathematics (src/fl/async.c checks the rest of [async]) */
    if (c->privacy.mode && c->async.mode && !(c->privacy.mode == 1 && c->async.mode == 5))
        return fh_error_set(FH_EINPUT, "%s: [privacy] mode: with [async] only mode = client with [async] mode = fedbuff", path);
    if (sa_any && c->async.mode == 4)
        return fh_error_set(FH_EINPUT, "%s: [secagg]: not with [async] mode = fedasync: it applies every update on "
                            "its own, and a sum of one update is the update itself, so masking cannot hide it (use "
                            "[async] mode = fedbuff, whose buffer of K >= 2 updates is the secure-aggregation group)", path);
    /* FedBuff: the buffer is the group of a secure-aggregation round, formed when it fills;
     * wait_all/drop/partial: the round's accepted updates, once all are in */
    if (sa_any && c->async.mode && !c->secagg.enabled)
        return fh_error_set(FH_EINPUT, "%s: [secagg] dropout/truth with [async]: need [secagg] enabled = on (dropouts "
                            "are simulated in the secure-aggregation round of a buffer or round)", path);
    if (sa_any && c->async.mode == 5 && c->async.buffer < 2)
        return fh_error_set(FH_EINPUT, "%s: [async] buffer = %d: with [secagg] the buffer is the secure-aggregation "
                            "group and must hold at least 2 updates (a sum of one update is the update itself)", path,
                            c->async.buffer);
    if (sa_any && c->async.mode == 5 && c->privacy.mode == 1 && c->privacy.placement == 1)
        return fh_error_set(FH_EINPUT, "%s: [privacy] placement = distributed: not with [async] mode = fedbuff and "
                            "[secagg]: the noise shares are drawn at the aggregator as updates join the buffer, and "
                            "adding them at the hosts is not built (use placement = central)", path);
    /* focal loss: in the logreg/mlp output layer; the per-example gradients of DP-SGD, the CNN's
     * fused output layer, attention (attn.c) and the BPR loss of lightgcn/graphsage do not have it */
    if (c->model.focal_gamma > 0 && ((c->model.type != MODEL_LOGREG && c->model.type != MODEL_MLP) || c->privacy.mode == 2))
        return fh_error_set(FH_EINPUT, "%s: [model] focal_gamma = %g: supported with [model] type = logreg or mlp and "
                            "without [privacy] mode = sample (DP-SGD); set focal_gamma = 0", path, c->model.focal_gamma);
    /* attention rows are item indices: a feature trigger would write a non-index into them */
    if (c->attack.mode == ATTACK_BACKDOOR && c->model.type == MODEL_ATTENTION)
        return fh_error_set(FH_EINPUT, "%s: [attack] mode = backdoor is not supported with [model] type = attention: its "
                            "trigger overwrites features, and attention rows are item indices", path);
    /* [model] lightgcn: the FedAvg family only (src/fl/gnn_run.c hooks into fedavg.c) */
    if ((c->model.type == MODEL_LIGHTGCN || c->model.type == MODEL_GRAPHSAGE) && (c->fl.algorithm == ALG_CENTRALIZED || c->fl.algorithm == ALG_SCAFFOLD ||
                                            c->async.mode || c->cluster.method || c->cluster.personalize ||
                                            c->cluster.clients_per_rank || c->privacy.mode == 2 || c->attack.mode))
        return fh_error_set(FH_EINPUT, "%s: [model] type = lightgcn|graphsage: runs with the FedAvg family only (fedavg, fedprox, "
                            "fedavgm, fedadam, fedyogi; no scaffold, centralized, [async], [cluster], [personalize], "
                            "DP-SGD or [attack]); for the centralized baseline prepare the data with --clients 1", path);
    if (c->model.type == MODEL_LIGHTGCN && c->model.nhidden != 1)
        return fh_error_set(FH_EINPUT, "%s: [model] hidden: lightgcn takes one value, the embedding dimension "
                            "(e.g. hidden = 32), got %d values", path, c->model.nhidden);
    /* DP-SGD clips every example's gradient (model_loss_grad_clipped): logreg and mlp; attention
     * one example at a time */
    if (c->privacy.mode == 2 && c->model.type == MODEL_CNN)
        return fh_error_set(FH_EINPUT, "%s: [privacy] mode = sample (DP-SGD) is not supported with [model] type = cnn: "
                            "per-example gradient clipping exists for logreg and mlp only; use [privacy] mode = client "
                            "or [model] type = logreg/mlp", path);
    const int multi = c->cluster.method || c->cluster.personalize || c->cluster.clients_per_rank;
    /* fesem/ifca's first assignment after a warm-up, and every cfl split, use the Gram matrix of
     * the round's client models (dist_gram): individual models, outside DP and in the clear */
    const int gram = c->cluster.method == 4 || ((c->cluster.method == 2 || c->cluster.method == 3) && c->cluster.warmup > 0);
    const char *gname = c->cluster.method == 4 ? "cfl" : c->cluster.method == 2 ? "fesem with warmup > 0" : "ifca with warmup > 0";
    if (c->privacy.mode == 1 && gram)
        return fh_error_set(FH_EINPUT, "%s: [privacy] mode: not supported with [cluster] method = %s for mode = client: its "
                            "assignment step needs the pairwise similarities of individual client models (Gram matrix), "
                            "which client-level DP does not cover (use method = fesem or ifca with warmup = 0, or none)", path,
                            gname);
    if (c->privacy.mode == 1 && c->cluster.reseed == 2 && multi)
        return fh_error_set(FH_EINPUT, "%s: [cluster] reseed = split with [privacy] mode = client: not supported: which "
                            "center is empty and which is largest is read from the clients' cluster choices, which "
                            "client-level DP keeps inside the noised sum (use reseed = off)", path);
    if (c->privacy.mode == 1 && multi && c->privacy.placement == 1)
        return fh_error_set(FH_EINPUT, "%s: [privacy] placement = distributed: not supported with [cluster] or [personalize]: "
                            "a client's noise share would cover only its own cluster's slot (use placement = central)", path);
    if (c->privacy.mode == 2 && c->cluster.method == 3)
        return fh_error_set(FH_EINPUT, "%s: [privacy] mode = sample with [cluster] method = ifca: not supported: IFCA picks "
                            "each client's cluster by the loss of every center on the client's raw rows, outside DP-SGD's "
                            "guarantee (fesem, cfl and none assign from the DP-SGD model)", path);
    if (c->he.enabled || c->he.key_bits % 64) { /* [he]: the FedAvg family's aggregation only, for now */
        const char *why = c->he.key_bits % 64 ? "key_bits must be a multiple of 64"
                        : c->secagg.enabled ? "not with [secagg] enabled = on (choose one cryptographic aggregation)"
                        : c->fl.algorithm == ALG_CENTRALIZED ? "not for [fl] algorithm = centralized (no client updates)"
                        : c->async.mode ? "not supported yet with [async] (updates travel to rank 0 in the job protocol)"
                        : multi ? "not supported yet with [cluster], [personalize] or [run] clients_per_rank"
                        : c->privacy.mode == 1 && c->privacy.placement == 1 ? "not with [privacy] placement = distributed (needs [secagg])"
                        : c->fl.aggregator != AGGR_MEAN && c->fl.aggregator != AGGR_NORM_BOUND
                            ? "not with [fl] aggregator = krum, multikrum, median or trimmed_mean: the rule needs each "
                              "client's update in the clear, which encryption is there to hide (norm_bound composes)"
                        : c->compress.method ? "not supported yet with [compress] method (the compressed messages are "
                                               "summed as they arrive, not encrypted; one or the other)"
                        : NULL;
        if (why) return fh_error_set(FH_EINPUT, "%s: [he] %s: %s", path, c->he.key_bits % 64 ? "key_bits" : "enabled = on", why);
    }
    if (sa_any && gram)
        return fh_error_set(FH_EINPUT, "%s: [secagg] with [cluster] method = %s: not supported: its similarity step needs the "
                            "pairwise similarities of individual client models (the Gram matrix: CFL's split, the first "
                            "assignment after a warm-up), and secure aggregation reveals only sums, from which they cannot "
                            "be computed; use method = fesem or ifca with warmup = 0 (K random centers), or none", path, gname);
    FH_TRY(config_validate_robust(c, path, c->secagg.enabled || c->secagg.truth[0]));
    FH_TRY(attack_config_check(c, path)); /* [attack] (src/attack/poison.c) */
    return FH_OK;
}

fh_status config_check_paths(const config_t *c)
{
    static const struct {
        size_t off;
        const char *what;
        fh_path_kind kind;
    } P[] = {
        {offsetof(config_t, data.file), "[data] file", FH_PATH_READ_FILE},
        {offsetof(config_t, output.dir), "[output] dir", FH_PATH_WRITE_DIR},
        {offsetof(config_t, checkpoint.dir), "[checkpoint] dir", FH_PATH_WRITE_DIR},
        {offsetof(config_t, checkpoint.resume), "[checkpoint] resume", FH_PATH_READ_ANY},
        {offsetof(config_t, system.speeds), "[system] speeds", FH_PATH_READ_FILE},
        {offsetof(config_t, secagg.transcript), "[secagg] transcript", FH_PATH_WRITE_FILE},
        {offsetof(config_t, secagg.truth), "[secagg] truth", FH_PATH_WRITE_FILE},
        {offsetof(config_t, privacy.noise_key), "[privacy] noise_key", FH_PATH_READ_FILE},
    };
    for (size_t i = 0; i < sizeof P / sizeof P[0]; i++) {
        const char *v = (const char *)c + P[i].off;
        if (!v[0]) continue; /* unset optional paths (required ones: config_validate) */
        if (P[i].off == offsetof(config_t, checkpoint.resume) && strcmp(v, "auto") == 0) continue;
        FH_TRY(fh_path_check(P[i].what, v, P[i].kind));
    }
    return FH_OK;
}

int config_sa_dedicated(const config_t *c)
{
    return c->secagg.dedicated_aggregator == SA_DEDICATED_ON || (c->secagg.dedicated_aggregator == SA_DEDICATED_AUTO && c->secagg.enabled);
}

static void key_format(const config_t *c, const key_def *k, char *out, size_t n)
{
    const char *p = (const char *)c + k->off;
    switch (k->type) {
    case T_INT: snprintf(out, n, "%d", *(const int32_t *)p); break;
    case T_I64: snprintf(out, n, "%lld", (long long)*(const int64_t *)p); break;
    case T_DOUBLE: snprintf(out, n, "%.17g", *(const double *)p); break;
    case T_PATH: snprintf(out, n, "%s", p); break;
    case T_ENUM: {
        int idx = *(const int32_t *)p;
        const char *s = k->enums;
        for (int i = 0; i < idx && s; i++) {
            s = strchr(s, '|');
            if (s) s++;
        }
        size_t len = s ? strcspn(s, "|") : 0;
        snprintf(out, n, "%.*s", (int)len, s ? s : "");
        break;
    }
    case T_INTLIST: {
        const int32_t *arr = (const int32_t *)p;
        size_t used = 0;
        out[0] = 0;
        for (int i = 0; i < c->model.nhidden && used < n; i++)
            used += (size_t)snprintf(out + used, n - used, i ? ",%d" : "%d", arr[i]);
        break;
    }
    }
}

/* "; text" wrapped at about 90 columns. */
static void write_comment(FILE *f, const char *text)
{
    const char *p = text;
    while (*p) {
        size_t n = strlen(p);
        if (n > 88) {
            n = 88;
            while (n > 20 && p[n] != ' ') n--;
        }
        fprintf(f, "; %.*s\n", (int)n, p);
        p += n;
        while (*p == ' ') p++;
    }
}

int config_key_is_default(const config_t *c, const char *section, const char *key)
{
    const key_def *k = key_find(section, key);
    if (!k) return 0;
    config_t d;
    config_defaults(&d);
    char a[CONFIG_PATH_MAX], b[CONFIG_PATH_MAX];
    key_format(c, k, a, sizeof a);
    key_format(&d, k, b, sizeof b);
    return strcmp(a, b) == 0;
}

void config_write(const config_t *c, FILE *f)
{
    const char *cur = "";
    fprintf(f, "; resolved fedhpc configuration (every key; defaults included)\n");
    for (size_t i = 0; i < NKEYS; i++) {
        if (strcmp(cur, KEYS[i].section) != 0) {
            cur = KEYS[i].section;
            fprintf(f, "\n[%s]\n", cur);
        }
        char v[CONFIG_PATH_MAX];
        key_format(c, &KEYS[i], v, sizeof v);
        write_comment(f, KEYS[i].doc);
        fprintf(f, "%s = %s\n", KEYS[i].key, v);
    }
}

void config_print_help(FILE *f)
{
    static const char *tn[] = {"int", "int", "number", "path", "choice", "int list"};
    const char *cur = "";
    for (size_t i = 0; i < NKEYS; i++) {
        const key_def *k = &KEYS[i];
        if (strcmp(cur, k->section) != 0) {
            cur = k->section;
            fprintf(f, "[%s]\n", cur);
        }
        fprintf(f, "  %-18s %-8s default %-10s %s%s%s\n", k->key, tn[k->type],
                k->def[0] ? k->def : "(none)", k->doc, k->enums ? " — " : "",
                k->enums ? k->enums : "");
    }
}

uint64_t config_train_hash(const config_t *c)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over "section.key=value\n" */
    for (size_t i = 0; i < NKEYS; i++) {
        if (!KEYS[i].train) continue;
        /* [compress] with method = none changes nothing: the hash of older checkpoints holds */
        if (c->compress.method == 0 && strcmp(KEYS[i].section, "compress") == 0) continue;
        /* [model] attn_* only matter for the attention model (checkpoints of other models hold) */
        if (c->model.type != MODEL_ATTENTION && strncmp(KEYS[i].key, "attn_", 5) == 0) continue;
        char v[CONFIG_PATH_MAX + 64], line[CONFIG_PATH_MAX + 128];
        key_format(c, &KEYS[i], v, sizeof v);
        snprintf(line, sizeof line, "%s.%s=%s\n", KEYS[i].section, KEYS[i].key, v);
        for (const char *s = line; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    }
    return h;
}

const char *config_algorithm_name(int32_t alg)
{
    static const char *names[] = {"fedavg", "fedprox", "fedavgm", "fedadam", "fedyogi", "scaffold", "centralized"};
    return alg >= 0 && alg <= ALG_CENTRALIZED ? names[alg] : "?";
}
