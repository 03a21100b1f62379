/* Dense models on one flat float32 parameter buffer: see include/fedhpc/model.h.
 *
 * Buffer layout (model_create): W_0 [fan_in_0, fan_out_0], b_0 [fan_out_0], W_1, b_1, ...
 * contiguous and row-major. A forward pass computes, for layer l with input A_{l-1}
 * (A_{-1} = x):
 *     Z_l = A_{l-1} W_l + b_l          [n, fan_out_l]   (cblas_sgemm, beta = 1 on a bias copy)
 *     A_l = relu(Z_l)                  hidden layers
 *     output: softmax(Z_L) or, for binary logreg, sigmoid of the single logit.
 * The backward pass turns dLoss/dZ_L into dLoss/dW_l = A_{l-1}^T D_l, dLoss/db_l = colsum(D_l)
 * and D_{l-1} = (D_l W_l^T) * relu'(Z_{l-1}), all products with cblas_sgemm. No allocation
 * happens in model_loss_grad or model_predict: everything lives in the model_ws.
 */
#include "fedhpc/model.h"
#include "fedhpc/gnn.h"
#include "fedhpc/optim.h"
#include "fedhpc/rng.h"
#include "kern.h"
#include "model_cnn.h"
#include "model_attn.h" /* MODEL_ATTENTION: src/model/attn.c */

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- types ------------------------------------------------------------------------------ */

fh_status model_parse_type(const char *s, model_type *out)
{
    if (s && strcmp(s, "logreg") == 0) {
        *out = MODEL_LOGREG;
        return FH_OK;
    }
    if (s && strcmp(s, "mlp") == 0) {
        *out = MODEL_MLP;
        return FH_OK;
    }
    if (s && strcmp(s, "cnn") == 0) {
        *out = MODEL_CNN;
        return FH_OK;
    }
    if (s && strcmp(s, "attention") == 0) { /* attention */
        *out = MODEL_ATTENTION;
        return FH_OK;
    }
    if (s && strcmp(s, "lightgcn") == 0) { /* [model] lightgcn (src/model/gnn.c) */
        *out = MODEL_LIGHTGCN;
        return FH_OK;
    }
    if (s && strcmp(s, "graphsage") == 0) {
        *out = MODEL_GRAPHSAGE;
        return FH_OK;
    }
    return fh_error_set(FH_EINPUT, "model type '%s': expected one of logreg, mlp, cnn, attention, lightgcn, graphsage", s ? s : "(null)");
}

const char *model_type_name(model_type t)
{
    switch (t) {
    case MODEL_LOGREG: return "logreg";
    case MODEL_MLP: return "mlp";
    case MODEL_CNN: return "cnn";
    case MODEL_ATTENTION: return "attention";
    case MODEL_LIGHTGCN: return "lightgcn";
    case MODEL_GRAPHSAGE: return "graphsage";
    }
    return "unknown";
}

/* True when the model has a single sigmoid output (binary logistic regression). */
static int model_is_binary_logit(const model_t *m)
{
    return m->type == MODEL_LOGREG && m->classes == 2;
}

