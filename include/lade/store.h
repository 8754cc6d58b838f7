/* lade — the portal's store (SPEC R14–R17, U2, U5, U6; see docs/store.md).
 *
 * What the portal keeps: installations with their circuit tree and chargers (the installer's
 * settings, R17), the latest state of every charger (GET /api/chargers/{id}/state), samples for
 * the web page's last-hour plot, charge sessions (charge history, stored exactly once), the
 * setpoints the balancer sent, users with roles, which installations each user may see, and
 * bearer tokens (stored hashed).
 *
 * One interface, several backends: struct lade_store is opaque and dispatches through a
 * struct lade_store_ops (below). SQLite is the default (lade_store_open_sqlite); a PostgreSQL
 * backend implements the same ops when a site outgrows one machine (U5). Every argument is
 * checked here, before any backend sees it, so all backends refuse the same input the same way.
 *
 * Conventions for every function:
 *   - returns lade_err; never aborts; nothing changes when a write returns an error;
 *   - INVAL: NULL pointer or a value outside its documented range (checked before the backend
 *     is called); NOT_FOUND: an id that does not exist (also a referenced id: an unknown
 *     installation, circuit or user); EXISTS: a unique name/id already taken; STATE: the
 *     operation would break the tree (a circuit that still has sub-circuits) or a store
 *     function was called from inside a list callback; DB: the backend failed (file unusable,
 *     disk full, I/O, corrupt) — lade_store_errmsg() says why; NOMEM;
 *   - ids are positive integers chosen by the store; 0 means "none" in optional references;
 *   - times are arguments: *_s wall seconds, *_ms wall milliseconds (Unix epoch, UTC);
 *   - currents are in mA (int32_t, >= 0); "[3]" arrays are per supply phase L1, L2, L3;
 *   - strings in structs are NUL-terminated copies (no lifetime issues); strings passed in are
 *     read during the call only;
 *   - list functions call fn once per row; a non-zero return from fn stops the walk (not an
 *     error). Pointers passed to fn are valid during that call only. fn must not call the store
 *     (LADE_ERR_STATE): collect what you need, then query again.
 *
 * A struct lade_store is not thread-safe: one per thread (the portal has one event loop).
 * Calls do blocking disk I/O (SQLite); they are short, indexed, and the prune functions take a
 * row budget so the loop is never held for long.
 */
#ifndef LADE_STORE_H
#define LADE_STORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"

#define LADE_STORE_PHASES            3
#define LADE_STORE_NAME_MAX          128      /* installation/circuit/charger name, bytes */
#define LADE_STORE_DEVICE_ID_MAX     128      /* = LADE_REGISTRY_ID_MAX: [A-Za-z0-9-]{1,128} */
#define LADE_STORE_USERNAME_MAX      128      /* bytes */
#define LADE_STORE_HASH_MAX          255      /* encoded password hash (auth.h), printable ASCII */
#define LADE_STORE_VALUE_MAX         255      /* observation value text, bytes */
#define LADE_STORE_SESSION_ID_LEN    32       /* lower-case hex chars (the charger's $.mid) */
#define LADE_STORE_END_REASON_MAX    23       /* bytes */
#define LADE_STORE_TOKEN_HASH_LEN    32       /* SHA-256 of a bearer token */
#define LADE_STORE_CHARGER_MAX_MA    63000    /* R14: a charger sits behind at most 63 A */
#define LADE_STORE_FUSE_MAX_MA       10000000 /* 10 kA: sanity bound for fuses and limits */
#define LADE_STORE_PRIORITY_MAX      1000     /* charger priority 0..1000 */
#define LADE_STORE_CIRCUIT_DEPTH_MAX 8        /* circuits nest at most this deep */
#define LADE_STORE_STATE_BATCH_MAX   256      /* observations per lade_store_state_put */
#define LADE_STORE_PAGE_SIZE_DEFAULT 50
#define LADE_STORE_PAGE_SIZE_MAX     1000
#define LADE_STORE_BUSY_DEFAULT_MS   5000 /* SQLite busy timeout */
#define LADE_STORE_ERRMSG_SIZE       256
#define LADE_STORE_SQLITE_SCHEMA     2 /* schema version the SQLite backend writes */

/* portal-api NetworkType. */
enum lade_network_type {
    LADE_NET_UNKNOWN = 0,
    LADE_NET_IT_1_PHASE = 1,
    LADE_NET_IT_3_PHASE = 2,
    LADE_NET_TN_1_PHASE = 3,
    LADE_NET_TN_3_PHASE = 4,
};

