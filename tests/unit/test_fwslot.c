/* Unit tests of the A/B boot-state machine and its record codec (include/lade/fwslot.h): every
 * transition and refusal, anti-rollback counters, "both slots bad" still boots one, the endless
 * rollback guard, and the two-copy record (torn copies, sequences, newer formats). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lade/fwslot.h"
#include "lade/log.h"

static struct lade_fwslot_image image(const char *version, uint64_t counter, uint8_t seed)
{
    struct lade_fwslot_image img;
    memset(&img, 0, sizeof img);
    strcpy(img.version, version);
    img.security_counter = counter;
    img.length = 1000 + seed;
    for (int i = 0; i < LADE_FWSLOT_SHA256_LEN; i++)
        img.sha256[i] = (uint8_t)(seed * 31 + i);
    return img;
}

/* A device on factory 1.0.0 (slot a, counter 1), booted. */
static void fresh(struct lade_fwslot *fs)
{
    struct lade_fwslot_res r;
    assert_int_equal(lade_fwslot_init(fs, "1.0.0", 1), LADE_OK);
    lade_fwslot_boot(fs, &r);
    assert_int_equal(r.slot, LADE_FWSLOT_A);
    assert_int_equal(r.boot, LADE_FWSLOT_BOOT_GOOD);
    assert_false(r.changed);
}

/* Writes img into the inactive slot and switches to it; returns the slot. */
static int install(struct lade_fwslot *fs, const struct lade_fwslot_image *img)
{
    struct lade_fwslot_res r;
    assert_int_equal(lade_fwslot_begin_write(fs, img, false, &r), LADE_OK);
    assert_true(r.changed);
    assert_false(r.resume);
    int slot = r.slot;
    assert_int_not_equal(slot, fs->booted);
    assert_int_equal(fs->slot[slot].state, LADE_FWSLOT_WRITING);
    assert_int_equal(lade_fwslot_written(fs, slot, img->length, img->sha256, &r), LADE_OK);
    assert_true(r.changed);
    assert_int_equal(fs->slot[slot].state, LADE_FWSLOT_WRITTEN);
    assert_int_equal(lade_fwslot_switch(fs, slot, &r), LADE_OK);
    assert_true(r.changed);
    assert_int_equal(fs->slot[slot].state, LADE_FWSLOT_TRIAL);
    assert_int_equal(fs->tries, LADE_FWSLOT_TRIES);
    assert_int_equal(fs->primary, slot);
    return slot;
}

static void boot(struct lade_fwslot *fs, int slot, enum lade_fwslot_boot_kind kind)
{
    struct lade_fwslot_res r;
    lade_fwslot_boot(fs, &r);
    assert_int_equal(r.boot, kind);
    assert_int_equal(r.slot, slot);
    assert_int_equal(fs->booted, slot);
    assert_int_equal(fs->primary, slot);
}

static void test_names_and_init(void **state)
{
    (void)state;
    struct lade_fwslot fs;
    assert_string_equal(lade_fwslot_name(0), "a");
    assert_string_equal(lade_fwslot_name(1), "b");
    assert_string_equal(lade_fwslot_name(7), "none");
    assert_string_equal(lade_fwslot_state_name(LADE_FWSLOT_TRIAL), "trial");
    assert_string_equal(lade_fwslot_why_name(LADE_FWSLOT_WHY_HUB), "hub not reached in time");
    assert_string_equal(lade_fwslot_boot_kind_name(LADE_FWSLOT_BOOT_LAST_RESORT), "last resort");
    assert_int_equal(lade_fwslot_init(&fs, "", 1), LADE_ERR_INVAL);
    assert_int_equal(lade_fwslot_init(&fs, "1.0 beta", 1), LADE_ERR_INVAL);
    assert_int_equal(
        lade_fwslot_init(&fs, "12345678901234567890123456789012345678901234567890123456789012345",
                         1),
        LADE_ERR_INVAL);
    assert_int_equal(lade_fwslot_init(&fs, NULL, 1), LADE_ERR_INVAL);
    assert_int_equal(
        lade_fwslot_init(&fs, "1234567890123456789012345678901234567890123456789012345678901234",
                         7),
        LADE_OK);
    assert_int_equal(fs.slot[0].state, LADE_FWSLOT_GOOD);
    assert_int_equal(fs.slot[1].state, LADE_FWSLOT_EMPTY);
    assert_int_equal(fs.counter, 7);
    assert_int_equal(fs.slot[0].img.security_counter, 7);
    assert_int_equal(fs.primary, 0);
    assert_int_equal(fs.booted, 0);
    assert_int_equal(fs.last_good, 0);
    assert_true(lade_fwslot_bootable(&fs, 0));
    assert_false(lade_fwslot_bootable(&fs, 1));
    assert_false(lade_fwslot_bootable(&fs, 2));
}

