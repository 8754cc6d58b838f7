/* LTE-M driver: an AT-command modem on a serial device (include/lade/modem.h,
 * docs/wifi-lte.md).
 *
 * One command in flight at a time (V.250: a command line must be answered by a final result
 * code before the next one), from a small queue; every line the modem sends is classified and
 * information lines are applied by their prefix whether they answer our command or arrive
 * unsolicited (+CEREG is both), so a URC interleaved with a response is never lost or mistaken
 * for the final result.
 *
 * Escalation when the modem stops answering (SPEC R11): a command without a final result code
 * within its timeout counts as a timeout; `timeouts_to_reset` in a row → reset (AT+CFUN=1,1, or
 * CFUN=0/1); a reset that is not answered either → close the device, wait (doubling, as a USB
 * modem re-enumerates after a reboot), reopen and start the init sequence again. The bearer
 * manager sees the link down throughout and goes on to its own watchdog (restart) if this never
 * ends.
 */
#include "lade/modem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "lade/log.h"
#include "lade/loop.h"

#define MOD      "modem"
#define QMAX     16
#define CMD_MAX  160
#define READ_MAX 512

enum cmd_id {
    C_SYNC,       /* AT */
    C_ECHO_OFF,   /* ATE0 */
    C_CMEE,       /* AT+CMEE=1: numeric +CME ERROR codes */
    C_CPIN,       /* AT+CPIN? (diagnostics: SIM missing or locked) */
    C_CEREG_SET,  /* AT+CEREG=2: URCs with location */
    C_CGDCONT,    /* AT+CGDCONT=<cid>,"IP","<apn>" */
    C_CEREG_Q,    /* AT+CEREG? */
    C_CESQ,       /* AT+CESQ */
    C_CSQ,        /* AT+CSQ */
    C_CGACT_Q,    /* AT+CGACT? */
    C_CGACT_SET,  /* AT+CGACT=1,<cid> */
    C_CGPADDR,    /* AT+CGPADDR=<cid> */
    C_COPS_Q,     /* AT+COPS? */
    C_RESET_BOOT, /* AT+CFUN=1,1 */
    C_RESET_OFF,  /* AT+CFUN=0 */
    C_RESET_ON,   /* AT+CFUN=1 */
};

struct cmd {
    enum cmd_id id;
    char text[CMD_MAX];
    uint32_t timeout_ms;
};

enum res { RES_OK, RES_ERROR, RES_TIMEOUT };

struct lade_modem {
    struct lade_loop *loop;
    struct lade_modem_config cfg;
    char device[256];
    char apn[104];
    char pdp_type[8];
    speed_t speed;
    lade_modem_link_cb cb;
    void *ud;

    int fd;
    enum lade_modem_state state;
    struct lade_at_lines lines;
    char out[CMD_MAX + 2]; /* the command being written, with its CR */
    size_t out_len, out_off;

    struct cmd q[QMAX]; /* q[0] is in flight when inflight */
    size_t qlen;
    bool inflight;
    struct lade_timer cmd_timer, poll_timer, wait_timer, attach_timer;
    uint32_t timeouts_in_row;
    uint32_t backoff_ms;        /* device missing / reset unanswered */
    uint32_t attach_backoff_ms; /* failed AT+CGACT=1 */

    /* What the modem told us. */
    int32_t stat;
    bool pdp_active;
    bool cgact_seen; /* a +CGACT line for our cid since AT+CGACT? was sent */
    bool cesq_unsupported;
    bool apn_set;
    int16_t csq_dbm, rsrp_dbm, rsrq_db;
    struct lade_bearer_link_state reported;
    bool reported_valid;
    struct lade_modem_info info;
};

static const char *const state_names[] = {"off",    "wait",   "init",     "search",
                                          "attach", "online", "resetting"};

const char *lade_modem_state_name(enum lade_modem_state s)
{
    return (unsigned)s < sizeof state_names / sizeof state_names[0] ? state_names[s] : "?";
}

static void poll_now(struct lade_modem *m);
static void open_device(struct lade_modem *m);
static void send_next(struct lade_modem *m);

static bool registering(const struct lade_modem *m)
{
    return m->state == LADE_MODEM_SEARCH || m->state == LADE_MODEM_ATTACH ||
           m->state == LADE_MODEM_ONLINE;
}

