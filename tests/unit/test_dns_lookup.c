/* Unit tests for the DNS resolution policy (src/proto/dns/lookup.c) with a fake clock: server
 * table and health, hedging (timing, SRTT bounds, back-off ranking), the NXDOMAIN rule, errors
 * and exhaustion, TC → TCP, 0x20 fallback, deadline and retransmission rounds, restart after a
 * server change, and the TTL cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lade/dns.h"

/* ---------------------------------------------------------------- helpers */

static struct lade_dns_servers srv;
static struct lade_dns_lookup lk;
static uint64_t now;

/* Open attempts as the fake shell sees them: slot → server, -1 when closed. */
static int slot_server[LADE_DNS_MAX_ATTEMPTS];
static bool slot_tcp[LADE_DNS_MAX_ATTEMPTS];
static bool slot_0x20[LADE_DNS_MAX_ATTEMPTS];
static int sends, closes, dones;
static int send_log[64]; /* server of every SEND, in order */

static struct lade_dns_endpoint ep(uint8_t last, uint16_t port)
{
    struct lade_dns_endpoint e = {.family = 4, .ip = {127, 0, 0, last}, .port = port};
    return e;
}

/* n_dhcp DHCP servers 127.0.0.1.., n_fb fallbacks 127.0.0.101.. */
static void servers(size_t n_dhcp, size_t n_fb)
{
    struct lade_dns_endpoint d[LADE_DNS_MAX_DHCP], f[LADE_DNS_MAX_FALLBACK];
    for (size_t i = 0; i < n_dhcp; i++)
        d[i] = ep((uint8_t)(1 + i), 53);
    for (size_t i = 0; i < n_fb; i++)
        f[i] = ep((uint8_t)(101 + i), 53);
    lade_dns_servers_init(&srv);
    lade_dns_servers_set(&srv, d, n_dhcp, f, n_fb);
}

/* Runs the action loop at the current time like the shell does. */
static void pump(void)
{
    struct lade_dns_action act;
    int guard = 0;
    while (lade_dns_lookup_next_action(&lk, now, &act)) {
        assert_true(++guard < 100);
        switch (act.kind) {
        case LADE_DNS_ACT_CLOSE:
            assert_int_not_equal(slot_server[act.attempt], -1);
            slot_server[act.attempt] = -1;
            closes++;
            break;
        case LADE_DNS_ACT_SEND:
            assert_int_equal(slot_server[act.attempt], -1); /* closed before reuse */
            assert_true(act.server < srv.n);
            slot_server[act.attempt] = (int)act.server;
            slot_tcp[act.attempt] = act.tcp;
            slot_0x20[act.attempt] = act.use_0x20;
            if (sends < 64)
                send_log[sends] = (int)act.server;
            sends++;
            break;
        case LADE_DNS_ACT_DONE:
            dones++;
            break;
        }
    }
}

/* Advances the fake clock to t, stopping at every deadline on the way (as timers would). */
static void run_until(uint64_t t)
{
    for (int guard = 0; guard < 1000; guard++) {
        pump();
        uint64_t d = lade_dns_lookup_next_deadline(&lk);
        if (d > t)
            break;
        assert_true(d >= now);
        now = d;
    }
    now = t;
    pump();
}

static void start(const struct lade_dns_lookup_cfg *cfg)
{
    for (size_t k = 0; k < LADE_DNS_MAX_ATTEMPTS; k++)
        slot_server[k] = -1;
    sends = closes = dones = 0;
    lade_dns_lookup_start(&lk, &srv, cfg, now);
    pump();
}

/* The open slot asking server s over UDP (or TCP); fails the test if none. */
static unsigned slot_of(int s, bool tcp)
{
    for (unsigned k = 0; k < LADE_DNS_MAX_ATTEMPTS; k++)
        if (slot_server[k] == s && slot_tcp[k] == tcp)
            return k;
    fail_msg("no open query to server %d", s);
    return 0;
}

static int open_count(void)
{
    int n = 0;
    for (size_t k = 0; k < LADE_DNS_MAX_ATTEMPTS; k++)
        n += slot_server[k] != -1;
    return n;
}

static void answer(int s, uint8_t rcode, size_t n_addr, bool tc)
{
    struct lade_dns_answer a;
    memset(&a, 0, sizeof a);
    a.rcode = rcode;
    a.tc = tc;
    a.n_addr = n_addr;
    a.n_addr_seen = n_addr;
    a.ttl_s = 300;
    a.has_neg_ttl = rcode == LADE_DNS_NXDOMAIN;
    a.neg_ttl_s = 60;
    struct lade_dns_addr addrs[2] = {{4, {10, 0, 0, (uint8_t)s}}, {4, {10, 0, 1, (uint8_t)s}}};
    lade_dns_lookup_on_answer(&lk, slot_of(s, false), &a, addrs, now);
    pump();
}

