/* The DHCP probe of lade-check (include/lade/dhcpprobe.h, docs/dhcpprobe.md): DISCOVERs from
 * made-up clients and one INFORM through a packet socket, every OFFER and ACK collected, nothing
 * ever REQUESTed. Messages are built and decoded by the pure codec (src/proto/dhcp); this file
 * moves bytes, keeps the tally and the timers. */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_arp.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "dhcp_pkt.h"
#include "lade/clock.h"
#include "lade/dhcpprobe.h"
#include "lade/log.h"

#define MOD "dhcpprobe"

/* Sending is paced: BATCH messages, then PACE_MS, so 256 DISCOVERs do not hit the server (and our
 * socket buffer with its answers) in one burst. */
#define BATCH   16u
#define PACE_MS 10u
/* At most this many datagrams per wake-up, so one busy socket cannot starve the loop. */
#define BURST 64
/* Room for K = 256 OFFERs arriving together (root may exceed rmem_max: SO_RCVBUFFORCE). */
#define RCVBUF   (1 << 20)
#define HOSTNAME "lade-check"

struct lade_dhcpprobe {
    struct lade_loop *loop;
    struct lade_dhcpprobe_cfg cfg;
    lade_dhcpprobe_done_cb done;
    void *ud;
    int ifindex;
    int fd; /* -1 when closed */
    struct lade_timer t_send, t_end;
    uint64_t start_ms;
    uint64_t end_ms; /* when t_end fires */
    unsigned round;  /* 0: first transmissions; 1: the retransmission */
    unsigned next;   /* next question of the round: 0 the INFORM, 1..K the clients */
    bool inform_wanted;
    bool finished;
    /* [0] INFORM, [1 + i] client i: first transmission (0 = not yet) */
    uint64_t *first_ms;
    struct lade_dhcpprobe_client *clients;
    uint32_t *addrs; /* distinct offered addresses */
    unsigned n_addrs, cap_addrs;
    struct lade_dhcpprobe_result res;
};

void lade_dhcpprobe_cfg_default(struct lade_dhcpprobe_cfg *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->clients = 1;
    cfg->inform = true;
    cfg->timeout_ms = LADE_DHCPPROBE_TIMEOUT_MS;
    cfg->settle_ms = LADE_DHCPPROBE_SETTLE_MS;
}

static const char *ip_str(uint32_t a, char buf[16])
{
    snprintf(buf, 16, "%u.%u.%u.%u", (unsigned)(a >> 24), (unsigned)(a >> 16) & 0xffu,
             (unsigned)(a >> 8) & 0xffu, (unsigned)a & 0xffu);
    return buf;
}

static bool link_local(uint32_t a)
{
    return (a >> 16) == 0xa9feu; /* 169.254/16: no DHCP server serves it */
}

/* ---------------------------------------------------------------- tally */

static bool all_answered(const struct lade_dhcpprobe *p)
{
    return p->res.clients_answered == p->res.n_clients &&
           (!p->inform_wanted || p->res.inform.answered);
}

static void fill_answer(struct lade_dhcpprobe_answer *a, const struct lade_dhcp_reply *r,
                        uint32_t src, const uint8_t src_mac[6], uint64_t first_ms, uint64_t now)
{
    memset(a, 0, sizeof *a);
    a->type = r->type;
    a->addr = r->yiaddr;
    a->has_server_id = r->has_server_id;
    a->server_id = r->server_id;
    a->src = src;
    memcpy(a->src_mac, src_mac, 6);
    a->has_lease = r->has_lease;
    a->lease_s = r->lease_s;
    a->has_t1 = r->has_t1;
    a->t1_s = r->t1_s;
    a->has_t2 = r->has_t2;
    a->t2_s = r->t2_s;
    a->has_subnet = r->has_subnet;
    a->subnet_mask = r->subnet_mask;
    memcpy(a->routers, r->routers, sizeof a->routers);
    memcpy(a->dns, r->dns, sizeof a->dns);
    memcpy(a->ntp, r->ntp, sizeof a->ntp);
    a->n_routers = r->n_routers;
    a->n_dns = r->n_dns;
    a->n_ntp = r->n_ntp;
    uint64_t rtt = now > first_ms ? now - first_ms : 0;
    a->rtt_ms = rtt > UINT32_MAX ? UINT32_MAX : (uint32_t)rtt;
}

