/* lade — LTE-M through a modem's AT commands (3GPP TS 27.007 / V.250; SPEC R1, R11, R19;
 * docs/wifi-lte.md).
 *
 * Two halves:
 *   - a pure parser (src/proto/at/): splits the modem's byte stream into lines (bounded length),
 *     classifies each line (final result code, +CME/+CMS ERROR, information or unsolicited line,
 *     echo of our command), splits parameter lists, and reads the responses lade uses: +CEREG,
 *     +CSQ, +CESQ, +CGACT, +CGPADDR, +COPS. It also formats the APN command. No I/O, no clock,
 *     no malloc; strings returned are views into the caller's line;
 *   - a driver (src/port/linux/modem.c): the serial device (or a pty) in raw mode, non-blocking
 *     on a lade_loop, a command queue with a timeout per command, the init sequence, polling of
 *     registration and signal, PDP context activation, resets, and escalation when the modem
 *     stops answering. It reports the link through a callback.
 */
#ifndef LADE_MODEM_H
#define LADE_MODEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/bearer.h"
#include "lade/codec.h"
#include "lade/err.h"

/* ---- pure parser ------------------------------------------------------------------------ */

/* Longest line kept (responses lade reads are < 100 bytes; a +COPS=? list can be long). */
#define LADE_AT_LINE_MAX 512

/* Line splitter: bytes in, complete lines out. A line ends at CR or LF (an echoed command ends
 * with CR only, responses with CR LF); empty lines are skipped. */
struct lade_at_lines {
    char buf[LADE_AT_LINE_MAX];
    size_t len;
    bool overflow; /* the current line is longer than LADE_AT_LINE_MAX: dropped to its end */
};
void lade_at_lines_init(struct lade_at_lines *lb);
/* Consumes bytes from *data (*n of them) until a line is complete. Returns LADE_OK with *line (a
 * view into lb, valid until the next call), LADE_ERR_AGAIN when the input is used up (*n == 0), or
 * LADE_ERR_TOO_BIG once for each line that was too long (its bytes are dropped). A NUL byte
 * ends nothing and is kept in the line (the classifier treats such a line as noise). */
lade_err lade_at_lines_next(struct lade_at_lines *lb, const char **data, size_t *n,
                            struct lade_str *line) LADE_MUST_CHECK;

enum lade_at_kind {
    LADE_AT_INFO = 0,    /* anything else: "+CSQ: 20,99", "RDY", a bare value */
    LADE_AT_OK,          /* final: OK */
    LADE_AT_ERROR,       /* final: ERROR */
    LADE_AT_CME_ERROR,   /* final: +CME ERROR: <n or text> */
    LADE_AT_CMS_ERROR,   /* final: +CMS ERROR: <n or text> */
    LADE_AT_FINAL_OTHER, /* final: NO CARRIER, BUSY, NO ANSWER, NO DIALTONE, ABORTED */
    LADE_AT_ECHO,        /* the command in flight, echoed back (echo on) */
    LADE_AT_NOISE,       /* control characters or NUL (line noise, a modem rebooting) */
};

struct lade_at_line {
    enum lade_at_kind kind;
    struct lade_str prefix; /* "+CSQ" for "+CSQ: 20,99" (up to the ':'), else empty */
    struct lade_str rest;   /* after ':' and spaces; the whole line when there is no prefix */
    int32_t err;            /* CME/CMS numeric code; -1 when verbose text (then in rest) */
};
/* Classifies one line. echo_of: the command in flight without its CR (NULL: none); a line equal
 * to it (ASCII case ignored) is ECHO. Never fails; a NULL or empty line is NOISE. */
void lade_at_classify(struct lade_str line, const char *echo_of, struct lade_at_line *out);
/* True for the final result codes (OK, ERROR, CME, CMS, FINAL_OTHER). */
bool lade_at_is_final(enum lade_at_kind k);

/* One parameter of a response: "20", "\"IP\"", or empty (",,"). */
struct lade_at_param {
    struct lade_str text; /* without the quotes when quoted */
    bool quoted;
    bool empty;  /* nothing between the commas */
    bool is_int; /* unquoted decimal 0..2^31-1 (value set) */
    int32_t value;
};
#define LADE_AT_PARAMS_MAX 16
/* Splits rest at commas outside quotes. Spaces around parameters are skipped. Errors:
 * LADE_ERR_PROTO (unterminated quote, text after a closing quote), LADE_ERR_TOO_BIG (more than
 * cap parameters). */
lade_err lade_at_params(struct lade_str rest, struct lade_at_param *out, size_t cap,
                        size_t *count) LADE_MUST_CHECK;

