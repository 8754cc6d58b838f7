/* lade — the DNS stub resolver's shell: sockets and timers on lade_loop around the pure policy
 * in src/proto/dns. Contract in include/lade/dnsres.h, policy in docs/dns.md.
 *
 * Each query the policy asks for (LADE_DNS_ACT_SEND) gets a fresh socket: UDP bound to port 0
 * (the kernel picks a random ephemeral port, RFC 5452 §9.2) and connect()ed to the server, or a
 * non-blocking TCP connection after a truncated answer (RFC 7766 §5). The query id and the 0x20
 * bits come from the CSPRNG (lade_random) for every query, retransmissions included.
 */
#include "lade/dnsres.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lade/clock.h"
#include "lade/dns.h"
#include "lade/log.h"

#define MOD "dns"

/* Room to see a datagram longer than 512 bytes (and refuse it) rather than have it cut. */
#define UDP_RX_MAX 4096

struct io {
    struct lade_dnsres_query *q;
    unsigned k;
    int fd;
    bool tcp, connected;
    struct lade_dns_query msg; /* the question sent: the answer is checked against it */
    uint8_t tx[2 + LADE_DNS_HEADER_LEN + LADE_DNS_NAME_WIRE_MAX + 4];
    size_t tx_len, tx_off;
    uint8_t len_buf[2]; /* TCP: the length prefix, then rx of exactly that size */
    size_t len_got;
    uint8_t *rx;
    size_t rx_need, rx_got;
};

struct lade_dnsres_query {
    struct lade_dnsres *r;
    struct lade_dnsres_query *prev, *next;
    char name[LADE_DNS_NAME_TEXT_MAX + 1]; /* canonical */
    uint16_t qtype;
    lade_dnsres_cb cb;
    void *ud;
    struct lade_timer timer;
    bool immediate; /* literal / hosts / cache: result ready, delivered from the timer */
    lade_err imm_err;
    size_t imm_n;
    struct lade_sockaddr imm_addr[LADE_DNS_ADDR_MAX];
    struct lade_dnsres_info imm_info;
    uint32_t generation; /* of the server list the lookup was ranked with */
    unsigned rejected;
    struct lade_dns_lookup lk;
    struct io io[LADE_DNS_MAX_ATTEMPTS];
};

struct lade_dnsres {
    struct lade_loop *loop;
    struct lade_dnsres_opts opts;
    char *hosts;
    struct lade_dns_servers servers;
    struct lade_dns_endpoint dhcp[LADE_DNS_MAX_DHCP], fb[LADE_DNS_MAX_FALLBACK];
    size_t n_dhcp, n_fb;
    struct lade_dns_cache cache;
    struct lade_dnsres_query *queries;
};

const char *lade_dnsres_source_name(enum lade_dnsres_source s)
{
    switch (s) {
    case LADE_DNSRES_LITERAL:
        return "literal";
    case LADE_DNSRES_HOSTS:
        return "hosts";
    case LADE_DNSRES_CACHE:
        return "cache";
    case LADE_DNSRES_DNS:
        return "dns";
    }
    return "?";
}

/* ---------------------------------------------------------------- addresses */

static lade_err to_endpoint(const struct lade_sockaddr *a, struct lade_dns_endpoint *ep)
{
    memset(ep, 0, sizeof *ep);
    uint16_t port = lade_sockaddr_port(a);
    ep->port = port ? port : LADE_DNS_PORT;
    if (a->ss.ss_family == AF_INET) {
        ep->family = 4;
        memcpy(ep->ip, &((const struct sockaddr_in *)&a->ss)->sin_addr, 4);
        return LADE_OK;
    }
    if (a->ss.ss_family == AF_INET6) {
        ep->family = 6;
        memcpy(ep->ip, &((const struct sockaddr_in6 *)&a->ss)->sin6_addr, 16);
        return LADE_OK;
    }
    return LADE_ERR_INVAL;
}

