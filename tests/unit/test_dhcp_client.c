/* Unit tests for the DHCP client machine (src/proto/dhcp/client.c) with a fake clock and a fake
 * server: timer schedules and their jitter bounds, every transition, NAK, expiry, conflict and
 * DECLINE, INIT-REBOOT, link down/up, link-local requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lade/dhcp.h"
#include "lade/log.h"
#include "test_dhcp_util.h"

#define YI      LADE_IPV4(10, 9, 8, 7)
#define SERVER  LADE_IPV4(10, 9, 8, 1)
#define SERVER2 LADE_IPV4(10, 9, 8, 2)
#define NEVER   UINT64_MAX
#define T0      1000000u /* an arbitrary monotonic start */

/* ------------------------------------------------------------ fake randomness */

static bool g_lcg;
static uint32_t g_fixed, g_lcg_state;

static uint32_t fake_random(void *ud)
{
    (void)ud;
    if (g_lcg) {
        g_lcg_state = g_lcg_state * 1664525u + 1013904223u;
        return g_lcg_state;
    }
    return g_fixed;
}

/* ------------------------------------------------------------ fixture */

static struct lade_dhcp C;
static struct lade_dhcp_actions A;
static uint64_t NOW;

static void setup_cfg(void (*tweak)(struct lade_dhcp_cfg *))
{
    struct lade_dhcp_cfg cfg;
    lade_dhcp_cfg_default(&cfg);
    memcpy(cfg.mac, MAC, 6);
    cfg.random = fake_random;
    cfg.hostname = "charger";
    cfg.name = "test0";
    if (tweak)
        tweak(&cfg);
    g_lcg = false;
    g_fixed = 1000; /* mid-range jitter: 4000 → 4000 - 1000 + 1000 = 4000; start delay 1000 */
    assert_int_equal(lade_dhcp_init(&C, &cfg), LADE_OK);
    NOW = T0;
}

static int setup(void **state)
{
    (void)state;
    lade_log_set_level(LADE_LOG_ERROR);
    setup_cfg(NULL);
    return 0;
}

static void tick(uint64_t t)
{
    NOW = t;
    lade_dhcp_tick(&C, NOW, &A);
}

/* Advances to the next timer and runs it. */
static void tick_next(void)
{
    assert_true(A.next_ms != NEVER);
    tick(A.next_ms > NOW ? A.next_ms : NOW);
}

static struct cmsg sent(void)
{
    struct cmsg m;
    assert_true(A.flags & LADE_DHCP_ACT_SEND);
    assert_true(parse_client(A.pkt, A.pkt_len, &m));
    assert_int_equal(A.type, m.type);
    return m;
}

static lade_err reply(const struct srv_reply *r)
{
    uint8_t b[600];
    size_t n = build_reply(b, r);
    return lade_dhcp_input(&C, b, n, NOW, &A);
}

static struct srv_reply offer_for(uint32_t xid, uint8_t type)
{
    struct srv_reply s = {
        .type = type,
        .xid = xid,
        .yiaddr = YI,
        .server_id = SERVER,
        .mask = LADE_IPV4(255, 255, 255, 0),
        .lease_s = 3600,
        .routers = {SERVER},
        .n_routers = 1,
        .dns = {LADE_IPV4(10, 9, 8, 53)},
        .n_dns = 1,
        .ntp = {LADE_IPV4(10, 9, 8, 123)},
        .n_ntp = 1,
    };
    return s;
}

/* start → DISCOVER → OFFER → REQUEST; returns the REQUEST's xid. */
static uint32_t to_requesting(void)
{
    assert_int_equal(lade_dhcp_start(&C, 0, NOW, &A), LADE_OK);
    tick_next();
    struct cmsg d = sent();
    assert_int_equal(d.type, LADE_DHCP_DISCOVER);
    struct srv_reply o = offer_for(d.xid, LADE_DHCP_OFFER);
    assert_int_equal(reply(&o), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_REQUESTING);
    return d.xid;
}

/* ... → BOUND at NOW with lease 3600 s. */
static void to_bound(void)
{
    uint32_t xid = to_requesting();
    struct srv_reply k = offer_for(xid, LADE_DHCP_ACK);
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_PROBING);
    assert_int_equal(lade_dhcp_probe_done(&C, false, NOW, &A), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_BOUND);
}

/* ------------------------------------------------------------ tests */

static void test_init_config(void **state)
{
    (void)state;
    struct lade_dhcp c;
    struct lade_dhcp_cfg cfg;
    lade_dhcp_cfg_default(&cfg);
    assert_int_equal(lade_dhcp_init(&c, &cfg), LADE_ERR_CONFIG); /* no random */
    cfg.random = fake_random;
    assert_int_equal(lade_dhcp_init(&c, &cfg), LADE_OK);
    assert_int_equal(lade_dhcp_state(&c), LADE_DHCP_STOPPED);
    assert_null(lade_dhcp_lease(&c));
    static const uint8_t one[1] = {1};
    cfg.client_id = one;
    cfg.client_id_len = 1;
    assert_int_equal(lade_dhcp_init(&c, &cfg), LADE_ERR_CONFIG);
    cfg.client_id = NULL;
    cfg.hostname = "bad name";
    assert_int_equal(lade_dhcp_init(&c, &cfg), LADE_ERR_CONFIG);
    cfg.hostname = "";
    assert_int_equal(lade_dhcp_init(&c, &cfg), LADE_ERR_CONFIG);
    cfg.hostname = NULL;
    cfg.max_msg_size = 575;
    assert_int_equal(lade_dhcp_init(&c, &cfg), LADE_ERR_CONFIG);
    cfg.max_msg_size = 0; /* default 1500 */
    assert_int_equal(lade_dhcp_init(&c, &cfg), LADE_OK);
    assert_int_equal(lade_dhcp_init(NULL, &cfg), LADE_ERR_CONFIG);
}

