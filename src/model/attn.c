/* Attention over item sets on the flat float32 parameter buffer (MODEL_ATTENTION); the model
 * is described in include/fedhpc/model.h (model_create_attn).
 *
 * Shapes for a batch of n rows of L positions, d = attn_dim, h heads of dh = d / h columns:
 *   X, Q, K, V, O, H  [n*L, d]   (all positions of all rows stacked: the projections are one
 *                                  GEMM each over n*L rows)
 *   A                 [n, h, L, L] attention probabilities (rows of padded queries are 0)
 *   g                 [n*L]        pooling gates (0 at padding)
 *   Z                 [n, d]       customer embeddings; logits [n, classes]
 * Backward, with D the mean-loss gradient of the logits:
 *   dWc = Z^T D, dbc = colsum D, dZ = D Wc^T
 *   dH_i = g_i dZ_i^T (rank-1 GEMM per row), dg_i = H_i dZ_i, ds = dg * g (1 - g),
 *   du = H^T ds, dH += ds u^T
 *   dO = dH, dX = dH; per row and head: dA = dO_h V_h^T, dV_h = A^T dO_h,
 *   dS = A * (dA - rowsum(A * dA)), dQ_h = dS K_h / sqrt(dh), dK_h = dS^T Q_h / sqrt(dh)
 *   dWq = X^T dQ (likewise K, V), dX += dQ Wq^T + dK Wk^T + dV Wv^T
 *   dE[item of position p] += dX_p (a scatter over the valid positions).
 * No allocation in loss_grad / predict / embed: everything lives in the attn_ws.
 */
#include "model_attn.h"
#include "fedhpc/rng.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { P_E = 0, P_WQ, P_WK, P_WV, P_U, P_WC };

struct attn_ws {
    int32_t max_batch, L, d, h, C;
    int32_t *item;            /* [B*L] item index of each position, -1 padding */
    float *X, *Q, *K, *V, *O, *H; /* [B*L, d] */
    float *A;                 /* [B, h, L, L] */
    float *g;                 /* [B*L] gates */
    float *Z;                 /* [B, d] */
    float *logit;             /* [B, C] */
    /* backward */
    float *dlog;              /* [B, C] */
    float *dZ;                /* [B, d] */
    float *dH, *dQ, *dK, *dV; /* [B*L, d] */
    float *ds;                /* [B*L] */
    float *dA;                /* [L, L] */
    float *buf;
};

int32_t attn_ws_max_batch(const attn_ws *w) { return w->max_batch; }

attn_ws *attn_ws_create(const model_t *m, int32_t max_batch)
{
    if (!m || m->type != MODEL_ATTENTION || max_batch < 1) return NULL;
    attn_ws *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->max_batch = max_batch;
    w->L = m->in;
    w->d = m->attn_dim;
    w->h = m->attn_heads;
    w->C = m->classes;
    const size_t B = (size_t)max_batch, L = (size_t)w->L, d = (size_t)w->d, h = (size_t)w->h,
                 C = (size_t)w->C;
    const size_t BLd = B * L * d;
    const size_t total = 10 * BLd + B * h * L * L + 2 * B * L + 2 * B * d + 2 * B * C + L * L;
    w->buf = malloc(total * sizeof *w->buf);
    w->item = malloc(B * L * sizeof *w->item);
    if (!w->buf || !w->item) {
        attn_ws_free(w);
        return NULL;
    }
    float *p = w->buf;
    w->X = p; p += BLd;
    w->Q = p; p += BLd;
    w->K = p; p += BLd;
    w->V = p; p += BLd;
    w->O = p; p += BLd;
    w->H = p; p += BLd;
    w->dH = p; p += BLd;
    w->dQ = p; p += BLd;
    w->dK = p; p += BLd;
    w->dV = p; p += BLd;
    w->A = p; p += B * h * L * L;
    w->g = p; p += B * L;
    w->ds = p; p += B * L;
    w->Z = p; p += B * d;
    w->dZ = p; p += B * d;
    w->logit = p; p += B * C;
    w->dlog = p; p += B * C;
    w->dA = p;
    return w;
}

