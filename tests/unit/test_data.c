/* Tests of src/data: Fashion-MNIST and CSV loaders, encodings, partitioners. */
#define _POSIX_C_SOURCE 200809L
#include "tests.h"

#include "fedhpc/data.h"
#include "fedhpc/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* ---- helpers --------------------------------------------------------------------------- */

/* A scratch path private to this rank (all ranks share g_test_tmpdir). */
static void tmp_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/r%d_%s", g_test_tmpdir, g_test_world.rank, name);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

/* Load a CSV written from `text`; the path is returned in path_out. */
static fh_status load_text(const char *name, const char *text, const data_csv_opts *o,
                           data_set *ds, char *path_out, size_t len)
{
    tmp_path(path_out, len, name);
    write_file(path_out, text);
    return data_load_csv(path_out, o, ds);
}

static int msg_has(const char *needle)
{
    if (strstr(fh_error_msg(), needle)) return 1;
    fprintf(stderr, "\n  message \"%s\" lacks \"%s\"\n", fh_error_msg(), needle);
    return 0;
}

static int32_t enc_col(const data_encoding *e, const char *name)
{
    for (int32_t j = 0; j < e->ncols; j++)
        if (strcmp(e->col_name[j], name) == 0) return j;
    return -1;
}

static void sizes_of(const int32_t *client, int64_t n, int32_t clients, int64_t *size)
{
    memset(size, 0, (size_t)clients * sizeof *size);
    for (int64_t i = 0; i < n; i++) {
        CU_ASSERT_FATAL(client[i] >= 0 && client[i] < clients);
        size[client[i]]++;
    }
}

/* n rows, nclasses balanced classes in a shuffled order ("fmnist-like"). */
static int32_t *balanced_labels(int64_t n, int32_t nclasses, uint64_t seed)
{
    int32_t *y = malloc((size_t)n * sizeof *y);
    uint32_t *idx = malloc((size_t)n * sizeof *idx);
    CU_ASSERT_FATAL(y && idx);
    for (int64_t i = 0; i < n; i++) idx[i] = (uint32_t)i;
    rng_t r = rng_stream(seed, 0, 0, RNG_INIT);
    rng_shuffle_u32(&r, idx, (size_t)n);
    for (int64_t i = 0; i < n; i++) y[idx[i]] = (int32_t)(i % nclasses);
    free(idx);
    return y;
}

/* ---- Fashion-MNIST --------------------------------------------------------------------- */

static void test_fmnist_load(void)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/data/cache/fashion-mnist", g_test_root);
    data_set ds;
    fh_status st = data_load_fmnist(dir, &ds);
    if (st != FH_OK) fprintf(stderr, "\n  %s\n", fh_error_msg());
    CU_ASSERT_EQUAL_FATAL(st, FH_OK);
    CU_ASSERT_STRING_EQUAL(ds.name, "fmnist");
    CU_ASSERT_EQUAL(ds.nclasses, 10);
    CU_ASSERT_STRING_EQUAL(ds.class_name[0], "T-shirt/top");
    CU_ASSERT_STRING_EQUAL(ds.class_name[9], "Ankle boot");
    CU_ASSERT_PTR_NULL(ds.enc);
    CU_ASSERT_PTR_NULL(ds.row_key);
    CU_ASSERT_EQUAL(ds.train.n, 60000);
    CU_ASSERT_EQUAL(ds.test.n, 10000);
    CU_ASSERT_EQUAL(ds.train.d, 784);
    CU_ASSERT_EQUAL(ds.test.d, 784);
    int64_t htrain[10] = {0}, htest[10] = {0};
    for (int64_t i = 0; i < ds.train.n; i++) htrain[ds.train.y[i]]++;
    for (int64_t i = 0; i < ds.test.n; i++) htest[ds.test.y[i]]++;
    for (int k = 0; k < 10; k++) {
        CU_ASSERT_EQUAL(htrain[k], 6000);
        CU_ASSERT_EQUAL(htest[k], 1000);
    }
    float lo = 1, hi = 0;
    double sum = 0;
    for (int64_t i = 0; i < ds.train.n * ds.train.d; i++) {
        float v = ds.train.x[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        sum += v;
    }
    CU_ASSERT_EQUAL(lo, 0.0f);
    CU_ASSERT_EQUAL(hi, 1.0f);
    double mean = sum / (double)(ds.train.n * ds.train.d);
    CU_ASSERT(mean > 0.2 && mean < 0.4); /* Fashion-MNIST mean pixel is about 0.286 */
    data_free(&ds);
    CU_ASSERT_PTR_NULL(ds.train.x);
    data_free(&ds); /* twice is harmless */
}

