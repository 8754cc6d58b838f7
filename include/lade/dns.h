/* lade — DNS stub resolver, pure part (src/proto/dns): the message codec, the resolution policy
 * (a state machine per lookup plus per-server health) and a TTL cache. No I/O, no clock, no
 * allocation: time is an argument, randomness (query ids, 0x20 bits) comes from the caller.
 * The non-blocking shell that owns sockets and timers is include/lade/dnsres.h. Policy,
 * constants and reasons: docs/dns.md.
 *
 * Codec (RFC 1035 §4, RFC 3596 for AAAA, RFC 7766 for TCP):
 *   - A query asks one question (QTYPE A or AAAA, QCLASS IN) with RD=1 and no EDNS0 OPT record:
 *     answers for the few names a charger needs fit 512 bytes, and a truncated one is asked
 *     again over TCP (docs/dns.md "Why no EDNS0").
 *   - The decoder accepts a message only when it is a response to that very query: QR=1,
 *     opcode 0, the same id, exactly one question equal to the one asked (name without regard
 *     to ASCII case, or byte for byte when the query used 0x20 case randomisation; type;
 *     class). Everything else is LADE_ERR_PROTO with the reason in answer->reject, so a
 *     spoofed or stray datagram can be counted and ignored.
 *   - RCODE and TC are data, not errors: NOERROR/NXDOMAIN/SERVFAIL/REFUSED... are reported in
 *     answer->rcode and the policy decides. Addresses are taken only from NOERROR answers,
 *     following a CNAME chain inside the message (at most LADE_DNS_CNAME_MAX links; a loop is
 *     a malformed answer). Unrelated records are ignored.
 */
#ifndef LADE_DNS_H
#define LADE_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"

/* ---------------------------------------------------------------- codec */

#define LADE_DNS_PORT          53
#define LADE_DNS_HEADER_LEN    12
#define LADE_DNS_NAME_TEXT_MAX 253 /* RFC 1035 §2.3.4, without the trailing dot */
#define LADE_DNS_NAME_WIRE_MAX 255 /* labels with their length bytes and the root byte */
#define LADE_DNS_LABEL_MAX     63
#define LADE_DNS_UDP_MAX       512   /* RFC 1035 §4.2.1: largest UDP message without EDNS0 */
#define LADE_DNS_TCP_MAX       65535 /* RFC 7766 §8: two-byte length prefix */
#define LADE_DNS_CNAME_MAX     8     /* CNAME links followed inside one answer */
#define LADE_DNS_ADDR_MAX      16    /* addresses kept from one answer (more are ignored) */
#define LADE_DNS_TTL_MAX_S     86400 /* TTLs are capped at one day */
#define LADE_DNS_CASE_BITS_LEN 32    /* random bytes for 0x20: one bit per name character */

#define LADE_DNS_TYPE_A     1
#define LADE_DNS_TYPE_CNAME 5
#define LADE_DNS_TYPE_SOA   6
#define LADE_DNS_TYPE_AAAA  28
#define LADE_DNS_CLASS_IN   1

/* RCODEs (RFC 1035 §4.1.1); any other value the server sent is passed on as is. */
enum lade_dns_rcode {
    LADE_DNS_NOERROR = 0,
    LADE_DNS_FORMERR = 1,
    LADE_DNS_SERVFAIL = 2,
    LADE_DNS_NXDOMAIN = 3,
    LADE_DNS_NOTIMP = 4,
    LADE_DNS_REFUSED = 5,
};
/* "NOERROR", "NXDOMAIN", ...; "RCODE?" for others. Static string. */
const char *lade_dns_rcode_name(unsigned rcode);

/* One question, as sent. Build it with lade_dns_query_init; keep it to check the answer. */
struct lade_dns_query {
    uint16_t id;
    uint16_t qtype;     /* LADE_DNS_TYPE_A or LADE_DNS_TYPE_AAAA */
    bool exact_case;    /* 0x20 was used: the answer's question must match byte for byte */
    uint16_t qname_len; /* bytes used in qname */
    uint8_t qname[LADE_DNS_NAME_WIRE_MAX]; /* wire form, uncompressed, as sent */
};

/* Checks a host name and writes its canonical form (ASCII lower case, no trailing dot,
 * NUL-terminated) to out (cap >= LADE_DNS_NAME_TEXT_MAX + 1 always suffices). Accepted: one or
 * more labels of 1..63 letters, digits, '-' or '_', separated by '.', one optional trailing
 * dot, at most 253 characters. Errors: LADE_ERR_INVAL (not such a name), LADE_ERR_NOSPACE. */
