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
    "  psi A.csv B.csv --id COLUMN\n"
    "                        private set intersection of two files' ids (docs/psi.md)\n"
    "  vertical train|central OUT.h5 --parties K --out DIR\n"
    "                        vertical FL: PSI, then LR, split NN or transfer learning (docs/vertical.md)\n"
    "  attack leakage CONFIG.ini [section.key=value ...]\n"
    "                        gradient-leakage attack on one client's update (docs/leakage.md)\n"
    "  embed CONFIG.ini      customer embeddings of a trained model + federated clustering\n"
    "                        (docs/embed.md)\n"
    "\n"
    "`fedhpc COMMAND --help` describes each command.\n"
    "exit status: 0 success, 1 runtime error, 2 bad input (config, arguments, data file)\n";

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
    if (strcmp(cmd, "psi") == 0) return cmd_psi(argc - 1, argv + 1);
    if (strcmp(cmd, "plot") == 0) return cmd_plot(argc - 1, argv + 1);
    if (strcmp(cmd, "inspect") == 0) return cmd_inspect(argc - 1, argv + 1);
    if (strcmp(cmd, "prepare") != 0 && strcmp(cmd, "run") != 0 && strcmp(cmd, "attack") != 0 &&
        strcmp(cmd, "embed") != 0 && strcmp(cmd, "vertical") != 0) {
        fprintf(stderr, "fedhpc: unknown command '%s'\n\n%s", cmd, USAGE);
        return EXIT_BADINPUT;
    }
    comm_t world;
    if (comm_init(&argc, &argv, &world) != FH_OK) {
        fprintf(stderr, "fedhpc: %s\n", fh_error_msg());
        return 1;
    }
    int rc = strcmp(cmd, "run") == 0      ? cmd_run(argc - 1, argv + 1, &world)
             : strcmp(cmd, "attack") == 0 ? cmd_attack(argc - 1, argv + 1, &world)
             : strcmp(cmd, "embed") == 0  ? cmd_embed(argc - 1, argv + 1, &world)
             : strcmp(cmd, "vertical") == 0 ? cmd_vertical(argc - 1, argv + 1, &world)
                                          : cmd_prepare(argc - 1, argv + 1, &world);
    comm_finalize();
    return rc;
}
