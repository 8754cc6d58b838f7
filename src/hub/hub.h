/* lade hub plugin — private interfaces (see docs/hub.md).
 *
 * acl.c is pure (no mosquitto, no I/O): who may publish, subscribe and receive what, and what a
 * publish means for routing. clients.c keeps the authenticated connections and pending method
 * calls. plugin.c is the Mosquitto glue.
 */
#ifndef LADE_HUB_H
#define LADE_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/codec.h"
#include "lade/err.h"

#define HUB_SVC_PREFIX    "$lade/svc/"
#define HUB_SVC_CLIENT    "svc:" /* client id and username prefix of service identities */
#define HUB_RID_MAX       64
#define HUB_METHOD_MAX    128
#define HUB_STATUS_DIGITS 6

enum hub_who {
    HUB_DEVICE = 1,
    HUB_SERVICE = 2,
};

/* What an allowed publish asks the hub to do. */
enum hub_route {
    HUB_ROUTE_PASS = 0,      /* ordinary delivery to subscribers (telemetry, C2D) */
    HUB_ROUTE_TWIN_GET,      /* device: $iothub/twin/GET/?$rid= */
    HUB_ROUTE_TWIN_REPORTED, /* device: $iothub/twin/PATCH/properties/reported/?$rid= */
    HUB_ROUTE_METHOD_RES,    /* device: $iothub/methods/res/{status}/?$rid= */
    HUB_ROUTE_SVC_METHOD,    /* service: $lade/svc/methods/{id}/{method}/?$rid= */
    HUB_ROUTE_SVC_DESIRED,   /* service: $lade/svc/twin/{id}/desired/?$rid= */
    HUB_ROUTE_SVC_TWIN_GET,  /* service: $lade/svc/twin/{id}/get/?$rid= */
};

/* Views into the topic. */
struct hub_topic {
    enum hub_route route;
    int status;             /* METHOD_RES */
    struct lade_str device; /* SVC_*: target device id */
    struct lade_str method; /* SVC_METHOD */
    struct lade_str rid;    /* all but PASS */
};

/* rid: [A-Za-z0-9._~-]{1,64} — it is echoed into topics, so nothing that MQTT or a query string
 * would interpret. */
bool hub_rid_valid(struct lade_str rid);

/* Decides a publish by `who` (self = device id, or service name without "svc:"). QoS 2 and
 * retained publishes are refused for everyone. On true, *out says how to route it. */
bool hub_publish_allowed(enum hub_who who, const char *self, const char *topic, int qos,
                         bool retain, struct hub_topic *out);
bool hub_subscribe_allowed(enum hub_who who, const char *self, const char *filter);
/* Delivery through the subscription tree. Messages the plugin addresses to one client with
 * mosquitto_broker_publish(clientid, ...) are not read-checked by Mosquitto 2.0.11. */
bool hub_read_allowed(enum hub_who who, const char *self, const char *topic);

/* Username of a device: "{hub}/{id}/?api-version=..." (host case-insensitive; any non-empty
 * api-version; other query parameters allowed). */
bool hub_device_username_ok(const char *hub_host, const char *id, const char *username);

/* ---- clients.c ---- */

struct hub_client {
    char *id;         /* client id: device id or "svc:{name}" */
    const void *conn; /* the struct mosquitto * that authenticated; only compared */
    enum hub_who who;
    int64_t expiry_s; /* token expiry */
    bool kicked;
    struct hub_client *next;
};

struct hub_clients {
    struct hub_client **bucket;
    size_t nbucket, count;
};

struct hub_client *hub_clients_find(struct hub_clients *t, const char *id);
/* Inserts or replaces the entry for id. */
lade_err hub_clients_put(struct hub_clients *t, const char *id, const void *conn, enum hub_who who,
                         int64_t expiry_s) LADE_MUST_CHECK;
void hub_clients_remove(struct hub_clients *t, const char *id);
void hub_clients_free(struct hub_clients *t);
/* Collects (malloc'd copies of) the ids of clients whose token is past expiry_s + grace_s and
 * that were not kicked yet, marking them kicked. *ids is a malloc'd array of *n strings. */
lade_err hub_clients_expired(struct hub_clients *t, int64_t now_s, int64_t grace_s, char ***ids,
                             size_t *n) LADE_MUST_CHECK;

/* A method call waiting for a device's answer. */
struct hub_call {
    char device[129];
    char rid[HUB_RID_MAX + 1];
    char *caller; /* service client id */
    int64_t deadline_s;
    struct hub_call *next;
};

#endif
