/* Partitioned data sets in HDF5: write (one process), open and read a rank's clients' rows
 * (parallel HDF5). Layout: include/fedhpc/io.h and docs/file-formats.md.
 *
 * Integrity (docs/data-integrity.md): prepare stores attribute "crc32" on every numeric
 * dataset (/train/x, /train/y, /train/client_offsets, /train/client_group, /test/x, /test/y):
 * CRC-32 (zlib) of its elements as little-endian bytes in row-major order, computed from the
 * buffers being written (nothing is read back); the root attribute "checksums" = "crc32" says
 * they are there. io_data_verify recomputes them with every rank reading one contiguous slice of
 * every dataset, and joins the slices' CRCs in rank order with crc32_combine. */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/io.h"
#include "h5util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

struct io_data {
    char path[1024];
    hid_t file;
    io_data_meta meta;
    hid_t off_d;                /* /train/client_offsets                    */
    hid_t x_d[3], y_d[3];       /* [0] train, [1] test, [2] val (if any)    */
    int64_t rows_read[3];       /* rows read by io_data_read_ranges          */
};

/* ---- write ---------------------------------------------------------------------------------- */

static fh_status write_encoding(hid_t file, const data_encoding *e)
{
    fh_status st = FH_OK, st_fail = FH_EIO;
    hid_t g = H5Gcreate2(file, "encoding", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int64_t *cat_off = NULL;
    char **cats = NULL;
    H5CHK(g, "HDF5: cannot create group /encoding");
    hsize_t nc = (hsize_t)e->ncols, nf = (hsize_t)e->d;
    if ((st = h5_dset_write_strs(g, "col_name", e->col_name, nc)) != FH_OK) goto fail;
    if ((st = h5_dset_write(g, "kind", H5T_NATIVE_INT32, 1, &nc, e->kind)) != FH_OK) goto fail;
    if ((st = h5_dset_write(g, "mean", H5T_NATIVE_DOUBLE, 1, &nc, e->mean)) != FH_OK) goto fail;
    if ((st = h5_dset_write(g, "std", H5T_NATIVE_DOUBLE, 1, &nc, e->std)) != FH_OK) goto fail;
    if ((st = h5_dset_write(g, "first_feature", H5T_NATIVE_INT32, 1, &nc, e->first_feature)) != FH_OK) goto fail;
    if ((st = h5_dset_write(g, "ncat", H5T_NATIVE_INT32, 1, &nc, e->ncat)) != FH_OK) goto fail;
    if ((st = h5_dset_write(g, "mode", H5T_NATIVE_INT32, 1, &nc, e->mode)) != FH_OK) goto fail;
    if ((st = h5_dset_write_strs(g, "feature_name", e->feature_name, nf)) != FH_OK) goto fail;
    /* categories of all columns, flattened, with per-column offsets */
    cat_off = fh_calloc(nc + 1, sizeof *cat_off);
    if (!cat_off) { st = fh_error_set(FH_ENOMEM, "out of memory"); goto fail; }
    for (hsize_t c = 0; c < nc; c++) cat_off[c + 1] = cat_off[c] + (e->cat && e->cat[c] ? e->ncat[c] : 0);
    cats = fh_calloc((size_t)cat_off[nc], sizeof *cats);
    if (!cats) { st = fh_error_set(FH_ENOMEM, "out of memory"); goto fail; }
    for (hsize_t c = 0; c < nc; c++)
        for (int64_t k = cat_off[c]; k < cat_off[c + 1]; k++) cats[k] = e->cat[c][k - cat_off[c]];
    hsize_t ncat = (hsize_t)cat_off[nc], nco = nc + 1;
    if ((st = h5_dset_write_strs(g, "category", cats, ncat)) != FH_OK) goto fail;
    if ((st = h5_dset_write(g, "category_offsets", H5T_NATIVE_INT64, 1, &nco, cat_off)) != FH_OK) goto fail;
fail:
    free(cats);
    free(cat_off);
    if (g >= 0) H5Gclose(g);
    return st;
}

/* CRC-32 of n elements of `size` bytes, as little-endian bytes (zlib takes < 4 GiB a call). */
static uLong crc_le(uLong crc, const void *buf, size_t n, size_t size)
{
    const unsigned char *p = buf;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    unsigned char tmp[4096];
    while (n) {
        size_t k = n > sizeof tmp / size ? sizeof tmp / size : n;
        for (size_t i = 0; i < k; i++)
            for (size_t b = 0; b < size; b++) tmp[i * size + b] = p[i * size + size - 1 - b];
        crc = crc32(crc, tmp, (uInt)(k * size));
        p += k * size;
        n -= k;
    }
#else
    size_t bytes = n * size;
    while (bytes) {
        const uInt k = bytes > (1u << 30) ? (1u << 30) : (uInt)bytes;
        crc = crc32(crc, p, k);
        p += k;
        bytes -= k;
    }
#endif
    return crc;
}

/* Attribute "crc32" on dataset loc/name. */
static fh_status put_crc(hid_t loc, const char *name, uLong crc)
{
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) return fh_error_set(FH_EIO, "HDF5: cannot open %s to record its checksum", name);
    int64_t v = (int64_t)(uint32_t)crc;
    fh_status st = h5_attr_write_i64(d, "crc32", &v, 1);
    H5Dclose(d);
    return st;
}

/* n rows of t (rows perm[0..n) when perm is set, else the first n) as datasets x and y of g */
static fh_status write_table(hid_t g, const data_table *t, const int64_t *perm, int64_t n)
{
    float *x = NULL;
    int32_t *y = NULL;
    if (perm) {
        x = malloc((size_t)(n ? n : 1) * (size_t)t->d * sizeof *x);
        y = malloc((size_t)(n ? n : 1) * sizeof *y);
        if (!x || !y) {
            free(x);
            free(y);
            return fh_error_set(FH_ENOMEM, "out of memory reordering %lld rows", (long long)n);
        }
        for (int64_t i = 0; i < n; i++) {
            memcpy(x + i * t->d, t->x + perm[i] * t->d, (size_t)t->d * sizeof *x);
            y[i] = t->y[perm[i]];
        }
    }
    hsize_t dx[2] = {(hsize_t)n, (hsize_t)t->d}, dy[1] = {(hsize_t)n};
    fh_status st = h5_dset_write(g, "x", H5T_NATIVE_FLOAT, 2, dx, perm ? x : t->x);
    if (st == FH_OK) st = h5_dset_write(g, "y", H5T_NATIVE_INT32, 1, dy, perm ? y : t->y);
    if (st == FH_OK)
        st = put_crc(g, "x", crc_le(crc32(0L, Z_NULL, 0), perm ? x : t->x, (size_t)n * (size_t)t->d, sizeof(float)));
    if (st == FH_OK) st = put_crc(g, "y", crc_le(crc32(0L, Z_NULL, 0), perm ? y : t->y, (size_t)n, sizeof(int32_t)));
    free(x);
    free(y);
    return st;
}

