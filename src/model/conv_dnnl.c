/* The CNN's convolutions on oneDNN (Debian's libdnnl 2.6, C API): see conv_dnnl.h.
 *
 * Per layer l and chunk size ns there is one "set": forward (with bias), backward-data (l = 1)
 * and backward-weights (with bias) primitives on nhwc activations, created with the weights
 * layout left to oneDNN ("any"), which picks its AVX-512 kernels (brgconv / jit:avx512_core on
 * this machine; with the weights fixed to hwio it falls back to im2col + gemm at a third of the
 * speed), plus the reorders between that layout and the buffer's hwio. The weight reorders are
 * small (conv 2: 51,200 floats) next to the 200 MFLOP of a 10-sample conv 2.
 *
 * Memory objects get their data pointer at each call (dnnl_memory_set_data_handle) and every
 * primitive uses a caller-provided scratchpad (dnnl_scratchpad_mode_user) in one buffer made
 * here, so executing allocates nothing. Debian's oneDNN threads with OpenMP; primitives are
 * created and run with one thread (omp_set_num_threads(1): one rank per core, and a fixed
 * summation order), which also makes oneDNN call the kernel directly, outside any parallel
 * region.
 */
#include "conv_dnnl.h"

#include <dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

enum { R_WF, R_WD, R_DW, R_DWSUM, NREORDER }; /* hwio -> fwd / bwd-data layout, dW -> hwio (+=) */

typedef struct {
    dnnl_primitive_t fwd, bwd_data, bwd_w, reorder[NREORDER];
    dnnl_memory_t sp_fwd, sp_bwd_data, sp_bwd_w, sp_reorder[NREORDER]; /* scratchpads (or NULL) */
    dnnl_memory_t src, dst;  /* nhwc [ns, ...]; also diff_src / diff_dst (same descriptors)  */
    dnnl_memory_t w_user, b; /* hwio weights (also their gradient), bias [Cout] (also db)   */
    dnnl_memory_t w_fwd, w_bwd_data, dw; /* oneDNN's layouts                                */
} conv_set;

struct cnn_conv {
    dnnl_engine_t eng;
    dnnl_stream_t st;
    int32_t chunk, cout[2];
    conv_set *set;               /* [2 * chunk]: layer l, ns samples at set[l * chunk + ns - 1] */
    size_t w_bytes[2], dw_bytes[2], wd_bytes, sp_bytes; /* largest size over the sets         */
    float *w_fwd[2], *w_bwd_data, *dw[2], *db[2];       /* [buffers of those sizes]           */
    void *scratch;
};

#define DN(call, what)                                                                        \
    do {                                                                                      \
        dnnl_status_t dn_st_ = (call);                                                        \
        if (dn_st_ != dnnl_success) {                                                         \
            fh_error_set(FH_EINTERNAL, "oneDNN: %s failed (status %d) for conv %d, %d samples", \
                         what, (int)dn_st_, l + 1, ns);                                       \
            goto fail;                                                                        \
        }                                                                                     \
    } while (0)

static size_t conv_max(size_t a, size_t b) { return a > b ? a : b; }

/* A primitive from pd and, if it needs one, a scratchpad memory object; the pd is kept by the
 * caller (a hint for the backward pds) and destroyed there. */
static dnnl_status_t conv_prim(cnn_conv *c, const_dnnl_primitive_desc_t pd, dnnl_primitive_t *p,
                               dnnl_memory_t *sp)
{
    dnnl_status_t s = dnnl_primitive_create(p, pd);
    if (s != dnnl_success) return s;
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    const size_t sz = md ? dnnl_memory_desc_get_size(md) : 0;
    if (sz == 0) return dnnl_success;
    c->sp_bytes = conv_max(c->sp_bytes, sz);
    return dnnl_memory_create(sp, md, c->eng, DNNL_MEMORY_NONE);
}

/* a reorder src_md -> dst_md with a user scratchpad, dst += result when sum */
static dnnl_status_t conv_reorder(cnn_conv *c, const dnnl_memory_desc_t *src_md,
                                  const dnnl_memory_desc_t *dst_md, int sum, dnnl_primitive_t *p,
                                  dnnl_memory_t *sp)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t s = dnnl_primitive_attr_create(&attr);
    if (s == dnnl_success) s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (s == dnnl_success && sum) {
        s = dnnl_post_ops_create(&po);
        if (s == dnnl_success) s = dnnl_post_ops_append_sum(po, 1.0f);
        if (s == dnnl_success) s = dnnl_primitive_attr_set_post_ops(attr, po);
    }
    if (s == dnnl_success) s = dnnl_reorder_primitive_desc_create(&pd, src_md, c->eng, dst_md, c->eng, attr);
    if (s == dnnl_success) s = conv_prim(c, pd, p, sp);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return s;
}

