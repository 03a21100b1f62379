/* Vertical logistic regression: PSI, masked partial logits, Paillier-encrypted residuals
 * (docs/vertical.md). Party p runs on rank p; all messages are point-to-point (src/comm). */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/he.h"
#include "fedhpc/io.h"
#include "fedhpc/psi.h"
#include "fedhpc/vfl.h"
#include "vfl_internal.h"

#include <gmp.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG_VFL 1600
#define U_SCALE 4294967296.0   /* partial logits: 2^-32 fixed point          */
#define R_SCALE 4294967296.0   /* residuals: 2^-32                           */
#define X_SCALE 16777216.0     /* features in the encrypted product: 2^-24   */

/* ---- start of a run ---------------------------------------------------------------------------------- */
fh_status vfl_run_begin(const comm_t *c, const vfl_opts *o, int32_t me, int64_t tag, int64_t n, double *w,
                        int64_t nw, int64_t *start, FILE **mf)
{
    fh_status st = FH_OK;
    *start = 0;
    if (o->resume && me >= 0) {
        char path[2100];
        snprintf(path, sizeof path, "%s/party%d.ckpt.h5", o->out_dir, me);
        st = vfl_ckpt_read(path, me, tag, n, start, w, nw);
    }
    FH_TRY(comm_agree(c, st));
    double b[2] = {me >= 0 ? (double)*start : -1e300, me >= 0 ? -(double)*start : -1e300};
    st = comm_allreduce_max_f64(c, b, 2);
    if (st == FH_OK && b[0] != -b[1]) st = fh_error_set(FH_EINPUT, "vertical --resume: the parties' checkpoints are at different steps");
    if (st == FH_OK) *start = (int64_t)b[0];
    if (st == FH_OK && *start > o->steps)
        st = fh_error_set(FH_EINPUT, "vertical --resume: checkpoint at step %lld, beyond --steps %d", (long long)*start, o->steps);
    if (st == FH_OK && me == 0) {
        char path[2100];
        snprintf(path, sizeof path, "%s/metrics.csv", o->out_dir);
        *mf = fopen(path, o->resume ? "a" : "w");
        if (!*mf) st = fh_error_set(FH_EIO, "%s: cannot write", path);
        else if (!o->resume) fprintf(*mf, "step,loss,test_auc\n");
    }
    return comm_agree(c, st);
}

/* ---- messages ------------------------------------------------------------------------------ */
fh_status vfl_send_blob(const comm_t *c, const void *buf, int64_t n, int dest)
{
    FH_TRY(comm_send_bytes(c, &n, sizeof n, dest, TAG_VFL));
    return n ? comm_send_bytes(c, buf, n, dest, TAG_VFL + 1) : FH_OK;
}

fh_status vfl_recv_blob(const comm_t *c, void **buf, int64_t *n, int src)
{
    *buf = NULL;
    FH_TRY(comm_recv_bytes(c, n, sizeof *n, src, TAG_VFL));
    if (*n < 0 || *n > ((int64_t)1 << 40)) return fh_error_set(FH_EINPUT, "vertical: bad message length from rank %d", src);
    *buf = fh_calloc((size_t)*n, 1);
    FH_CHECK_ALLOC(*buf);
    return *n ? comm_recv_bytes(c, *buf, *n, src, TAG_VFL + 1) : FH_OK;
}

/* ---- PSI: a chain through the label party --------------------------------------------------- */
/* A (party 0) runs DH-PSI with party 1 on all its ids, then with party 2 on the ids it has left,
 * and so on. Party p learns S_p = (A's ids left before p) ∩ (its ids); A learns each S_p; then A
 * tells every p which of S_p are in the final intersection S (a bit per id, in sorted order). */