lade_err lade_dns_name_canonical(const char *name, char *out, size_t cap) LADE_MUST_CHECK;

/* Builds the question for name (checked as lade_dns_name_canonical does; the case given is
 * kept) with the caller's random id. case_bits: NULL for no 0x20, or LADE_DNS_CASE_BITS_LEN
 * random bytes; bit i (byte i/8, bit i%8) flips the case of the i-th character when it is a
 * letter, and the answer's question must then come back exactly so (draft-vixie-dnsext-dns0x20).
 * Errors: LADE_ERR_INVAL (bad name, qtype not A/AAAA, NULL). */
lade_err lade_dns_query_init(struct lade_dns_query *q, const char *name, uint16_t qtype,
                             uint16_t id, const uint8_t *case_bits) LADE_MUST_CHECK;
/* Exact encoded size; tcp adds the two-byte length prefix (RFC 1035 §4.2.2). */
size_t lade_dns_query_size(const struct lade_dns_query *q, bool tcp);
/* Writes the query (header with RD=1, one question; prefixed by its length when tcp).
 * Errors: LADE_ERR_NOSPACE (cap < lade_dns_query_size; nothing usable written), LADE_ERR_INVAL. */
lade_err lade_dns_query_encode(const struct lade_dns_query *q, bool tcp, uint8_t *buf, size_t cap,
                               size_t *out_len) LADE_MUST_CHECK;

/* An IPv4 (len 4) or IPv6 (len 16) address in network byte order. */
struct lade_dns_addr {
    uint8_t len;
    uint8_t b[16];
};

/* Why the decoder refused a message (all are LADE_ERR_PROTO). */
enum lade_dns_reject {
    LADE_DNS_REJ_NONE = 0,
    LADE_DNS_REJ_MALFORMED,    /* bad length, name, compression pointer, record bounds... */
    LADE_DNS_REJ_TOO_LONG,     /* longer than the max_len given (512 on UDP) */
    LADE_DNS_REJ_NOT_RESPONSE, /* QR = 0 */
    LADE_DNS_REJ_OPCODE,       /* opcode != QUERY */
    LADE_DNS_REJ_ID,           /* another id */
    LADE_DNS_REJ_QDCOUNT,      /* not exactly one question */
    LADE_DNS_REJ_QUESTION,     /* another name, type or class */
    LADE_DNS_REJ_CASE,         /* same name but the 0x20 case pattern was not kept */
    LADE_DNS_REJ_CHAIN,        /* CNAME chain longer than LADE_DNS_CNAME_MAX (or a loop) */
};
/* "malformed", "wrong id", ... Static string. */
const char *lade_dns_reject_name(enum lade_dns_reject r);

struct lade_dns_answer {
    uint8_t rcode;               /* enum lade_dns_rcode or any other value (0..15) */
    bool tc;                     /* truncated: nothing after the question was read; ask over TCP */
    bool aa, ra;                 /* authoritative answer, recursion available (diagnostics only) */
    enum lade_dns_reject reject; /* set when the decoder returns LADE_ERR_PROTO */
    size_t n_addr;               /* addresses stored (NOERROR only), distinct, at most the cap */
    size_t n_addr_seen;  /* addresses found for the name, before the cap and de-duplication */
    unsigned cname_hops; /* CNAME links followed to reach them */
    /* Smallest TTL of the records used (CNAMEs and addresses), at most LADE_DNS_TTL_MAX_S; a
     * TTL with the top bit set counts as 0 (RFC 2181 §8). 0 when no address. */
    uint32_t ttl_s;
    /* NXDOMAIN, or NOERROR without an address (NODATA): min(SOA TTL, SOA MINIMUM) of the SOA in
     * the authority section (RFC 2308 §5), capped like ttl_s; has_neg_ttl false without SOA. */
    bool has_neg_ttl;
    uint32_t neg_ttl_s;
};

/* Decodes msg[0..len) as the response to q. Addresses of q's type for q's name (directly or
 * through a CNAME chain in the answer section) go to addrs[0..cap) (cap may be 0). max_len:
 * the largest message accepted (LADE_DNS_UDP_MAX over UDP, LADE_DNS_TCP_MAX over TCP).
 * Compression pointers must point backwards into the message (never into the header), so
 * every name is read in bounded time; names longer than 255 bytes are malformed. A message
 * with TC=1 is accepted after the header and question checks alone (a truncated message may
 * end anywhere); otherwise every record of every section must lie inside the message and the
 * message must end with the last one.
 *   LADE_OK         *a filled (rcode, tc, addresses, TTLs)
 *   LADE_ERR_PROTO  not an acceptable response: a->reject says why
 *   LADE_ERR_INVAL  NULL arguments */
