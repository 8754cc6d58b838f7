/* WiFi driver: a client of wpa_supplicant's control socket (include/lade/wpa.h,
 * docs/wifi-lte.md).
 *
 * wpa_supplicant's control interface on Linux is a Unix datagram socket per interface. A client
 * binds a socket of its own (the supplicant answers to that address), sends one command per
 * datagram and gets one reply datagram; after ATTACH it also gets unsolicited events, datagrams
 * that start with "<level>". We keep one request in flight (as wpa_ctrl does), so a datagram
 * that is not an event is the reply to it.
 *
 * Why a reply timeout drops the socket: the supplicant answers at once, so silence means it is
 * gone or wedged, and a late reply on the same socket would be taken as the answer to the next
 * request. A fresh socket (a new client path) cannot receive stale replies. The supplicant's own
 * restart is seen the same way: send() on the old socket fails (ECONNREFUSED), or it said
 * CTRL-EVENT-TERMINATING; we reconnect with a doubling delay and ATTACH again (SPEC R11).
 */
#include "lade/wpa.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lade/clock.h"
#include "lade/log.h"
#include "lade/loop.h"

#define MOD     "wpa"
#define QMAX    8
#define CMD_MAX 256

enum req_kind {
    REQ_PING,
    REQ_ATTACH,
    REQ_STATUS,
    REQ_SIGNAL,
    REQ_REASSOC,
    REQ_RECONNECT,
    REQ_USER
};
static const char *const req_cmds[] = {"PING",        "ATTACH",    "STATUS", "SIGNAL_POLL",
                                       "REASSOCIATE", "RECONNECT", NULL};

struct req {
    enum req_kind kind;
    char cmd[CMD_MAX + 1];
    lade_wpa_reply_cb cb;
    void *ud;
};

/* The control-socket connection. */
enum conn {
    CONN_DISABLED = 0, /* not wanted */
    CONN_RETRY,        /* socket gone; the retry timer reconnects */
    CONN_ATTACHING,    /* socket open, PING/ATTACH on their way */
    CONN_READY,        /* attached: events arrive, polling runs */
};
static const char *const conn_names[] = {"disabled", "retry", "attaching", "ready"};

struct lade_wpa {
    struct lade_loop *loop;
    struct lade_wpa_config cfg;
    char ctrl_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char client_dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char local_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    lade_wpa_link_cb cb;
    void *ud;

    int fd;
    enum conn conn;
    struct req q[QMAX]; /* q[0] is in flight when inflight */
    size_t qlen;
    bool inflight;
    struct lade_timer req_timer, poll_timer, retry_timer;
    uint32_t retry_ms;
    bool ever_attached;

    /* What the supplicant told us. */
    enum lade_wpa_state state;
    int16_t rssi_dbm;
    uint32_t freq_mhz;
    uint32_t linkspeed_mbps;
    bool addr_caller, addr_status;
    struct lade_bearer_link_state reported;
    bool reported_valid;
    struct lade_wpa_info info;
};

static void set_conn(struct lade_wpa *w, enum conn to, const char *why)
{
    if (w->conn == to)
        return;
    LOG_D(MOD, "%s: %s -> %s (%s)", w->ctrl_path, conn_names[w->conn], conn_names[to], why);
    w->conn = to;
    w->info.attached = to == CONN_READY;
}

static void report(struct lade_wpa *w)
{
    struct lade_bearer_link_state ls;
    bool addr = !w->cfg.need_address || w->addr_caller || w->addr_status;
    enum lade_wpa_state st = w->conn == CONN_READY ? w->state : LADE_WPA_STATE_UNKNOWN;
    lade_wpa_to_link(st, addr, w->rssi_dbm, w->freq_mhz, &ls);
    if (w->reported_valid && ls.up == w->reported.up && ls.signal == w->reported.signal &&
        ls.channel == w->reported.channel && ls.freq_mhz == w->reported.freq_mhz)
        return;
    if (!w->reported_valid || ls.up != w->reported.up)
        LOG_I(MOD, "link %s (%s, %d dBm, %u MHz ch %u)", ls.up ? "up" : "down",
              lade_wpa_state_name(st), ls.signal, (unsigned)ls.freq_mhz, (unsigned)ls.channel);
    w->reported = ls;
    w->reported_valid = true;
    w->info.link = ls;
    w->cb(w->ud, &ls);
}

