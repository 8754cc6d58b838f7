/* lade — charger settings: a factory file and a user/installer file.
 *
 * Both files are "key = value" lines; '#' starts a comment line; blank lines are ignored;
 * values are taken verbatim after trimming spaces (no quoting). Every key has a type, a
 * range and an owner:
 *   factory-only  identity, secrets and the hosts the charger trusts (hub, CA, NTP, firmware
 *                 hosts, fallback DNS, firmware public key). Written once by lade-factory.
 *   user          what an installer or owner may tune (log level, intervals, keep-alive ...).
 * The factory file may set every key. The user file may set only user keys: a factory key
 * there is reported and ignored, so a user file can never redirect a charger to another hub
 * or weaken its trust (SPEC R6: the NTP host cannot be changed by the site owner).
 * Loading never stops at the first problem: each bad line is reported with file:line and
 * reason through the report callback; a bad line in the factory file fails the load, a bad
 * line in the user file is skipped (the charger keeps working on defaults).
 */
#ifndef LADE_SETTINGS_H
#define LADE_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"

#define LADE_DEVICE_KEY_MAX 64

struct lade_settings {
    /* factory-only */
    char device_id[129];
    uint8_t device_key[LADE_DEVICE_KEY_MAX];
    size_t device_key_len;
    char hub_host[254];
    uint16_t hub_port;
    char hosts_file[256];     /* where names are looked up until the DNS stub exists */
    char ca_file[512];        /* CA bundle that signs the hub and firmware hosts */
    char ntp_host[254];       /* R6: fixed by the factory */
    char firmware_hosts[768]; /* comma-separated */
    char fallback_dns[256];   /* comma-separated, R5 */
    char firmware_pubkey[128];
    char evse[16];          /* charging hardware: "sim" (simulated EV + meter) or "none" */
    char time_source[8];    /* "ntp" (R6: trusted time from ntp_host before the cloud link) or
                               "host" (a developer machine or simulator: the system clock is
                               trusted as it is; never on a real charger) */
    uint16_t ntp_port;      /* 123; tests use their own */
    char hardware_id[65];   /* what firmware manifests must name (docs/firmware.md) */
    uint16_t firmware_port; /* HTTPS port of the firmware hosts: 443; tests use their own */
    /* Network interfaces the charger manages itself (docs/network.md). Empty: the operating
     * system configures the network and the charger just uses it (development machines). */
    char net_interface[16];  /* wired / PLC interface: DHCP + link-local on it, e.g. eth0 */
    char wifi_interface[16]; /* WiFi interface (DHCP on it) ... */
    char wifi_ctrl[108];     /* ... and wpa_supplicant's control socket for it */
    char lte_device[108];    /* LTE-M modem's AT serial device, e.g. /dev/ttyUSB2 ... */
    char lte_interface[16];  /* ... and its network interface (ECM/RNDIS; DHCP on it) */
    char source_address[48]; /* local address the hub connection is bound to ("" = the routing
                                table decides); lade-sim gives each charger its own 127.x.y.z */
    /* user */
    int log_level;        /* enum lade_log_level */
    uint32_t keepalive_s; /* MQTT keep-alive; the hub allows <= 1177 */
    uint32_t token_ttl_s; /* SAS token lifetime; renewed at ~85 % */
    uint32_t telemetry_interval_s;
    uint32_t backoff_min_ms;
    uint32_t backoff_max_ms;
    uint32_t backoff_stable_s; /* a link up this long resets the back-off */
    uint32_t connect_timeout_ms;
    /* charging (docs/charging.md); the twin's desired properties override these at run time */
    char state_dir[256];            /* outbox, session checkpoint, twin settings, simulator state */
    uint32_t max_current_a;         /* installer's setting, <= the charger's 63 A fuse (R14) */
    uint32_t min_current_a;         /* below this the charger pauses (>= 6 A, IEC 61851) */
    uint32_t max_phases;            /* 1 or 3 */
    uint32_t offline_current_a;     /* fallback while the hub is unreachable; 0 = stop */
    uint32_t offline_phases;        /* 1 or 3 */
    uint32_t free_mode;             /* 1: every car is authorized on plug-in */
    uint32_t link_grace_ms;         /* link-loss deadline = keepalive_s * 1.5 + this */
    uint32_t checkpoint_interval_s; /* session-in-progress checkpoint period */
    uint32_t report_min_interval_s; /* observations: shortest gap for meter-value changes */
    char bearer[16];                /* observation 150: "Ethernet", "Wifi", "LTE", "PLC" */
    uint32_t firmware_confirm_s;    /* new firmware must reach the hub within this, else rollback */
    char lte_apn[64];               /* APN for the modem's data context ("" = the SIM's own) */
    char dns_servers[256];          /* the site's DNS servers when DHCP gives none (static networks,
                                       tests): "a.b.c.d[:port]" comma-separated; asked before the
                                       factory fallbacks (R5) */
    /* simulated EV (evse = sim) */
    char sim_car[16];        /* none, 1p16a, 3p11kw, 3p22kw: car plugged in at start */
    uint32_t sim_soc;        /* its state of charge at plug-in, % */
    uint32_t sim_plug_s;     /* > 0: unplug after this long plugged (simulated seconds) ... */
    uint32_t sim_unplug_s;   /* ... and plug in again after this long (0 = stay unplugged) */
    uint32_t sim_time_scale; /* simulated seconds per real second for the car and meter */
};

enum lade_settings_file { LADE_SETTINGS_FACTORY, LADE_SETTINGS_USER };

/* Receives one message per problem, e.g. "user.conf:4: 'hub_host' is a factory setting". */
typedef void (*lade_settings_report_fn)(void *ud, const char *msg);

/* Fills every field with its default (production hosts from SPEC R3/R5/R6). */
void lade_settings_defaults(struct lade_settings *s);

/* Applies one file. LADE_ERR_NOT_FOUND if the file is missing, LADE_ERR_CONFIG if a factory
 * file has a bad line, LADE_ERR_IO on read errors. */
lade_err lade_settings_load(struct lade_settings *s, const char *path, enum lade_settings_file kind,
                            lade_settings_report_fn report, void *ud) LADE_MUST_CHECK;
/* Same on text in memory (name is used in messages). */
lade_err lade_settings_parse(struct lade_settings *s, const char *name, const char *text,
                             enum lade_settings_file kind, lade_settings_report_fn report,
                             void *ud) LADE_MUST_CHECK;

/* Checks that a loaded factory identity is complete (device id, key, hub host, CA file). */
lade_err lade_settings_check(const struct lade_settings *s, lade_settings_report_fn report,
                             void *ud) LADE_MUST_CHECK;

/* Writes the factory file atomically (temp file, fsync, rename) with mode 0600, since it holds
 * the device key. */
lade_err lade_settings_write_factory(const struct lade_settings *s,
                                     const char *path) LADE_MUST_CHECK;

/* True if key names a factory-only setting. */
bool lade_settings_is_factory_key(const char *key);

#endif
