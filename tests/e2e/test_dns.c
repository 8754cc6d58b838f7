/* e2e: the DNS stub resolver (include/lade/dnsres.h) on a real event loop, on loopback only,
 * against a real dnsmasq and against hostile in-process peers (UDP + TCP on 127.77.0.x).
 *
 * Covers: A, AAAA and a CNAME chain from dnsmasq, NXDOMAIN, REFUSED, the cache, literals and
 * hosts entries; answers with a wrong id, from a wrong address, from a wrong port, with another
 * question, with the 0x20 case folded; a truncated answer then the TCP answer; a silent DHCP
 * server (the fallback answers through the hedge); a fallback's fast NXDOMAIN while the DHCP
 * server answers slowly (the real answer wins); no DHCP servers (fallbacks used); a closed port
 * (next server at once); the deadline; a server change during a lookup; cancel; a fresh random
 * source port and id for every query.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "lade/dns.h"
#include "lade/dnsres.h"
#include "lade/log.h"
#include "lade/loop.h"
#include "../unit/test_dns_msg.h"

#define DNSMASQ_IP "127.77.0.2"
#define PEER_IP    "127.77.0.3"
#define PEER2_IP   "127.77.0.4"
#define SPOOF_IP   "127.77.0.99"
#define REAL_IP    "10.0.0.1"
#define EVIL_IP    "6.6.6.6"

static struct lade_loop *loop;
static pid_t dnsmasq_pid;
static int dnsmasq_port;
static char dnsmasq_log[600];

/* ---------------------------------------------------------------- helpers */

static bool spin(const bool *flag, uint32_t timeout_ms)
{
    uint64_t end = h_now_ms() + timeout_ms;
    while (!*flag && h_now_ms() < end)
        assert_int_equal(lade_loop_run_once(loop, 20), LADE_OK);
    return *flag;
}

/* Runs the loop for ms (for things that must *not* happen). */
static void idle(uint32_t ms)
{
    uint64_t end = h_now_ms() + ms;
    while (h_now_ms() < end)
        assert_int_equal(lade_loop_run_once(loop, 10), LADE_OK);
}

struct res {
    bool done;
    int calls;
    lade_err err;
    size_t n;
    struct lade_sockaddr addrs[LADE_DNS_ADDR_MAX];
    struct lade_dnsres_info info;
    uint64_t started_ms, elapsed_ms;
};

static void on_res(void *ud, lade_err err, const struct lade_sockaddr *addrs, size_t n,
                   const struct lade_dnsres_info *info)
{
    struct res *r = ud;
    r->calls++;
    r->done = true;
    r->err = err;
    r->n = n;
    assert_true(n <= LADE_DNS_ADDR_MAX);
    if (n)
        memcpy(r->addrs, addrs, n * sizeof addrs[0]);
    r->info = *info;
    r->elapsed_ms = h_now_ms() - r->started_ms;
}

static const char *ip(const struct lade_sockaddr *a)
{
    static char buf[4][LADE_SOCKADDR_STRLEN];
    static int i;
    char *b = buf[i++ % 4];
    assert_int_equal(lade_sockaddr_format(a, b, LADE_SOCKADDR_STRLEN), LADE_OK);
    return b;
}

/* Resolves and waits (up to 15 s) for the one callback. */
static struct res run(struct lade_dnsres *r, const char *name, int family)
{
    struct res out;
    memset(&out, 0, sizeof out);
    out.started_ms = h_now_ms();
    assert_int_equal(lade_dnsres_resolve(r, name, family, on_res, &out, NULL), LADE_OK);
    assert_false(out.done); /* never from inside resolve */
    assert_true(spin(&out.done, 15000));
    idle(20); /* a second callback would show here */
    assert_int_equal(out.calls, 1);
    return out;
}

static void addr_of(const char *text, int port, struct lade_sockaddr *a)
{
    assert_int_equal(lade_sockaddr_parse(text, a), LADE_OK);
    lade_sockaddr_set_port(a, (uint16_t)port);
}

/* A resolver with the given DHCP and fallback servers ("ip:port" lists, NULL = none). */
static struct lade_dnsres *mk(const char *dhcp, const char *fallbacks, uint32_t deadline_ms,
                              const char *hosts)
{
    struct lade_sockaddr fb[4], d[8];
    size_t n_fb = 0, n_d = 0;
    if (fallbacks)
        assert_int_equal(lade_dnsres_parse_servers(fallbacks, fb, 4, &n_fb), LADE_OK);
    if (dhcp)
        assert_int_equal(lade_dnsres_parse_servers(dhcp, d, 8, &n_d), LADE_OK);
    struct lade_dnsres_opts o = {
        .fallbacks = fb,
        .n_fallbacks = n_fb,
        .deadline_ms = deadline_ms,
        .hosts_text = hosts,
        .hosts_len = hosts ? strlen(hosts) : 0,
    };
    struct lade_dnsres *r;
    assert_int_equal(lade_dnsres_new(loop, &o, &r), LADE_OK);
    assert_int_equal(lade_dnsres_set_dhcp_servers(r, d, n_d), LADE_OK);
    return r;
}

