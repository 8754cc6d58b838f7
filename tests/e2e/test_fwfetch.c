/* e2e: the firmware download (include/lade/fwfetch.h) on a real event loop against a real
 * nginx with TLS on loopback (tests/e2e/harness_nginx.h), issue 6 "Download".
 *
 * One nginx serves the firmware hosts fw1/fw2/fw3.lade.test (certificates from the test CA) plus
 * evil.lade.test (a host that is not a firmware host), badca.lade.test (certificate from another
 * CA), wrongname.lade.test (a certificate for another name), all on one 127.0.0.1 port chosen by
 * SNI, and a plain-HTTP server on another port. Names come from a static hosts map (one test
 * goes through the charger's DNS stub with that map); down.lade.test maps to 127.0.0.2 where
 * nothing listens.
 *
 * Covers: full download + hash; first host down -> second; a server crash mid-body -> resumed
 * with Range/If-Range (206 in nginx's log); kill -9 of the downloading process -> a new fetch
 * resumes from the persisted state; a complete state -> no network at all; the image changed on
 * the server (new ETag) -> restart from 0; endless data -> cut at length + 1; Content-Length too
 * big -> refused before reading; 200 with an HTML page; 404 on every host -> one request each,
 * no retry loop; 503 -> bounded retries; the overall retry, byte and time budgets; redirect to
 * an allowed host -> followed; to a host not allowed, to http://, to another port -> refused;
 * certificate of another CA or for another name -> refused (and failover past them); plain HTTP
 * on the port -> refused; bad configs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "harness.h"
#include "harness_nginx.h"
#include "lade/dnsres.h"
#include "lade/fwfetch.h"
#include "lade/log.h"
#include "lade/loop.h"

#define IMAGE_LEN (1048576 + 12345) /* not a multiple of anything */
#define SLOW_RATE "1m"              /* nginx limit_rate of /fw/slow/: about 1.05 s per image */

static struct lade_loop *loop;
static struct hn_nginx ngx;
static char dir[512], ca[700], www[600], hosts_text[512];
static int port, http_port;
static uint8_t image_sha[32];
static uint8_t *image;

/* ---------------------------------------------------------------- helpers */

static void spin_until(const bool *flag, uint32_t timeout_ms)
{
    uint64_t end = h_now_ms() + timeout_ms;
    while (!*flag && h_now_ms() < end)
        assert_int_equal(lade_loop_run_once(loop, 20), LADE_OK);
    assert_true(*flag);
}

static void idle(uint32_t ms)
{
    uint64_t end = h_now_ms() + ms;
    while (h_now_ms() < end)
        assert_int_equal(lade_loop_run_once(loop, 10), LADE_OK);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

struct run {
    bool done;
    int calls;
    lade_err err;
    char reason[2048];
    struct lade_fwfetch_result res;
    char host[300];
    char notes[16384];
    int progress_calls;
    uint64_t last_offset;
    bool backwards_ok; /* a restart may move the offset back to 0 */
    uint64_t stop_at;  /* > 0: set `stop` when progress reaches it */
    bool stop;
    uint64_t t0;
    uint32_t ms;
};

static void on_done(void *ud, lade_err err, const char *reason,
                    const struct lade_fwfetch_result *res)
{
    struct run *r = ud;
    r->calls++;
    r->done = true;
    r->err = err;
    snprintf(r->reason, sizeof r->reason, "%s", reason);
    r->res = *res;
    snprintf(r->host, sizeof r->host, "%s", res->host);
    r->res.host = r->host;
    r->ms = (uint32_t)(h_now_ms() - r->t0);
}

static void on_note(void *ud, const char *text)
{
    struct run *r = ud;
    size_t n = strlen(r->notes);
    snprintf(r->notes + n, sizeof r->notes - n, "%s\n", text);
}

static void on_progress(void *ud, const struct lade_fwfetch_progress *p)
{
    struct run *r = ud;
    r->progress_calls++;
    assert_true(p->offset <= p->length);
    assert_int_equal(p->length, IMAGE_LEN);
    if (!r->backwards_ok)
        assert_true(p->offset >= r->last_offset);
    r->last_offset = p->offset;
    if (r->stop_at && p->offset >= r->stop_at)
        r->stop = true;
}

static const char *out_path(const char *name)
{
    static char buf[4][700];
    static int i;
    char *b = buf[i++ % 4];
    snprintf(b, 700, "%s/%s", dir, name);
    return b;
}

/* The usual config: image.bin's length and hash, the static map, quick retries. */
static struct lade_fwfetch_cfg cfg_for(const char *path, const char *const *hosts, size_t n,
                                       struct run *r, const char *dest)
{
    memset(r, 0, sizeof *r);
    struct lade_fwfetch_cfg c = {
        .hosts = hosts,
        .n_hosts = n,
        .port = (uint16_t)port,
        .path = path,
        .ca_file = ca,
        .expected_len = IMAGE_LEN,
        .expected_sha256 = image_sha,
        .dest_path = out_path(dest),
        .retry_delay_ms = 100,
        .retry_delay_max_ms = 400,
        .connect_ms = 3000,
        .hosts_text = hosts_text,
        .progress = on_progress,
        .note = on_note,
        .done = on_done,
        .ud = r,
    };
    return c;
}

static void start(struct lade_fwfetch_cfg *c, struct run *r, struct lade_fwfetch **f)
{
    r->t0 = h_now_ms();
    assert_int_equal(lade_fwfetch_new(loop, c, f), LADE_OK);
    assert_false(r->done); /* never from inside new */
}

/* Runs a fetch to its end (deadline 30 s), frees it, checks exactly one done. */
static void run(struct lade_fwfetch_cfg *c, struct run *r)
{
    struct lade_fwfetch *f;
    start(c, r, &f);
    spin_until(&r->done, 30000);
    lade_fwfetch_free(f);
    idle(20);
    assert_int_equal(r->calls, 1);
    fprintf(stderr, "    %s -> %s (%u ms, %u attempt(s), %llu bytes received)%s%s\n", c->path,
            r->err == LADE_OK ? "ok" : lade_strerror(r->err), r->ms, r->res.attempts,
            (unsigned long long)r->res.bytes_total, r->reason[0] ? ": " : "", r->reason);
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!strstr(hay, needle)) {
        fprintf(stderr, "expected \"%s\" in:\n%s\n", needle, hay);
        fail();
    }
}

