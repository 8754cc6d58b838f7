/* lade — TLS client over non-blocking TCP on OpenSSL 3. Contract in include/lade/tls.h,
 * policy and byte accounting in docs/transport.md. SPEC R2 (outbound only: no bind/listen
 * here), R7 (TLS >= 1.2, chain and host name verified), R10, R12 (byte accounting).
 */
#include "lade/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "lade/clock.h"
#include "lade/log.h"

#define MOD "tls"

#define DEFAULT_CONNECT_TIMEOUT_MS   10000u
#define DEFAULT_HANDSHAKE_TIMEOUT_MS 15000u

struct lade_tls_ctx {
    SSL_CTX *ssl_ctx;
    /* Our socket BIO: send(MSG_NOSIGNAL) so a peer reset cannot SIGPIPE the process, and it
     * counts every byte on the wire (SPEC R12). */
    BIO_METHOD *bio_meth;
};

struct lade_tls_conn {
    struct lade_tls_ctx *ctx;
    char host[LADE_RESOLVE_NAME_MAX + 2];
    int host_is_ip;
    struct lade_sockaddr addrs[LADE_TLS_MAX_ADDRS];
    size_t n_addrs;
    uint16_t port;
    uint32_t connect_timeout_ms;
    uint32_t handshake_timeout_ms;
    char bind_if[16];         /* SO_BINDTODEVICE ("" none) */
    struct lade_sockaddr src; /* bind() before connect (src.len 0: none) */
    int64_t verify_time_s;    /* certificates checked at this time (0: the system clock) */

    enum lade_tls_state state;
    lade_err error;

    int fd;
    size_t next_addr;
    int cur_addr;
    lade_err last_tcp_err;
    SSL *ssl;
    int sys_errno; /* last errno from the BIO (for SSL_ERROR_SYSCALL) */
    int eof;       /* the BIO read EOF */

    uint64_t t_start;
    uint64_t t_deadline; /* of the current TCP attempt or of the handshake */
    uint64_t t_tcp_up;
    uint64_t t_done;
    uint32_t want; /* what the handshake waits for */
    struct lade_tls_session **session_slot;

    /* Transport: TLS may need the socket writable to read and readable to write. */
    int read_wants_write;
    int write_wants_read;
    uint32_t io_wants;

    uint64_t bytes_in, bytes_out, hs_in, hs_out;
    int hs_done;
    uint32_t attempts;
    int addr_index;

    void (*fd_close_cb)(void *ud, int fd);
    struct lade_tls_peer peer; /* for diagnostics (lade_tls_conn_peer) */
    void *fd_close_ud;

    /* Loop driving (lade_tls_conn_attach). */
    struct lade_loop *loop;
    lade_tls_event_cb cb;
    void *cb_ud;
    struct lade_timer timer;
    uint32_t user_interest;
    int watched_fd;
    int *freed; /* set while a callback runs: lade_tls_conn_free marks it */
};

/* ---- socket BIO ---- */

static int bio_write_ex(BIO *b, const char *buf, size_t len, size_t *written)
{
    struct lade_tls_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n;
    do
        n = send(c->fd, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            BIO_set_retry_write(b);
        else
            c->sys_errno = errno;
        return 0;
    }
    c->bytes_out += (uint64_t)n;
    *written = (size_t)n;
    return 1;
}

static int bio_read_ex(BIO *b, char *buf, size_t len, size_t *readbytes)
{
    struct lade_tls_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n;
    do
        n = recv(c->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            BIO_set_retry_read(b);
        else
            c->sys_errno = errno;
        return 0;
    }
    if (n == 0) {
        c->eof = 1;
        return 0;
    }
    c->bytes_in += (uint64_t)n;
    *readbytes = (size_t)n;
    return 1;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    struct lade_tls_conn *c = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* unbuffered */
    case BIO_CTRL_EOF:
        return c && c->eof; /* lets OpenSSL tell a truncated stream from an I/O error */
    default:
        return 0;
    }
}

/* ---- context ---- */

void lade_tls_session_free(struct lade_tls_session *s)
{
    SSL_SESSION_free((SSL_SESSION *)s);
}

