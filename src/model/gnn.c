/* LightGCN (He et al. 2020) on a client's user-item graph, BPR loss, local Adam, ranking
 * metrics (include/fedhpc/gnn.h). Pure computation: no MPI, no HDF5. Plain loops in a fixed
 * order (no threaded BLAS), so a client's result is the same bit for bit on any rank.
 */
#include "fedhpc/gnn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the model's parameter buffer ------------------------------------------------------- */
fh_status gnn_model_create(model_t *m, model_type type, int32_t in, int32_t items, const int32_t *hidden,
                           int32_t nhidden)
{
    memset(m, 0, sizeof *m);
    if (type == MODEL_GRAPHSAGE) {
        if (in != 2)
            return fh_error_set(FH_EINPUT, "graphsage: the data file has %d features per row; expected 2 (user, held-out "
                                "flag) as `fedhpc prepare movielens` writes them", in);
        if (items < 2) return fh_error_set(FH_EINPUT, "graphsage: %d items (need at least 2)", items);
        if (nhidden < 1 || nhidden > MODEL_MAX_LAYERS - 1 || !hidden || hidden[0] < 1 || hidden[0] > 4096)
            return fh_error_set(FH_EINPUT, "graphsage: [model] hidden must be the embedding dimension once per layer "
                                "(e.g. 32,32: two layers), 1 to %d layers", MODEL_MAX_LAYERS - 1);
        for (int32_t k = 1; k < nhidden; k++)
            if (hidden[k] != hidden[0])
                return fh_error_set(FH_EINPUT, "graphsage: [model] hidden: every layer has the embedding dimension "
                                    "(%d), got %d", hidden[0], hidden[k]);
        m->type = MODEL_GRAPHSAGE;
        m->in = in;
        m->classes = items;
        m->nlayers = nhidden;
        m->fan_in[0] = items;
        m->fan_out[0] = hidden[0];
        m->nparams = gnn_sage_nparams(items, hidden[0], nhidden);
        return FH_OK;
    }
    if (in != 2)
        return fh_error_set(FH_EINPUT, "lightgcn: the data file has %d features per row; expected 2 (user, held-out flag) "
                            "as `fedhpc prepare movielens` writes them", in);
    if (items < 2) return fh_error_set(FH_EINPUT, "lightgcn: %d items (need at least 2)", items);
    if (nhidden != 1 || !hidden || hidden[0] < 1 || hidden[0] > 4096)
        return fh_error_set(FH_EINPUT, "lightgcn: [model] hidden must be one embedding dimension in 1..4096");
    m->type = MODEL_LIGHTGCN;
    m->in = in;
    m->classes = items;
    m->nlayers = 1;
    m->fan_in[0] = items;
    m->fan_out[0] = hidden[0];
    m->w_off[0] = 0;
    m->b_off[0] = (int64_t)items * hidden[0];
    m->nparams = (int64_t)items * hidden[0];
    return FH_OK;
}

void gnn_init_items(const model_t *m, float *params, uint64_t seed)
{
    if (m->type == MODEL_GRAPHSAGE) {
        gnn_sage_init(params, m->classes, m->fan_out[0], m->nlayers, seed);
        return;
    }
    rng_t r = rng_stream(seed, 0, 0, RNG_INIT);
    for (int64_t j = 0; j < m->nparams; j++) params[j] = (float)(0.1 * rng_normal(&r));
}

void gnn_init_user(uint64_t seed, int32_t user, int32_t dim, float *row)
{
    rng_t r = rng_stream(seed, (uint64_t)user, 0, RNG_GNN_USER);
    for (int32_t k = 0; k < dim; k++) row[k] = (float)(0.1 * rng_normal(&r));
}

