/* e2e: lade-check's DHCP probe (src/port/linux/dhcpprobe.c) in the site-network lab
 * (tests/lab): the probe runs in this process, its packet socket opened in charger0's namespace
 * (static 192.168.77.10), against the lab router's dnsmasq. Scenarios:
 *
 *   1. healthy: one OFFER from 192.168.77.1 with the lab's lease time, T1/T2, router, DNS and
 *      NTP; the INFORM answered with the same options; one server; ends at the settle time;
 *   2. five new clients on a pool of 50: five OFFERs, all in the pool, for the five made-up MACs;
 *      and the most, 256, on the same pool: every one offered an address of the pool;
 *   3. DHCP pool exhausted (pool 1, charger1 holds the only lease via udhcpc): no OFFER, but the
 *      INFORM is answered — the server is there, its pool is full; ends at the timeout;
 *   4. no DHCP server (`dhcp off`): nothing answers, one retransmission each, ends at the timeout;
 *   5. DHCP gives no DNS (`dhcp set dns none`): the OFFER and the INFORM ACK have no option 6;
 *   6. no lease taken: four OFFERs for the one address of a pool of 1, the lease file never
 *      names a made-up MAC, and a real client then gets that address;
 *   7. a second DHCP server on the LAN (dnsmasq in charger1): two servers reported;
 *   8. errors: no such interface; without root (setuid nobody in a child): EPERM.
 *
 * One lab for all (two static chargers); every test puts the knobs back (restore).
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
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

#include <cmocka.h>

#include "harness.h"
#include "harness_lab.h"
#include "lade/dhcpprobe.h"
#include "lade/loop.h"

#define LEASE_S    7200u
#define T1_S       1800u
#define T2_S       6300u
#define ROUTER     LADE_IPV4(192, 168, 77, 1)
#define CHARGER0   LADE_IPV4(192, 168, 77, 10)
#define CHARGER1   LADE_IPV4(192, 168, 77, 11)
#define POOL_FIRST LADE_IPV4(192, 168, 77, 100)
#define NTP1       LADE_IPV4(198, 51, 100, 21)
#define SHORT_MS   2000u /* timeout of the probes that are meant to time out */

static struct h_lab lab;
static struct lade_loop *loop;
static pid_t g_rogue;
static struct lade_dhcpprobe *g_probe; /* the test's probe, freed by restore */
static uint64_t g_t0;

static int group_setup(void **state)
{
    (void)state;
    struct h_lab_opts o = {.chargers = 2,
                           .addr = H_LAB_ADDR_STATIC,
                           .lease_s = LEASE_S,
                           .t1_s = T1_S,
                           .t2_s = T2_S,
                           .dhcp_ntp = "on"};
    h_lab_up(&lab, &o);
    if (lade_loop_new(&loop) != LADE_OK)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    lade_loop_free(loop);
    h_lab_down(&lab);
    return 0;
}

static int mark(void **state)
{
    (void)state;
    g_t0 = h_now_ms();
    return 0;
}

/* After every test: the knobs back to the group's start. */
static int restore(void **state)
{
    (void)state;
    fprintf(stderr, "(test took %llu ms)\n", (unsigned long long)(h_now_ms() - g_t0));
    lade_dhcpprobe_free(g_probe);
    g_probe = NULL;
    if (g_rogue > 0) {
        h_stop(g_rogue, SIGTERM, 5000);
        g_rogue = 0;
    }
    int rc = h_lab_cmd(&lab, "dhcp on");
    rc |= h_lab_cmd(&lab, "dhcp set pool 50 dns router");
    rc |= h_lab_cmd(&lab, "dhcp forget");
    rc |= h_lab_cmd(&lab, "addr 1 static");
    return rc == 0 ? 0 : -1;
}

/* ---- running the probe in a charger's namespace ---- */

static bool g_done;

static void on_done(void *ud, const struct lade_dhcpprobe_result *r)
{
    (void)ud;
    (void)r;
    g_done = true;
    lade_loop_stop(loop);
}