fh_status io_data_write(const char *path, const data_set *ds, const io_data_meta *meta,
                        const int64_t *perm, const int64_t *offsets, char *const *client_name)
{
    h5_quiet();
    char tmp[1100];
    h5_tmp_name(path, tmp, sizeof tmp);
    fh_status st = FH_OK, st_fail = FH_EIO;
    hid_t f = H5I_INVALID_HID, gtr = H5I_INVALID_HID, gte = H5I_INVALID_HID, gva = H5I_INVALID_HID;
    /* class counts of the whole training split (on every party's file too: class weights agree) */
    int64_t *counts = fh_calloc((size_t)ds->nclasses, sizeof *counts);
    FH_CHECK_ALLOC(counts);
    for (int64_t i = 0; i < ds->train.n; i++) counts[ds->train.y[i]]++;
    /* a party's file ([parties] > 0, party >= 0) holds the rows of its clients and no test split;
     * the aggregator's (party -1) no training rows and the test split */
    const int party_file = meta->parties > 0 && meta->party >= 0;
    const int64_t ntrain = offsets[meta->clients], ntest = party_file ? 0 : ds->test.n;
    const int64_t nval = party_file ? 0 : ds->val.n; /* validation split (prepare --val-frac) */

    /* thousands of classes (the items of a `prepare movielens` file): train_class_counts is over
     * the 64 KB of a compact attribute and needs the 1.8 file format's dense attribute storage */
    hid_t cfapl = H5P_DEFAULT;
    if (ds->nclasses > 4096 && (cfapl = H5Pcreate(H5P_FILE_ACCESS)) >= 0)
        H5Pset_libver_bounds(cfapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST);
    f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, cfapl);
    if (cfapl != H5P_DEFAULT && cfapl >= 0) H5Pclose(cfapl);
    if (f < 0) {
        free(counts);
        return fh_error_set(FH_EINPUT, "%s: cannot create the output file (does the directory exist?)", path);
    }
    int64_t v;
#define ATTR_I(name, val) do { v = (val); if ((st = h5_attr_write_i64(f, name, &v, 1)) != FH_OK) goto fail; } while (0)
    if ((st = h5_attr_write_str(f, "format", "fedhpc-data")) != FH_OK) goto fail;
    ATTR_I("version", IO_DATA_VERSION);
    if ((st = h5_attr_write_str(f, "dataset", meta->dataset)) != FH_OK) goto fail;
    if ((st = h5_attr_write_str(f, "partition", meta->partition)) != FH_OK) goto fail;
    if ((st = h5_attr_write_f64(f, "alpha", meta->alpha)) != FH_OK) goto fail;
    ATTR_I("seed", meta->seed);
    ATTR_I("features", ds->train.d);
    ATTR_I("classes", ds->nclasses);
    ATTR_I("clients", meta->clients);
    ATTR_I("train_rows", ntrain);
    ATTR_I("test_rows", ntest);
    if (nval > 0) ATTR_I("val_rows", nval); /* absent: no /val (files without one are unchanged) */
    if (meta->parties > 0) {
        ATTR_I("parties", meta->parties);
        ATTR_I("party", meta->party);
    }
