/* lade — firmware download over HTTPS on the event loop (include/lade/fwfetch.h, part 2).
 * Policy and reasons: docs/firmware.md "Download". SPEC R3 (443 to the firmware hosts), R9
 * (server certificate verified), R11 (resumes by itself), U4 (bad input from a server gets a
 * clear reason and never more than the manifest's bytes).
 *
 * libcurl's multi interface on a lade_loop: curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION) and when to call it back (CURLMOPT_TIMERFUNCTION); we call
 * curl_multi_socket_action from the loop's callbacks. No thread, no blocking call: names come
 * from the charger's DNS stub (or a static map) and are handed to curl with CURLOPT_RESOLVE, so
 * curl's own resolver is never used.
 *
 * Nothing is done from inside curl's callbacks except taking bytes (write, hash, persist) and
 * deciding on a response's head (an abort is a flag plus returning 0). An attempt ends after
 * curl_multi_socket_action returned (curl_multi_info_read); the next attempt, a redirect hop and
 * the done callback run from our own timer (t_step), so done may free us. progress and note
 * run from the loop's callbacks too, but with our state in the middle of a change: they must
 * not free the fetch.
 *
 * Resume across restarts: the state file records the offset only after the sink synced those
 * bytes; a new fetch reads them back through sink.read and hashes them (a chunk per loop
 * round) instead of persisting OpenSSL's hash state (which has no stable serialisation), and
 * the final SHA-256 covers every byte whatever its history.
 */
#include "lade/fwfetch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "lade/clock.h"
#include "lade/dnsres.h"
#include "lade/file.h"
#include "lade/log.h"
#include "lade/loop.h"
#include "lade/resolve.h"

#define MOD "fwfetch"

#define ADDRS_MAX    8
#define LOCATION_MAX 2048
#define URL_MAX      (16 + LADE_FWFETCH_HOST_MAX + 8 + LOCATION_MAX)

enum fstate {
    ST_REHASH = 0, /* reading back what a previous run wrote */
    ST_WAIT,       /* between attempts (t_step starts the next) */
    ST_RESOLVE,    /* an attempt (or a redirect hop) is resolving its host */
    ST_TRANSFER,   /* curl has the request */
    ST_DONE,       /* finished; done is called from t_step */
};

static const char *const STATE_NAMES[] = {"rehash", "wait", "resolve", "transfer", "done"};

struct lade_fwfetch {
    struct lade_loop *loop;

    /* configuration (copies) */
    char *hosts[LADE_FWFETCH_MAX_HOSTS];
    const char *names[LADE_FWFETCH_MAX_HOSTS];
    size_t n_hosts;
    uint16_t port;
    char path[LADE_FWFETCH_PATH_MAX + 1];
    char *ca_file;
    uint64_t len;
    bool has_sha;
    uint8_t sha[LADE_FWFETCH_SHA256_LEN];
    struct lade_fwfetch_sink sink;
    int dest_fd; /* dest_path's file (the built-in sink); -1 none */
    char *state_path;
    uint64_t persist_bytes;
    uint32_t connect_ms, low_speed_bps, low_speed_s, max_redirects;
    struct lade_dnsres *dnsres;
    char *hosts_text;
    size_t hosts_len;
    lade_fwfetch_progress_cb progress;
    lade_fwfetch_note_cb note;
    lade_fwfetch_done_cb done;
    void *ud;

    enum fstate state;
    struct lade_fwfetch_plan plan;
    EVP_MD_CTX *md;
    uint64_t offset;                        /* image bytes taken and hashed */
    uint64_t synced;                        /* offset the state file records (bytes synced first) */
    char etag[LADE_FWFETCH_ETAG_MAX + 1];   /* validator of the bytes held; "" none */
    char served[LADE_FWFETCH_HOST_MAX + 1]; /* host that served them; "" none */
    uint64_t rehash_to;
    uint8_t *rehash_buf;

    /* the attempt */
    size_t cur_host; /* host of the current hop (a redirect moves it) */
    char url[URL_MAX];
    uint32_t hops;
    uint64_t attempt_bytes; /* image bytes this attempt took */
    int family;             /* dnsres: AF_INET, then AF_INET6 */
    struct lade_dnsres_query *q;
    CURLM *multi;
    CURL *easy;
    struct curl_slist *resolve_list, *headers;
    char errbuf[CURL_ERROR_SIZE];
    /* the head of the current response */
    bool head_done;
    long status;
    bool h_has_len, h_bad_len, h_chunked, h_long_location;
    uint64_t h_len;
    char h_ctype[128], h_crange[128], h_cenc[64], h_etag[LADE_FWFETCH_ETAG_MAX + 2];
    char h_location[LOCATION_MAX];
    struct lade_fwfetch_verdict v;
    bool have_verdict;
    /* our own abort (from a curl callback or the deadline) */
    bool aborted;
    bool ab_restart;
    enum lade_fwfetch_outcome ab_outcome;
    lade_err ab_err;
    char ab_reason[LADE_FWFETCH_REASON_MAX];

    struct lade_timer t_curl, t_step, t_deadline;
    uint64_t reported; /* offset last given to progress */

    /* the end */
    lade_err result;
    char reason[LADE_FWFETCH_SUMMARY_MAX];
    uint8_t digest[LADE_FWFETCH_SHA256_LEN];

    /* stats */
    uint64_t t_start, t_end, bytes_total, resumed_from;
    uint32_t resumes, restarts, redirects;
};

static void set_state(struct lade_fwfetch *f, enum fstate to)
{
    if (f->state != to)
        LOG_D(MOD, "%s -> %s", STATE_NAMES[f->state], STATE_NAMES[to]);
    f->state = to;
}

/* Formats a reason text; a cut one ends with "..." (texts are for people, never parsed). */
static void text(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void text(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n >= cap && cap > 4)
        memcpy(buf + cap - 4, "...", 4);
}

