/* fedhpc/data.h — real data sets into memory, and partitioners.
 *
 * Pure computation: no MPI, no HDF5 (src/io writes what this module builds).
 * Rows are row-major float32 features and int32 class labels in [0, nclasses).
 */
#ifndef FEDHPC_DATA_H
#define FEDHPC_DATA_H

#include "fedhpc/common.h"

#include <stdint.h>

typedef struct {
    int64_t n;   /* rows                         */
    int32_t d;   /* features per row             */
    float *x;    /* [n, d] row-major             */
    int32_t *y;  /* [n] labels in [0, nclasses)  */
} data_table;

/* How the columns of a CSV became features (stored in the HDF5 file so that evaluation data
 * can be encoded the same way). One entry per CSV column. */
enum { COL_NUMERIC = 0, COL_CATEGORICAL = 1, COL_LABEL = 2, COL_DROPPED = 3 };
typedef struct {
    int32_t ncols;
    char **col_name;    /* [ncols]                                                        */
    int32_t *kind;      /* [ncols] COL_*                                                  */
    double *mean;       /* [ncols] numeric: training mean (also the imputed value)        */
    double *std;        /* [ncols] numeric: training std (1 if zero)                      */
    int32_t *first_feature; /* [ncols] index of the column's first feature, -1 if none    */
    int32_t *ncat;      /* [ncols] categorical: number of categories (one-hot width)      */
    char ***cat;        /* [ncols][ncat] categorical: category strings, sorted; the
                           imputed value for a missing cell is the most frequent one       */
    int32_t *mode;      /* [ncols] categorical: index of the most frequent category       */
    int32_t d;          /* features                                                        */
    char **feature_name;/* [d] "col" for numeric, "col=value" for one-hot                  */
} data_encoding;

typedef struct {
    char name[256];        /* "fmnist", "lending_club", "credit_data", "csv:PATH"            */
    int32_t nclasses;
    char **class_name;     /* [nclasses]                                                      */
    data_table train, test;
    data_table val;        /* validation split (CSV with val_frac > 0), else n = 0: rows taken
                              out of the training rows, never part of the test split          */
    data_encoding *enc;    /* NULL for image data                                             */
    /* Natural grouping of training rows (for --partition natural), else NULL/0: */
    int32_t *row_key;      /* [train.n] index into key_name                                   */
    int32_t nkeys;
    char **key_name;       /* [nkeys] sorted distinct values of the --by column               */
    /* CSV: feature cells that spell a non-finite number ("nan", "inf", "-Infinity", "1e999"),
     * treated as missing; the first one's line and column (index into enc->col_name).      */
    int64_t nonfinite_cells, nonfinite_line;
    int32_t nonfinite_col;
    /* item-set data (src/data/baskets.c): rows are item indices as floats, -1 padding */
    int32_t items;         /* item vocabulary (0: not item-set data)                          */
    char **item_name;      /* [items]                                                         */
} data_set;

/* Fashion-MNIST from the four idx .gz files in `dir` (train-images-idx3-ubyte.gz,
 * train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz), read with
 * zlib. Pixels scaled to [0, 1]. 60000 train / 10000 test rows, d = 784, 10 classes.
 * Bad or missing files: FH_EINPUT naming the file and what was expected. */
fh_status data_load_fmnist(const char *dir, data_set *out);

typedef struct {
    const char *label;     /* label column name (required)                                   */
    const char *positive;  /* if set: binary task, class 1 = rows whose label equals this     */
    const char *by;        /* if set: natural-partition column; not used as a feature         */
    double test_frac;      /* held-out fraction, e.g. 0.2 (random rows, seed-deterministic)   */
    uint64_t seed;
    double val_frac;       /* validation fraction taken from the non-test rows (0: none); the
                              test rows are the same as without it; encoding fit on train only */
} data_csv_opts;

/* Any CSV with a header row. Numeric columns (every non-missing cell parses as a number) are
 * standardised with training-split statistics; other columns are one-hot encoded (categories
 * seen in training; unseen ones encode as all zeros); missing cells ("", "NA", "?", and any
 * spelling of a non-finite number: nan, inf, -inf, 1e999 — counted in nonfinite_cells) imputed
 * (numeric: training mean; categorical: most frequent); in the label and --by columns they are
 * refused like missing cells, with FILE:LINE. Without `positive`, labels are the
 * sorted distinct label values. Ragged rows, a missing label column, an empty file: FH_EINPUT
 * with "FILE:LINE: ..." messages. */
fh_status data_load_csv(const char *path, const data_csv_opts *o, data_set *out);

/* ---- item sets (src/data/baskets.c) ------------------------------------------------------ */
enum { DATA_ITEMS_INDEX = 0, DATA_ITEMS_MULTIHOT = 1 };
typedef struct {
    int encoding;      /* DATA_ITEMS_INDEX: x[L] item indices as floats, -1 padding (L = the
                          longest set), data_set.items = vocabulary; DATA_ITEMS_MULTIHOT:
                          x[items] bag of items (0/1), data_set.items = 0                    */
    const char *by;    /* ticdata: natural-partition column (e.g. MOSHOOFD), or NULL         */
    double test_frac;  /* held-out fraction (RNG_SPLIT stream of seed, as CSV data)          */
    uint64_t seed;
} data_items_opts;

