/* lade hub: a Mosquitto 2.0 plugin (API v5) that makes Mosquitto speak the Azure IoT Hub device
 * dialect: SAS-token authentication against the registry, per-device ACL, twin and direct-method
 * routing to exactly one device, and lifecycle events for the portal. See docs/hub.md.
 *
 * Mosquitto runs every callback on its single main thread, so no locking is needed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "hub.h"
#include "lade/clock.h"
#include "lade/log.h"
#include "lade/tokenbucket.h"
#include "lade/registry.h"
#include "lade/sas.h"

#define TOPIC_MAX 512
#define CALLS_MAX 10000

/* Default token lifetime limit: the 7-day tokens used in the field plus an hour of clock skew. */
#define DEFAULT_MAX_TTL_S        (7 * 24 * 3600 + 3600)
#define DEFAULT_GRACE_S          60
#define DEFAULT_METHOD_TIMEOUT_S 60
#define DEFAULT_BUSY_MS          1000
/* Connection admission (docs/hub.md "Connection storms"): off unless configured. What a hub can
 * take depends on its machine and on the portal behind it (every connect costs a registry
 * lookup, a lifecycle event and a twin GET), so the operator sets it from a measurement; Azure
 * IoT Hub S1 admits about 100 new connections per second per unit. */
#define DEFAULT_CONNECT_RATE 0
#define STORM_LOG_S          10 /* at most one summary line of refusals per this many seconds */

/* What a throttled CONNECT is answered with. Mosquitto 2.0.11 turns MOSQ_ERR_AUTH from
 * MOSQ_EVT_BASIC_AUTH into CONNACK 5 (not authorised) — the answer a wrong key gets — and any
 * other error into closing the connection without a CONNACK (handle_connect.c: default branch
 * of the mosquitto_unpwd_check switch); there is no way to send CONNACK 3 (server unavailable)
 * from a plugin. A close without CONNACK is what Azure IoT Hub does to a throttled device
 * (reference/iothub.md) and a charger treats it as transient, so "come back later" stays
 * distinguishable from "bad key". */
#define THROTTLED MOSQ_ERR_CONN_REFUSED

/* How the plugin drops a publish it has routed itself (see docs/hub.md "Routing"). The original
 * is never rewritten (2.0.11 leaks when a plugin changes the topic). Returning ACL_DENIED from
 * MOSQ_EVT_MESSAGE makes 2.0.11 drop the message (a QoS 1 publish is still acknowledged). */
#define SWALLOW MOSQ_ERR_ACL_DENIED

struct hub {
    mosquitto_plugin_id_t *pid;
    struct lade_registry *reg;
    char hub_host[256];
    int64_t max_ttl_s;
    int64_t grace_s;
    int64_t method_timeout_s;
    struct hub_clients clients;
    struct hub_call *calls;
    size_t ncalls;
    time_t last_scan_s;
    /* connection admission */
    struct lade_tokenbucket admit;
    uint64_t admitted, refused;         /* device CONNECTs since start */
    uint64_t win_admitted, win_refused; /* since the last summary line */
    time_t win_start_s;
};

