/* Unit tests for the factory/user settings files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lade/settings.h"

static char g_msgs[4096];
static int g_nmsgs;
static void collect(void *ud, const char *msg)
{
    (void)ud;
    strncat(g_msgs, msg, sizeof g_msgs - strlen(g_msgs) - 2);
    strcat(g_msgs, "\n");
    g_nmsgs++;
}
static void reset(void)
{
    g_msgs[0] = 0;
    g_nmsgs = 0;
}

static const char factory[] = "# factory\n"
                              "device_id = LDE0001234\n"
                              "device_key = K2hGxT0mKq5r0s8m8y0aQWx7vX4m2ZKQn0cW2+Gm3+o=\n"
                              "hub_host = hub.lade.test\n"
                              "hub_port = 18883\n"
                              "ntp_host = ntp.lade.test\n"
                              "  ca_file=/tmp/ca.pem   \n"
                              "\n";

static void test_factory_and_user(void **state)
{
    (void)state;
    struct lade_settings s;
    lade_settings_defaults(&s);
    assert_string_equal(s.ntp_host, "no.pool.ntp.org");
    assert_string_equal(s.fallback_dns, "8.8.8.8,1.1.1.1");
    reset();
    assert_int_equal(
        lade_settings_parse(&s, "factory.conf", factory, LADE_SETTINGS_FACTORY, collect, NULL),
        LADE_OK);
    assert_int_equal(g_nmsgs, 0);
    assert_string_equal(s.device_id, "LDE0001234");
    assert_int_equal(s.device_key_len, 32);
    assert_string_equal(s.hub_host, "hub.lade.test");
    assert_int_equal(s.hub_port, 18883);
    assert_string_equal(s.ca_file, "/tmp/ca.pem");

    /* The user file may tune, but never redirect the hub, the clock or the trust anchors. */
    const char *user = "keepalive_s = 60\n"
                       "hub_host = evil.example\n"
                       "ntp_host = evil.example\n"
                       "ca_file = /tmp/evil.pem\n"
                       "device_key = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
                       "telemetry_interval_s = 0\n"
                       "log_level = debug\n"
                       "bogus = 1\n"
                       "no equals sign\n";
    reset();
    assert_int_equal(lade_settings_parse(&s, "user.conf", user, LADE_SETTINGS_USER, collect, NULL),
                     LADE_OK);
    assert_int_equal(s.keepalive_s, 60);
    assert_int_equal(s.log_level, 3);
    assert_string_equal(s.hub_host, "hub.lade.test");
    assert_string_equal(s.ntp_host, "ntp.lade.test");
    assert_string_equal(s.ca_file, "/tmp/ca.pem");
    assert_int_equal(s.device_key[0], 0x2b);
    assert_int_equal(s.telemetry_interval_s, 900); /* out of range: default kept */
    assert_int_equal(g_nmsgs, 7);
    assert_non_null(strstr(g_msgs, "user.conf:2: 'hub_host' is a factory setting"));
    assert_non_null(strstr(g_msgs, "user.conf:6: 'telemetry_interval_s': out of range"));
    assert_non_null(strstr(g_msgs, "user.conf:8: unknown setting 'bogus'"));
    assert_non_null(strstr(g_msgs, "user.conf:9: expected 'key = value'"));
    /* A rejected key never echoes its value. */
    assert_null(strstr(g_msgs, "AAAAAAAA"));
}

static void test_factory_errors(void **state)
{
    (void)state;
    struct lade_settings s;
    lade_settings_defaults(&s);
    reset();
    assert_int_equal(lade_settings_parse(&s, "f",
                                         "device_id = bad/id\nhub_port = 70000\n"
                                         "device_key = not-base64!\nhub_host = a b\n",
                                         LADE_SETTINGS_FACTORY, collect, NULL),
                     LADE_ERR_CONFIG);
    assert_int_equal(g_nmsgs, 4);
    assert_null(strstr(g_msgs, "not-base64!"));
    reset();
    assert_int_equal(lade_settings_check(&s, collect, NULL), LADE_ERR_CONFIG);
    assert_non_null(strstr(g_msgs, "device_id is missing"));
    assert_non_null(strstr(g_msgs, "device_key is missing"));
}

