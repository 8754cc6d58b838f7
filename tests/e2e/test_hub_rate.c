/* e2e: connection admission of the lade hub (plugin_opt_max_connect_rate / connect_burst) and
 * the chargers' answer to it — real Mosquitto 2 + lade_hub.so at 5 new device connections/s
 * (burst 5), raw clients (harness_hub.c) and lade-charger processes.
 *
 * Covers: a quick burst of 30 device CONNECTs sees the burst admitted and the rest refused by a
 * close without CONNACK (Mosquitto 2.0.11 cannot send CONNACK 3 from a plugin, docs/hub.md), a
 * sustained stream sees about the rate, a wrong key still gets CONNACK 5 once admitted, the
 * portal's service identity is admitted while devices are refused, the refusals are counted in
 * one summary line (not one line each), and ten chargers that boot together, then lose the hub
 * together, all come online by themselves with the jittered back-off (docs/charger.md).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "harness_charger.h"
#include "harness_hub.h"
#include "lade/clock.h"
#include "lade/registry.h"
#include "lade/sas.h"

#define HOST  "hub.lade.test"
#define RATE  5 /* plugin_opt_max_connect_rate */
#define BURST 5 /* plugin_opt_connect_burst */
#define NDEV  30
#define NCHG  10
#define HUBCONF                                                                                    \
    "plugin_opt_max_connect_rate 5\n"                                                              \
    "plugin_opt_connect_burst 5\n"

static struct h_hub hub;
static uint8_t keys[NDEV][32], key_svc[32];
static struct hc conns[NDEV];