static void log_sink(void *ud, enum lade_log_level level, const char *module, const char *line)
{
    (void)ud;
    int lvl = level == LADE_LOG_ERROR  ? MOSQ_LOG_ERR
              : level == LADE_LOG_WARN ? MOSQ_LOG_WARNING
              : level == LADE_LOG_INFO ? MOSQ_LOG_NOTICE
                                       : MOSQ_LOG_DEBUG;
    mosquitto_log_printf(lvl, "lade_hub %s: %s", module, line);
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static const char *self_of(const struct hub_client *c)
{
    return c->who == HUB_SERVICE ? c->id + strlen(HUB_SVC_CLIENT) : c->id;
}

/* The table entry of a client, only if it is the very connection that authenticated (a refused
 * CONNECT or an old connection taken over by a new one carries the same client id). */
static struct hub_client *client_of(struct hub *h, const struct mosquitto *client)
{
    const char *cid = mosquitto_client_id(client);
    struct hub_client *c = cid ? hub_clients_find(&h->clients, cid) : NULL;
    return c && c->conn == (const void *)client ? c : NULL;
}

static void publish(const char *to, const char *topic, const void *payload, size_t len, int qos)
{
    int rc =
        mosquitto_broker_publish_copy(to, topic, (int)len, len ? payload : NULL, qos, false, NULL);
    if (rc != MOSQ_ERR_SUCCESS)
        mosquitto_log_printf(MOSQ_LOG_WARNING, "lade_hub: publish to %s failed: error %d",
                             to ? to : "(all)", rc);
}

static void publish_str(const char *to, const char *topic, const char *body, int qos)
{
    publish(to, topic, body, body ? strlen(body) : 0, qos);
}

/* ---- lifecycle events ---- */

static void emit_event(const char *device, const char *event, const char *reason)
{
    char topic[TOPIC_MAX], body[256];
    snprintf(topic, sizeof topic, HUB_SVC_PREFIX "events/%s", device);
    if (reason)
        snprintf(body, sizeof body, "{\"event\":\"%s\",\"time\":%lld,\"reason\":\"%s\"}", event,
                 (long long)now_s(), reason);
    else
        snprintf(body, sizeof body, "{\"event\":\"%s\",\"time\":%lld}", event, (long long)now_s());
    /* QoS 1 so that a portal with a persistent session gets them after its own reconnect. */
    publish_str(NULL, topic, body, 1);
}

/* ---- authentication ---- */

static int refuse(const char *cid, const struct mosquitto *client, const char *why)
{
    const char *addr = mosquitto_client_address(client);
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "lade_hub: refused '%s' from %s: %s",
                         cid ? cid : "(none)", addr ? addr : "?", why);
    return MOSQ_ERR_AUTH;
}

static const char *verify_reason(lade_err err)
{
    switch (err) {
    case LADE_ERR_EXPIRED:
        return "token expired";
    case LADE_ERR_AUTH:
        return "signature, resource or lifetime rejected";
    default:
        return lade_strerror(err);
    }
}

/* Admission of a new connection, before any expensive work (SAS parse, registry lookup).
 * Service identities (the portal) are never throttled: a hub that refuses its own portal in a
 * storm would stop the lifecycle events and methods the storm is about. A fake "svc:" client
 * costs a registry lookup, as before; a device's id cannot start with "svc:". */
static bool admit(struct hub *h, const char *cid)
{
    if (cid && strncmp(cid, HUB_SVC_CLIENT, strlen(HUB_SVC_CLIENT)) == 0)
        return true;
    if (lade_tokenbucket_take(&h->admit, lade_mono_ms())) {
        h->admitted++;
        h->win_admitted++;
        return true;
    }
    h->refused++;
    h->win_refused++;
    return false;
}

/* One line per STORM_LOG_S while refusals happen, never one per refusal (10 000 chargers). */
static void storm_summary(struct hub *h, time_t now, bool force)
{
    if (!h->win_refused) {
        h->win_admitted = 0;
        h->win_start_s = now;
        return;
    }
    if (!force && now - h->win_start_s < STORM_LOG_S)
        return;
    mosquitto_log_printf(MOSQ_LOG_NOTICE,
                         "lade_hub: connection rate limit %u/s (burst %u): refused %llu and "
                         "admitted %llu device CONNECTs in the last %lld s (since start: refused "
                         "%llu, admitted %llu)",
                         h->admit.rate_per_s, h->admit.burst, (unsigned long long)h->win_refused,
                         (unsigned long long)h->win_admitted, (long long)(now - h->win_start_s),
                         (unsigned long long)h->refused, (unsigned long long)h->admitted);
    h->win_refused = h->win_admitted = 0;
    h->win_start_s = now;
}

