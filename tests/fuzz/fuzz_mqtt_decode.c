/* libFuzzer target: MQTT framing, every decoder (with re-encode round trips), and a session in
 * CONNECTED (or CONNECTING) state fed the same bytes through an in-memory transport.
 *
 * Input: byte 0 selects the session mode (bit 7: stay in CONNECTING) and the transport chunk size
 * (low bits, 0 = unlimited); the rest is broker → client traffic. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lade/log.h"
#include "lade/mqtt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static uint8_t scratch[1 << 17];

static bool str_same(struct lade_str a, struct lade_str b)
{
    return lade_str_eq(a, b);
}

/* decode(encode(decode(x))) == decode(x) for every packet kind we can encode. */
static void roundtrip(const struct lade_mqtt_frame *f)
{
    size_t n, size;
    struct lade_mqtt_frame g;
    switch (f->type) {
    case LADE_MQTT_CONNECT: {
        struct lade_mqtt_connect c, d;
        if (lade_mqtt_decode_connect(f, &c) != LADE_OK)
            return;
        if (c.will_qos > 1)
            return; /* decodable (QoS 2 will) but not encodable by design */
        CHECK(lade_mqtt_connect_size(&c, &size) == LADE_OK);
        CHECK(lade_mqtt_encode_connect(&c, scratch, sizeof scratch, &n) == LADE_OK && n == size);
        CHECK(lade_mqtt_frame(scratch, n, 0, &g) == LADE_OK && g.size == n);
        CHECK(lade_mqtt_decode_connect(&g, &d) == LADE_OK);
        CHECK(str_same(c.client_id, d.client_id) && str_same(c.username, d.username) &&
              str_same(c.password, d.password) && str_same(c.will_topic, d.will_topic) &&
              str_same(c.will_payload, d.will_payload) && c.keepalive_s == d.keepalive_s &&
              c.clean_session == d.clean_session && c.will_qos == d.will_qos);
        break;
    }
    case LADE_MQTT_PUBLISH: {
        struct lade_mqtt_publish p, d;
        if (lade_mqtt_decode_publish(f, &p) != LADE_OK)
            return;
        CHECK(lade_mqtt_publish_size(&p, &size) == LADE_OK);
        if (size > sizeof scratch)
            return;
        CHECK(lade_mqtt_encode_publish(&p, scratch, sizeof scratch, &n) == LADE_OK && n == size);
        CHECK(lade_mqtt_frame(scratch, n, 0, &g) == LADE_OK && g.size == n);
        CHECK(lade_mqtt_decode_publish(&g, &d) == LADE_OK);
        CHECK(str_same(p.topic, d.topic) && p.payload_len == d.payload_len && p.qos == d.qos &&
              p.dup == d.dup && p.retain == d.retain && p.packet_id == d.packet_id);
        CHECK(p.payload_len == 0 || memcmp(p.payload, d.payload, p.payload_len) == 0);
        break;
    }
    case LADE_MQTT_SUBSCRIBE:
    case LADE_MQTT_UNSUBSCRIBE: {
        static struct lade_mqtt_topic_filter arr[64], arr2[64];
        struct lade_mqtt_subscribe s, d;
        if (lade_mqtt_decode_subscribe(f, &s, arr, 64) != LADE_OK)
            return;
        bool sub = f->type == LADE_MQTT_SUBSCRIBE;
        CHECK((sub ? lade_mqtt_encode_subscribe(&s, scratch, sizeof scratch, &n)
                   : lade_mqtt_encode_unsubscribe(&s, scratch, sizeof scratch, &n)) == LADE_OK);
        CHECK(lade_mqtt_frame(scratch, n, 0, &g) == LADE_OK && g.size == n);
        CHECK(lade_mqtt_decode_subscribe(&g, &d, arr2, 64) == LADE_OK);
        CHECK(d.n == s.n && d.packet_id == s.packet_id);
        for (size_t i = 0; i < s.n; i++)
            CHECK(str_same(arr[i].filter, arr2[i].filter) && (!sub || arr[i].qos == arr2[i].qos));
        break;
    }
    case LADE_MQTT_SUBACK: {
        struct lade_mqtt_suback s, d;
        if (lade_mqtt_decode_suback(f, &s) != LADE_OK)
            return;
        CHECK(lade_mqtt_encode_suback(&s, scratch, sizeof scratch, &n) == LADE_OK);
        CHECK(lade_mqtt_frame(scratch, n, 0, &g) == LADE_OK);
        CHECK(lade_mqtt_decode_suback(&g, &d) == LADE_OK && d.n == s.n &&
              memcmp(d.codes, s.codes, s.n) == 0);
        break;
    }
    case LADE_MQTT_CONNACK: {
        struct lade_mqtt_connack c;
        if (lade_mqtt_decode_connack(f, &c) != LADE_OK)
            return;
        CHECK(lade_mqtt_encode_connack(&c, scratch, sizeof scratch, &n) == LADE_OK);
        CHECK(n == f->size || f->size > 4); /* f may use a non-minimal length */
        break;
    }
    default: {
        uint16_t id;
        (void)lade_mqtt_decode_ack(f, &id);
        (void)lade_mqtt_decode_empty(f);
        break;
    }
    }
}

