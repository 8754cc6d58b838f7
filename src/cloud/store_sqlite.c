/* The portal store on SQLite (see store.h, docs/store.md).
 *
 * Why WAL + synchronous=NORMAL, with FULL for some commits: the portal writes state, samples
 * and setpoints for every charger all the time; losing the last second of those at a power cut
 * is harmless, and NORMAL (WAL synced only at checkpoints) saves an fsync per write. A finished
 * charge session is different (SPEC U3): ingest acknowledges it to the hub after
 * lade_store_session_add returns, so that commit must be on disk — the connection switches to
 * synchronous=FULL for it (and for configuration changes an installer was told succeeded, and
 * token revocation). With WAL, FULL syncs the WAL at commit, which also covers the earlier
 * NORMAL commits in it.
 *
 * Why every statement comes from one constant table: nothing is built from strings at run
 * time (all values are bound), and each statement is prepared once and reused.
 *
 * Why composite foreign keys (circuit_id, installation_id) → circuits(id, installation_id):
 * the database itself refuses a charger or sub-circuit on a circuit of another installation;
 * the code checks first only to give the precise error (NOT_FOUND vs INVAL).
 */
#include "lade/store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "lade/log.h"

#define MOD "store"

/* Migration i takes the schema from version i to i + 1. Append only: never edit a shipped
 * migration, add the next one. */
static const char *const migrations[] = {
    /* 0 → 1 */
    "CREATE TABLE installations("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  network_type INTEGER NOT NULL CHECK(network_type BETWEEN 0 AND 4),"
    "  available_ma_1 INTEGER NOT NULL, available_ma_2 INTEGER NOT NULL,"
    "  available_ma_3 INTEGER NOT NULL,"
    "  fuse_ma_1 INTEGER NOT NULL, fuse_ma_2 INTEGER NOT NULL, fuse_ma_3 INTEGER NOT NULL,"
    "  created_s INTEGER NOT NULL);"
    "CREATE TABLE circuits("
    "  id INTEGER PRIMARY KEY,"
    "  installation_id INTEGER NOT NULL REFERENCES installations(id) ON DELETE CASCADE,"
    "  parent_id INTEGER,"
    "  name TEXT NOT NULL,"
    "  limit_ma_1 INTEGER NOT NULL, limit_ma_2 INTEGER NOT NULL, limit_ma_3 INTEGER NOT NULL,"
    "  fuse_ma_1 INTEGER NOT NULL, fuse_ma_2 INTEGER NOT NULL, fuse_ma_3 INTEGER NOT NULL,"
    "  created_s INTEGER NOT NULL,"
    "  UNIQUE(id, installation_id),"
    "  FOREIGN KEY(parent_id, installation_id) REFERENCES circuits(id, installation_id));"
    "CREATE INDEX circuits_installation ON circuits(installation_id);"
    "CREATE INDEX circuits_parent ON circuits(parent_id);"
    "CREATE TABLE chargers("
    "  id INTEGER PRIMARY KEY,"
    "  device_id TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL,"
    "  installation_id INTEGER REFERENCES installations(id),"
    "  circuit_id INTEGER,"
    "  priority INTEGER NOT NULL,"
    "  phase_rotation TEXT NOT NULL,"
    "  max_current_ma INTEGER NOT NULL CHECK(max_current_ma BETWEEN 0 AND 63000),"
    "  min_current_ma INTEGER NOT NULL,"
    "  max_phases INTEGER NOT NULL CHECK(max_phases IN (1, 3)),"
    "  offline_current_ma INTEGER NOT NULL,"
    "  offline_phases INTEGER NOT NULL CHECK(offline_phases IN (1, 3)),"
    "  active INTEGER NOT NULL,"
    "  created_s INTEGER NOT NULL,"
    "  CHECK(circuit_id IS NULL OR installation_id IS NOT NULL),"
    "  FOREIGN KEY(circuit_id, installation_id) REFERENCES circuits(id, installation_id));"
    "CREATE INDEX chargers_installation ON chargers(installation_id);"
    "CREATE INDEX chargers_circuit ON chargers(circuit_id);"
    "CREATE TABLE charger_presence("
    "  charger_id INTEGER PRIMARY KEY REFERENCES chargers(id) ON DELETE CASCADE,"
    "  online INTEGER NOT NULL,"
    "  last_seen_s INTEGER NOT NULL);"
    "CREATE TABLE charger_state("
    "  charger_id INTEGER NOT NULL REFERENCES chargers(id) ON DELETE CASCADE,"
    "  obs_id INTEGER NOT NULL,"
    "  value TEXT NOT NULL,"
    "  ts_ms INTEGER NOT NULL,"
    "  PRIMARY KEY(charger_id, obs_id)) WITHOUT ROWID;"
    "CREATE TABLE samples("
    "  charger_id INTEGER NOT NULL REFERENCES chargers(id) ON DELETE CASCADE,"
    "  t_s INTEGER NOT NULL,"
    "  current_ma_1 INTEGER NOT NULL, current_ma_2 INTEGER NOT NULL,"
    "  current_ma_3 INTEGER NOT NULL,"
    "  allocated_ma INTEGER NOT NULL,"
    "  power_w INTEGER NOT NULL,"
    "  PRIMARY KEY(charger_id, t_s));"
    "CREATE INDEX samples_t ON samples(t_s);"
    "CREATE TABLE sessions("
    "  id INTEGER PRIMARY KEY,"
    "  session_id TEXT NOT NULL UNIQUE,"
    "  device_id TEXT NOT NULL,"
    "  charger_id INTEGER REFERENCES chargers(id) ON DELETE SET NULL,"
    "  installation_id INTEGER REFERENCES installations(id) ON DELETE SET NULL,"
    "  start_s INTEGER NOT NULL,"
    "  end_s INTEGER NOT NULL,"
    "  energy_wh INTEGER NOT NULL,"
    "  reliable_clock INTEGER NOT NULL,"
    "  end_estimated INTEGER NOT NULL,"
    "  peak_power_w INTEGER NOT NULL,"
    "  phases INTEGER NOT NULL,"
    "  end_reason TEXT NOT NULL,"
    "  received_s INTEGER NOT NULL);"
    "CREATE INDEX sessions_end ON sessions(end_s);"
    "CREATE INDEX sessions_installation ON sessions(installation_id, end_s);"
    "CREATE INDEX sessions_charger ON sessions(charger_id, end_s);"
    "CREATE INDEX sessions_device ON sessions(device_id);"
    "CREATE TABLE setpoints("
    "  id INTEGER PRIMARY KEY,"
    "  charger_id INTEGER NOT NULL REFERENCES chargers(id) ON DELETE CASCADE,"
    "  current_ma INTEGER NOT NULL,"
    "  phases INTEGER NOT NULL,"
    "  sent_ms INTEGER NOT NULL,"
    "  confirmed_ms INTEGER);"
    "CREATE INDEX setpoints_charger ON setpoints(charger_id, id);"
    "CREATE INDEX setpoints_sent ON setpoints(sent_ms);"
    "CREATE TABLE users("
    "  id INTEGER PRIMARY KEY,"
    "  username TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    "  roles INTEGER NOT NULL,"
    "  password_hash TEXT NOT NULL,"
    "  created_s INTEGER NOT NULL);"
    "CREATE TABLE user_installations("
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  installation_id INTEGER NOT NULL REFERENCES installations(id) ON DELETE CASCADE,"
    "  roles INTEGER NOT NULL,"
    "  PRIMARY KEY(user_id, installation_id)) WITHOUT ROWID;"
    "CREATE INDEX user_installations_installation ON user_installations(installation_id);"
    "CREATE TABLE tokens("
    "  hash BLOB PRIMARY KEY,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  created_s INTEGER NOT NULL,"
    "  expires_s INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX tokens_user ON tokens(user_id);"
    "CREATE INDEX tokens_expires ON tokens(expires_s);",
    /* 1 → 2: the firmware repository and rollouts (src/cloud/firmware.c reads and writes
     * these; docs/portal.md "Firmware repository and rollouts"). IF NOT EXISTS: development
     * files of the days before this migration may hold them already. */
    "CREATE TABLE IF NOT EXISTS fw_image("
    "  id INTEGER PRIMARY KEY,"
    "  hardware TEXT NOT NULL,"
    "  version TEXT NOT NULL,"
    "  counter INTEGER NOT NULL,"
    "  length INTEGER NOT NULL,"
    "  sha256 TEXT NOT NULL,"
    "  key_id TEXT NOT NULL,"
    "  notes TEXT NOT NULL,"
    "  file TEXT NOT NULL,"
    "  manifest TEXT NOT NULL,"
    "  uploaded_s INTEGER NOT NULL,"
    "  published INTEGER NOT NULL,"
    "  UNIQUE(hardware, version));"
    "CREATE TABLE IF NOT EXISTS fw_rollout("
    "  id INTEGER PRIMARY KEY,"
    "  fw_id INTEGER NOT NULL,"
    "  installation_id INTEGER NOT NULL,"
    "  percent INTEGER NOT NULL,"
    "  delay_max_s INTEGER NOT NULL,"
    "  stopped INTEGER NOT NULL,"
    "  created_s INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS fw_rollout_charger("
    "  rollout_id INTEGER NOT NULL,"
    "  charger_id INTEGER NOT NULL,"
    "  status TEXT NOT NULL,"
    "  reason TEXT NOT NULL,"
    "  updated_s INTEGER NOT NULL,"
    "  PRIMARY KEY(rollout_id, charger_id));",
};
_Static_assert(sizeof migrations / sizeof migrations[0] == LADE_STORE_SQLITE_SCHEMA,
               "one migration per schema version");

/* ---- statements ---- */

#define INST_COLS                                                                                  \
    "i.id, i.name, i.network_type, i.available_ma_1, i.available_ma_2, i.available_ma_3, "         \
    "i.fuse_ma_1, i.fuse_ma_2, i.fuse_ma_3, i.created_s"
