/* The portal's core (include/lade/portal.h, docs/portal.md): the hub link, ingestion of what
 * chargers send, one balancer per installation and the setpoints it emits, the live view and
 * the metrics. The REST API (api.c) sits on top through portal_int.h.
 *
 * Data flow:
 *   hub --telemetry/lifecycle--> on_event --> store (state, sessions once, presence)
 *                                         \-> site balancer events --> kick the site's step
 *   step --> setpoints --> lade_svc_call(setCurrent) --> reply --> ack / nak --> kick
 * Every site (installation) has a timer that runs its step at the balancer's next_step_ms and
 * right after any event; several events in one loop turn cost one step.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "lade/auth.h"
#include "lade/balancer.h"
#include "lade/clock.h"
#include "lade/http.h"
#include "lade/ingest.h"
#include "lade/log.h"
#include "lade/loop.h"
#include "lade/registry.h"
#include "lade/store.h"
#include "lade/svc.h"

#include "portal_int.h"

#define MOD "portal"

#define HISTORY_POINTS      360   /* the live view's last hour, one point per 10 s */
#define HISTORY_STEP_MS     10000 /* spacing of those points */
#define SAMPLE_EVERY_S      10    /* at most one stored sample per charger per this */
#define SAMPLE_KEEP_S       86400 /* samples kept a day */
#define SETPOINT_KEEP_MS    (7LL * 86400 * 1000)
#define HOUSEKEEPING_MS     60000
#define PRUNE_BUDGET        2000 /* rows per prune call: the loop is never held long */
#define SETPOINT_TIMEOUT_MS 15000
#define MEAS_REFRESH_MS     30000 /* a quiet charger's last currents are given again this often */

/* What the portal knows about one charger (every charger in the store). */
struct pchg {
    struct lade_store_charger sc; /* the stored configuration (name, assignment, limits) */
    struct site *site;            /* its installation's balancer, NULL when unassigned */
    uint32_t idx;                 /* its index in site->bal */
    bool online;
    bool has_mode, final_stop;
    int mode;
    bool has_drawn;
    int32_t drawn_ma[3]; /* per charger terminal L1..L3 */
    int32_t power_w;
    int64_t energy_wh;
    bool has_alloc;
    int32_t alloc_ma;            /* 708: what the charger says it was allocated */
    int32_t rep_offline_ma;      /* 523: the offline current it reports; -1 unknown */
    int32_t rep_max_ma;          /* 510: its max current in force; -1 unknown */
    int rep_offline_ph;          /* 522: its offline phases; -1 unknown */
    uint64_t settings_pushed_ms; /* last time the stored settings were pushed to its twin */
    int64_t last_sample_s;
    uint64_t meas_real_ms; /* last measurement the charger sent */
    uint64_t meas_fed_ms;  /* last time a measurement was given to the balancer */
    uint64_t sp_sent_ms;   /* last setpoint sent to it */
    char firmware[LADE_OBS_STR_MAX + 1];
};

struct hist_point {
    int64_t t_ms;
    int32_t measured[3], limit[3];
};

struct site {
    struct lade_portal *p;
    struct lade_store_installation in;
    uint64_t gen; /* changes with every rebuild of bal: replies to older setpoints are ignored */
    struct lade_balancer *bal;
    enum lade_bal_network network;
    uint32_t n_nodes;
    struct lade_bal_node_config *nodes;
    int64_t *node_circuit; /* node → circuit id (0: the installation) */
    char (*node_name)[LADE_STORE_NAME_MAX + 1];
    uint32_t n_chg;
    struct lade_bal_charger_config *cc;
    struct pchg **chg; /* index → charger */
    struct lade_timer timer;
    struct hist_point hist[HISTORY_POINTS];
    uint32_t hist_n, hist_head; /* ring: oldest at hist_head */
    uint64_t next_hist_ms;
};

struct lade_portal {
    struct lade_portal_opts o;
    char *web_dir, *db_path, *bind_addr;
    struct lade_loop *loop;
    struct lade_store *store;
    struct lade_http *http;
    struct portal_api *api;
    struct portal_fw *fw; /* NULL without a firmware directory */
    struct lade_svc *svc;
    bool svc_online;
    struct lade_bal_params params;
    struct site **sites;
    size_t n_sites;
    struct pchg **chg;
    size_t n_chg, cap_chg;
    /* Lookup by store id and by device id: open-addressing tables of indexes into chg (-1:
     * empty), rebuilt lazily after any change of a charger's id or device id (rare: config
     * changes), so the per-message lookup is O(1) at fleet scale. */
    int32_t *ix_id, *ix_dev;
    size_t ix_cap;
    bool ix_dirty;
    struct lade_timer housekeeping;
    struct portal_metrics m;
    uint64_t gen_next;
};

struct sp_call {
    struct lade_portal *p;
    int64_t charger_id;
    uint64_t gen;
    uint32_t seq;
    int64_t sp_id;
};

struct api_call {
    struct lade_portal *p;
    int64_t charger_id;
    portal_reply_fn fn;
    void *ud;
};

static void site_kick(struct site *s);

/* ---- small helpers ---- */

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static uint64_t ns_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int64_t portal_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void why_set(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void why_set(char *why, size_t cap, const char *fmt, ...)
{
    if (!why || !cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, cap, fmt, ap);
    va_end(ap);
}

void portal_id_format(enum portal_id_kind kind, int64_t id, char out[PORTAL_ID_LEN + 1])
{
    snprintf(out, PORTAL_ID_LEN + 1, "%08x-0000-4000-8000-%012llx", (unsigned)kind,
             (unsigned long long)id & 0xffffffffffffull);
}

lade_err portal_id_parse(enum portal_id_kind kind, const char *s, int64_t *id)
{
    if (!s || !id || strlen(s) != PORTAL_ID_LEN)
        return LADE_ERR_INVAL;
    char want[PORTAL_ID_LEN + 1];
    portal_id_format(kind, 0, want);
    /* The first 24 characters name the kind; the last 12 are the number in hex. */
    if (strncasecmp(s, want, 24) != 0)
        return LADE_ERR_INVAL;
    int64_t v = 0;
    for (int i = 24; i < PORTAL_ID_LEN; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return LADE_ERR_INVAL;
        v = v * 16 + d;
    }
    if (v <= 0)
        return LADE_ERR_INVAL;
    *id = v;
    return LADE_OK;
}

struct lade_store *portal_store(struct lade_portal *p)
{
    return p->store;
}

const struct lade_portal_opts *portal_opts(const struct lade_portal *p)
{
    return &p->o;
}

struct portal_fw *portal_firmware(struct lade_portal *p)
{
    return p ? p->fw : NULL;
}

struct portal_metrics *portal_metrics(struct lade_portal *p)
{
    return &p->m;
}

uint16_t lade_portal_port(const struct lade_portal *p)
{
    return p && p->http ? lade_http_port(p->http) : 0;
}

/* ---- chargers ---- */

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static uint64_t hash_id(int64_t id)
{
    uint64_t x = (uint64_t)id * 0x9e3779b97f4a7c15ull;
    return x ^ (x >> 29);
}

static bool index_rebuild(struct lade_portal *p)
{
    size_t cap = 64;
    while (cap < p->n_chg * 2 + 1)
        cap *= 2;
    if (cap != p->ix_cap) {
        int32_t *a = malloc(cap * sizeof *a), *b = malloc(cap * sizeof *b);
        if (!a || !b) {
            free(a);
            free(b);
            return false;
        }
        free(p->ix_id);
        free(p->ix_dev);
        p->ix_id = a;
        p->ix_dev = b;
        p->ix_cap = cap;
    }
    for (size_t i = 0; i < cap; i++)
        p->ix_id[i] = p->ix_dev[i] = -1;
    for (size_t i = 0; i < p->n_chg; i++) {
        const struct lade_store_charger *sc = &p->chg[i]->sc;
        if (sc->id > 0) {
            size_t h = hash_id(sc->id) & (cap - 1);
            while (p->ix_id[h] >= 0)
                h = (h + 1) & (cap - 1);
            p->ix_id[h] = (int32_t)i;
        }
        if (sc->device_id[0]) {
            size_t h = hash_str(sc->device_id) & (cap - 1);
            while (p->ix_dev[h] >= 0)
                h = (h + 1) & (cap - 1);
            p->ix_dev[h] = (int32_t)i;
        }
    }
    p->ix_dirty = false;
    return true;
}

static struct pchg *chg_by_id(struct lade_portal *p, int64_t id)
{
    if (id <= 0)
        return NULL;
    if (p->ix_dirty || !p->ix_cap) {
        if (!index_rebuild(p)) { /* out of memory: the slow way */
            for (size_t i = 0; i < p->n_chg; i++)
                if (p->chg[i]->sc.id == id)
                    return p->chg[i];
            return NULL;
        }
    }
    for (size_t h = hash_id(id) & (p->ix_cap - 1); p->ix_id[h] >= 0; h = (h + 1) & (p->ix_cap - 1))
        if (p->chg[p->ix_id[h]]->sc.id == id)
            return p->chg[p->ix_id[h]];
    return NULL;
}

static struct pchg *chg_by_device(struct lade_portal *p, const char *dev)
{
    if (!dev || !*dev)
        return NULL;
    if (p->ix_dirty || !p->ix_cap) {
        if (!index_rebuild(p)) {
            for (size_t i = 0; i < p->n_chg; i++)
                if (strcmp(p->chg[i]->sc.device_id, dev) == 0)
                    return p->chg[i];
            return NULL;
        }
    }
    for (size_t h = hash_str(dev) & (p->ix_cap - 1); p->ix_dev[h] >= 0;
         h = (h + 1) & (p->ix_cap - 1))
        if (strcmp(p->chg[p->ix_dev[h]]->sc.device_id, dev) == 0)
            return p->chg[p->ix_dev[h]];
    return NULL;
}

static struct pchg *chg_add(struct lade_portal *p, const struct lade_store_charger *sc)
{
    if (p->n_chg == p->cap_chg) {
        size_t cap = p->cap_chg ? p->cap_chg * 2 : 64;
        struct pchg **n = realloc(p->chg, cap * sizeof *n);
        if (!n)
            return NULL;
        p->chg = n;
        p->cap_chg = cap;
    }
    struct pchg *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->sc = *sc;
    p->ix_dirty = true;
    c->rep_offline_ma = c->rep_max_ma = -1;
    c->rep_offline_ph = -1;
    p->chg[p->n_chg++] = c;
    return c;
}

/* Re-reads a charger's configuration from the store. A charger removed from the store keeps its
 * entry but can no longer be found by id or device (if the device connects again, it comes
 * back as a new, unassigned charger). */
static void chg_refresh(struct lade_portal *p, struct pchg *c)
{
    struct lade_store_charger sc;
    lade_err err = lade_store_charger_get(p->store, c->sc.id, &sc);
    p->ix_dirty = true;
    if (err == LADE_OK) {
        c->sc = sc;
    } else if (err == LADE_ERR_NOT_FOUND) {
        c->sc.id = 0;
        c->sc.device_id[0] = 0;
        c->sc.installation_id = 0;
        c->online = false;
    }
}

bool portal_charger_online(struct lade_portal *p, int64_t charger_id)
{
    struct pchg *c = chg_by_id(p, charger_id);
    return c && c->online;
}

/* The charger a device id names; a device the store does not know yet (it is in the hub's
 * registry, or it could not have connected) is added unassigned so an admin can place it. */
static struct pchg *chg_for_device(struct lade_portal *p, const char *dev)
{
    struct pchg *c = chg_by_device(p, dev);
    if (c)
        return c;
    struct lade_store_charger sc;
    lade_err err = lade_store_charger_get_by_device(p->store, dev, &sc);
    if (err == LADE_ERR_NOT_FOUND) {
        lade_store_charger_defaults(&sc);
        snprintf(sc.device_id, sizeof sc.device_id, "%s", dev);
        snprintf(sc.name, sizeof sc.name, "%s", dev);
        sc.created_s = lade_wall_s();
        int64_t id = 0;
        err = lade_store_charger_add(p->store, &sc, &id);
        if (err == LADE_OK) {
            sc.id = id;
            LOG_I(MOD, "new charger %s (not assigned to an installation yet)", dev);
        }
    }
    if (err != LADE_OK) {
        p->m.store_errors++;
        LOG_W(MOD, "charger %s: store: %s", dev, lade_strerror(err));
        return NULL;
    }
    return chg_add(p, &sc);
}

/* ---- sites: an installation and its balancer ---- */

static struct site *site_by_inst(struct lade_portal *p, int64_t inst_id)
{
    for (size_t i = 0; i < p->n_sites; i++)
        if (p->sites[i]->in.id == inst_id)
            return p->sites[i];
    return NULL;
}

static void site_free(struct site *s)
{
    if (!s)
        return;
    lade_timer_cancel(s->p->loop, &s->timer);
    lade_balancer_destroy(s->bal);
    for (uint32_t i = 0; i < s->n_chg; i++)
        if (s->chg[i] && s->chg[i]->site == s)
            s->chg[i]->site = NULL;
    free(s->nodes);
    free(s->node_circuit);
    free(s->node_name);
    free(s->cc);
    free(s->chg);
    free(s);
}

/* A growable array filled from a store list callback (circuits, chargers, installations). */
struct collect {
    void *v;
    size_t n, cap, elem;
    bool nomem;
};

static int collect_push(struct collect *l, const void *item)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        void *n = realloc(l->v, cap * l->elem);
        if (!n) {
            l->nomem = true;
            return 1;
        }
        l->v = n;
        l->cap = cap;
    }
    memcpy((char *)l->v + l->n++ * l->elem, item, l->elem);
    return 0;
}

