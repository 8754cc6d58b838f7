/* lade — ARP codec, address conflict detection (RFC 5227) and IPv4 link-local addresses
 * (RFC 3927). Pure: no I/O, no clock (now_ms from the caller), no allocation, randomness from a
 * caller-supplied function. The Linux shell sends and receives the ARP packets on a packet
 * socket (src/port/linux/dhcp_linux.c). docs/dhcp.md has the diagrams.
 *
 * Addresses are uint32_t in host byte order (as in include/lade/dhcp.h).
 *
 * Three layers:
 *   - lade_arp_*: the 28-byte ARP payload for IPv4 over Ethernet (RFC 826), encode/decode.
 *   - lade_acd: probes one address, announces it, then defends it (RFC 5227 §2.1–2.4). Used for
 *     a DHCP address (dhcp.h ACD_START) and inside lade_ipv4ll.
 *   - lade_ipv4ll: picks link-local candidates from a PRNG seeded with the MAC, claims one with
 *     lade_acd, counts conflicts and rate-limits after MAX_CONFLICTS (RFC 3927 §2).
 */
#ifndef LADE_IPV4LL_H
#define LADE_IPV4LL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/dhcp.h"
#include "lade/err.h"

/* ---------------------------------------------------------------- ARP codec */

#define LADE_ARP_LEN     28u /* ARP payload for Ethernet/IPv4 */
#define LADE_ARP_REQUEST 1
#define LADE_ARP_REPLY   2
#define LADE_ETH_P_ARP   0x0806

struct lade_arp {
    uint16_t op; /* LADE_ARP_REQUEST or LADE_ARP_REPLY */
    uint8_t sha[6];
    uint32_t spa;
    uint8_t tha[6];
    uint32_t tpa;
};

/* Writes the 28 bytes (htype 1, ptype 0x0800, hlen 6, plen 4). LADE_ERR_NOSPACE if cap < 28,
 * LADE_ERR_INVAL for an op other than 1 or 2. */
lade_err lade_arp_encode(const struct lade_arp *m, uint8_t *buf, size_t cap,
                         size_t *out_len) LADE_MUST_CHECK;
/* Decodes buf[0..len) (trailing bytes, e.g. Ethernet padding, are ignored). LADE_ERR_PROTO when
 * shorter than 28 bytes or not Ethernet/IPv4 (htype 1, ptype 0x0800, hlen 6, plen 4) with op 1
 * or 2. */
lade_err lade_arp_decode(const uint8_t *buf, size_t len, struct lade_arp *out) LADE_MUST_CHECK;
/* ARP Probe (RFC 5227 §1.1): request, sender IP 0, target IP addr, target MAC 0. */
void lade_arp_probe(const uint8_t mac[6], uint32_t addr, struct lade_arp *out);
/* ARP Announcement (RFC 5227 §1.1, §2.3): request, sender IP = target IP = addr. */
void lade_arp_announce(const uint8_t mac[6], uint32_t addr, struct lade_arp *out);

/* ---------------------------------------------------------------- address conflict detection
 *
 *   STOPPED ─start→ PROBING: wait random 0..PROBE_WAIT, then PROBE_NUM probes PROBE_MIN..
 *   PROBE_MAX apart, then ANNOUNCE_WAIT; a conflicting packet meanwhile → CONFLICT, STOPPED.
 *   Quiet → READY (configure the address now) and ANNOUNCING: ANNOUNCE_NUM announcements
 *   ANNOUNCE_INTERVAL apart → DEFENDING. In ANNOUNCING/DEFENDING a packet from another host that
 *   claims the address is answered with one announcement; a second one within DEFEND_INTERVAL
 *   → CONFLICT (the address is lost; stop using it), STOPPED (RFC 5227 §2.4 (b)).
 *
 * Conflicting packets (RFC 5227 §2.1.1, §2.4), ignoring packets whose sender hardware address
 * is our own: sender IP == the address (request or reply); while PROBING also a probe (sender IP
 * 0) for the address from another host (simultaneous probes).
 */

