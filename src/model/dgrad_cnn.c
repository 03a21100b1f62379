/* Double backward of the engine's CNN (MODEL_CNN, src/model/cnn.c) for the gradient-leakage
 * attack (issue 13, docs/leakage.md): the same architecture and flat parameter layout, in
 * double and plain C loops (correctness over speed: batches of 1-4 images).
 *
 * Primal, per sample (channels last, 5x5 'same' cross-correlation with zero padding 2 as oneDNN):
 *   Z1 = conv(x, W0) + b0 [S, S, C1];    P1 = relu(maxpool2(Z1)) [S/2, S/2, C1]
 *   Z2 = conv(P1, W1) + b1 [S/2, S/2, C2]; P2 = relu(maxpool2(Z2)) [S/4 * S/4 * C2] (flat)
 *   Z3 = P2 W2 + b2, A3 = relu(Z3);  Z4 = A3 W3 + b3, P = softmax(Z4)
 * W_l is [fan_in, fan_out] row-major; a conv's row is (ky * 5 + kx) * in_channels + c. The pool
 * takes the first maximum of its window in the order (0,0) (0,1) (1,0) (1,1), and passes no
 * gradient when that maximum is <= 0 (relu(max z) = max relu(z)), as cnn.c. relu + max-pool is
 * a fixed selection times a 0/1 gate almost everywhere: sel(Z) * g.
 *
 * Backward (the mean-loss gradient): D4 = w (P - Y) / n; dW3 = A3^T D4; D3 = (D4 W3^T) * M3;
 * dW2 = P2^T D3; dP2 = D3 W2^T; dZ2 = unpool(dP2); dW1, db1 from (P1, dZ2); dP1 = convT(dZ2, W1);
 * dZ1 = unpool(dP1); dW0, db0 from (x, dZ1).
 *
 * phi(x) = <v, g(x)>: tangent pass in parameter direction v
 *   Zt1 = conv(x, V0) + v0,  Pt1 = sel(Zt1) g1,  Zt2 = conv(Pt1, W1) + conv(P1, V1) + v1,
 *   Pt2 = sel(Zt2) g2,  Zt3 = Pt2 W2 + P2 V2 + v2,  At3 = M3 Zt3,  Zt4 = At3 W3 + A3 V3 + v3,
 *   phi = sum_i w_i / n <P_i - Y_i, Zt4_i>,
 * then its reverse pass (the gates have zero derivative):
 *   Zbar4 = softmax'(w Zt4 / n);  Abar3 = Zbar4 W3^T + D4 V3^T;  Zbar3 = M3 Abar3;
 *   P2bar = Zbar3 W2^T + D3 V2^T;  Z2bar = unpool(P2bar);  P1bar = convT(Z2bar, W1) + convT(dZ2, V1);
 *   Z1bar = unpool(P1bar);  xbar = convT(Z1bar, W0) + convT(dZ1, V0);  Ybar = -w Zt4 / n.
 */
#include "dgrad_cnn.h"

#include "fedhpc/common.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define K5 5

struct leakage_cnn {
    const model_t *m;
    int32_t max_batch, n;
    int32_t S, S2, S4, C0, C1, C2, F, K;
    size_t nz1, np1, nz2, np2; /* per-sample sizes: Z1, P1, Z2, P2 */
    double *p;
    /* primal, per sample blocks */
    double *Z1, *P1, *Z2, *P2, *Z3, *A3, *Z4, *PR;
    int32_t *i1, *i2; /* pool arg-max index into the sample's Z */
    uint8_t *g1, *g2; /* pool gate: max > 0 */
    /* deltas */
    double *D4, *D3, *dP2, *dZ2, *dP1, *dZ1;
    /* tangent and reverse */
    double *T1, *Pt1, *T2, *Pt2, *T3, *T4, *At3, *zb4, *ab3, *p2b, *z2b, *p1b, *z1b;
    double *w;
    double *wt; /* conv_bwd_data scratch */
    const double *x;
    const int32_t *y;
    const double *ysoft;
    void *mem[40];
    int nmem;
};