static void note(struct lade_fwfetch *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note(struct lade_fwfetch *f, const char *fmt, ...)
{
    char text[LADE_FWFETCH_SUMMARY_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    LOG_I(MOD, "%s", text);
    if (f->note)
        f->note(f->ud, text);
}

static const char *host_name(const struct lade_fwfetch *f, size_t i)
{
    return i < f->n_hosts ? f->hosts[i] : "?";
}

/* ---- the built-in file sink (dest_path) ---- */

static lade_err file_write(void *ud, uint64_t offset, const uint8_t *p, size_t n)
{
    struct lade_fwfetch *f = ud;
    while (n) {
        ssize_t w = pwrite(f->dest_fd, p, n, (off_t)offset);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return LADE_ERR_IO;
        p += w;
        n -= (size_t)w;
        offset += (uint64_t)w;
    }
    return LADE_OK;
}

static lade_err file_sync(void *ud)
{
    struct lade_fwfetch *f = ud;
    return fdatasync(f->dest_fd) == 0 ? LADE_OK : LADE_ERR_IO;
}

static lade_err file_read(void *ud, uint64_t offset, uint8_t *p, size_t n)
{
    struct lade_fwfetch *f = ud;
    while (n) {
        ssize_t r = pread(f->dest_fd, p, n, (off_t)offset);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return LADE_ERR_IO; /* 0: the file is shorter than the state says */
        p += r;
        n -= (size_t)r;
        offset += (uint64_t)r;
    }
    return LADE_OK;
}

/* ---- state file ---- */

static lade_err sink_sync(struct lade_fwfetch *f)
{
    return f->sink.sync ? f->sink.sync(f->sink.ud) : LADE_OK;
}

/* Syncs the image bytes, then records them (SPEC R11: a kill -9 or a power cut resumes). */
static lade_err persist(struct lade_fwfetch *f)
{
    if (!f->state_path)
        return LADE_OK;
    lade_err err = f->offset > 0 ? sink_sync(f) : LADE_OK; /* offset 0 claims no bytes */
    if (err != LADE_OK)
        return err;
    struct lade_fwfetch_state st;
    memset(&st, 0, sizeof st);
    snprintf(st.path, sizeof st.path, "%s", f->path);
    st.length = f->len;
    st.has_sha256 = f->has_sha;
    memcpy(st.sha256, f->sha, sizeof st.sha256);
    snprintf(st.host, sizeof st.host, "%s", f->served[0] ? f->served : host_name(f, f->plan.host));
    snprintf(st.etag, sizeof st.etag, "%s", f->etag);
    st.offset = f->offset;
    char buf[LADE_FWFETCH_STATE_MAX];
    size_t n;
    err = lade_fwfetch_state_encode(&st, buf, sizeof buf, &n);
    if (err == LADE_OK)
        err = lade_file_write_atomic(f->state_path, buf, n, 0644, true);
    if (err != LADE_OK) {
        LOG_E(MOD, "state %s: %s", f->state_path, lade_strerror(err));
        return err;
    }
    f->synced = f->offset;
    return LADE_OK;
}

static void hash_reset(struct lade_fwfetch *f)
{
    EVP_DigestInit_ex(f->md, EVP_sha256(), NULL);
}

/* The bytes held are worthless (another image, an untrusted server, a hash mismatch). */
static void restart_at_zero(struct lade_fwfetch *f, const char *why)
{
    if (f->offset > 0 || f->etag[0]) {
        f->restarts++;
        note(f, "%s", why);
    }
    hash_reset(f);
    f->offset = 0;
    f->etag[0] = '\0';
    f->served[0] = '\0';
    f->reported = 0;
    /* Recorded at once (no data sync needed for offset 0): a power cut from here on must not
     * resume old bytes under a new validator. */
    if (persist(f) != LADE_OK)
        LOG_W(MOD, "could not record the restart in %s", f->state_path);
}

/* ---- finishing ---- */

static void arm_step(struct lade_fwfetch *f, uint64_t at_ms)
{
    if (lade_timer_arm(f->loop, &f->t_step, at_ms) != LADE_OK) {
        /* Only a heap growth can fail, and t_step was armed before: it cannot happen after
         * lade_fwfetch_new. Log it so it is not silent. */
        LOG_E(MOD, "cannot arm the step timer");
    }
}

static void finish(struct lade_fwfetch *f, lade_err err, const char *reason)
{
    f->result = err;
    snprintf(f->reason, sizeof f->reason, "%s", reason ? reason : "");
    f->t_end = lade_mono_ms();
    lade_timer_cancel(f->loop, &f->t_deadline);
    set_state(f, ST_DONE);
    arm_step(f, 0); /* done is called from the loop, never from a caller's call */
    if (err == LADE_OK)
        LOG_I(MOD,
              "%s complete: %" PRIu64 " bytes, %" PRIu64 " received, %" PRIu32
              " attempt(s), %" PRIu32 " resume(s), %" PRIu32 " restart(s)",
              f->path, f->offset, f->bytes_total, f->plan.attempts, f->resumes, f->restarts);
    else
        LOG_W(MOD, "%s failed: %s: %s", f->path, lade_strerror(err), f->reason);
}

/* What next, after an attempt ended or at the start. */
static void schedule(struct lade_fwfetch *f)
{
    struct lade_fwfetch_step s;
    lade_fwfetch_plan_next(&f->plan, lade_mono_ms(), lade_random_u32(), &s);
    switch (s.kind) {
    case LADE_FWFETCH_S_DONE:
        finish(f, LADE_OK, "");
        return;
    case LADE_FWFETCH_S_GIVE_UP:
        finish(f, s.err, s.reason);
        return;
    case LADE_FWFETCH_S_GO:
    default:
        set_state(f, ST_WAIT);
        arm_step(f, s.at_ms);
        return;
    }
}

/* The image bytes are all here: the hash decides. Returns LADE_OK (synced and recorded),
 * LADE_ERR_AUTH (hash mismatch: the bytes were dropped, *why says so) or a local error. */
static lade_err check_complete(struct lade_fwfetch *f, char *why, size_t cap)
{
    EVP_MD_CTX *copy = EVP_MD_CTX_new();
    unsigned int n = 0;
    bool ok = copy && EVP_MD_CTX_copy_ex(copy, f->md) && EVP_DigestFinal_ex(copy, f->digest, &n);
    EVP_MD_CTX_free(copy);
    if (!ok) {
        text(why, cap, "SHA-256 failed");
        return LADE_ERR_CRYPTO;
    }
    if (f->has_sha && CRYPTO_memcmp(f->digest, f->sha, sizeof f->sha) != 0) {
        text(why, cap, "image hash mismatch (%" PRIu64 " bytes): not the manifest's image, dropped",
             f->len);
        restart_at_zero(f, why);
        return LADE_ERR_AUTH;
    }
    lade_err err = LADE_OK;
    if (f->dest_fd >= 0 && ftruncate(f->dest_fd, (off_t)f->len) != 0)
        err = LADE_ERR_IO;
    if (err == LADE_OK)
        err = f->state_path ? persist(f) : sink_sync(f);
    if (err != LADE_OK)
        text(why, cap, "syncing the complete image failed: %s", lade_strerror(err));
    return err;
}

/* The attempt brought the last byte: record the outcome in the plan. */
static void complete(struct lade_fwfetch *f)
{
    char why[LADE_FWFETCH_REASON_MAX] = "";
    lade_err err = check_complete(f, why, sizeof why);
    if (err == LADE_OK)
        lade_fwfetch_plan_end(&f->plan, LADE_FWFETCH_O_DONE, 0, LADE_OK, NULL);
    else if (err == LADE_ERR_AUTH)
        lade_fwfetch_plan_end(&f->plan, LADE_FWFETCH_O_HOST_FAIL, 0, err, why);
    else
        lade_fwfetch_plan_end(&f->plan, LADE_FWFETCH_O_FATAL, 0, err, why);
}

/* ---- one attempt ---- */

static void start_hop(struct lade_fwfetch *f);

static void free_easy(struct lade_fwfetch *f)
{
    if (f->easy) {
        curl_multi_remove_handle(f->multi, f->easy);
        curl_easy_cleanup(f->easy);
        f->easy = NULL;
    }
    curl_slist_free_all(f->resolve_list);
    curl_slist_free_all(f->headers);
    f->resolve_list = f->headers = NULL;
}

/* Classifies a curl failure that was not ours. */
static void curl_failure(struct lade_fwfetch *f, CURLcode rc, enum lade_fwfetch_outcome *o,
                         lade_err *err, char *why, size_t cap)
{
    const char *detail = f->errbuf[0] ? f->errbuf : curl_easy_strerror(rc);
    *o = LADE_FWFETCH_O_TRANSIENT;
    switch (rc) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        /* Another address or a retry of the same name is not more trustworthy. */
        *o = LADE_FWFETCH_O_HOST_FAIL;
        *err = LADE_ERR_CERT;
        text(why, cap, "server certificate refused: %s", detail);
        return;
    case CURLE_SSL_CONNECT_ERROR:
        *o = LADE_FWFETCH_O_HOST_FAIL;
        *err = LADE_ERR_TLS;
        text(why, cap, "TLS handshake failed (not an https server?): %s", detail);
        return;
    case CURLE_SSL_CACERT_BADFILE:
        *o = LADE_FWFETCH_O_FATAL;
        *err = LADE_ERR_CONFIG;
        text(why, cap, "CA bundle %s: %s", f->ca_file, detail);
        return;
    case CURLE_UNSUPPORTED_PROTOCOL:
        *o = LADE_FWFETCH_O_HOST_FAIL;
        *err = LADE_ERR_PROTO;
        text(why, cap, "refused: %s", detail);
        return;
    case CURLE_OPERATION_TIMEDOUT:
        *err = LADE_ERR_TIMEOUT;
        text(why, cap, "timed out at %" PRIu64 " of %" PRIu64 " bytes: %s", f->offset, f->len,
             detail);
        return;
    case CURLE_COULDNT_RESOLVE_HOST:
        *err = LADE_ERR_RESOLVE;
        text(why, cap, "name not resolved: %s", detail);
        return;
    case CURLE_COULDNT_CONNECT:
        *err = LADE_ERR_IO;
        text(why, cap, "cannot connect: %s", detail);
        return;
    case CURLE_OK:
        /* The response ended cleanly but short (a close-delimited or chunked body). */
        *err = LADE_ERR_CLOSED;
        text(why, cap, "the body ended at %" PRIu64 " of %" PRIu64 " bytes", f->offset, f->len);
        return;
    default:
        *err = LADE_ERR_IO;
        text(why, cap, "transfer broke at %" PRIu64 " of %" PRIu64 " bytes: %s", f->offset, f->len,
             detail);
        return;
    }
}

/* Follows a redirect if allowed: true when a hop was started. */
static bool follow_redirect(struct lade_fwfetch *f, char *why, size_t cap)
{
    if (!f->h_location[0] || f->h_long_location) {
        text(why, cap, "HTTP %ld redirect without a usable Location", f->status);
        return false;
    }
    if (f->hops >= f->max_redirects) {
        text(why, cap, "more than %" PRIu32 " redirects", f->max_redirects);
        return false;
    }
    CURLU *u = curl_url();
    char *scheme = NULL, *user = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL;
    bool ok = false;
    size_t idx = 0;
    if (!u || curl_url_set(u, CURLUPART_URL, f->url, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_URL, f->h_location, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
        text(why, cap, "redirect to an unusable Location \"%.200s\" refused", f->h_location);
        goto out;
    }
    (void)curl_url_get(u, CURLUPART_USER, &user, 0);
    (void)curl_url_get(u, CURLUPART_PORT, &port, 0); /* CURLUE_NO_PORT: none given */
    (void)curl_url_get(u, CURLUPART_QUERY, &query, 0);
    if (lade_fwfetch_redirect_check(scheme, user, host, port, f->names, f->n_hosts, f->port, &idx,
                                    why, cap) != LADE_OK)
        goto out;
    /* Rebuilt from our own name for the host, so CURLOPT_RESOLVE matches it exactly. */
    int n = snprintf(f->url, sizeof f->url, "https://%s:%u%s%s%s", f->hosts[idx], (unsigned)f->port,
                     path, query ? "?" : "", query ? query : "");
    if (n < 0 || (size_t)n >= sizeof f->url) {
        text(why, cap, "redirect target too long");
        goto out;
    }
    ok = true;
    f->hops++;
    f->redirects++;
    note(f, "%s: HTTP %ld redirect to %s followed", host_name(f, f->cur_host), f->status, f->url);
    f->cur_host = idx;
out:
    curl_free(scheme);
    curl_free(user);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(u);
    return ok;
}

/* The attempt (or its current hop) ended: decide, record, schedule. rc: curl's result. */
static void attempt_done(struct lade_fwfetch *f, CURLcode rc)
{
    free_easy(f);
    enum lade_fwfetch_outcome o;
    lade_err err = LADE_OK;
    char why[LADE_FWFETCH_REASON_MAX] = "";
    if (f->aborted) {
        o = f->ab_outcome;
        err = f->ab_err;
        text(why, sizeof why, "%s", f->ab_reason);
        if (f->ab_restart)
            restart_at_zero(f, why);
    } else if (f->offset == f->len) {
        /* Every byte is here (even if the connection broke after the last one): the hash
         * decides. */
        if (rc != CURLE_OK)
            LOG_D(MOD, "all bytes received before: %s", curl_easy_strerror(rc));
        complete(f);
        schedule(f);
        return;
    } else if (f->have_verdict && f->v.kind != LADE_FWFETCH_V_BODY) {
        if (f->v.kind == LADE_FWFETCH_V_REDIRECT) {
            if (follow_redirect(f, why, sizeof why)) {
                set_state(f, ST_RESOLVE);
                arm_step(f, 0);
                return;
            }
            o = LADE_FWFETCH_O_HOST_FAIL;
            err = LADE_ERR_PROTO;
        } else {
            o = f->v.kind == LADE_FWFETCH_V_RETRY ? LADE_FWFETCH_O_TRANSIENT
                                                  : LADE_FWFETCH_O_HOST_FAIL;
            err = f->v.err;
            text(why, sizeof why, "%s", f->v.reason);
            if (f->v.restart)
                restart_at_zero(f, why);
        }
    } else {
        curl_failure(f, rc, &o, &err, why, sizeof why);
    }
    if (o != LADE_FWFETCH_O_FATAL && f->offset != f->synced && persist(f) != LADE_OK) {
        o = LADE_FWFETCH_O_FATAL;
        err = LADE_ERR_IO;
        text(why, sizeof why, "cannot save the download state to %s", f->state_path);
    }
    note(f, "%s: %s", host_name(f, f->cur_host), why);
    lade_fwfetch_plan_end(&f->plan, o, f->attempt_bytes, err, why);
    schedule(f);
}

/* Ends the current attempt from outside curl (deadline, resolve failure, setup failure). */
static void abort_attempt(struct lade_fwfetch *f, enum lade_fwfetch_outcome o, lade_err err,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void abort_attempt(struct lade_fwfetch *f, enum lade_fwfetch_outcome o, lade_err err,
                          const char *fmt, ...)
{
    if (f->q) {
        lade_dnsres_cancel(f->q);
        f->q = NULL;
    }
    f->aborted = true;
    f->ab_outcome = o;
    f->ab_err = err;
    f->ab_restart = false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->ab_reason, sizeof f->ab_reason, fmt, ap);
    va_end(ap);
    attempt_done(f, CURLE_ABORTED_BY_CALLBACK);
}

/* Sets our abort from inside a curl callback (curl then ends the transfer). */
static void abort_in_curl(struct lade_fwfetch *f, enum lade_fwfetch_outcome o, lade_err err,
                          bool restart, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void abort_in_curl(struct lade_fwfetch *f, enum lade_fwfetch_outcome o, lade_err err,
                          bool restart, const char *fmt, ...)
{
    if (f->aborted)
        return;
    f->aborted = true;
    f->ab_outcome = o;
    f->ab_err = err;
    f->ab_restart = restart;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->ab_reason, sizeof f->ab_reason, fmt, ap);
    va_end(ap);
}

/* ---- curl callbacks: the head and the body ---- */

static void head_reset(struct lade_fwfetch *f)
{
    f->head_done = false;
    f->status = 0;
    f->h_has_len = f->h_bad_len = f->h_chunked = f->h_long_location = false;
    f->h_len = 0;
    f->h_ctype[0] = f->h_crange[0] = f->h_cenc[0] = f->h_etag[0] = f->h_location[0] = '\0';
    f->have_verdict = false;
}

/* Copies a header value; false when it did not fit. */
static bool copy_value(char *dst, size_t cap, const char *v, size_t n)
{
    if (n >= cap) {
        memcpy(dst, v, cap - 1);
        dst[cap - 1] = '\0';
        return false;
    }
    memcpy(dst, v, n);
    dst[n] = '\0';
    return true;
}

static void head_end(struct lade_fwfetch *f)
{
    struct lade_fwfetch_head h = {
        .status = f->status,
        .has_length = f->h_has_len && !f->h_chunked,
        .length = f->h_len,
        .content_type = f->h_ctype[0] ? f->h_ctype : NULL,
        .content_range = f->h_crange[0] ? f->h_crange : NULL,
        .content_encoding = f->h_cenc[0] ? f->h_cenc : NULL,
        .etag = f->h_etag[0] ? f->h_etag : NULL,
    };
    const char *if_range = f->offset > 0 && f->etag[0] ? f->etag : NULL;
    lade_fwfetch_check_head(&h, f->offset, if_range, f->len, &f->v);
    if (f->v.kind == LADE_FWFETCH_V_BODY && f->h_bad_len) {
        f->v.kind = LADE_FWFETCH_V_HOST_FAIL;
        f->v.err = LADE_ERR_PROTO;
        text(f->v.reason, sizeof f->v.reason, "malformed or conflicting Content-Length");
    }
    f->have_verdict = true;
    if (f->v.kind != LADE_FWFETCH_V_BODY)
        return;
    if (f->v.restart)
        restart_at_zero(f, f->v.reason);
    bool strong = lade_fwfetch_etag_strong(h.etag);
    if (f->v.offset == 0) {
        snprintf(f->etag, sizeof f->etag, "%s", strong ? h.etag : "");
    } else {
        f->resumes++;
        note(f, "%s: resuming at %" PRIu64 " of %" PRIu64 " bytes (206, %s)",
             host_name(f, f->cur_host), f->offset, f->len, f->h_crange);
    }
    snprintf(f->served, sizeof f->served, "%s", host_name(f, f->cur_host));
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    struct lade_fwfetch *f = ud;
    size_t n = size * nitems;
    if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
        /* A status line starts a head (an interim 1xx one is followed by another). */
        head_reset(f);
        const char *sp = memchr(buf, ' ', n);
        if (sp && (size_t)(sp - buf) + 4 <= n) {
            long st = 0;
            for (int i = 1; i <= 3; i++)
                st = (sp[i] >= '0' && sp[i] <= '9') ? st * 10 + (sp[i] - '0') : -1000;
            f->status = st > 0 ? st : 0;
        }
        return n;
    }
    if (f->head_done)
        return n; /* trailers */
    size_t len = n;
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    if (len == 0) {
        if (f->status >= 100 && f->status < 200)
            return n; /* interim response: the real head follows */
        f->head_done = true;
        head_end(f);
        /* Anything but a body to take: stop here, before curl reads a byte of it. */
        return f->v.kind == LADE_FWFETCH_V_BODY ? n : 0;
    }
    const char *colon = memchr(buf, ':', len);
    if (!colon)
        return n;
    size_t nl = (size_t)(colon - buf);
    const char *v = colon + 1;
    size_t vn = len - nl - 1;
    while (vn && (*v == ' ' || *v == '\t')) {
        v++;
        vn--;
    }
    while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
        vn--;
#define IS(name) (nl == sizeof(name) - 1 && strncasecmp(buf, name, nl) == 0)
    if (IS("Content-Length")) {
        uint64_t x = 0;
        bool ok = vn > 0 && vn <= 19;
        for (size_t i = 0; ok && i < vn; i++) {
            ok = v[i] >= '0' && v[i] <= '9';
            x = x * 10 + (uint64_t)(v[i] - '0');
        }
        if (!ok || (f->h_has_len && x != f->h_len))
            f->h_bad_len = true;
        f->h_has_len = true;
        f->h_len = x;
    } else if (IS("Content-Type")) {
        (void)copy_value(f->h_ctype, sizeof f->h_ctype, v, vn);
    } else if (IS("Content-Range")) {
        (void)copy_value(f->h_crange, sizeof f->h_crange, v, vn);
    } else if (IS("Content-Encoding")) {
        (void)copy_value(f->h_cenc, sizeof f->h_cenc, v, vn);
    } else if (IS("Transfer-Encoding")) {
        f->h_chunked = true; /* then Content-Length does not delimit the body (RFC 9112 §6.3) */
    } else if (IS("ETag")) {
        if (!copy_value(f->h_etag, sizeof f->h_etag, v, vn))
            f->h_etag[0] = '\0'; /* too long: no validator */
    } else if (IS("Location")) {
        f->h_long_location = !copy_value(f->h_location, sizeof f->h_location, v, vn);
    }
#undef IS
    return n;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct lade_fwfetch *f = ud;
    size_t n = size * nmemb;
    if (!f->have_verdict || f->v.kind != LADE_FWFETCH_V_BODY || f->aborted)
        return 0;
    uint64_t room = f->len - f->offset;
    bool over = n > room;
    size_t take = over ? (size_t)room : n;
    /* Endless data (TUF): never look at more than one byte past the manifest's length. */
    uint64_t consumed = over ? room + 1 : n;
    f->bytes_total += consumed;
    if (lade_fwfetch_plan_bytes(&f->plan, consumed) != LADE_OK) {
        abort_in_curl(f, LADE_FWFETCH_O_TRANSIENT, LADE_ERR_TOO_BIG, false,
                      "byte budget of %" PRIu64 " bytes used up", f->plan.lim.max_bytes);
        return 0;
    }
    if (take) {
        lade_err err = f->sink.write(f->sink.ud, f->offset, (const uint8_t *)ptr, take);
        if (err != LADE_OK) {
            abort_in_curl(f, LADE_FWFETCH_O_FATAL, err, false,
                          "writing the image at %" PRIu64 " failed: %s", f->offset,
                          lade_strerror(err));
            return 0;
        }
        EVP_DigestUpdate(f->md, ptr, take);
        f->offset += take;
        f->attempt_bytes += take;
    }
    if (over) {
        abort_in_curl(f, LADE_FWFETCH_O_HOST_FAIL, LADE_ERR_TOO_BIG, true,
                      "server sent more than the manifest's %" PRIu64
                      " bytes (stopped at byte %" PRIu64 "): refused",
                      f->len, f->len + 1);
        return 0;
    }
    if (f->state_path && f->offset - f->synced >= f->persist_bytes && persist(f) != LADE_OK) {
        abort_in_curl(f, LADE_FWFETCH_O_FATAL, LADE_ERR_IO, false,
                      "cannot save the download state to %s", f->state_path);
        return 0;
    }
    return n;
}

/* ---- curl on the loop ---- */

static void report(struct lade_fwfetch *f)
{
    if (!f->progress || f->offset == f->reported)
        return;
    f->reported = f->offset;
    struct lade_fwfetch_progress p = {
        .offset = f->offset,
        .length = f->len,
        .bytes_total = f->bytes_total,
        .host = host_name(f, f->cur_host),
        .attempt = f->plan.attempts,
    };
    f->progress(f->ud, &p);
}

static void drain(struct lade_fwfetch *f)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(f->multi, &left))) {
        if (m->msg == CURLMSG_DONE && m->easy_handle == f->easy)
            attempt_done(f, m->data.result);
    }
}

