/* lade — the DHCP probe of lade-check (SPEC R18 "DHCP pool with an address per charger, lease
 * time not too long"): asks the site's DHCP server(s) what a new charger would get, without
 * taking anything. Linux shell: src/port/linux/dhcpprobe.c; docs/dhcpprobe.md.
 *
 * What it sends, on one interface, through an AF_PACKET socket (never a UDP socket on port 68:
 * the laptop's own DHCP client holds it):
 *   - K DHCPDISCOVERs, each as a different made-up client: chaddr 0a:de:c0:RR:RR:II (locally
 *     administered unicast; RR:RR random per probe, II = the client's index 0..K-1), its own
 *     random xid, the BOOTP broadcast flag set (an OFFER to a MAC that is not ours would not
 *     reach us otherwise), hostname "lade-check", from 0.0.0.0:68 to 255.255.255.255:67;
 *   - when asked and the interface has a usable IPv4 address, one DHCPINFORM from that address
 *     (ciaddr, our real MAC as chaddr) to 255.255.255.255:67. The server answers it with a
 *     DHCPACK carrying its options even when the pool is full (dnsmasq and most servers send no
 *     OFFER at all then), so "no OFFER but an INFORM answer" means "pool exhausted" and "nothing
 *     at all" means "no DHCP server" (or none that answers INFORM);
 *   - one retransmission of everything still unanswered at half the timeout (same xid).
 * Nothing is ever REQUESTed: no lease is taken and the server's lease database is unchanged
 * (a server may hold an offered address back for a few seconds; docs/dhcpprobe.md).
 *
 * Every OFFER and INFORM ACK is collected, from every server that answers: two servers on one
 * LAN is a finding in itself. The probe ends — the done callback runs once, from the loop —
 * at the timeout, or settle_ms after every client and the INFORM got an answer (the settle time
 * gives a second server the chance to be seen).
 *
 * Needs CAP_NET_RAW (root) for the packet socket. Single-threaded: every call from the loop's
 * thread. The network namespace is the one of the calling thread at lade_dhcpprobe_start.
 */
#ifndef LADE_DHCPPROBE_H
#define LADE_DHCPPROBE_H

#include <stdbool.h>
#include <stdint.h>

#include "lade/dhcp.h"
#include "lade/err.h"
#include "lade/loop.h"

#define LADE_DHCPPROBE_MAX_CLIENTS 256u  /* K: made-up clients per probe (II is one byte) */
#define LADE_DHCPPROBE_MAX_SERVERS 8u    /* distinct servers recorded (more are only counted) */
#define LADE_DHCPPROBE_TIMEOUT_MS  4000u /* default cfg.timeout_ms */
#define LADE_DHCPPROBE_SETTLE_MS   500u  /* default cfg.settle_ms */
#define LADE_DHCPPROBE_IFNAME_MAX  16u   /* IF_NAMESIZE */

struct lade_dhcpprobe_cfg {
    const char *ifname; /* required; copied */
    unsigned clients;   /* K made-up clients, 0..LADE_DHCPPROBE_MAX_CLIENTS (0: INFORM only) */
    bool inform;        /* also send a DHCPINFORM (when the interface has an address) */
    /* ciaddr of the INFORM; 0 = the interface's primary IPv4 address (not when it is
     * link-local 169.254/16: no INFORM then). Else it must be an address of this interface: the
     * ACK comes back to it. */
    uint32_t inform_addr;
    uint32_t timeout_ms; /* the whole probe, >= 100; one retransmission at half of it */
    uint32_t settle_ms;  /* after everything answered, wait this long for other servers */
};
/* clients 1, inform true, inform_addr 0, timeout LADE_DHCPPROBE_TIMEOUT_MS, settle
 * LADE_DHCPPROBE_SETTLE_MS; ifname NULL (set it). */
void lade_dhcpprobe_cfg_default(struct lade_dhcpprobe_cfg *cfg);

/* One answer (an OFFER, or the ACK to the INFORM), as decoded (include/lade/dhcp.h). */
struct lade_dhcpprobe_answer {
    uint8_t type;       /* LADE_DHCP_OFFER or LADE_DHCP_ACK */
    uint32_t addr;      /* yiaddr: the offered address (INFORM ACK: usually 0) */
    bool has_server_id; /* option 54 (required of a server, RFC 2131 §4.3.1) */
    uint32_t server_id;
    uint32_t src;       /* IPv4 source address of the packet */
    uint8_t src_mac[6]; /* Ethernet source: the server's (or its relay's) MAC */
    bool has_lease;
    uint32_t lease_s; /* option 51; LADE_DHCP_INFINITE = infinite */
    bool has_t1, has_t2;
    uint32_t t1_s, t2_s; /* options 58, 59 */
    bool has_subnet;
    uint32_t subnet_mask; /* option 1 */
    uint32_t routers[LADE_DHCP_MAX_ADDRS];
    uint32_t dns[LADE_DHCP_MAX_ADDRS];
    uint32_t ntp[LADE_DHCP_MAX_ADDRS];
    uint8_t n_routers, n_dns, n_ntp; /* options 3, 6, 42 (0 = absent; usable addresses only) */
    uint32_t rtt_ms; /* from the first transmission of the question to this answer */
};

