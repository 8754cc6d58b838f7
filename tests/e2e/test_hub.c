/* e2e: the lade hub — real Mosquitto 2 with the lade_hub plugin on a TLS listener, clients
 * speaking the IoT Hub dialect (harness_hub.c). Covers SAS authentication, the per-device ACL,
 * routing of twins and methods to exactly one device, token-expiry kicks and lifecycle events. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "harness_hub.h"
#include "lade/clock.h"
#include "lade/registry.h"
#include "lade/sas.h"

#define HOST "hub.lade.test"
#define TTL  3600 /* plugin_opt_max_token_ttl_s */

static struct h_hub hub;
static uint8_t key_a[32], key_b[32], key_c[32], key_off[32], key_svc[32];

#define QUIET_MS 1000 /* how long "nothing arrives" is watched */

static int group_setup(void **state)
{
    (void)state;
    struct lade_registry *reg = NULL;
    int64_t now = lade_wall_s();
    h_hub_prepare(&hub, HOST);
    if (lade_registry_open(hub.registry, &reg) != LADE_OK ||
        lade_registry_device_create(reg, "dev-a", now, key_a) != LADE_OK ||
        lade_registry_device_create(reg, "dev-b", now, key_b) != LADE_OK ||
        lade_registry_device_create(reg, "dev-c", now, key_c) != LADE_OK ||
        lade_registry_device_create(reg, "dev-off", now, key_off) != LADE_OK ||
        lade_registry_device_set_enabled(reg, "dev-off", false) != LADE_OK ||
        lade_random(key_svc, sizeof key_svc) != LADE_OK ||
        lade_registry_service_add(reg, "portal", key_svc, sizeof key_svc, now) != LADE_OK)
        return -1;
    lade_registry_close(reg);
    h_hub_start(&hub, "plugin_opt_max_token_ttl_s 3600\n"
                      "plugin_opt_token_grace_s 0\n"
                      "plugin_opt_method_timeout_s 4\n");
    return 0;
}

static int test_teardown(void **state)
{
    (void)state;
    hc_close_all();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    h_hub_stop(&hub);
    return 0;
}

static void token(const char *dev, const uint8_t *key, int64_t expiry, const char *skn, char *out,
                  size_t cap)
{
    size_t n;
    assert_int_equal(lade_sas_token_build(HOST, dev, key, 32, expiry, skn, out, cap, &n), LADE_OK);
}

static void username(const char *dev, char *out, size_t cap)
{
    snprintf(out, cap, HOST "/%s/?api-version=2021-04-12", dev);
}

/* CONNECT as device id with a token made for token_dev with key, expiring in ttl_s. */
static int connect_dev(struct hc *c, const char *id, const char *token_dev, const uint8_t *key,
                       int64_t ttl_s)
{
    char tok[600], user[300];
    token(token_dev, key, lade_wall_s() + ttl_s, NULL, tok, sizeof tok);
    username(id, user, sizeof user);
    return hc_connect(c, hub.port, hub.ca, HOST, id, user, tok, false);
}

static void connect_device(struct hc *c, const char *id, const uint8_t *key)
{
    assert_int_equal(connect_dev(c, id, id, key, 600), 0);
}

static void connect_service(struct hc *c)
{
    char tok[600];
    token(NULL, key_svc, lade_wall_s() + 600, "portal", tok, sizeof tok);
    assert_int_equal(hc_connect(c, hub.port, hub.ca, HOST, "svc:portal", "svc:portal", tok, true),
                     0);
}

static void expect_nothing(struct hc *c, const char *prefix)
{
    struct hc_msg m;
    int r = hc_recv_topic(c, prefix, &m, QUIET_MS);
    if (r == 1)
        fail_msg("unexpected message on %s: %.*s", m.topic, (int)m.len, m.payload);
}

