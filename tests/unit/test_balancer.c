/* Unit tests for the balancer (include/lade/balancer.h, docs/balancer.md).
 *
 * 1. Worked examples with exact setpoints (a rig whose chargers answer every setpoint at once).
 * 2. Sequencing: decrease first, lost replies, resends, lowered limits, offline chargers.
 * 3. Fairness, utilisation and rotation on fixed scenarios.
 * 4. A property test: random installations driven through random events by a simulated world
 *    that knows what every charger really may be drawing; invariants checked after every event.
 *
 *   LADE_BALANCER_SEED=<n>    replay one run of the property test (the seed is printed)
 *   LADE_BALANCER_EVENTS=<n>  events in the property test (default 1 200 000)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lade/balancer.h"

#define A(x) ((int32_t)((x)*1000))

/* ---- a rig: chargers that apply and confirm every setpoint at once ---- */

#define RIG_MAX 16

struct rig {
    struct lade_balancer *bal;
    struct lade_bal_config cfg;
    struct lade_bal_node_config nodes[RIG_MAX];
    struct lade_bal_charger_config ch[RIG_MAX];
    uint64_t now;
    struct lade_bal_step_out out;
    bool auto_ack;
    bool follow; /* measured = what it is offered (the car takes everything) */
    int32_t applied_ma[RIG_MAX];
    uint8_t applied_ph[RIG_MAX];
    uint32_t n_sent[RIG_MAX];
    uint32_t last_seq[RIG_MAX];
    int32_t car_limit_ma[RIG_MAX]; /* 0 = takes everything */
    uint8_t car_phases[RIG_MAX];   /* 0 = as offered */
};

static struct lade_bal_charger_config charger(uint32_t node, int32_t max_ma, uint8_t phases,
                                              uint8_t r0, uint8_t r1, uint8_t r2)
{
    struct lade_bal_charger_config c = {
        .node = node,
        .max_ma = max_ma,
        .min_ma = A(6),
        .max_phases = phases,
        .rotation = {r0, r1, r2},
        .priority = 0,
        .fallback_ma = 0,
        .fallback_phases = 1,
        .link_loss_deadline_ms = 100000,
    };
    return c;
}

static struct lade_bal_node_config node(int32_t parent, int32_t l1, int32_t l2, int32_t l3)
{
    struct lade_bal_node_config n = {parent, {l1, l2, l3}};
    return n;
}

static void rig_create(struct rig *r, enum lade_bal_network net, uint32_t nn, uint32_t nc)
{
    r->cfg.network = net;
    r->cfg.nodes = r->nodes;
    r->cfg.n_nodes = nn;
    r->cfg.chargers = r->ch;
    r->cfg.n_chargers = nc;
    if (r->cfg.params.step_ma == 0)
        lade_balancer_params_default(&r->cfg.params);
    r->now = 1000000;
    struct lade_bal_config_error err;
    assert_int_equal(lade_balancer_create(&r->cfg, r->now, &r->bal, &err), LADE_OK);
    r->auto_ack = true;
    r->follow = true;
    for (uint32_t i = 0; i < nc; i++) {
        r->applied_ph[i] = r->ch[i].max_phases;
        assert_int_equal(lade_balancer_charger_assume(r->bal, i, 0, r->ch[i].max_phases), LADE_OK);
        assert_int_equal(lade_balancer_charger_online(r->bal, i, true, r->now), LADE_OK);
    }
}

static void rig_destroy(struct rig *r)
{
    lade_balancer_destroy(r->bal);
    r->bal = NULL;
}

/* What the car on charger i draws per terminal with what it is offered. */
static void rig_draw(const struct rig *r, uint32_t i, int32_t out[3])
{
    int32_t offer = r->applied_ma[i] >= r->ch[i].min_ma ? r->applied_ma[i] : 0;
    if (r->car_limit_ma[i] && offer > r->car_limit_ma[i])
        offer = r->car_limit_ma[i];
    uint8_t ph = r->applied_ph[i];
    uint8_t car = r->car_phases[i] ? r->car_phases[i] : 3;
    for (int t = 0; t < 3; t++) {
        bool on = ph == 3 || t == 0 || (r->cfg.network == LADE_BAL_IT && t == 1);
        bool uses = car == 3 || t == 0 || (r->cfg.network == LADE_BAL_IT && t == 1);
        out[t] = on && uses ? offer : 0;
    }
}

static void rig_report(struct rig *r, uint32_t i)
{
    int32_t m[3];
    rig_draw(r, i, m);
    assert_int_equal(lade_balancer_charger_measured(r->bal, i, m, r->now), LADE_OK);
}

