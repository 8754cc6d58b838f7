/* ARP payload for IPv4 over Ethernet (RFC 826) and the RFC 5227 probe/announcement forms. */
#include <string.h>

#include "lade/ipv4ll.h"

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

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

lade_err lade_arp_encode(const struct lade_arp *m, uint8_t *buf, size_t cap, size_t *out_len)
{
    if (!m || !buf || !out_len || (m->op != LADE_ARP_REQUEST && m->op != LADE_ARP_REPLY))
        return LADE_ERR_INVAL;
    if (cap < LADE_ARP_LEN)
        return LADE_ERR_NOSPACE;
    put16(buf, 1);          /* Ethernet */
    put16(buf + 2, 0x0800); /* IPv4 */
    buf[4] = 6;
    buf[5] = 4;
    put16(buf + 6, m->op);
    memcpy(buf + 8, m->sha, 6);
    put32(buf + 14, m->spa);
    memcpy(buf + 18, m->tha, 6);
    put32(buf + 24, m->tpa);
    *out_len = LADE_ARP_LEN;
    return LADE_OK;
}

lade_err lade_arp_decode(const uint8_t *buf, size_t len, struct lade_arp *out)
{
    if (!buf || !out)
        return LADE_ERR_INVAL;
    memset(out, 0, sizeof *out);
    if (len < LADE_ARP_LEN)
        return LADE_ERR_PROTO;
    if (get16(buf) != 1 || get16(buf + 2) != 0x0800 || buf[4] != 6 || buf[5] != 4)
        return LADE_ERR_PROTO;
    uint16_t op = get16(buf + 6);
    if (op != LADE_ARP_REQUEST && op != LADE_ARP_REPLY)
        return LADE_ERR_PROTO;
    out->op = op;
    memcpy(out->sha, buf + 8, 6);
    out->spa = get32(buf + 14);
    memcpy(out->tha, buf + 18, 6);
    out->tpa = get32(buf + 24);
    return LADE_OK;
}

void lade_arp_probe(const uint8_t mac[6], uint32_t addr, struct lade_arp *out)
{
    memset(out, 0, sizeof *out);
    out->op = LADE_ARP_REQUEST;
    memcpy(out->sha, mac, 6);
    out->tpa = addr;
}

void lade_arp_announce(const uint8_t mac[6], uint32_t addr, struct lade_arp *out)
{
    lade_arp_probe(mac, addr, out);
    out->spa = addr;
}
