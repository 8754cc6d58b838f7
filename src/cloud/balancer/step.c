/* The balancing step (include/lade/balancer.h; docs/balancer.md has the algorithm with a worked
 * example). No allocation: every array lives in the balancer, sized at create.
 *
 *   1. housekeeping   certain fallbacks; phase detection and reclaim from measurements
 *   2. accounting     might-draw (M) and least allowed (LB) per charger; Σ M below every node
 *                     (load) and what the allocation cannot move (offline chargers, fallbacks,
 *                     over-draw) → avail per node and supply phase
 *   3. admission      chargers whose car wants energy, in order (priority, then the rotation
 *                     groups), get their minimum if it still fits everywhere; the rest pause
 *   4. water-filling  per priority tier, max-min fair: every admitted charger rises from its
 *                     minimum at the same level; one stops when a resource it loads is full or
 *                     it reaches its cap; then one more step to whoever still fits
 *   5. emission       decreases at once; increases after a hold and only if the invariant
 *                     still holds with everyone at their might-draw (balancer.h, "Emission")
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum { WF_NONE = 0, WF_WAIT, WF_RISE, WF_FROZEN };
enum { EV_START = 0, EV_COST = 1, EV_CAP = 2 };

static int32_t round_down(int64_t v, int32_t step)
{
    if (v <= 0)
        return 0;
    if (v > INT32_MAX)
        v = INT32_MAX;
    return (int32_t)(v / step * step);
}

static int32_t round_up(int32_t v, int32_t step)
{
    return (v + step - 1) / step * step;
}

static bool same_sp(struct bal_sp a, struct bal_sp b, int32_t min_ma)
{
    /* Every pause is the same pause, whatever its phases. */
    if (a.ma < min_ma && b.ma < min_ma)
        return true;
    return a.ma == b.ma && a.ph == b.ph;
}

/* Does a raise anything compared with b on some supply phase? */
static bool raises(const struct lade_balancer *bal, const struct bal_charger *c, struct bal_sp a,
                   struct bal_sp b)
{
    int32_t ea[NPH], eb[NPH];
    bal_env(bal, c, a, ea);
    bal_env(bal, c, b, eb);
    for (int p = 0; p < NPH; p++)
        if (ea[p] > eb[p])
            return true;
    return false;
}

#define NEXT(t)                                                                                    \
    do {                                                                                           \
        uint64_t t_ = (t);                                                                         \
        if (t_ > now && t_ < *next)                                                                \
            *next = t_;                                                                            \
    } while (0)

/* ---- 1. housekeeping: what the measurements say about the car ---- */

static void observe(struct lade_balancer *bal, struct bal_charger *c, uint64_t now, uint64_t *next)
{
    const struct lade_bal_params *P = &bal->p;
    if (!c->online || !c->demand || !c->known || c->has_sent || c->has_older ||
        c->conf.ma < c->cfg.min_ma) {
        c->under = false;
        return;
    }
    /* Only a measurement taken after the car had time to follow the confirmed offer. */
    if (!c->meas_valid || c->meas_ms < c->conf_ms + P->settle_ms ||
        now > c->meas_ms + P->measure_stale_ms)
        return;
    int32_t thr = P->detect_threshold_ma;
    bool l1 = c->meas[0] >= thr, l2 = c->meas[1] >= thr, l3 = c->meas[2] >= thr;
    if (c->conf.ph == 3 && c->car_phases == 0) {
        /* A 1-phase car on a 3-phase offer draws on L1 only (TN) or between L1 and L2 (IT). */
        bool one = bal->network == LADE_BAL_IT ? l1 && !l3 : l1 && !l2 && !l3;
        bool more = bal->network == LADE_BAL_IT ? l3 : l2 || l3;
        if (one)
            c->car_phases = 1;
        else if (more)
            c->car_phases = 3;
    }
    int32_t m = c->meas[0];
    if (c->conf.ph == 3 || bal->network == LADE_BAL_IT)
        m = c->meas[1] > m ? c->meas[1] : m;
    if (c->conf.ph == 3)
        m = c->meas[2] > m ? c->meas[2] : m;
    if (m >= c->conf.ma - P->rampup_threshold_ma) {
        /* Takes all it is offered: give back what was reclaimed. */
        c->cap_ma = 0;
        c->under = false;
    } else if (m < c->conf.ma - P->reclaim_threshold_ma) {
        if (!c->under) {
            c->under = true;
            c->under_since_ms = c->meas_ms;
        }
        if (now >= c->under_since_ms + P->reclaim_delay_ms) {
            int32_t cap = round_up(m + P->reclaim_headroom_ma, P->step_ma);
            if (cap < c->cfg.min_ma)
                cap = round_up(c->cfg.min_ma, P->step_ma);
            c->cap_ma = cap < c->cfg.max_ma ? cap : 0;
            c->under = false;
        } else {
            NEXT(c->under_since_ms + P->reclaim_delay_ms);
        }
    } else {
        c->under = false;
    }
}