static void forget_link(struct lade_wpa *w)
{
    w->state = LADE_WPA_STATE_UNKNOWN;
    w->rssi_dbm = LADE_BEARER_SIGNAL_UNKNOWN;
    w->freq_mhz = 0;
    w->linkspeed_mbps = 0;
    w->addr_status = false;
}

static void close_socket(struct lade_wpa *w)
{
    if (w->fd >= 0) {
        lade_loop_unwatch(w->loop, w->fd);
        close(w->fd);
        w->fd = -1;
    }
    if (w->local_path[0]) {
        unlink(w->local_path);
        w->local_path[0] = '\0';
    }
}

/* Fails every queued request (user callbacks get err) and empties the queue. */
static void fail_queue(struct lade_wpa *w, lade_err err)
{
    lade_timer_cancel(w->loop, &w->req_timer);
    /* Copy first: a user callback may queue a new request (it fails with STATE then). */
    struct req q[QMAX];
    size_t n = w->qlen;
    memcpy(q, w->q, n * sizeof q[0]);
    w->qlen = 0;
    w->inflight = false;
    for (size_t i = 0; i < n; i++)
        if (q[i].kind == REQ_USER && q[i].cb)
            q[i].cb(q[i].ud, err, NULL, 0);
}

/* The supplicant is gone (or never was): close, forget, report, retry later. */
static void drop(struct lade_wpa *w, const char *why, bool quick)
{
    if (w->conn == CONN_READY)
        LOG_W(MOD, "%s: lost the control socket: %s", w->ctrl_path, why);
    else
        LOG_D(MOD, "%s: not reachable: %s", w->ctrl_path, why);
    close_socket(w);
    lade_timer_cancel(w->loop, &w->poll_timer);
    set_conn(w, CONN_RETRY, why);
    fail_queue(w, LADE_ERR_CLOSED);
    forget_link(w);
    report(w);
    if (quick)
        w->retry_ms = w->cfg.retry_min_ms;
    if (lade_timer_arm_in(w->loop, &w->retry_timer, w->retry_ms) != LADE_OK)
        LOG_E(MOD, "cannot arm the retry timer");
    w->retry_ms = w->retry_ms > w->cfg.retry_max_ms / 2 ? w->cfg.retry_max_ms : w->retry_ms * 2;
}

static void send_next(struct lade_wpa *w)
{
    if (w->inflight || w->qlen == 0 || w->fd < 0)
        return;
    struct req *r = &w->q[0];
    ssize_t s = send(w->fd, r->cmd, strlen(r->cmd), MSG_NOSIGNAL);
    if (s < 0) {
        char why[96];
        snprintf(why, sizeof why, "send %.32s: %s", r->cmd, strerror(errno));
        drop(w, why, errno == ECONNREFUSED || errno == ENOENT);
        return;
    }
    LOG_T(MOD, "-> %s", r->cmd);
    w->inflight = true;
    if (lade_timer_arm_in(w->loop, &w->req_timer, w->cfg.request_timeout_ms) != LADE_OK)
        drop(w, "cannot arm a timer", false);
}

static lade_err enqueue(struct lade_wpa *w, enum req_kind kind, const char *cmd,
                        lade_wpa_reply_cb cb, void *ud)
{
    if (kind != REQ_USER) {
        /* One of each internal request waiting is enough (events can come in bursts). */
        for (size_t i = w->inflight ? 1 : 0; i < w->qlen; i++)
            if (w->q[i].kind == kind)
                return LADE_OK;
        cmd = req_cmds[kind];
    }
    if (w->qlen == QMAX)
        return LADE_ERR_FULL;
    struct req *r = &w->q[w->qlen++];
    r->kind = kind;
    snprintf(r->cmd, sizeof r->cmd, "%s", cmd);
    r->cb = cb;
    r->ud = ud;
    send_next(w);
    return LADE_OK;
}

