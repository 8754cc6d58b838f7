/* e2e: the site-network lab itself (tests/lab/lab.sh, harness_lab.h), checked with standard
 * tools only — busybox udhcpc, dig, openssl s_client, ping, and a small SNTP query here — so
 * the lab is known to work before lade's own DHCP, DNS and SNTP clients are tested in it.
 *
 * Two chargers configured by udhcpc, the hub, the firmware hosts, two NTP servers (ntp2 an
 * hour off). Checks: the leases; DNS through the router and from the public resolvers, and
 * every router DNS mode; NTP; TCP/TLS to the hub through NAT and the firewall knobs; HTTPS from
 * the firmware hosts; the TLS-inspecting firewall; link, loss and DHCP knobs; no
 * route off the machine; the teardown and the removal of a lab whose process died.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "harness_charger.h"
#include "harness_lab.h"

static struct h_lab g_lab;
static char g_out[16384];

static int setup(void **state)
{
    (void)state;
    struct h_lab_opts o = {
        .chargers = 2,
        .addr = H_LAB_ADDR_UDHCPC,
        .hub = true,
        .fw = true,
        .ntp_servers = 2,
        .ntp_offset_s = {0, 3600},
    };
    uint64_t t0 = h_now_ms();
    h_lab_up(&g_lab, &o);
    fprintf(stderr, "lab %s up in %llu ms\n", g_lab.name, (unsigned long long)(h_now_ms() - t0));
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    h_lab_down(&g_lab);
    return 0;
}

/* Runs a shell command in node; returns its exit code, output in g_out. */
static int run(const char *node, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(const char *node, const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = h_lab_run(&g_lab, node, g_out, sizeof g_out, "%s", cmd);
    fprintf(stderr, "[%s] %s -> %d\n%s", node, cmd, rc, g_out);
    return rc;
}

/* TCP connect from node to addr:port: 0, or the errno (ETIMEDOUT after timeout_ms). */
static int tcp_try(const char *node, const char *addr, int port, uint32_t timeout_ms)
{
    int fd = h_lab_socket(&g_lab, node, SOCK_STREAM | SOCK_NONBLOCK);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    assert_int_equal(inet_pton(AF_INET, addr, &sa.sin_addr), 1);
    int err = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        err = errno;
        if (err == EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            if (poll(&pfd, 1, (int)timeout_ms) == 1) {
                socklen_t len = sizeof err;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            } else {
                err = ETIMEDOUT;
            }
        }
    }
    close(fd);
    return err;
}

/* An SNTP query (RFC 4330) from node to addr:123. True with the server's offset from this
 * machine's clock and its stratum when a valid answer came within timeout_ms. */
static bool sntp(const char *node, const char *addr, uint32_t timeout_ms, double *offset_s,
                 int *stratum)
{
    const double unix_to_ntp = 2208988800.0;
    int fd = h_lab_socket(&g_lab, node, SOCK_DGRAM);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(123)};
    assert_int_equal(inet_pton(AF_INET, addr, &sa.sin_addr), 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    uint8_t req[48] = {0x23}, resp[68];
    struct timespec t1, t4;
    clock_gettime(CLOCK_REALTIME, &t1);
    uint32_t sec = (uint32_t)((uint64_t)t1.tv_sec + 2208988800ULL), nonce = (uint32_t)rand();
    uint32_t be[2] = {htonl(sec), htonl(nonce)}; /* fraction: a nonce to match the answer */
    memcpy(req + 40, be, 8);
    assert_int_equal(send(fd, req, sizeof req, 0), (ssize_t)sizeof req);
    bool ok = false;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, (int)timeout_ms) == 1) {
        ssize_t n = recv(fd, resp, sizeof resp, 0);
        clock_gettime(CLOCK_REALTIME, &t4);
        if (n >= 48 && (resp[0] & 7) == 4 && memcmp(resp + 24, req + 40, 8) == 0 &&
            (resp[0] >> 6) != 3) {
            uint32_t w[4];
            memcpy(w, resp + 32, 16);
            double t2 = ntohl(w[0]) - unix_to_ntp + ntohl(w[1]) / 4294967296.0;
            double t3 = ntohl(w[2]) - unix_to_ntp + ntohl(w[3]) / 4294967296.0;
            double a = (double)t1.tv_sec + t1.tv_nsec / 1e9,
                   d = (double)t4.tv_sec + t4.tv_nsec / 1e9;
            *offset_s = ((t2 - a) + (t3 - d)) / 2;
            *stratum = resp[1];
            ok = true;
        }
    }
    close(fd);
    return ok;
}