static void report(struct lade_modem *m)
{
    struct lade_bearer_link_state ls;
    bool talking = registering(m) || m->state == LADE_MODEM_INIT;
    lade_at_to_link(registering(m) ? m->stat : -1, m->state == LADE_MODEM_ONLINE && m->pdp_active,
                    talking ? m->rsrp_dbm : LADE_BEARER_SIGNAL_UNKNOWN,
                    talking ? m->csq_dbm : LADE_BEARER_SIGNAL_UNKNOWN, &ls);
    m->info.link = ls;
    if (m->reported_valid && ls.up == m->reported.up && ls.signal == m->reported.signal)
        return;
    if (!m->reported_valid || ls.up != m->reported.up)
        LOG_I(MOD, "link %s (%s, %s, %d dBm)", ls.up ? "up" : "down",
              lade_modem_state_name(m->state), lade_at_stat_name(m->stat), ls.signal);
    m->reported = ls;
    m->reported_valid = true;
    m->cb(m->ud, &ls);
}

/* The one place the driver's state changes (DESIGN.md: one set_state per machine). */
static void set_state(struct lade_modem *m, enum lade_modem_state to, const char *why)
{
    if (m->state == to)
        return;
    LOG_I(MOD, "%s -> %s (%s)", lade_modem_state_name(m->state), lade_modem_state_name(to), why);
    m->state = to;
    m->info.state = to;
    if (to != LADE_MODEM_ONLINE && to != LADE_MODEM_ATTACH)
        lade_timer_cancel(m->loop, &m->attach_timer);
    if (!registering(m))
        lade_timer_cancel(m->loop, &m->poll_timer);
}

static void forget_network(struct lade_modem *m)
{
    m->stat = -1;
    m->pdp_active = false;
    m->csq_dbm = m->rsrp_dbm = m->rsrq_db = LADE_BEARER_SIGNAL_UNKNOWN;
    m->info.stat = -1;
    m->info.act = -1;
    m->info.tac = m->info.ci = 0;
    m->info.pdp_active = false;
    m->info.csq_dbm = m->info.rsrp_dbm = m->info.rsrq_db = LADE_BEARER_SIGNAL_UNKNOWN;
    m->info.address[0] = '\0';
    m->info.oper[0] = '\0';
}

static void set_error(struct lade_modem *m, const char *what, const char *why)
{
    /* Bounded on purpose: a diagnostic line, not a log (a long device path is cut). */
    snprintf(m->info.last_error, sizeof m->info.last_error, "%.48s: %.72s", what, why);
}

static void clear_queue(struct lade_modem *m)
{
    lade_timer_cancel(m->loop, &m->cmd_timer);
    m->qlen = 0;
    m->inflight = false;
    m->out_len = m->out_off = 0;
}

static void close_device(struct lade_modem *m)
{
    clear_queue(m);
    if (m->fd >= 0) {
        lade_loop_unwatch(m->loop, m->fd);
        close(m->fd);
        m->fd = -1;
    }
    lade_at_lines_init(&m->lines);
}

static void arm(struct lade_modem *m, struct lade_timer *t, uint32_t ms)
{
    if (lade_timer_arm_in(m->loop, t, ms) != LADE_OK)
        LOG_E(MOD, "cannot arm a timer");
}

/* Close and come back later: the device vanished, or the modem does not answer even a reset. */
static void wait_and_reopen(struct lade_modem *m, uint32_t wait_ms, const char *why)
{
    close_device(m);
    forget_network(m);
    set_state(m, LADE_MODEM_WAIT, why);
    report(m);
    arm(m, &m->wait_timer, wait_ms);
}

static void backoff_reopen(struct lade_modem *m, const char *why)
{
    uint32_t wait = m->backoff_ms;
    m->backoff_ms =
        m->backoff_ms > m->cfg.retry_max_ms / 2 ? m->cfg.retry_max_ms : m->backoff_ms * 2;
    wait_and_reopen(m, wait, why);
}

static bool queued(const struct lade_modem *m, enum cmd_id id)
{
    for (size_t i = 0; i < m->qlen; i++)
        if (m->q[i].id == id)
            return true;
    return false;
}