#define CIRC_COLS                                                                                  \
    "c.id, c.installation_id, c.parent_id, c.name, c.limit_ma_1, c.limit_ma_2, c.limit_ma_3, "     \
    "c.fuse_ma_1, c.fuse_ma_2, c.fuse_ma_3, c.created_s"
#define CHG_COLS                                                                                   \
    "c.id, c.device_id, c.name, c.installation_id, c.circuit_id, c.priority, c.phase_rotation, "   \
    "c.max_current_ma, c.min_current_ma, c.max_phases, c.offline_current_ma, c.offline_phases, "   \
    "c.active, c.created_s, coalesce(p.online, 0), coalesce(p.last_seen_s, 0) "                    \
    "FROM chargers c LEFT JOIN charger_presence p ON p.charger_id = c.id "
#define SESS_COLS                                                                                  \
    "s.id, s.session_id, s.device_id, s.charger_id, s.installation_id, s.start_s, s.end_s, "       \
    "s.energy_wh, s.reliable_clock, s.end_estimated, s.peak_power_w, s.phases, s.end_reason, "     \
    "s.received_s"
#define USER_COLS     "u.id, u.username, u.roles, u.password_hash, u.created_s"
#define IS_ADMIN(uid) "EXISTS(SELECT 1 FROM users a WHERE a.id = " uid " AND (a.roles & 8) != 0)"
#define GRANTED(uid)  "SELECT g.installation_id FROM user_installations g WHERE g.user_id = " uid
/* Session filters: ?1 installation, ?2 charger, ?3 user, ?4 from_s, ?5 to_s. */
#define SESS_TAIL                                                                                  \
    " AND (?3 = 0 OR s.installation_id IN (" GRANTED("?3") ") OR " IS_ADMIN(                       \
        "?3") ")"                                                                                  \
              " AND s.end_s >= ?4 AND s.start_s < ?5"
#define SESS_BY_CHARGER " WHERE s.charger_id = ?2 AND (?1 = 0 OR s.installation_id = ?1)" SESS_TAIL
#define SESS_BY_INST    " WHERE s.installation_id = ?1" SESS_TAIL
#define SESS_ALL        " WHERE 1" SESS_TAIL
#define SESS_PAGE       " ORDER BY s.end_s DESC, s.id DESC LIMIT ?6 OFFSET ?7"

enum q {
    Q_INST_ADD,
    Q_INST_GET,
    Q_INST_EXISTS,
    Q_INST_UPDATE,
    Q_INST_UNASSIGN,
    Q_INST_DEL,
    Q_INST_LIST_ALL,
    Q_INST_LIST_USER,
    Q_CIRC_ADD,
    Q_CIRC_GET,
    Q_CIRC_UPDATE,
    Q_CIRC_HAS_CHILD,
    Q_CIRC_HEIGHT,
    Q_CIRC_DETACH,
    Q_CIRC_DEL,
    Q_CIRC_LIST,
    Q_CHG_ADD,
    Q_CHG_LINK_SESSIONS,
    Q_CHG_GET,
    Q_CHG_GET_DEV,
    Q_CHG_EXISTS,
    Q_CHG_UPDATE,
    Q_CHG_DEL,
    Q_CHG_LIST_ALL,
    Q_CHG_LIST_INST,
    Q_PRESENCE,
    Q_STATE_PUT,
    Q_STATE_LIST,
    Q_SAMPLE_ADD,
    Q_SAMPLE_LIST,
    Q_SAMPLE_PRUNE,
    Q_SESS_INSERT,
    Q_SESS_GET,
    Q_SESS_LIST_CHG,
    Q_SESS_LIST_INST,
    Q_SESS_LIST_ALL,
    Q_SESS_COUNT_CHG,
    Q_SESS_COUNT_INST,
    Q_SESS_COUNT_ALL,
    Q_SP_ADD,
    Q_SP_CONFIRM,
    Q_SP_LAST,
    Q_SP_PRUNE,
    Q_USER_ADD,
    Q_USER_GET,
    Q_USER_GET_NAME,
    Q_USER_UPDATE,
    Q_USER_DEL,
    Q_USER_LIST,
    Q_ACCESS_SET,
    Q_ACCESS_DEL,
    Q_ACCESS_GET,
    Q_TOK_ADD,
    Q_TOK_GET,
    Q_TOK_DEL,
    Q_TOK_DEL_USER,
    Q_TOK_PRUNE,
    Q__COUNT
};

