/* Unit tests of the WiFi scan parser and checks (include/lade/wifiscan.h) against recorded scans.
 *
 * Fixtures in tests/data/wifi/ (found next to this file through __FILE__), written by hand in
 * the exact formats of `iw dev wlan0 scan` (iw 5.x/6.x: "BSS <addr>(on wlan0)" blocks,
 * tab-indented fields, "RSN:\t * Version: 1" sub-items) and `wpa_cli scan_results`:
 *   healthy.iw    "lade-site" (associated) on channel 6 at -58 dBm, WPA2, 20 MHz, also on 5 GHz
 *                 channel 36; neighbours "Nachbar-1" ch 1 -71, "FRITZ!Box 7590 XY" ch 11 -80
 *                 (WPA2/WPA3 transition), a hidden network ch 1 -83, "Far Away" ch 6 -90 (below
 *                 the -85 dBm neighbour level)
 *   healthy.wpa   the same site as wpa_cli prints it (with "Selected interface 'wlan0'")
 *   weak.iw       "lade-site" on channel 6 at -79 dBm
 *   channel13.iw  "lade-site" on channel 13 (freq printed "2472.0" as newer iw does)
 *   channel3.iw   "lade-site" on channel 3, "Cafe Eck" on 1 (-65), "Office" on 6 (-70, WPA3)
 *   only5ghz.iw   "lade-site" on 5 GHz channels 36 and 100 only
 *   auto-1.iw, auto-2.iw   two scans minutes apart: the same BSSID on channel 6, then 11
 *   wide40.iw     "lade-site" on channel 6 with a 40 MHz secondary channel below
 *   open.iw       "lade-site" without encryption
 *   malformed.iw  a good block, then a block cut off before its freq: line (line 58)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "lade/sitecheck.h"
#include "lade/wifiscan.h"

#define P(lit) (lit), (sizeof(lit) - 1)

/* tests/data/wifi/<name>, from this file's path (tests/unit/test_wifiscan.c). */
static char *fixture_path(const char *name)
{
    static char path[4096];
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    size_t dir = slash ? (size_t)(slash - file) : 0;
    /* .../tests/unit → .../tests */
    while (dir > 0 && file[dir - 1] != '/')
        dir--;
    snprintf(path, sizeof path, "%.*sdata/wifi/%s", (int)dir, file, name);
    return path;
}

static char *read_fixture(const char *name, size_t *n)
{
    FILE *f = fopen(fixture_path(name), "rb");
    if (!f)
        fail_msg("cannot open fixture %s", fixture_path(name));
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    *n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void load(const char *name, struct lade_wifi_scan *s)
{
    size_t n;
    char *buf = read_fixture(name, &n);
    lade_err err = lade_wifi_scan_parse(buf, n, s);
    free(buf);
    if (err != LADE_OK)
        fail_msg("%s: %s", name, s->error);
}

static const struct lade_wifi_bss *find_bss(const struct lade_wifi_scan *s, const char *bssid)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->bss[i].bssid, bssid) == 0)
            return &s->bss[i];
    fail_msg("no BSS %s", bssid);
    return NULL;
}

/* The finding id has this status and word in its summary or remedy (word may be NULL). */
static const struct lade_check_item *expect(const struct lade_check_report *r, const char *id,
                                            enum lade_check_status st, const char *word)
{
    const struct lade_check_item *it = lade_check_find(r, id);
    if (!it)
        fail_msg("no finding %s", id);
    if (it->status != st)
        fail_msg("%s: %s, expected %s: %s / %s", id, lade_check_status_name(it->status),
                 lade_check_status_name(st), it->summary, it->remedy);
    if (word && !strstr(it->summary, word) && !strstr(it->remedy, word))
        fail_msg("%s: '%s' not in: %s / %s", id, word, it->summary, it->remedy);
    return it;
}

/* Runs the check on the named fixtures. */
static void check_files(const char *const *names, size_t n, const char *ssid,
                        struct lade_check_report *r)
{
    struct lade_wifi_scan s[4];
    assert_true(n <= 4);
    for (size_t i = 0; i < n; i++)
        load(names[i], &s[i]);
    lade_check_report_init(r);
    assert_int_equal(lade_wifi_check(s, n, ssid, r), LADE_OK);
    for (size_t i = 0; i < n; i++)
        lade_wifi_scan_free(&s[i]);
    /* Every finding has a section "wifi" and renders as JSON. */
    for (size_t i = 0; i < r->n; i++)
        assert_string_equal(r->items[i].section, "wifi");
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    assert_int_equal(lade_check_render_json(r, NULL, f), LADE_OK);
    fclose(f);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    cJSON_Delete(j);
    free(out);
}

