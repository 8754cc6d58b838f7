/* The Linux shell of the A/B slots (include/lade/fwslot.h, docs/firmware.md "Slots and boot
 * state"): two slot files or block devices and two copies of the boot-state record. All
 * decisions are in the pure machine (src/proto/fwslot); this file moves bytes and makes them
 * durable in the order that keeps every crash point safe:
 *
 *   - the record is saved BEFORE the action it permits (slot bytes are written only after the
 *     record says WRITING; a trial is started only after its try was counted);
 *   - a save overwrites the record copy with the lower sequence in place (write, fsync, and
 *     fsync the directory when the copy was created), so the other copy — the previous state —
 *     stays intact whatever happens to this write (U-Boot's redundant environment does the
 *     same);
 *   - slot data is fsynced and read back (page cache dropped first) before the record may say
 *     WRITTEN.
 *
 * A restart of lade-charger stands in for a reboot: open() runs the boot decision. */
#include "lade/fwslot.h"
#include "lade/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "lade/log.h"

#define MOD        "fwslot"
#define READ_CHUNK (64 * 1024)

struct lade_fwslot_file {
    char rec_path[2][PATH_MAX];
    char slot_path[LADE_FWSLOT_COUNT][PATH_MAX];
    lade_fwslot_fault_fn fault;
    void *fault_ud;
    struct lade_fwslot fs;
    int next_copy;
    int copies_valid;
    bool recovered;
    enum lade_fwslot_boot_kind boot;
    int wfd;   /* slot open for writing, or -1 */
    int wslot; /* its index, or -1 */
    char last_error[160];
};

/* ---- helpers ---- */

static bool fault(struct lade_fwslot_file *f, const char *point)
{
    return f->fault && f->fault(f->fault_ud, point);
}

__attribute__((format(printf, 3, 4))) static lade_err fail(struct lade_fwslot_file *f, lade_err err,
                                                           const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->last_error, sizeof f->last_error, fmt, ap);
    va_end(ap);
    LOG_E(MOD, "%s", f->last_error);
    return err;
}

static bool pwrite_all(int fd, const void *buf, size_t n, uint64_t off)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return true;
}

/* A write that the test hook may tear: half of it reaches the file, then the hook is called
 * again at "<point>.torn" (where a test kills the process). */
static bool write_at(struct lade_fwslot_file *f, int fd, const void *buf, size_t n, uint64_t off,
                     const char *point)
{
    if (fault(f, point)) {
        char torn[64];
        (void)pwrite_all(fd, buf, n / 2, off);
        snprintf(torn, sizeof torn, "%s.torn", point);
        (void)fault(f, torn);
    }
    return pwrite_all(fd, buf, n, off);
}

/* Makes a created entry durable (lade_file_sync_dir: best effort, as some file systems refuse
 * fsync on a directory). */
static void sync_dir_of(struct lade_fwslot_file *f, const char *path, const char *point)
{
    (void)fault(f, point);
    lade_file_sync_dir(path);
}

/* Reads a whole record copy (at most cap bytes). *n = 0 and false when it does not exist. */
static bool read_copy(const char *path, uint8_t *buf, size_t cap, size_t *n, bool *exists)
{
    *n = 0;
    *exists = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    *exists = true;
    while (*n < cap) {
        ssize_t r = read(fd, buf + *n, cap - *n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        *n += (size_t)r;
    }
    close(fd);
    return true;
}

/* ---- the record ---- */

/* Writes rec (with the next sequence) over the older copy. On failure nothing in memory
 * changes; on disk, the copy written may be torn but the other copy is intact. */
static lade_err save(struct lade_fwslot_file *f, const struct lade_fwslot *rec)
{
    struct lade_fwslot r = *rec;
    uint8_t buf[LADE_FWSLOT_RECORD_LEN];
    size_t len = 0;
    r.seq = f->fs.seq + 1;
    lade_err err = lade_fwslot_encode(&r, buf, sizeof buf, &len);
    if (err != LADE_OK)
        return fail(f, err, "boot state: cannot encode the record (%s)", lade_strerror(err));
    const char *path = f->rec_path[f->next_copy];
    bool created = false;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        (void)fault(f, "record.create");
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        created = true;
    }
    if (fd < 0)
        return fail(f, LADE_ERR_IO, "boot state: open %s: %s", path, strerror(errno));
    struct stat st;
    bool ok = write_at(f, fd, buf, len, 0, "record.write");
    /* A copy left longer by something else would never decode again. */
    if (ok && fstat(fd, &st) == 0 && st.st_size != (off_t)len)
        ok = ftruncate(fd, (off_t)len) == 0;
    if (ok) {
        (void)fault(f, "record.fsync");
        ok = fsync(fd) == 0;
    }
    int e = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        e = errno;
    }
    if (!ok)
        return fail(f, LADE_ERR_IO, "boot state: write %s: %s", path, strerror(e));
    if (created)
        sync_dir_of(f, path, "record.dirsync");
    LOG_D(MOD, "boot state seq %llu saved to copy %d", (unsigned long long)r.seq, f->next_copy);
    f->fs = r;
    f->next_copy ^= 1;
    return LADE_OK;
}

