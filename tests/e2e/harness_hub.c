/* Minimal blocking MQTT 3.1.1 client over TLS for the hub e2e tests (see harness_hub.h). */
#include "harness_hub.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "harness.h"

enum {
    CONNECT = 1,
    CONNACK = 2,
    PUBLISH = 3,
    PUBACK = 4,
    PUBREC = 5,
    PUBREL = 6,
    PUBCOMP = 7,
    SUBSCRIBE = 8,
    SUBACK = 9,
    DISCONNECT = 14,
    ANY_PUBLISH = 0xff, /* wait_packet: return at the first PUBLISH queued */
};

/* Open connections, for hc_close_all(). */
static struct hc *g_open[64];

static void track(struct hc *c, bool on)
{
    for (size_t i = 0; i < sizeof g_open / sizeof g_open[0]; i++) {
        if (on && !g_open[i]) {
            g_open[i] = c;
            return;
        }
        if (!on && g_open[i] == c)
            g_open[i] = NULL;
    }
}

void hc_close_all(void)
{
    for (size_t i = 0; i < sizeof g_open / sizeof g_open[0]; i++)
        if (g_open[i])
            hc_close(g_open[i]);
}

static void mark_closed(struct hc *c)
{
    c->closed = true;
}

static int send_all(struct hc *c, const uint8_t *p, size_t n)
{
    if (c->closed || !c->ssl)
        return -1;
    while (n) {
        int w = SSL_write(c->ssl, p, (int)n);
        if (w <= 0) {
            mark_closed(c);
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static size_t put_varint(uint8_t *p, size_t v)
{
    size_t i = 0;
    do {
        uint8_t b = v % 128;
        v /= 128;
        p[i++] = (uint8_t)(b | (v ? 0x80 : 0));
    } while (v);
    return i;
}

static size_t put_str(uint8_t *p, const char *s)
{
    size_t n = strlen(s);
    p[0] = (uint8_t)(n >> 8);
    p[1] = (uint8_t)n;
    memcpy(p + 2, s, n);
    return n + 2;
}

/* Sends header byte + body. */
static int send_packet(struct hc *c, uint8_t hdr, const uint8_t *body, size_t n)
{
    static uint8_t buf[70000];
    if (n + 5 > sizeof buf)
        return -1;
    size_t i = 0;
    buf[i++] = hdr;
    i += put_varint(buf + i, n);
    memcpy(buf + i, body, n);
    return send_all(c, buf, i + n);
}

/* Reads more bytes into rx: 1 read, 0 timeout, -1 closed. */
static int fill(struct hc *c, uint64_t deadline_ms)
{
    if (c->closed)
        return -1;
    for (;;) {
        if (SSL_pending(c->ssl) <= 0) {
            uint64_t now = h_now_ms();
            if (now >= deadline_ms)
                return 0;
            struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
            int pr = poll(&pfd, 1, (int)(deadline_ms - now));
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr <= 0)
                return 0;
        }
        if (c->rx_n == sizeof c->rx)
            return -1;
        int r = SSL_read(c->ssl, c->rx + c->rx_n, (int)(sizeof c->rx - c->rx_n));
        if (r > 0) {
            c->rx_n += (size_t)r;
            return 1;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            continue; /* e.g. a TLS 1.3 session ticket, no application data */
        mark_closed(c);
        return -1;
    }
}

/* Takes one complete packet off rx if there is one: *type, body copied to out. */
static bool take_packet(struct hc *c, uint8_t *hdr, uint8_t *out, size_t cap, size_t *n)
{
    size_t len = 0, mult = 1, i = 1;
    if (c->rx_n < 2)
        return false;
    for (;; i++) {
        if (i >= c->rx_n)
            return false;
        len += (c->rx[i] & 0x7f) * mult;
        mult *= 128;
        if (!(c->rx[i] & 0x80))
            break;
        if (i == 4)
            return false;
    }
    i++;
    if (c->rx_n < i + len || len > cap)
        return false;
    *hdr = c->rx[0];
    memcpy(out, c->rx + i, len);
    *n = len;
    memmove(c->rx, c->rx + i + len, c->rx_n - i - len);
    c->rx_n -= i + len;
    return true;
}

static void queue_publish(struct hc *c, uint8_t hdr, const uint8_t *b, size_t n)
{
    int qos = (hdr >> 1) & 3;
    if (n < 2)
        return;
    size_t tl = ((size_t)b[0] << 8) | b[1];
    size_t off = 2 + tl;
    uint16_t id = 0;
    if (off > n)
        return;
    if (qos) {
        if (off + 2 > n)
            return;
        id = (uint16_t)((b[off] << 8) | b[off + 1]);
        off += 2;
        uint8_t ack[2] = {(uint8_t)(id >> 8), (uint8_t)id};
        send_packet(c, qos == 1 ? (PUBACK << 4) : (PUBREC << 4), ack, 2);
    }
    if (c->q_n == HC_QUEUE)
        return; /* a test that floods itself loses messages; the assertions will say so */
    struct hc_msg *m = &c->queue[(c->q_head + c->q_n) % HC_QUEUE];
    memset(m, 0, sizeof *m);
    snprintf(m->topic, sizeof m->topic, "%.*s", (int)tl, (const char *)b + 2);
    m->len = n - off < sizeof m->payload - 1 ? n - off : sizeof m->payload - 1;
    memcpy(m->payload, b + off, m->len);
    m->qos = qos;
    m->retain = hdr & 1;
    c->q_n++;
}

/* Reads packets until one of type want (and packet id want_id if non-zero) arrives; PUBLISHes
 * are queued on the way (want ANY_PUBLISH: until one is). 1 got it, 0 timeout, -1 closed. */
static int wait_packet(struct hc *c, uint8_t want, uint16_t want_id, uint8_t *body, size_t cap,
                       size_t *n, uint32_t timeout_ms)
{
    uint64_t deadline = h_now_ms() + timeout_ms;
    static uint8_t buf[65536];
    for (;;) {
        uint8_t hdr;
        size_t bn;
        while (take_packet(c, &hdr, buf, sizeof buf, &bn)) {
            uint8_t type = hdr >> 4;
            if (type == PUBLISH) {
                queue_publish(c, hdr, buf, bn);
                if (want == ANY_PUBLISH)
                    return 1;
            } else if (type == PUBREL && bn >= 2) {
                send_packet(c, PUBCOMP << 4, buf, 2);
            }
            if (type == want && (!want_id || (bn >= 2 && ((buf[0] << 8) | buf[1]) == want_id))) {
                if (body) {
                    memcpy(body, buf, bn < cap ? bn : cap);
                    *n = bn;
                }
                return 1;
            }
        }
        int r = fill(c, deadline);
        if (r <= 0)
            return r;
    }
}

int hc_connect(struct hc *c, int port, const char *ca_file, const char *host, const char *client_id,
               const char *username, const char *password, bool clean_session)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->next_id = 1;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    c->ctx = ctx;
    if (!ctx || SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1)
        goto fail;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);

    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        goto fail;
    SSL *ssl = SSL_new(ctx);
    c->ssl = ssl;
    if (!ssl || SSL_set_fd(ssl, c->fd) != 1 || SSL_set_tlsext_host_name(ssl, host) != 1 ||
        SSL_set1_host(ssl, host) != 1 || SSL_connect(ssl) != 1) {
        ERR_print_errors_fp(stderr);
        goto fail;
    }

    static uint8_t body[4096];
    size_t i = 0;
    i += put_str(body + i, "MQTT");
    body[i++] = 4; /* 3.1.1 */
    uint8_t flags = clean_session ? 0x02 : 0;
    if (username)
        flags |= 0x80;
    if (password)
        flags |= 0x40;
    body[i++] = flags;
    body[i++] = 0;
    body[i++] = 60;
    i += put_str(body + i, client_id);
    if (username)
        i += put_str(body + i, username);
    if (password)
        i += put_str(body + i, password);
    if (send_packet(c, CONNECT << 4, body, i) != 0)
        goto fail;
    uint8_t ack[2];
    size_t n = 0;
    if (wait_packet(c, CONNACK, 0, ack, sizeof ack, &n, 10000) != 1 || n != 2)
        goto fail;
    if (ack[1] != 0)
        hc_close(c);
    else
        track(c, true);
    return ack[1];
fail:
    hc_close(c);
    return -1;
}

int hc_subscribe(struct hc *c, const char *filter, int qos)
{
    uint8_t body[600];
    uint16_t id = c->next_id++;
    size_t i = 0;
    body[i++] = (uint8_t)(id >> 8);
    body[i++] = (uint8_t)id;
    i += put_str(body + i, filter);
    body[i++] = (uint8_t)qos;
    if (send_packet(c, (SUBSCRIBE << 4) | 0x02, body, i) != 0)
        return -1;
    uint8_t ack[8];
    size_t n = 0;
    if (wait_packet(c, SUBACK, id, ack, sizeof ack, &n, 10000) != 1 || n != 3)
        return -1;
    return ack[2];
}

int hc_publish(struct hc *c, const char *topic, const void *payload, size_t len, int qos,
               bool retain)
{
    static uint8_t body[66000];
    size_t i = 0;
    if (strlen(topic) + len + 8 > sizeof body)
        return -1;
    i += put_str(body + i, topic);
    uint16_t id = 0;
    if (qos) {
        id = c->next_id++;
        body[i++] = (uint8_t)(id >> 8);
        body[i++] = (uint8_t)id;
    }
    memcpy(body + i, payload, len);
    i += len;
    uint8_t hdr = (uint8_t)((PUBLISH << 4) | (qos << 1) | (retain ? 1 : 0));
    if (send_packet(c, hdr, body, i) != 0)
        return -1;
    if (qos == 1)
        return wait_packet(c, PUBACK, id, NULL, 0, NULL, 10000) == 1 ? 0 : -1;
    if (qos == 2) {
        if (wait_packet(c, PUBREC, id, NULL, 0, NULL, 10000) != 1)
            return -1;
        uint8_t rel[2] = {(uint8_t)(id >> 8), (uint8_t)id};
        if (send_packet(c, (PUBREL << 4) | 0x02, rel, 2) != 0)
            return -1;
        return wait_packet(c, PUBCOMP, id, NULL, 0, NULL, 10000) == 1 ? 0 : -1;
    }
    return 0;
}

int hc_publish_str(struct hc *c, const char *topic, const char *payload, int qos)
{
    return hc_publish(c, topic, payload, payload ? strlen(payload) : 0, qos, false);
}

int hc_recv(struct hc *c, struct hc_msg *m, uint32_t timeout_ms)
{
    if (!c->q_n) {
        uint64_t deadline = h_now_ms() + timeout_ms;
        while (!c->q_n) {
            uint64_t now = h_now_ms();
            if (now >= deadline)
                return 0;
            int r = wait_packet(c, ANY_PUBLISH, 0, NULL, 0, NULL, (uint32_t)(deadline - now));
            if (r < 0 && !c->q_n)
                return -1;
            if (r == 0 && !c->q_n)
                return 0;
        }
    }
    *m = c->queue[c->q_head];
    c->q_head = (c->q_head + 1) % HC_QUEUE;
    c->q_n--;
    return 1;
}

int hc_recv_topic(struct hc *c, const char *prefix, struct hc_msg *m, uint32_t timeout_ms)
{
    uint64_t deadline = h_now_ms() + timeout_ms;
    for (;;) {
        uint64_t now = h_now_ms();
        int r = hc_recv(c, m, now >= deadline ? 0 : (uint32_t)(deadline - now));
        if (r <= 0)
            return r;
        if (strncmp(m->topic, prefix, strlen(prefix)) == 0)
            return 1;
        fprintf(stderr, "(skipped %s: %.*s)\n", m->topic, (int)m->len, m->payload);
    }
}

bool hc_wait_closed(struct hc *c, uint32_t timeout_ms)
{
    uint64_t deadline = h_now_ms() + timeout_ms;
    while (!c->closed) {
        uint64_t now = h_now_ms();
        if (now >= deadline)
            return false;
        wait_packet(c, ANY_PUBLISH, 0, NULL, 0, NULL, (uint32_t)(deadline - now));
        c->q_n = 0;
    }
    return true;
}

void hc_close(struct hc *c)
{
    track(c, false);
    if (c->ssl) {
        if (!c->closed) {
            uint8_t d[2] = {DISCONNECT << 4, 0};
            send_all(c, d, 2);
            SSL_shutdown(c->ssl);
        }
        SSL_free(c->ssl);
    }
    if (c->ctx)
        SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    c->ssl = NULL;
    c->ctx = NULL;
    c->fd = -1;
    c->closed = true;
}
