/* lade — the bearer manager: which network a charger uses to reach the cloud (SPEC R1, R11,
 * R13, R19; docs/bearer.md).
 *
 * A pure state machine (no I/O, no clock): the shell feeds it what each bearer's driver sees
 * (wired/PLC carrier from netlink, WiFi association and signal from wpa_supplicant, LTE-M
 * registration, signal and PDP context from the modem) and what the cloud link sees (connected,
 * or how long it has been unreachable), each with the monotonic time; lade_bearer_step() says
 * which bearer to use and what to do (bring one up, take one down, reset one, reconnect the
 * cloud link, ask for a restart) and when to step again.
 *
 * Policy, with the reasons in docs/bearer.md:
 *   - a fixed priority order (default: wired/PLC, then WiFi, then LTE-M — the metered one last);
 *   - a bearer is usable when its link is up, its signal is good enough (WiFi ≥ −75 dBm, R1) and
 *     for WiFi its channel is a 2.4 GHz channel 1–11 (R1), and it is not in a penalty;
 *   - no flapping (R13): the active bearer is left only when it has been unusable for
 *     down_hold_ms, or the cloud is unreachable over it (watchdog); a higher-priority bearer is
 *     taken only after it has been usable for upgrade_hold_ms AND the active one has been used
 *     for min_dwell_ms; a bearer that fails again soon after it was chosen gets a penalty that
 *     doubles with each failure (up to penalty_max_ms);
 *   - a watchdog escalates while the cloud stays unreachable over the active bearer:
 *     reconnect the cloud link (at wd_reconnect_ms), reset the bearer and try the next usable
 *     one (wd_reset_ms), ask for a restart (wd_restart_ms; the agent defers it while a car is
 *     charging — not this machine's concern).
 */
#ifndef LADE_BEARER_H
#define LADE_BEARER_H

#include <stdbool.h>
#include <stdint.h>

#include "lade/err.h"

enum lade_bearer_kind {
    LADE_BEARER_WIRED = 0, /* Ethernet or PLC (HomePlug Green PHY: an Ethernet-like interface) */
    LADE_BEARER_WIFI = 1,
    LADE_BEARER_LTE = 2,
    LADE_BEARER_COUNT = 3,
    LADE_BEARER_NONE = -1,
};
const char *lade_bearer_name(int kind); /* "wired", "wifi", "lte", "none" */

#define LADE_BEARER_SIGNAL_UNKNOWN (-32768)

/* Why a bearer is not usable (diagnostics). */
enum lade_bearer_why {
    LADE_BEARER_OK = 0,
    LADE_BEARER_ABSENT,       /* not fitted / not configured */
    LADE_BEARER_LINK_DOWN,    /* no carrier / not associated / not registered or no PDP */
    LADE_BEARER_WEAK,         /* signal below the minimum */
    LADE_BEARER_BAD_CHANNEL,  /* WiFi on 5 GHz or channel 12/13/14 */
    LADE_BEARER_PENALTY,      /* failed recently; waiting out its penalty */
    LADE_BEARER_CLOUD_FAILED, /* the cloud was unreachable over it (watchdog) */
};
const char *lade_bearer_why_name(enum lade_bearer_why w);

struct lade_bearer_config {
    /* order[0] is the most preferred; entries are kinds, LADE_BEARER_NONE ends the list early.
     * Kinds not listed are never used. */
    int order[LADE_BEARER_COUNT];
    bool present[LADE_BEARER_COUNT]; /* fitted and configured */
    int16_t wifi_min_dbm;            /* [-75] R1 */
    int16_t lte_min_dbm;             /* [-120] RSRP; below: weak */
    uint32_t down_hold_ms;           /* [10000] active bearer unusable this long → leave it */
    uint32_t upgrade_hold_ms;        /* [60000] a better bearer usable this long → take it */
    uint32_t min_dwell_ms;           /* [300000] stay at least this long before an upgrade */
    uint32_t penalty_ms;             /* [30000] first penalty after a failure, doubling ... */
    uint32_t penalty_max_ms;         /* [1800000] ... up to this */
    uint32_t flap_window_ms;         /* [600000] a failure within this of being chosen counts
                                        as a flap (the penalty doubles) */
    uint32_t wd_reconnect_ms;        /* [120000] cloud unreachable this long: reconnect it */
    uint32_t wd_reset_ms;            /* [300000] ... reset the bearer, try the next one */
    uint32_t wd_restart_ms;          /* [1800000] ... ask for a restart (0: never) */
};
void lade_bearer_config_default(struct lade_bearer_config *c);

