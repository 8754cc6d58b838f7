/* MQTT 3.1.1 codec (OASIS standard, 29 October 2014). Section numbers refer to that text. */
#include "lade/mqtt.h"

#include <string.h>

const char *lade_mqtt_type_name(int type)
{
    static const char *const names[] = {
        "?",           "CONNECT",  "CONNACK", "PUBLISH",   "PUBACK",
        "PUBREC",      "PUBREL",   "PUBCOMP", "SUBSCRIBE", "SUBACK",
        "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP",  "DISCONNECT",
    };
    if (type < 1 || type > LADE_MQTT_DISCONNECT)
        return "?";
    return names[type];
}

/* ------------------------------------------------------------ strings and topics */

/* §1.5.3: UTF-8 encoded strings are well-formed and exclude U+0000. */
static bool str_ok(struct lade_str s)
{
    return s.n <= 0xFFFF && (s.n == 0 || lade_utf8_valid((const uint8_t *)s.p, s.n, false));
}

bool lade_mqtt_topic_valid(const char *p, size_t n)
{
    /* §4.7.3: at least one character; §3.3.2.1: no wildcards in a topic name. */
    if (n == 0 || n > 0xFFFF || !lade_utf8_valid((const uint8_t *)p, n, false))
        return false;
    return memchr(p, '+', n) == NULL && memchr(p, '#', n) == NULL;
}

bool lade_mqtt_filter_valid(const char *p, size_t n)
{
    if (n == 0 || n > 0xFFFF || !lade_utf8_valid((const uint8_t *)p, n, false))
        return false;
    for (size_t i = 0; i < n; i++) {
        bool level_start = i == 0 || p[i - 1] == '/';
        bool level_end = i + 1 == n || p[i + 1] == '/';
        if (p[i] == '+' && !(level_start && level_end))
            return false; /* §4.7.1.3: '+' occupies an entire level */
        if (p[i] == '#' && !(level_start && i + 1 == n))
            return false; /* §4.7.1.2: '#' alone in the last level */
    }
    return true;
}

/* ------------------------------------------------------------ writing */

static size_t rl_bytes(size_t rem)
{
    return rem < 128 ? 1 : rem < 16384 ? 2 : rem < 2097152 ? 3 : 4;
}

struct wr {
    uint8_t *p;
    size_t off;
};

static void put_u8(struct wr *w, uint8_t v)
{
    w->p[w->off++] = v;
}

static void put_u16(struct wr *w, uint16_t v)
{
    put_u8(w, (uint8_t)(v >> 8));
    put_u8(w, (uint8_t)v);
}

static void put_bytes(struct wr *w, const void *p, size_t n)
{
    if (n)
        memcpy(w->p + w->off, p, n);
    w->off += n;
}

static void put_str(struct wr *w, struct lade_str s)
{
    put_u16(w, (uint16_t)s.n);
    put_bytes(w, s.p, s.n);
}

/* §2.2.3: seven bits per byte, least significant first, bit 7 = more bytes follow. */
static void put_header(struct wr *w, uint8_t first, size_t rem)
{
    put_u8(w, first);
    do {
        uint8_t b = rem & 0x7F;
        rem >>= 7;
        put_u8(w, (uint8_t)(b | (rem ? 0x80 : 0)));
    } while (rem);
}

static lade_err total_size(size_t rem, size_t *size)
{
    if (rem > LADE_MQTT_MAX_REMAINING)
        return LADE_ERR_TOO_BIG;
    *size = 1 + rl_bytes(rem) + rem;
    return LADE_OK;
}

/* Shared tail of every two-step encoder: size check before any byte is written. */
static lade_err begin(uint8_t *buf, size_t cap, size_t size, struct wr *w)
{
    if (!buf || cap < size)
        return LADE_ERR_NOSPACE;
    w->p = buf;
    w->off = 0;
    return LADE_OK;
}

/* ------------------------------------------------------------ CONNECT */

