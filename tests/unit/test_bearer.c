/* Unit tests of the bearer manager (include/lade/bearer.h): priority, usability (R1 signal and
 * channel), no flapping (R13: holds, dwell, penalties), the watchdog's escalation (R11). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lade/bearer.h"

#define S(x) ((uint64_t)(x)*1000)

struct rig {
    struct lade_bearer b;
    struct lade_bearer_out out;
    uint64_t now;
};

static void rig_init(struct rig *r, bool wired, bool wifi, bool lte)
{
    struct lade_bearer_config c;
    lade_bearer_config_default(&c);
    c.present[LADE_BEARER_WIRED] = wired;
    c.present[LADE_BEARER_WIFI] = wifi;
    c.present[LADE_BEARER_LTE] = lte;
    r->now = S(1000);
    assert_int_equal(lade_bearer_init(&r->b, &c, r->now), LADE_OK);
}

static void link(struct rig *r, int kind, bool up, int16_t dbm, uint16_t channel)
{
    struct lade_bearer_link_state ls = {.up = up, .signal = dbm, .channel = channel};
    assert_int_equal(lade_bearer_link(&r->b, kind, &ls, r->now), LADE_OK);
}

static void step(struct rig *r)
{
    lade_bearer_step(&r->b, r->now, &r->out);
    assert_true(r->out.next_step_ms > r->now);
}

/* Steps at every deadline until `until` (as the shell does). */
static void run_until(struct rig *r, uint64_t until)
{
    for (int guard = 0; guard < 100000; guard++) {
        step(r);
        if (r->now >= until)
            return;
        r->now = r->out.next_step_ms < until ? r->out.next_step_ms : until;
    }
    fail_msg("no progress");
}

static bool has(const struct rig *r, enum lade_bearer_action_kind k, int bearer)
{
    for (uint32_t i = 0; i < r->out.n_actions; i++)
        if (r->out.actions[i].kind == k && r->out.actions[i].bearer == bearer)
            return true;
    return false;
}

static void test_priority_and_usability(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, true, true, true);
    step(&r);
    assert_int_equal(r.out.active, LADE_BEARER_NONE);
    /* Only LTE up: it is used. */
    link(&r, LADE_BEARER_LTE, true, -100, 0);
    step(&r);
    assert_int_equal(r.out.active, LADE_BEARER_LTE);
    assert_true(has(&r, LADE_BEARER_ACT_BRING_UP, LADE_BEARER_LTE));
    /* WiFi at -80 dBm (below R1's -75), or on channel 13, or 5 GHz: not usable. */
    link(&r, LADE_BEARER_WIFI, true, -80, 6);
    assert_int_equal(lade_bearer_usable(&r.b, LADE_BEARER_WIFI, r.now), LADE_BEARER_WEAK);
    link(&r, LADE_BEARER_WIFI, true, -60, 13);
    assert_int_equal(lade_bearer_usable(&r.b, LADE_BEARER_WIFI, r.now), LADE_BEARER_BAD_CHANNEL);
    struct lade_bearer_link_state five = {.up = true, .signal = -50, .freq_mhz = 5180};
    assert_int_equal(lade_bearer_link(&r.b, LADE_BEARER_WIFI, &five, r.now), LADE_OK);
    assert_int_equal(lade_bearer_usable(&r.b, LADE_BEARER_WIFI, r.now), LADE_BEARER_BAD_CHANNEL);
    /* Just above the minimum is not enough for a WiFi not in use (3 dB hysteresis). */
    link(&r, LADE_BEARER_WIFI, true, -74, 6);
    assert_int_equal(lade_bearer_usable(&r.b, LADE_BEARER_WIFI, r.now), LADE_BEARER_WEAK);
    link(&r, LADE_BEARER_WIFI, true, -65, 6);
    assert_int_equal(lade_bearer_usable(&r.b, LADE_BEARER_WIFI, r.now), LADE_BEARER_OK);
    assert_int_equal(lade_bearer_usable(&r.b, LADE_BEARER_WIRED, r.now), LADE_BEARER_LINK_DOWN);
    assert_string_equal(lade_bearer_name(LADE_BEARER_LTE), "lte");
}