static fh_status psi_pair(const comm_t *c, int role, int peer, const vfl_party_data *pd, const size_t *rows, size_t n,
                          size_t **out, size_t *nout)
{
    uint8_t pk[PSI_PK_BYTES], sk[PSI_SK_BYTES], ppk[PSI_PK_BYTES], session[PSI_SESSION_BYTES];
    FH_TRY(psi_keypair(pk, sk));
    /* keys and the session id in the clear here: a deployment pre-distributes the signing keys */
    if (role == PSI_ROLE_A) {
        FH_TRY(psi_session_new(session));
        FH_TRY(comm_send_bytes(c, pk, sizeof pk, peer, TAG_VFL + 2));
        FH_TRY(comm_send_bytes(c, session, sizeof session, peer, TAG_VFL + 3));
        FH_TRY(comm_recv_bytes(c, ppk, sizeof ppk, peer, TAG_VFL + 2));
    } else {
        FH_TRY(comm_recv_bytes(c, ppk, sizeof ppk, peer, TAG_VFL + 2));
        FH_TRY(comm_recv_bytes(c, session, sizeof session, peer, TAG_VFL + 3));
        FH_TRY(comm_send_bytes(c, pk, sizeof pk, peer, TAG_VFL + 2));
    }
    const char **ids = fh_calloc(n, sizeof *ids);
    FH_CHECK_ALLOC(ids);
    for (size_t i = 0; i < n; i++) ids[i] = pd->ids[rows[i]];
    psi_party *ps = NULL;
    fh_status st = psi_party_new(&ps, role, session, sk, ppk, ids, n);
    free(ids);
    sodium_memzero(sk, sizeof sk);
    if (st != FH_OK) return st;
    uint8_t *m1 = NULL, *r1 = NULL, *mine_rb = NULL;
    void *peer_m1 = NULL, *peer_rb = NULL;
    size_t l1 = 0, lr = 0;
    int64_t lp = 0, lq = 0;
    st = psi_msg_blinded(ps, &m1, &l1);
    if (role == PSI_ROLE_A) {
        if (st == FH_OK) st = vfl_send_blob(c, m1, (int64_t)l1, peer);
        if (st == FH_OK) st = vfl_recv_blob(c, &peer_m1, &lp, peer);
        if (st == FH_OK) st = vfl_recv_blob(c, &peer_rb, &lq, peer);
        if (st == FH_OK) st = psi_recv_blinded(ps, peer_m1, (size_t)lp, &r1, &lr);
        if (st == FH_OK) st = vfl_send_blob(c, r1, (int64_t)lr, peer);
    } else {
        if (st == FH_OK) st = vfl_recv_blob(c, &peer_m1, &lp, peer);
        if (st == FH_OK) st = vfl_send_blob(c, m1, (int64_t)l1, peer);
        if (st == FH_OK) st = psi_recv_blinded(ps, peer_m1, (size_t)lp, &r1, &lr);
        if (st == FH_OK) st = vfl_send_blob(c, r1, (int64_t)lr, peer);
        if (st == FH_OK) st = vfl_recv_blob(c, &peer_rb, &lq, peer);
    }
    if (st == FH_OK) st = psi_recv_reblinded(ps, peer_rb, (size_t)lq);
    const size_t *idx = NULL;
    size_t ni = 0;
    if (st == FH_OK) st = psi_result(ps, &idx, &ni);
    if (st == FH_OK) {
        *out = fh_calloc(ni, sizeof **out);
        if (!*out) st = fh_error_set(FH_ENOMEM, "out of memory");
        for (size_t i = 0; st == FH_OK && i < ni; i++) (*out)[i] = rows[idx[i]];
        *nout = ni;
    }
    free(m1);
    free(r1);
    free(mine_rb);
    free(peer_m1);
    free(peer_rb);
    psi_party_free(ps);
    return st;
}

fh_status vfl_psi(const comm_t *c, int32_t K, const vfl_party_data *pd, int64_t **common, int64_t *ncommon)
{
    const int me = c->rank;
    *common = NULL;
    *ncommon = 0;
    size_t *cur = fh_calloc((size_t)pd->rows, sizeof *cur), ncur = (size_t)pd->rows;
    FH_CHECK_ALLOC(cur);
    for (size_t i = 0; i < ncur; i++) cur[i] = i;
    fh_status st = FH_OK;
    if (me == 0) {
        size_t **snap = fh_calloc((size_t)K, sizeof *snap), *nsnap = fh_calloc((size_t)K, sizeof *nsnap);
        if (!snap || !nsnap) st = fh_error_set(FH_ENOMEM, "out of memory");
        for (int p = 1; st == FH_OK && p < K; p++) {
            size_t *nx = NULL, nn = 0;
            st = psi_pair(c, PSI_ROLE_A, p, pd, cur, ncur, &nx, &nn);
            if (st == FH_OK) {
                free(cur);
                cur = nx;
                ncur = nn;
                snap[p] = fh_calloc(nn, sizeof *snap[p]);
                if (!snap[p]) st = fh_error_set(FH_ENOMEM, "out of memory");
                else memcpy(snap[p], nx, nn * sizeof *nx);
                nsnap[p] = nn;
            }
        }
        /* membership of the final set, sent to each party over its S_p in id order */
        uint8_t *in_final = fh_calloc((size_t)pd->rows, 1);
        if (st == FH_OK && !in_final) st = fh_error_set(FH_ENOMEM, "out of memory");
        for (size_t i = 0; st == FH_OK && i < ncur; i++) in_final[cur[i]] = 1;
        for (int p = 1; st == FH_OK && p < K; p++) {
            int64_t *srt = fh_calloc(nsnap[p], sizeof *srt);
            uint8_t *mask = fh_calloc(nsnap[p], 1);
            if (!srt || !mask) st = fh_error_set(FH_ENOMEM, "out of memory");
            if (st == FH_OK) st = vfl_sort_rows(pd, snap[p], nsnap[p], srt);
            for (size_t i = 0; st == FH_OK && i < nsnap[p]; i++) mask[i] = in_final[srt[i]];
            if (st == FH_OK) st = vfl_send_blob(c, mask, (int64_t)nsnap[p], p);
            free(srt);
            free(mask);
        }
        free(in_final);
        for (int p = 0; snap && p < K; p++) free(snap[p]);
        free(snap);
        free(nsnap);
        if (st == FH_OK) {
            *common = fh_calloc(ncur, sizeof **common);
            if (!*common) st = fh_error_set(FH_ENOMEM, "out of memory");
            else st = vfl_sort_rows(pd, cur, ncur, *common);
            *ncommon = (int64_t)ncur;
        }
    } else if (me < K) {
        size_t *sp = NULL, nsp = 0;
        st = psi_pair(c, PSI_ROLE_B, 0, pd, cur, ncur, &sp, &nsp);
        void *mask = NULL;
        int64_t nm = 0;
        if (st == FH_OK) st = vfl_recv_blob(c, &mask, &nm, 0);
        if (st == FH_OK && nm != (int64_t)nsp)
            st = fh_error_set(FH_EINTERNAL, "vertical: PSI mask of %lld bits for %zu ids", (long long)nm, nsp);
        int64_t *srt = fh_calloc(nsp, sizeof *srt);
        if (st == FH_OK && !srt) st = fh_error_set(FH_ENOMEM, "out of memory");
        if (st == FH_OK) st = vfl_sort_rows(pd, sp, nsp, srt);
        if (st == FH_OK) {
            int64_t m = 0;
            for (size_t i = 0; i < nsp; i++)
                if (((uint8_t *)mask)[i]) srt[m++] = srt[i];
            *common = srt;
            *ncommon = m;
            srt = NULL;
        }
        free(srt);
        free(mask);
        free(sp);
    }
    free(cur);
    return st;
}

