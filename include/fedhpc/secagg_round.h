/* fedhpc/secagg_round.h — secure aggregation inside the training loop (src/privacy/sa_round.c);
 * the protocol's pieces are in fedhpc/secagg.h.
 *
 * Clients live on ranks (contiguous blocks first[p]..first[p+1] of the round's n clients);
 * rank 0 is the aggregator. Messages: public keys gathered to rank 0 and broadcast; encrypted
 * shares gathered to rank 0 and relayed to their recipients' ranks point-to-point; each
 * surviving client's masked int64 vector sent to rank 0 on its own and added there (wraparound);
 * the survivor set broadcast; unmasking answers gathered; the unmasked sum broadcast so that
 * every rank applies the same server step. Memory on a rank: its clients' vectors. */
#ifndef FEDHPC_SECAGG_ROUND_H
#define FEDHPC_SECAGG_ROUND_H

#include "fedhpc/secagg.h"
#include "fedhpc/comm.h"
#include "fedhpc/config.h"
#include "fedhpc/io.h"

typedef struct secagg_engine {
    int32_t enabled, k;
    int32_t masks;         /* 1; 0 only for the transcript checker's control case ([secagg] masks) */
    double thr_frac, dropout, late_dropout;
    uint64_t seed;
    int64_t nacc;          /* int64 words a client contributes                      */
    int64_t nparams;       /* of which the first nparams are the model update         */
    io_rec *rec;           /* rank 0: [secagg] transcript (what the aggregator receives), or NULL */
    io_rec *truth;         /* rank 0: [secagg] truth (TEST ONLY: unmasked inputs, aggregates)     */
    int32_t truth_on;      /* every rank: [secagg] truth is set                                   */
    int32_t group;         /* record under round_R/cluster_<group> (multi-center), -1: round_R    */
    int64_t *cbuf;         /* [cap * nacc] this rank's clients' contributions         */
    int32_t cap, nloc;
    /* statistics of the last round (this rank) */
    int32_t aborted, dropped;
    double mask_s;         /* CPU seconds (this thread) spent making and adding masks    */
    int64_t mask_bytes;    /* keystream bytes expanded for them                          */
    double raw_s;          /* CPU seconds of raw crypto_stream_chacha20, run side by side  */
    int64_t raw_bytes;     /*   (after each client's masks, 1/16 of its keystream bytes)   */
    double chacha_gbps;    /* raw_bytes / raw_s in GB/s (NAN: nothing masked here)         */
} secagg_engine;

/* Client cid drops out of round `round` (after sharing keys, before sending its input) with
 * probability `rate`, from rng_stream(seed, cid, round, RNG_DROPOUT). */
int secagg_dropped(uint64_t seed, double rate, int32_t cid, int64_t round);
/* Client cid drops out late in round `round` (after sending its masked input, before answering
 * the unmasking request) with probability `rate`, from rng_stream(seed, cid, round,
 * RNG_LATE_DROPOUT): independent of secagg_dropped. Only matters for a client that did not drop
 * early. */
int secagg_late_dropped(uint64_t seed, double rate, int32_t cid, int64_t round);
/* The fewest clients a completed round of m clients can have: the unmasking threshold
 * ceil(threshold * degree) with secagg or dropouts, m otherwise (what distributed DP noise
 * shares must be sized for). */
double secagg_min_survivors(const config_secagg *sa, int32_t m);
/* nacc words a client contributes, the first nparams of them the model update. Rank 0 of w
 * creates the [secagg] transcript and truth files (formats "fedhpc-secagg-transcript" and
 * "fedhpc-secagg-truth", docs/file-formats.md); in the multi-center loop ([cluster],
 * [personalize], [run] clients_per_rank) every rank does, as secagg_record_path names them,
 * since any rank may aggregate a cluster. Collective status only through the caller. */
/* The record file of `rank`: path itself for rank 0, else path with ".rank<rank>" inserted
 * before a final ".h5" (appended otherwise). */
void secagg_record_path(const char *path, int rank, char *out, size_t cap);
/* From [secagg] and the run's seed; multi = 1 in the multi-center strategy (every rank may
 * aggregate a cluster and keeps its own record files). */
fh_status secagg_engine_init(secagg_engine *e, const config_secagg *sa, uint64_t seed, int multi, const comm_t *w,
                             int64_t nacc,
                             int64_t nparams);
/* Closes the record files (rank 0). */
void secagg_engine_free(secagg_engine *e);
/* [secagg] truth (test only): rank 0 writes round_R[/cluster_K]/aggregate = acc[nacc], the
 * vector the server step decodes, with or without secure aggregation. No-op otherwise. */
fh_status secagg_engine_record_aggregate(secagg_engine *e, const comm_t *w, int64_t round,
                                         const int32_t *ids, int32_t n, const int64_t *acc);
/* [secagg] truth (test only): rank 0 writes round_R[/cluster_K]/leaf = v (int64). No-op otherwise. */
fh_status secagg_engine_record_value(secagg_engine *e, const comm_t *w, int64_t round, const char *leaf, int64_t v);
/* Start a round with nloc clients on this rank: zeroed buffers. */
fh_status secagg_engine_begin(secagg_engine *e, int32_t nloc);
/* The i-th local client's contribution buffer [nacc] (accumulate into it as into the sum). */
int64_t *secagg_engine_buffer(secagg_engine *e, int32_t i);
/* Run the protocol for the round's n clients ids[n] placed by first[size+1]; adds the exact
 * sum of the surviving clients' buffers to acc[nacc] on every rank (nothing if the round
 * aborted: e->aborted = 1; a round of a single client always aborts). Collective. With [secagg] transcript, rank 0 records in group
 * round_R (round_R/cluster_K when e->group = K >= 0) everything it receives: clients, neighbors,
 * threshold, public_keys, encrypted_shares, masked_input, alive, unmask_responses, answered (who
 * sent unmasking answers: the survivors less the late dropouts), and what
 * it computes from them: unmasked_sum, aborted. With [secagg] truth, the clients' unmasked
 * buffers are gathered to rank 0 (test only) and written as round_R/input. */
fh_status secagg_engine_round(secagg_engine *e, const comm_t *w, int64_t round,
                              const int32_t *ids, const int32_t *first, int32_t n, int64_t *acc);

#endif
