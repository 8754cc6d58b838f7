/* Simulated EV + energy meter behind the EVSE hardware port (include/lade/evse.h).
 *
 * Pure: no clock, no I/O. The caller steps it with now_ms. The energy integral is kept in
 * nanojoules (mV × mA × ms) with the remainder below one Wh carried, so the meter is exact to
 * the Wh over any number of steps. Long steps are split into sub-steps of at most 1 s so the
 * battery taper is followed even when the caller steps rarely.
 */
#include "lade/evse.h"

#include <string.h>

#define NJ_PER_WH  3600000000000ull /* 1 Wh = 3600 J */
#define SUBSTEP_MS 1000u

static int32_t min32(int32_t a, int32_t b)
{
    return a < b ? a : b;
}

void lade_ev_config_profile(struct lade_ev_config *ev, enum lade_ev_profile p)
{
    memset(ev, 0, sizeof *ev);
    ev->capacity_wh = 60000;
    ev->soc_permille = 200;
    ev->taper_start_permille = 800;
    switch (p) {
    case LADE_EV_1P_16A:
        ev->phases = 1;
        ev->max_current_ma = 16000;
        break;
    case LADE_EV_3P_11KW:
        ev->phases = 3;
        ev->max_current_ma = 16000;
        break;
    case LADE_EV_3P_22KW:
    default:
        ev->phases = 3;
        ev->max_current_ma = 32000;
        break;
    }
}

void lade_evse_sim_init(struct lade_evse_sim *s)
{
    memset(s, 0, sizeof *s);
    s->cable_rating_ma = 32000;
    s->voltage_mv = 230000;
}

static uint64_t nj_per_permille(const struct lade_evse_sim *s)
{
    return s->ev.capacity_wh * (NJ_PER_WH / 1000);
}

uint32_t lade_evse_sim_soc_permille(const struct lade_evse_sim *s)
{
    if (!s->plugged || s->ev.capacity_wh == 0)
        return 0;
    uint64_t soc = s->battery_nj / nj_per_permille(s);
    return soc > 1000 ? 1000 : (uint32_t)soc;
}

static bool car_wants_energy(const struct lade_evse_sim *s)
{
    return s->ev.overdraw_ma > 0 || lade_evse_sim_soc_permille(s) < 1000;
}

/* Per-phase current the car takes right now. */
static int32_t car_draw_ma(const struct lade_evse_sim *s)
{
    if (!s->plugged || !s->contactor_closed || s->offer_ma < LADE_IEC61851_MIN_MA)
        return 0;
    if (s->ev.overdraw_ma > 0)
        return s->offer_ma + s->ev.overdraw_ma;
    uint32_t soc = lade_evse_sim_soc_permille(s);
    if (soc >= 1000)
        return 0;
    int32_t lim = min32(s->offer_ma, s->ev.max_current_ma);
    if (s->ev.self_limit_ma > 0)
        lim = min32(lim, s->ev.self_limit_ma);
    uint32_t ts = s->ev.taper_start_permille;
    if (ts < 1000 && soc > ts) {
        int64_t t = (int64_t)s->ev.max_current_ma * (1000 - soc) / (1000 - ts);
        lim = min32(lim, (int32_t)t);
    }
    return lim > 0 ? lim : 0;
}

static void update_draw(struct lade_evse_sim *s)
{
    int32_t i = car_draw_ma(s);
    unsigned n = s->ev.phases < s->contactor_phases ? s->ev.phases : s->contactor_phases;
    for (unsigned p = 0; p < 3; p++)
        s->current_ma[p] = p < n ? i : 0;
}

void lade_evse_sim_plug(struct lade_evse_sim *s, const struct lade_ev_config *ev)
{
    s->ev = *ev;
    s->plugged = true;
    uint32_t soc = ev->soc_permille > 1000 ? 1000 : ev->soc_permille;
    s->battery_nj = (uint64_t)soc * nj_per_permille(s);
    update_draw(s);
}

