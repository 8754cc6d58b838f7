/* Internal to the charger agent (src/charger): the context shared by the cloud link
 * (charger.c) and charging control (control.c). Not a public header. */
#ifndef LADE_CHARGER_AGENT_H
#define LADE_CHARGER_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "lade/backoff.h"
#include "lade/bearer.h"
#include "lade/charger.h"
#include "lade/dnsres.h"
#include "lade/timesync.h"
#include "lade/evse.h"
#include "lade/fwfetch.h"
#include "lade/fwmanifest.h"
#include "lade/fwsig.h"
#include "lade/fwslot.h"
#include "lade/iothub.h"
#include "lade/loop.h"
#include "lade/modem.h"
#include "lade/mqtt.h"
#include "lade/netif.h"
#include "lade/obs.h"
#include "lade/outbox.h"
#include "lade/sitecheck.h"
#include "lade/siteprobe.h"
#include "lade/tls.h"
#include "lade/wpa.h"

#define RX_CAP             (64 * 1024) /* largest message we accept: twin documents, method calls */
#define TX_CAP             (16 * 1024)
#define STORE_CAP          (16 * 1024)
#define SUB_CAP            512
#define INFLIGHT           16
#define CONNACK_TIMEOUT_MS 10000

#define CTL_SEND_WINDOW 4  /* session records in flight at once */
#define CTL_MEM_QUEUE   32 /* finished sessions kept in memory when the outbox cannot take them */
#define CTL_PAYLOAD_MAX 768

/* A finished session the outbox could not store (storage fault): kept in RAM and sent anyway. */
struct ctl_mem_session {
    char msg_id[LADE_OUTBOX_ID_LEN + 1];
    char payload[CTL_PAYLOAD_MAX];
    size_t len;
    bool in_flight;
};

struct ctl_send_slot {
    uint16_t packet_id; /* 0: free */
    char msg_id[LADE_OUTBOX_ID_LEN + 1];
    bool from_memory;
};

/* Charging control: hardware, state machine, reporting, outbox (control.c). */
struct ctl {
    bool enabled; /* evse != none */
    const struct lade_evse_hw_ops *ops;
    void *hw;
    struct lade_evse_sim sim;
    /* simulator clock and plug cycle (sim time = scaled monotonic time) */
    uint64_t sim_base_mono_ms, sim_base_ms, sim_phase_end_ms;
    uint64_t sim_saved_wh;
    bool sim_saved_plugged;
    char sim_profile[16];

    struct lade_charging cs;
    struct lade_charging_outputs out;
    struct lade_timer step_timer, obs_timer, restart_timer;
    uint64_t hub_last_seen_ms;
    bool clock_trusted;
    bool stepping;

    /* the session in progress */
    char session_hex[LADE_OUTBOX_ID_LEN + 1]; /* "" when none; also its msg_id */
    uint64_t session_start_wh;
    int64_t checkpoint_wall_s; /* last checkpoint written (0: none) */
    bool resumed_from_checkpoint;
    bool first_step_done;
    uint64_t last_session_wh; /* 553 after the session ended */

    struct lade_obs_reporter obs;

    struct lade_outbox *ob;
    char outbox_path[320];
    int64_t ob_after_seq;
    struct ctl_send_slot slots[CTL_SEND_WINDOW];
    struct ctl_mem_session mem[CTL_MEM_QUEUE];
    size_t n_mem;
    bool storage_fault;
    char storage_error[200];
    bool storage_recovered;

    /* twin-applied settings (persisted in state_dir/settings.json) */
    char settings_error[160];

    /* counters for the status file */
    uint32_t sessions_started, sessions_ended, sessions_stored, sessions_acked, sessions_resumed;
    uint32_t commands_ok, commands_refused, obs_messages;
    uint64_t obs_bytes;
};

struct agent_net_slot {
    struct lade_charger *c;
    int kind;
};