/* portal-api UserRoles bitmask. */
enum lade_user_role {
    LADE_ROLE_USER = 1,
    LADE_ROLE_OWNER = 2,
    LADE_ROLE_MAINTAINER = 4,
    LADE_ROLE_ADMIN = 8, /* as a user's global role: sees and manages every installation */
};
#define LADE_ROLE_ALL 15u

struct lade_store;

/* ---- installations ---- */

struct lade_store_installation {
    int64_t id; /* chosen by the store (add ignores the given value) */
    char name[LADE_STORE_NAME_MAX + 1];
    enum lade_network_type network_type;
    /* Configured current the installation may draw, per phase (REST AvailableCurrentPhase1..3);
     * 0 <= available_ma[i] <= fuse_ma[i] (R15: a configured limit may be lower than the fuse,
     * never higher). */
    int32_t available_ma[LADE_STORE_PHASES];
    /* Physical main fuse per phase (REST MaxCurrent = the largest); fuse_ma[0] > 0, the others
     * may be 0 for a single-phase supply. <= LADE_STORE_FUSE_MAX_MA. */
    int32_t fuse_ma[LADE_STORE_PHASES];
    int64_t created_s; /* set by the caller on add; kept by update */
};

/* *id_out (may be NULL) gets the new id. Errors: INVAL. */
lade_err lade_store_installation_add(struct lade_store *st,
                                     const struct lade_store_installation *in,
                                     int64_t *id_out) LADE_MUST_CHECK;
lade_err lade_store_installation_get(struct lade_store *st, int64_t id,
                                     struct lade_store_installation *out) LADE_MUST_CHECK;
/* Replaces name, network type, available and fuse of in->id. NOT_FOUND. */
lade_err lade_store_installation_update(struct lade_store *st,
                                        const struct lade_store_installation *in) LADE_MUST_CHECK;
/* Removes the installation, its circuits and access grants; its chargers become unassigned
 * (installation and circuit 0), their sessions keep their history (installation_id 0). */
lade_err lade_store_installation_remove(struct lade_store *st, int64_t id) LADE_MUST_CHECK;
/* In id order. user_id 0: every installation, roles 0. Otherwise only those the user may see
 * (an ADMIN sees all), with roles = the user's effective roles there (lade_store_access_get). */
typedef int (*lade_store_installation_fn)(void *ud, const struct lade_store_installation *in,
                                          uint32_t roles);
lade_err lade_store_installation_list(struct lade_store *st, int64_t user_id,
                                      lade_store_installation_fn fn, void *ud) LADE_MUST_CHECK;

/* ---- circuits (a tree under an installation) ---- */

struct lade_store_circuit {
    int64_t id;
    int64_t installation_id; /* must exist: NOT_FOUND */
    int64_t parent_id;       /* 0: directly under the installation; else a circuit of the same
                              * installation (NOT_FOUND if unknown, INVAL if of another
                              * installation, a cycle, or deeper than CIRCUIT_DEPTH_MAX) */
    char name[LADE_STORE_NAME_MAX + 1];
    int32_t limit_ma[LADE_STORE_PHASES]; /* configured, 0 <= limit <= fuse */
    int32_t fuse_ma[LADE_STORE_PHASES];  /* physical protective device, <= FUSE_MAX */
    int64_t created_s;
};

lade_err lade_store_circuit_add(struct lade_store *st, const struct lade_store_circuit *c,
                                int64_t *id_out) LADE_MUST_CHECK;
lade_err lade_store_circuit_get(struct lade_store *st, int64_t id,
                                struct lade_store_circuit *out) LADE_MUST_CHECK;
/* Replaces parent, name, limit and fuse; a circuit never moves to another installation
 * (installation_id must equal the stored one: INVAL). */
lade_err lade_store_circuit_update(struct lade_store *st,
                                   const struct lade_store_circuit *c) LADE_MUST_CHECK;
/* STATE if it still has sub-circuits. Chargers on it stay in the installation with circuit 0. */
lade_err lade_store_circuit_remove(struct lade_store *st, int64_t id) LADE_MUST_CHECK;
/* The installation's circuits, parents before children (by depth, then id). NOT_FOUND if the
 * installation does not exist. */
