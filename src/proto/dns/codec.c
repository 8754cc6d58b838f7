/* DNS message codec: queries out, responses in. Contract in include/lade/dns.h; why each check
 * exists in docs/dns.md ("Anti-spoofing checks"). */
#include "lade/dns.h"

#include <string.h>

#define FLAG_QR 0x8000u
#define FLAG_AA 0x0400u
#define FLAG_TC 0x0200u
#define FLAG_RD 0x0100u
#define FLAG_RA 0x0080u

/* Pointers may jump at most this often while reading one name. A name has at most 127 labels,
 * so a legitimate message never needs more; combined with "pointers point backwards" and the
 * 255-byte limit this bounds the work per name whatever the input. */
#define MAX_JUMPS 127

const char *lade_dns_rcode_name(unsigned rcode)
{
    switch (rcode) {
    case LADE_DNS_NOERROR:
        return "NOERROR";
    case LADE_DNS_FORMERR:
        return "FORMERR";
    case LADE_DNS_SERVFAIL:
        return "SERVFAIL";
    case LADE_DNS_NXDOMAIN:
        return "NXDOMAIN";
    case LADE_DNS_NOTIMP:
        return "NOTIMP";
    case LADE_DNS_REFUSED:
        return "REFUSED";
    }
    return "RCODE?";
}

const char *lade_dns_reject_name(enum lade_dns_reject r)
{
    switch (r) {
    case LADE_DNS_REJ_NONE:
        return "none";
    case LADE_DNS_REJ_MALFORMED:
        return "malformed";
    case LADE_DNS_REJ_TOO_LONG:
        return "too long";
    case LADE_DNS_REJ_NOT_RESPONSE:
        return "not a response";
    case LADE_DNS_REJ_OPCODE:
        return "wrong opcode";
    case LADE_DNS_REJ_ID:
        return "wrong id";
    case LADE_DNS_REJ_QDCOUNT:
        return "not one question";
    case LADE_DNS_REJ_QUESTION:
        return "other question";
    case LADE_DNS_REJ_CASE:
        return "0x20 case not kept";
    case LADE_DNS_REJ_CHAIN:
        return "CNAME chain too long";
    }
    return "?";
}

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static uint8_t lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/* Text length of name without one trailing dot, after checking its syntax; 0 when invalid. */
static size_t name_check(const char *name)
{
    size_t len = strnlen(name, LADE_DNS_NAME_TEXT_MAX + 2);
    if (len > 0 && name[len - 1] == '.')
        len--;
    if (len == 0 || len > LADE_DNS_NAME_TEXT_MAX)
        return 0;
    size_t label = 0;
    for (size_t i = 0; i < len; i++) {
        if (name[i] == '.') {
            if (label == 0)
                return 0;
            label = 0;
            continue;
        }
        if (!host_char(name[i]) || ++label > LADE_DNS_LABEL_MAX)
            return 0;
    }
    return label == 0 ? 0 : len;
}

lade_err lade_dns_name_canonical(const char *name, char *out, size_t cap)
{
    if (!name || !out)
        return LADE_ERR_INVAL;
    size_t len = name_check(name);
    if (len == 0)
        return LADE_ERR_INVAL;
    if (cap < len + 1)
        return LADE_ERR_NOSPACE;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)lower((uint8_t)name[i]);
    out[len] = '\0';
    return LADE_OK;
}

lade_err lade_dns_query_init(struct lade_dns_query *q, const char *name, uint16_t qtype,
                             uint16_t id, const uint8_t *case_bits)
{
    if (!q || !name || (qtype != LADE_DNS_TYPE_A && qtype != LADE_DNS_TYPE_AAAA))
        return LADE_ERR_INVAL;
    size_t len = name_check(name);
    if (len == 0)
        return LADE_ERR_INVAL;
    memset(q, 0, sizeof *q);
    q->id = id;
    q->qtype = qtype;
    q->exact_case = case_bits != NULL;
    /* Text "a.bc" becomes wire 1 'a' 2 'b' 'c' 0: one length byte per label plus the root. */
    size_t w = 0, label_at = 0;
    q->qname[w++] = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)name[i];
        if (c == '.') {
            q->qname[label_at] = (uint8_t)(w - label_at - 1);
            label_at = w;
            q->qname[w++] = 0;
            continue;
        }
        if (case_bits && (case_bits[i / 8] >> (i % 8) & 1u) &&
            ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
            c ^= 0x20u;
        q->qname[w++] = c;
    }
    q->qname[label_at] = (uint8_t)(w - label_at - 1);
    q->qname[w++] = 0;
    q->qname_len = (uint16_t)w;
    return LADE_OK;
}

