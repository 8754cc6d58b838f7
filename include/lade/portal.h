/* lade — the portal service (lade-cloud): store + hub link + balancer + REST API + web page
 * (SPEC R14–R17, U1, U2, U5, U6; docs/portal.md).
 *
 * One event loop runs everything: the HTTP server (http.h), the service link to the hub
 * (svc.h) that brings telemetry, sessions and connect/disconnect events and carries setpoints
 * and commands, the store (store.h) and one balancer (balancer.h) per installation.
 *
 * The portal is usable without a hub (svc_file NULL): the API and page work, chargers are all
 * offline and commands answer 500 with Code 520.
 */
#ifndef LADE_PORTAL_H
#define LADE_PORTAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"

struct lade_loop;
struct lade_portal;
struct lade_auth_kdf;
struct lade_bal_params;

#define LADE_PORTAL_DEADLINE_DEFAULT_MS                                                            \
    370000u /* charger defaults: 240 s keep-alive×1.5 + 10 s                                      \
             */

struct lade_portal_opts {
    struct lade_loop *loop; /* required, borrowed */
    const char *db_path;    /* required: the SQLite store (created if missing) */
    const char *bind_addr;  /* NULL: 127.0.0.1 */
    uint16_t port;          /* 0: any free port (lade_portal_port) */
    const char *web_dir;    /* directory with index.html, app.js, style.css; NULL: LADE_WEB_DIR */

    /* The hub link (all optional: svc_file NULL runs without a hub). */
    const char *svc_file;   /* lade-factory service file (name, key, hub host[, port]) */
    const char *ca_file;    /* CA bundle the hub's certificate must chain to (required with it) */
    const char *hosts_file; /* name → address file for the hub host; NULL: /etc/hosts */
    uint16_t hub_port;      /* 0: the service file's, else 8883 */
    const char *registry;   /* the hub's device registry (optional): devices it holds that the
                               store does not are added at start as unassigned chargers, so an
                               admin can place them before they ever connect */

    /* The longest link-loss deadline of any charger (keep-alive × 1.5 + grace): until then after
     * its last contact a charger may keep its last setpoint. Must not be shorter than the real
     * one (balancer.h assumptions). 0: LADE_PORTAL_DEADLINE_DEFAULT_MS. */
    uint32_t link_loss_deadline_ms;
    const struct lade_bal_params *params; /* NULL: lade_balancer_params_default */
    const struct lade_auth_kdf *kdf;      /* password hashing cost; NULL: the default (tests
                                             pass a cheap one) */
    uint32_t token_ttl_s;                 /* bearer token life; 0: 86400 */
    uint32_t rate_burst;                  /* API requests per user: burst (0: 15) */
    uint32_t rate_refill_ms;              /*   and one more per this many ms (0: 100 = 10/s) */
    uint32_t login_burst;                 /* logins per client address and per user name (0: 5) */
    uint32_t login_refill_ms;             /*   one more per this many ms (0: 2000) */
    uint32_t command_timeout_ms;          /* sendCommand waits this for the charger (0: 15000) */
    uint32_t settings_push_inflight;      /* settings pushes (twin patches) in flight at most
                                             (0: 32); more wait for the charger's next message */

    /* Firmware repository (optional; docs/portal-api.md "Firmware"): the directory the firmware
     * hosts serve as /fw/, and the pinned public keys (B64[,B64]) uploads are verified with. */
    const char *firmware_dir;
    const char *firmware_keys;
};

/* Opens the store, starts the HTTP server and (with svc_file) the hub link, builds a balancer
 * per installation. why (may be NULL) gets a one-line reason on failure. Errors: INVAL,
 * CONFIG (bad service file / CA), DB, IO (cannot bind), NOMEM. */
lade_err lade_portal_new(struct lade_portal **out, const struct lade_portal_opts *o, char *why,
                         size_t why_cap) LADE_MUST_CHECK;
void lade_portal_free(struct lade_portal *p); /* NULL is fine */
uint16_t lade_portal_port(const struct lade_portal *p);

/* Creates user `username` with the ADMIN role and this password, or, if it exists, gives it
 * ADMIN and sets the password (revoking its tokens). For first start and the demo. */
lade_err lade_portal_set_admin(struct lade_portal *p, const char *username,
                               const char *password) LADE_MUST_CHECK;

/* Commissions an installation from a site file (JSON: Name, NetworkType, Fuse, Available,
 * Circuits [{Name, Parent, Fuse, Limit}], Chargers [{DeviceId, Name, Circuit, Rotation,
 * MaxCurrent, MinCurrent, MaxPhases, OfflineCurrent, OfflinePhases, Priority}]; currents in A;
 * docs/portal.md "Site files"). Checked completely, the balancer's check included, before it
 * counts; an installation of the same name already there is left as it is (*created false).
 * LADE_ERR_CONFIG with a reason naming the field in why; nothing is kept on any error. */
lade_err lade_portal_apply_site(struct lade_portal *p, const char *path, bool *created, char *why,
                                size_t why_cap) LADE_MUST_CHECK;

#endif
