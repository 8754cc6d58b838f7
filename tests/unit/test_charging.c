/* Unit tests for the charging state machine, driven with the simulated EV + meter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lade/evse.h"
#include "lade/log.h"

static const struct lade_evse_hw_ops *ops = &lade_evse_sim_ops;

static uint32_t g_ids;
static void new_id(void *ud, uint8_t id[16])
{
    (void)ud;
    g_ids++;
    memset(id, 0xA5, 16);
    memcpy(id, &g_ids, sizeof g_ids);
}

struct rig {
    struct lade_evse_sim sim;
    struct lade_charging cs;
    struct lade_charging_config cfg;
    uint64_t now_ms;
    bool link_up;
    uint64_t last_seen_ms;
    bool trusted;
    struct lade_charging_outputs out;
    uint32_t events; /* accumulated since rig_clear() */
    int started, ended;
    struct lade_session_record rec_started, rec_ended;
};

static void rig_init_cfg(struct rig *r, const struct lade_charging_config *cfg)
{
    memset(r, 0, sizeof *r);
    r->cfg = *cfg;
    lade_evse_sim_init(&r->sim);
    assert_int_equal(lade_charging_init(&r->cs, &r->cfg), LADE_OK);
    r->now_ms = 1000000;
    r->link_up = true;
    r->last_seen_ms = r->now_ms;
    r->trusted = true;
    lade_evse_sim_step(&r->sim, r->now_ms);
}

static void default_cfg(struct lade_charging_config *cfg, bool free_mode)
{
    lade_charging_config_defaults(cfg);
    cfg->free_mode = free_mode;
    cfg->new_session_id = new_id;
}

static void rig_init(struct rig *r, bool free_mode)
{
    struct lade_charging_config cfg;
    default_cfg(&cfg, free_mode);
    rig_init_cfg(r, &cfg);
}

static void check_basic_invariants(const struct rig *r, const struct lade_charging_inputs *in)
{
    const struct lade_charging_outputs *o = &r->out;
    assert_true(o->offer_ma == 0 || o->offer_ma >= LADE_IEC61851_MIN_MA);
    assert_true(o->offer_ma <= r->cfg.max_current_ma);
    assert_true(o->offer_ma <= in->cable_rating_ma || o->offer_ma == 0);
    assert_true(o->offer_ma <= o->allocated_ma);
    assert_true(!o->contactor_closed || o->offer_ma >= LADE_IEC61851_MIN_MA);
    assert_true(o->phases == 1 || o->phases == 3);
    assert_true(o->phases <= r->cfg.max_phases);
    if (o->state != LADE_CHG_CHARGING)
        assert_int_equal(o->offer_ma, 0);
    assert_true(o->next_step_ms > r->now_ms);
    assert_true(o->next_step_ms <= r->now_ms + 1000);
}

static void rig_step(struct rig *r)
{
    lade_evse_sim_step(&r->sim, r->now_ms);
    struct lade_charging_inputs in;
    memset(&in, 0, sizeof in);
    in.cp = ops->cp_state(&r->sim);
    in.cable_rating_ma = ops->cable_rating_ma(&r->sim);
    in.faults = ops->faults(&r->sim);
    assert_int_equal(ops->read_meter(&r->sim, &in.meter), LADE_OK);
    if (r->link_up)
        r->last_seen_ms = r->now_ms;
    in.link_up = r->link_up;
    in.hub_last_seen_ms = r->last_seen_ms;
    in.clock_trusted = r->trusted;
    lade_charging_step(&r->cs, r->now_ms, 1700000000 + (int64_t)(r->now_ms / 1000), &in, &r->out);
    assert_int_equal(ops->set_offer_ma(&r->sim, r->out.offer_ma), LADE_OK);
    assert_int_equal(ops->set_contactor(&r->sim, r->out.contactor_closed, r->out.phases), LADE_OK);
    r->events |= r->out.events;
    if (r->out.events & LADE_CHG_EV_SESSION_STARTED) {
        r->started++;
        if (!(r->out.events & LADE_CHG_EV_SESSION_ENDED))
            r->rec_started = r->out.session;
    }
    if (r->out.events & LADE_CHG_EV_SESSION_ENDED) {
        r->ended++;
        r->rec_ended = r->out.session;
    }
    check_basic_invariants(r, &in);
}

static void rig_run(struct rig *r, uint64_t ms, uint64_t step_ms)
{
    uint64_t end = r->now_ms + ms;
    do {
        r->now_ms = r->now_ms + step_ms > end ? end : r->now_ms + step_ms;
        rig_step(r);
    } while (r->now_ms < end);
}

static enum lade_cmd_status cmd(struct rig *r, enum lade_charging_cmd_id id, int32_t ma,
                                unsigned phases)
{
    struct lade_charging_cmd c = {.id = id, .current_ma = ma, .phases = phases};
    return lade_charging_command(&r->cs, &c, NULL);
}

static void plug(struct rig *r, enum lade_ev_profile p)
{
    struct lade_ev_config ev;
    lade_ev_config_profile(&ev, p);
    lade_evse_sim_plug(&r->sim, &ev);
}

/* ---- tests ---- */