static int circ_collect(void *ud, const struct lade_store_circuit *c)
{
    return collect_push(ud, c);
}

static int chg_collect(void *ud, const struct lade_store_charger *c)
{
    return collect_push(ud, c);
}

static int inst_collect(void *ud, const struct lade_store_installation *in, uint32_t roles)
{
    (void)roles;
    return collect_push(ud, in);
}

static bool demand_of(const struct pchg *c)
{
    return c->sc.active && c->online && c->has_mode && (c->mode == 2 || c->mode == 3) &&
           !c->final_stop;
}

/* Builds a new site for installation inst from the store: the node tree, the chargers and a
 * balancer seeded with what is known of each charger (from the old site when there is one,
 * else from the setpoint log). */
static lade_err site_build(struct lade_portal *p, const struct lade_store_installation *in,
                           struct site *old, struct site **out, char *why, size_t why_cap)
{
    struct collect cl = {.elem = sizeof(struct lade_store_circuit)};
    struct collect hl = {.elem = sizeof(struct lade_store_charger)};
    struct site **prev = NULL; /* each charger's site before this build */
    struct site *s = calloc(1, sizeof *s);
    lade_err err = LADE_ERR_NOMEM;
    if (!s)
        goto done;
    s->p = p;
    s->in = *in;
    s->gen = ++p->gen_next;
    lade_timer_init(&s->timer, NULL, NULL);
    err = lade_store_circuit_list(p->store, in->id, circ_collect, &cl);
    if (err == LADE_OK)
        err = lade_store_charger_list(p->store, in->id, 0, chg_collect, &hl);
    if (err == LADE_OK && (cl.nomem || hl.nomem))
        err = LADE_ERR_NOMEM;
    if (err != LADE_OK) {
        why_set(why, why_cap, "store: %s", lade_strerror(err));
        goto done;
    }
    s->network = in->network_type == LADE_NET_IT_1_PHASE || in->network_type == LADE_NET_IT_3_PHASE
                     ? LADE_BAL_IT
                     : LADE_BAL_TN;
    s->n_nodes = (uint32_t)cl.n + 1;
    s->nodes = calloc(s->n_nodes, sizeof *s->nodes);
    s->node_circuit = calloc(s->n_nodes, sizeof *s->node_circuit);
    s->node_name = calloc(s->n_nodes, sizeof *s->node_name);
    s->n_chg = (uint32_t)hl.n;
    s->cc = calloc(hl.n + 1, sizeof *s->cc);
    s->chg = calloc(hl.n + 1, sizeof *s->chg);
    prev = calloc(hl.n + 1, sizeof *prev);
    err = LADE_ERR_NOMEM;
    if (!s->nodes || !s->node_circuit || !s->node_name || !s->cc || !s->chg || !prev)
        goto done;
    /* Node 0: the installation; its limit is the lower of the fuse and the available current
     * the operator set (R15). */
    s->nodes[0].parent = -1;
    for (int k = 0; k < 3; k++)
        s->nodes[0].limit_ma[k] =
            in->available_ma[k] < in->fuse_ma[k] ? in->available_ma[k] : in->fuse_ma[k];
    snprintf(s->node_name[0], sizeof s->node_name[0], "%s", in->name);
    /* Circuits come parents first, so a parent's node index is known when a child comes. */
    for (size_t i = 0; i < cl.n; i++) {
        const struct lade_store_circuit *c = &((struct lade_store_circuit *)cl.v)[i];
        uint32_t n = (uint32_t)i + 1;
        s->node_circuit[n] = c->id;
        snprintf(s->node_name[n], sizeof s->node_name[n], "%s", c->name);
        int32_t parent = 0;
        for (uint32_t j = 1; j < n; j++)
            if (s->node_circuit[j] == c->parent_id)
                parent = (int32_t)j;
        s->nodes[n].parent = parent;
        for (int k = 0; k < 3; k++)
            s->nodes[n].limit_ma[k] =
                c->limit_ma[k] < c->fuse_ma[k] ? c->limit_ma[k] : c->fuse_ma[k];
    }
    for (size_t i = 0; i < hl.n; i++) {
        const struct lade_store_charger *sc = &((struct lade_store_charger *)hl.v)[i];
        struct pchg *c = chg_by_id(p, sc->id);
        if (!c && !(c = chg_add(p, sc)))
            goto done;
        c->sc = *sc;
        p->ix_dirty = true;
        s->chg[i] = c;
        prev[i] = c->site;
        struct lade_bal_charger_config *cc = &s->cc[i];
        cc->node = 0;
        for (uint32_t j = 1; j < s->n_nodes; j++)
            if (s->node_circuit[j] == sc->circuit_id)
                cc->node = j;
        if (sc->max_current_ma < LADE_BAL_MIN_MA) {
            why_set(why, why_cap,
                    "charger %s: its maximum current %d mA is below the 6 A a car needs; set "
                    "MaxCurrent to at least 6 A or leave it unassigned",
                    sc->name, (int)sc->max_current_ma);
            err = LADE_ERR_CONFIG;
            goto done;
        }
        cc->max_ma = sc->max_current_ma;
        cc->min_ma = sc->min_current_ma < LADE_BAL_MIN_MA ? LADE_BAL_MIN_MA : sc->min_current_ma;
        if (cc->min_ma > cc->max_ma)
            cc->min_ma = cc->max_ma;
        cc->max_phases = sc->max_phases == 1 ? 1 : 3;
        for (int k = 0; k < 3; k++)
            cc->rotation[k] = (uint8_t)(sc->phase_map[k] - 1);
        cc->priority = sc->priority;
        /* The fallback the charger may really use: the stored setting, or the one it reports
         * if higher (a lowered setting counts only once the charger applied it). */
        int32_t fb = sc->offline_current_ma;
        if (c->rep_offline_ma > fb)
            fb = c->rep_offline_ma;
        cc->fallback_ma = fb > cc->max_ma ? cc->max_ma : fb;
        cc->fallback_phases = sc->offline_phases == 3 ? 3 : 1;
        cc->link_loss_deadline_ms = p->o.link_loss_deadline_ms;
    }
    struct lade_bal_config cfg = {
        .network = s->network,
        .nodes = s->nodes,
        .n_nodes = s->n_nodes,
        .chargers = s->cc,
        .n_chargers = s->n_chg,
        .params = p->params,
    };
    struct lade_bal_config_error ce;
    uint64_t now = lade_mono_ms();
    err = lade_balancer_create(&cfg, now, &s->bal, &ce);
    if (err == LADE_ERR_CONFIG) {
        char msg[200];
        lade_balancer_config_error_format(&ce, msg, sizeof msg);
        /* Name the node and charger as the operator knows them. */
        if (ce.charger >= 0 && (uint32_t)ce.charger < s->n_chg)
            why_set(why, why_cap, "charger %s: %s", s->chg[ce.charger]->sc.name, msg);
        else if (ce.node >= 0 && (uint32_t)ce.node < s->n_nodes)
            why_set(why, why_cap, "%s: %s", s->node_name[ce.node], msg);
        else
            why_set(why, why_cap, "%s", msg);
        goto done;
    }
    if (err != LADE_OK) {
        why_set(why, why_cap, "balancer: %s", lade_strerror(err));
        goto done;
    }
    /* Seed each charger with what it may hold (from the site it was on: this installation's
     * old one, or the one it moves from), then replay what we know of it. */
    for (uint32_t i = 0; i < s->n_chg; i++) {
        struct pchg *c = s->chg[i];
        bool seeded = false;
        if (prev[i] && prev[i]->bal) {
            struct lade_bal_charger_info inf;
            if (lade_balancer_charger_info(prev[i]->bal, c->idx, now, &inf) == LADE_OK &&
                (inf.known || inf.pending)) {
                /* It holds the confirmed value or the one still in flight: assume the larger. */
                int32_t a = inf.known ? inf.confirmed_ma : 0;
                uint8_t ph = inf.known ? inf.confirmed_phases : 1;
                if (inf.pending && inf.pending_ma >= a) {
                    a = inf.pending_ma;
                    ph = inf.pending_phases > ph ? inf.pending_phases : ph;
                }
                if (inf.known && inf.pending && inf.confirmed_phases > ph)
                    ph = inf.confirmed_phases;
                if (a > s->cc[i].max_ma)
                    a = s->cc[i].max_ma; /* a lowered max: the charger clamps to its fuse */
                seeded = lade_balancer_charger_assume(s->bal, i, a, ph ? ph : 1) == LADE_OK;
            }
        }
        if (!seeded) {
            struct lade_store_setpoint sp;
            if (lade_store_setpoint_last(p->store, c->sc.id, &sp) == LADE_OK && sp.confirmed_ms) {
                int32_t a = sp.current_ma > s->cc[i].max_ma ? s->cc[i].max_ma : sp.current_ma;
                (void)!lade_balancer_charger_assume(s->bal, i, a, sp.phases);
            }
        }
        c->site = s;
        c->idx = i;
        if (c->online)
            (void)!lade_balancer_charger_online(s->bal, i, true, now);
        (void)!lade_balancer_charger_demand(s->bal, i, demand_of(c), now);
        if (c->has_drawn)
            (void)!lade_balancer_charger_measured(s->bal, i, c->drawn_ma, now);
    }
    if (old) {
        memcpy(s->hist, old->hist, sizeof s->hist);
        s->hist_n = old->hist_n;
        s->hist_head = old->hist_head;
        s->next_hist_ms = old->next_hist_ms;
    }
    err = LADE_OK;
done:
    free(cl.v);
    free(hl.v);
    if (err != LADE_OK) {
        if (err == LADE_ERR_NOMEM)
            why_set(why, why_cap, "out of memory");
        if (s) {
            /* Nothing changes: every charger stays where it was. */
            for (uint32_t i = 0; i < s->n_chg; i++)
                if (s->chg && s->chg[i] && prev)
                    s->chg[i]->site = prev[i];
            s->n_chg = 0;
            site_free(s);
        }
        free(prev);
        return err;
    }
    free(prev);
    *out = s;
    return LADE_OK;
}