static void check_file(const char *name, const char *ssid, struct lade_check_report *r)
{
    check_files(&name, 1, ssid, r);
}

/* ---- parsing the fixtures ---------------------------------------------------------------- */

static void test_parse_iw(void **state)
{
    (void)state;
    struct lade_wifi_scan s;
    load("healthy.iw", &s);
    assert_int_equal(s.format, LADE_WIFI_FORMAT_IW);
    assert_int_equal(s.n, 6);
    assert_int_equal(s.total, 6);
    assert_false(s.truncated);
    const struct lade_wifi_bss *b = &s.bss[0];
    assert_string_equal(b->bssid, "02:00:00:00:01:00");
    assert_string_equal(b->ssid, "lade-site");
    assert_int_equal(b->ssid_len, 9);
    assert_int_equal(b->freq_mhz, 2437);
    assert_int_equal(b->channel, 6);
    assert_int_equal(b->band, LADE_WIFI_BAND_2G4);
    assert_int_equal(b->signal_dbm, -58);
    assert_true(b->width_known);
    assert_int_equal(b->secondary, 0);
    assert_int_equal(b->security, LADE_WIFI_SEC_WPA2);
    assert_true(b->associated);
    b = find_bss(&s, "02:00:00:00:01:01");
    assert_int_equal(b->band, LADE_WIFI_BAND_5G);
    assert_int_equal(b->channel, 36);
    assert_false(b->associated);
    b = find_bss(&s, "3c:a6:2f:aa:bb:cc");
    assert_string_equal(b->ssid, "FRITZ!Box 7590 XY");
    assert_int_equal(b->security, LADE_WIFI_SEC_WPA3); /* PSK SAE: transition mode */
    b = find_bss(&s, "a0:b5:49:12:34:57");
    assert_string_equal(b->ssid, ""); /* hidden: eight \x00 */
    assert_int_equal(b->ssid_len, 8);
    lade_wifi_scan_free(&s);

    load("channel13.iw", &s); /* "freq: 2472.0" */
    assert_int_equal(s.bss[0].freq_mhz, 2472);
    assert_int_equal(s.bss[0].channel, 13);
    lade_wifi_scan_free(&s);
    load("wide40.iw", &s);
    assert_int_equal(s.bss[0].secondary, -1);
    lade_wifi_scan_free(&s);
    load("open.iw", &s);
    assert_int_equal(s.bss[0].security, LADE_WIFI_SEC_OPEN);
    lade_wifi_scan_free(&s);
    load("channel3.iw", &s);
    assert_int_equal(find_bss(&s, "f4:06:8d:11:22:33")->security, LADE_WIFI_SEC_WPA3);
    lade_wifi_scan_free(&s);
}

static void test_parse_wpa(void **state)
{
    (void)state;
    struct lade_wifi_scan s;
    load("healthy.wpa", &s);
    assert_int_equal(s.format, LADE_WIFI_FORMAT_WPA);
    assert_int_equal(s.n, 6);
    const struct lade_wifi_bss *b = &s.bss[0];
    assert_string_equal(b->bssid, "02:00:00:00:01:00");
    assert_string_equal(b->ssid, "lade-site");
    assert_int_equal(b->channel, 6);
    assert_int_equal(b->signal_dbm, -58);
    assert_int_equal(b->security, LADE_WIFI_SEC_WPA2);
    assert_false(b->width_known);
    assert_false(b->associated);
    assert_int_equal(find_bss(&s, "3c:a6:2f:aa:bb:cc")->security, LADE_WIFI_SEC_WPA3);
    assert_string_equal(find_bss(&s, "a0:b5:49:12:34:57")->ssid, "");
    assert_int_equal(find_bss(&s, "02:00:00:00:01:01")->band, LADE_WIFI_BAND_5G);
    lade_wifi_scan_free(&s);

    /* Flags → security. */
    static const struct {
        const char *flags;
        enum lade_wifi_security sec;
    } f[] = {
        {"[ESS]", LADE_WIFI_SEC_OPEN},
        {"[WEP][ESS]", LADE_WIFI_SEC_WEP},
        {"[WPA-PSK-TKIP][ESS]", LADE_WIFI_SEC_WPA},
        {"[WPA-PSK-TKIP][WPA2-PSK-CCMP+TKIP][ESS]", LADE_WIFI_SEC_WPA2},
        {"[RSN-SAE-CCMP][ESS]", LADE_WIFI_SEC_WPA3},
        {"[WPA2-EAP-SUITE-B-192-GCMP-256][ESS]", LADE_WIFI_SEC_WPA3},
        {"[WPA2-OWE-CCMP][ESS]", LADE_WIFI_SEC_WPA3},
        {"", LADE_WIFI_SEC_OPEN},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        char buf[200];
        int k = snprintf(buf, sizeof buf,
                         "bssid / frequency / signal level / flags / ssid\n"
                         "02:00:00:00:01:00\t2437\t-58\t%s\tx\n",
                         f[i].flags);
        assert_int_equal(lade_wifi_scan_parse(buf, (size_t)k, &s), LADE_OK);
        assert_int_equal(s.n, 1);
        assert_int_equal(s.bss[0].security, f[i].sec);
        lade_wifi_scan_free(&s);
    }
}

