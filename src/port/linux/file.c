/* Atomic small-file writes (include/lade/file.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lade/file.h"

void lade_file_sync_dir(const char *path)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return;
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
}

lade_err lade_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                                bool durable)
{
    char tmp[PATH_MAX];
    if (!path || (len && !data) || snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return LADE_ERR_INVAL;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return LADE_ERR_IO;
    const char *p = data;
    size_t left = len;
    bool ok = true;
    while (ok && left) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        ok = n > 0;
        if (ok) {
            p += n;
            left -= (size_t)n;
        }
    }
    if (ok && durable)
        ok = fsync(fd) == 0;
    int saved = errno;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        saved = errno ? errno : saved;
        (void)unlink(tmp);
        errno = saved;
        return LADE_ERR_IO;
    }
    if (durable)
        lade_file_sync_dir(path);
    return LADE_OK;
}
