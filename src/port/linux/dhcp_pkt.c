/* lade — reading DHCP replies from a packet socket: src/port/linux/dhcp_pkt.h. */
#include "dhcp_pkt.h"

#include <linux/if_packet.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

int lade_dhcp_pkt_recv(int fd, uint8_t *buf, size_t cap, struct lade_ipv4_udp *u, uint8_t mac[6])
{
    struct sockaddr_ll from;
    union {
        struct cmsghdr align;
        char b[CMSG_SPACE(sizeof(struct tpacket_auxdata))];
    } ctl;
    struct iovec iov = {.iov_base = buf, .iov_len = cap};
    struct msghdr msg = {.msg_name = &from,
                         .msg_namelen = sizeof from,
                         .msg_iov = &iov,
                         .msg_iovlen = 1,
                         .msg_control = &ctl,
                         .msg_controllen = sizeof ctl};
    ssize_t n = recvmsg(fd, &msg, MSG_TRUNC);
    if (n < 0)
        return -1;
    if (from.sll_pkttype == PACKET_OUTGOING || (size_t)n > cap)
        return 0; /* our own message, or longer than any reply we accept */
    /* With checksum offload (veth, virtio) the UDP checksum is not filled in yet. */
    bool udp_sum = true;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA) {
            struct tpacket_auxdata aux;
            memcpy(&aux, CMSG_DATA(c), sizeof aux);
            if (aux.tp_status & TP_STATUS_CSUMNOTREADY)
                udp_sum = false;
        }
    }
    if (lade_ipv4_udp_decode(buf, (size_t)n, udp_sum, u) != LADE_OK ||
        u->dport != LADE_DHCP_CLIENT_PORT || u->sport != LADE_DHCP_SERVER_PORT)
        return 0;
    if (mac) {
        memset(mac, 0, 6);
        if (from.sll_halen == 6)
            memcpy(mac, from.sll_addr, 6);
    }
    return 1;
}