/* The file holds exactly the image. */
static void assert_image_file(const char *name)
{
    const char *p = out_path(name);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, IMAGE_LEN);
    uint8_t *buf = malloc(IMAGE_LEN);
    assert_non_null(buf);
    FILE *fp = fopen(p, "rb");
    assert_non_null(fp);
    assert_int_equal(fread(buf, 1, IMAGE_LEN, fp), IMAGE_LEN);
    fclose(fp);
    assert_memory_equal(buf, image, IMAGE_LEN);
    free(buf);
}

static void assert_ok(const struct run *r)
{
    if (r->err != LADE_OK)
        fprintf(stderr, "failed: %s\nnotes:\n%s\n", r->reason, r->notes);
    assert_int_equal(r->err, LADE_OK);
    assert_int_equal(r->res.length, IMAGE_LEN);
    assert_memory_equal(r->res.sha256, image_sha, 32);
}

static uint64_t state_offset(const char *state)
{
    char *s = h_read_file(state);
    assert_non_null(s);
    struct lade_fwfetch_state st;
    assert_int_equal(lade_fwfetch_state_decode(s, strlen(s), &st), LADE_OK);
    free(s);
    return st.offset;
}

static int log_count(const char *needle)
{
    return hn_log_count(&ngx, needle);
}

/* ---------------------------------------------------------------- the servers */

static void sha256(const uint8_t *p, size_t n, uint8_t out[32])
{
    unsigned int len = 0;
    assert_int_equal(EVP_Digest(p, n, out, &len, EVP_sha256(), NULL), 1);
}

static char *server_block(const char *name, const char *cert_dir, const char *extra)
{
    char *b = malloc(32768); /* the -O2 build counts every argument at its largest */
    assert_non_null(b);
    snprintf(b, 32768,
             "server {\n"
             "    listen 127.0.0.1:%d ssl;\n"
             "    server_name %s;\n"
             "    ssl_certificate %s/server.pem;\n"
             "    ssl_certificate_key %s/server.key;\n"
             "    root %s;\n"
             "    location /fw/slow/ { limit_rate " SLOW_RATE "; }\n"
             "    location = /fw/html.bin { types { } default_type \"text/html; charset=utf-8\"; "
             "alias %s/page.html; }\n"
             "    location = /fw/endless.bin { alias %s/endless; sub_filter_types *; "
             "sub_filter 'lade-never-matches' ''; }\n"
             "    location = /fw/busy.bin { return 503; }\n"
             "%s"
             "}\n",
             port, name, cert_dir, cert_dir, www, www, www, extra ? extra : "");
    return b;
}