/* ---- the graph --------------------------------------------------------------------------- */
static int cmp_i32(const void *a, const void *b)
{
    const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static int32_t find_i32(const int32_t *a, int32_t n, int32_t v)
{
    int32_t lo = 0, hi = n;
    while (lo < hi) {
        const int32_t mid = lo + (hi - lo) / 2;
        if (a[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && a[lo] == v ? lo : -1;
}

void gnn_graph_free(gnn_graph *g)
{
    free(g->user); free(g->uptr); free(g->uidx); free(g->iptr); free(g->iidx);
    free(g->du); free(g->di); free(g->hptr); free(g->hidx);
    memset(g, 0, sizeof *g);
}

fh_status gnn_graph_build(gnn_graph *g, int32_t ni, const int32_t *users, const int32_t *items, const uint8_t *held,
                          int64_t n)
{
    memset(g, 0, sizeof *g);
    g->ni = ni;
    int32_t *u = malloc((size_t)(n ? n : 1) * sizeof *u);
    FH_CHECK_ALLOC(u);
    memcpy(u, users, (size_t)n * sizeof *u);
    qsort(u, (size_t)n, sizeof *u, cmp_i32);
    int32_t nu = 0;
    for (int64_t k = 0; k < n; k++)
        if (k == 0 || u[k] != u[nu - 1]) u[nu++] = u[k];
    g->nu = nu;
    g->user = u;
    g->uptr = fh_calloc((size_t)nu + 1, sizeof *g->uptr);
    g->hptr = fh_calloc((size_t)nu + 1, sizeof *g->hptr);
    g->iptr = fh_calloc((size_t)ni + 1, sizeof *g->iptr);
    g->du = fh_calloc((size_t)(nu ? nu : 1), sizeof *g->du);
    g->di = fh_calloc((size_t)ni, sizeof *g->di);
    int32_t *lu = malloc((size_t)(n ? n : 1) * sizeof *lu);
    if (!g->uptr || !g->hptr || !g->iptr || !g->du || !g->di || !lu) {
        free(lu);
        gnn_graph_free(g);
        return fh_error_set(FH_ENOMEM, "out of memory for a graph of %lld interactions", (long long)n);
    }
    for (int64_t k = 0; k < n; k++) {
        if (items[k] < 0 || items[k] >= ni) {
            free(lu);
            gnn_graph_free(g);
            return fh_error_set(FH_EINPUT, "lightgcn: item %d out of range [0, %d)", items[k], ni);
        }
        lu[k] = find_i32(g->user, nu, users[k]);
        if (held && held[k]) g->hptr[lu[k] + 1]++;
        else {
            g->uptr[lu[k] + 1]++;
            g->iptr[items[k] + 1]++;
        }
    }
    for (int32_t a = 0; a < nu; a++) {
        g->uptr[a + 1] += g->uptr[a];
        g->hptr[a + 1] += g->hptr[a];
    }
    for (int32_t i = 0; i < ni; i++) g->iptr[i + 1] += g->iptr[i];
    g->nnz = g->uptr[nu];
    g->nheld = g->hptr[nu];
    g->uidx = malloc((size_t)(g->nnz ? g->nnz : 1) * sizeof *g->uidx);
    g->iidx = malloc((size_t)(g->nnz ? g->nnz : 1) * sizeof *g->iidx);
    g->hidx = malloc((size_t)(g->nheld ? g->nheld : 1) * sizeof *g->hidx);
    int64_t *fu = malloc(((size_t)nu + 1) * sizeof *fu), *fh = malloc(((size_t)nu + 1) * sizeof *fh);
    if (!g->uidx || !g->iidx || !g->hidx || !fu || !fh) {
        free(lu); free(fu); free(fh);
        gnn_graph_free(g);
        return fh_error_set(FH_ENOMEM, "out of memory for a graph of %lld interactions", (long long)n);
    }
    memcpy(fu, g->uptr, ((size_t)nu + 1) * sizeof *fu);
    memcpy(fh, g->hptr, ((size_t)nu + 1) * sizeof *fh);
    for (int64_t k = 0; k < n; k++) {
        if (held && held[k]) g->hidx[fh[lu[k]]++] = items[k];
        else g->uidx[fu[lu[k]]++] = items[k];
    }
    free(lu); free(fu); free(fh);
    fh_status st = FH_OK;
    for (int32_t a = 0; a < nu && st == FH_OK; a++) {
        int32_t *row = g->uidx + g->uptr[a], *hr = g->hidx + g->hptr[a];
        const int64_t nr = g->uptr[a + 1] - g->uptr[a], nh = g->hptr[a + 1] - g->hptr[a];
        qsort(row, (size_t)nr, sizeof *row, cmp_i32);
        qsort(hr, (size_t)nh, sizeof *hr, cmp_i32);
        for (int64_t k = 1; k < nr && st == FH_OK; k++)
            if (row[k] == row[k - 1]) st = fh_error_set(FH_EINPUT, "lightgcn: user %d has item %d twice", g->user[a], row[k]);
        for (int64_t k = 0; k < nh && st == FH_OK; k++)
            if ((k > 0 && hr[k] == hr[k - 1]) || find_i32(row, (int32_t)nr, hr[k]) >= 0)
                st = fh_error_set(FH_EINPUT, "lightgcn: user %d has item %d twice", g->user[a], hr[k]);
        g->du[a] = nr ? (float)(1.0 / sqrt((double)nr)) : 0.0f;
    }
    if (st != FH_OK) {
        gnn_graph_free(g);
        return st;
    }
    /* the transpose: users of each item in increasing local order */
    int64_t *fi = malloc(((size_t)ni + 1) * sizeof *fi);
    if (!fi) {
        gnn_graph_free(g);
        return fh_error_set(FH_ENOMEM, "out of memory");
    }
    memcpy(fi, g->iptr, ((size_t)ni + 1) * sizeof *fi);
    for (int32_t a = 0; a < nu; a++)
        for (int64_t e = g->uptr[a]; e < g->uptr[a + 1]; e++) g->iidx[fi[g->uidx[e]]++] = a;
    free(fi);
    for (int32_t i = 0; i < ni; i++) {
        const int64_t d = g->iptr[i + 1] - g->iptr[i];
        g->di[i] = d ? (float)(1.0 / sqrt((double)d)) : 0.0f;
    }
    return FH_OK;
}

/* ---- scratch ----------------------------------------------------------------------------- */
void gnn_ws_free(gnn_ws *w)
{
    float *f[] = {w->uf, w->if_, w->cu, w->ci, w->nu_, w->ni_, w->gu, w->gi, w->gu0, w->gi0, w->mu, w->vu, w->mi, w->vi};
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) free(f[k]);
    free(w->order);
    free(w->sg);
    free(w->eu);
    free(w->tri);
    memset(w, 0, sizeof *w);
}

static int grow_f(float **p, int64_t n)
{
    float *q = realloc(*p, (size_t)(n ? n : 1) * sizeof *q);
    if (!q) return 0;
    *p = q;
    return 1;
}

/* Scratch for a graph; shared: floats of the shared part (items * dim, graphsage: + weights);
 * sage_layers > 0: graphsage's per-layer buffers. */
static fh_status ws_fit(gnn_ws *w, const gnn_graph *g, int32_t dim, int64_t batch, int64_t shared, int32_t sage_layers)
{
    const int64_t su = (int64_t)g->nu * dim, si = (int64_t)g->ni * dim;
    int ok = 1;
    if (su > w->cap_u) {
        float **f[] = {&w->uf, &w->cu, &w->nu_, &w->gu, &w->gu0, &w->mu, &w->vu};
        for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) ok = ok && grow_f(f[k], su);
        if (ok) w->cap_u = su;
    }
    if (ok && si > w->cap_i) {
        float **f[] = {&w->if_, &w->ci, &w->ni_, &w->gi};
        for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) ok = ok && grow_f(f[k], si);
        if (ok) w->cap_i = si;
    }
    if (shared < si) shared = si;
    if (ok && shared > w->cap_p) {
        float **f[] = {&w->gi0, &w->mi, &w->vi};
        for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) ok = ok && grow_f(f[k], shared);
        if (ok) w->cap_p = shared;
    }
    /* graphsage: H_0..H_K [n, dim], Z_0..Z_{K-1} [n, 2 dim], pre-activations [K][n, dim], and
     * gradients g [n, dim], gz [n, 2 dim], g2 [n, dim] (n = users + items) */
    const int64_t n = (int64_t)g->nu + g->ni, need = sage_layers > 0 ?
        n * dim * ((int64_t)sage_layers + 1) + n * 2 * dim * sage_layers + n * dim * sage_layers + n * dim * 4 : 0;
    if (ok && need > w->cap_s) {
        ok = grow_f(&w->sg, need);
        if (ok) w->cap_s = need;
    }
    if (ok && g->nnz > w->cap_e) {
        int32_t *o = realloc(w->order, (size_t)g->nnz * sizeof *o);
        if (o) w->order = o;
        int32_t *e = o ? realloc(w->eu, (size_t)g->nnz * sizeof *e) : NULL;
        if (e) w->eu = e;
        ok = o && e;
        if (ok) w->cap_e = g->nnz;
    }
    if (ok && batch > w->cap_b) {
        int32_t *t = realloc(w->tri, (size_t)(3 * batch) * sizeof *t);
        ok = t != NULL;
        if (ok) {
            w->tri = t;
            w->cap_b = batch;
        }
    }
    return ok ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory for lightgcn scratch (%d users, %d items)", g->nu, g->ni);
}

