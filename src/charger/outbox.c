/* Persistent outbox on SQLite (see outbox.h, docs/outbox.md; issue 3 item 5, SPEC U3/U4).
 *
 * Why synchronous=FULL with WAL: in WAL mode NORMAL only syncs at checkpoints, so a commit
 * could be lost at a power cut after put returned. FULL syncs the WAL at every commit, which is
 * what "durable before the session is acknowledged" needs.
 *
 * Why every put is one IMMEDIATE transaction: dropping STATE records for room and inserting
 * the new record happen together or not at all, so a kill -9 between them cannot lose state
 * without storing the new record, and the persisted drop counter stays exact.
 */
#include "lade/outbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "lade/clock.h"
#include "lade/log.h"

#define MOD "outbox"

const struct lade_outbox_limits lade_outbox_limits_default = {
    .max_records = 1000,
    .max_bytes = 1024 * 1024,
    .session_hard_records = 10000,
    .session_hard_bytes = 8 * 1024 * 1024,
};

struct lade_outbox {
    sqlite3 *db;
    struct lade_outbox_limits lim;
    char path[LADE_OUTBOX_PATH_MAX + 1];
    struct lade_outbox_stats st; /* counters since open + fault state; sizes filled on demand */
};

/* Migration i takes the schema from version i to i + 1. Append only.
 * AUTOINCREMENT: a seq is never reused, even after the newest record is acked, so a sender's
 * after_seq cursor can never skip a record stored later. */
static const char *const migrations[] = {
    /* 0 → 1 */
    "CREATE TABLE outbox("
    "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  msg_id TEXT NOT NULL UNIQUE,"
    "  kind INTEGER NOT NULL,"
    "  created_wall_s INTEGER NOT NULL,"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  last_attempt_wall_s INTEGER NOT NULL DEFAULT 0,"
    "  len INTEGER NOT NULL,"
    "  payload BLOB NOT NULL);"
    "CREATE INDEX outbox_kind_seq ON outbox(kind, seq);"
    "CREATE TABLE counters(name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);"
    "INSERT INTO counters VALUES('dropped_state', 0);",
    /* 1 → 2: the session in progress, checkpointed so a crash or power cut cannot lose it.
     * Closed by the put of a SESSION record with the same msg_id, in the same transaction. */
    "CREATE TABLE open_session("
    "  msg_id TEXT PRIMARY KEY NOT NULL,"
    "  updated_wall_s INTEGER NOT NULL,"
    "  payload BLOB NOT NULL);",
};
_Static_assert(sizeof migrations / sizeof migrations[0] == LADE_OUTBOX_SCHEMA,
               "one migration per schema version");

/* ---- ids ---- */

