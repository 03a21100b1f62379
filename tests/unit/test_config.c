/* Tests of src/config: defaults, INI files, overrides, errors, the training hash. */
#define _POSIX_C_SOURCE 200809L /* open_memstream, strtok */
#include "tests.h"

#include "fedhpc/config.h"
#include "fedhpc/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
}

static void test_defaults(void)
{
    config_t c;
    config_defaults(&c);
    CU_ASSERT_EQUAL(c.train.rounds, 50);
    CU_ASSERT_EQUAL(c.train.clients_per_round, 10);
    CU_ASSERT_EQUAL(c.model.nhidden, 2);
    CU_ASSERT_EQUAL(c.model.hidden[0], 200);
    CU_ASSERT_EQUAL(c.fl.algorithm, ALG_FEDAVG);
    CU_ASSERT_DOUBLE_EQUAL(c.train.lr, 0.05, 0);
    CU_ASSERT_STRING_EQUAL(c.output.dir, "runs/default");
}

static void test_load_and_override(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/c%d.ini", g_test_tmpdir, g_test_world.rank);
    write_file(path, "; comment\n[data]\nfile = a.h5\n[model]\ntype = logreg\nhidden = 64, 32 ,16\n"
                     "[train]\nrounds = 7\nlr = 0.125\n[fl]\nalgorithm = scaffold\n");
    config_t c;
    config_defaults(&c);
    CU_ASSERT_EQUAL_FATAL(config_load(&c, path), FH_OK);
    CU_ASSERT_STRING_EQUAL(c.data.file, "a.h5");
    CU_ASSERT_EQUAL(c.model.type, 0);
    CU_ASSERT_EQUAL(c.model.nhidden, 3);
    CU_ASSERT_EQUAL(c.model.hidden[2], 16);
    CU_ASSERT_EQUAL(c.train.rounds, 7);
    CU_ASSERT_DOUBLE_EQUAL(c.train.lr, 0.125, 0);
    CU_ASSERT_EQUAL(c.fl.algorithm, ALG_SCAFFOLD);
    CU_ASSERT_EQUAL(config_override(&c, "train.rounds=9"), FH_OK);
    CU_ASSERT_EQUAL(c.train.rounds, 9);
    CU_ASSERT_EQUAL(config_override(&c, "fl.algorithm = fedyogi"), FH_OK);
    CU_ASSERT_EQUAL(c.fl.algorithm, ALG_FEDYOGI);
    CU_ASSERT_EQUAL(config_validate(&c, path), FH_OK);
}

static void test_errors_name_file_line_and_key(void)
{
    char path[600];
    snprintf(path, sizeof path, "%s/e%d.ini", g_test_tmpdir, g_test_world.rank);
    write_file(path, "[train]\nrounds = 3\nlr = fast\n");
    config_t c;
    config_defaults(&c);
    CU_ASSERT_EQUAL(config_load(&c, path), FH_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), ":3: [train] lr: expected a number"));
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), path));
    write_file(path, "[train]\nrate = 3\n");
    CU_ASSERT_EQUAL(config_load(&c, path), FH_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), ":2: unknown key 'rate' in [train]"));
    CU_ASSERT_EQUAL(config_override(&c, "model.hidden=0"), FH_EINPUT);
    CU_ASSERT_EQUAL(config_override(&c, "model.hidden=1,2,3,4,5,6,7,8,9"), FH_EINPUT);
    CU_ASSERT_EQUAL(config_override(&c, "train.rounds=2.5"), FH_EINPUT);
    CU_ASSERT_EQUAL(config_override(&c, "x.y=1"), FH_EINPUT);
    config_defaults(&c);
    CU_ASSERT_EQUAL(config_validate(&c, "f.ini"), FH_EINPUT); /* no data file */
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), "[data] file"));
    /* DP-SGD with the CNN is refused (issue 12: every clipped gradient was NaN, every update
     * rejected, and the run exited 0 having trained nothing) */
    snprintf(c.data.file, sizeof c.data.file, "d.h5");
    c.privacy.mode = 2;
    c.model.type = MODEL_CNN;
    CU_ASSERT_EQUAL(config_validate(&c, "f.ini"), FH_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), "[privacy] mode = sample"));
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), "[model] type = cnn"));
    c.model.type = MODEL_MLP;
    CU_ASSERT_EQUAL(config_validate(&c, "f.ini"), FH_OK);
    c.model.type = MODEL_CNN;
    c.privacy.mode = 1;
    CU_ASSERT_EQUAL(config_validate(&c, "f.ini"), FH_OK);
}

