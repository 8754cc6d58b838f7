/* e2e: the charger drives its WiFi and LTE-M bearers (SPEC R1, R12, R13, R19; docs/network.md,
 * docs/bearer.md, docs/wifi-lte.md) — a real lade-charger process and a real hub on loopback,
 * with a scripted wpa_supplicant (a Unix datagram socket) and a scripted LTE-M modem (a
 * pseudo-terminal) played by this process on its own lade_loop.
 *
 * The charger is provisioned with `--wifi-ctrl <socket>` and/or `--lte-device <pty slave>` and no
 * interface names: no DHCP of its own, so WiFi "has an address" from STATUS `ip_address=`, LTE-M
 * is up when registered with a PDP context, and the cloud link is not bound to an interface
 * (routing decides: loopback). Nothing here needs root.
 *
 * Scenarios:
 *   1. WiFi only, channel 6, −60 dBm, with an address: online over wifi; the status says so
 *      (bearer, up, signal, channel, SSID); observations 150 "Wifi" and 809 −60 and the twin's
 *      reported network.bearer "Wifi" reach the portal's service identity at the hub.
 *   2. WiFi on channel 13 (2472 MHz): associated with an address but not usable (R1): not online,
 *      last_reason names the channel; the supplicant roams to channel 1 → online over wifi.
 *   3. LTE-M only: the init sequence (with the user's APN), searching, registered (URC), the PDP
 *      context activated → online over lte; observations 150 "LTE" and 809 (RSRP) at the hub.
 *   4. Both: WiFi weak (−85 dBm, below R1's −75) and LTE-M good (roaming, the modem's own PDP
 *      context) → LTE-M; the WiFi then gets good and the charger stays on LTE-M (R13: an upgrade
 *      waits for upgrade_hold_ms, 60 s, which this test does not sit out).
 * The peers are served only while the test pumps its loop: every wait here pumps it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "harness.h"
#include "harness_charger.h"
#include "harness_hub.h"
#include "lade/loop.h"

#define ONLINE_MS 20000 /* start → online under ASan, with the peers' round trips */
#define NCMDS     512

static struct h_hub hub;
static char svc_token[1200];
static struct hc svc;
static struct lade_loop *loop;

/* ---- the scripted wpa_supplicant --------------------------------------------------------- */

static struct wifi {
    bool on;
    char path[108];
    int fd;
    struct sockaddr_un client; /* the attached client (the charger's driver) */
    socklen_t client_len;
    bool attached;
    char wpa_state[32];
    int freq, rssi;
    bool ip;
    int n_attach, n_detach, n_status, n_signal;
    int last_polled_rssi; /* RSSI in the last SIGNAL_POLL answered */
} wifi;

static void wifi_reply(const struct sockaddr_un *to, socklen_t len, const char *text)
{
    /* a reply to a client that has gone meanwhile fails; the real supplicant shrugs too */
    (void)!sendto(wifi.fd, text, strlen(text), 0, (const struct sockaddr *)to, len);
}

static void wifi_on_io(struct lade_loop *l, int fd, uint32_t events, void *ud)
{
    (void)l;
    (void)events;
    (void)ud;
    char buf[512], out[1024];
    struct sockaddr_un from;
    socklen_t flen = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf - 1, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
    if (n < 0)
        return;
    buf[n] = '\0';
    bool done = !strcmp(wifi.wpa_state, "COMPLETED");
    if (!strcmp(buf, "PING")) {
        wifi_reply(&from, flen, "PONG\n");
    } else if (!strcmp(buf, "ATTACH")) {
        wifi.n_attach++;
        wifi.client = from;
        wifi.client_len = flen;
        wifi.attached = true;
        wifi_reply(&from, flen, "OK\n");
    } else if (!strcmp(buf, "DETACH")) {
        wifi.n_detach++;
        wifi.attached = false;
        wifi_reply(&from, flen, "OK\n");
    } else if (!strcmp(buf, "STATUS")) {
        wifi.n_status++;
        int w =
            snprintf(out, sizeof out, "wpa_state=%s\naddress=02:00:00:00:00:00\n", wifi.wpa_state);
        if (done)
            w += snprintf(out + w, sizeof out - (size_t)w,
                          "bssid=02:00:00:00:01:00\nfreq=%d\nssid=lade site\nid=0\n"
                          "key_mgmt=WPA2-PSK\n",
                          wifi.freq);
        if (done && wifi.ip)
            snprintf(out + w, sizeof out - (size_t)w, "ip_address=192.168.7.20\n");
        wifi_reply(&from, flen, out);
    } else if (!strcmp(buf, "SIGNAL_POLL")) {
        if (!done) {
            wifi_reply(&from, flen, "FAIL\n");
            return;
        }
        wifi.n_signal++;
        wifi.last_polled_rssi = wifi.rssi;
        snprintf(out, sizeof out, "RSSI=%d\nLINKSPEED=65\nNOISE=9999\nFREQUENCY=%d\n", wifi.rssi,
                 wifi.freq);
        wifi_reply(&from, flen, out);
    } else if (!strcmp(buf, "REASSOCIATE") || !strcmp(buf, "RECONNECT")) {
        wifi_reply(&from, flen, "OK\n");
    } else {
        wifi_reply(&from, flen, "UNKNOWN COMMAND\n");
    }
}

