/* fedhpc/vfl.h — vertical federated learning (issue 16, docs/vertical.md).
 *
 * Parties hold different columns of partly overlapping customers. Party 0 (A) holds the label.
 *
 * Data (src/vfl/vfl_data.c): `fedhpc prepare DATASET --vertical K --out OUT.h5` writes one
 * record file per party, OUT.party<p>.h5 (format "fedhpc-vertical", docs/vertical.md):
 *   attributes (int64): parties, party, features, rows, has_label, seed, tag (the same in every
 *                       file of one prepare run: files of different runs are refused)
 *   ids      u8  [rows, VFL_ID_BYTES] customer ids, NUL-padded strings
 *   x        f64 [rows, features]     this party's feature columns (standardized / one-hot)
 *   names    u8  [features, 64]       feature names
 *   y, test  (party 0 only) i32 [rows] labels 0/1; u8 [rows] 1 = held-out evaluation row
 *
 * Training (src/vfl/vfl_train.c): party p runs on rank p (ranks >= K take no part but the
 * agreement on errors). PSI over the ids first (include/fedhpc/psi.h), then full-batch logistic
 * regression with the non-label parties' partial logits summed under pairwise masks and their
 * gradients computed on Paillier-encrypted residuals (include/fedhpc/he.h).
 */
#ifndef FEDHPC_VFL_H
#define FEDHPC_VFL_H

#include "fedhpc/comm.h"
#include "fedhpc/common.h"
#include "fedhpc/data.h"

#include <stdint.h>

#define VFL_ID_BYTES 32
#define VFL_NAME_BYTES 64
#define VFL_MAX_PARTIES 16

/* ---- column assignment and overlap (prepare --vertical) ------------------------------------ */
/* Read a --party-columns file: one line per party, "P: COL COL ..." (P the party index, columns
 * separated by spaces or commas; '#' starts a comment). Sets col_party[e->ncols] to each CSV
 * column's party, -1 for columns listed nowhere (dropped). The label column (kind COL_LABEL) may
 * be listed only for party 0, and always belongs to party 0. FH_EINPUT naming the file and line:
 * an unknown column, a column listed twice (overlapping assignment), the label at a party other
 * than 0, a party outside [0, parties), a party without feature columns. */
fh_status vfl_columns_file(const char *path, const data_encoding *e, int32_t parties, int32_t *col_party);
/* Seeded split: feature columns in a random order (rng_stream(seed, 0, 0, RNG_PARTITION))
 * dealt round-robin to the parties; the label at party 0. */
fh_status vfl_columns_seeded(const data_encoding *e, int32_t parties, uint64_t seed, int32_t *col_party);

/* Which rows each party holds, holds[p * n + i] (0/1), with `overlap` F in (0, 1] and own_frac:
 * rows are shuffled (seed); each non-label party p >= 1 gets its own floor(own_frac n) rows that
 * A lacks (disjoint slices at the end of the order); A holds every other row; party p >= 1 also
 * holds a random F fraction of A's rows (its own stream). FH_EINPUT if nothing is left for A. */
fh_status vfl_overlap(int64_t n, int32_t parties, double overlap, double own_frac, uint64_t seed, uint8_t *holds);

/* The tag of one prepare run (the same in every party file). */
int64_t vfl_tag(const char *dataset, uint64_t seed, int32_t parties, double overlap);

/* ---- a party's data ----------------------------------------------------------------------- */
typedef struct {
    int32_t parties, party, has_label;
    int64_t rows, seed, tag;
    int32_t d;            /* features                                     */
    char (*ids)[VFL_ID_BYTES];
    double *x;            /* [rows, d]                                     */
    int32_t *y;           /* [rows] (label party)                          */
    uint8_t *test;        /* [rows] (label party)                          */
} vfl_party_data;

/* Write one party's file (one process). */
fh_status vfl_party_write(const char *path, const vfl_party_data *pd, char (*names)[VFL_NAME_BYTES]);
/* Read one party's file; FH_EINPUT naming it when its layout is wrong. */
fh_status vfl_party_read(const char *path, vfl_party_data *pd);
void vfl_party_free(vfl_party_data *pd);

/* Rows of the common customers in the common order: the ids are sorted with strcmp, so every
 * party that holds the same set gets the same order. idx[n] receives row indices into pd. */
fh_status vfl_sort_rows(const vfl_party_data *pd, const size_t *rows, size_t n, int64_t *idx);

/* The ids of rows[n] (rows NULL: the first n rows), one a line, to a text file. */
fh_status vfl_write_ids(const char *path, const vfl_party_data *pd, const int64_t *rows, int64_t n);

/* ---- logistic regression pieces (shared by the vertical and the centralized path) --------- */
/* Mean log-loss and the residuals r_i = sigmoid(z_i) - y_i of n rows. */
double vfl_logloss(const double *z, const int32_t *y, int64_t n, double *r);
/* ROC AUC of scores s against 0/1 labels (ties: average rank). */
double vfl_auc(const double *s, const int32_t *y, int64_t n);

/* ---- training ---------------------------------------------------------------------------- */
typedef struct {
    const char *data;      /* OUT.h5 given to prepare: party p reads OUT.party<p>.h5           */
    const char *out_dir;   /* metrics.csv (label party) and party<p>.model.h5                */
    int32_t parties;
    int32_t steps;         /* full-batch gradient steps in total                              */
    double lr;
    int key_bits;          /* Paillier modulus bits (2048; 512 or 1024 only for tests)        */
    int32_t ckpt_every;    /* write OUT_DIR/party<p>.ckpt.h5 every k steps (0: never)        */
    int32_t stop_after;    /* stop after this step (0: run all steps; simulates an interrupt) */
    int resume;            /* start from the checkpoints                                     */
    int model;             /* 0 logistic regression, 1 split neural network                  */
    int32_t hidden;        /* split NN: bottom-model width per party and top hidden width    */
    uint64_t seed;         /* split NN initialisation                                        */
    double ftl_gamma;      /* FTL: weight of the alignment loss (0.1)                         */
    int joined;            /* central split NN: one bottom model over all joined columns (a
                              plain MLP) instead of one per party's block                    */
} vfl_opts;

typedef struct {
    int64_t n_common, n_train, n_test;
    double loss, test_auc;      /* after the last step (label party)                         */
    double sec_per_step;
} vfl_result;

/* The vertical run: collective over c (every rank calls it; party p on rank p). */
fh_status vfl_train(const comm_t *c, const vfl_opts *o, vfl_result *res);
/* The centralized reference on one process: every party file read, the common customers joined
 * by id (no PSI), the same model trained on the joined columns, in the same row order. */
fh_status vfl_central(const vfl_opts *o, vfl_result *res);

#endif
