/* lade — trusted time on the event loop (src/port/linux/timesync.c): the shell around the pure
 * SNTP client (include/lade/sntp.h). SPEC R6 (time from the factory's NTP host before the cloud
 * link), R11 (retries by itself), R19 (diagnostics). Policy and reasons: docs/time.md.
 *
 * What it does: one non-blocking UDP socket per outstanding query (connect()ed to the server, so
 * only its datagrams arrive and ICMP errors are reported; a fresh socket, so a fresh random source
 * port, per query), a timer from the machine's deadlines, the clock floor file (read at start,
 * written atomically when the machine says so), and the "lade clock".
 *
 * The lade clock: lade_timesync_wall_ms() = the system clock (CLOCK_REALTIME) + a correction
 * kept here. timesync never sets the operating-system clock itself. On every step it calls
 * cfg.set_clock(ud, wall_ms) (when set): a charger that owns its OS clock may step it there
 * (clock_settime) and return true — the correction then goes back to 0, because the system
 * clock itself is right; returning false (tests, host mode, lade-sim with thousands of chargers
 * in one process, any process without CAP_SYS_TIME) leaves the OS clock alone and the correction
 * lives here. Either way every consumer of wall time (SAS tokens, certificate checks, records)
 * should read lade_timesync_wall_ms()/_wall_s(), and refresh what it derived from time (the SAS
 * token) after a step.
 *
 * Nothing here blocks: sends and receives are non-blocking, resolution is the static hosts file
 * (the DNS stub replaces it through lade_timesync_set_servers), and the floor file is a few bytes
 * written every few minutes. Single-threaded, on the loop's thread. Callbacks must not call
 * lade_timesync_free.
 */
#ifndef LADE_TIMESYNC_H
#define LADE_TIMESYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"
#include "lade/loop.h"
#include "lade/resolve.h"
#include "lade/sntp.h"

struct lade_timesync;

struct lade_timesync_cfg {
    /* The NTP host's addresses (copied; at most LADE_SNTP_MAX_SERVERS used; a port of 0 takes
     * `port`). When n_servers is 0, ntp_host is resolved with lade_resolve_static(ntp_host,
     * hosts_file) at start, and again before every retry burst while time is untrusted. */
    const struct lade_sockaddr *servers;
    size_t n_servers;
    const char *ntp_host;   /* copied; the factory setting (SPEC R6) */
    const char *hosts_file; /* copied; NULL: literal addresses only */
    uint16_t port;          /* 0 → LADE_SNTP_PORT (123); tests use an unprivileged one */
    /* Clock floor: max(build_time_s, the time saved in floor_file). NULL file: build time only. */
    const char *floor_file; /* copied */
    int64_t build_time_s;   /* 0 → lade_timesync_build_time_s() */
    /* Host mode (a developer machine: its own clock is trusted as it is; nothing is sent). */
    bool host_mode;
    /* Added to the system clock at start: the simulator and tests play a charger whose clock is
     * wrong without touching the real one. 0 in production. */
    int64_t start_offset_ms;
    /* Timing and trust policy; NULL → lade_sntp_cfg_default. host_mode and floor_ms in it are
     * overridden by the fields above. */
    const struct lade_sntp_cfg *policy;

    /* Called on every step of the lade clock (the floor step at start included) with the new
     * reading. Return true if you stepped the OS clock to wall_ms; false to leave it alone.
     * Optional (NULL: never touch the OS clock). */
    bool (*set_clock)(void *ud, int64_t wall_ms);
    /* Trust gained (true) or lost (false, only by stop/free). Optional. Start the cloud link
     * (TLS checks, SAS tokens) only once this said true (SPEC R6). */
    void (*on_trust)(void *ud, bool trusted);
    /* The client's state changed (a burst ended without trust, back-off, ...), for
     * diagnostics (R19). Optional. */
    void (*on_state)(void *ud);
    void *ud;
};

