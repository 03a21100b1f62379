/* Robust aggregation over the ranks (include/fedhpc/robust.h): every rank keeps its accepted
 * local updates, packed by destination slice; one all-to-all gives each rank its coordinate
 * slice of every accepted update (in the round's client order, whatever the rank count); the
 * rule runs on the slice (Krum's Gram matrix summed exactly over the slices with an integer
 * all-reduce); one all-gather assembles the aggregate on every rank. The rules themselves are
 * in src/agg/robust.c. */
#include "fedhpc/robust.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int robust_agg_slices(const robust_agg *a)
{
    return a->rule == AGGR_KRUM || a->rule == AGGR_MULTIKRUM || a->rule == AGGR_MEDIAN || a->rule == AGGR_TRIMMED_MEAN;
}

static const char *rule_name(int32_t r)
{
    static const char *n[] = {"mean", "krum", "multikrum", "median", "trimmed_mean", "norm_bound"};
    return r >= 0 && r <= AGGR_NORM_BOUND ? n[r] : "?";
}

fh_status robust_agg_init(robust_agg *a, const config_t *cfg, int32_t m, int64_t P, const comm_t *w)
{
    memset(a, 0, sizeof *a);
    a->rule = cfg->fl.aggregator;
    a->f = cfg->fl.byzantine_f;
    a->trim = cfg->fl.trim_fraction;
    a->bound = cfg->fl.norm_bound;
    a->noise = cfg->fl.norm_bound_noise;
    a->seed = (uint64_t)cfg->train.seed;
    a->P = P;
    a->m = m;
    a->size = w->size;
    a->rank = w->rank;
    if ((a->rule == AGGR_KRUM || a->rule == AGGR_MULTIKRUM) && !(m > 2 * (int64_t)a->f + 2)) {
        char why[160] = "";
        if (cfg->train.clients_per_round > m)
            snprintf(why, sizeof why, " ([train] clients_per_round = %d, but the data set has %d clients)",
                     cfg->train.clients_per_round, m);
        else
            snprintf(why, sizeof why, " ([train] clients_per_round)");
        if (m < 3)
            return fh_error_set(FH_EINPUT, "[fl] aggregator = %s: needs at least 3 clients a round (n > 2 * byzantine_f + "
                                "2), got n = %d%s", rule_name(a->rule), m, why);
        return fh_error_set(FH_EINPUT, "[fl] byzantine_f = %d: too large for [fl] aggregator = %s, which needs n > 2 * "
                            "byzantine_f + 2 = %lld clients a round, got n = %d%s; use byzantine_f <= %d or more "
                            "clients a round", a->f, rule_name(a->rule), 2 * (long long)a->f + 2, m, why, (m - 3) / 2);
    }
    if (!robust_agg_slices(a)) return FH_OK;
    a->out = malloc((size_t)P * sizeof *a->out);
    a->G = malloc((size_t)m * (size_t)m * sizeof *a->G);
    a->sel = malloc((size_t)m * sizeof *a->sel);
    a->score = malloc((size_t)m * sizeof *a->score);
    a->dist = malloc((size_t)m * sizeof *a->dist);
    a->tmp = malloc((size_t)m * sizeof *a->tmp);
    if (!a->out || !a->G || !a->sel || !a->score || !a->dist || !a->tmp)
        return fh_error_set(FH_ENOMEM, "out of memory for robust aggregation (%d clients a round, %lld parameters)", m,
                            (long long)P);
    /* [secagg] dedicated_aggregator: rank 0 hosts no clients and owns no slice either, so it
     * never holds a piece of an individual update (it still gets the aggregate, and with Krum the
     * Gram matrix of pairwise distances) */
    return robust_agg_comm(a, w, config_sa_dedicated(cfg) && w->size > 1);
}

fh_status robust_agg_comm(robust_agg *a, const comm_t *c, int first)
{
    const int S = c->size;
    const int64_t P = a->P;
    if (S > a->scap) {
        free(a->off);
        free(a->cnt);
        a->off = malloc((size_t)(S + 1) * sizeof *a->off);
        a->cnt = malloc((size_t)S * 5 * sizeof *a->cnt); /* cnt, then scount, sdispl, rcount, rdispl */
        a->scap = a->off && a->cnt ? S : 0;
        FH_CHECK_ALLOC(a->scap ? a->off : NULL);
    }
    a->size = S;
    a->rank = c->rank;
    int64_t maxlen = 0;
    /* slices start at multiples of the Gram block (robust_gram_add): the same blocks for any -np */
    for (int q = 0; q <= S; q++)
        a->off[q] = q <= first ? 0 : q == S ? P : P * (q - first) / (S - first) / ROBUST_GRAM_BLOCK * ROBUST_GRAM_BLOCK;
    for (int q = 0; q < S; q++)
        if (a->off[q + 1] - a->off[q] > maxlen) maxlen = a->off[q + 1] - a->off[q];
    if (maxlen > a->lcap) {
        free(a->recv);
        free(a->slice);
        a->recv = malloc((size_t)(a->m * maxlen + 1) * sizeof *a->recv);
        a->slice = malloc((size_t)(maxlen + 1) * sizeof *a->slice);
        a->lcap = a->recv && a->slice ? maxlen : 0;
        if (!a->lcap)
            return fh_error_set(FH_ENOMEM, "out of memory for robust aggregation (%d clients a round, %lld parameters)",
                                a->m, (long long)P);
    }
    return FH_OK;
}

