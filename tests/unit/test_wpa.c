/* Unit tests of the wpa_supplicant control-interface parser (include/lade/wpa.h): STATUS,
 * SIGNAL_POLL, SCAN_RESULTS, events, frequency → channel and the bearer manager's view. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lade/wpa.h"

#define P(lit) (lit), (sizeof(lit) - 1)

static void assert_view(struct lade_str v, const char *expect)
{
    assert_int_equal(v.n, strlen(expect));
    assert_memory_equal(v.p, expect, v.n);
}

static void test_reply_kind(void **state)
{
    (void)state;
    assert_int_equal(lade_wpa_reply_kind(P("OK\n")), LADE_WPA_REPLY_OK);
    assert_int_equal(lade_wpa_reply_kind(P("OK")), LADE_WPA_REPLY_OK);
    assert_int_equal(lade_wpa_reply_kind(P("FAIL\n")), LADE_WPA_REPLY_FAIL);
    assert_int_equal(lade_wpa_reply_kind(P("FAIL-BUSY\n")), LADE_WPA_REPLY_FAIL);
    assert_int_equal(lade_wpa_reply_kind(P("PONG\n")), LADE_WPA_REPLY_PONG);
    assert_int_equal(lade_wpa_reply_kind(P("UNKNOWN COMMAND\n")), LADE_WPA_REPLY_UNKNOWN_CMD);
    assert_int_equal(lade_wpa_reply_kind(P("<3>CTRL-EVENT-SCAN-RESULTS ")), LADE_WPA_REPLY_EVENT);
    assert_int_equal(lade_wpa_reply_kind(P("IFNAME=wlan0 <3>CTRL-EVENT-TERMINATING")),
                     LADE_WPA_REPLY_EVENT);
    assert_int_equal(lade_wpa_reply_kind(P("wpa_state=COMPLETED\n")), LADE_WPA_REPLY_DATA);
    assert_int_equal(lade_wpa_reply_kind(NULL, 0), LADE_WPA_REPLY_DATA);
    assert_int_equal(lade_wpa_reply_kind(P("OKAY\n")), LADE_WPA_REPLY_DATA);
}

static const char status_full[] = "bssid=02:00:00:00:01:00\n"
                                  "freq=2437\n"
                                  "ssid=lade site\n"
                                  "id=0\n"
                                  "mode=station\n"
                                  "pairwise_cipher=CCMP\n"
                                  "group_cipher=CCMP\n"
                                  "key_mgmt=WPA2-PSK\n"
                                  "wpa_state=COMPLETED\n"
                                  "ip_address=192.168.7.20\n"
                                  "address=02:00:00:00:00:00\n"
                                  "uuid=12345678-9abc-def0-1234-56789abcdef0\n";

static void test_status(void **state)
{
    (void)state;
    struct lade_wpa_status st;
    assert_int_equal(lade_wpa_parse_status(P(status_full), &st), LADE_OK);
    assert_int_equal(st.state, LADE_WPA_STATE_COMPLETED);
    assert_int_equal(st.freq_mhz, 2437);
    assert_int_equal(st.network_id, 0);
    assert_view(st.bssid, "02:00:00:00:01:00");
    assert_view(st.ssid, "lade site");
    assert_view(st.key_mgmt, "WPA2-PSK");
    assert_view(st.ip_address, "192.168.7.20");

    /* Not associated: few keys; unknown state names; CRLF tolerated. */
    assert_int_equal(
        lade_wpa_parse_status(P("wpa_state=SCANNING\r\naddress=02:00:00:00:00:00\n"), &st),
        LADE_OK);
    assert_int_equal(st.state, LADE_WPA_STATE_SCANNING);
    assert_int_equal(st.freq_mhz, 0);
    assert_int_equal(st.network_id, -1);
    assert_int_equal(st.ip_address.n, 0);
    assert_int_equal(lade_wpa_parse_status(P("wpa_state=SOMETHING_NEW\n"), &st), LADE_OK);
    assert_int_equal(st.state, LADE_WPA_STATE_UNKNOWN);
    /* The first of a repeated key counts. */
    assert_int_equal(lade_wpa_parse_status(P("wpa_state=COMPLETED\nwpa_state=SCANNING\n"), &st),
                     LADE_OK);
    assert_int_equal(st.state, LADE_WPA_STATE_COMPLETED);
    /* A value may contain '='. */
    assert_int_equal(lade_wpa_parse_status(P("ssid=a=b\n"), &st), LADE_OK);
    assert_view(st.ssid, "a=b");

    /* Malformed. */
    assert_int_equal(lade_wpa_parse_status(P("FAIL\n"), &st), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_status(P("wpa_state\n"), &st), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_status(P("=x\n"), &st), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_status(P("freq=24x7\n"), &st), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_status(P("freq=999999999999999\n"), &st), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_status(P("id=-1\n"), &st), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_status(P("ssid=a\0b\n"), &st), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_status(P("\n\n"), &st), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_status(P("<3>CTRL-EVENT-TERMINATING"), &st), LADE_ERR_PROTO);
    assert_int_equal(st.state, LADE_WPA_STATE_UNKNOWN);
    assert_int_equal(lade_wpa_parse_status(NULL, 0, &st), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_status(NULL, 3, &st), LADE_ERR_INVAL);
    assert_int_equal(lade_wpa_parse_status(P("a=b"), NULL), LADE_ERR_INVAL);
    static char big[LADE_WPA_REPLY_MAX + 2];
    memset(big, 'a', sizeof big);
    big[1] = '=';
    assert_int_equal(lade_wpa_parse_status(big, sizeof big, &st), LADE_ERR_TOO_BIG);
    assert_int_equal(lade_wpa_parse_status(big, LADE_WPA_REPLY_MAX, &st), LADE_OK);
}