static int setup(void **state)
{
    (void)state;
    lade_log_set_level(LADE_LOG_WARN);
    snprintf(dir, sizeof dir, "%s", h_tmpdir("fwfetch"));
    port = h_free_port();
    http_port = h_free_port();
    while (http_port == port)
        http_port = h_free_port();

    /* PKI: the firmware CA and another one. */
    char ca_dir[600], other_ca[600], d[700];
    snprintf(ca_dir, sizeof ca_dir, "%s/ca", dir);
    snprintf(other_ca, sizeof other_ca, "%s/ca-other", dir);
    h_make_ca(ca_dir, "lade firmware test CA");
    h_make_ca(other_ca, "some other CA");
    snprintf(ca, sizeof ca, "%s/ca.pem", ca_dir);
    const char *good[] = {"fw1.lade.test", "fw2.lade.test", "fw3.lade.test", "evil.lade.test"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(d, sizeof d, "%s/certs/%s", dir, good[i]);
        h_make_server_cert(d, ca_dir, good[i]);
    }
    snprintf(d, sizeof d, "%s/certs/badca.lade.test", dir);
    h_make_server_cert(d, other_ca, "badca.lade.test");

    /* The files. */
    snprintf(www, sizeof www, "%s/www", dir);
    assert_int_equal(h_sh("mkdir -p '%s/fw/slow' && openssl rand -out '%s/fw/image.bin' %d && "
                          "cp '%s/fw/image.bin' '%s/fw/slow/image.bin' && "
                          "cp '%s/fw/image.bin' '%s/fw/slow/changing.bin' && "
                          "cp '%s/fw/image.bin' '%s/fw/big.bin' && "
                          "head -c 1000 /dev/urandom >> '%s/fw/big.bin' && "
                          "truncate -s 1G '%s/endless' && chmod -R a+rX '%s'",
                          www, www, IMAGE_LEN, www, www, www, www, www, www, www, www, www),
                     0);
    h_write_file(out_path("www/page.html"),
                 "<!DOCTYPE html>\n<html><body><h1>Maintenance</h1>Please come back later."
                 "</body></html>\n");
    char img[700];
    snprintf(img, sizeof img, "%s/fw/image.bin", www);
    FILE *fp = fopen(img, "rb");
    assert_non_null(fp);
    image = malloc(IMAGE_LEN);
    assert_non_null(image);
    assert_int_equal(fread(image, 1, IMAGE_LEN, fp), IMAGE_LEN);
    fclose(fp);
    sha256(image, IMAGE_LEN, image_sha);

    /* The servers. */
    char fw1_extra[2048], fw2_extra[1024];
    snprintf(
        fw1_extra, sizeof fw1_extra,
        "    location = /fw/redir-ok.bin { return 302 https://fw2.lade.test:%d/fw/image.bin; }\n"
        "    location = /fw/redir-rel.bin { return 301 /fw/image.bin; }\n"
        "    location = /fw/redir-evil.bin { return 302 "
        "https://evil.lade.test:%d/fw/image.bin; }\n"
        "    location = /fw/redir-http.bin { return 302 http://fw2.lade.test:%d/fw/image.bin; "
        "}\n"
        "    location = /fw/redir-port.bin { return 307 "
        "https://fw2.lade.test:%d/fw/image.bin; }\n"
        "    location = /fw/redir-loop.bin { return 302 "
        "https://fw1.lade.test:%d/fw/redir-loop.bin; }\n",
        port, port, http_port, http_port, port);
    snprintf(fw2_extra, sizeof fw2_extra,
             "    location = /fw/redir-evil.bin { alias %s/fw/image.bin; }\n", www);
    char c1[700], c2[700], c3[700], ce[700], cb[700];
    snprintf(c1, sizeof c1, "%s/certs/fw1.lade.test", dir);
    snprintf(c2, sizeof c2, "%s/certs/fw2.lade.test", dir);
    snprintf(c3, sizeof c3, "%s/certs/fw3.lade.test", dir);
    snprintf(ce, sizeof ce, "%s/certs/evil.lade.test", dir);
    snprintf(cb, sizeof cb, "%s/certs/badca.lade.test", dir);
    char *s1 = server_block("fw1.lade.test", c1, fw1_extra);
    char *s2 = server_block("fw2.lade.test", c2, fw2_extra);
    char *s3 = server_block("fw3.lade.test", c3, NULL);
    char *se = server_block("evil.lade.test", ce, NULL);
    char *sb = server_block("badca.lade.test", cb, NULL);
    char *sw = server_block("wrongname.lade.test", c1, NULL); /* fw1's certificate */
    char *all = malloc(32768);
    assert_non_null(all);
    snprintf(all, 32768,
             "%s%s%s%s%s%s"
             "server {\n    listen 127.0.0.1:%d;\n    server_name plain.lade.test;\n"
             "    root %s;\n}\n",
             s1, s2, s3, se, sb, sw, http_port, www);
    hn_prepare(&ngx, "fwfetch-nginx");
    int ports[2] = {port, http_port};
    hn_start(&ngx, all, ports, 2);
    free(s1);
    free(s2);
    free(s3);
    free(se);
    free(sb);
    free(sw);
    free(all);

    snprintf(hosts_text, sizeof hosts_text,
             "127.0.0.1 fw1.lade.test fw2.lade.test fw3.lade.test evil.lade.test\n"
             "127.0.0.1 badca.lade.test wrongname.lade.test plain.lade.test\n"
             "127.0.0.2 down.lade.test # nothing listens there\n");
    assert_int_equal(lade_loop_new(&loop), LADE_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    lade_loop_free(loop);
    hn_stop(&ngx);
    free(image);
    return 0;
}

/* ---------------------------------------------------------------- tests */

static const char *const FW123[] = {"fw1.lade.test", "fw2.lade.test", "fw3.lade.test"};

/* The whole image from the first host, names through the charger's DNS stub. */
static void test_full(void **state)
{
    (void)state;
    struct lade_dnsres_opts o = {.hosts_text = hosts_text, .hosts_len = strlen(hosts_text)};
    struct lade_dnsres *dns;
    assert_int_equal(lade_dnsres_new(loop, &o, &dns), LADE_OK);
    int fds = count_fds();
    struct run r;
    struct lade_fwfetch_cfg c = cfg_for("/fw/image.bin", FW123, 3, &r, "full.bin");
    c.hosts_text = NULL;
    c.dnsres = dns;
    run(&c, &r);
    assert_ok(&r);
    assert_int_equal(r.res.attempts, 1);
    assert_int_equal(r.res.bytes_total, IMAGE_LEN);
    assert_int_equal(r.res.resumes, 0);
    assert_int_equal(r.res.restarts, 0);
    assert_string_equal(r.host, "fw1.lade.test");
    assert_true(r.progress_calls > 0);
    assert_int_equal(r.last_offset, IMAGE_LEN);
    assert_image_file("full.bin");
    assert_int_equal(log_count("fw1.lade.test 200 \"GET /fw/image.bin HTTP/1.1\" range=\"-\""), 1);
    assert_int_equal(count_fds(), fds); /* every socket closed */
    lade_dnsres_free(dns);
}

/* down.lade.test refuses connections: fw2 serves at once. */
static void test_first_host_down(void **state)
{
    (void)state;
    const char *hosts[] = {"down.lade.test", "fw2.lade.test"};
    struct run r;
    int before = log_count("fw2.lade.test 200 \"GET /fw/image.bin");
    struct lade_fwfetch_cfg c = cfg_for("/fw/image.bin", hosts, 2, &r, "down.bin");
    run(&c, &r);
    assert_ok(&r);
    assert_string_equal(r.host, "fw2.lade.test");
    assert_int_equal(r.res.attempts, 2);
    assert_contains(r.notes, "down.lade.test: cannot connect");
    assert_int_equal(log_count("fw2.lade.test 200 \"GET /fw/image.bin"), before + 1);
    assert_true(r.ms < 5000); /* failover without a back-off */
    assert_image_file("down.bin");
}

/* A sink of the updater's kind (here memory: writes at offsets, reads back). */
struct memsink {
    uint8_t *buf;
    uint64_t writes;
};
static lade_err mem_write(void *ud, uint64_t off, const uint8_t *p, size_t n)
{
    struct memsink *m = ud;
    assert_true(off + n <= IMAGE_LEN);
    memcpy(m->buf + off, p, n);
    m->writes++;
    return LADE_OK;
}
static lade_err mem_read(void *ud, uint64_t off, uint8_t *p, size_t n)
{
    struct memsink *m = ud;
    memcpy(p, m->buf + off, n);
    return LADE_OK;
}

/* nginx's worker dies in the middle of the body: the connection is cut, the fetch resumes
 * with Range + If-Range and nginx answers 206 from where it broke. */
static void test_truncated_then_resume(void **state)
{
    (void)state;
    struct memsink m = {calloc(1, IMAGE_LEN), 0};
    assert_non_null(m.buf);
    struct run r;
    struct lade_fwfetch_cfg c = cfg_for("/fw/slow/image.bin", FW123, 1, &r, "unused");
    c.dest_path = NULL;
    c.sink = (struct lade_fwfetch_sink){mem_write, NULL, mem_read, &m};
    r.stop_at = 300000;
    struct lade_fwfetch *f;
    start(&c, &r, &f);
    spin_until(&r.stop, 20000);
    assert_true(hn_kill_workers(&ngx) >= 1);
    spin_until(&r.done, 20000);
    lade_fwfetch_free(f);
    fprintf(stderr, "    truncated at >= 300000 then resumed: %u ms, %u attempts\n", r.ms,
            r.res.attempts);
    assert_ok(&r);
    assert_int_equal(r.res.resumes, 1);
    assert_int_equal(r.res.restarts, 0);
    assert_int_equal(r.res.attempts, 2);
    assert_true(r.res.bytes_total < IMAGE_LEN + 100000); /* no second full download */
    assert_memory_equal(m.buf, image, IMAGE_LEN);
    assert_contains(r.notes, "fw1.lade.test: transfer broke at ");
    assert_contains(r.notes, "fw1.lade.test: resuming at ");
    /* The resumed request in nginx's log: 206 with Range and If-Range. */
    assert_int_equal(log_count("fw1.lade.test 206 \"GET /fw/slow/image.bin HTTP/1.1\" "
                               "range=\"bytes="),
                     1);
    /* with If-Range: the ETag (nginx logs its quotes as \x22) */
    assert_int_equal(log_count("206 \"GET /fw/slow/image.bin HTTP/1.1\" range=\"bytes="), 1);
    assert_true(log_count("if_range=\"\\x22") >= 1);
    free(m.buf);
}

/* kill -9 of the process that downloads: a new fetch resumes from what the state file says. */
static void test_kill9_resume(void **state)
{
    (void)state;
    char st_path[700];
    snprintf(st_path, sizeof st_path, "%s/kill9.state", dir);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct lade_loop *l2;
        if (lade_loop_new(&l2) != LADE_OK)
            _exit(2);
        struct run r2;
        struct lade_fwfetch_cfg c2 = cfg_for("/fw/slow/image.bin", FW123, 3, &r2, "kill9.bin");
        c2.state_path = st_path;
        c2.persist_kib = 64;
        struct lade_fwfetch *f2;
        if (lade_fwfetch_new(l2, &c2, &f2) != LADE_OK)
            _exit(3);
        while (!r2.done)
            if (lade_loop_run_once(l2, 100) != LADE_OK)
                _exit(4);
        _exit(5); /* must not get here: it is killed first */
    }
    h_track(pid);
    /* Wait until the state file records at least 400 KiB, then kill -9. */
    uint64_t end = h_now_ms() + 20000;
    uint64_t off = 0;
    while (h_now_ms() < end) {
        char *s = h_read_file(st_path);
        struct lade_fwfetch_state st;
        if (s && lade_fwfetch_state_decode(s, strlen(s), &st) == LADE_OK)
            off = st.offset;
        free(s);
        if (off >= 400 * 1024)
            break;
        idle(10);
    }
    kill(pid, SIGKILL);
    int wst = 0;
    waitpid(pid, &wst, 0);
    assert_true(WIFSIGNALED(wst));
    off = state_offset(st_path);
    assert_true(off >= 400 * 1024 && off < IMAGE_LEN);

    struct run r;
    struct lade_fwfetch_cfg c = cfg_for("/fw/slow/image.bin", FW123, 3, &r, "kill9.bin");
    c.state_path = st_path;
    run(&c, &r);
    assert_ok(&r);
    assert_int_equal(r.res.resumed_from, off);
    assert_int_equal(r.res.resumes, 1);
    assert_int_equal(r.res.bytes_total, IMAGE_LEN - off);
    assert_contains(r.notes, "resuming /fw/slow/image.bin at ");
    char needle[200];
    snprintf(needle, sizeof needle, "206 \"GET /fw/slow/image.bin HTTP/1.1\" range=\"bytes=%llu-\"",
             (unsigned long long)off);
    assert_int_equal(log_count(needle), 1);
    assert_image_file("kill9.bin");
    assert_int_equal(state_offset(st_path), IMAGE_LEN); /* complete */

    /* Run again: the state says complete, the hash is checked, no request at all. */
    int requests = log_count("GET ");
    c = cfg_for("/fw/slow/image.bin", FW123, 3, &r, "kill9.bin");
    c.state_path = st_path;
    run(&c, &r);
    assert_ok(&r);
    assert_int_equal(r.res.attempts, 0);
    assert_int_equal(r.res.bytes_total, 0);
    assert_contains(r.notes, "already complete");
    assert_int_equal(log_count("GET "), requests);

    /* A state for another image (other hash) is ignored: a fresh download from 0. */
    uint8_t other[32];
    memcpy(other, image_sha, 32);
    other[0] ^= 1;
    c = cfg_for("/fw/image.bin", FW123, 3, &r, "kill9.bin");
    c.state_path = st_path;
    c.expected_sha256 = other;
    run(&c, &r);
    assert_int_equal(r.err, LADE_ERR_AUTH); /* and the hash mismatch is refused */
    assert_int_equal(r.res.resumed_from, 0);
    assert_contains(r.reason, "image hash mismatch");
}

