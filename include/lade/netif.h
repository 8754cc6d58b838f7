/* lade — IPv4 bring-up of one Ethernet-like interface on Linux: DHCP client, ARP conflict
 * detection and IPv4 link-local, on the event loop (src/port/linux/dhcp_linux.c), plus the
 * rtnetlink helpers it uses (src/port/linux/netlink.c, libmnl).
 *
 * The pure machines are in include/lade/dhcp.h and include/lade/ipv4ll.h (docs/dhcp.md); this
 * shell only moves packets, configures the kernel and runs timers:
 *   - DHCP before a lease is configured: an AF_PACKET socket (SOCK_DGRAM, ETH_P_IP) with a
 *     classic BPF filter that passes only unfragmented UDP to port 68; IPv4 and UDP headers are
 *     built and checked here (lade_ipv4_udp_* in dhcp.h). With a lease: a UDP socket bound to
 *     port 68 on the interface (SO_BINDTODEVICE) for renewals and their replies.
 *   - ARP (probe/announce/defend for the DHCP address and link-local) on an AF_PACKET socket
 *     (ETH_P_ARP); our own outgoing frames are skipped.
 *   - rtnetlink: the interface is set up, carrier is followed (RTMGRP_LINK), addresses and the
 *     default route are added/removed (the address with the lease as its valid lifetime, so the
 *     kernel drops it by itself if this process dies), addresses found at start are removed
 *     (R4: a restart forces a fresh attempt).
 *
 * Non-blocking: sockets are O_NONBLOCK and watched by the loop; netlink requests to the kernel
 * are answered before sendmsg returns, so waiting for their ACK does not block the loop.
 * Needs CAP_NET_ADMIN and CAP_NET_RAW (root in tests).
 */
#ifndef LADE_NETIF_H
#define LADE_NETIF_H

#include <stdbool.h>
#include <stdint.h>

#include "lade/dhcp.h"
#include "lade/err.h"
#include "lade/ipv4ll.h"
#include "lade/loop.h"

struct lade_netif;

/* What the interface has now (R19), given to on_change and by lade_netif_status. */
struct lade_netif_status {
    bool carrier;
    enum lade_addr_source source; /* DHCP when a lease is configured, else link-local if bound */
    uint32_t addr;                /* the address in use (0 = none) */
    uint8_t prefix_len;
    uint32_t router; /* default gateway (0 = none; never for link-local) */
    uint32_t dns[LADE_DHCP_MAX_ADDRS];
    uint32_t ntp[LADE_DHCP_MAX_ADDRS];
    uint8_t n_dns, n_ntp;
    uint32_t ll_addr; /* link-local address configured (0 = none), also while DHCP has a lease
                         for a moment during the hand-over */
    struct lade_dhcp_diag dhcp;
    struct lade_ipv4ll_diag ll;
    lade_err last_os_error; /* last failed socket/netlink operation (LADE_OK if none) */
};

struct lade_netif_cfg {
    const char *ifname;          /* required; borrowed for the lifetime */
    const char *hostname;        /* DHCP option 12; NULL = none */
    uint32_t reboot_addr;        /* address of a stored, unexpired lease (INIT-REBOOT); 0 = none */
    uint32_t ll_last_addr;       /* link-local address claimed in an earlier run; 0 = none */
    unsigned ll_after_discovers; /* 0 = LADE_DHCP_LL_AFTER_DISCOVERS */
    bool no_link_local;
    bool no_probe;         /* skip the RFC 5227 probe of a DHCP address */
    bool release_on_free;  /* send RELEASE when freed (default: keep the lease at the server) */
    bool keep_addresses;   /* do not remove the interface's IPv4 addresses at start */
    uint32_t route_metric; /* of the default route; 0 = kernel default */
    /* Called after the address, router, DNS or NTP servers changed (also carrier). */
    void (*on_change)(void *ud, const struct lade_netif_status *st);
    void *ud;
};

/* Opens the sockets, sets the interface up, removes its IPv4 addresses (unless
 * keep_addresses), and starts DHCP when the carrier is up (else when it comes up).
 * Errors: LADE_ERR_CONFIG (no ifname), LADE_ERR_NOT_FOUND (no such interface), LADE_ERR_IO
 * (sockets, netlink; e.g. without CAP_NET_RAW/CAP_NET_ADMIN), LADE_ERR_NOMEM. */
lade_err lade_netif_new(struct lade_loop *loop, const struct lade_netif_cfg *cfg,
                        struct lade_netif **out) LADE_MUST_CHECK;
/* Stops DHCP (RELEASE if cfg.release_on_free), removes the addresses it configured, closes the
 * sockets, cancels timers, frees. NULL is ignored. Not from inside on_change. */
void lade_netif_free(struct lade_netif *n);
void lade_netif_status(const struct lade_netif *n, struct lade_netif_status *out);

/* ---------------------------------------------------------------- rtnetlink (libmnl)
 * Small synchronous helpers on a NETLINK_ROUTE socket; each waits for the kernel's ACK (which
 * is queued before the request's sendmsg returns). Errors: LADE_ERR_IO (errno kept in *os_errno
 * when not NULL), LADE_ERR_NOT_FOUND for deleting what is not there. */
struct lade_nl;
lade_err lade_nl_open(struct lade_nl **out) LADE_MUST_CHECK;
void lade_nl_close(struct lade_nl *nl);
/* Sets IFF_UP. */
lade_err lade_nl_link_up(struct lade_nl *nl, int ifindex) LADE_MUST_CHECK;
/* *carrier = IFF_UP and IFF_LOWER_UP. */
lade_err lade_nl_link_get(struct lade_nl *nl, int ifindex, bool *carrier) LADE_MUST_CHECK;
/* Adds or replaces addr/prefix_len (broadcast derived; scope link for 169.254/16, else global)
 * with a valid and preferred lifetime of lifetime_s (UINT32_MAX = forever). */
lade_err lade_nl_addr_add(struct lade_nl *nl, int ifindex, uint32_t addr, uint8_t prefix_len,
                          uint32_t lifetime_s) LADE_MUST_CHECK;
lade_err lade_nl_addr_del(struct lade_nl *nl, int ifindex, uint32_t addr,
                          uint8_t prefix_len) LADE_MUST_CHECK;
/* Removes every IPv4 address of the interface; *removed = how many. */
lade_err lade_nl_addr_flush(struct lade_nl *nl, int ifindex, unsigned *removed) LADE_MUST_CHECK;
/* Adds or replaces the default route via gw on ifindex (onlink when gw is outside src's
 * prefix), protocol DHCP, with a preferred source address. */
lade_err lade_nl_route_default(struct lade_nl *nl, int ifindex, uint32_t gw, uint32_t src,
                               uint8_t prefix_len, uint32_t metric) LADE_MUST_CHECK;
lade_err lade_nl_route_default_del(struct lade_nl *nl, int ifindex, uint32_t gw,
                                   uint32_t metric) LADE_MUST_CHECK;

/* Link monitor: a second socket subscribed to RTMGRP_LINK; its fd goes on the loop and
 * lade_nl_monitor_read reports carrier changes of ifindex (*changed false when nothing about
 * it changed). */
lade_err lade_nl_monitor_open(struct lade_nl **out) LADE_MUST_CHECK;
int lade_nl_fd(const struct lade_nl *nl);
lade_err lade_nl_monitor_read(struct lade_nl *nl, int ifindex, bool *changed,
                              bool *carrier) LADE_MUST_CHECK;

#endif