static void expect_msg(struct hc *c, const char *topic, const char *payload_part)
{
    struct hc_msg m;
    if (hc_recv_topic(c, topic, &m, 10000) != 1)
        fail_msg("no message on %s", topic);
    if (strcmp(m.topic, topic) != 0)
        fail_msg("topic %s, expected %s", m.topic, topic);
    if (payload_part && !strstr(m.payload, payload_part))
        fail_msg("payload on %s is '%s', expected it to contain '%s'", topic, m.payload,
                 payload_part);
}

/* ---- authentication ---- */

static void test_auth_good(void **state)
{
    (void)state;
    struct hc a, s;
    connect_device(&a, "dev-a", key_a);
    connect_service(&s);
    /* Raw '/' in sr signs and names the same resource. */
    struct hc a2;
    char msg[200], sig[64], sig_url[200], tok[600], user[300];
    int64_t exp = lade_wall_s() + 600;
    size_t n;
    snprintf(msg, sizeof msg, HOST "/devices/dev-b\n%lld", (long long)exp);
    assert_int_equal(lade_sas_sign(key_b, 32, msg, strlen(msg), sig, sizeof sig, &n), LADE_OK);
    assert_int_equal(lade_url_encode(sig, n, sig_url, sizeof sig_url, &n), LADE_OK);
    snprintf(tok, sizeof tok, "SharedAccessSignature se=%lld&sr=" HOST "/devices/dev-b&sig=%s",
             (long long)exp, sig_url);
    username("dev-b", user, sizeof user);
    assert_int_equal(hc_connect(&a2, hub.port, hub.ca, HOST, "dev-b", user, tok, false), 0);
    hc_close(&a2);
    hc_close(&a);
    hc_close(&s);
}

static void test_auth_refused(void **state)
{
    (void)state;
    struct hc c;
    uint8_t wrong[32];
    memcpy(wrong, key_a, 32);
    wrong[5] ^= 0x40;
    char tok[600], user[300];

    assert_int_equal(connect_dev(&c, "dev-a", "dev-a", wrong, 600), 5);       /* wrong key */
    assert_int_equal(connect_dev(&c, "dev-a", "dev-a", key_a, -10), 5);       /* expired */
    assert_int_equal(connect_dev(&c, "dev-a", "dev-b", key_b, 600), 5);       /* B's token */
    assert_int_equal(connect_dev(&c, "dev-a", "dev-a", key_a, TTL + 60), 5);  /* over policy */
    assert_int_equal(connect_dev(&c, "dev-x", "dev-x", key_a, 600), 5);       /* unknown */
    assert_int_equal(connect_dev(&c, "dev-off", "dev-off", key_off, 600), 5); /* disabled */

    username("dev-a", user, sizeof user);
    assert_int_equal(hc_connect(&c, hub.port, hub.ca, HOST, "dev-a", user, "garbage", false), 5);
    assert_int_equal(hc_connect(&c, hub.port, hub.ca, HOST, "dev-a", user, "", false), 5);
    assert_int_equal(hc_connect(&c, hub.port, hub.ca, HOST, "dev-a", user, NULL, false), 5);

    /* Username naming another device or hub, or missing. */
    token("dev-a", key_a, lade_wall_s() + 600, NULL, tok, sizeof tok);
    assert_int_equal(hc_connect(&c, hub.port, hub.ca, HOST, "dev-a",
                                HOST "/dev-b/?api-version=2021-04-12", tok, false),
                     5);
    assert_int_equal(hc_connect(&c, hub.port, hub.ca, HOST, "dev-a",
                                "other.hub/dev-a/?api-version=2021-04-12", tok, false),
                     5);
    assert_int_equal(hc_connect(&c, hub.port, hub.ca, HOST, "dev-a", NULL, NULL, false), 5);
    /* A password without a username is a protocol error: closed without CONNACK. */
    assert_int_not_equal(hc_connect(&c, hub.port, hub.ca, HOST, "dev-a", NULL, tok, false), 0);
    /* A device token with skn, a device posing as the service, a service token with another
     * skn. */
    token("dev-a", key_a, lade_wall_s() + 600, "dev-a", tok, sizeof tok);
    assert_int_equal(hc_connect(&c, hub.port, hub.ca, HOST, "dev-a", user, tok, false), 5);
    token("dev-a", key_a, lade_wall_s() + 600, NULL, tok, sizeof tok);
    assert_int_equal(hc_connect(&c, hub.port, hub.ca, HOST, "svc:portal", "svc:portal", tok, true),
                     5);
    token(NULL, key_svc, lade_wall_s() + 600, "other", tok, sizeof tok);
    assert_int_equal(hc_connect(&c, hub.port, hub.ca, HOST, "svc:portal", "svc:portal", tok, true),
                     5);
    token(NULL, key_svc, lade_wall_s() + 600, "portal", tok, sizeof tok);
    assert_int_equal(
        hc_connect(&c, hub.port, hub.ca, HOST, "svc:portal", HOST "/svc:portal", tok, true), 5);

    /* The hub is still healthy after all that. */
    connect_device(&c, "dev-a", key_a);
    hc_close(&c);
}