static char dnsmasq_addr[64];

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

/* ---------------------------------------------------------------- hostile peers */

enum mode {
    M_ANSWER,
    M_SILENT,
    M_WRONG_ID,
    M_SPOOF_ADDR,
    M_SPOOF_PORT,
    M_WRONG_QUESTION,
    M_GARBAGE,
    M_TC,
    M_NXDOMAIN,
    M_SLOW,
    M_FOLD_CASE,
};

#define HELD_MAX 8

struct held {
    struct peer *p;
    struct lade_timer t;
    bool busy;
    uint8_t msg[600];
    size_t len;
    struct sockaddr_in to;
};

struct peer {
    char ip[32];
    int port;
    int udp, tcp, conn;
    enum mode mode;
    uint32_t delay_ms;
    const char *reply_ip;
    int udp_queries, tcp_queries;
    uint16_t src_ports[64], ids[64];
    int n_src;
    struct held held[HELD_MAX];
    uint8_t tcp_buf[600];
    size_t tcp_len;
};

static void send_to(int fd, const struct tmsg *m, const struct sockaddr_in *to)
{
    ssize_t n = sendto(fd, m->b, m->n, 0, (const struct sockaddr *)to, sizeof *to);
    assert_int_equal(n, (ssize_t)m->n);
}

static void held_fire(struct lade_loop *l, struct lade_timer *t, void *ud)
{
    (void)l;
    (void)t;
    struct held *h = ud;
    h->busy = false;
    sendto(h->p->udp, h->msg, h->len, 0, (struct sockaddr *)&h->to, sizeof h->to);
}

static void hold(struct peer *p, const struct tmsg *m, const struct sockaddr_in *to,
                 uint32_t delay_ms)
{
    for (int i = 0; i < HELD_MAX; i++) {
        struct held *h = &p->held[i];
        if (h->busy)
            continue;
        h->busy = true;
        h->p = p;
        memcpy(h->msg, m->b, m->n);
        h->len = m->n;
        h->to = *to;
        lade_timer_init(&h->t, held_fire, h);
        assert_int_equal(lade_timer_arm_in(loop, &h->t, delay_ms), LADE_OK);
        return;
    }
    fail_msg("peer: too many held answers");
}

/* A socket on addr:port (port 0: any) of the given type; -1 if the bind fails. */
static int sock_on(const char *addr, int port, int type)
{
    int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int one = 1;
    if (type == SOCK_STREAM)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, addr, &sin.sin_addr);
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends a message from a socket bound to addr:port to the client. */
static void spoof_from(const char *addr, int port, const struct tmsg *m,
                       const struct sockaddr_in *to)
{
    int fd = sock_on(addr, port, SOCK_DGRAM);
    assert_true(fd >= 0);
    send_to(fd, m, to);
    close(fd);
}

static void on_peer_udp(struct lade_loop *l, int fd, uint32_t events, void *ud)
{
    (void)l;
    (void)events;
    struct peer *p = ud;
    uint8_t q[600];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
    if (n < 12)
        return;
    p->udp_queries++;
    if (p->n_src < 64) {
        p->src_ports[p->n_src] = ntohs(from.sin_port);
        p->ids[p->n_src++] = (uint16_t)(q[0] << 8 | q[1]);
    }
    const char *real[] = {p->reply_ip ? p->reply_ip : REAL_IP};
    const char *evil[] = {EVIL_IP};
    static struct tmsg m, bad;
    switch (p->mode) {
    case M_SILENT:
        return;
    case M_ANSWER:
        break;
    case M_WRONG_ID:
        assert_true(tm_reply(&bad, q, (size_t)n, 0, evil, 1, 60));
        bad.b[1] ^= 0x5A;
        send_to(fd, &bad, &from);
        break;
    case M_SPOOF_ADDR:
    case M_SPOOF_PORT:
        /* A perfect forgery (right id and question) from elsewhere; the real answer 100 ms
         * later. Only the kernel's connect() filter (and our source check) stop the forgery. */
        assert_true(tm_reply(&bad, q, (size_t)n, 0, evil, 1, 60));
        if (p->mode == M_SPOOF_ADDR)
            spoof_from(SPOOF_IP, p->port, &bad, &from);
        else
            spoof_from(p->ip, 0, &bad, &from);
        assert_true(tm_reply(&m, q, (size_t)n, 0, real, 1, 60));
        hold(p, &m, &from, 100);
        return;
    case M_WRONG_QUESTION: {
        tm_header(&bad, (unsigned)(q[0] << 8 | q[1]), 0x8180, 1, 1, 0, 0);
        tm_question(&bad, "evil.lade.test", 1, 1);
        tm_ptr(&bad, 12);
        tm_addr_rr(&bad, EVIL_IP, 60);
        send_to(fd, &bad, &from);
        break;
    }
    case M_GARBAGE:
        bad.n = 0;
        tm_bytes(&bad, "\x01\x02\x03", 3);
        send_to(fd, &bad, &from);
        assert_true(tm_reply(&bad, q, (size_t)n, 0, evil, 1, 60));
        bad.n -= 2; /* cut inside the address */
        send_to(fd, &bad, &from);
        assert_true(tm_reply(&bad, q, (size_t)n, 0, evil, 1, 60));
        bad.b[2] &= 0x7F; /* QR = 0 */
        send_to(fd, &bad, &from);
        break;
    case M_TC:
        assert_true(tm_reply(&m, q, (size_t)n, 0x0200, NULL, 0, 0));
        send_to(fd, &m, &from);
        return;
    case M_NXDOMAIN:
        assert_true(tm_reply(&m, q, (size_t)n, 3, NULL, 0, 0));
        send_to(fd, &m, &from);
        return;
    case M_SLOW:
        assert_true(tm_reply(&m, q, (size_t)n, 0, real, 1, 60));
        hold(p, &m, &from, p->delay_ms);
        return;
    case M_FOLD_CASE:
        assert_true(tm_reply(&m, q, (size_t)n, 0, real, 1, 60));
        for (size_t i = 12; i < m.n && m.b[i]; i++)
            if (m.b[i] >= 'A' && m.b[i] <= 'Z')
                m.b[i] += 32;
        send_to(fd, &m, &from);
        return;
    }
    assert_true(tm_reply(&m, q, (size_t)n, 0, real, 1, 60));
    send_to(fd, &m, &from);
}