static void test_parse_malformed_fixture(void **state)
{
    (void)state;
    size_t n;
    char *buf = read_fixture("malformed.iw", &n);
    struct lade_wifi_scan s;
    assert_int_equal(lade_wifi_scan_parse(buf, n, &s), LADE_ERR_PROTO);
    assert_int_equal(s.err_line, 58);
    assert_int_equal(s.n, 0);
    assert_null(s.bss);
    assert_non_null(strstr(s.error, "line 58:"));
    assert_non_null(strstr(s.error, "a0:b5:49:12:34:56"));
    assert_non_null(strstr(s.error, "freq"));
    lade_wifi_scan_free(&s);
    free(buf);
}

/* ---- parser edges ------------------------------------------------------------------------ */

static lade_err parse(const char *buf, size_t n, struct lade_wifi_scan *s)
{
    lade_err err = lade_wifi_scan_parse(buf, n, s);
    if (err != LADE_OK)
        assert_true(s->error[0] != '\0');
    return err;
}

static void test_parse_edges(void **state)
{
    (void)state;
    struct lade_wifi_scan s;

    /* Empty input: a valid scan that heard nothing. */
    assert_int_equal(parse(NULL, 0, &s), LADE_OK);
    assert_int_equal(s.n, 0);
    assert_int_equal(s.format, LADE_WIFI_FORMAT_UNKNOWN);
    assert_int_equal(parse(P("\n\n"), &s), LADE_OK);
    assert_int_equal(lade_wifi_scan_parse(P("x"), NULL), LADE_ERR_INVAL);
    assert_int_equal(lade_wifi_scan_parse(NULL, 3, &s), LADE_ERR_INVAL);

    /* Garbage and error messages instead of a scan. */
    assert_int_equal(parse(P("command failed: Device or resource busy (-16)\n"), &s),
                     LADE_ERR_PROTO);
    assert_int_equal(s.err_line, 1);
    assert_non_null(strstr(s.error, "command failed"));
    assert_int_equal(parse(P("\n\xff\xfe garbage \x01\n"), &s), LADE_ERR_PROTO);
    assert_int_equal(s.err_line, 2);
    assert_int_equal(parse(P("FAIL\n"), &s), LADE_ERR_PROTO);
    assert_non_null(strstr(s.error, "FAIL"));
    assert_int_equal(parse(P("BSS 02:00:00:00:01:00(on wlan0)\n\tfreq: 2437\0\n"), &s),
                     LADE_ERR_PROTO);
    assert_int_equal(s.err_line, 2);

    /* A truncated block: no freq. */
    assert_int_equal(parse(P("BSS 02:00:00:00:01:00(on wlan0)\n\tTSF: 1 usec\n"), &s),
                     LADE_ERR_PROTO);
    assert_int_equal(s.err_line, 1);
    assert_int_equal(parse(P("BSS 02:00:00:00:01:00(on wlan0)\n\tfreq: 24"), &s), LADE_OK);
    assert_int_equal(s.bss[0].freq_mhz, 24); /* cut in a number: no channel, band other */
    assert_int_equal(s.bss[0].channel, 0);
    assert_int_equal(s.bss[0].band, LADE_WIFI_BAND_OTHER);
    lade_wifi_scan_free(&s);
    assert_int_equal(parse(P("BSS 02:00:00:00:01(on wlan0)\n"), &s), LADE_ERR_PROTO);
    assert_int_equal(parse(P("BSS 02:00:00:00:01:00x\n\tfreq: 2437\n"), &s), LADE_ERR_PROTO);
    assert_int_equal(parse(P("BSS 02:00:00:00:01:00\n\tfreq: 2437\nstray line\n"), &s),
                     LADE_ERR_PROTO);
    assert_int_equal(s.err_line, 3);

    /* Numbers. */
    assert_int_equal(parse(P("BSS 02:00:00:00:01:00\n\tfreq: abc\n"), &s), LADE_ERR_PROTO);
    assert_int_equal(s.err_line, 2);
    assert_int_equal(parse(P("BSS 02:00:00:00:01:00\n\tfreq: 99999999999\n"), &s), LADE_ERR_PROTO);
    assert_int_equal(parse(P("BSS 02:00:00:00:01:00\n\tfreq: 2437\n\tsignal: -5x.00 dBm\n"), &s),
                     LADE_ERR_PROTO);
    assert_int_equal(s.err_line, 3);
    assert_int_equal(parse(P("BSS 02:00:00:00:01:00\n\tfreq: 2437\n\tsignal: -500.00 dBm\n"), &s),
                     LADE_ERR_PROTO);
    assert_int_equal(
        parse(P("BSS 02:00:00:00:01:00\n\tfreq: 2437\n\tsignal: -56.50 dBm\n\tSSID: a\n"), &s),
        LADE_OK);
    assert_int_equal(s.bss[0].signal_dbm, -57);
    lade_wifi_scan_free(&s);
    /* Missing signal, and a driver without dBm ("60/100"): no level. */
    assert_int_equal(parse(P("BSS 02:00:00:00:01:00\n\tfreq: 2437\n\tSSID: a\n"
                             "BSS 02:00:00:00:01:01\n\tfreq: 2412\n\tsignal: 60/100\n"),
                           &s),
                     LADE_OK);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.bss[0].signal_dbm, LADE_WIFI_SIGNAL_NONE);
    assert_int_equal(s.bss[1].signal_dbm, LADE_WIFI_SIGNAL_NONE);
    assert_false(s.bss[0].width_known);
    struct lade_check_report r;
    lade_check_report_init(&r);
    assert_int_equal(lade_wifi_check(&s, 1, "a", &r), LADE_OK);
    expect(&r, "wifi.signal", LADE_CHECK_NOTE, "no signal level");
    expect(&r, "wifi.width", LADE_CHECK_NOTE, "20 MHz");
    expect(&r, "wifi.security", LADE_CHECK_FAIL, "open");
    lade_check_report_free(&r);
    lade_wifi_scan_free(&s);

    /* SSIDs: escapes decoded, UTF-8 kept, the rest as \xNN; 32 octets at most. */
    assert_int_equal(parse(P("BSS 02:00:00:00:01:00\n\tfreq: 2437\n"
                             "\tSSID: caf\\xc3\\xa9 \\x01\\x5c\\xff\\x20\n"),
                           &s),
                     LADE_OK);
    assert_int_equal(s.bss[0].ssid_len, 10);
    assert_string_equal(s.bss[0].ssid, "caf\xc3\xa9 \\x01\\x5c\\xff ");
    lade_wifi_scan_free(&s);
    assert_int_equal(parse(P("BSS 02:00:00:00:01:00\n\tfreq: 2437\n"
                             "\tSSID: 0123456789abcdef0123456789abcdef\n"),
                           &s),
                     LADE_OK);
    assert_int_equal(s.bss[0].ssid_len, 32);
    lade_wifi_scan_free(&s);
    assert_int_equal(parse(P("BSS 02:00:00:00:01:00\n\tfreq: 2437\n"
                             "\tSSID: 0123456789abcdef0123456789abcdefX\n"),
                           &s),
                     LADE_ERR_PROTO);
    assert_int_equal(s.err_line, 3);
    assert_non_null(strstr(s.error, "32"));
    {
        char huge[3000];
        int k = snprintf(huge, sizeof huge, "BSS 02:00:00:00:01:00\n\tfreq: 2437\n\tSSID: ");
        for (int i = 0; i < 600; i++)
            k += snprintf(huge + k, sizeof huge - (size_t)k, "\\xff");
        k += snprintf(huge + k, sizeof huge - (size_t)k, "\n");
        assert_int_equal(parse(huge, (size_t)k, &s), LADE_ERR_PROTO);
    }
    assert_int_equal(parse(P("bssid / frequency / signal level / flags / ssid\n"
                             "02:00:00:00:01:00\t2437\t-58\t[ESS]\ta\\\\b\\\"c\\td\n"),
                           &s),
                     LADE_OK);
    assert_int_equal(s.bss[0].ssid_len, 7);
    assert_memory_equal(s.bss[0].ssid_raw, "a\\b\"c\td", 7);
    assert_string_equal(s.bss[0].ssid, "a\\x5cb\"c\\x09d");
    assert_true(lade_wifi_bss_is(&s.bss[0], "a\\b\"c\td"));
    assert_true(lade_wifi_bss_is(&s.bss[0], "a\\x5cb\"c\\x09d"));
    assert_false(lade_wifi_bss_is(&s.bss[0], "a"));
    assert_false(lade_wifi_bss_is(&s.bss[0], ""));
    lade_wifi_scan_free(&s);

    /* Line endings, space-indented copies from a terminal, old "BSS x (on if)". */
    assert_int_equal(parse(P("BSS 02:00:00:00:01:00 (on wlan0) -- associated\r\n"
                             "        freq: 2462\r\n"
                             "        signal: -61.00 dBm\r\n"
                             "        SSID: lade-site\r\n"
                             "        HT operation:\r\n"
                             "                 * secondary channel offset: above\r\n"),
                           &s),
                     LADE_OK);
    assert_int_equal(s.bss[0].channel, 11);
    assert_string_equal(s.bss[0].ssid, "lade-site");
    assert_int_equal(s.bss[0].signal_dbm, -61);
    assert_int_equal(s.bss[0].secondary, 1);
    assert_true(s.bss[0].associated);
    lade_wifi_scan_free(&s);

    /* Security from iw blocks. */
    assert_int_equal(parse(P("BSS 02:00:00:00:01:00\n\tfreq: 2437\n"
                             "\tcapability: ESS Privacy (0x0011)\n"
                             "BSS 02:00:00:00:01:01\n\tfreq: 2437\n"
                             "\tcapability: ESS Privacy (0x0011)\n"
                             "\tWPA:\t * Version: 1\n\t\t * Authentication suites: PSK\n"
                             "BSS 02:00:00:00:01:02\n\tfreq: 2437\n"
                             "\tRSN:\t * Version: 1\n\t\t * Authentication suites: SAE\n"
                             "\tWPA:\t * Version: 1\n\t\t * Authentication suites: PSK\n"),
                           &s),
                     LADE_OK);
    assert_int_equal(s.bss[0].security, LADE_WIFI_SEC_WEP);
    assert_int_equal(s.bss[1].security, LADE_WIFI_SEC_WPA);
    assert_int_equal(s.bss[2].security, LADE_WIFI_SEC_WPA3);
    lade_wifi_scan_free(&s);

    /* wpa_cli: bad lines name their number. */
    assert_int_equal(parse(P("bssid / frequency / signal level / flags / ssid\n"
                             "02:00:00:00:01:00\t2437\t-58\t[ESS]\ta\n"
                             "02:00:00:00:01:00\t2437\t-58\n"),
                           &s),
                     LADE_ERR_PROTO);
    assert_int_equal(s.err_line, 3);
    assert_int_equal(parse(P("bssid / frequency / signal level / flags / ssid\n"
                             "02:00:00:00:01:00\t2437\tstrong\t[ESS]\ta\n"),
                           &s),
                     LADE_ERR_PROTO);
    assert_int_equal(s.err_line, 2);

    /* A line too long. */
    {
        size_t n = LADE_WIFI_LINE_MAX + 100;
        char *buf = malloc(n);
        assert_non_null(buf);
        static const char head[] = "BSS 02:00:00:00:01:00\n\tfreq: 2437\n\tX: ";
        memcpy(buf, head, sizeof head - 1);
        memset(buf + sizeof head - 1, 'a', n - (sizeof head - 1));
        assert_int_equal(parse(buf, n, &s), LADE_ERR_PROTO);
        assert_int_equal(s.err_line, 3);
        free(buf);
    }
    free(NULL);
    lade_wifi_scan_free(NULL);
}

