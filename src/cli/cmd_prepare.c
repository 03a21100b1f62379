/* `fedhpc prepare`: a real data set, partitioned over clients, into a fedhpc HDF5 file. */
#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "fedhpc/data.h"
#include "fedhpc/io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *USAGE =
    "usage: fedhpc prepare DATASET --clients N --partition iid|dirichlet|shards|natural|quantity\n"
    "                      [--alpha A] [--by COLUMN] --seed S --out FILE.h5\n"
    "                      [--label COL] [--positive VALUE] [--test-frac F] [--min-size K]\n"
    "                      [--cache DIR] [--data-dir DIR] [--train-rows N]\n"
    "                      [--groups K --group-transform rotate|permute-labels] [--local-test-frac F]\n"
    "                      [--group-by COLUMN | --group-map FILE] [--parties K] [--val-frac F] [--encoding items|multihot]\n"
    "       fedhpc prepare DATASET --vertical K ...   (vertical FL: fedhpc prepare --vertical 2 --help)\n"
    "\n"
    "DATASET:\n"
    "  fmnist          Fashion-MNIST (Debian's dataset-fashion-mnist), idx .gz files in --cache DIR\n"
    "                  (default data/cache/fashion-mnist; `make data` fetches them)\n"
    "  lending_club    LendingClub loans 2016Q1 (data/lending_club.csv); label Class, positive 'bad';\n"
    "                  natural partition by addr_state\n"
    "  credit_data     credit scoring data (data/credit_data.csv); label Status, positive 'bad'\n"
    "  csv:PATH        any CSV with a header; --label COL required, --positive VALUE for binary\n"
    "  supermarket     4627 supermarket baskets over 216 departments (data/supermarket_baskets.csv,\n"
    "                  data/supermarket_items.txt); label total high|low; item sets (docs/retail.md)\n"
    "  ticdata         CoIL 2000 customers (data/ticdata.csv) as sets of held products (A* columns\n"
    "                  > 0); label CARAVAN; natural partition by MOSHOOFD (default) or --by\n"
    "  --encoding items (item-set data sets): rows of item indices, -1 padding, for [model] type =\n"
    "                  attention (the sets also stored as CSR); multihot: bag-of-items 0/1 features\n"
    "  movielens       MovieLens ratings (data/movielens.csv.gz) as interactions for [model] lightgcn:\n"
    "                  --partition users|genre, --min-rating R (default 4), --test-frac F (default 0.2:\n"
    "                  each user's latest ratings held out); docs/recommend.md\n"
    "\n"
    "partitions: iid; dirichlet (label skew, --alpha, default 0.5); shards (2 label-sorted shards\n"
    "per client, McMahan et al. 2017); natural (one client per value of --by COLUMN); quantity\n"
    "(log-normal client sizes with sigma --alpha, default 1). --min-size (default 2) rows per client.\n"
    "The test split: Fashion-MNIST's own t10k set; CSVs hold out --test-frac (default 0.2).\n"
    "--train-rows N (fmnist): only the first N of the 60,000 training rows (smaller studies, e.g. the\n"
    "CNN cells of the multi-center grid); the test split stays whole.\n"
    "--groups K: K latent client groups (balanced, random), each with its own transform of its\n"
    "clients' rows (rotate: images by g*360/K degrees; permute-labels: a fixed label permutation\n"
    "per group); each client's true group is stored (/train/client_group).\n"
    "--local-test-frac F: the last floor(F*n) rows of each client are its own held-out split.\n"
    "--group-by COLUMN (CSV, --partition natural): each client's true group is the most frequent\n"
    "category of COLUMN among its rows (e.g. ticdata --by STYPE --group-by MOSHOOFD: customer\n"
    "subtypes within main types; prepare prints the share of rows that agree); stored as\n"
    "/train/client_group, so that multi-center runs report the ARI of a natural grouping.\n"
    "--group-map FILE (--partition natural): each client's true group from a CSV of 'value,group'\n"
    "lines after a header, value = the client's --by value (e.g. lending_club --by addr_state\n"
    "--group-map data/us_regions.csv: US states to the four Census regions).\n"
    "--parties K: one file per party instead of one shared file (docs/data.md): FILE.h5 is the\n"
    "aggregator's (metadata, every client's row count and party, the test split, no training\n"
    "rows); FILE.party<p>.h5 holds only the rows of party p's clients (clients [p*N/K, (p+1)*N/K)).\n"
    "Run on K + 1 ranks: rank 0 aggregates, rank p + 1 opens party p's file and no other.\n"
    "--val-frac F (CSV): F of all rows leave the training rows for a validation split (/val), held\n"
    "by the aggregator like the test split; the test split is the same as without it. Runs choose\n"
    "the binary decision threshold on it (docs/credit.md), never on the test split.\n"
    "Everything is deterministic from --seed. The file is written to a temporary name and renamed.\n";

