/* E2E: the TLS transport (src/port/linux/tls.c) against real `openssl s_server` peers on
 * 127.0.0.1 with certificates made by the test. SPEC R7 (TLS >= 1.2, chain and host name
 * verified), R10, R12 (byte accounting, cross-checked with the kernel's TCP_INFO counters).
 * Servers are started per test on free ports and killed at exit even when a test fails; every
 * wait is a poll with a deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "harness_tls.h"
#include "lade/clock.h"
#include "lade/log.h"
#include "lade/loop.h"
#include "lade/resolve.h"
#include "lade/tls.h"

#define HOST        "hub.lade.test"
#define WAIT_MS     20000u
#define MSG         "hello lade\n"
#define MSG_REVERSE "edal olleh\n"

static char g_dir[512];
static char g_ca1[600], g_ca2[600], g_good[600], g_other[600], g_expired[600];

/* ---- captured log ---- */

static char g_log[65536];
static size_t g_log_len;

static void log_sink(void *ud, enum lade_log_level level, const char *module, const char *line)
{
    (void)ud;
    (void)level;
    (void)module;
    fprintf(stderr, "%s\n", line);
    size_t n = strlen(line);
    if (g_log_len + n + 2 < sizeof g_log) {
        memcpy(g_log + g_log_len, line, n);
        g_log_len += n;
        g_log[g_log_len++] = '\n';
        g_log[g_log_len] = '\0';
    }
}

static void log_reset(void)
{
    g_log_len = 0;
    g_log[0] = '\0';
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
    (void)state;
    lade_log_set_sink(log_sink, NULL);
    lade_log_set_level(LADE_LOG_DEBUG);
    snprintf(g_dir, sizeof g_dir, "%s", h_tmpdir("tls"));
    /* CA1 signs the good and the expired server certificate; CA2 is a stranger. */
    snprintf(g_ca1, sizeof g_ca1, "%s/ca1", g_dir);
    snprintf(g_ca2, sizeof g_ca2, "%s/ca2", g_dir);
    snprintf(g_good, sizeof g_good, "%s/good", g_dir);
    snprintf(g_other, sizeof g_other, "%s/other", g_dir);
    snprintf(g_expired, sizeof g_expired, "%s/expired", g_dir);
    h_make_ca(g_ca1, "lade test CA 1");
    h_make_ca(g_ca2, "lade test CA 2");
    h_make_server_cert(g_good, g_ca1, HOST);
    h_make_server_cert(g_other, g_ca2, HOST);
    assert_int_equal(h_sh("mkdir -p '%s'", g_expired), 0);
    ht_make_expired_server_cert(g_expired, g_ca1, HOST);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    lade_log_set_sink(NULL, NULL);
    return 0;
}

struct peer {
    struct ht_server srv;
    char cert[700], key[700];
};

static void peer_start(struct peer *p, const char *certdir, const char *const extra[])
{
    snprintf(p->cert, sizeof p->cert, "%s/server.pem", certdir);
    snprintf(p->key, sizeof p->key, "%s/server.key", certdir);
    ht_s_server_start(&p->srv, g_dir, p->cert, p->key, extra);
}

static struct lade_tls_ctx *ctx_for(const char *ca_dir)
{
    char ca[700];
    snprintf(ca, sizeof ca, "%s/ca.pem", ca_dir);
    struct lade_tls_ctx *ctx = NULL;
    assert_int_equal(lade_tls_ctx_new(&ctx, ca), LADE_OK);
    return ctx;
}

static struct lade_sockaddr addr(const char *ip)
{
    struct lade_sockaddr a;
    assert_int_equal(lade_sockaddr_parse(ip, &a), LADE_OK);
    return a;
}

/* ---- driving a connection from a lade_loop ---- */

struct sess {
    int done;
    lade_err err;
    uint32_t events;
};

static void on_event(struct lade_tls_conn *c, lade_err status, uint32_t events, void *ud)
{
    (void)c;
    struct sess *s = ud;
    if (!s->done) {
        s->done = 1;
        s->err = status;
    }
    s->events |= events;
}