static void test_parse_truncation(void **state)
{
    (void)state;
    size_t cap = 700 * 64;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t k = (size_t)snprintf(buf, cap, "bssid / frequency / signal level / flags / ssid\n");
    for (unsigned i = 0; i < 700; i++)
        k += (size_t)snprintf(buf + k, cap - k, "02:00:00:00:%02x:%02x\t2412\t-70\t[ESS]\tn%u\n",
                              i >> 8, i & 255, i);
    struct lade_wifi_scan s;
    assert_int_equal(lade_wifi_scan_parse(buf, k, &s), LADE_OK);
    assert_int_equal(s.n, LADE_WIFI_BSS_MAX);
    assert_int_equal(s.total, 700);
    assert_true(s.truncated);
    struct lade_check_report r;
    lade_check_report_init(&r);
    assert_int_equal(lade_wifi_check(&s, 1, "n699", &r), LADE_OK);
    expect(&r, "wifi.scan", LADE_CHECK_NOTE, "700 networks");
    expect(&r, "wifi.ssid", LADE_CHECK_FAIL, NULL); /* n699 was cut off */
    lade_check_report_free(&r);
    lade_wifi_scan_free(&s);
    free(buf);
    assert_int_equal(lade_wifi_scan_parse("x", LADE_WIFI_INPUT_MAX + 1, &s), LADE_ERR_TOO_BIG);
}