fh_status model_create(model_t *m, model_type type, int32_t in, int32_t classes,
                       const int32_t *hidden, int32_t nhidden)
{
    if (type == MODEL_CNN) return model_create_cnn_default(m, in, classes);
    if (type == MODEL_LIGHTGCN || type == MODEL_GRAPHSAGE) /* src/model/gnn.c */
        return gnn_model_create(m, type, in, classes, hidden, nhidden);
    memset(m, 0, sizeof *m);
    if (type != MODEL_LOGREG && type != MODEL_MLP)
        return fh_error_set(FH_EINPUT, "model type %d: expected logreg or mlp", (int)type);
    if (in < 1) return fh_error_set(FH_EINPUT, "model: %d input features (need at least 1)", in);
    if (classes < 2) return fh_error_set(FH_EINPUT, "model: %d classes (need at least 2)", classes);

    int32_t width[MODEL_MAX_LAYERS]; /* fan_out of each layer */
    int32_t nl = 0;
    if (type == MODEL_MLP) {
        if (nhidden < 1 || nhidden > MODEL_MAX_LAYERS - 1)
            return fh_error_set(FH_EINPUT, "mlp: %d hidden layers (expected 1 to %d)", nhidden,
                                MODEL_MAX_LAYERS - 1);
        if (!hidden) return fh_error_set(FH_EINPUT, "mlp: no hidden layer widths given");
        for (int32_t l = 0; l < nhidden; l++) {
            if (hidden[l] < 1)
                return fh_error_set(FH_EINPUT, "mlp: hidden layer %d has width %d (need at least 1)",
                                    l + 1, hidden[l]);
            width[nl++] = hidden[l];
        }
        width[nl++] = classes;
    } else {
        width[nl++] = classes == 2 ? 1 : classes;
    }

    m->type = type;
    m->in = in;
    m->classes = classes;
    m->nlayers = nl;
    m->class_weight = NULL;
    int64_t off = 0;
    for (int32_t l = 0; l < nl; l++) {
        const int64_t fi = l == 0 ? in : width[l - 1], fo = width[l];
        const int64_t size = fi * fo + fo; /* < 2^63 since fi, fo < 2^31 */
        if (off > INT64_MAX - size) {
            memset(m, 0, sizeof *m);
            return fh_error_set(FH_EINPUT, "model: too many parameters");
        }
        m->fan_in[l] = (int32_t)fi;
        m->fan_out[l] = (int32_t)fo;
        m->w_off[l] = off;
        m->b_off[l] = off + fi * fo;
        off += size;
    }
    m->nparams = off;
    return FH_OK;
}

void model_init_params(const model_t *m, float *params, uint64_t seed)
{
    if (m->type == MODEL_ATTENTION) { /* attention */
        attn_init_params(m, params, seed);
        return;
    }
    if (m->type == MODEL_LIGHTGCN || m->type == MODEL_GRAPHSAGE) { /* src/model/gnn.c */
        gnn_init_items(m, params, seed);
        return;
    }
    memset(params, 0, (size_t)m->nparams * sizeof *params);
    if (m->type == MODEL_LOGREG) return;
    rng_t r = rng_stream(seed, 0, 0, RNG_INIT);
    for (int32_t l = 0; l < m->nlayers; l++) {
        const double fi = m->fan_in[l], fo = m->fan_out[l];
        const int output = l == m->nlayers - 1;
        /* He-uniform for layers feeding a ReLU, Glorot-uniform for the output layer */
        const double limit = output ? sqrt(6.0 / (fi + fo)) : sqrt(6.0 / fi);
        float *w = params + m->w_off[l]; /* [fan_in, fan_out] */
        const int64_t nw = (int64_t)m->fan_in[l] * m->fan_out[l];
        for (int64_t i = 0; i < nw; i++) w[i] = (float)((2.0 * rng_uniform(&r) - 1.0) * limit);
        /* biases stay zero (no draws) */
    }
}

/* ---- workspace -------------------------------------------------------------------------- */

struct model_ws {
    int32_t max_batch;                /* rows the buffers hold                              */
    int32_t nlayers;                  /* shape of the model the ws was made for             */
    int32_t width[MODEL_MAX_LAYERS];  /* fan_out of each layer                              */
    float *act[MODEL_MAX_LAYERS];     /* [max_batch, width[l]]: hidden A_l = relu(Z_l);
                                         for the last layer the logits Z_L                  */
    float *delta[2];                  /* [max_batch, max width] each: D_l, ping-pong        */
    float *buf;                       /* the one allocation the views above point into      */
    cnn_ws *cnn;                      /* MODEL_CNN: the CNN's own scratch (src/model/cnn.c) */
    attn_ws *attn;                    /* MODEL_ATTENTION: its own scratch (src/model/attn.c) */
};

/* *total += a * b floats, unless that would not fit a size_t byte count. */
static int model_ws_add(size_t *total, size_t a, size_t b)
{
    const size_t limit = SIZE_MAX / sizeof(float);
    if (b && a > limit / b) return 0;
    if (a * b > limit - *total) return 0;
    *total += a * b;
    return 1;
}

