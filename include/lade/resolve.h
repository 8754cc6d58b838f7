/* lade — static name resolution (src/port/linux/resolve.c).
 *
 * Resolution is a port of its own. This one never touches the network and never blocks on it
 * (no getaddrinfo): it accepts literal IPv4/IPv6 addresses (inet_pton) and looks names up in a
 * hosts file in /etc/hosts format. The DNS stub (SPEC R5) comes later and fills the same
 * address type.
 *
 * Hosts file format: one entry per line, "address name [alias...]", fields separated by
 * spaces/tabs, '#' starts a comment anywhere on a line. Names (and aliases) match without
 * regard to ASCII case and to one trailing dot. A name listed on several lines yields every
 * address, in file order, duplicates removed. Lines whose address does not parse are skipped
 * (logged at debug level), as glibc does.
 */
#ifndef LADE_RESOLVE_H
#define LADE_RESOLVE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "lade/err.h"

/* An IPv4 or IPv6 socket address (port in network order inside ss; resolvers leave it 0). */
struct lade_sockaddr {
    struct sockaddr_storage ss;
    socklen_t len; /* sizeof(struct sockaddr_in) or sizeof(struct sockaddr_in6) */
};

/* Longest name accepted (RFC 1035 §2.3.4: 253 characters without the trailing dot). */
#define LADE_RESOLVE_NAME_MAX 253
/* Largest hosts file read (bigger files give LADE_ERR_TOO_BIG). */
#define LADE_RESOLVE_HOSTS_MAX (1024u * 1024u)
/* Buffer size that fits any lade_sockaddr_format output ("[v6%scope]:65535"). */
#define LADE_SOCKADDR_STRLEN 72

/* Parses a literal address: dotted-quad IPv4, or IPv6 with or without brackets ("::1",
 * "[::1]"). Port 0. Errors: LADE_ERR_INVAL (not a literal). */
lade_err lade_sockaddr_parse(const char *text, struct lade_sockaddr *out) LADE_MUST_CHECK;
/* Sets the port (host order) on an IPv4/IPv6 address. */
void lade_sockaddr_set_port(struct lade_sockaddr *a, uint16_t port);
/* Port in host order (0 for other families). */
uint16_t lade_sockaddr_port(const struct lade_sockaddr *a);
/* "192.0.2.1:8883", "[2001:db8::1]:8883" (no ":port" when the port is 0). Never truncates:
 * LADE_ERR_NOSPACE if cap is too small (use LADE_SOCKADDR_STRLEN). */
lade_err lade_sockaddr_format(const struct lade_sockaddr *a, char *buf, size_t cap) LADE_MUST_CHECK;
/* 1 if both hold the same family, address and port. */
int lade_sockaddr_equal(const struct lade_sockaddr *a, const struct lade_sockaddr *b);

/* Resolves name into out[0..cap), setting *n to the number stored.
 *   - a literal address gives exactly that address (the hosts file is not read);
 *   - otherwise every address for name in hosts_file (NULL: no file, only literals).
 * Errors: LADE_ERR_INVAL (NULL/empty/too long name, cap 0), LADE_ERR_RESOLVE (no address for
 * name; a missing hosts file counts as empty), LADE_ERR_IO (file exists but cannot be read),
 * LADE_ERR_TOO_BIG (file over LADE_RESOLVE_HOSTS_MAX), LADE_ERR_NOMEM, LADE_ERR_NOSPACE (more
 * than cap addresses: the first cap in file order are stored and *n = cap). */
lade_err lade_resolve_static(const char *name, const char *hosts_file, struct lade_sockaddr *out,
                             size_t cap, size_t *n) LADE_MUST_CHECK;

/* The hosts-file lookup on a buffer already in memory (pure; what lade_resolve_static uses, and
 * what the fuzzer drives). text need not be NUL-terminated. Literal names are not special here.
 * Errors: as lade_resolve_static minus the file errors. */
lade_err lade_resolve_hosts_buf(const char *text, size_t len, const char *name,
                                struct lade_sockaddr *out, size_t cap, size_t *n) LADE_MUST_CHECK;

#endif
