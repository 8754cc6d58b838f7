/* Device registry on SQLite (see registry.h, docs/hub.md).
 *
 * Why WAL + busy timeout: the hub plugin, lade-factory and the portal open the same file; WAL
 * lets readers (the plugin checking a key at CONNECT) run while a writer commits, and the busy
 * timeout makes a second writer wait instead of failing at once.
 */
#include "lade/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "lade/clock.h"
#include "lade/codec.h"
#include "lade/log.h"

#define MOD "registry"

struct lade_registry {
    sqlite3 *db;
};

/* Migration i takes the schema from version i to i + 1. Append only. */
static const char *const migrations[] = {
    /* 0 → 1 */
    "CREATE TABLE devices("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  key_b64 TEXT NOT NULL,"
    "  enabled INTEGER NOT NULL DEFAULT 1,"
    "  created_s INTEGER NOT NULL);"
    "CREATE TABLE services("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  key_b64 TEXT NOT NULL,"
    "  created_s INTEGER NOT NULL);"
    "CREATE TABLE twins("
    "  device_id TEXT PRIMARY KEY NOT NULL REFERENCES devices(id) ON DELETE CASCADE,"
    "  desired TEXT NOT NULL DEFAULT '{}',"
    "  desired_version INTEGER NOT NULL DEFAULT 1,"
    "  reported TEXT NOT NULL DEFAULT '{}',"
    "  reported_version INTEGER NOT NULL DEFAULT 1);",
};
_Static_assert(sizeof migrations / sizeof migrations[0] == LADE_REGISTRY_SCHEMA,
               "one migration per schema version");

bool lade_registry_id_valid(const char *id)
{
    if (!id)
        return false;
    size_t n = 0;
    for (; id[n]; n++) {
        char c = id[n];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return false;
        if (n >= LADE_REGISTRY_ID_MAX)
            return false;
    }
    return n > 0;
}

static lade_err db_err(struct lade_registry *reg, int rc, const char *what)
{
    if (rc == SQLITE_NOMEM)
        return LADE_ERR_NOMEM;
    LOG_W(MOD, "%s: %s", what, reg && reg->db ? sqlite3_errmsg(reg->db) : sqlite3_errstr(rc));
    return LADE_ERR_DB;
}