#undef ATTR_I
    if ((st = h5_attr_write_i64(f, "train_class_counts", counts, (hsize_t)ds->nclasses)) != FH_OK) goto fail;
    if ((st = h5_dset_write_strs(f, "classes", ds->class_name, (hsize_t)ds->nclasses)) != FH_OK) goto fail;

    gtr = H5Gcreate2(f, "train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5CHK(gtr, "HDF5: cannot create group /train");
    if ((st = write_table(gtr, &ds->train, perm, ntrain)) != FH_OK) goto fail;
    if (ds->items > 0) { /* item-set data: CSR next to the padded rows (src/io/items_io.c) */
        v = ds->items;
        if ((st = h5_attr_write_i64(f, "items", &v, 1)) != FH_OK) goto fail;
        if ((st = h5_items_write(gtr, &ds->train, perm, ntrain)) != FH_OK) goto fail;
        if (ds->item_name && (st = h5_dset_write_strs(f, "item_name", ds->item_name, (hsize_t)ds->items)) != FH_OK) goto fail;
    }
    hsize_t no = (hsize_t)meta->clients + 1;
    if ((st = h5_dset_write(gtr, "client_offsets", H5T_NATIVE_INT64, 1, &no, offsets)) != FH_OK) goto fail;
    if ((st = put_crc(gtr, "client_offsets", crc_le(crc32(0L, Z_NULL, 0), offsets, (size_t)no, sizeof(int64_t)))) != FH_OK)
        goto fail;
    if (client_name && (st = h5_dset_write_strs(gtr, "client_name", client_name, (hsize_t)meta->clients)) != FH_OK) goto fail;
    if (meta->parties > 0) { /* every client's rows (FedAvg weights: public) and its party */
        hsize_t nc = (hsize_t)meta->clients;
        if ((st = h5_dset_write(gtr, "client_rows", H5T_NATIVE_INT64, 1, &nc, meta->client_rows)) != FH_OK) goto fail;
        if ((st = put_crc(gtr, "client_rows", crc_le(crc32(0L, Z_NULL, 0), meta->client_rows, (size_t)nc, sizeof(int64_t)))) != FH_OK)
            goto fail;
        if ((st = h5_dset_write(gtr, "client_party", H5T_NATIVE_INT32, 1, &nc, meta->client_party)) != FH_OK) goto fail;
        if ((st = put_crc(gtr, "client_party", crc_le(crc32(0L, Z_NULL, 0), meta->client_party, (size_t)nc, sizeof(int32_t)))) != FH_OK)
            goto fail;
    }
    if (meta->client_group) {
        hsize_t ng = (hsize_t)meta->clients;
        if ((st = h5_dset_write(gtr, "client_group", H5T_NATIVE_INT32, 1, &ng, meta->client_group)) != FH_OK) goto fail;
        if ((st = put_crc(gtr, "client_group", crc_le(crc32(0L, Z_NULL, 0), meta->client_group, (size_t)ng, sizeof(int32_t)))) != FH_OK)
            goto fail;
        v = meta->groups;
        if ((st = h5_attr_write_i64(f, "groups", &v, 1)) != FH_OK) goto fail;
    }
    if (meta->local_test_frac > 0 && (st = h5_attr_write_f64(f, "local_test_frac", meta->local_test_frac)) != FH_OK) goto fail;
    gte = H5Gcreate2(f, "test", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5CHK(gte, "HDF5: cannot create group /test");
    if ((st = write_table(gte, &ds->test, NULL, ntest)) != FH_OK) goto fail;
    if (nval > 0) {
        gva = H5Gcreate2(f, "val", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        H5CHK(gva, "HDF5: cannot create group /val");
        if ((st = write_table(gva, &ds->val, NULL, nval)) != FH_OK) goto fail;
        H5Gclose(gva);
        gva = H5I_INVALID_HID;
    }
    if (ds->items > 0 && (st = h5_items_write(gte, &ds->test, NULL, ntest)) != FH_OK) goto fail;
    if (ds->enc && (st = write_encoding(f, ds->enc)) != FH_OK) goto fail;
    if ((st = h5_attr_write_str(f, "checksums", "crc32")) != FH_OK) goto fail;
    H5Gclose(gtr);
    H5Gclose(gte);
    gtr = gte = H5I_INVALID_HID;
    H5CHK(H5Fclose(f), "%s: cannot close the file", tmp);
    f = H5I_INVALID_HID;
    free(counts);
    return h5_commit_rename(tmp, path);
fail:
    if (gtr >= 0) H5Gclose(gtr);
    if (gte >= 0) H5Gclose(gte);
    if (gva >= 0) H5Gclose(gva);
    if (f >= 0) H5Fclose(f);
    unlink(tmp);
    free(counts);
    return st;
}

/* ---- open and read (parallel) --------------------------------------------------------------- */

static fh_status check_offsets(io_data *h)
{
    /* offsets must start at 0, never decrease, and end at train_rows: read in chunks */
    const hsize_t chunk = 1 << 16;
    int64_t *buf = malloc(chunk * sizeof *buf);
    FH_CHECK_ALLOC(buf);
    fh_status st = FH_OK, st_fail = FH_EINPUT;
    hid_t fs = H5Dget_space(h->off_d), ms = H5I_INVALID_HID;
    int64_t prev = 0;
    hsize_t total = (hsize_t)h->meta.clients + 1;
    H5CHK(fs, "%s: client_offsets has no dataspace", h->path);
    for (hsize_t at = 0; at < total; at += chunk) {
        hsize_t k = total - at < chunk ? total - at : chunk;
        H5CHK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, &at, NULL, &k, NULL), "%s: bad selection", h->path);
        ms = H5Screate_simple(1, &k, NULL);
        H5CHK(ms, "%s: cannot make a dataspace", h->path);
        H5CHK(H5Dread(h->off_d, H5T_NATIVE_INT64, ms, fs, H5P_DEFAULT, buf),
              "%s: /train/client_offsets cannot be read (truncated file?)", h->path);
        H5Sclose(ms);
        ms = H5I_INVALID_HID;
        for (hsize_t i = 0; i < k; i++) {
            if ((at == 0 && i == 0 && buf[0] != 0) || buf[i] < prev) {
                st = fh_error_set(FH_EINPUT, "%s: /train/client_offsets: expected non-decreasing offsets from 0", h->path);
                goto fail;
            }
            prev = buf[i];
        }
    }
    if (prev != h->meta.train_rows)
        st = fh_error_set(FH_EINPUT, "%s: /train/client_offsets: expected to end at train_rows = %lld, ends at %lld",
                          h->path, (long long)h->meta.train_rows, (long long)prev);
fail:
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    free(buf);
    return st;
}

