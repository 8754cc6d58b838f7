/* lade — a service-identity client of lade's hub (src/common/svc.c, docs/lade-cmd.md).
 *
 * A service (the portal's backend, lade-cmd) connects to the hub as client id and user name
 * "svc:{name}" with a SAS token signed by its own key (sr = {hub}, skn = {name}), over TLS on
 * the caller's event loop, and then
 *   - calls direct methods on devices        $lade/svc/methods/{id}/{method}/?$rid=R
 *   - reads twins and patches desired props   $lade/svc/twin/{id}/get|desired/?$rid=R
 *   - receives telemetry, lifecycle events and reported-property broadcasts
 * (topics: docs/hub.md "Service topics").
 *
 * Non-blocking: nothing here waits; everything runs from the loop (one context per identity,
 * no globals; many can share a loop and a TLS context). The shell follows the charger's cloud
 * link: TLS (tls.h, driven by the loop) carries an MQTT session (mqtt.h, memory owned by the
 * context), the token is renewed at 80-90 % of its life by a clean reconnect (resuming the TLS
 * session), and a lost link is retried forever with jittered exponential back-off (an auth
 * refusal never faster than a tenth of the maximum). The key and the tokens are never logged.
 *
 * States (on_state reports every change and every failed attempt, also one that fails without
 * leaving WAITING, e.g. an unresolvable name; docs/lade-cmd.md has the diagram):
 *   STOPPED     not started, or lade_svc_stop
 *   WAITING     back-off timer armed before the next attempt (err/reason say why)
 *   CONNECTING  TCP + TLS handshake in progress
 *   MQTT        CONNECT sent, waiting for CONNACK
 *   ONLINE      CONNACK accepted: requests may be sent
 *
 * Requests (lade_svc_call, lade_svc_twin_get, lade_svc_twin_patch):
 *   - arguments are checked first, without any network: a device id must satisfy
 *     lade_iothub_device_id_valid, a method name must be 1..128 of [A-Za-z0-9._~-] (what the
 *     hub routes; anything else would be silently refused by its ACL) → LADE_ERR_INVAL;
 *   - a request made while not ONLINE is NOT queued: it fails with LADE_ERR_STATE (a method
 *     such as "authorize" executed minutes later, after a reconnect, would surprise whoever
 *     asked). Wait for on_state(ONLINE) and retry;
 *   - requests are published with QoS 0 (never resent after a reconnect: a method must not run
 *     twice); other synchronous errors: LADE_ERR_FULL (tx has no room now), LADE_ERR_NOSPACE /
 *     LADE_ERR_TOO_BIG (the request can never fit), LADE_ERR_NOMEM;
 *   - when the call returns LADE_OK, the callback runs exactly once, later, from the loop
 *     (never from inside the request call), with one of
 *       err LADE_OK           status + body as the hub delivered them (device's answer, or a
 *                             hub-made one: hub_made is true, e.g. 404 device not connected,
 *                             504 device did not answer within the hub's method timeout)
 *       err LADE_ERR_TIMEOUT  no reply within timeout_ms; status 504, no body
 *       err LADE_ERR_CLOSED   the link went down (or lade_svc_stop/free) before the reply;
 *                             status 0. A method may or may not have run on the device.
 *     A reply that arrives after its call timed out or was failed is dropped.
 *
 * Callbacks may make requests and call lade_svc_subscribe_events and lade_svc_stop (a stop
 * from inside a callback takes effect when the callback returns); they must not call
 * lade_svc_free. Views passed to callbacks are valid only during the call.
 */
#ifndef LADE_SVC_H
#define LADE_SVC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/codec.h"
#include "lade/err.h"
#include "lade/sas.h"

struct lade_loop;
struct lade_tls_ctx;
struct lade_svc;

#define LADE_SVC_NAME_MAX   128 /* service names: [A-Za-z0-9-]{1,128}, like device ids */
#define LADE_SVC_METHOD_MAX 128 /* method names: [A-Za-z0-9._~-]{1,128} */
#define LADE_SVC_HOST_MAX   253

enum lade_svc_state {
    LADE_SVC_STOPPED = 0,
    LADE_SVC_WAITING,
    LADE_SVC_CONNECTING,
    LADE_SVC_MQTT,
    LADE_SVC_ONLINE,
};
const char *lade_svc_state_name(enum lade_svc_state s);

/* ---- the service file written by `lade-factory service` ----
 * "key = value" lines, '#' comments: service_name, service_key (Base64), hub_host, and
 * optionally hub_port. */