static int on_basic_auth(int event, void *event_data, void *ud)
{
    struct mosquitto_evt_basic_auth *ed = event_data;
    struct hub *h = ud;
    (void)event;
    const char *cid = mosquitto_client_id(ed->client);
    if (!admit(h, cid))
        return THROTTLED; /* logged in the summary, not per client */
    uint8_t key[LADE_REGISTRY_KEY_MAX];
    size_t key_len = 0;
    char expected[LADE_SAS_RESOURCE_MAX + 1];
    struct lade_sas tok;
    enum hub_who who;
    lade_err err;

    if (!cid || !ed->username || !ed->password)
        return refuse(cid, ed->client, "missing client id, username or password");
    if (lade_sas_parse(ed->password, strlen(ed->password), &tok) != LADE_OK)
        return refuse(cid, ed->client, "malformed SAS token");

    if (strncmp(cid, HUB_SVC_CLIENT, strlen(HUB_SVC_CLIENT)) == 0) {
        const char *name = cid + strlen(HUB_SVC_CLIENT);
        who = HUB_SERVICE;
        if (!lade_registry_id_valid(name) || strcmp(ed->username, cid) != 0)
            return refuse(cid, ed->client, "service username must equal the client id");
        if (!lade_str_eq_c(tok.skn, name))
            return refuse(cid, ed->client, "token skn does not name the service");
        err = lade_registry_service_key(h->reg, name, key, sizeof key, &key_len);
        snprintf(expected, sizeof expected, "%s", h->hub_host);
    } else {
        bool enabled = false;
        who = HUB_DEVICE;
        if (!lade_registry_id_valid(cid))
            return refuse(cid, ed->client, "invalid device id");
        if (!hub_device_username_ok(h->hub_host, cid, ed->username))
            return refuse(cid, ed->client, "username is not {hub}/{id}/?api-version=...");
        if (tok.skn.p)
            return refuse(cid, ed->client, "device token carries skn");
        err = lade_registry_device_key(h->reg, cid, key, sizeof key, &key_len, &enabled);
        if (err == LADE_OK && !enabled) {
            memset(key, 0, sizeof key);
            return refuse(cid, ed->client, "device disabled");
        }
        snprintf(expected, sizeof expected, "%s/devices/%s", h->hub_host, cid);
    }
    if (err == LADE_ERR_NOT_FOUND)
        return refuse(cid, ed->client, "unknown identity");
    if (err != LADE_OK)
        return refuse(cid, ed->client, lade_strerror(err)); /* registry failure: fail closed */

    int64_t now = now_s();
    err = lade_sas_verify(&tok, key, key_len, now, h->max_ttl_s, expected);
    memset(key, 0, sizeof key);
    if (err != LADE_OK)
        return refuse(cid, ed->client, verify_reason(err));

    if (hub_clients_put(&h->clients, cid, ed->client, who, tok.expiry_s) != LADE_OK)
        return refuse(cid, ed->client, "out of memory");
    mosquitto_log_printf(MOSQ_LOG_NOTICE, "lade_hub: %s '%s' authenticated, token valid %lld s",
                         who == HUB_DEVICE ? "device" : "service", cid,
                         (long long)(tok.expiry_s - now));
    if (who == HUB_DEVICE)
        emit_event(cid, "connected", NULL);
    return MOSQ_ERR_SUCCESS;
}

/* ---- ACL ---- */

static int on_acl_check(int event, void *event_data, void *ud)
{
    struct mosquitto_evt_acl_check *ed = event_data;
    struct hub *h = ud;
    (void)event;
    struct hub_client *c = client_of(h, ed->client);
    bool ok = false;
    const char *what = "?";

    /* A token past its expiry acts for nothing, even before the kick at the next tick. Mosquitto
     * checks unsubscriptions while it tears a session down: always allowed. */
    if (ed->access == MOSQ_ACL_UNSUBSCRIBE)
        return MOSQ_ERR_SUCCESS;
    if (c && now_s() < c->expiry_s + h->grace_s) {
        switch (ed->access) {
        case MOSQ_ACL_SUBSCRIBE:
            what = "subscribe";
            ok = hub_subscribe_allowed(c->who, self_of(c), ed->topic);
            break;
        case MOSQ_ACL_WRITE:
            what = "publish";
            ok = hub_publish_allowed(c->who, self_of(c), ed->topic, ed->qos, ed->retain, NULL);
            break;
        case MOSQ_ACL_READ:
            what = "receive";
            ok = hub_read_allowed(c->who, self_of(c), ed->topic);
            break;
        default:
            break;
        }
    }
    if (!ok) {
        const char *cid = mosquitto_client_id(ed->client);
        mosquitto_log_printf(ed->access == MOSQ_ACL_READ ? MOSQ_LOG_DEBUG : MOSQ_LOG_NOTICE,
                             "lade_hub: denied %s '%s' (q%d r%d) for '%s'", what,
                             ed->topic ? ed->topic : "", ed->qos, ed->retain ? 1 : 0,
                             cid ? cid : "(none)");
    }
    return ok ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
}

/* ---- routing ---- */

static int status_of(lade_err err)
{
    switch (err) {
    case LADE_OK:
        return 200;
    case LADE_ERR_INVAL:
        return 400;
    case LADE_ERR_NOT_FOUND:
        return 404;
    case LADE_ERR_TOO_BIG:
        return 413;
    default:
        return 500;
    }
}

