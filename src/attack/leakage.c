/* Gradient-leakage attacks on one client's update (issue 13): see include/fedhpc/leakage.h and
 * docs/leakage.md. Pure computation: no MPI, no HDF5. */
#include "fedhpc/leakage.h"
#include "fedhpc/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* ---- closed-form attacks ---------------------------------------------------------------- */

typedef struct {
    double key;
    int32_t idx;
} keyed;

static int keyed_desc(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->key != y->key) return x->key > y->key ? -1 : 1;
    return x->idx - y->idx;
}

int32_t leakage_analytic(const model_t *m, const double *g, double tol, int32_t max_cand,
                         double *cand)
{
    const int32_t d = m->in, h = m->fan_out[0];
    const double *gw = g + m->w_off[0], *gb = g + m->b_off[0]; /* [d, h], [h] */
    keyed *k = malloc((size_t)h * sizeof *k);
    if (!k) return 0;
    double mx = 0;
    for (int32_t j = 0; j < h; j++) {
        k[j].key = fabs(gb[j]);
        k[j].idx = j;
        if (k[j].key > mx) mx = k[j].key;
    }
    qsort(k, (size_t)h, sizeof *k, keyed_desc);
    int32_t c = 0;
    for (int32_t r = 0; r < h && c < max_cand; r++) {
        if (!(k[r].key > tol * mx) || k[r].key == 0) break;
        const int32_t j = k[r].idx;
        const double inv = 1.0 / gb[j];
        for (int32_t i = 0; i < d; i++) cand[(size_t)c * d + i] = gw[(size_t)i * h + j] * inv;
        c++;
    }
    free(k);
    return c;
}

void leakage_analytic_ls(const model_t *m, const double *g, const uint8_t *mask, double *x)
{
    const int32_t d = m->in, h = m->fan_out[0];
    const double *gw = g + m->w_off[0], *gb = g + m->b_off[0];
    const uint8_t *mw = mask ? mask + m->w_off[0] : NULL, *mb = mask ? mask + m->b_off[0] : NULL;
    double bb = 0;
    for (int32_t j = 0; j < h; j++) bb += gb[j] * gb[j];
    for (int32_t i = 0; i < d; i++) {
        double s = 0, q = mask ? 0 : bb;
        for (int32_t j = 0; j < h; j++) {
            if (mask && (!mw[(size_t)i * h + j] || !mb[j])) continue;
            s += gw[(size_t)i * h + j] * gb[j];
            if (mask) q += gb[j] * gb[j];
        }
        x[i] = q > 0 ? s / q : 0;
    }
}

void leakage_labels(const model_t *m, const double *g, int32_t n, int32_t *labels)
{
    const int32_t L = m->nlayers, C = m->classes;
    const double *gb = g + m->b_off[L - 1];
    double *c = malloc((size_t)C * sizeof *c);
    int32_t *ci = malloc((size_t)C * sizeof *ci);
    if (!c || !ci) {
        free(c);
        free(ci);
        for (int32_t i = 0; i < n; i++) labels[i] = 0;
        return;
    }
    if (m->type == MODEL_LOGREG && C == 2) { /* one logit: n db = sum (p - y) */
        c[1] = n / 2.0 - n * gb[0];
        c[0] = n - c[1];
    } else if (n == 1) { /* iDLG: the one negative entry */
        int32_t best = 0;
        for (int32_t k = 1; k < C; k++)
            if (gb[k] < gb[best]) best = k;
        for (int32_t k = 0; k < C; k++) c[k] = k == best;
    } else { /* n db_k = sum_i p_ik - c_k, sum_i p_ik ~ n / C */
        for (int32_t k = 0; k < C; k++) c[k] = (double)n / C - n * gb[k];
    }
    /* largest remainders: counts >= 0 summing to n */
    int32_t tot = 0;
    for (int32_t k = 0; k < C; k++) {
        if (c[k] < 0) c[k] = 0;
        ci[k] = (int32_t)floor(c[k]);
        tot += ci[k];
    }
    while (tot > n) { /* too many: take from the smallest remainders of non-zero counts */
        int32_t w = -1;
        for (int32_t k = 0; k < C; k++)
            if (ci[k] > 0 && (w < 0 || c[k] - ci[k] < c[w] - ci[w])) w = k;
        ci[w]--;
        tot--;
    }
    while (tot < n) {
        int32_t w = 0;
        for (int32_t k = 1; k < C; k++)
            if (c[k] - ci[k] > c[w] - ci[w]) w = k;
        ci[w]++;
        c[w] = ci[w]; /* remainder used */
        tot++;
    }
    int32_t r = 0;
    for (int32_t k = 0; k < C; k++)
        for (int32_t j = 0; j < ci[k]; j++) labels[r++] = k;
    free(c);
    free(ci);
}

