/* Unit tests for the MQTT session: an in-memory transport and a fake broker built on the codec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lade/log.h"
#include "lade/mqtt.h"

/* ------------------------------------------------------------ in-memory transport */

struct pipe {
    uint8_t buf[1 << 16];
    size_t len; /* bytes written */
    size_t off; /* bytes read */
};

struct net {
    struct pipe c2s, s2c;
    size_t chunk;       /* most bytes moved per call (1 = byte at a time) */
    size_t send_budget; /* bytes the client may still send before AGAIN */
    lade_err recv_err;  /* returned by recv once s2c is drained (AGAIN or CLOSED) */
};

static struct net g_net;

static lade_err t_send(void *ctx, const uint8_t *buf, size_t len, size_t *done)
{
    struct net *n = ctx;
    size_t k = len < n->chunk ? len : n->chunk;
    if (k > n->send_budget)
        k = n->send_budget;
    if (k > sizeof n->c2s.buf - n->c2s.len)
        k = sizeof n->c2s.buf - n->c2s.len;
    if (k == 0)
        return LADE_ERR_AGAIN;
    memcpy(n->c2s.buf + n->c2s.len, buf, k);
    n->c2s.len += k;
    n->send_budget -= k;
    *done = k;
    return LADE_OK;
}

static lade_err t_recv(void *ctx, uint8_t *buf, size_t cap, size_t *done)
{
    struct net *n = ctx;
    size_t avail = n->s2c.len - n->s2c.off;
    size_t k = avail < n->chunk ? avail : n->chunk;
    if (k > cap)
        k = cap;
    if (k == 0)
        return n->recv_err;
    memcpy(buf, n->s2c.buf + n->s2c.off, k);
    n->s2c.off += k;
    *done = k;
    return LADE_OK;
}

static const struct lade_transport g_t = {&g_net, t_send, t_recv};

static void net_reset(size_t chunk)
{
    memset(&g_net, 0, sizeof g_net);
    g_net.chunk = chunk;
    g_net.send_budget = SIZE_MAX;
    g_net.recv_err = LADE_ERR_AGAIN;
}

/* ------------------------------------------------------------ fake broker */

static void broker_put(const uint8_t *p, size_t n)
{
    assert_true(n <= sizeof g_net.s2c.buf - g_net.s2c.len);
    memcpy(g_net.s2c.buf + g_net.s2c.len, p, n);
    g_net.s2c.len += n;
}

/* Next packet the client sent; false if none complete. The frame points into the pipe. */
static bool broker_next(struct lade_mqtt_frame *f)
{
    lade_err e =
        lade_mqtt_frame(g_net.c2s.buf + g_net.c2s.off, g_net.c2s.len - g_net.c2s.off, 0, f);
    if (e == LADE_ERR_AGAIN)
        return false;
    assert_int_equal(e, LADE_OK);
    g_net.c2s.off += f->size;
    return true;
}

static struct lade_mqtt_frame broker_expect(int type)
{
    struct lade_mqtt_frame f;
    assert_true(broker_next(&f));
    assert_string_equal(lade_mqtt_type_name(f.type), lade_mqtt_type_name(type));
    return f;
}

static void broker_expect_nothing(void)
{
    assert_int_equal(g_net.c2s.len, g_net.c2s.off);
}

static void broker_connack(bool sp, uint8_t rc)
{
    uint8_t b[4];
    size_t n;
    struct lade_mqtt_connack c = {sp, rc};
    assert_int_equal(lade_mqtt_encode_connack(&c, b, sizeof b, &n), LADE_OK);
    broker_put(b, n);
}

static void broker_ack(int type, uint16_t id)
{
    uint8_t b[4];
    size_t n;
    assert_int_equal(lade_mqtt_encode_ack(type, id, b, sizeof b, &n), LADE_OK);
    broker_put(b, n);
}

static void broker_suback(uint16_t id, const uint8_t *codes, size_t nc)
{
    uint8_t b[64];
    size_t n;
    struct lade_mqtt_suback s = {id, codes, nc};
    assert_int_equal(lade_mqtt_encode_suback(&s, b, sizeof b, &n), LADE_OK);
    broker_put(b, n);
}

static void broker_publish(const char *topic, const char *payload, uint8_t qos, uint16_t id)
{
    uint8_t b[512];
    size_t n;
    struct lade_mqtt_publish p = {.topic = lade_str_c(topic),
                                  .payload = (const uint8_t *)payload,
                                  .payload_len = strlen(payload),
                                  .qos = qos,
                                  .packet_id = id};
    assert_int_equal(lade_mqtt_encode_publish(&p, b, sizeof b, &n), LADE_OK);
    broker_put(b, n);
}

static void broker_empty(int type)
{
    uint8_t b[2];
    size_t n;
    assert_int_equal(lade_mqtt_encode_empty(type, b, sizeof b, &n), LADE_OK);
    broker_put(b, n);
}

/* ------------------------------------------------------------ client fixture */

struct rec {
    int connacks;
    bool sp;
    uint8_t rc;
    int messages;
    char topic[64], payload[256];
    uint8_t qos;
    bool dup;
    int pubacks;
    uint16_t last_puback;
    int subacks;
    uint16_t last_suback;
    uint8_t codes[8];
    size_t ncodes;
    /* on_message may publish a reply (re-entrancy) */
    bool reply;
    lade_err reply_err;
};

static struct rec g_rec;

static void cb_connack(void *ud, bool sp, uint8_t rc)
{
    struct rec *r = ud;
    r->connacks++;
    r->sp = sp;
    r->rc = rc;
}

static struct lade_mqtt_session g_s;

static void cb_message(void *ud, const struct lade_mqtt_publish *m)
{
    struct rec *r = ud;
    r->messages++;
    assert_true(m->topic.n < sizeof r->topic && m->payload_len < sizeof r->payload);
    memcpy(r->topic, m->topic.p, m->topic.n);
    r->topic[m->topic.n] = 0;
    memcpy(r->payload, m->payload, m->payload_len);
    r->payload[m->payload_len] = 0;
    r->qos = m->qos;
    r->dup = m->dup;
    if (r->reply)
        r->reply_err = lade_mqtt_publish(&g_s, "reply", "r", 1, 0, false, NULL);
}

