/* The boot-state machine of the A/B firmware slots (include/lade/fwslot.h, docs/firmware.md
 * "Slots and boot state"). Pure: no I/O, no clock; the caller saves the record whenever a
 * transition says it changed, and before it acts on the result (issue 6, "Install"). */
#include "lade/fwslot.h"

#include <stdio.h>
#include <string.h>

#include "lade/log.h"

#define MOD "fwslot"

const char *lade_fwslot_name(int slot)
{
    return slot == LADE_FWSLOT_A ? "a" : slot == LADE_FWSLOT_B ? "b" : "none";
}

const char *lade_fwslot_state_name(enum lade_fwslot_state s)
{
    switch (s) {
    case LADE_FWSLOT_EMPTY:
        return "empty";
    case LADE_FWSLOT_WRITING:
        return "writing";
    case LADE_FWSLOT_WRITTEN:
        return "written";
    case LADE_FWSLOT_TRIAL:
        return "trial";
    case LADE_FWSLOT_GOOD:
        return "good";
    case LADE_FWSLOT_BAD:
        return "bad";
    }
    return "?";
}

const char *lade_fwslot_why_name(enum lade_fwslot_why w)
{
    switch (w) {
    case LADE_FWSLOT_WHY_NONE:
        return "none";
    case LADE_FWSLOT_WHY_NOT_CONFIRMED:
        return "trial boot not confirmed";
    case LADE_FWSLOT_WHY_SELFTEST:
        return "self-test failed";
    case LADE_FWSLOT_WHY_HUB:
        return "hub not reached in time";
    case LADE_FWSLOT_WHY_VERIFY:
        return "image hash mismatch at boot";
    case LADE_FWSLOT_WHY_OPERATOR:
        return "operator";
    case LADE_FWSLOT_WHY__COUNT:
        break;
    }
    return "?";
}

const char *lade_fwslot_boot_kind_name(enum lade_fwslot_boot_kind k)
{
    switch (k) {
    case LADE_FWSLOT_BOOT_GOOD:
        return "good";
    case LADE_FWSLOT_BOOT_TRIAL:
        return "trial";
    case LADE_FWSLOT_BOOT_FALLBACK:
        return "fallback";
    case LADE_FWSLOT_BOOT_OTHER:
        return "other";
    case LADE_FWSLOT_BOOT_LAST_RESORT:
        return "last resort";
    }
    return "?";
}

static int other(int slot)
{
    return slot ^ 1;
}

static void res_init(struct lade_fwslot_res *res, int slot, const char *why)
{
    memset(res, 0, sizeof *res);
    res->slot = slot;
    res->why = why;
}

static lade_err refuse(struct lade_fwslot_res *res, lade_err err, const char *why)
{
    res->why = why;
    res->changed = false;
    LOG_W(MOD, "refused: %s", why);
    return err;
}

/* The one place a slot's state changes (DESIGN.md: one set_state per machine). */
static void set_state(struct lade_fwslot *fs, int slot, enum lade_fwslot_state to, const char *why,
                      struct lade_fwslot_res *res)
{
    struct lade_fwslot_slot *s = &fs->slot[slot];
    if (s->state == to)
        return;
    LOG_I(MOD, "slot %s: %s -> %s (%s; %s)", lade_fwslot_name(slot),
          lade_fwslot_state_name(s->state), lade_fwslot_state_name(to), why,
          s->img.version[0] ? s->img.version : "-");
    s->state = to;
    res->changed = true;
}

static void set_primary(struct lade_fwslot *fs, int slot, struct lade_fwslot_res *res)
{
    if (fs->primary == slot)
        return;
    LOG_I(MOD, "next boot: %s -> %s", lade_fwslot_name(fs->primary), lade_fwslot_name(slot));
    fs->primary = (uint8_t)slot;
    res->changed = true;
}

static void set_tries(struct lade_fwslot *fs, uint8_t tries, struct lade_fwslot_res *res)
{
    if (fs->tries == tries)
        return;
    fs->tries = tries;
    res->changed = true;
}

/* Printable ASCII without spaces, 1..LADE_FWSLOT_VERSION_MAX characters (it lands in logs,
 * diagnostics and the twin). */