/* Runs curl for one event, then our follow-ups (never a user callback that may free us: done
 * comes from t_step). */
static void kick(struct lade_fwfetch *f, curl_socket_t fd, int ev)
{
    int running = 0;
    CURLMcode mc = curl_multi_socket_action(f->multi, fd, ev, &running);
    if (mc != CURLM_OK)
        LOG_W(MOD, "curl_multi_socket_action: %s", curl_multi_strerror(mc));
    drain(f);
    report(f);
}

static void on_io(struct lade_loop *loop, int fd, uint32_t events, void *ud)
{
    (void)loop;
    int ev = 0;
    if (events & (LADE_IO_READ | LADE_IO_HUP))
        ev |= CURL_CSELECT_IN;
    if (events & LADE_IO_WRITE)
        ev |= CURL_CSELECT_OUT;
    if (events & LADE_IO_ERROR)
        ev |= CURL_CSELECT_ERR;
    kick(ud, fd, ev);
}

static void on_curl_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    kick(ud, CURL_SOCKET_TIMEOUT, 0);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)e;
    struct lade_fwfetch *f = userp;
    if (what == CURL_POLL_REMOVE) {
        if (socketp) {
            lade_loop_unwatch(f->loop, s);
            curl_multi_assign(f->multi, s, NULL);
        }
        return 0;
    }
    uint32_t interest =
        ((what & CURL_POLL_IN) ? LADE_IO_READ : 0u) | ((what & CURL_POLL_OUT) ? LADE_IO_WRITE : 0u);
    if (!socketp) {
        if (lade_loop_watch(f->loop, s, interest, on_io, f) != LADE_OK) {
            LOG_E(MOD, "cannot watch fd %d", s);
            return -1;
        }
        curl_multi_assign(f->multi, s, f);
        return 0;
    }
    if (lade_loop_modify(f->loop, s, interest) != LADE_OK) {
        LOG_E(MOD, "cannot change the watch on fd %d", s);
        return -1;
    }
    return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    struct lade_fwfetch *f = userp;
    if (timeout_ms < 0) {
        lade_timer_cancel(f->loop, &f->t_curl);
        return 0;
    }
    return lade_timer_arm_in(f->loop, &f->t_curl, (uint64_t)timeout_ms) == LADE_OK ? 0 : -1;
}

