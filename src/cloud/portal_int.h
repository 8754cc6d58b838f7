/* lade — the portal's internals shared by its core (portal.c: hub link, ingestion, balancers,
 * live view, metrics) and its REST API (api.c: routing, login, validation, handlers).
 * Not a public interface. */
#ifndef LADE_PORTAL_INT_H
#define LADE_PORTAL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"
#include "lade/portal.h"

struct lade_store;
struct lade_http;
struct lade_http_req;
struct lade_loop;
typedef struct cJSON cJSON;

/* Counters shown on /metrics (both halves add to them). */
struct portal_metrics {
    uint64_t http_requests;     /* every request the API handled */
    uint64_t http_errors_4xx;   /* answers 400..499 */
    uint64_t http_errors_5xx;   /* answers 500..599 */
    uint64_t http_rate_limited; /* 429 answers */
    uint64_t logins_ok, logins_failed;
    uint64_t commands_sent;      /* sendCommand calls passed to the hub */
    uint64_t messages_in;        /* telemetry messages from chargers */
    uint64_t messages_invalid;   /* of those, refused by ingest */
    uint64_t sessions_added;     /* new sessions stored */
    uint64_t sessions_duplicate; /* resent sessions recognised */
    uint64_t lifecycle_events;   /* connect/disconnect events */
    uint64_t messages_out;       /* calls and twin patches sent to chargers */
    uint64_t setpoints_sent;
    uint64_t setpoints_acked, setpoints_naked, setpoints_unanswered;
    uint64_t balancer_runs;
    uint64_t balancer_ns_total; /* time spent in lade_balancer_step */
    uint64_t balancer_ns_max;
    uint64_t store_errors;
    uint64_t settings_pushes, settings_push_failed, settings_push_deferred;
    uint32_t settings_push_inflight, settings_push_inflight_max;
};

/* The API's state (api.c). */
struct portal_api;

/* ---- the core, for the API ---- */

struct lade_store *portal_store(struct lade_portal *p);
const struct lade_portal_opts *portal_opts(const struct lade_portal *p);
struct portal_metrics *portal_metrics(struct lade_portal *p);
/* Wall clock in ms (the live view's Now, token times use lade_wall_s()). */
int64_t portal_wall_ms(void);

/* The configuration of installation_id changed in the store (installation limits, circuits,
 * a charger's assignment or settings): rebuild its balancer, keeping what is known about every
 * charger (a limit-only change is applied with lade_balancer_set_limit, so the next step emits
 * the decreases first). LADE_ERR_CONFIG with a sentence in why when the balancer refuses it
 * (e.g. the offline fallback currents would no longer fit a node): the caller must restore the
 * store to what it was and call portal_reload again, then answer 400 with why.
 * installation_id 0 (unassigned chargers) is accepted and does nothing. NOT_FOUND: no such
 * installation (a removed one: its balancer is dropped and LADE_OK returned). */
lade_err portal_reload(struct lade_portal *p, int64_t installation_id, char *why,
                       size_t why_cap) LADE_MUST_CHECK;

/* Reply of a call or twin patch: err LADE_OK with status/body from the charger or the hub
 * (hub_made: the hub answered for it, 404 = not connected), LADE_ERR_TIMEOUT (status 504),
 * LADE_ERR_CLOSED (the hub link went down, status 0). body may be NULL. */
typedef void (*portal_reply_fn)(void *ud, lade_err err, int status, bool hub_made, const char *body,
                                size_t len);
/* Calls a direct method on the charger (store id). The reply callback runs later, exactly once,
 * when this returns LADE_OK. LADE_ERR_NOT_FOUND: no such charger; LADE_ERR_STATE: no hub link
 * (or it is down) — the charger is unreachable (API: 500 Code 520); other errors as
 * lade_svc_call. timeout_ms 0: opts.command_timeout_ms. */
