/* Charging control in the agent: the shell around the pure cores (docs/charging.md,
 * docs/observations.md, docs/outbox.md; issue 3).
 *
 * Once a second (and right after every command) the step reads the board, runs the charging
 * state machine, drives the offer and the contactor, feeds the observation reporter and keeps
 * the session in progress checkpointed. A finished session is stored in the outbox (synced)
 * before anything else happens with it, then sent QoS 1 with $.mid = its id and deleted only
 * when the hub acknowledged it. Direct methods carry the commands; twin desired properties carry
 * the settings, persisted so a charger that boots without its hub keeps them.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "lade/file.h"
#include "lade/clock.h"
#include "lade/log.h"

#define STEP_MAX_MS          1000u
#define WARN_STORAGE         (1 << 0) /* 804 bits */
#define WARN_OFFLINE         (1 << 1)
#define WARN_OVERDRAW        (1 << 2)
#define WARN_BOARD_FAULT     (1 << 3)
#define WARN_SIM_STATE       (1 << 4)
#define CHECKPOINT_VERSION   1
#define METHOD_MAX_CURRENT_A 80.0 /* a PWM offer cannot express more: above is nonsense */

static void step(struct lade_charger *c);

static uint64_t now_ms(void)
{
    return lade_mono_ms();
}

/* ---- small helpers ---- */

static void hex16(const uint8_t id[16], char out[LADE_OUTBOX_ID_LEN + 1])
{
    static const char d[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = d[id[i] >> 4];
        out[2 * i + 1] = d[id[i] & 15];
    }
    out[32] = 0;
}

static bool unhex16(const char *s, uint8_t id[16])
{
    if (!s || !lade_outbox_id_valid(s))
        return false;
    for (int i = 0; i < 16; i++)
        id[i] = (uint8_t)(lade_hex_digit(s[2 * i]) << 4 | lade_hex_digit(s[2 * i + 1]));
    return true;
}

static void iso_time(int64_t wall_s, char *out, size_t cap)
{
    time_t t = (time_t)wall_s;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, cap, "1970-01-01T00:00:00Z");
}

static void state_path(const struct lade_charger *c, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", c->set.state_dir, name);
}

/* Atomic small-file write (lade/file.h): temp file, optional fsync, rename. */
static bool write_file_atomic(const char *path, const char *text, bool sync)
{
    return lade_file_write_atomic(path, text, strlen(text), 0644, sync) == LADE_OK;
}

static cJSON *read_json_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return cJSON_ParseWithLength(buf, n);
}

static bool json_int(const cJSON *o, const char *name, int64_t lo, int64_t hi, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= (double)lo) || !(v->valuedouble <= (double)hi) ||
        v->valuedouble != (double)(int64_t)v->valuedouble)
        return false;
    *out = (int64_t)v->valuedouble;
    return true;
}

/* ---- storage fault reporting ---- */

static void storage_failed(struct lade_charger *c, const char *what)
{
    struct ctl *k = &c->ctl;
    char reason[LADE_OUTBOX_ERROR_TEXT_SIZE] = "";
    if (k->ob) {
        struct lade_outbox_stats st;
        if (lade_outbox_stats(k->ob, &st) == LADE_OK || st.last_error[0])
            snprintf(reason, sizeof reason, "%s", st.last_error);
    }
    if (!k->storage_fault)
        LOG_E(c->log_tag, "storage fault: %s%s%s; charging goes on, sessions kept in memory", what,
              reason[0] ? ": " : "", reason);
    k->storage_fault = true;
    snprintf(k->storage_error, sizeof k->storage_error, "%s%s%s", what, reason[0] ? ": " : "",
             reason);
}

static void memory_to_outbox(struct lade_charger *c);

static void storage_ok(struct lade_charger *c)
{
    struct ctl *k = &c->ctl;
    memory_to_outbox(c);
    if (k->storage_fault && k->n_mem == 0) {
        LOG_I(c->log_tag, "storage works again");
        k->storage_fault = false;
    }
}

static void open_outbox(struct lade_charger *c)
{
    struct ctl *k = &c->ctl;
    if (k->ob)
        return;
    lade_err err = lade_outbox_open(k->outbox_path, NULL, &k->ob);
    if (err) {
        k->ob = NULL;
        /* The outbox logs SQLite's reason; the status file and the portal get the system's. */
        const char *why = lade_strerror(err);
        struct stat sb;
        FILE *probe = NULL;
        if (stat(k->outbox_path, &sb) == 0 && S_ISDIR(sb.st_mode))
            why = "is a directory";
        else if (!(probe = fopen(k->outbox_path, "a")))
            why = strerror(errno);
        if (probe)
            fclose(probe);
        char what[400];
        snprintf(what, sizeof what, "cannot open the outbox %s: %s", k->outbox_path, why);
        storage_failed(c, what);
        return;
    }
    struct lade_outbox_stats st;
    if (lade_outbox_stats(k->ob, &st) == LADE_OK && st.recovered_corrupt) {
        k->storage_recovered = true;
        LOG_E(c->log_tag, "outbox was corrupt: moved aside to %s, started a fresh one",
              st.corrupt_path);
    }
}

/* ---- the simulated board ---- */

static bool sim_profile(const char *name, struct lade_ev_config *ev, uint32_t soc_pct)
{
    enum lade_ev_profile p;
    if (strcmp(name, "1p16a") == 0)
        p = LADE_EV_1P_16A;
    else if (strcmp(name, "3p11kw") == 0)
        p = LADE_EV_3P_11KW;
    else if (strcmp(name, "3p22kw") == 0)
        p = LADE_EV_3P_22KW;
    else
        return false;
    lade_ev_config_profile(ev, p);
    ev->soc_permille = soc_pct * 10;
    return true;
}

static void sim_save(struct lade_charger *c, bool force)
{
    struct ctl *k = &c->ctl;
    if (!force && k->sim.energy_wh == k->sim_saved_wh && k->sim.plugged == k->sim_saved_plugged)
        return;
    uint64_t sn = k->sim.last_ms;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "energyWh", (double)k->sim.energy_wh);
    cJSON_AddNumberToObject(o, "energyRemNj", (double)k->sim.energy_rem_nj);
    cJSON_AddBoolToObject(o, "plugged", k->sim.plugged);
    cJSON_AddStringToObject(o, "profile", k->sim_profile);
    cJSON_AddNumberToObject(o, "batteryNj", (double)k->sim.battery_nj);
    cJSON_AddNumberToObject(o, "capacityWh", (double)k->sim.ev.capacity_wh);
    cJSON_AddNumberToObject(o, "selfLimitMa", k->sim.ev.self_limit_ma);
    cJSON_AddNumberToObject(o, "overdrawMa", k->sim.ev.overdraw_ma);
    cJSON_AddNumberToObject(o, "faults", k->sim.faults);
    cJSON_AddNumberToObject(o, "phaseLeftMs",
                            k->sim_phase_end_ms > sn ? (double)(k->sim_phase_end_ms - sn) : 0);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char path[400];
    state_path(c, "sim.json", path, sizeof path);
    /* Not synced: it stands in for a meter, which keeps its register in hardware. */
    if (!text || !write_file_atomic(path, text, false))
        LOG_W(c->log_tag, "cannot write the simulator state %s", path);
    free(text);
    k->sim_saved_wh = k->sim.energy_wh;
    k->sim_saved_plugged = k->sim.plugged;
}

static void sim_plug(struct lade_charger *c, const char *profile, uint32_t soc_pct)
{
    struct ctl *k = &c->ctl;
    struct lade_ev_config ev;
    if (!sim_profile(profile, &ev, soc_pct))
        return;
    lade_evse_sim_plug(&k->sim, &ev);
    snprintf(k->sim_profile, sizeof k->sim_profile, "%s", profile);
    LOG_I(c->log_tag, "simulator: %s car plugged in at %u %%", profile, soc_pct);
}