/* Polls until charger node can ping the router (true) or timeout_ms passes. */
static bool ping_router(const char *node, uint32_t timeout_ms)
{
    uint64_t end = h_now_ms() + timeout_ms;
    do {
        if (h_lab_run(&g_lab, node, g_out, sizeof g_out, "ping -c1 -W1 %s", H_LAB_LAN_ROUTER) == 0)
            return true;
    } while (h_now_ms() < end);
    return false;
}

static void test_dhcp_leases(void **state)
{
    (void)state;
    char ip[2][16], have[16];
    for (int i = 0; i < 2; i++) {
        assert_true(h_lab_lease(&g_lab, i, ip[i]));
        assert_true(h_lab_charger_addr(&g_lab, i, have));
        assert_string_equal(have, ip[i]); /* udhcpc configured what dnsmasq leased */
        assert_int_equal(strncmp(ip[i], "192.168.77.", 11), 0);
        int last = atoi(ip[i] + 11);
        assert_true(last >= 100 && last < 150); /* the default pool of 50 */
        char log[700];
        snprintf(log, sizeof log, "%s/log/udhcpc-c%d.log", g_lab.dir, i);
        assert_true(h_file_count(log, "router=192.168.77.1 dns=192.168.77.1 ntp= ") == 1);
    }
    assert_string_not_equal(ip[0], ip[1]);
    assert_int_equal(run("charger0", "ip -4 route show default"), 0);
    assert_non_null(strstr(g_out, "default via 192.168.77.1 dev eth0"));
}

