/* e2e: the WiFi driver (src/port/linux/wpa.c) against a scripted wpa_supplicant.
 *
 * The fake supplicant is a Unix datagram socket in a temp dir, served from the same event loop
 * as the driver: it answers PING, ATTACH, DETACH, STATUS, SIGNAL_POLL, REASSOCIATE, RECONNECT
 * and SCAN_RESULTS from its scripted state and sends events to the attached client. Cases:
 * association, a weak signal (−80 dBm), 5 GHz and channel 13, a disconnect event, the
 * supplicant restarting (socket gone and back, with and without TERMINATING), a supplicant that
 * stops answering, REASSOCIATE (and RECONNECT when it is refused), the address rule, a
 * temporarily disabled network, a raw request and disabling. Each link state is also fed to the
 * bearer manager to check the verdict R1 asks for. Waits poll with deadlines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "lade/loop.h"
#include "lade/wpa.h"

#define WAIT_MS 5000

/* ---- the fake wpa_supplicant ------------------------------------------------------------- */

struct fake {
    struct lade_loop *loop;
    char path[108];
    int fd;
    struct sockaddr_un client; /* the attached client */
    socklen_t client_len;
    bool attached;
    bool silent;         /* stop answering */
    bool refuse_reassoc; /* answer REASSOCIATE with FAIL */
    /* scripted state */
    char wpa_state[32];
    int freq, rssi;
    bool ip;
    /* what it saw */
    int n_ping, n_attach, n_detach, n_status, n_signal, n_reassoc, n_reconnect;
};

/* A reply to a client that has gone meanwhile fails; the real supplicant shrugs too. */
static bool fake_reply(struct fake *f, const struct sockaddr_un *to, socklen_t len,
                       const char *text)
{
    ssize_t r = sendto(f->fd, text, strlen(text), 0, (const struct sockaddr *)to, len);
    return r == (ssize_t)strlen(text);
}

static void fake_on_io(struct lade_loop *loop, int fd, uint32_t events, void *ud)
{
    (void)loop;
    (void)events;
    struct fake *f = ud;
    char buf[512];
    struct sockaddr_un from;
    socklen_t flen = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf - 1, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
    if (n < 0)
        return;
    buf[n] = '\0';
    if (f->silent)
        return;
    char out[1024];
    if (!strcmp(buf, "PING")) {
        f->n_ping++;
        fake_reply(f, &from, flen, "PONG\n");
    } else if (!strcmp(buf, "ATTACH")) {
        f->n_attach++;
        f->client = from;
        f->client_len = flen;
        f->attached = true;
        fake_reply(f, &from, flen, "OK\n");
    } else if (!strcmp(buf, "DETACH")) {
        f->n_detach++;
        f->attached = false;
        fake_reply(f, &from, flen, "OK\n");
    } else if (!strcmp(buf, "STATUS")) {
        f->n_status++;
        bool done = !strcmp(f->wpa_state, "COMPLETED");
        int w =
            snprintf(out, sizeof out, "wpa_state=%s\naddress=02:00:00:00:00:00\n", f->wpa_state);
        if (done)
            w += snprintf(out + w, sizeof out - (size_t)w,
                          "bssid=02:00:00:00:01:00\nfreq=%d\nssid=lade site\nid=0\n"
                          "key_mgmt=WPA2-PSK\n",
                          f->freq);
        if (done && f->ip)
            snprintf(out + w, sizeof out - (size_t)w, "ip_address=192.168.7.20\n");
        fake_reply(f, &from, flen, out);
    } else if (!strcmp(buf, "SIGNAL_POLL")) {
        f->n_signal++;
        if (strcmp(f->wpa_state, "COMPLETED") != 0) {
            fake_reply(f, &from, flen, "FAIL\n");
            return;
        }
        snprintf(out, sizeof out, "RSSI=%d\nLINKSPEED=65\nNOISE=9999\nFREQUENCY=%d\n", f->rssi,
                 f->freq);
        fake_reply(f, &from, flen, out);
    } else if (!strcmp(buf, "REASSOCIATE")) {
        f->n_reassoc++;
        fake_reply(f, &from, flen, f->refuse_reassoc ? "FAIL\n" : "OK\n");
    } else if (!strcmp(buf, "RECONNECT")) {
        f->n_reconnect++;
        fake_reply(f, &from, flen, "OK\n");
    } else if (!strcmp(buf, "SCAN_RESULTS")) {
        fake_reply(f, &from, flen,
                   "bssid / frequency / signal level / flags / ssid\n"
                   "02:00:00:00:01:00\t2437\t-48\t[WPA2-PSK-CCMP][ESS]\tlade site\n"
                   "02:00:00:00:02:00\t5180\t-70\t[WPA2-PSK-CCMP][ESS]\tfive\n");
    } else {
        fake_reply(f, &from, flen, "UNKNOWN COMMAND\n");
    }
}

