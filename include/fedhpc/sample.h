/* fedhpc/sample.h — which clients train in a round, and on which rank (src/fl/sample.c).
 * Both are pure functions of (seed, round) and the clients' row counts: the same on every rank.
 */
#ifndef FEDHPC_SAMPLE_H
#define FEDHPC_SAMPLE_H

#include "fedhpc/common.h"

#include <stdint.h>

/* m distinct clients out of C for round r, sorted ascending (Floyd's algorithm on
 * rng_stream(seed, 0, r, RNG_SAMPLE); memory O(m)). m >= C gives all clients. */
fh_status fl_sample_clients(uint64_t seed, int64_t round, int32_t C, int32_t m, int32_t *out,
                            int32_t *n_out);
/* Split n clients with row counts count[] over P ranks in contiguous, row-balanced blocks:
 * rank p gets clients [first[p], first[p + 1]). first has P + 1 entries. */
void fl_assign_ranks(const int64_t *count, int32_t n, int P, int32_t *first);

#endif
