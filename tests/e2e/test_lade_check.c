/* e2e: lade-check, the site network checker (issue 7, SPEC R18), run as an installer would —
 * on a computer on the chargers' LAN (charger0's namespace of the site-network lab, tests/lab)
 * — against real servers: dnsmasq's DHCP and DNS, the public resolvers, chrony, the hub
 * (Mosquitto + lade_hub.so) and the firmware hosts (nginx), behind the router's NAT firewall.
 *
 * Each broken site must give the right failure with its remedy, and the exit status:
 *   healthy site → every check passes, exit 0;
 *   the firewall drops TCP 8883 → reach.hub fails ("drops outbound TCP 8883"), exit 2;
 *   DNS blocked: the site's DNS server off and port 53 to the internet closed → dns.site and
 *     dns.fallback fail, the hub is not even tried; only port 53 closed → a warning;
 *   the DHCP pool exhausted (pool of 1, held by charger1) → dhcp.offer fails ("exhausted"),
 *     told apart from "no DHCP server" (the server still answers DHCPINFORM);
 *   no DHCP server at all → dhcp.offer fails ("No DHCP server answers");
 *   DHCP gives no DNS server → dhcp.dns warns (option 6), exit 1;
 *   NTP blocked → time.ntp fails (UDP 123), exit 2;
 *   a TLS-inspecting firewall with its own CA → reach.* fail naming the inspection CA;
 * and the WiFi checks against recorded scans (tests/data/wifi), the text table and the
 * command line's errors.
 */
#include <setjmp.h>
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
#include "harness_lab.h"

static struct h_lab lab;
static char out[256 * 1024];

static int setup(void **state)
{
    (void)state;
    struct h_lab_opts o = {.chargers = 2, .addr = H_LAB_ADDR_STATIC, .hub = true, .fw = true};
    h_lab_up(&lab, &o);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    h_lab_down(&lab);
    return 0;
}

/* What a test changed in the lab, undone after it whether it passed or not (a failed assertion
 * must not break the tests after it). */
static char undo_cmds[8][64];
static int n_undo;

/* Registers the lab.sh command that undoes the change about to be made. */
static void undo(const char *cmd)
{
    assert_true(n_undo < 8);
    snprintf(undo_cmds[n_undo++], sizeof undo_cmds[0], "%s", cmd);
}

static int restore(void **state)
{
    (void)state;
    while (n_undo > 0)
        h_lab_cmd(&lab, "%s", undo_cmds[--n_undo]);
    return 0;
}

/* Runs lade-check in charger0's namespace against the lab's services; stdout in out, returns
 * the exit status. extra: more options. */
static int run_check(const char *extra)
{
    return h_lab_run(&lab, "charger0", out, sizeof out,
                     "%s/lade-check --interface eth0 --hub " H_LAB_HUB_HOST " --ca %s"
                     " --firmware-hosts " H_LAB_FW1_HOST "," H_LAB_FW2_HOST "," H_LAB_FW3_HOST
                     " --ntp " H_LAB_NTP_HOST " --fallback-dns " H_LAB_RESOLVER1_ADDR
                     "," H_LAB_RESOLVER2_ADDR " --timeout 2000 %s 2>>%s/stderr.log",
                     h_build_dir(), lab.ca, extra, lab.tmp);
}

/* The finding with this id in a --json report (fails the test when missing). */
static const cJSON *finding(const cJSON *report, const char *id)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(report, "checks"))
    {
        const cJSON *i = cJSON_GetObjectItem(c, "id");
        if (cJSON_IsString(i) && strcmp(i->valuestring, id) == 0)
            return c;
    }
    fail_msg("no finding %s in:\n%s", id, out);
    return NULL;
}

static const char *field(const cJSON *f, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(f, key);
    assert_true(cJSON_IsString(v));
    return v->valuestring;
}

static void expect(const cJSON *report, const char *id, const char *status, const char *summary,
                   const char *remedy)
{
    const cJSON *f = finding(report, id);
    if (strcmp(field(f, "status"), status) != 0)
        fail_msg("%s: %s, expected %s: %s", id, field(f, "status"), status, field(f, "summary"));
    if (summary && !strstr(field(f, "summary"), summary))
        fail_msg("%s: summary lacks \"%s\": %s", id, summary, field(f, "summary"));
    if (remedy && !strstr(field(f, "remedy"), remedy))
        fail_msg("%s: remedy lacks \"%s\": %s", id, remedy, field(f, "remedy"));
}