/* ---- 2. accounting ---- */

static void accounting(struct lade_balancer *bal, uint64_t now)
{
    uint32_t nn = bal->n_nodes, nc = bal->n_chargers;
    int64_t *res = bal->avail; /* reservations first, turned into avail below */
    memset(bal->load, 0, sizeof *bal->load * nn * NPH);
    memset(res, 0, sizeof *res * nn * NPH);
    for (uint32_t i = 0; i < nc; i++) {
        struct bal_charger *c = &bal->ch[i];
        int32_t *M = &bal->M[(size_t)i * NPH], *LB = &bal->LB[(size_t)i * NPH], over[NPH];
        bal_accounting(bal, c, now, M, LB, over);
        size_t r = (size_t)c->cfg.node * NPH;
        for (int p = 0; p < NPH; p++) {
            bal->load[r + p] += M[p];
            /* Offline: nothing can move it. Online: its fallback stays counted whatever it is
             * given, and so does a measured over-draw. (A car still following a decrease only
             * delays increases, through M.) */
            res[r + p] += c->online ? c->fb_env[p] + over[p] : M[p];
        }
    }
    for (uint32_t n = nn; n-- > 1;) {
        size_t r = (size_t)n * NPH, q = (size_t)bal->parent[n] * NPH;
        for (int p = 0; p < NPH; p++) {
            bal->load[q + p] += bal->load[r + p];
            res[q + p] += res[r + p];
        }
    }
    for (size_t r = 0; r < (size_t)nn * NPH; r++)
        bal->avail[r] = bal->limit[r] - res[r];
}

/* ---- 3. admission ---- */

static int cmp_cand(const void *a, const void *b)
{
    const struct bal_cand *x = a, *y = b;
    if (x->prio != y->prio)
        return x->prio > y->prio ? -1 : 1;
    if (x->group != y->group)
        return x->group < y->group ? -1 : 1;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->c < y->c ? -1 : x->c > y->c;
}

/* What admitting / raising costs above the fallback, which is reserved anyway. */
static int32_t cost_at(const struct bal_charger *c, int p, int32_t ma)
{
    return ma > c->fb_env[p] ? ma - c->fb_env[p] : 0;
}

