/* The Linux shell of the DHCP client, ARP conflict detection and IPv4 link-local
 * (include/lade/netif.h): packet sockets, a UDP socket, rtnetlink, timers on lade_loop.
 * All protocol decisions are in the pure machines (src/proto/dhcp, src/proto/ipv4ll); this file
 * moves bytes and carries out their actions. docs/dhcp.md. */
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "dhcp_pkt.h"
#include "lade/clock.h"
#include "lade/log.h"
#include "lade/netif.h"

#define MOD   "netif"
#define NEVER UINT64_MAX

struct lade_netif {
    struct lade_loop *loop;
    struct lade_netif_cfg cfg;
    char ifname[IF_NAMESIZE];
    int ifindex;
    uint8_t mac[6];
    struct lade_nl *nl, *mon;
    int pkt_fd, udp_fd, arp_fd; /* -1 when closed */
    bool carrier, ever_started, freeing;
    struct lade_dhcp dhcp;
    struct lade_acd acd; /* the DHCP address */
    bool acd_active;
    struct lade_ipv4ll ll;
    bool ll_active;
    struct lade_timer t_dhcp, t_acd, t_ll;
    /* what is configured in the kernel */
    uint32_t dhcp_addr, dhcp_router;
    uint8_t dhcp_prefix;
    uint32_t ll_addr;
    lade_err last_os_error;
};

static void dhcp_apply(struct lade_netif *n, const struct lade_dhcp_actions *a);
static void acd_apply(struct lade_netif *n, const struct lade_acd_actions *a);
static void ll_apply(struct lade_netif *n, const struct lade_ipv4ll_actions *a);

static uint32_t rnd(void *ud)
{
    (void)ud;
    return lade_random_u32();
}

static const char *ip_str(uint32_t a, char buf[16])
{
    snprintf(buf, 16, "%u.%u.%u.%u", (unsigned)(a >> 24), (unsigned)(a >> 16) & 0xffu,
             (unsigned)(a >> 8) & 0xffu, (unsigned)a & 0xffu);
    return buf;
}

static void os_error(struct lade_netif *n, lade_err e, const char *what)
{
    n->last_os_error = e;
    LOG_W(MOD, "%s: %s: %s (%s)", n->ifname, what, lade_strerror(e), strerror(errno));
}

static void arm(struct lade_netif *n, struct lade_timer *t, uint64_t due_ms)
{
    if (due_ms == NEVER) {
        lade_timer_cancel(n->loop, t);
        return;
    }
    if (lade_timer_arm(n->loop, t, due_ms) != LADE_OK)
        os_error(n, LADE_ERR_NOMEM, "timer");
}

static void notify(struct lade_netif *n)
{
    if (n->freeing || !n->cfg.on_change)
        return;
    struct lade_netif_status st;
    lade_netif_status(n, &st);
    n->cfg.on_change(n->cfg.ud, &st);
}

/* ---------------------------------------------------------------- sockets */

static void close_fd(struct lade_netif *n, int *fd)
{
    if (*fd < 0)
        return;
    lade_loop_unwatch(n->loop, *fd);
    close(*fd);
    *fd = -1;
}

static struct sockaddr_ll link_addr(const struct lade_netif *n, uint16_t proto, bool bcast)
{
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(proto);
    sll.sll_ifindex = n->ifindex;
    if (bcast) {
        sll.sll_halen = 6;
        memset(sll.sll_addr, 0xff, 6);
    }
    return sll;
}

/* Classic BPF on a SOCK_DGRAM packet socket (offsets from the IPv4 header): unfragmented UDP
 * to port 68 only, so the socket does not wake up for the rest of the traffic. */
static int attach_dhcp_filter(int fd)
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

static void on_pkt(struct lade_loop *loop, int fd, uint32_t events, void *ud);
static void on_udp(struct lade_loop *loop, int fd, uint32_t events, void *ud);
static void on_arp(struct lade_loop *loop, int fd, uint32_t events, void *ud);