/* TCP: one query per connection, answered with 40 addresses (more than fits 512 bytes). */
static void on_peer_conn(struct lade_loop *l, int fd, uint32_t events, void *ud)
{
    (void)events;
    struct peer *p = ud;
    ssize_t n = recv(fd, p->tcp_buf + p->tcp_len, sizeof p->tcp_buf - p->tcp_len, 0);
    if (n <= 0) {
        lade_loop_unwatch(l, fd);
        close(fd);
        p->conn = -1;
        return;
    }
    p->tcp_len += (size_t)n;
    if (p->tcp_len < 2 || p->tcp_len < 2u + (size_t)(p->tcp_buf[0] << 8 | p->tcp_buf[1]))
        return;
    p->tcp_queries++;
    static const char *many[40];
    static char text[40][16];
    for (int i = 0; i < 40; i++) {
        snprintf(text[i], sizeof text[i], "10.0.1.%d", i + 1);
        many[i] = text[i];
    }
    static struct tmsg m;
    assert_true(tm_reply(&m, p->tcp_buf + 2, p->tcp_len - 2, 0, many, 40, 60));
    assert_true(m.n > LADE_DNS_UDP_MAX);
    uint8_t len[2] = {(uint8_t)(m.n >> 8), (uint8_t)m.n};
    assert_int_equal(send(fd, len, 2, MSG_NOSIGNAL), 2);
    assert_int_equal(send(fd, m.b, m.n, MSG_NOSIGNAL), (ssize_t)m.n);
    lade_loop_unwatch(l, fd);
    close(fd);
    p->conn = -1;
    p->tcp_len = 0;
}

static void on_peer_listen(struct lade_loop *l, int fd, uint32_t events, void *ud)
{
    (void)events;
    struct peer *p = ud;
    int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0)
        return;
    assert_int_equal(p->conn, -1);
    p->conn = c;
    p->tcp_len = 0;
    assert_int_equal(lade_loop_watch(l, c, LADE_IO_READ, on_peer_conn, p), LADE_OK);
}

/* Opens a peer on addr with a UDP socket and a TCP listener on the same free port. */
static void peer_open(struct peer *p, const char *addr, enum mode mode)
{
    memset(p, 0, sizeof *p);
    snprintf(p->ip, sizeof p->ip, "%s", addr);
    p->mode = mode;
    p->conn = -1;
    for (int tries = 0; tries < 50; tries++) {
        p->udp = sock_on(addr, 0, SOCK_DGRAM);
        assert_true(p->udp >= 0);
        struct sockaddr_in sin;
        socklen_t sl = sizeof sin;
        assert_int_equal(getsockname(p->udp, (struct sockaddr *)&sin, &sl), 0);
        p->port = ntohs(sin.sin_port);
        p->tcp = sock_on(addr, p->port, SOCK_STREAM);
        if (p->tcp >= 0 && listen(p->tcp, 8) == 0)
            break;
        if (p->tcp >= 0)
            close(p->tcp);
        close(p->udp);
        p->tcp = p->udp = -1;
    }
    assert_true(p->udp >= 0 && p->tcp >= 0);
    assert_int_equal(lade_loop_watch(loop, p->udp, LADE_IO_READ, on_peer_udp, p), LADE_OK);
    assert_int_equal(lade_loop_watch(loop, p->tcp, LADE_IO_READ, on_peer_listen, p), LADE_OK);
}