static void test_state_names(void **state)
{
    (void)state;
    for (int s = LADE_WPA_STATE_UNKNOWN; s <= LADE_WPA_STATE_COMPLETED; s++) {
        const char *name = lade_wpa_state_name((enum lade_wpa_state)s);
        assert_int_equal(lade_wpa_state_parse(lade_str_c(name)), s);
    }
    assert_string_equal(lade_wpa_state_name((enum lade_wpa_state)99), "UNKNOWN");
    assert_int_equal(lade_wpa_state_parse(LADE_STR("completed")), LADE_WPA_STATE_UNKNOWN);
}

static void test_signal(void **state)
{
    (void)state;
    struct lade_wpa_signal sg;
    assert_int_equal(lade_wpa_parse_signal(P("RSSI=-58\nLINKSPEED=65\nNOISE=9999\nFREQUENCY=2412\n"
                                             "WIDTH=20 MHz\nCENTER_FRQ1=2412\nAVG_RSSI=-60\n"),
                                           &sg),
                     LADE_OK);
    assert_int_equal(sg.rssi_dbm, -58);
    assert_int_equal(sg.linkspeed_mbps, 65);
    assert_int_equal(sg.noise_dbm, LADE_BEARER_SIGNAL_UNKNOWN);
    assert_int_equal(sg.freq_mhz, 2412);
    assert_int_equal(lade_wpa_parse_signal(P("RSSI=-80\nNOISE=-95\nFREQUENCY=5180\n"), &sg),
                     LADE_OK);
    assert_int_equal(sg.rssi_dbm, -80);
    assert_int_equal(sg.noise_dbm, -95);
    assert_int_equal(sg.linkspeed_mbps, 0);
    assert_int_equal(sg.freq_mhz, 5180);
    /* Without RSSI. */
    assert_int_equal(lade_wpa_parse_signal(P("LINKSPEED=1\n"), &sg), LADE_OK);
    assert_int_equal(sg.rssi_dbm, LADE_BEARER_SIGNAL_UNKNOWN);

    /* Not associated, out of range, garbage. */
    assert_int_equal(lade_wpa_parse_signal(P("FAIL\n"), &sg), LADE_ERR_PROTO);
    assert_int_equal(sg.rssi_dbm, LADE_BEARER_SIGNAL_UNKNOWN);
    assert_int_equal(lade_wpa_parse_signal(P("RSSI=-201\n"), &sg), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_signal(P("RSSI=51\n"), &sg), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_signal(P("RSSI=\n"), &sg), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_signal(P("RSSI=-\n"), &sg), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_signal(P("NOISE=100\n"), &sg), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_signal(P("FREQUENCY=0\n"), &sg), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_signal(P("LINKSPEED=-1\n"), &sg), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_signal(P("RSSI=-58\n"), NULL), LADE_ERR_INVAL);
}