/* Runs fn(arg) with the calling thread in node's network namespace, then comes back. */
static int in_ns(const char *node, lade_err (*fn)(void *), void *arg, lade_err *e)
{
    char path[128];
    snprintf(path, sizeof path, "/run/netns/%s", h_lab_ns(&lab, node));
    int target = open(path, O_RDONLY | O_CLOEXEC);
    int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (target < 0 || self < 0 || setns(target, CLONE_NEWNET) != 0) {
        fprintf(stderr, "cannot enter %s: %s\n", path, strerror(errno));
        return -1;
    }
    *e = fn(arg);
    if (setns(self, CLONE_NEWNET) != 0) {
        fprintf(stderr, "cannot return to the test's namespace: %s\n", strerror(errno));
        abort();
    }
    close(target);
    close(self);
    return 0;
}

struct start_args {
    struct lade_dhcpprobe_cfg cfg;
    struct lade_dhcpprobe *p;
    int os_errno;
};

static lade_err do_start(void *arg)
{
    struct start_args *a = arg;
    return lade_dhcpprobe_start(loop, &a->cfg, on_done, NULL, &a->p, &a->os_errno);
}

/* Probes from charger I's eth0 with k new clients; returns the finished probe (restore frees
 * it). */
static struct lade_dhcpprobe *probe(int charger, unsigned k, bool inform, uint32_t timeout_ms)
{
    char node[32];
    snprintf(node, sizeof node, "charger%d", charger);
    struct start_args a;
    lade_dhcpprobe_cfg_default(&a.cfg);
    a.cfg.ifname = H_LAB_CHARGER_IF;
    a.cfg.clients = k;
    a.cfg.inform = inform;
    if (timeout_ms)
        a.cfg.timeout_ms = timeout_ms;
    lade_err e = LADE_ERR_IO;
    assert_int_equal(in_ns(node, do_start, &a, &e), 0);
    assert_int_equal(e, LADE_OK);
    assert_non_null(a.p);
    lade_dhcpprobe_free(g_probe);
    g_probe = a.p;
    g_done = false;
    uint64_t deadline = h_now_ms() + a.cfg.timeout_ms + 3000;
    while (!g_done && h_now_ms() < deadline)
        assert_int_equal(lade_loop_run_once(loop, 100), LADE_OK);
    assert_true(g_done);
    const struct lade_dhcpprobe_result *r = lade_dhcpprobe_result(a.p);
    fprintf(stderr,
            "probe: %u/%u clients offered (%u distinct), INFORM %s, %u server(s), %u ms%s\n",
            r->clients_answered, r->n_clients, r->distinct_addrs,
            r->inform.answered ? "answered" : (r->inform.sent ? "unanswered" : "not sent"),
            r->n_servers, r->elapsed_ms, r->complete ? "" : " (timeout)");
    return a.p;
}

static bool in_pool(uint32_t a, unsigned pool)
{
    return a >= POOL_FIRST && a < POOL_FIRST + pool;
}

static bool made_up_mac(const uint8_t m[6])
{
    return m[0] == 0x0a && m[1] == 0xde && m[2] == 0xc0;
}

/* The lab router's options as dnsmasq sends them (the group's lab: lease 7200, T1 1800, T2 6300,
 * NTP on; dns "router" unless no_dns). */
static void expect_router_options(const struct lade_dhcpprobe_answer *a, bool no_dns)
{
    assert_true(a->has_server_id);
    assert_int_equal(a->server_id, ROUTER);
    assert_int_equal(a->src, ROUTER);
    static const uint8_t zero[6] = {0};
    assert_memory_not_equal(a->src_mac, zero, 6);
    assert_true(a->has_subnet);
    assert_int_equal(a->subnet_mask, LADE_IPV4(255, 255, 255, 0));
    assert_int_equal(a->n_routers, 1);
    assert_int_equal(a->routers[0], ROUTER);
    if (no_dns) {
        assert_int_equal(a->n_dns, 0);
    } else {
        assert_int_equal(a->n_dns, 1);
        assert_int_equal(a->dns[0], ROUTER);
    }
    assert_int_equal(a->n_ntp, 1);
    assert_int_equal(a->ntp[0], NTP1);
}