/* The server of an answer: by option 54, else by source address (RFC 2131 §4.3.1 makes 54 a
 * MUST; a server without it is still a server on this LAN). */
static void count_server(struct lade_dhcpprobe *p, const struct lade_dhcpprobe_answer *a)
{
    struct lade_dhcpprobe_result *r = &p->res;
    uint32_t id = a->has_server_id ? a->server_id : a->src;
    struct lade_dhcpprobe_server *s = NULL;
    for (unsigned i = 0; i < r->n_servers; i++) {
        if (r->servers[i].id == id) {
            s = &r->servers[i];
            break;
        }
    }
    if (!s) {
        char b[16];
        if (r->n_servers == LADE_DHCPPROBE_MAX_SERVERS) {
            r->servers_more = true;
            return;
        }
        s = &r->servers[r->n_servers++];
        memset(s, 0, sizeof *s);
        s->id = id;
        s->src = a->src;
        memcpy(s->src_mac, a->src_mac, 6);
        LOG_D(MOD, "%s: server %s answers (%u so far)", r->ifname, ip_str(id, b), r->n_servers);
    }
    if (a->type == LADE_DHCP_OFFER) {
        if (s->offers++ == 0)
            s->offer = *a;
    } else {
        if (s->acks++ == 0)
            s->ack = *a;
    }
}

static void count_addr(struct lade_dhcpprobe *p, uint32_t addr)
{
    for (unsigned i = 0; i < p->n_addrs; i++)
        if (p->addrs[i] == addr)
            return;
    if (p->n_addrs < p->cap_addrs)
        p->addrs[p->n_addrs++] = addr;
    p->res.distinct_addrs = p->n_addrs;
}

static void arm(struct lade_dhcpprobe *p, struct lade_timer *t, uint64_t due_ms)
{
    if (lade_timer_arm(p->loop, t, due_ms) != LADE_OK)
        LOG_W(MOD, "%s: cannot arm a timer (out of memory)", p->res.ifname);
}

/* Everything asked has an answer: end after the settle time (a second server's OFFER), never after
 * the timeout. */
static void maybe_settle(struct lade_dhcpprobe *p, uint64_t now)
{
    if (!all_answered(p))
        return;
    uint64_t end = p->start_ms + p->cfg.timeout_ms;
    uint64_t due = now + p->cfg.settle_ms;
    if (due > end)
        due = end;
    if (due < p->end_ms) {
        p->end_ms = due;
        arm(p, &p->t_end, due);
    }
}

/* One UDP payload from port 67 to port 68. */
static void on_reply(struct lade_dhcpprobe *p, const uint8_t *buf, size_t len, uint32_t src,
                     const uint8_t src_mac[6], uint64_t now)
{
    struct lade_dhcpprobe_result *r = &p->res;
    struct lade_dhcp_reply rep;
    char b1[16], b2[16];
    lade_err e;

    if (r->inform.sent) {
        e = lade_dhcp_decode_inform_ack(buf, len, r->inform.xid, r->if_mac, &rep);
        if (e == LADE_OK) {
            struct lade_dhcpprobe_answer a;
            fill_answer(&a, &rep, src, src_mac, p->first_ms[0], now);
            if (r->inform.acks++ == 0) {
                r->inform.answered = true;
                r->inform.ack = a;
            }
            count_server(p, &a);
            LOG_D(MOD, "%s: ACK to the INFORM from %s (%s) after %u ms", r->ifname,
                  ip_str(a.has_server_id ? a.server_id : src, b1), ip_str(src, b2), a.rtt_ms);
            maybe_settle(p, now);
            return;
        }
        if (e != LADE_ERR_NOT_FOUND) {
            /* ours, but not an ACK we take: an OFFER/NAK (well-formed) or malformed */
            if (lade_dhcp_decode_reply(buf, len, r->inform.xid, r->if_mac, &rep) == LADE_OK)
                r->unexpected++;
            else
                r->malformed++;
            return;
        }
    }
    for (unsigned i = 0; i < r->n_clients; i++) {
        struct lade_dhcpprobe_client *c = &p->clients[i];
        e = lade_dhcp_decode_reply(buf, len, c->xid, c->mac, &rep);
        if (e == LADE_ERR_NOT_FOUND)
            continue;
        if (e != LADE_OK) {
            r->malformed++;
            return;
        }
        if (rep.type != LADE_DHCP_OFFER) {
            /* an ACK (rapid commit, not asked for) or a NAK to a DISCOVER */
            r->unexpected++;
            return;
        }
        struct lade_dhcpprobe_answer a;
        fill_answer(&a, &rep, src, src_mac, p->first_ms[1 + i], now);
        if (c->offers++ == 0) {
            c->answered = true;
            c->offer = a;
            r->clients_answered++;
        }
        count_server(p, &a);
        count_addr(p, a.addr);
        LOG_D(MOD, "%s: OFFER %s for client %u from %s after %u ms", r->ifname, ip_str(a.addr, b1),
              i, ip_str(a.has_server_id ? a.server_id : src, b2), a.rtt_ms);
        maybe_settle(p, now);
        return;
    }
    r->others++; /* another client's (broadcast) answer */
}

