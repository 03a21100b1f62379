/* Distributed dense linear algebra for the similarity step of multi-center FL, on BLACS and
 * ScaLAPACK (communication-layer calls, so they live in src/comm):
 *   dist_gram:  G = A A^T of client vectors A (n x p) with PDSYRK on a block-cyclic 2-D grid;
 *   dist_syevd: eigen-decomposition of a small replicated symmetric matrix with PDSYEVD.
 * ScaLAPACK is column-major with 1-based indices; local arrays follow its layout. Results are
 * made the same on every rank by summing each rank's owned entries (zeros elsewhere): a sum of
 * one value and zeros is exact. */
#include "fedhpc/comm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* BLACS / ScaLAPACK have no C header in Debian's package */
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);
void Cblacs_gridinit(int *ctxt, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int ctxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int ctxt);
int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc, const int *nprocs);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb, const int *irsrc,
               const int *icsrc, const int *ictxt, const int *lld, int *info);
void pdgemr2d_(const int *m, const int *n, const double *a, const int *ia, const int *ja, const int *desca,
               double *b, const int *ib, const int *jb, const int *descb, const int *ictxt);
void pdsyrk_(const char *uplo, const char *trans, const int *n, const int *k, const double *alpha,
             const double *a, const int *ia, const int *ja, const int *desca, const double *beta, double *c,
             const int *ic, const int *jc, const int *descc);
void pdsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *ia, const int *ja,
              const int *desca, double *w, double *z, const int *iz, const int *jz, const int *descz,
              double *work, const int *lwork, int *iwork, const int *liwork, int *info);

int64_t dist_rows_first(int64_t n, int size, int rank)
{
    int64_t mb = (n + size - 1) / size;
    int64_t f = mb * rank;
    return f < n ? f : n;
}

/* A near-square grid nprow x npcol = size with nprow <= npcol. */
static void grid_shape(int size, int *nprow, int *npcol)
{
    int r = (int)floor(sqrt((double)size));
    while (r > 1 && size % r) r--;
    *nprow = r;
    *npcol = size / r;
}

typedef struct {
    int handle, ctxt, nprow, npcol, myrow, mycol;
} grid;

static void grid_open(const comm_t *c, int nprow, int npcol, grid *g)
{
    g->handle = Csys2blacs_handle(c->comm);
    g->ctxt = g->handle;
    Cblacs_gridinit(&g->ctxt, "R", nprow, npcol);
    Cblacs_gridinfo(g->ctxt, &g->nprow, &g->npcol, &g->myrow, &g->mycol);
}

static void grid_close(grid *g)
{
    if (g->myrow >= 0) Cblacs_gridexit(g->ctxt);
    Cfree_blacs_system_handle(g->handle);
}

/* Global index of local index l for block size nb over np processes at coordinate p. */
static int64_t l2g(int64_t l, int nb, int p, int np) { return ((l / nb) * np + p) * nb + l % nb; }

static fh_status too_big(int64_t v, const char *what)
{
    if (v > 2147483647LL) return fh_error_set(FH_EINPUT, "similarity step: %s = %lld exceeds ScaLAPACK's 32-bit indices", what, (long long)v);
    return FH_OK;
}

fh_status dist_gram(const comm_t *c, int64_t n64, int64_t p64, const float *rows, int nb, double *G,
                    dist_info *info)
{
    FH_TRY(too_big(n64, "clients"));
    FH_TRY(too_big(p64, "parameters"));
    const int n = (int)n64, p = (int)p64, zero = 0, one = 1;
    /* columns (parameters) go through in panels of pw, so that besides its float rows a rank
     * holds only two panels (n x pw doubles / ranks) and the n x n Gram matrix */
    const int pw = p < 8192 ? p : 8192;
    const int mb1 = (int)((n64 + c->size - 1) / c->size);
    const int64_t r0 = dist_rows_first(n64, c->size, c->rank), r1 = dist_rows_first(n64, c->size, c->rank + 1);
    const int locr1 = (int)(r1 - r0);
    fh_status st = FH_OK;
    /* 1: this rank's rows of a panel on a [size x 1] grid with row blocks of mb1 */
    grid g1, g2;
    grid_open(c, c->size, 1, &g1);
    int pr, pc;
    grid_shape(c->size, &pr, &pc);
    grid_open(c, pr, pc, &g2);
    int desc1[9], desc2[9], descc[9], infod = 0;
    int lld1 = locr1 > 0 ? locr1 : 1;
    descinit_(desc1, &n, &pw, &mb1, &pw, &zero, &zero, &g1.ctxt, &lld1, &infod);
    double *a1 = malloc((size_t)lld1 * (size_t)pw * sizeof *a1);
    /* 2: the panel block-cyclic in nb x nb blocks over the pr x pc grid */
    int locr2 = numroc_(&n, &nb, &g2.myrow, &zero, &g2.nprow), locc2 = numroc_(&pw, &nb, &g2.mycol, &zero, &g2.npcol);
    int lld2 = locr2 > 0 ? locr2 : 1;
    descinit_(desc2, &n, &pw, &nb, &nb, &zero, &zero, &g2.ctxt, &lld2, &infod);
    int locrc = locr2, loccc = numroc_(&n, &nb, &g2.mycol, &zero, &g2.npcol);
    descinit_(descc, &n, &n, &nb, &nb, &zero, &zero, &g2.ctxt, &lld2, &infod);
    double *a2 = malloc((size_t)lld2 * (size_t)(locc2 > 0 ? locc2 : 1) * sizeof *a2);
    double *cl = fh_calloc((size_t)lld2 * (size_t)(loccc > 0 ? loccc : 1), sizeof *cl);
    if (!a1 || !a2 || !cl) st = fh_error_set(FH_ENOMEM, "out of memory for the similarity step (%d x %d)", n, p);
    st = comm_agree(c, st);
    if (st == FH_OK) {
        for (int j0 = 0; j0 < p; j0 += pw) {
            const int wdt = p - j0 < pw ? p - j0 : pw;
            for (int j = 0; j < wdt; j++)
                for (int i = 0; i < locr1; i++) a1[i + (int64_t)j * lld1] = rows[(int64_t)i * p + j0 + j];
            pdgemr2d_(&n, &wdt, a1, &one, &one, desc1, a2, &one, &one, desc2, &g2.ctxt);
            const double alpha = 1.0, beta = j0 == 0 ? 0.0 : 1.0;
            pdsyrk_("L", "N", &n, &wdt, &alpha, a2, &one, &one, desc2, &beta, cl, &one, &one, descc);
        }
        memset(G, 0, (size_t)n * (size_t)n * sizeof *G);
        for (int jl = 0; jl < loccc; jl++) {
            int64_t jg = l2g(jl, nb, g2.mycol, g2.npcol);
            for (int il = 0; il < locrc; il++) {
                int64_t ig = l2g(il, nb, g2.myrow, g2.nprow);
                if (ig >= jg) G[ig * n + jg] = cl[il + (int64_t)jl * lld2];
            }
        }
        st = comm_allreduce_sum_f64(c, G, (int64_t)n * n);
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++) G[(int64_t)i * n + j] = G[(int64_t)j * n + i];
        if (info) {
            info->nprow = g2.nprow;
            info->npcol = g2.npcol;
            info->nb = nb;
            info->local_elems = (int64_t)locr2 * locc2;
        }
    }
    free(a1);
    free(a2);
    free(cl);
    grid_close(&g2);
    grid_close(&g1);
    return st;
}

