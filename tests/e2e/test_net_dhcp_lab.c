/* e2e: a real lade-charger that manages its own network interface in the site-network lab
 * (tests/lab): factory `--net-interface eth0`, the lab's eth0 up and empty (H_LAB_ADDR_NONE),
 * so the charger's own DHCP client, link-local fallback, DNS from DHCP, SNTP and the hub login
 * all run against the lab's real servers (dnsmasq, chrony, Mosquitto + lade_hub.so). Its hosts
 * file is /dev/null: every name goes through DNS. Issue 5's scenarios:
 *
 *   1. normal boot: leased address, DNS servers from DHCP, trusted time, online; time measured;
 *   2. no DHCP server: link-local 169.254/16, no cloud attempt ("waiting for a network
 *      address"); the server back: leased, online;
 *   3. the pool exhausted (another device holds its only address): link-local, DISCOVERs keep
 *      going; the other device releases: leased, online;
 *   4. the lease expires while the DHCP server is gone: address removed, offline; the server
 *      back: leased, online (dnsmasq's minimum lease is 120 s: this one takes about 2.5 min);
 *   5. DHCP gives no DNS server: the factory fallback resolvers find the hub;
 *   6. the OS clock starts in 1970 (libfaketime): the floor applies, NTP, login;
 *   7. the only NTP server is an hour off: time never trusted, never online, the status says why;
 *   8. the cable flaps 5 times: the cloud connection is kept (at most one reconnect), same address;
 *   9. port 8883 blocked: offline with the hub failure as the reason; unblocked: online.
 *
 * One lab for the group (two chargers: charger1 is "another device" in 3) and a lab of its own
 * for 7. Every test starts its own charger (fresh id, fresh state dir) and a per-test teardown
 * puts every knob back, so the tests are independent and a failure does not cascade.
 */
#include <glob.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "harness.h"
#include "harness_charger.h"
#include "harness_lab.h"

#define LL_WAIT_MS     45000 /* 3rd DISCOVER at ~12.5 s, then ~7 s of ARP probing */
#define DHCP_BACK_MS   90000 /* the DISCOVER back-off reaches 64 s (RFC 2131 §4.1) */
#define ONLINE_WAIT_MS 40000

static struct h_lab lab;     /* the group's: 2 chargers, eth0 empty, hub, ntp1 and ntp2 */
static struct h_lab lab_ntp; /* scenario 7's: ntp1 an hour off */
static struct h_charger *g_cur;
static pid_t g_other; /* scenario 3's udhcpc in charger1 */
static int n_started;

static int group_setup(void **state)
{
    (void)state;
    /* two NTP servers (both ntp.lade.test), as a pool name gives several: a clock more than 1 s
     * off (scenario 6) is only stepped when two servers agree (docs/time.md) */
    struct h_lab_opts o = {.chargers = 2, .addr = H_LAB_ADDR_NONE, .hub = true, .ntp_servers = 2};
    h_lab_up(&lab, &o);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    h_lab_down(&lab);
    return 0;
}

static uint64_t g_t0;

static int mark(void **state)
{
    (void)state;
    g_t0 = h_now_ms();
    return 0;
}

/* After every test, passed or failed: stop what it started and put every knob back. */
static int restore(void **state)
{
    (void)state;
    fprintf(stderr, "(test took %llu ms)\n", (unsigned long long)(h_now_ms() - g_t0));
    if (g_cur && g_cur->pid > 0) {
        h_stop(g_cur->pid, SIGTERM, 10000);
        g_cur->pid = 0;
    }
    g_cur = NULL;
    if (g_other > 0) {
        h_stop(g_other, SIGTERM, 5000);
        g_other = 0;
    }
    if (lab_ntp.up)
        h_lab_down(&lab_ntp);
    int rc = h_lab_cmd(&lab, "firewall clear");
    rc |= h_lab_cmd(&lab, "dhcp on");
    rc |= h_lab_cmd(&lab, "dhcp set pool 50 lease 3600 dns router");
    for (int i = 0; i < lab.chargers; i++) {
        rc |= h_lab_cmd(&lab, "link %d up", i);
        rc |= h_lab_cmd(&lab, "addr %d flush", i);
    }
    return rc == 0 ? 0 : -1;
}