static void test_upgrade_waits_for_holds(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, true, true, false);
    link(&r, LADE_BEARER_WIFI, true, -60, 1);
    step(&r);
    assert_int_equal(r.out.active, LADE_BEARER_WIFI);
    uint64_t chosen = r.now;
    lade_bearer_cloud(&r.b, true, r.now);
    /* PLC comes up: the upgrade waits for 60 s of PLC and 5 min on WiFi (min dwell). */
    r.now += S(10);
    link(&r, LADE_BEARER_WIRED, true, LADE_BEARER_SIGNAL_UNKNOWN, 0);
    run_until(&r, chosen + S(299));
    assert_int_equal(r.out.active, LADE_BEARER_WIFI);
    run_until(&r, chosen + S(300));
    assert_int_equal(r.out.active, LADE_BEARER_WIRED);
    assert_true(has(&r, LADE_BEARER_ACT_TAKE_DOWN, LADE_BEARER_WIFI));
    assert_true(has(&r, LADE_BEARER_ACT_BRING_UP, LADE_BEARER_WIRED));
}

static void test_short_drop_does_not_switch(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, true, true, false);
    link(&r, LADE_BEARER_WIRED, true, LADE_BEARER_SIGNAL_UNKNOWN, 0);
    link(&r, LADE_BEARER_WIFI, true, -60, 11);
    step(&r);
    assert_int_equal(r.out.active, LADE_BEARER_WIRED);
    lade_bearer_cloud(&r.b, true, r.now);
    /* A 5 s carrier drop (below down_hold_ms 10 s): still wired, no actions. */
    link(&r, LADE_BEARER_WIRED, false, LADE_BEARER_SIGNAL_UNKNOWN, 0);
    run_until(&r, r.now + S(5));
    link(&r, LADE_BEARER_WIRED, true, LADE_BEARER_SIGNAL_UNKNOWN, 0);
    run_until(&r, r.now + S(60));
    assert_int_equal(r.out.active, LADE_BEARER_WIRED);
    assert_int_equal(r.b.switches, 1);
    /* A lasting drop: WiFi after 10 s. */
    link(&r, LADE_BEARER_WIRED, false, LADE_BEARER_SIGNAL_UNKNOWN, 0);
    uint64_t t0 = r.now;
    run_until(&r, t0 + S(9));
    assert_int_equal(r.out.active, LADE_BEARER_WIRED);
    run_until(&r, t0 + S(10));
    assert_int_equal(r.out.active, LADE_BEARER_WIFI);
}

static void test_flapping_bearer_gets_growing_penalty(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, true, false, true);
    link(&r, LADE_BEARER_LTE, true, -90, 0);
    uint32_t switches_to_wired = 0;
    /* PLC that goes down 30 s after every time it is chosen (two PLC networks fighting,
     * R13): each failure soon after being chosen doubles its penalty, so over an hour it is
     * chosen only a handful of times instead of every minute. */
    uint64_t end = r.now + S(3600);
    link(&r, LADE_BEARER_WIRED, true, LADE_BEARER_SIGNAL_UNKNOWN, 0);
    while (r.now < end) {
        step(&r);
        if (r.out.n_actions) {
            /* A switch drops the cloud link; it comes back over the new bearer 2 s later. */
            lade_bearer_cloud(&r.b, false, r.now);
            r.now += S(2);
            lade_bearer_cloud(&r.b, true, r.now);
        }
        if (has(&r, LADE_BEARER_ACT_BRING_UP, LADE_BEARER_WIRED)) {
            switches_to_wired++;
            r.now += S(30);
            link(&r, LADE_BEARER_WIRED, false, LADE_BEARER_SIGNAL_UNKNOWN, 0);
            lade_bearer_cloud(&r.b, false, r.now);
            run_until(&r, r.now + S(15)); /* down_hold: it is left, LTE taken */
            assert_int_equal(r.out.active, LADE_BEARER_LTE);
            lade_bearer_cloud(&r.b, true, r.now);
            link(&r, LADE_BEARER_WIRED, true, LADE_BEARER_SIGNAL_UNKNOWN, 0);
            continue;
        }
        r.now = r.out.next_step_ms;
    }
    print_message("PLC chosen %u times in an hour\n", switches_to_wired);
    assert_true(switches_to_wired >= 2);
    assert_true(switches_to_wired <= 8);
    assert_true(r.b.slot[LADE_BEARER_WIRED].penalty_ms > r.b.cfg.penalty_ms * 8);
}

