/* lade — the site network check's probes (src/port/linux/siteprobe.c), SPEC R3–R6, R18.
 *
 * Runs on a lade_loop, in this order, and adds findings to a report (include/lade/sitecheck.h):
 *   1. DHCP  (when an interface is given and DHCP is not skipped): what a new charger would be
 *            offered, and what the server tells a configured host (include/lade/dhcpprobe.h);
 *   2. DNS   every required name through the site's DNS servers (DHCP's, --dns, or this
 *            computer's resolv.conf) and through each fallback server, timed;
 *   3. time  the NTP host answers (SNTP, every address); this computer's clock offset;
 *   4. reach TCP to the hub's port and every firmware host's port, then a full TLS handshake
 *            verifying the chain (the factory CA file) and the host name — a TLS-inspecting
 *            firewall shows up here by the issuer of the certificate it presents.
 * Nothing listens, nothing is REQUESTed from DHCP, no data is sent beyond the handshakes.
 * docs/lade-check.md explains every finding.
 */
#ifndef LADE_SITEPROBE_H
#define LADE_SITEPROBE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"
#include "lade/loop.h"
#include "lade/resolve.h"
#include "lade/sitecheck.h"

#define LADE_SITEPROBE_MAX_DNS   4
#define LADE_SITEPROBE_MAX_NAMES 8

/* The strings (ifname, hub_host, ca_file, fw_hosts, ntp_host, resolv_conf) are used until the
 * probe is freed, not copied: they must outlive it. */
struct lade_siteprobe_cfg {
    const char *ifname;   /* the interface on the chargers' network; NULL: the routing table */
    bool dhcp;            /* run the DHCP probe (needs ifname and CAP_NET_RAW) */
    unsigned new_clients; /* DHCP: made-up new chargers asking for an offer (>= 1) */
    unsigned chargers;    /* chargers planned (0: unknown); the pool is judged against it */

    const char *hub_host; /* required */
    uint16_t hub_port;    /* 8883 */
    const char *ca_file;  /* the CA bundle chargers trust (factory ca_file); required */
    const char *fw_hosts; /* comma-separated firmware hosts; NULL/"": none */
    uint16_t fw_port;     /* 443 */
    const char *ntp_host; /* required */
    uint16_t ntp_port;    /* 0: 123 */

    /* Site DNS servers to check. n_dns 0: those DHCP gave, else resolv_conf's. */
    struct lade_sockaddr dns[LADE_SITEPROBE_MAX_DNS];
    size_t n_dns;
    const char *resolv_conf; /* NULL: /etc/resolv.conf */
    /* The chargers' fallback DNS servers (factory fallback_dns). */
    struct lade_sockaddr fallbacks[LADE_SITEPROBE_MAX_DNS];
    size_t n_fallbacks;

    uint32_t timeout_ms; /* per step (DNS lookup, NTP, TCP connect, handshake); 0: 5000 */
    /* The check runs on a charger (its siteCheck method), not lade-check on a computer: the
     * findings say "this charger" and give no lade-check options as remedies. */
    bool on_charger;
};

struct lade_siteprobe;

/* Starts the probes; done(ud) is called from the loop once every finding is in the report
 * (which must outlive the probe). Errors (done not called): LADE_ERR_INVAL (a required setting
 * missing), LADE_ERR_CONFIG (the CA file unreadable), LADE_ERR_NOMEM. */
lade_err lade_siteprobe_start(struct lade_loop *loop, const struct lade_siteprobe_cfg *cfg,
                              struct lade_check_report *report, void (*done)(void *ud), void *ud,
                              struct lade_siteprobe **out) LADE_MUST_CHECK;
/* Stops whatever runs (no more findings) and frees. NULL is ignored. */
void lade_siteprobe_free(struct lade_siteprobe *p);

/* The nameserver lines of a resolv.conf text (IPv4/IPv6 literals; at most cap). */
size_t lade_siteprobe_parse_resolv(const char *text, struct lade_sockaddr *out, size_t cap);

#endif