static void sim_init(struct lade_charger *c)
{
    struct ctl *k = &c->ctl;
    lade_evse_sim_init(&k->sim);
    k->ops = &lade_evse_sim_ops;
    k->hw = &k->sim;
    k->sim_base_mono_ms = now_ms();
    k->sim_base_ms = 1000; /* sim time starts anywhere; only differences matter */
    snprintf(k->sim_profile, sizeof k->sim_profile, "%s", c->set.sim_car);
    char path[400];
    state_path(c, "sim.json", path, sizeof path);
    cJSON *o = read_json_file(path);
    int64_t v;
    if (o) {
        /* The meter register and the car survive an agent restart, as real ones do. */
        if (json_int(o, "energyWh", 0, INT64_MAX / 2, &v))
            k->sim.energy_wh = (uint64_t)v;
        if (json_int(o, "energyRemNj", 0, 3600000000000LL, &v))
            k->sim.energy_rem_nj = (uint64_t)v;
        const cJSON *prof = cJSON_GetObjectItemCaseSensitive(o, "profile");
        const cJSON *pl = cJSON_GetObjectItemCaseSensitive(o, "plugged");
        if (cJSON_IsTrue(pl) && cJSON_IsString(prof)) {
            sim_plug(c, prof->valuestring, 0);
            if (json_int(o, "batteryNj", 0, INT64_MAX / 2, &v))
                k->sim.battery_nj = (uint64_t)v;
            if (json_int(o, "selfLimitMa", 0, 80000, &v))
                k->sim.ev.self_limit_ma = (int32_t)v;
            if (json_int(o, "overdrawMa", 0, 80000, &v))
                k->sim.ev.overdraw_ma = (int32_t)v;
        }
        if (json_int(o, "faults", 0, 255, &v))
            k->sim.faults = (uint32_t)v;
        if (json_int(o, "phaseLeftMs", 0, INT64_MAX / 4, &v) && v > 0)
            k->sim_phase_end_ms = k->sim_base_ms + (uint64_t)v;
        cJSON_Delete(o);
        LOG_I(c->log_tag, "simulator state restored (meter %" PRIu64 " Wh, car %s)",
              k->sim.energy_wh, k->sim.plugged ? "plugged" : "not plugged");
    } else if (strcmp(c->set.sim_car, "none") != 0) {
        sim_plug(c, c->set.sim_car, c->set.sim_soc);
        if (c->set.sim_plug_s)
            k->sim_phase_end_ms = k->sim_base_ms + (uint64_t)c->set.sim_plug_s * 1000;
    }
    lade_evse_sim_step(&k->sim, k->sim_base_ms);
    sim_save(c, true);
}

/* Advances the simulated car and meter to now (scaled) and runs its plug cycle. */
static void sim_advance(struct lade_charger *c, uint64_t mono)
{
    struct ctl *k = &c->ctl;
    uint64_t sn = k->sim_base_ms + (mono - k->sim_base_mono_ms) * c->set.sim_time_scale;
    lade_evse_sim_step(&k->sim, sn);
    if (k->sim_phase_end_ms && sn >= k->sim_phase_end_ms) {
        if (k->sim.plugged) {
            lade_evse_sim_unplug(&k->sim);
            LOG_I(c->log_tag, "simulator: car unplugged");
            k->sim_phase_end_ms =
                c->set.sim_unplug_s ? sn + (uint64_t)c->set.sim_unplug_s * 1000 : 0;
        } else {
            const char *prof = strcmp(c->set.sim_car, "none") ? c->set.sim_car : k->sim_profile;
            sim_plug(c, prof[0] ? prof : "3p11kw", c->set.sim_soc);
            k->sim_phase_end_ms = c->set.sim_plug_s ? sn + (uint64_t)c->set.sim_plug_s * 1000 : 0;
        }
        lade_evse_sim_step(&k->sim, sn);
    }
    sim_save(c, false);
}

/* ---- session records ---- */

static const char *end_reason_name(enum lade_session_end_reason r)
{
    switch (r) {
    case LADE_SESSION_END_UNPLUGGED:
        return "unplugged";
    case LADE_SESSION_END_DEAUTHORIZED:
        return "deauthorized";
    case LADE_SESSION_END_FAULT:
        return "fault";
    case LADE_SESSION_END_OVERDRAW:
        return "overdraw";
    }
    return "unknown";
}

/* The finished record as the portal wants it (observation 723, a JSON string), wrapped in an
 * observation message: {"t":end,"o":{"723":"{\"SessionId\":...}"}}. */
static bool session_message(const struct lade_session_record *r, bool end_estimated, char *out,
                            size_t cap, size_t *len)
{
    char id[LADE_OUTBOX_ID_LEN + 1], start[32], end[32];
    hex16(r->id, id);
    iso_time(r->start_wall_s, start, sizeof start);
    iso_time(r->end_wall_s, end, sizeof end);
    char inner[512];
    int n = snprintf(inner, sizeof inner,
                     "{\"SessionId\":\"%s\",\"Energy\":%" PRIu64 ".%03u,\"StartDateTime\":\"%s\","
                     "\"EndDateTime\":\"%s\",\"ReliableClock\":%s,\"PeakPowerW\":%" PRId32
                     ",\"Phases\":%u,\"EndReason\":\"%s\"%s}",
                     id, r->energy_wh / 1000, (unsigned)(r->energy_wh % 1000), start, end,
                     r->clock_trusted ? "true" : "false", r->peak_power_w, r->phases_used,
                     end_reason_name(r->end_reason), end_estimated ? ",\"EndEstimated\":true" : "");
    if (n > LADE_OBS_STR_MAX) {
        /* An observation string holds at most 255 bytes (docs/observations.md); the billing
         * fields come first, the descriptive ones go if they do not fit. */
        n = snprintf(inner, sizeof inner,
                     "{\"SessionId\":\"%s\",\"Energy\":%" PRIu64 ".%03u,\"StartDateTime\":\"%s\","
                     "\"EndDateTime\":\"%s\",\"ReliableClock\":%s}",
                     id, r->energy_wh / 1000, (unsigned)(r->energy_wh % 1000), start, end,
                     r->clock_trusted ? "true" : "false");
    }
    if (n < 0 || n > LADE_OBS_STR_MAX)
        return false;
    /* The inner document only holds hex, digits, ISO times and fixed words: escaping its quotes
     * is all JSON needs. */
    size_t o = 0;
    n = snprintf(out, cap, "{\"t\":%" PRId64 ",\"o\":{\"723\":\"", r->end_wall_s);
    if (n < 0 || (size_t)n >= cap)
        return false;
    o = (size_t)n;
    for (const char *p = inner; *p; p++) {
        if (o + 3 >= cap)
            return false;
        if (*p == '"')
            out[o++] = '\\';
        out[o++] = *p;
    }
    if (o + 4 >= cap)
        return false;
    memcpy(out + o, "\"}}", 4);
    *len = o + 3;
    return true;
}

static void checkpoint(struct lade_charger *c, int64_t wall)
{
    struct ctl *k = &c->ctl;
    if (!k->session_hex[0])
        return;
    const struct lade_session_record *r = &k->cs.session;
    char buf[512];
    int n = snprintf(buf, sizeof buf,
                     "{\"v\":%d,\"start\":%" PRId64 ",\"trusted\":%s,\"startWh\":%" PRIu64
                     ",\"peakW\":%" PRId32 ",\"phases\":%u,\"finalStop\":%s,\"wall\":%" PRId64 "}",
                     CHECKPOINT_VERSION, r->start_wall_s, r->clock_trusted ? "true" : "false",
                     k->session_start_wh, r->peak_power_w, r->phases_used,
                     k->cs.final_stop ? "true" : "false", wall);
    if (n < 0 || (size_t)n >= sizeof buf)
        return;
    open_outbox(c);
    if (!k->ob)
        return;
    if (lade_outbox_session_checkpoint(k->ob, k->session_hex, buf, (size_t)n, wall) != LADE_OK) {
        storage_failed(c, "cannot checkpoint the session in progress");
        return;
    }
    k->checkpoint_wall_s = wall;
    storage_ok(c);
}

