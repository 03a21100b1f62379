/* The aggregation stages (include/fedhpc/loop.h, fl_agg): what every strategy's client updates
 * go through between local work and the server step, in this order — reject, privacy, [compress]
 * (src/fl/compress_stage.c), encode, sum, decode. New stages (robust aggregators, homomorphic
 * encryption) belong here, so that they apply to every strategy alike. */
#include "fedhpc/loop.h"
#include "fedhpc/robust.h"
#include "fedhpc/he.h"
#include "fedhpc/secagg_round.h"

#include <string.h>

fh_status fl_agg_begin(fl_agg *a, int32_t nloc)
{
    memset(a->acc, 0, (size_t)a->nacc * sizeof *a->acc);
    if (a->rb) FH_TRY(robust_agg_begin(a->rb, nloc));
    if (a->he && a->he->enabled) return he_engine_begin(a->he, nloc); /* [he] per-client buffers */
    return a->sa && a->sa->enabled ? secagg_engine_begin(a->sa, nloc) : FH_OK;
}

int64_t *fl_agg_buffer(fl_agg *a, int32_t i)
{
    if (a->he && a->he->enabled) return he_engine_buffer(a->he, i);
    return a->sa && a->sa->enabled ? secagg_engine_buffer(a->sa, i) : a->acc;
}

int fl_agg_add(fl_agg *a, int64_t *buf, int64_t round, int32_t cid, float *u, int64_t P, int usable, double weight,
               int64_t *below)
{
    double norm;
    if (!usable || !fl_update_ok(u, P, a->max_norm, &norm)) {
        /* rejected; under distributed DP noise it still adds its noise share */
        const double w0 = a->pv ? privacy_client_rejected(a->pv, round, cid, u, P) : 0.0;
        if (w0 > 0) fx_accumulate(buf, u, w0, P);
        return 0;
    }
    if (a->rb && a->rb->rule == AGGR_NORM_BOUND) robust_clip(u, P, a->rb->bound, norm); /* then summed as usual */
    if (a->rb && robust_agg_slices(a->rb)) { /* kept whole for the rule (unweighted) */
        robust_agg_keep(a->rb, u, norm);
        return 1;
    }
    const int cdp = a->pv && a->pv->mode == PRIVACY_CLIENT;
    if (cdp) /* clip to C (+ distributed noise), weight 1/m */
        weight = privacy_client_update(a->pv, round, cid, u, P, below);
    if (a->cz) { /* [compress]: encode, decode, accumulate what was decoded (clipped again under DP) */
        if (fl_compress_majority(a->cz)) weight = 1.0;
        return fl_compress_add(a->cz, buf, round, cid, u, weight, cdp ? a->pv->clip : 0.0, &a->sent) == FH_OK ? 1 : -1;
    }
    fx_accumulate(buf, u, weight, P);
    return 1;
}

fh_status fl_agg_sum(fl_agg *a, const comm_t *w, int64_t round, const int32_t *ids, const int32_t *first, int32_t n,
                     int64_t clear)
{
    const int rob = a->rb && robust_agg_slices(a->rb), he = a->he && a->he->enabled, sa = a->sa && a->sa->enabled;
    if (!rob && !he && !sa) FH_TRY(comm_allreduce_sum_i64(w, a->acc, a->nacc));
    else if (clear > 0) /* the counters in the clear, the client vectors as below */
        FH_TRY(comm_allreduce_sum_i64(w, a->acc + a->nacc - clear, clear));
    if (rob) return robust_agg_run(a->rb, w); /* the rule over the kept updates */
    if (he) return he_engine_round(a->he, w, n, a->acc); /* [he] under Paillier */
    if (sa) FH_TRY(secagg_engine_round(a->sa, w, round, ids, first, n, a->acc)); /* masked */
    if (!a->sa) return FH_OK;
    return comm_agree(w, secagg_engine_record_aggregate(a->sa, w, round, ids, n, a->acc)); /* test only */
}

int fl_agg_aborted(const fl_agg *a)
{
    return a->sa && a->sa->enabled && a->sa->aborted;
}

void fl_agg_decode(const fl_agg *a, int64_t round, const int64_t *acc, int64_t len, double scale, float *out)
{
    if (a->rb && robust_agg_slices(a->rb)) memcpy(out, a->rb->out, (size_t)len * sizeof *out);
    else if (a->pv && a->pv->mode == PRIVACY_CLIENT) privacy_run_decode(a->pv, round, acc, len, out);
    else if (a->cz && fl_compress_majority(a->cz)) /* [compress] signsgd majority vote: sign of the sum */
        for (int64_t j = 0; j < len; j++) out[j] = acc[j] > 0 ? 1.0f : acc[j] < 0 ? -1.0f : 0.0f;
    else fx_decode(acc, scale, out, len);
    if (a->rb && a->rb->rule == AGGR_NORM_BOUND) robust_noise(out, len, a->rb->noise, a->rb->seed, round);
}
