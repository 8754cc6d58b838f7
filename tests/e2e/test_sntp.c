/* e2e.test_sntp: the timesync shell (src/port/linux/timesync.c) on a real event loop, against a
 * real chrony (chronyd -x: it never touches the system clock) and against hand-written UDP peers
 * in this process, all on 127.0.0.0/8:
 *   - chrony, one server, system clock right → TRUSTED with a small offset, stratum 8;
 *   - two chronys, the lade clock two days behind → stepped by two days (two agree);
 *   - a peer an hour off alone → UNTRUSTED; with two good ones → trusted, the bad one flagged;
 *   - KoD DENY → that peer abandoned; RATE → polled less; wrong originate → ignored;
 *   - unreachable servers → UNTRUSTED while the loop keeps running (nothing blocks);
 *   - the floor file: written atomically once trusted; a floor above the servers' time is never
 *     stepped under; host mode; the NTP host resolved from a hosts file.
 * The test never sets the system clock: set_clock returns false (the lade clock keeps its own
 * correction). chronyd runs as root (the test is skipped without root or fails without chronyd).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "lade/clock.h"
#include "lade/log.h"
#include "lade/loop.h"
#include "lade/timesync.h"

#define HOUR_MS 3600000ll
#define DAY_MS  (24 * HOUR_MS)

/* ---------------------------------------------------------------- helpers */

