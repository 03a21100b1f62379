/* libFuzzer harness: the fedhpc data-file reader (src/io/data_io.c) and `fedhpc inspect`
 * (src/io/inspect.c) on mutated HDF5 files.
 *
 * Two kinds of input. One that starts with the HDF5 signature is the file itself (mutated
 * bytes: exercises libhdf5's decoder as much as fedhpc's checks). Any other input describes a
 * well-formed HDF5 file whose *contents* are hostile (see make_file: attribute values that
 * disagree with the shapes or sit at integer edges, offsets out of order, labels and groups
 * out of range, missing or misshapen datasets); the harness writes it with HDF5 and reads it
 * back, so fedhpc's own validation is fuzzed past libhdf5.
 *
 * The file is then opened with io_data_open on a 1-rank communicator, then
 * everything a run reads is read: class counts and names, every client's row range, the rows
 * of both splits, the client groups. After that io_inspect summarises the same file. No HDF5
 * object may stay open afterwards (error paths must close what they opened).
 * Reads are skipped when the (already validated) shapes would need more than 64 MiB: a file
 * may legally declare a large dataset whose storage is never allocated.
 */
#include "fuzz_common.h"
#include "fedhpc/io.h"

#include <math.h>

#include "../../src/io/h5util.h"

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

/* ---- structured inputs: a valid HDF5 file with hostile contents ---------------------------- */
typedef struct {
    const uint8_t *p;
    size_t n, at;
} bytes;
static uint8_t next(bytes *b) { return b->at < b->n ? b->p[b->at++] : 0; }

/* The real value, or (selector >= 200) an edge value instead. */
static int64_t edge(int64_t real, uint8_t sel)
{
    static const int64_t e[] = {0, -1, 1, INT32_MAX, (int64_t)INT32_MAX + 1, INT32_MIN, INT64_MAX, INT64_MIN,
                                (int64_t)1 << 20, (int64_t)1 << 30, (int64_t)1 << 40};
    if (sel < 200) return real;
    if (sel < 200 + (int)(sizeof e / sizeof *e)) return e[sel - 200];
    if (sel < 240) return real + 1;
    if (sel < 250) return real - 1;
    return ((int64_t)1 << 32) + real;
}

