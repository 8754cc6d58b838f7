/* lade — the DNS stub resolver on the event loop (src/port/linux/dnsres.c), SPEC R5.
 *
 * Non-blocking, no getaddrinfo: names are asked of the DNS servers DHCP gave (set with
 * lade_dnsres_set_dhcp_servers) and, when there are none or they do not answer promptly, of the
 * fallback servers (a factory setting; production LADE_DNSRES_DEFAULT_FALLBACKS; tests give
 * their own). The policy (hedging, health, the NXDOMAIN rule, deadlines, cache) is the pure
 * core in include/lade/dns.h; docs/dns.md explains it.
 *
 * Every query is a fresh UDP socket bound to a random source port and connect()ed to the
 * server, so the kernel drops datagrams from any other address or port; the source is checked
 * again on receipt, and only a message that passes every decoder check (id from the CSPRNG,
 * the same question, 0x20 case pattern) is taken. A truncated answer is asked again over TCP
 * (non-blocking connect). One lookup asks for one address family: A (AF_INET) or AAAA
 * (AF_INET6).
 *
 * Order of sources for a name: a literal address (at once), the hosts text given in the
 * options (the charger's factory hosts file), the cache, DNS.
 *
 * Single-threaded, on the thread running the loop. Callbacks are never called from inside
 * lade_dnsres_resolve: even an immediate result (literal, hosts, cache) comes from the loop.
 */
#ifndef LADE_DNSRES_H
#define LADE_DNSRES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"
#include "lade/loop.h"
#include "lade/resolve.h"

/* Production fallbacks (factory setting, SPEC R5): Google, then Cloudflare. Never used by tests;
 * the resolver itself uses only the fallbacks it is given. */
#define LADE_DNSRES_DEFAULT_FALLBACKS "8.8.8.8,1.1.1.1"

struct lade_dnsres;
struct lade_dnsres_query;

struct lade_dnsres_opts {
    /* Fallback servers, tried after the DHCP ones (copied; port 0 means 53). */
    const struct lade_sockaddr *fallbacks;
    size_t n_fallbacks;
    /* Optional hosts-file text (/etc/hosts format, include/lade/resolve.h), copied; looked at
     * before DNS. NULL: none. */
    const char *hosts_text;
    size_t hosts_len;
    uint32_t deadline_ms;        /* per lookup; 0: LADE_DNS_DEADLINE_MS (8 s) */
    uint32_t attempt_timeout_ms; /* 0: LADE_DNS_ATTEMPT_MS (2 s) */
    uint32_t tcp_timeout_ms;     /* 0: LADE_DNS_TCP_MS (4 s) */
    bool no_0x20;                /* do not randomise the case of names */
    bool no_cache;               /* neither read nor fill the cache */
};

/* Where a result came from. */
enum lade_dnsres_source {
    LADE_DNSRES_LITERAL = 0,
    LADE_DNSRES_HOSTS,
    LADE_DNSRES_CACHE,
    LADE_DNSRES_DNS,
};
const char *lade_dnsres_source_name(enum lade_dnsres_source s);

/* Diagnostics of one resolution (SPEC R19: the DNS servers used and which answered). */
struct lade_dnsres_info {
    enum lade_dnsres_source source;
    int server;                       /* index (lade_dnsres_server_info) of the server whose
                                         answer was used; -1 when none */
    struct lade_sockaddr server_addr; /* that server (valid when server >= 0) */
    bool fallback;                    /* it is a fallback server */
    bool tcp;                         /* the answer came over TCP */
    int rcode;                        /* of that answer; -1 none */
    uint32_t rtt_ms;                  /* of the query answered */
    uint32_t elapsed_ms;              /* whole resolution */
    uint32_t ttl_s;                   /* of the answer (seconds left, from the cache) */
    unsigned queries;                 /* queries sent (UDP + TCP) */
    unsigned rejected;                /* messages refused (wrong source/id/question, malformed) */
};

/* Called exactly once per resolve that returned LADE_OK, unless cancelled first.
 *   err LADE_OK:            addrs[0..n) (n >= 1), port 0, the family asked for (or the
 *                           family of a literal / hosts entry)
 *   LADE_ERR_NOT_FOUND:     the name does not exist or has no address of that family
 *   LADE_ERR_TIMEOUT:       no usable answer before the deadline
 *   LADE_ERR_RESOLVE:       no servers, or they answered only with errors
 *   LADE_ERR_NOMEM / _IO:   local failure
 * addrs and info are valid only during the call. The query handle is dead once called. The
 * callback may resolve, cancel other queries and change servers; it must not free the
 * resolver. */
