/* Unit tests for the IEC 61851 helpers and the simulated EV + meter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lade/evse.h"

static const struct lade_evse_hw_ops *ops = &lade_evse_sim_ops;

static uint16_t duty(int32_t ma)
{
    uint16_t d = 0;
    assert_int_equal(lade_iec61851_duty_permille(ma, &d), LADE_OK);
    return d;
}

static void test_duty(void **state)
{
    (void)state;
    assert_int_equal(duty(6000), 100);  /* 10 % */
    assert_int_equal(duty(10000), 166); /* 16.67 % rounded down: never offer more */
    assert_int_equal(duty(16000), 266);
    assert_int_equal(duty(32000), 533);
    assert_int_equal(duty(51000), 850);
    assert_int_equal(duty(63000), 892); /* 63 / 2.5 + 64 = 89.2 % */
    assert_int_equal(duty(80000), 960);
    uint16_t d = 7;
    assert_int_equal(lade_iec61851_duty_permille(5999, &d), LADE_ERR_INVAL);
    assert_int_equal(lade_iec61851_duty_permille(0, &d), LADE_ERR_INVAL);
    assert_int_equal(lade_iec61851_duty_permille(-6000, &d), LADE_ERR_INVAL);
    assert_int_equal(lade_iec61851_duty_permille(80001, &d), LADE_ERR_INVAL);
    assert_int_equal(d, 7); /* untouched on error */
    /* monotonic inside each range; the inverse never exceeds the current asked for */
    for (int32_t ma = 6000; ma <= 51000; ma += 1) {
        uint16_t p = duty(ma);
        assert_true(p * 60 <= ma);
        assert_true((p + 1) * 60 > ma);
    }
    for (int32_t ma = 51001; ma <= 80000; ma += 1) {
        uint16_t p = duty(ma);
        assert_true((p - 640) * 250 <= ma);
    }
}

static void test_pp(void **state)
{
    (void)state;
    assert_int_equal(lade_iec61851_pp_rating_ma(1500), 13000);
    assert_int_equal(lade_iec61851_pp_rating_ma(1400), 13000);
    assert_int_equal(lade_iec61851_pp_rating_ma(680), 20000);
    assert_int_equal(lade_iec61851_pp_rating_ma(220), 32000);
    assert_int_equal(lade_iec61851_pp_rating_ma(100), 63000);
    assert_int_equal(lade_iec61851_pp_rating_ma(111), 0);
    assert_int_equal(lade_iec61851_pp_rating_ma(1000), 0);
    assert_int_equal(lade_iec61851_pp_rating_ma(0), 0);
    assert_int_equal(lade_iec61851_pp_rating_ma(UINT32_MAX), 0);
}

static void charge_on(struct lade_evse_sim *s, int32_t offer_ma, unsigned phases)
{
    assert_int_equal(ops->set_offer_ma(s, offer_ma), LADE_OK);
    assert_int_equal(ops->set_contactor(s, true, phases), LADE_OK);
}

