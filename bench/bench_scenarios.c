/* bench_scenarios — utilisation and fairness of the portal's balancer (src/cloud/balancer) on a
 * fixed set of named scenarios, for `make bench` (scripts/bench.sh, figure 9).
 *
 *   bench_scenarios            prints a Markdown table and per-scenario details; no arguments
 *
 * A deterministic simulation (no clock, no randomness, no I/O but stdout) around the balancer,
 * with the parameters the portal uses (lade_balancer_params_default, then start_hold_ms = 0, as
 * lade_portal_new does). Simulated time advances in TICK_MS steps:
 *   - the portal: every event it receives (a report, a reply) is fed to the balancer with the time
 *     it arrived, and lade_balancer_step() runs in the same tick, and at out.next_step_ms;
 *   - messages portal <-> charger take LAT_MS each way, in order;
 *   - a charger applies a setpoint when it arrives (offer = setpoint if >= its min, else 0, on the
 *     setpoint's phases) and answers 200 at once;
 *   - a car draws min(offer, its max) on its own phases (1 or 3; a 1-phase load in IT sits between
 *     the charger's L1 and L2 and is metered on both), FOLLOW_MS after the offer changed;
 *   - the charger reports its measured currents like lade-charger's observation reporter with the
 *     production defaults (docs/observations.md): at once on a mode change (plug-in, charging
 *     starts or stops), else at most every REPORT_MIN_MS when a current moved >= 0.5 A, and a
 *     snapshot every 900 s;
 *   - every charger is online from the start with a known setpoint of 0 (as the portal seeds it
 *     from its setpoint log); cars arrive ARRIVE_MS apart and want energy until the end.
 *
 * Measured per scenario (the header printed with the table defines each):
 *   utilisation, Jain's fairness index, time to settle, setpoints sent, the largest current a
 *   car could still have taken, and the invariant — max over every tick, node and supply phase of
 *   (Σ might-draw − limit), with Σ of what the chargers really offer and what the cars really draw
 *   beside it.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lade/balancer.h"

#define A(x)             ((int32_t)((x)*1000))
#define TICK_MS          10
#define LAT_MS           50     /* portal <-> charger, each way */
#define FOLLOW_MS        2000   /* a car follows a new offer (IEC 61851 allows 5 s) */
#define REPORT_MIN_MS    10000  /* report_min_interval_s default */
#define PORTAL_REFEED_MS 30000  /* src/cloud/portal.c MEAS_REFRESH_MS */
#define DEADBAND_MA      500    /* 507..509 deadband */
#define SNAPSHOT_MS      900000 /* telemetry_interval_s default */
#define MAX_DELAY_MS     300000 /* a within-deadband difference is sent after this */
#define ARRIVE_MS        30000  /* cars arrive this far apart */
#define MAX_CHARGERS     12
#define MAX_NODES        4
#define QUEUE_LEN        4096
#define FALLBACK_PHASE   1

enum msg_kind { TO_CHARGER_SETPOINT, TO_PORTAL_ACK, TO_PORTAL_REPORT };

struct msg {
    uint64_t at_ms;
    enum msg_kind kind;
    uint32_t charger;
    uint32_t seq;
    int32_t ma;
    uint8_t phases;
    bool has_mode, has_cur;
    int32_t cur_ma[3]; /* report: per terminal */
    int mode;          /* report: 1 no car, 2 connected, 3 charging */
};

struct car {
    int32_t max_ma;
    uint8_t phases;
};

struct scenario {
    const char *name;
    const char *what;
    enum lade_bal_network network;
    uint32_t n_nodes;
    struct lade_bal_node_config nodes[MAX_NODES];
    uint32_t n;
    struct lade_bal_charger_config ch[MAX_CHARGERS];
    struct car car[MAX_CHARGERS];
    uint32_t run_s;    /* simulated length */
    uint32_t window_s; /* averages over [run_s - window_s, run_s] */
    uint32_t change_at_s;
    int32_t change_ma;       /* node 0's new limit on every phase at change_at_s (0: none) */
    uint32_t settle_until_s; /* settling ends before this (rotation: the first turn); 0: run */
};

struct charger_sim {
    int32_t sp_ma; /* applied setpoint */
    uint8_t sp_ph;
    int32_t offer_ma;
    uint8_t offer_ph;
    bool plugged;
    int32_t draw_ma[3];   /* per terminal, now */
    int32_t target_ma[3]; /* per terminal, after the car followed */
    uint64_t follow_at_ms;
    int mode, sent_mode;
    int32_t sent_ma[3]; /* last reported */
    uint64_t last_msg_ms, next_snap_ms, differs_since_ms;
    bool alloc_pending;   /* 708 (allocated current) changed: normal class */
    int32_t portal_ma[3]; /* the currents the portal last received, and when */
    uint64_t portal_cur_ms;
    uint64_t portal_fed_ms; /* last time the portal gave them to the balancer */
    uint64_t portal_sp_ms;  /* last setpoint the portal sent it */
    bool portal_has_cur;
    /* statistics */
    double sum_draw_ma; /* over the window: per-phase current (largest terminal) × ticks */
    uint32_t starts;
};

