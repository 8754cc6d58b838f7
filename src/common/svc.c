/* Service-identity client of lade's hub (see include/lade/svc.h and docs/lade-cmd.md).
 *
 * The same shell as the charger's cloud link (src/charger/charger.c): TLS driven by the loop
 * carries an MQTT session; every state change goes through set_state(), every way a link can
 * end goes through link_down(). On top of it: a table of pending requests keyed by $rid, each
 * with its own timer, so every request ends exactly once (reply, timeout, or link loss).
 */
#include "lade/svc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lade/backoff.h"
#include "lade/clock.h"
#include "lade/iothub.h"
#include "lade/log.h"
#include "lade/loop.h"
#include "lade/mqtt.h"
#include "lade/resolve.h"
#include "lade/tls.h"

#define MOD                "svc"
#define TX_CAP             (64 * 1024) /* a 32 KB twin patch with room to spare */
#define SUB_CAP            512
#define DEFAULT_MAX_PACKET (260 * 1024) /* Azure's 256 KB message limit plus topic */
#define CONNACK_TIMEOUT_MS 10000
#define SVC_FILE_MAX       (64 * 1024)
#define TOPIC_CAP          400
#define RID_MAX            64 /* the hub's limit: $rid is echoed into reply topics */
#define RENEW_POSTPONE_MS  500
#define SVC_CLIENT_PREFIX  "svc:"
#define SUB_TELEMETRY      "devices/+/messages/events/#"
#define SUB_EVENTS         "$lade/svc/events/#"
#define SUB_REPORTED       "$lade/svc/reported/#"
#define PREFIX_METHODS_RES "$lade/svc/methods-res/"
#define PREFIX_TWIN_RES    "$lade/svc/twin-res/"
#define PREFIX_REPORTED    "$lade/svc/reported/"
#define PREFIX_EVENTS      "$lade/svc/events/"
#define PREFIX_DEVICES     "devices/"
#define TELEMETRY_INFIX    "/messages/events"

struct svc_call {
    struct svc_call *next;
    struct lade_svc *svc;
    struct lade_timer timer;
    enum lade_svc_op op;
    lade_svc_reply_cb cb;
    void *ud;
    char rid[40];
    char device[LADE_IOTHUB_DEVICE_ID_MAX + 1];
    char method[LADE_SVC_METHOD_MAX + 1];
};

struct lade_svc {
    struct lade_loop *loop;
    struct lade_tls_ctx *tls;
    bool own_tls;
    char host[LADE_SVC_HOST_MAX + 1];
    char name[LADE_SVC_NAME_MAX + 1];
    char client_id[LADE_SVC_NAME_MAX + 8];
    char *hosts_file;
    uint8_t key[LADE_SAS_KEY_MAX];
    size_t key_len;
    uint16_t port;
    uint32_t token_ttl_s;
    uint32_t connect_timeout_ms;
    uint32_t backoff_max_ms;
    uint32_t call_timeout_ms;
    struct lade_svc_callbacks cb;
    void *ud;

    enum lade_svc_state state;
    struct lade_tls_conn *conn;
    struct lade_tls_session *tls_session; /* resumed on reconnect */
    struct lade_mqtt_session mqtt;
    struct lade_backoff backoff;
    struct lade_timer retry_timer, mqtt_timer, renew_timer;
    uint64_t up_since_ms, token_issued_ms;
    bool renewing;
    bool events_on, events_subscribed;
    uint8_t last_connack_rc;
    int depth;         /* > 0 while inside our own dispatch (user callbacks may run) */
    bool stop_pending; /* lade_svc_stop called from a callback: done when dispatch unwinds */

    struct svc_call *calls;
    size_t n_calls;
    uint32_t rid_prefix, rid_seq;
    struct lade_svc_status st;

    uint8_t *rx;
    size_t rx_cap;
    uint8_t tx[TX_CAP];
    uint8_t subs[SUB_CAP];
};

static const char *const state_names[] = {"stopped", "waiting", "connecting", "mqtt", "online"};

const char *lade_svc_state_name(enum lade_svc_state s)
{
    return (unsigned)s < sizeof state_names / sizeof state_names[0] ? state_names[s] : "?";
}

/* ------------------------------------------------------------------ pure helpers */