static void rig_demand(struct rig *r, uint32_t i, bool demand)
{
    assert_int_equal(lade_balancer_charger_demand(r->bal, i, demand, r->now), LADE_OK);
}

/* One step; every setpoint is applied and (auto_ack) confirmed at once. Returns how many. */
static uint32_t rig_step(struct rig *r)
{
    assert_int_equal(lade_balancer_step(r->bal, r->now, &r->out), LADE_OK);
    assert_true(r->out.next_step_ms > r->now);
    for (uint32_t k = 0; k < r->out.n_setpoints; k++) {
        const struct lade_bal_setpoint *s = &r->out.setpoints[k];
        assert_true(s->charger < r->cfg.n_chargers);
        const struct lade_bal_charger_config *c = &r->ch[s->charger];
        assert_true(s->current_ma == 0 ||
                    (s->current_ma >= c->min_ma && s->current_ma <= c->max_ma));
        assert_true(s->phases == 1 || s->phases == 3);
        assert_true(s->phases <= c->max_phases);
        r->n_sent[s->charger]++;
        r->last_seq[s->charger] = s->seq;
        if (r->auto_ack) {
            r->applied_ma[s->charger] = s->current_ma;
            r->applied_ph[s->charger] = s->phases;
            assert_int_equal(lade_balancer_ack(r->bal, s->charger, s->seq, r->now), LADE_OK);
        }
    }
    return r->out.n_setpoints;
}

/* Runs the event loop for ms: steps until quiet, reports measurements (follow), and moves to
 * the next time the balancer asked for (at most 1 s later, as a telemetry period). */
static void rig_run(struct rig *r, uint64_t ms)
{
    uint64_t end = r->now + ms;
    for (;;) {
        for (int k = 0; k < 10 && rig_step(r); k++)
            ;
        if (r->follow)
            for (uint32_t i = 0; i < r->cfg.n_chargers; i++)
                rig_report(r, i);
        if (r->now >= end)
            break;
        uint64_t t = r->out.next_step_ms;
        if (t > r->now + 1000)
            t = r->now + 1000;
        r->now = t < end ? t : end;
    }
}

static struct lade_bal_charger_info info(struct rig *r, uint32_t i)
{
    struct lade_bal_charger_info in;
    assert_int_equal(lade_balancer_charger_info(r->bal, i, r->now, &in), LADE_OK);
    return in;
}

static void expect(struct rig *r, uint32_t i, int32_t ma, uint8_t ph)
{
    if (r->applied_ma[i] != ma || (ma && r->applied_ph[i] != ph))
        fail_msg("charger %u: applied %d mA on %u phases, expected %d mA on %u", i,
                 (int)r->applied_ma[i], (unsigned)r->applied_ph[i], (int)ma, (unsigned)ph);
}

/* Σ might-draw below every node <= its limit, computed from the public accounting. */
static void assert_invariant(struct rig *r)
{
    int64_t sum[RIG_MAX][3] = {{0}};
    for (uint32_t i = 0; i < r->cfg.n_chargers; i++) {
        int32_t m[3];
        assert_int_equal(lade_balancer_might_draw(r->bal, i, r->now, m), LADE_OK);
        for (int32_t n = (int32_t)r->ch[i].node; n >= 0; n = r->nodes[n].parent)
            for (int p = 0; p < 3; p++)
                sum[n][p] += m[p];
    }
    for (uint32_t n = 0; n < r->cfg.n_nodes; n++) {
        int32_t lim[3];
        assert_int_equal(lade_balancer_node_limit(r->bal, n, lim), LADE_OK);
        for (int p = 0; p < 3; p++)
            if (sum[n][p] > lim[p])
                fail_msg("node %u phase %d: might draw %lld > limit %d", n, p, (long long)sum[n][p],
                         (int)lim[p]);
    }
}

/* ---- 1. worked examples ---- */

/* docs/balancer.md, "Worked example": 40 A main fuse, two 32 A circuits; circuit 1 has two
 * 3-phase chargers, circuit 2 two 1-phase chargers whose L1 lands on supply L1 and L2. */