static void enqueue(struct lade_modem *m, enum cmd_id id)
{
    if (m->fd < 0 || queued(m, id))
        return;
    if (m->qlen == QMAX) {
        LOG_W(MOD, "command queue full");
        return;
    }
    struct cmd *c = &m->q[m->qlen];
    c->id = id;
    c->timeout_ms = m->cfg.cmd_timeout_ms;
    int cid = m->cfg.cid;
    switch (id) {
    case C_SYNC:
        snprintf(c->text, sizeof c->text, "AT");
        break;
    case C_ECHO_OFF:
        snprintf(c->text, sizeof c->text, "ATE0");
        break;
    case C_CMEE:
        snprintf(c->text, sizeof c->text, "AT+CMEE=1");
        break;
    case C_CPIN:
        snprintf(c->text, sizeof c->text, "AT+CPIN?");
        break;
    case C_CEREG_SET:
        snprintf(c->text, sizeof c->text, "AT+CEREG=2");
        break;
    case C_CGDCONT: {
        size_t len;
        if (lade_at_format_cgdcont(c->text, sizeof c->text, cid, m->pdp_type, m->apn, &len) !=
            LADE_OK)
            return; /* checked in lade_modem_new */
        break;
    }
    case C_CEREG_Q:
        snprintf(c->text, sizeof c->text, "AT+CEREG?");
        break;
    case C_CESQ:
        snprintf(c->text, sizeof c->text, "AT+CESQ");
        break;
    case C_CSQ:
        snprintf(c->text, sizeof c->text, "AT+CSQ");
        break;
    case C_CGACT_Q:
        snprintf(c->text, sizeof c->text, "AT+CGACT?");
        break;
    case C_CGACT_SET:
        snprintf(c->text, sizeof c->text, "AT+CGACT=1,%d", cid);
        c->timeout_ms = m->cfg.long_timeout_ms;
        break;
    case C_CGPADDR:
        snprintf(c->text, sizeof c->text, "AT+CGPADDR=%d", cid);
        break;
    case C_COPS_Q:
        snprintf(c->text, sizeof c->text, "AT+COPS?");
        break;
    case C_RESET_BOOT:
        snprintf(c->text, sizeof c->text, "AT+CFUN=1,1");
        c->timeout_ms = m->cfg.long_timeout_ms;
        break;
    case C_RESET_OFF:
        snprintf(c->text, sizeof c->text, "AT+CFUN=0");
        c->timeout_ms = m->cfg.long_timeout_ms;
        break;
    case C_RESET_ON:
        snprintf(c->text, sizeof c->text, "AT+CFUN=1");
        c->timeout_ms = m->cfg.long_timeout_ms;
        break;
    }
    m->qlen++;
    send_next(m);
}

static void device_lost(struct lade_modem *m, const char *why)
{
    LOG_W(MOD, "%s: %s", m->device, why);
    set_error(m, m->device, why);
    m->info.reopens++;
    backoff_reopen(m, why);
}

/* Writes what is left of the current command; watches for writability when the tty is full. */
static void flush_out(struct lade_modem *m)
{
    while (m->out_off < m->out_len) {
        ssize_t w = write(m->fd, m->out + m->out_off, m->out_len - m->out_off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                if (lade_loop_modify(m->loop, m->fd, LADE_IO_READ | LADE_IO_WRITE) != LADE_OK)
                    device_lost(m, "cannot watch the device");
                return;
            }
            char why[64];
            snprintf(why, sizeof why, "write: %s", strerror(errno));
            device_lost(m, why);
            return;
        }
        m->out_off += (size_t)w;
    }
    m->out_len = m->out_off = 0;
    if (lade_loop_modify(m->loop, m->fd, LADE_IO_READ) != LADE_OK)
        device_lost(m, "cannot watch the device");
}

static void send_next(struct lade_modem *m)
{
    if (m->inflight || m->qlen == 0 || m->fd < 0)
        return;
    struct cmd *c = &m->q[0];
    size_t n = strlen(c->text);
    memcpy(m->out, c->text, n);
    m->out[n] = '\r'; /* V.250: S3, the command line terminator */
    m->out_len = n + 1;
    m->out_off = 0;
    m->inflight = true;
    if (c->id == C_CGACT_Q)
        m->cgact_seen = false; /* +CGACT lines from now on answer this query */
    LOG_T(MOD, "-> %s", c->text);
    arm(m, &m->cmd_timer, c->timeout_ms);
    flush_out(m);
}

