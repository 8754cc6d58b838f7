/* rtnetlink with libmnl: link state, IPv4 addresses, the default route (include/lade/netif.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include "lade/log.h"
#include "lade/netif.h"

#define MOD "netlink"

struct lade_nl {
    struct mnl_socket *sock;
    uint32_t portid;
    uint32_t seq;
    int last_errno;
};

/* Answers: big enough for a dump batch (the kernel fills up to 8 KiB per read by default). */
#define NL_BUF  16384
#define REQ_BUF 1024 /* one request: a header and a few attributes */

static lade_err nl_new(struct lade_nl **out, unsigned groups)
{
    struct lade_nl *nl = calloc(1, sizeof *nl);
    if (!nl)
        return LADE_ERR_NOMEM;
    nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (!nl->sock || mnl_socket_bind(nl->sock, groups, MNL_SOCKET_AUTOPID) < 0) {
        LOG_W(MOD, "netlink socket: %s", strerror(errno));
        if (nl->sock)
            mnl_socket_close(nl->sock);
        free(nl);
        return LADE_ERR_IO;
    }
    nl->portid = mnl_socket_get_portid(nl->sock);
    nl->seq = (uint32_t)time(NULL);
    *out = nl;
    return LADE_OK;
}

lade_err lade_nl_open(struct lade_nl **out)
{
    return nl_new(out, 0);
}

lade_err lade_nl_monitor_open(struct lade_nl **out)
{
    return nl_new(out, RTMGRP_LINK);
}

void lade_nl_close(struct lade_nl *nl)
{
    if (!nl)
        return;
    mnl_socket_close(nl->sock);
    free(nl);
}

int lade_nl_fd(const struct lade_nl *nl)
{
    return mnl_socket_get_fd(nl->sock);
}

/* Sends one request and reads until its ACK/error (or DONE for a dump). rtnetlink handles a
 * request inside sendmsg and queues the answer before it returns, so the reads find it at once;
 * the bounded poll is a guard that is not taken in practice (the loop is never held longer). */
static lade_err nl_talk(struct lade_nl *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
    char buf[NL_BUF];
    nlh->nlmsg_seq = ++nl->seq;
    if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0) {
        nl->last_errno = errno;
        return LADE_ERR_IO;
    }
    for (int waits = 0; waits < 10;) {
        ssize_t n = mnl_socket_recvfrom(nl->sock, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                struct pollfd p = {.fd = mnl_socket_get_fd(nl->sock), .events = POLLIN};
                if (poll(&p, 1, 10) == 0)
                    waits++;
                continue;
            }
            nl->last_errno = errno;
            return LADE_ERR_IO;
        }
        int r = mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, nl->portid, cb, data);
        if (r == MNL_CB_STOP)
            return LADE_OK;
        if (r < 0) {
            nl->last_errno = errno;
            if (errno == ESRCH || errno == EADDRNOTAVAIL || errno == ENOENT)
                return LADE_ERR_NOT_FOUND;
            return LADE_ERR_IO;
        }
    }
    nl->last_errno = ETIMEDOUT;
    return LADE_ERR_TIMEOUT;
}

static struct nlmsghdr *req(char *buf, uint16_t type, uint16_t flags)
{
    struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
    nlh->nlmsg_type = type;
    nlh->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
    return nlh;
}

lade_err lade_nl_link_up(struct lade_nl *nl, int ifindex)
{
    char buf[REQ_BUF];
    struct nlmsghdr *nlh = req(buf, RTM_NEWLINK, NLM_F_ACK);
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = ifindex;
    ifi->ifi_flags = IFF_UP;
    ifi->ifi_change = IFF_UP;
    return nl_talk(nl, nlh, NULL, NULL);
}

struct link_q {
    int ifindex;
    bool found, carrier;
};

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
    struct link_q *q = data;
    if (nlh->nlmsg_type != RTM_NEWLINK)
        return MNL_CB_OK;
    const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
    if (ifi->ifi_index == q->ifindex) {
        q->found = true;
        q->carrier = (ifi->ifi_flags & IFF_UP) && (ifi->ifi_flags & IFF_LOWER_UP);
    }
    return MNL_CB_OK;
}

