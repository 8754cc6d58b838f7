/* The balancer's configuration, events and accounting (include/lade/balancer.h,
 * docs/balancer.md). The step itself is in step.c.
 *
 * Pure: no I/O, no clock; memory is allocated in lade_balancer_create() only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- configuration ---- */

void lade_balancer_params_default(struct lade_bal_params *p)
{
    memset(p, 0, sizeof *p);
    p->step_ma = 100;
    p->contact_margin_ms = 5000;
    p->ack_timeout_ms = 10000;
    p->increase_hold_ms = 10000;
    p->restart_hold_ms = 60000;
    p->start_hold_ms = 10000;
    p->min_increase_ma = 500;
    p->rotation_ms = 900000;
    p->rotation_wait_ms = 300000;
    p->reclaim_delay_ms = 60000;
    p->reclaim_threshold_ma = 3000;
    p->reclaim_headroom_ma = 2000;
    p->rampup_threshold_ma = 1000;
    p->settle_ms = 10000;
    p->measure_stale_ms = 120000;
    p->car_follow_ms = 5000;
    p->detect_threshold_ma = 1000;
    p->periodic_ms = 60000;
}

static bool params_ok(const struct lade_bal_params *p)
{
    /* The reclaim thresholds must nest, or a reclaimed charger is given back at once and
     * reclaimed again: rampup < headroom < threshold. */
    return p->step_ma >= 1 && p->step_ma <= 1000 && 6000 % p->step_ma == 0 &&
           p->contact_margin_ms <= 600000 && p->ack_timeout_ms >= 100 &&
           p->ack_timeout_ms <= 3600000 && p->increase_hold_ms <= 3600000 &&
           p->restart_hold_ms <= 3600000 && p->start_hold_ms <= 3600000 &&
           p->min_increase_ma >= 0 && p->min_increase_ma <= 63000 && p->rotation_ms <= 86400000 &&
           p->rotation_wait_ms <= 86400000 && p->reclaim_delay_ms <= 86400000 &&
           p->rampup_threshold_ma >= 0 && p->reclaim_headroom_ma > p->rampup_threshold_ma &&
           p->reclaim_threshold_ma > p->reclaim_headroom_ma && p->reclaim_threshold_ma <= 63000 &&
           p->settle_ms <= 3600000 && p->measure_stale_ms <= 86400000 &&
           p->car_follow_ms <= 600000 && p->detect_threshold_ma >= 0 &&
           p->detect_threshold_ma <= 63000 && p->periodic_ms >= 100 && p->periodic_ms <= 3600000;
}

static void set_err(struct lade_bal_config_error *err, enum lade_bal_config_problem problem,
                    int32_t node, int32_t charger, int32_t phase, int64_t value, int64_t limit)
{
    if (!err)
        return;
    err->problem = problem;
    err->node = node;
    err->charger = charger;
    err->phase = phase;
    err->value_ma = value;
    err->limit_ma = limit;
}

static uint8_t mask_of(enum lade_bal_network net, const uint8_t rot[NPH], uint8_t phases)
{
    if (phases == 3)
        return 7;
    /* TN: a 1-phase load is L1-N, on the supply phase L1 is wired to. IT: there is no N; the
     * load sits between L1 and L2 and its current flows in both supply phases (R16). */
    if (net == LADE_BAL_IT)
        return (uint8_t)((1u << rot[0]) | (1u << rot[1]));
    return (uint8_t)(1u << rot[0]);
}

/* The fallback as an envelope: the charger offers nothing below its min (charging.md). */
static void fallback_env(enum lade_bal_network net, const struct lade_bal_charger_config *c,
                         int32_t env[NPH])
{
    /* charging.md: never more phases than it is wired for */
    uint8_t m = mask_of(net, c->rotation,
                        c->fallback_phases < c->max_phases ? c->fallback_phases : c->max_phases);
    int32_t ma = c->fallback_ma >= c->min_ma ? c->fallback_ma : 0;
    for (int p = 0; p < NPH; p++)
        env[p] = (m >> p) & 1 ? ma : 0;
}