static void test_example_tn(void **state)
{
    (void)state;
    struct rig r = {0};
    r.nodes[0] = node(-1, A(40), A(40), A(40));
    r.nodes[1] = node(0, A(32), A(32), A(32));
    r.nodes[2] = node(0, A(32), A(32), A(32));
    r.ch[0] = charger(1, A(32), 3, 0, 1, 2);
    r.ch[1] = charger(1, A(32), 3, 0, 1, 2);
    r.ch[2] = charger(2, A(32), 1, 0, 1, 2);
    r.ch[3] = charger(2, A(32), 1, 1, 2, 0);
    rig_create(&r, LADE_BAL_TN, 3, 4);
    for (uint32_t i = 0; i < 4; i++)
        rig_demand(&r, i, true);
    /* Nothing before the increase hold (a new car's first start waits too). */
    assert_int_equal(rig_step(&r), 0);
    assert_int_equal(info(&r, 0).target_ma, A(13.3));
    r.now += 10000;
    assert_int_equal(rig_step(&r), 4);
    /* Supply L1 carries chargers 0, 1, 2 and L2 carries 0, 1, 3: all rise together to 13.3 A
     * (3 × 13.3 = 39.9 A); 0.1 A is left on L1 and on L2, less than a step for each of three:
     * those rising there stop. L1 is looked at first: 0, 1, 2 stop; then L2 has only 3 rising,
     * which takes the 0.1 A; then one more step for whoever still fits, in admission order:
     * 0 and 1 need L2 (full), 2 takes L1's 0.1 A. L3: 26.6 A. */
    expect(&r, 0, A(13.3), 3);
    expect(&r, 1, A(13.3), 3);
    expect(&r, 2, A(13.4), 1);
    expect(&r, 3, A(13.4), 1);
    assert_invariant(&r);
    /* Charger 3's car leaves: L2 is freed; 0, 1, 2 still share L1 (13.3 A each), so nothing
     * rises but charger 3 goes to 0 at once. */
    rig_demand(&r, 3, false);
    assert_int_equal(rig_step(&r), 1);
    expect(&r, 3, 0, 1);
    /* Charger 2's car leaves too: only the 3-phase pair on circuit 1 (32 A) and the main fuse
     * (40 A) remain: 16 A each after the hold. */
    rig_demand(&r, 2, false);
    assert_int_equal(rig_step(&r), 1);
    expect(&r, 2, 0, 1);
    assert_int_equal(rig_step(&r), 0);
    r.now += 10000;
    rig_step(&r);
    expect(&r, 0, A(16), 3);
    expect(&r, 1, A(16), 3);
    assert_invariant(&r);
    rig_destroy(&r);
}

/* IT: a 1-phase charger loads two supply phases. The same tree in TN and IT, main fuse with
 * 32 A on L3: in TN the 1-phase chargers (L1, L2) leave L3 to the 3-phase one, in IT both
 * 1-phase chargers load L3 as well. */
static void test_example_it(void **state)
{
    (void)state;
    for (int net = 0; net < 2; net++) {
        struct rig r = {0};
        r.nodes[0] = node(-1, A(40), A(40), A(32));
        r.ch[0] = charger(0, A(32), 1, 0, 2, 1); /* L1 -> supply L1, L2 -> supply L3 */
        r.ch[1] = charger(0, A(32), 1, 1, 2, 0); /* L1 -> supply L2, L2 -> supply L3 */
        r.ch[2] = charger(0, A(32), 3, 0, 1, 2);
        rig_create(&r, net ? LADE_BAL_IT : LADE_BAL_TN, 1, 3);
        for (uint32_t i = 0; i < 3; i++)
            rig_demand(&r, i, true);
        rig_run(&r, 30000);
        if (net == LADE_BAL_TN) {
            /* L1: 0 and 2, L2: 1 and 2, L3: 2 alone: 20 A each on L1/L2. */
            expect(&r, 0, A(20), 1);
            expect(&r, 1, A(20), 1);
            expect(&r, 2, A(20), 3);
        } else {
            /* L3 carries all three: 3 × 10.6 = 31.8 A; 0.2 A left: 0 and 1 get 0.1 A more
             * (charger 2 would need L3 too, which is then full). */
            expect(&r, 0, A(10.7), 1);
            expect(&r, 1, A(10.7), 1);
            expect(&r, 2, A(10.6), 3);
            int32_t m[3];
            assert_int_equal(lade_balancer_might_draw(r.bal, 0, r.now, m), LADE_OK);
            assert_int_equal(m[0], A(10.7));
            assert_int_equal(m[1], 0);
            assert_int_equal(m[2], A(10.7));
        }
        assert_invariant(&r);
        rig_destroy(&r);
    }
}

/* Mixed cars on one 3-phase circuit: a 1-phase car on a 3-phase charger is detected from its
 * measured currents and moved to a 1-phase setpoint, which frees L2/L3 for the others. */