/* Registration or PDP changed: which state follows from the facts. */
static void evaluate(struct lade_modem *m)
{
    if (!registering(m)) {
        report(m);
        return;
    }
    if (!lade_at_registered(m->stat)) {
        m->pdp_active = false;
        m->info.pdp_active = false;
        m->info.address[0] = '\0';
        set_state(m, LADE_MODEM_SEARCH, lade_at_stat_name(m->stat));
    } else if (!m->pdp_active) {
        if (m->state != LADE_MODEM_ATTACH) {
            set_state(m, LADE_MODEM_ATTACH, "registered, no PDP context");
            m->attach_backoff_ms = m->cfg.retry_ms;
            enqueue(m, C_CGACT_Q); /* many modems activate the default bearer by themselves */
        }
    } else {
        set_state(m, LADE_MODEM_ONLINE, "registered, PDP context active");
        m->attach_backoff_ms = m->cfg.retry_ms;
        if (!m->info.address[0])
            enqueue(m, C_CGPADDR);
        if (!m->info.oper[0])
            enqueue(m, C_COPS_Q);
    }
    report(m);
}

static void copy_view(char *dst, size_t cap, struct lade_str v)
{
    size_t n = v.n < cap - 1 ? v.n : cap - 1;
    memcpy(dst, v.p, n);
    dst[n] = '\0';
}

static void start_init(struct lade_modem *m, const char *why)
{
    clear_queue(m);
    forget_network(m);
    m->apn_set = false;
    set_state(m, LADE_MODEM_INIT, why);
    report(m);
    enqueue(m, C_SYNC);
}

/* Information lines and URCs, by prefix, whatever command is in flight. */
static void on_info(struct lade_modem *m, const struct lade_at_line *l)
{
    struct lade_str p = l->prefix;
    if (lade_str_eq_c(p, "+CEREG")) {
        struct lade_at_cereg r;
        if (lade_at_parse_cereg(l->rest, &r) != LADE_OK) {
            LOG_D(MOD, "bad +CEREG: %.*s", (int)l->rest.n, l->rest.p);
            return;
        }
        if (r.stat != m->stat)
            LOG_I(MOD, "registration: %s", lade_at_stat_name(r.stat));
        m->stat = r.stat;
        m->info.stat = r.stat;
        if (r.has_loc) {
            m->info.tac = r.tac;
            m->info.ci = r.ci;
        }
        if (r.act >= 0)
            m->info.act = r.act;
        if (!lade_at_registered(r.stat))
            m->info.oper[0] = '\0';
        evaluate(m);
    } else if (lade_str_eq_c(p, "+CSQ")) {
        struct lade_at_csq r;
        if (lade_at_parse_csq(l->rest, &r) == LADE_OK) {
            m->csq_dbm = m->info.csq_dbm = r.dbm;
            report(m);
        }
    } else if (lade_str_eq_c(p, "+CESQ")) {
        struct lade_at_cesq r;
        if (lade_at_parse_cesq(l->rest, &r) == LADE_OK) {
            m->rsrp_dbm = m->info.rsrp_dbm = r.rsrp_dbm;
            m->rsrq_db = m->info.rsrq_db = r.rsrq_db;
            report(m);
        }
    } else if (lade_str_eq_c(p, "+CGACT")) {
        struct lade_at_cgact r;
        if (lade_at_parse_cgact(l->rest, &r) == LADE_OK && r.cid == m->cfg.cid) {
            m->cgact_seen = true;
            m->pdp_active = m->info.pdp_active = r.state == 1;
        }
    } else if (lade_str_eq_c(p, "+CGPADDR")) {
        struct lade_at_cgpaddr r;
        if (lade_at_parse_cgpaddr(l->rest, &r) == LADE_OK && r.cid == m->cfg.cid)
            copy_view(m->info.address, sizeof m->info.address, r.addr1);
    } else if (lade_str_eq_c(p, "+COPS")) {
        struct lade_at_cops r;
        if (lade_at_parse_cops(l->rest, &r) == LADE_OK)
            copy_view(m->info.oper, sizeof m->info.oper, r.oper);
    } else if (lade_str_eq_c(p, "+CPIN")) {
        copy_view(m->info.sim, sizeof m->info.sim, l->rest);
        if (!lade_str_eq_c(l->rest, "READY"))
            LOG_W(MOD, "SIM: %.*s", (int)l->rest.n, l->rest.p);
    } else if (lade_str_eq_c(p, "+CGEV")) {
        /* 27.007 §10.1.19: the network or the modem deactivated a context or detached. */
        struct lade_str r = l->rest;
        bool gone = false;
        for (size_t i = 0; i + 5 <= r.n && !gone; i++)
            gone =
                memcmp(r.p + i, "DEACT", 5) == 0 || (i + 6 <= r.n && !memcmp(r.p + i, "DETACH", 6));
        if (gone && m->pdp_active) {
            LOG_W(MOD, "PDP context lost: %.*s", (int)r.n, r.p);
            m->pdp_active = m->info.pdp_active = false;
            m->info.address[0] = '\0';
            evaluate(m);
        }
    } else if (p.n == 0 && (lade_str_eq_c(l->rest, "RDY") || lade_str_eq_c(l->rest, "^SYSSTART"))) {
        /* The modem (re)booted: everything we set up is gone. */
        if (registering(m))
            start_init(m, "the modem restarted");
    } else {
        LOG_T(MOD, "ignored: %.*s", (int)l->rest.n, l->rest.p);
    }
}

