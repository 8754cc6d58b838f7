/* Unit tests of the Linux A/B slot port (src/port/linux/fwslot_file.c) in a temp dir: the update
 * cycle on real files, read-back verification, resume, rollback, torn and damaged record
 * copies, and power loss at every step — a child runs an update sequence and kills itself
 * (SIGKILL) at the N-th write/fsync/create point, for every N (and tears each write once);
 * the parent then "boots" and checks the device is on a good slot with a consistent record. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "lade/fwslot.h"
#include "lade/log.h"

#define IMG_LEN (48 * 1024)

struct fx {
    char dir[256];
    struct lade_fwslot_file *f;
};

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof *x);
    const char *tmp = getenv("TMPDIR");
    snprintf(x->dir, sizeof x->dir, "%s/lade-fwslot-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(x->dir))
        return -1;
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fx *x = *state;
    char cmd[600];
    lade_fwslot_file_close(x->f);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", x->dir);
    if (system(cmd) != 0)
        return -1;
    free(x);
    return 0;
}

/* ---- images ---- */

struct img {
    struct lade_fwslot_image meta;
    uint8_t data[IMG_LEN];
};

static void make_image(struct img *im, const char *version, uint64_t counter, uint32_t seed,
                       size_t len)
{
    memset(&im->meta, 0, sizeof im->meta);
    snprintf(im->meta.version, sizeof im->meta.version, "%s", version);
    im->meta.security_counter = counter;
    im->meta.length = len;
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        im->data[i] = (uint8_t)(x >> 16);
    }
    unsigned n = 0;
    if (EVP_Digest(im->data, len, im->meta.sha256, &n, EVP_sha256(), NULL) != 1 || n != 32)
        abort();
}

static bool file_hash(const char *path, uint64_t len, uint8_t out[32])
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return false;
    uint8_t *buf = malloc(len ? len : 1);
    bool ok = fread(buf, 1, len, fp) == len && fgetc(fp) == EOF;
    fclose(fp);
    unsigned n = 0;
    ok = ok && EVP_Digest(buf, len, out, &n, EVP_sha256(), NULL) == 1;
    free(buf);
    return ok;
}

static struct lade_fwslot_file_cfg cfg_for(const char *dir)
{
    struct lade_fwslot_file_cfg c;
    memset(&c, 0, sizeof c);
    c.dir = dir;
    c.factory_version = "1.0.0";
    c.factory_counter = 1;
    return c;
}

static struct lade_fwslot_status status(const struct lade_fwslot_file *f)
{
    struct lade_fwslot_status st;
    lade_fwslot_file_status(f, &st);
    return st;
}

static void reboot(struct fx *x)
{
    lade_fwslot_file_close(x->f);
    x->f = NULL;
    struct lade_fwslot_file_cfg c = cfg_for(x->dir);
    assert_int_equal(lade_fwslot_file_open(&c, &x->f), LADE_OK);
}

/* begin + write in 3 chunks + finish + switch. */
static void install(struct fx *x, const struct img *im, int want_slot)
{
    int slot = -1;
    uint64_t resume_max = 99;
    assert_int_equal(lade_fwslot_file_begin(x->f, &im->meta, false, &slot, &resume_max), LADE_OK);
    assert_int_equal(slot, want_slot);
    assert_int_equal(resume_max, 0);
    assert_int_equal(status(x->f).writing, want_slot);
    size_t third = im->meta.length / 3;
    assert_int_equal(lade_fwslot_file_write(x->f, 0, im->data, third), LADE_OK);
    assert_int_equal(lade_fwslot_file_write(x->f, third, im->data + third, third), LADE_OK);
    assert_int_equal(lade_fwslot_file_sync(x->f), LADE_OK);
    assert_int_equal(
        lade_fwslot_file_write(x->f, 2 * third, im->data + 2 * third, im->meta.length - 2 * third),
        LADE_OK);
    assert_int_equal(lade_fwslot_file_finish(x->f), LADE_OK);
    assert_int_equal(status(x->f).slot[slot].state, LADE_FWSLOT_WRITTEN);
    assert_int_equal(status(x->f).writing, -1);
    assert_int_equal(lade_fwslot_file_switch(x->f), LADE_OK);
    assert_int_equal(status(x->f).next_boot, want_slot);
}