/* ---- checks against the recorded scans ---------------------------------------------------- */

static void test_healthy(void **state)
{
    (void)state;
    struct lade_check_report r;
    check_file("healthy.iw", "lade-site", &r);
    expect(&r, "wifi.ssid", LADE_CHECK_PASS, "lade-site");
    expect(&r, "wifi.band", LADE_CHECK_PASS, "5 GHz");
    expect(&r, "wifi.channel", LADE_CHECK_PASS, "channel 6");
    expect(&r, "wifi.fixed", LADE_CHECK_NOTE, "second scan");
    expect(&r, "wifi.signal", LADE_CHECK_PASS, "-58 dBm");
    expect(&r, "wifi.signal", LADE_CHECK_PASS, "-80 unusable");
    const struct lade_check_item *it = expect(&r, "wifi.overlap", LADE_CHECK_PASS, "channel 6");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(it->data, "overlapping")), 0);
    assert_int_equal(cJSON_GetObjectItem(it->data, "least_used")->valueint, 6);
    expect(&r, "wifi.width", LADE_CHECK_PASS, "20 MHz");
    expect(&r, "wifi.security", LADE_CHECK_PASS, "WPA2");
    assert_null(lade_check_find(&r, "wifi.census"));
    assert_int_equal(lade_check_exit_status(&r), 0);
    lade_check_report_free(&r);

    /* Without --ssid: the network this computer is associated with. */
    check_file("healthy.iw", NULL, &r);
    it = expect(&r, "wifi.ssid", LADE_CHECK_PASS, "connected");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(it->data, "from_association")));
    expect(&r, "wifi.signal", LADE_CHECK_PASS, "-58");
    lade_check_report_free(&r);
}

