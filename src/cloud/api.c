/* lade — the portal's REST API and web files (docs/portal-api.md; SPEC U2, U4, R14–R17).
 *
 * Routing, OAuth password login, bearer-token checks, per-user rate limits, role checks, JSON
 * validation and the handlers: the reference cloud's endpoints (same shape, so its clients work
 * by changing only the base URL) and lade's own calls under /api/lade/. The core (portal.c)
 * owns the loop, the store, the hub link and the balancers; this file reads and writes the
 * store and asks the core to rebuild an installation's balancer (portal_int.h).
 *
 * Every change is validated completely before anything is written. A change that the balancer
 * refuses (portal_reload → LADE_ERR_CONFIG: e.g. the offline fallback currents would no longer
 * fit a fuse) is undone in the store, the balancer reloaded again, and then the 400 goes out:
 * an error never leaves a half-applied change behind (U4).
 *
 * Never logged: passwords, tokens, password hashes, Authorization headers, request bodies.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>

#include "lade/auth.h"
#include "lade/clock.h"
#include "lade/http.h"
#include "lade/log.h"
#include "lade/store.h"
#include "portal_int.h"

#define MOD "api"

#ifndef LADE_WEB_DIR
/* The build sets the source tree's web folder; without it, a checkout's working directory. */
#define LADE_WEB_DIR "src/cloud/web"
#endif

#define JSON_CT        "application/json; charset=utf-8"
#define PATH_LEN_MAX   512
#define PATH_SEGS_MAX  8
#define RL_KEYS        16384      /* buckets per rate limiter (40 B each) */
#define WEB_FILE_MAX   (4u << 20) /* a web file larger than this is refused (500) */
#define HIST_PAGE_SIZE 50
#define DEVICE_TYPE    1 /* reference DeviceType: the three-phase charger */
#define CHARGER_MIN_A  6 /* the charger's twin refuses a max/min below 6 A (charging.md) */
#define METER_IVAL_MAX 3600
#define CHARGER_MAX_A  (LADE_STORE_CHARGER_MAX_MA / 1000)
#define OBS_MODE       710
#define OBS_FIRMWARE   911
#define OBS_IS_ONLINE  (-2)
#define ROLES_ANY      LADE_ROLE_ALL /* reading, and commands ("User or more") */
#define ROLES_CONFIG   (LADE_ROLE_OWNER | LADE_ROLE_MAINTAINER | LADE_ROLE_ADMIN)
#define CMD_UPGRADE_FW 200
#define WWW_AUTH       "WWW-Authenticate: Bearer realm=\"lade\""
#define WWW_AUTH_BAD   "WWW-Authenticate: Bearer realm=\"lade\", error=\"invalid_token\""
#define STATIC_HEADERS "Content-Security-Policy: default-src 'self'\r\nCache-Control: no-cache"

/* A sendCommand request waiting for the charger's reply. */
struct api_cmd {
    struct api_cmd *next, *prev;
    struct portal_api *api;    /* NULL once the API is gone */
    struct lade_http_req *req; /* NULL once it cannot be answered any more */
    int64_t charger_id;
    int command_id;
};

struct portal_api {
    struct lade_portal *p;
    struct lade_ratelimit *rl_user;       /* API requests per user id */
    struct lade_ratelimit *rl_login_addr; /* logins per client address */
    struct lade_ratelimit *rl_login_user; /* logins per user name (lower-cased) */
    uint32_t rate_burst, rate_refill_ms;
    struct api_cmd *cmds;
};

/* One request being handled. */
struct ctx {
    struct portal_api *api;
    struct lade_portal *p;
    struct lade_store *st;
    struct lade_http_req *req;
    const char *arg[2]; /* the path's "*" segments, as sent */
    int64_t user_id;
    uint32_t roles; /* the user's global roles */
};

/* ---- answers ---- */

static void count(struct portal_api *api, unsigned status)
{
    struct portal_metrics *m = api ? portal_metrics(api->p) : NULL;
    if (!m)
        return;
    if (status >= 400 && status < 500)
        m->http_errors_4xx++;
    else if (status >= 500 && status < 600)
        m->http_errors_5xx++;
    if (status == 429)
        m->http_rate_limited++;
}

static void send_raw(struct portal_api *api, struct lade_http_req *req, unsigned status,
                     const char *ctype, const void *body, size_t len, const char *headers)
{
    count(api, status);
    LOG_D(MOD, "%s %s -> %u", lade_http_method(req), lade_http_path(req), status);
    lade_http_reply(req, status, ctype, body, len, headers);
}

/* Sends json (taken and freed) as the answer. */
static void send_json(struct portal_api *api, struct lade_http_req *req, unsigned status,
                      cJSON *json, const char *headers)
{
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;
    cJSON_Delete(json);
    if (!text) {
        static const char oom[] = "{\"Code\":500,\"Details\":\"out of memory\"}";
        send_raw(api, req, 500, JSON_CT, oom, sizeof oom - 1, NULL);
        return;
    }
    send_raw(api, req, status, JSON_CT, text, strlen(text), headers);
    free(text);
}

static void reply(struct ctx *c, unsigned status, cJSON *json)
{
    send_json(c->api, c->req, status, json, NULL);
}

/* {"Message": …} (and "Field" when has_field), with optional extra headers. */
static void vmessage(struct ctx *c, unsigned status, const char *headers, bool has_field,
                     const char *field, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));
static void vmessage(struct ctx *c, unsigned status, const char *headers, bool has_field,
                     const char *field, const char *fmt, va_list ap)
{
    char text[512];
    vsnprintf(text, sizeof text, fmt, ap);
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, "Message", text);
        if (has_field) {
            if (field)
                cJSON_AddStringToObject(o, "Field", field);
            else
                cJSON_AddNullToObject(o, "Field");
        }
    }
    send_json(c->api, c->req, status, o, headers);
}

static void message(struct ctx *c, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void message(struct ctx *c, unsigned status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(c, status, NULL, false, NULL, fmt, ap);
    va_end(ap);
}

static void message_h(struct ctx *c, unsigned status, const char *headers, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void message_h(struct ctx *c, unsigned status, const char *headers, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(c, status, headers, false, NULL, fmt, ap);
    va_end(ap);
}

/* 400 {"Message","Field"}; returns false so validators can `return bad(...)`. */
static bool bad(struct ctx *c, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool bad(struct ctx *c, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(c, 400, NULL, true, field, fmt, ap);
    va_end(ap);
    return false;
}

/* 409 {"Message","Field"}. */
static void conflict(struct ctx *c, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void conflict(struct ctx *c, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage(c, 409, NULL, true, field, fmt, ap);
    va_end(ap);
}

/* The reference's server-error shape: {"Code":…,"Details":…}. */
static void send_code(struct portal_api *api, struct lade_http_req *req, unsigned status, int code,
                      const char *details)
{
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddNumberToObject(o, "Code", code);
        cJSON_AddStringToObject(o, "Details", details);
    }
    send_json(api, req, status, o, NULL);
}

static void server_error(struct ctx *c, lade_err err, const char *what)
{
    if (err == LADE_ERR_DB) {
        struct portal_metrics *m = portal_metrics(c->p);
        if (m)
            m->store_errors++;
        LOG_W(MOD, "%s: store: %s", what, lade_store_errmsg(c->st));
    } else {
        LOG_W(MOD, "%s: %s", what, lade_strerror(err));
    }
    char d[160];
    snprintf(d, sizeof d, "%s: %s", what,
             err == LADE_ERR_DB ? "storage error" : lade_strerror(err));
    send_code(c->api, c->req, 500, 500, d);
}

/* Maps a store error of a write to an answer. field: the body field it concerns (or NULL). */
static void store_failed(struct ctx *c, lade_err err, const char *field, const char *what)
{
    switch (err) {
    case LADE_ERR_NOT_FOUND:
        message(c, 404, "%s: not found", what);
        break;
    case LADE_ERR_EXISTS:
        conflict(c, field, "%s: %s is already taken", what, field ? field : "the value");
        break;
    case LADE_ERR_STATE:
        conflict(c, field, "%s: not possible in the current state", what);
        break;
    case LADE_ERR_INVAL:
        bad(c, field, "%s: %s refused (out of range or malformed)", what,
            field ? field : "a value");
        break;
    default:
        server_error(c, err, what);
        break;
    }
}

/* ---- formatting ---- */

/* Milliamperes as amperes with at least one decimal ("125.0", "15.9", "6.25"): a JSON number
 * that every client parses as a floating-point value, like the reference's "MaxCurrent":125.0. */
static void fmt_milli(int64_t milli, char out[32])
{
    uint64_t a = milli < 0 ? (uint64_t)0 - (uint64_t)milli : (uint64_t)milli;
    unsigned frac = (unsigned)(a % 1000);
    int n = snprintf(out, 32, "%s%" PRIu64 ".%03u", milli < 0 ? "-" : "", a / 1000, frac);
    while (n > 0 && out[n - 1] == '0' && out[n - 2] != '.')
        out[--n] = '\0';
}

static void add_amp(cJSON *o, const char *name, int64_t milli)
{
    char b[32];
    fmt_milli(milli, b);
    cJSON_AddRawToObject(o, name, b);
}

static void add_id(cJSON *o, const char *name, enum portal_id_kind kind, int64_t id)
{
    if (id <= 0) {
        cJSON_AddNullToObject(o, name);
        return;
    }
    char s[PORTAL_ID_LEN + 1];
    portal_id_format(kind, id, s);
    cJSON_AddStringToObject(o, name, s);
}

/* The reference's timestamps: UTC, "2026-01-05T08:28:17.433" (no zone suffix). */
static void fmt_time_ms(int64_t ms, char out[64])
{
    int64_t s = ms / 1000, rem = ms % 1000;
    if (rem < 0) {
        rem += 1000;
        s--;
    }
    time_t t = (time_t)s;
    struct tm tm;
    if (!gmtime_r(&t, &tm)) {
        snprintf(out, 64, "1970-01-01T00:00:00.000");
        return;
    }
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)rem);
}

static void add_time_ms(cJSON *o, const char *name, int64_t ms)
{
    char b[64];
    fmt_time_ms(ms, b);
    cJSON_AddStringToObject(o, name, b);
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

/* "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM[:SS[.fff]]", optional "Z"; UTC. */
static bool parse_time(const char *s, int64_t *out_s)
{
    int y, mo, d, h = 0, mi = 0, se = 0;
    if (strlen(s) < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d))
        return false;
    const char *q = s + 10;
    if (*q == 'T' || *q == 't' || *q == ' ') {
        q++;
        if (strlen(q) < 5 || !digits(q, 2, &h) || q[2] != ':' || !digits(q + 3, 2, &mi))
            return false;
        q += 5;
        if (*q == ':') {
            if (!digits(q + 1, 2, &se))
                return false;
            q += 3;
            if (*q == '.') {
                q++;
                if (*q < '0' || *q > '9')
                    return false;
                while (*q >= '0' && *q <= '9')
                    q++;
            }
        }
    }
    if (*q == 'Z' || *q == 'z')
        q++;
    if (*q || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return false;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = se};
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    *out_s = (int64_t)t;
    return true;
}

/* ---- JSON bodies ---- */

/* Parses the body as a JSON object whose members are all in allowed (names compared ignoring
 * case, each at most once). Answers 400 and returns NULL otherwise. */
static cJSON *body_object(struct ctx *c, const char *const *allowed)
{
    size_t len;
    const char *b = lade_http_body(c->req, &len);
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(b, len, &end, false);
    if (!o) {
        size_t at = end && end >= b && end <= b + len ? (size_t)(end - b) : 0;
        bad(c, NULL, "the body is not valid JSON (at byte %zu)", at);
        return NULL;
    }
    while (end < b + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (end != b + len) {
        cJSON_Delete(o);
        bad(c, NULL, "the body has data after its JSON value");
        return NULL;
    }
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        bad(c, NULL, "the body must be a JSON object");
        return NULL;
    }
    for (const cJSON *m = o->child; m; m = m->next) {
        bool known = false;
        for (size_t i = 0; allowed[i]; i++)
            if (strcasecmp(m->string, allowed[i]) == 0)
                known = true;
        if (!known) {
            bad(c, m->string, "unknown field \"%.64s\"", m->string);
            cJSON_Delete(o);
            return NULL;
        }
        for (const cJSON *n = m->next; n; n = n->next)
            if (strcasecmp(m->string, n->string) == 0) {
                bad(c, m->string, "field \"%.64s\" given twice", m->string);
                cJSON_Delete(o);
                return NULL;
            }
    }
    return o;
}

/* No libm: the library does not link it. */
static bool is_whole(double d)
{
    return isfinite(d) && d > -9e15 && d < 9e15 && (double)(long long)d == d;
}

static bool get_int(struct ctx *c, const cJSON *o, const char *name, int64_t lo, int64_t hi,
                    bool *present, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItem(o, name);
    *present = v != NULL;
    if (!v)
        return true;
    if (!cJSON_IsNumber(v))
        return bad(c, name, "%s must be a whole number", name);
    double d = v->valuedouble;
    if (isfinite(d) && (d < (double)lo || d > (double)hi))
        return bad(c, name, "%s must be %" PRId64 "..%" PRId64, name, lo, hi);
    if (!is_whole(d))
        return bad(c, name, "%s must be a whole number", name);
    *out = (int64_t)d;
    return true;
}

/* A current in A (JSON number; fractions kept to the mA unless whole) into mA. */
static bool get_amp(struct ctx *c, const cJSON *o, const char *name, int32_t lo_ma, int32_t hi_ma,
                    bool whole, bool *present, int32_t *out_ma)
{
    const cJSON *v = cJSON_GetObjectItem(o, name);
    *present = v != NULL;
    if (!v)
        return true;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return bad(c, name, "%s must be a number of amperes", name);
    double d = v->valuedouble;
    if (whole && !is_whole(d))
        return bad(c, name, "%s must be a whole number of amperes", name);
    char lo[32], hi[32];
    fmt_milli(lo_ma, lo);
    fmt_milli(hi_ma, hi);
    if (d * 1000.0 < (double)lo_ma - 0.5 || d * 1000.0 > (double)hi_ma + 0.5)
        return bad(c, name, "%s must be %s..%s A", name, lo, hi);
    double x = d * 1000.0;
    long long ma = x >= 0 ? (long long)(x + 0.5) : -(long long)(0.5 - x);
    *out_ma = (int32_t)(ma < lo_ma ? lo_ma : ma > hi_ma ? hi_ma : ma);
    return true;
}

static bool get_bool(struct ctx *c, const cJSON *o, const char *name, bool *present, bool *out)
{
    const cJSON *v = cJSON_GetObjectItem(o, name);
    *present = v != NULL;
    if (!v)
        return true;
    if (!cJSON_IsBool(v))
        return bad(c, name, "%s must be true or false", name);
    *out = cJSON_IsTrue(v);
    return true;
}

/* A string of 1..max bytes into out (cap > max). */
static bool get_str(struct ctx *c, const cJSON *o, const char *name, size_t max, bool *present,
                    char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItem(o, name);
    *present = v != NULL;
    if (!v)
        return true;
    if (!cJSON_IsString(v) || !v->valuestring)
        return bad(c, name, "%s must be a string", name);
    size_t n = strlen(v->valuestring);
    if (n == 0 || n > max || n >= cap)
        return bad(c, name, "%s must be 1..%zu bytes long", name, max);
    memcpy(out, v->valuestring, n + 1);
    return true;
}

/* An id string of kind, or JSON null (→ 0). */
static bool get_ref(struct ctx *c, const cJSON *o, const char *name, enum portal_id_kind kind,
                    bool nullable, bool *present, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItem(o, name);
    *present = v != NULL;
    if (!v)
        return true;
    if (cJSON_IsNull(v) && nullable) {
        *out = 0;
        return true;
    }
    if (!cJSON_IsString(v) || !v->valuestring || portal_id_parse(kind, v->valuestring, out))
        return bad(c, name, "%s must be an id string%s", name, nullable ? " or null" : "");
    return true;
}

/* A per-phase current given either as one value (`all`, for the phases on[] selects; the others
 * get 0) or as three (`ph[0..2]`, all of them). */
static bool get_phases(struct ctx *c, const cJSON *o, const char *all, const char *const ph[3],
                       const bool on[3], int32_t hi_ma, bool *present, int32_t out[3])
{
    bool pa, pp[3];
    int32_t va = 0, vp[3] = {0, 0, 0};
    if (!get_amp(c, o, all, 0, hi_ma, false, &pa, &va))
        return false;
    for (int i = 0; i < 3; i++)
        if (!get_amp(c, o, ph[i], 0, hi_ma, false, &pp[i], &vp[i]))
            return false;
    bool any = pp[0] || pp[1] || pp[2];
    if (pa && any)
        return bad(c, all, "give either %s or the three per-phase values, not both", all);
    for (int i = 0; any && i < 3; i++)
        if (!pp[i])
            return bad(c, ph[i], "%s missing: give all three phases", ph[i]);
    *present = pa || any;
    for (int i = 0; i < 3; i++)
        out[i] = pa ? (on[i] ? va : 0) : any ? vp[i] : out[i];
    return true;
}

/* ---- access ---- */

static bool authenticate(struct ctx *c)
{
    const char *h = lade_http_header(c->req, "Authorization");
    if (!h) {
        message_h(c, 401, WWW_AUTH,
                  "log in first (POST /oauth/token), then send "
                  "\"Authorization: Bearer <token>\"");
        return false;
    }
    while (*h == ' ' || *h == '\t')
        h++;
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t')) {
        message_h(c, 401, WWW_AUTH, "the Authorization header must be \"Bearer <token>\"");
        return false;
    }
    const char *t = h + 6;
    while (*t == ' ' || *t == '\t')
        t++;
    size_t n = strlen(t);
    while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    lade_err err = n ? lade_auth_token_check(c->st, t, n, lade_wall_s(), &c->user_id, &c->roles)
                     : LADE_ERR_AUTH;
    switch (err) {
    case LADE_OK:
        return true;
    case LADE_ERR_EXPIRED:
        message_h(c, 401, WWW_AUTH_BAD, "the token has expired; log in again");
        return false;
    case LADE_ERR_AUTH:
        message_h(c, 401, WWW_AUTH_BAD, "the token is not valid; log in again");
        return false;
    default:
        server_error(c, err, "token check");
        return false;
    }
}

