/* Unit tests for the persistent outbox (SQLite file in a temporary directory). */
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "lade/log.h"
#include "lade/outbox.h"

struct fx {
    char dir[256];
    char path[300];
    struct lade_outbox *ob;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/lade-outbox-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/outbox.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[600];
    lade_outbox_close(f->ob);
    snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s'; rm -rf '%s'", f->dir, f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* Id "0000...<n>" so tests can name records. */
static const char *tid(unsigned n)
{
    static char buf[8][LADE_OUTBOX_ID_LEN + 1];
    static int k;
    char *b = buf[k++ % 8];
    snprintf(b, LADE_OUTBOX_ID_LEN + 1, "%032x", n);
    return b;
}

static void put_ok(struct lade_outbox *ob, enum lade_outbox_kind kind, unsigned n, size_t len)
{
    char payload[4096];
    assert_true(len <= sizeof payload);
    memset(payload, 'a' + (int)(n % 26), len);
    assert_int_equal(lade_outbox_put(ob, kind, tid(n), payload, len, 1000 + n, NULL), LADE_OK);
}

/* The stored ids, oldest first, as "n,n,n" (tid numbers). */
static void order(struct lade_outbox *ob, char *out, size_t cap)
{
    struct lade_outbox_rec rec;
    int64_t after = 0;
    size_t used = 0;
    out[0] = 0;
    while (lade_outbox_next(ob, after, &rec) == LADE_OK) {
        used += (size_t)snprintf(out + used, cap - used, "%s%lx", used ? "," : "",
                                 strtoul(rec.msg_id + 16, NULL, 16));
        assert_true(rec.seq > after);
        after = rec.seq;
        lade_outbox_rec_free(&rec);
    }
}

static struct lade_outbox_stats stats(struct lade_outbox *ob)
{
    struct lade_outbox_stats st;
    assert_int_equal(lade_outbox_stats(ob, &st), LADE_OK);
    return st;
}

static void test_ids(void **state)
{
    (void)state;
    char a[LADE_OUTBOX_ID_LEN + 1], b[LADE_OUTBOX_ID_LEN + 1];
    assert_int_equal(lade_outbox_new_id(a), LADE_OK);
    assert_int_equal(lade_outbox_new_id(b), LADE_OK);
    assert_true(lade_outbox_id_valid(a));
    assert_string_not_equal(a, b);
    assert_true(lade_outbox_id_valid("0123456789abcdef0123456789abcdef"));
    assert_false(lade_outbox_id_valid("0123456789ABCDEF0123456789abcdef"));
    assert_false(lade_outbox_id_valid("0123456789abcdef0123456789abcde"));
    assert_false(lade_outbox_id_valid("0123456789abcdef0123456789abcdef0"));
    assert_false(lade_outbox_id_valid(""));
    assert_false(lade_outbox_id_valid(NULL));
}

static void test_fifo_and_fields(void **state)
{
    struct fx *f = *state;
    char got[256], id[LADE_OUTBOX_ID_LEN + 1];
    assert_int_equal(lade_outbox_open(f->path, NULL, &f->ob), LADE_OK);
    put_ok(f->ob, LADE_OUTBOX_SESSION, 1, 10);
    put_ok(f->ob, LADE_OUTBOX_STATE, 2, 10);
    put_ok(f->ob, LADE_OUTBOX_SESSION, 3, 0);
    assert_int_equal(lade_outbox_put(f->ob, LADE_OUTBOX_STATE, NULL, "{\"x\":1}", 7, 42, id),
                     LADE_OK);
    assert_true(lade_outbox_id_valid(id));
    order(f->ob, got, sizeof got);
    assert_true(strncmp(got, "1,2,3,", 6) == 0);

    struct lade_outbox_rec rec;
    assert_int_equal(lade_outbox_next(f->ob, 0, &rec), LADE_OK);
    assert_string_equal(rec.msg_id, tid(1));
    assert_int_equal(rec.kind, LADE_OUTBOX_SESSION);
    assert_int_equal(rec.created_wall_s, 1001);
    assert_int_equal(rec.attempts, 0);
    assert_int_equal(rec.len, 10);
    assert_memory_equal(rec.payload, "bbbbbbbbbb", 10);
    int64_t first = rec.seq;
    lade_outbox_rec_free(&rec);
    assert_int_equal(lade_outbox_attempt(f->ob, tid(1), 5000), LADE_OK);
    assert_int_equal(lade_outbox_attempt(f->ob, tid(1), 5009), LADE_OK);
    assert_int_equal(lade_outbox_attempt(f->ob, tid(77), 5009), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_outbox_next(f->ob, 0, &rec), LADE_OK);
    assert_int_equal(rec.attempts, 2);
    assert_int_equal(rec.last_attempt_wall_s, 5009);
    lade_outbox_rec_free(&rec);

    /* The last record: generated id, text payload NUL-terminated. */
    int64_t after = first;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(lade_outbox_next(f->ob, after, &rec), LADE_OK);
        after = rec.seq;
        if (i < 2)
            lade_outbox_rec_free(&rec);
    }
    assert_string_equal(rec.msg_id, id);
    assert_string_equal((char *)rec.payload, "{\"x\":1}");
    lade_outbox_rec_free(&rec);
    assert_int_equal(lade_outbox_next(f->ob, after, &rec), LADE_ERR_NOT_FOUND);