static bool is_unreserved(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

bool lade_svc_method_valid(const char *method)
{
    if (!method)
        return false;
    size_t n = 0;
    for (; method[n]; n++)
        if (n >= LADE_SVC_METHOD_MAX || !is_unreserved(method[n]))
            return false;
    return n > 0;
}

static bool id_view_valid(struct lade_str id)
{
    if (id.n == 0 || id.n > LADE_IOTHUB_DEVICE_ID_MAX)
        return false;
    for (size_t i = 0; i < id.n; i++) {
        char c = id.p[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return false;
    }
    return true;
}

/* Strict decimal: digits only, no sign, at most 18 digits (fits int64). */
static bool parse_dec(struct lade_str s, int64_t *out)
{
    if (s.n == 0 || s.n > 18)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < s.n; i++) {
        if (s.p[i] < '0' || s.p[i] > '9')
            return false;
        v = v * 10 + (s.p[i] - '0');
    }
    *out = v;
    return true;
}

/* If [*p, end) starts with prefix, advances *p past it. */
static bool eat(const char **p, const char *end, const char *prefix)
{
    size_t n = strlen(prefix);
    if ((size_t)(end - *p) < n || memcmp(*p, prefix, n) != 0)
        return false;
    *p += n;
    return true;
}

/* The path segment at *p (up to '/' or end); *p is left at the '/' or end. */
static struct lade_str segment(const char **p, const char *end)
{
    const char *s = *p;
    const char *e = memchr(s, '/', (size_t)(end - s));
    if (!e)
        e = end;
    *p = e;
    return (struct lade_str){s, (size_t)(e - s)};
}

/* "{id}/{status}/?{query}" of a *-res topic. */
static lade_err parse_res(const char *p, const char *end, struct lade_svc_topic *out)
{
    out->device = segment(&p, end);
    if (!id_view_valid(out->device) || !eat(&p, end, "/"))
        return LADE_ERR_PROTO;
    struct lade_str st = segment(&p, end);
    int64_t status;
    if (!parse_dec(st, &status) || status < 100 || status > 999 || !eat(&p, end, "/?"))
        return LADE_ERR_PROTO;
    out->status = (int)status;
    struct lade_str q = {p, (size_t)(end - p)};
    /* Our rids (and every rid the hub accepts) are 1..64 unreserved characters. */
    if (!lade_iothub_prop_get(q, "$rid", &out->rid) || out->rid.n == 0 || out->rid.n > RID_MAX)
        return LADE_ERR_PROTO;
    for (size_t i = 0; i < out->rid.n; i++)
        if (!is_unreserved(out->rid.p[i]))
            return LADE_ERR_PROTO;
    struct lade_str v;
    if (lade_iothub_prop_get(q, "$version", &v) && !parse_dec(v, &out->version))
        return LADE_ERR_PROTO;
    if (out->kind == LADE_SVC_T_METHOD_RES && lade_iothub_prop_get(q, "$origin", &v) &&
        lade_str_eq_c(v, "hub"))
        out->hub_made = true;
    return LADE_OK;
}

lade_err lade_svc_topic_parse(const char *topic, size_t len, struct lade_svc_topic *out)
{
    if (!topic || !out)
        return LADE_ERR_INVAL;
    memset(out, 0, sizeof *out);
    out->version = -1;
    const char *p = topic, *end = topic + len;
    lade_err err = LADE_OK;
    if (eat(&p, end, PREFIX_METHODS_RES)) {
        out->kind = LADE_SVC_T_METHOD_RES;
        err = parse_res(p, end, out);
    } else if (eat(&p, end, PREFIX_TWIN_RES)) {
        out->kind = LADE_SVC_T_TWIN_RES;
        err = parse_res(p, end, out);
    } else if (eat(&p, end, PREFIX_REPORTED)) {
        out->kind = LADE_SVC_T_REPORTED;
        out->device = segment(&p, end);
        struct lade_str v;
        if (!id_view_valid(out->device) || !eat(&p, end, "/?") ||
            !lade_iothub_prop_get((struct lade_str){p, (size_t)(end - p)}, "$version", &v) ||
            !parse_dec(v, &out->version))
            err = LADE_ERR_PROTO;
    } else if (eat(&p, end, PREFIX_EVENTS)) {
        out->kind = LADE_SVC_T_EVENT;
        out->device = segment(&p, end);
        if (!id_view_valid(out->device) || p != end)
            err = LADE_ERR_PROTO;
    } else if (eat(&p, end, PREFIX_DEVICES)) {
        struct lade_str id = segment(&p, end);
        if (!eat(&p, end, TELEMETRY_INFIX))
            return LADE_OK; /* some other devices/... topic: not ours */
        out->kind = LADE_SVC_T_TELEMETRY;
        out->device = id;
        if (!id_view_valid(id))
            err = LADE_ERR_PROTO;
        else if (p == end)
            out->props = (struct lade_str){p, 0};
        else if (*p == '/')
            out->props = (struct lade_str){p + 1, (size_t)(end - p - 1)};
        else
            out->kind = LADE_SVC_T_UNKNOWN; /* devices/{id}/messages/eventsX */
    }
    if (err) {
        enum lade_svc_topic_kind k = out->kind;
        memset(out, 0, sizeof *out);
        out->kind = k;
        out->version = -1;
    }
    return err;
}

/* ------------------------------------------------------------------ service file */

static void why_set(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void why_set(char *why, size_t cap, const char *fmt, ...)
{
    if (!why || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = 0;
    return s;
}

static bool host_valid(const char *h)
{
    size_t n = strlen(h);
    if (n == 0 || n > LADE_SVC_HOST_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == ':' || c == '[' || c == ']'))
            return false;
    }
    return true;
}

static lade_err parse_svc_text(char *text, struct lade_svc_file *out, char *why, size_t cap)
{
    bool have_name = false, have_key = false, have_host = false, have_port = false;
    unsigned lineno = 0;
    for (char *line = text; line;) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = 0;
        lineno++;
        char *l = trim(line);
        line = nl ? nl + 1 : NULL;
        if (*l == 0 || *l == '#')
            continue;
        char *eq = strchr(l, '=');
        if (!eq) {
            why_set(why, cap, "line %u: expected 'key = value'", lineno);
            return LADE_ERR_CONFIG;
        }
        *eq = 0;
        char *k = trim(l), *v = trim(eq + 1);
        bool *seen = strcmp(k, "service_name") == 0  ? &have_name
                     : strcmp(k, "service_key") == 0 ? &have_key
                     : strcmp(k, "hub_host") == 0    ? &have_host
                     : strcmp(k, "hub_port") == 0    ? &have_port
                                                     : NULL;
        if (!seen) {
            why_set(why, cap, "line %u: unknown key '%.40s'", lineno, k);
            return LADE_ERR_CONFIG;
        }
        if (*seen) {
            why_set(why, cap, "line %u: %s given twice", lineno, k);
            return LADE_ERR_CONFIG;
        }
        *seen = true;
        if (seen == &have_name) {
            if (!lade_iothub_device_id_valid(v) || strlen(v) > LADE_SVC_NAME_MAX) {
                why_set(why, cap, "line %u: service_name must be 1-128 of [A-Za-z0-9-]", lineno);
                return LADE_ERR_CONFIG;
            }
            snprintf(out->name, sizeof out->name, "%s", v);
        } else if (seen == &have_key) {
            size_t vn = strlen(v);
            lade_err err =
                vn == 0 || vn > lade_base64_encoded_len(LADE_SAS_KEY_MAX)
                    ? LADE_ERR_INVAL
                    : lade_base64_decode(v, vn, out->key, sizeof out->key, &out->key_len);
            memset(v, 0, vn); /* the caller's copy of the text is wiped too; be thorough */
            if (err || out->key_len == 0) {
                why_set(why, cap, "line %u: service_key is not a valid Base64 key (1-%d bytes)",
                        lineno, LADE_SAS_KEY_MAX);
                return LADE_ERR_CONFIG;
            }
        } else if (seen == &have_host) {
            if (!host_valid(v)) {
                why_set(why, cap, "line %u: hub_host is not a host name or address", lineno);
                return LADE_ERR_CONFIG;
            }
            snprintf(out->hub_host, sizeof out->hub_host, "%s", v);
        } else {
            int64_t port;
            if (!parse_dec(lade_str_c(v), &port) || port < 1 || port > 65535) {
                why_set(why, cap, "line %u: hub_port must be 1-65535", lineno);
                return LADE_ERR_CONFIG;
            }
            out->hub_port = (uint16_t)port;
        }
    }
    const char *missing = !have_name   ? "service_name"
                          : !have_key  ? "service_key"
                          : !have_host ? "hub_host"
                                       : NULL;
    if (missing) {
        why_set(why, cap, "no %s", missing);
        return LADE_ERR_CONFIG;
    }
    return LADE_OK;
}