static const char *const sql[Q__COUNT] = {
    [Q_INST_ADD] = "INSERT INTO installations(name, network_type, available_ma_1, "
                   "available_ma_2, available_ma_3, fuse_ma_1, fuse_ma_2, fuse_ma_3, created_s) "
                   "VALUES(?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [Q_INST_GET] = "SELECT " INST_COLS " FROM installations i WHERE i.id = ?1",
    [Q_INST_EXISTS] = "SELECT 1 FROM installations WHERE id = ?1",
    [Q_INST_UPDATE] = "UPDATE installations SET name = ?2, network_type = ?3, available_ma_1 = ?4, "
                      "available_ma_2 = ?5, available_ma_3 = ?6, fuse_ma_1 = ?7, fuse_ma_2 = ?8, "
                      "fuse_ma_3 = ?9 WHERE id = ?1",
    [Q_INST_UNASSIGN] = "UPDATE chargers SET installation_id = NULL, circuit_id = NULL "
                        "WHERE installation_id = ?1",
    [Q_INST_DEL] = "DELETE FROM installations WHERE id = ?1",
    [Q_INST_LIST_ALL] = "SELECT " INST_COLS ", 0 FROM installations i ORDER BY i.id",
    /* Effective roles: grant | global roles, where there is a grant or the user is an admin. */
    [Q_INST_LIST_USER] = "SELECT " INST_COLS ", coalesce(g.roles, 0) | u.roles "
                         "FROM installations i JOIN users u ON u.id = ?1 "
                         "LEFT JOIN user_installations g "
                         "  ON g.installation_id = i.id AND g.user_id = u.id "
                         "WHERE g.roles IS NOT NULL OR (u.roles & 8) != 0 ORDER BY i.id",
    [Q_CIRC_ADD] = "INSERT INTO circuits(installation_id, parent_id, name, limit_ma_1, limit_ma_2, "
                   "limit_ma_3, fuse_ma_1, fuse_ma_2, fuse_ma_3, created_s) "
                   "VALUES(?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    [Q_CIRC_GET] = "SELECT " CIRC_COLS " FROM circuits c WHERE c.id = ?1",
    [Q_CIRC_UPDATE] = "UPDATE circuits SET parent_id = ?3, name = ?4, limit_ma_1 = ?5, "
                      "limit_ma_2 = ?6, limit_ma_3 = ?7, fuse_ma_1 = ?8, fuse_ma_2 = ?9, "
                      "fuse_ma_3 = ?10 WHERE id = ?1 AND installation_id = ?2",
    [Q_CIRC_HAS_CHILD] = "SELECT 1 FROM circuits WHERE parent_id = ?1 LIMIT 1",
    /* Levels in the subtree rooted at ?1 (1 = no sub-circuits). The depth bound stops the walk
     * even in a damaged file with a cycle. */
    [Q_CIRC_HEIGHT] = "WITH RECURSIVE t(id, d) AS (SELECT ?1, 1 UNION ALL "
                      "  SELECT c.id, t.d + 1 FROM circuits c JOIN t ON c.parent_id = t.id "
                      "  WHERE t.d < 64) SELECT max(d) FROM t",
    [Q_CIRC_DETACH] = "UPDATE chargers SET circuit_id = NULL WHERE circuit_id = ?1",
    [Q_CIRC_DEL] = "DELETE FROM circuits WHERE id = ?1",
    [Q_CIRC_LIST] = "WITH RECURSIVE t(id, d) AS ("
                    "  SELECT id, 0 FROM circuits WHERE installation_id = ?1 AND parent_id IS NULL "
                    "  UNION ALL SELECT c.id, t.d + 1 FROM circuits c JOIN t ON c.parent_id = t.id "
                    "  WHERE t.d < 64) "
                    "SELECT " CIRC_COLS " FROM circuits c JOIN t ON t.id = c.id ORDER BY t.d, c.id",
    [Q_CHG_ADD] = "INSERT INTO chargers(device_id, name, installation_id, circuit_id, priority, "
                  "phase_rotation, max_current_ma, min_current_ma, max_phases, offline_current_ma, "
                  "offline_phases, active, created_s) "
                  "VALUES(?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    [Q_CHG_LINK_SESSIONS] = "UPDATE sessions SET charger_id = ?1, installation_id = ?2 "
                            "WHERE device_id = ?3 AND charger_id IS NULL",
    [Q_CHG_GET] = "SELECT " CHG_COLS "WHERE c.id = ?1",
    [Q_CHG_GET_DEV] = "SELECT " CHG_COLS "WHERE c.device_id = ?1",
    [Q_CHG_EXISTS] = "SELECT 1 FROM chargers WHERE id = ?1",
    [Q_CHG_UPDATE] = "UPDATE chargers SET device_id = ?2, name = ?3, installation_id = ?4, "
                     "circuit_id = ?5, priority = ?6, phase_rotation = ?7, max_current_ma = ?8, "
                     "min_current_ma = ?9, max_phases = ?10, offline_current_ma = ?11, "
                     "offline_phases = ?12, active = ?13 WHERE id = ?1",
    [Q_CHG_DEL] = "DELETE FROM chargers WHERE id = ?1",
    [Q_CHG_LIST_ALL] = "SELECT " CHG_COLS "WHERE (?2 = 0 OR " IS_ADMIN(
        "?2") " OR c.installation_id IN (" GRANTED("?2") ")) ORDER BY c.id",
    [Q_CHG_LIST_INST] = "SELECT " CHG_COLS "WHERE c.installation_id = ?1 AND (?2 = 0 OR " IS_ADMIN(
        "?2") " OR c.installation_id IN (" GRANTED("?2") ")) ORDER BY c.id",
    [Q_PRESENCE] = "INSERT INTO charger_presence(charger_id, online, last_seen_s) "
                   "VALUES(?1, ?2, ?3) ON CONFLICT(charger_id) DO UPDATE SET "
                   "online = excluded.online, last_seen_s = excluded.last_seen_s",
    /* An older value never replaces a newer one (replayed or reordered messages). */
    [Q_STATE_PUT] = "INSERT INTO charger_state(charger_id, obs_id, value, ts_ms) "
                    "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(charger_id, obs_id) DO UPDATE SET "
                    "value = excluded.value, ts_ms = excluded.ts_ms "
                    "WHERE excluded.ts_ms >= charger_state.ts_ms",
    [Q_STATE_LIST] = "SELECT obs_id, value, ts_ms FROM charger_state WHERE charger_id = ?1 "
                     "ORDER BY obs_id",
    [Q_SAMPLE_ADD] = "INSERT INTO samples(charger_id, t_s, current_ma_1, current_ma_2, "
                     "current_ma_3, allocated_ma, power_w) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                     "ON CONFLICT(charger_id, t_s) DO UPDATE SET "
                     "current_ma_1 = excluded.current_ma_1, current_ma_2 = excluded.current_ma_2, "
                     "current_ma_3 = excluded.current_ma_3, allocated_ma = excluded.allocated_ma, "
                     "power_w = excluded.power_w",
    [Q_SAMPLE_LIST] = "SELECT charger_id, t_s, current_ma_1, current_ma_2, current_ma_3, "
                      "allocated_ma, power_w FROM samples "
                      "WHERE charger_id = ?1 AND t_s >= ?2 AND t_s < ?3 ORDER BY t_s",
    [Q_SAMPLE_PRUNE] = "DELETE FROM samples WHERE rowid IN "
                       "(SELECT rowid FROM samples WHERE t_s < ?1 ORDER BY t_s LIMIT ?2)",
    [Q_SESS_INSERT] = "INSERT INTO sessions(session_id, device_id, charger_id, installation_id, "
                      "start_s, end_s, energy_wh, reliable_clock, end_estimated, peak_power_w, "
                      "phases, end_reason, received_s) "
                      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) "
                      "ON CONFLICT(session_id) DO NOTHING",
    [Q_SESS_GET] = "SELECT " SESS_COLS " FROM sessions s WHERE s.session_id = ?1",
    [Q_SESS_LIST_CHG] = "SELECT " SESS_COLS " FROM sessions s" SESS_BY_CHARGER SESS_PAGE,
    [Q_SESS_LIST_INST] = "SELECT " SESS_COLS " FROM sessions s" SESS_BY_INST SESS_PAGE,
    [Q_SESS_LIST_ALL] = "SELECT " SESS_COLS " FROM sessions s" SESS_ALL SESS_PAGE,
    [Q_SESS_COUNT_CHG] = "SELECT count(*) FROM sessions s" SESS_BY_CHARGER,
    [Q_SESS_COUNT_INST] = "SELECT count(*) FROM sessions s" SESS_BY_INST,
    [Q_SESS_COUNT_ALL] = "SELECT count(*) FROM sessions s" SESS_ALL,
    [Q_SP_ADD] = "INSERT INTO setpoints(charger_id, current_ma, phases, sent_ms, confirmed_ms) "
                 "VALUES(?1, ?2, ?3, ?4, ?5)",
    [Q_SP_CONFIRM] = "UPDATE setpoints SET confirmed_ms = ?2 WHERE id = ?1",
    [Q_SP_LAST] = "SELECT id, charger_id, current_ma, phases, sent_ms, confirmed_ms "
                  "FROM setpoints WHERE charger_id = ?1 ORDER BY id DESC LIMIT 1",
    [Q_SP_PRUNE] = "DELETE FROM setpoints WHERE id IN "
                   "(SELECT id FROM setpoints WHERE sent_ms < ?1 ORDER BY sent_ms LIMIT ?2)",
    [Q_USER_ADD] = "INSERT INTO users(username, roles, password_hash, created_s) "
                   "VALUES(?2, ?3, ?4, ?5)",
    [Q_USER_GET] = "SELECT " USER_COLS " FROM users u WHERE u.id = ?1",
    [Q_USER_GET_NAME] = "SELECT " USER_COLS " FROM users u WHERE u.username = ?1",
    [Q_USER_UPDATE] = "UPDATE users SET username = ?2, roles = ?3, password_hash = ?4 "
                      "WHERE id = ?1",
    [Q_USER_DEL] = "DELETE FROM users WHERE id = ?1",
    [Q_USER_LIST] = "SELECT " USER_COLS " FROM users u ORDER BY u.id",
    [Q_ACCESS_SET] = "INSERT INTO user_installations(user_id, installation_id, roles) "
                     "VALUES(?1, ?2, ?3) ON CONFLICT(user_id, installation_id) DO UPDATE SET "
                     "roles = excluded.roles",
    [Q_ACCESS_DEL] = "DELETE FROM user_installations WHERE user_id = ?1 AND installation_id = ?2",
    [Q_ACCESS_GET] = "SELECT roles FROM user_installations "
                     "WHERE user_id = ?1 AND installation_id = ?2",
    [Q_TOK_ADD] = "INSERT INTO tokens(hash, user_id, created_s, expires_s) VALUES(?1, ?2, ?3, ?4)",
    [Q_TOK_GET] = "SELECT user_id, expires_s FROM tokens WHERE hash = ?1",
    [Q_TOK_DEL] = "DELETE FROM tokens WHERE hash = ?1",
    [Q_TOK_DEL_USER] = "DELETE FROM tokens WHERE user_id = ?1",
    [Q_TOK_PRUNE] = "DELETE FROM tokens WHERE expires_s <= ?1",
};

struct sq {
    sqlite3 *db;
    struct lade_store *st; /* set once lade_store_new wrapped us; NULL while opening */
    bool durable_tx;       /* the open transaction commits with synchronous=FULL */
    char errmsg[LADE_STORE_ERRMSG_SIZE];
    sqlite3_stmt *stmt[Q__COUNT];
    char path[512];
};

/* ---- errors ---- */

/* Sets the backend's message (truncated to fit: a long path must not hide the reason). */
__attribute__((format(printf, 2, 3))) static void set_msg(struct sq *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->errmsg, sizeof b->errmsg, fmt, ap);
    va_end(ap);
}

/* Records a backend failure (message kept for lade_store_errmsg) and maps it to lade_err. */
static lade_err fail(struct sq *b, int rc, const char *what)
{
    if ((rc & 0xff) == SQLITE_NOMEM)
        return LADE_ERR_NOMEM;
    int sys = b->db ? sqlite3_system_errno(b->db) : 0;
    const char *msg = b->db ? sqlite3_errmsg(b->db) : sqlite3_errstr(rc);
    if (sys)
        set_msg(b, "%s: %s: %s (%s)", b->path, what, msg, strerror(sys));
    else
        set_msg(b, "%s: %s: %s", b->path, what, msg);
    lade_store_fail(b->st, "%s", b->errmsg);
    return LADE_ERR_DB;
}

/* Result of a statement that changes rows: constraint failures are answers, not faults. */
static lade_err step_err(struct sq *b, int rc, const char *what)
{
    switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
        return LADE_ERR_EXISTS;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return LADE_ERR_NOT_FOUND;
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_NOTNULL:
        return LADE_ERR_INVAL;
    default:
        return fail(b, rc, what);
    }
}

/* ---- statements and transactions ---- */

static sqlite3_stmt *stmt(struct sq *b, enum q id, lade_err *err)
{
    if (!b->stmt[id]) {
        int rc =
            sqlite3_prepare_v3(b->db, sql[id], -1, SQLITE_PREPARE_PERSISTENT, &b->stmt[id], NULL);
        if (rc != SQLITE_OK) {
            *err = fail(b, rc, "prepare");
            return NULL;
        }
    }
    *err = LADE_OK;
    return b->stmt[id];
}

/* Ends a statement's use: the next user binds afresh; a read ends its snapshot. */
static void done(sqlite3_stmt *s)
{
    if (s) {
        sqlite3_reset(s);
        sqlite3_clear_bindings(s);
    }
}

static lade_err exec(struct sq *b, const char *text)
{
    int rc = sqlite3_exec(b->db, text, NULL, NULL, NULL);
    return rc == SQLITE_OK ? LADE_OK : fail(b, rc, text);
}

/* IMMEDIATE: take the write lock at the start, so checks made inside the transaction still
 * hold at commit (another process cannot write in between). */