static void *cnn_alloc(leakage_cnn *c, size_t bytes)
{
    if (c->nmem >= 40) return NULL;
    void *p = calloc(1, bytes ? bytes : 1);
    if (p) c->mem[c->nmem++] = p;
    return p;
}

leakage_cnn *leakage_cnn_create(const model_t *m, const float *params, int32_t max_batch)
{
    leakage_cnn *c = calloc(1, sizeof *c);
    if (!c) {
        fh_error_set(FH_ENOMEM, "out of memory for the leakage network");
        return NULL;
    }
    c->m = m;
    c->max_batch = max_batch;
    c->S = m->cnn_side;
    c->S2 = c->S / 2;
    c->S4 = c->S / 4;
    c->C0 = m->cnn_channels;
    c->C1 = m->fan_out[0];
    c->C2 = m->fan_out[1];
    c->F = m->fan_out[2];
    c->K = m->classes;
    c->nz1 = (size_t)c->S * c->S * c->C1;
    c->np1 = (size_t)c->S2 * c->S2 * c->C1;
    c->nz2 = (size_t)c->S2 * c->S2 * c->C2;
    c->np2 = (size_t)c->S4 * c->S4 * c->C2;
    const size_t B = (size_t)max_batch, D = sizeof(double);
    int ok = (c->p = cnn_alloc(c, (size_t)m->nparams * D)) != NULL;
    struct { double **a; size_t n; } arr[] = {
        {&c->Z1, c->nz1}, {&c->P1, c->np1}, {&c->Z2, c->nz2}, {&c->P2, c->np2}, {&c->Z3, (size_t)c->F},
        {&c->A3, (size_t)c->F}, {&c->Z4, (size_t)c->K}, {&c->PR, (size_t)c->K}, {&c->D4, (size_t)c->K},
        {&c->D3, (size_t)c->F}, {&c->dP2, c->np2}, {&c->dZ2, c->nz2}, {&c->dP1, c->np1}, {&c->dZ1, c->nz1},
        {&c->T1, c->nz1}, {&c->Pt1, c->np1}, {&c->T2, c->nz2}, {&c->Pt2, c->np2}, {&c->T3, (size_t)c->F},
        {&c->T4, (size_t)c->K}, {&c->At3, (size_t)c->F}, {&c->zb4, (size_t)c->K}, {&c->ab3, (size_t)c->F},
        {&c->p2b, c->np2}, {&c->z2b, c->nz2}, {&c->p1b, c->np1}, {&c->z1b, c->nz1}, {&c->w, 1}};
    const size_t nwt = (size_t)K5 * K5 * (c->C0 > c->C2 ? c->C0 : c->C2) * c->C1;
    for (size_t j = 0; ok && j < sizeof arr / sizeof *arr; j++) ok = (*arr[j].a = cnn_alloc(c, B * arr[j].n * D)) != NULL;
    ok = ok && (c->wt = cnn_alloc(c, nwt * D));
    ok = ok && (c->i1 = cnn_alloc(c, B * c->np1 * sizeof(int32_t))) && (c->i2 = cnn_alloc(c, B * c->np2 * sizeof(int32_t))) &&
         (c->g1 = cnn_alloc(c, B * c->np1)) && (c->g2 = cnn_alloc(c, B * c->np2));
    if (!ok) {
        leakage_cnn_free(c);
        fh_error_set(FH_ENOMEM, "out of memory for the leakage network");
        return NULL;
    }
    for (int64_t j = 0; j < m->nparams; j++) c->p[j] = params[j];
    return c;
}

void leakage_cnn_free(leakage_cnn *c)
{
    if (!c) return;
    for (int j = 0; j < c->nmem; j++) free(c->mem[j]);
    free(c);
}

/* ---- one sample's convolution pieces ---------------------------------------------------- */

