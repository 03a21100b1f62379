/* Private header of the application layer: one function per `fedhpc` command. Each returns
 * the process exit status: 0 ok, 1 runtime error, 2 bad input (config, CLI, data file). */
#ifndef FEDHPC_CLI_H
#define FEDHPC_CLI_H

#include "fedhpc/comm.h"
#include "fedhpc/common.h"

#define EXIT_BADINPUT 2

int cmd_prepare(int argc, char **argv, const comm_t *world);
int cmd_run(int argc, char **argv, const comm_t *world);
int cmd_inspect(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_privacy(int argc, char **argv);
int cmd_psi(int argc, char **argv);
int cmd_attack(int argc, char **argv, const comm_t *world);
int cmd_embed(int argc, char **argv, const comm_t *world); /* issue 15: src/cli/cmd_embed.c */
/* vertical FL (issue 16, src/cli/cmd_vertical.c) */
int cmd_prepare_vertical(int argc, char **argv, const comm_t *world);
int cmd_vertical(int argc, char **argv, const comm_t *world);

/* `fedhpc prepare movielens` (src/cli/cmd_prepare_ml.c, docs/recommend.md). */
fh_status prepare_movielens(const char *path, const char *out, const char *partition, int32_t clients, uint64_t seed,
                            double test_frac, double min_rating);

/* Exit status for a status code. */
int cli_exit_code(fh_status st);
/* Report an agreed error once (rank 0 prints "fedhpc CMD: error: MSG") and return its exit code. */
int cli_report(const comm_t *world, const char *cmd, fh_status st);
/* Parse a number argument of an option; FH_EINPUT naming the option on failure. */
/* argv[*i] of `fedhpc CMD`: the one positional argument (into *pos; *opt = NULL) or an option
 * with its value (*opt, *val; *i moves past the value). A second positional argument or an option
 * without a value: FH_EINPUT naming it. */
fh_status cli_arg(const char *cmd, int argc, char **argv, int *i, const char **pos, const char **opt,
                  const char **val);
fh_status cli_parse_long(const char *cmd, const char *opt, const char *v, long long lo, long long hi, long long *out);
fh_status cli_parse_double(const char *cmd, const char *opt, const char *v, double lo, double hi, double *out);
/* mkdir -p */
fh_status cli_mkdirs(const char *path);

#endif