static void test_scan(void **state)
{
    (void)state;
    static const char scan[] = "bssid / frequency / signal level / flags / ssid\n"
                               "02:00:00:00:01:00\t2437\t-48\t[WPA2-PSK-CCMP][ESS]\tlade site\n"
                               "02:00:00:00:02:00\t5180\t-70\t[WPA2-PSK-CCMP][ESS]\tfive\\tghz\n"
                               "02:00:00:00:03:00\t2472\t-88\t[ESS]\t\n";
    struct lade_wpa_bss b[4];
    size_t count, total;
    assert_int_equal(lade_wpa_parse_scan(P(scan), b, 4, &count, &total), LADE_OK);
    assert_int_equal(count, 3);
    assert_int_equal(total, 3);
    assert_view(b[0].bssid, "02:00:00:00:01:00");
    assert_int_equal(b[0].freq_mhz, 2437);
    assert_int_equal(b[0].signal_dbm, -48);
    assert_view(b[0].flags, "[WPA2-PSK-CCMP][ESS]");
    assert_view(b[0].ssid, "lade site");
    assert_view(b[1].ssid, "five\\tghz");
    assert_int_equal(b[2].ssid.n, 0);
    assert_int_equal(b[2].signal_dbm, -88);

    /* A smaller array: the first entries, and the total says how many there were. */
    assert_int_equal(lade_wpa_parse_scan(P(scan), b, 1, &count, &total), LADE_OK);
    assert_int_equal(count, 1);
    assert_int_equal(total, 3);
    assert_int_equal(lade_wpa_parse_scan(P(scan), NULL, 0, &count, NULL), LADE_OK);
    assert_int_equal(count, 0);
    /* Header only. */
    assert_int_equal(lade_wpa_parse_scan(P("bssid / frequency / signal level / flags / ssid\n"), b,
                                         4, &count, &total),
                     LADE_OK);
    assert_int_equal(total, 0);

    /* Malformed. */
    assert_int_equal(lade_wpa_parse_scan(P("FAIL\n"), b, 4, &count, &total), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_scan(P("hello\n"), b, 4, &count, &total), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_scan(P("bssid /\n02:00:00:00:01:00\t2437\t-48\t[ESS]\n"), b, 4,
                                         &count, &total),
                     LADE_ERR_PROTO); /* 4 fields */
    assert_int_equal(lade_wpa_parse_scan(P("bssid /\n02:00:00:00:01\t2437\t-48\t[ESS]\tx\n"), b, 4,
                                         &count, &total),
                     LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_scan(P("bssid /\n02-00-00-00-01-00\t2437\t-48\t[ESS]\tx\n"), b,
                                         4, &count, &total),
                     LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_scan(P("bssid /\n02:00:00:00:01:0g\t2437\t-48\t[ESS]\tx\n"), b,
                                         4, &count, &total),
                     LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_scan(P("bssid /\n02:00:00:00:01:00\t24x\t-48\t[ESS]\tx\n"), b,
                                         4, &count, &total),
                     LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_scan(P("bssid /\n02:00:00:00:01:00\t2412\t-300\t[ESS]\tx\n"), b,
                                         4, &count, &total),
                     LADE_ERR_PROTO);
    assert_int_equal(count, 0);
    assert_int_equal(total, 0);
    assert_int_equal(lade_wpa_parse_scan(P(scan), NULL, 2, &count, &total), LADE_ERR_INVAL);
}

