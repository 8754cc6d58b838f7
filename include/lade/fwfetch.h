/* lade — firmware download: HTTPS from the firmware hosts, on the event loop, with resume
 * (issue 6 "Download", SPEC R3/R9/R11/U4; docs/firmware.md "Download").
 *
 * Two parts, like every lade protocol:
 *
 *   1. A pure core (src/proto/fwfetch/, no I/O, no clock, no malloc): the check of a response's
 *      head (status, Content-Type, Content-Length, Content-Range, ETag), the redirect check,
 *      the plan that decides which host is asked next, when, and when to give up (retry, byte
 *      and time budgets), and the codec of the partial-state file.
 *
 *   2. The Linux shell (src/port/linux/fwfetch.c): libcurl's multi interface driven by a
 *      lade_loop (CURLMOPT_SOCKETFUNCTION/TIMERFUNCTION; no thread, nothing blocks except the
 *      writes and fsyncs of the image and state files), names resolved by the charger's DNS stub
 *      (or a static map) and handed to curl with CURLOPT_RESOLVE, the image streamed into a sink
 *      (the updater's inactive slot) or a file, SHA-256 computed while streaming, the state
 *      persisted so that a kill -9 or power cut resumes with Range + If-Range.
 *
 * Security policy of the shell (why: docs/firmware.md "Download"):
 *   - https only, TLS 1.2 at least, for the first request and every redirect;
 *   - the server chain is verified against ca_file only (never the system store: CURLOPT_CAPATH
 *     is cleared, no CA fallback), and the host name against the certificate;
 *   - no proxy, whatever the environment says; no content decoding; HTTP/1.1;
 *   - redirects are followed by the shell (never by curl), at most max_redirects, and only to
 *     https URLs on one of the configured hosts at the configured port;
 *   - a body is taken only from 200 (whole image) or 206 (exactly the requested range of an
 *     image of the expected length, same ETag); text/html is refused; a Content-Length other
 *     than the image length (or range length) is refused before any body byte is read; a body
 *     that runs past expected_len is cut at expected_len + 1 bytes and refused;
 *   - certificate time: curl checks validity against the operating-system clock. The updater
 *     starts a download only once the charger has trusted time (SPEC R6, docs/time.md); the
 *     image itself is trusted by its signed manifest, which involves no dates.
 */
#ifndef LADE_FWFETCH_H
#define LADE_FWFETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"

/* ---- limits and defaults (0 in a config field means the default) ---- */

#define LADE_FWFETCH_MAX_HOSTS     8
#define LADE_FWFETCH_HOST_MAX      253 /* RFC 1035 §2.3.4, without the trailing dot */
#define LADE_FWFETCH_PATH_MAX      512
#define LADE_FWFETCH_ETAG_MAX      128 /* with the quotes */
#define LADE_FWFETCH_SHA256_LEN    32
#define LADE_FWFETCH_REASON_MAX    256  /* one failure's text */
#define LADE_FWFETCH_SUMMARY_MAX   1024 /* the final text: summary + each host's last reason */
#define LADE_FWFETCH_STATE_MAX     1024 /* encoded partial-state file */
#define LADE_FWFETCH_PORT          443
#define LADE_FWFETCH_PERSIST_KIB   256     /* state saved (after the data is synced) this often */
#define LADE_FWFETCH_BYTES_FACTOR  3       /* byte budget = length x factor + slack */
#define LADE_FWFETCH_BYTES_SLACK   65536u  /* (room for error pages and short restarts) */
#define LADE_FWFETCH_TOTAL_MS      3600000 /* time budget of one fetch: 1 h */
#define LADE_FWFETCH_CONNECT_MS    15000   /* TCP + TLS handshake of one attempt */
#define LADE_FWFETCH_LOW_SPEED_BPS 256     /* an attempt slower than this ...      */
#define LADE_FWFETCH_LOW_SPEED_S   60      /* ... for this long is abandoned (slow retrieval) */
#define LADE_FWFETCH_RETRIES       3       /* failed attempts per host before it is dropped */
#define LADE_FWFETCH_MAX_ATTEMPTS  12      /* failed attempts over all hosts */
#define LADE_FWFETCH_RETRY_MS      2000    /* first back-off after a round of hosts failed */
#define LADE_FWFETCH_RETRY_MAX_MS  60000   /* back-off cap */
#define LADE_FWFETCH_MAX_REDIRECTS 3
#define LADE_FWFETCH_MIN_PROGRESS  65536u  /* an attempt that brought this much is not a failure */
#define LADE_FWFETCH_REHASH_CHUNK  262144u /* bytes re-hashed per loop round on resume */