static void device_twin_get(struct hub *h, const char *id, struct lade_str rid)
{
    char topic[TOPIC_MAX];
    char *json = NULL;
    size_t n = 0;
    lade_err err = lade_registry_twin_get(h->reg, id, &json, &n);
    snprintf(topic, sizeof topic, "$iothub/twin/res/%d/?$rid=%.*s", status_of(err), (int)rid.n,
             rid.p);
    publish(id, topic, json, err == LADE_OK ? n : 0, 0);
    free(json);
}

static void device_twin_report(struct hub *h, const char *id, struct lade_str rid,
                               const void *payload, size_t len)
{
    char topic[TOPIC_MAX];
    int64_t ver = 0;
    lade_err err = lade_registry_twin_patch(h->reg, id, LADE_TWIN_REPORTED, payload ? payload : "",
                                            len, &ver, NULL);
    if (err == LADE_OK) {
        snprintf(topic, sizeof topic, "$iothub/twin/res/204/?$rid=%.*s&$version=%lld", (int)rid.n,
                 rid.p, (long long)ver);
        publish(id, topic, NULL, 0, 0);
        /* The portal follows chargers' reported state through these. */
        snprintf(topic, sizeof topic, HUB_SVC_PREFIX "reported/%s/?$version=%lld", id,
                 (long long)ver);
        publish(NULL, topic, payload, len, 1);
    } else {
        snprintf(topic, sizeof topic, "$iothub/twin/res/%d/?$rid=%.*s", status_of(err), (int)rid.n,
                 rid.p);
        publish(id, topic, NULL, 0, 0);
    }
}

static struct hub_call **call_find(struct hub *h, struct lade_str device, struct lade_str rid)
{
    for (struct hub_call **pp = &h->calls; *pp; pp = &(*pp)->next)
        if (lade_str_eq_c(device, (*pp)->device) && lade_str_eq_c(rid, (*pp)->rid))
            return pp;
    return NULL;
}

static void call_unlink(struct hub *h, struct hub_call **pp)
{
    struct hub_call *c = *pp;
    *pp = c->next;
    free(c->caller);
    free(c);
    h->ncalls--;
}

static void method_reply(const char *caller, const char *device, int status, const char *rid,
                         bool hub_made, const void *payload, size_t len)
{
    char topic[TOPIC_MAX];
    snprintf(topic, sizeof topic, HUB_SVC_PREFIX "methods-res/%s/%d/?$rid=%s%s", device, status,
             rid, hub_made ? "&$origin=hub" : "");
    publish(caller, topic, payload, len, 0);
}

/* A reply the hub itself gives on behalf of a device (404, 409, 429, 504). "$origin=hub" in
 * the topic tells it apart from a device that answers with the same status (a charger's own
 * 404 "unknown method" is not "device offline"). */
static void method_fail(const char *caller, const char *device, int status, const char *rid,
                        const char *message)
{
    char body[128];
    snprintf(body, sizeof body, "{\"message\":\"%s\"}", message);
    method_reply(caller, device, status, rid, true, body, strlen(body));
}

static void device_method_res(struct hub *h, const char *id, const struct hub_topic *t,
                              const void *payload, size_t len)
{
    struct hub_call **pp = call_find(h, lade_str_c(id), t->rid);
    if (!pp) {
        mosquitto_log_printf(MOSQ_LOG_INFO,
                             "lade_hub: late or unknown method response from %s (rid %.*s)", id,
                             (int)t->rid.n, t->rid.p);
        return;
    }
    method_reply((*pp)->caller, id, t->status, (*pp)->rid, false, payload, len);
    call_unlink(h, pp);
}

static void svc_method(struct hub *h, const char *caller, const struct hub_topic *t,
                       const void *payload, size_t len)
{
    char device[LADE_REGISTRY_ID_MAX + 1], rid[HUB_RID_MAX + 1], topic[TOPIC_MAX];
    snprintf(device, sizeof device, "%.*s", (int)t->device.n, t->device.p);
    snprintf(rid, sizeof rid, "%.*s", (int)t->rid.n, t->rid.p);
    struct hub_client *d = hub_clients_find(&h->clients, device);
    if (!d || d->who != HUB_DEVICE || d->kicked) {
        method_fail(caller, device, 404, rid, "device not connected");
        return;
    }
    if (call_find(h, t->device, t->rid)) {
        method_fail(caller, device, 409, rid, "request id in use");
        return;
    }
    struct hub_call *c = h->ncalls < CALLS_MAX ? calloc(1, sizeof *c) : NULL;
    if (!c || !(c->caller = strdup(caller))) {
        free(c);
        method_fail(caller, device, 429, rid, "too many calls");
        return;
    }
    memcpy(c->device, device, sizeof device);
    memcpy(c->rid, rid, sizeof rid);
    c->deadline_s = now_s() + h->method_timeout_s;
    c->next = h->calls;
    h->calls = c;
    h->ncalls++;
    /* Azure delivers method requests with QoS 0. */
    snprintf(topic, sizeof topic, "$iothub/methods/POST/%.*s/?$rid=%s", (int)t->method.n,
             t->method.p, rid);
    publish(device, topic, payload, len, 0);
}

