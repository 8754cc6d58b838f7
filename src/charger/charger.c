/* The charger agent's cloud link (see include/lade/charger.h and docs/charger.md).
 *
 * Shell around the pure cores: TLS (port/linux/tls.c) carries an MQTT session
 * (proto/mqtt) speaking the IoT Hub dialect (proto/iothub). Every change of link state goes
 * through set_link(); every way the link can end goes through link_down().
 */
#include "lade/charger.h"

#include "agent.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lade/backoff.h"
#include "lade/clock.h"
#include "lade/iothub.h"
#include "lade/log.h"
#include "lade/loop.h"
#include "lade/mqtt.h"
#include "lade/resolve.h"
#include "lade/sas.h"
#include "lade/tls.h"

static const char *const link_names[] = {"waiting", "connecting", "mqtt", "online", "stopped"};

const char *lade_link_state_name(enum lade_link_state s)
{
    return (unsigned)s < sizeof link_names / sizeof link_names[0] ? link_names[s] : "?";
}

const char *lade_charger_firmware_version(const struct lade_charger *c)
{
    return upd_running_version(c);
}

const char *lade_charger_id(const struct lade_charger *c)
{
    return c->set.device_id;
}

/* ---- status ---- */

static void wire_totals(const struct lade_charger *c, uint64_t *in, uint64_t *out)
{
    *in = c->st.bytes_in;
    *out = c->st.bytes_out;
    if (c->conn) {
        struct lade_tls_stats ts;
        lade_tls_conn_stats(c->conn, &ts);
        *in += ts.bytes_in;
        *out += ts.bytes_out;
    }
}

void lade_charger_status(const struct lade_charger *c, struct lade_charger_status *out)
{
    *out = c->st;
    out->link = c->link;
    wire_totals(c, &out->bytes_in, &out->bytes_out);
}

void agent_write_status(struct lade_charger *c)
{
    if (!c->status_file)
        return;
    struct lade_charger_status s;
    lade_charger_status(c, &s);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", c->status_file);
    /* (the status file is rewritten on every change: keep it cheap) */
    FILE *f = fopen(tmp, "w");
    if (!f) {
        LOG_W(c->log_tag, "status file %s: %s", tmp, strerror(errno));
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "device", c->set.device_id);
    cJSON_AddStringToObject(o, "link", lade_link_state_name(s.link));
    cJSON_AddNumberToObject(o, "connects", s.connects);
    cJSON_AddNumberToObject(o, "failures", s.failures);
    cJSON_AddNumberToObject(o, "token_renewals", s.token_renewals);
    cJSON_AddNumberToObject(o, "tls_resumptions", s.tls_resumptions);
    cJSON_AddStringToObject(o, "last_error", s.last_error ? lade_strerror(s.last_error) : "");
    cJSON_AddStringToObject(o, "last_reason", s.last_reason);
    cJSON_AddNumberToObject(o, "bytes_in", (double)s.bytes_in);
    cJSON_AddNumberToObject(o, "bytes_out", (double)s.bytes_out);
    cJSON_AddNumberToObject(o, "connect_bytes_in", (double)s.connect_bytes_in);
    cJSON_AddNumberToObject(o, "connect_bytes_out", (double)s.connect_bytes_out);
    cJSON_AddNumberToObject(o, "handshake_bytes_in", (double)s.handshake_bytes_in);
    cJSON_AddNumberToObject(o, "handshake_bytes_out", (double)s.handshake_bytes_out);
    cJSON_AddNumberToObject(o, "desired_version", (double)s.desired_version);
    cJSON_AddNumberToObject(o, "telemetry_interval_s", s.telemetry_interval_s);
    cJSON_AddNumberToObject(o, "telemetry_sent", s.telemetry_sent);
    cJSON_AddNumberToObject(o, "methods_answered", s.methods_answered);
    cJSON_AddNumberToObject(o, "next_retry_ms", s.next_retry_ms);
    if (c->ts) {
        struct lade_sntp_status tst;
        lade_timesync_status(c->ts, &tst);
        cJSON *t = cJSON_AddObjectToObject(o, "time");
        cJSON_AddStringToObject(t, "source", c->set.time_source);
        cJSON_AddBoolToObject(t, "trusted", lade_timesync_trusted(c->ts));
        cJSON_AddNumberToObject(t, "offset_ms", (double)lade_timesync_offset_ms(c->ts));
        cJSON_AddNumberToObject(t, "servers", (double)lade_timesync_servers(c->ts));
        char line[512];
        if (lade_timesync_describe(c->ts, line, sizeof line) == LADE_OK)
            cJSON_AddStringToObject(t, "state", line);
    }
    cJSON *d = cJSON_AddObjectToObject(o, "dns");
    cJSON_AddStringToObject(d, "source", c->dns_source);
    cJSON_AddStringToObject(d, "server", c->dns_server);
    cJSON_AddBoolToObject(d, "fallback", c->dns_fallback);
    cJSON_AddNumberToObject(d, "ms", c->dns_ms);
    cJSON_AddStringToObject(d, "last_error", c->dns_error);
    cJSON_AddStringToObject(o, "hub_address", c->hub_addr);
    net_status_json(c, o);
    upd_status_json(c, o);
    ctl_status_json(c, o);
    sc_status_json(c, o);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    bool ok = text && fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    free(text);
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, c->status_file) != 0)
        LOG_W(c->log_tag, "status file %s not written", c->status_file);
}

/* ---- link state ---- */

static void set_link(struct lade_charger *c, enum lade_link_state to)
{
    if (c->link == to)
        return;
    LOG_D(c->log_tag, "link %s -> %s", lade_link_state_name(c->link), lade_link_state_name(to));
    bool was_online = c->link == LADE_LINK_ONLINE;
    c->link = to;
    if (to == LADE_LINK_ONLINE || was_online)
        net_cloud(c, to == LADE_LINK_ONLINE);
    if (to == LADE_LINK_ONLINE)
        upd_online(c);
    agent_write_status(c);
}