/* ---- 1. pure core: the head of a response ---- */

/* What a response's head says; strings are NUL-terminated header values (NULL: absent). */
struct lade_fwfetch_head {
    long status;
    bool has_length; /* Content-Length present (and a strict decimal) */
    uint64_t length;
    const char *content_type;
    const char *content_range;
    const char *content_encoding;
    const char *etag;
};

enum lade_fwfetch_verdict_kind {
    LADE_FWFETCH_V_BODY = 0,      /* take the body; it starts at verdict.offset */
    LADE_FWFETCH_V_REDIRECT = 1,  /* 3xx: the shell checks Location (lade_fwfetch_redirect_check) */
    LADE_FWFETCH_V_RETRY = 2,     /* transient (5xx, 408, 429): ask again later */
    LADE_FWFETCH_V_HOST_FAIL = 3, /* this host cannot serve the image: do not ask it again */
};

struct lade_fwfetch_verdict {
    enum lade_fwfetch_verdict_kind kind;
    lade_err err;    /* LADE_OK for BODY and REDIRECT */
    uint64_t offset; /* BODY: where the body starts (0 for a 200) */
    bool restart;    /* the partial data is worthless: start again from 0 (BODY from 0 after a
                        range request, or a 416) — reason says why */
    char reason[LADE_FWFETCH_REASON_MAX]; /* "" for a plain BODY/REDIRECT */
};

/* Decides what to do with a response to a request for the image from `offset` (0: the whole
 * image; > 0: "Range: bytes=offset-" with "If-Range: if_range" when if_range is not NULL).
 *   200: BODY from 0 — refused (HOST_FAIL) for text/html (PROTO, "server returned an HTML
 *        page"), a Content-Encoding other than identity (PROTO), a Content-Length above
 *        expected_len (TOO_BIG) or below it (PROTO). After a range request: restart, and the
 *        reason tells whether the ETag changed ("image changed on the server") or the server
 *        ignored the range.
 *   206: BODY from offset — only after a range request, with a Content-Range of exactly
 *        "bytes offset-(expected_len-1)/expected_len", a Content-Length (if any) of that range,
 *        and the ETag sent (if the server names one); anything else is HOST_FAIL PROTO.
 *   301/302/303/307/308: REDIRECT.  404/410: HOST_FAIL NOT_FOUND.  401/403: HOST_FAIL AUTH.
 *   416: HOST_FAIL PROTO with restart.  408/429/5xx: RETRY.  Anything else: HOST_FAIL PROTO. */
void lade_fwfetch_check_head(const struct lade_fwfetch_head *h, uint64_t offset,
                             const char *if_range, uint64_t expected_len,
                             struct lade_fwfetch_verdict *v);

/* Parses "bytes F-L/C" (RFC 9110 §14.4; C may not be "*"). Errors: LADE_ERR_INVAL. */
lade_err lade_fwfetch_parse_content_range(const char *s, uint64_t *first, uint64_t *last,
                                          uint64_t *complete) LADE_MUST_CHECK;

/* A strong entity tag: "..." of printable ASCII without '"' (RFC 9110 §8.8.3), at most
 * LADE_FWFETCH_ETAG_MAX characters. Weak tags (W/"...") are not: If-Range needs a strong one. */
bool lade_fwfetch_etag_strong(const char *etag);

/* A host name as accepted in the config: 1..253 characters of letters, digits, '-' and '.',
 * labels of 1..63, no scheme, no port, no trailing dot. */
bool lade_fwfetch_host_valid(const char *host);

/* Checks a redirect target (its parts, as a URL parser split them; port NULL when the URL has
 * none) against the allowed hosts: scheme "https", no user info, a host equal (ASCII case
 * ignored) to one of hosts[0..n), and the port (or 443 when absent) equal to `port`.
 * LADE_OK with *index set; LADE_ERR_PROTO with the reason otherwise. */
lade_err lade_fwfetch_redirect_check(const char *scheme, const char *user, const char *host,
                                     const char *port_text, const char *const *hosts, size_t n,
                                     uint16_t port, size_t *index, char *reason,
                                     size_t cap) LADE_MUST_CHECK;

/* ---- 1. pure core: the plan (which host next, when, and when to give up) ---- */

