/* MQTT 3.1.1 client session: non-blocking, transport injected, caller memory only.
 * See docs/mqtt.md for the state machine. */
#include "lade/log.h"
#include "lade/mqtt.h"

#include <string.h>

#define MOD "mqtt"

const char *lade_mqtt_state_name(enum lade_mqtt_state st)
{
    switch (st) {
    case LADE_MQTT_DISCONNECTED:
        return "DISCONNECTED";
    case LADE_MQTT_CONNECTING:
        return "CONNECTING";
    case LADE_MQTT_CONNECTED:
        return "CONNECTED";
    case LADE_MQTT_DISCONNECTING:
        return "DISCONNECTING";
    }
    return "?";
}

/* The only place the state changes. Leaving a connection drops everything that belongs to it
 * (buffered bytes, QoS 0 messages not yet written, the ping timer) and keeps what belongs to
 * the session (in-flight QoS 1, subscriptions). */
static void set_state(struct lade_mqtt_session *s, enum lade_mqtt_state to)
{
    if (s->state == to)
        return;
    LOG_D(MOD, "%s: %s → %s", s->cfg.client_id, lade_mqtt_state_name(s->state),
          lade_mqtt_state_name(to));
    s->state = to;
    if (to == LADE_MQTT_DISCONNECTED) {
        s->rx_len = 0;
        s->rx_held = false;
        s->tx_off = s->tx_len = s->tx_pkt_left = 0;
        s->ping_outstanding = false;
        s->sub_sent = 0;
        for (size_t i = 0; i < s->n_inflight; i++)
            s->cfg.inflight[i].queued = false;
        memset(&s->t, 0, sizeof s->t);
    }
}

static lade_err fail(struct lade_mqtt_session *s, lade_err e)
{
    LOG_I(MOD, "%s: connection failed in %s: %s", s->cfg.client_id, lade_mqtt_state_name(s->state),
          lade_strerror(e));
    set_state(s, LADE_MQTT_DISCONNECTED);
    return e;
}

lade_err lade_mqtt_session_init(struct lade_mqtt_session *s,
                                const struct lade_mqtt_session_cfg *cfg,
                                const struct lade_mqtt_callbacks *cb, void *ud)
{
    if (!s || !cfg)
        return LADE_ERR_INVAL;
    memset(s, 0, sizeof *s);
    if (!cfg->client_id || !cfg->rx_buf || !cfg->tx_buf || cfg->max_packet < 16 ||
        cfg->max_packet > cfg->rx_cap || cfg->tx_cap < 16 || cfg->connack_timeout_ms == 0 ||
        (cfg->keepalive_s && cfg->pingresp_timeout_ms == 0) ||
        (cfg->inflight_cap && (!cfg->inflight || !cfg->store_buf)) ||
        (cfg->sub_cap && !cfg->sub_buf))
        return LADE_ERR_CONFIG;
    s->cfg = *cfg;
    if (cb)
        s->cb = *cb;
    s->ud = ud;
    s->next_id = 1;
    s->state = LADE_MQTT_DISCONNECTED;
    return LADE_OK;
}

enum lade_mqtt_state lade_mqtt_session_state(const struct lade_mqtt_session *s)
{
    return s->state;
}

const struct lade_mqtt_stats *lade_mqtt_session_stats(const struct lade_mqtt_session *s)
{
    return &s->stats;
}

size_t lade_mqtt_session_inflight(const struct lade_mqtt_session *s)
{
    return s->n_inflight;
}

/* ------------------------------------------------------------ tx queue */

static size_t tx_pending(const struct lade_mqtt_session *s)
{
    return s->tx_len - s->tx_off;
}

/* Makes room for n contiguous bytes at tx_buf + tx_len. NOSPACE: never fits; FULL: not now. */
static lade_err tx_room(struct lade_mqtt_session *s, size_t n)
{
    if (n > s->cfg.tx_cap)
        return LADE_ERR_NOSPACE;
    if (s->cfg.tx_cap - s->tx_len < n && s->tx_off) {
        memmove(s->cfg.tx_buf, s->cfg.tx_buf + s->tx_off, tx_pending(s));
        s->tx_len -= s->tx_off;
        s->tx_off = 0;
    }
    return s->cfg.tx_cap - s->tx_len < n ? LADE_ERR_FULL : LADE_OK;
}