typedef void (*lade_dnsres_cb)(void *ud, lade_err err, const struct lade_sockaddr *addrs, size_t n,
                               const struct lade_dnsres_info *info);

/* Creates a resolver on loop (which must outlive it). opts may be NULL (no fallbacks, no hosts,
 * defaults). Errors: LADE_ERR_NOMEM, LADE_ERR_INVAL (a fallback that is not IPv4/IPv6). */
lade_err lade_dnsres_new(struct lade_loop *loop, const struct lade_dnsres_opts *opts,
                         struct lade_dnsres **out) LADE_MUST_CHECK;
/* Cancels every query (no callbacks), closes their sockets, frees. NULL is ignored. */
void lade_dnsres_free(struct lade_dnsres *r);

/* The servers DHCP gave (copied; port 0 means 53; 0..N, at most LADE_DNS_MAX_DHCP used). When
 * the list changes, the cache is emptied (another network may give other answers) and lookups
 * in flight start over with the new list, keeping their deadline. Servers still listed keep
 * their health. Errors: LADE_ERR_INVAL (an address that is not IPv4/IPv6). */
lade_err lade_dnsres_set_dhcp_servers(struct lade_dnsres *r, const struct lade_sockaddr *servers,
                                      size_t n) LADE_MUST_CHECK;
/* Replaces the fallback servers (same rules; at most LADE_DNS_MAX_FALLBACK used). */
lade_err lade_dnsres_set_fallbacks(struct lade_dnsres *r, const struct lade_sockaddr *servers,
                                   size_t n) LADE_MUST_CHECK;

/* Starts resolving name (a host name, or a literal IPv4/IPv6 address) for family AF_INET (A)
 * or AF_INET6 (AAAA). *out (may be NULL) receives a handle for lade_dnsres_cancel, valid until
 * the callback runs. Errors (no callback then): LADE_ERR_INVAL (NULL, not a host name, other
 * family), LADE_ERR_NOMEM. */
lade_err lade_dnsres_resolve(struct lade_dnsres *r, const char *name, int family, lade_dnsres_cb cb,
                             void *ud, struct lade_dnsres_query **out) LADE_MUST_CHECK;
/* Stops a query: closes its sockets; its callback is not called. NULL is ignored. */
void lade_dnsres_cancel(struct lade_dnsres_query *q);
/* Empties the cache. */
void lade_dnsres_flush(struct lade_dnsres *r);

/* Health of one server (diagnostics, SPEC R19). */
struct lade_dnsres_server_info {
    struct lade_sockaddr addr;
    bool fallback;
    bool down;        /* in back-off after failures */
    bool no_0x20;     /* folds case: asked without 0x20 */
    uint32_t srtt_ms; /* 0: no answer yet */
    uint32_t fails;   /* consecutive failures */
    uint32_t sent, answered, errors, timeouts;
    int last_rcode;          /* -1 none */
    uint64_t last_answer_ms; /* lade_mono_ms() of its last answer; 0 none */
};
/* Number of servers in use (DHCP ones first, then fallbacks). */
size_t lade_dnsres_server_count(const struct lade_dnsres *r);
/* Errors: LADE_ERR_NOT_FOUND (i out of range), LADE_ERR_INVAL. */
lade_err lade_dnsres_server_info(const struct lade_dnsres *r, size_t i,
                                 struct lade_dnsres_server_info *out) LADE_MUST_CHECK;

/* Parses a server list: addresses separated by commas and/or spaces, each "192.0.2.1",
 * "192.0.2.1:5353", "2001:db8::1" or "[2001:db8::1]:5353" (port 0 or none: 53). For factory
 * settings and tests. Errors: LADE_ERR_INVAL (a bad entry), LADE_ERR_NOSPACE (more than cap;
 * the first cap are stored, *n = cap). */
lade_err lade_dnsres_parse_servers(const char *text, struct lade_sockaddr *out, size_t cap,
                                   size_t *n) LADE_MUST_CHECK;

#endif