static void test_update_confirmed(void **state)
{
    (void)state;
    struct lade_fwslot fs;
    struct lade_fwslot_res r;
    fresh(&fs);
    struct lade_fwslot_image img = image("2.0.0", 2, 1);
    int b = install(&fs, &img);
    assert_int_equal(b, LADE_FWSLOT_B);
    assert_int_equal(fs.counter, 1); /* not before it is marked good */
    /* The running slot stays good until the reboot. */
    assert_int_equal(fs.booted, LADE_FWSLOT_A);
    lade_fwslot_boot(&fs, &r);
    assert_int_equal(r.boot, LADE_FWSLOT_BOOT_TRIAL);
    assert_int_equal(r.slot, b);
    assert_true(r.changed); /* the try is counted: saved before the slot starts */
    assert_int_equal(fs.tries, 0);
    assert_int_equal(fs.slot[b].state, LADE_FWSLOT_TRIAL);
    assert_int_equal(lade_fwslot_mark_good(&fs, b, &r), LADE_OK);
    assert_true(r.changed);
    assert_int_equal(fs.slot[b].state, LADE_FWSLOT_GOOD);
    assert_int_equal(fs.counter, 2);
    assert_int_equal(fs.last_good, b);
    /* The old slot stays good (a fallback with counter 1 is below the device's 2 now). */
    assert_int_equal(fs.slot[0].state, LADE_FWSLOT_GOOD);
    assert_false(lade_fwslot_bootable(&fs, 0));
    /* Marking good again: no change (idempotent, like rauc status mark-good). */
    assert_int_equal(lade_fwslot_mark_good(&fs, b, &r), LADE_OK);
    assert_false(r.changed);
    /* Next boots: b, no change to save. */
    for (int i = 0; i < 3; i++) {
        lade_fwslot_boot(&fs, &r);
        assert_int_equal(r.boot, LADE_FWSLOT_BOOT_GOOD);
        assert_int_equal(r.slot, b);
        assert_false(r.changed);
    }
    /* And the next update goes to a. */
    struct lade_fwslot_image img3 = image("3.0.0", 2, 2);
    assert_int_equal(install(&fs, &img3), LADE_FWSLOT_A);
    boot(&fs, LADE_FWSLOT_A, LADE_FWSLOT_BOOT_TRIAL);
    assert_int_equal(lade_fwslot_mark_good(&fs, LADE_FWSLOT_A, &r), LADE_OK);
    assert_int_equal(fs.counter, 2);
    assert_int_equal(fs.rollbacks, 0);
}

/* The endless-rollback guard: a trial that is never marked good runs once, falls back, is bad
 * for good, and the same image is not installed again by itself. */
static void test_trial_not_confirmed_falls_back_once(void **state)
{
    (void)state;
    struct lade_fwslot fs;
    struct lade_fwslot_res r;
    fresh(&fs);
    struct lade_fwslot_image img = image("2.0.0", 2, 1);
    int b = install(&fs, &img);
    boot(&fs, b, LADE_FWSLOT_BOOT_TRIAL);
    /* It crashes / hangs / loses power: the boot loader falls back. */
    lade_fwslot_boot(&fs, &r);
    assert_int_equal(r.boot, LADE_FWSLOT_BOOT_FALLBACK);
    assert_int_equal(r.slot, LADE_FWSLOT_A);
    assert_true(r.changed);
    assert_int_equal(fs.slot[b].state, LADE_FWSLOT_BAD);
    assert_int_equal(fs.rejected_why, LADE_FWSLOT_WHY_NOT_CONFIRMED);
    assert_string_equal(fs.rejected.version, "2.0.0");
    assert_int_equal(fs.rollbacks, 1);
    assert_int_equal(fs.counter, 1); /* never raised */
    /* Many boots later: still a, b never tried again. */
    for (int i = 0; i < 10; i++) {
        lade_fwslot_boot(&fs, &r);
        assert_int_equal(r.boot, LADE_FWSLOT_BOOT_GOOD);
        assert_int_equal(r.slot, LADE_FWSLOT_A);
        assert_false(r.changed);
    }
    /* A late mark good from the bad slot's firmware is refused (it is not running). */
    assert_int_equal(lade_fwslot_mark_good(&fs, b, &r), LADE_ERR_STATE);
    /* The same image again: refused unless asked explicitly. */
    assert_int_equal(lade_fwslot_begin_write(&fs, &img, false, &r), LADE_ERR_STATE);
    assert_false(r.changed);
    assert_int_equal(fs.slot[b].state, LADE_FWSLOT_BAD);
    assert_int_equal(lade_fwslot_begin_write(&fs, &img, true, &r), LADE_OK);
    assert_int_equal(fs.slot[b].state, LADE_FWSLOT_WRITING);
    /* A different image is fine. */
    struct lade_fwslot_image img2 = image("2.0.1", 2, 9);
    assert_int_equal(lade_fwslot_begin_write(&fs, &img2, false, &r), LADE_OK);
    assert_false(r.resume);
    assert_string_equal(fs.slot[b].img.version, "2.0.1");
}

