/* Shared helpers of the CUnit test registry (tests/unit/main.c). */
#ifndef FEDHPC_TESTS_H
#define FEDHPC_TESTS_H

#include <CUnit/CUnit.h>

#include "fedhpc/comm.h"

/* The world communicator of the test run (valid during tests). */
extern comm_t g_test_world;
/* A scratch directory private to this test run (same path on every rank). */
extern char g_test_tmpdir[512];
/* The repository root (tests read data/ from it). */
extern char g_test_root[512];

/* Add a test to the suite; aborts the run if CUnit cannot. */
void tests_add(CU_pSuite s, const char *name, CU_TestFunc fn);

/* Each module's test file defines one of these; main.c calls those linked in. */
void tests_register_common(void);
void tests_register_data(void);
void tests_register_model(void);
void tests_register_io(void);
void tests_register_config(void);
void tests_register_fl(void);
void tests_register_privacy(void);
void tests_register_ckpt(void);
void tests_register_secagg(void);
void tests_register_dp(void);
void tests_register_cnn(void);
void tests_register_async(void);
void tests_register_cluster(void);
void tests_register_optim(void);
void tests_register_compress(void);
void tests_register_robust(void);
void tests_register_he(void);
void tests_register_attack(void);
void tests_register_leakage(void);
void tests_register_psi(void);
void tests_register_embed(void); /* issue 15 */
void tests_register_attn(void);
void tests_register_vfl(void);
void tests_register_gnn(void);

#endif