void attn_ws_free(attn_ws *w)
{
    if (!w) return;
    free(w->buf);
    free(w->item);
    free(w);
}

fh_status model_create_attn(model_t *m, int32_t L, int32_t items, int32_t dim, int32_t heads,
                            int32_t classes)
{
    memset(m, 0, sizeof *m);
    if (L < 1) return fh_error_set(FH_EINPUT, "attention model: item sets of length %d (need at least 1)", L);
    if (items < 1)
        return fh_error_set(FH_EINPUT, "attention model: %d items; [model] type = attention needs an item-set data "
                            "file (fedhpc prepare supermarket|ticdata)", items);
    if (classes < 2) return fh_error_set(FH_EINPUT, "attention model: %d classes (need at least 2)", classes);
    if (dim < 1 || dim > 4096) return fh_error_set(FH_EINPUT, "[model] attn_dim = %d: expected 1 to 4096", dim);
    if (heads < 1 || dim % heads != 0)
        return fh_error_set(FH_EINPUT, "[model] attn_heads = %d: expected a divisor of [model] attn_dim = %d", heads, dim);
    if ((int64_t)L * L > (1 << 24)) return fh_error_set(FH_EINPUT, "attention model: item sets of length %d: too long", L);
    m->type = MODEL_ATTENTION;
    m->in = L;
    m->classes = classes;
    m->nlayers = 1;
    m->attn_items = items;
    m->attn_dim = dim;
    m->attn_heads = heads;
    const int64_t d = dim;
    int64_t off = 0;
    m->w_off[P_E] = off; off += (int64_t)items * d;
    m->w_off[P_WQ] = off; off += d * d;
    m->w_off[P_WK] = off; off += d * d;
    m->w_off[P_WV] = off; off += d * d;
    m->w_off[P_U] = off; off += d;
    m->w_off[P_WC] = off; off += d * classes;
    m->b_off[P_WC] = off; off += classes;
    m->fan_in[0] = dim;
    m->fan_out[0] = classes;
    m->nparams = off;
    return FH_OK;
}

void attn_init_params(const model_t *m, float *params, uint64_t seed)
{
    memset(params, 0, (size_t)m->nparams * sizeof *params);
    rng_t r = rng_stream(seed, 0, 0, RNG_INIT);
    const int64_t d = m->attn_dim;
    const double le = sqrt(3.0 / (double)d);            /* embeddings: E[x^2] = 1/d  */
    const double lw = sqrt(6.0 / (2.0 * (double)d));     /* Glorot for the [d, d]s    */
    const double lc = sqrt(6.0 / (double)(d + m->classes));
    for (int64_t i = 0; i < (int64_t)m->attn_items * d; i++)
        params[m->w_off[P_E] + i] = (float)((2.0 * rng_uniform(&r) - 1.0) * le);
    for (int k = P_WQ; k <= P_WV; k++)
        for (int64_t i = 0; i < d * d; i++) params[m->w_off[k] + i] = (float)((2.0 * rng_uniform(&r) - 1.0) * lw);
    /* u = 0: every gate starts at 1/2 */
    for (int64_t i = 0; i < d * m->classes; i++)
        params[m->w_off[P_WC] + i] = (float)((2.0 * rng_uniform(&r) - 1.0) * lc);
}

/* Item indices of n rows into w->item; 0 if some value is neither -1 nor an item index. */
static int attn_items_of(const model_t *m, const float *x, int32_t n, attn_ws *w)
{
    const size_t N = (size_t)n * (size_t)w->L;
    for (size_t p = 0; p < N; p++) {
        const float v = x[p];
        if (v == -1.0f) {
            w->item[p] = -1;
            continue;
        }
        if (!(v >= 0.0f && v < (float)m->attn_items) || v != floorf(v)) return 0;
        w->item[p] = (int32_t)v;
    }
    return 1;
}

static inline float attn_sigmoid(float z)
{
    if (z >= 0.0f) return 1.0f / (1.0f + expf(-z));
    const float e = expf(z);
    return e / (1.0f + e);
}

