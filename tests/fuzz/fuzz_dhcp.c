/* libFuzzer target: the DHCP reply decoder, the ARP decoder, and the DHCP client / ACD / link-local
 * machines fed the same bytes (src/proto/dhcp, src/proto/ipv4ll).
 *
 * Input: byte 0 selects; the rest is one packet (a UDP payload from port 67, or an ARP payload).
 *   bits 0-1: 0 reply decoder (bit 6: the input is an IPv4/UDP datagram from a packet socket,
 *             unwrapped first), 1 ARP decoder + ACD + link-local, 2-3 client machine
 *   bits 2-4: client state before the packet: SELECTING, REQUESTING, RENEWING, REBINDING,
 *             REBOOTING (held lease), REBOOTING (fresh) — others fold onto these
 *   bit 7:    overwrite xid and chaddr with the expected ones (reach past the "not for us" check)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lade/dhcp.h"
#include "lade/ipv4ll.h"
#include "lade/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static const uint8_t MAC[6] = {0x02, 0x00, 0x5e, 0x10, 0x20, 0x30};
#define XID    0x0badcafeu
#define YI     0x0a000032u /* 10.0.0.50 */
#define SERVER 0x0a000001u

static uint32_t fuzz_random(void *ud)
{
    (void)ud;
    return XID; /* xid and jitter: deterministic */
}

static void check_reply(const struct lade_dhcp_reply *r)
{
    CHECK(r->type == LADE_DHCP_OFFER || r->type == LADE_DHCP_ACK || r->type == LADE_DHCP_NAK);
    if (r->type != LADE_DHCP_NAK)
        CHECK(lade_ipv4_unicast(r->yiaddr));
    CHECK(r->n_routers <= LADE_DHCP_MAX_ADDRS && r->n_dns <= LADE_DHCP_MAX_ADDRS &&
          r->n_ntp <= LADE_DHCP_MAX_ADDRS);
    for (unsigned i = 0; i < r->n_routers; i++)
        CHECK(lade_ipv4_unicast(r->routers[i]));
    for (unsigned i = 0; i < r->n_dns; i++)
        CHECK(lade_ipv4_unicast(r->dns[i]));
    for (unsigned i = 0; i < r->n_ntp; i++)
        CHECK(lade_ipv4_unicast(r->ntp[i]));
    if (r->has_subnet)
        CHECK(lade_ipv4_prefix_len(r->subnet_mask) >= 1);
    if (r->has_server_id)
        CHECK(lade_ipv4_unicast(r->server_id));
    CHECK(r->overload <= 3);
    size_t n = strnlen(r->message, sizeof r->message);
    CHECK(n < sizeof r->message);
    for (size_t i = 0; i < n; i++)
        CHECK(r->message[i] >= ' ' && r->message[i] <= '~');
}

/* Minimal well-formed reply for driving the machine into a state. */
static size_t mk_reply(uint8_t *b, uint8_t type)
{
    memset(b, 0, 300);
    b[0] = 2;
    b[1] = 1;
    b[2] = 6;
    b[4] = (uint8_t)(XID >> 24);
    b[5] = (uint8_t)(XID >> 16);
    b[6] = (uint8_t)(XID >> 8);
    b[7] = (uint8_t)XID;
    b[16] = 10, b[17] = 0, b[18] = 0, b[19] = 50;
    memcpy(b + 28, MAC, 6);
    b[236] = 0x63, b[237] = 0x82, b[238] = 0x53, b[239] = 0x63;
    const uint8_t opts[] = {53, 1, type, 54, 4, 10, 0, 0, 1, 51, 4, 0, 0, 14, 16, 255};
    memcpy(b + 240, opts, sizeof opts);
    return 240 + sizeof opts;
}

static void check_actions(const struct lade_dhcp *c, const struct lade_dhcp_actions *a,
                          uint64_t now)
{
    if (a->flags & LADE_DHCP_ACT_SEND) {
        CHECK(a->pkt && a->pkt_len >= LADE_DHCP_BOOTP_MIN && a->pkt_len <= LADE_DHCP_TX_MAX);
        CHECK(a->dst == LADE_IPV4_BROADCAST || lade_ipv4_unicast(a->dst));
    }
    if (a->flags & LADE_DHCP_ACT_CONFIGURE) {
        CHECK(a->lease && lade_ipv4_unicast(a->lease->addr));
        CHECK(a->lease->prefix_len >= 1 && a->lease->prefix_len <= 32);
        CHECK(a->lease->t1_ms <= a->lease->t2_ms && a->lease->t2_ms <= a->lease->expiry_ms);
    }
    CHECK((a->flags & (LADE_DHCP_ACT_LL_START | LADE_DHCP_ACT_LL_STOP)) !=
          (LADE_DHCP_ACT_LL_START | LADE_DHCP_ACT_LL_STOP));
    enum lade_dhcp_state st = lade_dhcp_state(c);
    bool lease_state =
        st == LADE_DHCP_BOUND || st == LADE_DHCP_RENEWING || st == LADE_DHCP_REBINDING;
    if (lease_state)
        CHECK(lade_dhcp_lease(c) != NULL);
    if (st != LADE_DHCP_STOPPED && st != LADE_DHCP_LINK_DOWN && !lease_state)
        CHECK(a->next_ms != UINT64_MAX || lade_dhcp_lease(c) != NULL);
    (void)now;
}