static void test_event_connected(void **state)
{
    (void)state;
    struct lade_wpa_event ev;
    assert_int_equal(
        lade_wpa_parse_event(
            P("<3>CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:01:00 completed [id=2 "
              "id_str=home]"),
            &ev),
        LADE_OK);
    assert_int_equal(ev.kind, LADE_WPA_EV_CONNECTED);
    assert_int_equal(ev.level, 3);
    assert_view(ev.name, "CTRL-EVENT-CONNECTED");
    assert_view(ev.bssid, "02:00:00:00:01:00");
    assert_int_equal(ev.network_id, 2);
    assert_int_equal(ev.ifname.n, 0);
    /* Re-authentication, IFNAME prefix, trailing newline. */
    assert_int_equal(
        lade_wpa_parse_event(
            P("IFNAME=wlan0 <3>CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:01:00 completed "
              "(reauth) [id=0 id_str=]\n"),
            &ev),
        LADE_OK);
    assert_view(ev.ifname, "wlan0");
    assert_int_equal(ev.network_id, 0);
    /* Without the bracket. */
    assert_int_equal(lade_wpa_parse_event(P("<3>CTRL-EVENT-CONNECTED "), &ev), LADE_OK);
    assert_int_equal(ev.kind, LADE_WPA_EV_CONNECTED);
    assert_int_equal(ev.bssid.n, 0);
    assert_int_equal(ev.network_id, -1);
    /* A broken BSSID or id. */
    assert_int_equal(
        lade_wpa_parse_event(P("<3>CTRL-EVENT-CONNECTED - Connection to 02:00 completed"), &ev),
        LADE_ERR_PROTO);
    assert_int_equal(
        lade_wpa_parse_event(
            P("<3>CTRL-EVENT-CONNECTED - Connection to 02:00:00:00:01:00 completed [id=x]"), &ev),
        LADE_ERR_PROTO);
}

static void test_event_disconnected(void **state)
{
    (void)state;
    struct lade_wpa_event ev;
    assert_int_equal(
        lade_wpa_parse_event(
            P("<3>CTRL-EVENT-DISCONNECTED bssid=02:00:00:00:01:00 reason=3 locally_generated=1"),
            &ev),
        LADE_OK);
    assert_int_equal(ev.kind, LADE_WPA_EV_DISCONNECTED);
    assert_view(ev.bssid, "02:00:00:00:01:00");
    assert_int_equal(ev.reason, 3);
    assert_true(ev.locally_generated);
    assert_int_equal(
        lade_wpa_parse_event(P("<3>CTRL-EVENT-DISCONNECTED bssid=02:00:00:00:01:00 reason=4"), &ev),
        LADE_OK);
    assert_int_equal(ev.reason, 4);
    assert_false(ev.locally_generated);
    assert_int_equal(lade_wpa_parse_event(P("<3>CTRL-EVENT-DISCONNECTED reason=x"), &ev),
                     LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_event(P("<3>CTRL-EVENT-DISCONNECTED reason=70000"), &ev),
                     LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_event(P("<3>CTRL-EVENT-DISCONNECTED bssid=zz"), &ev),
                     LADE_ERR_PROTO);
    assert_int_equal(
        lade_wpa_parse_event(P("<3>CTRL-EVENT-ASSOC-REJECT bssid=02:00:00:00:01:00 status_code=17"),
                             &ev),
        LADE_OK);
    assert_int_equal(ev.kind, LADE_WPA_EV_ASSOC_REJECT);
    assert_int_equal(ev.reason, 17);
}