static bool id_in_flight(const struct lade_mqtt_session *s, uint16_t id)
{
    for (size_t i = 0; i < s->n_inflight; i++) {
        if (s->cfg.inflight[i].packet_id == id)
            return true;
    }
    return false;
}

/* §2.3.1: non-zero, and not one still in use by an unacknowledged QoS 1 PUBLISH. */
static uint16_t alloc_id(struct lade_mqtt_session *s)
{
    for (uint32_t k = 0; k < 65535; k++) {
        uint16_t id = s->next_id;
        s->next_id = id == 65535 ? 1 : (uint16_t)(id + 1);
        if (!id_in_flight(s, id))
            return id;
    }
    return 0;
}

/* Sub records in sub_buf: u16 payload length, then a SUBSCRIBE payload (filters + QoS). */
static size_t sub_record_packet_size(size_t plen)
{
    size_t rem = 2 + plen;
    return 1 + (rem < 128 ? 1 : rem < 16384 ? 2 : 3) + rem;
}

/* Queues the next remembered subscription not yet sent on this connection. Returns its packet
 * id, or 0 if there is none or no room. */
static uint16_t send_next_sub(struct lade_mqtt_session *s)
{
    if (s->state != LADE_MQTT_CONNECTED || s->sub_sent >= s->sub_len)
        return 0;
    const uint8_t *rec = s->cfg.sub_buf + s->sub_sent;
    size_t plen = (size_t)rec[0] << 8 | rec[1];
    size_t size = sub_record_packet_size(plen);
    if (tx_room(s, size) != LADE_OK)
        return 0;
    uint16_t id = alloc_id(s);
    if (!id)
        return 0;
    uint8_t *p = s->cfg.tx_buf + s->tx_len;
    size_t rem = 2 + plen, o = 0;
    p[o++] = LADE_MQTT_SUBSCRIBE << 4 | 0x02;
    do {
        uint8_t b = rem & 0x7F;
        rem >>= 7;
        p[o++] = (uint8_t)(b | (rem ? 0x80 : 0));
    } while (rem);
    p[o++] = (uint8_t)(id >> 8);
    p[o++] = (uint8_t)id;
    memcpy(p + o, rec + 2, plen);
    s->tx_len += size;
    s->sub_sent += 2 + plen;
    LOG_D(MOD, "%s: SUBSCRIBE id %u queued", s->cfg.client_id, id);
    return id;
}

/* Moves whatever is due into tx while there is room, in order: remembered subscriptions first
 * (so that the replies to resent requests are routed), then unacknowledged QoS 1 messages in
 * publish order. A message that went out on an earlier connection gets DUP=1 (§3.3.1.1). */
static void pump(struct lade_mqtt_session *s)
{
    if (s->state != LADE_MQTT_CONNECTED)
        return;
    while (s->sub_sent < s->sub_len) {
        if (!send_next_sub(s))
            return;
    }
    for (size_t i = 0; i < s->n_inflight; i++) {
        struct lade_mqtt_inflight *m = &s->cfg.inflight[i];
        if (m->queued)
            continue;
        if (tx_room(s, m->len) != LADE_OK)
            return;
        uint8_t *p = s->cfg.tx_buf + s->tx_len;
        memcpy(p, s->cfg.store_buf + m->off, m->len);
        if (m->sent_before) {
            p[0] |= 0x08;
            s->stats.resends++;
        }
        s->tx_len += m->len;
        m->queued = m->sent_before = true;
    }
}

