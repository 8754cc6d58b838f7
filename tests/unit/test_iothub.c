/* Unit tests for the IoT Hub dialect's identity strings and topics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lade/iothub.h"

static void test_device_id(void **state)
{
    (void)state;
    assert_true(lade_iothub_device_id_valid("LDE0001234"));
    assert_true(lade_iothub_device_id_valid("a-b-C-9"));
    assert_false(lade_iothub_device_id_valid(""));
    assert_false(lade_iothub_device_id_valid(NULL));
    assert_false(lade_iothub_device_id_valid("LDE/1"));
    assert_false(lade_iothub_device_id_valid("LDE+1"));
    assert_false(lade_iothub_device_id_valid("LDE#"));
    assert_false(lade_iothub_device_id_valid("LDE 1"));
    assert_false(lade_iothub_device_id_valid("svc:portal"));
    char id[130];
    memset(id, 'a', 129);
    id[129] = 0;
    assert_false(lade_iothub_device_id_valid(id));
    id[128] = 0;
    assert_true(lade_iothub_device_id_valid(id));
}

static void test_username(void **state)
{
    (void)state;
    char out[128];
    size_t n;
    assert_int_equal(lade_iothub_username("hub.lade.test", "LDE1", out, sizeof out, &n), LADE_OK);
    assert_string_equal(out, "hub.lade.test/LDE1/?api-version=2021-04-12");
    assert_int_equal(n, strlen(out));
    assert_int_equal(lade_iothub_username("hub.lade.test", "LDE1", out, n, &n), LADE_ERR_NOSPACE);
    assert_int_equal(lade_iothub_username("hub", "bad/id", out, sizeof out, &n), LADE_ERR_INVAL);
}

static void test_telemetry_topic(void **state)
{
    (void)state;
    char out[256];
    size_t n;
    assert_int_equal(lade_iothub_telemetry_topic("LDE1", NULL, 0, out, sizeof out, &n), LADE_OK);
    assert_string_equal(out, "devices/LDE1/messages/events/");
    struct lade_iothub_prop props[] = {
        {"$.ct", "application/json"}, {"$.ce", "utf-8"}, {"kind", "state snap"}};
    assert_int_equal(lade_iothub_telemetry_topic("LDE1", props, 3, out, sizeof out, &n), LADE_OK);
    assert_string_equal(out, "devices/LDE1/messages/events/"
                             "%24.ct=application%2Fjson&%24.ce=utf-8&kind=state%20snap");
    assert_int_equal(n, strlen(out));
    /* Exactly-fitting and one-short buffers. */
    char tight[128];
    assert_int_equal(lade_iothub_telemetry_topic("LDE1", props, 3, tight, n + 1, &n), LADE_OK);
    assert_int_equal(lade_iothub_telemetry_topic("LDE1", props, 3, tight, n, &n), LADE_ERR_NOSPACE);
}

static void test_builders(void **state)
{
    (void)state;
    char out[128];
    size_t n;
    assert_int_equal(lade_iothub_c2d_filter("LDE1", out, sizeof out, &n), LADE_OK);
    assert_string_equal(out, "devices/LDE1/messages/devicebound/#");
    assert_int_equal(lade_iothub_twin_get_topic(7, out, sizeof out, &n), LADE_OK);
    assert_string_equal(out, "$iothub/twin/GET/?$rid=7");
    assert_int_equal(lade_iothub_twin_report_topic(4294967295u, out, sizeof out, &n), LADE_OK);
    assert_string_equal(out, "$iothub/twin/PATCH/properties/reported/?$rid=4294967295");
    assert_int_equal(lade_iothub_method_response_topic(200, LADE_STR("a1b2"), out, sizeof out, &n),
                     LADE_OK);
    assert_string_equal(out, "$iothub/methods/res/200/?$rid=a1b2");
    assert_int_equal(lade_iothub_method_response_topic(200, LADE_STR("a/#"), out, sizeof out, &n),
                     LADE_ERR_INVAL);
    assert_int_equal(lade_iothub_method_response_topic(200, LADE_STR(""), out, sizeof out, &n),
                     LADE_ERR_INVAL);
}

static void parse_ok(const char *topic, struct lade_iothub_msg *m)
{
    assert_int_equal(lade_iothub_parse_topic("LDE1", topic, strlen(topic), m), LADE_OK);
}

static void parse_bad(const char *topic)
{
    struct lade_iothub_msg m;
    assert_int_equal(lade_iothub_parse_topic("LDE1", topic, strlen(topic), &m), LADE_ERR_PROTO);
}

static void test_parse(void **state)
{
    (void)state;
    struct lade_iothub_msg m;
    parse_ok("$iothub/twin/res/200/?$rid=12", &m);
    assert_int_equal(m.kind, LADE_IOTHUB_TWIN_RESPONSE);
    assert_int_equal(m.status, 200);
    assert_true(lade_str_eq_c(m.rid, "12"));
    assert_false(m.has_version);
    parse_ok("$iothub/twin/res/204/?$rid=13&$version=42", &m);
    assert_int_equal(m.status, 204);
    assert_true(m.has_version);
    assert_int_equal(m.version, 42);
    parse_ok("$iothub/twin/PATCH/properties/desired/?$version=9", &m);
    assert_int_equal(m.kind, LADE_IOTHUB_TWIN_DESIRED);
    assert_int_equal(m.version, 9);
    parse_ok("$iothub/methods/POST/ping/?$rid=1f", &m);
    assert_int_equal(m.kind, LADE_IOTHUB_METHOD);
    assert_true(lade_str_eq_c(m.method, "ping"));
    assert_true(lade_str_eq_c(m.rid, "1f"));
    parse_ok("devices/LDE1/messages/devicebound/%24.mid=5&x=y", &m);
    assert_int_equal(m.kind, LADE_IOTHUB_C2D);
    struct lade_str v;
    assert_true(lade_iothub_prop_get(m.props, "x", &v));
    assert_true(lade_str_eq_c(v, "y"));
    assert_true(lade_iothub_prop_get(m.props, "%24.mid", &v));
    assert_true(lade_str_eq_c(v, "5"));
    assert_false(lade_iothub_prop_get(m.props, "z", &v));
    parse_ok("some/other/topic", &m);
    assert_int_equal(m.kind, LADE_IOTHUB_UNKNOWN);

    parse_bad("$iothub/twin/res/abc/?$rid=1");
    parse_bad("$iothub/twin/res/200/?$version=3");
    parse_bad("$iothub/twin/res/200");
    parse_bad("$iothub/twin/res/200/?$rid=1&$version=x");
    parse_bad("$iothub/twin/res/99/?$rid=1");
    parse_bad("$iothub/twin/PATCH/properties/desired/?$version=");
    parse_bad("$iothub/twin/PATCH/properties/desired/");
    parse_bad("$iothub/twin/PATCH/properties/desired/?$version=-1");
    parse_bad("$iothub/methods/POST//?$rid=1");
    parse_bad("$iothub/methods/POST/ping/?x=1");
    parse_bad("$iothub/methods/POST/a/b/?$rid=1");
    parse_bad("devices/LDE2/messages/devicebound/x=y");
    parse_bad("devices/LDE1/messages/events/");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_device_id),       cmocka_unit_test(test_username),
        cmocka_unit_test(test_telemetry_topic), cmocka_unit_test(test_builders),
        cmocka_unit_test(test_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
