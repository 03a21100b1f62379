/* Private declarations of src/vfl (vertical FL). */
#ifndef FEDHPC_VFL_INTERNAL_H
#define FEDHPC_VFL_INTERNAL_H

#include "fedhpc/vfl.h"

#include <sodium.h>
#include <stdio.h>

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

/* Pairwise mask keys of the non-label parties (K > 2; crypto_kx, point-to-point), and the masks
 * of step t added to (lower party) or subtracted from (higher party) q[n]: they cancel in the sum. */
fh_status vfl_mask_keys(const comm_t *c, int K, uint8_t (*mkey)[crypto_kx_SESSIONKEYBYTES]);
void vfl_mask_apply(int K, int me, uint8_t (*mkey)[crypto_kx_SESSIONKEYBYTES], int64_t t, uint64_t *q, uint64_t *scratch,
                    int64_t n);
/* A party's checkpoint: parameters w[nw] after `step` steps (record file, temp + rename). */
fh_status vfl_ckpt_write(const char *path, int32_t party, int64_t tag, int64_t step, int64_t ncommon, const double *w,
                         int64_t nw);
fh_status vfl_ckpt_read(const char *path, int32_t party, int64_t tag, int64_t ncommon, int64_t *step, double *w,
                        int64_t nw);
/* The start of a training run (LR, split NN). --resume: every party reads
 * OUT_DIR/party<p>.ckpt.h5 into w[nw]; *start is the step the parties agree on (0 without
 * --resume); parties at different steps, or a step beyond --steps: FH_EINPUT. The label party
 * (me == 0) opens OUT_DIR/metrics.csv into *mf (appended on resume, else with its header).
 * Collective over c (me < 0: a rank without a party). (vfl_train.c) */
fh_status vfl_run_begin(const comm_t *c, const vfl_opts *o, int32_t me, int64_t tag, int64_t n, double *w,
                        int64_t nw, int64_t *start, FILE **mf);
/* The joined table of the common customers (vfl_central.c); dp[K] each party's width. */
fh_status vfl_join(const vfl_opts *o, double **xo, int32_t **yo, uint8_t **to, int64_t *no, int32_t *Do, int32_t *dp);
/* Split NN on the joined table (the centralized reference). */
fh_status vfl_splitnn_central(const vfl_opts *o, const double *x, const int32_t *y, const uint8_t *t, int64_t n, int32_t D,
                              const int32_t *dp, vfl_result *res);
/* Federated transfer learning (2 parties; src/vfl/vfl_splitnn.c) and its baselines. */
fh_status vfl_ftl_run(const comm_t *c, const vfl_opts *o, const vfl_party_data *pd, const int64_t *rows, int64_t n,
                      const uint8_t *test, vfl_result *res);
fh_status vfl_ftl_central(const vfl_opts *o, vfl_result *res);

#endif