lade_err lade_dns_decode_response(const struct lade_dns_query *q, const uint8_t *msg, size_t len,
                                  size_t max_len, struct lade_dns_answer *a,
                                  struct lade_dns_addr *addrs, size_t cap) LADE_MUST_CHECK;

/* TCP framing: finds one length-prefixed message at the start of buf[0..len).
 *   LADE_OK         *msg and *msg_len: the message (a view into buf); 2 + *msg_len bytes used
 *   LADE_ERR_AGAIN  not complete yet
 *   LADE_ERR_PROTO  the prefix says fewer than LADE_DNS_HEADER_LEN bytes */
lade_err lade_dns_tcp_frame(const uint8_t *buf, size_t len, const uint8_t **msg,
                            size_t *msg_len) LADE_MUST_CHECK;

/* ---------------------------------------------------------------- servers and health */

#define LADE_DNS_MAX_DHCP       8 /* DHCP servers kept (more are ignored) */
#define LADE_DNS_MAX_FALLBACK   4 /* fallback (factory) servers kept */
#define LADE_DNS_MAX_SERVERS    (LADE_DNS_MAX_DHCP + LADE_DNS_MAX_FALLBACK)
#define LADE_DNS_HEDGE_MS       500 /* hedge delay while a server has no RTT sample */
#define LADE_DNS_HEDGE_MIN_MS   250 /* hedge = 3 x SRTT, bounded to [min, max] */
#define LADE_DNS_HEDGE_MAX_MS   2000
#define LADE_DNS_BACKOFF_MS     1000 /* after a failure: 1 s, 2 s, 4 s ... */
#define LADE_DNS_BACKOFF_MAX_MS 60000

/* A server's address: IPv4 (family 4, ip[0..4)) or IPv6 (family 6), port in host order. */
struct lade_dns_endpoint {
    uint8_t family; /* 4 or 6 */
    uint8_t ip[16];
    uint16_t port;
};

/* Health of one server, shared by every lookup. */
struct lade_dns_server {
    struct lade_dns_endpoint ep;
    bool fallback;          /* a factory (public) server; false: given by DHCP */
    bool no_0x20;           /* it folds the question's case: ask it without 0x20 */
    uint32_t srtt_ms;       /* smoothed RTT (RFC 6298 gains 1/8); 0 = no sample yet */
    uint32_t fails;         /* consecutive failures (timeouts, errors, SERVFAIL/REFUSED) */
    uint64_t down_until_ms; /* in back-off until then (ranked last in its group) */
    /* counters for diagnostics (SPEC R19) */
    uint32_t sent, answered, errors, timeouts;
    int last_rcode;          /* -1 none yet */
    uint64_t last_answer_ms; /* time of the last answer of any RCODE; 0 none */
};

struct lade_dns_servers {
    struct lade_dns_server s[LADE_DNS_MAX_SERVERS];
    size_t n;            /* DHCP servers first, then fallbacks */
    uint32_t generation; /* incremented whenever the list changes */
};

/* Empties the table. */
void lade_dns_servers_init(struct lade_dns_servers *t);
/* Replaces the list with dhcp[0..n_dhcp) (at most LADE_DNS_MAX_DHCP used) then
 * fallbacks[0..n_fb) (at most LADE_DNS_MAX_FALLBACK), dropping duplicates (a fallback that is
 * also a DHCP server stays a DHCP server). A server that was in the old list with the same
 * address, port and role keeps its health. Returns true when the list (addresses, order or
 * roles) changed; then generation is incremented. Endpoints with a family other than 4/6 or
 * port 0 are skipped. */
bool lade_dns_servers_set(struct lade_dns_servers *t, const struct lade_dns_endpoint *dhcp,
                          size_t n_dhcp, const struct lade_dns_endpoint *fb, size_t n_fb);
/* True when server i is in back-off at now. */
bool lade_dns_server_down(const struct lade_dns_server *s, uint64_t now_ms);
/* How long to wait for server s before also asking the next one: LADE_DNS_HEDGE_MS without an
 * RTT sample, else 3 x SRTT bounded to [LADE_DNS_HEDGE_MIN_MS, LADE_DNS_HEDGE_MAX_MS]. */
uint32_t lade_dns_server_hedge_ms(const struct lade_dns_server *s);

/* ---------------------------------------------------------------- one lookup */

