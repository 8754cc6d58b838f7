/* WiFi scans for the site check (include/lade/wifiscan.h; SPEC R1, R13, R18). Pure: the parser
 * reads the buffer it is given, the evaluation writes findings into the report; no I/O.
 *
 * Two outside formats are read:
 *   - `iw dev <if> scan` (iw's scan.c): a block per BSS, "BSS <addr>(on <if>)[ -- associated]"
 *     then tab-indented "name: value" fields; sub-items of RSN:, WPA:, HT operation: … are
 *     indented deeper ("\t\t * ") or follow the name on the same line ("RSN:\t * Version: 1").
 *     iw prints SSID octets outside printable ASCII (and '\', and a leading/trailing space) as
 *     \xNN; a copy from a terminal may have turned tabs into spaces, so indentation is measured
 *     in columns (tab stops of 8);
 *   - wpa_supplicant's SCAN_RESULTS table, parsed by lade_wpa_parse_scan() one line at a time
 *     (its replies are capped at 4 KiB; a recorded scan may be longer, and a line number makes a
 *     better error message). SSIDs are printf_encode()d: \xNN, \\, \", \n, \r, \t, \e.
 */
#include "lade/wifiscan.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lade/codec.h"
#include "lade/sitecheck.h"
#include "lade/wpa.h"

#define SIGNAL_LO (-200)
#define SIGNAL_HI 50
#define FREQ_MAX  100000u

/* ---- names -------------------------------------------------------------------------------- */

const char *lade_wifi_band_name(enum lade_wifi_band b)
{
    switch (b) {
    case LADE_WIFI_BAND_2G4:
        return "2.4 GHz";
    case LADE_WIFI_BAND_5G:
        return "5 GHz";
    case LADE_WIFI_BAND_6G:
        return "6 GHz";
    default:
        return "other";
    }
}

enum lade_wifi_band lade_wifi_band_of(uint32_t f)
{
    if (f >= 2400 && f <= 2500)
        return LADE_WIFI_BAND_2G4;
    if (f >= 4900 && f < 5925)
        return LADE_WIFI_BAND_5G;
    if (f >= 5925 && f <= 7125)
        return LADE_WIFI_BAND_6G;
    return LADE_WIFI_BAND_OTHER;
}

const char *lade_wifi_security_name(enum lade_wifi_security s)
{
    switch (s) {
    case LADE_WIFI_SEC_OPEN:
        return "open";
    case LADE_WIFI_SEC_WEP:
        return "WEP";
    case LADE_WIFI_SEC_WPA:
        return "WPA";
    case LADE_WIFI_SEC_WPA2:
        return "WPA2";
    case LADE_WIFI_SEC_WPA3:
        return "WPA3";
    }
    return "unknown";
}

/* ---- small helpers ------------------------------------------------------------------------ */

static struct lade_str sv(const char *p, size_t n)
{
    return (struct lade_str){p, n};
}

static struct lade_str skip_ws(struct lade_str s)
{
    while (s.n > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.n--;
    }
    return s;
}

static struct lade_str trim_end(struct lade_str s)
{
    while (s.n > 0 && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t'))
        s.n--;
    return s;
}

/* Does s contain needle? */
static bool str_has(struct lade_str s, const char *needle)
{
    size_t k = strlen(needle);
    if (k == 0)
        return true;
    for (size_t i = 0; i + k <= s.n; i++)
        if (memcmp(s.p + i, needle, k) == 0)
            return true;
    return false;
}

static int hexval(char c)
{
    return lade_hex_digit(c);
}

/* "aa:bb:cc:dd:ee:ff" (either case) → lower case copy. */
static bool parse_bssid(struct lade_str s, char out[18])
{
    if (s.n != 17)
        return false;
    for (size_t i = 0; i < 17; i++) {
        char c = s.p[i];
        if (i % 3 == 2) {
            if (c != ':')
                return false;
        } else if (hexval(c) < 0) {
            return false;
        }
        out[i] = (c >= 'A' && c <= 'F') ? (char)(c - 'A' + 'a') : c;
    }
    out[17] = '\0';
    return true;
}

/* A decimal with an optional sign and an optional fraction of up to 6 digits: the value in
 * hundredths (the fraction beyond two digits is dropped). Whole view. */
static bool parse_centi(struct lade_str s, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (s.n > 0 && (s.p[0] == '-' || s.p[0] == '+')) {
        neg = s.p[0] == '-';
        i = 1;
    }
    size_t digits = 0;
    int64_t v = 0;
    for (; i < s.n && s.p[i] >= '0' && s.p[i] <= '9'; i++) {
        if (++digits > 7) /* far beyond any frequency or level: no overflow */
            return false;
        v = v * 10 + (s.p[i] - '0');
    }
    if (digits == 0)
        return false;
    int64_t frac = 0;
    if (i < s.n && s.p[i] == '.') {
        i++;
        size_t fd = 0;
        for (; i < s.n && s.p[i] >= '0' && s.p[i] <= '9'; i++, fd++) {
            if (fd >= 6)
                return false;
            if (fd < 2)
                frac = frac * 10 + (s.p[i] - '0');
        }
        if (fd == 0)
            return false;
        if (fd == 1)
            frac *= 10;
    }
    if (i != s.n)
        return false;
    v = v * 100 + frac;
    *out = neg ? -v : v;
    return true;
}

/* Hundredths → nearest integer, halves away from zero. */
static int64_t round_centi(int64_t c)
{
    return c < 0 ? (c - 50) / 100 : (c + 50) / 100;
}

/* Decodes the escapes iw and wpa_supplicant print in SSIDs into octets. False when the result
 * is longer than 32 octets. An unknown escape is kept as written. */
static bool decode_ssid(struct lade_str s, uint8_t raw[LADE_WIFI_SSID_MAX], uint8_t *len)
{
    size_t n = 0;
    for (size_t i = 0; i < s.n; i++) {
        uint8_t c = (uint8_t)s.p[i];
        if (c == '\\' && i + 1 < s.n) {
            char e = s.p[i + 1];
            int h1, h2;
            if (e == 'x' && i + 3 < s.n && (h1 = hexval(s.p[i + 2])) >= 0 &&
                (h2 = hexval(s.p[i + 3])) >= 0) {
                c = (uint8_t)(h1 * 16 + h2);
                i += 3;
            } else if (e == '\\' || e == '"') {
                c = (uint8_t)e;
                i++;
            } else if (e == 'n' || e == 'r' || e == 't' || e == 'e') {
                c = e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t' : 0x1b;
                i++;
            }
        }
        if (n >= LADE_WIFI_SSID_MAX)
            return false;
        raw[n++] = c;
    }
    *len = (uint8_t)n;
    return true;
}

/* Length of a well-formed UTF-8 sequence at p[0..n) that is a printable character (no C1
 * controls, no surrogates, no overlong forms), else 0. */
static size_t utf8_printable(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    size_t k;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
        k = 2;
        cp = c & 0x1fu;
    } else if (c >= 0xe0 && c <= 0xef) {
        k = 3;
        cp = c & 0x0fu;
    } else if (c >= 0xf0 && c <= 0xf4) {
        k = 4;
        cp = c & 0x07u;
    } else {
        return 0;
    }
    if (k > n)
        return 0;
    for (size_t i = 1; i < k; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    if (cp < 0xa0 || (k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return k;
}

/* The printable form of an SSID: printable ASCII and UTF-8 as they are, every other octet (and
 * '\') as \xNN; "" for a hidden network (no octets, or only zeros). */
static void ssid_text(const uint8_t *raw, size_t len, char out[LADE_WIFI_SSID_TEXT])
{
    size_t o = 0, i = 0, zeros = 0;
    for (size_t j = 0; j < len; j++)
        zeros += raw[j] == 0;
    if (zeros == len) {
        out[0] = '\0';
        return;
    }
    while (i < len) {
        uint8_t c = raw[i];
        size_t k;
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out[o++] = (char)c;
            i++;
        } else if (c >= 0x80 && (k = utf8_printable(raw + i, len - i)) > 0) {
            memcpy(out + o, raw + i, k);
            o += k;
            i += k;
        } else {
            static const char hex[] = "0123456789abcdef";
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
            i++;
        }
    }
    out[o] = '\0'; /* at most 4 bytes per octet: fits LADE_WIFI_SSID_TEXT */
}

bool lade_wifi_bss_is(const struct lade_wifi_bss *b, const char *ssid)
{
    if (!b || !ssid || !ssid[0])
        return false;
    size_t n = strlen(ssid);
    if (n == b->ssid_len && memcmp(b->ssid_raw, ssid, n) == 0)
        return true;
    return strcmp(b->ssid, ssid) == 0;
}

/* ---- parser ------------------------------------------------------------------------------- */

/* A short, printable quote of a line for an error message. */
static void quote_line(struct lade_str s, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < s.n && o + 4 < cap; i++) {
        char c = s.p[i];
        out[o++] = (c >= 0x20 && c < 0x7f) ? c : '?';
        if (i == 40 && s.n > 44) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
    }
    out[o] = '\0';
}

__attribute__((format(printf, 3, 4))) static lade_err fail(struct lade_wifi_scan *s, size_t line,
                                                           const char *fmt, ...)
{
    int k = line ? snprintf(s->error, sizeof s->error, "line %zu: ", line) : 0;
    if (k < 0 || (size_t)k >= sizeof s->error)
        k = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->error + k, sizeof s->error - (size_t)k, fmt, ap);
    va_end(ap);
    s->err_line = line;
    free(s->bss);
    s->bss = NULL;
    s->n = s->total = 0;
    s->truncated = false;
    return LADE_ERR_PROTO;
}

