/* Checkpoints in parallel HDF5: see include/fedhpc/ckpt.h for the contract.
 *
 * Integrity: attribute "crc32" = CRC-32 (zlib) over every dataset's raw bytes, datasets taken
 * in name order. While writing, each rank checksums the bytes it writes and rank 0 joins the
 * slabs' checksums in row order (crc32_combine), so nothing is read back; on open rank 0
 * recomputes it from the file (before anyone trusts the file). Atomicity: DIR/ckpt_R.h5.tmp is written, fsync'ed,
 * then renamed to DIR/ckpt_R.h5 and the directory fsync'ed. */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/ckpt.h"
#include "h5util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

typedef struct {
    char name[64];  /* dataset name                       */
    uLong crc;      /* CRC-32 of its bytes (rank 0)       */
    int64_t bytes;  /* its size in bytes                  */
} ckpt_sum;

struct ckpt {
    comm_t comm;
    hid_t file;
    char dir[1024], path[1100], tmp[1120];
    int writing;
    char warning[2048];
    ckpt_sum *sums; /* rank 0, writing: one per dataset written */
    int nsums;
};

static void ckpt_free(ckpt *h)
{
    free(h->sums);
    free(h);
}

/* CRC-32 of n bytes (zlib takes at most 4 GiB a call). */
static uLong crc_bytes(uLong crc, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    while (n) {
        const uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, k);
        p += k;
        n -= k;
    }
    return crc;
}

/* Checksum of this rank's slab of dataset `name` (rows first.. of the given bytes); rank 0
 * joins all ranks' slabs in row order and records the dataset's CRC. Collective. */
static fh_status ckpt_sum_add(ckpt *h, const char *name, int64_t first, const void *buf, int64_t bytes)
{
    int64_t mine[3] = {first, bytes, (int64_t)(bytes > 0 ? crc_bytes(crc32(0L, Z_NULL, 0), buf, (size_t)bytes) : 0)};
    int64_t *all = NULL, *counts = NULL;
    if (h->comm.rank == 0) {
        counts = malloc((size_t)h->comm.size * sizeof *counts);
        FH_CHECK_ALLOC(counts);
    }
    fh_status st = comm_gather_bytes(&h->comm, mine, sizeof mine, (void **)&all, counts, 0);
    free(counts);
    if (st != FH_OK || h->comm.rank != 0) {
        free(all);
        return st;
    }
    if (strlen(name) >= sizeof h->sums[0].name) {
        free(all);
        return fh_error_set(FH_EINTERNAL, "checkpoint dataset name %s too long", name);
    }
    ckpt_sum *v = realloc(h->sums, (size_t)(h->nsums + 1) * sizeof *v);
    if (!v) {
        free(all);
        return fh_error_set(FH_ENOMEM, "out of memory");
    }
    h->sums = v;
    ckpt_sum *d = &v[h->nsums++];
    snprintf(d->name, sizeof d->name, "%s", name);
    d->crc = crc32(0L, Z_NULL, 0);
    d->bytes = 0;
    /* slabs in row order (ranks hold increasing row ranges, but do not rely on it) */
    for (int done = 0; done < h->comm.size; done++) {
        int best = -1;
        for (int r = 0; r < h->comm.size; r++)
            if (all[3 * r + 1] > 0 && (best < 0 || all[3 * r] < all[3 * best])) best = r;
        if (best < 0) break;
        d->crc = crc32_combine(d->crc, (uLong)all[3 * best + 2], (z_off_t)all[3 * best + 1]);
        d->bytes += all[3 * best + 1];
        all[3 * best + 1] = 0;
    }
    free(all);
    return FH_OK;
}

static int cmp_sum_name(const void *a, const void *b)
{
    return strcmp(((const ckpt_sum *)a)->name, ((const ckpt_sum *)b)->name);
}

/* The file's CRC from the recorded slabs: as file_crc computes it from the file (name order;
 * empty datasets add nothing). */