static lade_err check_charger(const struct lade_bal_config *cfg, uint32_t i,
                              struct lade_bal_config_error *err)
{
    const struct lade_bal_charger_config *c = &cfg->chargers[i];
    int32_t ci = (int32_t)i;
    if (c->node >= cfg->n_nodes) {
        set_err(err, LADE_BAL_CFG_NODE, -1, ci, -1, c->node, cfg->n_nodes);
        return LADE_ERR_CONFIG;
    }
    if (c->max_ma < LADE_BAL_MIN_MA || c->max_ma > LADE_BAL_FUSE_MAX_MA) {
        set_err(err, LADE_BAL_CFG_MAX, (int32_t)c->node, ci, -1, c->max_ma, LADE_BAL_FUSE_MAX_MA);
        return LADE_ERR_CONFIG;
    }
    if (c->min_ma < LADE_BAL_MIN_MA || c->min_ma > c->max_ma) {
        set_err(err, LADE_BAL_CFG_MIN, (int32_t)c->node, ci, -1, c->min_ma, c->max_ma);
        return LADE_ERR_CONFIG;
    }
    if ((c->max_phases != 1 && c->max_phases != 3) ||
        (c->fallback_phases != 1 && c->fallback_phases != 3)) {
        set_err(err, LADE_BAL_CFG_PHASES, (int32_t)c->node, ci, -1, 0, 0);
        return LADE_ERR_CONFIG;
    }
    unsigned seen = 0;
    for (int t = 0; t < NPH; t++)
        if (c->rotation[t] < NPH)
            seen |= 1u << c->rotation[t];
    if (seen != 7) {
        set_err(err, LADE_BAL_CFG_ROTATION, (int32_t)c->node, ci, -1, 0, 0);
        return LADE_ERR_CONFIG;
    }
    if (c->fallback_ma < 0 || c->fallback_ma > c->max_ma) {
        set_err(err, LADE_BAL_CFG_FALLBACK, (int32_t)c->node, ci, -1, c->fallback_ma, c->max_ma);
        return LADE_ERR_CONFIG;
    }
    if (c->link_loss_deadline_ms < 1000 || c->link_loss_deadline_ms > 3600000) {
        set_err(err, LADE_BAL_CFG_DEADLINE, (int32_t)c->node, ci, -1, 0, 0);
        return LADE_ERR_CONFIG;
    }
    if (c->priority < -1000 || c->priority > 1000) {
        set_err(err, LADE_BAL_CFG_PRIORITY, (int32_t)c->node, ci, -1, c->priority, 1000);
        return LADE_ERR_CONFIG;
    }
    return LADE_OK;
}

/* sums[n_nodes * 3] := fallback envelopes below each node (subtree sums; parent < child). */
static void fallback_sums(const struct lade_bal_config *cfg, int64_t *sums)
{
    memset(sums, 0, sizeof *sums * cfg->n_nodes * NPH);
    for (uint32_t i = 0; i < cfg->n_chargers; i++) {
        int32_t env[NPH];
        fallback_env(cfg->network, &cfg->chargers[i], env);
        for (int p = 0; p < NPH; p++)
            sums[(size_t)cfg->chargers[i].node * NPH + p] += env[p];
    }
    for (uint32_t n = cfg->n_nodes; n-- > 1;)
        for (int p = 0; p < NPH; p++)
            sums[(size_t)cfg->nodes[n].parent * NPH + p] += sums[(size_t)n * NPH + p];
}

static lade_err check_sums(uint32_t n_nodes, const int64_t *sums, const int32_t *limits,
                           struct lade_bal_config_error *err)
{
    for (uint32_t n = 0; n < n_nodes; n++)
        for (int p = 0; p < NPH; p++)
            if (sums[(size_t)n * NPH + p] > limits[(size_t)n * NPH + p]) {
                set_err(err, LADE_BAL_CFG_FALLBACK_SUM, (int32_t)n, -1, p,
                        sums[(size_t)n * NPH + p], limits[(size_t)n * NPH + p]);
                return LADE_ERR_CONFIG;
            }
    return LADE_OK;
}

/* Everything but the fallback sums. */
static lade_err check_shape(const struct lade_bal_config *cfg, struct lade_bal_config_error *err)
{
    if (!cfg || cfg->n_nodes < 1 || cfg->n_nodes > LADE_BAL_MAX_NODES ||
        cfg->n_chargers > LADE_BAL_MAX_CHARGERS || !cfg->nodes ||
        (cfg->n_chargers && !cfg->chargers)) {
        set_err(err, LADE_BAL_CFG_SIZE, -1, -1, -1, 0, 0);
        return LADE_ERR_CONFIG;
    }
    if (cfg->network != LADE_BAL_TN && cfg->network != LADE_BAL_IT) {
        set_err(err, LADE_BAL_CFG_NETWORK, -1, -1, -1, cfg->network, 0);
        return LADE_ERR_CONFIG;
    }
    if (!params_ok(&cfg->params)) {
        set_err(err, LADE_BAL_CFG_PARAMS, -1, -1, -1, 0, 0);
        return LADE_ERR_CONFIG;
    }
    for (uint32_t n = 0; n < cfg->n_nodes; n++) {
        int32_t par = cfg->nodes[n].parent;
        if (n == 0 ? par != -1 : (par < 0 || (uint32_t)par >= n)) {
            set_err(err, LADE_BAL_CFG_PARENT, (int32_t)n, -1, -1, par, 0);
            return LADE_ERR_CONFIG;
        }
        for (int p = 0; p < NPH; p++) {
            int32_t l = cfg->nodes[n].limit_ma[p];
            if (l < 0 || l > LADE_BAL_LIMIT_MAX_MA) {
                set_err(err, LADE_BAL_CFG_LIMIT, (int32_t)n, -1, p, l, LADE_BAL_LIMIT_MAX_MA);
                return LADE_ERR_CONFIG;
            }
        }
    }
    for (uint32_t i = 0; i < cfg->n_chargers; i++) {
        lade_err e = check_charger(cfg, i, err);
        if (e)
            return e;
    }
    return LADE_OK;
}