/* Connects host on the addresses and port with the loop driving; returns the outcome. */
static lade_err loop_connect(struct lade_loop *loop, struct lade_tls_ctx *ctx, const char *host,
                             const struct lade_sockaddr *addrs, size_t n, int port,
                             struct lade_tls_conn **out, struct sess *s)
{
    struct lade_tls_conn_opts o = {.host = host,
                                   .addrs = addrs,
                                   .n_addrs = n,
                                   .port = (uint16_t)port,
                                   .connect_timeout_ms = 5000,
                                   .handshake_timeout_ms = 10000};
    struct lade_tls_conn *c = NULL;
    assert_int_equal(lade_tls_conn_new(&c, ctx, &o), LADE_OK);
    memset(s, 0, sizeof *s);
    assert_int_equal(lade_tls_conn_attach(c, loop, on_event, s), LADE_OK);
    assert_int_equal(s->done, 0); /* never called back from inside attach */
    uint64_t deadline = lade_mono_ms() + WAIT_MS;
    while (!s->done && lade_mono_ms() < deadline)
        assert_int_equal(lade_loop_run_once(loop, 100), LADE_OK);
    assert_true(s->done);
    *out = c;
    return s->err;
}

/* Fails the connection attempt on one server and checks the error and the logged reason. */
static void expect_failure(const char *ca_dir, const char *host, const char *certdir,
                           const char *const extra[], lade_err want, const char *reason)
{
    struct peer p;
    peer_start(&p, certdir, extra);
    struct lade_tls_ctx *ctx = ctx_for(ca_dir);
    struct lade_loop *loop = NULL;
    assert_int_equal(lade_loop_new(&loop), LADE_OK);
    struct lade_sockaddr a = addr("127.0.0.1");
    struct lade_tls_conn *c = NULL;
    struct sess s;
    log_reset();
    lade_err err = loop_connect(loop, ctx, host, &a, 1, p.srv.port, &c, &s);
    if (err != want)
        fail_msg("want %s, got %s", lade_strerror(want), lade_strerror(err));
    assert_int_equal(lade_tls_conn_state(c), LADE_TLS_FAILED);
    assert_int_equal(lade_tls_conn_error(c), want);
    assert_int_equal(lade_tls_conn_fd(c), -1);
    assert_int_equal(lade_loop_timer_count(loop), 0);
    if (reason && !strstr(g_log, reason))
        fail_msg("log lacks \"%s\"", reason);
    struct lade_transport t = lade_tls_conn_transport(c);
    uint8_t b[4];
    size_t d;
    assert_int_equal(t.recv(t.ctx, b, sizeof b, &d), want);
    lade_tls_conn_free(c);
    lade_loop_free(loop);
    lade_tls_ctx_free(ctx);
    ht_s_server_stop(&p.srv);
}

static void tcp_counters(int fd, uint64_t *acked, uint64_t *received)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
    assert_true(len >= offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(uint64_t));
    *acked = ti.tcpi_bytes_acked;
    *received = ti.tcpi_bytes_received;
}