lade_err lade_svc_file_load(const char *path, struct lade_svc_file *out, char *why, size_t why_cap)
{
    if (!path || !out)
        return LADE_ERR_INVAL;
    memset(out, 0, sizeof *out);
    why_set(why, why_cap, "%s", "");
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        why_set(why, why_cap, "%s", strerror(e));
        return e == ENOENT ? LADE_ERR_NOT_FOUND : LADE_ERR_IO;
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        why_set(why, why_cap, "not a regular file");
        return LADE_ERR_IO;
    }
    char *text = malloc(SVC_FILE_MAX + 1);
    if (!text) {
        fclose(f);
        return LADE_ERR_NOMEM;
    }
    size_t n = fread(text, 1, SVC_FILE_MAX + 1, f);
    bool rerr = ferror(f) != 0;
    fclose(f);
    lade_err err;
    if (rerr) {
        why_set(why, why_cap, "read error");
        err = LADE_ERR_IO;
    } else if (n > SVC_FILE_MAX) {
        why_set(why, why_cap, "larger than %d bytes", SVC_FILE_MAX);
        err = LADE_ERR_CONFIG;
    } else if (memchr(text, 0, n)) {
        why_set(why, why_cap, "contains a NUL byte");
        err = LADE_ERR_CONFIG;
    } else {
        text[n] = 0;
        err = parse_svc_text(text, out, why, why_cap);
    }
    memset(text, 0, n < SVC_FILE_MAX + 1 ? n + 1 : SVC_FILE_MAX + 1);
    free(text);
    if (err)
        lade_svc_file_wipe(out);
    return err;
}

void lade_svc_file_wipe(struct lade_svc_file *f)
{
    if (f) {
        memset(f->key, 0, sizeof f->key);
        f->key_len = 0;
    }
}

/* ------------------------------------------------------------------ dispatch guard */

static void do_stop(struct lade_svc *s);

/* Every entry from the loop (and every public call that may run user callbacks) is wrapped in
 * enter/leave, so a lade_svc_stop made from a callback waits until our own code has unwound
 * (the MQTT session must not be torn down under its own on_readable). */
static void enter(struct lade_svc *s)
{
    s->depth++;
}

static void leave(struct lade_svc *s)
{
    if (--s->depth == 0 && s->stop_pending) {
        s->stop_pending = false;
        s->depth++;
        do_stop(s);
        s->depth--;
    }
}

/* ------------------------------------------------------------------ state */

/* Reports every change, and every failure even when the state stays the same (a name that does
 * not resolve fails in WAITING without ever reaching CONNECTING). */
