/* lade — charging hardware port (EVSE), IEC 61851 helpers, a simulated EV + meter, and the
 * charging state machine. See docs/charging.md.
 *
 * Units: currents _ma (per phase, int32), voltages _mv, power _w, energy _wh (uint64,
 * cumulative), monotonic time now_ms, wall time wall_s. Nothing here reads a clock: every
 * function that needs time takes it as an argument.
 */
#ifndef LADE_EVSE_H
#define LADE_EVSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"

/* ---- IEC 61851 ---- */

#define LADE_IEC61851_MIN_MA 6000  /* below this a car may not charge */
#define LADE_IEC61851_MAX_MA 80000 /* highest current a PWM duty can express */
#define LADE_FUSE_MAX_MA     63000 /* SPEC R14: a charger sits behind at most 63 A */

/* Control-pilot state as seen by the EVSE. 0 is "not read yet". */
enum lade_cp_state {
    LADE_CP_UNKNOWN = 0,
    LADE_CP_A = 1, /* +12 V: no vehicle */
    LADE_CP_B = 2, /* +9 V: vehicle connected, not requesting energy */
    LADE_CP_C = 3, /* +6 V: vehicle requests energy */
    LADE_CP_D = 4, /* +3 V: requests energy, ventilation required */
    LADE_CP_E = 5, /* 0 V: short / EVSE or pilot error */
    LADE_CP_F = 6, /* -12 V: EVSE not available */
};
const char *lade_cp_state_name(enum lade_cp_state s);

/* PWM duty in permille (tenths of a percent) for an offered current:
 *   6–51 A: duty % = A / 0.6;  51–80 A: duty % = A / 2.5 + 64.
 * Rounded down (the car is offered at most current_ma). Returns LADE_ERR_INVAL for a current
 * below 6 A or above 80 A (those are "no offer": the caller drives a steady +12 V instead). */
LADE_MUST_CHECK lade_err lade_iec61851_duty_permille(int32_t current_ma, uint16_t *duty_permille);

/* ---- hardware port ---- */

/* Fault bits reported by the board; any set bit stops charging. */
enum lade_evse_fault {
    LADE_EVSE_FAULT_RCD = 1u << 0,         /* residual-current device tripped (AC or 6 mA DC) */
    LADE_EVSE_FAULT_OVERCURRENT = 1u << 1, /* hardware over-current trip */
    LADE_EVSE_FAULT_PILOT = 1u << 2,       /* CP diode missing / pilot short */
    LADE_EVSE_FAULT_CONTACTOR = 1u << 3,   /* contactor welded or does not close */
    LADE_EVSE_FAULT_METER = 1u << 4,       /* meter does not answer */
    LADE_EVSE_FAULT_OVERTEMP = 1u << 5,
};

struct lade_meter_reading {
    int32_t voltage_mv[3]; /* per phase L1..L3 */
    int32_t current_ma[3]; /* per phase L1..L3, >= 0 */
    int32_t power_w;       /* total active power */
    uint64_t energy_wh;    /* cumulative, never decreases */
};

/* What a board provides. Every function gets the ctx given with the ops. None may block. */
struct lade_evse_hw_ops {
    enum lade_cp_state (*cp_state)(void *ctx);
    /* 0 = no offer (steady +12 V); otherwise 6000..80000 mA, driven as PWM with
     * lade_iec61851_duty_permille(). LADE_ERR_INVAL for anything else. */
    lade_err (*set_offer_ma)(void *ctx, int32_t offer_ma);
    /* closed with phases 1 or 3; phases is ignored when opening. */
    lade_err (*set_contactor)(void *ctx, bool closed, unsigned phases);
    lade_err (*read_meter)(void *ctx, struct lade_meter_reading *out);
    uint32_t (*faults)(void *ctx);         /* enum lade_evse_fault bits */
    int32_t (*cable_rating_ma)(void *ctx); /* 13/20/32/63 A from PP; 0 = no/invalid cable */
};

/* Cable rating from the proximity-pilot resistor (IEC 61851-1 Annex B): 1.5 kΩ 13 A,
 * 680 Ω 20 A, 220 Ω 32 A, 100 Ω 63 A (±10 %); 0 for anything else. */