static void from_endpoint(const struct lade_dns_endpoint *ep, struct lade_sockaddr *a)
{
    memset(a, 0, sizeof *a);
    if (ep->family == 4) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
        sin->sin_family = AF_INET;
        memcpy(&sin->sin_addr, ep->ip, 4);
        a->len = sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
        sin6->sin6_family = AF_INET6;
        memcpy(&sin6->sin6_addr, ep->ip, 16);
        a->len = sizeof *sin6;
    }
    lade_sockaddr_set_port(a, ep->port);
}

static void from_dns_addr(const struct lade_dns_addr *d, struct lade_sockaddr *a)
{
    struct lade_dns_endpoint ep = {.family = d->len == 4 ? 4 : 6};
    memcpy(ep.ip, d->b, d->len == 4 ? 4 : 16);
    from_endpoint(&ep, a);
}

static const char *fmt_addr(const struct lade_sockaddr *a, char *buf)
{
    if (lade_sockaddr_format(a, buf, LADE_SOCKADDR_STRLEN) != LADE_OK)
        snprintf(buf, LADE_SOCKADDR_STRLEN, "?");
    return buf;
}

/* ---------------------------------------------------------------- sockets */

static void io_close(struct io *io)
{
    if (io->fd >= 0) {
        lade_loop_unwatch(io->q->r->loop, io->fd);
        close(io->fd);
    }
    io->fd = -1;
    free(io->rx);
    io->rx = NULL;
    io->rx_need = io->rx_got = io->len_got = 0;
    io->tx_len = io->tx_off = 0;
    io->connected = false;
}

static void pump(struct lade_dnsres_query *q);

static void attempt_failed(struct io *io, lade_err err)
{
    struct lade_dnsres_query *q = io->q;
    lade_dns_lookup_on_error(&q->lk, io->k, err, lade_mono_ms());
    pump(q);
}

/* An answer that passed the decoder: hand it to the policy. */
static void attempt_answered(struct io *io, const struct lade_dns_answer *a,
                             const struct lade_dns_addr *addrs)
{
    struct lade_dnsres_query *q = io->q;
    lade_dns_lookup_on_answer(&q->lk, io->k, a, addrs, lade_mono_ms());
    pump(q);
}

static void on_udp(struct lade_loop *loop, int fd, uint32_t events, void *ud)
{
    (void)loop;
    (void)events;
    struct io *io = ud;
    struct lade_dnsres_query *q = io->q;
    const struct lade_dns_server *sv = &q->r->servers.s[q->lk.at[io->k].server];
    struct lade_sockaddr server;
    from_endpoint(&sv->ep, &server);
    for (;;) {
        uint8_t buf[UDP_RX_MAX];
        struct lade_sockaddr from;
        memset(&from, 0, sizeof from);
        socklen_t flen = sizeof from.ss;
        ssize_t n = recvfrom(fd, buf, sizeof buf, MSG_TRUNC, (struct sockaddr *)&from.ss, &flen);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            /* ECONNREFUSED: the server's port is closed (ICMP port unreachable). */
            LOG_D(MOD, "%s: udp receive: %s", q->name, strerror(errno));
            attempt_failed(io, LADE_ERR_IO);
            return;
        }
        from.len = flen;
        /* connect() already filters; this check guards against a kernel that did not. */
        if (!lade_sockaddr_equal(&from, &server)) {
            q->rejected++;
            continue;
        }
        struct lade_dns_answer a;
        struct lade_dns_addr addrs[LADE_DNS_ADDR_MAX];
        lade_err err = lade_dns_decode_response(&io->msg, buf, (size_t)n, LADE_DNS_UDP_MAX, &a,
                                                addrs, LADE_DNS_ADDR_MAX);
        if (err == LADE_OK) {
            attempt_answered(io, &a, addrs);
            return; /* io (and q) may be gone */
        }
        if (a.reject == LADE_DNS_REJ_CASE) {
            lade_dns_lookup_on_case_mismatch(&q->lk, io->k, lade_mono_ms());
            pump(q);
            return;
        }
        q->rejected++;
        LOG_D(MOD, "%s: answer refused: %s", q->name, lade_dns_reject_name(a.reject));
    }
}