static void set_state(struct lade_svc *s, enum lade_svc_state to, lade_err err, const char *why)
{
    if (s->state == to && err == LADE_OK)
        return;
    LOG_D(MOD, "%s: %s -> %s", s->client_id, lade_svc_state_name(s->state),
          lade_svc_state_name(to));
    s->state = to;
    if (s->cb.on_state)
        s->cb.on_state(s->ud, to, err, why ? why : "");
}

static void arm(struct lade_svc *s, struct lade_timer *t, uint64_t due_ms)
{
    if (lade_timer_arm(s->loop, t, due_ms) != LADE_OK)
        LOG_E(MOD, "%s: cannot arm a timer: out of memory", s->client_id);
}

static void close_conn(struct lade_svc *s)
{
    if (!s->conn)
        return;
    lade_tls_conn_free(s->conn);
    s->conn = NULL;
}

/* Ends a pending request: unlinks it, cancels its timer, calls back once, frees it. */
static void finish(struct lade_svc *s, struct svc_call *c, lade_err err, int status, bool hub_made,
                   const uint8_t *body, size_t body_len, int64_t version)
{
    for (struct svc_call **pp = &s->calls; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            s->n_calls--;
            break;
        }
    }
    lade_timer_cancel(s->loop, &c->timer);
    struct lade_svc_result r = {
        .op = c->op,
        .err = err,
        .status = status,
        .hub_made = hub_made,
        .device = c->device,
        .method = c->op == LADE_SVC_OP_METHOD ? c->method : NULL,
        .body = body_len ? body : NULL,
        .body_len = body_len,
        .version = version,
    };
    if (c->cb)
        c->cb(c->ud, &r);
    free(c);
}

/* Fails every pending request (link lost, stop). Requests made from these callbacks fail with
 * LADE_ERR_STATE (the state has already left ONLINE), so the loop ends. */
static void fail_pending(struct lade_svc *s)
{
    while (s->calls)
        finish(s, s->calls, LADE_ERR_CLOSED, 0, false, NULL, 0, -1);
}

/* The link ended. err == LADE_OK: a planned close (token renewal, stop). */
static void link_down(struct lade_svc *s, lade_err err, const char *reason)
{
    uint64_t now = lade_mono_ms();
    bool was_online = s->state == LADE_SVC_ONLINE;
    lade_mqtt_session_lost(&s->mqtt);
    close_conn(s);
    lade_timer_cancel(s->loop, &s->mqtt_timer);
    lade_timer_cancel(s->loop, &s->renew_timer);
    s->renewing = false;
    if (s->state == LADE_SVC_STOPPED) {
        fail_pending(s);
        return;
    }
    if (was_online)
        lade_backoff_stable(&s->backoff, s->up_since_ms, now);
    uint32_t delay = 0;
    if (err != LADE_OK) {
        s->st.failures++;
        s->st.last_error = err;
        snprintf(s->st.last_reason, sizeof s->st.last_reason, "%s", reason);
        delay = lade_backoff_fail(&s->backoff, lade_random_u32());
        /* A refusal of the credentials will not heal by itself soon (wrong key, removed
         * service, clock): never hammer the hub with it. */
        if (err == LADE_ERR_AUTH && delay < s->backoff_max_ms / 10)
            delay = s->backoff_max_ms / 10;
        s->st.next_retry_ms = delay;
        LOG_W(MOD, "%s: link down (%s): %s; retry in %u ms", s->client_id, lade_strerror(err),
              reason, delay);
    }
    arm(s, &s->retry_timer, now + delay);
    set_state(s, LADE_SVC_WAITING, err, reason);
    fail_pending(s);
}

static void update_interest(struct lade_svc *s)
{
    if (!s->conn || lade_tls_conn_state(s->conn) != LADE_TLS_ESTABLISHED)
        return;
    uint32_t want = LADE_IO_READ;
    if (lade_mqtt_session_wants_write(&s->mqtt))
        want |= LADE_IO_WRITE;
    if (lade_tls_conn_set_interest(s->conn, want) != LADE_OK)
        LOG_E(MOD, "%s: cannot set I/O interest", s->client_id);
}

/* Runs the MQTT timers and re-arms for the next deadline. False if the link died. */
static bool mqtt_tick(struct lade_svc *s)
{
    uint64_t next = UINT64_MAX;
    lade_err err = lade_mqtt_session_tick(&s->mqtt, lade_mono_ms(), &next);
    if (err) {
        link_down(s, err, s->state == LADE_SVC_MQTT ? "no CONNACK in time" : "no PINGRESP in time");
        return false;
    }
    if (next != UINT64_MAX)
        arm(s, &s->mqtt_timer, next);
    update_interest(s);
    return true;
}

static void on_mqtt_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_svc *s = ud;
    enter(s);
    mqtt_tick(s);
    leave(s);
}

/* ------------------------------------------------------------------ MQTT callbacks */

static void on_connack(void *ud, bool session_present, uint8_t rc)
{
    struct lade_svc *s = ud;
    (void)session_present;
    s->last_connack_rc = rc;
    if (rc != 0) {
        LOG_W(MOD, "%s: hub refused the connection (CONNACK %u)", s->client_id, rc);
        return; /* on_readable returns the error; link_down follows */
    }
    uint64_t now = lade_mono_ms();
    s->st.connects++;
    s->up_since_ms = now;
    /* Renew at ~85 % of the token's life, jittered over 80..90 %. */
    uint64_t ttl_ms = (uint64_t)s->token_ttl_s * 1000;
    arm(s, &s->renew_timer,
        s->token_issued_ms + ttl_ms * 80 / 100 + lade_random_u32() % (ttl_ms / 10 + 1));
    LOG_I(MOD, "%s: connected to %s:%u", s->client_id, s->host, s->port);
    set_state(s, LADE_SVC_ONLINE, LADE_OK, "");
}

