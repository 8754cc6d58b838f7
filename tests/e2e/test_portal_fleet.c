/* e2e: the portal reconciling a fleet's settings, paced — a real hub (Mosquitto + lade_hub.so),
 * lade-cloud as its own process with a site file, and 40 chargers of lade-sim (the agent
 * library) that come online together. The site says offline current 0 A, the chargers' factory
 * settings 6 A: each charger's settings in force differ from the stored ones, so the portal
 * pushes the stored settings to every one of them (docs/portal.md). With --push-inflight 1 it
 * may keep only one push in flight: the others wait for the charger's next message (lade-sim
 * sends a snapshot every 5 s here).
 *
 * Checked through the portal's /metrics: all 40 online and none left with settings that differ
 * (lade_settings_differ 0: the deferred pushes were not lost), every push confirmed by the hub,
 * never more than one in flight (lade_settings_pushes_inflight_max 1), and at least 40 pushes
 * (the deferred ones are printed: about 36 of 40 here, the chargers all come at once).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define N_CHARGERS 40

static struct h_hub g_hub;
static char g_dir[600], g_fleet[700], g_site[700], g_portal_conf[700], g_db[700], g_plog[700],
    g_metrics[700];
static int g_portal_port;
static pid_t g_portal = -1, g_sim = -1;

static void dump(void)
{
    char *l = h_read_file(g_plog);
    if (l) {
        size_t n = strlen(l);
        fprintf(stderr, "portal log (tail):\n%s\n", n > 4000 ? l + n - 4000 : l);
    }
    free(l);
    char *m = h_read_file(g_metrics);
    if (m)
        fprintf(stderr, "metrics:\n%s\n", m);
    free(m);
}

/* The value of a metric in the portal's /metrics (fetched anew), -1 if absent. */
static double metric(const char *name)
{
    if (h_sh("curl -s -o '%s' http://127.0.0.1:%d/metrics", g_metrics, g_portal_port) != 0)
        return -1;
    char *text = h_read_file(g_metrics);
    if (!text)
        return -1;
    double v = -1;
    size_t nl = strlen(name);
    for (char *line = text; line && *line;) {
        char *next = strchr(line, '\n');
        if (strncmp(line, name, nl) == 0 && line[nl] == ' ')
            v = strtod(line + nl + 1, NULL);
        line = next ? next + 1 : NULL;
    }
    free(text);
    return v;
}

static void test_settings_paced(void **state)
{
    (void)state;
    uint64_t end = h_now_ms() + 90000;
    double online = -1, differ = -1;
    for (;;) {
        online = metric("lade_chargers_online");
        differ = metric("lade_settings_differ");
        if (online == N_CHARGERS && differ == 0)
            break;
        if (h_now_ms() > end || !h_running(g_portal, NULL)) {
            dump();
            fail_msg("after 90 s: %.0f of %d online, %.0f with settings that differ", online,
                     N_CHARGERS, differ);
        }
        usleep(300000);
    }
    double pushes = metric("lade_settings_pushes_total");
    double failed = metric("lade_settings_pushes_failed_total");
    double max_inflight = metric("lade_settings_pushes_inflight_max");
    double deferred = metric("lade_settings_pushes_deferred_total");
    fprintf(stderr, "pushes %.0f, failed %.0f, deferred %.0f, most in flight %.0f\n", pushes,
            failed, deferred, max_inflight);
    if (pushes < N_CHARGERS || failed != 0 || max_inflight != 1)
        dump();
    assert_true(pushes >= N_CHARGERS);
    assert_true(failed == 0);
    assert_true(max_inflight == 1);
}