    /* Acking the newest does not let a later record reuse its seq (cursor stays valid). */
    assert_int_equal(lade_outbox_ack(f->ob, id), LADE_OK);
    put_ok(f->ob, LADE_OUTBOX_SESSION, 9, 3);
    assert_int_equal(lade_outbox_next(f->ob, after, &rec), LADE_OK);
    assert_string_equal(rec.msg_id, tid(9));
    lade_outbox_rec_free(&rec);

    struct lade_outbox_stats st = stats(f->ob);
    assert_int_equal(st.records, 4);
    assert_int_equal(st.bytes, 23);
    assert_int_equal(st.session_records, 3);
    assert_int_equal(st.session_bytes, 13);
    assert_false(st.storage_fault);
    assert_false(st.recovered_corrupt);
}

static void test_bad_args(void **state)
{
    struct fx *f = *state;
    struct lade_outbox *ob = NULL;
    struct lade_outbox_limits lim = {10, 100, 5, 1000}; /* hard below soft */
    assert_int_equal(lade_outbox_open(f->path, &lim, &ob), LADE_ERR_INVAL);
    assert_int_equal(lade_outbox_open(NULL, NULL, &ob), LADE_ERR_INVAL);
    assert_int_equal(lade_outbox_open(f->path, NULL, &f->ob), LADE_OK);
    assert_int_equal(lade_outbox_put(f->ob, 7, tid(1), "x", 1, 0, NULL), LADE_ERR_INVAL);
    assert_int_equal(lade_outbox_put(f->ob, LADE_OUTBOX_SESSION, "nothex", "x", 1, 0, NULL),
                     LADE_ERR_INVAL);
    assert_int_equal(lade_outbox_put(f->ob, LADE_OUTBOX_SESSION, tid(1), NULL, 1, 0, NULL),
                     LADE_ERR_INVAL);
    static char big[LADE_OUTBOX_PAYLOAD_MAX + 1];
    assert_int_equal(lade_outbox_put(f->ob, LADE_OUTBOX_SESSION, tid(1), big, sizeof big, 0, NULL),
                     LADE_ERR_TOO_BIG);
    assert_int_equal(stats(f->ob).records, 0);
}