static bool rate_ok(struct ctx *c)
{
    uint32_t wait =
        lade_ratelimit_take(c->api->rl_user, &c->user_id, sizeof c->user_id, lade_mono_ms());
    if (!wait)
        return true;
    char h[48];
    snprintf(h, sizeof h, "Retry-After: %" PRIu32, wait);
    message_h(c, 429, h,
              "too many requests (at most %" PRIu32 " at once, then one per %" PRIu32
              " ms); retry in %" PRIu32 " s",
              c->api->rate_burst, c->api->rate_refill_ms, wait);
    return false;
}

static const char *roles_needed(uint32_t mask)
{
    return mask == ROLES_CONFIG ? "the Owner, Maintainer or Administrator role"
                                : "a role on the installation";
}

/* The installation exists and the user has one of mask's roles on it; else answers 404/403. */
static bool need_inst(struct ctx *c, int64_t id, uint32_t mask, struct lade_store_installation *out,
                      uint32_t *roles_out)
{
    struct lade_store_installation tmp;
    if (!out)
        out = &tmp;
    lade_err err = lade_store_installation_get(c->st, id, out);
    if (err == LADE_ERR_NOT_FOUND) {
        message(c, 404, "no such installation");
        return false;
    }
    uint32_t roles = 0;
    if (err == LADE_OK)
        err = lade_store_access_get(c->st, c->user_id, id, &roles);
    if (err != LADE_OK) {
        server_error(c, err, "installation");
        return false;
    }
    if (!roles) {
        message(c, 403, "you have no access to this installation");
        return false;
    }
    if (!(roles & mask)) {
        message(c, 403, "this needs %s", roles_needed(mask));
        return false;
    }
    if (roles_out)
        *roles_out = roles;
    return true;
}

static bool need_charger(struct ctx *c, int64_t id, uint32_t mask, struct lade_store_charger *out)
{
    lade_err err = lade_store_charger_get(c->st, id, out);
    if (err == LADE_ERR_NOT_FOUND) {
        message(c, 404, "no such charger");
        return false;
    }
    if (err != LADE_OK) {
        server_error(c, err, "charger");
        return false;
    }
    if (out->installation_id == 0) {
        if (c->roles & LADE_ROLE_ADMIN)
            return true;
        message(c, 403, "you have no access to this charger");
        return false;
    }
    uint32_t roles = 0;
    err = lade_store_access_get(c->st, c->user_id, out->installation_id, &roles);
    if (err != LADE_OK) {
        server_error(c, err, "charger");
        return false;
    }
    if (!roles) {
        message(c, 403, "you have no access to this charger");
        return false;
    }
    if (!(roles & mask)) {
        message(c, 403, "this needs %s", roles_needed(mask));
        return false;
    }
    return true;
}

/* The path argument i as an id of kind; a malformed id is an unknown one (404). */
static bool path_id(struct ctx *c, size_t i, enum portal_id_kind kind, const char *what,
                    int64_t *id)
{
    if (c->arg[i] && portal_id_parse(kind, c->arg[i], id) == LADE_OK)
        return true;
    message(c, 404, "no such %s", what);
    return false;
}

/* ---- reading the store ---- */

struct vec {
    void *v;
    size_t n, cap, size;
    bool oom;
};

static int vec_push(struct vec *a, const void *item)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        void *nv = realloc(a->v, cap * a->size);
        if (!nv) {
            a->oom = true;
            return 1;
        }
        a->v = nv;
        a->cap = cap;
    }
    memcpy((char *)a->v + a->n * a->size, item, a->size);
    a->n++;
    return 0;
}

static int push_charger(void *ud, const struct lade_store_charger *ch)
{
    return vec_push(ud, ch);
}

static int push_circuit(void *ud, const struct lade_store_circuit *ci)
{
    return vec_push(ud, ci);
}

struct obs_find {
    int32_t id;
    bool found;
    char value[LADE_STORE_VALUE_MAX + 1];
    int64_t ts_ms;
};

static int obs_find_cb(void *ud, const struct lade_store_obs *o)
{
    struct obs_find *f = ud;
    if (o->obs_id != f->id)
        return 0;
    f->found = true;
    snprintf(f->value, sizeof f->value, "%s", o->value);
    f->ts_ms = o->ts_ms;
    return 1;
}

/* The latest value of observation obs_id of the charger ("" if none). */
static bool state_value(struct ctx *c, int64_t charger_id, int32_t obs_id, char *out, size_t cap)
{
    struct obs_find f = {.id = obs_id};
    if (lade_store_state_list(c->st, charger_id, obs_find_cb, &f) != LADE_OK || !f.found) {
        out[0] = '\0';
        return false;
    }
    snprintf(out, cap, "%s", f.value);
    return true;
}

static int charger_mode(struct ctx *c, int64_t charger_id)
{
    char v[LADE_STORE_VALUE_MAX + 1];
    if (!state_value(c, charger_id, OBS_MODE, v, sizeof v))
        return 0;
    char *end;
    long m = strtol(v, &end, 10);
    return end != v && *end == '\0' && m >= 0 && m <= 1000 ? (int)m : 0;
}

static int32_t max3(const int32_t v[3])
{
    int32_t m = v[0];
    for (int i = 1; i < 3; i++)
        if (v[i] > m)
            m = v[i];
    return m;
}

static bool three_phase(enum lade_network_type t)
{
    return t != LADE_NET_IT_1_PHASE && t != LADE_NET_TN_1_PHASE;
}

/* ---- JSON shapes ---- */

static const char *const avail_ph[3] = {"AvailableCurrentPhase1", "AvailableCurrentPhase2",
                                        "AvailableCurrentPhase3"};
static const char *const fuse_ph[3] = {"FuseCurrentPhase1", "FuseCurrentPhase2",
                                       "FuseCurrentPhase3"};
static const char *const limit_ph[3] = {"LimitCurrentPhase1", "LimitCurrentPhase2",
                                        "LimitCurrentPhase3"};

static cJSON *inst_json(const struct lade_store_installation *in, uint32_t roles, bool detail)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    add_id(o, "Id", PORTAL_ID_INSTALLATION, in->id);
    cJSON_AddStringToObject(o, "Name", in->name);
    cJSON_AddBoolToObject(o, "Active", true);
    cJSON_AddNumberToObject(o, "CurrentUserRoles", roles);
    cJSON_AddNumberToObject(o, "InstallationType", 0);
    cJSON_AddNumberToObject(o, "NetworkType", in->network_type);
    add_amp(o, "MaxCurrent", max3(in->fuse_ma));
    if (detail) {
        /* AvailableCurrent: the lowest over the phases that have a fuse (a one-phase supply has
         * 0 on the others). */
        int32_t avail = -1;
        for (int i = 0; i < 3; i++)
            if (in->fuse_ma[i] > 0 && (avail < 0 || in->available_ma[i] < avail))
                avail = in->available_ma[i];
        add_amp(o, "AvailableCurrent", avail < 0 ? 0 : avail);
        for (int i = 0; i < 3; i++)
            add_amp(o, avail_ph[i], in->available_ma[i]);
        add_amp(o, "ThreeToOnePhaseSwitchCurrent", 0);
        for (int i = 0; i < 3; i++)
            add_amp(o, fuse_ph[i], in->fuse_ma[i]);
        add_time_ms(o, "CreatedOn", in->created_s * 1000);
    }
    if (!cJSON_GetObjectItem(o, "MaxCurrent")) { /* an allocation failed */
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *circuit_json(const struct lade_store_circuit *ci)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    add_id(o, "Id", PORTAL_ID_CIRCUIT, ci->id);
    add_id(o, "InstallationId", PORTAL_ID_INSTALLATION, ci->installation_id);
    add_id(o, "ParentId", PORTAL_ID_CIRCUIT, ci->parent_id);
    cJSON_AddStringToObject(o, "Name", ci->name);
    add_amp(o, "MaxCurrent", max3(ci->fuse_ma));
    for (int i = 0; i < 3; i++)
        add_amp(o, fuse_ph[i], ci->fuse_ma[i]);
    for (int i = 0; i < 3; i++)
        add_amp(o, limit_ph[i], ci->limit_ma[i]);
    return o;
}

/* detail: lade's settings too (GET /api/chargers/{id}, /api/lade/chargers). */
static cJSON *charger_json(struct ctx *c, const struct lade_store_charger *ch, bool detail)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    add_id(o, "Id", PORTAL_ID_CHARGER, ch->id);
    cJSON_AddStringToObject(o, "Name", ch->name);
    cJSON_AddBoolToObject(o, "Active", ch->active);
    cJSON_AddNumberToObject(o, "DeviceType", DEVICE_TYPE);
    cJSON_AddStringToObject(o, "DeviceId", ch->device_id);
    add_id(o, "InstallationId", PORTAL_ID_INSTALLATION, ch->installation_id);
    add_id(o, "CircuitId", PORTAL_ID_CIRCUIT, ch->circuit_id);
    cJSON_AddBoolToObject(o, "IsOnline", portal_charger_online(c->p, ch->id));
    cJSON_AddNumberToObject(o, "OperatingMode", charger_mode(c, ch->id));
    if (detail) {
        char rot[7];
        if (lade_store_rotation_format(ch->phase_map, rot) != LADE_OK)
            snprintf(rot, sizeof rot, "L1L2L3");
        cJSON_AddNumberToObject(o, "Priority", ch->priority);
        cJSON_AddStringToObject(o, "PhaseRotation", rot);
        add_amp(o, "MaxCurrent", ch->max_current_ma);
        add_amp(o, "MinCurrent", ch->min_current_ma);
        cJSON_AddNumberToObject(o, "MaxPhases", ch->max_phases);
        add_amp(o, "OfflineCurrent", ch->offline_current_ma);
        cJSON_AddNumberToObject(o, "OfflinePhases", ch->offline_phases);
        if (ch->last_seen_s > 0)
            add_time_ms(o, "LastSeen", ch->last_seen_s * 1000);
        else
            cJSON_AddNullToObject(o, "LastSeen");
    }
    if (!cJSON_GetObjectItem(o, "OperatingMode")) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* {"Pages":1,"Data":data} */
static cJSON *paged(cJSON *data, uint64_t pages)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !data) {
        cJSON_Delete(o);
        cJSON_Delete(data);
        return NULL;
    }
    cJSON_AddNumberToObject(o, "Pages", (double)pages);
    cJSON_AddItemToObject(o, "Data", data);
    return o;
}

/* ---- static files ---- */

static void h_static(struct ctx *c)
{
    static const struct {
        const char *name, *ctype;
    } files[] = {
        {"index.html", "text/html; charset=utf-8"},
        {"app.js", "text/javascript; charset=utf-8"},
        {"style.css", "text/css; charset=utf-8"},
    };
    const char *path = lade_http_path(c->req);
    size_t k = 0;
    if (strcasecmp(path, "/app.js") == 0)
        k = 1;
    else if (strcasecmp(path, "/style.css") == 0)
        k = 2;
    const struct lade_portal_opts *o = portal_opts(c->p);
    const char *dir = o && o->web_dir ? o->web_dir : LADE_WEB_DIR;
    char fn[1024];
    if ((size_t)snprintf(fn, sizeof fn, "%s/%s", dir, files[k].name) >= sizeof fn) {
        message(c, 500, "web directory path too long");
        return;
    }
    FILE *f = fopen(fn, "rb");
    if (!f) {
        LOG_W(MOD, "web file %s: cannot open", fn);
        message(c, 404, "web file not found");
        return;
    }
    /* Sized from the file (one byte more, to see the end), never above WEB_FILE_MAX. */
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    bool err = size < 0 || (unsigned long)size > WEB_FILE_MAX || fseek(f, 0, SEEK_SET) != 0;
    char *buf = err ? NULL : malloc((size_t)size + 1);
    size_t n = buf ? fread(buf, 1, (size_t)size + 1, f) : 0;
    err = err || !buf || ferror(f) || !feof(f);
    fclose(f);
    if (err) {
        free(buf);
        LOG_W(MOD, "web file %s: cannot read it (or larger than %u bytes)", fn, WEB_FILE_MAX);
        message(c, 500, "web file unreadable");
        return;
    }
    send_raw(c->api, c->req, 200, files[k].ctype, buf, n, STATIC_HEADERS);
    free(buf);
}

static void h_metrics(struct ctx *c)
{
    char *text = portal_metrics_text(c->p);
    if (!text) {
        send_code(c->api, c->req, 500, 500, "out of memory");
        return;
    }
    send_raw(c->api, c->req, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text),
             NULL);
    free(text);
}

/* ---- login ---- */

static void oauth_error(struct ctx *c, unsigned status, const char *error, const char *desc,
                        const char *headers)
{
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, "error", error);
        cJSON_AddStringToObject(o, "error_description", desc);
    }
    send_json(c->api, c->req, status, o, headers);
}

static void h_login(struct ctx *c)
{
    size_t len;
    const char *body = lade_http_body(c->req, &len);
    struct portal_metrics *m = portal_metrics(c->p);
    char grant[32];
    lade_err err = lade_http_form_value(body, len, "grant_type", grant, sizeof grant);
    if (err == LADE_ERR_NOT_FOUND) {
        oauth_error(c, 400, "invalid_request", "grant_type is missing", NULL);
        return;
    }
    if (err != LADE_OK || strcmp(grant, "password") != 0) {
        oauth_error(c, 400, "unsupported_grant_type", "only grant_type=password is supported",
                    NULL);
        return;
    }
    char user[LADE_STORE_USERNAME_MAX + 1];
    char pw[LADE_AUTH_PASSWORD_MAX + 1];
    lade_err eu = lade_http_form_value(body, len, "username", user, sizeof user);
    lade_err ep = lade_http_form_value(body, len, "password", pw, sizeof pw);
    if (eu == LADE_ERR_NOT_FOUND || ep == LADE_ERR_NOT_FOUND) {
        OPENSSL_cleanse(pw, sizeof pw);
        oauth_error(c, 400, "invalid_request", "username and password are required", NULL);
        return;
    }
    /* Rate limits before the KDF: per client address, then per user name (ignoring case, as
     * user names are unique ignoring case). A user name too long to store still counts. */
    uint64_t now = lade_mono_ms();
    const char *addr = lade_http_client(c->req);
    uint32_t wait = lade_ratelimit_take(c->api->rl_login_addr, addr, strlen(addr), now);
    if (!wait && eu == LADE_OK) {
        char key[LADE_STORE_USERNAME_MAX + 1];
        size_t n = strlen(user);
        for (size_t i = 0; i <= n; i++)
            key[i] = user[i] >= 'A' && user[i] <= 'Z' ? (char)(user[i] - 'A' + 'a') : user[i];
        wait = lade_ratelimit_take(c->api->rl_login_user, key, n, now);
    }
    if (wait) {
        OPENSSL_cleanse(pw, sizeof pw);
        if (m)
            m->logins_failed++;
        char h[48], d[96];
        snprintf(h, sizeof h, "Retry-After: %" PRIu32, wait);
        snprintf(d, sizeof d, "too many login attempts; retry in %" PRIu32 " s", wait);
        LOG_I(MOD, "login from %s rate-limited (%" PRIu32 " s)", addr, wait);
        oauth_error(c, 429, "too_many_requests", d, h);
        return;
    }
    const struct lade_portal_opts *o = portal_opts(c->p);
    uint32_t ttl = o && o->token_ttl_s ? o->token_ttl_s : LADE_AUTH_TOKEN_TTL_DEFAULT_S;
    char token[LADE_AUTH_TOKEN_CHARS + 1];
    int64_t expires = 0, uid = 0;
    err = eu == LADE_OK && ep == LADE_OK
              ? lade_auth_login(c->st, user, pw, strlen(pw), lade_wall_s(), ttl, o ? o->kdf : NULL,
                                token, &expires, &uid)
              : LADE_ERR_AUTH;
    OPENSSL_cleanse(pw, sizeof pw);
    if (err == LADE_ERR_AUTH || err == LADE_ERR_INVAL) {
        if (m)
            m->logins_failed++;
        LOG_I(MOD, "login from %s refused", addr);
        oauth_error(c, 400, "invalid_grant", "wrong user name or password", NULL);
        return;
    }
    if (err != LADE_OK) {
        if (m)
            m->logins_failed++;
        LOG_W(MOD, "login from %s failed: %s", addr, lade_strerror(err));
        oauth_error(c, 500, "server_error", "the login could not be checked", NULL);
        return;
    }
    if (m)
        m->logins_ok++;
    LOG_I(MOD, "user %" PRId64 " logged in from %s", uid, addr);
    cJSON *r = cJSON_CreateObject();
    if (r) {
        cJSON_AddStringToObject(r, "access_token", token);
        cJSON_AddStringToObject(r, "token_type", "Bearer");
        cJSON_AddNumberToObject(r, "expires_in", ttl - 1);
    }
    OPENSSL_cleanse(token, sizeof token);
    reply(c, 200, r);
}

/* ---- constants ---- */

struct name_id {
    const char *name;
    int id;
};

static cJSON *name_ids(const struct name_id *t, size_t n)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i < n; i++)
        cJSON_AddNumberToObject(o, t[i].name, t[i].id);
    return o;
}

#define NAME_IDS(t) name_ids(t, sizeof t / sizeof t[0])

