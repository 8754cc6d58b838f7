/* Charging state machine and IEC 61851 helpers (include/lade/evse.h, docs/charging.md).
 *
 * Pure core: inputs (pilot, cable, faults, meter, hub contact) and time in, offer/contactor/
 * mode/events out. Every change of state goes through set_state(), which logs from -> to.
 * Commands only change flags and, where the portal defines it, the state; session records are
 * closed in the next step, where the meter reading and wall time are known.
 */
#include "lade/evse.h"

#include <inttypes.h>
#include <string.h>

#include "lade/log.h"

#define MOD            "charging"
#define STEP_PERIOD_MS 1000u

/* ---- IEC 61851 ---- */

static const char *const cp_names[] = {"?", "A", "B", "C", "D", "E", "F"};

const char *lade_cp_state_name(enum lade_cp_state s)
{
    return (unsigned)s < sizeof cp_names / sizeof cp_names[0] ? cp_names[s] : "?";
}

lade_err lade_iec61851_duty_permille(int32_t current_ma, uint16_t *duty_permille)
{
    if (current_ma < LADE_IEC61851_MIN_MA || current_ma > LADE_IEC61851_MAX_MA)
        return LADE_ERR_INVAL;
    /* IEC 61851-1 Annex A: 6–51 A: duty % = A / 0.6 (permille = mA / 60);
     * 51–80 A: duty % = A / 2.5 + 64 (permille = mA / 250 + 640). Rounded down. */
    if (current_ma <= 51000)
        *duty_permille = (uint16_t)(current_ma / 60);
    else
        *duty_permille = (uint16_t)(current_ma / 250 + 640);
    return LADE_OK;
}