int32_t lade_iec61851_pp_rating_ma(uint32_t resistance_ohm);

/* ---- simulated EV + meter (pure: stepped by the caller with now_ms) ---- */

enum lade_ev_profile {
    LADE_EV_1P_16A = 0,  /* 1 phase, 16 A (3.7 kW) */
    LADE_EV_3P_11KW = 1, /* 3 phases, 16 A */
    LADE_EV_3P_22KW = 2, /* 3 phases, 32 A */
};

struct lade_ev_config {
    unsigned phases;               /* 1 or 3 */
    int32_t max_current_ma;        /* on-board charger limit per phase */
    uint64_t capacity_wh;          /* battery */
    uint32_t soc_permille;         /* state of charge when plugged in */
    uint32_t taper_start_permille; /* above this SoC the current falls linearly to 0 at 100 % */
    int32_t self_limit_ma;         /* > 0: the car draws at most this (draws less than offered) */
    int32_t overdraw_ma;           /* > 0: faulty car, draws offer + overdraw_ma regardless */
};

/* Fills *ev for a profile: 60 kWh battery at 20 %, taper from 80 %, no self limit, no fault. */
void lade_ev_config_profile(struct lade_ev_config *ev, enum lade_ev_profile p);

struct lade_evse_sim {
    /* board, set by the test/simulator */
    int32_t cable_rating_ma;      /* default 32 A */
    int32_t voltage_mv;           /* per phase, default 230 V */
    uint32_t faults;              /* injected enum lade_evse_fault bits */
    enum lade_cp_state cp_forced; /* != UNKNOWN: reported instead of the computed state */
    /* car */
    bool plugged;
    struct lade_ev_config ev;
    uint64_t battery_nj; /* energy in the battery, nanojoules */
    /* charger outputs as driven through the ops */
    int32_t offer_ma;
    bool contactor_closed;
    unsigned contactor_phases;
    /* meter */
    int32_t current_ma[3];
    uint64_t energy_wh;
    uint64_t energy_rem_nj; /* below one Wh, carried so the integral is exact */
    uint64_t last_ms;
    bool started;
    /* counters for tests */
    unsigned offer_calls, contactor_calls;
};

/* Ops whose ctx is a struct lade_evse_sim *. */
extern const struct lade_evse_hw_ops lade_evse_sim_ops;

/* Empty board (no car), 32 A cable, 230 V. */
void lade_evse_sim_init(struct lade_evse_sim *s);
/* Plug in a car (copied); its battery starts at ev->soc_permille. */
void lade_evse_sim_plug(struct lade_evse_sim *s, const struct lade_ev_config *ev);
void lade_evse_sim_unplug(struct lade_evse_sim *s);
/* Integrates the meter and battery from the last step to now_ms with the currents drawn in
 * between, then recomputes what the car draws. The first call only sets the time base;
 * now_ms going backwards is treated as no time passing. */
void lade_evse_sim_step(struct lade_evse_sim *s, uint64_t now_ms);
uint32_t lade_evse_sim_soc_permille(const struct lade_evse_sim *s);

/* ---- charging state machine (pure) ---- */

enum lade_charging_state {
    LADE_CHG_DISCONNECTED = 0, /* no car */
    LADE_CHG_AUTHORIZING = 1,  /* car connected, waiting for authorization */
    LADE_CHG_CHARGING = 2,     /* authorized, offering >= 6 A */
    LADE_CHG_PAUSED = 3,       /* authorized, < 6 A available: no offer, contactor open */
    LADE_CHG_FINISHED = 4,     /* stopped by StopChargingFinal (718 = 1) */
    LADE_CHG_FAULT = 5,        /* board fault or over-draw; left only by unplugging */
};
const char *lade_charging_state_name(enum lade_charging_state s);

/* ChargerOperationMode, observation 710. */
enum lade_operation_mode {
    LADE_MODE_UNKNOWN = 0,
    LADE_MODE_DISCONNECTED = 1,
    LADE_MODE_CONNECTED_REQUESTING = 2,
    LADE_MODE_CONNECTED_CHARGING = 3,
    LADE_MODE_CONNECTED_FINISHED = 5,
};