/* ---- optimisation attack --------------------------------------------------------------- */

/* Total variation of side x side images (smoothed absolute differences), mean over pixels;
 * adds weight * dTV/dx to xbar. */
static double tv_add(const double *x, int32_t n, int32_t side, double weight, double *xbar)
{
    const double eps = 1e-6, s = weight / ((double)side * side);
    double tv = 0;
    for (int32_t i = 0; i < n; i++) {
        const double *xi = x + (size_t)i * side * side;
        double *bi = xbar + (size_t)i * side * side;
        for (int32_t r = 0; r < side; r++)
            for (int32_t c = 0; c < side; c++) {
                const int32_t p = r * side + c;
                if (c + 1 < side) {
                    const double dd = xi[p + 1] - xi[p], a = sqrt(dd * dd + eps);
                    tv += a;
                    bi[p + 1] += s * dd / a;
                    bi[p] -= s * dd / a;
                }
                if (r + 1 < side) {
                    const double dd = xi[p + side] - xi[p], a = sqrt(dd * dd + eps);
                    tv += a;
                    bi[p + side] += s * dd / a;
                    bi[p] -= s * dd / a;
                }
            }
    }
    return s * tv;
}

/* Loss and gradient of the matching objective at x (fixed labels): the matching loss plus the
 * TV prior; gx[nd]. NAN when the dummy batch's loss is not finite. */
static double dlg_eval(const model_t *m, leakage_net *net, const double *t, const uint8_t *mask, int32_t n,
                       const leakage_dlg_opts *o, const int32_t *labels, const double *x, double *g, double *v,
                       double *gx)
{
    if (!isfinite(leakage_net_grad(net, x, labels, NULL, n, g))) return NAN;
    double f = leakage_match(o->loss, g, t, mask, m->nparams, v);
    leakage_net_dgrad(net, v, gx, NULL);
    if (o->side > 0 && o->tv > 0) f += tv_add(x, n, o->side, o->tv, gx);
    return f;
}

/* Projected L-BFGS (history 10, Armijo backtracking, the box by projection with the gradient
 * of active bounds zeroed): at most o->iters loss evaluations. x in: the start, out: the best. */
