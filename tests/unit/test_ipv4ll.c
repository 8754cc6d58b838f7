/* Unit tests for the ARP codec, address conflict detection (RFC 5227) and IPv4 link-local
 * (RFC 3927) in src/proto/ipv4ll/: timings with a fake clock, probe/announce/defend, conflicts,
 * the rate limit, the MAC-seeded candidates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lade/ipv4ll.h"
#include "lade/log.h"

#define NEVER UINT64_MAX
#define T0    5000000u
#define ADDR  LADE_IPV4(192, 168, 1, 77)

static const uint8_t MAC[6] = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
static const uint8_t PEER[6] = {0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee};

static bool g_lcg;
static uint32_t g_fixed, g_lcg_state;

static uint32_t fake_random(void *ud)
{
    (void)ud;
    if (g_lcg) {
        g_lcg_state = g_lcg_state * 1664525u + 1013904223u;
        return g_lcg_state >> 8;
    }
    return g_fixed;
}

static int setup(void **state)
{
    (void)state;
    lade_log_set_level(LADE_LOG_ERROR);
    g_lcg = false;
    g_fixed = 0;
    return 0;
}

/* ------------------------------------------------------------ ARP codec */

static void test_arp_codec(void **state)
{
    (void)state;
    struct lade_arp m, d;
    uint8_t buf[64];
    size_t n;
    lade_arp_announce(MAC, ADDR, &m);
    assert_int_equal(m.op, LADE_ARP_REQUEST);
    assert_int_equal(m.spa, ADDR);
    assert_int_equal(m.tpa, ADDR);
    assert_memory_equal(m.sha, MAC, 6);
    static const uint8_t zero[6];
    assert_memory_equal(m.tha, zero, 6);
    assert_int_equal(lade_arp_encode(&m, buf, sizeof buf, &n), LADE_OK);
    assert_int_equal(n, LADE_ARP_LEN);
    static const uint8_t head[8] = {0, 1, 8, 0, 6, 4, 0, 1};
    assert_memory_equal(buf, head, 8);
    assert_int_equal(lade_arp_decode(buf, n, &d), LADE_OK);
    assert_memory_equal(&d, &m, sizeof d);
    /* Ethernet padding after the 28 bytes is fine */
    memset(buf + 28, 0, 18);
    assert_int_equal(lade_arp_decode(buf, 46, &d), LADE_OK);

    lade_arp_probe(MAC, ADDR, &m);
    assert_int_equal(m.spa, 0);
    assert_int_equal(m.tpa, ADDR);
    m.op = LADE_ARP_REPLY;
    assert_int_equal(lade_arp_encode(&m, buf, sizeof buf, &n), LADE_OK);
    assert_int_equal(lade_arp_decode(buf, n, &d), LADE_OK);
    assert_int_equal(d.op, LADE_ARP_REPLY);

    /* encoder errors */
    assert_int_equal(lade_arp_encode(&m, buf, 27, &n), LADE_ERR_NOSPACE);
    m.op = 3;
    assert_int_equal(lade_arp_encode(&m, buf, sizeof buf, &n), LADE_ERR_INVAL);
    assert_int_equal(lade_arp_encode(NULL, buf, sizeof buf, &n), LADE_ERR_INVAL);

    /* decoder errors: every header byte */
    m.op = LADE_ARP_REQUEST;
    assert_int_equal(lade_arp_encode(&m, buf, sizeof buf, &n), LADE_OK);
    assert_int_equal(lade_arp_decode(buf, 27, &d), LADE_ERR_PROTO);
    assert_int_equal(lade_arp_decode(buf, 0, &d), LADE_ERR_PROTO);
    for (int i = 0; i < 8; i++) {
        uint8_t save = buf[i];
        buf[i] ^= 0x40;
        assert_int_equal(lade_arp_decode(buf, n, &d), LADE_ERR_PROTO);
        buf[i] = save;
    }
    buf[7] = 0;
    assert_int_equal(lade_arp_decode(buf, n, &d), LADE_ERR_PROTO);
    buf[7] = 2;
    assert_int_equal(lade_arp_decode(buf, n, &d), LADE_OK);
    assert_int_equal(lade_arp_decode(NULL, n, &d), LADE_ERR_INVAL);
}