/* A new configuration that changes only node limits (same tree, same chargers, same charger
 * settings) is applied to the running balancer: it keeps every in-flight setpoint. */
static bool only_limits_changed(const struct site *a, const struct site *b)
{
    if (a->network != b->network || a->n_nodes != b->n_nodes || a->n_chg != b->n_chg)
        return false;
    for (uint32_t i = 0; i < a->n_nodes; i++)
        if (a->nodes[i].parent != b->nodes[i].parent || a->node_circuit[i] != b->node_circuit[i])
            return false;
    for (uint32_t i = 0; i < a->n_chg; i++)
        if (a->chg[i] != b->chg[i] || memcmp(&a->cc[i], &b->cc[i], sizeof a->cc[i]) != 0)
            return false;
    return true;
}

static void site_timer_cb(struct lade_loop *loop, struct lade_timer *t, void *ud);

static lade_err site_install(struct lade_portal *p, struct site *s)
{
    struct site **n = realloc(p->sites, (p->n_sites + 1) * sizeof *n);
    if (!n)
        return LADE_ERR_NOMEM;
    p->sites = n;
    p->sites[p->n_sites++] = s;
    lade_timer_init(&s->timer, site_timer_cb, s);
    site_kick(s);
    return LADE_OK;
}

static void site_remove(struct lade_portal *p, struct site *s)
{
    for (size_t i = 0; i < p->n_sites; i++)
        if (p->sites[i] == s) {
            p->sites[i] = p->sites[--p->n_sites];
            break;
        }
    site_free(s);
}

lade_err portal_reload(struct lade_portal *p, int64_t installation_id, char *why, size_t why_cap)
{
    if (!p || installation_id < 0)
        return LADE_ERR_INVAL;
    if (installation_id == 0) {
        /* Unassigned chargers: refresh them (a renamed or removed one). */
        for (size_t i = 0; i < p->n_chg; i++)
            if (!p->chg[i]->site)
                chg_refresh(p, p->chg[i]);
        return LADE_OK;
    }
    struct site *old = site_by_inst(p, installation_id);
    struct lade_store_installation in;
    lade_err err = lade_store_installation_get(p->store, installation_id, &in);
    if (err == LADE_ERR_NOT_FOUND) {
        if (old)
            site_remove(p, old);
        /* Its chargers are unassigned now; refresh what we hold of them. */
        for (size_t i = 0; i < p->n_chg; i++)
            if (p->chg[i]->sc.installation_id == installation_id)
                chg_refresh(p, p->chg[i]);
        return LADE_OK;
    }
    if (err != LADE_OK) {
        why_set(why, why_cap, "store: %s", lade_strerror(err));
        return err;
    }
    /* Chargers that were on this site may have moved or gone: refresh them from the store. */
    if (old)
        for (uint32_t i = 0; i < old->n_chg; i++) {
            struct pchg *c = old->chg[i];
            chg_refresh(p, c);
        }
    struct site *s = NULL;
    err = site_build(p, &in, old, &s, why, why_cap);
    if (err != LADE_OK)
        return err;
    if (old && only_limits_changed(old, s)) {
        /* Keep the running balancer (and every in-flight setpoint); change the limits. */
        for (uint32_t i = 0; i < s->n_chg; i++)
            s->chg[i]->site = old;
        for (uint32_t n = 0; n < s->n_nodes; n++) {
            if (memcmp(old->nodes[n].limit_ma, s->nodes[n].limit_ma, sizeof s->nodes[n].limit_ma) ==
                0)
                continue;
            struct lade_bal_config_error ce;
            err = lade_balancer_set_limit(old->bal, n, s->nodes[n].limit_ma, &ce);
            if (err != LADE_OK) {
                /* site_build already checked the whole configuration; not expected. */
                char msg[200];
                lade_balancer_config_error_format(&ce, msg, sizeof msg);
                why_set(why, why_cap, "%s", msg);
                s->n_chg = 0;
                site_free(s);
                return err;
            }
            old->nodes[n] = s->nodes[n];
        }
        old->in = s->in;
        memcpy(old->node_name, s->node_name, s->n_nodes * sizeof *s->node_name);
        s->n_chg = 0;
        site_free(s);
        LOG_I(MOD, "installation %s: limits changed", old->in.name);
        site_kick(old);
        return LADE_OK;
    }
    /* Chargers that left: no longer on any site (until their new installation reloads). */
    if (old) {
        for (uint32_t i = 0; i < old->n_chg; i++)
            if (old->chg[i]->site == old)
                old->chg[i]->site = NULL;
        old->n_chg = 0;
        site_remove(p, old);
    }
    err = site_install(p, s);
    if (err != LADE_OK) {
        site_free(s);
        why_set(why, why_cap, "out of memory");
        return err;
    }
    LOG_I(MOD, "installation %s: %u nodes, %u chargers", s->in.name, s->n_nodes, s->n_chg);
    return LADE_OK;
}

/* ---- setpoints ---- */

static void sp_reply(void *ud, const struct lade_svc_result *r)
{
    struct sp_call *k = ud;
    struct lade_portal *p = k->p;
    struct pchg *c = chg_by_id(p, k->charger_id);
    struct site *s = c ? c->site : NULL;
    bool same = s && s->gen == k->gen;
    uint64_t now = lade_mono_ms();
    if (r->err == LADE_OK && r->status == 200 && !r->hub_made) {
        p->m.setpoints_acked++;
        if (same) {
            lade_err e = lade_balancer_ack(s->bal, c->idx, k->seq, now);
            LOG_D(MOD, "%s: setpoint %u confirmed (%s)", r->device, k->seq, lade_strerror(e));
        }
        if (lade_store_setpoint_confirm(p->store, k->sp_id, portal_wall_ms()) != LADE_OK)
            p->m.store_errors++;
    } else if (r->err == LADE_OK &&
               ((r->hub_made && (r->status == 404 || r->status == 409 || r->status == 429)) ||
                (!r->hub_made && r->status >= 400 && r->status < 500))) {
        /* Certainly not applied: the hub did not deliver it, or the charger refused it. */
        p->m.setpoints_naked++;
        if (same) {
            (void)!lade_balancer_nak(s->bal, c->idx, k->seq, now);
            if (r->hub_made && r->status == 404 && c->online) {
                c->online = false;
                (void)!lade_balancer_charger_online(s->bal, c->idx, false, now);
            }
        }
        LOG_W(MOD, "setpoint to %s refused: %d%s %.*s", r->device, r->status,
              r->hub_made ? " (hub)" : "", (int)(r->body_len > 120 ? 120 : r->body_len),
              r->body ? (const char *)r->body : "");
    } else {
        /* No answer: it may or may not have arrived; it keeps counting and will be resent. */
        p->m.setpoints_unanswered++;
        if (same && r->err == LADE_OK)
            (void)!lade_balancer_charger_heard(s->bal, c->idx, now);
    }
    if (same)
        site_kick(s);
    free(k);
}

