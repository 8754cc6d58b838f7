/* Unit tests for the MQTT 3.1.1 codec: byte-exact vectors, round trips, malformed input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lade/mqtt.h"

#define B(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

static struct lade_str S(const char *s) {
    return lade_str_c(s);
}

/* Frames exactly one packet occupying the whole buffer. */
static struct lade_mqtt_frame
frame_all(const uint8_t *p, size_t n)
{
    struct lade_mqtt_frame f;
    assert_int_equal(lade_mqtt_frame(p, n, 0, &f), LADE_OK);
    assert_int_equal(f.size, n);
    return f;
}

static lade_err frame_rc(const uint8_t *p, size_t n)
{
    struct lade_mqtt_frame f;
    return lade_mqtt_frame(p, n, 0, &f);
}

/* Every proper prefix of a valid packet is incomplete, never an error. */
static void assert_prefixes_again(const uint8_t *p, size_t n)
{
    for (size_t k = 0; k < n; k++)
        assert_int_equal(frame_rc(p, k), LADE_ERR_AGAIN);
}

/* ------------------------------------------------------------ encodings */

static void expect_bytes(const uint8_t *got, size_t got_n, const uint8_t *want, size_t want_n)
{
    assert_int_equal(got_n, want_n);
    assert_memory_equal(got, want, want_n);
}

static void test_encode_connect(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t n, size;
    /* Minimal: client id "a", clean session, no keep-alive (§3.1 figure 3.2 layout). */
    struct lade_mqtt_connect c = {.client_id = S("a"), .clean_session = true};
    assert_int_equal(lade_mqtt_connect_size(&c, &size), LADE_OK);
    assert_int_equal(lade_mqtt_encode_connect(&c, buf, sizeof buf, &n), LADE_OK);
    assert_int_equal(n, size);
    expect_bytes(
        buf, n,
        B(0x10, 0x0D, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x00, 0x00, 0x01, 'a'));
    assert_prefixes_again(buf, n);

    /* IoT Hub style: user + password, persistent session, keep-alive 60 s. */
    c = (struct lade_mqtt_connect){.client_id = S("lade-1"),
                                   .has_username = true,
                                   .username = S("u"),
                                   .has_password = true,
                                   .password = S("p"),
                                   .keepalive_s = 60};
    assert_int_equal(lade_mqtt_encode_connect(&c, buf, sizeof buf, &n), LADE_OK);
    expect_bytes(buf, n,
                 B(0x10, 24, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0xC0, 0x00, 0x3C, 0x00, 0x06,
                   'l', 'a', 'd', 'e', '-', '1', 0x00, 0x01, 'u', 0x00, 0x01, 'p'));

    /* Will: QoS 1 retained, topic "w", message "x". Flags 0x2E. */
    c = (struct lade_mqtt_connect){.client_id = S("c"),
                                   .has_will = true,
                                   .will_topic = S("w"),
                                   .will_payload = S("x"),
                                   .will_qos = 1,
                                   .will_retain = true,
                                   .clean_session = true,
                                   .keepalive_s = 0x1234};
    assert_int_equal(lade_mqtt_encode_connect(&c, buf, sizeof buf, &n), LADE_OK);
    expect_bytes(buf, n,
                 B(0x10, 0x13, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x2E, 0x12, 0x34, 0x00, 0x01,
                   'c', 0x00, 0x01, 'w', 0x00, 0x01, 'x'));
}

static void test_encode_connect_rejects(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n;
    struct lade_mqtt_connect c = {.client_id = S("")}; /* empty id needs clean session */
    assert_int_equal(lade_mqtt_encode_connect(&c, buf, sizeof buf, &n), LADE_ERR_INVAL);
    c = (struct lade_mqtt_connect){.client_id = S("a"), .has_password = true, .password = S("p")};
    assert_int_equal(lade_mqtt_encode_connect(&c, buf, sizeof buf, &n), LADE_ERR_INVAL);
    c = (struct lade_mqtt_connect){.client_id = {"a\xC0\x80", 3}};
    assert_int_equal(lade_mqtt_encode_connect(&c, buf, sizeof buf, &n), LADE_ERR_UTF8);
    c = (struct lade_mqtt_connect){
        .client_id = S("a"), .has_username = true, .username = {"\0", 1}};
    assert_int_equal(lade_mqtt_encode_connect(&c, buf, sizeof buf, &n), LADE_ERR_UTF8);
    c = (struct lade_mqtt_connect){.client_id = S("a"), .will_qos = 1}; /* no will flag */
    assert_int_equal(lade_mqtt_encode_connect(&c, buf, sizeof buf, &n), LADE_ERR_INVAL);
    c = (struct lade_mqtt_connect){.client_id = S("a"), .has_will = true, .will_topic = S("w/#")};
    assert_int_equal(lade_mqtt_encode_connect(&c, buf, sizeof buf, &n), LADE_ERR_INVAL);
    /* NOSPACE at size-1, and nothing written. */
    c = (struct lade_mqtt_connect){.client_id = S("a"), .clean_session = true};
    memset(buf, 0xAA, sizeof buf);
    assert_int_equal(lade_mqtt_encode_connect(&c, buf, 14, &n), LADE_ERR_NOSPACE);
    for (size_t i = 0; i < sizeof buf; i++)
        assert_int_equal(buf[i], 0xAA);
    assert_int_equal(lade_mqtt_encode_connect(&c, buf, 15, &n), LADE_OK);
}