static bool version_ok(const char *v)
{
    size_t n = strnlen(v, LADE_FWSLOT_VERSION_MAX + 1);
    if (n == 0 || n > LADE_FWSLOT_VERSION_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0x21 || v[i] > 0x7e)
            return false;
    return true;
}

lade_err lade_fwslot_init(struct lade_fwslot *fs, const char *factory_version,
                          uint64_t factory_counter)
{
    if (!fs || !factory_version || !version_ok(factory_version))
        return LADE_ERR_INVAL;
    memset(fs, 0, sizeof *fs);
    fs->primary = fs->booted = fs->last_good = LADE_FWSLOT_A;
    fs->counter = factory_counter;
    fs->slot[LADE_FWSLOT_A].state = LADE_FWSLOT_GOOD;
    snprintf(fs->slot[LADE_FWSLOT_A].img.version, sizeof fs->slot[0].img.version, "%s",
             factory_version);
    fs->slot[LADE_FWSLOT_A].img.security_counter = factory_counter;
    fs->slot[LADE_FWSLOT_B].state = LADE_FWSLOT_EMPTY;
    return LADE_OK;
}

static bool good_ok(const struct lade_fwslot *fs, int slot)
{
    const struct lade_fwslot_slot *s = &fs->slot[slot];
    return s->state == LADE_FWSLOT_GOOD && s->img.security_counter >= fs->counter;
}

static bool trial_ok(const struct lade_fwslot *fs, int slot)
{
    const struct lade_fwslot_slot *s = &fs->slot[slot];
    return s->state == LADE_FWSLOT_TRIAL && fs->tries > 0 && fs->primary == slot &&
           s->img.security_counter >= fs->counter;
}

bool lade_fwslot_bootable(const struct lade_fwslot *fs, int slot)
{
    if (!fs || (slot != LADE_FWSLOT_A && slot != LADE_FWSLOT_B))
        return false;
    return good_ok(fs, slot) || trial_ok(fs, slot);
}

/* A trial that is abandoned: BAD, remembered (the updater reports it and does not install the
 * same image again by itself — no endless rollback loop). */
static void abandon(struct lade_fwslot *fs, int slot, enum lade_fwslot_why why,
                    struct lade_fwslot_res *res)
{
    set_state(fs, slot, LADE_FWSLOT_BAD, lade_fwslot_why_name(why), res);
    fs->rejected = fs->slot[slot].img;
    fs->rejected_why = why;
    fs->rollbacks++;
    res->changed = true;
    LOG_W(MOD, "slot %s (%s) abandoned: %s", lade_fwslot_name(slot), fs->slot[slot].img.version,
          lade_fwslot_why_name(why));
}

void lade_fwslot_boot(struct lade_fwslot *fs, struct lade_fwslot_res *res)
{
    int p = fs->primary & 1, o = other(p);
    int pick;
    res_init(res, p, "");
    if (trial_ok(fs, p)) {
        /* U-Boot: bootcount < bootlimit; the count is saved before the kernel starts, so a
         * crash, hang or power loss during the trial finds no tries left. */
        set_tries(fs, (uint8_t)(fs->tries - 1), res);
        pick = p;
        res->boot = LADE_FWSLOT_BOOT_TRIAL;
        res->why = "trial boot";
    } else if (good_ok(fs, p)) {
        pick = p;
        res->boot = LADE_FWSLOT_BOOT_GOOD;
        res->why = "good slot";
    } else if (good_ok(fs, o)) {
        pick = o;
        if (fs->slot[p].state == LADE_FWSLOT_TRIAL) {
            /* U-Boot: bootcount > bootlimit → altbootcmd. One try, never retried. */
            abandon(fs, p, LADE_FWSLOT_WHY_NOT_CONFIRMED, res);
            res->boot = LADE_FWSLOT_BOOT_FALLBACK;
            res->why = "trial not confirmed: fell back to the good slot";
        } else {
            res->boot = LADE_FWSLOT_BOOT_OTHER;
            res->why = "next-boot slot not bootable: the other, good, slot";
        }
    } else {
        /* Both unusable (both bad, or below the counter, or a record that says nonsense): a
         * boot loader must still start something. The slot last marked good is the best bet;
         * the trial it may replace has had its try. */
        pick = fs->last_good & 1;
        res->boot = LADE_FWSLOT_BOOT_LAST_RESORT;
        res->why = "no bootable slot: the one last marked good";
        LOG_E(MOD, "no bootable slot (a: %s, b: %s): booting %s, last marked good",
              lade_fwslot_state_name(fs->slot[0].state), lade_fwslot_state_name(fs->slot[1].state),
              lade_fwslot_name(pick));
    }
    /* A trial not chosen had its chance (or the record is inconsistent): never boot it later. */
    if (fs->slot[other(pick)].state == LADE_FWSLOT_TRIAL)
        abandon(fs, other(pick), LADE_FWSLOT_WHY_NOT_CONFIRMED, res);
    if (res->boot != LADE_FWSLOT_BOOT_TRIAL)
        set_tries(fs, 0, res);
    set_primary(fs, pick, res);
    if (fs->booted != pick) {
        fs->booted = (uint8_t)pick;
        res->changed = true;
    }
    res->slot = pick;
    LOG_I(MOD, "boot: slot %s (%s, %s)", lade_fwslot_name(pick),
          fs->slot[pick].img.version[0] ? fs->slot[pick].img.version : "-", res->why);
}