static void test_dns(void **state)
{
    (void)state;
    /* through the router (the server DHCP gave), as the charger would ask */
    assert_int_equal(
        run("charger0", "dig +short +time=2 +tries=1 @%s %s", H_LAB_LAN_ROUTER, H_LAB_HUB_HOST), 0);
    assert_string_equal(g_out, H_LAB_HUB_ADDR "\n");
    assert_int_equal(run("charger1", "dig +short +time=2 +tries=1 %s", H_LAB_NTP_HOST), 0);
    assert_non_null(strstr(g_out, H_LAB_NTP1_ADDR "\n"));
    assert_non_null(strstr(g_out, H_LAB_NTP2_ADDR "\n"));
    assert_null(strstr(g_out, H_LAB_NTP3_ADDR)); /* only the servers that run */
    assert_int_equal(run("charger0", "dig +time=2 +tries=1 nope.lade.test"), 0);
    assert_non_null(strstr(g_out, "status: NXDOMAIN"));
    /* the public resolvers directly */
    assert_int_equal(
        run("charger0", "dig +short +time=2 +tries=1 @%s fw3.lade.test", H_LAB_RESOLVER2_ADDR), 0);
    assert_string_equal(g_out, H_LAB_FW3_ADDR "\n");

    /* the router's DNS modes */
    h_lab_dns(&g_lab, H_LAB_DNS_REFUSE, 0);
    run("charger0", "dig +time=1 +tries=1 %s", H_LAB_HUB_HOST);
    assert_non_null(strstr(g_out, "status: REFUSED"));
    h_lab_dns(&g_lab, H_LAB_DNS_NXDOMAIN, 0);
    run("charger0", "dig +time=1 +tries=1 %s", H_LAB_HUB_HOST);
    assert_non_null(strstr(g_out, "status: NXDOMAIN"));
    h_lab_dns(&g_lab, H_LAB_DNS_OFF, 0);
    assert_int_not_equal(run("charger0", "dig +time=1 +tries=1 %s", H_LAB_HUB_HOST), 0);
    assert_non_null(strstr(g_out, "connection refused"));
    h_lab_dns(&g_lab, H_LAB_DNS_SILENT, 0);
    assert_int_not_equal(run("charger0", "dig +time=1 +tries=1 %s", H_LAB_HUB_HOST), 0);
    assert_non_null(strstr(g_out, "timed out"));
    h_lab_dns(&g_lab, H_LAB_DNS_SLOW, 600);
    uint64_t t0 = h_now_ms();
    assert_int_equal(run("charger0", "dig +short +time=3 +tries=1 %s", H_LAB_HUB_HOST), 0);
    uint64_t took = h_now_ms() - t0;
    assert_string_equal(g_out, H_LAB_HUB_ADDR "\n");
    assert_true(took >= 590);
    h_lab_dns(&g_lab, H_LAB_DNS_FORWARD, 0);

    /* a silent public resolver: the router still answers (it asks both) */
    h_lab_host(&g_lab, "resolver1", false);
    assert_int_not_equal(
        run("charger0", "dig +time=1 +tries=1 @%s %s", H_LAB_RESOLVER1_ADDR, H_LAB_HUB_HOST), 0);
    assert_int_equal(run("charger0", "dig +short +time=2 +tries=1 %s", H_LAB_HUB_HOST), 0);
    assert_string_equal(g_out, H_LAB_HUB_ADDR "\n");
    h_lab_host(&g_lab, "resolver1", true);

    /* port 53 to the outside blocked: the public resolvers are out of reach, the router not */
    h_lab_firewall(&g_lab, H_LAB_BLOCK_DNS, true);
    assert_int_not_equal(
        run("charger0", "dig +time=1 +tries=1 @%s %s", H_LAB_RESOLVER2_ADDR, H_LAB_HUB_HOST), 0);
    assert_int_equal(run("charger0", "dig +short +time=2 +tries=1 %s", H_LAB_HUB_HOST), 0);
    assert_string_equal(g_out, H_LAB_HUB_ADDR "\n");
    h_lab_firewall(&g_lab, H_LAB_BLOCK_DNS, false);

    /* names: added, removed, reset */
    h_lab_must(&g_lab, "names add fw9.lade.test %s", H_LAB_FW1_ADDR);
    h_lab_must(&g_lab, "names del %s", H_LAB_HUB_HOST);
    run("charger0", "dig +short +time=2 +tries=1 fw9.lade.test");
    assert_string_equal(g_out, H_LAB_FW1_ADDR "\n");
    run("charger0", "dig +time=2 +tries=1 %s", H_LAB_HUB_HOST);
    assert_non_null(strstr(g_out, "status: NXDOMAIN"));
    h_lab_must(&g_lab, "names reset");
    run("charger0", "dig +short +time=2 +tries=1 %s", H_LAB_HUB_HOST);
    assert_string_equal(g_out, H_LAB_HUB_ADDR "\n");
}

static void test_ntp(void **state)
{
    (void)state;
    double off;
    int stratum;
    assert_true(sntp("charger0", H_LAB_NTP1_ADDR, 2000, &off, &stratum));
    fprintf(stderr, "ntp1: offset %.3f s, stratum %d\n", off, stratum);
    assert_true(off > -2 && off < 2);
    assert_int_equal(stratum, 3); /* chrony's "local stratum 3" */
    assert_true(sntp("charger1", H_LAB_NTP2_ADDR, 2000, &off, &stratum));
    fprintf(stderr, "ntp2: offset %.3f s, stratum %d\n", off, stratum);
    assert_true(off > 3598 && off < 3602);

    h_lab_firewall(&g_lab, H_LAB_BLOCK_NTP, true);
    assert_false(sntp("charger0", H_LAB_NTP1_ADDR, 700, &off, &stratum));
    h_lab_firewall(&g_lab, H_LAB_BLOCK_NTP, false);
    assert_true(sntp("charger0", H_LAB_NTP1_ADDR, 2000, &off, &stratum));
    h_lab_host(&g_lab, "ntp1", false);
    assert_false(sntp("charger0", H_LAB_NTP1_ADDR, 700, &off, &stratum));
    assert_true(sntp("charger0", H_LAB_NTP2_ADDR, 2000, &off, &stratum));
    h_lab_host(&g_lab, "ntp1", true);
    assert_true(sntp("charger0", H_LAB_NTP1_ADDR, 2000, &off, &stratum));
}