static void test_explicit_rollback(void **state)
{
    (void)state;
    enum lade_fwslot_why whys[] = {LADE_FWSLOT_WHY_SELFTEST, LADE_FWSLOT_WHY_HUB,
                                   LADE_FWSLOT_WHY_OPERATOR};
    for (size_t i = 0; i < sizeof whys / sizeof whys[0]; i++) {
        struct lade_fwslot fs;
        struct lade_fwslot_res r;
        fresh(&fs);
        /* Not on trial: nothing to roll back. */
        assert_int_equal(lade_fwslot_rollback(&fs, whys[i], &r), LADE_ERR_STATE);
        struct lade_fwslot_image img = image("2.0.0", 3, 1);
        int b = install(&fs, &img);
        /* Switched but not booted yet: the running slot is not on trial. */
        assert_int_equal(lade_fwslot_rollback(&fs, whys[i], &r), LADE_ERR_STATE);
        boot(&fs, b, LADE_FWSLOT_BOOT_TRIAL);
        assert_int_equal(lade_fwslot_rollback(&fs, LADE_FWSLOT_WHY_NONE, &r), LADE_ERR_INVAL);
        assert_int_equal(lade_fwslot_rollback(&fs, LADE_FWSLOT_WHY__COUNT, &r), LADE_ERR_INVAL);
        assert_int_equal(lade_fwslot_rollback(&fs, whys[i], &r), LADE_OK);
        assert_true(r.changed);
        assert_int_equal(r.slot, LADE_FWSLOT_A);
        assert_int_equal(fs.primary, LADE_FWSLOT_A);
        assert_int_equal(fs.booted, b); /* still running until the restart */
        assert_int_equal(fs.slot[b].state, LADE_FWSLOT_BAD);
        assert_int_equal(fs.rejected_why, whys[i]);
        assert_int_equal(fs.counter, 1);
        /* Rolled back: it cannot be marked good any more, nor rolled back twice. */
        assert_int_equal(lade_fwslot_mark_good(&fs, b, &r), LADE_ERR_STATE);
        assert_int_equal(lade_fwslot_rollback(&fs, whys[i], &r), LADE_ERR_STATE);
        boot(&fs, LADE_FWSLOT_A, LADE_FWSLOT_BOOT_GOOD);
        assert_int_equal(fs.slot[b].state, LADE_FWSLOT_BAD);
    }
}