static uint32_t ckpt_sum_total(ckpt *h)
{
    qsort(h->sums, (size_t)h->nsums, sizeof *h->sums, cmp_sum_name);
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < h->nsums; i++) {
        if (h->sums[i].bytes <= 0) continue;
        crc = crc32(crc, (const Bytef *)h->sums[i].name, (uInt)strlen(h->sums[i].name));
        crc = crc32_combine(crc, h->sums[i].crc, (z_off_t)h->sums[i].bytes);
    }
    return (uint32_t)crc;
}

static hid_t h5type(ckpt_type t)
{
    switch (t) {
    case CKPT_F32: return H5T_NATIVE_FLOAT;
    case CKPT_F64: return H5T_NATIVE_DOUBLE;
    case CKPT_I64: return H5T_NATIVE_INT64;
    case CKPT_I32: return H5T_NATIVE_INT32;
    case CKPT_U8: return H5T_NATIVE_UINT8;
    }
    return H5T_NATIVE_UINT8;
}

static fh_status mkdirs(const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return fh_error_set(FH_EIO, "%s: cannot create the checkpoint directory: %s", buf, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    return FH_OK;
}

static hid_t open_fapl(const comm_t *c)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 && c->size > 1 && H5Pset_fapl_mpio(fapl, c->comm, MPI_INFO_NULL) < 0) {
        H5Pclose(fapl);
        return H5I_INVALID_HID;
    }
    return fapl;
}

/* ---- write ---------------------------------------------------------------------------------- */

fh_status ckpt_create(const char *dir, int64_t round, uint64_t config_hash, const comm_t *c, ckpt **out)
{
    h5_quiet();
    *out = NULL;
    ckpt *h = calloc(1, sizeof *h);
    FH_CHECK_ALLOC(h);
    h->comm = *c;
    h->file = H5I_INVALID_HID;
    h->writing = 1;
    snprintf(h->dir, sizeof h->dir, "%s", dir);
    snprintf(h->path, sizeof h->path, "%s/ckpt_%08lld.h5", dir, (long long)round);
    snprintf(h->tmp, sizeof h->tmp, "%s.tmp", h->path);
    fh_status st = c->rank == 0 ? mkdirs(dir) : FH_OK;
    st = comm_agree(c, st);
    if (st != FH_OK) {
        free(h);
        return st;
    }
    hid_t fapl = open_fapl(c);
    h->file = fapl >= 0 ? H5Fcreate(h->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl) : H5I_INVALID_HID;
    if (fapl >= 0) H5Pclose(fapl);
    st = h->file >= 0 ? FH_OK : fh_error_set(FH_EIO, "%s: cannot create the checkpoint file", h->tmp);
    if (st == FH_OK) st = h5_attr_write_str(h->file, "format", "fedhpc-ckpt");
    int64_t v = CKPT_VERSION;
    if (st == FH_OK) st = h5_attr_write_i64(h->file, "version", &v, 1);
    if (st == FH_OK) st = h5_attr_write_i64(h->file, "round", &round, 1);
    v = (int64_t)config_hash;
    if (st == FH_OK) st = h5_attr_write_i64(h->file, "config_hash", &v, 1);
    if (st != FH_OK) {
        ckpt_abort(h);
        return st;
    }
    *out = h;
    return FH_OK;
}

fh_status ckpt_put_i64(ckpt *h, const char *name, int64_t v) { return h5_attr_write_i64(h->file, name, &v, 1); }
fh_status ckpt_put_f64(ckpt *h, const char *name, double v) { return h5_attr_write_f64(h->file, name, v); }