static void tcp_read(struct io *io)
{
    for (;;) {
        ssize_t n;
        if (io->len_got < 2) {
            n = recv(io->fd, io->len_buf + io->len_got, 2 - io->len_got, 0);
        } else {
            if (!io->rx) {
                io->rx_need = ((size_t)io->len_buf[0] << 8) | io->len_buf[1];
                if (io->rx_need < LADE_DNS_HEADER_LEN) {
                    attempt_failed(io, LADE_ERR_PROTO);
                    return;
                }
                io->rx = malloc(io->rx_need);
                if (!io->rx) {
                    attempt_failed(io, LADE_ERR_NOMEM);
                    return;
                }
            }
            n = recv(io->fd, io->rx + io->rx_got, io->rx_need - io->rx_got, 0);
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            attempt_failed(io, LADE_ERR_IO);
            return;
        }
        if (n == 0) {
            attempt_failed(io, LADE_ERR_CLOSED);
            return;
        }
        if (io->len_got < 2) {
            io->len_got += (size_t)n;
            continue;
        }
        io->rx_got += (size_t)n;
        if (io->rx_got < io->rx_need)
            continue;
        struct lade_dns_answer a;
        struct lade_dns_addr addrs[LADE_DNS_ADDR_MAX];
        lade_err err = lade_dns_decode_response(&io->msg, io->rx, io->rx_need, LADE_DNS_TCP_MAX, &a,
                                                addrs, LADE_DNS_ADDR_MAX);
        if (err != LADE_OK) {
            /* The stream comes from the server we connected to: a bad message is its fault. */
            io->q->rejected++;
            LOG_D(MOD, "%s: tcp answer refused: %s", io->q->name, lade_dns_reject_name(a.reject));
            attempt_failed(io, LADE_ERR_PROTO);
            return;
        }
        attempt_answered(io, &a, addrs);
        return;
    }
}

static void on_tcp(struct lade_loop *loop, int fd, uint32_t events, void *ud)
{
    struct io *io = ud;
    if (!io->connected) {
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
            LOG_D(MOD, "%s: tcp connect: %s", io->q->name, strerror(soerr ? soerr : errno));
            attempt_failed(io, LADE_ERR_IO);
            return;
        }
        if (!(events & LADE_IO_WRITE) && (events & (LADE_IO_ERROR | LADE_IO_HUP))) {
            attempt_failed(io, LADE_ERR_IO);
            return;
        }
        io->connected = true;
    }
    if (io->tx_off < io->tx_len) {
        ssize_t n = send(fd, io->tx + io->tx_off, io->tx_len - io->tx_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            attempt_failed(io, LADE_ERR_IO);
            return;
        }
        io->tx_off += (size_t)n;
        if (io->tx_off < io->tx_len)
            return;
        if (lade_loop_modify(loop, fd, LADE_IO_READ) != LADE_OK) {
            attempt_failed(io, LADE_ERR_IO);
            return;
        }
        return;
    }
    tcp_read(io);
}