#define LADE_DNS_DEADLINE_MS  8000 /* whole lookup */
#define LADE_DNS_ATTEMPT_MS   2000 /* an unanswered UDP query counts as a failure after this */
#define LADE_DNS_TCP_MS       4000 /* a TCP query (connect, send, answer) */
#define LADE_DNS_MAX_ATTEMPTS 6    /* queries open at once per lookup (sockets in the shell) */

struct lade_dns_lookup_cfg {
    uint16_t qtype;              /* LADE_DNS_TYPE_A or LADE_DNS_TYPE_AAAA */
    uint32_t deadline_ms;        /* 0: LADE_DNS_DEADLINE_MS */
    uint32_t attempt_timeout_ms; /* 0: LADE_DNS_ATTEMPT_MS */
    uint32_t tcp_timeout_ms;     /* 0: LADE_DNS_TCP_MS */
    bool use_0x20;               /* randomise the name's case (servers that fold it are not) */
};

/* The outcome of a lookup. */
struct lade_dns_result {
    /* LADE_OK: addresses; LADE_ERR_NOT_FOUND: the name (or its type) does not exist (NXDOMAIN or
     * NODATA, from a DHCP server, or from a fallback once every DHCP server failed);
     * LADE_ERR_TIMEOUT: the deadline passed without a usable answer and without an error
     * answer; LADE_ERR_RESOLVE: no servers, or servers answered only with errors (SERVFAIL,
     * REFUSED, port unreachable, ...). */
    lade_err err;
    int server;      /* index into the server table of the one whose answer was used; -1 */
    bool fallback;   /* that server is a fallback */
    bool tcp;        /* the answer came over TCP */
    int rcode;       /* of the answer used; -1 none */
    uint32_t rtt_ms; /* of the query whose answer was used */
    uint32_t ttl_s;  /* positive: the answer's TTL; negative: its SOA-derived TTL (0 none) */
    bool has_ttl;    /* false for a negative answer without SOA (not cached) */
    uint32_t elapsed_ms;
    unsigned queries; /* queries sent (UDP and TCP) */
    size_t n_addr;
    struct lade_dns_addr addr[LADE_DNS_ADDR_MAX];
};

enum lade_dns_lookup_state {
    LADE_DNS_LK_IDLE = 0,
    LADE_DNS_LK_ASKING,  /* queries out, no acceptable answer yet */
    LADE_DNS_LK_HOLDING, /* a fallback said "no such name"; waiting for the DHCP servers */
    LADE_DNS_LK_DONE,
};
const char *lade_dns_lookup_state_name(enum lade_dns_lookup_state st);

/* What the shell must do next (lade_dns_lookup_next_action). */
enum lade_dns_action_kind {
    LADE_DNS_ACT_CLOSE = 1, /* close attempt's socket (before any SEND on the same slot) */
    LADE_DNS_ACT_SEND,      /* open a fresh socket to server over UDP/TCP, send a new query */
    LADE_DNS_ACT_DONE,      /* the result is final: report it (given exactly once) */
};
struct lade_dns_action {
    enum lade_dns_action_kind kind;
    unsigned attempt; /* slot 0..LADE_DNS_MAX_ATTEMPTS-1 (CLOSE, SEND) */
    unsigned server;  /* index into the server table (SEND) */
    bool tcp;         /* SEND over TCP */
    bool use_0x20;    /* SEND with 0x20 case randomisation */
};

/* Private to src/proto/dns/lookup.c; embedded so the caller owns the memory. */
struct lade_dns_attempt {
    uint8_t state; /* free, open, expired (unanswered in time, still listening) */
    uint8_t server;
    bool tcp, use_0x20;
    bool want_close, want_send;
    uint64_t sent_ms, expires_ms;
};

struct lade_dns_lookup {
    enum lade_dns_lookup_state state;
    struct lade_dns_servers *srv;
    struct lade_dns_lookup_cfg cfg;
    uint64_t start_ms, deadline_ms, next_send_ms;
    uint8_t order[LADE_DNS_MAX_SERVERS]; /* servers in the order asked */
    size_t n_order, pos;
    unsigned round;
    uint8_t flags[LADE_DNS_MAX_SERVERS]; /* per server, this lookup: asked / failed / error */
    struct lade_dns_attempt at[LADE_DNS_MAX_ATTEMPTS];
    bool saw_error;
    bool reported;
    struct lade_dns_result res; /* the held negative answer while HOLDING, the result when DONE */
};

