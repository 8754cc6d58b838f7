/* lade — SNTP (RFC 4330, RFC 5905 §7/§14): a pure codec and the trusted-time client state
 * machine (src/proto/sntp). No I/O, no clock, no allocation: the shell (src/port/linux/timesync.c,
 * include/lade/timesync.h) owns the sockets, the timers, the clock and the floor file.
 * Policy, constants and reasons: docs/time.md.
 *
 * Time stamps: NTP 64-bit timestamps are 32 bits of seconds since 1900-01-01 (wrapping every
 * 136 years: era 1 starts in 2036) and 32 bits of fraction. Every calculation here works on
 * differences taken modulo 2^64, which are right while the two stamps are within 68 years of each
 * other (RFC 5905 §6), so nothing breaks in 2036. Wall time outside is milliseconds since the
 * Unix epoch (int64_t wall_ms); monotonic time is uint64_t mono_ms.
 */
#ifndef LADE_SNTP_H
#define LADE_SNTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"

#define LADE_SNTP_PACKET_LEN  48  /* header without extension fields or MAC */
#define LADE_SNTP_PORT        123 /* production server port (the shell lets tests change it) */
#define LADE_NTP_UNIX_DELTA_S 2208988800u /* 1900-01-01 → 1970-01-01 */

/* ---------------------------------------------------------------- timestamps */

/* Unix ms → NTP timestamp (era-wrapped). Negative (pre-1970) values are valid input. */
uint64_t lade_ntp_from_unix_ms(int64_t unix_ms);
/* NTP timestamp → Unix ms (rounded to nearest), choosing the era that puts it closest to
 * pivot_ms (within ±68 years; exactly half an era away is ambiguous). */
int64_t lade_ntp_to_unix_ms(uint64_t ts, int64_t pivot_ms);
/* a − b in microseconds (rounded to nearest), right when |a − b| < 68 years. */
int64_t lade_ntp_diff_us(uint64_t a, uint64_t b);
/* NTP short format (16.16 s, unsigned) → microseconds. */
uint64_t lade_ntp_short_to_us(uint32_t v);

/* ---------------------------------------------------------------- codec */

/* One NTP header, fields as on the wire (host byte order). */
struct lade_sntp_packet {
    uint8_t leap;    /* LI: 0 none, 1/2 leap second today, 3 unsynchronised (alarm) */
    uint8_t version; /* VN */
    uint8_t mode;    /* 3 client, 4 server */
    uint8_t stratum; /* 0 = Kiss-o'-Death, 1 primary, 2–15 secondary, 16 unsynchronised */
    int8_t poll;     /* log2 s */
    int8_t precision;
    uint32_t root_delay; /* NTP short format */
    uint32_t root_disp;  /* NTP short format */
    uint32_t refid;      /* stratum 0: the kiss code as 4 ASCII bytes, big-endian */
    uint64_t ref_ts, orig_ts, rx_ts, tx_ts;
};

/* Why a reply was not used, or why a server is not; stable values (diagnostics, R19). The
 * first group comes from lade_sntp_decode_reply, the second from the client machine. */