static fh_status open_checked(const char *path, const comm_t *c, io_data *h)
{
    fh_status st = FH_OK, st_fail = FH_EINPUT;
    hid_t fapl = H5I_INVALID_HID;
    io_data_meta *m = &h->meta;
    snprintf(h->path, sizeof h->path, "%s", path);
    if (access(path, R_OK) != 0)
        return fh_error_set(FH_EINPUT, "%s: cannot read the data file (run `fedhpc prepare` first?)", path);
    if (H5Fis_hdf5(path) <= 0)
        return fh_error_set(FH_EINPUT, "%s: not a readable HDF5 file (truncated or not made by fedhpc prepare)", path);
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5CHK(fapl, "HDF5: cannot create a file access list");
    if (c && c->size > 1) H5CHK(H5Pset_fapl_mpio(fapl, c->comm, MPI_INFO_NULL), "HDF5: cannot set MPI-IO");
    h->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    fapl = H5I_INVALID_HID;
    H5CHK(h->file, "%s: not a readable HDF5 file (truncated or not made by fedhpc prepare)", path);
    char fmt[64];
    int64_t v;
    FH_TRY(h5_attr_read_str(h->file, "format", fmt, sizeof fmt, path));
    if (strcmp(fmt, "fedhpc-data") != 0)
        return fh_error_set(FH_EINPUT, "%s: expected a fedhpc data file (format 'fedhpc-data'), found format '%s'", path, fmt);
    FH_TRY(h5_attr_read_i64(h->file, "version", &v, 1, path));
    if (v != IO_DATA_VERSION)
        return fh_error_set(FH_EINPUT, "%s: data format version %lld; this fedhpc reads version %d (re-run fedhpc prepare)", path, (long long)v, IO_DATA_VERSION);
    FH_TRY(h5_attr_read_str(h->file, "dataset", m->dataset, sizeof m->dataset, path));
    FH_TRY(h5_attr_read_str(h->file, "partition", m->partition, sizeof m->partition, path));
    FH_TRY(h5_attr_read_f64(h->file, "alpha", &m->alpha, path));
    FH_TRY(h5_attr_read_i64(h->file, "seed", &m->seed, 1, path));
    FH_TRY(h5_attr_read_i64(h->file, "features", &v, 1, path));
    m->features = (int32_t)v;
    FH_TRY(h5_attr_read_i64(h->file, "classes", &v, 1, path));
    m->classes = (int32_t)v;
    FH_TRY(h5_attr_read_i64(h->file, "clients", &v, 1, path));
    m->clients = (int32_t)v;
    FH_TRY(h5_attr_read_i64(h->file, "train_rows", &m->train_rows, 1, path));
    FH_TRY(h5_attr_read_i64(h->file, "test_rows", &m->test_rows, 1, path));
    m->party = -1;
    if (h5_attr_exists(h->file, "parties")) { /* one of the files of prepare --parties */
        FH_TRY(h5_attr_read_i64(h->file, "parties", &v, 1, path));
        m->parties = (int32_t)v;
        FH_TRY(h5_attr_read_i64(h->file, "party", &v, 1, path));
        m->party = (int32_t)v;
        if (m->parties < 1 || m->parties > m->clients || m->party < -1 || m->party >= m->parties)
            return fh_error_set(FH_EINPUT, "%s: attributes parties = %d, party = %d: expected 1 <= parties <= clients and "
                                "-1 <= party < parties", path, m->parties, m->party);
    }
    if (m->features < 1 || m->classes < 2 || m->clients < 1 || (m->parties == 0 && m->train_rows < m->clients) ||
        m->train_rows < 0 || m->test_rows < 0)
        return fh_error_set(FH_EINPUT, "%s: inconsistent metadata (features %d, classes %d, clients %d, train_rows %lld)",
                            path, m->features, m->classes, m->clients, (long long)m->train_rows);
    /* readers allocate rows x features floats: a damaged file can declare 2^62 rows it never stores */
    if ((uint64_t)m->train_rows > (uint64_t)INT64_MAX / sizeof(float) / (uint64_t)m->features ||
        (uint64_t)m->test_rows > (uint64_t)INT64_MAX / sizeof(float) / (uint64_t)m->features)
        return fh_error_set(FH_EINPUT, "%s: %lld train and %lld test rows of %d features: too large to read", path,
                            (long long)m->train_rows, (long long)m->test_rows, m->features);
    /* shapes */
    const char *xs[2] = {"train/x", "test/x"}, *ys[2] = {"train/y", "test/y"};
    int64_t rows[2] = {m->train_rows, m->test_rows};
    for (int s = 0; s < 2; s++) {
        hsize_t dx[2], dy[1];
        FH_TRY(h5_dset_shape(h->file, xs[s], 2, dx, path));
        FH_TRY(h5_dset_shape(h->file, ys[s], 1, dy, path));
        if (dx[0] != (hsize_t)rows[s] || dx[1] != (hsize_t)m->features || dy[0] != (hsize_t)rows[s])
            return fh_error_set(FH_EINPUT, "%s: /%s: expected [%lld, %d] rows x features, found [%llu, %llu]", path,
                                xs[s], (long long)rows[s], m->features, (unsigned long long)dx[0], (unsigned long long)dx[1]);
        h->x_d[s] = H5Dopen2(h->file, xs[s], H5P_DEFAULT);
        h->y_d[s] = H5Dopen2(h->file, ys[s], H5P_DEFAULT);
        H5CHK(h->x_d[s], "%s: cannot open /%s", path, xs[s]);
        H5CHK(h->y_d[s], "%s: cannot open /%s", path, ys[s]);
    }
    if (h5_attr_exists(h->file, "val_rows")) { /* prepare --val-frac: the validation split */
        FH_TRY(h5_attr_read_i64(h->file, "val_rows", &m->val_rows, 1, path));
        hsize_t dx[2], dy[1];
        if (m->val_rows < 1 || (uint64_t)m->val_rows > (uint64_t)INT64_MAX / sizeof(float) / (uint64_t)m->features)
            return fh_error_set(FH_EINPUT, "%s: attribute val_rows = %lld: expected a positive row count", path,
                                (long long)m->val_rows);
        FH_TRY(h5_dset_shape(h->file, "val/x", 2, dx, path));
        FH_TRY(h5_dset_shape(h->file, "val/y", 1, dy, path));
        if (dx[0] != (hsize_t)m->val_rows || dx[1] != (hsize_t)m->features || dy[0] != (hsize_t)m->val_rows)
            return fh_error_set(FH_EINPUT, "%s: /val/x: expected [%lld, %d] rows x features, found [%llu, %llu]", path,
                                (long long)m->val_rows, m->features, (unsigned long long)dx[0], (unsigned long long)dx[1]);
        h->x_d[2] = H5Dopen2(h->file, "val/x", H5P_DEFAULT);
        h->y_d[2] = H5Dopen2(h->file, "val/y", H5P_DEFAULT);
        H5CHK(h->x_d[2], "%s: cannot open /val/x", path);
        H5CHK(h->y_d[2], "%s: cannot open /val/y", path);
    }
    hsize_t doff[1];
    FH_TRY(h5_dset_shape(h->file, "train/client_offsets", 1, doff, path));
    if (doff[0] != (hsize_t)m->clients + 1)
        return fh_error_set(FH_EINPUT, "%s: /train/client_offsets: expected %d values (clients + 1)", path, m->clients + 1);
    h->off_d = H5Dopen2(h->file, "train/client_offsets", H5P_DEFAULT);
    H5CHK(h->off_d, "%s: cannot open /train/client_offsets", path);
    m->has_client_names = H5Lexists(h->file, "train/client_name", H5P_DEFAULT) > 0;
    if (m->parties > 0) {
        const char *pn[2] = {"train/client_rows", "train/client_party"};
        for (int i = 0; i < 2; i++) {
            hsize_t dp[1];
            FH_TRY(h5_dset_shape(h->file, pn[i], 1, dp, path));
            if (dp[0] != (hsize_t)m->clients)
                return fh_error_set(FH_EINPUT, "%s: /%s: expected %d values (one per client)", path, pn[i], m->clients);
        }
    }
    m->has_client_group = H5Lexists(h->file, "train/client_group", H5P_DEFAULT) > 0;
    if (m->has_client_group) {
        hsize_t dg[1];
        FH_TRY(h5_dset_shape(h->file, "train/client_group", 1, dg, path));
        if (dg[0] != (hsize_t)m->clients)
            return fh_error_set(FH_EINPUT, "%s: /train/client_group: expected %d values (one per client)", path, m->clients);
        FH_TRY(h5_attr_read_i64(h->file, "groups", &v, 1, path));
        m->groups = (int32_t)v;
    }
    if (h5_attr_exists(h->file, "items")) { /* item-set data */
        FH_TRY(h5_attr_read_i64(h->file, "items", &v, 1, path));
        m->items = v > 0 && v < INT32_MAX ? (int32_t)v : 0;
    }
    if (h5_attr_exists(h->file, "local_test_frac")) {
        FH_TRY(h5_attr_read_f64(h->file, "local_test_frac", &m->local_test_frac, path));
        if (!(m->local_test_frac >= 0 && m->local_test_frac < 1))
            return fh_error_set(FH_EINPUT, "%s: attribute local_test_frac: expected a number in [0, 1), found %g", path, m->local_test_frac);
    }
    m->checksums = h5_attr_exists(h->file, "checksums");
    if (m->checksums) {
        char kind[32];
        FH_TRY(h5_attr_read_str(h->file, "checksums", kind, sizeof kind, path));
        if (strcmp(kind, "crc32") != 0)
            return fh_error_set(FH_EINPUT, "%s: attribute checksums: expected 'crc32', found '%s'", path, kind);
    }
    FH_TRY(check_offsets(h));
fail:
    if (fapl >= 0) H5Pclose(fapl);
    return st;
}

