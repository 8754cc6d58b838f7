/* HTTP server on lade's event loop (include/lade/http.h).
 *
 * libmicrohttpd runs in "external epoll" mode (MHD_USE_EPOLL, no thread): its epoll fd is
 * watched by the loop and MHD_run is called when it is readable and when MHD's own timeout
 * passes. A request the handler keeps is suspended (MHD_suspend_connection); answering it
 * resumes the connection, and MHD calls the access handler again, which queues the answer.
 */
#include "lade/http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "lade/clock.h"
#include "lade/codec.h"
#include "lade/log.h"
#include "lade/loop.h"

#define MOD "http"

struct lade_http_req {
    struct lade_http *h;
    struct MHD_Connection *conn;
    char method[16];
    char *path;
    char client[INET6_ADDRSTRLEN];
    char *body;
    size_t body_len;
    bool too_big;
    bool stream_decided, streaming;
    bool dispatched, suspended, answered, queued, completed;
    struct MHD_Response *resp;
    unsigned status;
    void *data;
    struct lade_http_req *next, *prev; /* pending (dispatched, not yet queued) */
};

struct lade_http {
    struct lade_loop *loop;
    struct MHD_Daemon *d;
    int epfd;
    uint16_t port;
    size_t max_body;
    lade_http_handler handler;
    bool (*stream_begin)(void *ud, struct lade_http_req *r);
    void (*stream_data)(void *ud, struct lade_http_req *r, const void *p, size_t n);
    void (*stream_abort)(void *ud, struct lade_http_req *r);
    void *ud;
    struct lade_timer timer;
    struct lade_http_req *pending;
    bool in_run;
};

static void schedule(struct lade_http *h);

static void run(struct lade_http *h)
{
    if (h->in_run)
        return;
    h->in_run = true;
    if (MHD_run(h->d) != MHD_YES)
        LOG_D(MOD, "MHD_run reported an error");
    h->in_run = false;
    schedule(h);
}

static void on_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    run(ud);
}

static void on_io(struct lade_loop *loop, int fd, uint32_t events, void *ud)
{
    (void)loop;
    (void)fd;
    (void)events;
    run(ud);
}

static void schedule(struct lade_http *h)
{
    MHD_UNSIGNED_LONG_LONG ms = 0;
    if (MHD_get_timeout(h->d, &ms) == MHD_YES) {
        if (lade_timer_arm(h->loop, &h->timer, lade_mono_ms() + ms) != LADE_OK)
            LOG_E(MOD, "cannot arm the server's timer");
    } else {
        lade_timer_cancel(h->loop, &h->timer);
    }
}

static void unlink_pending(struct lade_http_req *r)
{
    struct lade_http *h = r->h;
    if (r->prev)
        r->prev->next = r->next;
    else if (h->pending == r)
        h->pending = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->next = r->prev = NULL;
}

static void req_free(struct lade_http_req *r)
{
    if (r->streaming && !r->dispatched && r->h->stream_abort)
        r->h->stream_abort(r->h->ud, r); /* the body never completed: its handler never ran */
    if (r->resp)
        MHD_destroy_response(r->resp);
    free(r->path);
    free(r->body);
    free(r);
}

/* Queues the answer prepared by lade_http_reply. */
static enum MHD_Result queue(struct lade_http_req *r)
{
    r->queued = true;
    unlink_pending(r);
    enum MHD_Result ret = MHD_queue_response(r->conn, r->status, r->resp);
    MHD_destroy_response(r->resp);
    r->resp = NULL;
    return ret;
}