/* ---- resolving and starting a hop ---- */

static void begin_transfer(struct lade_fwfetch *f, const struct lade_sockaddr *addrs, size_t n)
{
    const char *host = host_name(f, f->cur_host);
    char entry[LADE_FWFETCH_HOST_MAX + 16 + ADDRS_MAX * (INET6_ADDRSTRLEN + 3)];
    int w = snprintf(entry, sizeof entry, "%s:%u:", host, (unsigned)f->port);
    for (size_t i = 0; i < n && i < ADDRS_MAX && w > 0 && (size_t)w < sizeof entry; i++) {
        char ip[INET6_ADDRSTRLEN];
        bool v6 = addrs[i].ss.ss_family == AF_INET6;
        const void *src = v6 ? (const void *)&((const struct sockaddr_in6 *)&addrs[i].ss)->sin6_addr
                             : (const void *)&((const struct sockaddr_in *)&addrs[i].ss)->sin_addr;
        if (!inet_ntop(addrs[i].ss.ss_family, src, ip, sizeof ip))
            continue;
        w += snprintf(entry + w, sizeof entry - (size_t)w, "%s%s%s%s", i ? "," : "", v6 ? "[" : "",
                      ip, v6 ? "]" : "");
    }
    if (w < 0 || (size_t)w >= sizeof entry) {
        abort_attempt(f, LADE_FWFETCH_O_TRANSIENT, LADE_ERR_NOSPACE, "too many addresses");
        return;
    }
    char range[32], if_range[LADE_FWFETCH_ETAG_MAX + 16];
    if (f->offset > 0) {
        snprintf(range, sizeof range, "%" PRIu64 "-", f->offset);
        snprintf(if_range, sizeof if_range, "If-Range: %s", f->etag);
    }
    CURL *e = curl_easy_init();
    f->resolve_list = curl_slist_append(NULL, entry);
    if (f->offset > 0)
        f->headers = curl_slist_append(NULL, if_range);
    if (!e || !f->resolve_list || (f->offset > 0 && !f->headers)) {
        curl_easy_cleanup(e);
        abort_attempt(f, LADE_FWFETCH_O_FATAL, LADE_ERR_NOMEM, "out of memory");
        return;
    }
    f->easy = e;
    f->errbuf[0] = '\0';
    head_reset(f);
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(e, opt, val);                                                    \
    } while (0)
    SET(CURLOPT_URL, f->url);
    SET(CURLOPT_PRIVATE, f);
    SET(CURLOPT_ERRORBUFFER, f->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    /* https only, for the request and (were curl to follow) redirects; we follow ourselves. */
    SET(CURLOPT_PROTOCOLS_STR, "https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    /* Trust the configured bundle only: clear the compiled-in CA directory (Debian:
     * /etc/ssl/certs), so a public CA cannot vouch for a firmware host (docs/transport.md). */
    SET(CURLOPT_CAINFO, f->ca_file);
    SET(CURLOPT_CAPATH, NULL);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    /* No proxy, whatever http(s)_proxy/ALL_PROXY say. */
    SET(CURLOPT_PROXY, "");
    SET(CURLOPT_NOPROXY, "*");
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    SET(CURLOPT_RESOLVE, f->resolve_list);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)f->connect_ms);
    SET(CURLOPT_LOW_SPEED_LIMIT, (long)f->low_speed_bps);
    SET(CURLOPT_LOW_SPEED_TIME, (long)f->low_speed_s);
    SET(CURLOPT_USERAGENT, "lade-fwfetch/1");
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, f);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, f);
    if (f->offset > 0) {
        SET(CURLOPT_RANGE, range);
        SET(CURLOPT_HTTPHEADER, f->headers);
    }
