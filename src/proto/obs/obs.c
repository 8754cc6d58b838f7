/* Charger → portal observations: table, deadband reporter, compact JSON encoder and a strict
 * decoder. Pure: no I/O, no clock, no allocation (DESIGN.md, conventions 1, 2, 4).
 * Wire format and timing rules: docs/observations.md. */
#include "lade/obs.h"

#include "lade/codec.h"

#include <stdio.h>
#include <string.h>

/* Encoding order: the values that matter most come first, so that when a batch has to be split
 * at LADE_OBS_MSG_MAX the first message carries them. Deadbands in scaled units (SPEC R12: bytes
 * on metered 4G; analog noise must not produce messages). */
static const struct lade_obs_def table[LADE_OBS_IDS] = {
    {710, LADE_OBS_INT, 0, true, 0, 0, "mode"},
    {718, LADE_OBS_INT, 0, true, 0, 0, "final_stop"},
    {723, LADE_OBS_STR, 0, true, 0, 0, "completed_session"},
    {721, LADE_OBS_STR, 0, false, 0, 0, "session_id"},
    {513, LADE_OBS_INT, 0, false, 100, 2, "power_w"},
    {507, LADE_OBS_FIXED, 1, false, 5, 0, "current_l1_a"},
    {508, LADE_OBS_FIXED, 1, false, 5, 0, "current_l2_a"},
    {509, LADE_OBS_FIXED, 1, false, 5, 0, "current_l3_a"},
    {501, LADE_OBS_FIXED, 1, false, 20, 0, "voltage_l1_v"},
    {502, LADE_OBS_FIXED, 1, false, 20, 0, "voltage_l2_v"},
    {503, LADE_OBS_FIXED, 1, false, 20, 0, "voltage_l3_v"},
    {553, LADE_OBS_FIXED, 3, false, 10, 0, "session_energy_kwh"},
    {708, LADE_OBS_FIXED, 1, false, 0, 0, "allocated_current_a"},
    {519, LADE_OBS_INT, 0, false, 0, 0, "phases_in_use"},
    {804, LADE_OBS_INT, 0, false, 0, 0, "warnings"},
    {810, LADE_OBS_INT, 0, false, 0, 0, "cloud_status"},
    {809, LADE_OBS_INT, 0, false, 3, 0, "signal_dbm"},
    {150, LADE_OBS_STR, 0, false, 0, 0, "bearer"},
    {911, LADE_OBS_STR, 0, false, 0, 0, "firmware_version"},
    {510, LADE_OBS_FIXED, 1, false, 0, 0, "max_current_a"},
    {511, LADE_OBS_FIXED, 1, false, 0, 0, "min_current_a"},
    {520, LADE_OBS_INT, 0, false, 0, 0, "max_phases"},
    {522, LADE_OBS_INT, 0, false, 0, 0, "offline_phase"},
    {523, LADE_OBS_FIXED, 1, false, 0, 0, "offline_current_a"},
};

static const int64_t pow10_tab[] = {1, 10, 100, 1000, 10000, 100000, 1000000};

#define DEFAULT_SNAPSHOT_MS  900000u
#define DEFAULT_MIN_INTERVAL 10000u
#define DEFAULT_MAX_DELAY_MS 300000u
#define ITEM_MAX             (16 + 2 + 6 * LADE_OBS_STR_MAX) /* "id": + quoted escaped string */
#define HEAD_MAX             48 /* {"t":99999999999,"s":1,"o":{ is 28 */

/* Any single value fits a message of LADE_OBS_MSG_MIN, so a batch always drains. */
_Static_assert(HEAD_MAX + ITEM_MAX + 2 <= LADE_OBS_MSG_MIN, "LADE_OBS_MSG_MIN too small");

const struct lade_obs_def *lade_obs_table(size_t *count)
{
    if (count)
        *count = LADE_OBS_IDS;
    return table;
}

static int find_index(int32_t id)
{
    for (int i = 0; i < LADE_OBS_IDS; i++)
        if (table[i].id == id)
            return i;
    return -1;
}

const struct lade_obs_def *lade_obs_find(int32_t id)
{
    int i = find_index(id);
    return i < 0 ? NULL : &table[i];
}

/* Index into r->str for a string row (string rows numbered in table order). */
static int str_index(int row)
{
    int k = 0;
    for (int i = 0; i < row; i++)
        if (table[i].type == LADE_OBS_STR)
            k++;
    return k;
}