static void write_gz(const char *path, const unsigned char *bytes, size_t len)
{
    gzFile g = gzopen(path, "wb");
    CU_ASSERT_FATAL(g != NULL);
    CU_ASSERT(gzwrite(g, bytes, (unsigned)len) == (int)len);
    gzclose(g);
}

static void test_fmnist_bad_files(void)
{
    data_set ds;
    char dir[600], path[700];
    tmp_path(dir, sizeof dir, "fmnist_bad");
    mkdir(dir, 0700);
    /* missing files */
    CU_ASSERT_EQUAL(data_load_fmnist(dir, &ds), FH_EINPUT);
    CU_ASSERT(msg_has("train-images-idx3-ubyte.gz"));
    CU_ASSERT_PTR_NULL(ds.class_name);
    /* truncated images: header says 100 x 28 x 28, only 10 bytes of pixels */
    unsigned char img[16 + 10] = {0, 0, 8, 3, 0, 0, 0, 100, 0, 0, 0, 28, 0, 0, 0, 28};
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    write_gz(path, img, sizeof img);
    CU_ASSERT_EQUAL(data_load_fmnist(dir, &ds), FH_EINPUT);
    CU_ASSERT(msg_has("train-images-idx3-ubyte.gz: truncated"));
    /* bad magic */
    img[3] = 1;
    write_gz(path, img, sizeof img);
    CU_ASSERT_EQUAL(data_load_fmnist(dir, &ds), FH_EINPUT);
    CU_ASSERT(msg_has("bad magic"));
    /* valid 2-image file, label count mismatch */
    unsigned char ok[16 + 2 * 784] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28};
    write_gz(path, ok, sizeof ok);
    unsigned char lab[8 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3};
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte.gz", dir);
    write_gz(path, lab, sizeof lab);
    CU_ASSERT_EQUAL(data_load_fmnist(dir, &ds), FH_EINPUT);
    CU_ASSERT(msg_has("3 labels, expected 2"));
    CU_ASSERT_PTR_NULL(ds.train.x);
}

/* ---- CSV: real data -------------------------------------------------------------------- */

static void test_csv_lending_club(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/data/lending_club.csv", g_test_root);
    data_csv_opts o = {.label = "Class", .positive = "bad", .by = "addr_state", .test_frac = 0.2,
                       .seed = 7};
    data_set ds;
    fh_status st = data_load_csv(path, &o, &ds);
    if (st != FH_OK) fprintf(stderr, "\n  %s\n", fh_error_msg());
    CU_ASSERT_EQUAL_FATAL(st, FH_OK);
    CU_ASSERT_EQUAL(ds.train.n + ds.test.n, 9857);
    CU_ASSERT_EQUAL(ds.test.n, 1971); /* round(0.2 * 9857) */
    CU_ASSERT_EQUAL(ds.nclasses, 2);
    CU_ASSERT_STRING_EQUAL(ds.class_name[0], "not bad");
    CU_ASSERT_STRING_EQUAL(ds.class_name[1], "bad");
    CU_ASSERT(strncmp(ds.name, "csv:", 4) == 0);
    int64_t pos = 0;
    for (int64_t i = 0; i < ds.train.n; i++) pos += ds.train.y[i];
    for (int64_t i = 0; i < ds.test.n; i++) pos += ds.test.y[i];
    CU_ASSERT_EQUAL(pos, 517);
    /* natural grouping */
    CU_ASSERT_EQUAL(ds.nkeys, 50);
    CU_ASSERT_FATAL(ds.row_key != NULL);
    for (int32_t k = 1; k < ds.nkeys; k++) CU_ASSERT(strcmp(ds.key_name[k - 1], ds.key_name[k]) < 0);
    int64_t bad_key = 0;
    for (int64_t i = 0; i < ds.train.n; i++) bad_key += ds.row_key[i] < 0 || ds.row_key[i] >= 50;
    CU_ASSERT_EQUAL(bad_key, 0);
    /* encoding */
    const data_encoding *e = ds.enc;
    CU_ASSERT_FATAL(e != NULL);
    CU_ASSERT_EQUAL(e->ncols, 23);
    CU_ASSERT_EQUAL(e->d, ds.train.d);
    CU_ASSERT_EQUAL(e->kind[enc_col(e, "Class")], COL_LABEL);
    CU_ASSERT_EQUAL(e->kind[enc_col(e, "addr_state")], COL_DROPPED);
    CU_ASSERT_EQUAL(e->first_feature[enc_col(e, "addr_state")], -1);
    int32_t term = enc_col(e, "term"), rate = enc_col(e, "int_rate");
    CU_ASSERT_EQUAL_FATAL(e->kind[term], COL_CATEGORICAL);
    CU_ASSERT_EQUAL(e->ncat[term], 2);
    CU_ASSERT_STRING_EQUAL(e->feature_name[e->first_feature[term]], "term=term_36");
    CU_ASSERT_EQUAL_FATAL(e->kind[rate], COL_NUMERIC);
    CU_ASSERT_STRING_EQUAL(e->feature_name[e->first_feature[rate]], "int_rate");
    CU_ASSERT(e->mean[rate] > 5 && e->mean[rate] < 25);
    int32_t width = 0;
    for (int32_t j = 0; j < e->ncols; j++)
        width += e->kind[j] == COL_NUMERIC ? 1 : e->kind[j] == COL_CATEGORICAL ? e->ncat[j] : 0;
    CU_ASSERT_EQUAL(width, e->d);
    /* numeric features have mean 0 and std 1 (or are constant) on the training rows;
     * every training row has exactly one hot category per categorical column */
    int64_t n = ds.train.n;
    for (int32_t j = 0; j < e->ncols; j++) {
        int32_t f = e->first_feature[j];
        if (e->kind[j] == COL_NUMERIC) {
            double s = 0, s2 = 0;
            for (int64_t i = 0; i < n; i++) {
                double v = ds.train.x[i * e->d + f];
                s += v;
                s2 += v * v;
            }
            CU_ASSERT_DOUBLE_EQUAL(s / (double)n, 0.0, 1e-4);
            double var = s2 / (double)n;
            CU_ASSERT(fabs(var - 1.0) < 1e-3 || var < 1e-9);
        } else if (e->kind[j] == COL_CATEGORICAL) {
            int64_t bad_rows = 0;
            for (int64_t i = 0; i < n; i++) {
                float hot = 0;
                for (int32_t k = 0; k < e->ncat[j]; k++) hot += ds.train.x[i * e->d + f + k];
                bad_rows += hot != 1.0f;
            }
            CU_ASSERT_EQUAL(bad_rows, 0);
        }
    }
    /* same seed: same split; another seed: another split */
    data_set again, other;
    CU_ASSERT_EQUAL_FATAL(data_load_csv(path, &o, &again), FH_OK);
    o.seed = 8;
    CU_ASSERT_EQUAL_FATAL(data_load_csv(path, &o, &other), FH_OK);
    size_t bytes = (size_t)(ds.test.n * ds.test.d) * sizeof(float);
    CU_ASSERT(memcmp(ds.test.x, again.test.x, bytes) == 0);
    CU_ASSERT(memcmp(ds.row_key, again.row_key, (size_t)n * sizeof *ds.row_key) == 0);
    CU_ASSERT_EQUAL(other.test.n, ds.test.n);
    CU_ASSERT(memcmp(ds.test.x, other.test.x, bytes) != 0);
    data_free(&ds);
    data_free(&again);
    data_free(&other);
}

