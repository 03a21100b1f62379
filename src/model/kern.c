/* Small-batch dense kernels: see kern.h.
 *
 * At B = 10 a forward product [10, 784] x [784, 200] is 3.1 MFLOP, and OpenBLAS packs the
 * whole of W (627 KB) before computing on it — once for the forward product and once more for
 * the weight gradient, which it then writes out for the update loop to read back. These
 * kernels keep a block of output rows x 32 columns in registers and stream W once:
 *   forward: acc[r][0..31] = b + sum_k A[r, k] W[k, 0..31]            (rows r < n, in zmm)
 *   sgd:     D[r][0..31] stays in zmm; for each k, g = sum_r A[r, k] D[r, 0..31] and
 *            W[k, 0..31] -= lr g  — the gradient never reaches memory.
 * Column tails are masked loads/stores (no reads or writes past N). Every sum runs in a fixed
 * order, so results are reproducible run to run and for any number of ranks.
 */
#define _GNU_SOURCE
#include "kern.h"

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

/* the CPU has AVX-512F (element-wise helpers use it whatever FEDHPC_KERNELS says) */
static int kern_cpu(void)
{
    static int cpu = -1;
    if (cpu < 0) {
        __builtin_cpu_init();
        cpu = __builtin_cpu_supports("avx512f") != 0;
    }
    return cpu;
}

int kern_available(void)
{
    static int avail = -1;
    if (avail < 0) {
        const char *e = getenv("FEDHPC_KERNELS");
        avail = kern_cpu() && !(e && strcmp(e, "blas") == 0);
    }
    return avail;
}

#define KERN_TARGET __attribute__((target("avx512f")))
#define KERN_INLINE static inline __attribute__((always_inline, target("avx512f")))

/* lanes [0, left) of a 16-float vector */
KERN_INLINE __mmask16 kern_mask(int32_t left)
{
    return left >= 16 ? (__mmask16)0xFFFF : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1u);
}

/* rb (a constant after inlining) rows of the forward product, all columns */
KERN_INLINE void fwd_rows(const int rb, int32_t K, int32_t N, const float *A, const float *W,
                          const float *b, float *Z, int relu)
{
    for (int32_t j = 0; j < N; j += 32) {
        const __mmask16 m0 = kern_mask(N - j), m1 = kern_mask(N - j - 16);
        const __m512 b0 = _mm512_maskz_loadu_ps(m0, b + j), b1 = _mm512_maskz_loadu_ps(m1, b + j + 16);
        __m512 acc0[KERN_MAX_ROWS], acc1[KERN_MAX_ROWS];
#pragma GCC unroll 12
        for (int r = 0; r < rb; r++) {
            acc0[r] = b0;
            acc1[r] = b1;
        }
        const float *wk = W + j;
        for (int32_t k = 0; k < K; k++, wk += N) {
            const __m512 w0 = _mm512_maskz_loadu_ps(m0, wk), w1 = _mm512_maskz_loadu_ps(m1, wk + 16);
#pragma GCC unroll 12
            for (int r = 0; r < rb; r++) {
                const __m512 a = _mm512_set1_ps(A[(size_t)r * K + k]);
                acc0[r] = _mm512_fmadd_ps(a, w0, acc0[r]);
                acc1[r] = _mm512_fmadd_ps(a, w1, acc1[r]);
            }
        }
        const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 12
        for (int r = 0; r < rb; r++) {
            __m512 z0 = acc0[r], z1 = acc1[r];
            if (relu) {
                z0 = _mm512_max_ps(z0, zero);
                z1 = _mm512_max_ps(z1, zero);
            }
            _mm512_mask_storeu_ps(Z + (size_t)r * N + j, m0, z0);
            _mm512_mask_storeu_ps(Z + (size_t)r * N + j + 16, m1, z1);
        }
    }
}

KERN_TARGET void kern_dense_fwd(int32_t n, int32_t K, int32_t N, const float *A, const float *W,
                                const float *b, float *Z, int relu)
{
    switch (n) { /* one specialisation per row count keeps the accumulators in registers */
#define FWD_CASE(R) case R: fwd_rows(R, K, N, A, W, b, Z, relu); break;
        FWD_CASE(1) FWD_CASE(2) FWD_CASE(3) FWD_CASE(4) FWD_CASE(5) FWD_CASE(6)
        FWD_CASE(7) FWD_CASE(8) FWD_CASE(9) FWD_CASE(10) FWD_CASE(11) FWD_CASE(12)
#undef FWD_CASE
    default: break;
    }
}