static int setup(void **state)
{
    (void)state;
    h_hub_prepare(&g_hub, "hub.lade.test");
    snprintf(g_dir, sizeof g_dir, "%s", g_hub.dir);
    snprintf(g_fleet, sizeof g_fleet, "%s/fleet", g_dir);
    snprintf(g_site, sizeof g_site, "%s/site.json", g_dir);
    snprintf(g_portal_conf, sizeof g_portal_conf, "%s/portal.conf", g_dir);
    snprintf(g_db, sizeof g_db, "%s/portal.db", g_dir);
    snprintf(g_plog, sizeof g_plog, "%s/portal.log", g_dir);
    snprintf(g_metrics, sizeof g_metrics, "%s/metrics.txt", g_dir);
    const char *b = h_build_dir();
    /* identities and the portal's service identity before the hub opens the registry */
    if (h_sh("'%s/lade-sim' provision --registry '%s' --hub-host %s --ca '%s' --count %d "
             "--out '%s' >'%s/prov.log' 2>&1",
             b, g_hub.registry, g_hub.host, g_hub.ca, N_CHARGERS, g_fleet, g_dir) != 0 ||
        h_sh("'%s/lade-factory' service --registry '%s' --name portal --hub-host %s --out '%s' "
             ">/dev/null",
             b, g_hub.registry, g_hub.host, g_portal_conf) != 0)
        return -1;
    /* One installation, one circuit; offline current 0 against the factory's 6 A. */
    if (h_sh("'%s/lade-sim' ids --fleet '%s' | jq -R -s '{Name: \"Fleet\", NetworkType: 4, "
             "Fuse: 400, Available: 400, Circuits: [{Name: \"C\", Fuse: 400}], Chargers: "
             "[split(\"\\n\")[] | select(length > 0) | {DeviceId: ., Circuit: \"C\", "
             "Rotation: \"L1L2L3\", MaxCurrent: 16, MinCurrent: 6, MaxPhases: 3, "
             "OfflineCurrent: 0, OfflinePhases: 3, Priority: 0}]}' >'%s'",
             b, g_fleet, g_site) != 0)
        return -1;
    h_hub_start(&g_hub, NULL);
    g_portal_port = h_free_port();
    char bin[600], port[16], hubport[16], hosts[720];
    snprintf(bin, sizeof bin, "%s/lade-cloud", b);
    snprintf(port, sizeof port, "%d", g_portal_port);
    snprintf(hubport, sizeof hubport, "%d", g_hub.port);
    snprintf(hosts, sizeof hosts, "%s/hosts", g_fleet); /* lade-sim provision wrote it */
    const char *pargv[] = {bin,           "--db",
                           g_db,          "--port",
                           port,          "--service",
                           g_portal_conf, "--ca",
                           g_hub.ca,      "--hosts-file",
                           hosts,         "--hub-port",
                           hubport,       "--site",
                           g_site,        "--push-inflight",
                           "1",           "--kdf-ln",
                           "6",           "--log-level",
                           "info",        NULL};
    g_portal = h_spawn(pargv, NULL, g_plog);
    if (!h_wait_port(g_portal_port, 30000)) {
        dump();
        return -1;
    }
    char count[16], sport[16], stats[700], slog[700];
    snprintf(count, sizeof count, "%d", N_CHARGERS);
    snprintf(sport, sizeof sport, "%d", g_hub.port);
    snprintf(stats, sizeof stats, "%s/sim.stats", g_dir);
    snprintf(slog, sizeof slog, "%s/sim.log", g_dir);
    char sim[600];
    snprintf(sim, sizeof sim, "%s/lade-sim", b);
    const char *sargv[] = {sim,
                           "run",
                           "--fleet",
                           g_fleet,
                           "--count",
                           count,
                           "--port",
                           sport,
                           "--start-rate",
                           "1000",
                           "--telemetry-interval",
                           "5",
                           "--no-source-addrs",
                           "--stats",
                           stats,
                           "--stats-interval",
                           "5",
                           "--log-level",
                           "warn",
                           NULL};
    g_sim = h_spawn(sargv, NULL, slog);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (g_sim > 0)
        h_stop(g_sim, SIGTERM, 20000);
    if (g_portal > 0)
        h_stop(g_portal, SIGTERM, 10000);
    h_hub_stop(&g_hub);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings_paced),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