static void test_discover_schedule(void **state)
{
    (void)state;
    /* jitter at its low end: start delay 0, intervals base - 1 s */
    g_fixed = 0;
    assert_int_equal(lade_dhcp_start(&C, 0, NOW, &A), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_INIT);
    assert_int_equal(A.flags, 0);
    assert_int_equal(A.next_ms, T0);
    tick(T0);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_SELECTING);
    struct cmsg d = sent();
    assert_int_equal(d.type, LADE_DHCP_DISCOVER);
    assert_int_equal(A.src, 0);
    assert_int_equal(A.dst, LADE_IPV4_BROADCAST);
    assert_false(d.has50);
    assert_true(d.has61);
    assert_int_equal(d.cid_len, 7);
    assert_int_equal(d.cid[0], 1);
    assert_memory_equal(d.cid + 1, MAC, 6);
    assert_true(d.has12);
    assert_string_equal(d.hostname, "charger");
    assert_true(d.has57);
    assert_int_equal(d.max_msg, 1500);
    assert_int_equal(d.secs, 0);
    uint32_t xid = d.xid;

    static const uint64_t base[] = {4000, 8000, 16000, 32000, 64000, 64000, 64000, 64000};
    uint64_t t = T0;
    for (size_t i = 0; i < sizeof base / sizeof base[0]; i++) {
        assert_int_equal(A.next_ms, t + base[i] - 1000);
        /* early: nothing */
        tick(A.next_ms - 1);
        assert_int_equal(A.flags & LADE_DHCP_ACT_SEND, 0);
        t += base[i] - 1000;
        tick(t);
        struct cmsg r = sent();
        assert_int_equal(r.type, LADE_DHCP_DISCOVER);
        assert_int_equal(r.xid, xid); /* retransmission of the same exchange */
        assert_int_equal(r.secs, (t - T0) / 1000);
    }
    /* never gives up */
    for (int i = 0; i < 200; i++) {
        tick_next();
        assert_int_equal(sent().type, LADE_DHCP_DISCOVER);
        assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_SELECTING);
    }
    struct lade_dhcp_diag dg;
    lade_dhcp_diag(&C, NOW, &dg);
    assert_int_equal(dg.discovers, 209);
    assert_int_equal(dg.state, LADE_DHCP_SELECTING);
}

static void test_discover_jitter_bounds(void **state)
{
    (void)state;
    /* the high end */
    g_fixed = 2000; /* % 1001 = 998 for the start delay, % 2001 = 2000 for jitter */
    assert_int_equal(lade_dhcp_start(&C, 0, NOW, &A), LADE_OK);
    assert_int_equal(A.next_ms, T0 + 999);
    tick_next();
    assert_int_equal(A.next_ms, NOW + 5000);

    /* a real random source: every interval within base ± 1 s, start within 0..1 s */
    for (uint32_t seed = 1; seed < 40; seed++) {
        setup_cfg(NULL);
        g_lcg = true;
        g_lcg_state = seed;
        assert_int_equal(lade_dhcp_start(&C, 0, NOW, &A), LADE_OK);
        assert_true(A.next_ms >= T0 && A.next_ms <= T0 + 1000);
        tick_next();
        uint64_t base = 4000;
        uint32_t xid = sent().xid;
        for (int i = 0; i < 10; i++) {
            uint64_t d = A.next_ms - NOW;
            assert_true(d >= base - 1000 && d <= base + 1000);
            tick_next();
            assert_int_equal(sent().xid, xid);
            base = base * 2 > 64000 ? 64000 : base * 2;
        }
    }
}

static void test_link_local_after_third_discover(void **state)
{
    (void)state;
    assert_int_equal(lade_dhcp_start(&C, 0, NOW, &A), LADE_OK);
    tick_next(); /* DISCOVER 1 at ~1 s */
    assert_int_equal(A.flags & LADE_DHCP_ACT_LL_START, 0);
    tick_next(); /* DISCOVER 2 at ~5 s */
    assert_int_equal(A.flags & LADE_DHCP_ACT_LL_START, 0);
    tick_next(); /* DISCOVER 3 at ~13 s */
    assert_true(A.flags & LADE_DHCP_ACT_LL_START);
    assert_true(A.flags & LADE_DHCP_ACT_SEND);
    assert_int_equal(NOW - T0, 1000 + 4000 + 8000);
    struct lade_dhcp_diag dg;
    lade_dhcp_diag(&C, NOW, &dg);
    assert_true(dg.ll_wanted);
    tick_next(); /* only an edge: not again */
    assert_int_equal(A.flags & (LADE_DHCP_ACT_LL_START | LADE_DHCP_ACT_LL_STOP), 0);

    /* a lease replaces link-local: CONFIGURE and LL_STOP together */
    struct srv_reply o = offer_for(sent().xid, LADE_DHCP_OFFER);
    assert_int_equal(reply(&o), LADE_OK);
    assert_int_equal(A.flags & LADE_DHCP_ACT_LL_STOP, 0); /* not before the lease binds */
    struct srv_reply k = offer_for(o.xid, LADE_DHCP_ACK);
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(A.flags & LADE_DHCP_ACT_LL_STOP, 0);
    assert_int_equal(lade_dhcp_probe_done(&C, false, NOW, &A), LADE_OK);
    assert_true(A.flags & LADE_DHCP_ACT_CONFIGURE);
    assert_true(A.flags & LADE_DHCP_ACT_LL_STOP);
    lade_dhcp_diag(&C, NOW, &dg);
    assert_false(dg.ll_wanted);
}

static void ll_never(struct lade_dhcp_cfg *cfg)
{
    cfg->ll_after_discovers = 0;
}

static void ll_disabled(struct lade_dhcp_cfg *cfg)
{
    cfg->no_link_local = true;
}