lade_err lade_obs_init(struct lade_obs_reporter *r, const struct lade_obs_config *cfg,
                       uint64_t now_ms)
{
    if (!r)
        return LADE_ERR_INVAL;
    struct lade_obs_config c = {0};
    if (cfg)
        c = *cfg;
    if (c.max_msg_bytes == 0)
        c.max_msg_bytes = LADE_OBS_MSG_MAX;
    if (c.max_msg_bytes < LADE_OBS_MSG_MIN || c.max_msg_bytes > LADE_OBS_MSG_MAX)
        return LADE_ERR_INVAL;
    if (c.snapshot_interval_ms == 0)
        c.snapshot_interval_ms = DEFAULT_SNAPSHOT_MS;
    if (c.min_interval_ms == 0)
        c.min_interval_ms = DEFAULT_MIN_INTERVAL;
    if (c.max_delay_ms == 0)
        c.max_delay_ms = DEFAULT_MAX_DELAY_MS;
    memset(r, 0, sizeof *r);
    r->cfg = c;
    r->last_snapshot_ms = now_ms;
    r->last_msg_ms = now_ms;
    r->snapshot_requested = true;
    return LADE_OK;
}

static int64_t abs64(int64_t v)
{
    return v < 0 ? -v : v;
}

/* Moved beyond its deadband since last sent (or never sent): worth a message of its own. */
static bool significant(const struct lade_obs_reporter *r, int i)
{
    const struct lade_obs_slot *s = &r->slot[i];
    if (!s->has_value)
        return false;
    if (!s->ever_sent)
        return true;
    if (table[i].type == LADE_OBS_STR)
        return s->str_changed;
    int64_t diff = abs64(s->value - s->sent_value);
    int64_t band = table[i].deadband;
    int64_t rel = abs64(s->sent_value) * table[i].deadband_pct / 100;
    if (rel > band)
        band = rel;
    return band == 0 ? diff != 0 : diff >= band;
}