/* A managed charger in l's charger0: time from NTP, DNS from DHCP (then the lab's public
 * resolvers as the factory fallbacks), no hosts file. env may be NULL. */
static void start_in(struct h_lab *l, struct h_charger *c, const char *const env[])
{
    char id[32];
    snprintf(id, sizeof id, "LABDHCP%04d", ++n_started);
    h_charger_provision(c, &l->hub, id,
                        "--evse sim --time-source ntp --net-interface " H_LAB_CHARGER_IF
                        " " H_LAB_FACTORY_ARGS " --hosts-file /dev/null",
                        "backoff_min_ms = 500\nbackoff_max_ms = 2000\n"
                        "connect_timeout_ms = 3000\n"
                        "offline_current_a = 10\noffline_phases = 3\nsim_car = 3p22kw\n"
                        "report_min_interval_s = 1\nlog_level = debug\n");
    char bin[600];
    snprintf(bin, sizeof bin, "%s/lade-charger", h_build_dir());
    const char *argv[] = {bin,     "--factory", c->factory, "--user",
                          c->user, "--status",  c->status,  NULL};
    c->pid = h_lab_spawn(l, "charger0", argv, env, c->log);
    g_cur = c;
}

static void start(struct h_charger *c)
{
    start_in(&lab, c, NULL);
}

/* ---- the status file's "net" object ---- */

/* The status as JSON (retries while the file is being replaced); NULL if never readable. */
static cJSON *status_json(const struct h_charger *c)
{
    for (int tries = 0; tries < 100; tries++) {
        char *s = h_read_file(c->status);
        cJSON *o = s ? cJSON_Parse(s) : NULL;
        free(s);
        if (o)
            return o;
        usleep(20000);
    }
    return NULL;
}

/* A string of the status: "<object>.<key>" (net.address, time.state) or a top-level key. */
static bool status_str(const struct h_charger *c, const char *key, char *out, size_t cap)
{
    out[0] = 0;
    cJSON *o = status_json(c);
    if (!o)
        return false;
    const cJSON *v = o;
    const char *dot = strchr(key, '.');
    if (dot) {
        char obj[32];
        snprintf(obj, sizeof obj, "%.*s", (int)(dot - key), key);
        v = cJSON_GetObjectItemCaseSensitive(v, obj);
        key = dot + 1;
    }
    v = cJSON_GetObjectItemCaseSensitive(v, key);
    bool ok = cJSON_IsString(v);
    if (ok)
        snprintf(out, cap, "%s", v->valuestring);
    cJSON_Delete(o);
    return ok;
}

/* net.<key>: a number (or bool as 0/1) of the net object; fails the test when it is missing. */
static double net_num(const struct h_charger *c, const char *key)
{
    char path[64];
    snprintf(path, sizeof path, "net.%s", key);
    return h_charger_num(c, path);
}

/* net.dns as one comma-separated string ("" for an empty list); false when it is no array. */
static bool net_dns(const struct h_charger *c, char *out, size_t cap)
{
    out[0] = 0;
    cJSON *o = status_json(c);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(
        o ? cJSON_GetObjectItemCaseSensitive(o, "net") : NULL, "dns");
    bool ok = cJSON_IsArray(a);
    const cJSON *e;
    cJSON_ArrayForEach(e, a)
    {
        if (cJSON_IsString(e)) {
            size_t n = strlen(out);
            snprintf(out + n, cap - n, "%s%s", n ? "," : "", e->valuestring);
        }
    }
    cJSON_Delete(o);
    return ok;
}