/* A packet socket bound to the interface for proto; the filter (if any) is attached before the
 * bind so that no unfiltered packet is queued. */
static int open_packet(struct lade_netif *n, uint16_t proto, bool dhcp_filter, lade_io_cb cb)
{
    int fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    struct sockaddr_ll sll = link_addr(n, proto, false);
    if ((dhcp_filter && attach_dhcp_filter(fd) < 0) ||
        (dhcp_filter && setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &one, sizeof one) < 0) ||
        bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0 ||
        lade_loop_watch(n->loop, fd, LADE_IO_READ, cb, n) != LADE_OK) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static bool ensure_pkt(struct lade_netif *n)
{
    if (n->pkt_fd >= 0)
        return true;
    n->pkt_fd = open_packet(n, ETH_P_IP, true, on_pkt);
    if (n->pkt_fd < 0)
        os_error(n, LADE_ERR_IO, "DHCP packet socket");
    return n->pkt_fd >= 0;
}

static bool ensure_udp(struct lade_netif *n)
{
    if (n->udp_fd >= 0)
        return true;
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(LADE_DHCP_CLIENT_PORT)};
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, n->ifname, (socklen_t)strlen(n->ifname)) < 0 ||
        bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        lade_loop_watch(n->loop, fd, LADE_IO_READ, on_udp, n) != LADE_OK) {
        os_error(n, LADE_ERR_IO, "DHCP UDP socket");
        if (fd >= 0)
            close(fd);
        return false;
    }
    n->udp_fd = fd;
    return true;
}

/* Packet socket while there is no lease; the UDP socket while there is one (docs/dhcp.md). */
static void reconcile_sockets(struct lade_netif *n)
{
    enum lade_dhcp_state st = lade_dhcp_state(&n->dhcp);
    bool lease = lade_dhcp_lease(&n->dhcp) != NULL;
    bool running = st != LADE_DHCP_STOPPED && st != LADE_DHCP_LINK_DOWN;
    if (running && !lease)
        (void)ensure_pkt(n);
    else
        close_fd(n, &n->pkt_fd);
    if (lease)
        (void)ensure_udp(n);
    else
        close_fd(n, &n->udp_fd);
}

/* ---------------------------------------------------------------- sending */

static void dhcp_send(struct lade_netif *n, const struct lade_dhcp_actions *a)
{
    char s[16];
    if (a->dst == LADE_IPV4_BROADCAST && a->src == 0) {
        /* no address to send from: build IPv4 + UDP ourselves */
        uint8_t frame[LADE_IPV4_UDP_HDR + LADE_DHCP_TX_MAX];
        size_t len;
        if (!ensure_pkt(n))
            return;
        if (lade_ipv4_udp_encode(0, LADE_IPV4_BROADCAST, LADE_DHCP_CLIENT_PORT,
                                 LADE_DHCP_SERVER_PORT, a->pkt, a->pkt_len, frame, sizeof frame,
                                 &len) != LADE_OK)
            return;
        struct sockaddr_ll sll = link_addr(n, ETH_P_IP, true);
        if (sendto(n->pkt_fd, frame, len, 0, (struct sockaddr *)&sll, sizeof sll) < 0)
            os_error(n, LADE_ERR_IO, "send DHCP (packet socket)");
        LOG_D(MOD, "%s: %s sent (broadcast)", n->ifname, lade_dhcp_type_name(a->type));
        return;
    }
    if (!ensure_udp(n))
        return;
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons(LADE_DHCP_SERVER_PORT),
                             .sin_addr.s_addr = htonl(a->dst)};
    if (sendto(n->udp_fd, a->pkt, a->pkt_len, 0, (struct sockaddr *)&to, sizeof to) < 0)
        os_error(n, LADE_ERR_IO, "send DHCP (UDP)");
    LOG_D(MOD, "%s: %s sent to %s", n->ifname, lade_dhcp_type_name(a->type), ip_str(a->dst, s));
}