static void test_csv_credit_data_imputation(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/data/credit_data.csv", g_test_root);
    data_csv_opts o = {.label = "Status", .test_frac = 0.0, .seed = 1};
    data_set ds;
    fh_status st = data_load_csv(path, &o, &ds);
    if (st != FH_OK) fprintf(stderr, "\n  %s\n", fh_error_msg());
    CU_ASSERT_EQUAL_FATAL(st, FH_OK);
    CU_ASSERT_EQUAL(ds.train.n, 4454);
    CU_ASSERT_EQUAL(ds.test.n, 0);
    CU_ASSERT_EQUAL(ds.nclasses, 2);
    CU_ASSERT_STRING_EQUAL(ds.class_name[0], "bad");
    CU_ASSERT_STRING_EQUAL(ds.class_name[1], "good");
    CU_ASSERT_PTR_NULL(ds.row_key);
    const data_encoding *e = ds.enc;
    int32_t inc = enc_col(e, "Income"), home = enc_col(e, "Home");
    CU_ASSERT_EQUAL_FATAL(e->kind[inc], COL_NUMERIC);
    CU_ASSERT_EQUAL_FATAL(e->kind[home], COL_CATEGORICAL);
    /* Income has 381 empty cells: all imputed with the mean, i.e. exactly 0 (no real income
     * equals the non-integer mean) */
    CU_ASSERT(e->mean[inc] != floor(e->mean[inc]));
    int64_t zeros = 0, nonfinite = 0;
    for (int64_t i = 0; i < ds.train.n; i++)
        zeros += ds.train.x[i * e->d + e->first_feature[inc]] == 0.0f;
    for (int64_t i = 0; i < ds.train.n * e->d; i++) nonfinite += !isfinite(ds.train.x[i]);
    CU_ASSERT_EQUAL(zeros, 381);
    CU_ASSERT_EQUAL(nonfinite, 0);
    /* Home has 6 empty cells: imputed with the most frequent category, one hot per row */
    int32_t mode = e->mode[home];
    CU_ASSERT_FATAL(mode >= 0 && mode < e->ncat[home]);
    int64_t at_mode = 0, bad_rows = 0;
    for (int64_t i = 0; i < ds.train.n; i++) {
        const float *x = ds.train.x + i * e->d + e->first_feature[home];
        float hot = 0;
        for (int32_t k = 0; k < e->ncat[home]; k++) hot += x[k];
        bad_rows += hot != 1.0f;
        at_mode += x[mode] == 1.0f;
    }
    CU_ASSERT_EQUAL(bad_rows, 0);
    for (int32_t k = 0; k < e->ncat[home]; k++) {
        int64_t cnt = 0;
        for (int64_t i = 0; i < ds.train.n; i++)
            cnt += ds.train.x[i * e->d + e->first_feature[home] + k] == 1.0f;
        if (k != mode) CU_ASSERT(cnt < at_mode - 6);
    }
    data_free(&ds);
}

