/* libFuzzer target: the recorded WiFi scan parser and the WiFi checks of lade-check
 * (src/common/wifiscan.c), with the report rendered as text and JSON (src/common/sitecheck.c).
 * Input: the text of a scan (`iw dev <if> scan` or `wpa_cli scan_results`). A NUL byte (which
 * the parser refuses) also splits the input into two scans taken minutes apart, so that the
 * comparison between scans (wifi.fixed) is reached with different scans too.
 * Invariants: only LADE_ERR_PROTO for bad text, and then no BSS, an error text and a line; an
 * accepted scan holds n <= 512 BSSs with truncated == (total > n), well-formed addresses, SSIDs
 * of <= 32 octets whose printable form is NUL-terminated and names the BSS, the band and channel
 * of its frequency, signals in -200..50 dBm; parsing is deterministic. lade_wifi_check (SSID
 * NULL and "lade-site", the scan once and twice) returns OK with exactly one wifi.ssid finding
 * whose status follows from the scan, at most one of each other finding (but wifi.scan), every
 * finding in section "wifi" with a summary; giving the same scan twice changes no status but
 * wifi.fixed's (and wifi.scan's count); both renderers succeed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lade/sitecheck.h"
#include "lade/wifiscan.h"
#include "lade/wpa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

#define SITE "lade-site"

/* Opened once and kept: no state of one input reaches the next (only bytes written away). */
static FILE *devnull(void)
{
    static FILE *f;
    if (!f)
        f = fopen("/dev/null", "w");
    CHECK(f != NULL);
    return f;
}

static size_t count_lines(const char *p, size_t n)
{
    size_t lines = 0;
    for (size_t i = 0; i < n; i++)
        lines += p[i] == '\n';
    return lines + 1; /* a last line without "\n" */
}

