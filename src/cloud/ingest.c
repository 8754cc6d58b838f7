/* The portal's reading of charger messages (include/lade/ingest.h). */
#include "lade/ingest.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

static void invalid(struct lade_ingest_msg *m, const char *why)
{
    m->kind = LADE_INGEST_INVALID;
    snprintf(m->reason, sizeof m->reason, "%s", why);
}

/* The value of key in a URL-encoded property bag ("k1=v1&k2=v2"), decoded into out. */
static bool prop(struct lade_str props, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    size_t i = 0;
    while (i < props.n) {
        size_t end = i;
        while (end < props.n && props.p[end] != '&')
            end++;
        /* the key itself may be encoded ("%24.mid"): decode it before comparing */
        const char *eq = memchr(props.p + i, '=', end - i);
        if (eq) {
            char k[64];
            size_t kn;
            if (lade_url_decode(props.p + i, (size_t)(eq - (props.p + i)), k, sizeof k, &kn) ==
                    LADE_OK &&
                kn == klen && memcmp(k, key, klen) == 0) {
                size_t vn;
                return lade_url_decode(eq + 1, (size_t)(props.p + end - (eq + 1)), out, cap, &vn) ==
                       LADE_OK;
            }
        }
        i = end + 1;
    }
    return false;
}

static bool is_hex32(const char *s)
{
    if (strlen(s) != 32)
        return false;
    for (int i = 0; i < 32; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

lade_err lade_ingest_iso_time(const char *s, int64_t *out)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, se;
    size_t n = strlen(s);
    if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        !digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
        return LADE_ERR_PROTO;
    size_t i = 19;
    if (s[i] == '.') {
        i++;
        size_t f = i;
        while (s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f || i - f > 9)
            return LADE_ERR_PROTO;
    }
    if (s[i] != 'Z' || s[i + 1] != 0)
        return LADE_ERR_PROTO;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || se > 60)
        return LADE_ERR_PROTO;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    return LADE_OK;
}

/* Energy "12.345" (kWh, up to 3 decimals) → Wh, exactly. */
static bool energy_wh(const cJSON *v, uint64_t *wh)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 1e9)
        return false;
    double x = v->valuedouble * 1000.0;
    uint64_t r = (uint64_t)(x + 0.5);
    if (x - (double)r > 1e-6 || (double)r - x > 1e-6)
        return false; /* more than 3 decimals: the charger sends Wh resolution */
    *wh = r;
    return true;
}

static void parse_session(struct lade_ingest_msg *m, const char *mid, const char *doc,
                          size_t doc_len)
{
    cJSON *o = cJSON_ParseWithLength(doc, doc_len);
    struct lade_ingest_session *s = &m->session;
    memset(s, 0, sizeof *s);
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(o, "SessionId");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "StartDateTime");
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(o, "EndDateTime");
    const cJSON *rc = cJSON_GetObjectItemCaseSensitive(o, "ReliableClock");
    const cJSON *pk = cJSON_GetObjectItemCaseSensitive(o, "PeakPowerW");
    const cJSON *ph = cJSON_GetObjectItemCaseSensitive(o, "Phases");
    const cJSON *why = cJSON_GetObjectItemCaseSensitive(o, "EndReason");
    const cJSON *est = cJSON_GetObjectItemCaseSensitive(o, "EndEstimated");
    if (!cJSON_IsObject(o)) {
        invalid(m, "723 is not a JSON object");
    } else if (!cJSON_IsString(sid) || strcmp(sid->valuestring, mid) != 0) {
        invalid(m, "SessionId differs from $.mid");
    } else if (!energy_wh(cJSON_GetObjectItemCaseSensitive(o, "Energy"), &s->energy_wh)) {
        invalid(m, "Energy must be kWh >= 0 with at most 3 decimals");
    } else if (!cJSON_IsString(st) || !cJSON_IsString(en) ||
               lade_ingest_iso_time(st->valuestring, &s->start_s) != LADE_OK ||
               lade_ingest_iso_time(en->valuestring, &s->end_s) != LADE_OK) {
        invalid(m, "StartDateTime/EndDateTime must be ISO 8601 UTC");
    } else if (s->end_s < s->start_s) {
        invalid(m, "session ends before it starts");
    } else if (!cJSON_IsBool(rc)) {
        invalid(m, "ReliableClock must be a boolean");
    } else if ((pk && (!cJSON_IsNumber(pk) || !(pk->valuedouble >= 0) || pk->valuedouble > 1e6)) ||
               (ph && (!cJSON_IsNumber(ph) || !(ph->valuedouble >= 0) || ph->valuedouble > 3)) ||
               (why &&
                (!cJSON_IsString(why) || strlen(why->valuestring) >= sizeof s->end_reason)) ||
               (est && !cJSON_IsBool(est))) {
        invalid(m, "PeakPowerW/Phases/EndReason/EndEstimated out of range");
    } else {
        m->kind = LADE_INGEST_SESSION;
        snprintf(s->id, sizeof s->id, "%s", mid);
        s->reliable_clock = cJSON_IsTrue(rc);
        s->end_estimated = cJSON_IsTrue(est);
        s->peak_power_w = pk ? (int32_t)pk->valuedouble : 0;
        s->phases = ph ? (unsigned)ph->valuedouble : 0;
        snprintf(s->end_reason, sizeof s->end_reason, "%s", why ? why->valuestring : "");
    }
    cJSON_Delete(o);
}

void lade_ingest_parse(struct lade_str props, const uint8_t *payload, size_t len,
                       struct lade_ingest_msg *out)
{
    memset(out, 0, sizeof *out);
    struct lade_obs_msg om;
    lade_err err = lade_obs_decode((const char *)payload, len, &om, out->items, LADE_INGEST_ITEMS);
    if (err) {
        /* Not an observation message: a charger without charging hardware sends a link-only
         * state document ({"type":"state",...}); anything else is malformed. */
        cJSON *o = cJSON_ParseWithLength((const char *)payload, len);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
        if (cJSON_IsString(t))
            out->kind = LADE_INGEST_OTHER;
        else
            invalid(out, err == LADE_ERR_TOO_BIG ? "observation message too big"
                                                 : "not an observation message");
        cJSON_Delete(o);
        return;
    }
    out->wall_s = om.wall_s;
    out->snapshot = om.snapshot;
    out->n_items = om.count;
    char mid[64];
    bool has_mid = prop(props, "$.mid", mid, sizeof mid);
    const struct lade_obs_item *completed = NULL;
    for (size_t i = 0; i < om.count; i++)
        if (out->items[i].id == 723)
            completed = &out->items[i];
    if (!has_mid && !completed) {
        out->kind = LADE_INGEST_STATE;
        return;
    }
    if (!has_mid || !completed || om.count != 1) {
        invalid(out, "a session message carries $.mid and observation 723 alone");
        return;
    }
    if (!is_hex32(mid)) {
        invalid(out, "$.mid must be 32 lower-case hex characters");
        return;
    }
    char doc[LADE_OBS_STR_MAX + 1];
    size_t doc_len;
    if (lade_obs_unescape(completed->raw, doc, sizeof doc, &doc_len) != LADE_OK) {
        invalid(out, "723 is not a valid string");
        return;
    }
    out->n_items = 0;
    parse_session(out, mid, doc, doc_len);
}