static void init_done(struct lade_modem *m)
{
    set_state(m, LADE_MODEM_SEARCH, "init done");
    poll_now(m);
}

static bool is_reset(enum cmd_id id)
{
    return id == C_RESET_BOOT || id == C_RESET_OFF || id == C_RESET_ON;
}

static void start_reset(struct lade_modem *m, const char *why)
{
    LOG_W(MOD, "reset (%s)", why);
    m->info.resets++;
    /* The command in flight (if any) keeps its place: its final result code is still coming,
     * and taken for the reset's it would look like an OK to AT+CFUN. */
    m->qlen = m->inflight ? 1 : 0;
    forget_network(m);
    m->timeouts_in_row = 0;
    set_state(m, LADE_MODEM_RESETTING, why);
    report(m);
    enqueue(m, m->cfg.reset_mode == LADE_MODEM_RESET_RADIO ? C_RESET_OFF : C_RESET_BOOT);
}

static void complete(struct lade_modem *m, const struct cmd *c, enum res res,
                     const struct lade_at_line *l)
{
    if (m->state == LADE_MODEM_RESETTING && !is_reset(c->id))
        return; /* answered after the reset was decided: nothing to do with it */
    if (res != RES_OK) {
        char what[48];
        if (res == RES_TIMEOUT)
            snprintf(what, sizeof what, "no answer");
        else
            snprintf(what, sizeof what, "%.*s%s%.*s", (int)l->prefix.n, l->prefix.p,
                     l->prefix.n ? ": " : "", (int)(l->rest.n > 24 ? 24 : l->rest.n), l->rest.p);
        set_error(m, c->text, what);
        if (l && l->kind == LADE_AT_CME_ERROR)
            m->info.last_cme = l->err;
        LOG_W(MOD, "%s", m->info.last_error);
    }
    switch (c->id) {
    case C_SYNC:
        if (res == RES_TIMEOUT) {
            enqueue(m, C_SYNC);
            break;
        }
        m->backoff_ms = m->cfg.retry_ms;
        enqueue(m, C_ECHO_OFF);
        enqueue(m, C_CMEE);
        enqueue(m, C_CPIN);
        enqueue(m, C_CEREG_SET);
        if (m->apn[0])
            enqueue(m, C_CGDCONT);
        break;
    case C_ECHO_OFF:
    case C_CMEE:
        break;
    case C_CPIN:
        if (res == RES_TIMEOUT)
            break;
        if (res != RES_OK) {
            /* +CME ERROR: 10 "SIM not inserted", 13 "SIM failure", ... */
            snprintf(m->info.sim, sizeof m->info.sim, "%.*s", (int)l->rest.n, l->rest.p);
            if (l->kind == LADE_AT_CME_ERROR && l->err >= 0)
                snprintf(m->info.sim, sizeof m->info.sim, "CME ERROR %d", (int)l->err);
        }
        break;
    case C_CEREG_SET:
        if (!m->apn[0])
            init_done(m);
        break;
    case C_CGDCONT:
        m->apn_set = res == RES_OK;
        if (m->state == LADE_MODEM_INIT)
            init_done(m);
        break;
    case C_CEREG_Q:
    case C_CSQ:
    case C_CGPADDR:
    case C_COPS_Q:
        break;
    case C_CESQ:
        if (res == RES_ERROR && !m->cesq_unsupported) {
            LOG_I(MOD, "no +CESQ: the signal is the +CSQ figure");
            m->cesq_unsupported = true;
        }
        break;
    case C_CGACT_Q:
        if (res != RES_OK)
            break;
        if (!m->cgact_seen)
            m->pdp_active = m->info.pdp_active = false;
        evaluate(m);
        if (m->state == LADE_MODEM_ATTACH && !m->pdp_active &&
            !lade_timer_armed(&m->attach_timer) && !queued(m, C_CGACT_SET)) {
            if (m->apn[0] && !m->apn_set)
                enqueue(m, C_CGDCONT);
            enqueue(m, C_CGACT_SET);
        }
        break;
    case C_CGACT_SET:
        if (res == RES_OK) {
            enqueue(m, C_CGACT_Q);
        } else if (m->state == LADE_MODEM_ATTACH) {
            arm(m, &m->attach_timer, m->attach_backoff_ms);
            m->attach_backoff_ms = m->attach_backoff_ms > m->cfg.retry_max_ms / 2
                                       ? m->cfg.retry_max_ms
                                       : m->attach_backoff_ms * 2;
        }
        break;
    case C_RESET_BOOT:
        if (res == RES_ERROR) {
            LOG_W(MOD, "AT+CFUN=1,1 refused; CFUN=0 then CFUN=1");
            enqueue(m, C_RESET_OFF);
        } else {
            /* OK: the modem reboots (a USB modem vanishes and comes back) — or it did not
             * answer at all: close, wait, reopen. */
            if (res == RES_OK)
                wait_and_reopen(m, m->cfg.boot_wait_ms, "rebooting");
            else
                backoff_reopen(m, "reset not answered");
        }
        break;
    case C_RESET_OFF:
        if (res == RES_TIMEOUT)
            backoff_reopen(m, "reset not answered");
        else
            enqueue(m, C_RESET_ON);
        break;
    case C_RESET_ON:
        if (res == RES_TIMEOUT)
            backoff_reopen(m, "reset not answered");
        else
            start_init(m, "radio reset");
        break;
    }
}

