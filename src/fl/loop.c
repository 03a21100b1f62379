/* The one training loop (see include/fedhpc/loop.h), read top to bottom in fl_train:
 *
 *   setup: model, worker, test split, the strategy (its buffers and saved fields), resume
 *   for each round: strategy round (plan, local work, aggregate, server step), evaluate on the
 *   cadence, report (on_round, then the strategy's own record), checkpoint / stop
 *   finish: the final model on every rank
 *
 * Also here: the checkpoint walkers over a strategy's field list, and the set-up pieces every
 * strategy shares (model, row buffers, checkpoint directory, round statistics).
 */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/loop.h"

#include "fedhpc/async.h"
#include "fedhpc/secagg_round.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the dispatcher -------------------------------------------------------------------- */
const fl_strategy *fl_strategy_pick(const config_t *cfg)
{
    if (cfg->cluster.method || cfg->cluster.personalize || cfg->cluster.clients_per_rank) return &fl_strategy_cluster;
    if (cfg->async.mode != AS_OFF) return &fl_strategy_async;
    if (cfg->fl.algorithm == ALG_CENTRALIZED) return &fl_strategy_central;
    return &fl_strategy_fedavg;
}

/* A round in which every update was rejected leaves the model where it was: say so in the
 * round's notice, and stop with an error after [fl] max_rejected_rounds such rounds in a row
 * rather than report a run that never trained as a success. */
static fh_status loop_check_rejected(const config_t *cfg, fl_round_stats *rs, int32_t *streak, char *buf, size_t cap)
{
    if (rs->applied != 0 || rs->rejected == 0) {
        *streak = rs->applied > 0 ? 0 : *streak;
        return FH_OK;
    }
    ++*streak;
    if (cfg->fl.max_rejected_rounds > 0 && *streak >= cfg->fl.max_rejected_rounds)
        return fh_error_set(FH_EFAULT, "every client update was rejected in %d rounds in a row (the last: round %d): the "
                            "model is not training; lower [train] lr, raise [fl] max_update_norm, or check the data",
                            *streak, rs->round);
    snprintf(buf, cap, "warning: round %d: every client update was rejected (%d in a row; the run stops at [fl] "
             "max_rejected_rounds = %d)", rs->round, *streak, cfg->fl.max_rejected_rounds);
    rs->notice = buf;
    return FH_OK;
}

/* ---- the loop --------------------------------------------------------------------------- */
fh_status fl_train(const config_t *cfg, const comm_t *world, io_data *data, const io_data_meta *meta,
                   fl_round_fn on_round, void *user, fl_result *res)
{
    const fl_strategy *S = fl_strategy_pick(cfg);
    fl_loop L;
    memset(&L, 0, sizeof L);
    L.cfg = cfg;
    L.world = L.w = world;
    L.data = data;
    L.meta = meta;
    L.res = res;
    L.C = meta->clients;
    L.m = cfg->train.clients_per_round < L.C ? cfg->train.clients_per_round : L.C;
    fh_status st = fl_model_setup(cfg, data, meta, res);
    if (st == FH_OK) {
        L.md = &res->model;
        L.params = res->params;
        L.P = L.md->nparams;
        st = fl_worker_init(&L.wk, L.md, fl_worker_rows(cfg));
    }
    st = comm_agree(world, st);
    if (st == FH_OK) st = fl_testset_load(&L.test, world, data, meta);
    if (st == FH_OK) st = S->init(&L);
    int32_t r_done = 0, rejected_streak = 0;
    char notice[256];
    if (st == FH_OK && !L.passive && cfg->checkpoint.resume[0]) st = fl_loop_ckpt_resume(&L, S->unit, &r_done);

    for (int32_t r = r_done + 1; st == FH_OK && !L.passive && r <= cfg->train.rounds; r++) {
        const double t0 = fh_wtime();
        fl_round_stats rs;
        fl_stats_init(&rs, r, cfg->train.rounds, 0);
        int stop = 0, done = 0;
        if ((st = S->round(&L, r, &rs, &stop, &done)) != FH_OK || done) break;
        if (r % cfg->train.eval_every == 0 || r == cfg->train.rounds) {
            rs.evaluated = 1;
            if ((st = S->evaluate(&L, r, &rs)) != FH_OK) break;
        }
        if (r == r_done + 1 && res->notice[0]) rs.notice = res->notice;
        if ((st = loop_check_rejected(cfg, &rs, &rejected_streak, notice, sizeof notice)) != FH_OK) break;
        rs.wall_s = fh_wtime() - t0;
        st = comm_agree(L.w, on_round ? on_round(&rs, user) : FH_OK);
        if (st == FH_OK && S->report) st = comm_agree(L.w, S->report(&L, &rs));
        /* checkpoint every N rounds, and when any rank was asked to stop (SIGTERM/SIGUSR1) */
        const int halt = stop && r < cfg->train.rounds;
        if (st == FH_OK && ((cfg->checkpoint.every > 0 && r % cfg->checkpoint.every == 0) || halt)) st = fl_loop_ckpt_save(&L, r);
        if (st == FH_OK && halt) {
            st = fh_error_set(FH_ESTOPPED, "stopped on request after %s %d of %d; checkpoint written", S->unit, r,
                              cfg->train.rounds);
            break;
        }
    }
    if (S->finish) st = S->finish(&L, st);
    if (S->free) S->free(&L);
    free(L.s);
    fl_worker_free(&L.wk);
    fl_testset_free(&L.test);
    return st;
}