enum lade_sntp_result {
    LADE_SNTP_OK = 0,
    LADE_SNTP_KOD = 1,         /* Kiss-o'-Death (stratum 0) echoing our request; see kiss */
    LADE_SNTP_E_SHORT = 2,     /* fewer than 48 bytes */
    LADE_SNTP_E_MODE = 3,      /* not mode 4 (server) */
    LADE_SNTP_E_VERSION = 4,   /* version not 3 or 4 */
    LADE_SNTP_E_ORIGIN = 5,    /* originate ≠ our transmit: stale, duplicate or forged; ignored */
    LADE_SNTP_E_UNSYNC = 6,    /* leap indicator 3: the server is not synchronised */
    LADE_SNTP_E_STRATUM = 7,   /* stratum above 15 */
    LADE_SNTP_E_TX_ZERO = 8,   /* transmit timestamp zero */
    LADE_SNTP_E_ROOT = 9,      /* root delay or dispersion ≥ 16 s (or root distance too big) */
    LADE_SNTP_E_ORDER = 10,    /* server transmit before its receive, or a negative delay */
    LADE_SNTP_E_TIMEOUT = 11,  /* no answer within the reply timeout */
    LADE_SNTP_E_SEND = 12,     /* the request could not be sent */
    LADE_SNTP_E_REFUSED = 13,  /* ICMP port/host unreachable */
    LADE_SNTP_E_RATE = 14,     /* KoD RATE: that server's interval doubled */
    LADE_SNTP_E_DENY = 15,     /* KoD DENY or RSTR: that server is not asked again */
    LADE_SNTP_E_KISS = 16,     /* another kiss code: no sample this time */
    LADE_SNTP_E_FLOOR = 17,    /* the server's time is below the clock floor */
    LADE_SNTP_E_OUTVOTED = 18, /* disagrees with the servers that agree with each other */
    LADE_SNTP_E_UNCONFIRMED = 19, /* wants a step > 1 s that no second server confirms */
    LADE_SNTP_RESULT__COUNT
};
/* Static short name ("ok", "kod", "origin", ...); never NULL. */
const char *lade_sntp_result_name(enum lade_sntp_result r);

/* Bytes needed for a packet (always LADE_SNTP_PACKET_LEN; the two-step encode convention). */
size_t lade_sntp_packet_size(const struct lade_sntp_packet *p);
/* Serializes p (fields masked to their widths: LI 2 bits, VN/mode 3 bits) into buf.
 * Errors: LADE_ERR_INVAL (NULL), LADE_ERR_NOSPACE (cap < 48; nothing written). */
lade_err lade_sntp_encode(const struct lade_sntp_packet *p, uint8_t *buf, size_t cap,
                          size_t *len) LADE_MUST_CHECK;
/* A client request: LI 0, VN 4, mode 3, everything zero except the transmit timestamp, which is
 * tx_cookie — the caller's unpredictable 64-bit value (not its clock: the real send time stays
 * local, as chrony does, so the echo cannot be guessed and the packet does not reveal our clock).
 * Errors as lade_sntp_encode. */
lade_err lade_sntp_encode_request(uint64_t tx_cookie, uint8_t *buf, size_t cap,
                                  size_t *len) LADE_MUST_CHECK;
/* Reads the header fields of buf[0..len) without judging them (extension fields and MAC after
 * byte 48 are ignored). Errors: LADE_ERR_INVAL (NULL), LADE_ERR_PROTO (len < 48). */
lade_err lade_sntp_parse(const uint8_t *buf, size_t len,
                         struct lade_sntp_packet *out) LADE_MUST_CHECK;

/* A server reply, checked. */
struct lade_sntp_reply {
    struct lade_sntp_packet pkt;
    char kiss[5];           /* stratum 0: the kiss code (non-printable bytes as '?'), else "" */
    uint64_t root_delay_us; /* pkt.root_delay in µs */
    uint64_t root_disp_us;  /* pkt.root_disp in µs */
};
/* Decodes and checks a reply to the request whose transmit timestamp was tx_cookie, in this
 * order (RFC 4330 §5, RFC 5905 §8): length ≥ 48 (E_SHORT), mode 4 (E_MODE), version 3 or 4
 * (E_VERSION), originate == tx_cookie (E_ORIGIN — checked before the kiss code, so a forged KoD
 * is ignored), stratum 0 → LADE_SNTP_KOD with out->kiss set (the remaining checks do not apply),
 * LI ≠ 3 (E_UNSYNC), stratum ≤ 15 (E_STRATUM), transmit ≠ 0 (E_TX_ZERO), root delay and
 * dispersion < 16 s (E_ROOT), receive ≠ 0 and 0 ≤ transmit − receive < 16 s (E_ORDER). out (may be
 * NULL) is filled whenever len ≥ 48. Returns LADE_SNTP_OK or the first failed check. */
enum lade_sntp_result lade_sntp_decode_reply(const uint8_t *buf, size_t len, uint64_t tx_cookie,
                                             struct lade_sntp_reply *out);
/* Offset θ = ((t2 − t1) + (t3 − t4)) / 2 and round-trip delay δ = (t4 − t1) − (t3 − t2), in µs
 * (RFC 5905 §8), t1 = our send, t2 = server receive, t3 = server transmit, t4 = our receive. The
 * clock that read t1/t4 is θ behind the server. Era-safe while the stamps are within 68 years. */
