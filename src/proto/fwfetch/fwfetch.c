/* lade — the pure core of the firmware download (include/lade/fwfetch.h, part 1): the check of
 * a response's head, the redirect check, the plan (failover, retry/byte/time budgets) and the
 * partial-state codec. No I/O, no clock, no malloc. Policy and reasons: docs/firmware.md
 * "Download"; the attacks it answers: ../shared/reference/firmware.md (endless data, an HTML
 * error page, a redirect to an unexpected host, resume forever against a 404).
 */
#include "lade/fwfetch.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- small helpers ---- */

static void say(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    /* A reason is a log text; mark a cut one rather than cut it silently. */
    if (n >= 0 && (size_t)n >= cap && cap > 4)
        memcpy(buf + cap - 4, "...", 4);
}

/* Appends to a NUL-terminated text in buf[cap]; marks a cut with "...". */
static void add(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(char *buf, size_t cap, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + used, cap - used, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n >= cap - used && cap > 4)
        memcpy(buf + cap - 4, "...", 4);
}

/* Strict decimal: 1..20 digits, no sign, no overflow. */
static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* The media type of a Content-Type value, compared without case and without parameters. */
static bool media_type_is(const char *ct, const char *type)
{
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strcspn(ct, "; \t");
    return n == strlen(type) && strncasecmp(ct, type, n) == 0;
}

static bool is_html(const char *ct)
{
    return ct && (media_type_is(ct, "text/html") || media_type_is(ct, "application/xhtml+xml"));
}

static bool identity_encoding(const char *ce)
{
    if (!ce)
        return true;
    while (*ce == ' ' || *ce == '\t')
        ce++;
    return *ce == '\0' || media_type_is(ce, "identity");
}

static const char *status_text(long status)
{
    switch (status) {
    case 200:
        return "OK";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 303:
        return "See Other";
    case 307:
        return "Temporary Redirect";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 408:
        return "Request Timeout";
    case 410:
        return "Gone";
    case 416:
        return "Range Not Satisfiable";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "";
    }
}

/* ---- the head of a response ---- */

lade_err lade_fwfetch_parse_content_range(const char *s, uint64_t *first, uint64_t *last,
                                          uint64_t *complete)
{
    if (!s || !first || !last || !complete || strncasecmp(s, "bytes ", 6) != 0)
        return LADE_ERR_INVAL;
    s += 6;
    const char *dash = strchr(s, '-');
    const char *slash = dash ? strchr(dash, '/') : NULL;
    if (!dash || !slash)
        return LADE_ERR_INVAL;
    uint64_t f, l, c;
    if (!parse_u64(s, (size_t)(dash - s), &f) ||
        !parse_u64(dash + 1, (size_t)(slash - dash - 1), &l) ||
        !parse_u64(slash + 1, strlen(slash + 1), &c) || f > l || l >= c)
        return LADE_ERR_INVAL;
    *first = f;
    *last = l;
    *complete = c;
    return LADE_OK;
}

bool lade_fwfetch_etag_strong(const char *etag)
{
    if (!etag)
        return false;
    size_t n = strlen(etag);
    if (n < 2 || n > LADE_FWFETCH_ETAG_MAX || etag[0] != '"' || etag[n - 1] != '"')
        return false;
    for (size_t i = 1; i + 1 < n; i++) {
        unsigned char c = (unsigned char)etag[i];
        if (c < 0x21 || c == '"' || c > 0x7e)
            return false;
    }
    return true;
}