static uint32_t collect(struct lade_balancer *bal, uint64_t now)
{
    const struct lade_bal_params *P = &bal->p;
    uint32_t n = 0;
    for (uint32_t i = 0; i < bal->n_chargers; i++) {
        struct bal_charger *c = &bal->ch[i];
        bal->cmap[i] = UINT32_MAX;
        if (!c->online || !c->demand)
            continue;
        struct bal_cand *k = &bal->cand[n++];
        memset(k, 0, sizeof *k);
        k->c = i;
        k->ph = c->cfg.max_phases == 1 || c->car_phases == 1 ? 1 : 3;
        k->mask = bal_mask(bal, c, k->ph);
        k->min_ma = round_up(c->cfg.min_ma, P->step_ma);
        int32_t cap = c->cap_ma > 0 && c->cap_ma < c->cfg.max_ma ? c->cap_ma : c->cfg.max_ma;
        cap = round_down(cap, P->step_ma);
        k->cap_ma = cap > k->min_ma ? cap : k->min_ma;
        k->prio = c->cfg.priority;
        /* Rotation groups (docs/balancer.md): 0 running within its turn (latest start first),
         * 1 waiting long enough to take a turn (longest wait first), 2 running past its turn,
         * 3 waiting (longest first). */
        bool rot = P->rotation_ms > 0;
        if (c->run == LADE_BAL_RUNNING) {
            bool turn = !rot || now < c->run_since_ms + P->rotation_ms;
            k->group = turn ? 0 : 2;
            k->key = UINT64_MAX - c->run_since_ms;
        } else if (c->run == LADE_BAL_WAITING) {
            k->group = rot && now >= c->run_since_ms + P->rotation_wait_ms ? 1 : 3;
            k->key = c->run_since_ms;
        } else {
            k->group = 3;
            k->key = now;
        }
    }
    qsort(bal->cand, n, sizeof *bal->cand, cmp_cand);
    for (uint32_t k = 0; k < n; k++)
        bal->cmap[bal->cand[k].c] = k;
    return n;
}

static bool fits(struct lade_balancer *bal, const struct bal_charger *c, uint8_t mask,
                 const int32_t add[NPH])
{
    for (int p = 0; p < NPH; p++) {
        if (!((mask >> p) & 1) || add[p] == 0)
            continue;
        for (uint32_t j = 0; j < c->path_len; j++) {
            size_t r = (size_t)c->path[j] * NPH + p;
            if (bal->used[r] + add[p] > bal->avail[r])
                return false;
        }
    }
    return true;
}

static void take(struct lade_balancer *bal, const struct bal_charger *c, uint8_t mask,
                 const int32_t add[NPH])
{
    for (int p = 0; p < NPH; p++) {
        if (!((mask >> p) & 1) || add[p] == 0)
            continue;
        for (uint32_t j = 0; j < c->path_len; j++)
            bal->used[(size_t)c->path[j] * NPH + p] += add[p];
    }
}

static void admit(struct lade_balancer *bal, uint32_t ncand)
{
    memset(bal->used, 0, sizeof *bal->used * bal->n_nodes * NPH);
    for (uint32_t k = 0; k < ncand; k++) {
        struct bal_cand *x = &bal->cand[k];
        const struct bal_charger *c = &bal->ch[x->c];
        int32_t add[NPH];
        for (int p = 0; p < NPH; p++)
            add[p] = cost_at(c, p, x->min_ma);
        x->cur_ma = 0;
        if (fits(bal, c, x->mask, add)) {
            take(bal, c, x->mask, add);
            x->admitted = true;
            x->cur_ma = x->min_ma;
        }
    }
}

/* ---- 4. water-filling ---- */

static int cmp_event(const void *a, const void *b)
{
    const struct bal_event *x = a, *y = b;
    if (x->level != y->level)
        return x->level < y->level ? -1 : 1;
    if (x->type != y->type)
        return x->type < y->type ? -1 : 1;
    return x->k < y->k ? -1 : x->k > y->k;
}

/* Events by (level, type, candidate). Levels are multiples of the step up to 63 A: a counting
 * sort (stable; events are made in candidate order) when there are enough of them. */
static void sort_events(struct lade_balancer *bal, uint32_t ne)
{
    if (ne < bal->n_buckets / 8) {
        qsort(bal->ev, ne, sizeof *bal->ev, cmp_event);
        return;
    }
    uint32_t *b = bal->bucket, nb = bal->n_buckets;
    memset(b, 0, sizeof *b * (nb + 1));
    for (uint32_t k = 0; k < ne; k++)
        b[(uint32_t)(bal->ev[k].level / bal->p.step_ma) * 3 + bal->ev[k].type + 1]++;
    for (uint32_t k = 0; k < nb; k++)
        b[k + 1] += b[k];
    for (uint32_t k = 0; k < ne; k++)
        bal->ev2[b[(uint32_t)(bal->ev[k].level / bal->p.step_ma) * 3 + bal->ev[k].type]++] =
            bal->ev[k];
    memcpy(bal->ev, bal->ev2, sizeof *bal->ev * ne);
}