/* ---- ACL ---- */

static void test_acl_telemetry_and_c2d(void **state)
{
    (void)state;
    struct hc a, b, s;
    connect_device(&a, "dev-a", key_a);
    connect_device(&b, "dev-b", key_b);
    connect_service(&s);
    assert_int_equal(hc_subscribe(&s, "devices/+/messages/events/#", 1), 1);

    /* Own telemetry passes (with a property bag), B's topic from A does not. */
    assert_int_equal(hc_publish_str(&a, "devices/dev-a/messages/events/%24.ct=application%2Fjson",
                                    "{\"t\":1}", 1),
                     0);
    expect_msg(&s, "devices/dev-a/messages/events/%24.ct=application%2Fjson", "\"t\":1");
    assert_int_equal(hc_publish_str(&a, "devices/dev-b/messages/events/", "{\"spoof\":1}", 1), 0);
    assert_int_equal(hc_publish_str(&a, "devices/dev-a/messages/devicebound/x", "{}", 0), 0);
    expect_nothing(&s, "devices/");

    /* Subscriptions: own C2D yes; B's C2D, catch-alls, service topics no. */
    assert_int_equal(hc_subscribe(&a, "devices/dev-a/messages/devicebound/#", 1), 1);
    assert_int_equal(hc_subscribe(&b, "devices/dev-b/messages/devicebound/#", 1), 1);
    assert_int_equal(hc_subscribe(&a, "devices/dev-b/messages/devicebound/#", 1), 0x80);
    assert_int_equal(hc_subscribe(&a, "devices/+/messages/devicebound/#", 1), 0x80);
    assert_int_equal(hc_subscribe(&a, "devices/+/messages/events/#", 0), 0x80);
    assert_int_equal(hc_subscribe(&a, "#", 0), 0x80);
    assert_int_equal(hc_subscribe(&a, "$iothub/#", 0), 0x80);
    assert_int_equal(hc_subscribe(&a, "$lade/svc/#", 0), 0x80);

    /* A C2D message from the service reaches its device only. */
    assert_int_equal(hc_publish_str(&s, "devices/dev-b/messages/devicebound/k=v", "c2d", 1), 0);
    expect_msg(&b, "devices/dev-b/messages/devicebound/k=v", "c2d");
    expect_nothing(&a, "devices/");

    /* QoS 2 and retained publishes are refused (not delivered); the connection stays up. */
    assert_int_equal(hc_publish_str(&a, "devices/dev-a/messages/events/", "{\"q\":2}", 2), 0);
    assert_int_equal(hc_publish(&a, "devices/dev-a/messages/events/", "{\"r\":1}", 7, 0, true), 0);
    expect_nothing(&s, "devices/");
    assert_int_equal(hc_publish_str(&a, "devices/dev-a/messages/events/", "{\"after\":1}", 1), 0);
    expect_msg(&s, "devices/dev-a/messages/events/", "after");

    hc_close(&a);
    hc_close(&b);
    hc_close(&s);
}