static lade_err exec(struct lade_registry *reg, const char *sql)
{
    int rc = sqlite3_exec(reg->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? LADE_OK : db_err(reg, rc, sql);
}

static lade_err prepare(struct lade_registry *reg, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v2(reg->db, sql, -1, st, NULL);
    return rc == SQLITE_OK ? LADE_OK : db_err(reg, rc, "prepare");
}

static int64_t schema_version(struct lade_registry *reg)
{
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (prepare(reg, "SELECT version FROM schema_version", &st) != LADE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        v = 0;
    sqlite3_finalize(st);
    return v;
}

static lade_err migrate(struct lade_registry *reg)
{
    lade_err err;
    /* IMMEDIATE: two processes opening a fresh file at once migrate one after the other. */
    if ((err = exec(reg, "BEGIN IMMEDIATE")) != LADE_OK)
        return err;
    if ((err = exec(reg, "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)")))
        goto out;
    int64_t v = schema_version(reg);
    if (v < 0) {
        err = LADE_ERR_DB;
        goto out;
    }
    if (v > LADE_REGISTRY_SCHEMA) {
        LOG_E(MOD, "schema version %lld is newer than this program's (%d)", (long long)v,
              LADE_REGISTRY_SCHEMA);
        err = LADE_ERR_CONFIG;
        goto out;
    }
    for (int64_t i = v; i < LADE_REGISTRY_SCHEMA; i++) {
        if ((err = exec(reg, migrations[i])) != LADE_OK)
            goto out;
        LOG_I(MOD, "schema migrated %lld -> %lld", (long long)i, (long long)(i + 1));
    }
    if (v != LADE_REGISTRY_SCHEMA) {
        char sql[96];
        snprintf(sql, sizeof sql,
                 "DELETE FROM schema_version; INSERT INTO schema_version "
                 "VALUES(%d)",
                 LADE_REGISTRY_SCHEMA);
        if ((err = exec(reg, sql)) != LADE_OK)
            goto out;
    }
    err = exec(reg, "COMMIT");
out:
    if (err != LADE_OK)
        sqlite3_exec(reg->db, "ROLLBACK", NULL, NULL, NULL);
    return err;
}

lade_err lade_registry_open(const char *path, struct lade_registry **out)
{
    lade_err err;
    if (!path || !out)
        return LADE_ERR_INVAL;
    *out = NULL;
    struct lade_registry *reg = calloc(1, sizeof *reg);
    if (!reg)
        return LADE_ERR_NOMEM;
    int rc = sqlite3_open_v2(
        path, &reg->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        err = db_err(reg, rc, "open");
        goto out;
    }
    sqlite3_busy_timeout(reg->db, LADE_REGISTRY_BUSY_DEFAULT);
    /* synchronous=FULL: a key handed to a charger at manufacturing must survive a power cut. */
    if ((err = exec(reg, "PRAGMA journal_mode=WAL")) ||
        (err = exec(reg, "PRAGMA synchronous=FULL")) ||
        (err = exec(reg, "PRAGMA foreign_keys=ON")) || (err = migrate(reg)))
        goto out;
    *out = reg;
    return LADE_OK;
out:
    lade_registry_close(reg);
    return err;
}

void lade_registry_close(struct lade_registry *reg)
{
    if (!reg)
        return;
    sqlite3_close(reg->db);
    free(reg);
}

void lade_registry_set_busy_timeout(struct lade_registry *reg, int timeout_ms)
{
    if (reg)
        sqlite3_busy_timeout(reg->db, timeout_ms);
}

/* ---- keys ---- */

static lade_err key_to_b64(const uint8_t *key, size_t key_len, char *out, size_t cap)
{
    size_t n;
    if (!key || key_len == 0 || key_len > LADE_REGISTRY_KEY_MAX)
        return LADE_ERR_INVAL;
    return lade_base64_encode(key, key_len, out, cap, &n);
}

#define KEY_B64_CAP (((LADE_REGISTRY_KEY_MAX + 2) / 3) * 4 + 1)

/* Runs a statement that changes rows; NOT_FOUND when none changed, EXISTS on a key clash. */
static lade_err step_change(struct lade_registry *reg, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return sqlite3_changes(reg->db) > 0 ? LADE_OK : LADE_ERR_NOT_FOUND;
    if (rc == SQLITE_CONSTRAINT)
        return LADE_ERR_EXISTS;
    return db_err(reg, rc, what);
}

static lade_err identity_add(struct lade_registry *reg, const char *sql, const char *id,
                             const uint8_t *key, size_t key_len, int64_t now_s)
{
    char b64[KEY_B64_CAP];
    sqlite3_stmt *st = NULL;
    lade_err err;
    if (!reg || !lade_registry_id_valid(id))
        return LADE_ERR_INVAL;
    if ((err = key_to_b64(key, key_len, b64, sizeof b64)) != LADE_OK)
        return LADE_ERR_INVAL;
    if ((err = prepare(reg, sql, &st)) != LADE_OK)
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, b64, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, now_s);
    err = step_change(reg, st, "add");
out:
    sqlite3_finalize(st);
    memset(b64, 0, sizeof b64);
    return err;
}

/* Reads the Base64 key in column 0 (and enabled in column 1 if enabled != NULL). */
static lade_err identity_key(struct lade_registry *reg, const char *sql, const char *id,
                             uint8_t *key_out, size_t cap, size_t *len, bool *enabled)
{
    sqlite3_stmt *st = NULL;
    lade_err err;
    if (!reg || !key_out || !len || !lade_registry_id_valid(id))
        return LADE_ERR_INVAL;
    *len = 0;
    if ((err = prepare(reg, sql, &st)) != LADE_OK)
        return err;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        err = LADE_ERR_NOT_FOUND;
    } else if (rc != SQLITE_ROW) {
        err = db_err(reg, rc, "key");
    } else {
        const char *b64 = (const char *)sqlite3_column_text(st, 0);
        int n = sqlite3_column_bytes(st, 0);
        uint8_t tmp[LADE_REGISTRY_KEY_MAX + 2];
        size_t tn = 0;
        if (!b64 || lade_base64_decode(b64, (size_t)n, tmp, sizeof tmp, &tn) != LADE_OK ||
            tn == 0 || tn > LADE_REGISTRY_KEY_MAX) {
            LOG_E(MOD, "stored key of '%s' is malformed", id);
            err = LADE_ERR_DB;
        } else if (tn > cap) {
            err = LADE_ERR_NOSPACE;
        } else {
            memcpy(key_out, tmp, tn);
            *len = tn;
            if (enabled)
                *enabled = sqlite3_column_int(st, 1) != 0;
            err = LADE_OK;
        }
        memset(tmp, 0, sizeof tmp);
    }
    sqlite3_finalize(st);
    return err;
}