fh_status io_data_open(const char *path, const comm_t *c, io_data **out, io_data_meta *meta)
{
    h5_quiet();
    *out = NULL;
    io_data *h = calloc(1, sizeof *h);
    FH_CHECK_ALLOC(h);
    h->file = h->off_d = H5I_INVALID_HID;
    for (int s = 0; s < 3; s++) h->x_d[s] = h->y_d[s] = H5I_INVALID_HID;
    fh_status st = open_checked(path, c, h);
    if (st != FH_OK) {
        io_data_close(h);
        return st;
    }
    *meta = h->meta;
    *out = h;
    return FH_OK;
}

void io_data_close(io_data *h)
{
    if (!h) return;
    for (int s = 0; s < 3; s++) {
        if (h->x_d[s] >= 0) H5Dclose(h->x_d[s]);
        if (h->y_d[s] >= 0) H5Dclose(h->y_d[s]);
    }
    if (h->off_d >= 0) H5Dclose(h->off_d);
    if (h->file >= 0) H5Fclose(h->file);
    free(h);
}

/* ---- integrity ------------------------------------------------------------------------------ */

typedef struct {
    const char *name;  /* "train/x", ... */
    hid_t d;           /* open dataset (owned by h, or opened here: own = 1) */
    int own;
    hid_t mtype;       /* little-endian memory type */
    size_t size;       /* bytes per element */
    int rank;
    hsize_t rows, cols;
} vset;

/* This rank's slice [rows*r/P, rows*(r+1)/P) of dataset v: CRC of its little-endian bytes. */
static fh_status verify_slice(const io_data *h, const vset *v, int r, int P, uLong *crc, int64_t *bytes)
{
    hsize_t r0 = v->rows * (hsize_t)r / (hsize_t)P, r1 = v->rows * (hsize_t)(r + 1) / (hsize_t)P;
    *crc = crc32(0L, Z_NULL, 0);
    *bytes = (int64_t)((r1 - r0) * v->cols * v->size);
    if (r1 == r0) return FH_OK;
    hsize_t per = (hsize_t)((8u << 20) / (v->cols * v->size)); /* about 8 MiB a read */
    if (per < 1) per = 1;
    unsigned char *buf = malloc((size_t)((per < r1 - r0 ? per : r1 - r0) * v->cols * v->size));
    FH_CHECK_ALLOC(buf);
    fh_status st = FH_OK;
    hid_t fs = H5Dget_space(v->d);
    char what[1100];
    snprintf(what, sizeof what, "%s: /%s", h->path, v->name);
    if (fs < 0) st = fh_error_set(FH_EINPUT, "%s: no dataspace", what);
    for (hsize_t a = r0; st == FH_OK && a < r1; a += per) {
        hsize_t k = r1 - a < per ? r1 - a : per;
        st = h5_rows_rw(v->d, fs, v->mtype, v->rank, a, k, v->cols, H5P_DEFAULT, buf, 0, FH_EINPUT, what);
        if (st == FH_OK) *crc = crc32(*crc, buf, (uInt)(k * v->cols * v->size)); /* LE bytes already */
    }
    if (fs >= 0) H5Sclose(fs);
    free(buf);
    if (st != FH_OK) fh_error_set(FH_EINPUT, "%s cannot be read (truncated or damaged file?)", what);
    return st;
}