static void fake_start(struct fake *f)
{
    f->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(f->fd >= 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", f->path);
    unlink(f->path);
    assert_int_equal(bind(f->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(lade_loop_watch(f->loop, f->fd, LADE_IO_READ, fake_on_io, f), LADE_OK);
    f->attached = false;
}

static void fake_stop(struct fake *f)
{
    if (f->fd < 0)
        return;
    lade_loop_unwatch(f->loop, f->fd);
    close(f->fd);
    f->fd = -1;
    unlink(f->path);
    f->attached = false;
}

static void fake_event(struct fake *f, const char *text)
{
    assert_true(f->attached);
    assert_true(fake_reply(f, &f->client, f->client_len, text));
}

static void fake_associate(struct fake *f, int freq, int rssi, bool ip)
{
    snprintf(f->wpa_state, sizeof f->wpa_state, "COMPLETED");
    f->freq = freq;
    f->rssi = rssi;
    f->ip = ip;
}

/* ---- the rig ----------------------------------------------------------------------------- */

struct rig {
    struct lade_loop *loop;
    struct fake fake;
    struct lade_wpa *w;
    struct lade_bearer_link_state link;
    int reports;
    struct lade_bearer bearer;
    int16_t watch_signal; /* on_link notes whether this signal was ever reported */
    bool watch_seen;
    uint64_t t0;
};

static void on_link(void *ud, const struct lade_bearer_link_state *ls)
{
    struct rig *r = ud;
    r->link = *ls;
    r->reports++;
    if (ls->signal == r->watch_signal)
        r->watch_seen = true;
    /* As the agent will: every report goes to the bearer manager. */
    assert_int_equal(lade_bearer_link(&r->bearer, LADE_BEARER_WIFI, ls, h_now_ms()), LADE_OK);
}

static void rig_start(struct rig *r, uint32_t poll_ms, bool need_address)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(lade_loop_new(&r->loop), LADE_OK);
    const char *dir = h_tmpdir("wpa");
    r->fake.loop = r->loop;
    r->fake.fd = -1;
    snprintf(r->fake.path, sizeof r->fake.path, "%s/wlan0", dir);
    snprintf(r->fake.wpa_state, sizeof r->fake.wpa_state, "SCANNING");
    fake_start(&r->fake);

    struct lade_bearer_config bc;
    lade_bearer_config_default(&bc);
    bc.present[LADE_BEARER_WIFI] = true;
    assert_int_equal(lade_bearer_init(&r->bearer, &bc, h_now_ms()), LADE_OK);

    struct lade_wpa_config c;
    lade_wpa_config_default(&c);
    c.ctrl_path = r->fake.path;
    c.client_dir = dir;
    c.request_timeout_ms = 300;
    c.poll_ms = poll_ms;
    c.retry_min_ms = 50;
    c.retry_max_ms = 400;
    c.need_address = need_address;
    assert_int_equal(lade_wpa_new(r->loop, &c, on_link, r, &r->w), LADE_OK);
    assert_int_equal(lade_wpa_set_enabled(r->w, true), LADE_OK);
    r->t0 = h_now_ms();
}

static void rig_stop(struct rig *r)
{
    lade_wpa_free(r->w);
    fake_stop(&r->fake);
    lade_loop_free(r->loop);
}

typedef bool (*cond_fn)(struct rig *r);

static bool wait_for(struct rig *r, cond_fn cond, uint32_t timeout_ms)
{
    uint64_t end = h_now_ms() + timeout_ms;
    while (!cond(r)) {
        if (h_now_ms() > end)
            return false;
        assert_int_equal(lade_loop_run_once(r->loop, 20), LADE_OK);
    }
    return true;
}

static bool attached(struct rig *r)
{
    struct lade_wpa_info i;
    lade_wpa_info(r->w, &i);
    return i.attached && r->fake.attached && r->reports > 0;
}
static bool link_up(struct rig *r)
{
    return r->link.up;
}
static bool link_down(struct rig *r)
{
    return !r->link.up;
}
static bool weak_signal(struct rig *r)
{
    return r->link.signal == -80;
}
static bool signal_watched(struct rig *r)
{
    return r->watch_seen;
}
static bool on_5ghz(struct rig *r)
{
    return r->link.freq_mhz == 5180;
}
static bool on_ch13(struct rig *r)
{
    return r->link.channel == 13;
}
static bool detached(struct rig *r)
{
    struct lade_wpa_info i;
    lade_wpa_info(r->w, &i);
    return !i.attached;
}
static bool reattached_once(struct rig *r)
{
    struct lade_wpa_info i;
    lade_wpa_info(r->w, &i);
    return i.attached && i.reconnects == 1 && r->fake.attached;
}
static bool reconnect_sent(struct rig *r)
{
    return r->fake.n_reconnect == 1;
}
static bool reassoc_sent(struct rig *r)
{
    return r->fake.n_reassoc == 1;
}

static enum lade_bearer_why verdict(struct rig *r)
{
    return lade_bearer_usable(&r->bearer, LADE_BEARER_WIFI, h_now_ms());
}

/* Association: SCANNING at first (down), then CONNECTED → up with signal and channel. */
static void test_association(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, 60000, true); /* no polling: only events move the link */
    assert_true(wait_for(&r, attached, WAIT_MS));
    assert_false(r.link.up);
    assert_int_equal(r.link.signal, LADE_BEARER_SIGNAL_UNKNOWN);
    assert_true(r.fake.n_ping >= 1);
    assert_int_equal(verdict(&r), LADE_BEARER_LINK_DOWN);

    fake_associate(&r.fake, 2437, -55, true);
    fake_event(
        &r.fake,
        "<3>CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:01:00 completed [id=0 id_str=]");
    assert_true(wait_for(&r, link_up, WAIT_MS));
    assert_int_equal(r.link.signal, -55); /* up is reported with the signal, never before it */
    assert_int_equal(r.link.freq_mhz, 2437);
    assert_int_equal(r.link.channel, 6);
    assert_int_equal(verdict(&r), LADE_BEARER_OK);
    struct lade_wpa_info i;
    lade_wpa_info(r.w, &i);
    assert_int_equal(i.state, LADE_WPA_STATE_COMPLETED);
    assert_string_equal(i.ssid, "lade site");
    assert_string_equal(i.bssid, "02:00:00:00:01:00");
    assert_string_equal(i.ip_address, "192.168.7.20");
    assert_int_equal(i.linkspeed_mbps, 65);
    rig_stop(&r);
}

/* The signal falls to −80 dBm: reported at the next poll; the bearer manager calls it weak. */
static void test_weak_signal(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, 100, true);
    fake_associate(&r.fake, 2412, -60, true);
    assert_true(wait_for(&r, link_up, WAIT_MS));
    assert_int_equal(r.link.channel, 1);
    assert_int_equal(verdict(&r), LADE_BEARER_OK);
    r.fake.rssi = -80;
    assert_true(wait_for(&r, weak_signal, WAIT_MS));
    assert_true(r.link.up);
    assert_int_equal(verdict(&r), LADE_BEARER_WEAK);
    /* The supplicant's signal monitor can say it before the next poll. */
    r.watch_signal = -52;
    fake_event(&r.fake, "<3>CTRL-EVENT-SIGNAL-CHANGE above=1 signal=-52 noise=-95 txrate=65000");
    assert_true(wait_for(&r, signal_watched, WAIT_MS));
    rig_stop(&r);
}

