/* The embeddings file of `fedhpc embed` (issue 15; include/fedhpc/io.h, docs/embed.md): parallel
 * HDF5, each rank writes its own rows; temp file + rename. */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/io.h"
#include "h5util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static fh_status rows_dset(hid_t f, const char *name, hid_t type, int rank, hsize_t rows, hsize_t cols,
                           int32_t nseg, const int64_t *gfirst, const int64_t *lfirst, const void *buf, size_t esize,
                           const char *path)
{
    fh_status st = FH_OK, st_fail = FH_EIO;
    hsize_t dims[2] = {rows, cols};
    hid_t sp = H5Screate_simple(rank, dims, NULL), d = H5I_INVALID_HID;
    H5CHK(sp, "HDF5: dataspace");
    d = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5CHK(d, "%s: cannot create /%s", path, name);
    for (int32_t i = 0; st == FH_OK && i < nseg; i++) {
        const int64_t n = lfirst[i + 1] - lfirst[i];
        if (n <= 0) continue;
        char what[1200];
        snprintf(what, sizeof what, "%s: /%s", path, name);
        const size_t row = esize * (rank == 2 ? (size_t)cols : 1);
        st = h5_rows_rw(d, sp, type, rank, (hsize_t)gfirst[i], (hsize_t)n, rank == 2 ? cols : 1, H5P_DEFAULT,
                        (char *)buf + (size_t)lfirst[i] * row, 1, FH_EIO, what);
    }
fail:
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    return st;
}

fh_status io_embed_write(const char *path, const comm_t *c, const io_embed_meta *m, int32_t nseg, const int64_t *gfirst,
                         const int64_t *lfirst, const float *emb, const int32_t *cluster, const float *pca)
{
    h5_quiet();
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path); /* one name on every rank */
    fh_status st = FH_OK, st_fail = FH_EIO;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), f = H5I_INVALID_HID;
    H5CHK(fapl, "HDF5: property list");
    if (c->size > 1) H5CHK(H5Pset_fapl_mpio(fapl, c->comm, MPI_INFO_NULL), "HDF5: cannot set MPI-IO");
    f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5CHK(f, "%s: cannot create the embeddings file", tmp);
#define TRY(e) do { if ((st = (e)) != FH_OK) goto fail; } while (0)
    TRY(h5_attr_write_str(f, "format", "fedhpc-embed"));
    int64_t v = 1;
    TRY(h5_attr_write_i64(f, "version", &v, 1));
    v = m->k;
    TRY(h5_attr_write_i64(f, "k", &v, 1));
    v = m->dim;
    TRY(h5_attr_write_i64(f, "dim", &v, 1));
    TRY(h5_attr_write_i64(f, "rows", &m->rows, 1));
    v = m->clients;
    TRY(h5_attr_write_i64(f, "clients", &v, 1));
    TRY(h5_attr_write_str(f, "model_file", m->model_file));
    TRY(h5_attr_write_str(f, "data_file", m->data_file));
    TRY(h5_attr_write_f64(f, "silhouette", m->silhouette));
    hsize_t d1[2] = {(hsize_t)m->clients + 1, 0}, d2[2] = {(hsize_t)m->k, (hsize_t)m->dim};
    TRY(h5_dset_write(f, "client_offsets", H5T_NATIVE_INT64, 1, d1, m->client_offsets));
    TRY(h5_dset_write(f, "centers", H5T_NATIVE_DOUBLE, 2, d2, m->centers));
    TRY(rows_dset(f, "embedding", H5T_NATIVE_FLOAT, 2, (hsize_t)m->rows, (hsize_t)m->dim, nseg, gfirst, lfirst, emb,
                  sizeof(float), tmp));
    TRY(rows_dset(f, "cluster", H5T_NATIVE_INT32, 1, (hsize_t)m->rows, 1, nseg, gfirst, lfirst, cluster, sizeof(int32_t),
                  tmp));
    TRY(rows_dset(f, "pca", H5T_NATIVE_FLOAT, 2, (hsize_t)m->rows, 2, nseg, gfirst, lfirst, pca, sizeof(float), tmp));
#undef TRY
fail:
    if (f >= 0 && H5Fclose(f) < 0 && st == FH_OK) st = fh_error_set(FH_EIO, "%s: cannot close the embeddings file", tmp);
    if (fapl >= 0) H5Pclose(fapl);
    fh_status all = comm_agree(c, st);
    if (all == FH_OK && c->rank == 0) all = h5_commit_rename(tmp, path);
    else if (c->rank == 0) unlink(tmp);
    return comm_agree(c, all);
}

/* `fedhpc inspect` of an embeddings file (called from src/io/inspect.c). */
fh_status embed_inspect_h5(const char *path, hid_t f);
fh_status embed_inspect_h5(const char *path, hid_t f)
{
    int64_t version, k, dim, rows, clients;
    double sil;
    char model[1024], data[1024];
    FH_TRY(h5_attr_read_i64(f, "version", &version, 1, path));
    FH_TRY(h5_attr_read_i64(f, "k", &k, 1, path));
    FH_TRY(h5_attr_read_i64(f, "dim", &dim, 1, path));
    FH_TRY(h5_attr_read_i64(f, "rows", &rows, 1, path));
    FH_TRY(h5_attr_read_i64(f, "clients", &clients, 1, path));
    FH_TRY(h5_attr_read_f64(f, "silhouette", &sil, path));
    FH_TRY(h5_attr_read_str(f, "model_file", model, sizeof model, path));
    FH_TRY(h5_attr_read_str(f, "data_file", data, sizeof data, path));
    if (k < 1 || k > 1000000 || rows < 0) return fh_error_set(FH_EINPUT, "%s: k = %lld, rows = %lld: not an embeddings file", path, (long long)k, (long long)rows);
    hsize_t dims[2];
    FH_TRY(h5_dset_shape(f, "cluster", 1, dims, path));
    if ((int64_t)dims[0] != rows) return fh_error_set(FH_EINPUT, "%s: /cluster has %llu rows, expected %lld", path, (unsigned long long)dims[0], (long long)rows);
    int32_t *cl = malloc((size_t)(rows > 0 ? rows : 1) * sizeof *cl);
    int64_t *cnt = calloc((size_t)k, sizeof *cnt);
    fh_status st = cl && cnt ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory"), st_fail = FH_EINPUT;
    hid_t d = H5I_INVALID_HID;
    if (st != FH_OK) goto fail;
    d = H5Dopen2(f, "cluster", H5P_DEFAULT);
    H5CHK(d, "%s: cannot open /cluster", path);
    if (rows > 0) H5CHK(H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, cl), "%s: cannot read /cluster", path);
    for (int64_t i = 0; i < rows; i++) {
        if (cl[i] < 0 || cl[i] >= k) {
            st = fh_error_set(FH_EINPUT, "%s: /cluster: row %lld in cluster %d, outside [0, %lld)", path, (long long)i, cl[i], (long long)k);
            goto fail;
        }
        cnt[cl[i]]++;
    }
    printf("%s: fedhpc customer embeddings (format version %lld)\n  rows        %lld of %lld clients, width %lld\n"
           "  clusters    k = %lld, silhouette %.4f (simplified)\n  model       %s\n  data        %s\n  sizes      ",
           path, (long long)version, (long long)rows, (long long)clients, (long long)dim, (long long)k, sil, model, data);
    for (int64_t c = 0; c < k; c++) printf(" %lld", (long long)cnt[c]);
    printf("\n");
fail:
    if (d >= 0) H5Dclose(d);
    free(cl);
    free(cnt);
    return st;
}
