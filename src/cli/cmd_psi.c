/* `fedhpc psi` — private set intersection of two CSV files' id columns (no MPI, docs/psi.md).
 *
 *   fedhpc psi A.csv B.csv --id COLUMN [--list]
 *
 * Runs both parties of the DH-PSI protocol (src/privacy/psi.c) in this one process, with fresh
 * signing keys and a fresh session, and prints the intersection size; --list also prints the
 * common ids (in A's row order). A demonstration and a check of the protocol on real files: in a
 * deployment each party runs its half on its own machine and only the signed messages travel.
 * Exit status: 0 on success, 2 on bad input (one line on stderr), 1 on a runtime error.
 */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "fedhpc/common.h"
#include "fedhpc/psi.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fputs("usage: fedhpc psi A.csv B.csv --id COLUMN [--list]\n"
          "\n"
          "Private set intersection of the COLUMN values of two CSV files (header line first,\n"
          "comma-separated, double-quoted fields allowed) by Diffie-Hellman PSI over\n"
          "ristretto255 with Ed25519-signed messages (libsodium). Both parties run in this\n"
          "process; each learns only which of its own ids are common (and the other's set\n"
          "size). Ids must be unique and non-empty within a file.\n"
          "\n"
          "  --id COLUMN   name of the id column in the header of both files\n"
          "  --list        also print the common ids, one a line, in A's row order\n"
          "  --help        print this help\n"
          "\n"
          "Prints: intersection: K ids (A: NA ids, B: NB ids)\n",
          f);
}

__attribute__((format(printf, 1, 2))) static int bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fedhpc psi: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_BADINPUT;
}

/* Split one CSV line in place into fields (RFC 4180 quotes within the line); returns the count,
 * or -1 on an unterminated quote. */
static int csv_split(char *line, char **fields, int max)
{
    int n = 0;
    char *r = line, *w = line;
    for (;;) {
        if (n == max) return n;
        fields[n++] = w;
        if (*r == '"') {
            r++;
            for (;;) {
                if (*r == 0) return -1;
                if (*r == '"') {
                    if (r[1] == '"') {
                        *w++ = '"';
                        r += 2;
                        continue;
                    }
                    r++;
                    break;
                }
                *w++ = *r++;
            }
            /* after the closing quote: until the comma */
            while (*r && *r != ',') *w++ = *r++;
        } else {
            while (*r && *r != ',') *w++ = *r++;
        }
        if (*r == ',') {
            *w++ = 0;
            r++;
            continue;
        }
        *w = 0;
        return n;
    }
}

enum { MAX_FIELDS = 4096 };

static void ids_free(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++) free(ids[i]);
    free(ids);
}

/* Read the `col` column of a CSV file; returns 0 or an exit status (message printed). */
static int read_ids(const char *path, const char *col, char ***out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    if (fh_path_check("psi input", path, FH_PATH_READ_FILE) != FH_OK) return bad("%s", fh_error_msg());
    FILE *f = fopen(path, "r");
    if (!f) return bad("%s: cannot open for reading", path);
    char *line = NULL;
    size_t cap = 0;
    char **fields = malloc(MAX_FIELDS * sizeof *fields);
    char **ids = NULL;
    size_t n = 0, ncap = 0;
    long lineno = 0;
    int c = -1, rc = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (lineno > 1 && len == 0) continue; /* blank lines (e.g. at the end) */
        int nf = csv_split(line, fields, MAX_FIELDS);
        if (nf < 0) {
            rc = bad("%s:%ld: unterminated quoted field", path, lineno);
            break;
        }
        if (lineno == 1) {
            for (int i = 0; i < nf && c < 0; i++)
                if (strcmp(fields[i], col) == 0) c = i;
            if (c < 0) {
                rc = bad("%s: no column '%s' in the header line (expected --id to name one of its columns)",
                         path, col);
                break;
            }
            continue;
        }
        if (nf <= c) {
            rc = bad("%s:%ld: %d fields, the id column '%s' is field %d", path, lineno, nf, col, c + 1);
            break;
        }
        if (fields[c][0] == 0) {
            rc = bad("%s:%ld: empty id in column '%s'", path, lineno, col);
            break;
        }
        if (n == ncap) {
            ncap = ncap ? 2 * ncap : 256;
            char **t = realloc(ids, ncap * sizeof *t);
            if (!t) {
                rc = 1;
                fprintf(stderr, "fedhpc psi: error: out of memory\n");
                break;
            }
            ids = t;
        }
        ids[n] = strdup(fields[c]);
        if (!ids[n]) {
            rc = 1;
            fprintf(stderr, "fedhpc psi: error: out of memory\n");
            break;
        }
        n++;
    }
    if (rc == 0 && lineno == 0) rc = bad("%s: empty file (expected a header line)", path);
    free(line);
    free(fields);
    fclose(f);
    if (rc != 0) {
        ids_free(ids, n);
        return rc;
    }
    *out = ids;
    *nout = n;
    return 0;
}

int cmd_psi(int argc, char **argv)
{
    const char *files[2] = {NULL, NULL}, *col = NULL;
    int nfiles = 0, list = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--list") == 0) {
            list = 1;
        } else if (strncmp(a, "--id=", 5) == 0) {
            col = a + 5;
        } else if (strcmp(a, "--id") == 0) {
            if (i + 1 >= argc) return bad("--id: expected a column name");
            col = argv[++i];
        } else if (a[0] == '-' && a[1] != 0) {
            bad("unknown option '%s'", a);
            usage(stderr);
            return EXIT_BADINPUT;
        } else {
            if (nfiles == 2) return bad("unexpected argument '%s' (expected two CSV files)", a);
            files[nfiles++] = a;
        }
    }
    if (nfiles != 2) {
        bad("expected two CSV files A.csv B.csv, got %d", nfiles);
        usage(stderr);
        return EXIT_BADINPUT;
    }
    if (!col || !*col) return bad("--id COLUMN is required (the id column of both files)");
    char **a = NULL, **b = NULL;
    size_t na = 0, nb = 0;
    int rc = read_ids(files[0], col, &a, &na);
    if (rc == 0) rc = read_ids(files[1], col, &b, &nb);
    if (rc != 0) {
        ids_free(a, na);
        return rc;
    }
    size_t *ia = NULL, *ib = NULL, nia = 0, nib = 0;
    fh_status st = psi_run_local((const char *const *)a, na, (const char *const *)b, nb, &ia, &nia, &ib,
                                 &nib);
    if (st == FH_OK && nia != nib)
        st = fh_error_set(FH_EINTERNAL, "psi: the parties disagree on the intersection size (%zu, %zu)", nia, nib);
    if (st != FH_OK) {
        fprintf(stderr, "fedhpc psi: error: %s (party A: %s, party B: %s; positions count data rows from 0)\n", fh_error_msg(), files[0], files[1]);
        rc = cli_exit_code(st);
    } else {
        printf("intersection: %zu ids (A: %zu ids, B: %zu ids)\n", nia, na, nb);
        if (list)
            for (size_t i = 0; i < nia; i++) printf("%s\n", a[ia[i]]);
    }
    free(ia);
    free(ib);
    ids_free(a, na);
    ids_free(b, nb);
    return rc;
}