static void codec(const uint8_t *data, size_t size)
{
    size_t off = 0;
    while (off < size) {
        struct lade_mqtt_frame f;
        lade_err e = lade_mqtt_frame(data + off, size - off, 0, &f);
        if (e != LADE_OK)
            return;
        CHECK(f.size <= size - off && f.body + f.body_len == data + off + f.size);
        /* every decoder on every frame: wrong types must be rejected, not misread */
        struct lade_mqtt_connect c;
        struct lade_mqtt_connack ca;
        struct lade_mqtt_publish p;
        struct lade_mqtt_suback sa;
        struct lade_mqtt_subscribe s;
        struct lade_mqtt_topic_filter arr[8];
        uint16_t id;
        (void)lade_mqtt_decode_connect(&f, &c);
        (void)lade_mqtt_decode_connack(&f, &ca);
        if (lade_mqtt_decode_publish(&f, &p) == LADE_OK) {
            CHECK(p.qos <= 1 && lade_mqtt_topic_valid(p.topic.p, p.topic.n));
            CHECK(p.qos == 0 || p.packet_id != 0);
        }
        (void)lade_mqtt_decode_ack(&f, &id);
        (void)lade_mqtt_decode_suback(&f, &sa);
        (void)lade_mqtt_decode_empty(&f);
        if (lade_mqtt_decode_subscribe(&f, &s, arr, 8) == LADE_OK) {
            for (size_t i = 0; i < s.n; i++)
                CHECK(lade_mqtt_filter_valid(arr[i].filter.p, arr[i].filter.n));
        }
        roundtrip(&f);
        off += f.size;
    }
}

/* ------------------------------------------------------------ session */

struct fake {
    const uint8_t *in;
    size_t in_len, in_off, chunk;
    size_t out_len;
};

static lade_err f_send(void *ctx, const uint8_t *buf, size_t len, size_t *done)
{
    struct fake *t = ctx;
    (void)buf;
    size_t k = t->chunk && len > t->chunk ? t->chunk : len;
    t->out_len += k;
    *done = k;
    return LADE_OK;
}

static lade_err f_recv(void *ctx, uint8_t *buf, size_t cap, size_t *done)
{
    struct fake *t = ctx;
    size_t k = t->in_len - t->in_off;
    if (t->chunk && k > t->chunk)
        k = t->chunk;
    if (k > cap)
        k = cap;
    if (k == 0)
        return LADE_ERR_AGAIN;
    memcpy(buf, t->in + t->in_off, k);
    t->in_off += k;
    *done = k;
    return LADE_OK;
}

static void on_message(void *ud, const struct lade_mqtt_publish *m)
{
    struct lade_mqtt_session *s = ud;
    CHECK(m->qos <= 1);
    /* Re-entrancy: answer some messages from inside the callback. */
    if (m->payload_len & 1)
        (void)lade_mqtt_publish(s, "reply", m->payload, m->payload_len, m->payload_len & 2 ? 1 : 0,
                                false, NULL);
}