#define LADE_ACD_PROBE_WAIT_MS        1000u
#define LADE_ACD_PROBE_NUM            3u
#define LADE_ACD_PROBE_MIN_MS         1000u
#define LADE_ACD_PROBE_MAX_MS         2000u
#define LADE_ACD_ANNOUNCE_WAIT_MS     2000u
#define LADE_ACD_ANNOUNCE_NUM         2u
#define LADE_ACD_ANNOUNCE_INTERVAL_MS 2000u
#define LADE_ACD_DEFEND_INTERVAL_MS   10000u

enum lade_acd_state {
    LADE_ACD_STOPPED = 0,
    LADE_ACD_PROBING,
    LADE_ACD_ANNOUNCING,
    LADE_ACD_DEFENDING,
};
const char *lade_acd_state_name(enum lade_acd_state st);

#define LADE_ACD_ACT_SEND  0x1u /* broadcast act->arp (Ethernet dst ff:ff:ff:ff:ff:ff) */
#define LADE_ACD_ACT_READY 0x2u /* probing found no other user: configure the address now */
#define LADE_ACD_ACT_CONFLICT                                                                      \
    0x4u /* the address is in use by another host: do not (or no                                   \
            longer) use it; the machine is STOPPED */

struct lade_acd_actions {
    uint32_t flags;
    struct lade_arp arp;
    uint64_t next_ms; /* call lade_acd_tick then; UINT64_MAX = no timer */
};

struct lade_acd_cfg {
    uint8_t mac[6];
    lade_random_fn random; /* required */
    void *random_ud;
    const char *name; /* log lines; borrowed; NULL = "acd" */
};

/* Caller-allocated; fields private. */
struct lade_acd {
    struct lade_acd_cfg cfg;
    enum lade_acd_state state;
    uint32_t addr;
    unsigned sent; /* probes or announcements sent in this state */
    uint64_t timer_ms;
    bool defended;
    uint64_t defend_ms;       /* when we last defended */
    uint32_t conflict_mac_lo; /* diagnostics: last conflicting host (low 4 bytes of its MAC) */
};

/* LADE_ERR_CONFIG without cfg->random. → STOPPED. */
lade_err lade_acd_init(struct lade_acd *a, const struct lade_acd_cfg *cfg) LADE_MUST_CHECK;
/* Starts probing addr (any state; restarts). LADE_ERR_INVAL if addr is not unicast. */
lade_err lade_acd_start(struct lade_acd *a, uint32_t addr, uint64_t now_ms,
                        struct lade_acd_actions *act) LADE_MUST_CHECK;
/* For an address that is configured already (e.g. a lease kept across a link flap): skip the
 * probes, send the first announcement now and the rest as after a probe, then defend
 * (RFC 5227 §2.3). No READY. LADE_ERR_INVAL if addr is not unicast. */
lade_err lade_acd_announce(struct lade_acd *a, uint32_t addr, uint64_t now_ms,
                           struct lade_acd_actions *act) LADE_MUST_CHECK;
/* → STOPPED (sends nothing). */
void lade_acd_stop(struct lade_acd *a);
void lade_acd_tick(struct lade_acd *a, uint64_t now_ms, struct lade_acd_actions *act);
/* An ARP packet seen on the link (any op, including our own looped back). */
void lade_acd_input(struct lade_acd *a, const struct lade_arp *m, uint64_t now_ms,
                    struct lade_acd_actions *act);
enum lade_acd_state lade_acd_state(const struct lade_acd *a);

/* ---------------------------------------------------------------- IPv4 link-local
 *
 *   STOPPED ─start→ CLAIMING (lade_acd on a candidate) ─READY→ BOUND (CONFIGURE)
 *   CLAIMING ─conflict→ next candidate: CLAIMING again, or WAITING RATE_LIMIT_INTERVAL once
 *   MAX_CONFLICTS conflicts were seen since start; BOUND ─lost after defending→ DROP, same.
 *   stop → DROP (when BOUND), STOPPED.
 *
 * Candidates: 169.254.1.0 – 169.254.254.255 (RFC 3927 §2.1). The first is the last address this
 * machine claimed, else cfg.last_addr (the caller persists lade_ipv4ll_claimed() across
 * restarts), else the first draw of a PRNG seeded from the MAC, so a device tends to get the same
 * address every time; further candidates are further draws.
 */