/* Opens the socket for a SEND action and sends the query (UDP) or starts connecting (TCP). */
static lade_err io_send(struct lade_dnsres_query *q, const struct lade_dns_action *act)
{
    struct lade_dnsres *r = q->r;
    struct io *io = &q->io[act->attempt];
    io_close(io);
    io->tcp = act->tcp;
    struct lade_sockaddr server;
    from_endpoint(&r->servers.s[act->server].ep, &server);

    uint16_t id;
    uint8_t bits[LADE_DNS_CASE_BITS_LEN];
    lade_err err = lade_random(&id, sizeof id);
    if (err == LADE_OK && act->use_0x20)
        err = lade_random(bits, sizeof bits);
    if (err != LADE_OK)
        return err;
    err = lade_dns_query_init(&io->msg, q->name, q->qtype, id, act->use_0x20 ? bits : NULL);
    if (err == LADE_OK)
        err = lade_dns_query_encode(&io->msg, act->tcp, io->tx, sizeof io->tx, &io->tx_len);
    if (err != LADE_OK)
        return err;

    int fam = server.ss.ss_family;
    io->fd = socket(fam, (act->tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (io->fd < 0)
        return LADE_ERR_IO;
    if (!act->tcp) {
        /* Port 0: a random ephemeral port, a new one for every query (RFC 5452 §9.2). */
        struct lade_sockaddr any;
        memset(&any, 0, sizeof any);
        any.ss.ss_family = (sa_family_t)fam;
        any.len = fam == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
        if (bind(io->fd, (struct sockaddr *)&any.ss, any.len) < 0 ||
            connect(io->fd, (struct sockaddr *)&server.ss, server.len) < 0 ||
            send(io->fd, io->tx, io->tx_len, MSG_NOSIGNAL) != (ssize_t)io->tx_len)
            goto fail;
        if (lade_loop_watch(r->loop, io->fd, LADE_IO_READ, on_udp, io) != LADE_OK)
            goto fail;
    } else {
        if (connect(io->fd, (struct sockaddr *)&server.ss, server.len) < 0 && errno != EINPROGRESS)
            goto fail;
        io->tx_off = 0;
        if (lade_loop_watch(r->loop, io->fd, LADE_IO_WRITE, on_tcp, io) != LADE_OK)
            goto fail;
    }
    if (LADE_LOG_ENABLED(LADE_LOG_TRACE)) {
        char b[LADE_SOCKADDR_STRLEN];
        LOG_T(MOD, "%s: query id %u to %s over %s", q->name, id, fmt_addr(&server, b),
              act->tcp ? "tcp" : "udp");
    }
    return LADE_OK;
fail:
    LOG_D(MOD, "%s: %s socket: %s", q->name, act->tcp ? "tcp" : "udp", strerror(errno));
    io_close(io);
    return LADE_ERR_IO;
}

/* ---------------------------------------------------------------- queries */

static void unlink_query(struct lade_dnsres_query *q)
{
    struct lade_dnsres *r = q->r;
    if (q->prev)
        q->prev->next = q->next;
    else if (r->queries == q)
        r->queries = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
}

static void destroy(struct lade_dnsres_query *q)
{
    lade_timer_cancel(q->r->loop, &q->timer);
    for (size_t k = 0; k < LADE_DNS_MAX_ATTEMPTS; k++)
        io_close(&q->io[k]);
    unlink_query(q);
    free(q);
}

static void deliver(struct lade_dnsres_query *q, lade_err err, const struct lade_sockaddr *addrs,
                    size_t n, const struct lade_dnsres_info *info)
{
    lade_dnsres_cb cb = q->cb;
    void *ud = q->ud;
    if (LADE_LOG_ENABLED(LADE_LOG_DEBUG)) {
        char a[LADE_SOCKADDR_STRLEN], s[LADE_SOCKADDR_STRLEN];
        LOG_D(MOD, "%s %s: %s%s%s (%s%s%s, %u ms, %u queries)", q->name,
              q->qtype == LADE_DNS_TYPE_A ? "A" : "AAAA", lade_strerror(err), n ? " " : "",
              n ? fmt_addr(&addrs[0], a) : "", lade_dnsres_source_name(info->source),
              info->server >= 0 ? " " : "",
              info->server >= 0 ? fmt_addr(&info->server_addr, s) : "", info->elapsed_ms,
              info->queries);
    }
    destroy(q);
    cb(ud, err, addrs, n, info);
}

/* The lookup is DONE: cache the result, convert it, report it. */
static void deliver_lookup(struct lade_dnsres_query *q)
{
    struct lade_dnsres *r = q->r;
    const struct lade_dns_result *res = lade_dns_lookup_result(&q->lk);
    if (!r->opts.no_cache && r->servers.generation == q->generation)
        lade_dns_cache_put(&r->cache, q->name, q->qtype, res, lade_mono_ms());
    struct lade_dnsres_info info;
    memset(&info, 0, sizeof info);
    info.source = LADE_DNSRES_DNS;
    info.server = res->server;
    if (res->server >= 0 && (size_t)res->server < r->servers.n)
        from_endpoint(&r->servers.s[res->server].ep, &info.server_addr);
    else
        info.server = -1;
    info.fallback = res->fallback;
    info.tcp = res->tcp;
    info.rcode = res->rcode;
    info.rtt_ms = res->rtt_ms;
    info.elapsed_ms = res->elapsed_ms;
    info.ttl_s = res->ttl_s;
    info.queries = res->queries;
    info.rejected = q->rejected;
    struct lade_sockaddr addrs[LADE_DNS_ADDR_MAX];
    size_t n = res->err == LADE_OK ? res->n_addr : 0;
    for (size_t i = 0; i < n; i++)
        from_dns_addr(&res->addr[i], &addrs[i]);
    deliver(q, res->err, addrs, n, &info);
}

static void fail_query(struct lade_dnsres_query *q, lade_err err)
{
    struct lade_dnsres_info info;
    memset(&info, 0, sizeof info);
    info.source = LADE_DNSRES_DNS;
    info.server = -1;
    info.rcode = -1;
    info.queries = q->lk.res.queries;
    info.rejected = q->rejected;
    deliver(q, err, NULL, 0, &info);
}

/* Carries out what the policy asks for until it has nothing more, then sleeps until its next
 * deadline. May free q (when the lookup ends). */
static void pump(struct lade_dnsres_query *q)
{
    uint64_t now = lade_mono_ms();
    struct lade_dns_action act;
    while (lade_dns_lookup_next_action(&q->lk, now, &act)) {
        switch (act.kind) {
        case LADE_DNS_ACT_CLOSE:
            io_close(&q->io[act.attempt]);
            break;
        case LADE_DNS_ACT_SEND: {
            lade_err err = io_send(q, &act);
            if (err != LADE_OK)
                lade_dns_lookup_on_error(&q->lk, act.attempt, err, now);
            break;
        }
        case LADE_DNS_ACT_DONE:
            deliver_lookup(q);
            return;
        }
    }
    uint64_t due = lade_dns_lookup_next_deadline(&q->lk);
    if (due != UINT64_MAX && lade_timer_arm(q->r->loop, &q->timer, due) != LADE_OK)
        fail_query(q, LADE_ERR_NOMEM);
}

static void on_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_dnsres_query *q = ud;
    if (q->immediate) {
        struct lade_sockaddr addrs[LADE_DNS_ADDR_MAX];
        memcpy(addrs, q->imm_addr, q->imm_n * sizeof addrs[0]);
        struct lade_dnsres_info info = q->imm_info;
        deliver(q, q->imm_err, addrs, q->imm_n, &info);
        return;
    }
    if (q->generation != q->r->servers.generation) {
        /* The server list changed: ask the new servers, within the same deadline. */
        for (size_t k = 0; k < LADE_DNS_MAX_ATTEMPTS; k++)
            io_close(&q->io[k]);
        q->generation = q->r->servers.generation;
        lade_dns_lookup_restart(&q->lk, lade_mono_ms());
    }
    pump(q);
}

static void set_immediate(struct lade_dnsres_query *q, enum lade_dnsres_source src, lade_err err)
{
    q->immediate = true;
    q->imm_err = err;
    memset(&q->imm_info, 0, sizeof q->imm_info);
    q->imm_info.source = src;
    q->imm_info.server = -1;
    q->imm_info.rcode = -1;
}

/* Hosts entries of the family asked for; false when there are none. */
static bool from_hosts(struct lade_dnsres_query *q, int family)
{
    struct lade_dnsres *r = q->r;
    if (!r->hosts)
        return false;
    struct lade_sockaddr found[LADE_DNS_ADDR_MAX];
    size_t n = 0;
    lade_err err =
        lade_resolve_hosts_buf(r->hosts, r->opts.hosts_len, q->name, found, LADE_DNS_ADDR_MAX, &n);
    if (err != LADE_OK && err != LADE_ERR_NOSPACE)
        return false;
    q->imm_n = 0;
    for (size_t i = 0; i < n; i++)
        if (found[i].ss.ss_family == family)
            q->imm_addr[q->imm_n++] = found[i];
    if (q->imm_n == 0)
        return false;
    set_immediate(q, LADE_DNSRES_HOSTS, LADE_OK);
    return true;
}

static bool from_cache(struct lade_dnsres_query *q)
{
    struct lade_dnsres *r = q->r;
    struct lade_dns_result res;
    if (r->opts.no_cache || !lade_dns_cache_get(&r->cache, q->name, q->qtype, lade_mono_ms(), &res))
        return false;
    set_immediate(q, LADE_DNSRES_CACHE, res.err);
    q->imm_n = res.err == LADE_OK ? res.n_addr : 0;
    for (size_t i = 0; i < q->imm_n; i++)
        from_dns_addr(&res.addr[i], &q->imm_addr[i]);
    q->imm_info.ttl_s = res.ttl_s;
    return true;
}

lade_err lade_dnsres_resolve(struct lade_dnsres *r, const char *name, int family, lade_dnsres_cb cb,
                             void *ud, struct lade_dnsres_query **out)
{
    if (out)
        *out = NULL;
    if (!r || !name || !cb || (family != AF_INET && family != AF_INET6))
        return LADE_ERR_INVAL;
    struct lade_sockaddr lit;
    bool literal = lade_sockaddr_parse(name, &lit) == LADE_OK;
    char canon[LADE_DNS_NAME_TEXT_MAX + 1];
    if (!literal && lade_dns_name_canonical(name, canon, sizeof canon) != LADE_OK)
        return LADE_ERR_INVAL;
    struct lade_dnsres_query *q = calloc(1, sizeof *q);
    if (!q)
        return LADE_ERR_NOMEM;
    q->r = r;
    q->cb = cb;
    q->ud = ud;
    q->qtype = family == AF_INET ? LADE_DNS_TYPE_A : LADE_DNS_TYPE_AAAA;
    for (size_t k = 0; k < LADE_DNS_MAX_ATTEMPTS; k++) {
        q->io[k].q = q;
        q->io[k].k = (unsigned)k;
        q->io[k].fd = -1;
    }
    lade_timer_init(&q->timer, on_timer, q);
    if (literal) {
        snprintf(q->name, sizeof q->name, "%s", name);
        set_immediate(q, LADE_DNSRES_LITERAL, LADE_OK);
        q->imm_addr[0] = lit;
        q->imm_n = 1;
    } else {
        memcpy(q->name, canon, sizeof canon);
        if (!from_hosts(q, family) && !from_cache(q)) {
            struct lade_dns_lookup_cfg cfg = {
                .qtype = q->qtype,
                .deadline_ms = r->opts.deadline_ms,
                .attempt_timeout_ms = r->opts.attempt_timeout_ms,
                .tcp_timeout_ms = r->opts.tcp_timeout_ms,
                .use_0x20 = !r->opts.no_0x20,
            };
            q->generation = r->servers.generation;
            lade_dns_lookup_start(&q->lk, &r->servers, &cfg, lade_mono_ms());
        }
    }
    /* Everything starts from the loop, so the callback never runs inside this call. */
    if (lade_timer_arm_in(r->loop, &q->timer, 0) != LADE_OK) {
        free(q);
        return LADE_ERR_NOMEM;
    }
    q->next = r->queries;
    if (q->next)
        q->next->prev = q;
    r->queries = q;
    if (out)
        *out = q;
    return LADE_OK;
}

void lade_dnsres_cancel(struct lade_dnsres_query *q)
{
    if (q)
        destroy(q);
}

/* ---------------------------------------------------------------- resolver */

static lade_err copy_endpoints(const struct lade_sockaddr *in, size_t n,
                               struct lade_dns_endpoint *out, size_t cap, size_t *n_out)
{
    if (n > 0 && !in)
        return LADE_ERR_INVAL;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        struct lade_dns_endpoint ep;
        if (to_endpoint(&in[i], &ep) != LADE_OK)
            return LADE_ERR_INVAL;
        if (m < cap)
            out[m++] = ep;
    }
    *n_out = m;
    return LADE_OK;
}

