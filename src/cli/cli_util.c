/* Helpers every fedhpc command shares (declared in src/cli/cli.h): status to exit code, the one
 * error report per run, option parsing with range checks, and directory creation. Kept apart
 * from main.c so that the commands (cmd_*.c) depend on this file, not on the dispatcher. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

fh_status cli_arg(const char *cmd, int argc, char **argv, int *i, const char **pos, const char **opt,
                  const char **val)
{
    const char *o = argv[*i];
    *opt = *val = NULL;
    if (o[0] != '-') {
        if (*pos) return fh_error_set(FH_EINPUT, "%s: unexpected argument '%s' (one DATASET only)", cmd, o);
        *pos = o;
        return FH_OK;
    }
    if (*i + 1 >= argc) return fh_error_set(FH_EINPUT, "%s %s: expected a value", cmd, o);
    *opt = o;
    *val = argv[++*i];
    return FH_OK;
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

