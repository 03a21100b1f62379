/* fedhpc — federated learning on MPI. The application layer: parses the command line,
 * dispatches to a command, reports errors once and maps them to exit statuses. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "fedhpc/model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *USAGE =
    "usage: fedhpc COMMAND [ARGS...]\n"
    "\n"
    "commands:\n"
    "  prepare DATASET ...   partition a real data set into a fedhpc HDF5 file\n"
    "  run CONFIG.ini [section.key=value ...]\n"
    "                        train (under mpirun -np P): FedAvg family or centralized baseline\n"
    "  inspect FILE.h5       summarise a fedhpc data or model file\n"
    "  plot DIR              learning curve PNG from DIR/metrics.csv (gnuplot)\n"
    "  privacy ...           differential-privacy accountant (epsilon for q, sigma, steps)\n"
    "\n"
    "`fedhpc COMMAND --help` describes each command.\n"
    "exit status: 0 success, 1 runtime error, 2 bad input (config, arguments, data file)\n";

int cli_exit_code(fh_status st)
{
    return st == FH_OK ? 0 : st == FH_EINPUT ? EXIT_BADINPUT : 1;
}

int cli_report(const comm_t *world, const char *cmd, fh_status st)
{
    if (st != FH_OK && (!world || world->rank == 0)) {
        fprintf(stderr, "fedhpc %s: error: %s\n", cmd, fh_error_msg());
        fflush(stderr);
    }
    return cli_exit_code(st);
}

fh_status cli_parse_long(const char *cmd, const char *opt, const char *v, long long lo, long long hi,
                         long long *out)
{
    char *end;
    errno = 0;
    long long x = v ? strtoll(v, &end, 10) : 0;
    if (!v || errno || end == v || *end || x < lo || x > hi)
        return fh_error_set(FH_EINPUT, "%s %s: expected an integer in [%lld, %lld], got '%s'", cmd, opt, lo, hi,
                            v ? v : "(nothing)");
    *out = x;
    return FH_OK;
}

fh_status cli_parse_double(const char *cmd, const char *opt, const char *v, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double x = v ? strtod(v, &end) : 0;
    if (!v || errno || end == v || *end || !(x >= lo && x <= hi))
        return fh_error_set(FH_EINPUT, "%s %s: expected a number in [%g, %g], got '%s'", cmd, opt, lo, hi,
                            v ? v : "(nothing)");
    *out = x;
    return FH_OK;
}

fh_status cli_mkdirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return fh_error_set(FH_EINPUT, "%s: cannot create the directory: %s", buf, strerror(errno));
            *p = c;
            if (!c) break;
        }
    }
    return FH_OK;
}

int main(int argc, char **argv)
{
    model_blas_setup(argv); /* OpenBLAS kernels for this CPU (may re-execute) */
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_BADINPUT : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "privacy") == 0) return cmd_privacy(argc - 1, argv + 1);
    if (strcmp(cmd, "plot") == 0) return cmd_plot(argc - 1, argv + 1);
    if (strcmp(cmd, "inspect") == 0) return cmd_inspect(argc - 1, argv + 1);
    if (strcmp(cmd, "prepare") != 0 && strcmp(cmd, "run") != 0) {
        fprintf(stderr, "fedhpc: unknown command '%s'\n\n%s", cmd, USAGE);
        return EXIT_BADINPUT;
    }
    comm_t world;
    if (comm_init(&argc, &argv, &world) != FH_OK) {
        fprintf(stderr, "fedhpc: %s\n", fh_error_msg());
        return 1;
    }
    int rc = strcmp(cmd, "run") == 0 ? cmd_run(argc - 1, argv + 1, &world)
                                     : cmd_prepare(argc - 1, argv + 1, &world);
    comm_finalize();
    return rc;
}