static void servers_changed(struct lade_dnsres *r)
{
    uint32_t before = r->servers.generation;
    if (!lade_dns_servers_set(&r->servers, r->dhcp, r->n_dhcp, r->fb, r->n_fb) ||
        before == r->servers.generation)
        return;
    lade_dns_cache_clear(&r->cache);
    if (LADE_LOG_ENABLED(LADE_LOG_INFO)) {
        char line[LADE_DNS_MAX_SERVERS * (LADE_SOCKADDR_STRLEN + 8)] = "";
        size_t w = 0;
        for (size_t i = 0; i < r->servers.n && w < sizeof line; i++) {
            char b[LADE_SOCKADDR_STRLEN];
            struct lade_sockaddr a;
            from_endpoint(&r->servers.s[i].ep, &a);
            int k = snprintf(line + w, sizeof line - w, "%s%s%s", i ? " " : "", fmt_addr(&a, b),
                             r->servers.s[i].fallback ? "(fallback)" : "");
            if (k > 0)
                w += (size_t)k;
        }
        LOG_I(MOD, "servers: %s", r->servers.n ? line : "none");
    }
    /* Lookups in flight start over from the loop (never from inside this call). Their
     * sockets close now: the policy's server indexes refer to the new table from here on, so
     * nothing may reach it from an old query before the restart (on_timer). */
    for (struct lade_dnsres_query *q = r->queries; q; q = q->next) {
        if (q->immediate)
            continue;
        for (size_t k = 0; k < LADE_DNS_MAX_ATTEMPTS; k++)
            io_close(&q->io[k]);
        if (lade_timer_arm_in(r->loop, &q->timer, 0) != LADE_OK)
            LOG_W(MOD, "%s: cannot restart the lookup now (no memory)", q->name);
    }
}