/* ---- twins ---- */

static void test_twin(void **state)
{
    (void)state;
    struct hc a, b, s;
    struct hc_msg m;
    connect_device(&a, "dev-a", key_a);
    connect_device(&b, "dev-b", key_b);
    connect_service(&s);
    assert_int_equal(hc_subscribe(&s, "$lade/svc/#", 1), 1);
    for (int i = 0; i < 2; i++) {
        struct hc *d = i ? &b : &a;
        assert_int_equal(hc_subscribe(d, "$iothub/twin/res/#", 0), 0);
        assert_int_equal(hc_subscribe(d, "$iothub/twin/PATCH/properties/desired/#", 0), 0);
    }

    /* GET is answered to the asking device only. */
    assert_int_equal(hc_publish_str(&a, "$iothub/twin/GET/?$rid=1", "", 0), 0);
    assert_int_equal(hc_recv_topic(&a, "$iothub/twin/res/", &m, 5000), 1);
    assert_string_equal(m.topic, "$iothub/twin/res/200/?$rid=1");
    assert_non_null(strstr(m.payload, "\"desired\":{"));
    assert_non_null(strstr(m.payload, "\"reported\":{"));
    assert_non_null(strstr(m.payload, "\"$version\":1"));
    expect_nothing(&b, "$iothub/");

    /* Reported patch: 204 with the new version; bad JSON 400; the service sees the change. */
    assert_int_equal(
        hc_publish_str(&a, "$iothub/twin/PATCH/properties/reported/?$rid=2", "{\"fw\":\"1.2\"}", 1),
        0);
    expect_msg(&a, "$iothub/twin/res/204/?$rid=2&$version=2", NULL);
    expect_msg(&s, "$lade/svc/reported/dev-a/?$version=2", "\"fw\":\"1.2\"");
    assert_int_equal(
        hc_publish_str(&a, "$iothub/twin/PATCH/properties/reported/?$rid=3", "{\"fw\":", 0), 0);
    expect_msg(&a, "$iothub/twin/res/400/?$rid=3", NULL);
    assert_int_equal(hc_publish_str(&a, "$iothub/twin/GET/?$rid=4", "", 0), 0);
    expect_msg(&a, "$iothub/twin/res/200/?$rid=4", "\"fw\":\"1.2\",\"$version\":2");
    expect_nothing(&b, "$iothub/");

    /* A GET without $rid, or with one that would inject into the reply topic, is refused. */
    assert_int_equal(hc_publish_str(&a, "$iothub/twin/GET/", "", 0), 0);
    assert_int_equal(hc_publish_str(&a, "$iothub/twin/GET/?$rid=1/../x", "", 0), 0);
    expect_nothing(&a, "$iothub/");

    /* Desired patch from the service: stored, versioned, forwarded to that device only. */
    assert_int_equal(
        hc_publish_str(&s, "$lade/svc/twin/dev-a/desired/?$rid=d1", "{\"maxCurrent\":16}", 1), 0);
    expect_msg(&s, "$lade/svc/twin-res/dev-a/204/?$rid=d1&$version=2", NULL);
    expect_msg(&a, "$iothub/twin/PATCH/properties/desired/?$version=2",
               "{\"maxCurrent\":16,\"$version\":2}");
    expect_nothing(&b, "$iothub/");
    assert_int_equal(hc_publish_str(&s, "$lade/svc/twin/dev-a/get/?$rid=g1", "", 0), 0);
    expect_msg(&s, "$lade/svc/twin-res/dev-a/200/?$rid=g1",
               "\"desired\":{\"maxCurrent\":16,\"$version\":2}");
    assert_int_equal(hc_publish_str(&s, "$lade/svc/twin/dev-a/desired/?$rid=d2", "[1]", 0), 0);
    expect_msg(&s, "$lade/svc/twin-res/dev-a/400/?$rid=d2", NULL);
    assert_int_equal(hc_publish_str(&s, "$lade/svc/twin/nobody/get/?$rid=g2", "", 0), 0);
    expect_msg(&s, "$lade/svc/twin-res/nobody/404/?$rid=g2", NULL);

    /* A device cannot use the service's topics nor write another device's twin. */
    assert_int_equal(hc_publish_str(&b, "$lade/svc/twin/dev-a/desired/?$rid=x", "{\"a\":1}", 0), 0);
    expect_nothing(&a, "$iothub/");
    hc_close(&a);
    hc_close(&b);
    hc_close(&s);
}