/* Runs a pure transition on a copy; saves it when it changed. Memory follows disk: a failed
 * save leaves the record as it was. */
static lade_err commit(struct lade_fwslot_file *f, const struct lade_fwslot *rec,
                       const struct lade_fwslot_res *res)
{
    if (!res->changed) {
        f->fs = *rec;
        return LADE_OK;
    }
    return save(f, rec);
}

/* ---- slot data ---- */

/* SHA-256 of the first `length` bytes of a slot, read from storage (not from the page cache:
 * the data was fsynced, so dropping the cache is safe and the read-back means something). */
static lade_err hash_slot(struct lade_fwslot_file *f, int slot, uint64_t length,
                          uint8_t out[LADE_FWSLOT_SHA256_LEN])
{
    const char *path = f->slot_path[slot];
    lade_err err = LADE_OK;
    EVP_MD_CTX *md = NULL;
    uint8_t *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(f, LADE_ERR_IO, "slot %s: open %s: %s", lade_fwslot_name(slot), path,
                    strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        err = fail(f, LADE_ERR_IO, "slot %s: stat: %s", lade_fwslot_name(slot), strerror(errno));
        goto out;
    }
    /* A regular file holds exactly the image; a block device at least as much. */
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size != length) {
        err = fail(f, LADE_ERR_INVAL, "slot %s: %llu bytes, the image has %llu",
                   lade_fwslot_name(slot), (unsigned long long)st.st_size,
                   (unsigned long long)length);
        goto out;
    }
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    buf = malloc(READ_CHUNK);
    md = EVP_MD_CTX_new();
    if (!buf || !md) {
        err = LADE_ERR_NOMEM;
        goto out;
    }
    if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
        err = LADE_ERR_CRYPTO;
        goto out;
    }
    uint64_t done = 0;
    while (done < length) {
        size_t want = length - done < READ_CHUNK ? (size_t)(length - done) : READ_CHUNK;
        ssize_t r = pread(fd, buf, want, (off_t)done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            err = fail(f, r < 0 ? LADE_ERR_IO : LADE_ERR_INVAL, "slot %s: read at %llu: %s",
                       lade_fwslot_name(slot), (unsigned long long)done,
                       r < 0 ? strerror(errno) : "short");
            goto out;
        }
        if (EVP_DigestUpdate(md, buf, (size_t)r) != 1) {
            err = LADE_ERR_CRYPTO;
            goto out;
        }
        done += (uint64_t)r;
    }
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(md, out, &n) != 1 || n != LADE_FWSLOT_SHA256_LEN)
        err = LADE_ERR_CRYPTO;
out:
    EVP_MD_CTX_free(md);
    free(buf);
    close(fd);
    return err;
}

static void close_write(struct lade_fwslot_file *f)
{
    if (f->wfd >= 0)
        close(f->wfd);
    f->wfd = -1;
    f->wslot = -1;
}

/* ---- API ---- */

static bool path_join(char *out, const char *dir, const char *name)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", dir, name);
    return n > 0 && n < PATH_MAX;
}