static void fuzz_client(const uint8_t *data, size_t size, unsigned which)
{
    struct lade_dhcp c;
    struct lade_dhcp_actions a;
    struct lade_dhcp_cfg cfg;
    uint8_t b[400];
    lade_dhcp_cfg_default(&cfg);
    memcpy(cfg.mac, MAC, 6);
    cfg.random = fuzz_random;
    CHECK(lade_dhcp_init(&c, &cfg) == LADE_OK);
    uint64_t now = 1000;
    which %= 6;
    if (which >= 4) {
        CHECK(lade_dhcp_start(&c, YI, now, &a) == LADE_OK);
        if (which == 4) { /* held lease: bind, lose the link, get it back */
            CHECK(lade_dhcp_input(&c, b, mk_reply(b, LADE_DHCP_ACK), now, &a) == LADE_OK);
            CHECK(lade_dhcp_probe_done(&c, false, now, &a) == LADE_OK);
            lade_dhcp_link_down(&c, now, &a);
            CHECK(lade_dhcp_link_up(&c, now, &a) == LADE_OK);
        }
    } else {
        CHECK(lade_dhcp_start(&c, 0, now, &a) == LADE_OK);
        now = a.next_ms;
        lade_dhcp_tick(&c, now, &a);
        if (which >= 1)
            CHECK(lade_dhcp_input(&c, b, mk_reply(b, LADE_DHCP_OFFER), now, &a) == LADE_OK);
        if (which >= 2) {
            CHECK(lade_dhcp_input(&c, b, mk_reply(b, LADE_DHCP_ACK), now, &a) == LADE_OK);
            CHECK(lade_dhcp_probe_done(&c, false, now, &a) == LADE_OK);
            now = lade_dhcp_lease(&c)->t1_ms;
            if (which == 3)
                now = lade_dhcp_lease(&c)->t2_ms;
            lade_dhcp_tick(&c, now, &a);
        }
    }
    lade_err e = lade_dhcp_input(&c, data, size, now, &a);
    CHECK(e == LADE_OK || e == LADE_ERR_NOT_FOUND || e == LADE_ERR_PROTO || e == LADE_ERR_TOO_BIG ||
          e == LADE_ERR_STATE);
    check_actions(&c, &a, now);
    if (lade_dhcp_state(&c) == LADE_DHCP_PROBING) {
        CHECK(a.flags & LADE_DHCP_ACT_ACD_START);
        CHECK(lade_dhcp_probe_done(&c, (size & 1) != 0, now, &a) == LADE_OK);
        check_actions(&c, &a, now);
    }
    /* run the timers for a while: nothing may loop or break an invariant */
    for (int i = 0; i < 12 && a.next_ms != UINT64_MAX; i++) {
        now = a.next_ms > now ? a.next_ms : now;
        lade_dhcp_tick(&c, now, &a);
        check_actions(&c, &a, now);
    }
    struct lade_dhcp_diag d;
    lade_dhcp_diag(&c, now, &d);
    CHECK(d.state == lade_dhcp_state(&c));
}

static uint32_t arp_random(void *ud)
{
    (void)ud;
    return 0;
}