lade_err lade_balancer_check_config(const struct lade_bal_config *cfg,
                                    struct lade_bal_config_error *err)
{
    set_err(err, LADE_BAL_CFG_OK, -1, -1, -1, 0, 0);
    lade_err e = check_shape(cfg, err);
    if (e)
        return e;
    int64_t *sums = malloc(sizeof *sums * cfg->n_nodes * NPH);
    int32_t *limits = malloc(sizeof *limits * cfg->n_nodes * NPH);
    if (!sums || !limits) {
        e = LADE_ERR_NOMEM;
        goto out;
    }
    for (uint32_t n = 0; n < cfg->n_nodes; n++)
        memcpy(&limits[(size_t)n * NPH], cfg->nodes[n].limit_ma, sizeof cfg->nodes[n].limit_ma);
    fallback_sums(cfg, sums);
    e = check_sums(cfg->n_nodes, sums, limits, err);
out:
    free(sums);
    free(limits);
    return e;
}

int lade_balancer_config_error_format(const struct lade_bal_config_error *err, char *buf,
                                      size_t len)
{
    static const char *const ph[] = {"L1", "L2", "L3"};
    const char *phase = err->phase >= 0 && err->phase < NPH ? ph[err->phase] : "?";
    switch (err->problem) {
    case LADE_BAL_CFG_OK:
        return snprintf(buf, len, "configuration is valid");
    case LADE_BAL_CFG_SIZE:
        return snprintf(buf, len, "no nodes, or more than %d nodes or %d chargers",
                        LADE_BAL_MAX_NODES, LADE_BAL_MAX_CHARGERS);
    case LADE_BAL_CFG_NETWORK:
        return snprintf(buf, len, "unknown network type %" PRId64, err->value_ma);
    case LADE_BAL_CFG_PARENT:
        return snprintf(buf, len,
                        "node %d: parent %" PRId64
                        " is not valid (node 0 is the installation, a circuit's parent "
                        "comes before it)",
                        (int)err->node, err->value_ma);
    case LADE_BAL_CFG_LIMIT:
        return snprintf(buf, len, "node %d phase %s: limit %" PRId64 " mA is out of 0..%" PRId64,
                        (int)err->node, phase, err->value_ma, err->limit_ma);
    case LADE_BAL_CFG_NODE:
        return snprintf(buf, len, "charger %d: node %" PRId64 " does not exist", (int)err->charger,
                        err->value_ma);
    case LADE_BAL_CFG_MAX:
        return snprintf(buf, len, "charger %d: max current %" PRId64 " mA is out of 6000..63000",
                        (int)err->charger, err->value_ma);
    case LADE_BAL_CFG_MIN:
        return snprintf(buf, len,
                        "charger %d: min current %" PRId64 " mA is out of 6000..%" PRId64
                        " (its max)",
                        (int)err->charger, err->value_ma, err->limit_ma);
    case LADE_BAL_CFG_PHASES:
        return snprintf(buf, len, "charger %d: phases must be 1 or 3", (int)err->charger);
    case LADE_BAL_CFG_ROTATION:
        return snprintf(buf, len, "charger %d: phase rotation is not a permutation of L1 L2 L3",
                        (int)err->charger);
    case LADE_BAL_CFG_FALLBACK:
        return snprintf(buf, len,
                        "charger %d: offline current %" PRId64 " mA is out of 0..%" PRId64
                        " (its max)",
                        (int)err->charger, err->value_ma, err->limit_ma);
    case LADE_BAL_CFG_DEADLINE:
        return snprintf(buf, len, "charger %d: link-loss deadline out of 1 s..1 h",
                        (int)err->charger);
    case LADE_BAL_CFG_PRIORITY:
        return snprintf(buf, len, "charger %d: priority %" PRId64 " is out of -1000..1000",
                        (int)err->charger, err->value_ma);
    case LADE_BAL_CFG_FALLBACK_SUM:
        return snprintf(buf, len,
                        "node %d phase %s: offline fallback currents sum to %" PRId64
                        " mA, above its limit of %" PRId64 " mA",
                        (int)err->node, phase, err->value_ma, err->limit_ma);
    case LADE_BAL_CFG_PARAMS:
        return snprintf(buf, len, "balancer parameters out of range");
    }
    return snprintf(buf, len, "unknown configuration problem %d", (int)err->problem);
}

/* ---- create / destroy ---- */