static void test_encode_publish(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n;
    /* §3.3.2.1 example topic "a/b", packet id 10, QoS 1. */
    struct lade_mqtt_publish p = {.topic = S("a/b"),
                                  .payload = (const uint8_t *)"hi",
                                  .payload_len = 2,
                                  .qos = 1,
                                  .packet_id = 10};
    assert_int_equal(lade_mqtt_encode_publish(&p, buf, sizeof buf, &n), LADE_OK);
    expect_bytes(buf, n, B(0x32, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 'h', 'i'));
    assert_prefixes_again(buf, n);
    p.dup = true;
    p.retain = true;
    assert_int_equal(lade_mqtt_encode_publish(&p, buf, sizeof buf, &n), LADE_OK);
    assert_int_equal(buf[0], 0x3B);
    /* QoS 0: no packet id; empty payload allowed. */
    p = (struct lade_mqtt_publish){.topic = S("t")};
    assert_int_equal(lade_mqtt_encode_publish(&p, buf, sizeof buf, &n), LADE_OK);
    expect_bytes(buf, n, B(0x30, 0x03, 0x00, 0x01, 't'));
}

static void test_encode_publish_rejects(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n;
    struct lade_mqtt_publish p = {.topic = S("a/+")};
    assert_int_equal(lade_mqtt_encode_publish(&p, buf, sizeof buf, &n), LADE_ERR_INVAL);
    p.topic = S("a/#");
    assert_int_equal(lade_mqtt_encode_publish(&p, buf, sizeof buf, &n), LADE_ERR_INVAL);
    p.topic = S("");
    assert_int_equal(lade_mqtt_encode_publish(&p, buf, sizeof buf, &n), LADE_ERR_INVAL);
    p.topic = (struct lade_str){"a\xFF", 2};
    assert_int_equal(lade_mqtt_encode_publish(&p, buf, sizeof buf, &n), LADE_ERR_UTF8);
    p.topic = (struct lade_str){"a\0b", 3};
    assert_int_equal(lade_mqtt_encode_publish(&p, buf, sizeof buf, &n), LADE_ERR_UTF8);
    p = (struct lade_mqtt_publish){.topic = S("t"), .qos = 2, .packet_id = 1};
    assert_int_equal(lade_mqtt_encode_publish(&p, buf, sizeof buf, &n), LADE_ERR_INVAL);
    p = (struct lade_mqtt_publish){.topic = S("t"), .qos = 1, .packet_id = 0};
    assert_int_equal(lade_mqtt_encode_publish(&p, buf, sizeof buf, &n), LADE_ERR_INVAL);
    p = (struct lade_mqtt_publish){.topic = S("t"), .dup = true};
    assert_int_equal(lade_mqtt_encode_publish(&p, buf, sizeof buf, &n), LADE_ERR_INVAL);
    p = (struct lade_mqtt_publish){.topic = S("t"), .payload = buf, .payload_len = 4};
    assert_int_equal(lade_mqtt_encode_publish(&p, buf + 8, 8, &n), LADE_ERR_NOSPACE);
    assert_int_equal(lade_mqtt_encode_publish(&p, buf + 8, 9, &n), LADE_OK);
    assert_int_equal(n, 9);
    /* Protocol maximum: remaining 268435455 is the largest; one more is TOO_BIG. */
    size_t size;
    p = (struct lade_mqtt_publish){
        .topic = S("t"), .payload = buf, .payload_len = LADE_MQTT_MAX_REMAINING - 3};
    assert_int_equal(lade_mqtt_publish_size(&p, &size), LADE_OK);
    assert_int_equal(size, 1 + 4 + (size_t)LADE_MQTT_MAX_REMAINING);
    p.payload_len++;
    assert_int_equal(lade_mqtt_publish_size(&p, &size), LADE_ERR_TOO_BIG);
}