static void test_event_temp_disabled(void **state)
{
    (void)state;
    struct lade_wpa_event ev;
    assert_int_equal(lade_wpa_parse_event(P("<3>CTRL-EVENT-SSID-TEMP-DISABLED id=1 ssid=\"lade "
                                            "site \\\"2\\\"\" auth_failures=2 duration=20 "
                                            "reason=WRONG_KEY"),
                                          &ev),
                     LADE_OK);
    assert_int_equal(ev.kind, LADE_WPA_EV_SSID_TEMP_DISABLED);
    assert_int_equal(ev.network_id, 1);
    assert_view(ev.ssid, "lade site \\\"2\\\"");
    assert_int_equal(ev.auth_failures, 2);
    assert_int_equal(ev.duration_s, 20);
    assert_view(ev.why, "WRONG_KEY");
    assert_int_equal(ev.reason, -1);
    /* Unterminated quote. */
    assert_int_equal(
        lade_wpa_parse_event(P("<3>CTRL-EVENT-SSID-TEMP-DISABLED id=1 ssid=\"lade"), &ev),
        LADE_ERR_PROTO);
    assert_int_equal(
        lade_wpa_parse_event(P("<3>CTRL-EVENT-SSID-TEMP-DISABLED id=1 ssid=\"lade\\"), &ev),
        LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_event(P("<3>CTRL-EVENT-SSID-REENABLED id=1 ssid=\"x\""), &ev),
                     LADE_OK);
    assert_int_equal(ev.kind, LADE_WPA_EV_SSID_REENABLED);
    assert_view(ev.ssid, "x");
}

static void test_event_other(void **state)
{
    (void)state;
    struct lade_wpa_event ev;
    assert_int_equal(lade_wpa_parse_event(P("<2>CTRL-EVENT-TERMINATING"), &ev), LADE_OK);
    assert_int_equal(ev.kind, LADE_WPA_EV_TERMINATING);
    assert_int_equal(ev.level, 2);
    assert_int_equal(ev.text.n, 0);
    assert_int_equal(lade_wpa_parse_event(P("<3>CTRL-EVENT-SCAN-RESULTS "), &ev), LADE_OK);
    assert_int_equal(ev.kind, LADE_WPA_EV_SCAN_RESULTS);
    assert_int_equal(
        lade_wpa_parse_event(
            P("<3>CTRL-EVENT-SIGNAL-CHANGE above=0 signal=-77 noise=-95 txrate=6000"), &ev),
        LADE_OK);
    assert_int_equal(ev.kind, LADE_WPA_EV_SIGNAL_CHANGE);
    assert_int_equal(ev.signal_dbm, -77);
    assert_int_equal(lade_wpa_parse_event(P("<3>WPS-AP-AVAILABLE weird \"text"), &ev), LADE_OK);
    assert_int_equal(ev.kind, LADE_WPA_EV_OTHER);
    assert_view(ev.name, "WPS-AP-AVAILABLE");
    assert_view(ev.text, "weird \"text");
    /* Malformed prefixes. */
    assert_int_equal(lade_wpa_parse_event(P("CTRL-EVENT-TERMINATING"), &ev), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_event(P("<x>CTRL-EVENT-TERMINATING"), &ev), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_event(P("<3"), &ev), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_event(P("<3>"), &ev), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_event(P("<3> x"), &ev), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_event(P("IFNAME=wlan0"), &ev), LADE_ERR_PROTO);
    assert_int_equal(lade_wpa_parse_event(P("<3>CTRL-EVENT-TERMINATING\0"), &ev), LADE_ERR_PROTO);
    assert_int_equal(ev.kind, LADE_WPA_EV_OTHER);
    assert_int_equal(ev.name.n, 0);
    assert_int_equal(lade_wpa_parse_event(P("<3>X"), NULL), LADE_ERR_INVAL);
}