void lade_sntp_offset_delay(uint64_t t1, uint64_t t2, uint64_t t3, uint64_t t4, int64_t *offset_us,
                            int64_t *delay_us);

/* ---------------------------------------------------------------- client state machine
 *
 * Decides when to ask which server, and when the clock may be trusted and moved. It does not
 * know addresses: servers are indices 0..n-1 of the shell's list (several addresses of the one
 * NTP host, SPEC R6; at most LADE_SNTP_MAX_SERVERS). Every input carries the time (struct
 * lade_sntp_now): the monotonic clock for timers and the reading of the clock being disciplined
 * (the "lade clock": the shell's system clock plus its own correction). Samples are kept as the
 * true time at a monotonic instant, so a step in between (ours or anyone's) does not spoil them.
 *
 * States (one function changes them, logging from → to):
 *   IDLE     not started
 *   BURST    untrusted; a burst of queries to every server is running
 *   BACKOFF  untrusted; the last burst gave no trusted answer; another burst later
 *   SYNCED   trusted; polls every 1–4 h (jittered); never below 64 s per server
 *   HOST     trusted without NTP (host mode: the developer machine's clock is right)
 * Trust is never lost while running: once SYNCED, failed polls only retry (the clock free-runs
 * with its last correction); a restart starts untrusted again. Details in docs/time.md.
 *
 * Outputs go through ops, called from inside the calls below (never re-enter the machine from
 * them, except the read-only getters).
 */

#define LADE_SNTP_MAX_SERVERS 4

enum lade_sntp_state {
    LADE_SNTP_IDLE = 0,
    LADE_SNTP_BURST,
    LADE_SNTP_BACKOFF,
    LADE_SNTP_SYNCED,
    LADE_SNTP_HOST,
};
const char *lade_sntp_state_name(enum lade_sntp_state s);

/* Policy knobs; lade_sntp_cfg_default gives the production values (docs/time.md). Tests may
 * shorten the intervals; production should not. */
struct lade_sntp_cfg {
    bool host_mode;      /* trust the clock as it is; send nothing, never step */
    int64_t floor_ms;    /* the clock never goes below this: max(build time, last saved time) */
    uint32_t quorum;     /* servers that must agree before a step > confirm_ms: 2 */
    uint32_t confirm_ms; /* offsets above this need the quorum: 1000 */
    uint32_t agree_ms; /* two servers agree when their offsets differ by ≤ this + (δ1+δ2)/2: 500 */
    uint32_t min_correction_ms;    /* smaller offsets are measured but not applied: 128 */
    uint32_t max_root_distance_ms; /* root delay/2 + root dispersion above this: unusable: 1500 */
    uint32_t burst_queries;        /* queries per server in a burst at most: 4 */
    uint32_t burst_good;           /* a server's burst ends after this many good replies: 2 */
    uint32_t burst_spacing_ms;     /* between two queries to one server in a burst: 2000 */
    uint32_t reply_timeout_ms;     /* a query is lost after this: 3000 */
    uint32_t min_poll_ms;          /* one server at most this often outside a burst: 64 s */
    uint32_t max_poll_ms;          /* RATE doubling stops here: 36 h */
    uint32_t poll_min_ms;          /* steady polls: uniform in [poll_min, poll_max]: 1 h */
    uint32_t poll_max_ms;          /* 4 h */
    uint32_t retry_min_ms;         /* after a failed burst/poll: back-off from 64 s */
    uint32_t retry_max_ms;         /* to 1024 s (full jitter) */
    uint32_t save_interval_ms;     /* trusted time saved to the floor every 5 min */
    uint32_t sample_max_age_ms;    /* a sample older than this is not used: 10 min */
};
void lade_sntp_cfg_default(struct lade_sntp_cfg *cfg);

struct lade_sntp_now {
    uint64_t mono_ms; /* monotonic ms */
    int64_t wall_ms;  /* the disciplined clock, ms since the Unix epoch */
};