static void h_constants(struct ctx *c)
{
    static const struct name_id obs[] = {
        {"IsOnline", -2},
        {"CommunicationMode", 150},
        {"VoltagePhase1", 501},
        {"VoltagePhase2", 502},
        {"VoltagePhase3", 503},
        {"CurrentPhase1", 507},
        {"CurrentPhase2", 508},
        {"CurrentPhase3", 509},
        {"ChargerMaxCurrent", 510},
        {"ChargerMinCurrent", 511},
        {"TotalChargePower", 513},
        {"PhasesInUse", 519},
        {"MaxPhases", 520},
        {"OfflineChargingPhase", 522},
        {"OfflineChargingCurrent", 523},
        {"SessionEnergy", 553},
        {"AllocatedCurrent", 708},
        {"ChargerOpMode", 710},
        {"FinalStopActive", 718},
        {"SessionId", 721},
        {"CompletedSession", 723},
        {"Warnings", 804},
        {"SignalStrength", 809},
        {"CloudConnectionStatus", 810},
        {"FirmwareVersion", 911},
    };
    static const struct name_id cmds[] = {
        {"RestartCharger", 102}, {"UpgradeFirmware", 200},      {"StopChargingFinal", 506},
        {"ResumeCharging", 507}, {"DeauthorizeAndStop", 10001},
    };
    static const struct name_id modes[] = {
        {"Unknown", 0},
        {"Disconnected", 1},
        {"Connected_Requesting", 2},
        {"Connected_Charging", 3},
        {"Connected_Finished", 5},
    };
    static const struct name_id devices[] = {{"Charger", DEVICE_TYPE}};
    static const struct name_id itypes[] = {{"Default", 0}};
    static const struct name_id nets[] = {
        {"Unknown", 0}, {"IT_1_Phase", 1}, {"IT_3_Phase", 2}, {"TN_1_Phase", 3}, {"TN_3_Phase", 4},
    };
    static const struct name_id roles[] = {
        {"User", 1}, {"Owner", 2}, {"Maintainer", 4}, {"Administrator", 8}};
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddItemToObject(o, "Observations", NAME_IDS(obs));
        cJSON_AddItemToObject(o, "Commands", NAME_IDS(cmds));
        cJSON_AddItemToObject(o, "ChargerOperationModes", NAME_IDS(modes));
        cJSON_AddItemToObject(o, "DeviceTypes", NAME_IDS(devices));
        cJSON_AddItemToObject(o, "InstallationTypes", NAME_IDS(itypes));
        cJSON_AddItemToObject(o, "NetworkTypes", NAME_IDS(nets));
        cJSON_AddItemToObject(o, "UserRoles", NAME_IDS(roles));
    }
    reply(c, 200, o);
}

/* ---- installations (reference) ---- */

struct list_ud {
    struct ctx *c;
    cJSON *arr;
    bool oom;
    bool detail;
};

static int inst_list_cb(void *ud, const struct lade_store_installation *in, uint32_t roles)
{
    struct list_ud *l = ud;
    cJSON *it = inst_json(in, roles, l->detail);
    if (!it || !cJSON_AddItemToArray(l->arr, it)) {
        cJSON_Delete(it);
        l->oom = true;
        return 1;
    }
    return 0;
}

static void inst_list(struct ctx *c, bool detail, bool wrap)
{
    struct list_ud l = {.c = c, .arr = cJSON_CreateArray(), .detail = detail};
    if (!l.arr) {
        server_error(c, LADE_ERR_NOMEM, "installations");
        return;
    }
    lade_err err = lade_store_installation_list(c->st, c->user_id, inst_list_cb, &l);
    if (err != LADE_OK || l.oom) {
        cJSON_Delete(l.arr);
        server_error(c, err ? err : LADE_ERR_NOMEM, "installations");
        return;
    }
    reply(c, 200, wrap ? paged(l.arr, 1) : l.arr);
}

static void h_inst_list(struct ctx *c)
{
    inst_list(c, false, true);
}

static void h_inst_get(struct ctx *c)
{
    int64_t id;
    struct lade_store_installation in;
    uint32_t roles;
    if (!path_id(c, 0, PORTAL_ID_INSTALLATION, "installation", &id) ||
        !need_inst(c, id, ROLES_ANY, &in, &roles))
        return;
    reply(c, 200, inst_json(&in, roles, true));
}

static cJSON *hier_charger(const struct lade_store_charger *ch)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    add_id(o, "Id", PORTAL_ID_CHARGER, ch->id);
    cJSON_AddStringToObject(o, "Name", ch->name);
    cJSON_AddBoolToObject(o, "Active", ch->active);
    cJSON_AddNumberToObject(o, "DeviceType", DEVICE_TYPE);
    cJSON_AddStringToObject(o, "DeviceId", ch->device_id);
    return o;
}

/* A hierarchy circuit entry with the chargers that hang directly on node circuit_id. */
static cJSON *hier_node(const char *id, const char *name, int32_t max_ma, const char *parent,
                        const char *kind, const struct vec *chg, int64_t circuit_id)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_CreateArray();
    if (!o || !arr) {
        cJSON_Delete(o);
        cJSON_Delete(arr);
        return NULL;
    }
    cJSON_AddStringToObject(o, "Id", id);
    cJSON_AddStringToObject(o, "Name", name);
    add_amp(o, "MaxCurrent", max_ma);
    if (parent)
        cJSON_AddStringToObject(o, "ParentId", parent);
    else
        cJSON_AddNullToObject(o, "ParentId");
    cJSON_AddStringToObject(o, "Kind", kind);
    cJSON_AddItemToObject(o, "Chargers", arr);
    const struct lade_store_charger *cs = chg->v;
    for (size_t i = 0; i < chg->n; i++) {
        if (cs[i].circuit_id != circuit_id)
            continue;
        cJSON *it = hier_charger(&cs[i]);
        if (!it || !cJSON_AddItemToArray(arr, it)) {
            cJSON_Delete(it);
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

static void h_inst_hierarchy(struct ctx *c)
{
    int64_t id;
    struct lade_store_installation in;
    if (!path_id(c, 0, PORTAL_ID_INSTALLATION, "installation", &id) ||
        !need_inst(c, id, ROLES_ANY, &in, NULL))
        return;
    struct vec ci = {.size = sizeof(struct lade_store_circuit)};
    struct vec ch = {.size = sizeof(struct lade_store_charger)};
    lade_err err = lade_store_circuit_list(c->st, id, push_circuit, &ci);
    if (err == LADE_OK)
        err = lade_store_charger_list(c->st, id, 0, push_charger, &ch);
    if (err == LADE_OK && (ci.oom || ch.oom))
        err = LADE_ERR_NOMEM;
    cJSON *o = err == LADE_OK ? cJSON_CreateObject() : NULL;
    cJSON *arr = o ? cJSON_AddArrayToObject(o, "Circuits") : NULL;
    bool ok = arr != NULL;
    if (ok) {
        char iid[PORTAL_ID_LEN + 1];
        portal_id_format(PORTAL_ID_INSTALLATION, id, iid);
        cJSON_AddStringToObject(o, "Id", iid);
        cJSON_AddStringToObject(o, "Name", in.name);
        cJSON_AddNumberToObject(o, "NetworkType", in.network_type);
        /* Chargers directly under the installation: a first entry standing for the main
         * fuse, with the installation's id and "Kind":"installation". */
        const struct lade_store_charger *cs = ch.v;
        bool direct = false;
        for (size_t i = 0; i < ch.n; i++)
            direct = direct || cs[i].circuit_id == 0;
        if (direct) {
            cJSON *n = hier_node(iid, in.name, max3(in.fuse_ma), NULL, "installation", &ch, 0);
            ok = n && cJSON_AddItemToArray(arr, n);
            if (!ok)
                cJSON_Delete(n);
        }
        const struct lade_store_circuit *cc = ci.v;
        for (size_t i = 0; ok && i < ci.n; i++) {
            char cid[PORTAL_ID_LEN + 1], pid[PORTAL_ID_LEN + 1];
            portal_id_format(PORTAL_ID_CIRCUIT, cc[i].id, cid);
            if (cc[i].parent_id)
                portal_id_format(PORTAL_ID_CIRCUIT, cc[i].parent_id, pid);
            cJSON *n = hier_node(cid, cc[i].name, max3(cc[i].fuse_ma), cc[i].parent_id ? pid : NULL,
                                 "circuit", &ch, cc[i].id);
            ok = n && cJSON_AddItemToArray(arr, n);
            if (!ok)
                cJSON_Delete(n);
        }
    }
    free(ci.v);
    free(ch.v);
    if (!ok) {
        cJSON_Delete(o);
        server_error(c, err ? err : LADE_ERR_NOMEM, "hierarchy");
        return;
    }
    reply(c, 200, o);
}

/* Applies a store change already made and rebuilds the balancers of installations a and b
 * (0 skipped). On failure the caller restores the store and calls reload_after_revert. */
static lade_err reload(struct ctx *c, int64_t a, int64_t b, char *why, size_t cap)
{
    why[0] = '\0';
    lade_err err = a ? portal_reload(c->p, a, why, cap) : LADE_OK;
    if (err == LADE_OK && b && b != a)
        err = portal_reload(c->p, b, why, cap);
    return err;
}

static void reload_after_revert(struct ctx *c, int64_t a, int64_t b)
{
    char why[256];
    lade_err err = reload(c, a, b, why, sizeof why);
    if (err != LADE_OK)
        LOG_E(MOD, "installations %" PRId64 "/%" PRId64 ": reload after undoing a change: %s %s", a,
              b, lade_strerror(err), why);
}

/* The answer after a refused reload (the store is already restored). */
static void reload_failed(struct ctx *c, lade_err err, const char *field, const char *why)
{
    if (err == LADE_ERR_CONFIG)
        bad(c, field, "%s%s%s", field ? field : "", field ? ": " : "",
            why[0] ? why : "the balancer refused the configuration");
    else
        server_error(c, err, "reload");
}

static void h_inst_update(struct ctx *c)
{
    static const char *const allowed[] = {"availableCurrent", "availableCurrentPhase1",
                                          "availableCurrentPhase2", "availableCurrentPhase3", NULL};
    static const char *const ph[3] = {"availableCurrentPhase1", "availableCurrentPhase2",
                                      "availableCurrentPhase3"};
    int64_t id;
    struct lade_store_installation in;
    if (!path_id(c, 0, PORTAL_ID_INSTALLATION, "installation", &id) ||
        !need_inst(c, id, ROLES_CONFIG, &in, NULL))
        return;
    cJSON *o = body_object(c, allowed);
    if (!o)
        return;
    struct lade_store_installation nin = in;
    bool on[3], present = false;
    for (int i = 0; i < 3; i++)
        on[i] = in.fuse_ma[i] > 0;
    bool ok = get_phases(c, o, "availableCurrent", ph, on, LADE_STORE_FUSE_MAX_MA, &present,
                         nin.available_ma);
    bool all = cJSON_GetObjectItem(o, "availableCurrent") != NULL;
    cJSON_Delete(o);
    if (!ok)
        return;
    if (!present) {
        bad(c, "availableCurrent", "give availableCurrent or availableCurrentPhase1..3");
        return;
    }
    for (int i = 0; i < 3; i++) {
        if (nin.available_ma[i] <= in.fuse_ma[i])
            continue;
        char a[32], f[32];
        fmt_milli(nin.available_ma[i], a);
        fmt_milli(in.fuse_ma[i], f);
        const char *field = all ? "availableCurrent" : ph[i];
        bad(c, field, "%s: %s A is above the main fuse of phase %d (%s A)", field, a, i + 1, f);
        return;
    }
    lade_err err = lade_store_installation_update(c->st, &nin);
    if (err != LADE_OK) {
        store_failed(c, err, "availableCurrent", "installation");
        return;
    }
    char why[256];
    err = reload(c, id, 0, why, sizeof why);
    if (err != LADE_OK) {
        if (lade_store_installation_update(c->st, &in) != LADE_OK)
            LOG_E(MOD, "installation %" PRId64 ": cannot restore it", id);
        reload_after_revert(c, id, 0);
        reload_failed(c, err, all ? "availableCurrent" : "availableCurrentPhase1", why);
        return;
    }
    LOG_I(MOD, "user %" PRId64 ": installation %" PRId64 " available current %d/%d/%d mA",
          c->user_id, id, nin.available_ma[0], nin.available_ma[1], nin.available_ma[2]);
    uint32_t roles = 0;
    (void)!lade_store_access_get(c->st, c->user_id, id, &roles);
    reply(c, 200, inst_json(&nin, roles, true));
}

/* ---- chargers (reference) ---- */

/* The chargers the user may see (installation_id 0: all of them). */
static void charger_array(struct ctx *c, int64_t installation_id, bool detail, bool wrap)
{
    struct vec ch = {.size = sizeof(struct lade_store_charger)};
    lade_err err = lade_store_charger_list(c->st, installation_id, c->user_id, push_charger, &ch);
    if (err == LADE_OK && ch.oom)
        err = LADE_ERR_NOMEM;
    cJSON *arr = err == LADE_OK ? cJSON_CreateArray() : NULL;
    const struct lade_store_charger *cs = ch.v;
    for (size_t i = 0; arr && i < ch.n; i++) {
        cJSON *it = charger_json(c, &cs[i], detail);
        if (!it || !cJSON_AddItemToArray(arr, it)) {
            cJSON_Delete(it);
            cJSON_Delete(arr);
            arr = NULL;
        }
    }
    free(ch.v);
    if (!arr) {
        server_error(c, err ? err : LADE_ERR_NOMEM, "chargers");
        return;
    }
    reply(c, 200, wrap ? paged(arr, 1) : arr);
}

static void h_chargers(struct ctx *c)
{
    charger_array(c, 0, false, true);
}

static void h_charger_get(struct ctx *c)
{
    int64_t id;
    struct lade_store_charger ch;
    if (!path_id(c, 0, PORTAL_ID_CHARGER, "charger", &id) || !need_charger(c, id, ROLES_ANY, &ch))
        return;
    reply(c, 200, charger_json(c, &ch, true));
}

struct state_ud {
    cJSON *arr;
    const char *cid;
    bool oom;
    bool has_online;
    int before_online; /* items with an id below -2 */
};

static cJSON *state_item(const char *cid, int32_t obs_id, int64_t ts_ms, const char *value)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "ChargerId", cid);
    cJSON_AddNumberToObject(o, "StateId", obs_id);
    add_time_ms(o, "Timestamp", ts_ms);
    if (!cJSON_AddStringToObject(o, "ValueAsString", value)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static int state_cb(void *ud, const struct lade_store_obs *ob)
{
    struct state_ud *s = ud;
    if (ob->obs_id == OBS_IS_ONLINE)
        s->has_online = true;
    if (ob->obs_id < OBS_IS_ONLINE)
        s->before_online++;
    cJSON *it = state_item(s->cid, ob->obs_id, ob->ts_ms, ob->value);
    if (!it || !cJSON_AddItemToArray(s->arr, it)) {
        cJSON_Delete(it);
        s->oom = true;
        return 1;
    }
    return 0;
}

static void h_charger_state(struct ctx *c)
{
    int64_t id;
    struct lade_store_charger ch;
    if (!path_id(c, 0, PORTAL_ID_CHARGER, "charger", &id) || !need_charger(c, id, ROLES_ANY, &ch))
        return;
    char cid[PORTAL_ID_LEN + 1];
    portal_id_format(PORTAL_ID_CHARGER, id, cid);
    struct state_ud s = {.arr = cJSON_CreateArray(), .cid = cid};
    lade_err err = s.arr ? lade_store_state_list(c->st, id, state_cb, &s) : LADE_ERR_NOMEM;
    if (err == LADE_OK && !s.has_online && !s.oom) {
        /* -2 IsOnline is the portal's own knowledge, not a charger observation. */
        bool online = portal_charger_online(c->p, id);
        int64_t ts = ch.last_seen_s > 0 ? ch.last_seen_s * 1000 : portal_wall_ms();
        cJSON *it = state_item(cid, OBS_IS_ONLINE, ts, online ? "1" : "0");
        if (!it || !cJSON_InsertItemInArray(s.arr, s.before_online, it)) {
            cJSON_Delete(it);
            s.oom = true;
        }
    }
    if (err != LADE_OK || s.oom) {
        cJSON_Delete(s.arr);
        server_error(c, err ? err : LADE_ERR_NOMEM, "state");
        return;
    }
    reply(c, 200, s.arr);
}

/* -- sendCommand -- */

static void cmd_unlink(struct api_cmd *k)
{
    if (!k->api)
        return;
    if (k->prev)
        k->prev->next = k->next;
    else
        k->api->cmds = k->next;
    if (k->next)
        k->next->prev = k->prev;
    k->next = k->prev = NULL;
}

/* The charger's reply text: its "error", else its "status", else the HTTP-like status. */
static void reply_reason(const cJSON *j, int status, char *out, size_t cap)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "status");
    if (cJSON_IsString(e) && e->valuestring[0])
        snprintf(out, cap, "%.200s", e->valuestring);
    else if (cJSON_IsString(s) && s->valuestring[0])
        snprintf(out, cap, "%.200s", s->valuestring);
    else
        snprintf(out, cap, "status %d", status);
}

/* The answers every direct-method call shares: the charger offline (the hub answers 404),
 * no answer in time, not delivered. True when one of them was sent. */
static bool send_call_failure(struct portal_api *api, struct lade_http_req *req, lade_err err,
                              int status, bool hub_made, const char *what, const char *late)
{
    if (err == LADE_ERR_CLOSED || (err == LADE_OK && hub_made && status == 404)) {
        send_code(api, req, 500, 520, "charger offline");
    } else if (err == LADE_ERR_TIMEOUT || (err == LADE_OK && hub_made && status == 504)) {
        cJSON *o = cJSON_CreateObject();
        if (o) {
            char m[160];
            snprintf(m, sizeof m, "the charger did not answer in time; %s", late);
            cJSON_AddStringToObject(o, "Message", m);
        }
        send_json(api, req, 504, o, NULL);
    } else if (err != LADE_OK) {
        char reason[256];
        snprintf(reason, sizeof reason, "%s not delivered: %s", what, lade_strerror(err));
        send_code(api, req, 500, 500, reason);
    } else {
        return false;
    }
    return true;
}

