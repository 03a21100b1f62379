/* fedhpc/leakage.h — gradient-leakage attacks on one client's update (issue 13), and the
 * second-order derivatives they need (docs/leakage.md).
 *
 * The attacker is the aggregator (or an eavesdropper) holding one client's update for one round.
 *  - leakage_net_*: the engine's logreg / MLP / CNN (same model_t, same parameters) evaluated in double
 *    precision, with the gradient g(x) = d loss / d params of a batch AND the gradient of
 *    <v, g(x)> with respect to the inputs x (and soft labels): a mixed second derivative, the
 *    "double backward" (a tangent pass in parameter direction v, then a reverse pass over the
 *    primal and the tangent; src/model/dgrad.c). ReLU's second derivative is zero almost
 *    everywhere, so the input gradient flows through the first-order terms. No finite
 *    differences at run time (tests/unit/test_leakage.c checks against them).
 *  - leakage_match_*: the gradient-matching loss (Euclidean, Zhu et al. 2019; cosine,
 *    Geiping et al. 2020) and its gradient with respect to the dummy gradient.
 *  - leakage_analytic / leakage_labels: the closed-form attacks (Phong et al. 2018: a fully
 *    connected first layer with bias gives x = dW[:, j] / db[j]; iDLG, Zhao et al. 2020: the
 *    label from the signs of the last layer's bias gradient).
 *  - leakage_dlg: optimisation-based reconstruction (DLG / iDLG / Geiping) with Adam or L-BFGS.
 *  - leakage_mse / psnr / ssim, and leakage_png_write (a grayscale PNG through zlib).
 * No MPI, no HDF5.
 */
#ifndef FEDHPC_LEAKAGE_H
#define FEDHPC_LEAKAGE_H

#include "fedhpc/common.h"
#include "fedhpc/model.h"

#include <stdint.h>

/* ---- double backward (src/model/dgrad.c) ------------------------------------------------ */
typedef struct leakage_net leakage_net;

/* A net for batches of up to max_batch rows of model m (MODEL_LOGREG, MODEL_MLP, or MODEL_CNN:
 * its double backward is src/model/dgrad_cnn.c; others give NULL with FH_EINPUT set). params[m->nparams] are copied (to double). NULL on failure. */
leakage_net *leakage_net_create(const model_t *m, const float *params, int32_t max_batch);
void leakage_net_free(leakage_net *net);

/* Forward + backward on n rows x[n, in] (double): the loss is the MEAN cross-entropy, as in
 * model_loss_grad. Targets: hard labels y[n] (class weights of the model apply), or, when
 * ysoft is not NULL, soft targets ysoft[n, classes] (rows summing to 1; class weights ignored;
 * binary logreg reads column 1). Writes grad[nparams] = d mean loss / d params and returns the
 * summed loss. The primal pass is kept in net for leakage_net_dgrad. NAN on n > max_batch or a
 * label out of range. */
double leakage_net_grad(leakage_net *net, const double *x, const int32_t *y, const double *ysoft,
                        int32_t n, double *grad);

/* After leakage_net_grad (same x, targets, n): xbar[n, in] = d <v, grad(x)> / d x and, when
 * ybar is not NULL and soft targets were given, ybar[n, classes] = d <v, grad> / d ysoft.
 * v[nparams]. */
void leakage_net_dgrad(leakage_net *net, const double *v, double *xbar, double *ybar);

/* ---- gradient matching ------------------------------------------------------------------ */
enum { LEAKAGE_LOSS_L2 = 0, LEAKAGE_LOSS_COSINE = 1 };

/* Matching loss between the dummy gradient g[P] and the observed one t[P], over the entries
 * with mask[j] != 0 (mask NULL: all). L2: sum (g - t)^2; cosine: 1 - <g, t> / (|g| |t|).
 * Writes dloss/dg into v[P] (zero outside the mask) and returns the loss. */