static void remove_inflight(struct lade_mqtt_session *s, size_t i)
{
    struct lade_mqtt_inflight *v = s->cfg.inflight;
    size_t off = v[i].off, len = v[i].len;
    memmove(s->cfg.store_buf + off, s->cfg.store_buf + off + len, s->store_len - off - len);
    s->store_len -= len;
    for (size_t j = i + 1; j < s->n_inflight; j++)
        v[j].off -= len;
    memmove(&v[i], &v[i + 1], (s->n_inflight - i - 1) * sizeof v[0]);
    s->n_inflight--;
}

/* ------------------------------------------------------------ commands */

lade_err lade_mqtt_session_start(struct lade_mqtt_session *s, const struct lade_transport *t,
                                 const char *password, uint64_t now_ms)
{
    if (s->state != LADE_MQTT_DISCONNECTED)
        return LADE_ERR_STATE;
    if (!t || !t->send || !t->recv)
        return LADE_ERR_INVAL;
    struct lade_mqtt_connect c = {
        .client_id = lade_str_c(s->cfg.client_id),
        .has_username = s->cfg.username != NULL,
        .username = lade_str_c(s->cfg.username),
        .has_password = password != NULL,
        .password = lade_str_c(password),
        .clean_session = s->cfg.clean_session,
        .keepalive_s = s->cfg.keepalive_s,
    };
    size_t n;
    lade_err e = lade_mqtt_encode_connect(&c, s->cfg.tx_buf, s->cfg.tx_cap, &n);
    if (e)
        return e;
    s->tx_off = 0;
    s->tx_len = n;
    s->t = *t;
    s->connack_deadline_ms = now_ms + s->cfg.connack_timeout_ms;
    s->last_send_ms = now_ms;
    s->last_recv_ms = now_ms;
    set_state(s, LADE_MQTT_CONNECTING);
    return LADE_OK;
}

void lade_mqtt_session_lost(struct lade_mqtt_session *s)
{
    set_state(s, LADE_MQTT_DISCONNECTED);
}

void lade_mqtt_session_disconnect(struct lade_mqtt_session *s)
{
    size_t n;
    if (s->state == LADE_MQTT_CONNECTED && tx_room(s, LADE_MQTT_EMPTY_SIZE) == LADE_OK &&
        lade_mqtt_encode_empty(LADE_MQTT_DISCONNECT, s->cfg.tx_buf + s->tx_len,
                               s->cfg.tx_cap - s->tx_len, &n) == LADE_OK) {
        s->tx_len += n;
        set_state(s, LADE_MQTT_DISCONNECTING);
        return;
    }
    if (s->state != LADE_MQTT_DISCONNECTING)
        set_state(s, LADE_MQTT_DISCONNECTED);
}

lade_err lade_mqtt_publish(struct lade_mqtt_session *s, const char *topic, const void *payload,
                           size_t len, int qos, bool retain, uint16_t *packet_id)
{
    if (packet_id)
        *packet_id = 0;
    if (!topic || qos < 0 || qos > 1)
        return LADE_ERR_INVAL;
    struct lade_mqtt_publish p = {
        .topic = lade_str_c(topic),
        .payload = payload,
        .payload_len = len,
        .qos = (uint8_t)qos,
        .retain = retain,
        .packet_id = qos ? 1 : 0, /* placeholder for sizing */
    };
    size_t size, n;
    lade_err e = lade_mqtt_publish_size(&p, &size);
    if (e)
        return e;
    if (size > s->cfg.tx_cap)
        return LADE_ERR_NOSPACE;
    if (qos == 0) {
        if (s->state != LADE_MQTT_CONNECTED)
            return LADE_ERR_STATE;
        e = tx_room(s, size);
        if (e)
            return e;
        e = lade_mqtt_encode_publish(&p, s->cfg.tx_buf + s->tx_len, s->cfg.tx_cap - s->tx_len, &n);
        if (e)
            return e;
        s->tx_len += n;
        return LADE_OK;
    }
    if (size > s->cfg.store_cap)
        return LADE_ERR_NOSPACE;
    if (s->n_inflight >= s->cfg.inflight_cap || s->cfg.store_cap - s->store_len < size)
        return LADE_ERR_FULL;
    p.packet_id = alloc_id(s);
    if (!p.packet_id)
        return LADE_ERR_FULL;
    e = lade_mqtt_encode_publish(&p, s->cfg.store_buf + s->store_len,
                                 s->cfg.store_cap - s->store_len, &n);
    if (e)
        return e;
    s->cfg.inflight[s->n_inflight++] =
        (struct lade_mqtt_inflight){.off = s->store_len, .len = n, .packet_id = p.packet_id};
    s->store_len += n;
    pump(s);
    if (packet_id)
        *packet_id = p.packet_id;
    return LADE_OK;
}