struct world {
    const struct scenario *s;
    bool trace;
    struct lade_balancer *bal;
    struct charger_sim c[MAX_CHARGERS];
    int32_t limit_ma[MAX_NODES][3];
    struct msg q[QUEUE_LEN];
    uint32_t q_head, q_len;
    uint64_t now;
    uint64_t next_step_ms;
    uint32_t setpoints, resends, reports;
    /* settling: the last offer change after the disturbance and before settle_until_ms, and the
     * setpoints sent from the disturbance up to it */
    uint64_t settle_from_ms, settle_until_ms, last_change_ms;
    uint32_t setpoints_from, setpoints_at_change;
    /* invariant: max excess in mA over node phases (accounting, offers, draws) */
    int32_t max_might, max_offer, max_draw;
    /* limit change: the first tick each fits the new limit again */
    bool changed;
    uint32_t rose;
    uint64_t fit_might_ms, fit_offer_ms, fit_draw_ms;
    int32_t over_might, over_offer, over_draw; /* largest excess while it did not fit yet */
    /* utilisation: load per node 0 phase, summed over the window's ticks */
    double sum_load[3];
    uint64_t window_ticks;
};

static void fail(const char *what)
{
    fprintf(stderr, "bench_scenarios: %s failed\n", what);
    exit(1);
}

/* ---- the installation's wiring ---- */

static bool below(const struct scenario *s, uint32_t charger, uint32_t node)
{
    for (int32_t k = (int32_t)s->ch[charger].node; k >= 0; k = s->nodes[k].parent)
        if ((uint32_t)k == node)
            return true;
    return false;
}

/* Adds current_ma × the supply phases a load on `phases` terminals of charger i uses. */
static void load_on(const struct scenario *s, uint32_t i, int32_t current_ma, uint8_t phases,
                    int32_t out[3])
{
    const uint8_t *r = s->ch[i].rotation;
    if (phases >= 3) {
        for (int p = 0; p < 3; p++)
            out[r[p]] += current_ma;
    } else {
        out[r[0]] += current_ma;
        if (s->network == LADE_BAL_IT)
            out[r[1]] += current_ma;
    }
}

/* What charger i's car can use: its own max on its own phases, within the charger's. */
static int32_t car_cap(const struct scenario *s, uint32_t i)
{
    return s->car[i].max_ma < s->ch[i].max_ma ? s->car[i].max_ma : s->ch[i].max_ma;
}

static uint8_t car_phases(const struct scenario *s, uint32_t i)
{
    return s->car[i].phases < s->ch[i].max_phases ? s->car[i].phases : s->ch[i].max_phases;
}

/* ---- messages ---- */

static void send(struct world *w, struct msg m)
{
    if (w->q_len == QUEUE_LEN)
        fail("message queue");
    m.at_ms = w->now + LAT_MS;
    w->q[(w->q_head + w->q_len++) % QUEUE_LEN] = m;
}

/* Observation reporter (docs/observations.md): sends a message now. It carries the mode when it
 * changed (or in a snapshot) and the currents 507..509 when one moved beyond its deadband, was
 * held back within it for MAX_DELAY_MS, or in a snapshot. */
static void report(struct world *w, uint32_t i, bool snapshot)
{
    struct charger_sim *c = &w->c[i];
    struct msg m = {.kind = TO_PORTAL_REPORT, .charger = i, .mode = c->mode};
    bool moved = false, differs = false;
    for (int t = 0; t < 3; t++) {
        moved = moved || abs(c->draw_ma[t] - c->sent_ma[t]) >= DEADBAND_MA;
        differs = differs || c->draw_ma[t] != c->sent_ma[t];
    }
    m.has_mode = snapshot || c->mode != c->sent_mode;
    m.has_cur = snapshot || moved || (differs && w->now >= c->differs_since_ms + MAX_DELAY_MS);
    if (m.has_cur) {
        memcpy(m.cur_ma, c->draw_ma, sizeof m.cur_ma);
        memcpy(c->sent_ma, c->draw_ma, sizeof c->sent_ma);
        c->differs_since_ms = 0;
    }
    c->sent_mode = c->mode;
    c->alloc_pending = false;
    c->last_msg_ms = w->now;
    if (snapshot)
        c->next_snap_ms = w->now + SNAPSHOT_MS;
    w->reports++;
    send(w, m);
}

/* Whether charger i has a message due now (immediate mode change; normal-class changes at most
 * every REPORT_MIN_MS; the snapshot; a within-deadband difference held MAX_DELAY_MS). */