fh_status io_data_verify(io_data *h, const comm_t *c, int64_t *bytes_checked)
{
    *bytes_checked = 0;
    if (!h->meta.checksums) return FH_OK;
    const int r = c ? c->rank : 0, P = c ? c->size : 1;
    const io_data_meta *m = &h->meta;
    vset v[10] = {
        {"train/x", h->x_d[0], 0, H5T_IEEE_F32LE, 4, 2, (hsize_t)m->train_rows, (hsize_t)m->features},
        {"train/y", h->y_d[0], 0, H5T_STD_I32LE, 4, 1, (hsize_t)m->train_rows, 1},
        {"train/client_offsets", h->off_d, 0, H5T_STD_I64LE, 8, 1, (hsize_t)m->clients + 1, 1},
        {"test/x", h->x_d[1], 0, H5T_IEEE_F32LE, 4, 2, (hsize_t)m->test_rows, (hsize_t)m->features},
        {"test/y", h->y_d[1], 0, H5T_STD_I32LE, 4, 1, (hsize_t)m->test_rows, 1},
    };
    int nv = 5;
    if (m->val_rows > 0) { /* prepare --val-frac */
        v[nv++] = (vset){"val/x", h->x_d[2], 0, H5T_IEEE_F32LE, 4, 2, (hsize_t)m->val_rows, (hsize_t)m->features};
        v[nv++] = (vset){"val/y", h->y_d[2], 0, H5T_STD_I32LE, 4, 1, (hsize_t)m->val_rows, 1};
    }
    const vset extra[3] = {
        {"train/client_group", H5I_INVALID_HID, 1, H5T_STD_I32LE, 4, 1, (hsize_t)m->clients, 1},
        {"train/client_rows", H5I_INVALID_HID, 1, H5T_STD_I64LE, 8, 1, (hsize_t)m->clients, 1},
        {"train/client_party", H5I_INVALID_HID, 1, H5T_STD_I32LE, 4, 1, (hsize_t)m->clients, 1},
    };
    for (int i = 0; i < 3; i++)
        if (i == 0 ? m->has_client_group : m->parties > 0) {
            v[nv] = extra[i];
            v[nv++].d = H5Dopen2(h->file, extra[i].name, H5P_DEFAULT);
        }
    /* per dataset: this rank's {bytes, crc}, then the stored crc (rank 0 compares) */
    int64_t mine[20];
    uint32_t stored[10];
    fh_status st = FH_OK;
    for (int i = 0; i < nv; i++) {
        uLong crc = 0;
        int64_t nb = 0, sv = 0;
        if (st == FH_OK && v[i].d < 0) st = fh_error_set(FH_EINPUT, "%s: cannot open /%s", h->path, v[i].name);
        if (st == FH_OK) st = h5_attr_read_i64(v[i].d, "crc32", &sv, 1, h->path);
        if (st == FH_OK) st = verify_slice(h, &v[i], r, P, &crc, &nb);
        stored[i] = (uint32_t)sv;
        mine[2 * i] = nb;
        mine[2 * i + 1] = (int64_t)crc;
    }
    for (int i = 5; i < nv; i++)
        if (v[i].own && v[i].d >= 0) H5Dclose(v[i].d);
    int64_t *all = NULL;
    if (c && P > 1) { /* every rank takes part even after a local failure */
        int64_t *counts = r == 0 ? malloc((size_t)P * sizeof *counts) : NULL;
        fh_status gs = r == 0 && !counts ? fh_error_set(FH_ENOMEM, "out of memory") : FH_OK;
        if (gs == FH_OK) gs = comm_gather_bytes(c, mine, (int64_t)(2 * nv * sizeof *mine), (void **)&all, counts, 0);
        free(counts);
        if (st == FH_OK) st = gs;
    } else {
        all = malloc(sizeof mine);
        if (all) memcpy(all, mine, sizeof mine);
        else if (st == FH_OK) st = fh_error_set(FH_ENOMEM, "out of memory");
    }
    int64_t total = 0;
    if (r == 0 && all) {
        for (int i = 0; i < nv && st == FH_OK; i++) {
            uLong crc = crc32(0L, Z_NULL, 0);
            for (int q = 0; q < P; q++) {
                crc = crc32_combine(crc, (uLong)all[2 * nv * q + 2 * i + 1], (z_off_t)all[2 * nv * q + 2 * i]);
                total += all[2 * nv * q + 2 * i];
            }
            if ((uint32_t)crc != stored[i])
                st = fh_error_set(FH_EINPUT, "%s: /%s: checksum mismatch (stored crc32 %08x, computed %08x): the file is "
                                  "damaged (re-run fedhpc prepare)", h->path, v[i].name, (unsigned)stored[i],
                                  (unsigned)crc);
        }
    }
    free(all);
    if (c) st = comm_agree(c, st);
    *bytes_checked = total;
    return st;
}

/* Point reads d[coord[i]] for i < np (a 1-D dataset) into buf of memory type mtype. */
static fh_status point_read(const io_data *h, const char *name, const hsize_t *coord, hsize_t np, hid_t mtype, void *buf)
{
    fh_status st = FH_OK, st_fail = FH_EINPUT;
    hid_t d = H5Dopen2(h->file, name, H5P_DEFAULT), fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
    H5CHK(d, "%s: cannot open /%s", h->path, name);
    fs = H5Dget_space(d);
    H5CHK(fs, "%s: /%s has no dataspace", h->path, name);
    H5CHK(H5Sselect_elements(fs, H5S_SELECT_SET, np, coord), "%s: cannot select in /%s", h->path, name);
    ms = H5Screate_simple(1, &np, NULL);
    H5CHK(ms, "HDF5: cannot make a dataspace");
    H5CHK(H5Dread(d, mtype, ms, fs, H5P_DEFAULT, buf), "%s: /%s cannot be read (truncated file?)", h->path, name);
fail:
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    if (d >= 0) H5Dclose(d);
    return st;
}

static fh_status client_coords(const io_data *h, const int32_t *clients, int32_t n, int stride, hsize_t *coord)
{
    for (int32_t i = 0; i < n; i++) {
        if (clients[i] < 0 || clients[i] >= h->meta.clients) return fh_error_set(FH_EINTERNAL, "client %d out of range", clients[i]);
        for (int k = 0; k < stride; k++) coord[stride * i + k] = (hsize_t)clients[i] + (hsize_t)k;
    }
    return FH_OK;
}