/* OpenSSL hands over each session the server issues (TLS 1.3: NewSessionTicket after the
 * handshake, read with application data). Keeping it (return 1) takes the reference. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct lade_tls_conn *c = SSL_get_app_data(ssl);
    if (!c || !c->session_slot)
        return 0;
    lade_tls_session_free(*c->session_slot);
    *c->session_slot = (struct lade_tls_session *)sess;
    return 1;
}

lade_err lade_tls_ctx_new(struct lade_tls_ctx **out, const char *ca_file)
{
    if (!out || !ca_file)
        return LADE_ERR_INVAL;
    lade_err err = LADE_OK;
    struct lade_tls_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return LADE_ERR_NOMEM;
    ERR_clear_error();
    ctx->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx->ssl_ctx) {
        err = LADE_ERR_NOMEM;
        goto out;
    }
    /* SPEC R7: TLS 1.2 at least. */
    if (!SSL_CTX_set_min_proto_version(ctx->ssl_ctx, TLS1_2_VERSION)) {
        err = LADE_ERR_TLS;
        goto out;
    }
    /* Trust the configured bundle only — never SSL_CTX_set_default_verify_paths: a charger
     * must talk to its own hub, not to anyone a public CA vouches for (docs/transport.md). */
    if (SSL_CTX_load_verify_locations(ctx->ssl_ctx, ca_file, NULL) != 1) {
        char e[256];
        ERR_error_string_n(ERR_peek_last_error(), e, sizeof e);
        LOG_E(MOD, "CA bundle %s: %s", ca_file, e);
        err = LADE_ERR_CONFIG;
        goto out;
    }
    SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_options(ctx->ssl_ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    /* Sessions live in the callers' slots (one per charger and hub), not in a shared cache. */
    SSL_CTX_set_session_cache_mode(ctx->ssl_ctx,
                                   SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx->ssl_ctx, on_new_session);
    /* Partial writes report progress per record; a retried write may come from another
     * address (the caller's buffer may have moved). An idle connection gives its record
     * buffers back (about 16 kB each: a charger is idle nearly always, and lade-sim holds
     * 10 000 of them; docs/lade-sim.md). */
    SSL_CTX_set_mode(ctx->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                       SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                       SSL_MODE_RELEASE_BUFFERS);

    ctx->bio_meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "lade_socket");
    if (!ctx->bio_meth || !BIO_meth_set_write_ex(ctx->bio_meth, bio_write_ex) ||
        !BIO_meth_set_read_ex(ctx->bio_meth, bio_read_ex) ||
        !BIO_meth_set_ctrl(ctx->bio_meth, bio_ctrl)) {
        err = LADE_ERR_NOMEM;
        goto out;
    }
out:
    if (err != LADE_OK) {
        lade_tls_ctx_free(ctx);
        ERR_clear_error();
        return err;
    }
    *out = ctx;
    return LADE_OK;
}

void lade_tls_ctx_free(struct lade_tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl_ctx);
    BIO_meth_free(ctx->bio_meth);
    free(ctx);
}

/* ---- connection ---- */

const char *lade_tls_state_name(enum lade_tls_state s)
{
    switch (s) {
    case LADE_TLS_IDLE:
        return "idle";
    case LADE_TLS_CONNECTING:
        return "connecting";
    case LADE_TLS_HANDSHAKING:
        return "handshaking";
    case LADE_TLS_ESTABLISHED:
        return "established";
    case LADE_TLS_FAILED:
        return "failed";
    case LADE_TLS_CLOSED:
        return "closed";
    }
    return "?";
}

/* The one place the state changes (DESIGN convention 3). */
static void tls_set_state(struct lade_tls_conn *c, enum lade_tls_state s)
{
    if (c->state == s)
        return;
    LOG_D(MOD, "%s: %s -> %s", c->host, lade_tls_state_name(c->state), lade_tls_state_name(s));
    c->state = s;
}

