/* lade — WiFi through wpa_supplicant's control interface (SPEC R1, R11, R19; docs/wifi-lte.md).
 *
 * Two halves:
 *   - a pure parser (src/proto/wpa/): replies to STATUS, SIGNAL_POLL and SCAN_RESULTS, the
 *     unsolicited "<level>CTRL-EVENT-..." messages, frequency → channel, and the conversion to
 *     the bearer manager's struct lade_bearer_link_state. No I/O, no clock, no malloc; every
 *     string it returns is a view into the caller's buffer (valid as long as that buffer);
 *   - a driver (src/port/linux/wpa.c): a client of the control socket (AF_UNIX SOCK_DGRAM bound
 *     to its own path, ATTACHed for events), non-blocking on a lade_loop, polling STATUS and
 *     SIGNAL_POLL, reconnecting when wpa_supplicant restarts, reporting the link through a
 *     callback, and resetting the association (REASSOCIATE) when the bearer manager asks.
 */
#ifndef LADE_WPA_H
#define LADE_WPA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/bearer.h"
#include "lade/codec.h"
#include "lade/err.h"

/* The largest reply or event accepted (wpa_ctrl's own clients use 4 KiB buffers; a longer
 * SCAN_RESULTS is cut by wpa_supplicant itself). Longer input is LADE_ERR_TOO_BIG. */
#define LADE_WPA_REPLY_MAX 4096

/* ---- pure parser ------------------------------------------------------------------------ */

/* wpa_state from STATUS (the supplicant's own state names). */
enum lade_wpa_state {
    LADE_WPA_STATE_UNKNOWN = 0, /* absent or a name this parser does not know */
    LADE_WPA_STATE_DISCONNECTED,
    LADE_WPA_STATE_INTERFACE_DISABLED,
    LADE_WPA_STATE_INACTIVE,
    LADE_WPA_STATE_SCANNING,
    LADE_WPA_STATE_AUTHENTICATING,
    LADE_WPA_STATE_ASSOCIATING,
    LADE_WPA_STATE_ASSOCIATED,
    LADE_WPA_STATE_4WAY_HANDSHAKE,
    LADE_WPA_STATE_GROUP_HANDSHAKE,
    LADE_WPA_STATE_COMPLETED,
};
/* "COMPLETED", ... as wpa_supplicant spells them; "UNKNOWN" for anything else. */
const char *lade_wpa_state_name(enum lade_wpa_state s);
enum lade_wpa_state lade_wpa_state_parse(struct lade_str s);

/* What a reply is, by its first line. */
enum lade_wpa_reply {
    LADE_WPA_REPLY_DATA = 0,    /* anything else: key=value lines, a table, ... */
    LADE_WPA_REPLY_OK,          /* "OK" */
    LADE_WPA_REPLY_FAIL,        /* "FAIL" (e.g. SIGNAL_POLL while not associated) */
    LADE_WPA_REPLY_PONG,        /* "PONG" (PING) */
    LADE_WPA_REPLY_UNKNOWN_CMD, /* "UNKNOWN COMMAND" */
    LADE_WPA_REPLY_EVENT,       /* starts with '<' or "IFNAME=": an event, not a reply */
};
enum lade_wpa_reply lade_wpa_reply_kind(const char *buf, size_t n);

/* STATUS: key=value lines. Unknown keys are skipped; for a repeated key the first one counts.
 * Views point into buf. */
struct lade_wpa_status {
    enum lade_wpa_state state; /* LADE_WPA_STATE_UNKNOWN when wpa_state= is missing */
    uint32_t freq_mhz;         /* freq=; 0 when absent */
    int32_t network_id;        /* id=; -1 when absent */
    struct lade_str bssid;     /* bssid= (empty when absent) */
    struct lade_str ssid;     /* ssid= as printed (non-printable bytes escaped by the supplicant) */
    struct lade_str key_mgmt; /* key_mgmt= */
    struct lade_str ip_address; /* ip_address= (the supplicant reads it from the interface) */
};
/* Errors: LADE_ERR_INVAL (NULL), LADE_ERR_TOO_BIG (n > LADE_WPA_REPLY_MAX), LADE_ERR_PROTO (a
 * line without '=' or with an empty key, a NUL byte, a bad number, a FAIL/event reply). */
lade_err lade_wpa_parse_status(const char *buf, size_t n,
                               struct lade_wpa_status *out) LADE_MUST_CHECK;