static void expect_offer(const struct lade_dhcpprobe_client *c, unsigned pool, bool no_dns)
{
    assert_true(c->answered);
    assert_int_equal(c->offers, 1);
    assert_int_equal(c->offer.type, LADE_DHCP_OFFER);
    assert_true(in_pool(c->offer.addr, pool));
    expect_router_options(&c->offer, no_dns);
    assert_true(c->offer.has_lease);
    assert_int_equal(c->offer.lease_s, LEASE_S);
    assert_true(c->offer.has_t1 && c->offer.has_t2);
    assert_int_equal(c->offer.t1_s, T1_S);
    assert_int_equal(c->offer.t2_s, T2_S);
    assert_true(c->offer.rtt_ms < 1000);
}

static void expect_inform_ack(const struct lade_dhcpprobe_result *r, bool no_dns)
{
    assert_true(r->inform.sent);
    assert_int_equal(r->inform.ciaddr, CHARGER0);
    assert_true(r->inform.answered);
    assert_int_equal(r->inform.ack.type, LADE_DHCP_ACK);
    expect_router_options(&r->inform.ack, no_dns);
    /* dnsmasq gives a lease time to an INFORM only from a lease it holds: none for .10 */
    assert_false(r->inform.ack.has_lease);
}

static char *leases_text(void)
{
    char *t = h_read_file(lab.leases);
    return t ? t : strdup("");
}

/* ---- 1. healthy ---- */

static void test_healthy(void **state)
{
    (void)state;
    struct lade_dhcpprobe *p = probe(0, 1, true, 0);
    const struct lade_dhcpprobe_result *r = lade_dhcpprobe_result(p);
    assert_string_equal(r->ifname, H_LAB_CHARGER_IF);
    assert_int_equal(r->if_addr, CHARGER0);
    assert_true(r->if_carrier);
    char mac[18];
    snprintf(mac, sizeof mac, "%02x:%02x:%02x:%02x:%02x:%02x", r->if_mac[0], r->if_mac[1],
             r->if_mac[2], r->if_mac[3], r->if_mac[4], r->if_mac[5]);
    assert_string_equal(mac, lab.mac[0]);

    assert_int_equal(r->n_clients, 1);
    assert_true(made_up_mac(r->clients[0].mac));
    assert_int_equal(r->clients[0].sent, 1); /* answered: no retransmission */
    expect_offer(&r->clients[0], 50, false);
    expect_inform_ack(r, false);
    assert_int_equal(r->inform.acks, 1);

    assert_int_equal(r->clients_answered, 1);
    assert_int_equal(r->distinct_addrs, 1);
    assert_int_equal(r->n_servers, 1);
    assert_false(r->servers_more);
    assert_int_equal(r->servers[0].id, ROUTER);
    assert_int_equal(r->servers[0].src, ROUTER);
    assert_int_equal(r->servers[0].offers, 1);
    assert_int_equal(r->servers[0].acks, 1);
    assert_int_equal(r->malformed, 0);
    assert_int_equal(r->unexpected, 0);
    assert_int_equal(r->send_error, LADE_OK);
    /* everything answered: ends at the settle time, long before the timeout */
    assert_true(r->complete);
    assert_true(r->elapsed_ms >= LADE_DHCPPROBE_SETTLE_MS);
    assert_true(r->elapsed_ms < LADE_DHCPPROBE_TIMEOUT_MS / 2);
}

/* ---- 2. five new clients on a pool of 50 ---- */

static void test_five_clients(void **state)
{
    (void)state;
    struct lade_dhcpprobe *p = probe(0, 5, true, 0);
    const struct lade_dhcpprobe_result *r = lade_dhcpprobe_result(p);
    assert_int_equal(r->n_clients, 5);
    assert_int_equal(r->clients_answered, 5);
    for (unsigned i = 0; i < 5; i++) {
        const struct lade_dhcpprobe_client *c = &r->clients[i];
        assert_true(made_up_mac(c->mac));
        assert_int_equal(c->mac[5], i);
        assert_memory_equal(c->mac, r->clients[0].mac, 5); /* one run prefix */
        for (unsigned j = 0; j < i; j++)
            assert_int_not_equal(c->xid, r->clients[j].xid);
        expect_offer(c, 50, false);
    }
    /* dnsmasq picks an address by a hash of the MAC and remembers no OFFER: two made-up
     * clients may be offered the same free address (docs/dhcpprobe.md) */
    assert_true(r->distinct_addrs >= 1 && r->distinct_addrs <= 5);
    assert_int_equal(r->n_servers, 1);
    assert_int_equal(r->servers[0].offers, 5);
    assert_true(r->inform.answered);
    assert_true(r->complete);
}