static void path_in(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static off_t size_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* ---- tests ---- */

static void test_first_start_and_reopen(void **state)
{
    struct fx *x = *state;
    struct lade_fwslot_file_cfg c = cfg_for(x->dir);
    assert_int_equal(lade_fwslot_file_open(&c, &x->f), LADE_OK);
    struct lade_fwslot_status st = status(x->f);
    assert_int_equal(st.running, LADE_FWSLOT_A);
    assert_int_equal(st.next_boot, LADE_FWSLOT_A);
    assert_int_equal(st.boot, LADE_FWSLOT_BOOT_GOOD);
    assert_false(st.trial);
    assert_int_equal(st.counter, 1);
    assert_int_equal(st.seq, 1);
    assert_string_equal(st.slot[0].img.version, "1.0.0");
    assert_int_equal(st.slot[0].state, LADE_FWSLOT_GOOD);
    assert_int_equal(st.slot[1].state, LADE_FWSLOT_EMPTY);
    assert_false(st.recovered);
    assert_int_equal(st.writing, -1);
    char p[512];
    path_in(p, sizeof p, x->dir, "bootstate.0");
    assert_int_equal(size_of(p), LADE_FWSLOT_RECORD_LEN);
    path_in(p, sizeof p, x->dir, "bootstate.1");
    assert_int_equal(size_of(p), -1);
    /* Rebooting on a good slot writes nothing. */
    reboot(x);
    st = status(x->f);
    assert_int_equal(st.seq, 1);
    assert_int_equal(st.copies_valid, 1);
    assert_int_equal(size_of(p), -1);
    /* The factory version given later does not matter any more. */
    lade_fwslot_file_close(x->f);
    c.factory_version = "7.7.7";
    assert_int_equal(lade_fwslot_file_open(&c, &x->f), LADE_OK);
    assert_string_equal(status(x->f).slot[0].img.version, "1.0.0");
    path_in(p, sizeof p, x->dir, "slot-b.img");
    assert_string_equal(lade_fwslot_file_slot_path(x->f, 1), p);
    assert_null(lade_fwslot_file_slot_path(x->f, 2));
}

static void test_bad_config(void **state)
{
    struct fx *x = *state;
    struct lade_fwslot_file *f = (struct lade_fwslot_file *)1;
    struct lade_fwslot_file_cfg c = cfg_for(x->dir);
    c.factory_version = "bad version";
    assert_int_equal(lade_fwslot_file_open(&c, &f), LADE_ERR_INVAL);
    assert_null(f);
    c = cfg_for(NULL);
    assert_int_equal(lade_fwslot_file_open(&c, &f), LADE_ERR_INVAL);
    char missing[512];
    path_in(missing, sizeof missing, x->dir, "no/such/dir");
    c = cfg_for(missing);
    assert_int_equal(lade_fwslot_file_open(&c, &f), LADE_ERR_IO);
    assert_int_equal(lade_fwslot_file_open(NULL, &f), LADE_ERR_INVAL);
    /* The API refuses without a write in progress. */
    c = cfg_for(x->dir);
    assert_int_equal(lade_fwslot_file_open(&c, &x->f), LADE_OK);
    assert_int_equal(lade_fwslot_file_write(x->f, 0, "x", 1), LADE_ERR_STATE);
    assert_int_equal(lade_fwslot_file_sync(x->f), LADE_ERR_STATE);
    assert_int_equal(lade_fwslot_file_finish(x->f), LADE_ERR_STATE);
    assert_int_equal(lade_fwslot_file_switch(x->f), LADE_ERR_STATE);
    assert_int_equal(lade_fwslot_file_rollback(x->f, LADE_FWSLOT_WHY_HUB), LADE_ERR_STATE);
    assert_non_null(strstr(status(x->f).last_error, "not on trial"));
    assert_int_equal(lade_fwslot_file_mark_good(x->f), LADE_OK); /* good already */
}

static void test_update_cycle(void **state)
{
    struct fx *x = *state;
    static struct img im, im2;
    make_image(&im, "2.0.0", 2, 1, IMG_LEN);
    make_image(&im2, "3.0.0", 2, 2, IMG_LEN - 5);
    struct lade_fwslot_file_cfg c = cfg_for(x->dir);
    assert_int_equal(lade_fwslot_file_open(&c, &x->f), LADE_OK);
    install(x, &im, LADE_FWSLOT_B);
    uint8_t h[32];
    assert_true(file_hash(lade_fwslot_file_slot_path(x->f, 1), IMG_LEN, h));
    assert_memory_equal(h, im.meta.sha256, 32);
    /* Still running a until the "reboot". */
    struct lade_fwslot_status st = status(x->f);
    assert_int_equal(st.running, 0);
    assert_int_equal(st.slot[1].state, LADE_FWSLOT_TRIAL);
    assert_int_equal(st.tries, 1);
    assert_int_equal(lade_fwslot_file_mark_good(x->f), LADE_OK); /* a: no-op */
    reboot(x);
    st = status(x->f);
    assert_int_equal(st.running, 1);
    assert_int_equal(st.boot, LADE_FWSLOT_BOOT_TRIAL);
    assert_true(st.trial);
    assert_int_equal(st.tries, 0);
    assert_int_equal(st.counter, 1);
    assert_int_equal(st.copies_valid, 2);
    assert_int_equal(lade_fwslot_file_mark_good(x->f), LADE_OK);
    st = status(x->f);
    assert_false(st.trial);
    assert_int_equal(st.counter, 2);
    assert_int_equal(st.slot[1].state, LADE_FWSLOT_GOOD);
    reboot(x);
    st = status(x->f);
    assert_int_equal(st.running, 1);
    assert_int_equal(st.boot, LADE_FWSLOT_BOOT_GOOD);
    assert_string_equal(st.slot[1].img.version, "2.0.0");
    /* The next image goes to a; a shorter one truncates the old contents. */
    install(x, &im2, LADE_FWSLOT_A);
    assert_int_equal(size_of(lade_fwslot_file_slot_path(x->f, 0)), IMG_LEN - 5);
    reboot(x);
    assert_int_equal(status(x->f).running, 0);
    assert_int_equal(lade_fwslot_file_mark_good(x->f), LADE_OK);
    reboot(x);
    st = status(x->f);
    assert_int_equal(st.running, 0);
    assert_int_equal(st.slot[0].state, LADE_FWSLOT_GOOD);
    assert_int_equal(st.slot[1].state, LADE_FWSLOT_GOOD);
    assert_int_equal(st.rollbacks, 0);
}

static void test_write_bounds_and_verify(void **state)
{
    struct fx *x = *state;
    static struct img im, low;
    make_image(&im, "2.0.0", 3, 1, 1000);
    struct lade_fwslot_file_cfg c = cfg_for(x->dir);
    assert_int_equal(lade_fwslot_file_open(&c, &x->f), LADE_OK);
    /* Downgrade refused before anything is touched. */
    make_image(&low, "0.9.0", 0, 5, 1000);
    int slot = -1;
    assert_int_equal(lade_fwslot_file_begin(x->f, &low.meta, false, &slot, NULL), LADE_ERR_STATE);
    assert_non_null(strstr(status(x->f).last_error, "downgrade"));
    assert_int_equal(size_of(lade_fwslot_file_slot_path(x->f, 1)), -1);
    assert_int_equal(lade_fwslot_file_begin(x->f, &im.meta, false, &slot, NULL), LADE_OK);
    /* Endless data: nothing past the image's length. */
    assert_int_equal(lade_fwslot_file_write(x->f, 0, im.data, 1001), LADE_ERR_TOO_BIG);
    assert_int_equal(lade_fwslot_file_write(x->f, 999, im.data, 2), LADE_ERR_TOO_BIG);
    assert_int_equal(lade_fwslot_file_write(x->f, UINT64_MAX, im.data, 2), LADE_ERR_TOO_BIG);
    assert_int_equal(lade_fwslot_file_write(x->f, 1000, im.data, 0), LADE_OK);
    /* A wrong byte: the read-back hash does not match; the slot is empty again. */
    assert_int_equal(lade_fwslot_file_write(x->f, 0, im.data, 1000), LADE_OK);
    uint8_t wrong = im.data[500] ^ 1;
    assert_int_equal(lade_fwslot_file_write(x->f, 500, &wrong, 1), LADE_OK);
    assert_int_equal(lade_fwslot_file_finish(x->f), LADE_ERR_AUTH);
    assert_int_equal(status(x->f).slot[1].state, LADE_FWSLOT_EMPTY);
    assert_int_equal(lade_fwslot_file_switch(x->f), LADE_ERR_STATE);
    /* Short: also a mismatch. */
    uint64_t resume_max = 99;
    assert_int_equal(lade_fwslot_file_begin(x->f, &im.meta, false, &slot, &resume_max), LADE_OK);
    assert_int_equal(resume_max, 0);
    assert_int_equal(size_of(lade_fwslot_file_slot_path(x->f, 1)), 0);
    assert_int_equal(lade_fwslot_file_write(x->f, 0, im.data, 999), LADE_OK);
    assert_int_equal(lade_fwslot_file_finish(x->f), LADE_ERR_INVAL);
    assert_non_null(strstr(status(x->f).last_error, "999 bytes"));
    assert_int_equal(status(x->f).slot[1].state, LADE_FWSLOT_EMPTY);
    /* And right. */
    assert_int_equal(lade_fwslot_file_begin(x->f, &im.meta, false, &slot, NULL), LADE_OK);
    assert_int_equal(lade_fwslot_file_write(x->f, 0, im.data, 1000), LADE_OK);
    assert_int_equal(lade_fwslot_file_finish(x->f), LADE_OK);
    assert_int_equal(lade_fwslot_file_switch(x->f), LADE_OK);
    /* The record survived all of it. */
    reboot(x);
    assert_int_equal(status(x->f).running, 1);
}

static void test_resume_after_restart(void **state)
{
    struct fx *x = *state;
    static struct img im;
    make_image(&im, "2.0.0", 1, 7, IMG_LEN);
    struct lade_fwslot_file_cfg c = cfg_for(x->dir);
    assert_int_equal(lade_fwslot_file_open(&c, &x->f), LADE_OK);
    int slot = -1;
    assert_int_equal(lade_fwslot_file_begin(x->f, &im.meta, false, &slot, NULL), LADE_OK);
    assert_int_equal(lade_fwslot_file_write(x->f, 0, im.data, 20000), LADE_OK);
    assert_int_equal(lade_fwslot_file_sync(x->f), LADE_OK);
    uint64_t persisted = 20000; /* the updater's own record of its offset */
    assert_int_equal(lade_fwslot_file_write(x->f, 20000, im.data + 20000, 5000), LADE_OK);
    reboot(x); /* the agent restarts mid-download */
    struct lade_fwslot_status st = status(x->f);
    assert_int_equal(st.running, 0);
    assert_int_equal(st.slot[1].state, LADE_FWSLOT_WRITING);
    uint64_t resume_max = 0;
    assert_int_equal(lade_fwslot_file_begin(x->f, &im.meta, false, &slot, &resume_max), LADE_OK);
    assert_int_equal(resume_max, 25000);
    uint64_t from = persisted < resume_max ? persisted : resume_max;
    assert_int_equal(lade_fwslot_file_write(x->f, from, im.data + from, (size_t)(IMG_LEN - from)),
                     LADE_OK);
    assert_int_equal(lade_fwslot_file_finish(x->f), LADE_OK);
    assert_int_equal(lade_fwslot_file_switch(x->f), LADE_OK);
    reboot(x);
    assert_int_equal(status(x->f).running, 1);
}

static void test_rollbacks(void **state)
{
    struct fx *x = *state;
    static struct img im, im2;
    make_image(&im, "2.0.0", 4, 1, 4096);
    make_image(&im2, "2.0.1", 4, 2, 4096);
    struct lade_fwslot_file_cfg c = cfg_for(x->dir);
    assert_int_equal(lade_fwslot_file_open(&c, &x->f), LADE_OK);
    /* Self-test fails: explicit rollback, the next boot is a. */
    install(x, &im, LADE_FWSLOT_B);
    reboot(x);
    assert_true(status(x->f).trial);
    assert_int_equal(lade_fwslot_file_rollback(x->f, LADE_FWSLOT_WHY_SELFTEST), LADE_OK);
    struct lade_fwslot_status st = status(x->f);
    assert_int_equal(st.running, 1);
    assert_int_equal(st.next_boot, 0);
    assert_int_equal(lade_fwslot_file_mark_good(x->f), LADE_ERR_STATE);
    reboot(x);
    st = status(x->f);
    assert_int_equal(st.running, 0);
    assert_int_equal(st.slot[1].state, LADE_FWSLOT_BAD);
    assert_int_equal(st.rejected_why, LADE_FWSLOT_WHY_SELFTEST);
    assert_string_equal(st.rejected.version, "2.0.0");
    assert_int_equal(st.counter, 1);
    /* The same image is not installed again by itself. */
    int slot;
    assert_int_equal(lade_fwslot_file_begin(x->f, &im.meta, false, &slot, NULL), LADE_ERR_STATE);
    /* Never confirmed (it crashed / the hub was not reached and nobody said so): one try. */
    install(x, &im2, LADE_FWSLOT_B);
    reboot(x);
    assert_int_equal(status(x->f).boot, LADE_FWSLOT_BOOT_TRIAL);
    reboot(x);
    st = status(x->f);
    assert_int_equal(st.boot, LADE_FWSLOT_BOOT_FALLBACK);
    assert_int_equal(st.running, 0);
    assert_int_equal(st.rejected_why, LADE_FWSLOT_WHY_NOT_CONFIRMED);
    assert_int_equal(st.rollbacks, 2);
    for (int i = 0; i < 3; i++) {
        reboot(x);
        assert_int_equal(status(x->f).running, 0);
        assert_int_equal(status(x->f).boot, LADE_FWSLOT_BOOT_GOOD);
    }
    /* A trial image damaged at rest is not tried at all. */
    assert_int_equal(lade_fwslot_file_begin(x->f, &im2.meta, true, &slot, NULL), LADE_OK);
    assert_int_equal(lade_fwslot_file_write(x->f, 0, im2.data, 4096), LADE_OK);
    assert_int_equal(lade_fwslot_file_finish(x->f), LADE_OK);
    assert_int_equal(lade_fwslot_file_switch(x->f), LADE_OK);
    int fd = open(lade_fwslot_file_slot_path(x->f, 1), O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "X", 1, 100), 1);
    close(fd);
    reboot(x);
    st = status(x->f);
    assert_int_equal(st.running, 0);
    assert_int_equal(st.boot, LADE_FWSLOT_BOOT_FALLBACK);
    assert_int_equal(st.rejected_why, LADE_FWSLOT_WHY_VERIFY);
    assert_int_equal(st.slot[1].state, LADE_FWSLOT_BAD);
}

