/* `fedhpc privacy` — the RDP accountant on the command line (no MPI).
 *
 *   fedhpc privacy --sample-rate q --noise sigma --steps T --delta d
 *       epsilon spent by T steps of the sampled Gaussian mechanism
 *   fedhpc privacy --sample-rate q --steps T --delta d --target-epsilon e
 *       the smallest noise multiplier that stays within (e, d)
 *
 * Options take their value as the next argument or after '=' (--steps=100).
 * Exit status: 0 on success, 2 on bad arguments (one line on stderr).
 */
#include "cli.h"
#include "fedhpc/common.h"
#include "fedhpc/privacy.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: fedhpc privacy --sample-rate Q --noise SIGMA --steps T --delta D\n"
          "       fedhpc privacy --sample-rate Q --steps T --delta D --target-epsilon E\n"
          "       fedhpc privacy --new-key FILE\n"
          "\n"
          "Renyi-DP accounting of the sampled Gaussian mechanism (DP-SGD / DP-FedAvg):\n"
          "the first form prints the epsilon spent by T steps, the second the smallest\n"
          "noise multiplier that keeps T steps within (E, D)-DP.\n"
          "\n"
          "  --sample-rate Q      probability that a record (client) takes part in a step, 0..1\n"
          "  --noise SIGMA        noise multiplier: Gaussian std / clipping norm, > 0\n"
          "  --steps T            number of steps (rounds), a positive integer\n"
          "  --delta D            target delta, 0 < D < 1 (e.g. 1e-5)\n"
          "  --target-epsilon E   solve for the noise multiplier instead, E > 0\n"
          "  --new-key FILE       write a new 32-byte secret (libsodium CSPRNG, mode 0600) for\n"
          "                       [privacy] noise_key: the DP noise can then not be regenerated\n"
          "                       from the configuration (it never overwrites a file)\n"
          "  --help               print this help\n"
          "\n"
          "Orders 1.1..10.9 and 12..63 (Opacus defaults); epsilon by the bound of\n"
          "Balle et al. 2020, minimised over the orders.\n",
          f);
}

/* one line "fedhpc privacy: ..." on stderr; returns the exit status of bad input */
__attribute__((format(printf, 1, 2))) static int bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fedhpc privacy: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 2;
}

/* a finite double, the whole string */
static int parse_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != 0 || errno == ERANGE || !isfinite(v)) return -1;
    *out = v;
    return 0;
}

int cmd_privacy(int argc, char **argv)
{
    const char *opt_names[] = {"--sample-rate", "--noise", "--steps", "--delta", "--target-epsilon"};
    enum { O_Q, O_NOISE, O_STEPS, O_DELTA, O_TARGET, O_N };
    const char *vals[O_N] = {NULL, NULL, NULL, NULL, NULL};

    if (argc == 3 && strcmp(argv[1], "--new-key") == 0) {
        if (privacy_new_key(argv[2]) != FH_OK) return bad("%s", fh_error_msg());
        printf("fedhpc privacy: new noise key in %s (keep it secret; set [privacy] noise_key = %s)\n", argv[2], argv[2]);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        int k = -1;
        const char *val = NULL;
        for (int o = 0; o < O_N; o++) {
            size_t n = strlen(opt_names[o]);
            if (strncmp(arg, opt_names[o], n) == 0 && (arg[n] == 0 || arg[n] == '=')) {
                k = o;
                if (arg[n] == '=') val = arg + n + 1;
                break;
            }
        }
        if (k < 0) return bad("unknown argument '%s' (see fedhpc privacy --help)", arg);
        if (!val) {
            if (i + 1 >= argc) return bad("%s: missing value", opt_names[k]);
            val = argv[++i];
        }
        vals[k] = val;
    }

    double q = 0, sigma = 0, delta = 0, target = 0;
    long long steps = 0;
    if (!vals[O_Q]) return bad("missing %s (see fedhpc privacy --help)", "--sample-rate");
    if (parse_double(vals[O_Q], &q) || q < 0.0 || q > 1.0)
        return bad("%s: expected a number in [0, 1], got '%s'", "--sample-rate", vals[O_Q]);
    if (!vals[O_STEPS]) return bad("missing %s (see fedhpc privacy --help)", "--steps");
    {
        char *end;
        errno = 0;
        steps = strtoll(vals[O_STEPS], &end, 10);
        if (end == vals[O_STEPS] || *end != 0 || errno == ERANGE || steps <= 0)
            return bad("%s: expected a positive integer, got '%s'", "--steps", vals[O_STEPS]);
    }
    if (!vals[O_DELTA]) return bad("missing %s (see fedhpc privacy --help)", "--delta");
    if (parse_double(vals[O_DELTA], &delta) || !(delta > 0.0 && delta < 1.0))
        return bad("%s: expected a number in (0, 1), got '%s'", "--delta", vals[O_DELTA]);
    if (vals[O_NOISE] && vals[O_TARGET])
        return bad("give either %s or %s, not both", "--noise", "--target-epsilon");
    if (!vals[O_NOISE] && !vals[O_TARGET])
        return bad("missing %s or %s (see fedhpc privacy --help)", "--noise", "--target-epsilon");

    fh_status st;
    if (vals[O_NOISE]) {
        if (parse_double(vals[O_NOISE], &sigma) || !(sigma > 0.0))
            return bad("%s: expected a positive number, got '%s'", "--noise", vals[O_NOISE]);
        privacy_accountant acc;
        privacy_accountant_init(&acc);
        double eps = 0, order = 0;
        st = privacy_accountant_step(&acc, q, sigma, (int64_t)steps);
        if (st == FH_OK) st = privacy_epsilon(&acc, delta, &eps, &order);
        if (st != FH_OK) goto fail;
        if (isnan(order))
            printf("epsilon = %.4f (no privacy loss) for q=%g, sigma=%g, steps=%lld, delta=%g\n",
                   eps, q, sigma, steps, delta);
        else
            printf("epsilon = %.4f (order %.1f) for q=%g, sigma=%g, steps=%lld, delta=%g\n", eps,
                   order, q, sigma, steps, delta);
    } else {
        if (parse_double(vals[O_TARGET], &target) || !(target > 0.0))
            return bad("%s: expected a positive number, got '%s'", "--target-epsilon",
                       vals[O_TARGET]);
        st = privacy_sigma_for_epsilon(q, (int64_t)steps, delta, target, &sigma);
        if (st != FH_OK) goto fail;
        /* round up to the 6 digits printed, so the printed sigma still meets the target */
        if (sigma > 0.0) {
            double p = pow(10.0, floor(log10(sigma)) - 5.0);
            sigma = ceil(sigma / p * (1.0 - 1e-12)) * p;
        }
        double eps = 0, order = NAN;
        privacy_accountant acc;
        privacy_accountant_init(&acc);
        st = privacy_accountant_step(&acc, q, sigma, (int64_t)steps);
        if (st == FH_OK) st = privacy_epsilon(&acc, delta, &eps, &order);
        if (st != FH_OK) goto fail;
        printf("sigma = %.6g (epsilon = %.4f", sigma, eps);
        if (!isnan(order)) printf(" at order %.1f", order);
        printf(") for target epsilon=%g, q=%g, steps=%lld, delta=%g\n", target, q, steps, delta);
    }
    return 0;

fail:
    fprintf(stderr, "fedhpc %s\n", fh_error_msg()); /* library messages start "privacy: " */
    return cli_exit_code(st);
}