/* Keeps b unless the scan already holds LADE_WIFI_BSS_MAX; counts it either way. */
static lade_err keep(struct lade_wifi_scan *s, size_t *cap, const struct lade_wifi_bss *b)
{
    s->total++;
    if (s->n >= LADE_WIFI_BSS_MAX) {
        s->truncated = true;
        return LADE_OK;
    }
    if (s->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        if (ncap > LADE_WIFI_BSS_MAX)
            ncap = LADE_WIFI_BSS_MAX;
        struct lade_wifi_bss *nb = realloc(s->bss, ncap * sizeof *nb);
        if (!nb)
            return LADE_ERR_NOMEM;
        s->bss = nb;
        *cap = ncap;
    }
    s->bss[s->n++] = *b;
    return LADE_OK;
}

/* Fills channel and band from the frequency, and the printable SSID. */
static void bss_finish(struct lade_wifi_bss *b)
{
    b->channel = lade_wpa_freq_to_channel(b->freq_mhz);
    b->band = lade_wifi_band_of(b->freq_mhz);
    ssid_text(b->ssid_raw, b->ssid_len, b->ssid);
    if (b->band == LADE_WIFI_BAND_2G4 && b->channel == 0)
        b->band = LADE_WIFI_BAND_OTHER; /* 2400..2411 MHz: on no channel a charger can use */
    if (b->band != LADE_WIFI_BAND_2G4)
        b->secondary = 0; /* only the 2.4 GHz width is judged */
}

/* Line iteration over the whole input with line numbers. */
struct lines {
    const char *buf;
    size_t n, pos, no;
};

static bool next_line(struct lines *l, struct lade_str *line)
{
    if (l->pos >= l->n)
        return false;
    size_t start = l->pos, i = start;
    const char *nl = memchr(l->buf + start, '\n', l->n - start);
    i = nl ? (size_t)(nl - l->buf) : l->n;
    l->pos = nl ? i + 1 : l->n;
    l->no++;
    size_t len = i - start;
    if (len > 0 && l->buf[start + len - 1] == '\r')
        len--;
    *line = sv(l->buf + start, len);
    return true;
}

/* -- iw -- */

enum iw_section { SEC_NONE, SEC_RSN, SEC_WPA, SEC_HTOP, SEC_OTHER };

struct iw_block {
    bool open;
    size_t line; /* of the "BSS" line */
    struct lade_wifi_bss b;
    bool have_freq, have_ssid, have_signal, privacy, rsn, wpa, rsn_wpa3;
    enum iw_section section;
};

static lade_err iw_close(struct lade_wifi_scan *s, size_t *cap, struct iw_block *k)
{
    if (!k->open)
        return LADE_OK;
    k->open = false;
    if (!k->have_freq)
        return fail(s, k->line,
                    "the block of BSS %s has no 'freq:' line (was the scan output cut off?)",
                    k->b.bssid);
    if (k->rsn)
        k->b.security = k->rsn_wpa3 ? LADE_WIFI_SEC_WPA3 : LADE_WIFI_SEC_WPA2;
    else if (k->wpa)
        k->b.security = LADE_WIFI_SEC_WPA;
    else if (k->privacy)
        k->b.security = LADE_WIFI_SEC_WEP;
    else
        k->b.security = LADE_WIFI_SEC_OPEN;
    bss_finish(&k->b);
    return keep(s, cap, &k->b);
}

/* "BSS aa:bb:cc:dd:ee:ff(on wlan0) -- associated" (iw ≥ 3.x; older ones had a space before
 * "(on"). */
static lade_err iw_open(struct lade_wifi_scan *s, size_t no, struct lade_str line,
                        struct iw_block *k)
{
    memset(k, 0, sizeof *k);
    k->open = true;
    k->line = no;
    k->b.signal_dbm = LADE_WIFI_SIGNAL_NONE;
    struct lade_str rest = sv(line.p + 4, line.n - 4);
    if (rest.n < 17 || !parse_bssid(sv(rest.p, 17), k->b.bssid)) {
        char q[64];
        quote_line(line, q, sizeof q);
        return fail(s, no, "bad BSS address in '%s'", q);
    }
    rest = sv(rest.p + 17, rest.n - 17);
    if (rest.n > 0 && rest.p[0] != '(' && rest.p[0] != ' ')
        return fail(s, no, "bad BSS address");
    k->b.associated = str_has(rest, "-- associated");
    return LADE_OK;
}

/* A sub-item ("* name: value") of the current section. */
static void iw_sub(struct iw_block *k, struct lade_str item)
{
    if (item.n > 0 && item.p[0] == '*')
        item = skip_ws(sv(item.p + 1, item.n - 1));
    if (k->section == SEC_RSN && lade_str_has_prefix(item, "Authentication suites:")) {
        /* SAE (WPA3-Personal, also in WPA2/WPA3 transition), OWE (Enhanced Open) and the
         * Suite B 802.1X suites are WPA3; PSK and 802.1X alone are WPA2. */
        if (str_has(item, "SAE") || str_has(item, "OWE") || str_has(item, "SUITE-B"))
            k->rsn_wpa3 = true;
    } else if (k->section == SEC_HTOP && lade_str_has_prefix(item, "secondary channel offset:")) {
        struct lade_str v = skip_ws(sv(item.p + 25, item.n - 25));
        if (lade_str_has_prefix(v, "above"))
            k->b.secondary = 1;
        else if (lade_str_has_prefix(v, "below"))
            k->b.secondary = -1;
        else
            k->b.secondary = 0;
    }
}

