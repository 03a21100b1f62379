/* Checked HDF5 helpers shared by the I/O layer (see h5util.h). */
#define _POSIX_C_SOURCE 200809L
#include "h5util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static fh_status attr_write(hid_t obj, const char *name, hid_t type, hid_t space, const void *v)
{
    fh_status st = FH_OK, st_fail = FH_EIO;
    hid_t a = H5I_INVALID_HID;
    if (H5Aexists(obj, name) > 0) H5CHK(H5Adelete(obj, name), "HDF5: cannot replace attribute %s", name);
    a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5CHK(a, "HDF5: cannot create attribute %s", name);
    H5CHK(H5Awrite(a, type, v), "HDF5: cannot write attribute %s", name);
fail:
    if (a >= 0) H5Aclose(a);
    return st;
}

fh_status h5_attr_write_str(hid_t obj, const char *name, const char *v)
{
    hid_t t = H5Tcopy(H5T_C_S1), s = H5Screate(H5S_SCALAR);
    fh_status st = FH_EIO;
    if (t >= 0 && s >= 0 && H5Tset_size(t, strlen(v) + 1) >= 0 && H5Tset_strpad(t, H5T_STR_NULLTERM) >= 0)
        st = attr_write(obj, name, t, s, v);
    else
        st = fh_error_set(FH_EIO, "HDF5: cannot make a string type for %s", name);
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    return st;
}

fh_status h5_attr_write_i64(hid_t obj, const char *name, const int64_t *v, hsize_t n)
{
    hid_t s = n == 1 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, NULL);
    if (s < 0) return fh_error_set(FH_EIO, "HDF5: cannot make a dataspace for %s", name);
    fh_status st = attr_write(obj, name, H5T_NATIVE_INT64, s, v);
    H5Sclose(s);
    return st;
}

fh_status h5_attr_write_f64(hid_t obj, const char *name, double v)
{
    hid_t s = H5Screate(H5S_SCALAR);
    if (s < 0) return fh_error_set(FH_EIO, "HDF5: cannot make a dataspace for %s", name);
    fh_status st = attr_write(obj, name, H5T_NATIVE_DOUBLE, s, &v);
    H5Sclose(s);
    return st;
}

int h5_attr_exists(hid_t obj, const char *name) { return H5Aexists(obj, name) > 0; }

fh_status h5_attr_read_str(hid_t obj, const char *name, char *out, size_t cap, const char *path)
{
    fh_status st = FH_OK, st_fail = FH_EINPUT;
    hid_t a = H5I_INVALID_HID, t = H5I_INVALID_HID, mt = H5I_INVALID_HID;
    if (H5Aexists(obj, name) <= 0)
        return fh_error_set(FH_EINPUT, "%s: missing attribute '%s' (not a fedhpc file?)", path, name);
    a = H5Aopen(obj, name, H5P_DEFAULT);
    H5CHK(a, "%s: cannot open attribute '%s'", path, name);
    t = H5Aget_type(a);
    H5CHK(t, "%s: attribute '%s' has no type", path, name);
    if (H5Tget_class(t) != H5T_STRING || H5Tis_variable_str(t) > 0 || H5Tget_size(t) >= cap) {
        st = fh_error_set(FH_EINPUT, "%s: attribute '%s': expected a short fixed-length string", path, name);
        goto fail;
    }
    mt = H5Tcopy(H5T_C_S1);
    H5CHK(mt, "%s: HDF5 type copy failed", path);
    H5CHK(H5Tset_size(mt, cap), "%s: HDF5 type size failed", path);
    memset(out, 0, cap);
    H5CHK(H5Aread(a, mt, out), "%s: cannot read attribute '%s'", path, name);
    out[cap - 1] = 0;
fail:
    if (mt >= 0) H5Tclose(mt);
    if (t >= 0) H5Tclose(t);
    if (a >= 0) H5Aclose(a);
    return st;
}

fh_status h5_attr_read_i64(hid_t obj, const char *name, int64_t *out, hsize_t n, const char *path)
{
    fh_status st = FH_OK, st_fail = FH_EINPUT;
    hid_t a = H5I_INVALID_HID, s = H5I_INVALID_HID;
    if (H5Aexists(obj, name) <= 0)
        return fh_error_set(FH_EINPUT, "%s: missing attribute '%s' (not a fedhpc file?)", path, name);
    a = H5Aopen(obj, name, H5P_DEFAULT);
    H5CHK(a, "%s: cannot open attribute '%s'", path, name);
    s = H5Aget_space(a);
    H5CHK(s, "%s: attribute '%s' has no dataspace", path, name);
    if ((hsize_t)H5Sget_simple_extent_npoints(s) != n) {
        st = fh_error_set(FH_EINPUT, "%s: attribute '%s': expected %llu value(s)", path, name,
                          (unsigned long long)n);
        goto fail;
    }
    H5CHK(H5Aread(a, H5T_NATIVE_INT64, out), "%s: attribute '%s': expected integers", path, name);
fail:
    if (s >= 0) H5Sclose(s);
    if (a >= 0) H5Aclose(a);
    return st;
}