static void arp_send(struct lade_netif *n, const struct lade_arp *m)
{
    uint8_t buf[LADE_ARP_LEN];
    size_t len;
    if (n->arp_fd < 0 || lade_arp_encode(m, buf, sizeof buf, &len) != LADE_OK)
        return;
    struct sockaddr_ll sll = link_addr(n, ETH_P_ARP, true);
    if (sendto(n->arp_fd, buf, len, 0, (struct sockaddr *)&sll, sizeof sll) < 0)
        os_error(n, LADE_ERR_IO, "send ARP");
}

/* ---------------------------------------------------------------- kernel configuration */

static void drop_dhcp(struct lade_netif *n)
{
    char a[16];
    if (n->dhcp_router) {
        lade_err e =
            lade_nl_route_default_del(n->nl, n->ifindex, n->dhcp_router, n->cfg.route_metric);
        if (e != LADE_OK && e != LADE_ERR_NOT_FOUND)
            os_error(n, e, "delete default route");
        n->dhcp_router = 0;
    }
    if (n->dhcp_addr) {
        lade_err e = lade_nl_addr_del(n->nl, n->ifindex, n->dhcp_addr, n->dhcp_prefix);
        if (e != LADE_OK && e != LADE_ERR_NOT_FOUND)
            os_error(n, e, "delete address");
        LOG_I(MOD, "%s: removed %s/%u", n->ifname, ip_str(n->dhcp_addr, a), n->dhcp_prefix);
        n->dhcp_addr = 0;
    }
}

static void configure_dhcp(struct lade_netif *n, const struct lade_dhcp_lease *l)
{
    char a[16], r[16];
    uint64_t now = lade_mono_ms();
    uint32_t life = UINT32_MAX; /* INFINITY_LIFE_TIME */
    if (l->expiry_ms != NEVER) {
        uint64_t left = l->expiry_ms > now ? (l->expiry_ms - now) / 1000 : 0;
        life = left < 1 ? 1 : (left >= UINT32_MAX ? UINT32_MAX - 1 : (uint32_t)left);
    }
    if (n->dhcp_addr && (n->dhcp_addr != l->addr || n->dhcp_prefix != l->prefix_len))
        drop_dhcp(n);
    lade_err e = lade_nl_addr_add(n->nl, n->ifindex, l->addr, l->prefix_len, life);
    if (e != LADE_OK) {
        os_error(n, e, "add address");
        return;
    }
    n->dhcp_addr = l->addr;
    n->dhcp_prefix = l->prefix_len;
    uint32_t router = l->n_routers ? l->routers[0] : 0;
    if (n->dhcp_router && n->dhcp_router != router) {
        lade_err d =
            lade_nl_route_default_del(n->nl, n->ifindex, n->dhcp_router, n->cfg.route_metric);
        if (d != LADE_OK && d != LADE_ERR_NOT_FOUND)
            os_error(n, d, "delete default route");
        n->dhcp_router = 0;
    }
    if (router) {
        e = lade_nl_route_default(n->nl, n->ifindex, router, l->addr, l->prefix_len,
                                  n->cfg.route_metric);
        if (e != LADE_OK)
            os_error(n, e, "add default route");
        else
            n->dhcp_router = router;
    }
    LOG_I(MOD, "%s: %s/%u via %s, lease %u s", n->ifname, ip_str(l->addr, a), l->prefix_len,
          router ? ip_str(router, r) : "-", l->lease_s);
}

/* ---------------------------------------------------------------- applying actions */