static void cb_puback(void *ud, uint16_t id)
{
    struct rec *r = ud;
    r->pubacks++;
    r->last_puback = id;
}

static void cb_suback(void *ud, uint16_t id, const uint8_t *codes, size_t n)
{
    struct rec *r = ud;
    r->subacks++;
    r->last_suback = id;
    assert_true(n <= sizeof r->codes);
    memcpy(r->codes, codes, n);
    r->ncodes = n;
}

static const struct lade_mqtt_callbacks g_cb = {cb_connack, cb_message, cb_puback, cb_suback};

static uint8_t g_rx[512], g_tx[512], g_store[512], g_subs[256];
static struct lade_mqtt_inflight g_inflight[4];

static struct lade_mqtt_session_cfg base_cfg(void)
{
    return (struct lade_mqtt_session_cfg){
        .client_id = "dev-1",
        .username = "hub/dev-1/?api-version=2021-04-12",
        .keepalive_s = 10,
        .clean_session = false,
        .connack_timeout_ms = 5000,
        .pingresp_timeout_ms = 3000,
        .max_packet = sizeof g_rx,
        .rx_buf = g_rx,
        .rx_cap = sizeof g_rx,
        .tx_buf = g_tx,
        .tx_cap = sizeof g_tx,
        .inflight = g_inflight,
        .inflight_cap = 4,
        .store_buf = g_store,
        .store_cap = sizeof g_store,
        .sub_buf = g_subs,
        .sub_cap = sizeof g_subs,
    };
}

static void setup_cfg(const struct lade_mqtt_session_cfg *cfg, size_t chunk)
{
    net_reset(chunk);
    memset(&g_rec, 0, sizeof g_rec);
    assert_int_equal(lade_mqtt_session_init(&g_s, cfg, &g_cb, &g_rec), LADE_OK);
}

static void setup(size_t chunk)
{
    struct lade_mqtt_session_cfg cfg = base_cfg();
    setup_cfg(&cfg, chunk);
}

/* Flush until done, however small the chunks. */
static void flush_all(uint64_t now)
{
    lade_err e;
    for (int i = 0; i < 10000 && (e = lade_mqtt_session_flush(&g_s, now)) == LADE_ERR_AGAIN; i++)
        ;
    assert_int_equal(e, LADE_OK);
    assert_false(lade_mqtt_session_wants_write(&g_s));
}

/* start → CONNECT at the broker → CONNACK accepted. */
static void connect_ok(uint64_t now, const char *password)
{
    assert_int_equal(lade_mqtt_session_start(&g_s, &g_t, password, now), LADE_OK);
    assert_int_equal(lade_mqtt_session_state(&g_s), LADE_MQTT_CONNECTING);
    assert_true(lade_mqtt_session_wants_write(&g_s));
    flush_all(now);
    struct lade_mqtt_frame f = broker_expect(LADE_MQTT_CONNECT);
    struct lade_mqtt_connect c;
    assert_int_equal(lade_mqtt_decode_connect(&f, &c), LADE_OK);
    assert_true(lade_str_eq_c(c.client_id, "dev-1"));
    broker_connack(false, 0);
    assert_int_equal(lade_mqtt_session_on_readable(&g_s, now), LADE_OK);
    assert_int_equal(lade_mqtt_session_state(&g_s), LADE_MQTT_CONNECTED);
}

/* ------------------------------------------------------------ tests */

static void test_init_rejects_bad_config(void **state)
{
    (void)state;
    struct lade_mqtt_session_cfg cfg = base_cfg();
    cfg.max_packet = cfg.rx_cap + 1;
    assert_int_equal(lade_mqtt_session_init(&g_s, &cfg, NULL, NULL), LADE_ERR_CONFIG);
    cfg = base_cfg();
    cfg.connack_timeout_ms = 0;
    assert_int_equal(lade_mqtt_session_init(&g_s, &cfg, NULL, NULL), LADE_ERR_CONFIG);
    cfg = base_cfg();
    cfg.pingresp_timeout_ms = 0;
    assert_int_equal(lade_mqtt_session_init(&g_s, &cfg, NULL, NULL), LADE_ERR_CONFIG);
    cfg = base_cfg();
    cfg.client_id = NULL;
    assert_int_equal(lade_mqtt_session_init(&g_s, &cfg, NULL, NULL), LADE_ERR_CONFIG);
    cfg = base_cfg();
    cfg.store_buf = NULL;
    assert_int_equal(lade_mqtt_session_init(&g_s, &cfg, NULL, NULL), LADE_ERR_CONFIG);
    cfg = base_cfg();
    assert_int_equal(lade_mqtt_session_init(&g_s, &cfg, NULL, NULL), LADE_OK);
    assert_int_equal(lade_mqtt_session_state(&g_s), LADE_MQTT_DISCONNECTED);
    assert_int_equal(lade_mqtt_session_on_readable(&g_s, 0), LADE_ERR_STATE);
    assert_int_equal(lade_mqtt_session_flush(&g_s, 0), LADE_ERR_STATE);
}

