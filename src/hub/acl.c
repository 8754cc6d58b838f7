/* Hub ACL and topic classification (docs/hub.md "ACL"). Pure: no I/O, no allocation.
 *
 * Default deny: a topic is allowed only if it matches one of the exact forms below. Device ids
 * are [A-Za-z0-9-], so a device's own id can never contain MQTT wildcards or '/'.
 */
#include <string.h>

#include "hub.h"
#include "lade/registry.h"

static bool is_unreserved(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static bool token_ok(struct lade_str s, size_t max)
{
    if (s.n == 0 || s.n > max)
        return false;
    for (size_t i = 0; i < s.n; i++)
        if (!is_unreserved(s.p[i]))
            return false;
    return true;
}

bool hub_rid_valid(struct lade_str rid)
{
    return token_ok(rid, HUB_RID_MAX);
}

/* If s starts with prefix, advances *rest past it. */
static bool eat(const char *s, const char *prefix, const char **rest)
{
    size_t n = strlen(prefix);
    if (strncmp(s, prefix, n) != 0)
        return false;
    *rest = s + n;
    return true;
}

/* Reads a path segment (up to '/' or end) as a view; *rest points at the '/' or the end. */
static struct lade_str segment(const char *s, const char **rest)
{
    const char *e = strchr(s, '/');
    if (!e)
        e = s + strlen(s);
    *rest = e;
    return (struct lade_str){s, (size_t)(e - s)};
}

static bool id_ok(struct lade_str id)
{
    char buf[130];
    if (id.n == 0 || id.n > 128)
        return false;
    memcpy(buf, id.p, id.n);
    buf[id.n] = 0;
    return lade_registry_id_valid(buf);
}

/* q is what follows "?": "k=v&k=v"; finds exactly one valid $rid. Other keys must be
 * [$A-Za-z0-9._~-] names with unreserved/percent-encoded values; they are ignored. */
static bool query_rid(const char *q, struct lade_str *rid)
{
    bool found = false;
    const char *p = q;
    for (;;) {
        const char *amp = strchr(p, '&');
        const char *e = amp ? amp : p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(e - p));
        if (!eq || eq == p)
            return false;
        struct lade_str k = {p, (size_t)(eq - p)};
        struct lade_str v = {eq + 1, (size_t)(e - eq - 1)};
        for (size_t i = 0; i < v.n; i++)
            if (!is_unreserved(v.p[i]) && v.p[i] != '%')
                return false;
        if (lade_str_eq_c(k, "$rid")) {
            if (found || !hub_rid_valid(v))
                return false;
            found = true;
            *rid = v;
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return found;
}

/* "{prefix}{self}{suffix}" exactly, or followed by "/..." when open is true. */
static bool own_topic(const char *topic, const char *prefix, const char *self, const char *suffix,
                      bool open)
{
    const char *r;
    if (!self || !eat(topic, prefix, &r) || !eat(r, self, &r) || !eat(r, suffix, &r))
        return false;
    return *r == 0 || (open && *r == '/');
}

static bool device_publish(const char *self, const char *topic, struct hub_topic *out)
{
    const char *r;
    if (own_topic(topic, "devices/", self, "/messages/events", true)) {
        out->route = HUB_ROUTE_PASS;
        return true;
    }
    if (eat(topic, "$iothub/twin/GET/?", &r)) {
        out->route = HUB_ROUTE_TWIN_GET;
        return query_rid(r, &out->rid);
    }
    if (eat(topic, "$iothub/twin/PATCH/properties/reported/?", &r)) {
        out->route = HUB_ROUTE_TWIN_REPORTED;
        return query_rid(r, &out->rid);
    }
    if (eat(topic, "$iothub/methods/res/", &r)) {
        struct lade_str st = segment(r, &r);
        if (st.n == 0 || st.n > HUB_STATUS_DIGITS || !eat(r, "/?", &r))
            return false;
        int v = 0;
        for (size_t i = 0; i < st.n; i++) {
            if (st.p[i] < '0' || st.p[i] > '9')
                return false;
            v = v * 10 + (st.p[i] - '0');
        }
        out->route = HUB_ROUTE_METHOD_RES;
        out->status = v;
        return query_rid(r, &out->rid);
    }
    return false;
}

static bool service_publish(const char *topic, struct hub_topic *out)
{
    const char *r;
    if (eat(topic, "devices/", &r)) { /* cloud-to-device message */
        struct lade_str id = segment(r, &r);
        if (!id_ok(id) || !eat(r, "/messages/devicebound", &r))
            return false;
        out->route = HUB_ROUTE_PASS;
        out->device = id;
        return *r == 0 || *r == '/';
    }
    if (eat(topic, HUB_SVC_PREFIX "methods/", &r)) {
        out->device = segment(r, &r);
        if (!id_ok(out->device) || *r != '/')
            return false;
        out->method = segment(r + 1, &r);
        if (!token_ok(out->method, HUB_METHOD_MAX) || !eat(r, "/?", &r))
            return false;
        out->route = HUB_ROUTE_SVC_METHOD;
        return query_rid(r, &out->rid);
    }
    if (eat(topic, HUB_SVC_PREFIX "twin/", &r)) {
        out->device = segment(r, &r);
        if (!id_ok(out->device))
            return false;
        if (eat(r, "/desired/?", &r))
            out->route = HUB_ROUTE_SVC_DESIRED;
        else if (eat(r, "/get/?", &r))
            out->route = HUB_ROUTE_SVC_TWIN_GET;
        else
            return false;
        return query_rid(r, &out->rid);
    }
    return false;
}

bool hub_publish_allowed(enum hub_who who, const char *self, const char *topic, int qos,
                         bool retain, struct hub_topic *out)
{
    struct hub_topic tmp;
    if (!out)
        out = &tmp;
    memset(out, 0, sizeof *out);
    /* Azure closes on QoS 2 and does not store retained messages; we refuse both. */
    if (!topic || !self || qos < 0 || qos > 1 || retain)
        return false;
    bool ok = false;
    if (who == HUB_DEVICE)
        ok = device_publish(self, topic, out);
    else if (who == HUB_SERVICE)
        ok = service_publish(topic, out);
    if (!ok)
        memset(out, 0, sizeof *out);
    return ok;
}

/* Service subscription filters (without a $share/{group}/ prefix). */
static bool service_filter(const char *f)
{
    const char *r;
    if (eat(f, HUB_SVC_PREFIX, &r))
        return true; /* its own topics, wildcards included */
    if (eat(f, "devices/", &r)) {
        struct lade_str id = segment(r, &r);
        if (!(lade_str_eq_c(id, "+") || id_ok(id)))
            return false;
        return strcmp(r, "/messages/events/#") == 0;
    }
    return false;
}

bool hub_subscribe_allowed(enum hub_who who, const char *self, const char *filter)
{
    const char *r;
    if (!filter || !self)
        return false;
    if (who == HUB_DEVICE) {
        return own_topic(filter, "devices/", self, "/messages/devicebound/#", false) ||
               strcmp(filter, "$iothub/twin/res/#") == 0 ||
               strcmp(filter, "$iothub/twin/PATCH/properties/desired/#") == 0 ||
               strcmp(filter, "$iothub/methods/POST/#") == 0;
    }
    if (who == HUB_SERVICE) {
        if (eat(filter, "$share/", &r)) {
            struct lade_str group = segment(r, &r);
            if (!token_ok(group, 64) || *r != '/')
                return false;
            filter = r + 1;
        }
        return service_filter(filter);
    }
    return false;
}

bool hub_read_allowed(enum hub_who who, const char *self, const char *topic)
{
    const char *r;
    if (!topic || !self)
        return false;
    if (who == HUB_DEVICE)
        return own_topic(topic, "devices/", self, "/messages/devicebound", true);
    if (who == HUB_SERVICE) {
        if (eat(topic, HUB_SVC_PREFIX, &r))
            return true;
        if (eat(topic, "devices/", &r)) {
            struct lade_str id = segment(r, &r);
            return id_ok(id) && eat(r, "/messages/events", &r) && (*r == 0 || *r == '/');
        }
    }
    return false;
}

static char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

bool hub_device_username_ok(const char *hub_host, const char *id, const char *username)
{
    if (!hub_host || !id || !username)
        return false;
    size_t hn = strlen(hub_host);
    for (size_t i = 0; i < hn; i++)
        if (!username[i] || lower(username[i]) != lower(hub_host[i]))
            return false;
    const char *r = username + hn;
    if (*r++ != '/' || !eat(r, id, &r) || !eat(r, "/?", &r))
        return false;
    /* Any api-version (and other parameters, e.g. the C SDK's DeviceClientType). */
    bool version = false;
    for (const char *p = r;;) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        if (n > 12 && strncmp(p, "api-version=", 12) == 0)
            version = true;
        if (!amp)
            break;
        p = amp + 1;
    }
    return version;
}