lade_err lade_tls_conn_new(struct lade_tls_conn **out, struct lade_tls_ctx *ctx,
                           const struct lade_tls_conn_opts *opts)
{
    if (!out || !ctx || !opts || !opts->host || !opts->addrs || opts->n_addrs == 0 ||
        opts->n_addrs > LADE_TLS_MAX_ADDRS || opts->port == 0)
        return LADE_ERR_INVAL;
    size_t hlen = strlen(opts->host);
    if (hlen == 0 || hlen > LADE_RESOLVE_NAME_MAX)
        return LADE_ERR_INVAL;
    for (size_t i = 0; i < opts->n_addrs; i++) {
        sa_family_t f = opts->addrs[i].ss.ss_family;
        if (f != AF_INET && f != AF_INET6)
            return LADE_ERR_INVAL;
    }
    struct lade_tls_conn *c = calloc(1, sizeof *c);
    if (!c)
        return LADE_ERR_NOMEM;
    c->ctx = ctx;
    memcpy(c->host, opts->host, hlen + 1);
    struct lade_sockaddr probe;
    c->host_is_ip = lade_sockaddr_parse(c->host, &probe) == LADE_OK;
    memcpy(c->addrs, opts->addrs, opts->n_addrs * sizeof *c->addrs);
    c->n_addrs = opts->n_addrs;
    c->port = opts->port;
    for (size_t i = 0; i < c->n_addrs; i++)
        lade_sockaddr_set_port(&c->addrs[i], c->port);
    c->connect_timeout_ms =
        opts->connect_timeout_ms ? opts->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    c->handshake_timeout_ms =
        opts->handshake_timeout_ms ? opts->handshake_timeout_ms : DEFAULT_HANDSHAKE_TIMEOUT_MS;
    c->session_slot = opts->session;
    if (opts->bind_ifname && opts->bind_ifname[0]) {
        if (strlen(opts->bind_ifname) >= sizeof c->bind_if) {
            free(c);
            return LADE_ERR_INVAL;
        }
        memcpy(c->bind_if, opts->bind_ifname, strlen(opts->bind_ifname) + 1);
    }
    if (opts->source_addr) {
        if (opts->source_addr->len == 0 ||
            opts->source_addr->len > (socklen_t)sizeof opts->source_addr->ss) {
            free(c);
            return LADE_ERR_INVAL;
        }
        c->src = *opts->source_addr;
        lade_sockaddr_set_port(&c->src, 0);
    }
    c->verify_time_s = opts->verify_time_s;
    c->fd = -1;
    c->cur_addr = -1;
    c->addr_index = -1;
    c->watched_fd = -1;
    c->last_tcp_err = LADE_ERR_IO;
    c->user_interest = LADE_IO_READ;
    lade_timer_init(&c->timer, NULL, NULL);
    *out = c;
    return LADE_OK;
}

void lade_tls_conn_on_fd_close(struct lade_tls_conn *c, void (*cb)(void *ud, int fd), void *ud)
{
    c->fd_close_cb = cb;
    c->fd_close_ud = ud;
}

static void close_socket(struct lade_tls_conn *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd < 0)
        return;
    if (c->fd_close_cb)
        c->fd_close_cb(c->fd_close_ud, c->fd);
    if (c->loop && c->watched_fd == c->fd) {
        lade_loop_unwatch(c->loop, c->fd);
        c->watched_fd = -1;
    }
    close(c->fd);
    c->fd = -1;
}

static lade_err fail(struct lade_tls_conn *c, lade_err err)
{
    ERR_clear_error();
    if (c->state == LADE_TLS_HANDSHAKING && c->session_slot) {
        /* Never offer a session again to a server that just failed a handshake. */
        lade_tls_session_free(*c->session_slot);
        *c->session_slot = NULL;
    }
    close_socket(c);
    c->error = err;
    c->t_done = lade_mono_ms();
    tls_set_state(c, LADE_TLS_FAILED);
    return err;
}

static void addr_str(const struct lade_tls_conn *c, int idx, char *buf, size_t cap)
{
    if (idx < 0 || lade_sockaddr_format(&c->addrs[idx], buf, cap) != LADE_OK)
        snprintf(buf, cap, "?");
}

/* Opens sockets until one connects or is in progress. LADE_OK: connected at once;
 * LADE_ERR_AGAIN: in progress (wait for writable); other: every address failed. */