/* ---- Paillier helpers ----------------------------------------------------------------------- */
static void mpz_to_fixed(uint8_t *out, size_t len, const mpz_t v)
{
    size_t cnt = (mpz_sizeinbase(v, 2) + 7) / 8;
    memset(out, 0, len);
    if (mpz_sgn(v) == 0) return;
    mpz_export(out + (len - cnt), NULL, 1, 1, 1, 0, v);
}

/* signed integer -> residue mod n */
static void set_signed(mpz_t m, int64_t v, const mpz_t n)
{
    if (v >= 0) {
        mpz_set_ui(m, (unsigned long)v);
    } else {
        mpz_set_ui(m, (unsigned long)(-(v + 1)) + 1ul);
        mpz_sub(m, n, m);
    }
}

/* uniform r in [0, n) from libsodium (128 extra bits, then reduced) */
static void random_below(mpz_t r, const mpz_t n)
{
    size_t len = (mpz_sizeinbase(n, 2) + 7) / 8 + 16;
    uint8_t *b = malloc(len);
    randombytes_buf(b, len);
    mpz_import(r, len, 1, 1, 1, 0, b);
    mpz_mod(r, r, n);
    sodium_memzero(b, len);
    free(b);
}

typedef struct {
    int64_t v, i;
} xv_t;
static int cmp_xv(const void *a, const void *b)
{
    const xv_t *x = a, *y = b;
    return x->v < y->v ? -1 : x->v > y->v ? 1 : (x->i > y->i) - (x->i < y->i);
}

/* ---- checkpoints and models ------------------------------------------------------------------ */
fh_status vfl_ckpt_write(const char *path, int32_t party, int64_t tag, int64_t step, int64_t ncommon, const double *w,
                            int64_t nw)
{
    char tmp[2200];
    snprintf(tmp, sizeof tmp, "%.2100s.tmp", path);
    io_rec *h = NULL;
    FH_TRY(io_rec_create(tmp, "fedhpc-vertical-ckpt", &h));
    fh_status st = io_rec_put_i64(h, "party", party);
    if (st == FH_OK) st = io_rec_put_i64(h, "tag", tag);
    if (st == FH_OK) st = io_rec_put_i64(h, "step", step);
    if (st == FH_OK) st = io_rec_put_i64(h, "common", ncommon);
    if (st == FH_OK) st = io_rec_put(h, "w", IO_F64, nw, 0, w);
    io_rec_close(h);
    if (st == FH_OK && rename(tmp, path) != 0) st = fh_error_set(FH_EIO, "%s: cannot rename the checkpoint", path);
    return st;
}

