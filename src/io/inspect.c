/* `fedhpc inspect FILE.h5`: a human summary of any fedhpc HDF5 file. */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/io.h"
#include "h5util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static fh_status inspect_data(const char *path)
{
    io_data *h = NULL;
    io_data_meta m;
    FH_TRY(io_data_open(path, NULL, &h, &m));
    int32_t C = m.clients, K = m.classes;
    int64_t *start = malloc((size_t)C * sizeof *start), *count = malloc((size_t)C * sizeof *count);
    int64_t *sorted = malloc((size_t)C * sizeof *sorted), *hist = calloc((size_t)K, sizeof *hist);
    int64_t *cls = calloc((size_t)K, sizeof *cls);
    int32_t *ids = malloc((size_t)C * sizeof *ids), *y = malloc((size_t)(m.train_rows ? m.train_rows : 1) * sizeof *y);
    float *xrow = malloc((size_t)m.features * sizeof *xrow);
    char (*names)[64] = calloc((size_t)K, 64);
    fh_status st = FH_OK;
    if (!start || !count || !sorted || !hist || !cls || !ids || !y || !xrow || !names) {
        st = fh_error_set(FH_ENOMEM, "out of memory");
        goto out;
    }
    for (int32_t c = 0; c < C; c++) ids[c] = c;
    if ((st = io_data_client_ranges(h, ids, C, start, count)) != FH_OK) goto out;
    int64_t n = m.train_rows;
    if ((st = io_data_class_counts(h, cls)) != FH_OK) goto out;
    if ((st = io_data_class_names(h, names)) != FH_OK) goto out;
    printf("%s: fedhpc data set (format version %d)\n", path, IO_DATA_VERSION);
    printf("  dataset     %s\n  partition   %s (alpha %g, seed %lld)\n", m.dataset, m.partition, m.alpha, (long long)m.seed);
    printf("  features    %d\n  classes     %d\n  train rows  %lld\n  test rows   %lld\n  clients     %d%s\n",
           m.features, K, (long long)n, (long long)m.test_rows, C, m.has_client_names ? " (named)" : "");
    if (m.items > 0) /* item-set data (docs/retail.md) */
        printf("  items       %d (item sets: CSR in /train|test/items, rows padded to %d with -1)\n", m.items, m.features);
    if (m.parties > 0) {
        if (m.party < 0) printf("  parties     %d (this is the aggregator's file: no training rows)\n", m.parties);
        else printf("  parties     %d (this file: party %d, the rows of its clients only)\n", m.parties, m.party);
    }
    printf("  class counts (train%s):", m.parties > 0 ? ", all parties" : "");
    const int32_t shown = K > 40 ? 20 : K; /* thousands of classes (the items of a movielens file): the first 20 */
    for (int32_t k = 0; k < shown; k++) printf(" %s=%lld", names[k], (long long)cls[k]);
    if (shown < K) printf(" ... (%d more)", K - shown);
    printf("\n");
    memcpy(sorted, count, (size_t)C * sizeof *sorted);
    qsort(sorted, (size_t)C, sizeof *sorted, cmp_i64);
    printf("  rows per client: min %lld, median %lld, max %lld\n", (long long)sorted[0],
           (long long)sorted[C / 2], (long long)sorted[C - 1]);
    /* label skew: per client, the fraction of its most frequent class, and classes present */
    /* (over the clients whose rows are in this file: all, or a party's) */
    double sum_top = 0, sum_present = 0;
    int32_t per = 4096, nown = 0;
    for (int32_t c0 = 0; c0 < C; c0 += per) {
        int32_t c1 = c0 + per < C ? c0 + per : C;
        int64_t first = -1, rows = 0; /* the rows in this file of clients [c0, c1): one range */
        for (int32_t c = c0; c < c1; c++)
            if (start[c] >= 0 && count[c] > 0) {
                if (first < 0) first = start[c];
                rows += count[c];
            }
        if (rows == 0) continue;
        float *xb = malloc((size_t)rows * (size_t)m.features * sizeof *xb);
        if (!xb) { st = fh_error_set(FH_ENOMEM, "out of memory"); goto out; }
        st = io_data_read_ranges(h, "train", 1, &first, &rows, xb, y);
        free(xb);
        if (st != FH_OK) goto out;
        for (int32_t c = c0; c < c1; c++) {
            if (start[c] < 0) continue;
            nown++;
            memset(hist, 0, (size_t)K * sizeof *hist);
            for (int64_t r = start[c]; r < start[c] + count[c]; r++) hist[y[r - first]]++;
            int64_t top = 0, present = 0;
            for (int32_t k = 0; k < K; k++) {
                if (hist[k] > top) top = hist[k];
                present += hist[k] > 0;
            }
            sum_top += count[c] ? (double)top / (double)count[c] : 0;
            sum_present += (double)present;
        }
    }
    if (nown == 0) printf("  label skew: no training rows in this file\n");
    else
        printf("  label skew: mean share of a client's top class %.3f (IID would be about %.3f); mean classes per client %.2f of %d\n",
           nown ? sum_top / nown : 0.0, (double)sorted[C - 1] > 0 ? 1.0 / K : 0.0, nown ? sum_present / nown : 0.0, K);
out:
    free(start); free(count); free(sorted); free(hist); free(cls); free(ids); free(y); free(xrow); free(names);
    io_data_close(h);
    return st;
}