static bool differs(const struct lade_obs_reporter *r, int i)
{
    const struct lade_obs_slot *s = &r->slot[i];
    return s->has_value && s->ever_sent && table[i].type != LADE_OBS_STR &&
           s->value != s->sent_value;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t slot_due_ms(const struct lade_obs_reporter *r, int i)
{
    if (significant(r, i)) {
        if (table[i].immediate || !r->any_msg)
            return 0;
        return add_sat(r->last_msg_ms, r->cfg.min_interval_ms);
    }
    if (differs(r, i))
        return add_sat(r->slot[i].diff_since_ms, r->cfg.max_delay_ms);
    return UINT64_MAX;
}

static bool any_value(const struct lade_obs_reporter *r)
{
    for (int i = 0; i < LADE_OBS_IDS; i++)
        if (r->slot[i].has_value)
            return true;
    return false;
}

static bool any_queued(const struct lade_obs_reporter *r)
{
    for (int i = 0; i < LADE_OBS_IDS; i++)
        if (r->slot[i].queued)
            return true;
    return false;
}

static uint64_t snapshot_due_ms(const struct lade_obs_reporter *r)
{
    if (!any_value(r))
        return UINT64_MAX;
    if (r->snapshot_requested)
        return 0;
    return add_sat(r->last_snapshot_ms, r->cfg.snapshot_interval_ms);
}

uint64_t lade_obs_next_due_ms(const struct lade_obs_reporter *r)
{
    if (any_queued(r))
        return 0;
    uint64_t due = snapshot_due_ms(r);
    for (int i = 0; i < LADE_OBS_IDS; i++) {
        uint64_t d = slot_due_ms(r, i);
        if (d < due)
            due = d;
    }
    return due;
}

bool lade_obs_due(const struct lade_obs_reporter *r, uint64_t now_ms)
{
    return lade_obs_next_due_ms(r) <= now_ms;
}

void lade_obs_request_snapshot(struct lade_obs_reporter *r)
{
    r->snapshot_requested = true;
}

void lade_obs_set_snapshot_due(struct lade_obs_reporter *r, uint64_t due_ms)
{
    uint64_t iv = r->cfg.snapshot_interval_ms;
    uint64_t base = due_ms > iv ? due_ms - iv : 0;
    if (base < r->last_snapshot_ms)
        r->last_snapshot_ms = base;
}

/* Keeps diff_since_ms = the time the value first differed from the sent one. */
static void note_change(struct lade_obs_reporter *r, int i, bool was_diff, uint64_t now_ms)
{
    if (differs(r, i) && !was_diff)
        r->slot[i].diff_since_ms = now_ms;
}

lade_err lade_obs_set_int(struct lade_obs_reporter *r, int32_t id, int64_t value, uint64_t now_ms)
{
    int i = find_index(id);
    if (i < 0)
        return LADE_ERR_NOT_FOUND;
    if (table[i].type == LADE_OBS_STR || value > LADE_OBS_VALUE_MAX || value < -LADE_OBS_VALUE_MAX)
        return LADE_ERR_INVAL;
    bool was_diff = differs(r, i);
    r->slot[i].value = value;
    r->slot[i].has_value = true;
    note_change(r, i, was_diff, now_ms);
    return LADE_OK;
}

lade_err lade_obs_set_str(struct lade_obs_reporter *r, int32_t id, const char *s, size_t n,
                          uint64_t now_ms)
{
    (void)now_ms; /* strings have no deadband: any change is significant at once */
    int i = find_index(id);
    if (i < 0)
        return LADE_ERR_NOT_FOUND;
    if (table[i].type != LADE_OBS_STR || n > LADE_OBS_STR_MAX || (n && !s))
        return LADE_ERR_INVAL;
    if (!lade_utf8_valid((const uint8_t *)s, n, false))
        return LADE_ERR_UTF8;
    int k = str_index(i);
    struct lade_obs_slot *sl = &r->slot[i];
    if (sl->has_value && r->str_len[k] == n && memcmp(r->str[k], s, n) == 0)
        return LADE_OK;
    if (n)
        memcpy(r->str[k], s, n);
    r->str[k][n] = '\0';
    r->str_len[k] = (uint16_t)n;
    sl->has_value = true;
    sl->str_changed = true;
    return LADE_OK;
}

/* ---- encoder ---- */

static size_t put_fixed(char *out, int64_t v, unsigned decimals)
{
    int64_t scale = pow10_tab[decimals];
    int64_t a = abs64(v);
    int64_t ip = a / scale, fp = a % scale;
    int n = snprintf(out, 24, "%s%lld", v < 0 ? "-" : "", (long long)ip);
    if (fp) {
        /* decimals is 0..3 in the table; the clamp lets the compiler see the bound. */
        int width = decimals > 6 ? 6 : (int)decimals;
        char frac[24];
        snprintf(frac, sizeof frac, "%0*lld", width, (long long)fp);
        size_t fl = decimals;
        while (fl > 0 && frac[fl - 1] == '0') /* shortest form: 16.50 → 16.5 */
            fl--;
        out[n++] = '.';
        memcpy(out + n, frac, fl);
        n += (int)fl;
    }
    return (size_t)n;
}

static size_t put_string(char *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    out[o++] = '"';
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else if (c == '\t') {
            out[o++] = '\\';
            out[o++] = 't';
        } else if (c == '\r') {
            out[o++] = '\\';
            out[o++] = 'r';
        } else if (c < 0x20) {
            memcpy(out + o, "\\u00", 4);
            o += 4;
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    return o;
}

/* "id":value into out (ITEM_MAX bytes). */
static size_t put_item(const struct lade_obs_reporter *r, int i, char *out)
{
    int n = snprintf(out, 16, "\"%d\":", (int)table[i].id);
    const struct lade_obs_slot *s = &r->slot[i];
    switch (table[i].type) {
    case LADE_OBS_INT:
        n += snprintf(out + n, 24, "%lld", (long long)s->value);
        break;
    case LADE_OBS_FIXED:
        n += (int)put_fixed(out + n, s->value, table[i].decimals);
        break;
    case LADE_OBS_STR: {
        int k = str_index(i);
        n += (int)put_string(out + n, r->str[k], r->str_len[k]);
        break;
    }
    }
    return (size_t)n;
}

static void mark_sent(struct lade_obs_reporter *r, int i)
{
    struct lade_obs_slot *s = &r->slot[i];
    s->sent_value = s->value;
    s->ever_sent = true;
    s->str_changed = false;
    s->queued = false;
}

/* Chooses what the next batch carries (convention 1: decisions here, bytes below). */
static void queue_batch(struct lade_obs_reporter *r, uint64_t now_ms)
{
    if (snapshot_due_ms(r) <= now_ms) {
        for (int i = 0; i < LADE_OBS_IDS; i++)
            r->slot[i].queued = r->slot[i].has_value;
        r->in_snapshot = true;
        r->snapshot_requested = false;
        r->last_snapshot_ms = now_ms;
        return;
    }
    /* Something is due: it goes, and every value beyond its deadband rides along. */
    for (int i = 0; i < LADE_OBS_IDS; i++)
        r->slot[i].queued = significant(r, i) || slot_due_ms(r, i) <= now_ms;
}

lade_err lade_obs_encode(struct lade_obs_reporter *r, uint64_t now_ms, int64_t wall_s, char *buf,
                         size_t cap, size_t *len, bool *more)
{
    if (!r || !buf || !len || !more || cap == 0 || wall_s < 0 || wall_s > LADE_OBS_WALL_MAX)
        return LADE_ERR_INVAL;
    *len = 0;
    *more = false;
    if (!any_queued(r)) {
        if (!lade_obs_due(r, now_ms))
            return LADE_OK;
        queue_batch(r, now_ms);
        if (!any_queued(r))
            return LADE_OK;
    }
    size_t limit = cap - 1 < r->cfg.max_msg_bytes ? cap - 1 : r->cfg.max_msg_bytes;
    char head[HEAD_MAX];
    int hn = snprintf(head, sizeof head, "{\"t\":%lld%s,\"o\":{", (long long)wall_s,
                      r->in_snapshot ? ",\"s\":1" : "");
    if ((size_t)hn + 2 > limit)
        return LADE_ERR_NOSPACE;
    memcpy(buf, head, (size_t)hn);
    size_t pos = (size_t)hn;
    size_t count = 0;
    char item[ITEM_MAX];
    /* First fit in table order: a long string that does not fit leaves room for the numbers
     * after it; it goes in the next message, whole. */
    for (int i = 0; i < LADE_OBS_IDS; i++) {
        if (!r->slot[i].queued)
            continue;
        size_t in = put_item(r, i, item);
        size_t need = in + (count ? 1 : 0);
        if (pos + need + 2 > limit)
            continue;
        if (count)
            buf[pos++] = ',';
        memcpy(buf + pos, item, in);
        pos += in;
        count++;
        mark_sent(r, i);
    }
    if (count == 0)
        return LADE_ERR_NOSPACE;
    buf[pos++] = '}';
    buf[pos++] = '}';
    buf[pos] = '\0';
    *len = pos;
    r->last_msg_ms = now_ms;
    r->any_msg = true;
    *more = any_queued(r);
    if (!*more)
        r->in_snapshot = false;
    return LADE_OK;
}

/* ---- decoder ---- */

struct parser {
    const char *p;
    size_t n, i;
};

static void skip_ws(struct parser *ps)
{
    while (ps->i < ps->n && (ps->p[ps->i] == ' ' || ps->p[ps->i] == '\t' || ps->p[ps->i] == '\n' ||
                             ps->p[ps->i] == '\r'))
        ps->i++;
}

static bool lit(struct parser *ps, const char *s)
{
    skip_ws(ps);
    size_t l = strlen(s);
    if (ps->n - ps->i < l || memcmp(ps->p + ps->i, s, l) != 0)
        return false;
    ps->i += l;
    return true;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* JSON number without exponent: -?(0|[1-9][0-9]*)(\.[0-9]+)? ; at most 18 digits in all, so
 * every accepted number fits an int64 once scaled. */
struct num {
    bool neg;
    int64_t ip;
    int64_t fp;       /* fraction digits as an integer */
    unsigned fdigits; /* how many */
    struct lade_str raw;
};

static bool parse_number(struct parser *ps, struct num *out)
{
    skip_ws(ps);
    size_t start = ps->i;
    memset(out, 0, sizeof *out);
    if (ps->i < ps->n && ps->p[ps->i] == '-') {
        out->neg = true;
        ps->i++;
    }
    if (ps->i >= ps->n || !is_digit(ps->p[ps->i]))
        return false;
    unsigned digits = 0;
    if (ps->p[ps->i] == '0') {
        ps->i++;
        digits = 1;
    } else {
        while (ps->i < ps->n && is_digit(ps->p[ps->i])) {
            if (++digits > 18)
                return false;
            out->ip = out->ip * 10 + (ps->p[ps->i++] - '0');
        }
    }
    if (ps->i < ps->n && ps->p[ps->i] == '.') {
        ps->i++;
        if (ps->i >= ps->n || !is_digit(ps->p[ps->i]))
            return false;
        while (ps->i < ps->n && is_digit(ps->p[ps->i])) {
            if (++digits > 18)
                return false;
            out->fp = out->fp * 10 + (ps->p[ps->i++] - '0');
            out->fdigits++;
        }
    }
    if (ps->i < ps->n && (ps->p[ps->i] == 'e' || ps->p[ps->i] == 'E'))
        return false;
    out->raw = (struct lade_str){ps->p + start, ps->i - start};
    return true;
}

/* Unescapes raw; out may be NULL (validate and count only). */
static lade_err unescape(struct lade_str raw, char *out, size_t cap, size_t *out_len)
{
    size_t o = 0;
    for (size_t k = 0; k < raw.n; k++) {
        unsigned char c = (unsigned char)raw.p[k];
        char buf[4];
        size_t bn = 1;
        if (c < 0x20 || c == '"')
            return LADE_ERR_PROTO;
        if (c != '\\') {
            buf[0] = (char)c;
        } else {
            if (++k >= raw.n)
                return LADE_ERR_PROTO;
            switch (raw.p[k]) {
            case '"':
                buf[0] = '"';
                break;
            case '\\':
                buf[0] = '\\';
                break;
            case '/':
                buf[0] = '/';
                break;
            case 'b':
                buf[0] = '\b';
                break;
            case 'f':
                buf[0] = '\f';
                break;
            case 'n':
                buf[0] = '\n';
                break;
            case 'r':
                buf[0] = '\r';
                break;
            case 't':
                buf[0] = '\t';
                break;
            case 'u': {
                if (raw.n - k - 1 < 4)
                    return LADE_ERR_PROTO;
                unsigned cp = 0;
                for (int h = 1; h <= 4; h++) {
                    int v = lade_hex_digit(raw.p[k + h]);
                    if (v < 0)
                        return LADE_ERR_PROTO;
                    cp = cp * 16 + (unsigned)v;
                }
                k += 4;
                /* U+0000 is refused (as in lade_obs_set_str); surrogate pairs are not produced
                 * by our encoder (it sends UTF-8 as is) and are refused. */
                if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff))
                    return LADE_ERR_PROTO;
                if (cp < 0x80) {
                    buf[0] = (char)cp;
                } else if (cp < 0x800) {
                    buf[0] = (char)(0xc0 | (cp >> 6));
                    buf[1] = (char)(0x80 | (cp & 0x3f));
                    bn = 2;
                } else {
                    buf[0] = (char)(0xe0 | (cp >> 12));
                    buf[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    buf[2] = (char)(0x80 | (cp & 0x3f));
                    bn = 3;
                }
                break;
            }
            default:
                return LADE_ERR_PROTO;
            }
        }
        if (out) {
            if (o + bn + 1 > cap)
                return LADE_ERR_NOSPACE;
            memcpy(out + o, buf, bn);
        }
        o += bn;
    }
    if (out)
        out[o] = '\0';
    if (out_len)
        *out_len = o;
    return LADE_OK;
}

lade_err lade_obs_unescape(struct lade_str raw, char *out, size_t cap, size_t *out_len)
{
    if (!out || cap == 0 || (raw.n && !raw.p))
        return LADE_ERR_INVAL;
    return unescape(raw, out, cap, out_len);
}

/* '"' contents '"' with contents validated; view excludes the quotes. */
static bool parse_string(struct parser *ps, struct lade_str *out)
{
    skip_ws(ps);
    if (ps->i >= ps->n || ps->p[ps->i] != '"')
        return false;
    size_t start = ++ps->i;
    while (ps->i < ps->n && ps->p[ps->i] != '"') {
        if (ps->p[ps->i] == '\\')
            ps->i++; /* the escaped character cannot end the string */
        ps->i++;
    }
    if (ps->i >= ps->n)
        return false;
    *out = (struct lade_str){ps->p + start, ps->i - start};
    ps->i++;
    size_t ulen = 0;
    if (unescape(*out, NULL, 0, &ulen) != LADE_OK || ulen > LADE_OBS_STR_MAX)
        return false;
    return lade_utf8_valid((const uint8_t *)out->p, out->n, false);
}

/* Key: "-?(0|[1-9][0-9]{0,5})" inside the id range; "-0" refused. */
static bool parse_id(struct parser *ps, int32_t *id)
{
    struct lade_str s;
    if (!parse_string(ps, &s) || s.n == 0 || s.n > 7)
        return false;
    size_t k = 0;
    bool neg = s.p[0] == '-';
    if (neg)
        k++;
    if (k >= s.n || (s.p[k] == '0' && s.n - k > 1) || (neg && s.p[k] == '0'))
        return false;
    int32_t v = 0;
    for (; k < s.n; k++) {
        if (!is_digit(s.p[k]))
            return false;
        v = v * 10 + (s.p[k] - '0');
    }
    v = neg ? -v : v;
    if (v < LADE_OBS_ID_MIN || v > LADE_OBS_ID_MAX)
        return false;
    *id = v;
    return true;
}

static bool parse_value(struct parser *ps, struct lade_obs_item *it)
{
    skip_ws(ps);
    if (ps->i < ps->n && ps->p[ps->i] == '"') {
        if (!parse_string(ps, &it->raw))
            return false;
        it->is_str = true;
        return !it->def || it->def->type == LADE_OBS_STR;
    }
    struct num nm;
    if (!parse_number(ps, &nm))
        return false;
    it->raw = nm.raw;
    it->is_str = false;
    if (!it->def)
        return true;
    /* Trailing zeros beyond the table's decimals are harmless ("32.000" is how the REST API
     * writes values); any other extra digit would be silently rounded, so it is refused. */
    while (nm.fdigits > it->def->decimals && nm.fp % 10 == 0) {
        nm.fp /= 10;
        nm.fdigits--;
    }
    if (it->def->type == LADE_OBS_STR || nm.fdigits > it->def->decimals)
        return false;
    unsigned d = it->def->decimals;
    if (nm.ip > LADE_OBS_VALUE_MAX / pow10_tab[d])
        return false;
    int64_t v = nm.ip * pow10_tab[d] + nm.fp * pow10_tab[d - nm.fdigits];
    if (v > LADE_OBS_VALUE_MAX)
        return false;
    it->value = nm.neg ? -v : v;
    return true;
}

lade_err lade_obs_decode(const char *in, size_t n, struct lade_obs_msg *msg,
                         struct lade_obs_item *items, size_t items_cap)
{
    if (!msg || (n && !in) || (items_cap && !items))
        return LADE_ERR_INVAL;
    if (n > LADE_OBS_MSG_MAX)
        return LADE_ERR_TOO_BIG;
    struct parser ps = {in, n, 0};
    memset(msg, 0, sizeof *msg);
    struct num t;
    if (!lit(&ps, "{") || !lit(&ps, "\"t\"") || !lit(&ps, ":") || !parse_number(&ps, &t) || t.neg ||
        t.fdigits || t.ip > LADE_OBS_WALL_MAX || !lit(&ps, ","))
        return LADE_ERR_PROTO;
    msg->wall_s = t.ip;
    if (lit(&ps, "\"s\"")) {
        if (!lit(&ps, ":"))
            return LADE_ERR_PROTO;
        if (lit(&ps, "1"))
            msg->snapshot = true;
        else if (!lit(&ps, "0"))
            return LADE_ERR_PROTO;
        if (!lit(&ps, ","))
            return LADE_ERR_PROTO;
    }
    if (!lit(&ps, "\"o\"") || !lit(&ps, ":") || !lit(&ps, "{"))
        return LADE_ERR_PROTO;
    size_t count = 0;
    if (!lit(&ps, "}")) {
        for (;;) {
            struct lade_obs_item it = {0};
            if (!parse_id(&ps, &it.id) || !lit(&ps, ":"))
                return LADE_ERR_PROTO;
            it.def = lade_obs_find(it.id);
            if (!parse_value(&ps, &it))
                return LADE_ERR_PROTO;
            for (size_t k = 0; k < count; k++)
                if (items[k].id == it.id)
                    return LADE_ERR_PROTO;
            if (count == items_cap)
                return LADE_ERR_TOO_BIG;
            items[count++] = it;
            if (lit(&ps, "}"))
                break;
            if (!lit(&ps, ","))
                return LADE_ERR_PROTO;
        }
    }
    if (!lit(&ps, "}"))
        return LADE_ERR_PROTO;
    skip_ws(&ps);
    if (ps.i != ps.n)
        return LADE_ERR_PROTO;
    msg->count = count;
    return LADE_OK;
}
