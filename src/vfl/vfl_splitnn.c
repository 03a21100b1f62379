/* Split neural network (docs/vertical.md).
 *
 * Party p (every party, the label party included) holds a bottom model and its block of the
 * interactive layer:  h_p = relu(X_p W_p + b_p)   [n, H],   a_p = h_p V_p   [n, H2].
 * The label party (A) holds the top model:  s = c + sum_p a_p,  g = relu(s),  logit = u0 + g u.
 * Forward: each party p >= 1 sends a_p to A in 2^-32 fixed point (int64), under pairwise masks
 * when there are K > 2 parties (A learns only the sum of the non-label parties' a_p).
 * Backward: A sends delta = dL/ds (train rows, [ntr, H2], doubles) to every party p >= 1, which
 * updates W_p, b_p, V_p. Full-batch gradient descent, the same for the centralized reference.
 */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/rng.h"
#include "vfl_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG_SNN 1700
#define A_SCALE 4294967296.0

typedef struct {
    int32_t d, H, H2;
    double *W, *b, *V;        /* views into the party's parameter vector */
    double *gW, *gb, *gV;     /* gradients (same layout)                  */
} bottom_t;

static int64_t bottom_size(int32_t d, int32_t H, int32_t H2) { return (int64_t)d * H + H + (int64_t)H * H2; }
static int64_t top_size(int32_t H2) { return 2 * (int64_t)H2 + 1; }

static void bottom_view(bottom_t *m, int32_t d, int32_t H, int32_t H2, double *w, double *g)
{
    m->d = d; m->H = H; m->H2 = H2;
    m->W = w; m->b = w + (int64_t)d * H; m->V = m->b + H;
    m->gW = g; m->gb = g + (int64_t)d * H; m->gV = m->gb + H;
}

static void bottom_init(bottom_t *m, int K, uint64_t seed, uint64_t id)
{
    rng_t r = rng_stream(seed, id, 0, RNG_INIT);
    const double sw = sqrt(2.0 / m->d), sv = sqrt(2.0 / ((double)m->H * K));
    for (int64_t i = 0; i < (int64_t)m->d * m->H; i++) m->W[i] = sw * rng_normal(&r);
    for (int32_t k = 0; k < m->H; k++) m->b[k] = 0;
    for (int64_t i = 0; i < (int64_t)m->H * m->H2; i++) m->V[i] = sv * rng_normal(&r);
}

static void top_init(double *top, int32_t H2, uint64_t seed)
{
    rng_t r = rng_stream(seed, 1000, 0, RNG_INIT);
    for (int32_t m = 0; m < H2; m++) top[m] = 0;                              /* c  */
    for (int32_t m = 0; m < H2; m++) top[H2 + m] = sqrt(1.0 / H2) * rng_normal(&r); /* u  */
    top[2 * H2] = 0;                                                           /* u0 */
}

/* rows i < n: x row (rows ? rows[i] : i), stride ld, columns [off, off + d) */
static inline const double *xrow(const double *x, const int64_t *rows, int64_t ld, int64_t off, int64_t i)
{
    return x + (rows ? rows[i] : i) * ld + off;
}

/* pre[n, H], a[n, H2] (a is overwritten) */
static void bottom_forward(const bottom_t *m, const double *x, const int64_t *rows, int64_t ld, int64_t off, int64_t n,
                           double *pre, double *a)
{
    const int32_t d = m->d, H = m->H, H2 = m->H2;
    for (int64_t i = 0; i < n; i++) {
        const double *xi = xrow(x, rows, ld, off, i);
        double *p = pre + i * H, *ai = a + i * H2;
        for (int32_t k = 0; k < H; k++) p[k] = m->b[k];
        for (int32_t j = 0; j < d; j++) {
            const double v = xi[j];
            if (v == 0) continue;
            const double *wj = m->W + (int64_t)j * H;
            for (int32_t k = 0; k < H; k++) p[k] += v * wj[k];
        }
        for (int32_t q = 0; q < H2; q++) ai[q] = 0;
        for (int32_t k = 0; k < H; k++) {
            const double h = p[k] > 0 ? p[k] : 0;
            if (h == 0) continue;
            const double *vk = m->V + (int64_t)k * H2;
            for (int32_t q = 0; q < H2; q++) ai[q] += h * vk[q];
        }
    }
}

