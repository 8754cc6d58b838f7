/* The portal's firmware repository and staged rollouts (docs/portal-api.md "Firmware",
 * docs/firmware.md; issue 6, cloud side).
 *
 * Repository: a signed manifest is uploaded first and verified against the pinned keys
 * (--firmware-keys), so the portal never publishes what a charger would refuse; then its image
 * is streamed into a temporary file in the firmware directory, bounded by the manifest's length
 * (never more than length + 1 bytes are written) and hashed as it arrives; only an image of the
 * right length and SHA-256 is renamed into place (<sha256 prefix>-<version>.img) and published.
 * The directory is what the firmware hosts (nginx) serve as /fw/.
 *
 * Rollouts: a release to the chargers of its hardware id (one installation or all), a
 * percentage and a random delay bound. Chargers are ranked by a hash of (rollout id, charger
 * id); the first ceil(n × percent / 100) of the ranking are selected, so raising the percentage
 * only adds chargers. A selected charger gets UpgradeFirmware (command 200) when it is online and
 * its hardware id is known; offline ones when they come back. Its status follows the reply and
 * then the twin's reported "firmware" object, until it runs the release (updated) or reports a
 * failure. Everything is kept in the portal's SQLite file (the store's tables fw_image,
 * fw_rollout, fw_rollout_charger, through a connection of its own), so a restart continues the
 * rollouts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <sqlite3.h>

#include "lade/clock.h"
#include "lade/fwmanifest.h"
#include "lade/fwsig.h"
#include "lade/log.h"
#include "lade/loop.h"
#include "lade/store.h"

#include "portal_int.h"

#define MOD "firmware"

#define FW_RETRY_MS    60000 /* a command that did not get through is sent again after this */
#define FW_TICK_MS     5000
#define FW_CMD_TIMEOUT 20000

struct fw_chg { /* what the portal knows of a charger's firmware (twin, observation 911) */
    int64_t charger_id;
    struct portal_fw_report r;
    bool twin_asked;
};

struct fw_rc { /* a charger in a rollout */
    int64_t rollout_id, charger_id;
    char status[16];
    char reason[256];
    int64_t updated_s;
    uint64_t retry_at_ms;
    bool in_flight, saw_busy;
};

struct portal_fw {
    struct lade_portal *p;
    struct lade_loop *loop;
    sqlite3 *db;
    char *dir;
    struct lade_fwsig_keys keys;
    struct portal_fw_image *img;
    size_t n_img;
    struct portal_fw_rollout *ro;
    size_t n_ro;
    struct fw_rc *rc;
    size_t n_rc;
    struct fw_chg *chg;
    size_t n_chg;
    struct lade_timer timer;
    bool freeing;
};

struct fw_send {
    struct portal_fw *f;
    int64_t rollout_id, charger_id;
};

/* ---- helpers ---- */

