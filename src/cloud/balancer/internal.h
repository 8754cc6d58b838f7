/* Internals shared by the balancer's files (include/lade/balancer.h, docs/balancer.md). */
#ifndef LADE_BALANCER_INTERNAL_H
#define LADE_BALANCER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "lade/balancer.h"

#define NPH       LADE_BAL_PHASES
#define SENT_RING 4 /* recent setpoints kept to read an older reply */

struct bal_sp {
    int32_t ma;
    uint8_t ph; /* 1 or 3 */
};

struct bal_sent_rec {
    uint32_t seq;
    uint64_t ms;
    struct bal_sp sp;
};

/* One charger: its configuration, the caller's view of it, what the portal told it, and the
 * allocation's bookkeeping. */
struct bal_charger {
    struct lade_bal_charger_config cfg;
    uint8_t mask1, mask3; /* supply phases loaded by a 1- / 3-phase setpoint */
    int32_t fb_env[NPH];  /* fallback per supply phase (0 where it pauses) */
    const uint32_t *path; /* nodes from its node up to the root */
    uint32_t path_len;

    /* link */
    bool online;
    uint64_t contact_hi_ms; /* latest time it may have heard the hub (sent, heard, offline) */
    bool fb_sticky;         /* seen offline since fb_since_ms, no confirmation since */
    uint64_t fb_since_ms;

    /* what it may be applying */
    bool known; /* conf is a value it held for sure at some point after everything older */
    struct bal_sp conf;
    uint32_t conf_seq;
    uint64_t conf_ms;
    bool has_sent; /* newest setpoint sent, not confirmed */
    struct bal_sp sent;
    uint32_t sent_seq;
    uint64_t sent_ms;
    uint32_t resends;
    bool has_older; /* unconfirmed setpoints older than sent (or the unknown start state) */
    int32_t older_hi[NPH], older_lo[NPH];
    bool ever_sent;
    struct bal_sent_rec ring[SENT_RING];
    uint32_t ring_next;

    /* telemetry */
    bool demand;
    bool meas_valid;
    int32_t meas[NPH]; /* per terminal */
    uint64_t meas_ms;

    /* allocation */
    enum lade_bal_run run;
    uint64_t run_since_ms;
    bool paused_after_run;
    uint8_t car_phases;
    int32_t cap_ma;
    bool under;
    uint64_t under_since_ms;
    struct bal_sp target;
    bool inc_pending;
    uint64_t inc_since_ms;
};

struct lade_balancer {
    enum lade_bal_network network;
    struct lade_bal_params p;
    uint32_t n_nodes, n_chargers;
    int32_t *parent;    /* [n_nodes] */
    int32_t *limit;     /* [n_nodes * 3] */
    int64_t *fb_sum;    /* [n_nodes * 3] fallback envelopes below each node */
    uint32_t *range_lo; /* [n_nodes] chargers below a node: dfs positions [lo, hi) */
    uint32_t *range_hi;
    uint32_t *dfs;          /* [n_chargers] position -> charger */
    uint32_t *paths;        /* all chargers' paths */
    struct bal_charger *ch; /* [n_chargers] */
    uint64_t now_ms;
    uint32_t seq;

    /* step scratch, allocated once */
    int64_t *load;  /* [n_nodes * 3] Σ might-draw below each node */
    int64_t *avail; /* [n_nodes * 3] limit - what the allocation cannot move */
    int64_t *used;  /* [n_nodes * 3] allocation above the fallbacks */
    int32_t *slope; /* [n_nodes * 3] rising chargers costing on each resource */
    int32_t *M;     /* [n_chargers * 3] might-draw */
    int32_t *LB;    /* [n_chargers * 3] least it can be allowed */
    struct bal_cand *cand;
    uint32_t *order;       /* candidates in admission order (indexes into cand) */
    uint32_t *cmap;        /* [n_chargers] charger -> index into cand, UINT32_MAX if none */
    struct bal_event *ev;  /* water-fill events */
    struct bal_event *ev2; /* ... sorted */
    uint32_t *bucket;      /* counting sort of events: (level / step) * 3 + type */
    uint32_t n_buckets;
    uint8_t *want; /* [n_chargers] an increase to try this step */
    struct lade_bal_setpoint *out;
};

/* Per-step record of a charger that wants energy. */
struct bal_cand {
    uint32_t c;
    uint8_t ph;   /* phases it gets */
    uint8_t mask; /* supply phases that loads */
    uint8_t group;
    uint8_t state; /* water-fill: see step.c */
    uint8_t cost;  /* supply phases where raising it costs now */
    bool admitted;
    int32_t prio;
    uint64_t key;
    int32_t min_ma, cap_ma, cur_ma;
};

struct bal_event {
    int32_t level;
    uint8_t type;
    uint8_t mask;
    uint32_t k; /* index into cand */
};

/* balancer.c */
uint8_t bal_mask(const struct lade_balancer *bal, const struct bal_charger *c, uint8_t phases);
void bal_env(const struct lade_balancer *bal, const struct bal_charger *c, struct bal_sp sp,
             int32_t env[NPH]);
bool bal_maybe_fallback(const struct bal_charger *c);
void bal_accounting(const struct lade_balancer *bal, const struct bal_charger *c, uint64_t now_ms,
                    int32_t M[NPH], int32_t LB[NPH], int32_t over[NPH]);
void bal_collapse_if_fallen_back(struct lade_balancer *bal, struct bal_charger *c, uint64_t now_ms);
uint64_t bal_advance(struct lade_balancer *bal, uint64_t now_ms);
void bal_record_sent(struct lade_balancer *bal, struct bal_charger *c, struct bal_sp sp,
                     bool resend, struct lade_bal_setpoint *out);
uint64_t bal_resend_interval_ms(const struct lade_balancer *bal, const struct bal_charger *c);

#endif