static void pump(struct lade_charger *c);

static void keep_in_memory(struct lade_charger *c, const char *mid, const char *payload, size_t len)
{
    struct ctl *k = &c->ctl;
    for (size_t i = 0; i < k->n_mem; i++)
        if (strcmp(k->mem[i].msg_id, mid) == 0)
            return;
    if (k->n_mem == CTL_MEM_QUEUE) {
        LOG_E(c->log_tag, "session %s lost: storage failed and %d sessions already wait in memory",
              mid, CTL_MEM_QUEUE);
        return;
    }
    struct ctl_mem_session *m = &k->mem[k->n_mem++];
    memset(m, 0, sizeof *m);
    snprintf(m->msg_id, sizeof m->msg_id, "%s", mid);
    memcpy(m->payload, payload, len);
    m->len = len;
}

/* Sessions kept in memory during a storage fault go into the outbox once it works again (not
 * those in flight: their PUBACK removes them). Durable again from then on. */
static void memory_to_outbox(struct lade_charger *c)
{
    struct ctl *k = &c->ctl;
    size_t i = 0;
    while (k->ob && i < k->n_mem) {
        struct ctl_mem_session *m = &k->mem[i];
        if (m->in_flight || lade_outbox_put(k->ob, LADE_OUTBOX_SESSION, m->msg_id, m->payload,
                                            m->len, agent_wall_s(c), NULL) != LADE_OK) {
            i++;
            continue;
        }
        LOG_I(c->log_tag, "session %s moved from memory to the outbox", m->msg_id);
        k->sessions_stored++;
        memmove(m, m + 1, (k->n_mem - i - 1) * sizeof *m);
        k->n_mem--;
    }
}

/* A session ended: store it durably first (the outbox put also removes its checkpoint in the
 * same transaction), then send. */
static void session_finished(struct lade_charger *c, const struct lade_session_record *r,
                             bool end_estimated)
{
    struct ctl *k = &c->ctl;
    char mid[LADE_OUTBOX_ID_LEN + 1];
    hex16(r->id, mid);
    char payload[CTL_PAYLOAD_MAX];
    size_t len = 0;
    if (!session_message(r, end_estimated, payload, sizeof payload, &len)) {
        LOG_E(c->log_tag, "session %s: record does not fit", mid);
        return;
    }
    k->sessions_ended++;
    k->last_session_wh = r->energy_wh;
    open_outbox(c);
    lade_err err = k->ob ? lade_outbox_put(k->ob, LADE_OUTBOX_SESSION, mid, payload, len,
                                           agent_wall_s(c), NULL)
                         : LADE_ERR_DB;
    if (err == LADE_OK) {
        k->sessions_stored++;
        storage_ok(c);
    } else {
        storage_failed(c, err == LADE_ERR_FULL ? "outbox full: session kept in memory"
                                               : "cannot store a finished session");
        keep_in_memory(c, mid, payload, len);
    }
    LOG_I(c->log_tag, "session %s finished: %" PRIu64 " Wh (%s)%s", mid, r->energy_wh,
          end_reason_name(r->end_reason), err == LADE_OK ? ", stored" : ", kept in memory");
    k->session_hex[0] = 0;
    k->checkpoint_wall_s = 0;
    pump(c);
}

/* ---- sending stored sessions ---- */

static struct ctl_send_slot *free_slot(struct ctl *k)
{
    for (int i = 0; i < CTL_SEND_WINDOW; i++)
        if (k->slots[i].packet_id == 0)
            return &k->slots[i];
    return NULL;
}

static bool send_one(struct lade_charger *c, struct ctl_send_slot *slot, const char *mid,
                     const void *payload, size_t len, bool from_memory)
{
    char topic[300];
    uint16_t pid = 0;
    if (agent_telemetry_topic(c, mid, topic, sizeof topic) != LADE_OK)
        return false;
    if (agent_publish(c, topic, payload, len, 1, &pid) != LADE_OK || pid == 0)
        return false;
    slot->packet_id = pid;
    slot->from_memory = from_memory;
    snprintf(slot->msg_id, sizeof slot->msg_id, "%s", mid);
    LOG_D(c->log_tag, "session %s sent (packet %u)", mid, pid);
    return true;
}

/* Sends stored sessions, oldest first, while the window has room. QoS 1 messages stay in the
 * MQTT session across reconnects (resent with DUP), so the cursor only moves forward; a restart
 * starts again from the oldest record still stored. */
static void pump(struct lade_charger *c)
{
    struct ctl *k = &c->ctl;
    if (c->link != LADE_LINK_ONLINE)
        return;
    struct ctl_send_slot *slot;
    while (k->ob && (slot = free_slot(k)) != NULL) {
        struct lade_outbox_rec rec;
        lade_err err = lade_outbox_next(k->ob, k->ob_after_seq, &rec);
        if (err == LADE_ERR_NOT_FOUND)
            break;
        if (err) {
            storage_failed(c, "cannot read the outbox");
            break;
        }
        if (lade_outbox_attempt(k->ob, rec.msg_id, agent_wall_s(c)) != LADE_OK)
            LOG_W(c->log_tag, "cannot count a send attempt");
        bool ok = send_one(c, slot, rec.msg_id, rec.payload, rec.len, false);
        if (ok)
            k->ob_after_seq = rec.seq;
        lade_outbox_rec_free(&rec);
        if (!ok)
            return;
    }
    for (size_t i = 0; i < k->n_mem; i++) {
        if (k->mem[i].in_flight)
            continue;
        if (!(slot = free_slot(k)))
            return;
        if (!send_one(c, slot, k->mem[i].msg_id, k->mem[i].payload, k->mem[i].len, true))
            return;
        k->mem[i].in_flight = true;
    }
}

void ctl_on_puback(struct lade_charger *c, uint16_t packet_id)
{
    struct ctl *k = &c->ctl;
    for (int i = 0; i < CTL_SEND_WINDOW; i++) {
        struct ctl_send_slot *s = &k->slots[i];
        if (s->packet_id != packet_id)
            continue;
        s->packet_id = 0;
        k->sessions_acked++;
        if (s->from_memory) {
            for (size_t j = 0; j < k->n_mem; j++) {
                if (strcmp(k->mem[j].msg_id, s->msg_id) == 0) {
                    memmove(&k->mem[j], &k->mem[j + 1], (k->n_mem - j - 1) * sizeof k->mem[0]);
                    k->n_mem--;
                    break;
                }
            }
        } else if (k->ob && lade_outbox_ack(k->ob, s->msg_id) != LADE_OK) {
            /* It is sent again after a restart; the portal drops the duplicate by $.mid. */
            storage_failed(c, "cannot delete an acknowledged session");
        } else if (k->ob) {
            storage_ok(c); /* a storage operation worked */
        }
        LOG_D(c->log_tag, "session %s acknowledged by the hub", s->msg_id);
        pump(c);
        agent_write_status(c);
        return;
    }
}

/* ---- observations ---- */

static void obs_set(struct lade_charger *c, int32_t id, int64_t v, uint64_t now)
{
    if (lade_obs_set_int(&c->ctl.obs, id, v, now) != LADE_OK)
        LOG_D(c->log_tag, "observation %d not recorded", (int)id);
}

static int32_t phases_in_use(const struct lade_meter_reading *m, unsigned fallback)
{
    /* 519: 1/2/3 = L1/L2/L3 alone, 4 = all (TN). */
    int used = 0, which = 0;
    for (int p = 0; p < 3; p++)
        if (m->current_ma[p] > 1000) {
            used++;
            which = p + 1;
        }
    if (used == 0)
        return fallback == 3 ? 4 : 1;
    return used == 1 ? which : 4;
}