/* ---- CSV: small files with known answers ----------------------------------------------- */

static void test_csv_exact_encoding(void)
{
    const char *text = "\xEF\xBB\xBF" "a,b,\"c\",label\r\n"
                       "1,x,\"q,1\",yes\r\n"
                       "NA,y,\"q,1\",no\r\n"
                       "\r\n"
                       "3,,\"say \"\"hi\"\"\",yes\r\n"
                       " ? , x ,\"q,1\",no\r\n"
                       "\r\n";
    data_csv_opts o = {.label = "label", .test_frac = 0.0, .seed = 3};
    data_set ds;
    char path[700];
    fh_status st = load_text("exact.csv", text, &o, &ds, path, sizeof path);
    if (st != FH_OK) fprintf(stderr, "\n  %s\n", fh_error_msg());
    CU_ASSERT_EQUAL_FATAL(st, FH_OK);
    CU_ASSERT_EQUAL_FATAL(ds.train.n, 4);
    CU_ASSERT_EQUAL_FATAL(ds.train.d, 5);
    const data_encoding *e = ds.enc;
    const char *names[5] = {"a", "b=x", "b=y", "c=q,1", "c=say \"hi\""};
    for (int f = 0; f < 5; f++) CU_ASSERT_STRING_EQUAL(e->feature_name[f], names[f]);
    CU_ASSERT_DOUBLE_EQUAL(e->mean[0], 2.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(e->std[0], 1.0, 1e-12);
    CU_ASSERT_EQUAL(e->kind[3], COL_LABEL);
    CU_ASSERT_EQUAL(e->mode[1], 0); /* x: 2 of 3 non-missing */
    const float want[4][5] = {{-1, 1, 0, 1, 0}, {0, 0, 1, 1, 0}, {1, 1, 0, 0, 1}, {0, 1, 0, 1, 0}};
    const int32_t want_y[4] = {1, 0, 1, 0};
    for (int i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(ds.train.y[i], want_y[i]);
        for (int f = 0; f < 5; f++) CU_ASSERT_DOUBLE_EQUAL(ds.train.x[i * 5 + f], want[i][f], 1e-6);
    }
    CU_ASSERT_STRING_EQUAL(ds.class_name[0], "no");
    CU_ASSERT_STRING_EQUAL(ds.class_name[1], "yes");
    data_free(&ds);
}

/* Numeric labels sort numerically; numeric keys likewise. */
static void test_csv_numeric_labels_and_keys(void)
{
    const char *text = "v,g,y\n1,10,2\n2,9,10\n3,10,1\n4,9,2\n5,100,10\n";
    data_csv_opts o = {.label = "y", .by = "g", .test_frac = 0.0, .seed = 1};
    data_set ds;
    char path[700];
    CU_ASSERT_EQUAL_FATAL(load_text("numlab.csv", text, &o, &ds, path, sizeof path), FH_OK);
    CU_ASSERT_EQUAL_FATAL(ds.nclasses, 3);
    CU_ASSERT_STRING_EQUAL(ds.class_name[0], "1");
    CU_ASSERT_STRING_EQUAL(ds.class_name[1], "2");
    CU_ASSERT_STRING_EQUAL(ds.class_name[2], "10");
    const int32_t want_y[5] = {1, 2, 0, 1, 2}, want_key[5] = {1, 0, 1, 0, 2};
    CU_ASSERT_EQUAL_FATAL(ds.nkeys, 3);
    CU_ASSERT_STRING_EQUAL(ds.key_name[2], "100");
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_EQUAL(ds.train.y[i], want_y[i]);
        CU_ASSERT_EQUAL(ds.row_key[i], want_key[i]);
    }
    CU_ASSERT_EQUAL(ds.train.d, 1); /* g is not a feature */
    data_free(&ds);
}