/* A top-level field "name: value" of the current block. */
static lade_err iw_field(struct lade_wifi_scan *s, size_t no, struct lade_str f, struct iw_block *k)
{
    const char *colon = memchr(f.p, ':', f.n);
    if (!colon) {
        k->section = SEC_OTHER; /* e.g. a wrapped line of a field iw prints in pieces */
        return LADE_OK;
    }
    struct lade_str name = sv(f.p, (size_t)(colon - f.p));
    struct lade_str value = sv(colon + 1, f.n - name.n - 1);
    k->section = SEC_OTHER;
    if (lade_str_eq_c(name, "freq")) {
        int64_t c;
        struct lade_str v = trim_end(skip_ws(value));
        if (!parse_centi(v, &c) || c < 100 || c > (int64_t)FREQ_MAX * 100)
            return fail(s, no, "bad frequency '%.*s' (expected MHz such as 2437)", (int)v.n, v.p);
        if (!k->have_freq) {
            k->b.freq_mhz = (uint32_t)(c / 100);
            k->have_freq = true;
        }
    } else if (lade_str_eq_c(name, "signal")) {
        struct lade_str v = trim_end(skip_ws(value));
        if (v.n >= 4 && memcmp(v.p + v.n - 4, " dBm", 4) == 0) {
            int64_t c;
            struct lade_str num = trim_end(sv(v.p, v.n - 4));
            if (!parse_centi(num, &c) || c < SIGNAL_LO * 100 || c > SIGNAL_HI * 100)
                return fail(s, no, "bad signal '%.*s' (expected dBm such as -56.00 dBm)", (int)v.n,
                            v.p);
            if (!k->have_signal) {
                k->b.signal_dbm = (int16_t)round_centi(c);
                k->have_signal = true;
            }
        } else if (!str_has(v, "/100")) { /* "60/100": a driver without dBm; no level */
            return fail(s, no, "bad signal '%.*s' (expected dBm such as -56.00 dBm)", (int)v.n,
                        v.p);
        }
    } else if (lade_str_eq_c(name, "SSID")) {
        /* iw prints "SSID: " and the escaped octets; nothing else follows. */
        if (value.n > 0 && value.p[0] == ' ')
            value = sv(value.p + 1, value.n - 1);
        if (!k->have_ssid) {
            if (!decode_ssid(value, k->b.ssid_raw, &k->b.ssid_len))
                return fail(s, no, "SSID longer than 32 octets");
            k->have_ssid = true;
        }
    } else if (lade_str_eq_c(name, "capability")) {
        if (str_has(value, "Privacy"))
            k->privacy = true;
    } else if (lade_str_eq_c(name, "RSN")) {
        k->section = SEC_RSN;
        k->rsn = true;
    } else if (lade_str_eq_c(name, "WPA")) {
        k->section = SEC_WPA;
        k->wpa = true;
    } else if (lade_str_eq_c(name, "HT operation")) {
        k->section = SEC_HTOP;
        k->b.width_known = true;
    }
    /* "RSN:\t * Version: 1": the first sub-item follows the name. */
    struct lade_str rest = skip_ws(value);
    if (rest.n > 0 && rest.p[0] == '*')
        iw_sub(k, rest);
    return LADE_OK;
}

/* Column of the first non-blank character (tab stops of 8) and the text from there. */
static size_t indent(struct lade_str line, struct lade_str *text)
{
    size_t col = 0, i = 0;
    for (; i < line.n && (line.p[i] == ' ' || line.p[i] == '\t'); i++)
        col = line.p[i] == '\t' ? (col / 8 + 1) * 8 : col + 1;
    *text = trim_end(sv(line.p + i, line.n - i));
    return col;
}

static lade_err parse_iw(struct lines *l, struct lade_wifi_scan *s, size_t *cap,
                         struct lade_str first)
{
    struct iw_block k = {0};
    struct lade_str line = first;
    size_t no = l->no;
    lade_err err = LADE_OK;
    for (;;) {
        struct lade_str text;
        size_t col = indent(line, &text);
        if (text.n == 0) {
            /* blank lines between blocks are harmless */
        } else if (col == 0) {
            if (!lade_str_has_prefix(line, "BSS ")) {
                char q[64];
                quote_line(line, q, sizeof q);
                return fail(s, no, "expected 'BSS <address>' or an indented field, found '%s'", q);
            }
            if ((err = iw_close(s, cap, &k)) != LADE_OK)
                return err;
            if ((err = iw_open(s, no, line, &k)) != LADE_OK)
                return err;
        } else if (col <= 8 && text.p[0] != '*') {
            if ((err = iw_field(s, no, text, &k)) != LADE_OK)
                return err;
        } else {
            iw_sub(&k, text);
        }
        if (!next_line(l, &line))
            break;
        no = l->no;
        if (line.n > LADE_WIFI_LINE_MAX)
            return fail(s, no, "line longer than %u characters", LADE_WIFI_LINE_MAX);
    }
    return iw_close(s, cap, &k);
}

/* -- wpa_cli -- */

/* Security from wpa_supplicant's flags: "[WPA2-PSK-CCMP][ESS]", "[WPA-PSK-TKIP]",
 * "[WPA2-PSK+SAE-CCMP]", "[RSN-SAE-CCMP]", "[WEP]", "[ESS]" (open). */
static enum lade_wifi_security flags_security(struct lade_str f)
{
    bool rsn = false, wpa3 = false, wpa = false, wep = false;
    while (f.n > 0) {
        const char *open = memchr(f.p, '[', f.n);
        if (!open)
            break;
        size_t off = (size_t)(open - f.p) + 1;
        struct lade_str g = sv(f.p + off, f.n - off);
        const char *close = memchr(g.p, ']', g.n);
        size_t gl = close ? (size_t)(close - g.p) : g.n;
        struct lade_str grp = sv(g.p, gl);
        if (lade_str_has_prefix(grp, "WPA2-") || lade_str_has_prefix(grp, "RSN-")) {
            rsn = true;
            if (str_has(grp, "SAE") || str_has(grp, "OWE") || str_has(grp, "SUITE-B"))
                wpa3 = true;
        } else if (lade_str_has_prefix(grp, "WPA-")) {
            wpa = true;
        } else if (lade_str_has_prefix(grp, "WEP")) {
            wep = true;
        }
        size_t used = off + gl + (close ? 1 : 0);
        f = sv(f.p + used, f.n - used);
    }
    if (rsn)
        return wpa3 ? LADE_WIFI_SEC_WPA3 : LADE_WIFI_SEC_WPA2;
    if (wpa)
        return LADE_WIFI_SEC_WPA;
    return wep ? LADE_WIFI_SEC_WEP : LADE_WIFI_SEC_OPEN;
}