static void dhcp_apply(struct lade_netif *n, const struct lade_dhcp_actions *a)
{
    bool changed = false;
    uint64_t now = lade_mono_ms();
    /* Armed first: a nested call (ACD → probe_done) arms the newer deadline after this one. */
    arm(n, &n->t_dhcp, a->next_ms);
    if (a->flags & LADE_DHCP_ACT_SEND)
        dhcp_send(n, a);
    if (a->flags & LADE_DHCP_ACT_DROP) {
        drop_dhcp(n);
        changed = true;
    }
    if (a->flags & LADE_DHCP_ACT_ACD_STOP) {
        lade_acd_stop(&n->acd);
        n->acd_active = false;
        lade_timer_cancel(n->loop, &n->t_acd);
    }
    if (a->flags & LADE_DHCP_ACT_CONFIGURE) {
        configure_dhcp(n, a->lease);
        changed = true;
    }
    if (a->flags & LADE_DHCP_ACT_ACD_START) {
        struct lade_acd_actions aa;
        if (lade_acd_start(&n->acd, a->acd_addr, now, &aa) == LADE_OK) {
            n->acd_active = true;
            acd_apply(n, &aa);
        }
    }
    if (a->flags & LADE_DHCP_ACT_ACD_DEFEND) {
        struct lade_acd_actions aa;
        if (lade_acd_announce(&n->acd, a->acd_addr, now, &aa) == LADE_OK) {
            n->acd_active = true;
            acd_apply(n, &aa);
        }
    }
    if (a->flags & LADE_DHCP_ACT_LL_STOP) {
        struct lade_ipv4ll_actions la;
        n->ll_active = false;
        lade_ipv4ll_stop(&n->ll, now, &la);
        ll_apply(n, &la);
    }
    if (a->flags & LADE_DHCP_ACT_LL_START) {
        struct lade_ipv4ll_actions la;
        n->ll_active = true;
        lade_ipv4ll_start(&n->ll, now, &la);
        ll_apply(n, &la);
    }
    reconcile_sockets(n);
    if (changed)
        notify(n);
}

static void acd_apply(struct lade_netif *n, const struct lade_acd_actions *a)
{
    struct lade_dhcp_actions da;
    uint64_t now = lade_mono_ms();
    arm(n, &n->t_acd, a->next_ms);
    if (a->flags & LADE_ACD_ACT_SEND)
        arp_send(n, &a->arp);
    if (a->flags & LADE_ACD_ACT_READY) {
        if (lade_dhcp_probe_done(&n->dhcp, false, now, &da) == LADE_OK)
            dhcp_apply(n, &da);
    }
    if (a->flags & LADE_ACD_ACT_CONFLICT) {
        n->acd_active = false;
        if (lade_dhcp_state(&n->dhcp) == LADE_DHCP_PROBING) {
            if (lade_dhcp_probe_done(&n->dhcp, true, now, &da) == LADE_OK)
                dhcp_apply(n, &da);
        } else if (lade_dhcp_conflict(&n->dhcp, now, &da) == LADE_OK) {
            dhcp_apply(n, &da);
        }
    }
}

static void ll_apply(struct lade_netif *n, const struct lade_ipv4ll_actions *a)
{
    char s[16];
    bool changed = false;
    arm(n, &n->t_ll, a->next_ms);
    if (a->flags & LADE_IPV4LL_ACT_DROP) {
        lade_err e = lade_nl_addr_del(n->nl, n->ifindex, a->drop_addr, LADE_IPV4LL_PREFIX_LEN);
        if (e != LADE_OK && e != LADE_ERR_NOT_FOUND)
            os_error(n, e, "delete link-local address");
        LOG_I(MOD, "%s: removed link-local %s", n->ifname, ip_str(a->drop_addr, s));
        n->ll_addr = 0;
        changed = true;
    }
    if (a->flags & LADE_IPV4LL_ACT_CONFIGURE) {
        lade_err e =
            lade_nl_addr_add(n->nl, n->ifindex, a->addr, LADE_IPV4LL_PREFIX_LEN, UINT32_MAX);
        if (e != LADE_OK) {
            os_error(n, e, "add link-local address");
        } else {
            n->ll_addr = a->addr;
            LOG_I(MOD, "%s: link-local %s/16", n->ifname, ip_str(a->addr, s));
        }
        changed = true;
    }
    if (a->flags & LADE_IPV4LL_ACT_SEND)
        arp_send(n, &a->arp);
    if (changed)
        notify(n);
}