/* What a driver sees, fed with lade_bearer_link(). */
struct lade_bearer_link_state {
    bool up;           /* carrier / associated (and has an address) / registered + PDP active */
    int16_t signal;    /* dBm (WiFi RSSI, LTE RSRP); LADE_BEARER_SIGNAL_UNKNOWN if none */
    uint16_t channel;  /* WiFi: 802.11 channel number; 0 unknown */
    uint32_t freq_mhz; /* WiFi: frequency; 0 unknown (used for the 2.4 GHz check when set) */
};

enum lade_bearer_action_kind {
    LADE_BEARER_ACT_BRING_UP = 1, /* start using bearer (route the cloud link over it) */
    LADE_BEARER_ACT_TAKE_DOWN,    /* stop using bearer (it may stay associated/registered) */
    LADE_BEARER_ACT_RESET,        /* reset bearer: reassociate, modem reset, link down/up */
    LADE_BEARER_ACT_RECONNECT,    /* drop and redial the cloud link (same bearer) */
    LADE_BEARER_ACT_RESTART,      /* ask the agent to restart (it defers while charging) */
};

struct lade_bearer_action {
    enum lade_bearer_action_kind kind;
    int bearer; /* kind, or LADE_BEARER_NONE for RECONNECT/RESTART */
};

#define LADE_BEARER_ACTIONS_MAX 4

struct lade_bearer_out {
    int active; /* the bearer the cloud link should use now, or LADE_BEARER_NONE */
    uint32_t n_actions;
    struct lade_bearer_action actions[LADE_BEARER_ACTIONS_MAX];
    uint64_t next_step_ms; /* step again no later than this */
};

struct lade_bearer_slot {
    struct lade_bearer_link_state link;
    uint64_t link_since_ms;   /* when link.up last changed */
    uint64_t usable_since_ms; /* when it last became usable (0: not usable) */
    uint64_t penalty_until_ms;
    uint32_t penalty_ms; /* the next penalty */
    uint64_t chosen_ms;  /* when it was last made active */
    uint32_t failures;   /* times it failed while active */
    bool cloud_failed;   /* the watchdog gave up on it; cleared when its link goes down/up */
};

struct lade_bearer {
    struct lade_bearer_config cfg;
    struct lade_bearer_slot slot[LADE_BEARER_COUNT];
    int active;
    uint64_t active_since_ms;
    uint64_t unusable_since_ms; /* active bearer unusable since (0: usable) */
    bool cloud_up;
    uint64_t cloud_down_since_ms; /* cloud unreachable over the active bearer since */
    uint8_t wd_stage;             /* over the active bearer: 0 none, 1 reconnected */
    bool restart_asked;           /* a restart was asked in this outage */
    uint32_t switches;
    char last_reason[96]; /* why the active bearer last changed */
    bool started;
};

/* LADE_ERR_CONFIG for a bad configuration (order with duplicates or unknown kinds, holds out
 * of range); the machine starts with no bearer active. */
lade_err lade_bearer_init(struct lade_bearer *b, const struct lade_bearer_config *cfg,
                          uint64_t now_ms) LADE_MUST_CHECK;
/* A driver's view of its bearer changed (or a new signal reading). INVAL for a bad kind. */
lade_err lade_bearer_link(struct lade_bearer *b, int kind, const struct lade_bearer_link_state *ls,
                          uint64_t now_ms) LADE_MUST_CHECK;
/* The cloud link reached the hub (up) or lost it (down). */
void lade_bearer_cloud(struct lade_bearer *b, bool up, uint64_t now_ms);
void lade_bearer_step(struct lade_bearer *b, uint64_t now_ms, struct lade_bearer_out *out);

/* Is kind usable now, and if not, why (diagnostics). */
enum lade_bearer_why lade_bearer_usable(const struct lade_bearer *b, int kind, uint64_t now_ms);

#endif