typedef int (*lade_store_circuit_fn)(void *ud, const struct lade_store_circuit *c);
lade_err lade_store_circuit_list(struct lade_store *st, int64_t installation_id,
                                 lade_store_circuit_fn fn, void *ud) LADE_MUST_CHECK;

/* ---- chargers ---- */

/* Phase rotation: phase_map[t] is the supply phase (1..3) that the charger's terminal t+1
 * (L1, L2, L3) lands on; always a permutation of {1, 2, 3}. {1,2,3} is straight wiring;
 * {2,3,1} ("L2L3L1") puts the charger's L1 on supply L2, and so on. For a charger wired
 * single-phase in an IT network, entry 0 is the supply phase at its L1 and entry 1 the one at
 * its N (R16: "L1/N land on two of the three supply phases"). Text form: "L1L2L3". */
bool lade_store_rotation_valid(const uint8_t phase_map[LADE_STORE_PHASES]);
/* Errors: INVAL (not exactly "L<d>L<d>L<d>" with a permutation of 1..3). */
lade_err lade_store_rotation_parse(const char *s,
                                   uint8_t phase_map[LADE_STORE_PHASES]) LADE_MUST_CHECK;
/* Writes the 6-char text form + NUL; INVAL if the map is not a permutation. */
lade_err lade_store_rotation_format(const uint8_t phase_map[LADE_STORE_PHASES],
                                    char out[7]) LADE_MUST_CHECK;

struct lade_store_charger {
    int64_t id;
    char device_id[LADE_STORE_DEVICE_ID_MAX + 1]; /* the registry's device id; unique (EXISTS) */
    char name[LADE_STORE_NAME_MAX + 1];
    int64_t installation_id; /* 0: not assigned yet; else must exist (NOT_FOUND) */
    int64_t circuit_id;      /* 0: directly under the installation; else a circuit of that
                              * installation (NOT_FOUND / INVAL if of another one); needs an
                              * installation */
    int32_t priority;        /* 0..PRIORITY_MAX; the balancer serves larger first */
    uint8_t phase_map[LADE_STORE_PHASES];
    int32_t max_current_ma;     /* 0..CHARGER_MAX_MA (R14: above 63 A is INVAL) */
    int32_t min_current_ma;     /* 0..max_current_ma */
    uint8_t max_phases;         /* 1 or 3 */
    int32_t offline_current_ma; /* 0..max_current_ma; the charger's fallback without the hub */
    uint8_t offline_phases;     /* 1 or 3 */
    bool active;
    int64_t created_s;
    /* Read-only: filled by get/list from lade_store_charger_presence, ignored on add/update. */
    bool online;
    int64_t last_seen_s; /* 0: never seen */
};

/* Fills c with defaults: straight rotation, max 32 A, min 6 A, 3 phases, offline 6 A on 1
 * phase, active, priority 0, unassigned. The caller sets device_id and name. */
void lade_store_charger_defaults(struct lade_store_charger *c);

/* Sessions already received from this device (before it was added) are linked to it. */
lade_err lade_store_charger_add(struct lade_store *st, const struct lade_store_charger *c,
                                int64_t *id_out) LADE_MUST_CHECK;
lade_err lade_store_charger_get(struct lade_store *st, int64_t id,
                                struct lade_store_charger *out) LADE_MUST_CHECK;
lade_err lade_store_charger_get_by_device(struct lade_store *st, const char *device_id,
                                          struct lade_store_charger *out) LADE_MUST_CHECK;
/* Replaces every settable field of c->id (device_id included: EXISTS if taken). */
lade_err lade_store_charger_update(struct lade_store *st,
                                   const struct lade_store_charger *c) LADE_MUST_CHECK;
/* Removes the charger with its state, samples, setpoints and presence; its sessions stay
 * (charger_id 0, device_id kept). */
lade_err lade_store_charger_remove(struct lade_store *st, int64_t id) LADE_MUST_CHECK;
/* In id order. installation_id 0: all chargers (assigned or not); user_id non-zero: only
 * chargers of installations the user may see (an ADMIN sees all, unassigned ones included). */
typedef int (*lade_store_charger_fn)(void *ud, const struct lade_store_charger *c);
lade_err lade_store_charger_list(struct lade_store *st, int64_t installation_id, int64_t user_id,
                                 lade_store_charger_fn fn, void *ud) LADE_MUST_CHECK;