static void peer_close(struct peer *p)
{
    for (int i = 0; i < HELD_MAX; i++)
        if (p->held[i].busy)
            lade_timer_cancel(loop, &p->held[i].t);
    int fds[3] = {p->udp, p->tcp, p->conn};
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0) {
            lade_loop_unwatch(loop, fds[i]);
            close(fds[i]);
        }
}

static const char *peer_addr(const struct peer *p)
{
    static char buf[4][64];
    static int i;
    char *b = buf[i++ % 4];
    snprintf(b, 64, "%s:%d", p->ip, p->port);
    return b;
}

/* ---------------------------------------------------------------- dnsmasq */

/* Asks dnsmasq directly (blocking, 200 ms) whether it answers yet. */
static bool dnsmasq_answers(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)dnsmasq_port)};
    inet_pton(AF_INET, DNSMASQ_IP, &sin.sin_addr);
    struct tmsg m;
    tm_header(&m, 7, 0x0100, 1, 0, 0, 0);
    tm_question(&m, "hub.lade.test", 1, 1);
    bool ok = false;
    if (sendto(fd, m.b, m.n, 0, (struct sockaddr *)&sin, sizeof sin) == (ssize_t)m.n) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        uint8_t buf[512];
        ok = poll(&pfd, 1, 200) == 1 && recv(fd, buf, sizeof buf, 0) > 12;
    }
    close(fd);
    return ok;
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    if (getenv("LADE_TEST_DEBUG"))
        lade_log_set_level(LADE_LOG_TRACE);
    assert_int_equal(lade_loop_new(&loop), LADE_OK);
    const char *bin = access("/usr/sbin/dnsmasq", X_OK) == 0 ? "/usr/sbin/dnsmasq" : "dnsmasq";
    if (strcmp(bin, "dnsmasq") == 0 && h_sh("command -v dnsmasq >/dev/null") != 0) {
        fprintf(stderr, "test_dns: dnsmasq is not installed (scripts/install-deps.sh)\n");
        return -1;
    }
    const char *dir = h_tmpdir("dns");
    snprintf(dnsmasq_log, sizeof dnsmasq_log, "%s/dnsmasq.log", dir);
    for (int attempt = 0; attempt < 5 && !dnsmasq_pid; attempt++) {
        /* A port free for UDP and TCP on the address (dnsmasq serves both). */
        struct peer probe;
        peer_open(&probe, DNSMASQ_IP, M_SILENT);
        dnsmasq_port = probe.port;
        peer_close(&probe);
        char port_arg[32], listen_arg[64];
        snprintf(port_arg, sizeof port_arg, "--port=%d", dnsmasq_port);
        snprintf(listen_arg, sizeof listen_arg, "--listen-address=%s", DNSMASQ_IP);
        const char *argv[] = {bin,
                              "--keep-in-foreground",
                              "--conf-file=/dev/null",
                              "--no-resolv",
                              "--no-hosts",
                              "--pid-file=",
                              "--log-facility=-",
                              "--log-queries",
                              "--bind-interfaces",
                              listen_arg,
                              port_arg,
                              "--local-ttl=60",
                              "--local=/lade.test/",
                              "--address=/hub.lade.test/10.9.8.7",
                              "--host-record=fw.lade.test,10.9.8.8,fd00::8",
                              "--cname=alias.lade.test,fw.lade.test",
                              NULL};
        pid_t pid = h_spawn(argv, NULL, dnsmasq_log);
        uint64_t end = h_now_ms() + 5000;
        while (h_now_ms() < end && h_running(pid, NULL) && !dnsmasq_answers())
            ;
        if (h_running(pid, NULL) && dnsmasq_answers())
            dnsmasq_pid = pid;
        else
            h_stop(pid, SIGTERM, 1000);
    }
    if (!dnsmasq_pid) {
        fprintf(stderr, "test_dns: dnsmasq did not come up; log:\n%s\n",
                h_read_file(dnsmasq_log) ? h_read_file(dnsmasq_log) : "(none)");
        return -1;
    }
    snprintf(dnsmasq_addr, sizeof dnsmasq_addr, "%s:%d", DNSMASQ_IP, dnsmasq_port);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (dnsmasq_pid)
        h_stop(dnsmasq_pid, SIGTERM, 3000);
    lade_loop_free(loop);
    return 0;
}

/* ---------------------------------------------------------------- tests: dnsmasq */