static void test_hub_through_nat(void **state)
{
    (void)state;
    assert_int_equal(tcp_try("charger0", H_LAB_HUB_ADDR, H_LAB_HUB_PORT, 2000), 0);
    /* TLS with the lab CA and the host name the chargers use */
    assert_int_equal(run("charger1",
                         "openssl s_client -connect %s:%d -servername %s -verify_hostname %s "
                         "-CAfile '%s' -verify_return_error -brief </dev/null 2>&1",
                         H_LAB_HUB_ADDR, H_LAB_HUB_PORT, H_LAB_HUB_HOST, H_LAB_HUB_HOST,
                         g_lab.hub.ca),
                     0);
    assert_non_null(strstr(g_out, "Verification: OK"));
    /* the hub saw the router's WAN address: NAT */
    assert_true(
        h_wait_file_contains(g_lab.hub.log, "New connection from " H_LAB_WAN_ROUTER ":", 5000));

    /* the firewall knob: dropped (a timeout), rejected (a reset), open again */
    h_lab_firewall(&g_lab, H_LAB_BLOCK_8883, true);
    assert_int_equal(tcp_try("charger0", H_LAB_HUB_ADDR, H_LAB_HUB_PORT, 700), ETIMEDOUT);
    h_lab_must(&g_lab, "firewall block 8883 reject");
    assert_int_equal(tcp_try("charger0", H_LAB_HUB_ADDR, H_LAB_HUB_PORT, 2000), ECONNREFUSED);
    h_lab_firewall(&g_lab, H_LAB_BLOCK_8883, false);
    assert_int_equal(tcp_try("charger0", H_LAB_HUB_ADDR, H_LAB_HUB_PORT, 2000), 0);
    /* the whole internet cut off, and back */
    h_lab_firewall(&g_lab, H_LAB_BLOCK_WAN, true);
    assert_int_equal(tcp_try("charger0", H_LAB_HUB_ADDR, H_LAB_HUB_PORT, 700), ETIMEDOUT);
    h_lab_firewall(&g_lab, H_LAB_BLOCK_WAN, false);
    /* the hub process stopped and started */
    h_lab_must(&g_lab, "stop hub");
    assert_int_equal(tcp_try("charger0", H_LAB_HUB_ADDR, H_LAB_HUB_PORT, 2000), ECONNREFUSED);
    h_lab_must(&g_lab, "start hub");
    assert_int_equal(tcp_try("charger0", H_LAB_HUB_ADDR, H_LAB_HUB_PORT, 2000), 0);

    /* outbound only (R2): the internet cannot reach a charger behind the NAT */
    char ip[16];
    assert_true(h_lab_lease(&g_lab, 0, ip));
    assert_int_equal(tcp_try("inet", ip, 22, 700), ENETUNREACH);
}

/* curl from node: the body of https://host/path, verified against ca (exit code; output in
 * g_out, the response headers first with -i). */
static int curl_get(const char *node, const char *ca, const char *host, const char *path,
                    const char *extra)
{
    return run(node,
               "curl -sS --connect-timeout 1 --max-time 5 %s --cacert '%s' https://%s/%s 2>&1",
               extra, ca, host, path);
}

/* The issuer of the certificate node is shown at host:port (SNI host), into g_out. */
static void issuer_of(const char *node, const char *host, int port)
{
    assert_int_equal(run(node,
                         "openssl s_client -connect %s:%d -servername %s </dev/null 2>/dev/null "
                         "| openssl x509 -noout -issuer",
                         host, port, host),
                     0);
}

/* The firmware hosts (opts.fw): HTTPS on 443 from the lab CA, through the NAT; the host and
 * service knobs. */