lade_err lade_mqtt_subscribe(struct lade_mqtt_session *s, const char *const *filters,
                             const uint8_t *qos, size_t n, uint16_t *packet_id)
{
    if (packet_id)
        *packet_id = 0;
    if (!filters || !qos || n == 0)
        return LADE_ERR_INVAL;
    size_t plen = 0;
    for (size_t i = 0; i < n; i++) {
        if (!filters[i] || qos[i] > 1)
            return LADE_ERR_INVAL; /* QoS 2 is not supported (see mqtt.h) */
        struct lade_str f = lade_str_c(filters[i]);
        if (!lade_mqtt_filter_valid(f.p, f.n))
            return lade_utf8_valid((const uint8_t *)f.p, f.n, false) ? LADE_ERR_INVAL
                                                                     : LADE_ERR_UTF8;
        plen += 2 + f.n + 1;
        if (plen > 0xFFFF)
            return LADE_ERR_TOO_BIG; /* the record length is 16 bits */
    }
    if (sub_record_packet_size(plen) > s->cfg.tx_cap)
        return LADE_ERR_NOSPACE;
    if (s->cfg.sub_cap - s->sub_len < 2 + plen)
        return LADE_ERR_FULL;
    size_t rec = s->sub_len;
    uint8_t *p = s->cfg.sub_buf + rec;
    size_t o = 0;
    p[o++] = (uint8_t)(plen >> 8);
    p[o++] = (uint8_t)plen;
    for (size_t i = 0; i < n; i++) {
        size_t fl = strlen(filters[i]);
        p[o++] = (uint8_t)(fl >> 8);
        p[o++] = (uint8_t)fl;
        memcpy(p + o, filters[i], fl);
        o += fl;
        p[o++] = qos[i];
    }
    s->sub_len += o;
    if (s->sub_sent == rec) {
        uint16_t id = send_next_sub(s);
        if (packet_id)
            *packet_id = id;
    }
    pump(s);
    return LADE_OK;
}

/* ------------------------------------------------------------ receiving */

static lade_err on_connack(struct lade_mqtt_session *s, const struct lade_mqtt_frame *f)
{
    struct lade_mqtt_connack ca;
    lade_err e = lade_mqtt_decode_connack(f, &ca);
    if (e)
        return e;
    if (ca.return_code != LADE_MQTT_CONNACK_ACCEPTED) {
        LOG_W(MOD, "%s: CONNACK refused, return code %u", s->cfg.client_id, ca.return_code);
        if (s->cb.on_connack)
            s->cb.on_connack(s->ud, ca.session_present, ca.return_code);
        return ca.return_code == LADE_MQTT_CONNACK_BAD_USER_PASS ||
                       ca.return_code == LADE_MQTT_CONNACK_NOT_AUTHORIZED
                   ? LADE_ERR_AUTH
                   : LADE_ERR_PROTO;
    }
    s->stats.connects++;
    set_state(s, LADE_MQTT_CONNECTED);
    /* Subscriptions are restored on every connect: with a clean session the broker has none, and
     * IoT Hub does not keep them reliably either. Then unacknowledged QoS 1 (§4.4). */
    pump(s);
    if (s->cb.on_connack)
        s->cb.on_connack(s->ud, ca.session_present, ca.return_code);
    return LADE_OK;
}