static void answer_tcp(int s, uint8_t rcode, size_t n_addr, bool tc)
{
    struct lade_dns_answer a;
    memset(&a, 0, sizeof a);
    a.rcode = rcode;
    a.tc = tc;
    a.n_addr = n_addr;
    a.ttl_s = 30;
    struct lade_dns_addr addrs[1] = {{4, {10, 0, 2, (uint8_t)s}}};
    lade_dns_lookup_on_answer(&lk, slot_of(s, true), &a, addrs, now);
    pump();
}

static const struct lade_dns_result *result(void)
{
    assert_true(lade_dns_lookup_done(&lk));
    assert_int_equal(dones, 1);
    assert_int_equal(open_count(), 0); /* everything closed before DONE */
    return lade_dns_lookup_result(&lk);
}

static int setup(void **state)
{
    (void)state;
    now = 1000000;
    servers(1, 2);
    return 0;
}

/* ---------------------------------------------------------------- servers */

static void test_servers_set(void **state)
{
    (void)state;
    struct lade_dns_endpoint d[10], f[6];
    for (int i = 0; i < 10; i++)
        d[i] = ep((uint8_t)(1 + i), 53);
    for (int i = 0; i < 6; i++)
        f[i] = ep((uint8_t)(101 + i), 53);
    lade_dns_servers_init(&srv);
    assert_true(lade_dns_servers_set(&srv, d, 10, f, 6));
    assert_int_equal(srv.n, LADE_DNS_MAX_DHCP + LADE_DNS_MAX_FALLBACK);
    assert_false(srv.s[LADE_DNS_MAX_DHCP - 1].fallback);
    assert_true(srv.s[LADE_DNS_MAX_DHCP].fallback);
    uint32_t gen = srv.generation;
    /* Same list: unchanged. */
    assert_false(lade_dns_servers_set(&srv, d, 10, f, 6));
    assert_int_equal(srv.generation, gen);

    /* Health survives for servers that stay; a fallback also given by DHCP is a DHCP server;
     * invalid endpoints are skipped. */
    srv.s[1].srtt_ms = 42;
    srv.s[1].fails = 3;
    struct lade_dns_endpoint d2[4] = {ep(9, 0), d[1], ep(1, 5353), d[1]};
    d2[0].port = 0; /* invalid */
    struct lade_dns_endpoint f2[3] = {f[0], d[1], {.family = 5}};
    assert_true(lade_dns_servers_set(&srv, d2, 4, f2, 3));
    assert_int_equal(srv.generation, gen + 1);
    assert_int_equal(srv.n, 3);
    assert_int_equal(srv.s[0].ep.ip[3], 2);
    assert_int_equal(srv.s[0].srtt_ms, 42);
    assert_int_equal(srv.s[0].fails, 3);
    assert_int_equal(srv.s[1].ep.port, 5353); /* another port is another server */
    assert_int_equal(srv.s[1].srtt_ms, 0);
    assert_int_equal(srv.s[1].last_rcode, -1);
    assert_true(srv.s[2].fallback);

    /* Order matters. */
    struct lade_dns_endpoint d3[2] = {ep(1, 5353), d[1]};
    assert_true(lade_dns_servers_set(&srv, d3, 2, f2, 1));
    assert_int_equal(srv.s[1].srtt_ms, 42);

    /* Empty. */
    assert_true(lade_dns_servers_set(&srv, NULL, 0, NULL, 0));
    assert_int_equal(srv.n, 0);

    /* IPv6. */
    struct lade_dns_endpoint v6 = {.family = 6, .ip = {0xfd, [15] = 1}, .port = 53};
    assert_true(lade_dns_servers_set(&srv, &v6, 1, NULL, 0));
    assert_int_equal(srv.n, 1);
}

static void test_hedge_bounds(void **state)
{
    (void)state;
    struct lade_dns_server s;
    memset(&s, 0, sizeof s);
    assert_int_equal(lade_dns_server_hedge_ms(&s), LADE_DNS_HEDGE_MS);
    s.srtt_ms = 1;
    assert_int_equal(lade_dns_server_hedge_ms(&s), LADE_DNS_HEDGE_MIN_MS);
    s.srtt_ms = 200;
    assert_int_equal(lade_dns_server_hedge_ms(&s), 600);
    s.srtt_ms = 1000;
    assert_int_equal(lade_dns_server_hedge_ms(&s), LADE_DNS_HEDGE_MAX_MS);
    s.srtt_ms = UINT32_MAX;
    assert_int_equal(lade_dns_server_hedge_ms(&s), LADE_DNS_HEDGE_MAX_MS);
}

/* ---------------------------------------------------------------- lookups */

