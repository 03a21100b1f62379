/* Internal to src/model: small-batch dense kernels (kern.c) for minibatches of at most
 * KERN_MAX_ROWS rows, where OpenBLAS spends its time packing. AVX-512 only; callers use
 * cblas_sgemm when kern_available() is 0 or n is larger. */
#ifndef FEDHPC_MODEL_KERN_H
#define FEDHPC_MODEL_KERN_H

#include <stddef.h>
#include <stdint.h>

#define KERN_MAX_ROWS 12

/* 1 if this CPU runs the kernels (AVX-512F) and FEDHPC_KERNELS is not "blas". */
int kern_available(void);

/* Z[n, N] = A[n, K] W[K, N] + b[N] (row-major, lda = K), then ReLU if relu. 1 <= n <= 12. */
void kern_dense_fwd(int32_t n, int32_t K, int32_t N, const float *A, const float *W,
                    const float *b, float *Z, int relu);

/* One SGD step of a dense layer: G = A[n, K]^T D[n, N] (summed over rows in row order),
 * W[K, N] -= lr * G, b[N] -= lr * colsum(D). 1 <= n <= 12. W and b are read once and
 * written once; G is never stored. */
void kern_dense_sgd(int32_t n, int32_t K, int32_t N, const float *A, const float *D, float lr,
                    float *W, float *b);

/* z[i] = max(z[i], 0) for i < n (any n; branch-free, AVX-512 when available). */
void kern_relu(float *z, size_t n);

/* d[i] = a[i] > 0 ? d[i] : 0 for i < n: the ReLU derivative applied to a backward delta. */
void kern_relu_mask(float *d, const float *a, size_t n);

#endif
