/* fedhpc/model.h — models on one flat float32 parameter buffer, and evaluation metrics.
 *
 * A model is a description (shapes, offsets into the buffer); the parameters themselves are a
 * caller-owned float[nparams]. Layers are views into that buffer. Forward and backward use
 * OpenBLAS (cblas_sgemm). No MPI, no HDF5.
 */
#ifndef FEDHPC_MODEL_H
#define FEDHPC_MODEL_H

#include "fedhpc/common.h"

#include <stdint.h>

#define MODEL_MAX_LAYERS 9

typedef struct model_ws model_ws; /* scratch space: model_ws_create below */

/* MODEL_LIGHTGCN (issue 15, src/model/gnn.c, include/fedhpc/gnn.h): the parameter buffer is the
 * item embedding table [classes = items, hidden[0] = dim]; user embeddings are per client.
 * MODEL_GRAPHSAGE: the same, then one [2 dim, dim] weight matrix per layer (hidden = dim,dim,...;
 * nlayers = the number of layers). */
typedef enum { MODEL_LOGREG = 0, MODEL_MLP = 1, MODEL_CNN = 2, MODEL_ATTENTION = 3, MODEL_LIGHTGCN = 4,
               MODEL_GRAPHSAGE = 5 } model_type; /* the order of [model] type's choices */

typedef struct {
    model_type type;
    int32_t in;                    /* input features                                        */
    int32_t classes;               /* classes (>= 2)                                        */
    int32_t nlayers;               /* dense layers (logreg: 1; mlp: hidden + 1)             */
    int32_t fan_in[MODEL_MAX_LAYERS];
    int32_t fan_out[MODEL_MAX_LAYERS]; /* logreg with 2 classes: 1 output (sigmoid)         */
    int64_t w_off[MODEL_MAX_LAYERS];   /* W_l is [fan_in, fan_out] row-major at params+w_off */
    int64_t b_off[MODEL_MAX_LAYERS];   /* b_l is [fan_out] at params+b_off                  */
    int64_t nparams;
    const float *class_weight;     /* optional [classes] loss weights (NULL: all 1); not owned */
    float focal_gamma;             /* > 0: focal loss (1 - p_y)^gamma * CE (Lin et al. 2017),
                                      logreg/mlp training (model_loss_grad, model_sgd_step);
                                      0 (model_create's default): cross-entropy               */
    /* MODEL_CNN (src/model/cnn.c): layers 0-1 are the 5x5 convs (fan_in 25 * in channels),
     * 2-3 the dense layers; input images [cnn_side, cnn_side, cnn_channels] channels last */
    int32_t cnn_side, cnn_channels;
    /* MODEL_ATTENTION (src/model/attn.c): in = L, the padded item-set length (rows hold item
     * indices as floats, -1 = padding); attn_items item vocabulary, attn_dim d, attn_heads */
    int32_t attn_items, attn_dim, attn_heads;
} model_t;

/* Parse "logreg" | "mlp". */
fh_status model_parse_type(const char *s, model_type *out);
const char *model_type_name(model_type t);

/* Describe a model. mlp: nhidden hidden ReLU layers of the given widths, then a softmax layer.
 * logreg: one dense layer; binary (classes == 2) uses a single sigmoid logit, otherwise
 * softmax. Invalid shapes give FH_EINPUT. */
fh_status model_create(model_t *m, model_type type, int32_t in, int32_t classes,
                       const int32_t *hidden, int32_t nhidden);

/* cnn (McMahan et al. 2017): model_create(MODEL_CNN, 784, classes, ...) builds conv 5x5x32
 * 'same' + ReLU + max-pool 2, conv 5x5x64 + ReLU + max-pool 2, fc 512 + ReLU, fc classes
 * softmax for 28 x 28 x 1 inputs (hidden is ignored; any other in gives FH_EINPUT).
 * model_create_cnn builds other sizes (side a multiple of 4), e.g. small ones for tests. */
fh_status model_create_cnn(model_t *m, int32_t side, int32_t channels, int32_t c1, int32_t c2,
                           int32_t fc, int32_t classes);