/* Create [rows, row_len] (row_len 0: 1-D) and write this rank's rows with collective I/O. */
static fh_status put(ckpt *h, const char *name, ckpt_type t, int64_t rows, int64_t row_len,
                     int64_t first, int64_t n, const void *buf)
{
    fh_status st = FH_OK, st_fail = FH_EIO;
    int rank = row_len > 0 ? 2 : 1;
    hsize_t dims[2] = {(hsize_t)rows, (hsize_t)(row_len > 0 ? row_len : 1)};
    hid_t fs = H5Screate_simple(rank, dims, NULL), d = H5I_INVALID_HID, ms = H5I_INVALID_HID,
          xf = H5Pcreate(H5P_DATASET_XFER);
    H5CHK(fs, "HDF5: dataspace for %s", name);
    H5CHK(xf, "HDF5: transfer list");
    d = H5Dcreate2(h->file, name, h5type(t), fs, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5CHK(d, "%s: cannot create dataset %s", h->tmp, name);
    if (h->comm.size > 1) H5CHK(H5Pset_dxpl_mpio(xf, H5FD_MPIO_COLLECTIVE), "HDF5: collective transfer");
    hsize_t off[2] = {(hsize_t)first, 0}, cnt[2] = {(hsize_t)n, dims[1]};
    if (n > 0 && rows > 0) {
        H5CHK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, off, NULL, cnt, NULL), "HDF5: select");
        ms = H5Screate_simple(rank, cnt, NULL);
    } else {
        H5CHK(H5Sselect_none(fs), "HDF5: select none");
        hsize_t one = 1;
        ms = H5Screate_simple(1, &one, NULL);
        if (ms >= 0) H5CHK(H5Sselect_none(ms), "HDF5: select none");
    }
    H5CHK(ms, "HDF5: memory dataspace");
    if (rows > 0) H5CHK(H5Dwrite(d, h5type(t), ms, fs, xf, buf), "%s: cannot write %s", h->tmp, name);
fail:
    if (ms >= 0) H5Sclose(ms);
    if (d >= 0) H5Dclose(d);
    if (fs >= 0) H5Sclose(fs);
    if (xf >= 0) H5Pclose(xf);
    return st;
}

/* put, then (every rank, once the write succeeded everywhere) the slab's checksum */
static fh_status put_sum(ckpt *h, const char *name, ckpt_type t, int64_t rows, int64_t row_len,
                         int64_t first, int64_t n, const void *buf)
{
    FH_TRY(comm_agree(&h->comm, put(h, name, t, rows, row_len, first, n, buf)));
    const int64_t bytes = rows > 0 ? n * (row_len > 0 ? row_len : 1) * (int64_t)H5Tget_size(h5type(t)) : 0;
    return comm_agree(&h->comm, ckpt_sum_add(h, name, first, buf, bytes));
}

fh_status ckpt_put_array(ckpt *h, const char *name, ckpt_type t, const void *buf, int64_t n)
{
    return put_sum(h, name, t, n, 0, 0, h->comm.rank == 0 ? n : 0, buf);
}

fh_status ckpt_put_rows(ckpt *h, const char *name, ckpt_type t, int64_t total_rows, int64_t row_len,
                        int64_t first_row, int64_t nrows, const void *buf)
{
    return put_sum(h, name, t, total_rows, row_len, first_row, nrows, buf);
}

typedef struct {
    hid_t file;
    uLong crc;
    fh_status st;
    const char *path;
} crc_ctx;

static herr_t crc_one(hid_t loc, const char *name, const H5L_info_t *info, void *op)
{
    (void)info;
    crc_ctx *c = op;
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) {
        c->st = fh_error_set(FH_EINPUT, "%s: dataset %s cannot be opened", c->path, name);
        return -1;
    }
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    /* the values are read as the native type: its size, not the file type's, sizes the buffer (a
     * damaged file can store a type whose native form is larger) */
    hid_t mt = t >= 0 ? H5Tget_native_type(t, H5T_DIR_DEFAULT) : -1;
    size_t sz = mt >= 0 ? H5Tget_size(mt) : 0;
    hssize_t n = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
    /* a damaged file can declare more values than memory can address (storage never written) */
    const int too_big = n > 0 && sz > 0 && (uint64_t)n > SIZE_MAX / sz;
    void *buf = n > 0 && !too_big ? malloc((size_t)n * sz) : NULL;
    herr_t rc = 0;
    if (too_big) {
        c->st = fh_error_set(FH_EINPUT, "%s: dataset %s declares %lld values: too large", c->path, name, (long long)n);
        rc = -1;
    } else if (n < 0 || sz == 0 || (n > 0 && !buf)) {
        c->st = fh_error_set(FH_EINPUT, "%s: dataset %s has no readable shape", c->path, name);
        rc = -1;
    } else if (n > 0) {
        if (H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
            c->st = fh_error_set(FH_EINPUT, "%s: dataset %s cannot be read (truncated?)", c->path, name);
            rc = -1;
        } else {
            c->crc = crc32(c->crc, (const Bytef *)name, (uInt)strlen(name));
            c->crc = crc_bytes(c->crc, buf, (size_t)n * sz);
        }
    }
    free(buf);
    if (mt >= 0) H5Tclose(mt);
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    H5Dclose(d);
    return rc;
}

