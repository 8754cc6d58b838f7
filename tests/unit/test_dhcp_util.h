/* Shared by the DHCP unit tests: a tiny server-side reply builder and a parser of the client's
 * messages (the library only decodes replies, on purpose). Header-only, static functions. */
#ifndef TEST_DHCP_UTIL_H
#define TEST_DHCP_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lade/dhcp.h"

static const uint8_t MAC[6] = {0x02, 0x00, 0x5e, 0x10, 0x20, 0x30};
static const uint8_t OTHER_MAC[6] = {0x02, 0x00, 0x5e, 0x99, 0x99, 0x99};

static inline void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static inline uint32_t rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* BOOTREPLY header + cookie (240 bytes). */
static inline size_t mk_header(uint8_t *b, uint32_t xid, const uint8_t mac[6], uint32_t yiaddr)
{
    memset(b, 0, 240);
    b[0] = 2;
    b[1] = 1;
    b[2] = 6;
    wr32(b + 4, xid);
    wr32(b + 16, yiaddr);
    memcpy(b + 28, mac, 6);
    wr32(b + 236, LADE_DHCP_MAGIC);
    return 240;
}

static inline size_t add_opt(uint8_t *b, size_t n, uint8_t code, const void *data, uint8_t len)
{
    b[n] = code;
    b[n + 1] = len;
    if (len)
        memcpy(b + n + 2, data, len);
    return n + 2 + len;
}

static inline size_t add_opt32(uint8_t *b, size_t n, uint8_t code, uint32_t v)
{
    uint8_t d[4];
    wr32(d, v);
    return add_opt(b, n, code, d, 4);
}

static inline size_t add_opt8(uint8_t *b, size_t n, uint8_t code, uint8_t v)
{
    return add_opt(b, n, code, &v, 1);
}

static inline size_t add_end(uint8_t *b, size_t n)
{
    b[n] = 255;
    return n + 1;
}

struct srv_reply {
    uint8_t type;
    uint32_t xid;
    const uint8_t *mac; /* NULL = MAC */
    uint32_t yiaddr;
    uint32_t server_id;  /* 0 = no option 54 */
    uint32_t mask;       /* 0 = no option 1 */
    uint32_t lease_s;    /* 0 = no option 51 */
    uint32_t t1_s, t2_s; /* 0 = absent */
    uint32_t routers[6], dns[6], ntp[6];
    int n_routers, n_dns, n_ntp;
    const char *message;
};

static inline size_t add_list(uint8_t *b, size_t n, uint8_t code, const uint32_t *a, int k)
{
    uint8_t d[24];
    if (k < 0 || k > 6)
        k = 6;
    for (int i = 0; i < k; i++)
        wr32(d + 4 * (size_t)i, a[i]);
    return add_opt(b, n, code, d, (uint8_t)(4 * k));
}

static inline size_t build_reply(uint8_t *b, const struct srv_reply *r)
{
    size_t n = mk_header(b, r->xid, r->mac ? r->mac : MAC, r->yiaddr);
    n = add_opt8(b, n, 53, r->type);
    if (r->server_id)
        n = add_opt32(b, n, 54, r->server_id);
    if (r->mask)
        n = add_opt32(b, n, 1, r->mask);
    if (r->lease_s)
        n = add_opt32(b, n, 51, r->lease_s);
    if (r->t1_s)
        n = add_opt32(b, n, 58, r->t1_s);
    if (r->t2_s)
        n = add_opt32(b, n, 59, r->t2_s);
    if (r->n_routers)
        n = add_list(b, n, 3, r->routers, r->n_routers);
    if (r->n_dns)
        n = add_list(b, n, 6, r->dns, r->n_dns);
    if (r->n_ntp)
        n = add_list(b, n, 42, r->ntp, r->n_ntp);
    if (r->message)
        n = add_opt(b, n, 56, r->message, (uint8_t)strlen(r->message));
    return add_end(b, n);
}

/* What a client message carried. */
struct cmsg {
    uint8_t op, htype, hlen, type;
    uint32_t xid, ciaddr;
    uint16_t secs, flags;
    uint8_t chaddr[6];
    bool has50, has54, has55, has57, has12, has61, has56;
    uint32_t req, server;
    uint16_t max_msg;
    uint8_t prl[32], prl_len;
    uint8_t cid[64], cid_len;
    char hostname[64];
    bool ended;
};

/* Parses a message the client built; false if it is not well formed. */
static inline bool parse_client(const uint8_t *b, size_t len, struct cmsg *m)
{
    memset(m, 0, sizeof *m);
    if (len < 240 || rd32(b + 236) != LADE_DHCP_MAGIC)
        return false;
    m->op = b[0];
    m->htype = b[1];
    m->hlen = b[2];
    m->xid = rd32(b + 4);
    m->secs = (uint16_t)((b[8] << 8) | b[9]);
    m->flags = (uint16_t)((b[10] << 8) | b[11]);
    m->ciaddr = rd32(b + 12);
    memcpy(m->chaddr, b + 28, 6);
    size_t i = 240;
    while (i < len) {
        uint8_t c = b[i];
        if (c == 0) {
            i++;
            continue;
        }
        if (c == 255) {
            m->ended = true;
            break;
        }
        if (i + 2 > len || i + 2 + b[i + 1] > len)
            return false;
        uint8_t l = b[i + 1];
        const uint8_t *d = b + i + 2;
        switch (c) {
        case 53:
            m->type = d[0];
            break;
        case 50:
            m->has50 = true;
            m->req = rd32(d);
            break;
        case 54:
            m->has54 = true;
            m->server = rd32(d);
            break;
        case 55:
            m->has55 = true;
            memcpy(m->prl, d, l);
            m->prl_len = l;
            break;
        case 57:
            m->has57 = true;
            m->max_msg = (uint16_t)((d[0] << 8) | d[1]);
            break;
        case 12:
            m->has12 = true;
            memcpy(m->hostname, d, l);
            m->hostname[l] = 0;
            break;
        case 61:
            m->has61 = true;
            memcpy(m->cid, d, l);
            m->cid_len = l;
            break;
        case 56:
            m->has56 = true;
            break;
        default:
            break;
        }
        i += 2 + l;
    }
    return m->ended;
}

#endif
