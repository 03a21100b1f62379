/* Double backward of the dense models (logreg, MLP) for gradient-leakage attacks: see
 * include/fedhpc/leakage.h.
 *
 * Primal (as src/model/model.c, in double): Z_l = A_{l-1} W_l + b_l (A_{-1} = x),
 * A_l = relu(Z_l) for hidden layers, P = softmax(Z_{L-1}) (binary logreg: sigmoid), and the
 * mean-loss gradient dW_l = A_{l-1}^T D_l, db_l = colsum D_l with D_{L-1} = w (P - Y) / n,
 * D_{l-1} = (D_l W_l^T) * M_{l-1} (M = [Z > 0]).
 *
 * phi(x) = <v, g(x)> is the derivative of the mean loss in parameter direction v, so it is
 * computed by a tangent pass (forward mode in the parameters):
 *     Zt_l = At_{l-1} W_l + A_{l-1} V_l + v_l,   At_l = M_l * Zt_l   (At_{-1} = 0),
 *     phi  = sum_i w_i / n <P_i - Y_i, Zt_{L-1,i}>,
 * and its reverse pass (relu'' = 0, so no term through the mask):
 *     Ztbar_{L-1} = D_{L-1};   Pbar = w Zt_{L-1} / n;   Zbar_{L-1} = softmax' Pbar;
 *     Abar_{l-1} = Zbar_l W_l^T + Ztbar_l V_l^T,   Ztbar_{l-1} = M * (Ztbar_l W_l^T) = D_{l-1},
 *     Zbar_{l-1} = M * Abar_{l-1},
 *     xbar = Zbar_0 W_0^T + D_0 V_0^T,   Ybar = -w Zt_{L-1} / n.
 */
#include "fedhpc/leakage.h"

#include "dgrad_cnn.h" /* MODEL_CNN: src/model/dgrad_cnn.c */

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct leakage_net {
    const model_t *m;
    int32_t max_batch, n;
    double *p;                        /* [P] parameters in double                        */
    double *Z[MODEL_MAX_LAYERS];      /* [B, fo] pre-activations                          */
    double *A[MODEL_MAX_LAYERS];      /* [B, fo] relu(Z) (hidden) or probabilities (last) */
    double *D[MODEL_MAX_LAYERS];      /* [B, fo] backprop deltas                          */
    double *T[MODEL_MAX_LAYERS];      /* [B, fo] tangents Zt                              */
    double *bar, *bar2;               /* [B, max(fo, in)] reverse-pass scratch            */
    double *w;                        /* [B] row weights                                  */
    const double *x;                  /* the batch of the last leakage_net_grad            */
    const int32_t *y;
    const double *ysoft;
    leakage_cnn *cnn;                 /* MODEL_CNN: everything is done there             */
};

static int net_binary(const model_t *m) { return m->type == MODEL_LOGREG && m->classes == 2; }

leakage_net *leakage_net_create(const model_t *m, const float *params, int32_t max_batch)
{
    if (!m || (m->type != MODEL_LOGREG && m->type != MODEL_MLP && m->type != MODEL_CNN) || max_batch < 1) {
        fh_error_set(FH_EINPUT, "gradient leakage: model %s not supported (expected logreg, mlp or cnn)",
                     m ? model_type_name(m->type) : "(null)");
        return NULL;
    }
    leakage_net *net = calloc(1, sizeof *net);
    if (!net) return NULL;
    if (m->type == MODEL_CNN) {
        net->m = m;
        if (!(net->cnn = leakage_cnn_create(m, params, max_batch))) {
            free(net);
            return NULL;
        }
        return net;
    }
    net->m = m;
    net->max_batch = max_batch;
    const size_t B = (size_t)max_batch;
    size_t wmax = (size_t)m->in;
    int ok = (net->p = malloc((size_t)m->nparams * sizeof *net->p)) != NULL;
    for (int32_t l = 0; l < m->nlayers && ok; l++) {
        const size_t fo = (size_t)m->fan_out[l];
        if (fo > wmax) wmax = fo;
        ok = (net->Z[l] = malloc(B * fo * sizeof(double))) && (net->A[l] = malloc(B * fo * sizeof(double))) &&
             (net->D[l] = malloc(B * fo * sizeof(double))) && (net->T[l] = malloc(B * fo * sizeof(double)));
    }
    ok = ok && (net->bar = malloc(B * wmax * sizeof(double))) && (net->bar2 = malloc(B * wmax * sizeof(double))) &&
         (net->w = malloc(B * sizeof(double)));
    if (!ok) {
        leakage_net_free(net);
        fh_error_set(FH_ENOMEM, "out of memory for the leakage network");
        return NULL;
    }
    for (int64_t j = 0; j < m->nparams; j++) net->p[j] = params[j];
    return net;
}