static fh_status dlg_lbfgs(const model_t *m, leakage_net *net, const double *t, const uint8_t *mask, int32_t n,
                           const leakage_dlg_opts *o, const int32_t *labels, double *x, double *best_loss)
{
    enum { H = 10 };
    const size_t nd = (size_t)n * m->in;
    const int box = o->hi > o->lo;
    double *g = malloc((size_t)m->nparams * sizeof *g), *v = malloc((size_t)m->nparams * sizeof *v);
    double *gx = malloc(nd * sizeof *gx), *gn = malloc(nd * sizeof *gn), *xn = malloc(nd * sizeof *xn);
    double *dir = malloc(nd * sizeof *dir), *S = malloc(H * nd * sizeof *S), *Y = malloc(H * nd * sizeof *Y);
    double rho[H], al[H];
    fh_status st = FH_OK;
    if (!g || !v || !gx || !gn || !xn || !dir || !S || !Y) {
        st = fh_error_set(FH_ENOMEM, "out of memory for the leakage attack");
        goto out;
    }
    double f = dlg_eval(m, net, t, mask, n, o, labels, x, g, v, gx);
    if (!isfinite(f)) {
        st = fh_error_set(FH_EINPUT, "gradient leakage: the dummy batch has a non-finite loss");
        goto out;
    }
    int32_t evals = 1, k = 0, head = 0; /* k stored pairs, the newest at head - 1 */
    while (evals < o->iters) {
        /* projected gradient: no pull through an active bound */
        for (size_t j = 0; j < nd; j++) {
            const int at_lo = box && x[j] <= o->lo && gx[j] > 0, at_hi = box && x[j] >= o->hi && gx[j] < 0;
            dir[j] = at_lo || at_hi ? 0 : -gx[j];
        }
        /* two-loop recursion: dir = -H g */
        for (int32_t i = 0; i < k; i++) {
            const int32_t c = (head - 1 - i + H) % H;
            double a = 0;
            for (size_t j = 0; j < nd; j++) a += S[c * nd + j] * dir[j];
            al[c] = rho[c] * a;
            for (size_t j = 0; j < nd; j++) dir[j] -= al[c] * Y[c * nd + j];
        }
        if (k > 0) {
            const int32_t c = (head - 1 + H) % H;
            double sy = 0, yy = 0;
            for (size_t j = 0; j < nd; j++) {
                sy += S[c * nd + j] * Y[c * nd + j];
                yy += Y[c * nd + j] * Y[c * nd + j];
            }
            for (size_t j = 0; j < nd; j++) dir[j] *= sy / yy;
        }
        for (int32_t i = k - 1; i >= 0; i--) {
            const int32_t c = (head - 1 - i + H) % H;
            double b = 0;
            for (size_t j = 0; j < nd; j++) b += Y[c * nd + j] * dir[j];
            b *= rho[c];
            for (size_t j = 0; j < nd; j++) dir[j] += S[c * nd + j] * (al[c] - b);
        }
        double slope = 0, dmax = 0;
        for (size_t j = 0; j < nd; j++) {
            if (box && ((x[j] <= o->lo && dir[j] < 0) || (x[j] >= o->hi && dir[j] > 0))) dir[j] = 0;
            slope += dir[j] * gx[j];
            dmax = fmax(dmax, fabs(dir[j]));
        }
        if (!(slope < 0)) { /* not a descent direction: restart from the gradient */
            if (k == 0) break;
            k = head = 0;
            continue;
        }
        /* first step (no curvature yet): at most o->step per coordinate */
        double a = k == 0 && dmax > 0 ? fmin(1.0, o->step / dmax) : 1.0, fn = NAN;
        int accepted = 0;
        for (int tries = 0; tries < 30 && evals < o->iters; tries++, a *= 0.5) {
            double dec = 0;
            for (size_t j = 0; j < nd; j++) {
                double z = x[j] + a * dir[j];
                if (box) z = z < o->lo ? o->lo : z > o->hi ? o->hi : z;
                xn[j] = z;
                dec += gx[j] * (z - x[j]);
            }
            fn = dlg_eval(m, net, t, mask, n, o, labels, xn, g, v, gn);
            evals++;
            if (isfinite(fn) && fn <= f + 1e-4 * dec) {
                accepted = 1;
                break;
            }
        }
        if (!accepted) { /* the loss jumps where a ReLU flips: forget the curvature, retry */
            if (k == 0) break;
            k = head = 0;
            continue;
        }
        double sy = 0;
        for (size_t j = 0; j < nd; j++) {
            S[head * nd + j] = xn[j] - x[j];
            Y[head * nd + j] = gn[j] - gx[j];
            sy += S[head * nd + j] * Y[head * nd + j];
        }
        if (sy > 1e-16) { /* keep the pair only with positive curvature */
            rho[head] = 1 / sy;
            head = (head + 1) % H;
            if (k < H) k++;
        }
        memcpy(x, xn, nd * sizeof *x);
        memcpy(gx, gn, nd * sizeof *gx);
        f = fn;
    }
    *best_loss = f; /* the iterates only go down */
out:
    free(g);
    free(v);
    free(gx);
    free(gn);
    free(xn);
    free(dir);
    free(S);
    free(Y);
    return st;
}