/* ---------------------------------------------------------------- events */

static void on_t_dhcp(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_netif *n = ud;
    struct lade_dhcp_actions a;
    lade_dhcp_tick(&n->dhcp, lade_mono_ms(), &a);
    dhcp_apply(n, &a);
}

static void on_t_acd(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_netif *n = ud;
    struct lade_acd_actions a;
    lade_acd_tick(&n->acd, lade_mono_ms(), &a);
    acd_apply(n, &a);
}

static void on_t_ll(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_netif *n = ud;
    struct lade_ipv4ll_actions a;
    lade_ipv4ll_tick(&n->ll, lade_mono_ms(), &a);
    ll_apply(n, &a);
}

static void dhcp_packet(struct lade_netif *n, const uint8_t *p, size_t len)
{
    struct lade_dhcp_actions a;
    lade_err e = lade_dhcp_input(&n->dhcp, p, len, lade_mono_ms(), &a);
    if (e != LADE_OK && e != LADE_ERR_NOT_FOUND && e != LADE_ERR_STATE)
        LOG_D(MOD, "%s: DHCP reply ignored: %s", n->ifname, lade_strerror(e));
    dhcp_apply(n, &a);
}

/* At most this many datagrams per wake-up, so one busy socket cannot starve the loop. */
#define BURST 32

static void on_pkt(struct lade_loop *loop, int fd, uint32_t events, void *ud)
{
    (void)loop;
    (void)events;
    struct lade_netif *n = ud;
    uint8_t buf[LADE_DHCP_MAX_REPLY + 64];
    for (int i = 0; i < BURST && n->pkt_fd == fd; i++) {
        struct lade_ipv4_udp u;
        int got = lade_dhcp_pkt_recv(fd, buf, sizeof buf, &u, NULL);
        if (got < 0)
            return; /* EAGAIN, or an error the next read reports again */
        if (got == 0)
            continue; /* our own DISCOVER, too long, or not a DHCP reply */
        dhcp_packet(n, u.payload, u.len);
    }
}

static void on_udp(struct lade_loop *loop, int fd, uint32_t events, void *ud)
{
    (void)loop;
    (void)events;
    struct lade_netif *n = ud;
    uint8_t buf[LADE_DHCP_MAX_REPLY + 64];
    for (int i = 0; i < BURST && n->udp_fd == fd; i++) {
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t r = recvfrom(fd, buf, sizeof buf, MSG_TRUNC, (struct sockaddr *)&from, &fl);
        if (r < 0)
            return;
        if ((size_t)r > sizeof buf || ntohs(from.sin_port) != LADE_DHCP_SERVER_PORT)
            continue;
        dhcp_packet(n, buf, (size_t)r);
    }
}

static void on_arp(struct lade_loop *loop, int fd, uint32_t events, void *ud)
{
    (void)loop;
    (void)events;
    struct lade_netif *n = ud;
    uint8_t buf[128];
    for (int i = 0; i < BURST && n->arp_fd == fd; i++) {
        struct sockaddr_ll from;
        socklen_t fl = sizeof from;
        ssize_t r = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (r < 0)
            return;
        struct lade_arp m;
        if (from.sll_pkttype == PACKET_OUTGOING || lade_arp_decode(buf, (size_t)r, &m) != LADE_OK)
            continue;
        uint64_t now = lade_mono_ms();
        if (n->acd_active) {
            struct lade_acd_actions a;
            lade_acd_input(&n->acd, &m, now, &a);
            acd_apply(n, &a);
        }
        if (n->ll_active) {
            struct lade_ipv4ll_actions a;
            lade_ipv4ll_input(&n->ll, &m, now, &a);
            ll_apply(n, &a);
        }
    }
}