static void report_if_due(struct world *w, uint32_t i)
{
    struct charger_sim *c = &w->c[i];
    bool moved = false, differs = false;
    for (int t = 0; t < 3; t++) {
        moved = moved || abs(c->draw_ma[t] - c->sent_ma[t]) >= DEADBAND_MA;
        differs = differs || c->draw_ma[t] != c->sent_ma[t];
    }
    if (differs && !c->differs_since_ms)
        c->differs_since_ms = w->now;
    if (!differs)
        c->differs_since_ms = 0;
    bool snapshot = w->now >= c->next_snap_ms;
    bool normal = (moved || c->alloc_pending) && w->now >= c->last_msg_ms + REPORT_MIN_MS;
    bool late = differs && w->now >= c->differs_since_ms + MAX_DELAY_MS;
    if (c->mode != c->sent_mode || snapshot || normal || late)
        report(w, i, snapshot);
}

/* The charger's outputs from its setpoint and car; a mode change is reported at once. */
static void charger_update(struct world *w, uint32_t i)
{
    const struct scenario *s = w->s;
    struct charger_sim *c = &w->c[i];
    int32_t offer = c->plugged && c->sp_ma >= s->ch[i].min_ma ? c->sp_ma : 0;
    if (offer > s->ch[i].max_ma)
        offer = s->ch[i].max_ma;
    uint8_t ph = c->sp_ph;
    if (offer != c->offer_ma || (offer && ph != c->offer_ph)) {
        if (offer && !c->offer_ma && w->window_ticks)
            c->starts++;
        if (w->changed && !w->fit_might_ms && offer > c->offer_ma)
            w->rose++; /* an increase before the accounting fits the lowered limit */
        if (w->trace)
            printf("%9.2f s  charger %u: offer %.1f A × %u -> %.1f A × %u\n", w->now / 1000.0, i,
                   c->offer_ma / 1000.0, c->offer_ph, offer / 1000.0, ph);
        c->offer_ma = offer;
        c->offer_ph = ph;
        if (w->now < w->settle_until_ms) {
            w->setpoints_at_change = w->setpoints;
            if (w->now >= w->settle_from_ms)
                w->last_change_ms = w->now;
        }
        /* the car follows: min(offer, its max) on its phases (and the setpoint's) */
        int32_t d = offer < s->car[i].max_ma ? offer : s->car[i].max_ma;
        uint8_t n = car_phases(s, i) < ph ? car_phases(s, i) : ph;
        memset(c->target_ma, 0, sizeof c->target_ma);
        for (int t = 0; t < 3; t++)
            if (t < n || (n == 1 && t == 1 && s->network == LADE_BAL_IT))
                c->target_ma[t] = d;
        c->follow_at_ms = w->now + FOLLOW_MS;
    }
    int mode = !c->plugged ? 1 : offer ? 3 : 2;
    if (mode != c->mode) {
        c->mode = mode;
        report_if_due(w, i);
    }
}

static void deliver(struct world *w, const struct msg *m, bool *event)
{
    uint32_t i = m->charger;
    struct charger_sim *c = &w->c[i];
    switch (m->kind) {
    case TO_CHARGER_SETPOINT:
        c->alloc_pending = c->alloc_pending || c->sp_ma != m->ma;
        c->sp_ma = m->ma;
        c->sp_ph = m->phases;
        charger_update(w, i);
        send(w, (struct msg){.kind = TO_PORTAL_ACK, .charger = i, .seq = m->seq});
        break;
    case TO_PORTAL_ACK:
        if (lade_balancer_ack(w->bal, i, m->seq, w->now) != LADE_OK)
            fail("ack");
        *event = true;
        break;
    case TO_PORTAL_REPORT:
        /* as src/cloud/portal.c: heard; demand when the mode came; measured when currents came */
        if (m->has_cur) {
            memcpy(c->portal_ma, m->cur_ma, sizeof c->portal_ma);
            c->portal_cur_ms = c->portal_fed_ms = w->now;
            c->portal_has_cur = true;
        }
        if (lade_balancer_charger_heard(w->bal, i, w->now) ||
            (m->has_mode &&
             lade_balancer_charger_demand(w->bal, i, m->mode == 2 || m->mode == 3, w->now)) ||
            (m->has_cur && lade_balancer_charger_measured(w->bal, i, c->portal_ma, w->now)))
            fail("report");
        *event = true;
        break;
    }
}

/* ---- the invariant and the load, every tick ---- */