static void test_connect_packet_and_subscriptions_restored(void **state)
{
    (void)state;
    setup(SIZE_MAX);
    const char *f1[] = {"devices/dev-1/messages/devicebound/#"};
    const char *f2[] = {"$iothub/methods/POST/#", "$iothub/twin/res/#"};
    const uint8_t q1[] = {1}, q2[] = {0, 0};
    uint16_t id = 99;
    /* Remembered while disconnected: nothing sent, no id yet. */
    assert_int_equal(lade_mqtt_subscribe(&g_s, f1, q1, 1, &id), LADE_OK);
    assert_int_equal(id, 0);
    assert_int_equal(lade_mqtt_subscribe(&g_s, f2, q2, 2, &id), LADE_OK);

    assert_int_equal(lade_mqtt_session_start(&g_s, &g_t, "SharedAccessSignature sr=x", 100),
                     LADE_OK);
    flush_all(100);
    struct lade_mqtt_frame f = broker_expect(LADE_MQTT_CONNECT);
    struct lade_mqtt_connect c;
    assert_int_equal(lade_mqtt_decode_connect(&f, &c), LADE_OK);
    assert_true(lade_str_eq_c(c.client_id, "dev-1"));
    assert_true(c.has_username && lade_str_eq_c(c.username, "hub/dev-1/?api-version=2021-04-12"));
    assert_true(c.has_password && lade_str_eq_c(c.password, "SharedAccessSignature sr=x"));
    assert_false(c.clean_session);
    assert_int_equal(c.keepalive_s, 10);
    broker_expect_nothing();

    for (int round = 0; round < 2; round++) {
        broker_connack(round == 1, 0);
        assert_int_equal(lade_mqtt_session_on_readable(&g_s, 200), LADE_OK);
        assert_int_equal(lade_mqtt_session_state(&g_s), LADE_MQTT_CONNECTED);
        assert_int_equal(g_rec.connacks, round + 1);
        assert_int_equal(g_rec.sp, round == 1);
        assert_true(lade_mqtt_session_wants_write(&g_s));
        flush_all(200);
        struct lade_mqtt_subscribe sub;
        struct lade_mqtt_topic_filter arr[4];
        f = broker_expect(LADE_MQTT_SUBSCRIBE);
        assert_int_equal(lade_mqtt_decode_subscribe(&f, &sub, arr, 4), LADE_OK);
        assert_int_equal(sub.n, 1);
        assert_true(lade_str_eq_c(arr[0].filter, f1[0]));
        assert_int_equal(arr[0].qos, 1);
        uint16_t id1 = sub.packet_id;
        f = broker_expect(LADE_MQTT_SUBSCRIBE);
        assert_int_equal(lade_mqtt_decode_subscribe(&f, &sub, arr, 4), LADE_OK);
        assert_int_equal(sub.n, 2);
        assert_true(lade_str_eq_c(arr[0].filter, f2[0]));
        assert_true(lade_str_eq_c(arr[1].filter, f2[1]));
        assert_int_not_equal(sub.packet_id, id1);
        broker_expect_nothing();
        const uint8_t codes[] = {0, 0x80};
        broker_suback(sub.packet_id, codes, 2);
        assert_int_equal(lade_mqtt_session_on_readable(&g_s, 300), LADE_OK);
        assert_int_equal(g_rec.subacks, round + 1);
        assert_int_equal(g_rec.last_suback, sub.packet_id);
        assert_int_equal(g_rec.ncodes, 2);
        assert_int_equal(g_rec.codes[1], 0x80);
        /* reconnect: the same subscriptions go out again after the next CONNACK */
        lade_mqtt_session_lost(&g_s);
        assert_int_equal(lade_mqtt_session_state(&g_s), LADE_MQTT_DISCONNECTED);
        assert_int_equal(lade_mqtt_session_start(&g_s, &g_t, "pw", 400), LADE_OK);
        flush_all(400);
        broker_expect(LADE_MQTT_CONNECT);
    }

    /* A subscription added while connected goes out at once with its id. */
    broker_connack(false, 0);
    assert_int_equal(lade_mqtt_session_on_readable(&g_s, 500), LADE_OK);
    flush_all(500);
    broker_expect(LADE_MQTT_SUBSCRIBE);
    broker_expect(LADE_MQTT_SUBSCRIBE);
    const char *f3[] = {"a/+"};
    assert_int_equal(lade_mqtt_subscribe(&g_s, f3, q1, 1, &id), LADE_OK);
    assert_int_not_equal(id, 0);
    flush_all(500);
    f = broker_expect(LADE_MQTT_SUBSCRIBE);
    assert_int_equal((f.body[0] << 8) | f.body[1], id);
    /* rejects */
    const char *bad[] = {"a/#/b"};
    assert_int_equal(lade_mqtt_subscribe(&g_s, bad, q1, 1, &id), LADE_ERR_INVAL);
    const uint8_t q2only[] = {2};
    assert_int_equal(lade_mqtt_subscribe(&g_s, f3, q2only, 1, &id), LADE_ERR_INVAL);
}

static void test_subscription_store_full(void **state)
{
    (void)state;
    struct lade_mqtt_session_cfg cfg = base_cfg();
    cfg.sub_cap = 16;
    setup_cfg(&cfg, SIZE_MAX);
    const char *f[] = {"abcdefghij"}; /* record: 2 + 2 + 10 + 1 = 15 bytes */
    const uint8_t q[] = {0};
    assert_int_equal(lade_mqtt_subscribe(&g_s, f, q, 1, NULL), LADE_OK);
    assert_int_equal(lade_mqtt_subscribe(&g_s, f, q, 1, NULL), LADE_ERR_FULL);
}

static char g_log[4096];

static void log_sink(void *ud, enum lade_log_level level, const char *module, const char *line)
{
    (void)ud;
    (void)level;
    size_t n = strlen(g_log);
    snprintf(g_log + n, sizeof g_log - n, "%s: %s\n", module, line);
}