void leakage_net_free(leakage_net *net)
{
    if (!net) return;
    leakage_cnn_free(net->cnn);
    for (int32_t l = 0; l < MODEL_MAX_LAYERS; l++) {
        free(net->Z[l]);
        free(net->A[l]);
        free(net->D[l]);
        free(net->T[l]);
    }
    free(net->p);
    free(net->bar);
    free(net->bar2);
    free(net->w);
    free(net);
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

/* target of row i, class k */
static double net_target(const leakage_net *net, int32_t i, int32_t k)
{
    const model_t *m = net->m;
    if (net->ysoft) return net->ysoft[(size_t)i * m->classes + (net_binary(m) ? 1 : k)];
    return net_binary(m) ? (double)net->y[i] : (double)(net->y[i] == k);
}

double leakage_net_grad(leakage_net *net, const double *x, const int32_t *y, const double *ysoft,
                        int32_t n, double *grad)
{
    if (net->cnn) return leakage_cnn_grad(net->cnn, x, y, ysoft, n, grad);
    const model_t *m = net->m;
    if (n < 1 || n > net->max_batch || (!y && !ysoft)) return NAN;
    if (!ysoft)
        for (int32_t i = 0; i < n; i++)
            if (y[i] < 0 || y[i] >= m->classes) return NAN;
    net->x = x;
    net->y = y;
    net->ysoft = ysoft;
    net->n = n;
    const int32_t L = m->nlayers;
    for (int32_t l = 0; l < L; l++) {
        const int32_t fi = m->fan_in[l], fo = m->fan_out[l];
        const double *ain = l == 0 ? x : net->A[l - 1];
        double *z = net->Z[l];
        for (int32_t i = 0; i < n; i++) memcpy(z + (size_t)i * fo, net->p + m->b_off[l], (size_t)fo * sizeof *z);
        mm(n, fo, fi, ain, net->p + m->w_off[l], z, 1);
        double *a = net->A[l];
        if (l < L - 1)
            for (size_t j = 0; j < (size_t)n * fo; j++) a[j] = z[j] > 0 ? z[j] : 0;
    }
    /* output probabilities, loss, D_{L-1} */
    const int32_t oL = m->fan_out[L - 1];
    double *z = net->Z[L - 1], *pr = net->A[L - 1], *d = net->D[L - 1];
    double loss = 0;
    for (int32_t i = 0; i < n; i++) {
        const double wi = (!ysoft && m->class_weight) ? m->class_weight[y[i]] : 1.0;
        net->w[i] = wi;
        if (net_binary(m)) {
            const double zi = z[i], t = net_target(net, i, 1);
            pr[i] = zi >= 0 ? 1 / (1 + exp(-zi)) : exp(zi) / (1 + exp(zi));
            loss += wi * ((zi > 0 ? zi : 0) + log1p(exp(-fabs(zi))) - t * zi);
            d[i] = wi * (pr[i] - t) / n;
            continue;
        }
        const double *zi = z + (size_t)i * oL;
        double *pi = pr + (size_t)i * oL, mx = zi[0], s = 0;
        for (int32_t k = 1; k < oL; k++) mx = zi[k] > mx ? zi[k] : mx;
        for (int32_t k = 0; k < oL; k++) s += (pi[k] = exp(zi[k] - mx));
        const double ls = log(s);
        for (int32_t k = 0; k < oL; k++) {
            const double t = net_target(net, i, k);
            pi[k] /= s;
            loss -= wi * t * (zi[k] - mx - ls);
            d[(size_t)i * oL + k] = wi * (pi[k] - t) / n;
        }
    }
    /* backward: gradient and deltas */
    for (int32_t l = L - 1; l >= 0; l--) {
        const int32_t fi = m->fan_in[l], fo = m->fan_out[l];
        const double *ain = l == 0 ? x : net->A[l - 1];
        const double *dl = net->D[l];
        if (grad) {
            cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, fi, fo, n, 1.0, ain, fi, dl, fo, 0.0,
                        grad + m->w_off[l], fo);
            double *gb = grad + m->b_off[l];
            for (int32_t k = 0; k < fo; k++) gb[k] = 0;
            for (int32_t i = 0; i < n; i++)
                for (int32_t k = 0; k < fo; k++) gb[k] += dl[(size_t)i * fo + k];
        }
        if (l == 0) break;
        double *dp = net->D[l - 1];
        mmt(n, fi, fo, dl, net->p + m->w_off[l], dp, 0);
        const double *zp = net->Z[l - 1];
        for (size_t j = 0; j < (size_t)n * fi; j++)
            if (!(zp[j] > 0)) dp[j] = 0;
    }
    return loss;
}