typedef struct {
    const char *dataset, *out, *by, *label, *positive, *cache, *data_dir, *partition;
    long long clients, seed, min_size;
    double alpha, test_frac;
    int alpha_set;
    long long groups;
    const char *group_transform;
    double local_test_frac;
    long long parties;
    const char *group_by;
    double val_frac;
    const char *encoding; /* item-set data: "items" (default) | "multihot" */
    double min_rating; /* movielens */
    long long train_rows; /* fmnist: keep the first N training rows (0: all) */
    const char *group_map; /* CSV value,group: a client's group from its --by value */
} prep_args;

static fh_status parse_args(int argc, char **argv, prep_args *a)
{
    memset(a, 0, sizeof *a);
    a->clients = -1;
    a->seed = -1;
    a->min_size = 2;
    a->test_frac = 0.2;
    a->min_rating = 4.0;
    a->cache = "data/cache/fashion-mnist";
    a->data_dir = "data";
    for (int i = 1; i < argc; i++) {
        const char *o, *v;
        FH_TRY(cli_arg("prepare", argc, argv, &i, &a->dataset, &o, &v));
        if (!o) continue;
        if (!strcmp(o, "--clients")) FH_TRY(cli_parse_long("prepare", o, v, 1, 100000000, &a->clients));
        else if (!strcmp(o, "--seed")) FH_TRY(cli_parse_long("prepare", o, v, 0, (long long)9e18, &a->seed));
        else if (!strcmp(o, "--min-size")) FH_TRY(cli_parse_long("prepare", o, v, 1, 1000000, &a->min_size));
        else if (!strcmp(o, "--alpha")) { FH_TRY(cli_parse_double("prepare", o, v, 1e-6, 1e6, &a->alpha)); a->alpha_set = 1; }
        else if (!strcmp(o, "--test-frac")) FH_TRY(cli_parse_double("prepare", o, v, 0.0, 0.9, &a->test_frac));
        else if (!strcmp(o, "--partition")) a->partition = v;
        else if (!strcmp(o, "--out")) a->out = v;
        else if (!strcmp(o, "--by")) a->by = v;
        else if (!strcmp(o, "--label")) a->label = v;
        else if (!strcmp(o, "--positive")) a->positive = v;
        else if (!strcmp(o, "--cache")) a->cache = v;
        else if (!strcmp(o, "--data-dir")) a->data_dir = v;
        else if (!strcmp(o, "--groups")) FH_TRY(cli_parse_long("prepare", o, v, 1, 100000, &a->groups));
        else if (!strcmp(o, "--group-transform")) a->group_transform = v;
        else if (!strcmp(o, "--local-test-frac")) FH_TRY(cli_parse_double("prepare", o, v, 0.0, 0.9, &a->local_test_frac));
        else if (!strcmp(o, "--parties")) FH_TRY(cli_parse_long("prepare", o, v, 1, 100000, &a->parties));
        else if (!strcmp(o, "--group-by")) a->group_by = v;
        else if (!strcmp(o, "--group-map")) a->group_map = v;
        else if (!strcmp(o, "--val-frac")) FH_TRY(cli_parse_double("prepare", o, v, 0.0, 0.9, &a->val_frac));
        else if (!strcmp(o, "--encoding")) a->encoding = v;
        else if (!strcmp(o, "--train-rows")) FH_TRY(cli_parse_long("prepare", o, v, 1, 100000000, &a->train_rows));
        else if (!strcmp(o, "--min-rating")) FH_TRY(cli_parse_double("prepare", o, v, 0.0, 5.0, &a->min_rating));
        else return fh_error_set(FH_EINPUT, "prepare: unknown option '%s' (see fedhpc prepare --help)", o);
    }
    if (!a->dataset) return fh_error_set(FH_EINPUT, "prepare: expected a DATASET (fmnist, lending_club, credit_data, csv:PATH)");
    if (!a->out) return fh_error_set(FH_EINPUT, "prepare: --out FILE.h5 is required");
    if (!a->partition) return fh_error_set(FH_EINPUT, "prepare: --partition is required (iid|dirichlet|shards|natural|quantity)");
    if (a->seed < 0) return fh_error_set(FH_EINPUT, "prepare: --seed S is required");
    if (a->groups > 0 && !a->group_transform)
        return fh_error_set(FH_EINPUT, "prepare: --groups needs --group-transform rotate|permute-labels");
    if (a->group_transform && a->groups < 1)
        return fh_error_set(FH_EINPUT, "prepare: --group-transform needs --groups K");
    if (a->group_by && (a->groups > 0 || !a->partition || strcmp(a->partition, "natural") != 0))
        return fh_error_set(FH_EINPUT, "prepare: --group-by COLUMN needs --partition natural (clients from --by) and no --groups");
    if (a->train_rows > 0 && strcmp(a->dataset, "fmnist") != 0)
        return fh_error_set(FH_EINPUT, "prepare: --train-rows applies to fmnist, not %s", a->dataset);
    if (a->group_map && (a->group_by || a->groups > 0 || !a->partition || strcmp(a->partition, "natural") != 0))
        return fh_error_set(FH_EINPUT, "prepare: --group-map FILE needs --partition natural (clients from --by), and "
                            "neither --group-by nor --groups");
    if (a->group_map) FH_TRY(fh_path_check("prepare --group-map", a->group_map, FH_PATH_READ_FILE));
    if (a->val_frac > 0 && !strcmp(a->dataset, "fmnist"))
        return fh_error_set(FH_EINPUT, "prepare: --val-frac applies to CSV data sets, not fmnist");
    /* every path argument, before any work */
    FH_TRY(fh_path_check("prepare --out", a->out, FH_PATH_WRITE_FILE));
    if (!strcmp(a->dataset, "fmnist")) FH_TRY(fh_path_check("prepare --cache", a->cache, FH_PATH_READ_DIR));
    if (a->encoding && strcmp(a->encoding, "items") != 0 && strcmp(a->encoding, "multihot") != 0)
        return fh_error_set(FH_EINPUT, "prepare --encoding '%s': expected items or multihot", a->encoding);
    if ((!strcmp(a->dataset, "supermarket") || !strcmp(a->dataset, "ticdata")) && a->group_transform &&
        !strcmp(a->group_transform, "rotate"))
        return fh_error_set(FH_EINPUT, "prepare %s: --group-transform rotate turns images; use permute-labels", a->dataset);
    if (a->encoding && strcmp(a->dataset, "supermarket") != 0 && strcmp(a->dataset, "ticdata") != 0)
        return fh_error_set(FH_EINPUT, "prepare --encoding: applies to item-set data sets (supermarket, ticdata) only");
    if (!strcmp(a->dataset, "lending_club") || !strcmp(a->dataset, "credit_data") || !strcmp(a->dataset, "supermarket") ||
        !strcmp(a->dataset, "ticdata") || !strcmp(a->dataset, "movielens"))
        FH_TRY(fh_path_check("prepare --data-dir", a->data_dir, FH_PATH_READ_DIR));
    if (!strncmp(a->dataset, "csv:", 4)) FH_TRY(fh_path_check("prepare csv:PATH", a->dataset + 4, FH_PATH_READ_FILE));
    return FH_OK;
}

