/* fedhpc_tests — the CUnit registry of every module's unit tests.
 *
 *   fedhpc_tests                 run everything
 *   fedhpc_tests SUITE           run one suite
 *   fedhpc_tests SUITE/TEST      run one test
 *   fedhpc_tests --list          list suites and tests
 *
 * Runs under mpirun too: every rank runs the tests, the failure counts are summed over ranks,
 * and the exit status is non-zero when any test failed on any rank. The last line is
 * "tests: N passed, N failed" (counts of rank 0's tests; failures summed over ranks).
 */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/model.h"
#include "tests.h"

#include <CUnit/Basic.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

comm_t g_test_world;
char g_test_tmpdir[512];
char g_test_root[512];

void tests_add(CU_pSuite s, const char *name, CU_TestFunc fn)
{
    if (!s || !CU_add_test(s, name, fn)) {
        fprintf(stderr, "cannot register test %s: %s\n", name, CU_get_error_msg());
        exit(1);
    }
}

#define WEAK __attribute__((weak))
WEAK void tests_register_common(void);
WEAK void tests_register_data(void);
WEAK void tests_register_model(void);
WEAK void tests_register_io(void);
WEAK void tests_register_config(void);
WEAK void tests_register_fl(void);
WEAK void tests_register_privacy(void);
WEAK void tests_register_ckpt(void);
WEAK void tests_register_secagg(void);
WEAK void tests_register_dp(void);
WEAK void tests_register_cnn(void);
WEAK void tests_register_async(void);
WEAK void tests_register_cluster(void);
WEAK void tests_register_optim(void);
WEAK void tests_register_compress(void);
WEAK void tests_register_robust(void);
WEAK void tests_register_he(void);
WEAK void tests_register_attack(void);
WEAK void tests_register_leakage(void);
WEAK void tests_register_embed(void);
WEAK void tests_register_credit(void); /* credit study */
WEAK void tests_register_attn(void);
WEAK void tests_register_vfl(void);
WEAK void tests_register_gnn(void);

static void register_all(void)
{
    void (*regs[])(void) = {tests_register_common, tests_register_data,   tests_register_model,
                            tests_register_io,     tests_register_config, tests_register_fl,
                            tests_register_privacy, tests_register_ckpt,
                            tests_register_secagg, tests_register_dp,
                            tests_register_cnn, tests_register_async,
                            tests_register_cluster, tests_register_optim,
                            tests_register_compress,
                            tests_register_robust,
                            tests_register_he,
                            tests_register_attack,
                            tests_register_leakage,
                            tests_register_psi,
                            tests_register_embed, tests_register_credit, tests_register_attn, tests_register_vfl,
                            tests_register_gnn};
    for (size_t i = 0; i < sizeof regs / sizeof regs[0]; i++)
        if (regs[i]) regs[i]();
}

int main(int argc, char **argv)
{
    model_blas_setup(argv); /* OpenBLAS kernels for this CPU (may re-execute) */
    if (comm_init(&argc, &argv, &g_test_world) != FH_OK) {
        fprintf(stderr, "fedhpc_tests: %s\n", fh_error_msg());
        return 1;
    }
    comm_t *w = &g_test_world;
    const char *root = getenv("FEDHPC_ROOT");
    snprintf(g_test_root, sizeof g_test_root, "%s", root ? root : ".");
    /* one scratch dir for all ranks: rank 0 creates it, the name is broadcast */
    if (w->rank == 0) {
        snprintf(g_test_tmpdir, sizeof g_test_tmpdir, "%s/fedhpc-test-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (!mkdtemp(g_test_tmpdir)) g_test_tmpdir[0] = 0;
    }
    comm_bcast(w, g_test_tmpdir, sizeof g_test_tmpdir, 0);
    if (!g_test_tmpdir[0]) {
        fprintf(stderr, "fedhpc_tests: cannot create a scratch directory\n");
        comm_finalize();
        return 1;
    }

    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    register_all();

    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        if (w->rank == 0)
            for (CU_pSuite s = CU_get_registry()->pSuite; s; s = s->pNext)
                for (CU_pTest t = s->pTest; t; t = t->pNext) printf("%s/%s\n", s->pName, t->pName);
        CU_cleanup_registry();
        comm_finalize();
        return 0;
    }

    CU_basic_set_mode(w->rank == 0 ? CU_BRM_VERBOSE : CU_BRM_SILENT);
    int bad_name = 0;
    if (argc > 1) {
        char name[256];
        snprintf(name, sizeof name, "%s", argv[1]);
        char *slash = strchr(name, '/');
        if (slash) *slash = 0;
        CU_pSuite s = CU_get_suite(name);
        if (!s) {
            bad_name = 1;
        } else if (slash) {
            CU_pTest t = CU_get_test(s, slash + 1);
            if (!t) bad_name = 1;
            else if (w->rank == 0) CU_basic_run_test(s, t);
            else CU_run_test(s, t);
        } else if (w->rank == 0) {
            CU_basic_run_suite(s);
        } else {
            CU_run_suite(s);
        }
        if (bad_name && w->rank == 0) fprintf(stderr, "fedhpc_tests: no test named '%s'\n", argv[1]);
    } else if (w->rank == 0) {
        CU_basic_run_tests();
    } else {
        CU_run_all_tests(); /* quiet on other ranks; failures are summed below */
    }

    int64_t counts[2] = {(int64_t)CU_get_number_of_tests_failed() + bad_name,
                         (int64_t)CU_get_number_of_tests_run()};
    int64_t failed_here = counts[0];
    comm_allreduce_sum_i64(w, counts, 1);
    if (failed_here && w->rank != 0) { /* rank 0's CUnit report shows only its own failures */
        fprintf(stderr, "fedhpc_tests: rank %d: %lld test(s) failed\n", w->rank,
                (long long)failed_here);
        for (CU_pFailureRecord f = CU_get_failure_list(); f; f = f->pNext)
            fprintf(stderr, "  rank %d: %s/%s: %s:%u: %s\n", w->rank, f->pSuite ? f->pSuite->pName : "?",
                    f->pTest ? f->pTest->pName : "?", f->strFileName ? f->strFileName : "?", f->uiLineNumber,
                    f->strCondition ? f->strCondition : "");
    }
    if (w->rank == 0) {
        int64_t run = counts[1];
        printf("\ntests: %lld passed, %lld failed\n", (long long)(run - failed_here > 0 ? run - failed_here : 0),
               (long long)counts[0]);
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_test_tmpdir);
        if (!getenv("FEDHPC_KEEP_TMP") && system(cmd) != 0)
            fprintf(stderr, "fedhpc_tests: could not remove %s\n", g_test_tmpdir);
    }
    CU_cleanup_registry();
    comm_finalize();
    return counts[0] ? 1 : 0;
}