static void test_link_local_config(void **state)
{
    (void)state;
    setup_cfg(ll_never);
    assert_int_equal(lade_dhcp_start(&C, 0, NOW, &A), LADE_OK);
    for (int i = 0; i < 20; i++) {
        tick_next();
        assert_int_equal(A.flags & LADE_DHCP_ACT_LL_START, 0);
    }
    setup_cfg(ll_disabled);
    assert_int_equal(lade_dhcp_start(&C, 0, NOW, &A), LADE_OK);
    for (int i = 0; i < 20; i++) {
        tick_next();
        assert_int_equal(A.flags & LADE_DHCP_ACT_LL_START, 0);
    }
}

static void test_selecting_ignores(void **state)
{
    (void)state;
    assert_int_equal(lade_dhcp_start(&C, 0, NOW, &A), LADE_OK);
    tick_next();
    uint32_t xid = sent().xid;
    struct srv_reply o = offer_for(xid, LADE_DHCP_OFFER);
    /* other transaction / other client: not for us */
    o.xid = xid + 1;
    assert_int_equal(reply(&o), LADE_ERR_NOT_FOUND);
    o.xid = xid;
    o.mac = OTHER_MAC;
    assert_int_equal(reply(&o), LADE_ERR_NOT_FOUND);
    o.mac = NULL;
    /* ACK or NAK while selecting */
    o.type = LADE_DHCP_ACK;
    assert_int_equal(reply(&o), LADE_OK);
    o.type = LADE_DHCP_NAK;
    assert_int_equal(reply(&o), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_SELECTING);
    /* OFFER without server id or lease */
    o.type = LADE_DHCP_OFFER;
    o.server_id = 0;
    assert_int_equal(reply(&o), LADE_OK);
    o.server_id = SERVER;
    o.lease_s = 0;
    assert_int_equal(reply(&o), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_SELECTING);
    struct lade_dhcp_diag dg;
    lade_dhcp_diag(&C, NOW, &dg);
    assert_int_equal(dg.last_error, LADE_ERR_PROTO);
    /* malformed */
    uint8_t junk[300] = {2, 1, 6};
    assert_int_equal(lade_dhcp_input(&C, junk, sizeof junk, NOW, &A), LADE_ERR_PROTO);
    assert_int_equal(lade_dhcp_input(&C, junk, 10, NOW, &A), LADE_ERR_PROTO);
    lade_dhcp_diag(&C, NOW, &dg);
    assert_int_equal(dg.malformed, 2);
    assert_string_equal(dg.last_event, "malformed reply");
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_SELECTING);
    assert_true(A.next_ms != NEVER); /* the retransmit timer survives */
}

static void test_requesting(void **state)
{
    (void)state;
    uint32_t xid = to_requesting();
    struct cmsg r = sent();
    assert_int_equal(r.type, LADE_DHCP_REQUEST);
    assert_int_equal(r.xid, xid); /* the DISCOVER's xid (RFC 2131 §4.4.1) */
    assert_int_equal(r.ciaddr, 0);
    assert_true(r.has50 && r.req == YI);
    assert_true(r.has54 && r.server == SERVER);
    assert_int_equal(A.dst, LADE_IPV4_BROADCAST);
    struct lade_dhcp_diag dg;
    lade_dhcp_diag(&C, NOW, &dg);
    assert_int_equal(dg.server_id, SERVER);
    assert_int_equal(dg.offers, 1);

    /* retransmitted 4, 8, 16, 32 s; gives up 60 s after the first REQUEST */
    uint64_t t_first = NOW;
    assert_int_equal(A.next_ms, NOW + 4000);
    int n = 1;
    for (;;) {
        tick_next();
        if (lade_dhcp_state(&C) != LADE_DHCP_REQUESTING)
            break;
        struct cmsg q = sent();
        assert_int_equal(q.type, LADE_DHCP_REQUEST);
        assert_true(q.has54);
        n++;
    }
    assert_int_equal(n, 4); /* at 0, 4, 12, 28 s; the 5th would be at 60 s: gives up instead */
    assert_int_equal(NOW - t_first, 60000);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_INIT);
    lade_dhcp_diag(&C, NOW, &dg);
    assert_int_equal(dg.last_error, LADE_ERR_TIMEOUT);
    assert_string_equal(dg.last_event, "no ACK to REQUEST");
    /* a new exchange: a new xid */
    g_lcg = true;
    tick_next();
    struct cmsg d = sent();
    assert_int_equal(d.type, LADE_DHCP_DISCOVER);
    assert_int_not_equal(d.xid, xid);
}

static void test_requesting_replies(void **state)
{
    (void)state;
    uint32_t xid = to_requesting();
    struct srv_reply k = offer_for(xid, LADE_DHCP_ACK);
    /* another server's ACK/NAK: ignored */
    k.server_id = SERVER2;
    assert_int_equal(reply(&k), LADE_OK);
    k.type = LADE_DHCP_NAK;
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_REQUESTING);
    /* ACK for another address or without a lease time: ignored */
    k = offer_for(xid, LADE_DHCP_ACK);
    k.yiaddr = YI + 1;
    assert_int_equal(reply(&k), LADE_OK);
    k.yiaddr = YI;
    k.lease_s = 0;
    assert_int_equal(reply(&k), LADE_OK);
    /* a late OFFER: ignored */
    k = offer_for(xid, LADE_DHCP_OFFER);
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_REQUESTING);
    /* NAK from our server → INIT */
    k = offer_for(xid, LADE_DHCP_NAK);
    k.yiaddr = 0;
    k.message = "no";
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_INIT);
    assert_int_equal(A.flags & LADE_DHCP_ACT_DROP, 0); /* nothing was configured */
    struct lade_dhcp_diag dg;
    lade_dhcp_diag(&C, NOW, &dg);
    assert_int_equal(dg.naks, 1);
    assert_string_equal(dg.last_event, "NAK from server");
}

