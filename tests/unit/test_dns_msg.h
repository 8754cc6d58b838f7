/* Builds DNS messages byte by byte for the DNS tests (unit, e2e hostile peers): deliberately
 * independent of the codec under test, so both sides of a test do not share a bug. */
#ifndef LADE_TEST_DNS_MSG_H
#define LADE_TEST_DNS_MSG_H

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct tmsg {
    uint8_t b[70000];
    size_t n;
};

static inline void tm_u8(struct tmsg *m, unsigned v)
{
    if (m->n < sizeof m->b)
        m->b[m->n++] = (uint8_t)v;
}

static inline void tm_u16(struct tmsg *m, unsigned v)
{
    tm_u8(m, v >> 8);
    tm_u8(m, v);
}

static inline void tm_u32(struct tmsg *m, uint32_t v)
{
    tm_u16(m, v >> 16);
    tm_u16(m, v & 0xFFFFu);
}

static inline void tm_bytes(struct tmsg *m, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tm_u8(m, ((const uint8_t *)p)[i]);
}

/* flags: the whole second word (QR 0x8000, AA 0x0400, TC 0x0200, RD 0x0100, RA 0x0080, rcode). */
static inline void tm_header(struct tmsg *m, unsigned id, unsigned flags, unsigned qd, unsigned an,
                             unsigned ns, unsigned ar)
{
    m->n = 0;
    tm_u16(m, id);
    tm_u16(m, flags);
    tm_u16(m, qd);
    tm_u16(m, an);
    tm_u16(m, ns);
    tm_u16(m, ar);
}

/* Dotted text, uncompressed, root label appended ("" is the root). */
static inline void tm_name(struct tmsg *m, const char *dotted)
{
    const char *p = dotted;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        tm_u8(m, (unsigned)len);
        tm_bytes(m, p, len);
        p += len;
        if (*p == '.')
            p++;
    }
    tm_u8(m, 0);
}

static inline void tm_ptr(struct tmsg *m, unsigned off)
{
    tm_u16(m, 0xC000u | off);
}

static inline void tm_question(struct tmsg *m, const char *name, unsigned type, unsigned cls)
{
    tm_name(m, name);
    tm_u16(m, type);
    tm_u16(m, cls);
}

/* The fixed part of a record after its owner name. */
static inline void tm_rr_head(struct tmsg *m, unsigned type, unsigned cls, uint32_t ttl,
                              unsigned rdlen)
{
    tm_u16(m, type);
    tm_u16(m, cls);
    tm_u32(m, ttl);
    tm_u16(m, rdlen);
}

/* An A (dotted quad) or AAAA (colon) record's type, length and data after an owner name. */
static inline void tm_addr_rr(struct tmsg *m, const char *ip, uint32_t ttl)
{
    uint8_t b[16];
    if (strchr(ip, ':')) {
        if (inet_pton(AF_INET6, ip, b) != 1)
            abort();
        tm_rr_head(m, 28, 1, ttl, 16);
        tm_bytes(m, b, 16);
    } else {
        if (inet_pton(AF_INET, ip, b) != 1)
            abort();
        tm_rr_head(m, 1, 1, ttl, 4);
        tm_bytes(m, b, 4);
    }
}

/* A CNAME record's fixed part and an uncompressed target. */
static inline void tm_cname_rr(struct tmsg *m, const char *target, uint32_t ttl)
{
    size_t len = strlen(target) + 2; /* labels: one length byte per dot, plus root and first */
    if (*target == '\0')
        len = 1;
    tm_rr_head(m, 5, 1, ttl, (unsigned)len);
    tm_name(m, target);
}

/* An SOA record (owner written by the caller) with the given TTL and MINIMUM. */
static inline void tm_soa_rr(struct tmsg *m, uint32_t ttl, uint32_t minimum)
{
    tm_rr_head(m, 6, 1, ttl, 3 + 3 + 20); /* mname "a", rname "b", five 32-bit fields */
    tm_name(m, "a");
    tm_name(m, "b");
    tm_u32(m, 1);  /* serial */
    tm_u32(m, 60); /* refresh */
    tm_u32(m, 60); /* retry */
    tm_u32(m, 60); /* expire */
    tm_u32(m, minimum);
}

/* Length of the question section of a wire query (header excluded), or 0 if malformed. */
static inline size_t tm_question_len(const uint8_t *q, size_t n)
{
    size_t off = 12;
    while (off < n && q[off] != 0) {
        if (q[off] & 0xC0u)
            return 0;
        off += 1u + q[off];
    }
    if (off + 5 > n)
        return 0;
    return off + 5 - 12;
}

/* A response to the wire query q[0..n): its id and question copied verbatim (so the 0x20 case
 * pattern is kept), the given flags word OR'd with QR|RD|RA, then n_ip address records owned by
 * a pointer to the question. Returns false when q is not a query it can answer. */
static inline int tm_reply(struct tmsg *m, const uint8_t *q, size_t n, unsigned flags,
                           const char *const *ips, size_t n_ip, uint32_t ttl)
{
    size_t ql = tm_question_len(q, n);
    if (ql == 0)
        return 0;
    tm_header(m, (unsigned)(q[0] << 8 | q[1]), 0x8180u | flags, 1, (unsigned)n_ip, 0, 0);
    tm_bytes(m, q + 12, ql);
    for (size_t i = 0; i < n_ip; i++) {
        tm_ptr(m, 12);
        tm_addr_rr(m, ips[i], ttl);
    }
    return 1;
}

#endif