static cJSON *check_json(const char *extra, int want_exit)
{
    char opts[512];
    snprintf(opts, sizeof opts, "--json %s", extra ? extra : "");
    int rc = run_check(opts);
    cJSON *j = cJSON_Parse(out);
    if (!j)
        fail_msg("lade-check exit %d, not JSON:\n%s", rc, out);
    if (rc != want_exit)
        fail_msg("lade-check exit %d, expected %d:\n%s", rc, want_exit, out);
    assert_int_equal(cJSON_GetObjectItem(j, "exit")->valueint, want_exit);
    return j;
}

static void test_healthy_site_passes(void **state)
{
    (void)state;
    cJSON *j = check_json(NULL, 0);
    expect(j, "dhcp.offer", "pass", "192.168.77.1", NULL);
    expect(j, "dhcp.lease", "pass", "1 h", NULL);
    expect(j, "dhcp.router", "pass", H_LAB_LAN_ROUTER, NULL);
    expect(j, "dhcp.dns", "pass", H_LAB_LAN_ROUTER, NULL);
    expect(j, "dns.site", "pass", "(from DHCP)", NULL);
    expect(j, "dns.fallback", "pass", H_LAB_RESOLVER1_ADDR, NULL);
    expect(j, "time.ntp", "pass", H_LAB_NTP_HOST, NULL);
    expect(j, "reach.hub", "pass", "certificate verified", NULL);
    expect(j, "reach.fw." H_LAB_FW1_HOST, "pass", "port 443", NULL);
    expect(j, "reach.fw." H_LAB_FW3_HOST, "pass", NULL, NULL);
    assert_string_equal(cJSON_GetObjectItem(j, "status")->valuestring, "note");
    cJSON_Delete(j);
    /* No lease was taken by the made-up client (its MACs start 0a:de:c0). */
    char *leases = h_read_file(lab.leases);
    assert_null(leases ? strstr(leases, "0a:de:c0") : NULL);
    free(leases);

    /* The table for people: sections, the verdict, no colour on a pipe; colour on request. */
    int rc = run_check("--chargers 8 --bearer wifi");
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "DHCP (addresses for the chargers)"));
    assert_non_null(strstr(out, "  PASS  A new charger is offered an address"));
    assert_non_null(strstr(out, "8 chargers need 8 addresses"));
    assert_non_null(strstr(out, "READY: every check passed"));
    assert_null(strstr(out, "\x1b["));
    rc = run_check("--color always");
    assert_non_null(strstr(out, "\x1b[32mPASS\x1b[0m"));
}

static void test_firewall_blocks_8883(void **state)
{
    (void)state;
    undo("firewall allow 8883");
    h_lab_firewall(&lab, H_LAB_BLOCK_8883, true);
    cJSON *j = check_json(NULL, 2);
    expect(j, "reach.hub", "fail", "a firewall drops outbound TCP 8883",
           "Allow outbound TCP port 8883 to " H_LAB_HUB_HOST);
    expect(j, "reach.fw." H_LAB_FW2_HOST, "pass", NULL, NULL); /* 443 still open */
    expect(j, "dns.site", "pass", NULL, NULL);
    cJSON_Delete(j);
}

static void test_dns_blocked(void **state)
{
    (void)state;
    /* Port 53 to the internet closed: the router's DNS (which forwards from the router
     * itself) still works, the fallbacks do not: a warning, the chargers work. */
    undo("firewall allow dns");
    h_lab_firewall(&lab, H_LAB_BLOCK_DNS, true);
    cJSON *j = check_json(NULL, 1);
    expect(j, "dns.site", "pass", NULL, NULL);
    expect(j, "dns.fallback", "warn", "DNS to the internet is blocked",
           "Allow DNS (UDP and TCP port 53) outbound");
    expect(j, "reach.hub", "pass", NULL, NULL);
    cJSON_Delete(j);
    /* And the site's DNS server off too: nothing resolves. */
    undo("dns forward");
    h_lab_dns(&lab, H_LAB_DNS_OFF, 0);
    j = check_json(NULL, 2);
    expect(j, "dns.site", "fail", "fails", "Fix the site's DNS server");
    expect(j, "dns.fallback", "fail", "DNS to the internet is blocked", "port 53");
    expect(j, "time.ntp", "fail", "does not resolve", NULL);
    expect(j, "reach.hub", "fail", "does not resolve", "Fix DNS first");
    cJSON_Delete(j);
}

