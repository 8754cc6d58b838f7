/* e2e: lade-charger processes against the real hub (Mosquitto 2 + lade_hub.so), provisioned
 * with the real lade-factory, observed through the portal's service identity.
 *
 * Covers: connect + telemetry + twin sync, the ping direct method reaching exactly one
 * charger, desired patches applied online and (via the twin GET after reconnect) offline,
 * older $version ignored, hub restart recovery within the back-off, token renewal before
 * expiry, and a wrong device key refused without ever going online.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "harness_charger.h"
#include "harness_hub.h"

static struct h_hub hub;
static char svc_token[1200];

/* A number from the charger's status file. */
static long status_num(struct h_charger *c, const char *key)
{
    return (long)h_charger_num(c, key);
}

static void connect_service(struct hc *s)
{
    assert_int_equal(
        hc_connect(s, hub.port, hub.ca, hub.host, "svc:portal", "svc:portal", svc_token, true), 0);
    assert_int_equal(hc_subscribe(s, "devices/+/messages/events/#", 1), 1);
    assert_int_equal(hc_subscribe(s, "$lade/svc/#", 0), 0);
}

static const char fast_user[] = "keepalive_s = 30\n"
                                "telemetry_interval_s = 2\n"
                                "token_ttl_s = 3600\n"
                                "backoff_min_ms = 200\n"
                                "backoff_max_ms = 1500\n"
                                "backoff_stable_s = 1\n"
                                "connect_timeout_ms = 2000\n"
                                "log_level = debug\n";