/* ---- 2b. the most clients: 256 on a pool of 50 ---- */

static void test_many_clients(void **state)
{
    (void)state;
    struct lade_dhcpprobe *p = probe(0, LADE_DHCPPROBE_MAX_CLIENTS, false, 0);
    const struct lade_dhcpprobe_result *r = lade_dhcpprobe_result(p);
    /* sent in batches, every OFFER received (none lost in the socket buffer) */
    assert_int_equal(r->n_clients, LADE_DHCPPROBE_MAX_CLIENTS);
    assert_int_equal(r->clients_answered, LADE_DHCPPROBE_MAX_CLIENTS);
    for (unsigned i = 0; i < LADE_DHCPPROBE_MAX_CLIENTS; i++) {
        assert_int_equal(r->clients[i].mac[5], i);
        assert_int_equal(r->clients[i].sent, 1);
        assert_true(in_pool(r->clients[i].offer.addr, 50));
    }
    /* at most the pool; dnsmasq's hash spreads 256 MACs over most of it */
    assert_true(r->distinct_addrs <= 50);
    assert_true(r->distinct_addrs >= 25);
    assert_int_equal(r->servers[0].offers, LADE_DHCPPROBE_MAX_CLIENTS);
    assert_true(r->complete);
    assert_int_equal(r->malformed, 0);
    assert_int_equal(r->send_error, LADE_OK);
}

/* ---- 3. "DHCP pool exhausted" ---- */

static void test_dhcp_pool_exhausted(void **state)
{
    (void)state;
    h_lab_must(&lab, "dhcp forget");
    h_lab_must(&lab, "dhcp set pool 1");
    h_lab_must(&lab, "dhcp-client 1"); /* charger1 (udhcpc) takes the only address */
    char other[16];
    assert_true(h_lab_lease(&lab, 1, other));
    assert_string_equal(other, "192.168.77.100");

    struct lade_dhcpprobe *p = probe(0, 3, true, SHORT_MS);
    const struct lade_dhcpprobe_result *r = lade_dhcpprobe_result(p);
    assert_int_equal(r->clients_answered, 0);
    assert_int_equal(r->distinct_addrs, 0);
    for (unsigned i = 0; i < 3; i++) {
        assert_false(r->clients[i].answered);
        assert_int_equal(r->clients[i].sent, 2); /* the retransmission at half the timeout */
    }
    /* the server is there and answers a configured host: the pool is full */
    expect_inform_ack(r, false);
    assert_int_equal(r->n_servers, 1);
    assert_int_equal(r->servers[0].id, ROUTER);
    assert_int_equal(r->servers[0].offers, 0);
    assert_true(r->servers[0].acks >= 1);
    assert_false(r->complete);
    assert_true(r->elapsed_ms >= SHORT_MS && r->elapsed_ms < SHORT_MS + 500);
    char dhcplog[600];
    snprintf(dhcplog, sizeof dhcplog, "%s/log/dhcp.log", lab.dir);
    assert_true(h_wait_file_contains(dhcplog, "no address available", 1000));
}

/* ---- 4. no DHCP server ---- */

static void test_no_server(void **state)
{
    (void)state;
    h_lab_dhcp(&lab, false);
    struct lade_dhcpprobe *p = probe(0, 2, true, SHORT_MS);
    const struct lade_dhcpprobe_result *r = lade_dhcpprobe_result(p);
    assert_int_equal(r->clients_answered, 0);
    assert_int_equal(r->clients[0].sent, 2);
    assert_int_equal(r->clients[1].sent, 2);
    assert_true(r->inform.sent);
    assert_false(r->inform.answered);
    assert_int_equal(r->inform.acks, 0);
    assert_int_equal(r->n_servers, 0);
    assert_int_equal(r->distinct_addrs, 0);
    assert_false(r->complete);
    assert_true(r->elapsed_ms >= SHORT_MS && r->elapsed_ms < SHORT_MS + 500);
    assert_int_equal(r->send_error, LADE_OK);
}

