/* Azure IoT Hub MQTT topics (reference/iothub.md, "Topics"). */
#include "lade/iothub.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

bool lade_iothub_device_id_valid(const char *id)
{
    if (!id)
        return false;
    size_t n = strlen(id);
    if (n == 0 || n > LADE_IOTHUB_DEVICE_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return false;
    }
    return true;
}

static lade_err fmt(char *out, size_t cap, size_t *len, const char *f, ...)
    __attribute__((format(printf, 4, 5)));
static lade_err fmt(char *out, size_t cap, size_t *len, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(out, cap, f, ap);
    va_end(ap);
    if (n < 0)
        return LADE_ERR_INVAL;
    if ((size_t)n >= cap)
        return LADE_ERR_NOSPACE;
    if (len)
        *len = (size_t)n;
    return LADE_OK;
}

lade_err lade_iothub_username(const char *hub_host, const char *device_id, char *out, size_t cap,
                              size_t *len)
{
    if (!hub_host || !*hub_host || !lade_iothub_device_id_valid(device_id))
        return LADE_ERR_INVAL;
    return fmt(out, cap, len, "%s/%s/?api-version=" LADE_IOTHUB_API_VERSION, hub_host, device_id);
}

lade_err lade_iothub_telemetry_topic(const char *device_id, const struct lade_iothub_prop *props,
                                     size_t nprops, char *out, size_t cap, size_t *len)
{
    if (!lade_iothub_device_id_valid(device_id))
        return LADE_ERR_INVAL;
    size_t n;
    lade_err err = fmt(out, cap, &n, "devices/%s/messages/events/", device_id);
    if (err)
        return err;
    for (size_t i = 0; i < nprops; i++) {
        if (!props[i].key || !*props[i].key || !props[i].value)
            return LADE_ERR_INVAL;
        if (i > 0) {
            if (n + 2 > cap)
                return LADE_ERR_NOSPACE;
            out[n++] = '&';
        }
        size_t k;
        err = lade_url_encode(props[i].key, strlen(props[i].key), out + n, cap - n, &k);
        if (err)
            return err;
        n += k;
        if (n + 2 > cap)
            return LADE_ERR_NOSPACE;
        out[n++] = '=';
        err = lade_url_encode(props[i].value, strlen(props[i].value), out + n, cap - n, &k);
        if (err)
            return err;
        n += k;
    }
    out[n] = '\0';
    if (len)
        *len = n;
    return LADE_OK;
}

lade_err lade_iothub_c2d_filter(const char *device_id, char *out, size_t cap, size_t *len)
{
    if (!lade_iothub_device_id_valid(device_id))
        return LADE_ERR_INVAL;
    return fmt(out, cap, len, "devices/%s/messages/devicebound/#", device_id);
}

lade_err lade_iothub_twin_get_topic(uint32_t rid, char *out, size_t cap, size_t *len)
{
    return fmt(out, cap, len, "$iothub/twin/GET/?$rid=%u", rid);
}

lade_err lade_iothub_twin_report_topic(uint32_t rid, char *out, size_t cap, size_t *len)
{
    return fmt(out, cap, len, "$iothub/twin/PATCH/properties/reported/?$rid=%u", rid);
}

static bool rid_valid(struct lade_str rid)
{
    if (rid.n == 0 || rid.n > 64)
        return false;
    for (size_t i = 0; i < rid.n; i++) {
        char c = rid.p[i];
        /* A rid goes back into a topic: refuse anything that could change its meaning. */
        if (c == '&' || c == '/' || c == '#' || c == '+' || c == '?' || (unsigned char)c < 0x21 ||
            (unsigned char)c > 0x7e)
            return false;
    }
    return true;
}

lade_err lade_iothub_method_response_topic(int status, struct lade_str rid, char *out, size_t cap,
                                           size_t *len)
{
    if (status < 100 || status > 999 || !rid_valid(rid))
        return LADE_ERR_INVAL;
    return fmt(out, cap, len, "$iothub/methods/res/%d/?$rid=%.*s", status, (int)rid.n, rid.p);
}

bool lade_iothub_prop_get(struct lade_str bag, const char *key, struct lade_str *value)
{
    size_t klen = strlen(key);
    size_t i = 0;
    while (i <= bag.n) {
        size_t end = i;
        while (end < bag.n && bag.p[end] != '&')
            end++;
        const char *item = bag.p + i;
        size_t ilen = end - i;
        if (ilen > klen && memcmp(item, key, klen) == 0 && item[klen] == '=') {
            *value = (struct lade_str){item + klen + 1, ilen - klen - 1};
            return true;
        }
        if (ilen == klen && klen > 0 && memcmp(item, key, klen) == 0) {
            *value = (struct lade_str){item + klen, 0};
            return true;
        }
        i = end + 1;
    }
    return false;
}