/* Split keeps file order; a category seen only in test rows encodes as all zeros. */
static void test_csv_split_and_unseen_category(void)
{
    char text[2048] = "a,c,y\n";
    for (int i = 0; i < 20; i++) {
        char row[64];
        snprintf(row, sizeof row, "%d,%s,%s\n", i, i == 0 ? "rare" : "common", i % 2 ? "p" : "q");
        strcat(text, row);
    }
    char path[700];
    int found = 0;
    for (uint64_t seed = 1; seed < 100 && !found; seed++) {
        data_csv_opts o = {.label = "y", .test_frac = 0.5, .seed = seed};
        data_set ds;
        CU_ASSERT_EQUAL_FATAL(load_text("split.csv", text, &o, &ds, path, sizeof path), FH_OK);
        CU_ASSERT_EQUAL(ds.train.n, 10);
        CU_ASSERT_EQUAL(ds.test.n, 10);
        const data_encoding *e = ds.enc;
        /* raw a recovered from the standardised feature: increasing = file order */
        double prev = -1;
        int ordered = 1;
        for (int64_t i = 0; i < ds.test.n; i++) {
            double a = ds.test.x[i * e->d] * e->std[0] + e->mean[0];
            ordered &= a > prev;
            prev = a;
            if (fabs(a) < 1e-4 && e->ncat[1] == 1) { /* row 0 ("rare") went to test */
                CU_ASSERT_STRING_EQUAL(e->cat[1][0], "common");
                CU_ASSERT_EQUAL(ds.test.x[i * e->d + 1], 0.0f);
                found = 1;
            }
        }
        CU_ASSERT(ordered);
        data_free(&ds);
    }
    CU_ASSERT(found);
}

static void test_csv_errors(void)
{
    data_set ds;
    char path[700], want[800];
    data_csv_opts o = {.label = "y", .test_frac = 0.2, .seed = 1};

    CU_ASSERT_EQUAL(load_text("ragged.csv", "a,b,y\n1,2,p\n3,q\n", &o, &ds, path, sizeof path),
                    FH_EINPUT);
    snprintf(want, sizeof want, "%s:3: expected 3 fields, found 2", path);
    CU_ASSERT(msg_has(want));
    CU_ASSERT_PTR_NULL(ds.train.x);
    CU_ASSERT_PTR_NULL(ds.enc);

    CU_ASSERT_EQUAL(load_text("nolabel.csv", "a,b\n1,2\n", &o, &ds, path, sizeof path), FH_EINPUT);
    CU_ASSERT(msg_has("label column 'y' not found"));
    CU_ASSERT(msg_has(path));

    CU_ASSERT_EQUAL(load_text("empty.csv", "", &o, &ds, path, sizeof path), FH_EINPUT);
    CU_ASSERT(msg_has("empty file"));
    CU_ASSERT_EQUAL(load_text("header.csv", "a,y\n\n", &o, &ds, path, sizeof path), FH_EINPUT);
    CU_ASSERT(msg_has("no data rows"));

    CU_ASSERT_EQUAL(load_text("nalabel.csv", "a,y\n1,p\n2,NA\n3,q\n", &o, &ds, path, sizeof path),
                    FH_EINPUT);
    snprintf(want, sizeof want, "%s:3: missing value in label column 'y'", path);
    CU_ASSERT(msg_has(want));

    CU_ASSERT_EQUAL(load_text("quote.csv", "a,y\n1,p\n\"2,q\n", &o, &ds, path, sizeof path),
                    FH_EINPUT);
    CU_ASSERT(msg_has(":3: unterminated quoted field"));

    CU_ASSERT_EQUAL(load_text("dup.csv", "a,a,y\n1,2,p\n", &o, &ds, path, sizeof path), FH_EINPUT);
    CU_ASSERT(msg_has("duplicate column name 'a'"));

    data_csv_opts op = o;
    op.positive = "zz";
    CU_ASSERT_EQUAL(load_text("pos.csv", "a,y\n1,p\n2,q\n", &op, &ds, path, sizeof path), FH_EINPUT);
    CU_ASSERT(msg_has("'zz'"));
    data_csv_opts ob = o;
    ob.by = "grp";
    CU_ASSERT_EQUAL(load_text("by.csv", "a,y\n1,p\n2,q\n", &ob, &ds, path, sizeof path), FH_EINPUT);
    CU_ASSERT(msg_has("'grp' not found"));
    data_csv_opts of = o;
    of.test_frac = 1.0;
    CU_ASSERT_EQUAL(load_text("frac.csv", "a,y\n1,p\n2,q\n", &of, &ds, path, sizeof path), FH_EINPUT);

    tmp_path(path, sizeof path, "does_not_exist.csv");
    CU_ASSERT_EQUAL(data_load_csv(path, &o, &ds), FH_EINPUT);
    CU_ASSERT(msg_has(path));
}