struct lade_charging_config {
    int32_t max_current_ma;         /* charger's configured max, 6..63 A (fuse setting) */
    int32_t min_current_ma;         /* below this the charger pauses; 6 A..max_current_ma */
    unsigned max_phases;            /* 1 or 3: what the charger is wired for */
    int32_t offline_current_ma;     /* fallback while the cloud is unreachable (0 = stop) */
    unsigned offline_phases;        /* 1 or 3 */
    bool free_mode;                 /* authorize every car on plug-in */
    uint32_t link_loss_deadline_ms; /* see lade_charging_link_loss_deadline_ms() */
    int32_t overdraw_tolerance_ma;  /* measured may exceed the offer by this much */
    uint32_t overdraw_time_ms;      /* ... for at most this long */
    uint32_t draw_threshold_ma;     /* a phase counts as used above this (session phases) */
    /* 128-bit random session id for each new session; required. */
    void (*new_session_id)(void *ud, uint8_t id[16]);
    void *session_id_ud;
};

/* keep-alive × 1.5 + grace: the moment after the last contact with the hub by which the
 * charger has fallen back to its offline current. The portal relies on it. */
uint32_t lade_charging_link_loss_deadline_ms(uint32_t keepalive_s, uint32_t grace_ms);

/* 32 A, 3 phases, offline 6 A on 1 phase, not free, deadline for 60 s keep-alive + 10 s grace,
 * over-draw tolerance 2 A for 10 s, phase threshold 1 A. new_session_id stays NULL. */
void lade_charging_config_defaults(struct lade_charging_config *cfg);
/* LADE_ERR_CONFIG for a value out of range or a missing new_session_id. */
LADE_MUST_CHECK lade_err lade_charging_config_check(const struct lade_charging_config *cfg);

struct lade_charging_inputs {
    enum lade_cp_state cp;
    int32_t cable_rating_ma; /* 0 = no valid cable: no offer */
    uint32_t faults;         /* enum lade_evse_fault bits */
    struct lade_meter_reading meter;
    bool link_up;              /* the shell believes the hub link is up */
    uint64_t hub_last_seen_ms; /* last time anything came from the hub (monotonic) */
    bool clock_trusted;        /* wall_s is NTP-synchronised */
};

enum lade_session_end_reason {
    LADE_SESSION_END_UNPLUGGED = 1,
    LADE_SESSION_END_DEAUTHORIZED = 2,
    LADE_SESSION_END_FAULT = 3,
    LADE_SESSION_END_OVERDRAW = 4,
};

struct lade_session_record {
    uint8_t id[16];
    int64_t start_wall_s, end_wall_s;
    bool clock_trusted; /* wall clock trusted at start and at end */
    uint64_t energy_wh; /* meter delta */
    int32_t peak_power_w;
    unsigned phases_used; /* most phases seen drawing > draw_threshold_ma at once */
    enum lade_session_end_reason end_reason;
};

enum lade_charging_event {
    LADE_CHG_EV_SESSION_STARTED = 1u << 0, /* out->session has id and start */
    LADE_CHG_EV_SESSION_ENDED = 1u << 1,   /* out->session is the finished record */
    LADE_CHG_EV_OVERDRAW = 1u << 2,        /* car drew more than offered: stopped */
    LADE_CHG_EV_FAULT = 1u << 3,           /* board fault: stopped */
    LADE_CHG_EV_FALLBACK = 1u << 4,        /* link-loss deadline passed: offline current */
    LADE_CHG_EV_STATE = 1u << 5,           /* state changed in this step */
};

struct lade_charging_outputs {
    enum lade_charging_state state;
    int32_t offer_ma;              /* 0 or >= 6000; drive with set_offer_ma */
    bool contactor_closed;         /* drive with set_contactor */
    unsigned phases;               /* 1 or 3 */
    enum lade_operation_mode mode; /* 710 */
    bool final_stop;               /* 718 */
    int32_t allocated_ma; /* 708: min(max, setpoint or fallback) before cable and 6 A rules */
    bool offline;         /* the offline fallback is in force */
    uint32_t events;      /* enum lade_charging_event bits raised by this step */
    struct lade_session_record session; /* for SESSION_STARTED / SESSION_ENDED */
    uint64_t next_step_ms;              /* call lade_charging_step again no later than this */
};

