/* Tests of src/io: data files written by one rank and read in parallel, layout checks,
 * per-client state rows, model files. */
#define _POSIX_C_SOURCE 200809L
#include "tests.h"

#include "fedhpc/io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A small data set: 5 clients of sizes 1..5 (15 rows), 3 features, x = row*10 + feature. */
static void make_file(const char *path)
{
    data_set ds;
    memset(&ds, 0, sizeof ds);
    snprintf(ds.name, sizeof ds.name, "toy");
    ds.nclasses = 2;
    char *names[2] = {"no", "yes"};
    ds.class_name = names;
    float x[15 * 3], tx[2 * 3] = {0, 1, 2, 3, 4, 5};
    int32_t y[15], ty[2] = {0, 1};
    for (int i = 0; i < 15; i++) {
        for (int j = 0; j < 3; j++) x[i * 3 + j] = (float)(i * 10 + j);
        y[i] = i % 2;
    }
    ds.train = (data_table){15, 3, x, y};
    ds.test = (data_table){2, 3, tx, ty};
    int64_t perm[15], off[6] = {0, 1, 3, 6, 10, 15};
    for (int i = 0; i < 15; i++) perm[i] = 14 - i; /* reversed: checks the reordering */
    io_data_meta m;
    memset(&m, 0, sizeof m);
    snprintf(m.dataset, sizeof m.dataset, "toy");
    snprintf(m.partition, sizeof m.partition, "iid");
    m.clients = 5;
    m.seed = 4;
    CU_ASSERT_EQUAL(io_data_write(path, &ds, &m, perm, off, NULL), FH_OK);
}

static void test_write_then_parallel_read(void)
{
    comm_t *w = &g_test_world;
    char path[600];
    snprintf(path, sizeof path, "%s/toy.h5", g_test_tmpdir);
    fh_status st = FH_OK;
    if (w->rank == 0) make_file(path);
    comm_barrier(w);
    io_data *h = NULL;
    io_data_meta m;
    st = io_data_open(path, w, &h, &m);
    CU_ASSERT_EQUAL_FATAL(st, FH_OK);
    CU_ASSERT_EQUAL(m.clients, 5);
    CU_ASSERT_EQUAL(m.features, 3);
    CU_ASSERT_EQUAL(m.train_rows, 15);
    CU_ASSERT_STRING_EQUAL(m.partition, "iid");
    int32_t ids[2] = {1, 3};
    int64_t start[2], count[2];
    CU_ASSERT_EQUAL(io_data_client_ranges(h, ids, 2, start, count), FH_OK);
    CU_ASSERT_EQUAL(start[0], 1);
    CU_ASSERT_EQUAL(count[0], 2);
    CU_ASSERT_EQUAL(start[1], 6);
    CU_ASSERT_EQUAL(count[1], 4);
    float x[6 * 3];
    int32_t y[6];
    CU_ASSERT_EQUAL(io_data_read_ranges(h, "train", 2, start, count, x, y), FH_OK);
    /* file row r holds original row 14 - r */
    CU_ASSERT_DOUBLE_EQUAL(x[0], 130.0, 0);      /* file row 1 */
    CU_ASSERT_DOUBLE_EQUAL(x[2 * 3 + 1], 81.0, 0); /* file row 6 = orig 8, feature 1 */
    CU_ASSERT_EQUAL(y[2], 0);
    /* ranges out of file order are read in the given order */
    int64_t s2[2] = {6, 1}, c2[2] = {1, 1};
    CU_ASSERT_EQUAL(io_data_read_ranges(h, "train", 2, s2, c2, x, y), FH_OK);
    CU_ASSERT_DOUBLE_EQUAL(x[0], 80.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(x[3], 130.0, 0);
    int64_t cc[2];
    CU_ASSERT_EQUAL(io_data_class_counts(h, cc), FH_OK);
    CU_ASSERT_EQUAL(cc[0], 8);
    CU_ASSERT_EQUAL(cc[1], 7);
    char names[2][64];
    CU_ASSERT_EQUAL(io_data_class_names(h, names), FH_OK);
    CU_ASSERT_STRING_EQUAL(names[1], "yes");
    io_data_close(h);
}

static void test_bad_files_are_input_errors(void)
{
    comm_t *w = &g_test_world;
    char path[600], good[600];
    snprintf(good, sizeof good, "%s/toy.h5", g_test_tmpdir);
    snprintf(path, sizeof path, "%s/trunc%d.h5", g_test_tmpdir, w->rank);
    if (w->rank == 0 && access(good, R_OK) != 0) make_file(good);
    comm_barrier(w);
    FILE *in = fopen(good, "rb"), *out = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    char buf[1500];
    size_t n = fread(buf, 1, sizeof buf, in);
    fwrite(buf, 1, n, out);
    fclose(in);
    fclose(out);
    io_data *h = NULL;
    io_data_meta m;
    comm_t self = {MPI_COMM_SELF, 0, 1};
    CU_ASSERT_EQUAL(io_data_open(path, &self, &h, &m), FH_EINPUT);
    CU_ASSERT_PTR_NULL(h);
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), path));
    snprintf(path, sizeof path, "%s/none.h5", g_test_tmpdir);
    CU_ASSERT_EQUAL(io_data_open(path, &self, &h, &m), FH_EINPUT);
}