model_ws *model_ws_create(const model_t *m, int32_t max_batch)
{
    if (!m || max_batch < 1 || m->nlayers < 1 || m->nlayers > MODEL_MAX_LAYERS) return NULL;
    model_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    if (m->type == MODEL_ATTENTION) { /* attention */
        ws->max_batch = max_batch;
        ws->attn = attn_ws_create(m, max_batch);
        if (!ws->attn) {
            free(ws);
            return NULL;
        }
        return ws;
    }
    if (m->type == MODEL_LIGHTGCN || m->type == MODEL_GRAPHSAGE) { /* no dense scratch: src/model/gnn.c has its own */
        ws->max_batch = max_batch;
        return ws;
    }
    if (m->type == MODEL_CNN) {
        ws->max_batch = max_batch;
        ws->cnn = cnn_ws_create(m, max_batch);
        if (!ws->cnn) {
            free(ws);
            return NULL;
        }
        return ws;
    }
    ws->max_batch = max_batch;
    ws->nlayers = m->nlayers;
    const size_t B = (size_t)max_batch;
    size_t total = 0, maxw = 0;
    int ok = 1;
    for (int32_t l = 0; l < m->nlayers; l++) {
        ws->width[l] = m->fan_out[l];
        if ((size_t)m->fan_out[l] > maxw) maxw = (size_t)m->fan_out[l];
        ok = ok && model_ws_add(&total, B, (size_t)m->fan_out[l]);
    }
    ok = ok && model_ws_add(&total, B, maxw) && model_ws_add(&total, B, maxw);
    if (ok) ws->buf = malloc(total * sizeof *ws->buf);
    if (!ws->buf) {
        free(ws);
        return NULL;
    }
    float *p = ws->buf;
    for (int32_t l = 0; l < m->nlayers; l++) {
        ws->act[l] = p;
        p += B * (size_t)ws->width[l];
    }
    ws->delta[0] = p;
    ws->delta[1] = p + B * maxw;
    return ws;
}

void model_ws_free(model_ws *ws)
{
    if (!ws) return;
    cnn_ws_free(ws->cnn);
    attn_ws_free(ws->attn);
    free(ws->buf);
    free(ws);
}

/* ---- forward / backward ----------------------------------------------------------------- */

/* Forward pass of n rows x[n, in]: hidden activations into ws->act[0..L-2], output logits
 * Z_L [n, fan_out_L] into ws->act[L-1]. */
static void model_forward(const model_t *m, const float *params, const float *x, int32_t n,
                          model_ws *ws)
{
    const float *a_in = x; /* [n, fan_in_l] */
    const int small = n <= KERN_MAX_ROWS && kern_available(); /* minibatches: src/model/kern.c */
    for (int32_t l = 0; l < m->nlayers; l++) {
        const int32_t fi = m->fan_in[l], fo = m->fan_out[l];
        const float *w = params + m->w_off[l]; /* [fi, fo] */
        const float *b = params + m->b_off[l]; /* [fo]     */
        float *z = ws->act[l];                 /* [n, fo]  */
        if (small) {
            kern_dense_fwd(n, fi, fo, a_in, w, b, z, l < m->nlayers - 1);
            a_in = z;
            continue;
        }
        for (int32_t i = 0; i < n; i++) memcpy(z + (size_t)i * fo, b, (size_t)fo * sizeof *z);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, fo, fi, 1.0f, a_in, fi, w, fo,
                    1.0f, z, fo);
        if (l < m->nlayers - 1) kern_relu(z, (size_t)n * (size_t)fo);
        a_in = z;
    }
}

/* Stable sigmoid. */
static inline float model_sigmoid(float z)
{
    if (z >= 0.0f) return 1.0f / (1.0f + expf(-z));
    const float e = expf(z);
    return e / (1.0f + e);
}

/* Focal loss (Lin et al. 2017; credit study, docs/credit.md): FL = -w_y (1 - p_t)^g log p_t with
 * p_t the probability of the true class and w_y the class weight. With q = 1 - p_t,
 * dFL/dp_t = w (g q^(g-1) log p_t - q^g / p_t); binary logit: dp_t/dz = s p_t q (s = +1 for
 * y = 1, -1 for y = 0), so dFL/dz = s w (g q^g p_t log p_t - q^(g+1)); softmax:
 * dp_t/dz_k = p_t (1[k = y] - p_k), so dFL/dz_k = w (g q^(g-1) p_t log p_t - q^g) (1[k = y] - p_k).
 * g = 0 gives the cross-entropy gradients. Computed in double; log p_t from the logits. */