struct lade_charging {
    struct lade_charging_config cfg;
    enum lade_charging_state state;
    bool authorized;
    bool final_stop;
    /* cloud setpoint: the last one received, clamped; offline current until one arrives */
    int32_t setpoint_ma;
    unsigned setpoint_phases;
    bool offline; /* deadline passed; cleared by the next setpoint */
    int32_t offer_ma;
    bool contactor_closed;
    unsigned phases;
    uint64_t overdraw_since_ms;
    bool overdraw_active;
    bool in_session;
    struct lade_session_record session;
    uint64_t session_start_wh;
    bool pending_session_start; /* a session starts on the next step */
    uint32_t events;            /* raised by commands, delivered by the next step */
    bool started;
    uint64_t offer_since_ms; /* when the current offer began (0 → > 0) */
    bool car_asked;          /* the car asked (state C/D) since the offer began */
};

/* LADE_ERR_CONFIG when lade_charging_config_check() fails. */
LADE_MUST_CHECK lade_err lade_charging_init(struct lade_charging *cs,
                                            const struct lade_charging_config *cfg);

/* Advance: read inputs, decide, fill *out. Call at least every out->next_step_ms and whenever
 * an input changes. now_ms must not go backwards (a smaller value is treated as equal). */
void lade_charging_step(struct lade_charging *cs, uint64_t now_ms, int64_t wall_s,
                        const struct lade_charging_inputs *in, struct lade_charging_outputs *out);

/* Continues a session that was in progress when the agent stopped (crash, power cut, restart),
 * from its checkpoint: rec (id, start, clock_trusted, peak, phases), the meter reading at its
 * start and whether a final stop was active. Valid only before the first step; the first step
 * then either goes on charging (the car is still there: same session, no new id) or ends it
 * (unplugged meanwhile) with the meter delta as its energy. Errors: STATE (already stepped or in
 * a session), INVAL. */
LADE_MUST_CHECK lade_err lade_charging_resume(struct lade_charging *cs,
                                              const struct lade_session_record *rec,
                                              uint64_t start_wh, bool final_stop);

/* Commands (direct methods). Ids as in the portal for those that have one. */
enum lade_charging_cmd_id {
    LADE_CMD_STOP_CHARGING_FINAL = 506,
    LADE_CMD_RESUME_CHARGING = 507,
    LADE_CMD_DEAUTHORIZE_AND_STOP = 10001,
    LADE_CMD_AUTHORIZE = 20001,   /* lade: authorize the connected car */
    LADE_CMD_SET_CURRENT = 20002, /* lade: cloud setpoint per phase + phases */
};

struct lade_charging_cmd {
    enum lade_charging_cmd_id id;
    int32_t current_ma; /* SET_CURRENT: per phase; 0..5999 = pause */
    unsigned phases;    /* SET_CURRENT: 1 or 3, 0 = keep */
};

enum lade_cmd_status {
    LADE_CMD_OK = 0,
    LADE_CMD_CLAMPED = 1,       /* accepted, current lowered to the configured max */
    LADE_CMD_INVALID_STATE = 2, /* not valid now; nothing changed */
    LADE_CMD_OUT_OF_RANGE = 3,  /* bad argument; nothing changed */
    LADE_CMD_UNKNOWN = 4,       /* unknown command id; nothing changed */
};
const char *lade_cmd_status_name(enum lade_cmd_status s);

/* Apply a command; the effect shows in the outputs of the next lade_charging_step (the shell
 * steps right after). A command that is not OK/CLAMPED changes nothing. SET_CURRENT also counts
 * as contact with the hub only through the caller's hub_last_seen_ms. *applied_ma (may be NULL)
 * gets the setpoint kept for SET_CURRENT. Idempotent: Authorize when already authorized,
 * StopChargingFinal when already stopped, DeauthorizeAndStop when not authorized → OK. */
enum lade_cmd_status lade_charging_command(struct lade_charging *cs,
                                           const struct lade_charging_cmd *cmd,
                                           int32_t *applied_ma);

#endif
