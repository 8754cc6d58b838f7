/* e2e: lade-charger against a misbehaving hub.
 *
 * A fake broker (OpenSSL server in a child process, certificate from a test CA) accepts TLS
 * connections and, on each successive connection, answers CONNECT with a CONNACK followed by
 * one kind of malformed MQTT (bad remaining length, oversized packet, bad UTF-8 topic, a QoS 2
 * publish, truncation then close). The charger must drop each connection with a logged reason,
 * never crash, and come back; the last connection behaves and the charger goes online.
 * Also: a server certificate from another CA, and a certificate for another host name, are
 * refused (the charger never sends CONNECT to them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "harness.h"

struct script {
    const uint8_t *bytes;
    size_t len;
    bool then_close;
};

/* CONNACK accepted, then the fault. */
static const uint8_t bad_remaining_length[] = {0x20, 0x02, 0x00, 0x00, 0x30,
                                               0xff, 0xff, 0xff, 0xff, 0x7f};
static const uint8_t oversized[] = {0x20, 0x02, 0x00, 0x00, 0x30, 0xff, 0xff, 0x7f}; /* 2 MB */
static const uint8_t bad_utf8_topic[] = {0x20, 0x02, 0x00, 0x00, 0x30, 0x06,
                                         0x00, 0x02, 0xc0, 0xaf, 'h',  'i'};
static const uint8_t qos2_publish[] = {0x20, 0x02, 0x00, 0x00, 0x34, 0x07, 0x00,
                                       0x01, 'a',  0x00, 0x01, 'h',  'i'};
static const uint8_t truncated[] = {0x20, 0x02, 0x00, 0x00, 0x30, 0x10, 0x00, 0x05, 'a'};
static const uint8_t good[] = {0x20, 0x02, 0x00, 0x00};

static const struct script scripts[] = {
    {bad_remaining_length, sizeof bad_remaining_length, false},
    {oversized, sizeof oversized, false},
    {bad_utf8_topic, sizeof bad_utf8_topic, false},
    {qos2_publish, sizeof qos2_publish, false},
    {truncated, sizeof truncated, true},
    {good, sizeof good, false},
};
#define NSCRIPTS (sizeof scripts / sizeof scripts[0])

/* Runs in the child: serves connections in order, logs one line per connection. */
static void fake_broker(int port, const char *dir, const char *log_path)
{
    FILE *log = fopen(log_path, "a");
    setvbuf(log, NULL, _IOLBF, 0);
    char cert[600], key[600];
    snprintf(cert, sizeof cert, "%s/server.pem", dir);
    snprintf(key, sizeof key, "%s/server.key", dir);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx && getenv("FAKE_TLS11_ONLY")) {
        /* An outdated hub: TLS 1.1 at most (needs security level 0 in OpenSSL 3). */
        SSL_CTX_set_security_level(ctx, 0);
        SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
        SSL_CTX_set_max_proto_version(ctx, TLS1_1_VERSION);
        SSL_CTX_set_cipher_list(ctx, "DEFAULT@SECLEVEL=0");
    }
    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        fprintf(log, "setup failed\n");
        _exit(1);
    }
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, 8) != 0) {
        fprintf(log, "listen failed\n");
        _exit(1);
    }
    unsigned n = 0; /* connections that sent CONNECT (port probes do not count) */
    const char *fs = getenv("FAKE_FIRST_SCRIPT");
    unsigned first_script = fs ? (unsigned)atoi(fs) : 0;
    for (unsigned k = 0;; k++) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            continue;
        SSL *ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) != 1) {
            fprintf(log, "accept %u: handshake failed\n", k);
            SSL_free(ssl);
            close(fd);
            continue;
        }
        uint8_t buf[4096];
        int r = SSL_read(ssl, buf, sizeof buf);
        if (r <= 0 || buf[0] != 0x10) {
            fprintf(log, "accept %u: no CONNECT\n", k);
            SSL_free(ssl);
            close(fd);
            continue;
        }
        unsigned idx = n + first_script < NSCRIPTS ? n + first_script : (unsigned)NSCRIPTS - 1;
        const struct script *s = &scripts[idx];
        fprintf(log, "conn %u: CONNECT %d bytes; script %u\n", n, r, idx);
        SSL_write(ssl, s->bytes, (int)s->len);
        if (!s->then_close) {
            /* Serve until the client goes away; answer PINGREQ so a good link stays up. */
            /* FAKE_SILENT: the first connection turns into a black hole after CONNACK (the
             * link died without a FIN): nothing is answered, nothing is closed. */
            bool silent = getenv("FAKE_SILENT") && n == 0;
            while ((r = SSL_read(ssl, buf, sizeof buf)) > 0) {
                if (silent) {
                    fprintf(log, "conn %u: ignored %d bytes\n", n, r);
                    continue;
                }
                if (buf[0] == 0xc0) {
                    static const uint8_t pingresp[] = {0xd0, 0x00};
                    SSL_write(ssl, pingresp, 2);
                }
            }
        }
        fprintf(log, "conn %u: closed\n", n);
        n++;
        SSL_shutdown(ssl);
        SSL_free(ssl);
        close(fd);
    }
}