static void check(struct world *w)
{
    const struct scenario *s = w->s;
    int32_t might[MAX_CHARGERS][3];
    for (uint32_t i = 0; i < s->n; i++)
        if (lade_balancer_might_draw(w->bal, i, w->now, might[i]))
            fail("might_draw");
    int32_t ex_might = INT32_MIN, ex_offer = INT32_MIN, ex_draw = INT32_MIN;
    for (uint32_t k = 0; k < s->n_nodes; k++) {
        int32_t m[3] = {0}, o[3] = {0}, d[3] = {0};
        for (uint32_t i = 0; i < s->n; i++) {
            if (!below(s, i, k))
                continue;
            for (int p = 0; p < 3; p++)
                m[p] += might[i][p];
            if (w->c[i].offer_ma)
                load_on(s, i, w->c[i].offer_ma, w->c[i].offer_ph, o);
            for (int t = 0; t < 3; t++)
                d[s->ch[i].rotation[t]] += w->c[i].draw_ma[t];
        }
        for (int p = 0; p < 3; p++) {
            int32_t l = w->limit_ma[k][p];
            ex_might = m[p] - l > ex_might ? m[p] - l : ex_might;
            ex_offer = o[p] - l > ex_offer ? o[p] - l : ex_offer;
            ex_draw = d[p] - l > ex_draw ? d[p] - l : ex_draw;
            if (k == 0 && w->window_ticks)
                w->sum_load[p] += d[p];
        }
    }
    /* After an operator lowered a limit, the cars draw above it until they follow; each measure
     * counts from the tick it first fits the new limit, and its excess before is kept apart. */
    if (w->changed) {
        if (!w->fit_might_ms && ex_might <= 0)
            w->fit_might_ms = w->now;
        if (!w->fit_offer_ms && ex_offer <= 0)
            w->fit_offer_ms = w->now;
        if (!w->fit_draw_ms && ex_draw <= 0)
            w->fit_draw_ms = w->now;
    }
#define KEEP(ex, fit, over, mx)                                                                    \
    do {                                                                                           \
        if (w->changed && !(fit))                                                                  \
            over = ex > over ? ex : over;                                                          \
        else                                                                                       \
            mx = ex > mx ? ex : mx;                                                                \
    } while (0)
    KEEP(ex_might, w->fit_might_ms, w->over_might, w->max_might);
    KEEP(ex_offer, w->fit_offer_ms, w->over_offer, w->max_offer);
    KEEP(ex_draw, w->fit_draw_ms, w->over_draw, w->max_draw);
#undef KEEP
}

/* ---- the reference: max-min fair shares of a fluid allocation ----
 * Every car with demand, at its real phases (as if the portal knew them from the start), capped
 * at min(car max, charger max). When every car's minimum fits, all start at their minimum and
 * the priority tiers rise in turn (higher first) by water-filling; otherwise (rotation) the
 * shares of a fluid water-filling from 0, one tier: what each car gets on average when turns
 * are fair. Exact: the level rises from event to event (a car at its cap, a node phase full). */
static void fair_shares(const struct scenario *s, const int32_t limit_ma[MAX_NODES][3],
                        double fair[MAX_CHARGERS])
{
    bool uses[MAX_CHARGERS][MAX_NODES][3];
    memset(uses, 0, sizeof uses);
    for (uint32_t i = 0; i < s->n; i++) {
        int32_t one[3] = {0};
        load_on(s, i, 1, car_phases(s, i), one);
        for (uint32_t k = 0; k < s->n_nodes; k++)
            for (int p = 0; p < 3; p++)
                uses[i][k][p] = below(s, i, k) && one[p];
    }
    bool mins_fit = true;
    for (uint32_t k = 0; k < s->n_nodes; k++)
        for (int p = 0; p < 3; p++) {
            double sum = 0;
            for (uint32_t i = 0; i < s->n; i++)
                sum += uses[i][k][p] ? s->ch[i].min_ma : 0;
            mins_fit = mins_fit && sum <= limit_ma[k][p];
        }
    bool done[MAX_CHARGERS] = {false};
    for (uint32_t i = 0; i < s->n; i++)
        fair[i] = mins_fit ? s->ch[i].min_ma : 0;
    for (;;) {
        /* the next tier: the highest priority not done (one tier when the minimums do not fit) */
        bool any = false;
        int32_t prio = INT32_MIN;
        for (uint32_t i = 0; i < s->n; i++)
            if (!done[i] && (!any || s->ch[i].priority > prio)) {
                prio = s->ch[i].priority;
                any = true;
            }
        if (!any)
            break;
        bool active[MAX_CHARGERS];
        for (uint32_t i = 0; i < s->n; i++)
            active[i] = !done[i] && (!mins_fit || s->ch[i].priority == prio);
        for (;;) {
            double load[MAX_NODES][3] = {{0}}, cnt[MAX_NODES][3] = {{0}};
            for (uint32_t i = 0; i < s->n; i++)
                for (uint32_t k = 0; k < s->n_nodes; k++)
                    for (int p = 0; p < 3; p++)
                        if (uses[i][k][p]) {
                            load[k][p] += fair[i];
                            cnt[k][p] += active[i];
                        }
            /* freeze cars at their cap or on a full node phase */
            bool any_active = false;
            for (uint32_t i = 0; i < s->n; i++) {
                if (!active[i])
                    continue;
                bool stop = fair[i] >= car_cap(s, i) - 1e-6;
                for (uint32_t k = 0; k < s->n_nodes; k++)
                    for (int p = 0; p < 3; p++)
                        stop = stop || (uses[i][k][p] && load[k][p] >= limit_ma[k][p] - 1e-6);
                if (stop) {
                    active[i] = false;
                    done[i] = true;
                }
                any_active = any_active || active[i];
            }
            if (!any_active)
                break;
            double up = 1e18;
            for (uint32_t i = 0; i < s->n; i++)
                if (active[i] && car_cap(s, i) - fair[i] < up)
                    up = car_cap(s, i) - fair[i];
            for (uint32_t k = 0; k < s->n_nodes; k++)
                for (int p = 0; p < 3; p++) {
                    double c = 0;
                    for (uint32_t i = 0; i < s->n; i++)
                        c += active[i] && uses[i][k][p];
                    if (c > 0 && (limit_ma[k][p] - load[k][p]) / c < up)
                        up = (limit_ma[k][p] - load[k][p]) / c;
                }
            for (uint32_t i = 0; i < s->n; i++)
                if (active[i])
                    fair[i] += up;
        }
        for (uint32_t i = 0; i < s->n; i++)
            done[i] = done[i] || active[i];
    }
}

