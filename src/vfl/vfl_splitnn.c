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
#include "fedhpc/io.h"
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

static double top_grad(const double *top, int32_t H2, const double *s, int64_t n, const int32_t *y, const uint8_t *test,
                       double *z, double *delta, double *g, double *r, int32_t *ybuf, double *zbuf, double *auc);

/* The top model at A: s[n, H2] in place -> logits z[n]; loss and metrics; delta[ntr, H2]; update
 * (one gradient step of lr, top_grad's gradient). */
static double top_step(double *top, int32_t H2, const double *s, int64_t n, const int32_t *y, const uint8_t *test,
                       double lr, int update, double *z, double *delta, double *auc, int32_t *ybuf, double *zbuf,
                       double *r)
{
    if (!update) return top_grad(top, H2, s, n, y, test, z, delta, NULL, r, ybuf, zbuf, auc);
    double *g = calloc((size_t)top_size(H2), sizeof *g);
    if (!g) return NAN;
    const double loss = top_grad(top, H2, s, n, y, test, z, delta, g, r, ybuf, zbuf, auc);
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
    FILE *mf = NULL;
    if (st == FH_OK) st = vfl_run_begin(c, o, me, pd->tag, n, w, nw, &start, &mf);
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

/* ---- federated transfer learning (Liu et al. 2020), two parties ------------------------------ */
/* Both parties' bottom models map their features into one space R^H2; the top model phi at A
 * scores either representation. On the common training rows:
 *   L = l(phi(a_A), y) + l(phi(a_B), y) + gamma * mean_i |a_A,i - a_B,i|^2 / H2
 * B's customers that A lacks are then scored by B with phi(f_B(x_B)) (A sends phi at the end). */

/* forward of phi on s[n, H2]: logits z; over the train rows: mean loss, delta (dL/ds, scaled by
 * 1/ntr) and the top gradient added to g */
static double top_grad(const double *top, int32_t H2, const double *s, int64_t n, const int32_t *y, const uint8_t *test,
                       double *z, double *delta, double *g, double *r, int32_t *ybuf, double *zbuf, double *auc)
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
    if (auc) *auc = nte ? vfl_auc(zbuf, ybuf, nte) : NAN;
    for (int64_t i = 0; i < n; i++)
        if (!test[i]) { zbuf[ntr] = z[i]; ybuf[ntr++] = y[i]; }
    const double loss = vfl_logloss(zbuf, ybuf, ntr, r);
    int64_t a = 0;
    for (int64_t i = 0; g && i < n; i++) {
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
    return loss;
}


/* B's evaluation rows: its customers A lacks, with the labels of the evaluation file (never read
 * by A; it stands for the ground truth that a deployment does not have). half[i] = 1: evaluation
 * half, 0: the half the centralized oracle may train on. */
static fh_status ftl_b_only(const vfl_opts *o, const vfl_party_data *pb, const uint8_t *in_common, int64_t **rows,
                            int32_t **y, uint8_t **half, int64_t *m)
{
    char path[2100];
    snprintf(path, sizeof path, "%s", o->data);
    char *dot = strrchr(path, '.');
    if (dot && !strcmp(dot, ".h5")) *dot = 0;
    strncat(path, ".eval.h5", sizeof path - strlen(path) - 1);
    vfl_party_data ev;
    FH_TRY(vfl_party_read(path, &ev));
    fh_status st = ev.tag == pb->tag ? FH_OK : fh_error_set(FH_EINPUT, "%s: from another prepare run", path);
    *rows = calloc((size_t)(pb->rows ? pb->rows : 1), sizeof **rows);
    *y = calloc((size_t)(pb->rows ? pb->rows : 1), sizeof **y);
    *half = calloc((size_t)(pb->rows ? pb->rows : 1), 1);
    if (st == FH_OK && (!*rows || !*y || !*half)) st = fh_error_set(FH_ENOMEM, "out of memory");
    int64_t k = 0;
    for (int64_t i = 0; st == FH_OK && i < pb->rows; i++) {
        if (in_common[i]) continue;
        for (int64_t j = 0; j < ev.rows; j++) /* the evaluation file is small */
            if (!strcmp(ev.ids[j], pb->ids[i])) {
                (*rows)[k] = i;
                (*y)[k] = ev.y[j];
                (*half)[k] = ev.test[j];
                k++;
                break;
            }
    }
    *m = k;
    vfl_party_free(&ev);
    return st;
}

/* train f + phi on rows (test[i] = 1: evaluation only) of one party's x; returns the final AUC */
static fh_status train_single(const vfl_opts *o, const double *x, int32_t d, const int64_t *rows, const int32_t *y,
                              const uint8_t *test, int64_t n, double *auc)
{
    const int32_t H = o->hidden, H2 = o->hidden;
    const int64_t nb = bottom_size(d, H, H2);
    double *w = calloc((size_t)(nb + top_size(H2)), sizeof *w), *gr = calloc((size_t)nb, sizeof *gr);
    bufs_t b;
    memset(&b, 0, sizeof b);
    fh_status st = w && gr ? bufs_alloc(&b, n, H, H2) : fh_error_set(FH_ENOMEM, "out of memory");
    bottom_t m;
    if (st == FH_OK) {
        bottom_view(&m, d, H, H2, w, gr);
        bottom_init(&m, 2, o->seed, 1);
        top_init(w + nb, H2, o->seed);
    }
    for (int64_t s = 0; st == FH_OK && s <= o->steps; s++) {
        bottom_forward(&m, x, rows, d, 0, n, b.pre, b.s);
        top_step(w + nb, H2, b.s, n, y, test, o->lr, s < o->steps, b.z, b.delta, auc, b.ybuf, b.zbuf, b.r);
        if (s < o->steps) bottom_backward(&m, x, rows, d, 0, n, test, b.pre, b.delta, o->lr);
    }
    bufs_free(&b);
    free(w);
    free(gr);
    return st;
}

fh_status vfl_ftl_run(const comm_t *c, const vfl_opts *o, const vfl_party_data *pd, const int64_t *rows, int64_t n,
                      const uint8_t *test, vfl_result *res)
{
    const int me = c->rank < 2 ? c->rank : -1;
    const int32_t H = o->hidden, H2 = o->hidden, d = me >= 0 ? pd->d : 0;
    fh_status st = o->parties == 2 ? FH_OK : fh_error_set(FH_EINPUT, "vertical --model ftl: exactly 2 parties (--parties 2)");
    FH_TRY(comm_agree(c, st));
    int64_t ntr = 0;
    for (int64_t i = 0; i < n; i++) ntr += !test[i];
    const int64_t nb = me >= 0 ? bottom_size(d, H, H2) : 0, nt = top_size(H2), nw = nb + (me == 0 ? nt : 0);
    double *w = calloc((size_t)(nw + nt), sizeof *w), *gr = calloc((size_t)(nb ? nb : 1), sizeof *gr);
    double *gt = calloc((size_t)nt, sizeof *gt), *aB = calloc((size_t)(n ? n : 1) * (size_t)H2, sizeof *aB);
    double *dB = calloc((size_t)(n ? n : 1) * (size_t)H2, sizeof *dB), *zB = calloc((size_t)(n ? n : 1), sizeof *zB);
    int64_t *q = calloc((size_t)(n ? n : 1) * (size_t)H2, sizeof *q);
    int32_t *yc = calloc((size_t)(n ? n : 1), sizeof *yc);
    bufs_t b;
    memset(&b, 0, sizeof b);
    if (!w || !gr || !gt || !aB || !dB || !zB || !q || !yc) st = fh_error_set(FH_ENOMEM, "out of memory");
    if (st == FH_OK && me >= 0) st = bufs_alloc(&b, n, H, H2);
    bottom_t m;
    memset(&m, 0, sizeof m);
    if (st == FH_OK && me >= 0) {
        bottom_view(&m, d, H, H2, w, gr);
        bottom_init(&m, 2, o->seed, (uint64_t)me);
        if (me == 0) top_init(w + nb, H2, o->seed);
        if (me == 0)
            for (int64_t i = 0; i < n; i++) yc[i] = pd->y[rows[i]];
    }
    st = comm_agree(c, st);
    char path[2100];
    FILE *mf = NULL;
    if (st == FH_OK && me == 0) {
        snprintf(path, sizeof path, "%s/metrics.csv", o->out_dir);
        mf = fopen(path, "w");
        if (!mf) st = fh_error_set(FH_EIO, "%s: cannot write", path);
        else fprintf(mf, "step,loss,test_auc,test_auc_b\n");
    }
    st = comm_agree(c, st);
    const int64_t na = n * H2;
    double t0 = fh_wtime();
    for (int64_t t = 0; st == FH_OK && t <= o->steps; t++) {
        if (me >= 0) bottom_forward(&m, pd->x, rows, d, 0, n, b.pre, b.a);
        if (me == 1) {
            for (int64_t i = 0; i < na; i++) q[i] = llround(b.a[i] * A_SCALE);
            st = comm_send_bytes(c, q, na * 8, 0, TAG_SNN + 2);
        } else if (me == 0) {
            st = comm_recv_bytes(c, q, na * 8, 1, TAG_SNN + 2);
            for (int64_t i = 0; i < na; i++) aB[i] = (double)q[i] / A_SCALE;
            memset(gt, 0, (size_t)nt * sizeof *gt);
            double aucA = NAN, aucB = NAN;
            const int upd = t < o->steps;
            double la = top_grad(w + nb, H2, b.a, n, yc, test, b.z, b.delta, upd ? gt : NULL, b.r, b.ybuf, b.zbuf, &aucA);
            double lb = top_grad(w + nb, H2, aB, n, yc, test, zB, dB, upd ? gt : NULL, b.r, b.ybuf, b.zbuf, &aucB);
            double al = 0;
            int64_t a = 0;
            for (int64_t i = 0; i < n; i++) {
                if (test[i]) continue;
                for (int32_t k = 0; k < H2; k++) {
                    const double df = b.a[i * H2 + k] - aB[i * H2 + k];
                    al += df * df;
                    if (upd) {
                        b.delta[a * H2 + k] += 2 * o->ftl_gamma * df / ((double)ntr * H2);
                        dB[a * H2 + k] -= 2 * o->ftl_gamma * df / ((double)ntr * H2);
                    }
                }
                a++;
            }
            res->loss = la + lb + o->ftl_gamma * al / ((double)ntr * H2);
            res->test_auc = aucA;
            fprintf(mf, "%lld,%.17g,%.17g,%.17g\n", (long long)t, res->loss, aucA, aucB);
            if (upd)
                for (int64_t k = 0; k < nt; k++) w[nb + k] -= o->lr * gt[k];
        }
        st = comm_agree(c, st);
        if (st != FH_OK || t == o->steps) break;
        if (me == 0) st = comm_send_bytes(c, dB, ntr * H2 * 8, 1, TAG_SNN + 3);
        else if (me == 1) st = comm_recv_bytes(c, b.delta, ntr * H2 * 8, 0, TAG_SNN + 3);
        if (st == FH_OK && me >= 0) bottom_backward(&m, pd->x, rows, d, 0, n, test, b.pre, b.delta, o->lr);
        st = comm_agree(c, st);
    }
    res->sec_per_step = o->steps ? (fh_wtime() - t0) / o->steps : 0;
    if (mf) fclose(mf);
    /* phi to B, which scores its own customers that A lacks */
    if (st == FH_OK && me == 0) st = comm_send_bytes(c, w + nb, nt * 8, 1, TAG_SNN + 4);
    if (st == FH_OK && me == 1) {
        double *phi = w + nb;
        st = comm_recv_bytes(c, phi, nt * 8, 0, TAG_SNN + 4);
        uint8_t *inc = calloc((size_t)(pd->rows ? pd->rows : 1), 1);
        int64_t *br = NULL, mb = 0;
        int32_t *by = NULL;
        uint8_t *half = NULL;
        if (!inc) st = fh_error_set(FH_ENOMEM, "out of memory");
        for (int64_t i = 0; st == FH_OK && i < n; i++) inc[rows[i]] = 1;
        if (st == FH_OK) st = ftl_b_only(o, pd, inc, &br, &by, &half, &mb);
        bufs_t e;
        memset(&e, 0, sizeof e);
        if (st == FH_OK) st = bufs_alloc(&e, mb, H, H2);
        double auc = NAN;
        if (st == FH_OK) {
            bottom_forward(&m, pd->x, br, d, 0, mb, e.pre, e.a);
            top_grad(phi, H2, e.a, mb, by, half, e.z, e.delta, NULL, e.r, e.ybuf, e.zbuf, &auc);
            int64_t ne = 0;
            for (int64_t i = 0; i < mb; i++) ne += half[i];
            snprintf(path, sizeof path, "%s/ftl.csv", o->out_dir);
            FILE *f = fopen(path, "w");
            if (!f) st = fh_error_set(FH_EIO, "%s: cannot write", path);
            else {
                fprintf(f, "method,b_only_eval_customers,auc\nftl,%lld,%.17g\n", (long long)ne, auc);
                fclose(f);
            }
        }
        bufs_free(&e);
        free(inc); free(br); free(by); free(half);
    }
    st = comm_agree(c, st);
    bufs_free(&b);
    free(w); free(gr); free(gt); free(aB); free(dB); free(zB); free(q); free(yc);
    return st;
}

/* The two baselines of the FTL table, on one process: "B alone" (B's features, the labels of the
 * common training customers) and "centralized" (B's features, those labels plus the labels of
 * the training half of B's own customers), both evaluated on the evaluation half of B's own
 * customers, like FTL. */
fh_status vfl_ftl_central(const vfl_opts *o, vfl_result *res)
{
    char path[2100];
    vfl_party_data pa, pb;
    io_data_party_path(o->data, 0, path, sizeof path);
    FH_TRY(vfl_party_read(path, &pa));
    io_data_party_path(o->data, 1, path, sizeof path);
    fh_status st = vfl_party_read(path, &pb);
    if (st != FH_OK) { vfl_party_free(&pa); return st; }
    /* the common customers (plain join) and their labels at B's rows */
    uint8_t *inc = calloc((size_t)pb.rows, 1);
    int32_t *yb = calloc((size_t)pb.rows, sizeof *yb);
    uint8_t *trn = calloc((size_t)pb.rows, 1);
    size_t *all = calloc((size_t)pa.rows, sizeof *all);
    int64_t *sa = calloc((size_t)pa.rows, sizeof *sa);
    if (!inc || !yb || !trn || !all || !sa) st = fh_error_set(FH_ENOMEM, "out of memory");
    for (int64_t i = 0; st == FH_OK && i < pa.rows; i++) all[i] = (size_t)i;
    if (st == FH_OK) vfl_sort_rows(&pa, all, (size_t)pa.rows, sa);
    for (int64_t i = 0; st == FH_OK && i < pb.rows; i++) {
        int64_t lo = 0, hi = pa.rows - 1;
        while (lo <= hi) {
            int64_t mid = (lo + hi) / 2;
            int cmp = strcmp(pa.ids[sa[mid]], pb.ids[i]);
            if (!cmp) {
                inc[i] = 1;
                yb[i] = pa.y[sa[mid]];
                trn[i] = !pa.test[sa[mid]];
                break;
            }
            if (cmp < 0) lo = mid + 1; else hi = mid - 1;
        }
    }
    int64_t *br = NULL, mb = 0;
    int32_t *by = NULL;
    uint8_t *half = NULL;
    if (st == FH_OK) st = ftl_b_only(o, &pb, inc, &br, &by, &half, &mb);
    int64_t *rows = calloc((size_t)(pb.rows + 1), sizeof *rows);
    int32_t *y = calloc((size_t)(pb.rows + 1), sizeof *y);
    uint8_t *tst = calloc((size_t)(pb.rows + 1), 1);
    if (st == FH_OK && (!rows || !y || !tst)) st = fh_error_set(FH_ENOMEM, "out of memory");
    FILE *f = NULL;
    if (st == FH_OK) {
        snprintf(path, sizeof path, "%s/ftl_baselines.csv", o->out_dir);
        f = fopen(path, "w");
        if (!f) st = fh_error_set(FH_EIO, "%s: cannot write", path);
        else fprintf(f, "method,b_only_eval_customers,auc\n");
    }
    for (int variant = 0; st == FH_OK && variant < 2; variant++) {
        int64_t n = 0, ne = 0;
        for (int64_t i = 0; i < pb.rows; i++)
            if (inc[i] && trn[i]) { rows[n] = i; y[n] = yb[i]; tst[n++] = 0; }
        for (int64_t k = 0; k < mb; k++) {
            if (!half[k] && variant == 0) continue;
            rows[n] = br[k]; y[n] = by[k]; tst[n++] = half[k];
            ne += half[k];
        }
        double auc = NAN;
        st = train_single(o, pb.x, pb.d, rows, y, tst, n, &auc);
        fprintf(f, "%s,%lld,%.17g\n", variant ? "centralized" : "b_alone", (long long)ne, auc);
        res->test_auc = auc;
    }
    if (f) fclose(f);
    free(inc); free(yb); free(trn); free(all); free(sa); free(br); free(by); free(half); free(rows); free(y); free(tst);
    vfl_party_free(&pa);
    vfl_party_free(&pb);
    return st;
}
