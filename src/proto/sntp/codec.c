/* lade — SNTP codec (RFC 4330, RFC 5905 §7). Contract in include/lade/sntp.h.
 *
 * The header is 48 bytes, big-endian (RFC 5905 §7.3, figure 8):
 *   0 LI(2) VN(3) Mode(3) | 1 stratum | 2 poll | 3 precision | 4 root delay | 8 root dispersion
 *   12 reference id | 16 reference ts | 24 origin ts | 32 receive ts | 40 transmit ts
 */
#include "lade/sntp.h"

#include <string.h>

/* RFC 5905 MAXDISP: 16 s. A root delay or dispersion this large means the server does not know
 * the time to any useful accuracy (or the field is garbage). */
#define ROOT_MAX_S 16u
/* Server processing time (transmit − receive) above this is nonsense. */
#define PROC_MAX_US (16ll * 1000000ll)

static const char *const result_names[LADE_SNTP_RESULT__COUNT] = {
    [LADE_SNTP_OK] = "ok",
    [LADE_SNTP_KOD] = "kod",
    [LADE_SNTP_E_SHORT] = "short",
    [LADE_SNTP_E_MODE] = "mode",
    [LADE_SNTP_E_VERSION] = "version",
    [LADE_SNTP_E_ORIGIN] = "origin",
    [LADE_SNTP_E_UNSYNC] = "unsynchronised",
    [LADE_SNTP_E_STRATUM] = "stratum",
    [LADE_SNTP_E_TX_ZERO] = "transmit-zero",
    [LADE_SNTP_E_ROOT] = "root-distance",
    [LADE_SNTP_E_ORDER] = "timestamp-order",
    [LADE_SNTP_E_TIMEOUT] = "timeout",
    [LADE_SNTP_E_SEND] = "send",
    [LADE_SNTP_E_REFUSED] = "refused",
    [LADE_SNTP_E_RATE] = "kod-rate",
    [LADE_SNTP_E_DENY] = "kod-deny",
    [LADE_SNTP_E_KISS] = "kod-other",
    [LADE_SNTP_E_FLOOR] = "below-floor",
    [LADE_SNTP_E_OUTVOTED] = "outvoted",
    [LADE_SNTP_E_UNCONFIRMED] = "unconfirmed",
};

const char *lade_sntp_result_name(enum lade_sntp_result r)
{
    if ((unsigned)r < LADE_SNTP_RESULT__COUNT && result_names[r])
        return result_names[r];
    return "unknown";
}

/* ---------------------------------------------------------------- timestamps */

uint64_t lade_ntp_from_unix_ms(int64_t unix_ms)
{
    /* Floor division, so -1 ms is 1969-12-31T23:59:59.999 and not 1970-01-01T00:00:00.001. */
    int64_t s = unix_ms / 1000;
    int64_t ms = unix_ms % 1000;
    if (ms < 0) {
        ms += 1000;
        s -= 1;
    }
    /* Modulo 2^32: era wrap (2036-02-07T06:28:16Z is second 0 of era 1). */
    uint32_t sec = (uint32_t)((uint64_t)s + LADE_NTP_UNIX_DELTA_S);
    uint32_t frac = (uint32_t)(((uint64_t)ms << 32) / 1000u);
    return ((uint64_t)sec << 32) | frac;
}

/* A magnitude in units of 2^-32 s → units of 1/scale s, rounded to nearest (halves away from
 * zero), symmetric in sign. */
static int64_t fixed_to(uint64_t magnitude, bool neg, uint64_t scale)
{
    uint64_t v =
        (magnitude >> 32) * scale + (((magnitude & 0xffffffffu) * scale + 0x80000000u) >> 32);
    return neg ? -(int64_t)v : (int64_t)v;
}

/* a − b (modulo 2^64, so the era cancels out) in 1/scale s. */
static int64_t diff_scaled(uint64_t a, uint64_t b, uint64_t scale)
{
    uint64_t d = a - b;
    if (d >> 63)
        return fixed_to((uint64_t)0 - d, true, scale);
    return fixed_to(d, false, scale);
}

int64_t lade_ntp_diff_us(uint64_t a, uint64_t b)
{
    return diff_scaled(a, b, 1000000u);
}

int64_t lade_ntp_to_unix_ms(uint64_t ts, int64_t pivot_ms)
{
    return pivot_ms + diff_scaled(ts, lade_ntp_from_unix_ms(pivot_ms), 1000u);
}

uint64_t lade_ntp_short_to_us(uint32_t v)
{
    return ((uint64_t)v * 1000000u) >> 16;
}

void lade_sntp_offset_delay(uint64_t t1, uint64_t t2, uint64_t t3, uint64_t t4, int64_t *offset_us,
                            int64_t *delay_us)
{
    /* Each difference is converted to µs first: their sum in 2^-32 s units could overflow. */
    int64_t d21 = lade_ntp_diff_us(t2, t1);
    int64_t d34 = lade_ntp_diff_us(t3, t4);
    if (offset_us)
        *offset_us = (d21 + d34) / 2;
    if (delay_us)
        *delay_us = lade_ntp_diff_us(t4, t1) - lade_ntp_diff_us(t3, t2);
}