static double jain(const double *x, const double *y, uint32_t n)
{
    double s = 0, s2 = 0;
    uint32_t m = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (y[i] <= 0)
            continue;
        double r = x[i] / y[i];
        s += r;
        s2 += r * r;
        m++;
    }
    return m && s2 > 0 ? s * s / (m * s2) : 1.0;
}

/* ---- one scenario ---- */

struct result {
    double util, jain_fair, jain_max, settle_s, room_a;
    bool late; /* the last change fell in the measuring window: run longer */
    uint32_t setpoints, setpoints_run, resends;
    double max_might_a, max_offer_a, max_draw_a;
    double fit_might_ms, fit_offer_ms, fit_draw_ms, over_might_a, over_offer_a, over_draw_a;
    uint32_t rose;
    double avg_a[MAX_CHARGERS], fair_a[MAX_CHARGERS];
    uint32_t starts[MAX_CHARGERS];
};

static void step(struct world *w)
{
    struct lade_bal_step_out out;
    if (lade_balancer_step(w->bal, w->now, &out) != LADE_OK)
        fail("step");
    for (uint32_t k = 0; k < out.n_setpoints; k++) {
        const struct lade_bal_setpoint *sp = &out.setpoints[k];
        w->c[sp->charger].portal_sp_ms = w->now;
        send(w, (struct msg){.kind = TO_CHARGER_SETPOINT,
                             .charger = sp->charger,
                             .seq = sp->seq,
                             .ma = sp->current_ma,
                             .phases = sp->phases});
        w->setpoints++;
        w->resends += sp->resend;
    }
    w->next_step_ms = out.next_step_ms;
}

