/* Item-set data (prepare supermarket|ticdata) in the data file: the CSR form of each split's
 * variable-length item sets next to the padded rows the engine reads (docs/file-formats.md):
 *   /train/item_offsets [rows + 1] int64, /train/items [nnz] int32 (0-based item indices,
 *   rows in the file's row order), the same under /test, and /item_name [items] strings. */
#include "h5util.h"

#include <stdlib.h>

fh_status h5_items_write(hid_t g, const data_table *t, const int64_t *perm, int64_t n)
{
    int64_t *off = malloc(((size_t)n + 1) * sizeof *off);
    int64_t nnz = 0;
    if (!off) return fh_error_set(FH_ENOMEM, "out of memory writing item sets");
    off[0] = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *x = t->x + (perm ? perm[i] : i) * t->d;
        for (int32_t j = 0; j < t->d; j++) nnz += x[j] >= 0.0f;
        off[i + 1] = nnz;
    }
    int32_t *idx = malloc((size_t)(nnz ? nnz : 1) * sizeof *idx);
    if (!idx) {
        free(off);
        return fh_error_set(FH_ENOMEM, "out of memory writing item sets");
    }
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *x = t->x + (perm ? perm[i] : i) * t->d;
        for (int32_t j = 0; j < t->d; j++)
            if (x[j] >= 0.0f) idx[k++] = (int32_t)x[j];
    }
    hsize_t no = (hsize_t)n + 1, ni = (hsize_t)nnz;
    fh_status st = h5_dset_write(g, "item_offsets", H5T_NATIVE_INT64, 1, &no, off);
    if (st == FH_OK) st = h5_dset_write(g, "items", H5T_NATIVE_INT32, 1, &ni, idx);
    free(off);
    free(idx);
    return st;
}
