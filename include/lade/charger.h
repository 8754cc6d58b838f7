/* lade — the charger agent: one context per charger, no globals (SPEC R2, R7, R8, R11).
 *
 * A context owns its cloud link: TLS to the hub, an MQTT session in the IoT Hub dialect, SAS
 * tokens renewed before they expire, back-off after failures, the twin kept in sync and direct
 * methods answered. Many contexts can share one event loop and one TLS context (lade-sim).
 * The charger only opens outbound connections; it never binds or listens.
 *
 * Cloud link states (docs/charger.md):
 *   WAITING     back-off timer armed before the next attempt
 *   CONNECTING  TCP + TLS handshake in progress
 *   MQTT        CONNECT sent, waiting for CONNACK
 *   ONLINE      CONNACK accepted: subscribed, twin requested, telemetry flowing
 *   STOPPED     lade_charger_stop was called
 */
#ifndef LADE_CHARGER_H
#define LADE_CHARGER_H

#include <stdbool.h>
#include <stdint.h>

#include "lade/err.h"
#include "lade/settings.h"

struct lade_loop;
struct lade_tls_ctx;
struct lade_charger;

#define LADE_FIRMWARE_VERSION "0.1.0"

enum lade_link_state {
    LADE_LINK_WAITING = 0,
    LADE_LINK_CONNECTING,
    LADE_LINK_MQTT,
    LADE_LINK_ONLINE,
    LADE_LINK_STOPPED,
};
const char *lade_link_state_name(enum lade_link_state s);

struct lade_charger_opts {
    const struct lade_settings *settings; /* copied */
    struct lade_loop *loop;               /* borrowed; must outlive the charger */
    struct lade_tls_ctx *tls;             /* borrowed; NULL: the charger makes its own */
    const char *status_file; /* NULL: none. JSON status rewritten atomically on changes */
    /* RestartCharger (102): called (from the loop, after the reply went out) to restart the
     * agent; NULL: the command is refused as not supported. */
    void (*on_restart)(void *ud);
    void *restart_ud;
    /* 0: the periodic snapshots come every telemetry interval from the connect's. Else the
     * first periodic one after the first connect comes this many ms after it (< the interval):
     * a fleet simulator gives each charger a random phase, as a fleet that came up over hours
     * has, instead of all reporting in the same minute. */
    uint32_t snapshot_phase_ms;
};

struct lade_charger_status {
    enum lade_link_state link;
    uint32_t connects;        /* CONNACKs accepted since start */
    uint32_t failures;        /* attempts or links that ended in an error */
    uint32_t token_renewals;  /* reconnects made to present a fresh token */
    uint32_t tls_resumptions; /* handshakes that resumed the previous TLS session */
    lade_err last_error;
    char last_reason[160];        /* why the link last went down ("" if never) */
    uint64_t bytes_in, bytes_out; /* wire bytes (TLS records included), all connections */
    uint64_t connect_bytes_in;    /* last connect: TLS handshake .. twin document received */
    uint64_t connect_bytes_out;
    uint64_t handshake_bytes_in, handshake_bytes_out; /* last TLS handshake alone */
    int64_t desired_version;                          /* last desired $version applied (0: none) */
    uint32_t telemetry_interval_s;                    /* current, possibly set by the twin */
    uint32_t telemetry_sent;
    uint32_t methods_answered;
    uint32_t next_retry_ms; /* while WAITING */
    /* Charging (evse configured): when the current car was first seen (CP B/C/D after A) and
     * when it was first offered a current (> 0) since; monotonic ms, 0: no car / no offer yet.
     * Plug-in → offer is the end-to-end balancing latency a driver sees (lade-sim, bench). */
    uint64_t car_since_ms;
    uint64_t offer_since_ms;
    int32_t offer_ma;    /* on the pilot now */
    int32_t setpoint_ma; /* in force: the portal's last, or the offline current before one */
};

/* Creates a charger from loaded settings (identity checked: LADE_ERR_CONFIG if incomplete).
 * Nothing happens on the network until lade_charger_start. */
lade_err lade_charger_new(struct lade_charger **out,
                          const struct lade_charger_opts *opts) LADE_MUST_CHECK;
/* Schedules the first connection attempt (after delay_ms, to spread a fleet's start). */
lade_err lade_charger_start(struct lade_charger *c, uint32_t delay_ms) LADE_MUST_CHECK;
/* Sends DISCONNECT if online, closes the link and cancels every timer. Idempotent. */
void lade_charger_stop(struct lade_charger *c);
/* Stops (if needed) and frees. NULL is ignored. */
void lade_charger_free(struct lade_charger *c);
void lade_charger_status(const struct lade_charger *c, struct lade_charger_status *out);
const char *lade_charger_id(const struct lade_charger *c);
/* The firmware version of the running slot (docs/firmware.md), else the build's. */
const char *lade_charger_firmware_version(const struct lade_charger *c);
/* The wall clock is (or is no longer) synchronised (NTP, SPEC R6). Session records say whether
 * their start and end times were taken on a trusted clock. Default: not trusted. */
void lade_charger_set_clock_trusted(struct lade_charger *c, bool trusted);

#endif