fh_status vfl_ckpt_read(const char *path, int32_t party, int64_t tag, int64_t ncommon, int64_t *step, double *w,
                           int64_t nw)
{
    io_rec *h = NULL;
    FH_TRY(io_rec_open(path, "fedhpc-vertical-ckpt", &h));
    int64_t p = -1, t = -1, nc = -1;
    fh_status st = io_rec_get_i64(h, "party", &p);
    if (st == FH_OK) st = io_rec_get_i64(h, "tag", &t);
    if (st == FH_OK) st = io_rec_get_i64(h, "step", step);
    if (st == FH_OK) st = io_rec_get_i64(h, "common", &nc);
    if (st == FH_OK && (p != party || t != tag || nc != ncommon))
        st = fh_error_set(FH_EINPUT, "%s: a checkpoint of another run (party %lld, %lld common customers; expected "
                          "party %d, %lld)", path, (long long)p, (long long)nc, party, (long long)ncommon);
    if (st == FH_OK) st = io_rec_get(h, "w", IO_F64, w, nw);
    io_rec_close(h);
    return st;
}

fh_status vfl_write_vec(const char *path, const char *format, const double *w, int64_t n)
{
    io_rec *h = NULL;
    FH_TRY(io_rec_create(path, format, &h));
    fh_status st = io_rec_put(h, "w", IO_F64, n, 0, w);
    io_rec_close(h);
    return st;
}

/* ---- pairwise masks among the non-label parties ---------------------------------------------- */
fh_status vfl_mask_keys(const comm_t *c, int K, uint8_t (*mkey)[crypto_kx_SESSIONKEYBYTES])
{
    const int me = c->rank < K ? c->rank : -1;
    fh_status st = FH_OK;
    if (me > 0 && K > 2) {
        uint8_t kpk[crypto_kx_PUBLICKEYBYTES], ksk[crypto_kx_SECRETKEYBYTES], ppk[crypto_kx_PUBLICKEYBYTES];
        crypto_kx_keypair(kpk, ksk);
        for (int p = 1; st == FH_OK && p < K; p++) {
            if (p == me) continue;
            if (me < p) {
                st = comm_send_bytes(c, kpk, sizeof kpk, p, TAG_VFL + 4);
                if (st == FH_OK) st = comm_recv_bytes(c, ppk, sizeof ppk, p, TAG_VFL + 4);
                uint8_t rx[crypto_kx_SESSIONKEYBYTES];
                if (st == FH_OK && crypto_kx_client_session_keys(rx, mkey[p], kpk, ksk, ppk) != 0)
                    st = fh_error_set(FH_EINPUT, "vertical: bad key-exchange key from party %d", p);
            } else {
                st = comm_recv_bytes(c, ppk, sizeof ppk, p, TAG_VFL + 4);
                if (st == FH_OK) st = comm_send_bytes(c, kpk, sizeof kpk, p, TAG_VFL + 4);
                uint8_t tx[crypto_kx_SESSIONKEYBYTES];
                if (st == FH_OK && crypto_kx_server_session_keys(mkey[p], tx, kpk, ksk, ppk) != 0)
                    st = fh_error_set(FH_EINPUT, "vertical: bad key-exchange key from party %d", p);
            }
        }
        sodium_memzero(ksk, sizeof ksk);
    }
    return st;
}

void vfl_mask_apply(int K, int me, uint8_t (*mkey)[crypto_kx_SESSIONKEYBYTES], int64_t t, uint64_t *q, uint64_t *scratch,
                    int64_t n)
{
    for (int p = 1; p < K; p++) { /* pairwise masks cancel in the sum at A */
        if (p == me) continue;
        uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
        for (int b = 0; b < 8; b++) nonce[b] = (uint8_t)((uint64_t)t >> (8 * b));
        crypto_stream_chacha20((uint8_t *)scratch, (unsigned long long)n * 8, nonce, mkey[p]);
        for (int64_t i = 0; i < n; i++) q[i] = me < p ? q[i] + scratch[i] : q[i] - scratch[i];
    }
}

/* ---- the run --------------------------------------------------------------------------------- */
typedef struct {
    int32_t K, me;
    vfl_party_data pd;
    int64_t n, *rows;      /* common customers, sorted by id: rows of pd             */
    uint8_t *test;         /* [n]                                                      */
    int64_t ntr, nte;
} vrun;