static void test_config(void **state)
{
    (void)state;
    struct lade_charging_config c, bad;
    struct lade_charging cs;
    default_cfg(&c, false);
    assert_int_equal(lade_charging_config_check(&c), LADE_OK);
    assert_int_equal(c.link_loss_deadline_ms, 100000); /* 60 s × 1.5 + 10 s */
    assert_int_equal(lade_charging_link_loss_deadline_ms(30, 5000), 50000);
    assert_int_equal(lade_charging_link_loss_deadline_ms(UINT32_MAX, UINT32_MAX), UINT32_MAX);
    bad = c;
    bad.max_current_ma = 63001; /* above the 63 A fuse bound (R14) */
    assert_int_equal(lade_charging_init(&cs, &bad), LADE_ERR_CONFIG);
    bad = c;
    bad.max_current_ma = 5999;
    assert_int_equal(lade_charging_config_check(&bad), LADE_ERR_CONFIG);
    bad = c;
    bad.max_phases = 2;
    assert_int_equal(lade_charging_config_check(&bad), LADE_ERR_CONFIG);
    bad = c;
    bad.offline_current_ma = 40000; /* above max */
    assert_int_equal(lade_charging_config_check(&bad), LADE_ERR_CONFIG);
    bad = c;
    bad.offline_current_ma = -1;
    assert_int_equal(lade_charging_config_check(&bad), LADE_ERR_CONFIG);
    bad = c;
    bad.offline_phases = 0;
    assert_int_equal(lade_charging_config_check(&bad), LADE_ERR_CONFIG);
    bad = c;
    bad.link_loss_deadline_ms = 0;
    assert_int_equal(lade_charging_config_check(&bad), LADE_ERR_CONFIG);
    bad = c;
    bad.overdraw_time_ms = 0;
    assert_int_equal(lade_charging_config_check(&bad), LADE_ERR_CONFIG);
    bad = c;
    bad.new_session_id = NULL;
    assert_int_equal(lade_charging_config_check(&bad), LADE_ERR_CONFIG);
    assert_string_equal(lade_charging_state_name(LADE_CHG_FAULT), "fault");
    assert_string_equal(lade_charging_state_name((enum lade_charging_state)99), "?");
    assert_string_equal(lade_cmd_status_name(LADE_CMD_CLAMPED), "clamped");
}

/* Free mode, 1-phase 16 A car, 32 A setpoint: charges 16 A on L1; unplug closes the record. */
static void test_free_mode_session_1p(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, true);
    rig_step(&r);
    assert_int_equal(r.out.state, LADE_CHG_DISCONNECTED);
    assert_int_equal(r.out.mode, LADE_MODE_DISCONNECTED);
    assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, 32000, 3), LADE_CMD_OK);
    plug(&r, LADE_EV_1P_16A);
    uint32_t id0 = g_ids;
    rig_run(&r, 3000, 1000);
    assert_int_equal(r.out.state, LADE_CHG_CHARGING);
    assert_int_equal(r.out.mode, LADE_MODE_CONNECTED_CHARGING);
    assert_int_equal(r.out.offer_ma, 32000);
    assert_true(r.out.contactor_closed);
    assert_int_equal(r.out.phases, 3);
    assert_int_equal(r.out.allocated_ma, 32000);
    assert_int_equal(r.started, 1);
    assert_int_equal(g_ids, id0 + 1);
    assert_int_equal(r.sim.current_ma[0], 16000);
    uint64_t wh0 = r.sim.energy_wh;
    int64_t start = r.rec_started.start_wall_s;
    rig_run(&r, 3600 * 1000, 1000);
    assert_int_equal(r.ended, 0);
    lade_evse_sim_unplug(&r.sim);
    rig_step(&r);
    assert_int_equal(r.out.state, LADE_CHG_DISCONNECTED);
    assert_int_equal(r.ended, 1);
    assert_int_equal(r.rec_ended.end_reason, LADE_SESSION_END_UNPLUGGED);
    assert_memory_equal(r.rec_ended.id, r.rec_started.id, 16);
    assert_int_equal(r.rec_ended.start_wall_s, start);
    assert_true(r.rec_ended.end_wall_s - start >= 3600);
    assert_true(r.rec_ended.clock_trusted);
    assert_int_equal(r.rec_ended.phases_used, 1);
    assert_int_equal(r.rec_ended.peak_power_w, 3680);
    /* meter delta: one hour at 3680 W, give or take the first second */
    assert_in_range(r.rec_ended.energy_wh, 3679, 3682);
    assert_int_equal(r.rec_ended.energy_wh, r.sim.energy_wh); /* the meter was 0 at the start */
    assert_true(wh0 <= 4);
    assert_int_equal(r.out.offer_ma, 0);
    assert_false(r.out.contactor_closed);
}

static void test_profiles_3p(void **state)
{
    (void)state;
    struct {
        enum lade_ev_profile p;
        int32_t cable_ma, max_ma, want_offer_ma, want_ma;
        int32_t peak_w;
    } cases[] = {
        {LADE_EV_3P_11KW, 32000, 32000, 32000, 16000, 11040}, /* the car limits itself */
        {LADE_EV_3P_22KW, 32000, 32000, 32000, 32000, 22080},
        {LADE_EV_3P_22KW, 20000, 32000, 20000, 20000, 13800}, /* cable limits */
        {LADE_EV_3P_22KW, 63000, 16000, 16000, 16000, 11040}, /* configured max limits */
        {LADE_EV_3P_22KW, 13000, 63000, 13000, 13000, 8970},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rig r;
        struct lade_charging_config cfg;
        default_cfg(&cfg, true);
        cfg.max_current_ma = cases[i].max_ma;
        rig_init_cfg(&r, &cfg);
        r.sim.cable_rating_ma = cases[i].cable_ma;
        assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, 63000, 3),
                         cases[i].max_ma < 63000 ? LADE_CMD_CLAMPED : LADE_CMD_OK);
        plug(&r, cases[i].p);
        rig_run(&r, 600 * 1000, 1000);
        assert_int_equal(r.out.offer_ma, cases[i].want_offer_ma);
        assert_int_equal(r.sim.current_ma[2], cases[i].want_ma);
        lade_evse_sim_unplug(&r.sim);
        rig_step(&r);
        assert_int_equal(r.ended, 1);
        assert_int_equal(r.rec_ended.phases_used, 3);
        assert_int_equal(r.rec_ended.peak_power_w, cases[i].peak_w);
        /* 10 min at peak power, within a Wh per step of start-up */
        assert_in_range(r.rec_ended.energy_wh,
                        (uint64_t)(cases[i].peak_w / 6 - cases[i].peak_w / 1200),
                        (uint64_t)cases[i].peak_w / 6 + 1);
    }
}