static void test_example_detect_1phase(void **state)
{
    (void)state;
    struct rig r = {0};
    r.nodes[0] = node(-1, A(32), A(32), A(32));
    r.ch[0] = charger(0, A(32), 3, 0, 1, 2);
    r.ch[1] = charger(0, A(32), 3, 0, 1, 2);
    r.car_phases[0] = 1;
    rig_create(&r, LADE_BAL_TN, 1, 2);
    rig_demand(&r, 0, true);
    rig_demand(&r, 1, true);
    rig_run(&r, 15000);
    expect(&r, 0, A(16), 3);
    expect(&r, 1, A(16), 3);
    /* After settle_ms the measurement shows L1 only: charger 0 -> 1 phase (a decrease, at
     * once); charger 1 keeps 16 A on L1 but could take 32 A on L2/L3 — max-min per phase: L1 is
     * shared 16/16, so nothing else changes. */
    rig_run(&r, 30000);
    assert_int_equal(info(&r, 0).car_phases, 1);
    expect(&r, 0, A(16), 1);
    expect(&r, 1, A(16), 3);
    /* Now charger 0's car limits itself to 8 A: reclaimed after reclaim_delay (cap 8 + 2 A
     * headroom = 10 A), the 6 A go to charger 1 on all three phases. */
    r.car_limit_ma[0] = A(8);
    rig_run(&r, 90000);
    assert_int_equal(info(&r, 0).reclaim_cap_ma, A(10));
    expect(&r, 0, A(10), 1);
    expect(&r, 1, A(22), 3);
    assert_invariant(&r);
    /* The car ramps up again: it takes all of its 10 A (>= offer - 1 A), the cap goes, and the
     * split returns to 16/16 — charger 1 decreases first. */
    r.car_limit_ma[0] = 0;
    rig_run(&r, 30000);
    assert_int_equal(info(&r, 0).reclaim_cap_ma, 0);
    expect(&r, 0, A(16), 1);
    expect(&r, 1, A(16), 3);
    assert_invariant(&r);
    rig_destroy(&r);
}

/* Priorities: the higher one gets its minimum first and fills first. */
static void test_example_priority(void **state)
{
    (void)state;
    struct rig r = {0};
    r.nodes[0] = node(-1, A(16), A(16), A(16));
    r.ch[0] = charger(0, A(16), 3, 0, 1, 2);
    r.ch[1] = charger(0, A(16), 3, 0, 1, 2);
    r.ch[2] = charger(0, A(16), 3, 0, 1, 2);
    r.ch[2].priority = 5;
    rig_create(&r, LADE_BAL_TN, 1, 3);
    for (uint32_t i = 0; i < 3; i++)
        rig_demand(&r, i, true);
    rig_run(&r, 30000);
    /* 16 A: minimums in priority order: 2 and 0 get 6 A, 1 does not fit and waits; the rest
     * goes to the higher priority first: charger 2 rises to 10 A. */
    expect(&r, 2, A(10), 3);
    expect(&r, 0, A(6), 3);
    expect(&r, 1, 0, 3);
    assert_int_equal(info(&r, 1).run, LADE_BAL_WAITING);
    rig_destroy(&r);
}

/* An idle charger's fallback stays reserved: on a site-wide outage every charger falls back at
 * its own deadline, so it could draw its fallback while the others still hold their setpoints. */
static void test_example_fallback_reserved(void **state)
{
    (void)state;
    struct rig r = {0};
    r.nodes[0] = node(-1, A(32), A(32), A(32));
    r.ch[0] = charger(0, A(32), 3, 0, 1, 2);
    r.ch[1] = charger(0, A(32), 3, 0, 1, 2);
    r.ch[1].fallback_ma = A(10);
    r.ch[1].fallback_phases = 1;
    rig_create(&r, LADE_BAL_TN, 1, 2);
    rig_demand(&r, 0, true);
    rig_run(&r, 30000);
    /* L1 keeps 10 A for charger 1's fallback: charger 0 gets 22 A. */
    expect(&r, 0, A(22), 3);
    /* Charger 1 gets a car: max-min with the fallback free for charger 1 up to 10 A: on L1
     * charger 0 + max(charger 1, 10 A) <= 32 -> 16 / 16. */
    rig_demand(&r, 1, true);
    rig_run(&r, 30000);
    expect(&r, 0, A(16), 3);
    expect(&r, 1, A(16), 3);
    assert_invariant(&r);
    rig_destroy(&r);
}