/* The image changed on the server between two runs (new ETag): If-Range gets the whole new
 * image (200) and the fetch restarts from 0, saying so. */
static void test_etag_changed(void **state)
{
    (void)state;
    char st_path[700];
    snprintf(st_path, sizeof st_path, "%s/changed.state", dir);
    struct run r;
    struct lade_fwfetch_cfg c = cfg_for("/fw/slow/changing.bin", FW123, 3, &r, "changed.bin");
    c.state_path = st_path;
    r.stop_at = 200000;
    struct lade_fwfetch *f;
    start(&c, &r, &f);
    spin_until(&r.stop, 20000);
    lade_fwfetch_free(f); /* a clean stop saves the state */
    uint64_t off = state_offset(st_path);
    assert_true(off >= 200000);
    /* Same bytes, new modification time: nginx's ETag changes. */
    assert_int_equal(h_sh("touch -d '2030-01-01 00:00:00' '%s/fw/slow/changing.bin'", www), 0);

    c = cfg_for("/fw/slow/changing.bin", FW123, 3, &r, "changed.bin");
    c.state_path = st_path;
    r.backwards_ok = true;
    run(&c, &r);
    assert_ok(&r);
    assert_int_equal(r.res.resumed_from, off);
    assert_int_equal(r.res.restarts, 1);
    assert_int_equal(r.res.resumes, 0);
    assert_int_equal(r.res.bytes_total, IMAGE_LEN);
    assert_contains(r.notes, "image changed on the server (ETag ");
    assert_contains(r.notes, "restarting from 0");
    char needle[200];
    snprintf(needle, sizeof needle,
             "fw1.lade.test 200 \"GET /fw/slow/changing.bin HTTP/1.1\" range=\"bytes=%llu-\"",
             (unsigned long long)off);
    assert_int_equal(log_count(needle), 1);
    assert_image_file("changed.bin");
}