static lade_err on_publish(struct lade_mqtt_session *s, const struct lade_mqtt_frame *f, bool *hold)
{
    struct lade_mqtt_publish m;
    lade_err e = lade_mqtt_decode_publish(f, &m);
    if (e)
        return e;
    if (s->state != LADE_MQTT_CONNECTED) {
        /* DISCONNECT is queued: nothing may follow it, so no PUBACK; the broker redelivers. */
        LOG_D(MOD, "%s: PUBLISH ignored while disconnecting", s->cfg.client_id);
        return LADE_OK;
    }
    if (m.qos == 1) {
        /* The PUBACK is queued before the callback so that a publish from inside the callback
         * cannot take its room; it is not written before on_message returns anyway. */
        e = tx_room(s, LADE_MQTT_ACK_SIZE);
        if (e == LADE_ERR_FULL) {
            *hold = true;
            return LADE_OK;
        }
        size_t n;
        if (!e)
            e = lade_mqtt_encode_ack(LADE_MQTT_PUBACK, m.packet_id, s->cfg.tx_buf + s->tx_len,
                                     s->cfg.tx_cap - s->tx_len, &n);
        if (e)
            return e;
        s->tx_len += n;
    }
    if (s->cb.on_message)
        s->cb.on_message(s->ud, &m);
    return LADE_OK;
}

static lade_err dispatch(struct lade_mqtt_session *s, const struct lade_mqtt_frame *f, bool *hold)
{
    lade_err e;
    uint16_t id;
    LOG_T(MOD, "%s: received %s (%zu bytes)", s->cfg.client_id, lade_mqtt_type_name(f->type),
          f->size);
    if (s->state == LADE_MQTT_CONNECTING) {
        if (f->type != LADE_MQTT_CONNACK) {
            LOG_W(MOD, "%s: %s before CONNACK", s->cfg.client_id, lade_mqtt_type_name(f->type));
            return LADE_ERR_PROTO; /* §3.2: the first packet from the server is CONNACK */
        }
        return on_connack(s, f);
    }
    switch (f->type) {
    case LADE_MQTT_PUBLISH:
        return on_publish(s, f, hold);
    case LADE_MQTT_PUBACK:
        e = lade_mqtt_decode_ack(f, &id);
        if (e)
            return e;
        for (size_t i = 0; i < s->n_inflight; i++) {
            if (s->cfg.inflight[i].packet_id == id) {
                remove_inflight(s, i);
                if (s->cb.on_puback)
                    s->cb.on_puback(s->ud, id);
                return LADE_OK;
            }
        }
        LOG_D(MOD, "%s: PUBACK for unknown id %u ignored", s->cfg.client_id, id);
        return LADE_OK;
    case LADE_MQTT_SUBACK: {
        struct lade_mqtt_suback sa;
        e = lade_mqtt_decode_suback(f, &sa);
        if (e)
            return e;
        for (size_t i = 0; i < sa.n; i++) {
            if (sa.codes[i] == LADE_MQTT_SUBACK_FAILURE)
                LOG_W(MOD, "%s: SUBSCRIBE id %u: filter %zu refused", s->cfg.client_id,
                      sa.packet_id, i);
        }
        if (s->cb.on_suback)
            s->cb.on_suback(s->ud, sa.packet_id, sa.codes, sa.n);
        return LADE_OK;
    }
    case LADE_MQTT_UNSUBACK:
        e = lade_mqtt_decode_ack(f, &id);
        if (!e)
            LOG_D(MOD, "%s: UNSUBACK id %u ignored", s->cfg.client_id, id);
        return e;
    case LADE_MQTT_PINGRESP:
        e = lade_mqtt_decode_empty(f);
        if (!e)
            s->ping_outstanding = false;
        return e;
    default:
        /* CONNACK twice, QoS 2 flow packets, and packets only a server receives. */
        LOG_W(MOD, "%s: unexpected %s", s->cfg.client_id, lade_mqtt_type_name(f->type));
        return LADE_ERR_PROTO;
    }
}