/* Sends MSG, expects it reversed back, then checks our byte counters against the kernel's. */
static void roundtrip(struct lade_loop *loop, struct lade_tls_conn *c, struct sess *s)
{
    struct lade_transport t = lade_tls_conn_transport(c);
    struct lade_tls_stats before;
    lade_tls_conn_stats(c, &before);
    size_t len = strlen(MSG), off = 0;
    uint64_t deadline = lade_mono_ms() + WAIT_MS;
    while (off < len) {
        size_t d = 0;
        lade_err r = t.send(t.ctx, (const uint8_t *)MSG + off, len - off, &d);
        if (r == LADE_OK) {
            off += d;
            continue;
        }
        assert_int_equal(r, LADE_ERR_AGAIN);
        assert_int_equal(lade_tls_conn_set_interest(c, LADE_IO_READ | LADE_IO_WRITE), LADE_OK);
        assert_true(lade_mono_ms() < deadline);
        assert_int_equal(lade_loop_run_once(loop, 100), LADE_OK);
    }
    assert_int_equal(lade_tls_conn_set_interest(c, LADE_IO_READ), LADE_OK);
    char buf[256];
    size_t got = 0;
    while (!memchr(buf, '\n', got)) {
        assert_true(lade_mono_ms() < deadline);
        s->events = 0;
        assert_int_equal(lade_loop_run_once(loop, 100), LADE_OK);
        for (;;) { /* read until AGAIN: TLS may hold bytes the fd does not signal */
            size_t d = 0;
            lade_err r = t.recv(t.ctx, (uint8_t *)buf + got, sizeof buf - 1 - got, &d);
            if (r != LADE_OK) {
                assert_int_equal(r, LADE_ERR_AGAIN);
                break;
            }
            got += d;
        }
    }
    buf[got] = '\0';
    assert_string_equal(buf, MSG_REVERSE);

    struct lade_tls_stats st;
    lade_tls_conn_stats(c, &st);
    /* One application record each way at least: payload + header + AEAD tag. */
    assert_true(st.bytes_out >= before.bytes_out + len + 5 + 16);
    assert_true(st.bytes_in >= before.bytes_in + len + 5 + 16);
    /* Every byte we counted is a TCP payload byte the kernel saw, and vice versa: the peer
     * has acknowledged all we sent, and we have read all that arrived. Poll until the
     * ACKs are in. tcpi_bytes_acked counts the SYN's sequence number too, hence + 1. */
    uint64_t acked = 0, received = 0;
    int fd = lade_tls_conn_fd(c);
    for (;;) {
        tcp_counters(fd, &acked, &received);
        lade_tls_conn_stats(c, &st);
        if (acked == st.bytes_out + 1 && received == st.bytes_in)
            break;
        if (lade_mono_ms() > deadline)
            fail_msg("kernel acked %llu / received %llu, we counted out %llu / in %llu",
                     (unsigned long long)acked, (unsigned long long)received,
                     (unsigned long long)st.bytes_out, (unsigned long long)st.bytes_in);
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        (void)poll(&pfd, 1, 10);
        size_t d;
        lade_err r = t.recv(t.ctx, (uint8_t *)buf, sizeof buf, &d);
        assert_true(r == LADE_ERR_AGAIN);
    }
}

static void print_stats(const char *what, struct lade_tls_conn *c)
{
    struct lade_tls_stats st;
    lade_tls_conn_stats(c, &st);
    printf("# %s: %s %s, handshake %llu B out + %llu B in = %llu B (TCP payload), "
           "total %llu/%llu, connect %llu ms, handshake %llu ms, attempts %u\n",
           what, st.version, st.cipher, (unsigned long long)st.handshake_bytes_out,
           (unsigned long long)st.handshake_bytes_in,
           (unsigned long long)(st.handshake_bytes_out + st.handshake_bytes_in),
           (unsigned long long)st.bytes_out, (unsigned long long)st.bytes_in,
           (unsigned long long)st.connect_ms, (unsigned long long)st.handshake_ms, st.attempts);
}

/* ---- tests ---- */

/* (a) Trusted chain, right host name, SNI checked by the server (-servername_fatal aborts
 * the handshake unless the client sent SNI = HOST): established, data both ways. */
static void test_good_cert_sni_and_data(void **state)
{
    (void)state;
    struct peer p;
    char cert2[700], key2[700];
    snprintf(cert2, sizeof cert2, "%s/server.pem", g_good);
    snprintf(key2, sizeof key2, "%s/server.key", g_good);
    const char *extra[] = {"-servername", HOST, "-servername_fatal", "-cert2", cert2, "-key2",
                           key2,          NULL};
    peer_start(&p, g_good, extra);
    struct lade_tls_ctx *ctx = ctx_for(g_ca1);
    struct lade_loop *loop = NULL;
    assert_int_equal(lade_loop_new(&loop), LADE_OK);
    struct lade_sockaddr a = addr("127.0.0.1");
    struct lade_tls_conn *c = NULL;
    struct sess s;
    assert_int_equal(loop_connect(loop, ctx, HOST, &a, 1, p.srv.port, &c, &s), LADE_OK);
    assert_int_equal(lade_tls_conn_state(c), LADE_TLS_ESTABLISHED);
    struct lade_tls_stats st;
    lade_tls_conn_stats(c, &st);
    assert_string_equal(st.version, "TLSv1.3");
    assert_int_equal(st.attempts, 1);
    assert_int_equal(st.addr_index, 0);
    assert_true(st.handshake_bytes_out > 100 && st.handshake_bytes_in > 300);
    print_stats("TLS 1.3 connect", c);
    roundtrip(loop, c, &s);
    print_stats("after one echo", c);
    /* A second exchange on the same connection. */
    roundtrip(loop, c, &s);
    int fd = lade_tls_conn_fd(c);
    assert_true(lade_loop_watched(loop, fd));
    lade_tls_conn_free(c);
    assert_false(lade_loop_watched(loop, fd));
    lade_loop_free(loop);
    lade_tls_ctx_free(ctx);
    ht_s_server_stop(&p.srv);
}