/* A body that does not end (chunked, no Content-Length): cut at length + 1, refused. */
static void test_endless(void **state)
{
    (void)state;
    struct run r;
    struct lade_fwfetch_cfg c = cfg_for("/fw/endless.bin", FW123, 1, &r, "endless.bin");
    c.expected_sha256 = NULL;
    run(&c, &r);
    assert_int_equal(r.err, LADE_ERR_TOO_BIG);
    assert_contains(r.reason, "server sent more than the manifest's 1060921 bytes");
    assert_contains(r.reason, "every firmware host failed");
    assert_int_equal(r.res.bytes_total, IMAGE_LEN + 1);
    assert_int_equal(r.res.attempts, 1);
    assert_int_equal(r.res.length, 0); /* the bytes are dropped */
}

/* Content-Length above the manifest's length: refused before a body byte is read. */
static void test_too_long(void **state)
{
    (void)state;
    struct run r;
    struct lade_fwfetch_cfg c = cfg_for("/fw/big.bin", FW123, 3, &r, "big.bin");
    run(&c, &r);
    assert_int_equal(r.err, LADE_ERR_TOO_BIG);
    assert_contains(r.reason, "Content-Length 1061921 is more than the manifest's 1060921 bytes");
    assert_int_equal(r.res.bytes_total, 0);
    assert_int_equal(r.res.attempts, 3); /* each host once, none twice */
}