/* out [S, S, Co] (+)= conv(in [S, S, Ci], W) (+ b when not NULL); acc 0: out overwritten */
static void conv_fwd(const double *in, int32_t S, int32_t Ci, int32_t Co, const double *W, const double *b,
                     double *out, int acc)
{
    for (int32_t y = 0; y < S; y++)
        for (int32_t x = 0; x < S; x++) {
            double *o = out + ((size_t)y * S + x) * Co;
            for (int32_t f = 0; f < Co; f++) o[f] = (acc ? o[f] : 0) + (b ? b[f] : 0);
            for (int32_t ky = 0; ky < K5; ky++) {
                const int32_t yy = y + ky - 2;
                if (yy < 0 || yy >= S) continue;
                for (int32_t kx = 0; kx < K5; kx++) {
                    const int32_t xx = x + kx - 2;
                    if (xx < 0 || xx >= S) continue;
                    const double *ip = in + ((size_t)yy * S + xx) * Ci;
                    const double *wr = W + (size_t)(ky * K5 + kx) * Ci * Co;
                    for (int32_t ci = 0; ci < Ci; ci++) {
                        const double a = ip[ci];
                        if (a == 0) continue;
                        const double *wc = wr + (size_t)ci * Co;
                        for (int32_t f = 0; f < Co; f++) o[f] += a * wc[f];
                    }
                }
            }
        }
}

/* din [S, S, Ci] (+)= convT(dout [S, S, Co], W): the gradient of conv_fwd w.r.t. its input.
 * wt [25 Co Ci] scratch (W transposed per kernel position, so the inner loop runs over Ci);
 * the zeros of dout (3/4 of them after a max-pool's gradient) are skipped. */
static void conv_bwd_data(const double *dout, int32_t S, int32_t Ci, int32_t Co, const double *W, double *din,
                          int acc, double *wt)
{
    for (int32_t k = 0; k < K5 * K5; k++)
        for (int32_t ci = 0; ci < Ci; ci++)
            for (int32_t f = 0; f < Co; f++)
                wt[((size_t)k * Co + f) * Ci + ci] = W[((size_t)k * Ci + ci) * Co + f];
    if (!acc) memset(din, 0, (size_t)S * S * Ci * sizeof *din);
    for (int32_t y = 0; y < S; y++)
        for (int32_t x = 0; x < S; x++) {
            const double *d = dout + ((size_t)y * S + x) * Co;
            for (int32_t ky = 0; ky < K5; ky++) {
                const int32_t yy = y + ky - 2;
                if (yy < 0 || yy >= S) continue;
                for (int32_t kx = 0; kx < K5; kx++) {
                    const int32_t xx = x + kx - 2;
                    if (xx < 0 || xx >= S) continue;
                    double *ip = din + ((size_t)yy * S + xx) * Ci;
                    const double *wk = wt + (size_t)(ky * K5 + kx) * Co * Ci;
                    for (int32_t f = 0; f < Co; f++) {
                        const double a = d[f];
                        if (a == 0) continue;
                        const double *wf = wk + (size_t)f * Ci;
                        for (int32_t ci = 0; ci < Ci; ci++) ip[ci] += a * wf[ci];
                    }
                }
            }
        }
}

/* dW [25 Ci, Co], db [Co] (+)= the gradient of conv_fwd w.r.t. its weights and bias */
static void conv_bwd_w(const double *in, const double *dout, int32_t S, int32_t Ci, int32_t Co, double *dW,
                       double *db, int acc)
{
    if (!acc) {
        memset(dW, 0, (size_t)K5 * K5 * Ci * Co * sizeof *dW);
        memset(db, 0, (size_t)Co * sizeof *db);
    }
    for (int32_t y = 0; y < S; y++)
        for (int32_t x = 0; x < S; x++) {
            const double *d = dout + ((size_t)y * S + x) * Co;
            for (int32_t f = 0; f < Co; f++) db[f] += d[f];
            for (int32_t ky = 0; ky < K5; ky++) {
                const int32_t yy = y + ky - 2;
                if (yy < 0 || yy >= S) continue;
                for (int32_t kx = 0; kx < K5; kx++) {
                    const int32_t xx = x + kx - 2;
                    if (xx < 0 || xx >= S) continue;
                    const double *ip = in + ((size_t)yy * S + xx) * Ci;
                    double *wr = dW + (size_t)(ky * K5 + kx) * Ci * Co;
                    for (int32_t ci = 0; ci < Ci; ci++) {
                        const double a = ip[ci];
                        if (a == 0) continue;
                        double *wc = wr + (size_t)ci * Co;
                        for (int32_t f = 0; f < Co; f++) wc[f] += a * d[f];
                    }
                }
            }
        }
}