fh_status h5_attr_read_f64(hid_t obj, const char *name, double *out, const char *path)
{
    fh_status st = FH_OK, st_fail = FH_EINPUT;
    hid_t a = H5I_INVALID_HID;
    if (H5Aexists(obj, name) <= 0)
        return fh_error_set(FH_EINPUT, "%s: missing attribute '%s' (not a fedhpc file?)", path, name);
    a = H5Aopen(obj, name, H5P_DEFAULT);
    H5CHK(a, "%s: cannot open attribute '%s'", path, name);
    H5CHK(H5Aread(a, H5T_NATIVE_DOUBLE, out), "%s: attribute '%s': expected a number", path, name);
fail:
    if (a >= 0) H5Aclose(a);
    return st;
}

fh_status h5_dset_write(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims,
                        const void *buf)
{
    fh_status st = FH_OK, st_fail = FH_EIO;
    hid_t s = H5Screate_simple(rank, dims, NULL), d = H5I_INVALID_HID;
    H5CHK(s, "HDF5: cannot make a dataspace for %s", name);
    d = H5Dcreate2(loc, name, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5CHK(d, "HDF5: cannot create dataset %s", name);
    if (H5Sget_simple_extent_npoints(s) > 0)
        H5CHK(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), "HDF5: cannot write dataset %s", name);
fail:
    if (d >= 0) H5Dclose(d);
    if (s >= 0) H5Sclose(s);
    return st;
}

fh_status h5_dset_write_strs(hid_t loc, const char *name, char *const *s, hsize_t n)
{
    size_t w = 1;
    for (hsize_t i = 0; i < n; i++)
        if (s[i] && strlen(s[i]) + 1 > w) w = strlen(s[i]) + 1;
    char *buf = fh_calloc(n, w);
    FH_CHECK_ALLOC(buf);
    for (hsize_t i = 0; i < n; i++)
        if (s[i]) memcpy(buf + i * w, s[i], strlen(s[i]));
    fh_status st = FH_OK, st_fail = FH_EIO;
    hid_t t = H5Tcopy(H5T_C_S1);
    H5CHK(t, "HDF5: cannot copy a string type");
    H5CHK(H5Tset_size(t, w), "HDF5: cannot size a string type");
    st = h5_dset_write(loc, name, t, 1, &n, buf);
fail:
    if (t >= 0) H5Tclose(t);
    free(buf);
    return st;
}

fh_status h5_dset_shape(hid_t loc, const char *name, int want_rank, hsize_t *dims, const char *path)
{
    fh_status st = FH_OK, st_fail = FH_EINPUT;
    hid_t d = H5I_INVALID_HID, s = H5I_INVALID_HID;
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return fh_error_set(FH_EINPUT, "%s: missing dataset '%s' (not a fedhpc file of this kind?)", path, name);
    d = H5Dopen2(loc, name, H5P_DEFAULT);
    H5CHK(d, "%s: cannot open dataset '%s'", path, name);
    s = H5Dget_space(d);
    H5CHK(s, "%s: dataset '%s' has no dataspace", path, name);
    if (H5Sget_simple_extent_ndims(s) != want_rank) {
        st = fh_error_set(FH_EINPUT, "%s: dataset '%s': expected %d dimension(s)", path, name, want_rank);
        goto fail;
    }
    H5CHK(H5Sget_simple_extent_dims(s, dims, NULL), "%s: dataset '%s': cannot read its shape", path, name);
fail:
    if (s >= 0) H5Sclose(s);
    if (d >= 0) H5Dclose(d);
    return st;
}

fh_status h5_dset_read_strs(hid_t loc, const char *name, char *out, hsize_t n, size_t cap,
                            const char *path)
{
    hsize_t dims[1];
    FH_TRY(h5_dset_shape(loc, name, 1, dims, path));
    if (dims[0] != n) return fh_error_set(FH_EINPUT, "%s: dataset '%s': expected %llu strings", path, name, (unsigned long long)n);
    fh_status st = FH_OK, st_fail = FH_EINPUT;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT), t = H5Tcopy(H5T_C_S1);
    H5CHK(d, "%s: cannot open dataset '%s'", path, name);
    H5CHK(t, "%s: HDF5 type copy failed", path);
    H5CHK(H5Tset_size(t, cap), "%s: HDF5 type size failed", path);
    if (n) H5CHK(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, out), "%s: dataset '%s': expected strings", path, name);
    for (hsize_t i = 0; i < n; i++) out[i * cap + cap - 1] = 0;
fail:
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    return st;
}

fh_status h5_rows_rw(hid_t d, hid_t fs, hid_t type, int rank, hsize_t first, hsize_t n, hsize_t cols,
                     hid_t xfer, void *buf, int write, fh_status fail, const char *what)
{
    fh_status st = FH_OK, st_fail = fail;
    hid_t ms = H5I_INVALID_HID;
    hsize_t off[2] = {first, 0}, cnt[2] = {n, cols};
    H5CHK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL), "%s: cannot select rows", what);
    ms = H5Screate_simple(rank, cnt, NULL);
    H5CHK(ms, "HDF5: dataspace");
    if (write) H5CHK(H5Dwrite(d, type, ms, fs, xfer, buf), "%s: cannot write", what);
    else H5CHK(H5Dread(d, type, ms, fs, xfer, buf), "%s: cannot read", what);
fail:
    if (ms >= 0) H5Sclose(ms);
    return st;
}

void h5_tmp_name(const char *path, char *tmp, size_t cap)
{
    snprintf(tmp, cap, "%s.tmp.%ld", path, (long)getpid());
}

fh_status h5_commit_rename(const char *tmp, const char *path)
{
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return fh_error_set(FH_EIO, "%s: cannot rename the finished file into place: %s", path, strerror(e));
    }
    return FH_OK;
}
