/* lade — the charger's persistent outbox (issue 3 item 5, SPEC U3/U4; see docs/outbox.md).
 *
 * A bounded FIFO of messages waiting for the hub's acknowledgement, in one SQLite file (WAL,
 * synchronous=FULL, busy timeout, versioned schema). Two kinds of record:
 *   SESSION  a finished charge session: never dropped silently;
 *   STATE    periodic state: dropped (oldest first, counted) to make room.
 *
 * Durability: when lade_outbox_put returns LADE_OK the record is committed and fsync'd; it
 * survives kill -9 and power loss. Only then may the charger acknowledge the session anywhere.
 * Delivery is at-least-once: a record stays until lade_outbox_ack(msg_id); the receiver
 * de-duplicates by msg_id, which gives an exactly-once effect.
 *
 * Limits (struct lade_outbox_limits): a put that would take the outbox above max_records or
 * max_bytes first drops the oldest STATE records. If only SESSION records are left:
 *   - a STATE put is refused with LADE_ERR_FULL (nothing changes, counted in refused_state);
 *   - a SESSION put is still accepted up to session_hard_records / session_hard_bytes; above
 *     that it is refused with LADE_ERR_FULL. The caller must then keep the session in memory
 *     and report a storage fault (docs/outbox.md, "What the charger does").
 *
 * Faults: every function returns LADE_ERR_DB for an unusable file (not a directory it can
 * write, read-only, disk full, I/O error) with the reason logged and kept in the stats; it never
 * aborts. A file that is not an SQLite database or fails its integrity check at open is renamed
 * aside to "<path>.corrupt-<wall_s>" and a fresh outbox is started (stats.recovered_corrupt).
 *
 * A struct lade_outbox is not thread-safe; one process should own a file (a second process is
 * safe but waits up to the busy timeout for the write lock).
 */
#ifndef LADE_OUTBOX_H
#define LADE_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"

#define LADE_OUTBOX_ID_LEN          32          /* hex chars of a 128-bit message id */
#define LADE_OUTBOX_SCHEMA          2           /* schema version this code writes */
#define LADE_OUTBOX_BUSY_MS         2000        /* busy timeout */
#define LADE_OUTBOX_PAYLOAD_MAX     (64 * 1024) /* largest payload accepted */
#define LADE_OUTBOX_PATH_MAX        512
#define LADE_OUTBOX_ERROR_TEXT_SIZE 160

enum lade_outbox_kind {
    LADE_OUTBOX_SESSION = 1, /* finished charge session: never dropped */
    LADE_OUTBOX_STATE = 2,   /* periodic state: may be dropped */
};

struct lade_outbox_limits {
    uint32_t max_records;          /* soft: total records; STATE is dropped to stay below */
    uint64_t max_bytes;            /* soft: total payload bytes */
    uint32_t session_hard_records; /* SESSION records never exceed this (>= max_records) */
    uint64_t session_hard_bytes;   /* SESSION payload bytes never exceed this (>= max_bytes) */
};

/* 1000 records, 1 MiB soft; 10000 sessions, 8 MiB hard. */
extern const struct lade_outbox_limits lade_outbox_limits_default;

struct lade_outbox;

struct lade_outbox_rec {
    int64_t seq; /* insertion order, strictly increasing, never reused */
    enum lade_outbox_kind kind;
    char msg_id[LADE_OUTBOX_ID_LEN + 1];
    int64_t created_wall_s;
    uint32_t attempts;           /* lade_outbox_attempt calls */
    int64_t last_attempt_wall_s; /* 0 = never sent */
    uint8_t *payload;            /* malloc'd (+1 byte NUL after len); lade_outbox_rec_free */
    size_t len;
};

struct lade_outbox_stats {
    uint64_t records, bytes;                 /* all records, payload bytes */
    uint64_t session_records, session_bytes; /* of which SESSION */
    uint64_t dropped_state;                  /* STATE records dropped for room, ever (persisted) */
    uint64_t refused_state;                  /* STATE puts refused with FULL since open */
    uint64_t refused_session;                /* SESSION puts refused with FULL since open */
    uint64_t unknown_acks;                   /* acks of ids not (or no longer) stored, since open */
    bool storage_fault; /* the last storage operation failed (cleared by the next success) */
    uint64_t faults;    /* storage operations that failed since open */
    lade_err last_err;  /* of the last failure */
    char last_error[LADE_OUTBOX_ERROR_TEXT_SIZE]; /* its reason, "" if none */
    bool recovered_corrupt;                       /* open renamed a corrupt file aside */
    char corrupt_path[LADE_OUTBOX_PATH_MAX + 32]; /* where it went */
};