lade_err portal_call(struct lade_portal *p, int64_t charger_id, const char *method,
                     const char *json, uint32_t timeout_ms, portal_reply_fn fn,
                     void *ud) LADE_MUST_CHECK;
/* Merges json into the charger's twin desired properties (settings). Same rules. */
lade_err portal_twin_patch(struct lade_portal *p, int64_t charger_id, const char *json,
                           portal_reply_fn fn, void *ud) LADE_MUST_CHECK;

/* Reads the charger's twin from the hub ({"desired":{...},"reported":{...}}; the hub keeps it
 * while the charger is offline, so its last reported diagnostics stay readable). Same rules;
 * LADE_ERR_STATE without a hub link. */
lade_err portal_twin_get(struct lade_portal *p, int64_t charger_id, portal_reply_fn fn,
                         void *ud) LADE_MUST_CHECK;

/* Whether the portal sees the charger connected now. */
bool portal_charger_online(struct lade_portal *p, int64_t charger_id);

/* GET /api/lade/live/{id}'s answer (docs/web.md) for an existing installation; ids formatted
 * with portal_id_format. NULL: NOMEM or no such installation. */
cJSON *portal_live_json(struct lade_portal *p, int64_t installation_id);

/* /metrics body (Prometheus text format 0.0.4), malloc'd, NUL-terminated; NULL on NOMEM. */
char *portal_metrics_text(struct lade_portal *p);

/* ---- ids on the API: the reference's lower-case GUID strings ----
 * Store ids are positive integers; the API shows them as GUIDs that carry the kind of object
 * and the number: "0000000k-0000-4000-8000-nnnnnnnnnnnn" (k the kind, n the id in hex, 12
 * digits). Parsing accepts exactly that shape (any case) for the expected kind. */
enum portal_id_kind {
    PORTAL_ID_INSTALLATION = 1,
    PORTAL_ID_CIRCUIT = 2,
    PORTAL_ID_CHARGER = 3,
    PORTAL_ID_SESSION = 4,
    PORTAL_ID_USER = 5,
    PORTAL_ID_FIRMWARE = 6,
    PORTAL_ID_ROLLOUT = 7,
};
#define PORTAL_ID_LEN 36
void portal_id_format(enum portal_id_kind kind, int64_t id, char out[PORTAL_ID_LEN + 1]);
/* OK with *id > 0; LADE_ERR_INVAL when s is not an id of that kind. */
lade_err portal_id_parse(enum portal_id_kind kind, const char *s, int64_t *id) LADE_MUST_CHECK;

/* ---- firmware repository and rollouts (firmware.c) ---- */

struct portal_fw;
struct portal_fw_upload;
/* A release: a verified manifest and, once published, its image in the firmware directory. */
struct portal_fw_image {
    int64_t id;
    char hardware[65], version[65];
    uint32_t counter;
    uint64_t length;
    char sha256[65];
    char key_id[17];
    char *notes;    /* unescaped */
    char file[160]; /* <sha256 prefix>-<version>.img, served as /fw/<file> */
    char *manifest; /* as uploaded */
    int64_t uploaded_s;
    bool published;
};
struct portal_fw_rollout {
    int64_t id, fw_id, installation_id; /* installation 0: all */
    int percent;
    uint32_t delay_max_s;
    bool stopped;
    int64_t created_s;
};
/* The twin's reported "firmware" object as last seen (and observation 911's version). */
struct portal_fw_report {
    bool known;
    char version[65], hardware[65], state[24], boot[24], target[65];
    char last_error[256];
    int progress; /* -1: none */
    uint32_t counter;
    bool restart_deferred;
    int64_t updated_ms;
};

/* The portal's firmware part (NULL when lade-cloud runs without --firmware-dir). */
struct portal_fw *portal_firmware(struct lade_portal *p);
lade_err portal_fw_new(struct lade_portal *p, struct lade_loop *loop, const char *db_path,
                       const char *dir, const char *keys, struct portal_fw **out, char *why,
                       size_t why_cap) LADE_MUST_CHECK;