static void simple(struct lade_http_req *r, unsigned status, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "Message", msg);
    lade_http_reply_json_take(r, status, o);
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    struct lade_http *h = cls;
    (void)version;
    struct lade_http_req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        r->h = h;
        r->conn = conn;
        snprintf(r->method, sizeof r->method, "%s", method);
        r->path = strdup(url ? url : "/");
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (ci && ci->client_addr) {
            const struct sockaddr *sa = ci->client_addr;
            if (sa->sa_family == AF_INET)
                inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
                          r->client, sizeof r->client);
            else if (sa->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                          r->client, sizeof r->client);
        }
        *con_cls = r;
        if (!r->path)
            return MHD_NO;
        return MHD_YES;
    }
    if (*upload_size && !r->stream_decided) {
        r->stream_decided = true;
        r->streaming = h->stream_begin && h->stream_data && h->stream_begin(h->ud, r);
    }
    if (*upload_size && r->streaming) {
        h->stream_data(h->ud, r, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        /* Keep reading a too-big body (so the client sees the 413, not a reset) but not storing. */
        if (!r->too_big && r->body_len + *upload_size <= h->max_body) {
            char *nb = realloc(r->body, r->body_len + *upload_size + 1);
            if (!nb)
                return MHD_NO;
            memcpy(nb + r->body_len, upload, *upload_size);
            r->body = nb;
            r->body_len += *upload_size;
            r->body[r->body_len] = 0;
        } else {
            r->too_big = true;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->answered && !r->queued)
        return queue(r); /* resumed, or answered inside the handler */
    if (r->dispatched)
        return MHD_YES; /* spurious call while suspended */
    r->dispatched = true;
    if (!r->body) {
        r->body = calloc(1, 1);
        if (!r->body)
            return MHD_NO;
    }
    /* pending until queued, so lade_http_free can answer it */
    r->next = h->pending;
    if (h->pending)
        h->pending->prev = r;
    h->pending = r;
    if (r->too_big)
        simple(r, 413, "request body too large");
    else
        h->handler(h->ud, r);
    if (r->answered)
        return queue(r);
    r->suspended = true;
    MHD_suspend_connection(conn);
    return MHD_YES;
}

static void completed_cb(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    struct lade_http_req *r = *con_cls;
    if (!r)
        return;
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        LOG_D(MOD, "%s %s ended early (%d)", r->method, r->path, (int)toe);
    *con_cls = NULL;
    if (!r->answered) {
        /* Client gone while kept: the owner still answers; free then. */
        r->completed = true;
        r->conn = NULL;
        return;
    }
    unlink_pending(r);
    req_free(r);
}

lade_err lade_http_new(struct lade_http **out, const struct lade_http_opts *o)
{
    *out = NULL;
    if (!o || !o->loop || !o->handler)
        return LADE_ERR_INVAL;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(o->port);
    if (inet_pton(AF_INET, o->bind_addr ? o->bind_addr : "127.0.0.1", &sa.sin_addr) != 1)
        return LADE_ERR_INVAL;
    struct lade_http *h = calloc(1, sizeof *h);
    if (!h)
        return LADE_ERR_NOMEM;
    h->loop = o->loop;
    h->handler = o->handler;
    h->stream_begin = o->stream_begin;
    h->stream_data = o->stream_data;
    h->stream_abort = o->stream_abort;
    h->ud = o->ud;
    h->max_body = o->max_body ? o->max_body : 64 * 1024;
    lade_timer_init(&h->timer, on_timer, h);
    h->d = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, o->port, NULL, NULL, access_cb, h,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(o->max_conns ? o->max_conns : 256), MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)(o->idle_timeout_s ? o->idle_timeout_s : 30), MHD_OPTION_NOTIFY_COMPLETED,
        completed_cb, h, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(128 * 1024), MHD_OPTION_END);
    if (!h->d) {
        LOG_E(MOD, "cannot listen on %s:%u", o->bind_addr ? o->bind_addr : "127.0.0.1",
              (unsigned)o->port);
        free(h);
        return LADE_ERR_IO;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
    const union MHD_DaemonInfo *pi = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->epfd = di ? di->epoll_fd : -1;
    h->port = pi ? pi->port : o->port;
    lade_err err =
        h->epfd >= 0 ? lade_loop_watch(h->loop, h->epfd, LADE_IO_READ, on_io, h) : LADE_ERR_IO;
    if (err) {
        MHD_stop_daemon(h->d);
        free(h);
        return err;
    }
    schedule(h);
    *out = h;
    return LADE_OK;
}

uint16_t lade_http_port(const struct lade_http *h)
{
    return h->port;
}

void lade_http_free(struct lade_http *h)
{
    if (!h)
        return;
    /* Answer what is still kept, so MHD can finish those connections. */
    while (h->pending) {
        struct lade_http_req *r = h->pending;
        unlink_pending(r);
        if (r->completed && !r->answered) {
            req_free(r); /* client gone */
            continue;
        }
        if (!r->answered)
            simple(r, 503, "the portal is stopping"); /* resumes it; MHD frees it */
    }
    lade_timer_cancel(h->loop, &h->timer);
    lade_loop_unwatch(h->loop, h->epfd);
    MHD_stop_daemon(h->d);
    free(h);
}

const char *lade_http_method(const struct lade_http_req *r)
{
    return r->method;
}