/* CRC of every dataset of an open file, in name order. */
static fh_status file_crc(hid_t file, const char *path, uint32_t *out)
{
    crc_ctx c = {file, crc32(0L, Z_NULL, 0), FH_OK, path};
    hsize_t idx = 0;
    if (H5Literate(file, H5_INDEX_NAME, H5_ITER_INC, &idx, crc_one, &c) < 0 && c.st == FH_OK)
        c.st = fh_error_set(FH_EINPUT, "%s: cannot list the datasets", path);
    *out = (uint32_t)c.crc;
    return c.st;
}

static int fsync_path(const char *path, int dir)
{
    int fd = open(path, dir ? O_RDONLY : O_RDWR);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int is_ckpt_name(const char *n)
{
    size_t l = strlen(n);
    return l == 16 && strncmp(n, "ckpt_", 5) == 0 && strcmp(n + l - 3, ".h5") == 0;
}

static int cmp_str_desc(const void *a, const void *b) { return -strcmp(*(char *const *)a, *(char *const *)b); }

/* Checkpoint file names in dir, newest first; *n receives the count. */
static char **list_ckpts(const char *dir, int *n)
{
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **v = NULL;
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_ckpt_name(e->d_name)) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nv = realloc(v, (size_t)cap * sizeof *v);
            if (!nv) break;
            v = nv;
        }
        v[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    if (v) qsort(v, (size_t)*n, sizeof *v, cmp_str_desc);
    return v;
}