static void test_refusals(void **state)
{
    (void)state;
    struct lade_fwslot fs, before;
    struct lade_fwslot_res r;
    assert_int_equal(lade_fwslot_init(&fs, "1.0.0", 5), LADE_OK);
    before = fs;
    /* Downgrade: security counter below the device's. */
    struct lade_fwslot_image old = image("0.9.0", 4, 1);
    assert_int_equal(lade_fwslot_begin_write(&fs, &old, true, &r), LADE_ERR_STATE);
    assert_false(r.changed);
    assert_non_null(strstr(r.why, "downgrade"));
    /* Malformed images. */
    struct lade_fwslot_image bad = image("2.0.0", 5, 1);
    bad.length = 0;
    assert_int_equal(lade_fwslot_begin_write(&fs, &bad, false, &r), LADE_ERR_INVAL);
    bad = image("2 0", 5, 1);
    assert_int_equal(lade_fwslot_begin_write(&fs, &bad, false, &r), LADE_ERR_INVAL);
    bad = image("", 5, 1);
    assert_int_equal(lade_fwslot_begin_write(&fs, &bad, false, &r), LADE_ERR_INVAL);
    assert_memory_equal(&fs, &before, sizeof fs);
    /* Nothing written: no verify, no switch. */
    uint8_t h[32] = {0};
    assert_int_equal(lade_fwslot_written(&fs, LADE_FWSLOT_B, 1, h, &r), LADE_ERR_STATE);
    assert_int_equal(lade_fwslot_written(&fs, LADE_FWSLOT_A, 1, h, &r), LADE_ERR_STATE);
    assert_int_equal(lade_fwslot_written(&fs, 2, 1, h, &r), LADE_ERR_INVAL);
    assert_int_equal(lade_fwslot_switch(&fs, LADE_FWSLOT_B, &r), LADE_ERR_STATE);
    assert_int_equal(lade_fwslot_switch(&fs, LADE_FWSLOT_A, &r), LADE_ERR_STATE);
    assert_int_equal(lade_fwslot_switch(&fs, -1, &r), LADE_ERR_INVAL);
    /* Mark good: only the running slot, only a trial (already good: no-op). */
    assert_int_equal(lade_fwslot_mark_good(&fs, LADE_FWSLOT_B, &r), LADE_ERR_STATE);
    assert_int_equal(lade_fwslot_mark_good(&fs, LADE_FWSLOT_A, &r), LADE_OK);
    assert_false(r.changed);
    assert_memory_equal(&fs, &before, sizeof fs);

    /* Written, but the switch is refused while nothing in b is verified; a wrong hash or
     * length: the slot is EMPTY again (a fresh write starts over). */
    struct lade_fwslot_image img = image("2.0.0", 5, 2);
    assert_int_equal(lade_fwslot_begin_write(&fs, &img, false, &r), LADE_OK);
    assert_int_equal(lade_fwslot_switch(&fs, LADE_FWSLOT_B, &r), LADE_ERR_STATE);
    assert_int_equal(lade_fwslot_written(&fs, LADE_FWSLOT_B, img.length, h, &r), LADE_ERR_AUTH);
    assert_true(r.changed);
    assert_int_equal(fs.slot[1].state, LADE_FWSLOT_EMPTY);
    assert_int_equal(lade_fwslot_begin_write(&fs, &img, false, &r), LADE_OK);
    assert_false(r.resume);
    assert_int_equal(lade_fwslot_written(&fs, LADE_FWSLOT_B, img.length + 1, img.sha256, &r),
                     LADE_ERR_AUTH);
    assert_int_equal(fs.slot[1].state, LADE_FWSLOT_EMPTY);

    /* Switch with a counter below the device's (the counter rose since the write): refused. */
    assert_int_equal(lade_fwslot_begin_write(&fs, &img, false, &r), LADE_OK);
    assert_int_equal(lade_fwslot_written(&fs, LADE_FWSLOT_B, img.length, img.sha256, &r), LADE_OK);
    fs.counter = 6;
    fs.slot[0].img.security_counter = 6;
    assert_int_equal(lade_fwslot_switch(&fs, LADE_FWSLOT_B, &r), LADE_ERR_STATE);
    assert_non_null(strstr(r.why, "downgrade"));
    assert_int_equal(fs.slot[1].state, LADE_FWSLOT_WRITTEN);
    fs.counter = 5;
    fs.slot[0].img.security_counter = 5;

    /* While a trial runs, the good slot is the fallback: no write into it, no second switch;
     * mark good names the running trial slot only. */
    assert_int_equal(lade_fwslot_switch(&fs, LADE_FWSLOT_B, &r), LADE_OK);
    boot(&fs, LADE_FWSLOT_B, LADE_FWSLOT_BOOT_TRIAL);
    struct lade_fwslot_image img3 = image("3.0.0", 5, 3);
    before = fs;
    assert_int_equal(lade_fwslot_begin_write(&fs, &img3, false, &r), LADE_ERR_STATE);
    assert_int_equal(r.slot, LADE_FWSLOT_A);
    assert_int_equal(lade_fwslot_mark_good(&fs, LADE_FWSLOT_A, &r), LADE_ERR_STATE);
    assert_int_equal(lade_fwslot_switch(&fs, LADE_FWSLOT_A, &r), LADE_ERR_STATE);
    assert_memory_equal(&fs, &before, sizeof fs);
    /* A written slot cannot be switched to while the running one is a trial (no fallback). */
    fs.slot[0].state = LADE_FWSLOT_WRITTEN;
    assert_int_equal(lade_fwslot_switch(&fs, LADE_FWSLOT_A, &r), LADE_ERR_STATE);
    assert_non_null(strstr(r.why, "fallback"));
    fs = before;
    assert_int_equal(lade_fwslot_mark_good(&fs, LADE_FWSLOT_B, &r), LADE_OK);

    /* Never write into the running slot: the target is always the other one. */
    assert_int_equal(lade_fwslot_begin_write(&fs, &img3, false, &r), LADE_OK);
    assert_int_equal(r.slot, LADE_FWSLOT_A);
    assert_int_equal(lade_fwslot_written(&fs, LADE_FWSLOT_B, img.length, img.sha256, &r),
                     LADE_ERR_STATE);
    assert_int_equal(fs.slot[1].state, LADE_FWSLOT_GOOD);

    assert_int_equal(lade_fwslot_begin_write(NULL, &img3, false, &r), LADE_ERR_INVAL);
    assert_int_equal(lade_fwslot_mark_good(&fs, 3, &r), LADE_ERR_INVAL);
}