static double model_focal_loss(const model_t *m, const float *z, const int32_t *y, int32_t n, float *d)
{
    const float *cw = m->class_weight;
    const double g = m->focal_gamma, inv_n = 1.0 / (double)n;
    double loss = 0.0;
    if (model_is_binary_logit(m)) {
        for (int32_t i = 0; i < n; i++) {
            const double zi = z[i], s = y[i] ? 1.0 : -1.0, w = cw ? cw[y[i]] : 1.0;
            const double u = s * zi; /* p_t = sigmoid(u), log p_t = -softplus(-u) */
            const double logpt = -((u < 0 ? -u : 0.0) + log1p(exp(-fabs(u))));
            const double pt = exp(logpt), q = u > 0 ? exp(-u) * pt : 1.0 / (1.0 + exp(u)); /* q = sigmoid(-u) */
            const double qg = pow(q, g);
            loss += -w * qg * logpt;
            d[i] = (float)(s * w * inv_n * (g * qg * pt * logpt - qg * q));
        }
        return loss;
    }
    const int32_t c = m->classes;
    for (int32_t i = 0; i < n; i++) {
        const float *zi = z + (size_t)i * c; /* [c] */
        float *di = d + (size_t)i * c;       /* [c] */
        double mx = zi[0], s = 0.0;
        for (int32_t k = 1; k < c; k++) mx = zi[k] > mx ? zi[k] : mx;
        for (int32_t k = 0; k < c; k++) s += exp(zi[k] - mx);
        const int32_t yi = y[i];
        const double w = cw ? cw[yi] : 1.0, logpt = (zi[yi] - mx) - log(s), pt = exp(logpt), q = 1.0 - pt;
        const double qg = pow(q, g), qg1 = q > 0 ? qg / q : 0.0; /* q^(g-1) * q^... guarded at q = 0 */
        loss += -w * qg * logpt;
        const double a = w * inv_n * (g * qg1 * pt * logpt - qg); /* times (1[k = y] - p_k) */
        for (int32_t k = 0; k < c; k++) {
            const double pk = exp(zi[k] - mx) / s;
            di[k] = (float)(a * ((k == yi ? 1.0 : 0.0) - pk));
        }
    }
    return loss;
}

/* Loss of the output logits Z [n, out] and dLoss/dZ of the mean loss into d [n, out].
 * Returns the sum over rows of the class-weighted cross-entropy. */
static double model_output_loss(const model_t *m, const float *z, const int32_t *y, int32_t n,
                                float *d)
{
    const float *cw = m->class_weight;
    const float inv_n = 1.0f / (float)n;
    double loss = 0.0;
    if (m->focal_gamma > 0.0f) return model_focal_loss(m, z, y, n, d);
    if (model_is_binary_logit(m)) {
        /* CE = softplus(z) - y z = max(z, 0) + log1p(exp(-|z|)) - y z; dCE/dz = sigmoid(z) - y */
        for (int32_t i = 0; i < n; i++) {
            const float zi = z[i], yi = (float)y[i];
            const float wi = cw ? cw[y[i]] : 1.0f;
            const float sp = (zi > 0.0f ? zi : 0.0f) + log1pf(expf(-fabsf(zi)));
            loss += (double)(wi * (sp - yi * zi));
            d[i] = wi * inv_n * (model_sigmoid(zi) - yi);
        }
        return loss;
    }
    const int32_t c = m->classes;
    for (int32_t i = 0; i < n; i++) {
        const float *zi = z + (size_t)i * c; /* [c] */
        float *di = d + (size_t)i * c;       /* [c] */
        float mx = zi[0];
        for (int32_t k = 1; k < c; k++) mx = zi[k] > mx ? zi[k] : mx;
        float s = 0.0f;
        for (int32_t k = 0; k < c; k++) {
            di[k] = expf(zi[k] - mx);
            s += di[k];
        }
        const int32_t yi = y[i];
        const float wi = cw ? cw[yi] : 1.0f;
        /* -log softmax(z)_y = log(sum exp(z - max)) - (z_y - max) */
        loss += (double)(wi * (logf(s) - (zi[yi] - mx)));
        const float scale = wi * inv_n / s;
        for (int32_t k = 0; k < c; k++) di[k] *= scale;
        di[yi] -= wi * inv_n;
    }
    return loss;
}