static void deliver_reply(struct lade_svc *s, const struct lade_svc_topic *t,
                          const struct lade_mqtt_publish *msg)
{
    struct svc_call *c = s->calls;
    while (c && !lade_str_eq_c(t->rid, c->rid))
        c = c->next;
    /* The rid alone finds the call; the device and the kind of reply must agree with it. */
    bool is_method = t->kind == LADE_SVC_T_METHOD_RES;
    if (!c || is_method != (c->op == LADE_SVC_OP_METHOD) || !lade_str_eq_c(t->device, c->device)) {
        LOG_D(MOD, "%s: late or unknown reply (rid %.*s) dropped", s->client_id, (int)t->rid.n,
              t->rid.p);
        return;
    }
    finish(s, c, LADE_OK, t->status, is_method && t->hub_made, msg->payload, msg->payload_len,
           c->op == LADE_SVC_OP_TWIN_PATCH ? t->version : -1);
}

static void deliver_event(struct lade_svc *s, const struct lade_svc_topic *t,
                          const struct lade_mqtt_publish *msg)
{
    if (!s->events_on || !s->cb.on_event)
        return;
    char device[LADE_IOTHUB_DEVICE_ID_MAX + 1];
    memcpy(device, t->device.p, t->device.n);
    device[t->device.n] = 0;
    struct lade_svc_event ev = {
        .kind = t->kind == LADE_SVC_T_TELEMETRY ? LADE_SVC_EV_TELEMETRY
                : t->kind == LADE_SVC_T_EVENT   ? LADE_SVC_EV_LIFECYCLE
                                                : LADE_SVC_EV_REPORTED,
        .device = device,
        .props = t->props,
        .version = t->kind == LADE_SVC_T_REPORTED ? t->version : -1,
        .payload = msg->payload,
        .payload_len = msg->payload_len,
    };
    s->cb.on_event(s->ud, &ev);
}

static void on_message(void *ud, const struct lade_mqtt_publish *msg)
{
    struct lade_svc *s = ud;
    struct lade_svc_topic t;
    if (lade_svc_topic_parse(msg->topic.p, msg->topic.n, &t) != LADE_OK) {
        LOG_W(MOD, "%s: ignoring a message on a malformed topic", s->client_id);
        return;
    }
    switch (t.kind) {
    case LADE_SVC_T_METHOD_RES:
    case LADE_SVC_T_TWIN_RES:
        deliver_reply(s, &t, msg);
        break;
    case LADE_SVC_T_TELEMETRY:
    case LADE_SVC_T_EVENT:
    case LADE_SVC_T_REPORTED:
        deliver_event(s, &t, msg);
        break;
    case LADE_SVC_T_UNKNOWN:
        LOG_D(MOD, "%s: message on an unexpected topic ignored", s->client_id);
        break;
    }
}

static const struct lade_mqtt_callbacks mqtt_cbs = {
    .on_connack = on_connack,
    .on_message = on_message,
};

/* ------------------------------------------------------------------ transport */

static const char *mqtt_reason(struct lade_svc *s, lade_err err, char *buf, size_t cap)
{
    switch (err) {
    case LADE_ERR_AUTH:
        snprintf(buf, cap, "hub refused the credentials (CONNACK %u)", s->last_connack_rc);
        return buf;
    case LADE_ERR_PROTO:
        if (s->state == LADE_SVC_MQTT && s->last_connack_rc != 0) {
            snprintf(buf, cap, "hub refused the connection (CONNACK %u)", s->last_connack_rc);
            return buf;
        }
        return "malformed or unexpected MQTT data from the hub";
    case LADE_ERR_TOO_BIG:
        return "hub sent a packet over the size limit";
    case LADE_ERR_CLOSED:
        return "hub closed the connection";
    case LADE_ERR_TIMEOUT:
        return "MQTT timeout";
    default:
        return "connection failed";
    }
}

static lade_err start_mqtt(struct lade_svc *s, uint64_t now)
{
    char token[LADE_SAS_TOKEN_MAX + 1];
    size_t token_len;
    int64_t expiry = lade_wall_s() + (int64_t)s->token_ttl_s;
    lade_err err = lade_sas_token_build(s->host, NULL, s->key, s->key_len, expiry, s->name, token,
                                        sizeof token, &token_len);
    if (err == LADE_OK) {
        struct lade_transport t = lade_tls_conn_transport(s->conn);
        s->last_connack_rc = 0;
        s->token_issued_ms = now;
        err = lade_mqtt_session_start(&s->mqtt, &t, token, now);
    }
    memset(token, 0, sizeof token);
    return err;
}