/* Issue 17: a numeric column with nan / inf / -inf / 1e999 cells stays numeric; those cells
 * are missing (imputed, counted, first one located); in the label column they are refused. */
static void test_csv_nonfinite_cells(void)
{
    data_set ds;
    char path[700], want[800];
    data_csv_opts o = {.label = "y", .test_frac = 0.0, .seed = 1};
    CU_ASSERT_EQUAL_FATAL(load_text("nonfinite.csv",
                                    "a,b,y\n1,2,p\n3,NaN,q\n5,inf,p\n7,-inf,q\n1e999,-Infinity,p\n",
                                    &o, &ds, path, sizeof path), FH_OK);
    CU_ASSERT_EQUAL(ds.enc->kind[0], COL_NUMERIC);
    CU_ASSERT_EQUAL(ds.enc->kind[1], COL_NUMERIC);
    CU_ASSERT_EQUAL(ds.train.d, 2); /* not one-hot */
    CU_ASSERT_EQUAL(ds.nonfinite_cells, 5);
    CU_ASSERT_EQUAL(ds.nonfinite_line, 3);
    CU_ASSERT_EQUAL(ds.nonfinite_col, 1);
    CU_ASSERT_DOUBLE_EQUAL(ds.enc->mean[0], 4.0, 1e-12); /* 1, 3, 5, 7 */
    CU_ASSERT_DOUBLE_EQUAL(ds.enc->mean[1], 2.0, 1e-12);
    for (int64_t i = 0; i < ds.train.n * ds.train.d; i++) CU_ASSERT(isfinite(ds.train.x[i]));
    CU_ASSERT_EQUAL(ds.train.x[4 * 2 + 0], 0.0f); /* 1e999 -> the mean */
    data_free(&ds);
    CU_ASSERT_EQUAL(load_text("nanlabel.csv", "a,y\n1,p\n2,nan\n3,q\n", &o, &ds, path, sizeof path), FH_EINPUT);
    snprintf(want, sizeof want, "%s:3: missing value 'nan' in label column 'y'", path);
    CU_ASSERT(msg_has(want));
    /* --positive on a label column with a single value: no negatives */
    data_csv_opts op = o;
    op.positive = "p";
    CU_ASSERT_EQUAL(load_text("onelabel.csv", "a,y\n1,p\n2,p\n", &op, &ds, path, sizeof path), FH_EINPUT);
    CU_ASSERT(msg_has("is 'p' in every row: --positive p leaves no negative rows"));
    /* a directory is not a CSV file */
    CU_ASSERT_EQUAL(data_load_csv(g_test_tmpdir, &o, &ds), FH_EINPUT);
    CU_ASSERT(msg_has("is a directory (expected a CSV file)"));
}

/* ---- partitioners ---------------------------------------------------------------------- */

static void test_part_parse_and_name(void)
{
    const char *names[] = {"iid", "dirichlet", "shards", "natural", "quantity"};
    for (int k = 0; k < 5; k++) {
        part_kind p;
        CU_ASSERT_EQUAL(part_parse(names[k], &p), FH_OK);
        CU_ASSERT_EQUAL((int)p, k);
        CU_ASSERT_STRING_EQUAL(part_name(p), names[k]);
    }
    part_kind p;
    CU_ASSERT_EQUAL(part_parse("random", &p), FH_EINPUT);
    CU_ASSERT(msg_has("'random'"));
}

/* Assign with `o` and check every row gets one valid client (via part_layout). */
static void assign_checked(const part_opts *o, const int32_t *y, int64_t n, int32_t nclasses,
                           int32_t *client, int64_t *size)
{
    fh_status st = part_assign(o, y, n, nclasses, NULL, 0, client);
    if (st != FH_OK) fprintf(stderr, "\n  %s\n", fh_error_msg());
    CU_ASSERT_EQUAL_FATAL(st, FH_OK);
    sizes_of(client, n, o->clients, size);
    int64_t *perm = malloc((size_t)n * sizeof *perm);
    int64_t *off = malloc(((size_t)o->clients + 1) * sizeof *off);
    char *seen = calloc((size_t)n, 1);
    CU_ASSERT_FATAL(perm && off && seen);
    CU_ASSERT_EQUAL_FATAL(part_layout(client, n, o->clients, perm, off), FH_OK);
    CU_ASSERT_EQUAL(off[0], 0);
    CU_ASSERT_EQUAL(off[o->clients], n);
    int64_t wrong = 0;
    for (int32_t c = 0; c < o->clients; c++) {
        CU_ASSERT_EQUAL(off[c + 1] - off[c], size[c]);
        for (int64_t k = off[c]; k < off[c + 1]; k++) {
            wrong += client[perm[k]] != c || seen[perm[k]];
            seen[perm[k]] = 1;
        }
    }
    CU_ASSERT_EQUAL(wrong, 0);
    free(perm);
    free(off);
    free(seen);
}