static void test_no_servers(void **state)
{
    (void)state;
    servers(0, 0);
    start(NULL);
    assert_int_equal(sends, 0);
    const struct lade_dns_result *r = result();
    assert_int_equal(r->err, LADE_ERR_RESOLVE);
    assert_int_equal(r->server, -1);
    assert_int_equal(lade_dns_lookup_next_deadline(&lk), UINT64_MAX);
    /* Nothing more after DONE. */
    pump();
    assert_int_equal(dones, 1);
}

static void test_first_dhcp_answers(void **state)
{
    (void)state;
    struct lade_dns_lookup_cfg cfg = {.qtype = LADE_DNS_TYPE_A, .use_0x20 = true};
    uint64_t t0 = now;
    start(&cfg);
    assert_int_equal(sends, 1);
    assert_int_equal(send_log[0], 0); /* the DHCP server first */
    unsigned k = slot_of(0, false);
    assert_true(slot_0x20[k]);
    assert_int_equal(lade_dns_lookup_next_deadline(&lk), t0 + LADE_DNS_HEDGE_MS);
    now += 30;
    answer(0, LADE_DNS_NOERROR, 2, false);
    const struct lade_dns_result *r = result();
    assert_int_equal(r->err, LADE_OK);
    assert_int_equal(r->server, 0);
    assert_false(r->fallback);
    assert_false(r->tcp);
    assert_int_equal(r->rcode, 0);
    assert_int_equal(r->rtt_ms, 30);
    assert_int_equal(r->ttl_s, 300);
    assert_int_equal(r->n_addr, 2);
    assert_int_equal(r->addr[0].b[3], 0);
    assert_int_equal(r->queries, 1);
    assert_int_equal(r->elapsed_ms, 30);
    /* Health: first RTT sample is the SRTT. */
    assert_int_equal(srv.s[0].srtt_ms, 30);
    assert_int_equal(srv.s[0].answered, 1);
    assert_int_equal(srv.s[0].sent, 1);
    assert_int_equal(srv.s[0].last_rcode, 0);
    /* A later answer on the closed slot changes nothing. */
    struct lade_dns_answer a = {.rcode = 0, .n_addr = 0};
    lade_dns_lookup_on_answer(&lk, k, &a, NULL, now);
    assert_int_equal(lade_dns_lookup_result(&lk)->err, LADE_OK);
}

static void test_srtt_smoothing(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        start(NULL);
        now += i == 0 ? 80 : 160;
        answer(0, LADE_DNS_NOERROR, 1, false);
    }
    assert_int_equal(srv.s[0].srtt_ms, (7 * 80 + 160) / 8); /* RFC 6298 gain 1/8 */
    /* A 0 ms answer still counts as a sample. */
    servers(1, 0);
    start(NULL);
    answer(0, LADE_DNS_NOERROR, 1, false);
    assert_int_equal(srv.s[0].srtt_ms, 1);
}

/* A silent DHCP server: after the hedge the first fallback is asked too, then the second; the
 * first fallback's answer wins; every open query is closed. */
static void test_hedge_to_fallback(void **state)
{
    (void)state;
    uint64_t t0 = now;
    start(NULL);
    run_until(t0 + LADE_DNS_HEDGE_MS - 1);
    assert_int_equal(sends, 1);
    run_until(t0 + LADE_DNS_HEDGE_MS);
    assert_int_equal(sends, 2);
    assert_int_equal(send_log[1], 1);
    run_until(t0 + 2 * LADE_DNS_HEDGE_MS);
    assert_int_equal(sends, 3);
    assert_int_equal(send_log[2], 2);
    now += 20;
    answer(1, LADE_DNS_NOERROR, 1, false);
    const struct lade_dns_result *r = result();
    assert_int_equal(r->err, LADE_OK);
    assert_int_equal(r->server, 1);
    assert_true(r->fallback);
    assert_int_equal(r->rtt_ms, 520);
    assert_int_equal(closes, 3);
}

/* The hedge follows the server's SRTT (3x, bounded). */
static void test_hedge_uses_srtt(void **state)
{
    (void)state;
    srv.s[0].srtt_ms = 40; /* 120 → 250 */
    uint64_t t0 = now;
    start(NULL);
    run_until(t0 + 249);
    assert_int_equal(sends, 1);
    run_until(t0 + 250);
    assert_int_equal(sends, 2);

    servers(1, 2);
    srv.s[0].srtt_ms = 300; /* 900 */
    t0 = now;
    start(NULL);
    run_until(t0 + 899);
    assert_int_equal(sends, 1);
    run_until(t0 + 900);
    assert_int_equal(sends, 2);
}

/* Two DHCP servers: both are asked (in order) before any fallback. */
static void test_dhcp_before_fallbacks(void **state)
{
    (void)state;
    servers(2, 2);
    uint64_t t0 = now;
    start(NULL);
    run_until(t0 + 3 * LADE_DNS_HEDGE_MS);
    assert_int_equal(sends, 4);
    assert_int_equal(send_log[0], 0);
    assert_int_equal(send_log[1], 1);
    assert_int_equal(send_log[2], 2);
    assert_int_equal(send_log[3], 3);
}

