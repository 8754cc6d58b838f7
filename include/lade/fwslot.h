/* lade — A/B firmware slots and the boot-state machine (issue 6 "Install", SPEC R9/U4;
 * docs/firmware.md "Slots and boot state").
 *
 * Two parts:
 *
 *   1. A pure machine over the boot-state record (no I/O, no clock, no malloc): which slot the
 *      boot loader boots, the state of each slot, the try counter of a trial slot and the
 *      device's anti-rollback counter. The transitions are what an updater and a boot loader do:
 *
 *          EMPTY/BAD/WRITTEN ──begin_write──► WRITING ──written(hash ok)──► WRITTEN
 *          WRITTEN ──switch──► TRIAL (tries 1, next boot)
 *          TRIAL ──boot──► TRIAL (tries 0, running)  ──mark_good──► GOOD (counter raised)
 *          TRIAL (tries 0) ──boot──► BAD, the good slot boots       (never confirmed)
 *          TRIAL (running) ──rollback──► BAD, the good slot boots next
 *
 *      Every transition returns what changed; a caller that acts on it (writes slot bytes,
 *      starts the slot) saves the record first.
 *
 *   2. A codec for the record (fixed length, little-endian, format version, CRC-32) kept in two
 *      copies with sequence numbers: a save overwrites the copy with the lower sequence, so a
 *      torn write of one copy leaves the other, previous, record intact.
 *
 * And a Linux port (src/port/linux/fwslot_file.c, the end of this header): slots are two files
 * or block devices, the record copies are <dir>/bootstate.0 and <dir>/bootstate.1, and opening
 * the port is the "boot": it runs the boot decision (a restart of lade-charger stands in for a
 * reboot) and saves its result before it returns.
 */
#ifndef LADE_FWSLOT_H
#define LADE_FWSLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"

#define LADE_FWSLOT_A           0
#define LADE_FWSLOT_B           1
#define LADE_FWSLOT_COUNT       2
#define LADE_FWSLOT_VERSION_MAX 64 /* printable ASCII, no spaces (a manifest's: 1..64) */
#define LADE_FWSLOT_SHA256_LEN  32
#define LADE_FWSLOT_TRIES       1 /* try once: a trial that is not confirmed falls back */
#define LADE_FWSLOT_TRIES_MAX   3 /* the most a decoded record may hold */
#define LADE_FWSLOT_FORMAT      1 /* record format version */
#define LADE_FWSLOT_RECORD_LEN  387

const char *lade_fwslot_name(int slot); /* "a", "b", "none" */

enum lade_fwslot_state {
    LADE_FWSLOT_EMPTY = 0,   /* nothing known to be in it */
    LADE_FWSLOT_WRITING = 1, /* an image is being written; its bytes are not to be trusted */
    LADE_FWSLOT_WRITTEN = 2, /* written and read back: the hash matched */
    LADE_FWSLOT_TRIAL = 3,   /* boots next (tries > 0) or is running on its one try */
    LADE_FWSLOT_GOOD = 4,    /* confirmed: self-test passed and the hub was reached */
    LADE_FWSLOT_BAD = 5,     /* failed its trial (or was rolled back); never booted again */
};
const char *lade_fwslot_state_name(enum lade_fwslot_state s);

/* Why a trial was abandoned (stable values: stored in the record). */
enum lade_fwslot_why {
    LADE_FWSLOT_WHY_NONE = 0,
    LADE_FWSLOT_WHY_NOT_CONFIRMED = 1, /* booted once, never marked good: the boot loader fell
                                          back (crash, hang, power loss, watchdog reset) */
    LADE_FWSLOT_WHY_SELFTEST = 2,      /* the new firmware's self-test failed */
    LADE_FWSLOT_WHY_HUB = 3,           /* the new firmware did not reach the hub in time */
    LADE_FWSLOT_WHY_VERIFY = 4,        /* the trial image no longer matched its hash at boot */
    LADE_FWSLOT_WHY_OPERATOR = 5,      /* asked for by an operator */
    LADE_FWSLOT_WHY__COUNT
};
const char *lade_fwslot_why_name(enum lade_fwslot_why w);

/* An image as the manifest describes it. */
struct lade_fwslot_image {
    char version[LADE_FWSLOT_VERSION_MAX + 1]; /* NUL-terminated */
    uint64_t security_counter;                 /* anti-rollback counter of this image */
    uint64_t length;                           /* bytes; 0 only for the factory image */
    uint8_t sha256[LADE_FWSLOT_SHA256_LEN];    /* all zero: unknown (factory image) */
};

