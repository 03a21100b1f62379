/* Fashion-MNIST from the four gzip-compressed idx files (see include/fedhpc/data.h).
 *
 * idx format: a big-endian header (magic 2051 + count + rows + cols for images, magic 2049 +
 * count for labels) followed by unsigned bytes. Pixels become x = byte / 255 in [0, 1].
 */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include "fedhpc/data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum { IDX_IMAGES = 2051, IDX_LABELS = 2049, FMNIST_CLASSES = 10 };

static const char *const fmnist_class_names[FMNIST_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* An open idx file and its path (for messages). */
typedef struct {
    gzFile gz;
    char path[1024];
} idx_file;

static fh_status idx_open(idx_file *f, const char *dir, const char *name)
{
    int len = snprintf(f->path, sizeof f->path, "%s/%s", dir, name);
    if (len < 0 || (size_t)len >= sizeof f->path)
        return fh_error_set(FH_EINPUT, "%s/%s: path too long", dir, name);
    errno = 0;
    f->gz = gzopen(f->path, "rb");
    if (!f->gz)
        return fh_error_set(FH_EINPUT, "%s: cannot open (%s); expected a Fashion-MNIST idx .gz file",
                            f->path, errno ? strerror(errno) : "out of memory");
    return FH_OK;
}

static void idx_close(idx_file *f)
{
    if (f->gz) gzclose(f->gz);
    f->gz = NULL;
}

/* Read exactly `len` bytes; a short read is a truncated (or corrupt) file. */
static fh_status idx_read(idx_file *f, void *buf, size_t len, const char *what)
{
    unsigned char *p = buf;
    while (len > 0) {
        unsigned chunk = len > (1u << 30) ? (1u << 30) : (unsigned)len;
        int got = gzread(f->gz, p, chunk);
        if (got < 0) {
            int zerr = 0;
            const char *msg = gzerror(f->gz, &zerr);
            return fh_error_set(FH_EINPUT, "%s: corrupt gzip data while reading %s (%s)", f->path,
                                what, msg ? msg : "unknown zlib error");
        }
        if (got == 0)
            return fh_error_set(FH_EINPUT, "%s: truncated file: %zu more bytes of %s expected",
                                f->path, len, what);
        p += got;
        len -= (size_t)got;
    }
    return FH_OK;
}

static fh_status idx_read_u32(idx_file *f, uint32_t *out, const char *what)
{
    unsigned char b[4];
    FH_TRY(idx_read(f, b, 4, what));
    *out = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
    return FH_OK;
}

/* Images file into t->x (t->n rows, t->d features). Bytes go through a temporary buffer. */
static fh_status idx_read_images(idx_file *f, data_table *t)
{
    uint32_t magic, n, rows, cols;
    FH_TRY(idx_read_u32(f, &magic, "the idx header"));
    if (magic != IDX_IMAGES)
        return fh_error_set(FH_EINPUT, "%s: bad magic number %u (expected %d for an idx image file)",
                            f->path, magic, IDX_IMAGES);
    FH_TRY(idx_read_u32(f, &n, "the idx header"));
    FH_TRY(idx_read_u32(f, &rows, "the idx header"));
    FH_TRY(idx_read_u32(f, &cols, "the idx header"));
    if (n == 0 || n > (1u << 28) || rows == 0 || cols == 0 || rows > 4096 || cols > 4096)
        return fh_error_set(FH_EINPUT,
                            "%s: implausible image dimensions %u x %u x %u (expected N x 28 x 28)",
                            f->path, n, rows, cols);
    size_t d = (size_t)rows * cols, total = (size_t)n * d;
    unsigned char *raw = malloc(total);
    FH_CHECK_ALLOC(raw);
    fh_status st = idx_read(f, raw, total, "pixels");
    if (st == FH_OK) {
        t->x = malloc(total * sizeof *t->x);
        if (!t->x) st = fh_error_set(FH_ENOMEM, "out of memory at %s:%d", __FILE__, __LINE__);
    }
    if (st == FH_OK) {
        for (size_t i = 0; i < total; i++) t->x[i] = (float)raw[i] / 255.0f;
        t->n = n;
        t->d = (int32_t)d;
    }
    free(raw);
    return st;
}

/* Labels file into t->y; the count must match the images already read into t. */
static fh_status idx_read_labels(idx_file *f, data_table *t, const char *images_path)
{
    uint32_t magic, n;
    FH_TRY(idx_read_u32(f, &magic, "the idx header"));
    if (magic != IDX_LABELS)
        return fh_error_set(FH_EINPUT, "%s: bad magic number %u (expected %d for an idx label file)",
                            f->path, magic, IDX_LABELS);
    FH_TRY(idx_read_u32(f, &n, "the idx header"));
    if ((int64_t)n != t->n)
        return fh_error_set(FH_EINPUT, "%s: %u labels, expected %lld to match %s", f->path, n,
                            (long long)t->n, images_path);
    unsigned char *raw = malloc(n);
    FH_CHECK_ALLOC(raw);
    fh_status st = idx_read(f, raw, n, "labels");
    if (st == FH_OK) {
        t->y = malloc((size_t)n * sizeof *t->y);
        if (!t->y) st = fh_error_set(FH_ENOMEM, "out of memory at %s:%d", __FILE__, __LINE__);
    }
    for (uint32_t i = 0; st == FH_OK && i < n; i++) {
        if (raw[i] >= FMNIST_CLASSES)
            st = fh_error_set(FH_EINPUT, "%s: label %u of item %u out of range (expected 0..%d)",
                              f->path, raw[i], i, FMNIST_CLASSES - 1);
        else t->y[i] = raw[i];
    }
    free(raw);
    return st;
}

/* One split: images + labels. */
static fh_status fmnist_load_split(const char *dir, const char *images, const char *labels,
                                   data_table *t)
{
    idx_file fi = {0}, fl = {0};
    fh_status st = idx_open(&fi, dir, images);
    if (st == FH_OK) st = idx_read_images(&fi, t);
    if (st == FH_OK) st = idx_open(&fl, dir, labels);
    if (st == FH_OK) st = idx_read_labels(&fl, t, fi.path);
    idx_close(&fi);
    idx_close(&fl);
    return st;
}

static fh_status fmnist_load(const char *dir, data_set *out)
{
    snprintf(out->name, sizeof out->name, "fmnist");
    out->class_name = fh_calloc(FMNIST_CLASSES, sizeof *out->class_name);
    FH_CHECK_ALLOC(out->class_name);
    out->nclasses = FMNIST_CLASSES;
    for (int k = 0; k < FMNIST_CLASSES; k++) {
        out->class_name[k] = strdup(fmnist_class_names[k]);
        FH_CHECK_ALLOC(out->class_name[k]);
    }
    FH_TRY(fmnist_load_split(dir, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                             &out->train));
    FH_TRY(fmnist_load_split(dir, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
                             &out->test));
    if (out->train.d != out->test.d)
        return fh_error_set(FH_EINPUT, "%s: test images have %d pixels, training images %d",
                            dir, out->test.d, out->train.d);
    return FH_OK;
}

fh_status data_load_fmnist(const char *dir, data_set *out)
{
    if (!dir || !out) return fh_error_set(FH_EINTERNAL, "data_load_fmnist: NULL argument");
    memset(out, 0, sizeof *out);
    fh_status st = fmnist_load(dir, out);
    if (st != FH_OK) data_free(out);
    return st;
}