static void test_config_check(void **state)
{
    (void)state;
    struct lade_bal_node_config nodes[3] = {
        node(-1, A(40), A(40), A(40)), node(0, A(32), A(32), A(16)), node(0, A(32), A(32), A(32))};
    struct lade_bal_charger_config ch[3] = {charger(1, A(16), 3, 0, 1, 2),
                                            charger(1, A(16), 3, 2, 0, 1),
                                            charger(2, A(16), 1, 0, 1, 2)};
    struct lade_bal_config cfg = {LADE_BAL_TN, nodes, 3, ch, 3, {0}};
    lade_balancer_params_default(&cfg.params);
    struct lade_bal_config_error err;
    char buf[160];
    assert_int_equal(lade_balancer_check_config(&cfg, &err), LADE_OK);
    /* Fallbacks 10 A on 1 phase: charger 0 lands on L1, charger 1 (L1 -> supply L3) on L3;
     * then charger 1 on 3 phases: circuit 1 L3 carries 10 + 10 > 16. */
    ch[0].fallback_ma = A(10);
    ch[1].fallback_ma = A(10);
    assert_int_equal(lade_balancer_check_config(&cfg, &err), LADE_OK);
    ch[1].fallback_phases = 3;
    ch[0].fallback_phases = 3;
    assert_int_equal(lade_balancer_check_config(&cfg, &err), LADE_ERR_CONFIG);
    assert_int_equal(err.problem, LADE_BAL_CFG_FALLBACK_SUM);
    assert_int_equal(err.node, 1);
    assert_int_equal(err.phase, 2);
    assert_int_equal(err.value_ma, A(20));
    assert_int_equal(err.limit_ma, A(16));
    lade_balancer_config_error_format(&err, buf, sizeof buf);
    assert_string_equal(buf, "node 1 phase L3: offline fallback currents sum to 20000 mA, above "
                             "its limit of 16000 mA");
    /* A fallback below the charger's min pauses it: counts 0. */
    ch[1].fallback_ma = A(5);
    assert_int_equal(lade_balancer_check_config(&cfg, &err), LADE_OK);
    /* IT: a 1-phase fallback counts on two supply phases. */
    ch[1].fallback_ma = A(10);
    ch[0].fallback_phases = 1;
    ch[1].fallback_phases = 1; /* L1 -> L3, L2 -> L1 */
    nodes[1].limit_ma[0] = A(16);
    nodes[1].limit_ma[2] = A(32);
    cfg.network = LADE_BAL_IT;
    assert_int_equal(lade_balancer_check_config(&cfg, &err), LADE_ERR_CONFIG);
    assert_int_equal(err.node, 1);
    assert_int_equal(err.phase, 0);
    cfg.network = LADE_BAL_TN;
    assert_int_equal(lade_balancer_check_config(&cfg, &err), LADE_OK);
    /* Field checks. */
    ch[2].max_ma = A(64);
    assert_int_equal(lade_balancer_check_config(&cfg, &err), LADE_ERR_CONFIG);
    assert_int_equal(err.problem, LADE_BAL_CFG_MAX);
    assert_int_equal(err.charger, 2);
    ch[2].max_ma = A(16);
    ch[2].min_ma = A(5);
    assert_int_equal(lade_balancer_check_config(&cfg, &err), LADE_ERR_CONFIG);
    assert_int_equal(err.problem, LADE_BAL_CFG_MIN);
    ch[2].min_ma = A(6);
    ch[2].rotation[1] = 0;
    assert_int_equal(lade_balancer_check_config(&cfg, &err), LADE_ERR_CONFIG);
    assert_int_equal(err.problem, LADE_BAL_CFG_ROTATION);
    ch[2].rotation[1] = 1;
    nodes[2].parent = 2;
    assert_int_equal(lade_balancer_check_config(&cfg, &err), LADE_ERR_CONFIG);
    assert_int_equal(err.problem, LADE_BAL_CFG_PARENT);
    assert_int_equal(err.node, 2);
    nodes[2].parent = 0;
    ch[2].fallback_ma = A(17);
    assert_int_equal(lade_balancer_check_config(&cfg, &err), LADE_ERR_CONFIG);
    assert_int_equal(err.problem, LADE_BAL_CFG_FALLBACK);
    ch[2].fallback_ma = 0;
    /* set_limit refuses a limit the fallbacks below would not fit. */
    struct lade_balancer *bal;
    assert_int_equal(lade_balancer_create(&cfg, 0, &bal, &err), LADE_OK);
    int32_t lim[3] = {A(9), A(40), A(40)};
    assert_int_equal(lade_balancer_set_limit(bal, 0, lim, &err), LADE_ERR_CONFIG);
    assert_int_equal(err.problem, LADE_BAL_CFG_FALLBACK_SUM);
    assert_int_equal(err.node, 0);
    assert_int_equal(err.phase, 0);
    lim[0] = A(10);
    assert_int_equal(lade_balancer_set_limit(bal, 0, lim, &err), LADE_OK);
    lim[0] = -1;
    assert_int_equal(lade_balancer_set_limit(bal, 0, lim, &err), LADE_ERR_INVAL);
    assert_int_equal(lade_balancer_charger_online(bal, 3, true, 0), LADE_ERR_INVAL);
    lade_balancer_destroy(bal);
}