static void observe(struct lade_charger *c, const struct lade_meter_reading *m, uint64_t now)
{
    struct ctl *k = &c->ctl;
    const struct lade_charging_outputs *o = &k->out;
    obs_set(c, 710, o->mode, now);
    obs_set(c, 718, o->final_stop ? 1 : 0, now);
    obs_set(c, 513, m->power_w, now);
    for (int p = 0; p < 3; p++) {
        obs_set(c, 507 + p, m->current_ma[p] / 100, now);
        obs_set(c, 501 + p, m->voltage_mv[p] / 100, now);
    }
    uint64_t session_wh = k->session_hex[0] && m->energy_wh >= k->session_start_wh
                              ? m->energy_wh - k->session_start_wh
                              : k->last_session_wh;
    obs_set(c, 553, (int64_t)session_wh, now);
    obs_set(c, 708, o->allocated_ma / 100, now);
    obs_set(c, 519, phases_in_use(m, o->phases), now);
    int64_t warn = 0;
    if (k->storage_fault)
        warn |= WARN_STORAGE;
    if (o->offline)
        warn |= WARN_OFFLINE;
    if (o->state == LADE_CHG_FAULT)
        warn |= k->cs.session.end_reason == LADE_SESSION_END_OVERDRAW ? WARN_OVERDRAW
                                                                      : WARN_BOARD_FAULT;
    obs_set(c, 804, warn, now);
    obs_set(c, 810, c->link == LADE_LINK_ONLINE ? 1 : 0, now);
    obs_set(c, 510, k->cs.cfg.max_current_ma / 100, now);
    obs_set(c, 511, k->cs.cfg.min_current_ma / 100, now);
    obs_set(c, 520, k->cs.cfg.max_phases, now);
    obs_set(c, 522, k->cs.cfg.offline_phases, now);
    obs_set(c, 523, k->cs.cfg.offline_current_ma / 100, now);
    if (k->session_hex[0] &&
        lade_obs_set_str(&k->obs, 721, k->session_hex, strlen(k->session_hex), now) != LADE_OK)
        LOG_D(c->log_tag, "session id not recorded");
}

static void obs_flush(struct lade_charger *c)
{
    struct ctl *k = &c->ctl;
    uint64_t now = now_ms();
    if (c->link != LADE_LINK_ONLINE)
        return;
    char topic[256];
    if (agent_telemetry_topic(c, NULL, topic, sizeof topic) != LADE_OK)
        return;
    char buf[LADE_OBS_MSG_MAX + 1];
    uint32_t sent_before = k->obs_messages;
    bool more = true;
    for (int guard = 0; more && guard < 16; guard++) {
        size_t len = 0;
        if (lade_obs_encode(&k->obs, now, agent_wall_s(c), buf, sizeof buf, &len, &more) != LADE_OK)
            break;
        if (len == 0)
            break;
        /* QoS 0: state is re-sent whole after any loss (a snapshot follows every reconnect),
         * so a PUBACK per message would only add bytes. */
        if (agent_publish(c, topic, buf, len, 0, NULL) != LADE_OK) {
            lade_obs_request_snapshot(&k->obs);
            break;
        }
        k->obs_messages++;
        k->obs_bytes += len;
        c->st.telemetry_sent++;
    }
    uint64_t due = lade_obs_next_due_ms(&k->obs);
    if (due != UINT64_MAX)
        agent_arm(c, &k->obs_timer, due > now ? due : now + 1);
    if (k->obs_messages != sent_before)
        agent_write_status(c); /* counters and wire bytes for the status file */
}

static void on_obs_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    obs_flush(ud);
}

/* ---- the step ---- */

static void drive(struct lade_charger *c)
{
    struct ctl *k = &c->ctl;
    /* Lower first, then the contactor: a falling offer reaches the car before the contactor
     * moves; a rising offer is only given with the contactor already in its new state. */
    if (k->ops->set_offer_ma(k->hw, k->out.offer_ma) != LADE_OK)
        LOG_E(c->log_tag, "board refused an offer of %" PRId32 " mA", k->out.offer_ma);
    if (k->ops->set_contactor(k->hw, k->out.contactor_closed, k->out.phases) != LADE_OK)
        LOG_E(c->log_tag, "board refused the contactor command");
}

static void step(struct lade_charger *c)
{
    struct ctl *k = &c->ctl;
    if (!k->enabled || k->stepping)
        return;
    k->stepping = true;
    uint64_t now = now_ms();
    int64_t wall = agent_wall_s(c);
    if (k->hw == &k->sim)
        sim_advance(c, now);
    struct lade_charging_inputs in;
    memset(&in, 0, sizeof in);
    in.cp = k->ops->cp_state(k->hw);
    in.cable_rating_ma = k->ops->cable_rating_ma(k->hw);
    in.faults = k->ops->faults(k->hw);
    if (k->ops->read_meter(k->hw, &in.meter) != LADE_OK)
        in.faults |= LADE_EVSE_FAULT_METER;
    in.link_up = c->link == LADE_LINK_ONLINE;
    in.hub_last_seen_ms = k->hub_last_seen_ms;
    in.clock_trusted = k->clock_trusted;
    bool was_resumed = k->resumed_from_checkpoint && !k->first_step_done;
    struct lade_charging_outputs prev = k->out;
    lade_charging_step(&k->cs, now, wall, &in, &k->out);
    k->first_step_done = true;
    drive(c);
    bool car = in.cp == LADE_CP_B || in.cp == LADE_CP_C || in.cp == LADE_CP_D;
    if (!car)
        c->st.car_since_ms = c->st.offer_since_ms = 0;
    else if (!c->st.car_since_ms)
        c->st.car_since_ms = now;
    if (car && k->out.offer_ma > 0 && !c->st.offer_since_ms)
        c->st.offer_since_ms = now;
    c->st.offer_ma = k->out.offer_ma;
    c->st.setpoint_ma = k->cs.setpoint_ma;

    const struct lade_charging_outputs *o = &k->out;
    if ((o->events & LADE_CHG_EV_FALLBACK) && c->link == LADE_LINK_ONLINE) {
        /* Nothing from the hub for the whole deadline while we kept sending: the link is dead
         * even if TCP has not noticed (keep-alive counts from our last send). Reconnect. */
        agent_drop_link(c, "nothing from the hub within the link-loss deadline");
        /* (its link-down step is skipped: this step already applied the fallback) */
    }
    if (o->events & LADE_CHG_EV_SESSION_ENDED) {
        struct lade_session_record r = o->session;
        bool estimated = false;
        if (was_resumed && r.end_reason == LADE_SESSION_END_UNPLUGGED && k->checkpoint_wall_s) {
            /* The car left while the agent was not running: the last checkpoint is the last
             * moment it is known to have been there. The energy is the meter's, exact. */
            r.end_wall_s = k->checkpoint_wall_s;
            estimated = true;
        }
        session_finished(c, &r, estimated);
    }
    if (o->events & LADE_CHG_EV_SESSION_STARTED) {
        /* A session id is also the msg_id of its finished record. */
        hex16(o->session.id, k->session_hex);
        k->session_start_wh = in.meter.energy_wh;
        k->sessions_started++;
        k->last_session_wh = 0;
        checkpoint(c, wall);
        LOG_I(c->log_tag, "session %s started", k->session_hex);
    }
    if (k->session_hex[0] && (o->events & LADE_CHG_EV_STATE) && k->checkpoint_wall_s != 0)
        checkpoint(c, wall); /* final stop and resume are part of the checkpoint */
    else if (k->session_hex[0] &&
             wall - k->checkpoint_wall_s >= (int64_t)c->set.checkpoint_interval_s)
        checkpoint(c, wall);

    observe(c, &in.meter, now);
    if (o->events || o->offer_ma != prev.offer_ma || o->contactor_closed != prev.contactor_closed ||
        o->phases != prev.phases || o->allocated_ma != prev.allocated_ma ||
        o->offline != prev.offline || o->mode != prev.mode || o->final_stop != prev.final_stop)
        agent_write_status(c);
    uint64_t next = o->next_step_ms;
    if (next > now + STEP_MAX_MS)
        next = now + STEP_MAX_MS;
    agent_arm(c, &k->step_timer, next);
    if (lade_obs_due(&k->obs, now))
        obs_flush(c);
    else if (c->link == LADE_LINK_ONLINE) {
        uint64_t due = lade_obs_next_due_ms(&k->obs);
        if (due != UINT64_MAX)
            agent_arm(c, &k->obs_timer, due);
    }
    k->stepping = false;
}