static int64_t real_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* A free UDP port on 127.0.0.1 (bound, then released; peers bind it on other 127/8 addresses). */
static uint16_t free_udp_port(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static struct lade_sockaddr addr_of(const char *ip, uint16_t port)
{
    struct lade_sockaddr a;
    assert_int_equal(lade_sockaddr_parse(ip, &a), LADE_OK);
    lade_sockaddr_set_port(&a, port);
    return a;
}

typedef bool (*pred_fn)(void *arg);

/* Runs the loop until pred(arg) or timeout; returns pred's last value. */
static bool run_until(struct lade_loop *loop, pred_fn pred, void *arg, uint32_t timeout_ms)
{
    uint64_t end = h_now_ms() + timeout_ms;
    while (!pred(arg)) {
        if (h_now_ms() >= end)
            return false;
        assert_int_equal(lade_loop_run_once(loop, 50), LADE_OK);
    }
    return true;
}

static void run_for(struct lade_loop *loop, uint32_t ms)
{
    uint64_t end = h_now_ms() + ms;
    while (h_now_ms() < end)
        assert_int_equal(lade_loop_run_once(loop, 50), LADE_OK);
}

/* ---------------------------------------------------------------- hand-written NTP peers */

struct peer {
    int fd;
    int64_t off_ms;    /* its time − real time */
    const char *kiss;  /* answers with this KoD */
    bool wrong_origin; /* echoes something else */
    bool forge_first;  /* a forged DENY (wrong origin) before the real answer */
    bool silent;       /* reads, never answers */
    int requests;
};

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Now + off as an NTP timestamp, µs resolution, written by hand (not with the codec). */
static void put_ntp_now(uint8_t *p, int64_t off_ms)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    int64_t us = (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000 + off_ms * 1000;
    uint64_t sec = (uint64_t)(us / 1000000) + 2208988800u;
    uint64_t frac = ((uint64_t)(us % 1000000) << 32) / 1000000u;
    put32(p, (uint32_t)sec);
    put32(p + 4, (uint32_t)frac);
}

static void peer_reply(struct peer *p, const struct sockaddr_in *to, const uint8_t *req,
                       const char *kiss, bool bad_origin)
{
    uint8_t b[48];
    memset(b, 0, sizeof b);
    b[0] = 0 << 6 | 4 << 3 | 4; /* LI 0, VN 4, server */
    b[1] = 2;
    b[2] = req[2];
    b[3] = (uint8_t)-20;
    put32(b + 4, 0x00000200);
    put32(b + 8, 0x00000200);
    memcpy(b + 12, "LADE", 4);
    put_ntp_now(b + 16, p->off_ms - 60000);
    memcpy(b + 24, req + 40, 8); /* originate = the request's transmit */
    if (bad_origin)
        b[31] ^= 0x5a;
    put_ntp_now(b + 32, p->off_ms);
    put_ntp_now(b + 40, p->off_ms);
    if (kiss) {
        b[0] = 3 << 6 | 4 << 3 | 4;
        b[1] = 0;
        memcpy(b + 12, kiss, 4);
    }
    (void)sendto(p->fd, b, sizeof b, 0, (const struct sockaddr *)to, sizeof *to);
}

static void peer_readable(struct lade_loop *loop, int fd, uint32_t events, void *ud)
{
    (void)loop;
    (void)events;
    struct peer *p = ud;
    for (;;) {
        uint8_t req[128];
        struct sockaddr_in from;
        socklen_t flen = sizeof from;
        ssize_t n = recvfrom(fd, req, sizeof req, 0, (struct sockaddr *)&from, &flen);
        if (n < 0)
            return;
        if (n < 48 || (req[0] & 7) != 3)
            continue;
        p->requests++;
        if (p->silent)
            continue;
        if (p->forge_first)
            peer_reply(p, &from, req, "DENY", true);
        peer_reply(p, &from, req, p->kiss, p->wrong_origin);
    }
}

static void peer_start(struct lade_loop *loop, struct peer *p, const char *ip, uint16_t port)
{
    p->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(p->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    if (bind(p->fd, (struct sockaddr *)&a, sizeof a) != 0)
        fail_msg("bind %s:%u: %s", ip, port, strerror(errno));
    assert_int_equal(lade_loop_watch(loop, p->fd, LADE_IO_READ, peer_readable, p), LADE_OK);
}

/* After lade_loop_free (which leaves watched fds open). */
static void peer_stop(struct peer *p)
{
    close(p->fd);
}

/* ---------------------------------------------------------------- the shell under test */

struct world {
    struct lade_loop *loop;
    struct lade_timesync *ts;
    int trust_calls;
    bool trusted;
    int set_clock_calls;
    int64_t last_set_clock;
};

static bool cb_set_clock(void *ud, int64_t wall_ms)
{
    struct world *w = ud;
    w->set_clock_calls++;
    w->last_set_clock = wall_ms;
    return false; /* never touch the system clock in a test */
}

static void cb_trust(void *ud, bool trusted)
{
    struct world *w = ud;
    w->trust_calls++;
    w->trusted = trusted;
}

static bool is_trusted(void *arg)
{
    struct world *w = arg;
    return lade_timesync_trusted(w->ts);
}

static bool is_backoff(void *arg)
{
    struct world *w = arg;
    struct lade_sntp_status st;
    lade_timesync_status(w->ts, &st);
    return st.state == LADE_SNTP_BACKOFF;
}

static void world_init(struct world *w)
{
    memset(w, 0, sizeof *w);
    assert_int_equal(lade_loop_new(&w->loop), LADE_OK);
}

static void world_start(struct world *w, struct lade_timesync_cfg *cfg)
{
    cfg->set_clock = cb_set_clock;
    cfg->on_trust = cb_trust;
    cfg->ud = w;
    if (!cfg->build_time_s)
        cfg->build_time_s = real_ms() / 1000 - 30 * 86400;
    assert_int_equal(lade_timesync_new(w->loop, cfg, &w->ts), LADE_OK);
    assert_int_equal(lade_timesync_start(w->ts), LADE_OK);
}

static void world_free(struct world *w)
{
    lade_timesync_free(w->ts);
    lade_loop_free(w->loop);
}

static struct lade_sntp_server_diag server_diag(struct world *w, size_t i)
{
    struct lade_sntp_server_diag d;
    assert_int_equal(lade_timesync_server(w->ts, i, NULL, &d), LADE_OK);
    return d;
}

/* Short intervals so steady-state behaviour shows within seconds (production never does this). */
static void quick_policy(struct lade_sntp_cfg *p)
{
    lade_sntp_cfg_default(p);
    p->min_poll_ms = 1000;
    p->poll_min_ms = 1000;
    p->poll_max_ms = 1500;
    p->retry_min_ms = 1000;
    p->retry_max_ms = 2000;
}

/* ---------------------------------------------------------------- chrony */

static const char *chronyd_path(void)
{
    static const char *paths[] = {"/usr/sbin/chronyd", "/sbin/chronyd", "/usr/local/sbin/chronyd"};
    for (size_t i = 0; i < 3; i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

static pid_t chrony_start(const char *dir, const char *ip, uint16_t port, const char *tag)
{
    const char *bin = chronyd_path();
    if (!bin)
        fail_msg("chronyd not found: install chrony (scripts/install-deps.sh)");
    char conf[600], log[600];
    snprintf(conf, sizeof conf, "%s/%s.conf", dir, tag);
    snprintf(log, sizeof log, "%s/%s.log", dir, tag);
    char text[2048];
    snprintf(text, sizeof text,
             "port %u\n"
             "bindaddress %s\n"
             "local stratum 8\n"
             "allow 127.0.0.0/8\n"
             "driftfile %s/%s.drift\n"
             "pidfile %s/%s.pid\n"
             "cmdport 0\n"
             "bindcmdaddress /\n",
             port, ip, dir, tag, dir, tag);
    h_write_file(conf, text);
    /* -x: never touch the system clock; -d: foreground, log to stderr; -4: IPv4 sockets only
     * (two instances on one port must not collide on [::]); -u root: no privilege drop, so the
     * temp dir needs no chown. */
    const char *argv[] = {bin, "-4", "-x", "-d", "-u", "root", "-f", conf, NULL};
    return h_spawn(argv, NULL, log);
}

/* Polls until the server answers an NTP request (it is up). */
static bool chrony_wait(const char *ip, uint16_t port, uint32_t timeout_ms)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    assert_int_equal(inet_pton(AF_INET, ip, &a.sin_addr), 1);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    uint64_t end = h_now_ms() + timeout_ms;
    bool ok = false;
    while (!ok && h_now_ms() < end) {
        uint8_t req[48] = {0x23};
        req[47] = 1;
        (void)sendto(fd, req, sizeof req, 0, (struct sockaddr *)&a, sizeof a);
        uint8_t rep[64];
        ssize_t n = recv(fd, rep, sizeof rep, 0);
        ok = n >= 48 && (rep[0] & 7) == 4 && rep[1] != 0;
    }
    close(fd);
    return ok;
}

static void need_root(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "test_sntp: chronyd needs root here; skipped\n");
        skip();
    }
}

static void test_chrony_one(void **state)
{
    (void)state;
    need_root();
    const char *dir = h_tmpdir("sntp-chrony");
    uint16_t port = free_udp_port();
    pid_t pid = chrony_start(dir, "127.0.0.5", port, "c1");
    assert_true(chrony_wait("127.0.0.5", port, 10000));

    struct world w;
    world_init(&w);
    struct lade_sockaddr srv = addr_of("127.0.0.5", 0);
    char floor_file[600];
    snprintf(floor_file, sizeof floor_file, "%s/clock-floor", dir);
    struct lade_timesync_cfg cfg = {
        .servers = &srv, .n_servers = 1, .port = port, .floor_file = floor_file};
    world_start(&w, &cfg);
    assert_false(lade_timesync_trusted(w.ts));
    assert_true(run_until(w.loop, is_trusted, &w, 20000));
    assert_true(w.trusted);
    assert_int_equal(w.trust_calls, 1);

    struct lade_sntp_status st;
    lade_timesync_status(w.ts, &st);
    assert_int_equal(st.state, LADE_SNTP_SYNCED);
    assert_int_equal(st.server, 0);
    assert_int_equal(st.stratum, 8);
    assert_true(llabs(st.offset_ms) < 100);
    assert_int_equal(lade_timesync_offset_ms(w.ts), 0); /* < 128 ms: left alone */
    assert_int_equal(w.set_clock_calls, 0);
    assert_true(llabs(lade_timesync_wall_ms(w.ts) - real_ms()) < 100);

    /* The trusted time went to the floor file. */
    int64_t saved = 0;
    assert_int_equal(lade_timesync_read_floor(floor_file, &saved), LADE_OK);
    assert_true(llabs(saved - real_ms() / 1000) <= 60);
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp", floor_file);
    assert_int_not_equal(access(tmp, F_OK), 0);

    char line[512];
    assert_int_equal(lade_timesync_describe(w.ts, line, sizeof line), LADE_OK);
    fprintf(stderr, "test_sntp: %s\n", line);
    assert_non_null(strstr(line, "synced trusted server 127.0.0.5:"));
    assert_non_null(strstr(line, "stratum 8"));
    char small[16];
    assert_int_equal(lade_timesync_describe(w.ts, small, sizeof small), LADE_ERR_NOSPACE);
    assert_string_equal(small, "");
    world_free(&w);
    h_stop(pid, SIGTERM, 5000);
}

/* The lade clock starts two days behind; two chronys agree: one step of two days. */
static void test_chrony_two_step(void **state)
{
    (void)state;
    need_root();
    const char *dir = h_tmpdir("sntp-chrony2");
    uint16_t port = free_udp_port();
    pid_t p1 = chrony_start(dir, "127.0.0.5", port, "c1");
    pid_t p2 = chrony_start(dir, "127.0.0.6", port, "c2");
    assert_true(chrony_wait("127.0.0.5", port, 10000));
    assert_true(chrony_wait("127.0.0.6", port, 10000));

    struct world w;
    world_init(&w);
    struct lade_sockaddr srv[2] = {addr_of("127.0.0.5", 0), addr_of("127.0.0.6", 0)};
    struct lade_timesync_cfg cfg = {
        .servers = srv, .n_servers = 2, .port = port, .start_offset_ms = -2 * DAY_MS};
    world_start(&w, &cfg);
    assert_true(llabs(lade_timesync_wall_ms(w.ts) - (real_ms() - 2 * DAY_MS)) < 1000);
    assert_true(run_until(w.loop, is_trusted, &w, 20000));
    assert_true(llabs(lade_timesync_wall_ms(w.ts) - real_ms()) < 100);
    assert_int_equal(w.set_clock_calls, 1);
    assert_true(llabs(w.last_set_clock - real_ms()) < 1000);
    assert_true(llabs(lade_timesync_offset_ms(w.ts)) < 100); /* -2 days + 2 days */
    assert_true(llabs(lade_timesync_wall_s(w.ts) - real_ms() / 1000) <= 1);
    struct lade_sntp_status st;
    lade_timesync_status(w.ts, &st);
    assert_int_equal(st.agreeing, 2);
    assert_int_equal(st.steps, 1);
    assert_true(llabs(st.last_step_ms - 2 * DAY_MS) < 100);
    world_free(&w);
    h_stop(p1, SIGTERM, 5000);
    h_stop(p2, SIGTERM, 5000);
}

/* ---------------------------------------------------------------- hand-written peers */

static void test_hour_off_alone(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    uint16_t port = free_udp_port();
    struct peer bad = {.off_ms = HOUR_MS};
    peer_start(w.loop, &bad, "127.0.0.21", port);
    struct lade_sockaddr srv = addr_of("127.0.0.21", 0);
    struct lade_timesync_cfg cfg = {.servers = &srv, .n_servers = 1, .port = port};
    world_start(&w, &cfg);
    assert_true(run_until(w.loop, is_backoff, &w, 20000));
    assert_false(lade_timesync_trusted(w.ts));
    assert_int_equal(w.trust_calls, 0);
    assert_int_equal(w.set_clock_calls, 0);
    struct lade_sntp_server_diag d = server_diag(&w, 0);
    assert_int_equal(d.last_result, LADE_SNTP_E_UNCONFIRMED);
    assert_true(d.falseticker);
    assert_true(llabs(d.offset_ms - HOUR_MS) < 100);
    assert_true(bad.requests >= 2);
    world_free(&w);
    peer_stop(&bad);
}

static void test_hour_off_two_good(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    uint16_t port = free_udp_port();
    struct peer p[3] = {{.off_ms = 0}, {.off_ms = HOUR_MS}, {.off_ms = 30}};
    const char *ips[3] = {"127.0.0.21", "127.0.0.22", "127.0.0.23"};
    struct lade_sockaddr srv[3];
    for (int i = 0; i < 3; i++) {
        peer_start(w.loop, &p[i], ips[i], port);
        srv[i] = addr_of(ips[i], 0);
    }
    struct lade_timesync_cfg cfg = {.servers = srv, .n_servers = 3, .port = port};
    world_start(&w, &cfg);
    assert_true(run_until(w.loop, is_trusted, &w, 20000));
    assert_true(llabs(lade_timesync_wall_ms(w.ts) - real_ms()) < 100);
    assert_int_equal(w.set_clock_calls, 0);
    struct lade_sntp_server_diag d = server_diag(&w, 1);
    assert_true(d.falseticker);
    assert_int_equal(d.last_result, LADE_SNTP_E_OUTVOTED);
    assert_false(server_diag(&w, 0).falseticker);
    struct lade_sntp_status st;
    lade_timesync_status(w.ts, &st);
    assert_int_equal(st.agreeing, 2);
    assert_true(st.server == 0 || st.server == 2);
    char line[512];
    assert_int_equal(lade_timesync_describe(w.ts, line, sizeof line), LADE_OK);
    fprintf(stderr, "test_sntp: %s\n", line);
    assert_non_null(strstr(line, "127.0.0.22:"));
    assert_non_null(strstr(line, "outvoted"));
    world_free(&w);
    for (int i = 0; i < 3; i++)
        peer_stop(&p[i]);
}

static void test_kod_deny(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    uint16_t port = free_udp_port();
    struct peer p[3] = {{.off_ms = 0}, {.off_ms = 0}, {.kiss = "DENY"}};
    const char *ips[3] = {"127.0.0.21", "127.0.0.22", "127.0.0.23"};
    struct lade_sockaddr srv[3];
    for (int i = 0; i < 3; i++) {
        peer_start(w.loop, &p[i], ips[i], port);
        srv[i] = addr_of(ips[i], 0);
    }
    struct lade_sntp_cfg policy;
    quick_policy(&policy);
    struct lade_timesync_cfg cfg = {
        .servers = srv, .n_servers = 3, .port = port, .policy = &policy};
    world_start(&w, &cfg);
    assert_true(run_until(w.loop, is_trusted, &w, 20000));
    assert_int_equal(p[2].requests, 1);
    int before = p[0].requests;
    run_for(w.loop, 5000); /* several steady polls at the quick policy */
    assert_true(p[0].requests >= before + 2);
    assert_int_equal(p[2].requests, 1);
    struct lade_sntp_server_diag d = server_diag(&w, 2);
    assert_true(d.denied);
    assert_int_equal(d.last_result, LADE_SNTP_E_DENY);
    assert_string_equal(d.kiss, "DENY");
    world_free(&w);
    for (int i = 0; i < 3; i++)
        peer_stop(&p[i]);
}

static void test_kod_rate(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    uint16_t port = free_udp_port();
    struct peer p[3] = {{.off_ms = 0}, {.off_ms = 0}, {.kiss = "RATE"}};
    const char *ips[3] = {"127.0.0.21", "127.0.0.22", "127.0.0.23"};
    struct lade_sockaddr srv[3];
    for (int i = 0; i < 3; i++) {
        peer_start(w.loop, &p[i], ips[i], port);
        srv[i] = addr_of(ips[i], 0);
    }
    struct lade_sntp_cfg policy;
    quick_policy(&policy);
    struct lade_timesync_cfg cfg = {
        .servers = srv, .n_servers = 3, .port = port, .policy = &policy};
    world_start(&w, &cfg);
    assert_true(run_until(w.loop, is_trusted, &w, 20000));
    /* In the burst: one query to the RATE peer, two to each good one. */
    assert_int_equal(p[2].requests, 1);
    assert_int_equal(p[0].requests, 2);
    run_for(w.loop, 8000);
    /* Its interval doubles with every RATE: 1, 2, 4, 8 s… while the others are asked every
     * 1–1.5 s. */
    fprintf(stderr, "test_sntp: good peer asked %d times, RATE peer %d times\n", p[0].requests,
            p[2].requests);
    assert_true(p[2].requests <= 4);
    assert_true(p[2].requests * 2 <= p[0].requests);
    struct lade_sntp_server_diag d = server_diag(&w, 2);
    assert_int_equal(d.last_result, LADE_SNTP_E_RATE);
    assert_true(d.interval_ms >= 4000);
    assert_false(d.denied);
    world_free(&w);
    for (int i = 0; i < 3; i++)
        peer_stop(&p[i]);
}

static void test_wrong_origin(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    uint16_t port = free_udp_port();
    /* 0 echoes the wrong originate; 1 sends a forged DENY first, then the real answer; 2 is
     * plain good. */
    struct peer p[3] = {{.wrong_origin = true}, {.forge_first = true}, {.off_ms = 0}};
    const char *ips[3] = {"127.0.0.21", "127.0.0.22", "127.0.0.23"};
    struct lade_sockaddr srv[3];
    for (int i = 0; i < 3; i++) {
        peer_start(w.loop, &p[i], ips[i], port);
        srv[i] = addr_of(ips[i], 0);
    }
    struct lade_timesync_cfg cfg = {.servers = srv, .n_servers = 3, .port = port};
    world_start(&w, &cfg);
    assert_true(run_until(w.loop, is_trusted, &w, 20000));
    struct lade_sntp_status st;
    lade_timesync_status(w.ts, &st);
    assert_true(st.server == 1 || st.server == 2);
    assert_int_equal(st.agreeing, 2);
    struct lade_sntp_server_diag d0 = server_diag(&w, 0);
    assert_false(d0.have_sample);
    assert_int_equal(d0.good, 0);
    assert_true(d0.last_result == LADE_SNTP_E_ORIGIN || d0.last_result == LADE_SNTP_E_TIMEOUT);
    assert_true(d0.errors >= 1);
    struct lade_sntp_server_diag d1 = server_diag(&w, 1);
    assert_false(d1.denied); /* the forged DENY was ignored */
    assert_true(d1.good >= 1);
    world_free(&w);
    for (int i = 0; i < 3; i++)
        peer_stop(&p[i]);
}

struct ticker {
    struct lade_timer t;
    struct lade_loop *loop;
    uint64_t last_ms, max_gap_ms;
    int fired;
};

static void ticker_cb(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)t;
    struct ticker *k = ud;
    uint64_t now = h_now_ms();
    if (k->last_ms && now - k->last_ms > k->max_gap_ms)
        k->max_gap_ms = now - k->last_ms;
    k->last_ms = now;
    k->fired++;
    assert_int_equal(lade_timer_arm_in(loop, &k->t, 50), LADE_OK);
}