/* Forward pass of n rows (items already in w->item): fills X .. Z and the logits. */
static void attn_forward(const model_t *m, const float *params, int32_t n, attn_ws *w)
{
    const int32_t L = w->L, d = w->d, h = w->h, dh = d / h, C = w->C, NL = n * L;
    const float scale = 1.0f / sqrtf((float)dh);
    const float *E = params + m->w_off[P_E];
    /* gather the embeddings (padding: zero rows) */
    for (int32_t p = 0; p < NL; p++) {
        float *xp = w->X + (size_t)p * d;
        if (w->item[p] < 0) memset(xp, 0, (size_t)d * sizeof *xp);
        else memcpy(xp, E + (size_t)w->item[p] * d, (size_t)d * sizeof *xp);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, NL, d, d, 1.0f, w->X, d, params + m->w_off[P_WQ], d,
                0.0f, w->Q, d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, NL, d, d, 1.0f, w->X, d, params + m->w_off[P_WK], d,
                0.0f, w->K, d);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, NL, d, d, 1.0f, w->X, d, params + m->w_off[P_WV], d,
                0.0f, w->V, d);
    for (int32_t i = 0; i < n; i++) {
        const int32_t *it = w->item + (size_t)i * L;
        const size_t ro = (size_t)i * L * d;
        for (int32_t hh = 0; hh < h; hh++) {
            float *A = w->A + ((size_t)i * h + hh) * (size_t)L * L;
            const size_t co = ro + (size_t)hh * dh;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, dh, scale, w->Q + co, d, w->K + co, d, 0.0f, A, L);
            for (int32_t a = 0; a < L; a++) {
                float *Ar = A + (size_t)a * L;
                if (it[a] < 0) { /* padded query: no output */
                    memset(Ar, 0, (size_t)L * sizeof *Ar);
                    continue;
                }
                float mx = -INFINITY;
                for (int32_t b = 0; b < L; b++)
                    if (it[b] >= 0 && Ar[b] > mx) mx = Ar[b];
                float s = 0.0f;
                for (int32_t b = 0; b < L; b++) {
                    Ar[b] = it[b] >= 0 ? expf(Ar[b] - mx) : 0.0f;
                    s += Ar[b];
                }
                const float inv = 1.0f / s; /* s >= 1: the query itself is a valid key */
                for (int32_t b = 0; b < L; b++) Ar[b] *= inv;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, dh, L, 1.0f, A, L, w->V + co, d, 0.0f,
                        w->O + co, d);
        }
    }
    /* H = X + O (padded positions: 0 + 0) */
    const size_t NLd = (size_t)NL * d;
    for (size_t k = 0; k < NLd; k++) w->H[k] = w->X[k] + w->O[k];
    /* gates g = sigmoid(H u), 0 at padding */
    cblas_sgemv(CblasRowMajor, CblasNoTrans, NL, d, 1.0f, w->H, d, params + m->w_off[P_U], 1, 0.0f, w->g, 1);
    for (int32_t p = 0; p < NL; p++) w->g[p] = w->item[p] >= 0 ? attn_sigmoid(w->g[p]) : 0.0f;
    /* Z_i = H_i^T g_i */
    for (int32_t i = 0; i < n; i++)
        cblas_sgemv(CblasRowMajor, CblasTrans, L, d, 1.0f, w->H + (size_t)i * L * d, d, w->g + (size_t)i * L, 1, 0.0f,
                    w->Z + (size_t)i * d, 1);
    /* logits = Z Wc + bc */
    const float *bc = params + m->b_off[P_WC];
    for (int32_t i = 0; i < n; i++) memcpy(w->logit + (size_t)i * C, bc, (size_t)C * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, C, d, 1.0f, w->Z, d, params + m->w_off[P_WC], C, 1.0f,
                w->logit, C);
}