/* Supermarket baskets: DIR/supermarket_baskets.csv (basket_id,high|low,space-separated 1-based
 * department indices) and DIR/supermarket_items.txt (department names, one a line). Label:
 * high = class 1. Repeated items in a basket count once. An index outside 1..items, an empty
 * basket, a label other than high/low: FH_EINPUT "FILE:LINE: ...". No --by column. */
fh_status data_load_supermarket(const char *dir, const data_items_opts *o, data_set *out);
/* CoIL 2000 (ticdata.csv): a customer's items are the products it holds (the A* count columns
 * after the P* columns, held when > 0); customers holding none get the item "(none)" (the last
 * index). Label CARAVAN, insurance = class 1. o->by names any column (e.g. MOSHOOFD). */
fh_status data_load_ticdata(const char *path, const data_items_opts *o, data_set *out);

/* ---- MovieLens for [model] lightgcn (src/data/movielens.c, docs/recommend.md) ------------ */
typedef struct {
    const char *partition; /* "users": disjoint users per client; "genre": disjoint catalogues   */
    int32_t clients;
    double test_frac;      /* held out: the latest floor(f * n_u) positives of each user          */
    double min_rating;     /* implicit feedback: a rating >= min_rating is an interaction         */
    uint64_t seed;         /* users: rng_stream(seed, 0, 0, RNG_PARTITION) deals them to clients  */
} data_ml_opts;
/* The ratings CSV at path (plain or gzip): training rows x = [user, heldout], y = item, items as
 * classes, no test split; *client_of_row [train.n] (caller frees). A rating outside 0.5-5, a
 * malformed line, or (optional enterprise column) a user (users) / movie (genre) in two
 * enterprises: FH_EINPUT with FILE:LINE. */
fh_status data_load_movielens(const char *path, const data_ml_opts *o, data_set *out, int32_t **client_of_row);

void data_free(data_set *ds);
void data_encoding_free(data_encoding *e);

/* ---- partitioners ---------------------------------------------------------------------- */
typedef enum { PART_IID = 0, PART_DIRICHLET, PART_SHARDS, PART_NATURAL, PART_QUANTITY } part_kind;

typedef struct {
    part_kind kind;
    int32_t clients;   /* number of clients (natural: taken from the keys, this is ignored) */
    double alpha;      /* dirichlet: concentration; quantity: sigma of log-normal sizes     */
    uint64_t seed;
    int32_t min_size;  /* every client gets at least this many rows (dirichlet/quantity)    */
} part_opts;

/* Parse "iid" | "dirichlet" | "shards" | "natural" | "quantity". */
fh_status part_parse(const char *s, part_kind *out);
const char *part_name(part_kind k);

/* Assign every training row to a client: client_of_row[n] in [0, clients).
 * natural: client = row_key (requires row_key, nkeys clients). All from RNG_PARTITION /
 * RNG_DIRICHLET / RNG_SIZES streams of o->seed. Impossible requests (more clients than rows,
 * min_size unreachable) give FH_EINPUT. */
fh_status part_assign(const part_opts *o, const int32_t *y, int64_t n, int32_t nclasses,
                      const int32_t *row_key, int32_t nkeys, int32_t *client_of_row);

/* Stable counting sort by client: perm[n] lists row indices client by client, and
 * offsets[clients + 1] gives each client's range in perm. */
fh_status part_layout(const int32_t *client_of_row, int64_t n, int32_t clients, int64_t *perm,
                      int64_t *offsets);

/* ---- latent client groups (src/data/groups.c) ------------------------------------------- */
typedef enum { GROUP_ROTATE = 0, GROUP_PERMUTE_LABELS = 1 } group_kind;
/* Parse "rotate" | "permute-labels". */
fh_status group_parse(const char *s, group_kind *out);
const char *group_name(group_kind k);
/* group[c] in [0, K) for c < clients: a balanced random assignment (client count per group
 * differs by at most one), from rng_stream(seed, 0, 0, RNG_GROUPS). */
fh_status group_assign(int32_t clients, int32_t K, uint64_t seed, int32_t *group);
/* Label permutation of group g (group 0: identity), perm[nclasses], from
 * rng_stream(seed, g, 1, RNG_GROUPS). */
void group_label_perm(int32_t g, uint64_t seed, int32_t nclasses, int32_t *perm);
/* Transform n rows x[n, d], y[n] in place; row i belongs to group row_group[i].
 * rotate: square images (d = s*s) rotated by g * 360/K degrees about the centre (bilinear,
 * zero outside); permute-labels: y = perm_g[y]. Non-square d with rotate: FH_EINPUT. */
fh_status group_apply(group_kind kind, int32_t K, uint64_t seed, int32_t nclasses, int32_t d,
                      float *x, int32_t *y, int64_t n, const int32_t *row_group);

#endif