/* --group-by COLUMN: each client's group = the most frequent category of the one-hot encoded
 * COLUMN among its rows (ties: the first category); *purity = the share of rows whose category
 * is their client's group (1: COLUMN nested in the --by column). */
static fh_status groups_from_column(const data_set *ds, const char *col, const int32_t *client_of_row, int32_t C,
                                    int32_t *cgroup, int32_t *ngroups, double *purity)
{
    const data_encoding *e = ds->enc;
    int32_t j = -1;
    for (int32_t c = 0; e && c < e->ncols; c++)
        if (!strcmp(e->col_name[c], col)) j = c;
    if (j < 0) return fh_error_set(FH_EINPUT, "prepare --group-by %s: no such column in %s", col, ds->name);
    if (e->kind[j] != COL_CATEGORICAL)
        return fh_error_set(FH_EINPUT, "prepare --group-by %s: expected a categorical column (it is %s)", col,
                            e->kind[j] == COL_NUMERIC ? "numeric" : "the label or the --by column");
    const int32_t f0 = e->first_feature[j], K = e->ncat[j];
    int64_t *cnt = fh_calloc((size_t)C * (size_t)K, sizeof *cnt);
    FH_CHECK_ALLOC(cnt);
    for (int64_t r = 0; r < ds->train.n; r++) {
        const float *x = ds->train.x + r * ds->train.d + f0;
        int32_t g = 0;
        for (int32_t k = 1; k < K; k++)
            if (x[k] > x[g]) g = k;
        cnt[(int64_t)client_of_row[r] * K + g]++;
    }
    int64_t in = 0;
    for (int32_t c = 0; c < C; c++) {
        const int64_t *h = cnt + (int64_t)c * K;
        int32_t g = 0;
        for (int32_t k = 1; k < K; k++)
            if (h[k] > h[g]) g = k;
        cgroup[c] = g;
        in += h[g];
    }
    free(cnt);
    *ngroups = K;
    *purity = ds->train.n ? (double)in / (double)ds->train.n : 1.0;
    return FH_OK;
}