static void test_state_rows(void)
{
    comm_t *w = &g_test_world;
    char path[600];
    snprintf(path, sizeof path, "%s/state.h5", g_test_tmpdir);
    io_state *s = NULL;
    CU_ASSERT_EQUAL_FATAL(comm_agree(w, io_state_create(path, w, 8, 5, &s)), FH_OK);
    float row[5];
    CU_ASSERT_EQUAL(io_state_read(s, 7, row), FH_OK);
    for (int j = 0; j < 5; j++) CU_ASSERT_DOUBLE_EQUAL(row[j], 0.0, 0); /* never written: zeros */
    comm_barrier(w); /* everyone has read the zeros before anyone writes */
    for (int c = w->rank; c < 8; c += w->size) {
        for (int j = 0; j < 5; j++) row[j] = (float)(c * 100 + j);
        CU_ASSERT_EQUAL(io_state_write(s, c, row), FH_OK);
    }
    comm_barrier(w);
    for (int c = 0; c < 8; c++) { /* every rank sees every rank's rows */
        CU_ASSERT_EQUAL(io_state_read(s, c, row), FH_OK);
        CU_ASSERT_DOUBLE_EQUAL(row[4], c * 100 + 4, 0);
    }
    comm_barrier(w);
    io_state_close(s);
}

static void test_model_roundtrip(void)
{
    model_t m;
    CU_ASSERT_EQUAL_FATAL(model_create(&m, MODEL_LOGREG, 6, 3, NULL, 0), FH_OK);
    float p[21], q[21];
    for (int i = 0; i < 21; i++) p[i] = (float)i / 7.0f;
    char path[600];
    snprintf(path, sizeof path, "%s/model%d.h5", g_test_tmpdir, g_test_world.rank);
    io_model_info info = {"fedavg", 3, 1, "x.h5"};
    CU_ASSERT_EQUAL_FATAL(io_model_write(path, &m, p, &info), FH_OK);
    int64_t n = 21;
    CU_ASSERT_EQUAL(io_model_read(path, q, &n), FH_OK);
    CU_ASSERT_EQUAL(n, 21);
    CU_ASSERT_EQUAL(memcmp(p, q, sizeof p), 0);
    n = 5;
    CU_ASSERT_EQUAL(io_model_read(path, q, &n), FH_EINPUT); /* no room */
}

/* Issue 17: prepare's per-dataset CRC-32s are verified with every rank reading a slice (any
 * number of ranks, also more ranks than rows of a dataset); one flipped value in /train/x is
 * found, on every rank. The damage is made with stdio: the 12 bytes of file row 0. */
static void test_data_checksums(void)
{
    comm_t *w = &g_test_world;
    char path[600];
    snprintf(path, sizeof path, "%s/crc.h5", g_test_tmpdir);
    if (w->rank == 0) make_file(path);
    comm_barrier(w);
    io_data *h = NULL;
    io_data_meta m;
    CU_ASSERT_EQUAL_FATAL(io_data_open(path, w, &h, &m), FH_OK);
    CU_ASSERT_EQUAL(m.checksums, 1);
    int64_t bytes = -1;
    CU_ASSERT_EQUAL(io_data_verify(h, w, &bytes), FH_OK);
    if (w->rank == 0) CU_ASSERT_EQUAL(bytes, 15 * 3 * 4 + 15 * 4 + 6 * 8 + 2 * 3 * 4 + 2 * 4);
    io_data_close(h);
    comm_barrier(w);
    if (w->rank == 0) { /* file row 0 = original row 14: 140, 141, 142 */
        float row[3] = {140, 141, 142};
        FILE *f = fopen(path, "r+b");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        static unsigned char buf[1 << 16];
        size_t n = fread(buf, 1, sizeof buf, f);
        long at = -1;
        for (size_t i = 0; i + sizeof row <= n && at < 0; i++)
            if (memcmp(buf + i, row, sizeof row) == 0) at = (long)i;
        CU_ASSERT_FATAL(at >= 0);
        float other = 140.5f;
        fseek(f, at, SEEK_SET);
        fwrite(&other, sizeof other, 1, f);
        fclose(f);
    }
    comm_barrier(w);
    CU_ASSERT_EQUAL_FATAL(io_data_open(path, w, &h, &m), FH_OK);
    CU_ASSERT_EQUAL(io_data_verify(h, w, &bytes), FH_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), "/train/x: checksum mismatch"));
    io_data_close(h);
}

void tests_register_io(void)
{
    CU_pSuite s = CU_add_suite("io", NULL, NULL);
    tests_add(s, "write_then_parallel_read", test_write_then_parallel_read);
    tests_add(s, "data_checksums", test_data_checksums);
    tests_add(s, "bad_files_are_input_errors", test_bad_files_are_input_errors);
    tests_add(s, "state_rows", test_state_rows);
    tests_add(s, "model_roundtrip", test_model_roundtrip);
}
