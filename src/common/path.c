/* Path arguments checked up front: see fh_path_check in include/fedhpc/common.h. */
#define _POSIX_C_SOURCE 200809L
#include "fedhpc/common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The existing ancestor directories of path (mkdir -p would create the rest) must be
 * directories. */
static fh_status check_parents(const char *what, const char *path, int include_self)
{
    size_t n = strlen(path);
    char *buf = malloc(n + 1);
    FH_CHECK_ALLOC(buf);
    memcpy(buf, path, n + 1);
    fh_status st = FH_OK;
    for (size_t i = 1; st == FH_OK && i <= n; i++) {
        if (buf[i] != '/' && !(include_self && buf[i] == 0)) continue;
        char c = buf[i];
        buf[i] = 0;
        struct stat sb;
        if (stat(buf, &sb) == 0 && !S_ISDIR(sb.st_mode))
            st = fh_error_set(FH_EINPUT, "%s '%s': '%s' is not a directory (expected a directory to write into)", what,
                              path, buf);
        buf[i] = c;
    }
    free(buf);
    return st;
}

fh_status fh_path_check(const char *what, const char *path, fh_path_kind kind)
{
    struct stat sb;
    if (!path || !path[0]) return fh_error_set(FH_EINPUT, "%s: expected a path, got nothing", what);
    int exists = stat(path, &sb) == 0, err = errno;
    switch (kind) {
    case FH_PATH_READ_FILE:
    case FH_PATH_READ_DIR:
    case FH_PATH_READ_ANY: {
        const char *want = kind == FH_PATH_READ_FILE ? "a file" : kind == FH_PATH_READ_DIR ? "a directory"
                                                                                          : "a file or directory";
        if (!exists)
            return fh_error_set(FH_EINPUT, "%s '%s': %s (expected %s to read)", what, path, strerror(err), want);
        if (kind == FH_PATH_READ_FILE && S_ISDIR(sb.st_mode))
            return fh_error_set(FH_EINPUT, "%s '%s': is a directory (expected a file)", what, path);
        if (kind == FH_PATH_READ_DIR && !S_ISDIR(sb.st_mode))
            return fh_error_set(FH_EINPUT, "%s '%s': is not a directory (expected a directory)", what, path);
        if (access(path, S_ISDIR(sb.st_mode) ? R_OK | X_OK : R_OK) != 0)
            return fh_error_set(FH_EINPUT, "%s '%s': %s (expected %s to read)", what, path, strerror(errno), want);
        return FH_OK;
    }
    case FH_PATH_WRITE_FILE: {
        if (exists && S_ISDIR(sb.st_mode))
            return fh_error_set(FH_EINPUT, "%s '%s': is a directory (expected the name of a file to write)", what, path);
        FH_TRY(check_parents(what, path, 0));
        const char *slash = strrchr(path, '/');
        if (slash && slash != path) { /* its directory must exist: files are not given mkdir -p */
            char *dir = malloc((size_t)(slash - path) + 1);
            FH_CHECK_ALLOC(dir);
            memcpy(dir, path, (size_t)(slash - path));
            dir[slash - path] = 0;
            int ok = stat(dir, &sb) == 0;
            free(dir);
            if (!ok)
                return fh_error_set(FH_EINPUT, "%s '%s': its directory does not exist (expected a file in an existing directory)",
                                    what, path);
        }
        return FH_OK;
    }
    case FH_PATH_WRITE_DIR:
        if (exists && !S_ISDIR(sb.st_mode))
            return fh_error_set(FH_EINPUT, "%s '%s': is an existing file, not a directory (expected a directory to write into)",
                                what, path);
        return check_parents(what, path, 0);
    }
    return fh_error_set(FH_EINTERNAL, "fh_path_check: unknown kind %d", (int)kind);
}