/* Health ranking: a DHCP server that just failed is asked after the healthy DHCP server, and
 * as it is in back-off the next server (a fallback) is asked at the same moment. */
static void test_health_ranking(void **state)
{
    (void)state;
    /* Server 0 fails (port unreachable): the next server is asked at once. */
    servers(2, 1);
    start(NULL);
    assert_int_equal(send_log[0], 0);
    lade_dns_lookup_on_error(&lk, slot_of(0, false), LADE_ERR_IO, now);
    pump();
    assert_int_equal(send_log[1], 1); /* at once, no hedge wait */
    assert_int_equal(srv.s[0].fails, 1);
    assert_true(lade_dns_server_down(&srv.s[0], now));
    assert_false(lade_dns_server_down(&srv.s[0], now + LADE_DNS_BACKOFF_MS));
    answer(1, LADE_DNS_NOERROR, 1, false);

    start(NULL);
    assert_int_equal(sends, 1);
    assert_int_equal(send_log[0], 1); /* healthy DHCP server first */
    run_until(now + lade_dns_server_hedge_ms(&srv.s[1]));
    /* Then the one in back-off, and with it at once the fallback. */
    assert_int_equal(sends, 3);
    assert_int_equal(send_log[1], 0);
    assert_int_equal(send_log[2], 2);

    /* Back-off doubles and is capped. */
    struct lade_dns_server s;
    memset(&s, 0, sizeof s);
    servers(1, 0);
    for (int i = 0; i < 12; i++) {
        start(NULL);
        lade_dns_lookup_on_error(&lk, slot_of(0, false), LADE_ERR_IO, now);
        pump();
    }
    assert_int_equal(srv.s[0].fails, 12);
    assert_int_equal(srv.s[0].down_until_ms, now + LADE_DNS_BACKOFF_MAX_MS);
    assert_int_equal(srv.s[0].errors, 12);
    /* An answer clears it. */
    start(NULL);
    answer(0, LADE_DNS_NOERROR, 1, false);
    assert_int_equal(srv.s[0].fails, 0);
    assert_false(lade_dns_server_down(&srv.s[0], now));
}

/* The NXDOMAIN rule: a fallback's NXDOMAIN waits while a DHCP server may still answer; the
 * DHCP server's real answer wins. */
static void test_public_nxdomain_waits(void **state)
{
    (void)state;
    uint64_t t0 = now;
    start(NULL);
    run_until(t0 + LADE_DNS_HEDGE_MS);
    now += 5;
    answer(1, LADE_DNS_NXDOMAIN, 0, false);
    assert_false(lade_dns_lookup_done(&lk));
    assert_int_equal(lk.state, LADE_DNS_LK_HOLDING);
    run_until(t0 + 1500);
    assert_false(lade_dns_lookup_done(&lk));
    answer(0, LADE_DNS_NOERROR, 1, false);
    const struct lade_dns_result *r = result();
    assert_int_equal(r->err, LADE_OK);
    assert_int_equal(r->server, 0);
    assert_int_equal(r->rtt_ms, 1500);
}

/* ... and is accepted once every DHCP server failed (here: its query expired). */
static void test_public_nxdomain_after_dhcp_timeout(void **state)
{
    (void)state;
    uint64_t t0 = now;
    start(NULL);
    run_until(t0 + LADE_DNS_HEDGE_MS);
    answer(1, LADE_DNS_NXDOMAIN, 0, false);
    run_until(t0 + LADE_DNS_ATTEMPT_MS - 1);
    assert_false(lade_dns_lookup_done(&lk));
    run_until(t0 + LADE_DNS_ATTEMPT_MS);
    const struct lade_dns_result *r = result();
    assert_int_equal(r->err, LADE_ERR_NOT_FOUND);
    assert_int_equal(r->server, 1);
    assert_true(r->fallback);
    assert_int_equal(r->rcode, LADE_DNS_NXDOMAIN);
    assert_true(r->has_ttl);
    assert_int_equal(r->ttl_s, 60);
    assert_int_equal(srv.s[0].timeouts, 1);
}

/* ... or answered with an error. */
static void test_public_nxdomain_after_dhcp_servfail(void **state)
{
    (void)state;
    uint64_t t0 = now;
    start(NULL);
    run_until(t0 + LADE_DNS_HEDGE_MS);
    answer(1, LADE_DNS_NXDOMAIN, 0, false);
    answer(0, LADE_DNS_SERVFAIL, 0, false);
    assert_int_equal(result()->err, LADE_ERR_NOT_FOUND);
    assert_int_equal(result()->server, 1);
}

/* DHCP servers failed before the fallback's NXDOMAIN came: accepted at once. Without DHCP
 * servers too. A DHCP server's NXDOMAIN is final at once. */