static void test_connack_timeout(void **state)
{
    (void)state;
    setup(SIZE_MAX);
    g_log[0] = 0;
    lade_log_set_sink(log_sink, NULL);
    lade_log_set_level(LADE_LOG_DEBUG);
    uint64_t next;
    assert_int_equal(lade_mqtt_session_start(&g_s, &g_t, NULL, 1000), LADE_OK);
    assert_int_equal(lade_mqtt_session_start(&g_s, &g_t, NULL, 1000), LADE_ERR_STATE);
    flush_all(1000);
    assert_int_equal(lade_mqtt_session_tick(&g_s, 1000, &next), LADE_OK);
    assert_int_equal(next, 6000);
    assert_int_equal(lade_mqtt_session_tick(&g_s, 5999, &next), LADE_OK);
    assert_int_equal(next, 6000);
    assert_int_equal(lade_mqtt_session_tick(&g_s, 6000, &next), LADE_ERR_TIMEOUT);
    assert_int_equal(lade_mqtt_session_state(&g_s), LADE_MQTT_DISCONNECTED);
    lade_log_set_level(LADE_LOG_INFO);
    lade_log_set_sink(NULL, NULL);
    /* One function changes state and logs each transition. */
    assert_non_null(strstr(g_log, "mqtt: dev-1: DISCONNECTED → CONNECTING\n"));
    assert_non_null(strstr(g_log, "mqtt: dev-1: CONNECTING → DISCONNECTED\n"));
    assert_int_equal(lade_mqtt_session_tick(&g_s, 7000, &next), LADE_OK);
    assert_int_equal(next, UINT64_MAX);
}

static void test_connack_refused(void **state)
{
    (void)state;
    const struct {
        uint8_t rc;
        lade_err want;
    } cases[] = {{5, LADE_ERR_AUTH},  {4, LADE_ERR_AUTH},  {3, LADE_ERR_PROTO},
                 {1, LADE_ERR_PROTO}, {2, LADE_ERR_PROTO}, {200, LADE_ERR_PROTO}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setup(SIZE_MAX);
        assert_int_equal(lade_mqtt_session_start(&g_s, &g_t, "pw", 0), LADE_OK);
        flush_all(0);
        broker_connack(false, cases[i].rc);
        assert_int_equal(lade_mqtt_session_on_readable(&g_s, 0), cases[i].want);
        assert_int_equal(g_rec.connacks, 1);
        assert_int_equal(g_rec.rc, cases[i].rc);
        assert_int_equal(lade_mqtt_session_state(&g_s), LADE_MQTT_DISCONNECTED);
    }
}

static void test_packet_before_connack_is_protocol_error(void **state)
{
    (void)state;
    const int types[] = {LADE_MQTT_PINGRESP, LADE_MQTT_PUBLISH, LADE_MQTT_PUBACK};
    for (size_t i = 0; i < 3; i++) {
        setup(SIZE_MAX);
        assert_int_equal(lade_mqtt_session_start(&g_s, &g_t, NULL, 0), LADE_OK);
        if (types[i] == LADE_MQTT_PINGRESP)
            broker_empty(LADE_MQTT_PINGRESP);
        else if (types[i] == LADE_MQTT_PUBLISH)
            broker_publish("a", "b", 0, 0);
        else
            broker_ack(LADE_MQTT_PUBACK, 1);
        broker_connack(false, 0);
        assert_int_equal(lade_mqtt_session_on_readable(&g_s, 0), LADE_ERR_PROTO);
        assert_int_equal(lade_mqtt_session_state(&g_s), LADE_MQTT_DISCONNECTED);
        assert_int_equal(g_rec.connacks, 0);
    }
    /* A second CONNACK is also a protocol error. */
    setup(SIZE_MAX);
    connect_ok(0, NULL);
    broker_connack(false, 0);
    assert_int_equal(lade_mqtt_session_on_readable(&g_s, 0), LADE_ERR_PROTO);
}

static void test_keepalive_and_pingresp_timeout(void **state)
{
    (void)state;
    setup(SIZE_MAX);
    uint64_t next;
    connect_ok(0, "pw"); /* CONNECT written at t=0 */
    assert_int_equal(lade_mqtt_session_tick(&g_s, 9999, &next), LADE_OK);
    assert_int_equal(next, 10000);
    assert_false(lade_mqtt_session_wants_write(&g_s));
    /* Something sent at t=5000 moves the keep-alive (§3.1.2.10: based on what we send). */
    assert_int_equal(lade_mqtt_publish(&g_s, "t", "x", 1, 0, false, NULL), LADE_OK);
    flush_all(5000);
    broker_expect(LADE_MQTT_PUBLISH);
    /* Receiving does not move it past a keep-alive after the last send. */
    broker_publish("in", "x", 0, 0);
    assert_int_equal(lade_mqtt_session_on_readable(&g_s, 9000), LADE_OK);
    assert_int_equal(lade_mqtt_session_tick(&g_s, 10000, &next), LADE_OK);
    assert_int_equal(next, 15000);
    broker_expect_nothing();
    assert_int_equal(lade_mqtt_session_tick(&g_s, 15000, &next), LADE_OK);
    assert_int_equal(next, 18000);
    assert_true(lade_mqtt_session_wants_write(&g_s));
    flush_all(15000);
    broker_expect(LADE_MQTT_PINGREQ);
    /* only one PINGREQ outstanding */
    assert_int_equal(lade_mqtt_session_tick(&g_s, 17000, &next), LADE_OK);
    assert_int_equal(next, 18000);
    broker_expect_nothing();
    assert_false(lade_mqtt_session_wants_write(&g_s));
    broker_empty(LADE_MQTT_PINGRESP);
    assert_int_equal(lade_mqtt_session_on_readable(&g_s, 17500), LADE_OK);
    assert_int_equal(lade_mqtt_session_tick(&g_s, 18000, &next), LADE_OK);
    assert_int_equal(next, 25000);
    /* Next ping is not answered. */
    assert_int_equal(lade_mqtt_session_tick(&g_s, 25000, &next), LADE_OK);
    flush_all(25000);
    broker_expect(LADE_MQTT_PINGREQ);
    assert_int_equal(lade_mqtt_session_tick(&g_s, 27999, &next), LADE_OK);
    assert_int_equal(next, 28000);
    assert_int_equal(lade_mqtt_session_tick(&g_s, 28000, &next), LADE_ERR_TIMEOUT);
    assert_int_equal(lade_mqtt_session_state(&g_s), LADE_MQTT_DISCONNECTED);
}

/* A link that takes what we send and gives nothing back (a dead 4G NAT binding, a
 * partition): publishing more often than the keep-alive must not postpone the probe forever.
 * The probe comes two keep-alives after the last receipt. */