static bool wait_net_num_ge(const struct h_charger *c, const char *key, double min,
                            uint32_t timeout_ms)
{
    uint64_t end = h_now_ms() + timeout_ms;
    do {
        if (net_num(c, key) >= min)
            return true;
        usleep(100000);
    } while (h_now_ms() < end);
    char why[200];
    snprintf(why, sizeof why, "net.%s never reached %g", key, min);
    h_charger_dump(c, why);
    return false;
}

/* Polls until the status no longer contains needle. */
static bool wait_status_without(const struct h_charger *c, const char *needle, uint32_t timeout_ms)
{
    uint64_t end = h_now_ms() + timeout_ms;
    do {
        char *s = h_read_file(c->status);
        bool gone = s && !strstr(s, needle);
        free(s);
        if (gone)
            return true;
        usleep(100000);
    } while (h_now_ms() < end);
    char why[200];
    snprintf(why, sizeof why, "'%s' stayed in the status", needle);
    h_charger_dump(c, why);
    return false;
}

/* Occurrences of needle in the file, ignoring case (DNS servers log names in the case the
 * client sent, and the charger randomises it: DNS 0x20). */
static int count_ci(const char *path, const char *needle)
{
    char *text = h_read_file(path);
    int n = 0;
    for (const char *p = text; p && (p = strcasestr(p, needle)); p += strlen(needle))
        n++;
    free(text);
    return n;
}

static bool wait_file_ci(const char *path, const char *needle, uint32_t timeout_ms)
{
    uint64_t end = h_now_ms() + timeout_ms;
    do {
        if (count_ci(path, needle) > 0)
            return true;
        usleep(100000);
    } while (h_now_ms() < end);
    fprintf(stderr, "no '%s' in %s\n", needle, path);
    return false;
}

static bool status_has(const struct h_charger *c, const char *needle)
{
    char *s = h_read_file(c->status);
    bool has = s && strstr(s, needle);
    free(s);
    return has;
}

/* Every IPv4 address on charger I's eth0 ("a/p a/p ..."), as the kernel has it. */
static void kernel_addrs(struct h_lab *l, int charger, char *out, size_t cap)
{
    char node[32];
    snprintf(node, sizeof node, "charger%d", charger);
    h_lab_run(l, node, out, cap, "ip -4 -o addr show dev %s | awk '{printf \"%%s \", $4}'",
              H_LAB_CHARGER_IF);
}

/* The charger is managing: the link-local address it reports, on eth0, no cloud attempt. */
static void expect_link_local_waiting(struct h_charger *c)
{
    assert_true(h_charger_wait_status(c, "\"source\":\"link-local\"", LL_WAIT_MS));
    char addr[64], ll[64], reason[300], have[512];
    assert_true(status_str(c, "net.address", addr, sizeof addr));
    assert_true(status_str(c, "net.ll_address", ll, sizeof ll));
    fprintf(stderr, "%s: link-local %s after %g DISCOVERs\n", c->id, addr, net_num(c, "discovers"));
    assert_true(strncmp(addr, "169.254.", 8) == 0);
    assert_string_equal(ll, addr);
    assert_true(net_num(c, "discovers") >= 3);
    kernel_addrs(&lab, 0, have, sizeof have);
    assert_non_null(strstr(have, addr));
    assert_non_null(strstr(have, "/16"));
    /* no cloud attempt without a DHCP address, and the status says so */
    assert_true(h_charger_wait_status(c, "waiting for a network address", 5000));
    assert_true(status_str(c, "last_reason", reason, sizeof reason));
    assert_non_null(strstr(reason, "waiting for a network address"));
    assert_false(status_has(c, "\"link\":\"online\""));
    assert_true(h_charger_num(c, "connects") == 0);
    assert_true(h_charger_num(c, "failures") == 0);
}