static void test_nxdomain_accepted(void **state)
{
    (void)state;
    start(NULL);
    lade_dns_lookup_on_error(&lk, slot_of(0, false), LADE_ERR_IO, now);
    pump();
    answer(1, LADE_DNS_NXDOMAIN, 0, false);
    assert_int_equal(result()->err, LADE_ERR_NOT_FOUND);

    servers(0, 2);
    start(NULL);
    assert_int_equal(send_log[0], 0);
    assert_true(srv.s[0].fallback);
    answer(0, LADE_DNS_NXDOMAIN, 0, false);
    assert_int_equal(result()->err, LADE_ERR_NOT_FOUND);

    servers(1, 2);
    start(NULL);
    now += 3;
    answer(0, LADE_DNS_NXDOMAIN, 0, false);
    const struct lade_dns_result *r = result();
    assert_int_equal(r->err, LADE_ERR_NOT_FOUND);
    assert_int_equal(r->server, 0);
    assert_false(r->fallback);
    assert_int_equal(r->n_addr, 0);
    assert_int_equal(srv.s[0].fails, 0); /* an answer is not a failure */

    /* NODATA (NOERROR without an address) counts as "no such name" too. */
    start(NULL);
    answer(0, LADE_DNS_NOERROR, 0, false);
    assert_int_equal(result()->err, LADE_ERR_NOT_FOUND);
    assert_false(result()->has_ttl);
}

/* While a fallback's NXDOMAIN is held, a DHCP NXDOMAIN replaces it; a positive answer from the
 * other fallback wins. */
static void test_holding_variants(void **state)
{
    (void)state;
    uint64_t t0 = now;
    start(NULL);
    run_until(t0 + 2 * LADE_DNS_HEDGE_MS);
    answer(1, LADE_DNS_NXDOMAIN, 0, false);
    answer(2, LADE_DNS_NOERROR, 1, false);
    assert_int_equal(result()->err, LADE_OK);
    assert_int_equal(result()->server, 2);

    t0 = now;
    start(NULL);
    run_until(t0 + LADE_DNS_HEDGE_MS);
    answer(1, LADE_DNS_NXDOMAIN, 0, false);
    answer(0, LADE_DNS_NXDOMAIN, 0, false);
    assert_int_equal(result()->err, LADE_ERR_NOT_FOUND);
    assert_int_equal(result()->server, 0);
    assert_false(result()->fallback);

    /* Held until the deadline while the DHCP server keeps being retried? No: its first query
     * expires at 2 s, which is enough. With a longer attempt timeout than the deadline, the
     * deadline gives the held answer. */
    struct lade_dns_lookup_cfg cfg = {.deadline_ms = 1000, .attempt_timeout_ms = 5000};
    servers(1, 2); /* forget the RTTs learnt above (they lengthen the hedge) */
    t0 = now;
    start(&cfg);
    run_until(t0 + LADE_DNS_HEDGE_MS);
    answer(1, LADE_DNS_NXDOMAIN, 0, false);
    run_until(t0 + 999);
    assert_false(lade_dns_lookup_done(&lk));
    run_until(t0 + 1000);
    assert_int_equal(result()->err, LADE_ERR_NOT_FOUND);
    assert_int_equal(result()->elapsed_ms, 1000);
}

/* SERVFAIL / REFUSED: the next server at once; all servers refusing ends the lookup early. */
static void test_errors_and_exhaustion(void **state)
{
    (void)state;
    uint64_t t0 = now;
    start(NULL);
    answer(0, LADE_DNS_SERVFAIL, 0, false);
    assert_int_equal(sends, 2);
    assert_int_equal(send_log[1], 1);
    answer(1, LADE_DNS_REFUSED, 0, false);
    assert_int_equal(sends, 3);
    assert_false(lade_dns_lookup_done(&lk));
    answer(2, LADE_DNS_FORMERR, 0, false);
    const struct lade_dns_result *r = result();
    assert_int_equal(r->err, LADE_ERR_RESOLVE);
    assert_int_equal(r->server, -1);
    assert_int_equal(r->queries, 3);
    assert_int_equal(now, t0);
    assert_int_equal(srv.s[0].last_rcode, LADE_DNS_SERVFAIL);
    assert_int_equal(srv.s[1].errors, 1);

    /* Some errors, the rest silent until the deadline: RESOLVE, not TIMEOUT. */
    servers(1, 1);
    t0 = now;
    start(NULL);
    answer(0, LADE_DNS_SERVFAIL, 0, false);
    run_until(t0 + LADE_DNS_DEADLINE_MS);
    assert_int_equal(result()->err, LADE_ERR_RESOLVE);
    /* A server that answered with an error is not asked again in the later rounds. */
    for (int i = 0; i < sends && i < 64; i++)
        if (i > 0)
            assert_int_equal(send_log[i], 1);
}