static void send_setpoint(struct site *s, const struct lade_bal_setpoint *sp, uint64_t now)
{
    struct lade_portal *p = s->p;
    struct pchg *c = s->chg[sp->charger];
    char body[64];
    snprintf(body, sizeof body, "{\"current\":%d.%d,\"phases\":%u}", (int)(sp->current_ma / 1000),
             (int)(sp->current_ma % 1000) / 100, (unsigned)sp->phases);
    struct sp_call *k = calloc(1, sizeof *k);
    lade_err err = k ? LADE_OK : LADE_ERR_NOMEM;
    if (k) {
        k->p = p;
        k->charger_id = c->sc.id;
        k->gen = s->gen;
        k->seq = sp->seq;
        struct lade_store_setpoint rec = {
            .charger_id = c->sc.id,
            .current_ma = sp->current_ma,
            .phases = sp->phases,
            .sent_ms = portal_wall_ms(),
        };
        if (lade_store_setpoint_add(p->store, &rec, &k->sp_id) != LADE_OK)
            p->m.store_errors++;
        err = p->svc ? lade_svc_call(p->svc, c->sc.device_id, "setCurrent", body,
                                     SETPOINT_TIMEOUT_MS, sp_reply, k)
                     : LADE_ERR_STATE;
    }
    if (err != LADE_OK) {
        /* Never left: withdraw it. */
        free(k);
        (void)!lade_balancer_nak(s->bal, sp->charger, sp->seq, now);
        LOG_D(MOD, "setpoint to %s not sent: %s", c->sc.device_id, lade_strerror(err));
        return;
    }
    p->m.setpoints_sent++;
    p->m.messages_out++;
    c->sp_sent_ms = now;
    LOG_D(MOD, "setpoint %s: %s%s", c->sc.device_id, body, sp->resend ? " (resend)" : "");
}

static void site_history(struct site *s, uint64_t now)
{
    if (now < s->next_hist_ms)
        return;
    s->next_hist_ms = now + HISTORY_STEP_MS;
    struct hist_point pt = {.t_ms = portal_wall_ms()};
    for (uint32_t i = 0; i < s->n_chg; i++) {
        const struct pchg *c = s->chg[i];
        if (!c->has_drawn || !c->online)
            continue;
        for (int t = 0; t < 3; t++)
            pt.measured[s->cc[i].rotation[t]] += c->drawn_ma[t];
    }
    (void)!lade_balancer_node_limit(s->bal, 0, pt.limit);
    uint32_t at = (s->hist_head + s->hist_n) % HISTORY_POINTS;
    s->hist[at] = pt;
    if (s->hist_n < HISTORY_POINTS)
        s->hist_n++;
    else
        s->hist_head = (s->hist_head + 1) % HISTORY_POINTS;
}

static void site_step(struct site *s)
{
    struct lade_portal *p = s->p;
    uint64_t now = lade_mono_ms();
    /* A charger reports its currents only when they change by more than its deadband (0.5 A),
     * within report_min_interval_s (10 s by default), so a car drawing steadily sends nothing
     * new and its measurement would go stale — and with it the reclaim of current it does not
     * use. Once the charger had MEAS_REFRESH_MS since our last setpoint to report a change, its
     * last report still holds (within 0.5 A): it is given again every MEAS_REFRESH_MS, capped at
     * the confirmed setpoint. */
    for (uint32_t i = 0; i < s->n_chg; i++) {
        struct pchg *c = s->chg[i];
        if (c->online && c->has_drawn && now - c->sp_sent_ms >= MEAS_REFRESH_MS &&
            now - c->meas_fed_ms >= MEAS_REFRESH_MS) {
            /* A report older than our last setpoint is capped at the confirmed setpoint: a
             * decrease smaller than the deadband leaves the old (higher) report standing, which
             * must not read as an over-draw. A newer report is given as it is (an over-draw
             * under the current setpoint keeps counting). */
            int32_t m[3];
            memcpy(m, c->drawn_ma, sizeof m);
            struct lade_bal_charger_info inf;
            if (c->meas_real_ms < c->sp_sent_ms &&
                lade_balancer_charger_info(s->bal, i, now, &inf) == LADE_OK && inf.known)
                for (int t = 0; t < 3; t++)
                    if (m[t] > inf.confirmed_ma)
                        m[t] = inf.confirmed_ma;
            (void)!lade_balancer_charger_measured(s->bal, i, m, now);
            c->meas_fed_ms = now;
        }
    }
    struct lade_bal_step_out out;
    uint64_t t0 = ns_now();
    lade_err err = lade_balancer_step(s->bal, now, &out);
    uint64_t dt = ns_now() - t0;
    p->m.balancer_runs++;
    p->m.balancer_ns_total += dt;
    if (dt > p->m.balancer_ns_max)
        p->m.balancer_ns_max = dt;
    if (err != LADE_OK) {
        LOG_E(MOD, "installation %s: balancer step: %s", s->in.name, lade_strerror(err));
        (void)!lade_timer_arm_in(p->loop, &s->timer, 1000);
        return;
    }
    for (uint32_t i = 0; i < out.n_setpoints; i++)
        send_setpoint(s, &out.setpoints[i], now);
    site_history(s, now);
    uint64_t next = out.next_step_ms;
    if (next > s->next_hist_ms)
        next = s->next_hist_ms;
    if (next <= now)
        next = now + 1;
    (void)!lade_timer_arm(p->loop, &s->timer, next);
}

static void site_timer_cb(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    site_step(ud);
}

/* Run the site's step as soon as the loop has handled what is ready now. */
static void site_kick(struct site *s)
{
    uint64_t now = lade_mono_ms();
    if (lade_timer_armed(&s->timer) && s->timer.due_ms <= now)
        return;
    (void)!lade_timer_arm(s->p->loop, &s->timer, now);
}

/* ---- what chargers send ---- */

static int32_t dA_to_mA(int64_t v)
{
    if (v < 0)
        return 0;
    if (v > 10000000)
        return 1000000000;
    return (int32_t)v * 100;
}

static void set_online(struct lade_portal *p, struct pchg *c, bool online, uint64_t now)
{
    if (c->online == online)
        return;
    c->online = online;
    if (c->site) {
        (void)!lade_balancer_charger_online(c->site->bal, c->idx, online, now);
        (void)!lade_balancer_charger_demand(c->site->bal, c->idx, demand_of(c), now);
        site_kick(c->site);
    }
    if (lade_store_charger_presence(p->store, c->sc.id, online, lade_wall_s()) != LADE_OK)
        p->m.store_errors++;
    if (online)
        portal_fw_online(p->fw, c->sc.id);
}

struct settings_push {
    struct lade_portal *p;
    char dev[LADE_STORE_DEVICE_ID_MAX + 1];
};

static void settings_pushed(void *ud, lade_err err, int status, bool hub_made, const char *body,
                            size_t len)
{
    (void)body;
    (void)len;
    struct settings_push *sp = ud;
    sp->p->m.settings_push_inflight--;
    if (err != LADE_OK || status != 204) {
        sp->p->m.settings_push_failed++;
        LOG_W(MOD, "%s: settings not pushed: %s, status %d%s", sp->dev, lade_strerror(err), status,
              hub_made ? " (hub)" : "");
    }
    free(sp);
}

/* The charger's settings in force (510, 522, 523 as it reports them) should be the stored ones:
 * a change made while the hub link was down, or lost by a charger reset, would otherwise never
 * reach it. The offline current and phases matter most: the balancer counts on them. A max
 * below the stored one is the installer's clamp on the charger and is left alone. Pushed as
 * twin desired properties (the hub keeps them for a charger that is away), at most every 5
 * minutes per charger, and at most settings_push_inflight at a time: a fleet commissioned
 * against factory defaults would otherwise send one per charger as they come online, and
 * under load the hub link's 15 s timeout loses them (figure 17). A push that finds the limit
 * reached waits for the charger's next message, which checks again. */
#define SETTINGS_PUSH_EVERY_MS 300000
static bool settings_differ(const struct pchg *c)
{
    const struct lade_store_charger *sc = &c->sc;
    return (c->rep_offline_ma >= 0 && c->rep_offline_ma != sc->offline_current_ma) ||
           (c->rep_offline_ph >= 0 && c->rep_offline_ph != sc->offline_phases) ||
           (c->rep_max_ma >= 0 && c->rep_max_ma > sc->max_current_ma);
}