static void test_encode_small_packets(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n;
    assert_int_equal(lade_mqtt_encode_ack(LADE_MQTT_PUBACK, 0x1234, buf, sizeof buf, &n), LADE_OK);
    expect_bytes(buf, n, B(0x40, 0x02, 0x12, 0x34));
    assert_int_equal(lade_mqtt_encode_ack(LADE_MQTT_UNSUBACK, 2, buf, sizeof buf, &n), LADE_OK);
    expect_bytes(buf, n, B(0xB0, 0x02, 0x00, 0x02));
    assert_int_equal(lade_mqtt_encode_ack(LADE_MQTT_PUBACK, 0, buf, sizeof buf, &n),
                     LADE_ERR_INVAL);
    assert_int_equal(lade_mqtt_encode_ack(LADE_MQTT_PUBACK, 1, buf, 3, &n), LADE_ERR_NOSPACE);
    assert_int_equal(lade_mqtt_encode_empty(LADE_MQTT_PINGREQ, buf, sizeof buf, &n), LADE_OK);
    expect_bytes(buf, n, B(0xC0, 0x00));
    assert_int_equal(lade_mqtt_encode_empty(LADE_MQTT_PINGRESP, buf, sizeof buf, &n), LADE_OK);
    expect_bytes(buf, n, B(0xD0, 0x00));
    assert_int_equal(lade_mqtt_encode_empty(LADE_MQTT_DISCONNECT, buf, sizeof buf, &n), LADE_OK);
    expect_bytes(buf, n, B(0xE0, 0x00));
    assert_int_equal(lade_mqtt_encode_empty(LADE_MQTT_DISCONNECT, buf, 1, &n), LADE_ERR_NOSPACE);
    assert_int_equal(lade_mqtt_encode_empty(LADE_MQTT_PUBACK, buf, sizeof buf, &n), LADE_ERR_INVAL);
    struct lade_mqtt_connack ca = {.session_present = true, .return_code = 0};
    assert_int_equal(lade_mqtt_encode_connack(&ca, buf, sizeof buf, &n), LADE_OK);
    expect_bytes(buf, n, B(0x20, 0x02, 0x01, 0x00));
    const uint8_t codes[] = {1, 0x80};
    struct lade_mqtt_suback sa = {.packet_id = 1, .codes = codes, .n = 2};
    assert_int_equal(lade_mqtt_encode_suback(&sa, buf, sizeof buf, &n), LADE_OK);
    expect_bytes(buf, n, B(0x90, 0x04, 0x00, 0x01, 0x01, 0x80));
    const uint8_t bad[] = {3};
    sa = (struct lade_mqtt_suback){.packet_id = 1, .codes = bad, .n = 1};
    assert_int_equal(lade_mqtt_encode_suback(&sa, buf, sizeof buf, &n), LADE_ERR_INVAL);
}

static void test_encode_subscribe(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n;
    struct lade_mqtt_topic_filter tf[] = {{S("a/b"), 1}, {S("c/#"), 0}};
    struct lade_mqtt_subscribe s = {.packet_id = 1, .filters = tf, .n = 2};
    assert_int_equal(lade_mqtt_encode_subscribe(&s, buf, sizeof buf, &n), LADE_OK);
    expect_bytes(buf, n,
                 B(0x82, 0x0E, 0x00, 0x01, 0x00, 0x03, 'a', '/', 'b', 0x01, 0x00, 0x03, 'c', '/',
                   '#', 0x00));
    assert_prefixes_again(buf, n);
    s = (struct lade_mqtt_subscribe){.packet_id = 2, .filters = tf, .n = 1};
    assert_int_equal(lade_mqtt_encode_unsubscribe(&s, buf, sizeof buf, &n), LADE_OK);
    expect_bytes(buf, n, B(0xA2, 0x07, 0x00, 0x02, 0x00, 0x03, 'a', '/', 'b'));
    /* rejects */
    struct lade_mqtt_topic_filter bad[] = {{S("a/b#"), 0}};
    s = (struct lade_mqtt_subscribe){.packet_id = 1, .filters = bad, .n = 1};
    assert_int_equal(lade_mqtt_encode_subscribe(&s, buf, sizeof buf, &n), LADE_ERR_INVAL);
    struct lade_mqtt_topic_filter q3[] = {{S("a"), 3}};
    s = (struct lade_mqtt_subscribe){.packet_id = 1, .filters = q3, .n = 1};
    assert_int_equal(lade_mqtt_encode_subscribe(&s, buf, sizeof buf, &n), LADE_ERR_INVAL);
    s = (struct lade_mqtt_subscribe){.packet_id = 0, .filters = tf, .n = 1};
    assert_int_equal(lade_mqtt_encode_subscribe(&s, buf, sizeof buf, &n), LADE_ERR_INVAL);
    s = (struct lade_mqtt_subscribe){.packet_id = 1, .filters = tf, .n = 0};
    assert_int_equal(lade_mqtt_encode_subscribe(&s, buf, sizeof buf, &n), LADE_ERR_INVAL);
    struct lade_mqtt_topic_filter u[] = {{{"\xED\xA0\x80", 3}, 0}}; /* surrogate */
    s = (struct lade_mqtt_subscribe){.packet_id = 1, .filters = u, .n = 1};
    assert_int_equal(lade_mqtt_encode_subscribe(&s, buf, sizeof buf, &n), LADE_ERR_UTF8);
    s = (struct lade_mqtt_subscribe){.packet_id = 1, .filters = tf, .n = 2};
    assert_int_equal(lade_mqtt_encode_subscribe(&s, buf, 15, &n), LADE_ERR_NOSPACE);
}

