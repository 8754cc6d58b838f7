/* lade — TLS client over TCP on OpenSSL 3 (src/port/linux/tls.c). SPEC R2, R3, R7, R10.
 *
 * Policy (see docs/transport.md): TLS 1.2 minimum; the server chain is verified against the
 * configured CA bundle only (never the system store); the host name is verified against the
 * certificate (SAN) and sent as SNI. The charger only connects out: nothing here binds or
 * listens.
 *
 * A connection goes IDLE -> CONNECTING (TCP, one address after the other) -> HANDSHAKING ->
 * ESTABLISHED, or ends FAILED. It is driven either
 *   (a) by hand: call lade_tls_conn_step whenever lade_tls_conn_fd() is ready for the events
 *       step asked for, or when its deadline passes; or
 *   (b) by a lade_loop: lade_tls_conn_attach watches the fd and arms the timeouts itself and
 *       reports through a callback.
 * Once ESTABLISHED, lade_tls_conn_transport gives the non-blocking byte stream of
 * include/lade/transport.h.
 *
 * Errors: LADE_ERR_CERT (chain or host name not trusted; the X509 reason is logged),
 * LADE_ERR_TLS (protocol version, handshake or record failure), LADE_ERR_IO (TCP connect
 * refused/unreachable on every address, socket errors), LADE_ERR_TIMEOUT (connect or handshake
 * deadline). TCP failures move on to the next address; TLS and certificate failures do not
 * (another address of the same name is not more trustworthy).
 *
 * Byte accounting: every byte the socket carries (TCP payload: TLS handshake, record headers,
 * MACs/tags, alerts, session tickets) is counted; IP/TCP headers are not.
 */
#ifndef LADE_TLS_H
#define LADE_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"
#include "lade/loop.h"
#include "lade/resolve.h"
#include "lade/transport.h"

struct lade_tls_ctx;
struct lade_tls_conn;

/* Creates the shared client context: trusts only the PEM certificates in ca_file.
 * Errors: LADE_ERR_INVAL (NULL), LADE_ERR_CONFIG (ca_file unreadable or holds no certificate),
 * LADE_ERR_NOMEM, LADE_ERR_TLS. */
lade_err lade_tls_ctx_new(struct lade_tls_ctx **out, const char *ca_file) LADE_MUST_CHECK;
/* Frees the context. Every connection made from it must be freed first. NULL is ignored. */
void lade_tls_ctx_free(struct lade_tls_ctx *ctx);

#define LADE_TLS_MAX_ADDRS 16

/* A TLS session remembered between connections to the same hub, so that a reconnect (a token
 * renewal, a short outage) resumes it (RFC 8446 §2.2) instead of a full handshake: the server
 * sends no certificate chain again, which saves about half of the handshake's bytes on metered
 * links (SPEC R12). Opaque; held in a caller-owned slot (see lade_tls_conn_opts.session) and
 * released with lade_tls_session_free (NULL is ignored). Only sessions of handshakes that
 * verified the chain and the host name are ever stored. */
struct lade_tls_session;
void lade_tls_session_free(struct lade_tls_session *s);

struct lade_tls_conn_opts {
    /* DNS name (or IP literal) the certificate must match; sent as SNI unless a literal.
     * Copied. Required. */
    const char *host;
    /* Addresses to try in order (copied; at most LADE_TLS_MAX_ADDRS); their ports are
     * ignored and port is used. */
    const struct lade_sockaddr *addrs;
    size_t n_addrs;
    uint16_t port;
    uint32_t connect_timeout_ms;   /* per TCP attempt; 0 = 10000 */
    uint32_t handshake_timeout_ms; /* TLS handshake after TCP is up; 0 = 15000 */
    /* Optional slot (must outlive the connection): a session in it is offered for
     * resumption; each new session the server issues replaces it (the old one is freed); a
     * failed handshake empties it. NULL: never resume. */
    struct lade_tls_session **session;
    /* Optional: the interface the TCP connection must use (SO_BINDTODEVICE; the bearer
     * manager's choice, docs/bearer.md). NULL or "": the routing table decides. Copied. */
    const char *bind_ifname;
    /* Optional: the local address the TCP connection is bound to (bind() before connect;
     * port ignored: the kernel picks one). Used by lade-sim to give every simulated charger
     * its own loopback address (127.x.y.z), so that a network partition of some chargers can
     * be made by dropping their addresses (docs/lade-sim.md). NULL: the routing table
     * decides. An address of another family than the hub's is skipped for that address.
     * Copied. */
    const struct lade_sockaddr *source_addr;
    /* Optional: the time (Unix seconds) certificates are checked against, for a device whose
     * operating-system clock is not trusted but which has trusted time of its own (R6,
     * docs/time.md). 0: the system clock. */
    int64_t verify_time_s;
};

enum lade_tls_state {
    LADE_TLS_IDLE = 0,
    LADE_TLS_CONNECTING,
    LADE_TLS_HANDSHAKING,
    LADE_TLS_ESTABLISHED,
    LADE_TLS_FAILED,
    LADE_TLS_CLOSED,
};

struct lade_tls_stats {
    uint64_t bytes_in;            /* raw TCP payload received, whole life */
    uint64_t bytes_out;           /* raw TCP payload sent, whole life */
    uint64_t handshake_bytes_in;  /* received until the handshake completed */
    uint64_t handshake_bytes_out; /* sent until the handshake completed */
    uint64_t connect_ms;          /* start -> TCP connected (all attempts) */
    uint64_t handshake_ms;        /* TCP connected -> handshake done */
    uint32_t attempts;            /* TCP connects started */
    int addr_index;               /* address that connected; -1 before */
    const char *version;          /* "TLSv1.3", ... (static); "" before the handshake */
    const char *cipher;           /* negotiated cipher suite (static); "" before */
    int resumed;                  /* 1 if the handshake resumed a stored session */
};