static lade_err connect_rem(const struct lade_mqtt_connect *c, size_t *rem)
{
    if (!c)
        return LADE_ERR_INVAL;
    if (!str_ok(c->client_id))
        return c->client_id.n > 0xFFFF ? LADE_ERR_INVAL : LADE_ERR_UTF8;
    if (c->client_id.n == 0 && !c->clean_session)
        return LADE_ERR_INVAL; /* §3.1.3.1 */
    if (c->has_password && !c->has_username)
        return LADE_ERR_INVAL; /* §3.1.2.9 */
    size_t n = 10 + 2 + c->client_id.n;
    if (c->has_will) {
        if (c->will_qos > 1 || c->will_payload.n > 0xFFFF)
            return LADE_ERR_INVAL;
        if (!lade_mqtt_topic_valid(c->will_topic.p, c->will_topic.n))
            return str_ok(c->will_topic) ? LADE_ERR_INVAL : LADE_ERR_UTF8;
        n += 2 + c->will_topic.n + 2 + c->will_payload.n;
    } else if (c->will_qos || c->will_retain) {
        return LADE_ERR_INVAL; /* §3.1.2.6, §3.1.2.7 */
    }
    if (c->has_username) {
        if (!str_ok(c->username))
            return c->username.n > 0xFFFF ? LADE_ERR_INVAL : LADE_ERR_UTF8;
        n += 2 + c->username.n;
    }
    if (c->has_password) {
        if (c->password.n > 0xFFFF)
            return LADE_ERR_INVAL;
        n += 2 + c->password.n;
    }
    *rem = n;
    return LADE_OK;
}

lade_err lade_mqtt_connect_size(const struct lade_mqtt_connect *c, size_t *size)
{
    size_t rem;
    lade_err e = connect_rem(c, &rem);
    return e ? e : total_size(rem, size);
}

lade_err lade_mqtt_encode_connect(const struct lade_mqtt_connect *c, uint8_t *buf, size_t cap,
                                  size_t *out_len)
{
    size_t rem, size;
    struct wr w;
    lade_err e = connect_rem(c, &rem);
    if (!e)
        e = total_size(rem, &size);
    if (!e)
        e = begin(buf, cap, size, &w);
    if (e)
        return e;
    uint8_t flags = (uint8_t)((c->has_username ? 0x80 : 0) | (c->has_password ? 0x40 : 0) |
                              (c->will_retain ? 0x20 : 0) | (c->will_qos << 3) |
                              (c->has_will ? 0x04 : 0) | (c->clean_session ? 0x02 : 0));
    put_header(&w, LADE_MQTT_CONNECT << 4, rem);
    put_str(&w, LADE_STR("MQTT"));
    put_u8(&w, 4); /* §3.1.2.2 protocol level for 3.1.1 */
    put_u8(&w, flags);
    put_u16(&w, c->keepalive_s);
    put_str(&w, c->client_id);
    if (c->has_will) {
        put_str(&w, c->will_topic);
        put_str(&w, c->will_payload);
    }
    if (c->has_username)
        put_str(&w, c->username);
    if (c->has_password)
        put_str(&w, c->password);
    *out_len = w.off;
    return LADE_OK;
}

/* ------------------------------------------------------------ PUBLISH */

static lade_err publish_rem(const struct lade_mqtt_publish *p, size_t *rem)
{
    if (!p || p->qos > 1 || (p->qos == 1 && p->packet_id == 0) || (p->qos == 0 && p->dup) ||
        (p->payload_len && !p->payload))
        return LADE_ERR_INVAL;
    if (!lade_mqtt_topic_valid(p->topic.p, p->topic.n))
        return str_ok(p->topic) ? LADE_ERR_INVAL : LADE_ERR_UTF8;
    size_t n = 2 + p->topic.n + (p->qos ? 2 : 0);
    if (p->payload_len > LADE_MQTT_MAX_REMAINING - n)
        return LADE_ERR_TOO_BIG;
    *rem = n + p->payload_len;
    return LADE_OK;
}

lade_err lade_mqtt_publish_size(const struct lade_mqtt_publish *p, size_t *size)
{
    size_t rem;
    lade_err e = publish_rem(p, &rem);
    return e ? e : total_size(rem, size);
}