/* ---- propagation ------------------------------------------------------------------------- */
/* (ou, oi) = 1/(K+1) sum_{k=0..K} A^k (xu, xi); A is symmetric, so this is both the forward
 * pass and the backward pass of the final embeddings. Uses w->cu, ci, nu_, ni_. */
static void propagate(const gnn_graph *g, int32_t dim, int32_t K, const float *xu, const float *xi, float *ou, float *oi,
                      gnn_ws *w)
{
    const int64_t su = (int64_t)g->nu * dim, si = (int64_t)g->ni * dim;
    memcpy(ou, xu, (size_t)su * sizeof *ou);
    memcpy(oi, xi, (size_t)si * sizeof *oi);
    if (K == 0) return;
    memcpy(w->cu, xu, (size_t)su * sizeof *ou);
    memcpy(w->ci, xi, (size_t)si * sizeof *oi);
    for (int32_t k = 0; k < K; k++) {
        for (int32_t a = 0; a < g->nu; a++) { /* users from items */
            float *dst = w->nu_ + (int64_t)a * dim;
            memset(dst, 0, (size_t)dim * sizeof *dst);
            for (int64_t e = g->uptr[a]; e < g->uptr[a + 1]; e++) {
                const int32_t i = g->uidx[e];
                const float c = g->du[a] * g->di[i];
                const float *src = w->ci + (int64_t)i * dim;
                for (int32_t q = 0; q < dim; q++) dst[q] += c * src[q];
            }
        }
        for (int32_t i = 0; i < g->ni; i++) { /* items from users */
            float *dst = w->ni_ + (int64_t)i * dim;
            memset(dst, 0, (size_t)dim * sizeof *dst);
            for (int64_t e = g->iptr[i]; e < g->iptr[i + 1]; e++) {
                const int32_t a = g->iidx[e];
                const float c = g->di[i] * g->du[a];
                const float *src = w->cu + (int64_t)a * dim;
                for (int32_t q = 0; q < dim; q++) dst[q] += c * src[q];
            }
        }
        float *t = w->cu; w->cu = w->nu_; w->nu_ = t;
        t = w->ci; w->ci = w->ni_; w->ni_ = t;
        for (int64_t j = 0; j < su; j++) ou[j] += w->cu[j];
        for (int64_t j = 0; j < si; j++) oi[j] += w->ci[j];
    }
    const float s = 1.0f / (float)(K + 1);
    for (int64_t j = 0; j < su; j++) ou[j] *= s;
    for (int64_t j = 0; j < si; j++) oi[j] *= s;
}