/* A small battery tapers and fills: the charger keeps offering, mode goes to 5 (finished). */
static void test_taper_to_full(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, true);
    assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, 32000, 3), LADE_CMD_OK);
    struct lade_ev_config ev;
    lade_ev_config_profile(&ev, LADE_EV_3P_11KW);
    ev.capacity_wh = 3000;
    ev.soc_permille = 700;
    lade_evse_sim_plug(&r.sim, &ev);
    rig_run(&r, 2000, 1000);
    assert_int_equal(r.out.mode, LADE_MODE_CONNECTED_CHARGING);
    rig_run(&r, 3 * 3600 * 1000, 1000);
    assert_int_equal(lade_evse_sim_soc_permille(&r.sim), 1000);
    assert_int_equal(r.out.state, LADE_CHG_CHARGING);
    assert_int_equal(r.out.mode, LADE_MODE_CONNECTED_FINISHED);
    assert_int_equal(r.sim.current_ma[0], 0);
    assert_int_equal(r.ended, 0);
    assert_false(r.events & (LADE_CHG_EV_OVERDRAW | LADE_CHG_EV_FAULT));
    lade_evse_sim_unplug(&r.sim);
    rig_step(&r);
    assert_in_range(r.rec_ended.energy_wh, 899, 901); /* 30 % of 3 kWh */
}

static void test_underdraw_no_fault(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, true);
    assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, 32000, 3), LADE_CMD_OK);
    struct lade_ev_config ev;
    lade_ev_config_profile(&ev, LADE_EV_3P_22KW);
    ev.self_limit_ma = 7000;
    lade_evse_sim_plug(&r.sim, &ev);
    rig_run(&r, 600 * 1000, 1000);
    assert_int_equal(r.out.state, LADE_CHG_CHARGING);
    assert_int_equal(r.out.offer_ma, 32000);
    assert_int_equal(r.sim.current_ma[1], 7000);
    /* an over-draw within the tolerance is not a fault either */
    lade_ev_config_profile(&ev, LADE_EV_3P_22KW);
    ev.overdraw_ma = 2000; /* tolerance is 2 A: equal is allowed */
    lade_evse_sim_unplug(&r.sim);
    rig_step(&r);
    lade_evse_sim_plug(&r.sim, &ev);
    rig_run(&r, 600 * 1000, 1000);
    assert_int_equal(r.out.state, LADE_CHG_CHARGING);
    assert_int_equal(r.sim.current_ma[0], 34000);
}

static void test_overdraw_fault(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, true);
    assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, 16000, 3), LADE_CMD_OK);
    struct lade_ev_config ev;
    lade_ev_config_profile(&ev, LADE_EV_3P_22KW);
    ev.overdraw_ma = 5000;
    lade_evse_sim_plug(&r.sim, &ev);
    rig_run(&r, 2000, 1000);
    assert_int_equal(r.out.state, LADE_CHG_CHARGING);
    assert_true(r.out.contactor_closed);
    uint64_t t0 = r.now_ms;
    while (r.out.state == LADE_CHG_CHARGING && r.now_ms < t0 + 60000)
        rig_run(&r, 500, 500);
    assert_int_equal(r.out.state, LADE_CHG_FAULT);
    /* stopped within overdraw_time (10 s) + one step of the first measurement */
    assert_true(r.now_ms - t0 <= 10000 + 1000);
    assert_true(r.now_ms - t0 >= 9000);
    assert_true(r.events & LADE_CHG_EV_OVERDRAW);
    assert_int_equal(r.out.offer_ma, 0);
    assert_false(r.out.contactor_closed);
    assert_int_equal(r.sim.current_ma[0], 0);
    assert_int_equal(r.ended, 1);
    assert_int_equal(r.rec_ended.end_reason, LADE_SESSION_END_OVERDRAW);
    assert_int_equal(r.out.mode, LADE_MODE_UNKNOWN);
    /* latched: no command gets it going again */
    assert_int_equal(cmd(&r, LADE_CMD_AUTHORIZE, 0, 0), LADE_CMD_INVALID_STATE);
    assert_int_equal(cmd(&r, LADE_CMD_RESUME_CHARGING, 0, 0), LADE_CMD_INVALID_STATE);
    rig_run(&r, 60000, 1000);
    assert_int_equal(r.out.state, LADE_CHG_FAULT);
    assert_int_equal(r.out.offer_ma, 0);
    lade_evse_sim_unplug(&r.sim);
    rig_step(&r);
    assert_int_equal(r.out.state, LADE_CHG_DISCONNECTED);
    assert_int_equal(r.ended, 1); /* no second record */
}

static void test_board_fault(void **state)
{
    (void)state;
    static const uint32_t faults[] = {LADE_EVSE_FAULT_RCD, LADE_EVSE_FAULT_OVERCURRENT,
                                      LADE_EVSE_FAULT_CONTACTOR};
    for (size_t i = 0; i < 4; i++) {
        struct rig r;
        rig_init(&r, true);
        assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, 16000, 3), LADE_CMD_OK);
        plug(&r, LADE_EV_3P_11KW);
        rig_run(&r, 3000, 1000);
        assert_int_equal(r.out.state, LADE_CHG_CHARGING);
        if (i < 3)
            r.sim.faults = faults[i];
        else
            r.sim.cp_forced = LADE_CP_E;
        rig_step(&r);
        assert_int_equal(r.out.state, LADE_CHG_FAULT);
        assert_true(r.out.events & LADE_CHG_EV_FAULT);
        assert_int_equal(r.out.offer_ma, 0);
        assert_false(r.out.contactor_closed);
        assert_int_equal(r.rec_ended.end_reason, LADE_SESSION_END_FAULT);
        r.sim.faults = 0;
        r.sim.cp_forced = LADE_CP_UNKNOWN;
        rig_run(&r, 5000, 1000); /* cleared but the car is still there: stays */
        assert_int_equal(r.out.state, LADE_CHG_FAULT);
        if (i == 0) { /* unplugged with the fault still present: stays */
            r.sim.faults = LADE_EVSE_FAULT_RCD;
            lade_evse_sim_unplug(&r.sim);
            rig_step(&r);
            assert_int_equal(r.out.state, LADE_CHG_FAULT);
            r.sim.faults = 0;
        }
        lade_evse_sim_unplug(&r.sim);
        rig_step(&r);
        assert_int_equal(r.out.state, LADE_CHG_DISCONNECTED);
        assert_int_equal(r.ended, 1);
    }
}