static void enqueue_internal(struct lade_wpa *w, enum req_kind kind)
{
    if (w->fd < 0)
        return;
    if (enqueue(w, kind, NULL, NULL, NULL) != LADE_OK)
        LOG_W(MOD, "request queue full; %s skipped", req_cmds[kind]);
}

static void copy_view(char *dst, size_t cap, struct lade_str v)
{
    size_t n = v.n < cap - 1 ? v.n : cap - 1;
    memcpy(dst, v.p, n);
    dst[n] = '\0';
}

static void on_status(struct lade_wpa *w, const char *buf, size_t n)
{
    struct lade_wpa_status st;
    if (lade_wpa_parse_status(buf, n, &st) != LADE_OK) {
        LOG_W(MOD, "unparsable STATUS reply (%zu bytes)", n);
        return;
    }
    if (st.state != w->state)
        LOG_I(MOD, "wpa_state %s -> %s", lade_wpa_state_name(w->state),
              lade_wpa_state_name(st.state));
    w->state = st.state;
    w->info.state = st.state;
    w->addr_status = st.ip_address.n > 0;
    copy_view(w->info.ssid, sizeof w->info.ssid, st.ssid);
    copy_view(w->info.bssid, sizeof w->info.bssid, st.bssid);
    copy_view(w->info.ip_address, sizeof w->info.ip_address, st.ip_address);
    if (st.state == LADE_WPA_STATE_COMPLETED) {
        if (st.freq_mhz)
            w->freq_mhz = st.freq_mhz;
        /* Report with the signal: "up, signal unknown" would count as good enough. */
        if (enqueue(w, REQ_SIGNAL, NULL, NULL, NULL) == LADE_OK && w->fd >= 0)
            return;
    } else {
        w->rssi_dbm = LADE_BEARER_SIGNAL_UNKNOWN;
        w->freq_mhz = 0;
        w->linkspeed_mbps = 0;
    }
    report(w);
}

static void on_signal(struct lade_wpa *w, const char *buf, size_t n)
{
    struct lade_wpa_signal sg;
    if (lade_wpa_parse_signal(buf, n, &sg) != LADE_OK) {
        /* FAIL: not associated (any more); STATUS will say so. */
        w->rssi_dbm = LADE_BEARER_SIGNAL_UNKNOWN;
        report(w);
        return;
    }
    w->rssi_dbm = sg.rssi_dbm;
    if (sg.freq_mhz)
        w->freq_mhz = sg.freq_mhz;
    w->linkspeed_mbps = sg.linkspeed_mbps;
    w->info.rssi_dbm = sg.rssi_dbm;
    w->info.freq_mhz = w->freq_mhz;
    w->info.linkspeed_mbps = sg.linkspeed_mbps;
    report(w);
}

static void on_reply(struct lade_wpa *w, const char *buf, size_t n, bool too_big)
{
    if (!w->inflight) {
        LOG_D(MOD, "reply with no request in flight dropped (%zu bytes)", n);
        return;
    }
    lade_timer_cancel(w->loop, &w->req_timer);
    struct req r = w->q[0];
    memmove(&w->q[0], &w->q[1], (w->qlen - 1) * sizeof w->q[0]);
    w->qlen--;
    w->inflight = false;
    enum lade_wpa_reply kind = lade_wpa_reply_kind(buf, n);
    LOG_T(MOD, "<- %s: %.*s", r.cmd, (int)(n > 80 ? 80 : n), buf);

    switch (r.kind) {
    case REQ_PING:
        if (kind != LADE_WPA_REPLY_PONG) {
            drop(w, "PING not answered with PONG", false);
            return;
        }
        break;
    case REQ_ATTACH:
        if (kind != LADE_WPA_REPLY_OK) {
            drop(w, "ATTACH refused", false);
            return;
        }
        if (w->ever_attached)
            w->info.reconnects++;
        w->ever_attached = true;
        w->retry_ms = w->cfg.retry_min_ms;
        set_conn(w, CONN_READY, "attached");
        LOG_I(MOD, "attached to %s", w->ctrl_path);
        if (lade_timer_arm_in(w->loop, &w->poll_timer, w->cfg.poll_ms) != LADE_OK)
            LOG_E(MOD, "cannot arm the poll timer");
        break;
    case REQ_STATUS:
        if (!too_big)
            on_status(w, buf, n);
        break;
    case REQ_SIGNAL:
        if (!too_big)
            on_signal(w, buf, n);
        break;
    case REQ_REASSOC:
        if (kind == LADE_WPA_REPLY_FAIL || kind == LADE_WPA_REPLY_UNKNOWN_CMD)
            enqueue_internal(w, REQ_RECONNECT);
        break;
    case REQ_RECONNECT:
        if (kind != LADE_WPA_REPLY_OK)
            LOG_W(MOD, "RECONNECT refused");
        break;
    case REQ_USER:
        if (r.cb)
            r.cb(r.ud, too_big ? LADE_ERR_TOO_BIG : LADE_OK, too_big ? NULL : buf, too_big ? 0 : n);
        break;
    }
    send_next(w);
}