/* Pops the command in flight. */
static struct cmd pop(struct lade_modem *m)
{
    struct cmd c = m->q[0];
    memmove(&m->q[0], &m->q[1], (m->qlen - 1) * sizeof m->q[0]);
    m->qlen--;
    m->inflight = false;
    lade_timer_cancel(m->loop, &m->cmd_timer);
    return c;
}

static void on_line(struct lade_modem *m, struct lade_str line)
{
    struct lade_at_line l;
    lade_at_classify(line, m->inflight ? m->q[0].text : NULL, &l);
    LOG_T(MOD, "<- %.*s", (int)line.n, line.p);
    if (l.kind == LADE_AT_ECHO || l.kind == LADE_AT_NOISE)
        return;
    if (!lade_at_is_final(l.kind)) {
        on_info(m, &l);
        return;
    }
    if (!m->inflight) {
        LOG_D(MOD, "final result with no command in flight: %.*s", (int)line.n, line.p);
        return;
    }
    if (m->out_off < m->out_len) {
        /* Still writing the command: this answers an older one (after a timeout). */
        return;
    }
    m->timeouts_in_row = 0;
    struct cmd c = pop(m);
    complete(m, &c, l.kind == LADE_AT_OK ? RES_OK : RES_ERROR, &l);
    send_next(m);
}

static void on_io(struct lade_loop *loop, int fd, uint32_t events, void *ud)
{
    (void)loop;
    struct lade_modem *m = ud;
    if ((events & LADE_IO_WRITE) && m->out_off < m->out_len) {
        flush_out(m);
        if (m->fd != fd)
            return;
    }
    if (events & (LADE_IO_READ | LADE_IO_HUP | LADE_IO_ERROR)) {
        char buf[READ_MAX];
        for (int round = 0; round < 16 && m->fd == fd; round++) {
            ssize_t r = read(fd, buf, sizeof buf);
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                break;
            if (r <= 0) {
                char why[64];
                snprintf(why, sizeof why, "read: %s", r == 0 ? "end of file" : strerror(errno));
                device_lost(m, why);
                return;
            }
            const char *p = buf;
            size_t n = (size_t)r;
            /* The fd check: a line may close the device (reset) or reopen it. */
            while (m->fd == fd) {
                struct lade_str line;
                lade_err err = lade_at_lines_next(&m->lines, &p, &n, &line);
                if (err == LADE_ERR_AGAIN)
                    break;
                if (err == LADE_ERR_TOO_BIG) {
                    LOG_D(MOD, "over-long line dropped");
                    continue;
                }
                on_line(m, line);
            }
        }
    }
}