lade_err lade_nl_link_get(struct lade_nl *nl, int ifindex, bool *carrier)
{
    char buf[REQ_BUF];
    struct nlmsghdr *nlh = req(buf, RTM_GETLINK, NLM_F_ACK);
    struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    ifi->ifi_index = ifindex;
    struct link_q q = {.ifindex = ifindex};
    lade_err e = nl_talk(nl, nlh, link_cb, &q);
    if (e == LADE_OK && !q.found)
        e = LADE_ERR_NOT_FOUND;
    if (e == LADE_OK)
        *carrier = q.carrier;
    return e;
}

static bool is_link_local(uint32_t addr)
{
    return (addr >> 16) == 0xa9feu; /* 169.254/16 */
}

static struct nlmsghdr *addr_msg(char *buf, uint16_t type, uint16_t flags, int ifindex,
                                 uint32_t addr, uint8_t prefix_len)
{
    struct nlmsghdr *nlh = req(buf, type, flags);
    struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof *ifa);
    ifa->ifa_family = AF_INET;
    ifa->ifa_prefixlen = prefix_len;
    ifa->ifa_scope = is_link_local(addr) ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
    ifa->ifa_index = (uint32_t)ifindex;
    uint32_t be = htonl(addr);
    mnl_attr_put_u32(nlh, IFA_LOCAL, be);
    mnl_attr_put_u32(nlh, IFA_ADDRESS, be);
    return nlh;
}

lade_err lade_nl_addr_add(struct lade_nl *nl, int ifindex, uint32_t addr, uint8_t prefix_len,
                          uint32_t lifetime_s)
{
    char buf[REQ_BUF];
    if (prefix_len > 32)
        return LADE_ERR_INVAL;
    struct nlmsghdr *nlh = addr_msg(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK,
                                    ifindex, addr, prefix_len);
    if (prefix_len <= 30) {
        uint32_t host = prefix_len == 0 ? 0xffffffffu : (0xffffffffu >> prefix_len);
        mnl_attr_put_u32(nlh, IFA_BROADCAST, htonl(addr | host));
    }
    struct ifa_cacheinfo ci = {.ifa_prefered = lifetime_s, .ifa_valid = lifetime_s};
    mnl_attr_put(nlh, IFA_CACHEINFO, sizeof ci, &ci);
    return nl_talk(nl, nlh, NULL, NULL);
}

lade_err lade_nl_addr_del(struct lade_nl *nl, int ifindex, uint32_t addr, uint8_t prefix_len)
{
    char buf[REQ_BUF];
    struct nlmsghdr *nlh = addr_msg(buf, RTM_DELADDR, NLM_F_ACK, ifindex, addr, prefix_len);
    return nl_talk(nl, nlh, NULL, NULL);
}

struct addr_list {
    int ifindex;
    unsigned n;
    uint32_t addr[32];
    uint8_t prefix[32];
};

