/* Tests of src/common: counter-based random streams and error messages. */
#include "tests.h"

#include "fedhpc/common.h"
#include "fedhpc/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_stream_is_pure_function_of_key(void)
{
    rng_t a = rng_stream(42, 7, 3, RNG_SHUFFLE), b = rng_stream(42, 7, 3, RNG_SHUFFLE);
    for (int i = 0; i < 100; i++) CU_ASSERT_EQUAL(rng_u64(&a), rng_u64(&b));
    /* the 50th number does not depend on having drawn the first 49 */
    rng_t c = rng_stream(42, 7, 3, RNG_SHUFFLE), d = c;
    for (int i = 0; i < 49; i++) rng_u64(&c);
    d.ctr = 49;
    CU_ASSERT_EQUAL(rng_u64(&c), rng_u64(&d));
}

static void test_streams_differ_by_each_key_part(void)
{
    rng_t base = rng_stream(1, 2, 3, 4);
    uint64_t x = rng_u64(&base);
    rng_t s1 = rng_stream(9, 2, 3, 4), s2 = rng_stream(1, 9, 3, 4), s3 = rng_stream(1, 2, 9, 4),
          s4 = rng_stream(1, 2, 3, 9);
    CU_ASSERT_NOT_EQUAL(x, rng_u64(&s1));
    CU_ASSERT_NOT_EQUAL(x, rng_u64(&s2));
    CU_ASSERT_NOT_EQUAL(x, rng_u64(&s3));
    CU_ASSERT_NOT_EQUAL(x, rng_u64(&s4));
}

static void test_distributions_moments(void)
{
    rng_t r = rng_stream(5, 0, 0, RNG_INIT);
    const int n = 200000;
    double su = 0, sn = 0, sn2 = 0, sg = 0;
    for (int i = 0; i < n; i++) {
        double u = rng_uniform(&r);
        CU_ASSERT_FATAL(u >= 0.0 && u < 1.0);
        su += u;
        double z = rng_normal(&r);
        sn += z;
        sn2 += z * z;
        sg += rng_gamma(&r, 0.5);
    }
    CU_ASSERT_DOUBLE_EQUAL(su / n, 0.5, 0.01);
    CU_ASSERT_DOUBLE_EQUAL(sn / n, 0.0, 0.01);
    CU_ASSERT_DOUBLE_EQUAL(sn2 / n, 1.0, 0.02);
    CU_ASSERT_DOUBLE_EQUAL(sg / n, 0.5, 0.01); /* mean of Gamma(k,1) is k */
}

static void test_below_and_shuffle(void)
{
    rng_t r = rng_stream(3, 0, 0, RNG_SAMPLE);
    int hist[7] = {0};
    for (int i = 0; i < 70000; i++) hist[rng_below(&r, 7)]++;
    for (int k = 0; k < 7; k++) CU_ASSERT(hist[k] > 9500 && hist[k] < 10500);
    uint32_t a[100];
    for (uint32_t i = 0; i < 100; i++) a[i] = i;
    rng_shuffle_u32(&r, a, 100);
    int seen[100] = {0}, moved = 0;
    for (int i = 0; i < 100; i++) {
        seen[a[i]]++;
        moved += a[i] != (uint32_t)i;
    }
    for (int i = 0; i < 100; i++) CU_ASSERT_EQUAL(seen[i], 1);
    CU_ASSERT(moved > 80);
}

static void test_error_message(void)
{
    fh_status st = fh_error_set(FH_EINPUT, "%s: [train] lr: expected a number", "x.ini");
    CU_ASSERT_EQUAL(st, FH_EINPUT);
    CU_ASSERT_STRING_EQUAL(fh_error_msg(), "x.ini: [train] lr: expected a number");
    CU_ASSERT_STRING_EQUAL(fh_status_name(FH_EINPUT), "bad input");
}

