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
#include "harness_hub.h"

static struct h_hub hub;
static char svc_token[1200];

struct charger {
    char id[32];
    char dir[600];
    char status[700];
    char log[700];
    pid_t pid;
};

static void capture(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    out[strcspn(out, "\n")] = 0;
    assert_int_equal(pclose(p), 0);
}

static void provision(struct charger *c, const char *id, const char *user_conf)
{
    snprintf(c->id, sizeof c->id, "%s", id);
    assert_int_equal(h_sh("'%s/lade-factory' create --registry '%s' --id %s --hub-host %s "
                          "--hub-port %d --ca '%s' --out '%s/chargers' --hosts-file '%s/hosts' "
                          "--ntp-host ntp.lade.test --fallback-dns 127.0.0.1 >/dev/null",
                          h_build_dir(), hub.registry, id, hub.host, hub.port, hub.ca, hub.dir,
                          hub.dir),
                     0);
    snprintf(c->dir, sizeof c->dir, "%s/chargers/%s", hub.dir, id);
    snprintf(c->status, sizeof c->status, "%s/status.json", c->dir);
    snprintf(c->log, sizeof c->log, "%s/charger.log", c->dir);
    char user[700];
    snprintf(user, sizeof user, "%s/user.conf", c->dir);
    h_write_file(user, user_conf);
}

static void start(struct charger *c)
{
    char bin[600], factory[700], user[700];
    snprintf(bin, sizeof bin, "%s/lade-charger", h_build_dir());
    snprintf(factory, sizeof factory, "%s/factory.conf", c->dir);
    snprintf(user, sizeof user, "%s/user.conf", c->dir);
    unlink(c->status);
    const char *argv[] = {bin, "--factory", factory, "--user", user, "--status", c->status, NULL};
    c->pid = h_spawn(argv, NULL, c->log);
}

static void stop(struct charger *c)
{
    int ws = h_stop(c->pid, SIGTERM, 5000);
    assert_true(WIFEXITED(ws));
    assert_int_equal(WEXITSTATUS(ws), 0); /* clean exit, no sanitizer report */
    c->pid = 0;
}

static bool wait_status(struct charger *c, const char *needle, uint32_t timeout_ms)
{
    if (h_wait_file_contains(c->status, needle, timeout_ms))
        return true;
    char *s = h_read_file(c->status);
    char *l = h_read_file(c->log);
    fprintf(stderr, "%s: no '%s' in status %s\nlog:\n%s\n", c->id, needle, s ? s : "(none)",
            l ? l : "");
    free(s);
    free(l);
    return false;
}

