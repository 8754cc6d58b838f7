/* e2e: lade-sim (issue 8) against a real hub — Mosquitto + lade_hub.so on 127.0.0.1.
 *
 * 50 identities provisioned by `lade-sim provision` (one registry transaction, one fleet file),
 * then `lade-sim run`:
 *   - storm: all 50 come online; the stats lines are JSON with consistent counts; the hub is
 *     stopped and started again and the sim's summary says all 50 went offline and came back;
 *     SIGTERM ends it cleanly with a final summary.
 *   - peak: every car plugs in within a 3 s window.
 *   - partition: a fifth of the fleet loses its network (nftables drops their own loopback
 *     addresses); exactly those go offline, the others stay online, all are back after the heal.
 * The whole test runs in a network namespace of its own (unshare), so the sim's nftables table
 * and the hub are private to it; without root the partition case is skipped.
 */
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "harness.h"

#define N_CHARGERS 50

static struct h_hub g_hub;
static char g_fleet[600];
static bool g_own_netns;

static const char *sim_bin(void)
{
    static char p[600];
    snprintf(p, sizeof p, "%s/lade-sim", h_build_dir());
    return p;
}

/* Every line of the stats file, parsed; fails the test on a line that is not a JSON object. */
static cJSON *read_lines(const char *path)
{
    char *text = h_read_file(path);
    assert_non_null(text);
    cJSON *arr = cJSON_CreateArray();
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *o = cJSON_Parse(line);
        if (!cJSON_IsObject(o))
            fail_msg("not a JSON object: %s", line);
        cJSON_AddItemToArray(arr, o);
    }
    free(text);
    return arr;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v))
        fail_msg("member %s missing or not a number", k);
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* The last line with "event" == ev (or type == ev), NULL if none. */
static const cJSON *find_event(const cJSON *arr, const char *ev)
{
    const cJSON *found = NULL, *o;
    cJSON_ArrayForEach(o, arr)
    {
        if (strcmp(str(o, "event"), ev) == 0)
            found = o;
    }
    return found;
}