/* Online flag and last-seen time (hub connect/disconnect events, any message). seen_s is
 * stored as given, so the caller passes the event time. NOT_FOUND. */
lade_err lade_store_charger_presence(struct lade_store *st, int64_t charger_id, bool online,
                                     int64_t seen_s) LADE_MUST_CHECK;

/* ---- charger state: the latest value per (charger, observation id) ---- */

struct lade_store_obs {
    int32_t obs_id;    /* portal-api observation id (negative ids such as -2 are valid) */
    const char *value; /* UTF-8 text without NUL, <= VALUE_MAX bytes ("32.000", "1") */
    int64_t ts_ms;     /* when the charger observed it */
};

/* Upserts n (<= STATE_BATCH_MAX) values in one transaction. An older value never overwrites a
 * newer one (a replayed or reordered message): a row changes only if ts_ms >= the stored ts_ms.
 * NOT_FOUND if the charger does not exist; INVAL for a bad item (then nothing is stored). */
lade_err lade_store_state_put(struct lade_store *st, int64_t charger_id,
                              const struct lade_store_obs *items, size_t n) LADE_MUST_CHECK;
/* In observation id order. NOT_FOUND if the charger does not exist. */
typedef int (*lade_store_obs_fn)(void *ud, const struct lade_store_obs *o);
lade_err lade_store_state_list(struct lade_store *st, int64_t charger_id, lade_store_obs_fn fn,
                               void *ud) LADE_MUST_CHECK;

/* ---- samples for the last-hour plot ---- */

struct lade_store_sample {
    int64_t charger_id;
    int64_t t_s;
    int32_t current_ma[LADE_STORE_PHASES]; /* measured, >= 0 */
    int32_t allocated_ma;                  /* what the balancer allocated, >= 0 */
    int32_t power_w;                       /* >= 0 */
};

/* One sample per (charger, second): a second sample for the same t_s replaces the first.
 * NOT_FOUND if the charger does not exist. */
lade_err lade_store_sample_add(struct lade_store *st,
                               const struct lade_store_sample *s) LADE_MUST_CHECK;
/* Samples with from_s <= t_s < to_s in time order. */
typedef int (*lade_store_sample_fn)(void *ud, const struct lade_store_sample *s);
lade_err lade_store_sample_list(struct lade_store *st, int64_t charger_id, int64_t from_s,
                                int64_t to_s, lade_store_sample_fn fn, void *ud) LADE_MUST_CHECK;
/* Deletes samples with t_s < before_s, at most max_rows of them (0: no limit); *deleted_out
 * (may be NULL) gets the count. Call again while it equals max_rows. */
lade_err lade_store_sample_prune(struct lade_store *st, int64_t before_s, uint32_t max_rows,
                                 uint64_t *deleted_out) LADE_MUST_CHECK;

/* ---- charge sessions (charge history; SPEC U3: stored exactly once) ---- */

struct lade_store_session {
    int64_t id;                                     /* the store's row id (REST "Id") */
    char session_id[LADE_STORE_SESSION_ID_LEN + 1]; /* 32 lower-case hex, unique */
    char device_id[LADE_STORE_DEVICE_ID_MAX + 1];
    int64_t charger_id;      /* resolved by the store from device_id; 0 if not (yet) known */
    int64_t installation_id; /* the charger's installation when received; 0 if none */
    int64_t start_s, end_s;  /* as the charger reported them (kept even if end < start) */
    uint64_t energy_wh;      /* <= INT64_MAX */
    bool reliable_clock;
    bool end_estimated;
    int32_t peak_power_w; /* >= 0 */
    uint8_t phases;       /* 0..3 */
    char end_reason[LADE_STORE_END_REASON_MAX + 1];
    int64_t received_s;
};

/* Result of lade_store_session_add when it returns LADE_OK. */
enum lade_store_ingest {
    LADE_STORE_ADDED = 1,     /* new: stored now */
    LADE_STORE_DUPLICATE = 2, /* already had this session id with the same content: no change */
    LADE_STORE_CONFLICT = 3,  /* already had this id with other content: kept the first, logged */
};

/* Stores a finished session once per session_id: a resent session (the charger's outbox
 * retries until the hub acknowledged) is not an error, *result says what happened. id,
 * charger_id and installation_id of s are ignored (the store resolves them). Durable when it
 * returns (synced to disk even with the portal's synchronous=NORMAL): only then may the
 * caller acknowledge the message to the hub. */
