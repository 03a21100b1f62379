/* Record files (HDF5, one process): named typed datasets under groups, written as a run goes
 * (transcripts, test-only dumps). See include/fedhpc/io.h "record files". */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/io.h"
#include "h5util.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct io_rec {
    char path[1024];
    hid_t file;
    int writable;
};

static hid_t rec_type(io_type t)
{
    switch (t) {
    case IO_U8: return H5T_NATIVE_UINT8;
    case IO_I32: return H5T_NATIVE_INT32;
    case IO_I64: return H5T_NATIVE_INT64;
    case IO_U64: return H5T_NATIVE_UINT64;
    case IO_F64: return H5T_NATIVE_DOUBLE;
    }
    return H5T_NATIVE_UINT8;
}

fh_status io_rec_create(const char *path, const char *format, io_rec **out)
{
    h5_quiet();
    *out = NULL;
    io_rec *h = calloc(1, sizeof *h);
    FH_CHECK_ALLOC(h);
    snprintf(h->path, sizeof h->path, "%s", path);
    h->writable = 1;
    h->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (h->file < 0) {
        free(h);
        return fh_error_set(FH_EIO, "%s: cannot create the file", path);
    }
    int64_t v = IO_REC_VERSION;
    fh_status st = h5_attr_write_str(h->file, "format", format);
    if (st == FH_OK) st = h5_attr_write_i64(h->file, "version", &v, 1);
    if (st != FH_OK) {
        io_rec_close(h);
        unlink(path);
        return st;
    }
    *out = h;
    return FH_OK;
}

fh_status io_rec_open(const char *path, const char *format, io_rec **out)
{
    h5_quiet();
    *out = NULL;
    if (access(path, R_OK) != 0 || H5Fis_hdf5(path) <= 0)
        return fh_error_set(FH_EINPUT, "%s: not a readable HDF5 file", path);
    io_rec *h = calloc(1, sizeof *h);
    FH_CHECK_ALLOC(h);
    snprintf(h->path, sizeof h->path, "%s", path);
    h->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (h->file < 0) {
        free(h);
        return fh_error_set(FH_EINPUT, "%s: cannot open the file", path);
    }
    char fmt[64];
    fh_status st = h5_attr_read_str(h->file, "format", fmt, sizeof fmt, path);
    if (st == FH_OK && strcmp(fmt, format) != 0)
        st = fh_error_set(FH_EINPUT, "%s: expected format '%s', found '%s'", path, format, fmt);
    if (st != FH_OK) {
        io_rec_close(h);
        return st;
    }
    *out = h;
    return FH_OK;
}

const char *io_rec_path(const io_rec *h) { return h ? h->path : ""; }

fh_status io_rec_put_i64(io_rec *h, const char *name, int64_t v)
{
    return h5_attr_write_i64(h->file, name, &v, 1);
}

fh_status io_rec_get_i64(io_rec *h, const char *name, int64_t *v)
{
    return h5_attr_read_i64(h->file, name, v, 1, h->path);
}

fh_status io_rec_put_rows(io_rec *h, const char *name, io_type t, int64_t total_rows, int64_t cols,
                          int64_t first_row, int64_t nrows, const void *buf)
{
    if (!h->writable) return fh_error_set(FH_EINTERNAL, "%s: opened read-only", h->path);
    if (first_row < 0 || nrows < 0 || first_row + nrows > total_rows)
        return fh_error_set(FH_EINTERNAL, "%s: %s: rows [%lld, %lld) out of [0, %lld)", h->path, name, (long long)first_row,
                            (long long)(first_row + nrows), (long long)total_rows);
    const int rank = cols > 0 ? 2 : 1;
    hsize_t dims[2] = {(hsize_t)total_rows, (hsize_t)(cols > 0 ? cols : 1)};
    fh_status st = FH_OK, st_fail = FH_EIO;
    hid_t d = H5I_INVALID_HID, fs = H5I_INVALID_HID, lcpl = H5I_INVALID_HID;
    if (H5Lexists(h->file, name, H5P_DEFAULT) > 0) { /* H5Lexists fails quietly for a missing group */
        d = H5Dopen2(h->file, name, H5P_DEFAULT);
        H5CHK(d, "%s: cannot open dataset %s", h->path, name);
        fs = H5Dget_space(d);
        H5CHK(fs, "HDF5: dataspace");
        hsize_t have[2] = {0, 1};
        if (H5Sget_simple_extent_ndims(fs) != rank || H5Sget_simple_extent_dims(fs, have, NULL) < 0 ||
            have[0] != dims[0] || (rank == 2 && have[1] != dims[1])) {
            st = fh_error_set(FH_EINTERNAL, "%s: dataset %s exists with another shape", h->path, name);
            goto fail;
        }
    } else {
        lcpl = H5Pcreate(H5P_LINK_CREATE);
        H5CHK(lcpl, "HDF5: property list");
        H5CHK(H5Pset_create_intermediate_group(lcpl, 1), "HDF5: intermediate groups");
        fs = H5Screate_simple(rank, dims, NULL);
        H5CHK(fs, "HDF5: dataspace");
        d = H5Dcreate2(h->file, name, rec_type(t), fs, lcpl, H5P_DEFAULT, H5P_DEFAULT);
        H5CHK(d, "%s: cannot create dataset %s", h->path, name);
    }
    if (nrows > 0) {
        char what[1400];
        snprintf(what, sizeof what, "%s: %s", h->path, name);
        st = h5_rows_rw(d, fs, rec_type(t), rank, (hsize_t)first_row, (hsize_t)nrows, dims[1], H5P_DEFAULT,
                        (void *)buf, 1, FH_EIO, what);
    }
fail:
    if (fs >= 0) H5Sclose(fs);
    if (d >= 0) H5Dclose(d);
    if (lcpl >= 0) H5Pclose(lcpl);
    return st;
}