static void test_filters_and_topics(void **state)
{
    (void)state;
    const char *ok[] = {"#",
                        "+",
                        "a/+/b",
                        "+/+",
                        "/",
                        "a//b",
                        "sport/#",
                        "/+",
                        "$iothub/methods/POST/#",
                        "devices/x/messages/devicebound/#",
                        "+/#"};
    const char *bad[] = {"", "a#", "a/#/b", "a+", "+a", "a/b+", "#/", "##", "a/++"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_true(lade_mqtt_filter_valid(ok[i], strlen(ok[i])));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(lade_mqtt_filter_valid(bad[i], strlen(bad[i])));
    assert_true(lade_mqtt_topic_valid("a/b", 3));
    assert_true(lade_mqtt_topic_valid("/", 1));
    assert_true(lade_mqtt_topic_valid("$iothub/twin/res/200/?$rid=1", 28));
    assert_false(lade_mqtt_topic_valid("", 0));
    assert_false(lade_mqtt_topic_valid("a/+", 3));
    assert_false(lade_mqtt_topic_valid("#", 1));
    assert_false(lade_mqtt_topic_valid("a\0", 2));
}

/* ------------------------------------------------------------ remaining length */

struct rl_case {
    size_t rem;
    uint8_t bytes[4];
    size_t n;
};

static const struct rl_case rl_cases[] = {
    {0, {0x00}, 1},
    {127, {0x7F}, 1},
    {128, {0x80, 0x01}, 2},
    {16383, {0xFF, 0x7F}, 2},
    {16384, {0x80, 0x80, 0x01}, 3},
    {2097151, {0xFF, 0xFF, 0x7F}, 3},
    {2097152, {0x80, 0x80, 0x80, 0x01}, 4},
    {268435455, {0xFF, 0xFF, 0xFF, 0x7F}, 4},
};

/* §2.2.3 table 2.4: the encoder writes these bytes (checked via PUBLISH QoS 0 to "t" whose
 * remaining length is 3 + payload), except the 0 and 268435455 cases which no PUBLISH of
 * a testable size has (0: PINGREQ above; max: framed below). */
static void test_remaining_length_encode(void **state)
{
    (void)state;
    for (size_t i = 1; i < sizeof rl_cases / sizeof rl_cases[0] - 1; i++) {
        const struct rl_case *c = &rl_cases[i];
        if (c->rem < 3)
            continue;
        size_t pl = c->rem - 3, size, n;
        uint8_t *payload = calloc(1, pl + 1);
        uint8_t *buf = malloc(c->rem + 5);
        assert_non_null(payload);
        assert_non_null(buf);
        struct lade_mqtt_publish p = {.topic = S("t"), .payload = payload, .payload_len = pl};
        assert_int_equal(lade_mqtt_publish_size(&p, &size), LADE_OK);
        assert_int_equal(size, 1 + c->n + c->rem);
        assert_int_equal(lade_mqtt_encode_publish(&p, buf, size, &n), LADE_OK);
        assert_int_equal(n, size);
        assert_int_equal(buf[0], 0x30);
        assert_memory_equal(buf + 1, c->bytes, c->n);
        struct lade_mqtt_frame f = frame_all(buf, n);
        assert_int_equal(f.body_len, c->rem);
        struct lade_mqtt_publish d;
        assert_int_equal(lade_mqtt_decode_publish(&f, &d), LADE_OK);
        assert_int_equal(d.payload_len, pl);
        /* Too big for a max_packet one byte short, known from the header alone. */
        assert_int_equal(lade_mqtt_frame(buf, 1 + c->n, size - 1, &f), LADE_ERR_TOO_BIG);
        assert_int_equal(lade_mqtt_frame(buf, 1 + c->n, size, &f), LADE_ERR_AGAIN);
        free(payload);
        free(buf);
    }
}

static void test_remaining_length_decode(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rl_cases / sizeof rl_cases[0]; i++) {
        const struct rl_case *c = &rl_cases[i];
        uint8_t hdr[5] = {0x30};
        memcpy(hdr + 1, c->bytes, c->n);
        struct lade_mqtt_frame f;
        size_t size = 1 + c->n + c->rem;
        /* header only: AGAIN (body missing), unless the body is empty */
        lade_err want = c->rem ? LADE_ERR_AGAIN : LADE_OK;
        assert_int_equal(lade_mqtt_frame(hdr, 1 + c->n, 0, &f), want);
        assert_int_equal(lade_mqtt_frame(hdr, 1 + c->n, size, &f), want);
        assert_int_equal(lade_mqtt_frame(hdr, 1 + c->n, size - 1, &f), LADE_ERR_TOO_BIG);
        /* every shorter header prefix: AGAIN */
        for (size_t k = 0; k < 1 + c->n; k++)
            assert_int_equal(lade_mqtt_frame(hdr, k, 0, &f), LADE_ERR_AGAIN);
    }
    /* A fifth length byte is malformed, even before more bytes arrive. */
    assert_int_equal(frame_rc(B(0x30, 0x80, 0x80, 0x80, 0x80)), LADE_ERR_PROTO);
    assert_int_equal(frame_rc(B(0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01)), LADE_ERR_PROTO);
    /* Non-minimal encodings are accepted (3.1.1 does not forbid them). */
    struct lade_mqtt_frame f = frame_all(B(0xC0, 0x80, 0x00));
    assert_int_equal(f.body_len, 0);
    assert_int_equal(f.type, LADE_MQTT_PINGREQ);
}