/* A fresh random message id: LADE_OUTBOX_ID_LEN lowercase hex chars + NUL. */
lade_err lade_outbox_new_id(char out[LADE_OUTBOX_ID_LEN + 1]) LADE_MUST_CHECK;
/* True for exactly LADE_OUTBOX_ID_LEN chars of [0-9a-f]. */
bool lade_outbox_id_valid(const char *id);

/* Opens (creating if missing) the outbox at path and migrates its schema. lim NULL = defaults.
 * A corrupt file is renamed aside and replaced (see above; *out is then valid and
 * stats.recovered_corrupt is set).
 * Errors: INVAL (NULL args, path longer than LADE_OUTBOX_PATH_MAX, limits with a hard cap below
 * the soft one or zero), DB (cannot open / create / write: directory, read-only, disk full,
 * I/O; reason logged), CONFIG (schema newer than this code), NOMEM. */
lade_err lade_outbox_open(const char *path, const struct lade_outbox_limits *lim,
                          struct lade_outbox **out) LADE_MUST_CHECK;
void lade_outbox_close(struct lade_outbox *ob); /* NULL is fine */

/* Stores a record, durably (committed and synced) when it returns LADE_OK.
 * msg_id: a valid id chosen by the caller, or NULL to generate one; id_out (may be NULL)
 * receives the id used. Putting an id that is already stored with the same kind and payload is
 * a no-op returning LADE_OK (a retry after a crash); with other content it is EXISTS.
 * Errors: INVAL (bad kind/id, payload NULL with len > 0), TOO_BIG (len > PAYLOAD_MAX), FULL
 * (limits, see above; nothing changed), EXISTS, DB, NOMEM. Nothing changes on error. */
lade_err lade_outbox_put(struct lade_outbox *ob, enum lade_outbox_kind kind, const char *msg_id,
                         const void *payload, size_t len, int64_t now_wall_s,
                         char id_out[LADE_OUTBOX_ID_LEN + 1]) LADE_MUST_CHECK;

/* The oldest record with seq > after_seq (after_seq 0 = the oldest of all) into *rec, which the
 * caller frees with lade_outbox_rec_free. Walk with after_seq = rec.seq.
 * Errors: INVAL, NOT_FOUND (none), DB, NOMEM. */
lade_err lade_outbox_next(struct lade_outbox *ob, int64_t after_seq,
                          struct lade_outbox_rec *rec) LADE_MUST_CHECK;
void lade_outbox_rec_free(struct lade_outbox_rec *rec);

/* Records that a send of msg_id was attempted at now_wall_s (attempts + 1).
 * Errors: INVAL, NOT_FOUND, DB. */
lade_err lade_outbox_attempt(struct lade_outbox *ob, const char *msg_id,
                             int64_t now_wall_s) LADE_MUST_CHECK;

/* Deletes msg_id (the hub acknowledged it). Idempotent: an unknown or already acked id is
 * LADE_OK and counted in stats.unknown_acks. Errors: INVAL (malformed id), DB. */
lade_err lade_outbox_ack(struct lade_outbox *ob, const char *msg_id) LADE_MUST_CHECK;

/* Counters and fault state. Errors: INVAL, DB (the counts could not be read; the fault fields
 * are filled anyway). */
lade_err lade_outbox_stats(struct lade_outbox *ob, struct lade_outbox_stats *st) LADE_MUST_CHECK;

/* ---- the session in progress (docs/outbox.md, "Open session") ----
 * A charger checkpoints its session in progress under the msg_id its finished record will
 * carry. lade_outbox_put(SESSION, that msg_id) removes the checkpoint in the same transaction,
 * so after a crash the session is found in exactly one place: open (resume or close it) or
 * stored (send it). */

/* Inserts or replaces the checkpoint of msg_id, durably. Errors: INVAL, TOO_BIG, DB. */
lade_err lade_outbox_session_checkpoint(struct lade_outbox *ob, const char *msg_id,
                                        const void *payload, size_t len,
                                        int64_t now_wall_s) LADE_MUST_CHECK;
/* The oldest checkpoint into *rec (kind SESSION, seq 0, created_wall_s = its last update);
 * free with lade_outbox_rec_free. Errors: INVAL, NOT_FOUND (none), DB, NOMEM. */
lade_err lade_outbox_session_open(struct lade_outbox *ob,
                                  struct lade_outbox_rec *rec) LADE_MUST_CHECK;
/* Removes a checkpoint without storing a record (a session that never took energy and is not
 * billed). Unknown id: OK. Errors: INVAL, DB. */
lade_err lade_outbox_session_discard(struct lade_outbox *ob, const char *msg_id) LADE_MUST_CHECK;

#endif