static lade_err tcp_start_next(struct lade_tls_conn *c)
{
    char as[LADE_SOCKADDR_STRLEN];
    while (c->next_addr < c->n_addrs) {
        int idx = (int)c->next_addr++;
        const struct lade_sockaddr *a = &c->addrs[idx];
        addr_str(c, idx, as, sizeof as);
        int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd < 0) {
            LOG_W(MOD, "%s: socket for %s: %s", c->host, as, strerror(errno));
            c->last_tcp_err = LADE_ERR_IO;
            continue;
        }
        int one = 1;
        /* MQTT sends small packets and waits for answers: Nagle would only add latency. */
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        if (c->bind_if[0] && setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, c->bind_if,
                                        (socklen_t)strlen(c->bind_if)) != 0) {
            LOG_W(MOD, "%s: cannot bind to %s: %s", c->host, c->bind_if, strerror(errno));
            close(fd);
            c->last_tcp_err = LADE_ERR_IO;
            continue;
        }
        if (c->src.len && c->src.ss.ss_family == a->ss.ss_family) {
            /* The kernel picks the port at connect(), so many connections can share one
             * source address without exhausting ports at bind(). */
            (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
            if (bind(fd, (const struct sockaddr *)&c->src.ss, c->src.len) != 0) {
                char ss[LADE_SOCKADDR_STRLEN];
                if (lade_sockaddr_format(&c->src, ss, sizeof ss))
                    snprintf(ss, sizeof ss, "?");
                LOG_W(MOD, "%s: cannot bind to %s: %s", c->host, ss, strerror(errno));
                close(fd);
                c->last_tcp_err = LADE_ERR_IO;
                continue;
            }
        }
        c->fd = fd;
        c->cur_addr = idx;
        c->attempts++;
        c->eof = 0;
        c->sys_errno = 0;
        LOG_D(MOD, "%s: connecting to %s", c->host, as);
        int rc = connect(fd, (const struct sockaddr *)&a->ss, a->len);
        if (rc == 0)
            return LADE_OK;
        if (errno == EINPROGRESS) {
            c->t_deadline = lade_mono_ms() + c->connect_timeout_ms;
            return LADE_ERR_AGAIN;
        }
        LOG_I(MOD, "%s: connect %s: %s", c->host, as, strerror(errno));
        c->last_tcp_err = LADE_ERR_IO;
        close_socket(c);
    }
    return c->last_tcp_err;
}

/* A certificate's name is the server's text: it goes to terminals and JSON. Keeps well-formed
 * UTF-8 without control characters (C0, DEL, C1); anything else becomes '?', and a character
 * cut at the end is dropped. */
static void clean_utf8(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80             ? 1
                   : (*p & 0xE0) == 0xC0 ? 2
                   : (*p & 0xF0) == 0xE0 ? 3
                   : (*p & 0xF8) == 0xF0 ? 4
                                         : 0;
        size_t k = 1;
        while (n > 1 && k < n && (p[k] & 0xC0) == 0x80)
            k++;
        if (n > 1 && k < n && p[k] == '\0') {
            *p = '\0'; /* cut in the middle of a character */
            return;
        }
        int bad = n == 0 || k < n || (n == 1 && (*p < 0x20 || *p == 0x7F)) ||
                  (n == 2 && (p[0] < 0xC2 || (p[0] == 0xC2 && p[1] < 0xA0)));
        if (bad) {
            *p++ = '?';
            continue;
        }
        p += n;
    }
}