/* gradients from delta[ntr, H2] of the train rows (test[i] == 0, in order), then the update */
static void bottom_backward(bottom_t *m, const double *x, const int64_t *rows, int64_t ld, int64_t off, int64_t n,
                            const uint8_t *test, const double *pre, const double *delta, double lr)
{
    const int32_t d = m->d, H = m->H, H2 = m->H2;
    const int64_t nb = bottom_size(d, H, H2);
    memset(m->gW, 0, (size_t)nb * sizeof *m->gW);
    double *dp = malloc((size_t)H * sizeof *dp);
    if (!dp) return;
    int64_t a = 0;
    for (int64_t i = 0; i < n; i++) {
        if (test[i]) continue;
        const double *xi = xrow(x, rows, ld, off, i), *p = pre + i * H, *de = delta + a * H2;
        for (int32_t k = 0; k < H; k++) {
            const double h = p[k] > 0 ? p[k] : 0;
            double s = 0;
            const double *vk = m->V + (int64_t)k * H2;
            double *gvk = m->gV + (int64_t)k * H2;
            for (int32_t q = 0; q < H2; q++) {
                s += de[q] * vk[q];
                gvk[q] += h * de[q];
            }
            dp[k] = p[k] > 0 ? s : 0;
            m->gb[k] += dp[k];
        }
        for (int32_t j = 0; j < d; j++) {
            const double v = xi[j];
            if (v == 0) continue;
            double *gwj = m->gW + (int64_t)j * H;
            for (int32_t k = 0; k < H; k++) gwj[k] += v * dp[k];
        }
        a++;
    }
    free(dp);
    for (int64_t i = 0; i < nb; i++) m->W[i] -= lr * m->gW[i];
}

/* The top model at A: s[n, H2] in place -> logits z[n]; loss and metrics; delta[ntr, H2]; update. */
static double top_step(double *top, int32_t H2, const double *s, int64_t n, const int32_t *y, const uint8_t *test,
                       double lr, int update, double *z, double *delta, double *auc, int32_t *ybuf, double *zbuf,
                       double *r)
{
    const double *c = top, *u = top + H2;
    for (int64_t i = 0; i < n; i++) {
        double v = top[2 * H2];
        for (int32_t q = 0; q < H2; q++) {
            const double sv = s[i * H2 + q] + c[q];
            if (sv > 0) v += sv * u[q];
        }
        z[i] = v;
    }
    int64_t ntr = 0, nte = 0;
    for (int64_t i = 0; i < n; i++)
        if (test[i]) { zbuf[nte] = z[i]; ybuf[nte++] = y[i]; }
    *auc = nte ? vfl_auc(zbuf, ybuf, nte) : NAN;
    for (int64_t i = 0; i < n; i++)
        if (!test[i]) { zbuf[ntr] = z[i]; ybuf[ntr++] = y[i]; }
    const double loss = vfl_logloss(zbuf, ybuf, ntr, r);
    if (!update) return loss;
    double *g = calloc((size_t)top_size(H2), sizeof *g);
    if (!g) return NAN;
    int64_t a = 0;
    for (int64_t i = 0; i < n; i++) {
        if (test[i]) continue;
        const double dl = r[a] / (double)ntr;
        for (int32_t q = 0; q < H2; q++) {
            const double sv = s[i * H2 + q] + c[q];
            const double ds = sv > 0 ? dl * u[q] : 0;
            delta[a * H2 + q] = ds;
            g[q] += ds;
            if (sv > 0) g[H2 + q] += sv * dl;
        }
        g[2 * H2] += dl;
        a++;
    }
    for (int64_t k = 0; k < top_size(H2); k++) top[k] -= lr * g[k];
    free(g);
    return loss;
}