int32_t lade_iec61851_pp_rating_ma(uint32_t r)
{
    /* IEC 61851-1 Annex B.5: nominal 1.5 kΩ, 680 Ω, 220 Ω, 100 Ω, accepted within ±10 %. */
    static const struct {
        uint32_t ohm;
        int32_t ma;
    } t[] = {{1500, 13000}, {680, 20000}, {220, 32000}, {100, 63000}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (r * 10 >= t[i].ohm * 9 && r * 10 <= t[i].ohm * 11)
            return t[i].ma;
    return 0;
}

/* ---- configuration ---- */

uint32_t lade_charging_link_loss_deadline_ms(uint32_t keepalive_s, uint32_t grace_ms)
{
    uint64_t d = (uint64_t)keepalive_s * 1500u + grace_ms;
    return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

void lade_charging_config_defaults(struct lade_charging_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_current_ma = 32000;
    cfg->min_current_ma = LADE_IEC61851_MIN_MA;
    cfg->max_phases = 3;
    cfg->offline_current_ma = 6000;
    cfg->offline_phases = 1;
    cfg->free_mode = false;
    cfg->link_loss_deadline_ms = lade_charging_link_loss_deadline_ms(60, 10000);
    cfg->overdraw_tolerance_ma = 2000;
    cfg->overdraw_time_ms = 10000;
    cfg->draw_threshold_ma = 1000;
}

lade_err lade_charging_config_check(const struct lade_charging_config *cfg)
{
    if (cfg->max_current_ma < LADE_IEC61851_MIN_MA || cfg->max_current_ma > LADE_FUSE_MAX_MA)
        return LADE_ERR_CONFIG;
    if (cfg->min_current_ma < LADE_IEC61851_MIN_MA || cfg->min_current_ma > cfg->max_current_ma)
        return LADE_ERR_CONFIG;
    if (cfg->max_phases != 1 && cfg->max_phases != 3)
        return LADE_ERR_CONFIG;
    if (cfg->offline_current_ma < 0 || cfg->offline_current_ma > cfg->max_current_ma)
        return LADE_ERR_CONFIG;
    if (cfg->offline_phases != 1 && cfg->offline_phases != 3)
        return LADE_ERR_CONFIG;
    if (cfg->link_loss_deadline_ms == 0 || cfg->overdraw_tolerance_ma < 0 ||
        cfg->overdraw_time_ms == 0 || !cfg->new_session_id)
        return LADE_ERR_CONFIG;
    return LADE_OK;
}

/* ---- state ---- */

static const char *const state_names[] = {"disconnected", "authorizing", "charging",
                                          "paused",       "finished",    "fault"};

const char *lade_charging_state_name(enum lade_charging_state s)
{
    return (unsigned)s < sizeof state_names / sizeof state_names[0] ? state_names[s] : "?";
}

static const char *const status_names[] = {"ok", "clamped", "invalid in this state", "out of range",
                                           "unknown command"};

const char *lade_cmd_status_name(enum lade_cmd_status s)
{
    return (unsigned)s < sizeof status_names / sizeof status_names[0] ? status_names[s] : "?";
}

static void set_state(struct lade_charging *cs, enum lade_charging_state to)
{
    if (cs->state == to)
        return;
    LOG_I(MOD, "%s -> %s", lade_charging_state_name(cs->state), lade_charging_state_name(to));
    cs->state = to;
    cs->events |= LADE_CHG_EV_STATE;
}

lade_err lade_charging_init(struct lade_charging *cs, const struct lade_charging_config *cfg)
{
    if (lade_charging_config_check(cfg) != LADE_OK)
        return LADE_ERR_CONFIG;
    memset(cs, 0, sizeof *cs);
    cs->cfg = *cfg;
    cs->state = LADE_CHG_DISCONNECTED;
    /* Until the cloud sends a setpoint, the charger behaves as if offline: the portal counts a
     * charger it has not yet talked to at its offline current. */
    cs->setpoint_ma = cfg->offline_current_ma;
    cs->setpoint_phases = cfg->offline_phases;
    cs->phases = cfg->offline_phases < cfg->max_phases ? cfg->offline_phases : cfg->max_phases;
    return LADE_OK;
}

static int32_t min32(int32_t a, int32_t b)
{
    return a < b ? a : b;
}

static unsigned minu(unsigned a, unsigned b)
{
    return a < b ? a : b;
}

static void session_start(struct lade_charging *cs, int64_t wall_s,
                          const struct lade_charging_inputs *in, struct lade_charging_outputs *out)
{
    memset(&cs->session, 0, sizeof cs->session);
    cs->cfg.new_session_id(cs->cfg.session_id_ud, cs->session.id);
    cs->session.start_wall_s = wall_s;
    cs->session.clock_trusted = in->clock_trusted;
    cs->session_start_wh = in->meter.energy_wh;
    cs->in_session = true;
    out->events |= LADE_CHG_EV_SESSION_STARTED;
    out->session = cs->session;
    LOG_I(MOD, "session started at %" PRId64 " (meter %" PRIu64 " Wh)", wall_s,
          in->meter.energy_wh);
}

static void session_end(struct lade_charging *cs, int64_t wall_s,
                        const struct lade_charging_inputs *in, enum lade_session_end_reason why,
                        struct lade_charging_outputs *out)
{
    if (!cs->in_session)
        return;
    struct lade_session_record *r = &cs->session;
    r->end_wall_s = wall_s;
    r->clock_trusted = r->clock_trusted && in->clock_trusted;
    /* A meter that went backwards (replaced, reset) gives 0, never a huge wrapped value. */
    r->energy_wh = in->meter.energy_wh >= cs->session_start_wh
                       ? in->meter.energy_wh - cs->session_start_wh
                       : 0;
    r->end_reason = why;
    cs->in_session = false;
    out->events |= LADE_CHG_EV_SESSION_ENDED;
    out->session = *r;
    LOG_I(MOD, "session ended (reason %d): %" PRIu64 " Wh, peak %" PRId32 " W, %u phase(s)",
          (int)why, r->energy_wh, r->peak_power_w, r->phases_used);
}

static void session_track(struct lade_charging *cs, const struct lade_charging_inputs *in)
{
    if (!cs->in_session)
        return;
    if (in->meter.power_w > cs->session.peak_power_w)
        cs->session.peak_power_w = in->meter.power_w;
    unsigned n = 0;
    for (unsigned p = 0; p < 3; p++)
        if (in->meter.current_ma[p] > (int32_t)cs->cfg.draw_threshold_ma)
            n++;
    if (n > cs->session.phases_used)
        cs->session.phases_used = n;
}

static void enter_fault(struct lade_charging *cs, int64_t wall_s,
                        const struct lade_charging_inputs *in, enum lade_session_end_reason why,
                        struct lade_charging_outputs *out)
{
    session_end(cs, wall_s, in, why, out);
    cs->authorized = false;
    cs->final_stop = false;
    cs->overdraw_active = false;
    set_state(cs, LADE_CHG_FAULT);
}

static bool car_present(enum lade_cp_state cp)
{
    return cp == LADE_CP_B || cp == LADE_CP_C || cp == LADE_CP_D;
}

/* A car offered current takes a moment to ask for it (IEC 61851: state B → C); until it has
 * had this long, a car that does not ask yet is "requesting", not "finished" — else a car the
 * portal paused and offers current again would look full and lose its share. */
#define CAR_START_MS 10000

static enum lade_operation_mode mode_of(const struct lade_charging *cs,
                                        const struct lade_charging_inputs *in, uint64_t now_ms)
{
    switch (cs->state) {
    case LADE_CHG_DISCONNECTED:
        return LADE_MODE_DISCONNECTED;
    case LADE_CHG_AUTHORIZING:
    case LADE_CHG_PAUSED:
        return LADE_MODE_CONNECTED_REQUESTING;
    case LADE_CHG_CHARGING:
        if (in->cp == LADE_CP_C || in->cp == LADE_CP_D)
            return LADE_MODE_CONNECTED_CHARGING;
        /* Offered but the car does not ask: it stopped asking under this offer (full or
         * paused by the car), or it had its time to start and has taken energy before. */
        if (cs->car_asked)
            return LADE_MODE_CONNECTED_FINISHED;
        if (now_ms - cs->offer_since_ms < CAR_START_MS)
            return LADE_MODE_CONNECTED_REQUESTING;
        return in->meter.energy_wh > cs->session_start_wh || cs->session.peak_power_w > 0
                   ? LADE_MODE_CONNECTED_FINISHED
                   : LADE_MODE_CONNECTED_REQUESTING;
    case LADE_CHG_FINISHED:
        return LADE_MODE_CONNECTED_FINISHED;
    case LADE_CHG_FAULT:
    default:
        return LADE_MODE_UNKNOWN;
    }
}

void lade_charging_step(struct lade_charging *cs, uint64_t now_ms, int64_t wall_s,
                        const struct lade_charging_inputs *in, struct lade_charging_outputs *out)
{
    memset(out, 0, sizeof *out);
    cs->started = true;
    out->events = cs->events;
    cs->events = 0;
    const struct lade_charging_config *cfg = &cs->cfg;

    /* Session bookkeeping for a deauthorization done by command since the last step. */
    if (cs->in_session && !cs->authorized && cs->state == LADE_CHG_AUTHORIZING)
        session_end(cs, wall_s, in, LADE_SESSION_END_DEAUTHORIZED, out);

    /* ---- link loss (see docs/charging.md "Link loss") ----
     * At last_seen + deadline the setpoint is replaced by the offline fallback and stays so
     * until the cloud sends a new one. Before that, a link the shell knows is down may only
     * lower the limit (to the fallback), never raise it above the last setpoint. */
    uint64_t seen = in->hub_last_seen_ms > now_ms ? now_ms : in->hub_last_seen_ms;
    bool expired = now_ms - seen >= cfg->link_loss_deadline_ms;
    if (expired && !cs->offline) {
        cs->offline = true;
        cs->setpoint_ma = cfg->offline_current_ma;
        cs->setpoint_phases = cfg->offline_phases;
        out->events |= LADE_CHG_EV_FALLBACK;
        if (in->hub_last_seen_ms == 0) /* never reached it since the agent started */
            LOG_I(MOD, "no contact with the hub yet: offline current %" PRId32 " mA",
                  cfg->offline_current_ma);
        else
            LOG_W(MOD, "no contact with the hub for %" PRIu64 " ms: offline current %" PRId32 " mA",
                  now_ms - seen, cfg->offline_current_ma);
    } else if (!expired) {
        cs->offline = false;
    }
    int32_t limit_ma = cs->setpoint_ma;
    unsigned phases = cs->setpoint_phases;
    if (!expired && !in->link_up) {
        limit_ma = min32(limit_ma, cfg->offline_current_ma);
        phases = minu(phases, cfg->offline_phases);
    }
    int32_t allocated_ma = min32(limit_ma, cfg->max_current_ma);
    phases = minu(phases, cfg->max_phases);
    int32_t avail_ma = min32(allocated_ma, in->cable_rating_ma);
    if (avail_ma < cfg->min_current_ma)
        avail_ma = 0;

    /* ---- faults ---- */
    if (cs->state != LADE_CHG_FAULT) {
        int32_t drawn = 0;
        for (unsigned p = 0; p < 3; p++)
            if (in->meter.current_ma[p] > drawn)
                drawn = in->meter.current_ma[p];
        /* Compare with the offer in force when the meter was read (the previous step's). */
        bool over = drawn > cs->offer_ma + cfg->overdraw_tolerance_ma;
        if (!over) {
            cs->overdraw_active = false;
        } else if (!cs->overdraw_active) {
            cs->overdraw_active = true;
            cs->overdraw_since_ms = now_ms;
        }
        if (in->faults || in->cp == LADE_CP_E || in->cp == LADE_CP_F) {
            LOG_W(MOD, "fault 0x%" PRIx32 ", pilot %s", in->faults, lade_cp_state_name(in->cp));
            out->events |= LADE_CHG_EV_FAULT;
            enter_fault(cs, wall_s, in, LADE_SESSION_END_FAULT, out);
        } else if (cs->overdraw_active && now_ms - cs->overdraw_since_ms >= cfg->overdraw_time_ms) {
            LOG_W(MOD, "over-draw: %" PRId32 " mA against an offer of %" PRId32 " mA", drawn,
                  cs->offer_ma);
            out->events |= LADE_CHG_EV_OVERDRAW;
            enter_fault(cs, wall_s, in, LADE_SESSION_END_OVERDRAW, out);
        }
    }

    session_track(cs, in);

    /* ---- transitions ---- */
    switch (cs->state) {
    case LADE_CHG_FAULT:
        if (in->cp == LADE_CP_A && in->faults == 0)
            set_state(cs, LADE_CHG_DISCONNECTED);
        break;
    case LADE_CHG_DISCONNECTED:
        if (car_present(in->cp)) {
            cs->authorized = cfg->free_mode;
            cs->final_stop = false;
            set_state(cs, LADE_CHG_AUTHORIZING);
        }
        break;
    default:
        if (!car_present(in->cp)) { /* A (unplugged) or not read */
            session_end(cs, wall_s, in, LADE_SESSION_END_UNPLUGGED, out);
            cs->authorized = false;
            cs->final_stop = false;
            set_state(cs, LADE_CHG_DISCONNECTED);
        }
        break;
    }
    if (cs->state == LADE_CHG_AUTHORIZING && cs->authorized) {
        if (!cs->in_session)
            session_start(cs, wall_s, in, out);
        set_state(cs, LADE_CHG_PAUSED); /* decided right below */
    }
    if (cs->state == LADE_CHG_CHARGING || cs->state == LADE_CHG_PAUSED)
        set_state(cs, avail_ma > 0 ? LADE_CHG_CHARGING : LADE_CHG_PAUSED);

    /* ---- outputs ---- */
    int32_t offer_ma = cs->state == LADE_CHG_CHARGING ? avail_ma : 0;
    bool close = offer_ma > 0 && (in->cp == LADE_CP_C || in->cp == LADE_CP_D);
    if (cs->contactor_closed && phases != cs->phases) {
        /* Never switch phases under load: open first, close with the new count next step. */
        close = false;
        offer_ma = 0;
    }
    if (!cs->contactor_closed || !close)
        cs->phases = phases;
    if (offer_ma < cs->offer_ma)
        cs->overdraw_active = false; /* the car gets the full time to follow a decrease */
    if (offer_ma > 0 && cs->offer_ma == 0) {
        cs->offer_since_ms = now_ms;
        cs->car_asked = false;
    }
    if (offer_ma > 0 && (in->cp == LADE_CP_C || in->cp == LADE_CP_D))
        cs->car_asked = true;
    cs->offer_ma = offer_ma;
    cs->contactor_closed = close;

    out->state = cs->state;
    out->offer_ma = offer_ma;
    out->contactor_closed = close;
    out->phases = cs->phases;
    out->mode = mode_of(cs, in, now_ms);
    out->final_stop = cs->final_stop;
    out->allocated_ma = allocated_ma > 0 ? allocated_ma : 0;
    out->offline = cs->offline;
    out->events |= cs->events;
    cs->events = 0;
    if (cs->in_session && !(out->events & LADE_CHG_EV_SESSION_ENDED))
        out->session = cs->session;
    uint64_t next = now_ms + STEP_PERIOD_MS;
    if (!expired && seen + cfg->link_loss_deadline_ms < next)
        next = seen + cfg->link_loss_deadline_ms;
    out->next_step_ms = next;
}

lade_err lade_charging_resume(struct lade_charging *cs, const struct lade_session_record *rec,
                              uint64_t start_wh, bool final_stop)
{
    if (!rec)
        return LADE_ERR_INVAL;
    if (cs->started || cs->in_session || cs->state != LADE_CHG_DISCONNECTED)
        return LADE_ERR_STATE;
    cs->session = *rec;
    cs->session.end_wall_s = 0;
    cs->session.energy_wh = 0;
    cs->session_start_wh = start_wh;
    cs->in_session = true;
    cs->authorized = true;
    cs->final_stop = final_stop;
    /* AUTHORIZING + authorized: the first step keeps the session if the car is present (no new
     * id: in_session is set) or closes it as unplugged. */
    set_state(cs, final_stop ? LADE_CHG_FINISHED : LADE_CHG_AUTHORIZING);
    LOG_I(MOD, "session resumed from its checkpoint (meter at start %" PRIu64 " Wh)", start_wh);
    return LADE_OK;
}

enum lade_cmd_status lade_charging_command(struct lade_charging *cs,
                                           const struct lade_charging_cmd *cmd, int32_t *applied_ma)
{
    enum lade_charging_state st = cs->state;
    bool session_state = st == LADE_CHG_CHARGING || st == LADE_CHG_PAUSED;
    switch (cmd->id) {
    case LADE_CMD_SET_CURRENT: {
        if (cmd->current_ma < 0 || (cmd->phases != 0 && cmd->phases != 1 && cmd->phases != 3))
            return LADE_CMD_OUT_OF_RANGE;
        enum lade_cmd_status r = LADE_CMD_OK;
        int32_t v = cmd->current_ma;
        if (v > cs->cfg.max_current_ma) {
            v = cs->cfg.max_current_ma;
            r = LADE_CMD_CLAMPED;
        }
        cs->setpoint_ma = v;
        if (cmd->phases)
            cs->setpoint_phases = cmd->phases;
        if (applied_ma)
            *applied_ma = v;
        LOG_D(MOD, "setpoint %" PRId32 " mA (asked %" PRId32 "), %u phase(s)", v, cmd->current_ma,
              cs->setpoint_phases);
        return r;
    }
    case LADE_CMD_AUTHORIZE:
        if (session_state || st == LADE_CHG_FINISHED)
            return LADE_CMD_OK; /* already authorized */
        if (st != LADE_CHG_AUTHORIZING)
            return LADE_CMD_INVALID_STATE;
        cs->authorized = true;
        return LADE_CMD_OK;
    case LADE_CMD_STOP_CHARGING_FINAL:
        if (st == LADE_CHG_FINISHED)
            return LADE_CMD_OK;
        if (!session_state)
            return LADE_CMD_INVALID_STATE;
        cs->final_stop = true;
        set_state(cs, LADE_CHG_FINISHED);
        return LADE_CMD_OK;
    case LADE_CMD_RESUME_CHARGING:
        /* Portal: valid only when the mode is 5 and 718 is 1. */
        if (st != LADE_CHG_FINISHED || !cs->final_stop)
            return LADE_CMD_INVALID_STATE;
        cs->final_stop = false;
        set_state(cs, LADE_CHG_PAUSED); /* the next step offers if current is available */
        return LADE_CMD_OK;
    case LADE_CMD_DEAUTHORIZE_AND_STOP:
        if (st == LADE_CHG_AUTHORIZING)
            return LADE_CMD_OK;
        if (!session_state && st != LADE_CHG_FINISHED)
            return LADE_CMD_INVALID_STATE;
        cs->authorized = false;
        cs->final_stop = false;
        set_state(cs, LADE_CHG_AUTHORIZING); /* the next step closes the session record */
        return LADE_CMD_OK;
    default:
        return LADE_CMD_UNKNOWN;
    }
}