/* Unreachable (ICMP port unreachable) and silent servers: UNTRUSTED, and the loop — where the
 * charger's control runs — never stalls. */
static void test_unreachable(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    uint16_t port = free_udp_port();
    struct peer silent = {.silent = true};
    peer_start(w.loop, &silent, "127.0.0.32", port);
    struct lade_sockaddr srv[2] = {addr_of("127.0.0.31", 0), addr_of("127.0.0.32", 0)};
    struct ticker k = {.loop = w.loop};
    lade_timer_init(&k.t, ticker_cb, &k);
    assert_int_equal(lade_timer_arm_in(w.loop, &k.t, 50), LADE_OK);
    struct lade_timesync_cfg cfg = {.servers = srv, .n_servers = 2, .port = port};
    uint64_t t0 = h_now_ms();
    world_start(&w, &cfg);
    assert_true(h_now_ms() - t0 < 1000); /* start waits for nothing (a reply takes 3 s) */
    assert_true(run_until(w.loop, is_backoff, &w, 20000));
    assert_false(lade_timesync_trusted(w.ts));
    assert_int_equal(server_diag(&w, 0).last_result, LADE_SNTP_E_REFUSED);
    assert_int_equal(server_diag(&w, 1).last_result, LADE_SNTP_E_TIMEOUT);
    assert_int_equal(silent.requests, 4);
    assert_true(k.fired > 100);
    assert_true(k.max_gap_ms < 1500); /* a blocking wait would stall it ≥ 3 s */
    struct lade_sntp_status st;
    lade_timesync_status(w.ts, &st);
    assert_true(st.next_mono_ms >= lade_mono_ms() + 50000u); /* next burst ≥ ~64 s away */
    lade_timer_cancel(w.loop, &k.t);
    world_free(&w);
    peer_stop(&silent);
}