#undef SET
    if (rc != CURLE_OK) {
        abort_attempt(f, LADE_FWFETCH_O_FATAL, LADE_ERR_CONFIG, "curl: %s", curl_easy_strerror(rc));
        return;
    }
    CURLMcode mc = curl_multi_add_handle(f->multi, e);
    if (mc != CURLM_OK) {
        abort_attempt(f, LADE_FWFETCH_O_FATAL, LADE_ERR_NOMEM, "curl: %s", curl_multi_strerror(mc));
        return;
    }
    set_state(f, ST_TRANSFER);
    LOG_D(MOD, "GET %s%s%s", f->url, f->offset ? " from " : "", f->offset ? range : "");
}

static void on_resolved(void *ud, lade_err err, const struct lade_sockaddr *addrs, size_t n,
                        const struct lade_dnsres_info *info)
{
    (void)info;
    struct lade_fwfetch *f = ud;
    f->q = NULL;
    if (err == LADE_ERR_NOT_FOUND && f->family == AF_INET) {
        f->family = AF_INET6;
        if (lade_dnsres_resolve(f->dnsres, host_name(f, f->cur_host), AF_INET6, on_resolved, f,
                                &f->q) == LADE_OK)
            return;
    }
    if (err != LADE_OK) {
        abort_attempt(f, LADE_FWFETCH_O_TRANSIENT, LADE_ERR_RESOLVE, "name not resolved: %s",
                      lade_strerror(err));
        return;
    }
    begin_transfer(f, addrs, n);
}

