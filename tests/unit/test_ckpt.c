/* Tests of src/io/ckpt_io.c: collective write of replicated and row-distributed arrays,
 * read-back, checksum verification with fallback, config-hash refusal, pruning. */
#define _POSIX_C_SOURCE 200809L
#include "tests.h"

#include "fedhpc/ckpt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { ROWS = 7, LEN = 5, N = 11 };

static void write_round(const char *dir, int64_t round, uint64_t hash, int keep)
{
    comm_t *w = &g_test_world;
    ckpt *h = NULL;
    CU_ASSERT_EQUAL_FATAL(ckpt_create(dir, round, hash, w, &h), FH_OK);
    float a[N];
    for (int i = 0; i < N; i++) a[i] = (float)(round * 100 + i);
    CU_ASSERT_EQUAL(ckpt_put_i64(h, "answer", 42 + round), FH_OK);
    CU_ASSERT_EQUAL(ckpt_put_array(h, "params", CKPT_F32, a, N), FH_OK);
    int32_t r0 = ROWS * w->rank / w->size, r1 = ROWS * (w->rank + 1) / w->size;
    double rows[ROWS * LEN];
    for (int r = r0; r < r1; r++)
        for (int j = 0; j < LEN; j++) rows[(r - r0) * LEN + j] = round + r * 10.0 + j * 0.5;
    CU_ASSERT_EQUAL(ckpt_put_rows(h, "state", CKPT_F64, ROWS, LEN, r0, r1 - r0, rows), FH_OK);
    CU_ASSERT_EQUAL(ckpt_commit(h, keep), FH_OK);
}

static void test_roundtrip_any_slabs(void)
{
    comm_t *w = &g_test_world;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/ck1", g_test_tmpdir);
    write_round(dir, 3, 0xabcULL, 3);
    ckpt *h = NULL;
    int64_t round = -1, v = 0;
    CU_ASSERT_EQUAL_FATAL(ckpt_open(dir, 0xabcULL, w, &h, &round), FH_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_EQUAL(round, 3);
    CU_ASSERT_EQUAL(ckpt_get_i64(h, "answer", &v), FH_OK);
    CU_ASSERT_EQUAL(v, 45);
    float a[N];
    CU_ASSERT_EQUAL(ckpt_get_array(h, "params", CKPT_F32, a, N), FH_OK);
    CU_ASSERT_DOUBLE_EQUAL(a[N - 1], 300 + N - 1, 0);
    double row[LEN];
    for (int r = 0; r < ROWS; r++) { /* every rank reads every row, whoever wrote it */
        CU_ASSERT_EQUAL(ckpt_get_rows(h, "state", CKPT_F64, LEN, r, 1, row), FH_OK);
        CU_ASSERT_DOUBLE_EQUAL(row[LEN - 1], 3 + r * 10.0 + (LEN - 1) * 0.5, 0);
    }
    CU_ASSERT(ckpt_has(h, "state"));
    CU_ASSERT(!ckpt_has(h, "nothing"));
    CU_ASSERT_EQUAL(ckpt_get_array(h, "params", CKPT_F32, a, N - 1), FH_EINPUT); /* wrong size */
    ckpt_close(h);
}

static void test_damaged_newest_falls_back(void)
{
    comm_t *w = &g_test_world;
    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/ck2", g_test_tmpdir);
    write_round(dir, 1, 7, 5);
    write_round(dir, 2, 7, 5);
    snprintf(path, sizeof path, "%s/ckpt_00000002.h5", dir);
    if (w->rank == 0) { /* flip one byte near the end of the file (dataset bytes or metadata) */
        FILE *f = fopen(path, "r+b");
        CU_ASSERT_PTR_NOT_NULL_FATAL(f);
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        /* find a byte of the 'params' payload: float 200.0 = 0x43480000 */
        unsigned char *buf = malloc((size_t)size);
        fseek(f, 0, SEEK_SET);
        CU_ASSERT_EQUAL(fread(buf, 1, (size_t)size, f), (size_t)size);
        long at = -1;
        for (long i = 0; i + 4 <= size; i++)
            if (buf[i] == 0x00 && buf[i + 1] == 0x00 && buf[i + 2] == 0x48 && buf[i + 3] == 0x43) { at = i + 2; break; }
        CU_ASSERT_FATAL(at >= 0);
        fseek(f, at, SEEK_SET);
        fputc(0x49, f);
        fclose(f);
        free(buf);
    }
    comm_barrier(w);
    ckpt *h = NULL;
    int64_t round = -1;
    CU_ASSERT_EQUAL_FATAL(ckpt_open(dir, 7, w, &h, &round), FH_OK);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    CU_ASSERT_EQUAL(round, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(ckpt_warning(h), "ckpt_00000002.h5: checksum mismatch"));
    ckpt_close(h);
    /* a truncated newest file is skipped the same way */
    if (w->rank == 0) CU_ASSERT_EQUAL(truncate(path, 3000), 0);
    comm_barrier(w);
    CU_ASSERT_EQUAL_FATAL(ckpt_open(dir, 7, w, &h, &round), FH_OK);
    CU_ASSERT_EQUAL(round, 1);
    ckpt_close(h);
}

static void test_other_config_refused_and_pruning(void)
{
    comm_t *w = &g_test_world;
    char dir[600], latest[700];
    snprintf(dir, sizeof dir, "%s/ck3", g_test_tmpdir);
    for (int r = 1; r <= 4; r++) write_round(dir, r, 9, 2);
    ckpt *h = NULL;
    int64_t round;
    CU_ASSERT_EQUAL(ckpt_open(dir, 10, w, &h, &round), FH_EINPUT);
    CU_ASSERT_PTR_NULL(h);
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), "other training settings"));
    char p1[700];
    snprintf(p1, sizeof p1, "%s/ckpt_00000002.h5", dir);
    CU_ASSERT(access(p1, F_OK) != 0); /* keep = 2: rounds 3 and 4 remain */
    CU_ASSERT_EQUAL(ckpt_latest_path(dir, latest, sizeof latest), FH_OK);
    CU_ASSERT_PTR_NOT_NULL(strstr(latest, "ckpt_00000004.h5"));
    /* an empty directory: no checkpoint, no error */
    snprintf(dir, sizeof dir, "%s/ck_empty", g_test_tmpdir);
    CU_ASSERT_EQUAL(ckpt_open(dir, 9, w, &h, &round), FH_OK);
    CU_ASSERT_PTR_NULL(h);
    CU_ASSERT_EQUAL(round, 0);
}

void tests_register_ckpt(void)
{
    CU_pSuite s = CU_add_suite("ckpt", NULL, NULL);
    tests_add(s, "roundtrip_any_slabs", test_roundtrip_any_slabs);
    tests_add(s, "damaged_newest_falls_back", test_damaged_newest_falls_back);
    tests_add(s, "other_config_refused_and_pruning", test_other_config_refused_and_pruning);
}