lade_err lade_store_session_add(struct lade_store *st, const struct lade_store_session *s,
                                enum lade_store_ingest *result) LADE_MUST_CHECK;
lade_err lade_store_session_get(struct lade_store *st, const char *session_id,
                                struct lade_store_session *out) LADE_MUST_CHECK;

struct lade_store_session_query {
    int64_t installation_id; /* 0: any */
    int64_t charger_id;      /* 0: any */
    int64_t user_id;         /* 0: no restriction; else only installations the user may see */
    int64_t from_s;          /* sessions that overlap [from_s, to_s): end_s >= from_s */
    int64_t to_s;            /*   and start_s < to_s; to_s 0 = no upper bound */
    uint32_t page;           /* 0-based */
    uint32_t page_size;      /* 0: PAGE_SIZE_DEFAULT; <= PAGE_SIZE_MAX */
};
/* Newest first (end_s, then id, descending); *total_out (may be NULL) gets the number of
 * matching sessions over all pages. */
typedef int (*lade_store_session_fn)(void *ud, const struct lade_store_session *s);
lade_err lade_store_session_list(struct lade_store *st, const struct lade_store_session_query *q,
                                 lade_store_session_fn fn, void *ud,
                                 uint64_t *total_out) LADE_MUST_CHECK;

/* ---- setpoints log: what the balancer sent and when the charger confirmed it ---- */

struct lade_store_setpoint {
    int64_t id;
    int64_t charger_id;
    int32_t current_ma; /* 0..CHARGER_MAX_MA (0 = pause) */
    uint8_t phases;     /* 1 or 3 */
    int64_t sent_ms;
    int64_t confirmed_ms; /* 0: not (yet) confirmed */
};

lade_err lade_store_setpoint_add(struct lade_store *st, const struct lade_store_setpoint *sp,
                                 int64_t *id_out) LADE_MUST_CHECK;
lade_err lade_store_setpoint_confirm(struct lade_store *st, int64_t id,
                                     int64_t confirmed_ms) LADE_MUST_CHECK;
/* The charger's most recent setpoint. NOT_FOUND if none. */
lade_err lade_store_setpoint_last(struct lade_store *st, int64_t charger_id,
                                  struct lade_store_setpoint *out) LADE_MUST_CHECK;
lade_err lade_store_setpoint_prune(struct lade_store *st, int64_t before_ms, uint32_t max_rows,
                                   uint64_t *deleted_out) LADE_MUST_CHECK;

/* ---- users and access ---- */

struct lade_store_user {
    int64_t id;
    /* Unique ignoring ASCII case; 1..USERNAME_MAX bytes of UTF-8 without control characters
     * and without leading or trailing spaces. */
    char username[LADE_STORE_USERNAME_MAX + 1];
    uint32_t roles; /* global roles, 0..LADE_ROLE_ALL; LADE_ROLE_ADMIN sees everything */
    char password_hash[LADE_STORE_HASH_MAX + 1]; /* lade_auth_hash_password's string */
    int64_t created_s;
};

lade_err lade_store_user_add(struct lade_store *st, const struct lade_store_user *u,
                             int64_t *id_out) LADE_MUST_CHECK;
lade_err lade_store_user_get(struct lade_store *st, int64_t id,
                             struct lade_store_user *out) LADE_MUST_CHECK;
lade_err lade_store_user_get_by_name(struct lade_store *st, const char *username,
                                     struct lade_store_user *out) LADE_MUST_CHECK;
/* Replaces username, roles and password hash. */
lade_err lade_store_user_update(struct lade_store *st,
                                const struct lade_store_user *u) LADE_MUST_CHECK;
/* Removes the user with its grants and tokens. */
lade_err lade_store_user_remove(struct lade_store *st, int64_t id) LADE_MUST_CHECK;
typedef int (*lade_store_user_fn)(void *ud, const struct lade_store_user *u);
lade_err lade_store_user_list(struct lade_store *st, lade_store_user_fn fn,
                              void *ud) LADE_MUST_CHECK;

/* Grants roles (1..LADE_ROLE_ALL) on one installation; 0 removes the grant (OK if there was
 * none). NOT_FOUND if the user or installation does not exist. */
lade_err lade_store_access_set(struct lade_store *st, int64_t user_id, int64_t installation_id,
                               uint32_t roles) LADE_MUST_CHECK;