/* One made-up client. */
struct lade_dhcpprobe_client {
    uint8_t mac[6]; /* 0a:de:c0:RR:RR:II */
    uint32_t xid;
    unsigned sent;   /* DISCOVERs sent (1, or 2 with the retransmission; 0: sending failed) */
    unsigned offers; /* OFFERs received, from all servers */
    bool answered;   /* offers > 0 */
    struct lade_dhcpprobe_answer offer; /* the first OFFER (valid when answered) */
};

struct lade_dhcpprobe_inform {
    bool sent;       /* an INFORM went out (asked for, an address to send from, no send error) */
    uint32_t ciaddr; /* the address it was sent from (0: the interface had none) */
    uint32_t xid;
    unsigned acks;                    /* ACKs received, from all servers */
    bool answered;                    /* acks > 0 */
    struct lade_dhcpprobe_answer ack; /* the first ACK (valid when answered) */
};

/* One server that answered, keyed by its server id (option 54; the source address when the
 * option is missing). */
struct lade_dhcpprobe_server {
    uint32_t id;
    uint32_t src;
    uint8_t src_mac[6];
    unsigned offers; /* OFFERs it sent to our made-up clients */
    unsigned acks;   /* ACKs to our INFORM (0 or 1, 2 with a retransmission answered twice) */
    struct lade_dhcpprobe_answer offer; /* its first OFFER (valid when offers > 0) */
    struct lade_dhcpprobe_answer ack;   /* its first ACK to the INFORM (valid when acks > 0) */
};

struct lade_dhcpprobe_result {
    char ifname[LADE_DHCPPROBE_IFNAME_MAX];
    uint8_t if_mac[6];
    uint32_t if_addr; /* the interface's primary IPv4 address at start (0 = none) */
    bool if_carrier;  /* IFF_RUNNING at start: false means the cable/link is down */
    /* the made-up clients; array owned by the probe, valid until lade_dhcpprobe_free */
    unsigned n_clients;
    const struct lade_dhcpprobe_client *clients;
    struct lade_dhcpprobe_inform inform;
    struct lade_dhcpprobe_server servers[LADE_DHCPPROBE_MAX_SERVERS];
    unsigned n_servers;        /* distinct servers that answered: entries in servers[] */
    bool servers_more;         /* yet more servers answered (not recorded: the array is full) */
    unsigned clients_answered; /* made-up clients with at least one OFFER */
    unsigned distinct_addrs;   /* distinct addresses in all OFFERs (a lower bound of what the
                                  pool can still give; see docs/dhcpprobe.md) */
    bool complete;             /* every question answered before the timeout */
    uint32_t elapsed_ms;       /* start to done */
    unsigned others;           /* DHCP replies on the link for other clients (not counted) */
    unsigned malformed;        /* replies that did not decode (LADE_ERR_PROTO): a bad BOOTP
                                  header from anyone, or bad options in one to our xid */
    unsigned unexpected;       /* well-formed but not an answer: ACK/NAK to a DISCOVER, NAK or
                                  OFFER to the INFORM */
    lade_err send_error;       /* the first failed send (LADE_ERR_IO), LADE_OK if none */
    int send_errno;
};

struct lade_dhcpprobe;

/* Runs once, from the loop, when the probe ends. r is valid until lade_dhcpprobe_free; the
 * callback may free the probe. */
typedef void (*lade_dhcpprobe_done_cb)(void *ud, const struct lade_dhcpprobe_result *r);

/* Opens the packet socket on cfg->ifname, reads its MAC, address and flags, and schedules the
 * first sends (nothing is sent and done never runs inside this call).
 * Errors (*out NULL; *os_errno = errno of the failing call, 0 when not a system error; os_errno
 * may be NULL):
 *   LADE_ERR_INVAL      loop, cfg, ifname, done or out NULL; clients > MAX; timeout < 100 ms;
 *                       inform_addr not a usable unicast address
 *   LADE_ERR_NOT_FOUND  no interface of that name (in the caller's namespace)
 *   LADE_ERR_STATE      the interface is not up (IFF_UP), or has no Ethernet address
 *   LADE_ERR_IO         the packet socket could not be opened or set up; EPERM/EACCES in
 *                       *os_errno means it needs root (CAP_NET_RAW)
 *   LADE_ERR_NOMEM */
lade_err lade_dhcpprobe_start(struct lade_loop *loop, const struct lade_dhcpprobe_cfg *cfg,
                              lade_dhcpprobe_done_cb done, void *ud, struct lade_dhcpprobe **out,
                              int *os_errno) LADE_MUST_CHECK;

/* The result so far (final once done has run). */
const struct lade_dhcpprobe_result *lade_dhcpprobe_result(const struct lade_dhcpprobe *p);

/* Stops a running probe without calling done, closes the socket, cancels the timers, frees.
 * NULL is ignored. May be called from the done callback. */
void lade_dhcpprobe_free(struct lade_dhcpprobe *p);

#endif