/* ------------------------------------------------------------ ACD */

static struct lade_acd D;
static struct lade_acd_actions DA;
static uint64_t NOW;

static void acd_init(void)
{
    struct lade_acd_cfg cfg = {.random = fake_random, .name = "t"};
    memcpy(cfg.mac, MAC, 6);
    assert_int_equal(lade_acd_init(&D, &cfg), LADE_OK);
    NOW = T0;
}

static void acd_tick(uint64_t t)
{
    NOW = t;
    lade_acd_tick(&D, NOW, &DA);
}

static void acd_in(const uint8_t *sha, uint16_t op, uint32_t spa, uint32_t tpa)
{
    struct lade_arp m = {.op = op, .spa = spa, .tpa = tpa};
    memcpy(m.sha, sha, 6);
    lade_acd_input(&D, &m, NOW, &DA);
}

static void test_acd_init(void **state)
{
    (void)state;
    struct lade_acd a;
    struct lade_acd_cfg cfg = {0};
    assert_int_equal(lade_acd_init(&a, &cfg), LADE_ERR_CONFIG);
    acd_init();
    assert_int_equal(lade_acd_state(&D), LADE_ACD_STOPPED);
    assert_int_equal(lade_acd_start(&D, 0, NOW, &DA), LADE_ERR_INVAL);
    assert_int_equal(lade_acd_start(&D, LADE_IPV4_BROADCAST, NOW, &DA), LADE_ERR_INVAL);
    assert_string_equal(lade_acd_state_name(LADE_ACD_DEFENDING), "DEFENDING");
    assert_string_equal(lade_acd_state_name((enum lade_acd_state)9), "?");
    /* input while stopped: nothing */
    acd_in(PEER, LADE_ARP_REPLY, ADDR, ADDR);
    assert_int_equal(DA.flags, 0);
}

/* Checks the whole schedule with the random part at `fixed`. */
static void acd_schedule(uint32_t fixed, uint64_t wait, uint64_t gap)
{
    g_fixed = fixed;
    acd_init();
    assert_int_equal(lade_acd_start(&D, ADDR, NOW, &DA), LADE_OK);
    assert_int_equal(lade_acd_state(&D), LADE_ACD_PROBING);
    assert_int_equal(DA.flags, 0);
    assert_int_equal(DA.next_ms, T0 + wait);
    uint64_t t = T0 + wait;
    for (unsigned i = 0; i < LADE_ACD_PROBE_NUM; i++) {
        acd_tick(t - 1);
        assert_int_equal(DA.flags, 0);
        acd_tick(t);
        assert_int_equal(DA.flags, LADE_ACD_ACT_SEND);
        assert_int_equal(DA.arp.op, LADE_ARP_REQUEST);
        assert_int_equal(DA.arp.spa, 0);
        assert_int_equal(DA.arp.tpa, ADDR);
        uint64_t next = i + 1 < LADE_ACD_PROBE_NUM ? gap : LADE_ACD_ANNOUNCE_WAIT_MS;
        assert_int_equal(DA.next_ms, t + next);
        t += next;
    }
    acd_tick(t);
    assert_int_equal(DA.flags, LADE_ACD_ACT_SEND | LADE_ACD_ACT_READY);
    assert_int_equal(DA.arp.spa, ADDR);
    assert_int_equal(DA.arp.tpa, ADDR);
    assert_int_equal(lade_acd_state(&D), LADE_ACD_ANNOUNCING);
    assert_int_equal(DA.next_ms, t + LADE_ACD_ANNOUNCE_INTERVAL_MS);
    acd_tick(t + LADE_ACD_ANNOUNCE_INTERVAL_MS);
    assert_int_equal(DA.flags, LADE_ACD_ACT_SEND);
    assert_int_equal(DA.arp.spa, ADDR);
    assert_int_equal(lade_acd_state(&D), LADE_ACD_DEFENDING);
    assert_int_equal(DA.next_ms, NEVER);
    acd_tick(t + 100000);
    assert_int_equal(DA.flags, 0);
}