/* The charger's own network (net.c, docs/network.md); inert unless the factory settings name
 * interfaces. */
struct agent_net {
    bool managed; /* any of net_interface / wifi_* / lte_device is set */
    bool started;
    struct agent_net_slot slot[LADE_BEARER_COUNT];
    struct lade_netif *netif[LADE_BEARER_COUNT]; /* DHCP + link-local per interface */
    struct lade_netif_status st[LADE_BEARER_COUNT];
    char error[LADE_BEARER_COUNT][96]; /* why an interface could not be opened */
    struct lade_wpa *wpa;
    struct lade_modem *modem;
    struct lade_bearer_link_state wifi_ls, lte_ls;
    struct lade_bearer bm;
    struct lade_timer timer;
    struct {
        uint32_t addr; /* the lease (0 none) ... */
        int64_t expires_s;
        uint32_t ll; /* ... and the last link-local address, as in net.json */
    } saved[LADE_BEARER_COUNT];
    struct lade_sockaddr dns[LADE_DHCP_MAX_ADDRS]; /* what the DNS stub was given */
    size_t n_dns;
    int conn_bearer;         /* the bearer the current cloud connection was made over */
    uint32_t conn_addr;      /* ... and from which address (0: not known) */
    int16_t reported_signal; /* observation 809 as last sent */
    uint32_t carrier_changes, address_changes, reconnects, resets;
};

/* Firmware updates (updater.c, docs/firmware.md). */
enum upd_state {
    UPD_IDLE = 0,
    UPD_DELAY,       /* accepted; waiting out the rollout's random delay */
    UPD_DOWNLOADING, /* into the inactive slot */
    UPD_INSTALLING,  /* read back, verify, switch */
    UPD_RESTART,     /* a restart is due (new slot on trial, or a rollback) */
    UPD_TRIAL,       /* running new firmware: marked good once the hub is reached */
    UPD_FAILED,      /* the last update failed (last_error says why); a new one may come */
    UPD_UNAVAILABLE, /* no slots (no state_dir, unreadable record) */
};

struct upd {
    enum upd_state state;
    struct lade_fwslot_file *slots; /* NULL: updates unavailable */
    struct lade_fwsig_keys keys;    /* pinned (factory firmware_pubkey) */
    char manifest[LADE_FWM_MAX + 1];
    size_t manifest_len;
    struct lade_fwm m; /* views into manifest */
    struct lade_fwslot_image img;
    char path[200];
    int slot, running;
    enum lade_fwslot_boot_kind boot;
    struct lade_fwfetch *fetch;
    struct lade_timer timer; /* rollout delay, deferred restart, trial deadline */
    uint32_t progress_pct;
    bool rollback_restart, resume_at_start;
    char running_version[LADE_FWSLOT_VERSION_MAX + 1];
    char target_version[LADE_FWSLOT_VERSION_MAX + 1];
    char last_error[200];
};

/* The site check on demand (sitecheck.c, method siteCheck, SPEC R18/R19). */
#define SC_MIN_GAP_MS 60000u /* a new check at most a minute after the last one ended */
struct sc {
    struct lade_siteprobe *probe; /* non-NULL while a check runs */
    struct lade_check_report report;
    struct lade_timer done_timer; /* frees the finished probe outside its own callback */
    bool running;
    bool pending;          /* the result is not in the twin yet (finished while offline) */
    uint64_t last_done_ms; /* monotonic; 0: never */
    cJSON *last;           /* {"at","status","exit","checks":[...]} of the last check, or NULL */
};

struct lade_charger {
    struct lade_settings set;
    struct lade_loop *loop;
    struct lade_tls_ctx *tls;
    bool own_tls;
    char *status_file;
    char username[400];
    char log_tag[140];
    void (*on_restart)(void *ud);
    void *restart_ud;
    uint32_t snapshot_phase_ms; /* lade_charger_opts; cleared once applied */