static void svc_twin(struct hub *h, const char *caller, const struct hub_topic *t,
                     const void *payload, size_t len)
{
    char device[LADE_REGISTRY_ID_MAX + 1], topic[TOPIC_MAX];
    char *out = NULL;
    size_t out_len = 0;
    int64_t ver = 0;
    lade_err err;
    int status;
    snprintf(device, sizeof device, "%.*s", (int)t->device.n, t->device.p);

    if (t->route == HUB_ROUTE_SVC_TWIN_GET) {
        err = lade_registry_twin_get(h->reg, device, &out, &out_len);
        status = status_of(err);
        snprintf(topic, sizeof topic, HUB_SVC_PREFIX "twin-res/%s/%d/?$rid=%.*s", device, status,
                 (int)t->rid.n, t->rid.p);
        publish(caller, topic, out, err == LADE_OK ? out_len : 0, 0);
        free(out);
        return;
    }
    err = lade_registry_twin_patch(h->reg, device, LADE_TWIN_DESIRED, payload ? payload : "", len,
                                   &ver, &out);
    status = err == LADE_OK ? 204 : status_of(err);
    if (err == LADE_OK)
        snprintf(topic, sizeof topic, HUB_SVC_PREFIX "twin-res/%s/204/?$rid=%.*s&$version=%lld",
                 device, (int)t->rid.n, t->rid.p, (long long)ver);
    else
        snprintf(topic, sizeof topic, HUB_SVC_PREFIX "twin-res/%s/%d/?$rid=%.*s", device, status,
                 (int)t->rid.n, t->rid.p);
    publish(caller, topic, NULL, 0, 0);
    if (err == LADE_OK) {
        struct hub_client *d = hub_clients_find(&h->clients, device);
        /* Not queued for offline devices (as Azure): they GET the twin after connecting. */
        if (d && d->who == HUB_DEVICE && !d->kicked) {
            snprintf(topic, sizeof topic, "$iothub/twin/PATCH/properties/desired/?$version=%lld",
                     (long long)ver);
            publish_str(device, topic, out, 0);
        }
    }
    free(out);
}

static int on_message(int event, void *event_data, void *ud)
{
    struct mosquitto_evt_message *ed = event_data;
    struct hub *h = ud;
    struct hub_topic t;
    (void)event;
    struct hub_client *c = client_of(h, ed->client);
    if (!c || !hub_publish_allowed(c->who, self_of(c), ed->topic, ed->qos, ed->retain, &t))
        return MOSQ_ERR_ACL_DENIED; /* the ACL check already refused it; belt and braces */

    switch (t.route) {
    case HUB_ROUTE_PASS:
        return MOSQ_ERR_SUCCESS;
    case HUB_ROUTE_TWIN_GET:
        device_twin_get(h, c->id, t.rid);
        break;
    case HUB_ROUTE_TWIN_REPORTED:
        device_twin_report(h, c->id, t.rid, ed->payload, ed->payloadlen);
        break;
    case HUB_ROUTE_METHOD_RES:
        device_method_res(h, c->id, &t, ed->payload, ed->payloadlen);
        break;
    case HUB_ROUTE_SVC_METHOD:
        svc_method(h, c->id, &t, ed->payload, ed->payloadlen);
        break;
    case HUB_ROUTE_SVC_DESIRED:
    case HUB_ROUTE_SVC_TWIN_GET:
        svc_twin(h, c->id, &t, ed->payload, ed->payloadlen);
        break;
    }
    return SWALLOW;
}

/* ---- time: token expiry and method timeouts ---- */