static lade_err parse_wpa(struct lines *l, struct lade_wifi_scan *s, size_t *cap)
{
    static const char head[] = "bssid\n";
    char buf[sizeof head - 1 + LADE_WIFI_LINE_MAX + 1];
    struct lade_str line;
    lade_err err;
    while (next_line(l, &line)) {
        if (trim_end(line).n == 0)
            continue;
        if (line.n > LADE_WIFI_LINE_MAX)
            return fail(s, l->no, "line longer than %u characters", LADE_WIFI_LINE_MAX);
        memcpy(buf, head, sizeof head - 1);
        memcpy(buf + sizeof head - 1, line.p, line.n);
        struct lade_wpa_bss w;
        size_t count = 0;
        if (lade_wpa_parse_scan(buf, sizeof head - 1 + line.n, &w, 1, &count, NULL) != LADE_OK ||
            count != 1) {
            char q[64];
            quote_line(line, q, sizeof q);
            return fail(s, l->no,
                        "expected 'bssid<TAB>frequency<TAB>signal<TAB>flags<TAB>ssid', found '%s'",
                        q);
        }
        struct lade_wifi_bss b;
        memset(&b, 0, sizeof b);
        if (!parse_bssid(w.bssid, b.bssid))
            return fail(s, l->no, "bad BSS address");
        b.freq_mhz = w.freq_mhz;
        b.signal_dbm = w.signal_dbm;
        b.security = flags_security(w.flags);
        if (!decode_ssid(w.ssid, b.ssid_raw, &b.ssid_len))
            return fail(s, l->no, "SSID longer than 32 octets");
        bss_finish(&b);
        if ((err = keep(s, cap, &b)) != LADE_OK)
            return err;
    }
    return LADE_OK;
}

void lade_wifi_scan_free(struct lade_wifi_scan *s)
{
    if (!s)
        return;
    free(s->bss);
    memset(s, 0, sizeof *s);
}

lade_err lade_wifi_scan_parse(const char *buf, size_t n, struct lade_wifi_scan *out)
{
    if (!out)
        return LADE_ERR_INVAL;
    memset(out, 0, sizeof *out);
    if (!buf && n) {
        snprintf(out->error, sizeof out->error, "no input");
        return LADE_ERR_INVAL;
    }
    if (n > LADE_WIFI_INPUT_MAX) {
        snprintf(out->error, sizeof out->error, "scan larger than %u bytes", LADE_WIFI_INPUT_MAX);
        return LADE_ERR_TOO_BIG;
    }
    if (n && memchr(buf, '\0', n)) {
        struct lines t = {buf, (size_t)((const char *)memchr(buf, '\0', n) - buf) + 1, 0, 0};
        struct lade_str ln;
        while (next_line(&t, &ln)) {
        }
        return fail(out, t.no, "a NUL byte: not a text scan");
    }
    struct lines l = {buf, n, 0, 0};
    struct lade_str line;
    size_t cap = 0;
    lade_err err;
    /* The first line that says something tells the format. */
    for (;;) {
        if (!next_line(&l, &line))
            return LADE_OK; /* empty: a scan that heard nothing */
        if (line.n > LADE_WIFI_LINE_MAX)
            return fail(out, l.no, "line longer than %u characters", LADE_WIFI_LINE_MAX);
        if (trim_end(line).n == 0 || lade_str_has_prefix(line, "Selected interface"))
            continue;
        break;
    }
    if (lade_str_has_prefix(line, "BSS ")) {
        out->format = LADE_WIFI_FORMAT_IW;
        err = parse_iw(&l, out, &cap, line);
    } else if (lade_str_has_prefix(line, "bssid /") || lade_str_eq_c(trim_end(line), "bssid")) {
        out->format = LADE_WIFI_FORMAT_WPA;
        err = parse_wpa(&l, out, &cap);
    } else if (lade_str_has_prefix(line, "FAIL")) {
        return fail(out, l.no, "wpa_supplicant answered FAIL (no scan results yet?)");
    } else {
        char q[64];
        quote_line(line, q, sizeof q);
        return fail(out, l.no,
                    "not a scan (expected iw dev <if> scan or wpa_cli scan_results): '%s'", q);
    }
    if (err == LADE_ERR_NOMEM) {
        lade_wifi_scan_free(out);
        snprintf(out->error, sizeof out->error, "out of memory");
    }
    return err;
}

/* ---- evaluation --------------------------------------------------------------------------- */

/* Appends to a bounded text; stops quietly at the end (the report cuts long texts anyway). */
__attribute__((format(printf, 3, 4))) static void cat(char *buf, size_t cap, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, cap - used, fmt, ap);
    va_end(ap);
}

/* "\"name\"" or "a hidden network", for lists in summaries. */
static const char *name_of(const struct lade_wifi_bss *b, char *buf, size_t cap)
{
    if (!b->ssid[0])
        return "a hidden network";
    snprintf(buf, cap, "\"%s\"", b->ssid);
    return buf;
}

static cJSON *bss_json(const struct lade_wifi_bss *b)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "ssid", b->ssid);
    cJSON_AddStringToObject(o, "bssid", b->bssid);
    cJSON_AddNumberToObject(o, "freq_mhz", b->freq_mhz);
    cJSON_AddNumberToObject(o, "channel", b->channel);
    cJSON_AddStringToObject(o, "band", lade_wifi_band_name(b->band));
    if (b->signal_dbm == LADE_WIFI_SIGNAL_NONE)
        cJSON_AddNullToObject(o, "signal_dbm");
    else
        cJSON_AddNumberToObject(o, "signal_dbm", b->signal_dbm);
    if (b->width_known)
        cJSON_AddNumberToObject(o, "width_mhz", b->secondary ? 40 : 20);
    cJSON_AddStringToObject(o, "security", lade_wifi_security_name(b->security));
    if (b->associated)
        cJSON_AddBoolToObject(o, "associated", true);
    return o;
}

static void add_bss_array(cJSON *obj, const char *name, const struct lade_wifi_bss *const *v,
                          size_t n)
{
    cJSON *a = cJSON_AddArrayToObject(obj, name);
    for (size_t i = 0; a && i < n; i++)
        cJSON_AddItemToArray(a, bss_json(v[i]));
}

/* Strongest first; a missing level last. */
static int by_signal(const void *a, const void *b)
{
    const struct lade_wifi_bss *x = *(const struct lade_wifi_bss *const *)a;
    const struct lade_wifi_bss *y = *(const struct lade_wifi_bss *const *)b;
    if (x->signal_dbm != y->signal_dbm)
        return x->signal_dbm > y->signal_dbm ? -1 : 1;
    return strcmp(x->bssid, y->bssid);
}

/* Everything the checks share. Arrays are pointers into the scans. */
struct ctx {
    const struct lade_wifi_scan *scans;
    size_t nscans;
    const char *ssid;
    struct lade_check_report *r;
    /* the network's BSSs over all scans (site) and its 2.4 GHz ones with their scan index */
    const struct lade_wifi_bss **site;
    size_t nsite;
    const struct lade_wifi_bss **site24;
    size_t *site24_scan;
    size_t nsite24;
    /* other 2.4 GHz networks above the neighbour level, one entry per BSSID (the strongest) */
    const struct lade_wifi_bss **others;
    size_t nothers;
    /* all BSSs of all scans, one per BSSID, strongest first (for "networks heard here") */
    const struct lade_wifi_bss **heard;
    size_t nheard;
    /* census of 1, 6, 11: networks reaching each, their strongest level */
    unsigned census_n[3];
    int census_best[3];
    unsigned least; /* the least used of 1, 6, 11 */
};

static const unsigned pref_ch[3] = {1, 6, 11};

static bool is_pref(unsigned ch)
{
    return ch == 1 || ch == 6 || ch == 11;
}

/* Does b's signal (20 MHz, or 40 MHz with its secondary channel four channels away) reach
 * into the 20 MHz channel ch? 2.4 GHz channels are 5 MHz apart and 22/20 MHz wide: up to four
 * channels apart they overlap. */
static bool reaches(const struct lade_wifi_bss *b, unsigned ch)
{
    int d = (int)b->channel - (int)ch;
    if (d >= -4 && d <= 4)
        return true;
    if (b->secondary) {
        int d2 = (int)b->channel + 4 * b->secondary - (int)ch;
        if (d2 >= -4 && d2 <= 4)
            return true;
    }
    return false;
}