static void test_resume_and_cancel(void **state)
{
    (void)state;
    struct lade_fwslot fs;
    struct lade_fwslot_res r;
    fresh(&fs);
    struct lade_fwslot_image img = image("2.0.0", 1, 1);
    assert_int_equal(lade_fwslot_begin_write(&fs, &img, false, &r), LADE_OK);
    assert_true(r.changed);
    assert_int_equal(lade_fwslot_begin_write(&fs, &img, false, &r), LADE_OK);
    assert_true(r.resume);
    assert_false(r.changed);
    /* Another image: starts over. */
    struct lade_fwslot_image img2 = image("2.0.1", 1, 2);
    assert_int_equal(lade_fwslot_begin_write(&fs, &img2, false, &r), LADE_OK);
    assert_false(r.resume);
    assert_true(r.changed);
    /* Written and switched, then another image is written into it before the reboot: the
     * pending switch is cancelled first (the next boot stays on a). */
    assert_int_equal(lade_fwslot_written(&fs, 1, img2.length, img2.sha256, &r), LADE_OK);
    assert_int_equal(lade_fwslot_switch(&fs, 1, &r), LADE_OK);
    assert_int_equal(fs.primary, 1);
    assert_int_equal(lade_fwslot_begin_write(&fs, &img, false, &r), LADE_OK);
    assert_int_equal(fs.primary, 0);
    assert_int_equal(fs.tries, 0);
    assert_int_equal(fs.slot[1].state, LADE_FWSLOT_WRITING);
    boot(&fs, LADE_FWSLOT_A, LADE_FWSLOT_BOOT_GOOD);
    assert_int_equal(fs.slot[1].state, LADE_FWSLOT_WRITING); /* a resume stays possible */
    assert_int_equal(lade_fwslot_begin_write(&fs, &img, false, &r), LADE_OK);
    assert_true(r.resume);
}

static void test_counters(void **state)
{
    (void)state;
    struct lade_fwslot fs;
    struct lade_fwslot_res r;
    fresh(&fs);
    /* Equal counter is allowed (most releases do not raise it). */
    struct lade_fwslot_image same = image("1.1.0", 1, 1);
    int b = install(&fs, &same);
    boot(&fs, b, LADE_FWSLOT_BOOT_TRIAL);
    assert_int_equal(lade_fwslot_mark_good(&fs, b, &r), LADE_OK);
    assert_int_equal(fs.counter, 1);
    assert_true(lade_fwslot_bootable(&fs, LADE_FWSLOT_A)); /* 1.0.0 still a valid fallback */
    /* A raised counter takes effect only when marked good, and only then. */
    struct lade_fwslot_image up = image("2.0.0", 9, 2);
    int a = install(&fs, &up);
    assert_int_equal(fs.counter, 1);
    boot(&fs, a, LADE_FWSLOT_BOOT_TRIAL);
    assert_int_equal(fs.counter, 1);
    assert_int_equal(lade_fwslot_mark_good(&fs, a, &r), LADE_OK);
    assert_int_equal(fs.counter, 9);
    /* b (counter 1) is no longer bootable: a boot loader honouring the counter skips it. */
    assert_false(lade_fwslot_bootable(&fs, b));
    struct lade_fwslot_image back = image("1.1.0", 1, 1);
    assert_int_equal(lade_fwslot_begin_write(&fs, &back, true, &r), LADE_ERR_STATE);
    /* At boot: a primary below the counter is skipped for the other good slot. */
    struct lade_fwslot t = fs;
    t.primary = (uint8_t)b;
    lade_fwslot_boot(&t, &r);
    assert_int_equal(r.boot, LADE_FWSLOT_BOOT_OTHER);
    assert_int_equal(r.slot, a);
}

static void quiet(void *ud, enum lade_log_level level, const char *module, const char *line)
{
    (void)ud;
    (void)level;
    (void)module;
    (void)line;
}

static void test_no_bootable_slot_still_boots(void **state)
{
    (void)state;
    struct lade_fwslot fs;
    struct lade_fwslot_res r;
    fresh(&fs);
    /* Both bad (e.g. a record from a damaged device): the one last marked good. */
    for (int lg = 0; lg < 2; lg++) {
        for (int p = 0; p < 2; p++) {
            struct lade_fwslot t = fs;
            t.slot[0].state = LADE_FWSLOT_BAD;
            t.slot[1].state = LADE_FWSLOT_BAD;
            t.last_good = (uint8_t)lg;
            t.primary = (uint8_t)p;
            lade_fwslot_boot(&t, &r);
            assert_int_equal(r.boot, LADE_FWSLOT_BOOT_LAST_RESORT);
            assert_int_equal(r.slot, lg);
            assert_int_equal(t.booted, lg);
            assert_int_equal(t.primary, lg);
            /* Not markable good from there, and the other slot is writable to recover. */
            assert_int_equal(lade_fwslot_mark_good(&t, lg, &r), LADE_ERR_STATE);
            struct lade_fwslot_image img = image("9.0.0", 1, 4);
            assert_int_equal(lade_fwslot_begin_write(&t, &img, false, &r), LADE_OK);
            assert_int_equal(r.slot, lg ^ 1);
        }
    }
    /* Every state combination boots some slot, and a TRIAL that is not booted becomes BAD.
     * (Quiet: most combinations are last-resort boots, each logged as an error.) */
    lade_log_set_sink(quiet, NULL);
    for (int s0 = 0; s0 <= LADE_FWSLOT_BAD; s0++)
        for (int s1 = 0; s1 <= LADE_FWSLOT_BAD; s1++)
            for (int p = 0; p < 2; p++)
                for (int tries = 0; tries < 2; tries++) {
                    struct lade_fwslot t = fs;
                    t.slot[1].img = t.slot[0].img;
                    t.slot[0].state = (enum lade_fwslot_state)s0;
                    t.slot[1].state = (enum lade_fwslot_state)s1;
                    t.primary = (uint8_t)p;
                    t.tries = (uint8_t)tries;
                    lade_fwslot_boot(&t, &r);
                    assert_true(r.slot == 0 || r.slot == 1);
                    assert_int_equal(t.booted, r.slot);
                    assert_int_equal(t.primary, r.slot);
                    assert_true(t.slot[r.slot ^ 1].state != LADE_FWSLOT_TRIAL);
                    if (r.boot == LADE_FWSLOT_BOOT_TRIAL)
                        assert_int_equal(t.tries, 0);
                    /* A good slot is preferred whenever there is one. */
                    if (s0 == LADE_FWSLOT_GOOD || s1 == LADE_FWSLOT_GOOD)
                        assert_true(r.boot != LADE_FWSLOT_BOOT_LAST_RESORT);
                }
    lade_log_set_sink(NULL, NULL);
}