/* ---- devices ---- */

/* Inserts one device and its twin inside the caller's transaction. */
static lade_err device_insert(struct lade_registry *reg, const char *id, const uint8_t *key,
                              size_t key_len, int64_t now_s)
{
    lade_err err =
        identity_add(reg, "INSERT INTO devices(id, key_b64, created_s) VALUES(?1, ?2, ?3)", id, key,
                     key_len, now_s);
    if (err == LADE_OK) {
        sqlite3_stmt *st = NULL;
        if ((err = prepare(reg, "INSERT INTO twins(device_id) VALUES(?1)", &st)) == LADE_OK) {
            sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
            err = step_change(reg, st, "twin");
        }
        sqlite3_finalize(st);
    }
    return err;
}

lade_err lade_registry_device_add(struct lade_registry *reg, const char *id, const uint8_t *key,
                                  size_t key_len, int64_t now_s)
{
    lade_err err;
    if (!reg)
        return LADE_ERR_INVAL;
    if ((err = exec(reg, "BEGIN IMMEDIATE")) != LADE_OK)
        return err;
    err = device_insert(reg, id, key, key_len, now_s);
    if (err == LADE_OK)
        err = exec(reg, "COMMIT");
    if (err != LADE_OK)
        sqlite3_exec(reg->db, "ROLLBACK", NULL, NULL, NULL);
    return err;
}

lade_err lade_registry_device_add_many(struct lade_registry *reg,
                                       const struct lade_registry_new_device *devs, size_t n,
                                       int64_t now_s, size_t *failed_index)
{
    lade_err err;
    if (failed_index)
        *failed_index = 0;
    if (!reg || (n && !devs))
        return LADE_ERR_INVAL;
    if ((err = exec(reg, "BEGIN IMMEDIATE")) != LADE_OK)
        return err;
    for (size_t i = 0; i < n && err == LADE_OK; i++) {
        err = device_insert(reg, devs[i].id, devs[i].key, devs[i].key_len, now_s);
        if (err && failed_index)
            *failed_index = i;
    }
    if (err == LADE_OK)
        err = exec(reg, "COMMIT");
    if (err != LADE_OK)
        sqlite3_exec(reg->db, "ROLLBACK", NULL, NULL, NULL);
    return err;
}

lade_err lade_registry_device_create(struct lade_registry *reg, const char *id, int64_t now_s,
                                     uint8_t key_out[LADE_REGISTRY_KEY_LEN])
{
    if (!key_out)
        return LADE_ERR_INVAL;
    lade_err err = lade_random(key_out, LADE_REGISTRY_KEY_LEN);
    if (err == LADE_OK)
        err = lade_registry_device_add(reg, id, key_out, LADE_REGISTRY_KEY_LEN, now_s);
    if (err != LADE_OK)
        memset(key_out, 0, LADE_REGISTRY_KEY_LEN);
    return err;
}

lade_err lade_registry_device_key(struct lade_registry *reg, const char *id, uint8_t *key_out,
                                  size_t cap, size_t *len, bool *enabled)
{
    bool en = false;
    lade_err err = identity_key(reg, "SELECT key_b64, enabled FROM devices WHERE id = ?1", id,
                                key_out, cap, len, &en);
    if (enabled)
        *enabled = err == LADE_OK && en;
    return err;
}