static void on_tls_inner(struct lade_svc *s, lade_err status, uint32_t events)
{
    uint64_t now = lade_mono_ms();
    char buf[96];
    if (status != LADE_OK) {
        const char *why = status == LADE_ERR_CERT      ? "hub certificate not trusted"
                          : status == LADE_ERR_TLS     ? "TLS handshake failed"
                          : status == LADE_ERR_TIMEOUT ? "hub did not answer in time"
                                                       : "cannot reach the hub";
        link_down(s, status, why);
        return;
    }
    if (s->state == LADE_SVC_CONNECTING) {
        struct lade_tls_stats ts;
        lade_tls_conn_stats(s->conn, &ts);
        if (ts.resumed)
            s->st.tls_resumptions++;
        LOG_D(MOD, "%s: %s established (%s)", s->client_id, ts.version, ts.cipher);
        lade_err err = start_mqtt(s, now);
        if (err) {
            link_down(s, err, "cannot start the MQTT session");
            return;
        }
        set_state(s, LADE_SVC_MQTT, LADE_OK, "");
        if (s->state != LADE_SVC_MQTT)
            return; /* the callback stopped us */
        events |= LADE_IO_WRITE;
    }
    if (events & LADE_IO_READ) {
        lade_err err = lade_mqtt_session_on_readable(&s->mqtt, now);
        if (err && err != LADE_ERR_AGAIN) {
            link_down(s, err, mqtt_reason(s, err, buf, sizeof buf));
            return;
        }
    }
    if (!s->conn)
        return;
    if (lade_mqtt_session_wants_write(&s->mqtt)) {
        lade_err err = lade_mqtt_session_flush(&s->mqtt, now);
        if (err && err != LADE_ERR_AGAIN) {
            link_down(s, err, mqtt_reason(s, err, buf, sizeof buf));
            return;
        }
    }
    if (s->renewing && lade_mqtt_session_state(&s->mqtt) == LADE_MQTT_DISCONNECTED) {
        s->st.token_renewals++;
        link_down(s, LADE_OK, "token renewal");
        return;
    }
    mqtt_tick(s);
}

static void on_tls(struct lade_tls_conn *conn, lade_err status, uint32_t events, void *ud)
{
    struct lade_svc *s = ud;
    (void)conn;
    enter(s);
    on_tls_inner(s, status, events);
    leave(s);
}

static void connect_now(struct lade_svc *s)
{
    struct lade_sockaddr addrs[LADE_TLS_MAX_ADDRS];
    size_t n = 0;
    lade_err err = lade_resolve_static(s->host, s->hosts_file, addrs, LADE_TLS_MAX_ADDRS, &n);
    if (err == LADE_ERR_NOSPACE)
        err = LADE_OK; /* use the first LADE_TLS_MAX_ADDRS */
    if (err) {
        link_down(s, err, "cannot resolve the hub's name");
        return;
    }
    struct lade_tls_conn_opts o = {
        .host = s->host,
        .addrs = addrs,
        .n_addrs = n,
        .port = s->port,
        .connect_timeout_ms = s->connect_timeout_ms,
        .handshake_timeout_ms = s->connect_timeout_ms,
        .session = &s->tls_session,
    };
    err = lade_tls_conn_new(&s->conn, s->tls, &o);
    if (err == LADE_OK)
        err = lade_tls_conn_attach(s->conn, s->loop, on_tls, s);
    if (err) {
        close_conn(s);
        link_down(s, err, "cannot start a connection");
        return;
    }
    set_state(s, LADE_SVC_CONNECTING, LADE_OK, "");
}

static void on_retry_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_svc *s = ud;
    enter(s);
    if (s->state == LADE_SVC_WAITING)
        connect_now(s);
    leave(s);
}

static void on_renew_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_svc *s = ud;
    if (s->state != LADE_SVC_ONLINE)
        return;
    uint64_t now = lade_mono_ms();
    /* Replies to pending requests would be lost with the connection: wait for them, but not
     * past 95 % of the token's life (the hub kicks a client whose token expired). */
    if (s->calls && now < s->token_issued_ms + (uint64_t)s->token_ttl_s * 950) {
        arm(s, &s->renew_timer, now + RENEW_POSTPONE_MS);
        return;
    }
    enter(s);
    LOG_I(MOD, "%s: token at ~85%% of its life: reconnecting with a fresh one", s->client_id);
    s->renewing = true;
    lade_mqtt_session_disconnect(&s->mqtt);
    on_tls_inner(s, LADE_OK, 0);
    leave(s);
}

/* ------------------------------------------------------------------ lifecycle */

