/* e2e: a real lade-charger on a simulated site network (tests/lab: network namespaces, a site
 * router with dnsmasq and nftables NAT, an "internet" with the hub, chrony and two public
 * resolvers). The charger takes its time from NTP and finds the hub and the NTP host through
 * DNS, as in the field (its hosts file is empty). Issue 5's scenarios that need only what the
 * agent does today (the DHCP client's shell comes next: the charger's address is static here):
 *
 *   - normal boot: DNS via the router, trusted time, hub through the NAT; time measured;
 *   - the router's DNS is silent: the public fallbacks answer through the hedge;
 *   - port 8883 blocked by the firewall: offline, the status says why; unblocked: online;
 *   - NTP blocked: no cloud login, but the car charges on the offline current;
 *   - forged DNS answers (wrong id / another question / from another address or port) reach
 *     the charger before the router's real one: ignored, online through the real hub.
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
#include "harness_charger.h"
#include "harness_lab.h"

static struct h_lab lab;
static int n_started;

static int setup(void **state)
{
    (void)state;
    struct h_lab_opts o = {.chargers = 1, .addr = H_LAB_ADDR_STATIC, .hub = true};
    h_lab_up(&lab, &o);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    h_lab_down(&lab);
    return 0;
}

/* A charger with time from NTP, the router as its site DNS server, the lab's public resolvers
 * as fallbacks and no hosts file, started in charger0's namespace. */
static void start(struct h_charger *c)
{
    char id[32];
    snprintf(id, sizeof id, "LABNET%04d", ++n_started);
    h_charger_provision(c, &lab.hub, id,
                        "--evse sim --time-source ntp " H_LAB_FACTORY_ARGS
                        " --hosts-file /dev/null",
                        "dns_servers = " H_LAB_LAN_ROUTER "\n"
                        "backoff_min_ms = 500\nbackoff_max_ms = 2000\n"
                        "connect_timeout_ms = 3000\n"
                        "offline_current_a = 10\noffline_phases = 3\nsim_car = 3p22kw\n"
                        "report_min_interval_s = 1\nlog_level = debug\n");
    char bin[600];
    snprintf(bin, sizeof bin, "%s/lade-charger", h_build_dir());
    const char *argv[] = {bin,     "--factory", c->factory, "--user",
                          c->user, "--status",  c->status,  NULL};
    c->pid = h_lab_spawn(&lab, "charger0", argv, NULL, c->log);
}

static void test_boot_dns_ntp_hub(void **state)
{
    (void)state;
    struct h_charger c;
    uint64_t t0 = h_now_ms();
    start(&c);
    assert_true(h_charger_wait_status(&c, "\"trusted\":true", 30000));
    assert_true(h_charger_wait_status(&c, "\"link\":\"online\"", 30000));
    fprintf(stderr, "start -> trusted time -> online through the site network: %llu ms\n",
            (unsigned long long)(h_now_ms() - t0));
    /* The hub saw it through the NAT. */
    assert_true(
        h_wait_file_contains(lab.hub.log, "New client connected from " H_LAB_WAN_ROUTER, 5000));
    h_charger_stop(&c);
}

static void test_router_dns_silent_fallback(void **state)
{
    (void)state;
    h_lab_dns(&lab, H_LAB_DNS_SILENT, 0);
    struct h_charger c;
    start(&c);
    bool ok = h_charger_wait_status(&c, "\"link\":\"online\"", 40000);
    h_lab_dns(&lab, H_LAB_DNS_FORWARD, 0);
    assert_true(ok);
    /* The hub's name came from a public fallback, through the hedge, within about a second
     * (R5), not after the router's timeout. */
    char *s = h_read_file(c.status);
    assert_non_null(s);
    fprintf(stderr, "status: %.400s\n", strstr(s, "\"dns\"") ? strstr(s, "\"dns\"") : s);
    assert_non_null(strstr(s, "\"fallback\":true"));
    assert_non_null(strstr(s, "\"source\":\"dns\""));
    double ms = h_charger_num(&c, "dns.ms");
    free(s);
    assert_true(ms > 0 && ms < 1500);
    h_charger_stop(&c);
}

static void test_8883_blocked_then_open(void **state)
{
    (void)state;
    h_lab_firewall(&lab, H_LAB_BLOCK_8883, true);
    struct h_charger c;
    start(&c);
    /* Time and DNS work; the hub does not answer: failures with a reason, never online. */
    assert_true(h_charger_wait_status(&c, "\"trusted\":true", 30000));
    uint64_t end = h_now_ms() + 30000;
    while (h_charger_num(&c, "failures") < 1 && h_now_ms() < end)
        usleep(200000);
    assert_true(h_charger_num(&c, "failures") >= 1);
    assert_true(h_charger_num(&c, "connects") == 0);
    char *s = h_read_file(c.status);
    assert_non_null(s);
    assert_null(strstr(s, "\"link\":\"online\""));
    assert_null(strstr(s, "\"last_reason\":\"\""));
    free(s);
    h_lab_firewall(&lab, H_LAB_BLOCK_8883, false);
    assert_true(h_charger_wait_status(&c, "\"link\":\"online\"", 30000));
    h_charger_stop(&c);
}