typedef struct {
    double *pre, *a, *s, *z, *delta, *zbuf, *r;
    int32_t *ybuf;
} bufs_t;

static fh_status bufs_alloc(bufs_t *b, int64_t n, int32_t H, int32_t H2)
{
    const size_t nn = (size_t)(n ? n : 1);
    b->pre = calloc(nn * (size_t)H, sizeof *b->pre);
    b->a = calloc(nn * (size_t)H2, sizeof *b->a);
    b->s = calloc(nn * (size_t)H2, sizeof *b->s);
    b->delta = calloc(nn * (size_t)H2, sizeof *b->delta);
    b->z = calloc(nn, sizeof *b->z);
    b->zbuf = calloc(nn, sizeof *b->zbuf);
    b->r = calloc(nn, sizeof *b->r);
    b->ybuf = calloc(nn, sizeof *b->ybuf);
    if (!b->pre || !b->a || !b->s || !b->delta || !b->z || !b->zbuf || !b->r || !b->ybuf)
        return fh_error_set(FH_ENOMEM, "out of memory");
    return FH_OK;
}

static void bufs_free(bufs_t *b)
{
    free(b->pre); free(b->a); free(b->s); free(b->delta); free(b->z); free(b->zbuf); free(b->r); free(b->ybuf);
}