static void on_step_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    step(ud);
}

static void on_restart_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_charger *c = ud;
    LOG_I(c->log_tag, "RestartCharger: restarting the agent");
    if (c->on_restart)
        c->on_restart(c->restart_ud);
}

/* ---- settings: files, twin ---- */

static void new_session_id(void *ud, uint8_t id[16])
{
    struct lade_charger *c = ud;
    if (lade_random(id, 16) != LADE_OK) {
        /* CSPRNG failure: still unique per charger (device id hash would be better); never
         * reuse an id, the portal bills by it. */
        uint64_t t = lade_mono_ms() ^ (uint64_t)lade_wall_s() << 20;
        memcpy(id, &t, sizeof t);
        memcpy(id + 8, &c->ctl.sessions_started, sizeof c->ctl.sessions_started);
        LOG_E(c->log_tag, "no random session id: using a time-based one");
    }
}

static lade_err charging_config(struct lade_charger *c, struct lade_charging_config *cfg)
{
    lade_charging_config_defaults(cfg);
    cfg->max_current_ma = (int32_t)c->set.max_current_a * 1000;
    cfg->min_current_ma = (int32_t)c->set.min_current_a * 1000;
    cfg->max_phases = c->set.max_phases;
    cfg->offline_current_ma = (int32_t)c->set.offline_current_a * 1000;
    cfg->offline_phases = c->set.offline_phases;
    cfg->free_mode = c->set.free_mode != 0;
    cfg->link_loss_deadline_ms =
        lade_charging_link_loss_deadline_ms(c->set.keepalive_s, c->set.link_grace_ms);
    if (cfg->offline_current_ma > cfg->max_current_ma)
        cfg->offline_current_ma = cfg->max_current_ma;
    if (cfg->min_current_ma > cfg->max_current_ma)
        cfg->min_current_ma = cfg->max_current_ma;
    cfg->new_session_id = new_session_id;
    cfg->session_id_ud = c;
    return lade_charging_config_check(cfg);
}

struct desired_key {
    const char *name;
    int64_t lo, hi;
};

/* The members this module owns, with their ranges (A, phases, seconds). Above-limit currents
 * are clamped to the installer's setting, which is the physical limit (R14). */
static const struct desired_key desired_keys[] = {
    {"maxChargeCurrent", 6, 80},     {"minChargeCurrent", 6, 80},  {"maxChargePhases", 1, 3},
    {"offlineChargeCurrent", 0, 80}, {"offlineChargePhase", 1, 3}, {"meterValueInterval", 1, 3600},
    {"authorizationRequired", 0, 1},
};

static void save_desired(struct lade_charger *c)
{
    struct ctl *k = &c->ctl;
    cJSON *o = cJSON_CreateObject();
    ctl_reported(c, o);
    cJSON_AddNumberToObject(o, "$version", (double)c->st.desired_version);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char path[400];
    state_path(c, "settings.json", path, sizeof path);
    if (!text || !write_file_atomic(path, text, true))
        storage_failed(c, "cannot save the settings from the portal");
    free(text);
    (void)k;
}

/* Applies one desired document (portal names). Invalid members are refused one by one with a
 * reason in lastSettingsError; valid ones apply. Returns true if anything changed. */
static bool apply_settings(struct lade_charger *c, const cJSON *d)
{
    struct ctl *k = &c->ctl;
    struct lade_charging_config cfg = k->cs.cfg;
    bool changed = false;
    char err[160] = "";
    for (size_t i = 0; i < sizeof desired_keys / sizeof desired_keys[0]; i++) {
        const struct desired_key *dk = &desired_keys[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, dk->name);
        if (!v)
            continue;
        int64_t x;
        if (cJSON_IsBool(v) && dk->hi == 1)
            x = cJSON_IsTrue(v);
        else if (!json_int(d, dk->name, dk->lo, dk->hi, &x) || ((i == 2 || i == 4) && x == 2)) {
            snprintf(err, sizeof err, "%s: must be %s %" PRId64 "..%" PRId64, dk->name,
                     i == 2 || i == 4 ? "1 or 3, in" : "a whole number in", dk->lo, dk->hi);
            LOG_W(c->log_tag, "desired %s refused", err);
            continue;
        }
        int32_t fuse_ma = (int32_t)c->set.max_current_a * 1000;
        switch (i) {
        case 0:
            cfg.max_current_ma = (int32_t)x * 1000 > fuse_ma ? fuse_ma : (int32_t)x * 1000;
            break;
        case 1:
            cfg.min_current_ma = (int32_t)x * 1000;
            break;
        case 2:
            cfg.max_phases = (unsigned)x > c->set.max_phases ? c->set.max_phases : (unsigned)x;
            break;
        case 3:
            cfg.offline_current_ma = (int32_t)x * 1000;
            break;
        case 4:
            cfg.offline_phases = (unsigned)x;
            break;
        case 5:
            k->obs.cfg.min_interval_ms = (uint32_t)x * 1000;
            changed = true;
            break;
        case 6:
            cfg.free_mode = x == 0;
            break;
        }
    }
    /* Keep the whole set consistent: the offline and minimum currents never above the max. */
    if (cfg.offline_current_ma > cfg.max_current_ma)
        cfg.offline_current_ma = cfg.max_current_ma;
    if (cfg.min_current_ma > cfg.max_current_ma)
        cfg.min_current_ma = cfg.max_current_ma;
    if (lade_charging_config_check(&cfg) != LADE_OK) {
        snprintf(err, sizeof err, "settings inconsistent; kept the previous ones");
    } else if (memcmp(&cfg, &k->cs.cfg, sizeof cfg) != 0) {
        k->cs.cfg = cfg;
        changed = true;
        if (k->cs.setpoint_ma > cfg.max_current_ma)
            k->cs.setpoint_ma = cfg.max_current_ma;
    }
    if (strcmp(err, k->settings_error) != 0) {
        snprintf(k->settings_error, sizeof k->settings_error, "%s", err);
        changed = true;
    }
    return changed;
}

bool ctl_apply_desired(struct lade_charger *c, const cJSON *desired)
{
    struct ctl *k = &c->ctl;
    if (!k->enabled)
        return false;
    bool changed = apply_settings(c, desired);
    save_desired(c);
    if (changed) {
        LOG_I(c->log_tag,
              "charging settings: max %" PRId32 " mA, min %" PRId32
              " mA, %u phase(s), offline %" PRId32 " mA on %u phase(s)%s",
              k->cs.cfg.max_current_ma, k->cs.cfg.min_current_ma, k->cs.cfg.max_phases,
              k->cs.cfg.offline_current_ma, k->cs.cfg.offline_phases,
              k->cs.cfg.free_mode ? ", free mode" : "");
        step(c);
    }
    return changed;
}

