/* Model files (HDF5): the flat parameter buffer plus architecture and run attributes. */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/io.h"
#include "h5util.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

fh_status io_model_write(const char *path, const model_t *m, const float *params,
                         const io_model_info *info)
{
    h5_quiet();
    char tmp[1100];
    h5_tmp_name(path, tmp, sizeof tmp);
    fh_status st = FH_OK;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return fh_error_set(FH_EIO, "%s: cannot create the model file", path);
    int64_t v, hidden[MODEL_MAX_LAYERS];
    int64_t nh = m->nlayers - 1;
    for (int64_t i = 0; i < nh; i++) hidden[i] = m->fan_out[i];
    hsize_t np = (hsize_t)m->nparams;
#define TRY(e) do { if ((st = (e)) != FH_OK) goto fail; } while (0)
    TRY(h5_attr_write_str(f, "format", "fedhpc-model"));
    v = IO_MODEL_VERSION;
    TRY(h5_attr_write_i64(f, "version", &v, 1));
    TRY(h5_attr_write_str(f, "model", model_type_name(m->type)));
    v = m->in;
    TRY(h5_attr_write_i64(f, "in", &v, 1));
    v = m->classes;
    TRY(h5_attr_write_i64(f, "classes", &v, 1));
    v = m->nparams;
    TRY(h5_attr_write_i64(f, "nparams", &v, 1));
    if (nh > 0 && m->type != MODEL_ATTENTION) TRY(h5_attr_write_i64(f, "hidden", hidden, (hsize_t)nh));
    if (m->type == MODEL_ATTENTION) { /* attention: items, d, heads (include/fedhpc/model.h) */
        const int64_t a[3] = {m->attn_items, m->attn_dim, m->attn_heads};
        TRY(h5_attr_write_i64(f, "attention", a, 3));
    }
    TRY(h5_attr_write_str(f, "algorithm", info->algorithm));
    v = info->rounds;
    TRY(h5_attr_write_i64(f, "rounds", &v, 1));
    TRY(h5_attr_write_i64(f, "seed", &info->seed, 1));
    TRY(h5_attr_write_str(f, "data_file", info->data_file));
    TRY(h5_dset_write(f, "params", H5T_NATIVE_FLOAT, 1, &np, params));
#undef TRY
    if (H5Fclose(f) < 0) {
        unlink(tmp);
        return fh_error_set(FH_EIO, "%s: cannot close the model file", tmp);
    }
    return h5_commit_rename(tmp, path);
fail:
    H5Fclose(f);
    unlink(tmp);
    return st;
}

fh_status io_model_read(const char *path, float *params, int64_t *nparams)
{
    h5_quiet();
    if (access(path, R_OK) != 0 || H5Fis_hdf5(path) <= 0)
        return fh_error_set(FH_EINPUT, "%s: not a readable HDF5 model file", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), d = H5I_INVALID_HID;
    if (f < 0) return fh_error_set(FH_EINPUT, "%s: cannot open the model file", path);
    fh_status st = FH_OK, st_fail = FH_EINPUT;
    char fmt[64];
    hsize_t dims[1];
    if ((st = h5_attr_read_str(f, "format", fmt, sizeof fmt, path)) != FH_OK) goto fail;
    if (strcmp(fmt, "fedhpc-model") != 0) {
        st = fh_error_set(FH_EINPUT, "%s: expected format 'fedhpc-model', found '%s'", path, fmt);
        goto fail;
    }
    if ((st = h5_dset_shape(f, "params", 1, dims, path)) != FH_OK) goto fail;
    if ((int64_t)dims[0] > *nparams) {
        st = fh_error_set(FH_EINPUT, "%s: %llu parameters, room for %lld", path, (unsigned long long)dims[0], (long long)*nparams);
        goto fail;
    }
    d = H5Dopen2(f, "params", H5P_DEFAULT);
    H5CHK(d, "%s: cannot open /params", path);
    H5CHK(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, params), "%s: cannot read /params", path);
    *nparams = (int64_t)dims[0];
fail:
    if (d >= 0) H5Dclose(d);
    H5Fclose(f);
    return st;
}