static void fuzz_arp(const uint8_t *data, size_t size)
{
    struct lade_arp m;
    lade_err e = lade_arp_decode(data, size, &m);
    if (e != LADE_OK) {
        CHECK(e == LADE_ERR_PROTO);
        return;
    }
    CHECK(m.op == LADE_ARP_REQUEST || m.op == LADE_ARP_REPLY);
    uint8_t out[LADE_ARP_LEN];
    size_t n;
    CHECK(lade_arp_encode(&m, out, sizeof out, &n) == LADE_OK);
    CHECK(n == LADE_ARP_LEN && memcmp(out, data, LADE_ARP_LEN) == 0);

    /* An ACD in each phase and a link-local machine see the packet. */
    struct lade_acd_cfg ac = {.random = arp_random};
    memcpy(ac.mac, MAC, 6);
    for (int phase = 0; phase < 4; phase++) {
        struct lade_acd acd;
        struct lade_acd_actions a;
        CHECK(lade_acd_init(&acd, &ac) == LADE_OK);
        uint64_t now = 100;
        CHECK(lade_acd_start(&acd, m.tpa ? (lade_ipv4_unicast(m.tpa) ? m.tpa : YI) : YI, now, &a) ==
              LADE_OK);
        for (int i = 0; i < phase * 2; i++) {
            now = a.next_ms == UINT64_MAX ? now : a.next_ms;
            lade_acd_tick(&acd, now, &a);
        }
        lade_acd_input(&acd, &m, now, &a);
        if (a.flags & LADE_ACD_ACT_CONFLICT)
            CHECK(lade_acd_state(&acd) == LADE_ACD_STOPPED);
        lade_acd_input(&acd, &m, now + 1, &a);
    }
    struct lade_ipv4ll ll;
    struct lade_ipv4ll_actions la;
    struct lade_ipv4ll_cfg lc = {.random = arp_random, .last_addr = m.tpa};
    memcpy(lc.mac, MAC, 6);
    CHECK(lade_ipv4ll_init(&ll, &lc) == LADE_OK);
    uint64_t now = 0;
    lade_ipv4ll_start(&ll, now, &la);
    for (int i = 0; i < 20; i++) {
        lade_ipv4ll_input(&ll, &m, now, &la);
        if (la.flags & LADE_IPV4LL_ACT_CONFIGURE)
            CHECK(lade_ipv4ll_in_range(la.addr));
        if (la.next_ms != UINT64_MAX)
            now = la.next_ms;
        lade_ipv4ll_tick(&ll, now, &la);
        if (la.flags & LADE_IPV4LL_ACT_CONFIGURE)
            CHECK(lade_ipv4ll_in_range(la.addr));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[LADE_DHCP_MAX_REPLY + 64];
    static int quiet;
    if (!quiet) {
        lade_log_set_level(LADE_LOG_ERROR);
        quiet = 1;
    }
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    data++;
    size--;
    if (size > sizeof buf)
        size = sizeof buf;
    memcpy(buf, data, size);
    if ((sel & 0x80) && size >= 34) {
        buf[4] = (uint8_t)(XID >> 24);
        buf[5] = (uint8_t)(XID >> 16);
        buf[6] = (uint8_t)(XID >> 8);
        buf[7] = (uint8_t)XID;
        memcpy(buf + 28, MAC, 6);
    }
    switch (sel & 3) {
    case 0: {
        struct lade_dhcp_reply r, r2;
        const uint8_t *p = buf;
        if (sel & 0x40) {
            struct lade_ipv4_udp u;
            lade_err ue = lade_ipv4_udp_decode(buf, size, (sel & 0x20) != 0, &u);
            CHECK(ue == LADE_OK || ue == LADE_ERR_PROTO);
            if (ue != LADE_OK)
                break;
            CHECK(u.payload >= buf && u.payload + u.len <= buf + size);
            /* re-wrapping gives a datagram that decodes to the same */
            static uint8_t again[sizeof buf + LADE_IPV4_UDP_HDR];
            size_t n;
            CHECK(lade_ipv4_udp_encode(u.src, u.dst, u.sport, u.dport, u.payload, u.len, again,
                                       sizeof again, &n) == LADE_OK);
            struct lade_ipv4_udp w;
            CHECK(lade_ipv4_udp_decode(again, n, true, &w) == LADE_OK);
            CHECK(w.len == u.len && memcmp(w.payload, u.payload, u.len) == 0);
            p = u.payload;
            size = u.len;
        }
        lade_err e = lade_dhcp_decode_reply(p, size, XID, MAC, &r);
        CHECK(e == LADE_OK || e == LADE_ERR_NOT_FOUND || e == LADE_ERR_PROTO ||
              e == LADE_ERR_TOO_BIG);
        if (e == LADE_OK) {
            check_reply(&r);
            CHECK(lade_dhcp_decode_reply(p, size, XID, MAC, &r2) == LADE_OK);
            CHECK(memcmp(&r, &r2, sizeof r) == 0);
        }
        /* The ACK to an INFORM (lade-check's probe): the same checks but yiaddr, ACK only, and
         * whatever decode_reply accepted as an ACK it accepts too. */
        lade_err ei = lade_dhcp_decode_inform_ack(p, size, XID, MAC, &r2);
        CHECK(ei == LADE_OK || ei == LADE_ERR_NOT_FOUND || ei == LADE_ERR_PROTO ||
              ei == LADE_ERR_TOO_BIG);
        if (ei == LADE_OK) {
            CHECK(r2.type == LADE_DHCP_ACK);
            r2.yiaddr = LADE_IPV4(192, 0, 2, 1);
            check_reply(&r2);
        }
        if (e == LADE_OK && r.type == LADE_DHCP_ACK)
            CHECK(ei == LADE_OK);
        break;
    }
    case 1:
        fuzz_arp(buf, size);
        break;
    default:
        fuzz_client(buf, size, (sel >> 2) & 7);
        break;
    }
    return 0;
}