/* +CEREG (EPS registration): the read response "+CEREG: <n>,<stat>[,<tac>,<ci>[,<AcT>...]]" or
 * the unsolicited "+CEREG: <stat>[,<tac>,<ci>[,<AcT>...]]" — told apart by shape: a response's
 * second parameter is an unquoted number, a URC's is a quoted TAC or absent/empty. */
struct lade_at_cereg {
    int32_t n;    /* the read response's <n>; -1 for a URC */
    int32_t stat; /* 0..10 */
    bool has_loc;
    uint32_t tac; /* two-byte tracking area code (hex string) */
    uint32_t ci;  /* 28-bit cell id (hex string) */
    int32_t act;  /* access technology (7 E-UTRAN, 9 E-UTRAN NB-S1, ...); -1 absent */
};
lade_err lade_at_parse_cereg(struct lade_str rest, struct lade_at_cereg *out) LADE_MUST_CHECK;
/* stat 1 (home), 5 (roaming), 9 and 10 ("CSFB not preferred", home/roaming): registered. */
bool lade_at_registered(int32_t stat);
const char *lade_at_stat_name(int32_t stat);

/* +CSQ: <rssi>,<ber>. rssi 0..31 or 99 (unknown), ber 0..7 or 99. */
struct lade_at_csq {
    int32_t rssi, ber;
    int16_t dbm; /* -113 + 2·rssi; LADE_BEARER_SIGNAL_UNKNOWN for 99 */
};
lade_err lade_at_parse_csq(struct lade_str rest, struct lade_at_csq *out) LADE_MUST_CHECK;
int16_t lade_at_csq_dbm(int32_t rssi);

/* +CESQ: <rxlev>,<ber>,<rscp>,<ecno>,<rsrq>,<rsrp>. For LTE: rsrq 0..34 (255 unknown),
 * rsrp 0..97 (255 unknown). */
struct lade_at_cesq {
    int32_t rxlev, ber, rscp, ecno, rsrq, rsrp;
    int16_t rsrp_dbm; /* rsrp − 141 (0 → −141: below −140 dBm); UNKNOWN for 255 */
    int16_t rsrq_db;  /* rsrq/2 − 20 rounded down; UNKNOWN for 255 */
};
lade_err lade_at_parse_cesq(struct lade_str rest, struct lade_at_cesq *out) LADE_MUST_CHECK;
int16_t lade_at_rsrp_dbm(int32_t rsrp);

/* +CGACT: <cid>,<state> (one line per context). */
struct lade_at_cgact {
    int32_t cid;   /* 0..255 */
    int32_t state; /* 0 inactive, 1 active */
};
lade_err lade_at_parse_cgact(struct lade_str rest, struct lade_at_cgact *out) LADE_MUST_CHECK;

/* +CGPADDR: <cid>[,<addr1>[,<addr2>]] (addresses as printed, quotes removed; may be empty). */
struct lade_at_cgpaddr {
    int32_t cid;
    struct lade_str addr1, addr2;
};
lade_err lade_at_parse_cgpaddr(struct lade_str rest, struct lade_at_cgpaddr *out) LADE_MUST_CHECK;

/* +COPS: <mode>[,<format>,<oper>[,<AcT>]]. */
struct lade_at_cops {
    int32_t mode;         /* 0 automatic, 1 manual, 2 deregister, 3 set format, 4 man./auto */
    int32_t format;       /* -1 when absent */
    struct lade_str oper; /* empty when absent */
    int32_t act;          /* -1 when absent */
};
lade_err lade_at_parse_cops(struct lade_str rest, struct lade_at_cops *out) LADE_MUST_CHECK;

/* AT+CGDCONT=<cid>,"<pdp_type>","<apn>" into buf (NUL-terminated, no CR); *len = its length.
 * The APN must be 0..100 characters of letters, digits, '-', '.', '_' and the PDP type one of
 * IP, IPV6, IPV4V6, Non-IP. Errors: LADE_ERR_INVAL (cid outside 1..15, a bad APN or type),
 * LADE_ERR_NOSPACE. */
lade_err lade_at_format_cgdcont(char *buf, size_t cap, int cid, const char *pdp_type,
                                const char *apn, size_t *len) LADE_MUST_CHECK;

/* The bearer manager's view of LTE-M: up when registered (lade_at_registered) and the PDP
 * context is active; signal = RSRP when known, else the +CSQ figure. */
void lade_at_to_link(int32_t stat, bool pdp_active, int16_t rsrp_dbm, int16_t csq_dbm,
                     struct lade_bearer_link_state *out);