static void on_cmd_timeout(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_modem *m = ud;
    if (!m->inflight)
        return;
    struct cmd c = pop(m);
    m->info.timeouts++;
    m->timeouts_in_row++;
    /* Drop whatever half-arrived: a late answer must not complete the next command. */
    if (m->fd >= 0)
        tcflush(m->fd, TCIFLUSH);
    lade_at_lines_init(&m->lines);
    m->out_len = m->out_off = 0;
    if (m->state != LADE_MODEM_RESETTING && !is_reset(c.id) &&
        m->timeouts_in_row >= m->cfg.timeouts_to_reset) {
        set_error(m, c.text, "no answer");
        start_reset(m, "the modem does not answer");
        return;
    }
    complete(m, &c, RES_TIMEOUT, NULL);
    send_next(m);
}

static void poll_now(struct lade_modem *m)
{
    if (!registering(m))
        return;
    enqueue(m, C_CEREG_Q);
    if (!m->cesq_unsupported)
        enqueue(m, C_CESQ);
    enqueue(m, C_CSQ);
    if (m->state == LADE_MODEM_SEARCH && strcmp(m->info.sim, "READY") != 0)
        enqueue(m, C_CPIN); /* a SIM inserted or unlocked meanwhile */
    if (lade_at_registered(m->stat))
        enqueue(m, C_CGACT_Q);
    arm(m, &m->poll_timer, m->cfg.poll_ms);
}

static void on_poll(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    poll_now(ud);
}

static void on_wait(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_modem *m = ud;
    if (m->state == LADE_MODEM_WAIT)
        open_device(m);
}

static void on_attach_retry(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_modem *m = ud;
    if (m->state == LADE_MODEM_ATTACH)
        enqueue(m, C_CGACT_Q); /* finds it inactive and activates */
}

static void open_device(struct lade_modem *m)
{
    int fd = open(m->device, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        char why[64];
        snprintf(why, sizeof why, "open: %s", strerror(errno));
        set_error(m, m->device, why);
        LOG_D(MOD, "%s: %s", m->device, why);
        backoff_reopen(m, why);
        return;
    }
    struct termios tio;
    if (tcgetattr(fd, &tio) != 0) {
        close(fd);
        set_error(m, m->device, "not a terminal");
        backoff_reopen(m, "not a terminal");
        return;
    }
    /* Raw: no echo, no line editing, no CR/LF translation, no flow control, 8N1. VMIN=1 with
     * O_NONBLOCK: an empty read is EAGAIN and 0 means a hang-up (with VMIN=0 an empty read
     * returns 0 too, indistinguishable from the device going away). */
    cfmakeraw(&tio);
    tio.c_cflag |= CLOCAL | CREAD;
    tio.c_cflag &= ~(tcflag_t)CRTSCTS;
    tio.c_cc[VMIN] = 1;
    tio.c_cc[VTIME] = 0;
    cfsetispeed(&tio, m->speed);
    cfsetospeed(&tio, m->speed);
    if (tcsetattr(fd, TCSANOW, &tio) != 0) {
        close(fd);
        set_error(m, m->device, "cannot set raw mode");
        backoff_reopen(m, "cannot set raw mode");
        return;
    }
    tcflush(fd, TCIOFLUSH);
    if (lade_loop_watch(m->loop, fd, LADE_IO_READ, on_io, m) != LADE_OK) {
        close(fd);
        backoff_reopen(m, "cannot watch the device");
        return;
    }
    m->fd = fd;
    lade_at_lines_init(&m->lines);
    m->timeouts_in_row = 0;
    start_init(m, "device open");
}

void lade_modem_config_default(struct lade_modem_config *c)
{
    memset(c, 0, sizeof *c);
    c->baud = 115200;
    c->pdp_type = "IP";
    c->cid = 1;
    c->cmd_timeout_ms = 5000;
    c->long_timeout_ms = 150000;
    c->poll_ms = 10000;
    c->boot_wait_ms = 10000;
    c->retry_ms = 5000;
    c->retry_max_ms = 300000;
    c->timeouts_to_reset = 3;
    c->reset_mode = LADE_MODEM_RESET_REBOOT;
}