static void test_acd_schedule(void **state)
{
    (void)state;
    acd_schedule(0, 0, LADE_ACD_PROBE_MIN_MS);
    acd_schedule(1000, 1000, LADE_ACD_PROBE_MIN_MS + 1000); /* the top of both ranges */

    /* a real random source stays in bounds */
    for (uint32_t seed = 1; seed < 50; seed++) {
        g_lcg = true;
        g_lcg_state = seed;
        acd_init();
        assert_int_equal(lade_acd_start(&D, ADDR, NOW, &DA), LADE_OK);
        assert_true(DA.next_ms >= T0 && DA.next_ms <= T0 + LADE_ACD_PROBE_WAIT_MS);
        for (unsigned i = 0; i < LADE_ACD_PROBE_NUM - 1; i++) {
            acd_tick(DA.next_ms);
            uint64_t gap = DA.next_ms - NOW;
            assert_true(gap >= LADE_ACD_PROBE_MIN_MS && gap <= LADE_ACD_PROBE_MAX_MS);
        }
        g_lcg = false;
    }
}

static void test_acd_probe_conflicts(void **state)
{
    (void)state;
    struct {
        const uint8_t *sha;
        uint16_t op;
        uint32_t spa, tpa;
        bool conflict;
    } cases[] = {
        {PEER, LADE_ARP_REPLY, ADDR, LADE_IPV4(192, 168, 1, 1), true},   /* someone uses it */
        {PEER, LADE_ARP_REQUEST, ADDR, LADE_IPV4(192, 168, 1, 1), true}, /* ... asking around */
        {PEER, LADE_ARP_REQUEST, 0, ADDR, true},                         /* probing it too */
        {PEER, LADE_ARP_REPLY, 0, ADDR, false},                          /* not a probe (a reply) */
        {MAC, LADE_ARP_REPLY, ADDR, ADDR, false},                        /* our own, looped back */
        {MAC, LADE_ARP_REQUEST, 0, ADDR, false},                         /* our own probe */
        {PEER, LADE_ARP_REQUEST, LADE_IPV4(192, 168, 1, 9), ADDR, false}, /* who-has: fine */
        {PEER, LADE_ARP_REPLY, LADE_IPV4(192, 168, 1, 9), LADE_IPV4(192, 168, 1, 1), false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        acd_init();
        assert_int_equal(lade_acd_start(&D, ADDR, NOW, &DA), LADE_OK);
        acd_tick(DA.next_ms); /* first probe sent */
        acd_in(cases[i].sha, cases[i].op, cases[i].spa, cases[i].tpa);
        if (cases[i].conflict) {
            assert_int_equal(DA.flags, LADE_ACD_ACT_CONFLICT);
            assert_int_equal(lade_acd_state(&D), LADE_ACD_STOPPED);
            assert_int_equal(DA.next_ms, NEVER);
        } else {
            assert_int_equal(DA.flags, 0);
            assert_int_equal(lade_acd_state(&D), LADE_ACD_PROBING);
            assert_true(DA.next_ms != NEVER);
        }
    }
    /* a conflict before the first probe counts too */
    acd_init();
    assert_int_equal(lade_acd_start(&D, ADDR, NOW, &DA), LADE_OK);
    acd_in(PEER, LADE_ARP_REPLY, ADDR, ADDR);
    assert_int_equal(DA.flags, LADE_ACD_ACT_CONFLICT);
    /* and during ANNOUNCE_WAIT */
    acd_init();
    assert_int_equal(lade_acd_start(&D, ADDR, NOW, &DA), LADE_OK);
    for (int i = 0; i < 3; i++)
        acd_tick(DA.next_ms);
    acd_in(PEER, LADE_ARP_REQUEST, 0, ADDR);
    assert_int_equal(DA.flags, LADE_ACD_ACT_CONFLICT);
    /* stop: silent afterwards */
    acd_init();
    assert_int_equal(lade_acd_start(&D, ADDR, NOW, &DA), LADE_OK);
    lade_acd_stop(&D);
    acd_tick(NOW + 10000);
    assert_int_equal(DA.flags, 0);
}

static void to_defending(void)
{
    acd_init();
    assert_int_equal(lade_acd_start(&D, ADDR, NOW, &DA), LADE_OK);
    while (lade_acd_state(&D) != LADE_ACD_DEFENDING)
        acd_tick(DA.next_ms);
}

static void test_acd_defend(void **state)
{
    (void)state;
    to_defending();
    /* a probe for our address is not a claim (the kernel answers it) */
    acd_in(PEER, LADE_ARP_REQUEST, 0, ADDR);
    assert_int_equal(DA.flags, 0);
    /* a claim: defend once with an announcement */
    NOW += 1000;
    acd_in(PEER, LADE_ARP_REPLY, ADDR, ADDR);
    assert_int_equal(DA.flags, LADE_ACD_ACT_SEND);
    assert_int_equal(DA.arp.spa, ADDR);
    assert_int_equal(DA.arp.tpa, ADDR);
    assert_int_equal(lade_acd_state(&D), LADE_ACD_DEFENDING);
    /* another within DEFEND_INTERVAL: lost */
    NOW += LADE_ACD_DEFEND_INTERVAL_MS - 1;
    acd_in(PEER, LADE_ARP_REQUEST, ADDR, LADE_IPV4(192, 168, 1, 1));
    assert_int_equal(DA.flags, LADE_ACD_ACT_CONFLICT);
    assert_int_equal(lade_acd_state(&D), LADE_ACD_STOPPED);

    /* claims DEFEND_INTERVAL apart: defended each time */
    to_defending();
    for (int i = 0; i < 5; i++) {
        NOW += LADE_ACD_DEFEND_INTERVAL_MS;
        acd_in(PEER, LADE_ARP_REPLY, ADDR, ADDR);
        assert_int_equal(DA.flags, LADE_ACD_ACT_SEND);
    }
    /* our own announcements never count */
    acd_in(MAC, LADE_ARP_REQUEST, ADDR, ADDR);
    assert_int_equal(DA.flags, 0);

    /* while still announcing, too */
    acd_init();
    assert_int_equal(lade_acd_start(&D, ADDR, NOW, &DA), LADE_OK);
    while (lade_acd_state(&D) != LADE_ACD_ANNOUNCING)
        acd_tick(DA.next_ms);
    acd_in(PEER, LADE_ARP_REPLY, ADDR, ADDR);
    assert_int_equal(DA.flags, LADE_ACD_ACT_SEND);
    assert_true(DA.next_ms != NEVER); /* the second announcement is still due */
    acd_in(PEER, LADE_ARP_REPLY, ADDR, ADDR);
    assert_int_equal(DA.flags, LADE_ACD_ACT_CONFLICT);
}

static void test_acd_announce_only(void **state)
{
    (void)state;
    acd_init();
    assert_int_equal(lade_acd_announce(&D, 0, NOW, &DA), LADE_ERR_INVAL);
    assert_int_equal(lade_acd_announce(&D, ADDR, NOW, &DA), LADE_OK);
    assert_int_equal(DA.flags, LADE_ACD_ACT_SEND); /* no READY: it is configured already */
    assert_int_equal(DA.arp.spa, ADDR);
    assert_int_equal(DA.arp.tpa, ADDR);
    assert_int_equal(lade_acd_state(&D), LADE_ACD_ANNOUNCING);
    assert_int_equal(DA.next_ms, T0 + LADE_ACD_ANNOUNCE_INTERVAL_MS);
    acd_tick(DA.next_ms);
    assert_int_equal(DA.flags, LADE_ACD_ACT_SEND);
    assert_int_equal(lade_acd_state(&D), LADE_ACD_DEFENDING);
    NOW += 1;
    acd_in(PEER, LADE_ARP_REPLY, ADDR, ADDR);
    assert_int_equal(DA.flags, LADE_ACD_ACT_SEND); /* defended */
    acd_in(PEER, LADE_ARP_REPLY, ADDR, ADDR);
    assert_int_equal(DA.flags, LADE_ACD_ACT_CONFLICT);
}

/* ------------------------------------------------------------ IPv4 link-local */

static struct lade_ipv4ll L;
static struct lade_ipv4ll_actions LA;

static void ll_init(const uint8_t *mac, uint32_t last)
{
    struct lade_ipv4ll_cfg cfg = {.random = fake_random, .last_addr = last, .name = "ll"};
    memcpy(cfg.mac, mac, 6);
    assert_int_equal(lade_ipv4ll_init(&L, &cfg), LADE_OK);
    NOW = T0;
}

static void ll_tick(uint64_t t)
{
    NOW = t;
    lade_ipv4ll_tick(&L, NOW, &LA);
}

static void ll_in(const uint8_t *sha, uint16_t op, uint32_t spa, uint32_t tpa)
{
    struct lade_arp m = {.op = op, .spa = spa, .tpa = tpa};
    memcpy(m.sha, sha, 6);
    lade_ipv4ll_input(&L, &m, NOW, &LA);
}

/* Runs timers until BOUND; returns the address configured. */
static uint32_t ll_claim(void)
{
    for (int i = 0; i < 20 && lade_ipv4ll_state(&L) != LADE_IPV4LL_BOUND; i++) {
        ll_tick(LA.next_ms);
        if (LA.flags & LADE_IPV4LL_ACT_CONFIGURE)
            return LA.addr;
    }
    fail();
    return 0;
}

static void test_ll_range_and_seed(void **state)
{
    (void)state;
    assert_false(lade_ipv4ll_in_range(LADE_IPV4(169, 254, 0, 255)));
    assert_true(lade_ipv4ll_in_range(LADE_IPV4(169, 254, 1, 0)));
    assert_true(lade_ipv4ll_in_range(LADE_IPV4(169, 254, 254, 255)));
    assert_false(lade_ipv4ll_in_range(LADE_IPV4(169, 254, 255, 0)));
    assert_false(lade_ipv4ll_in_range(LADE_IPV4(10, 0, 0, 1)));
    struct lade_ipv4ll x;
    struct lade_ipv4ll_cfg cfg = {0};
    assert_int_equal(lade_ipv4ll_init(&x, &cfg), LADE_ERR_CONFIG);

    /* the same MAC picks the same first address every time; another MAC another one */
    ll_init(MAC, 0);
    lade_ipv4ll_start(&L, NOW, &LA);
    struct lade_ipv4ll_diag dg;
    lade_ipv4ll_diag(&L, &dg);
    uint32_t first = dg.candidate;
    assert_true(lade_ipv4ll_in_range(first));
    assert_int_equal(dg.state, LADE_IPV4LL_CLAIMING);
    ll_init(MAC, 0);
    lade_ipv4ll_start(&L, NOW, &LA);
    lade_ipv4ll_diag(&L, &dg);
    assert_int_equal(dg.candidate, first);
    ll_init(PEER, 0);
    lade_ipv4ll_start(&L, NOW, &LA);
    lade_ipv4ll_diag(&L, &dg);
    assert_int_not_equal(dg.candidate, first);

    /* a remembered address is tried first; one out of range is ignored */
    ll_init(MAC, LADE_IPV4(169, 254, 7, 7));
    lade_ipv4ll_start(&L, NOW, &LA);
    lade_ipv4ll_diag(&L, &dg);
    assert_int_equal(dg.candidate, LADE_IPV4(169, 254, 7, 7));
    ll_init(MAC, LADE_IPV4(169, 254, 0, 7));
    lade_ipv4ll_start(&L, NOW, &LA);
    lade_ipv4ll_diag(&L, &dg);
    assert_int_equal(dg.candidate, first);

    /* many conflicts: every candidate in range, never the same twice in a row */
    ll_init(MAC, 0);
    lade_ipv4ll_start(&L, NOW, &LA);
    uint32_t prev = first;
    for (int i = 0; i < 2000; i++) {
        lade_ipv4ll_diag(&L, &dg);
        if (dg.state == LADE_IPV4LL_WAITING)
            ll_tick(LA.next_ms);
        lade_ipv4ll_diag(&L, &dg);
        ll_in(PEER, LADE_ARP_REPLY, dg.candidate, dg.candidate);
        lade_ipv4ll_diag(&L, &dg);
        assert_true(lade_ipv4ll_in_range(dg.candidate));
        assert_int_not_equal(dg.candidate, prev);
        prev = dg.candidate;
    }
}

static void test_ll_claim_and_stop(void **state)
{
    (void)state;
    ll_init(MAC, 0);
    assert_int_equal(lade_ipv4ll_state(&L), LADE_IPV4LL_STOPPED);
    assert_int_equal(lade_ipv4ll_addr(&L), 0);
    lade_ipv4ll_start(&L, NOW, &LA);
    assert_int_equal(LA.flags, 0);
    assert_int_equal(LA.next_ms, T0); /* random part 0 */
    /* 3 probes then ANNOUNCE_WAIT: CONFIGURE with the first announcement */
    int probes = 0;
    for (;;) {
        ll_tick(LA.next_ms);
        if (LA.flags & LADE_IPV4LL_ACT_CONFIGURE)
            break;
        assert_int_equal(LA.flags, LADE_IPV4LL_ACT_SEND);
        assert_int_equal(LA.arp.spa, 0);
        probes++;
    }
    assert_int_equal(probes, 3);
    assert_int_equal(NOW - T0, 2 * LADE_ACD_PROBE_MIN_MS + LADE_ACD_ANNOUNCE_WAIT_MS);
    assert_int_equal(LA.flags, LADE_IPV4LL_ACT_CONFIGURE | LADE_IPV4LL_ACT_SEND);
    uint32_t a = LA.addr;
    assert_true(lade_ipv4ll_in_range(a));
    assert_int_equal(LA.arp.spa, a);
    assert_int_equal(lade_ipv4ll_state(&L), LADE_IPV4LL_BOUND);
    assert_int_equal(lade_ipv4ll_addr(&L), a);
    assert_int_equal(lade_ipv4ll_claimed(&L), a);
    ll_tick(LA.next_ms); /* second announcement */
    assert_int_equal(LA.flags, LADE_IPV4LL_ACT_SEND);
    assert_int_equal(LA.next_ms, NEVER);
    /* start again while bound: no-op */
    lade_ipv4ll_start(&L, NOW, &LA);
    assert_int_equal(LA.flags, 0);
    /* stop drops it */
    lade_ipv4ll_stop(&L, NOW, &LA);
    assert_int_equal(LA.flags, LADE_IPV4LL_ACT_DROP);
    assert_int_equal(LA.drop_addr, a);
    assert_int_equal(lade_ipv4ll_state(&L), LADE_IPV4LL_STOPPED);
    assert_int_equal(LA.next_ms, NEVER);
    lade_ipv4ll_stop(&L, NOW, &LA);
    assert_int_equal(LA.flags, 0);
    /* restart: the same address is claimed again (remembered) */
    lade_ipv4ll_start(&L, NOW, &LA);
    assert_int_equal(ll_claim(), a);
    struct lade_ipv4ll_diag dg;
    lade_ipv4ll_diag(&L, &dg);
    assert_int_equal(dg.claims, 2);
    assert_int_equal(dg.addr, a);
    /* input while stopped or claiming other addresses: nothing */
    lade_ipv4ll_stop(&L, NOW, &LA);
    ll_in(PEER, LADE_ARP_REPLY, a, a);
    assert_int_equal(LA.flags, 0);
    assert_string_equal(lade_ipv4ll_state_name(LADE_IPV4LL_WAITING), "WAITING");
    assert_string_equal(lade_ipv4ll_state_name((enum lade_ipv4ll_state)8), "?");
}

static void test_ll_conflict_and_rate_limit(void **state)
{
    (void)state;
    ll_init(MAC, 0);
    lade_ipv4ll_start(&L, NOW, &LA);
    struct lade_ipv4ll_diag dg;
    for (unsigned i = 1; i < LADE_IPV4LL_MAX_CONFLICTS; i++) {
        lade_ipv4ll_diag(&L, &dg);
        uint32_t c = dg.candidate;
        ll_tick(LA.next_ms); /* a probe */
        ll_in(PEER, LADE_ARP_REPLY, c, c);
        assert_int_equal(LA.flags, 0); /* nothing configured yet: nothing to drop */
        lade_ipv4ll_diag(&L, &dg);
        assert_int_equal(dg.state, LADE_IPV4LL_CLAIMING);
        assert_int_equal(dg.conflicts, i);
        assert_int_not_equal(dg.candidate, c);
        assert_true(LA.next_ms <= NOW + LADE_ACD_PROBE_WAIT_MS);
    }
    /* the 10th conflict: one new address per RATE_LIMIT_INTERVAL */
    lade_ipv4ll_diag(&L, &dg);
    ll_in(PEER, LADE_ARP_REQUEST, 0, dg.candidate);
    lade_ipv4ll_diag(&L, &dg);
    assert_int_equal(dg.state, LADE_IPV4LL_WAITING);
    assert_int_equal(dg.conflicts, LADE_IPV4LL_MAX_CONFLICTS);
    assert_int_equal(LA.next_ms, NOW + LADE_IPV4LL_RATE_LIMIT_INTERVAL_MS);
    uint64_t due = LA.next_ms;
    ll_tick(due - 1);
    assert_int_equal(LA.flags, 0);
    assert_int_equal(lade_ipv4ll_state(&L), LADE_IPV4LL_WAITING);
    ll_in(PEER, LADE_ARP_REPLY, dg.candidate, dg.candidate); /* ignored while waiting */
    assert_int_equal(lade_ipv4ll_state(&L), LADE_IPV4LL_WAITING);
    ll_tick(due);
    assert_int_equal(lade_ipv4ll_state(&L), LADE_IPV4LL_CLAIMING);
    /* one more conflict: rate limited again */
    lade_ipv4ll_diag(&L, &dg);
    ll_in(PEER, LADE_ARP_REPLY, dg.candidate, dg.candidate);
    assert_int_equal(lade_ipv4ll_state(&L), LADE_IPV4LL_WAITING);
    assert_int_equal(LA.next_ms, NOW + LADE_IPV4LL_RATE_LIMIT_INTERVAL_MS);
    ll_tick(LA.next_ms);
    /* success resets the count */
    uint32_t a = ll_claim();
    lade_ipv4ll_diag(&L, &dg);
    assert_int_equal(dg.conflicts, 0);
    assert_int_equal(dg.conflicts_total, LADE_IPV4LL_MAX_CONFLICTS + 1);
    assert_int_equal(dg.addr, a);
}

static void test_ll_lost_after_defending(void **state)
{
    (void)state;
    ll_init(MAC, 0);
    lade_ipv4ll_start(&L, NOW, &LA);
    uint32_t a = ll_claim();
    ll_tick(LA.next_ms); /* second announcement */
    NOW += 30000;
    ll_in(PEER, LADE_ARP_REPLY, a, a);
    assert_int_equal(LA.flags, LADE_IPV4LL_ACT_SEND); /* defended */
    assert_int_equal(lade_ipv4ll_addr(&L), a);
    NOW += 500;
    ll_in(PEER, LADE_ARP_REPLY, a, a);
    assert_int_equal(LA.flags, LADE_IPV4LL_ACT_DROP); /* lost: drop, claim another */
    assert_int_equal(LA.drop_addr, a);
    assert_int_equal(lade_ipv4ll_state(&L), LADE_IPV4LL_CLAIMING);
    assert_int_equal(lade_ipv4ll_addr(&L), 0);
    uint32_t b = ll_claim();
    assert_int_not_equal(a, b);
    assert_int_equal(lade_ipv4ll_claimed(&L), b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_arp_codec, setup),
        cmocka_unit_test_setup(test_acd_init, setup),
        cmocka_unit_test_setup(test_acd_schedule, setup),
        cmocka_unit_test_setup(test_acd_probe_conflicts, setup),
        cmocka_unit_test_setup(test_acd_defend, setup),
        cmocka_unit_test_setup(test_acd_announce_only, setup),
        cmocka_unit_test_setup(test_ll_range_and_seed, setup),
        cmocka_unit_test_setup(test_ll_claim_and_stop, setup),
        cmocka_unit_test_setup(test_ll_conflict_and_rate_limit, setup),
        cmocka_unit_test_setup(test_ll_lost_after_defending, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