/* ---- 2. sequencing ---- */

/* A second car arrives on a full circuit: the first charger's decrease goes out at once, the
 * new car starts only once the decrease is confirmed (and the hold passed). */
static void test_decrease_first(void **state)
{
    (void)state;
    struct rig r = {0};
    r.nodes[0] = node(-1, A(32), A(32), A(32));
    r.ch[0] = charger(0, A(32), 3, 0, 1, 2);
    r.ch[1] = charger(0, A(32), 3, 0, 1, 2);
    lade_balancer_params_default(&r.cfg.params);
    r.cfg.params.ack_timeout_ms = 30000;
    rig_create(&r, LADE_BAL_TN, 1, 2);
    rig_demand(&r, 0, true);
    rig_run(&r, 20000);
    expect(&r, 0, A(32), 3);
    r.auto_ack = false;
    rig_demand(&r, 1, true);
    assert_int_equal(rig_step(&r), 1);
    assert_int_equal(r.out.setpoints[0].charger, 0);
    assert_int_equal(r.out.setpoints[0].current_ma, A(16));
    uint32_t seq0 = r.out.setpoints[0].seq;
    /* Unconfirmed: charger 0 still counts 32 A; the hold passes, charger 1 still waits. */
    r.now += 10000;
    assert_int_equal(rig_step(&r), 0);
    assert_true(r.out.n_held >= 1);
    int32_t m[3];
    assert_int_equal(lade_balancer_might_draw(r.bal, 0, r.now, m), LADE_OK);
    assert_int_equal(m[0], A(32));
    /* The reply; and the charger reports its car now draws 16 A: charger 1 starts. (Without the
     * report, 5 s after the reply: IEC 61851 gives the car that long to follow.) */
    assert_int_equal(lade_balancer_ack(r.bal, 0, seq0, r.now), LADE_OK);
    assert_int_equal(rig_step(&r), 0);
    r.now += 1000;
    r.applied_ma[0] = A(16);
    rig_report(&r, 0);
    assert_int_equal(rig_step(&r), 1);
    assert_int_equal(r.out.setpoints[0].charger, 1);
    assert_int_equal(r.out.setpoints[0].current_ma, A(16));
    assert_false(r.out.setpoints[0].resend);
    rig_destroy(&r);
}

/* A lost reply: the unconfirmed setpoint keeps counting max(old, new) and is sent again after
 * ack_timeout_ms (flagged resend), with back-off. A late reply to the first copy counts. */
static void test_lost_ack_resend(void **state)
{
    (void)state;
    struct rig r = {0};
    r.nodes[0] = node(-1, A(32), A(32), A(32));
    r.ch[0] = charger(0, A(32), 3, 0, 1, 2);
    r.ch[1] = charger(0, A(32), 3, 0, 1, 2);
    rig_create(&r, LADE_BAL_TN, 1, 2);
    rig_demand(&r, 0, true);
    rig_run(&r, 20000);
    r.auto_ack = false;
    rig_demand(&r, 1, true);
    assert_int_equal(rig_step(&r), 1);
    uint32_t first = r.out.setpoints[0].seq;
    uint64_t t0 = r.now;
    r.now = t0 + 9999;
    assert_int_equal(rig_step(&r), 0);
    assert_int_equal(r.out.next_step_ms, t0 + 10000);
    r.now = t0 + 10000;
    assert_int_equal(rig_step(&r), 1);
    assert_true(r.out.setpoints[0].resend);
    assert_int_equal(r.out.setpoints[0].current_ma, A(16));
    assert_true(r.out.setpoints[0].seq > first);
    /* back-off: the next resend 20 s later */
    r.now = t0 + 29999;
    assert_int_equal(rig_step(&r), 0);
    r.now = t0 + 30000;
    assert_int_equal(rig_step(&r), 1);
    assert_true(r.out.setpoints[0].resend);
    /* The late reply to the first copy: it is applied; the newer copies are the same value. */
    assert_int_equal(lade_balancer_ack(r.bal, 0, first, r.now), LADE_OK);
    int32_t m[3];
    assert_int_equal(lade_balancer_might_draw(r.bal, 0, r.now, m), LADE_OK);
    assert_int_equal(m[0], A(32)); /* the 32 A envelope of older copies is not split */
    assert_int_equal(lade_balancer_ack(r.bal, 0, r.last_seq[0], r.now), LADE_OK);
    assert_int_equal(lade_balancer_might_draw(r.bal, 0, r.now, m), LADE_OK);
    assert_int_equal(m[0], A(32)); /* it was last measured drawing 32 A ... */
    r.now += 5000;
    assert_int_equal(lade_balancer_might_draw(r.bal, 0, r.now, m), LADE_OK);
    assert_int_equal(m[0], A(16)); /* ... and had 5 s to follow the lower offer */
    /* An unknown seq */
    assert_int_equal(lade_balancer_ack(r.bal, 0, 9999, r.now), LADE_ERR_NOT_FOUND);
    rig_destroy(&r);
}