/* D_{l-1} = (D_l W_l^T) * relu'(Z_{l-1}) into dp [n, fan_in_l] (relu'(Z) = [A > 0]). */
static void model_back_delta(const model_t *m, const float *params, int32_t l, int32_t n,
                             const float *d, float *dp, const model_ws *ws)
{
    const int32_t fi = m->fan_in[l], fo = m->fan_out[l];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, fi, fo, 1.0f, d, fo,
                params + m->w_off[l], fo, 0.0f, dp, fi);
    kern_relu_mask(dp, ws->act[l - 1], (size_t)n * (size_t)fi); /* act[l - 1]: [n, fi] */
}

/* Every label in [0, classes) (loaders check this, so a failure is a caller's bug). */
static int model_labels_ok(const model_t *m, const int32_t *y, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= m->classes) return 0;
    return 1;
}

/* Forward pass, then the output loss: returns the loss sum and leaves D_L in ws->delta[0]. */
static double model_forward_loss(const model_t *m, const float *params, const float *x,
                                 const int32_t *y, int32_t n, model_ws *ws)
{
    model_forward(m, params, x, n, ws);
    return model_output_loss(m, ws->act[m->nlayers - 1], y, n, ws->delta[0]);
}

/* n == 0 gives loss 0 and a zero gradient. A contract violation (n > the ws's max_batch, or a
 * label outside [0, classes)) gives NAN and a zero gradient, so callers' NaN checks catch it. */
double model_loss_grad(const model_t *m, const float *params, const float *x, const int32_t *y,
                       int32_t n, float *grad, model_ws *ws)
{
    if (n <= 0 || n > ws->max_batch) {
        memset(grad, 0, (size_t)m->nparams * sizeof *grad);
        return n == 0 ? 0.0 : NAN; /* NAN: contract violated (more rows than the ws holds) */
    }
    if (!model_labels_ok(m, y, n)) {
        memset(grad, 0, (size_t)m->nparams * sizeof *grad);
        return NAN; /* a label outside [0, classes): loaders check this, so a bug */
    }
    if (m->type == MODEL_CNN) return cnn_loss_grad(m, params, x, y, n, grad, ws->cnn);
    if (m->type == MODEL_ATTENTION) return attn_loss_grad(m, params, x, y, n, grad, ws->attn);

    const int32_t L = m->nlayers;
    int cur = 0;
    float *d = ws->delta[cur]; /* D_l [n, fan_out_l] */
    const double loss = model_forward_loss(m, params, x, y, n, ws);

    for (int32_t l = L - 1; l >= 0; l--) {
        const int32_t fi = m->fan_in[l], fo = m->fan_out[l];
        const float *a_in = l == 0 ? x : ws->act[l - 1]; /* [n, fi] */
        float *gw = grad + m->w_off[l];                  /* [fi, fo] */
        float *gb = grad + m->b_off[l];                  /* [fo]     */
        /* dW_l = A_{l-1}^T D_l */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, fi, fo, n, 1.0f, a_in, fi, d, fo,
                    0.0f, gw, fo);
        /* db_l = column sums of D_l */
        memcpy(gb, d, (size_t)fo * sizeof *gb);
        for (int32_t i = 1; i < n; i++) {
            const float *di = d + (size_t)i * fo;
            for (int32_t k = 0; k < fo; k++) gb[k] += di[k];
        }
        if (l == 0) break;
        float *dp = ws->delta[1 - cur]; /* [n, fi] */
        model_back_delta(m, params, l, n, d, dp, ws);
        cur = 1 - cur;
        d = dp;
    }
    return loss;
}

double model_sgd_step(const model_t *m, float *params, const float *x, const int32_t *y,
                      int32_t n, float lr, float *grad, model_ws *ws)
{
    if (m->type == MODEL_CNN && n >= 1 && n <= ws->max_batch) { /* src/model/cnn.c */
        if (!model_labels_ok(m, y, n)) return NAN; /* as model_loss_grad: params untouched */
        return cnn_sgd_step(m, params, x, y, n, lr, grad, ws->cnn);
    }
    if (m->type == MODEL_CNN || m->type == MODEL_ATTENTION || n < 1 || n > KERN_MAX_ROWS || n > ws->max_batch || !kern_available()) {
        const double loss = model_loss_grad(m, params, x, y, n, grad, ws);
        optim_sgd(params, grad, lr, m->nparams);
        return loss;
    }
    if (!model_labels_ok(m, y, n)) return NAN; /* as model_loss_grad: params untouched */
    int cur = 0;
    float *d = ws->delta[cur]; /* D_l [n, fan_out_l] */
    const double loss = model_forward_loss(m, params, x, y, n, ws);
    for (int32_t l = m->nlayers - 1; l >= 0; l--) {
        float *dp = ws->delta[1 - cur];
        if (l > 0) model_back_delta(m, params, l, n, d, dp, ws); /* with W_l before its step */
        kern_dense_sgd(n, m->fan_in[l], m->fan_out[l], l == 0 ? x : ws->act[l - 1], d, lr,
                       params + m->w_off[l], params + m->b_off[l]);
        cur = 1 - cur;
        d = dp;
    }
    return loss;
}

