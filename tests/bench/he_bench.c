/* fedhpc_he_bench — the cost of Paillier aggregation (docs/he.md, jobs/he/cost.sh).
 *
 *   fedhpc_he_bench cost P CLIENTS KEY_BITS    one aggregation round of CLIENTS updates of P
 *                                              parameters (+ the 8 round counters), placed on
 *                                              the ranks as the FedAvg loop places them, three
 *                                              ways in the same run: the plain integer
 *                                              all-reduce, secure aggregation (sa_round.c) and
 *                                              [he] (he_round.c: encrypt, aggregate, decrypt);
 *                                              the three sums are checked equal word for word
 *   fedhpc_he_bench cost P CLIENTS KEY_BITS STATE
 *                                              the same, the encryption in pieces of HE_COST_CHUNK
 *                                              ciphertexts (default 64) with this rank's state
 *                                              (the bench's own key, the product so far, CPU
 *                                              seconds) saved after each piece to STATE.rankR
 *                                              (temp + rename); a rerun with the same arguments
 *                                              resumes from it, and the row adds the pieces' CPU
 *                                              seconds (pieces= counts the runs). For sizes that
 *                                              take longer than a session (1M at 3072 bits: ~7 h
 *                                              of one core). The files are deleted at the end.
 *                                              HE_COST_STOP=K (tests): exit 3 after K pieces.
 *   fedhpc_he_bench rates KEY_BITS SECONDS     one thread: raw mpz_powm (r^n mod n^2) a second,
 *                                              encryptions a second (plain, CRT), decryptions,
 *                                              ciphertext products, and the coordinates a
 *                                              second they give at the packing of 100 clients
 *
 * Prints CSV rows "name,key=value;...,value" on rank 0. Library calls only (no MPI here).
 */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/agg.h"
#include "fedhpc/he.h"
#include "fedhpc/rng.h"
#include "fedhpc/sample.h"
#include "fedhpc/secagg_round.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static comm_t W;

static int die(const char *what)
{
    if (W.rank == 0) fprintf(stderr, "fedhpc_he_bench: %s: %s\n", what, fh_error_msg());
    comm_finalize();
    exit(1);
}
#define CK(e) do { if ((e) != FH_OK) die(#e); } while (0)

enum { TAIL = 8 };