/* Creates the context (reads the floor file; a missing or unreadable file counts as no floor,
 * logged). Starts nothing. Errors: LADE_ERR_INVAL (NULL), LADE_ERR_CONFIG (policy invalid),
 * LADE_ERR_NOMEM. */
lade_err lade_timesync_new(struct lade_loop *loop, const struct lade_timesync_cfg *cfg,
                           struct lade_timesync **out) LADE_MUST_CHECK;
/* Starts: steps the lade clock up to the floor if it reads below it (untrusted still), then host
 * mode (trusted now, on_trust called from here) or the first burst. With ntp_host and nothing
 * resolvable yet it keeps trying every minute. Errors: LADE_ERR_STATE (already started). */
lade_err lade_timesync_start(struct lade_timesync *ts) LADE_MUST_CHECK;
/* Replaces the server list (e.g. from the DNS stub). What is known of an address that stays
 * (DENY, RATE, samples) is kept. n == 0 is LADE_ERR_INVAL outside host mode. */
lade_err lade_timesync_set_servers(struct lade_timesync *ts, const struct lade_sockaddr *servers,
                                   size_t n) LADE_MUST_CHECK;
/* Stops, closes the sockets, frees. NULL is ignored. Not from a callback. */
/* The network changed (an address came or changed): while time is untrusted, a new burst starts
 * now on fresh sockets instead of after the retry back-off (a charger that boots before its
 * DHCP lease would otherwise wait a minute or more). No-op when trusted, idle or in host mode. */
void lade_timesync_network_changed(struct lade_timesync *ts);
void lade_timesync_free(struct lade_timesync *ts);

/* True once time is trusted (SYNCED or host mode). */
bool lade_timesync_trusted(const struct lade_timesync *ts);
/* The lade clock: system clock + correction, ms / s since the Unix epoch. */
int64_t lade_timesync_wall_ms(const struct lade_timesync *ts);
int64_t lade_timesync_wall_s(const struct lade_timesync *ts);
/* The correction kept here (lade clock − system clock), ms. */
int64_t lade_timesync_offset_ms(const struct lade_timesync *ts);

/* Diagnostics (R19). */
void lade_timesync_status(const struct lade_timesync *ts, struct lade_sntp_status *out);
size_t lade_timesync_servers(const struct lade_timesync *ts);
/* Server i's address (with port) and counters. Either out pointer may be NULL.
 * LADE_ERR_NOT_FOUND for i ≥ lade_timesync_servers(). */
lade_err lade_timesync_server(const struct lade_timesync *ts, size_t i, struct lade_sockaddr *addr,
                              struct lade_sntp_server_diag *diag) LADE_MUST_CHECK;
/* One line for a status report, e.g. "synced trusted server 192.0.2.1:123 offset 3 ms delay
 * 12 ms stratum 2 synced 120 s ago; 192.0.2.2:123 ok; 192.0.2.3:123 kod-deny".
 * LADE_ERR_NOSPACE when it does not fit (nothing truncated silently: buf holds "" then). */
lade_err lade_timesync_describe(const struct lade_timesync *ts, char *buf,
                                size_t cap) LADE_MUST_CHECK;

/* The firmware's build time: LADE_BUILD_TIME_S if the build defines it (reproducible builds:
 * SOURCE_DATE_EPOCH), else midnight UTC of the day this file was compiled. */
int64_t lade_timesync_build_time_s(void);
/* The floor file: one line "<unix seconds>\n". read: LADE_ERR_NOT_FOUND (missing), LADE_ERR_IO,
 * LADE_ERR_INVAL (not a number in 0..2^40). write: temp file + fsync + rename + directory fsync,
 * so a power cut leaves the old or the new value; LADE_ERR_IO on failure. */
lade_err lade_timesync_read_floor(const char *path, int64_t *wall_s) LADE_MUST_CHECK;
lade_err lade_timesync_write_floor(const char *path, int64_t wall_s) LADE_MUST_CHECK;

#endif