void portal_fw_free(struct portal_fw *f);
size_t portal_fw_image_count(const struct portal_fw *f);
const struct portal_fw_image *portal_fw_image_at(const struct portal_fw *f, size_t i);
const struct portal_fw_image *portal_fw_image_get(const struct portal_fw *f, int64_t id);
/* The published release for hw with the highest security counter (newest upload on a tie). */
const struct portal_fw_image *portal_fw_newest(const struct portal_fw *f, const char *hw);
/* Parses and verifies a manifest against the pinned keys; adds it as awaiting its image.
 * PROTO (malformed), AUTH (unknown key / bad signature), EXISTS (same hardware + version: *id
 * is that one), DB, NOMEM; why says which. */
lade_err portal_fw_add_manifest(struct portal_fw *f, const char *text, size_t len, int64_t *id,
                                char *why, size_t why_cap) LADE_MUST_CHECK;
/* NOT_FOUND; STATE (an active rollout uses it). */
lade_err portal_fw_delete(struct portal_fw *f, int64_t id) LADE_MUST_CHECK;
/* Image upload: begin (NOT_FOUND, EXISTS: published already, IO), data per chunk, then finish
 * (TOO_BIG, AUTH: length / hash, IO) or abort. finish and abort free u. */
lade_err portal_fw_upload_begin(struct portal_fw *f, int64_t id, struct portal_fw_upload **out,
                                char *why, size_t why_cap) LADE_MUST_CHECK;
void portal_fw_upload_data(struct portal_fw_upload *u, const void *p, size_t n);
lade_err portal_fw_upload_finish(struct portal_fw_upload *u, char *why,
                                 size_t why_cap) LADE_MUST_CHECK;
void portal_fw_upload_abort(struct portal_fw_upload *u);
/* Command 200's JSON for a release (malloc'd). */
char *portal_fw_command_json(const struct portal_fw_image *m, uint32_t delay_max_s);
/* Rollouts: NOT_FOUND (no release), STATE (not published / percent lowered / stopped). */
lade_err portal_fw_rollout_new(struct portal_fw *f, int64_t fw_id, int64_t installation_id,
                               int percent, uint32_t delay_max_s, int64_t *id) LADE_MUST_CHECK;
lade_err portal_fw_rollout_set(struct portal_fw *f, int64_t id, int percent,
                               bool stop) LADE_MUST_CHECK;
const struct portal_fw_rollout *portal_fw_rollout_get(const struct portal_fw *f, int64_t id);
size_t portal_fw_rollout_count(const struct portal_fw *f);
const struct portal_fw_rollout *portal_fw_rollout_at(const struct portal_fw *f, size_t i);
cJSON *portal_fw_rollout_json(struct portal_fw *f, int64_t id);
/* What the core feeds in: reported patches, observation 911, a charger coming online. */
const struct portal_fw_report *portal_fw_report_get(const struct portal_fw *f, int64_t charger_id);
void portal_fw_report_add(cJSON *o, const struct portal_fw_report *r);
void portal_fw_reported(struct portal_fw *f, int64_t charger_id, const void *json, size_t len);
void portal_fw_version_seen(struct portal_fw *f, int64_t charger_id, const char *version);
void portal_fw_online(struct portal_fw *f, int64_t charger_id);

/* ---- the API, for the core (api.c) ---- */

lade_err portal_api_new(struct lade_portal *p, struct portal_api **out) LADE_MUST_CHECK;
void portal_api_free(struct portal_api *api);
/* The HTTP handler (http.h): every request. */
void portal_api_handle(void *api, struct lade_http_req *req);
/* The HTTP server's streamed bodies (firmware images). */
bool portal_api_stream_begin(void *api, struct lade_http_req *r);
void portal_api_stream_data(void *api, struct lade_http_req *r, const void *p, size_t n);
void portal_api_stream_abort(void *api, struct lade_http_req *r);

#endif