/* --group-map FILE: a CSV with a header line and lines "value,group" (e.g. data/us_regions.csv:
 * state,region); client c's group is the group of its --by value key_name[c]. Groups are
 * numbered in order of first appearance in the file. Every client's value must be in the file. */
static fh_status groups_from_map(const char *path, char *const *key_name, int32_t C, int32_t *cgroup, int32_t *ngroups)
{
    FILE *f = fopen(path, "r");
    if (!f) return fh_error_set(FH_EIO, "prepare --group-map %s: cannot open", path);
    enum { MAXG = 256 };
    char gname[MAXG][64], line[512];
    int32_t G = 0;
    long ln = 0;
    fh_status st = FH_OK;
    for (int32_t c = 0; c < C; c++) cgroup[c] = -1;
    while (st == FH_OK && fgets(line, sizeof line, f)) {
        if (++ln == 1) continue; /* header */
        line[strcspn(line, "\r\n")] = 0;
        if (!line[0]) continue;
        char *comma = strchr(line, ',');
        if (!comma || strchr(comma + 1, ',') || !comma[1] || comma == line || strlen(comma + 1) >= sizeof gname[0]) {
            st = fh_error_set(FH_EINPUT, "prepare --group-map %s:%ld: expected 'value,group'", path, ln);
            break;
        }
        *comma = 0;
        int32_t g = 0;
        while (g < G && strcmp(gname[g], comma + 1) != 0) g++;
        if (g == G) {
            if (G == MAXG) {
                st = fh_error_set(FH_EINPUT, "prepare --group-map %s: more than %d groups", path, MAXG);
                break;
            }
            snprintf(gname[G++], sizeof gname[0], "%s", comma + 1);
        }
        for (int32_t c = 0; c < C; c++)
            if (!strcmp(key_name[c], line)) cgroup[c] = g;
    }
    fclose(f);
    for (int32_t c = 0; st == FH_OK && c < C; c++)
        if (cgroup[c] < 0) st = fh_error_set(FH_EINPUT, "prepare --group-map %s: no line for '%s'", path, key_name[c]);
    if (st == FH_OK && G == 0) st = fh_error_set(FH_EINPUT, "prepare --group-map %s: no 'value,group' lines", path);
    if (st == FH_OK) {
        printf("prepare: --group-map %s: %d groups:", path, G);
        for (int32_t g = 0; g < G; g++) {
            int32_t n = 0;
            for (int32_t c = 0; c < C; c++) n += cgroup[c] == g;
            printf(" %d=%s (%d clients)", g, gname[g], n);
        }
        printf("\n");
    }
    *ngroups = G;
    return st;
}