static lade_err update_one(struct lade_registry *reg, const char *sql, const char *id,
                           const char *text, int64_t num)
{
    sqlite3_stmt *st = NULL;
    lade_err err;
    if (!reg || !lade_registry_id_valid(id))
        return LADE_ERR_INVAL;
    if ((err = prepare(reg, sql, &st)) != LADE_OK)
        return err;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (text)
        sqlite3_bind_text(st, 2, text, -1, SQLITE_STATIC);
    else
        sqlite3_bind_int64(st, 2, num);
    err = step_change(reg, st, "update");
    sqlite3_finalize(st);
    return err;
}

lade_err lade_registry_device_set_key(struct lade_registry *reg, const char *id, const uint8_t *key,
                                      size_t key_len)
{
    char b64[KEY_B64_CAP];
    if (key_to_b64(key, key_len, b64, sizeof b64) != LADE_OK)
        return LADE_ERR_INVAL;
    lade_err err = update_one(reg, "UPDATE devices SET key_b64 = ?2 WHERE id = ?1", id, b64, 0);
    memset(b64, 0, sizeof b64);
    return err;
}

lade_err lade_registry_device_set_enabled(struct lade_registry *reg, const char *id, bool enabled)
{
    return update_one(reg, "UPDATE devices SET enabled = ?2 WHERE id = ?1", id, NULL,
                      enabled ? 1 : 0);
}

lade_err lade_registry_device_remove(struct lade_registry *reg, const char *id)
{
    /* The twin goes with it (ON DELETE CASCADE). */
    return update_one(reg, "DELETE FROM devices WHERE id = ?1 AND ?2 = 0", id, NULL, 0);
}

lade_err lade_registry_device_list(struct lade_registry *reg,
                                   int (*fn)(void *ud, const struct lade_registry_device *dev),
                                   void *ud)
{
    sqlite3_stmt *st = NULL;
    lade_err err;
    if (!reg || !fn)
        return LADE_ERR_INVAL;
    if ((err = prepare(reg, "SELECT id, enabled, created_s FROM devices ORDER BY id", &st)))
        return err;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct lade_registry_device d = {
            .id = (const char *)sqlite3_column_text(st, 0),
            .enabled = sqlite3_column_int(st, 1) != 0,
            .created_s = sqlite3_column_int64(st, 2),
        };
        if (d.id && fn(ud, &d) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    err = rc == SQLITE_DONE ? LADE_OK : db_err(reg, rc, "list");
    sqlite3_finalize(st);
    return err;
}

/* ---- services ---- */

lade_err lade_registry_service_add(struct lade_registry *reg, const char *name, const uint8_t *key,
                                   size_t key_len, int64_t now_s)
{
    return identity_add(reg, "INSERT INTO services(name, key_b64, created_s) VALUES(?1, ?2, ?3)",
                        name, key, key_len, now_s);
}

lade_err lade_registry_service_key(struct lade_registry *reg, const char *name, uint8_t *key_out,
                                   size_t cap, size_t *len)
{
    return identity_key(reg, "SELECT key_b64 FROM services WHERE name = ?1", name, key_out, cap,
                        len, NULL);
}

lade_err lade_registry_service_remove(struct lade_registry *reg, const char *name)
{
    return update_one(reg, "DELETE FROM services WHERE name = ?1 AND ?2 = 0", name, NULL, 0);
}

/* ---- twins ---- */

static const char *const part_col[] = {"desired", "reported"};

/* Reads (json text, version) of one part; *json is malloc'd. */
static lade_err twin_read(struct lade_registry *reg, const char *id, enum lade_twin_part part,
                          char **json, int64_t *version)
{
    char sql[96];
    sqlite3_stmt *st = NULL;
    lade_err err;
    snprintf(sql, sizeof sql, "SELECT %s, %s_version FROM twins WHERE device_id = ?1",
             part_col[part], part_col[part]);
    if ((err = prepare(reg, sql, &st)) != LADE_OK)
        return err;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        err = LADE_ERR_NOT_FOUND;
    } else if (rc != SQLITE_ROW) {
        err = db_err(reg, rc, "twin read");
    } else {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        *json = strdup(t ? t : "{}");
        *version = sqlite3_column_int64(st, 1);
        err = *json ? LADE_OK : LADE_ERR_NOMEM;
    }
    sqlite3_finalize(st);
    return err;
}