/* open the party's file and check that the K files belong together */
static fh_status open_party(const comm_t *c, const vfl_opts *o, vrun *v)
{
    fh_status st = FH_OK;
    if (c->size < o->parties)
        st = fh_error_set(FH_EINPUT, "vertical: %d parties need at least %d ranks (mpirun -np), got %d", o->parties,
                          o->parties, c->size);
    char path[2100];
    if (st == FH_OK && v->me >= 0) {
        io_data_party_path(o->data, v->me, path, sizeof path);
        st = vfl_party_read(path, &v->pd);
        if (st == FH_OK && (v->pd.party != v->me || v->pd.parties != o->parties))
            st = fh_error_set(FH_EINPUT, "%s: the file of party %d of %d (expected party %d of --parties %d)", path,
                              v->pd.party, v->pd.parties, v->me, o->parties);
        if (st == FH_OK) { /* PSI is defined on sets: refuse duplicate ids before any message */
            size_t *all = fh_calloc((size_t)v->pd.rows, sizeof *all);
            int64_t *srt = fh_calloc((size_t)v->pd.rows, sizeof *srt);
            if (!all || !srt) st = fh_error_set(FH_ENOMEM, "out of memory");
            for (int64_t i = 0; st == FH_OK && i < v->pd.rows; i++) all[i] = (size_t)i;
            if (st == FH_OK) st = vfl_sort_rows(&v->pd, all, (size_t)v->pd.rows, srt);
            for (int64_t i = 1; st == FH_OK && i < v->pd.rows; i++)
                if (!strcmp(v->pd.ids[srt[i]], v->pd.ids[srt[i - 1]]))
                    st = fh_error_set(FH_EINPUT, "%s: customer id '%s' at rows %lld and %lld (ids must be unique)", path,
                                      v->pd.ids[srt[i]], (long long)srt[i - 1], (long long)srt[i]);
            free(all);
            free(srt);
        }
        if (st == FH_OK && (v->me == 0) != (v->pd.has_label != 0))
            st = fh_error_set(FH_EINPUT, "%s: party %d %s the label (only party 0 holds it)", path, v->me,
                              v->pd.has_label ? "holds" : "lacks");
    }
    FH_TRY(comm_agree(c, st));
    /* every party's tag to rank 0: files of one prepare run carry the same tag */
    int64_t mine[2] = {v->me >= 0 ? v->pd.tag : 0, v->me};
    void *all = NULL;
    int64_t *counts = fh_calloc((size_t)c->size, sizeof *counts);
    FH_CHECK_ALLOC(counts);
    st = comm_gather_bytes(c, mine, v->me >= 0 ? (int64_t)sizeof mine : 0, &all, counts, 0);
    if (st == FH_OK && c->rank == 0) {
        const int64_t *t = all;
        for (int p = 1; p < o->parties && st == FH_OK; p++)
            if (t[2 * p] != t[0]) {
                io_data_party_path(o->data, p, path, sizeof path);
                st = fh_error_set(FH_EINPUT, "%s: party files whose ids do not match: this file comes from another prepare "
                                  "run (tag %lld) than party 0's (tag %lld)", path, (long long)t[2 * p], (long long)t[0]);
            }
    }
    free(all);
    free(counts);
    return comm_agree(c, st);
}

static fh_status align(const comm_t *c, const vfl_opts *o, vrun *v)
{
    fh_status st = FH_OK;
    if (v->me >= 0) st = vfl_psi(c, o->parties, &v->pd, &v->rows, &v->n);
    if (st == FH_OK && v->me == 0 && v->n == 0)
        st = fh_error_set(FH_EINPUT, "vertical: no customer id is common to the %d party files (party files whose ids do "
                          "not match)", o->parties);
    FH_TRY(comm_agree(c, st));
    /* the label party marks the held-out rows of the common order */
    if (v->me == 0) {
        v->test = fh_calloc((size_t)v->n, 1);
        FH_CHECK_ALLOC(v->test);
        for (int64_t i = 0; i < v->n; i++) v->test[i] = v->pd.test[v->rows[i]];
        for (int p = 1; p < o->parties && st == FH_OK; p++) st = vfl_send_blob(c, v->test, v->n, p);
    } else if (v->me > 0) {
        void *b = NULL;
        int64_t nb = 0;
        st = vfl_recv_blob(c, &b, &nb, 0);
        if (st == FH_OK && nb != v->n) st = fh_error_set(FH_EINTERNAL, "vertical: test mask of %lld rows, %lld common", (long long)nb, (long long)v->n);
        v->test = b;
    }
    for (int64_t i = 0; st == FH_OK && v->me >= 0 && i < v->n; i++) {
        if (v->test[i]) v->nte++;
        else v->ntr++;
    }
    if (st == FH_OK && v->me >= 0 && v->ntr == 0) st = fh_error_set(FH_EINPUT, "vertical: no training rows among the common customers");
    return comm_agree(c, st);
}

static void vrun_free(vrun *v)
{
    vfl_party_free(&v->pd);
    free(v->rows);
    free(v->test);
}

fh_status vfl_train(const comm_t *c, const vfl_opts *o, vfl_result *res)
{
    memset(res, 0, sizeof *res);
    if (sodium_init() < 0) return fh_error_set(FH_EINTERNAL, "vertical: libsodium failed to initialize");
    vrun v;
    memset(&v, 0, sizeof v);
    v.K = o->parties;
    v.me = c->rank < o->parties ? c->rank : -1;
    fh_status st = open_party(c, o, &v);
    if (st == FH_OK) st = align(c, o, &v);
    if (st == FH_OK && v.me >= 0) { /* what PSI told this party: the common ids, in common order */
        char path[2100];
        snprintf(path, sizeof path, "%s/party%d.common.txt", o->out_dir, v.me);
        st = vfl_write_ids(path, &v.pd, v.rows, v.n);
    }
    if (st == FH_OK) st = comm_agree(c, st);
    if (st == FH_OK && o->model == 2) {
        st = vfl_ftl_run(c, o, &v.pd, v.rows, v.n, v.test, res);
    } else if (st == FH_OK && o->model == 1) {
        st = vfl_splitnn_run(c, o, &v.pd, v.rows, v.n, v.test, res);
    } else if (st == FH_OK) {
        st = vfl_lr_run(c, o, &v.pd, v.rows, v.n, v.test, res);
    }
    res->n_common = v.n;
    res->n_train = v.ntr;
    res->n_test = v.nte;
    vrun_free(&v);
    return st;
}