/* The operator lowers a limit below the load: the next step emits only decreases. */
static void test_limit_lowered(void **state)
{
    (void)state;
    struct rig r = {0};
    r.nodes[0] = node(-1, A(63), A(63), A(63));
    r.nodes[1] = node(0, A(32), A(32), A(32));
    r.ch[0] = charger(1, A(32), 3, 0, 1, 2);
    r.ch[1] = charger(1, A(32), 3, 0, 1, 2);
    r.ch[2] = charger(0, A(32), 3, 0, 1, 2);
    rig_create(&r, LADE_BAL_TN, 2, 3);
    rig_demand(&r, 0, true);
    rig_demand(&r, 1, true);
    rig_demand(&r, 2, true);
    rig_run(&r, 20000);
    expect(&r, 0, A(16), 3);
    expect(&r, 1, A(16), 3);
    expect(&r, 2, A(31), 3);
    r.auto_ack = false;
    int32_t lim[3] = {A(40), A(40), A(40)};
    assert_int_equal(lade_balancer_set_limit(r.bal, 0, lim, NULL), LADE_OK);
    assert_int_equal(rig_step(&r), 3);
    /* 40 A for three: 13.4 + 13.3 + 13.3; every one a decrease. */
    int32_t total = 0;
    for (uint32_t k = 0; k < 3; k++) {
        const struct lade_bal_setpoint *s = &r.out.setpoints[k];
        assert_true(s->current_ma < (s->charger == 2 ? A(31) : A(16)));
        total += s->current_ma;
    }
    assert_int_equal(total, A(40));
    /* Confirm two of them; the third stays unconfirmed: nothing may rise. */
    const struct lade_bal_setpoint sp0 = r.out.setpoints[0], sp1 = r.out.setpoints[1];
    assert_int_equal(lade_balancer_ack(r.bal, sp0.charger, sp0.seq, r.now), LADE_OK);
    assert_int_equal(lade_balancer_ack(r.bal, sp1.charger, sp1.seq, r.now), LADE_OK);
    r.now += 5000;
    assert_int_equal(rig_step(&r), 0);
    /* An even lower limit while a decrease is unconfirmed: a second decrease goes out at once
     * (the sum is above the limit, so it is at most the lowest it can be allowed). */
    lim[0] = lim[1] = lim[2] = A(30);
    assert_int_equal(lade_balancer_set_limit(r.bal, 0, lim, NULL), LADE_OK);
    assert_int_equal(rig_step(&r), 3);
    for (uint32_t k = 0; k < 3; k++)
        assert_int_equal(r.out.setpoints[k].current_ma, A(10));
    rig_destroy(&r);
}

/* An offline charger counts max(setpoints, fallback) until its last possible contact + deadline
 * + margin, then its fallback; then its capacity is given to others. */
