/* lade — small files written so that a power cut leaves either the old or the new content,
 * never a mix (src/port/linux/file.c). Used for state the charger keeps: the clock floor, the
 * DHCP lease, portal settings, the simulator state. */
#ifndef LADE_FILE_H
#define LADE_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lade/err.h"

/* Writes data to path.tmp (created with mode), optionally fsyncs it, renames it over path and,
 * when durable, fsyncs the directory too (the rename itself survives a power cut). On failure
 * path is untouched and path.tmp removed. Errors: LADE_ERR_INVAL (path too long), LADE_ERR_IO
 * (errno kept). */
lade_err lade_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                                bool durable) LADE_MUST_CHECK;

/* fsync of the directory holding path (best effort: some file systems refuse it). */
void lade_file_sync_dir(const char *path);

#endif
