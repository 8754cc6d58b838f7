/* lade — device registry: device identities and keys, service identities, device twins.
 *
 * One SQLite file shared by the hub plugin (reads keys, stores twins), lade-factory (adds
 * devices) and the portal. Opened in WAL mode with a busy timeout so these processes can use it
 * at the same time. The schema carries a version and is migrated forward on open.
 *
 * Keys are secrets: this module never logs them, and the file must be readable only by the
 * hub, the factory tool and the portal (mode 0600/0640; see docs/hub.md).
 *
 * A struct lade_registry is not thread-safe: use one per thread. Strings returned through
 * char ** are malloc'd; the caller frees them with free().
 */
#ifndef LADE_REGISTRY_H
#define LADE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"

#define LADE_REGISTRY_ID_MAX       128         /* device id / service name length */
#define LADE_REGISTRY_KEY_LEN      32          /* length of keys lade generates */
#define LADE_REGISTRY_KEY_MAX      64          /* longest key accepted */
#define LADE_REGISTRY_TWIN_MAX     (32 * 1024) /* desired and reported, each (Azure's limit) */
#define LADE_REGISTRY_TWIN_DEPTH   10          /* JSON nesting below the document root */
#define LADE_REGISTRY_SCHEMA       1           /* schema version this code writes */
#define LADE_REGISTRY_BUSY_DEFAULT 5000        /* busy timeout, ms */

struct lade_registry;

/* [A-Za-z0-9-]{1,128}: the ids Azure accepts without encoding (device ids, service names). */
bool lade_registry_id_valid(const char *id);

/* Opens (creating if missing) the registry at path and migrates its schema.
 * Errors: INVAL (NULL args), DB (cannot open / not a database / I/O), CONFIG (the file's schema
 * is newer than this code), NOMEM. */
lade_err lade_registry_open(const char *path, struct lade_registry **out) LADE_MUST_CHECK;
void lade_registry_close(struct lade_registry *reg); /* NULL is fine */
/* How long a call waits for another process's write lock before failing with DB. */
void lade_registry_set_busy_timeout(struct lade_registry *reg, int timeout_ms);

/* ---- devices ---- */

/* Adds a device with the given key (1..LADE_REGISTRY_KEY_MAX bytes), enabled, with empty
 * twins (desired and reported {} at $version 1).
 * Errors: INVAL (bad id or key), EXISTS (id taken), DB. */
lade_err lade_registry_device_add(struct lade_registry *reg, const char *id, const uint8_t *key,
                                  size_t key_len, int64_t now_s) LADE_MUST_CHECK;
/* Adds n devices (as device_add does) in ONE transaction: all or none. A fleet of 10 000 takes
 * one commit (one fsync) instead of 10 000 (lade-sim provision). On error nothing is added and
 * *failed_index (if non-NULL) names the device that failed (EXISTS: id taken; INVAL: bad id
 * or key). Errors: INVAL, EXISTS, DB. */
struct lade_registry_new_device {
    const char *id;
    const uint8_t *key;
    size_t key_len;
};
lade_err lade_registry_device_add_many(struct lade_registry *reg,
                                       const struct lade_registry_new_device *devs, size_t n,
                                       int64_t now_s, size_t *failed_index) LADE_MUST_CHECK;
/* Like device_add with a fresh random key of LADE_REGISTRY_KEY_LEN bytes written to key_out. */
lade_err lade_registry_device_create(struct lade_registry *reg, const char *id, int64_t now_s,
                                     uint8_t key_out[LADE_REGISTRY_KEY_LEN]) LADE_MUST_CHECK;
/* Copies the device key to key_out[0..*len) and reports whether the device is enabled.
 * Errors: INVAL, NOT_FOUND, NOSPACE (cap too small), DB. */
lade_err lade_registry_device_key(struct lade_registry *reg, const char *id, uint8_t *key_out,
                                  size_t cap, size_t *len, bool *enabled) LADE_MUST_CHECK;
/* Replaces the key (rotation); existing tokens stop working at the next CONNECT. */
lade_err lade_registry_device_set_key(struct lade_registry *reg, const char *id, const uint8_t *key,
                                      size_t key_len) LADE_MUST_CHECK;
lade_err lade_registry_device_set_enabled(struct lade_registry *reg, const char *id,
                                          bool enabled) LADE_MUST_CHECK;
/* Removes the device and its twin. NOT_FOUND if absent. */
lade_err lade_registry_device_remove(struct lade_registry *reg, const char *id) LADE_MUST_CHECK;

struct lade_registry_device {
    const char *id; /* valid during the callback only */
    bool enabled;
    int64_t created_s;
};
/* Calls fn for each device in id order; a non-zero return from fn stops the walk (and is not
 * an error). */
lade_err lade_registry_device_list(struct lade_registry *reg,
                                   int (*fn)(void *ud, const struct lade_registry_device *dev),
                                   void *ud) LADE_MUST_CHECK;

/* ---- service identities (the portal's backend MQTT client) ---- */

lade_err lade_registry_service_add(struct lade_registry *reg, const char *name, const uint8_t *key,
                                   size_t key_len, int64_t now_s) LADE_MUST_CHECK;
lade_err lade_registry_service_key(struct lade_registry *reg, const char *name, uint8_t *key_out,
                                   size_t cap, size_t *len) LADE_MUST_CHECK;
lade_err lade_registry_service_remove(struct lade_registry *reg, const char *name) LADE_MUST_CHECK;

/* ---- device twins ---- */

enum lade_twin_part {
    LADE_TWIN_DESIRED = 0,
    LADE_TWIN_REPORTED = 1,
};

/* The full twin as the hub sends it to a device:
 * {"desired":{...,"$version":N},"reported":{...,"$version":M}} (malloc'd, NUL-terminated).
 * Errors: INVAL, NOT_FOUND, NOMEM, DB. */
lade_err lade_registry_twin_get(struct lade_registry *reg, const char *id, char **json_out,
                                size_t *len_out) LADE_MUST_CHECK;
/* One part without "$version" (malloc'd) and its version. */
lade_err lade_registry_twin_part(struct lade_registry *reg, const char *id,
                                 enum lade_twin_part part, char **json_out,
                                 int64_t *version_out) LADE_MUST_CHECK;
/* Applies a JSON merge patch (RFC 7396: objects merge recursively, null deletes a member) to
 * one part in one transaction and bumps its $version by one. The patch must be a JSON object of
 * at most LADE_REGISTRY_TWIN_MAX bytes; a top-level "$version" member is ignored, any other
 * member name starting with '$' is refused. *version_out gets the new version. If patch_out is
 * non-NULL it receives the patch as applied, with "$version" set (what the hub forwards to the
 * device as a desired-properties notification; malloc'd).
 * Errors: INVAL (not a JSON object, '$' names, nesting deeper than LADE_REGISTRY_TWIN_DEPTH),
 * TOO_BIG (result larger than LADE_REGISTRY_TWIN_MAX), NOT_FOUND, NOMEM, DB. Nothing changes
 * on error. */
lade_err lade_registry_twin_patch(struct lade_registry *reg, const char *id,
                                  enum lade_twin_part part, const char *patch, size_t patch_len,
                                  int64_t *version_out, char **patch_out) LADE_MUST_CHECK;

#endif
