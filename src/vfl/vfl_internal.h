/* Private declarations of src/vfl (vertical FL). */
#ifndef FEDHPC_VFL_INTERNAL_H
#define FEDHPC_VFL_INTERNAL_H

#include "fedhpc/vfl.h"

/* A length-prefixed byte string to / from one rank (point-to-point through src/comm). */
fh_status vfl_send_blob(const comm_t *c, const void *buf, int64_t n, int dest);
fh_status vfl_recv_blob(const comm_t *c, void **buf, int64_t *n, int src);
/* PSI chain over the parties' ids (party p = rank p < K): *common (malloc'ed) the party's rows of
 * the common customers in id order. */
fh_status vfl_psi(const comm_t *c, int32_t K, const vfl_party_data *pd, int64_t **common, int64_t *ncommon);
/* A vector of doubles as dataset "w" of a record file. */
fh_status vfl_write_vec(const char *path, const char *format, const double *w, int64_t n);
/* The training loops on the aligned rows (every rank calls them; ranks >= K only agree). */
fh_status vfl_lr_run(const comm_t *c, const vfl_opts *o, const vfl_party_data *pd, const int64_t *rows, int64_t n,
                     const uint8_t *test, vfl_result *res);
fh_status vfl_splitnn_run(const comm_t *c, const vfl_opts *o, const vfl_party_data *pd, const int64_t *rows, int64_t n,
                          const uint8_t *test, vfl_result *res);

/* Split NN on the joined table (the centralized reference). */
fh_status vfl_splitnn_central(const vfl_opts *o, const double *x, const int32_t *y, const uint8_t *t, int64_t n, int32_t D,
                              vfl_result *res);

#endif
