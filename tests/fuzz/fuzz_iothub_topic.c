/* libFuzzer target: the IoT Hub topics a device receives from the network
 * (lade_iothub_parse_topic) and the property-bag lookup it relies on (lade_iothub_prop_get).
 *
 * Input: "{device id}\n{topic}". The device id may be anything (the parser must refuse a C2D
 * topic when it is invalid); the topic is copied to a buffer of its exact size with no NUL, so
 * an over-read is an ASan report. Invariants: every view stays inside the topic; each kind's
 * fields satisfy the header's contract (status 100..999, $rid usable in a response topic,
 * method name 1..128 without '/', C2D only for our own id); a METHOD or TWIN_RESPONSE topic
 * rebuilt from the parsed fields parses to the same fields; prop_get returns a value that is
 * a whole "key=value" item of the bag. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lade/iothub.h"

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

static bool is_empty(struct lade_str s)
{
    return s.p == NULL && s.n == 0;
}

/* prop_get contract: the value is the rest of an item that starts at the bag's start or after
 * '&' and is either "key=value" or exactly "key" (empty value); the value ends at the bag's end
 * or at '&'. */
static bool item_at(struct lade_str bag, const char *item, const char *key, size_t klen)
{
    return item >= bag.p && memcmp(item, key, klen) == 0 && (item == bag.p || item[-1] == '&');
}

static void check_prop(struct lade_str bag, const char *key)
{
    struct lade_str v = {NULL, 0};
    if (!lade_iothub_prop_get(bag, key, &v))
        return;
    size_t klen = strlen(key);
    CHECK(v.p != NULL);
    CHECK(v.p >= bag.p && v.p + v.n <= bag.p + bag.n);
    CHECK(!memchr(v.p, '&', v.n));
    const char *end = v.p + v.n;
    CHECK(end == bag.p + bag.n || *end == '&');
    size_t before = (size_t)(v.p - bag.p);
    bool with_eq = before >= klen + 1 && v.p[-1] == '=' && item_at(bag, v.p - 1 - klen, key, klen);
    bool bare = v.n == 0 && klen > 0 && before >= klen && item_at(bag, v.p - klen, key, klen);
    CHECK(with_eq || bare);
}

static void check_props(struct lade_str bag, struct lade_str fuzz_key)
{
    static const char *const keys[] = {"$rid", "$version", "$.ct", "$.ce", "", "a", "=", "a="};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        check_prop(bag, keys[i]);
    char key[64];
    if (fuzz_key.n < sizeof key && !memchr(fuzz_key.p, 0, fuzz_key.n)) {
        memcpy(key, fuzz_key.p, fuzz_key.n);
        key[fuzz_key.n] = 0;
        check_prop(bag, key);
    }
}

