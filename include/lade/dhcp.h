/* lade — DHCPv4 client (RFC 2131, 2132, 3396): a pure codec and a pure state machine.
 *
 * Nothing here does I/O, reads a clock or allocates (DESIGN "Pure core, thin shell"); the Linux
 * shell is src/port/linux/dhcp_linux.c (include/lade/netif.h). docs/dhcp.md has the diagrams.
 *
 * Addresses are uint32_t in HOST byte order: 192.0.2.1 is 0xC0000201 (LADE_IPV4(192, 0, 2, 1)).
 * Times are monotonic milliseconds given by the caller (now_ms); lease values from the server
 * are seconds (lease_s, t1_s, t2_s).
 *
 * Codec
 *   - Encoding is two-step: lade_dhcp_msg_size() gives the exact size, lade_dhcp_encode() writes
 *     it into the caller's buffer or fails with LADE_ERR_NOSPACE (never truncates). The message
 *     kind decides which fields and options are written, following the table of RFC 2131 §4.4.1
 *     (Table 5) and §4.3.2, so a caller cannot build an inconsistent REQUEST.
 *   - lade_dhcp_decode_reply() checks a server message (OFFER/ACK/NAK) completely before it
 *     reports anything: BOOTP header, magic cookie, xid and chaddr, every option length against
 *     its area, END in every area, option overload (52), RFC 3396 concatenation of repeated
 *     options, exact lengths of fixed-size options, address lists. See its comment.
 *
 * Client machine: lade_dhcp_* below; all entry points fill a struct lade_dhcp_actions.
 */
#ifndef LADE_DHCP_H
#define LADE_DHCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"