/* ---- direct methods ---- */

static void test_methods(void **state)
{
    (void)state;
    struct hc a, b, s;
    struct hc_msg m;
    connect_device(&a, "dev-a", key_a);
    connect_device(&b, "dev-b", key_b);
    connect_service(&s);
    assert_int_equal(hc_subscribe(&s, "$lade/svc/methods-res/#", 0), 0);
    assert_int_equal(hc_subscribe(&a, "$iothub/methods/POST/#", 0), 0);
    assert_int_equal(hc_subscribe(&b, "$iothub/methods/POST/#", 0), 0);

    assert_int_equal(
        hc_publish_str(&s, "$lade/svc/methods/dev-a/setCurrent/?$rid=7", "{\"a\":10}", 1), 0);
    assert_int_equal(hc_recv_topic(&a, "$iothub/methods/POST/", &m, 5000), 1);
    assert_string_equal(m.topic, "$iothub/methods/POST/setCurrent/?$rid=7");
    assert_string_equal(m.payload, "{\"a\":10}");
    expect_nothing(&b, "$iothub/");
    /* B cannot answer for A (it has no such call), A's answer reaches the service. */
    assert_int_equal(hc_publish_str(&b, "$iothub/methods/res/500/?$rid=7", "{}", 0), 0);
    assert_int_equal(hc_publish_str(&a, "$iothub/methods/res/200/?$rid=7", "{\"ok\":true}", 1), 0);
    expect_msg(&s, "$lade/svc/methods-res/dev-a/200/?$rid=7", "{\"ok\":true}");

    /* Offline (registered, not connected) and unknown devices: immediate 404. */
    assert_int_equal(hc_publish_str(&s, "$lade/svc/methods/dev-c/reboot/?$rid=8", "{}", 0), 0);
    expect_msg(&s, "$lade/svc/methods-res/dev-c/404/?$rid=8&$origin=hub", NULL);
    assert_int_equal(hc_publish_str(&s, "$lade/svc/methods/nobody/reboot/?$rid=9", "{}", 0), 0);
    expect_msg(&s, "$lade/svc/methods-res/nobody/404/?$rid=9&$origin=hub", NULL);

    /* No answer: 504 after plugin_opt_method_timeout_s. */
    assert_int_equal(hc_publish_str(&s, "$lade/svc/methods/dev-b/slow/?$rid=10", "{}", 0), 0);
    expect_msg(&b, "$iothub/methods/POST/slow/?$rid=10", NULL);
    expect_msg(&s, "$lade/svc/methods-res/dev-b/504/?$rid=10&$origin=hub", NULL);
    /* A late answer goes nowhere. */
    assert_int_equal(hc_publish_str(&b, "$iothub/methods/res/200/?$rid=10", "{}", 0), 0);
    expect_nothing(&s, "$lade/");

    /* A device cannot call methods. */
    assert_int_equal(hc_publish_str(&b, "$lade/svc/methods/dev-a/x/?$rid=11", "{}", 0), 0);
    assert_int_equal(hc_publish_str(&b, "$iothub/methods/POST/x/?$rid=11", "{}", 0), 0);
    expect_nothing(&a, "$iothub/");
    hc_close(&a);
    hc_close(&b);
    hc_close(&s);
}

