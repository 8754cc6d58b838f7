/* lade — the portal's load and phase balancer (SPEC R14–R17, reference/balancing.md).
 *
 * A pure library: no I/O, no clock, no allocation after lade_balancer_create(). The caller
 * (the portal) feeds it what it learns about chargers (online/offline, messages heard, demand,
 * measured currents, setpoint replies, operator limits), each with the monotonic time it
 * happened, and runs lade_balancer_step() on every such event and at out.next_step_ms. The step
 * returns the setpoints to send. docs/balancer.md explains the model and the algorithm with a
 * worked example.
 *
 * Units: currents in mA per phase (int32), time in monotonic ms (uint64). "Supply phase" is one
 * of the installation's phases 0..2 (L1..L3 of the supply); a charger's "terminals" are its own
 * L1..L3, which its phase rotation maps onto supply phases.
 *
 * THE invariant (balancing.md): for every node and supply phase, the sum over the chargers below
 * it of what each charger MIGHT be drawing is <= the node's limit. "Might draw"
 * (lade_balancer_might_draw) is, per supply phase, the largest of:
 *   - every setpoint the charger may be applying: the last one it confirmed, the one sent and not
 *     yet confirmed, and any older unconfirmed one (or, before anything is known, its max on 3
 *     phases);
 *   - its offline fallback current on its fallback phases — ALWAYS, online or not: when the site
 *     loses the cloud, every charger falls back at its own deadline, so one that falls back
 *     early (setpoint below its fallback) and one still on a setpoint above its fallback draw
 *     together. Only Σ max(setpoint, fallback) <= limit survives that (docs/balancer.md);
 *   - what it was last measured drawing (a car over-drawing its offer counts as measured; a
 *     measurement older than a confirmed setpoint counts until the car had time to follow it).
 * Once an offline charger has certainly fallen back (offline, and its last possible contact +
 * link-loss deadline + contact margin has passed), only the fallback remains.
 *
 * Emission rule: an emitted setpoint never raises the sum of might-draw on any node and phase
 * above the node's limit, and where that sum is already above the limit (a limit just lowered,
 * over-draw, unknown states at start-up) it never raises what the charger can really be drawing
 * on that phase (it is at most the lowest value the charger can be applying). Decreases go out at
 * once; an increase waits until the invariant holds with every other charger counted at its
 * might-draw (an unconfirmed decrease at its old value), so "decrease first, confirm, then
 * increase others" follows.
 *
 * Assumptions the caller must keep (docs/balancer.md, "Assumptions"; the property test's
 * simulated world keeps them and breaks everything else):
 *   - a message portal <-> charger is delivered within params.contact_margin_ms or never, and
 *     only on the connection it was sent on; setpoints reach a charger in the order sent;
 *   - "online" is reported within contact_margin_ms of the charger connecting, and a new
 *     connection's "online" comes after the old connection's "offline" (the hub reports the old
 *     one gone when the same client connects again); "offline" may come at any time after the
 *     link was lost;
 *   - a charger falls back only after hearing nothing from the hub for its deadline, and then
 *     drops its connection (charging.md).
 * Not thread-safe: one balancer is used from one thread (the portal's loop).
 */
#ifndef LADE_BALANCER_H
#define LADE_BALANCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"

#define LADE_BAL_PHASES       3
#define LADE_BAL_MIN_MA       6000       /* IEC 61851: no charging below 6 A */
#define LADE_BAL_FUSE_MAX_MA  63000      /* SPEC R14: a charger sits behind at most 63 A */
#define LADE_BAL_LIMIT_MAX_MA 1000000000 /* 1 MA: sanity bound for node limits */
#define LADE_BAL_MAX_NODES    100000
#define LADE_BAL_MAX_CHARGERS 100000

/* NetworkType without the 1-/3-phase part (a 1-phase installation is a 3-phase tree with two
 * phase limits at 0 and chargers with max_phases 1). */
enum lade_bal_network {
    LADE_BAL_TN = 0, /* a 1-phase load sits between a supply phase and N: one supply phase */
    LADE_BAL_IT = 1, /* a 1-phase load sits between two supply phases: counts on both */
};

/* A node of the installation tree: node 0 is the installation (main fuse), every other node a
 * circuit (which may hang below another circuit). */
struct lade_bal_node_config {
    int32_t parent;                    /* -1 for node 0; else 0 <= parent < this node's index */
    int32_t limit_ma[LADE_BAL_PHASES]; /* per supply phase; the effective one (min of the
                                          configured and the physical fuse, R15); 0..1 MA */
};