/* The same against a TLS 1.2-only server (the floor we accept): works, and its cost. */
static void test_tls12_server(void **state)
{
    (void)state;
    struct peer p;
    const char *extra[] = {"-tls1_2", NULL};
    peer_start(&p, g_good, extra);
    struct lade_tls_ctx *ctx = ctx_for(g_ca1);
    struct lade_loop *loop = NULL;
    assert_int_equal(lade_loop_new(&loop), LADE_OK);
    struct lade_sockaddr a = addr("127.0.0.1");
    struct lade_tls_conn *c = NULL;
    struct sess s;
    assert_int_equal(loop_connect(loop, ctx, HOST, &a, 1, p.srv.port, &c, &s), LADE_OK);
    struct lade_tls_stats st;
    lade_tls_conn_stats(c, &st);
    assert_string_equal(st.version, "TLSv1.2");
    print_stats("TLS 1.2 connect", c);
    roundtrip(loop, c, &s);
    lade_tls_conn_free(c);
    lade_loop_free(loop);
    lade_tls_ctx_free(ctx);
    ht_s_server_stop(&p.srv);
}

/* The server checks SNI and we send the wrong one (a different configured name would do
 * this): the server aborts, we report a TLS failure. Proves the SNI check in (a) bites. */
static void test_sni_checked_by_server(void **state)
{
    (void)state;
    char cert2[700], key2[700];
    snprintf(cert2, sizeof cert2, "%s/server.pem", g_good);
    snprintf(key2, sizeof key2, "%s/server.key", g_good);
    const char *extra[] = {
        "-servername", "other.lade.test", "-servername_fatal", "-cert2", cert2, "-key2", key2,
        NULL};
    expect_failure(g_ca1, HOST, g_good, extra, LADE_ERR_TLS, "unrecognized name");
}

/* (b) A server certificate from a CA we do not trust. */
static void test_other_ca(void **state)
{
    (void)state;
    expect_failure(g_ca1, HOST, g_other, NULL, LADE_ERR_CERT,
                   "unable to get local issuer certificate");
}

/* (c) Trusted chain but another host name. */
static void test_wrong_host(void **state)
{
    (void)state;
    expect_failure(g_ca1, "wrong.lade.test", g_good, NULL, LADE_ERR_CERT, "hostname mismatch");
}

/* (d) A server that speaks TLS 1.1 only (below SPEC R7's floor). */
static void test_tls11_only_server(void **state)
{
    (void)state;
    /* First make sure the peer really serves TLS 1.1, so the failure below is about the
     * version and not about a server that does not work at all. */
    struct peer p;
    const char *extra[] = {"-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0", NULL};
    peer_start(&p, g_good, extra);
    char out[700];
    snprintf(out, sizeof out, "%s/s_client-tls11.log", g_dir);
    int rc = h_sh("echo | timeout 20 openssl s_client -connect 127.0.0.1:%d -tls1_1 "
                  "-cipher DEFAULT@SECLEVEL=0 -servername %s -CAfile '%s/ca.pem' "
                  ">'%s' 2>&1",
                  p.srv.port, HOST, g_ca1, out);
    (void)rc;
    if (h_file_count(out, "Protocol  : TLSv1.1") == 0) {
        char *log = h_read_file(out);
        fail_msg("s_server did not serve TLS 1.1:\n%s", log ? log : "");
    }
    ht_s_server_stop(&p.srv);
    expect_failure(g_ca1, HOST, g_good, extra, LADE_ERR_TLS, "protocol version");
}