static void test_probe_ok_bound(void **state)
{
    (void)state;
    uint32_t xid = to_requesting();
    uint64_t t_req = NOW;
    tick_next(); /* one retransmission: the lease still counts from the first REQUEST */
    struct srv_reply k = offer_for(xid, LADE_DHCP_ACK);
    k.n_dns = 2;
    k.dns[1] = LADE_IPV4(10, 9, 8, 54);
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_PROBING);
    assert_true(A.flags & LADE_DHCP_ACT_ACD_START);
    assert_int_equal(A.acd_addr, YI);
    assert_int_equal(A.flags & LADE_DHCP_ACT_CONFIGURE, 0);
    assert_int_equal(A.next_ms, NOW + LADE_DHCP_PROBE_TIMEOUT_MS);
    assert_null(lade_dhcp_lease(&C));
    /* input while probing: not expected */
    assert_int_equal(reply(&k), LADE_ERR_STATE);

    NOW += 7000;
    assert_int_equal(lade_dhcp_probe_done(&C, false, NOW, &A), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_BOUND);
    assert_int_equal(A.flags, LADE_DHCP_ACT_CONFIGURE);
    const struct lade_dhcp_lease *l = A.lease;
    assert_non_null(l);
    assert_ptr_equal(l, lade_dhcp_lease(&C));
    assert_int_equal(l->addr, YI);
    assert_int_equal(l->prefix_len, 24);
    assert_int_equal(l->server_id, SERVER);
    assert_int_equal(l->n_routers, 1);
    assert_int_equal(l->routers[0], SERVER);
    assert_int_equal(l->n_dns, 2);
    assert_int_equal(l->n_ntp, 1);
    assert_int_equal(l->lease_s, 3600);
    assert_int_equal(l->t1_s, 1800);
    assert_int_equal(l->t2_s, 3150);
    assert_int_equal(l->start_ms, t_req);
    assert_int_equal(l->t1_ms, t_req + 1800000);
    assert_int_equal(l->t2_ms, t_req + 3150000);
    assert_int_equal(l->expiry_ms, t_req + 3600000);
    assert_int_equal(A.next_ms, l->t1_ms);
    struct lade_dhcp_diag dg;
    lade_dhcp_diag(&C, NOW, &dg);
    assert_int_equal(dg.addr, YI);
    assert_int_equal(dg.lease_left_ms, t_req + 3600000 - NOW);
    assert_int_equal(dg.acks, 1);
    /* late probe answer */
    assert_int_equal(lade_dhcp_probe_done(&C, false, NOW, &A), LADE_ERR_STATE);
    /* input while BOUND: nothing expected */
    assert_int_equal(reply(&k), LADE_ERR_STATE);
}

static void test_probe_conflict_decline(void **state)
{
    (void)state;
    g_lcg = true; /* distinct xids */
    uint32_t xid = to_requesting();
    struct srv_reply k = offer_for(xid, LADE_DHCP_ACK);
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(lade_dhcp_probe_done(&C, true, NOW, &A), LADE_OK);
    struct cmsg d = sent();
    assert_int_equal(d.type, LADE_DHCP_DECLINE);
    assert_int_equal(d.ciaddr, 0);
    assert_true(d.has50 && d.req == YI);
    assert_true(d.has54 && d.server == SERVER);
    assert_false(d.has55);
    assert_int_equal(A.dst, LADE_IPV4_BROADCAST);
    assert_true(A.flags & LADE_DHCP_ACT_ACD_STOP);
    assert_int_equal(A.flags & (LADE_DHCP_ACT_CONFIGURE | LADE_DHCP_ACT_DROP), 0);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_INIT);
    assert_true(A.next_ms >= NOW + 10000); /* RFC 2131 §3.1.5 */
    struct lade_dhcp_diag dg;
    lade_dhcp_diag(&C, NOW, &dg);
    assert_int_equal(dg.declines, 1);
    assert_int_equal(dg.last_error, LADE_ERR_EXISTS);
    tick(NOW + 9999);
    assert_int_equal(A.flags, 0);
    tick_next();
    struct cmsg dd = sent();
    assert_int_equal(dd.type, LADE_DHCP_DISCOVER);
    assert_false(dd.has50); /* the declined address is not asked for again */
    assert_int_not_equal(dd.xid, d.xid);
}

static void test_probe_timeout(void **state)
{
    (void)state;
    uint32_t xid = to_requesting();
    struct srv_reply k = offer_for(xid, LADE_DHCP_ACK);
    assert_int_equal(reply(&k), LADE_OK);
    tick(NOW + LADE_DHCP_PROBE_TIMEOUT_MS);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_INIT);
    assert_true(A.flags & LADE_DHCP_ACT_ACD_STOP);
    struct lade_dhcp_diag dg;
    lade_dhcp_diag(&C, NOW, &dg);
    assert_string_equal(dg.last_event, "no ARP probe result");
}

static void no_probe(struct lade_dhcp_cfg *cfg)
{
    cfg->probe = false;
}

static void test_no_probe(void **state)
{
    (void)state;
    setup_cfg(no_probe);
    uint32_t xid = to_requesting();
    struct srv_reply k = offer_for(xid, LADE_DHCP_ACK);
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_BOUND);
    assert_int_equal(A.flags, LADE_DHCP_ACT_CONFIGURE);
    /* without probing, a held lease is not announced either */
    lade_dhcp_link_down(&C, NOW, &A);
    assert_int_equal(lade_dhcp_link_up(&C, NOW, &A), LADE_OK);
    k = offer_for(sent().xid, LADE_DHCP_ACK);
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(A.flags, LADE_DHCP_ACT_CONFIGURE);
}