static void name_line(X509_NAME *n, char *buf, size_t cap)
{
    buf[0] = '\0';
    BIO *b = n ? BIO_new(BIO_s_mem()) : NULL;
    if (!b)
        return;
    if (X509_NAME_print_ex(b, n, 0, XN_FLAG_ONELINE & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
        int len = BIO_read(b, buf, (int)cap - 1);
        buf[len > 0 ? len : 0] = '\0';
    }
    BIO_free(b);
    clean_utf8(buf);
}

/* Records the server's certificate and the verification result (before the SSL object goes:
 * a failed handshake frees it). The chain is the one the server sent, kept also when
 * verification rejected it. */
static void capture_peer(struct lade_tls_conn *c)
{
    struct lade_tls_peer *p = &c->peer;
    memset(p, 0, sizeof *p);
    STACK_OF(X509) *chain = c->ssl ? SSL_get_peer_cert_chain(c->ssl) : NULL;
    int n = chain ? sk_X509_num(chain) : 0;
    if (n <= 0)
        return;
    X509 *leaf = sk_X509_value(chain, 0);
    X509 *top = sk_X509_value(chain, n - 1);
    p->have_cert = 1;
    p->chain_len = (unsigned)n;
    p->verify_code = SSL_get_verify_result(c->ssl);
    if (p->verify_code != X509_V_OK)
        snprintf(p->verify_error, sizeof p->verify_error, "%s",
                 X509_verify_cert_error_string(p->verify_code));
    name_line(X509_get_subject_name(leaf), p->subject, sizeof p->subject);
    name_line(X509_get_issuer_name(leaf), p->issuer, sizeof p->issuer);
    name_line(X509_get_issuer_name(top), p->top_issuer, sizeof p->top_issuer);
    BIO *b = BIO_new(BIO_s_mem());
    if (b && ASN1_TIME_print(b, X509_get0_notAfter(leaf)) == 1) {
        int len = BIO_read(b, p->not_after, (int)sizeof p->not_after - 1);
        p->not_after[len > 0 ? len : 0] = '\0';
    }
    BIO_free(b);
}

void lade_tls_conn_peer(const struct lade_tls_conn *c, struct lade_tls_peer *out)
{
    *out = c->peer;
}

/* Classifies a failed SSL call. handshake: during the handshake (EOF is then a TLS failure,
 * and a verification failure is LADE_ERR_CERT). *want gets the fd event for LADE_ERR_AGAIN. */
static lade_err map_ssl_error(struct lade_tls_conn *c, int ret, int handshake, uint32_t *want)
{
    int e = SSL_get_error(c->ssl, ret);
    unsigned long ee = ERR_peek_error();
    char msg[256] = "";
    switch (e) {
    case SSL_ERROR_WANT_READ:
        *want = LADE_IO_READ;
        return LADE_ERR_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        *want = LADE_IO_WRITE;
        return LADE_ERR_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        if (handshake) {
            LOG_W(MOD, "%s: peer closed during the handshake", c->host);
            return LADE_ERR_TLS;
        }
        return LADE_ERR_CLOSED;
    case SSL_ERROR_SYSCALL:
        if (c->sys_errno) {
            LOG_W(MOD, "%s: socket: %s", c->host, strerror(c->sys_errno));
            return LADE_ERR_IO;
        }
        if (handshake) {
            LOG_W(MOD, "%s: connection closed during the handshake", c->host);
            return LADE_ERR_TLS;
        }
        return LADE_ERR_CLOSED;
    case SSL_ERROR_SSL:
    default:
        break;
    }
    if (handshake) {
        capture_peer(c);
        long vr = SSL_get_verify_result(c->ssl);
        if (vr != X509_V_OK) {
            LOG_W(MOD, "%s: server certificate not trusted: %s", c->host,
                  X509_verify_cert_error_string(vr));
            return LADE_ERR_CERT;
        }
    }
    if (ERR_GET_LIB(ee) == ERR_LIB_SSL &&
        ERR_GET_REASON(ee) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
        if (handshake) {
            LOG_W(MOD, "%s: connection closed during the handshake", c->host);
            return LADE_ERR_TLS;
        }
        /* A TCP FIN without close_notify: many brokers do this; MQTT frames its packets. */
        LOG_D(MOD, "%s: peer closed without close_notify", c->host);
        return LADE_ERR_CLOSED;
    }
    if (ee)
        ERR_error_string_n(ee, msg, sizeof msg);
    LOG_W(MOD, "%s: TLS %s failed: %s", c->host, handshake ? "handshake" : "record",
          ee ? msg : "unknown error");
    ERR_clear_error(); /* leave no stale errors for other OpenSSL users of this thread */
    return LADE_ERR_TLS;
}

static lade_err handshake_begin(struct lade_tls_conn *c)
{
    c->t_tcp_up = lade_mono_ms();
    c->addr_index = c->cur_addr;
    c->t_deadline = c->t_tcp_up + c->handshake_timeout_ms;
    if (LADE_LOG_ENABLED(LADE_LOG_DEBUG)) {
        char as[LADE_SOCKADDR_STRLEN];
        addr_str(c, c->cur_addr, as, sizeof as);
        LOG_D(MOD, "%s: TCP connected to %s", c->host, as);
    }
    c->ssl = SSL_new(c->ctx->ssl_ctx);
    BIO *bio = c->ssl ? BIO_new(c->ctx->bio_meth) : NULL;
    if (!bio)
        return LADE_ERR_NOMEM;
    BIO_set_data(bio, c);
    BIO_set_init(bio, 1);
    SSL_set_bio(c->ssl, bio, bio);
    SSL_set_app_data(c->ssl, c);
    if (c->session_slot && *c->session_slot &&
        SSL_set_session(c->ssl, (SSL_SESSION *)*c->session_slot) != 1)
        ERR_clear_error(); /* not resumable: a full handshake follows */
    X509_VERIFY_PARAM *param = SSL_get0_param(c->ssl);
    if (c->verify_time_s > 0)
        X509_VERIFY_PARAM_set_time(param, (time_t)c->verify_time_s);
    if (c->host_is_ip) {
        /* RFC 6066 §3: no SNI for a literal; check the certificate's IP SAN instead. */
        if (X509_VERIFY_PARAM_set1_ip_asc(param, c->host) != 1)
            return LADE_ERR_INVAL;
    } else {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set1_host(c->ssl, c->host) != 1 || SSL_set_tlsext_host_name(c->ssl, c->host) != 1)
            return LADE_ERR_INVAL;
    }
    SSL_set_connect_state(c->ssl);
    tls_set_state(c, LADE_TLS_HANDSHAKING);
    return LADE_OK;
}