/* Any other answer: 502 naming who gave it and why. */
static void send_unexpected(struct portal_api *api, struct lade_http_req *req, const cJSON *j,
                            int status, bool hub_made)
{
    char reason[256], d[320];
    reply_reason(j, status, reason, sizeof reason);
    snprintf(d, sizeof d, "unexpected answer from the %s: %s", hub_made ? "hub" : "charger",
             reason);
    send_code(api, req, 502, status, d);
}

static void on_cmd_reply(void *ud, lade_err err, int status, bool hub_made, const char *body,
                         size_t len)
{
    struct api_cmd *k = ud;
    struct portal_api *api = k->api;
    struct lade_http_req *req = k->req;
    cmd_unlink(k);
    if (!req) {
        free(k);
        return;
    }
    cJSON *j = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    char reason[256];
    if (send_call_failure(api, req, err, status, hub_made, "command",
                          "the command may or may not have been applied")) {
        /* answered */
    } else if (status == 200 && !hub_made) {
        cJSON *o = cJSON_CreateObject();
        if (o) {
            cJSON_AddNumberToObject(o, "CommandId", k->command_id);
            if (cJSON_IsObject(j)) {
                cJSON_AddItemToObject(o, "Reply", j);
                j = NULL;
            }
        }
        send_json(api, req, 200, o, NULL);
    } else if ((status == 400 || status == 409) && !hub_made) {
        reply_reason(j, status, reason, sizeof reason);
        cJSON *o = cJSON_CreateObject();
        if (o) {
            char m[300];
            snprintf(m, sizeof m, "refused by the charger: %s", reason);
            cJSON_AddStringToObject(o, "Message", m);
            cJSON_AddNumberToObject(o, "CommandId", k->command_id);
            if (cJSON_IsObject(j)) {
                cJSON_AddItemToObject(o, "Reply", j);
                j = NULL;
            }
        }
        send_json(api, req, (unsigned)status, o, NULL);
    } else {
        send_unexpected(api, req, j, status, hub_made);
    }
    cJSON_Delete(j);
    LOG_I(MOD, "charger %" PRId64 ": command %d -> %s %d", k->charger_id, k->command_id,
          lade_strerror(err), status);
    free(k);
}

static void send_upgrade(struct ctx *c, int64_t id, struct api_cmd *k);
static void cmd_sent(struct ctx *c, int64_t id, int cmd, struct api_cmd *k, lade_err err);

/* A request answered when the charger (or the hub) replies: NULL (500 sent) when out of memory. */
static struct api_cmd *cmd_new(struct ctx *c, int64_t charger_id, int command_id, const char *what)
{
    struct api_cmd *k = calloc(1, sizeof *k);
    if (!k) {
        server_error(c, LADE_ERR_NOMEM, what);
        return NULL;
    }
    k->api = c->api;
    k->req = c->req;
    k->charger_id = charger_id;
    k->command_id = command_id;
    return k;
}

/* Kept until its reply (the callback answers and frees it; a closed request unlinks it). */
static void cmd_keep(struct ctx *c, struct api_cmd *k)
{
    k->next = c->api->cmds;
    if (k->next)
        k->next->prev = k;
    c->api->cmds = k;
}

/* A direct method call that could not be sent: frees k and answers; false if err is LADE_OK. */
static bool call_failed(struct ctx *c, struct api_cmd *k, lade_err err, const char *what)
{
    if (err == LADE_OK)
        return false;
    free(k);
    if (err == LADE_ERR_STATE)
        send_code(c->api, c->req, 500, 520, "charger offline");
    else if (err == LADE_ERR_NOT_FOUND)
        message(c, 404, "no such charger");
    else if (err == LADE_ERR_AGAIN || err == LADE_ERR_FULL)
        message_h(c, 503, "Retry-After: 1", "the hub link is busy; retry");
    else
        server_error(c, err, what);
    return true;
}

static void h_send_command(struct ctx *c)
{
    int64_t id;
    struct lade_store_charger ch;
    if (!path_id(c, 0, PORTAL_ID_CHARGER, "charger", &id))
        return;
    const char *s = c->arg[1];
    size_t n = strlen(s);
    int cmd = 0;
    if (n == 0 || n > 6 || !digits(s, (int)n, &cmd)) {
        bad(c, "commandId", "commandId must be a command number (GET /api/constants)");
        return;
    }
    if (!need_charger(c, id, ROLES_ANY, &ch))
        return;
    if (cmd != CMD_UPGRADE_FW && cmd != 102 && cmd != 506 && cmd != 507 && cmd != 10001) {
        bad(c, "commandId", "commandId %d: unknown command (supported: 102, 200, 506, 507, 10001)",
            cmd);
        return;
    }
    struct api_cmd *k = cmd_new(c, id, cmd, "command");
    if (!k)
        return;
    if (cmd == CMD_UPGRADE_FW) {
        send_upgrade(c, id, k);
        return;
    }
    char json[32];
    snprintf(json, sizeof json, "{\"id\":%d}", cmd);
    lade_err err = portal_call(c->p, id, "command", json, 0, on_cmd_reply, k);
    cmd_sent(c, id, cmd, k, err);
}

static void cmd_sent(struct ctx *c, int64_t id, int cmd, struct api_cmd *k, lade_err err)
{
    if (call_failed(c, k, err, "command"))
        return;
    struct portal_metrics *m = portal_metrics(c->p);
    if (m)
        m->commands_sent++;
    LOG_I(MOD, "user %" PRId64 ": command %d to charger %" PRId64, c->user_id, cmd, id);
    cmd_keep(c, k); /* on_cmd_reply answers */
}

/* -- network diagnostics (SPEC R19) -- */

/* The twin's reported "network" object (docs/charger.md: bearer, hub address, DNS, time, the
 * hub link's last error), as the charger last reported it — still readable while it is
 * offline, which is when it is needed. */
static void on_network_reply(void *ud, lade_err err, int status, bool hub_made, const char *body,
                             size_t len)
{
    (void)hub_made;
    struct api_cmd *k = ud;
    struct portal_api *api = k->api;
    struct lade_http_req *req = k->req;
    cmd_unlink(k);
    if (!req) {
        free(k);
        return;
    }
    if (err != LADE_OK || status != 200) {
        char reason[160];
        snprintf(reason, sizeof reason, "twin not readable: %s, status %d", lade_strerror(err),
                 status);
        send_code(api, req, 502, 502, reason);
        free(k);
        return;
    }
    cJSON *twin = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *rep = cJSON_GetObjectItemCaseSensitive(twin, "reported");
    const cJSON *net = cJSON_GetObjectItemCaseSensitive(rep, "network");
    cJSON *o = cJSON_CreateObject();
    if (o) {
        char cid[PORTAL_ID_LEN + 1];
        portal_id_format(PORTAL_ID_CHARGER, k->charger_id, cid);
        cJSON_AddStringToObject(o, "ChargerId", cid);
        cJSON_AddBoolToObject(o, "IsOnline",
                              api->p ? portal_charger_online(api->p, k->charger_id) : false);
        const cJSON *fw = cJSON_GetObjectItemCaseSensitive(rep, "firmwareVersion");
        if (cJSON_IsString(fw))
            cJSON_AddStringToObject(o, "FirmwareVersion", fw->valuestring);
        if (cJSON_IsObject(net))
            cJSON_AddItemToObject(o, "Network", cJSON_Duplicate(net, true));
        else
            cJSON_AddNullToObject(o, "Network");
        /* The last site check the charger ran on demand (POST .../siteCheck), as reported. */
        const cJSON *sc = cJSON_GetObjectItemCaseSensitive(rep, "siteCheck");
        if (cJSON_IsObject(sc))
            cJSON_AddItemToObject(o, "SiteCheck", cJSON_Duplicate(sc, true));
        else
            cJSON_AddNullToObject(o, "SiteCheck");
    }
    cJSON_Delete(twin);
    send_json(api, req, 200, o, NULL);
    free(k);
}

static void h_charger_network(struct ctx *c)
{
    int64_t id;
    struct lade_store_charger ch;
    if (!path_id(c, 0, PORTAL_ID_CHARGER, "charger", &id) || !need_charger(c, id, ROLES_ANY, &ch))
        return;
    struct api_cmd *k = cmd_new(c, id, 0, "network");
    if (!k)
        return;
    lade_err err = portal_twin_get(c->p, id, on_network_reply, k);
    if (err == LADE_ERR_STATE) { /* a twin read needs no charger: only the hub link */
        free(k);
        message_h(c, 503, "Retry-After: 5", "the portal has no link to the hub now");
        return;
    }
    if (!call_failed(c, k, err, "network"))
        cmd_keep(c, k);
}

/* -- site check on demand (SPEC R18): the charger's direct method siteCheck -- */

static void on_site_check_reply(void *ud, lade_err err, int status, bool hub_made, const char *body,
                                size_t len)
{
    struct api_cmd *k = ud;
    struct portal_api *api = k->api;
    struct lade_http_req *req = k->req;
    cmd_unlink(k);
    if (!req) {
        free(k);
        return;
    }
    cJSON *j = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    if (send_call_failure(api, req, err, status, hub_made, "site check",
                          "the site check may or may not have started")) {
        /* answered */
    } else if (status == 202 && !hub_made) {
        cJSON *o = cJSON_CreateObject();
        if (o)
            cJSON_AddBoolToObject(o, "Started", true);
        send_json(api, req, 202, o, NULL);
    } else if ((status == 409 || status == 429) && !hub_made) {
        /* Passed on: one check runs at a time, and at most one a minute (the charger's rule). */
        char hdr[48] = "";
        const cJSON *ra = cJSON_GetObjectItemCaseSensitive(j, "retryAfterS");
        if (status == 429 && cJSON_IsNumber(ra) && ra->valuedouble >= 0 && ra->valuedouble <= 3600)
            snprintf(hdr, sizeof hdr, "Retry-After: %d", (int)ra->valuedouble);
        cJSON *o = cJSON_CreateObject();
        if (o) {
            cJSON_AddStringToObject(o, "Message",
                                    status == 409
                                        ? "a site check is running on the charger"
                                        : "the charger ran a site check less than a minute ago");
            if (cJSON_IsObject(j)) {
                cJSON_AddItemToObject(o, "Reply", j);
                j = NULL;
            }
        }
        send_json(api, req, (unsigned)status, o, hdr[0] ? hdr : NULL);
    } else {
        send_unexpected(api, req, j, status, hub_made);
    }
    cJSON_Delete(j);
    LOG_I(MOD, "charger %" PRId64 ": siteCheck -> %s %d", k->charger_id, lade_strerror(err),
          status);
    free(k);
}

static void h_site_check(struct ctx *c)
{
    int64_t id;
    struct lade_store_charger ch;
    if (!path_id(c, 0, PORTAL_ID_CHARGER, "charger", &id) || !need_charger(c, id, ROLES_ANY, &ch))
        return;
    struct api_cmd *k = cmd_new(c, id, 0, "site check");
    if (!k)
        return;
    lade_err err = portal_call(c->p, id, "siteCheck", "{}", 0, on_site_check_reply, k);
    if (call_failed(c, k, err, "site check"))
        return;
    LOG_I(MOD, "user %" PRId64 ": site check on charger %" PRId64, c->user_id, id);
    cmd_keep(c, k);
}

/* -- settings -- */

static void on_twin_reply(void *ud, lade_err err, int status, bool hub_made, const char *body,
                          size_t len)
{
    (void)body;
    (void)len;
    int64_t id = (int64_t)(intptr_t)ud;
    if (err == LADE_OK && status >= 200 && status < 300)
        LOG_D(MOD, "charger %" PRId64 ": settings patch accepted (%d)", id, status);
    else
        LOG_W(MOD, "charger %" PRId64 ": settings patch: %s, %s status %d", id, lade_strerror(err),
              hub_made ? "hub" : "charger", status);
}

/* Pushes settings to the charger's twin (desired properties, charging.md "Settings"). The hub
 * keeps desired properties, so an offline charger gets them when it connects; without a hub
 * link (LADE_ERR_STATE) nothing is sent. */
static bool push_settings(struct ctx *c, int64_t id, cJSON *patch, char *note, size_t cap)
{
    char *text = cJSON_PrintUnformatted(patch);
    lade_err err = text ? portal_twin_patch(c->p, id, text, on_twin_reply, (void *)(intptr_t)id)
                        : LADE_ERR_NOMEM;
    free(text);
    if (err == LADE_OK) {
        snprintf(note, cap,
                 "saved; sent to the charger (an offline charger gets it when it "
                 "connects)");
        return true;
    }
    if (err == LADE_ERR_STATE)
        snprintf(note, cap,
                 "saved in the portal; not sent to the charger: the portal has no "
                 "link to the hub now");
    else
        snprintf(note, cap, "saved in the portal; not sent to the charger: %s", lade_strerror(err));
    if (err == LADE_ERR_STATE)
        LOG_I(MOD, "charger %" PRId64 ": settings not pushed: no hub link", id);
    else
        LOG_W(MOD, "charger %" PRId64 ": settings not pushed: %s", id, lade_strerror(err));
    return false;
}

/* The five store settings under the twin's names. */
static cJSON *settings_patch(const struct lade_store_charger *ch)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "maxChargeCurrent", ch->max_current_ma / 1000);
    cJSON_AddNumberToObject(o, "minChargeCurrent", ch->min_current_ma / 1000);
    cJSON_AddNumberToObject(o, "maxChargePhases", ch->max_phases);
    cJSON_AddNumberToObject(o, "offlineChargeCurrent", ch->offline_current_ma / 1000);
    cJSON_AddNumberToObject(o, "offlineChargePhase", ch->offline_phases);
    return o;
}

static bool settings_differ(const struct lade_store_charger *a, const struct lade_store_charger *b)
{
    return a->max_current_ma != b->max_current_ma || a->min_current_ma != b->min_current_ma ||
           a->max_phases != b->max_phases || a->offline_current_ma != b->offline_current_ma ||
           a->offline_phases != b->offline_phases;
}

/* Cross-field rules of a charger's currents (names: the fields as the request calls them). */
static bool charger_currents_ok(struct ctx *c, const struct lade_store_charger *n,
                                const char *max_f, const char *min_f, const char *off_f,
                                bool max_given, bool min_given, bool off_given)
{
    char mx[32], v[32];
    fmt_milli(n->max_current_ma, mx);
    if (n->min_current_ma > n->max_current_ma) {
        fmt_milli(n->min_current_ma, v);
        const char *f = min_given ? min_f : max_f;
        return bad(c, f, "%s: the minimum (%s A) would be above the maximum (%s A)", f, v, mx);
    }
    if (n->offline_current_ma > n->max_current_ma) {
        fmt_milli(n->offline_current_ma, v);
        const char *f = off_given || !max_given ? off_f : max_f;
        return bad(c, f, "%s: the offline current (%s A) would be above the maximum (%s A)", f, v,
                   mx);
    }
    return true;
}

/* Writes n over old (same id), reloads both installations; undoes it on failure. Answers the
 * error and returns false; returns true with nothing sent on success. */
static bool charger_apply(struct ctx *c, const struct lade_store_charger *old,
                          const struct lade_store_charger *n, const char *field)
{
    lade_err err = lade_store_charger_update(c->st, n);
    if (err != LADE_OK) {
        store_failed(c, err, err == LADE_ERR_EXISTS ? "DeviceId" : field, "charger");
        return false;
    }
    char why[256];
    err = reload(c, old->installation_id, n->installation_id, why, sizeof why);
    if (err != LADE_OK) {
        if (lade_store_charger_update(c->st, old) != LADE_OK)
            LOG_E(MOD, "charger %" PRId64 ": cannot restore it", old->id);
        reload_after_revert(c, old->installation_id, n->installation_id);
        reload_failed(c, err, field, why);
        return false;
    }
    return true;
}