void agent_arm(struct lade_charger *c, struct lade_timer *t, uint64_t due_ms)
{
    if (lade_timer_arm(c->loop, t, due_ms) != LADE_OK)
        LOG_E(c->log_tag, "cannot arm a timer: out of memory");
}

/* Closes the TLS connection and folds its counters into the totals. */
static void close_conn(struct lade_charger *c)
{
    if (!c->conn)
        return;
    struct lade_tls_stats ts;
    lade_tls_conn_stats(c->conn, &ts);
    c->st.bytes_in += ts.bytes_in;
    c->st.bytes_out += ts.bytes_out;
    lade_tls_conn_free(c->conn);
    c->conn = NULL;
}

static void connect_now(struct lade_charger *c);

/* The smallest back-off window is [backoff_min_ms, 30 s] (capped at backoff_max_ms): a hub
 * restart drops every charger in the same millisecond, and the first retry must already spread
 * them; a busy hub's refusals are retried within it too (docs/charger.md "Back-off"). 30 s
 * offers ~350 new connections/s from 10 000 chargers and brings them all back in ~75 s from a
 * hub admitting 200/s, ~120 s from one admitting 100/s (simulated, docs/hub.md "Connection
 * storms"); one charger after a blip waits 15 s on average. */
#define RECONNECT_SPREAD_MS 30000u

/* The link ended. err == LADE_OK means a planned close (token renewal). */
static void link_down(struct lade_charger *c, lade_err err, const char *reason)
{
    uint64_t now = lade_mono_ms();
    bool was_online = c->link == LADE_LINK_ONLINE;
    /* "Come back later" is not "bad key": a hub that refuses with CONNACK 3 (server unavailable)
     * or closes after the CONNECT without any CONNACK (Azure IoT Hub and lade's hub when they
     * throttle a connection storm, docs/hub.md) is busy: retry within the spread window. */
    bool busy = false;
    if (c->refused_rc == LADE_MQTT_CONNACK_UNAVAILABLE) {
        reason = "hub busy (CONNACK 3, server unavailable)";
        busy = true;
    } else if (c->link == LADE_LINK_MQTT && err == LADE_ERR_CLOSED) {
        reason = "hub closed the connection before CONNACK (busy or throttling)";
        busy = true;
    }
    c->refused_rc = 0;
    lade_mqtt_session_lost(&c->mqtt);
    close_conn(c);
    lade_timer_cancel(c->loop, &c->mqtt_timer);
    lade_timer_cancel(c->loop, &c->telemetry_timer);
    lade_timer_cancel(c->loop, &c->renew_timer);
    c->twin_get_rid = 0;
    ctl_link_down(c);
    if (c->link == LADE_LINK_STOPPED)
        return;
    if (was_online)
        lade_backoff_stable(&c->backoff, c->up_since_ms, now);

    if (err == LADE_OK) {
        /* Planned: reconnect at once with a fresh token. */
        c->st.next_retry_ms = 0;
        set_link(c, LADE_LINK_WAITING);
        agent_arm(c, &c->retry_timer, now);
        return;
    }
    c->st.failures++;
    c->st.last_error = err;
    snprintf(c->st.last_reason, sizeof c->st.last_reason, "%s", reason);
    uint32_t delay = busy ? lade_backoff_busy(&c->backoff, lade_random_u32())
                          : lade_backoff_fail(&c->backoff, lade_random_u32());
    /* An auth refusal will not heal by itself soon (wrong key, disabled device, clock):
     * never retry it faster than a minute's tenth of the maximum (reference/iothub.md). */
    if (err == LADE_ERR_AUTH && delay < c->set.backoff_max_ms / 10)
        delay = c->set.backoff_max_ms / 10;
    c->st.next_retry_ms = delay;
    LOG_W(c->log_tag, "link down (%s): %s; retry in %u ms", lade_strerror(err), reason, delay);
    bool was_waiting = c->link == LADE_LINK_WAITING;
    set_link(c, LADE_LINK_WAITING);
    if (was_waiting) /* a failed attempt before any connection: the reason is news (R19) */
        agent_write_status(c);
    agent_arm(c, &c->retry_timer, now + delay);
}

#define RESTART_DEFER_MS 5000u

void agent_restart(struct lade_charger *c, const char *why)
{
    if (ctl_session_active(c)) {
        if (!c->restart_why[0])
            LOG_I(c->log_tag, "restart (%s) deferred: a charging session is in progress", why);
        snprintf(c->restart_why, sizeof c->restart_why, "%s", why);
        agent_arm(c, &c->restart_defer_timer, lade_mono_ms() + RESTART_DEFER_MS);
        agent_write_status(c);
        return;
    }
    c->restart_why[0] = 0;
    if (!c->on_restart) {
        LOG_W(c->log_tag, "%s, but this agent cannot restart itself", why);
        return;
    }
    LOG_I(c->log_tag, "restarting: %s", why);
    c->on_restart(c->restart_ud);
}

bool agent_restart_deferred(const struct lade_charger *c)
{
    return c->restart_why[0] != 0;
}

static void on_restart_defer_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_charger *c = ud;
    if (c->restart_why[0]) {
        char why[sizeof c->restart_why];
        memcpy(why, c->restart_why, sizeof why);
        agent_restart(c, why);
    }
}

void agent_redial(struct lade_charger *c, const char *reason)
{
    if (c->link != LADE_LINK_CONNECTING && c->link != LADE_LINK_ONLINE)
        return;
    LOG_I(c->log_tag, "redialling the hub: %s", reason);
    snprintf(c->st.last_reason, sizeof c->st.last_reason, "%s", reason);
    if (lade_mqtt_session_state(&c->mqtt) == LADE_MQTT_CONNECTED) {
        lade_mqtt_session_disconnect(&c->mqtt);
        if (lade_mqtt_session_flush(&c->mqtt, lade_mono_ms()) != LADE_OK)
            LOG_D(c->log_tag, "DISCONNECT not fully written");
    }
    link_down(c, LADE_OK, reason);
}

