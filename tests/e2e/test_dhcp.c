/* E2E: the DHCP client, ARP probing and IPv4 link-local on Linux (src/port/linux/dhcp_linux.c,
 * netlink.c) against a real dnsmasq. SPEC R4, R11, R19.
 *
 * The test creates two network namespaces joined by a veth pair (server side 10.77.0.1/24, no
 * route anywhere else), runs dnsmasq in the server namespace (`ip netns exec`) and moves itself
 * into the client namespace (setns) where the client runs on a lade_loop in this process. It
 * needs root; when it cannot create the namespaces it fails (it never skips). Namespaces and
 * dnsmasq are removed at exit, also after a failure. Every wait polls with a deadline.
 *
 *   lease:      lease obtained, address and default route in the kernel, DNS/NTP reported,
 *               renewed at T1 (dnsmasq sends T1 10 s), address removed when the client stops
 *   no server:  link-local address after a few unanswered DISCOVERs, DHCP keeps retrying; the
 *               server comes → leased, the link-local address removed
 *   pool full:  the only address of the range is leased to another client → link-local, no OFFER
 *   flap/reboot: carrier lost and back → INIT-REBOOT keeps the address; a restarted client with
 *               the stored address gets it back by INIT-REBOOT without a DISCOVER
 *   conflict:   the offered address answers ARP (a host that ignores ping, so dnsmasq's own check
 *               misses it) → DECLINE, and the next address is leased
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "harness.h"
#include "lade/clock.h"
#include "lade/log.h"
#include "lade/loop.h"
#include "lade/netif.h"

#define SERVER_IP "10.77.0.1"

static char g_ns_s[32], g_ns_c[32], g_vs[16], g_vc[16];
static char g_dir[512];
static int g_root_ns = -1;
static bool g_in_client;
static pid_t g_dnsmasq;
static struct lade_loop *g_loop;
static struct lade_netif *g_netif;
static int g_changes;

/* ------------------------------------------------------------ namespaces */

static void to_root_ns(void)
{
    if (g_in_client && g_root_ns >= 0 && setns(g_root_ns, CLONE_NEWNET) == 0)
        g_in_client = false;
}

static void cleanup(void)
{
    if (g_netif) {
        lade_netif_free(g_netif);
        g_netif = NULL;
    }
    if (g_dnsmasq > 0) {
        h_stop(g_dnsmasq, SIGTERM, 3000);
        g_dnsmasq = 0;
    }
    to_root_ns();
    if (g_ns_s[0]) {
        h_sh("ip netns del %s 2>/dev/null", g_ns_s);
        h_sh("ip netns del %s 2>/dev/null", g_ns_c);
    }
}

static struct sigaction g_old_int, g_old_term, g_old_abrt;

/* The harness kills its children and re-raises on these signals; the namespaces go first. */
static void on_signal(int sig)
{
    cleanup();
    struct sigaction *old = sig == SIGINT ? &g_old_int : sig == SIGTERM ? &g_old_term : &g_old_abrt;
    sigaction(sig, old, NULL);
    raise(sig);
}

/* Namespaces left by a run that was killed (SIGKILL, e.g. a CTest timeout): their pid is gone. */
static void remove_stale_namespaces(void)
{
    FILE *p = popen("ip netns list 2>/dev/null", "r");
    char line[256];
    while (p && fgets(line, sizeof line, p)) {
        int pid;
        char side;
        if (sscanf(line, "lade-dhcp%d-%c", &pid, &side) != 2 || pid <= 0 || pid == getpid())
            continue;
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/%d", pid);
        if (access(proc, F_OK) != 0)
            h_sh("ip netns del lade-dhcp%d-%c 2>/dev/null", pid, side);
    }
    if (p)
        pclose(p);
}

