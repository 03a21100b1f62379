/* Shared helpers of the libFuzzer harnesses (tests/fuzz/fuzz_*.c; docs/fuzzing.md).
 *
 * MPI is initialised once (singleton init, no mpirun needed) and every harness works on a
 * 1-rank comm_t. Readers that need a file get the input written to a per-process temporary
 * file under /dev/shm (or $TMPDIR when /dev/shm is missing).
 */
#ifndef FEDHPC_FUZZ_COMMON_H
#define FEDHPC_FUZZ_COMMON_H

#define _POSIX_C_SOURCE 200809L
#include "fedhpc/comm.h"
#include "fedhpc/common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Leaks of the MPI runtime (made by MPI_Init, some from components it unloads again) are not
 * ours: MPI_Init runs with leak checking off, and these suppressions cover the rest. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    /* libhdf5 leaks a few bytes when a damaged file makes an allocation fail; what fedhpc opens
     * is checked instead (the HDF5 harnesses require no open object after every input) */
    return "leak:libmpi.so\nleak:libopen-pal.so\nleak:libopen-rte.so\nleak:libpmix.so\nleak:libhwloc.so\n"
           "leak:mca_\nleak:libevent\nleak:__vasprintf_internal\nleak:_rtld_global\nleak:libhdf5\n";
}

/* libFuzzer checks every input for leaks; the exit-time check would only see what the MPI
 * runtime drops when it unloads its components. */
const char *__lsan_default_options(void);
const char *__lsan_default_options(void) { return "leak_check_at_exit=0"; }

/* A damaged HDF5 header can make libhdf5 ask for a huge metadata buffer (128 GiB seen): like a
 * real machine without that memory, malloc returns NULL above 1 GiB and the caller must cope
 * (HDF5 fails the call; fedhpc reports FH_ENOMEM or FH_EINPUT). */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1:max_allocation_size_mb=1024"; }

static comm_t fz_world;
static char fz_dir[512];

static inline void fz_cleanup(void)
{
    char cmd[600];
    if (!fz_dir[0]) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fz_dir);
    if (system(cmd) != 0) { /* best effort */
    }
}

/* MPI_Init once and a private scratch directory; returns 0 (libFuzzer's convention). */
/* LeakSanitizer's switches; weak, so that the plain replay build (no sanitizer) links too */
void __lsan_disable(void) __attribute__((weak));
void __lsan_enable(void) __attribute__((weak));

static inline int fz_init(int *argc, char ***argv)
{
    if (__lsan_disable) __lsan_disable();
    fh_status st = comm_init(argc, argv, &fz_world);
    if (__lsan_enable) __lsan_enable();
    if (st != FH_OK) {
        fprintf(stderr, "fuzz: MPI_Init failed: %s\n", fh_error_msg());
        abort();
    }
    struct stat sb;
    const char *base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : getenv("TMPDIR");
    snprintf(fz_dir, sizeof fz_dir, "%s/fedhpc-fuzz-%ld", base ? base : "/tmp", (long)getpid());
    mkdir(fz_dir, 0700);
    atexit(fz_cleanup);
    return 0;
}

/* Write bytes to fz_dir/name; returns the path (static buffer per name slot). */
static inline const char *fz_write(const char *name, const void *data, size_t n, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", fz_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        abort();
    }
    if (n && fwrite(data, 1, n, f) != n) {
        perror(path);
        abort();
    }
    fclose(f);
    return path;
}

/* A returned status must be one of the documented codes; anything else is a harness failure. */
static inline void fz_status_ok(fh_status st)
{
    if (st != FH_OK && st != FH_EINPUT && st != FH_EIO && st != FH_ENOMEM) {
        fprintf(stderr, "fuzz: unexpected status %d (%s): %s\n", (int)st, fh_status_name(st), fh_error_msg());
        abort();
    }
}

#endif