struct lade_sntp_ops {
    /* Sends the request to server i (the shell: a fresh connected UDP socket). Anything but
     * LADE_OK counts as LADE_SNTP_E_SEND for that server. Required. */
    lade_err (*send)(void *ud, size_t server, const uint8_t *pkt, size_t len);
    /* 64 unpredictable bits (CSPRNG): request cookies and jitter. Required. */
    uint64_t (*random64)(void *ud);
    /* Move the disciplined clock by correction_ms (it then reads wall + correction). Required
     * unless host mode. */
    void (*step)(void *ud, int64_t correction_ms);
    /* Trusted time gained (true) or lost (false: only by lade_sntp_client_stop). Optional. */
    void (*trust)(void *ud, bool trusted);
    /* Save wall_ms (trusted time) as the clock floor now. Optional. */
    void (*save_floor)(void *ud, int64_t wall_ms);
};

/* Per-server diagnostics (R19). */
struct lade_sntp_server_diag {
    enum lade_sntp_result last_result; /* of the last exchange or decision touching it */
    char kiss[5];                      /* last kiss code received, "" if none */
    bool denied;                       /* KoD DENY/RSTR: not asked again */
    bool falseticker;                  /* last decision found it wrong (outvoted/unconfirmed) */
    bool have_sample;                  /* a good reply was received */
    int64_t offset_ms;                 /* last good sample, relative to the clock when read */
    uint32_t delay_ms;
    uint8_t stratum;
    uint64_t last_reply_mono_ms; /* 0 = never */
    uint64_t last_sent_mono_ms;  /* 0 = never */
    uint32_t interval_ms;        /* its minimum interval now (min_poll_ms, doubled by RATE) */
    uint32_t sent, good, errors;
};

/* Whole-client diagnostics (R19). */
struct lade_sntp_status {
    enum lade_sntp_state state;
    bool trusted;
    int server;                 /* index of the server the last sync used, -1 = none yet */
    int64_t offset_ms;          /* offset measured at the last sync (before its correction) */
    uint32_t delay_ms;          /* its round-trip delay */
    uint8_t stratum;            /* its stratum */
    uint32_t agreeing;          /* servers that agreed at the last sync */
    uint64_t last_sync_mono_ms; /* 0 = never */
    int64_t last_sync_wall_ms;  /* clock reading after the last sync's correction; 0 = never */
    int64_t last_step_ms;       /* last correction applied (0 = none) */
    uint32_t steps;             /* corrections applied, the floor step included */
    int64_t floor_ms;           /* the floor in force (cfg.floor_ms: it does not move) */
    int64_t last_save_wall_ms;  /* last time handed to save_floor (0 = none) */
    uint64_t next_mono_ms;      /* next thing the machine will do (UINT64_MAX: nothing) */
    enum lade_sntp_result last_result; /* of the last decision (OK, UNCONFIRMED, TIMEOUT...) */
};

/* Private state of one server. */
struct lade_sntp_srv {
    bool member;      /* part of the running burst/poll */
    bool round_over;  /* member that needs no more queries this round (KoD) */
    bool round_heard; /* a reply echoing our cookie came this round */
    bool pending;     /* a query awaits its reply */
    bool denied;
    uint8_t round_sent, round_good;
    uint8_t rate_level; /* RATE KoDs received: interval = min_poll << level (capped) */
    uint64_t cookie;
    int64_t sent_wall_ms;
    uint64_t sent_mono_ms, timeout_mono_ms, next_send_mono_ms;
    bool ever_sent;
    bool have;              /* sample valid */
    int64_t sample_base_us; /* true time − mono, µs */
    uint64_t sample_mono_ms;
    uint32_t sample_delay_us;
    uint8_t sample_stratum;
    struct lade_sntp_server_diag diag;
};

/* Caller-allocated; fields private. */
struct lade_sntp_client {
    struct lade_sntp_cfg cfg;
    struct lade_sntp_ops ops;
    void *ud;
    enum lade_sntp_state state;
    bool round_active;
    bool round_burst; /* the running round is a burst (several queries per server) */
    size_t n;
    struct lade_sntp_srv srv[LADE_SNTP_MAX_SERVERS];
    uint64_t round_at_ms; /* next burst (BACKOFF) or poll (SYNCED) */
    uint64_t save_at_ms;  /* SYNCED: next floor save */
    uint32_t failures;    /* consecutive failed bursts/polls (back-off) */
    struct lade_sntp_status st;
};