/* Probabilities of the logits z [n, out] into probs [n, classes]. */
static void model_output_probs(const model_t *m, const float *z, int32_t n, float *probs)
{
    if (model_is_binary_logit(m)) {
        for (int32_t i = 0; i < n; i++) {
            const float p1 = model_sigmoid(z[i]);
            probs[2 * (size_t)i] = 1.0f - p1;
            probs[2 * (size_t)i + 1] = p1;
        }
        return;
    }
    const int32_t c = m->classes;
    for (int32_t i = 0; i < n; i++) {
        const float *zi = z + (size_t)i * c; /* [c] */
        float *pi = probs + (size_t)i * c;   /* [c] */
        float mx = zi[0];
        for (int32_t k = 1; k < c; k++) mx = zi[k] > mx ? zi[k] : mx;
        float s = 0.0f;
        for (int32_t k = 0; k < c; k++) {
            pi[k] = expf(zi[k] - mx);
            s += pi[k];
        }
        const float inv = 1.0f / s;
        for (int32_t k = 0; k < c; k++) pi[k] *= inv;
    }
}

void model_predict(const model_t *m, const float *params, const float *x, int32_t n,
                   float *probs, model_ws *ws)
{
    /* More rows than the ws holds are done in chunks of max_batch (still no allocation). */
    if (m->type == MODEL_CNN) {
        cnn_predict(m, params, x, n, probs, ws->cnn);
        return;
    }
    if (m->type == MODEL_ATTENTION) {
        attn_predict(m, params, x, n, probs, ws->attn);
        return;
    }
    for (int64_t r = 0; r < n; r += ws->max_batch) {
        const int32_t k = (int32_t)(n - r < ws->max_batch ? n - r : ws->max_batch);
        model_forward(m, params, x + (size_t)r * (size_t)m->in, k, ws);
        model_output_probs(m, ws->act[m->nlayers - 1], k, probs + (size_t)r * (size_t)m->classes);
    }
}

/* ---- per-example clipped gradients (DP-SGD) -------------------------------------------- */
/* For a dense layer the gradient of row i is a_i d_i^T (weights) and d_i (bias), so its squared
 * norm is (||a_i||^2 + 1) ||d_i||^2. Pass 1 propagates the per-row deltas D_l back (no weight
 * gradients) and sums these norms over layers; pass 2 recomputes the output delta, scales row i
 * by c_i = min(1, C / norm_i) — linearity carries the scale through every layer — and forms the
 * clipped sums A^T diag(c) D_l with cblas_sgemm exactly as model_loss_grad does. */