/* Resolves the current hop's host, then starts its request. */
static void start_hop(struct lade_fwfetch *f)
{
    const char *host = host_name(f, f->cur_host);
    set_state(f, ST_RESOLVE);
    if (f->dnsres) {
        f->family = AF_INET;
        lade_err err = lade_dnsres_resolve(f->dnsres, host, AF_INET, on_resolved, f, &f->q);
        if (err != LADE_OK)
            abort_attempt(f, LADE_FWFETCH_O_TRANSIENT, LADE_ERR_RESOLVE, "name not resolved: %s",
                          lade_strerror(err));
        return;
    }
    struct lade_sockaddr addrs[ADDRS_MAX];
    size_t n = 0;
    lade_err err = lade_sockaddr_parse(host, &addrs[0]);
    if (err == LADE_OK)
        n = 1;
    else
        err = lade_resolve_hosts_buf(f->hosts_text, f->hosts_len, host, addrs, ADDRS_MAX, &n);
    if (err != LADE_OK && err != LADE_ERR_NOSPACE) {
        abort_attempt(f, LADE_FWFETCH_O_TRANSIENT, LADE_ERR_RESOLVE,
                      "name not resolved: not in the hosts map");
        return;
    }
    begin_transfer(f, addrs, n);
}

static void start_attempt(struct lade_fwfetch *f)
{
    if (f->offset > 0 && !f->etag[0])
        restart_at_zero(f, "no strong ETag for the bytes held, so no safe resume: restarting "
                           "from 0");
    f->cur_host = f->plan.host;
    f->hops = 0;
    f->attempt_bytes = 0;
    f->aborted = false;
    snprintf(f->url, sizeof f->url, "https://%s:%u%s", host_name(f, f->cur_host), (unsigned)f->port,
             f->path);
    lade_fwfetch_plan_begin(&f->plan);
    LOG_D(MOD, "attempt %" PRIu32 " on %s from %" PRIu64, f->plan.attempts,
          host_name(f, f->cur_host), f->offset);
    start_hop(f);
}

/* ---- re-hashing what a previous run wrote ---- */