static void test_part_iid(void)
{
    const int64_t n = 1003;
    int32_t *y = balanced_labels(n, 10, 1), a[1003], b[1003], c[1003];
    int64_t size[10];
    part_opts o = {.kind = PART_IID, .clients = 10, .seed = 5};
    assign_checked(&o, y, n, 10, a, size);
    for (int k = 0; k < 10; k++) CU_ASSERT(size[k] == 100 || size[k] == 101);
    assign_checked(&o, y, n, 10, b, size);
    CU_ASSERT(memcmp(a, b, sizeof a) == 0);
    o.seed = 6;
    assign_checked(&o, y, n, 10, c, size);
    CU_ASSERT(memcmp(a, c, sizeof a) != 0);
    /* impossible requests */
    o.clients = 0;
    CU_ASSERT_EQUAL(part_assign(&o, y, n, 10, NULL, 0, c), FH_EINPUT);
    o.clients = 1004;
    CU_ASSERT_EQUAL(part_assign(&o, y, n, 10, NULL, 0, c), FH_EINPUT);
    CU_ASSERT(msg_has("1003 rows among 1004 clients"));
    free(y);
}

/* Mean over clients of the largest class fraction of the client's rows. */
static double mean_max_class_fraction(const int32_t *client, const int32_t *y, int64_t n,
                                      int32_t clients, int32_t nclasses)
{
    int64_t *h = calloc((size_t)clients * (size_t)nclasses, sizeof *h);
    CU_ASSERT_FATAL(h != NULL);
    for (int64_t i = 0; i < n; i++) h[(int64_t)client[i] * nclasses + y[i]]++;
    double acc = 0;
    for (int32_t c = 0; c < clients; c++) {
        int64_t tot = 0, mx = 0;
        for (int32_t k = 0; k < nclasses; k++) {
            tot += h[c * nclasses + k];
            if (h[c * nclasses + k] > mx) mx = h[c * nclasses + k];
        }
        acc += tot ? (double)mx / (double)tot : 0;
    }
    free(h);
    return acc / clients;
}

static void test_part_dirichlet(void)
{
    const int64_t n = 6000;
    int32_t *y = balanced_labels(n, 10, 2);
    int32_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    CU_ASSERT_FATAL(a && b);
    int64_t size[20];
    part_opts o = {.kind = PART_DIRICHLET, .clients = 20, .alpha = 0.1, .seed = 11, .min_size = 10};
    assign_checked(&o, y, n, 10, a, size);
    for (int c = 0; c < 20; c++) CU_ASSERT(size[c] >= 10);
    double skew_small = mean_max_class_fraction(a, y, n, 20, 10);
    assign_checked(&o, y, n, 10, b, size);
    CU_ASSERT(memcmp(a, b, n * sizeof *a) == 0);
    o.seed = 12;
    assign_checked(&o, y, n, 10, b, size);
    CU_ASSERT(memcmp(a, b, n * sizeof *a) != 0);
    o.alpha = 100;
    assign_checked(&o, y, n, 10, b, size);
    double skew_large = mean_max_class_fraction(b, y, n, 20, 10);
    CU_ASSERT(skew_small > 0.6);
    CU_ASSERT(skew_large < 0.25);
    CU_ASSERT(skew_small > skew_large + 0.3);
    /* unreachable: more rows demanded than exist, and (with tiny alpha) practically so */
    o.min_size = 301;
    CU_ASSERT_EQUAL(part_assign(&o, y, n, 10, NULL, 0, b), FH_EINPUT);
    CU_ASSERT(msg_has("min_size"));
    o.alpha = 0.01;
    o.clients = 50;
    o.min_size = 1;
    CU_ASSERT_EQUAL(part_assign(&o, y, 1000, 10, NULL, 0, b), FH_EINPUT);
    CU_ASSERT(msg_has("min_size 1 unreachable"));
    free(y);
    free(a);
    free(b);
}

static void test_part_shards(void)
{
    const int64_t n = 6000;
    int32_t *y = balanced_labels(n, 10, 3);
    int32_t *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    CU_ASSERT_FATAL(a && b);
    int64_t size[30];
    part_opts o = {.kind = PART_SHARDS, .clients = 30, .seed = 4};
    assign_checked(&o, y, n, 10, a, size);
    for (int c = 0; c < 30; c++) CU_ASSERT_EQUAL(size[c], 200);
    int labels_per_client[30] = {0}, has[30][10] = {{0}};
    for (int64_t i = 0; i < n; i++) has[a[i]][y[i]] = 1;
    int two = 0;
    for (int c = 0; c < 30; c++) {
        for (int k = 0; k < 10; k++) labels_per_client[c] += has[c][k];
        CU_ASSERT(labels_per_client[c] >= 1 && labels_per_client[c] <= 2);
        two += labels_per_client[c] == 2;
    }
    CU_ASSERT(two > 10); /* most clients get two different labels */
    assign_checked(&o, y, n, 10, b, size);
    CU_ASSERT(memcmp(a, b, n * sizeof *a) == 0);
    o.seed = 5;
    assign_checked(&o, y, n, 10, b, size);
    CU_ASSERT(memcmp(a, b, n * sizeof *a) != 0);
    o.clients = 3001;
    CU_ASSERT_EQUAL(part_assign(&o, y, n, 10, NULL, 0, b), FH_EINPUT);
    free(y);
    free(a);
    free(b);
}