size_t lade_dns_query_size(const struct lade_dns_query *q, bool tcp)
{
    return (tcp ? 2u : 0u) + LADE_DNS_HEADER_LEN + q->qname_len + 4u;
}

lade_err lade_dns_query_encode(const struct lade_dns_query *q, bool tcp, uint8_t *buf, size_t cap,
                               size_t *out_len)
{
    if (!q || !buf || !out_len || q->qname_len == 0 || q->qname_len > LADE_DNS_NAME_WIRE_MAX)
        return LADE_ERR_INVAL;
    size_t size = lade_dns_query_size(q, tcp);
    if (cap < size)
        return LADE_ERR_NOSPACE;
    uint8_t *p = buf;
    if (tcp) {
        wr16(p, (uint16_t)(size - 2));
        p += 2;
    }
    wr16(p, q->id);
    wr16(p + 2, FLAG_RD); /* QR=0, opcode QUERY, RD=1 */
    wr16(p + 4, 1);       /* QDCOUNT */
    wr16(p + 6, 0);
    wr16(p + 8, 0);
    wr16(p + 10, 0);
    p += LADE_DNS_HEADER_LEN;
    memcpy(p, q->qname, q->qname_len);
    p += q->qname_len;
    wr16(p, q->qtype);
    wr16(p + 2, LADE_DNS_CLASS_IN);
    *out_len = size;
    return LADE_OK;
}

lade_err lade_dns_tcp_frame(const uint8_t *buf, size_t len, const uint8_t **msg, size_t *msg_len)
{
    if (!buf || !msg || !msg_len)
        return LADE_ERR_INVAL;
    if (len < 2)
        return LADE_ERR_AGAIN;
    size_t n = rd16(buf);
    if (n < LADE_DNS_HEADER_LEN)
        return LADE_ERR_PROTO;
    if (len - 2 < n)
        return LADE_ERR_AGAIN;
    *msg = buf + 2;
    *msg_len = n;
    return LADE_OK;
}

/* ---------------------------------------------------------------- decoding */

/* Reads the (possibly compressed) name at off into out (wire form, uncompressed, at most
 * LADE_DNS_NAME_WIRE_MAX bytes). *end: offset just after the name where it starts (after the
 * first pointer if any). RFC 1035 §4.1.4: a pointer refers to a prior occurrence, so we demand
 * target < the pointer's own offset and target >= the header's end; 0x40/0x80 label types
 * (RFC 6891 §5 retired the extended ones) are malformed. */
static bool read_name(const uint8_t *msg, size_t len, size_t off, uint8_t *out, size_t *out_len,
                      size_t *end)
{
    size_t pos = off, w = 0;
    unsigned jumps = 0;
    bool jumped = false;
    for (;;) {
        if (pos >= len)
            return false;
        uint8_t b = msg[pos];
        if ((b & 0xC0u) == 0xC0u) {
            if (pos + 1 >= len)
                return false;
            size_t target = ((size_t)(b & 0x3Fu) << 8) | msg[pos + 1];
            if (target >= pos || target < LADE_DNS_HEADER_LEN || ++jumps > MAX_JUMPS)
                return false;
            if (!jumped)
                *end = pos + 2;
            jumped = true;
            pos = target;
            continue;
        }
        if (b & 0xC0u)
            return false;
        if (b == 0) {
            if (w + 1 > LADE_DNS_NAME_WIRE_MAX)
                return false;
            out[w++] = 0;
            if (!jumped)
                *end = pos + 1;
            *out_len = w;
            return true;
        }
        /* Room for this label and at least the root byte after it. */
        if (pos + 1 + b > len || w + 1 + b + 1 > LADE_DNS_NAME_WIRE_MAX)
            return false;
        memcpy(out + w, msg + pos, 1 + (size_t)b);
        w += 1 + (size_t)b;
        pos += 1 + (size_t)b;
    }
}

/* Skips a name, checking it is well formed. */
static bool skip_name(const uint8_t *msg, size_t len, size_t *off)
{
    uint8_t tmp[LADE_DNS_NAME_WIRE_MAX];
    size_t n;
    return read_name(msg, len, *off, tmp, &n, off);
}

/* Wire names equal without regard to ASCII case (RFC 4343). Length bytes are below 64, so
 * folding them is harmless. */