fh_status gnn_forward(const gnn_graph *g, int32_t dim, int32_t K, const float *u0, const float *i0, gnn_ws *w)
{
    FH_TRY(ws_fit(w, g, dim, 1, 0, 0));
    propagate(g, dim, K, u0, i0, w->uf, w->if_, w);
    return FH_OK;
}

/* The BPR part: w->gu, w->gi = its gradient w.r.t. the final embeddings w->uf, w->if_ (mean
 * over the nb triples); returns the summed BPR loss. */
static double bpr_head(const gnn_graph *g, int32_t dim, const int32_t *tri, int32_t nb, gnn_ws *w)
{
    memset(w->gu, 0, (size_t)g->nu * (size_t)dim * sizeof *w->gu);
    memset(w->gi, 0, (size_t)g->ni * (size_t)dim * sizeof *w->gi);
    double bpr = 0;
    const double inv = nb > 0 ? 1.0 / nb : 0.0;
    for (int32_t t = 0; t < nb; t++) {
        const int32_t a = tri[3 * t], i = tri[3 * t + 1], j = tri[3 * t + 2];
        const float *fu = w->uf + (int64_t)a * dim, *fi = w->if_ + (int64_t)i * dim, *fj = w->if_ + (int64_t)j * dim;
        double x = 0;
        for (int32_t q = 0; q < dim; q++) x += (double)fu[q] * ((double)fi[q] - (double)fj[q]);
        bpr += x > 0 ? log1p(exp(-x)) : -x + log1p(exp(x)); /* -log sigmoid(x) */
        const float c = (float)(-inv / (1.0 + exp(x)));     /* d/dx, over the batch */
        float *gu = w->gu + (int64_t)a * dim, *gi = w->gi + (int64_t)i * dim, *gj = w->gi + (int64_t)j * dim;
        for (int32_t q = 0; q < dim; q++) {
            gu[q] += c * (fi[q] - fj[q]);
            gi[q] += c * fu[q];
            gj[q] -= c * fu[q];
        }
    }
    return bpr;
}