/* 200 with an HTML page (a captive portal, a maintenance page). */
static void test_html(void **state)
{
    (void)state;
    struct run r;
    struct lade_fwfetch_cfg c = cfg_for("/fw/html.bin", FW123, 1, &r, "html.bin");
    run(&c, &r);
    assert_int_equal(r.err, LADE_ERR_PROTO);
    assert_contains(r.reason, "server returned an HTML page");
    assert_int_equal(r.res.bytes_total, 0);
}

/* 404 everywhere: one request per host, then a clear end — no retry loop. */
static void test_404_budget(void **state)
{
    (void)state;
    struct run r;
    struct lade_fwfetch_cfg c = cfg_for("/fw/missing.bin", FW123, 3, &r, "missing.bin");
    run(&c, &r);
    assert_int_equal(r.err, LADE_ERR_NOT_FOUND);
    assert_contains(r.reason, "every firmware host failed (fw1.lade.test: HTTP 404 Not Found; "
                              "fw2.lade.test: HTTP 404 Not Found; fw3.lade.test: HTTP 404 Not "
                              "Found)");
    assert_int_equal(r.res.attempts, 3);
    idle(500);
    assert_int_equal(log_count("404 \"GET /fw/missing.bin"), 3);
}

/* 503 (transient): retried, but per host and overall only so often. */
static void test_503_budgets(void **state)
{
    (void)state;
    struct run r;
    const char *hosts[] = {"fw1.lade.test", "fw2.lade.test"};
    struct lade_fwfetch_cfg c = cfg_for("/fw/busy.bin", hosts, 2, &r, "busy.bin");
    run(&c, &r);
    assert_int_equal(r.err, LADE_ERR_IO);
    assert_contains(r.reason, "every firmware host failed");
    assert_contains(r.reason, "HTTP 503 Service Unavailable");
    assert_int_equal(r.res.attempts, 2 * LADE_FWFETCH_RETRIES);
    idle(300);
    assert_int_equal(log_count("503 \"GET /fw/busy.bin"), 2 * LADE_FWFETCH_RETRIES);

    /* The overall budget ends it earlier. */
    c = cfg_for("/fw/busy.bin", hosts, 2, &r, "busy.bin");
    c.max_attempts = 4;
    run(&c, &r);
    assert_int_equal(r.err, LADE_ERR_IO);
    assert_contains(r.reason, "retry budget of 4 failed attempts used up");
    assert_int_equal(r.res.attempts, 4);
}