static lade_err tx_begin(struct sq *b, bool durable)
{
    lade_err err;
    if (durable && (err = exec(b, "PRAGMA synchronous=FULL")) != LADE_OK)
        return err;
    b->durable_tx = durable;
    if ((err = exec(b, "BEGIN IMMEDIATE")) != LADE_OK && durable) {
        (void)sqlite3_exec(b->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
        b->durable_tx = false;
    }
    return err;
}

/* Commits if err is OK (returning the commit's error), else rolls back; returns the result. */
static lade_err tx_end(struct sq *b, lade_err err)
{
    if (err == LADE_OK)
        err = exec(b, "COMMIT");
    if (err != LADE_OK)
        (void)sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
    if (b->durable_tx)
        (void)sqlite3_exec(b->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    b->durable_tx = false;
    return err;
}

/* Steps a statement that changes rows; *changes (may be NULL) gets the count. */
static lade_err run(struct sq *b, sqlite3_stmt *s, const char *what, int64_t *changes)
{
    int rc = sqlite3_step(s);
    lade_err err = rc == SQLITE_DONE ? LADE_OK : step_err(b, rc, what);
    if (changes)
        *changes = err == LADE_OK ? sqlite3_changes64(b->db) : 0;
    done(s);
    return err;
}

/* Steps a statement expected to give at most one row: OK with the row current (the caller
 * reads and calls done), NOT_FOUND (done already), or an error (done already). */
static lade_err row(struct sq *b, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        return LADE_OK;
    done(s);
    return rc == SQLITE_DONE ? LADE_ERR_NOT_FOUND : fail(b, rc, what);
}

/* Runs a one-row "SELECT 1 ... WHERE id = ?1": OK if the row exists, else NOT_FOUND/error. */
static lade_err exists(struct sq *b, enum q id, int64_t key)
{
    lade_err err;
    sqlite3_stmt *s = stmt(b, id, &err);
    if (!s)
        return err;
    sqlite3_bind_int64(s, 1, key);
    if ((err = row(b, s, "exists")) == LADE_OK)
        done(s);
    return err;
}

static void bind_opt_id(sqlite3_stmt *s, int i, int64_t id)
{
    if (id > 0)
        sqlite3_bind_int64(s, i, id);
    else
        sqlite3_bind_null(s, i);
}

static void bind_phases(sqlite3_stmt *s, int first, const int32_t v[LADE_STORE_PHASES])
{
    for (int i = 0; i < LADE_STORE_PHASES; i++)
        sqlite3_bind_int(s, first + i, v[i]);
}

static void col_phases(sqlite3_stmt *s, int first, int32_t v[LADE_STORE_PHASES])
{
    for (int i = 0; i < LADE_STORE_PHASES; i++)
        v[i] = sqlite3_column_int(s, first + i);
}

static void col_text(sqlite3_stmt *s, int i, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    snprintf(out, cap, "%s", t ? (const char *)t : "");
}

/* Runs a list statement, calling each(row) until it returns non-zero or the rows end. */
static lade_err walk(struct sq *b, sqlite3_stmt *s, int (*each)(sqlite3_stmt *s, void *ctx),
                     void *ctx, const char *what)
{
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (each(s, ctx) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    lade_err err = rc == SQLITE_DONE ? LADE_OK : fail(b, rc, what);
    done(s);
    return err;
}

static lade_err changed_one(int64_t changes)
{
    return changes > 0 ? LADE_OK : LADE_ERR_NOT_FOUND;
}

/* ---- installations ---- */

static void inst_read(sqlite3_stmt *s, struct lade_store_installation *in)
{
    memset(in, 0, sizeof *in);
    in->id = sqlite3_column_int64(s, 0);
    col_text(s, 1, in->name, sizeof in->name);
    in->network_type = (enum lade_network_type)sqlite3_column_int(s, 2);
    col_phases(s, 3, in->available_ma);
    col_phases(s, 6, in->fuse_ma);
    in->created_s = sqlite3_column_int64(s, 9);
}

static void inst_bind(sqlite3_stmt *s, const struct lade_store_installation *in)
{
    sqlite3_bind_int64(s, 1, in->id);
    sqlite3_bind_text(s, 2, in->name, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, (int)in->network_type);
    bind_phases(s, 4, in->available_ma);
    bind_phases(s, 7, in->fuse_ma);
}

static lade_err sq_installation_add(void *be, const struct lade_store_installation *in, int64_t *id)
{
    struct sq *b = be;
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_INST_ADD, &err);
    if (!s)
        return err;
    if ((err = tx_begin(b, true)) != LADE_OK)
        return err;
    inst_bind(s, in);
    sqlite3_bind_int64(s, 10, in->created_s);
    if ((err = run(b, s, "add installation", NULL)) == LADE_OK)
        *id = sqlite3_last_insert_rowid(b->db);
    return tx_end(b, err);
}

static lade_err sq_installation_get(void *be, int64_t id, struct lade_store_installation *out)
{
    struct sq *b = be;
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_INST_GET, &err);
    if (!s)
        return err;
    sqlite3_bind_int64(s, 1, id);
    if ((err = row(b, s, "get installation")) == LADE_OK) {
        inst_read(s, out);
        done(s);
    }
    return err;
}

static lade_err sq_installation_update(void *be, const struct lade_store_installation *in)
{
    struct sq *b = be;
    lade_err err;
    int64_t n = 0;
    sqlite3_stmt *s = stmt(b, Q_INST_UPDATE, &err);
    if (!s)
        return err;
    if ((err = tx_begin(b, true)) != LADE_OK)
        return err;
    inst_bind(s, in);
    if ((err = run(b, s, "update installation", &n)) == LADE_OK)
        err = changed_one(n);
    return tx_end(b, err);
}

static lade_err sq_installation_remove(void *be, int64_t id)
{
    struct sq *b = be;
    lade_err err;
    int64_t n = 0;
    sqlite3_stmt *un = stmt(b, Q_INST_UNASSIGN, &err);
    sqlite3_stmt *del = un ? stmt(b, Q_INST_DEL, &err) : NULL;
    if (!del)
        return err;
    if ((err = tx_begin(b, true)) != LADE_OK)
        return err;
    /* Chargers first: their (circuit, installation) reference would block the cascade. */
    sqlite3_bind_int64(un, 1, id);
    if ((err = run(b, un, "unassign chargers", NULL)) != LADE_OK)
        goto out;
    sqlite3_bind_int64(del, 1, id);
    if ((err = run(b, del, "remove installation", &n)) == LADE_OK)
        err = changed_one(n);
out:
    return tx_end(b, err);
}

struct inst_walk {
    lade_store_installation_fn fn;
    void *ud;
};

static int inst_each(sqlite3_stmt *s, void *ctx)
{
    struct inst_walk *w = ctx;
    struct lade_store_installation in;
    inst_read(s, &in);
    return w->fn(w->ud, &in, (uint32_t)sqlite3_column_int64(s, 10));
}

static lade_err sq_installation_list(void *be, int64_t user_id, lade_store_installation_fn fn,
                                     void *ud)
{
    struct sq *b = be;
    lade_err err;
    struct inst_walk w = {fn, ud};
    sqlite3_stmt *s = stmt(b, user_id ? Q_INST_LIST_USER : Q_INST_LIST_ALL, &err);
    if (!s)
        return err;
    if (user_id)
        sqlite3_bind_int64(s, 1, user_id);
    return walk(b, s, inst_each, &w, "list installations");
}

/* ---- circuits ---- */

static void circ_read(sqlite3_stmt *s, struct lade_store_circuit *c)
{
    memset(c, 0, sizeof *c);
    c->id = sqlite3_column_int64(s, 0);
    c->installation_id = sqlite3_column_int64(s, 1);
    c->parent_id = sqlite3_column_int64(s, 2);
    col_text(s, 3, c->name, sizeof c->name);
    col_phases(s, 4, c->limit_ma);
    col_phases(s, 7, c->fuse_ma);
    c->created_s = sqlite3_column_int64(s, 10);
}

static void circ_bind(sqlite3_stmt *s, const struct lade_store_circuit *c)
{
    sqlite3_bind_int64(s, 1, c->id);
    sqlite3_bind_int64(s, 2, c->installation_id);
    bind_opt_id(s, 3, c->parent_id);
    sqlite3_bind_text(s, 4, c->name, -1, SQLITE_STATIC);
    bind_phases(s, 5, c->limit_ma);
    bind_phases(s, 8, c->fuse_ma);
}

static lade_err sq_circuit_get(void *be, int64_t id, struct lade_store_circuit *out)
{
    struct sq *b = be;
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_CIRC_GET, &err);
    if (!s)
        return err;
    sqlite3_bind_int64(s, 1, id);
    if ((err = row(b, s, "get circuit")) == LADE_OK) {
        circ_read(s, out);
        done(s);
    }
    return err;
}

/* Checks that parent_id (non-zero) can hold a subtree `height` levels high rooted at self
 * (0 for a new circuit): the parent exists (NOT_FOUND), is of the same installation, is not
 * self or below self, and the result is at most CIRCUIT_DEPTH_MAX levels deep (INVAL). */
static lade_err parent_check(struct sq *b, int64_t installation_id, int64_t parent_id, int64_t self,
                             int64_t height)
{
    struct lade_store_circuit p;
    int64_t depth = 0;
    lade_err err;
    for (int64_t cur = parent_id; cur != 0; cur = p.parent_id) {
        if ((err = sq_circuit_get(b, cur, &p)) != LADE_OK)
            return err == LADE_ERR_NOT_FOUND && cur != parent_id ? LADE_ERR_DB : err;
        if (p.installation_id != installation_id || cur == self)
            return LADE_ERR_INVAL;
        if (++depth + height > LADE_STORE_CIRCUIT_DEPTH_MAX)
            return LADE_ERR_INVAL;
    }
    return LADE_OK;
}

static lade_err sq_circuit_add(void *be, const struct lade_store_circuit *c, int64_t *id)
{
    struct sq *b = be;
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_CIRC_ADD, &err);
    if (!s)
        return err;
    if ((err = tx_begin(b, true)) != LADE_OK)
        return err;
    if ((err = exists(b, Q_INST_EXISTS, c->installation_id)) != LADE_OK ||
        (err = parent_check(b, c->installation_id, c->parent_id, 0, 1)) != LADE_OK)
        goto out;
    circ_bind(s, c);
    sqlite3_bind_int64(s, 11, c->created_s);
    if ((err = run(b, s, "add circuit", NULL)) == LADE_OK)
        *id = sqlite3_last_insert_rowid(b->db);
out:
    return tx_end(b, err);
}

static lade_err circuit_height(struct sq *b, int64_t id, int64_t *height)
{
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_CIRC_HEIGHT, &err);
    if (!s)
        return err;
    sqlite3_bind_int64(s, 1, id);
    if ((err = row(b, s, "circuit height")) == LADE_OK) {
        *height = sqlite3_column_int64(s, 0);
        done(s);
    }
    return err;
}

static lade_err sq_circuit_update(void *be, const struct lade_store_circuit *c)
{
    struct sq *b = be;
    struct lade_store_circuit old;
    int64_t height = 1;
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_CIRC_UPDATE, &err);
    if (!s)
        return err;
    if ((err = tx_begin(b, true)) != LADE_OK)
        return err;
    if ((err = sq_circuit_get(b, c->id, &old)) != LADE_OK)
        goto out;
    err = LADE_ERR_INVAL;
    if (old.installation_id != c->installation_id)
        goto out;
    if ((err = circuit_height(b, c->id, &height)) != LADE_OK ||
        (err = parent_check(b, c->installation_id, c->parent_id, c->id, height)) != LADE_OK)
        goto out;
    circ_bind(s, c);
    err = run(b, s, "update circuit", NULL);