/* ---------------------------------------------------------------- socket */

/* Classic BPF on a SOCK_DGRAM packet socket (offsets from the IPv4 header): unfragmented UDP to
 * port 68 only (the same filter as the DHCP client's, src/port/linux/dhcp_linux.c). */
static int attach_filter(int fd)
{
    static struct sock_filter code[] = {
        BPF_STMT(BPF_LD + BPF_B + BPF_ABS, 9), /* protocol */
        BPF_JUMP(BPF_JMP + BPF_JEQ + BPF_K, IPPROTO_UDP, 0, 6),
        BPF_STMT(BPF_LD + BPF_H + BPF_ABS, 6),              /* flags + fragment offset */
        BPF_JUMP(BPF_JMP + BPF_JSET + BPF_K, 0x3fff, 4, 0), /* MF or offset: drop */
        BPF_STMT(BPF_LDX + BPF_B + BPF_MSH, 0),             /* X = IP header length */
        BPF_STMT(BPF_LD + BPF_H + BPF_IND, 2),              /* UDP destination port */
        BPF_JUMP(BPF_JMP + BPF_JEQ + BPF_K, LADE_DHCP_CLIENT_PORT, 0, 1),
        BPF_STMT(BPF_RET + BPF_K, 0xffff),
        BPF_STMT(BPF_RET + BPF_K, 0),
    };
    struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
    return setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
}

static void on_pkt(struct lade_loop *loop, int fd, uint32_t events, void *ud)
{
    (void)loop;
    (void)events;
    struct lade_dhcpprobe *p = ud;
    uint8_t buf[LADE_DHCP_MAX_REPLY + 64];
    for (int i = 0; i < BURST && !p->finished; i++) {
        struct lade_ipv4_udp u;
        uint8_t mac[6];
        int got = lade_dhcp_pkt_recv(fd, buf, sizeof buf, &u, mac);
        if (got < 0)
            return; /* EAGAIN, or an error the next read reports again */
        if (got == 0)
            continue;
        on_reply(p, u.payload, u.len, u.src, mac, lade_mono_ms());
    }
}

static void note_send_error(struct lade_dhcpprobe *p, int err, const char *what)
{
    if (p->res.send_error == LADE_OK) {
        p->res.send_error = LADE_ERR_IO;
        p->res.send_errno = err;
        LOG_W(MOD, "%s: cannot send the %s: %s", p->res.ifname, what, strerror(err));
    }
}