static void test_keepalive_probes_a_silent_link(void **state)
{
    (void)state;
    setup(SIZE_MAX);
    uint64_t next;
    connect_ok(0, "pw"); /* CONNECT sent and CONNACK received at t=0 */
    for (uint64_t t = 4000; t < 20000; t += 4000) {
        assert_int_equal(lade_mqtt_publish(&g_s, "t", "x", 1, 0, false, NULL), LADE_OK);
        flush_all(t);
        broker_expect(LADE_MQTT_PUBLISH);
        assert_int_equal(lade_mqtt_session_tick(&g_s, t, &next), LADE_OK);
        /* a keep-alive after this send, but never later than two after the last receipt */
        assert_int_equal(next, t + 10000 < 20000 ? t + 10000 : 20000);
    }
    broker_expect_nothing();
    assert_int_equal(lade_mqtt_session_tick(&g_s, 20000, &next), LADE_OK);
    assert_int_equal(next, 23000);
    flush_all(20000);
    broker_expect(LADE_MQTT_PINGREQ);
    /* still publishing, still no answer: the PINGRESP timer ends it */
    assert_int_equal(lade_mqtt_publish(&g_s, "t", "x", 1, 0, false, NULL), LADE_OK);
    flush_all(22000);
    broker_expect(LADE_MQTT_PUBLISH);
    assert_int_equal(lade_mqtt_session_tick(&g_s, 22999, &next), LADE_OK);
    assert_int_equal(next, 23000);
    assert_int_equal(lade_mqtt_session_tick(&g_s, 23000, &next), LADE_ERR_TIMEOUT);
    assert_int_equal(lade_mqtt_session_state(&g_s), LADE_MQTT_DISCONNECTED);
}

/* A send now and then on a live idle link: receipts only every other interval (a PINGRESP),
 * and the sends stand in for PINGREQs as before — no probe earlier than a keep-alive after the
 * last send. */
static void test_keepalive_sends_stand_in_for_pings(void **state)
{
    (void)state;
    setup(SIZE_MAX);
    uint64_t next;
    connect_ok(0, "pw");
    assert_int_equal(lade_mqtt_session_tick(&g_s, 10000, &next), LADE_OK);
    flush_all(10000);
    broker_expect(LADE_MQTT_PINGREQ);
    broker_empty(LADE_MQTT_PINGRESP);
    assert_int_equal(lade_mqtt_session_on_readable(&g_s, 10000), LADE_OK);
    /* a QoS 0 report 9 s later, unanswered: the next PINGREQ is 10 s after it (19 s + 10 s),
     * within two keep-alives of the PINGRESP (10 s + 20 s) */
    assert_int_equal(lade_mqtt_publish(&g_s, "t", "x", 1, 0, false, NULL), LADE_OK);
    flush_all(19000);
    broker_expect(LADE_MQTT_PUBLISH);
    assert_int_equal(lade_mqtt_session_tick(&g_s, 19000, &next), LADE_OK);
    assert_int_equal(next, 29000);
    assert_int_equal(lade_mqtt_session_tick(&g_s, 28999, &next), LADE_OK);
    broker_expect_nothing();
    assert_int_equal(lade_mqtt_session_tick(&g_s, 29000, &next), LADE_OK);
    flush_all(29000);
    broker_expect(LADE_MQTT_PINGREQ);
}

static void test_keepalive_zero_disables(void **state)
{
    (void)state;
    struct lade_mqtt_session_cfg cfg = base_cfg();
    cfg.keepalive_s = 0;
    setup_cfg(&cfg, SIZE_MAX);
    uint64_t next;
    connect_ok(0, NULL);
    assert_int_equal(lade_mqtt_session_tick(&g_s, 1000000, &next), LADE_OK);
    assert_int_equal(next, UINT64_MAX);
    assert_false(lade_mqtt_session_wants_write(&g_s));
}

static void expect_publish(uint16_t id, bool dup, const char *payload)
{
    struct lade_mqtt_frame f = broker_expect(LADE_MQTT_PUBLISH);
    struct lade_mqtt_publish p;
    assert_int_equal(lade_mqtt_decode_publish(&f, &p), LADE_OK);
    assert_int_equal(p.qos, 1);
    assert_int_equal(p.packet_id, id);
    assert_int_equal(p.dup, dup);
    assert_int_equal(p.payload_len, strlen(payload));
    assert_memory_equal(p.payload, payload, p.payload_len);
}

static void test_qos1_resent_with_dup_after_reconnect(void **state)
{
    (void)state;
    setup(SIZE_MAX);
    connect_ok(0, NULL);
    uint16_t id1, id2;
    assert_int_equal(
        lade_mqtt_publish(&g_s, "devices/dev-1/messages/events/", "m1", 2, 1, false, &id1),
        LADE_OK);
    assert_int_equal(
        lade_mqtt_publish(&g_s, "devices/dev-1/messages/events/", "m2", 2, 1, false, &id2),
        LADE_OK);
    assert_int_not_equal(id1, 0);
    assert_int_not_equal(id1, id2);
    flush_all(10);
    expect_publish(id1, false, "m1");
    expect_publish(id2, false, "m2");
    assert_int_equal(lade_mqtt_session_inflight(&g_s), 2);

    lade_mqtt_session_lost(&g_s);
    assert_int_equal(lade_mqtt_session_inflight(&g_s), 2);
    /* Published while disconnected: stored, sent first time without DUP. QoS 0 refused. */
    uint16_t id3;
    assert_int_equal(lade_mqtt_publish(&g_s, "t", "m3", 2, 1, false, &id3), LADE_OK);
    assert_int_equal(lade_mqtt_publish(&g_s, "t", "q0", 2, 0, false, NULL), LADE_ERR_STATE);

    connect_ok(20, NULL);
    flush_all(20);
    expect_publish(id1, true, "m1");
    expect_publish(id2, true, "m2");
    expect_publish(id3, false, "m3");
    broker_expect_nothing();
    assert_int_equal(lade_mqtt_session_stats(&g_s)->resends, 2);

    broker_ack(LADE_MQTT_PUBACK, id2);
    broker_ack(LADE_MQTT_PUBACK, 4242); /* unknown: ignored */
    assert_int_equal(lade_mqtt_session_on_readable(&g_s, 30), LADE_OK);
    assert_int_equal(g_rec.pubacks, 1);
    assert_int_equal(g_rec.last_puback, id2);
    assert_int_equal(lade_mqtt_session_inflight(&g_s), 2);

    /* Another reconnect: only the unacknowledged ones, in order, with their ids. */
    lade_mqtt_session_lost(&g_s);
    connect_ok(40, NULL);
    flush_all(40);
    expect_publish(id1, true, "m1");
    expect_publish(id3, true, "m3");
    broker_expect_nothing();
    broker_ack(LADE_MQTT_PUBACK, id1);
    broker_ack(LADE_MQTT_PUBACK, id3);
    assert_int_equal(lade_mqtt_session_on_readable(&g_s, 50), LADE_OK);
    assert_int_equal(lade_mqtt_session_inflight(&g_s), 0);
    assert_int_equal(g_rec.pubacks, 3);
}