static void test_authorization(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, false);
    assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, 16000, 3), LADE_CMD_OK);
    assert_int_equal(cmd(&r, LADE_CMD_AUTHORIZE, 0, 0), LADE_CMD_INVALID_STATE); /* no car */
    plug(&r, LADE_EV_3P_22KW);
    rig_run(&r, 30000, 1000);
    assert_int_equal(r.out.state, LADE_CHG_AUTHORIZING);
    assert_int_equal(r.out.mode, LADE_MODE_CONNECTED_REQUESTING);
    assert_int_equal(r.out.offer_ma, 0);
    assert_false(r.out.contactor_closed);
    assert_int_equal(r.started, 0);
    assert_int_equal(cmd(&r, LADE_CMD_AUTHORIZE, 0, 0), LADE_CMD_OK);
    rig_run(&r, 2000, 1000);
    assert_int_equal(r.out.state, LADE_CHG_CHARGING);
    assert_int_equal(r.started, 1);
    assert_int_equal(r.sim.current_ma[0], 16000);
    assert_int_equal(cmd(&r, LADE_CMD_AUTHORIZE, 0, 0), LADE_CMD_OK); /* idempotent */
    rig_run(&r, 2000, 1000);
    assert_int_equal(r.started, 1);
    /* deauthorize: session ends, back to waiting; free mode would not re-authorize either */
    assert_int_equal(cmd(&r, LADE_CMD_DEAUTHORIZE_AND_STOP, 0, 0), LADE_CMD_OK);
    rig_step(&r);
    assert_int_equal(r.out.state, LADE_CHG_AUTHORIZING);
    assert_int_equal(r.out.offer_ma, 0);
    assert_int_equal(r.ended, 1);
    assert_int_equal(r.rec_ended.end_reason, LADE_SESSION_END_DEAUTHORIZED);
    assert_int_equal(cmd(&r, LADE_CMD_DEAUTHORIZE_AND_STOP, 0, 0), LADE_CMD_OK);
    rig_run(&r, 5000, 1000);
    assert_int_equal(r.ended, 1);
    assert_int_equal(r.out.state, LADE_CHG_AUTHORIZING);
    /* a new authorization is a new session with a new id */
    assert_int_equal(cmd(&r, LADE_CMD_AUTHORIZE, 0, 0), LADE_CMD_OK);
    rig_step(&r);
    assert_int_equal(r.started, 2);
    assert_memory_not_equal(r.rec_started.id, r.rec_ended.id, 16);
    /* unplug while waiting for authorization: no record */
    assert_int_equal(cmd(&r, LADE_CMD_DEAUTHORIZE_AND_STOP, 0, 0), LADE_CMD_OK);
    rig_step(&r);
    assert_int_equal(r.ended, 2);
    lade_evse_sim_unplug(&r.sim);
    rig_step(&r);
    assert_int_equal(r.ended, 2);
    assert_int_equal(r.out.state, LADE_CHG_DISCONNECTED);
}

static void test_stop_final_resume(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, true);
    assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, 16000, 3), LADE_CMD_OK);
    plug(&r, LADE_EV_3P_11KW);
    rig_run(&r, 3000, 1000);
    assert_int_equal(cmd(&r, LADE_CMD_RESUME_CHARGING, 0, 0), LADE_CMD_INVALID_STATE);
    assert_int_equal(cmd(&r, LADE_CMD_STOP_CHARGING_FINAL, 0, 0), LADE_CMD_OK);
    rig_step(&r);
    assert_int_equal(r.out.state, LADE_CHG_FINISHED);
    assert_int_equal(r.out.mode, LADE_MODE_CONNECTED_FINISHED);
    assert_true(r.out.final_stop);
    assert_int_equal(r.out.offer_ma, 0);
    assert_false(r.out.contactor_closed);
    assert_int_equal(cmd(&r, LADE_CMD_STOP_CHARGING_FINAL, 0, 0), LADE_CMD_OK); /* idempotent */
    /* a setpoint while stopped does not restart */
    assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, 32000, 3), LADE_CMD_OK);
    rig_run(&r, 60000, 1000);
    assert_int_equal(r.out.state, LADE_CHG_FINISHED);
    assert_int_equal(r.sim.current_ma[0], 0);
    assert_int_equal(r.ended, 0); /* the session goes on */
    assert_int_equal(cmd(&r, LADE_CMD_RESUME_CHARGING, 0, 0), LADE_CMD_OK);
    rig_run(&r, 2000, 1000);
    assert_int_equal(r.out.state, LADE_CHG_CHARGING);
    assert_false(r.out.final_stop);
    assert_int_equal(r.out.mode, LADE_MODE_CONNECTED_CHARGING);
    assert_int_equal(r.started, 1);
    assert_int_equal(cmd(&r, LADE_CMD_RESUME_CHARGING, 0, 0), LADE_CMD_INVALID_STATE);
    /* stop-final while paused; resume with < 6 A goes to paused */
    assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, 0, 0), LADE_CMD_OK);
    rig_step(&r);
    assert_int_equal(r.out.state, LADE_CHG_PAUSED);
    assert_int_equal(cmd(&r, LADE_CMD_STOP_CHARGING_FINAL, 0, 0), LADE_CMD_OK);
    rig_step(&r);
    assert_int_equal(r.out.state, LADE_CHG_FINISHED);
    assert_int_equal(cmd(&r, LADE_CMD_RESUME_CHARGING, 0, 0), LADE_CMD_OK);
    rig_step(&r);
    assert_int_equal(r.out.state, LADE_CHG_PAUSED);
    /* unplug while finished ends the session */
    assert_int_equal(cmd(&r, LADE_CMD_STOP_CHARGING_FINAL, 0, 0), LADE_CMD_OK);
    rig_step(&r);
    lade_evse_sim_unplug(&r.sim);
    rig_step(&r);
    assert_int_equal(r.ended, 1);
    assert_false(r.out.final_stop);
    assert_int_equal(r.out.state, LADE_CHG_DISCONNECTED);
}