void agent_drop_link(struct lade_charger *c, const char *reason)
{
    if (c->link == LADE_LINK_ONLINE || c->link == LADE_LINK_MQTT)
        link_down(c, LADE_ERR_TIMEOUT, reason);
}

static void update_interest(struct lade_charger *c)
{
    if (!c->conn)
        return;
    uint32_t want = LADE_IO_READ;
    if (lade_mqtt_session_wants_write(&c->mqtt))
        want |= LADE_IO_WRITE;
    if (lade_tls_conn_set_interest(c->conn, want) != LADE_OK)
        LOG_E(c->log_tag, "cannot set I/O interest");
}

/* Runs the MQTT timers now and re-arms for the next deadline. Returns false if the link died. */
static bool mqtt_tick(struct lade_charger *c)
{
    uint64_t next = UINT64_MAX;
    lade_err err = lade_mqtt_session_tick(&c->mqtt, lade_mono_ms(), &next);
    if (err) {
        link_down(c, err, c->link == LADE_LINK_MQTT ? "no CONNACK in time" : "no PINGRESP in time");
        return false;
    }
    if (next != UINT64_MAX)
        agent_arm(c, &c->mqtt_timer, next);
    update_interest(c);
    return true;
}

static void on_mqtt_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    mqtt_tick(ud);
}

/* ---- messages to the hub ---- */

lade_err agent_publish(struct lade_charger *c, const char *topic, const void *payload, size_t len,
                       int qos, uint16_t *packet_id)
{
    lade_err err = lade_mqtt_publish(&c->mqtt, topic, payload, len, qos, false, packet_id);
    if (err)
        LOG_W(c->log_tag, "publish to %s failed: %s", topic, lade_strerror(err));
    update_interest(c);
    return err;
}

static lade_err publish(struct lade_charger *c, const char *topic, const char *payload, int qos)
{
    return agent_publish(c, topic, payload, strlen(payload), qos, NULL);
}

lade_err agent_telemetry_topic(const struct lade_charger *c, const char *mid, char *topic,
                               size_t cap)
{
    struct lade_iothub_prop props[] = {
        {"$.ct", "application/json"}, {"$.ce", "utf-8"}, {"$.mid", mid ? mid : ""}};
    return lade_iothub_telemetry_topic(c->set.device_id, props, mid ? 3 : 2, topic, cap, NULL);
}

static void send_telemetry(struct lade_charger *c)
{
    char topic[256];
    if (agent_telemetry_topic(c, NULL, topic, sizeof topic))
        return;
    uint64_t in, out;
    wire_totals(c, &in, &out);
    char body[512];
    snprintf(body, sizeof body,
             "{\"type\":\"state\",\"fw\":\"" LADE_FIRMWARE_VERSION "\",\"uptime_s\":%" PRIu64
             ",\"connects\":%u,\"failures\":%u,\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64
             ",\"time\":%" PRId64 "}",
             (lade_mono_ms() - c->started_ms) / 1000, c->st.connects, c->st.failures, in, out,
             agent_wall_s(c));
    if (publish(c, topic, body, 1) == LADE_OK)
        c->st.telemetry_sent++;
}

static void on_telemetry_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_charger *c = ud;
    if (c->link != LADE_LINK_ONLINE || c->ctl.enabled) /* observations carry the state */
        return;
    send_telemetry(c);
    agent_arm(c, &c->telemetry_timer, lade_mono_ms() + (uint64_t)c->st.telemetry_interval_s * 1000);
    agent_write_status(c);
}

/* The values this charger reports in its twin. */
static cJSON *reported_doc(const struct lade_charger *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "firmwareVersion", upd_running_version(c));
    upd_reported(c, o);
    cJSON_AddNumberToObject(o, "telemetryIntervalS", c->st.telemetry_interval_s);
    cJSON_AddNumberToObject(o, "desiredVersion", (double)c->st.desired_version);
    ctl_reported(c, o);
    /* Network diagnostics (R19): reported after every connect, so the portal can see how the
     * charger got here and why it was away. The twin keeps them while the charger is offline. */
    cJSON *n = cJSON_AddObjectToObject(o, "network");
    cJSON_AddStringToObject(n, "bearer", net_bearer_label(c));
    cJSON_AddStringToObject(n, "hubAddress", c->hub_addr);
    cJSON *d = cJSON_AddObjectToObject(n, "dns");
    cJSON_AddStringToObject(d, "source", c->dns_source);
    cJSON_AddStringToObject(d, "server", c->dns_server);
    cJSON_AddBoolToObject(d, "fallback", c->dns_fallback);
    cJSON_AddNumberToObject(d, "ms", c->dns_ms);
    cJSON_AddStringToObject(d, "lastError", c->dns_error);
    if (c->ts) {
        cJSON *t = cJSON_AddObjectToObject(n, "time");
        cJSON_AddStringToObject(t, "source", c->set.time_source);
        cJSON_AddBoolToObject(t, "trusted", lade_timesync_trusted(c->ts));
        char line[400];
        if (lade_timesync_describe(c->ts, line, sizeof line) == LADE_OK)
            cJSON_AddStringToObject(t, "state", line);
    }
    net_reported(c, n);
    cJSON *h = cJSON_AddObjectToObject(n, "hub");
    cJSON_AddNumberToObject(h, "connects", c->st.connects);
    cJSON_AddNumberToObject(h, "failures", c->st.failures);
    cJSON_AddStringToObject(h, "lastError",
                            c->st.last_error ? lade_strerror(c->st.last_error) : "");
    cJSON_AddStringToObject(h, "lastReason", c->st.last_reason);
    return o;
}

/* Sends the members of the reported document that differ from what the hub has (current may
 * be NULL: send all). Twin updates are throttled and billed: never send an unchanged value. */