KERN_INLINE void sgd_rows(const int rb, int32_t K, int32_t N, const float *A, const float *D,
                          float lr, float *W, float *b)
{
    const __m512 nlr = _mm512_set1_ps(-lr);
    for (int32_t j = 0; j < N; j += 32) {
        const __mmask16 m0 = kern_mask(N - j), m1 = kern_mask(N - j - 16);
        __m512 d0[KERN_MAX_ROWS], d1[KERN_MAX_ROWS];
#pragma GCC unroll 12
        for (int r = 0; r < rb; r++) {
            d0[r] = _mm512_maskz_loadu_ps(m0, D + (size_t)r * N + j);
            d1[r] = _mm512_maskz_loadu_ps(m1, D + (size_t)r * N + j + 16);
        }
        /* bias: b -= lr * sum_r D[r] */
        __m512 s0 = d0[0], s1 = d1[0];
#pragma GCC unroll 12
        for (int r = 1; r < rb; r++) {
            s0 = _mm512_add_ps(s0, d0[r]);
            s1 = _mm512_add_ps(s1, d1[r]);
        }
        _mm512_mask_storeu_ps(b + j, m0, _mm512_fmadd_ps(nlr, s0, _mm512_maskz_loadu_ps(m0, b + j)));
        _mm512_mask_storeu_ps(b + j + 16, m1, _mm512_fmadd_ps(nlr, s1, _mm512_maskz_loadu_ps(m1, b + j + 16)));
        float *wk = W + j;
        for (int32_t k = 0; k < K; k++, wk += N) {
            __m512 a = _mm512_set1_ps(A[k]);
            __m512 g0 = _mm512_mul_ps(a, d0[0]), g1 = _mm512_mul_ps(a, d1[0]);
#pragma GCC unroll 12
            for (int r = 1; r < rb; r++) {
                a = _mm512_set1_ps(A[(size_t)r * K + k]);
                g0 = _mm512_fmadd_ps(a, d0[r], g0);
                g1 = _mm512_fmadd_ps(a, d1[r], g1);
            }
            _mm512_mask_storeu_ps(wk, m0, _mm512_fmadd_ps(nlr, g0, _mm512_maskz_loadu_ps(m0, wk)));
            _mm512_mask_storeu_ps(wk + 16, m1, _mm512_fmadd_ps(nlr, g1, _mm512_maskz_loadu_ps(m1, wk + 16)));
        }
    }
}

KERN_TARGET void kern_dense_sgd(int32_t n, int32_t K, int32_t N, const float *A, const float *D,
                                float lr, float *W, float *b)
{
    switch (n) {
#define SGD_CASE(R) case R: sgd_rows(R, K, N, A, D, lr, W, b); break;
        SGD_CASE(1) SGD_CASE(2) SGD_CASE(3) SGD_CASE(4) SGD_CASE(5) SGD_CASE(6)
        SGD_CASE(7) SGD_CASE(8) SGD_CASE(9) SGD_CASE(10) SGD_CASE(11) SGD_CASE(12)
#undef SGD_CASE
    default: break;
    }
}

/* ---- element-wise: a data-dependent branch per element mispredicts about half the time */

static KERN_TARGET void relu_avx512(float *z, size_t n)
{
    const __m512 zero = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = kern_mask(n - i < 16 ? (int32_t)(n - i) : 16);
        _mm512_mask_storeu_ps(z + i, m, _mm512_max_ps(_mm512_maskz_loadu_ps(m, z + i), zero));
    }
}

static KERN_TARGET void relu_mask_avx512(float *d, const float *a, size_t n)
{
    const __m512 zero = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = kern_mask(n - i < 16 ? (int32_t)(n - i) : 16);
        const __mmask16 pos = _mm512_mask_cmp_ps_mask(m, _mm512_maskz_loadu_ps(m, a + i), zero, _CMP_GT_OQ);
        _mm512_mask_storeu_ps(d + i, m, _mm512_maskz_mov_ps(pos, _mm512_maskz_loadu_ps(m, d + i)));
    }
}

void kern_relu(float *z, size_t n)
{
    if (kern_cpu()) {
        relu_avx512(z, n);
        return;
    }
    for (size_t i = 0; i < n; i++) z[i] = z[i] > 0.0f ? z[i] : 0.0f;
}

void kern_relu_mask(float *d, const float *a, size_t n)
{
    if (kern_cpu()) {
        relu_mask_avx512(d, a, n);
        return;
    }
    for (size_t i = 0; i < n; i++) d[i] = a[i] > 0.0f ? d[i] : 0.0f;
}
