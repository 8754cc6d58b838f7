/* lade — charger → portal state reporting ("observations"), a pure module.
 *
 * Pure: no I/O, no clock (the caller passes now_ms, monotonic, and wall_s, Unix seconds), no
 * allocation: the reporter is a caller-owned struct. See docs/observations.md (ids, deadbands,
 * timing rules, wire format, measured sizes) and reference/portal-api.md (observation ids).
 *
 * Values. Every observation id has a type from a fixed table (lade_obs_def):
 *   LADE_OBS_INT    an integer (mode, phases, dBm, bitmask, W);
 *   LADE_OBS_FIXED  a decimal with `decimals` digits, carried as an integer in units of
 *                   10^-decimals of the portal unit: currents in dA (0.1 A), voltages in dV
 *                   (0.1 V), session energy 553 in Wh (0.001 kWh);
 *   LADE_OBS_STR    a UTF-8 string of at most LADE_OBS_STR_MAX bytes (no U+0000).
 *
 * Reporting. lade_obs_set_*() records the current value. A message is due when (a) a periodic
 * full snapshot is due, (b) an "immediate" id (710, 718, 723) changed, (c) any value moved
 * beyond its deadband since it was last *sent* and min_interval_ms passed since the last message,
 * or (d) a value differs from the sent one (even within the deadband) for max_delay_ms. Every
 * message also carries every other value that moved beyond its deadband (a message is billed per
 * 4 KB block, so they ride along for free). lade_obs_encode() writes one message of at most
 * max_msg_bytes (≤ 4096): if more is due, *more is set and the next call continues; a value is
 * never split and never dropped.
 *
 * Sent means encoded: the reporter cannot know whether the shell delivered the message. After a
 * reconnect (or a failed publish) the shell calls lade_obs_request_snapshot().
 */
#ifndef LADE_OBS_H
#define LADE_OBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/codec.h"
#include "lade/err.h"

#define LADE_OBS_MSG_MAX   4096 /* one billing block of the hub (reference/iothub.md) */
#define LADE_OBS_MSG_MIN   1600 /* smallest max_msg_bytes: any single value fits */
#define LADE_OBS_STR_MAX   255  /* longest string value (bytes, unescaped) */
#define LADE_OBS_IDS       24   /* rows in the table */
#define LADE_OBS_STR_SLOTS 4    /* string ids in the table (storage is sized by it) */
#define LADE_OBS_VALUE_MAX 999999999999999LL /* |numeric value| limit, in scaled units */
#define LADE_OBS_WALL_MAX  99999999999LL     /* largest "t" accepted (seconds) */
#define LADE_OBS_ID_MIN    (-99999)          /* decoder's id range (unknown ids included) */
#define LADE_OBS_ID_MAX    999999

enum lade_obs_type { LADE_OBS_INT = 0, LADE_OBS_FIXED = 1, LADE_OBS_STR = 2 };

/* One row of the observation table (static, read-only). */
struct lade_obs_def {
    int32_t id;
    enum lade_obs_type type;
    uint8_t decimals;     /* LADE_OBS_FIXED: digits after the point; else 0 */
    bool immediate;       /* due at once on any change (710, 718, 723) */
    int64_t deadband;     /* absolute, scaled units; 0 = any change */
    uint8_t deadband_pct; /* relative to the last sent value; the larger band applies */
    const char *name;     /* for logs and docs, e.g. "current_l1" */
};

/* The table, in the order values are encoded; *count = number of rows. */
const struct lade_obs_def *lade_obs_table(size_t *count);
/* The row of id, or NULL for an id the charger does not report. */
const struct lade_obs_def *lade_obs_find(int32_t id);

struct lade_obs_config {
    uint32_t snapshot_interval_ms; /* full snapshot period; 0 = default 900 000 (15 min) */
    uint32_t min_interval_ms;      /* between messages carried by non-immediate changes;
                                      0 = default 10 000 */
    uint32_t max_delay_ms;         /* longest a within-deadband difference is held;
                                      0 = default 300 000 (5 min) */
    uint32_t max_msg_bytes;        /* 0 = LADE_OBS_MSG_MAX; LADE_OBS_MSG_MIN..LADE_OBS_MSG_MAX */
};

/* Per-id state; fields are private to obs.c. */
struct lade_obs_slot {
    int64_t value;          /* current (numeric) */
    int64_t sent_value;     /* last encoded (numeric) */
    uint64_t diff_since_ms; /* since when value != sent (within the deadband) */
    bool has_value;
    bool ever_sent;
    bool str_changed; /* string differs from the last encoded one */
    bool queued;      /* chosen for the batch being written */
};

/* Caller-owned reporter. Initialise with lade_obs_init; copying it is fine (no
 * internal pointers). About 2 KB. */