static void test_watchdog_escalates(void **state)
{
    (void)state;
    struct rig r;
    rig_init(&r, true, true, false);
    link(&r, LADE_BEARER_WIRED, true, LADE_BEARER_SIGNAL_UNKNOWN, 0);
    link(&r, LADE_BEARER_WIFI, true, -60, 6);
    step(&r);
    assert_int_equal(r.out.active, LADE_BEARER_WIRED);
    uint64_t t0 = r.now; /* the cloud has been down since init (t0) */
    /* 2 min: reconnect the cloud link (same bearer). */
    run_until(&r, t0 + S(119));
    assert_int_equal(r.b.wd_stage, 0);
    run_until(&r, t0 + S(120));
    assert_true(has(&r, LADE_BEARER_ACT_RECONNECT, LADE_BEARER_NONE));
    /* 5 min: reset the wired bearer, try WiFi. */
    run_until(&r, t0 + S(300));
    assert_true(has(&r, LADE_BEARER_ACT_RESET, LADE_BEARER_WIRED));
    assert_int_equal(r.out.active, LADE_BEARER_WIFI);
    assert_int_equal(lade_bearer_usable(&r.b, LADE_BEARER_WIRED, r.now), LADE_BEARER_CLOUD_FAILED);
    /* WiFi's own watchdog, then (30 min of no cloud at all) a restart request. */
    run_until(&r, t0 + S(300 + 300));
    assert_true(has(&r, LADE_BEARER_ACT_RESET, LADE_BEARER_WIFI));
    int restarts = 0;
    while (r.now < t0 + S(3600)) {
        r.now = r.out.next_step_ms;
        step(&r);
        restarts += has(&r, LADE_BEARER_ACT_RESTART, LADE_BEARER_NONE);
        if (restarts == 0)
            assert_true(r.now < t0 + S(1800) + 1);
    }
    assert_int_equal(restarts, 1); /* asked once per outage */
    /* The cloud comes back: the watchdog stands down. */
    lade_bearer_cloud(&r.b, true, r.now);
    run_until(&r, r.now + S(3600));
    assert_int_equal(r.b.wd_stage, 0);
    assert_int_not_equal(r.out.active, LADE_BEARER_NONE);
}

static void test_config_checked(void **state)
{
    (void)state;
    struct lade_bearer b;
    struct lade_bearer_config c;
    lade_bearer_config_default(&c);
    c.order[1] = LADE_BEARER_WIRED; /* duplicate */
    assert_int_equal(lade_bearer_init(&b, &c, 0), LADE_ERR_CONFIG);
    lade_bearer_config_default(&c);
    c.wd_reset_ms = c.wd_reconnect_ms; /* stages out of order */
    assert_int_equal(lade_bearer_init(&b, &c, 0), LADE_ERR_CONFIG);
    lade_bearer_config_default(&c);
    c.order[2] = LADE_BEARER_NONE; /* LTE not used at all */
    c.present[LADE_BEARER_LTE] = true;
    assert_int_equal(lade_bearer_init(&b, &c, 0), LADE_OK);
    struct lade_bearer_link_state ls = {.up = true, .signal = -80};
    assert_int_equal(lade_bearer_link(&b, LADE_BEARER_LTE, &ls, 0), LADE_OK);
    assert_int_equal(lade_bearer_usable(&b, LADE_BEARER_LTE, 0), LADE_BEARER_ABSENT);
    assert_int_equal(lade_bearer_link(&b, 7, &ls, 0), LADE_ERR_INVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_priority_and_usability),
        cmocka_unit_test(test_upgrade_waits_for_holds),
        cmocka_unit_test(test_short_drop_does_not_switch),
        cmocka_unit_test(test_flapping_bearer_gets_growing_penalty),
        cmocka_unit_test(test_watchdog_escalates),
        cmocka_unit_test(test_config_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