static void rehash_step(struct lade_fwfetch *f)
{
    if (!f->rehash_buf)
        f->rehash_buf = malloc(LADE_FWFETCH_REHASH_CHUNK);
    uint64_t left = f->rehash_to - f->offset;
    size_t n = left < LADE_FWFETCH_REHASH_CHUNK ? (size_t)left : LADE_FWFETCH_REHASH_CHUNK;
    lade_err err =
        f->rehash_buf ? f->sink.read(f->sink.ud, f->offset, f->rehash_buf, n) : LADE_ERR_NOMEM;
    if (err != LADE_OK) {
        char why[LADE_FWFETCH_REASON_MAX];
        text(why, sizeof why,
             "cannot read back the %" PRIu64 " bytes the state file records (%s): "
             "restarting from 0",
             f->rehash_to, lade_strerror(err));
        restart_at_zero(f, why);
        f->resumed_from = 0;
    } else {
        EVP_DigestUpdate(f->md, f->rehash_buf, n);
        f->offset += n;
        if (f->offset < f->rehash_to) {
            arm_step(f, 0); /* the next chunk in a later round: the loop stays responsive */
            return;
        }
        f->synced = f->offset;
        f->reported = f->offset;
    }
    free(f->rehash_buf);
    f->rehash_buf = NULL;
    if (f->offset == f->len) {
        /* Done by an earlier run: the hash decides, no network. A mismatch is the local copy's
         * fault, not a host's: start over from 0. */
        char why[LADE_FWFETCH_REASON_MAX] = "";
        lade_err e = check_complete(f, why, sizeof why);
        if (e == LADE_OK) {
            note(f, "image already complete (state file): hash checked, nothing to fetch");
            lade_fwfetch_plan_end(&f->plan, LADE_FWFETCH_O_DONE, 0, LADE_OK, NULL);
        } else if (e != LADE_ERR_AUTH) {
            lade_fwfetch_plan_end(&f->plan, LADE_FWFETCH_O_FATAL, 0, e, why);
        } else {
            f->resumed_from = 0;
        }
    } else if (f->offset > 0) {
        note(f, "resuming %s at %" PRIu64 " of %" PRIu64 " bytes (state file, ETag %s, from %s)",
             f->path, f->offset, f->len, f->etag, host_name(f, f->plan.first));
    }
    schedule(f);
}

/* ---- the loop's timers ---- */

static void on_step(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_fwfetch *f = ud;
    switch (f->state) {
    case ST_REHASH:
        rehash_step(f);
        break;
    case ST_WAIT:
        start_attempt(f);
        break;
    case ST_RESOLVE:
        start_hop(f); /* a redirect hop */
        break;
    case ST_DONE: {
        struct lade_fwfetch_result res;
        lade_fwfetch_stats(f, &res);
        f->done(f->ud, f->result, f->reason, &res); /* may free f: nothing after this */
        return;
    }
    case ST_TRANSFER:
    default:
        break;
    }
    report(f);
}

static void on_deadline(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_fwfetch *f = ud;
    if (f->state == ST_DONE)
        return;
    if (f->state == ST_TRANSFER || f->state == ST_RESOLVE) {
        abort_attempt(f, LADE_FWFETCH_O_TRANSIENT, LADE_ERR_TIMEOUT,
                      "time budget used up at %" PRIu64 " of %" PRIu64 " bytes", f->offset, f->len);
        return;
    }
    free(f->rehash_buf);
    f->rehash_buf = NULL;
    schedule(f); /* the plan gives up with LADE_ERR_TIMEOUT */
}

/* ---- public ---- */

static void *dup_or_null(const char *s, bool *fail)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *fail = true;
    return d;
}

static lade_err check_cfg(const struct lade_fwfetch_cfg *c)
{
    if (!c->hosts || c->n_hosts == 0 || c->n_hosts > LADE_FWFETCH_MAX_HOSTS || !c->path ||
        !lade_fwfetch_path_valid(c->path) || !c->ca_file || c->expected_len == 0 || !c->done ||
        (!c->sink.write && !c->dest_path) || (!c->dnsres && !c->hosts_text))
        return LADE_ERR_INVAL;
    for (size_t i = 0; i < c->n_hosts; i++)
        if (!lade_fwfetch_host_valid(c->hosts[i])) {
            LOG_E(MOD, "firmware host \"%s\": a host name only (no scheme, no port)",
                  c->hosts[i] ? c->hosts[i] : "(null)");
            return LADE_ERR_INVAL;
        }
    if (access(c->ca_file, R_OK) != 0) {
        LOG_E(MOD, "CA bundle %s: %s", c->ca_file, strerror(errno));
        return LADE_ERR_CONFIG;
    }
    return LADE_OK;
}