/* TCP attempt failed with err: try the next address or fail. */
static lade_err tcp_next(struct lade_tls_conn *c, lade_err err)
{
    c->last_tcp_err = err;
    close_socket(c);
    lade_err r = tcp_start_next(c);
    if (r == LADE_ERR_AGAIN || r == LADE_OK)
        return r;
    LOG_W(MOD, "%s: no address of %zu connected (%s)", c->host, c->n_addrs, lade_strerror(r));
    return r;
}

lade_err lade_tls_conn_step(struct lade_tls_conn *c, uint32_t *want, uint64_t *deadline_ms)
{
    uint32_t w = 0;
    lade_err r = LADE_OK;
    uint64_t now = lade_mono_ms();
    char as[LADE_SOCKADDR_STRLEN];

    switch (c->state) {
    case LADE_TLS_ESTABLISHED:
        return LADE_OK;
    case LADE_TLS_FAILED:
        return c->error;
    case LADE_TLS_CLOSED:
        return LADE_ERR_STATE;
    case LADE_TLS_IDLE:
        c->t_start = now;
        tls_set_state(c, LADE_TLS_CONNECTING);
        r = tcp_start_next(c);
        goto tcp_result;
    case LADE_TLS_CONNECTING: {
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
            soerr = errno;
        if (soerr == 0) {
            struct sockaddr_storage peer;
            socklen_t pl = sizeof peer;
            if (getpeername(c->fd, (struct sockaddr *)&peer, &pl) == 0) {
                r = LADE_OK;
            } else if (errno == ENOTCONN) {
                if (now < c->t_deadline) {
                    r = LADE_ERR_AGAIN; /* woken early: still in progress */
                } else {
                    addr_str(c, c->cur_addr, as, sizeof as);
                    LOG_I(MOD, "%s: connect %s: timed out after %u ms", c->host, as,
                          (unsigned)c->connect_timeout_ms);
                    r = tcp_next(c, LADE_ERR_TIMEOUT);
                }
            } else {
                soerr = errno;
            }
        }
        if (soerr != 0) {
            addr_str(c, c->cur_addr, as, sizeof as);
            LOG_I(MOD, "%s: connect %s: %s", c->host, as, strerror(soerr));
            r = tcp_next(c, LADE_ERR_IO);
        }
    tcp_result:
        if (r == LADE_ERR_AGAIN) {
            w = LADE_IO_WRITE;
            goto again;
        }
        if (r != LADE_OK)
            return fail(c, r);
        r = handshake_begin(c);
        if (r != LADE_OK)
            return fail(c, r);
    }
        /* fall through */
    case LADE_TLS_HANDSHAKING: {
        if (now >= c->t_deadline) {
            LOG_W(MOD, "%s: handshake timed out after %u ms", c->host,
                  (unsigned)c->handshake_timeout_ms);
            return fail(c, LADE_ERR_TIMEOUT);
        }
        ERR_clear_error();
        int rc = SSL_do_handshake(c->ssl);
        if (rc == 1) {
            c->t_done = lade_mono_ms();
            c->hs_in = c->bytes_in;
            c->hs_out = c->bytes_out;
            c->hs_done = 1;
            capture_peer(c);
            tls_set_state(c, LADE_TLS_ESTABLISHED);
            addr_str(c, c->addr_index, as, sizeof as);
            LOG_I(MOD, "%s: %s %s with %s, handshake %llu B out / %llu B in", c->host,
                  SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl), as,
                  (unsigned long long)c->hs_out, (unsigned long long)c->hs_in);
            return LADE_OK;
        }
        r = map_ssl_error(c, rc, 1, &w);
        if (r != LADE_ERR_AGAIN)
            return fail(c, r);
        goto again;
    }
    }
    return LADE_ERR_STATE;

again:
    c->want = w;
    if (want)
        *want = w;
    if (deadline_ms)
        *deadline_ms = c->t_deadline;
    return LADE_ERR_AGAIN;
}

/* ---- transport ---- */

static void attached_sync(struct lade_tls_conn *c);

static lade_err tls_send(void *ctx, const uint8_t *buf, size_t len, size_t *done)
{
    struct lade_tls_conn *c = ctx;
    *done = 0;
    if (c->state != LADE_TLS_ESTABLISHED)
        return c->state == LADE_TLS_FAILED ? c->error : LADE_ERR_STATE;
    if (len == 0)
        return LADE_ERR_INVAL;
    ERR_clear_error();
    size_t n = 0;
    lade_err r;
    if (SSL_write_ex(c->ssl, buf, len, &n) == 1) {
        *done = n;
        c->write_wants_read = 0;
        r = LADE_OK;
    } else {
        uint32_t w = 0;
        r = map_ssl_error(c, 0, 0, &w);
        if (r == LADE_ERR_AGAIN) {
            c->write_wants_read = w == LADE_IO_READ;
            c->io_wants = w;
        } else {
            c->write_wants_read = 0;
        }
    }
    attached_sync(c);
    return r;
}

