/* Per-client state rows on disk (parallel HDF5, independent row reads/writes). */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/io.h"
#include "h5util.h"

#include <stdlib.h>
#include <string.h>

struct io_state {
    char path[1024];
    hid_t file, dset;
    int32_t clients;
    int64_t dim;
};

fh_status io_state_create(const char *path, const comm_t *c, int32_t clients, int64_t dim,
                          io_state **out)
{
    h5_quiet();
    *out = NULL;
    io_state *h = calloc(1, sizeof *h);
    FH_CHECK_ALLOC(h);
    snprintf(h->path, sizeof h->path, "%s", path);
    h->clients = clients;
    h->dim = dim;
    h->file = h->dset = H5I_INVALID_HID;
    fh_status st = FH_OK, st_fail = FH_EIO;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), dcpl = H5Pcreate(H5P_DATASET_CREATE), sp = H5I_INVALID_HID;
    H5CHK(fapl, "HDF5: property list");
    H5CHK(dcpl, "HDF5: property list");
    if (c->size > 1) H5CHK(H5Pset_fapl_mpio(fapl, c->comm, MPI_INFO_NULL), "HDF5: cannot set MPI-IO");
    float zero = 0;
    H5CHK(H5Pset_fill_value(dcpl, H5T_NATIVE_FLOAT, &zero), "HDF5: fill value");
    H5CHK(H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY), "HDF5: alloc time");
    h->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5CHK(h->file, "%s: cannot create the client-state file", path);
    hsize_t dims[2] = {(hsize_t)clients, (hsize_t)dim};
    sp = H5Screate_simple(2, dims, NULL);
    H5CHK(sp, "HDF5: dataspace");
    h->dset = H5Dcreate2(h->file, "state", H5T_NATIVE_FLOAT, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5CHK(h->dset, "%s: cannot create the client-state dataset (%d x %lld)", path, clients, (long long)dim);
fail:
    if (sp >= 0) H5Sclose(sp);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (fapl >= 0) H5Pclose(fapl);
    if (st != FH_OK) io_state_close(h);
    else *out = h;
    return st;
}

static fh_status state_rw(io_state *h, int32_t client, float *row, int write)
{
    fh_status st = FH_OK, st_fail = FH_EIO;
    hid_t fs = H5Dget_space(h->dset), ms = H5I_INVALID_HID;
    hsize_t off[2] = {(hsize_t)client, 0}, cnt[2] = {1, (hsize_t)h->dim}, n = (hsize_t)h->dim;
    H5CHK(fs, "HDF5: dataspace");
    H5CHK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL), "HDF5: select");
    ms = H5Screate_simple(1, &n, NULL);
    H5CHK(ms, "HDF5: dataspace");
    if (write)
        H5CHK(H5Dwrite(h->dset, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, row), "%s: cannot write client %d", h->path, client);
    else
        H5CHK(H5Dread(h->dset, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, row), "%s: cannot read client %d", h->path, client);
fail:
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return st;
}

fh_status io_state_read(io_state *h, int32_t client, float *row) { return state_rw(h, client, row, 0); }
fh_status io_state_write(io_state *h, int32_t client, const float *row)
{
    return state_rw(h, client, (float *)row, 1);
}

void io_state_close(io_state *h)
{
    if (!h) return;
    if (h->dset >= 0) H5Dclose(h->dset);
    if (h->file >= 0) H5Fclose(h->file);
    free(h);
}