/* ---- attention over item sets (src/model/attn.c) ------------------------------------------
 * A row x[L] is a customer's item set: item indices in [0, items) stored as floats, -1 padding
 * (positions may be in any order; padding is masked everywhere). The model:
 *   X = E[items]              [L, d]   item embeddings E [items, d] (padding rows: 0)
 *   Q, K, V = X Wq, X Wk, X Wv         per head h (d/heads columns): A = softmax_masked(Q_h K_h^T
 *                                      / sqrt(d/heads)) over the valid keys, O_h = A V_h
 *   H = X + O                          (residual; padded positions 0)
 *   g_j = sigmoid(H_j . u)             attention-pooling gate of each valid item (padding 0)
 *   z = sum_j g_j H_j         [d]      the customer embedding (not normalised: keeps set size)
 *   logits = z Wc + bc        [classes], softmax cross-entropy.
 * Buffer: E, Wq, Wk, Wv ([d, d] row-major), u [d], Wc [d, classes], bc [classes] at
 * w_off[0..5] (b_off[5] = bc). Forward and backward with cblas (GEMMs over all L*n positions for
 * the projections, one small GEMM per row and head for the scores). Parameters: d >= 1,
 * heads >= 1 dividing d, items >= 1, L >= 1; otherwise FH_EINPUT naming [model] attn_dim /
 * attn_heads. A row holding a value that is not -1 or an integer in [0, items) makes
 * model_loss_grad return NAN (loaders check this, so it is a caller's bug). */
fh_status model_create_attn(model_t *m, int32_t L, int32_t items, int32_t dim, int32_t heads,
                            int32_t classes);

/* The customer embeddings z of n rows into emb[n, d] (any n: done in chunks of the ws's
 * max_batch). FH_EINPUT for a model that is not MODEL_ATTENTION or a row out of range. */
fh_status attn_embed(const model_t *m, const float *params, const float *x, int32_t n, float *emb,
                     model_ws *ws);

/* Deterministic initialisation from rng_stream(seed, 0, 0, RNG_INIT): He-uniform weights for
 * ReLU layers, Glorot-uniform for the output layer, zero biases (logreg: all zeros). */
void model_init_params(const model_t *m, float *params, uint64_t seed);

/* Scratch space for up to max_batch rows (activations and their gradients). */
model_ws *model_ws_create(const model_t *m, int32_t max_batch);
void model_ws_free(model_ws *ws);

/* Forward + backward on n <= max_batch rows x[n, in], labels y[n].
 * Returns the SUM over rows of the (class-weighted) cross-entropy loss; writes to grad[nparams]
 * the gradient of the MEAN loss (sum / n). */
double model_loss_grad(const model_t *m, const float *params, const float *x, const int32_t *y,
                       int32_t n, float *grad, model_ws *ws);

/* One plain SGD step on n rows: params -= lr * (gradient of the mean loss); returns the loss
 * sum as model_loss_grad. For logreg/mlp minibatches of at most 12 rows on AVX-512 CPUs the
 * step is fused (src/model/kern.c: each weight is read and written once and the gradient is
 * never stored); the CNN's dense layers step inside its backward pass the same way and only
 * its conv parameters go through grad (src/model/cnn.c); otherwise the whole gradient goes
 * through grad[nparams] (scratch). A label outside [0, classes) or n > max_batch gives NAN.
 * The fast path of optim_step when optim_is_plain (include/fedhpc/optim.h). */
double model_sgd_step(const model_t *m, float *params, const float *x, const int32_t *y,
                      int32_t n, float lr, float *grad, model_ws *ws);

/* Class probabilities probs[n, classes] for n <= max_batch rows. */
void model_predict(const model_t *m, const float *params, const float *x, int32_t n,
                   float *probs, model_ws *ws);

/* ---- customer embeddings (issue 15, `fedhpc embed`; docs/embed.md) ---------------------- */
/* Width of the embedding model_embed writes: mlp, the last hidden layer's width; 0 for a type
 * without one (logreg, cnn). */
int32_t model_embed_dim(const model_t *m);
/* Embeddings emb[n, model_embed_dim(m)] of n rows x[n, in] (any n: done in chunks of the ws's
 * max_batch rows). mlp: the last hidden layer's activations (after ReLU). Other types:
 * FH_EINPUT naming the type. */
fh_status model_embed(const model_t *m, const float *params, const float *x, int32_t n, float *emb,
                      model_ws *ws);