static int setup(void **state)
{
    (void)state;
    h_hub_prepare(&hub, "hub.lade.test");
    char hosts[700];
    snprintf(hosts, sizeof hosts, "%s/hosts", hub.dir);
    h_write_file(hosts, "# test hosts file\n127.0.0.1 hub.lade.test\n");
    h_service_token(&hub, "portal", svc_token, sizeof svc_token);
    assert_non_null(strstr(svc_token, "skn=portal"));
    h_hub_start(&hub, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hc_close_all();
    h_hub_stop(&hub);
    return 0;
}

static void test_online_telemetry_methods_twin(void **state)
{
    (void)state;
    struct h_charger a, b;
    h_charger_provision(&a, &hub, "LDE0000001", NULL, fast_user);
    h_charger_provision(&b, &hub, "LDE0000002", NULL, fast_user);
    struct hc s = {0};
    connect_service(&s);
    h_charger_start(&a);
    h_charger_start(&b);
    assert_true(h_charger_wait_status(&a, "\"link\":\"online\"", 15000));
    assert_true(h_charger_wait_status(&b, "\"link\":\"online\"", 15000));

    /* SPEC R2: the charger listens on no port (TCP or UDP). */
    assert_int_not_equal(h_sh("ss -H -ltunp | grep -q 'pid=%d,'", (int)a.pid), 0);
    assert_int_equal(h_sh("ss -H -tnp | grep -q 'pid=%d,'", (int)a.pid), 0); /* ss works */

    /* Telemetry from each charger reaches the portal, on its own topic. */
    struct hc_msg m;
    assert_int_equal(hc_recv_topic(&s, "devices/LDE0000001/messages/events/", &m, 10000), 1);
    assert_non_null(strstr(m.payload, "\"type\":\"state\""));
    assert_non_null(strstr(m.topic, "%24.ct=application%2Fjson"));
    assert_int_equal(hc_recv_topic(&s, "devices/LDE0000002/messages/events/", &m, 10000), 1);

    /* The connect is complete once the twin came back; its cost is recorded. */
    assert_true(h_charger_wait_status(&a, "\"desired_version\":1", 5000));
    assert_true(status_num(&a, "connect_bytes_out") > status_num(&a, "handshake_bytes_out"));
    assert_true(status_num(&a, "handshake_bytes_in") > 300);
    fprintf(stderr,
            "measured: TLS handshake %ld B out / %ld B in; whole connect %ld B out / %ld B in\n",
            status_num(&a, "handshake_bytes_out"), status_num(&a, "handshake_bytes_in"),
            status_num(&a, "connect_bytes_out"), status_num(&a, "connect_bytes_in"));

    /* Direct method: exactly one charger answers. */
    assert_int_equal(hc_publish_str(&s, "$lade/svc/methods/LDE0000001/ping/?$rid=77", "{}", 0), 0);
    assert_int_equal(hc_recv_topic(&s, "$lade/svc/methods-res/LDE0000001/200/?$rid=77", &m, 10000),
                     1);
    assert_non_null(strstr(m.payload, "\"pong\":true"));
    assert_non_null(strstr(m.payload, "\"device\":\"LDE0000001\""));
    assert_true(h_charger_wait_status(&a, "\"methods_answered\":1", 5000));
    assert_int_equal(status_num(&b, "methods_answered"), 0);
    /* An unknown method gets a 404 from the charger, not silence. */
    assert_int_equal(
        hc_publish_str(&s, "$lade/svc/methods/LDE0000002/reboot-now/?$rid=78", "{}", 0), 0);
    assert_int_equal(hc_recv_topic(&s, "$lade/svc/methods-res/LDE0000002/404/?$rid=78", &m, 10000),
                     1);

    /* Desired patch while online: applied, acknowledged in reported properties. */
    assert_int_equal(hc_publish_str(&s, "$lade/svc/twin/LDE0000001/desired/?$rid=9",
                                    "{\"telemetryIntervalS\":5}", 0),
                     0);
    assert_true(h_charger_wait_status(&a, "\"telemetry_interval_s\":5", 10000));
    assert_true(h_charger_wait_status(&a, "\"desired_version\":2", 5000));
    assert_int_equal(hc_recv_topic(&s, "$lade/svc/reported/LDE0000001/", &m, 10000), 1);
    assert_non_null(strstr(m.payload, "\"telemetryIntervalS\":5"));
    assert_int_equal(status_num(&b, "telemetry_interval_s"), 2);

    /* Desired patch while offline: the hub does not queue it; the charger picks it up from the
     * twin GET after reconnecting. */
    h_charger_stop(&b);
    assert_int_equal(hc_publish_str(&s, "$lade/svc/twin/LDE0000002/desired/?$rid=10",
                                    "{\"telemetryIntervalS\":7}", 0),
                     0);
    assert_int_equal(hc_recv_topic(&s, "$lade/svc/twin-res/LDE0000002/", &m, 10000), 1);
    h_charger_start(&b);
    assert_true(h_charger_wait_status(&b, "\"telemetry_interval_s\":7", 15000));
    assert_true(h_charger_wait_status(&b, "\"desired_version\":2", 5000));

    /* Hub restart: both chargers notice and are back within their back-off (max 1.5 s). */
    h_hub_stop(&hub);
    assert_true(h_charger_wait_status(&a, "\"link\":\"waiting\"", 10000));
    h_hub_start(&hub, NULL);
    uint64_t t0 = h_now_ms();
    assert_true(h_charger_wait_status(&a, "\"connects\":2", 15000));
    assert_true(h_charger_wait_status(&b, "\"connects\":2", 15000));
    assert_true(h_charger_wait_status(&a, "\"link\":\"online\"", 1000));
    fprintf(stderr, "measured: back online %llu ms after the hub listened again\n",
            (unsigned long long)(h_now_ms() - t0));
    /* Settings survive the reconnect (twin GET gives the same $version: nothing re-applied). */
    assert_int_equal(status_num(&a, "telemetry_interval_s"), 5);

    hc_close(&s);
    h_charger_stop(&a);
    h_charger_stop(&b);
}

static void test_token_renewal(void **state)
{
    (void)state;
    struct h_charger c;
    h_charger_provision(&c, &hub, "LDE0000003", NULL,
                        "token_ttl_s = 20\ntelemetry_interval_s = 60\nkeepalive_s = 60\n"
                        "backoff_min_ms = 200\nbackoff_max_ms = 1000\nlog_level = debug\n");
    h_charger_start(&c);
    assert_true(h_charger_wait_status(&c, "\"link\":\"online\"", 15000));
    /* Renewal at 80..90 % of 20 s: a fresh token before the hub would kick at 20 s. */
    assert_true(h_charger_wait_status(&c, "\"token_renewals\":1", 25000));
    assert_true(h_charger_wait_status(&c, "\"connects\":2", 5000));
    assert_int_equal(status_num(&c, "failures"), 0);
    /* The renewal resumed the TLS session: no certificate chain on the wire again. */
    assert_int_equal(status_num(&c, "tls_resumptions"), 1);
    assert_true(status_num(&c, "handshake_bytes_in") < 600);
    fprintf(stderr, "measured: resumed handshake %ld B out / %ld B in\n",
            status_num(&c, "handshake_bytes_out"), status_num(&c, "handshake_bytes_in"));
    assert_int_equal(h_file_count(hub.log, "token-expired"), 0);
    h_charger_stop(&c);
}

static void test_wrong_key_refused(void **state)
{
    (void)state;
    struct h_charger c;
    h_charger_provision(&c, &hub, "LDE0000004", NULL, fast_user);
    /* Replace the key in the factory file with another valid one. */
    assert_int_equal(h_sh("sed -i 's|^device_key = .*|device_key = "
                          "K2hGxT0mKq5r0s8m8y0aQWx7vX4m2ZKQn0cW2+Gm3+o=|' '%s/factory.conf'",
                          c.dir),
                     0);
    h_charger_start(&c);
    assert_true(h_charger_wait_status(&c, "\"last_error\":\"not authorized\"", 15000));
    assert_int_equal(status_num(&c, "connects"), 0);
    /* The key is never written to the log. */
    assert_int_equal(h_file_count(c.log, "K2hGxT0m"), 0);
    h_charger_stop(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_online_telemetry_methods_twin),
        cmocka_unit_test(test_token_renewal),
        cmocka_unit_test(test_wrong_key_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