static void test_renew(void **state)
{
    (void)state;
    to_bound();
    const struct lade_dhcp_lease *l = lade_dhcp_lease(&C);
    uint64_t t1 = l->t1_ms, t2 = l->t2_ms;
    uint32_t old_xid = 0;
    tick(t1 - 1);
    assert_int_equal(A.flags, 0);
    tick(t1);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_RENEWING);
    struct cmsg r = sent();
    assert_int_equal(r.type, LADE_DHCP_REQUEST);
    assert_int_equal(r.ciaddr, YI);
    assert_false(r.has50);
    assert_false(r.has54);
    assert_int_equal(A.src, YI);
    assert_int_equal(A.dst, SERVER); /* unicast */
    assert_int_equal(r.secs, 0);
    old_xid = r.xid;
    /* retry after half the time to T2 (1350 s → 675 s) */
    assert_int_equal(A.next_ms, t1 + (t2 - t1) / 2);
    tick_next();
    struct cmsg r2 = sent();
    assert_int_equal(r2.xid, old_xid);
    assert_int_equal(A.dst, SERVER);
    /* the server answers: lease from the first REQUEST of this renewal */
    NOW += 500;
    struct srv_reply k = offer_for(old_xid, LADE_DHCP_ACK);
    k.lease_s = 7200;
    k.dns[0] = LADE_IPV4(10, 9, 8, 99);
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_BOUND);
    assert_int_equal(A.flags, LADE_DHCP_ACT_CONFIGURE); /* no probe, no LL change */
    assert_int_equal(A.lease->lease_s, 7200);
    assert_int_equal(A.lease->start_ms, t1);
    assert_int_equal(A.lease->expiry_ms, t1 + 7200000);
    assert_int_equal(A.lease->dns[0], LADE_IPV4(10, 9, 8, 99));
    assert_int_equal(A.next_ms, t1 + 3600000);
}

static void test_renew_retry_floor_and_rebind(void **state)
{
    (void)state;
    g_lcg = true; /* distinct xids; renewal times have no jitter */
    to_bound();
    const struct lade_dhcp_lease *l = lade_dhcp_lease(&C);
    uint64_t t2 = l->t2_ms, exp = l->expiry_ms;
    tick(l->t1_ms);
    uint32_t renew_xid = sent().xid;
    /* retries halve the remaining time down to 60 s, never past T2 */
    uint64_t prev = NOW;
    while (lade_dhcp_state(&C) == LADE_DHCP_RENEWING) {
        uint64_t left = t2 - NOW;
        uint64_t want = left / 2 > 60000 ? NOW + left / 2 : NOW + 60000;
        if (want > t2)
            want = t2;
        assert_int_equal(A.next_ms, want);
        prev = NOW;
        tick_next();
        (void)prev;
    }
    assert_int_equal(NOW, t2);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_REBINDING);
    struct cmsg b = sent();
    assert_int_equal(b.type, LADE_DHCP_REQUEST);
    assert_int_equal(b.ciaddr, YI);
    assert_false(b.has50 || b.has54);
    assert_int_equal(A.dst, LADE_IPV4_BROADCAST);
    assert_int_equal(A.src, YI);
    assert_int_not_equal(b.xid, renew_xid);
    /* rebinding retries: max(half of the time to expiry, 60 s), capped at expiry */
    while (NOW < exp) {
        uint64_t left = exp - NOW;
        uint64_t want = left / 2 > 60000 ? NOW + left / 2 : NOW + 60000;
        if (want > exp)
            want = exp;
        assert_int_equal(A.next_ms, want);
        tick_next();
        if (NOW < exp)
            assert_int_equal(sent().xid, b.xid);
    }
    /* expiry: DROP, INIT, link-local at once */
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_INIT);
    assert_true(A.flags & LADE_DHCP_ACT_DROP);
    assert_int_equal(A.drop_addr, YI);
    assert_int_equal(A.drop_prefix_len, 24);
    assert_true(A.flags & LADE_DHCP_ACT_LL_START);
    assert_true(A.flags & LADE_DHCP_ACT_ACD_STOP);
    assert_null(lade_dhcp_lease(&C));
    struct lade_dhcp_diag dg;
    lade_dhcp_diag(&C, NOW, &dg);
    assert_int_equal(dg.expiries, 1);
    assert_int_equal(dg.last_error, LADE_ERR_EXPIRED);
    assert_int_equal(dg.lease_left_ms, 0);
    assert_int_equal(dg.addr, 0);
    /* the next DISCOVER hints at the old address */
    tick_next();
    struct cmsg d = sent();
    assert_int_equal(d.type, LADE_DHCP_DISCOVER);
    assert_true(d.has50 && d.req == YI);
}

static void test_rebind_ack_other_server(void **state)
{
    (void)state;
    to_bound();
    tick(lade_dhcp_lease(&C)->t2_ms);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_REBINDING); /* straight from BOUND */
    struct cmsg b = sent();
    struct srv_reply k = offer_for(b.xid, LADE_DHCP_ACK);
    k.server_id = SERVER2;
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_BOUND);
    assert_int_equal(lade_dhcp_lease(&C)->server_id, SERVER2);
}

static void test_renew_nak_and_wrong_server(void **state)
{
    (void)state;
    to_bound();
    tick(lade_dhcp_lease(&C)->t1_ms);
    uint32_t xid = sent().xid;
    /* RENEWING: another server's NAK is ignored */
    struct srv_reply k = {.type = LADE_DHCP_NAK, .xid = xid, .server_id = SERVER2};
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_RENEWING);
    /* an ACK for another address: ignored */
    k = offer_for(xid, LADE_DHCP_ACK);
    k.yiaddr = YI + 5;
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_RENEWING);
    /* our server's NAK: drop, INIT */
    k = (struct srv_reply){.type = LADE_DHCP_NAK, .xid = xid, .server_id = SERVER};
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_INIT);
    assert_true(A.flags & LADE_DHCP_ACT_DROP);
    assert_int_equal(A.drop_addr, YI);
    assert_true(A.flags & LADE_DHCP_ACT_ACD_STOP);
    assert_int_equal(A.flags & LADE_DHCP_ACT_LL_START, 0); /* link-local waits for DISCOVERs */
    assert_null(lade_dhcp_lease(&C));
    tick_next();
    assert_false(sent().has50); /* NAKed: no hint */
}