static void run(const struct scenario *s, struct result *r, bool trace)
{
    static struct world w;
    memset(&w, 0, sizeof w);
    w.s = s;
    w.trace = trace;
    struct lade_bal_config cfg = {s->network, s->nodes, s->n_nodes, s->ch, s->n, {0}};
    lade_balancer_params_default(&cfg.params);
    cfg.params.start_hold_ms = 0; /* as the portal (lade_portal_new) */
    struct lade_bal_config_error err;
    if (lade_balancer_create(&cfg, 0, &w.bal, &err) != LADE_OK)
        fail("create");
    for (uint32_t k = 0; k < s->n_nodes; k++)
        memcpy(w.limit_ma[k], s->nodes[k].limit_ma, sizeof w.limit_ma[k]);
    for (uint32_t i = 0; i < s->n; i++) {
        w.c[i].sp_ph = s->ch[i].max_phases;
        w.c[i].offer_ph = w.c[i].sp_ph;
        w.c[i].mode = w.c[i].sent_mode = 1;
        /* snapshots are not synchronised between chargers: the first at 1 s + i/n of a period */
        w.c[i].next_snap_ms = 1000 + (uint64_t)i * SNAPSHOT_MS / s->n;
        if (lade_balancer_charger_assume(w.bal, i, 0, s->ch[i].max_phases) ||
            lade_balancer_charger_online(w.bal, i, true, 0))
            fail("start");
    }
    step(&w);
    uint64_t run_ms = (uint64_t)s->run_s * 1000;
    uint64_t window_from = run_ms - (uint64_t)s->window_s * 1000;
    uint64_t change_ms = (uint64_t)s->change_at_s * 1000;
    w.settle_from_ms = (uint64_t)(s->n - 1) * ARRIVE_MS;
    w.settle_until_ms = s->settle_until_s ? (uint64_t)s->settle_until_s * 1000 : run_ms + 1;
    for (w.now = 0; w.now <= run_ms; w.now += TICK_MS) {
        bool event = false;
        if (w.now >= window_from)
            w.window_ticks++;
        for (uint32_t i = 0; i < s->n; i++)
            if (!w.c[i].plugged && w.now >= (uint64_t)i * ARRIVE_MS) {
                w.c[i].plugged = true;
                charger_update(&w, i);
            }
        if (s->change_ma && !w.changed && w.now >= change_ms) {
            int32_t l[3] = {s->change_ma, s->change_ma, s->change_ma};
            if (lade_balancer_set_limit(w.bal, 0, l, NULL) != LADE_OK)
                fail("set_limit");
            memcpy(w.limit_ma[0], l, sizeof l);
            w.changed = true;
            w.settle_from_ms = w.now;
            w.last_change_ms = 0;
            w.setpoints_from = w.setpoints_at_change = w.setpoints;
            event = true;
        }
        while (w.q_len && w.q[w.q_head].at_ms <= w.now) {
            struct msg m = w.q[w.q_head];
            w.q_head = (w.q_head + 1) % QUEUE_LEN;
            w.q_len--;
            deliver(&w, &m, &event);
        }
        for (uint32_t i = 0; i < s->n; i++) {
            struct charger_sim *c = &w.c[i];
            if (c->follow_at_ms && w.now >= c->follow_at_ms) {
                memcpy(c->draw_ma, c->target_ma, sizeof c->draw_ma);
                c->follow_at_ms = 0;
            }
            report_if_due(&w, i);
            if (w.now >= window_from) {
                int32_t m = 0;
                for (int t = 0; t < 3; t++)
                    m = c->draw_ma[t] > m ? c->draw_ma[t] : m;
                c->sum_draw_ma += m;
            }
        }
        /* As src/cloud/portal.c (site_step): a charger sends a current only when it moved
         * beyond its deadband (within REPORT_MIN_MS), so once it had 30 s since the portal's
         * last setpoint, its last report still holds: the portal gives it again every 30 s,
         * capped at the confirmed setpoint. */
        for (uint32_t i = 0; i < s->n; i++) {
            struct charger_sim *c = &w.c[i];
            if (c->portal_has_cur && w.now >= c->portal_sp_ms + PORTAL_REFEED_MS &&
                w.now >= c->portal_fed_ms + PORTAL_REFEED_MS) {
                int32_t m[3];
                memcpy(m, c->portal_ma, sizeof m);
                struct lade_bal_charger_info inf;
                if (c->portal_cur_ms < c->portal_sp_ms &&
                    lade_balancer_charger_info(w.bal, i, w.now, &inf) == LADE_OK && inf.known)
                    for (int t = 0; t < 3; t++)
                        if (m[t] > inf.confirmed_ma)
                            m[t] = inf.confirmed_ma;
                if (lade_balancer_charger_measured(w.bal, i, m, w.now))
                    fail("measured");
                c->portal_fed_ms = w.now;
                event = true;
            }
        }
        if (event || w.now >= w.next_step_ms)
            step(&w);
        check(&w);
    }
    /* settled when the cars followed the last offer change (none: at once) */
    r->settle_s =
        w.last_change_ms ? (double)(w.last_change_ms + FOLLOW_MS - w.settle_from_ms) / 1000 : 0;
    r->setpoints = w.setpoints_at_change - w.setpoints_from;
    r->late = w.last_change_ms >= window_from && !s->settle_until_s;
    r->setpoints_run = w.setpoints;
    r->resends = w.resends;
    /* utilisation at the main fuse's binding phase: load / min(limit, what the cars could use) */
    int32_t could[3] = {0};
    for (uint32_t i = 0; i < s->n; i++)
        load_on(s, i, car_cap(s, i), car_phases(s, i), could);
    r->util = 0;
    for (int p = 0; p < 3; p++) {
        double cap = could[p] < w.limit_ma[0][p] ? could[p] : w.limit_ma[0][p];
        double u = cap > 0 ? w.sum_load[p] / (double)w.window_ticks / cap : 0;
        r->util = u > r->util ? u : r->util;
    }
    /* fairness over the window's averages */
    double avg[MAX_CHARGERS], fair[MAX_CHARGERS], cap[MAX_CHARGERS];
    fair_shares(s, (const int32_t(*)[3])w.limit_ma, fair);
    for (uint32_t i = 0; i < s->n; i++) {
        avg[i] = w.c[i].sum_draw_ma / (double)w.window_ticks;
        cap[i] = car_cap(s, i);
        r->avg_a[i] = avg[i] / 1000;
        r->fair_a[i] = fair[i] / 1000;
        r->starts[i] = w.c[i].starts;
    }
    r->jain_fair = jain(avg, fair, s->n);
    r->jain_max = jain(avg, cap, s->n);
    /* room: the most any car could still take alone at the end, on every node phase it loads
     * (a paused car counts only where its minimum would fit) */
    int32_t load[MAX_NODES][3] = {{0}};
    for (uint32_t k = 0; k < s->n_nodes; k++)
        for (uint32_t i = 0; i < s->n; i++)
            if (below(s, i, k))
                for (int t = 0; t < 3; t++)
                    load[k][s->ch[i].rotation[t]] += w.c[i].draw_ma[t];
    r->room_a = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        int32_t x = 0;
        for (int t = 0; t < 3; t++)
            x = w.c[i].draw_ma[t] > x ? w.c[i].draw_ma[t] : x;
        int32_t room = car_cap(s, i) - x;
        int32_t one[3] = {0};
        load_on(s, i, 1, car_phases(s, i), one);
        for (uint32_t k = 0; k < s->n_nodes; k++)
            for (int p = 0; p < 3; p++)
                if (below(s, i, k) && one[p] && w.limit_ma[k][p] - load[k][p] < room)
                    room = w.limit_ma[k][p] - load[k][p];
        if (x == 0 && room < s->ch[i].min_ma)
            room = 0;
        r->room_a = room / 1000.0 > r->room_a ? room / 1000.0 : r->room_a;
    }
    r->max_might_a = w.max_might / 1000.0;
    r->max_offer_a = w.max_offer / 1000.0;
    r->max_draw_a = w.max_draw / 1000.0;
    r->fit_might_ms = w.changed ? (double)(w.fit_might_ms - change_ms) : NAN;
    r->fit_offer_ms = w.changed ? (double)(w.fit_offer_ms - change_ms) : NAN;
    r->fit_draw_ms = w.changed ? (double)(w.fit_draw_ms - change_ms) : NAN;
    r->rose = w.rose;
    r->over_might_a = w.over_might / 1000.0;
    r->over_offer_a = w.over_offer / 1000.0;
    r->over_draw_a = w.over_draw / 1000.0;
    lade_balancer_destroy(w.bal);
}