static void reconcile_settings(struct lade_portal *p, struct pchg *c, uint64_t now)
{
    const struct lade_store_charger *sc = &c->sc;
    if (!settings_differ(c) || !p->svc_online || !sc->installation_id ||
        (c->settings_pushed_ms && now - c->settings_pushed_ms < SETTINGS_PUSH_EVERY_MS))
        return;
    if (p->m.settings_push_inflight >= p->o.settings_push_inflight) {
        p->m.settings_push_deferred++;
        return;
    }
    char body[256];
    snprintf(body, sizeof body,
             "{\"maxChargeCurrent\":%d,\"minChargeCurrent\":%d,\"maxChargePhases\":%u,"
             "\"offlineChargeCurrent\":%d,\"offlineChargePhase\":%u}",
             (int)(sc->max_current_ma / 1000), (int)(sc->min_current_ma / 1000),
             (unsigned)sc->max_phases, (int)(sc->offline_current_ma / 1000),
             (unsigned)sc->offline_phases);
    struct settings_push *sp = calloc(1, sizeof *sp);
    if (!sp)
        return;
    sp->p = p;
    snprintf(sp->dev, sizeof sp->dev, "%s", sc->device_id);
    LOG_I(MOD, "%s: settings in force differ from the stored ones; pushing them", sc->device_id);
    if (portal_twin_patch(p, sc->id, body, settings_pushed, sp) != LADE_OK) {
        free(sp);
        return;
    }
    c->settings_pushed_ms = now;
    p->m.settings_pushes++;
    if (++p->m.settings_push_inflight > p->m.settings_push_inflight_max)
        p->m.settings_push_inflight_max = p->m.settings_push_inflight;
}

static void ingest_state(struct lade_portal *p, struct pchg *c, const struct lade_ingest_msg *m,
                         uint64_t now)
{
    struct lade_store_obs obs[LADE_INGEST_ITEMS];
    char strs[LADE_OBS_STR_SLOTS + 1][LADE_OBS_STR_MAX + 1];
    char nums[LADE_INGEST_ITEMS][32];
    size_t n = 0, ns = 0;
    bool drawn = false, mode = false;
    int64_t ts_ms = m->wall_s > 0 ? m->wall_s * 1000 : portal_wall_ms();
    for (size_t i = 0; i < m->n_items; i++) {
        const struct lade_obs_item *it = &m->items[i];
        const char *text = NULL;
        if (it->is_str) {
            if (ns >= LADE_OBS_STR_SLOTS + 1)
                continue;
            size_t len = 0;
            if (lade_obs_unescape(it->raw, strs[ns], sizeof strs[ns], &len) != LADE_OK)
                continue;
            text = strs[ns++];
        } else {
            size_t len = it->raw.n < sizeof nums[i] - 1 ? it->raw.n : sizeof nums[i] - 1;
            memcpy(nums[i], it->raw.p, len);
            nums[i][len] = 0;
            text = nums[i];
        }
        obs[n++] = (struct lade_store_obs){.obs_id = it->id, .value = text, .ts_ms = ts_ms};
        switch (it->id) {
        case 710:
            c->has_mode = true;
            c->mode = (int)it->value;
            mode = true;
            break;
        case 718:
            c->final_stop = it->value != 0;
            mode = true;
            break;
        case 507:
        case 508:
        case 509:
            c->drawn_ma[it->id - 507] = dA_to_mA(it->value);
            c->has_drawn = drawn = true;
            break;
        case 513:
            c->power_w =
                it->value < 0 ? 0 : (int32_t)(it->value > INT32_MAX ? INT32_MAX : it->value);
            break;
        case 553:
            c->energy_wh = it->value;
            break;
        case 708:
            c->has_alloc = true;
            c->alloc_ma = dA_to_mA(it->value);
            break;
        case 523:
            c->rep_offline_ma = dA_to_mA(it->value);
            break;
        case 522:
            c->rep_offline_ph = (int)it->value;
            break;
        case 510:
            c->rep_max_ma = dA_to_mA(it->value);
            break;
        case 911:
            snprintf(c->firmware, sizeof c->firmware, "%s", text);
            portal_fw_version_seen(p->fw, c->sc.id, text);
            break;
        default:
            break;
        }
    }
    if (n && lade_store_state_put(p->store, c->sc.id, obs, n) != LADE_OK)
        p->m.store_errors++;
    if (drawn) {
        int64_t t = lade_wall_s();
        if (t - c->last_sample_s >= SAMPLE_EVERY_S) {
            c->last_sample_s = t;
            struct lade_store_sample smp = {
                .charger_id = c->sc.id, .t_s = t, .power_w = c->power_w};
            memcpy(smp.current_ma, c->drawn_ma, sizeof smp.current_ma);
            smp.allocated_ma = c->has_alloc ? c->alloc_ma : 0;
            if (lade_store_sample_add(p->store, &smp) != LADE_OK)
                p->m.store_errors++;
        }
    }
    LOG_D(MOD, "%s: mode %d%s final %d drawn %d/%d/%d mA%s", c->sc.device_id, c->mode,
          mode ? " (new)" : "", c->final_stop, c->drawn_ma[0], c->drawn_ma[1], c->drawn_ma[2],
          drawn ? " (new)" : "");
    reconcile_settings(p, c, now);
    if (!c->site)
        return;
    struct lade_balancer *b = c->site->bal;
    (void)!lade_balancer_charger_heard(b, c->idx, now);
    if (mode)
        (void)!lade_balancer_charger_demand(b, c->idx, demand_of(c), now);
    if (drawn) {
        (void)!lade_balancer_charger_measured(b, c->idx, c->drawn_ma, now);
        c->meas_real_ms = c->meas_fed_ms = now;
    }
    if (mode || drawn)
        site_kick(c->site);
}

static void ingest_session(struct lade_portal *p, struct pchg *c, const struct lade_ingest_msg *m)
{
    const struct lade_ingest_session *is = &m->session;
    struct lade_store_session s = {0};
    snprintf(s.session_id, sizeof s.session_id, "%s", is->id);
    snprintf(s.device_id, sizeof s.device_id, "%s", c->sc.device_id);
    s.start_s = is->start_s;
    s.end_s = is->end_s;
    s.energy_wh = is->energy_wh;
    s.reliable_clock = is->reliable_clock;
    s.end_estimated = is->end_estimated;
    s.peak_power_w = is->peak_power_w;
    s.phases = (uint8_t)is->phases;
    snprintf(s.end_reason, sizeof s.end_reason, "%s", is->end_reason);
    s.received_s = lade_wall_s();
    enum lade_store_ingest res = 0;
    lade_err err = lade_store_session_add(p->store, &s, &res);
    if (err != LADE_OK) {
        /* Not stored: the charger resends it (its outbox keeps it until the hub acked, and
         * the hub acked already), so this is logged loudly. */
        p->m.store_errors++;
        LOG_E(MOD, "session %s of %s not stored: %s (%s)", s.session_id, c->sc.device_id,
              lade_strerror(err), lade_store_errmsg(p->store));
        return;
    }
    if (res == LADE_STORE_ADDED) {
        p->m.sessions_added++;
        LOG_I(MOD, "session %s of %s: %.3f kWh", s.session_id, c->sc.device_id,
              (double)s.energy_wh / 1000.0);
    } else {
        p->m.sessions_duplicate++;
        LOG_D(MOD, "session %s of %s again (%s)", s.session_id, c->sc.device_id,
              res == LADE_STORE_DUPLICATE ? "duplicate" : "conflict, first kept");
    }
}

static void on_event(void *ud, const struct lade_svc_event *ev)
{
    struct lade_portal *p = ud;
    uint64_t now = lade_mono_ms();
    struct pchg *c = chg_for_device(p, ev->device);
    if (!c)
        return;
    switch (ev->kind) {
    case LADE_SVC_EV_LIFECYCLE: {
        p->m.lifecycle_events++;
        cJSON *j = cJSON_ParseWithLength((const char *)ev->payload, ev->payload_len);
        const cJSON *e = j ? cJSON_GetObjectItemCaseSensitive(j, "event") : NULL;
        if (cJSON_IsString(e) && strcmp(e->valuestring, "connected") == 0)
            set_online(p, c, true, now);
        else if (cJSON_IsString(e) && strcmp(e->valuestring, "disconnected") == 0)
            set_online(p, c, false, now);
        else
            LOG_W(MOD, "%s: unknown lifecycle event", ev->device);
        cJSON_Delete(j);
        break;
    }
    case LADE_SVC_EV_TELEMETRY: {
        p->m.messages_in++;
        /* A message proves the charger is connected now (after a portal or link restart the
         * hub does not repeat "connected" events). */
        set_online(p, c, true, now);
        struct lade_ingest_msg *m = malloc(sizeof *m);
        if (!m)
            return;
        lade_ingest_parse(ev->props, ev->payload, ev->payload_len, m);
        if (m->kind == LADE_INGEST_STATE)
            ingest_state(p, c, m, now);
        else if (m->kind == LADE_INGEST_SESSION)
            ingest_session(p, c, m);
        else if (m->kind == LADE_INGEST_INVALID) {
            p->m.messages_invalid++;
            LOG_W(MOD, "%s: message refused: %s", ev->device, m->reason);
        }
        if (m->kind != LADE_INGEST_STATE && c->site)
            (void)!lade_balancer_charger_heard(c->site->bal, c->idx, now);
        free(m);
        break;
    }
    case LADE_SVC_EV_REPORTED:
        portal_fw_reported(p->fw, c->sc.id, ev->payload, ev->payload_len);
        if (c->site)
            (void)!lade_balancer_charger_heard(c->site->bal, c->idx, now);
        break;
    }
}

static void on_state(void *ud, enum lade_svc_state st, lade_err err, const char *reason)
{
    struct lade_portal *p = ud;
    bool was = p->svc_online;
    p->svc_online = st == LADE_SVC_ONLINE;
    if (p->svc_online && !was)
        LOG_I(MOD, "hub link up");
    if (!p->svc_online && was) {
        LOG_W(MOD, "hub link down: %s %s", lade_strerror(err), reason ? reason : "");
        /* We can reach no charger now; they will hear nothing from us and fall back at their
         * deadline, which the balancer counts. */
        uint64_t now = lade_mono_ms();
        for (size_t i = 0; i < p->n_chg; i++)
            if (p->chg[i]->online) {
                p->chg[i]->online = false;
                if (p->chg[i]->site)
                    (void)!lade_balancer_charger_online(p->chg[i]->site->bal, p->chg[i]->idx, false,
                                                        now);
            }
        for (size_t i = 0; i < p->n_sites; i++)
            site_kick(p->sites[i]);
    }
}