struct wf {
    struct lade_balancer *bal;
    int32_t W;
    uint32_t nrise;
};

/* Can charger x rise one more step on the supply phases of m alongside those already rising? */
static bool can_slope(struct wf *w, const struct bal_cand *x, uint8_t m)
{
    struct lade_balancer *bal = w->bal;
    const struct bal_charger *c = &bal->ch[x->c];
    for (int p = 0; p < NPH; p++) {
        if (!((m >> p) & 1))
            continue;
        for (uint32_t j = 0; j < c->path_len; j++) {
            size_t r = (size_t)c->path[j] * NPH + p;
            if (bal->avail[r] - bal->used[r] < (int64_t)(bal->slope[r] + 1) * bal->p.step_ma)
                return false;
        }
    }
    return true;
}

static void add_slope(struct wf *w, struct bal_cand *x, uint8_t m, int d)
{
    const struct bal_charger *c = &w->bal->ch[x->c];
    for (int p = 0; p < NPH; p++)
        if ((m >> p) & 1)
            for (uint32_t j = 0; j < c->path_len; j++)
                w->bal->slope[(size_t)c->path[j] * NPH + p] += d;
}

static void freeze(struct wf *w, struct bal_cand *x)
{
    if (x->state == WF_RISE) {
        add_slope(w, x, x->cost, -1);
        x->cur_ma = w->W;
        w->nrise--;
    }
    x->cost = 0;
    x->state = WF_FROZEN;
}

static void on_event(struct wf *w, const struct bal_event *e)
{
    struct bal_cand *x = &w->bal->cand[e->k];
    switch (e->type) {
    case EV_START:
        if (x->state != WF_WAIT)
            return;
        if (x->cap_ma <= x->min_ma || !can_slope(w, x, e->mask)) {
            x->state = WF_FROZEN; /* stays at its minimum */
            return;
        }
        x->state = WF_RISE;
        x->cost = e->mask;
        add_slope(w, x, e->mask, +1);
        w->nrise++;
        return;
    case EV_COST:
        /* Above its fallback a phase the fallback covered starts to cost too. */
        if (x->state != WF_RISE)
            return;
        if (!can_slope(w, x, e->mask)) {
            freeze(w, x);
            return;
        }
        x->cost |= e->mask;
        add_slope(w, x, e->mask, +1);
        return;
    case EV_CAP:
        if (x->state == WF_RISE)
            freeze(w, x);
        return;
    }
}

/* Freeze everyone rising on a resource that cannot give each of them one more step. */
static void saturate(struct wf *w)
{
    struct lade_balancer *bal = w->bal;
    size_t nr = (size_t)bal->n_nodes * NPH;
    for (size_t r = 0; r < nr; r++) {
        if (bal->slope[r] <= 0 ||
            bal->avail[r] - bal->used[r] >= (int64_t)bal->slope[r] * bal->p.step_ma)
            continue;
        uint32_t node = (uint32_t)(r / NPH);
        int p = (int)(r % NPH);
        for (uint32_t pos = bal->range_lo[node]; pos < bal->range_hi[node]; pos++) {
            uint32_t k = bal->cmap[bal->dfs[pos]];
            if (k == UINT32_MAX)
                continue;
            struct bal_cand *x = &bal->cand[k];
            if (x->state == WF_RISE && ((x->cost >> p) & 1))
                freeze(w, x);
        }
    }
}