fh_status dist_syevd(const comm_t *c, int64_t n64, const double *S, int nb, double *w, double *Z)
{
    FH_TRY(too_big(n64, "clients"));
    const int n = (int)n64, zero = 0, one = 1;
    grid g;
    int pr, pc;
    grid_shape(c->size, &pr, &pc);
    grid_open(c, pr, pc, &g);
    int locr = numroc_(&n, &nb, &g.myrow, &zero, &g.nprow), locc = numroc_(&n, &nb, &g.mycol, &zero, &g.npcol);
    int lld = locr > 0 ? locr : 1, desc[9], info = 0;
    descinit_(desc, &n, &n, &nb, &nb, &zero, &zero, &g.ctxt, &lld, &info);
    size_t loc = (size_t)lld * (size_t)(locc > 0 ? locc : 1);
    double *a = malloc(loc * sizeof *a), *z = malloc(loc * sizeof *z), *work = NULL, wq = 0;
    int *iwork = NULL, iwq = 0, lwork = -1, liwork = -1;
    fh_status st = a && z ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory for the eigen-decomposition");
    if (st == FH_OK) {
        for (int jl = 0; jl < locc; jl++)
            for (int il = 0; il < locr; il++)
                a[il + (int64_t)jl * lld] = S[l2g(il, nb, g.myrow, g.nprow) * n + l2g(jl, nb, g.mycol, g.npcol)];
        pdsyevd_("V", "L", &n, a, &one, &one, desc, w, z, &one, &one, desc, &wq, &lwork, &iwq, &liwork, &info);
        /* the workspace query can also be too small for PDLASRT: add its documented need
         * max(n, np * (nb + nq)) and the 1 + 6n + 2 np nq of PDSYEVD */
        lwork = (int)wq + 1 + 6 * n + 2 * lld * (locc > 0 ? locc : 1) + n + lld * (nb + (locc > 0 ? locc : 1)) + 4 * n * nb;
        /* the LIWORK query result can be too small (seen with Debian's 2.2.1): use the documented
         * minimum 7n + 8 npcol + 2 when larger */
        liwork = iwq > 7 * n + 8 * g.npcol + 2 ? iwq : 7 * n + 8 * g.npcol + 2;
        work = malloc((size_t)lwork * sizeof *work);
        iwork = malloc((size_t)liwork * sizeof *iwork);
        if (!work || !iwork) st = fh_error_set(FH_ENOMEM, "out of memory for PDSYEVD workspace");
    }
    st = comm_agree(c, st);
    if (st == FH_OK) {
        pdsyevd_("V", "L", &n, a, &one, &one, desc, w, z, &one, &one, desc, work, &lwork, iwork, &liwork, &info);
        if (info != 0) st = fh_error_set(FH_EINTERNAL, "PDSYEVD failed (info %d)", info);
        st = comm_agree(c, st);
    }
    if (st == FH_OK) {
        memset(Z, 0, (size_t)n * (size_t)n * sizeof *Z);
        for (int jl = 0; jl < locc; jl++)
            for (int il = 0; il < locr; il++)
                Z[l2g(il, nb, g.myrow, g.nprow) + l2g(jl, nb, g.mycol, g.npcol) * n] = z[il + (int64_t)jl * lld];
        st = comm_allreduce_sum_f64(c, Z, (int64_t)n * n);
        /* eigenvalues are replicated by PDSYEVD; take rank 0's so every rank agrees bit for bit */
        if (st == FH_OK) st = comm_bcast(c, w, (int64_t)n * (int64_t)sizeof *w, 0);
    }
    free(a);
    free(z);
    free(work);
    free(iwork);
    grid_close(&g);
    return st;
}