static int group_setup(void **state)
{
    (void)state;
    if (getenv("LADE_LOG"))
        lade_log_set_level((enum lade_log_level)lade_log_level_parse(getenv("LADE_LOG")));
    else
        lade_log_set_level(LADE_LOG_INFO);
    int id = (int)getpid();
    snprintf(g_ns_s, sizeof g_ns_s, "lade-dhcp%d-s", id);
    snprintf(g_ns_c, sizeof g_ns_c, "lade-dhcp%d-c", id);
    snprintf(g_vs, sizeof g_vs, "vds%d", id);
    snprintf(g_vc, sizeof g_vc, "vdc%d", id);
    snprintf(g_dir, sizeof g_dir, "%s", h_tmpdir("dhcp")); /* installs the harness's handlers */
    atexit(cleanup);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, &g_old_int);
    sigaction(SIGTERM, &sa, &g_old_term);
    sigaction(SIGABRT, &sa, &g_old_abrt);
    remove_stale_namespaces();
    g_root_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (g_root_ns < 0) {
        fprintf(stderr, "test_dhcp: cannot open /proc/self/ns/net\n");
        return -1;
    }
    /* The server namespace has the only address on the link; neither has a default route. */
    if (h_sh("ip netns add %s && ip netns add %s", g_ns_s, g_ns_c) != 0 ||
        h_sh("ip -n %s link add %s type veth peer name %s netns %s", g_ns_s, g_vs, g_vc, g_ns_c) !=
            0 ||
        h_sh("ip -n %s link set lo up && ip -n %s addr add " SERVER_IP "/24 dev %s && "
             "ip -n %s link set %s up && ip -n %s link set lo up",
             g_ns_s, g_ns_s, g_vs, g_ns_s, g_vs, g_ns_c) != 0) {
        fprintf(stderr, "test_dhcp: cannot create network namespaces (needs root): FAIL\n");
        return -1;
    }
    char path[128];
    snprintf(path, sizeof path, "/run/netns/%s", g_ns_c);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
        fprintf(stderr, "test_dhcp: cannot enter %s: FAIL\n", path);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    g_in_client = true;
    if (lade_loop_new(&g_loop) != LADE_OK)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    cleanup();
    lade_loop_free(g_loop);
    g_loop = NULL;
    return 0;
}

static int test_teardown(void **state)
{
    (void)state;
    if (g_netif) {
        lade_netif_free(g_netif);
        g_netif = NULL;
    }
    if (g_dnsmasq > 0) {
        h_stop(g_dnsmasq, SIGTERM, 3000);
        g_dnsmasq = 0;
    }
    /* the client side starts clean: the kernel's addresses are the test's subject */
    h_sh("ip addr flush dev %s 2>/dev/null", g_vc);
    return 0;
}

/* ------------------------------------------------------------ dnsmasq */

/* Starts dnsmasq on the server side with a range and lease options; waits for its DHCP line. */
static void dnsmasq_start(const char *tag, const char *range, const char *leases_content,
                          const char *extra)
{
    char leases[600], log[600], range_arg[128], iface[64];
    snprintf(leases, sizeof leases, "%s/%s.leases", g_dir, tag);
    snprintf(log, sizeof log, "%s/%s.dnsmasq.log", g_dir, tag);
    h_write_file(leases, leases_content ? leases_content : "");
    snprintf(range_arg, sizeof range_arg, "--dhcp-range=%s,255.255.255.0,2m", range);
    snprintf(iface, sizeof iface, "--interface=%s", g_vs);
    char leasefile_arg[640];
    snprintf(leasefile_arg, sizeof leasefile_arg, "--dhcp-leasefile=%s", leases);
    const char *argv[] = {"ip",
                          "netns",
                          "exec",
                          g_ns_s,
                          "dnsmasq",
                          "--keep-in-foreground",
                          "--conf-file=/dev/null",
                          "--log-facility=-",
                          "--log-dhcp",
                          "--port=0",
                          "--user=root",
                          "--pid-file=",
                          "--bind-interfaces",
                          iface,
                          range_arg,
                          leasefile_arg,
                          "--dhcp-authoritative",
                          "--dhcp-option=option:router," SERVER_IP,
                          "--dhcp-option=option:dns-server,10.77.0.53",
                          "--dhcp-option=option:ntp-server,10.77.0.123",
                          "--dhcp-option=option:T1,10",
                          "--dhcp-option=option:T2,60",
                          extra,
                          NULL};
    g_dnsmasq = h_spawn(argv, NULL, log);
    assert_true(g_dnsmasq > 0);
    assert_true(h_wait_file_contains(log, "DHCP, IP range", 10000));
}

/* ------------------------------------------------------------ client */