lade_err lade_fwslot_file_open(const struct lade_fwslot_file_cfg *cfg,
                               struct lade_fwslot_file **out)
{
    if (!out)
        return LADE_ERR_INVAL;
    *out = NULL;
    if (!cfg || !cfg->dir || !*cfg->dir || !cfg->factory_version)
        return LADE_ERR_INVAL;
    struct lade_fwslot_file *f = calloc(1, sizeof *f);
    if (!f)
        return LADE_ERR_NOMEM;
    lade_err err = LADE_OK;
    f->wfd = f->wslot = -1;
    f->fault = cfg->fault;
    f->fault_ud = cfg->fault_ud;
    static const char *const names[LADE_FWSLOT_COUNT] = {"slot-a.img", "slot-b.img"};
    bool ok = path_join(f->rec_path[0], cfg->dir, "bootstate.0") &&
              path_join(f->rec_path[1], cfg->dir, "bootstate.1");
    for (int i = 0; i < LADE_FWSLOT_COUNT && ok; i++) {
        if (cfg->slot_path[i] && *cfg->slot_path[i])
            ok = snprintf(f->slot_path[i], PATH_MAX, "%s", cfg->slot_path[i]) < PATH_MAX;
        else
            ok = path_join(f->slot_path[i], cfg->dir, names[i]);
    }
    if (!ok) {
        err = LADE_ERR_INVAL;
        goto out;
    }

    /* Load: the valid copy with the higher sequence. */
    uint8_t c[2][LADE_FWSLOT_RECORD_LEN + 64];
    size_t n[2];
    bool exists[2];
    bool got[2];
    for (int i = 0; i < 2; i++)
        got[i] = read_copy(f->rec_path[i], c[i], sizeof c[i], &n[i], &exists[i]);
    struct lade_fwslot rec;
    int used = -1;
    err = lade_fwslot_decode2(got[0] ? c[0] : NULL, n[0], got[1] ? c[1] : NULL, n[1], &rec, &used,
                              &f->next_copy, &f->copies_valid);
    bool fresh = false;
    if (err == LADE_ERR_CONFIG) {
        LOG_E(MOD, "boot state in %s: written in a newer format than this firmware knows",
              cfg->dir);
        goto out;
    }
    if (err == LADE_ERR_NOT_FOUND) {
        /* First start (no copy), or a crash while the very first copy was being created:
         * nothing has happened yet that the record could have protected. Both copies present
         * and invalid cannot come from our saves (one copy at a time): that is damage. */
        f->recovered = exists[0] && exists[1];
        if (f->recovered)
            LOG_E(MOD, "boot state in %s: neither copy is valid; factory defaults (slot a)",
                  cfg->dir);
        err = lade_fwslot_init(&rec, cfg->factory_version, cfg->factory_counter);
        if (err != LADE_OK)
            goto out;
        f->fs = rec;
        f->fs.seq = 0;
        fresh = true;
    } else if (err != LADE_OK) {
        goto out;
    } else {
        f->fs = rec;
        if (f->copies_valid < 2)
            LOG_W(MOD, "boot state: copy %d invalid (torn write?); using copy %d, seq %llu",
                  used ^ 1, used, (unsigned long long)rec.seq);
    }

    /* The boot decision; a trial image is checked before its try (a slot corrupted at rest
     * must not be started). */
    struct lade_fwslot_res res;
    lade_fwslot_boot(&rec, &res);
    if (res.boot == LADE_FWSLOT_BOOT_TRIAL) {
        uint8_t h[LADE_FWSLOT_SHA256_LEN];
        const struct lade_fwslot_image *img = &rec.slot[res.slot].img;
        lade_err herr = hash_slot(f, res.slot, img->length, h);
        if (herr == LADE_ERR_NOMEM || herr == LADE_ERR_CRYPTO) {
            err = herr;
            goto out;
        }
        if (herr != LADE_OK || memcmp(h, img->sha256, sizeof h) != 0) {
            LOG_E(MOD, "slot %s: image %s does not match its hash: not tried",
                  lade_fwslot_name(res.slot), img->version);
            struct lade_fwslot_res rb;
            if (lade_fwslot_rollback(&rec, LADE_FWSLOT_WHY_VERIFY, &rb) == LADE_OK) {
                lade_fwslot_boot(&rec, &res);
                if (res.boot == LADE_FWSLOT_BOOT_GOOD)
                    res.boot = LADE_FWSLOT_BOOT_FALLBACK;
            }
            res.changed = true;
        }
    }
    f->boot = res.boot;
    if (res.changed || fresh) {
        err = save(f, &rec);
        if (err != LADE_OK)
            goto out;
    } else {
        f->fs = rec;
    }
    LOG_I(MOD, "booted slot %s (%s: %s), next boot %s, anti-rollback counter %llu",
          lade_fwslot_name(f->fs.booted), f->fs.slot[f->fs.booted].img.version,
          lade_fwslot_boot_kind_name(f->boot), lade_fwslot_name(f->fs.primary),
          (unsigned long long)f->fs.counter);
    f->last_error[0] = '\0';
    *out = f;
    return LADE_OK;
out:
    free(f);
    return err;
}