static void h_charger_update(struct ctx *c)
{
    static const char *const allowed[] = {"maxChargeCurrent",
                                          "minChargeCurrent",
                                          "maxChargePhases",
                                          "offlineChargeCurrent",
                                          "offlineChargePhase",
                                          "meterValueInterval",
                                          NULL};
    int64_t id;
    struct lade_store_charger ch;
    if (!path_id(c, 0, PORTAL_ID_CHARGER, "charger", &id) ||
        !need_charger(c, id, ROLES_CONFIG, &ch))
        return;
    cJSON *o = body_object(c, allowed);
    if (!o)
        return;
    struct lade_store_charger n = ch;
    bool p_max, p_min, p_off, p_ph, p_oph, p_iv;
    int64_t ph = 0, oph = 0, iv = 0;
    bool ok = get_amp(c, o, "maxChargeCurrent", CHARGER_MIN_A * 1000, LADE_STORE_CHARGER_MAX_MA,
                      true, &p_max, &n.max_current_ma) &&
              get_amp(c, o, "minChargeCurrent", CHARGER_MIN_A * 1000, LADE_STORE_CHARGER_MAX_MA,
                      true, &p_min, &n.min_current_ma) &&
              get_amp(c, o, "offlineChargeCurrent", 0, LADE_STORE_CHARGER_MAX_MA, true, &p_off,
                      &n.offline_current_ma) &&
              get_int(c, o, "maxChargePhases", 1, 3, &p_ph, &ph) &&
              get_int(c, o, "offlineChargePhase", 1, 3, &p_oph, &oph) &&
              get_int(c, o, "meterValueInterval", 1, METER_IVAL_MAX, &p_iv, &iv);
    if (ok && p_ph && ph == 2)
        ok = bad(c, "maxChargePhases", "maxChargePhases must be 1 or 3");
    if (ok && p_oph && oph == 2)
        ok = bad(c, "offlineChargePhase", "offlineChargePhase must be 1 or 3");
    if (ok && !(p_max || p_min || p_off || p_ph || p_oph || p_iv))
        ok = bad(c, NULL, "give at least one setting");
    if (ok) {
        if (p_ph)
            n.max_phases = (uint8_t)ph;
        if (p_oph)
            n.offline_phases = (uint8_t)oph;
        ok = charger_currents_ok(c, &n, "maxChargeCurrent", "minChargeCurrent",
                                 "offlineChargeCurrent", p_max, p_min, p_off);
    }
    if (!ok) {
        cJSON_Delete(o);
        return;
    }
    /* A refusal by the balancer names the field that matters most for the fallback. */
    const char *field = p_off   ? "offlineChargeCurrent"
                        : p_oph ? "offlineChargePhase"
                        : p_max ? "maxChargeCurrent"
                        : p_ph  ? "maxChargePhases"
                                : "minChargeCurrent";
    if (settings_differ(&ch, &n) && !charger_apply(c, &ch, &n, field)) {
        cJSON_Delete(o);
        return;
    }
    /* The twin gets exactly the names given (whole amperes, as the charger takes them). */
    cJSON *patch = cJSON_CreateObject();
    if (patch) {
        if (p_max)
            cJSON_AddNumberToObject(patch, "maxChargeCurrent", n.max_current_ma / 1000);
        if (p_min)
            cJSON_AddNumberToObject(patch, "minChargeCurrent", n.min_current_ma / 1000);
        if (p_ph)
            cJSON_AddNumberToObject(patch, "maxChargePhases", n.max_phases);
        if (p_off)
            cJSON_AddNumberToObject(patch, "offlineChargeCurrent", n.offline_current_ma / 1000);
        if (p_oph)
            cJSON_AddNumberToObject(patch, "offlineChargePhase", n.offline_phases);
        if (p_iv)
            cJSON_AddNumberToObject(patch, "meterValueInterval", (double)iv);
    }
    cJSON_Delete(o);
    char note[160];
    bool pushed = patch && push_settings(c, id, patch, note, sizeof note);
    if (!patch)
        snprintf(note, sizeof note, "saved in the portal; not sent to the charger: out of memory");
    cJSON_Delete(patch);
    LOG_I(MOD, "user %" PRId64 ": charger %" PRId64 " settings changed%s", c->user_id, id,
          pushed ? "" : " (not pushed)");
    cJSON *r = cJSON_CreateObject();
    if (r) {
        cJSON_AddStringToObject(r, "Message", note);
        cJSON_AddBoolToObject(r, "Pushed", pushed);
    }
    reply(c, 200, r);
}

/* ---- firmware, history, live ---- */

static void h_firmware(struct ctx *c)
{
    int64_t id;
    if (!path_id(c, 0, PORTAL_ID_INSTALLATION, "installation", &id) ||
        !need_inst(c, id, ROLES_ANY, NULL, NULL))
        return;
    struct vec ch = {.size = sizeof(struct lade_store_charger)};
    lade_err err = lade_store_charger_list(c->st, id, 0, push_charger, &ch);
    if (err == LADE_OK && ch.oom)
        err = LADE_ERR_NOMEM;
    cJSON *arr = err == LADE_OK ? cJSON_CreateArray() : NULL;
    const struct lade_store_charger *cs = ch.v;
    for (size_t i = 0; arr && i < ch.n; i++) {
        char v[LADE_STORE_VALUE_MAX + 1];
        state_value(c, cs[i].id, OBS_FIRMWARE, v, sizeof v);
        cJSON *it = cJSON_CreateObject();
        if (it) {
            add_id(it, "ChargerId", PORTAL_ID_CHARGER, cs[i].id);
            cJSON_AddNumberToObject(it, "DeviceType", DEVICE_TYPE);
            cJSON_AddBoolToObject(it, "IsOnline", portal_charger_online(c->p, cs[i].id));
            /* Available: the newest published release for the hardware the charger reported
             * (docs/portal-api.md "Firmware"); without one, what it runs. */
            struct portal_fw *fw = portal_firmware(c->p);
            const struct portal_fw_report *r = fw ? portal_fw_report_get(fw, cs[i].id) : NULL;
            /* The twin's report is the freshest (it is re-sent at every update step); 911
             * may come a telemetry interval later. */
            if (r && r->known && r->version[0])
                snprintf(v, sizeof v, "%s", r->version);
            const struct portal_fw_image *m =
                r && r->hardware[0] ? portal_fw_newest(fw, r->hardware) : NULL;
            const char *avail = m ? m->version : v;
            cJSON_AddStringToObject(it, "CurrentVersion", v);
            cJSON_AddStringToObject(it, "AvailableVersion", avail);
            cJSON_AddBoolToObject(it, "IsUpToDate", strcmp(v, avail) == 0);
        }
        if (!it || !cJSON_GetObjectItem(it, "IsUpToDate") || !cJSON_AddItemToArray(arr, it)) {
            cJSON_Delete(it);
            cJSON_Delete(arr);
            arr = NULL;
        }
    }
    free(ch.v);
    if (!arr) {
        server_error(c, err ? err : LADE_ERR_NOMEM, "firmware");
        return;
    }
    reply(c, 200, arr);
}

static int session_cb(void *ud, const struct lade_store_session *s)
{
    struct list_ud *l = ud;
    cJSON *o = cJSON_CreateObject();
    if (o) {
        add_id(o, "Id", PORTAL_ID_SESSION, s->id);
        cJSON_AddStringToObject(o, "DeviceId", s->device_id);
        add_id(o, "ChargerId", PORTAL_ID_CHARGER, s->charger_id);
        add_id(o, "InstallationId", PORTAL_ID_INSTALLATION, s->installation_id);
        add_time_ms(o, "StartDateTime", s->start_s * 1000);
        add_time_ms(o, "EndDateTime", s->end_s * 1000);
        uint64_t wh = s->energy_wh > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : s->energy_wh;
        add_amp(o, "Energy", (int64_t)wh); /* Wh as kWh with decimals */
        cJSON_AddStringToObject(o, "SessionId", s->session_id);
        cJSON_AddBoolToObject(o, "ReliableClock", s->reliable_clock);
        cJSON_AddBoolToObject(o, "EndEstimated", s->end_estimated);
        cJSON_AddStringToObject(o, "EndReason", s->end_reason);
    }
    if (!o || !cJSON_GetObjectItem(o, "EndReason") || !cJSON_AddItemToArray(l->arr, o)) {
        cJSON_Delete(o);
        l->oom = true;
        return 1;
    }
    return 0;
}

/* A positive integer query argument; absent: def. */
static bool query_uint(struct ctx *c, const char *name, uint32_t lo, uint32_t hi, uint32_t def,
                       uint32_t *out)
{
    const char *v = lade_http_query(c->req, name);
    *out = def;
    if (!v)
        return true;
    size_t n = strlen(v);
    int x = 0;
    if (n == 0 || n > 7 || !digits(v, (int)n, &x) || (uint32_t)x < lo || (uint32_t)x > hi)
        return bad(c, name, "%s must be a whole number %" PRIu32 "..%" PRIu32, name, lo, hi);
    *out = (uint32_t)x;
    return true;
}

static void h_history(struct ctx *c)
{
    struct lade_store_session_query q = {.user_id = c->user_id};
    const char *inst = lade_http_query(c->req, "InstallationId");
    const char *chg = lade_http_query(c->req, "ChargerId");
    const char *from = lade_http_query(c->req, "From");
    const char *to = lade_http_query(c->req, "To");
    uint32_t page, size;
    if (inst && *inst && portal_id_parse(PORTAL_ID_INSTALLATION, inst, &q.installation_id)) {
        bad(c, "InstallationId", "InstallationId is not an installation id");
        return;
    }
    if (chg && *chg && portal_id_parse(PORTAL_ID_CHARGER, chg, &q.charger_id)) {
        bad(c, "ChargerId", "ChargerId is not a charger id");
        return;
    }
    if (from && *from && !parse_time(from, &q.from_s)) {
        bad(c, "From", "From must be a UTC time like 2026-01-05T08:28:17");
        return;
    }
    if (to && *to && !parse_time(to, &q.to_s)) {
        bad(c, "To", "To must be a UTC time like 2026-01-05T08:28:17");
        return;
    }
    if (q.to_s && q.to_s <= q.from_s) {
        bad(c, "To", "To must be after From");
        return;
    }
    if (!query_uint(c, "Page", 1, 1000000, 1, &page) ||
        !query_uint(c, "PageSize", 1, LADE_STORE_PAGE_SIZE_MAX, HIST_PAGE_SIZE, &size))
        return;
    if (q.installation_id && !need_inst(c, q.installation_id, ROLES_ANY, NULL, NULL))
        return;
    struct lade_store_charger ch;
    if (q.charger_id && !need_charger(c, q.charger_id, ROLES_ANY, &ch))
        return;
    q.page = page - 1;
    q.page_size = size;
    struct list_ud l = {.c = c, .arr = cJSON_CreateArray()};
    uint64_t total = 0;
    lade_err err =
        l.arr ? lade_store_session_list(c->st, &q, session_cb, &l, &total) : LADE_ERR_NOMEM;
    if (err != LADE_OK || l.oom) {
        cJSON_Delete(l.arr);
        server_error(c, err ? err : LADE_ERR_NOMEM, "charge history");
        return;
    }
    reply(c, 200, paged(l.arr, (total + size - 1) / size));
}

static void h_live(struct ctx *c)
{
    int64_t id;
    if (!path_id(c, 0, PORTAL_ID_INSTALLATION, "installation", &id) ||
        !need_inst(c, id, ROLES_ANY, NULL, NULL))
        return;
    cJSON *o = portal_live_json(c->p, id);
    if (!o) {
        server_error(c, LADE_ERR_NOMEM, "live view");
        return;
    }
    reply(c, 200, o);
}

/* ---- lade admin: installations ---- */

static const char *const inst_fields[] = {
    "Name",
    "NetworkType",
    "MaxCurrent",
    "FuseCurrentPhase1",
    "FuseCurrentPhase2",
    "FuseCurrentPhase3",
    "AvailableCurrent",
    "AvailableCurrentPhase1",
    "AvailableCurrentPhase2",
    "AvailableCurrentPhase3",
    NULL,
};

/* Reads an installation body over *in (create: required fields checked by the caller). */
static bool inst_body(struct ctx *c, const cJSON *o, struct lade_store_installation *in,
                      bool create)
{
    bool p_name, p_net, p_fuse, p_avail;
    int64_t net = in->network_type;
    if (!get_str(c, o, "Name", LADE_STORE_NAME_MAX, &p_name, in->name, sizeof in->name) ||
        !get_int(c, o, "NetworkType", 1, 4, &p_net, &net))
        return false;
    if (create && !p_name)
        return bad(c, "Name", "Name is required");
    if (create && !p_net)
        return bad(c, "NetworkType", "NetworkType is required (1..4, GET /api/constants)");
    in->network_type = (enum lade_network_type)net;
    bool three = three_phase(in->network_type);
    bool on_fuse[3] = {true, three, three};
    int32_t old_fuse[3];
    memcpy(old_fuse, in->fuse_ma, sizeof old_fuse);
    if (!get_phases(c, o, "MaxCurrent", fuse_ph, on_fuse, LADE_STORE_FUSE_MAX_MA, &p_fuse,
                    in->fuse_ma))
        return false;
    if (create && !p_fuse)
        return bad(c, "MaxCurrent", "MaxCurrent or FuseCurrentPhase1..3 is required");
    if (in->fuse_ma[0] <= 0) {
        const char *f = cJSON_GetObjectItem(o, "MaxCurrent") ? "MaxCurrent" : fuse_ph[0];
        return bad(c, f, "%s: the fuse of phase 1 must be above 0 A", f);
    }
    bool on_av[3];
    for (int i = 0; i < 3; i++)
        on_av[i] = in->fuse_ma[i] > 0;
    if (create) /* default: the fuse */
        memcpy(in->available_ma, in->fuse_ma, sizeof in->available_ma);
    if (!get_phases(c, o, "AvailableCurrent", avail_ph, on_av, LADE_STORE_FUSE_MAX_MA, &p_avail,
                    in->available_ma))
        return false;
    bool all = cJSON_GetObjectItem(o, "AvailableCurrent") != NULL;
    for (int i = 0; i < 3; i++) {
        if (in->available_ma[i] <= in->fuse_ma[i])
            continue;
        char a[32], f[32];
        fmt_milli(in->available_ma[i], a);
        fmt_milli(in->fuse_ma[i], f);
        const char *field =
            p_avail ? (all ? "AvailableCurrent" : avail_ph[i])
                    : (cJSON_GetObjectItem(o, "MaxCurrent") ? "MaxCurrent" : fuse_ph[i]);
        return bad(c, field,
                   "%s: the available current %s A would be above the fuse of phase %d "
                   "(%s A)%s",
                   field, a, i + 1, f, p_avail ? "" : "; give AvailableCurrent too");
    }
    return true;
}

static void h_admin_inst_list(struct ctx *c)
{
    inst_list(c, true, false);
}

static void h_admin_inst_create(struct ctx *c)
{
    cJSON *o = body_object(c, inst_fields);
    if (!o)
        return;
    struct lade_store_installation in;
    memset(&in, 0, sizeof in);
    bool ok = inst_body(c, o, &in, true);
    cJSON_Delete(o);
    if (!ok)
        return;
    in.created_s = lade_wall_s();
    int64_t id = 0;
    lade_err err = lade_store_installation_add(c->st, &in, &id);
    if (err != LADE_OK) {
        store_failed(c, err, "Name", "installation");
        return;
    }
    in.id = id;
    char why[256];
    err = reload(c, id, 0, why, sizeof why);
    if (err != LADE_OK) {
        if (lade_store_installation_remove(c->st, id) != LADE_OK)
            LOG_E(MOD, "installation %" PRId64 ": cannot undo its creation", id);
        reload_after_revert(c, id, 0);
        reload_failed(c, err, NULL, why);
        return;
    }
    LOG_I(MOD, "user %" PRId64 ": installation %" PRId64 " created", c->user_id, id);
    uint32_t roles = 0;
    (void)!lade_store_access_get(c->st, c->user_id, id, &roles);
    reply(c, 201, inst_json(&in, roles, true));
}

static void h_admin_inst_get(struct ctx *c)
{
    h_inst_get(c);
}

static void h_admin_inst_update(struct ctx *c)
{
    int64_t id;
    struct lade_store_installation in;
    if (!path_id(c, 0, PORTAL_ID_INSTALLATION, "installation", &id) ||
        !need_inst(c, id, ROLES_ANY, &in, NULL))
        return;
    cJSON *o = body_object(c, inst_fields);
    if (!o)
        return;
    struct lade_store_installation n = in;
    bool ok = inst_body(c, o, &n, false);
    cJSON_Delete(o);
    if (!ok)
        return;
    lade_err err = lade_store_installation_update(c->st, &n);
    if (err != LADE_OK) {
        store_failed(c, err, NULL, "installation");
        return;
    }
    char why[256];
    err = reload(c, id, 0, why, sizeof why);
    if (err != LADE_OK) {
        if (lade_store_installation_update(c->st, &in) != LADE_OK)
            LOG_E(MOD, "installation %" PRId64 ": cannot restore it", id);
        reload_after_revert(c, id, 0);
        reload_failed(c, err, NULL, why);
        return;
    }
    LOG_I(MOD, "user %" PRId64 ": installation %" PRId64 " updated", c->user_id, id);
    uint32_t roles = 0;
    (void)!lade_store_access_get(c->st, c->user_id, id, &roles);
    reply(c, 200, inst_json(&n, roles, true));
}

static void h_admin_inst_delete(struct ctx *c)
{
    int64_t id;
    if (!path_id(c, 0, PORTAL_ID_INSTALLATION, "installation", &id) ||
        !need_inst(c, id, ROLES_ANY, NULL, NULL))
        return;
    lade_err err = lade_store_installation_remove(c->st, id);
    if (err != LADE_OK) {
        store_failed(c, err, NULL, "installation");
        return;
    }
    char why[256];
    if ((err = reload(c, id, 0, why, sizeof why)) != LADE_OK)
        LOG_W(MOD, "installation %" PRId64 " removed; reload: %s %s", id, lade_strerror(err), why);
    LOG_I(MOD, "user %" PRId64 ": installation %" PRId64 " removed", c->user_id, id);
    message(c, 200, "installation removed; its chargers are unassigned");
}

/* ---- lade admin: circuits ---- */

static const char *const circuit_fields[] = {
    "InstallationId",     "ParentId",           "Name",
    "MaxCurrent",         "FuseCurrentPhase1",  "FuseCurrentPhase2",
    "FuseCurrentPhase3",  "LimitCurrent",       "LimitCurrentPhase1",
    "LimitCurrentPhase2", "LimitCurrentPhase3", NULL,
};