static void test_nak_backoff(void **state)
{
    (void)state;
    g_fixed = 0; /* no random part: the delays are the doubling part only */
    uint32_t xid = to_requesting();
    uint64_t expect[] = {0, 2000, 4000, 8000, 16000, 32000, 64000, 64000};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++) {
        struct srv_reply k = {.type = LADE_DHCP_NAK, .xid = xid, .server_id = SERVER};
        assert_int_equal(reply(&k), LADE_OK);
        assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_INIT);
        assert_int_equal(A.next_ms - NOW, expect[i]);
        tick_next();
        xid = sent().xid;
        struct srv_reply o = offer_for(xid, LADE_DHCP_OFFER);
        assert_int_equal(reply(&o), LADE_OK);
    }
    /* a lease resets it */
    struct srv_reply k = offer_for(xid, LADE_DHCP_ACK);
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(lade_dhcp_probe_done(&C, false, NOW, &A), LADE_OK);
    tick(lade_dhcp_lease(&C)->t1_ms);
    k = (struct srv_reply){.type = LADE_DHCP_NAK, .xid = sent().xid, .server_id = SERVER};
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(A.next_ms - NOW, 0);
}

static void test_init_reboot(void **state)
{
    (void)state;
    /* start with a stored lease: REQUEST at once, no server id, ciaddr 0 */
    assert_int_equal(lade_dhcp_start(&C, YI, NOW, &A), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_REBOOTING);
    struct cmsg r = sent();
    assert_int_equal(r.type, LADE_DHCP_REQUEST);
    assert_int_equal(r.ciaddr, 0);
    assert_true(r.has50 && r.req == YI);
    assert_false(r.has54);
    assert_int_equal(A.dst, LADE_IPV4_BROADCAST);
    assert_int_equal(A.next_ms, NOW + 4000);
    /* ACK: probed (the address is not configured yet), then bound */
    struct srv_reply k = offer_for(r.xid, LADE_DHCP_ACK);
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_PROBING);
    assert_true(A.flags & LADE_DHCP_ACT_ACD_START);
    assert_int_equal(lade_dhcp_probe_done(&C, false, NOW, &A), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_BOUND);
    assert_int_equal(lade_dhcp_lease(&C)->server_id, SERVER);

    /* ACK for another address, or without server id: ignored */
    setup_cfg(NULL);
    assert_int_equal(lade_dhcp_start(&C, YI, NOW, &A), LADE_OK);
    r = sent();
    k = offer_for(r.xid, LADE_DHCP_ACK);
    k.yiaddr = YI + 1;
    assert_int_equal(reply(&k), LADE_OK);
    k.yiaddr = YI;
    k.server_id = 0;
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_REBOOTING);
    /* NAK (from any server) → INIT, without the hint */
    k = (struct srv_reply){.type = LADE_DHCP_NAK, .xid = r.xid, .server_id = SERVER2};
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_INIT);
    assert_int_equal(A.flags & LADE_DHCP_ACT_DROP, 0);
    tick_next();
    assert_false(sent().has50);

    /* nobody answers: again after 4 s, give up at 10 s → INIT with the hint */
    setup_cfg(NULL);
    assert_int_equal(lade_dhcp_start(&C, YI, NOW, &A), LADE_OK);
    uint32_t xid = sent().xid;
    tick_next();
    assert_int_equal(NOW - T0, 4000);
    assert_int_equal(sent().xid, xid);
    assert_int_equal(A.next_ms, T0 + 10000);
    tick_next();
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_INIT);
    struct lade_dhcp_diag dg;
    lade_dhcp_diag(&C, NOW, &dg);
    assert_string_equal(dg.last_event, "no answer to INIT-REBOOT");
    tick_next();
    struct cmsg d = sent();
    assert_int_equal(d.type, LADE_DHCP_DISCOVER);
    assert_true(d.has50 && d.req == YI);

    /* a bad stored address is the same as none */
    setup_cfg(NULL);
    assert_int_equal(lade_dhcp_start(&C, LADE_IPV4(127, 0, 0, 1), NOW, &A), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_INIT);
    /* starting twice */
    assert_int_equal(lade_dhcp_start(&C, 0, NOW, &A), LADE_ERR_STATE);
}