lade_err lade_svc_new(struct lade_svc **out, const struct lade_svc_opts *o)
{
    if (!out)
        return LADE_ERR_INVAL;
    *out = NULL;
    if (!o || !o->loop || !o->hub_host || !*o->hub_host ||
        strlen(o->hub_host) > LADE_SVC_HOST_MAX || !o->service_name ||
        !lade_iothub_device_id_valid(o->service_name) ||
        strlen(o->service_name) > LADE_SVC_NAME_MAX || !o->key || o->key_len == 0 ||
        o->key_len > LADE_SAS_KEY_MAX || (o->token_ttl_s && o->token_ttl_s < 5) ||
        (!o->tls && !o->ca_file))
        return LADE_ERR_INVAL;
    struct lade_svc *s = calloc(1, sizeof *s);
    if (!s)
        return LADE_ERR_NOMEM;
    lade_err err;
    s->loop = o->loop;
    s->state = LADE_SVC_STOPPED;
    snprintf(s->host, sizeof s->host, "%s", o->hub_host);
    snprintf(s->name, sizeof s->name, "%s", o->service_name);
    snprintf(s->client_id, sizeof s->client_id, SVC_CLIENT_PREFIX "%s", o->service_name);
    memcpy(s->key, o->key, o->key_len);
    s->key_len = o->key_len;
    s->port = o->port ? o->port : 8883;
    s->token_ttl_s = o->token_ttl_s ? o->token_ttl_s : 3600;
    s->connect_timeout_ms = o->connect_timeout_ms ? o->connect_timeout_ms : 10000;
    uint32_t bmin = o->backoff_min_ms ? o->backoff_min_ms : 500;
    s->backoff_max_ms = o->backoff_max_ms ? o->backoff_max_ms : 30000;
    if (s->backoff_max_ms < bmin)
        s->backoff_max_ms = bmin;
    s->call_timeout_ms = o->call_timeout_ms ? o->call_timeout_ms : 30000;
    s->cb = o->cb;
    s->ud = o->ud;
    s->hosts_file = strdup(o->hosts_file ? o->hosts_file : "/etc/hosts");
    s->rx_cap = o->max_packet ? o->max_packet : DEFAULT_MAX_PACKET;
    if (s->rx_cap < 1024)
        s->rx_cap = 1024;
    s->rx = malloc(s->rx_cap);
    if (!s->hosts_file || !s->rx) {
        err = LADE_ERR_NOMEM;
        goto fail;
    }
    s->tls = o->tls;
    if (!s->tls) {
        err = lade_tls_ctx_new(&s->tls, o->ca_file);
        if (err)
            goto fail;
        s->own_tls = true;
    }
    uint16_t ka = o->keepalive_s ? o->keepalive_s : 60;
    struct lade_mqtt_session_cfg mc = {
        .client_id = s->client_id,
        .username = s->client_id, /* the hub wants user name = client id for services */
        .keepalive_s = ka,
        .clean_session = !o->persistent_session,
        .connack_timeout_ms = CONNACK_TIMEOUT_MS,
        .pingresp_timeout_ms = ka * 1000u / 2 + 1000u,
        .max_packet = s->rx_cap,
        .rx_buf = s->rx,
        .rx_cap = s->rx_cap,
        .tx_buf = s->tx,
        .tx_cap = sizeof s->tx,
        .sub_buf = s->subs,
        .sub_cap = sizeof s->subs,
    };
    err = lade_mqtt_session_init(&s->mqtt, &mc, &mqtt_cbs, s);
    if (err)
        goto fail;
    lade_backoff_init(&s->backoff, bmin, s->backoff_max_ms, 60000);
    lade_timer_init(&s->retry_timer, on_retry_timer, s);
    lade_timer_init(&s->mqtt_timer, on_mqtt_timer, s);
    lade_timer_init(&s->renew_timer, on_renew_timer, s);
    s->rid_prefix = lade_random_u32();
    *out = s;
    return LADE_OK;
fail:
    if (s->own_tls)
        lade_tls_ctx_free(s->tls);
    memset(s->key, 0, sizeof s->key);
    free(s->hosts_file);
    free(s->rx);
    free(s);
    return err;
}

lade_err lade_svc_start(struct lade_svc *s)
{
    if (!s)
        return LADE_ERR_INVAL;
    if (s->state != LADE_SVC_STOPPED)
        return LADE_ERR_STATE;
    lade_err err = lade_timer_arm(s->loop, &s->retry_timer, lade_mono_ms());
    if (err)
        return err;
    enter(s);
    set_state(s, LADE_SVC_WAITING, LADE_OK, "");
    leave(s);
    return LADE_OK;
}

static void do_stop(struct lade_svc *s)
{
    if (s->state == LADE_SVC_STOPPED)
        return;
    if (s->conn && lade_mqtt_session_state(&s->mqtt) == LADE_MQTT_CONNECTED) {
        /* Best effort: DISCONNECT goes out if the socket takes it now. */
        lade_mqtt_session_disconnect(&s->mqtt);
        if (lade_mqtt_session_flush(&s->mqtt, lade_mono_ms()) != LADE_OK)
            LOG_D(MOD, "%s: DISCONNECT not fully written", s->client_id);
    }
    lade_timer_cancel(s->loop, &s->retry_timer);
    set_state(s, LADE_SVC_STOPPED, LADE_OK, "stopped");
    link_down(s, LADE_OK, "stopped");
}

void lade_svc_stop(struct lade_svc *s)
{
    if (!s)
        return;
    if (s->depth > 0) {
        s->stop_pending = true;
        return;
    }
    enter(s);
    do_stop(s);
    leave(s);
}

void lade_svc_free(struct lade_svc *s)
{
    if (!s)
        return;
    s->stop_pending = false;
    enter(s);
    do_stop(s);
    s->stop_pending = false;
    s->depth--;
    lade_timer_cancel(s->loop, &s->retry_timer);
    lade_timer_cancel(s->loop, &s->mqtt_timer);
    lade_timer_cancel(s->loop, &s->renew_timer);
    if (s->own_tls)
        lade_tls_ctx_free(s->tls);
    lade_tls_session_free(s->tls_session);
    memset(s->key, 0, sizeof s->key);
    free(s->hosts_file);
    free(s->rx);
    free(s);
}