/* lambda/2 |.|^2 of the batch's layer-0 rows (over nb) into w->gu0, w->gi0; returns sum |.|^2. */
static double reg_tail(int32_t dim, const float *u0, const float *i0, const int32_t *tri, int32_t nb, double lambda,
                       gnn_ws *w)
{
    double reg = 0;
    const float l = (float)(lambda / (nb > 0 ? nb : 1));
    for (int32_t t = 0; t < nb && lambda > 0; t++) {
        const int32_t rows[3] = {tri[3 * t], tri[3 * t + 1], tri[3 * t + 2]};
        for (int32_t s = 0; s < 3; s++) {
            const float *p = (s == 0 ? u0 : i0) + (int64_t)rows[s] * dim;
            float *gp = (s == 0 ? w->gu0 : w->gi0) + (int64_t)rows[s] * dim;
            for (int32_t q = 0; q < dim; q++) {
                reg += (double)p[q] * p[q];
                gp[q] += l * p[q];
            }
        }
    }
    return reg;
}

double gnn_bpr_grad(const gnn_graph *g, int32_t dim, int32_t K, const float *u0, const float *i0, const int32_t *tri,
                    int32_t nb, double lambda, gnn_ws *w, double *bpr_sum)
{
    const double bpr = bpr_head(g, dim, tri, nb, w);
    propagate(g, dim, K, w->gu, w->gi, w->gu0, w->gi0, w);
    const double reg = reg_tail(dim, u0, i0, tri, nb, lambda, w);
    const double inv = nb > 0 ? 1.0 / nb : 0.0;
    *bpr_sum = bpr;
    return bpr * inv + 0.5 * lambda * inv * reg;
}

/* ---- GraphSAGE ---------------------------------------------------------------------------- */
int64_t gnn_sage_nparams(int32_t items, int32_t dim, int32_t layers)
{
    return (int64_t)items * dim + (int64_t)layers * 2 * dim * dim;
}

void gnn_sage_init(float *p, int32_t items, int32_t dim, int32_t layers, uint64_t seed)
{
    rng_t r = rng_stream(seed, 0, 0, RNG_INIT);
    const int64_t ni = (int64_t)items * dim;
    for (int64_t j = 0; j < ni; j++) p[j] = (float)(0.1 * rng_normal(&r));
    const double lim = sqrt(6.0 / (3.0 * dim)); /* Glorot-uniform of a [2 dim, dim] matrix */
    for (int64_t j = ni; j < gnn_sage_nparams(items, dim, layers); j++) p[j] = (float)((2 * rng_uniform(&r) - 1) * lim);
}

