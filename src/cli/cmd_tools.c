/* `fedhpc inspect FILE.h5` and `fedhpc plot DIR`. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "fedhpc/io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_inspect(int argc, char **argv)
{
    if (argc != 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        FILE *f = argc == 2 ? stdout : stderr;
        fputs("usage: fedhpc inspect FILE.h5\n\nSummarise a fedhpc data set (clients, rows per client "
              "min/median/max, label skew) or model file.\n", f);
        return argc == 2 ? 0 : EXIT_BADINPUT;
    }
    return cli_report(NULL, "inspect", io_inspect(argv[1]));
}

static const char *PLOT_USAGE =
    "usage: fedhpc plot DIR [--out FILE.png]\n"
    "       fedhpc plot --x virtual_time DIR1 DIR2 ... [--out FILE.png]\n\n"
    "Draws DIR/metrics.csv (test accuracy and train/test loss per round) with gnuplot into\n"
    "DIR/learning_curve.png (or --out).\n"
    "--x virtual_time: test accuracy against virtual time of several [async] runs in one plot,\n"
    "from each DIR/async.csv, into DIR1/accuracy_vs_virtual_time.png (or --out).\n";

/* `fedhpc plot --x virtual_time DIR...` ([async] runs, issue 7). */
static int plot_virtual_time(int argc, char **argv)
{
    const char *out = NULL;
    int ndir = 0;
    char **dirs = calloc((size_t)argc, sizeof *dirs);
    if (!dirs) return cli_report(NULL, "plot", fh_error_set(FH_ENOMEM, "out of memory"));
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--x") && i + 1 < argc) {
            if (strcmp(argv[++i], "virtual_time") != 0) {
                free(dirs);
                fprintf(stderr, "fedhpc plot: error: --x: expected virtual_time, got '%s'\n%s", argv[i], PLOT_USAGE);
                return EXIT_BADINPUT;
            }
        } else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (argv[i][0] != '-') dirs[ndir++] = argv[i];
        else {
            free(dirs);
            fprintf(stderr, "fedhpc plot: error: unexpected argument '%s'\n%s", argv[i], PLOT_USAGE);
            return EXIT_BADINPUT;
        }
    }
    if (!ndir) {
        free(dirs);
        fputs(PLOT_USAGE, stderr);
        return EXIT_BADINPUT;
    }
    char png[4096], tmp[4200], csv[4200];
    snprintf(png, sizeof png, "%s", out ? out : "");
    if (!out) snprintf(png, sizeof png, "%s/accuracy_vs_virtual_time.png", dirs[0]);
    for (int d = 0; d < ndir; d++) {
        snprintf(csv, sizeof csv, "%s/async.csv", dirs[d]);
        FILE *f = fopen(csv, "r");
        char header[512] = "";
        if (!f || !fgets(header, sizeof header, f) || strncmp(header, "round,virtual_time,wall_s,accuracy", 34) != 0) {
            if (f) fclose(f);
            free(dirs);
            fh_error_set(FH_EINPUT, "%s: expected the async.csv of an [async] run (header round,virtual_time,...)", csv);
            return cli_report(NULL, "plot", FH_EINPUT);
        }
        fclose(f);
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.png", png, (long)getpid());
    FILE *g = popen("gnuplot", "w");
    if (!g) {
        free(dirs);
        fh_error_set(FH_EIO, "cannot start gnuplot (install gnuplot-nox)");
        return cli_report(NULL, "plot", FH_EIO);
    }
    fprintf(g, "set terminal pngcairo size 900,520 noenhanced\nset output '%s'\nset datafile separator ','\n"
               "set datafile missing 'nan'\nset xlabel 'virtual time'\nset ylabel 'test accuracy'\nset grid\n"
               "set key bottom right\nplot ", tmp);
    for (int d = 0; d < ndir; d++) {
        const char *name = strrchr(dirs[d], '/') && strrchr(dirs[d], '/')[1] ? strrchr(dirs[d], '/') + 1 : dirs[d];
        fprintf(g, "%s'%s/async.csv' using 2:4 with linespoints pt 7 ps 0.4 title '%s'", d ? ", " : "", dirs[d], name);
    }
    fprintf(g, "\n");
    free(dirs);
    int rc = pclose(g);
    if (rc != 0 || access(tmp, R_OK) != 0 || rename(tmp, png) != 0) {
        unlink(tmp);
        fh_error_set(FH_EIO, "gnuplot failed to draw %s (is gnuplot-nox installed?)", png);
        return cli_report(NULL, "plot", FH_EIO);
    }
    printf("plot: %s\n", png);
    return 0;
}

int cmd_plot(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--x")) return plot_virtual_time(argc, argv);
    const char *dir = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(PLOT_USAGE, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
        else if (argv[i][0] != '-' && !dir) dir = argv[i];
        else {
            fprintf(stderr, "fedhpc plot: error: unexpected argument '%s'\n%s", argv[i], PLOT_USAGE);
            return EXIT_BADINPUT;
        }
    }
    if (!dir) {
        fputs(PLOT_USAGE, stderr);
        return EXIT_BADINPUT;
    }
    char csv[4096], png[4096], tmp[4200];
    snprintf(csv, sizeof csv, "%s/metrics.csv", dir);
    snprintf(png, sizeof png, "%s", out ? out : "");
    if (!out) snprintf(png, sizeof png, "%s/learning_curve.png", dir);
    FILE *f = fopen(csv, "r");
    char header[512] = "";
    if (!f || !fgets(header, sizeof header, f) || strncmp(header, "round,wall_s,train_loss,test_loss,accuracy", 42) != 0) {
        if (f) fclose(f);
        fh_error_set(FH_EINPUT, "%s: expected a fedhpc metrics.csv (header round,wall_s,train_loss,...)", csv);
        return cli_report(NULL, "plot", FH_EINPUT);
    }
    fclose(f);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.png", png, (long)getpid());
    FILE *g = popen("gnuplot", "w");
    if (!g) {
        fh_error_set(FH_EIO, "cannot start gnuplot (install gnuplot-nox)");
        return cli_report(NULL, "plot", FH_EIO);
    }
    fprintf(g,
            "set terminal pngcairo size 1000,420 noenhanced\n"
            "set output '%s'\n"
            "set datafile separator ','\n"
            "set datafile missing 'nan'\n"
            "set key autotitle columnhead\n"
            "set multiplot layout 1,2 title '%s'\n"
            "set xlabel 'round'; set ylabel 'accuracy'; set grid; set key bottom right\n"
            "plot '%s' using 1:5 with linespoints pt 7 ps 0.5 title 'test accuracy', "
            "'' using 1:10 with lines dt 2 title 'client accuracy (mean)'\n"
            "set ylabel 'loss'; set key top right\n"
            "plot '%s' using 1:3 with lines title 'train loss', '' using 1:4 with linespoints pt 7 ps 0.5 title 'test loss'\n"
            "unset multiplot\n",
            tmp, dir, csv, csv);
    int rc = pclose(g);
    if (rc != 0 || access(tmp, R_OK) != 0 || rename(tmp, png) != 0) {
        unlink(tmp);
        fh_error_set(FH_EIO, "gnuplot failed to draw %s (is gnuplot-nox installed?)", png);
        return cli_report(NULL, "plot", FH_EIO);
    }
    printf("plot: %s\n", png);
    return 0;
}
