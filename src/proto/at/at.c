/* AT command/response parser (include/lade/modem.h, docs/wifi-lte.md). Pure: no I/O, no clock,
 * no allocation.
 *
 * The syntax is ITU-T V.250 (lines, final result codes, echo) with the 3GPP TS 27.007 responses
 * lade uses. The modem is outside input: line length is bounded, parameters are counted against
 * the caller's array, and every number is range-checked before it is stored. */
#include "lade/modem.h"

#include <stdio.h>
#include <string.h>

/* ---- lines ------------------------------------------------------------------------------ */

void lade_at_lines_init(struct lade_at_lines *lb)
{
    memset(lb, 0, sizeof *lb);
}

lade_err lade_at_lines_next(struct lade_at_lines *lb, const char **data, size_t *n,
                            struct lade_str *line)
{
    if (!lb || !data || !n || !line || (!*data && *n))
        return LADE_ERR_INVAL;
    while (*n > 0) {
        char c = **data;
        (*data)++;
        (*n)--;
        if (c == '\r' || c == '\n') {
            if (lb->overflow) {
                lb->overflow = false;
                lb->len = 0;
                return LADE_ERR_TOO_BIG;
            }
            if (lb->len == 0)
                continue;
            *line = (struct lade_str){lb->buf, lb->len};
            lb->len = 0; /* the bytes stay in buf until the next call writes over them */
            return LADE_OK;
        }
        if (lb->overflow)
            continue;
        if (lb->len == sizeof lb->buf) {
            lb->overflow = true;
            continue;
        }
        lb->buf[lb->len++] = c;
    }
    return LADE_ERR_AGAIN;
}

/* ---- classification --------------------------------------------------------------------- */

static char upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static bool eq_nocase(struct lade_str s, const char *c)
{
    size_t n = strlen(c);
    if (s.n != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (upper(s.p[i]) != upper(c[i]))
            return false;
    return true;
}

static struct lade_str skip_spaces(struct lade_str s)
{
    while (s.n > 0 && (s.p[0] == ' ' || s.p[0] == '\t')) {
        s.p++;
        s.n--;
    }
    return s;
}

static struct lade_str trim_right(struct lade_str s)
{
    while (s.n > 0 && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t'))
        s.n--;
    return s;
}

static bool prefix_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '^' || c == '%' || c == '#' || c == '$' || c == '_' || c == '-';
}

/* Unsigned decimal, the whole view, 1..10 digits, <= INT32_MAX. */
static bool parse_u31(struct lade_str s, int32_t *out)
{
    if (s.n == 0 || s.n > 10)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return false;
        v = v * 10 + (s.p[i] - '0');
    }
    if (v > INT32_MAX)
        return false;
    *out = (int32_t)v;
    return true;
}

static const char *const finals_other[] = {"NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE",
                                           "ABORTED"};

static void classify_error(struct lade_str rest, enum lade_at_kind kind, struct lade_at_line *out)
{
    out->kind = kind;
    out->rest = trim_right(skip_spaces(rest));
    int32_t v;
    out->err = parse_u31(out->rest, &v) ? v : -1;
}