void ctl_reported(const struct lade_charger *c, cJSON *doc)
{
    const struct ctl *k = &c->ctl;
    if (!k->enabled)
        return;
    const struct lade_charging_config *cfg = &k->cs.cfg;
    cJSON_AddNumberToObject(doc, "maxChargeCurrent", cfg->max_current_ma / 1000.0);
    cJSON_AddNumberToObject(doc, "minChargeCurrent", cfg->min_current_ma / 1000.0);
    cJSON_AddNumberToObject(doc, "maxChargePhases", cfg->max_phases);
    cJSON_AddNumberToObject(doc, "offlineChargeCurrent", cfg->offline_current_ma / 1000.0);
    cJSON_AddNumberToObject(doc, "offlineChargePhase", cfg->offline_phases);
    cJSON_AddNumberToObject(doc, "meterValueInterval", k->obs.cfg.min_interval_ms / 1000);
    cJSON_AddBoolToObject(doc, "authorizationRequired", !cfg->free_mode);
    cJSON_AddStringToObject(doc, "lastSettingsError", k->settings_error);
}

/* ---- commands (direct methods) ---- */

static int status_code(enum lade_cmd_status s)
{
    switch (s) {
    case LADE_CMD_OK:
    case LADE_CMD_CLAMPED:
        return 200;
    case LADE_CMD_INVALID_STATE:
        return 409;
    default:
        return 400;
    }
}

static const char *status_word(enum lade_cmd_status s)
{
    static const char *const w[] = {"ok", "clamped", "invalid_state", "out_of_range", "unknown"};
    return (unsigned)s < 5 ? w[s] : "error";
}

static void reply(struct lade_charger *c, enum lade_cmd_status s, const char *error,
                  int32_t applied_ma, int *status, char *body, size_t cap)
{
    struct ctl *k = &c->ctl;
    *status = status_code(s);
    int n = snprintf(body, cap, "{\"status\":\"%s\",\"state\":\"%s\",\"mode\":%d,\"offer\":%.1f",
                     status_word(s), lade_charging_state_name(k->out.state), (int)k->out.mode,
                     k->out.offer_ma / 1000.0);
    if (n > 0 && (size_t)n < cap && applied_ma >= 0)
        n += snprintf(body + n, cap - (size_t)n, ",\"setpoint\":%.1f", applied_ma / 1000.0);
    if (n > 0 && (size_t)n < cap && error)
        n += snprintf(body + n, cap - (size_t)n, ",\"error\":\"%s\"", error);
    if (n > 0 && (size_t)n + 2 <= cap)
        memcpy(body + n, "}", 2);
    if (s == LADE_CMD_OK || s == LADE_CMD_CLAMPED)
        k->commands_ok++;
    else
        k->commands_refused++;
}

/* Current in A from the method's JSON: "current": A, or "currents": [L1, L2, L3] (the lowest
 * binds: the charger offers one current on every phase). */
static bool parse_current(const cJSON *o, int32_t *ma, const char **why)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "current");
    double a;
    if (cJSON_IsNumber(v)) {
        a = v->valuedouble;
    } else if (cJSON_IsArray(v = cJSON_GetObjectItemCaseSensitive(o, "currents")) &&
               cJSON_GetArraySize(v) == 3) {
        a = 1e9;
        for (const cJSON *e = v->child; e; e = e->next) {
            if (!cJSON_IsNumber(e)) {
                *why = "currents must be 3 numbers (A)";
                return false;
            }
            if (e->valuedouble < a || e->valuedouble != e->valuedouble)
                a = e->valuedouble;
        }
    } else {
        *why = "missing \\\"current\\\" (A) or \\\"currents\\\" [L1,L2,L3]";
        return false;
    }
    if (!(a >= 0) || a > METHOD_MAX_CURRENT_A) {
        *why = "current must be 0..80 A";
        return false;
    }
    *ma = (int32_t)(a * 1000.0 + 0.5);
    return true;
}

static void run_command(struct lade_charger *c, int64_t id, const cJSON *args, int *status,
                        char *body, size_t cap)
{
    struct ctl *k = &c->ctl;
    struct lade_charging_cmd cmd = {.id = (enum lade_charging_cmd_id)id};
    int32_t applied = -1;
    if (id == 102) { /* RestartCharger */
        if (!c->on_restart) {
            reply(c, LADE_CMD_INVALID_STATE, "restart not supported here", -1, status, body, cap);
            return;
        }
        /* The session in progress is checkpointed and resumes after the restart. */
        checkpoint(c, agent_wall_s(c));
        agent_arm(c, &k->restart_timer, now_ms() + 500);
        reply(c, LADE_CMD_OK, NULL, -1, status, body, cap);
        return;
    }
    if (id == LADE_CMD_SET_CURRENT) {
        const char *why = NULL;
        if (!parse_current(args, &cmd.current_ma, &why)) {
            reply(c, LADE_CMD_OUT_OF_RANGE, why, -1, status, body, cap);
            return;
        }
        const cJSON *ph = cJSON_GetObjectItemCaseSensitive(args, "phases");
        if (ph) {
            int64_t p;
            if (!json_int(args, "phases", 1, 3, &p) || p == 2) {
                reply(c, LADE_CMD_OUT_OF_RANGE, "phases must be 1 or 3", -1, status, body, cap);
                return;
            }
            cmd.phases = (unsigned)p;
        }
        /* A setpoint is contact with the cloud: it moves the link-loss deadline. */
        k->hub_last_seen_ms = now_ms();
    }
    enum lade_cmd_status s = lade_charging_command(&k->cs, &cmd, &applied);
    if (s == LADE_CMD_OK || s == LADE_CMD_CLAMPED)
        step(c); /* the effect is on the wire (offer, contactor) before the reply */
    char why[96];
    const char *err = NULL;
    if (s == LADE_CMD_UNKNOWN) {
        snprintf(why, sizeof why, "unknown command id %" PRId64, id);
        err = why;
    } else if (s == LADE_CMD_INVALID_STATE) {
        snprintf(why, sizeof why, "not valid while %s", lade_charging_state_name(k->cs.state));
        err = why;
    } else if (s == LADE_CMD_CLAMPED) {
        snprintf(why, sizeof why, "above the charger's maximum of %" PRId32 " A",
                 k->cs.cfg.max_current_ma / 1000);
        err = why;
    }
    LOG_I(c->log_tag, "command %" PRId64 ": %s", id, status_word(s));
    reply(c, s, err, id == LADE_CMD_SET_CURRENT ? applied : -1, status, body, cap);
}