/* ---- 5. "DHCP gives no DNS" ---- */

static void test_dhcp_gives_no_dns(void **state)
{
    (void)state;
    h_lab_must(&lab, "dhcp set dns none");
    struct lade_dhcpprobe *p = probe(0, 1, true, 0);
    const struct lade_dhcpprobe_result *r = lade_dhcpprobe_result(p);
    expect_offer(&r->clients[0], 50, true);
    assert_int_equal(r->clients[0].offer.n_dns, 0);
    expect_inform_ack(r, true);
    assert_int_equal(r->inform.ack.n_dns, 0);
    assert_true(r->complete);
}

/* ---- 6. no lease taken ---- */

static void test_no_lease_taken(void **state)
{
    (void)state;
    h_lab_must(&lab, "dhcp forget");
    h_lab_must(&lab, "dhcp set pool 1");
    char dhcplog[600];
    snprintf(dhcplog, sizeof dhcplog, "%s/log/dhcp.log", lab.dir);
    int requests = h_file_count(dhcplog, "DHCPREQUEST");
    struct lade_dhcpprobe *p = probe(0, 4, false, 0);
    const struct lade_dhcpprobe_result *r = lade_dhcpprobe_result(p);
    /* the pool's one address, offered to each of the four (nobody took it) */
    assert_int_equal(r->clients_answered, 4);
    for (unsigned i = 0; i < 4; i++)
        assert_int_equal(r->clients[i].offer.addr, POOL_FIRST);
    assert_int_equal(r->distinct_addrs, 1);
    assert_false(r->inform.sent);
    char needle[64];
    const uint8_t *m = r->clients[3].mac;
    snprintf(needle, sizeof needle, "DHCPOFFER(br0) 192.168.77.100 %02x:%02x:%02x:%02x:%02x:%02x",
             m[0], m[1], m[2], m[3], m[4], m[5]);
    assert_true(h_wait_file_contains(dhcplog, needle, 1000));

    /* no REQUEST: the server recorded no lease for a made-up MAC */
    char *t = leases_text();
    assert_null(strstr(t, "0a:de:c0"));
    free(t);
    assert_int_equal(h_file_count(dhcplog, "DHCPREQUEST"), requests);
    /* and a real client still gets the pool's only address */
    h_lab_must(&lab, "dhcp-client 1");
    char other[16];
    assert_true(h_lab_lease(&lab, 1, other));
    assert_string_equal(other, "192.168.77.100");
    t = leases_text();
    assert_null(strstr(t, "0a:de:c0"));
    free(t);
}

/* ---- 7. a second DHCP server on the LAN ---- */