/* 5 GHz, then 2.4 GHz channel 13: associated and up, but not usable under R1. */
static void test_bad_channels(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, 100, true);
    fake_associate(&r.fake, 5180, -50, true);
    assert_true(wait_for(&r, on_5ghz, WAIT_MS));
    assert_true(r.link.up);
    assert_int_equal(r.link.channel, 36);
    assert_int_equal(verdict(&r), LADE_BEARER_BAD_CHANNEL);
    r.fake.freq = 2472;
    assert_true(wait_for(&r, on_ch13, WAIT_MS));
    assert_true(r.link.up);
    assert_int_equal(r.link.freq_mhz, 2472);
    assert_int_equal(verdict(&r), LADE_BEARER_BAD_CHANNEL);
    rig_stop(&r);
}

/* A disconnect event takes the link down at once (no poll in between). */
static void test_disconnect_event(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, 60000, true);
    fake_associate(&r.fake, 2437, -55, true);
    assert_true(wait_for(&r, link_up, WAIT_MS));
    snprintf(r.fake.wpa_state, sizeof r.fake.wpa_state, "DISCONNECTED");
    fake_event(&r.fake,
               "<3>CTRL-EVENT-DISCONNECTED bssid=02:00:00:00:01:00 reason=4 locally_generated=0");
    assert_true(wait_for(&r, link_down, WAIT_MS));
    assert_int_equal(r.link.signal, LADE_BEARER_SIGNAL_UNKNOWN);
    assert_int_equal(r.link.channel, 0);
    struct lade_wpa_info i;
    lade_wpa_info(r.w, &i);
    assert_int_equal(i.last_disconnect_reason, 4);
    assert_int_equal(verdict(&r), LADE_BEARER_LINK_DOWN);

    /* A wrong key: the network is disabled for a while; the reason is kept for R19. */
    fake_event(&r.fake, "<3>CTRL-EVENT-SSID-TEMP-DISABLED id=0 ssid=\"lade site\" auth_failures=1 "
                        "duration=10 reason=WRONG_KEY");
    uint64_t end = h_now_ms() + WAIT_MS;
    do {
        assert_int_equal(lade_loop_run_once(r.loop, 5), LADE_OK);
        lade_wpa_info(r.w, &i);
    } while (strcmp(i.last_temp_disabled, "WRONG_KEY") != 0 && h_now_ms() < end);
    assert_string_equal(i.last_temp_disabled, "WRONG_KEY");

    /* Back. */
    fake_associate(&r.fake, 2437, -55, true);
    fake_event(
        &r.fake,
        "<3>CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:01:00 completed [id=0 id_str=]");
    assert_true(wait_for(&r, link_up, WAIT_MS));
    rig_stop(&r);
}