static void on_change(void *ud, const struct lade_netif_status *st)
{
    (void)ud;
    (void)st;
    g_changes++;
}

static void client_start_with(uint32_t reboot_addr)
{
    struct lade_netif_cfg cfg = {
        .ifname = g_vc,
        .hostname = "charger-e2e",
        .reboot_addr = reboot_addr,
        .on_change = on_change,
    };
    assert_int_equal(lade_netif_new(g_loop, &cfg, &g_netif), LADE_OK);
}

static void client_start(void)
{
    client_start_with(0);
}

static struct lade_netif_status status(void)
{
    struct lade_netif_status st;
    lade_netif_status(g_netif, &st);
    return st;
}

typedef bool (*pred_fn)(const struct lade_netif_status *st, void *arg);

/* Runs the loop until pred holds or timeout_ms passes. */
static bool run_until(pred_fn pred, void *arg, uint32_t timeout_ms)
{
    uint64_t end = h_now_ms() + timeout_ms;
    for (;;) {
        struct lade_netif_status st = status();
        if (pred(&st, arg))
            return true;
        if (h_now_ms() >= end)
            return false;
        assert_int_equal(lade_loop_run_once(g_loop, 200), LADE_OK);
    }
}

static bool has_source(const struct lade_netif_status *st, void *arg)
{
    return st->source == *(enum lade_addr_source *)arg;
}

static bool acks_at_least(const struct lade_netif_status *st, void *arg)
{
    return st->dhcp.acks >= *(uint32_t *)arg && st->dhcp.state == LADE_DHCP_BOUND;
}

static bool has_state(const struct lade_netif_status *st, void *arg)
{
    return st->dhcp.state == *(enum lade_dhcp_state *)arg;
}

static bool carrier_is(const struct lade_netif_status *st, void *arg)
{
    return st->carrier == *(bool *)arg;
}

static bool discovers_at_least(const struct lade_netif_status *st, void *arg)
{
    return st->dhcp.discovers >= *(uint32_t *)arg;
}

/* Output of a command run in the client namespace (this process's). */
static char *sh_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *sh_out(const char *fmt, ...)
{
    static char out[8192];
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    out[0] = 0;
    FILE *p = popen(cmd, "r");
    if (!p)
        return out;
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    pclose(p);
    return out;
}

static void wait_source(enum lade_addr_source src, uint32_t timeout_ms)
{
    if (!run_until(has_source, &src, timeout_ms)) {
        struct lade_netif_status st = status();
        fail_msg("no %s address within %u ms (dhcp %s, ll %s, discovers %u, offers %u)",
                 lade_addr_source_name(src), timeout_ms, lade_dhcp_state_name(st.dhcp.state),
                 lade_ipv4ll_state_name(st.ll.state), st.dhcp.discovers, st.dhcp.offers);
    }
}

/* ------------------------------------------------------------ tests */