/* prepare --parties K: the aggregator's file at path (no training rows) and one file per party
 * with only its clients' rows. Any failure removes what was written. */
static fh_status write_parties(const char *path, int32_t K, const data_set *ds, io_data_meta *meta, const int64_t *perm,
                               const int64_t *offsets, char *const *names)
{
    const int32_t C = meta->clients;
    if (K > C) return fh_error_set(FH_EINPUT, "prepare --parties %d: more parties than the %d clients", K, C);
    int32_t *party = malloc((size_t)C * sizeof *party);
    int64_t *rows = malloc((size_t)C * sizeof *rows);
    int64_t *off = malloc(((size_t)C + 1) * sizeof *off);
    int64_t *sub = malloc((size_t)(ds->train.n ? ds->train.n : 1) * sizeof *sub);
    fh_status st = party && rows && off && sub ? FH_OK : fh_error_set(FH_ENOMEM, "out of memory");
    for (int32_t c = 0; st == FH_OK && c < C; c++) {
        party[c] = (int32_t)((int64_t)c * K / C);
        rows[c] = offsets[c + 1] - offsets[c];
    }
    meta->parties = K;
    meta->client_party = party;
    meta->client_rows = rows;
    char pp[2100];
    int32_t p = -1; /* -1: the aggregator's file, then the parties */
    for (; st == FH_OK && p < K; p++) {
        int64_t n = 0;
        off[0] = 0;
        for (int32_t c = 0; c < C; c++) {
            if (party[c] == p)
                for (int64_t r = offsets[c]; r < offsets[c + 1]; r++) sub[n++] = perm[r];
            off[c + 1] = n;
        }
        meta->party = p;
        if (p >= 0) io_data_party_path(path, p, pp, sizeof pp);
        st = io_data_write(p < 0 ? path : pp, ds, meta, sub, off, names);
    }
    if (st != FH_OK) /* remove the files written before the failure */
        for (int32_t q = -1; q < p - 1; q++) {
            if (q >= 0) io_data_party_path(path, q, pp, sizeof pp);
            unlink(q < 0 ? path : pp);
        }
    meta->client_party = NULL;
    meta->client_rows = NULL;
    free(party); free(rows); free(off); free(sub);
    return st;
}

