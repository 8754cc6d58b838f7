/* lade — WiFi scans for the site check (src/common/wifiscan.c; SPEC R1, R13, R18).
 *
 * Two halves, both pure (no I/O, no clock):
 *   - a parser of recorded scans: the text of `iw dev <if> scan` (iw 3.x … 6.x) or of
 *     wpa_supplicant's SCAN_RESULTS (`wpa_cli scan_results`, parsed line by line with
 *     lade_wpa_parse_scan()); the format is detected from the first line;
 *   - the evaluation: one or more scans taken at the charger's place (minutes apart) and the
 *     charger network's SSID → findings "wifi.*" added to a struct lade_check_report.
 *
 * What a charger needs (R1, R18): the network on 2.4 GHz (802.11 b/g/n), a fixed channel 1–11
 * (best 1, 6 or 11), signal ≥ −75 dBm where the charger hangs, and (R13) encryption so that
 * nobody else rides on the chargers' network. Findings, by id (docs/lade-check.md):
 *   wifi.ssid      the network is seen (fail: not seen; data lists the strongest networks)
 *   wifi.band      it is on 2.4 GHz (fail: 5/6 GHz only)
 *   wifi.channel   1/6/11 pass; 2–5, 7–10 warn; 12–14 fail
 *   wifi.fixed     the channel stayed the same in every scan (fail: the same access point
 *                  moved; warn: the network's channels differ; note: only one scan)
 *   wifi.signal    strongest 2.4 GHz access point ≥ −70 pass, −75…−71 warn, < −75 fail (PLC)
 *   wifi.overlap   other networks on overlapping channels (warn) or the same channel (note)
 *   wifi.width     40 MHz on 2.4 GHz (warn); note when the scan does not show the width
 *   wifi.security  open or WEP (fail), WPA/TKIP only (warn), WPA2/WPA3 (pass)
 *   wifi.census    (note) networks heard around channels 1, 6 and 11, when no SSID is known or
 *                  the network is not seen
 *   wifi.scan      (note) a scan held more than LADE_WIFI_BSS_MAX networks: the rest unchecked
 */
#ifndef LADE_WIFISCAN_H
#define LADE_WIFISCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"

struct lade_check_report;

#define LADE_WIFI_BSS_MAX     512u               /* BSSs kept per scan; more: truncated */
#define LADE_WIFI_SSID_MAX    32u                /* octets (IEEE 802.11 limit) */
#define LADE_WIFI_SSID_TEXT   (4 * 32 + 1)       /* printable form: every octet as \xNN + NUL */
#define LADE_WIFI_INPUT_MAX   (4u * 1024 * 1024) /* largest scan text accepted */
#define LADE_WIFI_LINE_MAX    4000u              /* longest line accepted */
#define LADE_WIFI_SIGNAL_NONE (-32768) /* signal not given (= LADE_BEARER_SIGNAL_UNKNOWN) */

enum lade_wifi_format {
    LADE_WIFI_FORMAT_UNKNOWN = 0, /* empty input: no line to tell */
    LADE_WIFI_FORMAT_IW,          /* iw dev <if> scan */
    LADE_WIFI_FORMAT_WPA,         /* wpa_cli scan_results / SCAN_RESULTS */
};

enum lade_wifi_band {
    LADE_WIFI_BAND_OTHER = 0, /* a frequency outside the three bands */
    LADE_WIFI_BAND_2G4,
    LADE_WIFI_BAND_5G,
    LADE_WIFI_BAND_6G,
};
/* "2.4 GHz", "5 GHz", "6 GHz", "other". */
const char *lade_wifi_band_name(enum lade_wifi_band b);
/* Band of a frequency in MHz: 2400–2500, 4900–5924, 5925–7125. */
enum lade_wifi_band lade_wifi_band_of(uint32_t freq_mhz);

/* Ordered from weakest to strongest. */
enum lade_wifi_security {
    LADE_WIFI_SEC_OPEN = 0, /* no encryption */
    LADE_WIFI_SEC_WEP,      /* privacy bit without WPA/RSN: WEP */
    LADE_WIFI_SEC_WPA,      /* WPA (version 1, TKIP) only */
    LADE_WIFI_SEC_WPA2,     /* RSN with PSK or 802.1X */
    LADE_WIFI_SEC_WPA3,     /* RSN with SAE, OWE or Suite B (also in transition mode) */
};
/* "open", "WEP", "WPA", "WPA2", "WPA3". */
const char *lade_wifi_security_name(enum lade_wifi_security s);