/* Leased (the address dnsmasq gave charger0, on eth0, link-local gone) and online. */
static void expect_leased_online(struct h_charger *c, char ip[16])
{
    assert_true(h_charger_wait_status(c, "\"source\":\"dhcp\"", DHCP_BACK_MS));
    assert_true(h_lab_wait_lease(&lab, 0, ip, 5000));
    char addr[64], ll[64], have[512];
    assert_true(status_str(c, "net.address", addr, sizeof addr));
    assert_string_equal(addr, ip);
    assert_true(status_str(c, "net.ll_address", ll, sizeof ll));
    assert_string_equal(ll, "");
    assert_true(h_charger_wait_status(c, "\"link\":\"online\"", ONLINE_WAIT_MS));
    kernel_addrs(&lab, 0, have, sizeof have);
    fprintf(stderr, "%s: eth0 has %s\n", c->id, have);
    assert_non_null(strstr(have, ip));
    assert_null(strstr(have, "169.254."));
}

/* 1. Normal boot. */
static void test_boot_dhcp_dns_ntp_hub(void **state)
{
    (void)state;
    struct h_charger c;
    uint64_t t0 = h_now_ms();
    start(&c);
    char ip[16];
    assert_true(h_lab_wait_lease(&lab, 0, ip, 30000));
    uint64_t t_lease = h_now_ms() - t0;
    assert_true(h_charger_wait_status(&c, "\"source\":\"dhcp\"", 30000));
    uint64_t t_bound = h_now_ms() - t0;
    assert_true(h_charger_wait_status(&c, "\"trusted\":true", 30000));
    assert_true(h_charger_wait_status(&c, "\"link\":\"online\"", ONLINE_WAIT_MS));
    uint64_t t_online = h_now_ms() - t0;
    fprintf(stderr,
            "start -> lease %llu ms -> address configured %llu ms -> online %llu ms (own DHCP, "
            "DNS from DHCP, NTP, hub through the NAT)\n",
            (unsigned long long)t_lease, (unsigned long long)t_bound, (unsigned long long)t_online);

    char s[128];
    assert_true(status_str(&c, "net.address", s, sizeof s));
    assert_string_equal(s, ip);
    assert_true(net_num(&c, "managed") == 1);
    assert_true(net_num(&c, "carrier") == 1);
    assert_true(status_str(&c, "net.interface", s, sizeof s));
    assert_string_equal(s, H_LAB_CHARGER_IF);
    assert_true(net_num(&c, "prefix") == 24);
    assert_true(status_str(&c, "net.router", s, sizeof s));
    assert_string_equal(s, H_LAB_LAN_ROUTER);
    assert_true(net_dns(&c, s, sizeof s));
    assert_string_equal(s, H_LAB_LAN_ROUTER);
    assert_true(status_str(&c, "net.dhcp_state", s, sizeof s));
    assert_string_equal(s, "BOUND");
    double left = net_num(&c, "lease_left_s");
    assert_true(left > 3000 && left <= 3600);
    assert_true(status_str(&c, "net.bearer", s, sizeof s));
    assert_string_equal(s, "wired");

    /* the kernel: the address and the default route via the router */
    char out[1024];
    kernel_addrs(&lab, 0, out, sizeof out);
    assert_non_null(strstr(out, ip));
    assert_int_equal(h_lab_run(&lab, "charger0", out, sizeof out, "ip -4 route show default"), 0);
    assert_non_null(strstr(out, "via " H_LAB_LAN_ROUTER));
    /* the name was asked of the DNS server DHCP gave, from the leased address */
    char dnslog[600], needle[128];
    snprintf(dnslog, sizeof dnslog, "%s/log/dns.log", lab.dir);
    snprintf(needle, sizeof needle, "query[A] " H_LAB_HUB_HOST " from %s", ip);
    assert_true(wait_file_ci(dnslog, needle, 2000));
    /* the hub saw it through the NAT */
    snprintf(needle, sizeof needle, "as %s (", c.id);
    assert_true(h_wait_file_contains(lab.hub.log, needle, 5000));
    assert_true(
        h_wait_file_contains(lab.hub.log, "New client connected from " H_LAB_WAN_ROUTER, 5000));
    h_charger_stop(&c);
}

