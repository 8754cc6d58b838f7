/* libFuzzer target: the wpa_supplicant control-interface parser (src/proto/wpa/wpa.c).
 * Input: byte 0 selects the parser (0 STATUS, 1 SIGNAL_POLL, 2 SCAN_RESULTS, 3 event, anything
 * else: all four); the rest is one datagram as received from the control socket.
 * Invariants: only the documented errors; every view lies inside the input; numbers within the
 * ranges the header promises; a failed parse leaves the "unknown" values; SCAN_RESULTS with a
 * smaller array gives a prefix of the larger one and the same total; an accepted event is what
 * lade_wpa_reply_kind calls an event; the bearer view is up only when COMPLETED. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lade/wpa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

static const char *g_in;
static size_t g_n;

static void inside(struct lade_str v)
{
    if (v.n == 0)
        return;
    CHECK(v.p >= g_in && v.p + v.n <= g_in + g_n);
}

static void bad_err(lade_err err)
{
    CHECK(err == LADE_ERR_PROTO || err == LADE_ERR_TOO_BIG);
}

static void fuzz_status(void)
{
    struct lade_wpa_status st;
    lade_err err = lade_wpa_parse_status(g_in, g_n, &st);
    if (err != LADE_OK) {
        bad_err(err);
        CHECK(st.state == LADE_WPA_STATE_UNKNOWN && st.network_id == -1 && st.freq_mhz == 0);
        return;
    }
    CHECK(st.state >= LADE_WPA_STATE_UNKNOWN && st.state <= LADE_WPA_STATE_COMPLETED);
    CHECK(st.freq_mhz <= 100000 && st.network_id >= -1);
    inside(st.bssid);
    inside(st.ssid);
    inside(st.key_mgmt);
    inside(st.ip_address);
    CHECK(!memchr(st.ssid.p, '\n', st.ssid.n));
    CHECK(lade_wpa_reply_kind(g_in, g_n) == LADE_WPA_REPLY_DATA);
    struct lade_bearer_link_state ls;
    lade_wpa_to_link(st.state, true, -50, st.freq_mhz, &ls);
    CHECK(!ls.up || st.state == LADE_WPA_STATE_COMPLETED);
    CHECK(lade_wpa_freq_to_channel(st.freq_mhz) <= 233);
}

static void fuzz_signal(void)
{
    struct lade_wpa_signal sg;
    lade_err err = lade_wpa_parse_signal(g_in, g_n, &sg);
    if (err != LADE_OK) {
        bad_err(err);
        CHECK(sg.rssi_dbm == LADE_BEARER_SIGNAL_UNKNOWN && sg.freq_mhz == 0);
        return;
    }
    CHECK(sg.rssi_dbm == LADE_BEARER_SIGNAL_UNKNOWN || (sg.rssi_dbm >= -200 && sg.rssi_dbm <= 50));
    CHECK(sg.noise_dbm == LADE_BEARER_SIGNAL_UNKNOWN ||
          (sg.noise_dbm >= -200 && sg.noise_dbm <= 50));
    CHECK(sg.linkspeed_mbps <= 1000000 && sg.freq_mhz <= 100000);
}

static void fuzz_scan(void)
{
    struct lade_wpa_bss big[16], small[2];
    size_t n_big, t_big, n_small, t_small;
    lade_err e1 = lade_wpa_parse_scan(g_in, g_n, big, 16, &n_big, &t_big);
    lade_err e2 = lade_wpa_parse_scan(g_in, g_n, small, 2, &n_small, &t_small);
    CHECK(e1 == e2);
    if (e1 != LADE_OK) {
        bad_err(e1);
        CHECK(n_big == 0 && t_big == 0 && n_small == 0 && t_small == 0);
        return;
    }
    CHECK(t_big == t_small && n_big <= 16 && n_small <= 2 && n_big <= t_big);
    CHECK(n_big == (t_big < 16 ? t_big : 16) && n_small == (t_small < 2 ? t_small : 2));
    for (size_t i = 0; i < n_big; i++) {
        const struct lade_wpa_bss *b = &big[i];
        inside(b->bssid);
        inside(b->flags);
        inside(b->ssid);
        CHECK(b->bssid.n == 17);
        CHECK(b->freq_mhz >= 1 && b->freq_mhz <= 100000);
        CHECK(b->signal_dbm >= -200 && b->signal_dbm <= 50);
        CHECK(!memchr(b->ssid.p, '\n', b->ssid.n) && !memchr(b->flags.p, '\t', b->flags.n));
        if (i < n_small)
            CHECK(small[i].bssid.p == b->bssid.p && small[i].ssid.p == b->ssid.p &&
                  small[i].ssid.n == b->ssid.n && small[i].flags.n == b->flags.n &&
                  small[i].freq_mhz == b->freq_mhz && small[i].signal_dbm == b->signal_dbm);
    }
}

static void fuzz_event(void)
{
    struct lade_wpa_event ev;
    lade_err err = lade_wpa_parse_event(g_in, g_n, &ev);
    if (err != LADE_OK) {
        bad_err(err);
        CHECK(ev.kind == LADE_WPA_EV_OTHER && ev.name.n == 0 && ev.network_id == -1);
        return;
    }
    CHECK(lade_wpa_reply_kind(g_in, g_n) == LADE_WPA_REPLY_EVENT);
    CHECK(ev.kind >= LADE_WPA_EV_OTHER && ev.kind <= LADE_WPA_EV_SIGNAL_CHANGE);
    CHECK(ev.level <= 9 && ev.name.n > 0);
    inside(ev.ifname);
    inside(ev.name);
    inside(ev.text);
    inside(ev.bssid);
    inside(ev.ssid);
    inside(ev.why);
    CHECK(ev.bssid.n == 0 || ev.bssid.n == 17);
    CHECK(ev.reason >= -1 && ev.reason <= 65535 && ev.network_id >= -1);
    CHECK(ev.signal_dbm == LADE_BEARER_SIGNAL_UNKNOWN ||
          (ev.signal_dbm >= -200 && ev.signal_dbm <= 50));
    CHECK(!memchr(ev.name.p, ' ', ev.name.n));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t sel = data[0];
    /* An exact-size copy of the rest, so a read past its end is caught. */
    char *in = malloc(size - 1 ? size - 1 : 1);
    if (!in)
        return 0;
    memcpy(in, data + 1, size - 1);
    g_in = in;
    g_n = size - 1;
    (void)lade_wpa_reply_kind(g_in, g_n);
    switch (sel) {
    case 0:
        fuzz_status();
        break;
    case 1:
        fuzz_signal();
        break;
    case 2:
        fuzz_scan();
        break;
    case 3:
        fuzz_event();
        break;
    default:
        fuzz_status();
        fuzz_signal();
        fuzz_scan();
        fuzz_event();
        break;
    }
    free(in);
    return 0;
}