/* wpa_supplicant restarts: its socket disappears (the next poll's send fails), comes back at the
 * same path; the driver reconnects, ATTACHes again and reports the link. */
static void test_restart(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, 100, true);
    fake_associate(&r.fake, 2437, -55, true);
    assert_true(wait_for(&r, link_up, WAIT_MS));
    int attaches = r.fake.n_attach;

    fake_stop(&r.fake);
    assert_true(wait_for(&r, link_down, WAIT_MS));
    assert_true(wait_for(&r, detached, WAIT_MS));
    /* Gone for a while: the driver keeps retrying (with a growing delay) without spinning. */
    uint64_t until = h_now_ms() + 600;
    while (h_now_ms() < until)
        assert_int_equal(lade_loop_run_once(r.loop, 20), LADE_OK);
    assert_false(r.link.up);

    fake_start(&r.fake);
    assert_true(wait_for(&r, reattached_once, WAIT_MS));
    assert_true(wait_for(&r, link_up, WAIT_MS));
    assert_int_equal(r.fake.n_attach, attaches + 1);
    assert_int_equal(r.link.channel, 6);

    /* A clean exit says TERMINATING first: the driver lets go at once, then finds it back. */
    fake_event(&r.fake, "<2>CTRL-EVENT-TERMINATING");
    fake_stop(&r.fake);
    assert_true(wait_for(&r, link_down, WAIT_MS));
    fake_start(&r.fake);
    assert_true(wait_for(&r, link_up, WAIT_MS));
    struct lade_wpa_info i;
    lade_wpa_info(r.w, &i);
    assert_int_equal(i.reconnects, 2);
    rig_stop(&r);
}