struct lade_fwfetch_limits {
    uint32_t retries_per_host; /* failed attempts before a host is dropped */
    uint32_t max_attempts;     /* failed attempts over all hosts */
    uint32_t retry_delay_ms;   /* back-off floor (also the pause before resuming a host) */
    uint32_t retry_delay_max_ms;
    uint64_t max_bytes; /* body bytes over all attempts */
    uint32_t total_ms;  /* from lade_fwfetch_plan_init */
    uint64_t min_progress;
};

/* How an attempt ended. */
enum lade_fwfetch_outcome {
    LADE_FWFETCH_O_DONE = 0,      /* the image is complete and its hash matched */
    LADE_FWFETCH_O_TRANSIENT = 1, /* connect/TLS-free network failure, timeout, 5xx, cut off */
    LADE_FWFETCH_O_HOST_FAIL = 2, /* this host cannot serve it (404, HTML, certificate, ...) */
    LADE_FWFETCH_O_FATAL = 3,     /* local failure (sink, disk): give up at once */
};

enum lade_fwfetch_step_kind {
    LADE_FWFETCH_S_GO = 0,      /* start an attempt on `host` at `at_ms` */
    LADE_FWFETCH_S_DONE = 1,    /* finished: success */
    LADE_FWFETCH_S_GIVE_UP = 2, /* finished: err, reason */
};

struct lade_fwfetch_step {
    enum lade_fwfetch_step_kind kind;
    size_t host;
    uint64_t at_ms;
    lade_err err;
    char reason[LADE_FWFETCH_SUMMARY_MAX];
};

/* Plain data: callers may read every field; only the functions below change it. */
struct lade_fwfetch_plan {
    struct lade_fwfetch_limits lim;
    const char *const *names; /* host names (for texts), borrowed */
    size_t n_hosts;
    size_t first; /* preferred host: each round starts here */
    size_t host;  /* host of the last/next attempt */
    uint64_t deadline_ms;
    uint32_t attempts; /* started */
    uint32_t failures; /* counted against max_attempts */
    uint32_t rounds;   /* rounds of hosts that all failed */
    uint64_t bytes;    /* body bytes received, all attempts */
    bool stay;         /* the last attempt made progress: the same host again */
    bool finished;
    lade_err result;
    lade_err last_err;
    uint32_t fails[LADE_FWFETCH_MAX_HOSTS]; /* consecutive failures per host */
    bool dead[LADE_FWFETCH_MAX_HOSTS];
    bool tried[LADE_FWFETCH_MAX_HOSTS];                        /* in the current round */
    char why[LADE_FWFETCH_MAX_HOSTS][LADE_FWFETCH_REASON_MAX]; /* each host's last failure */
};

/* Starts a plan over names[0..n) (1..LADE_FWFETCH_MAX_HOSTS; the array must outlive the plan),
 * beginning with host `first` (the host of a resumed download; else 0). Zero limits take the
 * defaults above except max_bytes, which must be set. */
void lade_fwfetch_plan_init(struct lade_fwfetch_plan *p, const struct lade_fwfetch_limits *lim,
                            const char *const *names, size_t n, size_t first, uint64_t now_ms);
/* Counts an attempt started on p->host. */
void lade_fwfetch_plan_begin(struct lade_fwfetch_plan *p);
/* Adds body bytes received; LADE_ERR_TOO_BIG once the byte budget is exceeded. */
lade_err lade_fwfetch_plan_bytes(struct lade_fwfetch_plan *p, uint64_t n) LADE_MUST_CHECK;
/* Records how the attempt on p->host ended; progress: image bytes it added. */
void lade_fwfetch_plan_end(struct lade_fwfetch_plan *p, enum lade_fwfetch_outcome o,
                           uint64_t progress, lade_err err, const char *reason);
/* What next, at now_ms (rnd: any uniform 32-bit value, jitter of the back-off):
 *   - finished: DONE, or GIVE_UP with the fatal error;
 *   - the time budget used up: GIVE_UP TIMEOUT; the byte budget: GIVE_UP TOO_BIG;
 *   - max_attempts failures: GIVE_UP with the last error ("retry budget");
 *   - every host dropped: GIVE_UP with the last error ("every firmware host failed");
 *   - the last attempt made progress (>= min_progress): the same host after retry_delay_ms;
 *   - else the next host not yet tried in this round, at once; when the round is over, a new
 *     round from `first` after a back-off drawn from [retry_delay_ms, min(max, floor x 2^r)].
 * A GIVE_UP reason ends with each host's last failure ("fw1.example: 404 Not Found; ..."). */
