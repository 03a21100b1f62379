/* fedhpc/gnn.h — LightGCN recommendation across enterprises (issue 15; docs/recommend.md).
 *
 * Two parts:
 *   src/model/gnn.c   pure computation (no MPI, no HDF5): a client's user-item bipartite graph
 *                     in CSR, LightGCN propagation (K layers, symmetric normalisation), the BPR
 *                     loss and its gradient, local training with Adam, top-k ranking metrics.
 *   src/fl/gnn_run.c  the glue to the one training loop (src/fl/fedavg.c calls it from its
 *                     local-work and evaluation stages): per-client user embeddings kept in an
 *                     io_state and saved in checkpoints (FL_FIELD_ROWS "gnn_users"), the global
 *                     popularity baseline, and recommend.csv.
 *
 * Data (fedhpc prepare movielens, docs/file-formats.md): a row is one interaction,
 * x = [user, heldout] (user: a global user index as float, exact below 2^24; heldout: 0 a
 * training interaction, 1 a held-out one), y = the item index (the "classes" are the items,
 * class names the titles). The model's flat parameter buffer is the item embedding table
 * [items, dim] (the shared, aggregated part); user embeddings stay with their client.
 */
#ifndef FEDHPC_GNN_H
#define FEDHPC_GNN_H

#include "fedhpc/common.h"
#include "fedhpc/model.h"
#include "fedhpc/rng.h"

#include <stdint.h>

/* model_create for MODEL_LIGHTGCN (in must be 2, items = classes, dim = hidden[0], nhidden 1)
 * and MODEL_GRAPHSAGE (hidden = dim repeated once per layer: nlayers = nhidden). */
fh_status gnn_model_create(model_t *m, model_type type, int32_t in, int32_t items, const int32_t *hidden,
                           int32_t nhidden);
/* Item embeddings ~ N(0, 0.1^2) from rng_stream(seed, 0, 0, RNG_INIT) (graphsage: then its
 * weights, gnn_sage_init). */
void gnn_init_items(const model_t *m, float *params, uint64_t seed);
/* A user's initial embedding row[dim] ~ N(0, 0.1^2) from rng_stream(seed, user, 0, RNG_GNN_USER):
 * the same in every client that holds the user. */
void gnn_init_user(uint64_t seed, int32_t user, int32_t dim, float *row);

/* A client's bipartite graph: nu local users (sorted global ids in user[]) x ni items. */
typedef struct {
    int32_t nu, ni;
    int64_t nnz;
    int32_t *user;            /* [nu] global id of local user u                              */
    int64_t *uptr;            /* [nu + 1] CSR users x items (training edges; columns sorted)  */
    int32_t *uidx;            /* [nnz]                                                        */
    int64_t *iptr;            /* [ni + 1] CSR items x users                                   */
    int32_t *iidx;            /* [nnz]                                                        */
    float *du, *di;           /* [nu], [ni] 1/sqrt(degree) (0 for an isolated node)           */
    int64_t *hptr;            /* [nu + 1] held-out items of each local user (sorted)          */
    int32_t *hidx;            /* [nheld]                                                      */
    int64_t nheld;
} gnn_graph;

/* Build from n interactions: users[n] global ids, items[n] in [0, ni), held[n] (0 train, 1
 * held-out; NULL: all train). A duplicate (user, item) pair or an item out of range: FH_EINPUT. */
fh_status gnn_graph_build(gnn_graph *g, int32_t ni, const int32_t *users, const int32_t *items, const uint8_t *held,
                          int64_t n);
void gnn_graph_free(gnn_graph *g);

/* Scratch of one client's propagation (grows as needed). */
typedef struct {
    float *uf, *if_;          /* [nu, dim], [ni, dim] final (propagated) embeddings          */
    float *cu, *ci, *nu_, *ni_; /* layer buffers                                             */
    float *gu, *gi;           /* gradients w.r.t. the final embeddings                        */
    float *gu0, *gi0;         /* gradients w.r.t. the layer-0 embeddings                      */
    float *mu, *vu, *mi, *vi; /* Adam moments                                                 */
    int32_t *order;           /* [nnz] edge order of an epoch                                 */
    int32_t *eu;              /* [nnz] the local user of each edge                            */
    int32_t *tri;             /* [3 * batch] (user, positive, negative)                       */
    int64_t cap_u, cap_i, cap_e, cap_b;
    int64_t cap_p;            /* gi0, mi, vi: the shared part (graphsage: items + weights)    */
    float *sg;                /* graphsage: layer inputs, pre-activations, gradients          */
    int64_t cap_s;
} gnn_ws;
void gnn_ws_free(gnn_ws *w);

/* Final embeddings: F = 1/(K+1) sum_k A^k E0 over the graph, A the symmetric-normalised
 * bipartite adjacency (D^-1/2 [0 R; R^T 0] D^-1/2). u0[nu, dim], i0[ni, dim] in; w->uf, w->if_ out. */
fh_status gnn_forward(const gnn_graph *g, int32_t dim, int32_t K, const float *u0, const float *i0, gnn_ws *w);

/* BPR loss of nb triples tri[3 * nb] (local user, positive item, negative item) plus
 * lambda/2 * (|u0_u|^2 + |i0_i|^2 + |i0_j|^2), both averaged over the triples; the gradient
 * w.r.t. u0 and i0 into w->gu0 [nu, dim], w->gi0 [ni, dim]. Returns the mean total loss;
 * *bpr_sum: the summed BPR part (no regulariser). Needs gnn_forward first (same u0, i0). */
double gnn_bpr_grad(const gnn_graph *g, int32_t dim, int32_t K, const float *u0, const float *i0, const int32_t *tri,
                    int32_t nb, double lambda, gnn_ws *w, double *bpr_sum);