/* Starts a lookup against the servers in srv (which must outlive it) at now (cfg NULL: an A
 * lookup with the default times, no 0x20). Servers are
 * ranked at this moment: DHCP servers before fallbacks, within each group servers not in
 * back-off first, then the list order. With no servers the lookup is DONE at once
 * (LADE_ERR_RESOLVE). Then drive it:
 *   loop: lade_dns_lookup_next_action(l, now, &act) until it returns false;
 *   arm a timer for lade_dns_lookup_next_deadline(l); when it fires, or after an event below,
 *   run the action loop again. */
void lade_dns_lookup_start(struct lade_dns_lookup *l, struct lade_dns_servers *srv,
                           const struct lade_dns_lookup_cfg *cfg, uint64_t now_ms);
/* The server list changed (srv->generation moved): the caller has closed every open attempt;
 * the lookup forgets them, ranks the new list and starts asking again, keeping its deadline. */
void lade_dns_lookup_restart(struct lade_dns_lookup *l, uint64_t now_ms);
/* Next thing to do at now, or false when nothing is due (then wait for an event or for
 * next_deadline). Time-driven steps (hedge, retransmission, attempt expiry, the deadline) happen
 * inside this call. SEND marks the query as sent at now; if the shell cannot send it, it calls
 * lade_dns_lookup_on_error for that attempt. After DONE, nothing more is returned. */
bool lade_dns_lookup_next_action(struct lade_dns_lookup *l, uint64_t now_ms,
                                 struct lade_dns_action *act);
/* When next_action must be called again at the latest; UINT64_MAX when DONE. */
uint64_t lade_dns_lookup_next_deadline(const struct lade_dns_lookup *l);
/* An answer that passed every lade_dns_decode_response check arrived on attempt (its addresses
 * in addrs[0..a->n_addr)). Ignored for a slot that is not waiting. */
void lade_dns_lookup_on_answer(struct lade_dns_lookup *l, unsigned attempt,
                               const struct lade_dns_answer *a, const struct lade_dns_addr *addrs,
                               uint64_t now_ms);
/* The attempt's answer matched except for the 0x20 case pattern: the server folds case. It is
 * asked again at once without 0x20 (and every later query to it too). */
void lade_dns_lookup_on_case_mismatch(struct lade_dns_lookup *l, unsigned attempt, uint64_t now_ms);
/* The attempt failed locally or at the transport (send failed, port unreachable, TCP refused
 * or closed early): a failure of its server; the next server is asked at once. */
void lade_dns_lookup_on_error(struct lade_dns_lookup *l, unsigned attempt, lade_err err,
                              uint64_t now_ms);
static inline bool lade_dns_lookup_done(const struct lade_dns_lookup *l)
{
    return l->state == LADE_DNS_LK_DONE;
}
/* The result (meaningful once DONE). */
const struct lade_dns_result *lade_dns_lookup_result(const struct lade_dns_lookup *l);

/* ---------------------------------------------------------------- cache */

#define LADE_DNS_CACHE_SLOTS   16
#define LADE_DNS_NEG_TTL_MAX_S 30 /* negative answers are cached at most this long */

struct lade_dns_cache_entry {
    bool used, negative;
    uint16_t qtype;
    uint64_t stored_ms, expires_ms;
    char name[LADE_DNS_NAME_TEXT_MAX + 1]; /* canonical form */
    size_t n_addr;
    struct lade_dns_addr addr[LADE_DNS_ADDR_MAX];
};
struct lade_dns_cache {
    struct lade_dns_cache_entry e[LADE_DNS_CACHE_SLOTS];
};

void lade_dns_cache_clear(struct lade_dns_cache *c);
/* Stores the result of a lookup for (name, qtype): LADE_OK with addresses for ttl_s seconds,
 * LADE_ERR_NOT_FOUND with a known TTL for min(ttl_s, LADE_DNS_NEG_TTL_MAX_S); anything else and
 * TTL 0 are not stored (and drop an older entry for the name). When full, the entry expiring
 * first is replaced. name need not be canonical. */
void lade_dns_cache_put(struct lade_dns_cache *c, const char *name, uint16_t qtype,
                        const struct lade_dns_result *r, uint64_t now_ms);
/* A live entry for (name, qtype) at now: fills out (err LADE_OK or LADE_ERR_NOT_FOUND,
 * addresses, ttl_s = seconds left rounded up, server -1) and returns true. */
bool lade_dns_cache_get(struct lade_dns_cache *c, const char *name, uint16_t qtype, uint64_t now_ms,
                        struct lade_dns_result *out);

#endif