lade_err lade_mqtt_encode_publish(const struct lade_mqtt_publish *p, uint8_t *buf, size_t cap,
                                  size_t *out_len)
{
    size_t rem, size;
    struct wr w;
    lade_err e = publish_rem(p, &rem);
    if (!e)
        e = total_size(rem, &size);
    if (!e)
        e = begin(buf, cap, size, &w);
    if (e)
        return e;
    uint8_t first = (uint8_t)(LADE_MQTT_PUBLISH << 4 | (p->dup ? 0x08 : 0) | p->qos << 1 |
                              (p->retain ? 0x01 : 0));
    put_header(&w, first, rem);
    put_str(&w, p->topic);
    if (p->qos)
        put_u16(&w, p->packet_id);
    put_bytes(&w, p->payload, p->payload_len);
    *out_len = w.off;
    return LADE_OK;
}

/* ------------------------------------------------------------ SUBSCRIBE / UNSUBSCRIBE */

static lade_err subscribe_rem(const struct lade_mqtt_subscribe *s, bool with_qos, size_t *rem)
{
    if (!s || s->packet_id == 0 || s->n == 0 || !s->filters)
        return LADE_ERR_INVAL;
    size_t n = 2;
    for (size_t i = 0; i < s->n; i++) {
        const struct lade_mqtt_topic_filter *tf = &s->filters[i];
        if (with_qos && tf->qos > 2)
            return LADE_ERR_INVAL;
        if (!lade_mqtt_filter_valid(tf->filter.p, tf->filter.n))
            return str_ok(tf->filter) ? LADE_ERR_INVAL : LADE_ERR_UTF8;
        n += 2 + tf->filter.n + (with_qos ? 1 : 0);
        if (n > LADE_MQTT_MAX_REMAINING)
            return LADE_ERR_TOO_BIG;
    }
    *rem = n;
    return LADE_OK;
}

static lade_err encode_sub(const struct lade_mqtt_subscribe *s, bool sub, uint8_t *buf, size_t cap,
                           size_t *out_len)
{
    size_t rem, size;
    struct wr w;
    lade_err e = subscribe_rem(s, sub, &rem);
    if (!e)
        e = total_size(rem, &size);
    if (!e)
        e = begin(buf, cap, size, &w);
    if (e)
        return e;
    /* §3.8.1, §3.10.1: reserved flags 0010 */
    put_header(&w, (uint8_t)((sub ? LADE_MQTT_SUBSCRIBE : LADE_MQTT_UNSUBSCRIBE) << 4 | 0x02), rem);
    put_u16(&w, s->packet_id);
    for (size_t i = 0; i < s->n; i++) {
        put_str(&w, s->filters[i].filter);
        if (sub)
            put_u8(&w, s->filters[i].qos);
    }
    *out_len = w.off;
    return LADE_OK;
}

lade_err lade_mqtt_subscribe_size(const struct lade_mqtt_subscribe *s, size_t *size)
{
    size_t rem;
    lade_err e = subscribe_rem(s, true, &rem);
    return e ? e : total_size(rem, size);
}

lade_err lade_mqtt_encode_subscribe(const struct lade_mqtt_subscribe *s, uint8_t *buf, size_t cap,
                                    size_t *out_len)
{
    return encode_sub(s, true, buf, cap, out_len);
}

lade_err lade_mqtt_unsubscribe_size(const struct lade_mqtt_subscribe *s, size_t *size)
{
    size_t rem;
    lade_err e = subscribe_rem(s, false, &rem);
    return e ? e : total_size(rem, size);
}

lade_err lade_mqtt_encode_unsubscribe(const struct lade_mqtt_subscribe *s, uint8_t *buf, size_t cap,
                                      size_t *out_len)
{
    return encode_sub(s, false, buf, cap, out_len);
}

/* ------------------------------------------------------------ small packets */

lade_err lade_mqtt_encode_ack(int type, uint16_t packet_id, uint8_t *buf, size_t cap,
                              size_t *out_len)
{
    struct wr w;
    if ((type != LADE_MQTT_PUBACK && type != LADE_MQTT_UNSUBACK) || packet_id == 0)
        return LADE_ERR_INVAL;
    lade_err e = begin(buf, cap, LADE_MQTT_ACK_SIZE, &w);
    if (e)
        return e;
    put_header(&w, (uint8_t)(type << 4), 2);
    put_u16(&w, packet_id);
    *out_len = w.off;
    return LADE_OK;
}