static void fill_tier(struct lade_balancer *bal, uint32_t lo, uint32_t hi)
{
    int32_t step = bal->p.step_ma;
    uint32_t ne = 0;
    for (uint32_t k = lo; k < hi; k++) {
        struct bal_cand *x = &bal->cand[k];
        if (!x->admitted)
            continue;
        const struct bal_charger *c = &bal->ch[x->c];
        x->state = WF_WAIT;
        x->cost = 0;
        uint8_t later = 0;
        int32_t fb = c->cfg.fallback_ma;
        for (int p = 0; p < NPH; p++)
            if (((x->mask >> p) & 1) && c->fb_env[p] > x->min_ma)
                later |= (uint8_t)(1u << p);
        bal->ev[ne++] = (struct bal_event){x->min_ma, EV_START, (uint8_t)(x->mask & ~later), k};
        if (later) /* costs from the grid step below its fallback: conservative */
            bal->ev[ne++] = (struct bal_event){round_down(fb, step), EV_COST, later, k};
        bal->ev[ne++] = (struct bal_event){x->cap_ma, EV_CAP, 0, k};
    }
    if (!ne)
        return;
    sort_events(bal, ne);
    struct wf w = {bal, bal->ev[0].level, 0};
    size_t nr = (size_t)bal->n_nodes * NPH;
    uint32_t ei = 0;
    for (;;) {
        while (ei < ne && bal->ev[ei].level <= w.W)
            on_event(&w, &bal->ev[ei++]);
        saturate(&w);
        if (w.nrise == 0) {
            if (ei >= ne)
                break;
            w.W = bal->ev[ei].level;
            continue;
        }
        int64_t d = ei < ne ? bal->ev[ei].level - w.W : INT64_MAX;
        for (size_t r = 0; r < nr; r++)
            if (bal->slope[r] > 0) {
                int64_t per = (int64_t)bal->slope[r] * step;
                int64_t dr = (bal->avail[r] - bal->used[r]) / per * step;
                d = dr < d ? dr : d;
            }
        if (d <= 0 || d == INT64_MAX)
            break; /* cannot happen: saturate() left room for a step, caps are events */
        w.W += (int32_t)d;
        for (size_t r = 0; r < nr; r++)
            bal->used[r] += (int64_t)bal->slope[r] * d;
    }
    for (uint32_t k = lo; k < hi; k++) {
        struct bal_cand *x = &bal->cand[k];
        if (x->state == WF_RISE)
            freeze(&w, x);
        x->state = WF_NONE;
    }
    memset(bal->slope, 0, sizeof *bal->slope * nr);
}

static void water_fill(struct lade_balancer *bal, uint32_t ncand)
{
    for (uint32_t lo = 0; lo < ncand;) {
        uint32_t hi = lo + 1;
        while (hi < ncand && bal->cand[hi].prio == bal->cand[lo].prio)
            hi++;
        fill_tier(bal, lo, hi);
        lo = hi;
    }
    /* What is left on a resource is less than a step for each charger that stopped there: one
     * more step each while it fits, in admission order — first to those already told at least
     * that much, so the odd step does not wander from charger to charger (a message each). */
    int32_t step = bal->p.step_ma;
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t k = 0; k < ncand; k++) {
            struct bal_cand *x = &bal->cand[k];
            if (!x->admitted || x->cur_ma + step > x->cap_ma)
                continue;
            const struct bal_charger *c = &bal->ch[x->c];
            struct bal_sp o = c->has_sent ? c->sent : c->conf;
            bool holds = o.ph == x->ph && o.ma >= x->cur_ma + step;
            if (holds != (pass == 0))
                continue;
            int32_t add[NPH];
            for (int p = 0; p < NPH; p++)
                add[p] = cost_at(c, p, x->cur_ma + step) - cost_at(c, p, x->cur_ma);
            if (fits(bal, c, x->mask, add)) {
                take(bal, c, x->mask, add);
                x->cur_ma += step;
            }
        }
}

/* ---- 5. emission ---- */

static struct bal_sp told(const struct bal_charger *c)
{
    return c->has_sent ? c->sent : c->conf;
}