typedef struct {
    int32_t dim, layers, epochs, batch; /* batch 0: every training edge in one step          */
    double lr, lambda;                  /* Adam step size; L2 on the batch's layer-0 rows     */
    double mu;                          /* FedProx: + mu/2 |i0 - anchor|^2 on the item table  */
    int32_t sage;                       /* graphsage: i0 is [items * dim + layers * 2 dim * dim]  */
    const float *anchor;                /* [ni, dim] the round's global items (mu > 0)        */
} gnn_opts;

/* Local training of one client: Adam (moments reset) on u0[nu, dim] and i0[ni, dim] in place;
 * each epoch visits the training edges in an order from `shuffle`, each positive paired with a
 * negative item (not a training item of the user) drawn from `neg`. *loss_sum: summed BPR loss,
 * *steps, *seen: steps and triples. */
fh_status gnn_train(const gnn_graph *g, const gnn_opts *o, rng_t shuffle, rng_t neg, float *u0, float *i0, gnn_ws *w,
                    double *loss_sum, int64_t *steps, int64_t *seen);

/* The two draws of gnn_train, exported so that a reference implementation can be fed fedhpc's
 * exact minibatches (tests/bench/bench.c export-gnn). gnn_epoch_order: an epoch's edge order
 * order[nnz] (0..nnz-1 shuffled with `shuffle`). gnn_draw_triples: for the nb edges edges[nb]
 * (eu[e]: the local user of edge e, CSR order) the triples tri[3 * nb] (local user, positive
 * item, negative item), each negative drawn from `neg` (uniform, redrawn up to 64 times while it
 * is a training item of the user). */
void gnn_epoch_order(const gnn_graph *g, rng_t *shuffle, int32_t *order);
void gnn_draw_triples(const gnn_graph *g, const int32_t *edges, const int32_t *eu, int32_t nb, rng_t *neg, int32_t *tri);

/* ---- GraphSAGE (mean aggregator; Hamilton et al. 2017) on the same graph -------------------
 * The shared part p = [items, dim] embeddings, then per layer k a weight W_k [2 dim, dim] shared
 * by users and items: h^{k+1}_v = act([h^k_v, mean of h^k over v's neighbours] W_k), act = ReLU
 * except after the last layer; the final embeddings h^K (into w->uf, w->if_). */
int64_t gnn_sage_nparams(int32_t items, int32_t dim, int32_t layers);
void gnn_sage_init(float *p, int32_t items, int32_t dim, int32_t layers, uint64_t seed);
fh_status gnn_sage_forward(const gnn_graph *g, int32_t dim, int32_t K, const float *u0, const float *p, gnn_ws *w);
/* As gnn_bpr_grad, the gradient w.r.t. u0 into w->gu0 and w.r.t. all of p into w->gi0. */
double gnn_sage_grad(const gnn_graph *g, int32_t dim, int32_t K, const float *u0, const float *p, const int32_t *tri,
                     int32_t nb, double lambda, gnn_ws *w, double *bpr_sum);

/* Top-k of scores[n] (higher first, ties: lower index), skipping items with skip[j] != 0
 * (NULL: none); top[k] (fewer if too few items: *got). */
void gnn_topk(const float *scores, int32_t n, const uint8_t *skip, int32_t k, int32_t *top, int32_t *got);

/* Ranking metrics of one user's list top[k] against its held-out items rel[nrel] (sorted):
 * precision = hits/k, recall = hits/nrel, NDCG = DCG/IDCG with gains 1/log2(rank + 1). */
void gnn_rank_metrics(const int32_t *top, int32_t k, const int32_t *rel, int32_t nrel, double *prec, double *rec,
                      double *ndcg);

/* ---- the glue to the training loop (src/fl/gnn_run.c) ------------------------------------ */
struct fl_loop;
typedef struct gnn_run gnn_run;
/* Set up (collective over L->w): the user-embedding store and its checkpoint field
 * "gnn_users", the global training popularity of every item, recommend.csv (rank 0). A user
 * in two clients of a --partition users file: FH_EINPUT naming the user and the clients.
 * dedicated: rank 0 is a dedicated aggregator ([secagg]) and reads no client's rows (set-up
 * and evaluation run on ranks 1..size-1). */
fh_status gnn_run_init(gnn_run **out, struct fl_loop *L, int dedicated);
/* The local work of client cid in round r on its n rows (x [n, 2], y [n]): LightGCN + BPR on its
 * graph; params[P] (the item embeddings) in: the global model, out: the client's; its user
 * embeddings updated in the store. N_round: the rows of the round's clients (FedAvg weighs this
 * client n / N_round); with [model] gnn_weighting = items, item i's change is scaled by
 * (N_round / n) * c_i / C_i (c_i: this client's training interactions with i, C_i: everyone's),
 * so the aggregate is the interaction-weighted mean of the clients' item embeddings. */
fh_status gnn_run_local(gnn_run *R, int32_t cid, int64_t r, const float *x, const int32_t *y, int64_t n, int64_t N_round,
                        float *params, double *loss, int64_t *steps, int64_t *seen);
/* Precision/recall/F1/NDCG@10 over every client's held-out interactions (each rank its slab of
 * clients; exact fixed-point sums) of the model, of global popularity (training interactions
 * of an item summed over all clients) and of the client's own popularity: one row of
 * recommend.csv (rank 0). out[12] (every rank): P, R, F1, NDCG of each in that order.
 * Collective over L->w. */
fh_status gnn_run_evaluate(gnn_run *R, struct fl_loop *L, int32_t r, double out[12]);
void gnn_run_free(gnn_run *R);

#endif