/* ---- vertical logistic regression ------------------------------------------------------------ */
fh_status vfl_lr_run(const comm_t *c, const vfl_opts *o, const vfl_party_data *pd, const int64_t *rows, int64_t n,
                     const uint8_t *test, vfl_result *res)
{
    const int K = o->parties, me = c->rank < K ? c->rank : -1;
    fh_status st = FH_OK;
    const int32_t d = me >= 0 ? pd->d : 0;
    const int64_t nw = d + (me == 0); /* A holds the intercept */
    double *w = fh_calloc((size_t)(nw ? nw : 1), sizeof *w);
    double *u = fh_calloc((size_t)(n ? n : 1), sizeof *u);
    double *z = fh_calloc((size_t)(n ? n : 1), sizeof *z);
    int32_t *ytr = fh_calloc((size_t)(n ? n : 1), sizeof *ytr), *yte = fh_calloc((size_t)(n ? n : 1), sizeof *yte);
    double *ztr = fh_calloc((size_t)(n ? n : 1), sizeof *ztr), *zte = fh_calloc((size_t)(n ? n : 1), sizeof *zte);
    double *r = fh_calloc((size_t)(n ? n : 1), sizeof *r);
    uint64_t *q = fh_calloc((size_t)(n ? n : 1), sizeof *q), *mk = fh_calloc((size_t)(n ? n : 1), sizeof *mk);
    double *g = fh_calloc((size_t)(nw ? nw : 1), sizeof *g);
    FH_CHECK_ALLOC(w); FH_CHECK_ALLOC(u); FH_CHECK_ALLOC(z); FH_CHECK_ALLOC(ytr); FH_CHECK_ALLOC(yte);
    FH_CHECK_ALLOC(ztr); FH_CHECK_ALLOC(zte); FH_CHECK_ALLOC(r); FH_CHECK_ALLOC(q); FH_CHECK_ALLOC(mk); FH_CHECK_ALLOC(g);
    int64_t ntr = 0, nte = 0;
    for (int64_t i = 0; i < n; i++) { if (test[i]) nte++; else ntr++; }

    /* Paillier key of the label party; its public modulus to the others */
    he_key key;
    he_pub pub;
    int have_key = 0, have_pub = 0;
    if (me == 0) {
        st = he_keygen(o->key_bits, &key);
        have_key = st == FH_OK;
        size_t nb = (size_t)o->key_bits / 8;
        uint8_t *buf = fh_calloc(nb, 1);
        if (st == FH_OK && !buf) st = fh_error_set(FH_ENOMEM, "out of memory");
        if (st == FH_OK) mpz_to_fixed(buf, nb, key.pub.n);
        for (int p = 1; st == FH_OK && p < K; p++) st = vfl_send_blob(c, buf, (int64_t)nb, p);
        free(buf);
    } else if (me > 0) {
        void *buf = NULL;
        int64_t nb = 0;
        st = vfl_recv_blob(c, &buf, &nb, 0);
        mpz_t nn;
        mpz_init(nn);
        if (st == FH_OK) mpz_import(nn, (size_t)nb, 1, 1, 1, 0, buf);
        if (st == FH_OK) st = he_pub_from_n(nn, &pub);
        have_pub = st == FH_OK;
        mpz_clear(nn);
        free(buf);
    }
    /* pairwise mask keys among the non-label parties (crypto_kx) */
    uint8_t (*mkey)[crypto_kx_SESSIONKEYBYTES] = fh_calloc((size_t)K, sizeof *mkey);
    FH_CHECK_ALLOC(mkey);
    if (st == FH_OK) st = vfl_mask_keys(c, K, mkey);
    st = comm_agree(c, st);

    /* resume */
    char path[2100];
    int64_t start = 0;
    FILE *mf = NULL;
    if (st == FH_OK) st = vfl_run_begin(c, o, me, pd->tag, n, w, nw, &start, &mf);
    const size_t ctb = me == 0 ? key.pub.ct_bytes : me > 0 ? pub.ct_bytes : 0;
    const he_pub *P = me == 0 ? &key.pub : &pub;
    uint8_t *ctbuf = NULL;
    double t0 = fh_wtime();
    int64_t done = 0;
    mpz_t m, ct, acc, tmp, grp;
    mpz_inits(m, ct, acc, tmp, grp, NULL);
    for (int64_t t = start; st == FH_OK && t <= o->steps; t++) {
        /* forward: partial logits */
        for (int64_t i = 0; me >= 0 && i < n; i++) {
            const double *x = pd->x + rows[i] * d;
            double s = 0;
            for (int32_t j = 0; j < d; j++) s += x[j] * w[j];
            u[i] = s;
        }
        if (me > 0) {
            for (int64_t i = 0; i < n; i++) q[i] = (uint64_t)llround(u[i] * U_SCALE);
            vfl_mask_apply(K, me, mkey, t, q, mk, n);
            st = comm_send_bytes(c, q, n * 8, 0, TAG_VFL + 5);
        } else if (me == 0) {
            uint64_t *sum = mk;
            memset(sum, 0, (size_t)n * 8);
            for (int p = 1; st == FH_OK && p < K; p++) {
                st = comm_recv_bytes(c, q, n * 8, p, TAG_VFL + 5);
                for (int64_t i = 0; st == FH_OK && i < n; i++) sum[i] += q[i];
            }
            int64_t a = 0, b = 0;
            for (int64_t i = 0; i < n; i++) {
                z[i] = u[i] + w[d] + (double)(int64_t)sum[i] / U_SCALE;
                const int32_t yi = pd->y[rows[i]];
                if (test[i]) { zte[b] = z[i]; yte[b++] = yi; }
                else { ztr[a] = z[i]; ytr[a++] = yi; }
            }
            res->loss = vfl_logloss(ztr, ytr, ntr, r);
            res->test_auc = nte ? vfl_auc(zte, yte, nte) : NAN;
            fprintf(mf, "%lld,%.17g,%.17g\n", (long long)t, res->loss, res->test_auc);
        }
        st = comm_agree(c, st);
        if (st != FH_OK || t == o->steps) break;
        /* backward: A's own gradient in the clear; the others' on encrypted residuals */
        if (me == 0) {
            for (int32_t j = 0; j <= d; j++) g[j] = 0;
            int64_t a = 0;
            for (int64_t i = 0; i < n; i++) {
                if (test[i]) continue;
                const double *x = pd->x + rows[i] * d;
                for (int32_t j = 0; j < d; j++) g[j] += x[j] * r[a];
                g[d] += r[a];
                a++;
            }
            ctbuf = ctbuf ? ctbuf : fh_calloc((size_t)ntr, ctb);
            if (!ctbuf) st = fh_error_set(FH_ENOMEM, "out of memory");
            for (int64_t i = 0; st == FH_OK && K > 1 && i < ntr; i++) {
                set_signed(m, llround(r[i] * R_SCALE), key.pub.n);
                st = he_encrypt_crt(&key, ct, m);
                he_ct_export(&key.pub, ctbuf + i * ctb, ct);
            }
            for (int p = 1; st == FH_OK && p < K; p++) st = comm_send_bytes(c, ctbuf, ntr * (int64_t)ctb, p, TAG_VFL + 6);
            /* decrypt each party's masked gradient and send the plaintext back */
            size_t pb = (size_t)o->key_bits / 8;
            for (int p = 1; st == FH_OK && p < K; p++) {
                void *gb = NULL;
                int64_t ng = 0;
                st = vfl_recv_blob(c, &gb, &ng, p);
                int64_t cnt = ng / (int64_t)ctb;
                uint8_t *plain = fh_calloc((size_t)(cnt ? cnt : 1), pb);
                if (st == FH_OK && !plain) st = fh_error_set(FH_ENOMEM, "out of memory");
                for (int64_t j = 0; st == FH_OK && j < cnt; j++) {
                    st = he_ct_import(&key.pub, ct, (uint8_t *)gb + j * ctb);
                    if (st == FH_OK) st = he_decrypt(&key, m, ct);
                    mpz_to_fixed(plain + j * pb, pb, m);
                }
                if (st == FH_OK) st = vfl_send_blob(c, plain, cnt * (int64_t)pb, p);
                free(plain);
                free(gb);
            }
            for (int32_t j = 0; j <= d; j++) w[j] -= o->lr * (g[j] / (double)ntr);
        } else if (me > 0) {
            ctbuf = ctbuf ? ctbuf : fh_calloc((size_t)ntr, ctb);
            mpz_t *c1 = fh_calloc((size_t)ntr, sizeof *c1), *c2 = fh_calloc((size_t)ntr, sizeof *c2);
            if (!ctbuf || !c1 || !c2) st = fh_error_set(FH_ENOMEM, "out of memory");
            if (st == FH_OK) st = comm_recv_bytes(c, ctbuf, ntr * (int64_t)ctb, 0, TAG_VFL + 6);
            for (int64_t i = 0; c1 && c2 && i < ntr; i++) {
                mpz_init(c1[i]);
                mpz_init(c2[i]);
                if (st == FH_OK) st = he_ct_import(P, c1[i], ctbuf + i * ctb);
                if (st == FH_OK && !mpz_invert(c2[i], c1[i], P->n2)) st = fh_error_set(FH_EINPUT, "vertical: a ciphertext without inverse");
            }
            uint8_t *gout = fh_calloc((size_t)d, ctb);
            xv_t *xs = fh_calloc((size_t)(ntr ? ntr : 1), sizeof *xs);
            if (!xs) st = fh_error_set(FH_ENOMEM, "out of memory");
            mpz_t *rm = fh_calloc((size_t)d, sizeof *rm);
            if (st == FH_OK && (!gout || !rm)) st = fh_error_set(FH_ENOMEM, "out of memory");
            for (int32_t j = 0; st == FH_OK && j < d; j++) {
                /* sum_i x_i r_i = sum_v v (sum_{x_i = v} r_i): rows grouped by their fixed-point
                 * value, so that a column with few distinct values (binary, one-hot, counts) costs
                 * one exponentiation per value; the plaintext is the same integer */
                int64_t a = 0;
                for (int64_t i = 0; i < n; i++) {
                    if (test[i]) continue;
                    xs[a].v = llround(pd->x[rows[i] * d + j] * X_SCALE);
                    xs[a].i = a;
                    a++;
                }
                qsort(xs, (size_t)ntr, sizeof *xs, cmp_xv);
                mpz_set_ui(acc, 1);
                for (int64_t k = 0; k < ntr;) {
                    const int64_t v = xs[k].v;
                    mpz_set_ui(grp, 1);
                    for (; k < ntr && xs[k].v == v; k++) he_add(P, grp, grp, v > 0 ? c1[xs[k].i] : c2[xs[k].i]);
                    if (v == 0) continue;
                    mpz_set_ui(tmp, (unsigned long)(v > 0 ? v : -v));
                    he_mul_scalar(P, m, grp, tmp);
                    he_add(P, acc, acc, m);
                }
                mpz_init(rm[j]);
                random_below(rm[j], P->n); /* one-time additive mask: A decrypts g + R only */
                st = he_encrypt(P, ct, rm[j]);
                he_add(P, acc, acc, ct);
                he_ct_export(P, gout + (size_t)j * ctb, acc);
            }
            if (st == FH_OK) st = vfl_send_blob(c, gout, (int64_t)d * (int64_t)ctb, 0);
            void *plain = NULL;
            int64_t np = 0;
            if (st == FH_OK) st = vfl_recv_blob(c, &plain, &np, 0);
            size_t pb = (size_t)o->key_bits / 8;
            if (st == FH_OK && np != (int64_t)d * (int64_t)pb) st = fh_error_set(FH_EINTERNAL, "vertical: decrypted gradient of %lld bytes", (long long)np);
            mpz_t half;
            mpz_init(half);
            mpz_fdiv_q_2exp(half, P->n, 1);
            for (int32_t j = 0; st == FH_OK && j < d; j++) {
                mpz_import(m, pb, 1, 1, 1, 0, (uint8_t *)plain + (size_t)j * pb);
                mpz_sub(m, m, rm[j]);
                mpz_mod(m, m, P->n);
                if (mpz_cmp(m, half) > 0) mpz_sub(m, m, P->n);
                double gj = mpz_get_d(m) / (R_SCALE * X_SCALE);
                w[j] -= o->lr * (gj / (double)ntr);
            }
            mpz_clear(half);
            for (int32_t j = 0; rm && j < d; j++) mpz_clear(rm[j]);
            for (int64_t i = 0; c1 && c2 && i < ntr; i++) {
                mpz_clear(c1[i]);
                mpz_clear(c2[i]);
            }
            free(rm); free(gout); free(xs); free(plain); free(c1); free(c2);
        }
        st = comm_agree(c, st);
        done++;
        if (st == FH_OK && o->ckpt_every && (t + 1) % o->ckpt_every == 0 && me >= 0) {
            snprintf(path, sizeof path, "%s/party%d.ckpt.h5", o->out_dir, me);
            st = vfl_ckpt_write(path, me, pd->tag, t + 1, n, w, nw);
        }
        st = comm_agree(c, st);
        if (o->stop_after && t + 1 == o->stop_after) break;
    }
    mpz_clears(m, ct, acc, tmp, grp, NULL);
    res->sec_per_step = done ? (fh_wtime() - t0) / (double)done : 0;
    if (mf) fclose(mf);
    if (st == FH_OK && me >= 0) {
        snprintf(path, sizeof path, "%s/party%d.model.h5", o->out_dir, me);
        st = vfl_write_vec(path, "fedhpc-vertical-model", w, nw);
    }
    st = comm_agree(c, st);
    if (have_key) he_key_free(&key);
    if (have_pub) he_pub_free(&pub);
    free(ctbuf); free(mkey); free(w); free(u); free(z); free(ytr); free(yte); free(ztr); free(zte); free(r); free(q);
    free(mk); free(g);
    return st;
}