static bool seen_bssid(const struct lade_wifi_bss **v, size_t n, const struct lade_wifi_bss *b,
                       size_t *at)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i]->bssid, b->bssid) == 0) {
            *at = i;
            return true;
        }
    return false;
}

/* One entry per BSSID, the strongest reading kept. */
static void add_unique(const struct lade_wifi_bss **v, size_t *n, const struct lade_wifi_bss *b)
{
    size_t at;
    if (seen_bssid(v, *n, b, &at)) {
        if (b->signal_dbm > v[at]->signal_dbm)
            v[at] = b;
    } else {
        v[(*n)++] = b;
    }
}

static lade_err collect(struct ctx *c)
{
    size_t total = 0;
    for (size_t i = 0; i < c->nscans; i++)
        total += c->scans[i].n;
    size_t alloc = total ? total : 1;
    c->site = calloc(alloc, sizeof *c->site);
    c->site24 = calloc(alloc, sizeof *c->site24);
    c->site24_scan = calloc(alloc, sizeof *c->site24_scan);
    c->others = calloc(alloc, sizeof *c->others);
    c->heard = calloc(alloc, sizeof *c->heard);
    if (!c->site || !c->site24 || !c->site24_scan || !c->others || !c->heard)
        return LADE_ERR_NOMEM;
    for (size_t i = 0; i < c->nscans; i++) {
        for (size_t j = 0; j < c->scans[i].n; j++) {
            const struct lade_wifi_bss *b = &c->scans[i].bss[j];
            add_unique(c->heard, &c->nheard, b);
            if (c->ssid && lade_wifi_bss_is(b, c->ssid)) {
                c->site[c->nsite++] = b;
                if (b->band == LADE_WIFI_BAND_2G4) {
                    c->site24_scan[c->nsite24] = i;
                    c->site24[c->nsite24++] = b;
                }
            } else if (b->band == LADE_WIFI_BAND_2G4 && b->channel &&
                       b->signal_dbm != LADE_WIFI_SIGNAL_NONE &&
                       b->signal_dbm > LADE_WIFI_NEIGHBOUR_DBM) {
                add_unique(c->others, &c->nothers, b);
            }
        }
    }
    qsort(c->others, c->nothers, sizeof *c->others, by_signal);
    qsort(c->heard, c->nheard, sizeof *c->heard, by_signal);
    return LADE_OK;
}

/* How crowded 1, 6 and 11 are; the least used one (fewest networks reaching it, then the weakest
 * strongest one; on a tie the site's own channel, so that nobody changes for nothing). */
static void census(struct ctx *c, unsigned site_ch)
{
    for (int k = 0; k < 3; k++) {
        c->census_n[k] = 0;
        c->census_best[k] = LADE_WIFI_SIGNAL_NONE;
        for (size_t i = 0; i < c->nothers; i++) {
            if (!reaches(c->others[i], pref_ch[k]))
                continue;
            c->census_n[k]++;
            if (c->others[i]->signal_dbm > c->census_best[k])
                c->census_best[k] = c->others[i]->signal_dbm;
        }
    }
    int best = 0;
    for (int k = 1; k < 3; k++) {
        bool fewer = c->census_n[k] < c->census_n[best];
        bool tie = c->census_n[k] == c->census_n[best];
        if (fewer || (tie && c->census_best[k] < c->census_best[best]) ||
            (tie && c->census_best[k] == c->census_best[best] && pref_ch[k] == site_ch))
            best = k;
    }
    c->least = pref_ch[best];
}

static cJSON *census_json(const struct ctx *c)
{
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; a && k < 3; k++) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
            continue;
        cJSON_AddNumberToObject(o, "channel", pref_ch[k]);
        cJSON_AddNumberToObject(o, "networks", c->census_n[k]);
        if (c->census_best[k] == LADE_WIFI_SIGNAL_NONE)
            cJSON_AddNullToObject(o, "strongest_dbm");
        else
            cJSON_AddNumberToObject(o, "strongest_dbm", c->census_best[k]);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static void census_text(const struct ctx *c, char *buf, size_t cap)
{
    for (int k = 0; k < 3; k++) {
        cat(buf, cap, "%schannel %u: %u", k ? ", " : "", pref_ch[k], c->census_n[k]);
        if (c->census_n[k])
            cat(buf, cap, " (strongest %d dBm)", c->census_best[k]);
    }
}

#define ADD(id, st, data, remedy, ...)                                                             \
    do {                                                                                           \
        if (!lade_check_add(c->r, (id), (st), (data), (remedy), __VA_ARGS__))                      \
            return LADE_ERR_NOMEM;                                                                 \
    } while (0)

static lade_err add_census(struct ctx *c)
{
    char txt[256] = "";
    census_text(c, txt, sizeof txt);
    cJSON *d = cJSON_CreateObject();
    if (d) {
        cJSON_AddItemToObject(d, "census", census_json(c));
        cJSON_AddNumberToObject(d, "least_used", c->least);
        cJSON_AddNumberToObject(d, "neighbour_dbm", LADE_WIFI_NEIGHBOUR_DBM);
    }
    char remedy[160];
    snprintf(remedy, sizeof remedy,
             "If you set up the chargers' network here, use a fixed channel %u (the least used "
             "of 1, 6 and 11).",
             c->least);
    ADD("wifi.census", LADE_CHECK_NOTE, d, remedy,
        "2.4 GHz networks stronger than %d dBm within reach of the usual channels: %s.",
        LADE_WIFI_NEIGHBOUR_DBM, txt);
    return LADE_OK;
}

static lade_err check_not_seen(struct ctx *c)
{
    char txt[400] = "";
    size_t show = c->nheard < 5 ? c->nheard : 5;
    for (size_t i = 0; i < show; i++) {
        const struct lade_wifi_bss *b = c->heard[i];
        char q[LADE_WIFI_SSID_TEXT + 2];
        cat(txt, sizeof txt, "%s%s (channel %u, ", i ? ", " : "", name_of(b, q, sizeof q),
            b->channel);
        if (b->signal_dbm == LADE_WIFI_SIGNAL_NONE)
            cat(txt, sizeof txt, "no level)");
        else
            cat(txt, sizeof txt, "%d dBm)", b->signal_dbm);
    }
    cJSON *d = cJSON_CreateObject();
    if (d) {
        cJSON_AddStringToObject(d, "ssid", c->ssid);
        cJSON_AddNumberToObject(d, "scans", (double)c->nscans);
        add_bss_array(d, "strongest", c->heard, c->nheard < 10 ? c->nheard : 10);
    }
    ADD("wifi.ssid", LADE_CHECK_FAIL, d,
        "Check the network name (capitals count) and that the access point is on. A hidden "
        "network does not show its name: make it visible for the check. If it is on but not "
        "heard here, the charger cannot reach it from this point: move or add an access point, "
        "or use PLC for this charger.",
        "The network \"%s\" was not seen here (%zu scan%s). %s%s%s", c->ssid, c->nscans,
        c->nscans == 1 ? "" : "s", c->nheard ? "Strongest networks heard: " : "No network heard.",
        txt, c->nheard ? "." : "");
    return LADE_OK;
}