/* ---- the scenarios ---- */

static const uint8_t ROT[3][3] = {{0, 1, 2}, {1, 2, 0}, {2, 0, 1}}; /* L1L2L3 L2L3L1 L3L1L2 */

static void node(struct scenario *s, int32_t parent, int32_t limit_a)
{
    s->nodes[s->n_nodes++] =
        (struct lade_bal_node_config){parent, {A(limit_a), A(limit_a), A(limit_a)}};
}

/* A 32 A charger, 6 A min, no fallback, on node k, rotation r, and its car. */
static struct lade_bal_charger_config *charger(struct scenario *s, uint32_t k, int r,
                                               uint8_t max_phases, int32_t car_max_a,
                                               uint8_t car_ph)
{
    struct lade_bal_charger_config *c = &s->ch[s->n];
    *c = (struct lade_bal_charger_config){
        .node = k,
        .max_ma = A(32),
        .min_ma = A(6),
        .max_phases = max_phases,
        .rotation = {ROT[r][0], ROT[r][1], ROT[r][2]},
        .fallback_ma = 0,
        .fallback_phases = FALLBACK_PHASE,
        .link_loss_deadline_ms = 370000,
    };
    s->car[s->n] = (struct car){A(car_max_a), car_ph};
    s->n++;
    return c;
}

static uint32_t build(struct scenario *sc)
{
    uint32_t n = 0;
    struct scenario *s;

    s = &sc[n++];
    *s = (struct scenario){.name = "1. two circuits",
                           .what = "TN; main 63 A, circuit A 40 A (4 chargers), circuit B 25 A "
                                   "(4 chargers); 8 × 3-phase 32 A cars; every charger's "
                                   "offline current 6 A on 1 phase (the demo's)",
                           .run_s = 1800,
                           .window_s = 600};
    node(s, -1, 63);
    node(s, 0, 40);
    node(s, 0, 25);
    for (int i = 0; i < 8; i++)
        charger(s, i < 4 ? 1 : 2, i % 3, 3, 32, 3)->fallback_ma = A(6);

    s = &sc[n++];
    *s = (struct scenario){.name = "2. 1-/3-phase mix, rotation",
                           .what = "TN; main 40 A; 3 × 3-phase 32 A cars; 1-phase 16 A cars on "
                                   "two 3-phase chargers wired L1L2L3 (their phase is detected) "
                                   "and on a 1-phase charger wired L2L3L1: supply L1 carries 5 "
                                   "cars, L2 4, L3 3",
                           .run_s = 1800,
                           .window_s = 600};
    node(s, -1, 40);
    for (int i = 0; i < 3; i++)
        charger(s, 0, i, 3, 32, 3);
    charger(s, 0, 0, 3, 16, 1);
    charger(s, 0, 0, 3, 16, 1);
    charger(s, 0, 1, 1, 16, 1);

    s = &sc[n++];
    *s = (struct scenario){.name = "3. under-drawing car",
                           .what = "TN; main 63 A; 3 × 3-phase 32 A chargers; an 11 kW car "
                                   "(16 A) and two 22 kW cars (32 A): 21 A each at first; the "
                                   "balancer reclaims what a car leaves unused for 60 s, once a "
                                   "fresh measurement (10 s after its last setpoint) shows it",
                           .run_s = 1800,
                           .window_s = 600};
    node(s, -1, 63);
    charger(s, 0, 0, 3, 16, 3);
    charger(s, 0, 1, 3, 32, 3);
    charger(s, 0, 2, 3, 32, 3);

    s = &sc[n++];
    *s = (struct scenario){.name = "4. more cars than 6 A slots",
                           .what = "TN; main 32 A; 8 × 3-phase 32 A cars: 5 run at 6.4 A, "
                                   "3 wait; turns of 15 min, a car waiting 5 min takes an "
                                   "expired turn; averages over 3 h",
                           .run_s = 3 * 3600 + 600,
                           .window_s = 3 * 3600,
                           .settle_until_s = 800};
    node(s, -1, 32);
    for (int i = 0; i < 8; i++)
        charger(s, 0, i % 3, 3, 32, 3);

    s = &sc[n++];
    *s = (struct scenario){.name = "5. priorities",
                           .what = "TN; main 40 A; 4 × 3-phase 32 A cars, one charger at "
                                   "priority 1: it gets what is left after everyone's 6 A",
                           .run_s = 1800,
                           .window_s = 600};
    node(s, -1, 40);
    for (int i = 0; i < 4; i++)
        charger(s, 0, i % 3, 3, 32, 3)->priority = i == 0 ? 1 : 0;

    s = &sc[n++];
    *s = (struct scenario){.name = "6. IT network",
                           .what = "IT; main 40 A; 6 × 1-phase chargers with 1-phase 16 A "
                                   "cars, wired L1-L2, L2-L3, L3-L1 (two each: each load counts "
                                   "on two supply phases), and one 3-phase 32 A car",
                           .run_s = 1800,
                           .window_s = 600};
    s->network = LADE_BAL_IT;
    node(s, -1, 40);
    for (int i = 0; i < 6; i++)
        charger(s, 0, i % 3, 1, 16, 1);
    charger(s, 0, 0, 3, 32, 3);

    s = &sc[n++];
    *s = (struct scenario){.name = "7. limit lowered",
                           .what = "scenario 1's site and cars; 10 min after the last car "
                                   "arrived the operator lowers the main limit from 63 A to "
                                   "48 A (6 A for each car)",
                           .run_s = 1800,
                           .window_s = 600,
                           .change_at_s = 7 * ARRIVE_MS / 1000 + 600,
                           .change_ma = A(48)};
    node(s, -1, 63);
    node(s, 0, 40);
    node(s, 0, 25);
    for (int i = 0; i < 8; i++)
        charger(s, i < 4 ? 1 : 2, i % 3, 3, 32, 3)->fallback_ma = A(6);
    return n;
}