out:
    return tx_end(b, err);
}

static lade_err sq_circuit_remove(void *be, int64_t id)
{
    struct sq *b = be;
    lade_err err;
    int64_t n = 0;
    sqlite3_stmt *child = stmt(b, Q_CIRC_HAS_CHILD, &err);
    sqlite3_stmt *det = child ? stmt(b, Q_CIRC_DETACH, &err) : NULL;
    sqlite3_stmt *del = det ? stmt(b, Q_CIRC_DEL, &err) : NULL;
    if (!del)
        return err;
    if ((err = tx_begin(b, true)) != LADE_OK)
        return err;
    sqlite3_bind_int64(child, 1, id);
    if ((err = row(b, child, "circuit children")) == LADE_OK) {
        done(child);
        err = LADE_ERR_STATE;
        goto out;
    }
    if (err != LADE_ERR_NOT_FOUND)
        goto out;
    sqlite3_bind_int64(det, 1, id);
    if ((err = run(b, det, "detach chargers", NULL)) != LADE_OK)
        goto out;
    sqlite3_bind_int64(del, 1, id);
    if ((err = run(b, del, "remove circuit", &n)) == LADE_OK)
        err = changed_one(n);
out:
    return tx_end(b, err);
}

struct circ_walk {
    lade_store_circuit_fn fn;
    void *ud;
};

static int circ_each(sqlite3_stmt *s, void *ctx)
{
    struct circ_walk *w = ctx;
    struct lade_store_circuit c;
    circ_read(s, &c);
    return w->fn(w->ud, &c);
}

static lade_err sq_circuit_list(void *be, int64_t installation_id, lade_store_circuit_fn fn,
                                void *ud)
{
    struct sq *b = be;
    lade_err err;
    struct circ_walk w = {fn, ud};
    sqlite3_stmt *s = stmt(b, Q_CIRC_LIST, &err);
    if (!s)
        return err;
    /* One read transaction: the existence check and the rows from the same snapshot. */
    if ((err = exec(b, "BEGIN")) != LADE_OK)
        return err;
    if ((err = exists(b, Q_INST_EXISTS, installation_id)) == LADE_OK) {
        sqlite3_bind_int64(s, 1, installation_id);
        err = walk(b, s, circ_each, &w, "list circuits");
    }
    return tx_end(b, err);
}

/* ---- chargers ---- */

static void chg_read(sqlite3_stmt *s, struct lade_store_charger *c)
{
    char rot[16];
    memset(c, 0, sizeof *c);
    c->id = sqlite3_column_int64(s, 0);
    col_text(s, 1, c->device_id, sizeof c->device_id);
    col_text(s, 2, c->name, sizeof c->name);
    c->installation_id = sqlite3_column_int64(s, 3);
    c->circuit_id = sqlite3_column_int64(s, 4);
    c->priority = sqlite3_column_int(s, 5);
    col_text(s, 6, rot, sizeof rot);
    if (lade_store_rotation_parse(rot, c->phase_map) != LADE_OK) {
        /* Only a damaged file: read it as straight wiring rather than fail every list. */
        LOG_W(MOD, "charger %lld: bad stored phase rotation '%s'", (long long)c->id, rot);
        c->phase_map[0] = 1;
        c->phase_map[1] = 2;
        c->phase_map[2] = 3;
    }
    c->max_current_ma = sqlite3_column_int(s, 7);
    c->min_current_ma = sqlite3_column_int(s, 8);
    c->max_phases = (uint8_t)sqlite3_column_int(s, 9);
    c->offline_current_ma = sqlite3_column_int(s, 10);
    c->offline_phases = (uint8_t)sqlite3_column_int(s, 11);
    c->active = sqlite3_column_int(s, 12) != 0;
    c->created_s = sqlite3_column_int64(s, 13);
    c->online = sqlite3_column_int(s, 14) != 0;
    c->last_seen_s = sqlite3_column_int64(s, 15);
}

/* Binds ?1..?13; rot must outlive the step. */
static void chg_bind(sqlite3_stmt *s, const struct lade_store_charger *c, const char *rot)
{
    sqlite3_bind_int64(s, 1, c->id);
    sqlite3_bind_text(s, 2, c->device_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, c->name, -1, SQLITE_STATIC);
    bind_opt_id(s, 4, c->installation_id);
    bind_opt_id(s, 5, c->circuit_id);
    sqlite3_bind_int(s, 6, c->priority);
    sqlite3_bind_text(s, 7, rot, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 8, c->max_current_ma);
    sqlite3_bind_int(s, 9, c->min_current_ma);
    sqlite3_bind_int(s, 10, c->max_phases);
    sqlite3_bind_int(s, 11, c->offline_current_ma);
    sqlite3_bind_int(s, 12, c->offline_phases);
    sqlite3_bind_int(s, 13, c->active ? 1 : 0);
}

/* The charger's place: installation exists, circuit exists and belongs to it. */
static lade_err place_check(struct sq *b, const struct lade_store_charger *c)
{
    struct lade_store_circuit circ;
    lade_err err;
    if (c->installation_id && (err = exists(b, Q_INST_EXISTS, c->installation_id)) != LADE_OK)
        return err;
    if (c->circuit_id) {
        if ((err = sq_circuit_get(b, c->circuit_id, &circ)) != LADE_OK)
            return err;
        if (circ.installation_id != c->installation_id)
            return LADE_ERR_INVAL;
    }
    return LADE_OK;
}

static lade_err sq_charger_add(void *be, const struct lade_store_charger *c, int64_t *id)
{
    struct sq *b = be;
    char rot[7];
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_CHG_ADD, &err);
    sqlite3_stmt *link = s ? stmt(b, Q_CHG_LINK_SESSIONS, &err) : NULL;
    if (!link)
        return err;
    if ((err = lade_store_rotation_format(c->phase_map, rot)) != LADE_OK)
        return err;
    if ((err = tx_begin(b, true)) != LADE_OK)
        return err;
    if ((err = place_check(b, c)) != LADE_OK)
        goto out;
    chg_bind(s, c, rot);
    sqlite3_bind_int64(s, 14, c->created_s);
    if ((err = run(b, s, "add charger", NULL)) != LADE_OK)
        goto out;
    *id = sqlite3_last_insert_rowid(b->db);
    /* Sessions that arrived before the charger was registered in the portal. */
    sqlite3_bind_int64(link, 1, *id);
    bind_opt_id(link, 2, c->installation_id);
    sqlite3_bind_text(link, 3, c->device_id, -1, SQLITE_STATIC);
    err = run(b, link, "link sessions", NULL);
out:
    return tx_end(b, err);
}

static lade_err chg_get(struct sq *b, enum q q, int64_t id, const char *device_id,
                        struct lade_store_charger *out)
{
    lade_err err;
    sqlite3_stmt *s = stmt(b, q, &err);
    if (!s)
        return err;
    if (device_id)
        sqlite3_bind_text(s, 1, device_id, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(s, 1, id);
    if ((err = row(b, s, "get charger")) == LADE_OK) {
        chg_read(s, out);
        done(s);
    }
    return err;
}

static lade_err sq_charger_get(void *be, int64_t id, struct lade_store_charger *out)
{
    return chg_get(be, Q_CHG_GET, id, NULL, out);
}

static lade_err sq_charger_get_by_device(void *be, const char *device_id,
                                         struct lade_store_charger *out)
{
    return chg_get(be, Q_CHG_GET_DEV, 0, device_id, out);
}

static lade_err sq_charger_update(void *be, const struct lade_store_charger *c)
{
    struct sq *b = be;
    char rot[7];
    int64_t n = 0;
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_CHG_UPDATE, &err);
    if (!s)
        return err;
    if ((err = lade_store_rotation_format(c->phase_map, rot)) != LADE_OK)
        return err;
    if ((err = tx_begin(b, true)) != LADE_OK)
        return err;
    if ((err = exists(b, Q_CHG_EXISTS, c->id)) != LADE_OK || (err = place_check(b, c)) != LADE_OK)
        goto out;
    chg_bind(s, c, rot);
    if ((err = run(b, s, "update charger", &n)) == LADE_OK)
        err = changed_one(n);
out:
    return tx_end(b, err);
}

static lade_err sq_charger_remove(void *be, int64_t id)
{
    struct sq *b = be;
    int64_t n = 0;
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_CHG_DEL, &err);
    if (!s)
        return err;
    if ((err = tx_begin(b, true)) != LADE_OK)
        return err;
    sqlite3_bind_int64(s, 1, id);
    if ((err = run(b, s, "remove charger", &n)) == LADE_OK)
        err = changed_one(n);
    return tx_end(b, err);
}

struct chg_walk {
    lade_store_charger_fn fn;
    void *ud;
};

static int chg_each(sqlite3_stmt *s, void *ctx)
{
    struct chg_walk *w = ctx;
    struct lade_store_charger c;
    chg_read(s, &c);
    return w->fn(w->ud, &c);
}

static lade_err sq_charger_list(void *be, int64_t installation_id, int64_t user_id,
                                lade_store_charger_fn fn, void *ud)
{
    struct sq *b = be;
    lade_err err;
    struct chg_walk w = {fn, ud};
    sqlite3_stmt *s = stmt(b, installation_id ? Q_CHG_LIST_INST : Q_CHG_LIST_ALL, &err);
    if (!s)
        return err;
    if (installation_id)
        sqlite3_bind_int64(s, 1, installation_id);
    sqlite3_bind_int64(s, 2, user_id);
    return walk(b, s, chg_each, &w, "list chargers");
}