void agent_report_twin(struct lade_charger *c, const cJSON *current)
{
    cJSON *want = reported_doc(c);
    cJSON *patch = cJSON_CreateObject();
    for (cJSON *it = want->child; it; it = it->next) {
        const cJSON *have = current ? cJSON_GetObjectItemCaseSensitive(current, it->string) : NULL;
        if (!have || !cJSON_Compare(have, it, true))
            cJSON_AddItemToObject(patch, it->string, cJSON_Duplicate(it, true));
    }
    if (patch->child) {
        char *body = cJSON_PrintUnformatted(patch);
        char topic[96];
        if (body && !lade_iothub_twin_report_topic(++c->rid, topic, sizeof topic, NULL))
            publish(c, topic, body, 0);
        free(body);
    }
    cJSON_Delete(patch);
    cJSON_Delete(want);
}

/* Applies desired properties we know; others are kept for later issues and ignored. */
static void apply_desired(struct lade_charger *c, const cJSON *desired, int64_t version)
{
    if (version <= c->st.desired_version) {
        LOG_D(c->log_tag, "desired $version %" PRId64 " not newer than %" PRId64 "; ignored",
              version, c->st.desired_version);
        return;
    }
    const cJSON *ti = cJSON_GetObjectItemCaseSensitive(desired, "telemetryIntervalS");
    if (cJSON_IsNumber(ti)) {
        double v = ti->valuedouble;
        if (v >= 1 && v <= 86400 && v == (double)(uint32_t)v) {
            if ((uint32_t)v != c->st.telemetry_interval_s) {
                c->st.telemetry_interval_s = (uint32_t)v;
                if (c->link == LADE_LINK_ONLINE)
                    agent_arm(c, &c->telemetry_timer, lade_mono_ms() + (uint64_t)v * 1000);
            }
        } else {
            LOG_W(c->log_tag, "desired telemetryIntervalS out of range (1..86400); ignored");
        }
    }
    ctl_apply_desired(c, desired);
    c->st.desired_version = version;
    LOG_I(c->log_tag, "applied desired properties $version %" PRId64, version);
}

static void handle_twin_response(struct lade_charger *c, const struct lade_iothub_msg *m,
                                 const uint8_t *payload, size_t len)
{
    char rid[24];
    snprintf(rid, sizeof rid, "%u", c->twin_get_rid);
    if (c->twin_get_rid == 0 || !lade_str_eq_c(m->rid, rid)) {
        if (m->status >= 300)
            LOG_W(c->log_tag, "twin request refused with status %d", m->status);
        return; /* answer to a reported PATCH (204) */
    }
    c->twin_get_rid = 0;
    if (m->status != 200) {
        LOG_W(c->log_tag, "twin GET answered %d", m->status);
        return;
    }
    cJSON *doc = cJSON_ParseWithLength((const char *)payload, len);
    const cJSON *desired = cJSON_GetObjectItemCaseSensitive(doc, "desired");
    const cJSON *reported = cJSON_GetObjectItemCaseSensitive(doc, "reported");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(desired, "$version");
    /* The range check comes before the cast: converting a double outside int64's range is
     * undefined behaviour ("$version": 1e30 from the network). 2^53 keeps it exact. */
    if (!cJSON_IsObject(desired) || !cJSON_IsNumber(ver) || !(ver->valuedouble >= 0) ||
        ver->valuedouble > 9007199254740992.0) {
        LOG_W(c->log_tag, "twin document malformed; ignored");
        cJSON_Delete(doc);
        return;
    }
    apply_desired(c, desired, (int64_t)ver->valuedouble);
    agent_report_twin(c, cJSON_IsObject(reported) ? reported : NULL);
    cJSON_Delete(doc);

    /* The connect is complete once the twin is in: record what it cost on the wire. */
    uint64_t in, out;
    wire_totals(c, &in, &out);
    c->st.connect_bytes_in = in - c->conn_base_in;
    c->st.connect_bytes_out = out - c->conn_base_out;
    LOG_I(c->log_tag, "online: connect cost %" PRIu64 " bytes out, %" PRIu64 " bytes in",
          c->st.connect_bytes_out, c->st.connect_bytes_in);
    agent_write_status(c);
}

static void handle_desired_patch(struct lade_charger *c, const struct lade_iothub_msg *m,
                                 const uint8_t *payload, size_t len)
{
    cJSON *doc = cJSON_ParseWithLength((const char *)payload, len);
    if (!cJSON_IsObject(doc)) {
        LOG_W(c->log_tag, "desired patch is not a JSON object; ignored");
    } else {
        int64_t before = c->st.desired_version;
        apply_desired(c, doc, m->version);
        if (c->st.desired_version != before)
            agent_report_twin(c, NULL);
    }
    cJSON_Delete(doc);
    agent_write_status(c);
}

static void handle_method(struct lade_charger *c, const struct lade_iothub_msg *m,
                          const uint8_t *payload, size_t len)
{
    char topic[160];
    char body[512];
    int status;
    if (ctl_method(c, m->method, payload, len, &status, body, sizeof body)) {
        /* charging command: answered below */
    } else if (lade_str_eq_c(m->method, "ping")) {
        status = 200;
        snprintf(body, sizeof body,
                 "{\"pong\":true,\"device\":\"%s\",\"uptime_s\":%" PRIu64
                 ",\"firmwareVersion\":\"" LADE_FIRMWARE_VERSION "\"}",
                 c->set.device_id, (lade_mono_ms() - c->started_ms) / 1000);
    } else if (lade_str_eq_c(m->method, "siteCheck")) {
        sc_method(c, &status, body, sizeof body); /* sitecheck.c: answers at once */
    } else {
        status = 404;
        snprintf(body, sizeof body, "{\"error\":\"unknown method\"}");
        LOG_W(c->log_tag, "unknown method '%.*s'", (int)m->method.n, m->method.p);
    }
    if (lade_iothub_method_response_topic(status, m->rid, topic, sizeof topic, NULL) != LADE_OK)
        return;
    if (publish(c, topic, body, 0) == LADE_OK)
        c->st.methods_answered++;
}