struct lade_bal_charger_config {
    uint32_t node;                     /* the circuit (or installation) it hangs on */
    int32_t max_ma;                    /* its own limit (fuse setting): 6..63 A (R14) */
    int32_t min_ma;                    /* lowest current it charges at: 6 A..max_ma */
    uint8_t max_phases;                /* 1 or 3: what it is wired for */
    uint8_t rotation[LADE_BAL_PHASES]; /* supply phase (0..2) of its terminals L1, L2, L3; a
                                          permutation. IT: a 1-phase load between L1 and L2
                                          counts on rotation[0] and rotation[1] */
    int32_t priority;                  /* higher is served first (see docs/balancer.md) */
    int32_t fallback_ma;               /* offline current: 0..max_ma; below min_ma = paused */
    uint8_t fallback_phases;           /* 1 or 3 (above max_phases: max_phases) */
    uint32_t link_loss_deadline_ms;    /* keep-alive × 1.5 + grace (charging.md), 1 s..1 h */
};

/* Tunables. lade_balancer_params_default() gives the values in brackets. */
struct lade_bal_params {
    int32_t step_ma;              /* [100] setpoint granularity */
    uint32_t contact_margin_ms;   /* [5000] max message latency + clock drift (see above) */
    uint32_t ack_timeout_ms;      /* [10000] resend an unconfirmed setpoint after this; the
                                     interval doubles with each resend, up to 16× */
    uint32_t increase_hold_ms;    /* [10000] an increase waits until the higher target held
                                     this long (also a new car's first start) */
    uint32_t restart_hold_ms;     /* [60000] a charger paused while its car wanted energy
                                     restarts only after capacity for it held this long */
    uint32_t start_hold_ms;       /* [10000] a new car's first start waits until capacity for
                                     it held this long (the portal uses 0: a car that plugs
                                     in gets its setpoint at once when the capacity is free) */
    int32_t min_increase_ma;      /* [500] smaller increases are not sent (hysteresis) */
    uint32_t rotation_ms;         /* [900000] a started charger keeps its turn this long when
                                     others wait (0 = never rotate) */
    uint32_t rotation_wait_ms;    /* [300000] a waiting car takes the turn of a charger whose
                                     turn is over after waiting this long */
    uint32_t reclaim_delay_ms;    /* [60000] under-draw this long before it is reclaimed */
    int32_t reclaim_threshold_ma; /* [2000] under-draw = drawing < offer - this */
    int32_t reclaim_headroom_ma;  /* [1000] a reclaimed charger keeps measured + this */
    int32_t rampup_threshold_ma;  /* [1000] drawing >= offer - this gives the reclaim back */
    uint32_t settle_ms;           /* [10000] measurements this soon after a confirmed change
                                     are not used for reclaim or phase detection */
    uint32_t measure_stale_ms;    /* [120000] older measurements are not used for decisions */
    uint32_t car_follow_ms;       /* [5000] a car follows a lower offer within this (IEC 61851:
                                     5 s): a measurement taken before a confirmed setpoint
                                     stops counting in might-draw this long after it */
    int32_t detect_threshold_ma;  /* [1000] a terminal is in use above this */
    uint32_t periodic_ms;         /* [60000] longest next_step_ms - now */
};

struct lade_bal_config {
    enum lade_bal_network network;
    const struct lade_bal_node_config *nodes; /* n_nodes >= 1; copied by create */
    uint32_t n_nodes;
    const struct lade_bal_charger_config *chargers; /* copied by create */
    uint32_t n_chargers;
    struct lade_bal_params params;
};

/* Why a configuration was refused; the API answers 400 with lade_balancer_config_error_format. */
enum lade_bal_config_problem {
    LADE_BAL_CFG_OK = 0,
    LADE_BAL_CFG_SIZE,         /* no nodes, or too many nodes/chargers */
    LADE_BAL_CFG_NETWORK,      /* unknown network type */
    LADE_BAL_CFG_PARENT,       /* node: parent not -1 for node 0 / not in 0..index-1 */
    LADE_BAL_CFG_LIMIT,        /* node: limit out of 0..1 MA */
    LADE_BAL_CFG_NODE,         /* charger: node out of range */
    LADE_BAL_CFG_MAX,          /* charger: max out of 6..63 A */
    LADE_BAL_CFG_MIN,          /* charger: min out of 6 A..max */
    LADE_BAL_CFG_PHASES,       /* charger: max_phases or fallback_phases not 1 or 3 */
    LADE_BAL_CFG_ROTATION,     /* charger: rotation not a permutation of 0,1,2 */
    LADE_BAL_CFG_FALLBACK,     /* charger: fallback out of 0..max */
    LADE_BAL_CFG_DEADLINE,     /* charger: link-loss deadline out of 1 s..1 h */
    LADE_BAL_CFG_PRIORITY,     /* charger: priority out of -1000..1000 */
    LADE_BAL_CFG_FALLBACK_SUM, /* node: sum of fallback currents below it > its limit */
    LADE_BAL_CFG_PARAMS,       /* params out of range */
};