static bool part_ok(enum lade_twin_part part)
{
    return part == LADE_TWIN_DESIRED || part == LADE_TWIN_REPORTED;
}

lade_err lade_registry_twin_part(struct lade_registry *reg, const char *id,
                                 enum lade_twin_part part, char **json_out, int64_t *version_out)
{
    if (!reg || !json_out || !version_out || !part_ok(part) || !lade_registry_id_valid(id))
        return LADE_ERR_INVAL;
    *json_out = NULL;
    return twin_read(reg, id, part, json_out, version_out);
}

/* Parses stored text (trusted: written by us) as an object; a damaged row reads as {}. */
static cJSON *parse_stored(const char *text)
{
    cJSON *o = cJSON_Parse(text);
    if (o && cJSON_IsObject(o))
        return o;
    cJSON_Delete(o);
    return cJSON_CreateObject();
}

lade_err lade_registry_twin_get(struct lade_registry *reg, const char *id, char **json_out,
                                size_t *len_out)
{
    char *text[2] = {NULL, NULL};
    int64_t ver[2] = {0, 0};
    cJSON *root = NULL;
    lade_err err;
    if (!reg || !json_out || !lade_registry_id_valid(id))
        return LADE_ERR_INVAL;
    *json_out = NULL;
    if (len_out)
        *len_out = 0;
    /* One read transaction: desired and reported from the same snapshot. */
    if ((err = exec(reg, "BEGIN")) != LADE_OK)
        return err;
    for (int i = 0; i < 2 && err == LADE_OK; i++)
        err = twin_read(reg, id, (enum lade_twin_part)i, &text[i], &ver[i]);
    sqlite3_exec(reg->db, "COMMIT", NULL, NULL, NULL);
    if (err != LADE_OK)
        goto out;
    err = LADE_ERR_NOMEM;
    if (!(root = cJSON_CreateObject()))
        goto out;
    for (int i = 0; i < 2; i++) {
        cJSON *o = parse_stored(text[i]);
        if (!o)
            goto out;
        cJSON_AddItemToObject(root, part_col[i], o);
        if (!cJSON_AddNumberToObject(o, "$version", (double)ver[i]))
            goto out;
    }
    if (!(*json_out = cJSON_PrintUnformatted(root)))
        goto out;
    if (len_out)
        *len_out = strlen(*json_out);
    err = LADE_OK;
out:
    cJSON_Delete(root);
    free(text[0]);
    free(text[1]);
    return err;
}

/* Member names starting with '$' are metadata in Azure's twins; refuse them in patches. */
static bool names_ok(const cJSON *o)
{
    for (const cJSON *c = o->child; c; c = c->next) {
        if (cJSON_IsObject(o) && (!c->string || c->string[0] == '$'))
            return false;
        if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && !names_ok(c))
            return false;
    }
    return true;
}

static int doc_depth(const cJSON *o)
{
    int d = 0;
    for (const cJSON *c = o->child; c; c = c->next) {
        if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
            int cd = 1 + doc_depth(c);
            if (cd > d)
                d = cd;
        }
    }
    return d;
}

/* RFC 7396 MergePatch(target, patch) for an object patch; target is modified in place. */
static bool merge_patch(cJSON *target, const cJSON *patch)
{
    for (const cJSON *p = patch->child; p; p = p->next) {
        if (cJSON_IsNull(p)) {
            cJSON_DeleteItemFromObjectCaseSensitive(target, p->string);
            continue;
        }
        cJSON *t = cJSON_GetObjectItemCaseSensitive(target, p->string);
        if (cJSON_IsObject(p)) {
            if (!t || !cJSON_IsObject(t)) {
                cJSON *n = cJSON_CreateObject();
                if (!n)
                    return false;
                /* ReplaceItemInObject (not ...ViaPointer) gives the new item its name. */
                if (t)
                    cJSON_ReplaceItemInObjectCaseSensitive(target, p->string, n);
                else
                    cJSON_AddItemToObject(target, p->string, n);
                t = n;
            }
            if (!merge_patch(t, p))
                return false;
        } else {
            cJSON *dup = cJSON_Duplicate(p, true);
            if (!dup)
                return false;
            if (t)
                cJSON_ReplaceItemInObjectCaseSensitive(target, p->string, dup);
            else
                cJSON_AddItemToObject(target, p->string, dup);
        }
    }
    return true;
}