static lade_err check_seen(struct ctx *c, bool from_assoc)
{
    size_t seen = 0, nb = 0;
    const struct lade_wifi_bss **uniq = calloc(c->nsite ? c->nsite : 1, sizeof *uniq);
    if (!uniq)
        return LADE_ERR_NOMEM;
    for (size_t i = 0; i < c->nscans; i++) {
        for (size_t j = 0; j < c->scans[i].n; j++)
            if (lade_wifi_bss_is(&c->scans[i].bss[j], c->ssid)) {
                seen++;
                break;
            }
    }
    for (size_t i = 0; i < c->nsite; i++)
        add_unique(uniq, &nb, c->site[i]);
    qsort(uniq, nb, sizeof *uniq, by_signal);
    cJSON *d = cJSON_CreateObject();
    if (d) {
        cJSON_AddStringToObject(d, "ssid", c->ssid);
        cJSON_AddNumberToObject(d, "scans", (double)c->nscans);
        cJSON_AddNumberToObject(d, "scans_seen", (double)seen);
        cJSON_AddBoolToObject(d, "from_association", from_assoc);
        add_bss_array(d, "bss", uniq, nb);
    }
    free(uniq);
    char scans[64] = "";
    if (c->nscans > 1)
        snprintf(scans, sizeof scans, " in %zu of %zu scans", seen, c->nscans);
    ADD("wifi.ssid", LADE_CHECK_PASS, d,
        from_assoc ? "If the chargers use another network, give its name with --ssid." : NULL,
        "The network \"%s\" is seen%s: %zu access point radio%s (BSSID%s)%s.", c->ssid, scans, nb,
        nb == 1 ? "" : "s", nb == 1 ? "" : "s",
        from_assoc ? "; it is the network this computer is connected to" : "");
    return LADE_OK;
}

static lade_err check_band(struct ctx *c)
{
    bool b5 = false, b6 = false;
    for (size_t i = 0; i < c->nsite; i++) {
        b5 |= c->site[i]->band == LADE_WIFI_BAND_5G;
        b6 |= c->site[i]->band == LADE_WIFI_BAND_6G;
    }
    cJSON *d = cJSON_CreateObject();
    if (d) {
        cJSON_AddBoolToObject(d, "ghz_2_4", c->nsite24 > 0);
        cJSON_AddBoolToObject(d, "ghz_5", b5);
        cJSON_AddBoolToObject(d, "ghz_6", b6);
    }
    const char *other = b5 && b6 ? "5 and 6 GHz" : b5 ? "5 GHz" : b6 ? "6 GHz" : "";
    if (c->nsite24 == 0)
        ADD("wifi.band", LADE_CHECK_FAIL, d,
            "Enable 2.4 GHz (802.11 b/g/n) on the access point for this network; chargers cannot "
            "use 5 GHz.",
            "\"%s\" is heard only on %s, not on 2.4 GHz.", c->ssid, other[0] ? other : "no band");
    else if (other[0])
        ADD("wifi.band", LADE_CHECK_PASS, d, NULL, "\"%s\" is on 2.4 GHz (and on %s).", c->ssid,
            other);
    else
        ADD("wifi.band", LADE_CHECK_PASS, d, NULL, "\"%s\" is on 2.4 GHz.", c->ssid);
    return LADE_OK;
}

/* The channel the network uses now: its strongest 2.4 GHz radio in the latest scan that saw
 * it. */
static const struct lade_wifi_bss *site_now(const struct ctx *c)
{
    if (c->nsite24 == 0)
        return NULL;
    size_t last = c->site24_scan[c->nsite24 - 1]; /* collected in scan order */
    const struct lade_wifi_bss *best = NULL;
    for (size_t i = 0; i < c->nsite24; i++)
        if (c->site24_scan[i] == last && (!best || c->site24[i]->signal_dbm > best->signal_dbm))
            best = c->site24[i];
    return best;
}

static lade_err check_channel(struct ctx *c)
{
    unsigned chans[16];
    size_t nch = 0;
    enum lade_check_status st = LADE_CHECK_PASS;
    for (size_t i = 0; i < c->nsite24; i++) {
        unsigned ch = c->site24[i]->channel;
        bool dup = false;
        for (size_t k = 0; k < nch; k++)
            dup |= chans[k] == ch;
        if (!dup && nch < 16)
            chans[nch++] = ch;
        if (ch < 1 || ch > 11)
            st = LADE_CHECK_FAIL;
        else if (!is_pref(ch) && st < LADE_CHECK_WARN)
            st = LADE_CHECK_WARN;
    }
    char list[96] = "";
    cJSON *d = cJSON_CreateObject();
    cJSON *a = d ? cJSON_AddArrayToObject(d, "channels") : NULL;
    for (size_t k = 0; k < nch; k++) {
        cat(list, sizeof list, "%s%u", k ? ", " : "", chans[k]);
        if (a)
            cJSON_AddItemToArray(a, cJSON_CreateNumber(chans[k]));
    }
    if (d)
        cJSON_AddNumberToObject(d, "least_used", c->least);
    char remedy[LADE_CHECK_TEXT_MAX];
    const char *plural = nch == 1 ? "" : "s";
    if (st == LADE_CHECK_FAIL) {
        snprintf(remedy, sizeof remedy,
                 "Set the access point's 2.4 GHz channel to 1, 6 or 11 (fixed, not Auto); %u is "
                 "the least used here. Chargers use channels 1 to 11 only.",
                 c->least);
        ADD("wifi.channel", st, d, remedy,
            "\"%s\" is on 2.4 GHz channel%s %s: chargers cannot use channels 12, 13 or 14.",
            c->ssid, plural, list);
    } else if (st == LADE_CHECK_WARN) {
        snprintf(remedy, sizeof remedy,
                 "Set the access point to a fixed channel 1, 6 or 11 (they do not overlap each "
                 "other); %u is the least used here.",
                 c->least);
        ADD("wifi.channel", st, d, remedy,
            "\"%s\" is on channel%s %s: usable, but a channel between 1, 6 and 11 overlaps both "
            "neighbouring ones and picks up their traffic.",
            c->ssid, plural, list);
    } else {
        ADD("wifi.channel", st, d, NULL, "\"%s\" is on channel%s %s (%s 1, 6, 11).", c->ssid,
            plural, list, nch == 1 ? "one of" : "all among");
    }
    return LADE_OK;
}

static lade_err check_fixed(struct ctx *c)
{
    /* The same radio on another channel in a later scan: the access point picked a new one. */
    for (size_t i = 0; i < c->nsite24; i++)
        for (size_t j = i + 1; j < c->nsite24; j++) {
            const struct lade_wifi_bss *a = c->site24[i], *b = c->site24[j];
            if (c->site24_scan[i] != c->site24_scan[j] && strcmp(a->bssid, b->bssid) == 0 &&
                a->channel != b->channel) {
                cJSON *d = cJSON_CreateObject();
                if (d) {
                    cJSON_AddStringToObject(d, "bssid", a->bssid);
                    cJSON_AddNumberToObject(d, "channel_before", a->channel);
                    cJSON_AddNumberToObject(d, "channel_after", b->channel);
                    cJSON_AddNumberToObject(d, "scans", (double)c->nscans);
                }
                ADD("wifi.fixed", LADE_CHECK_FAIL, d,
                    "Automatic channel selection is on: set a fixed channel 1, 6 or 11 on the "
                    "access point (chargers lose the connection when the channel changes).",
                    "The channel changed between scans: access point %s of \"%s\" was on "
                    "channel %u, later on %u.",
                    a->bssid, c->ssid, a->channel, b->channel);
                return LADE_OK;
            }
        }
    /* Scans in which the network was seen on 2.4 GHz, and whether its channels differ. */
    size_t scans_seen = 0;
    bool differ = false;
    unsigned first = 0;
    for (size_t i = 0; i < c->nsite24; i++) {
        if (i == 0 || c->site24_scan[i] != c->site24_scan[i - 1])
            scans_seen++;
        if (i == 0)
            first = c->site24[i]->channel;
        else if (c->site24[i]->channel != first)
            differ = true;
    }
    cJSON *d = cJSON_CreateObject();
    if (d) {
        cJSON_AddNumberToObject(d, "scans", (double)c->nscans);
        cJSON_AddNumberToObject(d, "scans_seen", (double)scans_seen);
    }
    if (scans_seen < 2) {
        ADD("wifi.fixed", LADE_CHECK_NOTE, d,
            "Make sure the channel is set fixed (1, 6 or 11), not Auto. Take a second scan later "
            "(--wifi-scan twice, minutes apart) to see if it moves.",
            "One scan cannot tell whether the access point chooses its channel automatically.");
    } else if (differ) {
        ADD("wifi.fixed", LADE_CHECK_WARN, d,
            "If this is one access point, automatic channel selection is on: set a fixed channel "
            "1, 6 or 11. Access points of one network should each have a fixed channel.",
            "\"%s\" was heard on different channels in different scans (different access "
            "points).",
            c->ssid);
    } else {
        ADD("wifi.fixed", LADE_CHECK_PASS, d, NULL,
            "\"%s\" stayed on channel %u in all %zu scans that saw it.", c->ssid, first,
            scans_seen);
    }
    return LADE_OK;
}