static bool image_ok(const struct lade_fwslot_image *img)
{
    return version_ok(img->version) && img->length > 0;
}

static bool same_image(const struct lade_fwslot_image *a, const struct lade_fwslot_image *b)
{
    return a->length == b->length && a->security_counter == b->security_counter &&
           strcmp(a->version, b->version) == 0 &&
           memcmp(a->sha256, b->sha256, LADE_FWSLOT_SHA256_LEN) == 0;
}

lade_err lade_fwslot_begin_write(struct lade_fwslot *fs, const struct lade_fwslot_image *img,
                                 bool retry_rejected, struct lade_fwslot_res *res)
{
    if (!fs || !img || !res)
        return LADE_ERR_INVAL;
    int run = fs->booted & 1, t = other(run);
    res_init(res, t, "writing");
    if (!image_ok(img))
        return refuse(res, LADE_ERR_INVAL, "image version or length invalid");
    if (img->security_counter < fs->counter)
        return refuse(res, LADE_ERR_STATE,
                      "security counter below the device's anti-rollback counter (downgrade)");
    /* Never destroy the only image that is known to boot. */
    if (good_ok(fs, t) && !good_ok(fs, run))
        return refuse(res, LADE_ERR_STATE,
                      "the inactive slot is the only good one (running slot not confirmed)");
    if (!retry_rejected && fs->rejected_why != LADE_FWSLOT_WHY_NONE &&
        memcmp(fs->rejected.sha256, img->sha256, LADE_FWSLOT_SHA256_LEN) == 0)
        return refuse(res, LADE_ERR_STATE, "this image was rolled back before");
    struct lade_fwslot_slot *s = &fs->slot[t];
    if (s->state == LADE_FWSLOT_WRITING && same_image(&s->img, img)) {
        res->resume = true;
        res->why = "resuming the same image";
        return LADE_OK;
    }
    /* A switch pending to this slot is cancelled by writing into it. */
    if (fs->primary == t) {
        set_tries(fs, 0, res);
        set_primary(fs, run, res);
    }
    set_state(fs, t, LADE_FWSLOT_WRITING, "begin write", res);
    s->img = *img;
    s->img.version[LADE_FWSLOT_VERSION_MAX] = '\0';
    res->changed = true;
    LOG_I(MOD, "slot %s: writing %s (%llu bytes, security counter %llu)", lade_fwslot_name(t),
          s->img.version, (unsigned long long)s->img.length,
          (unsigned long long)s->img.security_counter);
    return LADE_OK;
}