static pid_t start_sim(const char *stats, const char *log, const char *scenario,
                       const char *const *extra)
{
    char count[16];
    snprintf(count, sizeof count, "%d", N_CHARGERS);
    char port[16];
    snprintf(port, sizeof port, "%d", g_hub.port);
    const char *argv[40] = {
        sim_bin(),          "run", "--fleet",          g_fleet,  "--count",          count,
        "--port",           port,  "--scenario",       scenario, "--start-rate",     "100",
        "--keepalive",      "5",   "--backoff-min-ms", "200",    "--backoff-max-ms", "2000",
        "--stats-interval", "1",   "--stats",          stats,    "--duration",       "120",
        "--log-level",      "warn"};
    size_t n = 0;
    while (argv[n])
        n++;
    for (size_t i = 0; extra && extra[i] && n < 39; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    return h_spawn(argv, NULL, log);
}

static void test_provision(void **state)
{
    (void)state;
    char path[700];
    snprintf(path, sizeof path, "%s/fleet.conf", g_fleet);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(h_file_count(path, "\ndevice = SIM"), N_CHARGERS);
    assert_int_equal(h_file_count(path, "evse = sim"), 1);
    /* all of them are in the registry: a second provisioning with the same prefix adds none */
    assert_int_not_equal(h_sh("%s provision --registry %s --hub-host %s --ca %s --count 2 "
                              "--out %s/again >/dev/null 2>&1",
                              sim_bin(), g_hub.registry, g_hub.host, g_hub.ca, g_hub.dir),
                         0);
    char ids[700];
    snprintf(ids, sizeof ids, "%s/ids.txt", g_hub.dir);
    assert_int_equal(h_sh("%s ids --fleet %s >%s", sim_bin(), g_fleet, ids), 0);
    assert_int_equal(h_file_count(ids, "SIM"), N_CHARGERS);
    assert_int_equal(h_file_count(ids, "SIM0000050\n"), 1);
}

static void test_storm(void **state)
{
    (void)state;
    const char *dir = h_tmpdir("sim-storm");
    char stats[700], log[700];
    snprintf(stats, sizeof stats, "%s/stats.jsonl", dir);
    snprintf(log, sizeof log, "%s/sim.log", dir);
    pid_t pid = start_sim(stats, log, "storm", NULL);
    if (!h_wait_file_contains(stats, "\"all_online\"", 60000)) {
        char *l = h_read_file(log);
        fail_msg("not all online; log:\n%.3000s", l ? l : "");
    }
    /* a stats line after all were online */
    uint64_t t0 = h_now_ms();
    int lines0 = h_file_count(stats, "\"type\":\"stats\"");
    while (h_file_count(stats, "\"type\":\"stats\"") < lines0 + 2 && h_now_ms() - t0 < 10000)
        usleep(100000);

    /* the hub goes away and comes back: a reconnect storm */
    h_hub_stop(&g_hub);
    assert_true(h_wait_file_contains(stats, "\"outage\"", 20000));
    usleep(2500000); /* a tick (1 s) sees all 50 down before the hub returns */
    h_hub_start(&g_hub, NULL);
    if (!h_wait_file_contains(stats, "\"recovered\"", 60000)) {
        char *l = h_read_file(stats);
        fail_msg("no recovery; stats:\n%.4000s", l ? l : "");
    }
    int st = h_stop(pid, SIGTERM, 20000);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);

    cJSON *arr = read_lines(stats);
    const cJSON *created = find_event(arr, "created");
    assert_non_null(created);
    assert_int_equal((int)num(created, "chargers"), N_CHARGERS);
    assert_true(num(created, "rss_per_charger_kb") > 0);

    /* stats lines: counts add up; one saw all 50 online with 50 connects and telemetry */
    int n_stats = 0, n_second = 0;
    bool saw_all = false;
    double prev_connects = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, arr)
    {
        if (strcmp(str(o, "type"), "second") == 0) {
            n_second++;
            assert_true(num(o, "connected") <= N_CHARGERS);
            continue;
        }
        if (strcmp(str(o, "type"), "stats") != 0)
            continue;
        n_stats++;
        assert_int_equal((int)num(o, "chargers"), N_CHARGERS);
        double c = num(o, "connected"), cg = num(o, "connecting"), w = num(o, "waiting");
        assert_true(c + cg + w <= N_CHARGERS);
        assert_true(num(o, "connects") >= prev_connects);
        prev_connects = num(o, "connects");
        assert_true(num(o, "cpu_s") > 0);
        assert_true(num(o, "rss_kb") > 0);
        (void)num(o, "connects_per_s");
        (void)num(o, "failures");
        (void)num(o, "methods_answered");
        if (c == N_CHARGERS && !saw_all) {
            saw_all = true;
            assert_true(num(o, "connects") >= N_CHARGERS);
            assert_true(num(o, "telemetry_sent") >= N_CHARGERS);
            assert_true(num(o, "bytes_in") > 0);
            assert_true(num(o, "bytes_out") > 0);
        }
    }
    assert_true(n_stats >= 3);
    assert_true(n_second >= 3);
    assert_true(saw_all);

    const cJSON *rec = find_event(arr, "recovered");
    assert_non_null(rec);
    assert_string_equal(str(rec, "scenario"), "storm");
    assert_int_equal((int)num(rec, "went_offline"), N_CHARGERS);
    assert_int_equal((int)num(rec, "min_connected"), 0);
    assert_true(num(rec, "recovery_s") > 0.5);
    assert_true(num(rec, "peak_connects_per_s") >= 1);

    const cJSON *end = find_event(arr, "end");
    assert_non_null(end);
    assert_int_equal((int)num(end, "connected"), N_CHARGERS);
    assert_true(num(end, "connects") >= 2 * N_CHARGERS);
    cJSON_Delete(arr);
}

