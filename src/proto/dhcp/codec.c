/* DHCPv4 codec: client messages (RFC 2131 §4.3.2 / Table 5) and server replies (OFFER, ACK,
 * NAK) with the option rules of RFC 2132 and RFC 3396. Pure: no I/O, no clock, no allocation. */
#include <string.h>

#include "lade/dhcp.h"

/* BOOTP field offsets (RFC 2131 §2, Figure 1). */
#define OFF_OP     0
#define OFF_HTYPE  1
#define OFF_HLEN   2
#define OFF_XID    4
#define OFF_SECS   8
#define OFF_FLAGS  10
#define OFF_CIADDR 12
#define OFF_YIADDR 16
#define OFF_SIADDR 20
#define OFF_CHADDR 28
#define OFF_SNAME  44
#define OFF_FILE   108
#define OFF_COOKIE 236
#define OFF_OPTS   240
#define SNAME_LEN  64
#define FILE_LEN   128

#define OPT_PAD       0
#define OPT_SUBNET    1
#define OPT_ROUTER    3
#define OPT_DNS       6
#define OPT_HOSTNAME  12
#define OPT_NTP       42
#define OPT_REQ_ADDR  50
#define OPT_LEASE     51
#define OPT_OVERLOAD  52
#define OPT_MSG_TYPE  53
#define OPT_SERVER_ID 54
#define OPT_PRL       55
#define OPT_MESSAGE   56
#define OPT_MAX_MSG   57
#define OPT_T1        58
#define OPT_T2        59
#define OPT_CLIENT_ID 61
#define OPT_END       255

static const uint8_t PRL[] = {OPT_SUBNET, OPT_ROUTER,    OPT_DNS, OPT_NTP,
                              OPT_LEASE,  OPT_SERVER_ID, OPT_T1,  OPT_T2};

const char *lade_dhcp_type_name(int type)
{
    static const char *const names[] = {"?",   "DISCOVER", "OFFER",   "REQUEST", "DECLINE",
                                        "ACK", "NAK",      "RELEASE", "INFORM"};
    if (type < 1 || type > 8)
        return "?";
    return names[type];
}

bool lade_ipv4_unicast(uint32_t a)
{
    uint8_t top = (uint8_t)(a >> 24);
    return top != 0 && top != 127 && top < 224;
}