static void test_ntp_blocked_charges_offline(void **state)
{
    (void)state;
    h_lab_firewall(&lab, H_LAB_BLOCK_NTP, true);
    struct h_charger c;
    start(&c);
    bool waiting = h_charger_wait_status(&c, "waiting for trusted time", 30000);
    bool offline_offer = h_charger_wait_num(&c, "offer_ma", 10000, 30000);
    double connects = h_charger_num(&c, "connects");
    h_lab_firewall(&lab, H_LAB_BLOCK_NTP, false);
    assert_true(waiting);
    assert_true(offline_offer);
    assert_true(connects == 0);
    /* NTP back: time trusted, then online (the charger retries by itself, R11). */
    assert_true(h_charger_wait_status(&c, "\"link\":\"online\"", 90000));
    h_charger_stop(&c);
}

/* UDP datagrams that found no socket in charger0's namespace (/proc/net/snmp Udp NoPorts). */
static long udp_noports(void)
{
    char out[256];
    if (h_lab_run(&lab, "charger0", out, sizeof out,
                  "awk '/^Udp:/ { if (!h) { split($0, k); h = 1 } else for (i = 2; i <= NF; i++) "
                  "if (k[i] == \"NoPorts\") print $i }' /proc/net/snmp") != 0)
        return -1;
    return atol(out);
}

static struct h_charger spoof_c;

/* A forging router: the real answer still wins, the forged address is never used. */
static void spoof_case(enum h_lab_dns mode, const char *forged, const char *refused,
                       int min_refused)
{
    char dnslog[600];
    snprintf(dnslog, sizeof dnslog, "%s/log/dns.log", lab.dir);
    int forged0 = h_file_count(dnslog, forged);
    long noports0 = udp_noports();
    h_lab_dns(&lab, mode, 0);
    uint64_t t0 = h_now_ms();
    start(&spoof_c);
    bool online = h_charger_wait_status(&spoof_c, "\"link\":\"online\"", 20000);
    uint64_t took = h_now_ms() - t0;
    h_lab_dns(&lab, H_LAB_DNS_FORWARD, 0);
    int n_forged = h_file_count(dnslog, forged) - forged0;
    long n_noports = udp_noports() - noports0;
    int n_refused = refused ? h_file_count(spoof_c.log, refused) : 0;
    char *s = h_read_file(spoof_c.status);
    char *log = h_read_file(spoof_c.log);
    const char *ha = s ? strstr(s, "\"hub_address\":\"") : NULL;
    const char *dns = s ? strstr(s, "\"dns\":") : NULL;
    fprintf(stderr,
            "%s: online after %llu ms; %d forged answers sent, %d refused by the charger, "
            "%ld datagrams with no socket in charger0; %.40s; %.120s\n",
            forged, (unsigned long long)took, n_forged, n_refused, n_noports, ha ? ha : "-",
            dns ? dns : "-");
    /* the hub's real address, from the router's real answer */
    bool real_hub = ha && strncmp(ha + strlen("\"hub_address\":\""), H_LAB_HUB_ADDR ":",
                                  strlen(H_LAB_HUB_ADDR ":")) == 0;
    bool from_router = dns && strstr(dns, "\"server\":\"" H_LAB_LAN_ROUTER ":53\"") &&
                       strstr(dns, "\"fallback\":false");
    /* the forged address never used for anything (hub, NTP, firmware) */
    bool never_tried = log && !strstr(log, "connecting to " H_LAB_SPOOF_ANSWER);
    bool never_seen = log && !strstr(log, H_LAB_SPOOF_ANSWER);
    free(s);
    free(log);
    h_charger_stop(&spoof_c);
    assert_true(online);
    assert_true(n_forged >= 1); /* the forgery was really sent... */
    assert_true(real_hub);      /* ...and ignored */
    assert_true(from_router);
    assert_true(never_tried);
    assert_true(never_seen);
    if (refused) /* it reached the query's socket and was refused there */
        assert_true(n_refused >= min_refused);
    else /* the kernel dropped it: the query's socket is connected to 192.168.77.1:53 */
        assert_true(n_noports >= n_forged);
}

static void test_dns_forged_answers_ignored(void **state)
{
    (void)state;
    uint64_t t0 = h_now_ms();
    spoof_case(H_LAB_DNS_SPOOF_ID, "forged wrong id", "answer refused: wrong id", 1);
    spoof_case(H_LAB_DNS_SPOOF_QUESTION, "forged other", "answer refused: other question", 2);
    spoof_case(H_LAB_DNS_SPOOF_ADDR, "forged right id and question, wrong source", NULL, 0);
    fprintf(stderr, "three forging routers: %llu ms\n", (unsigned long long)(h_now_ms() - t0));
}

/* Even when an assertion failed: the charger stopped, the router forwarding again (the tests
 * share one lab). */
static int dns_forward_again(void **state)
{
    (void)state;
    if (spoof_c.pid > 0 && h_running(spoof_c.pid, NULL))
        h_stop(spoof_c.pid, SIGTERM, 3000);
    spoof_c.pid = 0;
    return h_lab_cmd(&lab, "dns forward") == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boot_dns_ntp_hub),
        cmocka_unit_test(test_router_dns_silent_fallback),
        cmocka_unit_test(test_8883_blocked_then_open),
        cmocka_unit_test(test_ntp_blocked_charges_offline),
        cmocka_unit_test_teardown(test_dns_forged_answers_ignored, dns_forward_again),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
