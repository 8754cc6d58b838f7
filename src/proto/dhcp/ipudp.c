/* IPv4 + UDP headers for DHCP over a packet socket (RFC 791, RFC 768). Pure. */
#include <string.h>

#include "lade/dhcp.h"

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* One's complement sum of 16-bit words (RFC 1071), not yet folded. */
static uint32_t sum16(const uint8_t *p, size_t n, uint32_t acc)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        acc += get16(p + i);
    if (n & 1)
        acc += (uint32_t)p[n - 1] << 8;
    return acc;
}

static uint16_t fold(uint32_t acc)
{
    while (acc >> 16)
        acc = (acc & 0xffffu) + (acc >> 16);
    return (uint16_t)~acc;
}

static uint32_t pseudo(uint32_t src, uint32_t dst, size_t udp_len)
{
    return (src >> 16) + (src & 0xffffu) + (dst >> 16) + (dst & 0xffffu) + 17u + (uint32_t)udp_len;
}

lade_err lade_ipv4_udp_encode(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
                              const uint8_t *payload, size_t len, uint8_t *buf, size_t cap,
                              size_t *out_len)
{
    if ((!payload && len) || !buf || !out_len)
        return LADE_ERR_INVAL;
    if (len > 65535 - LADE_IPV4_UDP_HDR)
        return LADE_ERR_TOO_BIG;
    size_t total = LADE_IPV4_UDP_HDR + len;
    if (cap < total)
        return LADE_ERR_NOSPACE;
    uint8_t *ip = buf, *udp = buf + 20;
    memset(buf, 0, LADE_IPV4_UDP_HDR);
    ip[0] = 0x45;
    ip[1] = 0x10; /* low delay, as DHCP clients traditionally set */
    put16(ip + 2, (uint16_t)total);
    ip[8] = 64;
    ip[9] = 17;
    put32(ip + 12, src);
    put32(ip + 16, dst);
    put16(ip + 10, fold(sum16(ip, 20, 0)));
    put16(udp, sport);
    put16(udp + 2, dport);
    put16(udp + 4, (uint16_t)(8 + len));
    if (len)
        memmove(udp + 8, payload, len);
    uint16_t ck = fold(sum16(udp, 8 + len, pseudo(src, dst, 8 + len)));
    put16(udp + 6, ck ? ck : 0xffff); /* 0 means "no checksum" (RFC 768) */
    *out_len = total;
    return LADE_OK;
}

lade_err lade_ipv4_udp_decode(const uint8_t *buf, size_t len, bool udp_sum,
                              struct lade_ipv4_udp *out)
{
    if (!buf || !out)
        return LADE_ERR_INVAL;
    memset(out, 0, sizeof *out);
    if (len < LADE_IPV4_UDP_HDR || (buf[0] >> 4) != 4)
        return LADE_ERR_PROTO;
    size_t ihl = (size_t)(buf[0] & 0x0f) * 4;
    size_t total = get16(buf + 2);
    if (ihl < 20 || total < ihl + 8 || total > len)
        return LADE_ERR_PROTO;
    if (fold(sum16(buf, ihl, 0)) != 0)
        return LADE_ERR_PROTO; /* header checksum */
    if ((get16(buf + 6) & 0x3fff) != 0)
        return LADE_ERR_PROTO; /* a fragment (MF or offset): packet sockets do not reassemble */
    if (buf[9] != 17)
        return LADE_ERR_PROTO;
    const uint8_t *udp = buf + ihl;
    size_t ulen = get16(udp + 4);
    if (ulen < 8 || ulen > total - ihl)
        return LADE_ERR_PROTO;
    out->src = get32(buf + 12);
    out->dst = get32(buf + 16);
    if (udp_sum && get16(udp + 6) != 0 &&
        fold(sum16(udp, ulen, pseudo(out->src, out->dst, ulen))) != 0)
        return LADE_ERR_PROTO;
    out->sport = get16(udp);
    out->dport = get16(udp + 2);
    out->payload = udp + 8;
    out->len = ulen - 8;
    return LADE_OK;
}