/* ---- codec ---- */

static struct lade_fwslot sample(uint64_t seq)
{
    struct lade_fwslot fs;
    struct lade_fwslot_res r;
    fresh(&fs);
    struct lade_fwslot_image img = image("2.0.0-rc.1+build.7", 3, 1);
    int b = install(&fs, &img);
    boot(&fs, b, LADE_FWSLOT_BOOT_TRIAL);
    assert_int_equal(lade_fwslot_rollback(&fs, LADE_FWSLOT_WHY_HUB, &r), LADE_OK);
    boot(&fs, LADE_FWSLOT_A, LADE_FWSLOT_BOOT_GOOD);
    struct lade_fwslot_image img2 = image("2.0.1", 3, 2);
    assert_int_equal(lade_fwslot_begin_write(&fs, &img2, false, &r), LADE_OK);
    fs.seq = seq;
    return fs;
}

/* Recomputes the CRC after a test edits a field. */
static void recrc(uint8_t *buf)
{
    uint32_t c = lade_fwslot_crc32(buf, LADE_FWSLOT_RECORD_LEN - 4);
    for (int i = 0; i < 4; i++)
        buf[LADE_FWSLOT_RECORD_LEN - 4 + i] = (uint8_t)(c >> (8 * i));
}

static void test_codec_roundtrip(void **state)
{
    (void)state;
    assert_int_equal(lade_fwslot_crc32("123456789", 9), 0xcbf43926u); /* the check value */
    struct lade_fwslot fs = sample(0x0102030405060708ull), back;
    uint8_t buf[LADE_FWSLOT_RECORD_LEN + 8];
    size_t len = 0;
    assert_int_equal(lade_fwslot_encode(&fs, buf, LADE_FWSLOT_RECORD_LEN - 1, &len),
                     LADE_ERR_NOSPACE);
    assert_int_equal(lade_fwslot_encode(&fs, buf, sizeof buf, &len), LADE_OK);
    assert_int_equal(len, LADE_FWSLOT_RECORD_LEN);
    assert_memory_equal(buf, "LFWS\x01\x00\x83\x01", 8);
    assert_int_equal(buf[8], 0x08); /* little-endian */
    assert_int_equal(lade_fwslot_decode(buf, len, &back), LADE_OK);
    assert_int_equal(back.seq, fs.seq);
    assert_int_equal(back.primary, fs.primary);
    assert_int_equal(back.booted, fs.booted);
    assert_int_equal(back.last_good, fs.last_good);
    assert_int_equal(back.tries, fs.tries);
    assert_int_equal(back.counter, fs.counter);
    assert_int_equal(back.rollbacks, 1);
    assert_int_equal(back.rejected_why, LADE_FWSLOT_WHY_HUB);
    assert_string_equal(back.rejected.version, "2.0.0-rc.1+build.7");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(back.slot[i].state, fs.slot[i].state);
        assert_string_equal(back.slot[i].img.version, fs.slot[i].img.version);
        assert_int_equal(back.slot[i].img.length, fs.slot[i].img.length);
        assert_int_equal(back.slot[i].img.security_counter, fs.slot[i].img.security_counter);
        assert_memory_equal(back.slot[i].img.sha256, fs.slot[i].img.sha256, 32);
    }
    /* Encoding the decoded record gives the same bytes. */
    uint8_t again[LADE_FWSLOT_RECORD_LEN];
    assert_int_equal(lade_fwslot_encode(&back, again, sizeof again, &len), LADE_OK);
    assert_memory_equal(again, buf, LADE_FWSLOT_RECORD_LEN);
    /* The longest version a manifest allows (64) survives the round trip. */
    struct lade_fwslot longv = fs;
    strcpy(longv.slot[1].img.version,
           "1234567890123456789012345678901234567890123456789012345678901234");
    assert_int_equal(lade_fwslot_encode(&longv, again, sizeof again, &len), LADE_OK);
    assert_int_equal(lade_fwslot_decode(again, len, &back), LADE_OK);
    assert_string_equal(back.slot[1].img.version, longv.slot[1].img.version);
    /* A record out of range is not encoded. */
    struct lade_fwslot odd = fs;
    odd.primary = 2;
    assert_int_equal(lade_fwslot_encode(&odd, buf, sizeof buf, &len), LADE_ERR_INVAL);
    odd = fs;
    odd.slot[0].img.version[0] = '\0'; /* a good slot without a version */
    assert_int_equal(lade_fwslot_encode(&odd, buf, sizeof buf, &len), LADE_ERR_INVAL);
}

