/* libFuzzer harness: the INI configuration (src/config/config.c): config_load, then
 * config_override for each override line, then config_validate, config_write and
 * config_train_hash — what `fedhpc run CONFIG.ini section.key=value...` does.
 *
 * Input: the INI text, optionally followed by a NUL byte and override lines
 * ("section.key=value", one a line).
 */
#include "fuzz_common.h"
#include "fedhpc/config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) { return fz_init(argc, argv); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *z = memchr(data, 0, size);
    const size_t ini_n = z ? (size_t)(z - data) : size;
    char path[600];
    fz_write("in.ini", data, ini_n, path, sizeof path);

    config_t c;
    config_defaults(&c);
    fh_status st = config_load(&c, path);
    fz_status_ok(st);
    if (z) { /* overrides, one a line (a NUL-terminated copy) */
        const size_t n = size - ini_n - 1;
        char *ov = malloc(n + 1);
        if (!ov) return 0;
        memcpy(ov, z + 1, n);
        ov[n] = 0;
        char *save = NULL;
        for (char *line = strtok_r(ov, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
            fh_status os = config_override(&c, line);
            fz_status_ok(os);
        }
        free(ov);
    }
    fh_status vs = config_validate(&c, path);
    fz_status_ok(vs);
    FILE *f = fopen("/dev/null", "w");
    if (f) {
        config_write(&c, f);
        fclose(f);
    }
    volatile uint64_t h = config_train_hash(&c);
    (void)h;
    (void)config_algorithm_name(c.fl.algorithm);
    return 0;
}