static void test_profiles(void **state)
{
    (void)state;
    struct lade_evse_sim s;
    struct lade_ev_config ev;
    struct lade_meter_reading m;
    lade_evse_sim_init(&s);
    lade_evse_sim_step(&s, 1000);
    assert_int_equal(ops->cp_state(&s), LADE_CP_A);
    assert_int_equal(ops->cable_rating_ma(&s), 0);

    lade_ev_config_profile(&ev, LADE_EV_1P_16A);
    lade_evse_sim_plug(&s, &ev);
    assert_int_equal(ops->cable_rating_ma(&s), 32000);
    assert_int_equal(ops->cp_state(&s), LADE_CP_B); /* no PWM yet */
    charge_on(&s, 32000, 3);
    assert_int_equal(ops->cp_state(&s), LADE_CP_C);
    assert_int_equal(ops->read_meter(&s, &m), LADE_OK);
    assert_int_equal(m.current_ma[0], 16000);
    assert_int_equal(m.current_ma[1], 0);
    assert_int_equal(m.current_ma[2], 0);
    assert_int_equal(m.power_w, 3680);
    assert_int_equal(m.voltage_mv[2], 230000);

    lade_ev_config_profile(&ev, LADE_EV_3P_11KW);
    lade_evse_sim_plug(&s, &ev);
    assert_int_equal(ops->read_meter(&s, &m), LADE_OK);
    assert_int_equal(m.current_ma[2], 16000);
    assert_int_equal(m.power_w, 11040);

    lade_ev_config_profile(&ev, LADE_EV_3P_22KW);
    lade_evse_sim_plug(&s, &ev);
    assert_int_equal(ops->read_meter(&s, &m), LADE_OK);
    assert_int_equal(m.current_ma[1], 32000);
    assert_int_equal(m.power_w, 22080);
    /* the car takes at most the offer */
    assert_int_equal(ops->set_offer_ma(&s, 20000), LADE_OK);
    assert_int_equal(ops->read_meter(&s, &m), LADE_OK);
    assert_int_equal(m.current_ma[0], 20000);
    /* a 3-phase car behind a 1-phase contactor draws on L1 only */
    assert_int_equal(ops->set_contactor(&s, true, 1), LADE_OK);
    assert_int_equal(ops->read_meter(&s, &m), LADE_OK);
    assert_int_equal(m.current_ma[0], 20000);
    assert_int_equal(m.current_ma[1], 0);
    /* open contactor / no offer: nothing */
    assert_int_equal(ops->set_contactor(&s, false, 0), LADE_OK);
    assert_int_equal(ops->read_meter(&s, &m), LADE_OK);
    assert_int_equal(m.current_ma[0], 0);
    assert_int_equal(m.power_w, 0);
    charge_on(&s, 16000, 3);
    assert_int_equal(ops->set_offer_ma(&s, 0), LADE_OK);
    assert_int_equal(ops->cp_state(&s), LADE_CP_B);
    assert_int_equal(ops->read_meter(&s, &m), LADE_OK);
    assert_int_equal(m.current_ma[0], 0);
    /* unplug */
    charge_on(&s, 16000, 3);
    lade_evse_sim_unplug(&s);
    assert_int_equal(ops->cp_state(&s), LADE_CP_A);
    assert_int_equal(ops->read_meter(&s, &m), LADE_OK);
    assert_int_equal(m.current_ma[0], 0);
}

static void test_bad_ops(void **state)
{
    (void)state;
    struct lade_evse_sim s;
    lade_evse_sim_init(&s);
    assert_int_equal(ops->set_offer_ma(&s, 5999), LADE_ERR_INVAL);
    assert_int_equal(ops->set_offer_ma(&s, -1), LADE_ERR_INVAL);
    assert_int_equal(ops->set_offer_ma(&s, 80001), LADE_ERR_INVAL);
    assert_int_equal(ops->set_contactor(&s, true, 2), LADE_ERR_INVAL);
    assert_int_equal(ops->set_contactor(&s, true, 0), LADE_ERR_INVAL);
    assert_int_equal(s.offer_ma, 0);
    assert_false(s.contactor_closed);
    s.faults = LADE_EVSE_FAULT_RCD;
    assert_int_equal(ops->faults(&s), LADE_EVSE_FAULT_RCD);
    s.cp_forced = LADE_CP_E;
    assert_int_equal(ops->cp_state(&s), LADE_CP_E);
    assert_string_equal(lade_cp_state_name(LADE_CP_E), "E");
    assert_string_equal(lade_cp_state_name((enum lade_cp_state)42), "?");
}

/* 16 A at 230 V for exactly one hour in irregular steps = 3680 Wh, exactly. */
static void test_energy_exact(void **state)
{
    (void)state;
    struct lade_evse_sim s;
    struct lade_ev_config ev;
    lade_evse_sim_init(&s);
    lade_ev_config_profile(&ev, LADE_EV_1P_16A);
    ev.capacity_wh = 100000;
    ev.soc_permille = 0;
    lade_evse_sim_plug(&s, &ev);
    uint64_t t = 5000;
    lade_evse_sim_step(&s, t);
    charge_on(&s, 16000, 1);
    uint64_t end = t + 3600 * 1000;
    uint32_t x = 12345;
    uint64_t prev_wh = 0;
    while (t < end) {
        x = x * 1103515245u + 12345u;
        uint64_t dt = 1 + (x >> 16) % 4000; /* 1 ms .. 4 s, also longer than a sub-step */
        t = t + dt > end ? end : t + dt;
        lade_evse_sim_step(&s, t);
        assert_true(s.energy_wh >= prev_wh);
        prev_wh = s.energy_wh;
    }
    assert_int_equal(s.energy_wh, 3680);
    assert_int_equal(s.energy_rem_nj, 0);
    /* battery got the same energy: 3.68 kWh of 100 kWh */
    assert_int_equal(lade_evse_sim_soc_permille(&s), 36);
    /* one more step of 0 ms or backwards changes nothing */
    lade_evse_sim_step(&s, t);
    lade_evse_sim_step(&s, t - 100);
    assert_int_equal(s.energy_wh, 3680);
    /* three phases at 32 A for 30 min: 11040 Wh more */
    lade_ev_config_profile(&ev, LADE_EV_3P_22KW);
    ev.soc_permille = 0;
    ev.capacity_wh = 100000;
    lade_evse_sim_plug(&s, &ev);
    charge_on(&s, 32000, 3);
    lade_evse_sim_step(&s, t + 1800 * 1000);
    assert_int_equal(s.energy_wh, 3680 + 11040);
}