lade_err lade_dnsres_set_dhcp_servers(struct lade_dnsres *r, const struct lade_sockaddr *servers,
                                      size_t n)
{
    if (!r)
        return LADE_ERR_INVAL;
    struct lade_dns_endpoint eps[LADE_DNS_MAX_DHCP];
    size_t m;
    lade_err err = copy_endpoints(servers, n, eps, LADE_DNS_MAX_DHCP, &m);
    if (err != LADE_OK)
        return err;
    memcpy(r->dhcp, eps, m * sizeof eps[0]);
    r->n_dhcp = m;
    servers_changed(r);
    return LADE_OK;
}

lade_err lade_dnsres_set_fallbacks(struct lade_dnsres *r, const struct lade_sockaddr *servers,
                                   size_t n)
{
    if (!r)
        return LADE_ERR_INVAL;
    struct lade_dns_endpoint eps[LADE_DNS_MAX_FALLBACK];
    size_t m;
    lade_err err = copy_endpoints(servers, n, eps, LADE_DNS_MAX_FALLBACK, &m);
    if (err != LADE_OK)
        return err;
    memcpy(r->fb, eps, m * sizeof eps[0]);
    r->n_fb = m;
    servers_changed(r);
    return LADE_OK;
}

lade_err lade_dnsres_new(struct lade_loop *loop, const struct lade_dnsres_opts *opts,
                         struct lade_dnsres **out)
{
    if (!loop || !out)
        return LADE_ERR_INVAL;
    *out = NULL;
    struct lade_dnsres *r = calloc(1, sizeof *r);
    if (!r)
        return LADE_ERR_NOMEM;
    r->loop = loop;
    if (opts)
        r->opts = *opts;
    r->opts.fallbacks = NULL;
    r->opts.n_fallbacks = 0;
    r->opts.hosts_text = NULL;
    lade_dns_servers_init(&r->servers);
    lade_dns_cache_clear(&r->cache);
    lade_err err = LADE_OK;
    if (opts && opts->hosts_text && opts->hosts_len > 0) {
        r->hosts = malloc(opts->hosts_len);
        if (!r->hosts) {
            err = LADE_ERR_NOMEM;
            goto out;
        }
        memcpy(r->hosts, opts->hosts_text, opts->hosts_len);
        r->opts.hosts_len = opts->hosts_len;
    } else {
        r->opts.hosts_len = 0;
    }
    if (opts)
        err = lade_dnsres_set_fallbacks(r, opts->fallbacks, opts->n_fallbacks);
out:
    if (err != LADE_OK) {
        lade_dnsres_free(r);
        return err;
    }
    *out = r;
    return LADE_OK;
}