static void test_comm_agree_reports_lowest_failing_rank(void)
{
    comm_t *w = &g_test_world;
    fh_status local = FH_OK;
    if (w->rank == w->size - 1) local = fh_error_set(FH_EINPUT, "rank %d says no", w->rank);
    else fh_error_put("");
    fh_status st = comm_agree(w, local);
    CU_ASSERT_EQUAL(st, FH_EINPUT);
    char want[64];
    snprintf(want, sizeof want, "rank %d says no", w->size - 1);
    CU_ASSERT_STRING_EQUAL(fh_error_msg(), want);
    CU_ASSERT_EQUAL(comm_agree(w, FH_OK), FH_OK);
}

/* Issue 17: fh_path_check, one table over the kinds of path argument. */
static void test_path_check(void)
{
    char dir[600], file[700], under[760], missing[760], inmissing[800];
    snprintf(dir, sizeof dir, "%s/pc%d", g_test_tmpdir, g_test_world.rank);
    snprintf(file, sizeof file, "%s/f", dir);
    snprintf(under, sizeof under, "%s/x", file);
    snprintf(missing, sizeof missing, "%s/none", dir);
    snprintf(inmissing, sizeof inmissing, "%s/x", missing);
    char cmd[1500];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && : > '%s'", dir, file);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    const struct { const char *path; fh_path_kind kind; const char *want; } T[] = {
        {file, FH_PATH_READ_FILE, NULL},
        {dir, FH_PATH_READ_FILE, "is a directory (expected a file)"},
        {missing, FH_PATH_READ_FILE, "No such file or directory (expected a file to read)"},
        {dir, FH_PATH_READ_DIR, NULL},
        {file, FH_PATH_READ_DIR, "is not a directory (expected a directory)"},
        {file, FH_PATH_READ_ANY, NULL},
        {dir, FH_PATH_READ_ANY, NULL},
        {missing, FH_PATH_READ_ANY, "No such file or directory"},
        {file, FH_PATH_WRITE_FILE, NULL},
        {missing, FH_PATH_WRITE_FILE, NULL},
        {dir, FH_PATH_WRITE_FILE, "is a directory (expected the name of a file to write)"},
        {inmissing, FH_PATH_WRITE_FILE, "its directory does not exist"},
        {under, FH_PATH_WRITE_FILE, "is not a directory (expected a directory to write into)"},
        {dir, FH_PATH_WRITE_DIR, NULL},
        {inmissing, FH_PATH_WRITE_DIR, NULL}, /* created later with mkdir -p */
        {file, FH_PATH_WRITE_DIR, "is an existing file, not a directory"},
        {under, FH_PATH_WRITE_DIR, "is not a directory (expected a directory to write into)"},
        {"", FH_PATH_READ_FILE, "expected a path, got nothing"},
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        fh_status st = fh_path_check("[x] y", T[i].path, T[i].kind);
        if ((st == FH_OK) != (T[i].want == NULL) || (T[i].want && !strstr(fh_error_msg(), T[i].want)))
            printf("\n  case %zu (%s): status %d, '%s'\n", i, T[i].path, (int)st, fh_error_msg());
        CU_ASSERT_EQUAL(st, T[i].want ? FH_EINPUT : FH_OK);
        if (T[i].want) {
            CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), T[i].want));
            CU_ASSERT_EQUAL(strncmp(fh_error_msg(), "[x] y", 5), 0);
        }
    }
}

void tests_register_common(void)
{
    CU_pSuite s = CU_add_suite("common", NULL, NULL);
    tests_add(s, "stream_is_pure_function_of_key", test_stream_is_pure_function_of_key);
    tests_add(s, "streams_differ_by_each_key_part", test_streams_differ_by_each_key_part);
    tests_add(s, "distributions_moments", test_distributions_moments);
    tests_add(s, "below_and_shuffle", test_below_and_shuffle);
    tests_add(s, "error_message", test_error_message);
    tests_add(s, "path_check", test_path_check);
    tests_add(s, "comm_agree_reports_lowest_failing_rank", test_comm_agree_reports_lowest_failing_rank);
}