static void test_taper_and_full(void **state)
{
    (void)state;
    struct lade_evse_sim s;
    struct lade_ev_config ev;
    struct lade_meter_reading m;
    lade_evse_sim_init(&s);
    lade_ev_config_profile(&ev, LADE_EV_3P_11KW);
    ev.capacity_wh = 2000; /* small battery: fills in minutes */
    ev.soc_permille = 790;
    lade_evse_sim_plug(&s, &ev);
    uint64_t t = 0;
    lade_evse_sim_step(&s, t);
    charge_on(&s, 32000, 3);
    assert_int_equal(ops->read_meter(&s, &m), LADE_OK);
    assert_int_equal(m.current_ma[0], 16000);
    int32_t prev = 16000;
    bool tapered = false;
    for (int i = 0; i < 4 * 3600 && ops->cp_state(&s) == LADE_CP_C; i++) {
        t += 1000;
        lade_evse_sim_step(&s, t);
        assert_int_equal(ops->read_meter(&s, &m), LADE_OK);
        assert_true(m.current_ma[0] <= prev); /* never rises while tapering */
        uint32_t soc = lade_evse_sim_soc_permille(&s);
        if (soc > 800) {
            int32_t cap = (int32_t)((int64_t)16000 * (1000 - soc) / 200);
            assert_true(m.current_ma[0] <= cap);
            if (m.current_ma[0] < 16000)
                tapered = true;
        }
        prev = m.current_ma[0];
    }
    assert_true(tapered);
    assert_int_equal(lade_evse_sim_soc_permille(&s), 1000);
    assert_int_equal(ops->cp_state(&s), LADE_CP_B); /* full: stops asking */
    assert_int_equal(ops->read_meter(&s, &m), LADE_OK);
    assert_int_equal(m.current_ma[0], 0);
    /* the meter counted what went into the battery (210 permille of 2 kWh = 420 Wh) */
    assert_in_range(s.energy_wh, 419, 421);
}

static void test_underdraw_overdraw(void **state)
{
    (void)state;
    struct lade_evse_sim s;
    struct lade_ev_config ev;
    struct lade_meter_reading m;
    lade_evse_sim_init(&s);
    lade_ev_config_profile(&ev, LADE_EV_3P_22KW);
    ev.self_limit_ma = 10000;
    lade_evse_sim_plug(&s, &ev);
    charge_on(&s, 32000, 3);
    assert_int_equal(ops->read_meter(&s, &m), LADE_OK);
    assert_int_equal(m.current_ma[0], 10000);
    assert_int_equal(ops->set_offer_ma(&s, 8000), LADE_OK);
    assert_int_equal(ops->read_meter(&s, &m), LADE_OK);
    assert_int_equal(m.current_ma[0], 8000);

    ev.self_limit_ma = 0;
    ev.overdraw_ma = 5000;
    lade_evse_sim_plug(&s, &ev);
    charge_on(&s, 16000, 3);
    assert_int_equal(ops->read_meter(&s, &m), LADE_OK);
    assert_int_equal(m.current_ma[0], 21000);
    assert_int_equal(m.current_ma[2], 21000);
    assert_int_equal(ops->set_offer_ma(&s, 0), LADE_OK);
    assert_int_equal(ops->read_meter(&s, &m), LADE_OK);
    assert_int_equal(m.current_ma[0], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_duty),
        cmocka_unit_test(test_pp),
        cmocka_unit_test(test_profiles),
        cmocka_unit_test(test_bad_ops),
        cmocka_unit_test(test_energy_exact),
        cmocka_unit_test(test_taper_and_full),
        cmocka_unit_test(test_underdraw_overdraw),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