void lade_fwslot_file_close(struct lade_fwslot_file *f)
{
    if (!f)
        return;
    close_write(f);
    free(f);
}

lade_err lade_fwslot_file_begin(struct lade_fwslot_file *f, const struct lade_fwslot_image *img,
                                bool retry_rejected, int *slot, uint64_t *resume_max)
{
    if (!f || !img)
        return LADE_ERR_INVAL;
    close_write(f);
    struct lade_fwslot rec = f->fs;
    struct lade_fwslot_res res;
    lade_err err = lade_fwslot_begin_write(&rec, img, retry_rejected, &res);
    if (err != LADE_OK)
        return fail(f, err, "begin write: %s", res.why);
    /* The record first: from here on a crash leaves a slot the record calls WRITING. */
    if ((err = commit(f, &rec, &res)) != LADE_OK)
        return err;
    const char *path = f->slot_path[res.slot];
    struct stat st;
    bool existed = stat(path, &st) == 0;
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC;
    if (!res.resume && (!existed || S_ISREG(st.st_mode)))
        flags |= O_TRUNC;
    (void)fault(f, "slot.open");
    int fd = open(path, flags, 0644);
    if (fd < 0)
        return fail(f, LADE_ERR_IO, "slot %s: open %s: %s", lade_fwslot_name(res.slot), path,
                    strerror(errno));
    if (!existed)
        sync_dir_of(f, path, "slot.dirsync");
    f->wfd = fd;
    f->wslot = res.slot;
    if (slot)
        *slot = res.slot;
    if (resume_max) {
        /* What may be kept: a regular file's size (its tail may be unsynced garbage — the
         * caller's own synced offset is the real bound); a device's bytes are all "there". */
        *resume_max = 0;
        if (res.resume && fstat(fd, &st) == 0)
            *resume_max =
                S_ISREG(st.st_mode) ? (uint64_t)st.st_size : f->fs.slot[res.slot].img.length;
        if (*resume_max > f->fs.slot[res.slot].img.length)
            *resume_max = f->fs.slot[res.slot].img.length;
    }
    return LADE_OK;
}

lade_err lade_fwslot_file_write(struct lade_fwslot_file *f, uint64_t offset, const void *buf,
                                size_t n)
{
    if (!f || (!buf && n))
        return LADE_ERR_INVAL;
    if (f->wfd < 0)
        return fail(f, LADE_ERR_STATE, "write: no slot is being written");
    uint64_t len = f->fs.slot[f->wslot].img.length;
    if (offset > len || n > len - offset)
        return fail(f, LADE_ERR_TOO_BIG, "write: %llu bytes at %llu past the image's %llu",
                    (unsigned long long)n, (unsigned long long)offset, (unsigned long long)len);
    if (n && !write_at(f, f->wfd, buf, n, offset, "slot.write"))
        return fail(f, LADE_ERR_IO, "slot %s: write: %s", lade_fwslot_name(f->wslot),
                    strerror(errno));
    return LADE_OK;
}

lade_err lade_fwslot_file_sync(struct lade_fwslot_file *f)
{
    if (!f)
        return LADE_ERR_INVAL;
    if (f->wfd < 0)
        return fail(f, LADE_ERR_STATE, "sync: no slot is being written");
    (void)fault(f, "slot.fsync");
    if (fdatasync(f->wfd) != 0)
        return fail(f, LADE_ERR_IO, "slot %s: fdatasync: %s", lade_fwslot_name(f->wslot),
                    strerror(errno));
    return LADE_OK;
}