/* the layout of w->sg for n nodes */
typedef struct {
    float *h, *z, *pre, *g, *gz, *g2;
} sage_bufs;
static sage_bufs sage_layout(gnn_ws *w, int64_t n, int32_t dim, int32_t K)
{
    sage_bufs b;
    b.h = w->sg;                                      /* [K + 1][n, dim] */
    b.z = b.h + n * dim * (K + 1);                    /* [K][n, 2 dim]   */
    b.pre = b.z + n * 2 * dim * K;                    /* [K][n, dim]     */
    b.g = b.pre + n * dim * K;                        /* [n, dim]        */
    b.gz = b.g + n * dim;                             /* [n, 2 dim]      */
    b.g2 = b.gz + n * 2 * dim;                        /* [n, dim]        */
    return b;
}

/* node v's neighbours: users are 0..nu-1, items nu..nu+ni-1 */
fh_status gnn_sage_forward(const gnn_graph *g, int32_t dim, int32_t K, const float *u0, const float *p, gnn_ws *w)
{
    FH_TRY(ws_fit(w, g, dim, 1, gnn_sage_nparams(g->ni, dim, K), K > 0 ? K : 1));
    const int64_t nu = g->nu, n = nu + g->ni, d = dim;
    sage_bufs b = sage_layout(w, n, dim, K);
    memcpy(b.h, u0, (size_t)(nu * d) * sizeof *b.h);
    memcpy(b.h + nu * d, p, (size_t)(g->ni * d) * sizeof *b.h);
    for (int32_t k = 0; k < K; k++) {
        const float *h = b.h + n * d * k, *W = p + (int64_t)g->ni * d + (int64_t)k * 2 * d * d;
        float *z = b.z + n * 2 * d * k, *pre = b.pre + n * d * k, *out = b.h + n * d * (k + 1);
        for (int64_t v = 0; v < n; v++) {
            float *zv = z + v * 2 * d;
            memcpy(zv, h + v * d, (size_t)d * sizeof *zv);
            float *m = zv + d;
            memset(m, 0, (size_t)d * sizeof *m);
            const int64_t e0 = v < nu ? g->uptr[v] : g->iptr[v - nu], e1 = v < nu ? g->uptr[v + 1] : g->iptr[v - nu + 1];
            for (int64_t e = e0; e < e1; e++) {
                const float *src = h + (v < nu ? nu + g->uidx[e] : g->iidx[e]) * d;
                for (int32_t q = 0; q < d; q++) m[q] += src[q];
            }
            if (e1 > e0)
                for (int32_t q = 0; q < d; q++) m[q] /= (float)(e1 - e0);
            float *pv = pre + v * d, *ov = out + v * d;
            memset(pv, 0, (size_t)d * sizeof *pv);
            for (int32_t r = 0; r < 2 * d; r++) {
                const float zr = zv[r];
                const float *wr = W + (int64_t)r * d;
                for (int32_t q = 0; q < d; q++) pv[q] += zr * wr[q];
            }
            for (int32_t q = 0; q < d; q++) ov[q] = k < K - 1 && pv[q] < 0 ? 0.0f : pv[q];
        }
    }
    memcpy(w->uf, b.h + n * d * K, (size_t)(nu * d) * sizeof *w->uf);
    memcpy(w->if_, b.h + n * d * K + nu * d, (size_t)(g->ni * d) * sizeof *w->if_);
    return FH_OK;
}