static void test_pause_below_6a(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, true);
    assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, 16000, 3), LADE_CMD_OK);
    plug(&r, LADE_EV_3P_22KW);
    rig_run(&r, 3000, 1000);
    assert_int_equal(r.out.state, LADE_CHG_CHARGING);
    for (int32_t ma = 0; ma < 6000; ma += 1999) {
        assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, ma, 0), LADE_CMD_OK);
        rig_step(&r);
        assert_int_equal(r.out.state, LADE_CHG_PAUSED);
        assert_int_equal(r.out.mode, LADE_MODE_CONNECTED_REQUESTING);
        assert_int_equal(r.out.offer_ma, 0);
        assert_false(r.out.contactor_closed);
        assert_int_equal(r.out.allocated_ma, ma);
        rig_step(&r);
        assert_int_equal(r.sim.current_ma[0], 0);
    }
    assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, 6000, 0), LADE_CMD_OK);
    rig_run(&r, 2000, 1000);
    assert_int_equal(r.out.state, LADE_CHG_CHARGING);
    assert_int_equal(r.sim.current_ma[0], 6000);
    /* a 5 A cable rating (none valid) also pauses */
    r.sim.cable_rating_ma = 0;
    rig_step(&r);
    assert_int_equal(r.out.state, LADE_CHG_PAUSED);
    assert_int_equal(r.ended, 0);
}

static void test_setpoint_clamp_and_range(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, true);
    struct lade_charging_cmd c = {.id = LADE_CMD_SET_CURRENT, .current_ma = 80000, .phases = 3};
    int32_t applied = -1;
    assert_int_equal(lade_charging_command(&r.cs, &c, &applied), LADE_CMD_CLAMPED);
    assert_int_equal(applied, 32000);
    c.current_ma = 20000;
    assert_int_equal(lade_charging_command(&r.cs, &c, &applied), LADE_CMD_OK);
    assert_int_equal(applied, 20000);
    c.current_ma = -1;
    applied = -7;
    assert_int_equal(lade_charging_command(&r.cs, &c, &applied), LADE_CMD_OUT_OF_RANGE);
    assert_int_equal(applied, -7);
    c.current_ma = 10000;
    c.phases = 2;
    assert_int_equal(lade_charging_command(&r.cs, &c, &applied), LADE_CMD_OUT_OF_RANGE);
    c.phases = 4;
    assert_int_equal(lade_charging_command(&r.cs, &c, &applied), LADE_CMD_OUT_OF_RANGE);
    c.id = (enum lade_charging_cmd_id)4242;
    assert_int_equal(lade_charging_command(&r.cs, &c, &applied), LADE_CMD_UNKNOWN);
    plug(&r, LADE_EV_3P_22KW);
    rig_run(&r, 3000, 1000);
    assert_int_equal(r.out.offer_ma, 20000); /* the bad ones changed nothing */
    assert_int_equal(r.out.phases, 3);
}

/* Reach each state, try every command, check status and that invalid ones change nothing. */
static void reach(struct rig *r, enum lade_charging_state st)
{
    rig_init(r, false);
    assert_int_equal(cmd(r, LADE_CMD_SET_CURRENT, 16000, 3), LADE_CMD_OK);
    rig_step(r);
    if (st == LADE_CHG_DISCONNECTED)
        return;
    plug(r, LADE_EV_3P_11KW);
    rig_step(r);
    if (st == LADE_CHG_AUTHORIZING)
        return;
    if (st == LADE_CHG_FAULT) {
        r->sim.faults = LADE_EVSE_FAULT_RCD;
        rig_step(r);
        r->sim.faults = 0;
        return;
    }
    assert_int_equal(cmd(r, LADE_CMD_AUTHORIZE, 0, 0), LADE_CMD_OK);
    rig_run(r, 2000, 1000);
    if (st == LADE_CHG_PAUSED) {
        assert_int_equal(cmd(r, LADE_CMD_SET_CURRENT, 0, 0), LADE_CMD_OK);
        rig_step(r);
    } else if (st == LADE_CHG_FINISHED) {
        assert_int_equal(cmd(r, LADE_CMD_STOP_CHARGING_FINAL, 0, 0), LADE_CMD_OK);
        rig_step(r);
    }
}

static void test_commands_every_state(void **state)
{
    (void)state;
    enum { D, A, C, P, F, X };
    static const enum lade_charging_state st_of[] = {LADE_CHG_DISCONNECTED, LADE_CHG_AUTHORIZING,
                                                     LADE_CHG_CHARGING,     LADE_CHG_PAUSED,
                                                     LADE_CHG_FINISHED,     LADE_CHG_FAULT};
    static const enum lade_charging_cmd_id ids[] = {
        LADE_CMD_AUTHORIZE,       LADE_CMD_STOP_CHARGING_FINAL,
        LADE_CMD_RESUME_CHARGING, LADE_CMD_DEAUTHORIZE_AND_STOP,
        LADE_CMD_SET_CURRENT,     (enum lade_charging_cmd_id)501};
    const enum lade_cmd_status I = LADE_CMD_INVALID_STATE, O = LADE_CMD_OK, U = LADE_CMD_UNKNOWN;
    /* rows: command; columns: state D A C P F X */
    const enum lade_cmd_status want[6][6] = {
        {I, O, O, O, O, I}, /* authorize */
        {I, I, O, O, O, I}, /* stop final */
        {I, I, I, I, O, I}, /* resume */
        {I, O, O, O, O, I}, /* deauthorize and stop */
        {O, O, O, O, O, O}, /* set current */
        {U, U, U, U, U, U}, /* legacy start: unknown */
    };
    /* state after a valid command (next step); -1 = unchanged */
    const int after[6][6] = {
        {-1, C, -1, -1, -1, -1},  {-1, -1, F, F, -1, -1},  {-1, -1, -1, -1, C, -1},
        {-1, -1, A, A, A, -1},    {-1, -1, -1, C, -1, -1}, /* 16 A: a paused charger charges again
                                                            */
        {-1, -1, -1, -1, -1, -1},
    };
    for (int s = 0; s < 6; s++) {
        for (int k = 0; k < 6; k++) {
            struct rig r;
            reach(&r, st_of[s]);
            assert_int_equal(r.out.state, st_of[s]);
            struct lade_charging before = r.cs;
            struct lade_charging_cmd c = {.id = ids[k], .current_ma = 16000, .phases = 3};
            enum lade_cmd_status got = lade_charging_command(&r.cs, &c, NULL);
            if (got != want[k][s])
                fail_msg("state %s command %d: got %s", lade_charging_state_name(st_of[s]),
                         (int)ids[k], lade_cmd_status_name(got));
            if (got != O)
                assert_memory_equal(&before, &r.cs, sizeof before);
            rig_run(&r, 2000, 1000);
            enum lade_charging_state exp = after[k][s] < 0 ? st_of[s] : st_of[after[k][s]];
            if (r.out.state != exp)
                fail_msg("state %s command %d: now %s", lade_charging_state_name(st_of[s]),
                         (int)ids[k], lade_charging_state_name(r.out.state));
        }
    }
}