/* 2. No DHCP server: link-local, no cloud; the server back: leased, online. */
static void test_no_dhcp_link_local_then_lease(void **state)
{
    (void)state;
    h_lab_dhcp(&lab, false);
    struct h_charger c;
    uint64_t t0 = h_now_ms();
    start(&c);
    expect_link_local_waiting(&c);
    fprintf(stderr, "link-local after %llu ms\n", (unsigned long long)(h_now_ms() - t0));
    uint64_t t1 = h_now_ms();
    h_lab_dhcp(&lab, true);
    char ip[16];
    expect_leased_online(&c, ip);
    fprintf(stderr, "DHCP server back -> leased and online after %llu ms\n",
            (unsigned long long)(h_now_ms() - t1));
    h_charger_stop(&c);
}

/* 3. The pool's only address is held by another device: no OFFER, link-local, DISCOVERs keep
 * going; the other device releases it: leased, online. */
static void test_pool_exhausted(void **state)
{
    (void)state;
    h_lab_must(&lab, "dhcp forget");
    h_lab_must(&lab, "dhcp set pool 1");
    /* "another device": busybox udhcpc in charger1, releasing its lease when it stops (-R) */
    char script[700], other_log[700];
    snprintf(script, sizeof script, "%s/tests/lab/udhcpc.script", h_source_dir());
    snprintf(other_log, sizeof other_log, "%s/udhcpc-c1.log", lab.tmp);
    const char *argv[] = {
        "busybox", "udhcpc", "-i", H_LAB_CHARGER_IF, "-f", "-R", "-t", "3", "-T", "1",
        "-A",      "1",      "-s", script,           NULL};
    g_other = h_lab_spawn(&lab, "charger1", argv, NULL, other_log);
    char other[16];
    assert_true(h_lab_wait_lease(&lab, 1, other, 15000));
    assert_string_equal(other, "192.168.77.100");

    struct h_charger c;
    start(&c);
    expect_link_local_waiting(&c);
    char ip[16];
    assert_false(h_lab_lease(&lab, 0, ip));
    char dhcplog[600];
    snprintf(dhcplog, sizeof dhcplog, "%s/log/dhcp.log", lab.dir);
    assert_true(h_wait_file_contains(dhcplog, "no address available", 1000));
    double discovers = net_num(&c, "discovers");

    /* the other device leaves and releases its address */
    uint64_t t1 = h_now_ms();
    h_stop(g_other, SIGTERM, 5000);
    g_other = 0;
    assert_true(h_wait_file_contains(dhcplog, "DHCPRELEASE", 5000));
    expect_leased_online(&c, ip);
    assert_string_equal(ip, "192.168.77.100");
    /* the lease came from a later DISCOVER: the client never gave up */
    assert_true(net_num(&c, "discovers") > discovers);
    fprintf(stderr, "pool freed -> leased and online after %llu ms; %g DISCOVERs in all\n",
            (unsigned long long)(h_now_ms() - t1), net_num(&c, "discovers"));
    h_charger_stop(&c);
}

