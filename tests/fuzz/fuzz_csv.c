/* libFuzzer harness: the CSV reader (src/data/csv.c, data_load_csv).
 *
 * Input: byte 0 = options (bit 0: binary task with `positive` = the first row's label value;
 * bit 1: a natural-partition `by` column; bits 2-3: test fraction), byte 1 = label column
 * index, byte 2 = by column index, then the CSV text. Column names are taken from the header
 * with a plain comma split (quoted headers may then name no column: a clean FH_EINPUT).
 * A load that succeeds is checked for consistency and fed to the natural partitioner.
 */
#include "fuzz_common.h"
#include "fedhpc/data.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) { return fz_init(argc, argv); }

/* Field k (0-based) of the line starting at s (comma split, up to the line end). */
static void field(const char *s, const char *end, int k, char *out, size_t cap)
{
    out[0] = 0;
    for (int i = 0; i < k && s < end; i++) {
        const char *c = memchr(s, ',', (size_t)(end - s));
        if (!c) return;
        s = c + 1;
    }
    const char *e = s;
    while (e < end && *e != ',' && *e != '\n' && *e != '\r') e++;
    size_t n = (size_t)(e - s) < cap - 1 ? (size_t)(e - s) : cap - 1;
    memcpy(out, s, n);
    out[n] = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3) return 0;
    const uint8_t opt = data[0], lab = data[1], by = data[2];
    const char *csv = (const char *)data + 3, *end = (const char *)data + size;
    char path[600], label[128], positive[128], bycol[128];
    fz_write("in.csv", csv, (size_t)(end - csv), path, sizeof path);

    const char *nl = memchr(csv, '\n', (size_t)(end - csv));
    const char *hend = nl ? nl : end;
    int ncols = 1;
    for (const char *p = csv; p < hend; p++) ncols += *p == ',';
    field(csv, hend, lab % ncols, label, sizeof label);
    field(csv, hend, by % ncols, bycol, sizeof bycol);
    positive[0] = 0;
    if (nl) {
        const char *r1 = nl + 1, *r1e = memchr(r1, '\n', (size_t)(end - r1));
        field(r1, r1e ? r1e : end, lab % ncols, positive, sizeof positive);
    }
    static const double fracs[4] = {0.2, 0.0, 0.5, 0.9};
    data_csv_opts o = {.label = label, .positive = (opt & 1) ? positive : NULL, .by = (opt & 2) ? bycol : NULL,
                       .test_frac = fracs[(opt >> 2) & 3], .seed = 1};

    data_set ds;
    memset(&ds, 0, sizeof ds);
    fh_status st = data_load_csv(path, &o, &ds);
    fz_status_ok(st);
    if (st == FH_OK) {
        /* invariants a caller relies on */
        if (ds.nclasses < 1 || ds.train.n < 0 || ds.test.n < 0 || ds.train.d != ds.test.d || !ds.enc ||
            ds.enc->d != ds.train.d)
            abort();
        for (int64_t i = 0; i < ds.train.n; i++)
            if (ds.train.y[i] < 0 || ds.train.y[i] >= ds.nclasses) abort();
        for (int64_t i = 0; i < ds.test.n; i++)
            if (ds.test.y[i] < 0 || ds.test.y[i] >= ds.nclasses) abort();
        volatile float sink = 0;
        for (int64_t i = 0; i < ds.train.n * ds.train.d; i++) sink += ds.train.x[i];
        (void)sink;
        if (ds.row_key && ds.nkeys > 0 && ds.train.n > 0) {
            for (int64_t i = 0; i < ds.train.n; i++)
                if (ds.row_key[i] < 0 || ds.row_key[i] >= ds.nkeys) abort();
            part_opts po = {PART_NATURAL, ds.nkeys, 0.5, 1, 1};
            int32_t *cl = malloc((size_t)ds.train.n * sizeof *cl);
            if (cl) fz_status_ok(part_assign(&po, ds.train.y, ds.train.n, ds.nclasses, ds.row_key, ds.nkeys, cl));
            free(cl);
        }
    }
    data_free(&ds);
    return 0;
}