static void test_codec_rejects_damage(void **state)
{
    (void)state;
    struct lade_fwslot fs = sample(42), out;
    uint8_t good[LADE_FWSLOT_RECORD_LEN], buf[LADE_FWSLOT_RECORD_LEN + 1];
    size_t len;
    assert_int_equal(lade_fwslot_encode(&fs, good, sizeof good, &len), LADE_OK);
    /* Every bit flip is caught by the CRC. */
    for (size_t i = 0; i < LADE_FWSLOT_RECORD_LEN; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(buf, good, sizeof good);
            buf[i] ^= (uint8_t)(1u << bit);
            assert_int_equal(lade_fwslot_decode(buf, LADE_FWSLOT_RECORD_LEN, &out), LADE_ERR_INVAL);
        }
    /* Every truncation (a torn write that shortened the file), and a longer file. */
    for (size_t n = 0; n < LADE_FWSLOT_RECORD_LEN; n++)
        assert_int_equal(lade_fwslot_decode(good, n, &out), LADE_ERR_INVAL);
    memcpy(buf, good, sizeof good);
    buf[LADE_FWSLOT_RECORD_LEN] = 0;
    assert_int_equal(lade_fwslot_decode(buf, sizeof buf, &out), LADE_ERR_INVAL);
    /* A torn write: the new record's head over the old record's tail. */
    struct lade_fwslot newer = sample(43);
    newer.tries = 1;
    uint8_t nb[LADE_FWSLOT_RECORD_LEN];
    assert_int_equal(lade_fwslot_encode(&newer, nb, sizeof nb, &len), LADE_OK);
    for (size_t cut = 1; cut < LADE_FWSLOT_RECORD_LEN; cut++) {
        memcpy(buf, good, sizeof good);
        memcpy(buf, nb, cut);
        if (memcmp(buf, nb, LADE_FWSLOT_RECORD_LEN) && memcmp(buf, good, LADE_FWSLOT_RECORD_LEN))
            assert_int_equal(lade_fwslot_decode(buf, LADE_FWSLOT_RECORD_LEN, &out), LADE_ERR_INVAL);
    }
    /* Fields out of range with a valid CRC (a foreign or buggy writer). */
    struct {
        size_t off;
        uint8_t v;
    } bad[] = {
        {16, 2},            /* primary */
        {17, 9},            /* booted */
        {18, 2},            /* last_good */
        {19, 4},            /* tries > max */
        {32, 6},            /* rejected why */
        {33, 1},            /* reserved */
        {36, 6},            /* slot a state */
        {37, 1},            /* slot reserved */
        {40, 65},           /* version length */
        {41, ' '},          /* version char */
        {40 + 1 + 63, 'x'}, /* version padding (slot a's version is "1.0.0") */
        {153 + 4, 0},       /* slot b (writing) without a version */
        {270, 0},           /* rejected image without a version while rejected_why is set */
        {0, 'X'},           /* magic */
        {4, 0},             /* format 0 */
        {6, 0x84},          /* record length */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memcpy(buf, good, sizeof good);
        buf[bad[i].off] = bad[i].v;
        recrc(buf);
        assert_int_equal(lade_fwslot_decode(buf, LADE_FWSLOT_RECORD_LEN, &out), LADE_ERR_INVAL);
    }
    /* A newer format with a valid CRC: CONFIG (not a torn copy). Torn newer: INVAL. */
    memcpy(buf, good, sizeof good);
    buf[4] = 2;
    recrc(buf);
    assert_int_equal(lade_fwslot_decode(buf, LADE_FWSLOT_RECORD_LEN, &out), LADE_ERR_CONFIG);
    buf[100] ^= 1;
    assert_int_equal(lade_fwslot_decode(buf, LADE_FWSLOT_RECORD_LEN, &out), LADE_ERR_INVAL);
    assert_int_equal(lade_fwslot_decode(NULL, 0, &out), LADE_ERR_INVAL);
}