bool lade_outbox_id_valid(const char *id)
{
    if (!id)
        return false;
    for (size_t i = 0; i < LADE_OUTBOX_ID_LEN; i++) {
        char c = id[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    }
    return id[LADE_OUTBOX_ID_LEN] == '\0';
}

lade_err lade_outbox_new_id(char out[LADE_OUTBOX_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t raw[LADE_OUTBOX_ID_LEN / 2];
    if (!out)
        return LADE_ERR_INVAL;
    lade_err err = lade_random(raw, sizeof raw);
    if (err != LADE_OK)
        return err;
    for (size_t i = 0; i < sizeof raw; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[LADE_OUTBOX_ID_LEN] = '\0';
    return LADE_OK;
}

/* ---- errors ---- */

static void ok_op(struct lade_outbox *ob)
{
    ob->st.storage_fault = false;
}

/* Records a storage failure (rc from SQLite) with its reason and returns the lade_err. */
static lade_err fault(struct lade_outbox *ob, int rc, const char *what)
{
    lade_err err = rc == SQLITE_NOMEM ? LADE_ERR_NOMEM : LADE_ERR_DB;
    int sys = ob->db ? sqlite3_system_errno(ob->db) : 0;
    const char *msg = ob->db ? sqlite3_errmsg(ob->db) : sqlite3_errstr(rc);
    ob->st.storage_fault = true;
    ob->st.faults++;
    ob->st.last_err = err;
    if (sys)
        snprintf(ob->st.last_error, sizeof ob->st.last_error, "%s: %s (%s)", what, msg,
                 strerror(sys));
    else
        snprintf(ob->st.last_error, sizeof ob->st.last_error, "%s: %s", what, msg);
    LOG_E(MOD, "%s: %s", ob->path, ob->st.last_error);
    return err;
}

static int exec_rc(struct lade_outbox *ob, const char *sql)
{
    return sqlite3_exec(ob->db, sql, NULL, NULL, NULL);
}

static bool is_corrupt_rc(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT;
}

/* ---- open ---- */

static int read_schema_version(struct lade_outbox *ob, int64_t *v)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ob->db, "SELECT version FROM schema_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? SQLITE_OK : rc;
    sqlite3_finalize(st);
    return rc;
}

/* Returns an SQLite code; *config is set when the schema is newer than this code. */
static int migrate(struct lade_outbox *ob, bool *config)
{
    int64_t v = 0;
    int rc;
    if ((rc = exec_rc(ob, "BEGIN IMMEDIATE")) != SQLITE_OK)
        return rc;
    if ((rc = exec_rc(ob, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)")))
        goto out;
    if ((rc = read_schema_version(ob, &v)) != SQLITE_OK)
        goto out;
    if (v > LADE_OUTBOX_SCHEMA || v < 0) {
        LOG_E(MOD, "%s: schema version %lld is not one this program knows (%d)", ob->path,
              (long long)v, LADE_OUTBOX_SCHEMA);
        *config = true;
        rc = SQLITE_ERROR;
        goto out;
    }
    for (int64_t i = v; i < LADE_OUTBOX_SCHEMA; i++) {
        if ((rc = exec_rc(ob, migrations[i])) != SQLITE_OK)
            goto out;
        LOG_I(MOD, "schema migrated %lld -> %lld", (long long)i, (long long)(i + 1));
    }
    if (v != LADE_OUTBOX_SCHEMA) {
        char sql[96];
        snprintf(sql, sizeof sql,
                 "DELETE FROM schema_version; INSERT INTO schema_version VALUES(%d)",
                 LADE_OUTBOX_SCHEMA);
        if ((rc = exec_rc(ob, sql)) != SQLITE_OK)
            goto out;
    }
    rc = exec_rc(ob, "COMMIT");
out:
    if (rc != SQLITE_OK)
        sqlite3_exec(ob->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* PRAGMA quick_check: O(file size), a few ms for a bounded outbox; catches a file whose header
 * is fine but whose pages are not (torn or truncated by something other than SQLite). */
static int quick_check(struct lade_outbox *ob)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ob->db, "PRAGMA quick_check", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *res = (const char *)sqlite3_column_text(st, 0);
        if (!res || strcmp(res, "ok") != 0) {
            /* The report can be many lines; the first says what is wrong. */
            int n = res ? (int)strcspn(res, "\n") : 0;
            if (n > 0 && res[n] == '\n' && strncmp(res, "*** ", 4) == 0)
                n += 1 + (int)strcspn(res + n + 1, "\n");
            LOG_E(MOD, "%s: integrity check failed: %.*s", ob->path, n, res ? res : "");
            rc = SQLITE_CORRUPT;
        } else {
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static int load_counters(struct lade_outbox *ob)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ob->db, "SELECT value FROM counters WHERE name='dropped_state'", -1,
                                &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        ob->st.dropped_state = (uint64_t)sqlite3_column_int64(st, 0);
    rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? SQLITE_OK : rc;
    sqlite3_finalize(st);
    return rc;
}

/* Makes the file's directory entry (creation, rename aside) durable. Best effort. */
static void sync_dir(const char *path)
{
    char dir[LADE_OUTBOX_PATH_MAX + 1];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* One attempt to open path. Returns an SQLite code (SQLITE_OK on success); *what names the
 * step that failed. */
static int try_open(struct lade_outbox *ob, bool *config, const char **what)
{
    int rc;
    *what = "open";
    rc = sqlite3_open_v2(ob->path, &ob->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        return rc;
    sqlite3_extended_result_codes(ob->db, 1);
    sqlite3_busy_timeout(ob->db, LADE_OUTBOX_BUSY_MS);
    *what = "set WAL mode";
    if ((rc = exec_rc(ob, "PRAGMA journal_mode=WAL")) != SQLITE_OK)
        return rc;
    *what = "set synchronous";
    if ((rc = exec_rc(ob, "PRAGMA synchronous=FULL")) != SQLITE_OK)
        return rc;
    *what = "integrity check";
    if ((rc = quick_check(ob)) != SQLITE_OK)
        return rc;
    *what = "schema";
    if ((rc = migrate(ob, config)) != SQLITE_OK)
        return rc;
    *what = "read counters";
    return load_counters(ob);
}

/* Renames path (and its WAL) to "<path>.corrupt-<wall_s>[.n]" and removes its -shm. */
static bool move_aside(struct lade_outbox *ob)
{
    char to[sizeof ob->st.corrupt_path], from_aux[LADE_OUTBOX_PATH_MAX + 8], to_aux[sizeof to + 8];
    long long now_s = (long long)lade_wall_s();
    struct stat sb;
    for (int n = 0; n < 100; n++) {
        if (n == 0)
            snprintf(to, sizeof to, "%s.corrupt-%lld", ob->path, now_s);
        else
            snprintf(to, sizeof to, "%s.corrupt-%lld.%d", ob->path, now_s, n);
        if (lstat(to, &sb) != 0)
            break;
    }
    if (rename(ob->path, to) != 0) {
        LOG_E(MOD, "%s: cannot move corrupt file aside: %s", ob->path, strerror(errno));
        return false;
    }
    snprintf(from_aux, sizeof from_aux, "%s-wal", ob->path);
    snprintf(to_aux, sizeof to_aux, "%s-wal", to);
    (void)rename(from_aux, to_aux);
    snprintf(from_aux, sizeof from_aux, "%s-shm", ob->path);
    (void)unlink(from_aux);
    sync_dir(ob->path);
    snprintf(ob->st.corrupt_path, sizeof ob->st.corrupt_path, "%s", to);
    return true;
}

static lade_err limits_check(const struct lade_outbox_limits *lim)
{
    if (lim->max_records == 0 || lim->max_bytes == 0 ||
        lim->session_hard_records < lim->max_records || lim->session_hard_bytes < lim->max_bytes)
        return LADE_ERR_INVAL;
    return LADE_OK;
}

lade_err lade_outbox_open(const char *path, const struct lade_outbox_limits *lim,
                          struct lade_outbox **out)
{
    lade_err err;
    if (!path || !out || !*path || strlen(path) > LADE_OUTBOX_PATH_MAX)
        return LADE_ERR_INVAL;
    *out = NULL;
    if (!lim)
        lim = &lade_outbox_limits_default;
    if (limits_check(lim) != LADE_OK)
        return LADE_ERR_INVAL;
    struct lade_outbox *ob = calloc(1, sizeof *ob);
    if (!ob)
        return LADE_ERR_NOMEM;
    ob->lim = *lim;
    snprintf(ob->path, sizeof ob->path, "%s", path);

    for (int attempt = 0;; attempt++) {
        bool config = false;
        const char *what;
        int rc = try_open(ob, &config, &what);
        if (rc == SQLITE_OK)
            break;
        if (config) {
            err = LADE_ERR_CONFIG;
            goto fail;
        }
        if (attempt == 0 && is_corrupt_rc(rc)) {
            /* Rename aside, never delete: the file may still hold sessions someone can recover,
             * and the charger needs a working durable outbox for the sessions still to come. */
            LOG_E(MOD, "%s: %s: %s; moving the file aside and starting a new outbox", ob->path,
                  what, sqlite3_errstr(rc));
            sqlite3_close(ob->db);
            ob->db = NULL;
            if (!move_aside(ob)) {
                err = LADE_ERR_DB;
                goto fail;
            }
            ob->st.recovered_corrupt = true;
            LOG_E(MOD, "%s: corrupt outbox moved to %s", ob->path, ob->st.corrupt_path);
            continue;
        }
        err = fault(ob, rc, what);
        goto fail;
    }
    sync_dir(ob->path);
    ok_op(ob);
    *out = ob;
    return LADE_OK;
fail:
    lade_outbox_close(ob);
    return err;
}

void lade_outbox_close(struct lade_outbox *ob)
{
    if (!ob)
        return;
    sqlite3_close(ob->db);
    free(ob);
}

/* ---- sizes ---- */

struct sizes {
    uint64_t records, bytes, session_records, session_bytes;
};

static int read_sizes(struct lade_outbox *ob, struct sizes *sz)
{
    sqlite3_stmt *st = NULL;
    memset(sz, 0, sizeof *sz);
    int rc = sqlite3_prepare_v2(
        ob->db, "SELECT kind, count(*), total(len) FROM outbox GROUP BY kind", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t n = (uint64_t)sqlite3_column_int64(st, 1);
        uint64_t b = (uint64_t)sqlite3_column_double(st, 2);
        sz->records += n;
        sz->bytes += b;
        if (sqlite3_column_int(st, 0) == LADE_OUTBOX_SESSION) {
            sz->session_records += n;
            sz->session_bytes += b;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* ---- put ---- */

/* Compares the stored record with id to (kind, payload): 1 same, 0 different, <0 SQLite error
 * (negated code). */
static int same_record(struct lade_outbox *ob, const char *id, int kind, const void *payload,
                       size_t len)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ob->db, "SELECT kind, payload FROM outbox WHERE msg_id=?1", -1, &st,
                                NULL);
    if (rc != SQLITE_OK)
        return -rc;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    int same = 0;
    if (rc == SQLITE_ROW) {
        const void *p = sqlite3_column_blob(st, 1);
        size_t n = (size_t)sqlite3_column_bytes(st, 1);
        same =
            sqlite3_column_int(st, 0) == kind && n == len && (n == 0 || memcmp(p, payload, n) == 0);
    } else if (rc != SQLITE_DONE) {
        same = -rc;
    }
    sqlite3_finalize(st);
    return same;
}

/* Deletes the oldest STATE record; *len gets its size. */
static int drop_oldest_state(struct lade_outbox *ob, uint64_t *len)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ob->db,
                                "DELETE FROM outbox WHERE seq = (SELECT min(seq) FROM outbox "
                                "WHERE kind=2) RETURNING len",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    *len = 0;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *len = (uint64_t)sqlite3_column_int64(st, 0);
        rc = sqlite3_step(st);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static bool fits(const struct sizes *sz, uint64_t len, uint64_t max_records, uint64_t max_bytes)
{
    return sz->records + 1 <= max_records && sz->bytes + len <= max_bytes;
}

lade_err lade_outbox_put(struct lade_outbox *ob, enum lade_outbox_kind kind, const char *msg_id,
                         const void *payload, size_t len, int64_t now_wall_s,
                         char id_out[LADE_OUTBOX_ID_LEN + 1])
{
    char id[LADE_OUTBOX_ID_LEN + 1];
    sqlite3_stmt *st = NULL;
    lade_err err = LADE_OK;
    const char *what = "begin";
    int rc;
    if (!ob || (kind != LADE_OUTBOX_SESSION && kind != LADE_OUTBOX_STATE) || (!payload && len > 0))
        return LADE_ERR_INVAL;
    if (len > LADE_OUTBOX_PAYLOAD_MAX)
        return LADE_ERR_TOO_BIG;
    if (msg_id) {
        if (!lade_outbox_id_valid(msg_id))
            return LADE_ERR_INVAL;
        memcpy(id, msg_id, sizeof id);
    } else if ((err = lade_outbox_new_id(id)) != LADE_OK) {
        return err;
    }

    if ((rc = exec_rc(ob, "BEGIN IMMEDIATE")) != SQLITE_OK)
        return fault(ob, rc, what);

    what = "look up id";
    int same = same_record(ob, id, (int)kind, payload, len);
    if (same < 0) {
        rc = -same;
        goto db_fail;
    }
    if (same == 1) { /* a retry of a put that already committed */
        exec_rc(ob, "ROLLBACK");
        goto done;
    }

    struct sizes sz;
    what = "count";
    if ((rc = read_sizes(ob, &sz)) != SQLITE_OK)
        goto db_fail;
    struct sizes only_sessions = {.records = sz.session_records, .bytes = sz.session_bytes};
    if (kind == LADE_OUTBOX_STATE &&
        !fits(&only_sessions, len, ob->lim.max_records, ob->lim.max_bytes)) {
        ob->st.refused_state++;
        err = LADE_ERR_FULL;
        goto rollback;
    }
    if (kind == LADE_OUTBOX_SESSION &&
        !fits(&only_sessions, len, ob->lim.session_hard_records, ob->lim.session_hard_bytes)) {
        ob->st.refused_session++;
        LOG_E(MOD, "%s: session hard cap reached (%llu records, %llu bytes): refusing a session",
              ob->path, (unsigned long long)sz.session_records,
              (unsigned long long)sz.session_bytes);
        err = LADE_ERR_FULL;
        goto rollback;
    }
    /* Oldest STATE first, until the new record fits the soft limits or no STATE is left. */
    uint64_t dropped = 0;
    what = "drop state";
    while (sz.records > sz.session_records &&
           !fits(&sz, len, ob->lim.max_records, ob->lim.max_bytes)) {
        uint64_t n;
        if ((rc = drop_oldest_state(ob, &n)) != SQLITE_OK)
            goto db_fail;
        sz.records--;
        sz.bytes -= n;
        dropped++;
    }
    if (dropped) {
        what = "count drops";
        if ((rc = sqlite3_prepare_v2(ob->db,
                                     "UPDATE counters SET value = value + ?1 "
                                     "WHERE name='dropped_state'",
                                     -1, &st, NULL)) != SQLITE_OK)
            goto db_fail;
        sqlite3_bind_int64(st, 1, (sqlite3_int64)dropped);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        st = NULL;
        if (rc != SQLITE_DONE)
            goto db_fail;
    }

    what = "insert";
    if ((rc = sqlite3_prepare_v2(ob->db,
                                 "INSERT INTO outbox(msg_id, kind, created_wall_s, len, payload) "
                                 "VALUES(?1, ?2, ?3, ?4, ?5)",
                                 -1, &st, NULL)) != SQLITE_OK)
        goto db_fail;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, (int)kind);
    sqlite3_bind_int64(st, 3, now_wall_s);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)len);
    sqlite3_bind_blob(st, 5, len ? payload : "", (int)len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    st = NULL;
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        err = LADE_ERR_EXISTS;
        goto rollback;
    }
    if (rc != SQLITE_DONE)
        goto db_fail;
    if (kind == LADE_OUTBOX_SESSION) {
        /* The finished record replaces its checkpoint atomically: at no instant is the session
         * in neither table, and never in both. */
        what = "close open session";
        if ((rc = sqlite3_prepare_v2(ob->db, "DELETE FROM open_session WHERE msg_id = ?1", -1, &st,
                                     NULL)) != SQLITE_OK)
            goto db_fail;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        st = NULL;
        if (rc != SQLITE_DONE)
            goto db_fail;
    }
    what = "commit";
    if ((rc = exec_rc(ob, "COMMIT")) != SQLITE_OK)
        goto db_fail;
    if (dropped) {
        ob->st.dropped_state += dropped;
        LOG_W(MOD, "dropped %llu state message(s) for room (%llu in total)",
              (unsigned long long)dropped, (unsigned long long)ob->st.dropped_state);
    }
done:
    ok_op(ob);
    if (id_out)
        memcpy(id_out, id, sizeof id);
    return LADE_OK;
rollback:
    exec_rc(ob, "ROLLBACK");
    return err;
db_fail:
    err = fault(ob, rc, what);
    /* After a failed COMMIT (disk full, I/O) SQLite may already have rolled back. */
    if (!sqlite3_get_autocommit(ob->db))
        exec_rc(ob, "ROLLBACK");
    return err;
}

/* ---- read, attempt, ack ---- */

/* The payload column into rec (malloc'd, NUL after len). */
static lade_err copy_payload(sqlite3_stmt *st, int col, struct lade_outbox_rec *rec)
{
    const void *p = sqlite3_column_blob(st, col);
    rec->len = (size_t)sqlite3_column_bytes(st, col);
    rec->payload = malloc(rec->len + 1);
    if (!rec->payload)
        return LADE_ERR_NOMEM;
    if (rec->len)
        memcpy(rec->payload, p, rec->len);
    rec->payload[rec->len] = 0;
    return LADE_OK;
}

lade_err lade_outbox_next(struct lade_outbox *ob, int64_t after_seq, struct lade_outbox_rec *rec)
{
    sqlite3_stmt *st = NULL;
    lade_err err = LADE_OK;
    if (!ob || !rec)
        return LADE_ERR_INVAL;
    memset(rec, 0, sizeof *rec);
    int rc = sqlite3_prepare_v2(ob->db,
                                "SELECT seq, kind, msg_id, created_wall_s, attempts, "
                                "last_attempt_wall_s, payload FROM outbox WHERE seq > ?1 "
                                "ORDER BY seq LIMIT 1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fault(ob, rc, "prepare next");
    sqlite3_bind_int64(st, 1, after_seq);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        ok_op(ob);
        err = LADE_ERR_NOT_FOUND;
        goto out;
    }
    if (rc != SQLITE_ROW) {
        err = fault(ob, rc, "next");
        goto out;
    }
    const char *id = (const char *)sqlite3_column_text(st, 2);
    if (!lade_outbox_id_valid(id)) {
        err = fault(ob, SQLITE_CORRUPT, "stored msg_id malformed");
        goto out;
    }
    rec->seq = sqlite3_column_int64(st, 0);
    rec->kind = (enum lade_outbox_kind)sqlite3_column_int(st, 1);
    memcpy(rec->msg_id, id, LADE_OUTBOX_ID_LEN + 1);
    rec->created_wall_s = sqlite3_column_int64(st, 3);
    rec->attempts = (uint32_t)sqlite3_column_int64(st, 4);
    rec->last_attempt_wall_s = sqlite3_column_int64(st, 5);
    if ((err = copy_payload(st, 6, rec)) != LADE_OK)
        goto out;
    ok_op(ob);
out:
    sqlite3_finalize(st);
    return err;
}

void lade_outbox_rec_free(struct lade_outbox_rec *rec)
{
    if (!rec)
        return;
    free(rec->payload);
    rec->payload = NULL;
    rec->len = 0;
}

static lade_err change_one(struct lade_outbox *ob, const char *sql, const char *id, int64_t arg,
                           const char *what, int *changes)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ob->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fault(ob, rc, what);
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, arg);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return fault(ob, rc, what);
    *changes = sqlite3_changes(ob->db);
    ok_op(ob);
    return LADE_OK;
}

lade_err lade_outbox_attempt(struct lade_outbox *ob, const char *msg_id, int64_t now_wall_s)
{
    int n = 0;
    if (!ob || !lade_outbox_id_valid(msg_id))
        return LADE_ERR_INVAL;
    lade_err err = change_one(ob,
                              "UPDATE outbox SET attempts = attempts + 1, "
                              "last_attempt_wall_s = ?2 WHERE msg_id = ?1",
                              msg_id, now_wall_s, "attempt", &n);
    if (err != LADE_OK)
        return err;
    return n ? LADE_OK : LADE_ERR_NOT_FOUND;
}

lade_err lade_outbox_ack(struct lade_outbox *ob, const char *msg_id)
{
    int n = 0;
    if (!ob || !lade_outbox_id_valid(msg_id))
        return LADE_ERR_INVAL;
    lade_err err =
        change_one(ob, "DELETE FROM outbox WHERE msg_id = ?1 AND ?2 = ?2", msg_id, 0, "ack", &n);
    if (err != LADE_OK)
        return err;
    if (n == 0) {
        ob->st.unknown_acks++;
        LOG_D(MOD, "ack of unknown id %s", msg_id);
    }
    return LADE_OK;
}

lade_err lade_outbox_stats(struct lade_outbox *ob, struct lade_outbox_stats *st)
{
    struct sizes sz;
    if (!ob || !st)
        return LADE_ERR_INVAL;
    int rc = read_sizes(ob, &sz);
    lade_err err = rc == SQLITE_OK ? LADE_OK : fault(ob, rc, "count");
    *st = ob->st;
    if (err == LADE_OK) {
        st->records = sz.records;
        st->bytes = sz.bytes;
        st->session_records = sz.session_records;
        st->session_bytes = sz.session_bytes;
    }
    return err;
}

/* ---- the open session ---- */

lade_err lade_outbox_session_checkpoint(struct lade_outbox *ob, const char *msg_id,
                                        const void *payload, size_t len, int64_t now_wall_s)
{
    if (!ob || !lade_outbox_id_valid(msg_id) || (!payload && len > 0))
        return LADE_ERR_INVAL;
    if (len > LADE_OUTBOX_PAYLOAD_MAX)
        return LADE_ERR_TOO_BIG;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ob->db,
                                "INSERT INTO open_session(msg_id, updated_wall_s, payload) "
                                "VALUES(?1, ?2, ?3) ON CONFLICT(msg_id) DO UPDATE SET "
                                "updated_wall_s = excluded.updated_wall_s, "
                                "payload = excluded.payload",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fault(ob, rc, "prepare checkpoint");
    sqlite3_bind_text(st, 1, msg_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, now_wall_s);
    sqlite3_bind_blob(st, 3, len ? payload : "", (int)len, SQLITE_STATIC);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return fault(ob, rc, "checkpoint");
    ok_op(ob);
    return LADE_OK;
}

lade_err lade_outbox_session_open(struct lade_outbox *ob, struct lade_outbox_rec *rec)
{
    sqlite3_stmt *st = NULL;
    lade_err err = LADE_OK;
    if (!ob || !rec)
        return LADE_ERR_INVAL;
    memset(rec, 0, sizeof *rec);
    int rc = sqlite3_prepare_v2(ob->db,
                                "SELECT msg_id, updated_wall_s, payload FROM open_session "
                                "ORDER BY rowid LIMIT 1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fault(ob, rc, "prepare open session");
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        ok_op(ob);
        err = LADE_ERR_NOT_FOUND;
        goto out;
    }
    if (rc != SQLITE_ROW) {
        err = fault(ob, rc, "open session");
        goto out;
    }
    const char *id = (const char *)sqlite3_column_text(st, 0);
    if (!lade_outbox_id_valid(id)) {
        err = fault(ob, SQLITE_CORRUPT, "stored open session msg_id malformed");
        goto out;
    }
    rec->kind = LADE_OUTBOX_SESSION;
    memcpy(rec->msg_id, id, LADE_OUTBOX_ID_LEN + 1);
    rec->created_wall_s = sqlite3_column_int64(st, 1);
    if ((err = copy_payload(st, 2, rec)) != LADE_OK)
        goto out;
    ok_op(ob);
out:
    sqlite3_finalize(st);
    return err;
}

lade_err lade_outbox_session_discard(struct lade_outbox *ob, const char *msg_id)
{
    int n = 0;
    if (!ob || !lade_outbox_id_valid(msg_id))
        return LADE_ERR_INVAL;
    return change_one(ob, "DELETE FROM open_session WHERE msg_id = ?1 AND ?2 = ?2", msg_id, 0,
                      "discard open session", &n);
}