double model_loss_grad_clipped(const model_t *m, const float *params, const float *x,
                               const int32_t *y, int32_t n, double clip, float *grad_sum,
                               double *norms, model_ws *ws)
{
    if (m->type == MODEL_ATTENTION && n >= 1 && model_labels_ok(m, y, n)) /* one row at a time */
        return attn_loss_grad_clipped(m, params, x, y, n, clip, grad_sum, norms, ws->attn);
    if (n <= 0 || n > ws->max_batch || (m->type != MODEL_LOGREG && m->type != MODEL_MLP)) {
        memset(grad_sum, 0, (size_t)m->nparams * sizeof *grad_sum);
        return n == 0 ? 0.0 : NAN;
    }
    if (!model_labels_ok(m, y, n)) {
        memset(grad_sum, 0, (size_t)m->nparams * sizeof *grad_sum);
        return NAN;
    }
    double *nrm = malloc((size_t)n * sizeof *nrm);
    if (!nrm) {
        memset(grad_sum, 0, (size_t)m->nparams * sizeof *grad_sum);
        return NAN;
    }
    model_forward(m, params, x, n, ws);
    const int32_t L = m->nlayers;
    const float fn = (float)n;
    for (int32_t i = 0; i < n; i++) nrm[i] = 0;
    for (int pass = 0; pass < 2; pass++) {
        int cur = 0;
        float *d = ws->delta[cur];
        /* per-row loss gradients: the mean-loss delta times n */
        const double loss = model_output_loss(m, ws->act[L - 1], y, n, d);
        const int32_t oL = m->fan_out[L - 1];
        for (int32_t i = 0; i < n; i++) {
            float c = fn;
            if (pass == 1) {
                const double nr = sqrt(nrm[i]);
                if (norms) norms[i] = nr;
                if (nr > clip) c = (float)(fn * (clip / nr));
            }
            float *di = d + (size_t)i * oL;
            for (int32_t k = 0; k < oL; k++) di[k] *= c;
        }
        for (int32_t l = L - 1; l >= 0; l--) {
            const int32_t fi = m->fan_in[l], fo = m->fan_out[l];
            const float *a_in = l == 0 ? x : ws->act[l - 1]; /* [n, fi] */
            if (pass == 0) {
                for (int32_t i = 0; i < n; i++) {
                    double sa = 1.0, sd = 0.0; /* 1: the bias input */
                    const float *ai = a_in + (size_t)i * fi, *di = d + (size_t)i * fo;
                    for (int32_t k = 0; k < fi; k++) sa += (double)ai[k] * ai[k];
                    for (int32_t k = 0; k < fo; k++) sd += (double)di[k] * di[k];
                    nrm[i] += sa * sd;
                }
            } else {
                float *gw = grad_sum + m->w_off[l], *gb = grad_sum + m->b_off[l];
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, fi, fo, n, 1.0f, a_in, fi, d,
                            fo, 0.0f, gw, fo);
                memcpy(gb, d, (size_t)fo * sizeof *gb);
                for (int32_t i = 1; i < n; i++) {
                    const float *di = d + (size_t)i * fo;
                    for (int32_t k = 0; k < fo; k++) gb[k] += di[k];
                }
            }
            if (l == 0) break;
            float *dp = ws->delta[1 - cur];
            model_back_delta(m, params, l, n, d, dp, ws);
            cur = 1 - cur;
            d = dp;
        }
        if (pass == 1) {
            free(nrm);
            return loss;
        }
    }
    free(nrm);
    return NAN; /* not reached */
}

/* ---- customer embeddings (issue 15: `fedhpc embed`, docs/embed.md) ----------------------- */
int32_t model_embed_dim(const model_t *m)
{
    switch (m->type) {
    case MODEL_MLP: return m->nlayers >= 2 ? m->fan_out[m->nlayers - 2] : 0;
    case MODEL_ATTENTION: return m->attn_dim; /* the pooled customer embedding */
    default: return 0;
    }
}

fh_status model_embed(const model_t *m, const float *params, const float *x, int32_t n, float *emb,
                      model_ws *ws)
{
    switch (m->type) {
    case MODEL_MLP: {
        if (m->nlayers < 2) return fh_error_set(FH_EINPUT, "[model] type = mlp without a hidden layer has no embedding");
        const int32_t L = m->nlayers, D = m->fan_out[L - 2];
        for (int64_t r = 0; r < n; r += ws->max_batch) {
            const int32_t k = (int32_t)(n - r < ws->max_batch ? n - r : ws->max_batch);
            model_forward(m, params, x + (size_t)r * (size_t)m->in, k, ws);
            memcpy(emb + (size_t)r * (size_t)D, ws->act[L - 2], (size_t)k * (size_t)D * sizeof *emb);
        }
        return FH_OK;
    }
    case MODEL_ATTENTION: return attn_embed(m, params, x, n, emb, ws);
    default:
        return fh_error_set(FH_EINPUT,
                            "[model] type = %s has no customer embedding: expected mlp (the last hidden layer) "
                            "or attention", model_type_name(m->type));
    }
}

fh_status attn_embed(const model_t *m, const float *params, const float *x, int32_t n, float *emb,
                     model_ws *ws)
{
    if (!m || m->type != MODEL_ATTENTION || !ws || !ws->attn)
        return fh_error_set(FH_EINPUT, "embedding: the model is %s, not attention", m ? model_type_name(m->type) : "(none)");
    return attn_embed_ws(m, params, x, n, emb, ws->attn);
}