static void test_two_servers(void **state)
{
    (void)state;
    char leasefile[700], log[700], range[80], router[40];
    snprintf(leasefile, sizeof leasefile, "%s/rogue.leases", lab.tmp);
    snprintf(log, sizeof log, "%s/rogue.log", lab.tmp);
    snprintf(range, sizeof range, "--dhcp-range=192.168.77.200,192.168.77.209,255.255.255.0,600s");
    snprintf(router, sizeof router, "--dhcp-option=3,192.168.77.11");
    char lf[720];
    snprintf(lf, sizeof lf, "--dhcp-leasefile=%s", leasefile);
    /* a home router plugged into the chargers' network: dnsmasq in charger1 (static .11) */
    const char *argv[] = {"dnsmasq",
                          "--keep-in-foreground",
                          "--conf-file=/dev/null",
                          "--port=0",
                          "--interface=eth0",
                          "--bind-interfaces",
                          "--no-ping",
                          "--log-dhcp",
                          "--log-facility=-",
                          "--pid-file=",
                          "--user=root",
                          "--group=root",
                          range,
                          router,
                          lf,
                          NULL};
    g_rogue = h_lab_spawn(&lab, "charger1", argv, NULL, log);
    assert_true(h_wait_file_contains(log, "DHCP, IP range", 5000));

    struct lade_dhcpprobe *p = probe(0, 2, true, 0);
    const struct lade_dhcpprobe_result *r = lade_dhcpprobe_result(p);
    assert_int_equal(r->n_servers, 2);
    const struct lade_dhcpprobe_server *lab_srv = NULL, *rogue = NULL;
    for (unsigned i = 0; i < r->n_servers; i++) {
        if (r->servers[i].id == ROUTER)
            lab_srv = &r->servers[i];
        else if (r->servers[i].id == CHARGER1)
            rogue = &r->servers[i];
    }
    assert_non_null(lab_srv);
    assert_non_null(rogue);
    assert_int_equal(lab_srv->offers, 2);
    assert_int_equal(rogue->offers, 2);
    assert_int_equal(rogue->src, CHARGER1);
    assert_int_equal(rogue->offer.n_routers, 1);
    assert_int_equal(rogue->offer.routers[0], CHARGER1);
    assert_true(rogue->offer.addr >= LADE_IPV4(192, 168, 77, 200) &&
                rogue->offer.addr <= LADE_IPV4(192, 168, 77, 209));
    assert_memory_not_equal(rogue->src_mac, lab_srv->src_mac, 6);
    /* each made-up client got both OFFERs; the first one is kept */
    assert_int_equal(r->clients[0].offers, 2);
    assert_int_equal(r->clients[1].offers, 2);
    assert_int_equal(r->clients_answered, 2);
    assert_true(r->distinct_addrs >= 2); /* one pool each */
    /* the INFORM: the lab's server answers (the rogue is not authoritative, it may too) */
    assert_true(r->inform.answered);
}

/* ---- 8. errors ---- */

static void test_errors(void **state)
{
    (void)state;
    struct start_args a;
    lade_dhcpprobe_cfg_default(&a.cfg);
    lade_err e = LADE_OK;

    a.cfg.ifname = "nosuch0";
    assert_int_equal(in_ns("charger0", do_start, &a, &e), 0);
    assert_int_equal(e, LADE_ERR_NOT_FOUND);
    assert_null(a.p);

    a.cfg.ifname = H_LAB_CHARGER_IF;
    a.cfg.clients = LADE_DHCPPROBE_MAX_CLIENTS + 1;
    assert_int_equal(in_ns("charger0", do_start, &a, &e), 0);
    assert_int_equal(e, LADE_ERR_INVAL);
    a.cfg.clients = 1;
    a.cfg.timeout_ms = 10;
    assert_int_equal(in_ns("charger0", do_start, &a, &e), 0);
    assert_int_equal(e, LADE_ERR_INVAL);
    a.cfg.timeout_ms = 1000;

    /* without CAP_NET_RAW: a child that becomes nobody in charger0's namespace */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char path[128];
        snprintf(path, sizeof path, "/run/netns/%s", h_lab_ns(&lab, "charger0"));
        int ns = open(path, O_RDONLY | O_CLOEXEC);
        if (ns < 0 || setns(ns, CLONE_NEWNET) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(10);
        struct lade_loop *l;
        if (lade_loop_new(&l) != LADE_OK)
            _exit(11);
        struct lade_dhcpprobe *p = NULL;
        int err = 0;
        lade_err r = lade_dhcpprobe_start(l, &a.cfg, on_done, NULL, &p, &err);
        _exit(r == LADE_ERR_IO && p == NULL && (err == EPERM || err == EACCES) ? 0 : 12);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_healthy, mark, restore),
        cmocka_unit_test_setup_teardown(test_five_clients, mark, restore),
        cmocka_unit_test_setup_teardown(test_many_clients, mark, restore),
        cmocka_unit_test_setup_teardown(test_dhcp_pool_exhausted, mark, restore),
        cmocka_unit_test_setup_teardown(test_no_server, mark, restore),
        cmocka_unit_test_setup_teardown(test_dhcp_gives_no_dns, mark, restore),
        cmocka_unit_test_setup_teardown(test_no_lease_taken, mark, restore),
        cmocka_unit_test_setup_teardown(test_two_servers, mark, restore),
        cmocka_unit_test_setup_teardown(test_errors, mark, restore),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