/* Associated (COMPLETED) on freq with rssi; ip: STATUS carries ip_address=. */
static void wifi_start(int freq, int rssi, bool ip)
{
    memset(&wifi, 0, sizeof wifi);
    snprintf(wifi.path, sizeof wifi.path, "%s/wlan0", h_tmpdir("wpa"));
    snprintf(wifi.wpa_state, sizeof wifi.wpa_state, "COMPLETED");
    wifi.freq = freq;
    wifi.rssi = rssi;
    wifi.ip = ip;
    wifi.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(wifi.fd >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", wifi.path);
    assert_int_equal(bind(wifi.fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(lade_loop_watch(loop, wifi.fd, LADE_IO_READ, wifi_on_io, NULL), LADE_OK);
    wifi.on = true;
}

static void wifi_stop(void)
{
    if (!wifi.on)
        return;
    lade_loop_unwatch(loop, wifi.fd);
    close(wifi.fd);
    unlink(wifi.path);
    wifi.on = false;
}

/* An unsolicited event to the attached client, as wpa_supplicant sends them. */
static void wifi_event(const char *text)
{
    assert_true(wifi.attached);
    ssize_t n = sendto(wifi.fd, text, strlen(text), 0, (const struct sockaddr *)&wifi.client,
                       wifi.client_len);
    assert_true(n == (ssize_t)strlen(text));
}

/* ---- the scripted modem ------------------------------------------------------------------ */

static struct modem {
    bool on;
    int mfd;    /* pty master: the modem's side */
    int holder; /* a slave fd kept open so the master never sees a hang-up between openings */
    char slave[128];
    char in[512];
    size_t in_len;
    bool echo;                 /* V.250 E1 until ATE0 */
    int stat, rsrp, rssi, pdp; /* +CEREG stat, +CESQ rsrp index, +CSQ rssi, context 1 active */
    char cmds[NCMDS][96];
    int ncmds;
} modem;

static void modem_write(const char *text)
{
    size_t n = strlen(text);
    assert_true(write(modem.mfd, text, n) == (ssize_t)n);
}

/* An information or result line, framed as V.250 says: CR LF text CR LF. */
static void modem_line(const char *text)
{
    char buf[256];
    snprintf(buf, sizeof buf, "\r\n%s\r\n", text);
    modem_write(buf);
}

static void modem_command(const char *cmd)
{
    if (modem.ncmds < NCMDS)
        snprintf(modem.cmds[modem.ncmds++], sizeof modem.cmds[0], "%.95s", cmd);
    if (modem.echo) {
        char e[128];
        snprintf(e, sizeof e, "%.126s\r", cmd);
        modem_write(e);
    }
    char line[160];
    if (!strcmp(cmd, "AT") || !strcmp(cmd, "AT+CMEE=1") || !strcmp(cmd, "AT+CEREG=2") ||
        !strncmp(cmd, "AT+CGDCONT=", 11)) {
        modem_line("OK");
    } else if (!strcmp(cmd, "ATE0")) {
        modem.echo = false;
        modem_line("OK");
    } else if (!strcmp(cmd, "AT+CPIN?")) {
        modem_line("+CPIN: READY");
        modem_line("OK");
    } else if (!strcmp(cmd, "AT+CEREG?")) {
        if (modem.stat == 1 || modem.stat == 5)
            snprintf(line, sizeof line, "+CEREG: 2,%d,\"00C3\",\"0A1B2C3D\",7", modem.stat);
        else
            snprintf(line, sizeof line, "+CEREG: 2,%d", modem.stat);
        modem_line(line);
        modem_line("OK");
    } else if (!strcmp(cmd, "AT+CESQ")) {
        snprintf(line, sizeof line, "+CESQ: 99,99,255,255,20,%d", modem.rsrp);
        modem_line(line);
        modem_line("OK");
    } else if (!strcmp(cmd, "AT+CSQ")) {
        snprintf(line, sizeof line, "+CSQ: %d,99", modem.rssi);
        modem_line(line);
        modem_line("OK");
    } else if (!strcmp(cmd, "AT+CGACT?")) {
        snprintf(line, sizeof line, "+CGACT: 1,%d", modem.pdp);
        modem_line(line);
        modem_line("OK");
    } else if (!strcmp(cmd, "AT+CGACT=1,1")) {
        modem.pdp = 1;
        modem_line("OK");
    } else if (!strcmp(cmd, "AT+CGPADDR=1")) {
        modem_line(modem.pdp ? "+CGPADDR: 1,\"10.64.1.7\"" : "+CGPADDR: 1");
        modem_line("OK");
    } else if (!strcmp(cmd, "AT+COPS?")) {
        modem_line("+COPS: 0,0,\"lade-net\",7");
        modem_line("OK");
    } else {
        modem_line("ERROR");
    }
}

static void modem_on_io(struct lade_loop *l, int fd, uint32_t events, void *ud)
{
    (void)l;
    (void)events;
    (void)ud;
    char buf[256];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0)
        return; /* EAGAIN; no EIO while the holder keeps the slave open */
    for (ssize_t i = 0; i < n; i++) {
        char ch = buf[i];
        if (ch == '\r') {
            modem.in[modem.in_len] = '\0';
            if (modem.in_len > 0)
                modem_command(modem.in);
            modem.in_len = 0;
        } else if (ch != '\n' && modem.in_len < sizeof modem.in - 1) {
            modem.in[modem.in_len++] = ch;
        }
    }
}

/* A modem with registration stat, RSRP index rsrp (dBm = rsrp − 141) and PDP context state. */
static void modem_start(int stat, int rsrp, int pdp)
{
    memset(&modem, 0, sizeof modem);
    modem.echo = true;
    modem.stat = stat;
    modem.rsrp = rsrp;
    modem.rssi = 20;
    modem.pdp = pdp;
    modem.mfd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(modem.mfd >= 0);
    assert_int_equal(grantpt(modem.mfd), 0);
    assert_int_equal(unlockpt(modem.mfd), 0);
    assert_int_equal(ptsname_r(modem.mfd, modem.slave, sizeof modem.slave), 0);
    assert_int_equal(fcntl(modem.mfd, F_SETFL, O_NONBLOCK), 0);
    modem.holder = open(modem.slave, O_RDWR | O_NOCTTY | O_CLOEXEC);
    assert_true(modem.holder >= 0);
    struct termios t;
    assert_int_equal(tcgetattr(modem.holder, &t), 0);
    cfmakeraw(&t);
    assert_int_equal(tcsetattr(modem.holder, TCSANOW, &t), 0);
    assert_int_equal(lade_loop_watch(loop, modem.mfd, LADE_IO_READ, modem_on_io, NULL), LADE_OK);
    modem.on = true;
}

static void modem_stop(void)
{
    if (!modem.on)
        return;
    lade_loop_unwatch(loop, modem.mfd);
    close(modem.mfd);
    close(modem.holder);
    modem.on = false;
}

static int modem_count(const char *cmd)
{
    int n = 0;
    for (int i = 0; i < modem.ncmds; i++)
        n += !strcmp(modem.cmds[i], cmd);
    return n;
}

/* ---- waiting (always pumping the peers) -------------------------------------------------- */

static void pump(uint32_t ms)
{
    uint64_t end = h_now_ms() + ms;
    do
        assert_int_equal(lade_loop_run_once(loop, 10), LADE_OK);
    while (h_now_ms() < end);
}

/* The status value at a dotted path printed as JSON ("\"wifi\"", "true", "-60"); "" when the
 * file or the key is missing. */
static void status_val(const struct h_charger *c, const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    char *s = h_read_file(c->status);
    cJSON *o = s ? cJSON_Parse(s) : NULL;
    free(s);
    const cJSON *v = o;
    char p[128], *save = NULL;
    snprintf(p, sizeof p, "%s", path);
    for (char *k = strtok_r(p, ".", &save); k && v; k = strtok_r(NULL, ".", &save))
        v = cJSON_GetObjectItemCaseSensitive(v, k);
    if (v) {
        char *t = cJSON_PrintUnformatted(v);
        snprintf(out, cap, "%s", t ? t : "");
        free(t);
    }
    cJSON_Delete(o);
}

/* Pumps until the status value at path equals want (contains it, when partial). */
static bool wait_val_(const struct h_charger *c, const char *path, const char *want, bool partial,
                      uint32_t timeout_ms)
{
    uint64_t end = h_now_ms() + timeout_ms;
    char v[512];
    for (;;) {
        status_val(c, path, v, sizeof v);
        if (partial ? strstr(v, want) != NULL : strcmp(v, want) == 0)
            return true;
        if (h_now_ms() >= end)
            break;
        pump(20);
    }
    char why[700];
    snprintf(why, sizeof why, "%s is %s, not %s%s", path, v[0] ? v : "(missing)",
             partial ? "containing " : "", want);
    h_charger_dump(c, why);
    return false;
}
#define wait_val(c, path, want, ms) wait_val_(c, path, want, false, ms)
#define wait_has(c, path, want, ms) wait_val_(c, path, want, true, ms)

/* Pumps for ms; false (with a dump) if the status value at path ever equals bad meanwhile. */
static bool never_val(const struct h_charger *c, const char *path, const char *bad, uint32_t ms)
{
    uint64_t end = h_now_ms() + ms;
    char v[512];
    do {
        status_val(c, path, v, sizeof v);
        if (!strcmp(v, bad)) {
            char why[600];
            snprintf(why, sizeof why, "%s became %s", path, bad);
            h_charger_dump(c, why);
            return false;
        }
        pump(50);
    } while (h_now_ms() < end);
    return true;
}

static bool is_val(const struct h_charger *c, const char *path, const char *want)
{
    return wait_val(c, path, want, 0);
}

/* True when the log says first before it says then (then may be missing): the order of what the
 * agent did. */
static bool log_before(const struct h_charger *c, const char *first, const char *then)
{
    char *l = h_read_file(c->log);
    const char *a = l ? strstr(l, first) : NULL;
    const char *b = l ? strstr(l, then) : NULL;
    bool ok = a && (!b || a < b);
    free(l);
    if (!ok) {
        char why[300];
        snprintf(why, sizeof why, "the log does not say '%s' before '%s'", first, then);
        h_charger_dump(c, why);
    }
    return ok;
}

/* ---- what the portal sees at the hub ----------------------------------------------------- */

static void svc_connect(void)
{
    memset(&svc, 0, sizeof svc);
    assert_int_equal(
        hc_connect(&svc, hub.port, hub.ca, hub.host, "svc:portal", "svc:portal", svc_token, true),
        0);
    assert_int_equal(hc_subscribe(&svc, "devices/+/messages/events/#", 1), 1);
    assert_int_equal(hc_subscribe(&svc, "$lade/svc/#", 0), 0);
}

struct want {
    const char *prefix; /* topic prefix */
    const char *after;  /* the needle is looked for after this (NULL: anywhere) */
    const char *needle;
    bool seen;
};

/* Reads the portal's messages (pumping the peers in between) until every want was seen. */
static bool svc_expect(struct want *w, size_t n, uint32_t timeout_ms)
{
    uint64_t end = h_now_ms() + timeout_ms;
    size_t left = n;
    while (left && h_now_ms() < end) {
        struct hc_msg m;
        int r = hc_recv(&svc, &m, 10);
        assert_true(r >= 0);
        for (size_t i = 0; r == 1 && i < n; i++) {
            if (w[i].seen || strncmp(m.topic, w[i].prefix, strlen(w[i].prefix)) != 0)
                continue;
            const char *body = w[i].after ? strstr(m.payload, w[i].after) : m.payload;
            if (body && strstr(body, w[i].needle)) {
                w[i].seen = true;
                left--;
            }
        }
        assert_int_equal(lade_loop_run_once(loop, 0), LADE_OK);
    }
    for (size_t i = 0; i < n; i++)
        if (!w[i].seen)
            fprintf(stderr, "the portal never saw %s on %s*\n", w[i].needle, w[i].prefix);
    return left == 0;
}

/* ---- rig --------------------------------------------------------------------------------- */

static const char user_conf[] = "keepalive_s = 30\n"
                                "report_min_interval_s = 1\n"
                                "telemetry_interval_s = 30\n"
                                "token_ttl_s = 3600\n"
                                "backoff_min_ms = 200\n"
                                "backoff_max_ms = 1000\n"
                                "connect_timeout_ms = 3000\n"
                                "lte_apn = lade.test\n"
                                "log_level = debug\n";

static void provision(struct h_charger *c, const char *id)
{
    char fargs[600];
    int n = snprintf(fargs, sizeof fargs, "--evse sim");
    if (wifi.on)
        n += snprintf(fargs + n, sizeof fargs - (size_t)n, " --wifi-ctrl '%s'", wifi.path);
    if (modem.on)
        snprintf(fargs + n, sizeof fargs - (size_t)n, " --lte-device '%s'", modem.slave);
    h_charger_provision(c, &hub, id, fargs, user_conf);
}

static int setup(void **state)
{
    (void)state;
    h_hub_prepare(&hub, "hub.lade.test");
    char hosts[700];
    snprintf(hosts, sizeof hosts, "%s/hosts", hub.dir);
    h_write_file(hosts, "127.0.0.1 hub.lade.test\n");
    h_service_token(&hub, "portal", svc_token, sizeof svc_token);
    h_hub_start(&hub, NULL);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hc_close_all();
    h_hub_stop(&hub);
    return 0;
}

static int each_setup(void **state)
{
    (void)state;
    assert_int_equal(lade_loop_new(&loop), LADE_OK);
    svc_connect();
    return 0;
}

static int each_teardown(void **state)
{
    (void)state;
    hc_close(&svc);
    wifi_stop();
    modem_stop();
    lade_loop_free(loop);
    loop = NULL;
    return 0;
}

static unsigned long long since(uint64_t t0)
{
    return (unsigned long long)(h_now_ms() - t0);
}

/* ---- scenarios --------------------------------------------------------------------------- */

/* 1. WiFi only, 2.4 GHz channel 6 at −60 dBm with an address: online over WiFi. */
static void test_wifi(void **state)
{
    (void)state;
    uint64_t t0 = h_now_ms();
    wifi_start(2437, -60, true);
    struct h_charger c;
    provision(&c, "LDEBEAR001");
    h_charger_start(&c);
    assert_true(wait_val(&c, "link", "\"online\"", ONLINE_MS));
    fprintf(stderr, "wifi: online %llu ms after the start\n", since(t0));
    char buf[2048];
    status_val(&c, "net", buf, sizeof buf);
    fprintf(stderr, "wifi: status net %s\n", buf);
    assert_true(is_val(&c, "net.managed", "true"));
    assert_true(is_val(&c, "net.bearer", "\"wifi\""));
    assert_true(is_val(&c, "net.bearers.wifi.up", "true"));
    assert_true(is_val(&c, "net.bearers.wifi.usable", "\"ok\""));
    assert_true(is_val(&c, "net.bearers.wifi.signal_dbm", "-60"));
    assert_true(is_val(&c, "net.bearers.wifi.channel", "6"));
    assert_true(is_val(&c, "net.bearers.wifi.state", "\"COMPLETED\""));
    assert_true(is_val(&c, "net.bearers.wifi.ssid", "\"lade site\""));
    assert_true(is_val(&c, "net.bearers.lte", "")); /* not fitted: not listed */
    assert_true(wifi.n_attach >= 1);
    assert_true(h_file_count(c.log, "bearer wifi in use") == 1);
    /* The cloud attempt waited for the bearer manager's choice. */
    assert_true(log_before(&c, "bearer wifi in use", "link waiting -> connecting"));

    /* What the portal sees: the observations (150 bearer, 809 signal) and the twin. */
    char obs[80], rep[80];
    snprintf(obs, sizeof obs, "devices/%s/messages/events/", c.id);
    snprintf(rep, sizeof rep, "$lade/svc/reported/%s/", c.id);
    struct want w[] = {
        {obs, "\"o\":{", "\"150\":\"Wifi\"", false},
        {obs, "\"o\":{", "\"809\":-60", false},
        {rep, "\"network\":{", "\"bearer\":\"Wifi\"", false},
        {rep, "\"wifi\":{", "\"signalDbm\":-60", false},
    };
    assert_true(svc_expect(w, sizeof w / sizeof w[0], 15000));
    fprintf(stderr, "wifi: observations and twin at the hub %llu ms after the start\n", since(t0));

    h_charger_stop(&c);
    pump(300);
    assert_int_equal(wifi.n_detach, 1); /* the driver let go of the supplicant on the way out */
    fprintf(stderr, "wifi: scenario %llu ms\n", since(t0));
}

/* 2. WiFi on channel 13: associated with an address, not usable (R1) → not online; the
 * supplicant roams to channel 1 → online. */
static void test_wifi_bad_channel(void **state)
{
    (void)state;
    uint64_t t0 = h_now_ms();
    wifi_start(2472, -50, true);
    struct h_charger c;
    provision(&c, "LDEBEAR002");
    h_charger_start(&c);
    assert_true(wait_has(&c, "last_reason",
                         "waiting for a network address: wifi bearer is not a 2.4 GHz channel 1-11",
                         ONLINE_MS));
    fprintf(stderr, "wifi ch 13: refused %llu ms after the start\n", since(t0));
    assert_true(wifi.n_signal >= 1); /* the driver has seen the channel, with the signal */
    assert_true(never_val(&c, "link", "\"online\"", 3000));
    assert_true(is_val(&c, "net.bearer", "\"none\""));
    assert_true(is_val(&c, "connects", "0"));
    h_charger_expect_running(&c);

    /* Roamed to channel 1: the CONNECTED event makes the driver read STATUS again. */
    uint64_t t1 = h_now_ms();
    wifi.freq = 2412;
    wifi_event(
        "<3>CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:01:00 completed [id=0 id_str=]");
    assert_true(wait_val(&c, "link", "\"online\"", ONLINE_MS));
    fprintf(stderr, "wifi ch 1: online %llu ms after the roam\n", since(t1));
    assert_true(is_val(&c, "net.bearer", "\"wifi\""));
    assert_true(is_val(&c, "net.bearers.wifi.channel", "1"));
    assert_true(is_val(&c, "net.bearers.wifi.usable", "\"ok\""));
    h_charger_stop(&c);
    fprintf(stderr, "wifi ch 13: scenario %llu ms\n", since(t0));
}

/* 3. LTE-M only: init, searching, registered (URC), PDP context activated → online over LTE. */
static void test_lte(void **state)
{
    (void)state;
    uint64_t t0 = h_now_ms();
    modem_start(2, 41 /* −100 dBm */, 0);
    struct h_charger c;
    provision(&c, "LDEBEAR003");
    h_charger_start(&c);
    /* The init sequence in order (the user's APN included), then the first poll. */
    uint64_t end = h_now_ms() + ONLINE_MS;
    while (modem_count("AT+CGACT?") + modem_count("AT+CSQ") == 0 && h_now_ms() < end)
        pump(20);
    const char *init[] = {"AT",       "ATE0",       "AT+CMEE=1",
                          "AT+CPIN?", "AT+CEREG=2", "AT+CGDCONT=1,\"IP\",\"lade.test\""};
    assert_true(modem.ncmds >= 6);
    for (int i = 0; i < 6; i++)
        assert_string_equal(modem.cmds[i], init[i]);
    assert_true(modem_count("AT+CEREG?") >= 1);
    /* Searching: no bearer, no cloud attempt. */
    assert_true(wait_has(&c, "last_reason",
                         "waiting for a network address: lte bearer is link down", 5000));
    assert_true(never_val(&c, "link", "\"online\"", 1000));
    assert_int_equal(modem_count("AT+CGACT=1,1"), 0);
    assert_true(is_val(&c, "connects", "0"));

    /* Registered (home network, URC): the driver activates the context; the charger connects. */
    uint64_t t1 = h_now_ms();
    modem.stat = 1;
    modem_line("+CEREG: 1,\"00C3\",\"0A1B2C3D\",7");
    assert_true(wait_val(&c, "link", "\"online\"", ONLINE_MS));
    fprintf(stderr, "lte: online %llu ms after the registration\n", since(t1));
    assert_int_equal(modem_count("AT+CGACT=1,1"), 1);
    assert_true(is_val(&c, "net.bearer", "\"lte\""));
    assert_true(is_val(&c, "net.bearers.lte.up", "true"));
    assert_true(is_val(&c, "net.bearers.lte.usable", "\"ok\""));
    assert_true(is_val(&c, "net.bearers.lte.signal_dbm", "-100"));
    assert_true(is_val(&c, "net.bearers.lte.sim", "\"READY\""));
    assert_true(is_val(&c, "net.bearers.wifi", "")); /* not fitted: not listed */
    assert_true(h_file_count(c.log, "bearer lte in use") == 1);
    assert_true(log_before(&c, "bearer lte in use", "link waiting -> connecting"));

    char obs[80], rep[80];
    snprintf(obs, sizeof obs, "devices/%s/messages/events/", c.id);
    snprintf(rep, sizeof rep, "$lade/svc/reported/%s/", c.id);
    struct want w[] = {
        {obs, "\"o\":{", "\"150\":\"LTE\"", false},
        {obs, "\"o\":{", "\"809\":-100", false},
        {rep, "\"network\":{", "\"bearer\":\"LTE\"", false},
    };
    assert_true(svc_expect(w, sizeof w / sizeof w[0], 15000));
    h_charger_stop(&c);
    fprintf(stderr, "lte: scenario %llu ms\n", since(t0));
}

/* 4. Both: WiFi weak, LTE-M good → LTE-M. The WiFi gets good: no switch within seconds (R13). */
static void test_both(void **state)
{
    (void)state;
    uint64_t t0 = h_now_ms();
    wifi_start(2437, -85, true);
    modem_start(5 /* roaming */, 51 /* −90 dBm */, 1 /* the modem's own default context */);
    struct h_charger c;
    provision(&c, "LDEBEAR004");
    h_charger_start(&c);
    assert_true(wait_val(&c, "link", "\"online\"", ONLINE_MS));
    fprintf(stderr, "both: online %llu ms after the start\n", since(t0));
    assert_true(is_val(&c, "net.bearer", "\"lte\""));
    assert_true(is_val(&c, "net.bearers.lte.up", "true"));
    assert_true(is_val(&c, "net.bearers.lte.signal_dbm", "-90"));
    assert_true(is_val(&c, "net.bearers.wifi.up", "true"));
    assert_true(is_val(&c, "net.bearers.wifi.signal_dbm", "-85"));
    assert_true(is_val(&c, "net.bearers.wifi.usable", "\"weak signal\""));
    assert_int_equal(modem_count("AT+CGACT=1,1"), 0); /* already active: not activated again */
    assert_int_equal(h_file_count(c.log, "bearer wifi in use"), 0);
    /* The weak WiFi, associated with an address before the modem registered, did not carry a
     * cloud attempt: the charger connected once LTE-M was chosen (the link bound to it). */
    assert_true(log_before(&c, "bearer lte in use", "link waiting -> connecting"));

    char obs[80];
    snprintf(obs, sizeof obs, "devices/%s/messages/events/", c.id);
    struct want w[] = {
        {obs, "\"o\":{", "\"150\":\"LTE\"", false},
        {obs, "\"o\":{", "\"809\":-90", false},
    };
    assert_true(svc_expect(w, sizeof w / sizeof w[0], 15000));

    /* The WiFi gets good (the supplicant's signal monitor, then its polls): usable, but the
     * charger stays on LTE-M — an upgrade waits until the WiFi has been usable for a minute. */
    int polls = wifi.n_signal;
    wifi.rssi = -55;
    wifi_event("<3>CTRL-EVENT-SIGNAL-CHANGE above=1 signal=-55 noise=-95 txrate=65000");
    assert_true(never_val(&c, "net.bearer", "\"wifi\"", 6000));
    assert_true(wifi.n_signal > polls && wifi.last_polled_rssi == -55); /* a poll saw it too */
    assert_true(is_val(&c, "net.bearer", "\"lte\""));
    assert_true(is_val(&c, "link", "\"online\""));
    assert_true(is_val(&c, "connects", "1")); /* never redialled */
    assert_int_equal(h_file_count(c.log, "bearer wifi in use"), 0);
    assert_int_equal(h_file_count(c.log, "bearer changed"), 0);
    h_charger_stop(&c);
    fprintf(stderr, "both: scenario %llu ms\n", since(t0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wifi, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_wifi_bad_channel, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_lte, each_setup, each_teardown),
        cmocka_unit_test_setup_teardown(test_both, each_setup, each_teardown),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