void lade_balancer_destroy(struct lade_balancer *bal)
{
    if (!bal)
        return;
    free(bal->parent);
    free(bal->limit);
    free(bal->fb_sum);
    free(bal->range_lo);
    free(bal->range_hi);
    free(bal->dfs);
    free(bal->paths);
    free(bal->ch);
    free(bal->load);
    free(bal->avail);
    free(bal->used);
    free(bal->slope);
    free(bal->M);
    free(bal->LB);
    free(bal->cand);
    free(bal->order);
    free(bal->ev);
    free(bal->ev2);
    free(bal->bucket);
    free(bal->cmap);
    free(bal->want);
    free(bal->out);
    free(bal);
}

static void *alloc_n(size_t n, size_t size)
{
    return calloc(n ? n : 1, size);
}
#define ALLOC(ptr, n) ((ptr) = alloc_n((size_t)(n), sizeof *(ptr)))

/* Charger positions in depth-first order, so the chargers below any node are one range. */
static lade_err build_dfs(struct lade_balancer *bal, const struct lade_bal_config *cfg)
{
    lade_err e = LADE_ERR_NOMEM;
    uint32_t nn = cfg->n_nodes, nc = cfg->n_chargers;
    uint32_t *child_start = NULL, *child = NULL, *ch_start = NULL, *chs = NULL, *stack = NULL,
             *iter = NULL;
    if (!ALLOC(child_start, nn + 1) || !ALLOC(child, nn) || !ALLOC(ch_start, nn + 1) ||
        !ALLOC(chs, nc) || !ALLOC(stack, nn) || !ALLOC(iter, nn))
        goto out;
    /* children and chargers of each node as CSR lists */
    for (uint32_t n = 1; n < nn; n++)
        child_start[cfg->nodes[n].parent + 1]++;
    for (uint32_t n = 0; n < nn; n++)
        child_start[n + 1] += child_start[n];
    memcpy(iter, child_start, sizeof *iter * nn);
    for (uint32_t n = 1; n < nn; n++)
        child[iter[cfg->nodes[n].parent]++] = n;
    for (uint32_t i = 0; i < nc; i++)
        ch_start[cfg->chargers[i].node + 1]++;
    for (uint32_t n = 0; n < nn; n++)
        ch_start[n + 1] += ch_start[n];
    memcpy(iter, ch_start, sizeof *iter * nn);
    for (uint32_t i = 0; i < nc; i++)
        chs[iter[cfg->chargers[i].node]++] = i;
    /* iterative DFS: a node's own chargers, then its children's subtrees */
    uint32_t pos = 0, sp = 0;
    memcpy(iter, child_start, sizeof *iter * nn);
    stack[sp++] = 0;
    bal->range_lo[0] = pos;
    for (uint32_t k = ch_start[0]; k < ch_start[1]; k++)
        bal->dfs[pos++] = chs[k];
    while (sp) {
        uint32_t n = stack[sp - 1];
        if (iter[n] < child_start[n + 1]) {
            uint32_t c = child[iter[n]++];
            stack[sp++] = c;
            bal->range_lo[c] = pos;
            for (uint32_t k = ch_start[c]; k < ch_start[c + 1]; k++)
                bal->dfs[pos++] = chs[k];
        } else {
            bal->range_hi[n] = pos;
            sp--;
        }
    }
    e = LADE_OK;
out:
    free(child_start);
    free(child);
    free(ch_start);
    free(chs);
    free(stack);
    free(iter);
    return e;
}