static void test_link_down_up_held_lease(void **state)
{
    (void)state;
    to_bound();
    const struct lade_dhcp_lease *l = lade_dhcp_lease(&C);
    uint64_t t1 = l->t1_ms, exp = l->expiry_ms;
    NOW += 1000;
    lade_dhcp_link_down(&C, NOW, &A);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_LINK_DOWN);
    assert_true(A.flags & LADE_DHCP_ACT_ACD_STOP);
    assert_int_equal(A.flags & LADE_DHCP_ACT_DROP, 0); /* kept */
    assert_int_equal(A.next_ms, exp);                  /* only the expiry */
    lade_dhcp_link_down(&C, NOW, &A);                  /* idempotent */
    assert_int_equal(A.flags, 0);
    /* back up: INIT-REBOOT for the held address */
    NOW += 1000;
    assert_int_equal(lade_dhcp_link_up(&C, NOW, &A), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_REBOOTING);
    struct cmsg r = sent();
    assert_true(r.has50 && r.req == YI);
    assert_false(r.has54);
    /* nobody answers within 10 s: the lease is used again, not dropped, and announced again */
    tick_next();
    tick_next();
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_BOUND);
    assert_int_equal(A.flags & LADE_DHCP_ACT_DROP, 0);
    assert_true(A.flags & LADE_DHCP_ACT_ACD_DEFEND);
    assert_int_equal(A.acd_addr, YI);
    assert_non_null(lade_dhcp_lease(&C));
    assert_int_equal(A.next_ms, t1);

    /* again, and this time the server ACKs: bound at once, no probe */
    lade_dhcp_link_down(&C, NOW, &A);
    assert_int_equal(lade_dhcp_link_up(&C, NOW, &A), LADE_OK);
    r = sent();
    struct srv_reply k = offer_for(r.xid, LADE_DHCP_ACK);
    k.server_id = 0; /* may be missing: ours is kept */
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_BOUND);
    assert_int_equal(A.flags & LADE_DHCP_ACT_ACD_START, 0);
    assert_true(A.flags & LADE_DHCP_ACT_CONFIGURE);
    assert_true(A.flags & LADE_DHCP_ACT_ACD_DEFEND); /* not probed: announced and defended */
    assert_int_equal(A.acd_addr, YI);
    assert_int_equal(A.lease->server_id, SERVER);
    /* a renewal afterwards does not announce again (ACD is on) */
    tick(lade_dhcp_lease(&C)->t1_ms);
    k = offer_for(sent().xid, LADE_DHCP_ACK);
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(A.flags, LADE_DHCP_ACT_CONFIGURE);

    /* link down past T2 and back: the held lease resumes in REBINDING */
    lade_dhcp_link_down(&C, NOW, &A);
    assert_true(A.flags & LADE_DHCP_ACT_ACD_STOP);
    exp = lade_dhcp_lease(&C)->expiry_ms;
    NOW = lade_dhcp_lease(&C)->t2_ms + 1000;
    assert_int_equal(lade_dhcp_link_up(&C, NOW, &A), LADE_OK);
    tick_next();
    tick_next();
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_REBINDING);
    assert_int_equal(sent().ciaddr, YI);

    /* expiry while the link is down: DROP, stays LINK_DOWN, no link-local */
    lade_dhcp_link_down(&C, NOW, &A);
    tick(exp);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_LINK_DOWN);
    assert_true(A.flags & LADE_DHCP_ACT_DROP);
    assert_int_equal(A.flags & LADE_DHCP_ACT_LL_START, 0);
    assert_int_equal(A.next_ms, NEVER);
    /* link up without a lease: INIT */
    assert_int_equal(lade_dhcp_link_up(&C, NOW, &A), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_INIT);
    /* link up when not down: no-op */
    assert_int_equal(lade_dhcp_link_up(&C, NOW, &A), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_INIT);
}

static void test_link_down_stops_link_local(void **state)
{
    (void)state;
    assert_int_equal(lade_dhcp_start(&C, 0, NOW, &A), LADE_OK);
    tick_next();
    tick_next();
    tick_next();
    assert_true(A.flags & LADE_DHCP_ACT_LL_START);
    lade_dhcp_link_down(&C, NOW, &A);
    assert_true(A.flags & LADE_DHCP_ACT_LL_STOP);
    assert_int_equal(A.next_ms, NEVER);
    tick(NOW + 100000);
    assert_int_equal(A.flags, 0);
    /* link up: the count starts again */
    assert_int_equal(lade_dhcp_start(&C, 0, NOW, &A), LADE_OK); /* start == link up here */
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_INIT);
    tick_next();
    tick_next();
    assert_int_equal(A.flags & LADE_DHCP_ACT_LL_START, 0);
    tick_next();
    assert_true(A.flags & LADE_DHCP_ACT_LL_START);
}

static void test_stop_release(void **state)
{
    (void)state;
    to_bound();
    lade_dhcp_stop(&C, true, NOW, &A);
    struct cmsg r = sent();
    assert_int_equal(r.type, LADE_DHCP_RELEASE);
    assert_int_equal(r.ciaddr, YI);
    assert_true(r.has54 && r.server == SERVER);
    assert_int_equal(A.src, YI);
    assert_int_equal(A.dst, SERVER);
    assert_true(A.flags & LADE_DHCP_ACT_DROP);
    assert_true(A.flags & LADE_DHCP_ACT_ACD_STOP);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_STOPPED);
    assert_int_equal(A.next_ms, NEVER);
    /* and start again: a fresh attempt */
    assert_int_equal(lade_dhcp_start(&C, 0, NOW, &A), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_INIT);

    /* stop without release, and stop with nothing held */
    setup_cfg(NULL);
    to_bound();
    lade_dhcp_stop(&C, false, NOW, &A);
    assert_int_equal(A.flags & LADE_DHCP_ACT_SEND, 0);
    assert_true(A.flags & LADE_DHCP_ACT_DROP);
    lade_dhcp_stop(&C, true, NOW, &A);
    assert_int_equal(A.flags, 0);
}

static void test_conflict_after_bound(void **state)
{
    (void)state;
    assert_int_equal(lade_dhcp_conflict(&C, NOW, &A), LADE_ERR_STATE);
    to_bound();
    assert_int_equal(lade_dhcp_conflict(&C, NOW, &A), LADE_OK);
    struct cmsg d = sent();
    assert_int_equal(d.type, LADE_DHCP_DECLINE);
    assert_true(d.has50 && d.req == YI);
    assert_true(A.flags & LADE_DHCP_ACT_DROP);
    assert_true(A.flags & LADE_DHCP_ACT_ACD_STOP);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_INIT);
    assert_true(A.next_ms >= NOW + 10000);
    struct lade_dhcp_diag dg;
    lade_dhcp_diag(&C, NOW, &dg);
    assert_string_equal(dg.last_event, "address conflict after binding");
}