/* ---- MQTT callbacks ---- */

static void on_connack(void *ud, bool session_present, uint8_t rc)
{
    struct lade_charger *c = ud;
    (void)session_present;
    if (rc != 0) {
        LOG_W(c->log_tag, "hub refused the connection (CONNACK %u)", rc);
        c->refused_rc = rc;
        return; /* on_readable returns the error; link_down follows */
    }
    c->st.connects++;
    c->up_since_ms = lade_mono_ms();
    set_link(c, LADE_LINK_ONLINE);
    LOG_I(c->log_tag, "connected to %s:%u", c->set.hub_host, c->set.hub_port);
    /* Subscriptions are restored by the session itself; ask for the full twin because the hub
     * does not queue desired patches for offline devices (reference/iothub.md). */
    char topic[64];
    c->twin_get_rid = ++c->rid;
    if (lade_iothub_twin_get_topic(c->twin_get_rid, topic, sizeof topic, NULL) == LADE_OK)
        publish(c, topic, "", 0);
    if (!c->ctl.enabled)
        send_telemetry(c);
    ctl_link_up(c);
    sc_link_up(c);
    uint64_t now = lade_mono_ms();
    agent_arm(c, &c->telemetry_timer, now + (uint64_t)c->st.telemetry_interval_s * 1000);
    /* Renew the token at ~85 % of its life, jittered over 80..90 % so a fleet that connected
     * together does not reconnect together. */
    uint64_t ttl_ms = (uint64_t)c->set.token_ttl_s * 1000;
    uint64_t renew = ttl_ms * 80 / 100 + lade_random_u32() % (ttl_ms / 10 + 1);
    agent_arm(c, &c->renew_timer, now + renew);
}

static void on_message(void *ud, const struct lade_mqtt_publish *msg)
{
    struct lade_charger *c = ud;
    struct lade_iothub_msg m;
    lade_err err = lade_iothub_parse_topic(c->set.device_id, msg->topic.p, msg->topic.n, &m);
    if (err) {
        LOG_W(c->log_tag, "ignoring message on malformed topic");
        return;
    }
    switch (m.kind) {
    case LADE_IOTHUB_TWIN_RESPONSE:
        handle_twin_response(c, &m, msg->payload, msg->payload_len);
        break;
    case LADE_IOTHUB_TWIN_DESIRED:
        handle_desired_patch(c, &m, msg->payload, msg->payload_len);
        break;
    case LADE_IOTHUB_METHOD:
        handle_method(c, &m, msg->payload, msg->payload_len);
        break;
    case LADE_IOTHUB_C2D:
        LOG_I(c->log_tag, "cloud-to-device message (%zu bytes) ignored", msg->payload_len);
        break;
    case LADE_IOTHUB_UNKNOWN:
        LOG_D(c->log_tag, "message on unexpected topic ignored");
        break;
    }
}

static void on_puback(void *ud, uint16_t packet_id)
{
    ctl_on_puback(ud, packet_id);
}

static const struct lade_mqtt_callbacks mqtt_cbs = {
    .on_connack = on_connack,
    .on_message = on_message,
    .on_puback = on_puback,
};

/* ---- transport ---- */

static const char *mqtt_reason(lade_err err)
{
    switch (err) {
    case LADE_ERR_AUTH:
        return "hub refused the credentials";
    case LADE_ERR_PROTO:
        return "malformed or unexpected MQTT data from the hub";
    case LADE_ERR_TOO_BIG:
        return "hub sent a packet over the size limit";
    case LADE_ERR_CLOSED:
        return "hub closed the connection";
    case LADE_ERR_TIMEOUT:
        return "MQTT timeout";
    default:
        return "connection failed";
    }
}

static void on_tls(struct lade_tls_conn *conn, lade_err status, uint32_t events, void *ud)
{
    struct lade_charger *c = ud;
    (void)conn;
    uint64_t now = lade_mono_ms();
    if (status != LADE_OK) {
        const char *why = status == LADE_ERR_CERT  ? "hub certificate not trusted"
                          : status == LADE_ERR_TLS ? "TLS handshake failed"
                                                   : "cannot reach the hub";
        link_down(c, status, why);
        return;
    }
    if (c->link == LADE_LINK_CONNECTING) {
        struct lade_tls_stats ts;
        lade_tls_conn_stats(c->conn, &ts);
        c->st.handshake_bytes_in = ts.handshake_bytes_in;
        c->st.handshake_bytes_out = ts.handshake_bytes_out;
        if (ts.resumed)
            c->st.tls_resumptions++;
        LOG_D(c->log_tag, "%s established (%s)", ts.version, ts.cipher);

        char token[LADE_SAS_TOKEN_MAX + 1];
        size_t token_len;
        lade_err err = lade_sas_token_build(
            c->set.hub_host, c->set.device_id, c->set.device_key, c->set.device_key_len,
            agent_wall_s(c) + c->set.token_ttl_s, NULL, token, sizeof token, &token_len);
        if (err == LADE_OK) {
            struct lade_transport t = lade_tls_conn_transport(c->conn);
            err = lade_mqtt_session_start(&c->mqtt, &t, token, now);
        }
        memset(token, 0, sizeof token);
        if (err) {
            link_down(c, err, "cannot start the MQTT session");
            return;
        }
        set_link(c, LADE_LINK_MQTT);
        events |= LADE_IO_WRITE;
    }
    if (events & LADE_IO_READ) {
        lade_err err = lade_mqtt_session_on_readable(&c->mqtt, now);
        if (c->mqtt.stats.packets_in != c->packets_in_seen) {
            /* Anything from the hub is contact: it moves the link-loss deadline (charging). */
            c->packets_in_seen = c->mqtt.stats.packets_in;
            ctl_hub_seen(c, now);
        }
        if (err && err != LADE_ERR_AGAIN) {
            link_down(c, err, mqtt_reason(err));
            return;
        }
    }
    if (lade_mqtt_session_wants_write(&c->mqtt)) {
        lade_err err = lade_mqtt_session_flush(&c->mqtt, now);
        if (err && err != LADE_ERR_AGAIN) {
            link_down(c, err, mqtt_reason(err));
            return;
        }
    }
    if (c->renewing && lade_mqtt_session_state(&c->mqtt) == LADE_MQTT_DISCONNECTED) {
        c->renewing = false;
        c->st.token_renewals++;
        link_down(c, LADE_OK, "token renewal");
        return;
    }
    mqtt_tick(c);
}