lade_err lade_balancer_create(const struct lade_bal_config *cfg, uint64_t now_ms,
                              struct lade_balancer **out, struct lade_bal_config_error *err)
{
    if (!out)
        return LADE_ERR_INVAL;
    *out = NULL;
    lade_err e = lade_balancer_check_config(cfg, err);
    if (e)
        return e;
    uint32_t nn = cfg->n_nodes, nc = cfg->n_chargers;
    struct lade_balancer *bal = calloc(1, sizeof *bal);
    if (!bal)
        return LADE_ERR_NOMEM;
    e = LADE_ERR_NOMEM;
    bal->network = cfg->network;
    bal->p = cfg->params;
    bal->n_nodes = nn;
    bal->n_chargers = nc;
    bal->now_ms = now_ms;
    /* node depth bounds the paths' total length */
    size_t total_path = 0;
    uint32_t *depth = NULL;
    if (!ALLOC(depth, nn))
        goto fail;
    for (uint32_t n = 1; n < nn; n++)
        depth[n] = depth[cfg->nodes[n].parent] + 1;
    for (uint32_t i = 0; i < nc; i++)
        total_path += depth[cfg->chargers[i].node] + 1;
    free(depth);
    if (!ALLOC(bal->parent, nn) || !ALLOC(bal->limit, (size_t)nn * NPH) ||
        !ALLOC(bal->fb_sum, (size_t)nn * NPH) || !ALLOC(bal->range_lo, nn) ||
        !ALLOC(bal->range_hi, nn) || !ALLOC(bal->dfs, nc) || !ALLOC(bal->paths, total_path) ||
        !ALLOC(bal->ch, nc) || !ALLOC(bal->load, (size_t)nn * NPH) ||
        !ALLOC(bal->avail, (size_t)nn * NPH) || !ALLOC(bal->used, (size_t)nn * NPH) ||
        !ALLOC(bal->slope, (size_t)nn * NPH) || !ALLOC(bal->M, (size_t)nc * NPH) ||
        !ALLOC(bal->LB, (size_t)nc * NPH) || !ALLOC(bal->cand, nc) || !ALLOC(bal->order, nc) ||
        !ALLOC(bal->ev2, (size_t)nc * 3) || !ALLOC(bal->ev, (size_t)nc * 3) ||
        !ALLOC(bal->cmap, nc) || !ALLOC(bal->want, nc) || !ALLOC(bal->out, nc))
        goto fail;
    bal->n_buckets = (uint32_t)(LADE_BAL_FUSE_MAX_MA / bal->p.step_ma + 1) * 3;
    if (!ALLOC(bal->bucket, bal->n_buckets + 1))
        goto fail;
    for (uint32_t n = 0; n < nn; n++) {
        bal->parent[n] = cfg->nodes[n].parent;
        memcpy(&bal->limit[(size_t)n * NPH], cfg->nodes[n].limit_ma, sizeof(int32_t) * NPH);
    }
    fallback_sums(cfg, bal->fb_sum);
    if (build_dfs(bal, cfg))
        goto fail;
    uint32_t *path = bal->paths;
    for (uint32_t i = 0; i < nc; i++) {
        struct bal_charger *c = &bal->ch[i];
        c->cfg = cfg->chargers[i];
        c->mask1 = mask_of(bal->network, c->cfg.rotation, 1);
        c->mask3 = 7;
        fallback_env(bal->network, &c->cfg, c->fb_env);
        c->path = path;
        for (int32_t n = (int32_t)c->cfg.node; n >= 0; n = bal->parent[n])
            path[c->path_len++] = (uint32_t)n;
        path += c->path_len;
        /* Unknown until it confirms something: it may hold any setpoint up to its max on
         * 3 phases, or its fallback. */
        c->has_older = true;
        for (int p = 0; p < NPH; p++) {
            c->older_hi[p] = c->cfg.max_ma;
            c->older_lo[p] = 0;
        }
        c->fb_sticky = true;
        c->fb_since_ms = now_ms;
        c->contact_hi_ms = now_ms;
        c->conf.ph = c->cfg.max_phases;
        c->target.ph = c->cfg.max_phases;
    }
    *out = bal;
    return LADE_OK;
fail:
    lade_balancer_destroy(bal);
    return e;
}

/* ---- helpers shared with step.c ---- */

uint64_t bal_advance(struct lade_balancer *bal, uint64_t now_ms)
{
    if (now_ms > bal->now_ms)
        bal->now_ms = now_ms;
    return bal->now_ms;
}

uint8_t bal_mask(const struct lade_balancer *bal, const struct bal_charger *c, uint8_t phases)
{
    (void)bal;
    return phases == 1 ? c->mask1 : c->mask3;
}

void bal_env(const struct lade_balancer *bal, const struct bal_charger *c, struct bal_sp sp,
             int32_t env[NPH])
{
    /* A setpoint below the charger's min is a pause (charging.md: offer 0 below min). */
    uint8_t m = bal_mask(bal, c, sp.ph);
    int32_t ma = sp.ma >= c->cfg.min_ma ? sp.ma : 0;
    for (int p = 0; p < NPH; p++)
        env[p] = (m >> p) & 1 ? ma : 0;
}

/* May it be applying its fallback right now, as far as a setpoint sent now could reach it?
 * Offline, or offline at some point since the last setpoint it confirmed. A charger that falls
 * back has lost the hub for its deadline and drops its connection (charging.md, "In the agent"),
 * so the hub reports it offline before a new connection can carry a setpoint to it. (Its might-
 * draw counts the fallback in any case.) */
bool bal_maybe_fallback(const struct bal_charger *c)
{
    return c->fb_sticky || !c->online;
}

/* M: might draw (upper bound); LB: the least it can be allowed now (lower bound of its offer);
 * over: what it was measured drawing above everything it may be allowed, once its car had time
 * to follow the last confirmed change (over-draw). Per supply phase. */