lade_err lade_fwslot_written(struct lade_fwslot *fs, int slot, uint64_t length,
                             const uint8_t sha256[LADE_FWSLOT_SHA256_LEN],
                             struct lade_fwslot_res *res)
{
    if (!fs || !sha256 || !res || (slot != LADE_FWSLOT_A && slot != LADE_FWSLOT_B))
        return LADE_ERR_INVAL;
    res_init(res, slot, "verified");
    struct lade_fwslot_slot *s = &fs->slot[slot];
    if (slot == fs->booted || s->state != LADE_FWSLOT_WRITING)
        return refuse(res, LADE_ERR_STATE, "slot is not being written");
    if (length != s->img.length || memcmp(sha256, s->img.sha256, LADE_FWSLOT_SHA256_LEN) != 0) {
        set_state(fs, slot, LADE_FWSLOT_EMPTY, "read-back hash or length mismatch", res);
        res->why = "read-back hash or length does not match the image";
        return LADE_ERR_AUTH;
    }
    set_state(fs, slot, LADE_FWSLOT_WRITTEN, "read back, hash matches", res);
    return LADE_OK;
}

lade_err lade_fwslot_switch(struct lade_fwslot *fs, int slot, struct lade_fwslot_res *res)
{
    if (!fs || !res || (slot != LADE_FWSLOT_A && slot != LADE_FWSLOT_B))
        return LADE_ERR_INVAL;
    res_init(res, slot, "switch: try once at the next boot");
    if (slot == fs->booted || fs->slot[slot].state != LADE_FWSLOT_WRITTEN)
        return refuse(res, LADE_ERR_STATE, "slot is not written and verified");
    if (!good_ok(fs, fs->booted))
        return refuse(res, LADE_ERR_STATE, "running slot is not confirmed good (no fallback)");
    if (fs->slot[slot].img.security_counter < fs->counter)
        return refuse(res, LADE_ERR_STATE,
                      "security counter below the device's anti-rollback counter (downgrade)");
    set_state(fs, slot, LADE_FWSLOT_TRIAL, "switch", res);
    set_tries(fs, LADE_FWSLOT_TRIES, res);
    set_primary(fs, slot, res);
    return LADE_OK;
}

lade_err lade_fwslot_mark_good(struct lade_fwslot *fs, int slot, struct lade_fwslot_res *res)
{
    if (!fs || !res || (slot != LADE_FWSLOT_A && slot != LADE_FWSLOT_B))
        return LADE_ERR_INVAL;
    res_init(res, slot, "marked good");
    if (slot != fs->booted)
        return refuse(res, LADE_ERR_STATE, "only the running slot can be marked good");
    struct lade_fwslot_slot *s = &fs->slot[slot];
    if (s->state == LADE_FWSLOT_GOOD) {
        /* Also with a switch pending: confirming the running slot must not cancel it. */
        res->why = "already good";
        return LADE_OK;
    }
    if (s->state != LADE_FWSLOT_TRIAL || fs->primary != slot)
        return refuse(res, LADE_ERR_STATE, "the running slot is not on trial");
    if (s->img.security_counter < fs->counter)
        return refuse(res, LADE_ERR_STATE, "security counter below the device's counter");
    set_state(fs, slot, LADE_FWSLOT_GOOD, "confirmed", res);
    set_tries(fs, 0, res);
    fs->last_good = (uint8_t)slot;
    if (fs->counter != s->img.security_counter) {
        /* Raised only here: a trial that never proves itself cannot lock the device out of
         * the image it falls back to. */
        LOG_I(MOD, "anti-rollback counter %llu -> %llu", (unsigned long long)fs->counter,
              (unsigned long long)s->img.security_counter);
        fs->counter = s->img.security_counter;
    }
    res->changed = true;
    return LADE_OK;
}

lade_err lade_fwslot_rollback(struct lade_fwslot *fs, enum lade_fwslot_why why,
                              struct lade_fwslot_res *res)
{
    if (!fs || !res || why <= LADE_FWSLOT_WHY_NONE || why >= LADE_FWSLOT_WHY__COUNT)
        return LADE_ERR_INVAL;
    int run = fs->booted & 1, o = other(run);
    res_init(res, o, "rolled back: the good slot boots next");
    if (fs->slot[run].state != LADE_FWSLOT_TRIAL || fs->primary != run)
        return refuse(res, LADE_ERR_STATE, "the running slot is not on trial");
    abandon(fs, run, why, res);
    set_tries(fs, 0, res);
    int next = good_ok(fs, o) ? o : (fs->last_good & 1);
    set_primary(fs, next, res);
    res->slot = next;
    return LADE_OK;
}