static struct srv_reply lease_reply(uint32_t xid, uint32_t lease, uint32_t t1, uint32_t t2)
{
    struct srv_reply k = offer_for(xid, LADE_DHCP_ACK);
    k.lease_s = lease;
    k.t1_s = t1;
    k.t2_s = t2;
    return k;
}

static const struct lade_dhcp_lease *bind_with(uint32_t lease, uint32_t t1, uint32_t t2)
{
    setup_cfg(no_probe);
    uint32_t xid = to_requesting();
    struct srv_reply k = lease_reply(xid, lease, t1, t2);
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_BOUND);
    return lade_dhcp_lease(&C);
}

static void test_lease_times(void **state)
{
    (void)state;
    const struct lade_dhcp_lease *l;
    /* server T1/T2 used when consistent */
    l = bind_with(1000, 100, 200);
    assert_int_equal(l->t1_s, 100);
    assert_int_equal(l->t2_s, 200);
    /* T2 >= lease → default T2; T1 kept */
    l = bind_with(1000, 100, 1000);
    assert_int_equal(l->t1_s, 100);
    assert_int_equal(l->t2_s, 875);
    /* T1 >= T2 → default T1 */
    l = bind_with(1000, 900, 0);
    assert_int_equal(l->t1_s, 500);
    assert_int_equal(l->t2_s, 875);
    /* T1 == T2 (server's): T1 at the default ratio under T2 */
    l = bind_with(1000, 300, 300);
    assert_int_equal(l->t2_s, 300);
    assert_int_equal(l->t1_s, 171);
    /* T2 below the default T1: T1 scaled under it */
    l = bind_with(1000, 0, 350);
    assert_int_equal(l->t2_s, 350);
    assert_int_equal(l->t1_s, 200);
    /* tiny lease → the minimum */
    l = bind_with(5, 0, 0);
    assert_int_equal(l->lease_s, LADE_DHCP_MIN_LEASE_S);
    assert_int_equal(l->expiry_ms, l->start_ms + LADE_DHCP_MIN_LEASE_S * 1000);
    /* infinite: no timers at all */
    l = bind_with(LADE_DHCP_INFINITE, 0, 0);
    assert_int_equal(l->lease_s, LADE_DHCP_INFINITE);
    assert_int_equal(l->expiry_ms, NEVER);
    assert_int_equal(A.next_ms, NEVER);
    struct lade_dhcp_diag dg;
    lade_dhcp_diag(&C, NOW, &dg);
    assert_int_equal(dg.lease_left_ms, NEVER);
    tick(NOW + 1000000000ull);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_BOUND);
    /* no subnet option: classful default */
    setup_cfg(no_probe);
    uint32_t xid = to_requesting();
    struct srv_reply k = offer_for(xid, LADE_DHCP_ACK);
    k.mask = 0;
    assert_int_equal(reply(&k), LADE_OK);
    assert_int_equal(lade_dhcp_lease(&C)->prefix_len, 8);
}

static void test_late_tick_expiry_first(void **state)
{
    (void)state;
    to_bound();
    uint64_t exp = lade_dhcp_lease(&C)->expiry_ms;
    /* the process slept through T1, T2 and the expiry: the expiry wins */
    tick(exp + 5000);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_INIT);
    assert_true(A.flags & LADE_DHCP_ACT_DROP);
    assert_int_equal(A.flags & LADE_DHCP_ACT_SEND, 0);
    /* slept past T2 only: straight to REBINDING */
    setup_cfg(NULL);
    to_bound();
    tick(lade_dhcp_lease(&C)->t2_ms + 10);
    assert_int_equal(lade_dhcp_state(&C), LADE_DHCP_REBINDING);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(lade_dhcp_state_name(LADE_DHCP_REBOOTING), "REBOOTING");
    assert_string_equal(lade_dhcp_state_name((enum lade_dhcp_state)77), "?");
    assert_string_equal(lade_addr_source_name(LADE_ADDR_LINK_LOCAL), "link-local");
    assert_string_equal(lade_addr_source_name(LADE_ADDR_DHCP), "dhcp");
    assert_string_equal(lade_addr_source_name(LADE_ADDR_NONE), "none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_init_config, setup),
        cmocka_unit_test_setup(test_discover_schedule, setup),
        cmocka_unit_test_setup(test_discover_jitter_bounds, setup),
        cmocka_unit_test_setup(test_link_local_after_third_discover, setup),
        cmocka_unit_test_setup(test_link_local_config, setup),
        cmocka_unit_test_setup(test_selecting_ignores, setup),
        cmocka_unit_test_setup(test_requesting, setup),
        cmocka_unit_test_setup(test_requesting_replies, setup),
        cmocka_unit_test_setup(test_probe_ok_bound, setup),
        cmocka_unit_test_setup(test_probe_conflict_decline, setup),
        cmocka_unit_test_setup(test_probe_timeout, setup),
        cmocka_unit_test_setup(test_no_probe, setup),
        cmocka_unit_test_setup(test_renew, setup),
        cmocka_unit_test_setup(test_renew_retry_floor_and_rebind, setup),
        cmocka_unit_test_setup(test_rebind_ack_other_server, setup),
        cmocka_unit_test_setup(test_renew_nak_and_wrong_server, setup),
        cmocka_unit_test_setup(test_nak_backoff, setup),
        cmocka_unit_test_setup(test_init_reboot, setup),
        cmocka_unit_test_setup(test_link_down_up_held_lease, setup),
        cmocka_unit_test_setup(test_link_down_stops_link_local, setup),
        cmocka_unit_test_setup(test_stop_release, setup),
        cmocka_unit_test_setup(test_conflict_after_bound, setup),
        cmocka_unit_test_setup(test_lease_times, setup),
        cmocka_unit_test_setup(test_late_tick_expiry_first, setup),
        cmocka_unit_test_setup(test_names, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