    enum lade_link_state link;
    struct lade_dnsres *dns;         /* the DNS stub (R5): site servers, then fallbacks */
    struct lade_dnsres_query *dnsq;  /* the hub's name being resolved */
    struct lade_timesync *ts;        /* trusted time (R6): the cloud link waits for it */
    bool time_wait;                  /* a connect is waiting for trusted time */
    struct lade_dnsres_query *ntpq;  /* the NTP host's name being resolved */
    struct lade_timer ntp_dns_timer; /* re-resolve the NTP host while time is untrusted */
    /* Diagnostics of the last resolution of the hub's name (R19). */
    char dns_source[16]; /* "hosts", "dns", "cache", "literal"; "" none yet */
    char dns_server[72]; /* the server that answered */
    bool dns_fallback;   /* it was a fallback server */
    uint32_t dns_ms;     /* how long it took */
    char dns_error[96];  /* the last failure ("" none) */
    char hub_addr[72];   /* the address the link uses */
    struct lade_tls_conn *conn;
    struct lade_tls_session *tls_session; /* resumed on reconnect (R12) */
    struct lade_mqtt_session mqtt;
    struct lade_backoff backoff;
    uint8_t refused_rc; /* CONNACK return code of the refusal being handled (0: none) */
    struct lade_timer retry_timer, mqtt_timer, telemetry_timer, renew_timer;
    uint64_t started_ms, up_since_ms;
    uint32_t rid;                         /* request ids for twin GET / PATCH */
    uint32_t twin_get_rid;                /* outstanding GET (0: none) */
    bool renewing;                        /* the current link is closed to present a fresh token */
    uint64_t conn_base_in, conn_base_out; /* wire totals when the current link started */
    uint64_t packets_in_seen;

    struct lade_charger_status st;
    struct ctl ctl;
    struct agent_net net;
    struct upd upd;
    struct sc sc;
    bool net_wait; /* a connect is waiting for a network address */
    /* A restart asked for by the updater or the watchdog, waiting for the session to end. */
    struct lade_timer restart_defer_timer;
    char restart_why[96]; /* "" none pending */
    char bind_if[16];     /* the interface the cloud link is bound to ("" none) */

    uint8_t rx[RX_CAP];
    uint8_t tx[TX_CAP];
    uint8_t store[STORE_CAP];
    uint8_t subs[SUB_CAP];
    struct lade_mqtt_inflight inflight[INFLIGHT];
};

/* charger.c, for control.c */
lade_err agent_publish(struct lade_charger *c, const char *topic, const void *payload, size_t len,
                       int qos, uint16_t *packet_id);
/* Telemetry topic with the JSON content properties and, if mid != NULL, $.mid. */
lade_err agent_telemetry_topic(const struct lade_charger *c, const char *mid, char *topic,
                               size_t cap);
void agent_write_status(struct lade_charger *c);
void agent_report_twin(struct lade_charger *c, const cJSON *current);
/* Ends the current link as failed (back-off, reconnect): the hub is known to be silent. */
void agent_drop_link(struct lade_charger *c, const char *reason);
void agent_arm(struct lade_charger *c, struct lade_timer *t, uint64_t due_ms);
/* Wall time in seconds on the charger's clock (trusted once NTP synced; see timesync.h). */
int64_t agent_wall_s(const struct lade_charger *c);

/* Restarts the agent (on a device: reboots) now, or — while a charging session is in progress —
 * once it has ended (checked every 5 s; agent_restart_deferred says so). Never interrupts a car. */
void agent_restart(struct lade_charger *c, const char *why);
bool agent_restart_deferred(const struct lade_charger *c);
/* Redials the cloud link now (not a failure: no back-off), e.g. the address changed. */
void agent_redial(struct lade_charger *c, const char *reason);
/* The network became ready: a connect waiting for it goes ahead. */
void agent_net_changed(struct lade_charger *c);
/* Looks the NTP host up through DNS now (untrusted time only). */
void agent_ntp_lookup_now(struct lade_charger *c);

