/* fedhpc/io.h — the I/O layer: the only module that calls HDF5.
 *
 * Data file layout (format "fedhpc-data", version 1; documented in docs/file-formats.md):
 *   /                     attributes: format, version, dataset, partition, alpha, seed,
 *                         features, classes, clients, train_rows, test_rows, train_class_counts
 *   /classes              [classes] class names (strings)
 *   /train/x              [train_rows, features] float32, rows grouped client by client
 *   /train/y              [train_rows] int32
 *   /train/client_offsets [clients + 1] int64: client c owns rows [off[c], off[c+1])
 *   /train/client_name    [clients] strings (natural partition only)
 *   /test/x, /test/y      the held-out test split
 *   /val/x, /val/y        optional validation split (attribute val_rows; prepare --val-frac)
 *   /encoding/...         CSV column encoding (col_name, kind, mean, std, first_feature, ncat,
 *                         category + category_offsets, mode, feature_name)
 *   checksums             root attribute "crc32" (files from older versions: absent); then each
 *                         numeric dataset above has attribute crc32 (docs/data-integrity.md)
 * A rank reads only its clients' rows: client ranges come from point reads of client_offsets,
 * rows from one hyperslab-union read. Parallel HDF5 (MPI-IO) under mpirun.
 *
 * Model file (format "fedhpc-model", version 1): /params float32 [nparams] plus attributes
 * describing the architecture (model, in, classes, hidden) and the run (algorithm, rounds, seed).
 */
#ifndef FEDHPC_IO_H
#define FEDHPC_IO_H

#include "fedhpc/comm.h"
#include "fedhpc/common.h"
#include "fedhpc/data.h"
#include "fedhpc/model.h"

#include <stdint.h>

#define IO_DATA_VERSION 1
#define IO_MODEL_VERSION 1

typedef struct {
    char dataset[256];
    char partition[32];
    double alpha;
    int64_t seed;
    int32_t features, classes, clients;
    int64_t train_rows, test_rows;
    int32_t has_client_names;
    /* multi-center FL (issue 4): known client groups and per-client local test rows */
    int32_t has_client_group;     /* /train/client_group present (read: io_data_client_groups) */
    int32_t groups;               /* attribute "groups" (0: none)                             */
    double local_test_frac;       /* attribute "local_test_frac": the last floor(f * n_c) rows
                                     of each client's range are its own held-out split (0: none) */
    const int32_t *client_group;  /* write only: [clients] true group of each client, or NULL  */
    int32_t checksums;            /* read: the file has per-dataset CRC-32s (io_data_verify);
                                     files of older fedhpc versions have none                 */
    /* per-party files (prepare --parties K; docs/file-formats.md): 0 = one shared file       */
    int32_t parties;              /* K: the data set is the aggregator's file plus K party files */
    int32_t party;                /* this file: -1 the aggregator's (metadata, test split, no
                                     training rows), 0..K-1 a party's (its clients' rows only)  */
    const int32_t *client_party;  /* write only ([parties] > 0): [clients] each client's party  */
    const int64_t *client_rows;   /* write only ([parties] > 0): [clients] each client's rows   */
    int64_t val_rows;             /* read: rows of /val (prepare --val-frac; attribute val_rows),
                                     0: none. Written from ds->val (not on party files)         */
    int32_t items;                /* item-set data (prepare supermarket|ticdata): attribute
                                     "items", the item vocabulary; rows are item indices (-1
                                     padding) and /train|test/items + item_offsets hold the CSR;
                                     0: not item-set data                                      */
} io_data_meta;

/* Write a prepared data set (one process). Rows of ds->train are written in the order perm[]
 * with client ranges offsets[clients + 1] (offsets[clients] rows: a party's file holds only its
 * clients' rows, the others have empty ranges). client_name may be NULL. Written to PATH.tmp.PID,
 * then renamed: a failed write leaves nothing at path. */
fh_status io_data_write(const char *path, const data_set *ds, const io_data_meta *meta,
                        const int64_t *perm, const int64_t *offsets, char *const *client_name);

typedef struct io_data io_data;