fh_status leakage_dlg(const model_t *m, const float *params, const double *t, const uint8_t *mask,
                      int32_t n, const leakage_dlg_opts *o, int32_t *labels, double *x,
                      double *final_loss)
{
    const int64_t P = m->nparams;
    const int32_t d = m->in, C = m->classes;
    const size_t nd = (size_t)n * d, nc = (size_t)n * C;
    leakage_net *net = leakage_net_create(m, params, n);
    if (!net) return FH_EINPUT;
    double *g = malloc((size_t)P * sizeof *g), *v = malloc((size_t)P * sizeof *v);
    double *xb = malloc(nd * sizeof *xb), *mx = calloc(nd, sizeof *mx), *vx = calloc(nd, sizeof *vx);
    double *best = malloc(nd * sizeof *best);
    double *lg = calloc(nc, sizeof *lg), *ys = malloc(nc * sizeof *ys), *yb = malloc(nc * sizeof *yb);
    double *ml = calloc(nc, sizeof *ml), *vl = calloc(nc, sizeof *vl);
    fh_status st = FH_OK;
    if (!g || !v || !xb || !mx || !vx || !best || !lg || !ys || !yb || !ml || !vl) {
        st = fh_error_set(FH_ENOMEM, "out of memory for the leakage attack");
        goto done;
    }
    const int box = o->hi > o->lo;
    rng_t r = rng_stream(o->seed, o->id, 0, RNG_LEAKAGE);
    for (size_t j = 0; j < nd; j++) x[j] = box ? o->lo + (o->hi - o->lo) * rng_uniform(&r) : rng_normal(&r);
    if (o->joint_labels)
        for (size_t j = 0; j < nc; j++) lg[j] = rng_normal(&r);
    if (o->lbfgs) {
        if (o->joint_labels) {
            st = fh_error_set(FH_EINPUT, "gradient leakage: L-BFGS optimises the inputs with fixed labels "
                                         "(expected labels idlg or true, not joint)");
            goto done;
        }
        st = dlg_lbfgs(m, net, t, mask, n, o, labels, x, final_loss ? final_loss : &(double){0});
        goto done;
    }
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    double b1t = 1, b2t = 1, best_loss = INFINITY, loss = NAN;
    memcpy(best, x, nd * sizeof *best);
    for (int32_t it = 0; it < o->iters; it++) {
        if (o->joint_labels)
            for (int32_t i = 0; i < n; i++) { /* ys = softmax(lg) */
                const double *li = lg + (size_t)i * C;
                double *yi = ys + (size_t)i * C, mxl = li[0], s = 0;
                for (int32_t k = 1; k < C; k++) mxl = li[k] > mxl ? li[k] : mxl;
                for (int32_t k = 0; k < C; k++) s += (yi[k] = exp(li[k] - mxl));
                for (int32_t k = 0; k < C; k++) yi[k] /= s;
            }
        const double l0 = leakage_net_grad(net, x, labels, o->joint_labels ? ys : NULL, n, g);
        if (!isfinite(l0)) {
            st = fh_error_set(FH_EINPUT, "gradient leakage: the dummy batch has a non-finite loss");
            goto done;
        }
        loss = leakage_match(o->loss, g, t, mask, P, v);
        leakage_net_dgrad(net, v, xb, o->joint_labels ? yb : NULL);
        if (o->side > 0 && o->tv > 0) loss += tv_add(x, n, o->side, o->tv, xb);
        if (loss < best_loss) {
            best_loss = loss;
            memcpy(best, x, nd * sizeof *best);
        }
        /* step size: Geiping et al.'s schedule, x0.1 at 3/8, 5/8, 7/8 of the iterations */
        double lr = o->step;
        if (it >= 3 * o->iters / 8) lr *= 0.1;
        if (it >= 5 * o->iters / 8) lr *= 0.1;
        if (it >= 7 * o->iters / 8) lr *= 0.1;
        b1t *= b1;
        b2t *= b2;
        for (size_t j = 0; j < nd; j++) {
            mx[j] = b1 * mx[j] + (1 - b1) * xb[j];
            vx[j] = b2 * vx[j] + (1 - b2) * xb[j] * xb[j];
            x[j] -= lr * (mx[j] / (1 - b1t)) / (sqrt(vx[j] / (1 - b2t)) + eps);
            if (box) x[j] = x[j] < o->lo ? o->lo : x[j] > o->hi ? o->hi : x[j];
        }
        if (o->joint_labels) {
            for (int32_t i = 0; i < n; i++) { /* through the softmax of the label logits */
                const double *yi = ys + (size_t)i * C;
                double *bi = yb + (size_t)i * C, s = 0;
                for (int32_t k = 0; k < C; k++) s += bi[k] * yi[k];
                for (int32_t k = 0; k < C; k++) bi[k] = yi[k] * (bi[k] - s);
            }
            for (size_t j = 0; j < nc; j++) {
                ml[j] = b1 * ml[j] + (1 - b1) * yb[j];
                vl[j] = b2 * vl[j] + (1 - b2) * yb[j] * yb[j];
                lg[j] -= lr * (ml[j] / (1 - b1t)) / (sqrt(vl[j] / (1 - b2t)) + eps);
            }
        }
    }
    /* the last iterate's loss is checked too */
    if (isfinite(leakage_net_grad(net, x, labels, o->joint_labels ? ys : NULL, n, g))) {
        double l = leakage_match(o->loss, g, t, mask, P, v);
        if (o->side > 0 && o->tv > 0) {
            memset(xb, 0, nd * sizeof *xb);
            l += tv_add(x, n, o->side, o->tv, xb);
        }
        if (l < best_loss) {
            best_loss = l;
            memcpy(best, x, nd * sizeof *best);
        }
    }
    memcpy(x, best, nd * sizeof *x);
    if (o->joint_labels)
        for (int32_t i = 0; i < n; i++) {
            int32_t a = 0;
            for (int32_t k = 1; k < C; k++)
                if (lg[(size_t)i * C + k] > lg[(size_t)i * C + a]) a = k;
            labels[i] = a;
        }
    if (final_loss) *final_loss = best_loss;
done:
    leakage_net_free(net);
    free(g);
    free(v);
    free(xb);
    free(mx);
    free(vx);
    free(best);
    free(lg);
    free(ys);
    free(yb);
    free(ml);
    free(vl);
    return st;
}