static lade_err sq_charger_presence(void *be, int64_t charger_id, bool online, int64_t seen_s)
{
    struct sq *b = be;
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_PRESENCE, &err);
    if (!s)
        return err;
    sqlite3_bind_int64(s, 1, charger_id);
    sqlite3_bind_int(s, 2, online ? 1 : 0);
    sqlite3_bind_int64(s, 3, seen_s);
    return run(b, s, "presence", NULL); /* unknown charger: foreign key → NOT_FOUND */
}

/* ---- state ---- */

static lade_err sq_state_put(void *be, int64_t charger_id, const struct lade_store_obs *items,
                             size_t n)
{
    struct sq *b = be;
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_STATE_PUT, &err);
    if (!s)
        return err;
    if ((err = tx_begin(b, false)) != LADE_OK)
        return err;
    if ((err = exists(b, Q_CHG_EXISTS, charger_id)) != LADE_OK)
        goto out;
    for (size_t i = 0; i < n && err == LADE_OK; i++) {
        sqlite3_bind_int64(s, 1, charger_id);
        sqlite3_bind_int(s, 2, items[i].obs_id);
        sqlite3_bind_text(s, 3, items[i].value, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 4, items[i].ts_ms);
        err = run(b, s, "put state", NULL);
    }
out:
    return tx_end(b, err);
}

struct obs_walk {
    lade_store_obs_fn fn;
    void *ud;
};

static int obs_each(sqlite3_stmt *s, void *ctx)
{
    struct obs_walk *w = ctx;
    const unsigned char *v = sqlite3_column_text(s, 1);
    struct lade_store_obs o = {
        .obs_id = sqlite3_column_int(s, 0),
        .value = v ? (const char *)v : "",
        .ts_ms = sqlite3_column_int64(s, 2),
    };
    return w->fn(w->ud, &o);
}

static lade_err sq_state_list(void *be, int64_t charger_id, lade_store_obs_fn fn, void *ud)
{
    struct sq *b = be;
    lade_err err;
    struct obs_walk w = {fn, ud};
    sqlite3_stmt *s = stmt(b, Q_STATE_LIST, &err);
    if (!s)
        return err;
    if ((err = exec(b, "BEGIN")) != LADE_OK)
        return err;
    if ((err = exists(b, Q_CHG_EXISTS, charger_id)) == LADE_OK) {
        sqlite3_bind_int64(s, 1, charger_id);
        err = walk(b, s, obs_each, &w, "list state");
    }
    return tx_end(b, err);
}

/* ---- samples ---- */

static lade_err sq_sample_add(void *be, const struct lade_store_sample *x)
{
    struct sq *b = be;
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_SAMPLE_ADD, &err);
    if (!s)
        return err;
    sqlite3_bind_int64(s, 1, x->charger_id);
    sqlite3_bind_int64(s, 2, x->t_s);
    bind_phases(s, 3, x->current_ma);
    sqlite3_bind_int(s, 6, x->allocated_ma);
    sqlite3_bind_int(s, 7, x->power_w);
    return run(b, s, "add sample", NULL);
}

struct sample_walk {
    lade_store_sample_fn fn;
    void *ud;
};

static int sample_each(sqlite3_stmt *s, void *ctx)
{
    struct sample_walk *w = ctx;
    struct lade_store_sample x = {
        .charger_id = sqlite3_column_int64(s, 0),
        .t_s = sqlite3_column_int64(s, 1),
        .allocated_ma = sqlite3_column_int(s, 5),
        .power_w = sqlite3_column_int(s, 6),
    };
    col_phases(s, 2, x.current_ma);
    return w->fn(w->ud, &x);
}

static lade_err sq_sample_list(void *be, int64_t charger_id, int64_t from_s, int64_t to_s,
                               lade_store_sample_fn fn, void *ud)
{
    struct sq *b = be;
    lade_err err;
    struct sample_walk w = {fn, ud};
    sqlite3_stmt *s = stmt(b, Q_SAMPLE_LIST, &err);
    if (!s)
        return err;
    sqlite3_bind_int64(s, 1, charger_id);
    sqlite3_bind_int64(s, 2, from_s);
    sqlite3_bind_int64(s, 3, to_s);
    return walk(b, s, sample_each, &w, "list samples");
}

/* DELETE of at most max_rows rows older than `before` (LIMIT -1: no limit in SQLite). */
static lade_err prune(struct sq *b, enum q q, int64_t before, uint32_t max_rows, uint64_t *deleted)
{
    int64_t n = 0;
    lade_err err;
    sqlite3_stmt *s = stmt(b, q, &err);
    if (!s)
        return err;
    sqlite3_bind_int64(s, 1, before);
    sqlite3_bind_int64(s, 2, max_rows ? (int64_t)max_rows : -1);
    err = run(b, s, "prune", &n);
    *deleted = (uint64_t)n;
    return err;
}

static lade_err sq_sample_prune(void *be, int64_t before_s, uint32_t max_rows, uint64_t *deleted)
{
    return prune(be, Q_SAMPLE_PRUNE, before_s, max_rows, deleted);
}

/* ---- sessions ---- */

static void sess_read(sqlite3_stmt *s, struct lade_store_session *x)
{
    memset(x, 0, sizeof *x);
    x->id = sqlite3_column_int64(s, 0);
    col_text(s, 1, x->session_id, sizeof x->session_id);
    col_text(s, 2, x->device_id, sizeof x->device_id);
    x->charger_id = sqlite3_column_int64(s, 3);
    x->installation_id = sqlite3_column_int64(s, 4);
    x->start_s = sqlite3_column_int64(s, 5);
    x->end_s = sqlite3_column_int64(s, 6);
    int64_t wh = sqlite3_column_int64(s, 7);
    x->energy_wh = wh > 0 ? (uint64_t)wh : 0;
    x->reliable_clock = sqlite3_column_int(s, 8) != 0;
    x->end_estimated = sqlite3_column_int(s, 9) != 0;
    x->peak_power_w = sqlite3_column_int(s, 10);
    x->phases = (uint8_t)sqlite3_column_int(s, 11);
    col_text(s, 12, x->end_reason, sizeof x->end_reason);
    x->received_s = sqlite3_column_int64(s, 13);
}

/* What the charger said (not what the store derived or when it arrived). */
static bool sess_same(const struct lade_store_session *a, const struct lade_store_session *b)
{
    return strcmp(a->device_id, b->device_id) == 0 && a->start_s == b->start_s &&
           a->end_s == b->end_s && a->energy_wh == b->energy_wh &&
           a->reliable_clock == b->reliable_clock && a->end_estimated == b->end_estimated &&
           a->peak_power_w == b->peak_power_w && a->phases == b->phases &&
           strcmp(a->end_reason, b->end_reason) == 0;
}

static lade_err sess_get(struct sq *b, const char *session_id, struct lade_store_session *out)
{
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_SESS_GET, &err);
    if (!s)
        return err;
    sqlite3_bind_text(s, 1, session_id, -1, SQLITE_STATIC);
    if ((err = row(b, s, "get session")) == LADE_OK) {
        sess_read(s, out);
        done(s);
    }
    return err;
}

static lade_err sq_session_add(void *be, const struct lade_store_session *x,
                               enum lade_store_ingest *result)
{
    struct sq *b = be;
    struct lade_store_charger c;
    struct lade_store_session old;
    int64_t n = 0;
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_SESS_INSERT, &err);
    if (!s)
        return err;
    if ((err = tx_begin(b, true)) != LADE_OK)
        return err;
    err = sq_charger_get_by_device(b, x->device_id, &c);
    if (err == LADE_ERR_NOT_FOUND) {
        /* Not (yet) a charger of the portal: keep the session; charger_add links it later. */
        memset(&c, 0, sizeof c);
    } else if (err != LADE_OK) {
        goto out;
    }
    sqlite3_bind_text(s, 1, x->session_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, x->device_id, -1, SQLITE_STATIC);
    bind_opt_id(s, 3, c.id);
    bind_opt_id(s, 4, c.installation_id);
    sqlite3_bind_int64(s, 5, x->start_s);
    sqlite3_bind_int64(s, 6, x->end_s);
    sqlite3_bind_int64(s, 7, (int64_t)x->energy_wh);
    sqlite3_bind_int(s, 8, x->reliable_clock ? 1 : 0);
    sqlite3_bind_int(s, 9, x->end_estimated ? 1 : 0);
    sqlite3_bind_int(s, 10, x->peak_power_w);
    sqlite3_bind_int(s, 11, x->phases);
    sqlite3_bind_text(s, 12, x->end_reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 13, x->received_s);
    if ((err = run(b, s, "add session", &n)) != LADE_OK)
        goto out;
    if (n > 0) {
        *result = LADE_STORE_ADDED;
    } else if ((err = sess_get(b, x->session_id, &old)) == LADE_OK) {
        *result = sess_same(&old, x) ? LADE_STORE_DUPLICATE : LADE_STORE_CONFLICT;
        if (*result == LADE_STORE_CONFLICT)
            LOG_W(MOD,
                  "session %s from %s: already stored with other content (from %s); kept "
                  "the first",
                  x->session_id, x->device_id, old.device_id);
    } else if (err == LADE_ERR_NOT_FOUND) {
        err = LADE_ERR_DB; /* ON CONFLICT skipped the row, yet it is not there */
    }
out:
    return tx_end(b, err);
}

static lade_err sq_session_get(void *be, const char *session_id, struct lade_store_session *out)
{
    return sess_get(be, session_id, out);
}

struct sess_walk {
    lade_store_session_fn fn;
    void *ud;
};

static int sess_each(sqlite3_stmt *s, void *ctx)
{
    struct sess_walk *w = ctx;
    struct lade_store_session x;
    sess_read(s, &x);
    return w->fn(w->ud, &x);
}

static void sess_bind_filter(sqlite3_stmt *s, const struct lade_store_session_query *q)
{
    sqlite3_bind_int64(s, 1, q->installation_id);
    sqlite3_bind_int64(s, 2, q->charger_id);
    sqlite3_bind_int64(s, 3, q->user_id);
    sqlite3_bind_int64(s, 4, q->from_s);
    sqlite3_bind_int64(s, 5, q->to_s);
}

