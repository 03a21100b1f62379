/* Error message buffer and small utilities: see include/fedhpc/common.h. */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <signal.h>

static char g_msg[1024];
static volatile sig_atomic_t g_stop;

void fh_request_stop(void) { g_stop = 1; }
int fh_stop_requested(void) { return g_stop != 0; }

fh_status fh_error_set(fh_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    return st;
}

const char *fh_error_msg(void) { return g_msg; }

void fh_error_put(const char *msg) { snprintf(g_msg, sizeof g_msg, "%s", msg ? msg : ""); }

const char *fh_status_name(fh_status st)
{
    switch (st) {
    case FH_OK: return "ok";
    case FH_EINPUT: return "bad input";
    case FH_EIO: return "I/O error";
    case FH_ENOMEM: return "out of memory";
    case FH_EMPI: return "MPI error";
    case FH_EINTERNAL: return "internal error";
    case FH_EFAULT: return "numeric fault";
    case FH_ESTOPPED: return "stopped on request";
    }
    return "unknown error";
}

void *fh_calloc(size_t n, size_t size) { return calloc(n ? n : 1, size ? size : 1); }

double fh_wtime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