int64_t agent_wall_s(const struct lade_charger *c)
{
    return c->ts ? lade_timesync_wall_s(c->ts) : lade_wall_s();
}

static void on_trust(void *ud, bool trusted)
{
    struct lade_charger *c = ud;
    LOG_I(c->log_tag, "time %s", trusted ? "trusted" : "no longer trusted");
    lade_charger_set_clock_trusted(c, trusted);
    if (trusted && c->time_wait) {
        c->time_wait = false;
        if (c->link == LADE_LINK_WAITING)
            connect_now(c);
    }
    agent_write_status(c);
}

static void on_time_state(void *ud)
{
    agent_write_status(ud); /* e.g. a burst ended without trust: say why now (R19) */
}

static void on_ntp_resolved(void *ud, lade_err err, const struct lade_sockaddr *addrs, size_t n,
                            const struct lade_dnsres_info *info)
{
    (void)info;
    struct lade_charger *c = ud;
    c->ntpq = NULL;
    if (err == LADE_OK && n && !lade_timesync_trusted(c->ts)) {
        struct lade_sockaddr a[8];
        size_t k = n < 8 ? n : 8;
        for (size_t i = 0; i < k; i++) {
            a[i] = addrs[i];
            lade_sockaddr_set_port(&a[i], c->set.ntp_port);
        }
        if (lade_timesync_set_servers(c->ts, a, k) != LADE_OK)
            LOG_W(c->log_tag, "NTP servers not taken");
    }
}

void agent_ntp_lookup_now(struct lade_charger *c)
{
    if (c->ts && !lade_timesync_trusted(c->ts) && c->link != LADE_LINK_STOPPED)
        agent_arm(c, &c->ntp_dns_timer, lade_mono_ms());
}

void agent_net_changed(struct lade_charger *c)
{
    if (c->net_wait && c->link == LADE_LINK_WAITING)
        connect_now(c);
}

/* While time is untrusted, the NTP host is also looked up through DNS every minute (timesync
 * itself reads the factory hosts file and takes literal addresses). */
static void on_ntp_dns_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_charger *c = ud;
    if (!c->ts || lade_timesync_trusted(c->ts) || c->link == LADE_LINK_STOPPED)
        return;
    if (!c->ntpq && c->dns &&
        lade_dnsres_resolve(c->dns, c->set.ntp_host, AF_INET, on_ntp_resolved, c, &c->ntpq) !=
            LADE_OK)
        c->ntpq = NULL;
    agent_arm(c, &c->ntp_dns_timer, lade_mono_ms() + 60000);
}

static void connect_to(struct lade_charger *c, const struct lade_sockaddr *addrs, size_t n)
{
    if (n) {
        struct lade_sockaddr a = addrs[0];
        lade_sockaddr_set_port(&a, c->set.hub_port);
        if (lade_sockaddr_format(&a, c->hub_addr, sizeof c->hub_addr))
            c->hub_addr[0] = 0;
    }
    struct lade_sockaddr src;
    if (c->set.source_address[0] && lade_sockaddr_parse(c->set.source_address, &src) != LADE_OK) {
        link_down(c, LADE_ERR_CONFIG, "source_address is not an IP address");
        return;
    }
    struct lade_tls_conn_opts o = {
        .source_addr = c->set.source_address[0] ? &src : NULL,
        .host = c->set.hub_host,
        .addrs = addrs,
        .n_addrs = n,
        .port = c->set.hub_port,
        .connect_timeout_ms = c->set.connect_timeout_ms,
        .handshake_timeout_ms = c->set.connect_timeout_ms,
        .session = &c->tls_session,
        .bind_ifname = c->bind_if,
        /* certificates are checked on the lade clock: trusted time even when the OS clock
         * is not (it may read 1970 after a power cut, R6) */
        .verify_time_s = c->ts ? agent_wall_s(c) : 0,
    };
    lade_err err = lade_tls_conn_new(&c->conn, c->tls, &o);
    if (err == LADE_OK)
        err = lade_tls_conn_attach(c->conn, c->loop, on_tls, c);
    if (err) {
        close_conn(c);
        link_down(c, err, "cannot start a connection");
        return;
    }
    wire_totals(c, &c->conn_base_in, &c->conn_base_out);
    set_link(c, LADE_LINK_CONNECTING);
}

static void on_hub_resolved(void *ud, lade_err err, const struct lade_sockaddr *addrs, size_t n,
                            const struct lade_dnsres_info *info)
{
    struct lade_charger *c = ud;
    c->dnsq = NULL;
    if (c->link != LADE_LINK_WAITING)
        return;
    if (err) {
        const char *what = err == LADE_ERR_NOT_FOUND ? "no such name"
                           : err == LADE_ERR_TIMEOUT ? "no DNS server answered in time"
                                                     : "no DNS server gave an answer";
        char why[160];
        snprintf(why, sizeof why, "cannot resolve the hub's name: %s", what);
        snprintf(c->dns_error, sizeof c->dns_error, "%s", what);
        link_down(c, LADE_ERR_RESOLVE, why);
        return;
    }
    c->dns_error[0] = 0;
    if (info) {
        snprintf(c->dns_source, sizeof c->dns_source, "%s", lade_dnsres_source_name(info->source));
        c->dns_server[0] = 0;
        if (info->server >= 0 &&
            lade_sockaddr_format(&info->server_addr, c->dns_server, sizeof c->dns_server))
            c->dns_server[0] = 0;
        c->dns_fallback = info->fallback;
        c->dns_ms = info->elapsed_ms;
        LOG_D(c->log_tag, "%s resolved (%s %s%s) in %u ms", c->set.hub_host, c->dns_source,
              c->dns_server, info->fallback ? ", fallback" : "", info->elapsed_ms);
    }
    connect_to(c, addrs, n < LADE_TLS_MAX_ADDRS ? n : LADE_TLS_MAX_ADDRS);
}