static bool baud_speed(uint32_t baud, speed_t *out)
{
    static const struct {
        uint32_t baud;
        speed_t speed;
    } table[] = {{9600, B9600},     {19200, B19200},   {38400, B38400},   {57600, B57600},
                 {115200, B115200}, {230400, B230400}, {460800, B460800}, {921600, B921600}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (table[i].baud == baud) {
            *out = table[i].speed;
            return true;
        }
    }
    return false;
}

lade_err lade_modem_new(struct lade_loop *loop, const struct lade_modem_config *cfg,
                        lade_modem_link_cb cb, void *ud, struct lade_modem **out)
{
    if (!out)
        return LADE_ERR_INVAL;
    *out = NULL;
    if (!loop || !cfg || !cb || !cfg->device || !cfg->device[0])
        return LADE_ERR_INVAL;
    const char *apn = cfg->apn ? cfg->apn : "";
    const char *type = cfg->pdp_type ? cfg->pdp_type : "IP";
    char probe[CMD_MAX];
    size_t len;
    speed_t speed;
    if (strlen(cfg->device) >= sizeof((struct lade_modem *)0)->device ||
        lade_at_format_cgdcont(probe, sizeof probe, cfg->cid, type, apn, &len) != LADE_OK ||
        !baud_speed(cfg->baud, &speed) || cfg->cmd_timeout_ms == 0 || cfg->long_timeout_ms == 0 ||
        cfg->poll_ms == 0 || cfg->retry_ms == 0 || cfg->retry_ms > cfg->retry_max_ms ||
        cfg->timeouts_to_reset == 0 || cfg->reset_mode > LADE_MODEM_RESET_RADIO)
        return LADE_ERR_CONFIG;
    struct lade_modem *m = calloc(1, sizeof *m);
    if (!m)
        return LADE_ERR_NOMEM;
    m->loop = loop;
    m->cfg = *cfg;
    snprintf(m->device, sizeof m->device, "%s", cfg->device);
    snprintf(m->apn, sizeof m->apn, "%s", apn);
    snprintf(m->pdp_type, sizeof m->pdp_type, "%s", type);
    m->cfg.device = m->device;
    m->cfg.apn = m->apn;
    m->cfg.pdp_type = m->pdp_type;
    m->speed = speed;
    m->cb = cb;
    m->ud = ud;
    m->fd = -1;
    m->backoff_ms = cfg->retry_ms;
    m->attach_backoff_ms = cfg->retry_ms;
    lade_timer_init(&m->cmd_timer, on_cmd_timeout, m);
    lade_timer_init(&m->poll_timer, on_poll, m);
    lade_timer_init(&m->wait_timer, on_wait, m);
    lade_timer_init(&m->attach_timer, on_attach_retry, m);
    lade_at_lines_init(&m->lines);
    forget_network(m);
    m->info.last_cme = -1;
    *out = m;
    return LADE_OK;
}

void lade_modem_free(struct lade_modem *m)
{
    if (!m)
        return;
    lade_timer_cancel(m->loop, &m->poll_timer);
    lade_timer_cancel(m->loop, &m->wait_timer);
    lade_timer_cancel(m->loop, &m->attach_timer);
    close_device(m);
    free(m);
}

lade_err lade_modem_set_enabled(struct lade_modem *m, bool enabled)
{
    if (!m)
        return LADE_ERR_INVAL;
    if (enabled == (m->state != LADE_MODEM_OFF))
        return LADE_OK;
    if (enabled) {
        m->backoff_ms = m->cfg.retry_ms;
        set_state(m, LADE_MODEM_WAIT, "enabled");
        open_device(m);
        return LADE_OK;
    }
    lade_timer_cancel(m->loop, &m->wait_timer);
    close_device(m);
    forget_network(m);
    set_state(m, LADE_MODEM_OFF, "disabled");
    report(m);
    return LADE_OK;
}

lade_err lade_modem_reset(struct lade_modem *m)
{
    if (!m)
        return LADE_ERR_INVAL;
    if (m->state == LADE_MODEM_OFF)
        return LADE_ERR_STATE;
    if (m->state == LADE_MODEM_RESETTING || m->state == LADE_MODEM_WAIT)
        return LADE_OK; /* already starting over */
    start_reset(m, "requested");
    return LADE_OK;
}

void lade_modem_info(const struct lade_modem *m, struct lade_modem_info *out)
{
    *out = m->info;
    out->state = m->state;
}