void bal_accounting(const struct lade_balancer *bal, const struct bal_charger *c, uint64_t now_ms,
                    int32_t M[NPH], int32_t LB[NPH], int32_t over[NPH])
{
    int32_t env[NPH];
    for (int p = 0; p < NPH; p++) {
        M[p] = c->fb_env[p]; /* always: see the header, "THE invariant" */
        LB[p] = INT32_MAX;
    }
    if (c->known) {
        bal_env(bal, c, c->conf, env);
        for (int p = 0; p < NPH; p++) {
            M[p] = env[p] > M[p] ? env[p] : M[p];
            LB[p] = env[p] < LB[p] ? env[p] : LB[p];
        }
    }
    if (c->has_sent) {
        bal_env(bal, c, c->sent, env);
        for (int p = 0; p < NPH; p++) {
            M[p] = env[p] > M[p] ? env[p] : M[p];
            LB[p] = env[p] < LB[p] ? env[p] : LB[p];
        }
    }
    if (c->has_older)
        for (int p = 0; p < NPH; p++) {
            M[p] = c->older_hi[p] > M[p] ? c->older_hi[p] : M[p];
            LB[p] = c->older_lo[p] < LB[p] ? c->older_lo[p] : LB[p];
        }
    if (bal_maybe_fallback(c))
        for (int p = 0; p < NPH; p++)
            LB[p] = c->fb_env[p] < LB[p] ? c->fb_env[p] : LB[p];
    for (int p = 0; p < NPH; p++) {
        if (LB[p] == INT32_MAX)
            LB[p] = 0;
        over[p] = 0;
    }
    /* A measurement from before the last confirmed change describes the old offer once the car
     * has had time to follow the new one. */
    uint64_t follow = c->conf_ms + bal->p.car_follow_ms;
    if (c->meas_valid && (c->meas_ms > c->conf_ms || now_ms < follow)) {
        bool settled = c->meas_ms >= follow;
        for (int t = 0; t < NPH; t++) {
            int p = c->cfg.rotation[t];
            if (c->meas[t] > M[p]) {
                over[p] = settled ? c->meas[t] - M[p] : 0;
                M[p] = c->meas[t];
            }
        }
    }
}

/* Offline since long enough that every message it may have had is older than its deadline:
 * it is at its fallback (charging.md, "Link loss"), and stays there until a new setpoint. */
void bal_collapse_if_fallen_back(struct lade_balancer *bal, struct bal_charger *c, uint64_t now_ms)
{
    if (c->online)
        return;
    if (now_ms < c->contact_hi_ms + c->cfg.link_loss_deadline_ms + bal->p.contact_margin_ms)
        return;
    struct bal_sp fb = {c->cfg.fallback_ma, c->cfg.fallback_phases < c->cfg.max_phases
                                                ? c->cfg.fallback_phases
                                                : c->cfg.max_phases};
    if (c->known && !c->has_sent && !c->has_older && c->conf.ma == fb.ma && c->conf.ph == fb.ph &&
        !c->meas_valid)
        return;
    c->known = true;
    c->conf = fb;
    c->conf_ms = now_ms;
    c->has_sent = false;
    c->has_older = false;
    c->meas_valid = false;
    c->resends = 0;
    if (c->sent_seq > c->conf_seq)
        c->conf_seq = c->sent_seq; /* a late reply to anything before cannot be true now */
    if (!c->fb_sticky) {
        c->fb_sticky = true;
        c->fb_since_ms = now_ms;
    }
}

uint64_t bal_resend_interval_ms(const struct lade_balancer *bal, const struct bal_charger *c)
{
    uint32_t k = c->resends < 4 ? c->resends : 4;
    return (uint64_t)bal->p.ack_timeout_ms << k;
}

void bal_record_sent(struct lade_balancer *bal, struct bal_charger *c, struct bal_sp sp,
                     bool resend, struct lade_bal_setpoint *out)
{
    uint64_t now = bal->now_ms;
    if (c->has_sent) {
        /* The one before may still arrive (or have arrived, its reply lost): it keeps counting
         * until something newer is confirmed. */
        int32_t env[NPH];
        bal_env(bal, c, c->sent, env);
        for (int p = 0; p < NPH; p++) {
            if (!c->has_older) {
                c->older_hi[p] = env[p];
                c->older_lo[p] = env[p];
            } else {
                c->older_hi[p] = env[p] > c->older_hi[p] ? env[p] : c->older_hi[p];
                c->older_lo[p] = env[p] < c->older_lo[p] ? env[p] : c->older_lo[p];
            }
        }
        c->has_older = true;
    }
    c->resends = resend ? c->resends + 1 : 0;
    c->has_sent = true;
    c->sent = sp;
    c->sent_seq = ++bal->seq;
    c->sent_ms = now;
    c->ever_sent = true;
    if (now > c->contact_hi_ms)
        c->contact_hi_ms = now;
    c->ring[c->ring_next % SENT_RING] = (struct bal_sent_rec){c->sent_seq, now, sp};
    c->ring_next++;
    out->current_ma = sp.ma;
    out->phases = sp.ph;
    out->resend = resend;
    out->seq = c->sent_seq;
}

/* ---- events ---- */

static struct bal_charger *get(struct lade_balancer *bal, uint32_t idx)
{
    return bal && idx < bal->n_chargers ? &bal->ch[idx] : NULL;
}

static void set_sticky(struct bal_charger *c, uint64_t now)
{
    c->fb_sticky = true;
    if (now > c->fb_since_ms)
        c->fb_since_ms = now;
}