/* The hub's address: the factory hosts file first (read at every attempt, as before), then
 * the DNS stub (R5): the site's servers, then the factory fallbacks. */
static void connect_now(struct lade_charger *c)
{
    if (c->dnsq)
        return; /* already resolving */
    const char *ifn = NULL;
    char why[200];
    if (!net_ready(c, why, sizeof why, &ifn)) {
        /* No address to connect from; net.c calls agent_net_changed when there is one. */
        if (!c->net_wait || strcmp(why, c->st.last_reason) != 0) {
            c->net_wait = true;
            snprintf(c->st.last_reason, sizeof c->st.last_reason, "%.159s", why);
            LOG_I(c->log_tag, "%s", why);
            agent_write_status(c);
        }
        return;
    }
    c->net_wait = false;
    snprintf(c->bind_if, sizeof c->bind_if, "%s", ifn ? ifn : "");
    if (c->ts && !lade_timesync_trusted(c->ts)) {
        /* R6: no certificate check and no SAS token on an untrusted clock. on_trust connects. */
        if (!c->time_wait) {
            c->time_wait = true;
            snprintf(c->st.last_reason, sizeof c->st.last_reason,
                     "waiting for trusted time from %.90s", c->set.ntp_host);
            LOG_I(c->log_tag, "%s", c->st.last_reason);
            agent_write_status(c);
        }
        return;
    }
    struct lade_sockaddr addrs[LADE_TLS_MAX_ADDRS];
    size_t n = 0;
    lade_err err =
        lade_resolve_static(c->set.hub_host, c->set.hosts_file, addrs, LADE_TLS_MAX_ADDRS, &n);
    if (err == LADE_ERR_NOSPACE)
        err = LADE_OK; /* use the first LADE_TLS_MAX_ADDRS */
    if (err == LADE_OK) {
        snprintf(c->dns_source, sizeof c->dns_source, "hosts");
        c->dns_server[0] = 0;
        c->dns_error[0] = 0;
        connect_to(c, addrs, n);
        return;
    }
    if (!c->dns) {
        link_down(c, err, "cannot resolve the hub's name");
        return;
    }
    err = lade_dnsres_resolve(c->dns, c->set.hub_host, AF_INET, on_hub_resolved, c, &c->dnsq);
    if (err)
        link_down(c, err, "cannot resolve the hub's name");
}

static void on_retry_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_charger *c = ud;
    if (c->link == LADE_LINK_WAITING)
        connect_now(c);
}

static void on_renew_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_charger *c = ud;
    if (c->link != LADE_LINK_ONLINE)
        return;
    LOG_I(c->log_tag, "token at ~85%% of its life: reconnecting with a fresh one");
    c->renewing = true;
    lade_mqtt_session_disconnect(&c->mqtt);
    on_tls(c->conn, LADE_OK, 0, c);
}

/* ---- lifecycle ---- */