static void sim_method(struct lade_charger *c, const cJSON *o, int *status, char *body, size_t cap)
{
    struct ctl *k = &c->ctl;
    const cJSON *plug = cJSON_GetObjectItemCaseSensitive(o, "plug");
    const cJSON *unplug = cJSON_GetObjectItemCaseSensitive(o, "unplug");
    const cJSON *fault = cJSON_GetObjectItemCaseSensitive(o, "fault");
    int64_t v;
    sim_advance(c, now_ms());
    if (cJSON_IsString(plug)) {
        int64_t soc = 20;
        if (cJSON_GetObjectItemCaseSensitive(o, "soc") && !json_int(o, "soc", 0, 100, &soc)) {
            *status = 400;
            snprintf(body, cap, "{\"error\":\"soc must be 0..100\"}");
            return;
        }
        struct lade_ev_config ev;
        if (!sim_profile(plug->valuestring, &ev, (uint32_t)soc)) {
            *status = 400;
            snprintf(body, cap, "{\"error\":\"plug must be 1p16a, 3p11kw or 3p22kw\"}");
            return;
        }
        sim_plug(c, plug->valuestring, (uint32_t)soc);
        if (json_int(o, "selfLimit", 0, 80, &v))
            k->sim.ev.self_limit_ma = (int32_t)v * 1000;
        if (json_int(o, "overdraw", 0, 80, &v))
            k->sim.ev.overdraw_ma = (int32_t)v * 1000;
        k->sim_phase_end_ms = 0; /* driven by hand from now on */
    } else if (cJSON_IsTrue(unplug)) {
        lade_evse_sim_unplug(&k->sim);
        k->sim_phase_end_ms = 0;
    } else if (cJSON_IsString(fault)) {
        static const struct {
            const char *n;
            uint32_t bit;
        } f[] = {{"none", 0},
                 {"rcd", LADE_EVSE_FAULT_RCD},
                 {"overcurrent", LADE_EVSE_FAULT_OVERCURRENT},
                 {"overtemp", LADE_EVSE_FAULT_OVERTEMP}};
        size_t i;
        for (i = 0; i < sizeof f / sizeof f[0]; i++)
            if (strcmp(f[i].n, fault->valuestring) == 0)
                break;
        if (i == sizeof f / sizeof f[0]) {
            *status = 400;
            snprintf(body, cap, "{\"error\":\"fault must be none, rcd, overcurrent, overtemp\"}");
            return;
        }
        k->sim.faults = f[i].bit;
    } else {
        *status = 400;
        snprintf(body, cap,
                 "{\"error\":\"expected {\\\"plug\\\":profile}, {\\\"unplug\\\":true} or "
                 "{\\\"fault\\\":name}\"}");
        return;
    }
    lade_evse_sim_step(&k->sim, k->sim.last_ms);
    sim_save(c, true);
    step(c);
    *status = 200;
    snprintf(body, cap, "{\"plugged\":%s,\"soc\":%u,\"meterWh\":%" PRIu64 ",\"state\":\"%s\"}",
             k->sim.plugged ? "true" : "false", lade_evse_sim_soc_permille(&k->sim) / 10,
             k->sim.energy_wh, lade_charging_state_name(k->out.state));
}

bool ctl_method(struct lade_charger *c, struct lade_str method, const uint8_t *payload, size_t len,
                int *status, char *body, size_t cap)
{
    struct ctl *k = &c->ctl;
    bool is_cmd = lade_str_eq_c(method, "command"), is_set = lade_str_eq_c(method, "setCurrent"),
         is_auth = lade_str_eq_c(method, "authorize"), is_sim = lade_str_eq_c(method, "sim");
    if (!is_cmd && !is_set && !is_auth && !is_sim)
        return false;
    if (is_cmd && len) {
        /* UpgradeFirmware (200) does not need charging hardware. */
        cJSON *o = cJSON_ParseWithLength((const char *)payload, len);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
        if (cJSON_IsNumber(id) && id->valuedouble == 200) {
            upd_command(c, o, status, body, cap);
            cJSON_Delete(o);
            return true;
        }
        cJSON_Delete(o);
    }
    if (!k->enabled || (is_sim && k->hw != &k->sim)) {
        *status = 501;
        snprintf(body, cap, "{\"error\":\"this charger has no %s\"}",
                 is_sim ? "simulator" : "charging hardware");
        return true;
    }
    cJSON *o = len ? cJSON_ParseWithLength((const char *)payload, len) : cJSON_CreateObject();
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        *status = 400;
        k->commands_refused++;
        snprintf(body, cap,
                 "{\"status\":\"bad_request\",\"error\":\"body must be a JSON object\"}");
        return true;
    }
    if (is_sim) {
        sim_method(c, o, status, body, cap);
    } else if (is_set) {
        run_command(c, LADE_CMD_SET_CURRENT, o, status, body, cap);
    } else if (is_auth) {
        run_command(c, LADE_CMD_AUTHORIZE, o, status, body, cap);
    } else {
        int64_t id;
        if (!json_int(o, "id", 0, 999999, &id)) {
            *status = 400;
            k->commands_refused++;
            snprintf(body, cap,
                     "{\"status\":\"bad_request\",\"error\":\"\\\"id\\\" must be a command id\"}");
        } else {
            run_command(c, id, o, status, body, cap);
        }
    }
    cJSON_Delete(o);
    agent_write_status(c);
    return true;
}

/* ---- link events ---- */

void ctl_hub_seen(struct lade_charger *c, uint64_t now)
{
    c->ctl.hub_last_seen_ms = now;
}

void ctl_link_up(struct lade_charger *c)
{
    struct ctl *k = &c->ctl;
    if (!k->enabled)
        return;
    k->hub_last_seen_ms = now_ms();
    /* What the portal saw before may be lost: the first message after a connect is whole. */
    lade_obs_request_snapshot(&k->obs);
    step(c);
    obs_flush(c);
    if (c->snapshot_phase_ms) { /* once: the first connect's snapshot is out */
        lade_obs_set_snapshot_due(&k->obs, now_ms() + c->snapshot_phase_ms);
        c->snapshot_phase_ms = 0;
        obs_flush(c); /* re-arms the reporter's timer for the earlier due time */
    }
    pump(c);
}

void ctl_link_down(struct lade_charger *c)
{
    struct ctl *k = &c->ctl;
    if (!k->enabled)
        return;
    lade_timer_cancel(c->loop, &k->obs_timer);
    /* In-flight session messages stay in the MQTT session (resent after CONNACK); the slots
     * keep their packet ids so the PUBACK still finds them. */
    if (c->link != LADE_LINK_STOPPED)
        step(c); /* link_up = false may lower the offer at once */
}

void lade_charger_set_clock_trusted(struct lade_charger *c, bool trusted)
{
    c->ctl.clock_trusted = trusted;
}

/* ---- lifecycle ---- */

static void restore_checkpoint(struct lade_charger *c)
{
    struct ctl *k = &c->ctl;
    if (!k->ob)
        return;
    struct lade_outbox_rec rec;
    lade_err err = lade_outbox_session_open(k->ob, &rec);
    if (err == LADE_ERR_NOT_FOUND)
        return;
    if (err) {
        storage_failed(c, "cannot read the session checkpoint");
        return;
    }
    cJSON *o = cJSON_ParseWithLength((const char *)rec.payload, rec.len);
    struct lade_session_record r;
    memset(&r, 0, sizeof r);
    int64_t start, start_wh, peak, phases, v, wall;
    bool ok = cJSON_IsObject(o) && json_int(o, "v", 1, 1, &v) &&
              json_int(o, "start", 0, INT64_MAX / 2, &start) &&
              json_int(o, "startWh", 0, INT64_MAX / 2, &start_wh) &&
              json_int(o, "peakW", 0, INT32_MAX, &peak) && json_int(o, "phases", 0, 3, &phases) &&
              json_int(o, "wall", 0, INT64_MAX / 2, &wall) && unhex16(rec.msg_id, r.id);
    if (ok) {
        r.start_wall_s = start;
        r.clock_trusted = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "trusted"));
        r.peak_power_w = (int32_t)peak;
        r.phases_used = (unsigned)phases;
        bool fs = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "finalStop"));
        if (lade_charging_resume(&k->cs, &r, (uint64_t)start_wh, fs) == LADE_OK) {
            memcpy(k->session_hex, rec.msg_id, sizeof k->session_hex);
            k->session_start_wh = (uint64_t)start_wh;
            k->checkpoint_wall_s = wall;
            k->resumed_from_checkpoint = true;
            k->sessions_resumed++;
            LOG_I(c->log_tag, "session %s resumed from its checkpoint", rec.msg_id);
        }
    } else {
        LOG_E(c->log_tag, "session checkpoint %s unreadable: kept in the outbox file", rec.msg_id);
        storage_failed(c, "session checkpoint unreadable");
    }
    cJSON_Delete(o);
    lade_outbox_rec_free(&rec);
}