/* The largest setpoint <= t (same phases) whose sending keeps the emission rule. */
static struct bal_sp allowed(struct lade_balancer *bal, uint32_t i, struct bal_sp t)
{
    struct bal_charger *c = &bal->ch[i];
    const int32_t *M = &bal->M[(size_t)i * NPH], *LB = &bal->LB[(size_t)i * NPH];
    if (t.ma < c->cfg.min_ma)
        return (struct bal_sp){0, t.ph};
    uint8_t m = bal_mask(bal, c, t.ph);
    int64_t v = t.ma;
    for (int p = 0; p < NPH; p++) {
        if (!((m >> p) & 1))
            continue;
        int64_t room = INT64_MAX;
        for (uint32_t j = 0; j < c->path_len; j++) {
            size_t r = (size_t)c->path[j] * NPH + p;
            int64_t left = bal->limit[r] - bal->load[r];
            room = left < room ? left : room;
        }
        /* Within the limit: up to what keeps Σ M <= limit. Above it: no higher than it can
         * already be, so what it really draws cannot rise. */
        int64_t vp = room >= 0 ? (int64_t)M[p] + room : 0;
        if (vp < LB[p])
            vp = LB[p];
        v = vp < v ? vp : v;
    }
    int32_t ma = round_down(v, bal->p.step_ma);
    if (ma < c->cfg.min_ma)
        ma = 0;
    return (struct bal_sp){ma, t.ph};
}

static void emit(struct lade_balancer *bal, uint32_t i, struct bal_sp v, bool resend,
                 uint32_t *n_out)
{
    struct bal_charger *c = &bal->ch[i];
    int32_t *M = &bal->M[(size_t)i * NPH], *LB = &bal->LB[(size_t)i * NPH], env[NPH];
    bal_env(bal, c, v, env);
    for (int p = 0; p < NPH; p++) {
        if (env[p] > M[p]) {
            for (uint32_t j = 0; j < c->path_len; j++)
                bal->load[(size_t)c->path[j] * NPH + p] += env[p] - M[p];
            M[p] = env[p];
        }
        LB[p] = env[p] < LB[p] ? env[p] : LB[p];
    }
    struct lade_bal_setpoint *o = &bal->out[(*n_out)++];
    o->charger = i;
    bal_record_sent(bal, c, v, resend, o);
}

lade_err lade_balancer_step(struct lade_balancer *bal, uint64_t now_ms,
                            struct lade_bal_step_out *out)
{
    if (!bal || !out)
        return LADE_ERR_INVAL;
    const struct lade_bal_params *P = &bal->p;
    uint64_t now = bal_advance(bal, now_ms);
    uint64_t next_v = now + P->periodic_ms, *next = &next_v;
    uint32_t nc = bal->n_chargers, n_out = 0, n_held = 0, n_waiting = 0;

    /* 1 */
    for (uint32_t i = 0; i < nc; i++) {
        struct bal_charger *c = &bal->ch[i];
        bal_collapse_if_fallen_back(bal, c, now);
        if (!c->online) {
            NEXT(c->contact_hi_ms + c->cfg.link_loss_deadline_ms + P->contact_margin_ms);
            continue;
        }
        /* a measurement from before its last confirmed change stops counting then */
        if (c->meas_valid && c->meas_ms <= c->conf_ms)
            NEXT(c->conf_ms + P->car_follow_ms);
        observe(bal, c, now, next);
    }
    /* 2 */
    accounting(bal, now);
    /* 3, 4 */
    uint32_t ncand = collect(bal, now);
    admit(bal, ncand);
    water_fill(bal, ncand);
    for (uint32_t i = 0; i < nc; i++) {
        struct bal_charger *c = &bal->ch[i];
        uint32_t k = bal->cmap[i];
        struct bal_sp o = told(c);
        if (k != UINT32_MAX && bal->cand[k].admitted) {
            c->target = (struct bal_sp){bal->cand[k].cur_ma, bal->cand[k].ph};
        } else {
            uint8_t ph = c->known || c->has_sent ? o.ph : c->cfg.max_phases;
            c->target = (struct bal_sp){0, ph < c->cfg.max_phases ? ph : c->cfg.max_phases};
        }
        if (k == UINT32_MAX) {
            c->run = LADE_BAL_IDLE;
        } else if (bal->cand[k].admitted) {
            if (c->run != LADE_BAL_RUNNING) {
                c->run = LADE_BAL_RUNNING;
                c->run_since_ms = now;
            }
        } else {
            if (c->run == LADE_BAL_RUNNING) {
                c->run = LADE_BAL_WAITING;
                c->run_since_ms = now;
                c->paused_after_run = true;
            } else if (c->run == LADE_BAL_IDLE) {
                c->run = LADE_BAL_WAITING;
                c->run_since_ms = now;
                c->paused_after_run = false;
            }
            n_waiting++;
        }
    }
    if (n_waiting && P->rotation_ms)
        for (uint32_t i = 0; i < nc; i++) {
            const struct bal_charger *c = &bal->ch[i];
            if (c->run == LADE_BAL_RUNNING)
                NEXT(c->run_since_ms + P->rotation_ms);
            else if (c->run == LADE_BAL_WAITING)
                NEXT(c->run_since_ms + P->rotation_wait_ms);
        }