fh_status vfl_splitnn_run(const comm_t *c, const vfl_opts *o, const vfl_party_data *pd, const int64_t *rows, int64_t n,
                          const uint8_t *test, vfl_result *res)
{
    const int K = o->parties, me = c->rank < K ? c->rank : -1;
    const int32_t H = o->hidden, H2 = o->hidden, d = me >= 0 ? pd->d : 0;
    fh_status st = FH_OK;
    int64_t ntr = 0;
    for (int64_t i = 0; i < n; i++) ntr += !test[i];
    const int64_t nb = me >= 0 ? bottom_size(d, H, H2) : 0, nw = nb + (me == 0 ? top_size(H2) : 0);
    double *w = calloc((size_t)(nw ? nw : 1), sizeof *w), *gr = calloc((size_t)(nb ? nb : 1), sizeof *gr);
    uint64_t *q = calloc((size_t)(n ? n : 1) * (size_t)H2, sizeof *q), *mk = calloc((size_t)(n ? n : 1) * (size_t)H2, sizeof *mk);
    uint8_t (*mkey)[crypto_kx_SESSIONKEYBYTES] = calloc((size_t)K, sizeof *mkey);
    bufs_t b;
    memset(&b, 0, sizeof b);
    if (!w || !gr || !q || !mk || !mkey) st = fh_error_set(FH_ENOMEM, "out of memory");
    if (st == FH_OK && me >= 0) st = bufs_alloc(&b, n, H, H2);
    bottom_t m;
    memset(&m, 0, sizeof m);
    if (st == FH_OK && me >= 0) {
        bottom_view(&m, d, H, H2, w, gr);
        bottom_init(&m, K, o->seed, (uint64_t)me);
        if (me == 0) top_init(w + nb, H2, o->seed);
    }
    if (st == FH_OK) st = vfl_mask_keys(c, K, mkey);
    st = comm_agree(c, st);
    char path[2100];
    int64_t start = 0;
    if (st == FH_OK && o->resume && me >= 0) {
        snprintf(path, sizeof path, "%s/party%d.ckpt.h5", o->out_dir, me);
        st = vfl_ckpt_read(path, me, pd->tag, n, &start, w, nw);
    }
    st = comm_agree(c, st);
    if (st == FH_OK) {
        double bb[2] = {me >= 0 ? (double)start : -1e300, me >= 0 ? -(double)start : -1e300};
        st = comm_allreduce_max_f64(c, bb, 2);
        if (st == FH_OK && bb[0] != -bb[1]) st = fh_error_set(FH_EINPUT, "vertical --resume: the parties' checkpoints are at different steps");
        if (st == FH_OK) start = (int64_t)bb[0];
        if (st == FH_OK && start > o->steps) st = fh_error_set(FH_EINPUT, "vertical --resume: checkpoint at step %lld, beyond --steps %d", (long long)start, o->steps);
        st = comm_agree(c, st);
    }
    FILE *mf = NULL;
    if (st == FH_OK && me == 0) {
        snprintf(path, sizeof path, "%s/metrics.csv", o->out_dir);
        mf = fopen(path, o->resume ? "a" : "w");
        if (!mf) st = fh_error_set(FH_EIO, "%s: cannot write", path);
        else if (!o->resume) fprintf(mf, "step,loss,test_auc\n");
    }
    st = comm_agree(c, st);
    const int64_t na = n * H2;
    double t0 = fh_wtime();
    int64_t done = 0;
    for (int64_t t = start; st == FH_OK && t <= o->steps; t++) {
        if (me >= 0) bottom_forward(&m, pd->x, rows, d, 0, n, b.pre, b.a);
        if (me > 0) {
            for (int64_t i = 0; i < na; i++) q[i] = (uint64_t)llround(b.a[i] * A_SCALE);
            vfl_mask_apply(K, me, mkey, t, q, mk, na);
            st = comm_send_bytes(c, q, na * 8, 0, TAG_SNN);
        } else if (me == 0) {
            uint64_t *sum = mk;
            memset(sum, 0, (size_t)na * 8);
            for (int p = 1; st == FH_OK && p < K; p++) {
                st = comm_recv_bytes(c, q, na * 8, p, TAG_SNN);
                for (int64_t i = 0; st == FH_OK && i < na; i++) sum[i] += q[i];
            }
            for (int64_t i = 0; i < na; i++) b.s[i] = b.a[i] + (double)(int64_t)sum[i] / A_SCALE;
            int32_t *y = b.ybuf; /* labels of the common rows, in order, into a scratch copy */
            int32_t *yc = malloc((size_t)(n ? n : 1) * sizeof *yc);
            if (!yc) st = fh_error_set(FH_ENOMEM, "out of memory");
            for (int64_t i = 0; yc && i < n; i++) yc[i] = pd->y[rows[i]];
            (void)y;
            if (st == FH_OK) {
                res->loss = top_step(w + nb, H2, b.s, n, yc, test, o->lr, t < o->steps, b.z, b.delta, &res->test_auc,
                                     b.ybuf, b.zbuf, b.r);
                fprintf(mf, "%lld,%.17g,%.17g\n", (long long)t, res->loss, res->test_auc);
            }
            free(yc);
        }
        st = comm_agree(c, st);
        if (st != FH_OK || t == o->steps) break;
        if (me == 0) {
            for (int p = 1; st == FH_OK && p < K; p++) st = comm_send_bytes(c, b.delta, ntr * H2 * 8, p, TAG_SNN + 1);
        } else if (me > 0) {
            st = comm_recv_bytes(c, b.delta, ntr * H2 * 8, 0, TAG_SNN + 1);
        }
        if (st == FH_OK && me >= 0) bottom_backward(&m, pd->x, rows, d, 0, n, test, b.pre, b.delta, o->lr);
        st = comm_agree(c, st);
        done++;
        if (st == FH_OK && o->ckpt_every && (t + 1) % o->ckpt_every == 0 && me >= 0) {
            snprintf(path, sizeof path, "%s/party%d.ckpt.h5", o->out_dir, me);
            st = vfl_ckpt_write(path, me, pd->tag, t + 1, n, w, nw);
        }
        st = comm_agree(c, st);
        if (o->stop_after && t + 1 == o->stop_after) break;
    }
    res->sec_per_step = done ? (fh_wtime() - t0) / (double)done : 0;
    if (mf) fclose(mf);
    if (st == FH_OK && me >= 0) {
        snprintf(path, sizeof path, "%s/party%d.model.h5", o->out_dir, me);
        st = vfl_write_vec(path, "fedhpc-vertical-model", w, nw);
    }
    st = comm_agree(c, st);
    bufs_free(&b);
    free(w); free(gr); free(q); free(mk); free(mkey);
    return st;
}