/* ---- metrics ----------------------------------------------------------------------------- */

double leakage_mse(const double *a, const double *b, int64_t d)
{
    double s = 0;
    for (int64_t i = 0; i < d; i++) {
        const double e = a[i] - b[i];
        s += e * e;
    }
    return d > 0 ? s / (double)d : 0;
}

double leakage_psnr(double mse)
{
    if (!(mse > 1e-10)) return 99.0;
    return 10.0 * log10(1.0 / mse);
}

double leakage_ssim(const double *a, const double *b, int32_t side)
{
    const int32_t w = 7;
    if (side < w) return NAN;
    const double C1 = 0.01 * 0.01, C2 = 0.03 * 0.03, np = w * w;
    double tot = 0;
    int64_t cnt = 0;
    for (int32_t r = 0; r + w <= side; r++)
        for (int32_t c = 0; c + w <= side; c++) {
            double ma = 0, mb = 0, saa = 0, sbb = 0, sab = 0;
            for (int32_t i = 0; i < w; i++)
                for (int32_t j = 0; j < w; j++) {
                    const double u = a[(r + i) * side + c + j], v = b[(r + i) * side + c + j];
                    ma += u;
                    mb += v;
                    saa += u * u;
                    sbb += v * v;
                    sab += u * v;
                }
            ma /= np;
            mb /= np;
            /* sample covariances (n - 1), as skimage's default */
            const double va = (saa - np * ma * ma) / (np - 1), vb = (sbb - np * mb * mb) / (np - 1);
            const double cab = (sab - np * ma * mb) / (np - 1);
            tot += ((2 * ma * mb + C1) * (2 * cab + C2)) / ((ma * ma + mb * mb + C1) * (va + vb + C2));
            cnt++;
        }
    return tot / (double)cnt;
}

/* ---- PNG ------------------------------------------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static int png_chunk(FILE *f, const char *type, const unsigned char *data, uint32_t len)
{
    unsigned char hdr[8];
    put32(hdr, len);
    memcpy(hdr + 4, type, 4);
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32(crc, (const Bytef *)type, 4);
    if (len) crc = crc32(crc, data, len);
    unsigned char tail[4];
    put32(tail, (uint32_t)crc);
    return fwrite(hdr, 1, 8, f) == 8 && (len == 0 || fwrite(data, 1, len, f) == len) &&
           fwrite(tail, 1, 4, f) == 4;
}

fh_status leakage_png_write(const char *path, int32_t w, int32_t h, const double *pix)
{
    if (w < 1 || h < 1) return fh_error_set(FH_EINPUT, "%s: empty image", path);
    const size_t raw_n = (size_t)h * ((size_t)w + 1);
    unsigned char *raw = malloc(raw_n);
    uLongf zn = compressBound((uLong)raw_n);
    unsigned char *z = malloc(zn);
    if (!raw || !z) {
        free(raw);
        free(z);
        return fh_error_set(FH_ENOMEM, "out of memory for %s", path);
    }
    for (int32_t r = 0; r < h; r++) {
        unsigned char *row = raw + (size_t)r * ((size_t)w + 1);
        row[0] = 0; /* filter: none */
        for (int32_t c = 0; c < w; c++) {
            double v = pix[(size_t)r * w + c];
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            if (v != v) v = 0;
            row[1 + c] = (unsigned char)lround(v * 255.0);
        }
    }
    fh_status st = FH_OK;
    if (compress2(z, &zn, raw, (uLong)raw_n, 9) != Z_OK) {
        st = fh_error_set(FH_EIO, "%s: zlib compress failed", path);
    } else {
        FILE *f = fopen(path, "wb");
        unsigned char ihdr[13];
        put32(ihdr, (uint32_t)w);
        put32(ihdr + 4, (uint32_t)h);
        ihdr[8] = 8;  /* bit depth */
        ihdr[9] = 0;  /* grayscale */
        ihdr[10] = ihdr[11] = ihdr[12] = 0;
        static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        int ok = f && fwrite(sig, 1, 8, f) == 8 && png_chunk(f, "IHDR", ihdr, 13) &&
                 png_chunk(f, "IDAT", z, (uint32_t)zn) && png_chunk(f, "IEND", NULL, 0);
        if (f && fclose(f) != 0) ok = 0;
        if (!ok) st = fh_error_set(FH_EIO, "%s: cannot write the PNG", path);
    }
    free(raw);
    free(z);
    return st;
}