static void test_dnsmasq(void **state)
{
    (void)state;
    struct lade_dnsres *r = mk(dnsmasq_addr, NULL, 0, NULL);
    assert_int_equal(lade_dnsres_server_count(r), 1);

    struct res x = run(r, "hub.lade.test", AF_INET);
    assert_int_equal(x.err, LADE_OK);
    assert_int_equal(x.n, 1);
    assert_string_equal(ip(&x.addrs[0]), "10.9.8.7");
    assert_int_equal(x.info.source, LADE_DNSRES_DNS);
    assert_int_equal(x.info.server, 0);
    assert_false(x.info.fallback);
    assert_false(x.info.tcp);
    assert_int_equal(x.info.rcode, 0);
    assert_int_equal(x.info.ttl_s, 60);
    assert_string_equal(ip(&x.info.server_addr), dnsmasq_addr);
    assert_int_equal(x.info.queries, 1);

    /* From the cache now (the name in another case and with a trailing dot). */
    x = run(r, "HUB.lade.test.", AF_INET);
    assert_int_equal(x.err, LADE_OK);
    assert_int_equal(x.info.source, LADE_DNSRES_CACHE);
    assert_string_equal(ip(&x.addrs[0]), "10.9.8.7");
    assert_true(x.info.ttl_s >= 59 && x.info.ttl_s <= 60);

    /* A CNAME chain, and AAAA. */
    x = run(r, "alias.lade.test", AF_INET);
    assert_int_equal(x.err, LADE_OK);
    assert_string_equal(ip(&x.addrs[0]), "10.9.8.8");
    x = run(r, "fw.lade.test", AF_INET6);
    assert_int_equal(x.err, LADE_OK);
    assert_int_equal(x.addrs[0].ss.ss_family, AF_INET6);
    assert_string_equal(ip(&x.addrs[0]), "fd00::8");

    /* NXDOMAIN from the DHCP server is final; REFUSED (a name outside its zones, no upstream)
     * leaves nothing to ask. */
    x = run(r, "nx.lade.test", AF_INET);
    assert_int_equal(x.err, LADE_ERR_NOT_FOUND);
    assert_int_equal(x.info.rcode, LADE_DNS_NXDOMAIN);
    assert_int_equal(x.info.server, 0);
    x = run(r, "other.example", AF_INET);
    assert_int_equal(x.err, LADE_ERR_RESOLVE);
    assert_true(x.elapsed_ms < 1000);

    /* Health for diagnostics. */
    struct lade_dnsres_server_info si;
    assert_int_equal(lade_dnsres_server_info(r, 0, &si), LADE_OK);
    assert_false(si.fallback);
    assert_false(si.no_0x20); /* dnsmasq keeps the question's case */
    assert_true(si.answered >= 5);
    assert_true(si.srtt_ms >= 1);
    assert_int_equal(si.last_rcode, LADE_DNS_REFUSED);
    assert_int_equal(lade_dnsres_server_info(r, 1, &si), LADE_ERR_NOT_FOUND);

    /* Literals and hosts entries never reach DNS. */
    x = run(r, "192.0.2.1", AF_INET);
    assert_int_equal(x.err, LADE_OK);
    assert_int_equal(x.info.source, LADE_DNSRES_LITERAL);
    assert_string_equal(ip(&x.addrs[0]), "192.0.2.1");
    x = run(r, "[2001:db8::5]", AF_INET);
    assert_int_equal(x.err, LADE_OK);
    assert_string_equal(ip(&x.addrs[0]), "2001:db8::5");
    lade_dnsres_free(r);

    r = mk(dnsmasq_addr, NULL, 0, "10.1.2.3 factory.lade.test\n10.1.2.4 hub.lade.test\n");
    x = run(r, "factory.lade.test", AF_INET);
    assert_int_equal(x.err, LADE_OK);
    assert_int_equal(x.info.source, LADE_DNSRES_HOSTS);
    assert_string_equal(ip(&x.addrs[0]), "10.1.2.3");
    x = run(r, "hub.lade.test", AF_INET); /* the factory hosts file wins */
    assert_string_equal(ip(&x.addrs[0]), "10.1.2.4");
    x = run(r, "fw.lade.test", AF_INET6); /* no IPv6 entry: DNS */
    assert_int_equal(x.info.source, LADE_DNSRES_DNS);

    /* Bad names fail at once, without a callback. */
    struct res none;
    memset(&none, 0, sizeof none);
    assert_int_equal(lade_dnsres_resolve(r, "a..b", AF_INET, on_res, &none, NULL), LADE_ERR_INVAL);
    assert_int_equal(lade_dnsres_resolve(r, "ok.test", AF_UNIX, on_res, &none, NULL),
                     LADE_ERR_INVAL);
    lade_dnsres_free(r);
}

/* DHCP gave no servers: the fallbacks are used. */
static void test_no_dhcp_servers(void **state)
{
    (void)state;
    struct lade_dnsres *r = mk(NULL, dnsmasq_addr, 0, NULL);
    struct res x = run(r, "hub.lade.test", AF_INET);
    assert_int_equal(x.err, LADE_OK);
    assert_string_equal(ip(&x.addrs[0]), "10.9.8.7");
    assert_true(x.info.fallback);
    assert_int_equal(x.info.server, 0);
    /* No servers at all. */
    assert_int_equal(lade_dnsres_set_fallbacks(r, NULL, 0), LADE_OK);
    x = run(r, "fw.lade.test", AF_INET);
    assert_int_equal(x.err, LADE_ERR_RESOLVE);
    lade_dnsres_free(r);
}