/* A message from the charger at now: it was in contact. */
static void heard(struct bal_charger *c, uint64_t now)
{
    if (now > c->contact_hi_ms)
        c->contact_hi_ms = now;
}

lade_err lade_balancer_charger_online(struct lade_balancer *bal, uint32_t idx, bool online,
                                      uint64_t now_ms)
{
    struct bal_charger *c = get(bal, idx);
    if (!c)
        return LADE_ERR_INVAL;
    uint64_t now = bal_advance(bal, now_ms);
    if (!online) {
        if (c->online)
            set_sticky(c, now);
        c->online = false;
        /* The hub sends nothing to a client it declared gone. */
        if (now > c->contact_hi_ms)
            c->contact_hi_ms = now;
        return LADE_OK;
    }
    if (!c->online) {
        /* It may have fallen back at any moment while offline: the window ends now. */
        set_sticky(c, now);
        c->online = true;
    }
    heard(c, now);
    return LADE_OK;
}

lade_err lade_balancer_charger_heard(struct lade_balancer *bal, uint32_t idx, uint64_t now_ms)
{
    struct bal_charger *c = get(bal, idx);
    if (!c)
        return LADE_ERR_INVAL;
    heard(c, bal_advance(bal, now_ms));
    return LADE_OK;
}

lade_err lade_balancer_charger_sent(struct lade_balancer *bal, uint32_t idx, uint64_t now_ms)
{
    struct bal_charger *c = get(bal, idx);
    if (!c)
        return LADE_ERR_INVAL;
    uint64_t now = bal_advance(bal, now_ms);
    if (now > c->contact_hi_ms)
        c->contact_hi_ms = now;
    return LADE_OK;
}

lade_err lade_balancer_charger_demand(struct lade_balancer *bal, uint32_t idx, bool demand,
                                      uint64_t now_ms)
{
    struct bal_charger *c = get(bal, idx);
    if (!c)
        return LADE_ERR_INVAL;
    uint64_t now = bal_advance(bal, now_ms);
    heard(c, now);
    if (demand != c->demand) {
        /* A new car (or none): forget what was learnt about the last one. */
        c->demand = demand;
        c->car_phases = 0;
        c->cap_ma = 0;
        c->under = false;
    }
    return LADE_OK;
}

lade_err lade_balancer_charger_measured(struct lade_balancer *bal, uint32_t idx,
                                        const int32_t current_ma[LADE_BAL_PHASES], uint64_t now_ms)
{
    struct bal_charger *c = get(bal, idx);
    if (!c || !current_ma)
        return LADE_ERR_INVAL;
    uint64_t now = bal_advance(bal, now_ms);
    heard(c, now);
    for (int t = 0; t < NPH; t++)
        c->meas[t] = current_ma[t] > 0 ? current_ma[t] : 0;
    c->meas_valid = true;
    c->meas_ms = now;
    return LADE_OK;
}

static const struct bal_sent_rec *ring_find(const struct bal_charger *c, uint32_t seq)
{
    for (int k = 0; k < SENT_RING; k++)
        if (c->ring[k].seq == seq && seq != 0)
            return &c->ring[k];
    return NULL;
}

lade_err lade_balancer_ack(struct lade_balancer *bal, uint32_t idx, uint32_t seq, uint64_t now_ms)
{
    struct bal_charger *c = get(bal, idx);
    if (!c)
        return LADE_ERR_INVAL;
    uint64_t now = bal_advance(bal, now_ms);
    heard(c, now);
    const struct bal_sent_rec *rec = ring_find(c, seq);
    if (seq <= c->conf_seq || !rec || (c->has_sent && seq > c->sent_seq))
        return rec || seq <= c->conf_seq ? LADE_OK : LADE_ERR_NOT_FOUND;
    if (c->fb_sticky && c->online && rec->ms >= c->fb_since_ms)
        c->fb_sticky = false;
    c->conf_seq = seq;
    c->conf_ms = now;
    if (c->has_sent && seq == c->sent_seq) {
        /* Setpoints arrive in order: everything older was applied before it or never. */
        c->known = true;
        c->conf = c->sent;
        c->has_sent = false;
        c->has_older = false;
        c->resends = 0;
    } else if (!c->has_older) {
        /* An older one while a newer one is on its way: it holds this one or the newer. */
        c->known = true;
        c->conf = rec->sp;
    } else {
        /* ... and maybe one sent between them, whose value only the envelope keeps. */
        int32_t env[NPH];
        bal_env(bal, c, rec->sp, env);
        c->known = false;
        for (int p = 0; p < NPH; p++) {
            c->older_hi[p] = env[p] > c->older_hi[p] ? env[p] : c->older_hi[p];
            c->older_lo[p] = env[p] < c->older_lo[p] ? env[p] : c->older_lo[p];
        }
    }
    return LADE_OK;
}