lade_err lade_mqtt_encode_empty(int type, uint8_t *buf, size_t cap, size_t *out_len)
{
    struct wr w;
    if (type != LADE_MQTT_PINGREQ && type != LADE_MQTT_PINGRESP && type != LADE_MQTT_DISCONNECT)
        return LADE_ERR_INVAL;
    lade_err e = begin(buf, cap, LADE_MQTT_EMPTY_SIZE, &w);
    if (e)
        return e;
    put_header(&w, (uint8_t)(type << 4), 0);
    *out_len = w.off;
    return LADE_OK;
}

lade_err lade_mqtt_encode_connack(const struct lade_mqtt_connack *c, uint8_t *buf, size_t cap,
                                  size_t *out_len)
{
    struct wr w;
    if (!c)
        return LADE_ERR_INVAL;
    lade_err e = begin(buf, cap, LADE_MQTT_ACK_SIZE, &w);
    if (e)
        return e;
    put_header(&w, LADE_MQTT_CONNACK << 4, 2);
    put_u8(&w, c->session_present ? 1 : 0);
    put_u8(&w, c->return_code);
    *out_len = w.off;
    return LADE_OK;
}

static bool suback_code_ok(uint8_t c)
{
    return c <= 2 || c == LADE_MQTT_SUBACK_FAILURE; /* §3.9.3 */
}

lade_err lade_mqtt_suback_size(const struct lade_mqtt_suback *s, size_t *size)
{
    if (!s || s->packet_id == 0 || s->n == 0 || !s->codes || s->n > LADE_MQTT_MAX_REMAINING - 2)
        return LADE_ERR_INVAL;
    for (size_t i = 0; i < s->n; i++) {
        if (!suback_code_ok(s->codes[i]))
            return LADE_ERR_INVAL;
    }
    return total_size(2 + s->n, size);
}

lade_err lade_mqtt_encode_suback(const struct lade_mqtt_suback *s, uint8_t *buf, size_t cap,
                                 size_t *out_len)
{
    size_t size;
    struct wr w;
    lade_err e = lade_mqtt_suback_size(s, &size);
    if (!e)
        e = begin(buf, cap, size, &w);
    if (e)
        return e;
    put_header(&w, LADE_MQTT_SUBACK << 4, 2 + s->n);
    put_u16(&w, s->packet_id);
    put_bytes(&w, s->codes, s->n);
    *out_len = w.off;
    return LADE_OK;
}

/* ------------------------------------------------------------ framing */

/* §2.2.2: flags that are fixed per packet type. PUBLISH carries DUP/QoS/RETAIN instead. */
static bool flags_ok(uint8_t type, uint8_t flags)
{
    switch (type) {
    case LADE_MQTT_PUBLISH:
        return ((flags >> 1) & 3) != 3; /* §3.3.1.2: QoS 3 is malformed */
    case LADE_MQTT_PUBREL:
    case LADE_MQTT_SUBSCRIBE:
    case LADE_MQTT_UNSUBSCRIBE:
        return flags == 0x2;
    default:
        return flags == 0;
    }
}

lade_err lade_mqtt_frame(const uint8_t *buf, size_t len, size_t max_packet,
                         struct lade_mqtt_frame *f)
{
    if (len == 0)
        return LADE_ERR_AGAIN;
    uint8_t type = buf[0] >> 4, flags = buf[0] & 0x0F;
    if (type == 0 || type == 15 || !flags_ok(type, flags))
        return LADE_ERR_PROTO;
    size_t rem = 0, i = 1;
    for (;;) {
        if (i > 4)
            return LADE_ERR_PROTO; /* §2.2.3: at most four length bytes */
        if (i >= len)
            return LADE_ERR_AGAIN;
        uint8_t b = buf[i];
        rem |= (size_t)(b & 0x7F) << (7 * (i - 1));
        i++;
        if (!(b & 0x80))
            break;
    }
    /* i <= 5 and rem <= 268435455 here, so no overflow. */
    size_t size = i + rem;
    if (max_packet && size > max_packet)
        return LADE_ERR_TOO_BIG;
    if (len < size)
        return LADE_ERR_AGAIN;
    f->type = type;
    f->flags = flags;
    f->body = buf + i;
    f->body_len = rem;
    f->size = size;
    return LADE_OK;
}