/* Open a data file collectively on communicator c (parallel HDF5), check its layout
 * (format, version, shapes, offsets monotone and ending at train_rows) and read its metadata.
 * Wrong layout, truncation or a non-HDF5 file: FH_EINPUT naming the file and what was expected.
 * Collective: every rank gets the same status. */
fh_status io_data_open(const char *path, const comm_t *c, io_data **h, io_data_meta *meta);
void io_data_close(io_data *h);

/* Recompute every dataset's CRC-32 and compare it with the one prepare stored (attribute
 * "crc32"; docs/data-integrity.md): each rank of c reads one contiguous 1/size slice of each
 * dataset (c NULL: one process reads it all), the slices' CRCs are joined on rank 0. A mismatch
 * or an unreadable slice: FH_EINPUT naming the file and dataset, on every rank. Files without
 * checksums (meta.checksums == 0, older prepare) return FH_OK with *bytes_checked = 0;
 * otherwise *bytes_checked (rank 0) is the number of bytes checked. Collective over c. */
fh_status io_data_verify(io_data *h, const comm_t *c, int64_t *bytes_checked);

/* Row ranges [start[i], start[i] + count[i]) of n clients (point reads of client_offsets). In a
 * party file count is every client's row count and start is -1 for the clients of other parties
 * (their rows are not in this file; reading them is FH_EINPUT). */
fh_status io_data_client_ranges(io_data *h, const int32_t *clients, int32_t n, int64_t *start,
                                int64_t *count);
/* The party holding each of n clients (all 0 for a shared file). */
fh_status io_data_client_parties(io_data *h, const int32_t *clients, int32_t n, int32_t *party);
/* The file of party p of a data set prepared with --parties: "<path without .h5>.party<p>.h5". */
void io_data_party_path(const char *path, int32_t party, char *out, size_t cap);

/* Read the union of n row ranges of split ("train", "test" or "val") into x[sum count, features] and
 * y[sum count], ranges in the given order (independent I/O; n may be 0). Labels are checked to
 * lie in [0, classes). */
fh_status io_data_read_ranges(io_data *h, const char *split, int32_t n, const int64_t *start,
                              const int64_t *count, float *x, int32_t *y);
/* Rows of split ("train", "test" or "val") this process has read through io_data_read_ranges on h so
 * far (the [secagg] truth record checks that a dedicated aggregator reads no training rows). */
int64_t io_data_rows_read(const io_data *h, const char *split);

/* The true group of every client, out[clients] (/train/client_group int32; FH_EINPUT if the
 * file has none). Any rank, not collective. */
fh_status io_data_client_groups(io_data *h, int32_t *out);
/* Rows of a client with n rows that form its local held-out split (the last ones). */
int64_t io_data_local_test_rows(const io_data_meta *m, int64_t n);

/* Training rows per class (the train_class_counts attribute), out[classes]. */
fh_status io_data_class_counts(io_data *h, int64_t *out);

/* Class names: out[classes] strings of at most 63 chars + NUL each (caller buffer [classes][64]). */
fh_status io_data_class_names(io_data *h, char (*out)[64]);

/* ---- issue 15 (`fedhpc embed`, src/io/embed_io.c) ---------------------------------------- */
/* The features' names out[features] (at most 63 chars + NUL; a CSV data set's
 * /encoding/feature_name): *found = 1; *found = 0 when the file has none (image data). */
fh_status io_data_feature_names(io_data *h, char (*out)[64], int *found);
/* Item-set data (meta.items > 0): the item names of /item_name into out[items][64]; *found 0
 * when the file has none. */
fh_status io_data_item_names(io_data *h, char (*out)[64], int *found);
/* How to undo the standardisation of a CSV data set's numeric columns: the value in the CSV's
 * units is x * mul[j] + add[j] (numeric columns: the training std and mean; one-hot features and
 * data without /encoding: 1 and 0). *found = 1 when the file has an /encoding group. */
fh_status io_data_feature_scale(io_data *h, double *mul, double *add, int *found);
/* The embeddings file (format "fedhpc-embed", version 1; docs/embed.md), written collectively
 * over c to PATH.tmp and renamed: /embedding [rows, dim] float32, /cluster [rows] int32,
 * /pca [rows, 2] float32 (row i = training row i of the data file), /client_offsets
 * [clients + 1] int64, /centers [k, dim] float64; attributes format, version, k, dim, rows,
 * clients, model_file, data_file, silhouette. Each rank writes its nseg blocks of rows: block i
 * is its local rows [lfirst[i], lfirst[i + 1]) of emb/cluster/pca, written at file row gfirst[i]
 * (independent I/O); every rank passes the same meta. */