static void fmt_ms(char *b, size_t n, double ms)
{
    if (isnan(ms))
        snprintf(b, n, "—");
    else
        snprintf(b, n, "%.0f ms", ms);
}

int main(int argc, char **argv)
{
    static struct scenario sc[12];
    static struct result res[12];
    uint32_t n = build(sc);
    if (argc > 1) { /* trace one scenario: every offer change */
        uint32_t k = (uint32_t)atoi(argv[1]);
        if (k < 1 || k > n)
            fail("arguments");
        run(&sc[k - 1], &res[k - 1], true);
        return 0;
    }
    printf("| scenario | cars | utilisation | Jain (vs fair share) | Jain (vs car max) | "
           "settled after (s) | setpoints until settled | setpoints in the run (resends) | "
           "most a car could still take (A) | max Σ might-draw − limit (A) | "
           "max Σ offered − limit (A) | max Σ drawn − limit (A) |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (uint32_t k = 0; k < n; k++) {
        struct result *r = &res[k];
        run(&sc[k], r, false);
        printf("| %s | %u | %.1f %% | %.4f | %.3f | %.1f%s | %u | %u (%u) | %.1f | %+.1f | %+.1f | "
               "%+.1f |\n",
               sc[k].name, sc[k].n, 100 * r->util, r->jain_fair, r->jain_max, r->settle_s,
               r->late ? " (in the window!)" : "", r->setpoints, r->setpoints_run, r->resends,
               r->room_a, r->max_might_a, r->max_offer_a, r->max_draw_a);
    }
    printf("\nScenarios, and each car's average current over the measuring window (A per phase) "
           "against its fair share:\n\n");
    for (uint32_t k = 0; k < n; k++) {
        const struct scenario *s = &sc[k];
        const struct result *r = &res[k];
        printf("- **%s** — %s. Window: the last %u s of %u s. Cars:", s->name, s->what, s->window_s,
               s->run_s);
        for (uint32_t i = 0; i < s->n; i++) {
            printf(" %.2f/%.2f", r->avg_a[i], r->fair_a[i]);
            if (s->window_s > 3600)
                printf(" (%u starts)", r->starts[i]);
            printf(i + 1 < s->n ? "," : ".");
        }
        if (s->change_ma) {
            char a[32], b[32], c[32];
            fmt_ms(a, sizeof a, r->fit_might_ms);
            fmt_ms(b, sizeof b, r->fit_offer_ms);
            fmt_ms(c, sizeof c, r->fit_draw_ms);
            printf(" After the change: Σ offered fits the new limit after %s (it was up to %.1f A "
                   "above: the decreases arrive), Σ drawn after %s (%.1f A: the cars follow), "
                   "Σ might-draw after %s (%.1f A: confirmed decreases, and a current measured "
                   "before one counts car_follow_ms = 5 s longer); offers that rose meanwhile: %u. "
                   "The table's maxima count from those moments.",
                   b, r->over_offer_a, c, r->over_draw_a, a, r->over_might_a, r->rose);
        }
        printf("\n");
    }
    return 0;
}