static void test_write_reload_roundtrip_and_hash(void)
{
    config_t a, b;
    config_defaults(&a);
    CU_ASSERT_EQUAL(config_override(&a, "data.file=x.h5"), FH_OK);
    CU_ASSERT_EQUAL(config_override(&a, "train.lr=0.1"), FH_OK);
    CU_ASSERT_EQUAL(config_override(&a, "model.hidden=5,6"), FH_OK);
    char path[600];
    snprintf(path, sizeof path, "%s/w%d.ini", g_test_tmpdir, g_test_world.rank);
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    config_write(&a, f);
    fclose(f);
    config_defaults(&b);
    CU_ASSERT_EQUAL_FATAL(config_load(&b, path), FH_OK);
    CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof a), 0);
    uint64_t h = config_train_hash(&a);
    CU_ASSERT_EQUAL(config_override(&b, "output.dir=elsewhere"), FH_OK);
    CU_ASSERT_EQUAL(config_train_hash(&b), h); /* output settings do not change training */
    CU_ASSERT_EQUAL(config_override(&b, "train.seed=2"), FH_OK);
    CU_ASSERT_NOT_EQUAL(config_train_hash(&b), h);
}

/* Issue 17: lines of any length; every malformed line named with its real cause and line. */
static void test_long_lines_and_syntax_errors(void)
{
    char path[600], text[4096], longp[301];
    snprintf(path, sizeof path, "%s/l%d.ini", g_test_tmpdir, g_test_world.rank);
    memset(longp, 'p', 300);
    longp[0] = '/';
    longp[300] = 0;
    snprintf(text, sizeof text, "[data]\nfile = %s\n[train]\nrounds = 4\n", longp);
    write_file(path, text);
    config_t c;
    config_defaults(&c);
    CU_ASSERT_EQUAL_FATAL(config_load(&c, path), FH_OK);
    CU_ASSERT_STRING_EQUAL(c.data.file, longp);
    CU_ASSERT_EQUAL(c.train.rounds, 4);
    /* an error after a long line has the right line number */
    snprintf(text, sizeof text, "[data]\nfile = %s\n[train]\nrounds = x\n", longp);
    write_file(path, text);
    CU_ASSERT_EQUAL(config_load(&c, path), FH_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), ":4: [train] rounds: expected an integer"));
    /* the resolved configuration with a long path is read back */
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    config_write(&c, f);
    fclose(f);
    config_t b;
    config_defaults(&b);
    CU_ASSERT_EQUAL(config_load(&b, path), FH_OK);
    CU_ASSERT_STRING_EQUAL(b.data.file, longp);
    /* a path too long for config_t is refused, not truncated */
    char huge[1200];
    memset(huge, 'q', sizeof huge - 1);
    huge[sizeof huge - 1] = 0;
    snprintf(text, sizeof text, "data.file=%s", huge);
    CU_ASSERT_EQUAL(config_override(&c, text), FH_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), "[data] file: expected a path of at most 1023 bytes"));
    static const struct { const char *text, *want; } bad[] = {
        {"[train]\nrounds = 3\nlr = 0.1\nrounds = 4\n", ":4: [train] rounds: duplicated (first at line 2)"},
        {"[train]\nrounds = 3\n[fl]\nmu = 1\n[train]\nrounds = 4\n", ":6: [train] rounds: duplicated (first at line 2)"},
        {"[data]\nfile = a.h5\n[train\nrounds = 3\n", ":3: section header '[train' has no closing ']'"},
        {"rounds = 3\n", ":1: key 'rounds' before any [section] header"},
        {"[train]\nrounds 3\n", ":2: not valid INI syntax"},
        {"[train]\n= 3\n", ":2: not valid INI syntax: no key"},
        {"[nosuch]\n", ":1: unknown section [nosuch]"},
        {"[train] x\n", ":1: unexpected 'x' after the section header"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(path, bad[i].text);
        config_defaults(&c);
        CU_ASSERT_EQUAL(config_load(&c, path), FH_EINPUT);
        if (!strstr(fh_error_msg(), bad[i].want)) printf("\n  case %zu: got '%s'\n", i, fh_error_msg());
        CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), bad[i].want));
    }
    /* comments, ':' separators, inline comments, a byte-order mark and CRLF still work */
    write_file(path, "\xEF\xBB\xBF; c\r\n# c\r\n[train]\r\nrounds: 6 ; six\r\n  lr = 0.5\r\n");
    config_defaults(&c);
    CU_ASSERT_EQUAL(config_load(&c, path), FH_OK);
    CU_ASSERT_EQUAL(c.train.rounds, 6);
    CU_ASSERT_DOUBLE_EQUAL(c.train.lr, 0.5, 0);
    /* a directory as the configuration file */
    CU_ASSERT_EQUAL(config_load(&c, g_test_tmpdir), FH_EINPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), "is a directory (expected a configuration file"));
}