double gnn_sage_grad(const gnn_graph *g, int32_t dim, int32_t K, const float *u0, const float *p, const int32_t *tri,
                     int32_t nb, double lambda, gnn_ws *w, double *bpr_sum)
{
    const int64_t nu = g->nu, n = nu + g->ni, d = dim, ni = g->ni;
    sage_bufs b = sage_layout(w, n, dim, K);
    const double bpr = bpr_head(g, dim, tri, nb, w);
    memcpy(b.g, w->gu, (size_t)(nu * d) * sizeof *b.g);
    memcpy(b.g + nu * d, w->gi, (size_t)(ni * d) * sizeof *b.g);
    float *gW = w->gi0 + ni * d;
    memset(gW, 0, (size_t)(2 * d * d * K) * sizeof *gW);
    for (int32_t k = K - 1; k >= 0; k--) {
        const float *W = p + ni * d + (int64_t)k * 2 * d * d, *z = b.z + n * 2 * d * k, *pre = b.pre + n * d * k;
        float *gWk = gW + (int64_t)k * 2 * d * d;
        if (k < K - 1)
            for (int64_t j = 0; j < n * d; j++)
                if (pre[j] < 0) b.g[j] = 0.0f; /* ReLU' (the output was clamped to 0) */
        for (int64_t v = 0; v < n; v++) {
            const float *gv = b.g + v * d, *zv = z + v * 2 * d;
            float *gzv = b.gz + v * 2 * d;
            for (int32_t r = 0; r < 2 * d; r++) {
                const float *wr = W + (int64_t)r * d;
                float *gwr = gWk + (int64_t)r * d;
                float acc = 0;
                for (int32_t q = 0; q < d; q++) {
                    gwr[q] += zv[r] * gv[q];
                    acc += gv[q] * wr[q];
                }
                gzv[r] = acc;
            }
        }
        /* into the layer's input: the self half, plus the mean half scattered to the neighbours */
        for (int64_t v = 0; v < n; v++) memcpy(b.g2 + v * d, b.gz + v * 2 * d, (size_t)d * sizeof *b.g2);
        for (int64_t v = 0; v < n; v++) {
            const int64_t e0 = v < nu ? g->uptr[v] : g->iptr[v - nu], e1 = v < nu ? g->uptr[v + 1] : g->iptr[v - nu + 1];
            if (e1 == e0) continue;
            const float inv = 1.0f / (float)(e1 - e0);
            const float *gm = b.gz + v * 2 * d + d;
            for (int64_t e = e0; e < e1; e++) {
                float *dst = b.g2 + (v < nu ? nu + g->uidx[e] : g->iidx[e]) * d;
                for (int32_t q = 0; q < d; q++) dst[q] += gm[q] * inv;
            }
        }
        memcpy(b.g, b.g2, (size_t)(n * d) * sizeof *b.g);
    }
    memcpy(w->gu0, b.g, (size_t)(nu * d) * sizeof *w->gu0);
    memcpy(w->gi0, b.g + nu * d, (size_t)(ni * d) * sizeof *w->gi0);
    const double reg = reg_tail(dim, u0, p, tri, nb, lambda, w);
    const double inv = nb > 0 ? 1.0 / nb : 0.0;
    *bpr_sum = bpr;
    return bpr * inv + 0.5 * lambda * inv * reg;
}

/* ---- local training ---------------------------------------------------------------------- */
void gnn_epoch_order(const gnn_graph *g, rng_t *shuffle, int32_t *order)
{
    for (int64_t e = 0; e < g->nnz; e++) order[e] = (int32_t)e;
    rng_shuffle_u32(shuffle, (uint32_t *)order, (size_t)g->nnz);
}

void gnn_draw_triples(const gnn_graph *g, const int32_t *edges, const int32_t *eu, int32_t nb, rng_t *neg, int32_t *tri)
{
    for (int32_t t = 0; t < nb; t++) {
        const int32_t e = edges[t], a = eu[e];
        const int32_t *row = g->uidx + g->uptr[a];
        const int32_t nr = (int32_t)(g->uptr[a + 1] - g->uptr[a]);
        int32_t j = 0;
        for (int tries = 0; tries < 64; tries++) { /* a negative: not a training item of the user */
            j = (int32_t)rng_below(neg, (uint64_t)g->ni);
            if (find_i32(row, nr, j) < 0) break;
        }
        tri[3 * t] = a;
        tri[3 * t + 1] = g->uidx[e];
        tri[3 * t + 2] = j;
    }
}

static void adam(float *p, const float *gr, float *m, float *v, int64_t n, float lr_t)
{
    for (int64_t j = 0; j < n; j++) {
        m[j] = 0.9f * m[j] + 0.1f * gr[j];
        v[j] = 0.999f * v[j] + 0.001f * gr[j] * gr[j];
        p[j] -= lr_t * m[j] / (sqrtf(v[j]) + 1e-8f);
    }
}