static bool name_eq_nocase(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    if (an != bn)
        return false;
    for (size_t i = 0; i < an; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

/* One resource record, located. */
struct rr {
    size_t name_off; /* where its owner name starts */
    uint16_t type, cls;
    uint32_t ttl;
    size_t rdata, rdlen;
};

static bool read_rr(const uint8_t *msg, size_t len, size_t *off, struct rr *r)
{
    r->name_off = *off;
    if (!skip_name(msg, len, off))
        return false;
    if (len - *off < 10)
        return false;
    const uint8_t *p = msg + *off;
    r->type = rd16(p);
    r->cls = rd16(p + 2);
    r->ttl = rd32(p + 4);
    if (r->ttl & 0x80000000u) /* RFC 2181 §8 */
        r->ttl = 0;
    r->rdlen = rd16(p + 8);
    r->rdata = *off + 10;
    if (len - r->rdata < r->rdlen)
        return false;
    *off = r->rdata + r->rdlen;
    return true;
}

static uint32_t cap_ttl(uint32_t ttl)
{
    return ttl > LADE_DNS_TTL_MAX_S ? LADE_DNS_TTL_MAX_S : ttl;
}

static lade_err reject(struct lade_dns_answer *a, enum lade_dns_reject why)
{
    a->reject = why;
    a->n_addr = 0;
    return LADE_ERR_PROTO;
}

/* Checks the records of a section that matter to us: addresses must have their exact size and
 * a CNAME's target must fill its RDATA exactly. Records of other types or classes are only
 * bounds-checked. */
static bool check_answer_rr(const uint8_t *msg, size_t len, const struct rr *r)
{
    if (r->cls != LADE_DNS_CLASS_IN)
        return true;
    if (r->type == LADE_DNS_TYPE_A)
        return r->rdlen == 4;
    if (r->type == LADE_DNS_TYPE_AAAA)
        return r->rdlen == 16;
    if (r->type == LADE_DNS_TYPE_CNAME) {
        size_t end = r->rdata;
        /* The name may not run past RDATA: decode within [0, rdata + rdlen). */
        if (!skip_name(msg, r->rdata + r->rdlen, &end))
            return false;
        return end == r->rdata + r->rdlen;
    }
    (void)msg;
    (void)len;
    return true;
}

/* SOA RDATA: mname, rname, serial, refresh, retry, expire, minimum (RFC 1035 §3.3.13). */
static bool soa_minimum(const uint8_t *msg, const struct rr *r, uint32_t *minimum)
{
    size_t end = r->rdata + r->rdlen, off = r->rdata;
    if (!skip_name(msg, end, &off) || !skip_name(msg, end, &off) || end - off != 20)
        return false;
    *minimum = rd32(msg + off + 16);
    if (*minimum & 0x80000000u)
        *minimum = 0;
    return true;
}

static void add_addr(struct lade_dns_answer *a, struct lade_dns_addr *addrs, size_t cap,
                     const uint8_t *b, uint8_t n)
{
    a->n_addr_seen++;
    for (size_t i = 0; i < a->n_addr; i++)
        if (addrs[i].len == n && memcmp(addrs[i].b, b, n) == 0)
            return;
    if (a->n_addr >= cap)
        return;
    memset(&addrs[a->n_addr], 0, sizeof addrs[a->n_addr]);
    addrs[a->n_addr].len = n;
    memcpy(addrs[a->n_addr].b, b, n);
    a->n_addr++;
}

lade_err lade_dns_decode_response(const struct lade_dns_query *q, const uint8_t *msg, size_t len,
                                  size_t max_len, struct lade_dns_answer *a,
                                  struct lade_dns_addr *addrs, size_t cap)
{
    if (!q || !msg || !a || (cap > 0 && !addrs))
        return LADE_ERR_INVAL;
    memset(a, 0, sizeof *a);
    if (len > max_len)
        return reject(a, LADE_DNS_REJ_TOO_LONG);
    if (len < LADE_DNS_HEADER_LEN)
        return reject(a, LADE_DNS_REJ_MALFORMED);

    /* Header (RFC 1035 §4.1.1). */
    uint16_t id = rd16(msg), flags = rd16(msg + 2);
    size_t qd = rd16(msg + 4), an = rd16(msg + 6), ns = rd16(msg + 8), ar = rd16(msg + 10);
    if (!(flags & FLAG_QR))
        return reject(a, LADE_DNS_REJ_NOT_RESPONSE);
    if (((flags >> 11) & 0xFu) != 0)
        return reject(a, LADE_DNS_REJ_OPCODE);
    if (id != q->id)
        return reject(a, LADE_DNS_REJ_ID);
    if (qd != 1)
        return reject(a, LADE_DNS_REJ_QDCOUNT);
    a->rcode = (uint8_t)(flags & 0xFu);
    a->tc = (flags & FLAG_TC) != 0;
    a->aa = (flags & FLAG_AA) != 0;
    a->ra = (flags & FLAG_RA) != 0;

    /* The question must be ours (RFC 5452 §9.1: id, question and source address together). */
    uint8_t qname[LADE_DNS_NAME_WIRE_MAX];
    size_t qlen, off = LADE_DNS_HEADER_LEN;
    if (!read_name(msg, len, off, qname, &qlen, &off) || len - off < 4)
        return reject(a, LADE_DNS_REJ_MALFORMED);
    uint16_t qtype = rd16(msg + off), qclass = rd16(msg + off + 2);
    off += 4;
    if (!name_eq_nocase(qname, qlen, q->qname, q->qname_len) || qtype != q->qtype ||
        qclass != LADE_DNS_CLASS_IN)
        return reject(a, LADE_DNS_REJ_QUESTION);
    if (q->exact_case && memcmp(qname, q->qname, qlen) != 0)
        return reject(a, LADE_DNS_REJ_CASE);

    /* Truncated: the rest may stop anywhere (RFC 2181 §9); the caller asks over TCP. */
    if (a->tc)
        return LADE_OK;

    /* Every record of every section must be inside the message. */
    size_t an_start = off;
    struct rr r;
    for (size_t i = 0; i < an; i++)
        if (!read_rr(msg, len, &off, &r) || !check_answer_rr(msg, len, &r))
            return reject(a, LADE_DNS_REJ_MALFORMED);
    size_t ns_start = off;
    for (size_t i = 0; i < ns + ar; i++)
        if (!read_rr(msg, len, &off, &r))
            return reject(a, LADE_DNS_REJ_MALFORMED);
    if (off != len)
        return reject(a, LADE_DNS_REJ_MALFORMED);

    if (a->rcode != LADE_DNS_NOERROR && a->rcode != LADE_DNS_NXDOMAIN)
        return LADE_OK; /* SERVFAIL, REFUSED...: only the code matters */

    /* Follow the name through CNAMEs (RFC 1034 §3.6.2) to its addresses. Each step rescans the
     * answer section: at most LADE_DNS_CNAME_MAX + 1 scans, each bounded by the message. */
    uint8_t cur[LADE_DNS_NAME_WIRE_MAX], owner[LADE_DNS_NAME_WIRE_MAX];
    size_t cur_len = qlen, owner_len, tmp;
    memcpy(cur, qname, qlen);
    uint32_t ttl = UINT32_MAX;
    uint8_t want_len = q->qtype == LADE_DNS_TYPE_A ? 4 : 16;
    while (a->rcode == LADE_DNS_NOERROR) {
        bool have_cname = false;
        size_t cname_at = 0;
        uint32_t cname_ttl = 0, addr_ttl = UINT32_MAX;
        off = an_start;
        for (size_t i = 0; i < an; i++) {
            (void)read_rr(msg, len, &off, &r); /* checked above */
            if (r.cls != LADE_DNS_CLASS_IN || (r.type != q->qtype && r.type != LADE_DNS_TYPE_CNAME))
                continue;
            (void)read_name(msg, len, r.name_off, owner, &owner_len, &tmp);
            if (!name_eq_nocase(owner, owner_len, cur, cur_len))
                continue;
            if (r.type == q->qtype) {
                add_addr(a, addrs, cap, msg + r.rdata, want_len);
                if (r.ttl < addr_ttl)
                    addr_ttl = r.ttl;
            } else if (!have_cname) { /* RFC 2181 §10.1: one CNAME per name; use the first */
                have_cname = true;
                cname_at = r.rdata;
                cname_ttl = r.ttl;
            }
        }
        if (a->n_addr_seen > 0) { /* addresses win over a (conflicting) CNAME */
            if (addr_ttl < ttl)
                ttl = addr_ttl;
            break;
        }
        if (!have_cname)
            break;
        if (a->cname_hops == LADE_DNS_CNAME_MAX)
            return reject(a, LADE_DNS_REJ_CHAIN);
        a->cname_hops++;
        if (cname_ttl < ttl)
            ttl = cname_ttl;
        (void)read_name(msg, len, cname_at, cur, &cur_len, &tmp);
    }
    if (a->n_addr_seen > 0) {
        a->ttl_s = cap_ttl(ttl);
        return LADE_OK;
    }

    /* Negative answer: how long it may be cached comes from the zone's SOA (RFC 2308 §5). */
    off = ns_start;
    for (size_t i = 0; i < ns; i++) {
        (void)read_rr(msg, len, &off, &r);
        uint32_t minimum;
        if (r.type == LADE_DNS_TYPE_SOA && r.cls == LADE_DNS_CLASS_IN &&
            soa_minimum(msg, &r, &minimum)) {
            a->has_neg_ttl = true;
            a->neg_ttl_s = cap_ttl(r.ttl < minimum ? r.ttl : minimum);
            break;
        }
    }
    return LADE_OK;
}