/* A supplicant that stops answering: the request times out, the link goes down, and the driver
 * comes back when it answers again. */
static void test_silent(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, 100, true);
    fake_associate(&r.fake, 2437, -55, true);
    assert_true(wait_for(&r, link_up, WAIT_MS));
    r.fake.silent = true;
    assert_true(wait_for(&r, link_down, WAIT_MS));
    struct lade_wpa_info i;
    lade_wpa_info(r.w, &i);
    assert_true(i.timeouts >= 1);
    assert_false(i.attached);
    r.fake.silent = false;
    assert_true(wait_for(&r, link_up, WAIT_MS));
    rig_stop(&r);
}

/* RESET from the bearer manager: REASSOCIATE; RECONNECT when REASSOCIATE is refused. */
static void test_reset(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, 60000, true);
    assert_true(wait_for(&r, attached, WAIT_MS));
    assert_int_equal(lade_wpa_reset(r.w), LADE_OK);
    assert_true(wait_for(&r, reassoc_sent, WAIT_MS));
    assert_int_equal(r.fake.n_reconnect, 0);
    r.fake.refuse_reassoc = true;
    assert_int_equal(lade_wpa_reset(r.w), LADE_OK);
    assert_true(wait_for(&r, reconnect_sent, WAIT_MS));
    struct lade_wpa_info i;
    lade_wpa_info(r.w, &i);
    assert_int_equal(i.resets, 2);

    /* Not attached: STATE (it reconnects by itself). */
    fake_stop(&r.fake);
    assert_int_equal(lade_wpa_set_enabled(r.w, false), LADE_OK);
    assert_int_equal(lade_wpa_reset(r.w), LADE_ERR_STATE);
    rig_stop(&r);
}

/* need_address: associated without an address is not up until the caller (DHCP) says so. */
static void test_address(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, 100, true);
    fake_associate(&r.fake, 2437, -55, false);
    r.watch_signal = -55;
    assert_true(wait_for(&r, signal_watched, WAIT_MS)); /* associated: signal known ... */
    assert_false(r.link.up);                            /* ... but no address yet */
    lade_wpa_set_address(r.w, true);
    assert_true(r.link.up); /* reported from the call itself */
    lade_wpa_set_address(r.w, false);
    assert_false(r.link.up);
    rig_stop(&r);

    /* Without need_address, COMPLETED is enough. */
    rig_start(&r, 100, false);
    fake_associate(&r.fake, 2437, -55, false);
    assert_true(wait_for(&r, link_up, WAIT_MS));
    rig_stop(&r);
}

struct scan_result {
    bool done;
    lade_err err;
    size_t total;
    int16_t first_dbm;
};

static void on_scan(void *ud, lade_err err, const char *reply, size_t n)
{
    struct scan_result *s = ud;
    s->done = true;
    s->err = err;
    if (err != LADE_OK)
        return;
    struct lade_wpa_bss b[8];
    size_t count;
    s->err = lade_wpa_parse_scan(reply, n, b, 8, &count, &s->total);
    if (s->err == LADE_OK && count > 0)
        s->first_dbm = b[0].signal_dbm;
}