fh_status gnn_train(const gnn_graph *g, const gnn_opts *o, rng_t shuffle, rng_t neg, float *u0, float *i0, gnn_ws *w,
                    double *loss_sum, int64_t *steps, int64_t *seen)
{
    *loss_sum = 0;
    *steps = *seen = 0;
    if (g->nnz == 0) return FH_OK;
    const int64_t B = o->batch > 0 && o->batch < g->nnz ? o->batch : g->nnz;
    const int64_t su = (int64_t)g->nu * o->dim,
                  si = o->sage ? gnn_sage_nparams(g->ni, o->dim, o->layers) : (int64_t)g->ni * o->dim;
    FH_TRY(ws_fit(w, g, o->dim, B, si, o->sage ? (o->layers > 0 ? o->layers : 1) : 0));
    memset(w->mu, 0, (size_t)su * sizeof *w->mu);
    memset(w->vu, 0, (size_t)su * sizeof *w->vu);
    memset(w->mi, 0, (size_t)si * sizeof *w->mi);
    memset(w->vi, 0, (size_t)si * sizeof *w->vi);
    for (int32_t a = 0; a < g->nu; a++)
        for (int64_t e = g->uptr[a]; e < g->uptr[a + 1]; e++) w->eu[e] = a;
    double b1t = 1, b2t = 1;
    for (int32_t ep = 0; ep < o->epochs; ep++) {
        gnn_epoch_order(g, &shuffle, w->order);
        for (int64_t b0 = 0; b0 < g->nnz; b0 += B) {
            const int32_t nb = (int32_t)(g->nnz - b0 < B ? g->nnz - b0 : B);
            gnn_draw_triples(g, w->order + b0, w->eu, nb, &neg, w->tri);
            double bpr = 0;
            if (o->sage) {
                FH_TRY(gnn_sage_forward(g, o->dim, o->layers, u0, i0, w));
                gnn_sage_grad(g, o->dim, o->layers, u0, i0, w->tri, nb, o->lambda, w, &bpr);
            } else {
                propagate(g, o->dim, o->layers, u0, i0, w->uf, w->if_, w);
                gnn_bpr_grad(g, o->dim, o->layers, u0, i0, w->tri, nb, o->lambda, w, &bpr);
            }
            if (o->mu > 0 && o->anchor) /* FedProx's proximal term on the shared part */
                for (int64_t j = 0; j < si; j++) w->gi0[j] += (float)o->mu * (i0[j] - o->anchor[j]);
            b1t *= 0.9;
            b2t *= 0.999;
            const float lr_t = (float)(o->lr * sqrt(1.0 - b2t) / (1.0 - b1t));
            adam(u0, w->gu0, w->mu, w->vu, su, lr_t);
            adam(i0, w->gi0, w->mi, w->vi, si, lr_t);
            *loss_sum += bpr;
            *steps += 1;
            *seen += nb;
        }
    }
    return FH_OK;
}

/* ---- ranking ----------------------------------------------------------------------------- */
void gnn_topk(const float *scores, int32_t n, const uint8_t *skip, int32_t k, int32_t *top, int32_t *got)
{
    int32_t m = 0;
    for (int32_t j = 0; j < n; j++) {
        if (skip && skip[j]) continue;
        const float s = isnan(scores[j]) ? -INFINITY : scores[j];
        if (m == k && !(s > scores[top[m - 1]])) continue;
        int32_t p = m < k ? m++ : k - 1; /* drop the last one when full */
        while (p > 0 && s > scores[top[p - 1]]) { /* ties keep the lower index first */
            top[p] = top[p - 1];
            p--;
        }
        top[p] = j;
    }
    *got = m;
}

void gnn_rank_metrics(const int32_t *top, int32_t k, const int32_t *rel, int32_t nrel, double *prec, double *rec,
                      double *ndcg)
{
    double dcg = 0, idcg = 0;
    int32_t hits = 0;
    for (int32_t r = 0; r < k; r++) {
        if (find_i32(rel, nrel, top[r]) >= 0) {
            hits++;
            dcg += 1.0 / log2((double)r + 2.0);
        }
        if (r < nrel) idcg += 1.0 / log2((double)r + 2.0);
    }
    *prec = k > 0 ? (double)hits / k : 0.0;
    *rec = nrel > 0 ? (double)hits / nrel : 0.0;
    *ndcg = idcg > 0 ? dcg / idcg : 0.0;
}