void leakage_net_dgrad(leakage_net *net, const double *v, double *xbar, double *ybar)
{
    if (net->cnn) {
        leakage_cnn_dgrad(net->cnn, v, xbar, ybar);
        return;
    }
    const model_t *m = net->m;
    const int32_t L = m->nlayers, n = net->n;
    /* tangent pass */
    for (int32_t l = 0; l < L; l++) {
        const int32_t fi = m->fan_in[l], fo = m->fan_out[l];
        double *t = net->T[l];
        for (int32_t i = 0; i < n; i++) memcpy(t + (size_t)i * fo, v + m->b_off[l], (size_t)fo * sizeof *t);
        mm(n, fo, fi, l == 0 ? net->x : net->A[l - 1], v + m->w_off[l], t, 1);
        if (l > 0) {
            /* + At_{l-1} W_l with At_{l-1} = M_{l-1} * Zt_{l-1} (bar2 as scratch) */
            const double *tp = net->T[l - 1], *zp = net->Z[l - 1];
            double *at = net->bar2;
            for (size_t j = 0; j < (size_t)n * fi; j++) at[j] = zp[j] > 0 ? tp[j] : 0;
            mm(n, fo, fi, at, net->p + m->w_off[l], t, 1);
        }
    }
    /* reverse pass: Zbar_{L-1} from Pbar = w Zt / n */
    const int32_t oL = m->fan_out[L - 1];
    const double *tl = net->T[L - 1], *pr = net->A[L - 1];
    double *zbar = net->bar;
    for (int32_t i = 0; i < n; i++) {
        const double c = net->w[i] / n;
        if (net_binary(m)) {
            zbar[i] = pr[i] * (1 - pr[i]) * c * tl[i];
            continue;
        }
        const double *pi = pr + (size_t)i * oL, *ti = tl + (size_t)i * oL;
        double s = 0;
        for (int32_t k = 0; k < oL; k++) s += c * ti[k] * pi[k];
        for (int32_t k = 0; k < oL; k++) zbar[(size_t)i * oL + k] = pi[k] * (c * ti[k] - s);
    }
    if (ybar) {
        const int32_t C = m->classes;
        for (int32_t i = 0; i < n; i++)
            for (int32_t k = 0; k < C; k++) {
                double yb;
                if (net_binary(m)) yb = k == 1 ? -net->w[i] * tl[i] / n : 0;
                else yb = -net->w[i] * tl[(size_t)i * oL + k] / n;
                ybar[(size_t)i * C + k] = yb;
            }
    }
    for (int32_t l = L - 1; l >= 0; l--) {
        const int32_t fi = m->fan_in[l], fo = m->fan_out[l];
        /* Abar_{l-1} (or xbar) = Zbar_l W_l^T + D_l V_l^T */
        double *out = l == 0 ? xbar : net->bar2;
        mmt(n, fi, fo, zbar, net->p + m->w_off[l], out, 0);
        mmt(n, fi, fo, net->D[l], v + m->w_off[l], out, 1);
        if (l == 0) break;
        const double *zp = net->Z[l - 1];
        for (size_t j = 0; j < (size_t)n * fi; j++) zbar[j] = zp[j] > 0 ? out[j] : 0;
    }
}

double leakage_match(int kind, const double *g, const double *t, const uint8_t *mask, int64_t P,
                     double *v)
{
    if (kind == LEAKAGE_LOSS_L2) {
        double s = 0;
        for (int64_t j = 0; j < P; j++) {
            if (mask && !mask[j]) {
                v[j] = 0;
                continue;
            }
            const double e = g[j] - t[j];
            s += e * e;
            v[j] = 2 * e;
        }
        return s;
    }
    double gt = 0, gg = 0, tt = 0;
    for (int64_t j = 0; j < P; j++) {
        if (mask && !mask[j]) continue;
        gt += g[j] * t[j];
        gg += g[j] * g[j];
        tt += t[j] * t[j];
    }
    const double ng = sqrt(gg), nt = sqrt(tt);
    if (ng == 0 || nt == 0) {
        for (int64_t j = 0; j < P; j++) v[j] = 0;
        return 1;
    }
    const double a = 1 / (ng * nt), b = gt / (gg * ng * nt);
    for (int64_t j = 0; j < P; j++) v[j] = (mask && !mask[j]) ? 0 : -(a * t[j] - b * g[j]);
    return 1 - gt * a;
}
