/* e2e: the charger gets trusted time before it connects (SPEC R6) — a real lade-charger, a real
 * hub and a real chronyd (-x: it never touches this machine's clock), all on 127.0.0.0/8.
 *
 *   - time_source = ntp and the NTP host answers → time trusted, then online; the status file
 *     says so;
 *   - the NTP host does not answer → no cloud login at all (no SAS token on an untrusted
 *     clock), the status says it waits for trusted time — and the car charges on the offline
 *     current meanwhile (charging never waits for the cloud).
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
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "harness_charger.h"

#define NTP_IP "127.79.0.1"

static struct h_hub hub;
static uint16_t ntp_port;

static uint16_t free_udp_port_on(const char *ip)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, ip, &a.sin_addr);
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static bool chrony_answers(uint16_t port, uint32_t timeout_ms)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, NTP_IP, &a.sin_addr);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 200000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    uint64_t end = h_now_ms() + timeout_ms;
    bool ok = false;
    while (!ok && h_now_ms() < end) {
        uint8_t req[48] = {0x23};
        req[47] = 1;
        (void)sendto(fd, req, sizeof req, 0, (struct sockaddr *)&a, sizeof a);
        uint8_t rep[64];
        ssize_t n = recv(fd, rep, sizeof rep, 0);
        ok = n >= 48 && (rep[0] & 7) == 4 && rep[1] != 0;
    }
    close(fd);
    return ok;
}

static int setup(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        fprintf(stderr, "test_charger_time: chronyd must run as root here\n");
        return -1;
    }
    const char *bin = access("/usr/sbin/chronyd", X_OK) == 0 ? "/usr/sbin/chronyd" : NULL;
    if (!bin) {
        fprintf(stderr, "test_charger_time: chronyd not found (scripts/install-deps.sh)\n");
        return -1;
    }
    h_hub_prepare(&hub, "hub.lade.test");
    char hosts[700];
    snprintf(hosts, sizeof hosts, "%s/hosts", hub.dir);
    h_write_file(hosts, "127.0.0.1 hub.lade.test\n");
    h_hub_start(&hub, NULL);
    const char *dir = h_tmpdir("chgtime");
    ntp_port = free_udp_port_on(NTP_IP);
    char conf[700], log[700], text[1024];
    snprintf(conf, sizeof conf, "%s/chrony.conf", dir);
    snprintf(log, sizeof log, "%s/chrony.log", dir);
    snprintf(text, sizeof text,
             "port %u\nbindaddress %s\nlocal stratum 8\nallow 127.0.0.0/8\n"
             "driftfile %s/chrony.drift\npidfile %s/chrony.pid\ncmdport 0\nbindcmdaddress /\n",
             ntp_port, NTP_IP, dir, dir);
    h_write_file(conf, text);
    const char *argv[] = {bin, "-4", "-x", "-d", "-u", "root", "-f", conf, NULL};
    h_spawn(argv, NULL, log);
    if (!chrony_answers(ntp_port, 10000)) {
        char *l = h_read_file(log);
        fprintf(stderr, "test_charger_time: chronyd did not answer:\n%s\n", l ? l : "");
        free(l);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    h_hub_stop(&hub);
    return 0;
}

static void provision(struct h_charger *c, const char *id, uint16_t port)
{
    char fargs[256];
    snprintf(fargs, sizeof fargs, "--evse sim --time-source ntp --ntp-host %s --ntp-port %u",
             NTP_IP, port);
    h_charger_provision(c, &hub, id, fargs,
                        "backoff_min_ms = 200\nbackoff_max_ms = 1000\n"
                        "offline_current_a = 10\noffline_phases = 3\nsim_car = 3p22kw\n"
                        "report_min_interval_s = 1\nlog_level = debug\n");
}

static void test_ntp_then_online(void **state)
{
    (void)state;
    struct h_charger c;
    provision(&c, "LDETIME001", ntp_port);
    uint64_t t0 = h_now_ms();
    h_charger_start(&c);
    assert_true(h_charger_wait_status(&c, "\"trusted\":true", 30000));
    assert_true(h_charger_wait_status(&c, "\"link\":\"online\"", 30000));
    fprintf(stderr, "trusted time and online after %llu ms\n",
            (unsigned long long)(h_now_ms() - t0));
    h_charger_stop(&c);
}

static void test_no_ntp_no_login_but_charges(void **state)
{
    (void)state;
    struct h_charger c;
    /* Nothing answers on this port. */
    provision(&c, "LDETIME002", free_udp_port_on(NTP_IP));
    h_charger_start(&c);
    assert_true(h_charger_wait_status(&c, "waiting for trusted time", 20000));
    /* The car charges on the offline current (10 A) while the cloud link waits. */
    assert_true(h_charger_wait_num(&c, "offer_ma", 10000, 20000));
    /* ... and no connection to the hub is ever tried (no token on an untrusted clock). */
    uint64_t end = h_now_ms() + 5000;
    while (h_now_ms() < end)
        usleep(200000);
    assert_true(h_charger_num(&c, "connects") == 0);
    char *s = h_read_file(c.status);
    assert_non_null(s);
    assert_non_null(strstr(s, "\"trusted\":false"));
    assert_non_null(strstr(s, "\"link\":\"waiting\""));
    free(s);
    h_charger_expect_running(&c);
    h_charger_stop(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ntp_then_online),
        cmocka_unit_test(test_no_ntp_no_login_but_charges),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