double leakage_match(int kind, const double *g, const double *t, const uint8_t *mask, int64_t P,
                     double *v);

/* ---- closed-form attacks (src/attack/leakage.c) ---------------------------------------- */
/* Candidate inputs from the first dense layer: for every unit j of layer 0 with
 * |db[j]| > tol * max_k |db[k]|, cand[c, :] = dW[:, j] / db[j] (in order of decreasing |db[j]|;
 * for a batch of one with a bias, each candidate is the input exactly). Writes at most max_cand
 * rows and returns their number. g: the observed gradient (or update: the ratio is scale- and
 * sign-free). */
int32_t leakage_analytic(const model_t *m, const double *g, double tol, int32_t max_cand,
                         double *cand);

/* The least-squares input of the same layer, x = dW db / |db|^2 (every unit at once: for a batch
 * of one dW = x db^T, so this is x exactly without noise, and the best linear fit of the
 * rank-one model with noise on the update; for a batch, a db-weighted mixture of its rows).
 * mask (NULL: all entries): only the entries sent (top-k) enter each pixel's fit. */
void leakage_analytic_ls(const model_t *m, const double *g, const uint8_t *mask, double *x);

/* Labels of a batch of n from the last layer's bias gradient (iDLG for n = 1: the class whose
 * entry is negative; for n > 1 the counts c_k ~ n/C - n db_k, rounded so they sum to n; the
 * binary logit: the sign). g: the observed gradient (sign as a gradient, not an update).
 * labels[n] sorted by class. */
void leakage_labels(const model_t *m, const double *g, int32_t n, int32_t *labels);

/* ---- optimisation attack --------------------------------------------------------------- */
typedef struct {
    int32_t iters;       /* Adam iterations                                       */
    double step;         /* Adam step size                                        */
    int loss;            /* LEAKAGE_LOSS_*                                        */
    double tv;           /* total-variation weight (images only; 0 off)           */
    int32_t side;        /* > 0: inputs are side x side images                    */
    double lo, hi;       /* box for the inputs (lo >= hi: unconstrained)           */
    int joint_labels;    /* 1: optimise soft labels too (DLG); 0: use labels[]     */
    int lbfgs;           /* 1: projected L-BFGS (iters = loss evaluations; fixed
                            labels only) instead of Adam                          */
    uint64_t seed;       /* dummy initialisation: rng_stream(seed, id, 0, RNG_LEAKAGE) */
    uint64_t id;
} leakage_dlg_opts;

/* Reconstruct n rows from the observed gradient t[P] (mask as leakage_match) of model m at
 * params: dummy x[n, in] (initialised uniform in the box, or N(0,1) without one) optimised so
 * that its gradient matches t. labels[n]: the targets (iDLG), also the output of the joint
 * mode (argmax of the soft labels). x[n, in] out. *final_loss: the last matching loss. */
fh_status leakage_dlg(const model_t *m, const float *params, const double *t, const uint8_t *mask,
                      int32_t n, const leakage_dlg_opts *o, int32_t *labels, double *x,
                      double *final_loss);

/* ---- metrics and pictures --------------------------------------------------------------- */
double leakage_mse(const double *a, const double *b, int64_t d);
/* PSNR in dB for a pixel range of 1: 10 log10(1 / mse) (mse 0: 99 dB, as a cap). */
double leakage_psnr(double mse);
/* SSIM (Wang et al. 2004) of two side x side images in [0, 1]: mean over 7 x 7 windows
 * (uniform weights, C1 = (0.01)^2, C2 = (0.03)^2). */
double leakage_ssim(const double *a, const double *b, int32_t side);

/* Write an 8-bit grayscale PNG of w x h pixels pix[h * w] (values clamped to [0, 1]) with
 * zlib's compress and crc32. FH_EIO naming the file on failure. */
fh_status leakage_png_write(const char *path, int32_t w, int32_t h, const double *pix);

#endif