static void on_event(struct lade_wpa *w, const char *buf, size_t n)
{
    struct lade_wpa_event ev;
    if (lade_wpa_parse_event(buf, n, &ev) != LADE_OK) {
        LOG_D(MOD, "unparsable event dropped (%zu bytes)", n);
        return;
    }
    switch (ev.kind) {
    case LADE_WPA_EV_CONNECTED:
        LOG_I(MOD, "connected to %.*s", (int)ev.bssid.n, ev.bssid.p);
        enqueue_internal(w, REQ_STATUS);
        break;
    case LADE_WPA_EV_DISCONNECTED:
        LOG_I(MOD, "disconnected from %.*s (reason %d%s)", (int)ev.bssid.n, ev.bssid.p,
              (int)ev.reason, ev.locally_generated ? ", local" : "");
        w->info.last_disconnect_reason = ev.reason;
        w->state = LADE_WPA_STATE_DISCONNECTED;
        w->info.state = w->state;
        w->rssi_dbm = LADE_BEARER_SIGNAL_UNKNOWN;
        w->freq_mhz = 0;
        report(w);
        enqueue_internal(w, REQ_STATUS);
        break;
    case LADE_WPA_EV_SSID_TEMP_DISABLED:
        LOG_W(MOD, "network \"%.*s\" disabled for %u s: %.*s (%u failures)", (int)ev.ssid.n,
              ev.ssid.p, (unsigned)ev.duration_s, (int)ev.why.n, ev.why.p,
              (unsigned)ev.auth_failures);
        copy_view(w->info.last_temp_disabled, sizeof w->info.last_temp_disabled, ev.why);
        break;
    case LADE_WPA_EV_TERMINATING:
        drop(w, "wpa_supplicant terminating", true);
        break;
    case LADE_WPA_EV_SIGNAL_CHANGE:
        if (ev.signal_dbm != LADE_BEARER_SIGNAL_UNKNOWN && w->state == LADE_WPA_STATE_COMPLETED) {
            w->rssi_dbm = ev.signal_dbm;
            w->info.rssi_dbm = ev.signal_dbm;
            report(w);
        }
        break;
    default:
        LOG_T(MOD, "event %.*s", (int)ev.name.n, ev.name.p);
        break;
    }
}

static void on_io(struct lade_loop *loop, int fd, uint32_t events, void *ud)
{
    (void)loop;
    struct lade_wpa *w = ud;
    char buf[LADE_WPA_REPLY_MAX + 1];
    /* Bounded, so a supplicant flooding events cannot starve the loop. */
    for (int i = 0; i < 32 && w->fd == fd; i++) {
        ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC);
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            char why[80];
            snprintf(why, sizeof why, "recv: %s", strerror(errno));
            drop(w, why, false);
            return;
        }
        size_t n = (size_t)r;
        bool too_big = n > LADE_WPA_REPLY_MAX;
        if (too_big)
            n = LADE_WPA_REPLY_MAX;
        if (lade_wpa_reply_kind(buf, n) == LADE_WPA_REPLY_EVENT) {
            if (!too_big)
                on_event(w, buf, n);
        } else {
            on_reply(w, buf, n, too_big);
        }
    }
    (void)events;
}

