/* src/fl/async_sa.h — secure aggregation with FedBuff (src/fl/async_secagg.c), internal to the
 * asynchronous strategy (src/fl/async.c).
 *
 * A FedBuff buffer is formed in virtual-time order on rank 0, so the clients whose masks must
 * cancel are not known while they train; they are known when the buffer fills, and then all K
 * of them have finished (the buffered secure aggregation of So et al. 2022, LightSecAgg). So a
 * client host keeps each finished job's update (never sent to rank 0), and rank 0 keeps only
 * (job, host, client, weight) for the buffer. When K updates are in, rank 0 sends every host a
 * command on the job channel naming which held updates to sum with which weights (and which to
 * drop), and every rank runs one round of the secagg engine (include/fedhpc/secagg_round.h) over
 * the world communicator: rank 0 gets the exact integer sum of the weighted fixed-point
 * updates, i.e. the same integers plain FedBuff accumulates, so the model is bit-identical.
 * The synchronous modes (wait_all, drop, partial) release a round's accepted updates the same
 * way once all of them are in.
 */
#ifndef FEDHPC_ASYNC_SA_H
#define FEDHPC_ASYNC_SA_H

#include "fedhpc/comm.h"
#include "fedhpc/config.h"
#include "fedhpc/secagg_round.h"

enum { AS_TAG_JOB = 7201, AS_TAG_MODEL = 7202, AS_TAG_RES = 7203 };
#define AS_CMD_RELEASE (-2) /* hdr[0] of a release command on AS_TAG_JOB (-1: stop) */

typedef struct {
    int64_t id;
    int32_t rank, client;
    double weight;
} as_sa_entry;

typedef struct {
    int64_t id;            /* job id (-1: free)                                          */
    float *delta;          /* its update                                                 */
} as_sa_held;

typedef struct {
    secagg_engine e;
    int64_t P, nacc;       /* nacc = P (+1 with DP: the count of unclipped updates)       */
    /* every rank: finished jobs' updates held until the aggregator names them */
    as_sa_held *held;      /* [hcap]                                                     */
    int32_t hcap;
    int64_t *sum;          /* [nacc] the round's sum (rank 0; hosts: broadcast, not used) */
    /* rank 0: the buffer being filled, and held updates on hosts to drop at the release */
    as_sa_entry *buf, *drop;
    int32_t nbuf, bcap, ndrop, dcap;
    int32_t aborted;       /* the last release's round aborted (too few survivors)       */
} as_sa;

/* Every rank, before the hosts start serving (collective over w through the caller). */
fh_status as_sa_init(as_sa *s, const config_t *cfg, const comm_t *w, int64_t P);
void as_sa_free(as_sa *s);
/* A job finished on this rank: keep a copy of its update if it is usable (ok). */
fh_status as_sa_hold(as_sa *s, int64_t id, const float *delta, int ok);
/* Rank 0: the update of job id (trained on `rank`) joins the buffer with this weight. */
fh_status as_sa_add(as_sa *s, int64_t id, int32_t rank, int32_t client, double weight);
/* Rank 0: the usable update of job id on `rank` is discarded (stale): dropped where it is held. */
fh_status as_sa_discard(as_sa *s, int64_t id, int32_t rank);
/* Rank 0: release the buffer as secure-aggregation round `round`: command every host, run the
 * round; s->sum[nacc] = the exact sum of the surviving clients' weighted updates (s->aborted: none).
 * clip > 0 (DP-FedBuff): each update is clipped to it at its host and sum[P] counts the unclipped.
 * Collective over w with the hosts' as_sa_serve. */
fh_status as_sa_release(as_sa *s, const comm_t *w, int64_t round, double clip);
/* A host: hdr (AS_CMD_RELEASE, round, n, drops) was received on AS_TAG_JOB: the rest of the
 * command, then the round. */
fh_status as_sa_serve(as_sa *s, const comm_t *w, const int64_t *hdr);

#endif