static void test_untrusted_clock_and_ids(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, true);
    assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, 16000, 1), LADE_CMD_OK);
    r.trusted = false;
    plug(&r, LADE_EV_1P_16A);
    rig_run(&r, 5000, 1000);
    r.trusted = true;
    lade_evse_sim_unplug(&r.sim);
    rig_step(&r);
    assert_false(r.rec_ended.clock_trusted);
    uint8_t first[16];
    memcpy(first, r.rec_ended.id, 16);
    /* trusted at start but not at end: untrusted too */
    plug(&r, LADE_EV_1P_16A);
    rig_run(&r, 5000, 1000);
    r.trusted = false;
    lade_evse_sim_unplug(&r.sim);
    rig_step(&r);
    assert_false(r.rec_ended.clock_trusted);
    assert_memory_not_equal(first, r.rec_ended.id, 16);
    assert_int_equal(r.ended, 2);
}

static void test_phase_switch(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, true);
    assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, 16000, 3), LADE_CMD_OK);
    plug(&r, LADE_EV_3P_11KW);
    rig_run(&r, 3000, 1000);
    assert_int_equal(r.sim.contactor_phases, 3);
    assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, 16000, 1), LADE_CMD_OK);
    rig_step(&r);
    assert_false(r.out.contactor_closed); /* opened first */
    assert_int_equal(r.out.offer_ma, 0);
    rig_run(&r, 3000, 1000);
    assert_true(r.out.contactor_closed);
    assert_int_equal(r.out.phases, 1);
    assert_int_equal(r.sim.current_ma[0], 16000);
    assert_int_equal(r.sim.current_ma[1], 0);
    /* a charger wired for 1 phase never closes 3 */
    struct lade_charging_config cfg;
    default_cfg(&cfg, true);
    cfg.max_phases = 1;
    rig_init_cfg(&r, &cfg);
    assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, 16000, 3), LADE_CMD_OK);
    plug(&r, LADE_EV_3P_11KW);
    rig_run(&r, 3000, 1000);
    assert_int_equal(r.out.phases, 1);
    assert_int_equal(r.sim.current_ma[2], 0);
}

/* Link loss, the two orders of setpoint and fallback. */
static void test_link_loss_fallback_lower(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, true); /* fallback 6 A on 1 phase, deadline 100 s */
    assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, 32000, 3), LADE_CMD_OK);
    plug(&r, LADE_EV_3P_22KW);
    rig_run(&r, 3000, 1000);
    assert_int_equal(r.out.offer_ma, 32000);
    assert_false(r.out.offline);
    r.link_up = false; /* the shell noticed: lowering early is allowed */
    rig_step(&r);
    assert_true(r.out.offer_ma <= 6000);
    rig_run(&r, 3000, 1000);
    assert_int_equal(r.out.offer_ma, 6000);
    assert_int_equal(r.out.phases, 1);
    assert_false(r.out.offline);
    rig_run(&r, 200000, 1000);
    assert_true(r.out.offline);
    assert_true(r.events & LADE_CHG_EV_FALLBACK);
    assert_int_equal(r.out.offer_ma, 6000);
    /* link back: stays at the fallback until the cloud sends a new setpoint */
    r.link_up = true;
    rig_run(&r, 5000, 1000);
    assert_false(r.out.offline);
    assert_int_equal(r.out.offer_ma, 6000);
    assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, 20000, 3), LADE_CMD_OK);
    rig_run(&r, 5000, 1000);
    assert_int_equal(r.out.offer_ma, 20000);
    assert_int_equal(r.out.phases, 3);
}

static void test_link_loss_fallback_higher(void **state)
{
    (void)state;
    struct rig r;
    struct lade_charging_config cfg;
    default_cfg(&cfg, true);
    cfg.offline_current_ma = 16000;
    cfg.offline_phases = 3;
    rig_init_cfg(&r, &cfg);
    assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, 10000, 3), LADE_CMD_OK);
    plug(&r, LADE_EV_3P_22KW);
    rig_run(&r, 3000, 1000);
    assert_int_equal(r.out.offer_ma, 10000);
    /* the shell has not noticed (link_up stays true in its view) — only the contact time
     * says it: keep the setpoint until the deadline, then the fallback, exactly on time */
    uint64_t seen = r.now_ms;
    struct lade_charging_inputs in;
    memset(&in, 0, sizeof in);
    for (uint64_t t = seen + 1; t <= seen + cfg.link_loss_deadline_ms + 5000; t += 250) {
        r.now_ms = t;
        lade_evse_sim_step(&r.sim, t);
        in.cp = ops->cp_state(&r.sim);
        in.cable_rating_ma = ops->cable_rating_ma(&r.sim);
        assert_int_equal(ops->read_meter(&r.sim, &in.meter), LADE_OK);
        in.link_up = (t - seen) < 30000; /* noticed after 30 s */
        in.hub_last_seen_ms = seen;
        lade_charging_step(&r.cs, t, 1700000000, &in, &r.out);
        assert_int_equal(ops->set_offer_ma(&r.sim, r.out.offer_ma), LADE_OK);
        assert_int_equal(ops->set_contactor(&r.sim, r.out.contactor_closed, r.out.phases), LADE_OK);
        if (t - seen < cfg.link_loss_deadline_ms) {
            assert_int_equal(r.out.offer_ma, 10000);
            assert_false(r.out.offline);
            /* the shell is told to come back no later than the deadline */
            assert_true(r.out.next_step_ms <= seen + cfg.link_loss_deadline_ms);
        } else {
            assert_true(r.out.offline);
            assert_int_equal(r.out.offer_ma, 16000);
        }
    }
    /* one step exactly at the deadline switches */
    struct rig r2;
    rig_init_cfg(&r2, &cfg);
    assert_int_equal(cmd(&r2, LADE_CMD_SET_CURRENT, 10000, 3), LADE_CMD_OK);
    plug(&r2, LADE_EV_3P_22KW);
    rig_run(&r2, 3000, 1000);
    r2.link_up = false;
    uint64_t s2 = r2.now_ms;
    r2.now_ms = s2 + cfg.link_loss_deadline_ms - 1;
    rig_step(&r2);
    assert_int_equal(r2.out.offer_ma, 10000);
    r2.now_ms = s2 + cfg.link_loss_deadline_ms;
    rig_step(&r2);
    assert_int_equal(r2.out.offer_ma, 16000);
}