static void test_offline_fallback(void **state)
{
    (void)state;
    struct rig r = {0};
    r.nodes[0] = node(-1, A(32), A(32), A(32));
    r.ch[0] = charger(0, A(32), 3, 0, 1, 2);
    r.ch[1] = charger(0, A(32), 3, 0, 1, 2);
    r.ch[0].fallback_ma = A(8);
    r.ch[0].fallback_phases = 3;
    rig_create(&r, LADE_BAL_TN, 1, 2);
    rig_demand(&r, 0, true);
    rig_demand(&r, 1, true);
    rig_run(&r, 20000);
    expect(&r, 0, A(16), 3);
    expect(&r, 1, A(16), 3);
    r.follow = false;
    assert_int_equal(lade_balancer_charger_online(r.bal, 0, false, r.now), LADE_OK);
    uint64_t off = r.now;
    rig_run(&r, 100000 + 5000 - 1);
    expect(&r, 1, A(16), 3); /* still 16: charger 0 may hold 16 A */
    assert_int_equal(r.out.next_step_ms, off + 105000);
    r.now = off + 105000;
    rig_run(&r, 20000);
    /* charger 0 is at its 8 A fallback: charger 1 gets 24 A */
    expect(&r, 1, A(24), 3);
    struct lade_bal_charger_info in = info(&r, 0);
    assert_true(in.known);
    assert_int_equal(in.confirmed_ma, A(8));
    assert_int_equal(in.might_draw_ma[0], A(8));
    assert_invariant(&r);
    /* back online: it stays at its fallback until told; it gets its share again once charger
     * 1 has confirmed its decrease. */
    assert_int_equal(lade_balancer_charger_online(r.bal, 0, true, r.now), LADE_OK);
    r.follow = true;
    rig_run(&r, 30000);
    expect(&r, 0, A(16), 3);
    expect(&r, 1, A(16), 3);
    rig_destroy(&r);
}

/* A charger whose state is unknown (no assume): it might draw its max; the balancer resolves it
 * without ever breaking the emission rule. */
static void test_unknown_start(void **state)
{
    (void)state;
    struct lade_bal_node_config nodes[1] = {node(-1, A(32), A(32), A(32))};
    struct lade_bal_charger_config ch[2] = {charger(0, A(32), 3, 0, 1, 2),
                                            charger(0, A(32), 3, 0, 1, 2)};
    struct lade_bal_config cfg = {LADE_BAL_TN, nodes, 1, ch, 2, {0}};
    lade_balancer_params_default(&cfg.params);
    struct lade_balancer *bal;
    assert_int_equal(lade_balancer_create(&cfg, 1000, &bal, NULL), LADE_OK);
    int32_t m[3];
    assert_int_equal(lade_balancer_might_draw(bal, 0, 1000, m), LADE_OK);
    assert_int_equal(m[0], A(32));
    struct lade_bal_step_out out;
    assert_int_equal(lade_balancer_step(bal, 1000, &out), LADE_OK);
    assert_int_equal(out.n_setpoints, 0); /* offline: nothing to send */
    assert_int_equal(lade_balancer_charger_online(bal, 0, true, 2000), LADE_OK);
    assert_int_equal(lade_balancer_charger_online(bal, 1, true, 2000), LADE_OK);
    assert_int_equal(lade_balancer_charger_demand(bal, 0, true, 2000), LADE_OK);
    assert_int_equal(lade_balancer_step(bal, 2000, &out), LADE_OK);
    /* Σ might-draw is 64 A > 32 A: both get 0 (the least either can be at) */
    assert_int_equal(out.n_setpoints, 2);
    assert_int_equal(out.setpoints[0].current_ma, 0);
    assert_int_equal(out.setpoints[1].current_ma, 0);
    assert_int_equal(lade_balancer_ack(bal, 0, out.setpoints[0].seq, 2100), LADE_OK);
    assert_int_equal(lade_balancer_ack(bal, 1, out.setpoints[1].seq, 2100), LADE_OK);
    assert_int_equal(lade_balancer_step(bal, 2100, &out), LADE_OK);
    assert_int_equal(out.n_setpoints, 0); /* the increase hold */
    assert_int_equal(out.next_step_ms, 12100);
    assert_int_equal(lade_balancer_step(bal, 12100, &out), LADE_OK);
    assert_int_equal(out.n_setpoints, 1);
    assert_int_equal(out.setpoints[0].charger, 0);
    assert_int_equal(out.setpoints[0].current_ma, A(32));
    assert_int_equal(lade_balancer_charger_assume(bal, 0, 0, 3), LADE_ERR_STATE);
    lade_balancer_destroy(bal);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_tn),
        cmocka_unit_test(test_example_it),
        cmocka_unit_test(test_example_detect_1phase),
        cmocka_unit_test(test_example_priority),
        cmocka_unit_test(test_example_fallback_reserved),
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_decrease_first),
        cmocka_unit_test(test_lost_ack_resend),
        cmocka_unit_test(test_limit_lowered),
        cmocka_unit_test(test_offline_fallback),
        cmocka_unit_test(test_unknown_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