/* ---------------------------------------------------------------- tests: hostile answers */

/* The forgery arrives first; the real answer must win and the forgery must not. */
static void hostile(enum mode mode, bool expect_rejected)
{
    struct peer p;
    peer_open(&p, PEER_IP, mode);
    struct lade_dnsres *r = mk(peer_addr(&p), NULL, 0, NULL);
    struct res x = run(r, "hub.lade.test", AF_INET);
    assert_int_equal(x.err, LADE_OK);
    assert_int_equal(x.n, 1);
    assert_string_equal(ip(&x.addrs[0]), REAL_IP);
    assert_int_equal(x.info.queries, 1);
    if (expect_rejected)
        assert_true(x.info.rejected >= 1);
    lade_dnsres_free(r);
    peer_close(&p);
}

static void test_wrong_id(void **state)
{
    (void)state;
    hostile(M_WRONG_ID, true);
}

static void test_wrong_question(void **state)
{
    (void)state;
    hostile(M_WRONG_QUESTION, true);
}

static void test_garbage(void **state)
{
    (void)state;
    hostile(M_GARBAGE, true);
}

static void test_wrong_address(void **state)
{
    (void)state;
    hostile(M_SPOOF_ADDR, false);
}

static void test_wrong_port(void **state)
{
    (void)state;
    hostile(M_SPOOF_PORT, false);
}

/* A server that folds the question's case: asked again without 0x20, remembered. */
static void test_case_folding_server(void **state)
{
    (void)state;
    struct peer p;
    peer_open(&p, PEER_IP, M_FOLD_CASE);
    struct lade_dnsres *r = mk(peer_addr(&p), NULL, 0, NULL);
    /* A long name, so the random case pattern surely has an upper-case letter. */
    struct res x = run(r, "a-rather-long-name-for-the-case-test.lade.test", AF_INET);
    assert_int_equal(x.err, LADE_OK);
    assert_string_equal(ip(&x.addrs[0]), REAL_IP);
    assert_int_equal(p.udp_queries, 2);
    struct lade_dnsres_server_info si;
    assert_int_equal(lade_dnsres_server_info(r, 0, &si), LADE_OK);
    assert_true(si.no_0x20);
    x = run(r, "fw.lade.test", AF_INET); /* straight without 0x20 now */
    assert_int_equal(x.err, LADE_OK);
    assert_int_equal(p.udp_queries, 3);
    lade_dnsres_free(r);
    peer_close(&p);
}

/* Truncated over UDP → the same server over TCP; the long answer is used (capped). */
static void test_truncated_then_tcp(void **state)
{
    (void)state;
    struct peer p;
    peer_open(&p, PEER_IP, M_TC);
    struct lade_dnsres *r = mk(peer_addr(&p), NULL, 0, NULL);
    struct res x = run(r, "hub.lade.test", AF_INET);
    assert_int_equal(x.err, LADE_OK);
    assert_true(x.info.tcp);
    assert_int_equal(x.n, LADE_DNS_ADDR_MAX);
    assert_string_equal(ip(&x.addrs[0]), "10.0.1.1");
    assert_int_equal(p.udp_queries, 1);
    assert_int_equal(p.tcp_queries, 1);
    assert_int_equal(x.info.queries, 2);
    lade_dnsres_free(r);
    peer_close(&p);
}

/* ---------------------------------------------------------------- tests: policy on the wire */

/* A silent DHCP server: the fallback is asked after the hedge and its answer comes within ~1 s. */
static void test_silent_dhcp_hedge(void **state)
{
    (void)state;
    struct peer p;
    peer_open(&p, PEER_IP, M_SILENT);
    struct lade_dnsres *r = mk(peer_addr(&p), dnsmasq_addr, 0, NULL);
    struct res x = run(r, "hub.lade.test", AF_INET);
    assert_int_equal(x.err, LADE_OK);
    assert_string_equal(ip(&x.addrs[0]), "10.9.8.7");
    assert_true(x.info.fallback);
    assert_int_equal(x.info.server, 1);
    assert_true(x.elapsed_ms >= LADE_DNS_HEDGE_MS - 5);
    assert_true(x.elapsed_ms < 1000);
    assert_int_equal(p.udp_queries, 1);
    lade_dnsres_free(r);
    peer_close(&p);
}