void lade_at_classify(struct lade_str line, const char *echo_of, struct lade_at_line *out)
{
    memset(out, 0, sizeof *out);
    out->err = -1;
    out->prefix = (struct lade_str){"", 0};
    out->rest = (struct lade_str){"", 0};
    out->kind = LADE_AT_NOISE;
    if (!line.p || line.n == 0)
        return;
    for (size_t i = 0; i < line.n; i++) {
        unsigned char c = (unsigned char)line.p[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return; /* NOISE */
    }
    line = trim_right(line);
    if (line.n == 0)
        return;
    out->rest = line;
    out->kind = LADE_AT_INFO;
    if (echo_of && eq_nocase(line, echo_of)) {
        out->kind = LADE_AT_ECHO;
        return;
    }
    if (lade_str_eq_c(line, "OK")) {
        out->kind = LADE_AT_OK;
        return;
    }
    if (lade_str_eq_c(line, "ERROR")) {
        out->kind = LADE_AT_ERROR;
        return;
    }
    for (size_t i = 0; i < sizeof finals_other / sizeof finals_other[0]; i++) {
        if (lade_str_eq_c(line, finals_other[i])) {
            out->kind = LADE_AT_FINAL_OTHER;
            return;
        }
    }
    static const char cme[] = "+CME ERROR:", cms[] = "+CMS ERROR:";
    if (lade_str_has_prefix(line, cme)) {
        out->prefix = (struct lade_str){line.p, sizeof cme - 2};
        classify_error((struct lade_str){line.p + sizeof cme - 1, line.n - (sizeof cme - 1)},
                       LADE_AT_CME_ERROR, out);
        return;
    }
    if (lade_str_has_prefix(line, cms)) {
        out->prefix = (struct lade_str){line.p, sizeof cms - 2};
        classify_error((struct lade_str){line.p + sizeof cms - 1, line.n - (sizeof cms - 1)},
                       LADE_AT_CMS_ERROR, out);
        return;
    }
    /* "+XXX: rest" (also ^XXX, %XXX, #XXX, $XXX used by vendors). */
    char c0 = line.p[0];
    if (c0 == '+' || c0 == '^' || c0 == '%' || c0 == '#' || c0 == '$') {
        size_t i = 1;
        while (i < line.n && prefix_char(line.p[i]))
            i++;
        if (i > 1 && i < line.n && line.p[i] == ':') {
            out->prefix = (struct lade_str){line.p, i};
            out->rest = skip_spaces((struct lade_str){line.p + i + 1, line.n - i - 1});
        }
    }
}

bool lade_at_is_final(enum lade_at_kind k)
{
    return k == LADE_AT_OK || k == LADE_AT_ERROR || k == LADE_AT_CME_ERROR ||
           k == LADE_AT_CMS_ERROR || k == LADE_AT_FINAL_OTHER;
}

/* ---- parameters ------------------------------------------------------------------------- */

lade_err lade_at_params(struct lade_str rest, struct lade_at_param *out, size_t cap, size_t *count)
{
    if (!count || (!out && cap) || (!rest.p && rest.n))
        return LADE_ERR_INVAL;
    *count = 0;
    rest = trim_right(skip_spaces(rest));
    if (rest.n == 0)
        return LADE_OK;
    size_t i = 0, k = 0;
    for (;;) {
        if (k == cap)
            return LADE_ERR_TOO_BIG;
        struct lade_at_param *p = &out[k];
        memset(p, 0, sizeof *p);
        while (i < rest.n && (rest.p[i] == ' ' || rest.p[i] == '\t'))
            i++;
        if (i < rest.n && rest.p[i] == '"') {
            const char *q = memchr(rest.p + i + 1, '"', rest.n - i - 1);
            if (!q)
                return LADE_ERR_PROTO;
            p->quoted = true;
            p->text = (struct lade_str){rest.p + i + 1, (size_t)(q - (rest.p + i + 1))};
            i = (size_t)(q - rest.p) + 1;
            while (i < rest.n && (rest.p[i] == ' ' || rest.p[i] == '\t'))
                i++;
            if (i < rest.n && rest.p[i] != ',')
                return LADE_ERR_PROTO;
        } else {
            size_t start = i;
            while (i < rest.n && rest.p[i] != ',')
                i++;
            p->text = trim_right((struct lade_str){rest.p + start, i - start});
            if (p->text.n == 0)
                p->empty = true;
            else if (parse_u31(p->text, &p->value))
                p->is_int = true;
        }
        k++;
        if (i >= rest.n)
            break;
        i++; /* the comma; a trailing comma gives one more (empty) parameter */
        if (i == rest.n) {
            if (k == cap)
                return LADE_ERR_TOO_BIG;
            memset(&out[k], 0, sizeof out[k]);
            out[k].text = (struct lade_str){rest.p + i, 0};
            out[k].empty = true;
            k++;
            break;
        }
    }
    *count = k;
    return LADE_OK;
}

/* ---- responses -------------------------------------------------------------------------- */

static bool int_in(const struct lade_at_param *p, int32_t lo, int32_t hi, int32_t *out)
{
    if (!p->is_int || p->value < lo || p->value > hi)
        return false;
    *out = p->value;
    return true;
}

/* An integer in [lo,hi] or one of the "unknown" values. */
static bool int_or(const struct lade_at_param *p, int32_t lo, int32_t hi, int32_t unknown,
                   int32_t *out)
{
    if (p->is_int && p->value == unknown) {
        *out = unknown;
        return true;
    }
    return int_in(p, lo, hi, out);
}

/* Hex string of 1..max_digits digits. */
static bool hex_param(const struct lade_at_param *p, size_t max_digits, uint32_t *out)
{
    struct lade_str s = p->text;
    if (s.n == 0 || s.n > max_digits)
        return false;
    uint32_t v = 0;
    for (size_t i = 0; i < s.n; i++) {
        int d = lade_hex_digit(s.p[i]);
        if (d < 0)
            return false;
        v = (v << 4) | (uint32_t)d;
    }
    *out = v;
    return true;
}

lade_err lade_at_parse_cereg(struct lade_str rest, struct lade_at_cereg *out)
{
    if (!out)
        return LADE_ERR_INVAL;
    memset(out, 0, sizeof *out);
    out->n = -1;
    out->act = -1;
    struct lade_at_param p[LADE_AT_PARAMS_MAX];
    size_t k;
    lade_err err = lade_at_params(rest, p, LADE_AT_PARAMS_MAX, &k);
    if (err != LADE_OK)
        goto fail;
    err = LADE_ERR_PROTO;
    if (k == 0)
        goto fail;
    size_t i = 0;
    if (k >= 2 && p[1].is_int && !p[1].quoted) {
        if (!int_in(&p[0], 0, 5, &out->n))
            goto fail;
        i = 1;
    }
    if (!int_in(&p[i], 0, 10, &out->stat))
        goto fail;
    /* Location: both present, or both absent/empty. */
    if (k > i + 2 && !p[i + 1].empty && !p[i + 2].empty) {
        if (!hex_param(&p[i + 1], 4, &out->tac) || !hex_param(&p[i + 2], 8, &out->ci))
            goto fail;
        out->has_loc = true;
    } else if (k > i + 1 && !p[i + 1].empty && (k <= i + 2 || p[i + 2].empty)) {
        goto fail;
    }
    if (k > i + 3 && !p[i + 3].empty && !int_in(&p[i + 3], 0, 15, &out->act))
        goto fail;
    return LADE_OK;
fail:
    memset(out, 0, sizeof *out);
    out->n = -1;
    out->act = -1;
    return err;
}

bool lade_at_registered(int32_t stat)
{
    return stat == 1 || stat == 5 || stat == 9 || stat == 10;
}

const char *lade_at_stat_name(int32_t stat)
{
    static const char *const names[] = {"not registered",
                                        "registered (home)",
                                        "searching",
                                        "denied",
                                        "unknown",
                                        "registered (roaming)",
                                        "SMS only (home)",
                                        "SMS only (roaming)",
                                        "emergency only",
                                        "registered (home, CSFB not preferred)",
                                        "registered (roaming, CSFB not preferred)"};
    return stat >= 0 && stat <= 10 ? names[stat] : "?";
}

int16_t lade_at_csq_dbm(int32_t rssi)
{
    if (rssi < 0 || rssi > 31)
        return LADE_BEARER_SIGNAL_UNKNOWN;
    return (int16_t)(-113 + 2 * rssi);
}

int16_t lade_at_rsrp_dbm(int32_t rsrp)
{
    if (rsrp < 0 || rsrp > 97)
        return LADE_BEARER_SIGNAL_UNKNOWN;
    return (int16_t)(rsrp - 141);
}

lade_err lade_at_parse_csq(struct lade_str rest, struct lade_at_csq *out)
{
    if (!out)
        return LADE_ERR_INVAL;
    memset(out, 0, sizeof *out);
    out->dbm = LADE_BEARER_SIGNAL_UNKNOWN;
    struct lade_at_param p[3];
    size_t k;
    lade_err err = lade_at_params(rest, p, 3, &k);
    if (err != LADE_OK)
        return err == LADE_ERR_TOO_BIG ? LADE_ERR_PROTO : err;
    if (k != 2 || !int_or(&p[0], 0, 31, 99, &out->rssi) || !int_or(&p[1], 0, 7, 99, &out->ber)) {
        memset(out, 0, sizeof *out);
        out->dbm = LADE_BEARER_SIGNAL_UNKNOWN;
        return LADE_ERR_PROTO;
    }
    out->dbm = lade_at_csq_dbm(out->rssi);
    return LADE_OK;
}

lade_err lade_at_parse_cesq(struct lade_str rest, struct lade_at_cesq *out)
{
    if (!out)
        return LADE_ERR_INVAL;
    memset(out, 0, sizeof *out);
    out->rsrp_dbm = out->rsrq_db = LADE_BEARER_SIGNAL_UNKNOWN;
    struct lade_at_param p[7];
    size_t k;
    lade_err err = lade_at_params(rest, p, 7, &k);
    if (err != LADE_OK)
        return err == LADE_ERR_TOO_BIG ? LADE_ERR_PROTO : err;
    if (k != 6 || !int_or(&p[0], 0, 63, 99, &out->rxlev) || !int_or(&p[1], 0, 7, 99, &out->ber) ||
        !int_or(&p[2], 0, 96, 255, &out->rscp) || !int_or(&p[3], 0, 49, 255, &out->ecno) ||
        !int_or(&p[4], 0, 34, 255, &out->rsrq) || !int_or(&p[5], 0, 97, 255, &out->rsrp)) {
        memset(out, 0, sizeof *out);
        out->rsrp_dbm = out->rsrq_db = LADE_BEARER_SIGNAL_UNKNOWN;
        return LADE_ERR_PROTO;
    }
    out->rsrp_dbm = lade_at_rsrp_dbm(out->rsrp);
    if (out->rsrq != 255)
        out->rsrq_db = (int16_t)(out->rsrq / 2 - 20);
    return LADE_OK;
}

lade_err lade_at_parse_cgact(struct lade_str rest, struct lade_at_cgact *out)
{
    if (!out)
        return LADE_ERR_INVAL;
    memset(out, 0, sizeof *out);
    struct lade_at_param p[3];
    size_t k;
    if (lade_at_params(rest, p, 3, &k) != LADE_OK || k != 2 || !int_in(&p[0], 0, 255, &out->cid) ||
        !int_in(&p[1], 0, 1, &out->state)) {
        memset(out, 0, sizeof *out);
        return LADE_ERR_PROTO;
    }
    return LADE_OK;
}

lade_err lade_at_parse_cgpaddr(struct lade_str rest, struct lade_at_cgpaddr *out)
{
    if (!out)
        return LADE_ERR_INVAL;
    memset(out, 0, sizeof *out);
    out->addr1 = out->addr2 = (struct lade_str){"", 0};
    struct lade_at_param p[4];
    size_t k;
    if (lade_at_params(rest, p, 4, &k) != LADE_OK || k < 1 || k > 3 ||
        !int_in(&p[0], 0, 255, &out->cid)) {
        memset(out, 0, sizeof *out);
        out->addr1 = out->addr2 = (struct lade_str){"", 0};
        return LADE_ERR_PROTO;
    }
    if (k > 1)
        out->addr1 = p[1].text;
    if (k > 2)
        out->addr2 = p[2].text;
    return LADE_OK;
}

lade_err lade_at_parse_cops(struct lade_str rest, struct lade_at_cops *out)
{
    if (!out)
        return LADE_ERR_INVAL;
    memset(out, 0, sizeof *out);
    out->format = out->act = -1;
    out->oper = (struct lade_str){"", 0};
    struct lade_at_param p[5];
    size_t k;
    if (lade_at_params(rest, p, 5, &k) != LADE_OK || k < 1 || k > 4 ||
        !int_in(&p[0], 0, 4, &out->mode))
        goto fail;
    if (k >= 2 && !p[1].empty && !int_in(&p[1], 0, 2, &out->format))
        goto fail;
    if (k >= 3)
        out->oper = p[2].text;
    if (k >= 4 && !p[3].empty && !int_in(&p[3], 0, 15, &out->act))
        goto fail;
    return LADE_OK;
fail:
    memset(out, 0, sizeof *out);
    out->format = out->act = -1;
    out->oper = (struct lade_str){"", 0};
    return LADE_ERR_PROTO;
}

/* ---- commands --------------------------------------------------------------------------- */

static bool apn_ok(const char *apn)
{
    size_t n = strlen(apn);
    if (n > 100) /* 3GPP TS 23.003 §9.1: at most 100 octets */
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = apn[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return false;
    }
    return true;
}

lade_err lade_at_format_cgdcont(char *buf, size_t cap, int cid, const char *pdp_type,
                                const char *apn, size_t *len)
{
    if (!buf || !pdp_type || !apn || !len)
        return LADE_ERR_INVAL;
    if (cid < 1 || cid > 15 || !apn_ok(apn))
        return LADE_ERR_INVAL;
    if (strcmp(pdp_type, "IP") != 0 && strcmp(pdp_type, "IPV6") != 0 &&
        strcmp(pdp_type, "IPV4V6") != 0 && strcmp(pdp_type, "Non-IP") != 0)
        return LADE_ERR_INVAL;
    int w = snprintf(buf, cap, "AT+CGDCONT=%d,\"%s\",\"%s\"", cid, pdp_type, apn);
    if (w < 0 || (size_t)w >= cap)
        return LADE_ERR_NOSPACE;
    *len = (size_t)w;
    return LADE_OK;
}

void lade_at_to_link(int32_t stat, bool pdp_active, int16_t rsrp_dbm, int16_t csq_dbm,
                     struct lade_bearer_link_state *out)
{
    memset(out, 0, sizeof *out);
    out->up = lade_at_registered(stat) && pdp_active;
    /* RSRP is what the bearer manager's LTE floor is written in; +CSQ (RSSI over the whole
     * band, a few dB to 25 dB above RSRP) only when the modem has no +CESQ. */
    out->signal = rsrp_dbm != LADE_BEARER_SIGNAL_UNKNOWN ? rsrp_dbm : csq_dbm;
}