static const char scale[] =
    "scale: -40 excellent, -60 good, -70 fair, -75 the least a charger needs, -80 unusable";

static lade_err check_signal(struct ctx *c)
{
    /* Per scan the strongest radio of the network (the charger picks it), then the weakest of
     * those: the charger has to work at the worst moment seen. */
    int worst = LADE_WIFI_SIGNAL_NONE;
    const struct lade_wifi_bss *worst_b = NULL;
    char per[128] = "";
    cJSON *d = cJSON_CreateObject();
    cJSON *a = d ? cJSON_AddArrayToObject(d, "per_scan_dbm") : NULL;
    size_t counted = 0;
    for (size_t s = 0; s < c->nscans; s++) {
        const struct lade_wifi_bss *best = NULL;
        for (size_t i = 0; i < c->nsite24; i++)
            if (c->site24_scan[i] == s && c->site24[i]->signal_dbm != LADE_WIFI_SIGNAL_NONE &&
                (!best || c->site24[i]->signal_dbm > best->signal_dbm))
                best = c->site24[i];
        if (!best)
            continue;
        if (a)
            cJSON_AddItemToArray(a, cJSON_CreateNumber(best->signal_dbm));
        cat(per, sizeof per, "%s%d", counted ? ", " : "", best->signal_dbm);
        counted++;
        if (!worst_b || best->signal_dbm < worst) {
            worst = best->signal_dbm;
            worst_b = best;
        }
    }
    if (!worst_b) {
        ADD("wifi.signal", LADE_CHECK_NOTE, d,
            "Measure the signal where the charger hangs with a scan that shows levels (iw dev "
            "<if> scan).",
            "The scan gave no signal level for \"%s\".", c->ssid);
        return LADE_OK;
    }
    if (d) {
        cJSON_AddNumberToObject(d, "signal_dbm", worst);
        cJSON_AddStringToObject(d, "bssid", worst_b->bssid);
        cJSON_AddNumberToObject(d, "channel", worst_b->channel);
        cJSON_AddNumberToObject(d, "pass_dbm", LADE_WIFI_SIGNAL_GOOD);
        cJSON_AddNumberToObject(d, "min_dbm", LADE_WIFI_SIGNAL_MIN);
    }
    char more[200] = "";
    if (counted > 1)
        snprintf(more, sizeof more, " (the weakest of %zu scans: %s)", counted, per);
    if (worst >= LADE_WIFI_SIGNAL_GOOD) {
        ADD("wifi.signal", LADE_CHECK_PASS, d, NULL, "Signal of \"%s\" here: %d dBm%s; %s.",
            c->ssid, worst, more, scale);
    } else if (worst >= LADE_WIFI_SIGNAL_MIN) {
        ADD("wifi.signal", LADE_CHECK_WARN, d,
            "Marginal: doors, parked cars and weather take it lower. Better: an access point "
            "nearer the charger (fixed channel 1, 6 or 11), or PLC for this charger (HomePlug "
            "Green PHY; choose a charger with strong WiFi as the PLC gateway).",
            "Signal of \"%s\" here: %d dBm%s, just above the -75 dBm a charger needs; %s.", c->ssid,
            worst, more, scale);
    } else {
        ADD("wifi.signal", LADE_CHECK_FAIL, d,
            "Use PLC for the charger at this point (HomePlug Green PHY over the supply cable; "
            "choose a charger with strong WiFi as the PLC gateway), or move the access point "
            "closer or add one (fixed channel 1, 6 or 11).",
            "Signal of \"%s\" here: %d dBm%s, below the -75 dBm a charger needs; %s.", c->ssid,
            worst, more, scale);
    }
    return LADE_OK;
}

static lade_err check_overlap(struct ctx *c, const struct lade_wifi_bss *now)
{
    unsigned ch = now->channel;
    const struct lade_wifi_bss *over[8], *co[8];
    size_t nover = 0, nco = 0, all_over = 0, all_co = 0;
    cJSON *d = cJSON_CreateObject();
    cJSON *ao = d ? cJSON_AddArrayToObject(d, "overlapping") : NULL;
    cJSON *ac = d ? cJSON_AddArrayToObject(d, "same_channel") : NULL;
    for (size_t i = 0; i < c->nothers; i++) { /* strongest first */
        const struct lade_wifi_bss *b = c->others[i];
        if (b->channel == ch) {
            all_co++;
            if (nco < 8)
                co[nco++] = b;
            if (ac)
                cJSON_AddItemToArray(ac, bss_json(b));
        } else if (reaches(b, ch)) {
            all_over++;
            if (nover < 8)
                over[nover++] = b;
            if (ao)
                cJSON_AddItemToArray(ao, bss_json(b));
        }
    }
    if (d) {
        cJSON_AddNumberToObject(d, "channel", ch);
        cJSON_AddNumberToObject(d, "neighbour_dbm", LADE_WIFI_NEIGHBOUR_DBM);
        cJSON_AddItemToObject(d, "census", census_json(c));
        cJSON_AddNumberToObject(d, "least_used", c->least);
    }
    char lo[300] = "", lc[200] = "", q[LADE_WIFI_SSID_TEXT + 2];
    for (size_t i = 0; i < nover && i < 4; i++)
        cat(lo, sizeof lo, "%s%s (channel %u%s, %d dBm)", i ? ", " : "",
            name_of(over[i], q, sizeof q), over[i]->channel, over[i]->secondary ? " 40 MHz" : "",
            over[i]->signal_dbm);
    if (all_over > 4)
        cat(lo, sizeof lo, " and %zu more", all_over - 4);
    for (size_t i = 0; i < nco && i < 3; i++)
        cat(lc, sizeof lc, "%s%s (%d dBm)", i ? ", " : "", name_of(co[i], q, sizeof q),
            co[i]->signal_dbm);
    if (all_co > 3)
        cat(lc, sizeof lc, " and %zu more", all_co - 3);
    char remedy[LADE_CHECK_TEXT_MAX];
    if (all_over) {
        if (c->least == ch)
            snprintf(remedy, sizeof remedy,
                     "Keep channel %u (the least used of 1, 6 and 11 here); where the overlapping "
                     "networks are yours, put them on 1, 6 or 11 too.",
                     ch);
        else
            snprintf(remedy, sizeof remedy,
                     "Set the access point to fixed channel %u, the least used of 1, 6 and 11 "
                     "here; where the overlapping networks are yours, put them on 1, 6 or 11 "
                     "too.",
                     c->least);
        ADD("wifi.overlap", LADE_CHECK_WARN, d, remedy,
            "%zu other network%s on channels overlapping channel %u: %s%s%s.", all_over,
            all_over == 1 ? "" : "s", ch, lo, all_co ? "; on the same channel: " : "", lc);
    } else if (all_co) {
        if (c->least != ch)
            snprintf(remedy, sizeof remedy,
                     "Fine as it is; if the chargers' connection is slow, channel %u is less used "
                     "here.",
                     c->least);
        else
            remedy[0] = '\0';
        ADD("wifi.overlap", LADE_CHECK_NOTE, d, remedy,
            "%zu other network%s on the same channel %u share%s its airtime: %s.", all_co,
            all_co == 1 ? "" : "s", ch, all_co == 1 ? "s" : "", lc);
    } else {
        ADD("wifi.overlap", LADE_CHECK_PASS, d, NULL,
            "No other network stronger than %d dBm on or near channel %u.", LADE_WIFI_NEIGHBOUR_DBM,
            ch);
    }
    return LADE_OK;
}