static void test_ack_idempotent_and_retry(void **state)
{
    struct fx *f = *state;
    char got[256];
    assert_int_equal(lade_outbox_open(f->path, NULL, &f->ob), LADE_OK);
    put_ok(f->ob, LADE_OUTBOX_SESSION, 1, 5);
    put_ok(f->ob, LADE_OUTBOX_SESSION, 2, 5);
    put_ok(f->ob, LADE_OUTBOX_SESSION, 3, 5);
    /* A put retried after a crash: same id and content is a no-op, other content is EXISTS. */
    put_ok(f->ob, LADE_OUTBOX_SESSION, 2, 5);
    assert_int_equal(lade_outbox_put(f->ob, LADE_OUTBOX_SESSION, tid(2), "other", 5, 0, NULL),
                     LADE_ERR_EXISTS);
    assert_int_equal(lade_outbox_put(f->ob, LADE_OUTBOX_STATE, tid(2), "ccccc", 5, 0, NULL),
                     LADE_ERR_EXISTS);
    order(f->ob, got, sizeof got);
    assert_string_equal(got, "1,2,3");

    assert_int_equal(lade_outbox_ack(f->ob, tid(2)), LADE_OK);
    assert_int_equal(lade_outbox_ack(f->ob, tid(2)), LADE_OK);
    assert_int_equal(lade_outbox_ack(f->ob, tid(99)), LADE_OK);
    assert_int_equal(lade_outbox_ack(f->ob, "zz"), LADE_ERR_INVAL);
    order(f->ob, got, sizeof got);
    assert_string_equal(got, "1,3");
    struct lade_outbox_stats st = stats(f->ob);
    assert_int_equal(st.unknown_acks, 2);
    assert_int_equal(st.records, 2);
}

static void test_limits_records(void **state)
{
    struct fx *f = *state;
    char got[256];
    struct lade_outbox_limits lim = {.max_records = 5,
                                     .max_bytes = 100000,
                                     .session_hard_records = 8,
                                     .session_hard_bytes = 200000};
    assert_int_equal(lade_outbox_open(f->path, &lim, &f->ob), LADE_OK);
    put_ok(f->ob, LADE_OUTBOX_SESSION, 1, 10);
    put_ok(f->ob, LADE_OUTBOX_STATE, 2, 10);
    put_ok(f->ob, LADE_OUTBOX_STATE, 3, 10);
    put_ok(f->ob, LADE_OUTBOX_SESSION, 4, 10);
    put_ok(f->ob, LADE_OUTBOX_STATE, 5, 10);
    assert_int_equal(stats(f->ob).dropped_state, 0);
    put_ok(f->ob, LADE_OUTBOX_STATE, 6, 10); /* drops 2 */
    order(f->ob, got, sizeof got);
    assert_string_equal(got, "1,3,4,5,6");
    assert_int_equal(stats(f->ob).dropped_state, 1);
    put_ok(f->ob, LADE_OUTBOX_SESSION, 7, 10); /* drops 3 */
    put_ok(f->ob, LADE_OUTBOX_SESSION, 8, 10); /* drops 5 */
    put_ok(f->ob, LADE_OUTBOX_SESSION, 9, 10); /* drops 6 */
    order(f->ob, got, sizeof got);
    assert_string_equal(got, "1,4,7,8,9");
    assert_int_equal(stats(f->ob).dropped_state, 4);

    /* Only sessions left at the soft limit: STATE refused, nothing changes. */
    assert_int_equal(lade_outbox_put(f->ob, LADE_OUTBOX_STATE, tid(10), "s", 1, 0, NULL),
                     LADE_ERR_FULL);
    /* SESSION still accepted up to the hard cap (8), then refused. */
    put_ok(f->ob, LADE_OUTBOX_SESSION, 11, 10);
    put_ok(f->ob, LADE_OUTBOX_SESSION, 12, 10);
    put_ok(f->ob, LADE_OUTBOX_SESSION, 13, 10);
    assert_int_equal(lade_outbox_put(f->ob, LADE_OUTBOX_SESSION, tid(14), "s", 1, 0, NULL),
                     LADE_ERR_FULL);
    /* The retry of a stored session is still fine at the cap. */
    put_ok(f->ob, LADE_OUTBOX_SESSION, 13, 10);
    order(f->ob, got, sizeof got);
    assert_string_equal(got, "1,4,7,8,9,b,c,d");
    struct lade_outbox_stats st = stats(f->ob);
    assert_int_equal(st.records, 8);
    assert_int_equal(st.session_records, 8);
    assert_int_equal(st.refused_state, 1);
    assert_int_equal(st.refused_session, 1);
    assert_int_equal(st.dropped_state, 4);
    assert_false(st.storage_fault);

    /* Draining below the soft limit lets STATE in again. */
    assert_int_equal(lade_outbox_ack(f->ob, tid(1)), LADE_OK);
    assert_int_equal(lade_outbox_ack(f->ob, tid(4)), LADE_OK);
    assert_int_equal(lade_outbox_ack(f->ob, tid(7)), LADE_OK);
    assert_int_equal(lade_outbox_ack(f->ob, tid(8)), LADE_OK);
    put_ok(f->ob, LADE_OUTBOX_STATE, 15, 10);
    assert_int_equal(stats(f->ob).records, 5);
}