static void set_carrier(struct lade_netif *n, bool carrier)
{
    struct lade_dhcp_actions a;
    uint64_t now = lade_mono_ms();
    if (carrier == n->carrier && n->ever_started)
        return;
    n->carrier = carrier;
    LOG_I(MOD, "%s: carrier %s", n->ifname, carrier ? "up" : "down");
    if (!carrier) {
        lade_dhcp_link_down(&n->dhcp, now, &a);
        dhcp_apply(n, &a);
        notify(n);
        return;
    }
    lade_err e;
    if (!n->ever_started) {
        n->ever_started = true;
        e = lade_dhcp_start(&n->dhcp, n->cfg.reboot_addr, now, &a);
    } else {
        e = lade_dhcp_link_up(&n->dhcp, now, &a);
    }
    if (e == LADE_OK)
        dhcp_apply(n, &a);
    notify(n);
}

static void on_mon(struct lade_loop *loop, int fd, uint32_t events, void *ud)
{
    (void)loop;
    (void)fd;
    (void)events;
    struct lade_netif *n = ud;
    bool changed, carrier = false;
    lade_err e = lade_nl_monitor_read(n->mon, n->ifindex, &changed, &carrier);
    if (e == LADE_ERR_AGAIN) /* events lost: ask */
        e = lade_nl_link_get(n->nl, n->ifindex, &carrier);
    else if (!changed)
        return;
    if (e != LADE_OK) {
        os_error(n, e, "link state");
        return;
    }
    set_carrier(n, carrier);
}

/* ---------------------------------------------------------------- public */

static lade_err read_mac(const char *ifname, uint8_t mac[6])
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return LADE_ERR_IO;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    int r = ioctl(fd, SIOCGIFHWADDR, &ifr);
    close(fd);
    if (r < 0)
        return LADE_ERR_IO;
    memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    return LADE_OK;
}

lade_err lade_netif_new(struct lade_loop *loop, const struct lade_netif_cfg *cfg,
                        struct lade_netif **out)
{
    lade_err e = LADE_OK;
    if (!loop || !cfg || !out || !cfg->ifname || strlen(cfg->ifname) >= IF_NAMESIZE)
        return LADE_ERR_CONFIG;
    struct lade_netif *n = calloc(1, sizeof *n);
    if (!n)
        return LADE_ERR_NOMEM;
    n->loop = loop;
    n->cfg = *cfg;
    snprintf(n->ifname, sizeof n->ifname, "%s", cfg->ifname);
    n->cfg.ifname = n->ifname;
    n->pkt_fd = n->udp_fd = n->arp_fd = -1;
    lade_timer_init(&n->t_dhcp, on_t_dhcp, n);
    lade_timer_init(&n->t_acd, on_t_acd, n);
    lade_timer_init(&n->t_ll, on_t_ll, n);

    n->ifindex = (int)if_nametoindex(n->ifname);
    if (n->ifindex == 0) {
        e = LADE_ERR_NOT_FOUND;
        goto out;
    }
    e = read_mac(n->ifname, n->mac);
    if (e != LADE_OK)
        goto out;

    struct lade_dhcp_cfg dc;
    lade_dhcp_cfg_default(&dc);
    memcpy(dc.mac, n->mac, 6);
    dc.hostname = cfg->hostname;
    dc.probe = !cfg->no_probe;
    if (cfg->ll_after_discovers)
        dc.ll_after_discovers = cfg->ll_after_discovers;
    dc.no_link_local = cfg->no_link_local;
    dc.random = rnd;
    dc.name = n->ifname;
    e = lade_dhcp_init(&n->dhcp, &dc);
    if (e != LADE_OK)
        goto out;
    struct lade_acd_cfg ac = {.random = rnd, .name = n->ifname};
    memcpy(ac.mac, n->mac, 6);
    e = lade_acd_init(&n->acd, &ac);
    if (e != LADE_OK)
        goto out;
    struct lade_ipv4ll_cfg lc = {.random = rnd, .last_addr = cfg->ll_last_addr, .name = n->ifname};
    memcpy(lc.mac, n->mac, 6);
    e = lade_ipv4ll_init(&n->ll, &lc);
    if (e != LADE_OK)
        goto out;