static void test_two_copies(void **state)
{
    (void)state;
    uint8_t c[2][LADE_FWSLOT_RECORD_LEN];
    size_t len;
    struct lade_fwslot out;
    int used, next, valid;
    struct lade_fwslot r5 = sample(5), r6 = sample(6);
    r6.tries = 1;
    assert_int_equal(lade_fwslot_encode(&r5, c[0], sizeof c[0], &len), LADE_OK);
    assert_int_equal(lade_fwslot_encode(&r6, c[1], sizeof c[1], &len), LADE_OK);
    /* Both valid: the higher sequence; the next save overwrites the other (older). */
    assert_int_equal(lade_fwslot_decode2(c[0], len, c[1], len, &out, &used, &next, &valid),
                     LADE_OK);
    assert_int_equal(out.seq, 6);
    assert_int_equal(used, 1);
    assert_int_equal(next, 0);
    assert_int_equal(valid, 2);
    assert_int_equal(lade_fwslot_decode2(c[1], len, c[0], len, &out, &used, &next, &valid),
                     LADE_OK);
    assert_int_equal(used, 0);
    assert_int_equal(next, 1);
    /* The newer copy torn: the older one, and the torn one is overwritten next. */
    c[1][50] ^= 0xff;
    assert_int_equal(lade_fwslot_decode2(c[0], len, c[1], len, &out, &used, &next, &valid),
                     LADE_OK);
    assert_int_equal(out.seq, 5);
    assert_int_equal(used, 0);
    assert_int_equal(next, 1);
    assert_int_equal(valid, 1);
    /* A missing copy is like a torn one. */
    assert_int_equal(lade_fwslot_decode2(NULL, 0, c[0], len, &out, &used, &next, &valid), LADE_OK);
    assert_int_equal(used, 1);
    assert_int_equal(next, 0);
    /* Both torn: not found, nothing guessed. */
    c[0][60] ^= 0xff;
    assert_int_equal(lade_fwslot_decode2(c[0], len, c[1], len, &out, &used, &next, &valid),
                     LADE_ERR_NOT_FOUND);
    assert_int_equal(valid, 0);
    assert_int_equal(used, -1);
    assert_int_equal(next, 0);
    assert_int_equal(lade_fwslot_decode2(NULL, 0, NULL, 0, &out, &used, &next, &valid),
                     LADE_ERR_NOT_FOUND);
    /* A copy in a newer format: CONFIG, not the older copy. */
    assert_int_equal(lade_fwslot_encode(&r5, c[0], sizeof c[0], &len), LADE_OK);
    assert_int_equal(lade_fwslot_encode(&r6, c[1], sizeof c[1], &len), LADE_OK);
    c[1][4] = 2;
    recrc(c[1]);
    assert_int_equal(lade_fwslot_decode2(c[0], len, c[1], len, &out, &used, &next, &valid),
                     LADE_ERR_CONFIG);
}

/* The save discipline in memory: each save overwrites `next`; tearing any save leaves the
 * record of the save before it. */
static void test_alternating_saves_survive_any_torn_write(void **state)
{
    (void)state;
    for (int torn_at = 1; torn_at <= 6; torn_at++) {
        uint8_t c[2][LADE_FWSLOT_RECORD_LEN];
        bool have[2] = {false, false};
        int next = 0;
        uint64_t last_complete = 0;
        for (int save = 1; save <= torn_at; save++) {
            struct lade_fwslot r = sample((uint64_t)save);
            uint8_t enc[LADE_FWSLOT_RECORD_LEN];
            size_t len;
            assert_int_equal(lade_fwslot_encode(&r, enc, sizeof enc, &len), LADE_OK);
            if (save == torn_at) {
                memcpy(c[next], enc, len / 3); /* torn: a third of it reached the file */
                have[next] = true;
                break;
            }
            memcpy(c[next], enc, len);
            have[next] = true;
            last_complete = (uint64_t)save;
            next ^= 1;
        }
        struct lade_fwslot out;
        int used, nx, valid;
        lade_err err = lade_fwslot_decode2(have[0] ? c[0] : NULL, LADE_FWSLOT_RECORD_LEN,
                                           have[1] ? c[1] : NULL, LADE_FWSLOT_RECORD_LEN, &out,
                                           &used, &nx, &valid);
        if (last_complete == 0) {
            assert_int_equal(err, LADE_ERR_NOT_FOUND); /* the very first save torn */
            continue;
        }
        assert_int_equal(err, LADE_OK);
        assert_int_equal(out.seq, last_complete);
        assert_int_equal(nx, next); /* the torn copy is the one overwritten next */
    }
}

int main(void)
{
    lade_log_set_level(LADE_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_init),
        cmocka_unit_test(test_update_confirmed),
        cmocka_unit_test(test_trial_not_confirmed_falls_back_once),
        cmocka_unit_test(test_explicit_rollback),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_resume_and_cancel),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_no_bootable_slot_still_boots),
        cmocka_unit_test(test_codec_roundtrip),
        cmocka_unit_test(test_codec_rejects_damage),
        cmocka_unit_test(test_two_copies),
        cmocka_unit_test(test_alternating_saves_survive_any_torn_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