double attn_loss_grad(const model_t *m, const float *params, const float *x, const int32_t *y,
                      int32_t n, float *grad, attn_ws *w)
{
    if (n < 1 || n > w->max_batch || !attn_items_of(m, x, n, w)) {
        memset(grad, 0, (size_t)m->nparams * sizeof *grad);
        return n == 0 ? 0.0 : NAN;
    }
    attn_forward(m, params, n, w);
    const int32_t L = w->L, d = w->d, h = w->h, dh = d / h, C = w->C, NL = n * L;
    const float scale = 1.0f / sqrtf((float)dh);
    const float inv_n = 1.0f / (float)n;
    const float *cw = m->class_weight;
    /* softmax cross-entropy; dlog = gradient of the mean loss */
    double loss = 0.0;
    for (int32_t i = 0; i < n; i++) {
        const float *z = w->logit + (size_t)i * C;
        float *dl = w->dlog + (size_t)i * C;
        float mx = z[0];
        for (int32_t k = 1; k < C; k++) mx = z[k] > mx ? z[k] : mx;
        float s = 0.0f;
        for (int32_t k = 0; k < C; k++) {
            dl[k] = expf(z[k] - mx);
            s += dl[k];
        }
        const float wi = cw ? cw[y[i]] : 1.0f;
        loss += (double)(wi * (logf(s) - (z[y[i]] - mx)));
        const float sc = wi * inv_n / s;
        for (int32_t k = 0; k < C; k++) dl[k] *= sc;
        dl[y[i]] -= wi * inv_n;
    }
    /* classifier */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, C, n, 1.0f, w->Z, d, w->dlog, C, 0.0f,
                grad + m->w_off[P_WC], C);
    float *gb = grad + m->b_off[P_WC];
    memcpy(gb, w->dlog, (size_t)C * sizeof *gb);
    for (int32_t i = 1; i < n; i++)
        for (int32_t k = 0; k < C; k++) gb[k] += w->dlog[(size_t)i * C + k];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, d, C, 1.0f, w->dlog, C, params + m->w_off[P_WC], C, 0.0f,
                w->dZ, d);
    /* pooling */
    for (int32_t i = 0; i < n; i++) {
        const size_t ro = (size_t)i * L * d;
        const float *gi = w->g + (size_t)i * L, *dzi = w->dZ + (size_t)i * d;
        /* dH_i = g_i dZ_i^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, d, 1, 1.0f, gi, 1, dzi, d, 0.0f, w->dH + ro, d);
        /* dg_i = H_i dZ_i */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, L, d, 1.0f, w->H + ro, d, dzi, 1, 0.0f, w->ds + (size_t)i * L, 1);
    }
    for (int32_t p = 0; p < NL; p++) w->ds[p] *= w->g[p] * (1.0f - w->g[p]); /* 0 at padding (g = 0) */
    cblas_sgemv(CblasRowMajor, CblasTrans, NL, d, 1.0f, w->H, d, w->ds, 1, 0.0f, grad + m->w_off[P_U], 1);
    cblas_sger(CblasRowMajor, NL, d, 1.0f, w->ds, 1, params + m->w_off[P_U], 1, w->dH, d);
    /* attention: dO = dH (held in dH), dX = dH + ... (accumulated into dH at the end) */
    for (int32_t i = 0; i < n; i++) {
        const size_t ro = (size_t)i * L * d;
        for (int32_t hh = 0; hh < h; hh++) {
            const float *A = w->A + ((size_t)i * h + hh) * (size_t)L * L;
            const size_t co = ro + (size_t)hh * dh;
            float *dA = w->dA;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, dh, 1.0f, w->dH + co, d, w->V + co, d, 0.0f, dA, L);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, dh, L, 1.0f, A, L, w->dH + co, d, 0.0f, w->dV + co, d);
            for (int32_t a = 0; a < L; a++) { /* dS = A * (dA - rowsum(A * dA)), into dA */
                const float *Ar = A + (size_t)a * L;
                float *dr = dA + (size_t)a * L;
                float s = 0.0f;
                for (int32_t b = 0; b < L; b++) s += Ar[b] * dr[b];
                for (int32_t b = 0; b < L; b++) dr[b] = Ar[b] * (dr[b] - s);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, dh, L, scale, dA, L, w->K + co, d, 0.0f,
                        w->dQ + co, d);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, dh, L, scale, dA, L, w->Q + co, d, 0.0f,
                        w->dK + co, d);
        }
    }
    /* projections: dW = X^T dQ etc.; dX = dH + dQ Wq^T + dK Wk^T + dV Wv^T (into dH) */
    const float *dP[3] = {w->dQ, w->dK, w->dV};
    for (int k = 0; k < 3; k++) {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, NL, 1.0f, w->X, d, dP[k], d, 0.0f,
                    grad + m->w_off[P_WQ + k], d);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, NL, d, d, 1.0f, dP[k], d, params + m->w_off[P_WQ + k], d,
                    1.0f, w->dH, d);
    }
    /* embeddings: scatter-add over the valid positions */
    float *gE = grad + m->w_off[P_E];
    memset(gE, 0, (size_t)m->attn_items * (size_t)d * sizeof *gE);
    for (int32_t p = 0; p < NL; p++)
        if (w->item[p] >= 0) cblas_saxpy(d, 1.0f, w->dH + (size_t)p * d, 1, gE + (size_t)w->item[p] * d, 1);
    return loss;
}