/* relu + 2x2 max-pool of Z [S, S, C] into P [S/2, S/2, C], with the arg-max index and gate */
static void pool_fwd(const double *Z, int32_t S, int32_t C, double *P, int32_t *idx, uint8_t *g)
{
    const int32_t H = S / 2;
    for (int32_t y = 0; y < H; y++)
        for (int32_t x = 0; x < H; x++)
            for (int32_t ch = 0; ch < C; ch++) {
                const size_t o = ((size_t)y * H + x) * C + ch;
                const size_t q0 = ((size_t)(2 * y) * S + 2 * x) * C + ch;
                const size_t q[4] = {q0, q0 + C, q0 + (size_t)S * C, q0 + (size_t)S * C + C};
                size_t best = q[0];
                for (int t = 1; t < 4; t++)
                    if (Z[q[t]] > Z[best]) best = q[t];
                idx[o] = (int32_t)best;
                g[o] = Z[best] > 0;
                P[o] = g[o] ? Z[best] : 0;
            }
}

/* the tangent (or any linear map) of pool_fwd at the same selection: P = sel(Z) g */
static void pool_lin(const double *Z, size_t np, const int32_t *idx, const uint8_t *g, double *P)
{
    for (size_t o = 0; o < np; o++) P[o] = g[o] ? Z[idx[o]] : 0;
}

/* its transpose: Z [nz] = 0 but Z[idx[o]] = P[o] where g[o] */
static void pool_adj(const double *P, size_t np, const int32_t *idx, const uint8_t *g, double *Z, size_t nz)
{
    memset(Z, 0, nz * sizeof *Z);
    for (size_t o = 0; o < np; o++)
        if (g[o]) Z[idx[o]] += P[o];
}

/* C[n, k] = A[n, m] B[m, k] (+ C when acc) */
static void mm(int32_t n, int32_t k, int32_t mdim, const double *a, const double *b, double *c, int acc)
{
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, k, mdim, 1.0, a, mdim, b, k, acc ? 1.0 : 0.0, c, k);
}
/* C[n, k] = A[n, m] B[k, m]^T (+ C when acc) */
static void mmt(int32_t n, int32_t k, int32_t mdim, const double *a, const double *b, double *c, int acc)
{
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, k, mdim, 1.0, a, mdim, b, mdim, acc ? 1.0 : 0.0, c, k);
}
/* C[m, k] = A[n, m]^T B[n, k] */
static void mtm(int32_t n, int32_t mdim, int32_t k, const double *a, const double *b, double *c)
{
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, mdim, k, n, 1.0, a, mdim, b, k, 0.0, c, k);
}

static void colsum(const double *d, int32_t n, int32_t k, double *out)
{
    for (int32_t j = 0; j < k; j++) out[j] = 0;
    for (int32_t i = 0; i < n; i++)
        for (int32_t j = 0; j < k; j++) out[j] += d[(size_t)i * k + j];
}