/* One BSS (one access point radio) as the scan saw it. Strings are copies, NUL-terminated. */
struct lade_wifi_bss {
    char bssid[18];                       /* "aa:bb:cc:dd:ee:ff", lower case */
    char ssid[LADE_WIFI_SSID_TEXT];       /* printable: UTF-8 kept, other bytes and '\' as \xNN;
                                             "" for a hidden network */
    uint8_t ssid_raw[LADE_WIFI_SSID_MAX]; /* the octets (escapes of the input decoded) */
    uint8_t ssid_len;
    uint32_t freq_mhz;
    uint16_t channel; /* lade_wpa_freq_to_channel(); 0 when the frequency is on no channel */
    enum lade_wifi_band band;
    int16_t signal_dbm; /* rounded; LADE_WIFI_SIGNAL_NONE when the scan did not give it */
    bool width_known;   /* iw printed "HT operation" (wpa_cli never shows the width) */
    int8_t secondary;   /* 40 MHz: +1 secondary channel above, -1 below; 0: 20 MHz */
    enum lade_wifi_security security;
    bool associated; /* iw: "-- associated" (this computer is connected to it) */
};

/* A parsed scan. bss is owned (lade_wifi_scan_free). */
struct lade_wifi_scan {
    enum lade_wifi_format format;
    struct lade_wifi_bss *bss;
    size_t n;        /* BSSs stored (≤ LADE_WIFI_BSS_MAX) */
    size_t total;    /* BSSs in the input: more than n when truncated */
    bool truncated;  /* total > n */
    size_t err_line; /* after LADE_ERR_PROTO: the 1-based line at fault (0: the whole input) */
    char error[160]; /* after an error: what was wrong, for people ("line 12: …"); else "" */
};

/* Parses a scan from buf[0..n) (the format is detected: a first line "BSS …" is iw, "bssid /"
 * is wpa_cli; a leading "Selected interface 'x'" line from wpa_cli is skipped). Lines may end
 * in "\n" or "\r\n". Empty input is a valid scan with no BSS. out is initialised first and must
 * be freed with lade_wifi_scan_free() whatever the result (on error it holds no BSS, only
 * err_line and error).
 *
 * iw blocks: "BSS <addr>[(on <if>)][ -- associated]" then indented fields; read are freq:,
 * signal:, SSID:, capability: (Privacy), RSN:/WPA: (authentication suites), HT operation:
 * (secondary channel offset); every other field is skipped. A block must have a freq:.
 *
 * Errors: LADE_ERR_INVAL (NULL out, or NULL buf with n > 0); LADE_ERR_TOO_BIG (n >
 * LADE_WIFI_INPUT_MAX); LADE_ERR_NOMEM; LADE_ERR_PROTO (neither format, a NUL byte, a line
 * longer than LADE_WIFI_LINE_MAX, a bad address, frequency or signal, an SSID over 32 octets, a
 * block without freq: such as output cut in the middle, "FAIL" from wpa_supplicant). More than
 * LADE_WIFI_BSS_MAX BSSs is not an error: the first ones are kept and truncated is set. */
lade_err lade_wifi_scan_parse(const char *buf, size_t n,
                              struct lade_wifi_scan *out) LADE_MUST_CHECK;

/* Frees the BSS array and clears the scan. NULL is ignored. */
void lade_wifi_scan_free(struct lade_wifi_scan *s);

/* True when the BSS's SSID is ssid (compared as given: the octets or the printable form). */
bool lade_wifi_bss_is(const struct lade_wifi_bss *b, const char *ssid);

/* Evaluates scans[0..nscans) (the same place, oldest first) for the network ssid and adds the
 * findings "wifi.*" (see the top of this file) to r. ssid NULL or "": the network a scan marks
 * associated (iw), else a note that --ssid is needed and only the census of channels 1/6/11.
 * Signal: per scan the strongest 2.4 GHz access point of the network, then the weakest of those
 * (a charger must work at the worst moment seen). Neighbours count when stronger than
 * LADE_WIFI_NEIGHBOUR_DBM.
 * Errors: LADE_ERR_INVAL (NULL r, nscans 0 or scans NULL), LADE_ERR_NOMEM (a finding could not be
 * added; the report keeps those added before). */
#define LADE_WIFI_NEIGHBOUR_DBM (-85)
#define LADE_WIFI_SIGNAL_GOOD   (-70) /* at or above: pass */
#define LADE_WIFI_SIGNAL_MIN    (-75) /* at or above: warn (marginal); below: fail (R1) */
lade_err lade_wifi_check(const struct lade_wifi_scan *scans, size_t nscans, const char *ssid,
                         struct lade_check_report *r) LADE_MUST_CHECK;

#endif