struct lade_obs_reporter {
    struct lade_obs_config cfg;
    struct lade_obs_slot slot[LADE_OBS_IDS];
    char str[LADE_OBS_STR_SLOTS][LADE_OBS_STR_MAX + 1];
    uint16_t str_len[LADE_OBS_STR_SLOTS];
    uint64_t last_msg_ms;
    uint64_t last_snapshot_ms;
    bool any_msg;
    bool snapshot_requested; /* set at init: the first message is a full snapshot */
    bool in_snapshot;        /* a snapshot batch is being written (spans messages) */
};

/* cfg may be NULL (defaults). Errors: INVAL (max_msg_bytes outside MSG_MIN..MSG_MAX). */
lade_err lade_obs_init(struct lade_obs_reporter *r, const struct lade_obs_config *cfg,
                       uint64_t now_ms) LADE_MUST_CHECK;

/* Record the current value of an INT or FIXED id (value in the scaled unit above).
 * Errors: NOT_FOUND (id not in the table), INVAL (id is a string id, |value| >
 * LADE_OBS_VALUE_MAX). */
lade_err lade_obs_set_int(struct lade_obs_reporter *r, int32_t id, int64_t value,
                          uint64_t now_ms) LADE_MUST_CHECK;
/* Record the current value of a STR id; s[0..n) is copied. Errors: NOT_FOUND, INVAL (not a
 * string id, n > LADE_OBS_STR_MAX), UTF8 (invalid UTF-8 or U+0000). */
lade_err lade_obs_set_str(struct lade_obs_reporter *r, int32_t id, const char *s, size_t n,
                          uint64_t now_ms) LADE_MUST_CHECK;

/* Next encode emits a full snapshot (after a reconnect or a lost publish). */
void lade_obs_request_snapshot(struct lade_obs_reporter *r);

/* The next periodic snapshot is due at due_ms (monotonic) instead of one interval after the
 * last: the interval counts from due_ms - interval. A later due_ms than that is ignored. */
void lade_obs_set_snapshot_due(struct lade_obs_reporter *r, uint64_t due_ms);

/* Monotonic time at which the next message is due (≤ now: due now); UINT64_MAX: nothing to
 * send until a value changes. The shell arms its timer with it. */
uint64_t lade_obs_next_due_ms(const struct lade_obs_reporter *r);
bool lade_obs_due(const struct lade_obs_reporter *r, uint64_t now_ms);

/* Writes one message (NUL-terminated; *len excludes the NUL) of at most
 * min(cap - 1, max_msg_bytes) bytes holding what is due at now_ms, stamped wall_s, and marks the
 * values in it as sent. *len = 0 and *more = false when nothing is due. *more = true when due
 * values remain that did not fit: call again (same now_ms is fine) before the next timer.
 * Errors: NOSPACE (not even one due value fits in cap; nothing is marked sent: call again with
 * a bigger buffer — a cap above LADE_OBS_MSG_MIN always suffices), INVAL. */
lade_err lade_obs_encode(struct lade_obs_reporter *r, uint64_t now_ms, int64_t wall_s, char *buf,
                         size_t cap, size_t *len, bool *more) LADE_MUST_CHECK;

/* ---- decoder (portal side; input is untrusted) ---- */

/* One decoded value. Views point into the decoded input. */
struct lade_obs_item {
    int32_t id;
    const struct lade_obs_def *def; /* NULL: id not in the table (kept, see docs) */
    bool is_str;
    int64_t value;       /* numeric value in def's scaled unit; 0 for unknown ids and strings */
    struct lade_str raw; /* number text, or string contents as sent (still escaped) */
};

struct lade_obs_msg {
    int64_t wall_s;
    bool snapshot;
    size_t count; /* items written */
};

/* Strict decode of one message (grammar in docs/observations.md). Known ids must carry their
 * table type (a FIXED value with more non-zero decimals than the table allows is rejected); unknown
 * ids in the decoder's id range are kept with def = NULL. Duplicate ids are rejected. Errors: PROTO
 * (malformed, with nothing promised about msg/items), TOO_BIG (n > LADE_OBS_MSG_MAX or more values
 * than items_cap). */
lade_err lade_obs_decode(const char *in, size_t n, struct lade_obs_msg *msg,
                         struct lade_obs_item *items, size_t items_cap) LADE_MUST_CHECK;

/* Unescapes a decoded string view (raw of an is_str item) into out, NUL-terminated.
 * Errors: PROTO (bad escape), NOSPACE. */
lade_err lade_obs_unescape(struct lade_str raw, char *out, size_t cap,
                           size_t *out_len) LADE_MUST_CHECK;

#endif
