/* libFuzzer target: the topics a service receives from the hub (lade_svc_topic_parse, used by
 * the service client src/common/svc.c) and the method-name check (lade_svc_method_valid).
 *
 * Input: the topic, copied to a buffer of its exact size with no NUL (an over-read is an ASan
 * report). Invariants: only OK or PROTO; every view stays inside the topic; a classified topic
 * names a valid device id; *_RES carry a status 100..999 and a $rid of 1..64 unreserved
 * characters; hub_made only on METHOD_RES; version is -1 or a decimal that was in the topic; a
 * topic rebuilt from the parsed fields parses to the same fields. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lade/iothub.h"
#include "lade/svc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static void in_buf(struct lade_str s, const char *p, size_t n)
{
    if (s.n == 0)
        return;
    CHECK(s.p && s.p >= p && s.p + s.n <= p + n);
}

static void check_device(struct lade_str d)
{
    char id[LADE_IOTHUB_DEVICE_ID_MAX + 1];
    CHECK(d.n >= 1 && d.n <= LADE_IOTHUB_DEVICE_ID_MAX);
    memcpy(id, d.p, d.n);
    id[d.n] = 0;
    CHECK(lade_iothub_device_id_valid(id));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *topic = malloc(size ? size : 1);
    if (!topic)
        return 0;
    memcpy(topic, data, size);

    struct lade_svc_topic t;
    lade_err err = lade_svc_topic_parse(topic, size, &t);
    CHECK(err == LADE_OK || err == LADE_ERR_PROTO);
    in_buf(t.device, topic, size);
    in_buf(t.rid, topic, size);
    in_buf(t.props, topic, size);
    if (err == LADE_OK && t.kind != LADE_SVC_T_UNKNOWN) {
        check_device(t.device);
        CHECK(t.version >= -1);
        CHECK(!t.hub_made || t.kind == LADE_SVC_T_METHOD_RES);
        if (t.kind == LADE_SVC_T_METHOD_RES || t.kind == LADE_SVC_T_TWIN_RES) {
            CHECK(t.status >= 100 && t.status <= 999);
            CHECK(t.rid.n >= 1 && t.rid.n <= 64);
            for (size_t i = 0; i < t.rid.n; i++)
                CHECK(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~",
                             t.rid.p[i]) &&
                      t.rid.p[i] != 0);
        }
        if (t.kind == LADE_SVC_T_REPORTED)
            CHECK(t.version >= 0);
        /* Rebuild and parse again: the same fields come back. memcpy, not %.*s: views may hold
         * a NUL. */
        char rebuilt[4096 + 200];
        size_t n = 0;
        int w = 0;
        switch (t.kind) {
        case LADE_SVC_T_METHOD_RES:
        case LADE_SVC_T_TWIN_RES:
            w = snprintf(rebuilt, sizeof rebuilt, "%s%.*s/%d/?$rid=",
                         t.kind == LADE_SVC_T_METHOD_RES ? "$lade/svc/methods-res/"
                                                         : "$lade/svc/twin-res/",
                         (int)t.device.n, t.device.p, t.status);
            n = (size_t)w;
            memcpy(rebuilt + n, t.rid.p, t.rid.n);
            n += t.rid.n;
            if (t.version >= 0)
                n += (size_t)snprintf(rebuilt + n, sizeof rebuilt - n, "&$version=%lld",
                                      (long long)t.version);
            if (t.hub_made)
                n += (size_t)snprintf(rebuilt + n, sizeof rebuilt - n, "&$origin=hub");
            break;
        case LADE_SVC_T_REPORTED:
            n = (size_t)snprintf(rebuilt, sizeof rebuilt, "$lade/svc/reported/%.*s/?$version=%lld",
                                 (int)t.device.n, t.device.p, (long long)t.version);
            break;
        case LADE_SVC_T_EVENT:
            n = (size_t)snprintf(rebuilt, sizeof rebuilt, "$lade/svc/events/%.*s", (int)t.device.n,
                                 t.device.p);
            break;
        case LADE_SVC_T_TELEMETRY:
            n = (size_t)snprintf(rebuilt, sizeof rebuilt, "devices/%.*s/messages/events/",
                                 (int)t.device.n, t.device.p);
            memcpy(rebuilt + n, t.props.p ? t.props.p : "", t.props.n);
            n += t.props.n;
            break;
        case LADE_SVC_T_UNKNOWN:
            break;
        }
        struct lade_svc_topic u;
        CHECK(lade_svc_topic_parse(rebuilt, n, &u) == LADE_OK);
        CHECK(u.kind == t.kind && u.status == t.status && u.version == t.version &&
              u.hub_made == t.hub_made);
        CHECK(lade_str_eq(u.device, t.device) && lade_str_eq(u.rid, t.rid) &&
              lade_str_eq(u.props, t.props));
    }

    /* Method names: valid ones are exactly 1..128 unreserved characters. */
    char name[160];
    size_t nn = size < sizeof name - 1 ? size : sizeof name - 1;
    memcpy(name, data, nn);
    name[nn] = 0;
    if (lade_svc_method_valid(name)) {
        size_t len = strlen(name);
        CHECK(len >= 1 && len <= LADE_SVC_METHOD_MAX);
        CHECK(strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~") ==
              len);
    }
    free(topic);
    return 0;
}