/* ------------------------------------------------------------ reading */

struct rd {
    const uint8_t *p;
    size_t n, off;
};

static bool get_u8(struct rd *r, uint8_t *v)
{
    if (r->n - r->off < 1)
        return false;
    *v = r->p[r->off++];
    return true;
}

static bool get_u16(struct rd *r, uint16_t *v)
{
    if (r->n - r->off < 2)
        return false;
    *v = (uint16_t)(r->p[r->off] << 8 | r->p[r->off + 1]);
    r->off += 2;
    return true;
}

/* Length-prefixed field; no content check (callers check UTF-8 where required). */
static bool get_bin(struct rd *r, struct lade_str *s)
{
    uint16_t n;
    if (!get_u16(r, &n) || r->n - r->off < n)
        return false;
    s->p = (const char *)r->p + r->off;
    s->n = n;
    r->off += n;
    return true;
}

static bool get_str(struct rd *r, struct lade_str *s)
{
    return get_bin(r, s) && str_ok(*s);
}

static struct rd reader(const struct lade_mqtt_frame *f)
{
    return (struct rd){f->body, f->body_len, 0};
}

lade_err lade_mqtt_decode_connack(const struct lade_mqtt_frame *f, struct lade_mqtt_connack *out)
{
    if (!f || f->type != LADE_MQTT_CONNACK)
        return LADE_ERR_INVAL;
    /* §3.2: remaining length exactly 2; §3.2.2.1: bits 7-1 of the ack flags are reserved. */
    if (f->body_len != 2 || (f->body[0] & 0xFE))
        return LADE_ERR_PROTO;
    out->session_present = f->body[0] & 1;
    out->return_code = f->body[1];
    return LADE_OK;
}

lade_err lade_mqtt_decode_publish(const struct lade_mqtt_frame *f, struct lade_mqtt_publish *out)
{
    if (!f || f->type != LADE_MQTT_PUBLISH)
        return LADE_ERR_INVAL;
    struct rd r = reader(f);
    struct lade_mqtt_publish p = {0};
    p.qos = (f->flags >> 1) & 3;
    p.dup = f->flags & 0x08;
    p.retain = f->flags & 0x01;
    if (p.qos > 1 || (p.qos == 0 && p.dup))
        return LADE_ERR_PROTO;
    if (!get_bin(&r, &p.topic) || !lade_mqtt_topic_valid(p.topic.p, p.topic.n))
        return LADE_ERR_PROTO;
    if (p.qos && (!get_u16(&r, &p.packet_id) || p.packet_id == 0))
        return LADE_ERR_PROTO; /* §2.3.1: non-zero */
    p.payload = r.p + r.off;
    p.payload_len = r.n - r.off;
    *out = p;
    return LADE_OK;
}

lade_err lade_mqtt_decode_ack(const struct lade_mqtt_frame *f, uint16_t *packet_id)
{
    if (!f || !(f->type == LADE_MQTT_PUBACK || f->type == LADE_MQTT_PUBREC ||
                f->type == LADE_MQTT_PUBREL || f->type == LADE_MQTT_PUBCOMP ||
                f->type == LADE_MQTT_UNSUBACK))
        return LADE_ERR_INVAL;
    struct rd r = reader(f);
    uint16_t id;
    if (f->body_len != 2 || !get_u16(&r, &id) || id == 0)
        return LADE_ERR_PROTO;
    *packet_id = id;
    return LADE_OK;
}