/* (f) Expired server certificate from the trusted CA. */
static void test_expired_cert(void **state)
{
    (void)state;
    expect_failure(g_ca1, HOST, g_expired, NULL, LADE_ERR_CERT, "certificate has expired");
}

/* (e) The first address refuses (127.0.0.2: nothing listens there), the second works.
 * Driven by hand with poll(), to exercise the step API and the fd-close hook. */
struct hook {
    int closed_fds;
    int last_fd;
};

static void on_fd_close(void *ud, int fd)
{
    struct hook *h = ud;
    h->closed_fds++;
    h->last_fd = fd;
}

static lade_err manual_connect(struct lade_tls_conn *c)
{
    uint64_t deadline = lade_mono_ms() + WAIT_MS;
    for (;;) {
        uint32_t want = 0;
        uint64_t due = 0;
        lade_err r = lade_tls_conn_step(c, &want, &due);
        if (r != LADE_ERR_AGAIN)
            return r;
        assert_true(want == LADE_IO_READ || want == LADE_IO_WRITE);
        assert_true(lade_tls_conn_fd(c) >= 0);
        uint64_t now = lade_mono_ms();
        assert_true(now < deadline);
        struct pollfd pfd = {.fd = lade_tls_conn_fd(c),
                             .events = (short)(want == LADE_IO_READ ? POLLIN : POLLOUT)};
        uint64_t wait = due > now ? due - now : 0;
        (void)poll(&pfd, 1, (int)(wait > 1000 ? 1000 : wait));
    }
}

static void test_address_fallback(void **state)
{
    (void)state;
    struct peer p;
    peer_start(&p, g_good, NULL);
    struct lade_tls_ctx *ctx = ctx_for(g_ca1);
    struct lade_sockaddr as[2] = {addr("127.0.0.2"), addr("127.0.0.1")};
    struct lade_tls_conn_opts o = {
        .host = HOST, .addrs = as, .n_addrs = 2, .port = (uint16_t)p.srv.port};
    struct lade_tls_conn *c = NULL;
    assert_int_equal(lade_tls_conn_new(&c, ctx, &o), LADE_OK);
    struct hook h = {0, -1};
    lade_tls_conn_on_fd_close(c, on_fd_close, &h);
    log_reset();
    assert_int_equal(manual_connect(c), LADE_OK);
    struct lade_tls_stats st;
    lade_tls_conn_stats(c, &st);
    assert_int_equal(st.attempts, 2);
    assert_int_equal(st.addr_index, 1);
    assert_int_equal(h.closed_fds, 1);
    assert_non_null(strstr(g_log, "127.0.0.2"));
    assert_non_null(strstr(g_log, "Connection refused"));
    /* Data flows on a hand-driven connection too. */
    struct lade_transport t = lade_tls_conn_transport(c);
    size_t d = 0;
    assert_int_equal(t.send(t.ctx, (const uint8_t *)MSG, strlen(MSG), &d), LADE_OK);
    assert_int_equal(d, strlen(MSG));
    char buf[64];
    size_t got = 0;
    uint64_t deadline = lade_mono_ms() + WAIT_MS;
    while (got < strlen(MSG_REVERSE)) {
        assert_true(lade_mono_ms() < deadline);
        lade_err r = t.recv(t.ctx, (uint8_t *)buf + got, sizeof buf - got, &d);
        if (r == LADE_OK) {
            got += d;
            continue;
        }
        assert_int_equal(r, LADE_ERR_AGAIN);
        uint32_t w = lade_tls_conn_io_wants(c);
        struct pollfd pfd = {.fd = lade_tls_conn_fd(c),
                             .events = (short)(w == LADE_IO_WRITE ? POLLOUT : POLLIN)};
        (void)poll(&pfd, 1, 1000);
    }
    assert_memory_equal(buf, MSG_REVERSE, strlen(MSG_REVERSE));
    lade_tls_conn_free(c);
    assert_int_equal(h.closed_fds, 2);
    lade_tls_ctx_free(ctx);
    ht_s_server_stop(&p.srv);
}