/* 4. The lease runs out while the DHCP server is gone. */
static void test_lease_expires_server_gone(void **state)
{
    (void)state;
    h_lab_must(&lab, "dhcp set lease 120"); /* dnsmasq's minimum */
    struct h_charger c;
    start(&c);
    char ip[16];
    expect_leased_online(&c, ip);
    h_lab_dhcp(&lab, false);
    double left = net_num(&c, "lease_left_s");
    assert_true(left > 60 && left <= 120);
    fprintf(stderr, "DHCP server stopped; the lease has %g s left\n", left);
    double connects = h_charger_num(&c, "connects");
    assert_true(connects == 1);

    /* renewing and rebinding go unanswered; until the expiry the address and the link stay */
    uint64_t end = h_now_ms() + (uint64_t)(left + 30) * 1000;
    while (net_num(&c, "expiries") < 1 && h_now_ms() < end) {
        assert_true(h_charger_num(&c, "connects") == connects);
        usleep(500000);
    }
    if (net_num(&c, "expiries") < 1)
        h_charger_dump(&c, "the lease never expired");
    assert_true(net_num(&c, "expiries") >= 1);
    uint64_t t_exp = h_now_ms();
    char src[32], have[512], reason[300];
    assert_true(status_str(&c, "net.source", src, sizeof src));
    fprintf(stderr, "lease expired: source '%s'\n", src);
    assert_string_not_equal(src, "dhcp");
    kernel_addrs(&lab, 0, have, sizeof have);
    fprintf(stderr, "eth0 after the expiry: %s\n", have);
    char with_prefix[32];
    snprintf(with_prefix, sizeof with_prefix, "%s/", ip);
    assert_null(strstr(have, with_prefix));
    /* The address is lost: the link is dropped, and there is no new attempt until there is an
     * address again. (Checked after the recovery below, so that a failure shows both.) */
    bool dropped = wait_status_without(&c, "\"link\":\"online\"", 3000);
    double failures = h_charger_num(&c, "failures");
    bool waiting = h_charger_wait_status(&c, "waiting for a network address", 3000);
    assert_true(status_str(&c, "last_reason", reason, sizeof reason));
    double failures_no_addr = h_charger_num(&c, "failures") - failures;
    fprintf(stderr, "without an address: last_reason '%s'; %g failed attempts in ~3 s\n", reason,
            failures_no_addr);
    /* the server comes back now: the client's INIT DISCOVERs are at 0-1 s, +4 s, +8 s */
    h_lab_dhcp(&lab, true);

    char ip2[16];
    assert_true(h_charger_wait_status(&c, "\"source\":\"dhcp\"", 60000));
    assert_true(h_charger_wait_status(&c, "\"link\":\"online\"", ONLINE_WAIT_MS));
    assert_true(h_lab_wait_lease(&lab, 0, ip2, 1000));
    assert_string_equal(ip2, ip);
    assert_true(h_charger_num(&c, "connects") == connects + 1);
    fprintf(stderr, "DHCP back after the expiry -> leased and online in %llu ms\n",
            (unsigned long long)(h_now_ms() - t_exp));
    assert_true(dropped);
    assert_true(waiting);
    assert_non_null(strstr(reason, "waiting for a network address"));
    assert_true(failures_no_addr == 0);
    h_charger_stop(&c);
}

/* 5. DHCP gives no DNS server: the factory fallbacks (the lab's public resolvers) answer. */
static void test_dhcp_no_dns_fallbacks(void **state)
{
    (void)state;
    h_lab_must(&lab, "dhcp set dns none");
    char dnslog[600];
    snprintf(dnslog, sizeof dnslog, "%s/log/dns.log", lab.dir);
    int router_queries = count_ci(dnslog, "query[A] " H_LAB_HUB_HOST);
    struct h_charger c;
    start(&c);
    assert_true(h_charger_wait_status(&c, "\"source\":\"dhcp\"", 30000));
    char dns[256];
    assert_true(net_dns(&c, dns, sizeof dns));
    assert_string_equal(dns, "");
    assert_true(h_charger_wait_status(&c, "\"link\":\"online\"", ONLINE_WAIT_MS));
    /* the router's DNS (not offered by DHCP) was never asked */
    assert_int_equal(count_ci(dnslog, "query[A] " H_LAB_HUB_HOST), router_queries);
    h_charger_stop(&c);
}