void lade_fwfetch_plan_next(struct lade_fwfetch_plan *p, uint64_t now_ms, uint32_t rnd,
                            struct lade_fwfetch_step *s);

/* ---- 1. pure core: the partial-state file ----
 *
 * Text, one "key value" line each, in this order (decoding is strict):
 *     lade-fwfetch 1
 *     path /fw/lade-2.1.0.bin
 *     length 10485760
 *     sha256 <64 lower-case hex> | -
 *     host fw1.example.com
 *     etag "6651f0a2-a00000" | -
 *     offset 262144
 * offset: image bytes known to be durable in the sink; offset == length: complete (hash checked
 * when sha256 is known). */
struct lade_fwfetch_state {
    char path[LADE_FWFETCH_PATH_MAX + 1];
    uint64_t length;
    bool has_sha256;
    uint8_t sha256[LADE_FWFETCH_SHA256_LEN];
    char host[LADE_FWFETCH_HOST_MAX + 1];
    char etag[LADE_FWFETCH_ETAG_MAX + 1]; /* "" none */
    uint64_t offset;
};

/* NUL-terminated; *len excludes the NUL. Errors: LADE_ERR_INVAL (a field out of range: bad
 * path, host or ETag, length 0, offset > length), LADE_ERR_NOSPACE (nothing truncated). */
lade_err lade_fwfetch_state_encode(const struct lade_fwfetch_state *st, char *buf, size_t cap,
                                   size_t *len) LADE_MUST_CHECK;
/* Errors: LADE_ERR_INVAL (not this format, a field out of range), LADE_ERR_TOO_BIG (len >
 * LADE_FWFETCH_STATE_MAX). buf need not be NUL-terminated. */
lade_err lade_fwfetch_state_decode(const char *buf, size_t len,
                                   struct lade_fwfetch_state *st) LADE_MUST_CHECK;

/* A path as accepted in the config: starts with '/', printable ASCII without spaces, '#' or
 * '?', at most LADE_FWFETCH_PATH_MAX characters. */
bool lade_fwfetch_path_valid(const char *path);

/* ---- 2. the Linux shell ---- */

struct lade_loop;
struct lade_dnsres;
struct lade_fwfetch;

/* Where the image goes. All calls come from the loop's thread, never after lade_fwfetch_free
 * returned. The shell writes bytes in order from the resume offset; it never writes at or past
 * the image length. */
struct lade_fwfetch_sink {
    /* Writes p[0..n) at offset. Any error ends the fetch (FATAL). */
    lade_err (*write)(void *ud, uint64_t offset, const uint8_t *p, size_t n);
    /* Makes every byte written so far durable (fsync); called before the state file records an
     * offset, and once at the end. NULL: nothing to do (a volatile sink). */
    lade_err (*sync)(void *ud);
    /* Reads back n bytes at offset, to hash what a previous run wrote before resuming it.
     * NULL: a download never resumes across lade_fwfetch_new (it restarts from 0). */
    lade_err (*read)(void *ud, uint64_t offset, uint8_t *p, size_t n);
    void *ud;
};

struct lade_fwfetch_progress {
    uint64_t offset;      /* image bytes held (hashed) */
    uint64_t length;      /* expected_len */
    uint64_t bytes_total; /* body bytes received in this fetch, all attempts */
    const char *host;     /* of the current attempt */
    uint32_t attempt;     /* attempts started, 1-based */
};

struct lade_fwfetch_result {
    uint64_t length;                         /* image bytes held (== expected_len on success) */
    uint8_t sha256[LADE_FWFETCH_SHA256_LEN]; /* of the image (valid on success) */
    uint64_t bytes_total;  /* body bytes received by this fetch object, all attempts */
    uint64_t resumed_from; /* offset this object started from (state file); 0 none */
    uint32_t attempts;     /* attempts started (a redirect hop is part of its attempt) */
    uint32_t resumes;      /* 206 responses taken */
    uint32_t restarts;     /* times the partial image was dropped and the fetch restarted at 0 */
    uint32_t redirects;    /* redirects followed */
    const char *host;      /* host that served the last bytes ("" none); valid in the call */
    uint32_t elapsed_ms;
};