static void test_part_quantity(void)
{
    const int64_t n = 1000;
    int32_t *y = balanced_labels(n, 10, 4), a[1000], b[1000];
    int64_t size[10];
    part_opts o = {.kind = PART_QUANTITY, .clients = 10, .alpha = 1.0, .seed = 9, .min_size = 20};
    assign_checked(&o, y, n, 10, a, size);
    int64_t tot = 0, lo = n, hi = 0;
    for (int c = 0; c < 10; c++) {
        tot += size[c];
        CU_ASSERT(size[c] >= 20);
        if (size[c] < lo) lo = size[c];
        if (size[c] > hi) hi = size[c];
    }
    CU_ASSERT_EQUAL(tot, n);
    CU_ASSERT(hi > 2 * lo); /* sigma 1: clearly unequal */
    assign_checked(&o, y, n, 10, b, size);
    CU_ASSERT(memcmp(a, b, sizeof a) == 0);
    o.alpha = 0; /* no skew: equal sizes */
    assign_checked(&o, y, n, 10, b, size);
    for (int c = 0; c < 10; c++) CU_ASSERT_EQUAL(size[c], 100);
    o.min_size = 101;
    CU_ASSERT_EQUAL(part_assign(&o, y, n, 10, NULL, 0, b), FH_EINPUT);
    CU_ASSERT(msg_has("min_size 101"));
    free(y);
}

static void test_part_natural(void)
{
    const int32_t y[6] = {0, 1, 0, 1, 0, 1}, key[6] = {2, 0, 1, 2, 2, 0};
    int32_t c[6];
    part_opts o = {.kind = PART_NATURAL, .clients = 99, .seed = 1};
    CU_ASSERT_EQUAL_FATAL(part_assign(&o, y, 6, 2, key, 3, c), FH_OK);
    CU_ASSERT(memcmp(c, key, sizeof c) == 0);
    CU_ASSERT_EQUAL(part_assign(&o, y, 6, 2, NULL, 0, c), FH_EINPUT);
    CU_ASSERT(msg_has("--by"));
}

static void test_part_layout(void)
{
    const int32_t client[6] = {2, 0, 1, 0, 2, 2};
    int64_t perm[6], off[5];
    CU_ASSERT_EQUAL_FATAL(part_layout(client, 6, 4, perm, off), FH_OK);
    const int64_t want_perm[6] = {1, 3, 2, 0, 4, 5}, want_off[5] = {0, 2, 3, 6, 6};
    CU_ASSERT(memcmp(perm, want_perm, sizeof perm) == 0);
    CU_ASSERT(memcmp(off, want_off, sizeof off) == 0);
    const int32_t bad[2] = {0, 4};
    CU_ASSERT_NOT_EQUAL(part_layout(bad, 2, 4, perm, off), FH_OK);
}

void tests_register_data(void)
{
    CU_pSuite s = CU_add_suite("data", NULL, NULL);
    tests_add(s, "fmnist_load", test_fmnist_load);
    tests_add(s, "fmnist_bad_files", test_fmnist_bad_files);
    tests_add(s, "csv_lending_club", test_csv_lending_club);
    tests_add(s, "csv_credit_data_imputation", test_csv_credit_data_imputation);
    tests_add(s, "csv_exact_encoding", test_csv_exact_encoding);
    tests_add(s, "csv_numeric_labels_and_keys", test_csv_numeric_labels_and_keys);
    tests_add(s, "csv_split_and_unseen_category", test_csv_split_and_unseen_category);
    tests_add(s, "csv_errors", test_csv_errors);
    tests_add(s, "csv_nonfinite_cells", test_csv_nonfinite_cells);
    tests_add(s, "part_parse_and_name", test_part_parse_and_name);
    tests_add(s, "part_iid", test_part_iid);
    tests_add(s, "part_dirichlet", test_part_dirichlet);
    tests_add(s, "part_shards", test_part_shards);
    tests_add(s, "part_quantity", test_part_quantity);
    tests_add(s, "part_natural", test_part_natural);
    tests_add(s, "part_layout", test_part_layout);
}