lade_err lade_balancer_nak(struct lade_balancer *bal, uint32_t idx, uint32_t seq, uint64_t now_ms)
{
    struct bal_charger *c = get(bal, idx);
    if (!c)
        return LADE_ERR_INVAL;
    bal_advance(bal, now_ms);
    if (!c->has_sent || seq != c->sent_seq)
        return LADE_ERR_NOT_FOUND;
    c->has_sent = false;
    c->resends = 0;
    if (!c->known && !c->has_older) {
        /* Nothing else left to describe it: it is where the older envelope was (none). This
         * cannot happen after create (the unknown start is an older envelope). */
        c->known = true;
    }
    return LADE_OK;
}

lade_err lade_balancer_charger_assume(struct lade_balancer *bal, uint32_t idx, int32_t current_ma,
                                      uint8_t phases)
{
    struct bal_charger *c = get(bal, idx);
    if (!c)
        return LADE_ERR_INVAL;
    if (current_ma < 0 || current_ma > c->cfg.max_ma || (phases != 1 && phases != 3))
        return LADE_ERR_INVAL;
    if (c->ever_sent)
        return LADE_ERR_STATE;
    c->known = true;
    c->conf = (struct bal_sp){current_ma, phases < c->cfg.max_phases ? phases : c->cfg.max_phases};
    c->has_older = false;
    return LADE_OK;
}

lade_err lade_balancer_set_limit(struct lade_balancer *bal, uint32_t node,
                                 const int32_t limit_ma[LADE_BAL_PHASES],
                                 struct lade_bal_config_error *err)
{
    set_err(err, LADE_BAL_CFG_OK, -1, -1, -1, 0, 0);
    if (!bal || node >= bal->n_nodes || !limit_ma)
        return LADE_ERR_INVAL;
    for (int p = 0; p < NPH; p++) {
        if (limit_ma[p] < 0 || limit_ma[p] > LADE_BAL_LIMIT_MAX_MA) {
            set_err(err, LADE_BAL_CFG_LIMIT, (int32_t)node, -1, p, limit_ma[p],
                    LADE_BAL_LIMIT_MAX_MA);
            return LADE_ERR_INVAL;
        }
        if (bal->fb_sum[(size_t)node * NPH + p] > limit_ma[p]) {
            set_err(err, LADE_BAL_CFG_FALLBACK_SUM, (int32_t)node, -1, p,
                    bal->fb_sum[(size_t)node * NPH + p], limit_ma[p]);
            return LADE_ERR_CONFIG;
        }
    }
    memcpy(&bal->limit[(size_t)node * NPH], limit_ma, sizeof(int32_t) * NPH);
    return LADE_OK;
}

/* ---- introspection ---- */

lade_err lade_balancer_might_draw(const struct lade_balancer *bal, uint32_t idx, uint64_t now_ms,
                                  int32_t out_ma[LADE_BAL_PHASES])
{
    if (!bal || idx >= bal->n_chargers || !out_ma)
        return LADE_ERR_INVAL;
    int32_t LB[NPH], over[NPH];
    uint64_t now = now_ms > bal->now_ms ? now_ms : bal->now_ms;
    bal_accounting(bal, &bal->ch[idx], now, out_ma, LB, over);
    return LADE_OK;
}

lade_err lade_balancer_charger_info(const struct lade_balancer *bal, uint32_t idx, uint64_t now_ms,
                                    struct lade_bal_charger_info *out)
{
    if (!bal || idx >= bal->n_chargers || !out)
        return LADE_ERR_INVAL;
    const struct bal_charger *c = &bal->ch[idx];
    uint64_t now = now_ms > bal->now_ms ? now_ms : bal->now_ms;
    int32_t over[NPH];
    memset(out, 0, sizeof *out);
    out->online = c->online;
    out->demand = c->demand;
    out->run = c->run;
    out->run_since_ms = c->run_since_ms;
    out->target_ma = c->target.ma;
    out->target_phases = c->target.ph;
    out->known = c->known && !c->has_older;
    out->confirmed_ma = c->conf.ma;
    out->confirmed_phases = c->conf.ph;
    out->pending = c->has_sent;
    out->pending_ma = c->sent.ma;
    out->pending_phases = c->sent.ph;
    out->pending_seq = c->sent_seq;
    out->maybe_fallback = bal_maybe_fallback(c);
    bal_accounting(bal, c, now, out->might_draw_ma, out->least_ma, over);
    out->reclaim_cap_ma = c->cap_ma;
    out->car_phases = c->car_phases;
    return LADE_OK;
}

lade_err lade_balancer_node_limit(const struct lade_balancer *bal, uint32_t node,
                                  int32_t out_ma[LADE_BAL_PHASES])
{
    if (!bal || node >= bal->n_nodes || !out_ma)
        return LADE_ERR_INVAL;
    memcpy(out_ma, &bal->limit[(size_t)node * NPH], sizeof(int32_t) * NPH);
    return LADE_OK;
}