lade_err lade_fwslot_file_finish(struct lade_fwslot_file *f)
{
    if (!f)
        return LADE_ERR_INVAL;
    if (f->wfd < 0)
        return fail(f, LADE_ERR_STATE, "finish: no slot is being written");
    int slot = f->wslot;
    (void)fault(f, "slot.fsync");
    bool synced = fsync(f->wfd) == 0;
    int e = errno;
    close_write(f);
    if (!synced)
        return fail(f, LADE_ERR_IO, "slot %s: fsync: %s", lade_fwslot_name(slot), strerror(e));
    const struct lade_fwslot_image *img = &f->fs.slot[slot].img;
    uint8_t h[LADE_FWSLOT_SHA256_LEN];
    lade_err herr = hash_slot(f, slot, img->length, h);
    if (herr == LADE_ERR_IO || herr == LADE_ERR_NOMEM || herr == LADE_ERR_CRYPTO)
        return herr;
    /* A wrong size counts as a mismatch: the slot's bytes are not the image. */
    struct lade_fwslot rec = f->fs;
    struct lade_fwslot_res res;
    static const uint8_t zero[LADE_FWSLOT_SHA256_LEN];
    lade_err err = lade_fwslot_written(&rec, slot, herr == LADE_OK ? img->length : 0,
                                       herr == LADE_OK ? h : zero, &res);
    lade_err serr = commit(f, &rec, &res);
    if (err != LADE_OK && herr != LADE_OK)
        return herr; /* hash_slot said what was wrong (size, short read) */
    if (err != LADE_OK)
        return fail(f, err, "slot %s: %s", lade_fwslot_name(slot), res.why);
    return serr;
}

static lade_err transition_done(struct lade_fwslot_file *f, lade_err err, struct lade_fwslot *rec,
                                const struct lade_fwslot_res *res, const char *what)
{
    if (err != LADE_OK)
        return fail(f, err, "%s: %s", what, res->why);
    return commit(f, rec, res);
}

lade_err lade_fwslot_file_switch(struct lade_fwslot_file *f)
{
    if (!f)
        return LADE_ERR_INVAL;
    struct lade_fwslot rec = f->fs;
    struct lade_fwslot_res res;
    lade_err err = lade_fwslot_switch(&rec, rec.booted ^ 1, &res);
    return transition_done(f, err, &rec, &res, "switch");
}

lade_err lade_fwslot_file_mark_good(struct lade_fwslot_file *f)
{
    if (!f)
        return LADE_ERR_INVAL;
    struct lade_fwslot rec = f->fs;
    struct lade_fwslot_res res;
    lade_err err = lade_fwslot_mark_good(&rec, rec.booted, &res);
    return transition_done(f, err, &rec, &res, "mark good");
}

lade_err lade_fwslot_file_rollback(struct lade_fwslot_file *f, enum lade_fwslot_why why)
{
    if (!f)
        return LADE_ERR_INVAL;
    struct lade_fwslot rec = f->fs;
    struct lade_fwslot_res res;
    lade_err err = lade_fwslot_rollback(&rec, why, &res);
    return transition_done(f, err, &rec, &res, "rollback");
}

void lade_fwslot_file_status(const struct lade_fwslot_file *f, struct lade_fwslot_status *st)
{
    if (!st)
        return;
    memset(st, 0, sizeof *st);
    st->running = st->next_boot = st->writing = -1;
    if (!f)
        return;
    const struct lade_fwslot *fs = &f->fs;
    st->running = fs->booted;
    st->next_boot = fs->primary;
    st->boot = f->boot;
    st->trial = fs->slot[fs->booted].state == LADE_FWSLOT_TRIAL;
    st->tries = fs->tries;
    st->counter = fs->counter;
    st->seq = fs->seq;
    memcpy(st->slot, fs->slot, sizeof st->slot);
    st->rejected = fs->rejected;
    st->rejected_why = fs->rejected_why;
    st->rollbacks = fs->rollbacks;
    st->copies_valid = f->copies_valid;
    st->recovered = f->recovered;
    st->writing = f->wslot;
    snprintf(st->last_error, sizeof st->last_error, "%s", f->last_error);
}

const char *lade_fwslot_file_slot_path(const struct lade_fwslot_file *f, int slot)
{
    if (!f || (slot != LADE_FWSLOT_A && slot != LADE_FWSLOT_B))
        return NULL;
    return f->slot_path[slot];
}