static void corrupt(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b = 0;
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x5a;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

static void test_record_copies(void **state)
{
    struct fx *x = *state;
    static struct img im;
    make_image(&im, "2.0.0", 2, 3, 2048);
    char p0[512], p1[512];
    path_in(p0, sizeof p0, x->dir, "bootstate.0");
    path_in(p1, sizeof p1, x->dir, "bootstate.1");
    struct lade_fwslot_file_cfg c = cfg_for(x->dir);
    assert_int_equal(lade_fwslot_file_open(&c, &x->f), LADE_OK); /* seq 1 → copy 0 */
    install(x, &im, LADE_FWSLOT_B); /* begin 2 → copy 1, written 3 → 0, switch 4 → 1 */
    assert_int_equal(status(x->f).seq, 4);
    lade_fwslot_file_close(x->f);
    x->f = NULL;
    /* The newest copy (1: the switch) torn: the previous record (WRITTEN, no switch) wins, and
     * the device stays on a — the switch is lost, never half-applied. */
    corrupt(p1, 20);
    assert_int_equal(lade_fwslot_file_open(&c, &x->f), LADE_OK);
    struct lade_fwslot_status st = status(x->f);
    assert_int_equal(st.copies_valid, 1);
    assert_int_equal(st.running, 0);
    assert_int_equal(st.slot[1].state, LADE_FWSLOT_WRITTEN);
    assert_int_equal(st.seq, 3);
    /* Switch again: it goes to the torn copy (seq 4), the good one is kept. */
    assert_int_equal(lade_fwslot_file_switch(x->f), LADE_OK);
    assert_int_equal(status(x->f).seq, 4);
    reboot(x);
    st = status(x->f);
    assert_int_equal(st.copies_valid, 2);
    assert_int_equal(st.running, 1);
    assert_int_equal(st.seq, 5); /* the try counted */
    /* The newest copy (0: seq 5, the try counted) damaged — here left longer than a record —
     * after the trial started: the previous record still has the try, so the trial gets one
     * more (bounded: that boot saves tries 0 again). The save makes the file right. */
    lade_fwslot_file_close(x->f);
    x->f = NULL;
    FILE *fp = fopen(p0, "ab");
    assert_non_null(fp);
    fputs("junk", fp);
    fclose(fp);
    assert_int_equal(lade_fwslot_file_open(&c, &x->f), LADE_OK);
    st = status(x->f);
    assert_int_equal(st.copies_valid, 1);
    assert_int_equal(st.boot, LADE_FWSLOT_BOOT_TRIAL);
    assert_int_equal(st.running, 1);
    assert_int_equal(st.seq, 5);
    assert_int_equal(size_of(p0), LADE_FWSLOT_RECORD_LEN);
    assert_int_equal(lade_fwslot_file_mark_good(x->f), LADE_OK);
    reboot(x);
    st = status(x->f);
    assert_int_equal(st.copies_valid, 2);
    assert_int_equal(st.counter, 2);
    /* Both copies damaged: factory defaults, flagged (never "no slot"). */
    lade_fwslot_file_close(x->f);
    x->f = NULL;
    corrupt(p0, 100);
    corrupt(p1, 100);
    assert_int_equal(lade_fwslot_file_open(&c, &x->f), LADE_OK);
    st = status(x->f);
    assert_true(st.recovered);
    assert_int_equal(st.running, 0);
    assert_int_equal(st.copies_valid, 0);
    lade_fwslot_file_close(x->f);
    x->f = NULL;
    /* A copy in a newer format: a clear error, not a guess. */
    uint8_t buf[LADE_FWSLOT_RECORD_LEN];
    FILE *in = fopen(p0, "rb");
    assert_non_null(in);
    assert_int_equal(fread(buf, 1, sizeof buf, in), sizeof buf);
    fclose(in);
    buf[4] = 9;
    uint32_t crc = lade_fwslot_crc32(buf, sizeof buf - 4);
    for (int i = 0; i < 4; i++)
        buf[sizeof buf - 4 + i] = (uint8_t)(crc >> (8 * i));
    FILE *out = fopen(p1, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(buf, 1, sizeof buf, out), sizeof buf);
    fclose(out);
    assert_int_equal(lade_fwslot_file_open(&c, &x->f), LADE_ERR_CONFIG);
    assert_null(x->f);
}

static void test_slot_paths_elsewhere(void **state)
{
    struct fx *x = *state;
    static struct img im;
    make_image(&im, "2.0.0", 1, 9, 3000);
    char sa[512], sb[512], sub[512];
    path_in(sub, sizeof sub, x->dir, "parts");
    assert_int_equal(mkdir(sub, 0755), 0);
    path_in(sa, sizeof sa, sub, "p2");
    path_in(sb, sizeof sb, sub, "p3");
    struct lade_fwslot_file_cfg c = cfg_for(x->dir);
    c.slot_path[0] = sa;
    c.slot_path[1] = sb;
    assert_int_equal(lade_fwslot_file_open(&c, &x->f), LADE_OK);
    assert_string_equal(lade_fwslot_file_slot_path(x->f, 1), sb);
    install(x, &im, LADE_FWSLOT_B);
    assert_int_equal(size_of(sb), 3000);
}

/* ---- power loss at every step ---- */

#define MAX_POINTS 512

struct crash {
    int target; /* kill at this point (1-based); 0: count only */
    bool tear;  /* at a *.write point: tear the write, then kill */
    bool tearing;
    int count;
    /* Counting run: each point's name, and the device counter committed before it. */
    char names[MAX_POINTS][24];
    uint64_t counter_before[MAX_POINTS];
    uint64_t seq_before[MAX_POINTS];
    uint64_t committed_counter, committed_seq;
};

static bool crash_hook(void *ud, const char *point)
{
    struct crash *c = ud;
    if (c->tearing)
        kill(getpid(), SIGKILL); /* "<point>.torn": half of the write is on disk */
    c->count++;
    if (c->target == 0 && c->count <= MAX_POINTS) {
        snprintf(c->names[c->count - 1], sizeof c->names[0], "%s", point);
        c->counter_before[c->count - 1] = c->committed_counter;
        c->seq_before[c->count - 1] = c->committed_seq;
    }
    if (c->count == c->target) {
        size_t n = strlen(point);
        if (c->tear && n > 6 && strcmp(point + n - 6, ".write") == 0) {
            c->tearing = true;
            return true;
        }
        kill(getpid(), SIGKILL);
    }
    return false;
}

static struct img seq_img[5];

/* The update sequence the child runs (returns 0, or the step that failed). Covers: first
 * start, write/verify/switch, trial boot, mark good (counter raised), a trial never confirmed
 * (fallback), an explicit rollback, a resumed write, and the boots between them. */
static int run_sequence(const char *dir, struct crash *cr)
{
    struct lade_fwslot_file_cfg c = cfg_for(dir);
    c.fault = crash_hook;
    c.fault_ud = cr;
    struct lade_fwslot_file *f = NULL;
    int slot = -1, step = 0;
    uint64_t rmax = 0;
#define STEP(x)                                                                                    \
    do {                                                                                           \
        step++;                                                                                    \
        if ((x) != LADE_OK)                                                                        \
            goto failed;                                                                           \
        struct lade_fwslot_status st_;                                                             \
        lade_fwslot_file_status(f, &st_);                                                          \
        cr->committed_counter = st_.counter;                                                       \
        cr->committed_seq = st_.seq;                                                               \
    } while (0)
#define BOOT()                                                                                     \
    do {                                                                                           \
        lade_fwslot_file_close(f);                                                                 \
        f = NULL;                                                                                  \
        STEP(lade_fwslot_file_open(&c, &f));                                                       \
    } while (0)
#define WRITE_ALL(im, from)                                                                        \
    do {                                                                                           \
        uint64_t len_ = (im)->meta.length, half_ = len_ / 2, from_ = (from);                       \
        if (from_ < half_) {                                                                       \
            STEP(lade_fwslot_file_write(f, from_, (im)->data + from_, half_ - from_));             \
            STEP(lade_fwslot_file_sync(f));                                                        \
        }                                                                                          \
        uint64_t at_ = from_ > half_ ? from_ : half_;                                              \
        STEP(lade_fwslot_file_write(f, at_, (im)->data + at_, len_ - at_));                        \
    } while (0)
#define INSTALL(im)                                                                                \
    do {                                                                                           \
        STEP(lade_fwslot_file_begin(f, &(im)->meta, false, &slot, &rmax));                         \
        WRITE_ALL(im, 0);                                                                          \
        STEP(lade_fwslot_file_finish(f));                                                          \
        STEP(lade_fwslot_file_switch(f));                                                          \
    } while (0)
    BOOT(); /* first start: the record is created */
    INSTALL(&seq_img[0]);
    BOOT(); /* trial b */
    STEP(lade_fwslot_file_mark_good(f));
    INSTALL(&seq_img[1]);
    BOOT(); /* trial a */
    BOOT(); /* never confirmed: back to b */
    INSTALL(&seq_img[2]);
    BOOT(); /* trial a */
    STEP(lade_fwslot_file_rollback(f, LADE_FWSLOT_WHY_SELFTEST));
    BOOT(); /* b */
    /* A write interrupted by a restart, then resumed. */
    STEP(lade_fwslot_file_begin(f, &seq_img[3].meta, false, &slot, &rmax));
    STEP(lade_fwslot_file_write(f, 0, seq_img[3].data, 1000));
    STEP(lade_fwslot_file_sync(f));
    BOOT();
    STEP(lade_fwslot_file_begin(f, &seq_img[3].meta, false, &slot, &rmax));
    WRITE_ALL(&seq_img[3], rmax < 1000 ? rmax : 1000);
    STEP(lade_fwslot_file_finish(f));
    STEP(lade_fwslot_file_switch(f));
    BOOT(); /* trial a */
    STEP(lade_fwslot_file_mark_good(f));
    BOOT();
    /* Over a good slot with a known image (b holds 2.0.0): it must never be vouched for while
     * its bytes change. */
    INSTALL(&seq_img[4]);
    BOOT(); /* trial b */
    STEP(lade_fwslot_file_mark_good(f));
    BOOT();
    lade_fwslot_file_close(f);
    return 0;
failed:
    lade_fwslot_file_close(f);
    return step;
#undef INSTALL
#undef WRITE_ALL
#undef BOOT
#undef STEP
}

/* After a crash: one boot must land on a good slot, or on a verified trial whose fallback is
 * good — and then a second boot (the trial never confirmed) on a good slot. Every slot the
 * record vouches for (written, trial, good with a known hash) holds exactly that image; the
 * counter never went back below what a completed call had committed. */
static void check_after_crash(const char *dir, uint64_t counter_floor, uint64_t seq_floor,
                              const char *what)
{
    /* Before booting: the record on disk is at least what the last completed call saved (a
     * crash may lose only the save in progress, never an earlier one). */
    uint8_t cp[2][LADE_FWSLOT_RECORD_LEN + 16];
    size_t n[2] = {0, 0};
    for (int i = 0; i < 2; i++) {
        char p[512];
        snprintf(p, sizeof p, "%s/bootstate.%d", dir, i);
        FILE *fp = fopen(p, "rb");
        if (fp) {
            n[i] = fread(cp[i], 1, sizeof cp[i], fp);
            fclose(fp);
        }
    }
    struct lade_fwslot rec;
    int used, next, valid;
    lade_err derr = lade_fwslot_decode2(cp[0], n[0], cp[1], n[1], &rec, &used, &next, &valid);
    if (derr != LADE_OK && seq_floor > 0)
        fail_msg("%s: no valid record copy (%s)", what, lade_strerror(derr));
    if (derr == LADE_OK && rec.seq < seq_floor)
        fail_msg("%s: record seq %llu, but seq %llu had been saved", what,
                 (unsigned long long)rec.seq, (unsigned long long)seq_floor);

    struct lade_fwslot_file_cfg c = cfg_for(dir);
    struct lade_fwslot_file *f = NULL;
    lade_err err = lade_fwslot_file_open(&c, &f);
    if (err != LADE_OK)
        fail_msg("%s: open after the crash: %s", what, lade_strerror(err));
    for (int boot = 0; boot < 2; boot++) {
        struct lade_fwslot_status st;
        lade_fwslot_file_status(f, &st);
        int run = st.running;
        if (run != 0 && run != 1)
            fail_msg("%s: no running slot", what);
        if (st.recovered)
            fail_msg("%s: record lost (both copies invalid)", what);
        enum lade_fwslot_state rs = st.slot[run].state;
        if (rs == LADE_FWSLOT_TRIAL) {
            if (boot == 1)
                fail_msg("%s: still on trial after the second boot", what);
            if (st.slot[run ^ 1].state != LADE_FWSLOT_GOOD ||
                st.slot[run ^ 1].img.security_counter < st.counter)
                fail_msg("%s: trial without a good fallback", what);
            if (st.tries != 0)
                fail_msg("%s: trial booted with %u tries left", what, st.tries);
        } else if (rs != LADE_FWSLOT_GOOD || st.slot[run].img.security_counter < st.counter) {
            fail_msg("%s: booted slot %s is %s", what, lade_fwslot_name(run),
                     lade_fwslot_state_name(rs));
        }
        if (st.counter < counter_floor)
            fail_msg("%s: counter %llu went below the committed %llu", what,
                     (unsigned long long)st.counter, (unsigned long long)counter_floor);
        for (int s = 0; s < 2; s++) {
            const struct lade_fwslot_slot *sl = &st.slot[s];
            bool vouched = sl->state == LADE_FWSLOT_WRITTEN || sl->state == LADE_FWSLOT_TRIAL ||
                           (sl->state == LADE_FWSLOT_GOOD && sl->img.length > 0);
            uint8_t h[32];
            if (vouched && (!file_hash(lade_fwslot_file_slot_path(f, s), sl->img.length, h) ||
                            memcmp(h, sl->img.sha256, 32) != 0))
                fail_msg("%s: slot %s is %s but does not hold its image", what, lade_fwslot_name(s),
                         lade_fwslot_state_name(sl->state));
        }
        if (rs != LADE_FWSLOT_TRIAL)
            break;
        /* The trial is never confirmed: the next boot must fall back by itself. */
        lade_fwslot_file_close(f);
        f = NULL;
        if (lade_fwslot_file_open(&c, &f) != LADE_OK)
            fail_msg("%s: second boot failed", what);
        struct lade_fwslot_status st2;
        lade_fwslot_file_status(f, &st2);
        if (st2.boot != LADE_FWSLOT_BOOT_FALLBACK || st2.running == run)
            fail_msg("%s: the unconfirmed trial did not fall back", what);
    }
    lade_fwslot_file_close(f);
}

static void clear_dir(const char *dir)
{
    static const char *const names[] = {"bootstate.0", "bootstate.1", "slot-a.img", "slot-b.img"};
    char p[512];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        path_in(p, sizeof p, dir, names[i]);
        (void)unlink(p);
    }
}