int lade_ipv4_prefix_len(uint32_t mask)
{
    uint32_t inv = ~mask;
    /* contiguous: the inverted mask is 2^k - 1 */
    if ((inv & (inv + 1)) != 0)
        return -1;
    int n = 0;
    while (n < 32 && (mask & (0x80000000u >> n)))
        n++;
    return n;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* ---------------------------------------------------------------- encoder */

/* Which parts a kind carries (Table 5). */
struct layout {
    uint8_t type;
    bool ciaddr;    /* addr goes in ciaddr */
    bool req_addr;  /* addr goes in option 50 */
    bool server_id; /* option 54 required */
    bool params;    /* 55, 57, 12 */
    bool message;   /* 56 allowed */
};

static bool layout_of(enum lade_dhcp_kind k, struct layout *l)
{
    memset(l, 0, sizeof *l);
    switch (k) {
    case LADE_DHCP_KIND_DISCOVER:
        l->type = LADE_DHCP_DISCOVER;
        l->params = true;
        return true;
    case LADE_DHCP_KIND_REQUEST_SELECTING:
        l->type = LADE_DHCP_REQUEST;
        l->req_addr = l->server_id = l->params = true;
        return true;
    case LADE_DHCP_KIND_REQUEST_INIT_REBOOT:
        l->type = LADE_DHCP_REQUEST;
        l->req_addr = l->params = true;
        return true;
    case LADE_DHCP_KIND_REQUEST_RENEWING:
    case LADE_DHCP_KIND_REQUEST_REBINDING:
        l->type = LADE_DHCP_REQUEST;
        l->ciaddr = l->params = true;
        return true;
    case LADE_DHCP_KIND_DECLINE:
        l->type = LADE_DHCP_DECLINE;
        l->req_addr = l->server_id = l->message = true;
        return true;
    case LADE_DHCP_KIND_RELEASE:
        l->type = LADE_DHCP_RELEASE;
        l->ciaddr = l->server_id = l->message = true;
        return true;
    case LADE_DHCP_KIND_INFORM:
        /* RFC 2131 §4.4.3: ciaddr = the address the client already has; no 50/54 (§4.4.1
         * Table 5: "MUST NOT"); it asks for parameters with 55 like a DISCOVER. */
        l->type = LADE_DHCP_INFORM;
        l->ciaddr = l->params = true;
        return true;
    }
    return false;
}

static bool hostname_ok(const char *h, size_t n)
{
    if (n < 1 || n > LADE_DHCP_HOSTNAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (h[i] <= ' ' || h[i] > '~')
            return false;
    return true;
}

/* Options length (without the magic cookie), END included. */
static lade_err options_len(const struct lade_dhcp_msg *m, const struct layout *l, size_t *n)
{
    size_t len = 3; /* 53 */
    bool hint = m->kind == LADE_DHCP_KIND_DISCOVER && m->addr != 0;
    if (m->kind != LADE_DHCP_KIND_DISCOVER && !lade_ipv4_unicast(m->addr))
        return LADE_ERR_INVAL;
    if (hint && !lade_ipv4_unicast(m->addr))
        return LADE_ERR_INVAL;
    if (l->req_addr || hint)
        len += 6;
    if (l->server_id) {
        if (!lade_ipv4_unicast(m->server_id))
            return LADE_ERR_INVAL;
        len += 6;
    }
    if (m->client_id) {
        if (m->client_id_len < 2 || m->client_id_len > LADE_DHCP_CLIENT_ID_MAX)
            return LADE_ERR_INVAL;
        len += 2 + m->client_id_len;
    }
    if (l->params) {
        len += 2 + sizeof PRL;
        if (m->max_msg_size) {
            if (m->max_msg_size < LADE_DHCP_MAX_MSG_MIN)
                return LADE_ERR_INVAL;
            len += 4;
        }
        if (m->hostname) {
            if (!hostname_ok(m->hostname, m->hostname_len))
                return LADE_ERR_INVAL;
            len += 2 + m->hostname_len;
        }
    }
    if (l->message && m->message) {
        if (m->message_len < 1 || m->message_len > 255)
            return LADE_ERR_INVAL;
        len += 2 + m->message_len;
    }
    *n = len + 1; /* END */
    return LADE_OK;
}

lade_err lade_dhcp_msg_size(const struct lade_dhcp_msg *m, size_t *size)
{
    struct layout l;
    size_t opts;
    if (!m || !size || !layout_of(m->kind, &l))
        return LADE_ERR_INVAL;
    lade_err e = options_len(m, &l, &opts);
    if (e != LADE_OK)
        return e;
    size_t n = OFF_OPTS + opts;
    *size = n < LADE_DHCP_BOOTP_MIN ? LADE_DHCP_BOOTP_MIN : n;
    return LADE_OK;
}

static uint8_t *opt(uint8_t *p, uint8_t code, const void *data, size_t n)
{
    p[0] = code;
    p[1] = (uint8_t)n;
    memcpy(p + 2, data, n);
    return p + 2 + n;
}

static uint8_t *opt32(uint8_t *p, uint8_t code, uint32_t v)
{
    uint8_t b[4] = {0};
    put32(b, v);
    return opt(p, code, b, 4);
}

lade_err lade_dhcp_encode(const struct lade_dhcp_msg *m, uint8_t *buf, size_t cap, size_t *out_len)
{
    size_t size;
    struct layout l;
    if (!buf || !out_len)
        return LADE_ERR_INVAL;
    lade_err e = lade_dhcp_msg_size(m, &size);
    if (e != LADE_OK)
        return e;
    if (cap < size)
        return LADE_ERR_NOSPACE;
    (void)layout_of(m->kind, &l);
    memset(buf, 0, size);
    buf[OFF_OP] = 1; /* BOOTREQUEST */
    buf[OFF_HTYPE] = 1;
    buf[OFF_HLEN] = 6;
    put32(buf + OFF_XID, m->xid);
    buf[OFF_SECS] = (uint8_t)(m->secs >> 8);
    buf[OFF_SECS + 1] = (uint8_t)m->secs;
    if (m->broadcast && !l.ciaddr)
        buf[OFF_FLAGS] = 0x80; /* RFC 2131 §4.1: not with ciaddr set (replies go to ciaddr) */
    if (l.ciaddr)
        put32(buf + OFF_CIADDR, m->addr);
    memcpy(buf + OFF_CHADDR, m->chaddr, 6);
    put32(buf + OFF_COOKIE, LADE_DHCP_MAGIC);

    uint8_t *p = buf + OFF_OPTS;
    p = opt(p, OPT_MSG_TYPE, &l.type, 1);
    if (l.req_addr || (m->kind == LADE_DHCP_KIND_DISCOVER && m->addr != 0))
        p = opt32(p, OPT_REQ_ADDR, m->addr);
    if (l.server_id)
        p = opt32(p, OPT_SERVER_ID, m->server_id);
    if (m->client_id)
        p = opt(p, OPT_CLIENT_ID, m->client_id, m->client_id_len);
    if (l.params) {
        p = opt(p, OPT_PRL, PRL, sizeof PRL);
        if (m->max_msg_size) {
            uint8_t b[2] = {(uint8_t)(m->max_msg_size >> 8), (uint8_t)m->max_msg_size};
            p = opt(p, OPT_MAX_MSG, b, 2);
        }
        if (m->hostname)
            p = opt(p, OPT_HOSTNAME, m->hostname, m->hostname_len);
    }
    if (l.message && m->message)
        p = opt(p, OPT_MESSAGE, m->message, m->message_len);
    *p = OPT_END; /* the rest, up to 300 bytes, stays PAD (0) */
    *out_len = size;
    return LADE_OK;
}

/* ---------------------------------------------------------------- decoder */

struct area {
    const uint8_t *p;
    size_t n;
};

/* Checks one option area: every option fits, END present (RFC 2131 §4.1). Counts option 52. */
static lade_err check_area(struct area a, bool main_area, unsigned *n_overload)
{
    size_t i = 0;
    while (i < a.n) {
        uint8_t code = a.p[i];
        if (code == OPT_PAD) {
            i++;
            continue;
        }
        if (code == OPT_END)
            return LADE_OK;
        if (i + 1 >= a.n)
            return LADE_ERR_PROTO; /* no length byte */
        size_t len = a.p[i + 1];
        if (len > a.n - i - 2)
            return LADE_ERR_PROTO; /* runs past the area */
        if (code == OPT_OVERLOAD) {
            /* RFC 2131 §4.1: only in the options field. */
            if (!main_area)
                return LADE_ERR_PROTO;
            (*n_overload)++;
        }
        i += 2 + len;
    }
    return LADE_ERR_PROTO; /* no END */
}

/* Concatenates every instance of code across the areas, in order (RFC 3396 §5). Copies at most
 * cap bytes into out; *total = full length; returns the number of instances. */
static unsigned gather(const struct area *areas, size_t n_areas, uint8_t code, uint8_t *out,
                       size_t cap, size_t *total)
{
    unsigned found = 0;
    *total = 0;
    for (size_t k = 0; k < n_areas; k++) {
        const struct area a = areas[k];
        size_t i = 0;
        while (i < a.n) {
            uint8_t c = a.p[i];
            if (c == OPT_PAD) {
                i++;
                continue;
            }
            if (c == OPT_END)
                break;
            size_t len = a.p[i + 1]; /* check_area made sure it is there and fits */
            if (c == code) {
                found++;
                for (size_t j = 0; j < len; j++) {
                    if (*total + j < cap)
                        out[*total + j] = a.p[i + 2 + j];
                }
                *total += len;
            }
            i += 2 + len;
        }
    }
    return found;
}

/* A fixed-size option: absent (0), exact (1), or malformed (-1). */
static int get_fixed(const struct area *areas, size_t n_areas, uint8_t code, uint8_t *out,
                     size_t size)
{
    size_t total;
    if (gather(areas, n_areas, code, out, size, &total) == 0)
        return 0;
    return total == size ? 1 : -1;
}

static lade_err get_addr_list(const struct area *areas, size_t n_areas, uint8_t code, uint32_t *dst,
                              uint8_t *n)
{
    /* Keep more raw entries than we store so skipped ones do not push usable ones out. */
    uint8_t raw[4 * 4 * LADE_DHCP_MAX_ADDRS];
    size_t total;
    *n = 0;
    if (gather(areas, n_areas, code, raw, sizeof raw, &total) == 0)
        return LADE_OK;
    if (total == 0 || total % 4 != 0)
        return LADE_ERR_PROTO;
    size_t avail = total < sizeof raw ? total : sizeof raw;
    for (size_t i = 0; i + 4 <= avail && *n < LADE_DHCP_MAX_ADDRS; i += 4) {
        uint32_t a = get32(raw + i);
        if (lade_ipv4_unicast(a))
            dst[(*n)++] = a;
    }
    return LADE_OK;
}

/* The one decoder behind lade_dhcp_decode_reply (inform false: OFFER/ACK/NAK, yiaddr checked)
 * and lade_dhcp_decode_inform_ack (inform true: only an ACK, yiaddr as sent — RFC 2131 §4.3.5
 * says the server does not fill it in for an INFORM). */
static lade_err decode(const uint8_t *buf, size_t len, uint32_t xid, const uint8_t chaddr[6],
                       bool inform, struct lade_dhcp_reply *out)
{
    if (!buf || !chaddr || !out)
        return LADE_ERR_INVAL;
    memset(out, 0, sizeof *out);
    if (len > LADE_DHCP_MAX_REPLY)
        return LADE_ERR_TOO_BIG;
    if (len < LADE_DHCP_MIN_LEN)
        return LADE_ERR_PROTO;
    if (buf[OFF_OP] != 2 || buf[OFF_HTYPE] != 1 || buf[OFF_HLEN] != 6)
        return LADE_ERR_PROTO;
    if (get32(buf + OFF_COOKIE) != LADE_DHCP_MAGIC)
        return LADE_ERR_PROTO;
    out->xid = get32(buf + OFF_XID);
    if (out->xid != xid || memcmp(buf + OFF_CHADDR, chaddr, 6) != 0)
        return LADE_ERR_NOT_FOUND;

    struct area areas[3];
    size_t n_areas = 1;
    areas[0] = (struct area){buf + OFF_OPTS, len - OFF_OPTS};
    unsigned n_overload = 0;
    lade_err e = check_area(areas[0], true, &n_overload);
    if (e != LADE_OK)
        return e;
    if (n_overload > 1)
        return LADE_ERR_PROTO;
    if (n_overload == 1) {
        uint8_t ov = 0;
        if (get_fixed(areas, 1, OPT_OVERLOAD, &ov, 1) != 1 || ov < 1 || ov > 3)
            return LADE_ERR_PROTO;
        out->overload = ov;
        /* RFC 3396 §5: options field, then file, then sname. */
        if (ov & 1)
            areas[n_areas++] = (struct area){buf + OFF_FILE, FILE_LEN};
        if (ov & 2)
            areas[n_areas++] = (struct area){buf + OFF_SNAME, SNAME_LEN};
        for (size_t k = 1; k < n_areas; k++) {
            e = check_area(areas[k], false, &n_overload);
            if (e != LADE_OK)
                return e;
        }
    }

    uint8_t b[4] = {0};
    if (get_fixed(areas, n_areas, OPT_MSG_TYPE, b, 1) != 1)
        return LADE_ERR_PROTO;
    out->type = b[0];
    if (inform ? out->type != LADE_DHCP_ACK
               : (out->type != LADE_DHCP_OFFER && out->type != LADE_DHCP_ACK &&
                  out->type != LADE_DHCP_NAK))
        return LADE_ERR_PROTO;

    out->yiaddr = get32(buf + OFF_YIADDR);
    out->siaddr = get32(buf + OFF_SIADDR);
    if (!inform && out->type != LADE_DHCP_NAK && !lade_ipv4_unicast(out->yiaddr))
        return LADE_ERR_PROTO;

    int r = get_fixed(areas, n_areas, OPT_SERVER_ID, b, 4);
    if (r < 0)
        return LADE_ERR_PROTO;
    if (r > 0) {
        out->has_server_id = true;
        out->server_id = get32(b);
        if (!lade_ipv4_unicast(out->server_id))
            return LADE_ERR_PROTO;
    }
    r = get_fixed(areas, n_areas, OPT_SUBNET, b, 4);
    if (r < 0)
        return LADE_ERR_PROTO;
    if (r > 0) {
        out->has_subnet = true;
        out->subnet_mask = get32(b);
        if (lade_ipv4_prefix_len(out->subnet_mask) < 1)
            return LADE_ERR_PROTO;
    }
    r = get_fixed(areas, n_areas, OPT_LEASE, b, 4);
    if (r < 0)
        return LADE_ERR_PROTO;
    if (r > 0) {
        out->has_lease = true;
        out->lease_s = get32(b);
    }
    r = get_fixed(areas, n_areas, OPT_T1, b, 4);
    if (r < 0)
        return LADE_ERR_PROTO;
    if (r > 0) {
        out->has_t1 = true;
        out->t1_s = get32(b);
    }
    r = get_fixed(areas, n_areas, OPT_T2, b, 4);
    if (r < 0)
        return LADE_ERR_PROTO;
    if (r > 0) {
        out->has_t2 = true;
        out->t2_s = get32(b);
    }
    if (get_addr_list(areas, n_areas, OPT_ROUTER, out->routers, &out->n_routers) != LADE_OK ||
        get_addr_list(areas, n_areas, OPT_DNS, out->dns, &out->n_dns) != LADE_OK ||
        get_addr_list(areas, n_areas, OPT_NTP, out->ntp, &out->n_ntp) != LADE_OK)
        return LADE_ERR_PROTO;

    uint8_t msg[LADE_DHCP_MESSAGE_MAX - 1];
    size_t total;
    if (gather(areas, n_areas, OPT_MESSAGE, msg, sizeof msg, &total) > 0) {
        size_t k = total < sizeof msg ? total : sizeof msg;
        while (k > 0 && msg[k - 1] == 0)
            k--; /* RFC 2132 §2: receivers delete trailing NULs */
        for (size_t i = 0; i < k; i++)
            out->message[i] = (msg[i] >= ' ' && msg[i] <= '~') ? (char)msg[i] : '?';
        out->message[k] = '\0';
    }
    return LADE_OK;
}

lade_err lade_dhcp_decode_reply(const uint8_t *buf, size_t len, uint32_t xid,
                                const uint8_t chaddr[6], struct lade_dhcp_reply *out)
{
    return decode(buf, len, xid, chaddr, false, out);
}

lade_err lade_dhcp_decode_inform_ack(const uint8_t *buf, size_t len, uint32_t xid,
                                     const uint8_t chaddr[6], struct lade_dhcp_reply *out)
{
    return decode(buf, len, xid, chaddr, true, out);
}