/* ---- lifecycle: events, takeover, token expiry ---- */

static void test_events_and_takeover(void **state)
{
    (void)state;
    struct hc a1, a2, s;
    connect_service(&s);
    assert_int_equal(hc_subscribe(&s, "$lade/svc/events/+", 1), 1);
    assert_int_equal(hc_subscribe(&s, "devices/+/messages/events/#", 0), 0);

    connect_device(&a1, "dev-a", key_a);
    expect_msg(&s, "$lade/svc/events/dev-a", "\"event\":\"connected\"");
    /* A second CONNECT with the same id takes over; the first connection is dropped, and the
     * hub keeps treating the id as online (no "disconnected" for the replaced one). */
    connect_device(&a2, "dev-a", key_a);
    expect_msg(&s, "$lade/svc/events/dev-a", "\"event\":\"connected\"");
    assert_true(hc_wait_closed(&a1, 5000));
    expect_nothing(&s, "$lade/svc/events/");
    assert_int_equal(hc_publish_str(&a2, "devices/dev-a/messages/events/", "{\"n\":2}", 1), 0);
    expect_msg(&s, "devices/dev-a/messages/events/", "\"n\":2");
    /* A refused CONNECT with the same id does not disturb the online one. */
    struct hc bad;
    assert_int_equal(connect_dev(&bad, "dev-a", "dev-a", key_b, 600), 5);
    assert_int_equal(hc_publish_str(&a2, "devices/dev-a/messages/events/", "{\"n\":3}", 1), 0);
    expect_msg(&s, "devices/dev-a/messages/events/", "\"n\":3");

    hc_close(&a2);
    expect_msg(&s, "$lade/svc/events/dev-a", "\"event\":\"disconnected\"");
    hc_close(&a1);
    hc_close(&s);
}

static void test_token_expiry_kicks(void **state)
{
    (void)state;
    struct hc b, s;
    connect_service(&s);
    assert_int_equal(hc_subscribe(&s, "$lade/svc/events/dev-b", 1), 1);
    uint64_t t0 = h_now_ms();
    assert_int_equal(connect_dev(&b, "dev-b", "dev-b", key_b, 3), 0);
    expect_msg(&s, "$lade/svc/events/dev-b", "\"event\":\"connected\"");
    assert_true(hc_wait_closed(&b, 10000));
    /* Not at once but at expiry: the token's se is (whole seconds of now) + 3. */
    assert_true(h_now_ms() - t0 >= 1500);
    expect_msg(&s, "$lade/svc/events/dev-b", "\"reason\":\"token-expired\"");
    assert_true(h_wait_file_contains(hub.log, "token of 'dev-b' expired", 5000));
    hc_close(&b);
    hc_close(&s);
}

/* Keys and tokens never reach the log. */
static void test_no_secrets_in_log(void **state)
{
    (void)state;
    char b64[64];
    size_t n;
    assert_int_equal(lade_base64_encode(key_a, 32, b64, sizeof b64, &n), LADE_OK);
    assert_int_equal(h_file_count(hub.log, b64), 0);
    assert_int_equal(h_file_count(hub.log, "SharedAccessSignature"), 0);
    assert_int_equal(h_file_count(hub.log, "sig="), 0);
    assert_true(h_file_count(hub.log, "refused 'dev-a'") > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_auth_good, test_teardown),
        cmocka_unit_test_teardown(test_auth_refused, test_teardown),
        cmocka_unit_test_teardown(test_acl_telemetry_and_c2d, test_teardown),
        cmocka_unit_test_teardown(test_twin, test_teardown),
        cmocka_unit_test_teardown(test_methods, test_teardown),
        cmocka_unit_test_teardown(test_events_and_takeover, test_teardown),
        cmocka_unit_test_teardown(test_token_expiry_kicks, test_teardown),
        cmocka_unit_test_teardown(test_no_secrets_in_log, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