/* The fallback says NXDOMAIN at once, the DHCP server answers after 1 s: the real answer wins. */
static void test_public_nxdomain_loses(void **state)
{
    (void)state;
    struct peer dhcp, pub;
    peer_open(&dhcp, PEER_IP, M_SLOW);
    dhcp.delay_ms = 1000;
    dhcp.reply_ip = "10.9.9.9";
    peer_open(&pub, PEER2_IP, M_NXDOMAIN);
    struct lade_dnsres *r = mk(peer_addr(&dhcp), peer_addr(&pub), 0, NULL);
    struct res x = run(r, "local-only.lade.test", AF_INET);
    assert_int_equal(x.err, LADE_OK);
    assert_string_equal(ip(&x.addrs[0]), "10.9.9.9");
    assert_false(x.info.fallback);
    assert_true(x.elapsed_ms >= 1000 && x.elapsed_ms < 2000);
    assert_int_equal(pub.udp_queries, 1);
    lade_dnsres_free(r);

    /* With a silent DHCP server, the fallback's NXDOMAIN stands once the DHCP server failed. */
    dhcp.mode = M_SILENT;
    r = mk(peer_addr(&dhcp), peer_addr(&pub), 0, NULL);
    x = run(r, "local-only.lade.test", AF_INET);
    assert_int_equal(x.err, LADE_ERR_NOT_FOUND);
    assert_true(x.info.fallback);
    assert_true(x.elapsed_ms >= LADE_DNS_ATTEMPT_MS - 5 && x.elapsed_ms < 3000);
    lade_dnsres_free(r);
    peer_close(&dhcp);
    peer_close(&pub);
}

/* A DHCP server address with nothing listening: port unreachable → the next server at once. */
static void test_closed_port(void **state)
{
    (void)state;
    struct peer gone;
    peer_open(&gone, PEER_IP, M_SILENT);
    char addr[64];
    snprintf(addr, sizeof addr, "%s", peer_addr(&gone));
    peer_close(&gone);
    struct lade_dnsres *r = mk(addr, dnsmasq_addr, 0, NULL);
    struct res x = run(r, "hub.lade.test", AF_INET);
    assert_int_equal(x.err, LADE_OK);
    assert_true(x.info.fallback);
    assert_true(x.elapsed_ms < LADE_DNS_HEDGE_MS);
    struct lade_dnsres_server_info si;
    assert_int_equal(lade_dnsres_server_info(r, 0, &si), LADE_OK);
    assert_int_equal(si.errors, 1);
    assert_true(si.down);
    lade_dnsres_free(r);
}

/* Nobody answers: TIMEOUT at the deadline; every query had its own port and id. */
static void test_deadline_fresh_ports(void **state)
{
    (void)state;
    struct peer p;
    peer_open(&p, PEER_IP, M_SILENT);
    struct lade_dnsres *r = mk(peer_addr(&p), NULL, 2600, NULL);
    struct res x = run(r, "hub.lade.test", AF_INET);
    assert_int_equal(x.err, LADE_ERR_TIMEOUT);
    assert_int_equal(x.n, 0);
    assert_int_equal(x.info.server, -1);
    assert_true(x.elapsed_ms >= 2600 && x.elapsed_ms < 3600);
    /* One server: asked at 0, 500 and 1500 ms (rounds 0..2). */
    assert_int_equal(x.info.queries, 3);
    x = run(r, "fw.lade.test", AF_INET);
    x = run(r, "alias.lade.test", AF_INET);
    assert_int_equal(p.udp_queries, 9);
    int distinct_ports = 0, distinct_ids = 0;
    uint16_t lo = 65535, hi = 0;
    for (int i = 0; i < p.n_src; i++) {
        bool seen_port = false, seen_id = false;
        for (int j = 0; j < i; j++) {
            seen_port |= p.src_ports[j] == p.src_ports[i];
            seen_id |= p.ids[j] == p.ids[i];
        }
        distinct_ports += !seen_port;
        distinct_ids += !seen_id;
        lo = p.src_ports[i] < lo ? p.src_ports[i] : lo;
        hi = p.src_ports[i] > hi ? p.src_ports[i] : hi;
    }
    /* Random 16-bit values: one coincidence is possible, two would be suspicious; ports spread
     * over the ephemeral range rather than counting up. */
    assert_true(distinct_ports >= p.n_src - 1);
    assert_true(distinct_ids >= p.n_src - 1);
    assert_true(hi - lo > 100);
    struct lade_dnsres_server_info si;
    assert_int_equal(lade_dnsres_server_info(r, 0, &si), LADE_OK);
    assert_true(si.timeouts >= 3);
    assert_int_equal(si.answered, 0);
    lade_dnsres_free(r);
    peer_close(&p);
}

