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
    const char *file = NULL;
    int verify = 0, help = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) help = 1;
        else if (!strcmp(argv[i], "--verify")) verify = 1;
        else if (argv[i][0] != '-' && !file) file = argv[i];
        else bad = 1;
    }
    if (help || bad || !file) {
        fputs("usage: fedhpc inspect FILE.h5 [--verify]\n\nSummarise a fedhpc data set (clients, rows per client "
              "min/median/max, label skew) or model file.\n--verify: also check a data file's checksums "
              "(docs/data-integrity.md); exit status 2 if they do not match.\n", help && !bad ? stdout : stderr);
        return help && !bad ? 0 : EXIT_BADINPUT;
    }
    fh_status st = fh_path_check("inspect", file, FH_PATH_READ_FILE);
    if (st == FH_OK) st = io_inspect(file);
    if (st == FH_OK && verify) {
        io_data *h = NULL;
        io_data_meta m;
        int64_t bytes = 0;
        double t = fh_wtime();
        st = io_data_open(file, NULL, &h, &m);
        if (st == FH_OK) st = io_data_verify(h, NULL, &bytes);
        io_data_close(h);
        if (st == FH_OK && !m.checksums)
            printf("  checksums   none (written by an older fedhpc prepare): not verified\n");
        else if (st == FH_OK)
            printf("  checksums   ok (crc32 of every dataset, %.1f MB in %.2f s)\n", (double)bytes / 1e6, fh_wtime() - t);
    }
    return cli_report(NULL, "inspect", st);
}

static const char *PLOT_USAGE =
    "usage: fedhpc plot DIR [--out FILE.png]\n"
    "       fedhpc plot --x virtual_time DIR1 DIR2 ... [--out FILE.png]\n\n"
    "Draws DIR/metrics.csv (test accuracy and train/test loss per round; with an [attack] backdoor\n"
    "or label flip, its attack success too) with gnuplot into\n"
    "DIR/learning_curve.png (or --out).\n"
    "--x virtual_time: test accuracy against virtual time of several [async] runs in one plot,\n"
    "from each DIR/async.csv, into DIR1/accuracy_vs_virtual_time.png (or --out).\n";

/* [attack] The 1-based column `name` of csv when some row has a number in it (not nan), else 0. */
static int csv_column_with_values(const char *csv, const char *name)
{
    FILE *f = fopen(csv, "r");
    if (!f) return 0;
    char line[4096];
    int col = 0, found = 0;
    if (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        int i = 1;
        for (char *t = strtok(line, ","); t; t = strtok(NULL, ","), i++)
            if (!strcmp(t, name)) col = i;
    }
    while (col && !found && fgets(line, sizeof line, f)) {
        char *p = line;
        for (int i = 1; i < col && p; i++) {
            p = strchr(p, ',');
            if (p) p++;
        }
        if (p && *p && *p != ',' && *p != '\n' && strncmp(p, "nan", 3) != 0) found = 1;
    }
    fclose(f);
    return found ? col : 0;
}

/* FH_EINPUT unless csv starts with a header line beginning with `prefix`. */
static fh_status csv_expect(const char *csv, const char *prefix, const char *what)
{
    FILE *f = fopen(csv, "r");
    char header[512] = "";
    int ok = f && fgets(header, sizeof header, f) && strncmp(header, prefix, strlen(prefix)) == 0;
    if (f) fclose(f);
    return ok ? FH_OK : fh_error_set(FH_EINPUT, "%s: expected %s (header %s...)", csv, what, prefix);
}

/* Run a gnuplot script (its terminal/output lines are added here) into png via a temporary
 * file and rename; the exit status of `fedhpc plot`. */