const char *lade_http_path(const struct lade_http_req *r)
{
    return r->path;
}

const char *lade_http_client(const struct lade_http_req *r)
{
    return r->client;
}

const char *lade_http_header(const struct lade_http_req *r, const char *name)
{
    return r->conn ? MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name) : NULL;
}

const char *lade_http_query(const struct lade_http_req *r, const char *name)
{
    return r->conn ? MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name) : NULL;
}

const char *lade_http_body(const struct lade_http_req *r, size_t *len)
{
    if (len)
        *len = r->body_len;
    return r->body ? r->body : "";
}

bool lade_http_answered(const struct lade_http_req *r)
{
    return r->answered;
}

void lade_http_set_data(struct lade_http_req *r, void *data)
{
    r->data = data;
}

void *lade_http_data(const struct lade_http_req *r)
{
    return r->data;
}

static void add_headers(struct MHD_Response *resp, const char *extra)
{
    while (extra && *extra) {
        const char *eol = strstr(extra, "\r\n");
        size_t n = eol ? (size_t)(eol - extra) : strlen(extra);
        char line[256];
        if (n < sizeof line) {
            memcpy(line, extra, n);
            line[n] = 0;
            char *colon = strchr(line, ':');
            if (colon) {
                *colon = 0;
                const char *v = colon + 1;
                while (*v == ' ')
                    v++;
                MHD_add_response_header(resp, line, v);
            }
        }
        extra += n + (eol ? 2 : 0);
    }
}

void lade_http_reply(struct lade_http_req *r, unsigned status, const char *content_type,
                     const void *body, size_t len, const char *extra_headers)
{
    if (r->answered) {
        LOG_W(MOD, "%s %s answered twice; second answer dropped", r->method, r->path);
        return;
    }
    r->answered = true;
    r->status = status;
    if (r->completed) { /* the client went away while the request was kept */
        unlink_pending(r);
        req_free(r);
        return;
    }
    r->resp = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    if (r->resp) {
        MHD_add_response_header(r->resp, "Content-Type",
                                content_type ? content_type : "application/octet-stream");
        /* Defaults, unless the caller gives its own (the web page's files: no-cache). */
        if (!extra_headers || !strcasestr(extra_headers, "Cache-Control:"))
            MHD_add_response_header(r->resp, "Cache-Control", "no-store");
        if (!extra_headers || !strcasestr(extra_headers, "X-Content-Type-Options:"))
            MHD_add_response_header(r->resp, "X-Content-Type-Options", "nosniff");
        add_headers(r->resp, extra_headers);
    }
    if (r->suspended) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
        run(r->h);
    }
}

void lade_http_reply_json(struct lade_http_req *r, unsigned status, const cJSON *json)
{
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;
    if (!text) {
        static const char oom[] = "{\"Code\":500,\"Details\":\"out of memory\"}";
        lade_http_reply(r, 500, "application/json", oom, sizeof oom - 1, NULL);
        return;
    }
    lade_http_reply(r, status, "application/json; charset=utf-8", text, strlen(text), NULL);
    free(text);
}

void lade_http_reply_json_take(struct lade_http_req *r, unsigned status, cJSON *json)
{
    lade_http_reply_json(r, status, json);
    cJSON_Delete(json);
}

lade_err lade_http_form_value(const char *body, size_t len, const char *key, char *out, size_t cap)
{
    size_t klen = strlen(key);
    size_t i = 0;
    while (i < len) {
        size_t end = i;
        while (end < len && body[end] != '&')
            end++;
        const char *eq = memchr(body + i, '=', end - i);
        size_t nlen = eq ? (size_t)(eq - (body + i)) : end - i;
        if (nlen == klen && memcmp(body + i, key, klen) == 0) {
            const char *v = eq ? eq + 1 : body + end;
            size_t vlen = (size_t)(body + end - v);
            if (vlen >= cap)
                return LADE_ERR_NOSPACE;
            /* form encoding: '+' is a space */
            char tmp[1024];
            if (vlen >= sizeof tmp)
                return LADE_ERR_NOSPACE;
            for (size_t k = 0; k < vlen; k++)
                tmp[k] = v[k] == '+' ? ' ' : v[k];
            size_t n;
            if (lade_url_decode(tmp, vlen, out, cap, &n) != LADE_OK)
                return LADE_ERR_PROTO;
            return LADE_OK;
        }
        i = end + 1;
    }
    return LADE_ERR_NOT_FOUND;
}