static void test_fw_https(void **state)
{
    (void)state;
    assert_int_equal(run("charger0",
                         "openssl s_client -connect %s:%d -servername %s -verify_hostname %s "
                         "-CAfile '%s' -verify_return_error -brief </dev/null 2>&1",
                         H_LAB_FW1_HOST, H_LAB_FW_PORT, H_LAB_FW1_HOST, H_LAB_FW1_HOST, g_lab.ca),
                     0);
    assert_non_null(strstr(g_out, "Verification: OK"));
    const char *hosts[] = {H_LAB_FW1_HOST, H_LAB_FW2_HOST, H_LAB_FW3_HOST};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(curl_get("charger0", g_lab.ca, hosts[i], H_LAB_FW_FILE, ""), 0);
        assert_string_equal(g_out, H_LAB_FW_FILE_TEXT);
    }
    /* what lab.fw_www holds is what they serve; the request came through the NAT */
    char path[700];
    snprintf(path, sizeof path, "%s/test-%d.bin", g_lab.fw_www, (int)getpid());
    h_write_file(path, "firmware bytes");
    assert_int_equal(curl_get("charger1", g_lab.ca, H_LAB_FW2_HOST, strrchr(path, '/') + 1, "-i"),
                     0);
    assert_non_null(strstr(g_out, "X-Lade-Lab-Host: fw2"));
    assert_non_null(strstr(g_out, "\r\n\r\nfirmware bytes"));
    snprintf(path, sizeof path, "%s/log/fw2-access.log", g_lab.dir);
    assert_true(h_wait_file_contains(path, H_LAB_WAN_ROUTER " - - ", 2000));

    /* one stopped (connection refused), the others serve; all started again */
    h_lab_must(&g_lab, "stop fw2");
    assert_int_equal(curl_get("charger0", g_lab.ca, H_LAB_FW2_HOST, H_LAB_FW_FILE, ""), 7);
    assert_int_equal(curl_get("charger0", g_lab.ca, H_LAB_FW3_HOST, H_LAB_FW_FILE, ""), 0);
    h_lab_must(&g_lab, "start fw");
    assert_int_equal(curl_get("charger0", g_lab.ca, H_LAB_FW2_HOST, H_LAB_FW_FILE, ""), 0);
    /* one silent (a timeout) */
    h_lab_host(&g_lab, "fw1", false);
    assert_int_equal(
        curl_get("charger0", g_lab.ca, H_LAB_FW1_HOST, H_LAB_FW_FILE, "--connect-timeout 0.3"), 28);
    h_lab_host(&g_lab, "fw1", true);
    assert_int_equal(curl_get("charger0", g_lab.ca, H_LAB_FW1_HOST, H_LAB_FW_FILE, ""), 0);
}

/* The TLS-inspecting firewall: the chargers' 8883 and 443 end at the router, with certificates
 * from its own CA; the router's own traffic is untouched; off restores the real servers. */
