/* lade — Azure IoT Hub device dialect over MQTT 3.1.1: identity strings and topics.
 *
 * Pure: no I/O, no clock, no allocation. Builders write NUL-terminated text into the caller's
 * buffer and fail with LADE_ERR_NOSPACE rather than truncate (*len excludes the NUL).
 * Parsers return views into the topic they were given. See reference/iothub.md and
 * docs/iothub.md. SAS tokens live in sas.h.
 */
#ifndef LADE_IOTHUB_H
#define LADE_IOTHUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/codec.h"
#include "lade/err.h"

#define LADE_IOTHUB_API_VERSION   "2021-04-12"
#define LADE_IOTHUB_DEVICE_ID_MAX 128

/* Device ids are restricted to [A-Za-z0-9-], 1..128 characters (no encoding needed anywhere). */
bool lade_iothub_device_id_valid(const char *id);

/* "{hub}/{id}/?api-version=2021-04-12" */
lade_err lade_iothub_username(const char *hub_host, const char *device_id, char *out, size_t cap,
                              size_t *len) LADE_MUST_CHECK;

/* A telemetry property (key and value are URL-encoded by the builder). */
struct lade_iothub_prop {
    const char *key;
    const char *value;
};
/* "devices/{id}/messages/events/" followed by "k=v&k2=v2" when props are given. */
lade_err lade_iothub_telemetry_topic(const char *device_id, const struct lade_iothub_prop *props,
                                     size_t nprops, char *out, size_t cap,
                                     size_t *len) LADE_MUST_CHECK;
/* "devices/{id}/messages/devicebound/#" */
lade_err lade_iothub_c2d_filter(const char *device_id, char *out, size_t cap,
                                size_t *len) LADE_MUST_CHECK;
/* "$iothub/twin/GET/?$rid={rid}" */
lade_err lade_iothub_twin_get_topic(uint32_t rid, char *out, size_t cap,
                                    size_t *len) LADE_MUST_CHECK;
/* "$iothub/twin/PATCH/properties/reported/?$rid={rid}" */
lade_err lade_iothub_twin_report_topic(uint32_t rid, char *out, size_t cap,
                                       size_t *len) LADE_MUST_CHECK;
/* "$iothub/methods/res/{status}/?$rid={rid}" (rid echoed exactly as received) */
lade_err lade_iothub_method_response_topic(int status, struct lade_str rid, char *out, size_t cap,
                                           size_t *len) LADE_MUST_CHECK;

/* Subscriptions a device makes after every connect (wildcards of the dialect). */
#define LADE_IOTHUB_SUB_TWIN_RES     "$iothub/twin/res/#"
#define LADE_IOTHUB_SUB_TWIN_DESIRED "$iothub/twin/PATCH/properties/desired/#"
#define LADE_IOTHUB_SUB_METHODS      "$iothub/methods/POST/#"

enum lade_iothub_kind {
    LADE_IOTHUB_UNKNOWN = 0,
    LADE_IOTHUB_TWIN_RESPONSE, /* $iothub/twin/res/{status}/?$rid=..[&$version=..] */
    LADE_IOTHUB_TWIN_DESIRED,  /* $iothub/twin/PATCH/properties/desired/?$version=.. */
    LADE_IOTHUB_METHOD,        /* $iothub/methods/POST/{name}/?$rid=.. */
    LADE_IOTHUB_C2D,           /* devices/{id}/messages/devicebound/{props} */
};

/* What a topic received by a device means. Views point into the topic. */
struct lade_iothub_msg {
    enum lade_iothub_kind kind;
    int status;             /* twin response status (200, 204, 400, 429, ...) */
    struct lade_str rid;    /* $rid as received (twin response, method) */
    bool has_version;       /* $version present */
    int64_t version;        /* twin $version */
    struct lade_str method; /* method name */
    struct lade_str props;  /* C2D property bag, URL-encoded, may be empty */
};

/* Classifies a topic a device received. Unknown topics give kind LADE_IOTHUB_UNKNOWN and
 * LADE_OK; a recognised prefix with a malformed rest (bad status, bad $version, missing $rid,
 * empty method name, a C2D topic for another device) gives LADE_ERR_PROTO. */
lade_err lade_iothub_parse_topic(const char *device_id, const char *topic, size_t topic_len,
                                 struct lade_iothub_msg *out) LADE_MUST_CHECK;

/* Finds key in a "k=v&k2=v2" property bag (keys compared as sent). */
bool lade_iothub_prop_get(struct lade_str bag, const char *key, struct lade_str *value);

#endif