/* Builds and broadcasts one message from src:68 to 255.255.255.255:67. */
static bool send_msg(struct lade_dhcpprobe *p, const struct lade_dhcp_msg *m, uint32_t src,
                     const char *what)
{
    uint8_t dhcp[LADE_DHCP_TX_MAX];
    uint8_t frame[LADE_IPV4_UDP_HDR + LADE_DHCP_TX_MAX];
    size_t n, len;
    if (lade_dhcp_encode(m, dhcp, sizeof dhcp, &n) != LADE_OK ||
        lade_ipv4_udp_encode(src, LADE_IPV4_BROADCAST, LADE_DHCP_CLIENT_PORT, LADE_DHCP_SERVER_PORT,
                             dhcp, n, frame, sizeof frame, &len) != LADE_OK) {
        note_send_error(p, EINVAL, what); /* cannot happen with the values built here */
        return false;
    }
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_IP);
    sll.sll_ifindex = p->ifindex;
    sll.sll_halen = 6;
    memset(sll.sll_addr, 0xff, 6);
    if (sendto(p->fd, frame, len, 0, (struct sockaddr *)&sll, sizeof sll) < 0) {
        note_send_error(p, errno, what);
        return false;
    }
    return true;
}

static uint16_t secs_since(uint64_t first_ms, uint64_t now)
{
    uint64_t s = first_ms && now > first_ms ? (now - first_ms) / 1000 : 0;
    return s > UINT16_MAX ? UINT16_MAX : (uint16_t)s;
}

/* Question q of the current round: 0 the INFORM, 1 + i client i. False when nothing was due. */
static bool send_question(struct lade_dhcpprobe *p, unsigned q, uint64_t now)
{
    struct lade_dhcpprobe_result *r = &p->res;
    struct lade_dhcp_msg m;
    memset(&m, 0, sizeof m);
    m.hostname = HOSTNAME;
    m.hostname_len = sizeof HOSTNAME - 1;
    m.max_msg_size = 1500; /* what a packet socket on Ethernet receives unfragmented */
    m.secs = secs_since(p->first_ms[q], now);
    if (q == 0) {
        if (!p->inform_wanted || r->inform.answered)
            return false;
        m.kind = LADE_DHCP_KIND_INFORM;
        m.xid = r->inform.xid;
        m.addr = r->inform.ciaddr;
        memcpy(m.chaddr, r->if_mac, 6);
        if (!send_msg(p, &m, r->inform.ciaddr, "INFORM"))
            return true;
        r->inform.sent = true;
    } else {
        struct lade_dhcpprobe_client *c = &p->clients[q - 1];
        if (c->answered)
            return false;
        m.kind = LADE_DHCP_KIND_DISCOVER;
        m.xid = c->xid;
        /* the OFFER goes to a MAC that is not ours: only a broadcast reaches us (RFC 2131 §4.1) */
        m.broadcast = true;
        memcpy(m.chaddr, c->mac, 6);
        if (!send_msg(p, &m, 0, "DISCOVER"))
            return true;
        c->sent++;
    }
    if (!p->first_ms[q])
        p->first_ms[q] = now;
    return true;
}

static void on_send(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_dhcpprobe *p = ud;
    uint64_t now = lade_mono_ms();
    unsigned total = 1 + p->res.n_clients, sent = 0;
    while (p->next < total && sent < BATCH) {
        if (send_question(p, p->next, now))
            sent++;
        p->next++;
    }
    if (p->next < total) {
        arm(p, &p->t_send, now + PACE_MS);
        return;
    }
    if (p->round == 0) {
        if (p->inform_wanted && !p->res.inform.sent)
            p->inform_wanted = false; /* could not be sent: nothing to wait for */
        LOG_D(MOD, "%s: %u DISCOVERs%s sent", p->res.ifname, p->res.n_clients,
              p->res.inform.sent ? " and an INFORM" : "");
        p->round = 1;
        p->next = 0;
        arm(p, &p->t_send, p->start_ms + p->cfg.timeout_ms / 2);
        maybe_settle(p, now); /* nothing to ask at all */
    }
}

static void close_socket(struct lade_dhcpprobe *p)
{
    if (p->fd < 0)
        return;
    lade_loop_unwatch(p->loop, p->fd);
    close(p->fd);
    p->fd = -1;
}