static void test_partition(void **state)
{
    (void)state;
    if (!g_own_netns) {
        printf("# skipped: the partition needs root (a network namespace and nftables)\n");
        skip();
    }
    const char *dir = h_tmpdir("sim-part");
    char stats[700], log[700];
    snprintf(stats, sizeof stats, "%s/stats.jsonl", dir);
    snprintf(log, sizeof log, "%s/sim.log", dir);
    /* Reports every 2 s, faster than the 5 s keep-alive: a charger must notice a dead link
     * even while it keeps sending into it. Its keep-alive probes two intervals after the last
     * receipt, and the PINGRESP timeout is 3.5 s: 13.5 s at most, within the 18 s. */
    const char *extra[] = {"--partition", "0.2", "--partition-s", "18", "--telemetry-interval",
                           "2",           NULL};
    pid_t pid = start_sim(stats, log, "partition", extra);
    if (!h_wait_file_contains(stats, "\"heal\"", 60000)) {
        char *l = h_read_file(log);
        fail_msg("no heal; log:\n%.3000s", l ? l : "");
    }
    assert_int_equal(h_sh("nft list tables | grep -q lade_sim"), 1); /* removed at the heal */
    if (!h_wait_file_contains(stats, "\"recovered\"", 60000)) {
        char *l = h_read_file(stats);
        fail_msg("no recovery; stats:\n%.4000s", l ? l : "");
    }
    int st = h_stop(pid, SIGTERM, 20000);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);

    cJSON *arr = read_lines(stats);
    const cJSON *p = find_event(arr, "partition");
    assert_non_null(p);
    assert_int_equal((int)num(p, "partitioned"), N_CHARGERS / 5);
    const cJSON *heal = find_event(arr, "heal");
    assert_non_null(heal);
    /* both sides saw a dead link: the partitioned chargers went offline by themselves ... */
    assert_int_equal((int)num(heal, "went_offline"), N_CHARGERS / 5);
    /* ... the rest stayed online, and all came back */
    const cJSON *rec = find_event(arr, "recovered");
    assert_non_null(rec);
    assert_int_equal((int)num(rec, "went_offline"), N_CHARGERS / 5);
    assert_int_equal((int)num(rec, "min_connected"), N_CHARGERS - N_CHARGERS / 5);
    const cJSON *end = find_event(arr, "end");
    assert_non_null(end);
    assert_int_equal((int)num(end, "connected"), N_CHARGERS);
    cJSON_Delete(arr);
}

/* peak: every car plugs in within the window (the simulator's state says so afterwards) */
static void test_peak(void **state)
{
    (void)state;
    const char *dir = h_tmpdir("sim-peak");
    char stats[700], log[700];
    snprintf(stats, sizeof stats, "%s/stats.jsonl", dir);
    snprintf(log, sizeof log, "%s/sim.log", dir);
    const char *extra[] = {"--peak-window", "3", "--peak-fraction", "1", NULL};
    pid_t pid = start_sim(stats, log, "peak", extra);
    assert_true(h_wait_file_contains(stats, "\"all_online\"", 60000));
    usleep(6000000); /* the window, and the control loop's step */
    int st = h_stop(pid, SIGTERM, 20000);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    cJSON *arr = read_lines(stats);
    const cJSON *created = find_event(arr, "created");
    assert_non_null(created);
    assert_int_equal((int)num(created, "cars"), N_CHARGERS);
    const cJSON *end = find_event(arr, "end");
    assert_non_null(end);
    assert_int_equal((int)num(end, "connected"), N_CHARGERS);
    /* Plug-in → offer, as each charger timed it: no portal here, so the offer is the charger's
     * own (the offline current of the factory defaults, 6 A) from the step that saw the car. */
    assert_int_equal((int)num(end, "cars"), N_CHARGERS);
    assert_int_equal((int)num(end, "cars_offered"), N_CHARGERS);
    const cJSON *lat = cJSON_GetObjectItemCaseSensitive(end, "offer_ms");
    assert_non_null(lat);
    assert_int_equal((int)num(lat, "n"), N_CHARGERS);
    assert_true(num(lat, "p50") <= num(lat, "p99"));
    assert_true(num(lat, "max") < 2000);
    cJSON_Delete(arr);
    assert_int_equal(
        h_sh("test \"$(grep -l '\"plugged\":true' %s/state/*/sim.json | wc -l)\" -eq %d", g_fleet,
             N_CHARGERS),
        0);
}

static int setup(void **state)
{
    (void)state;
    h_hub_prepare(&g_hub, "hub.lade.test");
    snprintf(g_fleet, sizeof g_fleet, "%s/fleet", g_hub.dir);
    /* identities before the hub opens the registry */
    if (h_sh("%s provision --registry %s --hub-host %s --ca %s --count %d --out %s >%s/prov.log "
             "2>&1",
             sim_bin(), g_hub.registry, g_hub.host, g_hub.ca, N_CHARGERS, g_fleet, g_hub.dir) != 0)
        return -1;
    h_hub_start(&g_hub, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    h_hub_stop(&g_hub);
    return 0;
}

int main(void)
{
    /* A network namespace of our own: the hub, the sim and its nftables rules live and die
     * with this test. */
    if (geteuid() == 0 && unshare(CLONE_NEWNET) == 0 && system("ip link set lo up") == 0)
        g_own_netns = true;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_provision),
        cmocka_unit_test(test_storm),
        cmocka_unit_test(test_partition),
        cmocka_unit_test(test_peak),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