void lade_evse_sim_unplug(struct lade_evse_sim *s)
{
    s->plugged = false;
    update_draw(s);
}

static void integrate(struct lade_evse_sim *s, uint64_t dt_ms)
{
    uint64_t uw = 0; /* mV × mA = µW */
    for (unsigned p = 0; p < 3; p++)
        uw += (uint64_t)s->voltage_mv * (uint64_t)s->current_ma[p];
    uint64_t nj = uw * dt_ms; /* µW × ms = nJ; < 2^63 for dt <= 1 s */
    s->energy_rem_nj += nj;
    s->energy_wh += s->energy_rem_nj / NJ_PER_WH;
    s->energy_rem_nj %= NJ_PER_WH;
    if (s->plugged) {
        uint64_t cap = s->ev.capacity_wh * NJ_PER_WH;
        s->battery_nj = cap - s->battery_nj < nj ? cap : s->battery_nj + nj;
    }
}

void lade_evse_sim_step(struct lade_evse_sim *s, uint64_t now_ms)
{
    if (!s->started) {
        s->started = true;
        s->last_ms = now_ms;
        update_draw(s);
        return;
    }
    while (now_ms > s->last_ms) {
        uint64_t dt = now_ms - s->last_ms;
        if (dt > SUBSTEP_MS)
            dt = SUBSTEP_MS;
        integrate(s, dt);
        s->last_ms += dt;
        update_draw(s);
    }
}

/* ---- hardware ops ---- */

static enum lade_cp_state sim_cp_state(void *ctx)
{
    struct lade_evse_sim *s = ctx;
    if (s->cp_forced != LADE_CP_UNKNOWN)
        return s->cp_forced;
    if (!s->plugged)
        return LADE_CP_A;
    if (s->offer_ma >= LADE_IEC61851_MIN_MA && car_wants_energy(s))
        return LADE_CP_C;
    return LADE_CP_B;
}

static lade_err sim_set_offer_ma(void *ctx, int32_t offer_ma)
{
    struct lade_evse_sim *s = ctx;
    uint16_t duty;
    if (offer_ma != 0 && lade_iec61851_duty_permille(offer_ma, &duty) != LADE_OK)
        return LADE_ERR_INVAL;
    s->offer_ma = offer_ma;
    s->offer_calls++;
    update_draw(s);
    return LADE_OK;
}

static lade_err sim_set_contactor(void *ctx, bool closed, unsigned phases)
{
    struct lade_evse_sim *s = ctx;
    if (closed && phases != 1 && phases != 3)
        return LADE_ERR_INVAL;
    s->contactor_closed = closed;
    s->contactor_phases = closed ? phases : 0;
    s->contactor_calls++;
    update_draw(s);
    return LADE_OK;
}

static lade_err sim_read_meter(void *ctx, struct lade_meter_reading *out)
{
    struct lade_evse_sim *s = ctx;
    uint64_t uw = 0;
    for (unsigned p = 0; p < 3; p++) {
        out->voltage_mv[p] = s->voltage_mv;
        out->current_ma[p] = s->current_ma[p];
        uw += (uint64_t)s->voltage_mv * (uint64_t)s->current_ma[p];
    }
    out->power_w = (int32_t)(uw / 1000000);
    out->energy_wh = s->energy_wh;
    return LADE_OK;
}

static uint32_t sim_faults(void *ctx)
{
    const struct lade_evse_sim *s = ctx;
    return s->faults;
}

static int32_t sim_cable_rating_ma(void *ctx)
{
    const struct lade_evse_sim *s = ctx;
    return s->plugged ? s->cable_rating_ma : 0;
}

const struct lade_evse_hw_ops lade_evse_sim_ops = {
    .cp_state = sim_cp_state,
    .set_offer_ma = sim_set_offer_ma,
    .set_contactor = sim_set_contactor,
    .read_meter = sim_read_meter,
    .faults = sim_faults,
    .cable_rating_ma = sim_cable_rating_ma,
};