static void discard(void *ud, enum lade_log_level level, const char *module, const char *line)
{
    (void)ud;
    (void)level;
    (void)module;
    (void)line;
}

static void session(const uint8_t *data, size_t size)
{
    static uint8_t rx[1024], tx[512], store[1024], subs[256];
    static struct lade_mqtt_inflight inflight[4];
    static struct lade_mqtt_session s;
    if (size < 1)
        return;
    bool connecting = data[0] & 0x80;
    struct fake t = {.in = (const uint8_t *)"\x20\x02\x00\x00", .in_len = 4, .chunk = data[0] & 7};
    struct lade_transport tr = {&t, f_send, f_recv};
    struct lade_mqtt_session_cfg cfg = {
        .client_id = "fuzz",
        .username = "u",
        .keepalive_s = 30,
        .connack_timeout_ms = 1000,
        .pingresp_timeout_ms = 1000,
        .max_packet = (data[0] & 0x40) ? 64 : sizeof rx,
        .rx_buf = rx,
        .rx_cap = sizeof rx,
        .tx_buf = tx,
        .tx_cap = sizeof tx,
        .inflight = inflight,
        .inflight_cap = 4,
        .store_buf = store,
        .store_cap = sizeof store,
        .sub_buf = subs,
        .sub_cap = sizeof subs,
    };
    struct lade_mqtt_callbacks cb = {.on_message = on_message};
    CHECK(lade_mqtt_session_init(&s, &cfg, &cb, &s) == LADE_OK);
    const char *filters[] = {"a/#"};
    const uint8_t qos[] = {1};
    CHECK(lade_mqtt_subscribe(&s, filters, qos, 1, NULL) == LADE_OK);
    CHECK(lade_mqtt_publish(&s, "t", "x", 1, 1, false, NULL) == LADE_OK);
    CHECK(lade_mqtt_session_start(&s, &tr, "pw", 0) == LADE_OK);
    if (!connecting) {
        CHECK(lade_mqtt_session_on_readable(&s, 0) == LADE_OK);
        CHECK(lade_mqtt_session_state(&s) == LADE_MQTT_CONNECTED);
    }
    CHECK(lade_mqtt_session_flush(&s, 0) == LADE_OK);
    uint64_t bytes_in = lade_mqtt_session_stats(&s)->bytes_in;

    t.in = data + 1;
    t.in_len = size - 1;
    t.in_off = 0;
    uint64_t now = 1;
    for (int round = 0; round < 64 && lade_mqtt_session_state(&s) != LADE_MQTT_DISCONNECTED;
         round++) {
        uint64_t next;
        if (lade_mqtt_session_on_readable(&s, now) != LADE_OK)
            break;
        if (lade_mqtt_session_wants_write(&s) && lade_mqtt_session_flush(&s, now) != LADE_OK)
            break;
        if (lade_mqtt_session_tick(&s, now, &next) != LADE_OK)
            break;
        CHECK(next > now);
        now += 20000;
        if (t.in_off == t.in_len && !lade_mqtt_session_wants_write(&s))
            break;
    }
    const struct lade_mqtt_stats *st = lade_mqtt_session_stats(&s);
    CHECK(st->bytes_in - bytes_in == t.in_off);
    CHECK(st->bytes_out == t.out_len);
    CHECK(lade_mqtt_session_inflight(&s) <= 4);
    lade_mqtt_session_lost(&s);
    CHECK(lade_mqtt_session_state(&s) == LADE_MQTT_DISCONNECTED);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool once;
    if (!once) {
        once = true;
        lade_log_set_sink(discard, NULL);
        lade_log_set_level(LADE_LOG_DEBUG);
    }
    codec(data, size);
    if (size)
        codec(data + 1, size - 1); /* the session's view of the same input */
    session(data, size);
    return 0;
}