static void test_healthy_wpa(void **state)
{
    (void)state;
    struct lade_check_report r;
    check_file("healthy.wpa", "lade-site", &r);
    expect(&r, "wifi.ssid", LADE_CHECK_PASS, NULL);
    expect(&r, "wifi.band", LADE_CHECK_PASS, NULL);
    expect(&r, "wifi.channel", LADE_CHECK_PASS, "6");
    expect(&r, "wifi.signal", LADE_CHECK_PASS, "-58");
    expect(&r, "wifi.overlap", LADE_CHECK_PASS, NULL);
    expect(&r, "wifi.width", LADE_CHECK_NOTE, "20 MHz"); /* wpa_cli does not show the width */
    expect(&r, "wifi.security", LADE_CHECK_PASS, NULL);
    assert_int_equal(lade_check_exit_status(&r), 0);
    lade_check_report_free(&r);

    /* No --ssid and no association mark in wpa_cli output: a note and the census only. */
    check_file("healthy.wpa", "", &r);
    expect(&r, "wifi.ssid", LADE_CHECK_NOTE, "--ssid");
    const struct lade_check_item *it = expect(&r, "wifi.census", LADE_CHECK_NOTE, "channel 11: 1");
    assert_non_null(strstr(it->summary, "channel 1: 2"));
    assert_non_null(strstr(it->summary, "channel 6: 1"));
    /* lade-site itself is on 6, counted as a neighbour here; 6 and 11 tie on count, 11's
     * strongest is weaker. */
    assert_non_null(strstr(it->remedy, "channel 11"));
    assert_null(lade_check_find(&r, "wifi.signal"));
    lade_check_report_free(&r);
}

static void test_weak(void **state)
{
    (void)state;
    struct lade_check_report r;
    check_file("weak.iw", "lade-site", &r);
    const struct lade_check_item *it = expect(&r, "wifi.signal", LADE_CHECK_FAIL, "-79 dBm");
    assert_non_null(strstr(it->remedy, "PLC"));
    assert_non_null(strstr(it->remedy, "gateway"));
    assert_non_null(strstr(it->summary, "-75"));
    assert_int_equal(cJSON_GetObjectItem(it->data, "signal_dbm")->valueint, -79);
    assert_int_equal(lade_check_exit_status(&r), 2);
    lade_check_report_free(&r);

    /* Marginal: -73 dBm. */
    struct lade_wifi_scan s;
    load("weak.iw", &s);
    s.bss[0].signal_dbm = -73;
    lade_check_report_init(&r);
    assert_int_equal(lade_wifi_check(&s, 1, "lade-site", &r), LADE_OK);
    it = expect(&r, "wifi.signal", LADE_CHECK_WARN, "Marginal");
    assert_non_null(strstr(it->remedy, "PLC"));
    lade_check_report_free(&r);
    /* Exactly -75: still a warning; -70: pass; -76: fail. */
    static const struct {
        int dbm;
        enum lade_check_status st;
    } edge[] = {{-75, LADE_CHECK_WARN},
                {-70, LADE_CHECK_PASS},
                {-71, LADE_CHECK_WARN},
                {-76, LADE_CHECK_FAIL}};
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++) {
        s.bss[0].signal_dbm = (int16_t)edge[i].dbm;
        lade_check_report_init(&r);
        assert_int_equal(lade_wifi_check(&s, 1, "lade-site", &r), LADE_OK);
        expect(&r, "wifi.signal", edge[i].st, NULL);
        lade_check_report_free(&r);
    }
    lade_wifi_scan_free(&s);
}

