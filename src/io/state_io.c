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
    hid_t fs = H5Dget_space(h->dset);
    if (fs < 0) return fh_error_set(FH_EIO, "%s: HDF5 dataspace", h->path);
    char what[1200];
    snprintf(what, sizeof what, "%s: client %d", h->path, client);
    fh_status st = h5_rows_rw(h->dset, fs, H5T_NATIVE_FLOAT, 2, (hsize_t)client, 1, (hsize_t)h->dim,
                              H5P_DEFAULT, row, write, FH_EIO, what);
    H5Sclose(fs);
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