/* ---- property test ---- */

static uint64_t rng_state;
static uint32_t rnd(void)
{
    uint64_t x = rng_state; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return (uint32_t)((x * 2685821657736338717ull) >> 32);
}
static uint32_t below(uint32_t n)
{
    return rnd() % n;
}

static void test_property_random(void **state)
{
    (void)state;
    static const int32_t cables[] = {0, 13000, 20000, 32000, 63000};
    static const enum lade_charging_cmd_id cmds[] = {
        LADE_CMD_AUTHORIZE, LADE_CMD_STOP_CHARGING_FINAL, LADE_CMD_RESUME_CHARGING,
        LADE_CMD_DEAUTHORIZE_AND_STOP};
    enum lade_log_level lvl = lade_log_get_level();
    lade_log_set_level(LADE_LOG_ERROR);
    unsigned steps = 0, offline_steps = 0, charging_steps = 0, gap_steps = 0;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        rng_state = seed * 0x9E3779B97F4A7C15ull;
        struct lade_charging_config cfg;
        default_cfg(&cfg, below(2));
        cfg.max_current_ma = 6000 + (int32_t)below(57001);
        cfg.max_phases = below(2) ? 3 : 1;
        cfg.offline_current_ma = (int32_t)below((uint32_t)cfg.max_current_ma + 1);
        cfg.offline_phases = below(2) ? 3 : 1;
        cfg.link_loss_deadline_ms =
            lade_charging_link_loss_deadline_ms(below(60) + 1, below(10000));
        cfg.overdraw_time_ms = 1000 + below(20000);
        struct rig r;
        rig_init_cfg(&r, &cfg);
        /* oracle: what the portal assumes */
        int32_t sp = cfg.offline_current_ma; /* setpoint in force (clamped) */
        bool sp_reset = true;
        for (int i = 0; i < 400; i++) {
            uint32_t what = below(100);
            if (what < 25 && r.link_up) {
                int32_t ma = (int32_t)below(80000);
                unsigned ph = below(3) == 0 ? 0 : (below(2) ? 3 : 1);
                enum lade_cmd_status st = cmd(&r, LADE_CMD_SET_CURRENT, ma, ph);
                assert_true(st == LADE_CMD_OK || st == LADE_CMD_CLAMPED);
                assert_true((st == LADE_CMD_CLAMPED) == (ma > cfg.max_current_ma));
                sp = ma > cfg.max_current_ma ? cfg.max_current_ma : ma;
                sp_reset = false;
            } else if (what < 35) {
                r.link_up = !r.link_up;
            } else if (what < 42) {
                if (r.sim.plugged) {
                    lade_evse_sim_unplug(&r.sim);
                } else {
                    struct lade_ev_config ev;
                    lade_ev_config_profile(&ev, (enum lade_ev_profile)below(3));
                    ev.soc_permille = below(1001);
                    ev.capacity_wh = 1000 + below(80000);
                    if (below(4) == 0)
                        ev.self_limit_ma = (int32_t)below(20000);
                    if (below(8) == 0)
                        ev.overdraw_ma = (int32_t)below(8000);
                    lade_evse_sim_plug(&r.sim, &ev);
                }
            } else if (what < 47) {
                r.sim.cable_rating_ma = cables[below(5)];
            } else if (what < 57 && r.link_up) {
                enum lade_charging_state before = r.cs.state;
                enum lade_cmd_status st = cmd(&r, cmds[below(4)], 0, 0);
                if (st == LADE_CMD_INVALID_STATE)
                    assert_int_equal(r.cs.state, before);
            } else if (what < 59) {
                r.sim.faults = below(2) ? LADE_EVSE_FAULT_RCD : 0;
            } else if (what < 60) {
                r.trusted = !r.trusted;
            }
            /* time: the shell steps at least every out.next_step_ms (<= 1 s) while the link is
             * up; while it is down nothing but the clock moves, so jump, past the deadline too */
            uint64_t dt =
                !r.link_up && below(10) == 0 ? below(2 * cfg.link_loss_deadline_ms) : below(1001);
            uint64_t seen_before = r.last_seen_ms;
            r.now_ms += dt;
            rig_step(&r);
            steps++;
            uint64_t since = r.now_ms - seen_before;
            const struct lade_charging_outputs *o = &r.out;
            if (r.link_up) {
                /* contact during this interval (the link is up from its start): the setpoint
                 * in force applies, reset to the fallback if an earlier step saw the deadline */
                if (o->offer_ma > sp)
                    fail_msg("seed %u step %d: offer %d > setpoint %d (since %u, state %s)",
                             (unsigned)seed, i, (int)o->offer_ma, (int)sp, (unsigned)since,
                             lade_charging_state_name(o->state));
            } else if (since >= cfg.link_loss_deadline_ms) {
                /* after the deadline: never above the fallback */
                if (!sp_reset) {
                    sp = cfg.offline_current_ma;
                    sp_reset = true;
                }
                assert_true(o->offer_ma <= cfg.offline_current_ma);
                assert_true(o->offline);
                assert_true(o->phases <= cfg.offline_phases);
                offline_steps++;
            } else {
                /* between loss and deadline: never above the last setpoint, nor the fallback
                 * once the loss is known */
                assert_true(o->offer_ma <= sp);
                assert_true(o->offer_ma <= cfg.offline_current_ma);
                gap_steps++;
            }
            int32_t cap = cfg.max_current_ma;
            if (r.sim.cable_rating_ma < cap)
                cap = r.sim.cable_rating_ma;
            assert_true(o->offer_ma <= cap);
            assert_true(o->offer_ma == 0 || o->offer_ma >= 6000);
            if (o->offer_ma > 0)
                charging_steps++;
            assert_true(r.started - r.ended == 0 || r.started - r.ended == 1);
            assert_true(r.cs.in_session == (r.started - r.ended == 1));
        }
        lade_evse_sim_unplug(&r.sim);
        r.sim.faults = 0;
        rig_run(&r, 2000, 1000);
        assert_int_equal(r.started, r.ended); /* every session closed */
    }
    lade_log_set_level(lvl);
    /* the random walk reached every region */
    assert_true(offline_steps > 1000);
    assert_true(charging_steps > 1000);
    assert_true(gap_steps > 1000);
    print_message("property: %u steps, %u charging, %u between loss and deadline, %u offline\n",
                  steps, charging_steps, gap_steps, offline_steps);
}