/* Issue 17: every key of every type behaves the same way (from the key table, as printed by
 * config_print_help): wrong values are refused naming [section] key and what was expected;
 * non-finite and overflowing numbers are never accepted. */
static void test_every_key_refuses_bad_values(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    config_print_help(m);
    fclose(m);
    char section[64] = "";
    int nkeys = 0, ntype[5] = {0};
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '[') {
            sscanf(line, "[%63[^]]]", section);
            continue;
        }
        char key[64], type[16];
        if (sscanf(line, " %63s %15s", key, type) != 2) continue;
        if (!strcmp(type, "int") && strstr(line, " int list ")) strcpy(type, "list");
        static const char *types[] = {"int", "number", "choice", "path", "list"};
        static const char *bad[5][6] = {
            {"abc", "nan", "inf", "1e999", "2.5", ""},
            {"abc", "nan", "inf", "-inf", "1e999", ""},
            {"bogus", "", "ON", "nan", NULL, NULL},
            {NULL},
            {"abc", "nan", "1,,2", "0", "", NULL},
        };
        static const char *want[5] = {"expected an integer", "expected a number", "expected one of", "",
                                      "expected 1 to 8"};
        int t = 0;
        while (t < 5 && strcmp(type, types[t])) t++;
        CU_ASSERT_FATAL(t < 5);
        nkeys++;
        ntype[t]++;
        for (int v = 0; v < 6 && bad[t][v]; v++) {
            char a[256], expect[256];
            snprintf(a, sizeof a, "%s.%s=%s", section, key, bad[t][v]);
            snprintf(expect, sizeof expect, "[%s] %s: %s", section, key, want[t]);
            config_t c;
            config_defaults(&c);
            fh_status st = config_override(&c, a);
            if (st != FH_EINPUT || !strstr(fh_error_msg(), expect))
                printf("\n  %s: status %d, '%s'\n", a, (int)st, fh_error_msg());
            CU_ASSERT_EQUAL(st, FH_EINPUT);
            CU_ASSERT_PTR_NOT_NULL(strstr(fh_error_msg(), expect));
        }
    }
    free(text);
    CU_ASSERT(nkeys > 60);
    CU_ASSERT(ntype[0] > 10 && ntype[1] > 20 && ntype[2] > 10 && ntype[3] >= 7);
}

void tests_register_config(void)
{
    CU_pSuite s = CU_add_suite("config", NULL, NULL);
    tests_add(s, "defaults", test_defaults);
    tests_add(s, "load_and_override", test_load_and_override);
    tests_add(s, "errors_name_file_line_and_key", test_errors_name_file_line_and_key);
    tests_add(s, "write_reload_roundtrip_and_hash", test_write_reload_roundtrip_and_hash);
    tests_add(s, "long_lines_and_syntax_errors", test_long_lines_and_syntax_errors);
    tests_add(s, "every_key_refuses_bad_values", test_every_key_refuses_bad_values);
}
