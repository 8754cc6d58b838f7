/* e2e: the site check on demand (SPEC R18/R19) — a real lade-charger on the site-network lab
 * (tests/lab: network namespaces, no route off the machine) is asked through the portal
 * (lade-cloud, in the lab's internet namespace next to the hub) to check its site, runs the
 * probes of lade-check on its own loop against the lab's real servers (router DNS, the public
 * resolvers, chrony, the hub, the three nginx firmware hosts), and its report arrives in the
 * twin, the portal's GET .../network and the charger's status file:
 *
 *   - POST .../siteCheck → 202 {"Started":true}; a second one while it runs → 409 (the charger
 *     answers methods while its check runs: its loop is never blocked);
 *   - fw3.lade.test silenced: reach.fw.fw3 warns (the other firmware hosts work), the verdict is
 *     "warn", exit 1; reach.hub, dns.site, dns.fallback, time.ntp, reach.fw.fw1 pass;
 *   - the report holds id/status/summary/remedy only (no "data"), fits the size budget, never
 *     the device key; the status file holds the same object; one log line with the verdict;
 *   - right after it finished → 429 with retryAfterS;
 *   - a second charger stopped while its check runs exits at once and cleanly (probe freed);
 *   - a third charger that manages its interface (DHCP) also has the DHCP server probed.
 *
 * Every charger setting that names a host points into the lab (H_LAB_FACTORY_ARGS, no hosts
 * file, the router as its site DNS server).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "harness.h"
#include "harness_charger.h"
#include "harness_lab.h"
#include "lade/store.h"

#include "../../src/cloud/portal_int.h"

#define PW        "s3cret-test-password"
#define DEVICE_ID "LADESC0001"
#define DEVICE_B  "LADESC0002"
#define DEVICE_C  "LADESC0003"

static struct h_lab lab;
static struct h_charger ch, chb, chc;
static pid_t portal_pid;
static int portal_port;
static char db[700], plog[700], portal_conf[700];
static char token[128];
static char chg_gid[PORTAL_ID_LEN + 1], chb_gid[PORTAL_ID_LEN + 1], chc_gid[PORTAL_ID_LEN + 1];
static char out[256 * 1024];

/* ---- HTTP, from inside the lab's internet namespace (where the portal listens) ---- */

/* One request with curl in the "inet" namespace; the body in out, returns the status (0: no
 * answer). */
static long http(const char *method, const char *path, const char *form)
{
    char auth[200] = "";
    if (token[0])
        snprintf(auth, sizeof auth, "-H 'Authorization: Bearer %s'", token);
    char data[300] = "";
    if (form)
        snprintf(data, sizeof data, "-H 'Content-Type: application/x-www-form-urlencoded' -d '%s'",
                 form);
    out[0] = 0;
    h_lab_run(&lab, "inet", out, sizeof out,
              "curl -s --noproxy '*' -m 30 -X %s %s %s -w '\\n%%{http_code}' "
              "http://127.0.0.1:%d%s",
              method, auth, data, portal_port, path);
    char *nl = strrchr(out, '\n');
    if (!nl)
        return 0;
    long st = atol(nl + 1);
    *nl = 0;
    return st;
}

static cJSON *http_json(const char *method, const char *path, long want)
{
    long st = http(method, path, NULL);
    if (st != want)
        fail_msg("%s %s: %ld (want %ld) %s", method, path, st, want, out);
    cJSON *j = cJSON_Parse(out);
    if (!j)
        fail_msg("%s %s: not JSON: %s", method, path, out);
    return j;
}

static void login(void)
{
    token[0] = 0;
    long st = 0;
    uint64_t end = h_now_ms() + 30000;
    while (st != 200 && h_now_ms() < end) {
        st = http("POST", "/oauth/token", "grant_type=password&username=admin&password=" PW);
        if (st != 200)
            usleep(200000);
    }
    if (st != 200)
        fail_msg("login: %ld %s", st, out);
    cJSON *j = cJSON_Parse(out);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "access_token");
    assert_true(cJSON_IsString(t));
    snprintf(token, sizeof token, "%s", t->valuestring);
    cJSON_Delete(j);
}

static void portal_dump(void)
{
    char *l = h_read_file(plog);
    if (l) {
        size_t n = strlen(l);
        fprintf(stderr, "portal log (tail):\n%s\n", n > 6000 ? l + n - 6000 : l);
    }
    free(l);
}