static void test_dhcp_pool_exhausted(void **state)
{
    (void)state;
    /* A pool of one address, taken by charger1 (busybox udhcpc). */
    undo("addr 1 static");
    undo("dhcp set pool 50");
    h_lab_must(&lab, "dhcp set pool 1");
    h_lab_must(&lab, "addr 1 flush");
    h_lab_must(&lab, "dhcp-client 1");
    char ip[16];
    assert_true(h_lab_wait_lease(&lab, 1, ip, 10000));
    cJSON *j = check_json(NULL, 2);
    expect(j, "dhcp.offer", "fail", "its address pool is exhausted", "Enlarge the DHCP pool");
    cJSON_Delete(j);
    /* With no DHCP server at all the answer is another one. */
    undo("dhcp on");
    h_lab_dhcp(&lab, false);
    j = check_json(NULL, 2);
    expect(j, "dhcp.offer", "fail", "No DHCP server answers", "Turn on a DHCP server");
    cJSON_Delete(j);
}

static void test_pool_probe(void **state)
{
    (void)state;
    /* 6 made-up chargers from a pool of 4: not every charger gets an address. */
    undo("dhcp set pool 50");
    h_lab_must(&lab, "dhcp set pool 4");
    cJSON *j = check_json("--chargers 6 --probe-pool", 2);
    h_lab_must(&lab, "dhcp set pool 50");
    expect(j, "dhcp.pool", "fail", "the pool cannot give every charger an address",
           "Enlarge the DHCP pool");
    cJSON_Delete(j);
    /* 6 or more: dnsmasq may offer one free address to two made-up clients whose hashes meet,
     * and the probe then asks again as 6 new ones, adding what they are offered. */
    j = check_json("--chargers 6 --probe-pool", 0);
    expect(j, "dhcp.pool", "pass", "there is room for 6 chargers", NULL);
    cJSON_Delete(j);
}

static void test_dhcp_gives_no_dns(void **state)
{
    (void)state;
    undo("dhcp set dns router");
    h_lab_must(&lab, "dhcp set dns none");
    cJSON *j = check_json(NULL, 1);
    expect(j, "dhcp.dns", "warn", "gives no DNS server", "option 6");
    expect(j, "dns.site", "note", "DHCP gives none", NULL);
    expect(j, "dns.fallback", "pass", NULL, NULL);
    expect(j, "reach.hub", "pass", NULL, NULL);
    cJSON_Delete(j);
}

static void test_ntp_blocked(void **state)
{
    (void)state;
    undo("firewall allow ntp");
    h_lab_firewall(&lab, H_LAB_BLOCK_NTP, true);
    cJSON *j = check_json(NULL, 2);
    expect(j, "time.ntp", "fail", "No NTP answer from " H_LAB_NTP_HOST,
           "Allow NTP (UDP port 123) outbound");
    expect(j, "reach.hub", "pass", NULL, NULL);
    cJSON_Delete(j);
}

static void test_tls_inspecting_firewall(void **state)
{
    (void)state;
    undo("intercept off");
    h_lab_intercept(&lab, true);
    cJSON *j = check_json(NULL, 2);
    expect(j, "reach.hub", "fail", H_LAB_INTERCEPT_CA_CN, "Exempt this host and port from TLS");
    expect(j, "reach.hub", "fail", "intercepts TLS", NULL);
    expect(j, "reach.fw." H_LAB_FW1_HOST, "fail", H_LAB_INTERCEPT_CA_CN, NULL);
    /* The TCP connection itself got through: it is not a port block. */
    const cJSON *d = cJSON_GetObjectItem(finding(j, "reach.hub"), "data");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(d, "tcp_connected")));
    cJSON_Delete(j);
}

static void test_names_and_certificates(void **state)
{
    (void)state;
    /* A firmware host name nobody knows (a typo in the settings): not blamed on the site's
     * DNS. One whose address serves a certificate for other names: the name mismatch. */
    undo("names reset");
    h_lab_must(&lab, "names add wrongname.lade.test " H_LAB_FW1_ADDR);
    int rc =
        run_check("--json --firmware-hosts fw1.lade.test,nosuch.lade.test,wrongname.lade.test");
    cJSON *j = cJSON_Parse(out);
    if (!j)
        fail_msg("not JSON (exit %d):\n%s", rc, out);
    assert_int_equal(rc, 2);
    expect(j, "dns.names", "fail", "nosuch.lade.test (firmware)", "--firmware-hosts");
    expect(j, "dns.site", "pass", "All 4 names", NULL);
    expect(j, "reach.fw.nosuch.lade.test", "warn", "does not exist", NULL);
    expect(j, "reach.fw.wrongname.lade.test", "warn", "not for wrongname.lade.test",
           "Make sure the name is right");
    expect(j, "reach.fw.fw1.lade.test", "pass", NULL, NULL);
    cJSON_Delete(j);
}