/* ---------------------------------------------------------------- codec */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

size_t lade_sntp_packet_size(const struct lade_sntp_packet *p)
{
    (void)p;
    return LADE_SNTP_PACKET_LEN;
}

lade_err lade_sntp_encode(const struct lade_sntp_packet *p, uint8_t *buf, size_t cap, size_t *len)
{
    if (!p || !buf || !len)
        return LADE_ERR_INVAL;
    if (cap < LADE_SNTP_PACKET_LEN)
        return LADE_ERR_NOSPACE;
    buf[0] = (uint8_t)((p->leap & 3u) << 6 | (p->version & 7u) << 3 | (p->mode & 7u));
    buf[1] = p->stratum;
    buf[2] = (uint8_t)p->poll;
    buf[3] = (uint8_t)p->precision;
    put32(buf + 4, p->root_delay);
    put32(buf + 8, p->root_disp);
    put32(buf + 12, p->refid);
    put64(buf + 16, p->ref_ts);
    put64(buf + 24, p->orig_ts);
    put64(buf + 32, p->rx_ts);
    put64(buf + 40, p->tx_ts);
    *len = LADE_SNTP_PACKET_LEN;
    return LADE_OK;
}

lade_err lade_sntp_encode_request(uint64_t tx_cookie, uint8_t *buf, size_t cap, size_t *len)
{
    /* RFC 4330 §5 / RFC 5905 §14: everything zero but LI/VN/mode and the transmit timestamp. */
    struct lade_sntp_packet p = {.leap = 0, .version = 4, .mode = 3, .tx_ts = tx_cookie};
    return lade_sntp_encode(&p, buf, cap, len);
}

lade_err lade_sntp_parse(const uint8_t *buf, size_t len, struct lade_sntp_packet *out)
{
    if (!buf || !out)
        return LADE_ERR_INVAL;
    if (len < LADE_SNTP_PACKET_LEN)
        return LADE_ERR_PROTO;
    out->leap = buf[0] >> 6;
    out->version = (buf[0] >> 3) & 7u;
    out->mode = buf[0] & 7u;
    out->stratum = buf[1];
    out->poll = (int8_t)buf[2];
    out->precision = (int8_t)buf[3];
    out->root_delay = get32(buf + 4);
    out->root_disp = get32(buf + 8);
    out->refid = get32(buf + 12);
    out->ref_ts = get64(buf + 16);
    out->orig_ts = get64(buf + 24);
    out->rx_ts = get64(buf + 32);
    out->tx_ts = get64(buf + 40);
    return LADE_OK;
}

enum lade_sntp_result lade_sntp_decode_reply(const uint8_t *buf, size_t len, uint64_t tx_cookie,
                                             struct lade_sntp_reply *out)
{
    struct lade_sntp_reply r;
    memset(&r, 0, sizeof r);
    if (!buf || lade_sntp_parse(buf, len, &r.pkt) != LADE_OK)
        return LADE_SNTP_E_SHORT;
    const struct lade_sntp_packet *p = &r.pkt;
    r.root_delay_us = lade_ntp_short_to_us(p->root_delay);
    r.root_disp_us = lade_ntp_short_to_us(p->root_disp);
    if (out)
        *out = r;

    if (p->mode != 4)
        return LADE_SNTP_E_MODE;
    if (p->version != 3 && p->version != 4)
        return LADE_SNTP_E_VERSION;
    /* Before anything else is believed: only the server we asked can know the cookie (RFC 5905
     * §8 "bogus" test; RFC 4330 §5). A forged KoD must not make us drop a server. */
    if (p->orig_ts != tx_cookie)
        return LADE_SNTP_E_ORIGIN;
    if (p->stratum == 0) {
        /* RFC 5905 §7.4: the kiss code is the reference id as four ASCII characters. */
        for (int i = 0; i < 4; i++) {
            uint8_t ch = (uint8_t)(p->refid >> (24 - 8 * i));
            r.kiss[i] = (ch >= 0x21 && ch <= 0x7e) ? (char)ch : '?';
        }
        r.kiss[4] = '\0';
        if (out)
            memcpy(out->kiss, r.kiss, sizeof r.kiss);
        return LADE_SNTP_KOD;
    }
    if (p->leap == 3)
        return LADE_SNTP_E_UNSYNC;
    if (p->stratum > 15)
        return LADE_SNTP_E_STRATUM;
    if (p->tx_ts == 0)
        return LADE_SNTP_E_TX_ZERO;
    if ((p->root_delay >> 16) >= ROOT_MAX_S || (p->root_disp >> 16) >= ROOT_MAX_S)
        return LADE_SNTP_E_ROOT;
    /* Order on the raw stamps (a difference below 1 µs would round to 0). */
    uint64_t proc = p->tx_ts - p->rx_ts;
    if (p->rx_ts == 0 || (proc >> 63) || lade_ntp_diff_us(p->tx_ts, p->rx_ts) >= PROC_MAX_US)
        return LADE_SNTP_E_ORDER;
    return LADE_SNTP_OK;
}