/* Dispatches every complete packet in rx, then moves the incomplete tail to the front. */
static lade_err process_rx(struct lade_mqtt_session *s)
{
    size_t off = 0;
    lade_err e = LADE_OK;
    s->rx_held = false;
    while (s->state == LADE_MQTT_CONNECTING || s->state == LADE_MQTT_CONNECTED ||
           s->state == LADE_MQTT_DISCONNECTING) {
        struct lade_mqtt_frame f;
        bool hold = false;
        e = lade_mqtt_frame(s->cfg.rx_buf + off, s->rx_len - off, s->cfg.max_packet, &f);
        if (e == LADE_ERR_AGAIN) {
            e = LADE_OK;
            break;
        }
        if (!e)
            e = dispatch(s, &f, &hold);
        if (e)
            return fail(s, e);
        if (hold) {
            s->rx_held = true;
            break;
        }
        off += f.size;
        s->stats.packets_in++;
    }
    if (s->state == LADE_MQTT_DISCONNECTED)
        return LADE_OK; /* a callback disconnected; rx was dropped */
    if (off) {
        memmove(s->cfg.rx_buf, s->cfg.rx_buf + off, s->rx_len - off);
        s->rx_len -= off;
    }
    return e;
}

lade_err lade_mqtt_session_on_readable(struct lade_mqtt_session *s, uint64_t now_ms)
{
    if (s->state == LADE_MQTT_DISCONNECTED)
        return LADE_ERR_STATE;
    lade_err e = process_rx(s);
    if (e)
        return e;
    for (;;) {
        if (s->rx_held || s->state == LADE_MQTT_DISCONNECTED)
            return LADE_OK;
        if (s->rx_len >= s->cfg.rx_cap)
            return fail(s, LADE_ERR_TOO_BIG); /* unreachable: max_packet <= rx_cap */
        size_t done = 0;
        e = s->t.recv(s->t.ctx, s->cfg.rx_buf + s->rx_len, s->cfg.rx_cap - s->rx_len, &done);
        if (e == LADE_ERR_AGAIN)
            return LADE_OK;
        if (e)
            return fail(s, e);
        if (done == 0 || done > s->cfg.rx_cap - s->rx_len)
            return fail(s, LADE_ERR_IO); /* transport broke its contract */
        s->stats.bytes_in += done;
        s->rx_len += done;
        s->last_recv_ms = now_ms; /* the link lives: see the keep-alive in tick */
        e = process_rx(s);
        if (e)
            return e;
    }
}

/* ------------------------------------------------------------ sending */

/* Counts bytes and completed packets. tx holds whole packets back to back, so the size of the
 * packet at the head can always be re-read from its fixed header. */
static void account_sent(struct lade_mqtt_session *s, size_t done)
{
    s->stats.bytes_out += done;
    while (done) {
        if (s->tx_pkt_left == 0) {
            struct lade_mqtt_frame f;
            if (lade_mqtt_frame(s->cfg.tx_buf + s->tx_off, tx_pending(s), 0, &f) != LADE_OK) {
                s->tx_off += done; /* cannot happen: we only queue whole packets */
                return;
            }
            s->tx_pkt_left = f.size;
        }
        size_t k = done < s->tx_pkt_left ? done : s->tx_pkt_left;
        s->tx_pkt_left -= k;
        s->tx_off += k;
        done -= k;
        if (s->tx_pkt_left == 0)
            s->stats.packets_out++;
    }
}

lade_err lade_mqtt_session_flush(struct lade_mqtt_session *s, uint64_t now_ms)
{
    if (s->state == LADE_MQTT_DISCONNECTED)
        return LADE_ERR_STATE;
    for (;;) {
        pump(s);
        while (tx_pending(s)) {
            size_t done = 0;
            lade_err e = s->t.send(s->t.ctx, s->cfg.tx_buf + s->tx_off, tx_pending(s), &done);
            if (e == LADE_ERR_AGAIN)
                return LADE_ERR_AGAIN;
            if (e)
                return fail(s, e);
            if (done == 0 || done > tx_pending(s))
                return fail(s, LADE_ERR_IO);
            account_sent(s, done);
            s->last_send_ms = now_ms; /* §3.1.2.10: keep-alive counts from the last send */
            if (s->tx_off == s->tx_len)
                s->tx_off = s->tx_len = 0;
            pump(s);
        }
        if (!s->rx_held)
            break;
        lade_err e = process_rx(s); /* tx is empty now: held PUBACKs fit */
        if (e)
            return e;
        if (s->state == LADE_MQTT_DISCONNECTED)
            return LADE_OK;
    }
    if (s->state == LADE_MQTT_DISCONNECTING)
        set_state(s, LADE_MQTT_DISCONNECTED);
    return LADE_OK;
}