/* A session checkpointed before a restart continues under the same id when the car is still
 * there, and ends with the meter delta when it left meanwhile. */
static void test_resume_session(void **state)
{
    (void)state;
    struct lade_session_record rec;
    memset(&rec, 0, sizeof rec);
    memset(rec.id, 0x42, sizeof rec.id);
    rec.start_wall_s = 1700000000;
    rec.clock_trusted = true;
    rec.peak_power_w = 11000;
    rec.phases_used = 3;

    /* car still plugged: same session, no new id, charging again */
    struct rig r;
    rig_init(&r, false);
    plug(&r, LADE_EV_3P_11KW);
    r.sim.energy_wh = 5000;
    uint32_t ids = g_ids;
    assert_int_equal(lade_charging_resume(&r.cs, &rec, 1000, false), LADE_OK);
    assert_int_equal(lade_charging_resume(&r.cs, &rec, 1000, false), LADE_ERR_STATE);
    assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, 16000, 3), LADE_CMD_OK);
    rig_run(&r, 2000, 1000);
    assert_int_equal(g_ids, ids);
    assert_int_equal(r.started, 0);
    assert_int_equal(r.out.state, LADE_CHG_CHARGING);
    assert_memory_equal(r.out.session.id, rec.id, 16);
    lade_evse_sim_unplug(&r.sim);
    rig_step(&r);
    assert_int_equal(r.ended, 1);
    assert_memory_equal(r.rec_ended.id, rec.id, 16);
    assert_int_equal(r.rec_ended.start_wall_s, rec.start_wall_s);
    assert_in_range(r.rec_ended.energy_wh, 4000, 4010);
    assert_int_equal(r.rec_ended.end_reason, LADE_SESSION_END_UNPLUGGED);

    /* car gone while the agent was down: the first step closes it */
    rig_init(&r, false);
    r.sim.energy_wh = 2500;
    assert_int_equal(lade_charging_resume(&r.cs, &rec, 1000, true), LADE_OK);
    rig_step(&r);
    assert_int_equal(r.ended, 1);
    assert_int_equal(r.rec_ended.energy_wh, 1500);
    assert_int_equal(r.out.state, LADE_CHG_DISCONNECTED);
    assert_int_equal(r.started, 0);

    /* a final stop survives the restart */
    rig_init(&r, false);
    plug(&r, LADE_EV_3P_11KW);
    assert_int_equal(lade_charging_resume(&r.cs, &rec, 0, true), LADE_OK);
    rig_run(&r, 2000, 1000);
    assert_int_equal(r.out.state, LADE_CHG_FINISHED);
    assert_true(r.out.final_stop);
    assert_int_equal(r.out.offer_ma, 0);
    assert_int_equal(cmd(&r, LADE_CMD_RESUME_CHARGING, 0, 0), LADE_CMD_OK);

    /* after the first step it is refused */
    rig_init(&r, false);
    rig_step(&r);
    assert_int_equal(lade_charging_resume(&r.cs, &rec, 0, false), LADE_ERR_STATE);
}

/* A configured minimum above 6 A: less than it pauses, it and above charges. */
static void test_min_current(void **state)
{
    (void)state;
    struct lade_charging_config cfg;
    default_cfg(&cfg, true);
    cfg.min_current_ma = 10000;
    struct rig r;
    rig_init_cfg(&r, &cfg);
    plug(&r, LADE_EV_3P_11KW);
    assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, 8000, 3), LADE_CMD_OK);
    rig_run(&r, 2000, 1000);
    assert_int_equal(r.out.state, LADE_CHG_PAUSED);
    assert_int_equal(r.out.offer_ma, 0);
    assert_int_equal(cmd(&r, LADE_CMD_SET_CURRENT, 10000, 3), LADE_CMD_OK);
    rig_run(&r, 2000, 1000);
    assert_int_equal(r.out.state, LADE_CHG_CHARGING);
    assert_int_equal(r.out.offer_ma, 10000);
    cfg.min_current_ma = 5000;
    assert_int_equal(lade_charging_config_check(&cfg), LADE_ERR_CONFIG);
    cfg.min_current_ma = 40000;
    assert_int_equal(lade_charging_config_check(&cfg), LADE_ERR_CONFIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_free_mode_session_1p),
        cmocka_unit_test(test_profiles_3p),
        cmocka_unit_test(test_taper_to_full),
        cmocka_unit_test(test_underdraw_no_fault),
        cmocka_unit_test(test_overdraw_fault),
        cmocka_unit_test(test_board_fault),
        cmocka_unit_test(test_authorization),
        cmocka_unit_test(test_stop_final_resume),
        cmocka_unit_test(test_pause_below_6a),
        cmocka_unit_test(test_setpoint_clamp_and_range),
        cmocka_unit_test(test_commands_every_state),
        cmocka_unit_test(test_untrusted_clock_and_ids),
        cmocka_unit_test(test_phase_switch),
        cmocka_unit_test(test_link_loss_fallback_lower),
        cmocka_unit_test(test_link_loss_fallback_higher),
        cmocka_unit_test(test_resume_session),
        cmocka_unit_test(test_min_current),
        cmocka_unit_test(test_property_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