void robust_agg_free(robust_agg *a)
{
    free(a->off); free(a->cnt); free(a->keep); free(a->norms); free(a->recv); free(a->slice); free(a->out);
    free(a->G); free(a->sel); free(a->score); free(a->dist); free(a->tmp);
    memset(a, 0, sizeof *a);
}

fh_status robust_agg_begin(robust_agg *a, int32_t nloc)
{
    a->nloc = nloc;
    a->nkeep = 0;
    a->have = 0;
    if (!robust_agg_slices(a) || nloc <= a->cap) return FH_OK;
    free(a->keep);
    free(a->norms);
    a->keep = malloc((size_t)nloc * (size_t)a->P * sizeof *a->keep);
    a->norms = malloc((size_t)nloc * sizeof *a->norms);
    a->cap = a->keep && a->norms ? nloc : 0;
    if (!a->cap)
        return fh_error_set(FH_ENOMEM, "out of memory keeping %d client updates of %lld parameters for [fl] aggregator "
                            "= %s", nloc, (long long)a->P, rule_name(a->rule));
    return FH_OK;
}

void robust_agg_keep(robust_agg *a, const float *u, double norm)
{
    const int32_t k = a->nkeep++;
    a->norms[k] = norm;
    for (int q = 0; q < a->size; q++) {
        const int64_t len = a->off[q + 1] - a->off[q];
        memcpy(a->keep + a->off[q] * a->nloc + (int64_t)k * len, u + a->off[q], (size_t)len * sizeof *u);
    }
}

fh_status robust_agg_run(robust_agg *a, const comm_t *w)
{
    const int S = a->size;
    int64_t *cnt = a->cnt, *sc = cnt + S, *sd = sc + S, *rc = sd + S, *rd = rc + S;
    memset(cnt, 0, (size_t)S * sizeof *cnt);
    cnt[a->rank] = a->nkeep;
    FH_TRY(comm_allreduce_sum_i64(w, cnt, S));
    int64_t n = 0;
    for (int p = 0; p < S; p++) n += cnt[p];
    a->nacc = (int32_t)n;
    a->nsel = 0;
    a->have = n > 0;
    if (!a->have) return FH_OK;
    const int64_t len = a->off[a->rank + 1] - a->off[a->rank];
    int64_t before = 0;
    for (int q = 0; q < S; q++) {
        const int64_t lq = a->off[q + 1] - a->off[q];
        sc[q] = (int64_t)a->nkeep * lq;
        sd[q] = a->off[q] * a->nloc;
        rc[q] = cnt[q] * len;
        rd[q] = before * len;
        before += cnt[q];
    }
    FH_TRY(comm_alltoallv_f32(w, a->keep ? a->keep : a->slice, sc, sd, a->recv, rc, rd));
    const int32_t nn = a->nacc;
    switch (a->rule) {
    case AGGR_MEDIAN: robust_median(a->recv, nn, len, a->slice, a->tmp); break;
    case AGGR_TRIMMED_MEAN:
        robust_trimmed_mean(a->recv, nn, len, robust_trim_count(nn, a->trim), a->slice, a->tmp);
        break;
    default: { /* krum, multikrum */
        double mx = 0;
        for (int32_t i = 0; i < a->nkeep; i++)
            if (a->norms[i] > mx) mx = a->norms[i];
        FH_TRY(comm_allreduce_max_f64(w, &mx, 1));
        const int shift = robust_gram_shift(mx);
        memset(a->G, 0, (size_t)nn * (size_t)nn * sizeof *a->G);
        robust_gram_add(a->recv, nn, len, shift, a->G);
        FH_TRY(comm_allreduce_sum_i64(w, a->G, (int64_t)nn * nn));
        const int32_t want = a->rule == AGGR_KRUM ? 1 : robust_multikrum_count(nn, a->f);
        a->nsel = robust_krum_select(a->G, nn, a->f, want, a->sel, a->score, a->dist);
        robust_mean_rows(a->recv, len, a->sel, a->nsel, a->slice);
    }
    }
    return comm_allgatherv_f32(w, a->slice, len, a->out);
}