static fh_status prepare(const prep_args *a)
{
    if (!strcmp(a->dataset, "movielens")) { /* [model] lightgcn (src/cli/cmd_prepare_ml.c) */
        char p[2048];
        snprintf(p, sizeof p, "%s/movielens.csv.gz", a->data_dir);
        return prepare_movielens(p, a->out, a->partition, (int32_t)a->clients, (uint64_t)a->seed, a->test_frac, a->min_rating);
    }
    part_opts po;
    memset(&po, 0, sizeof po);
    FH_TRY(part_parse(a->partition, &po.kind));
    if (po.kind != PART_NATURAL && a->clients < 1)
        return fh_error_set(FH_EINPUT, "prepare: --clients N is required for --partition %s", a->partition);
    po.clients = (int32_t)a->clients;
    po.alpha = a->alpha_set ? a->alpha : (po.kind == PART_QUANTITY ? 1.0 : 0.5);
    po.seed = (uint64_t)a->seed;
    po.min_size = (int32_t)a->min_size;

    data_set ds;
    memset(&ds, 0, sizeof ds);
    char path[2048];
    data_csv_opts co = {a->label, a->positive, a->by, a->test_frac, (uint64_t)a->seed, a->val_frac};
    fh_status st;
    if (!strcmp(a->dataset, "fmnist")) {
        if (a->by) return fh_error_set(FH_EINPUT, "prepare: --by applies to CSV data sets, not fmnist");
        st = data_load_fmnist(a->cache, &ds);
        if (st == FH_OK && a->train_rows > ds.train.n) {
            st = fh_error_set(FH_EINPUT, "prepare --train-rows %lld: Fashion-MNIST has %lld training rows", a->train_rows,
                              (long long)ds.train.n);
            data_free(&ds);
            return st;
        }
        if (st == FH_OK && a->train_rows > 0) ds.train.n = a->train_rows; /* the first N rows of the idx file */
    } else if (!strcmp(a->dataset, "lending_club") || !strcmp(a->dataset, "credit_data")) {
        int lc = !strcmp(a->dataset, "lending_club");
        snprintf(path, sizeof path, "%s/%s.csv", a->data_dir, a->dataset);
        if (!co.label) co.label = lc ? "Class" : "Status";
        if (!co.positive) co.positive = "bad";
        if (!co.by && po.kind == PART_NATURAL && lc) co.by = "addr_state";
        st = data_load_csv(path, &co, &ds);
        if (st == FH_OK) snprintf(ds.name, sizeof ds.name, "%s", a->dataset);
    } else if (!strcmp(a->dataset, "supermarket") || !strcmp(a->dataset, "ticdata")) { /* item sets */
        const int tic = !strcmp(a->dataset, "ticdata");
        data_items_opts io = {a->encoding && !strcmp(a->encoding, "multihot") ? DATA_ITEMS_MULTIHOT : DATA_ITEMS_INDEX,
                              a->by ? a->by : tic && po.kind == PART_NATURAL ? "MOSHOOFD" : NULL, a->test_frac,
                              (uint64_t)a->seed};
        snprintf(path, sizeof path, "%s/ticdata.csv", a->data_dir);
        st = tic ? data_load_ticdata(path, &io, &ds) : data_load_supermarket(a->data_dir, &io, &ds);
    } else if (!strncmp(a->dataset, "csv:", 4)) {
        if (!co.label) return fh_error_set(FH_EINPUT, "prepare %s: --label COLUMN is required for CSV data", a->dataset);
        st = data_load_csv(a->dataset + 4, &co, &ds);
    } else {
        return fh_error_set(FH_EINPUT, "prepare: unknown DATASET '%s' (expected fmnist, lending_club, credit_data, supermarket, ticdata or csv:PATH)", a->dataset);
    }
    if (st != FH_OK) {
        data_free(&ds);
        return st;
    }
    if (po.kind == PART_NATURAL) {
        if (!ds.row_key) {
            data_free(&ds);
            return fh_error_set(FH_EINPUT, "prepare: --partition natural needs --by COLUMN (a CSV column)");
        }
        po.clients = ds.nkeys;
    }
    int64_t n = ds.train.n;
    int32_t *client_of_row = malloc((size_t)(n ? n : 1) * sizeof *client_of_row);
    int64_t *perm = malloc((size_t)(n ? n : 1) * sizeof *perm);
    int64_t *offsets = malloc(((size_t)po.clients + 1) * sizeof *offsets);
    if (!client_of_row || !perm || !offsets) st = fh_error_set(FH_ENOMEM, "out of memory");
    if (st == FH_OK) st = part_assign(&po, ds.train.y, n, ds.nclasses, ds.row_key, ds.nkeys, client_of_row);
    if (st == FH_OK) st = part_layout(client_of_row, n, po.clients, perm, offsets);
    int32_t *cgroup = NULL;
    if (st == FH_OK && a->groups > 0) { /* latent groups: transform each client's rows */
        group_kind gk = GROUP_ROTATE;
        int32_t *row_group = malloc((size_t)(n ? n : 1) * sizeof *row_group);
        cgroup = malloc((size_t)po.clients * sizeof *cgroup);
        if (!row_group || !cgroup) st = fh_error_set(FH_ENOMEM, "out of memory");
        if (st == FH_OK) st = group_parse(a->group_transform, &gk);
        if (st == FH_OK) st = group_assign(po.clients, (int32_t)a->groups, (uint64_t)a->seed, cgroup);
        for (int64_t i = 0; st == FH_OK && i < n; i++) row_group[i] = cgroup[client_of_row[i]];
        if (st == FH_OK)
            st = group_apply(gk, (int32_t)a->groups, (uint64_t)a->seed, ds.nclasses, ds.train.d, ds.train.x, ds.train.y,
                             n, row_group);
        free(row_group);
    }
    int32_t ngroups = cgroup ? (int32_t)a->groups : 0;
    if (st == FH_OK && a->group_by) {
        cgroup = malloc((size_t)po.clients * sizeof *cgroup);
        double purity = 1;
        st = cgroup ? groups_from_column(&ds, a->group_by, client_of_row, po.clients, cgroup, &ngroups, &purity)
                    : fh_error_set(FH_ENOMEM, "out of memory");
        if (st == FH_OK)
            printf("prepare: --group-by %s: %d groups; %.1f %% of the training rows have their client's group (the "
                   "most frequent %s of its rows)\n", a->group_by, ngroups, 100 * purity, a->group_by);
    }
    if (st == FH_OK && a->group_map) {
        cgroup = malloc((size_t)po.clients * sizeof *cgroup);
        st = cgroup ? groups_from_map(a->group_map, ds.key_name, po.clients, cgroup, &ngroups)
                    : fh_error_set(FH_ENOMEM, "out of memory");
    }
    if (st == FH_OK) {
        io_data_meta meta;
        memset(&meta, 0, sizeof meta);
        snprintf(meta.dataset, sizeof meta.dataset, "%s", ds.name);
        snprintf(meta.partition, sizeof meta.partition, "%s", part_name(po.kind));
        meta.alpha = po.kind == PART_DIRICHLET || po.kind == PART_QUANTITY ? po.alpha : 0.0;
        meta.seed = a->seed;
        meta.clients = po.clients;
        meta.client_group = cgroup;
        meta.groups = cgroup ? ngroups : 0;
        meta.local_test_frac = a->local_test_frac;
        char *const *names = po.kind == PART_NATURAL ? ds.key_name : NULL;
        st = a->parties > 0 ? write_parties(a->out, (int32_t)a->parties, &ds, &meta, perm, offsets, names)
                            : io_data_write(a->out, &ds, &meta, perm, offsets, names);
    }
    if (st == FH_OK && ds.nonfinite_cells)
        fprintf(stderr, "prepare: note: %lld feature cells spell a non-finite number (nan, inf or out of range), "
                "treated as missing (the first: %s:%lld, column '%s')\n", (long long)ds.nonfinite_cells,
                a->dataset + (strncmp(a->dataset, "csv:", 4) == 0 ? 4 : 0), (long long)ds.nonfinite_line,
                ds.enc ? ds.enc->col_name[ds.nonfinite_col] : "?");
    if (st == FH_OK && ds.test.n == 0)
        fprintf(stderr, "prepare: warning: no test rows (--test-frac %g): runs on %s will report test metrics as nan\n",
                a->test_frac, a->out);
    if (st == FH_OK)
        printf("prepare: %s -> %s: %lld train rows, %lld test rows, %d features, %d classes, %d clients (%s)%s\n",
               ds.name, a->out, (long long)ds.train.n, (long long)ds.test.n, ds.train.d, ds.nclasses, po.clients,
               part_name(po.kind), a->parties > 0 ? "; training rows in one file per party (--parties)" : "");
    if (st == FH_OK && ds.val.n > 0) printf("prepare: %lld validation rows (/val, --val-frac %g)\n", (long long)ds.val.n, a->val_frac);
    free(cgroup);
    free(client_of_row);
    free(perm);
    free(offsets);
    data_free(&ds);
    return st;
}

int cmd_prepare(int argc, char **argv, const comm_t *world)
{
    for (int i = 1; i < argc; i++) /* vertical FL: its own options (src/cli/cmd_vertical.c) */
        if (!strcmp(argv[i], "--vertical")) return cmd_prepare_vertical(argc, argv, world);
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            if (world->rank == 0) fputs(USAGE, stdout);
            return 0;
        }
    prep_args a;
    fh_status st = parse_args(argc, argv, &a);
    /* preparing is one process's work; other ranks (if any) wait for its verdict */
    if (st == FH_OK && world->rank == 0) st = prepare(&a);
    st = comm_agree(world, st);
    return cli_report(world, "prepare", st);
}