static void test_inflight_full_and_id_allocation(void **state)
{
    (void)state;
    setup(SIZE_MAX);
    uint16_t id;
    assert_int_equal(lade_mqtt_publish(&g_s, "t", "a", 1, 1, false, &id), LADE_OK);
    assert_int_equal(id, 1);
    /* Cycle: 65535 then wrap to 1, which is in flight, so 2. */
    g_s.next_id = 65535;
    assert_int_equal(lade_mqtt_publish(&g_s, "t", "b", 1, 1, false, &id), LADE_OK);
    assert_int_equal(id, 65535);
    assert_int_equal(lade_mqtt_publish(&g_s, "t", "c", 1, 1, false, &id), LADE_OK);
    assert_int_equal(id, 2);
    assert_int_equal(lade_mqtt_publish(&g_s, "t", "d", 1, 1, false, &id), LADE_OK);
    assert_int_equal(lade_mqtt_publish(&g_s, "t", "e", 1, 1, false, &id), LADE_ERR_FULL);
    assert_int_equal(id, 0);
    assert_int_equal(lade_mqtt_publish(&g_s, "t", "e", 1, 2, false, &id), LADE_ERR_INVAL);
    assert_int_equal(lade_mqtt_publish(&g_s, "t/#", "e", 1, 1, false, &id), LADE_ERR_INVAL);
    assert_int_equal(lade_mqtt_publish(&g_s, "t\xC0\x80", "e", 1, 1, false, &id), LADE_ERR_UTF8);
}

static void test_incoming_qos1_gets_puback(void **state)
{
    (void)state;
    setup(SIZE_MAX);
    connect_ok(0, NULL);
    broker_publish("devices/dev-1/messages/devicebound/a=1", "hello", 1, 77);
    broker_publish("$iothub/methods/POST/reset/?$rid=1", "{}", 0, 0);
    assert_int_equal(lade_mqtt_session_on_readable(&g_s, 1), LADE_OK);
    assert_int_equal(g_rec.messages, 2);
    assert_string_equal(g_rec.topic, "$iothub/methods/POST/reset/?$rid=1");
    assert_string_equal(g_rec.payload, "{}");
    flush_all(1);
    struct lade_mqtt_frame f = broker_expect(LADE_MQTT_PUBACK);
    uint16_t id;
    assert_int_equal(lade_mqtt_decode_ack(&f, &id), LADE_OK);
    assert_int_equal(id, 77);
    broker_expect_nothing(); /* no PUBACK for QoS 0 */
}

static void test_incoming_errors_drop_connection(void **state)
{
    (void)state;
    /* QoS 2 publish */
    setup(SIZE_MAX);
    connect_ok(0, NULL);
    broker_put((const uint8_t[]){0x34, 0x05, 0x00, 0x01, 'a', 0x00, 0x01}, 7);
    assert_int_equal(lade_mqtt_session_on_readable(&g_s, 0), LADE_ERR_PROTO);
    assert_int_equal(lade_mqtt_session_state(&g_s), LADE_MQTT_DISCONNECTED);
    assert_int_equal(g_rec.messages, 0);
    /* wildcard topic */
    setup(SIZE_MAX);
    connect_ok(0, NULL);
    broker_put((const uint8_t[]){0x30, 0x03, 0x00, 0x01, '#'}, 5);
    assert_int_equal(lade_mqtt_session_on_readable(&g_s, 0), LADE_ERR_PROTO);
    /* packets only a server receives */
    setup(SIZE_MAX);
    connect_ok(0, NULL);
    broker_empty(LADE_MQTT_PINGREQ);
    assert_int_equal(lade_mqtt_session_on_readable(&g_s, 0), LADE_ERR_PROTO);
    /* peer closed */
    setup(SIZE_MAX);
    connect_ok(0, NULL);
    g_net.recv_err = LADE_ERR_CLOSED;
    broker_publish("a", "last words", 0, 0);
    assert_int_equal(lade_mqtt_session_on_readable(&g_s, 0), LADE_ERR_CLOSED);
    assert_int_equal(g_rec.messages, 1); /* what arrived before the close was delivered */
    assert_int_equal(lade_mqtt_session_state(&g_s), LADE_MQTT_DISCONNECTED);
}

static void test_too_big_detected_from_header(void **state)
{
    (void)state;
    struct lade_mqtt_session_cfg cfg = base_cfg();
    cfg.max_packet = 64;
    setup_cfg(&cfg, SIZE_MAX);
    connect_ok(0, NULL);
    /* 1 + 1 + 63 = 65 bytes declared; only the fixed header has arrived. */
    broker_put((const uint8_t[]){0x30, 63}, 2);
    assert_int_equal(lade_mqtt_session_on_readable(&g_s, 0), LADE_ERR_TOO_BIG);
    assert_int_equal(lade_mqtt_session_state(&g_s), LADE_MQTT_DISCONNECTED);
    /* exactly max_packet is fine */
    setup_cfg(&cfg, SIZE_MAX);
    connect_ok(0, NULL);
    char payload[64];
    memset(payload, 'x', 59);
    payload[59] = 0; /* 1 + 1 + 2 + 1 + 59 = 64 */
    broker_publish("a", payload, 0, 0);
    assert_int_equal(lade_mqtt_session_on_readable(&g_s, 0), LADE_OK);
    assert_int_equal(g_rec.messages, 1);
}