lade_err lade_mqtt_decode_suback(const struct lade_mqtt_frame *f, struct lade_mqtt_suback *out)
{
    if (!f || f->type != LADE_MQTT_SUBACK)
        return LADE_ERR_INVAL;
    struct rd r = reader(f);
    uint16_t id;
    if (!get_u16(&r, &id) || id == 0 || r.off == r.n)
        return LADE_ERR_PROTO;
    for (size_t i = r.off; i < r.n; i++) {
        if (!suback_code_ok(r.p[i]))
            return LADE_ERR_PROTO;
    }
    out->packet_id = id;
    out->codes = r.p + r.off;
    out->n = r.n - r.off;
    return LADE_OK;
}

lade_err lade_mqtt_decode_empty(const struct lade_mqtt_frame *f)
{
    if (!f || !(f->type == LADE_MQTT_PINGREQ || f->type == LADE_MQTT_PINGRESP ||
                f->type == LADE_MQTT_DISCONNECT))
        return LADE_ERR_INVAL;
    return f->body_len == 0 ? LADE_OK : LADE_ERR_PROTO;
}

lade_err lade_mqtt_decode_connect(const struct lade_mqtt_frame *f, struct lade_mqtt_connect *out)
{
    if (!f || f->type != LADE_MQTT_CONNECT)
        return LADE_ERR_INVAL;
    struct rd r = reader(f);
    struct lade_mqtt_connect c = {0};
    struct lade_str name;
    uint8_t flags;
    if (!get_bin(&r, &name) || !lade_str_eq(name, LADE_STR("MQTT")) ||
        !get_u8(&r, &c.protocol_level) || c.protocol_level != 4 || !get_u8(&r, &flags) ||
        !get_u16(&r, &c.keepalive_s))
        return LADE_ERR_PROTO;
    c.has_username = flags & 0x80;
    c.has_password = flags & 0x40;
    c.will_retain = flags & 0x20;
    c.will_qos = (flags >> 3) & 3;
    c.has_will = flags & 0x04;
    c.clean_session = flags & 0x02;
    if ((flags & 0x01) || (!c.has_will && (c.will_qos || c.will_retain)) || c.will_qos > 2 ||
        (c.has_password && !c.has_username))
        return LADE_ERR_PROTO; /* §3.1.2.3, §3.1.2.6/7, §3.1.2.9 */
    if (!get_str(&r, &c.client_id) || (c.client_id.n == 0 && !c.clean_session))
        return LADE_ERR_PROTO;
    if (c.has_will &&
        (!get_bin(&r, &c.will_topic) || !lade_mqtt_topic_valid(c.will_topic.p, c.will_topic.n) ||
         !get_bin(&r, &c.will_payload)))
        return LADE_ERR_PROTO;
    if (c.has_username && !get_str(&r, &c.username))
        return LADE_ERR_PROTO;
    if (c.has_password && !get_bin(&r, &c.password))
        return LADE_ERR_PROTO;
    if (r.off != r.n)
        return LADE_ERR_PROTO;
    *out = c;
    return LADE_OK;
}

lade_err lade_mqtt_decode_subscribe(const struct lade_mqtt_frame *f,
                                    struct lade_mqtt_subscribe *out,
                                    struct lade_mqtt_topic_filter *arr, size_t cap)
{
    if (!f || (f->type != LADE_MQTT_SUBSCRIBE && f->type != LADE_MQTT_UNSUBSCRIBE))
        return LADE_ERR_INVAL;
    bool sub = f->type == LADE_MQTT_SUBSCRIBE;
    struct rd r = reader(f);
    uint16_t id;
    size_t n = 0;
    if (!get_u16(&r, &id) || id == 0 || r.off == r.n)
        return LADE_ERR_PROTO; /* §3.8.3: at least one filter */
    while (r.off < r.n) {
        struct lade_mqtt_topic_filter tf = {0};
        if (!get_bin(&r, &tf.filter) || !lade_mqtt_filter_valid(tf.filter.p, tf.filter.n))
            return LADE_ERR_PROTO;
        if (sub && (!get_u8(&r, &tf.qos) || tf.qos > 2))
            return LADE_ERR_PROTO; /* §3.8.3.1: reserved bits zero, QoS <= 2 */
        if (n == cap)
            return LADE_ERR_NOSPACE;
        arr[n++] = tf;
    }
    out->packet_id = id;
    out->filters = arr;
    out->n = n;
    return LADE_OK;
}