/* ------------------------------------------------------------ fixed header flags */

static void test_frame_flags(void **state)
{
    (void)state;
    for (int type = 0; type < 16; type++) {
        for (int flags = 0; flags < 16; flags++) {
            uint8_t p[2] = {(uint8_t)(type << 4 | flags), 0};
            bool ok;
            if (type == 0 || type == 15)
                ok = false;
            else if (type == LADE_MQTT_PUBLISH)
                ok = ((flags >> 1) & 3) != 3;
            else if (type == LADE_MQTT_PUBREL || type == LADE_MQTT_SUBSCRIBE ||
                     type == LADE_MQTT_UNSUBSCRIBE)
                ok = flags == 2;
            else
                ok = flags == 0;
            assert_int_equal(frame_rc(p, 2), ok ? LADE_OK : LADE_ERR_PROTO);
            /* The first byte alone is enough to reject. */
            assert_int_equal(frame_rc(p, 1), ok ? LADE_ERR_AGAIN : LADE_ERR_PROTO);
        }
    }
    assert_string_equal(lade_mqtt_type_name(LADE_MQTT_SUBACK), "SUBACK");
    assert_string_equal(lade_mqtt_type_name(0), "?");
}

/* ------------------------------------------------------------ decoders */

static lade_err dec_publish(const uint8_t *p, size_t n, struct lade_mqtt_publish *m)
{
    struct lade_mqtt_frame f;
    lade_err e = lade_mqtt_frame(p, n, 0, &f);
    if (e)
        return e;
    assert_int_equal(f.size, n);
    return lade_mqtt_decode_publish(&f, m);
}

static void test_decode_publish(void **state)
{
    (void)state;
    struct lade_mqtt_publish m;
    assert_int_equal(
        dec_publish(B(0x32, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x0A, 'h', 'i'), &m), LADE_OK);
    assert_true(lade_str_eq_c(m.topic, "a/b"));
    assert_int_equal(m.qos, 1);
    assert_int_equal(m.packet_id, 10);
    assert_int_equal(m.payload_len, 2);
    assert_memory_equal(m.payload, "hi", 2);
    assert_false(m.dup);
    assert_false(m.retain);
    assert_int_equal(dec_publish(B(0x3B, 0x05, 0x00, 0x01, 'a', 0x00, 0x01), &m), LADE_OK);
    assert_true(m.dup);
    assert_true(m.retain);
    assert_int_equal(m.payload_len, 0);
    /* QoS 0 has no packet id: the two bytes after the topic are payload. */
    assert_int_equal(dec_publish(B(0x30, 0x05, 0x00, 0x01, 'a', 0x00, 0x01), &m), LADE_OK);
    assert_int_equal(m.payload_len, 2);

    /* malformed */
    assert_int_equal(dec_publish(B(0x34, 0x05, 0x00, 0x01, 'a', 0x00, 0x01), &m),
                     LADE_ERR_PROTO); /* QoS 2 */
    assert_int_equal(dec_publish(B(0x36, 0x05, 0x00, 0x01, 'a', 0x00, 0x01), &m),
                     LADE_ERR_PROTO);                                                  /* QoS 3 */
    assert_int_equal(dec_publish(B(0x38, 0x03, 0x00, 0x01, 'a'), &m), LADE_ERR_PROTO); /* DUP 0 */
    assert_int_equal(dec_publish(B(0x32, 0x05, 0x00, 0x01, 'a', 0x00, 0x00), &m),
                     LADE_ERR_PROTO); /* id 0 */
    assert_int_equal(dec_publish(B(0x32, 0x04, 0x00, 0x01, 'a', 0x00), &m), LADE_ERR_PROTO);
    assert_int_equal(dec_publish(B(0x30, 0x02, 0x00, 0x00), &m), LADE_ERR_PROTO);      /* empty */
    assert_int_equal(dec_publish(B(0x30, 0x03, 0x00, 0x02, 'a'), &m), LADE_ERR_PROTO); /* overrun */
    assert_int_equal(dec_publish(B(0x30, 0x01, 0x00), &m), LADE_ERR_PROTO);
    assert_int_equal(dec_publish(B(0x30, 0x00), &m), LADE_ERR_PROTO);
    assert_int_equal(dec_publish(B(0x30, 0x05, 0x00, 0x03, 'a', '/', '+'), &m), LADE_ERR_PROTO);
    assert_int_equal(dec_publish(B(0x30, 0x05, 0x00, 0x03, 'a', '/', '#'), &m), LADE_ERR_PROTO);
    assert_int_equal(dec_publish(B(0x30, 0x05, 0x00, 0x03, 'a', 0x00, 'b'), &m), LADE_ERR_PROTO);
    assert_int_equal(dec_publish(B(0x30, 0x05, 0x00, 0x03, 'a', 0xC0, 0x80), &m),
                     LADE_ERR_PROTO); /* overlong NUL */
    assert_int_equal(dec_publish(B(0x30, 0x05, 0x00, 0x03, 0xED, 0xA0, 0x80), &m),
                     LADE_ERR_PROTO); /* surrogate */
    assert_int_equal(dec_publish(B(0x30, 0x04, 0x00, 0x02, 'a', 0xC3), &m),
                     LADE_ERR_PROTO); /* cut sequence */
}