static int gnuplot_draw(const char *png, const char *terminal, const char *script)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.png", png, (long)getpid());
    FILE *g = popen("gnuplot", "w");
    if (!g) return cli_report(NULL, "plot", fh_error_set(FH_EIO, "cannot start gnuplot (install gnuplot-nox)"));
    fprintf(g, "set terminal %s noenhanced\nset output '%s'\nset datafile separator ','\n"
               "set datafile missing 'nan'\n%s", terminal, tmp, script);
    int rc = pclose(g);
    if (rc != 0 || access(tmp, R_OK) != 0 || rename(tmp, png) != 0) {
        unlink(tmp);
        return cli_report(NULL, "plot", fh_error_set(FH_EIO, "gnuplot failed to draw %s (is gnuplot-nox installed?)", png));
    }
    printf("plot: %s\n", png);
    return 0;
}

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
    char png[4096], csv[4200];
    snprintf(png, sizeof png, "%s", out ? out : "");
    if (!out) snprintf(png, sizeof png, "%s/accuracy_vs_virtual_time.png", dirs[0]);
    fh_status st = FH_OK;
    for (int d = 0; d < ndir && st == FH_OK; d++) st = fh_path_check("plot", dirs[d], FH_PATH_READ_DIR);
    if (st == FH_OK && out) st = fh_path_check("plot --out", out, FH_PATH_WRITE_FILE);
    for (int d = 0; d < ndir && st == FH_OK; d++) {
        snprintf(csv, sizeof csv, "%s/async.csv", dirs[d]);
        st = csv_expect(csv, "round,virtual_time,wall_s,accuracy", "the async.csv of an [async] run");
    }
    char *script = NULL;
    size_t len = 0;
    FILE *m = st == FH_OK ? open_memstream(&script, &len) : NULL;
    if (st == FH_OK && !m) st = fh_error_set(FH_ENOMEM, "out of memory");
    if (st != FH_OK) {
        free(dirs);
        return cli_report(NULL, "plot", st);
    }
    fprintf(m, "set xlabel 'virtual time'\nset ylabel 'test accuracy'\nset grid\nset key bottom right\nplot ");
    for (int d = 0; d < ndir; d++) {
        const char *name = strrchr(dirs[d], '/') && strrchr(dirs[d], '/')[1] ? strrchr(dirs[d], '/') + 1 : dirs[d];
        fprintf(m, "%s'%s/async.csv' using 2:4 with linespoints pt 7 ps 0.4 title '%s'", d ? ", " : "", dirs[d], name);
    }
    fprintf(m, "\n");
    fclose(m);
    free(dirs);
    int rc = gnuplot_draw(png, "pngcairo size 900,520", script);
    free(script);
    return rc;
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
    char csv[4096], png[4096], script[16384];
    snprintf(csv, sizeof csv, "%s/metrics.csv", dir);
    snprintf(png, sizeof png, "%s", out ? out : "");
    if (!out) snprintf(png, sizeof png, "%s/learning_curve.png", dir);
    fh_status st = fh_path_check("plot", dir, FH_PATH_READ_DIR);
    if (st == FH_OK && out) st = fh_path_check("plot --out", out, FH_PATH_WRITE_FILE);
    if (st == FH_OK) st = csv_expect(csv, "round,wall_s,train_loss,test_loss,accuracy", "a fedhpc metrics.csv");
    if (st != FH_OK) return cli_report(NULL, "plot", st);
    char extra[128] = ""; /* [attack] attack success (backdoor, label flip), when measured */
    const int bd = csv_column_with_values(csv, "attack_success");
    if (bd) snprintf(extra, sizeof extra, ", '' using 1:%d with linespoints pt 5 ps 0.5 title 'attack success'", bd);
    snprintf(script, sizeof script,
             "set key autotitle columnhead\n"
             "set multiplot layout 1,2 title '%s'\n"
             "set xlabel 'round'; set ylabel '%s'; set grid; set key bottom right\n"
             "plot '%s' using 1:5 with linespoints pt 7 ps 0.5 title 'test accuracy', "
             "'' using 1:10 with lines dt 2 title 'client accuracy (mean)'%s\n"
             "set ylabel 'loss'; set key top right\n"
             "plot '%s' using 1:3 with lines title 'train loss', '' using 1:4 with linespoints pt 7 ps 0.5 title 'test loss'\n"
             "unset multiplot\n",
             dir, bd ? "accuracy / attack success" : "accuracy", csv, extra, csv);
    return gnuplot_draw(png, "pngcairo size 1000,420", script);
}