static void connect_now(struct lade_wpa *w)
{
    static unsigned counter;
    struct sockaddr_un local = {.sun_family = AF_UNIX}, peer = {.sun_family = AF_UNIX};
    unsigned id = __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
    int len = snprintf(local.sun_path, sizeof local.sun_path, "%s/lade_wpa_%ld_%u", w->client_dir,
                       (long)getpid(), id);
    if (len < 0 || (size_t)len >= sizeof local.sun_path) {
        drop(w, "client path too long", false);
        return;
    }
    snprintf(peer.sun_path, sizeof peer.sun_path, "%s", w->ctrl_path);
    w->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (w->fd < 0) {
        drop(w, "socket", false);
        return;
    }
    unlink(local.sun_path); /* a leftover of a crashed process with our pid */
    if (bind(w->fd, (struct sockaddr *)&local, sizeof local) != 0) {
        char why[96];
        snprintf(why, sizeof why, "bind our socket: %s", strerror(errno));
        drop(w, why, false);
        return;
    }
    memcpy(w->local_path, local.sun_path, sizeof w->local_path);
    if (connect(w->fd, (struct sockaddr *)&peer, sizeof peer) != 0) {
        char why[80];
        snprintf(why, sizeof why, "connect: %s", strerror(errno));
        drop(w, why, false);
        return;
    }
    if (lade_loop_watch(w->loop, w->fd, LADE_IO_READ, on_io, w) != LADE_OK) {
        drop(w, "cannot watch the socket", false);
        return;
    }
    set_conn(w, CONN_ATTACHING, "socket connected");
    enqueue_internal(w, REQ_PING);
    enqueue_internal(w, REQ_ATTACH);
    enqueue_internal(w, REQ_STATUS);
}

static void on_retry(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_wpa *w = ud;
    if (w->conn == CONN_RETRY)
        connect_now(w);
}

static void on_req_timeout(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_wpa *w = ud;
    if (!w->inflight)
        return;
    w->info.timeouts++;
    char why[CMD_MAX + 32];
    snprintf(why, sizeof why, "no reply to %s", w->q[0].cmd);
    /* The in-flight user request learns it timed out; the others are closed by drop(). */
    struct req r = w->q[0];
    memmove(&w->q[0], &w->q[1], (w->qlen - 1) * sizeof w->q[0]);
    w->qlen--;
    w->inflight = false;
    if (r.kind == REQ_USER && r.cb)
        r.cb(r.ud, LADE_ERR_TIMEOUT, NULL, 0);
    if (w->conn != CONN_DISABLED)
        drop(w, why, false);
}

static void on_poll(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)t;
    struct lade_wpa *w = ud;
    if (w->conn != CONN_READY)
        return;
    enqueue_internal(w, REQ_STATUS);
    if (lade_timer_arm_in(loop, &w->poll_timer, w->cfg.poll_ms) != LADE_OK)
        LOG_E(MOD, "cannot arm the poll timer");
}

void lade_wpa_config_default(struct lade_wpa_config *c)
{
    memset(c, 0, sizeof *c);
    c->client_dir = "/tmp";
    c->request_timeout_ms = 3000;
    c->poll_ms = 5000;
    c->retry_min_ms = 1000;
    c->retry_max_ms = 30000;
    c->need_address = true;
}

lade_err lade_wpa_new(struct lade_loop *loop, const struct lade_wpa_config *cfg,
                      lade_wpa_link_cb cb, void *ud, struct lade_wpa **out)
{
    if (!out)
        return LADE_ERR_INVAL;
    *out = NULL;
    if (!loop || !cfg || !cb || !cfg->ctrl_path || !cfg->ctrl_path[0])
        return LADE_ERR_INVAL;
    const char *dir = cfg->client_dir && cfg->client_dir[0] ? cfg->client_dir : "/tmp";
    struct sockaddr_un probe;
    /* Our own name adds "/lade_wpa_<pid>_<n>": keep room for it. */
    if (strlen(cfg->ctrl_path) >= sizeof probe.sun_path ||
        strlen(dir) + 40 >= sizeof probe.sun_path || cfg->request_timeout_ms == 0 ||
        cfg->poll_ms == 0 || cfg->retry_min_ms == 0 || cfg->retry_min_ms > cfg->retry_max_ms)
        return LADE_ERR_CONFIG;
    struct lade_wpa *w = calloc(1, sizeof *w);
    if (!w)
        return LADE_ERR_NOMEM;
    w->loop = loop;
    w->cfg = *cfg;
    snprintf(w->ctrl_path, sizeof w->ctrl_path, "%s", cfg->ctrl_path);
    snprintf(w->client_dir, sizeof w->client_dir, "%s", dir);
    w->cfg.ctrl_path = w->ctrl_path;
    w->cfg.client_dir = w->client_dir;
    w->cb = cb;
    w->ud = ud;
    w->fd = -1;
    w->retry_ms = cfg->retry_min_ms;
    lade_timer_init(&w->req_timer, on_req_timeout, w);
    lade_timer_init(&w->poll_timer, on_poll, w);
    lade_timer_init(&w->retry_timer, on_retry, w);
    forget_link(w);
    w->info.last_disconnect_reason = -1;
    w->info.rssi_dbm = LADE_BEARER_SIGNAL_UNKNOWN;
    *out = w;
    return LADE_OK;
}