/* ---- set-up: the lab, the charger, the store, the portal ---- */

static void seed_store(void)
{
    struct lade_store *st = NULL;
    assert_int_equal(lade_store_open_sqlite(db, &st), LADE_OK);
    struct lade_store_installation in = {.network_type = LADE_NET_TN_3_PHASE, .created_s = 1};
    snprintf(in.name, sizeof in.name, "Lab site");
    for (int k = 0; k < 3; k++)
        in.available_ma[k] = in.fuse_ma[k] = 40000;
    int64_t inst_id = 0, circ_id = 0, chg_id = 0;
    assert_int_equal(lade_store_installation_add(st, &in, &inst_id), LADE_OK);
    struct lade_store_circuit cc = {.installation_id = inst_id, .created_s = 1};
    snprintf(cc.name, sizeof cc.name, "Garage");
    for (int k = 0; k < 3; k++)
        cc.fuse_ma[k] = cc.limit_ma[k] = 32000;
    assert_int_equal(lade_store_circuit_add(st, &cc, &circ_id), LADE_OK);
    for (int i = 0; i < 3; i++) {
        struct lade_store_charger c;
        lade_store_charger_defaults(&c);
        snprintf(c.device_id, sizeof c.device_id, "%s",
                 i == 2 ? DEVICE_C
                 : i    ? DEVICE_B
                        : DEVICE_ID);
        snprintf(c.name, sizeof c.name, "Bay %d", i + 1);
        c.installation_id = inst_id;
        c.circuit_id = circ_id;
        c.phase_map[0] = 1;
        c.phase_map[1] = 2;
        c.phase_map[2] = 3;
        c.max_current_ma = 32000;
        c.min_current_ma = 6000;
        c.max_phases = 3;
        c.offline_current_ma = 6000;
        c.offline_phases = 1;
        c.created_s = 1;
        assert_int_equal(lade_store_charger_add(st, &c, &chg_id), LADE_OK);
        portal_id_format(PORTAL_ID_CHARGER, chg_id, i == 2 ? chc_gid : i ? chb_gid : chg_gid);
    }
    lade_store_close(st);
}

static void provision(struct h_charger *c, const char *id)
{
    h_charger_provision(c, &lab.hub, id,
                        "--evse sim --time-source ntp " H_LAB_FACTORY_ARGS
                        " --hosts-file /dev/null",
                        "dns_servers = " H_LAB_LAN_ROUTER "\n"
                        "backoff_min_ms = 500\nbackoff_max_ms = 2000\n"
                        "connect_timeout_ms = 3000\n"
                        "log_level = debug\n");
}

static void start(struct h_charger *c, const char *node)
{
    char bin[600];
    snprintf(bin, sizeof bin, "%s/lade-charger", h_build_dir());
    const char *argv[] = {bin,     "--factory", c->factory, "--user",
                          c->user, "--status",  c->status,  NULL};
    c->pid = h_lab_spawn(&lab, node, argv, NULL, c->log);
}

static int setup(void **state)
{
    (void)state;
    struct h_lab_opts o = {.chargers = 3, .addr = H_LAB_ADDR_STATIC, .hub = true, .fw = true};
    h_lab_up(&lab, &o);

    /* The charger: time from the lab's NTP, names through the router (no hosts file), the lab's
     * resolvers as fallbacks, the lab's firmware hosts — nothing names a host outside the lab. */
    provision(&ch, DEVICE_ID);
    provision(&chb, DEVICE_B);
    start(&ch, "charger0");

    /* The portal, in the internet namespace next to the hub (its hosts file maps the lab's
     * names), on a port of that namespace's loopback. */
    char tok[1200];
    h_service_token(&lab.hub, "portal", tok, sizeof tok);
    snprintf(portal_conf, sizeof portal_conf, "%s/portal.conf", lab.hub.dir);
    snprintf(db, sizeof db, "%s/portal.db", lab.tmp);
    snprintf(plog, sizeof plog, "%s/portal.log", lab.tmp);
    seed_store();
    portal_port = h_free_port();
    char pbin[600], port[16], hosts[700], hubport[16];
    snprintf(pbin, sizeof pbin, "%s/lade-cloud", h_build_dir());
    snprintf(port, sizeof port, "%d", portal_port);
    snprintf(hosts, sizeof hosts, "%s/hosts", lab.hub.dir);
    snprintf(hubport, sizeof hubport, "%d", H_LAB_HUB_PORT);
    const char *pargv[] = {
        pbin,  "--registry",  lab.hub.registry, "--db",    db,      "--port",
        port,  "--service",   portal_conf,      "--ca",    lab.ca,  "--hosts-file",
        hosts, "--hub-port",  hubport,          "--admin", "admin", "--kdf-ln",
        "6",   "--log-level", "debug",          NULL};
    const char *env[] = {"LADE_ADMIN_PASSWORD=" PW, NULL};
    portal_pid = h_lab_spawn(&lab, "inet", pargv, env, plog);
    login();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = 0;
    if (ch.pid)
        h_charger_stop(&ch);
    if (chb.pid)
        h_charger_stop(&chb);
    if (chc.pid)
        h_charger_stop(&chc);
    if (portal_pid) {
        int ws = h_stop(portal_pid, SIGTERM, 20000);
        char *l = h_read_file(plog);
        bool san = l && (strstr(l, "AddressSanitizer") || strstr(l, "runtime error") ||
                         strstr(l, "LeakSanitizer"));
        if (san || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
            portal_dump();
            fprintf(stderr, "portal did not stop cleanly (status %d)\n", ws);
            rc = -1;
        }
        free(l);
    }
    h_lab_down(&lab);
    return rc;
}