static void test_channel13(void **state)
{
    (void)state;
    struct lade_check_report r;
    check_file("channel13.iw", "lade-site", &r);
    const struct lade_check_item *it = expect(&r, "wifi.channel", LADE_CHECK_FAIL, "13");
    assert_non_null(strstr(it->remedy, "1, 6 or 11"));
    assert_non_null(strstr(it->remedy, "1 to 11"));
    lade_check_report_free(&r);
}

static void test_channel3(void **state)
{
    (void)state;
    struct lade_check_report r;
    check_file("channel3.iw", "lade-site", &r);
    const struct lade_check_item *it = expect(&r, "wifi.channel", LADE_CHECK_WARN, "overlaps");
    assert_non_null(strstr(it->remedy, "11 is the least used"));
    it = expect(&r, "wifi.overlap", LADE_CHECK_WARN, "Cafe Eck");
    assert_non_null(strstr(it->summary, "\"Office\" (channel 6, -70 dBm)"));
    assert_non_null(strstr(it->summary, "channel 1, -65 dBm"));
    assert_non_null(strstr(it->remedy, "channel 11"));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(it->data, "overlapping")), 2);
    assert_int_equal(lade_check_exit_status(&r), 1);
    lade_check_report_free(&r);
}

static void test_only5(void **state)
{
    (void)state;
    struct lade_check_report r;
    check_file("only5ghz.iw", "lade-site", &r);
    expect(&r, "wifi.ssid", LADE_CHECK_PASS, NULL);
    const struct lade_check_item *it = expect(&r, "wifi.band", LADE_CHECK_FAIL, "5 GHz");
    assert_non_null(strstr(it->remedy, "2.4 GHz"));
    assert_non_null(strstr(it->remedy, "cannot use 5 GHz"));
    assert_null(lade_check_find(&r, "wifi.channel"));
    assert_null(lade_check_find(&r, "wifi.signal"));
    expect(&r, "wifi.security", LADE_CHECK_PASS, NULL);
    lade_check_report_free(&r);
}

static void test_auto_channel(void **state)
{
    (void)state;
    struct lade_check_report r;
    static const char *const two[] = {"auto-1.iw", "auto-2.iw"};
    check_files(two, 2, "lade-site", &r);
    const struct lade_check_item *it =
        expect(&r, "wifi.fixed", LADE_CHECK_FAIL, "channel changed between scans");
    assert_non_null(strstr(it->remedy, "Automatic channel selection is on"));
    assert_non_null(strstr(it->remedy, "fixed channel 1, 6 or 11"));
    assert_int_equal(cJSON_GetObjectItem(it->data, "channel_before")->valueint, 6);
    assert_int_equal(cJSON_GetObjectItem(it->data, "channel_after")->valueint, 11);
    expect(&r, "wifi.channel", LADE_CHECK_PASS, "6, 11");
    /* Signal: the weaker of the two scans' best. */
    expect(&r, "wifi.signal", LADE_CHECK_PASS, "-61 dBm");
    lade_check_report_free(&r);

    /* One scan cannot tell. */
    check_file("auto-1.iw", "lade-site", &r);
    it = expect(&r, "wifi.fixed", LADE_CHECK_NOTE, "One scan");
    assert_non_null(strstr(it->remedy, "--wifi-scan twice"));
    lade_check_report_free(&r);

    /* The same channel twice. */
    static const char *const same[] = {"auto-1.iw", "auto-1.iw"};
    check_files(same, 2, "lade-site", &r);
    expect(&r, "wifi.fixed", LADE_CHECK_PASS, "channel 6");
    lade_check_report_free(&r);

    /* Different BSSIDs of the network on different channels: a warning. */
    struct lade_wifi_scan s[2];
    load("auto-1.iw", &s[0]);
    load("auto-2.iw", &s[1]);
    s[1].bss[0].bssid[16] = '9';
    lade_check_report_init(&r);
    assert_int_equal(lade_wifi_check(s, 2, "lade-site", &r), LADE_OK);
    expect(&r, "wifi.fixed", LADE_CHECK_WARN, "different channels");
    lade_check_report_free(&r);
    lade_wifi_scan_free(&s[0]);
    lade_wifi_scan_free(&s[1]);
}