static bool circuit_body(struct ctx *c, const cJSON *o, struct lade_store_circuit *ci, bool create)
{
    bool p_inst, p_parent, p_name, p_fuse, p_limit;
    int64_t inst = ci->installation_id, parent = ci->parent_id;
    if (!get_ref(c, o, "InstallationId", PORTAL_ID_INSTALLATION, false, &p_inst, &inst) ||
        !get_ref(c, o, "ParentId", PORTAL_ID_CIRCUIT, true, &p_parent, &parent) ||
        !get_str(c, o, "Name", LADE_STORE_NAME_MAX, &p_name, ci->name, sizeof ci->name))
        return false;
    if (create && !p_inst)
        return bad(c, "InstallationId", "InstallationId is required");
    if (create && !p_name)
        return bad(c, "Name", "Name is required");
    if (!create && p_inst && inst != ci->installation_id)
        return bad(c, "InstallationId", "a circuit cannot move to another installation");
    struct lade_store_installation in;
    lade_err err = lade_store_installation_get(c->st, inst, &in);
    if (err == LADE_ERR_NOT_FOUND)
        return bad(c, "InstallationId", "InstallationId: no such installation");
    if (err != LADE_OK) {
        server_error(c, err, "circuit");
        return false;
    }
    ci->installation_id = inst;
    if (parent) {
        struct lade_store_circuit pc;
        err = lade_store_circuit_get(c->st, parent, &pc);
        if (err == LADE_ERR_NOT_FOUND)
            return bad(c, "ParentId", "ParentId: no such circuit");
        if (err != LADE_OK) {
            server_error(c, err, "circuit");
            return false;
        }
        if (pc.installation_id != inst)
            return bad(c, "ParentId", "ParentId: that circuit belongs to another installation");
        if (!create && parent == ci->id)
            return bad(c, "ParentId", "ParentId: a circuit cannot be its own parent");
    }
    ci->parent_id = parent;
    bool three = three_phase(in.network_type);
    bool on_fuse[3] = {true, three, three};
    if (!get_phases(c, o, "MaxCurrent", fuse_ph, on_fuse, LADE_STORE_FUSE_MAX_MA, &p_fuse,
                    ci->fuse_ma))
        return false;
    if (create && !p_fuse)
        return bad(c, "MaxCurrent", "MaxCurrent or FuseCurrentPhase1..3 is required");
    bool on_lim[3];
    for (int i = 0; i < 3; i++)
        on_lim[i] = ci->fuse_ma[i] > 0;
    if (create)
        memcpy(ci->limit_ma, ci->fuse_ma, sizeof ci->limit_ma);
    if (!get_phases(c, o, "LimitCurrent", limit_ph, on_lim, LADE_STORE_FUSE_MAX_MA, &p_limit,
                    ci->limit_ma))
        return false;
    bool all = cJSON_GetObjectItem(o, "LimitCurrent") != NULL;
    for (int i = 0; i < 3; i++) {
        if (ci->limit_ma[i] <= ci->fuse_ma[i])
            continue;
        char a[32], f[32];
        fmt_milli(ci->limit_ma[i], a);
        fmt_milli(ci->fuse_ma[i], f);
        const char *field =
            p_limit ? (all ? "LimitCurrent" : limit_ph[i])
                    : (cJSON_GetObjectItem(o, "MaxCurrent") ? "MaxCurrent" : fuse_ph[i]);
        return bad(c, field, "%s: the limit %s A would be above the fuse of phase %d (%s A)%s",
                   field, a, i + 1, f, p_limit ? "" : "; give LimitCurrent too");
    }
    return true;
}

static void h_admin_circuit_list(struct ctx *c)
{
    const char *inst = lade_http_query(c->req, "InstallationId");
    int64_t id = 0;
    if (!inst || portal_id_parse(PORTAL_ID_INSTALLATION, inst, &id)) {
        bad(c, "InstallationId", "give ?InstallationId=<installation id>");
        return;
    }
    if (!need_inst(c, id, ROLES_ANY, NULL, NULL))
        return;
    struct vec ci = {.size = sizeof(struct lade_store_circuit)};
    lade_err err = lade_store_circuit_list(c->st, id, push_circuit, &ci);
    if (err == LADE_OK && ci.oom)
        err = LADE_ERR_NOMEM;
    cJSON *arr = err == LADE_OK ? cJSON_CreateArray() : NULL;
    const struct lade_store_circuit *cc = ci.v;
    for (size_t i = 0; arr && i < ci.n; i++) {
        cJSON *it = circuit_json(&cc[i]);
        if (!it || !cJSON_AddItemToArray(arr, it)) {
            cJSON_Delete(it);
            cJSON_Delete(arr);
            arr = NULL;
        }
    }
    free(ci.v);
    if (!arr) {
        server_error(c, err ? err : LADE_ERR_NOMEM, "circuits");
        return;
    }
    reply(c, 200, arr);
}

static bool load_circuit(struct ctx *c, struct lade_store_circuit *ci)
{
    int64_t id;
    if (!path_id(c, 0, PORTAL_ID_CIRCUIT, "circuit", &id))
        return false;
    lade_err err = lade_store_circuit_get(c->st, id, ci);
    if (err == LADE_ERR_NOT_FOUND) {
        message(c, 404, "no such circuit");
        return false;
    }
    if (err != LADE_OK) {
        server_error(c, err, "circuit");
        return false;
    }
    return true;
}

static void h_admin_circuit_get(struct ctx *c)
{
    struct lade_store_circuit ci;
    if (load_circuit(c, &ci))
        reply(c, 200, circuit_json(&ci));
}

static void h_admin_circuit_create(struct ctx *c)
{
    cJSON *o = body_object(c, circuit_fields);
    if (!o)
        return;
    struct lade_store_circuit ci;
    memset(&ci, 0, sizeof ci);
    bool ok = circuit_body(c, o, &ci, true);
    cJSON_Delete(o);
    if (!ok)
        return;
    ci.created_s = lade_wall_s();
    int64_t id = 0;
    lade_err err = lade_store_circuit_add(c->st, &ci, &id);
    if (err != LADE_OK) {
        store_failed(c, err, "ParentId", "circuit");
        return;
    }
    ci.id = id;
    char why[256];
    err = reload(c, ci.installation_id, 0, why, sizeof why);
    if (err != LADE_OK) {
        if (lade_store_circuit_remove(c->st, id) != LADE_OK)
            LOG_E(MOD, "circuit %" PRId64 ": cannot undo its creation", id);
        reload_after_revert(c, ci.installation_id, 0);
        reload_failed(c, err, NULL, why);
        return;
    }
    LOG_I(MOD, "user %" PRId64 ": circuit %" PRId64 " created", c->user_id, id);
    reply(c, 201, circuit_json(&ci));
}

static void h_admin_circuit_update(struct ctx *c)
{
    struct lade_store_circuit old;
    if (!load_circuit(c, &old))
        return;
    cJSON *o = body_object(c, circuit_fields);
    if (!o)
        return;
    struct lade_store_circuit n = old;
    bool ok = circuit_body(c, o, &n, false);
    cJSON_Delete(o);
    if (!ok)
        return;
    lade_err err = lade_store_circuit_update(c->st, &n);
    if (err != LADE_OK) {
        store_failed(c, err, "ParentId", "circuit");
        return;
    }
    char why[256];
    err = reload(c, n.installation_id, 0, why, sizeof why);
    if (err != LADE_OK) {
        if (lade_store_circuit_update(c->st, &old) != LADE_OK)
            LOG_E(MOD, "circuit %" PRId64 ": cannot restore it", old.id);
        reload_after_revert(c, n.installation_id, 0);
        reload_failed(c, err, NULL, why);
        return;
    }
    LOG_I(MOD, "user %" PRId64 ": circuit %" PRId64 " updated", c->user_id, n.id);
    reply(c, 200, circuit_json(&n));
}

static int charger_on_circuit_cb(void *ud, const struct lade_store_charger *ch)
{
    int64_t *k = ud;
    if (ch->circuit_id == k[0]) {
        k[1]++;
        return 1;
    }
    return 0;
}

static void h_admin_circuit_delete(struct ctx *c)
{
    struct lade_store_circuit ci;
    if (!load_circuit(c, &ci))
        return;
    /* A circuit with chargers is not removed: its chargers would move to the main fuse, which
     * could make the fallback currents there exceed it, and a removed circuit cannot be
     * restored with its id. Move or unassign the chargers first. */
    int64_t k[2] = {ci.id, 0};
    lade_err err = lade_store_charger_list(c->st, ci.installation_id, 0, charger_on_circuit_cb, k);
    if (err != LADE_OK) {
        server_error(c, err, "circuit");
        return;
    }
    if (k[1]) {
        conflict(c, NULL, "the circuit still has chargers; move or unassign them first");
        return;
    }
    err = lade_store_circuit_remove(c->st, ci.id);
    if (err == LADE_ERR_STATE) {
        conflict(c, NULL, "the circuit still has sub-circuits; remove them first");
        return;
    }
    if (err != LADE_OK) {
        store_failed(c, err, NULL, "circuit");
        return;
    }
    char why[256];
    if ((err = reload(c, ci.installation_id, 0, why, sizeof why)) != LADE_OK)
        LOG_E(MOD, "circuit %" PRId64 " removed; reload: %s %s", ci.id, lade_strerror(err), why);
    LOG_I(MOD, "user %" PRId64 ": circuit %" PRId64 " removed", c->user_id, ci.id);
    message(c, 200, "circuit removed");
}

/* ---- lade admin: chargers ---- */

static const char *const charger_fields[] = {
    "DeviceId",  "Name",           "InstallationId", "CircuitId",
    "Priority",  "PhaseRotation",  "MaxCurrent",     "MinCurrent",
    "MaxPhases", "OfflineCurrent", "OfflinePhases",  "Active",
    NULL,
};

static bool charger_body(struct ctx *c, const cJSON *o, struct lade_store_charger *ch, bool create)
{
    bool p_dev, p_name, p_inst, p_circ, p_prio, p_rot, p_max, p_min, p_ph, p_off, p_oph, p_act;
    int64_t inst = ch->installation_id, circ = ch->circuit_id, prio = 0, ph = 0, oph = 0;
    char rot[16];
    if (!get_str(c, o, "DeviceId", LADE_STORE_DEVICE_ID_MAX, &p_dev, ch->device_id,
                 sizeof ch->device_id) ||
        !get_str(c, o, "Name", LADE_STORE_NAME_MAX, &p_name, ch->name, sizeof ch->name) ||
        !get_ref(c, o, "InstallationId", PORTAL_ID_INSTALLATION, true, &p_inst, &inst) ||
        !get_ref(c, o, "CircuitId", PORTAL_ID_CIRCUIT, true, &p_circ, &circ) ||
        !get_int(c, o, "Priority", 0, LADE_STORE_PRIORITY_MAX, &p_prio, &prio) ||
        !get_str(c, o, "PhaseRotation", 6, &p_rot, rot, sizeof rot) ||
        !get_amp(c, o, "MaxCurrent", CHARGER_MIN_A * 1000, LADE_STORE_CHARGER_MAX_MA, true, &p_max,
                 &ch->max_current_ma) ||
        !get_amp(c, o, "MinCurrent", CHARGER_MIN_A * 1000, LADE_STORE_CHARGER_MAX_MA, true, &p_min,
                 &ch->min_current_ma) ||
        !get_int(c, o, "MaxPhases", 1, 3, &p_ph, &ph) ||
        !get_amp(c, o, "OfflineCurrent", 0, LADE_STORE_CHARGER_MAX_MA, true, &p_off,
                 &ch->offline_current_ma) ||
        !get_int(c, o, "OfflinePhases", 1, 3, &p_oph, &oph) ||
        !get_bool(c, o, "Active", &p_act, &ch->active))
        return false;
    if (create && !p_dev)
        return bad(c, "DeviceId", "DeviceId is required");
    if (p_dev) {
        for (const char *s = ch->device_id; *s; s++)
            if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                  (*s >= '0' && *s <= '9') || *s == '-'))
                return bad(c, "DeviceId", "DeviceId: only letters, digits and '-'");
    }
    if (create && !p_name)
        snprintf(ch->name, sizeof ch->name, "%s", ch->device_id);
    if (p_ph && ph == 2)
        return bad(c, "MaxPhases", "MaxPhases must be 1 or 3");
    if (p_oph && oph == 2)
        return bad(c, "OfflinePhases", "OfflinePhases must be 1 or 3");
    if (p_ph)
        ch->max_phases = (uint8_t)ph;
    if (p_oph)
        ch->offline_phases = (uint8_t)oph;
    if (p_prio)
        ch->priority = (int32_t)prio;
    if (p_rot) {
        char up[7];
        for (int i = 0; i < 7; i++)
            up[i] = rot[i] >= 'a' && rot[i] <= 'z' ? (char)(rot[i] - 'a' + 'A') : rot[i];
        if (lade_store_rotation_parse(up, ch->phase_map) != LADE_OK)
            return bad(c, "PhaseRotation",
                       "PhaseRotation must be like \"L1L2L3\" (a permutation of L1, L2, L3)");
    }
    /* Moving to another installation without a CircuitId puts it under the main fuse. */
    if (p_inst && inst != ch->installation_id && !p_circ)
        circ = 0;
    if (inst) {
        struct lade_store_installation in;
        lade_err err = lade_store_installation_get(c->st, inst, &in);
        if (err == LADE_ERR_NOT_FOUND)
            return bad(c, "InstallationId", "InstallationId: no such installation");
        if (err != LADE_OK) {
            server_error(c, err, "charger");
            return false;
        }
    }
    if (circ) {
        if (!inst)
            return bad(c, "CircuitId", "CircuitId needs an InstallationId");
        struct lade_store_circuit ci;
        lade_err err = lade_store_circuit_get(c->st, circ, &ci);
        if (err == LADE_ERR_NOT_FOUND)
            return bad(c, "CircuitId", "CircuitId: no such circuit");
        if (err != LADE_OK) {
            server_error(c, err, "charger");
            return false;
        }
        if (ci.installation_id != inst)
            return bad(c, "CircuitId", "CircuitId: that circuit belongs to another installation");
    }
    ch->installation_id = inst;
    ch->circuit_id = circ;
    return charger_currents_ok(c, ch, "MaxCurrent", "MinCurrent", "OfflineCurrent", p_max, p_min,
                               p_off);
}

/* The admin view of a charger, with "Pushed" when settings went to the twin. */
static void charger_answer(struct ctx *c, unsigned status, int64_t id, int pushed, const char *note)
{
    struct lade_store_charger ch;
    lade_err err = lade_store_charger_get(c->st, id, &ch);
    if (err != LADE_OK) {
        server_error(c, err, "charger");
        return;
    }
    cJSON *o = charger_json(c, &ch, true);
    if (o && pushed >= 0) {
        cJSON_AddBoolToObject(o, "Pushed", pushed);
        cJSON_AddStringToObject(o, "Message", note);
    }
    reply(c, status, o);
}

static void h_admin_chargers(struct ctx *c)
{
    charger_array(c, 0, true, false);
}

static void h_admin_charger_get(struct ctx *c)
{
    h_charger_get(c);
}

static void h_admin_charger_create(struct ctx *c)
{
    cJSON *o = body_object(c, charger_fields);
    if (!o)
        return;
    struct lade_store_charger ch;
    lade_store_charger_defaults(&ch);
    bool ok = charger_body(c, o, &ch, true);
    cJSON_Delete(o);
    if (!ok)
        return;
    ch.created_s = lade_wall_s();
    int64_t id = 0;
    lade_err err = lade_store_charger_add(c->st, &ch, &id);
    if (err != LADE_OK) {
        store_failed(c, err, "DeviceId", "charger");
        return;
    }
    ch.id = id;
    char why[256];
    err = reload(c, ch.installation_id, 0, why, sizeof why);
    if (err != LADE_OK) {
        if (lade_store_charger_remove(c->st, id) != LADE_OK)
            LOG_E(MOD, "charger %" PRId64 ": cannot undo its creation", id);
        reload_after_revert(c, ch.installation_id, 0);
        reload_failed(c, err, "InstallationId", why);
        return;
    }
    LOG_I(MOD, "user %" PRId64 ": charger %" PRId64 " (%s) created", c->user_id, id, ch.device_id);
    char note[160];
    cJSON *patch = settings_patch(&ch);
    bool pushed = patch && push_settings(c, id, patch, note, sizeof note);
    if (!patch)
        snprintf(note, sizeof note, "saved in the portal; not sent to the charger: out of memory");
    cJSON_Delete(patch);
    charger_answer(c, 201, id, pushed, note);
}

static void h_admin_charger_update(struct ctx *c)
{
    int64_t id;
    struct lade_store_charger old;
    if (!path_id(c, 0, PORTAL_ID_CHARGER, "charger", &id) || !need_charger(c, id, ROLES_ANY, &old))
        return;
    cJSON *o = body_object(c, charger_fields);
    if (!o)
        return;
    struct lade_store_charger n = old;
    bool ok = charger_body(c, o, &n, false);
    cJSON_Delete(o);
    if (!ok || !charger_apply(c, &old, &n, "InstallationId"))
        return;
    LOG_I(MOD, "user %" PRId64 ": charger %" PRId64 " updated", c->user_id, id);
    if (!settings_differ(&old, &n)) {
        charger_answer(c, 200, id, -1, NULL);
        return;
    }
    char note[160];
    cJSON *patch = settings_patch(&n);
    bool pushed = patch && push_settings(c, id, patch, note, sizeof note);
    if (!patch)
        snprintf(note, sizeof note, "saved in the portal; not sent to the charger: out of memory");
    cJSON_Delete(patch);
    charger_answer(c, 200, id, pushed, note);
}

static void h_admin_charger_delete(struct ctx *c)
{
    int64_t id;
    struct lade_store_charger ch;
    if (!path_id(c, 0, PORTAL_ID_CHARGER, "charger", &id) || !need_charger(c, id, ROLES_ANY, &ch))
        return;
    lade_err err = lade_store_charger_remove(c->st, id);
    if (err != LADE_OK) {
        store_failed(c, err, NULL, "charger");
        return;
    }
    char why[256];
    if ((err = reload(c, ch.installation_id, 0, why, sizeof why)) != LADE_OK)
        LOG_E(MOD, "charger %" PRId64 " removed; reload: %s %s", id, lade_strerror(err), why);
    LOG_I(MOD, "user %" PRId64 ": charger %" PRId64 " removed", c->user_id, id);
    message(c, 200, "charger removed");
}

/* ---- lade admin: users and access ---- */

static const char *const user_fields[] = {"Username", "Password", "Roles", NULL};