/* ---- calls for the API ---- */

static void api_reply(void *ud, const struct lade_svc_result *r)
{
    struct api_call *k = ud;
    struct pchg *c = chg_by_id(k->p, k->charger_id);
    /* Only a method's answer comes from the charger itself (twin replies are the hub's). */
    if (c && c->site && r->err == LADE_OK && !r->hub_made && r->op == LADE_SVC_OP_METHOD) {
        (void)!lade_balancer_charger_heard(c->site->bal, c->idx, lade_mono_ms());
        site_kick(c->site);
    }
    k->fn(k->ud, r->err, r->status, r->hub_made, (const char *)r->body, r->body_len);
    free(k);
}

static lade_err api_send(struct lade_portal *p, int64_t charger_id, const char *method,
                         const char *json, uint32_t timeout_ms, portal_reply_fn fn, void *ud)
{
    struct pchg *c = chg_by_id(p, charger_id);
    if (!c) {
        struct lade_store_charger sc;
        if (lade_store_charger_get(p->store, charger_id, &sc) != LADE_OK)
            return LADE_ERR_NOT_FOUND;
        if (!(c = chg_add(p, &sc)))
            return LADE_ERR_NOMEM;
    }
    if (!p->svc || !p->svc_online)
        return LADE_ERR_STATE;
    struct api_call *k = calloc(1, sizeof *k);
    if (!k)
        return LADE_ERR_NOMEM;
    *k = (struct api_call){.p = p, .charger_id = charger_id, .fn = fn, .ud = ud};
    lade_err err =
        method ? lade_svc_call(p->svc, c->sc.device_id, method, json,
                               timeout_ms ? timeout_ms : p->o.command_timeout_ms, api_reply, k)
        : json ? lade_svc_twin_patch(p->svc, c->sc.device_id, json, p->o.command_timeout_ms,
                                     api_reply, k)
               : lade_svc_twin_get(p->svc, c->sc.device_id, p->o.command_timeout_ms, api_reply, k);
    if (err != LADE_OK) {
        free(k);
        return err;
    }
    if (!method && !json)
        return LADE_OK; /* a twin read goes to the hub only, not to the charger */
    p->m.messages_out++;
    if (c->site)
        (void)!lade_balancer_charger_sent(c->site->bal, c->idx, lade_mono_ms());
    return LADE_OK;
}

lade_err portal_call(struct lade_portal *p, int64_t charger_id, const char *method,
                     const char *json, uint32_t timeout_ms, portal_reply_fn fn, void *ud)
{
    if (!p || !method || !fn)
        return LADE_ERR_INVAL;
    return api_send(p, charger_id, method, json, timeout_ms, fn, ud);
}

lade_err portal_twin_get(struct lade_portal *p, int64_t charger_id, portal_reply_fn fn, void *ud)
{
    if (!p || !fn)
        return LADE_ERR_INVAL;
    return api_send(p, charger_id, NULL, NULL, 0, fn, ud);
}

lade_err portal_twin_patch(struct lade_portal *p, int64_t charger_id, const char *json,
                           portal_reply_fn fn, void *ud)
{
    if (!p || !json || !fn)
        return LADE_ERR_INVAL;
    return api_send(p, charger_id, NULL, json, 0, fn, ud);
}

/* ---- the live view ---- */

static cJSON *amps3(const int32_t ma[3], int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int k = 0; a && k < n; k++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber((double)ma[k] / 1000.0));
    return a;
}

cJSON *portal_live_json(struct lade_portal *p, int64_t installation_id)
{
    struct site *s = site_by_inst(p, installation_id);
    if (!s)
        return NULL;
    uint64_t now = lade_mono_ms();
    int nph = s->in.network_type == LADE_NET_IT_1_PHASE || s->in.network_type == LADE_NET_TN_1_PHASE
                  ? 1
                  : 3;
    char id[PORTAL_ID_LEN + 1], pid[PORTAL_ID_LEN + 1];
    cJSON *j = cJSON_CreateObject();
    if (!j)
        return NULL;
    cJSON_AddNumberToObject(j, "Now", (double)portal_wall_ms());
    cJSON *in = cJSON_AddObjectToObject(j, "Installation");
    portal_id_format(PORTAL_ID_INSTALLATION, s->in.id, id);
    cJSON_AddStringToObject(in, "Id", id);
    cJSON_AddStringToObject(in, "Name", s->in.name);
    cJSON_AddNumberToObject(in, "NetworkType", s->in.network_type);
    cJSON_AddItemToObject(in, "AvailableCurrent", amps3(s->in.available_ma, nph));
    /* Per node: might-draw and measured sums, accumulated up the tree. */
    int32_t(*might)[3] = calloc(s->n_nodes, sizeof *might);
    int32_t(*meas)[3] = calloc(s->n_nodes, sizeof *meas);
    if (!might || !meas) {
        free(might);
        free(meas);
        cJSON_Delete(j);
        return NULL;
    }
    for (uint32_t i = 0; i < s->n_chg; i++) {
        int32_t md[3] = {0, 0, 0}, ms[3] = {0, 0, 0};
        (void)!lade_balancer_might_draw(s->bal, i, now, md);
        const struct pchg *c = s->chg[i];
        if (c->has_drawn && c->online)
            for (int t = 0; t < 3; t++)
                ms[s->cc[i].rotation[t]] += c->drawn_ma[t];
        for (int32_t n = (int32_t)s->cc[i].node; n >= 0; n = s->nodes[n].parent)
            for (int k = 0; k < 3; k++) {
                might[n][k] += md[k];
                meas[n][k] += ms[k];
            }
    }
    cJSON *nodes = cJSON_AddArrayToObject(j, "Nodes");
    for (uint32_t n = 0; n < s->n_nodes; n++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(nodes, o);
        if (n == 0)
            portal_id_format(PORTAL_ID_INSTALLATION, s->in.id, id);
        else
            portal_id_format(PORTAL_ID_CIRCUIT, s->node_circuit[n], id);
        cJSON_AddStringToObject(o, "Id", id);
        cJSON_AddStringToObject(o, "Name", n == 0 ? "Main fuse" : s->node_name[n]);
        cJSON_AddStringToObject(o, "Kind", n == 0 ? "installation" : "circuit");
        if (n == 0) {
            cJSON_AddNullToObject(o, "ParentId");
        } else {
            int32_t par = s->nodes[n].parent;
            if (par == 0)
                portal_id_format(PORTAL_ID_INSTALLATION, s->in.id, pid);
            else
                portal_id_format(PORTAL_ID_CIRCUIT, s->node_circuit[par], pid);
            cJSON_AddStringToObject(o, "ParentId", pid);
        }
        int32_t lim[3] = {0, 0, 0};
        (void)!lade_balancer_node_limit(s->bal, n, lim);
        cJSON_AddItemToObject(o, "Limit", amps3(lim, nph));
        cJSON_AddItemToObject(o, "MightDraw", amps3(might[n], nph));
        cJSON_AddItemToObject(o, "Measured", amps3(meas[n], nph));
    }
    free(might);
    free(meas);
    cJSON *chs = cJSON_AddArrayToObject(j, "Chargers");
    for (uint32_t i = 0; i < s->n_chg; i++) {
        const struct pchg *c = s->chg[i];
        struct lade_bal_charger_info inf;
        memset(&inf, 0, sizeof inf);
        (void)!lade_balancer_charger_info(s->bal, i, now, &inf);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(chs, o);
        portal_id_format(PORTAL_ID_CHARGER, c->sc.id, id);
        cJSON_AddStringToObject(o, "Id", id);
        cJSON_AddStringToObject(o, "Name", c->sc.name);
        cJSON_AddStringToObject(o, "DeviceId", c->sc.device_id);
        if (s->cc[i].node == 0)
            portal_id_format(PORTAL_ID_INSTALLATION, s->in.id, id);
        else
            portal_id_format(PORTAL_ID_CIRCUIT, s->node_circuit[s->cc[i].node], id);
        cJSON_AddStringToObject(o, "CircuitId", id);
        cJSON_AddBoolToObject(o, "Online", c->online);
        if (c->has_mode)
            cJSON_AddNumberToObject(o, "Mode", c->mode);
        else
            cJSON_AddNullToObject(o, "Mode");
        cJSON_AddBoolToObject(o, "FinalStop", c->final_stop);
        int32_t alloc = c->has_alloc ? c->alloc_ma : inf.known ? inf.confirmed_ma : 0;
        cJSON_AddNumberToObject(o, "Allocated", (double)alloc / 1000.0);
        cJSON_AddNumberToObject(o, "Phases",
                                inf.known && inf.confirmed_phases ? inf.confirmed_phases
                                                                  : s->cc[i].max_phases);
        if (c->has_drawn)
            cJSON_AddItemToObject(o, "Drawn", amps3(c->drawn_ma, 3));
        else
            cJSON_AddNullToObject(o, "Drawn");
        cJSON_AddNumberToObject(o, "PowerW", c->power_w);
        cJSON_AddNumberToObject(o, "SessionEnergyKWh", (double)c->energy_wh / 1000.0);
        cJSON_AddNumberToObject(o, "Priority", c->sc.priority);
        cJSON_AddStringToObject(o, "Run",
                                inf.run == LADE_BAL_RUNNING   ? "running"
                                : inf.run == LADE_BAL_WAITING ? "waiting"
                                                              : "idle");
        /* Firmware: what the twin last reported, else observation 911's version. */
        const struct portal_fw_report *fr = p->fw ? portal_fw_report_get(p->fw, c->sc.id) : NULL;
        cJSON *fwo = cJSON_AddObjectToObject(o, "Firmware");
        if (fr && fr->known)
            portal_fw_report_add(fwo, fr);
        else if (fwo)
            cJSON_AddStringToObject(fwo, "Version", c->firmware);
    }
    cJSON *h = cJSON_AddObjectToObject(j, "History");
    cJSON *ht = cJSON_AddArrayToObject(h, "T");
    cJSON *hm = cJSON_AddArrayToObject(h, "Measured");
    cJSON *hl = cJSON_AddArrayToObject(h, "Limit");
    int64_t from = portal_wall_ms() - 3600 * 1000;
    for (uint32_t k = 0; k < s->hist_n; k++) {
        const struct hist_point *pt = &s->hist[(s->hist_head + k) % HISTORY_POINTS];
        if (pt->t_ms < from)
            continue;
        cJSON_AddItemToArray(ht, cJSON_CreateNumber((double)pt->t_ms));
        cJSON_AddItemToArray(hm, amps3(pt->measured, nph));
        cJSON_AddItemToArray(hl, amps3(pt->limit, nph));
    }
    return j;
}