struct lade_bal_config_error {
    enum lade_bal_config_problem problem;
    int32_t node;     /* node concerned, -1 if none */
    int32_t charger;  /* charger concerned, -1 if none */
    int32_t phase;    /* supply phase 0..2 concerned, -1 if none */
    int64_t value_ma; /* FALLBACK_SUM: the sum on that phase; LIMIT/MAX/MIN/FALLBACK: the value */
    int64_t limit_ma; /* FALLBACK_SUM: the node's limit on that phase */
};

/* Defaults in struct lade_bal_params. */
void lade_balancer_params_default(struct lade_bal_params *p);

/* Checks a whole configuration, including that the sum of the offline fallback currents below
 * every node fits its limit on every supply phase (a charger whose fallback is below its min
 * counts 0: it pauses). LADE_OK, or LADE_ERR_CONFIG with *err (may be NULL) saying which node /
 * charger / phase and the numbers. Stops at the first problem (nodes first, then chargers, then
 * sums, lowest index first). */
LADE_MUST_CHECK lade_err lade_balancer_check_config(const struct lade_bal_config *cfg,
                                                    struct lade_bal_config_error *err);

/* One English sentence for err into buf (always NUL-terminated when len > 0), e.g.
 * "node 2 phase L3: offline fallback currents sum to 48000 mA, above its limit of 40000 mA".
 * Returns what snprintf returns. */
int lade_balancer_config_error_format(const struct lade_bal_config_error *err, char *buf,
                                      size_t len);

struct lade_balancer;

/* Checks cfg (as lade_balancer_check_config; *err filled on LADE_ERR_CONFIG) and allocates a
 * balancer. Every charger starts offline, without demand, its state unknown (it might draw its
 * max on 3 phases) until it confirms a setpoint, certainly falls back, or the caller seeds it
 * with lade_balancer_charger_assume(). LADE_ERR_NOMEM on allocation failure. */
LADE_MUST_CHECK lade_err lade_balancer_create(const struct lade_bal_config *cfg, uint64_t now_ms,
                                              struct lade_balancer **out,
                                              struct lade_bal_config_error *err);
void lade_balancer_destroy(struct lade_balancer *bal); /* NULL is a no-op */

/* ---- events (the caller's view of each charger) ----
 * idx is the charger's index in cfg.chargers. Times earlier than the latest time seen are taken
 * as that time (monotonic). Out-of-range idx: LADE_ERR_INVAL, nothing changes. */

/* The hub says the charger connected (online = true; counts as hearing from it) or
 * disconnected (false). */
LADE_MUST_CHECK lade_err lade_balancer_charger_online(struct lade_balancer *bal, uint32_t idx,
                                                      bool online, uint64_t now_ms);
/* Any message from the charger arrived (telemetry, replies). The demand/measured/ack calls
 * below imply it. */
LADE_MUST_CHECK lade_err lade_balancer_charger_heard(struct lade_balancer *bal, uint32_t idx,
                                                     uint64_t now_ms);
/* The portal sent the charger something other than a setpoint from a step (a command, a twin
 * update): it extends how long the charger may keep its setpoint. Setpoints returned by
 * lade_balancer_step() count as sent at the step's now. */
LADE_MUST_CHECK lade_err lade_balancer_charger_sent(struct lade_balancer *bal, uint32_t idx,
                                                    uint64_t now_ms);
/* A car is connected and wants energy (mode 2 or 3, no final stop) — or not (1, 5, 0, fault). */
LADE_MUST_CHECK lade_err lade_balancer_charger_demand(struct lade_balancer *bal, uint32_t idx,
                                                      bool demand, uint64_t now_ms);
/* Measured current per charger terminal L1..L3 (observations 507..509), >= 0. */
LADE_MUST_CHECK lade_err lade_balancer_charger_measured(struct lade_balancer *bal, uint32_t idx,
                                                        const int32_t current_ma[LADE_BAL_PHASES],
                                                        uint64_t now_ms);
/* The charger answered 200 to setpoint seq: it has applied it. A reply to a setpoint older than
 * one already confirmed changes nothing but "heard". Unknown seq: LADE_ERR_NOT_FOUND (still
 * counts as heard). */
LADE_MUST_CHECK lade_err lade_balancer_ack(struct lade_balancer *bal, uint32_t idx, uint32_t seq,
                                           uint64_t now_ms);
/* Setpoint seq certainly did not reach the charger or was refused without effect (the hub
 * answered "device offline", the charger answered 4xx). Only the newest sent setpoint can be
 * withdrawn; anything else: LADE_ERR_NOT_FOUND. Never call this on a timeout: an unanswered
 * setpoint keeps counting. */