/* Reads the state file: the offset to resume from (0: none) and its ETag and host. */
static void load_state(struct lade_fwfetch *f, size_t *first)
{
    *first = 0;
    if (!f->state_path)
        return;
    char buf[LADE_FWFETCH_STATE_MAX + 1];
    int fd = open(f->state_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    struct lade_fwfetch_state st;
    if (n <= 0 || lade_fwfetch_state_decode(buf, (size_t)n, &st) != LADE_OK) {
        LOG_W(MOD, "state %s unreadable: starting from 0", f->state_path);
        return;
    }
    if (strcmp(st.path, f->path) != 0 || st.length != f->len || st.has_sha256 != f->has_sha ||
        (f->has_sha && memcmp(st.sha256, f->sha, sizeof f->sha) != 0)) {
        LOG_I(MOD, "state %s is for another image: starting from 0", f->state_path);
        return;
    }
    if (!f->sink.read || st.offset == 0)
        return;
    if (!st.etag[0] && st.offset < st.length) {
        LOG_I(MOD, "state %s has no ETag: starting from 0", f->state_path);
        return;
    }
    for (size_t i = 0; i < f->n_hosts; i++)
        if (strcasecmp(f->hosts[i], st.host) == 0)
            *first = i;
    snprintf(f->etag, sizeof f->etag, "%s", st.etag);
    snprintf(f->served, sizeof f->served, "%s", st.host);
    f->rehash_to = st.offset;
}

lade_err lade_fwfetch_new(struct lade_loop *loop, const struct lade_fwfetch_cfg *cfg,
                          struct lade_fwfetch **out)
{
    if (!loop || !cfg || !out)
        return LADE_ERR_INVAL;
    *out = NULL;
    lade_err err = check_cfg(cfg);
    if (err != LADE_OK)
        return err;
    static bool curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return LADE_ERR_NOMEM;
        curl_ready = true;
    }
    struct lade_fwfetch *f = calloc(1, sizeof *f);
    if (!f)
        return LADE_ERR_NOMEM;
    f->loop = loop;
    f->dest_fd = -1;
    lade_timer_init(&f->t_curl, on_curl_timer, f);
    lade_timer_init(&f->t_step, on_step, f);
    lade_timer_init(&f->t_deadline, on_deadline, f);
    bool fail = false;
    for (size_t i = 0; i < cfg->n_hosts; i++) {
        f->hosts[i] = dup_or_null(cfg->hosts[i], &fail);
        f->names[i] = f->hosts[i];
    }
    f->n_hosts = cfg->n_hosts;
    f->port = cfg->port ? cfg->port : LADE_FWFETCH_PORT;
    snprintf(f->path, sizeof f->path, "%s", cfg->path);
    f->ca_file = dup_or_null(cfg->ca_file, &fail);
    f->len = cfg->expected_len;
    if (cfg->expected_sha256) {
        f->has_sha = true;
        memcpy(f->sha, cfg->expected_sha256, sizeof f->sha);
    }
    f->state_path = dup_or_null(cfg->state_path, &fail);
    f->persist_bytes =
        (uint64_t)(cfg->persist_kib ? cfg->persist_kib : LADE_FWFETCH_PERSIST_KIB) * 1024u;
    f->connect_ms = cfg->connect_ms ? cfg->connect_ms : LADE_FWFETCH_CONNECT_MS;
    f->low_speed_bps = cfg->low_speed_bps ? cfg->low_speed_bps : LADE_FWFETCH_LOW_SPEED_BPS;
    f->low_speed_s = cfg->low_speed_s ? cfg->low_speed_s : LADE_FWFETCH_LOW_SPEED_S;
    f->max_redirects = cfg->max_redirects ? cfg->max_redirects : LADE_FWFETCH_MAX_REDIRECTS;
    f->dnsres = cfg->dnsres;
    if (!cfg->dnsres) {
        f->hosts_len = cfg->hosts_len ? cfg->hosts_len : strlen(cfg->hosts_text);
        f->hosts_text = malloc(f->hosts_len + 1);
        if (f->hosts_text) {
            memcpy(f->hosts_text, cfg->hosts_text, f->hosts_len);
            f->hosts_text[f->hosts_len] = '\0';
        } else {
            fail = true;
        }
    }
    f->progress = cfg->progress;
    f->note = cfg->note;
    f->done = cfg->done;
    f->ud = cfg->ud;
    f->md = EVP_MD_CTX_new();
    f->multi = curl_multi_init();
    if (fail || !f->md || !f->multi) {
        err = LADE_ERR_NOMEM;
        goto out;
    }
    hash_reset(f);
    if (cfg->sink.write) {
        f->sink = cfg->sink;
    } else {
        f->dest_fd = open(cfg->dest_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (f->dest_fd < 0) {
            LOG_E(MOD, "%s: %s", cfg->dest_path, strerror(errno));
            err = LADE_ERR_IO;
            goto out;
        }
        f->sink = (struct lade_fwfetch_sink){file_write, file_sync, file_read, f};
    }
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);

    size_t first = 0;
    load_state(f, &first);
    uint64_t max_bytes = cfg->max_bytes;
    if (!max_bytes) {
        uint64_t factor = cfg->bytes_factor ? cfg->bytes_factor : LADE_FWFETCH_BYTES_FACTOR;
        max_bytes = f->len > (UINT64_MAX - LADE_FWFETCH_BYTES_SLACK) / factor
                        ? UINT64_MAX
                        : f->len * factor + LADE_FWFETCH_BYTES_SLACK;
    }
    struct lade_fwfetch_limits lim = {
        .retries_per_host = cfg->retries_per_host,
        .max_attempts = cfg->max_attempts,
        .retry_delay_ms = cfg->retry_delay_ms,
        .retry_delay_max_ms = cfg->retry_delay_max_ms,
        .max_bytes = max_bytes,
        .total_ms = cfg->total_ms,
        .min_progress = LADE_FWFETCH_MIN_PROGRESS,
    };
    f->t_start = lade_mono_ms();
    lade_fwfetch_plan_init(&f->plan, &lim, f->names, f->n_hosts, first, f->t_start);
    f->cur_host = f->plan.host;
    f->resumed_from = f->rehash_to;
    set_state(f, f->rehash_to > 0 ? ST_REHASH : ST_WAIT);
    if (lade_timer_arm(loop, &f->t_deadline, f->plan.deadline_ms) != LADE_OK ||
        lade_timer_arm(loop, &f->t_step, 0) != LADE_OK) {
        err = LADE_ERR_NOMEM;
        goto out;
    }
    LOG_I(MOD, "fetching %s (%" PRIu64 " bytes) from %s%s, port %u%s", f->path, f->len,
          f->hosts[f->plan.first], f->n_hosts > 1 ? " and the other hosts" : "", (unsigned)f->port,
          f->rehash_to ? " (state file: resume)" : "");
    *out = f;
    return LADE_OK;
out:
    lade_fwfetch_free(f);
    return err;
}

void lade_fwfetch_free(struct lade_fwfetch *f)
{
    if (!f)
        return;
    if (f->q)
        lade_dnsres_cancel(f->q);
    f->q = NULL;
    if (f->multi)
        free_easy(f);
    /* Keep what was taken: the next run resumes from it (a clean stop, e.g. a car started
     * charging, loses nothing). */
    if (f->state != ST_REHASH && f->state != ST_DONE && f->offset != f->synced && f->md)
        (void)persist(f);
    lade_timer_cancel(f->loop, &f->t_curl);
    lade_timer_cancel(f->loop, &f->t_step);
    lade_timer_cancel(f->loop, &f->t_deadline);
    if (f->multi)
        curl_multi_cleanup(f->multi); /* closes cached connections: sock_cb unwatches them */
    lade_timer_cancel(f->loop, &f->t_curl);
    EVP_MD_CTX_free(f->md);
    if (f->dest_fd >= 0)
        close(f->dest_fd);
    for (size_t i = 0; i < f->n_hosts; i++)
        free(f->hosts[i]);
    free(f->ca_file);
    free(f->state_path);
    free(f->hosts_text);
    free(f->rehash_buf);
    free(f);
}

void lade_fwfetch_stats(const struct lade_fwfetch *f, struct lade_fwfetch_result *out)
{
    memset(out, 0, sizeof *out);
    if (!f)
        return;
    out->length = f->offset;
    if (f->state == ST_DONE && f->result == LADE_OK)
        memcpy(out->sha256, f->digest, sizeof out->sha256);
    out->bytes_total = f->bytes_total;
    out->resumed_from = f->resumed_from;
    out->attempts = f->plan.attempts;
    out->resumes = f->resumes;
    out->restarts = f->restarts;
    out->redirects = f->redirects;
    out->host = f->served;
    uint64_t end = f->state == ST_DONE ? f->t_end : lade_mono_ms();
    out->elapsed_ms = (uint32_t)(end - f->t_start);
}
