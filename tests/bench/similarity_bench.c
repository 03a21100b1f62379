/* The similarity step at scale: n clients x p parameters (default 1,000 x 200,000), each rank
 * generating only its own rows (rows of dist_rows_first), Gram matrix on ScaLAPACK (PDSYRK on
 * a block-cyclic grid), then cosine similarities and k-means++ from it. Prints wall time and
 * every rank's peak resident memory. Not part of CI (tests/bench/run_similarity.sh). */
#define _DEFAULT_SOURCE
#include "fedhpc/model.h"
#include "fedhpc/comm.h"
#include "fedhpc/cluster.h"
#include "fedhpc/fl.h"
#include "fedhpc/rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

int main(int argc, char **argv)
{
    model_blas_setup(argv); /* OpenBLAS kernels for this CPU (may re-execute) */
    comm_t w;
    if (comm_init(&argc, &argv, &w) != FH_OK) return 1;
    const int64_t n = argc > 1 ? atoll(argv[1]) : 1000, p = argc > 2 ? atoll(argv[2]) : 200000;
    const int64_t r0 = dist_rows_first(n, w.size, w.rank), r1 = dist_rows_first(n, w.size, w.rank + 1);
    float *rows = malloc((size_t)(r1 > r0 ? r1 - r0 : 1) * (size_t)p * sizeof *rows);
    double *G = malloc((size_t)n * (size_t)n * sizeof *G), *Cs = malloc((size_t)n * (size_t)n * sizeof *Cs);
    int32_t seeds[8];
    if (!rows || !G || !Cs) return 1;
    for (int64_t i = r0; i < r1; i++) { /* 4 latent directions + noise */
        rng_t r = rng_stream(1, (uint64_t)i, 0, RNG_INIT);
        for (int64_t j = 0; j < p; j++)
            rows[(i - r0) * p + j] = (float)(((j + i % 4) % 4 == 0 ? 1.0 : 0.0) + 0.5 * rng_normal(&r));
    }
    comm_barrier(&w);
    double t0 = fh_wtime();
    dist_info info;
    fh_status st = dist_gram(&w, n, p, rows, 64, G, &info);
    double t1 = fh_wtime();
    if (st == FH_OK) {
        cl_gram_derive(G, (int32_t)n, Cs, NULL);
        st = cl_kmeanspp(Cs, (int32_t)n, 4, 1, 0, seeds);
    }
    double t2 = fh_wtime();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double mine = (double)ru.ru_maxrss / 1024.0, all[64] = {0};
    comm_gatherv_f64(&w, &mine, 1, all, 0);
    if (w.rank == 0) {
        printf("similarity: %lld clients x %lld parameters on %d ranks (grid %d x %d, blocks %d): status %s\n",
               (long long)n, (long long)p, w.size, info.nprow, info.npcol, info.nb, fh_status_name(st));
        printf("  full matrix %.1f MB (float32); Gram (PDGEMR2D + PDSYRK + replication) %.2f s; k-means++ %.3f s\n",
               (double)n * (double)p * 4 / 1048576.0, t1 - t0, t2 - t1);
        for (int r = 0; r < w.size && r < 64; r++) printf("  rank %d peak RSS %.1f MB\n", r, all[r]);
        printf("  G[0][0] %.6g G[0][1] %.6g G[0][4] %.6g\n", G[0], G[1], G[4]);
    }
    free(rows); free(G); free(Cs);
    comm_finalize();
    return st == FH_OK ? 0 : 1;
}