bool lade_mqtt_session_wants_write(const struct lade_mqtt_session *s)
{
    return s->state != LADE_MQTT_DISCONNECTED && (tx_pending(s) > 0 || s->rx_held);
}

/* ------------------------------------------------------------ timers */

lade_err lade_mqtt_session_tick(struct lade_mqtt_session *s, uint64_t now_ms,
                                uint64_t *next_deadline_ms)
{
    uint64_t next = UINT64_MAX;
    if (s->state == LADE_MQTT_CONNECTING) {
        if (now_ms >= s->connack_deadline_ms) {
            LOG_W(MOD, "%s: no CONNACK within %u ms", s->cfg.client_id,
                  (unsigned)s->cfg.connack_timeout_ms);
            next = UINT64_MAX;
            if (next_deadline_ms)
                *next_deadline_ms = next;
            return fail(s, LADE_ERR_TIMEOUT);
        }
        next = s->connack_deadline_ms;
    } else if (s->state == LADE_MQTT_CONNECTED && s->cfg.keepalive_s) {
        uint64_t ka_ms = (uint64_t)s->cfg.keepalive_s * 1000;
        /* The PINGREQ is due a keep-alive after the last send (§3.1.2.10), or two after the
         * last receipt, whichever is earlier. Sending alone does not prove the link: a client
         * that publishes QoS 0 more often than the keep-alive into a dead link (its TCP still
         * takes the bytes) would otherwise never ask, and never notice. Two intervals, not one:
         * when sends are rarer than the keep-alive (the production 900 s snapshots against
         * 240 s), a PINGREQ follows each within one interval and is answered, so the link is
         * never silent for two and the probe adds nothing (bench figure 4); only a client that
         * sends more often than the keep-alive pays one PINGREQ per two intervals. */
        uint64_t ping_due = s->last_send_ms + ka_ms;
        if (s->last_recv_ms + 2 * ka_ms < ping_due)
            ping_due = s->last_recv_ms + 2 * ka_ms;
        if (s->ping_outstanding && now_ms >= s->pingresp_deadline_ms) {
            LOG_W(MOD, "%s: no PINGRESP within %u ms", s->cfg.client_id,
                  (unsigned)s->cfg.pingresp_timeout_ms);
            if (next_deadline_ms)
                *next_deadline_ms = UINT64_MAX;
            return fail(s, LADE_ERR_TIMEOUT);
        }
        if (s->ping_outstanding) {
            next = s->pingresp_deadline_ms; /* one PINGREQ at a time */
        } else if (now_ms >= ping_due) {
            /* §3.1.2.10: send something within every keep-alive interval. If tx is full the
             * PINGREQ is not queued, but the PINGRESP timer still runs: a connection that
             * cannot drain is as dead as one that does not answer. */
            size_t n;
            if (tx_room(s, LADE_MQTT_EMPTY_SIZE) == LADE_OK &&
                lade_mqtt_encode_empty(LADE_MQTT_PINGREQ, s->cfg.tx_buf + s->tx_len,
                                       s->cfg.tx_cap - s->tx_len, &n) == LADE_OK)
                s->tx_len += n;
            s->ping_outstanding = true;
            s->pingresp_deadline_ms = now_ms + s->cfg.pingresp_timeout_ms;
            next = s->pingresp_deadline_ms;
        } else {
            next = ping_due;
        }
    }
    if (next_deadline_ms)
        *next_deadline_ms = next;
    return LADE_OK;
}