static void test_limits_bytes(void **state)
{
    struct fx *f = *state;
    char got[256];
    struct lade_outbox_limits lim = {.max_records = 100,
                                     .max_bytes = 100,
                                     .session_hard_records = 100,
                                     .session_hard_bytes = 150};
    assert_int_equal(lade_outbox_open(f->path, &lim, &f->ob), LADE_OK);
    put_ok(f->ob, LADE_OUTBOX_STATE, 1, 40);
    put_ok(f->ob, LADE_OUTBOX_STATE, 2, 40);
    put_ok(f->ob, LADE_OUTBOX_SESSION, 3, 50); /* 130 > 100: drops 1 only (90) */
    order(f->ob, got, sizeof got);
    assert_string_equal(got, "2,3");
    assert_int_equal(stats(f->ob).dropped_state, 1);
    put_ok(f->ob, LADE_OUTBOX_STATE, 4, 10); /* 100: fits exactly */
    assert_int_equal(stats(f->ob).bytes, 100);
    /* A STATE larger than what sessions leave free is refused without dropping anything. */
    assert_int_equal(lade_outbox_put(f->ob, LADE_OUTBOX_STATE, tid(5), got, 51, 0, NULL),
                     LADE_ERR_FULL);
    assert_int_equal(stats(f->ob).dropped_state, 1);
    put_ok(f->ob, LADE_OUTBOX_SESSION, 6, 60); /* sessions 110 <= 150: drops 2 and 4 */
    order(f->ob, got, sizeof got);
    assert_string_equal(got, "3,6");
    assert_int_equal(stats(f->ob).dropped_state, 3);
    assert_int_equal(lade_outbox_put(f->ob, LADE_OUTBOX_SESSION, tid(7), got, 41, 0, NULL),
                     LADE_ERR_FULL);           /* 151 > 150 */
    put_ok(f->ob, LADE_OUTBOX_SESSION, 8, 40); /* exactly 150 */
    assert_int_equal(stats(f->ob).session_bytes, 150);
}

static void test_reopen_keeps_everything(void **state)
{
    struct fx *f = *state;
    char got[256];
    struct lade_outbox_limits lim = {3, 100000, 10, 200000};
    assert_int_equal(lade_outbox_open(f->path, &lim, &f->ob), LADE_OK);
    put_ok(f->ob, LADE_OUTBOX_STATE, 1, 10);
    put_ok(f->ob, LADE_OUTBOX_SESSION, 2, 10);
    put_ok(f->ob, LADE_OUTBOX_STATE, 3, 10);
    put_ok(f->ob, LADE_OUTBOX_SESSION, 4, 10); /* drops 1 */
    assert_int_equal(lade_outbox_attempt(f->ob, tid(2), 777), LADE_OK);
    lade_outbox_close(f->ob);
    f->ob = NULL;
    assert_int_equal(lade_outbox_open(f->path, &lim, &f->ob), LADE_OK);
    order(f->ob, got, sizeof got);
    assert_string_equal(got, "2,3,4");
    struct lade_outbox_stats st = stats(f->ob);
    assert_int_equal(st.dropped_state, 1);
    assert_int_equal(st.records, 3);
    struct lade_outbox_rec rec;
    assert_int_equal(lade_outbox_next(f->ob, 0, &rec), LADE_OK);
    assert_int_equal(rec.attempts, 1);
    assert_int_equal(rec.last_attempt_wall_s, 777);
    lade_outbox_rec_free(&rec);
    /* New records go after the old ones. */
    put_ok(f->ob, LADE_OUTBOX_SESSION, 5, 10); /* drops 3 */
    order(f->ob, got, sizeof got);
    assert_string_equal(got, "2,4,5");
}