bool lade_fwfetch_host_valid(const char *host)
{
    if (!host)
        return false;
    size_t n = strlen(host), label = 0;
    if (n == 0 || n > LADE_FWFETCH_HOST_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = host[i];
        if (c == '.') {
            if (label == 0 || host[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c == '-' && label > 0);
        if (!ok || ++label > 63)
            return false;
    }
    return label > 0 && host[n - 1] != '-';
}

bool lade_fwfetch_path_valid(const char *path)
{
    if (!path || path[0] != '/')
        return false;
    size_t n = strlen(path);
    if (n > LADE_FWFETCH_PATH_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c < 0x21 || c > 0x7e || c == '#' || c == '?' || c == '\\')
            return false;
    }
    return true;
}

static void verdict(struct lade_fwfetch_verdict *v, enum lade_fwfetch_verdict_kind kind,
                    lade_err err)
{
    v->kind = kind;
    v->err = err;
}

void lade_fwfetch_check_head(const struct lade_fwfetch_head *h, uint64_t offset,
                             const char *if_range, uint64_t expected_len,
                             struct lade_fwfetch_verdict *v)
{
    memset(v, 0, sizeof *v);
    long st = h->status;
    const char *txt = status_text(st);
    if (st == 200 || st == 206) {
        /* Checks that hold for any body: what a captive portal, a misconfigured mirror or a CDN
         * error page looks like. The image itself is checked by its hash at the end. */
        if (is_html(h->content_type)) {
            verdict(v, LADE_FWFETCH_V_HOST_FAIL, LADE_ERR_PROTO);
            say(v->reason, sizeof v->reason,
                "server returned an HTML page (HTTP %ld, Content-Type %s), not the image", st,
                h->content_type);
            return;
        }
        if (!identity_encoding(h->content_encoding)) {
            verdict(v, LADE_FWFETCH_V_HOST_FAIL, LADE_ERR_PROTO);
            say(v->reason, sizeof v->reason,
                "Content-Encoding %s refused: the image is taken byte for byte",
                h->content_encoding);
            return;
        }
    }
    if (st == 200) {
        if (h->has_length && h->length > expected_len) {
            verdict(v, LADE_FWFETCH_V_HOST_FAIL, LADE_ERR_TOO_BIG);
            say(v->reason, sizeof v->reason,
                "Content-Length %" PRIu64 " is more than the manifest's %" PRIu64
                " bytes: refused before reading",
                h->length, expected_len);
            return;
        }
        if (h->has_length && h->length < expected_len) {
            verdict(v, LADE_FWFETCH_V_HOST_FAIL, LADE_ERR_PROTO);
            say(v->reason, sizeof v->reason,
                "Content-Length %" PRIu64 " is less than the manifest's %" PRIu64
                " bytes: another image",
                h->length, expected_len);
            return;
        }
        verdict(v, LADE_FWFETCH_V_BODY, LADE_OK);
        v->offset = 0;
        if (offset > 0) {
            v->restart = true;
            if (if_range && h->etag && strcmp(if_range, h->etag) != 0)
                say(v->reason, sizeof v->reason,
                    "image changed on the server (ETag %s, was %s): restarting from 0 (had %" PRIu64
                    " bytes)",
                    h->etag, if_range, offset);
            else
                say(v->reason, sizeof v->reason,
                    "server sent the whole image to a range request: restarting from 0 (had "
                    "%" PRIu64 " bytes)",
                    offset);
        }
        return;
    }
    if (st == 206) {
        uint64_t first, last, complete;
        verdict(v, LADE_FWFETCH_V_HOST_FAIL, LADE_ERR_PROTO);
        if (offset == 0) {
            say(v->reason, sizeof v->reason, "206 Partial Content to a request without a range");
            return;
        }
        if (!h->content_range) {
            say(v->reason, sizeof v->reason, "206 Partial Content without Content-Range");
            return;
        }
        if (lade_fwfetch_parse_content_range(h->content_range, &first, &last, &complete) !=
                LADE_OK ||
            first != offset || last != expected_len - 1 || complete != expected_len) {
            say(v->reason, sizeof v->reason,
                "Content-Range \"%s\" does not match the requested bytes %" PRIu64 "-%" PRIu64
                "/%" PRIu64,
                h->content_range, offset, expected_len - 1, expected_len);
            return;
        }
        if (h->has_length && h->length != last - first + 1) {
            say(v->reason, sizeof v->reason,
                "Content-Length %" PRIu64 " does not match Content-Range \"%s\"", h->length,
                h->content_range);
            return;
        }
        if (if_range && h->etag && strcmp(if_range, h->etag) != 0) {
            say(v->reason, sizeof v->reason, "206 Partial Content of ETag %s, asked for %s",
                h->etag, if_range);
            return;
        }
        verdict(v, LADE_FWFETCH_V_BODY, LADE_OK);
        v->offset = offset;
        return;
    }
    if (st == 301 || st == 302 || st == 303 || st == 307 || st == 308) {
        verdict(v, LADE_FWFETCH_V_REDIRECT, LADE_OK);
        return;
    }
    if (st == 404 || st == 410) {
        verdict(v, LADE_FWFETCH_V_HOST_FAIL, LADE_ERR_NOT_FOUND);
    } else if (st == 401 || st == 403) {
        verdict(v, LADE_FWFETCH_V_HOST_FAIL, LADE_ERR_AUTH);
    } else if (st == 416) {
        /* The server's image is shorter than the offset we hold: ours is not its prefix. */
        verdict(v, LADE_FWFETCH_V_HOST_FAIL, LADE_ERR_PROTO);
        v->restart = true;
    } else if (st == 408 || st == 429 || (st >= 500 && st <= 599)) {
        verdict(v, LADE_FWFETCH_V_RETRY, LADE_ERR_IO);
    } else {
        verdict(v, LADE_FWFETCH_V_HOST_FAIL, LADE_ERR_PROTO);
    }
    say(v->reason, sizeof v->reason, "HTTP %ld%s%s", st, *txt ? " " : "", txt);
}

lade_err lade_fwfetch_redirect_check(const char *scheme, const char *user, const char *host,
                                     const char *port_text, const char *const *hosts, size_t n,
                                     uint16_t port, size_t *index, char *reason, size_t cap)
{
    char dummy[8];
    if (!reason || cap == 0) {
        reason = dummy;
        cap = sizeof dummy;
    }
    reason[0] = '\0';
    if (!scheme || strcasecmp(scheme, "https") != 0) {
        say(reason, cap, "redirect to a URL with scheme %s refused: https only",
            scheme && *scheme ? scheme : "(none)");
        return LADE_ERR_PROTO;
    }
    if (!host || !*host) {
        say(reason, cap, "redirect without a host refused");
        return LADE_ERR_PROTO;
    }
    if (user && *user) {
        say(reason, cap, "redirect to %s with user info refused", host);
        return LADE_ERR_PROTO;
    }
    size_t hn = strlen(host);
    if (hn > 1 && host[hn - 1] == '.')
        hn--;
    size_t found = SIZE_MAX;
    for (size_t i = 0; i < n && found == SIZE_MAX; i++)
        if (hosts[i] && strlen(hosts[i]) == hn && strncasecmp(hosts[i], host, hn) == 0)
            found = i;
    if (found == SIZE_MAX) {
        say(reason, cap, "redirect to %s refused: not a firmware host", host);
        return LADE_ERR_PROTO;
    }
    uint64_t p = 443;
    if (port_text && !parse_u64(port_text, strlen(port_text), &p))
        p = 0;
    if (p != port) {
        say(reason, cap, "redirect to %s port %s refused: firmware hosts are asked on port %u",
            host, port_text ? port_text : "443", (unsigned)port);
        return LADE_ERR_PROTO;
    }
    if (index)
        *index = found;
    return LADE_OK;
}

/* ---- the plan ---- */

void lade_fwfetch_plan_init(struct lade_fwfetch_plan *p, const struct lade_fwfetch_limits *lim,
                            const char *const *names, size_t n, size_t first, uint64_t now_ms)
{
    memset(p, 0, sizeof *p);
    p->lim = *lim;
    if (!p->lim.retries_per_host)
        p->lim.retries_per_host = LADE_FWFETCH_RETRIES;
    if (!p->lim.max_attempts)
        p->lim.max_attempts = LADE_FWFETCH_MAX_ATTEMPTS;
    if (!p->lim.retry_delay_ms)
        p->lim.retry_delay_ms = LADE_FWFETCH_RETRY_MS;
    if (!p->lim.retry_delay_max_ms)
        p->lim.retry_delay_max_ms = LADE_FWFETCH_RETRY_MAX_MS;
    if (p->lim.retry_delay_max_ms < p->lim.retry_delay_ms)
        p->lim.retry_delay_max_ms = p->lim.retry_delay_ms;
    if (!p->lim.total_ms)
        p->lim.total_ms = LADE_FWFETCH_TOTAL_MS;
    if (!p->lim.min_progress)
        p->lim.min_progress = LADE_FWFETCH_MIN_PROGRESS;
    p->names = names;
    p->n_hosts = n > LADE_FWFETCH_MAX_HOSTS ? LADE_FWFETCH_MAX_HOSTS : n;
    p->first = first < p->n_hosts ? first : 0;
    p->host = p->first;
    p->deadline_ms = now_ms + p->lim.total_ms;
    p->last_err = LADE_OK;
}

void lade_fwfetch_plan_begin(struct lade_fwfetch_plan *p)
{
    p->attempts++;
    p->tried[p->host] = true;
}

lade_err lade_fwfetch_plan_bytes(struct lade_fwfetch_plan *p, uint64_t n)
{
    p->bytes += n;
    return p->bytes > p->lim.max_bytes ? LADE_ERR_TOO_BIG : LADE_OK;
}

void lade_fwfetch_plan_end(struct lade_fwfetch_plan *p, enum lade_fwfetch_outcome o,
                           uint64_t progress, lade_err err, const char *reason)
{
    size_t h = p->host;
    p->stay = false;
    if (o == LADE_FWFETCH_O_DONE) {
        p->finished = true;
        p->result = LADE_OK;
        return;
    }
    p->last_err = err != LADE_OK ? err : LADE_ERR_IO;
    say(p->why[h], sizeof p->why[h], "%s", reason && *reason ? reason : lade_strerror(err));
    switch (o) {
    case LADE_FWFETCH_O_FATAL:
        p->finished = true;
        p->result = p->last_err;
        return;
    case LADE_FWFETCH_O_HOST_FAIL:
        p->dead[h] = true;
        p->fails[h]++;
        p->failures++;
        return;
    case LADE_FWFETCH_O_TRANSIENT:
    default:
        /* An attempt that brought real progress is not a failure: it is bounded by the byte and
         * time budgets instead (each such attempt adds min_progress to the image, and only a
         * restart from 0 — which costs bytes — takes them away). */
        if (progress >= p->lim.min_progress) {
            p->fails[h] = 0;
            p->stay = true;
            return;
        }
        p->fails[h]++;
        p->failures++;
        if (p->fails[h] >= p->lim.retries_per_host)
            p->dead[h] = true;
        return;
    }
}

static void summary(const struct lade_fwfetch_plan *p, char *buf, size_t cap)
{
    bool any = false;
    for (size_t i = 0; i < p->n_hosts; i++) {
        if (!p->why[i][0])
            continue;
        add(buf, cap, "%s%s: %s", any ? "; " : " (", p->names ? p->names[i] : "?", p->why[i]);
        any = true;
    }
    if (any)
        add(buf, cap, ")");
}

static void give_up(struct lade_fwfetch_plan *p, struct lade_fwfetch_step *s, lade_err err)
{
    p->finished = true;
    p->result = err;
    s->kind = LADE_FWFETCH_S_GIVE_UP;
    s->err = err;
    summary(p, s->reason, sizeof s->reason);
}

void lade_fwfetch_plan_next(struct lade_fwfetch_plan *p, uint64_t now_ms, uint32_t rnd,
                            struct lade_fwfetch_step *s)
{
    memset(s, 0, sizeof *s);
    s->host = p->host;
    s->at_ms = now_ms;
    if (p->finished) {
        if (p->result == LADE_OK) {
            s->kind = LADE_FWFETCH_S_DONE;
        } else {
            s->kind = LADE_FWFETCH_S_GIVE_UP;
            s->err = p->result;
            say(s->reason, sizeof s->reason, "%s", p->why[p->host]);
        }
        return;
    }
    if (now_ms >= p->deadline_ms) {
        say(s->reason, sizeof s->reason, "time budget of %" PRIu32 ".%03" PRIu32 " s used up",
            p->lim.total_ms / 1000, p->lim.total_ms % 1000);
        give_up(p, s, LADE_ERR_TIMEOUT);
        return;
    }
    if (p->bytes > p->lim.max_bytes) {
        say(s->reason, sizeof s->reason, "byte budget of %" PRIu64 " bytes used up",
            p->lim.max_bytes);
        give_up(p, s, LADE_ERR_TOO_BIG);
        return;
    }
    if (p->failures >= p->lim.max_attempts) {
        say(s->reason, sizeof s->reason, "retry budget of %" PRIu32 " failed attempts used up",
            p->lim.max_attempts);
        give_up(p, s, p->last_err);
        return;
    }
    size_t live = 0;
    for (size_t i = 0; i < p->n_hosts; i++)
        live += !p->dead[i];
    if (live == 0) {
        say(s->reason, sizeof s->reason, "every firmware host failed");
        give_up(p, s, p->last_err);
        return;
    }
    s->kind = LADE_FWFETCH_S_GO;
    if (p->stay && !p->dead[p->host]) {
        /* Resume where the connection broke, after a short pause. */
        p->stay = false;
        s->at_ms = now_ms + p->lim.retry_delay_ms;
    } else {
        size_t next = SIZE_MAX;
        for (size_t i = 0; i < p->n_hosts && next == SIZE_MAX; i++) {
            size_t h = (p->host + i) % p->n_hosts;
            if (!p->dead[h] && !p->tried[h])
                next = h;
        }
        if (next != SIZE_MAX) {
            p->host = next; /* failover: at once */
        } else {
            /* Every live host failed in this round: back off, then start again at `first`. */
            p->rounds++;
            memset(p->tried, 0, sizeof p->tried);
            uint64_t cap = p->lim.retry_delay_ms;
            for (uint32_t r = 1; r < p->rounds && cap < p->lim.retry_delay_max_ms; r++)
                cap *= 2;
            if (cap > p->lim.retry_delay_max_ms)
                cap = p->lim.retry_delay_max_ms;
            uint64_t delay = p->lim.retry_delay_ms + rnd % (cap - p->lim.retry_delay_ms + 1);
            for (size_t i = 0; i < p->n_hosts; i++) {
                size_t h = (p->first + i) % p->n_hosts;
                if (!p->dead[h]) {
                    p->host = h;
                    break;
                }
            }
            s->at_ms = now_ms + delay;
        }
    }
    s->host = p->host;
    if (s->at_ms >= p->deadline_ms) {
        say(s->reason, sizeof s->reason,
            "time budget of %" PRIu32 ".%03" PRIu32 " s would be used up before the next attempt",
            p->lim.total_ms / 1000, p->lim.total_ms % 1000);
        give_up(p, s, LADE_ERR_TIMEOUT);
    }
}

/* ---- the partial-state file ---- */

static const char HEX[] = "0123456789abcdef";

lade_err lade_fwfetch_state_encode(const struct lade_fwfetch_state *st, char *buf, size_t cap,
                                   size_t *len)
{
    if (!st || !buf || !len)
        return LADE_ERR_INVAL;
    if (!lade_fwfetch_path_valid(st->path) || !lade_fwfetch_host_valid(st->host) ||
        st->length == 0 || st->offset > st->length ||
        (st->etag[0] && !lade_fwfetch_etag_strong(st->etag)))
        return LADE_ERR_INVAL;
    char sha[2 * LADE_FWFETCH_SHA256_LEN + 1] = "-";
    if (st->has_sha256) {
        for (size_t i = 0; i < LADE_FWFETCH_SHA256_LEN; i++) {
            sha[2 * i] = HEX[st->sha256[i] >> 4];
            sha[2 * i + 1] = HEX[st->sha256[i] & 15];
        }
        sha[2 * LADE_FWFETCH_SHA256_LEN] = '\0';
    }
    int n = snprintf(buf, cap,
                     "lade-fwfetch 1\npath %s\nlength %" PRIu64 "\nsha256 %s\nhost %s\netag %s\n"
                     "offset %" PRIu64 "\n",
                     st->path, st->length, sha, st->host, st->etag[0] ? st->etag : "-", st->offset);
    if (n < 0)
        return LADE_ERR_INVAL;
    if ((size_t)n >= cap)
        return LADE_ERR_NOSPACE;
    *len = (size_t)n;
    return LADE_OK;
}

/* Takes the next line "key value\n" from *p (end e); copies value (NUL-terminated) to out. */
static bool take_line(const char **p, const char *e, const char *key, char *out, size_t cap)
{
    size_t kn = strlen(key);
    const char *nl = memchr(*p, '\n', (size_t)(e - *p));
    if (!nl || (size_t)(nl - *p) < kn + 2 || memcmp(*p, key, kn) != 0 || (*p)[kn] != ' ')
        return false;
    const char *v = *p + kn + 1;
    size_t vn = (size_t)(nl - v);
    if (vn >= cap || memchr(v, '\0', vn))
        return false;
    memcpy(out, v, vn);
    out[vn] = '\0';
    *p = nl + 1;
    return true;
}

lade_err lade_fwfetch_state_decode(const char *buf, size_t len, struct lade_fwfetch_state *st)
{
    if (!buf || !st)
        return LADE_ERR_INVAL;
    if (len > LADE_FWFETCH_STATE_MAX)
        return LADE_ERR_TOO_BIG;
    memset(st, 0, sizeof *st);
    const char *p = buf, *e = buf + len;
    char v[LADE_FWFETCH_PATH_MAX + 2];
    if (!take_line(&p, e, "lade-fwfetch", v, sizeof v) || strcmp(v, "1") != 0)
        return LADE_ERR_INVAL;
    if (!take_line(&p, e, "path", st->path, sizeof st->path) || !lade_fwfetch_path_valid(st->path))
        return LADE_ERR_INVAL;
    if (!take_line(&p, e, "length", v, sizeof v) || !parse_u64(v, strlen(v), &st->length) ||
        st->length == 0)
        return LADE_ERR_INVAL;
    if (!take_line(&p, e, "sha256", v, sizeof v))
        return LADE_ERR_INVAL;
    if (strcmp(v, "-") != 0) {
        if (strlen(v) != 2 * LADE_FWFETCH_SHA256_LEN)
            return LADE_ERR_INVAL;
        for (size_t i = 0; i < LADE_FWFETCH_SHA256_LEN; i++) {
            const char *hi = strchr(HEX, v[2 * i]), *lo = strchr(HEX, v[2 * i + 1]);
            if (!v[2 * i] || !v[2 * i + 1] || !hi || !lo)
                return LADE_ERR_INVAL;
            st->sha256[i] = (uint8_t)(((hi - HEX) << 4) | (lo - HEX));
        }
        st->has_sha256 = true;
    }
    if (!take_line(&p, e, "host", st->host, sizeof st->host) || !lade_fwfetch_host_valid(st->host))
        return LADE_ERR_INVAL;
    if (!take_line(&p, e, "etag", v, sizeof v))
        return LADE_ERR_INVAL;
    if (strcmp(v, "-") != 0) {
        if (!lade_fwfetch_etag_strong(v))
            return LADE_ERR_INVAL;
        memcpy(st->etag, v, strlen(v) + 1);
    }
    if (!take_line(&p, e, "offset", v, sizeof v) || !parse_u64(v, strlen(v), &st->offset) ||
        st->offset > st->length || p != e)
        return LADE_ERR_INVAL;
    return LADE_OK;
}