lade_err ctl_init(struct lade_charger *c)
{
    struct ctl *k = &c->ctl;
    memset(k, 0, sizeof *k);
    lade_timer_init(&k->step_timer, on_step_timer, c);
    lade_timer_init(&k->obs_timer, on_obs_timer, c);
    lade_timer_init(&k->restart_timer, on_restart_timer, c);
    /* Every charger keeps state (clock floor, the DHCP lease), not only one that charges. */
    if (c->set.state_dir[0] && mkdir(c->set.state_dir, 0700) != 0 && errno != EEXIST) {
        LOG_E(c->log_tag, "state directory %s: %s", c->set.state_dir, strerror(errno));
        /* Charging works without it; sessions are kept in memory and the fault reported. */
    }
    if (strcmp(c->set.evse, "none") == 0 || c->set.evse[0] == 0)
        return LADE_OK;
    k->enabled = true;
    struct lade_charging_config cfg;
    lade_err err = charging_config(c, &cfg);
    if (err) {
        LOG_E(c->log_tag, "charging settings are inconsistent (max/min/offline current, phases)");
        return err;
    }
    if ((err = lade_charging_init(&k->cs, &cfg)) != LADE_OK)
        return err;
    struct lade_obs_config oc = {
        .snapshot_interval_ms = c->set.telemetry_interval_s * 1000u,
        .min_interval_ms = c->set.report_min_interval_s * 1000u,
    };
    if ((err = lade_obs_init(&k->obs, &oc, now_ms())) != LADE_OK)
        return err;
    if (lade_obs_set_str(&k->obs, 911, upd_running_version(c), strlen(upd_running_version(c)),
                         now_ms()) != LADE_OK ||
        lade_obs_set_str(&k->obs, 150, net_bearer_label(c), strlen(net_bearer_label(c)),
                         now_ms()) != LADE_OK)
        LOG_W(c->log_tag, "firmware version / bearer not reported");

    /* Settings from the portal, saved the last time they changed. */
    char path[400];
    state_path(c, "settings.json", path, sizeof path);
    cJSON *saved = read_json_file(path);
    if (cJSON_IsObject(saved)) {
        int64_t ver;
        apply_settings(c, saved);
        if (json_int(saved, "$version", 0, INT64_MAX / 2, &ver))
            c->st.desired_version = ver;
        LOG_I(c->log_tag, "portal settings restored ($version %" PRId64 ")", c->st.desired_version);
    }
    cJSON_Delete(saved);

    if (strcmp(c->set.evse, "sim") == 0)
        sim_init(c);
    snprintf(k->outbox_path, sizeof k->outbox_path, "%s/outbox.db", c->set.state_dir);
    open_outbox(c);
    restore_checkpoint(c);
    return LADE_OK;
}

void ctl_start(struct lade_charger *c)
{
    if (c->ctl.enabled)
        step(c);
}

void ctl_stop(struct lade_charger *c)
{
    struct ctl *k = &c->ctl;
    if (!k->enabled)
        return;
    /* Orderly stop: the session in progress is checkpointed (it resumes at the next start);
     * the board gets no offer and an open contactor. */
    if (k->session_hex[0])
        checkpoint(c, agent_wall_s(c));
    lade_timer_cancel(c->loop, &k->step_timer);
    lade_timer_cancel(c->loop, &k->obs_timer);
    lade_timer_cancel(c->loop, &k->restart_timer);
    if (k->ops) {
        if (k->ops->set_offer_ma(k->hw, 0) != LADE_OK ||
            k->ops->set_contactor(k->hw, false, 1) != LADE_OK)
            LOG_E(c->log_tag, "board did not take the stop");
    }
    if (k->hw == &k->sim)
        sim_save(c, true);
}

void ctl_free(struct lade_charger *c)
{
    struct ctl *k = &c->ctl;
    lade_outbox_close(k->ob);
    k->ob = NULL;
}

void ctl_firmware_changed(struct lade_charger *c)
{
    struct ctl *k = &c->ctl;
    const char *v = upd_running_version(c);
    if (k->enabled && lade_obs_set_str(&k->obs, 911, v, strlen(v), now_ms()) != LADE_OK)
        LOG_W(c->log_tag, "firmware version not reported");
}

bool ctl_session_active(const struct lade_charger *c)
{
    return c->ctl.enabled && c->ctl.session_hex[0] != 0;
}

void ctl_bearer_changed(struct lade_charger *c, int16_t signal_dbm)
{
    struct ctl *k = &c->ctl;
    if (!k->enabled)
        return;
    const char *b = net_bearer_label(c);
    if (b[0] && lade_obs_set_str(&k->obs, 150, b, strlen(b), now_ms()) != LADE_OK)
        LOG_W(c->log_tag, "bearer not reported");
    if (signal_dbm != LADE_BEARER_SIGNAL_UNKNOWN &&
        lade_obs_set_int(&k->obs, 809, signal_dbm, now_ms()) != LADE_OK)
        LOG_W(c->log_tag, "signal not reported");
}

void ctl_status_json(const struct lade_charger *c, cJSON *o)
{
    const struct ctl *k = &c->ctl;
    if (!k->enabled)
        return;
    cJSON *j = cJSON_AddObjectToObject(o, "charging");
    if (!j)
        return;
    cJSON_AddStringToObject(j, "state", lade_charging_state_name(k->out.state));
    cJSON_AddNumberToObject(j, "mode", k->out.mode);
    cJSON_AddBoolToObject(j, "final_stop", k->out.final_stop);
    cJSON_AddNumberToObject(j, "offer_ma", k->out.offer_ma);
    cJSON_AddNumberToObject(j, "allocated_ma", k->out.allocated_ma);
    cJSON_AddNumberToObject(j, "setpoint_ma", k->cs.setpoint_ma);
    cJSON_AddNumberToObject(j, "phases", k->out.phases);
    cJSON_AddBoolToObject(j, "contactor", k->out.contactor_closed);
    cJSON_AddBoolToObject(j, "offline", k->out.offline);
    cJSON_AddNumberToObject(j, "max_current_ma", k->cs.cfg.max_current_ma);
    cJSON_AddNumberToObject(j, "offline_current_ma", k->cs.cfg.offline_current_ma);
    cJSON_AddStringToObject(j, "session", k->session_hex);
    cJSON_AddNumberToObject(j, "sessions_started", k->sessions_started);
    cJSON_AddNumberToObject(j, "sessions_resumed", k->sessions_resumed);
    cJSON_AddNumberToObject(j, "sessions_ended", k->sessions_ended);
    cJSON_AddNumberToObject(j, "sessions_stored", k->sessions_stored);
    cJSON_AddNumberToObject(j, "sessions_acked", k->sessions_acked);
    cJSON_AddNumberToObject(j, "sessions_in_memory", (double)k->n_mem);
    cJSON_AddNumberToObject(j, "commands_ok", k->commands_ok);
    cJSON_AddNumberToObject(j, "commands_refused", k->commands_refused);
    cJSON_AddNumberToObject(j, "obs_messages", k->obs_messages);
    cJSON_AddNumberToObject(j, "obs_bytes", (double)k->obs_bytes);
    cJSON_AddBoolToObject(j, "storage_fault", k->storage_fault);
    cJSON_AddStringToObject(j, "storage_error", k->storage_error);
    cJSON_AddBoolToObject(j, "storage_recovered", k->storage_recovered);
    cJSON_AddStringToObject(j, "settings_error", k->settings_error);
    if (k->ob) {
        struct lade_outbox_stats st;
        if (lade_outbox_stats(k->ob, &st) == LADE_OK) {
            cJSON_AddNumberToObject(j, "outbox_records", (double)st.records);
            cJSON_AddNumberToObject(j, "outbox_sessions", (double)st.session_records);
        }
    }
    if (k->hw == &k->sim) {
        cJSON *s = cJSON_AddObjectToObject(j, "sim");
        if (s) {
            cJSON_AddBoolToObject(s, "plugged", k->sim.plugged);
            cJSON_AddNumberToObject(s, "soc", lade_evse_sim_soc_permille(&k->sim) / 10);
            cJSON_AddNumberToObject(s, "meter_wh", (double)k->sim.energy_wh);
        }
    }
}