double leakage_cnn_grad(leakage_cnn *c, const double *x, const int32_t *y, const double *ysoft, int32_t n,
                        double *grad)
{
    const model_t *m = c->m;
    if (n < 1 || n > c->max_batch || (!y && !ysoft)) return NAN;
    if (!ysoft)
        for (int32_t i = 0; i < n; i++)
            if (y[i] < 0 || y[i] >= m->classes) return NAN;
    c->x = x;
    c->y = y;
    c->ysoft = ysoft;
    c->n = n;
    const double *p = c->p;
    const int32_t F = c->F, K = c->K, n2 = (int32_t)c->np2;
    for (int32_t i = 0; i < n; i++) {
        conv_fwd(x + (size_t)i * m->in, c->S, c->C0, c->C1, p + m->w_off[0], p + m->b_off[0], c->Z1 + i * c->nz1, 0);
        pool_fwd(c->Z1 + i * c->nz1, c->S, c->C1, c->P1 + i * c->np1, c->i1 + i * c->np1, c->g1 + i * c->np1);
        conv_fwd(c->P1 + i * c->np1, c->S2, c->C1, c->C2, p + m->w_off[1], p + m->b_off[1], c->Z2 + i * c->nz2, 0);
        pool_fwd(c->Z2 + i * c->nz2, c->S2, c->C2, c->P2 + i * c->np2, c->i2 + i * c->np2, c->g2 + i * c->np2);
    }
    for (int32_t i = 0; i < n; i++) {
        memcpy(c->Z3 + (size_t)i * F, p + m->b_off[2], (size_t)F * sizeof *c->Z3);
        memcpy(c->Z4 + (size_t)i * K, p + m->b_off[3], (size_t)K * sizeof *c->Z4);
    }
    mm(n, F, n2, c->P2, p + m->w_off[2], c->Z3, 1);
    for (size_t j = 0; j < (size_t)n * F; j++) c->A3[j] = c->Z3[j] > 0 ? c->Z3[j] : 0;
    mm(n, K, F, c->A3, p + m->w_off[3], c->Z4, 1);
    double loss = 0;
    for (int32_t i = 0; i < n; i++) {
        const double wi = (!ysoft && m->class_weight) ? m->class_weight[y[i]] : 1.0;
        c->w[i] = wi;
        const double *zi = c->Z4 + (size_t)i * K;
        double *pi = c->PR + (size_t)i * K, mx = zi[0], s = 0;
        for (int32_t k = 1; k < K; k++) mx = zi[k] > mx ? zi[k] : mx;
        for (int32_t k = 0; k < K; k++) s += (pi[k] = exp(zi[k] - mx));
        const double ls = log(s);
        for (int32_t k = 0; k < K; k++) {
            const double t = ysoft ? ysoft[(size_t)i * K + k] : (double)(y[i] == k);
            pi[k] /= s;
            loss -= wi * t * (zi[k] - mx - ls);
            c->D4[(size_t)i * K + k] = wi * (pi[k] - t) / n;
        }
    }
    /* backward */
    if (grad) {
        mtm(n, F, K, c->A3, c->D4, grad + m->w_off[3]);
        colsum(c->D4, n, K, grad + m->b_off[3]);
    }
    mmt(n, F, K, c->D4, p + m->w_off[3], c->D3, 0);
    for (size_t j = 0; j < (size_t)n * F; j++)
        if (!(c->Z3[j] > 0)) c->D3[j] = 0;
    if (grad) {
        mtm(n, n2, F, c->P2, c->D3, grad + m->w_off[2]);
        colsum(c->D3, n, F, grad + m->b_off[2]);
    }
    mmt(n, n2, F, c->D3, p + m->w_off[2], c->dP2, 0);
    for (int32_t i = 0; i < n; i++) {
        double *dz2 = c->dZ2 + i * c->nz2, *dp1 = c->dP1 + i * c->np1, *dz1 = c->dZ1 + i * c->nz1;
        pool_adj(c->dP2 + i * c->np2, c->np2, c->i2 + i * c->np2, c->g2 + i * c->np2, dz2, c->nz2);
        if (grad)
            conv_bwd_w(c->P1 + i * c->np1, dz2, c->S2, c->C1, c->C2, grad + m->w_off[1], grad + m->b_off[1], i > 0);
        conv_bwd_data(dz2, c->S2, c->C1, c->C2, p + m->w_off[1], dp1, 0, c->wt);
        pool_adj(dp1, c->np1, c->i1 + i * c->np1, c->g1 + i * c->np1, dz1, c->nz1);
        if (grad)
            conv_bwd_w(x + (size_t)i * m->in, dz1, c->S, c->C0, c->C1, grad + m->w_off[0], grad + m->b_off[0], i > 0);
    }
    return loss;
}