/* Strict decimal: 1..18 digits, no sign, no spaces. */
static bool parse_i64(struct lade_str s, int64_t *out)
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

/* Splits "{head}/?{bag}" at the first "/?"; returns false if absent. */
static bool split_bag(struct lade_str s, struct lade_str *head, struct lade_str *bag)
{
    for (size_t i = 0; i + 1 < s.n; i++) {
        if (s.p[i] == '/' && s.p[i + 1] == '?') {
            *head = (struct lade_str){s.p, i};
            *bag = (struct lade_str){s.p + i + 2, s.n - i - 2};
            return true;
        }
    }
    return false;
}

lade_err lade_iothub_parse_topic(const char *device_id, const char *topic, size_t topic_len,
                                 struct lade_iothub_msg *out)
{
    memset(out, 0, sizeof *out);
    struct lade_str t = {topic, topic_len};
    struct lade_str head, bag;
    static const char twin_res[] = "$iothub/twin/res/";
    static const char twin_desired[] = "$iothub/twin/PATCH/properties/desired/";
    static const char methods[] = "$iothub/methods/POST/";

    if (lade_str_has_prefix(t, twin_res)) {
        struct lade_str rest = {t.p + sizeof twin_res - 1, t.n - (sizeof twin_res - 1)};
        int64_t status;
        if (!split_bag(rest, &head, &bag) || !parse_i64(head, &status) || status < 100 ||
            status > 999)
            return LADE_ERR_PROTO;
        if (!lade_iothub_prop_get(bag, "$rid", &out->rid) || !rid_valid(out->rid))
            return LADE_ERR_PROTO;
        struct lade_str v;
        if (lade_iothub_prop_get(bag, "$version", &v)) {
            if (!parse_i64(v, &out->version))
                return LADE_ERR_PROTO;
            out->has_version = true;
        }
        out->status = (int)status;
        out->kind = LADE_IOTHUB_TWIN_RESPONSE;
        return LADE_OK;
    }
    if (lade_str_has_prefix(t, twin_desired)) {
        struct lade_str rest = {t.p + sizeof twin_desired - 1, t.n - (sizeof twin_desired - 1)};
        /* The rest is "?$version=N" (the trailing '/' of the prefix is the "/?" split). */
        if (rest.n < 1 || rest.p[0] != '?')
            return LADE_ERR_PROTO;
        bag = (struct lade_str){rest.p + 1, rest.n - 1};
        struct lade_str v;
        if (!lade_iothub_prop_get(bag, "$version", &v) || !parse_i64(v, &out->version))
            return LADE_ERR_PROTO;
        out->has_version = true;
        out->kind = LADE_IOTHUB_TWIN_DESIRED;
        return LADE_OK;
    }
    if (lade_str_has_prefix(t, methods)) {
        struct lade_str rest = {t.p + sizeof methods - 1, t.n - (sizeof methods - 1)};
        if (!split_bag(rest, &head, &bag) || head.n == 0 || head.n > 128)
            return LADE_ERR_PROTO;
        for (size_t i = 0; i < head.n; i++)
            if (head.p[i] == '/')
                return LADE_ERR_PROTO;
        if (!lade_iothub_prop_get(bag, "$rid", &out->rid) || !rid_valid(out->rid))
            return LADE_ERR_PROTO;
        out->method = head;
        out->kind = LADE_IOTHUB_METHOD;
        return LADE_OK;
    }
    if (lade_str_has_prefix(t, "devices/")) {
        char prefix[LADE_IOTHUB_DEVICE_ID_MAX + 40];
        size_t n;
        if (!lade_iothub_device_id_valid(device_id))
            return LADE_ERR_INVAL;
        if (fmt(prefix, sizeof prefix, &n, "devices/%s/messages/devicebound/", device_id))
            return LADE_ERR_INVAL;
        if (!lade_str_has_prefix(t, prefix))
            return LADE_ERR_PROTO; /* C2D for someone else must never be acted on */
        out->props = (struct lade_str){t.p + n, t.n - n};
        out->kind = LADE_IOTHUB_C2D;
        return LADE_OK;
    }
    return LADE_OK;
}