/* 6. The OS clock reads 1970 (no RTC): the floor, then NTP, then the login. */
static void test_clock_1970(void **state)
{
    (void)state;
    glob_t g;
    if (glob("/usr/lib/*/faketime/libfaketime.so.1", 0, NULL, &g) != 0 || g.gl_pathc == 0)
        fail_msg("libfaketime is missing (Debian package faketime; scripts/install-deps.sh)");
    static char preload[700], asan[1200];
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s", g.gl_pathv[0]);
    globfree(&g);
    /* libfaketime is preloaded ahead of the ASan runtime: tell ASan that is fine */
    const char *old = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "ASAN_OPTIONS=%s%sverify_asan_link_order=0", old ? old : "",
             old && *old ? ":" : "");
    /* the wall clock only: timers and leases run on CLOCK_MONOTONIC, which a device without an
     * RTC still has (starting near 0 is not the point here) */
    const char *env[] = {preload,
                         "FAKETIME=@1970-01-01 00:00:00",
                         "FAKETIME_DONT_FAKE_MONOTONIC=1",
                         "FAKETIME_NO_CACHE=1",
                         asan,
                         NULL};
    struct h_charger c;
    start_in(&lab, &c, env);
    /* the floor: the clock was stepped up from 1970 to at least the build time, untrusted */
    assert_true(h_wait_file_contains(c.log, "below the floor: stepped up to it", 15000));
    char *log = h_read_file(c.log);
    const char *q = log ? strstr(log, " ms below the floor") : NULL;
    const char *p = q;
    while (p && p > log && p[-1] != ' ')
        p--;
    long long below_ms = p ? atoll(p) : 0;
    free(log);
    fprintf(stderr, "the OS clock was %lld days below the floor\n", below_ms / 86400000);
    assert_true(below_ms > 365ll * 86400000 * 50); /* it really read 1970 */
    assert_true(h_charger_wait_status(&c, "\"source\":\"dhcp\"", 30000));
    assert_true(h_charger_wait_status(&c, "\"trusted\":true", 30000));
    assert_true(h_charger_wait_status(&c, "\"link\":\"online\"", ONLINE_WAIT_MS));
    h_charger_stop(&c);
}

/* 7. The only NTP server is an hour off: one server cannot move the clock that far. */
static void test_one_ntp_server_hour_off(void **state)
{
    (void)state;
    struct h_lab_opts o = {.chargers = 1,
                           .addr = H_LAB_ADDR_NONE,
                           .hub = true,
                           .ntp_servers = 1,
                           .ntp_offset_s = {3600}};
    h_lab_up(&lab_ntp, &o);
    struct h_charger c;
    start_in(&lab_ntp, &c, NULL);
    assert_true(h_charger_wait_status(&c, "\"source\":\"dhcp\"", 30000));
    /* past the first burst (its verdict comes after 2 replies, 2 s apart) and into its back-off */
    uint64_t end = h_now_ms() + 15000;
    while (h_now_ms() < end) {
        assert_false(status_has(&c, "\"trusted\":true"));
        assert_false(status_has(&c, "\"link\":\"online\""));
        usleep(250000);
    }
    assert_true(h_charger_num(&c, "connects") == 0);
    assert_true(h_charger_num(&c, "failures") == 0);
    char reason[300], why[600];
    assert_true(status_str(&c, "last_reason", reason, sizeof reason));
    assert_true(status_str(&c, "time.state", why, sizeof why));
    fprintf(stderr, "one NTP server an hour off: last_reason '%s'; time.state '%s'\n", reason, why);
    assert_non_null(strstr(reason, "waiting for trusted time"));
    /* the server was asked and its answer refused as unconfirmed: the status says so */
    assert_true(h_file_count(c.log, "not trusted: unconfirmed") >= 1);
    assert_non_null(strstr(why, "unconfirmed"));
    h_charger_stop(&c);
    h_lab_down(&lab_ntp);
}