fh_status io_data_client_ranges(io_data *h, const int32_t *clients, int32_t n, int64_t *start,
                                int64_t *count)
{
    if (n == 0) return FH_OK;
    const int parties = h->meta.parties > 0;
    hsize_t np = 2 * (hsize_t)n;
    hsize_t *coord = malloc(np * sizeof *coord);
    int64_t *buf = malloc((np + (parties ? 2 * (hsize_t)n : 0)) * sizeof *buf);
    fh_status st = coord && buf ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory");
    if (st == FH_OK) st = client_coords(h, clients, n, 2, coord);
    if (st == FH_OK) st = point_read(h, "train/client_offsets", coord, np, H5T_NATIVE_INT64, buf);
    for (int32_t i = 0; st == FH_OK && i < n; i++) {
        start[i] = buf[2 * i];
        count[i] = buf[2 * i + 1] - buf[2 * i];
    }
    if (st == FH_OK && parties) { /* every client's rows, and whether this file holds them */
        int64_t *rows = buf + np;
        int32_t *party = (int32_t *)(rows + n);
        st = client_coords(h, clients, n, 1, coord);
        if (st == FH_OK) st = point_read(h, "train/client_rows", coord, (hsize_t)n, H5T_NATIVE_INT64, rows);
        if (st == FH_OK) st = point_read(h, "train/client_party", coord, (hsize_t)n, H5T_NATIVE_INT32, party);
        for (int32_t i = 0; st == FH_OK && i < n; i++) {
            const int own = party[i] == h->meta.party;
            if (rows[i] < 0 || party[i] < 0 || party[i] >= h->meta.parties || count[i] != (own ? rows[i] : 0))
                st = fh_error_set(FH_EINPUT, "%s: client %d: %lld rows of party %d, but %lld rows in this file (party %d): "
                                  "damaged or mixed party files (re-run fedhpc prepare)", h->path, clients[i],
                                  (long long)rows[i], party[i], (long long)count[i], h->meta.party);
            count[i] = rows[i];
            if (!own) start[i] = -1; /* its rows are in another party's file */
        }
    }
    free(coord);
    free(buf);
    return st;
}

fh_status io_data_client_parties(io_data *h, const int32_t *clients, int32_t n, int32_t *party)
{
    if (h->meta.parties == 0) {
        for (int32_t i = 0; i < n; i++) party[i] = 0;
        return FH_OK;
    }
    if (n == 0) return FH_OK;
    hsize_t *coord = malloc((size_t)n * sizeof *coord);
    FH_CHECK_ALLOC(coord);
    fh_status st = client_coords(h, clients, n, 1, coord);
    if (st == FH_OK) st = point_read(h, "train/client_party", coord, (hsize_t)n, H5T_NATIVE_INT32, party);
    for (int32_t i = 0; st == FH_OK && i < n; i++)
        if (party[i] < 0 || party[i] >= h->meta.parties)
            st = fh_error_set(FH_EINPUT, "%s: /train/client_party: party %d of client %d outside [0, %d)", h->path, party[i],
                              clients[i], h->meta.parties);
    free(coord);
    return st;
}

void io_data_party_path(const char *path, int32_t party, char *out, size_t cap)
{
    size_t n = strlen(path);
    if (n >= 3 && strcmp(path + n - 3, ".h5") == 0) n -= 3;
    snprintf(out, cap, "%.*s.party%d.h5", (int)n, path, party);
}

int64_t io_data_rows_read(const io_data *h, const char *split)
{
    return h ? h->rows_read[!strcmp(split, "val") ? 2 : strcmp(split, "test") == 0] : 0;
}

fh_status io_data_read_ranges(io_data *h, const char *split, int32_t n, const int64_t *start,
                              const int64_t *count, float *x, int32_t *y)
{
    int s = !strcmp(split, "val") ? 2 : strcmp(split, "test") == 0;
    if (s == 2 && h->x_d[2] < 0) return fh_error_set(FH_EINPUT, "%s: no validation split (prepare --val-frac)", h->path);
    int64_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        if (count[i] > 0 && start[i] < 0)
            return fh_error_set(FH_EINPUT, "%s: the rows of a client of another party are not in this file (party %d)",
                                h->path, h->meta.party);
        total += count[i];
    }
    if (total == 0) return FH_OK;
    h->rows_read[s] += total;
    /* Ranges may come in any order; HDF5 hyperslab unions are read in file order, so read each
     * range with its own selection when they are not increasing. Increasing ranges (the usual
     * case: sorted clients) go in one read. */
    int sorted = 1;
    for (int32_t i = 1; i < n; i++)
        if (start[i] < start[i - 1] + count[i - 1]) sorted = 0;
    fh_status st = FH_OK, st_fail = FH_EINPUT;
    hid_t fx = H5Dget_space(h->x_d[s]), fy = H5Dget_space(h->y_d[s]), mx = H5I_INVALID_HID, my = H5I_INVALID_HID;
    H5CHK(fx, "%s: no dataspace", h->path);
    H5CHK(fy, "%s: no dataspace", h->path);
    int32_t i0 = 0;
    int64_t row = 0;
    while (i0 < n) {
        int32_t i1 = sorted ? n : i0 + 1;
        H5CHK(H5Sselect_none(fx), "HDF5 select");
        H5CHK(H5Sselect_none(fy), "HDF5 select");
        int64_t k = 0;
        for (int32_t i = i0; i < i1; i++) {
            if (count[i] == 0) continue;
            hsize_t ox[2] = {(hsize_t)start[i], 0}, cx[2] = {(hsize_t)count[i], (hsize_t)h->meta.features};
            hsize_t oy = (hsize_t)start[i], cy = (hsize_t)count[i];
            H5CHK(H5Sselect_hyperslab(fx, H5S_SELECT_OR, ox, NULL, cx, NULL), "%s: bad row range", h->path);
            H5CHK(H5Sselect_hyperslab(fy, H5S_SELECT_OR, &oy, NULL, &cy, NULL), "%s: bad row range", h->path);
            k += count[i];
        }
        if (k > 0) {
            hsize_t mdx[2] = {(hsize_t)k, (hsize_t)h->meta.features}, mdy = (hsize_t)k;
            mx = H5Screate_simple(2, mdx, NULL);
            my = H5Screate_simple(1, &mdy, NULL);
            H5CHK(mx, "HDF5 dataspace");
            H5CHK(my, "HDF5 dataspace");
            H5CHK(H5Dread(h->x_d[s], H5T_NATIVE_FLOAT, mx, fx, H5P_DEFAULT, x + row * h->meta.features),
                  "%s: /%s/x cannot be read (truncated file?)", h->path, split);
            H5CHK(H5Dread(h->y_d[s], H5T_NATIVE_INT32, my, fy, H5P_DEFAULT, y + row),
                  "%s: /%s/y cannot be read (truncated file?)", h->path, split);
            H5Sclose(mx);
            H5Sclose(my);
            mx = my = H5I_INVALID_HID;
        }
        row += k;
        i0 = i1;
    }
    for (int64_t r = 0; r < total; r++)
        if (y[r] < 0 || y[r] >= h->meta.classes) {
            st = fh_error_set(FH_EINPUT, "%s: /%s/y: label %d outside [0, %d)", h->path, split, y[r], h->meta.classes);
            goto fail;
        }
    for (int64_t q = 0; h->meta.items > 0 && q < total * h->meta.features; q++) /* item sets: indices or -1 */
        if (x[q] != -1.0f && !(x[q] >= 0.0f && x[q] < (float)h->meta.items && x[q] == (float)(int32_t)x[q])) {
            st = fh_error_set(FH_EINPUT, "%s: /%s/x: %g is neither an item index in [0, %d) nor -1 (padding)", h->path,
                              split, (double)x[q], h->meta.items);
            goto fail;
        }