enum lade_svc_state lade_svc_state(const struct lade_svc *s)
{
    return s->state;
}

void lade_svc_status(const struct lade_svc *s, struct lade_svc_status *out)
{
    *out = s->st;
    out->state = s->state;
    out->pending = s->n_calls;
}

/* ------------------------------------------------------------------ requests */

static void on_call_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct svc_call *c = ud;
    struct lade_svc *s = c->svc;
    enter(s);
    LOG_I(MOD, "%s: no reply from %s within the request's timeout (rid %s)", s->client_id,
          c->device, c->rid);
    finish(s, c, LADE_ERR_TIMEOUT, 504, false, NULL, 0, -1);
    leave(s);
}

static lade_err request(struct lade_svc *s, enum lade_svc_op op, const char *device,
                        const char *method, const char *json, uint32_t timeout_ms,
                        lade_svc_reply_cb cb, void *ud)
{
    if (!s || !cb || !lade_iothub_device_id_valid(device))
        return LADE_ERR_INVAL;
    if (op == LADE_SVC_OP_METHOD && !lade_svc_method_valid(method))
        return LADE_ERR_INVAL;
    if (op == LADE_SVC_OP_TWIN_PATCH && !json)
        return LADE_ERR_INVAL;
    if (s->state != LADE_SVC_ONLINE || s->renewing || s->stop_pending)
        return LADE_ERR_STATE;
    struct svc_call *c = calloc(1, sizeof *c);
    if (!c)
        return LADE_ERR_NOMEM;
    c->svc = s;
    c->op = op;
    c->cb = cb;
    c->ud = ud;
    snprintf(c->device, sizeof c->device, "%s", device);
    if (method)
        snprintf(c->method, sizeof c->method, "%s", method);
    /* Unique per context and, through the random prefix, across restarts of a process using
     * the same identity: the hub keys pending calls by (device, rid) and answers 409 to a
     * duplicate. */
    snprintf(c->rid, sizeof c->rid, "%08" PRIx32 "-%" PRIu32, s->rid_prefix, ++s->rid_seq);

    char topic[TOPIC_CAP];
    switch (op) {
    case LADE_SVC_OP_METHOD:
        snprintf(topic, sizeof topic, "$lade/svc/methods/%s/%s/?$rid=%s", device, method, c->rid);
        break;
    case LADE_SVC_OP_TWIN_GET:
        snprintf(topic, sizeof topic, "$lade/svc/twin/%s/get/?$rid=%s", device, c->rid);
        json = NULL;
        break;
    case LADE_SVC_OP_TWIN_PATCH:
        snprintf(topic, sizeof topic, "$lade/svc/twin/%s/desired/?$rid=%s", device, c->rid);
        break;
    }
    size_t len = json ? strlen(json) : 0;
    /* QoS 0: a request must never be resent after a reconnect (a method must not run twice);
     * the replies are QoS 0 too. */
    lade_err err = lade_mqtt_publish(&s->mqtt, topic, json ? json : "", len, 0, false, NULL);
    if (err) {
        LOG_W(MOD, "%s: request to %s not sent: %s", s->client_id, device, lade_strerror(err));
        free(c);
        return err;
    }
    lade_timer_init(&c->timer, on_call_timer, c);
    err = lade_timer_arm(s->loop, &c->timer,
                         lade_mono_ms() + (timeout_ms ? timeout_ms : s->call_timeout_ms));
    if (err) {
        /* The request is on its way but could never time out: refuse to track it blindly. */
        free(c);
        return err;
    }
    c->next = s->calls;
    s->calls = c;
    s->n_calls++;
    update_interest(s);
    return LADE_OK;
}

lade_err lade_svc_call(struct lade_svc *s, const char *device, const char *method, const char *json,
                       uint32_t timeout_ms, lade_svc_reply_cb cb, void *ud)
{
    return request(s, LADE_SVC_OP_METHOD, device, method, json, timeout_ms, cb, ud);
}

lade_err lade_svc_twin_get(struct lade_svc *s, const char *device, uint32_t timeout_ms,
                           lade_svc_reply_cb cb, void *ud)
{
    return request(s, LADE_SVC_OP_TWIN_GET, device, NULL, NULL, timeout_ms, cb, ud);
}

lade_err lade_svc_twin_patch(struct lade_svc *s, const char *device, const char *json,
                             uint32_t timeout_ms, lade_svc_reply_cb cb, void *ud)
{
    return request(s, LADE_SVC_OP_TWIN_PATCH, device, NULL, json, timeout_ms, cb, ud);
}

lade_err lade_svc_subscribe_events(struct lade_svc *s, bool on)
{
    if (!s)
        return LADE_ERR_INVAL;
    s->events_on = on;
    if (!on || s->events_subscribed)
        return LADE_OK;
    static const char *const filters[] = {SUB_TELEMETRY, SUB_EVENTS, SUB_REPORTED};
    static const uint8_t qos[] = {1, 1, 1};
    lade_err err = lade_mqtt_subscribe(&s->mqtt, filters, qos, 3, NULL);
    if (err) {
        s->events_on = false;
        return err;
    }
    s->events_subscribed = true;
    update_interest(s);
    return LADE_OK;
}
