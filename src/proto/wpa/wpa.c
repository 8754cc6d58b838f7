/* wpa_supplicant control-interface parser (include/lade/wpa.h, docs/wifi-lte.md). Pure: no I/O,
 * no clock, no allocation; results are views into the caller's buffer.
 *
 * The formats are wpa_supplicant's ctrl_iface text: STATUS and SIGNAL_POLL print one key=value
 * per line, SCAN_RESULTS a tab-separated table under a header line, and events are datagrams
 * "<level>NAME text" (level = the message priority), prefixed "IFNAME=<if> " on the global
 * interface. Everything from the socket is outside input: lengths are checked before use and
 * numbers against ranges. */
#include "lade/wpa.h"

#include <string.h>

#define RSSI_MIN   (-200)
#define RSSI_MAX   50
#define FREQ_MAX   100000u
#define SPEED_MAX  1000000u
#define NOISE_NONE 9999 /* what the supplicant prints when the driver has no noise figure */

static const char *const state_names[] = {
    [LADE_WPA_STATE_UNKNOWN] = "UNKNOWN",
    [LADE_WPA_STATE_DISCONNECTED] = "DISCONNECTED",
    [LADE_WPA_STATE_INTERFACE_DISABLED] = "INTERFACE_DISABLED",
    [LADE_WPA_STATE_INACTIVE] = "INACTIVE",
    [LADE_WPA_STATE_SCANNING] = "SCANNING",
    [LADE_WPA_STATE_AUTHENTICATING] = "AUTHENTICATING",
    [LADE_WPA_STATE_ASSOCIATING] = "ASSOCIATING",
    [LADE_WPA_STATE_ASSOCIATED] = "ASSOCIATED",
    [LADE_WPA_STATE_4WAY_HANDSHAKE] = "4WAY_HANDSHAKE",
    [LADE_WPA_STATE_GROUP_HANDSHAKE] = "GROUP_HANDSHAKE",
    [LADE_WPA_STATE_COMPLETED] = "COMPLETED",
};
#define N_STATES (sizeof state_names / sizeof state_names[0])

const char *lade_wpa_state_name(enum lade_wpa_state s)
{
    return (unsigned)s < N_STATES ? state_names[s] : "UNKNOWN";
}

enum lade_wpa_state lade_wpa_state_parse(struct lade_str s)
{
    for (size_t i = 1; i < N_STATES; i++)
        if (lade_str_eq_c(s, state_names[i]))
            return (enum lade_wpa_state)i;
    return LADE_WPA_STATE_UNKNOWN;
}

/* ---- small helpers ---------------------------------------------------------------------- */

static struct lade_str sv(const char *p, size_t n)
{
    return (struct lade_str){p, n};
}

/* The first line of s (without its '\n'); advances *pos past the '\n'. */
static struct lade_str next_line(const char *buf, size_t n, size_t *pos)
{
    size_t start = *pos, i = start;
    while (i < n && buf[i] != '\n')
        i++;
    *pos = i < n ? i + 1 : n;
    size_t len = i - start;
    if (len > 0 && buf[start + len - 1] == '\r')
        len--;
    return sv(buf + start, len);
}