/* ---- helpers ---- */

static const cJSON *check(const cJSON *sc, const char *id)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(sc, "checks"))
    {
        const cJSON *i = cJSON_GetObjectItemCaseSensitive(c, "id");
        if (cJSON_IsString(i) && strcmp(i->valuestring, id) == 0)
            return c;
    }
    char *t = cJSON_Print(sc);
    fail_msg("no check %s in:\n%s", id, t ? t : "?");
    free(t);
    return NULL;
}

static const char *str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

/* The status file's "siteCheck" once a check has finished (NULL after timeout_ms). */
static cJSON *wait_status_result_of(const struct h_charger *c, uint32_t timeout_ms)
{
    uint64_t end = h_now_ms() + timeout_ms;
    while (h_now_ms() < end) {
        char *t = h_read_file(c->status);
        cJSON *j = t ? cJSON_Parse(t) : NULL;
        free(t);
        const cJSON *run = cJSON_GetObjectItemCaseSensitive(j, "site_check_running");
        cJSON *sc = cJSON_DetachItemFromObjectCaseSensitive(j, "siteCheck");
        cJSON_Delete(j);
        if (cJSON_IsFalse(run) && cJSON_IsObject(sc))
            return sc;
        cJSON_Delete(sc);
        usleep(100000);
    }
    return NULL;
}

/* ---- the test ---- */