/* Nothing listens on any address: LADE_ERR_IO after trying each. */
static void test_all_refused(void **state)
{
    (void)state;
    struct lade_tls_ctx *ctx = ctx_for(g_ca1);
    struct lade_loop *loop = NULL;
    assert_int_equal(lade_loop_new(&loop), LADE_OK);
    int port = h_free_port();
    struct lade_sockaddr as[3] = {addr("127.0.0.2"), addr("127.0.0.3"), addr("127.0.0.1")};
    struct lade_tls_conn *c = NULL;
    struct sess s;
    assert_int_equal(loop_connect(loop, ctx, HOST, as, 3, port, &c, &s), LADE_ERR_IO);
    struct lade_tls_stats st;
    lade_tls_conn_stats(c, &st);
    assert_int_equal(st.attempts, 3);
    assert_int_equal(st.addr_index, -1);
    lade_tls_conn_free(c);
    lade_loop_free(loop);
    lade_tls_ctx_free(ctx);
}

/* The callback may free the connection (here on failure, the common case). */
static void on_event_free(struct lade_tls_conn *c, lade_err status, uint32_t events, void *ud)
{
    on_event(c, status, events, ud);
    lade_tls_conn_free(c);
}

static void test_free_from_callback(void **state)
{
    (void)state;
    struct lade_tls_ctx *ctx = ctx_for(g_ca1);
    struct lade_loop *loop = NULL;
    assert_int_equal(lade_loop_new(&loop), LADE_OK);
    struct lade_sockaddr a = addr("127.0.0.2");
    struct lade_tls_conn_opts o = {
        .host = HOST, .addrs = &a, .n_addrs = 1, .port = (uint16_t)h_free_port()};
    struct lade_tls_conn *c = NULL;
    assert_int_equal(lade_tls_conn_new(&c, ctx, &o), LADE_OK);
    struct sess s = {0};
    assert_int_equal(lade_tls_conn_attach(c, loop, on_event_free, &s), LADE_OK);
    uint64_t deadline = lade_mono_ms() + WAIT_MS;
    while (!s.done && lade_mono_ms() < deadline)
        assert_int_equal(lade_loop_run_once(loop, 100), LADE_OK);
    assert_int_equal(s.err, LADE_ERR_IO);
    assert_int_equal(lade_loop_timer_count(loop), 0);
    assert_int_equal(lade_loop_run_once(loop, 0), LADE_OK);
    lade_loop_free(loop);
    lade_tls_ctx_free(ctx);
}

/* A peer that accepts TCP but never answers the ClientHello: the handshake deadline fires.
 * (The test's own listener; the code under test never listens.) */