void lade_wpa_free(struct lade_wpa *w)
{
    if (!w)
        return;
    lade_timer_cancel(w->loop, &w->req_timer);
    lade_timer_cancel(w->loop, &w->poll_timer);
    lade_timer_cancel(w->loop, &w->retry_timer);
    close_socket(w);
    free(w);
}

lade_err lade_wpa_set_enabled(struct lade_wpa *w, bool enabled)
{
    if (!w)
        return LADE_ERR_INVAL;
    if (enabled == (w->conn != CONN_DISABLED))
        return LADE_OK;
    if (enabled) {
        w->retry_ms = w->cfg.retry_min_ms;
        set_conn(w, CONN_RETRY, "enabled");
        connect_now(w);
        return LADE_OK;
    }
    if (w->fd >= 0 && w->conn == CONN_READY)
        (void)!send(w->fd, "DETACH", 6, MSG_NOSIGNAL | MSG_DONTWAIT); /* best effort */
    lade_timer_cancel(w->loop, &w->poll_timer);
    lade_timer_cancel(w->loop, &w->retry_timer);
    close_socket(w);
    set_conn(w, CONN_DISABLED, "disabled");
    fail_queue(w, LADE_ERR_CLOSED);
    forget_link(w);
    report(w);
    return LADE_OK;
}

lade_err lade_wpa_reset(struct lade_wpa *w)
{
    if (!w)
        return LADE_ERR_INVAL;
    if (w->conn != CONN_READY)
        return LADE_ERR_STATE;
    for (size_t i = 0; i < w->qlen; i++)
        if (w->q[i].kind == REQ_REASSOC && !(i == 0 && w->inflight))
            return LADE_OK;
    if (w->qlen == QMAX)
        return LADE_ERR_FULL;
    LOG_I(MOD, "reset: REASSOCIATE");
    w->info.resets++;
    return enqueue(w, REQ_REASSOC, NULL, NULL, NULL);
}

void lade_wpa_set_address(struct lade_wpa *w, bool has_address)
{
    if (!w || w->addr_caller == has_address)
        return;
    w->addr_caller = has_address;
    if (w->conn != CONN_DISABLED)
        report(w);
}

void lade_wpa_info(const struct lade_wpa *w, struct lade_wpa_info *out)
{
    *out = w->info;
    out->attached = w->conn == CONN_READY;
    out->state = w->conn == CONN_READY ? w->state : LADE_WPA_STATE_UNKNOWN;
    out->rssi_dbm = w->rssi_dbm;
    out->freq_mhz = w->freq_mhz;
    out->linkspeed_mbps = w->linkspeed_mbps;
}

lade_err lade_wpa_request(struct lade_wpa *w, const char *cmd, lade_wpa_reply_cb cb, void *ud)
{
    if (!w || !cmd || !cb)
        return LADE_ERR_INVAL;
    size_t n = strlen(cmd);
    if (n == 0 || n > CMD_MAX || strchr(cmd, '\n'))
        return LADE_ERR_INVAL;
    if (w->conn != CONN_READY)
        return LADE_ERR_STATE;
    return enqueue(w, REQ_USER, cmd, cb, ud);
}