void leakage_cnn_dgrad(leakage_cnn *c, const double *v, double *xbar, double *ybar)
{
    const model_t *m = c->m;
    const double *p = c->p;
    const int32_t n = c->n, F = c->F, K = c->K, n2 = (int32_t)c->np2;
    /* tangent pass */
    for (int32_t i = 0; i < n; i++) {
        double *t1 = c->T1 + i * c->nz1, *pt1 = c->Pt1 + i * c->np1, *t2 = c->T2 + i * c->nz2;
        conv_fwd(c->x + (size_t)i * m->in, c->S, c->C0, c->C1, v + m->w_off[0], v + m->b_off[0], t1, 0);
        pool_lin(t1, c->np1, c->i1 + i * c->np1, c->g1 + i * c->np1, pt1);
        conv_fwd(pt1, c->S2, c->C1, c->C2, p + m->w_off[1], v + m->b_off[1], t2, 0);
        conv_fwd(c->P1 + i * c->np1, c->S2, c->C1, c->C2, v + m->w_off[1], NULL, t2, 1);
        pool_lin(t2, c->np2, c->i2 + i * c->np2, c->g2 + i * c->np2, c->Pt2 + i * c->np2);
    }
    for (int32_t i = 0; i < n; i++) {
        memcpy(c->T3 + (size_t)i * F, v + m->b_off[2], (size_t)F * sizeof *c->T3);
        memcpy(c->T4 + (size_t)i * K, v + m->b_off[3], (size_t)K * sizeof *c->T4);
    }
    mm(n, F, n2, c->Pt2, p + m->w_off[2], c->T3, 1);
    mm(n, F, n2, c->P2, v + m->w_off[2], c->T3, 1);
    for (size_t j = 0; j < (size_t)n * F; j++) c->At3[j] = c->Z3[j] > 0 ? c->T3[j] : 0;
    mm(n, K, F, c->At3, p + m->w_off[3], c->T4, 1);
    mm(n, K, F, c->A3, v + m->w_off[3], c->T4, 1);
    /* reverse pass */
    for (int32_t i = 0; i < n; i++) {
        const double cw = c->w[i] / n;
        const double *pi = c->PR + (size_t)i * K, *ti = c->T4 + (size_t)i * K;
        double s = 0;
        for (int32_t k = 0; k < K; k++) s += cw * ti[k] * pi[k];
        for (int32_t k = 0; k < K; k++) c->zb4[(size_t)i * K + k] = pi[k] * (cw * ti[k] - s);
        if (ybar)
            for (int32_t k = 0; k < K; k++) ybar[(size_t)i * K + k] = -cw * ti[k];
    }
    mmt(n, F, K, c->zb4, p + m->w_off[3], c->ab3, 0);
    mmt(n, F, K, c->D4, v + m->w_off[3], c->ab3, 1);
    for (size_t j = 0; j < (size_t)n * F; j++)
        if (!(c->Z3[j] > 0)) c->ab3[j] = 0;
    mmt(n, n2, F, c->ab3, p + m->w_off[2], c->p2b, 0);
    mmt(n, n2, F, c->D3, v + m->w_off[2], c->p2b, 1);
    for (int32_t i = 0; i < n; i++) {
        double *z2b = c->z2b + i * c->nz2, *p1b = c->p1b + i * c->np1, *z1b = c->z1b + i * c->nz1;
        double *xb = xbar + (size_t)i * m->in;
        pool_adj(c->p2b + i * c->np2, c->np2, c->i2 + i * c->np2, c->g2 + i * c->np2, z2b, c->nz2);
        conv_bwd_data(z2b, c->S2, c->C1, c->C2, p + m->w_off[1], p1b, 0, c->wt);
        conv_bwd_data(c->dZ2 + i * c->nz2, c->S2, c->C1, c->C2, v + m->w_off[1], p1b, 1, c->wt);
        pool_adj(p1b, c->np1, c->i1 + i * c->np1, c->g1 + i * c->np1, z1b, c->nz1);
        conv_bwd_data(z1b, c->S, c->C0, c->C1, p + m->w_off[0], xb, 0, c->wt);
        conv_bwd_data(c->dZ1 + i * c->nz1, c->S, c->C0, c->C1, v + m->w_off[0], xb, 1, c->wt);
    }
}