static void test_power_loss_at_every_step(void **state)
{
    struct fx *x = *state;
    make_image(&seq_img[0], "2.0.0", 2, 11, 24 * 1024);
    make_image(&seq_img[1], "3.0.0", 3, 12, 20 * 1024);
    make_image(&seq_img[2], "3.0.1", 3, 13, 16 * 1024);
    make_image(&seq_img[3], "3.1.0", 3, 14, 12 * 1024);
    make_image(&seq_img[4], "3.2.0", 4, 15, 8 * 1024);
    /* Counting run: the whole sequence, no crash. */
    static struct crash count;
    memset(&count, 0, sizeof count);
    assert_int_equal(run_sequence(x->dir, &count), 0);
    int total = count.count;
    assert_true(total > 20 && total <= MAX_POINTS);
    /* How many of each kind (the report in the test log). */
    static const char *const kinds[] = {"record.create",  "record.write", "record.fsync",
                                        "record.dirsync", "slot.open",    "slot.dirsync",
                                        "slot.write",     "slot.fsync"};
    enum { NKINDS = sizeof kinds / sizeof kinds[0] };
    int writes = 0, per[NKINDS] = {0}, known = 0;
    for (int i = 0; i < total; i++) {
        size_t n = strlen(count.names[i]);
        writes += n > 6 && strcmp(count.names[i] + n - 6, ".write") == 0;
        for (int k = 0; k < NKINDS; k++)
            if (strcmp(count.names[i], kinds[k]) == 0) {
                per[k]++;
                known++;
            }
    }
    assert_int_equal(known, total);
    char line[400];
    int at = snprintf(line, sizeof line, "power loss: %d crash points:", total);
    for (int k = 0; k < NKINDS; k++)
        at += snprintf(line + at, sizeof line - (size_t)at, " %s %d", kinds[k], per[k]);
    print_message("%s; %d of them writes (also torn)\n", line, writes);
    int runs = 0;
    for (int tear = 0; tear < 2; tear++) {
        for (int n = 1; n <= total; n++) {
            size_t len = strlen(count.names[n - 1]);
            if (tear && !(len > 6 && strcmp(count.names[n - 1] + len - 6, ".write") == 0))
                continue;
            clear_dir(x->dir);
            pid_t pid = fork();
            assert_true(pid >= 0);
            if (pid == 0) {
                static struct crash cr;
                memset(&cr, 0, sizeof cr);
                cr.target = n;
                cr.tear = tear;
                _exit(run_sequence(x->dir, &cr) == 0 ? 0 : 100);
            }
            int status = 0;
            assert_int_equal(waitpid(pid, &status, 0), pid);
            char what[96];
            snprintf(what, sizeof what, "%s at point %d (%s)", tear ? "torn write" : "kill -9", n,
                     count.names[n - 1]);
            if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
                fail_msg("%s: the child was not killed there (status 0x%x)", what, status);
            check_after_crash(x->dir, count.counter_before[n - 1], count.seq_before[n - 1], what);
            runs++;
        }
    }
    print_message("power loss: %d crashes checked\n", runs);
}

int main(void)
{
    lade_log_set_level(LADE_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_start_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_cycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_bounds_and_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rollbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_record_copies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slot_paths_elsewhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_power_loss_at_every_step, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
