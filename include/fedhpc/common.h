/* fedhpc/common.h — status codes, error reporting and check macros shared by every module.
 *
 * Library code never prints and never exits: it returns an fh_status and records a
 * one-line message with fh_error_set(). The application layer (src/cli) reports it.
 */
#ifndef FEDHPC_COMMON_H
#define FEDHPC_COMMON_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    FH_OK = 0,
    FH_EINPUT = 2,   /* bad user input: config, CLI, data file, checkpoint (exit status 2) */
    FH_EIO = 3,      /* an I/O operation failed on a valid input                          */
    FH_ENOMEM = 4,   /* allocation failed                                                 */
    FH_EMPI = 5,     /* an MPI call failed                                                */
    FH_EINTERNAL = 6,/* a bug: an invariant did not hold                                  */
    FH_EFAULT = 7,   /* numeric fault (NaN/Inf) where it cannot be recovered              */
    FH_ESTOPPED = 8  /* stopped on request (signal) after writing a checkpoint            */
} fh_status;

/* Record the message of the current error (printf-style); returns `st` for tail calls:
 *   return fh_error_set(FH_EINPUT, "%s: [train] lr: expected a number", path);        */
fh_status fh_error_set(fh_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The last recorded message ("" if none). */
const char *fh_error_msg(void);
/* Replace the recorded message (used by the comm layer to share one rank's message). */
void fh_error_put(const char *msg);
/* Human name of a status ("bad input", "I/O error", ...). */
const char *fh_status_name(fh_status st);

/* Ask a running training loop to stop after the round in progress (async-signal-safe), and
 * whether that was asked on this process. */
void fh_request_stop(void);
int fh_stop_requested(void);

/* Propagate a non-OK status from an expression. */
#define FH_TRY(expr)                                                  \
    do {                                                              \
        fh_status fh_try_st_ = (expr);                                \
        if (fh_try_st_ != FH_OK) return fh_try_st_;                   \
    } while (0)

/* Return FH_ENOMEM with file:line when an allocation failed. */
#define FH_CHECK_ALLOC(p)                                                               \
    do {                                                                                \
        if ((p) == NULL)                                                                \
            return fh_error_set(FH_ENOMEM, "out of memory at %s:%d", __FILE__, __LINE__); \
    } while (0)

/* An internal invariant; returns FH_EINTERNAL with file:line when it fails. */
#define FH_ASSERT(cond)                                                                   \
    do {                                                                                  \
        if (!(cond))                                                                      \
            return fh_error_set(FH_EINTERNAL, "internal error at %s:%d: %s", __FILE__,    \
                                __LINE__, #cond);                                         \
    } while (0)

/* What a path argument must name; fh_path_check() refuses anything else up front with
 * FH_EINPUT "WHAT 'PATH': <what is wrong> (expected ...)", WHAT naming the argument
 * ("[output] dir", "prepare --out"). */
typedef enum {
    FH_PATH_READ_FILE,  /* an existing, readable file (not a directory)                         */
    FH_PATH_READ_DIR,   /* an existing, readable directory                                      */
    FH_PATH_READ_ANY,   /* an existing file or directory                                        */
    FH_PATH_WRITE_FILE, /* a file to create or replace: not a directory, in an existing directory */
    FH_PATH_WRITE_DIR   /* a directory to use or create (mkdir -p): no existing part is a file   */
} fh_path_kind;
fh_status fh_path_check(const char *what, const char *path, fh_path_kind kind);

/* calloc that never returns NULL for n == 0 */
void *fh_calloc(size_t n, size_t size);
/* Monotonic wall time in seconds. */
double fh_wtime(void);

#endif