static void test_write_and_load(void **state)
{
    (void)state;
    char dir[] = "/tmp/lade-settings-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], ca[128];
    snprintf(path, sizeof path, "%s/factory.conf", dir);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    FILE *f = fopen(ca, "w");
    fputs("x", f);
    fclose(f);

    struct lade_settings a, b;
    lade_settings_defaults(&a);
    assert_int_equal(lade_settings_parse(&a, "f", factory, LADE_SETTINGS_FACTORY, NULL, NULL),
                     LADE_OK);
    snprintf(a.ca_file, sizeof a.ca_file, "%s", ca);
    assert_int_equal(lade_settings_write_factory(&a, path), LADE_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    lade_settings_defaults(&b);
    assert_int_equal(lade_settings_load(&b, path, LADE_SETTINGS_FACTORY, NULL, NULL), LADE_OK);
    assert_int_equal(lade_settings_check(&b, NULL, NULL), LADE_OK);
    assert_string_equal(b.device_id, a.device_id);
    assert_int_equal(b.device_key_len, a.device_key_len);
    assert_memory_equal(b.device_key, a.device_key, a.device_key_len);
    assert_int_equal(b.hub_port, a.hub_port);
    assert_string_equal(b.fallback_dns, a.fallback_dns);

    char missing[160];
    snprintf(missing, sizeof missing, "%s/nope.conf", dir);
    assert_int_equal(lade_settings_load(&b, missing, LADE_SETTINGS_USER, NULL, NULL),
                     LADE_ERR_NOT_FOUND);
    unlink(path);
    unlink(ca);
    rmdir(dir);
}

static void test_charging_keys(void **state)
{
    (void)state;
    struct lade_settings s;
    lade_settings_defaults(&s);
    assert_string_equal(s.evse, "none");
    assert_int_equal(s.max_current_a, 32);
    reset();
    assert_int_equal(lade_settings_parse(&s, "user.conf",
                                         "max_current_a = 16\nmax_phases = 2\nsim_car = 3p22kw\n"
                                         "sim_car = tesla\nmax_current_a = 64\nevse = sim\n"
                                         "offline_phases = 3\nbearer = LTE\n",
                                         LADE_SETTINGS_USER, collect, NULL),
                     LADE_OK);
    assert_int_equal(s.max_current_a, 16); /* 64 refused: above the 63 A fuse */
    assert_int_equal(s.max_phases, 3);     /* 2 refused */
    assert_string_equal(s.sim_car, "3p22kw");
    assert_string_equal(s.evse, "none"); /* factory key in the user file */
    assert_int_equal(s.offline_phases, 3);
    assert_string_equal(s.bearer, "LTE");
    assert_non_null(strstr(g_msgs, "user.conf:2: 'max_phases': phases must be 1 or 3"));
    assert_non_null(
        strstr(g_msgs, "user.conf:4: 'sim_car': must be one of none|1p16a|3p11kw|3p22kw"));
    assert_non_null(strstr(g_msgs, "user.conf:5: 'max_current_a': out of range"));
    assert_non_null(strstr(g_msgs, "user.conf:6: 'evse' is a factory setting"));
    reset();
    assert_int_equal(lade_settings_parse(&s, "factory.conf", "evse = sim\n", LADE_SETTINGS_FACTORY,
                                         collect, NULL),
                     LADE_OK);
    assert_string_equal(s.evse, "sim");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_factory_and_user),
        cmocka_unit_test(test_factory_errors),
        cmocka_unit_test(test_write_and_load),
        cmocka_unit_test(test_charging_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