/* A floor above the servers' time: the lade clock goes up to it and never under it. */
static void test_floor_above_servers(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    const char *dir = h_tmpdir("sntp-floor");
    char floor_file[600];
    snprintf(floor_file, sizeof floor_file, "%s/clock-floor", dir);
    int64_t floor_s = real_ms() / 1000 + 86400;
    assert_int_equal(lade_timesync_write_floor(floor_file, floor_s), LADE_OK);
    uint16_t port = free_udp_port();
    struct peer p[2] = {{.off_ms = 0}, {.off_ms = 0}};
    const char *ips[2] = {"127.0.0.21", "127.0.0.22"};
    struct lade_sockaddr srv[2];
    for (int i = 0; i < 2; i++) {
        peer_start(w.loop, &p[i], ips[i], port);
        srv[i] = addr_of(ips[i], 0);
    }
    struct lade_timesync_cfg cfg = {
        .servers = srv, .n_servers = 2, .port = port, .floor_file = floor_file};
    world_start(&w, &cfg);
    assert_int_equal(w.set_clock_calls, 1);
    assert_true(w.last_set_clock >= floor_s * 1000);
    assert_true(run_until(w.loop, is_backoff, &w, 20000));
    assert_false(lade_timesync_trusted(w.ts));
    assert_true(lade_timesync_wall_ms(w.ts) >= floor_s * 1000);
    assert_int_equal(server_diag(&w, 0).last_result, LADE_SNTP_E_FLOOR);
    /* Untrusted time is never saved. */
    int64_t saved;
    assert_int_equal(lade_timesync_read_floor(floor_file, &saved), LADE_OK);
    assert_int_equal(saved, floor_s);
    world_free(&w);
    for (int i = 0; i < 2; i++)
        peer_stop(&p[i]);

    /* Garbage in the file: ignored, so no floor step. */
    h_write_file(floor_file, "soon\n");
    assert_int_equal(lade_timesync_read_floor(floor_file, &saved), LADE_ERR_INVAL);
    world_init(&w);
    struct lade_timesync_cfg cfg2 = {
        .servers = srv, .n_servers = 2, .port = port, .floor_file = floor_file};
    world_start(&w, &cfg2);
    assert_int_equal(w.set_clock_calls, 0);
    world_free(&w);
    char missing[700];
    snprintf(missing, sizeof missing, "%s/none", dir);
    assert_int_equal(lade_timesync_read_floor(missing, &saved), LADE_ERR_NOT_FOUND);
}