/* Creates an IDLE connection (nothing happens on the network yet).
 * Errors: LADE_ERR_INVAL (no host, no or too many addresses, port 0), LADE_ERR_NOMEM. */
lade_err lade_tls_conn_new(struct lade_tls_conn **out, struct lade_tls_ctx *ctx,
                           const struct lade_tls_conn_opts *opts) LADE_MUST_CHECK;
/* Sends close_notify if established (best effort, non-blocking), closes the socket, detaches
 * from a loop and frees. NULL is ignored. Allowed from the attach callback. */
void lade_tls_conn_free(struct lade_tls_conn *c);

/* Hook called right before the connection closes its socket (a failed attempt, failure, free),
 * so a caller driving it by hand can unwatch the fd first. Optional. */
void lade_tls_conn_on_fd_close(struct lade_tls_conn *c, void (*cb)(void *ud, int fd), void *ud);

/* (a) Manual driving. Starts or advances connect + handshake; never blocks.
 *   LADE_OK          established (also when called again afterwards)
 *   LADE_ERR_AGAIN   in progress: wait until lade_tls_conn_fd() (which changes when the next
 *                    address is tried) is ready for *want (LADE_IO_READ/LADE_IO_WRITE), or
 *                    until *deadline_ms (lade_mono_ms time), then call again
 *   other            failed (state FAILED; the same error is returned by later calls)
 * want and deadline_ms may be NULL. */
lade_err lade_tls_conn_step(struct lade_tls_conn *c, uint32_t *want,
                            uint64_t *deadline_ms) LADE_MUST_CHECK;

/* (b) Loop driving. cb(c, LADE_OK, 0, ud) once established, or cb(c, err, 0, ud) once on
 * failure. Afterwards, while established, cb(c, LADE_OK, events, ud) with events the
 * transport can make progress on (LADE_IO_READ: recv may return data; LADE_IO_WRITE: send
 * may accept data), for the interest set with lade_tls_conn_set_interest (default READ).
 * Read until LADE_ERR_AGAIN: TLS may hold decrypted bytes the fd does not signal. The mapping
 * of TLS's "read needs the socket writable" (and the reverse) to fd events is done here.
 * The callback may free c. Errors: LADE_ERR_STATE (already attached or not IDLE),
 * LADE_ERR_INVAL, and the errors of lade_loop_watch / lade_timer_arm. */
typedef void (*lade_tls_event_cb)(struct lade_tls_conn *c, lade_err status, uint32_t events,
                                  void *ud);
lade_err lade_tls_conn_attach(struct lade_tls_conn *c, struct lade_loop *loop, lade_tls_event_cb cb,
                              void *ud) LADE_MUST_CHECK;
/* Which transport events the attached callback wants (LADE_IO_READ|LADE_IO_WRITE). */
lade_err lade_tls_conn_set_interest(struct lade_tls_conn *c, uint32_t interest) LADE_MUST_CHECK;

/* The transport (valid while c lives; send/recv give LADE_ERR_STATE before ESTABLISHED).
 * send after LADE_ERR_AGAIN: pass the same bytes again (OpenSSL has already framed them).
 * recv gives LADE_ERR_CLOSED on close_notify and also on a TCP FIN without it (MQTT frames
 * its own packets, and brokers commonly skip close_notify). */
struct lade_transport lade_tls_conn_transport(struct lade_tls_conn *c);
/* Events the last send/recv that returned LADE_ERR_AGAIN waits for on the fd (manual driving:
 * TLS may need the socket writable to read, and readable to write). */
uint32_t lade_tls_conn_io_wants(const struct lade_tls_conn *c);

/* Socket fd (-1 when none). */
int lade_tls_conn_fd(const struct lade_tls_conn *c);
enum lade_tls_state lade_tls_conn_state(const struct lade_tls_conn *c);
const char *lade_tls_state_name(enum lade_tls_state s);
/* Error that failed the connection (LADE_OK while not FAILED). */
lade_err lade_tls_conn_error(const struct lade_tls_conn *c);
/* Byte counters and handshake facts. */
void lade_tls_conn_stats(const struct lade_tls_conn *c, struct lade_tls_stats *out);

/* The certificate the server presented, kept for diagnostics once the handshake has seen it —
 * also when verification failed (lade-check tells a TLS-inspecting firewall, whose certificate
 * another CA issued, from a wrong host name or an expired certificate). Texts are OpenSSL's
 * one-line forms ("CN = hub.lade.test"), cut to fit. */
struct lade_tls_peer {
    int have_cert;         /* a certificate was received */
    long verify_code;      /* X509_V_OK (0) or OpenSSL's X509_V_ERR_* */
    char verify_error[96]; /* "" when verified; else e.g. "unable to get local issuer ..." */
    char subject[192];     /* of the server's (leaf) certificate */
    char issuer[192];      /* who issued the leaf */
    char top_issuer[192];  /* issuer of the last certificate the server sent (its root CA) */
    char not_after[32];    /* leaf expiry, "Dec  3 16:00:00 2027 GMT" */
    unsigned chain_len;    /* certificates the server sent */
};
/* Copies what is known (have_cert 0 before the certificate arrived). */
void lade_tls_conn_peer(const struct lade_tls_conn *c, struct lade_tls_peer *out);

#endif