/* 8. The cable flaps 5 times in 10 s: the same address, the connection kept. */
static void test_link_flaps(void **state)
{
    (void)state;
    struct h_charger c;
    start(&c);
    char ip[16];
    expect_leased_online(&c, ip);
    double connects = h_charger_num(&c, "connects");
    double carrier_changes = net_num(&c, "carrier_changes");
    double address_changes = net_num(&c, "address_changes");
    char needle[64];
    snprintf(needle, sizeof needle, "as %s (", c.id);
    int hub_connects = h_file_count(lab.hub.log, needle);
    assert_int_equal(hub_connects, 1);

    h_lab_must(&lab, "link 0 flap 5 2000"); /* 1 s down, 1 s up, 5 times */
    assert_true(h_charger_wait_status(&c, "\"carrier\":true", 5000));
    assert_true(wait_net_num_ge(&c, "carrier_changes", carrier_changes + 2, 5000));
    assert_true(h_charger_wait_status(&c, "\"link\":\"online\"", ONLINE_WAIT_MS));
    assert_true(h_charger_wait_status(&c, "\"dhcp_state\":\"BOUND\"", 15000));
    char addr[64];
    assert_true(status_str(&c, "net.address", addr, sizeof addr));
    fprintf(stderr,
            "after 5 flaps: address %s, connects %g -> %g, carrier changes %g -> %g, address "
            "changes %g -> %g, hub logins %d -> %d\n",
            addr, connects, h_charger_num(&c, "connects"), carrier_changes,
            net_num(&c, "carrier_changes"), address_changes, net_num(&c, "address_changes"),
            hub_connects, h_file_count(lab.hub.log, needle));
    assert_string_equal(addr, ip);
    assert_true(net_num(&c, "address_changes") == address_changes);
    /* The address survived every flap (INIT-REBOOT), so the connection did too: not one
     * reconnect (R13). */
    assert_true(h_charger_num(&c, "connects") == connects);
    assert_true(h_file_count(lab.hub.log, needle) == hub_connects);
    h_charger_stop(&c);
}

/* 9. The site firewall blocks 8883: offline with the reason; unblocked: online. */
static void test_8883_blocked(void **state)
{
    (void)state;
    h_lab_firewall(&lab, H_LAB_BLOCK_8883, true);
    struct h_charger c;
    start(&c);
    assert_true(h_charger_wait_status(&c, "\"source\":\"dhcp\"", 30000));
    assert_true(h_charger_wait_status(&c, "\"trusted\":true", 30000));
    uint64_t end = h_now_ms() + 30000;
    while (h_charger_num(&c, "failures") < 1 && h_now_ms() < end)
        usleep(200000);
    assert_true(h_charger_num(&c, "failures") >= 1);
    assert_true(h_charger_num(&c, "connects") == 0);
    assert_false(status_has(&c, "\"link\":\"online\""));
    char reason[300];
    assert_true(status_str(&c, "last_reason", reason, sizeof reason));
    fprintf(stderr, "8883 blocked: last_reason '%s'\n", reason);
    assert_non_null(strstr(reason, "hub"));
    assert_null(strstr(reason, "waiting for"));
    h_lab_firewall(&lab, H_LAB_BLOCK_8883, false);
    assert_true(h_charger_wait_status(&c, "\"link\":\"online\"", 30000));
    h_charger_stop(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_boot_dhcp_dns_ntp_hub, mark, restore),
        cmocka_unit_test_setup_teardown(test_no_dhcp_link_local_then_lease, mark, restore),
        cmocka_unit_test_setup_teardown(test_pool_exhausted, mark, restore),
        cmocka_unit_test_setup_teardown(test_lease_expires_server_gone, mark, restore),
        cmocka_unit_test_setup_teardown(test_dhcp_no_dns_fallbacks, mark, restore),
        cmocka_unit_test_setup_teardown(test_clock_1970, mark, restore),
        cmocka_unit_test_setup_teardown(test_one_ntp_server_hour_off, mark, restore),
        cmocka_unit_test_setup_teardown(test_link_flaps, mark, restore),
        cmocka_unit_test_setup_teardown(test_8883_blocked, mark, restore),
    };
    /* LADE_TEST_FILTER=test_clock_1970 (a cmocka pattern) runs only some scenarios */
    if (getenv("LADE_TEST_FILTER"))
        cmocka_set_test_filter(getenv("LADE_TEST_FILTER"));
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