static void test_channels(void **state)
{
    (void)state;
    assert_int_equal(lade_wpa_freq_to_channel(2412), 1);
    assert_int_equal(lade_wpa_freq_to_channel(2437), 6);
    assert_int_equal(lade_wpa_freq_to_channel(2462), 11);
    assert_int_equal(lade_wpa_freq_to_channel(2467), 12);
    assert_int_equal(lade_wpa_freq_to_channel(2472), 13);
    assert_int_equal(lade_wpa_freq_to_channel(2484), 14);
    assert_int_equal(lade_wpa_freq_to_channel(5180), 36);
    assert_int_equal(lade_wpa_freq_to_channel(5825), 165);
    assert_int_equal(lade_wpa_freq_to_channel(5955), 1);
    assert_int_equal(lade_wpa_freq_to_channel(5935), 2);
    assert_int_equal(lade_wpa_freq_to_channel(6415), 93);
    assert_int_equal(lade_wpa_freq_to_channel(0), 0);
    assert_int_equal(lade_wpa_freq_to_channel(2413), 0);
    assert_int_equal(lade_wpa_freq_to_channel(2407), 0);
    assert_int_equal(lade_wpa_freq_to_channel(2477), 0);
    assert_int_equal(lade_wpa_freq_to_channel(60480), 0);
}

static void test_to_link(void **state)
{
    (void)state;
    struct lade_bearer_link_state ls;
    lade_wpa_to_link(LADE_WPA_STATE_COMPLETED, true, -55, 2437, &ls);
    assert_true(ls.up);
    assert_int_equal(ls.signal, -55);
    assert_int_equal(ls.freq_mhz, 2437);
    assert_int_equal(ls.channel, 6);
    /* Associated without an address: not up, but the signal and channel are known. */
    lade_wpa_to_link(LADE_WPA_STATE_COMPLETED, false, -80, 5180, &ls);
    assert_false(ls.up);
    assert_int_equal(ls.signal, -80);
    assert_int_equal(ls.channel, 36);
    lade_wpa_to_link(LADE_WPA_STATE_4WAY_HANDSHAKE, true, -55, 2437, &ls);
    assert_false(ls.up);
    assert_int_equal(ls.signal, LADE_BEARER_SIGNAL_UNKNOWN);
    assert_int_equal(ls.channel, 0);
    assert_int_equal(ls.freq_mhz, 0);
}

/* The converted state is judged by the bearer manager as R1 wants. */
static void test_with_bearer(void **state)
{
    (void)state;
    struct lade_bearer_config c;
    lade_bearer_config_default(&c);
    c.present[LADE_BEARER_WIFI] = true;
    struct lade_bearer b;
    assert_int_equal(lade_bearer_init(&b, &c, 1000), LADE_OK);
    struct lade_bearer_link_state ls;
    struct {
        int16_t rssi;
        uint32_t freq;
        enum lade_bearer_why why;
    } cases[] = {
        {-60, 2437, LADE_BEARER_OK},          {-80, 2437, LADE_BEARER_WEAK},
        {-60, 5180, LADE_BEARER_BAD_CHANNEL}, {-60, 2472, LADE_BEARER_BAD_CHANNEL},
        {-60, 2462, LADE_BEARER_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lade_wpa_to_link(LADE_WPA_STATE_COMPLETED, true, cases[i].rssi, cases[i].freq, &ls);
        assert_int_equal(lade_bearer_link(&b, LADE_BEARER_WIFI, &ls, 2000), LADE_OK);
        assert_int_equal(lade_bearer_usable(&b, LADE_BEARER_WIFI, 2000), cases[i].why);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_kind),
        cmocka_unit_test(test_status),
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_signal),
        cmocka_unit_test(test_scan),
        cmocka_unit_test(test_event_connected),
        cmocka_unit_test(test_event_disconnected),
        cmocka_unit_test(test_event_temp_disabled),
        cmocka_unit_test(test_event_other),
        cmocka_unit_test(test_channels),
        cmocka_unit_test(test_to_link),
        cmocka_unit_test(test_with_bearer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