/* ---- state as data: the checkpoint walkers ------------------------------------------------ */
static void field_add(fl_loop *L, fl_field f)
{
    if (!f.ptr) return;
    if (L->nfields >= FL_MAX_FIELDS) abort(); /* a programming error: raise FL_MAX_FIELDS */
    L->fields[L->nfields++] = f;
}

void fl_loop_field(fl_loop *L, const char *name, fl_field_kind kind, ckpt_type type, void *ptr, int64_t n)
{
    field_add(L, (fl_field){.name = name, .kind = kind, .type = type, .ptr = ptr, .n = n});
}

void fl_loop_hook(fl_loop *L, const char *name, void *ptr, fh_status (*save)(void *, const comm_t *, ckpt *),
                  fh_status (*load)(void *, const comm_t *, ckpt *))
{
    field_add(L, (fl_field){.name = name, .kind = FL_FIELD_HOOK, .ptr = ptr, .save = save, .load = load});
}

static fh_status pv_save(void *p, const comm_t *w, ckpt *h) { return privacy_run_save(p, w, h); }
static fh_status pv_load(void *p, const comm_t *w, ckpt *h) { return privacy_run_load(p, w, h); }

fh_status fl_loop_privacy(fl_loop *L, privacy_run *pv, int32_t m)
{
    const config_t *cfg = L->cfg;
    const privacy_env env = {
        .seed = (uint64_t)cfg->train.seed,
        .batch_size = cfg->train.batch_size,
        .local_epochs = cfg->train.local_epochs,
        .min_survivors = secagg_min_survivors(&cfg->secagg, m),
        .secagg = cfg->secagg.enabled,
        .scaffold = cfg->fl.algorithm == ALG_SCAFFOLD,
        .centralized = cfg->fl.algorithm == ALG_CENTRALIZED,
    };
    fl_loop_hook(L, "privacy", pv, pv_save, pv_load);
    return privacy_run_init(pv, &cfg->privacy, &env, L->C, m);
}

/* This rank's slab of per-client rows: clients [C*rank/size, C*(rank+1)/size). */
static void client_slab(const comm_t *w, int32_t C, int32_t *c0, int32_t *c1)
{
    *c0 = (int32_t)((int64_t)C * w->rank / w->size);
    *c1 = (int32_t)((int64_t)C * (w->rank + 1) / w->size);
}

static fh_status rows_save(const fl_loop *L, const fl_field *f, ckpt *h)
{
    int32_t c0, c1;
    client_slab(L->w, L->C, &c0, &c1);
    float *slab = malloc((size_t)(c1 > c0 ? c1 - c0 : 1) * (size_t)f->n * sizeof *slab);
    fh_status st = slab ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory for the checkpoint slab");
    for (int32_t c = c0; st == FH_OK && c < c1; c++) st = io_state_read(f->ptr, c, slab + (int64_t)(c - c0) * f->n);
    st = comm_agree(L->w, st);
    if (st == FH_OK) st = ckpt_put_rows(h, f->name, CKPT_F32, L->C, f->n, c0, c1 - c0, slab);
    free(slab);
    return st;
}

