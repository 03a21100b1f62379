/* Private helpers of the I/O layer: checked HDF5 calls and attribute/dataset shortcuts. */
#ifndef FEDHPC_IO_H5UTIL_H
#define FEDHPC_IO_H5UTIL_H

#include "fedhpc/common.h"
#include "fedhpc/data.h"

#include <hdf5.h>
#include <stdint.h>

/* Evaluate an HDF5 call; on a negative result record "what" and jump to `fail`. */
#define H5CHK(expr, ...)                                                   \
    do {                                                                   \
        if ((expr) < 0) {                                                  \
            st = fh_error_set(st_fail, __VA_ARGS__);                       \
            goto fail;                                                     \
        }                                                                  \
    } while (0)

void h5_quiet(void);
fh_status h5_attr_write_str(hid_t obj, const char *name, const char *v);
fh_status h5_attr_write_i64(hid_t obj, const char *name, const int64_t *v, hsize_t n);
fh_status h5_attr_write_f64(hid_t obj, const char *name, double v);
/* Read attributes; FH_EINPUT "PATH: attribute NAME: ..." when missing or of the wrong kind. */
fh_status h5_attr_read_str(hid_t obj, const char *name, char *out, size_t cap, const char *path);
fh_status h5_attr_read_i64(hid_t obj, const char *name, int64_t *out, hsize_t n, const char *path);
fh_status h5_attr_read_f64(hid_t obj, const char *name, double *out, const char *path);
int h5_attr_exists(hid_t obj, const char *name);
/* Write a whole dataset of rank 1 or 2 (dims[1] == 0 for rank 1) from memory. */
fh_status h5_dset_write(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims,
                        const void *buf);
/* Write n strings as a fixed-length string dataset. */
fh_status h5_dset_write_strs(hid_t loc, const char *name, char *const *s, hsize_t n);
/* Shape of a dataset: rank and dims[2]; FH_EINPUT when missing or of another rank. */
fh_status h5_dset_shape(hid_t loc, const char *name, int want_rank, hsize_t *dims,
                        const char *path);
/* Read a whole 1-D string dataset into out[n][cap]. */
fh_status h5_dset_read_strs(hid_t loc, const char *name, char *out, hsize_t n, size_t cap,
                            const char *path);
/* Read (write = 0) or write rows [first, first + n) of dataset d of rank 1 or 2 (cols columns;
 * 1 for rank 1) through its file space fs, whose selection this sets; transfer list xfer.
 * On failure: status fail, message "WHAT: cannot read|write". */
fh_status h5_rows_rw(hid_t d, hid_t fs, hid_t type, int rank, hsize_t first, hsize_t n, hsize_t cols,
                     hid_t xfer, void *buf, int write, fh_status fail, const char *what);
/* Write to PATH.tmp.PID, then rename over path; returns the temp name in tmp[cap]. */
void h5_tmp_name(const char *path, char *tmp, size_t cap);
fh_status h5_commit_rename(const char *tmp, const char *path);

/* Item-set data: CSR datasets item_offsets + items of n rows of t (rows perm[0..n) or the first
 * n; items are the row's values >= 0) in group g (src/io/items_io.c). */
fh_status h5_items_write(hid_t g, const data_table *t, const int64_t *perm, int64_t n);

#endif