static void test_tx_full_and_nospace(void **state)
{
    (void)state;
    static uint8_t small_tx[64];
    struct lade_mqtt_session_cfg cfg = base_cfg();
    cfg.tx_buf = small_tx;
    cfg.tx_cap = sizeof small_tx;
    cfg.username = NULL;
    setup_cfg(&cfg, SIZE_MAX);
    connect_ok(0, NULL);
    char payload[64];
    memset(payload, 'p', sizeof payload);
    /* 1 + 1 + 3 + 55 = 60 bytes fit; the second does not until the first is written. */
    assert_int_equal(lade_mqtt_publish(&g_s, "t", payload, 55, 0, false, NULL), LADE_OK);
    assert_int_equal(lade_mqtt_publish(&g_s, "t", payload, 55, 0, false, NULL), LADE_ERR_FULL);
    assert_int_equal(lade_mqtt_publish(&g_s, "t", payload, 63, 0, false, NULL), LADE_ERR_NOSPACE);
    assert_int_equal(lade_mqtt_publish(&g_s, "t", payload, 63, 1, false, NULL), LADE_ERR_NOSPACE);
    /* QoS 1 waits in the store and goes out when tx drains. */
    uint16_t id;
    assert_int_equal(lade_mqtt_publish(&g_s, "t", payload, 50, 1, false, &id), LADE_OK);
    flush_all(1);
    broker_expect(LADE_MQTT_PUBLISH);
    struct lade_mqtt_frame f = broker_expect(LADE_MQTT_PUBLISH);
    struct lade_mqtt_publish p;
    assert_int_equal(lade_mqtt_decode_publish(&f, &p), LADE_OK);
    assert_int_equal(p.packet_id, id);
    assert_false(p.dup);
}

static void test_incoming_qos1_held_until_tx_has_room(void **state)
{
    (void)state;
    static uint8_t small_tx[64];
    struct lade_mqtt_session_cfg cfg = base_cfg();
    cfg.tx_buf = small_tx;
    cfg.tx_cap = sizeof small_tx;
    cfg.username = NULL;
    setup_cfg(&cfg, SIZE_MAX);
    connect_ok(0, NULL);
    char payload[64];
    memset(payload, 'p', sizeof payload);
    assert_int_equal(lade_mqtt_publish(&g_s, "t", payload, 58, 0, false, NULL), LADE_OK);
    /* 63 of 64 bytes queued; a PUBACK (4) does not fit. */
    broker_publish("in", "1", 1, 5);
    broker_publish("in", "2", 1, 6);
    assert_int_equal(lade_mqtt_session_on_readable(&g_s, 1), LADE_OK);
    assert_int_equal(g_rec.messages, 0);
    assert_true(lade_mqtt_session_wants_write(&g_s));
    flush_all(2);
    assert_int_equal(g_rec.messages, 2); /* each delivered exactly once */
    broker_expect(LADE_MQTT_PUBLISH);
    uint16_t id;
    struct lade_mqtt_frame f = broker_expect(LADE_MQTT_PUBACK);
    assert_int_equal(lade_mqtt_decode_ack(&f, &id), LADE_OK);
    assert_int_equal(id, 5);
    f = broker_expect(LADE_MQTT_PUBACK);
    assert_int_equal(lade_mqtt_decode_ack(&f, &id), LADE_OK);
    assert_int_equal(id, 6);
    assert_int_equal(lade_mqtt_session_stats(&g_s)->packets_in, 3);
}

static void test_reply_from_callback(void **state)
{
    (void)state;
    setup(SIZE_MAX);
    connect_ok(0, NULL);
    g_rec.reply = true;
    broker_publish("in", "x", 1, 9);
    assert_int_equal(lade_mqtt_session_on_readable(&g_s, 1), LADE_OK);
    assert_int_equal(g_rec.reply_err, LADE_OK);
    flush_all(1);
    broker_expect(LADE_MQTT_PUBACK);
    broker_expect(LADE_MQTT_PUBLISH);
}