struct lade_fwslot_slot {
    enum lade_fwslot_state state;
    struct lade_fwslot_image img; /* meaningful unless EMPTY */
};

/* The boot-state record. Plain data: callers may read every field; only the functions below
 * change it. Invariants kept by the transitions (a decoded record is checked only for ranges;
 * the boot decision copes with any combination):
 *   - at most one slot is TRIAL, and then it is `primary`;
 *   - a slot is written only when it is neither booted nor the only usable good slot;
 *   - `counter` only grows, and only in mark_good. */
struct lade_fwslot {
    uint64_t seq;       /* sequence number of the saved record; the higher copy wins */
    uint8_t primary;    /* the slot the boot loader boots next */
    uint8_t booted;     /* the slot the last boot decision started (running now) */
    uint8_t last_good;  /* the slot most recently marked good (the last resort) */
    uint8_t tries;      /* boots left for a TRIAL primary */
    uint64_t counter;   /* the device's anti-rollback counter */
    uint32_t rollbacks; /* trials abandoned, over the device's life */
    struct lade_fwslot_slot slot[LADE_FWSLOT_COUNT];
    struct lade_fwslot_image rejected; /* the image last abandoned (rejected_why != NONE) */
    enum lade_fwslot_why rejected_why;
};

/* How a boot decision chose the slot it boots. */
enum lade_fwslot_boot_kind {
    LADE_FWSLOT_BOOT_GOOD = 0,        /* the primary, a good slot */
    LADE_FWSLOT_BOOT_TRIAL = 1,       /* the primary on trial: one try used */
    LADE_FWSLOT_BOOT_FALLBACK = 2,    /* the trial had no tries left: marked bad, good slot */
    LADE_FWSLOT_BOOT_OTHER = 3,       /* the primary was not bootable; the other, good, slot */
    LADE_FWSLOT_BOOT_LAST_RESORT = 4, /* neither slot bootable: the one last marked good */
};
const char *lade_fwslot_boot_kind_name(enum lade_fwslot_boot_kind k);

/* What a transition did. */
struct lade_fwslot_res {
    int slot;     /* the slot acted on (boot: the slot to start) */
    bool changed; /* the record changed: save it before acting on the result */
    bool resume;  /* begin_write: the same image was being written; its bytes stay */
    enum lade_fwslot_boot_kind boot; /* boot only */
    const char *why;                 /* static text: why refused, or what was done; never NULL */
};

/* A fresh record for a device whose slot A holds the factory image (GOOD, booted, primary,
 * last good; B empty); `counter` is the device's counter (the factory image's). INVAL for a
 * version that is empty, too long or not printable ASCII without spaces. */
lade_err lade_fwslot_init(struct lade_fwslot *fs, const char *factory_version,
                          uint64_t factory_counter) LADE_MUST_CHECK;

/* The boot decision (what a boot loader does, before starting anything):
 *   - primary TRIAL with tries left → decrement, boot it (TRIAL);
 *   - primary GOOD → boot it (GOOD);
 *   - otherwise the other slot if it is GOOD (FALLBACK when the primary was an exhausted trial:
 *     it becomes BAD with why NOT_CONFIRMED — one try, never retried; else OTHER);
 *   - neither bootable → the slot last marked good, whatever its state (LAST_RESORT). Never
 *     "no slot".
 * A slot whose security counter is below the device's counter is not bootable (anti-rollback,
 * as MCUboot). Any TRIAL slot not chosen becomes BAD. The decision is saved (changed) before
 * the slot is started: a power loss during the trial then finds tries at 0. */
void lade_fwslot_boot(struct lade_fwslot *fs, struct lade_fwslot_res *res);

/* Whether a slot could be booted: GOOD (or TRIAL with tries left) at or above the counter. */
bool lade_fwslot_bootable(const struct lade_fwslot *fs, int slot);

/* Starts writing `img` into the slot that is not running (res->slot). Refused:
 *   INVAL  image malformed (empty or bad version, length 0);
 *   STATE  security counter below the device's counter (downgrade; as fwmanifest);
 *   STATE  the target slot is the only bootable good slot and the running one is not good
 *          (a trial not yet confirmed, or a last-resort boot): it is the fallback;
 *   STATE  the image is the one last abandoned (same SHA-256), unless retry_rejected.
 * The same image already WRITING: res->resume, no change (the caller keeps its bytes and its
 * own persisted offset). Otherwise the slot becomes WRITING, and a switch pending to it is
 * cancelled (primary back to the running slot) — saved before any byte is written. */