void attn_predict(const model_t *m, const float *params, const float *x, int32_t n, float *probs,
                  attn_ws *w)
{
    const int32_t C = w->C;
    for (int64_t r = 0; r < n; r += w->max_batch) {
        const int32_t k = (int32_t)(n - r < w->max_batch ? n - r : w->max_batch);
        float *pr = probs + (size_t)r * C;
        if (!attn_items_of(m, x + (size_t)r * w->L, k, w)) {
            for (size_t q = 0; q < (size_t)k * C; q++) pr[q] = NAN;
            continue;
        }
        attn_forward(m, params, k, w);
        for (int32_t i = 0; i < k; i++) {
            const float *z = w->logit + (size_t)i * C;
            float *pi = pr + (size_t)i * C;
            float mx = z[0];
            for (int32_t c = 1; c < C; c++) mx = z[c] > mx ? z[c] : mx;
            float s = 0.0f;
            for (int32_t c = 0; c < C; c++) {
                pi[c] = expf(z[c] - mx);
                s += pi[c];
            }
            for (int32_t c = 0; c < C; c++) pi[c] /= s;
        }
    }
}

fh_status attn_embed_ws(const model_t *m, const float *params, const float *x, int32_t n,
                        float *emb, attn_ws *w)
{
    const int32_t d = w->d;
    for (int64_t r = 0; r < n; r += w->max_batch) {
        const int32_t k = (int32_t)(n - r < w->max_batch ? n - r : w->max_batch);
        if (!attn_items_of(m, x + (size_t)r * w->L, k, w))
            return fh_error_set(FH_EINPUT, "attention embedding: a row among rows %lld..%lld holds a value that is "
                                "neither -1 (padding) nor an item index in [0, %d)", (long long)r,
                                (long long)(r + k - 1), m->attn_items);
        attn_forward(m, params, k, w);
        memcpy(emb + (size_t)r * d, w->Z, (size_t)k * (size_t)d * sizeof *emb);
    }
    return FH_OK;
}

double attn_loss_grad_clipped(const model_t *m, const float *params, const float *x,
                              const int32_t *y, int32_t n, double clip, float *grad_sum,
                              double *norms, attn_ws *w)
{
    const size_t P = (size_t)m->nparams;
    memset(grad_sum, 0, P * sizeof *grad_sum);
    if (n <= 0) return 0.0;
    if (n > w->max_batch) return NAN;
    float *g = malloc(P * sizeof *g);
    if (!g) return NAN;
    double loss = 0.0;
    for (int32_t i = 0; i < n; i++) {
        const double li = attn_loss_grad(m, params, x + (size_t)i * w->L, y + i, 1, g, w);
        if (isnan(li)) {
            free(g);
            memset(grad_sum, 0, P * sizeof *grad_sum);
            return NAN;
        }
        loss += li;
        double s = 0.0;
        for (size_t k = 0; k < P; k++) s += (double)g[k] * g[k];
        const double nr = sqrt(s);
        if (norms) norms[i] = nr;
        const float c = nr > clip ? (float)(clip / nr) : 1.0f;
        cblas_saxpy((int)P, c, g, 1, grad_sum, 1);
    }
    free(g);
    return loss;
}