static void on_end(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_dhcpprobe *p = ud;
    struct lade_dhcpprobe_result *r = &p->res;
    uint64_t now = lade_mono_ms();
    p->finished = true;
    lade_timer_cancel(p->loop, &p->t_send);
    close_socket(p);
    r->complete = all_answered(p);
    r->elapsed_ms = (uint32_t)(now - p->start_ms);
    LOG_I(MOD,
          "%s: %u of %u new clients offered an address (%u distinct), INFORM %s, %u server(s), "
          "%u ms%s",
          r->ifname, r->clients_answered, r->n_clients, r->distinct_addrs,
          r->inform.answered ? "answered" : (r->inform.sent ? "unanswered" : "not sent"),
          r->n_servers, r->elapsed_ms, r->complete ? "" : " (timeout)");
    p->done(p->ud, r); /* last: the callback may free p */
}

/* ---------------------------------------------------------------- start / free */

/* Flags, MAC and primary IPv4 address of the interface (ioctl on a throw-away UDP socket: no port
 * is bound). */
static lade_err if_info(struct lade_dhcpprobe *p, int *os_errno)
{
    struct lade_dhcpprobe_result *r = &p->res;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        *os_errno = errno;
        return LADE_ERR_IO;
    }
    lade_err e = LADE_OK;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    memcpy(ifr.ifr_name, r->ifname, strlen(r->ifname));
    if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
        *os_errno = errno;
        e = errno == ENODEV ? LADE_ERR_NOT_FOUND : LADE_ERR_IO;
        goto out;
    }
    if (!(ifr.ifr_flags & IFF_UP)) {
        e = LADE_ERR_STATE;
        goto out;
    }
    r->if_carrier = (ifr.ifr_flags & IFF_RUNNING) != 0;
    if (ioctl(s, SIOCGIFHWADDR, &ifr) < 0) {
        *os_errno = errno;
        e = LADE_ERR_IO;
        goto out;
    }
    if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) {
        e = LADE_ERR_STATE; /* DHCP over Ethernet only (htype 1) */
        goto out;
    }
    memcpy(r->if_mac, ifr.ifr_hwaddr.sa_data, 6);
    if (ioctl(s, SIOCGIFADDR, &ifr) == 0 && ifr.ifr_addr.sa_family == AF_INET) {
        struct sockaddr_in sin;
        memcpy(&sin, &ifr.ifr_addr, sizeof sin);
        r->if_addr = ntohl(sin.sin_addr.s_addr);
    } /* else EADDRNOTAVAIL: no address, no INFORM */
out:
    close(s);
    return e;
}

static lade_err open_socket(struct lade_dhcpprobe *p, int *os_errno)
{
    int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *os_errno = errno;
        return LADE_ERR_IO;
    }
    int one = 1, size = RCVBUF;
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_IP);
    sll.sll_ifindex = p->ifindex;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size); /* best effort */
    /* the filter before the bind, so no unfiltered packet is queued */
    if (attach_filter(fd) < 0 || setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one) < 0 ||
        bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
        *os_errno = errno;
        close(fd);
        return LADE_ERR_IO;
    }
    lade_err e = lade_loop_watch(p->loop, fd, LADE_IO_READ, on_pkt, p);
    if (e != LADE_OK) {
        close(fd);
        return e;
    }
    p->fd = fd;
    return LADE_OK;
}

static uint32_t fresh_xid(const struct lade_dhcpprobe *p, unsigned n_used)
{
    for (;;) {
        uint32_t x = lade_random_u32();
        bool dup = x == 0 || x == p->res.inform.xid;
        for (unsigned i = 0; i < n_used && !dup; i++)
            dup = p->clients[i].xid == x;
        if (!dup)
            return x;
    }
}