fh_status io_rec_put(io_rec *h, const char *name, io_type t, int64_t rows, int64_t cols, const void *buf)
{
    return io_rec_put_rows(h, name, t, rows, cols, 0, rows, buf);
}

int io_rec_has(io_rec *h, const char *name)
{
    /* each prefix must exist for H5Lexists on the full path */
    char p[1024];
    snprintf(p, sizeof p, "%s", name);
    for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = 0;
        const int ok = H5Lexists(h->file, p, H5P_DEFAULT) > 0;
        *s = '/';
        if (!ok) return 0;
    }
    return H5Lexists(h->file, p, H5P_DEFAULT) > 0;
}

fh_status io_rec_shape(io_rec *h, const char *name, int64_t *rows, int64_t *cols)
{
    if (!io_rec_has(h, name)) return fh_error_set(FH_EINPUT, "%s: missing dataset '%s'", h->path, name);
    fh_status st = FH_OK, st_fail = FH_EINPUT;
    hid_t d = H5Dopen2(h->file, name, H5P_DEFAULT), s = H5I_INVALID_HID;
    H5CHK(d, "%s: cannot open dataset '%s'", h->path, name);
    s = H5Dget_space(d);
    H5CHK(s, "HDF5: dataspace");
    hsize_t dims[2] = {0, 0};
    const int rank = H5Sget_simple_extent_ndims(s);
    if (rank < 1 || rank > 2 || H5Sget_simple_extent_dims(s, dims, NULL) < 0) {
        st = fh_error_set(FH_EINPUT, "%s: dataset '%s': expected 1 or 2 dimensions", h->path, name);
        goto fail;
    }
    *rows = (int64_t)dims[0];
    *cols = rank == 2 ? (int64_t)dims[1] : 0;
fail:
    if (s >= 0) H5Sclose(s);
    if (d >= 0) H5Dclose(d);
    return st;
}

fh_status io_rec_get(io_rec *h, const char *name, io_type t, void *buf, int64_t n)
{
    int64_t rows, cols;
    FH_TRY(io_rec_shape(h, name, &rows, &cols));
    if (rows * (cols > 0 ? cols : 1) != n)
        return fh_error_set(FH_EINPUT, "%s: dataset '%s' has %lld x %lld values, expected %lld", h->path, name,
                            (long long)rows, (long long)cols, (long long)n);
    if (n == 0) return FH_OK;
    fh_status st = FH_OK, st_fail = FH_EINPUT;
    hid_t d = H5Dopen2(h->file, name, H5P_DEFAULT);
    H5CHK(d, "%s: cannot open dataset '%s'", h->path, name);
    H5CHK(H5Dread(d, rec_type(t), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), "%s: cannot read '%s'", h->path, name);
fail:
    if (d >= 0) H5Dclose(d);
    return st;
}

fh_status io_rec_flush(io_rec *h)
{
    if (H5Fflush(h->file, H5F_SCOPE_GLOBAL) < 0) return fh_error_set(FH_EIO, "%s: cannot flush", h->path);
    return FH_OK;
}

void io_rec_close(io_rec *h)
{
    if (!h) return;
    if (h->file >= 0) H5Fclose(h->file);
    free(h);
}