/* New DHCP servers during a lookup: it starts over with them, within its deadline. */
static void test_servers_change(void **state)
{
    (void)state;
    struct peer p;
    peer_open(&p, PEER_IP, M_SILENT);
    struct lade_dnsres *r = mk(peer_addr(&p), NULL, 0, NULL);
    struct res x;
    memset(&x, 0, sizeof x);
    x.started_ms = h_now_ms();
    assert_int_equal(lade_dnsres_resolve(r, "hub.lade.test", AF_INET, on_res, &x, NULL), LADE_OK);
    uint64_t end = h_now_ms() + 3000;
    while (p.udp_queries == 0 && h_now_ms() < end)
        assert_int_equal(lade_loop_run_once(loop, 10), LADE_OK);
    assert_int_equal(p.udp_queries, 1);
    struct lade_sockaddr d;
    addr_of(DNSMASQ_IP, dnsmasq_port, &d);
    assert_int_equal(lade_dnsres_set_dhcp_servers(r, &d, 1), LADE_OK);
    assert_false(x.done);
    assert_true(spin(&x.done, 3000));
    assert_int_equal(x.err, LADE_OK);
    assert_string_equal(ip(&x.addrs[0]), "10.9.8.7");
    assert_false(x.info.fallback);
    assert_true(x.elapsed_ms < LADE_DNS_HEDGE_MS);
    lade_dnsres_free(r);
    peer_close(&p);
}

/* Cancel: no callback, sockets closed. Freeing the resolver with queries pending too. */
static void test_cancel(void **state)
{
    (void)state;
    struct peer p;
    peer_open(&p, PEER_IP, M_SILENT);
    int fds = count_fds();
    struct lade_dnsres *r = mk(peer_addr(&p), NULL, 0, NULL);
    struct res x, y, lit;
    memset(&x, 0, sizeof x);
    memset(&y, 0, sizeof y);
    memset(&lit, 0, sizeof lit);
    struct lade_dnsres_query *qx, *qlit;
    assert_int_equal(lade_dnsres_resolve(r, "hub.lade.test", AF_INET, on_res, &x, &qx), LADE_OK);
    assert_int_equal(lade_dnsres_resolve(r, "fw.lade.test", AF_INET, on_res, &y, NULL), LADE_OK);
    assert_int_equal(lade_dnsres_resolve(r, "192.0.2.9", AF_INET, on_res, &lit, &qlit), LADE_OK);
    lade_dnsres_cancel(qlit); /* even an immediate result can be cancelled */
    uint64_t end = h_now_ms() + 3000;
    while (p.udp_queries < 4 && h_now_ms() < end) /* both asked, then retransmitted once */
        assert_int_equal(lade_loop_run_once(loop, 10), LADE_OK);
    assert_true(count_fds() > fds);
    lade_dnsres_cancel(qx);
    idle(700);
    assert_false(x.done);
    assert_false(lit.done);
    lade_dnsres_free(r); /* y pending: no callback either */
    idle(50);
    assert_false(y.done);
    assert_int_equal(count_fds(), fds);
    assert_int_equal(lade_loop_timer_count(loop), 0);
    peer_close(&p);
}

/* Server list parsing (factory settings, tests). */
static void test_parse_servers(void **state)
{
    (void)state;
    struct lade_sockaddr a[4];
    size_t n;
    assert_int_equal(lade_dnsres_parse_servers(LADE_DNSRES_DEFAULT_FALLBACKS, a, 4, &n), LADE_OK);
    assert_int_equal(n, 2);
    assert_string_equal(ip(&a[0]), "8.8.8.8:53");
    assert_string_equal(ip(&a[1]), "1.1.1.1:53");
    assert_int_equal(
        lade_dnsres_parse_servers(" 127.0.0.1:5353,[::1]:54 ::2\t10.0.0.1:0", a, 4, &n), LADE_OK);
    assert_int_equal(n, 4);
    assert_string_equal(ip(&a[0]), "127.0.0.1:5353");
    assert_string_equal(ip(&a[1]), "[::1]:54");
    assert_string_equal(ip(&a[2]), "[::2]:53");
    assert_string_equal(ip(&a[3]), "10.0.0.1:53");
    assert_int_equal(lade_dnsres_parse_servers("", a, 4, &n), LADE_OK);
    assert_int_equal(n, 0);
    const char *bad[] = {"1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:x",  "[::1",
                         "[::1]x",   "host.name",     "1.2.3.4:-1", "[1.2.3.4]:5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(lade_dnsres_parse_servers(bad[i], a, 4, &n), LADE_ERR_INVAL);
    assert_int_equal(lade_dnsres_parse_servers("1.1.1.1 2.2.2.2 3.3.3.3", a, 2, &n),
                     LADE_ERR_NOSPACE);
    assert_int_equal(n, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_servers),       cmocka_unit_test(test_dnsmasq),
        cmocka_unit_test(test_no_dhcp_servers),     cmocka_unit_test(test_wrong_id),
        cmocka_unit_test(test_wrong_question),      cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_wrong_address),       cmocka_unit_test(test_wrong_port),
        cmocka_unit_test(test_case_folding_server), cmocka_unit_test(test_truncated_then_tcp),
        cmocka_unit_test(test_silent_dhcp_hedge),   cmocka_unit_test(test_public_nxdomain_loses),
        cmocka_unit_test(test_closed_port),         cmocka_unit_test(test_deadline_fresh_ports),
        cmocka_unit_test(test_servers_change),      cmocka_unit_test(test_cancel),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