static void test_decode_acks(void **state)
{
    (void)state;
    struct lade_mqtt_frame f;
    struct lade_mqtt_connack ca;
    uint16_t id;
    f = frame_all(B(0x20, 0x02, 0x01, 0x05));
    assert_int_equal(lade_mqtt_decode_connack(&f, &ca), LADE_OK);
    assert_true(ca.session_present);
    assert_int_equal(ca.return_code, 5);
    f = frame_all(B(0x20, 0x02, 0x02, 0x00));
    assert_int_equal(lade_mqtt_decode_connack(&f, &ca), LADE_ERR_PROTO); /* reserved bit */
    f = frame_all(B(0x20, 0x02, 0x80, 0x00));
    assert_int_equal(lade_mqtt_decode_connack(&f, &ca), LADE_ERR_PROTO);
    f = frame_all(B(0x20, 0x03, 0x00, 0x00, 0x00));
    assert_int_equal(lade_mqtt_decode_connack(&f, &ca), LADE_ERR_PROTO);
    f = frame_all(B(0x20, 0x01, 0x00));
    assert_int_equal(lade_mqtt_decode_connack(&f, &ca), LADE_ERR_PROTO);
    f = frame_all(B(0x20, 0x00));
    assert_int_equal(lade_mqtt_decode_connack(&f, &ca), LADE_ERR_PROTO);

    f = frame_all(B(0x40, 0x02, 0xAB, 0xCD));
    assert_int_equal(lade_mqtt_decode_ack(&f, &id), LADE_OK);
    assert_int_equal(id, 0xABCD);
    f = frame_all(B(0xB0, 0x02, 0x00, 0x07));
    assert_int_equal(lade_mqtt_decode_ack(&f, &id), LADE_OK);
    assert_int_equal(id, 7);
    f = frame_all(B(0x40, 0x02, 0x00, 0x00));
    assert_int_equal(lade_mqtt_decode_ack(&f, &id), LADE_ERR_PROTO);
    f = frame_all(B(0x40, 0x03, 0x00, 0x01, 0x00));
    assert_int_equal(lade_mqtt_decode_ack(&f, &id), LADE_ERR_PROTO);
    f = frame_all(B(0x40, 0x01, 0x01));
    assert_int_equal(lade_mqtt_decode_ack(&f, &id), LADE_ERR_PROTO);
    assert_int_equal(lade_mqtt_decode_connack(&f, &ca), LADE_ERR_INVAL); /* wrong type */

    f = frame_all(B(0xD0, 0x00));
    assert_int_equal(lade_mqtt_decode_empty(&f), LADE_OK);
    f = frame_all(B(0xD0, 0x01, 0x00));
    assert_int_equal(lade_mqtt_decode_empty(&f), LADE_ERR_PROTO);
    f = frame_all(B(0xE0, 0x00));
    assert_int_equal(lade_mqtt_decode_empty(&f), LADE_OK);

    struct lade_mqtt_suback sa;
    f = frame_all(B(0x90, 0x06, 0x00, 0x01, 0x00, 0x01, 0x02, 0x80));
    assert_int_equal(lade_mqtt_decode_suback(&f, &sa), LADE_OK);
    assert_int_equal(sa.packet_id, 1);
    assert_int_equal(sa.n, 4);
    assert_int_equal(sa.codes[3], 0x80);
    for (int c = 0; c < 256; c++) {
        uint8_t p[] = {0x90, 0x03, 0x00, 0x01, (uint8_t)c};
        f = frame_all(p, sizeof p);
        bool ok = c <= 2 || c == 0x80;
        assert_int_equal(lade_mqtt_decode_suback(&f, &sa), ok ? LADE_OK : LADE_ERR_PROTO);
    }
    f = frame_all(B(0x90, 0x02, 0x00, 0x01));
    assert_int_equal(lade_mqtt_decode_suback(&f, &sa), LADE_ERR_PROTO); /* no codes */
    f = frame_all(B(0x90, 0x03, 0x00, 0x00, 0x00));
    assert_int_equal(lade_mqtt_decode_suback(&f, &sa), LADE_ERR_PROTO); /* id 0 */
    f = frame_all(B(0x90, 0x01, 0x00));
    assert_int_equal(lade_mqtt_decode_suback(&f, &sa), LADE_ERR_PROTO);
}