/* SIGNAL_POLL: RSSI=, LINKSPEED=, NOISE=, FREQUENCY= (others skipped). */
struct lade_wpa_signal {
    int16_t rssi_dbm;        /* LADE_BEARER_SIGNAL_UNKNOWN when absent */
    int16_t noise_dbm;       /* LADE_BEARER_SIGNAL_UNKNOWN when absent or 9999 (driver: none) */
    uint32_t linkspeed_mbps; /* 0 when absent */
    uint32_t freq_mhz;       /* 0 when absent */
};
/* RSSI/NOISE must lie in -200..+50 dBm, LINKSPEED in 0..1000000, FREQUENCY in 1..100000.
 * Errors as lade_wpa_parse_status ("FAIL" is LADE_ERR_PROTO: not associated). */
lade_err lade_wpa_parse_signal(const char *buf, size_t n,
                               struct lade_wpa_signal *out) LADE_MUST_CHECK;

/* SCAN_RESULTS: a header line, then "bssid\tfreq\tsignal\tflags\tssid" per BSS. */
struct lade_wpa_bss {
    struct lade_str bssid; /* "aa:bb:cc:dd:ee:ff" (checked) */
    uint32_t freq_mhz;     /* 1..100000 */
    int16_t signal_dbm;    /* -200..+50 */
    struct lade_str flags; /* "[WPA2-PSK-CCMP][ESS]" */
    struct lade_str ssid;  /* the rest of the line, as printed (may be empty) */
};
/* Fills out[0..cap) with the first cap entries; *count = entries stored, *total (may be NULL)
 * = entries in the reply (more than *count when cap was too small: nothing is lost silently).
 * Errors as lade_wpa_parse_status (a line with fewer than 5 fields, a bad BSSID or number). */
lade_err lade_wpa_parse_scan(const char *buf, size_t n, struct lade_wpa_bss *out, size_t cap,
                             size_t *count, size_t *total) LADE_MUST_CHECK;

enum lade_wpa_event_kind {
    LADE_WPA_EV_OTHER = 0,          /* an event this parser does not interpret (name set) */
    LADE_WPA_EV_CONNECTED,          /* CTRL-EVENT-CONNECTED: bssid, network_id */
    LADE_WPA_EV_DISCONNECTED,       /* CTRL-EVENT-DISCONNECTED: bssid, reason, locally_gen */
    LADE_WPA_EV_SSID_TEMP_DISABLED, /* network_id, ssid, auth_failures, duration_s, why */
    LADE_WPA_EV_SSID_REENABLED,     /* network_id, ssid */
    LADE_WPA_EV_TERMINATING,        /* wpa_supplicant is exiting */
    LADE_WPA_EV_SCAN_RESULTS,       /* new scan results are available */
    LADE_WPA_EV_ASSOC_REJECT,       /* bssid, reason (= status_code) */
    LADE_WPA_EV_SIGNAL_CHANGE,      /* signal_dbm (from the supplicant's signal monitor) */
};

struct lade_wpa_event {
    enum lade_wpa_event_kind kind;
    uint8_t level;          /* the <N> message level, 0..9 */
    struct lade_str ifname; /* from an "IFNAME=wlan0 " prefix (global control interface) */
    struct lade_str name;   /* "CTRL-EVENT-CONNECTED", ... (the first word) */
    struct lade_str text;   /* everything after the name (leading spaces skipped) */
    struct lade_str bssid;  /* empty when not given */
    int32_t network_id;     /* -1 when not given */
    int32_t reason;         /* reason= / status_code=; -1 when not given */
    bool locally_generated;
    struct lade_str ssid; /* ssid="..." without the quotes, escapes kept as printed */
    uint32_t auth_failures;
    uint32_t duration_s;
    struct lade_str why; /* SSID-TEMP-DISABLED reason= text, e.g. "WRONG_KEY" */
    int16_t signal_dbm;  /* SIGNAL-CHANGE signal=; LADE_BEARER_SIGNAL_UNKNOWN when not given */
};
/* Parses one event datagram "[IFNAME=x ]<level>NAME[ text]" (one trailing '\n' tolerated).
 * Errors: LADE_ERR_INVAL (NULL), LADE_ERR_TOO_BIG, LADE_ERR_PROTO (no "<digit>" prefix, an empty
 * name, a NUL byte, an unterminated quote, a bad number in a field this parser reads). */
lade_err lade_wpa_parse_event(const char *buf, size_t n,
                              struct lade_wpa_event *out) LADE_MUST_CHECK;

/* 802.11 channel number of a frequency: 2.4 GHz (2412..2472 → 1..13, 2484 → 14), 5 GHz
 * (5000 + 5·ch), 6 GHz (5950 + 5·ch, and 5935 → 2); 0 for anything else. */
uint16_t lade_wpa_freq_to_channel(uint32_t freq_mhz);

