/* OpenBLAS kernel selection: see model_blas_setup in include/fedhpc/model.h.
 *
 * Debian's OpenBLAS (0.3.21, DYNAMIC_ARCH) picks its kernels from the CPU model number when it
 * is loaded. A CPU newer than the library (e.g. family 6 model 207, an Emerald Rapids Xeon) is
 * not in its table and gets the generic "Prescott" SSE3 kernels: measured here, a 1960 x 64 x
 * 800 sgemm ran at 19 GFLOP/s with them and at 105-124 GFLOP/s with the AVX-512 kernels the
 * CPU supports. OPENBLAS_CORETYPE (documented for DYNAMIC_ARCH builds) overrides the choice,
 * but only at load time, so the process re-executes itself once with it set.
 */
#define _GNU_SOURCE
#include "fedhpc/model.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *model_blas_core(void)
{
    const char *s = openblas_get_corename();
    return s ? s : "unknown";
}

/* The newest OpenBLAS kernel set this CPU can run, by cpuid; NULL if none beats Prescott. */
static const char *blas_best_core(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return __builtin_cpu_supports("avx512bf16") ? "Cooperlake" : "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
    if (__builtin_cpu_supports("avx")) return "Sandybridge";
    return NULL;
}

void model_blas_setup(char **argv)
{
    /* the user's choice, a second pass, or FEDHPC_BLAS_SETUP=0: leave OpenBLAS as it is */
    const char *off = getenv("FEDHPC_BLAS_SETUP");
    if (getenv("OPENBLAS_CORETYPE") || (off && strcmp(off, "0") == 0)) return;
    /* valgrind's CPU has no AVX-512 and an exec would leave valgrind behind */
    const char *pre = getenv("LD_PRELOAD");
    if (pre && strstr(pre, "vgpreload")) return;
    if (strcmp(model_blas_core(), "Prescott") != 0) return; /* OpenBLAS knew the CPU */
    const char *best = blas_best_core();
    if (!best) return;
    if (setenv("OPENBLAS_CORETYPE", best, 1) != 0) return;
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE"); /* exec failed: carry on with the kernels we have */
}