static void test_host_mode(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    struct lade_timesync_cfg cfg = {.host_mode = true, .build_time_s = real_ms() / 1000 + 86400};
    world_start(&w, &cfg);
    assert_true(lade_timesync_trusted(w.ts));
    assert_true(w.trusted);
    assert_int_equal(w.trust_calls, 1);
    assert_int_equal(w.set_clock_calls, 0); /* not even to a floor in the future */
    assert_int_equal(lade_timesync_offset_ms(w.ts), 0);
    assert_int_equal(lade_timesync_start(w.ts), LADE_ERR_STATE);
    struct lade_sntp_status st;
    lade_timesync_status(w.ts, &st);
    assert_int_equal(st.state, LADE_SNTP_HOST);
    char line[128];
    assert_int_equal(lade_timesync_describe(w.ts, line, sizeof line), LADE_OK);
    assert_string_equal(line, "host trusted");
    world_free(&w);
}

/* The NTP host is a name resolved from a hosts file (the factory setting, SPEC R6). */
static void test_hosts_file(void **state)
{
    (void)state;
    struct world w;
    world_init(&w);
    const char *dir = h_tmpdir("sntp-hosts");
    char hosts[600];
    snprintf(hosts, sizeof hosts, "%s/hosts", dir);
    h_write_file(hosts, "127.0.0.21 ntp.lade.test\n127.0.0.22 ntp.lade.test\n");
    uint16_t port = free_udp_port();
    struct peer p[2] = {{.off_ms = 0}, {.off_ms = 0}};
    peer_start(w.loop, &p[0], "127.0.0.21", port);
    peer_start(w.loop, &p[1], "127.0.0.22", port);
    struct lade_timesync_cfg cfg = {.ntp_host = "ntp.lade.test", .hosts_file = hosts, .port = port};
    world_start(&w, &cfg);
    assert_int_equal(lade_timesync_servers(w.ts), 2);
    assert_true(run_until(w.loop, is_trusted, &w, 20000));
    struct lade_sockaddr a;
    assert_int_equal(lade_timesync_server(w.ts, 1, &a, NULL), LADE_OK);
    assert_int_equal(lade_sockaddr_port(&a), port);
    assert_int_equal(lade_timesync_server(w.ts, 2, &a, NULL), LADE_ERR_NOT_FOUND);
    assert_true(p[0].requests >= 1 && p[1].requests >= 1);
    world_free(&w);
    peer_stop(&p[0]);
    peer_stop(&p[1]);

    /* A name nobody knows yet: untrusted, nothing sent, not an error (retried later). */
    world_init(&w);
    struct lade_timesync_cfg cfg2 = {
        .ntp_host = "nowhere.lade.test", .hosts_file = hosts, .port = port};
    world_start(&w, &cfg2);
    assert_false(lade_timesync_trusted(w.ts));
    assert_int_equal(lade_timesync_servers(w.ts), 0);
    world_free(&w);
}

int main(void)
{
    lade_log_set_level(getenv("LADE_LOG") ? LADE_LOG_DEBUG : LADE_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chrony_one),
        cmocka_unit_test(test_chrony_two_step),
        cmocka_unit_test(test_hour_off_alone),
        cmocka_unit_test(test_hour_off_two_good),
        cmocka_unit_test(test_kod_deny),
        cmocka_unit_test(test_kod_rate),
        cmocka_unit_test(test_wrong_origin),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_floor_above_servers),
        cmocka_unit_test(test_host_mode),
        cmocka_unit_test(test_hosts_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