static cJSON *user_json(const struct lade_store_user *u)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    add_id(o, "Id", PORTAL_ID_USER, u->id);
    cJSON_AddStringToObject(o, "Username", u->username);
    cJSON_AddNumberToObject(o, "Roles", u->roles);
    add_time_ms(o, "CreatedOn", u->created_s * 1000);
    return o;
}

static int user_list_cb(void *ud, const struct lade_store_user *u)
{
    struct list_ud *l = ud;
    cJSON *it = user_json(u);
    if (!it || !cJSON_AddItemToArray(l->arr, it)) {
        cJSON_Delete(it);
        l->oom = true;
        return 1;
    }
    return 0;
}

static void h_admin_users(struct ctx *c)
{
    struct list_ud l = {.c = c, .arr = cJSON_CreateArray()};
    lade_err err = l.arr ? lade_store_user_list(c->st, user_list_cb, &l) : LADE_ERR_NOMEM;
    if (err != LADE_OK || l.oom) {
        cJSON_Delete(l.arr);
        server_error(c, err ? err : LADE_ERR_NOMEM, "users");
        return;
    }
    reply(c, 200, l.arr);
}

/* Reads a user body over *u; a new password is hashed into u->password_hash. */
static bool user_body(struct ctx *c, const cJSON *o, struct lade_store_user *u, bool create,
                      bool *pw_changed)
{
    bool p_name, p_roles;
    int64_t roles = u->roles;
    if (!get_str(c, o, "Username", LADE_STORE_USERNAME_MAX, &p_name, u->username,
                 sizeof u->username) ||
        !get_int(c, o, "Roles", 0, LADE_ROLE_ALL, &p_roles, &roles))
        return false;
    if (create && !p_name)
        return bad(c, "Username", "Username is required");
    u->roles = (uint32_t)roles;
    const cJSON *pw = cJSON_GetObjectItem(o, "Password");
    *pw_changed = pw != NULL;
    if (create && !pw)
        return bad(c, "Password", "Password is required");
    if (!pw)
        return true;
    if (!cJSON_IsString(pw) || !pw->valuestring)
        return bad(c, "Password", "Password must be a string");
    size_t n = strlen(pw->valuestring);
    if (n < 1 || n > LADE_AUTH_PASSWORD_MAX)
        return bad(c, "Password", "Password must be 1..%d bytes long", LADE_AUTH_PASSWORD_MAX);
    const struct lade_portal_opts *opts = portal_opts(c->p);
    char hash[LADE_AUTH_HASH_STR_SIZE];
    lade_err err =
        lade_auth_hash_password(pw->valuestring, n, opts ? opts->kdf : NULL, hash, sizeof hash);
    if (err != LADE_OK) {
        server_error(c, err, "password hash");
        return false;
    }
    snprintf(u->password_hash, sizeof u->password_hash, "%s", hash);
    OPENSSL_cleanse(hash, sizeof hash);
    return true;
}

static void wipe_password(cJSON *o)
{
    cJSON *pw = cJSON_GetObjectItem(o, "Password");
    if (cJSON_IsString(pw) && pw->valuestring)
        OPENSSL_cleanse(pw->valuestring, strlen(pw->valuestring));
    cJSON_Delete(o);
}

static void h_admin_user_create(struct ctx *c)
{
    cJSON *o = body_object(c, user_fields);
    if (!o)
        return;
    struct lade_store_user u;
    memset(&u, 0, sizeof u);
    bool pw;
    bool ok = user_body(c, o, &u, true, &pw);
    wipe_password(o);
    if (!ok)
        return;
    u.created_s = lade_wall_s();
    int64_t id = 0;
    lade_err err = lade_store_user_add(c->st, &u, &id);
    OPENSSL_cleanse(u.password_hash, sizeof u.password_hash);
    if (err != LADE_OK) {
        store_failed(c, err, "Username", "user");
        return;
    }
    u.id = id;
    LOG_I(MOD, "user %" PRId64 ": user %" PRId64 " created (roles %" PRIu32 ")", c->user_id, id,
          u.roles);
    reply(c, 201, user_json(&u));
}

static bool load_user(struct ctx *c, struct lade_store_user *u)
{
    int64_t id;
    if (!path_id(c, 0, PORTAL_ID_USER, "user", &id))
        return false;
    lade_err err = lade_store_user_get(c->st, id, u);
    if (err == LADE_ERR_NOT_FOUND) {
        message(c, 404, "no such user");
        return false;
    }
    if (err != LADE_OK) {
        server_error(c, err, "user");
        return false;
    }
    return true;
}

static void h_admin_user_get(struct ctx *c)
{
    struct lade_store_user u;
    if (!load_user(c, &u))
        return;
    OPENSSL_cleanse(u.password_hash, sizeof u.password_hash);
    reply(c, 200, user_json(&u));
}

static void h_admin_user_update(struct ctx *c)
{
    struct lade_store_user u;
    if (!load_user(c, &u))
        return;
    cJSON *o = body_object(c, user_fields);
    if (!o) {
        OPENSSL_cleanse(u.password_hash, sizeof u.password_hash);
        return;
    }
    bool pw = false;
    bool ok = user_body(c, o, &u, false, &pw);
    wipe_password(o);
    if (ok && u.id == c->user_id && !(u.roles & LADE_ROLE_ADMIN)) {
        conflict(c, "Roles", "you cannot remove your own Administrator role");
        ok = false;
    }
    lade_err err = ok ? lade_store_user_update(c->st, &u) : LADE_OK;
    OPENSSL_cleanse(u.password_hash, sizeof u.password_hash);
    if (!ok)
        return;
    if (err != LADE_OK) {
        store_failed(c, err, "Username", "user");
        return;
    }
    if (pw && (err = lade_store_token_revoke_user(c->st, u.id, NULL)) != LADE_OK)
        LOG_W(MOD, "user %" PRId64 ": tokens not revoked: %s", u.id, lade_strerror(err));
    LOG_I(MOD, "user %" PRId64 ": user %" PRId64 " updated%s", c->user_id, u.id,
          pw ? " (password changed, tokens revoked)" : "");
    reply(c, 200, user_json(&u));
}

static void h_admin_user_delete(struct ctx *c)
{
    struct lade_store_user u;
    if (!load_user(c, &u))
        return;
    OPENSSL_cleanse(u.password_hash, sizeof u.password_hash);
    if (u.id == c->user_id) {
        conflict(c, NULL, "you cannot remove yourself");
        return;
    }
    lade_err err = lade_store_user_remove(c->st, u.id);
    if (err != LADE_OK) {
        store_failed(c, err, NULL, "user");
        return;
    }
    LOG_I(MOD, "user %" PRId64 ": user %" PRId64 " removed", c->user_id, u.id);
    message(c, 200, "user removed");
}

struct access_ud {
    cJSON *arr;
    bool oom;
};

static int access_cb(void *ud, const struct lade_store_installation *in, uint32_t roles)
{
    struct access_ud *a = ud;
    cJSON *o = cJSON_CreateObject();
    if (o) {
        add_id(o, "InstallationId", PORTAL_ID_INSTALLATION, in->id);
        cJSON_AddStringToObject(o, "Name", in->name);
        cJSON_AddNumberToObject(o, "Roles", roles);
    }
    if (!o || !cJSON_GetObjectItem(o, "Roles") || !cJSON_AddItemToArray(a->arr, o)) {
        cJSON_Delete(o);
        a->oom = true;
        return 1;
    }
    return 0;
}

static void h_admin_user_access(struct ctx *c)
{
    struct lade_store_user u;
    if (!load_user(c, &u))
        return;
    OPENSSL_cleanse(u.password_hash, sizeof u.password_hash);
    struct access_ud a = {.arr = cJSON_CreateArray()};
    lade_err err =
        a.arr ? lade_store_installation_list(c->st, u.id, access_cb, &a) : LADE_ERR_NOMEM;
    if (err != LADE_OK || a.oom) {
        cJSON_Delete(a.arr);
        server_error(c, err ? err : LADE_ERR_NOMEM, "access");
        return;
    }
    reply(c, 200, a.arr);
}

static void h_admin_access(struct ctx *c)
{
    static const char *const allowed[] = {"UserId", "InstallationId", "Roles", NULL};
    cJSON *o = body_object(c, allowed);
    if (!o)
        return;
    bool p_user, p_inst, p_roles;
    int64_t uid = 0, iid = 0, roles = 0;
    bool ok = get_ref(c, o, "UserId", PORTAL_ID_USER, false, &p_user, &uid) &&
              get_ref(c, o, "InstallationId", PORTAL_ID_INSTALLATION, false, &p_inst, &iid) &&
              get_int(c, o, "Roles", 0, LADE_ROLE_ALL, &p_roles, &roles);
    cJSON_Delete(o);
    if (!ok)
        return;
    if (!p_user || !p_inst || !p_roles) {
        bad(c,
            !p_user   ? "UserId"
            : !p_inst ? "InstallationId"
                      : "Roles",
            "UserId, InstallationId and Roles are required");
        return;
    }
    struct lade_store_user u;
    struct lade_store_installation in;
    lade_err err = lade_store_user_get(c->st, uid, &u);
    if (err == LADE_OK)
        OPENSSL_cleanse(u.password_hash, sizeof u.password_hash);
    if (err == LADE_ERR_NOT_FOUND) {
        bad(c, "UserId", "UserId: no such user");
        return;
    }
    if (err == LADE_OK &&
        (err = lade_store_installation_get(c->st, iid, &in)) == LADE_ERR_NOT_FOUND) {
        bad(c, "InstallationId", "InstallationId: no such installation");
        return;
    }
    if (err == LADE_OK)
        err = lade_store_access_set(c->st, uid, iid, (uint32_t)roles);
    uint32_t eff = 0;
    if (err == LADE_OK)
        err = lade_store_access_get(c->st, uid, iid, &eff);
    if (err != LADE_OK) {
        store_failed(c, err, NULL, "access");
        return;
    }
    LOG_I(MOD, "user %" PRId64 ": user %" PRId64 " gets roles %" PRId64 " on installation %" PRId64,
          c->user_id, uid, roles, iid);
    cJSON *r = cJSON_CreateObject();
    if (r) {
        add_id(r, "UserId", PORTAL_ID_USER, uid);
        add_id(r, "InstallationId", PORTAL_ID_INSTALLATION, iid);
        cJSON_AddNumberToObject(r, "Roles", (double)roles);
        cJSON_AddNumberToObject(r, "EffectiveRoles", eff);
    }
    reply(c, 200, r);
}

static bool split_path(const char *path, char *buf, char *low, const char **seg, const char **lseg,
                       size_t *n);

/* ---- firmware repository and rollouts (docs/portal-api.md "Firmware") ---- */

/* A streamed image body (PUT api/lade/firmware/{id}/image), set up before the handler runs. */
struct api_upload {
    struct portal_fw_upload *u; /* NULL: refused at the start */
    unsigned status;
    char why[200];
};

static bool is_image_put(const char *method, const char *path, int64_t *id)
{
    char buf[PATH_LEN_MAX], low[PATH_LEN_MAX];
    const char *seg[PATH_SEGS_MAX], *lseg[PATH_SEGS_MAX];
    size_t n = 0;
    if (strcmp(method, "PUT") != 0 || !split_path(path, buf, low, seg, lseg, &n) || n != 5 ||
        strcmp(lseg[0], "api") || strcmp(lseg[1], "lade") || strcmp(lseg[2], "firmware") ||
        strcmp(lseg[4], "image"))
        return false;
    if (portal_id_parse(PORTAL_ID_FIRMWARE, seg[3], id) != LADE_OK)
        *id = 0;
    return true;
}

bool portal_api_stream_begin(void *ud, struct lade_http_req *r)
{
    struct portal_api *api = ud;
    int64_t id = 0;
    if (!is_image_put(lade_http_method(r), lade_http_path(r), &id))
        return false;
    struct api_upload *up = calloc(1, sizeof *up);
    if (!up)
        return false;
    struct portal_fw *fw = portal_firmware(api->p);
    /* Only for a valid token of an administrator: nobody else may write into the directory. */
    const char *h = lade_http_header(r, "Authorization");
    int64_t uid = 0;
    uint32_t roles = 0;
    if (!h || strncasecmp(h, "Bearer ", 7) != 0 ||
        lade_auth_token_check(portal_store(api->p), h + 7, strlen(h + 7), lade_wall_s(), &uid,
                              &roles) != LADE_OK ||
        !(roles & LADE_ROLE_ADMIN)) {
        up->status = 0; /* the handler's authentication answers */
    } else if (!fw) {
        up->status = 409;
        snprintf(up->why, sizeof up->why, "no firmware repository (lade-cloud --firmware-dir)");
    } else if (!id) {
        up->status = 404;
        snprintf(up->why, sizeof up->why, "no such firmware");
    } else {
        lade_err err = portal_fw_upload_begin(fw, id, &up->u, up->why, sizeof up->why);
        up->status = err == LADE_OK              ? 0
                     : err == LADE_ERR_NOT_FOUND ? 404
                     : err == LADE_ERR_EXISTS    ? 409
                                                 : 500;
    }
    lade_http_set_data(r, up);
    return true;
}

void portal_api_stream_data(void *ud, struct lade_http_req *r, const void *p, size_t n)
{
    (void)ud;
    struct api_upload *up = lade_http_data(r);
    if (up && up->u)
        portal_fw_upload_data(up->u, p, n);
}

static void upload_drop(struct lade_http_req *r)
{
    struct api_upload *up = lade_http_data(r);
    if (!up)
        return;
    portal_fw_upload_abort(up->u);
    free(up);
    lade_http_set_data(r, NULL);
}

void portal_api_stream_abort(void *ud, struct lade_http_req *r)
{
    (void)ud;
    upload_drop(r);
}

static struct portal_fw *need_fw(struct ctx *c)
{
    struct portal_fw *fw = portal_firmware(c->p);
    if (!fw)
        message(c, 409, "no firmware repository (lade-cloud --firmware-dir, --firmware-keys)");
    return fw;
}

static cJSON *fw_json(const struct portal_fw_image *m, bool with_manifest)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    add_id(o, "Id", PORTAL_ID_FIRMWARE, m->id);
    cJSON_AddStringToObject(o, "HardwareId", m->hardware);
    cJSON_AddStringToObject(o, "Version", m->version);
    cJSON_AddNumberToObject(o, "SecurityCounter", m->counter);
    cJSON_AddNumberToObject(o, "Length", (double)m->length);
    cJSON_AddStringToObject(o, "Sha256", m->sha256);
    cJSON_AddStringToObject(o, "KeyId", m->key_id);
    cJSON_AddStringToObject(o, "Notes", m->notes ? m->notes : "");
    cJSON_AddStringToObject(o, "State", m->published ? "published" : "awaiting image");
    char path[200];
    snprintf(path, sizeof path, "/fw/%s", m->file);
    cJSON_AddStringToObject(o, "Path", path);
    cJSON_AddNumberToObject(o, "Uploaded", (double)m->uploaded_s * 1000);
    if (with_manifest)
        cJSON_AddStringToObject(o, "Manifest", m->manifest ? m->manifest : "");
    return o;
}

static void h_fw_list(struct ctx *c)
{
    struct portal_fw *fw = need_fw(c);
    if (!fw)
        return;
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < portal_fw_image_count(fw); i++)
        cJSON_AddItemToArray(arr, fw_json(portal_fw_image_at(fw, i), false));
    reply(c, 200, arr);
}

static const char *const fw_fields[] = {"manifest", NULL};

static void h_fw_create(struct ctx *c)
{
    struct portal_fw *fw = need_fw(c);
    if (!fw)
        return;
    cJSON *o = body_object(c, fw_fields);
    if (!o)
        return;
    const cJSON *mf = cJSON_GetObjectItem(o, "manifest");
    if (!cJSON_IsString(mf)) {
        cJSON_Delete(o);
        bad(c, "manifest", "manifest must be the manifest's text (a string)");
        return;
    }
    char why[300] = "";
    int64_t id = 0;
    lade_err err =
        portal_fw_add_manifest(fw, mf->valuestring, strlen(mf->valuestring), &id, why, sizeof why);
    cJSON_Delete(o);
    if (err == LADE_ERR_PROTO || err == LADE_ERR_AUTH) {
        bad(c, "manifest", "%s", why);
        return;
    }
    if (err == LADE_ERR_EXISTS) {
        conflict(c, "manifest", "%s", why);
        return;
    }
    if (err != LADE_OK) {
        server_error(c, err, "firmware");
        return;
    }
    LOG_I(MOD, "user %" PRId64 ": firmware %" PRId64 " added", c->user_id, id);
    reply(c, 201, fw_json(portal_fw_image_get(fw, id), false));
}

static bool need_fw_id(struct ctx *c, struct portal_fw **fw, int64_t *id)
{
    if (!(*fw = need_fw(c)))
        return false;
    if (!path_id(c, 0, PORTAL_ID_FIRMWARE, "firmware", id))
        return false;
    if (!portal_fw_image_get(*fw, *id)) {
        message(c, 404, "no such firmware");
        return false;
    }
    return true;
}

static void h_fw_get(struct ctx *c)
{
    struct portal_fw *fw;
    int64_t id;
    if (need_fw_id(c, &fw, &id))
        reply(c, 200, fw_json(portal_fw_image_get(fw, id), true));
}

static void h_fw_delete(struct ctx *c)
{
    struct portal_fw *fw;
    int64_t id;
    if (!need_fw_id(c, &fw, &id))
        return;
    lade_err err = portal_fw_delete(fw, id);
    if (err == LADE_ERR_STATE)
        conflict(c, NULL, "an active rollout uses this firmware; stop it first");
    else if (err != LADE_OK)
        server_error(c, err, "firmware");
    else
        send_raw(c->api, c->req, 204, JSON_CT, "", 0, NULL);
}