#define LADE_IPV4LL_FIRST                  LADE_IPV4(169, 254, 1, 0)
#define LADE_IPV4LL_LAST                   LADE_IPV4(169, 254, 254, 255)
#define LADE_IPV4LL_PREFIX_LEN             16u
#define LADE_IPV4LL_MAX_CONFLICTS          10u
#define LADE_IPV4LL_RATE_LIMIT_INTERVAL_MS 60000u

enum lade_ipv4ll_state {
    LADE_IPV4LL_STOPPED = 0,
    LADE_IPV4LL_WAITING, /* rate limited: next claim at the timer */
    LADE_IPV4LL_CLAIMING,
    LADE_IPV4LL_BOUND,
};
const char *lade_ipv4ll_state_name(enum lade_ipv4ll_state st);

/* True for 169.254.1.0 – 169.254.254.255. */
bool lade_ipv4ll_in_range(uint32_t addr);

#define LADE_IPV4LL_ACT_SEND      0x1u /* broadcast act->arp */
#define LADE_IPV4LL_ACT_CONFIGURE 0x2u /* add act->addr/16 (RFC 3927 §2.6: no gateway) */
#define LADE_IPV4LL_ACT_DROP      0x4u /* remove act->drop_addr/16 */

/* Caller order: DROP, CONFIGURE, SEND. */
struct lade_ipv4ll_actions {
    uint32_t flags;
    struct lade_arp arp;
    uint32_t addr;
    uint32_t drop_addr;
    uint64_t next_ms;
};

struct lade_ipv4ll_cfg {
    uint8_t mac[6];
    uint32_t last_addr;    /* remembered from an earlier run; 0 or out of range = none */
    lade_random_fn random; /* timing jitter; required */
    void *random_ud;
    const char *name; /* log lines; borrowed; NULL = "ipv4ll" */
};

struct lade_ipv4ll_diag {
    enum lade_ipv4ll_state state;
    uint32_t addr;      /* configured link-local address, 0 = none */
    uint32_t candidate; /* being claimed (CLAIMING/WAITING) */
    unsigned conflicts; /* since start (drives the rate limit) */
    uint32_t conflicts_total, claims;
};

/* Caller-allocated; fields private. */
struct lade_ipv4ll {
    struct lade_ipv4ll_cfg cfg;
    struct lade_acd acd;
    enum lade_ipv4ll_state state;
    uint64_t prng;
    uint32_t candidate, claimed;
    unsigned conflicts;
    uint64_t timer_ms;
    struct lade_ipv4ll_diag diag;
};

/* LADE_ERR_CONFIG without cfg->random. → STOPPED. */
lade_err lade_ipv4ll_init(struct lade_ipv4ll *ll,
                          const struct lade_ipv4ll_cfg *cfg) LADE_MUST_CHECK;
/* STOPPED → CLAIMING (conflict count reset). No-op in other states. */
void lade_ipv4ll_start(struct lade_ipv4ll *ll, uint64_t now_ms, struct lade_ipv4ll_actions *act);
/* → STOPPED; DROP when BOUND. */
void lade_ipv4ll_stop(struct lade_ipv4ll *ll, uint64_t now_ms, struct lade_ipv4ll_actions *act);
void lade_ipv4ll_tick(struct lade_ipv4ll *ll, uint64_t now_ms, struct lade_ipv4ll_actions *act);
void lade_ipv4ll_input(struct lade_ipv4ll *ll, const struct lade_arp *m, uint64_t now_ms,
                       struct lade_ipv4ll_actions *act);
enum lade_ipv4ll_state lade_ipv4ll_state(const struct lade_ipv4ll *ll);
/* Configured address (BOUND) or 0. */
uint32_t lade_ipv4ll_addr(const struct lade_ipv4ll *ll);
/* The last address claimed successfully (to persist), or 0. */
uint32_t lade_ipv4ll_claimed(const struct lade_ipv4ll *ll);
void lade_ipv4ll_diag(const struct lade_ipv4ll *ll, struct lade_ipv4ll_diag *out);

#endif