#define LADE_IPV4(a, b, c, d)                                                                      \
    (((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))
#define LADE_IPV4_BROADCAST 0xffffffffu

/* ---------------------------------------------------------------- codec */

#define LADE_DHCP_SERVER_PORT   67
#define LADE_DHCP_CLIENT_PORT   68
#define LADE_DHCP_MAGIC         0x63825363u
#define LADE_DHCP_HEADER_LEN    236u        /* BOOTP fixed header (RFC 2131 §2, Figure 1) */
#define LADE_DHCP_MIN_LEN       240u        /* header + magic cookie: the shortest DHCP message */
#define LADE_DHCP_BOOTP_MIN     300u        /* what we send is padded to this (RFC 1542 §2.1) */
#define LADE_DHCP_MAX_REPLY     4096u       /* longest reply accepted (LADE_ERR_TOO_BIG above) */
#define LADE_DHCP_MAX_MSG_MIN   576u        /* smallest legal option 57 value (RFC 2132 §9.10) */
#define LADE_DHCP_MAX_ADDRS     4u          /* routers / DNS / NTP servers kept from a reply */
#define LADE_DHCP_CLIENT_ID_MAX 64u         /* option 61 we send: 2..64 bytes */
#define LADE_DHCP_HOSTNAME_MAX  63u         /* option 12 we send: one DNS label, 1..63 bytes */
#define LADE_DHCP_MESSAGE_MAX   64u         /* option 56 text kept from a NAK (diagnostic; cut) */
#define LADE_DHCP_TX_MAX        512u        /* longest message the client machine can build */
#define LADE_DHCP_INFINITE      0xffffffffu /* lease_s "infinite" (RFC 2132 §9.2) */

/* Option 53 values (RFC 2132 §9.6). */
enum lade_dhcp_msg_type {
    LADE_DHCP_DISCOVER = 1,
    LADE_DHCP_OFFER = 2,
    LADE_DHCP_REQUEST = 3,
    LADE_DHCP_DECLINE = 4,
    LADE_DHCP_ACK = 5,
    LADE_DHCP_NAK = 6,
    LADE_DHCP_RELEASE = 7,
    LADE_DHCP_INFORM = 8,
};
/* "DISCOVER", "OFFER", ...; "?" for anything else. Static string. */
const char *lade_dhcp_type_name(int type);

/* What the client sends. The kind fixes ciaddr and options 50/54 (RFC 2131 §4.3.2, Table 5):
 *
 *   kind                ciaddr  opt 50 (requested)  opt 54 (server)  55/57/12  sent to
 *   DISCOVER            0       addr if != 0 (MAY)  -                yes       broadcast
 *   REQUEST_SELECTING   0       addr (MUST)         server_id (MUST) yes       broadcast
 *   REQUEST_INIT_REBOOT 0       addr (MUST)         -                yes       broadcast
 *   REQUEST_RENEWING    addr    -                   -                yes       server (unicast)
 *   REQUEST_REBINDING   addr    -                   -                yes       broadcast
 *   DECLINE             0       addr (MUST)         server_id (MUST) -         broadcast
 *   RELEASE             addr    -                   server_id (MUST) -         server (unicast)
 *   INFORM              addr    -                   -                yes       broadcast or server
 *
 * Options 53 and 61 (client id, if given) are in every kind; 56 (message) only in DECLINE and
 * RELEASE. The parameter request list (55) is always 1, 3, 6, 42, 51, 54, 58, 59. The broadcast
 * flag is never set in a kind with ciaddr (the server answers to ciaddr, RFC 2131 §4.1).
 * INFORM (RFC 2131 §3.4, §4.4.3): a client that has an address (configured by other means)
 * asks for the other parameters; the server's DHCPACK goes to ciaddr and takes no lease
 * (decode it with lade_dhcp_decode_inform_ack). */
enum lade_dhcp_kind {
    LADE_DHCP_KIND_DISCOVER = 0,
    LADE_DHCP_KIND_REQUEST_SELECTING,
    LADE_DHCP_KIND_REQUEST_INIT_REBOOT,
    LADE_DHCP_KIND_REQUEST_RENEWING,
    LADE_DHCP_KIND_REQUEST_REBINDING,
    LADE_DHCP_KIND_DECLINE,
    LADE_DHCP_KIND_RELEASE,
    LADE_DHCP_KIND_INFORM,
};

struct lade_dhcp_msg {
    enum lade_dhcp_kind kind;
    uint32_t xid;
    uint16_t secs;            /* seconds since this acquisition/renewal began */
    bool broadcast;           /* BOOTP broadcast flag: ask the server to broadcast its reply */
    uint8_t chaddr[6];        /* our Ethernet address */
    uint32_t addr;            /* the address in question; where it goes depends on kind (see above);
                                 must be a usable unicast address except for DISCOVER (0 = none) */
    uint32_t server_id;       /* REQUEST_SELECTING, DECLINE, RELEASE: non-zero */
    const uint8_t *client_id; /* option 61 (type byte + id), 2..LADE_DHCP_CLIENT_ID_MAX bytes;
                                 NULL = none */
    size_t client_id_len;
    const char *hostname; /* option 12, 1..LADE_DHCP_HOSTNAME_MAX printable ASCII; NULL = none */
    size_t hostname_len;
    uint16_t max_msg_size; /* option 57; 0 = none, else >= LADE_DHCP_MAX_MSG_MIN */
    const char *message;   /* option 56 for DECLINE/RELEASE (1..255 bytes); NULL = none */
    size_t message_len;
};

/* Exact size of the encoded message (padded to LADE_DHCP_BOOTP_MIN).
 * LADE_ERR_INVAL for an unknown kind, a field the kind requires that is missing or not a usable
 * address, or an option value out of its range. */
lade_err lade_dhcp_msg_size(const struct lade_dhcp_msg *m, size_t *size) LADE_MUST_CHECK;
/* Writes the message; *out_len = bytes written. LADE_ERR_NOSPACE when cap is too small
 * (nothing usable written), else as lade_dhcp_msg_size. */
lade_err lade_dhcp_encode(const struct lade_dhcp_msg *m, uint8_t *buf, size_t cap,
                          size_t *out_len) LADE_MUST_CHECK;

/* A decoded OFFER, ACK or NAK. Absent options leave has_* false / counts 0. */
struct lade_dhcp_reply {
    uint8_t type; /* LADE_DHCP_OFFER, _ACK or _NAK */
    uint32_t xid;
    uint32_t yiaddr; /* OFFER/ACK: a usable unicast address; NAK: whatever was sent */
    uint32_t siaddr;
    bool has_server_id;
    uint32_t server_id; /* option 54 */
    bool has_subnet;
    uint32_t subnet_mask; /* option 1: contiguous, /1../32 */
    bool has_lease;
    uint32_t lease_s; /* option 51; LADE_DHCP_INFINITE = infinite */
    bool has_t1, has_t2;
    uint32_t t1_s, t2_s; /* options 58, 59 (as sent; the machine checks them against lease_s) */
    /* Options 3, 6, 42: the first LADE_DHCP_MAX_ADDRS usable unicast addresses in the order
     * sent; entries 0.0.0.0, 127/8 or >= 224.0.0.0 are skipped. n_* = entries kept. */
    uint32_t routers[LADE_DHCP_MAX_ADDRS];
    uint32_t dns[LADE_DHCP_MAX_ADDRS];
    uint32_t ntp[LADE_DHCP_MAX_ADDRS];
    uint8_t n_routers, n_dns, n_ntp;
    uint8_t overload; /* option 52 value (0 = none): 1 file, 2 sname, 3 both held options */
    /* Option 56 (usually on a NAK): at most LADE_DHCP_MESSAGE_MAX - 1 bytes, non-printable
     * bytes replaced by '?', NUL-terminated. Diagnostic text only. */
    char message[LADE_DHCP_MESSAGE_MAX];
};

/* Decodes a server reply found in a UDP payload buf[0..len).
 *   chaddr: our Ethernet address; xid: the transaction we expect.
 * Results:
 *   - LADE_OK: *out is filled.
 *   - LADE_ERR_NOT_FOUND: a well-formed BOOTP reply header for another transaction or client
 *     (xid or chaddr differ): not for us, ignore quietly (other clients' broadcast replies).
 *   - LADE_ERR_TOO_BIG: len > LADE_DHCP_MAX_REPLY.
 *   - LADE_ERR_PROTO: anything malformed or not acceptable:
 *     - shorter than LADE_DHCP_MIN_LEN, op != 2 (BOOTREPLY), htype != 1, hlen != 6, bad cookie;
 *     - an option whose length byte is missing or runs past its area; an area without END
 *       (options field, and file/sname when overloaded);
 *     - option 52 not exactly 1 byte of value 1..3, repeated, or inside file/sname;
 *     - option 53 missing or not OFFER/ACK/NAK;
 *     - a fixed-size option (1, 51, 53, 54, 58, 59) whose total length is not its size;
 *       an address list (3, 6, 42) whose total length is 0 or not a multiple of 4;
 *     - subnet mask not contiguous or 0; server id not a usable unicast address;
 *     - OFFER/ACK with a yiaddr that is not a usable unicast address (0/8, 127/8, >= 224/4).
 * Repeated options are concatenated in the order options field, file, sname (RFC 3396 §5), then
 * checked as one value: a split option is accepted, a repeated whole value of a fixed-size option
 * is not (its concatenation has the wrong length). Unknown options are skipped (length-checked).
 * Bytes after END are not inspected. Nothing in *out is meaningful unless LADE_OK. */
lade_err lade_dhcp_decode_reply(const uint8_t *buf, size_t len, uint32_t xid,
                                const uint8_t chaddr[6],
                                struct lade_dhcp_reply *out) LADE_MUST_CHECK;

/* Decodes the server's answer to a DHCPINFORM (RFC 2131 §4.3.5): a DHCPACK that carries the
 * configuration parameters but no address — yiaddr is normally 0 (reported as sent, not
 * checked) and a lease time (51, 58, 59) is usually absent. Every other rule of
 * lade_dhcp_decode_reply applies (the same implementation), except that only an ACK is
 * accepted: an OFFER or a NAK for this xid and chaddr is LADE_ERR_PROTO. */
lade_err lade_dhcp_decode_inform_ack(const uint8_t *buf, size_t len, uint32_t xid,
                                     const uint8_t chaddr[6],
                                     struct lade_dhcp_reply *out) LADE_MUST_CHECK;

/* True for an address a host may use or talk to: not 0/8, not 127/8, not 224/4 or above. */
bool lade_ipv4_unicast(uint32_t addr);
/* Prefix length of a contiguous netmask (0..32), or -1 if not contiguous. */
int lade_ipv4_prefix_len(uint32_t mask);

/* ---------------------------------------------------------------- IPv4 + UDP framing
 * For AF_PACKET SOCK_DGRAM sockets, where a buffer starts at the IPv4 header: DHCP before the
 * interface has an address (src/port/linux/dhcp_linux.c). */

#define LADE_IPV4_UDP_HDR 28u /* IPv4 header without options + UDP header */

struct lade_ipv4_udp {
    uint32_t src, dst;
    uint16_t sport, dport;
    const uint8_t *payload; /* view into the input */
    size_t len;
};

/* Writes an IPv4 header (no options, TTL 64, TOS 0x10, id 0, checksum) + UDP header (with
 * checksum) + payload. LADE_ERR_NOSPACE if cap < 28 + len; LADE_ERR_TOO_BIG if the datagram
 * would exceed 65535 bytes. */
lade_err lade_ipv4_udp_encode(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
                              const uint8_t *payload, size_t len, uint8_t *buf, size_t cap,
                              size_t *out_len) LADE_MUST_CHECK;
/* Checks an IPv4 datagram carrying UDP: version 4, IHL >= 5, total length >= header and within
 * buf (bytes after it, e.g. Ethernet padding, are ignored), header checksum, not a fragment,
 * protocol 17, UDP length >= 8 and within the IP payload, and — when udp_sum is true — the UDP
 * checksum unless it is 0. LADE_ERR_PROTO otherwise.
 * udp_sum false is for packets the kernel marks TP_STATUS_CSUMNOTREADY (checksum offload, e.g.
 * from a veth peer or a local sender: the field holds only the pseudo-header sum). */
lade_err lade_ipv4_udp_decode(const uint8_t *buf, size_t len, bool udp_sum,
                              struct lade_ipv4_udp *out) LADE_MUST_CHECK;

/* ---------------------------------------------------------------- client machine
 *
 * States (docs/dhcp.md has the diagram; RFC 2131 §4.4, Figure 5):
 *   STOPPED     not started (or stopped): sends nothing, holds no address
 *   LINK_DOWN   started, carrier lost: sends nothing; a configured lease is kept until it
 *               expires (then DROP), and checked with INIT-REBOOT when the link comes back
 *   INIT        waiting a random 0–1 s before the first DISCOVER (≥ 10 s after a DECLINE,
 *               longer after repeated NAKs)
 *   SELECTING   DISCOVER sent; the first acceptable OFFER is taken. Retransmit after 4, 8, 16,
 *               32, 64, 64 ... s, each ±1 s; never gives up
 *   REQUESTING  REQUEST (SELECTING form) sent; retransmitted like DISCOVER; no ACK 60 s after the
 *               first REQUEST → INIT
 *   PROBING     ACK received; the caller checks the address with ARP (RFC 5227, ACD_START
 *               action; answer with lade_dhcp_probe_done). Conflict → DECLINE, INIT after 10 s.
 *               No answer within 20 s → INIT.
 *   BOUND       address configured; RENEWING at T1
 *   RENEWING    REQUEST unicast to the server; retry after max(½ of the time to T2, 60 s)
 *   REBINDING   from T2: REQUEST broadcast; retry after max(½ of the time to expiry, 60 s);
 *               expiry → DROP, INIT (and link-local at once)
 *   REBOOTING   INIT-REBOOT: REQUEST for a known address at start or link-up (no server id);
 *               again after 4 ± 1 s; no answer 10 s after entering → INIT (fresh start) or back
 *               to the held lease (link flap, RFC 2131 §3.2 step 4 allows it)
 *
 * Link-local (R4): the machine asks for it (LL_START) when the 3rd DISCOVER of an acquisition is
 * sent without a lease (two DISCOVERs unanswered, ~12 s after start), and at once when a lease
 * expires; it asks to drop it (LL_STOP) when a lease binds, on link down and on stop. DHCP keeps
 * running all the while.
 */

enum lade_dhcp_state {
    LADE_DHCP_STOPPED = 0,
    LADE_DHCP_LINK_DOWN,
    LADE_DHCP_INIT,
    LADE_DHCP_SELECTING,
    LADE_DHCP_REQUESTING,
    LADE_DHCP_PROBING,
    LADE_DHCP_BOUND,
    LADE_DHCP_RENEWING,
    LADE_DHCP_REBINDING,
    LADE_DHCP_REBOOTING,
};
const char *lade_dhcp_state_name(enum lade_dhcp_state st);

/* Timing constants (ms) — docs/dhcp.md gives the reasons. */
#define LADE_DHCP_START_DELAY_MS     1000u  /* INIT: random 0..this before the first DISCOVER */
#define LADE_DHCP_RETRANS_FIRST_MS   4000u  /* first DISCOVER/REQUEST retransmission */
#define LADE_DHCP_RETRANS_MAX_MS     64000u /* retransmission interval cap */
#define LADE_DHCP_RETRANS_JITTER_MS  1000u  /* each interval ± this */
#define LADE_DHCP_REQUEST_TIMEOUT_MS 60000u /* REQUESTING: no ACK → INIT */
#define LADE_DHCP_REBOOT_TIMEOUT_MS  10000u /* REBOOTING: no answer → give up */
#define LADE_DHCP_DECLINE_WAIT_MS    10000u /* after DECLINE, before DISCOVER (RFC 2131 §3.1.5) */
#define LADE_DHCP_PROBE_TIMEOUT_MS   20000u /* PROBING: caller never answered → INIT */
#define LADE_DHCP_RENEW_MIN_MS       60000u /* RENEWING/REBINDING retry floor (RFC 2131 §4.4.5) */
#define LADE_DHCP_MIN_LEASE_S        20u    /* shorter leases are taken as this long */
#define LADE_DHCP_NAK_DELAY_MAX_MS   64000u /* repeated NAKs: INIT delay doubles up to this */
#define LADE_DHCP_LL_AFTER_DISCOVERS 3u     /* default cfg.ll_after_discovers */

typedef uint32_t (*lade_random_fn)(void *ud);

struct lade_dhcp_cfg {
    uint8_t mac[6];
    /* Option 61. NULL: type 1 + mac (RFC 2132 §9.14). Copied; 2..LADE_DHCP_CLIENT_ID_MAX. */
    const uint8_t *client_id;
    size_t client_id_len;
    const char *hostname;  /* option 12; NULL = none; copied; 1..63 printable ASCII, no spaces */
    uint16_t max_msg_size; /* option 57; 0 = 1500 (what the Linux shell can receive) */
    bool broadcast_flag;   /* set the BOOTP broadcast flag (only for servers/relays that need it) */
    bool probe;            /* check an ACKed address with ARP before using it (RFC 5227) */
    /* The Nth DISCOVER of an acquisition without a lease starts link-local; 0 = never (then
     * only lease expiry starts it). Default: LADE_DHCP_LL_AFTER_DISCOVERS. */
    unsigned ll_after_discovers;
    bool no_link_local;    /* never ask for link-local */
    lade_random_fn random; /* xid and jitter; required (the shell passes lade_random_u32) */
    void *random_ud;
    const char *name; /* for log lines (interface name); borrowed; NULL = "dhcp" */
};
/* Fills *cfg with the defaults (probe on, link-local after the 3rd DISCOVER, max msg 1500). */
void lade_dhcp_cfg_default(struct lade_dhcp_cfg *cfg);

/* What a lease gives; the CONFIGURE action points at the machine's copy. */
struct lade_dhcp_lease {
    uint32_t addr;
    uint8_t prefix_len; /* from option 1; classful default when absent */
    uint32_t server_id;
    uint32_t routers[LADE_DHCP_MAX_ADDRS];
    uint32_t dns[LADE_DHCP_MAX_ADDRS];
    uint32_t ntp[LADE_DHCP_MAX_ADDRS];
    uint8_t n_routers, n_dns, n_ntp;
    uint32_t lease_s;    /* as granted (LADE_DHCP_INFINITE = infinite), after the minimum */
    uint32_t t1_s, t2_s; /* as used (checked, defaults 0.5 and 0.875 × lease) */
    uint64_t start_ms;   /* when the REQUEST that got it was first sent (RFC 2131 §4.4.1) */
    uint64_t t1_ms, t2_ms, expiry_ms; /* absolute; UINT64_MAX for an infinite lease */
};

/* Output of every entry point. The caller performs the flagged actions in this order:
 *   SEND, DROP, ACD_STOP, CONFIGURE, ACD_START or ACD_DEFEND, LL_STOP, LL_START
 * (SEND first: a RELEASE leaves from the address that DROP then removes; CONFIGURE before
 * LL_STOP: the link-local address goes only once the lease's address is there)
 * and calls lade_dhcp_tick at next_ms (UINT64_MAX: no timer). Pointers are valid until the
 * next call on the machine. */
#define LADE_DHCP_ACT_SEND      0x01u /* send pkt[0..pkt_len) from src:68 to dst:67 */
#define LADE_DHCP_ACT_CONFIGURE 0x02u /* configure lease->addr/prefix, routes, DNS (idempotent) */
#define LADE_DHCP_ACT_DROP      0x04u /* remove drop_addr/drop_prefix_len and its routes */
#define LADE_DHCP_ACT_ACD_START 0x08u /* start ARP probing of acd_addr (RFC 5227) */
#define LADE_DHCP_ACT_ACD_STOP  0x10u /* stop ARP probing/defending of the DHCP address */
#define LADE_DHCP_ACT_LL_START  0x20u /* start IPv4 link-local (include/lade/ipv4ll.h) */
#define LADE_DHCP_ACT_LL_STOP   0x40u /* stop link-local and drop its address */
#define LADE_DHCP_ACT_ACD_DEFEND                                                                   \
    0x80u /* announce acd_addr (configured already) and defend it                                  \
             (RFC 5227 §2.3: after the link came back) */

struct lade_dhcp_actions {
    uint32_t flags;
    /* SEND: dst is LADE_IPV4_BROADCAST (send on the link, e.g. a packet socket) or the server's
     * address (unicast from src through the leased address, e.g. a UDP socket on port 68).
     * src is 0.0.0.0 unless the message carries our leased address (RENEWING, REBINDING,
     * RELEASE). */
    const uint8_t *pkt;
    size_t pkt_len;
    uint32_t src, dst;
    uint8_t type; /* LADE_DHCP_DISCOVER, ... (for logs) */
    /* CONFIGURE */
    const struct lade_dhcp_lease *lease;
    /* DROP */
    uint32_t drop_addr;
    uint8_t drop_prefix_len;
    /* ACD_START, ACD_DEFEND */
    uint32_t acd_addr;
    uint64_t next_ms;
};

/* For R19 troubleshooting. */
enum lade_addr_source {
    LADE_ADDR_NONE = 0,
    LADE_ADDR_DHCP,
    LADE_ADDR_LINK_LOCAL,
};
const char *lade_addr_source_name(enum lade_addr_source s);

struct lade_dhcp_diag {
    enum lade_dhcp_state state;
    uint32_t addr; /* configured DHCP address, 0 = none */
    uint8_t prefix_len;
    uint32_t server_id;     /* server of the lease (or of the offer being requested) */
    uint32_t lease_s;       /* granted lease */
    uint64_t lease_left_ms; /* 0 = none; UINT64_MAX = infinite */
    bool ll_wanted;         /* the machine asked for link-local (LL_START without LL_STOP) */
    lade_err last_error;    /* LADE_OK if none yet */
    const char *last_event; /* static text: "NAK", "lease expired", "address conflict", ... */
    uint64_t last_error_ms;
    uint32_t discovers, offers, requests, acks, naks, declines, malformed, expiries;
};

/* Caller-allocated; fields private. */
struct lade_dhcp {
    struct lade_dhcp_cfg cfg;
    uint8_t client_id[LADE_DHCP_CLIENT_ID_MAX];
    size_t client_id_len;
    char hostname[LADE_DHCP_HOSTNAME_MAX + 1];
    size_t hostname_len;
    enum lade_dhcp_state state;
    uint32_t xid;
    uint64_t timer_ms;                 /* next event of the current state; UINT64_MAX = none */
    uint64_t phase_start_ms;           /* entry into the current state (timeouts) */
    uint64_t exch_start_ms;            /* first message of the exchange (secs field) */
    uint64_t req_first_ms;             /* first REQUEST of the exchange (lease start) */
    unsigned tries;                    /* messages sent in this state */
    unsigned discovers_run;            /* DISCOVERs since the last lease (link-local trigger) */
    unsigned naks_run;                 /* NAKs since the last lease (INIT delay) */
    uint32_t offer_addr, offer_server; /* REQUESTING/PROBING */
    uint32_t reboot_addr;              /* address to ask for in INIT-REBOOT / DISCOVER hint */
    bool reboot_held;                  /* REBOOTING with the lease still configured */
    bool have_lease;                   /* lease configured (CONFIGURE done, no DROP since) */
    struct lade_dhcp_lease lease;      /* current (have_lease) or pending (PROBING) lease */
    struct lade_dhcp_lease pending;
    bool ll_on, acd_on;
    uint8_t tx[LADE_DHCP_TX_MAX];
    struct lade_dhcp_diag diag;
};

/* Validates cfg (LADE_ERR_CONFIG: no random, client id or hostname out of range, max_msg_size
 * below 576) and sets STOPPED. cfg is copied (client id and hostname too; name is borrowed). */
lade_err lade_dhcp_init(struct lade_dhcp *c, const struct lade_dhcp_cfg *cfg) LADE_MUST_CHECK;

/* Starts with the link up. reboot_addr: the address of a stored, still unexpired lease (0 =
 * none): INIT-REBOOT asks for it at once; otherwise INIT. Every start is a fresh attempt (R4).
 * Valid in STOPPED and LINK_DOWN (this is also "link up"); LADE_ERR_STATE otherwise. */
lade_err lade_dhcp_start(struct lade_dhcp *c, uint32_t reboot_addr, uint64_t now_ms,
                         struct lade_dhcp_actions *act) LADE_MUST_CHECK;
/* Carrier lost: → LINK_DOWN; sending stops, ARP probing stops, link-local stops; a configured
 * lease stays (it may still be valid when the link returns) and is dropped at expiry.
 * No-op in STOPPED and LINK_DOWN. */
void lade_dhcp_link_down(struct lade_dhcp *c, uint64_t now_ms, struct lade_dhcp_actions *act);
/* Carrier back: from LINK_DOWN, INIT-REBOOT for a held lease (kept if nobody answers), else
 * INIT. No-op elsewhere (LADE_OK). */
lade_err lade_dhcp_link_up(struct lade_dhcp *c, uint64_t now_ms,
                           struct lade_dhcp_actions *act) LADE_MUST_CHECK;
/* Stops: DROP a configured address (after a RELEASE to the server when release is true),
 * ACD/LL stop; → STOPPED. */
void lade_dhcp_stop(struct lade_dhcp *c, bool release, uint64_t now_ms,
                    struct lade_dhcp_actions *act);

/* A UDP payload that arrived on port 68 (from a packet socket or the UDP socket). Replies that
 * do not fit the state are ignored. Returns the decoder's result for this packet (LADE_OK,
 * LADE_ERR_NOT_FOUND not for us, LADE_ERR_PROTO/TOO_BIG malformed — counted in diag.malformed)
 * or LADE_ERR_STATE when no reply is expected now; the machine is consistent whatever the
 * result, so the caller may just log it. */
lade_err lade_dhcp_input(struct lade_dhcp *c, const uint8_t *buf, size_t len, uint64_t now_ms,
                         struct lade_dhcp_actions *act);

/* Timer: call at act->next_ms (late is fine; early is a no-op). */
void lade_dhcp_tick(struct lade_dhcp *c, uint64_t now_ms, struct lade_dhcp_actions *act);

/* Result of the ARP probe asked for by ACD_START (PROBING): conflict → DECLINE, INIT after
 * 10 s; else → BOUND (CONFIGURE). LADE_ERR_STATE outside PROBING (a late answer; ignore it). */
lade_err lade_dhcp_probe_done(struct lade_dhcp *c, bool conflict, uint64_t now_ms,
                              struct lade_dhcp_actions *act) LADE_MUST_CHECK;
/* ACD lost the configured address to another host (RFC 5227 §2.4 after defending once):
 * DROP, DECLINE, INIT after 10 s. LADE_ERR_STATE when no lease is held. */
lade_err lade_dhcp_conflict(struct lade_dhcp *c, uint64_t now_ms,
                            struct lade_dhcp_actions *act) LADE_MUST_CHECK;

enum lade_dhcp_state lade_dhcp_state(const struct lade_dhcp *c);
/* Snapshot of the diagnostics with lease_left_ms computed at now_ms. */
void lade_dhcp_diag(const struct lade_dhcp *c, uint64_t now_ms, struct lade_dhcp_diag *out);
/* The configured lease, or NULL. */
const struct lade_dhcp_lease *lade_dhcp_lease(const struct lade_dhcp *c);

#endif
