/* libFuzzer harness: the checkpoint reader (src/io/ckpt_io.c) and `fedhpc inspect` of a
 * checkpoint, on mutated HDF5 files.
 *
 * The input is written as DIR/ckpt_00000001.h5 and opened both ways a run resumes: the file
 * itself (with the config hash the file claims, so that a readable file gets past the hash
 * check) and the directory (newest valid checkpoint, damaged ones skipped with a warning).
 * Then every scalar and array the engines read is read as ckpt_get_* would be called:
 * the array with its stored length and with a wrong length, rows with the stored row length.
 * No HDF5 object may stay open afterwards.
 */
#include "fuzz_common.h"
#include "fedhpc/ckpt.h"
#include "fedhpc/io.h"

#include <hdf5.h>

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    if (!freopen("/dev/null", "w", stdout)) abort(); /* io_inspect prints its summary */
    return fz_init(argc, argv);
}

static void check_no_open_objects(void)
{
    ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (n != 0) {
        fprintf(stderr, "fuzz: %zd HDF5 objects left open\n", n);
        abort();
    }
}

/* The config hash the file claims (0 if none can be read); the harness's own HDF5 calls. */
static uint64_t claimed_hash(const char *path)
{
    int64_t v = 0;
    H5E_BEGIN_TRY
    {
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (f >= 0) {
            hid_t a = H5Aexists(f, "config_hash") > 0 ? H5Aopen(f, "config_hash", H5P_DEFAULT) : -1;
            if (a >= 0) {
                hid_t s = H5Aget_space(a);
                if (s >= 0 && H5Sget_simple_extent_npoints(s) == 1) H5Aread(a, H5T_NATIVE_INT64, &v);
                if (s >= 0) H5Sclose(s);
                H5Aclose(a);
            }
            H5Fclose(f);
        }
    }
    H5E_END_TRY;
    return (uint64_t)v;
}

/* Stored shape of a dataset (the harness's view), rank 0 if it cannot be read. */
static int shape(const char *path, const char *name, hsize_t dims[2])
{
    int rank = 0;
    H5E_BEGIN_TRY
    {
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        hid_t d = f >= 0 ? H5Dopen2(f, name, H5P_DEFAULT) : -1;
        hid_t s = d >= 0 ? H5Dget_space(d) : -1;
        if (s >= 0) {
            rank = H5Sget_simple_extent_ndims(s);
            if (rank < 1 || rank > 2 || H5Sget_simple_extent_dims(s, dims, NULL) < 0) rank = 0;
            H5Sclose(s);
        }
        if (d >= 0) H5Dclose(d);
        if (f >= 0) H5Fclose(f);
    }
    H5E_END_TRY;
    return rank;
}

static const char *const k_arrays[] = {"params", "server_m", "server_v", "scaffold_c", "scaffold_ci",
                                       "central_momentum", "centers", "cluster_assign", "head_seen",
                                       "client_heads", "as_acc", "as_started", "as_applied", "as_discarded",
                                       "as_stale_hist", "as_dp_inbuf", "as_dp_joined", "as_job_int",
                                       "as_job_time", "as_job_start", "rng", "sampler"};
static const char *const k_scalars[] = {"round", "version", "crc32", "config_hash", "as_slots", "as_version",
                                        "as_next_job", "as_nbuf", "as_dp_below", "cfl_active", "missing"};

static void read_all(ckpt *h, const char *path)
{
    int64_t v;
    double f;
    for (size_t i = 0; i < sizeof k_scalars / sizeof *k_scalars; i++) {
        fz_status_ok(ckpt_get_i64(h, k_scalars[i], &v));
        fz_status_ok(ckpt_get_f64(h, k_scalars[i], &f));
    }
    fz_status_ok(ckpt_get_f64(h, "as_now", &f));
    for (size_t i = 0; i < sizeof k_arrays / sizeof *k_arrays; i++) {
        const char *name = k_arrays[i];
        hsize_t dims[2] = {0, 1};
        const int rank = ckpt_has(h, name) ? shape(path, name, dims) : 0;
        const uint64_t n = rank == 2 ? dims[0] * dims[1] : dims[0];
        if (rank == 0 || n > ((uint64_t)1 << 22) || dims[1] > ((uint64_t)1 << 22)) {
            double one;
            fz_status_ok(ckpt_get_array(h, name, CKPT_F64, &one, 1));
            continue;
        }
        void *buf = malloc((size_t)(n + 1) * sizeof(double));
        if (!buf) continue;
        for (int t = CKPT_F32; t <= CKPT_U8; t++) {
            fz_status_ok(ckpt_get_array(h, name, (ckpt_type)t, buf, (int64_t)n));
            fz_status_ok(ckpt_get_array(h, name, (ckpt_type)t, buf, (int64_t)n + 1));
            if (rank == 2 && dims[0] > 0) {
                fz_status_ok(ckpt_get_rows(h, name, (ckpt_type)t, (int64_t)dims[1], 0, (int64_t)dims[0], buf));
                fz_status_ok(ckpt_get_rows(h, name, (ckpt_type)t, (int64_t)dims[1], (int64_t)dims[0] - 1, 1, buf));
                fz_status_ok(ckpt_get_rows(h, name, (ckpt_type)t, (int64_t)dims[1], (int64_t)dims[0], 1, buf));
            }
        }
        free(buf);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/ckpt", fz_dir);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/ckpt_00000001.h5", dir);
    FILE *fp = fopen(path, "wb");
    if (!fp || (size && fwrite(data, 1, size, fp) != size)) abort();
    fclose(fp);

    const uint64_t hash = claimed_hash(path);
    check_no_open_objects();
    for (int mode = 0; mode < 2; mode++) {
        ckpt *h = NULL;
        int64_t round = -1;
        fh_status st = ckpt_open(mode ? dir : path, hash, &fz_world, &h, &round);
        fz_status_ok(st);
        if (st == FH_OK && h) {
            (void)ckpt_warning(h);
            (void)ckpt_path(h);
            read_all(h, path);
            ckpt_close(h);
        } else if (h) {
            abort(); /* a failed open hands out nothing */
        }
        check_no_open_objects();
    }
    char latest[800];
    fz_status_ok(ckpt_latest_path(dir, latest, sizeof latest));
    fz_status_ok(io_inspect(path));
    check_no_open_objects();
    /* libhdf5's free lists would carry blocks of a damaged file into the next input (its crashes
     * then do not reproduce on their own); H5close() per input would be 5x slower */
    H5garbage_collect();
    return 0;
}