static fh_status inspect_model(const char *path, hid_t f)
{
    char model[64], alg[64];
    int64_t in, classes, nparams, rounds, seed;
    FH_TRY(h5_attr_read_str(f, "model", model, sizeof model, path));
    FH_TRY(h5_attr_read_str(f, "algorithm", alg, sizeof alg, path));
    FH_TRY(h5_attr_read_i64(f, "in", &in, 1, path));
    FH_TRY(h5_attr_read_i64(f, "classes", &classes, 1, path));
    FH_TRY(h5_attr_read_i64(f, "nparams", &nparams, 1, path));
    FH_TRY(h5_attr_read_i64(f, "rounds", &rounds, 1, path));
    FH_TRY(h5_attr_read_i64(f, "seed", &seed, 1, path));
    float *p = malloc((size_t)nparams * sizeof *p);
    FH_CHECK_ALLOC(p);
    int64_t n = nparams;
    fh_status st = io_model_read(path, p, &n);
    if (st == FH_OK) {
        double ss = 0;
        for (int64_t i = 0; i < n; i++) ss += (double)p[i] * p[i];
        printf("%s: fedhpc model (format version %d)\n  model       %s, %lld inputs, %lld classes\n"
               "  parameters  %lld (L2 norm %.6g)\n  trained     %s, %lld rounds, seed %lld\n",
               path, IO_MODEL_VERSION, model, (long long)in, (long long)classes, (long long)n, sqrt(ss), alg,
               (long long)rounds, (long long)seed);
    }
    free(p);
    return st;
}

static herr_t list_dset(hid_t loc, const char *name, const H5L_info_t *info, void *op)
{
    (void)info;
    (void)op;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) return 0;
    hid_t s = H5Dget_space(d), t = H5Dget_type(d);
    hsize_t dims[2] = {0, 0};
    int rank = s >= 0 ? H5Sget_simple_extent_dims(s, dims, NULL) : -1;
    const char *tn = t < 0 ? "?" : H5Tget_class(t) == H5T_FLOAT ? (H5Tget_size(t) == 4 ? "float32" : "float64")
                                                                 : (H5Tget_size(t) == 8 ? "int64" : H5Tget_size(t) == 4 ? "int32" : "uint8");
    if (rank == 2) printf("  %-18s %s [%llu, %llu]\n", name, tn, (unsigned long long)dims[0], (unsigned long long)dims[1]);
    else printf("  %-18s %s [%llu]\n", name, tn, (unsigned long long)dims[0]);
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    H5Dclose(d);
    return 0;
}

static fh_status inspect_ckpt(const char *path, hid_t f)
{
    int64_t version, round, hash, crc;
    FH_TRY(h5_attr_read_i64(f, "version", &version, 1, path));
    FH_TRY(h5_attr_read_i64(f, "round", &round, 1, path));
    FH_TRY(h5_attr_read_i64(f, "config_hash", &hash, 1, path));
    FH_TRY(h5_attr_read_i64(f, "crc32", &crc, 1, path));
    printf("%s: fedhpc checkpoint (format version %lld)\n  after round %lld\n  training config hash %016llx\n"
           "  crc32 %08llx (verified when resuming)\n  datasets:\n",
           path, (long long)version, (long long)round, (unsigned long long)hash, (unsigned long long)crc);
    hsize_t idx = 0;
    if (H5Literate(f, H5_INDEX_NAME, H5_ITER_INC, &idx, list_dset, NULL) < 0)
        return fh_error_set(FH_EINPUT, "%s: cannot list the datasets", path);
    return FH_OK;
}

fh_status embed_inspect_h5(const char *path, hid_t f); /* issue 15: src/io/embed_io.c */

fh_status io_inspect(const char *path)
{
    h5_quiet();
    if (access(path, R_OK) != 0) return fh_error_set(FH_EINPUT, "%s: cannot read the file", path);
    if (H5Fis_hdf5(path) <= 0) return fh_error_set(FH_EINPUT, "%s: not an HDF5 file", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return fh_error_set(FH_EINPUT, "%s: cannot open the HDF5 file (truncated?)", path);
    char fmt[64];
    fh_status st = h5_attr_read_str(f, "format", fmt, sizeof fmt, path);
    if (st == FH_OK) {
        if (strcmp(fmt, "fedhpc-data") == 0) {
            H5Fclose(f);
            return inspect_data(path);
        }
        if (strcmp(fmt, "fedhpc-model") == 0) st = inspect_model(path, f);
        else if (strcmp(fmt, "fedhpc-ckpt") == 0) st = inspect_ckpt(path, f);
        else if (strcmp(fmt, "fedhpc-embed") == 0) st = embed_inspect_h5(path, f);
        else st = fh_error_set(FH_EINPUT, "%s: unknown fedhpc format '%s'", path, fmt);
    }
    H5Fclose(f);
    return st;
}