static int on_tick(int event, void *event_data, void *ud)
{
    struct hub *h = ud;
    (void)event;
    (void)event_data;
    time_t now = time(NULL);
    if (now == h->last_scan_s)
        return MOSQ_ERR_SUCCESS;
    h->last_scan_s = now;
    storm_summary(h, now, false);

    /* Collect first, kick after: a kick runs on_disconnect, which edits the table. */
    char **ids = NULL;
    size_t n = 0;
    if (hub_clients_expired(&h->clients, (int64_t)now, h->grace_s, &ids, &n) == LADE_OK) {
        for (size_t i = 0; i < n; i++) {
            mosquitto_log_printf(MOSQ_LOG_NOTICE, "lade_hub: token of '%s' expired, disconnecting",
                                 ids[i]);
            mosquitto_kick_client_by_clientid(ids[i], false);
            free(ids[i]);
        }
        free(ids);
    }

    for (struct hub_call **pp = &h->calls; *pp;) {
        if ((*pp)->deadline_s <= (int64_t)now) {
            method_fail((*pp)->caller, (*pp)->device, 504, (*pp)->rid, "device did not answer");
            call_unlink(h, pp);
        } else {
            pp = &(*pp)->next;
        }
    }
    return MOSQ_ERR_SUCCESS;
}

static int on_disconnect(int event, void *event_data, void *ud)
{
    struct mosquitto_evt_disconnect *ed = event_data;
    struct hub *h = ud;
    (void)event;
    struct hub_client *c = client_of(h, ed->client);
    if (!c)
        return MOSQ_ERR_SUCCESS; /* refused, or an old connection replaced by a new one */
    char *id = strdup(c->id);
    enum hub_who who = c->who;
    bool kicked = c->kicked;
    hub_clients_remove(&h->clients, c->id);
    if (!id)
        return MOSQ_ERR_SUCCESS;
    if (who == HUB_DEVICE) {
        emit_event(id, "disconnected", kicked ? "token-expired" : NULL);
        /* Calls still waiting for this device will not be answered. */
        for (struct hub_call **pp = &h->calls; *pp;) {
            if (strcmp((*pp)->device, id) == 0) {
                method_fail((*pp)->caller, id, 404, (*pp)->rid, "device disconnected");
                call_unlink(h, pp);
            } else {
                pp = &(*pp)->next;
            }
        }
    }
    free(id);
    return MOSQ_ERR_SUCCESS;
}

/* ---- plugin entry points ---- */

static bool parse_count(const char *s, uint32_t max, uint32_t *out)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < 0 || v > (long long)max)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool parse_seconds(const char *s, int64_t *out)
{
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < 0 || v > 10LL * 365 * 24 * 3600)
        return false;
    *out = v;
    return true;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
    for (int i = 0; i < supported_version_count; i++)
        if (supported_versions[i] == 5)
            return 5;
    return -1;
}

static void hub_free(struct hub *h)
{
    if (!h)
        return;
    while (h->calls)
        call_unlink(h, &h->calls);
    hub_clients_free(&h->clients);
    lade_registry_close(h->reg);
    free(h);
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
                          struct mosquitto_opt *options, int option_count)
{
    const char *registry = NULL;
    int busy_ms = DEFAULT_BUSY_MS;
    uint32_t rate = DEFAULT_CONNECT_RATE, burst = 0;
    struct hub *h = calloc(1, sizeof *h);
    if (!h)
        return MOSQ_ERR_NOMEM;
    h->pid = identifier;
    h->max_ttl_s = DEFAULT_MAX_TTL_S;
    h->grace_s = DEFAULT_GRACE_S;
    h->method_timeout_s = DEFAULT_METHOD_TIMEOUT_S;
    lade_log_set_sink(log_sink, NULL);