static fh_status rows_load(const fl_loop *L, const fl_field *f, ckpt *h)
{
    int32_t c0, c1;
    client_slab(L->w, L->C, &c0, &c1);
    float *row = malloc((size_t)f->n * sizeof *row);
    fh_status st = row ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory");
    for (int32_t c = c0; st == FH_OK && c < c1; c++) {
        st = ckpt_get_rows(h, f->name, CKPT_F32, f->n, c, 1, row);
        if (st == FH_OK) st = io_state_write(f->ptr, c, row);
    }
    free(row);
    return st;
}

/* The checkpoint directory: [checkpoint] dir or <output dir>/checkpoints. */
static void ckpt_dir_of(const config_t *cfg, char *out, size_t cap)
{
    if (cfg->checkpoint.dir[0]) snprintf(out, cap, "%s", cfg->checkpoint.dir);
    else snprintf(out, cap, "%s/checkpoints", cfg->output.dir);
}

fh_status fl_loop_ckpt_save(fl_loop *L, int32_t r)
{
    char dir[CONFIG_PATH_MAX + 16];
    ckpt *h = NULL;
    ckpt_dir_of(L->cfg, dir, sizeof dir);
    FH_TRY(ckpt_create(dir, r, config_train_hash(L->cfg), L->w, &h));
    fh_status st = FH_OK;
    for (int32_t i = 0; st == FH_OK && i < L->nfields; i++) {
        const fl_field *f = &L->fields[i];
        switch (f->kind) {
        case FL_FIELD_ARRAY: st = ckpt_put_array(h, f->name, f->type, f->ptr, f->n); break;
        case FL_FIELD_I64: st = ckpt_put_i64(h, f->name, *(const int64_t *)f->ptr); break;
        case FL_FIELD_F64: st = ckpt_put_f64(h, f->name, *(const double *)f->ptr); break;
        case FL_FIELD_ROWS: st = rows_save(L, f, h); break;
        case FL_FIELD_HOOK: st = f->save(f->ptr, L->w, h); break;
        }
    }
    if (st != FH_OK) { /* abandoned: the previous checkpoints stay as they were */
        ckpt_abort(h);
        return st;
    }
    return ckpt_commit(h, L->cfg->checkpoint.keep);
}

fh_status fl_loop_ckpt_resume(fl_loop *L, const char *unit, int32_t *r_done)
{
    const config_t *cfg = L->cfg;
    char dir[CONFIG_PATH_MAX + 16];
    ckpt_dir_of(cfg, dir, sizeof dir);
    const int autom = strcmp(cfg->checkpoint.resume, "auto") == 0;
    ckpt *h = NULL;
    int64_t round = 0;
    *r_done = 0;
    FH_TRY(ckpt_open(autom ? dir : cfg->checkpoint.resume, config_train_hash(cfg), L->w, &h, &round));
    if (!h) return autom ? FH_OK : fh_error_set(FH_EINPUT, "--resume %s: no checkpoint there", cfg->checkpoint.resume);
    if (round > cfg->train.rounds) { /* nothing to continue: refuse before anything is rewritten */
        fh_status st = fh_error_set(FH_EINPUT, "%s: checkpoint is after %s %lld but [train] rounds = %d "
                                    "(expected rounds >= %lld to resume)", ckpt_path(h), unit,
                                    (long long)round, cfg->train.rounds, (long long)round);
        ckpt_close(h);
        return st;
    }
    snprintf(L->res->notice, sizeof L->res->notice, "%s%sresuming after %s %lld from %s", ckpt_warning(h),
             ckpt_warning(h)[0] ? "\n" : "", unit, (long long)round, ckpt_path(h));
    fh_status st = FH_OK;
    for (int32_t i = 0; st == FH_OK && i < L->nfields; i++) {
        const fl_field *f = &L->fields[i];
        if (f->kind == FL_FIELD_ARRAY && !ckpt_has(h, f->name)) {
            st = fh_error_set(FH_EINPUT, "%s: not a checkpoint of this kind of run (no %s)", ckpt_path(h), f->name);
            break;
        }
        switch (f->kind) {
        case FL_FIELD_ARRAY: st = ckpt_get_array(h, f->name, f->type, f->ptr, f->n); break;
        case FL_FIELD_I64: st = ckpt_get_i64(h, f->name, f->ptr); break;
        case FL_FIELD_F64: st = ckpt_get_f64(h, f->name, f->ptr); break;
        case FL_FIELD_ROWS: st = rows_load(L, f, h); break;
        case FL_FIELD_HOOK: st = f->load(f->ptr, L->w, h); break;
        }
    }
    ckpt_close(h);
    st = comm_agree(L->w, st);
    if (st == FH_OK) *r_done = (int32_t)round;
    return st;
}