static lade_err tls_recv(void *ctx, uint8_t *buf, size_t cap, size_t *done)
{
    struct lade_tls_conn *c = ctx;
    *done = 0;
    if (c->state != LADE_TLS_ESTABLISHED)
        return c->state == LADE_TLS_FAILED ? c->error : LADE_ERR_STATE;
    if (cap == 0)
        return LADE_ERR_INVAL;
    ERR_clear_error();
    size_t n = 0;
    lade_err r;
    if (SSL_read_ex(c->ssl, buf, cap, &n) == 1) {
        *done = n;
        c->read_wants_write = 0;
        r = LADE_OK;
    } else {
        uint32_t w = 0;
        r = map_ssl_error(c, 0, 0, &w);
        if (r == LADE_ERR_AGAIN) {
            c->read_wants_write = w == LADE_IO_WRITE;
            c->io_wants = w;
        } else {
            c->read_wants_write = 0;
        }
    }
    attached_sync(c);
    return r;
}

struct lade_transport lade_tls_conn_transport(struct lade_tls_conn *c)
{
    struct lade_transport t = {.ctx = c, .send = tls_send, .recv = tls_recv};
    return t;
}

uint32_t lade_tls_conn_io_wants(const struct lade_tls_conn *c)
{
    return c->io_wants;
}

/* ---- loop driving ---- */

static uint32_t epoll_interest(const struct lade_tls_conn *c)
{
    if (c->state != LADE_TLS_ESTABLISHED)
        return c->want;
    uint32_t ev = 0;
    if (c->user_interest & LADE_IO_READ)
        ev |= c->read_wants_write ? LADE_IO_WRITE : LADE_IO_READ;
    if (c->user_interest & LADE_IO_WRITE)
        ev |= c->write_wants_read ? LADE_IO_READ : LADE_IO_WRITE;
    return ev;
}

static void on_io(struct lade_loop *loop, int fd, uint32_t events, void *ud);

/* Makes the loop watch the current fd with the interest the state needs. */
static lade_err watch_sync(struct lade_tls_conn *c)
{
    if (!c->loop || c->fd < 0)
        return LADE_OK;
    uint32_t interest = epoll_interest(c);
    if (c->watched_fd != c->fd) {
        if (c->watched_fd >= 0)
            lade_loop_unwatch(c->loop, c->watched_fd);
        c->watched_fd = -1;
        lade_err err = lade_loop_watch(c->loop, c->fd, interest, on_io, c);
        if (err != LADE_OK)
            return err;
        c->watched_fd = c->fd;
        return LADE_OK;
    }
    return lade_loop_modify(c->loop, c->fd, interest);
}

static void attached_sync(struct lade_tls_conn *c)
{
    if (c->loop && c->state == LADE_TLS_ESTABLISHED && watch_sync(c) != LADE_OK)
        LOG_W(MOD, "%s: cannot update the fd watch", c->host);
}

/* Runs the user's callback; returns 1 if it freed c. */
static int call_user(struct lade_tls_conn *c, lade_err status, uint32_t events)
{
    int freed = 0;
    int *prev = c->freed;
    c->freed = &freed;
    c->cb(c, status, events, c->cb_ud);
    if (freed) {
        if (prev)
            *prev = 1;
        return 1;
    }
    c->freed = prev;
    return 0;
}

static void drive(struct lade_tls_conn *c)
{
    uint32_t want = 0;
    uint64_t deadline = 0;
    lade_err r = lade_tls_conn_step(c, &want, &deadline);
    if (r == LADE_ERR_AGAIN) {
        lade_err e = watch_sync(c);
        if (e == LADE_OK)
            e = lade_timer_arm(c->loop, &c->timer, deadline);
        if (e == LADE_OK)
            return;
        r = fail(c, e);
    }
    lade_timer_cancel(c->loop, &c->timer);
    if (r == LADE_OK) {
        lade_err e = watch_sync(c);
        if (e != LADE_OK)
            r = fail(c, e);
    } else if (c->watched_fd >= 0) {
        lade_loop_unwatch(c->loop, c->watched_fd);
        c->watched_fd = -1;
    }
    (void)call_user(c, r, 0);
}