static void why_set(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void why_set(char *why, size_t cap, const char *fmt, ...)
{
    if (!why || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

static lade_err exec(struct portal_fw *f, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(f->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        LOG_E(MOD, "sql: %s", msg ? msg : "?");
        sqlite3_free(msg);
        return LADE_ERR_DB;
    }
    return LADE_OK;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = 0;
}

static char *strndup_s(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

static void img_free_fields(struct portal_fw_image *m)
{
    free(m->manifest);
    free(m->notes);
    m->manifest = m->notes = NULL;
}

/* ---- loading ---- */

/* The tables are the store's (src/cloud/store_sqlite.c, migration 1 → 2): the store opened
 * and migrated the file before this connection is made. */

static const char *col_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? (const char *)t : "";
}

static lade_err load(struct portal_fw *f)
{
    sqlite3_stmt *s = NULL;
    lade_err err = LADE_OK;
    if (sqlite3_prepare_v2(f->db,
                           "SELECT id, hardware, version, counter, length, sha256, key_id, notes,"
                           " file, manifest, uploaded_s, published FROM fw_image ORDER BY id",
                           -1, &s, NULL) != SQLITE_OK)
        return LADE_ERR_DB;
    while (sqlite3_step(s) == SQLITE_ROW) {
        struct portal_fw_image *n = realloc(f->img, (f->n_img + 1) * sizeof *n);
        if (!n) {
            err = LADE_ERR_NOMEM;
            break;
        }
        f->img = n;
        struct portal_fw_image *m = &f->img[f->n_img];
        memset(m, 0, sizeof *m);
        m->id = sqlite3_column_int64(s, 0);
        snprintf(m->hardware, sizeof m->hardware, "%s", col_text(s, 1));
        snprintf(m->version, sizeof m->version, "%s", col_text(s, 2));
        m->counter = (uint32_t)sqlite3_column_int64(s, 3);
        m->length = (uint64_t)sqlite3_column_int64(s, 4);
        snprintf(m->sha256, sizeof m->sha256, "%s", col_text(s, 5));
        snprintf(m->key_id, sizeof m->key_id, "%s", col_text(s, 6));
        m->notes = strdup(col_text(s, 7));
        snprintf(m->file, sizeof m->file, "%s", col_text(s, 8));
        m->manifest = strdup(col_text(s, 9));
        m->uploaded_s = sqlite3_column_int64(s, 10);
        m->published = sqlite3_column_int(s, 11) != 0;
        f->n_img++;
        if (!m->notes || !m->manifest) {
            err = LADE_ERR_NOMEM;
            break;
        }
    }
    sqlite3_finalize(s);
    if (err != LADE_OK)
        return err;
    if (sqlite3_prepare_v2(f->db,
                           "SELECT id, fw_id, installation_id, percent, delay_max_s, stopped,"
                           " created_s FROM fw_rollout ORDER BY id",
                           -1, &s, NULL) != SQLITE_OK)
        return LADE_ERR_DB;
    while (sqlite3_step(s) == SQLITE_ROW) {
        struct portal_fw_rollout *n = realloc(f->ro, (f->n_ro + 1) * sizeof *n);
        if (!n) {
            err = LADE_ERR_NOMEM;
            break;
        }
        f->ro = n;
        struct portal_fw_rollout *r = &f->ro[f->n_ro++];
        r->id = sqlite3_column_int64(s, 0);
        r->fw_id = sqlite3_column_int64(s, 1);
        r->installation_id = sqlite3_column_int64(s, 2);
        r->percent = sqlite3_column_int(s, 3);
        r->delay_max_s = (uint32_t)sqlite3_column_int64(s, 4);
        r->stopped = sqlite3_column_int(s, 5) != 0;
        r->created_s = sqlite3_column_int64(s, 6);
    }
    sqlite3_finalize(s);
    if (err != LADE_OK)
        return err;
    if (sqlite3_prepare_v2(f->db,
                           "SELECT rollout_id, charger_id, status, reason, updated_s FROM"
                           " fw_rollout_charger ORDER BY rollout_id, charger_id",
                           -1, &s, NULL) != SQLITE_OK)
        return LADE_ERR_DB;
    while (sqlite3_step(s) == SQLITE_ROW) {
        struct fw_rc *n = realloc(f->rc, (f->n_rc + 1) * sizeof *n);
        if (!n) {
            err = LADE_ERR_NOMEM;
            break;
        }
        f->rc = n;
        struct fw_rc *r = &f->rc[f->n_rc++];
        memset(r, 0, sizeof *r);
        r->rollout_id = sqlite3_column_int64(s, 0);
        r->charger_id = sqlite3_column_int64(s, 1);
        snprintf(r->status, sizeof r->status, "%s", col_text(s, 2));
        snprintf(r->reason, sizeof r->reason, "%s", col_text(s, 3));
        r->updated_s = sqlite3_column_int64(s, 4);
        /* A command sent before a restart whose answer never came: send it again (the
         * charger answers "already running" or 409 for one it is already doing). */
        if (strcmp(r->status, "sent") == 0)
            snprintf(r->status, sizeof r->status, "pending");
    }
    sqlite3_finalize(s);
    return err;
}

static void tick_cb(struct lade_loop *loop, struct lade_timer *t, void *ud);

lade_err portal_fw_new(struct lade_portal *p, struct lade_loop *loop, const char *db_path,
                       const char *dir, const char *keys, struct portal_fw **out, char *why,
                       size_t why_cap)
{
    *out = NULL;
    struct portal_fw *f = calloc(1, sizeof *f);
    if (!f)
        return LADE_ERR_NOMEM;
    f->p = p;
    f->loop = loop;
    lade_timer_init(&f->timer, tick_cb, f);
    lade_err err = LADE_OK;
    struct stat stt;
    if (!dir || stat(dir, &stt) != 0 || !S_ISDIR(stt.st_mode)) {
        why_set(why, why_cap, "firmware directory %s: not a directory", dir ? dir : "(none)");
        err = LADE_ERR_CONFIG;
        goto fail;
    }
    if (!keys || lade_fwsig_keys_parse(keys, &f->keys) != LADE_OK || f->keys.n == 0) {
        why_set(why, why_cap,
                "--firmware-keys: one or two Base64 Ed25519 public keys (B64[,B64]) needed");
        err = LADE_ERR_CONFIG;
        goto fail;
    }
    if (!(f->dir = strdup(dir))) {
        err = LADE_ERR_NOMEM;
        goto fail;
    }
    if (sqlite3_open_v2(db_path, &f->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        why_set(why, why_cap, "firmware tables in %s: cannot open", db_path);
        err = LADE_ERR_DB;
        goto fail;
    }
    sqlite3_busy_timeout(f->db, 5000);
    if ((err = load(f)) != LADE_OK) {
        why_set(why, why_cap, "firmware tables in %s: %s", db_path, lade_strerror(err));
        goto fail;
    }
    (void)!lade_timer_arm_in(loop, &f->timer, 1000);
    LOG_I(MOD, "firmware repository %s: %zu release(s), %zu rollout(s), %zu pinned key(s)", dir,
          f->n_img, f->n_ro, f->keys.n);
    *out = f;
    return LADE_OK;
fail:
    portal_fw_free(f);
    return err;
}

void portal_fw_free(struct portal_fw *f)
{
    if (!f)
        return;
    f->freeing = true;
    lade_timer_cancel(f->loop, &f->timer);
    for (size_t i = 0; i < f->n_img; i++)
        img_free_fields(&f->img[i]);
    free(f->img);
    free(f->ro);
    free(f->rc);
    free(f->chg);
    if (f->db)
        sqlite3_close(f->db);
    free(f->dir);
    free(f);
}

/* ---- repository ---- */

size_t portal_fw_image_count(const struct portal_fw *f)
{
    return f->n_img;
}

const struct portal_fw_image *portal_fw_image_at(const struct portal_fw *f, size_t i)
{
    return i < f->n_img ? &f->img[i] : NULL;
}

const struct portal_fw_image *portal_fw_image_get(const struct portal_fw *f, int64_t id)
{
    for (size_t i = 0; i < f->n_img; i++)
        if (f->img[i].id == id)
            return &f->img[i];
    return NULL;
}

const struct portal_fw_image *portal_fw_newest(const struct portal_fw *f, const char *hw)
{
    const struct portal_fw_image *best = NULL;
    for (size_t i = 0; i < f->n_img; i++) {
        const struct portal_fw_image *m = &f->img[i];
        if (!m->published || strcmp(m->hardware, hw) != 0)
            continue;
        if (!best || m->counter > best->counter ||
            (m->counter == best->counter && m->uploaded_s >= best->uploaded_s))
            best = m;
    }
    return best;
}

lade_err portal_fw_add_manifest(struct portal_fw *f, const char *text, size_t len, int64_t *id,
                                char *why, size_t why_cap)
{
    struct lade_fwm m;
    struct lade_fwm_diag d = {0};
    lade_err err = lade_fwm_parse(text, len, &m, &d);
    if (err != LADE_OK) {
        if (d.line)
            why_set(why, why_cap, "manifest refused: %s (line %u)", lade_fwm_reason_text(d.reason),
                    d.line);
        else
            why_set(why, why_cap, "manifest refused: %s", lade_fwm_reason_text(d.reason));
        return LADE_ERR_PROTO;
    }
    if ((err = lade_fwsig_verify(&f->keys, &m, &d)) != LADE_OK) {
        why_set(why, why_cap, "manifest refused: %s", lade_fwm_reason_text(d.reason));
        return LADE_ERR_AUTH;
    }
    struct portal_fw_image n = {0};
    snprintf(n.hardware, sizeof n.hardware, "%.*s", (int)m.hw_id.n, m.hw_id.p);
    snprintf(n.version, sizeof n.version, "%.*s", (int)m.version.n, m.version.p);
    for (size_t i = 0; i < f->n_img; i++)
        if (!strcmp(f->img[i].hardware, n.hardware) && !strcmp(f->img[i].version, n.version)) {
            why_set(why, why_cap, "a release %s for %s exists already", n.version, n.hardware);
            *id = f->img[i].id;
            return LADE_ERR_EXISTS;
        }
    n.counter = m.security_counter;
    n.length = m.image_len;
    hex(m.image_sha256, sizeof m.image_sha256, n.sha256);
    snprintf(n.key_id, sizeof n.key_id, "%.*s", (int)m.key_id.n, m.key_id.p);
    char notes[2048] = "";
    size_t nl = 0;
    if (m.notes.n && lade_fwm_notes_unescape(m.notes, notes, sizeof notes, &nl) != LADE_OK)
        notes[0] = 0;
    snprintf(n.file, sizeof n.file, "%.16s-%s.img", n.sha256, n.version);
    n.uploaded_s = lade_wall_s();
    n.manifest = strndup_s(text, len);
    n.notes = strdup(notes);
    struct portal_fw_image *arr = realloc(f->img, (f->n_img + 1) * sizeof *arr);
    if (!n.manifest || !n.notes || !arr) {
        if (arr)
            f->img = arr;
        img_free_fields(&n);
        return LADE_ERR_NOMEM;
    }
    f->img = arr;
    sqlite3_stmt *s = NULL;
    err = LADE_ERR_DB;
    if (sqlite3_prepare_v2(f->db,
                           "INSERT INTO fw_image (hardware, version, counter, length, sha256,"
                           " key_id, notes, file, manifest, uploaded_s, published) VALUES"
                           " (?,?,?,?,?,?,?,?,?,?,0)",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_text(s, 1, n.hardware, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 2, n.version, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 3, n.counter);
        sqlite3_bind_int64(s, 4, (sqlite3_int64)n.length);
        sqlite3_bind_text(s, 5, n.sha256, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 6, n.key_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 7, n.notes, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 8, n.file, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 9, n.manifest, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 10, n.uploaded_s);
        if (sqlite3_step(s) == SQLITE_DONE)
            err = LADE_OK;
    }
    sqlite3_finalize(s);
    if (err != LADE_OK) {
        img_free_fields(&n);
        why_set(why, why_cap, "storage error");
        return err;
    }
    n.id = sqlite3_last_insert_rowid(f->db);
    f->img[f->n_img++] = n;
    *id = n.id;
    LOG_I(MOD,
          "release %s for %s (counter %" PRIu32 ", %" PRIu64 " bytes, key %s) awaits its image",
          n.version, n.hardware, n.counter, n.length, n.key_id);
    return LADE_OK;
}

lade_err portal_fw_delete(struct portal_fw *f, int64_t id)
{
    struct portal_fw_image *m = (struct portal_fw_image *)portal_fw_image_get(f, id);
    if (!m)
        return LADE_ERR_NOT_FOUND;
    for (size_t i = 0; i < f->n_ro; i++)
        if (f->ro[i].fw_id == id && !f->ro[i].stopped)
            return LADE_ERR_STATE;
    char sql[96];
    snprintf(sql, sizeof sql, "DELETE FROM fw_image WHERE id = %" PRId64, id);
    if (exec(f, sql) != LADE_OK)
        return LADE_ERR_DB;
    if (m->published) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", f->dir, m->file);
        (void)unlink(path);
    }
    img_free_fields(m);
    size_t i = (size_t)(m - f->img);
    memmove(&f->img[i], &f->img[i + 1], (f->n_img - i - 1) * sizeof *m);
    f->n_img--;
    return LADE_OK;
}

struct portal_fw_upload {
    struct portal_fw *f;
    int64_t id;
    int fd;
    char tmp[1024];
    uint64_t len, limit;
    struct lade_fwsig_hash h;
    bool hash_ok;
    lade_err err;
    char why[200];
};

lade_err portal_fw_upload_begin(struct portal_fw *f, int64_t id, struct portal_fw_upload **out,
                                char *why, size_t why_cap)
{
    *out = NULL;
    const struct portal_fw_image *m = portal_fw_image_get(f, id);
    if (!m) {
        why_set(why, why_cap, "no such firmware");
        return LADE_ERR_NOT_FOUND;
    }
    if (m->published) {
        why_set(why, why_cap, "the image of %s is published already", m->version);
        return LADE_ERR_EXISTS;
    }
    struct portal_fw_upload *u = calloc(1, sizeof *u);
    if (!u)
        return LADE_ERR_NOMEM;
    u->f = f;
    u->id = id;
    u->limit = m->length;
    snprintf(u->tmp, sizeof u->tmp, "%s/.upload-%" PRId64 "-XXXXXX", f->dir, id);
    u->fd = mkstemp(u->tmp);
    if (u->fd < 0) {
        why_set(why, why_cap, "cannot create a file in the firmware directory");
        free(u);
        return LADE_ERR_IO;
    }
    if (lade_fwsig_hash_init(&u->h) != LADE_OK) {
        close(u->fd);
        unlink(u->tmp);
        free(u);
        return LADE_ERR_NOMEM;
    }
    u->hash_ok = true;
    *out = u;
    return LADE_OK;
}

void portal_fw_upload_data(struct portal_fw_upload *u, const void *p, size_t n)
{
    if (u->err != LADE_OK || !n)
        return;
    /* Never more than the manifest's length + 1 bytes on disk: one byte too many proves the
     * body is too long; the rest is read and dropped. */
    uint64_t room = u->limit + 1 - u->len;
    size_t take = n > room ? (size_t)room : n;
    const uint8_t *b = p;
    size_t done = 0;
    while (done < take) {
        ssize_t w = write(u->fd, b + done, take - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            u->err = LADE_ERR_IO;
            snprintf(u->why, sizeof u->why, "cannot write the image: %s", strerror(errno));
            return;
        }
        done += (size_t)w;
    }
    if (lade_fwsig_hash_update(&u->h, b, take) != LADE_OK) {
        u->err = LADE_ERR_NOMEM;
        return;
    }
    u->len += take;
    if (u->len > u->limit) {
        u->err = LADE_ERR_TOO_BIG;
        snprintf(u->why, sizeof u->why,
                 "image too long: more than the manifest's image-length %" PRIu64 " bytes",
                 u->limit);
    }
}

void portal_fw_upload_abort(struct portal_fw_upload *u)
{
    if (!u)
        return;
    if (u->fd >= 0)
        close(u->fd);
    unlink(u->tmp);
    if (u->hash_ok)
        lade_fwsig_hash_free(&u->h);
    free(u);
}

lade_err portal_fw_upload_finish(struct portal_fw_upload *u, char *why, size_t why_cap)
{
    struct portal_fw *f = u->f;
    lade_err err = u->err;
    if (err != LADE_OK) {
        why_set(why, why_cap, "%s", u->why[0] ? u->why : lade_strerror(err));
        portal_fw_upload_abort(u);
        return err;
    }
    struct portal_fw_image *m = (struct portal_fw_image *)portal_fw_image_get(f, u->id);
    uint8_t sha[32];
    char shx[65];
    err = lade_fwsig_hash_final(&u->h, sha);
    lade_fwsig_hash_free(&u->h);
    u->hash_ok = false;
    if (err != LADE_OK || !m) {
        why_set(why, why_cap, m ? "hash failed" : "the release was deleted meanwhile");
        portal_fw_upload_abort(u);
        return m ? err : LADE_ERR_NOT_FOUND;
    }
    hex(sha, sizeof sha, shx);
    if (u->len != m->length) {
        why_set(why, why_cap,
                "image length %" PRIu64 " differs from the manifest's image-length %" PRIu64,
                u->len, m->length);
        portal_fw_upload_abort(u);
        return LADE_ERR_AUTH;
    }
    if (strcmp(shx, m->sha256) != 0) {
        why_set(why, why_cap, "image SHA-256 %s differs from the manifest's %s", shx, m->sha256);
        portal_fw_upload_abort(u);
        return LADE_ERR_AUTH;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", f->dir, m->file);
    if (fsync(u->fd) != 0 || fchmod(u->fd, 0644) != 0 || rename(u->tmp, path) != 0) {
        why_set(why, why_cap, "cannot publish the image: %s", strerror(errno));
        portal_fw_upload_abort(u);
        return LADE_ERR_IO;
    }
    close(u->fd);
    u->fd = -1;
    free(u);
    char sql[96];
    snprintf(sql, sizeof sql, "UPDATE fw_image SET published = 1 WHERE id = %" PRId64, m->id);
    if (exec(f, sql) != LADE_OK) {
        why_set(why, why_cap, "storage error");
        return LADE_ERR_DB;
    }
    m->published = true;
    LOG_I(MOD, "release %s for %s published as %s", m->version, m->hardware, m->file);
    return LADE_OK;
}

/* ---- what chargers report ---- */

/* Both per-charger arrays are kept sorted (binary search): a rollout over a large fleet looks
 * every charger up on every step. */
static size_t chg_lower(const struct portal_fw *f, int64_t id)
{
    size_t lo = 0, hi = f->n_chg;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (f->chg[mid].charger_id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct fw_chg *chg_get(struct portal_fw *f, int64_t id, bool add)
{
    size_t i = chg_lower(f, id);
    if (i < f->n_chg && f->chg[i].charger_id == id)
        return &f->chg[i];
    if (!add)
        return NULL;
    struct fw_chg *n = realloc(f->chg, (f->n_chg + 1) * sizeof *n);
    if (!n)
        return NULL;
    f->chg = n;
    memmove(&f->chg[i + 1], &f->chg[i], (f->n_chg - i) * sizeof *n);
    f->n_chg++;
    memset(&f->chg[i], 0, sizeof *n);
    f->chg[i].charger_id = id;
    return &f->chg[i];
}

const struct portal_fw_report *portal_fw_report_get(const struct portal_fw *f, int64_t charger_id)
{
    size_t i = chg_lower(f, charger_id);
    return i < f->n_chg && f->chg[i].charger_id == charger_id ? &f->chg[i].r : NULL;
}

static void rc_save(struct portal_fw *f, struct fw_rc *r);
static void kick(struct portal_fw *f);

static void str_item(const cJSON *o, const char *k, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsString(v))
        snprintf(out, cap, "%s", v->valuestring);
}

/* A reported patch, or a twin's "reported" object: takes its "firmware" object. */
static void take_report(struct portal_fw *f, int64_t charger_id, const cJSON *rep)
{
    const cJSON *fw = cJSON_GetObjectItemCaseSensitive(rep, "firmware");
    if (!cJSON_IsObject(fw))
        return;
    struct fw_chg *c = chg_get(f, charger_id, true);
    if (!c)
        return;
    struct portal_fw_report *r = &c->r;
    r->known = true;
    str_item(fw, "version", r->version, sizeof r->version);
    str_item(fw, "hardwareId", r->hardware, sizeof r->hardware);
    str_item(fw, "state", r->state, sizeof r->state);
    str_item(fw, "boot", r->boot, sizeof r->boot);
    r->target[0] = 0;
    str_item(fw, "target", r->target, sizeof r->target);
    r->last_error[0] = 0;
    str_item(fw, "lastError", r->last_error, sizeof r->last_error);
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(fw, "progress");
    r->progress = cJSON_IsNumber(pr) ? (int)pr->valuedouble : -1;
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(fw, "securityCounter");
    if (cJSON_IsNumber(sc))
        r->counter = (uint32_t)sc->valuedouble;
    r->restart_deferred = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(fw, "restartDeferred"));
    r->updated_ms = portal_wall_ms();
    /* Rollouts follow what the charger says. */
    for (size_t i = 0; i < f->n_rc; i++) {
        struct fw_rc *x = &f->rc[i];
        if (x->charger_id != charger_id)
            continue;
        const struct portal_fw_rollout *ro = NULL;
        for (size_t k = 0; k < f->n_ro; k++)
            if (f->ro[k].id == x->rollout_id)
                ro = &f->ro[k];
        const struct portal_fw_image *m = ro ? portal_fw_image_get(f, ro->fw_id) : NULL;
        if (!m)
            continue;
        bool busy = strcmp(r->state, "idle") != 0 && strcmp(r->state, "failed") != 0;
        if (strcmp(x->status, "accepted") == 0 || strcmp(x->status, "sent") == 0) {
            if (busy)
                x->saw_busy = true;
            if (strcmp(r->version, m->version) == 0 && !strcmp(r->state, "idle")) {
                snprintf(x->status, sizeof x->status, "updated");
                x->reason[0] = 0;
                rc_save(f, x);
            } else if (!strcmp(r->state, "failed") ||
                       (x->saw_busy && !strcmp(r->state, "idle") && r->last_error[0])) {
                snprintf(x->status, sizeof x->status, "failed");
                snprintf(x->reason, sizeof x->reason, "%s",
                         r->last_error[0] ? r->last_error : "update failed");
                rc_save(f, x);
            }
        } else if (strcmp(r->version, m->version) == 0 && strcmp(x->status, "updated") != 0 &&
                   !strcmp(r->state, "idle")) {
            snprintf(x->status, sizeof x->status, "updated");
            x->reason[0] = 0;
            rc_save(f, x);
        }
    }
    kick(f);
}

void portal_fw_reported(struct portal_fw *f, int64_t charger_id, const void *json, size_t len)
{
    if (!f)
        return;
    cJSON *j = cJSON_ParseWithLength(json, len);
    if (cJSON_IsObject(j))
        take_report(f, charger_id, j);
    cJSON_Delete(j);
}

void portal_fw_version_seen(struct portal_fw *f, int64_t charger_id, const char *version)
{
    if (!f)
        return;
    struct fw_chg *c = chg_get(f, charger_id, true);
    /* Only until the twin reported: its firmware object is re-sent at every update step, while
     * an observation may be older than the last report. */
    if (c && !c->r.known && strcmp(c->r.version, version) != 0) {
        snprintf(c->r.version, sizeof c->r.version, "%s", version);
        kick(f);
    }
}

void portal_fw_online(struct portal_fw *f, int64_t charger_id)
{
    (void)charger_id;
    if (f)
        kick(f);
}

/* ---- rollouts ---- */

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint64_t rank(int64_t rollout_id, int64_t charger_id)
{
    return mix((uint64_t)rollout_id * 0x9e3779b97f4a7c15ull ^ mix((uint64_t)charger_id));
}

static struct portal_fw_rollout *ro_get(struct portal_fw *f, int64_t id)
{
    for (size_t i = 0; i < f->n_ro; i++)
        if (f->ro[i].id == id)
            return &f->ro[i];
    return NULL;
}

const struct portal_fw_rollout *portal_fw_rollout_get(const struct portal_fw *f, int64_t id)
{
    return ro_get((struct portal_fw *)f, id);
}

size_t portal_fw_rollout_count(const struct portal_fw *f)
{
    return f->n_ro;
}

const struct portal_fw_rollout *portal_fw_rollout_at(const struct portal_fw *f, size_t i)
{
    return i < f->n_ro ? &f->ro[i] : NULL;
}

static size_t rc_lower(const struct portal_fw *f, int64_t rollout_id, int64_t charger_id)
{
    size_t lo = 0, hi = f->n_rc;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct fw_rc *m = &f->rc[mid];
        if (m->rollout_id < rollout_id ||
            (m->rollout_id == rollout_id && m->charger_id < charger_id))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct fw_rc *rc_get(struct portal_fw *f, int64_t rollout_id, int64_t charger_id, bool add)
{
    size_t i = rc_lower(f, rollout_id, charger_id);
    if (i < f->n_rc && f->rc[i].rollout_id == rollout_id && f->rc[i].charger_id == charger_id)
        return &f->rc[i];
    if (!add)
        return NULL;
    struct fw_rc *n = realloc(f->rc, (f->n_rc + 1) * sizeof *n);
    if (!n)
        return NULL;
    f->rc = n;
    memmove(&f->rc[i + 1], &f->rc[i], (f->n_rc - i) * sizeof *n);
    f->n_rc++;
    struct fw_rc *r = &f->rc[i];
    memset(r, 0, sizeof *r);
    r->rollout_id = rollout_id;
    r->charger_id = charger_id;
    snprintf(r->status, sizeof r->status, "pending");
    rc_save(f, r);
    return r;
}

static void rc_save(struct portal_fw *f, struct fw_rc *r)
{
    r->updated_s = lade_wall_s();
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v2(f->db,
                           "INSERT OR REPLACE INTO fw_rollout_charger (rollout_id, charger_id,"
                           " status, reason, updated_s) VALUES (?,?,?,?,?)",
                           -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, r->rollout_id);
        sqlite3_bind_int64(s, 2, r->charger_id);
        sqlite3_bind_text(s, 3, r->status, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, r->reason, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 5, r->updated_s);
        if (sqlite3_step(s) != SQLITE_DONE)
            LOG_W(MOD, "rollout status not stored: %s", sqlite3_errmsg(f->db));
    }
    sqlite3_finalize(s);
}

static lade_err ro_save(struct portal_fw *f, struct portal_fw_rollout *r, bool insert)
{
    sqlite3_stmt *s = NULL;
    lade_err err = LADE_ERR_DB;
    const char *sql = insert ? "INSERT INTO fw_rollout (fw_id, installation_id, percent,"
                               " delay_max_s, stopped, created_s) VALUES (?,?,?,?,?,?)"
                             : "UPDATE fw_rollout SET fw_id = ?, installation_id = ?, percent = ?,"
                               " delay_max_s = ?, stopped = ?, created_s = ? WHERE id = ?";
    if (sqlite3_prepare_v2(f->db, sql, -1, &s, NULL) == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, r->fw_id);
        sqlite3_bind_int64(s, 2, r->installation_id);
        sqlite3_bind_int(s, 3, r->percent);
        sqlite3_bind_int64(s, 4, r->delay_max_s);
        sqlite3_bind_int(s, 5, r->stopped);
        sqlite3_bind_int64(s, 6, r->created_s);
        if (!insert)
            sqlite3_bind_int64(s, 7, r->id);
        if (sqlite3_step(s) == SQLITE_DONE)
            err = LADE_OK;
    }
    sqlite3_finalize(s);
    if (err == LADE_OK && insert)
        r->id = sqlite3_last_insert_rowid(f->db);
    return err;
}

lade_err portal_fw_rollout_new(struct portal_fw *f, int64_t fw_id, int64_t installation_id,
                               int percent, uint32_t delay_max_s, int64_t *id)
{
    const struct portal_fw_image *m = portal_fw_image_get(f, fw_id);
    if (!m)
        return LADE_ERR_NOT_FOUND;
    if (!m->published)
        return LADE_ERR_STATE;
    struct portal_fw_rollout *n = realloc(f->ro, (f->n_ro + 1) * sizeof *n);
    if (!n)
        return LADE_ERR_NOMEM;
    f->ro = n;
    struct portal_fw_rollout r = {.fw_id = fw_id,
                                  .installation_id = installation_id,
                                  .percent = percent,
                                  .delay_max_s = delay_max_s,
                                  .created_s = lade_wall_s()};
    lade_err err = ro_save(f, &r, true);
    if (err != LADE_OK)
        return err;
    f->ro[f->n_ro++] = r;
    *id = r.id;
    LOG_I(MOD, "rollout %" PRId64 ": %s for %s to %d%% of %s", r.id, m->version, m->hardware,
          percent, installation_id ? "one installation" : "all installations");
    kick(f);
    return LADE_OK;
}

lade_err portal_fw_rollout_set(struct portal_fw *f, int64_t id, int percent, bool stop)
{
    struct portal_fw_rollout *r = ro_get(f, id);
    if (!r)
        return LADE_ERR_NOT_FOUND;
    struct portal_fw_rollout was = *r;
    if (percent > 0) {
        if (percent < r->percent || r->stopped)
            return LADE_ERR_STATE;
        r->percent = percent;
    }
    if (stop)
        r->stopped = true;
    lade_err err = ro_save(f, r, false);
    if (err != LADE_OK) {
        *r = was;
        return err;
    }
    kick(f);
    return LADE_OK;
}

struct cand {
    int64_t id;
    uint64_t rank;
};

static int cand_cmp(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    return x->rank < y->rank ? -1 : x->rank > y->rank ? 1 : (x->id > y->id) - (x->id < y->id);
}

struct cand_list {
    struct portal_fw *f;
    const char *hw;
    struct cand *v;
    size_t n, cap;
    bool oom;
    int64_t rollout_id;
};

static int cand_cb(void *ud, const struct lade_store_charger *c)
{
    struct cand_list *l = ud;
    if (!c->installation_id)
        return 0; /* unassigned chargers are not rolled out to */
    const struct portal_fw_report *r = portal_fw_report_get(l->f, c->id);
    if (r && r->hardware[0] && strcmp(r->hardware, l->hw) != 0)
        return 0; /* another hardware */
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        struct cand *n = realloc(l->v, cap * sizeof *n);
        if (!n) {
            l->oom = true;
            return 1;
        }
        l->v = n;
        l->cap = cap;
    }
    l->v[l->n++] = (struct cand){.id = c->id, .rank = rank(l->rollout_id, c->id)};
    return 0;
}

/* The chargers a rollout selects, in rank order; *n_sel of them. Malloc'd. */
static struct cand *selection(struct portal_fw *f, const struct portal_fw_rollout *ro,
                              const struct portal_fw_image *m, size_t *n_all, size_t *n_sel)
{
    struct cand_list l = {.f = f, .hw = m->hardware, .rollout_id = ro->id};
    struct lade_store *st = portal_store(f->p);
    if (lade_store_charger_list(st, ro->installation_id, 0, cand_cb, &l) != LADE_OK || l.oom) {
        free(l.v);
        *n_all = *n_sel = 0;
        return NULL;
    }
    if (l.n)
        qsort(l.v, l.n, sizeof *l.v, cand_cmp);
    *n_all = l.n;
    *n_sel = (l.n * (size_t)ro->percent + 99) / 100;
    return l.v;
}

static void on_send_reply(void *ud, lade_err err, int status, bool hub_made, const char *body,
                          size_t len)
{
    struct fw_send *k = ud;
    struct portal_fw *f = k->f;
    struct fw_rc *r = f ? rc_get(f, k->rollout_id, k->charger_id, false) : NULL;
    if (!r) {
        free(k);
        return;
    }
    r->in_flight = false;
    cJSON *j = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    char reason[200] = "";
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "status");
    if (cJSON_IsString(e))
        snprintf(reason, sizeof reason, "%s", e->valuestring);
    else if (cJSON_IsString(s))
        snprintf(reason, sizeof reason, "%s", s->valuestring);
    if (err == LADE_OK && !hub_made && status == 200) {
        if (strstr(reason, "already running"))
            snprintf(r->status, sizeof r->status, "updated");
        else if (strcmp(r->status, "updated") != 0 && strcmp(r->status, "failed") != 0)
            snprintf(r->status, sizeof r->status, "accepted");
        snprintf(r->reason, sizeof r->reason, "%s", reason);
    } else if (err == LADE_OK && !hub_made && status == 400) {
        snprintf(r->status, sizeof r->status, "refused");
        snprintf(r->reason, sizeof r->reason, "%s", reason[0] ? reason : "refused");
    } else {
        /* Not delivered, timed out, or busy with another update (409): later again. */
        snprintf(r->status, sizeof r->status, "pending");
        snprintf(r->reason, sizeof r->reason, "%s",
                 err != LADE_OK              ? lade_strerror(err)
                 : status == 409             ? (reason[0] ? reason : "an update is in progress")
                 : hub_made && status == 404 ? "offline"
                                             : "no answer");
        r->retry_at_ms = lade_mono_ms() + FW_RETRY_MS;
    }
    rc_save(f, r);
    LOG_I(MOD, "rollout %" PRId64 ": charger %" PRId64 " -> %s %s", r->rollout_id, r->charger_id,
          r->status, r->reason);
    cJSON_Delete(j);
    free(k);
}

char *portal_fw_command_json(const struct portal_fw_image *m, uint32_t delay_max_s)
{
    cJSON *o = cJSON_CreateObject();
    char path[200];
    snprintf(path, sizeof path, "/fw/%s", m->file);
    cJSON_AddNumberToObject(o, "id", 200);
    cJSON_AddStringToObject(o, "manifest", m->manifest);
    cJSON_AddStringToObject(o, "path", path);
    cJSON_AddNumberToObject(o, "delayMaxS", delay_max_s);
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return t;
}

static void twin_read(void *ud, lade_err err, int status, bool hub_made, const char *body,
                      size_t len)
{
    (void)hub_made;
    struct fw_send *k = ud;
    if (k->f && err == LADE_OK && status == 200) {
        cJSON *j = cJSON_ParseWithLength(body, len);
        const cJSON *rep = cJSON_GetObjectItemCaseSensitive(j, "reported");
        if (cJSON_IsObject(rep))
            take_report(k->f, k->charger_id, rep);
        cJSON_Delete(j);
    }
    free(k);
}

static void step_rollout(struct portal_fw *f, struct portal_fw_rollout *ro, uint64_t now)
{
    const struct portal_fw_image *m = portal_fw_image_get(f, ro->fw_id);
    if (!m || ro->stopped)
        return;
    size_t n_all = 0, n_sel = 0;
    struct cand *v = selection(f, ro, m, &n_all, &n_sel);
    for (size_t i = 0; i < n_sel; i++) {
        struct fw_rc *r = rc_get(f, ro->id, v[i].id, true);
        if (!r)
            break;
        if (strcmp(r->status, "pending") != 0 || r->in_flight || now < r->retry_at_ms)
            continue;
        if (!portal_charger_online(f->p, v[i].id))
            continue;
        struct fw_chg *c = chg_get(f, v[i].id, true);
        if (!c)
            continue;
        if (!c->r.hardware[0]) {
            /* Hardware unknown (no report since the portal started): read the twin. */
            if (!c->twin_asked) {
                struct fw_send *k = calloc(1, sizeof *k);
                if (k) {
                    *k = (struct fw_send){.f = f, .charger_id = v[i].id};
                    if (portal_twin_get(f->p, v[i].id, twin_read, k) == LADE_OK)
                        c->twin_asked = true;
                    else
                        free(k);
                }
            }
            continue;
        }
        if (!strcmp(c->r.version, m->version) && !strcmp(c->r.state, "idle")) {
            snprintf(r->status, sizeof r->status, "updated");
            snprintf(r->reason, sizeof r->reason, "already running %s", m->version);
            rc_save(f, r);
            continue;
        }
        char *json = portal_fw_command_json(m, ro->delay_max_s);
        struct fw_send *k = calloc(1, sizeof *k);
        if (!json || !k) {
            free(json);
            free(k);
            continue;
        }
        *k = (struct fw_send){.f = f, .rollout_id = ro->id, .charger_id = v[i].id};
        lade_err err =
            portal_call(f->p, v[i].id, "command", json, FW_CMD_TIMEOUT, on_send_reply, k);
        free(json);
        if (err != LADE_OK) {
            free(k);
            r->retry_at_ms = now + FW_RETRY_MS;
            continue;
        }
        r->in_flight = true;
        r->saw_busy = false;
        snprintf(r->status, sizeof r->status, "sent");
        r->reason[0] = 0;
        rc_save(f, r);
    }
    free(v);
}

static void tick_cb(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct portal_fw *f = ud;
    uint64_t now = lade_mono_ms();
    for (size_t i = 0; i < f->n_ro; i++)
        step_rollout(f, &f->ro[i], now);
    (void)!lade_timer_arm_in(f->loop, &f->timer, FW_TICK_MS);
}

static void kick(struct portal_fw *f)
{
    if (!f->freeing)
        (void)!lade_timer_arm_in(f->loop, &f->timer, 10);
}

cJSON *portal_fw_rollout_json(struct portal_fw *f, int64_t id)
{
    struct portal_fw_rollout *ro = ro_get(f, id);
    if (!ro)
        return NULL;
    const struct portal_fw_image *m = portal_fw_image_get(f, ro->fw_id);
    char sid[PORTAL_ID_LEN + 1];
    cJSON *o = cJSON_CreateObject();
    portal_id_format(PORTAL_ID_ROLLOUT, ro->id, sid);
    cJSON_AddStringToObject(o, "Id", sid);
    portal_id_format(PORTAL_ID_FIRMWARE, ro->fw_id, sid);
    cJSON_AddStringToObject(o, "FirmwareId", sid);
    cJSON_AddStringToObject(o, "Version", m ? m->version : "");
    cJSON_AddStringToObject(o, "HardwareId", m ? m->hardware : "");
    if (ro->installation_id) {
        portal_id_format(PORTAL_ID_INSTALLATION, ro->installation_id, sid);
        cJSON_AddStringToObject(o, "InstallationId", sid);
    } else {
        cJSON_AddStringToObject(o, "InstallationId", "all");
    }
    cJSON_AddNumberToObject(o, "Percent", ro->percent);
    cJSON_AddNumberToObject(o, "DelayMaxS", ro->delay_max_s);
    cJSON_AddStringToObject(o, "State", ro->stopped ? "stopped" : "active");
    cJSON_AddNumberToObject(o, "Created", (double)ro->created_s * 1000);
    size_t n_all = 0, n_sel = 0;
    struct cand *v = m ? selection(f, ro, m, &n_all, &n_sel) : NULL;
    cJSON_AddNumberToObject(o, "Candidates", (double)n_all);
    cJSON_AddNumberToObject(o, "Selected", (double)n_sel);
    cJSON *arr = cJSON_AddArrayToObject(o, "Chargers");
    int counts[6] = {0};
    static const char *const names[6] = {"pending", "sent",    "accepted",
                                         "refused", "updated", "failed"};
    for (size_t i = 0; i < f->n_rc; i++) {
        const struct fw_rc *r = &f->rc[i];
        if (r->rollout_id != ro->id)
            continue;
        cJSON *c = cJSON_CreateObject();
        portal_id_format(PORTAL_ID_CHARGER, r->charger_id, sid);
        cJSON_AddStringToObject(c, "ChargerId", sid);
        struct lade_store_charger sc;
        if (lade_store_charger_get(portal_store(f->p), r->charger_id, &sc) == LADE_OK)
            cJSON_AddStringToObject(c, "DeviceId", sc.device_id);
        cJSON_AddStringToObject(c, "Status", r->status);
        cJSON_AddStringToObject(c, "Reason", r->reason);
        cJSON_AddNumberToObject(c, "Updated", (double)r->updated_s * 1000);
        cJSON_AddBoolToObject(c, "Online", portal_charger_online(f->p, r->charger_id));
        const struct portal_fw_report *rep = portal_fw_report_get(f, r->charger_id);
        cJSON *fw = cJSON_AddObjectToObject(c, "Firmware");
        if (rep)
            portal_fw_report_add(fw, rep);
        cJSON_AddItemToArray(arr, c);
        for (int k = 0; k < 6; k++)
            if (!strcmp(r->status, names[k]))
                counts[k]++;
    }
    cJSON *cnt = cJSON_AddObjectToObject(o, "Counts");
    for (int k = 0; k < 6; k++)
        cJSON_AddNumberToObject(cnt, names[k], counts[k]);
    free(v);
    return o;
}

void portal_fw_report_add(cJSON *o, const struct portal_fw_report *r)
{
    cJSON_AddStringToObject(o, "Version", r->version);
    cJSON_AddStringToObject(o, "HardwareId", r->hardware);
    cJSON_AddStringToObject(o, "State", r->state);
    cJSON_AddStringToObject(o, "Boot", r->boot);
    cJSON_AddStringToObject(o, "Target", r->target);
    if (r->progress >= 0)
        cJSON_AddNumberToObject(o, "Progress", r->progress);
    else
        cJSON_AddNullToObject(o, "Progress");
    cJSON_AddBoolToObject(o, "RestartDeferred", r->restart_deferred);
    cJSON_AddStringToObject(o, "LastError", r->last_error);
}
