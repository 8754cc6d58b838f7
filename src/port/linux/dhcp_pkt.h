/* lade — reading DHCP replies from a packet socket (Linux), shared by the DHCP client's shell
 * (dhcp_linux.c) and lade-check's DHCP probe (dhcpprobe.c). Internal to src/port/linux. */
#ifndef LADE_PORT_DHCP_PKT_H
#define LADE_PORT_DHCP_PKT_H
#include <stddef.h>
#include <stdint.h>

#include "lade/dhcp.h"

/* Reads one frame from an AF_PACKET SOCK_DGRAM socket (ETH_P_IP, PACKET_AUXDATA on) into
 * buf[0..cap). Returns
 *    1  a UDP datagram from port 67 to port 68 that passed the IPv4/UDP checks (the UDP
 *       checksum only when the kernel filled it in: offload leaves it open on veth/virtio);
 *       *u views buf, mac (may be NULL) gets the sender's Ethernet address (zero if unknown)
 *    0  a frame to skip (our own, too long, not such a datagram): read the next one
 *   -1  nothing more to read now (EAGAIN) or a socket error (reported again by the next read) */
int lade_dhcp_pkt_recv(int fd, uint8_t *buf, size_t cap, struct lade_ipv4_udp *u, uint8_t mac[6]);

#endif
