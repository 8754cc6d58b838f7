/* lade — a small HTTP/1.1 server on lade's event loop (libmicrohttpd underneath), for the
 * portal's REST API and web page (docs/portal.md).
 *
 * One handler gets every complete request (body read, bounded). It answers at once with
 * lade_http_reply*() or keeps the request and answers later (a command waiting for the
 * charger's reply): a request not answered when the handler returns is suspended until it is.
 * Every request is answered exactly once: lade_http_reply*() on an answered request is ignored
 * (and logged); a request whose client went away is still answered (the answer is dropped) and
 * then freed. Request memory belongs to the server; it lives until the answer is given.
 *
 * The server binds the given address (127.0.0.1 by default) and runs no thread of its own: it
 * watches libmicrohttpd's epoll fd and timeout from the loop.
 */
#ifndef LADE_HTTP_H
#define LADE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/err.h"

struct lade_loop;
struct lade_http;
struct lade_http_req;
typedef struct cJSON cJSON;

typedef void (*lade_http_handler)(void *ud, struct lade_http_req *req);

struct lade_http_opts {
    struct lade_loop *loop;
    const char *bind_addr;   /* IPv4 literal; NULL = "127.0.0.1" */
    uint16_t port;           /* 0: any free port (see lade_http_port) */
    size_t max_body;         /* larger bodies get 413; 0 = 64 KiB */
    unsigned max_conns;      /* 0 = 256 */
    unsigned idle_timeout_s; /* 0 = 30 */
    lade_http_handler handler;
    /* Optional streamed bodies: stream_begin runs when the first body bytes of a request arrive
     * (method, path and headers readable; lade_http_set_data may be used). Returning true
     * streams that body: stream_data gets every chunk as it arrives, nothing is buffered
     * (lade_http_body is empty, max_body does not apply) and the handler gets the request when
     * the body is complete, as usual. stream_abort runs instead of the handler when the request
     * ends before that (client gone, server stopped), to free what stream_begin set up. */
    bool (*stream_begin)(void *ud, struct lade_http_req *r);
    void (*stream_data)(void *ud, struct lade_http_req *r, const void *p, size_t n);
    void (*stream_abort)(void *ud, struct lade_http_req *r);
    void *ud;
};

lade_err lade_http_new(struct lade_http **out, const struct lade_http_opts *o) LADE_MUST_CHECK;
/* The port actually bound. */
uint16_t lade_http_port(const struct lade_http *h);
/* Stops listening, answers every pending request with 503 and frees everything. */
void lade_http_free(struct lade_http *h);

/* ---- the request ---- */

const char *lade_http_method(const struct lade_http_req *r); /* "GET", "POST", ... */
/* The path, percent-decoded, without the query string. */
const char *lade_http_path(const struct lade_http_req *r);
const char *lade_http_client(const struct lade_http_req *r); /* "127.0.0.1" */
/* A header (case-insensitive name) or query argument (decoded); NULL if absent. */
const char *lade_http_header(const struct lade_http_req *r, const char *name);
const char *lade_http_query(const struct lade_http_req *r, const char *name);
/* The body (NUL-terminated after len; may contain NULs). */
const char *lade_http_body(const struct lade_http_req *r, size_t *len);
/* True once the request has been answered. */
bool lade_http_answered(const struct lade_http_req *r);
/* Caller data attached to a kept request. */
void lade_http_set_data(struct lade_http_req *r, void *data);
void *lade_http_data(const struct lade_http_req *r);

/* ---- answers (exactly one per request) ---- */

/* body is copied. extra_headers: NULL or "Name: value\r\n"-separated pairs ("Retry-After: 1"). */
void lade_http_reply(struct lade_http_req *r, unsigned status, const char *content_type,
                     const void *body, size_t len, const char *extra_headers);
/* JSON body (printed unformatted; json is not freed). */
void lade_http_reply_json(struct lade_http_req *r, unsigned status, const cJSON *json);
/* Takes ownership of json and frees it. */
void lade_http_reply_json_take(struct lade_http_req *r, unsigned status, cJSON *json);

/* Splits an application/x-www-form-urlencoded body: the value of key into out (decoded,
 * NUL-terminated). LADE_ERR_NOT_FOUND, LADE_ERR_NOSPACE, LADE_ERR_PROTO (bad encoding). */
lade_err lade_http_form_value(const char *body, size_t len, const char *key, char *out,
                              size_t cap) LADE_MUST_CHECK;

#endif