static void test_roundtrip_connect(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t n;
    struct lade_mqtt_connect c = {.client_id = S("dev-1"),
                                  .has_username = true,
                                  .username = S("hub/dev-1/?api-version=2021-04-12"),
                                  .has_password = true,
                                  .password = {"\x00\xFFsecret", 8}, /* binary is fine */
                                  .has_will = true,
                                  .will_topic = S("w/x"),
                                  .will_payload = {"\x00\x01", 2},
                                  .will_qos = 1,
                                  .keepalive_s = 240};
    assert_int_equal(lade_mqtt_encode_connect(&c, buf, sizeof buf, &n), LADE_OK);
    struct lade_mqtt_frame f = frame_all(buf, n);
    struct lade_mqtt_connect d;
    assert_int_equal(lade_mqtt_decode_connect(&f, &d), LADE_OK);
    assert_true(lade_str_eq(d.client_id, c.client_id));
    assert_true(d.has_username && d.has_password && d.has_will);
    assert_true(lade_str_eq(d.username, c.username));
    assert_true(lade_str_eq(d.password, c.password));
    assert_true(lade_str_eq(d.will_topic, c.will_topic));
    assert_true(lade_str_eq(d.will_payload, c.will_payload));
    assert_int_equal(d.will_qos, 1);
    assert_false(d.will_retain);
    assert_false(d.clean_session);
    assert_int_equal(d.keepalive_s, 240);
    assert_int_equal(d.protocol_level, 4);
    /* Every shorter remaining length (truncated body) is malformed. */
    for (size_t k = 0; k < f.body_len; k++) {
        struct lade_mqtt_frame t = f;
        t.body_len = k;
        assert_int_equal(lade_mqtt_decode_connect(&t, &d), LADE_ERR_PROTO);
    }
    /* trailing byte */
    struct lade_mqtt_frame t = f;
    buf[n] = 0;
    t.body_len++;
    assert_int_equal(lade_mqtt_decode_connect(&t, &d), LADE_ERR_PROTO);
    /* reserved flag bit, wrong level, wrong name */
    size_t flags_at = f.body - buf + 7;
    buf[flags_at] |= 1;
    assert_int_equal(lade_mqtt_decode_connect(&f, &d), LADE_ERR_PROTO);
    buf[flags_at] &= 0xFE;
    buf[f.body - buf + 6] = 3;
    assert_int_equal(lade_mqtt_decode_connect(&f, &d), LADE_ERR_PROTO);
    buf[f.body - buf + 6] = 4;
    buf[f.body - buf + 2] = 'm';
    assert_int_equal(lade_mqtt_decode_connect(&f, &d), LADE_ERR_PROTO);
}