static void on_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    drive(ud);
}

static void on_io(struct lade_loop *loop, int fd, uint32_t events, void *ud)
{
    (void)loop;
    (void)fd;
    struct lade_tls_conn *c = ud;
    if (c->state == LADE_TLS_CONNECTING || c->state == LADE_TLS_HANDSHAKING) {
        drive(c);
        return;
    }
    if (c->state != LADE_TLS_ESTABLISHED)
        return;
    /* Translate fd readiness into what the transport can do (TLS may need the other
     * direction); an error or hang-up is reported so the caller's recv/send sees it. */
    uint32_t up = 0;
    uint32_t bad = events & (LADE_IO_ERROR | LADE_IO_HUP);
    if (c->user_interest & LADE_IO_READ) {
        if (bad || (events & (c->read_wants_write ? LADE_IO_WRITE : LADE_IO_READ)))
            up |= LADE_IO_READ;
    }
    if (c->user_interest & LADE_IO_WRITE) {
        if (bad || (events & (c->write_wants_read ? LADE_IO_READ : LADE_IO_WRITE)))
            up |= LADE_IO_WRITE;
    }
    if (up)
        (void)call_user(c, LADE_OK, up);
}

lade_err lade_tls_conn_attach(struct lade_tls_conn *c, struct lade_loop *loop, lade_tls_event_cb cb,
                              void *ud)
{
    if (!c || !loop || !cb)
        return LADE_ERR_INVAL;
    if (c->loop || c->state != LADE_TLS_IDLE)
        return LADE_ERR_STATE;
    c->loop = loop;
    c->cb = cb;
    c->cb_ud = ud;
    lade_timer_init(&c->timer, on_timer, c);
    /* First step from the loop, so the callback never runs inside this call. */
    lade_err err = lade_timer_arm(loop, &c->timer, lade_mono_ms());
    if (err != LADE_OK) {
        c->loop = NULL;
        return err;
    }
    return LADE_OK;
}

lade_err lade_tls_conn_set_interest(struct lade_tls_conn *c, uint32_t interest)
{
    c->user_interest = interest & (LADE_IO_READ | LADE_IO_WRITE);
    if (c->loop && c->state == LADE_TLS_ESTABLISHED)
        return watch_sync(c);
    return LADE_OK;
}

/* ---- accessors, teardown ---- */

int lade_tls_conn_fd(const struct lade_tls_conn *c)
{
    return c->fd;
}

enum lade_tls_state lade_tls_conn_state(const struct lade_tls_conn *c)
{
    return c->state;
}

lade_err lade_tls_conn_error(const struct lade_tls_conn *c)
{
    return c->state == LADE_TLS_FAILED ? c->error : LADE_OK;
}

void lade_tls_conn_stats(const struct lade_tls_conn *c, struct lade_tls_stats *out)
{
    memset(out, 0, sizeof *out);
    out->bytes_in = c->bytes_in;
    out->bytes_out = c->bytes_out;
    int done = c->hs_done;
    out->handshake_bytes_in = done ? c->hs_in : c->bytes_in;
    out->handshake_bytes_out = done ? c->hs_out : c->bytes_out;
    if (c->t_tcp_up)
        out->connect_ms = c->t_tcp_up - c->t_start;
    if (done)
        out->handshake_ms = c->t_done - c->t_tcp_up;
    out->attempts = c->attempts;
    out->addr_index = c->addr_index;
    out->version = "";
    out->cipher = "";
    if (c->ssl && c->state == LADE_TLS_ESTABLISHED) {
        out->version = SSL_get_version(c->ssl);
        out->cipher = SSL_get_cipher_name(c->ssl);
        out->resumed = SSL_session_reused(c->ssl) == 1;
    }
}

void lade_tls_conn_free(struct lade_tls_conn *c)
{
    if (!c)
        return;
    if (c->freed)
        *c->freed = 1;
    if (c->loop) {
        lade_timer_cancel(c->loop, &c->timer);
        if (c->watched_fd >= 0)
            lade_loop_unwatch(c->loop, c->watched_fd);
        c->watched_fd = -1;
    }
    if (c->ssl && c->state == LADE_TLS_ESTABLISHED) {
        ERR_clear_error();
        (void)SSL_shutdown(c->ssl); /* one try at close_notify; never wait for the reply */
        ERR_clear_error();
    }
    close_socket(c);
    tls_set_state(c, LADE_TLS_CLOSED);
    free(c);
}