void lade_dnsres_free(struct lade_dnsres *r)
{
    if (!r)
        return;
    while (r->queries)
        destroy(r->queries);
    free(r->hosts);
    free(r);
}

void lade_dnsres_flush(struct lade_dnsres *r)
{
    if (r)
        lade_dns_cache_clear(&r->cache);
}

size_t lade_dnsres_server_count(const struct lade_dnsres *r)
{
    return r ? r->servers.n : 0;
}

lade_err lade_dnsres_server_info(const struct lade_dnsres *r, size_t i,
                                 struct lade_dnsres_server_info *out)
{
    if (!r || !out)
        return LADE_ERR_INVAL;
    if (i >= r->servers.n)
        return LADE_ERR_NOT_FOUND;
    const struct lade_dns_server *s = &r->servers.s[i];
    memset(out, 0, sizeof *out);
    from_endpoint(&s->ep, &out->addr);
    out->fallback = s->fallback;
    out->down = lade_dns_server_down(s, lade_mono_ms());
    out->no_0x20 = s->no_0x20;
    out->srtt_ms = s->srtt_ms;
    out->fails = s->fails;
    out->sent = s->sent;
    out->answered = s->answered;
    out->errors = s->errors;
    out->timeouts = s->timeouts;
    out->last_rcode = s->last_rcode;
    out->last_answer_ms = s->last_answer_ms;
    return LADE_OK;
}