/* One byte per call in both directions through a full conversation; counters exact. */
static void test_byte_at_a_time_and_counters(void **state)
{
    (void)state;
    setup(1);
    const char *f[] = {"$iothub/twin/res/#"};
    const uint8_t q[] = {0};
    assert_int_equal(lade_mqtt_subscribe(&g_s, f, q, 1, NULL), LADE_OK);
    uint16_t id;
    assert_int_equal(lade_mqtt_publish(&g_s, "$iothub/twin/GET/?$rid=1", "", 0, 1, false, &id),
                     LADE_OK);
    assert_int_equal(lade_mqtt_session_start(&g_s, &g_t, "pw", 0), LADE_OK);
    flush_all(0);
    broker_expect(LADE_MQTT_CONNECT);
    broker_connack(false, 0);
    /* The CONNACK arrives byte by byte. */
    assert_int_equal(lade_mqtt_session_on_readable(&g_s, 1), LADE_OK);
    assert_int_equal(lade_mqtt_session_state(&g_s), LADE_MQTT_CONNECTED);
    flush_all(1);
    struct lade_mqtt_frame fr = broker_expect(LADE_MQTT_SUBSCRIBE);
    uint16_t sub_id = (uint16_t)(fr.body[0] << 8 | fr.body[1]);
    expect_publish(id, false, "");
    const uint8_t codes[] = {0};
    broker_suback(sub_id, codes, 1);
    broker_ack(LADE_MQTT_PUBACK, id);
    broker_publish("$iothub/twin/res/200/?$rid=1", "{\"desired\":{}}", 1, 3);
    broker_empty(LADE_MQTT_PINGRESP);
    assert_int_equal(lade_mqtt_session_on_readable(&g_s, 2), LADE_OK);
    assert_int_equal(g_rec.subacks, 1);
    assert_int_equal(g_rec.pubacks, 1);
    assert_int_equal(g_rec.messages, 1);
    assert_string_equal(g_rec.payload, "{\"desired\":{}}");
    flush_all(2);
    broker_expect(LADE_MQTT_PUBACK);
    lade_mqtt_session_disconnect(&g_s);
    assert_int_equal(lade_mqtt_session_state(&g_s), LADE_MQTT_DISCONNECTING);
    flush_all(3);
    broker_expect(LADE_MQTT_DISCONNECT);
    broker_expect_nothing();
    assert_int_equal(lade_mqtt_session_state(&g_s), LADE_MQTT_DISCONNECTED);

    const struct lade_mqtt_stats *st = lade_mqtt_session_stats(&g_s);
    assert_int_equal(st->bytes_out, g_net.c2s.len);
    assert_int_equal(st->bytes_in, g_net.s2c.len);
    assert_int_equal(st->packets_out, 5); /* CONNECT SUBSCRIBE PUBLISH PUBACK DISCONNECT */
    assert_int_equal(st->packets_in, 5);  /* CONNACK SUBACK PUBACK PUBLISH PINGRESP */
    assert_int_equal(st->connects, 1);
    /* Hand count: CONNECT = 2 + 10 + 7 + 35 + 4; SUBSCRIBE 2+2+2+18+1; PUBLISH 2+2+24+2;
     * PUBACK 4; DISCONNECT 2. */
    assert_int_equal(st->bytes_out, (2 + 10 + 7 + 35 + 4) + 25 + 30 + 4 + 2);
}

/* Partial writes: a packet counts as sent only when its last byte is accepted. */
static void test_partial_write_counts_packets(void **state)
{
    (void)state;
    setup(SIZE_MAX);
    g_net.send_budget = 5;
    assert_int_equal(lade_mqtt_session_start(&g_s, &g_t, NULL, 0), LADE_OK);
    assert_int_equal(lade_mqtt_session_flush(&g_s, 0), LADE_ERR_AGAIN);
    const struct lade_mqtt_stats *st = lade_mqtt_session_stats(&g_s);
    assert_int_equal(st->bytes_out, 5);
    assert_int_equal(st->packets_out, 0);
    assert_true(lade_mqtt_session_wants_write(&g_s));
    g_net.send_budget = SIZE_MAX;
    flush_all(0);
    assert_int_equal(st->packets_out, 1);
    assert_int_equal(st->bytes_out, g_net.c2s.len);
    /* Losing the connection mid-packet: the rest is dropped, nothing counted twice. */
    broker_connack(false, 0);
    assert_int_equal(lade_mqtt_session_on_readable(&g_s, 0), LADE_OK);
    g_net.send_budget = 3;
    assert_int_equal(lade_mqtt_publish(&g_s, "t", "abcdef", 6, 0, false, NULL), LADE_OK);
    assert_int_equal(lade_mqtt_session_flush(&g_s, 0), LADE_ERR_AGAIN);
    lade_mqtt_session_lost(&g_s);
    assert_false(lade_mqtt_session_wants_write(&g_s));
    assert_int_equal(st->packets_out, 1);
    assert_int_equal(st->bytes_out, g_net.c2s.len);
}

static void test_disconnect_from_states(void **state)
{
    (void)state;
    setup(SIZE_MAX);
    lade_mqtt_session_disconnect(&g_s); /* no-op */
    assert_int_equal(lade_mqtt_session_state(&g_s), LADE_MQTT_DISCONNECTED);
    assert_int_equal(lade_mqtt_session_start(&g_s, &g_t, NULL, 0), LADE_OK);
    lade_mqtt_session_disconnect(&g_s); /* before CONNACK: just drop */
    assert_int_equal(lade_mqtt_session_state(&g_s), LADE_MQTT_DISCONNECTED);
    /* In-flight survives a clean shutdown. */
    net_reset(SIZE_MAX);
    connect_ok(0, NULL);
    uint16_t id;
    assert_int_equal(lade_mqtt_publish(&g_s, "t", "x", 1, 1, false, &id), LADE_OK);
    lade_mqtt_session_disconnect(&g_s);
    flush_all(0);
    expect_publish(id, false, "x");
    broker_expect(LADE_MQTT_DISCONNECT);
    assert_int_equal(lade_mqtt_session_state(&g_s), LADE_MQTT_DISCONNECTED);
    assert_int_equal(lade_mqtt_session_inflight(&g_s), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_rejects_bad_config),
        cmocka_unit_test(test_connect_packet_and_subscriptions_restored),
        cmocka_unit_test(test_subscription_store_full),
        cmocka_unit_test(test_connack_timeout),
        cmocka_unit_test(test_connack_refused),
        cmocka_unit_test(test_packet_before_connack_is_protocol_error),
        cmocka_unit_test(test_keepalive_and_pingresp_timeout),
        cmocka_unit_test(test_keepalive_probes_a_silent_link),
        cmocka_unit_test(test_keepalive_sends_stand_in_for_pings),
        cmocka_unit_test(test_keepalive_zero_disables),
        cmocka_unit_test(test_qos1_resent_with_dup_after_reconnect),
        cmocka_unit_test(test_inflight_full_and_id_allocation),
        cmocka_unit_test(test_incoming_qos1_gets_puback),
        cmocka_unit_test(test_incoming_errors_drop_connection),
        cmocka_unit_test(test_too_big_detected_from_header),
        cmocka_unit_test(test_tx_full_and_nospace),
        cmocka_unit_test(test_incoming_qos1_held_until_tx_has_room),
        cmocka_unit_test(test_reply_from_callback),
        cmocka_unit_test(test_byte_at_a_time_and_counters),
        cmocka_unit_test(test_partial_write_counts_packets),
        cmocka_unit_test(test_disconnect_from_states),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