/* ---- BLAS kernels (src/model/blas.c) ---------------------------------------------------- */
/* Call first in main(), before MPI_Init. If OpenBLAS did not recognise the CPU and fell back to
 * its generic SSE3 ("Prescott") kernels, re-execute the program (argv as given to main) with
 * OPENBLAS_CORETYPE naming the newest kernel set the CPU supports (cpuid: Cooperlake, SkylakeX,
 * Haswell, Sandybridge). Does nothing when OPENBLAS_CORETYPE is set, FEDHPC_BLAS_SETUP=0, under
 * valgrind, or when OpenBLAS knew the CPU; returns normally if the exec fails. */
void model_blas_setup(char **argv);
/* The kernel set OpenBLAS uses ("SkylakeX", "Prescott", ...). */
const char *model_blas_core(void);

/* ---- metrics ---------------------------------------------------------------------------- */
typedef struct {
    double loss;     /* mean cross-entropy (unweighted)                          */
    double accuracy; /* fraction correct (argmax)                                */
    double f1;       /* macro-F1 over classes (a class with no support and no
                        predictions is left out of the mean)                     */
    double auc;      /* binary: ROC-AUC of p(class 1), ties by average rank;
                        multi-class or one class present: NAN                    */
    /* Binary tasks only (NAN otherwise, or when a class is absent / a score is NaN). The
     * minority class is the class with fewer rows among those evaluated (class 1 on a tie). */
    double f1_minority;     /* F1 of the minority class, argmax decision             */
    double pr_auc;          /* average precision of the minority class:
                               sum over distinct thresholds (descending) of
                               (R_k - R_{k-1}) P_k, ties as one threshold             */
    double thr_best;        /* the threshold t on p(class 1) (decision: class 1 iff
                               p1 >= t; t one of the scores seen) maximising the
                               minority F1 on THESE rows (ties: the smallest t). For a
                               validation split; never applied to the rows it came from */
    double threshold;       /* the threshold applied (metrics_eval_at, model_eval_
                               set_threshold), NAN when none was given                 */
    double f1_minority_thr; /* minority F1 with decision p1 >= threshold              */
    double f1_thr;          /* macro-F1 with decision p1 >= threshold                 */
} metrics_t;

/* Metrics of probabilities probs[n, classes] against labels y[n]. */
fh_status metrics_eval(const float *probs, const int32_t *y, int64_t n, int32_t classes,
                       metrics_t *out);
/* The same, and (binary tasks) the F1 scores at decision threshold thr on p(class 1)
 * (thr NAN: none, as metrics_eval). */
fh_status metrics_eval_at(const float *probs, const int32_t *y, int64_t n, int32_t classes,
                          double thr, metrics_t *out);

/* Evaluate a model on a table in batches of ws's max_batch rows (probs kept only per batch,
 * except for binary tasks where p(class 1) is kept for the AUC). */
fh_status model_evaluate(const model_t *m, const float *params, const float *x, const int32_t *y,
                         int64_t n, model_ws *ws, int32_t max_batch, metrics_t *out);

/* The same evaluation for rows that arrive in pieces (a test split streamed from its file):
 * begin for n rows in all, add pieces in row order, end writes the metrics and frees (free
 * alone abandons). Pieces whose sizes are multiples of max_batch give model_evaluate's numbers
 * bit for bit. */
typedef struct model_eval model_eval;
fh_status model_eval_begin(const model_t *m, int64_t n, int32_t max_batch, model_eval **out);
fh_status model_eval_add(model_eval *e, const float *params, const float *x, const int32_t *y,
                         int64_t k, model_ws *ws);
fh_status model_eval_end(model_eval *e, metrics_t *out);
/* Binary tasks: also report the F1 scores at decision threshold thr (p1 >= thr: class 1), e.g.
 * a threshold chosen on a validation split (src/fl/evaluate.c). Call before model_eval_end. */
void model_eval_set_threshold(model_eval *e, double thr);
void model_eval_free(model_eval *e);

/* DP-SGD: per-example clipped gradients without a loop over rows (logreg and mlp).
 * For each row i of x[n, in] the gradient g_i of its own (class-weighted) loss is scaled by
 * c_i = min(1, clip / ||g_i||); grad_sum[nparams] receives sum_i c_i g_i (a SUM, not a mean).
 * norms (may be NULL) receives ||g_i|| [n]. Returns the summed loss; NAN (zero grad_sum) for
 * n > the ws's max_batch, a label out of range, or an unsupported model type. */
double model_loss_grad_clipped(const model_t *m, const float *params, const float *x,
                               const int32_t *y, int32_t n, double clip, float *grad_sum,
                               double *norms, model_ws *ws);

#endif