/* The user's effective roles on the installation: the grant's roles OR the user's global
 * roles if there is a grant or the user is an ADMIN, else 0 (no access). NOT_FOUND if the user
 * or installation does not exist. */
lade_err lade_store_access_get(struct lade_store *st, int64_t user_id, int64_t installation_id,
                               uint32_t *roles_out) LADE_MUST_CHECK;

/* ---- bearer tokens (stored as SHA-256 of the token; see auth.h) ---- */

/* NOT_FOUND if the user does not exist; EXISTS if the hash is already stored;
 * INVAL unless created_s < expires_s. */
lade_err lade_store_token_add(struct lade_store *st, const uint8_t hash[LADE_STORE_TOKEN_HASH_LEN],
                              int64_t user_id, int64_t created_s,
                              int64_t expires_s) LADE_MUST_CHECK;
/* Looks a token up by hash: NOT_FOUND if unknown or revoked, EXPIRED if now_s >= expiry (the
 * outputs are filled in both OK and EXPIRED cases). */
lade_err lade_store_token_get(struct lade_store *st, const uint8_t hash[LADE_STORE_TOKEN_HASH_LEN],
                              int64_t now_s, int64_t *user_id_out,
                              int64_t *expires_s_out) LADE_MUST_CHECK;
lade_err lade_store_token_revoke(struct lade_store *st,
                                 const uint8_t hash[LADE_STORE_TOKEN_HASH_LEN]) LADE_MUST_CHECK;
/* Revokes every token of the user (after a password change); *n_out may be NULL. */
lade_err lade_store_token_revoke_user(struct lade_store *st, int64_t user_id,
                                      uint64_t *n_out) LADE_MUST_CHECK;
/* Deletes expired tokens (expires_s <= now_s). */
lade_err lade_store_token_prune(struct lade_store *st, int64_t now_s,
                                uint64_t *deleted_out) LADE_MUST_CHECK;

/* ---- opening and closing ---- */

struct lade_store_sqlite_opts {
    int busy_timeout_ms; /* 0: LADE_STORE_BUSY_DEFAULT_MS */
    char *errmsg;        /* if non-NULL, a failed open writes why here (NUL-terminated) */
    size_t errmsg_cap;
};

/* Opens (creating if missing) an SQLite store at path: WAL journal, synchronous=NORMAL
 * (sessions and configuration changes are synced at commit, see docs/store.md), foreign keys
 * on, busy timeout, schema migrated forward. Errors: INVAL, DB (cannot create/open, not a
 * database, corrupt, read-only, I/O; the reason is logged and written to opts->errmsg),
 * CONFIG (the file's schema is newer than this program), NOMEM. */
lade_err lade_store_open_sqlite(const char *path, struct lade_store **out) LADE_MUST_CHECK;
lade_err lade_store_open_sqlite_ex(const char *path, const struct lade_store_sqlite_opts *opts,
                                   struct lade_store **out) LADE_MUST_CHECK;
void lade_store_close(struct lade_store *st); /* NULL is fine */

/* The reason for the last DB error of this store ("" if none); valid until the next call. */
const char *lade_store_errmsg(const struct lade_store *st);
/* The backend's name ("sqlite"). */
const char *lade_store_backend_name(const struct lade_store *st);

/* ---- backend interface ----
 *
 * A backend fills a struct lade_store_ops and calls lade_store_new with its own context (be).
 * store.c checks every argument against the contracts above before calling an op, so an op may
 * assume valid input (non-NULL pointers, ranges, string forms) and must only enforce what needs
 * the data: existence (NOT_FOUND), uniqueness (EXISTS), same-installation and tree rules, and
 * atomicity. Ops report backend failures with lade_store_fail (which records the message) and
 * return DB/NOMEM. Each op has the signature of its public function with be in place of st. */
struct lade_store_ops {
    const char *name;
    void (*close)(void *be);

    lade_err (*installation_add)(void *be, const struct lade_store_installation *in, int64_t *id);
    lade_err (*installation_get)(void *be, int64_t id, struct lade_store_installation *out);
    lade_err (*installation_update)(void *be, const struct lade_store_installation *in);
    lade_err (*installation_remove)(void *be, int64_t id);
    lade_err (*installation_list)(void *be, int64_t user_id, lade_store_installation_fn fn,
                                  void *ud);