static void test_wide40(void **state)
{
    (void)state;
    struct lade_check_report r;
    check_file("wide40.iw", "lade-site", &r);
    const struct lade_check_item *it = expect(&r, "wifi.width", LADE_CHECK_WARN, "40 MHz");
    assert_non_null(strstr(it->summary, "channels 6 and 2"));
    assert_non_null(strstr(it->remedy, "20 MHz"));
    lade_check_report_free(&r);
}

static void test_open(void **state)
{
    (void)state;
    struct lade_check_report r;
    check_file("open.iw", "lade-site", &r);
    const struct lade_check_item *it = expect(&r, "wifi.security", LADE_CHECK_FAIL, "open");
    assert_non_null(strstr(it->remedy, "WPA2"));
    assert_non_null(strstr(it->remedy, "WPA3"));
    assert_non_null(strstr(it->remedy, "uplink"));
    lade_check_report_free(&r);
}

static void test_not_seen(void **state)
{
    (void)state;
    struct lade_check_report r;
    check_file("healthy.iw", "charger-net", &r);
    const struct lade_check_item *it =
        expect(&r, "wifi.ssid", LADE_CHECK_FAIL, "\"charger-net\" was not seen");
    assert_non_null(strstr(it->summary, "\"lade-site\" (channel 6, -58 dBm)"));
    assert_non_null(strstr(it->remedy, "hidden"));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(it->data, "strongest")), 6);
    expect(&r, "wifi.census", LADE_CHECK_NOTE, NULL);
    assert_null(lade_check_find(&r, "wifi.band"));
    lade_check_report_free(&r);

    /* Overlap bookkeeping: a co-channel neighbour is a note. */
    struct lade_wifi_scan s;
    load("healthy.iw", &s);
    for (size_t i = 0; i < s.n; i++)
        if (strcmp(s.bss[i].bssid, "c8:0e:14:01:02:03") == 0)
            s.bss[i].signal_dbm = -70; /* "Far Away" on 6 comes closer */
    lade_check_report_init(&r);
    assert_int_equal(lade_wifi_check(&s, 1, "lade-site", &r), LADE_OK);
    expect(&r, "wifi.overlap", LADE_CHECK_NOTE, "Far Away");
    lade_check_report_free(&r);
    lade_wifi_scan_free(&s);

    /* Arguments. */
    lade_check_report_init(&r);
    assert_int_equal(lade_wifi_check(NULL, 1, "x", &r), LADE_ERR_INVAL);
    assert_int_equal(lade_wifi_check(&s, 0, "x", &r), LADE_ERR_INVAL);
    assert_int_equal(lade_wifi_check(&s, 1, "x", NULL), LADE_ERR_INVAL);
    /* An empty scan: not seen, no network heard. */
    assert_int_equal(lade_wifi_check(&s, 1, "x", &r), LADE_OK);
    expect(&r, "wifi.ssid", LADE_CHECK_FAIL, "No network heard");
    lade_check_report_free(&r);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(lade_wifi_band_name(LADE_WIFI_BAND_2G4), "2.4 GHz");
    assert_string_equal(lade_wifi_band_name(LADE_WIFI_BAND_6G), "6 GHz");
    assert_string_equal(lade_wifi_band_name(LADE_WIFI_BAND_OTHER), "other");
    assert_int_equal(lade_wifi_band_of(2484), LADE_WIFI_BAND_2G4);
    assert_int_equal(lade_wifi_band_of(5935), LADE_WIFI_BAND_6G);
    assert_int_equal(lade_wifi_band_of(5825), LADE_WIFI_BAND_5G);
    assert_int_equal(lade_wifi_band_of(900), LADE_WIFI_BAND_OTHER);
    assert_string_equal(lade_wifi_security_name(LADE_WIFI_SEC_WEP), "WEP");
    assert_string_equal(lade_wifi_security_name(LADE_WIFI_SEC_WPA3), "WPA3");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_iw),
        cmocka_unit_test(test_parse_wpa),
        cmocka_unit_test(test_parse_malformed_fixture),
        cmocka_unit_test(test_parse_edges),
        cmocka_unit_test(test_parse_truncation),
        cmocka_unit_test(test_healthy),
        cmocka_unit_test(test_healthy_wpa),
        cmocka_unit_test(test_weak),
        cmocka_unit_test(test_channel13),
        cmocka_unit_test(test_channel3),
        cmocka_unit_test(test_only5),
        cmocka_unit_test(test_auto_channel),
        cmocka_unit_test(test_wide40),
        cmocka_unit_test(test_open),
        cmocka_unit_test(test_not_seen),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
