/* fedhpc/ckpt.h — checkpoints: everything needed to continue a run exactly, in parallel HDF5.
 *
 * A checkpoint is one HDF5 file DIR/ckpt_RRRRRRRR.h5 (round R, format "fedhpc-ckpt"):
 *   attributes  format, version, round, config_hash (training settings), plus named scalars
 *   datasets    named arrays: replicated ones (the same on every rank: model, server moments,
 *               RNG/sampler state) written by rank 0; row-distributed ones (per-client state)
 *               written collectively, each rank its own slab of rows.
 *   checksum    attribute "crc32": CRC-32 (zlib) over every dataset's bytes, in name order.
 * Writing: a temporary name, every rank's slabs, flush, close, rename (so a kill -9 at any
 * moment never leaves a damaged newest checkpoint under the final name), then older files
 * beyond `keep` are removed. Reading: the newest file whose checksum verifies; a damaged one is
 * reported with a warning and the previous one is used.
 * All functions are collective over the communicator given at open, unless stated.
 */
#ifndef FEDHPC_CKPT_H
#define FEDHPC_CKPT_H

#include "fedhpc/comm.h"
#include "fedhpc/common.h"

#include <stdint.h>

#define CKPT_VERSION 1

typedef enum { CKPT_F32 = 0, CKPT_F64, CKPT_I64, CKPT_I32, CKPT_U8 } ckpt_type;

typedef struct ckpt ckpt;

/* Start writing the checkpoint of `round` into dir (created if needed). */
fh_status ckpt_create(const char *dir, int64_t round, uint64_t config_hash, const comm_t *c,
                      ckpt **h);
/* Scalars (attributes); same value on every rank. */
fh_status ckpt_put_i64(ckpt *h, const char *name, int64_t v);
fh_status ckpt_put_f64(ckpt *h, const char *name, double v);
/* A replicated array of n elements (rank 0's copy is written). */
fh_status ckpt_put_array(ckpt *h, const char *name, ckpt_type t, const void *buf, int64_t n);
/* A row-distributed [total_rows, row_len] array: this rank writes rows
 * [first_row, first_row + nrows) from buf (nrows may be 0). */
fh_status ckpt_put_rows(ckpt *h, const char *name, ckpt_type t, int64_t total_rows,
                        int64_t row_len, int64_t first_row, int64_t nrows, const void *buf);
/* Checksum, close, rename into place, prune to the newest `keep` checkpoints. */
fh_status ckpt_commit(ckpt *h, int keep);
/* Abandon a checkpoint being written (removes the temporary file). */
void ckpt_abort(ckpt *h);

/* Open the newest valid checkpoint in dir (or the file `path` if it is a file). Refuses
 * (FH_EINPUT) a checkpoint whose config_hash differs from `config_hash`, naming both.
 * *round receives its round; warns on stderr (rank 0) about damaged newer files skipped. */
fh_status ckpt_open(const char *dir_or_file, uint64_t config_hash, const comm_t *c, ckpt **h,
                    int64_t *round);
/* Warnings from ckpt_open (damaged newer checkpoints skipped), "" if none. */
const char *ckpt_warning(const ckpt *h);
/* The file a checkpoint was opened from or is written to. */
const char *ckpt_path(const ckpt *h);
fh_status ckpt_get_i64(ckpt *h, const char *name, int64_t *v);
fh_status ckpt_get_f64(ckpt *h, const char *name, double *v);
/* Read a replicated array of exactly n elements (every rank reads). */
fh_status ckpt_get_array(ckpt *h, const char *name, ckpt_type t, void *buf, int64_t n);
/* Read rows [first_row, first_row + nrows) of a row-distributed array (not collective). */
fh_status ckpt_get_rows(ckpt *h, const char *name, ckpt_type t, int64_t row_len,
                        int64_t first_row, int64_t nrows, void *buf);
/* 1 if the checkpoint has a dataset of that name. */
int ckpt_has(ckpt *h, const char *name);
void ckpt_close(ckpt *h);

/* The newest checkpoint file in dir, or "" (not collective). */
fh_status ckpt_latest_path(const char *dir, char *out, size_t cap);

#endif