static void test_site_check_on_demand(void **state)
{
    (void)state;
    if (!h_charger_wait_status(&ch, "\"link\":\"online\"", 40000))
        fail_msg("charger not online");
    /* fw3 silent: its TLS check waits out the connect timeout (5 s), so the check runs long
     * enough to be asked again, and ends with a warning that has a remedy. */
    h_lab_host(&lab, "fw3", false);

    char path[200];
    snprintf(path, sizeof path, "/api/lade/chargers/%s/siteCheck", chg_gid);
    uint64_t t0 = h_now_ms();
    cJSON *j = http_json("POST", path, 202);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "Started")));
    cJSON_Delete(j);

    /* While it runs: 409 with the charger's answer. */
    j = http_json("POST", path, 409);
    const cJSON *reply = cJSON_GetObjectItemCaseSensitive(j, "Reply");
    assert_string_equal(str(reply, "error"), "running");
    cJSON_Delete(j);

    cJSON *st_sc = wait_status_result_of(&ch, 60000);
    uint64_t took = h_now_ms() - t0;
    h_lab_host(&lab, "fw3", true);
    if (!st_sc) {
        h_charger_dump(&ch, "no site check result in the status file");
        fail_msg("no result");
    }
    fprintf(stderr, "site check: POST -> result in the status file in %llu ms\n",
            (unsigned long long)took);

    /* Right after: 429 with retryAfterS (the charger's rule: one a minute). */
    j = http_json("POST", path, 429);
    reply = cJSON_GetObjectItemCaseSensitive(j, "Reply");
    assert_string_equal(str(reply, "error"), "too soon");
    const cJSON *ra = cJSON_GetObjectItemCaseSensitive(reply, "retryAfterS");
    assert_true(cJSON_IsNumber(ra) && ra->valuedouble >= 1 && ra->valuedouble <= 60);
    cJSON_Delete(j);

    /* In the twin, through the portal (the reported patch may still be on its way). */
    snprintf(path, sizeof path, "/api/lade/chargers/%s/network", chg_gid);
    cJSON *sc = NULL;
    size_t net_len = 0;
    uint64_t end = h_now_ms() + 15000;
    while (!sc && h_now_ms() < end) {
        j = http_json("GET", path, 200);
        net_len = strlen(out);
        sc = cJSON_DetachItemFromObjectCaseSensitive(j, "SiteCheck");
        assert_non_null(cJSON_GetObjectItemCaseSensitive(j, "Network"));
        cJSON_Delete(j);
        if (!cJSON_IsObject(sc) || !cJSON_Compare(sc, st_sc, true)) {
            cJSON_Delete(sc);
            sc = NULL;
            usleep(200000);
        }
    }
    if (!sc) {
        char *t = cJSON_Print(st_sc);
        fail_msg("the twin's SiteCheck never matched the status file's:\n%s\nlast GET: %s",
                 t ? t : "?", out);
    }
    char *text = cJSON_PrintUnformatted(sc);
    assert_non_null(text);
    size_t patch_len = strlen(text) + strlen("{\"siteCheck\":}");
    char *pretty = cJSON_Print(sc);
    fprintf(stderr, "twin siteCheck (patch %zu bytes; GET network %zu bytes):\n%s\n", patch_len,
            net_len, pretty);
    free(pretty);
    assert_true(patch_len < 8192); /* well under the reported document's 32 KB */

    assert_string_equal(str(sc, "status"), "warn");
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(sc, "exit");
    assert_true(cJSON_IsNumber(ex) && ex->valueint == 1);
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(sc, "at");
    assert_true(cJSON_IsNumber(at) && at->valuedouble > 1.7e9);
    assert_string_equal(str(check(sc, "reach.hub"), "status"), "pass");
    assert_string_equal(str(check(sc, "dns.site"), "status"), "pass");
    assert_string_equal(str(check(sc, "dns.fallback"), "status"), "pass");
    assert_string_equal(str(check(sc, "time.ntp"), "status"), "pass");
    assert_string_equal(str(check(sc, "reach.fw.fw1.lade.test"), "status"), "pass");
    const cJSON *fw3 = check(sc, "reach.fw.fw3.lade.test");
    assert_string_equal(str(fw3, "status"), "warn");
    assert_non_null(strstr(str(fw3, "remedy"), "443"));
    /* The operating system configures this charger's network: DHCP is not probed. */
    const cJSON *dh = check(sc, "dhcp.offer");
    assert_string_equal(str(dh, "status"), "note");
    assert_non_null(strstr(str(dh, "summary"), "operating system"));
    /* Small: id, status, summary, remedy only. */
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(sc, "checks"))
    {
        int n = 0;
        for (const cJSON *m = c->child; m; m = m->next, n++)
            assert_true(strcmp(m->string, "id") == 0 || strcmp(m->string, "status") == 0 ||
                        strcmp(m->string, "summary") == 0 || strcmp(m->string, "remedy") == 0);
        assert_int_equal(n, 4);
    }
    /* Never the device key (the factory file's base64 value). */
    char *fac = h_read_file(ch.factory);
    assert_non_null(fac);
    char *k = strstr(fac, "device_key");
    assert_non_null(k);
    k = strchr(k, '=');
    assert_non_null(k);
    k++;
    while (*k == ' ')
        k++;
    char key[128];
    size_t kn = strcspn(k, " \r\n");
    assert_true(kn > 8 && kn < sizeof key);
    memcpy(key, k, kn);
    key[kn] = 0;
    assert_null(strstr(text, key));
    free(fac);
    free(text);

    /* One log line with the verdict; the charger stayed online all through. */
    assert_true(h_wait_file_contains(ch.log, "site check: warn (exit 1)", 1000));
    assert_int_equal(h_file_count(ch.log, "site check: warn (exit 1)"), 1);
    assert_true(h_charger_num(&ch, "connects") == 1);
    assert_true(h_charger_wait_status(&ch, "\"link\":\"online\"", 1000));
    cJSON_Delete(sc);
    cJSON_Delete(st_sc);
}