static bool bssid_ok(const char *a)
{
    for (size_t i = 0; i < 17; i++) {
        char c = a[i];
        if (i % 3 == 2) {
            if (c != ':')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return a[17] == '\0';
}

static void check_bss(const struct lade_wifi_bss *b)
{
    CHECK(bssid_ok(b->bssid));
    CHECK(memchr(b->ssid, '\0', sizeof b->ssid) != NULL);
    CHECK(b->ssid_len <= LADE_WIFI_SSID_MAX);
    CHECK(strlen(b->ssid) <= 4u * b->ssid_len);
    /* "" only for a hidden network: no octets or only zeros */
    bool zeros = true;
    for (size_t i = 0; i < b->ssid_len; i++)
        zeros &= b->ssid_raw[i] == 0;
    CHECK((b->ssid[0] == '\0') == zeros);
    if (b->ssid[0]) {
        CHECK(lade_wifi_bss_is(b, b->ssid));
        for (const char *p = b->ssid; *p; p++)
            CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
    }
    CHECK(b->freq_mhz <= 100000);
    CHECK(b->channel == lade_wpa_freq_to_channel(b->freq_mhz));
    enum lade_wifi_band band = lade_wifi_band_of(b->freq_mhz);
    if (band == LADE_WIFI_BAND_2G4 && b->channel == 0)
        band = LADE_WIFI_BAND_OTHER;
    CHECK(b->band == band);
    CHECK(b->signal_dbm == LADE_WIFI_SIGNAL_NONE || (b->signal_dbm >= -200 && b->signal_dbm <= 50));
    CHECK(b->secondary >= -1 && b->secondary <= 1);
    CHECK(b->secondary == 0 || b->band == LADE_WIFI_BAND_2G4);
    CHECK(b->security >= LADE_WIFI_SEC_OPEN && b->security <= LADE_WIFI_SEC_WPA3);
    CHECK(strcmp(lade_wifi_security_name(b->security), "unknown") != 0);
}

static bool same_bss(const struct lade_wifi_bss *a, const struct lade_wifi_bss *b)
{
    return strcmp(a->bssid, b->bssid) == 0 && strcmp(a->ssid, b->ssid) == 0 &&
           a->ssid_len == b->ssid_len && memcmp(a->ssid_raw, b->ssid_raw, a->ssid_len) == 0 &&
           a->freq_mhz == b->freq_mhz && a->channel == b->channel && a->band == b->band &&
           a->signal_dbm == b->signal_dbm && a->width_known == b->width_known &&
           a->secondary == b->secondary && a->security == b->security &&
           a->associated == b->associated;
}

/* Parses p[0..n) and checks the result against the header's contract. */
static lade_err parse(const char *p, size_t n, struct lade_wifi_scan *s)
{
    lade_err err = lade_wifi_scan_parse(p, n, s);
    if (err != LADE_OK) {
        CHECK(err == LADE_ERR_PROTO || (err == LADE_ERR_TOO_BIG && n > LADE_WIFI_INPUT_MAX));
        CHECK(s->bss == NULL && s->n == 0 && s->total == 0 && !s->truncated);
        CHECK(memchr(s->error, '\0', sizeof s->error) != NULL && s->error[0] != '\0');
        if (err == LADE_ERR_PROTO)
            CHECK(s->err_line >= 1 && s->err_line <= count_lines(p, n));
        return err;
    }
    CHECK(s->error[0] == '\0' && s->err_line == 0);
    CHECK(s->n <= LADE_WIFI_BSS_MAX && s->n <= s->total);
    CHECK(s->truncated == (s->total > s->n));
    CHECK(!s->truncated || s->n == LADE_WIFI_BSS_MAX);
    CHECK(s->n == 0 || s->bss != NULL);
    CHECK(s->format != LADE_WIFI_FORMAT_UNKNOWN || s->total == 0);
    for (size_t i = 0; i < s->n; i++) {
        check_bss(&s->bss[i]);
        CHECK(!s->bss[i].associated || s->format == LADE_WIFI_FORMAT_IW);
        CHECK(!s->bss[i].width_known || s->format == LADE_WIFI_FORMAT_IW);
    }
    /* deterministic */
    struct lade_wifi_scan again;
    CHECK(lade_wifi_scan_parse(p, n, &again) == LADE_OK);
    CHECK(again.format == s->format && again.n == s->n && again.total == s->total);
    for (size_t i = 0; i < s->n; i++)
        CHECK(same_bss(&s->bss[i], &again.bss[i]));
    lade_wifi_scan_free(&again);
    CHECK(again.bss == NULL && again.n == 0);
    return LADE_OK;
}

static size_t count_id(const struct lade_check_report *r, const char *id)
{
    size_t k = 0;
    for (size_t i = 0; i < r->n; i++)
        k += strcmp(r->items[i].id, id) == 0;
    return k;
}

static enum lade_check_status status_of(const struct lade_check_report *r, const char *id)
{
    const struct lade_check_item *it = lade_check_find(r, id);
    CHECK(it != NULL);
    return it->status;
}

/* The SSID lade_wifi_check takes when given none: the latest scan's associated network. */
static const char *associated_ssid(const struct lade_wifi_scan *scans, size_t nscans)
{
    for (size_t i = nscans; i-- > 0;)
        for (size_t j = 0; j < scans[i].n; j++)
            if (scans[i].bss[j].associated && scans[i].bss[j].ssid[0])
                return scans[i].bss[j].ssid;
    return NULL;
}

static void render(const struct lade_check_report *r, unsigned width, bool colour)
{
    FILE *f = devnull();
    CHECK(lade_check_render_text(r, f, colour, width) == LADE_OK);
    CHECK(lade_check_render_json(r, NULL, f) == LADE_OK);
}

/* Runs the WiFi checks on scans[0..nscans) for ssid into r (initialised here; the caller frees
 * it) and checks the findings. */
static void run_check(const struct lade_wifi_scan *scans, size_t nscans, const char *ssid,
                      struct lade_check_report *r)
{
    lade_check_report_init(r);
    CHECK(lade_wifi_check(scans, nscans, ssid, r) == LADE_OK);
    CHECK(r->n > 0);
    for (size_t i = 0; i < r->n; i++) {
        const struct lade_check_item *it = &r->items[i];
        CHECK(strncmp(it->id, "wifi.", 5) == 0 && strcmp(it->section, "wifi") == 0);
        CHECK(it->status >= LADE_CHECK_PASS && it->status <= LADE_CHECK_FAIL);
        CHECK(it->summary[0] != '\0');
        CHECK(memchr(it->summary, '\0', sizeof it->summary) != NULL);
        CHECK(memchr(it->remedy, '\0', sizeof it->remedy) != NULL);
        /* a failure or a warning always says what to do */
        CHECK(it->status < LADE_CHECK_WARN || it->remedy[0] != '\0');
        if (strcmp(it->id, "wifi.scan") != 0)
            CHECK(count_id(r, it->id) == 1);
    }
    size_t truncated = 0;
    for (size_t i = 0; i < nscans; i++)
        truncated += scans[i].truncated;
    CHECK(count_id(r, "wifi.scan") == truncated);

    /* wifi.ssid follows from the scans */
    const char *want = ssid && ssid[0] ? ssid : associated_ssid(scans, nscans);
    bool seen = false, seen24 = false;
    for (size_t i = 0; want && i < nscans; i++)
        for (size_t j = 0; j < scans[i].n; j++)
            if (lade_wifi_bss_is(&scans[i].bss[j], want)) {
                seen = true;
                seen24 |= scans[i].bss[j].band == LADE_WIFI_BAND_2G4;
            }
    enum lade_check_status st = status_of(r, "wifi.ssid");
    if (!want)
        CHECK(st == LADE_CHECK_NOTE);
    else
        CHECK(st == (seen ? LADE_CHECK_PASS : LADE_CHECK_FAIL));
    CHECK((lade_check_find(r, "wifi.census") != NULL) == !seen);
    CHECK((lade_check_find(r, "wifi.band") != NULL) == seen);
    CHECK((lade_check_find(r, "wifi.security") != NULL) == seen);
    if (seen)
        CHECK((status_of(r, "wifi.band") == LADE_CHECK_FAIL) == !seen24);
    static const char *const per24[] = {"wifi.channel", "wifi.fixed", "wifi.signal", "wifi.overlap",
                                        "wifi.width"};
    for (size_t k = 0; k < sizeof per24 / sizeof per24[0]; k++)
        CHECK((lade_check_find(r, per24[k]) != NULL) == seen24);
    if (seen24 && nscans == 1)
        CHECK(status_of(r, "wifi.fixed") == LADE_CHECK_NOTE);
    int exit = lade_check_exit_status(r);
    CHECK(exit >= 0 && exit <= 2);
}

/* A BSSID of the network listed twice in one scan on different 2.4 GHz channels: given twice,
 * that scan looks like an access point that changed its channel. */
static bool moved_within(const struct lade_wifi_scan *s, const char *ssid)
{
    for (size_t i = 0; i < s->n; i++)
        for (size_t j = i + 1; j < s->n; j++) {
            const struct lade_wifi_bss *a = &s->bss[i], *b = &s->bss[j];
            if (a->band == LADE_WIFI_BAND_2G4 && b->band == LADE_WIFI_BAND_2G4 &&
                lade_wifi_bss_is(a, ssid) && lade_wifi_bss_is(b, ssid) &&
                strcmp(a->bssid, b->bssid) == 0 && a->channel != b->channel)
                return true;
        }
    return false;
}

static void check_one(const struct lade_wifi_scan *s, const char *ssid, unsigned width)
{
    struct lade_check_report once, twice;
    run_check(s, 1, ssid, &once);
    render(&once, width, false);

    const struct lade_wifi_scan pair[2] = {*s, *s}; /* shallow: the same BSS array twice */
    run_check(pair, 2, ssid, &twice);
    render(&twice, width, true);

    /* The same scan again tells nothing new but whether the channel stayed. */
    for (size_t i = 0; i < once.n; i++) {
        const struct lade_check_item *it = &once.items[i];
        if (strcmp(it->id, "wifi.scan") == 0)
            continue;
        if (strcmp(it->id, "wifi.fixed") == 0) {
            enum lade_check_status t = status_of(&twice, "wifi.fixed");
            const char *want = ssid && ssid[0] ? ssid : associated_ssid(s, 1);
            CHECK(t != LADE_CHECK_NOTE);
            CHECK((t == LADE_CHECK_FAIL) == moved_within(s, want));
            continue;
        }
        CHECK(status_of(&twice, it->id) == it->status);
    }
    CHECK(once.n == twice.n - count_id(&twice, "wifi.scan") / 2);
    lade_check_report_free(&once);
    lade_check_report_free(&twice);
    CHECK(once.items == NULL && once.n == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct lade_wifi_scan s;
    if (parse(in, size, &s) == LADE_OK) {
        check_one(&s, NULL, (unsigned)(size % 120));
        check_one(&s, SITE, 100);
    }
    lade_wifi_scan_free(&s);

    /* Two different scans: before and after the first NUL. */
    const char *nul = size ? memchr(in, '\0', size) : NULL;
    if (nul) {
        size_t n1 = (size_t)(nul - in);
        struct lade_wifi_scan two[2];
        lade_err e1 = parse(in, n1, &two[0]);
        lade_err e2 = parse(nul + 1, size - n1 - 1, &two[1]);
        if (e1 == LADE_OK && e2 == LADE_OK) {
            const char *names[2] = {NULL, SITE};
            for (size_t k = 0; k < 2; k++) {
                struct lade_check_report r;
                run_check(two, 2, names[k], &r);
                render(&r, 80, k == 1);
                lade_check_report_free(&r);
            }
        }
        lade_wifi_scan_free(&two[0]);
        lade_wifi_scan_free(&two[1]);
    }
    return 0;
}