    e = lade_nl_open(&n->nl);
    if (e != LADE_OK)
        goto out;
    e = lade_nl_monitor_open(&n->mon);
    if (e != LADE_OK)
        goto out;
    e = lade_loop_watch(loop, lade_nl_fd(n->mon), LADE_IO_READ, on_mon, n);
    if (e != LADE_OK)
        goto out;
    n->arp_fd = open_packet(n, ETH_P_ARP, false, on_arp);
    if (n->arp_fd < 0) {
        e = LADE_ERR_IO;
        goto out;
    }
    e = lade_nl_link_up(n->nl, n->ifindex);
    if (e != LADE_OK)
        goto out;
    if (!cfg->keep_addresses) {
        unsigned removed = 0;
        e = lade_nl_addr_flush(n->nl, n->ifindex, &removed);
        if (e != LADE_OK)
            goto out;
        if (removed)
            LOG_I(MOD, "%s: removed %u address(es) found at start", n->ifname, removed);
    }
    bool carrier = false;
    e = lade_nl_link_get(n->nl, n->ifindex, &carrier);
    if (e != LADE_OK)
        goto out;
    LOG_I(MOD, "%s: index %d, %02x:%02x:%02x:%02x:%02x:%02x", n->ifname, n->ifindex, n->mac[0],
          n->mac[1], n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
    if (carrier)
        set_carrier(n, true);
out:
    if (e != LADE_OK) {
        LOG_W(MOD, "%s: cannot start: %s", n->ifname, lade_strerror(e));
        n->freeing = true;
        lade_netif_free(n);
        return e;
    }
    *out = n;
    return LADE_OK;
}

void lade_netif_free(struct lade_netif *n)
{
    if (!n)
        return;
    n->freeing = true;
    uint64_t now = lade_mono_ms();
    if (n->nl) {
        struct lade_dhcp_actions a;
        lade_dhcp_stop(&n->dhcp, n->cfg.release_on_free, now, &a);
        dhcp_apply(n, &a); /* RELEASE, DROP, ACD and link-local stop */
        if (n->ll_active || n->ll_addr) {
            struct lade_ipv4ll_actions la;
            lade_ipv4ll_stop(&n->ll, now, &la);
            ll_apply(n, &la);
        }
    }
    lade_timer_cancel(n->loop, &n->t_dhcp);
    lade_timer_cancel(n->loop, &n->t_acd);
    lade_timer_cancel(n->loop, &n->t_ll);
    close_fd(n, &n->pkt_fd);
    close_fd(n, &n->udp_fd);
    close_fd(n, &n->arp_fd);
    if (n->mon) {
        lade_loop_unwatch(n->loop, lade_nl_fd(n->mon));
        lade_nl_close(n->mon);
    }
    lade_nl_close(n->nl);
    free(n);
}

void lade_netif_status(const struct lade_netif *n, struct lade_netif_status *out)
{
    memset(out, 0, sizeof *out);
    uint64_t now = lade_mono_ms();
    out->carrier = n->carrier;
    lade_dhcp_diag(&n->dhcp, now, &out->dhcp);
    lade_ipv4ll_diag(&n->ll, &out->ll);
    out->ll_addr = n->ll_addr;
    out->last_os_error = n->last_os_error;
    const struct lade_dhcp_lease *l = lade_dhcp_lease(&n->dhcp);
    if (l && n->dhcp_addr) {
        out->source = LADE_ADDR_DHCP;
        out->addr = l->addr;
        out->prefix_len = l->prefix_len;
        out->router = n->dhcp_router;
        memcpy(out->dns, l->dns, sizeof out->dns);
        memcpy(out->ntp, l->ntp, sizeof out->ntp);
        out->n_dns = l->n_dns;
        out->n_ntp = l->n_ntp;
    } else if (n->ll_addr) {
        out->source = LADE_ADDR_LINK_LOCAL;
        out->addr = n->ll_addr;
        out->prefix_len = LADE_IPV4LL_PREFIX_LEN;
    }
}