struct lade_svc_file {
    char name[LADE_SVC_NAME_MAX + 1];
    uint8_t key[LADE_SAS_KEY_MAX];
    size_t key_len;
    char hub_host[LADE_SVC_HOST_MAX + 1];
    uint16_t hub_port; /* 0 when the file does not set it */
};
/* Reads and checks a service file. On error, why (may be NULL) receives a one-line reason
 * naming the line ("line 3: service_key is not valid Base64"); values are never echoed.
 * Errors: LADE_ERR_NOT_FOUND (no such file), LADE_ERR_IO (cannot read it: permissions, a
 * directory), LADE_ERR_CONFIG (bad line, unknown or repeated key, missing key, bad name, bad
 * Base64 key or one longer than LADE_SAS_KEY_MAX bytes), LADE_ERR_INVAL (NULL). Wipe out->key
 * when done (lade_svc_file_wipe). */
lade_err lade_svc_file_load(const char *path, struct lade_svc_file *out, char *why,
                            size_t why_cap) LADE_MUST_CHECK;
void lade_svc_file_wipe(struct lade_svc_file *f);

/* ---- what the callbacks receive ---- */

enum lade_svc_op { LADE_SVC_OP_METHOD = 0, LADE_SVC_OP_TWIN_GET, LADE_SVC_OP_TWIN_PATCH };

struct lade_svc_result {
    enum lade_svc_op op;
    lade_err err;        /* LADE_OK, LADE_ERR_TIMEOUT or LADE_ERR_CLOSED (see above) */
    int status;          /* hub/device status; 504 on a local timeout; 0 when CLOSED */
    bool hub_made;       /* the hub answered on the device's behalf (methods only) */
    const char *device;  /* as given to the request */
    const char *method;  /* METHOD: the method name; NULL otherwise */
    const uint8_t *body; /* reply payload (not NUL-terminated); NULL when none */
    size_t body_len;
    int64_t version; /* TWIN_PATCH 204: the desired $version it produced; -1 otherwise */
};
typedef void (*lade_svc_reply_cb)(void *ud, const struct lade_svc_result *r);

enum lade_svc_event_kind {
    LADE_SVC_EV_TELEMETRY = 0, /* devices/{id}/messages/events/{props} */
    LADE_SVC_EV_LIFECYCLE,     /* $lade/svc/events/{id}: {"event":"connected"|"disconnected",...} */
    LADE_SVC_EV_REPORTED,      /* $lade/svc/reported/{id}/?$version=V: the reported patch */
};
struct lade_svc_event {
    enum lade_svc_event_kind kind;
    const char *device;    /* NUL-terminated copy */
    struct lade_str props; /* TELEMETRY: the property bag as sent (URL-encoded, may be empty) */
    int64_t version;       /* REPORTED: $version; -1 otherwise */
    const uint8_t *payload;
    size_t payload_len;
};

struct lade_svc_callbacks {
    /* Every state change, and every failure (then st may equal the previous state: WAITING).
     * err/reason: why a link ended or an attempt failed (LADE_OK/"" for planned changes).
     * LADE_ERR_CERT (hub certificate not trusted), LADE_ERR_AUTH (CONNACK 4/5: key, name or clock
     * wrong), LADE_ERR_IO/LADE_ERR_TIMEOUT (hub unreachable), LADE_ERR_RESOLVE, LADE_ERR_TLS,
     * LADE_ERR_CLOSED, LADE_ERR_PROTO ... */
    void (*on_state)(void *ud, enum lade_svc_state st, lade_err err, const char *reason);
    /* Telemetry, lifecycle events and reported patches, once lade_svc_subscribe_events(true). */
    void (*on_event)(void *ud, const struct lade_svc_event *ev);
};

struct lade_svc_opts {
    struct lade_loop *loop; /* required; borrowed, must outlive the context */
    const char *hub_host;   /* required: resolved, checked against the certificate, token sr */
    uint16_t port;          /* 0 = 8883 */
    /* Trust: a shared TLS context (borrowed; must outlive the context), or else ca_file. */
    struct lade_tls_ctx *tls;
    const char *ca_file;
    const char *hosts_file;      /* names → addresses (lade_resolve_static); NULL = /etc/hosts */
    const char *service_name;    /* required, [A-Za-z0-9-]{1,128}; client id "svc:{name}" */
    const uint8_t *key;          /* required; copied (wiped on free) */
    size_t key_len;              /* 1..LADE_SAS_KEY_MAX */
    uint16_t keepalive_s;        /* 0 = 60 */
    uint32_t token_ttl_s;        /* 0 = 3600; at least 5 */
    uint32_t connect_timeout_ms; /* TCP and TLS handshake each; 0 = 10000 */
    uint32_t backoff_min_ms, backoff_max_ms; /* 0 = 500 / 30000 */
    uint32_t call_timeout_ms;                /* timeout_ms 0 in a request means this; 0 = 30000 */
    bool persistent_session; /* CleanSession = 0: the hub keeps QoS 1 broadcasts while away */
    size_t max_packet;       /* largest packet accepted from the hub; 0 = 260 KiB */
    struct lade_svc_callbacks cb;
    void *ud;
};