static void reparse(const char *dev, const char *text, size_t len, const struct lade_iothub_msg *m)
{
    struct lade_iothub_msg r;
    CHECK(lade_iothub_parse_topic(dev, text, len, &r) == LADE_OK);
    CHECK(r.kind == m->kind && r.status == m->status && lade_str_eq(r.rid, m->rid) &&
          lade_str_eq(r.method, m->method) && r.has_version == m->has_version &&
          (!m->has_version || r.version == m->version));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t dlen = nl ? (size_t)(nl - data) : 0;
    if (dlen > 200)
        dlen = 200;
    char dev[201];
    memcpy(dev, data, dlen);
    dev[dlen] = 0;
    if (!nl)
        strcpy(dev, "dev-1"); /* no id line: a valid id and the whole input is the topic */
    const uint8_t *tp = nl ? nl + 1 : data;
    size_t n = size - (size_t)(tp - data);

    char *topic = malloc(n ? n : 1);
    if (!topic)
        return 0;
    memcpy(topic, tp, n);

    struct lade_iothub_msg m;
    lade_err err = lade_iothub_parse_topic(dev, topic, n, &m);
    bool dev_ok = lade_iothub_device_id_valid(dev);
    char buf[512];
    size_t len;
    switch (err) {
    case LADE_OK:
        break;
    case LADE_ERR_PROTO:
        goto props;
    case LADE_ERR_INVAL:
        CHECK(!dev_ok && n >= 8 && memcmp(topic, "devices/", 8) == 0);
        goto props;
    default:
        abort();
    }
    in_buf(m.rid, topic, n);
    in_buf(m.method, topic, n);
    in_buf(m.props, topic, n);
    switch (m.kind) {
    case LADE_IOTHUB_UNKNOWN:
        CHECK(is_empty(m.rid) && is_empty(m.method) && is_empty(m.props) && !m.has_version);
        break;
    case LADE_IOTHUB_TWIN_RESPONSE: {
        CHECK(m.status >= 100 && m.status <= 999 && m.rid.n > 0 && m.method.n == 0);
        CHECK(!m.has_version || m.version >= 0);
        /* The rid must be echoable into a response topic. */
        CHECK(lade_iothub_method_response_topic(200, m.rid, buf, sizeof buf, &len) == LADE_OK);
        int k;
        if (m.has_version)
            k = snprintf(buf, sizeof buf, "$iothub/twin/res/%d/?$rid=%.*s&$version=%lld", m.status,
                         (int)m.rid.n, m.rid.p, (long long)m.version);
        else
            k = snprintf(buf, sizeof buf, "$iothub/twin/res/%d/?$rid=%.*s", m.status, (int)m.rid.n,
                         m.rid.p);
        CHECK(k > 0 && (size_t)k < sizeof buf);
        reparse(dev, buf, (size_t)k, &m);
        break;
    }
    case LADE_IOTHUB_TWIN_DESIRED: {
        CHECK(m.has_version && m.version >= 0 && m.rid.n == 0 && m.method.n == 0);
        int k = snprintf(buf, sizeof buf, "$iothub/twin/PATCH/properties/desired/?$version=%lld",
                         (long long)m.version);
        CHECK(k > 0 && (size_t)k < sizeof buf);
        reparse(dev, buf, (size_t)k, &m);
        break;
    }
    case LADE_IOTHUB_METHOD: {
        CHECK(m.method.n >= 1 && m.method.n <= 128 && !memchr(m.method.p, '/', m.method.n));
        CHECK(lade_iothub_method_response_topic(200, m.rid, buf, sizeof buf, &len) == LADE_OK);
        /* memcpy, not "%.*s": the name may hold bytes a C string cannot (MQTT refuses U+0000
         * in topics, but this parser is not where that is enforced). */
        static const char pre[] = "$iothub/methods/POST/", mid[] = "/?$rid=";
        size_t k = 0;
        memcpy(buf + k, pre, sizeof pre - 1);
        k += sizeof pre - 1;
        memcpy(buf + k, m.method.p, m.method.n);
        k += m.method.n;
        memcpy(buf + k, mid, sizeof mid - 1);
        k += sizeof mid - 1;
        memcpy(buf + k, m.rid.p, m.rid.n); /* 21 + 128 + 7 + 64 < sizeof buf */
        k += m.rid.n;
        reparse(dev, buf, k, &m);
        break;
    }
    case LADE_IOTHUB_C2D: {
        /* Only ever for our own id, and props is the tail of the topic. */
        CHECK(dev_ok);
        CHECK(lade_iothub_c2d_filter(dev, buf, sizeof buf, &len) == LADE_OK);
        len--; /* drop the '#' */
        CHECK(n >= len && memcmp(topic, buf, len) == 0);
        CHECK(m.props.n == n - len && (m.props.n == 0 || m.props.p == topic + len));
        check_props(m.props, (struct lade_str){topic, n < 8 ? n : 8});
        break;
    }
    default:
        abort();
    }
props:
    /* Every bag shape, not only the ones the parser accepts. */
    {
        const char *q = n ? memchr(topic, '?', n) : NULL;
        struct lade_str bag =
            q ? (struct lade_str){q + 1, n - (size_t)(q + 1 - topic)} : (struct lade_str){topic, n};
        check_props(bag, (struct lade_str){(const char *)data, dlen});
    }
    free(topic);
    return 0;
}