static lade_err sq_session_list(void *be, const struct lade_store_session_query *q,
                                lade_store_session_fn fn, void *ud, uint64_t *total)
{
    struct sq *b = be;
    struct sess_walk w = {fn, ud};
    lade_err err;
    /* The statement whose index drives the search: charger, installation or time. */
    enum q lq = q->charger_id        ? Q_SESS_LIST_CHG
                : q->installation_id ? Q_SESS_LIST_INST
                                     : Q_SESS_LIST_ALL;
    enum q cq = q->charger_id        ? Q_SESS_COUNT_CHG
                : q->installation_id ? Q_SESS_COUNT_INST
                                     : Q_SESS_COUNT_ALL;
    sqlite3_stmt *ls = stmt(b, lq, &err);
    sqlite3_stmt *cs = ls ? stmt(b, cq, &err) : NULL;
    if (!cs)
        return err;
    /* One read transaction: the count and the page from the same snapshot. */
    if ((err = exec(b, "BEGIN")) != LADE_OK)
        return err;
    sess_bind_filter(cs, q);
    if ((err = row(b, cs, "count sessions")) != LADE_OK) {
        err = err == LADE_ERR_NOT_FOUND ? LADE_ERR_DB : err;
        goto out;
    }
    *total = (uint64_t)sqlite3_column_int64(cs, 0);
    done(cs);
    sess_bind_filter(ls, q);
    sqlite3_bind_int64(ls, 6, q->page_size);
    sqlite3_bind_int64(ls, 7, (int64_t)q->page * q->page_size);
    err = walk(b, ls, sess_each, &w, "list sessions");
out:
    return tx_end(b, err);
}

/* ---- setpoints ---- */

static lade_err sq_setpoint_add(void *be, const struct lade_store_setpoint *sp, int64_t *id)
{
    struct sq *b = be;
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_SP_ADD, &err);
    if (!s)
        return err;
    sqlite3_bind_int64(s, 1, sp->charger_id);
    sqlite3_bind_int(s, 2, sp->current_ma);
    sqlite3_bind_int(s, 3, sp->phases);
    sqlite3_bind_int64(s, 4, sp->sent_ms);
    bind_opt_id(s, 5, sp->confirmed_ms);
    if ((err = run(b, s, "add setpoint", NULL)) == LADE_OK)
        *id = sqlite3_last_insert_rowid(b->db);
    return err;
}

static lade_err sq_setpoint_confirm(void *be, int64_t id, int64_t confirmed_ms)
{
    struct sq *b = be;
    int64_t n = 0;
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_SP_CONFIRM, &err);
    if (!s)
        return err;
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, confirmed_ms);
    if ((err = run(b, s, "confirm setpoint", &n)) == LADE_OK)
        err = changed_one(n);
    return err;
}

static lade_err sq_setpoint_last(void *be, int64_t charger_id, struct lade_store_setpoint *out)
{
    struct sq *b = be;
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_SP_LAST, &err);
    if (!s)
        return err;
    sqlite3_bind_int64(s, 1, charger_id);
    if ((err = row(b, s, "last setpoint")) == LADE_OK) {
        memset(out, 0, sizeof *out);
        out->id = sqlite3_column_int64(s, 0);
        out->charger_id = sqlite3_column_int64(s, 1);
        out->current_ma = sqlite3_column_int(s, 2);
        out->phases = (uint8_t)sqlite3_column_int(s, 3);
        out->sent_ms = sqlite3_column_int64(s, 4);
        out->confirmed_ms = sqlite3_column_int64(s, 5);
        done(s);
    }
    return err;
}

static lade_err sq_setpoint_prune(void *be, int64_t before_ms, uint32_t max_rows, uint64_t *deleted)
{
    return prune(be, Q_SP_PRUNE, before_ms, max_rows, deleted);
}

/* ---- users ---- */

static void user_read(sqlite3_stmt *s, struct lade_store_user *u)
{
    memset(u, 0, sizeof *u);
    u->id = sqlite3_column_int64(s, 0);
    col_text(s, 1, u->username, sizeof u->username);
    u->roles = (uint32_t)sqlite3_column_int64(s, 2) & LADE_ROLE_ALL;
    col_text(s, 3, u->password_hash, sizeof u->password_hash);
    u->created_s = sqlite3_column_int64(s, 4);
}

static void user_bind(sqlite3_stmt *s, const struct lade_store_user *u)
{
    sqlite3_bind_int64(s, 1, u->id);
    sqlite3_bind_text(s, 2, u->username, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, u->roles);
    sqlite3_bind_text(s, 4, u->password_hash, -1, SQLITE_STATIC);
}

static lade_err sq_user_add(void *be, const struct lade_store_user *u, int64_t *id)
{
    struct sq *b = be;
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_USER_ADD, &err);
    if (!s)
        return err;
    if ((err = tx_begin(b, true)) != LADE_OK)
        return err;
    user_bind(s, u);
    sqlite3_bind_int64(s, 5, u->created_s);
    if ((err = run(b, s, "add user", NULL)) == LADE_OK)
        *id = sqlite3_last_insert_rowid(b->db);
    return tx_end(b, err);
}

static lade_err user_get(struct sq *b, enum q q, int64_t id, const char *name,
                         struct lade_store_user *out)
{
    lade_err err;
    sqlite3_stmt *s = stmt(b, q, &err);
    if (!s)
        return err;
    if (name)
        sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(s, 1, id);
    if ((err = row(b, s, "get user")) == LADE_OK) {
        user_read(s, out);
        done(s);
    }
    return err;
}

static lade_err sq_user_get(void *be, int64_t id, struct lade_store_user *out)
{
    return user_get(be, Q_USER_GET, id, NULL, out);
}

static lade_err sq_user_get_by_name(void *be, const char *username, struct lade_store_user *out)
{
    return user_get(be, Q_USER_GET_NAME, 0, username, out);
}

static lade_err sq_user_update(void *be, const struct lade_store_user *u)
{
    struct sq *b = be;
    int64_t n = 0;
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_USER_UPDATE, &err);
    if (!s)
        return err;
    if ((err = tx_begin(b, true)) != LADE_OK)
        return err;
    user_bind(s, u);
    if ((err = run(b, s, "update user", &n)) == LADE_OK)
        err = changed_one(n);
    return tx_end(b, err);
}

static lade_err sq_user_remove(void *be, int64_t id)
{
    struct sq *b = be;
    int64_t n = 0;
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_USER_DEL, &err);
    if (!s)
        return err;
    if ((err = tx_begin(b, true)) != LADE_OK)
        return err;
    sqlite3_bind_int64(s, 1, id);
    if ((err = run(b, s, "remove user", &n)) == LADE_OK)
        err = changed_one(n);
    return tx_end(b, err);
}

struct user_walk {
    lade_store_user_fn fn;
    void *ud;
};

static int user_each(sqlite3_stmt *s, void *ctx)
{
    struct user_walk *w = ctx;
    struct lade_store_user u;
    user_read(s, &u);
    return w->fn(w->ud, &u);
}

static lade_err sq_user_list(void *be, lade_store_user_fn fn, void *ud)
{
    struct sq *b = be;
    lade_err err;
    struct user_walk w = {fn, ud};
    sqlite3_stmt *s = stmt(b, Q_USER_LIST, &err);
    if (!s)
        return err;
    return walk(b, s, user_each, &w, "list users");
}

static lade_err sq_access_set(void *be, int64_t user_id, int64_t installation_id, uint32_t roles)
{
    struct sq *b = be;
    struct lade_store_user u;
    lade_err err;
    sqlite3_stmt *s = stmt(b, roles ? Q_ACCESS_SET : Q_ACCESS_DEL, &err);
    if (!s)
        return err;
    if ((err = tx_begin(b, true)) != LADE_OK)
        return err;
    if ((err = sq_user_get(b, user_id, &u)) != LADE_OK ||
        (err = exists(b, Q_INST_EXISTS, installation_id)) != LADE_OK)
        goto out;
    sqlite3_bind_int64(s, 1, user_id);
    sqlite3_bind_int64(s, 2, installation_id);
    if (roles)
        sqlite3_bind_int64(s, 3, roles);
    err = run(b, s, "set access", NULL);
out:
    return tx_end(b, err);
}

static lade_err sq_access_get(void *be, int64_t user_id, int64_t installation_id, uint32_t *roles)
{
    struct sq *b = be;
    struct lade_store_user u;
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_ACCESS_GET, &err);
    if (!s)
        return err;
    if ((err = exec(b, "BEGIN")) != LADE_OK)
        return err;
    if ((err = sq_user_get(b, user_id, &u)) != LADE_OK ||
        (err = exists(b, Q_INST_EXISTS, installation_id)) != LADE_OK)
        goto out;
    sqlite3_bind_int64(s, 1, user_id);
    sqlite3_bind_int64(s, 2, installation_id);
    err = row(b, s, "get access");
    if (err == LADE_OK) {
        *roles = ((uint32_t)sqlite3_column_int64(s, 0) | u.roles) & LADE_ROLE_ALL;
        done(s);
    } else if (err == LADE_ERR_NOT_FOUND) {
        *roles = (u.roles & LADE_ROLE_ADMIN) ? u.roles : 0;
        err = LADE_OK;
    }
out:
    return tx_end(b, err);
}

/* ---- tokens ---- */

static lade_err sq_token_add(void *be, const uint8_t hash[LADE_STORE_TOKEN_HASH_LEN],
                             int64_t user_id, int64_t created_s, int64_t expires_s)
{
    struct sq *b = be;
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_TOK_ADD, &err);
    if (!s)
        return err;
    sqlite3_bind_blob(s, 1, hash, LADE_STORE_TOKEN_HASH_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, user_id);
    sqlite3_bind_int64(s, 3, created_s);
    sqlite3_bind_int64(s, 4, expires_s);
    return run(b, s, "add token", NULL);
}