    lade_err (*circuit_add)(void *be, const struct lade_store_circuit *c, int64_t *id);
    lade_err (*circuit_get)(void *be, int64_t id, struct lade_store_circuit *out);
    lade_err (*circuit_update)(void *be, const struct lade_store_circuit *c);
    lade_err (*circuit_remove)(void *be, int64_t id);
    lade_err (*circuit_list)(void *be, int64_t installation_id, lade_store_circuit_fn fn, void *ud);

    lade_err (*charger_add)(void *be, const struct lade_store_charger *c, int64_t *id);
    lade_err (*charger_get)(void *be, int64_t id, struct lade_store_charger *out);
    lade_err (*charger_get_by_device)(void *be, const char *device_id,
                                      struct lade_store_charger *out);
    lade_err (*charger_update)(void *be, const struct lade_store_charger *c);
    lade_err (*charger_remove)(void *be, int64_t id);
    lade_err (*charger_list)(void *be, int64_t installation_id, int64_t user_id,
                             lade_store_charger_fn fn, void *ud);
    lade_err (*charger_presence)(void *be, int64_t charger_id, bool online, int64_t seen_s);

    lade_err (*state_put)(void *be, int64_t charger_id, const struct lade_store_obs *items,
                          size_t n);
    lade_err (*state_list)(void *be, int64_t charger_id, lade_store_obs_fn fn, void *ud);

    lade_err (*sample_add)(void *be, const struct lade_store_sample *s);
    lade_err (*sample_list)(void *be, int64_t charger_id, int64_t from_s, int64_t to_s,
                            lade_store_sample_fn fn, void *ud);
    lade_err (*sample_prune)(void *be, int64_t before_s, uint32_t max_rows, uint64_t *deleted);

    lade_err (*session_add)(void *be, const struct lade_store_session *s,
                            enum lade_store_ingest *result);
    lade_err (*session_get)(void *be, const char *session_id, struct lade_store_session *out);
    lade_err (*session_list)(void *be, const struct lade_store_session_query *q,
                             lade_store_session_fn fn, void *ud, uint64_t *total);

    lade_err (*setpoint_add)(void *be, const struct lade_store_setpoint *sp, int64_t *id);
    lade_err (*setpoint_confirm)(void *be, int64_t id, int64_t confirmed_ms);
    lade_err (*setpoint_last)(void *be, int64_t charger_id, struct lade_store_setpoint *out);
    lade_err (*setpoint_prune)(void *be, int64_t before_ms, uint32_t max_rows, uint64_t *deleted);

    lade_err (*user_add)(void *be, const struct lade_store_user *u, int64_t *id);
    lade_err (*user_get)(void *be, int64_t id, struct lade_store_user *out);
    lade_err (*user_get_by_name)(void *be, const char *username, struct lade_store_user *out);
    lade_err (*user_update)(void *be, const struct lade_store_user *u);
    lade_err (*user_remove)(void *be, int64_t id);
    lade_err (*user_list)(void *be, lade_store_user_fn fn, void *ud);
    lade_err (*access_set)(void *be, int64_t user_id, int64_t installation_id, uint32_t roles);
    lade_err (*access_get)(void *be, int64_t user_id, int64_t installation_id, uint32_t *roles);

    lade_err (*token_add)(void *be, const uint8_t hash[LADE_STORE_TOKEN_HASH_LEN], int64_t user_id,
                          int64_t created_s, int64_t expires_s);
    lade_err (*token_get)(void *be, const uint8_t hash[LADE_STORE_TOKEN_HASH_LEN], int64_t now_s,
                          int64_t *user_id, int64_t *expires_s);
    lade_err (*token_revoke)(void *be, const uint8_t hash[LADE_STORE_TOKEN_HASH_LEN]);
    lade_err (*token_revoke_user)(void *be, int64_t user_id, uint64_t *n);
    lade_err (*token_prune)(void *be, int64_t now_s, uint64_t *deleted);
};

/* Wraps a backend context. ops must outlive the store (a static const table); every op must be
 * set. On success the store owns be (ops->close(be) runs at lade_store_close); on error the
 * caller still owns it. Errors: INVAL, NOMEM. */
lade_err lade_store_new(const struct lade_store_ops *ops, void *be,
                        struct lade_store **out) LADE_MUST_CHECK;
/* For backends: records why the last operation failed (shown by lade_store_errmsg) and logs
 * it at WARN. st is the store that lade_store_new returned for the backend's context (NULL
 * while opening: then it only logs). */
void lade_store_fail(struct lade_store *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