static lade_err check_width(struct ctx *c)
{
    const struct lade_wifi_bss *wide = NULL;
    bool known = false;
    for (size_t i = 0; i < c->nsite24; i++) {
        known |= c->site24[i]->width_known;
        if (c->site24[i]->secondary && !wide)
            wide = c->site24[i];
    }
    cJSON *d = cJSON_CreateObject();
    if (wide) {
        if (d) {
            cJSON_AddNumberToObject(d, "width_mhz", 40);
            cJSON_AddNumberToObject(d, "channel", wide->channel);
            cJSON_AddNumberToObject(d, "secondary_channel",
                                    (int)wide->channel + 4 * wide->secondary);
        }
        ADD("wifi.width", LADE_CHECK_WARN, d,
            "Set the 2.4 GHz channel width to 20 MHz on the access point (often \"Channel "
            "width\" or \"HT20/40\"); chargers use 20 MHz anyway.",
            "\"%s\" uses 40 MHz on 2.4 GHz (channels %u and %d): it covers most of the band and "
            "collides with more neighbours.",
            c->ssid, wide->channel, (int)wide->channel + 4 * wide->secondary);
    } else if (known) {
        if (d)
            cJSON_AddNumberToObject(d, "width_mhz", 20);
        ADD("wifi.width", LADE_CHECK_PASS, d, NULL, "\"%s\" uses 20 MHz on 2.4 GHz.", c->ssid);
    } else {
        ADD("wifi.width", LADE_CHECK_NOTE, d,
            "Check on the access point that the 2.4 GHz width is 20 MHz (an iw scan shows it).",
            "This scan does not show the channel width of \"%s\".", c->ssid);
    }
    return LADE_OK;
}

static lade_err check_security(struct ctx *c)
{
    /* The radios a charger would use: 2.4 GHz when there are any. */
    const struct lade_wifi_bss **v = c->nsite24 ? c->site24 : c->site;
    size_t n = c->nsite24 ? c->nsite24 : c->nsite;
    const struct lade_wifi_bss *weak = v[0];
    for (size_t i = 1; i < n; i++)
        if (v[i]->security < weak->security)
            weak = v[i];
    cJSON *d = cJSON_CreateObject();
    if (d) {
        cJSON_AddStringToObject(d, "security", lade_wifi_security_name(weak->security));
        cJSON_AddStringToObject(d, "bssid", weak->bssid);
    }
    switch (weak->security) {
    case LADE_WIFI_SEC_OPEN:
        ADD("wifi.security", LADE_CHECK_FAIL, d,
            "Turn on WPA2 (AES) or WPA3 with a strong password on the access point; anybody "
            "nearby can otherwise join the chargers' network and use its uplink (e.g. 4G).",
            "\"%s\" is an open network: no password, no encryption.", c->ssid);
        break;
    case LADE_WIFI_SEC_WEP:
        ADD("wifi.security", LADE_CHECK_FAIL, d,
            "Switch the access point to WPA2 (AES) or WPA3 with a strong password; WEP is broken "
            "in minutes and others could ride on the chargers' network and its uplink.",
            "\"%s\" uses WEP.", c->ssid);
        break;
    case LADE_WIFI_SEC_WPA:
        ADD("wifi.security", LADE_CHECK_WARN, d,
            "Switch the access point to WPA2 (AES) or WPA3; WPA with TKIP is outdated and "
            "weak.",
            "\"%s\" offers only WPA (TKIP).", c->ssid);
        break;
    default:
        ADD("wifi.security", LADE_CHECK_PASS, d, NULL, "\"%s\" is protected with %s.", c->ssid,
            lade_wifi_security_name(weak->security));
        break;
    }
    return LADE_OK;
}

static lade_err run_checks(struct ctx *c, bool from_assoc)
{
    lade_err err;
    if ((err = collect(c)) != LADE_OK)
        return err;
    for (size_t i = 0; i < c->nscans; i++)
        if (c->scans[i].truncated)
            ADD("wifi.scan", LADE_CHECK_NOTE, NULL,
                "Scan again closer to the charger's place or filter the scan by the network name.",
                "Scan %zu listed %zu networks; only the first %zu were checked.", i + 1,
                c->scans[i].total, c->scans[i].n);
    if (!c->ssid) {
        census(c, 0);
        ADD("wifi.ssid", LADE_CHECK_NOTE, NULL,
            "Give the chargers' network name with --ssid for the checks of band, channel, "
            "signal and security.",
            "No network name given, and the scan does not mark a network this computer is "
            "connected to: only the channels around are reported.");
        return add_census(c);
    }
    if (c->nsite == 0) {
        census(c, 0);
        if ((err = check_not_seen(c)) != LADE_OK)
            return err;
        return add_census(c);
    }
    const struct lade_wifi_bss *now = site_now(c);
    census(c, now ? now->channel : 0);
    if ((err = check_seen(c, from_assoc)) != LADE_OK || (err = check_band(c)) != LADE_OK)
        return err;
    if (now) {
        if ((err = check_channel(c)) != LADE_OK || (err = check_fixed(c)) != LADE_OK ||
            (err = check_signal(c)) != LADE_OK || (err = check_overlap(c, now)) != LADE_OK ||
            (err = check_width(c)) != LADE_OK)
            return err;
    }
    return check_security(c);
}

lade_err lade_wifi_check(const struct lade_wifi_scan *scans, size_t nscans, const char *ssid,
                         struct lade_check_report *r)
{
    if (!r || !scans || nscans == 0)
        return LADE_ERR_INVAL;
    struct ctx c = {.scans = scans, .nscans = nscans, .r = r};
    char target[LADE_WIFI_SSID_TEXT] = "";
    bool from_assoc = false;
    if (ssid && ssid[0]) {
        c.ssid = ssid;
    } else {
        /* The network this computer is associated with, latest scan first. */
        for (size_t i = nscans; i-- > 0 && !target[0];)
            for (size_t j = 0; j < scans[i].n; j++)
                if (scans[i].bss[j].associated && scans[i].bss[j].ssid[0]) {
                    snprintf(target, sizeof target, "%s", scans[i].bss[j].ssid);
                    break;
                }
        if (target[0]) {
            c.ssid = target;
            from_assoc = true;
        }
    }
    lade_err err = run_checks(&c, from_assoc);
    free(c.site);
    free(c.site24);
    free(c.site24_scan);
    free(c.others);
    free(c.heard);
    return err;
}