/* CPU seconds of this process (every thread) */
static double pcpu(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* client c's update (uniform in [-0.01, 0.01], like a small SGD step), fixed point with weight
 * 1/clients, plus counters, into buf[P + TAIL] */
static void fill(int64_t *buf, int64_t P, int32_t c, int32_t clients, float *tmp)
{
    rng_t r = rng_stream(7, (uint64_t)c, 1, 99);
    for (int64_t j = 0; j < P; j++) tmp[j] = (float)(0.02 * rng_uniform(&r) - 0.01);
    memset(buf, 0, (size_t)(P + TAIL) * sizeof *buf);
    fx_accumulate(buf, tmp, 1.0 / clients, P);
    for (int t = 0; t < TAIL; t++) buf[P + t] = c + t;
}

/* ---- resumable encryption (cost ... STATE) ---- */
#define STATE_MAGIC "FHHECOST"
enum { STATE_VERSION = 1 };
typedef struct {
    char magic[8];
    uint32_t version;
    int32_t n, bits, ranks, rank, pieces;
    int64_t P, j_done;
    double enc_cpu, enc_s;
} cost_state;

static void state_path(char *out, size_t cap, const char *prefix, int rank, int tmp)
{
    snprintf(out, cap, "%s.rank%d%s", prefix, rank, tmp ? ".tmp" : "");
}

/* this rank's state: the header, the key (he_key_export), then j_done serialized ciphertexts */
static int state_save(const char *prefix, const cost_state *h, const he_engine *e)
{
    char path[4096], tmp[4096];
    state_path(path, sizeof path, prefix, W.rank, 0);
    state_path(tmp, sizeof tmp, prefix, W.rank, 1);
    const size_t kb = he_key_bytes(e->key.pub.bits);
    uint8_t *key = malloc(kb);
    FILE *f = key ? fopen(tmp, "wb") : NULL;
    int ok = f != NULL;
    if (ok) {
        he_key_export(&e->key, key);
        ok = fwrite(h, sizeof *h, 1, f) == 1 && fwrite(key, 1, kb, f) == kb &&
             fwrite(e->ct + HE_ID_BYTES, e->pub.ct_bytes, (size_t)h->j_done, f) == (size_t)h->j_done;
        ok = fclose(f) == 0 && ok;
        ok = ok && rename(tmp, path) == 0;
    }
    free(key);
    return ok;
}

/* 1 = resumed (e's key and first j_done ciphertexts replaced), 0 = no file, -1 = unusable */
static int state_load(const char *prefix, cost_state *h, he_engine *e, const cost_state *want, char *why, size_t cap)
{
    char path[4096];
    state_path(path, sizeof path, prefix, W.rank, 0);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    const size_t kb = he_key_bytes(want->bits);
    uint8_t *key = malloc(kb);
    int rc = -1;
    if (!key || fread(h, sizeof *h, 1, f) != 1 || memcmp(h->magic, STATE_MAGIC, 8) != 0 || h->version != STATE_VERSION)
        snprintf(why, cap, "%s: not a version %d cost state", path, STATE_VERSION);
    else if (h->P != want->P || h->n != want->n || h->bits != want->bits || h->ranks != want->ranks || h->rank != W.rank)
        snprintf(why, cap, "%s: saved for P=%lld CLIENTS=%d KEY_BITS=%d on %d ranks (rank %d), not these arguments",
                 path, (long long)h->P, h->n, h->bits, h->ranks, h->rank);
    else if (h->j_done < 0 || h->j_done > e->ncts || fread(key, 1, kb, f) != kb ||
             fread(e->ct + HE_ID_BYTES, e->pub.ct_bytes, (size_t)h->j_done, f) != (size_t)h->j_done)
        snprintf(why, cap, "%s: truncated", path);
    else {
        he_key_free(&e->key);
        he_pub_free(&e->pub);
        if (he_key_import(h->bits, key, &e->key) != FH_OK) snprintf(why, cap, "%s: bad key: %s", path, fh_error_msg());
        else he_pub_copy(&e->pub, &e->key.pub), rc = 1;
    }
    free(key);
    fclose(f);
    return rc;
}

static int cmd_cost(int argc, char **argv)
{
    if (argc < 5) die("usage: cost P CLIENTS KEY_BITS [STATE]");
    const char *state = argc >= 6 ? argv[5] : NULL;
    const int64_t P = atoll(argv[2]), L = P + TAIL;
    const int32_t n = atoi(argv[3]);
    const int bits = atoi(argv[4]);
    int64_t *count = malloc((size_t)n * sizeof *count);
    int32_t *first = malloc((size_t)(W.size + 1) * sizeof *first), *ids = malloc((size_t)n * sizeof *ids);
    for (int32_t i = 0; i < n; i++) count[i] = 100, ids[i] = i;
    fl_assign_ranks(count, n, W.size, first);
    const int32_t c0 = first[W.rank], nloc = first[W.rank + 1] - c0;
    float *tmp = malloc((size_t)P * sizeof *tmp);
    int64_t *plain = calloc((size_t)L, sizeof *plain), *sa_acc = calloc((size_t)L, sizeof *sa_acc),
            *he_acc = calloc((size_t)L, sizeof *he_acc);
    if (!count || !first || !ids || !tmp || !plain || !sa_acc || !he_acc) die("out of memory");

    /* plain: encode every local client into the rank's sum, one integer all-reduce */
    CK(comm_barrier(&W));
    double t0 = fh_wtime(), u0 = pcpu();
    int64_t *cb = malloc((size_t)L * sizeof *cb);
    for (int32_t i = 0; i < nloc; i++) {
        fill(cb, P, c0 + i, n, tmp);
        for (int64_t j = 0; j < L; j++) plain[j] = (int64_t)((uint64_t)plain[j] + (uint64_t)cb[j]);
    }
    double t_fill = fh_wtime() - t0;
    CK(comm_allreduce_sum_i64(&W, plain, L));
    double t_plain = fh_wtime() - t0, c_plain = pcpu() - u0;

    /* secure aggregation over the same buffers */
    config_secagg sac = {0};
    sac.enabled = 1;
    sac.threshold = 0.5;
    sac.masks = 1;
    secagg_engine sa;
    CK(comm_agree(&W, secagg_engine_init(&sa, &sac, 7, 0, &W, L, P)));
    CK(secagg_engine_begin(&sa, nloc));
    for (int32_t i = 0; i < nloc; i++) fill(secagg_engine_buffer(&sa, i), P, c0 + i, n, tmp);
    CK(comm_barrier(&W));
    t0 = fh_wtime();
    u0 = pcpu();
    CK(secagg_engine_round(&sa, &W, 1, ids, first, n, sa_acc));
    double t_sa = fh_wtime() - t0, c_sa = pcpu() - u0;
    secagg_engine_free(&sa);

    /* [he] */
    config_he hc = {1, bits, 0};
    he_engine he;
    CK(comm_barrier(&W));
    t0 = fh_wtime();
    CK(comm_agree(&W, he_engine_init(&he, &hc, &W, L, n, 0)));
    double t_key = fh_wtime() - t0;
    CK(he_engine_begin(&he, nloc));
    for (int32_t i = 0; i < nloc; i++) fill(he_engine_buffer(&he, i), P, c0 + i, n, tmp);
    cost_state sh = {.magic = STATE_MAGIC, .version = STATE_VERSION, .n = n, .bits = bits, .ranks = W.size,
                     .rank = W.rank, .pieces = 0, .P = P};
    if (state) {
        cost_state want = sh;
        char why[4200] = "";
        const int r = state_load(state, &sh, &he, &want, why, sizeof why);
        if (r < 0) fprintf(stderr, "fedhpc_he_bench: %s\n", why);
        double fl[2] = {r < 0, r == 1};
        CK(comm_allreduce_sum_f64(&W, fl, 2));
        if (fl[0] > 0) die("cost STATE: a rank's state file is unusable (above)");
        if (fl[1] > 0 && fl[1] < W.size) die("cost STATE: some ranks have a state file and some do not");
        /* every rank resumed under the same key? (rank 0's fingerprint) */
        uint8_t id[HE_ID_BYTES];
        memcpy(id, he.pub.id, sizeof id);
        CK(comm_bcast(&W, id, sizeof id, 0));
        double diff = memcmp(id, he.pub.id, sizeof id) != 0;
        CK(comm_allreduce_sum_f64(&W, &diff, 1));
        if (diff > 0) die("cost STATE: the ranks' state files hold different keys");
        if (r == 1 && W.rank == 0)
            fprintf(stderr, "fedhpc_he_bench: resuming %s: %lld of %lld ciphertexts done on rank 0, %.0f CPU-s, piece %d\n",
                    state, (long long)sh.j_done, (long long)he.ncts, sh.enc_cpu, sh.pieces + 1);
    }
    CK(comm_barrier(&W));
    t0 = fh_wtime();
    fh_status est = FH_OK;
    if (!state) {
        est = he_engine_encrypt(&he, 0, he.ncts);
    } else {
        const char *cv = getenv("HE_COST_CHUNK");
        const int64_t chunk = cv && atoll(cv) > 0 ? atoll(cv) : 64;
        he.enc_s = sh.enc_s;
        he.enc_cpu = sh.enc_cpu;
        sh.pieces++;
        const char *sv = getenv("HE_COST_STOP"); /* tests: stop after this many pieces, as a kill would */
        int64_t stop = sv && atoll(sv) > 0 ? atoll(sv) : -1;
        double last = fh_wtime();
        while (est == FH_OK && sh.j_done < he.ncts) {
            if (stop-- == 0) {
                if (W.rank == 0) fprintf(stderr, "fedhpc_he_bench: stopped (HE_COST_STOP) at %lld ciphertexts\n", (long long)sh.j_done);
                comm_finalize();
                exit(3);
            }
            const int64_t j1 = sh.j_done + chunk < he.ncts ? sh.j_done + chunk : he.ncts;
            est = he_engine_encrypt(&he, sh.j_done, j1);
            sh.j_done = j1;
            sh.enc_s = he.enc_s;
            sh.enc_cpu = he.enc_cpu;
            if (est == FH_OK && !state_save(state, &sh, &he)) die("cost STATE: cannot write the state file");
            if (W.rank == 0 && fh_wtime() - last > 300) {
                fprintf(stderr, "fedhpc_he_bench: rank 0: %lld/%lld ciphertexts, %.0f CPU-s\n", (long long)sh.j_done,
                        (long long)he.ncts, he.enc_cpu);
                last = fh_wtime();
            }
        }
    }
    CK(he_engine_combine(&he, &W, n, he_acc, est));
    double t_he = fh_wtime() - t0;
    double s[4] = {he.enc_s, he.agg_s, he.dec_s, he.wait_s}, mx[4];
    for (int k = 0; k < 4; k++) CK(comm_stats(&W, s[k], &(double){0}, &(double){0}, &mx[k]));
    /* CPU seconds over all ranks (every thread): the work, whatever else runs on the machine;
     * the aggregator's share (rank 0's) separately */
    double cpu[5] = {he.enc_cpu, he.agg_cpu, he.dec_cpu, c_plain, c_sa}, cpu0[3] = {he.enc_cpu, he.agg_cpu, he.dec_cpu};
    CK(comm_allreduce_sum_f64(&W, cpu, 5));
    double tmax[4] = {t_plain, t_sa, t_he, t_fill};
    CK(comm_allreduce_max_f64(&W, tmax, 4));
    const int exact = memcmp(plain, sa_acc, (size_t)L * sizeof *plain) == 0 &&
                      memcmp(plain, he_acc, (size_t)L * sizeof *plain) == 0;
    char pieces_field[32];
    snprintf(pieces_field, sizeof pieces_field, ",pieces=%d", sh.pieces);
    if (W.rank == 0) {
        const char *v = getenv("OMP_NUM_THREADS");
        printf("he_cost,P=%lld;clients=%d;key_bits=%d;ranks=%d;omp_threads=%s;slots=%d;slot_bits=%d,"
               "plain_s=%.4f,encode_s=%.4f,secagg_s=%.4f,he_s=%.3f,he_encrypt_s=%.3f,he_aggregate_s=%.3f,he_decrypt_s=%.3f,he_wait_s=%.3f,"
               "plain_cpu_s=%.4f,secagg_cpu_s=%.4f,he_encrypt_cpu_s=%.3f,he_aggregate_cpu_s=%.3f,he_aggregate_cpu_rank0_s=%.3f,he_decrypt_cpu_s=%.3f,"
               "keydist_s=%.3f,plain_bytes_client=%lld,he_bytes_client=%lld,expansion=%.3f,exact=%d%s\n",
               (long long)P, n, bits, W.size, v ? v : "default", he.plan.slots, he.plan.slot_bits, tmax[0], tmax[3],
               tmax[1], tmax[2], mx[0], mx[1], mx[2], mx[3], cpu[3], cpu[4], cpu[0], cpu[1], cpu0[1], cpu[2], t_key, (long long)he.plain_bytes_client,
               (long long)he.ct_bytes_client, (double)he.ct_bytes_client / (double)he.plain_bytes_client, exact, state ? pieces_field : "");
    }
    if (state && exact) {
        char path[4096];
        state_path(path, sizeof path, state, W.rank, 0);
        remove(path);
    }
    he_engine_free(&he);
    free(count); free(first); free(ids); free(tmp); free(plain); free(sa_acc); free(he_acc); free(cb);
    return exact ? 0 : 1;
}

/* CPU seconds of the calling thread: a core's rate, whatever else the shared machine runs */
static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* operations a CPU second of body over SECONDS of CPU time (at least 5 calls) */
#define RATE(out, secs, body)                                         \
    do {                                                              \
        long _k = 0;                                                  \
        double _t0 = cpu_now(), _t;                                   \
        do { body; _k++; } while ((_t = cpu_now() - _t0) < (secs) || _k < 5); \
        (out) = (double)_k / _t;                                      \
    } while (0)

static int cmd_rates(int argc, char **argv)
{
    if (argc < 4) die("usage: rates KEY_BITS SECONDS");
    const int bits = atoi(argv[2]);
    const double secs = atof(argv[3]);
    if (sodium_init() < 0) die("sodium_init");
    he_key k;
    double t0 = fh_wtime();
    CK(he_keygen(bits, &k));
    const double t_keygen = fh_wtime() - t0;
    he_pack_plan_t plan;
    CK(he_pack_plan(bits, 0, 100, &plan));
    mpz_t r, x, m, c, c2;
    mpz_inits(r, x, m, c, c2, NULL);
    mpz_sub_ui(r, k.pub.n, 12345);
    int64_t words[64];
    for (int i = 0; i < 64; i++) words[i] = (int64_t)(0x9e3779b97f4a7c15ull * (uint64_t)(i + 1));
    he_pack(&plan, words, plan.slots, m);
    double powm, powm_sec_half, powm_sec_p, enc, enc_crt, dec, mul, pack;
    mpz_t ep; /* n mod p(p-1): the exponent of r^n mod p^2 (the previous CRT encryption) */
    mpz_init(ep);
    mpz_sub_ui(ep, k.p, 1);
    mpz_mul(ep, ep, k.p);
    mpz_mod(ep, k.pub.n, ep);
    RATE(powm, secs, { mpz_powm(x, r, k.pub.n, k.pub.n2); mpz_add_ui(r, r, 2); });
    RATE(powm_sec_half, secs, { mpz_powm_sec(x, r, ep, k.p2); mpz_add_ui(r, r, 2); });
    mpz_mod(r, r, k.p);
    RATE(powm_sec_p, secs, { mpz_powm_sec(x, r, k.p, k.p2); mpz_add_ui(r, r, 2); });
    mpz_clear(ep);
    RATE(enc, secs, CK(he_encrypt(&k.pub, c, m)));
    RATE(enc_crt, secs, CK(he_encrypt_crt(&k, c, m))); /* fixed-base when the key allows (he_keygen's do) */
    double enc_halves; /* the CRT encryption from uniform halves a^p, b^q (no tables) */
    mpz_sub_ui(r, k.p, 3);
    mpz_sub_ui(x, k.q, 5);
    RATE(enc_halves, secs, CK(he_encrypt_crt_ab(&k, c, m, r, x)));
    RATE(dec, secs, CK(he_decrypt(&k, x, c)));
    CK(he_encrypt(&k.pub, c2, m));
    RATE(mul, secs, he_add(&k.pub, c, c, c2));
    RATE(pack, secs, he_pack(&plan, words, plan.slots, m));
    printf("he_rates,key_bits=%d;slots=%d;keygen_s=%.2f,powm_r^n_mod_n2_per_s=%.1f,powm_sec_mod_p2_per_s=%.1f,"
           "powm_sec_p_mod_p2_per_s=%.1f,"
           "fixed_base=%d,encrypt_per_s=%.1f,encrypt_crt_per_s=%.1f,encrypt_crt_halves_per_s=%.1f,decrypt_per_s=%.1f,ct_mul_per_s=%.0f,pack_per_s=%.0f,"
           "coords_per_s_core_encrypt=%.0f,coords_per_s_core_encrypt_crt=%.0f,coords_per_s_core_encrypt_crt_halves=%.0f,"
           "coords_per_s_core_powm_limit=%.0f,"
           "coords_per_s_core_decrypt=%.0f\n",
           bits, plan.slots, t_keygen, powm, powm_sec_half, powm_sec_p, he_key_fixed_base(&k), enc, enc_crt, enc_halves, dec,
           mul, pack, enc * plan.slots, enc_crt * plan.slots, enc_halves * plan.slots, powm * plan.slots, dec * plan.slots);
    mpz_clears(r, x, m, c, c2, NULL);
    he_key_free(&k);
    return 0;
}

int main(int argc, char **argv)
{
    if (comm_init(&argc, &argv, &W) != FH_OK) return 1;
    int rc = 2;
    if (argc >= 2 && strcmp(argv[1], "cost") == 0) rc = cmd_cost(argc, argv);
    else if (argc >= 2 && strcmp(argv[1], "rates") == 0) rc = W.rank == 0 ? cmd_rates(argc, argv) : 0;
    else if (W.rank == 0) fprintf(stderr, "usage: fedhpc_he_bench cost P CLIENTS KEY_BITS [STATE] | rates KEY_BITS SECONDS\n");
    comm_finalize();
    return rc;
}