/* net.c */
lade_err net_init(struct lade_charger *c);
lade_err net_start(struct lade_charger *c);
void net_stop(struct lade_charger *c);
void net_free(struct lade_charger *c);
bool net_managed(const struct lade_charger *c);
/* May the cloud link try now? If so, *bind_ifname is the interface to use (NULL or "": the
 * routing table decides); if not, why says why. */
bool net_ready(struct lade_charger *c, char *why, size_t cap, const char **bind_ifname);
/* The cloud link reached the hub or lost it (the bearer watchdog). */
void net_cloud(struct lade_charger *c, bool up);
/* Observation 150's value: "Ethernet", "Wifi", "LTE", "PLC" ("" none in use). */
const char *net_bearer_label(const struct lade_charger *c);
void net_status_json(const struct lade_charger *c, cJSON *o);
void net_reported(const struct lade_charger *c, cJSON *network);

/* updater.c */
lade_err upd_init(struct lade_charger *c);
void upd_start(struct lade_charger *c);
void upd_stop(struct lade_charger *c);
void upd_free(struct lade_charger *c);
/* The cloud link is up: a trial firmware is confirmed. */
void upd_online(struct lade_charger *c);
/* UpgradeFirmware (command 200): {"manifest": text, "path": "/fw/..", "delayMaxS": n}. */
void upd_command(struct lade_charger *c, const cJSON *args, int *status, char *body, size_t cap);
const char *upd_running_version(const struct lade_charger *c);
void upd_status_json(const struct lade_charger *c, cJSON *o);
void upd_reported(const struct lade_charger *c, cJSON *o);

/* sitecheck.c */
void sc_init(struct lade_charger *c);
/* Method siteCheck: starts the site check on the charger's loop and answers at once: 202
 * {"started":true}; 409 {"error":"running"}; 429 {"error":"too soon","retryAfterS":n} within
 * SC_MIN_GAP_MS of the last one's end; 500 when it cannot start. */
void sc_method(struct lade_charger *c, int *status, char *body, size_t cap);
/* The cloud link is up: a result that finished while offline goes to the twin now. */
void sc_link_up(struct lade_charger *c);
/* "siteCheck" (the last result or null) and "site_check_running" for the status file. */
void sc_status_json(const struct lade_charger *c, cJSON *o);
/* Stops a running check (agent stop / restart). */
void sc_stop(struct lade_charger *c);
void sc_free(struct lade_charger *c);

/* control.c */
/* Observation 911 follows the running firmware. */
void ctl_firmware_changed(struct lade_charger *c);
/* A charging session is in progress (a restart waits for its end). */
bool ctl_session_active(const struct lade_charger *c);
/* Observations 150 (bearer) and 809 (signal, dBm; LADE_BEARER_SIGNAL_UNKNOWN: not sent). */
void ctl_bearer_changed(struct lade_charger *c, int16_t signal_dbm);
lade_err ctl_init(struct lade_charger *c);
void ctl_start(struct lade_charger *c);
void ctl_stop(struct lade_charger *c);
void ctl_free(struct lade_charger *c);
void ctl_hub_seen(struct lade_charger *c, uint64_t now_ms);
void ctl_link_up(struct lade_charger *c);
void ctl_link_down(struct lade_charger *c);
void ctl_on_puback(struct lade_charger *c, uint16_t packet_id);
/* Handles the charging methods; false if method is not one of them. */
bool ctl_method(struct lade_charger *c, struct lade_str method, const uint8_t *payload, size_t len,
                int *status, char *body, size_t cap);
/* Applies the charging members of a desired document; true if anything changed. */
bool ctl_apply_desired(struct lade_charger *c, const cJSON *desired);
void ctl_reported(const struct lade_charger *c, cJSON *doc);
void ctl_status_json(const struct lade_charger *c, cJSON *o);

#endif