/* ---- corrupt and unusable files ---- */

static void write_bytes(const char *path, const void *buf, size_t len, off_t at, bool trunc)
{
    int fd = open(path, O_WRONLY | O_CREAT | (trunc ? O_TRUNC : 0), 0644);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, buf, len, at), (ssize_t)len);
    close(fd);
}

static off_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? sb.st_size : -1;
}

/* Opens a corrupt file: it must be moved aside (content intact there) and a fresh, working
 * outbox started. */
static void expect_recovered(struct fx *f, off_t corrupt_size)
{
    char got[256];
    assert_int_equal(lade_outbox_open(f->path, NULL, &f->ob), LADE_OK);
    struct lade_outbox_stats st = stats(f->ob);
    assert_true(st.recovered_corrupt);
    assert_non_null(strstr(st.corrupt_path, "outbox.db.corrupt-"));
    assert_int_equal(file_size(st.corrupt_path), corrupt_size);
    assert_int_equal(st.records, 0);
    put_ok(f->ob, LADE_OUTBOX_SESSION, 1, 10);
    order(f->ob, got, sizeof got);
    assert_string_equal(got, "1");
    lade_outbox_close(f->ob);
    f->ob = NULL;
    /* The fresh file reopens cleanly. */
    assert_int_equal(lade_outbox_open(f->path, NULL, &f->ob), LADE_OK);
    assert_false(stats(f->ob).recovered_corrupt);
    assert_int_equal(stats(f->ob).records, 1);
}

static void fill_and_close(struct fx *f, int n)
{
    assert_int_equal(lade_outbox_open(f->path, NULL, &f->ob), LADE_OK);
    for (int i = 1; i <= n; i++)
        put_ok(f->ob, LADE_OUTBOX_SESSION, (unsigned)i, 1000);
    lade_outbox_close(f->ob); /* last close checkpoints the WAL into the file */
    f->ob = NULL;
}

static void test_corrupt_garbage(void **state)
{
    struct fx *f = *state;
    char junk[5000];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 7 + 3);
    write_bytes(f->path, junk, sizeof junk, 0, true);
    expect_recovered(f, (off_t)sizeof junk);
}

static void test_corrupt_truncated(void **state)
{
    struct fx *f = *state;
    fill_and_close(f, 40);
    off_t full = file_size(f->path);
    assert_true(full > 40 * 1000);
    assert_int_equal(truncate(f->path, full / 2 + 100), 0);
    expect_recovered(f, full / 2 + 100);
}

static void test_corrupt_pages(void **state)
{
    struct fx *f = *state;
    fill_and_close(f, 40);
    off_t full = file_size(f->path);
    /* Keep the header (first page) valid, scribble over b-tree pages. */
    char junk[4096 * 3];
    memset(junk, 0x5a, sizeof junk);
    write_bytes(f->path, junk, sizeof junk, 4096, false);
    expect_recovered(f, full);
}

static void test_unusable_paths(void **state)
{
    struct fx *f = *state;
    struct lade_outbox *ob = NULL;
    char p[400];
    /* A directory where the file should be: DB, and the directory is left alone. */
    assert_int_equal(mkdir(f->path, 0755), 0);
    assert_int_equal(lade_outbox_open(f->path, NULL, &ob), LADE_ERR_DB);
    assert_null(ob);
    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    /* A missing directory. */
    snprintf(p, sizeof p, "%s/missing/outbox.db", f->dir);
    assert_int_equal(lade_outbox_open(p, NULL, &ob), LADE_ERR_DB);
    /* A schema from the future is refused, not moved aside. */
    snprintf(p, sizeof p, "%s/future.db", f->dir);
    assert_int_equal(lade_outbox_open(p, NULL, &ob), LADE_OK);
    lade_outbox_close(ob);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE schema_version SET version = 99", 0, 0, 0),
                     SQLITE_OK);
    sqlite3_close(db);
    ob = NULL;
    assert_int_equal(lade_outbox_open(p, NULL, &ob), LADE_ERR_CONFIG);
    assert_null(ob);
    assert_true(file_size(p) > 0);
}