struct lade_svc_status {
    enum lade_svc_state state;
    uint32_t connects;       /* CONNACKs accepted */
    uint32_t failures;       /* attempts or links that ended in an error */
    uint32_t token_renewals; /* planned reconnects with a fresh token */
    uint32_t tls_resumptions;
    lade_err last_error;
    char last_reason[160];
    uint32_t next_retry_ms; /* delay chosen after the last failure */
    size_t pending;         /* requests awaiting a reply */
};

/* Creates a STOPPED context. Errors: LADE_ERR_INVAL (missing loop/host/name/key, a name that is
 * not [A-Za-z0-9-]{1,128}, a key over LADE_SAS_KEY_MAX, token_ttl_s < 5), LADE_ERR_CONFIG
 * (CA bundle unreadable or without certificates), LADE_ERR_NOMEM, LADE_ERR_TLS. */
lade_err lade_svc_new(struct lade_svc **out, const struct lade_svc_opts *opts) LADE_MUST_CHECK;
/* Stops (failing pending requests with LADE_ERR_CLOSED), wipes the key and frees. Not from a
 * callback. NULL is ignored. */
void lade_svc_free(struct lade_svc *svc);

/* STOPPED → WAITING, first attempt at once. LADE_ERR_STATE if already started. */
lade_err lade_svc_start(struct lade_svc *svc) LADE_MUST_CHECK;
/* Sends DISCONNECT when online (best effort), fails pending requests with LADE_ERR_CLOSED,
 * → STOPPED. Event subscriptions are kept for the next start. Idempotent. */
void lade_svc_stop(struct lade_svc *svc);

enum lade_svc_state lade_svc_state(const struct lade_svc *svc);
void lade_svc_status(const struct lade_svc *svc, struct lade_svc_status *out);

/* Calls method on device with a JSON body (sent as is; NULL = empty payload). timeout_ms 0 =
 * opts.call_timeout_ms. See the contract above. */
lade_err lade_svc_call(struct lade_svc *svc, const char *device, const char *method,
                       const char *json, uint32_t timeout_ms, lade_svc_reply_cb cb,
                       void *ud) LADE_MUST_CHECK;
/* Reads the full twin: 200 with {"desired":{...,"$version":N},"reported":{...}}, or 404. */
lade_err lade_svc_twin_get(struct lade_svc *svc, const char *device, uint32_t timeout_ms,
                           lade_svc_reply_cb cb, void *ud) LADE_MUST_CHECK;
/* Merges json (an RFC 7396 merge patch, a JSON object) into the desired properties: 204 with
 * result version = the new desired $version; 400 (bad JSON, '$' names, too deep), 404, 413. */
lade_err lade_svc_twin_patch(struct lade_svc *svc, const char *device, const char *json,
                             uint32_t timeout_ms, lade_svc_reply_cb cb, void *ud) LADE_MUST_CHECK;

/* on = true: subscribe (now if online, and after every reconnect) to all devices' telemetry
 * (QoS 1), lifecycle events and reported patches, delivered to on_event. on = false: stop
 * delivering them. The MQTT session has no UNSUBSCRIBE yet, so the subscription itself stays
 * for this context's life (messages keep arriving and are dropped). Errors: LADE_ERR_FULL. */
lade_err lade_svc_subscribe_events(struct lade_svc *svc, bool on) LADE_MUST_CHECK;

/* ---- pure helpers (exposed for tests and fuzzing) ---- */

/* Method names the hub routes: 1..LADE_SVC_METHOD_MAX of [A-Za-z0-9._~-]. */
bool lade_svc_method_valid(const char *method);

enum lade_svc_topic_kind {
    LADE_SVC_T_UNKNOWN = 0,
    LADE_SVC_T_METHOD_RES, /* $lade/svc/methods-res/{id}/{status}/?$rid=R[&$origin=hub] */
    LADE_SVC_T_TWIN_RES,   /* $lade/svc/twin-res/{id}/{status}/?$rid=R[&$version=V] */
    LADE_SVC_T_REPORTED,   /* $lade/svc/reported/{id}/?$version=V */
    LADE_SVC_T_EVENT,      /* $lade/svc/events/{id} */
    LADE_SVC_T_TELEMETRY,  /* devices/{id}/messages/events[/{props}] */
};
struct lade_svc_topic {
    enum lade_svc_topic_kind kind;
    struct lade_str device; /* a valid device id */
    int status;             /* *_RES: 100..999 */
    struct lade_str rid;    /* *_RES */
    int64_t version;        /* TWIN_RES with $version, REPORTED; -1 when absent */
    bool hub_made;          /* METHOD_RES carrying $origin=hub */
    struct lade_str props;  /* TELEMETRY: property bag (may be empty) */
};
/* Classifies a topic a service received. Views point into topic. Unknown topics: kind
 * UNKNOWN and LADE_OK; a known prefix with a malformed rest (bad device id, status, $version,
 * missing $rid or one that is not 1..64 of [A-Za-z0-9._~-]): LADE_ERR_PROTO. */
lade_err lade_svc_topic_parse(const char *topic, size_t len,
                              struct lade_svc_topic *out) LADE_MUST_CHECK;

#endif