/* ---- metrics ---- */

struct mbuf {
    char *p;
    size_t n, cap;
    bool nomem;
};

static void mb(struct mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mb(struct mbuf *b, const char *fmt, ...)
{
    if (b->nomem)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->nomem = true;
            return;
        }
        if ((size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)k;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->nomem = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

static void counter(struct mbuf *b, const char *name, const char *help, uint64_t v)
{
    mb(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
       (unsigned long long)v);
}

char *portal_metrics_text(struct lade_portal *p)
{
    struct mbuf b = {.cap = 8192};
    b.p = malloc(b.cap);
    if (!b.p)
        return NULL;
    b.p[0] = 0;
    const struct portal_metrics *m = &p->m;
    size_t online = 0;
    for (size_t i = 0; i < p->n_chg; i++)
        online += p->chg[i]->online;
    mb(&b,
       "# HELP lade_chargers_online Chargers connected to the hub now.\n"
       "# TYPE lade_chargers_online gauge\nlade_chargers_online %zu\n",
       online);
    mb(&b,
       "# HELP lade_chargers_known Chargers the portal knows.\n"
       "# TYPE lade_chargers_known gauge\nlade_chargers_known %zu\n",
       p->n_chg);
    size_t differ = 0;
    for (size_t i = 0; i < p->n_chg; i++)
        if (p->chg[i]->sc.installation_id && settings_differ(p->chg[i]))
            differ++;
    mb(&b,
       "# HELP lade_settings_differ Chargers in an installation whose settings in force (as "
       "they report them) differ from the stored ones.\n"
       "# TYPE lade_settings_differ gauge\nlade_settings_differ %zu\n",
       differ);
    mb(&b,
       "# HELP lade_hub_link_up 1 when the portal's link to the hub is up.\n"
       "# TYPE lade_hub_link_up gauge\nlade_hub_link_up %d\n",
       p->svc_online ? 1 : 0);
    counter(&b, "lade_messages_in_total", "Telemetry messages received from chargers.",
            m->messages_in);
    counter(&b, "lade_messages_invalid_total", "Charger messages refused as malformed.",
            m->messages_invalid);
    counter(&b, "lade_messages_out_total", "Calls and twin patches sent to chargers.",
            m->messages_out);
    counter(&b, "lade_lifecycle_events_total", "Connect/disconnect events from the hub.",
            m->lifecycle_events);
    counter(&b, "lade_sessions_stored_total", "Charge sessions stored (first time).",
            m->sessions_added);
    counter(&b, "lade_sessions_duplicate_total", "Resent charge sessions recognised.",
            m->sessions_duplicate);
    counter(&b, "lade_setpoints_sent_total", "Setpoints sent to chargers.", m->setpoints_sent);
    counter(&b, "lade_setpoints_acked_total", "Setpoints the chargers confirmed.",
            m->setpoints_acked);
    counter(&b, "lade_settings_pushes_total",
            "Stored settings pushed to chargers whose settings in force differ.",
            m->settings_pushes);
    counter(&b, "lade_settings_pushes_failed_total", "Settings pushes not confirmed by the hub.",
            m->settings_push_failed);
    counter(&b, "lade_settings_pushes_deferred_total",
            "Settings pushes put off (the in-flight limit), tried again at the next message.",
            m->settings_push_deferred);
    mb(&b,
       "# HELP lade_settings_pushes_inflight_max Most settings pushes in flight at once since "
       "start.\n# TYPE lade_settings_pushes_inflight_max gauge\n"
       "lade_settings_pushes_inflight_max %u\n",
       (unsigned)m->settings_push_inflight_max);
    counter(&b, "lade_setpoints_refused_total", "Setpoints not delivered or refused.",
            m->setpoints_naked);
    counter(&b, "lade_setpoints_unanswered_total", "Setpoints without an answer in time.",
            m->setpoints_unanswered);
    counter(&b, "lade_balancer_runs_total", "Balancer steps run.", m->balancer_runs);
    mb(&b,
       "# HELP lade_balancer_seconds_total Time spent in balancer steps.\n"
       "# TYPE lade_balancer_seconds_total counter\nlade_balancer_seconds_total %.6f\n",
       (double)m->balancer_ns_total / 1e9);
    mb(&b,
       "# HELP lade_balancer_step_max_seconds Longest balancer step since start.\n"
       "# TYPE lade_balancer_step_max_seconds gauge\nlade_balancer_step_max_seconds %.6f\n",
       (double)m->balancer_ns_max / 1e9);
    counter(&b, "lade_http_requests_total", "API requests handled.", m->http_requests);
    counter(&b, "lade_http_client_errors_total", "API answers 4xx.", m->http_errors_4xx);
    counter(&b, "lade_http_server_errors_total", "API answers 5xx.", m->http_errors_5xx);
    counter(&b, "lade_http_rate_limited_total", "API answers 429.", m->http_rate_limited);
    counter(&b, "lade_logins_total", "Successful logins.", m->logins_ok);
    counter(&b, "lade_logins_failed_total", "Failed logins.", m->logins_failed);
    counter(&b, "lade_commands_total", "Commands passed to chargers.", m->commands_sent);
    counter(&b, "lade_store_errors_total", "Store operations that failed.", m->store_errors);
    mb(&b, "# HELP lade_node_headroom_amperes Node limit minus what the chargers below might "
           "draw, per supply phase (never negative while the invariant holds).\n"
           "# TYPE lade_node_headroom_amperes gauge\n");
    uint64_t now = lade_mono_ms();
    for (size_t si = 0; si < p->n_sites; si++) {
        struct site *s = p->sites[si];
        int32_t(*might)[3] = calloc(s->n_nodes, sizeof *might);
        if (!might) {
            b.nomem = true;
            break;
        }
        for (uint32_t i = 0; i < s->n_chg; i++) {
            int32_t md[3] = {0, 0, 0};
            (void)!lade_balancer_might_draw(s->bal, i, now, md);
            for (int32_t n = (int32_t)s->cc[i].node; n >= 0; n = s->nodes[n].parent)
                for (int k = 0; k < 3; k++)
                    might[n][k] += md[k];
        }
        char iid[PORTAL_ID_LEN + 1], nid[PORTAL_ID_LEN + 1];
        portal_id_format(PORTAL_ID_INSTALLATION, s->in.id, iid);
        for (uint32_t n = 0; n < s->n_nodes; n++) {
            int32_t lim[3] = {0, 0, 0};
            (void)!lade_balancer_node_limit(s->bal, n, lim);
            if (n == 0)
                memcpy(nid, iid, sizeof nid);
            else
                portal_id_format(PORTAL_ID_CIRCUIT, s->node_circuit[n], nid);
            for (int k = 0; k < 3; k++)
                mb(&b,
                   "lade_node_headroom_amperes{installation=\"%s\",node=\"%s\",phase=\"L%d\"} "
                   "%.3f\n",
                   iid, nid, k + 1, (double)(lim[k] - might[n][k]) / 1000.0);
        }
        free(might);
    }
    if (b.nomem) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* ---- housekeeping ---- */

static void housekeeping_cb(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_portal *p = ud;
    int64_t now_s = lade_wall_s();
    uint64_t n = 0;
    if (lade_store_sample_prune(p->store, now_s - SAMPLE_KEEP_S, PRUNE_BUDGET, &n) != LADE_OK ||
        lade_store_setpoint_prune(p->store, portal_wall_ms() - SETPOINT_KEEP_MS, PRUNE_BUDGET,
                                  &n) != LADE_OK ||
        lade_store_token_prune(p->store, now_s, &n) != LADE_OK)
        p->m.store_errors++;
    (void)!lade_timer_arm_in(p->loop, &p->housekeeping, HOUSEKEEPING_MS);
}

/* ---- life ---- */

static lade_err svc_setup(struct lade_portal *p, const struct lade_portal_opts *o, char *why,
                          size_t why_cap)
{
    struct lade_svc_file f;
    char reason[160] = "";
    lade_err err = lade_svc_file_load(o->svc_file, &f, reason, sizeof reason);
    if (err != LADE_OK) {
        why_set(why, why_cap, "service file %s: %s", o->svc_file,
                reason[0] ? reason : lade_strerror(err));
        return err == LADE_ERR_NOT_FOUND || err == LADE_ERR_IO ? LADE_ERR_CONFIG : err;
    }
    struct lade_svc_opts so = {
        .loop = p->loop,
        .hub_host = f.hub_host,
        .port = o->hub_port  ? o->hub_port
                : f.hub_port ? f.hub_port
                             : 8883,
        .ca_file = o->ca_file,
        .hosts_file = o->hosts_file,
        .service_name = f.name,
        .key = f.key,
        .key_len = f.key_len,
        .persistent_session = true,
        .cb = {.on_state = on_state, .on_event = on_event},
        .ud = p,
    };
    err = lade_svc_new(&p->svc, &so);
    lade_svc_file_wipe(&f);
    if (err != LADE_OK) {
        why_set(why, why_cap, "hub link: %s%s", lade_strerror(err),
                err == LADE_ERR_CONFIG ? " (CA bundle unreadable or without certificates)" : "");
        return err;
    }
    if ((err = lade_svc_subscribe_events(p->svc, true)) != LADE_OK ||
        (err = lade_svc_start(p->svc)) != LADE_OK) {
        why_set(why, why_cap, "hub link: cannot start: %s", lade_strerror(err));
        return err;
    }
    return LADE_OK;
}

static lade_err load_all(struct lade_portal *p, char *why, size_t why_cap)
{
    struct collect hl = {.elem = sizeof(struct lade_store_charger)};
    lade_err err = lade_store_charger_list(p->store, 0, 0, chg_collect, &hl);
    if (err == LADE_OK && hl.nomem)
        err = LADE_ERR_NOMEM;
    for (size_t i = 0; err == LADE_OK && i < hl.n; i++)
        if (!chg_add(p, &((struct lade_store_charger *)hl.v)[i]))
            err = LADE_ERR_NOMEM;
    free(hl.v);
    if (err != LADE_OK) {
        why_set(why, why_cap, "loading chargers: %s", lade_strerror(err));
        return err;
    }
    struct collect il = {.elem = sizeof(struct lade_store_installation)};
    err = lade_store_installation_list(p->store, 0, inst_collect, &il);
    if (err == LADE_OK && il.nomem)
        err = LADE_ERR_NOMEM;
    for (size_t i = 0; err == LADE_OK && i < il.n; i++) {
        char w[256] = "";
        const struct lade_store_installation *in = &((struct lade_store_installation *)il.v)[i];
        lade_err e = portal_reload(p, in->id, w, sizeof w);
        if (e == LADE_ERR_CONFIG)
            /* A stored configuration the balancer refuses (an older version allowed it): the
             * installation is not balanced until an admin fixes it; say so loudly. */
            LOG_E(MOD, "installation %s is NOT balanced: %s", in->name, w);
        else if (e != LADE_OK)
            err = e;
    }
    free(il.v);
    if (err != LADE_OK)
        why_set(why, why_cap, "loading installations: %s", lade_strerror(err));
    return err;
}

static int reg_device(void *ud, const struct lade_registry_device *dev)
{
    struct lade_portal *p = ud;
    if (!chg_by_device(p, dev->id))
        (void)chg_for_device(p, dev->id); /* adds it to the store, unassigned */
    return 0;
}

/* Every device of the hub's registry is a charger the portal lists (unassigned until an admin
 * places it). The registry is opened read-only in practice: nothing is written to it. */
static lade_err import_registry(struct lade_portal *p, const char *path, char *why, size_t why_cap)
{
    struct lade_registry *reg = NULL;
    lade_err err = lade_registry_open(path, &reg);
    if (err == LADE_OK) {
        size_t before = p->n_chg;
        err = lade_registry_device_list(reg, reg_device, p);
        if (err == LADE_OK && p->n_chg > before)
            LOG_I(MOD, "%zu charger(s) from the registry added, not assigned yet",
                  p->n_chg - before);
    }
    lade_registry_close(reg);
    if (err != LADE_OK)
        why_set(why, why_cap, "registry %s: %s", path, lade_strerror(err));
    return err;
}

lade_err lade_portal_new(struct lade_portal **out, const struct lade_portal_opts *o, char *why,
                         size_t why_cap)
{
    if (!out || !o || !o->loop || !o->db_path) {
        why_set(why, why_cap, "missing loop or database path");
        return LADE_ERR_INVAL;
    }
    if (o->svc_file && !o->ca_file) {
        why_set(why, why_cap, "a hub link needs the CA bundle that signed the hub's certificate");
        return LADE_ERR_INVAL;
    }
    struct lade_portal *p = calloc(1, sizeof *p);
    if (!p)
        return LADE_ERR_NOMEM;
    p->o = *o;
    p->loop = o->loop;
    p->db_path = dup_or_null(o->db_path);
    p->web_dir = dup_or_null(o->web_dir);
    p->bind_addr = dup_or_null(o->bind_addr);
    p->o.db_path = p->db_path;
    p->o.web_dir = p->web_dir;
    p->o.bind_addr = p->bind_addr;
    p->o.svc_file = p->o.ca_file = p->o.hosts_file = p->o.registry = NULL; /* new only */
    p->o.firmware_dir = p->o.firmware_keys = NULL;
    if (!p->o.link_loss_deadline_ms)
        p->o.link_loss_deadline_ms = LADE_PORTAL_DEADLINE_DEFAULT_MS;
    if (p->o.link_loss_deadline_ms > 3600000)
        p->o.link_loss_deadline_ms = 3600000;
    if (!p->o.token_ttl_s)
        p->o.token_ttl_s = LADE_AUTH_TOKEN_TTL_DEFAULT_S;
    if (!p->o.rate_burst)
        p->o.rate_burst = 15;
    if (!p->o.rate_refill_ms)
        p->o.rate_refill_ms = 100;
    if (!p->o.login_burst)
        p->o.login_burst = 5;
    if (!p->o.login_refill_ms)
        p->o.login_refill_ms = 2000;
    if (!p->o.command_timeout_ms)
        p->o.command_timeout_ms = 15000;
    if (!p->o.settings_push_inflight)
        p->o.settings_push_inflight = 32;
    if (o->params)
        p->params = *o->params;
    else {
        lade_balancer_params_default(&p->params);
        p->params.start_hold_ms = 0; /* a car that plugs in gets its setpoint at once */
    }
    lade_timer_init(&p->housekeeping, housekeeping_cb, p);
    lade_err err = LADE_ERR_NOMEM;
    if (!p->db_path || (o->web_dir && !p->web_dir) || (o->bind_addr && !p->bind_addr))
        goto fail;
    char emsg[LADE_STORE_ERRMSG_SIZE] = "";
    struct lade_store_sqlite_opts sqo = {.errmsg = emsg, .errmsg_cap = sizeof emsg};
    err = lade_store_open_sqlite_ex(p->db_path, &sqo, &p->store);
    if (err != LADE_OK) {
        why_set(why, why_cap, "store %s: %s%s%s", p->db_path, lade_strerror(err),
                emsg[0] ? ": " : "", emsg);
        goto fail;
    }
    if ((err = load_all(p, why, why_cap)) != LADE_OK)
        goto fail;
    if (o->registry && (err = import_registry(p, o->registry, why, why_cap)) != LADE_OK)
        goto fail;
    if (o->firmware_dir && (err = portal_fw_new(p, p->loop, p->db_path, o->firmware_dir,
                                                o->firmware_keys, &p->fw, why, why_cap)) != LADE_OK)
        goto fail;
    if ((err = portal_api_new(p, &p->api)) != LADE_OK) {
        why_set(why, why_cap, "API: %s", lade_strerror(err));
        goto fail;
    }
    struct lade_http_opts ho = {
        .loop = p->loop,
        .bind_addr = p->bind_addr,
        .port = o->port,
        .handler = portal_api_handle,
        .stream_begin = portal_api_stream_begin,
        .stream_data = portal_api_stream_data,
        .stream_abort = portal_api_stream_abort,
        .ud = p->api,
    };
    if ((err = lade_http_new(&p->http, &ho)) != LADE_OK) {
        why_set(why, why_cap, "HTTP server on %s:%u: %s", p->bind_addr ? p->bind_addr : "127.0.0.1",
                (unsigned)o->port, lade_strerror(err));
        goto fail;
    }
    if (o->svc_file && (err = svc_setup(p, o, why, why_cap)) != LADE_OK)
        goto fail;
    (void)!lade_timer_arm_in(p->loop, &p->housekeeping, 1000);
    LOG_I(MOD, "portal on http://%s:%u (%zu installations, %zu chargers, store %s)",
          p->bind_addr ? p->bind_addr : "127.0.0.1", (unsigned)lade_http_port(p->http), p->n_sites,
          p->n_chg, lade_store_backend_name(p->store));
    *out = p;
    return LADE_OK;
fail:
    lade_portal_free(p);
    return err;
}

void lade_portal_free(struct lade_portal *p)
{
    if (!p)
        return;
    /* The hub link first: its pending calls fail now and answer their HTTP requests (nothing
     * new is sent from their callbacks: the link is down). */
    p->svc_online = false;
    lade_svc_free(p->svc);
    p->svc = NULL;
    p->svc_online = false;
    lade_http_free(p->http);
    portal_api_free(p->api);
    portal_fw_free(p->fw);
    lade_timer_cancel(p->loop, &p->housekeeping);
    for (size_t i = 0; i < p->n_sites; i++)
        site_free(p->sites[i]);
    free(p->sites);
    for (size_t i = 0; i < p->n_chg; i++)
        free(p->chg[i]);
    free(p->chg);
    free(p->ix_id);
    free(p->ix_dev);
    lade_store_close(p->store);
    free(p->db_path);
    free(p->web_dir);
    free(p->bind_addr);
    free(p);
}

lade_err lade_portal_set_admin(struct lade_portal *p, const char *username, const char *password)
{
    if (!p || !username || !password)
        return LADE_ERR_INVAL;
    struct lade_store_user u;
    lade_err err = lade_store_user_get_by_name(p->store, username, &u);
    bool exists = err == LADE_OK;
    if (err != LADE_OK && err != LADE_ERR_NOT_FOUND)
        return err;
    char hash[LADE_AUTH_HASH_STR_SIZE];
    err = lade_auth_hash_password(password, strlen(password), p->o.kdf, hash, sizeof hash);
    if (err != LADE_OK)
        return err;
    if (!exists) {
        memset(&u, 0, sizeof u);
        snprintf(u.username, sizeof u.username, "%s", username);
        u.created_s = lade_wall_s();
    }
    u.roles |= LADE_ROLE_ADMIN;
    snprintf(u.password_hash, sizeof u.password_hash, "%s", hash);
    err = exists ? lade_store_user_update(p->store, &u) : lade_store_user_add(p->store, &u, NULL);
    if (err == LADE_OK && exists)
        err = lade_store_token_revoke_user(p->store, u.id, NULL);
    return err;
}