/* One "addr", "addr:port" or "[v6]:port" of length len. */
static lade_err parse_one(const char *s, size_t len, struct lade_sockaddr *out)
{
    char buf[LADE_SOCKADDR_STRLEN];
    if (len == 0 || len >= sizeof buf)
        return LADE_ERR_INVAL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *port = NULL;
    if (buf[0] == '[') {
        char *close_br = strchr(buf, ']');
        if (!close_br)
            return LADE_ERR_INVAL;
        if (close_br[1] == ':')
            port = close_br + 2;
        else if (close_br[1] != '\0')
            return LADE_ERR_INVAL;
        close_br[1] = '\0';
    } else {
        char *colon = strchr(buf, ':');
        if (colon && !strchr(colon + 1, ':')) { /* exactly one colon: IPv4 with a port */
            *colon = '\0';
            port = colon + 1;
        }
    }
    if (lade_sockaddr_parse(buf, out) != LADE_OK)
        return LADE_ERR_INVAL;
    unsigned long p = LADE_DNS_PORT;
    if (port) {
        char *end;
        if (*port < '0' || *port > '9')
            return LADE_ERR_INVAL;
        p = strtoul(port, &end, 10);
        if (*end != '\0' || p > 65535)
            return LADE_ERR_INVAL;
        if (p == 0)
            p = LADE_DNS_PORT;
    }
    lade_sockaddr_set_port(out, (uint16_t)p);
    return LADE_OK;
}

lade_err lade_dnsres_parse_servers(const char *text, struct lade_sockaddr *out, size_t cap,
                                   size_t *n)
{
    if (!text || !n || (cap > 0 && !out))
        return LADE_ERR_INVAL;
    *n = 0;
    const char *p = text;
    for (;;) {
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            return LADE_OK;
        size_t len = strcspn(p, ", \t");
        struct lade_sockaddr a;
        if (parse_one(p, len, &a) != LADE_OK)
            return LADE_ERR_INVAL;
        if (*n == cap)
            return LADE_ERR_NOSPACE;
        out[(*n)++] = a;
        p += len;
    }
}