fail:
    if (mx >= 0) H5Sclose(mx);
    if (my >= 0) H5Sclose(my);
    if (fx >= 0) H5Sclose(fx);
    if (fy >= 0) H5Sclose(fy);
    return st;
}

fh_status io_data_class_counts(io_data *h, int64_t *out)
{
    return h5_attr_read_i64(h->file, "train_class_counts", out, (hsize_t)h->meta.classes, h->path);
}

fh_status io_data_class_names(io_data *h, char (*out)[64])
{
    return h5_dset_read_strs(h->file, "classes", (char *)out, (hsize_t)h->meta.classes, 64, h->path);
}

fh_status io_data_client_groups(io_data *h, int32_t *out)
{
    if (!h->meta.has_client_group)
        return fh_error_set(FH_EINPUT, "%s: no /train/client_group (prepare with --groups K)", h->path);
    hid_t d = H5Dopen2(h->file, "train/client_group", H5P_DEFAULT);
    if (d < 0) return fh_error_set(FH_EINPUT, "%s: cannot open /train/client_group", h->path);
    herr_t e = H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, out);
    H5Dclose(d);
    if (e < 0) return fh_error_set(FH_EINPUT, "%s: /train/client_group cannot be read (truncated file?)", h->path);
    for (int32_t c = 0; c < h->meta.clients; c++)
        if (out[c] < 0 || out[c] >= h->meta.groups)
            return fh_error_set(FH_EINPUT, "%s: /train/client_group: group %d of client %d outside [0, %d)", h->path,
                                out[c], c, h->meta.groups);
    return FH_OK;
}

int64_t io_data_local_test_rows(const io_data_meta *m, int64_t n)
{
    if (m->local_test_frac <= 0 || n < 2) return 0;
    int64_t k = (int64_t)((double)n * m->local_test_frac);
    return k >= n ? n - 1 : k;
}

/* ---- issue 15 (`fedhpc embed`): the features' names of a CSV data set ---------------------- */
fh_status io_data_feature_names(io_data *h, char (*out)[64], int *found)
{
    *found = 0;
    if (H5Lexists(h->file, "encoding", H5P_DEFAULT) <= 0 ||
        H5Lexists(h->file, "encoding/feature_name", H5P_DEFAULT) <= 0)
        return FH_OK;
    FH_TRY(h5_dset_read_strs(h->file, "encoding/feature_name", (char *)out, (hsize_t)h->meta.features, 64, h->path));
    *found = 1;
    return FH_OK;
}

fh_status io_data_item_names(io_data *h, char (*out)[64], int *found)
{
    *found = 0;
    if (h->meta.items <= 0 || H5Lexists(h->file, "item_name", H5P_DEFAULT) <= 0) return FH_OK;
    FH_TRY(h5_dset_read_strs(h->file, "item_name", (char *)out, (hsize_t)h->meta.items, 64, h->path));
    *found = 1;
    return FH_OK;
}

/* read a whole 1-D numeric dataset of n values of /encoding (issue 15) */
static fh_status enc_read(io_data *h, const char *name, hid_t type, int64_t n, void *out)
{
    hsize_t dims[1];
    FH_TRY(h5_dset_shape(h->file, name, 1, dims, h->path));
    if ((int64_t)dims[0] != n) return fh_error_set(FH_EINPUT, "%s: /%s: expected %lld values", h->path, name, (long long)n);
    hid_t d = H5Dopen2(h->file, name, H5P_DEFAULT);
    if (d < 0) return fh_error_set(FH_EINPUT, "%s: cannot open /%s", h->path, name);
    herr_t e = H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out);
    H5Dclose(d);
    return e < 0 ? fh_error_set(FH_EINPUT, "%s: /%s cannot be read", h->path, name) : FH_OK;
}

fh_status io_data_feature_scale(io_data *h, double *mul, double *add, int *found)
{
    const int32_t F = h->meta.features;
    for (int32_t j = 0; j < F; j++) {
        mul[j] = 1;
        add[j] = 0;
    }
    *found = 0;
    if (H5Lexists(h->file, "encoding", H5P_DEFAULT) <= 0 || H5Lexists(h->file, "encoding/kind", H5P_DEFAULT) <= 0)
        return FH_OK;
    hsize_t dims[1];
    FH_TRY(h5_dset_shape(h->file, "encoding/kind", 1, dims, h->path));
    const int64_t nc = (int64_t)dims[0];
    int32_t *kind = malloc((size_t)(nc + 1) * sizeof *kind), *ff = malloc((size_t)(nc + 1) * sizeof *ff);
    double *mean = malloc((size_t)(nc + 1) * sizeof *mean), *sd = malloc((size_t)(nc + 1) * sizeof *sd);
    fh_status st = kind && ff && mean && sd ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory");
    if (st == FH_OK) st = enc_read(h, "encoding/kind", H5T_NATIVE_INT32, nc, kind);
    if (st == FH_OK) st = enc_read(h, "encoding/first_feature", H5T_NATIVE_INT32, nc, ff);
    if (st == FH_OK) st = enc_read(h, "encoding/mean", H5T_NATIVE_DOUBLE, nc, mean);
    if (st == FH_OK) st = enc_read(h, "encoding/std", H5T_NATIVE_DOUBLE, nc, sd);
    for (int64_t c = 0; st == FH_OK && c < nc; c++)
        if (kind[c] == COL_NUMERIC && ff[c] >= 0 && ff[c] < F && mean[c] == mean[c] && sd[c] == sd[c]) { /* not NaN */
            mul[ff[c]] = sd[c];
            add[ff[c]] = mean[c];
        }
    if (st == FH_OK) *found = 1;
    free(kind);
    free(ff);
    free(mean);
    free(sd);
    return st;
}