static void test_intercept(void **state)
{
    (void)state;
    h_lab_intercept(&g_lab, true);
    /* the hub: the handshake completes, but with the inspection CA's certificate */
    assert_int_not_equal(run("charger1",
                             "openssl s_client -connect %s:%d -servername %s -verify_hostname %s "
                             "-CAfile '%s' -verify_return_error -brief </dev/null 2>&1",
                             H_LAB_HUB_HOST, H_LAB_HUB_PORT, H_LAB_HUB_HOST, H_LAB_HUB_HOST,
                             g_lab.ca),
                         0);
    assert_non_null(strstr(g_out, "certificate verify failed"));
    issuer_of("charger1", H_LAB_HUB_HOST, H_LAB_HUB_PORT);
    assert_non_null(strstr(g_out, "CN = " H_LAB_INTERCEPT_CA_CN));
    assert_int_equal(run("charger1",
                         "openssl s_client -connect %s:%d -servername %s -verify_hostname %s "
                         "-CAfile '%s' -verify_return_error -brief </dev/null 2>&1",
                         H_LAB_HUB_HOST, H_LAB_HUB_PORT, H_LAB_HUB_HOST, H_LAB_HUB_HOST,
                         g_lab.intercept_ca),
                     0); /* a valid certificate for the name, from that CA */
    /* a firmware host: refused against the lab CA; through the proxy with the inspection CA */
    assert_int_equal(curl_get("charger0", g_lab.ca, H_LAB_FW2_HOST, H_LAB_FW_FILE, ""), 60);
    issuer_of("charger0", H_LAB_FW2_HOST, H_LAB_FW_PORT);
    assert_non_null(strstr(g_out, "CN = " H_LAB_INTERCEPT_CA_CN));
    assert_int_equal(curl_get("charger0", g_lab.intercept_ca, H_LAB_FW2_HOST, H_LAB_FW_FILE, "-i"),
                     0);
    assert_non_null(strstr(g_out, "X-Lade-Lab-Intercepted: 1"));
    assert_non_null(strstr(g_out, "\r\n\r\n" H_LAB_FW_FILE_TEXT));
    /* the router's own connections go to the real hub */
    issuer_of("router", H_LAB_HUB_HOST, H_LAB_HUB_PORT);
    assert_non_null(strstr(g_out, "CN = " H_LAB_CA_CN "\n"));
    /* a blocked port is blocked, not intercepted */
    h_lab_firewall(&g_lab, H_LAB_BLOCK_8883, true);
    assert_int_equal(tcp_try("charger0", H_LAB_HUB_ADDR, H_LAB_HUB_PORT, 500), ETIMEDOUT);
    h_lab_firewall(&g_lab, H_LAB_BLOCK_8883, false);

    h_lab_intercept(&g_lab, false);
    assert_int_equal(run("charger1",
                         "openssl s_client -connect %s:%d -servername %s -verify_hostname %s "
                         "-CAfile '%s' -verify_return_error -brief </dev/null 2>&1",
                         H_LAB_HUB_HOST, H_LAB_HUB_PORT, H_LAB_HUB_HOST, H_LAB_HUB_HOST, g_lab.ca),
                     0);
    assert_non_null(strstr(g_out, "Verification: OK"));
    issuer_of("charger1", H_LAB_HUB_HOST, H_LAB_HUB_PORT);
    assert_non_null(strstr(g_out, "CN = " H_LAB_CA_CN "\n"));
    assert_int_equal(curl_get("charger0", g_lab.ca, H_LAB_FW2_HOST, H_LAB_FW_FILE, ""), 0);
    assert_string_equal(g_out, H_LAB_FW_FILE_TEXT);
}

/* The C API with lade itself: a charger provisioned against lab.hub, run in charger0, online
 * through the NAT (names from the hosts file h_charger_provision names). */
static void test_lade_charger_online(void **state)
{
    (void)state;
    struct h_charger c;
    h_charger_provision(&c, &g_lab.hub, "LAB00001", "--evse sim " H_LAB_FACTORY_ARGS, NULL);
    char bin[600];
    snprintf(bin, sizeof bin, "%s/lade-charger", h_build_dir());
    const char *argv[] = {bin,    "--factory", c.factory, "--user",
                          c.user, "--status",  c.status,  NULL};
    c.pid = h_lab_spawn(&g_lab, "charger0", argv, NULL, c.log);
    assert_true(h_charger_wait_status(&c, "\"link\":\"online\"", 20000));
    assert_true(
        h_wait_file_contains(g_lab.hub.log, "New client connected from " H_LAB_WAN_ROUTER, 5000));
    h_charger_stop(&c);
}