/* ---- driver (src/port/linux/modem.c) ------------------------------------------------------- */

struct lade_loop;
struct lade_modem;

enum lade_modem_reset_mode {
    LADE_MODEM_RESET_REBOOT = 0, /* AT+CFUN=1,1 (falls back to RADIO if the modem refuses) */
    LADE_MODEM_RESET_RADIO,      /* AT+CFUN=0, then AT+CFUN=1 */
};

struct lade_modem_config {
    const char *device;         /* /dev/ttyUSB2, /dev/ttyACM0, or a pty's slave path */
    uint32_t baud;              /* [115200] */
    const char *apn;            /* APN for context `cid`; NULL or "": keep the modem's own */
    const char *pdp_type;       /* ["IP"] */
    int cid;                    /* [1] */
    uint32_t cmd_timeout_ms;    /* [5000] most commands */
    uint32_t long_timeout_ms;   /* [150000] AT+CGACT, AT+CFUN (27.007 allows minutes) */
    uint32_t poll_ms;           /* [10000] registration + signal + PDP poll */
    uint32_t boot_wait_ms;      /* [10000] after a reboot before talking to the modem again */
    uint32_t retry_ms;          /* [5000] device missing / failed attach: first retry, doubling */
    uint32_t retry_max_ms;      /* [300000] ... up to this */
    uint32_t timeouts_to_reset; /* [3] commands without an answer in a row before a reset */
    enum lade_modem_reset_mode reset_mode;
};
void lade_modem_config_default(struct lade_modem_config *c);

enum lade_modem_state {
    LADE_MODEM_OFF = 0,   /* disabled */
    LADE_MODEM_WAIT,      /* waiting to (re)open the device or for a reboot to finish */
    LADE_MODEM_INIT,      /* init: AT, ATE0, AT+CMEE=1, AT+CPIN?, AT+CEREG=2, AT+CGDCONT */
    LADE_MODEM_SEARCH,    /* polling until registered */
    LADE_MODEM_ATTACH,    /* registered; activating the PDP context */
    LADE_MODEM_ONLINE,    /* registered and PDP active: the link is up */
    LADE_MODEM_RESETTING, /* AT+CFUN reset sent */
};
const char *lade_modem_state_name(enum lade_modem_state s);

typedef void (*lade_modem_link_cb)(void *ud, const struct lade_bearer_link_state *ls);

/* Diagnostics (R19). */
struct lade_modem_info {
    enum lade_modem_state state;
    struct lade_bearer_link_state link; /* as last reported */
    int32_t stat;                       /* +CEREG stat; -1 unknown */
    int32_t act;
    uint32_t tac, ci;
    int16_t csq_dbm, rsrp_dbm, rsrq_db;
    bool pdp_active;
    char address[48];     /* +CGPADDR */
    char oper[40];        /* operator name (+COPS) */
    char sim[32];         /* +CPIN: "READY", "SIM PIN", ... or "CME ERROR 10" (no SIM) */
    int32_t last_cme;     /* last +CME ERROR code; -1 none */
    char last_error[128]; /* last failure, e.g. "AT+CGACT=1,1: +CME ERROR: 30" */
    uint32_t timeouts;    /* commands that got no answer */
    uint32_t resets;      /* resets sent (asked for or escalated) */
    uint32_t reopens;     /* device reopened */
};

/* Creates the driver, off. Copies the configuration (strings too). Errors: LADE_ERR_INVAL
 * (NULL loop/cb/device), LADE_ERR_CONFIG (bad APN/PDP type/cid, zero timeouts, unsupported baud),
 * LADE_ERR_NOMEM. */
lade_err lade_modem_new(struct lade_loop *loop, const struct lade_modem_config *cfg,
                        lade_modem_link_cb cb, void *ud, struct lade_modem **out) LADE_MUST_CHECK;
/* Closes the device, cancels timers, frees. No callback is made. NULL is ignored. */
void lade_modem_free(struct lade_modem *m);
/* On: open the device, run the init sequence, register, activate the context, poll. Off: close
 * the device and report the link down once (the modem is left as it is). Idempotent. */
lade_err lade_modem_set_enabled(struct lade_modem *m, bool enabled) LADE_MUST_CHECK;
/* The bearer manager's RESET: AT+CFUN=1,1 (or CFUN=0/1, see reset_mode), then init again.
 * LADE_ERR_STATE when off. */
lade_err lade_modem_reset(struct lade_modem *m) LADE_MUST_CHECK;
void lade_modem_info(const struct lade_modem *m, struct lade_modem_info *out);

#endif