/* Read-only directory and file. root ignores permission bits, so the check runs in a child
 * that drops to "nobody" when started as root. Child exit: 0 ok, else the failed step. */
static void test_read_only(void **state)
{
    struct fx *f = *state;
    char fresh[400];
    fill_and_close(f, 3);
    snprintf(fresh, sizeof fresh, "%s/fresh.db", f->dir);
    assert_int_equal(chmod(f->path, 0444), 0);
    assert_int_equal(chmod(f->dir, 0555), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(10);
        struct lade_outbox *ob = NULL;
        if (lade_outbox_open(fresh, NULL, &ob) != LADE_ERR_DB || ob)
            _exit(11);
        lade_err err = lade_outbox_open(f->path, NULL, &ob);
        if (err == LADE_OK) {
            /* Opened (SQLite may read a read-only WAL database): writes must fail cleanly. */
            struct lade_outbox_stats st;
            if (lade_outbox_put(ob, LADE_OUTBOX_SESSION, tid(50), "x", 1, 0, NULL) != LADE_ERR_DB)
                _exit(12);
            if (lade_outbox_stats(ob, &st) != LADE_ERR_DB && !st.storage_fault)
                _exit(15);
            if (!st.storage_fault || !st.last_error[0] || st.recovered_corrupt)
                _exit(13);
            lade_outbox_close(ob);
        } else if (err != LADE_ERR_DB) {
            _exit(14);
        }
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(chmod(f->dir, 0755), 0);
    assert_int_equal(chmod(f->path, 0644), 0);
    /* Nothing was moved aside or lost. */
    char got[64];
    assert_int_equal(lade_outbox_open(f->path, NULL, &f->ob), LADE_OK);
    assert_false(stats(f->ob).recovered_corrupt);
    order(f->ob, got, sizeof got);
    assert_string_equal(got, "1,2,3");
}

/* Disk full, simulated with RLIMIT_FSIZE (writes past the limit fail with EFBIG). */
static void test_disk_full(void **state)
{
    struct fx *f = *state;
    struct rlimit old, lim;
    char payload[4000];
    memset(payload, 'p', sizeof payload);
    assert_int_equal(lade_outbox_open(f->path, NULL, &f->ob), LADE_OK);
    put_ok(f->ob, LADE_OUTBOX_SESSION, 1, 100);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = 256 * 1024;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    lade_err err = LADE_OK;
    unsigned n = 2, stored_ok = 1;
    for (; n < 400 && err == LADE_OK; n++) {
        err = lade_outbox_put(f->ob, LADE_OUTBOX_SESSION, tid(n), payload, sizeof payload, 0, NULL);
        if (err == LADE_OK)
            stored_ok++;
    }
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    assert_int_equal(err, LADE_ERR_DB);
    struct lade_outbox_stats st;
    if (lade_outbox_stats(f->ob, &st) != LADE_OK)
        memset(&st, 0, sizeof st);
    print_message("disk full after %u puts: %s\n", stored_ok, st.last_error);
    assert_true(st.faults >= 1);
    assert_int_equal(st.last_err, LADE_ERR_DB);
    assert_true(st.last_error[0]);
    /* Space again: the outbox works, every put that returned OK is there. */
    put_ok(f->ob, LADE_OUTBOX_SESSION, 1000, 10);
    st = stats(f->ob);
    assert_false(st.storage_fault);
    assert_int_equal(st.session_records, stored_ok + 1);
    lade_outbox_close(f->ob);
    f->ob = NULL;
    assert_int_equal(lade_outbox_open(f->path, NULL, &f->ob), LADE_OK);
    assert_false(stats(f->ob).recovered_corrupt);
    assert_int_equal(stats(f->ob).session_records, stored_ok + 1);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Not asserted: prints the median put latency with synchronous=FULL on this disk. */
static void test_put_latency(void **state)
{
    struct fx *f = *state;
    enum { N = 101 };
    uint64_t us[N];
    char payload[300];
    memset(payload, 's', sizeof payload);
    assert_int_equal(lade_outbox_open(f->path, NULL, &f->ob), LADE_OK);
    for (int i = 0; i < N; i++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        assert_int_equal(
            lade_outbox_put(f->ob, LADE_OUTBOX_SESSION, NULL, payload, sizeof payload, 0, NULL),
            LADE_OK);
        clock_gettime(CLOCK_MONOTONIC, &b);
        us[i] =
            (uint64_t)(b.tv_sec - a.tv_sec) * 1000000u + (uint64_t)(b.tv_nsec - a.tv_nsec) / 1000u;
    }
    qsort(us, N, sizeof us[0], cmp_u64);
    print_message("put latency (SESSION, 300 B, synchronous=FULL, %s): median %llu us, "
                  "p90 %llu us, max %llu us\n",
                  f->dir, (unsigned long long)us[N / 2], (unsigned long long)us[N * 9 / 10],
                  (unsigned long long)us[N - 1]);
}

/* The session in progress: checkpointed, found again after reopen, replaced atomically by its
 * finished record, and a schema-1 file gains the table without losing records. */
static void test_open_session(void **state)
{
    struct fx *f = *state;
    struct lade_outbox_rec rec;
    assert_int_equal(lade_outbox_open(f->path, NULL, &f->ob), LADE_OK);
    assert_int_equal(lade_outbox_session_open(f->ob, &rec), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_outbox_session_checkpoint(f->ob, "nothex", "x", 1, 1), LADE_ERR_INVAL);
    assert_int_equal(lade_outbox_session_checkpoint(f->ob, tid(7), "one", 3, 100), LADE_OK);
    assert_int_equal(lade_outbox_session_checkpoint(f->ob, tid(7), "two!", 4, 160), LADE_OK);
    lade_outbox_close(f->ob);
    f->ob = NULL;
    assert_int_equal(lade_outbox_open(f->path, NULL, &f->ob), LADE_OK);
    assert_int_equal(lade_outbox_session_open(f->ob, &rec), LADE_OK);
    assert_string_equal(rec.msg_id, tid(7));
    assert_int_equal(rec.created_wall_s, 160);
    assert_int_equal(rec.len, 4);
    assert_memory_equal(rec.payload, "two!", 4);
    lade_outbox_rec_free(&rec);
    /* A STATE put with the same id would be a different record: the checkpoint stays. */
    put_ok(f->ob, LADE_OUTBOX_STATE, 8, 10);
    assert_int_equal(lade_outbox_session_open(f->ob, &rec), LADE_OK);
    lade_outbox_rec_free(&rec);
    /* The finished record closes it. */
    assert_int_equal(lade_outbox_put(f->ob, LADE_OUTBOX_SESSION, tid(7), "done", 4, 200, NULL),
                     LADE_OK);
    assert_int_equal(lade_outbox_session_open(f->ob, &rec), LADE_ERR_NOT_FOUND);
    /* discard */
    assert_int_equal(lade_outbox_session_checkpoint(f->ob, tid(9), "z", 1, 300), LADE_OK);
    assert_int_equal(lade_outbox_session_discard(f->ob, tid(9)), LADE_OK);
    assert_int_equal(lade_outbox_session_discard(f->ob, tid(9)), LADE_OK);
    assert_int_equal(lade_outbox_session_open(f->ob, &rec), LADE_ERR_NOT_FOUND);
    lade_outbox_close(f->ob);
    f->ob = NULL;

    /* Downgrade the file to schema 1 by hand; open migrates it and keeps the records. */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "DROP TABLE open_session; UPDATE schema_version SET version = 1", 0, 0, 0),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(lade_outbox_open(f->path, NULL, &f->ob), LADE_OK);
    char got[256];
    order(f->ob, got, sizeof got);
    assert_string_equal(got, "8,7");
    assert_int_equal(lade_outbox_session_checkpoint(f->ob, tid(10), "y", 1, 400), LADE_OK);
}

int main(void)
{
    lade_log_set_level(LADE_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ids),
        cmocka_unit_test_setup_teardown(test_fifo_and_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ack_idempotent_and_retry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unusable_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_latency, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