/* Parses an untrusted patch: UTF-8, a JSON object and nothing after it but white space. */
static cJSON *parse_patch(const char *text, size_t len)
{
    const char *end = NULL;
    if (!lade_utf8_valid((const uint8_t *)text, len, false))
        return NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!o)
        return NULL;
    while (end && end < text + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (!cJSON_IsObject(o) || end != text + len) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

lade_err lade_registry_twin_patch(struct lade_registry *reg, const char *id,
                                  enum lade_twin_part part, const char *patch, size_t patch_len,
                                  int64_t *version_out, char **patch_out)
{
    cJSON *p = NULL, *doc = NULL;
    char *text = NULL, *out_text = NULL;
    sqlite3_stmt *st = NULL;
    int64_t ver = 0;
    bool in_tx = false;
    lade_err err;

    if (patch_out)
        *patch_out = NULL;
    if (!reg || !patch || !version_out || !part_ok(part) || !lade_registry_id_valid(id))
        return LADE_ERR_INVAL;
    if (patch_len > LADE_REGISTRY_TWIN_MAX)
        return LADE_ERR_TOO_BIG;
    if (!(p = parse_patch(patch, patch_len)))
        return LADE_ERR_INVAL;
    cJSON_DeleteItemFromObjectCaseSensitive(p, "$version");
    err = LADE_ERR_INVAL;
    if (!names_ok(p) || doc_depth(p) > LADE_REGISTRY_TWIN_DEPTH)
        goto out;

    if ((err = exec(reg, "BEGIN IMMEDIATE")) != LADE_OK)
        goto out;
    in_tx = true;
    if ((err = twin_read(reg, id, part, &text, &ver)) != LADE_OK)
        goto out;
    err = LADE_ERR_NOMEM;
    if (!(doc = parse_stored(text)) || !merge_patch(doc, p))
        goto out;
    err = LADE_ERR_INVAL;
    if (doc_depth(doc) > LADE_REGISTRY_TWIN_DEPTH)
        goto out;
    err = LADE_ERR_NOMEM;
    if (!(out_text = cJSON_PrintUnformatted(doc)))
        goto out;
    err = LADE_ERR_TOO_BIG;
    if (strlen(out_text) > LADE_REGISTRY_TWIN_MAX)
        goto out;

    char sql[96];
    snprintf(sql, sizeof sql, "UPDATE twins SET %s = ?2, %s_version = ?3 WHERE device_id = ?1",
             part_col[part], part_col[part]);
    if ((err = prepare(reg, sql, &st)) != LADE_OK)
        goto out;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, out_text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, ver + 1);
    if ((err = step_change(reg, st, "twin write")) != LADE_OK)
        goto out;
    if (patch_out) {
        err = LADE_ERR_NOMEM;
        if (!cJSON_AddNumberToObject(p, "$version", (double)(ver + 1)) ||
            !(*patch_out = cJSON_PrintUnformatted(p)))
            goto out;
    }
    if ((err = exec(reg, "COMMIT")) != LADE_OK)
        goto out;
    in_tx = false;
    *version_out = ver + 1;
    err = LADE_OK;
out:
    if (in_tx)
        sqlite3_exec(reg->db, "ROLLBACK", NULL, NULL, NULL);
    if (err != LADE_OK && patch_out) {
        free(*patch_out);
        *patch_out = NULL;
    }
    sqlite3_finalize(st);
    cJSON_Delete(p);
    cJSON_Delete(doc);
    free(text);
    free(out_text);
    return err;
}