fh_status vfl_splitnn_central(const vfl_opts *o, const double *x, const int32_t *y, const uint8_t *t, int64_t n, int32_t D,
                              const int32_t *dp, vfl_result *res)
{
    /* o->joined: one bottom model over all columns (a plain MLP); else one per party's block */
    const int K = o->joined ? 1 : o->parties;
    const int32_t H = o->hidden, H2 = o->hidden;
    int32_t d[VFL_MAX_PARTIES];
    int64_t off[VFL_MAX_PARTIES], wo[VFL_MAX_PARTIES + 1];
    wo[0] = 0;
    for (int p = 0, acc = 0; p < K; p++) {
        d[p] = o->joined ? D : dp[p];
        off[p] = acc;
        acc += d[p];
        wo[p + 1] = wo[p] + bottom_size(d[p], H, H2);
    }
    const int64_t nw = wo[K] + top_size(H2);
    double *w = calloc((size_t)nw, sizeof *w), *gr = calloc((size_t)wo[K], sizeof *gr), *a2 = calloc((size_t)(n * H2), sizeof *a2);
    double *pre = calloc((size_t)(n * H) * (size_t)K, sizeof *pre);
    bufs_t b;
    memset(&b, 0, sizeof b);
    fh_status st = w && gr && a2 && pre ? bufs_alloc(&b, n, H, H2) : fh_error_set(FH_ENOMEM, "out of memory");
    bottom_t m[VFL_MAX_PARTIES];
    for (int p = 0; st == FH_OK && p < K; p++) {
        bottom_view(&m[p], d[p], H, H2, w + wo[p], gr + wo[p]);
        bottom_init(&m[p], K, o->seed, o->joined ? 100 : (uint64_t)p);
    }
    if (st == FH_OK) top_init(w + wo[K], H2, o->seed);
    char path[2100];
    snprintf(path, sizeof path, "%s/metrics.csv", o->out_dir);
    FILE *mf = st == FH_OK ? fopen(path, "w") : NULL;
    if (st == FH_OK && !mf) st = fh_error_set(FH_EIO, "%s: cannot write", path);
    if (mf) fprintf(mf, "step,loss,test_auc\n");
    int64_t ntr = 0;
    for (int64_t i = 0; i < n; i++) ntr += !t[i];
    res->n_common = n;
    res->n_train = ntr;
    res->n_test = n - ntr;
    double t0 = fh_wtime();
    for (int64_t s = 0; st == FH_OK && s <= o->steps; s++) {
        memset(b.s, 0, (size_t)(n * H2) * sizeof *b.s);
        for (int p = 0; p < K; p++) {
            bottom_forward(&m[p], x, NULL, D, off[p], n, pre + (int64_t)p * n * H, a2);
            for (int64_t i = 0; i < n * H2; i++) b.s[i] += a2[i];
        }
        res->loss = top_step(w + wo[K], H2, b.s, n, y, t, o->lr, s < o->steps, b.z, b.delta, &res->test_auc, b.ybuf,
                             b.zbuf, b.r);
        fprintf(mf, "%lld,%.17g,%.17g\n", (long long)s, res->loss, res->test_auc);
        if (s == o->steps) break;
        for (int p = 0; p < K; p++) bottom_backward(&m[p], x, NULL, D, off[p], n, t, pre + (int64_t)p * n * H, b.delta, o->lr);
    }
    res->sec_per_step = o->steps ? (fh_wtime() - t0) / o->steps : 0;
    if (mf) fclose(mf);
    if (st == FH_OK) {
        snprintf(path, sizeof path, "%s/central.model.h5", o->out_dir);
        st = vfl_write_vec(path, "fedhpc-vertical-model", w, nw);
    }
    bufs_free(&b);
    free(w); free(gr); free(a2); free(pre);
    return st;
}