lade_err lade_fwslot_begin_write(struct lade_fwslot *fs, const struct lade_fwslot_image *img,
                                 bool retry_rejected, struct lade_fwslot_res *res) LADE_MUST_CHECK;

/* The slot was written and read back: `sha256` is the hash of its first `length` bytes.
 * Match → WRITTEN. Mismatch → AUTH (as fwmanifest's image check), and the slot becomes EMPTY (its
 * bytes are unknown: a new begin_write starts from offset 0). STATE unless the slot is WRITING and
 * not booted. */
lade_err lade_fwslot_written(struct lade_fwslot *fs, int slot, uint64_t length,
                             const uint8_t sha256[LADE_FWSLOT_SHA256_LEN],
                             struct lade_fwslot_res *res) LADE_MUST_CHECK;

/* Try once: the WRITTEN slot becomes TRIAL with LADE_FWSLOT_TRIES, primary. STATE unless the
 * slot is WRITTEN and not booted and the running slot is bootable and GOOD (the fallback);
 * STATE also for a security counter below the device's. Takes effect at the next boot. */
lade_err lade_fwslot_switch(struct lade_fwslot *fs, int slot,
                            struct lade_fwslot_res *res) LADE_MUST_CHECK;

/* The running trial proved itself (self-test passed, hub reached): GOOD, last good, and the
 * device's counter raised to the slot's. Only for the booted slot on trial (STATE otherwise);
 * the booted slot already GOOD: LADE_OK, no change (idempotent, like `rauc status mark-good`). */
lade_err lade_fwslot_mark_good(struct lade_fwslot *fs, int slot,
                               struct lade_fwslot_res *res) LADE_MUST_CHECK;

/* Abandon the running trial (self-test failed, hub not reached within the updater's deadline,
 * image corrupt): BAD, remembered as rejected with `why`, and primary back to the good slot
 * (res->slot: the slot the next boot starts — the caller restarts). STATE unless the booted
 * slot is on trial; INVAL for why NONE or out of range. */
lade_err lade_fwslot_rollback(struct lade_fwslot *fs, enum lade_fwslot_why why,
                              struct lade_fwslot_res *res) LADE_MUST_CHECK;

/* ---- codec ---- */

/* Serializes the record (LADE_FWSLOT_RECORD_LEN bytes). NOSPACE if cap is smaller; INVAL for
 * a record out of range (what decode would refuse). */
lade_err lade_fwslot_encode(const struct lade_fwslot *fs, uint8_t *buf, size_t cap,
                            size_t *len) LADE_MUST_CHECK;

/* Parses one copy. INVAL: wrong length, magic, checksum or a field out of range (a torn or
 * foreign copy); CONFIG: a format version newer than this code knows. */
lade_err lade_fwslot_decode(const uint8_t *buf, size_t len, struct lade_fwslot *fs) LADE_MUST_CHECK;

/* Picks the record from the two copies (either may be NULL/0 when missing): the valid one with
 * the higher sequence. *used is the copy taken, *next the copy the next save overwrites (the
 * other one: the older or the invalid copy), *valid how many copies decoded. NOT_FOUND when
 * neither is valid (*next = 0, *used = -1); CONFIG when a copy is in a newer format (a newer
 * updater wrote it: its state may be the current one, so no guess from the other copy). */
lade_err lade_fwslot_decode2(const uint8_t *c0, size_t n0, const uint8_t *c1, size_t n1,
                             struct lade_fwslot *fs, int *used, int *next,
                             int *valid) LADE_MUST_CHECK;

/* CRC-32 (IEEE 802.3, reflected, as zlib and U-Boot's environment). */
uint32_t lade_fwslot_crc32(const void *buf, size_t len);

/* ---- Linux port (src/port/linux/fwslot_file.c) ---- */

struct lade_fwslot_file;

/* Test-only fault injection: called before each step that changes the disk (open with create
 * or truncate, write, fsync, directory fsync), named by `point` ("record.write", "slot.fsync",
 * ...). The test's hook may kill the process there (power loss at that step). Returning true
 * at a "*.write" point tears that write: half of it is written, then the hook is called again
 * with "<point>.torn". NULL in production. */
typedef bool (*lade_fwslot_fault_fn)(void *ud, const char *point);