    /* 5: decreases (and resends) first, in charger order */
    uint8_t *want = bal->want;
    memset(want, 0, nc);
    for (uint32_t i = 0; i < nc; i++) {
        struct bal_charger *c = &bal->ch[i];
        if (!c->online) {
            c->inc_pending = false;
            continue;
        }
        bool unknown = !c->known && !c->has_sent;
        struct bal_sp o = told(c), t = c->target;
        /* An increase below min_increase_ma is not worth a message (hysteresis). */
        bool small = !unknown && t.ph == o.ph && o.ma >= c->cfg.min_ma && t.ma > o.ma &&
                     t.ma - o.ma < P->min_increase_ma;
        if (!unknown && (same_sp(t, o, c->cfg.min_ma) || small)) {
            c->inc_pending = false;
            if (c->has_sent) {
                uint64_t due = c->sent_ms + bal_resend_interval_ms(bal, c);
                if (now < due) {
                    NEXT(due);
                } else {
                    /* A resend is a new chance to be applied: the same rule as any setpoint.
                     * If it no longer holds (a node went above its limit since), send what
                     * does. */
                    struct bal_sp v = allowed(bal, i, c->sent);
                    emit(bal, i, v, same_sp(v, c->sent, c->cfg.min_ma), &n_out);
                }
            }
            continue;
        }
        if (unknown || !raises(bal, c, t, o)) {
            c->inc_pending = false;
            struct bal_sp v = allowed(bal, i, t);
            if (unknown || !same_sp(v, o, c->cfg.min_ma))
                emit(bal, i, v, false, &n_out);
            continue;
        }
        if (!c->inc_pending) {
            c->inc_pending = true;
            c->inc_since_ms = now;
        }
        uint64_t hold = o.ma >= c->cfg.min_ma ? P->increase_hold_ms
                        : c->paused_after_run ? P->restart_hold_ms
                                              : P->start_hold_ms;
        if (now < c->inc_since_ms + hold) {
            n_held++;
            NEXT(c->inc_since_ms + hold);
            continue;
        }
        want[i] = 1;
    }
    /* ... then increases, in admission order (priority first) */
    for (uint32_t k = 0; k < ncand; k++) {
        uint32_t i = bal->cand[k].c;
        if (!want[i])
            continue;
        struct bal_charger *c = &bal->ch[i];
        struct bal_sp o = told(c), t = c->target, v = allowed(bal, i, t);
        bool enough = v.ma == t.ma || v.ph != o.ph || o.ma < c->cfg.min_ma ||
                      v.ma - o.ma >= P->min_increase_ma;
        if (v.ma >= c->cfg.min_ma && raises(bal, c, v, o) && enough) {
            emit(bal, i, v, false, &n_out);
            if (v.ma == t.ma)
                c->inc_pending = false;
        } else {
            n_held++; /* waits for confirmations: a reply or the periodic step comes back */
        }
        if (c->has_sent)
            NEXT(c->sent_ms + bal_resend_interval_ms(bal, c));
    }

    out->setpoints = bal->out;
    out->n_setpoints = n_out;
    out->next_step_ms = *next;
    out->n_waiting = n_waiting;
    out->n_held = n_held;
    return LADE_OK;
}