/* The bearer manager's view of WiFi: up when associated (COMPLETED) and an address is known;
 * signal = rssi_dbm, freq and its channel (unknown when not up). */
void lade_wpa_to_link(enum lade_wpa_state state, bool has_address, int16_t rssi_dbm,
                      uint32_t freq_mhz, struct lade_bearer_link_state *out);

/* ---- driver (src/port/linux/wpa.c) --------------------------------------------------------- */

struct lade_loop;
struct lade_wpa;

struct lade_wpa_config {
    const char *ctrl_path;       /* wpa_supplicant's socket, e.g. /var/run/wpa_supplicant/wlan0 */
    const char *client_dir;      /* where our own socket is bound [/tmp]; the name is
                                    lade_wpa_<pid>_<n>, removed on close */
    uint32_t request_timeout_ms; /* [3000] a reply later than this: the supplicant is gone */
    uint32_t poll_ms;            /* [5000] STATUS + SIGNAL_POLL period while attached */
    uint32_t retry_min_ms;       /* [1000] first retry when the socket is gone, doubling ... */
    uint32_t retry_max_ms;       /* [30000] ... up to this */
    bool need_address;           /* [true] up needs an address: STATUS ip_address= or
                                    lade_wpa_set_address(true) */
};
void lade_wpa_config_default(struct lade_wpa_config *c);

/* Called from the loop whenever the link state changes (up, signal, channel or frequency). ls
 * is valid only during the call. */
typedef void (*lade_wpa_link_cb)(void *ud, const struct lade_bearer_link_state *ls);

/* Diagnostics (R19). Strings are copies. */
struct lade_wpa_info {
    bool attached; /* the control socket answers and we receive events */
    enum lade_wpa_state state;
    struct lade_bearer_link_state link; /* as last reported */
    int16_t rssi_dbm;
    uint32_t freq_mhz;
    uint32_t linkspeed_mbps;
    char ssid[100];
    char bssid[18];
    char ip_address[48];
    int32_t last_disconnect_reason; /* -1 none */
    char last_temp_disabled[48];    /* why the last SSID-TEMP-DISABLED, e.g. "WRONG_KEY" */
    uint32_t reconnects;            /* control-socket (re)connections after the first */
    uint32_t timeouts;              /* requests that got no reply */
    uint32_t resets;                /* REASSOCIATE/RECONNECT sent */
};

/* Creates the driver, disabled. Copies the configuration (the strings too).
 * Errors: LADE_ERR_INVAL (NULL loop/cb/ctrl_path), LADE_ERR_CONFIG (a socket path longer than
 * sun_path, timeouts of 0 or retry_min > retry_max), LADE_ERR_NOMEM. */
lade_err lade_wpa_new(struct lade_loop *loop, const struct lade_wpa_config *cfg,
                      lade_wpa_link_cb cb, void *ud, struct lade_wpa **out) LADE_MUST_CHECK;
/* Closes the socket, cancels timers, frees. No callback is made. NULL is ignored. */
void lade_wpa_free(struct lade_wpa *w);
/* Enabled: connect (and keep reconnecting) to wpa_supplicant and report the link. Disabled:
 * DETACH, close our socket and report the link down once. wpa_supplicant's own association is
 * left alone either way. Idempotent. */
lade_err lade_wpa_set_enabled(struct lade_wpa *w, bool enabled) LADE_MUST_CHECK;
/* The bearer manager's RESET: REASSOCIATE (RECONNECT if the supplicant refuses it).
 * LADE_ERR_STATE when not attached (it reconnects by itself), LADE_ERR_FULL if the request queue
 * is full. */
lade_err lade_wpa_reset(struct lade_wpa *w) LADE_MUST_CHECK;
/* The interface's address, from DHCP or link-local (the caller knows it first). */
void lade_wpa_set_address(struct lade_wpa *w, bool has_address);
void lade_wpa_info(const struct lade_wpa *w, struct lade_wpa_info *out);

/* Any other request (e.g. "SCAN_RESULTS"): the reply (NULL, 0 with LADE_ERR_TIMEOUT or
 * LADE_ERR_CLOSED) is passed to cb from the loop; the reply buffer is valid during the call.
 * Errors: LADE_ERR_INVAL (empty or > 256 bytes, or a newline), LADE_ERR_STATE (not attached),
 * LADE_ERR_FULL. */
typedef void (*lade_wpa_reply_cb)(void *ud, lade_err err, const char *reply, size_t n);
lade_err lade_wpa_request(struct lade_wpa *w, const char *cmd, lade_wpa_reply_cb cb,
                          void *ud) LADE_MUST_CHECK;

#endif