/* Validates cfg (LADE_ERR_CONFIG: quorum 0, zero intervals, poll_min > poll_max, retry_min >
 * retry_max, burst_good > burst_queries or either 0 or > 255, min_poll > max_poll) and ops
 * (LADE_ERR_INVAL: send/random64 missing, or step missing outside host mode). IDLE. Copies both. */
lade_err lade_sntp_client_init(struct lade_sntp_client *c, const struct lade_sntp_cfg *cfg,
                               const struct lade_sntp_ops *ops, void *ud) LADE_MUST_CHECK;
/* Starts with n servers (n ≥ 1 unless host mode; more than LADE_SNTP_MAX_SERVERS are not used):
 * if the clock reads below the floor it is stepped up to it first (still untrusted); then HOST
 * (trust callback) in host mode, else BURST. From any state: a second call drops the old
 * servers' state; a trusted client stays SYNCED and polls the new servers soon.
 * Errors: LADE_ERR_INVAL (n == 0 outside host mode). */
lade_err lade_sntp_client_start(struct lade_sntp_client *c, size_t n,
                                struct lade_sntp_now now) LADE_MUST_CHECK;
/* Replaces the server list (a new resolution of the NTP host), keeping what is known of servers
 * that stay: prev[i] is the old index of new server i, or -1 for a new one (prev NULL: all new).
 * DENY, RATE, samples and diagnostics follow their address this way. Queries outstanding are
 * dropped; untrusted, a new burst starts now; trusted, the servers are polled soon (never more
 * often than their interval). When IDLE this is lade_sntp_client_start. Errors as start. */
lade_err lade_sntp_client_set_servers(struct lade_sntp_client *c, size_t n, const int *prev,
                                      struct lade_sntp_now now) LADE_MUST_CHECK;
/* Back to IDLE (trust callback false if it was trusted). */
void lade_sntp_client_stop(struct lade_sntp_client *c);

/* A datagram from server i (the shell's socket is connected to it). Returns what it was:
 * LADE_SNTP_OK (sample taken), E_ORIGIN (no query outstanding, or not its echo: ignored, the
 * query stays outstanding), a KoD result (E_RATE, E_DENY, E_KISS) or another check failure. */
enum lade_sntp_result lade_sntp_client_on_reply(struct lade_sntp_client *c, size_t server,
                                                const uint8_t *buf, size_t len,
                                                struct lade_sntp_now now);
/* The shell's socket for server i reported an error (E_REFUSED for ICMP unreachable, E_SEND
 * otherwise): the outstanding query is given up. Ignored when no query is outstanding. */
void lade_sntp_client_on_error(struct lade_sntp_client *c, size_t server, enum lade_sntp_result why,
                               struct lade_sntp_now now);
/* Runs timers: time-outs, due queries (ops.send), decisions (ops.step/trust), floor saves. */
void lade_sntp_client_tick(struct lade_sntp_client *c, struct lade_sntp_now now);
/* Monotonic ms when tick must run next (UINT64_MAX: nothing scheduled). */
uint64_t lade_sntp_client_next_ms(const struct lade_sntp_client *c);

enum lade_sntp_state lade_sntp_client_state(const struct lade_sntp_client *c);
bool lade_sntp_client_trusted(const struct lade_sntp_client *c);
/* 1 while a query to server i is outstanding (the shell may close idle sockets). */
bool lade_sntp_client_pending(const struct lade_sntp_client *c, size_t server);
size_t lade_sntp_client_servers(const struct lade_sntp_client *c);
void lade_sntp_client_status(const struct lade_sntp_client *c, struct lade_sntp_status *out);
/* LADE_ERR_NOT_FOUND for i ≥ servers(). */
lade_err lade_sntp_client_server_diag(const struct lade_sntp_client *c, size_t i,
                                      struct lade_sntp_server_diag *out) LADE_MUST_CHECK;

#endif