typedef struct {
    int64_t rows;
    int32_t dim, clients, k;
    const int64_t *client_offsets; /* [clients + 1] */
    const double *centers;         /* [k, dim]      */
    double silhouette;
    const char *model_file, *data_file;
} io_embed_meta;
fh_status io_embed_write(const char *path, const comm_t *c, const io_embed_meta *m, int32_t nseg, const int64_t *gfirst,
                         const int64_t *lfirst, const float *emb, const int32_t *cluster, const float *pca);

/* A summary of any fedhpc file (data, model or checkpoint) to stdout, for `fedhpc inspect`. */
fh_status io_inspect(const char *path);

/* Per-client state (e.g. SCAFFOLD control variates) kept on disk, not in memory: a
 * [clients, dim] float32 dataset filled with zeros; each rank reads and writes the rows of the
 * clients it hosts (independent parallel I/O). Create and close are collective. */
typedef struct io_state io_state;
fh_status io_state_create(const char *path, const comm_t *c, int32_t clients, int64_t dim,
                          io_state **h);
fh_status io_state_read(io_state *h, int32_t client, float *row);
fh_status io_state_write(io_state *h, int32_t client, const float *row);
void io_state_close(io_state *h);

/* Model files (one process; temp file + rename). */
typedef struct {
    char algorithm[32];
    int32_t rounds;
    int64_t seed;
    char data_file[1024];
} io_model_info;
fh_status io_model_write(const char *path, const model_t *m, const float *params,
                         const io_model_info *info);
/* Read parameters of a model file; *nparams in: capacity of params, out: count. */
fh_status io_model_read(const char *path, float *params, int64_t *nparams);

/* Record files (src/io/rec_io.c): an HDF5 file written by ONE process as a run goes, for
 * transcripts and test-only dumps (formats documented in docs/file-formats.md). Datasets are
 * named by paths ("round_00000001/masked_input"; groups are created as needed), of rank 1
 * (cols 0) or 2 [rows, cols]; root attributes "format" (the caller's) and "version". */
#define IO_REC_VERSION 1
typedef enum { IO_U8 = 0, IO_I32, IO_I64, IO_U64, IO_F64 } io_type;
typedef struct io_rec io_rec;
/* Create (truncate) path. FH_EIO naming the file if it cannot be written. */
fh_status io_rec_create(const char *path, const char *format, io_rec **h);
/* Open for reading; FH_EINPUT unless it is an HDF5 file of that format. */
fh_status io_rec_open(const char *path, const char *format, io_rec **h);
const char *io_rec_path(const io_rec *h);
/* A whole dataset of rows x cols values (cols 0: a 1-D dataset of `rows` values). */
fh_status io_rec_put(io_rec *h, const char *name, io_type t, int64_t rows, int64_t cols, const void *buf);
/* Rows [first_row, first_row + nrows) of a [total_rows, cols] dataset, created on first use
 * (rows never written read as 0). */
fh_status io_rec_put_rows(io_rec *h, const char *name, io_type t, int64_t total_rows, int64_t cols,
                          int64_t first_row, int64_t nrows, const void *buf);
/* Root attributes (integers). */
fh_status io_rec_put_i64(io_rec *h, const char *name, int64_t v);
fh_status io_rec_get_i64(io_rec *h, const char *name, int64_t *v);
int io_rec_has(io_rec *h, const char *name);
/* Shape of a dataset (*cols = 0 for 1-D); FH_EINPUT when missing. */
fh_status io_rec_shape(io_rec *h, const char *name, int64_t *rows, int64_t *cols);
/* Read a whole dataset of exactly n values, converted to type t. */
fh_status io_rec_get(io_rec *h, const char *name, io_type t, void *buf, int64_t n);
fh_status io_rec_flush(io_rec *h);
void io_rec_close(io_rec *h);

#endif