static void test_link_and_dhcp(void **state)
{
    (void)state;
    /* the cable: the charger sees no carrier */
    h_lab_link(&g_lab, 1, false);
    assert_int_equal(run("charger1", "cat /sys/class/net/eth0/carrier 2>&1; true"), 0);
    assert_string_not_equal(g_out, "1\n");
    assert_int_not_equal(run("charger1", "ping -c1 -W1 %s", H_LAB_LAN_ROUTER), 0);
    h_lab_link(&g_lab, 1, true);
    assert_true(ping_router("charger1", 5000));
    h_lab_must(&g_lab, "link 1 flap 2 200");
    assert_true(ping_router("charger1", 5000));
    /* link up but dead: 100 % loss on one port, then on all of them */
    h_lab_loss(&g_lab, 1, 100);
    assert_int_not_equal(run("charger1", "ping -c1 -W1 %s", H_LAB_LAN_ROUTER), 0);
    assert_true(ping_router("charger0", 3000));
    h_lab_loss(&g_lab, 1, 0);
    assert_true(ping_router("charger1", 3000));
    h_lab_firewall(&g_lab, H_LAB_BLOCK_ALL, true);
    assert_int_not_equal(run("charger0", "ping -c1 -W1 %s", H_LAB_LAN_ROUTER), 0);
    h_lab_firewall(&g_lab, H_LAB_BLOCK_ALL, false);
    assert_true(ping_router("charger0", 3000));

    /* DHCP off: no lease; on again: the same address as before */
    char before[16], after[16];
    assert_true(h_lab_lease(&g_lab, 1, before));
    h_lab_dhcp(&g_lab, false);
    assert_int_not_equal(h_lab_cmd(&g_lab, "dhcp-client 1 -t 2"), 0);
    h_lab_dhcp(&g_lab, true);
    assert_int_equal(h_lab_cmd(&g_lab, "dhcp-client 1"), 0);
    assert_true(h_lab_charger_addr(&g_lab, 1, after));
    assert_string_equal(before, after);

    /* a pool of one address: the second charger gets none; options changed at runtime */
    h_lab_must(&g_lab, "dhcp set pool 1 dns none ntp on");
    h_lab_must(&g_lab, "dhcp forget");
    assert_int_equal(h_lab_cmd(&g_lab, "dhcp-client 0"), 0);
    assert_true(h_lab_charger_addr(&g_lab, 0, after));
    assert_string_equal(after, "192.168.77.100");
    char log[700];
    snprintf(log, sizeof log, "%s/log/dhcp.log", g_lab.dir);
    assert_int_not_equal(h_lab_cmd(&g_lab, "dhcp-client 1 -t 2"), 0);
    assert_true(h_file_count(log, "no address available") > 0);
    h_lab_must(&g_lab, "dhcp set pool 50 dns router ntp off");
    assert_int_equal(h_lab_cmd(&g_lab, "dhcp-client 1"), 0);
}

static void test_no_route_off_machine(void **state)
{
    (void)state;
    const char *nodes[] = {"router", "inet", "charger0", "charger1"};
    for (size_t n = 0; n < sizeof nodes / sizeof nodes[0]; n++) {
        /* every route is a lab route: the LAN, the WAN link, a default via a lab router */
        assert_int_equal(run(nodes[n],
                             "ip -4 route show table all | grep -v '^local ' | "
                             "grep -v '^broadcast ' | grep -v ' table local ' | "
                             "grep -vE '^(192\\.168\\.77\\.0/24|203\\.0\\.113\\.0/24) "
                             "dev ' | grep -vE '^default via (192\\.168\\.77\\.1 dev "
                             "eth0|203\\.0\\.113\\.1 dev wan0)( |$)' | grep -v '^multicast'; "
                             "true"),
                         0);
        assert_string_equal(g_out, "");
        /* every interface is a loopback, the router's bridge, or a veth into a lab namespace */
        assert_int_equal(run(nodes[n],
                             "ip -o -d link | grep -v ': lo: ' | "
                             "grep -v 'link-netns %s-' | grep -v ': br0: '; true",
                             g_lab.name),
                         0);
        assert_string_equal(g_out, "");
    }
    assert_int_equal(run("inet", "ip -4 route show default; true"), 0);
    assert_string_equal(g_out, ""); /* the internet has no way out */
    assert_int_not_equal(run("inet", "ip route get 192.0.2.1 2>&1"), 0);
    assert_non_null(strstr(g_out, "unreachable"));
    assert_int_not_equal(run("charger0", "ping -c1 -W2 192.0.2.1"), 0);
    assert_non_null(strstr(g_out, "Net Unreachable"));
    /* and the machine's own namespace has no interface into the lab */
    char cmd[300];
    snprintf(cmd, sizeof cmd, "ip -o link | grep -c 'link-netns %s-' || true", g_lab.name);
    char out[64] = "";
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, sizeof out, p));
    pclose(p);
    assert_string_equal(out, "0\n");
}

