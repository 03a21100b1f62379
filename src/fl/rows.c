/* Reading a rank's clients' training rows: in groups of about 4 MB, into buffers that grow to
 * the largest group (shared by every strategy and by evaluation). */
#include "fedhpc/loop.h"

#include <stdlib.h>

/* Rows of a rank's clients are read in groups of at most this many floats (4 MB) or one client:
 * memory follows the largest client, not the number of clients a rank trains in a round. */
#define ROWS_READ_FLOATS (1 << 20)

int32_t fl_rows_group(const int64_t *count, int32_t i, int32_t end, int64_t d)
{
    int64_t rows = count[i];
    int32_t g = i + 1;
    for (; g < end && (rows + count[g]) * d <= ROWS_READ_FLOATS; g++) rows += count[g];
    return g;
}

fh_status fl_read_rows(io_data *data, int32_t n, const int64_t *start, const int64_t *count, int32_t d,
                       float **x, int32_t **y, int64_t *cap)
{
    int64_t rows = 0;
    for (int32_t i = 0; i < n; i++) rows += count[i];
    if (rows > *cap) {
        free(*x);
        free(*y);
        *x = malloc((size_t)rows * (size_t)d * sizeof **x);
        *y = malloc((size_t)rows * sizeof **y);
        *cap = *x && *y ? rows : 0;
        FH_CHECK_ALLOC(*cap ? *x : NULL);
    }
    return io_data_read_ranges(data, "train", n, start, count, *x, *y);
}