static pid_t start_fake(int port, const char *dir, const char *log)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
            _exit(1);
        fake_broker(port, dir, log);
        _exit(0);
    }
    setpgid(pid, pid);
    h_track(pid); /* killed at exit even when an assertion fails first */
    assert_true(h_wait_port(port, 5000));
    return pid;
}

/* Provisions one charger for hub host `host` on port, trusting ca_dir/ca.pem. Writes the
 * factory and user files into dir and returns the factory path in out. */
static void provision(const char *dir, const char *ca_dir, const char *host, int port)
{
    char hosts[600];
    snprintf(hosts, sizeof hosts, "%s/hosts", dir);
    char text[300];
    snprintf(text, sizeof text, "127.0.0.1 %s\n", host);
    h_write_file(hosts, text);
    assert_int_equal(h_sh("'%s/lade-factory' create --registry '%s/registry.db' --id LDE0000042 "
                          "--hub-host %s --hub-port %d --ca '%s/ca.pem' --out '%s/chargers' "
                          "--hosts-file '%s' --time-source host >/dev/null",
                          h_build_dir(), dir, host, port, ca_dir, dir, hosts),
                     0);
    h_write_file(strcat(strcpy(text, dir), "/user.conf"),
                 "backoff_min_ms = 100\nbackoff_max_ms = 400\nkeepalive_s = 30\n"
                 "telemetry_interval_s = 60\nconnect_timeout_ms = 2000\nlog_level = debug\n");
}

static pid_t start_charger(const char *dir, const char *log)
{
    static char factory[600], user[600], status[600];
    snprintf(factory, sizeof factory, "%s/chargers/LDE0000042/factory.conf", dir);
    snprintf(user, sizeof user, "%s/user.conf", dir);
    snprintf(status, sizeof status, "%s/status.json", dir);
    char bin[600];
    snprintf(bin, sizeof bin, "%s/lade-charger", h_build_dir());
    const char *argv[] = {bin, "--factory", factory, "--user", user, "--status", status, NULL};
    return h_spawn(argv, NULL, log);
}

/* One scenario's files: a fresh dir with a CA and a certificate for hub.lade.test, the fake
 * broker's and the charger's logs, the charger's status file, and a free port. */
struct fx {
    const char *dir;
    int port;
    char blog[600], clog[600], status[600];
};

static void fx_init(struct fx *f, const char *tag)
{
    f->dir = h_tmpdir(tag);
    h_make_ca(f->dir, "fault CA");
    h_make_server_cert(f->dir, f->dir, "hub.lade.test");
    f->port = h_free_port();
    snprintf(f->blog, sizeof f->blog, "%s/broker.log", f->dir);
    snprintf(f->clog, sizeof f->clog, "%s/charger.log", f->dir);
    snprintf(f->status, sizeof f->status, "%s/status.json", f->dir);
}

static void test_malformed_mqtt_from_hub(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "faults");
    const char *dir = f.dir, *blog = f.blog, *clog = f.clog, *status = f.status;
    int port = f.port;
    pid_t broker = start_fake(port, dir, blog);
    provision(dir, dir, "hub.lade.test", port);
    pid_t charger = start_charger(dir, clog);

    /* The charger survives every fault and ends online on the well-behaved connection (it is
     * briefly "online" after each CONNACK too, before the malformed packet that follows is
     * read: wait for the sixth connect). */
    bool online = h_wait_file_contains(status, "\"connects\":6", 30000) &&
                  h_wait_file_contains(status, "\"link\":\"online\"", 5000);
    if (!online) {
        char *l = h_read_file(clog);
        fprintf(stderr, "charger log:\n%s\n", l ? l : "");
        free(l);
    }
    assert_true(online);
    assert_true(h_running(charger, NULL));
    assert_int_equal(h_file_count(blog, "script 5"), 1);
    for (int i = 0; i < 5; i++) {
        char needle[32];
        snprintf(needle, sizeof needle, "script %d", i);
        assert_int_equal(h_file_count(blog, needle), 1);
    }
    /* Each drop is logged with its reason. */
    assert_true(h_file_count(clog, "malformed or unexpected MQTT data") >= 3);
    assert_int_equal(h_file_count(clog, "packet over the size limit"), 1);
    assert_true(h_file_count(clog, "hub closed the connection") >= 1);
    char *st = h_read_file(status);
    assert_non_null(strstr(st, "\"failures\":5"));
    free(st);

    /* A clean stop sends DISCONNECT and exits 0. */
    int ws = h_stop(charger, SIGTERM, 5000);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0);
    h_stop(broker, SIGKILL, 1000);
}