/* The time and byte budgets. */
static void test_time_and_byte_budget(void **state)
{
    (void)state;
    struct run r;
    struct lade_fwfetch_cfg c = cfg_for("/fw/slow/image.bin", FW123, 3, &r, "slow.bin");
    c.total_ms = 500; /* the image takes about 1 s at the slow rate */
    run(&c, &r);
    assert_int_equal(r.err, LADE_ERR_TIMEOUT);
    assert_contains(r.reason, "time budget");
    assert_true(r.ms >= 500 && r.ms < 3000);
    assert_true(r.res.bytes_total > 0 && r.res.bytes_total < IMAGE_LEN);

    c = cfg_for("/fw/image.bin", FW123, 3, &r, "bytes.bin");
    c.max_bytes = 100000;
    run(&c, &r);
    assert_int_equal(r.err, LADE_ERR_TOO_BIG);
    assert_contains(r.reason, "byte budget of 100000 bytes used up");
    assert_true(r.res.bytes_total <= 100000 + 16384 + 1);
    assert_int_equal(r.res.attempts, 1);
}

/* A redirect to another firmware host (and a relative one) is followed. */
static void test_redirect_allowed(void **state)
{
    (void)state;
    struct run r;
    const char *hosts[] = {"fw1.lade.test", "fw2.lade.test"};
    int before = log_count("fw2.lade.test 200 \"GET /fw/image.bin");
    struct lade_fwfetch_cfg c = cfg_for("/fw/redir-ok.bin", hosts, 2, &r, "redir.bin");
    run(&c, &r);
    assert_ok(&r);
    assert_int_equal(r.res.redirects, 1);
    assert_int_equal(r.res.attempts, 1);
    assert_string_equal(r.host, "fw2.lade.test");
    assert_contains(r.notes, "fw1.lade.test: HTTP 302 redirect to https://fw2.lade.test:");
    assert_int_equal(log_count("fw1.lade.test 302 \"GET /fw/redir-ok.bin"), 1);
    assert_int_equal(log_count("fw2.lade.test 200 \"GET /fw/image.bin"), before + 1);
    assert_image_file("redir.bin");

    c = cfg_for("/fw/redir-rel.bin", hosts, 2, &r, "redir.bin");
    run(&c, &r);
    assert_ok(&r);
    assert_int_equal(r.res.redirects, 1);
    assert_string_equal(r.host, "fw1.lade.test");

    /* A redirect loop ends after max_redirects. */
    c = cfg_for("/fw/redir-loop.bin", hosts, 1, &r, "redir.bin");
    run(&c, &r);
    assert_int_equal(r.err, LADE_ERR_PROTO);
    assert_contains(r.reason, "more than 3 redirects");
}

/* Redirects to a host that is not a firmware host, to http://, to another port: refused. */
static void test_redirect_refused(void **state)
{
    (void)state;
    struct run r;
    const char *fw1[] = {"fw1.lade.test"};
    struct lade_fwfetch_cfg c = cfg_for("/fw/redir-evil.bin", fw1, 1, &r, "evil.bin");
    run(&c, &r);
    assert_int_equal(r.err, LADE_ERR_PROTO);
    assert_contains(r.reason, "redirect to evil.lade.test refused: not a firmware host");
    assert_int_equal(log_count("evil.lade.test "), 0); /* never asked */

    /* ... and the next host serves. */
    const char *fw12[] = {"fw1.lade.test", "fw2.lade.test"};
    c = cfg_for("/fw/redir-evil.bin", fw12, 2, &r, "evil.bin");
    run(&c, &r);
    assert_ok(&r);
    assert_string_equal(r.host, "fw2.lade.test");
    assert_contains(r.notes, "fw1.lade.test: redirect to evil.lade.test refused");
    assert_int_equal(log_count("evil.lade.test "), 0);

    int fw2_gets = log_count("fw2.lade.test 200 \"GET /fw/image.bin");
    c = cfg_for("/fw/redir-http.bin", fw12, 1, &r, "evil.bin");
    run(&c, &r);
    assert_int_equal(r.err, LADE_ERR_PROTO);
    assert_contains(r.reason, "redirect to a URL with scheme http refused: https only");
    assert_int_equal(log_count("fw2.lade.test 200 \"GET /fw/image.bin"), fw2_gets);

    c = cfg_for("/fw/redir-port.bin", fw12, 2, &r, "evil.bin");
    run(&c, &r);
    assert_int_equal(r.err, LADE_ERR_NOT_FOUND); /* fw2 has no such file */
    assert_contains(r.reason, "fw1.lade.test: redirect to fw2.lade.test port ");
    assert_contains(r.reason, "refused: firmware hosts are asked on port");
}