static int addr_attr_cb(const struct nlattr *attr, void *data)
{
    const struct nlattr **tb = data;
    int type = mnl_attr_get_type(attr);
    if (type == IFA_LOCAL && mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
        tb[type] = attr;
    return MNL_CB_OK;
}

static int addr_dump_cb(const struct nlmsghdr *nlh, void *data)
{
    struct addr_list *l = data;
    const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
    if (nlh->nlmsg_type != RTM_NEWADDR || ifa->ifa_family != AF_INET ||
        (int)ifa->ifa_index != l->ifindex || l->n >= 32)
        return MNL_CB_OK;
    const struct nlattr *tb[IFA_MAX + 1] = {0};
    mnl_attr_parse(nlh, sizeof *ifa, addr_attr_cb, tb);
    if (!tb[IFA_LOCAL])
        return MNL_CB_OK;
    l->addr[l->n] = ntohl(mnl_attr_get_u32(tb[IFA_LOCAL]));
    l->prefix[l->n] = ifa->ifa_prefixlen;
    l->n++;
    return MNL_CB_OK;
}

lade_err lade_nl_addr_flush(struct lade_nl *nl, int ifindex, unsigned *removed)
{
    char buf[REQ_BUF];
    struct nlmsghdr *nlh = req(buf, RTM_GETADDR, NLM_F_DUMP);
    struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof *ifa);
    ifa->ifa_family = AF_INET;
    struct addr_list l = {.ifindex = ifindex};
    lade_err e = nl_talk(nl, nlh, addr_dump_cb, &l);
    if (e != LADE_OK)
        return e;
    *removed = 0;
    for (unsigned i = 0; i < l.n; i++) {
        e = lade_nl_addr_del(nl, ifindex, l.addr[i], l.prefix[i]);
        if (e == LADE_OK)
            (*removed)++;
        else if (e != LADE_ERR_NOT_FOUND)
            return e;
    }
    return LADE_OK;
}

static struct nlmsghdr *route_msg(char *buf, uint16_t type, uint16_t flags, int ifindex,
                                  uint32_t gw, uint32_t metric)
{
    struct nlmsghdr *nlh = req(buf, type, flags);
    struct rtmsg *rtm = mnl_nlmsg_put_extra_header(nlh, sizeof *rtm);
    rtm->rtm_family = AF_INET;
    rtm->rtm_dst_len = 0;
    rtm->rtm_table = RT_TABLE_MAIN;
    rtm->rtm_protocol = RTPROT_DHCP;
    rtm->rtm_scope = RT_SCOPE_UNIVERSE;
    rtm->rtm_type = RTN_UNICAST;
    mnl_attr_put_u32(nlh, RTA_GATEWAY, htonl(gw));
    mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)ifindex);
    if (metric)
        mnl_attr_put_u32(nlh, RTA_PRIORITY, metric);
    return nlh;
}

lade_err lade_nl_route_default(struct lade_nl *nl, int ifindex, uint32_t gw, uint32_t src,
                               uint8_t prefix_len, uint32_t metric)
{
    char buf[REQ_BUF];
    struct nlmsghdr *nlh =
        route_msg(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE | NLM_F_ACK, ifindex, gw, metric);
    struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
    uint32_t mask = prefix_len == 0 ? 0 : 0xffffffffu << (32 - prefix_len);
    if ((gw & mask) != (src & mask))
        rtm->rtm_flags |= RTNH_F_ONLINK; /* a router outside the subnet (e.g. a /32 lease) */
    if (src)
        mnl_attr_put_u32(nlh, RTA_PREFSRC, htonl(src));
    return nl_talk(nl, nlh, NULL, NULL);
}

lade_err lade_nl_route_default_del(struct lade_nl *nl, int ifindex, uint32_t gw, uint32_t metric)
{
    char buf[REQ_BUF];
    struct nlmsghdr *nlh = route_msg(buf, RTM_DELROUTE, NLM_F_ACK, ifindex, gw, metric);
    struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);
    rtm->rtm_scope = RT_SCOPE_NOWHERE;
    return nl_talk(nl, nlh, NULL, NULL);
}

lade_err lade_nl_monitor_read(struct lade_nl *nl, int ifindex, bool *changed, bool *carrier)
{
    char buf[NL_BUF];
    *changed = false;
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl->sock, buf, sizeof buf);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return LADE_OK;
            if (errno == ENOBUFS) {
                /* overrun: events were lost; the caller re-reads the state */
                *changed = true;
                *carrier = false;
                return LADE_ERR_AGAIN;
            }
            nl->last_errno = errno;
            return LADE_ERR_IO;
        }
        struct link_q q = {.ifindex = ifindex};
        /* seq 0 / portid 0: notifications */
        if (mnl_cb_run(buf, (size_t)n, 0, 0, link_cb, &q) < 0)
            continue;
        if (q.found) {
            *changed = true;
            *carrier = q.carrier;
        }
    }
}