static void test_handshake_timeout(void **state)
{
    (void)state;
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(ls >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    assert_int_equal(bind(ls, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(ls, 4), 0);
    socklen_t sl = sizeof sin;
    assert_int_equal(getsockname(ls, (struct sockaddr *)&sin, &sl), 0);

    struct lade_tls_ctx *ctx = ctx_for(g_ca1);
    struct lade_loop *loop = NULL;
    assert_int_equal(lade_loop_new(&loop), LADE_OK);
    struct lade_sockaddr a = addr("127.0.0.1");
    struct lade_tls_conn_opts o = {.host = HOST,
                                   .addrs = &a,
                                   .n_addrs = 1,
                                   .port = ntohs(sin.sin_port),
                                   .handshake_timeout_ms = 300};
    struct lade_tls_conn *c = NULL;
    assert_int_equal(lade_tls_conn_new(&c, ctx, &o), LADE_OK);
    struct sess s = {0};
    assert_int_equal(lade_tls_conn_attach(c, loop, on_event, &s), LADE_OK);
    uint64_t t0 = lade_mono_ms(), deadline = t0 + WAIT_MS;
    while (!s.done && lade_mono_ms() < deadline)
        assert_int_equal(lade_loop_run_once(loop, 100), LADE_OK);
    assert_true(s.done);
    assert_int_equal(s.err, LADE_ERR_TIMEOUT);
    assert_true(lade_mono_ms() - t0 >= 300);
    struct lade_tls_stats st;
    lade_tls_conn_stats(c, &st);
    assert_true(st.handshake_bytes_out > 0); /* the ClientHello went out */
    assert_int_equal(st.handshake_bytes_in, 0);
    lade_tls_conn_free(c);
    lade_loop_free(loop);
    lade_tls_ctx_free(ctx);
    close(ls);
}

/* The host is an IP literal: no SNI, the certificate's IP SAN (127.0.0.1) is checked. */
static void test_ip_literal_host(void **state)
{
    (void)state;
    struct peer p;
    peer_start(&p, g_good, NULL);
    struct lade_tls_ctx *ctx = ctx_for(g_ca1);
    struct lade_loop *loop = NULL;
    assert_int_equal(lade_loop_new(&loop), LADE_OK);
    struct lade_sockaddr a = addr("127.0.0.1");
    struct lade_tls_conn *c = NULL;
    struct sess s;
    assert_int_equal(loop_connect(loop, ctx, "127.0.0.1", &a, 1, p.srv.port, &c, &s), LADE_OK);
    lade_tls_conn_free(c);
    /* 127.0.0.2 is not in the certificate. */
    assert_int_equal(loop_connect(loop, ctx, "127.0.0.2", &a, 1, p.srv.port, &c, &s),
                     LADE_ERR_CERT);
    lade_tls_conn_free(c);
    lade_loop_free(loop);
    lade_tls_ctx_free(ctx);
    ht_s_server_stop(&p.srv);
}

/* Configuration errors come back as such, not as handshake failures later. */
static void test_bad_config(void **state)
{
    (void)state;
    struct lade_tls_ctx *ctx = NULL;
    assert_int_equal(lade_tls_ctx_new(&ctx, "/nonexistent/ca.pem"), LADE_ERR_CONFIG);
    char notpem[700];
    snprintf(notpem, sizeof notpem, "%s/notpem.txt", g_dir);
    h_write_file(notpem, "not a certificate\n");
    assert_int_equal(lade_tls_ctx_new(&ctx, notpem), LADE_ERR_CONFIG);
    ctx = ctx_for(g_ca1);
    struct lade_sockaddr a = addr("127.0.0.1");
    struct lade_tls_conn_opts o = {.host = HOST, .addrs = &a, .n_addrs = 1, .port = 0};
    struct lade_tls_conn *c = NULL;
    assert_int_equal(lade_tls_conn_new(&c, ctx, &o), LADE_ERR_INVAL);
    o.port = 8883;
    o.n_addrs = 0;
    assert_int_equal(lade_tls_conn_new(&c, ctx, &o), LADE_ERR_INVAL);
    o.n_addrs = 1;
    o.host = "";
    assert_int_equal(lade_tls_conn_new(&c, ctx, &o), LADE_ERR_INVAL);
    o.host = HOST;
    assert_int_equal(lade_tls_conn_new(&c, ctx, &o), LADE_OK);
    struct lade_transport t = lade_tls_conn_transport(c);
    size_t d;
    assert_int_equal(t.send(t.ctx, (const uint8_t *)"x", 1, &d), LADE_ERR_STATE);
    lade_tls_conn_free(c);
    lade_tls_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_cert_sni_and_data),
        cmocka_unit_test(test_tls12_server),
        cmocka_unit_test(test_sni_checked_by_server),
        cmocka_unit_test(test_other_ca),
        cmocka_unit_test(test_wrong_host),
        cmocka_unit_test(test_tls11_only_server),
        cmocka_unit_test(test_expired_cert),
        cmocka_unit_test(test_address_fallback),
        cmocka_unit_test(test_all_refused),
        cmocka_unit_test(test_free_from_callback),
        cmocka_unit_test(test_handshake_timeout),
        cmocka_unit_test(test_ip_literal_host),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