lade_err lade_charger_new(struct lade_charger **out, const struct lade_charger_opts *o)
{
    *out = NULL;
    if (!o || !o->settings || !o->loop)
        return LADE_ERR_INVAL;
    lade_err err = lade_settings_check(o->settings, NULL, NULL);
    if (err)
        return err;
    struct lade_charger *c = calloc(1, sizeof *c);
    if (!c)
        return LADE_ERR_NOMEM;
    c->set = *o->settings;
    c->loop = o->loop;
    c->link = LADE_LINK_STOPPED;
    sc_init(c);
    snprintf(c->log_tag, sizeof c->log_tag, "charger %s", c->set.device_id);
    c->st.telemetry_interval_s = c->set.telemetry_interval_s;
    if (o->status_file && !(c->status_file = strdup(o->status_file))) {
        err = LADE_ERR_NOMEM;
        goto fail;
    }
    c->tls = o->tls;
    if (!c->tls) {
        err = lade_tls_ctx_new(&c->tls, c->set.ca_file);
        if (err)
            goto fail;
        c->own_tls = true;
    }
    err = lade_iothub_username(c->set.hub_host, c->set.device_id, c->username, sizeof c->username,
                               NULL);
    if (err)
        goto fail;
    struct lade_mqtt_session_cfg mc = {
        .client_id = c->set.device_id,
        .username = c->username,
        .keepalive_s = (uint16_t)c->set.keepalive_s,
        .clean_session = false, /* the dialect's CleanSession = 0 */
        .connack_timeout_ms = CONNACK_TIMEOUT_MS,
        .pingresp_timeout_ms = c->set.keepalive_s * 1000u / 2 + 1000u,
        .max_packet = RX_CAP,
        .rx_buf = c->rx,
        .rx_cap = sizeof c->rx,
        .tx_buf = c->tx,
        .tx_cap = sizeof c->tx,
        .inflight = c->inflight,
        .inflight_cap = INFLIGHT,
        .store_buf = c->store,
        .store_cap = sizeof c->store,
        .sub_buf = c->subs,
        .sub_cap = sizeof c->subs,
    };
    err = lade_mqtt_session_init(&c->mqtt, &mc, &mqtt_cbs, c);
    if (err)
        goto fail;
    char c2d[200];
    err = lade_iothub_c2d_filter(c->set.device_id, c2d, sizeof c2d, NULL);
    if (err)
        goto fail;
    const char *filters[] = {LADE_IOTHUB_SUB_METHODS, LADE_IOTHUB_SUB_TWIN_RES,
                             LADE_IOTHUB_SUB_TWIN_DESIRED, c2d};
    const uint8_t qos[] = {0, 0, 0, 1};
    err = lade_mqtt_subscribe(&c->mqtt, filters, qos, 4, NULL);
    if (err)
        goto fail;
    lade_backoff_init(&c->backoff, c->set.backoff_min_ms, c->set.backoff_max_ms,
                      c->set.backoff_stable_s * 1000u);
    lade_backoff_set_spread(&c->backoff, RECONNECT_SPREAD_MS);
    {
        struct lade_sockaddr fb[8], site[8];
        size_t n_fb = 0, n_site = 0;
        lade_err e = lade_dnsres_parse_servers(c->set.fallback_dns, fb, 8, &n_fb);
        if (e != LADE_OK && e != LADE_ERR_NOSPACE)
            n_fb = 0;
        if (c->set.dns_servers[0]) {
            e = lade_dnsres_parse_servers(c->set.dns_servers, site, 8, &n_site);
            if (e != LADE_OK && e != LADE_ERR_NOSPACE)
                n_site = 0;
        }
        struct lade_dnsres_opts dop = {.fallbacks = fb, .n_fallbacks = n_fb};
        err = lade_dnsres_new(c->loop, &dop, &c->dns);
        if (err == LADE_OK && n_site)
            err = lade_dnsres_set_dhcp_servers(c->dns, site, n_site);
        if (err)
            goto fail;
    }
    {
        char floor_file[300];
        snprintf(floor_file, sizeof floor_file, "%s/clock_floor", c->set.state_dir);
        struct lade_timesync_cfg tc = {
            .ntp_host = c->set.ntp_host,
            .hosts_file = c->set.hosts_file,
            .port = c->set.ntp_port,
            .floor_file = c->set.state_dir[0] ? floor_file : NULL,
            .host_mode = strcmp(c->set.time_source, "host") == 0,
            .on_trust = on_trust,
            .on_state = on_time_state,
            .ud = c,
        };
        err = lade_timesync_new(c->loop, &tc, &c->ts);
        if (err)
            goto fail;
        lade_timer_init(&c->ntp_dns_timer, on_ntp_dns_timer, c);
    }
    lade_timer_init(&c->retry_timer, on_retry_timer, c);
    lade_timer_init(&c->mqtt_timer, on_mqtt_timer, c);
    lade_timer_init(&c->telemetry_timer, on_telemetry_timer, c);
    lade_timer_init(&c->renew_timer, on_renew_timer, c);
    lade_timer_init(&c->restart_defer_timer, on_restart_defer_timer, c);
    c->on_restart = o->on_restart;
    c->restart_ud = o->restart_ud;
    c->snapshot_phase_ms = o->snapshot_phase_ms;
    err = upd_init(c); /* the boot decision: which firmware runs (observation 911) */
    if (err)
        goto fail;
    err = ctl_init(c);
    if (err)
        goto fail;
    err = net_init(c);
    if (err)
        goto fail;
    *out = c;
    return LADE_OK;
fail:
    net_free(c);
    upd_free(c);
    ctl_free(c);
    lade_timesync_free(c->ts);
    lade_dnsres_free(c->dns);
    if (c->own_tls)
        lade_tls_ctx_free(c->tls);
    free(c->status_file);
    free(c);
    return err;
}

lade_err lade_charger_start(struct lade_charger *c, uint32_t delay_ms)
{
    if (c->link != LADE_LINK_STOPPED)
        return LADE_ERR_STATE;
    c->started_ms = lade_mono_ms();
    lade_err nerr = net_start(c);
    if (nerr) {
        LOG_E(c->log_tag, "cannot manage the network: %s", lade_strerror(nerr));
        net_stop(c);
        return nerr;
    }
    set_link(c, LADE_LINK_WAITING);
    ctl_start(c);
    upd_start(c);
    if (c->ts && !lade_timesync_trusted(c->ts)) {
        lade_err e = lade_timesync_start(c->ts);
        if (e != LADE_OK && e != LADE_ERR_STATE)
            LOG_W(c->log_tag, "trusted time: %s", lade_strerror(e));
        if (!lade_timesync_trusted(c->ts))
            agent_arm(c, &c->ntp_dns_timer, c->started_ms);
    }
    return lade_timer_arm(c->loop, &c->retry_timer, c->started_ms + delay_ms);
}

void lade_charger_stop(struct lade_charger *c)
{
    if (c->link == LADE_LINK_STOPPED)
        return;
    if (c->conn && lade_mqtt_session_state(&c->mqtt) == LADE_MQTT_CONNECTED) {
        /* Best effort: DISCONNECT goes out if the socket takes it now. */
        lade_mqtt_session_disconnect(&c->mqtt);
        if (lade_mqtt_session_flush(&c->mqtt, lade_mono_ms()) != LADE_OK)
            LOG_D(c->log_tag, "DISCONNECT not fully written");
    }
    set_link(c, LADE_LINK_STOPPED);
    lade_timer_cancel(c->loop, &c->retry_timer);
    lade_timer_cancel(c->loop, &c->restart_defer_timer);
    lade_dnsres_cancel(c->dnsq);
    c->dnsq = NULL;
    lade_dnsres_cancel(c->ntpq);
    c->ntpq = NULL;
    lade_timer_cancel(c->loop, &c->ntp_dns_timer);
    ctl_stop(c);
    upd_stop(c);
    sc_stop(c);
    link_down(c, LADE_OK, "stopped");
    net_stop(c);
    LOG_I(c->log_tag, "stopped");
}

void lade_charger_free(struct lade_charger *c)
{
    if (!c)
        return;
    lade_charger_stop(c);
    sc_free(c);
    net_free(c);
    upd_free(c);
    ctl_free(c);
    lade_timesync_free(c->ts);
    lade_dnsres_free(c->dns);
    if (c->own_tls)
        lade_tls_ctx_free(c->tls);
    free(c->status_file);
    lade_tls_session_free(c->tls_session);
    memset(c->set.device_key, 0, sizeof c->set.device_key);
    free(c);
}