static int group_setup(void **state)
{
    (void)state;
    struct lade_registry *reg = NULL;
    int64_t now = lade_wall_s();
    h_hub_prepare(&hub, HOST);
    char hosts[700];
    snprintf(hosts, sizeof hosts, "%s/hosts", hub.dir);
    h_write_file(hosts, "# test hosts file\n127.0.0.1 " HOST "\n");
    if (lade_registry_open(hub.registry, &reg) != LADE_OK)
        return -1;
    for (int i = 0; i < NDEV; i++) {
        char id[16];
        snprintf(id, sizeof id, "dev-%02d", i);
        if (lade_registry_device_create(reg, id, now, keys[i]) != LADE_OK)
            return -1;
    }
    if (lade_random(key_svc, sizeof key_svc) != LADE_OK ||
        lade_registry_service_add(reg, "portal", key_svc, sizeof key_svc, now) != LADE_OK)
        return -1;
    lade_registry_close(reg);
    h_hub_start(&hub, HUBCONF);
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

/* CONNECT as dev-<i>; a wrong key if bad. The CONNACK code, or -1 when closed without one. */
static int connect_dev(struct hc *c, int i, bool bad)
{
    char id[16], tok[600], user[300];
    size_t n;
    uint8_t key[32];
    snprintf(id, sizeof id, "dev-%02d", i);
    memcpy(key, keys[i], sizeof key);
    if (bad)
        key[0] ^= 1;
    assert_int_equal(
        lade_sas_token_build(HOST, id, key, 32, lade_wall_s() + 600, NULL, tok, sizeof tok, &n),
        LADE_OK);
    snprintf(user, sizeof user, HOST "/%s/?api-version=2021-04-12", id);
    return hc_connect(c, hub.port, hub.ca, HOST, id, user, tok, false);
}

static int connect_svc(struct hc *c)
{
    char tok[600];
    size_t n;
    assert_int_equal(lade_sas_token_build(HOST, NULL, key_svc, 32, lade_wall_s() + 600, "portal",
                                          tok, sizeof tok, &n),
                     LADE_OK);
    return hc_connect(c, hub.port, hub.ca, HOST, "svc:portal", "svc:portal", tok, true);
}

/* Device CONNECTs until one is refused: the bucket is empty right after. */
static void drain(void)
{
    uint64_t deadline = h_now_ms() + 10000;
    for (int i = 0;; i = (i + 1) % NDEV) {
        struct hc c = {0};
        int r = connect_dev(&c, i, false);
        hc_close(&c);
        if (r == -1)
            return;
        assert_int_equal(r, 0);
        assert_true(h_now_ms() < deadline);
    }
}

/* The most a token bucket may admit in elapsed_ms, starting full. */
static int most(uint64_t elapsed_ms)
{
    return BURST + (int)(elapsed_ms * RATE / 1000) + 1;
}

static void test_burst_and_rate(void **state)
{
    (void)state;
    /* 30 quick CONNECTs of 30 devices: the burst gets in, the rest are refused. */
    int rc[NDEV], admitted = 0, refused = 0;
    uint64_t t0 = h_now_ms();
    for (int i = 0; i < NDEV; i++) {
        memset(&conns[i], 0, sizeof conns[i]);
        rc[i] = connect_dev(&conns[i], i, false);
        admitted += rc[i] == 0;
        refused += rc[i] == -1;
    }
    uint64_t quick_ms = h_now_ms() - t0;
    fprintf(stderr, "measured: %d CONNECTs in %llu ms: %d admitted, %d closed without CONNACK\n",
            NDEV, (unsigned long long)quick_ms, admitted, refused);
    assert_int_equal(admitted + refused, NDEV); /* nothing else: no CONNACK 5 for a good key */
    assert_true(admitted >= BURST);
    assert_true(admitted <= most(quick_ms));
    if (quick_ms < 4000)
        assert_true(refused >= NDEV - most(quick_ms));
    /* The admitted ones are real sessions: they stay connected. */
    for (int i = 0; i < NDEV; i++)
        if (rc[i] == 0)
            assert_int_equal(hc_subscribe(&conns[i], "$iothub/twin/res/#", 0), 0);
    hc_close_all();

    /* A sustained stream for 3 s: about RATE per second gets in. */
    drain();
    int got = 0, tries = 0;
    t0 = h_now_ms();
    while (h_now_ms() - t0 < 3000) {
        struct hc c = {0};
        int r = connect_dev(&c, tries % NDEV, false);
        hc_close(&c);
        assert_true(r == 0 || r == -1);
        got += r == 0;
        tries++;
    }
    uint64_t sustained_ms = h_now_ms() - t0;
    fprintf(stderr, "measured: sustained %d CONNECTs in %llu ms: %d admitted (rate %d/s)\n", tries,
            (unsigned long long)sustained_ms, got, RATE);
    /* Started empty: at most rate x time (+1 for the token in flight at the start). */
    assert_true(got <= (int)(sustained_ms * RATE / 1000) + 2);
    if (tries > 4 * got) /* the client offered well above the rate: the rate is what it got */
        assert_true(got >= (int)(sustained_ms * RATE / 1000) * 2 / 3);
}

static void test_bad_key_vs_throttled(void **state)
{
    (void)state;
    /* Throttled: refused before the key is even looked at — the same close without CONNACK
     * whatever the key. Once admitted, a wrong key is CONNACK 5, as before. */
    drain();
    struct hc c = {0};
    assert_int_equal(connect_dev(&c, 1, true), -1);
    uint64_t deadline = h_now_ms() + 5000;
    int r;
    do {
        memset(&c, 0, sizeof c);
        r = connect_dev(&c, 1, true);
        hc_close(&c);
        assert_true(r == -1 || r == 5);
    } while (r == -1 && h_now_ms() < deadline);
    assert_int_equal(r, 5);
}

static void test_service_never_throttled(void **state)
{
    (void)state;
    /* With the bucket empty, the portal connects again and again (one token would last 200 ms:
     * five in a row would be refused if they counted). */
    drain();
    uint64_t t0 = h_now_ms();
    for (int i = 0; i < 5; i++) {
        struct hc s = {0};
        assert_int_equal(connect_svc(&s), 0);
        hc_close(&s);
    }
    fprintf(stderr, "measured: 5 service CONNECTs in %llu ms with the device bucket empty\n",
            (unsigned long long)(h_now_ms() - t0));
}

static const char charger_user[] = "keepalive_s = 30\n"
                                   "telemetry_interval_s = 30\n"
                                   "token_ttl_s = 3600\n"
                                   "backoff_min_ms = 200\n"
                                   "backoff_max_ms = 3000\n"
                                   "backoff_stable_s = 1\n"
                                   "connect_timeout_ms = 2000\n";

static bool wait_all(struct h_charger *c, int n, const char *needle, uint32_t timeout_ms)
{
    for (int i = 0; i < n; i++)
        if (!h_charger_wait_status(&c[i], needle, timeout_ms))
            return false;
    return true;
}

static void test_chargers_recover_from_storm(void **state)
{
    (void)state;
    static struct h_charger ch[NCHG];
    struct hc s = {0};
    char id[16];
    for (int i = 0; i < NCHG; i++) {
        snprintf(id, sizeof id, "LDE00009%02d", i);
        h_charger_provision(&ch[i], &hub, id, NULL, charger_user);
    }

    /* Boot storm: ten chargers start together against an empty bucket. */
    drain();
    uint64_t t0 = h_now_ms();
    for (int i = 0; i < NCHG; i++)
        h_charger_start(&ch[i]);
    assert_true(wait_all(ch, NCHG, "\"link\":\"online\"", 30000));
    uint64_t boot_ms = h_now_ms() - t0;
    double failures = 0;
    for (int i = 0; i < NCHG; i++)
        failures += h_charger_num(&ch[i], "failures");
    fprintf(stderr, "measured: %d chargers online %llu ms after a boot storm, %.0f refusals\n",
            NCHG, (unsigned long long)boot_ms, failures);
    assert_true(failures >= 1);
    assert_true(boot_ms >= (NCHG - 1) * 1000 / RATE - 100); /* the hub's rate, not faster */
    /* They were throttled, not told their key is bad. */
    int throttled = 0;
    for (int i = 0; i < NCHG; i++) {
        char *st = h_read_file(ch[i].status);
        assert_non_null(st);
        assert_null(strstr(st, "credentials"));
        throttled += strstr(st, "before CONNACK (busy or throttling)") != NULL;
        free(st);
    }
    assert_true(throttled >= 1);

    /* Hub restart: all ten lose the link in the same instant and come back by themselves. */
    h_hub_stop(&hub);
    assert_true(wait_all(ch, NCHG, "\"link\":\"waiting\"", 10000));
    h_hub_start(&hub, HUBCONF);
    t0 = h_now_ms();
    assert_true(wait_all(ch, NCHG, "\"connects\":2", 30000));
    assert_true(wait_all(ch, NCHG, "\"link\":\"online\"", 1000));
    fprintf(stderr, "measured: %d chargers back online %llu ms after the hub restarted\n", NCHG,
            (unsigned long long)(h_now_ms() - t0));
    /* The portal connects while the storm is on. */
    assert_int_equal(connect_svc(&s), 0);
    hc_close(&s);
    for (int i = 0; i < NCHG; i++)
        h_charger_stop(&ch[i]);
}

static void test_summary_logged_once(void **state)
{
    (void)state;
    /* Refusals are summed up in one line per interval (and at shutdown), never one per client. */
    h_hub_stop(&hub);
    char *log = h_read_file(hub.log);
    assert_non_null(log);
    assert_non_null(strstr(log, "admitting at most 5 new device connections/s (burst 5)"));
    /* The log holds both hub processes (before and after the restart): sum the windows. */
    static const char tag[] = "connection rate limit 5/s (burst 5): refused ";
    unsigned long long total = 0;
    int lines = 0;
    for (const char *p = log; (p = strstr(p, tag)); p += strlen(tag)) {
        total += strtoull(p + strlen(tag), NULL, 10);
        lines++;
    }
    fprintf(stderr, "measured: %llu refusals in %d summary lines\n", total, lines);
    assert_true(total >= NDEV - (unsigned long long)most(4000));
    assert_true(lines >= 1 && (unsigned long long)lines < total);
    /* No per-client line for a throttled CONNECT. */
    assert_null(strstr(log, "refused 'dev-00' from 127.0.0.1: rate"));
    free(log);
    h_hub_start(&hub, HUBCONF);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_burst_and_rate, test_teardown),
        cmocka_unit_test_teardown(test_bad_key_vs_throttled, test_teardown),
        cmocka_unit_test_teardown(test_service_never_throttled, test_teardown),
        cmocka_unit_test_teardown(test_chargers_recover_from_storm, test_teardown),
        cmocka_unit_test_teardown(test_summary_logged_once, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