/* A process spawned in the lab and every service die with the lab; nothing is left. */
static void test_teardown(void **state)
{
    (void)state;
    const char *argv[] = {"sleep", "300", NULL};
    pid_t sleeper = h_lab_spawn(&g_lab, "charger0", argv, NULL, NULL);
    char pids[4096] = "";
    const char *nss[] = {g_lab.ns_router, g_lab.ns_inet, g_lab.ns_charger[0], g_lab.ns_charger[1]};
    for (size_t i = 0; i < 4; i++) {
        char cmd[200], line[64];
        snprintf(cmd, sizeof cmd, "ip netns pids %s", nss[i]);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        while (fgets(line, sizeof line, p))
            strncat(pids, line, sizeof pids - strlen(pids) - 1);
        pclose(p);
    }
    fprintf(stderr, "lab processes:\n%s", pids);
    int n = 0;
    for (const char *s = pids; *s; s++)
        n += *s == '\n';
    assert_true(n >= 8); /* resolvers, ntp x2, hub, dns, dhcp, sleep... */
    char name[32];
    snprintf(name, sizeof name, "%s", g_lab.name);
    h_lab_down(&g_lab);
    assert_false(h_running(sleeper, NULL));
    assert_true(h_lab_gone(name));
    uint64_t end = h_now_ms() + 5000;
    for (char *s = pids, *e; *s; s = e + 1) {
        e = strchr(s, '\n');
        *e = 0;
        char stat[64];
        snprintf(stat, sizeof stat, "/proc/%.20s/stat", s);
        for (;;) {
            char *st = h_read_file(stat);
            /* gone, or a zombie waiting for its parent (init) to reap it */
            bool dead = !st || strstr(st, ") Z ") != NULL;
            free(st);
            if (dead)
                break;
            if (h_now_ms() > end)
                fail_msg("process %s outlived the lab", s);
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
}

/* A lab whose test process was SIGKILLed is removed by the next h_lab_up (lab.sh gc). The
 * owner here is a child that lives while its lab is built (so no other test's gc takes the lab
 * away halfway) and is then killed like a test that timed out. */
static void test_gc_removes_stale_labs(void **state)
{
    (void)state;
    const char *argv[] = {"sleep", "300", NULL};
    pid_t owner = h_spawn(argv, NULL, NULL);
    char name[32];
    snprintf(name, sizeof name, "lade%d", (int)owner);
    assert_int_equal(h_sh("'%s/tests/lab/lab.sh' -n %s up --ntp 0 --owner %d >&2", h_source_dir(),
                          name, (int)owner),
                     0);
    assert_false(h_lab_gone(name));
    h_stop(owner, SIGKILL, 1000);
    assert_int_equal(h_sh("'%s/tests/lab/lab.sh' gc >&2", h_source_dir()), 0);
    assert_true(h_lab_gone(name));
}

int main(void)
{
    if (getuid() != 0) {
        fprintf(stderr, "test_lab: the site-network lab needs root (network namespaces); "
                        "run as root (CI does)\n");
        return 1;
    }
    srand((unsigned)time(NULL));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dhcp_leases),
        cmocka_unit_test(test_dns),
        cmocka_unit_test(test_ntp),
        cmocka_unit_test(test_hub_through_nat),
        cmocka_unit_test(test_fw_https),
        cmocka_unit_test(test_intercept),
        cmocka_unit_test(test_lade_charger_online),
        cmocka_unit_test(test_link_and_dhcp),
        cmocka_unit_test(test_no_route_off_machine),
        cmocka_unit_test(test_teardown),
        cmocka_unit_test(test_gc_removes_stale_labs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