/* A charger stopped while its check runs frees the probe and exits at once, cleanly (no
 * sanitizer report, status 0). */
static void test_stop_while_running(void **state)
{
    (void)state;
    start(&chb, "charger1");
    if (!h_charger_wait_status(&chb, "\"link\":\"online\"", 40000))
        fail_msg("charger B not online");
    h_lab_host(&lab, "fw3", false);
    char path[200];
    snprintf(path, sizeof path, "/api/lade/chargers/%s/siteCheck", chb_gid);
    cJSON *j = http_json("POST", path, 202);
    cJSON_Delete(j);
    bool running = h_charger_wait_status(&chb, "\"site_check_running\":true", 5000);
    uint64_t t0 = h_now_ms();
    h_charger_stop(&chb); /* asserts a clean exit */
    uint64_t took = h_now_ms() - t0;
    h_lab_host(&lab, "fw3", true);
    assert_true(running);
    fprintf(stderr, "stopped during its site check in %llu ms\n", (unsigned long long)took);
    assert_true(h_file_count(chb.log, "site check stopped unfinished") == 1);
    assert_true(h_file_count(chb.log, "site check: ") == 0);
    assert_true(took < 4000);
}

/* Bytes through eth0 of a charger's namespace, both ways (-1 when unreadable). */
static long eth0_bytes(const char *node)
{
    char o[64];
    if (h_lab_run(&lab, node, o, sizeof o,
                  "echo $(( $(cat /sys/class/net/eth0/statistics/rx_bytes) + "
                  "$(cat /sys/class/net/eth0/statistics/tx_bytes) ))") != 0)
        return -1;
    return atol(o);
}

/* A charger that manages its interface (factory net_interface = eth0, DHCP from the lab's
 * router, DNS from DHCP): the check binds to eth0 and also asks the DHCP server, from inside
 * the charger, while the charger's own DHCP client holds its lease. */
static void test_managed_interface_dhcp(void **state)
{
    (void)state;
    h_lab_must(&lab, "addr 2 flush");
    h_charger_provision(&chc, &lab.hub, DEVICE_C,
                        "--evse sim --time-source ntp --net-interface " H_LAB_CHARGER_IF
                        " " H_LAB_FACTORY_ARGS " --hosts-file /dev/null",
                        "backoff_min_ms = 500\nbackoff_max_ms = 2000\n"
                        "connect_timeout_ms = 3000\nlog_level = debug\n");
    start(&chc, "charger2");
    if (!h_charger_wait_status(&chc, "\"link\":\"online\"", 40000))
        fail_msg("charger C not online");
    char path[200];
    snprintf(path, sizeof path, "/api/lade/chargers/%s/siteCheck", chc_gid);
    long bytes0 = eth0_bytes("charger2");
    uint64_t t0 = h_now_ms();
    cJSON *j = http_json("POST", path, 202);
    cJSON_Delete(j);
    cJSON *sc = wait_status_result_of(&chc, 60000);
    long bytes = eth0_bytes("charger2") - bytes0;
    if (!sc) {
        h_charger_dump(&chc, "no site check result");
        fail_msg("no result");
    }
    char *pretty = cJSON_Print(sc);
    fprintf(stderr,
            "managed interface: result in %llu ms, %ld bytes through eth0 (both ways, the "
            "method call and the twin patch included):\n%s\n",
            (unsigned long long)(h_now_ms() - t0), bytes, pretty);
    free(pretty);
    assert_string_equal(str(check(sc, "dhcp.offer"), "status"), "pass");
    assert_string_equal(str(check(sc, "dhcp.router"), "status"), "pass");
    assert_string_equal(str(check(sc, "dhcp.dns"), "status"), "pass");
    assert_string_equal(str(check(sc, "dns.site"), "status"), "pass");
    assert_string_equal(str(check(sc, "reach.hub"), "status"), "pass");
    assert_string_equal(str(check(sc, "time.ntp"), "status"), "pass");
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(sc, "exit");
    assert_true(cJSON_IsNumber(ex) && ex->valueint <= 1);
    /* It kept its own lease and its cloud link all through. */
    assert_true(h_charger_num(&chc, "connects") == 1);
    assert_true(h_charger_wait_status(&chc, "\"link\":\"online\"", 1000));
    cJSON_Delete(sc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_site_check_on_demand),
        cmocka_unit_test(test_stop_while_running),
        cmocka_unit_test(test_managed_interface_dhcp),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