static void test_one_fallback_down(void **state)
{
    (void)state;
    undo("start resolver2");
    h_lab_must(&lab, "stop resolver2");
    cJSON *j = check_json(NULL, 1);
    expect(j, "dns.fallback", "warn",
           "No answer from the fallback DNS server " H_LAB_RESOLVER2_ADDR, "every fallback server");
    expect(j, "dns.site", "pass", NULL, NULL);
    cJSON_Delete(j);
}

/* Recorded scans: no lab needed. */
static int run_offline(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/lade-check --offline --json %s > %s/offline.json 2>&1",
             h_build_dir(), args, lab.tmp);
    int rc = system(cmd);
    char path[700];
    snprintf(path, sizeof path, "%s/offline.json", lab.tmp);
    char *text = h_read_file(path);
    assert_non_null(text);
    snprintf(out, sizeof out, "%s", text);
    free(text);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

static void test_wifi_recorded_scans(void **state)
{
    (void)state;
    char a[600], b[600], args[1400];
    const char *src = h_source_dir();
    snprintf(args, sizeof args, "--ssid lade-site --wifi-scan %s/tests/data/wifi/healthy.iw", src);
    assert_int_equal(run_offline(args), 0);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    expect(j, "wifi.signal", "pass", NULL, NULL);
    expect(j, "wifi.channel", "pass", NULL, NULL);
    cJSON_Delete(j);

    snprintf(args, sizeof args, "--ssid lade-site --wifi-scan %s/tests/data/wifi/weak.iw", src);
    assert_int_equal(run_offline(args), 2);
    j = cJSON_Parse(out);
    expect(j, "wifi.signal", "fail", NULL, "PLC");
    cJSON_Delete(j);

    /* Two scans minutes apart on different channels: automatic channel selection. */
    snprintf(a, sizeof a, "%s/tests/data/wifi/auto-1.iw", src);
    snprintf(b, sizeof b, "%s/tests/data/wifi/auto-2.iw", src);
    snprintf(args, sizeof args, "--ssid lade-site --wifi-scan %s --wifi-scan %s", a, b);
    assert_int_equal(run_offline(args), 2);
    j = cJSON_Parse(out);
    expect(j, "wifi.fixed", "fail", NULL, "1, 6 or 11");
    cJSON_Delete(j);

    /* A file that is not a scan: a clear error, exit 3. */
    snprintf(args, sizeof args, "--wifi-scan %s/tests/data/wifi/malformed.iw", src);
    assert_int_equal(run_offline(args), 3);
    assert_non_null(strstr(out, "not a WiFi scan"));
}

static void test_bad_command_line(void **state)
{
    (void)state;
    assert_int_equal(run_offline("--chargers lots"), 3);
    assert_non_null(strstr(out, "--chargers: 'lots' is not a number"));
    assert_int_equal(run_offline("--probe-pool"), 3);
    assert_int_equal(run_offline(""), 3);
    assert_non_null(strstr(out, "nothing to check"));
    /* An unreadable CA file is said so, not reported as a site failure. */
    int rc = h_lab_run(&lab, "charger0", out, sizeof out,
                       "%s/lade-check --no-dhcp --hub h.lade.test --ca /nonexistent 2>&1",
                       h_build_dir());
    assert_int_equal(rc, 3);
    assert_non_null(strstr(out, "/nonexistent"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_healthy_site_passes, restore),
        cmocka_unit_test_teardown(test_firewall_blocks_8883, restore),
        cmocka_unit_test_teardown(test_dns_blocked, restore),
        cmocka_unit_test_teardown(test_dhcp_pool_exhausted, restore),
        cmocka_unit_test_teardown(test_pool_probe, restore),
        cmocka_unit_test_teardown(test_dhcp_gives_no_dns, restore),
        cmocka_unit_test_teardown(test_ntp_blocked, restore),
        cmocka_unit_test_teardown(test_tls_inspecting_firewall, restore),
        cmocka_unit_test_teardown(test_names_and_certificates, restore),
        cmocka_unit_test_teardown(test_one_fallback_down, restore),
        cmocka_unit_test(test_wifi_recorded_scans),
        cmocka_unit_test(test_bad_command_line),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