static void test_roundtrip_subscribe(void **state)
{
    (void)state;
    uint8_t buf[128];
    size_t n;
    struct lade_mqtt_topic_filter tf[] = {{S("$iothub/methods/POST/#"), 0},
                                          {S("devices/d/messages/devicebound/#"), 1}};
    struct lade_mqtt_subscribe s = {.packet_id = 77, .filters = tf, .n = 2}, d;
    struct lade_mqtt_topic_filter arr[4];
    assert_int_equal(lade_mqtt_encode_subscribe(&s, buf, sizeof buf, &n), LADE_OK);
    struct lade_mqtt_frame f = frame_all(buf, n);
    assert_int_equal(lade_mqtt_decode_subscribe(&f, &d, arr, 4), LADE_OK);
    assert_int_equal(d.packet_id, 77);
    assert_int_equal(d.n, 2);
    assert_ptr_equal(d.filters, arr);
    for (size_t i = 0; i < 2; i++) {
        assert_true(lade_str_eq(arr[i].filter, tf[i].filter));
        assert_int_equal(arr[i].qos, tf[i].qos);
    }
    assert_int_equal(lade_mqtt_decode_subscribe(&f, &d, arr, 1), LADE_ERR_NOSPACE);
    /* Truncations: only the cut right after the first entry is still well-formed. */
    size_t boundary = 2 + 2 + tf[0].filter.n + 1;
    for (size_t k = 0; k < f.body_len; k++) {
        struct lade_mqtt_frame t = f;
        t.body_len = k;
        assert_int_equal(lade_mqtt_decode_subscribe(&t, &d, arr, 4),
                         k == boundary ? LADE_OK : LADE_ERR_PROTO);
    }
    /* requested QoS 3 / reserved bits */
    buf[n - 1] = 3;
    assert_int_equal(lade_mqtt_decode_subscribe(&f, &d, arr, 4), LADE_ERR_PROTO);
    buf[n - 1] = 0x41;
    assert_int_equal(lade_mqtt_decode_subscribe(&f, &d, arr, 4), LADE_ERR_PROTO);

    assert_int_equal(lade_mqtt_encode_unsubscribe(&s, buf, sizeof buf, &n), LADE_OK);
    f = frame_all(buf, n);
    assert_int_equal(f.type, LADE_MQTT_UNSUBSCRIBE);
    assert_int_equal(lade_mqtt_decode_subscribe(&f, &d, arr, 4), LADE_OK);
    assert_int_equal(d.n, 2);
    assert_true(lade_str_eq(arr[1].filter, tf[1].filter));
    /* bad filter in a SUBSCRIBE from a client */
    f = frame_all(B(0x82, 0x06, 0x00, 0x01, 0x00, 0x01, '#', 0x00));
    assert_int_equal(lade_mqtt_decode_subscribe(&f, &d, arr, 4), LADE_OK);
    f = frame_all(B(0x82, 0x07, 0x00, 0x01, 0x00, 0x02, 'a', '#', 0x00));
    assert_int_equal(lade_mqtt_decode_subscribe(&f, &d, arr, 4), LADE_ERR_PROTO);
    f = frame_all(B(0x82, 0x02, 0x00, 0x01));
    assert_int_equal(lade_mqtt_decode_subscribe(&f, &d, arr, 4), LADE_ERR_PROTO);
}

static void test_roundtrip_publish_truncations(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n;
    struct lade_mqtt_publish p = {.topic = S("x/y"),
                                  .payload = (const uint8_t *)"payload",
                                  .payload_len = 7,
                                  .qos = 1,
                                  .retain = true,
                                  .packet_id = 65535},
                             d;
    assert_int_equal(lade_mqtt_encode_publish(&p, buf, sizeof buf, &n), LADE_OK);
    struct lade_mqtt_frame f = frame_all(buf, n);
    assert_int_equal(lade_mqtt_decode_publish(&f, &d), LADE_OK);
    assert_true(lade_str_eq(d.topic, p.topic));
    assert_int_equal(d.packet_id, 65535);
    assert_true(d.retain);
    assert_memory_equal(d.payload, "payload", 7);
    assert_ptr_equal(d.payload, buf + n - 7); /* a view, not a copy */
    /* A shorter remaining length cutting the topic or id is malformed; cutting the payload
     * just shortens it. */
    for (size_t k = 0; k < f.body_len; k++) {
        struct lade_mqtt_frame t = f;
        t.body_len = k;
        lade_err e = lade_mqtt_decode_publish(&t, &d);
        if (k < 2 + 3 + 2) {
            assert_int_equal(e, LADE_ERR_PROTO);
        } else {
            assert_int_equal(e, LADE_OK);
            assert_int_equal(d.payload_len, k - 7);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_connect),
        cmocka_unit_test(test_encode_connect_rejects),
        cmocka_unit_test(test_encode_publish),
        cmocka_unit_test(test_encode_publish_rejects),
        cmocka_unit_test(test_encode_small_packets),
        cmocka_unit_test(test_encode_subscribe),
        cmocka_unit_test(test_filters_and_topics),
        cmocka_unit_test(test_remaining_length_encode),
        cmocka_unit_test(test_remaining_length_decode),
        cmocka_unit_test(test_frame_flags),
        cmocka_unit_test(test_decode_publish),
        cmocka_unit_test(test_decode_acks),
        cmocka_unit_test(test_roundtrip_connect),
        cmocka_unit_test(test_roundtrip_subscribe),
        cmocka_unit_test(test_roundtrip_publish_truncations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