static void free_list(char **v, int n)
{
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

fh_status ckpt_commit(ckpt *h, int keep)
{
    fh_status st = FH_OK;
    uint32_t crc = h->comm.rank == 0 ? ckpt_sum_total(h) : 0;
    st = comm_bcast(&h->comm, &crc, sizeof crc, 0);
    int64_t v = crc;
    if (st == FH_OK) st = h5_attr_write_i64(h->file, "crc32", &v, 1);
    st = comm_agree(&h->comm, st);
    if (H5Fclose(h->file) < 0 && st == FH_OK) st = fh_error_set(FH_EIO, "%s: cannot close", h->tmp);
    h->file = H5I_INVALID_HID;
    st = comm_agree(&h->comm, st);
    if (st == FH_OK && h->comm.rank == 0) {
        if (fsync_path(h->tmp, 0) != 0 || rename(h->tmp, h->path) != 0)
            st = fh_error_set(FH_EIO, "%s: cannot move the checkpoint into place: %s", h->path, strerror(errno));
        else
            fsync_path(h->dir, 1);
        if (st == FH_OK && keep > 0) {
            int n;
            char **v = list_ckpts(h->dir, &n);
            for (int i = keep; i < n; i++) {
                char p[2200];
                snprintf(p, sizeof p, "%s/%s", h->dir, v[i]);
                unlink(p);
            }
            free_list(v, n);
        }
    }
    st = comm_agree(&h->comm, st);
    if (st != FH_OK && h->comm.rank == 0) unlink(h->tmp);
    ckpt_free(h);
    return st;
}

void ckpt_abort(ckpt *h)
{
    if (!h) return;
    if (h->file >= 0) H5Fclose(h->file);
    if (h->comm.rank == 0 && h->writing) unlink(h->tmp);
    ckpt_free(h);
}

/* ---- read ----------------------------------------------------------------------------------- */

/* Serial check of one file on rank 0: format, version and checksum. */
static fh_status verify(const char *path, int64_t *round)
{
    if (H5Fis_hdf5(path) <= 0) return fh_error_set(FH_EINPUT, "%s: not a readable HDF5 file (truncated?)", path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return fh_error_set(FH_EINPUT, "%s: cannot open (truncated?)", path);
    char fmt[64];
    int64_t v, crc_stored = 0;
    uint32_t crc;
    fh_status st = h5_attr_read_str(f, "format", fmt, sizeof fmt, path);
    if (st == FH_OK && strcmp(fmt, "fedhpc-ckpt") != 0)
        st = fh_error_set(FH_EINPUT, "%s: expected a fedhpc checkpoint, found format '%s'", path, fmt);
    if (st == FH_OK) st = h5_attr_read_i64(f, "version", &v, 1, path);
    if (st == FH_OK && v != CKPT_VERSION)
        st = fh_error_set(FH_EINPUT, "%s: checkpoint version %lld, this fedhpc reads %d", path, (long long)v, CKPT_VERSION);
    if (st == FH_OK) st = h5_attr_read_i64(f, "round", round, 1, path);
    if (st == FH_OK) st = h5_attr_read_i64(f, "crc32", &crc_stored, 1, path);
    if (st == FH_OK) st = file_crc(f, path, &crc);
    if (st == FH_OK && (uint32_t)crc_stored != crc)
        st = fh_error_set(FH_EINPUT, "%s: checksum mismatch (stored %08x, computed %08x): the file is damaged", path,
                          (unsigned)crc_stored, (unsigned)crc);
    H5Fclose(f);
    return st;
}

fh_status ckpt_latest_path(const char *dir, char *out, size_t cap)
{
    int n;
    char **v = list_ckpts(dir, &n);
    if (n > 0) snprintf(out, cap, "%s/%s", dir, v[0]);
    else if (cap) out[0] = 0;
    free_list(v, n);
    return FH_OK;
}

fh_status ckpt_open(const char *dir_or_file, uint64_t config_hash, const comm_t *c, ckpt **out, int64_t *round)
{
    h5_quiet();
    *out = NULL;
    ckpt *h = calloc(1, sizeof *h);
    FH_CHECK_ALLOC(h);
    h->comm = *c;
    h->file = H5I_INVALID_HID;
    fh_status st = FH_OK;
    struct {
        char path[1100];
        int64_t round;
    } pick;
    memset(&pick, 0, sizeof pick);
    if (c->rank == 0) {
        struct stat sb;
        if (stat(dir_or_file, &sb) == 0 && S_ISREG(sb.st_mode)) {
            st = verify(dir_or_file, &pick.round);
            if (st == FH_OK) snprintf(pick.path, sizeof pick.path, "%s", dir_or_file);
        } else {
            int n;
            char **v = list_ckpts(dir_or_file, &n);
            for (int i = 0; i < n && !pick.path[0]; i++) {
                char p[1100];
                snprintf(p, sizeof p, "%s/%s", dir_or_file, v[i]);
                if (verify(p, &pick.round) == FH_OK) {
                    snprintf(pick.path, sizeof pick.path, "%s", p);
                } else {
                    size_t used = strlen(h->warning);
                    snprintf(h->warning + used, sizeof h->warning - used, "%sskipping damaged checkpoint: %s",
                             used ? "\n" : "", fh_error_msg());
                }
            }
            free_list(v, n);
            if (!pick.path[0] && n > 0)
                st = fh_error_set(FH_EINPUT, "%s: no valid checkpoint (%d damaged)", dir_or_file, n);
        }
    }
    st = comm_agree(c, st);
    if (st == FH_OK) st = comm_bcast(c, &pick, sizeof pick, 0);
    if (st == FH_OK) st = comm_bcast(c, h->warning, sizeof h->warning, 0);
    if (st != FH_OK || !pick.path[0]) { /* nothing to resume from: *out stays NULL */
        free(h);
        *round = 0;
        return st;
    }
    snprintf(h->path, sizeof h->path, "%s", pick.path);
    hid_t fapl = open_fapl(c);
    h->file = fapl >= 0 ? H5Fopen(h->path, H5F_ACC_RDONLY, fapl) : H5I_INVALID_HID;
    if (fapl >= 0) H5Pclose(fapl);
    st = h->file >= 0 ? FH_OK : fh_error_set(FH_EINPUT, "%s: cannot open the checkpoint", h->path);
    int64_t hv = 0;
    if (st == FH_OK) st = h5_attr_read_i64(h->file, "config_hash", &hv, 1, h->path);
    if (st == FH_OK && (uint64_t)hv != config_hash)
        st = fh_error_set(FH_EINPUT,
                          "%s: written with other training settings (config hash %016llx, this config %016llx): "
                          "data, model, train or fl keys differ; resume with the original configuration or use a new [checkpoint] dir",
                          h->path, (unsigned long long)hv, (unsigned long long)config_hash);
    st = comm_agree(c, st);
    if (st != FH_OK) {
        ckpt_close(h);
        return st;
    }
    *round = pick.round;
    *out = h;
    return FH_OK;
}

const char *ckpt_warning(const ckpt *h) { return h ? h->warning : ""; }
const char *ckpt_path(const ckpt *h) { return h ? h->path : ""; }

fh_status ckpt_get_i64(ckpt *h, const char *name, int64_t *v) { return h5_attr_read_i64(h->file, name, v, 1, h->path); }
fh_status ckpt_get_f64(ckpt *h, const char *name, double *v) { return h5_attr_read_f64(h->file, name, v, h->path); }

int ckpt_has(ckpt *h, const char *name) { return H5Lexists(h->file, name, H5P_DEFAULT) > 0; }

static fh_status get(ckpt *h, const char *name, ckpt_type t, int64_t row_len, int64_t first, int64_t n,
                     int64_t want_rows, void *buf)
{
    if (!ckpt_has(h, name)) return fh_error_set(FH_EINPUT, "%s: missing dataset '%s'", h->path, name);
    int rank = row_len > 0 ? 2 : 1;
    hsize_t dims[2] = {0, 1};
    FH_TRY(h5_dset_shape(h->file, name, rank, dims, h->path));
    if ((row_len > 0 && dims[1] != (hsize_t)row_len) || (want_rows >= 0 && dims[0] != (hsize_t)want_rows) ||
        (hsize_t)(first + n) > dims[0])
        return fh_error_set(FH_EINPUT, "%s: dataset '%s' has shape [%llu, %llu], not what this run needs", h->path,
                            name, (unsigned long long)dims[0], (unsigned long long)dims[1]);
    if (n == 0) return FH_OK;
    fh_status st = FH_OK, st_fail = FH_EINPUT;
    hid_t d = H5Dopen2(h->file, name, H5P_DEFAULT), fs = H5I_INVALID_HID;
    H5CHK(d, "%s: cannot open '%s'", h->path, name);
    fs = H5Dget_space(d);
    H5CHK(fs, "HDF5: dataspace");
    char what[1400];
    snprintf(what, sizeof what, "%s: '%s'", h->path, name);
    st = h5_rows_rw(d, fs, h5type(t), rank, (hsize_t)first, (hsize_t)n, dims[1], H5P_DEFAULT, buf, 0, FH_EINPUT, what);
fail:
    if (fs >= 0) H5Sclose(fs);
    if (d >= 0) H5Dclose(d);
    return st;
}

fh_status ckpt_get_array(ckpt *h, const char *name, ckpt_type t, void *buf, int64_t n)
{
    return get(h, name, t, 0, 0, n, n, buf);
}

fh_status ckpt_get_rows(ckpt *h, const char *name, ckpt_type t, int64_t row_len, int64_t first_row,
                        int64_t nrows, void *buf)
{
    return get(h, name, t, row_len, first_row, nrows, -1, buf);
}

void ckpt_close(ckpt *h)
{
    if (!h) return;
    if (h->file >= 0) H5Fclose(h->file);
    free(h);
}