static void test_lease_and_renew(void **state)
{
    (void)state;
    dnsmasq_start("lease", "10.77.0.10,10.77.0.20", NULL, NULL);
    client_start();
    wait_source(LADE_ADDR_DHCP, 30000);

    struct lade_netif_status st = status();
    assert_int_equal(st.dhcp.state, LADE_DHCP_BOUND);
    assert_true(st.addr >= LADE_IPV4(10, 77, 0, 10) && st.addr <= LADE_IPV4(10, 77, 0, 20));
    assert_int_equal(st.prefix_len, 24);
    assert_int_equal(st.router, LADE_IPV4(10, 77, 0, 1));
    assert_int_equal(st.n_dns, 1);
    assert_int_equal(st.dns[0], LADE_IPV4(10, 77, 0, 53));
    assert_int_equal(st.n_ntp, 1);
    assert_int_equal(st.ntp[0], LADE_IPV4(10, 77, 0, 123));
    assert_int_equal(st.dhcp.server_id, LADE_IPV4(10, 77, 0, 1));
    assert_int_equal(st.dhcp.lease_s, 120);
    assert_int_equal(st.ll_addr, 0);
    assert_true(g_changes > 0);
    char want[64];
    snprintf(want, sizeof want, "inet %u.%u.%u.%u/24", (unsigned)(st.addr >> 24),
             (unsigned)(st.addr >> 16) & 0xff, (unsigned)(st.addr >> 8) & 0xff,
             (unsigned)st.addr & 0xff);
    char *addrs = sh_out("ip -4 -o addr show dev %s", g_vc);
    if (!strstr(addrs, want))
        fail_msg("ip addr shows no '%s':\n%s", want, addrs);
    assert_null(strstr(addrs, "169.254."));
    char *routes = sh_out("ip -4 route show default");
    if (!strstr(routes, "default via " SERVER_IP))
        fail_msg("no default route via " SERVER_IP ":\n%s", routes);
    /* reachable: the server answers a ping from the leased address */
    assert_int_equal(h_sh("ping -c 1 -W 2 " SERVER_IP " >/dev/null 2>&1"), 0);

    /* renewal at T1 = 10 s (unicast to the server from the leased address) */
    uint32_t acks = st.dhcp.acks + 1;
    assert_true(run_until(acks_at_least, &acks, 25000));
    st = status();
    assert_int_equal(st.source, LADE_ADDR_DHCP);
    assert_true(st.dhcp.lease_left_ms > 100000); /* restarted at the renewal */
    addrs = sh_out("ip -4 -o addr show dev %s", g_vc);
    assert_non_null(strstr(addrs, want));

    /* stopping removes the address and the route */
    lade_netif_free(g_netif);
    g_netif = NULL;
    addrs = sh_out("ip -4 -o addr show dev %s", g_vc);
    assert_null(strstr(addrs, "10.77.0."));
    routes = sh_out("ip -4 route show default");
    assert_null(strstr(routes, "default via"));
}

static void test_link_local_then_server(void **state)
{
    (void)state;
    client_start();
    /* no server: link-local after the 3rd DISCOVER (~13 s) and its ARP claim (~5 s) */
    wait_source(LADE_ADDR_LINK_LOCAL, 40000);
    struct lade_netif_status st = status();
    assert_true(lade_ipv4ll_in_range(st.addr));
    assert_int_equal(st.prefix_len, 16);
    assert_int_equal(st.router, 0);
    assert_true(st.dhcp.discovers >= 3);
    char *addrs = sh_out("ip -4 -o addr show dev %s", g_vc);
    if (!strstr(addrs, "inet 169.254."))
        fail_msg("ip addr shows no link-local address:\n%s", addrs);
    /* DHCP keeps trying */
    uint32_t more = st.dhcp.discovers + 1;
    assert_true(run_until(discovers_at_least, &more, 40000));
    assert_int_equal(status().source, LADE_ADDR_LINK_LOCAL);

    /* the server appears: the next DISCOVER gets a lease and the link-local address goes */
    dnsmasq_start("late", "10.77.0.30,10.77.0.40", NULL, NULL);
    wait_source(LADE_ADDR_DHCP, 90000);
    st = status();
    assert_true(st.addr >= LADE_IPV4(10, 77, 0, 30) && st.addr <= LADE_IPV4(10, 77, 0, 40));
    assert_int_equal(st.ll_addr, 0);
    assert_int_equal(st.ll.state, LADE_IPV4LL_STOPPED);
    addrs = sh_out("ip -4 -o addr show dev %s", g_vc);
    assert_null(strstr(addrs, "169.254."));
    assert_non_null(strstr(addrs, "inet 10.77.0."));
}

static void test_pool_exhausted(void **state)
{
    (void)state;
    /* the range has one address, leased (until 2100) to another client */
    dnsmasq_start("full", "10.77.0.50,10.77.0.50",
                  "4102444800 02:00:00:00:99:99 10.77.0.50 other 01:02:00:00:00:99:99\n", NULL);
    client_start();
    wait_source(LADE_ADDR_LINK_LOCAL, 40000);
    struct lade_netif_status st = status();
    assert_int_equal(st.dhcp.offers, 0);
    assert_int_equal(st.dhcp.state, LADE_DHCP_SELECTING);
    assert_true(st.dhcp.discovers >= 3);
    char log[600];
    snprintf(log, sizeof log, "%s/full.dnsmasq.log", g_dir);
    assert_true(h_wait_file_contains(log, "no address available", 1000));
    char *addrs = sh_out("ip -4 -o addr show dev %s", g_vc);
    assert_non_null(strstr(addrs, "inet 169.254."));
    assert_null(strstr(addrs, "10.77.0.50"));
}