/* A certificate from another CA, a certificate for another name: refused, never retried; a
 * good host after them serves. */
static void test_wrong_certificate(void **state)
{
    (void)state;
    struct run r;
    const char *bad[] = {"badca.lade.test", "wrongname.lade.test"};
    struct lade_fwfetch_cfg c = cfg_for("/fw/image.bin", bad, 2, &r, "cert.bin");
    run(&c, &r);
    assert_int_equal(r.err, LADE_ERR_CERT);
    assert_contains(r.reason, "badca.lade.test: server certificate refused");
    assert_contains(r.reason, "wrongname.lade.test: server certificate refused");
    assert_int_equal(r.res.attempts, 2);
    assert_int_equal(r.res.bytes_total, 0);
    assert_int_equal(log_count("badca.lade.test "), 0); /* no request on an untrusted link */
    assert_int_equal(log_count("wrongname.lade.test "), 0);

    const char *mixed[] = {"badca.lade.test", "wrongname.lade.test", "fw3.lade.test"};
    c = cfg_for("/fw/image.bin", mixed, 3, &r, "cert.bin");
    run(&c, &r);
    assert_ok(&r);
    assert_string_equal(r.host, "fw3.lade.test");
    assert_int_equal(r.res.attempts, 3);
}

/* Plain HTTP on the port: the TLS handshake fails; nothing is taken. */
static void test_plain_http(void **state)
{
    (void)state;
    struct run r;
    const char *hosts[] = {"plain.lade.test"};
    struct lade_fwfetch_cfg c = cfg_for("/fw/image.bin", hosts, 1, &r, "plain.bin");
    c.port = (uint16_t)http_port;
    run(&c, &r);
    assert_int_equal(r.err, LADE_ERR_TLS);
    assert_contains(r.reason, "TLS handshake failed");
    assert_int_equal(r.res.bytes_total, 0);
    assert_int_equal(r.res.attempts, 1);
}

/* Bad configurations are refused at once, without a callback. */
static void test_bad_config(void **state)
{
    (void)state;
    struct run r;
    struct lade_fwfetch *f = NULL;
    const char *with_scheme[] = {"https://fw1.lade.test"};
    struct lade_fwfetch_cfg c = cfg_for("/fw/image.bin", with_scheme, 1, &r, "cfg.bin");
    assert_int_equal(lade_fwfetch_new(loop, &c, &f), LADE_ERR_INVAL);
    const char *with_port[] = {"fw1.lade.test:443"};
    c = cfg_for("/fw/image.bin", with_port, 1, &r, "cfg.bin");
    assert_int_equal(lade_fwfetch_new(loop, &c, &f), LADE_ERR_INVAL);
    c = cfg_for("fw/image.bin", FW123, 1, &r, "cfg.bin");
    assert_int_equal(lade_fwfetch_new(loop, &c, &f), LADE_ERR_INVAL);
    c = cfg_for("/fw/image.bin", FW123, 1, &r, "cfg.bin");
    c.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(lade_fwfetch_new(loop, &c, &f), LADE_ERR_CONFIG);
    c = cfg_for("/fw/image.bin", FW123, 1, &r, "cfg.bin");
    c.hosts_text = NULL; /* no resolver: curl's own is never used */
    assert_int_equal(lade_fwfetch_new(loop, &c, &f), LADE_ERR_INVAL);
    c = cfg_for("/fw/image.bin", FW123, 1, &r, "cfg.bin");
    c.expected_len = 0;
    assert_int_equal(lade_fwfetch_new(loop, &c, &f), LADE_ERR_INVAL);
    assert_null(f);
    idle(50);
    assert_false(r.done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_first_host_down),
        cmocka_unit_test(test_truncated_then_resume),
        cmocka_unit_test(test_kill9_resume),
        cmocka_unit_test(test_etag_changed),
        cmocka_unit_test(test_endless),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_html),
        cmocka_unit_test(test_404_budget),
        cmocka_unit_test(test_503_budgets),
        cmocka_unit_test(test_time_and_byte_budget),
        cmocka_unit_test(test_redirect_allowed),
        cmocka_unit_test(test_redirect_refused),
        cmocka_unit_test(test_wrong_certificate),
        cmocka_unit_test(test_plain_http),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