static fh_status conv_set_create(cnn_conv *c, conv_set *cs, int l, int32_t ns, int32_t S,
                                 int32_t ci, int32_t co)
{
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pf = NULL, pdd = NULL, pw = NULL;
    dnnl_memory_desc_t src, dst, w_any, w_user, b;
    const dnnl_dims_t dsrc = {ns, ci, S, S}, ddst = {ns, co, S, S}, dw = {co, ci, 5, 5}, db = {co};
    const dnnl_dims_t strides = {1, 1}, pad = {2, 2};
    dnnl_convolution_desc_t cd;
    DN(dnnl_memory_desc_init_by_tag(&src, 4, dsrc, dnnl_f32, dnnl_nhwc), "memory desc");
    DN(dnnl_memory_desc_init_by_tag(&dst, 4, ddst, dnnl_f32, dnnl_nhwc), "memory desc");
    DN(dnnl_memory_desc_init_by_tag(&w_any, 4, dw, dnnl_f32, dnnl_format_tag_any), "memory desc");
    DN(dnnl_memory_desc_init_by_tag(&w_user, 4, dw, dnnl_f32, dnnl_hwio), "memory desc");
    DN(dnnl_memory_desc_init_by_tag(&b, 1, db, dnnl_f32, dnnl_x), "memory desc");
    DN(dnnl_primitive_attr_create(&attr), "attr");
    DN(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "attr");

    DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, dnnl_convolution_direct, &src,
                                          &w_any, &b, &dst, strides, pad, pad), "forward desc");
    DN(dnnl_primitive_desc_create(&pf, &cd, attr, c->eng, NULL), "forward pd");
    DN(conv_prim(c, pf, &cs->fwd, &cs->sp_fwd), "forward primitive");
    DN(dnnl_convolution_backward_weights_desc_init(&cd, dnnl_convolution_direct, &src, &w_any, &b,
                                                   &dst, strides, pad, pad), "backward-weights desc");
    DN(dnnl_primitive_desc_create(&pw, &cd, attr, c->eng, pf), "backward-weights pd");
    DN(conv_prim(c, pw, &cs->bwd_w, &cs->sp_bwd_w), "backward-weights primitive");
    const dnnl_memory_desc_t *wf_md = dnnl_primitive_desc_query_md(pf, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *dw_md = dnnl_primitive_desc_query_md(pw, dnnl_query_diff_weights_md, 0);
    DN(wf_md && dw_md ? dnnl_success : dnnl_runtime_error, "weights layout query");
    c->w_bytes[l] = conv_max(c->w_bytes[l], dnnl_memory_desc_get_size(wf_md));
    c->dw_bytes[l] = conv_max(c->dw_bytes[l], dnnl_memory_desc_get_size(dw_md));
    DN(dnnl_memory_create(&cs->w_fwd, wf_md, c->eng, DNNL_MEMORY_NONE), "memory");
    DN(dnnl_memory_create(&cs->dw, dw_md, c->eng, DNNL_MEMORY_NONE), "memory");
    DN(conv_reorder(c, &w_user, wf_md, 0, &cs->reorder[R_WF], &cs->sp_reorder[R_WF]), "weights reorder");
    DN(conv_reorder(c, dw_md, &w_user, 0, &cs->reorder[R_DW], &cs->sp_reorder[R_DW]), "gradient reorder");
    DN(conv_reorder(c, dw_md, &w_user, 1, &cs->reorder[R_DWSUM], &cs->sp_reorder[R_DWSUM]), "gradient reorder");
    if (l == 1) {
        DN(dnnl_convolution_backward_data_desc_init(&cd, dnnl_convolution_direct, &src, &w_any, &dst,
                                                    strides, pad, pad), "backward-data desc");
        DN(dnnl_primitive_desc_create(&pdd, &cd, attr, c->eng, pf), "backward-data pd");
        DN(conv_prim(c, pdd, &cs->bwd_data, &cs->sp_bwd_data), "backward-data primitive");
        const dnnl_memory_desc_t *wd_md = dnnl_primitive_desc_query_md(pdd, dnnl_query_weights_md, 0);
        DN(wd_md ? dnnl_success : dnnl_runtime_error, "weights layout query");
        c->wd_bytes = conv_max(c->wd_bytes, dnnl_memory_desc_get_size(wd_md));
        DN(dnnl_memory_create(&cs->w_bwd_data, wd_md, c->eng, DNNL_MEMORY_NONE), "memory");
        DN(conv_reorder(c, &w_user, wd_md, 0, &cs->reorder[R_WD], &cs->sp_reorder[R_WD]), "weights reorder");
    }
    DN(dnnl_memory_create(&cs->src, &src, c->eng, DNNL_MEMORY_NONE), "memory");
    DN(dnnl_memory_create(&cs->dst, &dst, c->eng, DNNL_MEMORY_NONE), "memory");
    DN(dnnl_memory_create(&cs->w_user, &w_user, c->eng, DNNL_MEMORY_NONE), "memory");
    DN(dnnl_memory_create(&cs->b, &b, c->eng, DNNL_MEMORY_NONE), "memory");
    dnnl_primitive_desc_destroy(pf);
    dnnl_primitive_desc_destroy(pw);
    if (pdd) dnnl_primitive_desc_destroy(pdd);
    dnnl_primitive_attr_destroy(attr);
    return FH_OK;
fail:
    if (pf) dnnl_primitive_desc_destroy(pf);
    if (pw) dnnl_primitive_desc_destroy(pw);
    if (pdd) dnnl_primitive_desc_destroy(pdd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return FH_EINTERNAL;
}

static void conv_set_free(conv_set *cs)
{
    dnnl_primitive_t p[] = {cs->fwd, cs->bwd_data, cs->bwd_w, cs->reorder[0], cs->reorder[1],
                            cs->reorder[2], cs->reorder[3]};
    dnnl_memory_t mem[] = {cs->sp_fwd, cs->sp_bwd_data, cs->sp_bwd_w, cs->sp_reorder[0],
                           cs->sp_reorder[1], cs->sp_reorder[2], cs->sp_reorder[3], cs->src,
                           cs->dst, cs->w_user, cs->b, cs->w_fwd, cs->w_bwd_data, cs->dw};
    for (size_t i = 0; i < sizeof p / sizeof *p; i++)
        if (p[i]) dnnl_primitive_destroy(p[i]);
    for (size_t i = 0; i < sizeof mem / sizeof *mem; i++)
        if (mem[i]) dnnl_memory_destroy(mem[i]);
}

void cnn_conv_free(cnn_conv *c)
{
    if (!c) return;
    if (c->set)
        for (int32_t i = 0; i < 2 * c->chunk; i++) conv_set_free(&c->set[i]);
    free(c->set);
    for (int l = 0; l < 2; l++) {
        free(c->w_fwd[l]);
        free(c->dw[l]);
        free(c->db[l]);
    }
    free(c->w_bwd_data);
    free(c->scratch);
    if (c->st) dnnl_stream_destroy(c->st);
    if (c->eng) dnnl_engine_destroy(c->eng);
    free(c);
}

static void *conv_alloc(size_t bytes)
{
    return aligned_alloc(64, (bytes + 63) / 64 * 64 + 64);
}

cnn_conv *cnn_conv_create(const model_t *m, int32_t chunk)
{
    int l = -1, ns = 0; /* for DN's message */
    omp_set_num_threads(1);
    cnn_conv *c = calloc(1, sizeof *c);
    if (!c) {
        fh_error_set(FH_ENOMEM, "out of memory for the CNN's convolutions");
        return NULL;
    }
    c->chunk = chunk;
    c->set = calloc((size_t)2 * chunk, sizeof *c->set);
    if (!c->set) goto nomem;
    DN(dnnl_engine_create(&c->eng, dnnl_cpu, 0), "engine");
    DN(dnnl_stream_create(&c->st, c->eng, dnnl_stream_default_flags), "stream");
    const int32_t S = m->cnn_side, chans[3] = {m->cnn_channels, m->fan_out[0], m->fan_out[1]};
    c->cout[0] = chans[1];
    c->cout[1] = chans[2];
    for (l = 0; l < 2; l++)
        for (ns = 1; ns <= chunk; ns++)
            if (conv_set_create(c, &c->set[l * chunk + ns - 1], l, ns, l == 0 ? S : S / 2,
                                chans[l], chans[l + 1]) != FH_OK)
                goto fail;
    for (l = 0; l < 2; l++) {
        c->w_fwd[l] = conv_alloc(c->w_bytes[l]);
        c->dw[l] = conv_alloc(c->dw_bytes[l]);
        c->db[l] = conv_alloc((size_t)chans[l + 1] * sizeof(float));
        if (!c->w_fwd[l] || !c->dw[l] || !c->db[l]) goto nomem;
    }
    c->w_bwd_data = conv_alloc(c->wd_bytes);
    c->scratch = conv_alloc(c->sp_bytes);
    if (!c->w_bwd_data || !c->scratch) goto nomem;
    return c;
nomem:
    fh_error_set(FH_ENOMEM, "out of memory for the CNN's convolutions");
fail:
    cnn_conv_free(c);
    return NULL;
}

/* ---- execution -------------------------------------------------------------------------- */

typedef struct {
    int arg;
    dnnl_memory_t mem;
    const void *data;
} conv_arg;

/* Run p with the given arguments (their data pointers set now) and its scratchpad sp. */
static fh_status conv_run(cnn_conv *c, dnnl_primitive_t p, dnnl_memory_t sp, const conv_arg *a, int na)
{
    dnnl_exec_arg_t ea[8];
    for (int i = 0; i < na; i++) {
        if (dnnl_memory_set_data_handle(a[i].mem, (void *)a[i].data) != dnnl_success)
            return fh_error_set(FH_EINTERNAL, "oneDNN: setting a data pointer failed");
        ea[i].arg = a[i].arg;
        ea[i].memory = a[i].mem;
    }
    if (sp) {
        if (dnnl_memory_set_data_handle(sp, c->scratch) != dnnl_success)
            return fh_error_set(FH_EINTERNAL, "oneDNN: setting a data pointer failed");
        ea[na].arg = DNNL_ARG_SCRATCHPAD;
        ea[na++].memory = sp;
    }
    const dnnl_status_t s = dnnl_primitive_execute(p, c->st, na, ea);
    if (s != dnnl_success)
        return fh_error_set(FH_EINTERNAL, "oneDNN: executing a convolution failed (status %d)", (int)s);
    return FH_OK;
}

static conv_set *conv_get(cnn_conv *c, int l, int32_t ns)
{
    if (l < 0 || l > 1 || ns < 1 || ns > c->chunk) return NULL;
    omp_set_num_threads(1); /* the calling thread's OpenMP setting: one thread */
    return &c->set[l * c->chunk + ns - 1];
}

fh_status cnn_conv_fwd(cnn_conv *c, int l, int32_t ns, const float *in, const float *W,
                       const float *b, float *z)
{
    conv_set *cs = conv_get(c, l, ns);
    FH_ASSERT(cs);
    const conv_arg r[] = {{DNNL_ARG_FROM, cs->w_user, W}, {DNNL_ARG_TO, cs->w_fwd, c->w_fwd[l]}};
    FH_TRY(conv_run(c, cs->reorder[R_WF], cs->sp_reorder[R_WF], r, 2));
    const conv_arg a[] = {{DNNL_ARG_SRC, cs->src, in}, {DNNL_ARG_WEIGHTS, cs->w_fwd, c->w_fwd[l]},
                          {DNNL_ARG_BIAS, cs->b, b}, {DNNL_ARG_DST, cs->dst, z}};
    return conv_run(c, cs->fwd, cs->sp_fwd, a, 4);
}

fh_status cnn_conv_bwd_data(cnn_conv *c, int l, int32_t ns, const float *dz, const float *W,
                            float *din)
{
    conv_set *cs = conv_get(c, l, ns);
    FH_ASSERT(cs && cs->bwd_data);
    const conv_arg r[] = {{DNNL_ARG_FROM, cs->w_user, W}, {DNNL_ARG_TO, cs->w_bwd_data, c->w_bwd_data}};
    FH_TRY(conv_run(c, cs->reorder[R_WD], cs->sp_reorder[R_WD], r, 2));
    const conv_arg a[] = {{DNNL_ARG_DIFF_DST, cs->dst, dz},
                          {DNNL_ARG_WEIGHTS, cs->w_bwd_data, c->w_bwd_data},
                          {DNNL_ARG_DIFF_SRC, cs->src, din}};
    return conv_run(c, cs->bwd_data, cs->sp_bwd_data, a, 3);
}

fh_status cnn_conv_bwd_weights(cnn_conv *c, int l, int32_t ns, const float *in, const float *dz,
                               float *dW, float *db, int accumulate)
{
    conv_set *cs = conv_get(c, l, ns);
    FH_ASSERT(cs);
    float *dbi = accumulate ? c->db[l] : db;
    const conv_arg a[] = {{DNNL_ARG_SRC, cs->src, in}, {DNNL_ARG_DIFF_DST, cs->dst, dz},
                          {DNNL_ARG_DIFF_WEIGHTS, cs->dw, c->dw[l]}, {DNNL_ARG_DIFF_BIAS, cs->b, dbi}};
    FH_TRY(conv_run(c, cs->bwd_w, cs->sp_bwd_w, a, 4));
    const int k = accumulate ? R_DWSUM : R_DW;
    const conv_arg r[] = {{DNNL_ARG_FROM, cs->dw, c->dw[l]}, {DNNL_ARG_TO, cs->w_user, dW}};
    FH_TRY(conv_run(c, cs->reorder[k], cs->sp_reorder[k], r, 2));
    if (accumulate)
        for (int32_t j = 0; j < c->cout[l]; j++) db[j] += dbi[j];
    return FH_OK;
}