static void test_untrusted_hub_certificates(void **state)
{
    (void)state;
    /* The hub's certificate comes from a CA the charger does not trust. */
    struct fx f;
    fx_init(&f, "cert");
    const char *other = h_tmpdir("othca");
    h_make_ca(other, "rogue CA");
    h_make_server_cert(other, other, "hub.lade.test");
    pid_t broker = start_fake(f.port, other, f.blog);
    provision(f.dir, f.dir, "hub.lade.test", f.port);
    pid_t charger = start_charger(f.dir, f.clog);
    assert_true(h_wait_file_contains(f.status, "certificate not trusted", 15000));
    assert_true(h_wait_file_contains(f.blog, "handshake failed", 5000));
    assert_int_equal(h_file_count(f.blog, "CONNECT"), 0); /* no credential ever left */
    h_stop(charger, SIGTERM, 5000);
    h_stop(broker, SIGKILL, 1000);

    /* Right CA, wrong host name: the certificate names hub.lade.test, the charger wants
     * other.lade.test. */
    struct fx g;
    fx_init(&g, "host");
    broker = start_fake(g.port, g.dir, g.blog);
    provision(g.dir, g.dir, "other.lade.test", g.port);
    charger = start_charger(g.dir, g.clog);
    assert_true(h_wait_file_contains(g.status, "certificate not trusted", 15000));
    assert_int_equal(h_file_count(g.blog, "CONNECT"), 0);
    h_stop(charger, SIGTERM, 5000);
    h_stop(broker, SIGKILL, 1000);
}

static void test_silent_hub_detected_by_keepalive(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "silent");
    const char *dir = f.dir, *blog = f.blog, *clog = f.clog, *status = f.status;
    int port = f.port;
    char user[600];
    snprintf(user, sizeof user, "%s/user.conf", dir);
    /* Every connection behaves (script 5), except that the first goes silent. */
    setenv("FAKE_SILENT", "1", 1);
    setenv("FAKE_FIRST_SCRIPT", "5", 1);
    pid_t broker = start_fake(port, dir, blog);
    unsetenv("FAKE_SILENT");
    unsetenv("FAKE_FIRST_SCRIPT");
    provision(dir, dir, "hub.lade.test", port);
    h_write_file(user, "backoff_min_ms = 100\nbackoff_max_ms = 400\nkeepalive_s = 5\n"
                       "telemetry_interval_s = 3600\nlog_level = debug\n");
    uint64_t t0 = h_now_ms();
    pid_t charger = start_charger(dir, clog);
    assert_true(h_wait_file_contains(status, "\"link\":\"online\"", 10000));
    /* PINGREQ after 5 s idle, no PINGRESP within 3.5 s: the link is declared dead and the
     * charger reconnects (the second connection answers). */
    assert_true(h_wait_file_contains(status, "\"connects\":2", 20000));
    uint64_t took = h_now_ms() - t0;
    assert_true(took >= 8000);
    assert_true(h_file_count(clog, "no PINGRESP in time") == 1);
    assert_true(h_file_count(blog, "conn 0: ignored") >= 1); /* it did send PINGREQ */
    fprintf(stderr, "measured: dead link detected and replaced after %llu ms (keepalive 5 s)\n",
            (unsigned long long)took);
    h_stop(charger, SIGTERM, 5000);
    h_stop(broker, SIGKILL, 1000);
}

static void test_tls11_only_hub(void **state)
{
    (void)state;
    struct fx f;
    fx_init(&f, "tls11");
    const char *dir = f.dir, *blog = f.blog, *clog = f.clog, *status = f.status;
    int port = f.port;
    setenv("FAKE_TLS11_ONLY", "1", 1);
    pid_t broker = start_fake(port, dir, blog);
    unsetenv("FAKE_TLS11_ONLY");
    provision(dir, dir, "hub.lade.test", port);
    pid_t charger = start_charger(dir, clog);
    /* The charger requires TLS 1.2: the handshake fails, nothing is sent, it keeps trying. */
    assert_true(h_wait_file_contains(status, "\"last_error\":\"TLS error\"", 15000));
    assert_true(h_wait_file_contains(blog, "handshake failed", 5000));
    assert_int_equal(h_file_count(blog, "CONNECT"), 0);
    assert_true(h_running(charger, NULL));
    h_stop(charger, SIGTERM, 5000);
    h_stop(broker, SIGKILL, 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_mqtt_from_hub),
        cmocka_unit_test(test_untrusted_hub_certificates),
        cmocka_unit_test(test_tls11_only_hub),
        cmocka_unit_test(test_silent_hub_detected_by_keepalive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