/* Reads an integer field from the flat status JSON. */
static long status_num(struct charger *c, const char *key)
{
    char *s = h_read_file(c->status);
    assert_non_null(s);
    char needle[64];
    snprintf(needle, sizeof needle, "\"%s\":", key);
    char *p = strstr(s, needle);
    assert_non_null(p);
    long v = strtol(p + strlen(needle), NULL, 10);
    free(s);
    return v;
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
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "'%s/lade-factory' service --registry '%s' --name portal --hub-host %s "
             "--out '%s/portal.conf' >/dev/null && "
             "'%s/lade-factory' token --registry '%s' --name portal --hub-host %s --ttl 3600",
             h_build_dir(), hub.registry, hub.host, hub.dir, h_build_dir(), hub.registry, hub.host);
    capture(cmd, svc_token, sizeof svc_token);
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
    struct charger a, b;
    provision(&a, "LDE0000001", fast_user);
    provision(&b, "LDE0000002", fast_user);
    struct hc s = {0};
    connect_service(&s);
    start(&a);
    start(&b);
    assert_true(wait_status(&a, "\"link\":\"online\"", 15000));
    assert_true(wait_status(&b, "\"link\":\"online\"", 15000));

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
    assert_true(wait_status(&a, "\"desired_version\":1", 5000));
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
    assert_true(wait_status(&a, "\"methods_answered\":1", 5000));
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
    assert_true(wait_status(&a, "\"telemetry_interval_s\":5", 10000));
    assert_true(wait_status(&a, "\"desired_version\":2", 5000));
    assert_int_equal(hc_recv_topic(&s, "$lade/svc/reported/LDE0000001/", &m, 10000), 1);
    assert_non_null(strstr(m.payload, "\"telemetryIntervalS\":5"));
    assert_int_equal(status_num(&b, "telemetry_interval_s"), 2);

    /* Desired patch while offline: the hub does not queue it; the charger picks it up from the
     * twin GET after reconnecting. */
    stop(&b);
    assert_int_equal(hc_publish_str(&s, "$lade/svc/twin/LDE0000002/desired/?$rid=10",
                                    "{\"telemetryIntervalS\":7}", 0),
                     0);
    assert_int_equal(hc_recv_topic(&s, "$lade/svc/twin-res/LDE0000002/", &m, 10000), 1);
    start(&b);
    assert_true(wait_status(&b, "\"telemetry_interval_s\":7", 15000));
    assert_true(wait_status(&b, "\"desired_version\":2", 5000));

    /* Hub restart: both chargers notice and are back within their back-off (max 1.5 s). */
    h_hub_stop(&hub);
    assert_true(wait_status(&a, "\"link\":\"waiting\"", 10000));
    h_hub_start(&hub, NULL);
    uint64_t t0 = h_now_ms();
    assert_true(wait_status(&a, "\"connects\":2", 15000));
    assert_true(wait_status(&b, "\"connects\":2", 15000));
    assert_true(wait_status(&a, "\"link\":\"online\"", 1000));
    fprintf(stderr, "measured: back online %llu ms after the hub listened again\n",
            (unsigned long long)(h_now_ms() - t0));
    /* Settings survive the reconnect (twin GET gives the same $version: nothing re-applied). */
    assert_int_equal(status_num(&a, "telemetry_interval_s"), 5);

    hc_close(&s);
    stop(&a);
    stop(&b);
}

static void test_token_renewal(void **state)
{
    (void)state;
    struct charger c;
    provision(&c, "LDE0000003",
              "token_ttl_s = 20\ntelemetry_interval_s = 60\nkeepalive_s = 60\n"
              "backoff_min_ms = 200\nbackoff_max_ms = 1000\nlog_level = debug\n");
    start(&c);
    assert_true(wait_status(&c, "\"link\":\"online\"", 15000));
    /* Renewal at 80..90 % of 20 s: a fresh token before the hub would kick at 20 s. */
    assert_true(wait_status(&c, "\"token_renewals\":1", 25000));
    assert_true(wait_status(&c, "\"connects\":2", 5000));
    assert_int_equal(status_num(&c, "failures"), 0);
    /* The renewal resumed the TLS session: no certificate chain on the wire again. */
    assert_int_equal(status_num(&c, "tls_resumptions"), 1);
    assert_true(status_num(&c, "handshake_bytes_in") < 600);
    fprintf(stderr, "measured: resumed handshake %ld B out / %ld B in\n",
            status_num(&c, "handshake_bytes_out"), status_num(&c, "handshake_bytes_in"));
    assert_int_equal(h_file_count(hub.log, "token-expired"), 0);
    stop(&c);
}

static void test_wrong_key_refused(void **state)
{
    (void)state;
    struct charger c;
    provision(&c, "LDE0000004", fast_user);
    /* Replace the key in the factory file with another valid one. */
    assert_int_equal(h_sh("sed -i 's|^device_key = .*|device_key = "
                          "K2hGxT0mKq5r0s8m8y0aQWx7vX4m2ZKQn0cW2+Gm3+o=|' '%s/factory.conf'",
                          c.dir),
                     0);
    start(&c);
    assert_true(wait_status(&c, "\"last_error\":\"not authorized\"", 15000));
    assert_int_equal(status_num(&c, "connects"), 0);
    /* The key is never written to the log. */
    assert_int_equal(h_file_count(c.log, "K2hGxT0m"), 0);
    stop(&c);
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