static lade_err sq_token_get(void *be, const uint8_t hash[LADE_STORE_TOKEN_HASH_LEN], int64_t now_s,
                             int64_t *user_id, int64_t *expires_s)
{
    struct sq *b = be;
    lade_err err;
    sqlite3_stmt *s = stmt(b, Q_TOK_GET, &err);
    if (!s)
        return err;
    sqlite3_bind_blob(s, 1, hash, LADE_STORE_TOKEN_HASH_LEN, SQLITE_STATIC);
    if ((err = row(b, s, "get token")) == LADE_OK) {
        *user_id = sqlite3_column_int64(s, 0);
        *expires_s = sqlite3_column_int64(s, 1);
        done(s);
        if (now_s >= *expires_s)
            err = LADE_ERR_EXPIRED;
    }
    return err;
}

static lade_err del_changes(struct sq *b, enum q q, const void *blob, int64_t key, bool durable,
                            int64_t *n)
{
    lade_err err;
    sqlite3_stmt *s = stmt(b, q, &err);
    if (!s)
        return err;
    if ((err = tx_begin(b, durable)) != LADE_OK)
        return err;
    if (blob)
        sqlite3_bind_blob(s, 1, blob, LADE_STORE_TOKEN_HASH_LEN, SQLITE_STATIC);
    else
        sqlite3_bind_int64(s, 1, key);
    err = run(b, s, "delete tokens", n);
    return tx_end(b, err);
}

static lade_err sq_token_revoke(void *be, const uint8_t hash[LADE_STORE_TOKEN_HASH_LEN])
{
    int64_t n = 0;
    /* Durable: a revoked token must not come back after a power cut. */
    lade_err err = del_changes(be, Q_TOK_DEL, hash, 0, true, &n);
    return err == LADE_OK ? changed_one(n) : err;
}

static lade_err sq_token_revoke_user(void *be, int64_t user_id, uint64_t *count)
{
    int64_t n = 0;
    lade_err err = del_changes(be, Q_TOK_DEL_USER, NULL, user_id, true, &n);
    *count = (uint64_t)n;
    return err;
}

static lade_err sq_token_prune(void *be, int64_t now_s, uint64_t *deleted)
{
    int64_t n = 0;
    lade_err err = del_changes(be, Q_TOK_PRUNE, NULL, now_s, false, &n);
    *deleted = (uint64_t)n;
    return err;
}

/* ---- open and close ---- */

static void sq_close(void *be)
{
    struct sq *b = be;
    if (!b)
        return;
    for (int i = 0; i < Q__COUNT; i++)
        sqlite3_finalize(b->stmt[i]);
    /* sqlite3_close (not _v2): every statement is finalized, so it closes now; the last
     * connection's close checkpoints the WAL into the main file. */
    sqlite3_close(b->db);
    free(b);
}

static const struct lade_store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .installation_add = sq_installation_add,
    .installation_get = sq_installation_get,
    .installation_update = sq_installation_update,
    .installation_remove = sq_installation_remove,
    .installation_list = sq_installation_list,
    .circuit_add = sq_circuit_add,
    .circuit_get = sq_circuit_get,
    .circuit_update = sq_circuit_update,
    .circuit_remove = sq_circuit_remove,
    .circuit_list = sq_circuit_list,
    .charger_add = sq_charger_add,
    .charger_get = sq_charger_get,
    .charger_get_by_device = sq_charger_get_by_device,
    .charger_update = sq_charger_update,
    .charger_remove = sq_charger_remove,
    .charger_list = sq_charger_list,
    .charger_presence = sq_charger_presence,
    .state_put = sq_state_put,
    .state_list = sq_state_list,
    .sample_add = sq_sample_add,
    .sample_list = sq_sample_list,
    .sample_prune = sq_sample_prune,
    .session_add = sq_session_add,
    .session_get = sq_session_get,
    .session_list = sq_session_list,
    .setpoint_add = sq_setpoint_add,
    .setpoint_confirm = sq_setpoint_confirm,
    .setpoint_last = sq_setpoint_last,
    .setpoint_prune = sq_setpoint_prune,
    .user_add = sq_user_add,
    .user_get = sq_user_get,
    .user_get_by_name = sq_user_get_by_name,
    .user_update = sq_user_update,
    .user_remove = sq_user_remove,
    .user_list = sq_user_list,
    .access_set = sq_access_set,
    .access_get = sq_access_get,
    .token_add = sq_token_add,
    .token_get = sq_token_get,
    .token_revoke = sq_token_revoke,
    .token_revoke_user = sq_token_revoke_user,
    .token_prune = sq_token_prune,
};

/* Reads one integer from a single-row statement (a PRAGMA, the schema version). */
static int one_int(struct sq *b, const char *text, int64_t *v, bool *got)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(b->db, text, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(s);
    *got = rc == SQLITE_ROW;
    *v = *got ? sqlite3_column_int64(s, 0) : 0;
    rc = (rc == SQLITE_ROW || rc == SQLITE_DONE) ? SQLITE_OK : rc;
    sqlite3_finalize(s);
    return rc;
}

static lade_err migrate(struct sq *b)
{
    int64_t v = 0;
    bool got = false;
    lade_err err;
    int rc;
    /* IMMEDIATE: two processes opening a fresh file at once migrate one after the other. */
    if ((err = exec(b, "BEGIN IMMEDIATE")) != LADE_OK)
        return err;
    if ((err = exec(b, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)")))
        goto out;
    if ((rc = one_int(b, "SELECT version FROM schema_version", &v, &got)) != SQLITE_OK) {
        err = fail(b, rc, "read schema version");
        goto out;
    }
    if (v < 0 || v > LADE_STORE_SQLITE_SCHEMA) {
        set_msg(b, "%s: schema version %lld is not one this program knows (it writes %d)", b->path,
                (long long)v, LADE_STORE_SQLITE_SCHEMA);
        LOG_E(MOD, "%s", b->errmsg);
        err = LADE_ERR_CONFIG;
        goto out;
    }
    for (int64_t i = v; i < LADE_STORE_SQLITE_SCHEMA; i++) {
        if ((err = exec(b, migrations[i])) != LADE_OK)
            goto out;
        LOG_I(MOD, "%s: schema migrated %lld -> %lld", b->path, (long long)i, (long long)(i + 1));
    }
    if (v != LADE_STORE_SQLITE_SCHEMA || !got) {
        sqlite3_stmt *s = NULL;
        if ((err = exec(b, "DELETE FROM schema_version")) != LADE_OK)
            goto out;
        rc = sqlite3_prepare_v2(b->db, "INSERT INTO schema_version VALUES(?1)", -1, &s, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_int(s, 1, LADE_STORE_SQLITE_SCHEMA);
            rc = sqlite3_step(s);
            rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
        }
        sqlite3_finalize(s);
        if (rc != SQLITE_OK) {
            err = fail(b, rc, "write schema version");
            goto out;
        }
    }
    err = exec(b, "COMMIT");
out:
    if (err != LADE_OK)
        (void)sqlite3_exec(b->db, "ROLLBACK", NULL, NULL, NULL);
    return err;
}

static lade_err setup(struct sq *b, int busy_ms)
{
    int64_t v = 0;
    bool got = false;
    lade_err err;
    int rc = sqlite3_open_v2(
        b->path, &b->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK)
        return fail(b, rc, "open");
    sqlite3_extended_result_codes(b->db, 1);
    sqlite3_busy_timeout(b->db, busy_ms);
    /* SQLite silently opens a file it may not write read-only; the portal must write. */
    if (sqlite3_db_readonly(b->db, "main") == 1) {
        set_msg(b, "%s: open: the file is read-only", b->path);
        lade_store_fail(NULL, "%s", b->errmsg);
        return LADE_ERR_DB;
    }
    /* The first statements read the header: "file is not a database" shows up here. */
    if ((err = exec(b, "PRAGMA journal_mode=WAL")) != LADE_OK ||
        (err = exec(b, "PRAGMA synchronous=NORMAL")) != LADE_OK ||
        (err = exec(b, "PRAGMA foreign_keys=ON")) != LADE_OK)
        return err;
    if ((rc = one_int(b, "PRAGMA foreign_keys", &v, &got)) != SQLITE_OK)
        return fail(b, rc, "foreign keys");
    if (v != 1) {
        set_msg(b, "%s: this SQLite has no foreign keys", b->path);
        lade_store_fail(NULL, "%s", b->errmsg);
        return LADE_ERR_DB;
    }
    return migrate(b);
}

lade_err lade_store_open_sqlite_ex(const char *path, const struct lade_store_sqlite_opts *opts,
                                   struct lade_store **out)
{
    lade_err err;
    if (out)
        *out = NULL;
    if (opts && opts->errmsg && opts->errmsg_cap)
        opts->errmsg[0] = '\0';
    if (!path || !*path || !out || (opts && opts->busy_timeout_ms < 0))
        return LADE_ERR_INVAL;
    struct sq *b = calloc(1, sizeof *b);
    if (!b)
        return LADE_ERR_NOMEM;
    if (strlen(path) >= sizeof b->path) {
        free(b);
        return LADE_ERR_INVAL;
    }
    snprintf(b->path, sizeof b->path, "%s", path);
    int busy_ms =
        opts && opts->busy_timeout_ms ? opts->busy_timeout_ms : LADE_STORE_BUSY_DEFAULT_MS;
    if ((err = setup(b, busy_ms)) != LADE_OK)
        goto fail;
    if ((err = lade_store_new(&sqlite_ops, b, out)) != LADE_OK)
        goto fail;
    b->st = *out;
    return LADE_OK;
fail:
    if (opts && opts->errmsg && opts->errmsg_cap)
        snprintf(opts->errmsg, opts->errmsg_cap, "%s",
                 b->errmsg[0] ? b->errmsg : lade_strerror(err));
    sq_close(b);
    return err;
}

lade_err lade_store_open_sqlite(const char *path, struct lade_store **out)
{
    return lade_store_open_sqlite_ex(path, NULL, out);
}