    for (int i = 0; i < option_count; i++) {
        const char *k = options[i].key, *v = options[i].value;
        int64_t sec = 0;
        bool ok = true;
        if (!k || !v) {
            ok = false;
        } else if (strcmp(k, "registry") == 0) {
            registry = v;
        } else if (strcmp(k, "hub_host") == 0) {
            ok = *v && strlen(v) < sizeof h->hub_host && !strchr(v, '/');
            if (ok)
                snprintf(h->hub_host, sizeof h->hub_host, "%s", v);
        } else if (strcmp(k, "max_token_ttl_s") == 0) {
            ok = parse_seconds(v, &h->max_ttl_s) && h->max_ttl_s > 0;
        } else if (strcmp(k, "token_grace_s") == 0) {
            ok = parse_seconds(v, &h->grace_s);
        } else if (strcmp(k, "method_timeout_s") == 0) {
            ok = parse_seconds(v, &h->method_timeout_s) && h->method_timeout_s > 0;
        } else if (strcmp(k, "max_connect_rate") == 0) {
            ok = parse_count(v, LADE_TOKENBUCKET_MAX, &rate);
        } else if (strcmp(k, "connect_burst") == 0) {
            ok = parse_count(v, LADE_TOKENBUCKET_MAX, &burst);
        } else if (strcmp(k, "registry_busy_ms") == 0) {
            ok = parse_seconds(v, &sec) && sec <= 60000;
            busy_ms = (int)sec;
        } else {
            mosquitto_log_printf(MOSQ_LOG_ERR, "lade_hub: unknown option plugin_opt_%s", k);
            ok = false;
        }
        if (!ok) {
            mosquitto_log_printf(MOSQ_LOG_ERR, "lade_hub: bad value for plugin_opt_%s",
                                 k ? k : "?");
            hub_free(h);
            return MOSQ_ERR_INVAL;
        }
    }
    if (!registry || !h->hub_host[0]) {
        mosquitto_log_printf(MOSQ_LOG_ERR,
                             "lade_hub: plugin_opt_registry and plugin_opt_hub_host are required");
        hub_free(h);
        return MOSQ_ERR_INVAL;
    }
    lade_tokenbucket_init(&h->admit, rate, burst, lade_mono_ms());
    h->win_start_s = time(NULL);
    lade_err err = lade_registry_open(registry, &h->reg);
    if (err != LADE_OK) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "lade_hub: cannot open registry %s: %s", registry,
                             lade_strerror(err));
        hub_free(h);
        return MOSQ_ERR_UNKNOWN;
    }
    /* The broker's one thread waits at most this long for a portal/factory write lock. */
    lade_registry_set_busy_timeout(h->reg, busy_ms);

    struct {
        int event;
        MOSQ_FUNC_generic_callback cb;
    } cbs[] = {
        {MOSQ_EVT_BASIC_AUTH, on_basic_auth}, {MOSQ_EVT_ACL_CHECK, on_acl_check},
        {MOSQ_EVT_MESSAGE, on_message},       {MOSQ_EVT_TICK, on_tick},
        {MOSQ_EVT_DISCONNECT, on_disconnect},
    };
    for (size_t i = 0; i < sizeof cbs / sizeof cbs[0]; i++) {
        int rc = mosquitto_callback_register(identifier, cbs[i].event, cbs[i].cb, NULL, h);
        if (rc != MOSQ_ERR_SUCCESS) {
            for (size_t j = 0; j < i; j++)
                mosquitto_callback_unregister(identifier, cbs[j].event, cbs[j].cb, NULL);
            hub_free(h);
            return rc;
        }
    }
    *userdata = h;
    mosquitto_log_printf(MOSQ_LOG_NOTICE,
                         "lade_hub: hub %s, registry %s, max token ttl %lld s, grace %lld s",
                         h->hub_host, registry, (long long)h->max_ttl_s, (long long)h->grace_s);
    if (h->admit.rate_per_s)
        mosquitto_log_printf(MOSQ_LOG_NOTICE,
                             "lade_hub: admitting at most %u new device connections/s (burst %u)",
                             h->admit.rate_per_s, h->admit.burst);
    else
        mosquitto_log_printf(MOSQ_LOG_NOTICE, "lade_hub: no connection rate limit%s",
                             burst ? " (plugin_opt_connect_burst alone has no effect)" : "");
    return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
    struct hub *h = userdata;
    (void)options;
    (void)option_count;
    if (!h)
        return MOSQ_ERR_SUCCESS;
    storm_summary(h, time(NULL), true);
    mosquitto_callback_unregister(h->pid, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
    mosquitto_callback_unregister(h->pid, MOSQ_EVT_ACL_CHECK, on_acl_check, NULL);
    mosquitto_callback_unregister(h->pid, MOSQ_EVT_MESSAGE, on_message, NULL);
    mosquitto_callback_unregister(h->pid, MOSQ_EVT_TICK, on_tick, NULL);
    mosquitto_callback_unregister(h->pid, MOSQ_EVT_DISCONNECT, on_disconnect, NULL);
    hub_free(h);
    lade_log_set_sink(NULL, NULL);
    return MOSQ_ERR_SUCCESS;
}