static void h_fw_image(struct ctx *c)
{
    struct api_upload *up = lade_http_data(c->req);
    if (!up || (up->status == 0 && !up->u)) {
        upload_drop(c->req);
        bad(c, NULL, "the body must be the raw image (Content-Type: application/octet-stream)");
        return;
    }
    if (up->status) {
        unsigned st = up->status;
        char why[200];
        snprintf(why, sizeof why, "%s", up->why);
        upload_drop(c->req);
        if (st >= 500)
            send_code(c->api, c->req, 500, 500, why);
        else
            message(c, st, "%s", why);
        return;
    }
    char why[300] = "";
    lade_err err = portal_fw_upload_finish(up->u, why, sizeof why);
    up->u = NULL;
    upload_drop(c->req);
    if (err == LADE_ERR_TOO_BIG) {
        message(c, 413, "%s", why);
        return;
    }
    if (err == LADE_ERR_AUTH) {
        bad(c, NULL, "%s", why);
        return;
    }
    if (err == LADE_ERR_NOT_FOUND) {
        message(c, 404, "%s", why);
        return;
    }
    if (err != LADE_OK) {
        send_code(c->api, c->req, 500, 500, why);
        return;
    }
    int64_t id = 0;
    (void)!portal_id_parse(PORTAL_ID_FIRMWARE, c->arg[0], &id);
    const struct portal_fw_image *m = portal_fw_image_get(portal_firmware(c->p), id);
    LOG_I(MOD, "user %" PRId64 ": firmware %" PRId64 " image published", c->user_id, id);
    reply(c, 200, m ? fw_json(m, false) : cJSON_CreateObject());
}

static const char *const rollout_fields[] = {"installationId", "percent", "delayMaxS", NULL};

static void h_rollout_create(struct ctx *c)
{
    struct portal_fw *fw;
    int64_t id;
    if (!need_fw_id(c, &fw, &id))
        return;
    cJSON *o = body_object(c, rollout_fields);
    if (!o)
        return;
    bool has = false;
    int64_t pct = 0, delay = 0, inst = 0;
    bool ok = get_int(c, o, "percent", 1, 100, &has, &pct);
    if (ok && !has)
        ok = bad(c, "percent", "percent (1..100) is required");
    bool hd = false;
    ok = ok && get_int(c, o, "delayMaxS", 0, 604800, &hd, &delay);
    const cJSON *iv = cJSON_GetObjectItem(o, "installationId");
    if (ok && iv &&
        !(cJSON_IsString(iv) &&
          (!strcmp(iv->valuestring, "all") ||
           portal_id_parse(PORTAL_ID_INSTALLATION, iv->valuestring, &inst) == LADE_OK)))
        ok = bad(c, "installationId", "installationId must be an installation id or \"all\"");
    cJSON_Delete(o);
    if (!ok)
        return;
    struct lade_store_installation in;
    if (inst && lade_store_installation_get(c->st, inst, &in) != LADE_OK) {
        bad(c, "installationId", "installationId: no such installation");
        return;
    }
    int64_t rid = 0;
    lade_err err = portal_fw_rollout_new(fw, id, inst, (int)pct, (uint32_t)delay, &rid);
    if (err == LADE_ERR_STATE) {
        conflict(c, NULL, "the firmware's image is not published yet (PUT .../image)");
        return;
    }
    if (err != LADE_OK) {
        server_error(c, err, "rollout");
        return;
    }
    LOG_I(MOD, "user %" PRId64 ": rollout %" PRId64 " of firmware %" PRId64 " at %d%%", c->user_id,
          rid, id, (int)pct);
    reply(c, 201, portal_fw_rollout_json(fw, rid));
}

static void h_rollout_list(struct ctx *c)
{
    struct portal_fw *fw = need_fw(c);
    if (!fw)
        return;
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < portal_fw_rollout_count(fw); i++)
        cJSON_AddItemToArray(arr, portal_fw_rollout_json(fw, portal_fw_rollout_at(fw, i)->id));
    reply(c, 200, arr);
}

static bool need_rollout(struct ctx *c, struct portal_fw **fw, int64_t *id)
{
    if (!(*fw = need_fw(c)) || !path_id(c, 0, PORTAL_ID_ROLLOUT, "rollout", id))
        return false;
    if (!portal_fw_rollout_get(*fw, *id)) {
        message(c, 404, "no such rollout");
        return false;
    }
    return true;
}

static void h_rollout_get(struct ctx *c)
{
    struct portal_fw *fw;
    int64_t id;
    if (need_rollout(c, &fw, &id))
        reply(c, 200, portal_fw_rollout_json(fw, id));
}

static const char *const rollout_upd_fields[] = {"percent", "stop", NULL};

static void h_rollout_update(struct ctx *c)
{
    struct portal_fw *fw;
    int64_t id;
    if (!need_rollout(c, &fw, &id))
        return;
    cJSON *o = body_object(c, rollout_upd_fields);
    if (!o)
        return;
    bool has = false;
    int64_t pct = 0;
    bool ok = get_int(c, o, "percent", 1, 100, &has, &pct);
    const cJSON *sv = cJSON_GetObjectItem(o, "stop");
    if (ok && sv && !cJSON_IsBool(sv))
        ok = bad(c, "stop", "stop must be true or false");
    bool stop = cJSON_IsTrue(sv);
    cJSON_Delete(o);
    if (!ok)
        return;
    const struct portal_fw_rollout *ro = portal_fw_rollout_get(fw, id);
    if (has && ro->stopped) {
        conflict(c, "percent", "the rollout is stopped; start a new one");
        return;
    }
    if (has && pct < ro->percent) {
        conflict(c, "percent", "percent can only be raised (now %d)", ro->percent);
        return;
    }
    lade_err err = portal_fw_rollout_set(fw, id, has ? (int)pct : 0, stop);
    if (err != LADE_OK) {
        server_error(c, err, "rollout");
        return;
    }
    reply(c, 200, portal_fw_rollout_json(fw, id));
}

/* UpgradeFirmware (200) from sendCommand: the newest published release for the charger's
 * reported hardware id. */
static void send_upgrade(struct ctx *c, int64_t id, struct api_cmd *k)
{
    struct portal_fw *fw = portal_firmware(c->p);
    if (!fw) {
        free(k);
        /* Not a state of the charger: this portal cannot send firmware at all. */
        bad(c, "commandId",
            "commandId 200 (UpgradeFirmware) needs the portal's firmware repository "
            "(lade-cloud --firmware-dir)");
        return;
    }
    const struct portal_fw_report *r = portal_fw_report_get(fw, id);
    if (!r || !r->hardware[0]) {
        free(k);
        conflict(c, "commandId",
                 "the charger's hardware id is not known yet (it has not reported its firmware)");
        return;
    }
    const struct portal_fw_image *m = portal_fw_newest(fw, r->hardware);
    if (!m) {
        free(k);
        conflict(c, "commandId", "no published firmware for hardware %s", r->hardware);
        return;
    }
    char *json = portal_fw_command_json(m, 0);
    if (!json) {
        free(k);
        server_error(c, LADE_ERR_NOMEM, "command");
        return;
    }
    lade_err err = portal_call(c->p, id, "command", json, 0, on_cmd_reply, k);
    free(json);
    cmd_sent(c, id, CMD_UPGRADE_FW, k, err);
}

/* ---- routing ---- */

enum auth { AUTH_NONE, AUTH_USER, AUTH_ADMIN };

struct route {
    const char *method;
    const char *pattern; /* lower-case segments; "*" is any one segment; "" is "/" */
    enum auth auth;
    void (*fn)(struct ctx *c);
};

static const struct route routes[] = {
    {"GET", "", AUTH_NONE, h_static},
    {"GET", "app.js", AUTH_NONE, h_static},
    {"GET", "style.css", AUTH_NONE, h_static},
    {"GET", "metrics", AUTH_NONE, h_metrics},
    {"POST", "oauth/token", AUTH_NONE, h_login},
    {"GET", "api/constants", AUTH_NONE, h_constants},
    {"GET", "api/installation", AUTH_USER, h_inst_list},
    {"GET", "api/installation/*", AUTH_USER, h_inst_get},
    {"GET", "api/installation/*/hierarchy", AUTH_USER, h_inst_hierarchy},
    {"POST", "api/installation/*/update", AUTH_USER, h_inst_update},
    {"GET", "api/chargers", AUTH_USER, h_chargers},
    {"GET", "api/chargers/*", AUTH_USER, h_charger_get},
    {"GET", "api/chargers/*/state", AUTH_USER, h_charger_state},
    {"GET", "api/lade/chargers/*/network", AUTH_USER, h_charger_network},
    {"POST", "api/lade/chargers/*/sitecheck", AUTH_USER, h_site_check},
    {"POST", "api/chargers/*/sendcommand/*", AUTH_USER, h_send_command},
    {"POST", "api/chargers/*/update", AUTH_USER, h_charger_update},
    {"GET", "api/chargerfirmware/installation/*", AUTH_USER, h_firmware},
    {"GET", "api/chargehistory", AUTH_USER, h_history},
    {"GET", "api/lade/live/*", AUTH_USER, h_live},
    {"GET", "api/lade/installations", AUTH_ADMIN, h_admin_inst_list},
    {"POST", "api/lade/installations", AUTH_ADMIN, h_admin_inst_create},
    {"GET", "api/lade/installations/*", AUTH_ADMIN, h_admin_inst_get},
    {"POST", "api/lade/installations/*", AUTH_ADMIN, h_admin_inst_update},
    {"DELETE", "api/lade/installations/*", AUTH_ADMIN, h_admin_inst_delete},
    {"GET", "api/lade/circuits", AUTH_ADMIN, h_admin_circuit_list},
    {"POST", "api/lade/circuits", AUTH_ADMIN, h_admin_circuit_create},
    {"GET", "api/lade/circuits/*", AUTH_ADMIN, h_admin_circuit_get},
    {"POST", "api/lade/circuits/*", AUTH_ADMIN, h_admin_circuit_update},
    {"DELETE", "api/lade/circuits/*", AUTH_ADMIN, h_admin_circuit_delete},
    {"GET", "api/lade/chargers", AUTH_ADMIN, h_admin_chargers},
    {"POST", "api/lade/chargers", AUTH_ADMIN, h_admin_charger_create},
    {"GET", "api/lade/chargers/*", AUTH_ADMIN, h_admin_charger_get},
    {"POST", "api/lade/chargers/*", AUTH_ADMIN, h_admin_charger_update},
    {"DELETE", "api/lade/chargers/*", AUTH_ADMIN, h_admin_charger_delete},
    {"GET", "api/lade/users", AUTH_ADMIN, h_admin_users},
    {"POST", "api/lade/users", AUTH_ADMIN, h_admin_user_create},
    {"GET", "api/lade/users/*", AUTH_ADMIN, h_admin_user_get},
    {"POST", "api/lade/users/*", AUTH_ADMIN, h_admin_user_update},
    {"DELETE", "api/lade/users/*", AUTH_ADMIN, h_admin_user_delete},
    {"GET", "api/lade/users/*/access", AUTH_ADMIN, h_admin_user_access},
    {"POST", "api/lade/access", AUTH_ADMIN, h_admin_access},
    {"GET", "api/lade/firmware", AUTH_ADMIN, h_fw_list},
    {"POST", "api/lade/firmware", AUTH_ADMIN, h_fw_create},
    {"GET", "api/lade/firmware/*", AUTH_ADMIN, h_fw_get},
    {"DELETE", "api/lade/firmware/*", AUTH_ADMIN, h_fw_delete},
    {"PUT", "api/lade/firmware/*/image", AUTH_ADMIN, h_fw_image},
    {"POST", "api/lade/firmware/*/rollout", AUTH_ADMIN, h_rollout_create},
    {"GET", "api/lade/rollouts", AUTH_ADMIN, h_rollout_list},
    {"GET", "api/lade/rollouts/*", AUTH_ADMIN, h_rollout_get},
    {"POST", "api/lade/rollouts/*", AUTH_ADMIN, h_rollout_update},
};

/* Splits path into at most PATH_SEGS_MAX non-empty segments (buf keeps them; low gets a
 * lower-case copy for matching). */
static bool split_path(const char *path, char *buf, char *low, const char **seg, const char **lseg,
                       size_t *n)
{
    size_t len = strlen(path);
    if (len >= PATH_LEN_MAX)
        return false;
    memcpy(buf, path, len + 1);
    for (size_t i = 0; i <= len; i++)
        low[i] = buf[i] >= 'A' && buf[i] <= 'Z' ? (char)(buf[i] - 'A' + 'a') : buf[i];
    *n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && buf[i] == '/')
            i++;
        if (i >= len)
            break;
        size_t start = i;
        while (i < len && buf[i] != '/')
            i++;
        if (*n == PATH_SEGS_MAX)
            return false;
        buf[i] = low[i] = '\0';
        seg[*n] = buf + start;
        lseg[*n] = low + start;
        (*n)++;
        i++;
    }
    return true;
}

static bool route_match(const char *pat, const char *const *lseg, const char *const *seg, size_t n,
                        const char **args)
{
    size_t k = 0, a = 0;
    const char *p = pat;
    while (*p) {
        const char *e = strchr(p, '/');
        size_t plen = e ? (size_t)(e - p) : strlen(p);
        if (k >= n)
            return false;
        if (plen == 1 && *p == '*') {
            if (a < 2)
                args[a++] = seg[k];
        } else if (strlen(lseg[k]) != plen || memcmp(lseg[k], p, plen) != 0) {
            return false;
        }
        k++;
        p += plen + (e ? 1 : 0);
    }
    return k == n;
}

static void portal_api_dispatch(void *ud, struct lade_http_req *req)
{
    struct portal_api *api = ud;
    struct portal_metrics *m = portal_metrics(api->p);
    if (m)
        m->http_requests++;
    struct ctx c = {.api = api, .p = api->p, .st = portal_store(api->p), .req = req};
    const char *method = lade_http_method(req);
    bool head = strcmp(method, "HEAD") == 0;
    char buf[PATH_LEN_MAX], low[PATH_LEN_MAX];
    const char *seg[PATH_SEGS_MAX], *lseg[PATH_SEGS_MAX];
    size_t n = 0;
    if (!split_path(lade_http_path(req), buf, low, seg, lseg, &n)) {
        message(&c, 404, "no such path");
        return;
    }
    const struct route *match = NULL;
    char allow[64] = "";
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const char *args[2] = {NULL, NULL};
        if (!route_match(routes[i].pattern, lseg, seg, n, args))
            continue;
        if (!strstr(allow, routes[i].method)) {
            size_t l = strlen(allow);
            snprintf(allow + l, sizeof allow - l, "%s%s", l ? ", " : "", routes[i].method);
        }
        if (!match && (strcmp(routes[i].method, method) == 0 ||
                       (head && strcmp(routes[i].method, "GET") == 0))) {
            match = &routes[i];
            c.arg[0] = args[0];
            c.arg[1] = args[1];
        }
    }
    if (!match) {
        if (allow[0]) {
            char h[96];
            snprintf(h, sizeof h, "Allow: %s", allow);
            message_h(&c, 405, h, "method %s not allowed here (allowed: %s)", method, allow);
        } else {
            message(&c, 404, "no such path");
        }
        return;
    }
    if (match->auth != AUTH_NONE) {
        if (!authenticate(&c) || !rate_ok(&c))
            return;
        if (match->auth == AUTH_ADMIN && !(c.roles & LADE_ROLE_ADMIN)) {
            message(&c, 403, "this needs the Administrator role");
            return;
        }
    }
    match->fn(&c);
}

/* Every request: an image body streamed for a request that did not reach its handler (not
 * found, not allowed, no token, rate-limited) is dropped here. */
void portal_api_handle(void *ud, struct lade_http_req *req)
{
    portal_api_dispatch(ud, req);
    upload_drop(req);
}

/* ---- life cycle ---- */

lade_err portal_api_new(struct lade_portal *p, struct portal_api **out)
{
    if (!out)
        return LADE_ERR_INVAL;
    *out = NULL;
    if (!p)
        return LADE_ERR_INVAL;
    const struct lade_portal_opts *o = portal_opts(p);
    struct portal_api *api = calloc(1, sizeof *api);
    if (!api)
        return LADE_ERR_NOMEM;
    api->p = p;
    api->rate_burst = o && o->rate_burst ? o->rate_burst : 15;
    api->rate_refill_ms = o && o->rate_refill_ms ? o->rate_refill_ms : 100;
    struct lade_ratelimit_config user = {
        .burst = api->rate_burst, .refill_ms = api->rate_refill_ms, .max_keys = RL_KEYS};
    struct lade_ratelimit_config login = {
        .burst = o && o->login_burst ? o->login_burst : 5,
        .refill_ms = o && o->login_refill_ms ? o->login_refill_ms : 2000,
        .max_keys = RL_KEYS,
    };
    lade_err err = lade_ratelimit_new(&user, &api->rl_user);
    if (err == LADE_OK)
        err = lade_ratelimit_new(&login, &api->rl_login_addr);
    if (err == LADE_OK)
        err = lade_ratelimit_new(&login, &api->rl_login_user);
    if (err != LADE_OK) {
        portal_api_free(api);
        return err;
    }
    *out = api;
    return LADE_OK;
}

/* Call after the hub link is gone (its pending calls have answered) and the HTTP server is
 * freed: a command still waiting is only detached here, its request is not touched (the
 * server answered it 503 when it stopped); its record is freed when its reply comes. */
void portal_api_free(struct portal_api *api)
{
    if (!api)
        return;
    while (api->cmds) {
        struct api_cmd *k = api->cmds;
        cmd_unlink(k);
        k->api = NULL;
        k->req = NULL;
    }
    lade_ratelimit_free(api->rl_user);
    lade_ratelimit_free(api->rl_login_addr);
    lade_ratelimit_free(api->rl_login_user);
    free(api);
}