struct lade_fwslot_file_cfg {
    const char *dir; /* bootstate.0/.1 (and slot-a.img/slot-b.img unless slot_path is set) */
    const char *slot_path[LADE_FWSLOT_COUNT]; /* optional: block devices or other files */
    const char *factory_version; /* the running build: used only when no record exists */
    uint64_t factory_counter;
    lade_fwslot_fault_fn fault; /* test only */
    void *fault_ud;
};

struct lade_fwslot_status {
    int running;                     /* booted slot */
    int next_boot;                   /* primary: what the next boot starts */
    enum lade_fwslot_boot_kind boot; /* how this boot chose the running slot */
    bool trial;                      /* running a trial: mark good or roll back */
    uint8_t tries;                   /* boots left for the primary, if on trial */
    uint64_t counter;                /* device anti-rollback counter */
    uint64_t seq;
    struct lade_fwslot_slot slot[LADE_FWSLOT_COUNT];
    struct lade_fwslot_image rejected;
    enum lade_fwslot_why rejected_why;
    uint32_t rollbacks;
    int copies_valid;     /* record copies valid at open (2 normally; 1 after a torn save) */
    bool recovered;       /* record files existed but neither was valid: factory defaults */
    int writing;          /* slot open for writing, or -1 */
    char last_error[160]; /* why the last call failed ("" if none since open) */
};

/* Loads the record (or makes one from the factory version on first start), runs the boot
 * decision and saves it before returning — the "boot". A trial slot is hashed before it is
 * tried; a mismatch abandons it (WHY_VERIFY). IO when the record cannot be saved (the state
 * dir must exist and be writable); CONFIG when a record copy is in a newer format; INVAL for a
 * bad cfg. One owner (the updater), not thread-safe; the cfg strings are copied. The running
 * firmware's version is status.slot[status.running].img.version. */
lade_err lade_fwslot_file_open(const struct lade_fwslot_file_cfg *cfg,
                               struct lade_fwslot_file **out) LADE_MUST_CHECK;
void lade_fwslot_file_close(struct lade_fwslot_file *f);

/* Starts writing img into the inactive slot (lade_fwslot_begin_write: refusals, resume); *slot
 * is the slot. Not a resume: the record (WRITING) is saved, then the slot file is created or
 * truncated; *resume_max = 0. A resume (the same image was being written): nothing changes;
 * *resume_max is how many bytes the slot holds (file size, at most the image length) — resume
 * from min(that, the offset the caller persisted after its last lade_fwslot_file_sync). */
lade_err lade_fwslot_file_begin(struct lade_fwslot_file *f, const struct lade_fwslot_image *img,
                                bool retry_rejected, int *slot,
                                uint64_t *resume_max) LADE_MUST_CHECK;
/* Writes n bytes at offset into the slot being written. TOO_BIG past the image's length
 * (endless data); STATE without a begin. */
lade_err lade_fwslot_file_write(struct lade_fwslot_file *f, uint64_t offset, const void *buf,
                                size_t n) LADE_MUST_CHECK;
/* Makes what was written durable (fdatasync); after it the caller may persist its offset. */
lade_err lade_fwslot_file_sync(struct lade_fwslot_file *f) LADE_MUST_CHECK;
/* Syncs, closes and reads the slot back: length and SHA-256 (OpenSSL EVP) must match the
 * image; then the record says WRITTEN (saved). AUTH on a hash mismatch, INVAL on a wrong size
 * or short read (the slot is EMPTY again either way). */
lade_err lade_fwslot_file_finish(struct lade_fwslot_file *f) LADE_MUST_CHECK;
/* Try-once switch to the WRITTEN inactive slot at the next boot (saved). */
lade_err lade_fwslot_file_switch(struct lade_fwslot_file *f) LADE_MUST_CHECK;
/* Marks the running trial good (saved); LADE_OK without change if it is already good. */
lade_err lade_fwslot_file_mark_good(struct lade_fwslot_file *f) LADE_MUST_CHECK;
/* Abandons the running trial (saved); the caller restarts to boot the good slot. */
lade_err lade_fwslot_file_rollback(struct lade_fwslot_file *f,
                                   enum lade_fwslot_why why) LADE_MUST_CHECK;
void lade_fwslot_file_status(const struct lade_fwslot_file *f, struct lade_fwslot_status *st);
/* The slot's path (for diagnostics and tests). */
const char *lade_fwslot_file_slot_path(const struct lade_fwslot_file *f, int slot);

#endif