static void test_request_and_disable(void **state)
{
    (void)state;
    struct rig r;
    rig_start(&r, 100, true);
    fake_associate(&r.fake, 2437, -55, true);
    assert_true(wait_for(&r, link_up, WAIT_MS));

    struct scan_result s = {0};
    assert_int_equal(lade_wpa_request(r.w, "SCAN_RESULTS", on_scan, &s), LADE_OK);
    uint64_t end = h_now_ms() + WAIT_MS;
    while (!s.done && h_now_ms() < end)
        assert_int_equal(lade_loop_run_once(r.loop, 20), LADE_OK);
    assert_true(s.done);
    assert_int_equal(s.err, LADE_OK);
    assert_int_equal(s.total, 2);
    assert_int_equal(s.first_dbm, -48);
    assert_int_equal(lade_wpa_request(r.w, "A\nB", on_scan, &s), LADE_ERR_INVAL);
    assert_int_equal(lade_wpa_request(r.w, "", on_scan, &s), LADE_ERR_INVAL);

    /* A request still queued when the driver is disabled hears CLOSED. */
    struct scan_result s2 = {0};
    r.fake.silent = true;
    assert_int_equal(lade_wpa_request(r.w, "SCAN_RESULTS", on_scan, &s2), LADE_OK);
    int before = r.reports;
    assert_int_equal(lade_wpa_set_enabled(r.w, false), LADE_OK);
    assert_true(s2.done);
    assert_int_equal(s2.err, LADE_ERR_CLOSED);
    assert_false(r.link.up);
    assert_int_equal(r.reports, before + 1);
    assert_int_equal(lade_wpa_set_enabled(r.w, false), LADE_OK); /* idempotent */
    assert_int_equal(r.reports, before + 1);
    assert_int_equal(lade_wpa_request(r.w, "SCAN_RESULTS", on_scan, &s2), LADE_ERR_STATE);
    /* Enabled again: back up. */
    r.fake.silent = false;
    assert_int_equal(lade_wpa_set_enabled(r.w, true), LADE_OK);
    assert_true(wait_for(&r, link_up, WAIT_MS));
    rig_stop(&r);
}

static void ignore_link(void *ud, const struct lade_bearer_link_state *ls)
{
    (void)ud;
    assert_false(ls->up);
}

static void test_config(void **state)
{
    (void)state;
    struct lade_loop *loop;
    assert_int_equal(lade_loop_new(&loop), LADE_OK);
    struct lade_wpa_config c;
    lade_wpa_config_default(&c);
    struct lade_wpa *w;
    assert_int_equal(lade_wpa_new(loop, &c, ignore_link, NULL, &w), LADE_ERR_INVAL); /* no path */
    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    c.ctrl_path = longp;
    assert_int_equal(lade_wpa_new(loop, &c, ignore_link, NULL, &w), LADE_ERR_CONFIG);
    c.ctrl_path = "/nonexistent/wlan0";
    c.retry_min_ms = 0;
    assert_int_equal(lade_wpa_new(loop, &c, ignore_link, NULL, &w), LADE_ERR_CONFIG);
    c.retry_min_ms = 1000;
    c.client_dir = longp;
    assert_int_equal(lade_wpa_new(loop, &c, ignore_link, NULL, &w), LADE_ERR_CONFIG);
    c.client_dir = NULL;
    assert_int_equal(lade_wpa_new(loop, &c, ignore_link, NULL, &w), LADE_OK);
    /* No supplicant there: enabling works, it keeps retrying; freeing cancels everything. */
    assert_int_equal(lade_wpa_set_enabled(w, true), LADE_OK);
    assert_int_equal(lade_loop_run_once(loop, 0), LADE_OK);
    lade_wpa_free(w);
    assert_int_equal(lade_loop_timer_count(loop), 0);
    lade_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_association),
        cmocka_unit_test(test_weak_signal),
        cmocka_unit_test(test_bad_channels),
        cmocka_unit_test(test_disconnect_event),
        cmocka_unit_test(test_restart),
        cmocka_unit_test(test_silent),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_address),
        cmocka_unit_test(test_request_and_disable),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