/* progress: after each loop round that added image bytes. note: things worth reporting (host
 * failures and why, failover, resume, restart and why, redirects) as one line of text.
 * done: exactly once (never from inside lade_fwfetch_new), err LADE_OK when the image is
 * complete with the expected length and hash; otherwise the error and the reason:
 *   LADE_ERR_TIMEOUT  time budget used up         LADE_ERR_TOO_BIG  byte budget exceeded, or
 *   every host failed / retry budget: the error of the last failure (NOT_FOUND, CERT, TLS,
 *   PROTO (HTML page, bad range, refused redirect), TOO_BIG (longer than the manifest), AUTH
 *   (hash mismatch), IO (refused/reset), TIMEOUT (connect, too slow), RESOLVE);
 *   LADE_ERR_IO / NOMEM  the sink or the state file failed.
 * Texts and res are valid during the call only. progress and note must not free the fetch;
 * done may. */
typedef void (*lade_fwfetch_progress_cb)(void *ud, const struct lade_fwfetch_progress *p);
typedef void (*lade_fwfetch_note_cb)(void *ud, const char *text);
typedef void (*lade_fwfetch_done_cb)(void *ud, lade_err err, const char *reason,
                                     const struct lade_fwfetch_result *res);

struct lade_fwfetch_cfg {
    /* The firmware hosts (factory setting `firmware_hosts`), tried in order: names only, no
     * scheme or port (lade_fwfetch_host_valid). 1..LADE_FWFETCH_MAX_HOSTS. Copied. */
    const char *const *hosts;
    size_t n_hosts;
    uint16_t port;         /* 0: 443 */
    const char *path;      /* "/fw/<name>" (lade_fwfetch_path_valid). Copied. */
    const char *ca_file;   /* PEM bundle the hosts' chains must lead to. Required. Copied. */
    uint64_t expected_len; /* from the signed manifest, >= 1: never more is read */
    const uint8_t *expected_sha256; /* 32 bytes from the manifest (copied), or NULL: the caller
                                       checks res->sha256 itself */
    /* The destination: sink.write set, or dest_path (a file opened read-write, created 0644,
     * synced with fdatasync, truncated to expected_len at the end). */
    struct lade_fwfetch_sink sink;
    const char *dest_path;
    /* Partial state (lade_fwfetch_state): read at start to resume, saved after every
     * persist_kib of image (data synced first), when an attempt ends, on restart, at the end
     * and by lade_fwfetch_free. NULL: no resume across lade_fwfetch_new. Copied. */
    const char *state_path;
    uint32_t persist_kib;

    /* Budgets (0: the defaults above). */
    uint64_t max_bytes; /* 0: expected_len x bytes_factor + LADE_FWFETCH_BYTES_SLACK */
    uint32_t bytes_factor;
    uint32_t total_ms;
    uint32_t connect_ms;
    uint32_t low_speed_bps;
    uint32_t low_speed_s;
    uint32_t retries_per_host;
    uint32_t max_attempts;
    uint32_t retry_delay_ms;
    uint32_t retry_delay_max_ms;
    uint32_t max_redirects;

    /* Name resolution (never curl's own resolver): the charger's DNS stub (must outlive the
     * fetch; A first, AAAA when there is no A), else a static map in /etc/hosts format
     * (copied; hosts_len 0: strlen). One of them is required. The addresses reach curl through
     * CURLOPT_RESOLVE; the name is still what TLS checks (SNI, certificate). */
    struct lade_dnsres *dnsres;
    const char *hosts_text;
    size_t hosts_len;

    lade_fwfetch_progress_cb progress; /* optional */
    lade_fwfetch_note_cb note;         /* optional */
    lade_fwfetch_done_cb done;         /* required */
    void *ud;
};

/* Starts fetching on loop (which must outlive the fetch). A valid state file for the same path,
 * length and hash resumes: the bytes it records are read back and hashed (a chunk per loop
 * round), then the download continues from there, first at the host the state names. A state
 * for another image, or an unreadable one, is ignored (the download starts from 0).
 * Errors (no callback then): LADE_ERR_INVAL (a field out of range), LADE_ERR_CONFIG (ca_file
 * not readable), LADE_ERR_IO (dest_path cannot be opened), LADE_ERR_NOMEM. */
lade_err lade_fwfetch_new(struct lade_loop *loop, const struct lade_fwfetch_cfg *cfg,
                          struct lade_fwfetch **out) LADE_MUST_CHECK;
/* Stops (no callback), syncs the sink and saves the state (when a state file is configured and
 * bytes were taken), closes everything. Allowed from the done callback. NULL is ignored. */
void lade_fwfetch_free(struct lade_fwfetch *f);
/* Progress so far (also after done). */
void lade_fwfetch_stats(const struct lade_fwfetch *f, struct lade_fwfetch_result *out);

#endif