lade_err lade_dhcpprobe_start(struct lade_loop *loop, const struct lade_dhcpprobe_cfg *cfg,
                              lade_dhcpprobe_done_cb done, void *ud, struct lade_dhcpprobe **out,
                              int *os_errno)
{
    int scratch_errno;
    if (!os_errno)
        os_errno = &scratch_errno;
    *os_errno = 0;
    if (out)
        *out = NULL;
    if (!loop || !cfg || !cfg->ifname || !done || !out ||
        cfg->clients > LADE_DHCPPROBE_MAX_CLIENTS || cfg->timeout_ms < 100 ||
        (cfg->inform_addr && !lade_ipv4_unicast(cfg->inform_addr)))
        return LADE_ERR_INVAL;
    size_t nlen = strlen(cfg->ifname);
    if (nlen == 0 || nlen >= LADE_DHCPPROBE_IFNAME_MAX)
        return LADE_ERR_INVAL;

    lade_err e = LADE_ERR_NOMEM;
    struct lade_dhcpprobe *p = calloc(1, sizeof *p);
    if (!p)
        return LADE_ERR_NOMEM;
    p->loop = loop;
    p->cfg = *cfg;
    p->cfg.ifname = p->res.ifname;
    memcpy(p->res.ifname, cfg->ifname, nlen + 1);
    p->done = done;
    p->ud = ud;
    p->fd = -1;
    lade_timer_init(&p->t_send, on_send, p);
    lade_timer_init(&p->t_end, on_end, p);
    p->first_ms = calloc(1 + cfg->clients, sizeof *p->first_ms);
    p->cap_addrs = (cfg->clients ? cfg->clients : 1) * 4;
    p->addrs = calloc(p->cap_addrs, sizeof *p->addrs);
    p->clients = calloc(cfg->clients ? cfg->clients : 1, sizeof *p->clients);
    if (!p->first_ms || !p->addrs || !p->clients)
        goto fail;

    p->ifindex = (int)if_nametoindex(p->res.ifname);
    if (p->ifindex == 0) {
        *os_errno = errno;
        e = errno == ENODEV || errno == ENXIO ? LADE_ERR_NOT_FOUND : LADE_ERR_IO;
        goto fail;
    }
    /* the socket first: without CAP_NET_RAW the answer is "needs root", whatever the link */
    e = open_socket(p, os_errno);
    if (e != LADE_OK)
        goto fail;
    e = if_info(p, os_errno);
    if (e != LADE_OK)
        goto fail;

    /* made-up clients: 0a:de:c0:RR:RR:II — 0x0a is unicast (bit 0 clear) and locally administered
     * (bit 1 set), so no real device has it; RR:RR tells probes apart */
    uint32_t run = lade_random_u32();
    struct lade_dhcpprobe_result *r = &p->res;
    r->clients = p->clients;
    r->n_clients = cfg->clients;
    if (cfg->inform) {
        uint32_t a = cfg->inform_addr ? cfg->inform_addr : r->if_addr;
        if (lade_ipv4_unicast(a) && !(cfg->inform_addr == 0 && link_local(a))) {
            p->inform_wanted = true;
            r->inform.ciaddr = a;
            r->inform.xid = fresh_xid(p, 0);
        }
    }
    for (unsigned i = 0; i < cfg->clients; i++) {
        struct lade_dhcpprobe_client *c = &p->clients[i];
        const uint8_t mac[6] = {0x0a, 0xde, 0xc0, (uint8_t)(run >> 8), (uint8_t)run, (uint8_t)i};
        memcpy(c->mac, mac, 6);
        c->xid = fresh_xid(p, i);
    }

    p->start_ms = lade_mono_ms();
    p->end_ms = p->start_ms + cfg->timeout_ms;
    e = lade_timer_arm(loop, &p->t_send, p->start_ms);
    if (e == LADE_OK)
        e = lade_timer_arm(loop, &p->t_end, p->end_ms);
    if (e != LADE_OK)
        goto fail;
    char b[16];
    LOG_D(MOD,
          "%s: probing with %u new client(s) 0a:de:c0:%02x:%02x:xx%s%s, timeout "
          "%u ms",
          r->ifname, r->n_clients, (run >> 8) & 0xffu, run & 0xffu,
          p->inform_wanted ? ", INFORM from " : "",
          p->inform_wanted ? ip_str(r->inform.ciaddr, b) : "", cfg->timeout_ms);
    *out = p;
    return LADE_OK;
fail:
    lade_dhcpprobe_free(p);
    return e;
}

const struct lade_dhcpprobe_result *lade_dhcpprobe_result(const struct lade_dhcpprobe *p)
{
    return p ? &p->res : NULL;
}

void lade_dhcpprobe_free(struct lade_dhcpprobe *p)
{
    if (!p)
        return;
    lade_timer_cancel(p->loop, &p->t_send);
    lade_timer_cancel(p->loop, &p->t_end);
    close_socket(p);
    free(p->first_ms);
    free(p->addrs);
    free(p->clients);
    free(p);
}
