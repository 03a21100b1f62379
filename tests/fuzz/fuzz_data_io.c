/* libFuzzer harness: the fedhpc data-file reader (src/io/data_io.c) and `fedhpc inspect`
 * (src/io/inspect.c) on mutated HDF5 files.
 *
 * The input bytes are written to a file; io_data_open checks it on a 1-rank communicator, then
 * everything a run reads is read: class counts and names, every client's row range, the rows
 * of both splits, the client groups. After that io_inspect summarises the same file. No HDF5
 * object may stay open afterwards (error paths must close what they opened).
 * Reads are skipped when the (already validated) shapes would need more than 64 MiB: a file
 * may legally declare a large dataset whose storage is never allocated.
 */
#include "fuzz_common.h"
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

static void read_all(io_data *h, const io_data_meta *m)
{
    const int64_t lim = (int64_t)1 << 24; /* elements */
    if (m->classes > (1 << 16) || m->clients > (1 << 16) || m->features > (1 << 20) ||
        m->train_rows * (int64_t)m->features > lim || m->test_rows * (int64_t)m->features > lim)
        return;
    int64_t *cnt = calloc((size_t)m->classes, sizeof *cnt);
    char(*names)[64] = calloc((size_t)m->classes, 64);
    int32_t *ids = malloc((size_t)m->clients * sizeof *ids), *grp = calloc((size_t)m->clients, sizeof *grp);
    int64_t *start = calloc((size_t)m->clients, sizeof *start), *count = calloc((size_t)m->clients, sizeof *count);
    float *x = malloc((size_t)(m->train_rows + m->test_rows + 1) * (size_t)m->features * sizeof *x);
    int32_t *y = malloc((size_t)(m->train_rows + m->test_rows + 1) * sizeof *y);
    if (cnt && names && ids && grp && start && count && x && y) {
        fz_status_ok(io_data_class_counts(h, cnt));
        fz_status_ok(io_data_class_names(h, names));
        for (int32_t c = 0; c < m->clients; c++) ids[c] = c;
        fh_status st = io_data_client_ranges(h, ids, m->clients, start, count);
        fz_status_ok(st);
        if (st == FH_OK) {
            int64_t tot = 0;
            for (int32_t c = 0; c < m->clients; c++) {
                if (start[c] < 0 || count[c] < 0 || start[c] + count[c] > m->train_rows) abort(); /* checked at open */
                tot += count[c];
                (void)io_data_local_test_rows(m, count[c]);
            }
            if (tot != m->train_rows) abort();
            /* the clients in reverse order (one selection each), then all at once */
            for (int32_t c = m->clients - 1; c >= 0 && st == FH_OK; c--)
                st = io_data_read_ranges(h, "train", 1, &start[c], &count[c], x, y);
            fz_status_ok(st);
            if (st == FH_OK) fz_status_ok(io_data_read_ranges(h, "train", m->clients, start, count, x, y));
        }
        int64_t s0 = 0, n0 = m->test_rows;
        fz_status_ok(io_data_read_ranges(h, "test", 1, &s0, &n0, x, y));
        if (m->has_client_group) fz_status_ok(io_data_client_groups(h, grp));
    }
    free(cnt);
    free(names);
    free(ids);
    free(grp);
    free(start);
    free(count);
    free(x);
    free(y);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[600];
    fz_write("in.h5", data, size, path, sizeof path);
    io_data *h = NULL;
    io_data_meta m;
    fh_status st = io_data_open(path, &fz_world, &h, &m);
    fz_status_ok(st);
    if (st == FH_OK) {
        read_all(h, &m);
        io_data_close(h);
    }
    check_no_open_objects();
    if (st == FH_OK && m.train_rows * (int64_t)m.features <= ((int64_t)1 << 24) && m.clients <= (1 << 16) &&
        m.classes <= (1 << 16))
        fz_status_ok(io_inspect(path));
    check_no_open_objects();
    return 0;
}