/* Silence everywhere: retransmission rounds (each server again, spacing doubling up to the
 * hedge maximum), then TIMEOUT exactly at the deadline. */
static void test_deadline_and_rounds(void **state)
{
    (void)state;
    uint64_t t0 = now;
    start(NULL);
    run_until(t0 + LADE_DNS_DEADLINE_MS - 1);
    assert_false(lade_dns_lookup_done(&lk));
    /* Round 0 at 0, 500, 1000; round 1 (spacing 1000) at 1500, 2500, 3500; round 2 (2000)
     * at 4500, 6500; the next would be at 8500. */
    assert_int_equal(sends, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(send_log[i], i % 3);
    /* Every query expired; older ones closed to reuse their slot; never more than the limit
     * open at once. */
    assert_true(open_count() <= LADE_DNS_MAX_ATTEMPTS);
    run_until(t0 + LADE_DNS_DEADLINE_MS);
    const struct lade_dns_result *r = result();
    assert_int_equal(r->err, LADE_ERR_TIMEOUT);
    assert_int_equal(r->queries, 8);
    assert_int_equal(r->elapsed_ms, LADE_DNS_DEADLINE_MS);
    assert_true(srv.s[0].timeouts >= 2);
    assert_int_equal(lade_dns_lookup_next_deadline(&lk), UINT64_MAX);
}

/* An answer to an earlier (expired) query is still welcome. */
static void test_late_answer(void **state)
{
    (void)state;
    servers(1, 0);
    uint64_t t0 = now;
    start(NULL);
    run_until(t0 + LADE_DNS_ATTEMPT_MS + 100);
    assert_int_equal(srv.s[0].timeouts, 1);
    assert_int_equal(open_count(), 3); /* the expired one and two retransmissions */
    unsigned first = slot_of(0, false);
    struct lade_dns_answer a = {.rcode = 0, .n_addr = 1, .ttl_s = 5};
    struct lade_dns_addr ad = {4, {1, 2, 3, 4}};
    lade_dns_lookup_on_answer(&lk, first, &a, &ad, now);
    pump();
    assert_int_equal(result()->err, LADE_OK);
    assert_int_equal(srv.s[0].fails, 0);
}

/* TC: the same server over TCP on the same slot; its answer is used. */
static void test_truncated_to_tcp(void **state)
{
    (void)state;
    struct lade_dns_lookup_cfg cfg = {.use_0x20 = true};
    start(&cfg);
    now += 4;
    answer(0, LADE_DNS_NOERROR, 0, true);
    assert_int_equal(closes, 1);
    assert_int_equal(sends, 2);
    assert_int_equal(send_log[1], 0);
    unsigned k = slot_of(0, true);
    assert_false(slot_0x20[k]);
    assert_int_equal(srv.s[0].fails, 0);
    now += 10;
    answer_tcp(0, LADE_DNS_NOERROR, 1, false);
    const struct lade_dns_result *r = result();
    assert_int_equal(r->err, LADE_OK);
    assert_true(r->tcp);
    assert_int_equal(r->rtt_ms, 10);
    assert_int_equal(r->ttl_s, 30);
    assert_int_equal(r->queries, 2);

    /* TC over TCP is an error of that server. */
    start(NULL);
    answer(0, LADE_DNS_NOERROR, 0, true);
    answer_tcp(0, LADE_DNS_NOERROR, 0, true);
    assert_int_equal(srv.s[0].errors, 1);
    assert_int_equal(send_log[2], 1); /* next server at once */

    /* A TCP query that takes too long: the server is given up, the next asked. */
    servers(1, 1);
    uint64_t t0 = now;
    start(NULL);
    answer(0, LADE_DNS_NOERROR, 0, true);
    run_until(t0 + LADE_DNS_HEDGE_MS);
    assert_int_equal(send_log[2], 1);
    answer(1, LADE_DNS_NOERROR, 0, true);
    /* Both are being asked over TCP: no UDP retransmission to them, no busy timer. */
    int before = sends;
    assert_int_equal(lade_dns_lookup_next_deadline(&lk), t0 + LADE_DNS_TCP_MS);
    run_until(t0 + LADE_DNS_TCP_MS);
    assert_int_equal(sends, before);
    assert_false(lade_dns_lookup_done(&lk));
    run_until(t0 + LADE_DNS_HEDGE_MS + LADE_DNS_TCP_MS);
    /* Both gave up over TCP: nothing left to ask. */
    assert_int_equal(result()->err, LADE_ERR_RESOLVE);
}

/* A server that folds the question's case: asked again at once without 0x20, and remembered. */
static void test_case_mismatch(void **state)
{
    (void)state;
    struct lade_dns_lookup_cfg cfg = {.use_0x20 = true};
    start(&cfg);
    unsigned k = slot_of(0, false);
    assert_true(slot_0x20[k]);
    lade_dns_lookup_on_case_mismatch(&lk, k, now);
    pump();
    assert_int_equal(closes, 1);
    assert_int_equal(sends, 2);
    assert_int_equal(send_log[1], 0);
    k = slot_of(0, false);
    assert_false(slot_0x20[k]);
    assert_true(srv.s[0].no_0x20);
    assert_int_equal(srv.s[0].fails, 0);
    /* Without 0x20 a further mismatch report is ignored. */
    lade_dns_lookup_on_case_mismatch(&lk, k, now);
    pump();
    assert_int_equal(sends, 2);
    answer(0, LADE_DNS_NOERROR, 1, false);
    assert_int_equal(result()->err, LADE_OK);
    start(&cfg);
    assert_false(slot_0x20[slot_of(0, false)]);
    /* Other servers still get 0x20. */
    lade_dns_lookup_on_error(&lk, slot_of(0, false), LADE_ERR_IO, now);
    pump();
    assert_true(slot_0x20[slot_of(1, false)]);
}

/* The server list changed during a lookup: re-ranked, same deadline. */
static void test_restart(void **state)
{
    (void)state;
    uint64_t t0 = now;
    start(NULL);
    run_until(t0 + 700);
    assert_int_equal(sends, 2);
    /* The shell closes its sockets, then restarts. */
    for (size_t k = 0; k < LADE_DNS_MAX_ATTEMPTS; k++)
        slot_server[k] = -1;
    struct lade_dns_endpoint d = ep(50, 53), f = ep(101, 53);
    assert_true(lade_dns_servers_set(&srv, &d, 1, &f, 1));
    lade_dns_lookup_restart(&lk, now);
    pump();
    assert_int_equal(sends, 3);
    assert_int_equal(send_log[2], 0);
    assert_int_equal(srv.s[0].ep.ip[3], 50);
    run_until(t0 + LADE_DNS_DEADLINE_MS);
    assert_int_equal(result()->err, LADE_ERR_TIMEOUT);
    assert_int_equal(result()->elapsed_ms, LADE_DNS_DEADLINE_MS);

    /* To an empty list: RESOLVE at once. */
    start(NULL);
    for (size_t k = 0; k < LADE_DNS_MAX_ATTEMPTS; k++)
        slot_server[k] = -1;
    assert_true(lade_dns_servers_set(&srv, NULL, 0, NULL, 0));
    lade_dns_lookup_restart(&lk, now);
    pump();
    assert_int_equal(result()->err, LADE_ERR_RESOLVE);
}

/* Slots: with many servers in back-off (spacing 0) the lookup never opens more queries than it
 * has slots, and waits for one to expire. */
static void test_slot_limit(void **state)
{
    (void)state;
    servers(8, 4);
    for (size_t i = 0; i < srv.n; i++)
        srv.s[i].down_until_ms = now + 100000;
    uint64_t t0 = now;
    start(NULL);
    assert_int_equal(sends, LADE_DNS_MAX_ATTEMPTS);
    assert_int_equal(open_count(), LADE_DNS_MAX_ATTEMPTS);
    assert_int_equal(lade_dns_lookup_next_deadline(&lk), t0 + LADE_DNS_ATTEMPT_MS);
    run_until(t0 + LADE_DNS_ATTEMPT_MS);
    assert_true(sends > LADE_DNS_MAX_ATTEMPTS);
    assert_true(open_count() <= LADE_DNS_MAX_ATTEMPTS);
    /* Error on a slot nobody uses: ignored. */
    lade_dns_lookup_on_error(&lk, LADE_DNS_MAX_ATTEMPTS + 3, LADE_ERR_IO, now);
}

/* ---------------------------------------------------------------- cache */

static void test_cache(void **state)
{
    (void)state;
    static struct lade_dns_cache c;
    lade_dns_cache_clear(&c);
    struct lade_dns_result r, out;
    memset(&r, 0, sizeof r);
    r.err = LADE_OK;
    r.has_ttl = true;
    r.ttl_s = 10;
    r.n_addr = 1;
    r.addr[0] = (struct lade_dns_addr){4, {10, 9, 8, 7}};
    uint64_t t = 5000;
    assert_false(lade_dns_cache_get(&c, "hub.lade.test", 1, t, &out));
    lade_dns_cache_put(&c, "Hub.Lade.Test.", 1, &r, t);
    assert_true(lade_dns_cache_get(&c, "hub.lade.test", 1, t + 9999, &out));
    assert_int_equal(out.err, LADE_OK);
    assert_int_equal(out.n_addr, 1);
    assert_int_equal(out.addr[0].b[0], 10);
    assert_int_equal(out.ttl_s, 1);
    assert_int_equal(out.server, -1);
    assert_false(lade_dns_cache_get(&c, "hub.lade.test", 28, t, &out));        /* other type */
    assert_false(lade_dns_cache_get(&c, "hub.lade.test", 1, t + 10000, &out)); /* expired */
    assert_false(lade_dns_cache_get(&c, "hub.lade.test", 1, t, &out));         /* and dropped */

    /* TTL 0 and errors are not stored; a new answer replaces, a TTL-less one removes. */
    lade_dns_cache_put(&c, "a.test", 1, &r, t);
    r.ttl_s = 0;
    lade_dns_cache_put(&c, "b.test", 1, &r, t);
    assert_false(lade_dns_cache_get(&c, "b.test", 1, t, &out));
    r.ttl_s = 100;
    r.addr[0].b[3] = 1;
    lade_dns_cache_put(&c, "a.test", 1, &r, t);
    assert_true(lade_dns_cache_get(&c, "a.test", 1, t + 50000, &out));
    assert_int_equal(out.addr[0].b[3], 1);
    struct lade_dns_result bad = r;
    bad.err = LADE_ERR_TIMEOUT;
    lade_dns_cache_put(&c, "a.test", 1, &bad, t);
    assert_false(lade_dns_cache_get(&c, "a.test", 1, t, &out));

    /* Negative: capped at LADE_DNS_NEG_TTL_MAX_S; without a TTL not stored. */
    struct lade_dns_result neg;
    memset(&neg, 0, sizeof neg);
    neg.err = LADE_ERR_NOT_FOUND;
    neg.has_ttl = true;
    neg.ttl_s = 3600;
    lade_dns_cache_put(&c, "nx.test", 1, &neg, t);
    assert_true(lade_dns_cache_get(&c, "nx.test", 1, t + LADE_DNS_NEG_TTL_MAX_S * 1000 - 1, &out));
    assert_int_equal(out.err, LADE_ERR_NOT_FOUND);
    assert_int_equal(out.n_addr, 0);
    assert_false(lade_dns_cache_get(&c, "nx.test", 1, t + LADE_DNS_NEG_TTL_MAX_S * 1000, &out));
    neg.has_ttl = false;
    lade_dns_cache_put(&c, "nx2.test", 1, &neg, t);
    assert_false(lade_dns_cache_get(&c, "nx2.test", 1, t, &out));

    /* Full: the entry expiring first goes. */
    lade_dns_cache_clear(&c);
    char name[32];
    for (int i = 0; i < LADE_DNS_CACHE_SLOTS; i++) {
        snprintf(name, sizeof name, "n%d.test", i);
        r.ttl_s = (uint32_t)(100 + (i == 5 ? -50 : i));
        lade_dns_cache_put(&c, name, 1, &r, t);
    }
    lade_dns_cache_put(&c, "new.test", 1, &r, t);
    assert_true(lade_dns_cache_get(&c, "new.test", 1, t, &out));
    assert_false(lade_dns_cache_get(&c, "n5.test", 1, t, &out));
    assert_true(lade_dns_cache_get(&c, "n4.test", 1, t, &out));
    /* An expired entry is reused before a live one. */
    lade_dns_cache_put(&c, "x.test", 1, &r, t + 90000); /* n0.. n4 etc. expired by then */
    assert_true(lade_dns_cache_get(&c, "new.test", 1, t + 90000, &out));
    /* Bad names are ignored. */
    lade_dns_cache_put(&c, "a..b", 1, &r, t);
    assert_false(lade_dns_cache_get(&c, "a..b", 1, t, &out));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_servers_set, setup),
        cmocka_unit_test_setup(test_hedge_bounds, setup),
        cmocka_unit_test_setup(test_no_servers, setup),
        cmocka_unit_test_setup(test_first_dhcp_answers, setup),
        cmocka_unit_test_setup(test_srtt_smoothing, setup),
        cmocka_unit_test_setup(test_hedge_to_fallback, setup),
        cmocka_unit_test_setup(test_hedge_uses_srtt, setup),
        cmocka_unit_test_setup(test_dhcp_before_fallbacks, setup),
        cmocka_unit_test_setup(test_health_ranking, setup),
        cmocka_unit_test_setup(test_public_nxdomain_waits, setup),
        cmocka_unit_test_setup(test_public_nxdomain_after_dhcp_timeout, setup),
        cmocka_unit_test_setup(test_public_nxdomain_after_dhcp_servfail, setup),
        cmocka_unit_test_setup(test_nxdomain_accepted, setup),
        cmocka_unit_test_setup(test_holding_variants, setup),
        cmocka_unit_test_setup(test_errors_and_exhaustion, setup),
        cmocka_unit_test_setup(test_deadline_and_rounds, setup),
        cmocka_unit_test_setup(test_late_answer, setup),
        cmocka_unit_test_setup(test_truncated_to_tcp, setup),
        cmocka_unit_test_setup(test_case_mismatch, setup),
        cmocka_unit_test_setup(test_restart, setup),
        cmocka_unit_test_setup(test_slot_limit, setup),
        cmocka_unit_test_setup(test_cache, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