/* Decimal integer with an optional '-', the whole view, within [lo, hi]. */
static bool parse_int(struct lade_str s, int64_t lo, int64_t hi, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (s.n > 0 && (s.p[0] == '-' || s.p[0] == '+')) {
        neg = s.p[0] == '-';
        i = 1;
    }
    if (i >= s.n || s.n - i > 12) /* 12 digits: far beyond any range used here, no overflow */
        return false;
    int64_t v = 0;
    for (; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return false;
        v = v * 10 + (s.p[i] - '0');
    }
    if (neg)
        v = -v;
    if (v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool has_nul(const char *buf, size_t n)
{
    return memchr(buf, '\0', n) != NULL;
}

static lade_err check_input(const char *buf, size_t n)
{
    if (!buf && n)
        return LADE_ERR_INVAL;
    if (n > LADE_WPA_REPLY_MAX)
        return LADE_ERR_TOO_BIG;
    if (n && has_nul(buf, n))
        return LADE_ERR_PROTO;
    return LADE_OK;
}

static bool is_hex(char c)
{
    return lade_hex_digit(c) >= 0;
}

static bool bssid_ok(struct lade_str s)
{
    if (s.n != 17)
        return false;
    for (size_t i = 0; i < 17; i++) {
        if (i % 3 == 2 ? s.p[i] != ':' : !is_hex(s.p[i]))
            return false;
    }
    return true;
}

enum lade_wpa_reply lade_wpa_reply_kind(const char *buf, size_t n)
{
    if (!buf || n == 0)
        return LADE_WPA_REPLY_DATA;
    if (buf[0] == '<' || lade_str_has_prefix(sv(buf, n), "IFNAME="))
        return LADE_WPA_REPLY_EVENT;
    size_t pos = 0;
    struct lade_str first = next_line(buf, n, &pos);
    if (lade_str_eq_c(first, "OK"))
        return LADE_WPA_REPLY_OK;
    if (lade_str_eq_c(first, "FAIL") || lade_str_has_prefix(first, "FAIL-"))
        return LADE_WPA_REPLY_FAIL;
    if (lade_str_eq_c(first, "PONG"))
        return LADE_WPA_REPLY_PONG;
    if (lade_str_eq_c(first, "UNKNOWN COMMAND"))
        return LADE_WPA_REPLY_UNKNOWN_CMD;
    return LADE_WPA_REPLY_DATA;
}

/* Iterates key=value lines; calls kv() for each. PROTO for a malformed line or a reply that is
 * not data. Empty lines are skipped (replies end with '\n'). */
typedef bool (*kv_fn)(void *ctx, struct lade_str key, struct lade_str val, uint32_t *seen);

static lade_err parse_kv(const char *buf, size_t n, kv_fn fn, void *ctx)
{
    lade_err err = check_input(buf, n);
    if (err != LADE_OK)
        return err;
    if (lade_wpa_reply_kind(buf, n) != LADE_WPA_REPLY_DATA)
        return LADE_ERR_PROTO;
    uint32_t seen = 0;
    size_t pos = 0, lines = 0;
    while (pos < n) {
        struct lade_str line = next_line(buf, n, &pos);
        if (line.n == 0)
            continue;
        const char *eq = memchr(line.p, '=', line.n);
        if (!eq || eq == line.p)
            return LADE_ERR_PROTO;
        struct lade_str key = sv(line.p, (size_t)(eq - line.p));
        struct lade_str val = sv(eq + 1, line.n - key.n - 1);
        if (!fn(ctx, key, val, &seen))
            return LADE_ERR_PROTO;
        lines++;
    }
    return lines ? LADE_OK : LADE_ERR_PROTO;
}

/* True once per bit: the first occurrence of a key counts. */
static bool first(uint32_t *seen, uint32_t bit)
{
    if (*seen & bit)
        return false;
    *seen |= bit;
    return true;
}

/* ---- STATUS ------------------------------------------------------------------------------- */

static bool status_kv(void *ctx, struct lade_str key, struct lade_str val, uint32_t *seen)
{
    struct lade_wpa_status *st = ctx;
    int64_t v;
    if (lade_str_eq_c(key, "wpa_state")) {
        if (first(seen, 1u << 0))
            st->state = lade_wpa_state_parse(val);
    } else if (lade_str_eq_c(key, "freq")) {
        if (!parse_int(val, 0, FREQ_MAX, &v))
            return false;
        if (first(seen, 1u << 1))
            st->freq_mhz = (uint32_t)v;
    } else if (lade_str_eq_c(key, "id")) {
        if (!parse_int(val, 0, INT32_MAX, &v))
            return false;
        if (first(seen, 1u << 2))
            st->network_id = (int32_t)v;
    } else if (lade_str_eq_c(key, "bssid")) {
        if (first(seen, 1u << 3))
            st->bssid = val;
    } else if (lade_str_eq_c(key, "ssid")) {
        if (first(seen, 1u << 4))
            st->ssid = val;
    } else if (lade_str_eq_c(key, "key_mgmt")) {
        if (first(seen, 1u << 5))
            st->key_mgmt = val;
    } else if (lade_str_eq_c(key, "ip_address")) {
        if (first(seen, 1u << 6))
            st->ip_address = val;
    }
    return true;
}

lade_err lade_wpa_parse_status(const char *buf, size_t n, struct lade_wpa_status *out)
{
    if (!out)
        return LADE_ERR_INVAL;
    memset(out, 0, sizeof *out);
    out->network_id = -1;
    out->bssid = out->ssid = out->key_mgmt = out->ip_address = sv("", 0);
    lade_err err = parse_kv(buf, n, status_kv, out);
    if (err != LADE_OK) {
        memset(out, 0, sizeof *out);
        out->network_id = -1;
    }
    return err;
}

/* ---- SIGNAL_POLL -------------------------------------------------------------------------- */

static bool signal_kv(void *ctx, struct lade_str key, struct lade_str val, uint32_t *seen)
{
    struct lade_wpa_signal *sg = ctx;
    int64_t v;
    if (lade_str_eq_c(key, "RSSI")) {
        if (!parse_int(val, RSSI_MIN, RSSI_MAX, &v))
            return false;
        if (first(seen, 1u << 0))
            sg->rssi_dbm = (int16_t)v;
    } else if (lade_str_eq_c(key, "NOISE")) {
        if (!parse_int(val, RSSI_MIN, NOISE_NONE, &v) || (v > RSSI_MAX && v != NOISE_NONE))
            return false;
        if (first(seen, 1u << 1) && v != NOISE_NONE)
            sg->noise_dbm = (int16_t)v;
    } else if (lade_str_eq_c(key, "LINKSPEED")) {
        if (!parse_int(val, 0, SPEED_MAX, &v))
            return false;
        if (first(seen, 1u << 2))
            sg->linkspeed_mbps = (uint32_t)v;
    } else if (lade_str_eq_c(key, "FREQUENCY")) {
        if (!parse_int(val, 1, FREQ_MAX, &v))
            return false;
        if (first(seen, 1u << 3))
            sg->freq_mhz = (uint32_t)v;
    }
    return true;
}

static void signal_clear(struct lade_wpa_signal *out)
{
    memset(out, 0, sizeof *out);
    out->rssi_dbm = LADE_BEARER_SIGNAL_UNKNOWN;
    out->noise_dbm = LADE_BEARER_SIGNAL_UNKNOWN;
}

lade_err lade_wpa_parse_signal(const char *buf, size_t n, struct lade_wpa_signal *out)
{
    if (!out)
        return LADE_ERR_INVAL;
    signal_clear(out);
    lade_err err = parse_kv(buf, n, signal_kv, out);
    if (err != LADE_OK)
        signal_clear(out);
    return err;
}

/* ---- SCAN_RESULTS ------------------------------------------------------------------------- */

/* The next tab-separated field of *line (the rest when last). */
static bool next_field(struct lade_str *line, struct lade_str *field, bool last)
{
    if (last) {
        *field = *line;
        line->p += line->n;
        line->n = 0;
        return true;
    }
    const char *tab = memchr(line->p, '\t', line->n);
    if (!tab)
        return false;
    *field = sv(line->p, (size_t)(tab - line->p));
    line->n -= field->n + 1;
    line->p = tab + 1;
    return true;
}

lade_err lade_wpa_parse_scan(const char *buf, size_t n, struct lade_wpa_bss *out, size_t cap,
                             size_t *count, size_t *total)
{
    if (!count || (!out && cap))
        return LADE_ERR_INVAL;
    *count = 0;
    if (total)
        *total = 0;
    lade_err err = check_input(buf, n);
    if (err != LADE_OK)
        return err;
    if (lade_wpa_reply_kind(buf, n) != LADE_WPA_REPLY_DATA)
        return LADE_ERR_PROTO;
    size_t pos = 0, stored = 0, all = 0;
    struct lade_str header = next_line(buf, n, &pos);
    if (!lade_str_has_prefix(header, "bssid"))
        return LADE_ERR_PROTO;
    while (pos < n) {
        struct lade_str line = next_line(buf, n, &pos);
        if (line.n == 0)
            continue;
        struct lade_wpa_bss b;
        struct lade_str f_freq, f_sig;
        int64_t freq, sig;
        if (!next_field(&line, &b.bssid, false) || !next_field(&line, &f_freq, false) ||
            !next_field(&line, &f_sig, false) || !next_field(&line, &b.flags, false) ||
            !next_field(&line, &b.ssid, true))
            goto bad;
        if (!bssid_ok(b.bssid) || !parse_int(f_freq, 1, FREQ_MAX, &freq) ||
            !parse_int(f_sig, RSSI_MIN, RSSI_MAX, &sig))
            goto bad;
        b.freq_mhz = (uint32_t)freq;
        b.signal_dbm = (int16_t)sig;
        if (stored < cap)
            out[stored++] = b;
        all++;
    }
    *count = stored;
    if (total)
        *total = all;
    return LADE_OK;
bad:
    *count = 0;
    if (total)
        *total = 0;
    return LADE_ERR_PROTO;
}

/* ---- events ------------------------------------------------------------------------------- */

/* The next space-separated token of *s; a value in double quotes (with \-escapes, as the
 * supplicant prints SSIDs) may contain spaces. PROTO (false) for an unterminated quote. */
static bool next_token(struct lade_str *s, struct lade_str *tok, bool *ok)
{
    while (s->n > 0 && s->p[0] == ' ') {
        s->p++;
        s->n--;
    }
    if (s->n == 0)
        return false;
    size_t i = 0;
    bool quoted = false;
    for (; i < s->n; i++) {
        char c = s->p[i];
        if (quoted && c == '\\') {
            i++; /* skip the escaped character */
            continue;
        }
        if (c == '"')
            quoted = !quoted;
        else if (c == ' ' && !quoted)
            break;
    }
    if (quoted || i > s->n) {
        *ok = false;
        return false;
    }
    *tok = sv(s->p, i);
    s->p += i;
    s->n -= i;
    return true;
}

/* key=value in tok; value without surrounding quotes. */
static bool token_kv(struct lade_str tok, struct lade_str *key, struct lade_str *val)
{
    const char *eq = memchr(tok.p, '=', tok.n);
    if (!eq || eq == tok.p)
        return false;
    *key = sv(tok.p, (size_t)(eq - tok.p));
    *val = sv(eq + 1, tok.n - key->n - 1);
    if (val->n >= 2 && val->p[0] == '"' && val->p[val->n - 1] == '"') {
        val->p++;
        val->n -= 2;
    }
    return true;
}

static bool event_kv(struct lade_wpa_event *ev, struct lade_str key, struct lade_str val)
{
    int64_t v;
    if (lade_str_eq_c(key, "bssid")) {
        if (!bssid_ok(val))
            return false;
        ev->bssid = val;
    } else if (lade_str_eq_c(key, "id")) {
        if (!parse_int(val, 0, INT32_MAX, &v))
            return false;
        ev->network_id = (int32_t)v;
    } else if (lade_str_eq_c(key, "reason") || lade_str_eq_c(key, "status_code")) {
        if (ev->kind == LADE_WPA_EV_SSID_TEMP_DISABLED) {
            ev->why = val; /* a name such as WRONG_KEY, CONN_FAILED */
        } else {
            if (!parse_int(val, 0, 65535, &v))
                return false;
            ev->reason = (int32_t)v;
        }
    } else if (lade_str_eq_c(key, "locally_generated")) {
        ev->locally_generated = lade_str_eq_c(val, "1");
    } else if (lade_str_eq_c(key, "ssid")) {
        ev->ssid = val;
    } else if (lade_str_eq_c(key, "auth_failures")) {
        if (!parse_int(val, 0, UINT32_MAX, &v))
            return false;
        ev->auth_failures = (uint32_t)v;
    } else if (lade_str_eq_c(key, "duration")) {
        if (!parse_int(val, 0, UINT32_MAX, &v))
            return false;
        ev->duration_s = (uint32_t)v;
    } else if (lade_str_eq_c(key, "signal")) {
        if (!parse_int(val, RSSI_MIN, RSSI_MAX, &v))
            return false;
        ev->signal_dbm = (int16_t)v;
    }
    return true;
}

static const struct {
    const char *name;
    enum lade_wpa_event_kind kind;
} event_names[] = {
    {"CTRL-EVENT-CONNECTED", LADE_WPA_EV_CONNECTED},
    {"CTRL-EVENT-DISCONNECTED", LADE_WPA_EV_DISCONNECTED},
    {"CTRL-EVENT-SSID-TEMP-DISABLED", LADE_WPA_EV_SSID_TEMP_DISABLED},
    {"CTRL-EVENT-SSID-REENABLED", LADE_WPA_EV_SSID_REENABLED},
    {"CTRL-EVENT-TERMINATING", LADE_WPA_EV_TERMINATING},
    {"CTRL-EVENT-SCAN-RESULTS", LADE_WPA_EV_SCAN_RESULTS},
    {"CTRL-EVENT-ASSOC-REJECT", LADE_WPA_EV_ASSOC_REJECT},
    {"CTRL-EVENT-SIGNAL-CHANGE", LADE_WPA_EV_SIGNAL_CHANGE},
};

static void event_clear(struct lade_wpa_event *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->ifname = ev->name = ev->text = ev->bssid = ev->ssid = ev->why = sv("", 0);
    ev->network_id = -1;
    ev->reason = -1;
    ev->signal_dbm = LADE_BEARER_SIGNAL_UNKNOWN;
}

/* "- Connection to aa:bb:cc:dd:ee:ff completed [id=0 id_str=]" (also "(reauth)"). */
static bool parse_connected(struct lade_wpa_event *ev, struct lade_str rest)
{
    static const char lead[] = "- Connection to ";
    if (lade_str_has_prefix(rest, lead)) {
        struct lade_str b = sv(rest.p + sizeof lead - 1, rest.n - (sizeof lead - 1));
        if (b.n < 17 || !bssid_ok(sv(b.p, 17)))
            return false;
        ev->bssid = sv(b.p, 17);
    }
    const char *open = memchr(rest.p, '[', rest.n);
    if (!open)
        return true;
    struct lade_str in = sv(open + 1, rest.n - (size_t)(open + 1 - rest.p));
    const char *close = memchr(in.p, ']', in.n);
    if (close)
        in.n = (size_t)(close - in.p);
    struct lade_str tok, key, val;
    bool ok = true;
    while (next_token(&in, &tok, &ok)) {
        if (token_kv(tok, &key, &val) && lade_str_eq_c(key, "id") && !event_kv(ev, key, val))
            return false;
    }
    return ok;
}

lade_err lade_wpa_parse_event(const char *buf, size_t n, struct lade_wpa_event *out)
{
    if (!out)
        return LADE_ERR_INVAL;
    event_clear(out);
    lade_err err = check_input(buf, n);
    if (err != LADE_OK)
        return err;
    struct lade_str s = sv(buf, n);
    if (s.n > 0 && s.p[s.n - 1] == '\n')
        s.n--;
    if (lade_str_has_prefix(s, "IFNAME=")) {
        const char *sp = memchr(s.p, ' ', s.n);
        if (!sp)
            goto bad;
        out->ifname = sv(s.p + 7, (size_t)(sp - s.p) - 7);
        s.n -= (size_t)(sp + 1 - s.p);
        s.p = sp + 1;
    }
    if (s.n < 3 || s.p[0] != '<' || s.p[1] < '0' || s.p[1] > '9' || s.p[2] != '>')
        goto bad;
    out->level = (uint8_t)(s.p[1] - '0');
    s.p += 3;
    s.n -= 3;
    size_t nl = 0;
    while (nl < s.n && s.p[nl] != ' ')
        nl++;
    if (nl == 0)
        goto bad;
    out->name = sv(s.p, nl);
    struct lade_str rest = sv(s.p + nl, s.n - nl);
    while (rest.n > 0 && rest.p[0] == ' ') {
        rest.p++;
        rest.n--;
    }
    out->text = rest;
    for (size_t i = 0; i < sizeof event_names / sizeof event_names[0]; i++)
        if (lade_str_eq_c(out->name, event_names[i].name))
            out->kind = event_names[i].kind;

    if (out->kind == LADE_WPA_EV_CONNECTED) {
        if (!parse_connected(out, rest))
            goto bad;
    } else if (out->kind != LADE_WPA_EV_OTHER) {
        struct lade_str tok, key, val;
        bool ok = true;
        while (next_token(&rest, &tok, &ok)) {
            if (token_kv(tok, &key, &val) && !event_kv(out, key, val))
                goto bad;
        }
        if (!ok)
            goto bad;
    }
    return LADE_OK;
bad:
    event_clear(out);
    return LADE_ERR_PROTO;
}

/* ---- channels and the bearer view --------------------------------------------------------- */

uint16_t lade_wpa_freq_to_channel(uint32_t f)
{
    if (f == 2484)
        return 14;
    if (f >= 2412 && f <= 2472 && (f - 2407) % 5 == 0)
        return (uint16_t)((f - 2407) / 5);
    if (f == 5935) /* 6 GHz channel 2, the one 6 GHz channel off the 5950 + 5·ch grid */
        return 2;
    if (f > 5950 && f <= 7115 && (f - 5950) % 5 == 0)
        return (uint16_t)((f - 5950) / 5);
    if (f >= 5005 && f <= 5950 && (f - 5000) % 5 == 0)
        return (uint16_t)((f - 5000) / 5);
    return 0;
}

void lade_wpa_to_link(enum lade_wpa_state state, bool has_address, int16_t rssi_dbm,
                      uint32_t freq_mhz, struct lade_bearer_link_state *out)
{
    memset(out, 0, sizeof *out);
    out->signal = LADE_BEARER_SIGNAL_UNKNOWN;
    if (state != LADE_WPA_STATE_COMPLETED)
        return;
    /* Signal and channel are reported while associated even without an address, so the bearer
     * manager (and R19 diagnostics) see a weak or 5 GHz network before DHCP finishes. */
    out->up = has_address;
    out->signal = rssi_dbm;
    out->freq_mhz = freq_mhz;
    out->channel = lade_wpa_freq_to_channel(freq_mhz);
}