static void test_link_flap_and_reboot(void **state)
{
    (void)state;
    dnsmasq_start("flap", "10.77.0.60,10.77.0.70", NULL, NULL);
    client_start();
    wait_source(LADE_ADDR_DHCP, 30000);
    struct lade_netif_status st = status();
    uint32_t addr = st.addr, acks = st.dhcp.acks;

    /* carrier lost (the server side goes down): the address stays */
    assert_int_equal(h_sh("ip -n %s link set %s down", g_ns_s, g_vs), 0);
    bool down = false, up = true;
    assert_true(run_until(carrier_is, &down, 10000));
    st = status();
    assert_int_equal(st.dhcp.state, LADE_DHCP_LINK_DOWN);
    assert_int_equal(st.source, LADE_ADDR_DHCP);
    assert_int_equal(st.addr, addr);
    /* back: INIT-REBOOT, the server confirms, same address, no DISCOVER */
    uint32_t discovers = st.dhcp.discovers;
    assert_int_equal(h_sh("ip -n %s link set %s up", g_ns_s, g_vs), 0);
    assert_true(run_until(carrier_is, &up, 10000));
    uint32_t want = acks + 1;
    assert_true(run_until(acks_at_least, &want, 20000));
    st = status();
    assert_int_equal(st.addr, addr);
    assert_int_equal(st.dhcp.discovers, discovers);

    /* a restart with the stored address: INIT-REBOOT straight away (R4: a fresh attempt) */
    lade_netif_free(g_netif);
    g_netif = NULL;
    assert_null(strstr(sh_out("ip -4 -o addr show dev %s", g_vc), "10.77.0."));
    client_start_with(addr);
    enum lade_dhcp_state bound = LADE_DHCP_BOUND;
    assert_true(run_until(has_state, &bound, 20000));
    st = status();
    assert_int_equal(st.addr, addr);
    assert_int_equal(st.dhcp.discovers, 0);
    assert_true(st.dhcp.requests >= 1);
}

static void test_conflict_decline(void **state)
{
    (void)state;
    /* Something on the link answers ARP for 10.77.0.81 but not ping, so dnsmasq's own ping
     * check misses it: the server's kernel itself, holding it on lo (arp_ignore=0 answers for
     * any local address) with ICMP echo ignored. dnsmasq offers .81 first (reserved for our
     * MAC); once declined it falls back to its range, .80. */
    assert_int_equal(h_sh("ip link set %s address 02:00:5e:00:00:01", g_vc), 0);
    assert_int_equal(h_sh("ip netns exec %s sysctl -qw net.ipv4.icmp_echo_ignore_all=1 && "
                          "ip -n %s addr add 10.77.0.81/32 dev lo",
                          g_ns_s, g_ns_s),
                     0);
    dnsmasq_start("conflict", "10.77.0.80,10.77.0.80", NULL,
                  "--dhcp-host=02:00:5e:00:00:01,10.77.0.81");
    client_start();
    wait_source(LADE_ADDR_DHCP, 60000);
    struct lade_netif_status st = status();
    assert_int_equal(st.addr, LADE_IPV4(10, 77, 0, 80));
    assert_int_equal(st.dhcp.declines, 1);
    assert_string_equal(st.dhcp.last_event, "address conflict");
    char log[600];
    snprintf(log, sizeof log, "%s/conflict.dnsmasq.log", g_dir);
    assert_true(h_wait_file_contains(log, "DHCPDECLINE(", 1000));
    assert_int_equal(h_sh("ip -n %s addr del 10.77.0.81/32 dev lo && "
                          "ip netns exec %s sysctl -qw net.ipv4.icmp_echo_ignore_all=0",
                          g_ns_s, g_ns_s),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_lease_and_renew, test_teardown),
        cmocka_unit_test_teardown(test_link_local_then_server, test_teardown),
        cmocka_unit_test_teardown(test_pool_exhausted, test_teardown),
        cmocka_unit_test_teardown(test_link_flap_and_reboot, test_teardown),
        cmocka_unit_test_teardown(test_conflict_decline, test_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