LADE_MUST_CHECK lade_err lade_balancer_nak(struct lade_balancer *bal, uint32_t idx, uint32_t seq,
                                           uint64_t now_ms);
/* Seed a charger whose state is unknown (after a portal restart) with the setpoint it is known
 * to hold — from the store, or its reported allocation (observation 708). It may also be at its
 * fallback. LADE_ERR_STATE once the balancer has sent it a setpoint; LADE_ERR_INVAL for a value
 * out of 0..max_ma or phases not 1/3 (above max_phases: max_phases). */
LADE_MUST_CHECK lade_err lade_balancer_charger_assume(struct lade_balancer *bal, uint32_t idx,
                                                      int32_t current_ma, uint8_t phases);

/* Operator (or physical) limit change of node `node`. Refused with LADE_ERR_CONFIG and *err
 * (may be NULL) if the offline fallback currents below it, or below any ancestor, would no
 * longer fit (the API answers 400); LADE_ERR_INVAL for a bad node or value. A lower limit takes
 * effect in the next step, which emits the decreases first. */
LADE_MUST_CHECK lade_err lade_balancer_set_limit(struct lade_balancer *bal, uint32_t node,
                                                 const int32_t limit_ma[LADE_BAL_PHASES],
                                                 struct lade_bal_config_error *err);

/* ---- the step ---- */

struct lade_bal_setpoint {
    uint32_t charger;   /* index */
    int32_t current_ma; /* 0 (pause) or min_ma..max_ma */
    uint8_t phases;     /* 1 or 3 (<= max_phases) */
    bool resend;        /* the same values as the unconfirmed one before, sent again */
    uint32_t seq;       /* pass back to lade_balancer_ack / _nak; increases with every setpoint */
};

struct lade_bal_step_out {
    /* Setpoints to send now, decreases first. Owned by the balancer, valid until the next step.
     * At most one per charger; only to online chargers; only when something changes (or a
     * resend). */
    const struct lade_bal_setpoint *setpoints;
    uint32_t n_setpoints;
    uint64_t next_step_ms; /* run the step again no later than this (> now) */
    uint32_t n_waiting;    /* chargers whose car wants energy and that are paused for capacity */
    uint32_t n_held;       /* wanted increases not sent (hold, or not safe yet) */
};

/* One balancing step at now_ms (see docs/balancer.md). Never allocates. LADE_ERR_INVAL for NULL
 * arguments. */
LADE_MUST_CHECK lade_err lade_balancer_step(struct lade_balancer *bal, uint64_t now_ms,
                                            struct lade_bal_step_out *out);

/* ---- introspection (tests, the API's view, the web page) ---- */

enum lade_bal_run {
    LADE_BAL_IDLE = 0,    /* no demand, or not online */
    LADE_BAL_WAITING = 1, /* demand, paused for lack of capacity (or its turn) */
    LADE_BAL_RUNNING = 2, /* demand, allocated >= its min */
};

struct lade_bal_charger_info {
    bool online, demand;
    enum lade_bal_run run;
    uint64_t run_since_ms;
    int32_t target_ma; /* the last step's allocation (0 or min..max) */
    uint8_t target_phases;
    bool known; /* a confirmed setpoint (or an assumed / certain fallback) is known */
    int32_t confirmed_ma;
    uint8_t confirmed_phases;
    bool pending; /* a setpoint sent and not confirmed */
    int32_t pending_ma;
    uint8_t pending_phases;
    uint32_t pending_seq;
    bool maybe_fallback;                    /* it may be at its fallback right now */
    int32_t might_draw_ma[LADE_BAL_PHASES]; /* per supply phase, as in the invariant */
    int32_t least_ma[LADE_BAL_PHASES];      /* per supply phase, the least it can be allowed now */
    int32_t reclaim_cap_ma;                 /* 0 = none */
    uint8_t car_phases;                     /* 0 unknown, 1, 3 (detected from measurements) */
};

/* What charger idx might draw per supply phase at now_ms (the invariant's term). */
LADE_MUST_CHECK lade_err lade_balancer_might_draw(const struct lade_balancer *bal, uint32_t idx,
                                                  uint64_t now_ms, int32_t out_ma[LADE_BAL_PHASES]);
LADE_MUST_CHECK lade_err lade_balancer_charger_info(const struct lade_balancer *bal, uint32_t idx,
                                                    uint64_t now_ms,
                                                    struct lade_bal_charger_info *out);
/* The node's current limit per supply phase. */
LADE_MUST_CHECK lade_err lade_balancer_node_limit(const struct lade_balancer *bal, uint32_t node,
                                                  int32_t out_ma[LADE_BAL_PHASES]);

#endif
