/* e2e: the charger finds its hub through DNS (SPEC R5) — a real lade-charger, a real hub, real
 * dnsmasq servers, all on 127.0.0.0/8.
 *
 * The charger's factory hosts file does not name the hub, so the agent asks its DNS stub
 * (include/lade/dnsres.h): the site's servers (`dns_servers`, what DHCP gives on a real site)
 * first, then the factory fallbacks (`fallback_dns`, 8.8.8.8 and 1.1.1.1 in production):
 *   - the site's server answers → online;
 *   - the site's server is silent → the fallback answers through the hedge → online;
 *   - the site's server says the name does not exist → not online, the status says why, and
 *     it keeps retrying.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "harness_charger.h"

#define DNS_OK_IP    "127.78.0.1" /* dnsmasq: hub.lade.test → 127.0.0.1 */
#define DNS_NX_IP    "127.78.0.2" /* dnsmasq: lade.test is local, hub.lade.test unknown */
#define DNS_QUIET_IP "127.78.0.3" /* a socket that never answers */

static struct h_hub hub;
static int port_ok, port_nx, quiet_fd = -1, quiet_port;

/* A UDP+TCP port free on addr (dnsmasq serves both). */
static int free_port_on(const char *addr)
{
    for (int tries = 0; tries < 50; tries++) {
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in sin = {.sin_family = AF_INET};
        inet_pton(AF_INET, addr, &sin.sin_addr);
        socklen_t len = sizeof sin;
        if (u < 0 || bind(u, (struct sockaddr *)&sin, sizeof sin) != 0 ||
            getsockname(u, (struct sockaddr *)&sin, &len) != 0) {
            if (u >= 0)
                close(u);
            continue;
        }
        int t = socket(AF_INET, SOCK_STREAM, 0);
        int ok = t >= 0 && bind(t, (struct sockaddr *)&sin, sizeof sin) == 0;
        if (t >= 0)
            close(t);
        close(u);
        if (ok)
            return ntohs(sin.sin_port);
    }
    fail_msg("no free port on %s", addr);
    return 0;
}

static void start_dnsmasq(const char *addr, int port, const char *record, const char *log)
{
    char listen[64], portarg[32];
    snprintf(listen, sizeof listen, "--listen-address=%s", addr);
    snprintf(portarg, sizeof portarg, "--port=%d", port);
    const char *bin = access("/usr/sbin/dnsmasq", X_OK) == 0 ? "/usr/sbin/dnsmasq" : "dnsmasq";
    const char *argv[] = {bin,
                          "--keep-in-foreground",
                          "--conf-file=/dev/null",
                          "--no-resolv",
                          "--no-hosts",
                          "--pid-file=",
                          "--log-facility=-",
                          "--log-queries",
                          "--bind-interfaces",
                          listen,
                          portarg,
                          "--local=/lade.test/",
                          record,
                          NULL};
    h_spawn(argv, NULL, log);
}

static int setup(void **state)
{
    (void)state;
    h_hub_prepare(&hub, "hub.lade.test");
    char hosts[700];
    snprintf(hosts, sizeof hosts, "%s/hosts", hub.dir);
    /* The factory hosts file does not name the hub: DNS must. */
    h_write_file(hosts, "# no hub here\n127.0.0.1 localhost\n");
    h_hub_start(&hub, NULL);
    const char *dir = h_tmpdir("chgdns");
    char log[700];
    port_ok = free_port_on(DNS_OK_IP);
    snprintf(log, sizeof log, "%s/dns-ok.log", dir);
    start_dnsmasq(DNS_OK_IP, port_ok, "--address=/hub.lade.test/127.0.0.1", log);
    port_nx = free_port_on(DNS_NX_IP);
    snprintf(log, sizeof log, "%s/dns-nx.log", dir);
    start_dnsmasq(DNS_NX_IP, port_nx, "--address=/other.lade.test/127.0.0.9", log);
    /* The quiet server: bound, never read. */
    quiet_fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, DNS_QUIET_IP, &sin.sin_addr);
    socklen_t len = sizeof sin;
    assert_int_equal(bind(quiet_fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(getsockname(quiet_fd, (struct sockaddr *)&sin, &len), 0);
    quiet_port = ntohs(sin.sin_port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (quiet_fd >= 0)
        close(quiet_fd);
    h_hub_stop(&hub);
    return 0;
}

static void provision(struct h_charger *c, const char *id, const char *site_dns,
                      const char *fallback)
{
    char user[512], fargs[256];
    snprintf(user, sizeof user,
             "dns_servers = %s\n"
             "backoff_min_ms = 200\n"
             "backoff_max_ms = 1000\n"
             "connect_timeout_ms = 3000\n"
             "log_level = debug\n",
             site_dns);
    snprintf(fargs, sizeof fargs, "--fallback-dns %s", fallback);
    h_charger_provision(c, &hub, id, fargs, user);
}

static void test_site_server_answers(void **state)
{
    (void)state;
    struct h_charger c;
    char site[64];
    snprintf(site, sizeof site, "%s:%d", DNS_OK_IP, port_ok);
    provision(&c, "LDEDNS0001", site, "127.0.0.1:1");
    h_charger_start(&c);
    assert_true(h_charger_wait_status(&c, "\"link\":\"online\"", 20000));
    h_charger_stop(&c);
}

static void test_silent_site_server_fallback_answers(void **state)
{
    (void)state;
    struct h_charger c;
    char site[64], fb[64];
    snprintf(site, sizeof site, "%s:%d", DNS_QUIET_IP, quiet_port);
    snprintf(fb, sizeof fb, "%s:%d", DNS_OK_IP, port_ok);
    provision(&c, "LDEDNS0002", site, fb);
    uint64_t t0 = h_now_ms();
    h_charger_start(&c);
    assert_true(h_charger_wait_status(&c, "\"link\":\"online\"", 20000));
    fprintf(stderr, "online through the fallback after %llu ms\n",
            (unsigned long long)(h_now_ms() - t0));
    h_charger_stop(&c);
    /* The quiet server was asked (the site's servers come first). */
    char buf[512];
    ssize_t n = recv(quiet_fd, buf, sizeof buf, MSG_DONTWAIT);
    assert_true(n > 12);
}

static void test_name_does_not_exist(void **state)
{
    (void)state;
    struct h_charger c;
    char site[64];
    snprintf(site, sizeof site, "%s:%d", DNS_NX_IP, port_nx);
    provision(&c, "LDEDNS0003", site, "127.0.0.1:1");
    h_charger_start(&c);
    assert_true(h_charger_wait_status(&c, "cannot resolve the hub's name: no such name", 20000));
    /* It keeps trying (a second failure is counted) and never came online. */
    uint64_t end = h_now_ms() + 20000;
    while (h_charger_num(&c, "failures") < 2 && h_now_ms() < end)
        usleep(100000);
    assert_true(h_charger_num(&c, "failures") >= 2);
    assert_true(h_charger_num(&c, "connects") == 0);
    h_charger_expect_running(&c);
    h_charger_stop(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_site_server_answers),
        cmocka_unit_test(test_silent_site_server_fallback_answers),
        cmocka_unit_test(test_name_does_not_exist),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