/* ---- set-up pieces every strategy shares ---------------------------------------------- */
fh_status fl_model_setup(const config_t *cfg, io_data *data, const io_data_meta *meta, fl_result *res)
{
    memset(res, 0, sizeof *res);
    if (cfg->model.type == MODEL_ATTENTION) /* attention: item sets (src/model/attn.c) */
        FH_TRY(model_create_attn(&res->model, meta->features, meta->items, cfg->model.attn_dim, cfg->model.attn_heads,
                                 meta->classes));
    else
        FH_TRY(model_create(&res->model, (model_type)cfg->model.type, meta->features, meta->classes,
                            cfg->model.hidden, cfg->model.nhidden));
    if (cfg->model.class_weights == 1) {
        int64_t *cnt = fh_calloc((size_t)meta->classes, sizeof *cnt);
        res->class_w = fh_calloc((size_t)meta->classes, sizeof *res->class_w);
        FH_CHECK_ALLOC(cnt && res->class_w ? res->class_w : NULL);
        fh_status st = io_data_class_counts(data, cnt);
        if (st != FH_OK) {
            free(cnt);
            return st;
        }
        int64_t n = 0;
        for (int32_t k = 0; k < meta->classes; k++) n += cnt[k];
        for (int32_t k = 0; k < meta->classes; k++)
            res->class_w[k] = cnt[k] ? (float)((double)n / ((double)meta->classes * (double)cnt[k])) : 0.0f;
        free(cnt);
        res->model.class_weight = res->class_w;
    }
    res->model.focal_gamma = (float)cfg->model.focal_gamma; /* credit study: focal loss */
    res->params = malloc((size_t)res->model.nparams * sizeof *res->params);
    FH_CHECK_ALLOC(res->params);
    model_init_params(&res->model, res->params, (uint64_t)cfg->train.seed);
    return FH_OK;
}

void fl_result_free(fl_result *r)
{
    free(r->params);
    free(r->class_w);
    memset(r, 0, sizeof *r);
}

void fl_stats_init(fl_round_stats *s, int32_t r, int32_t rounds, int32_t clients)
{
    memset(s, 0, sizeof *s);
    s->round = r;
    s->rounds = rounds;
    s->clients = clients;
    s->train_loss = s->client_acc_mean = s->client_acc_p10 = NAN;
    s->test.loss = s->test.accuracy = s->test.f1 = s->test.auc = NAN;
    s->test.f1_minority = s->test.pr_auc = s->test.thr_best = s->test.threshold = NAN; /* credit study */
    s->test.f1_minority_thr = s->test.f1_thr = NAN;
    s->epsilon = s->mask_gbps = s->chacha_gbps = NAN;
    s->notice = "";
    s->applied = -1;
    s->malicious = -1;                 /* [attack] */
    s->attack_success = NAN;
}

/* ---- per-client state files -------------------------------------------------------- */
fh_status fl_state_create(const config_t *cfg, const comm_t *w, const char *name, int32_t clients, int64_t dim,
                          io_state **out)
{
    char path[CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", cfg->output.dir, name);
    return io_state_create(path, w, clients, dim, out);
}

fl_local_opts fl_local_opts_make(const config_t *cfg, const float *global)
{
    fl_local_opts o = {global, NULL, cfg->train.lr, cfg->train.momentum, cfg->train.weight_decay,
                       cfg->fl.algorithm == ALG_FEDPROX ? cfg->fl.mu : 0.0, cfg->train.local_epochs, cfg->train.batch_size};
    return o;
}