static int make_file(const char *path, bytes *b)
{
    const uint8_t fl = next(b);
    const int64_t d = 1 + next(b) % 8, C = 1 + next(b) % 8, tr = C + next(b) % 32, te = next(b) % 16;
    const int64_t K = 2 + next(b) % 6;
    const int64_t a_feat = edge(d, next(b)), a_cls = edge(K, next(b)), a_cli = edge(C, next(b));
    const int64_t a_tr = edge(tr, next(b)), a_te = edge(te, next(b));
    const uint8_t ncls_sel = next(b), ncnt_sel = next(b), groups = next(b) % 5;
    int64_t off[9], cnt[8] = {0}, grp_attr = groups;
    int32_t y[48 + 16], grp[8];
    float x[(48 + 16) * 8];
    for (int64_t c = 0; c <= C; c++) off[c] = edge(c * tr / C, next(b));
    for (int64_t i = 0; i < tr + te; i++) {
        const uint8_t v = next(b);
        y[i] = v < 250 ? (int32_t)(v % K) : v == 250 ? -1 : (int32_t)(K + v - 251);
        if (i < tr && y[i] >= 0 && y[i] < K) cnt[y[i]]++;
    }
    for (int64_t c = 0; c < C; c++) grp[c] = (int32_t)(next(b) % (groups + 2)) - (groups ? 0 : 1);
    const uint8_t lf = next(b);
    for (size_t i = 0; i < sizeof x / sizeof *x; i++) x[i] = (float)i * 0.25f;

    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return -1;
    hid_t gtr = H5Gcreate2(f, "train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t gte = H5Gcreate2(f, "test", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int64_t v;
    int ok = gtr >= 0 && gte >= 0;
    ok = ok && h5_attr_write_str(f, "format", (fl & 0x40) ? "fedhpc-model" : "fedhpc-data") == FH_OK;
    v = (fl & 0x80) ? 2 : IO_DATA_VERSION;
    ok = ok && h5_attr_write_i64(f, "version", &v, 1) == FH_OK;
    ok = ok && h5_attr_write_str(f, "dataset", "fuzz") == FH_OK;
    ok = ok && h5_attr_write_str(f, "partition", "iid") == FH_OK;
    ok = ok && h5_attr_write_f64(f, "alpha", 0.5) == FH_OK;
    v = 1;
    ok = ok && h5_attr_write_i64(f, "seed", &v, 1) == FH_OK;
    ok = ok && h5_attr_write_i64(f, "features", &a_feat, 1) == FH_OK;
    ok = ok && h5_attr_write_i64(f, "classes", &a_cls, 1) == FH_OK;
    ok = ok && h5_attr_write_i64(f, "clients", &a_cli, 1) == FH_OK;
    ok = ok && h5_attr_write_i64(f, "train_rows", &a_tr, 1) == FH_OK;
    ok = ok && h5_attr_write_i64(f, "test_rows", &a_te, 1) == FH_OK;
    ok = ok && h5_attr_write_i64(f, "train_class_counts", cnt, (hsize_t)(ncnt_sel < 200 ? K : ncnt_sel % 8 + 1)) == FH_OK;
    char *names[8] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    ok = ok && h5_dset_write_strs(f, "classes", names, (hsize_t)(ncls_sel < 200 ? K : ncls_sel % 8)) == FH_OK;
    hsize_t dx[2] = {(hsize_t)tr, (hsize_t)d}, dy = (hsize_t)tr, dt[2] = {(hsize_t)te, (hsize_t)d}, dte = (hsize_t)te;
    ok = ok && h5_dset_write(gtr, "x", H5T_NATIVE_FLOAT, (fl & 0x20) ? 1 : 2, dx, x) == FH_OK;
    ok = ok && h5_dset_write(gtr, "y", H5T_NATIVE_INT32, 1, &dy, y) == FH_OK;
    if (!(fl & 1)) ok = ok && h5_dset_write(gte, "x", H5T_NATIVE_FLOAT, 2, dt, x) == FH_OK;
    ok = ok && h5_dset_write(gte, "y", H5T_NATIVE_INT32, 1, &dte, y + tr) == FH_OK;
    hsize_t no = (hsize_t)C + 1, nc = (hsize_t)C;
    if (!(fl & 2)) ok = ok && h5_dset_write(gtr, "client_offsets", H5T_NATIVE_INT64, 1, &no, off) == FH_OK;
    if (fl & 4) {
        ok = ok && h5_dset_write(gtr, "client_group", H5T_NATIVE_INT32, 1, &nc, grp) == FH_OK;
        ok = ok && h5_attr_write_i64(f, "groups", &grp_attr, 1) == FH_OK;
    }
    if (fl & 8) ok = ok && h5_attr_write_f64(f, "local_test_frac", lf == 255 ? NAN : lf / 200.0) == FH_OK;
    if (fl & 16) ok = ok && h5_dset_write_strs(gtr, "client_name", names, nc) == FH_OK;
    if (gtr >= 0) H5Gclose(gtr);
    if (gte >= 0) H5Gclose(gte);
    H5Fclose(f);
    return ok ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[600];
    static const uint8_t sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    if (size >= 8 && memcmp(data, sig, 8) == 0) {
        fz_write("in.h5", data, size, path, sizeof path);
    } else {
        snprintf(path, sizeof path, "%s/in.h5", fz_dir);
        bytes b = {data, size, 0};
        if (make_file(path, &b) != 0) abort(); /* writing a small valid file must work */
        check_no_open_objects();
    }
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
    /* libhdf5's free lists would carry blocks of a damaged file into the next input (its crashes
     * then do not reproduce on their own); H5close() per input would be 5x slower */
    H5garbage_collect();
    return 0;
}
