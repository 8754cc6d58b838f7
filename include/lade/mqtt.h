/* lade — MQTT 3.1.1 client: a pure codec and a non-blocking session state machine.
 *
 * Codec (no I/O, no allocation):
 *   - Encoders work in two steps: *_size() gives the exact packet size, lade_mqtt_encode_*()
 *     writes it into the caller's buffer, or fails with LADE_ERR_NOSPACE and writes nothing
 *     usable (never truncates). Invalid arguments give LADE_ERR_INVAL, strings that are not
 *     well-formed UTF-8 (or contain U+0000) LADE_ERR_UTF8, packets longer than the protocol
 *     allows (remaining length > 268 435 455) LADE_ERR_TOO_BIG.
 *   - lade_mqtt_frame() finds one complete packet at the start of a byte buffer and checks its
 *     fixed header; lade_mqtt_decode_*() parse the frame's body. Decoded strings and payloads are
 *     views into the input buffer: valid as long as that buffer is unchanged. Malformed input is
 *     LADE_ERR_PROTO; calling a decoder with a frame of another type is LADE_ERR_INVAL.
 *   - Only QoS 0 and 1 are supported: a PUBLISH with QoS 2 is LADE_ERR_PROTO (we never subscribe
 *     at QoS 2, so a broker must not send one) and PUBREC/PUBREL/PUBCOMP are framed but never
 *     accepted by the session.
 *
 * Session: see lade_mqtt_session_* below and docs/mqtt.md.
 */
#ifndef LADE_MQTT_H
#define LADE_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lade/codec.h"
#include "lade/err.h"
#include "lade/transport.h"

/* ---------------------------------------------------------------- codec */

enum lade_mqtt_type {
    LADE_MQTT_CONNECT = 1,
    LADE_MQTT_CONNACK = 2,
    LADE_MQTT_PUBLISH = 3,
    LADE_MQTT_PUBACK = 4,
    LADE_MQTT_PUBREC = 5,
    LADE_MQTT_PUBREL = 6,
    LADE_MQTT_PUBCOMP = 7,
    LADE_MQTT_SUBSCRIBE = 8,
    LADE_MQTT_SUBACK = 9,
    LADE_MQTT_UNSUBSCRIBE = 10,
    LADE_MQTT_UNSUBACK = 11,
    LADE_MQTT_PINGREQ = 12,
    LADE_MQTT_PINGRESP = 13,
    LADE_MQTT_DISCONNECT = 14,
};

/* CONNACK return codes (§3.2.2.3): data, not errors. */
enum lade_mqtt_connack_rc {
    LADE_MQTT_CONNACK_ACCEPTED = 0,
    LADE_MQTT_CONNACK_BAD_PROTOCOL = 1,
    LADE_MQTT_CONNACK_ID_REJECTED = 2,
    LADE_MQTT_CONNACK_UNAVAILABLE = 3,
    LADE_MQTT_CONNACK_BAD_USER_PASS = 4,
    LADE_MQTT_CONNACK_NOT_AUTHORIZED = 5,
};

#define LADE_MQTT_SUBACK_FAILURE   0x80u
#define LADE_MQTT_MAX_REMAINING    268435455u /* §2.2.3: four length bytes */
#define LADE_MQTT_MAX_FIXED_HEADER 5u
#define LADE_MQTT_ACK_SIZE         4u /* PUBACK, UNSUBACK, CONNACK */
#define LADE_MQTT_EMPTY_SIZE       2u /* PINGREQ, PINGRESP, DISCONNECT */

/* "CONNECT", "PUBLISH", ...; "?" for anything else. Static string. */
const char *lade_mqtt_type_name(int type);

/* One complete packet found by lade_mqtt_frame(). body points into the input buffer. */
struct lade_mqtt_frame {
    uint8_t type;        /* enum lade_mqtt_type */
    uint8_t flags;       /* low nibble of the first byte */
    const uint8_t *body; /* variable header + payload */
    size_t body_len;     /* the remaining length */
    size_t size;         /* whole packet: fixed header + body; bytes to consume */
};

/* Checks the fixed header at buf[0..len) and reports the packet it starts.
 * max_packet: the largest whole packet (fixed header included) accepted; 0 = protocol maximum.
 *   LADE_OK          *f describes the packet in buf[0..f->size)
 *   LADE_ERR_AGAIN   fewer bytes than one whole packet (read more and call again)
 *   LADE_ERR_TOO_BIG the declared size exceeds max_packet (known as soon as the length is
 *                    complete, before the body arrives)
 *   LADE_ERR_PROTO   reserved packet type, wrong flags (§2.2.2; QoS 3), remaining length longer
 *                    than 4 bytes (§2.2.3). Non-minimal length encodings are accepted.
 * Checks that need the body are done by the decoders. */
lade_err lade_mqtt_frame(const uint8_t *buf, size_t len, size_t max_packet,
                         struct lade_mqtt_frame *f) LADE_MUST_CHECK;

/* CONNECT (§3.1). Strings are views; absent optional fields have their has_* flag false.
 * Encoding rules: client_id may be empty only with clean_session (§3.1.3.1); a password needs a
 * username (§3.1.2.9); will_qos <= 1. protocol_level is filled by the decoder (only 4 is
 * accepted) and ignored by the encoder (which always writes "MQTT", 4). */
struct lade_mqtt_connect {
    struct lade_str client_id;
    bool has_username, has_password, has_will;
    struct lade_str username;
    struct lade_str password; /* binary data */
    struct lade_str will_topic;
    struct lade_str will_payload;
    uint8_t will_qos;
    bool will_retain;
    bool clean_session;
    uint16_t keepalive_s;
    uint8_t protocol_level;
};

struct lade_mqtt_connack {
    bool session_present;
    uint8_t return_code; /* enum lade_mqtt_connack_rc or any other value the server sent */
};

/* PUBLISH (§3.3). topic: non-empty, valid UTF-8 without U+0000 and without '+' or '#'.
 * packet_id is used (and must be non-zero) only for QoS 1. dup must be false for QoS 0. */
struct lade_mqtt_publish {
    struct lade_str topic;
    const uint8_t *payload;
    size_t payload_len;
    uint8_t qos; /* 0 or 1 */
    bool retain;
    bool dup;
    uint16_t packet_id;
};

/* One SUBSCRIBE / UNSUBSCRIBE entry. Filters follow §4.7 ('#' last and alone in its level,
 * '+' alone in its level). qos is ignored for UNSUBSCRIBE. */
struct lade_mqtt_topic_filter {
    struct lade_str filter;
    uint8_t qos; /* 0..2 */
};

struct lade_mqtt_subscribe {
    uint16_t packet_id; /* non-zero */
    const struct lade_mqtt_topic_filter *filters;
    size_t n; /* >= 1 */
};

struct lade_mqtt_suback {
    uint16_t packet_id;
    const uint8_t *codes; /* n return codes, each 0, 1, 2 or 0x80 (view into the input) */
    size_t n;
};

/* Encoders: *_size() → exact size in bytes; lade_mqtt_encode_*() → *out_len = bytes written. */
lade_err lade_mqtt_connect_size(const struct lade_mqtt_connect *c, size_t *size) LADE_MUST_CHECK;
lade_err lade_mqtt_encode_connect(const struct lade_mqtt_connect *c, uint8_t *buf, size_t cap,
                                  size_t *out_len) LADE_MUST_CHECK;
lade_err lade_mqtt_publish_size(const struct lade_mqtt_publish *p, size_t *size) LADE_MUST_CHECK;
lade_err lade_mqtt_encode_publish(const struct lade_mqtt_publish *p, uint8_t *buf, size_t cap,
                                  size_t *out_len) LADE_MUST_CHECK;
lade_err lade_mqtt_subscribe_size(const struct lade_mqtt_subscribe *s,
                                  size_t *size) LADE_MUST_CHECK;
lade_err lade_mqtt_encode_subscribe(const struct lade_mqtt_subscribe *s, uint8_t *buf, size_t cap,
                                    size_t *out_len) LADE_MUST_CHECK;
lade_err lade_mqtt_unsubscribe_size(const struct lade_mqtt_subscribe *s,
                                    size_t *size) LADE_MUST_CHECK;
lade_err lade_mqtt_encode_unsubscribe(const struct lade_mqtt_subscribe *s, uint8_t *buf, size_t cap,
                                      size_t *out_len) LADE_MUST_CHECK;
/* PUBACK or UNSUBACK (client→broker PUBACK; UNSUBACK for test brokers); packet_id != 0.
 * Always LADE_MQTT_ACK_SIZE bytes. */
lade_err lade_mqtt_encode_ack(int type, uint16_t packet_id, uint8_t *buf, size_t cap,
                              size_t *out_len) LADE_MUST_CHECK;
/* PINGREQ, PINGRESP or DISCONNECT. Always LADE_MQTT_EMPTY_SIZE bytes. */
lade_err lade_mqtt_encode_empty(int type, uint8_t *buf, size_t cap,
                                size_t *out_len) LADE_MUST_CHECK;
/* Broker-side packets, for test brokers. CONNACK is LADE_MQTT_ACK_SIZE bytes. */
lade_err lade_mqtt_encode_connack(const struct lade_mqtt_connack *c, uint8_t *buf, size_t cap,
                                  size_t *out_len) LADE_MUST_CHECK;
lade_err lade_mqtt_suback_size(const struct lade_mqtt_suback *s, size_t *size) LADE_MUST_CHECK;
lade_err lade_mqtt_encode_suback(const struct lade_mqtt_suback *s, uint8_t *buf, size_t cap,
                                 size_t *out_len) LADE_MUST_CHECK;

/* Decoders: f from lade_mqtt_frame(); every length is checked against the frame, and trailing
 * bytes are LADE_ERR_PROTO. */
lade_err lade_mqtt_decode_connack(const struct lade_mqtt_frame *f,
                                  struct lade_mqtt_connack *out) LADE_MUST_CHECK;
/* QoS 2 → LADE_ERR_PROTO; DUP with QoS 0 → LADE_ERR_PROTO (§3.3.1.1). */
lade_err lade_mqtt_decode_publish(const struct lade_mqtt_frame *f,
                                  struct lade_mqtt_publish *out) LADE_MUST_CHECK;
/* PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK: exactly a non-zero packet id. */
lade_err lade_mqtt_decode_ack(const struct lade_mqtt_frame *f, uint16_t *packet_id) LADE_MUST_CHECK;
lade_err lade_mqtt_decode_suback(const struct lade_mqtt_frame *f,
                                 struct lade_mqtt_suback *out) LADE_MUST_CHECK;
/* PINGREQ, PINGRESP, DISCONNECT: remaining length 0. */
lade_err lade_mqtt_decode_empty(const struct lade_mqtt_frame *f) LADE_MUST_CHECK;
/* Server-side decoders for test brokers. */
lade_err lade_mqtt_decode_connect(const struct lade_mqtt_frame *f,
                                  struct lade_mqtt_connect *out) LADE_MUST_CHECK;
/* SUBSCRIBE or UNSUBSCRIBE; entries go to arr[0..cap) and out->filters = arr.
 * More than cap entries → LADE_ERR_NOSPACE. */
lade_err lade_mqtt_decode_subscribe(const struct lade_mqtt_frame *f,
                                    struct lade_mqtt_subscribe *out,
                                    struct lade_mqtt_topic_filter *arr, size_t cap) LADE_MUST_CHECK;

/* Topic name (PUBLISH) / topic filter (SUBSCRIBE) checks, §4.7 and §1.5.3. */
bool lade_mqtt_topic_valid(const char *p, size_t n);
bool lade_mqtt_filter_valid(const char *p, size_t n);

/* ---------------------------------------------------------------- session
 *
 * One MQTT connection's protocol state, kept across reconnects: the QoS 1 messages not yet
 * acknowledged and the list of subscriptions. The caller owns the socket/TLS (given as a
 * lade_transport), the event loop and the clock; the session never blocks, never allocates and
 * never reads a clock (now_ms is monotonic milliseconds from the caller).
 *
 * Call pattern:
 *   lade_mqtt_session_init(...)                 once
 *   transport connected → lade_mqtt_session_start(s, t, password, now)
 *   readable            → lade_mqtt_session_on_readable(s, now)
 *   wants_write() true  → wait for writable → lade_mqtt_session_flush(s, now)
 *   timer (next_deadline from tick) → lade_mqtt_session_tick(s, now, &next)
 *   transport died      → lade_mqtt_session_lost(s), close it, back off, start again
 *
 * Errors: on_readable, flush and tick return LADE_OK / LADE_ERR_AGAIN (flush: bytes still
 * pending) in normal operation. Any other error means the connection is unusable; the session
 * has already moved to DISCONNECTED (in-flight messages and subscriptions kept), so the caller
 * only closes the transport and reconnects later:
 *   LADE_ERR_PROTO   broker sent malformed or unexpected data; or CONNACK refused (rc 1-3, >5)
 *   LADE_ERR_AUTH    CONNACK refused with rc 4 or 5 (do not retry in a tight loop)
 *   LADE_ERR_TOO_BIG broker sent a packet larger than cfg.max_packet
 *   LADE_ERR_TIMEOUT no CONNACK within connack_timeout_ms, or no PINGRESP in pingresp_timeout_ms
 *   LADE_ERR_CLOSED / other transport errors, passed through
 *
 * Callbacks are called from on_readable (and from flush, when packets held back for lack of
 * tx room are processed). They may call lade_mqtt_publish/subscribe and
 * lade_mqtt_session_disconnect; they must not call init/start/lost.
 */

enum lade_mqtt_state {
    LADE_MQTT_DISCONNECTED = 0, /* no transport */
    LADE_MQTT_CONNECTING,       /* CONNECT queued/sent, waiting for CONNACK */
    LADE_MQTT_CONNECTED,        /* CONNACK accepted */
    LADE_MQTT_DISCONNECTING,    /* DISCONNECT queued; DISCONNECTED once it is flushed */
};
const char *lade_mqtt_state_name(enum lade_mqtt_state st);

/* Session-private bookkeeping of one QoS 1 message awaiting PUBACK; the caller only provides
 * an array of these. */
struct lade_mqtt_inflight {
    size_t off, len; /* the encoded PUBLISH in cfg.store_buf */
    uint16_t packet_id;
    bool queued;      /* copied to tx on the current connection */
    bool sent_before; /* copied to tx on some connection → DUP=1 when sent again */
};

struct lade_mqtt_session_cfg {
    const char *client_id; /* borrowed; must outlive the session. Device id for IoT Hub. */
    const char *username;  /* borrowed; NULL = no username. The password is given per start. */
    uint16_t keepalive_s;  /* 0 disables keep-alive */
    bool clean_session;
    uint32_t connack_timeout_ms;  /* > 0 */
    uint32_t pingresp_timeout_ms; /* > 0 when keepalive_s > 0 */
    size_t max_packet;            /* largest whole packet accepted from the broker; <= rx_cap */

    /* Caller memory, borrowed for the session's lifetime. */
    uint8_t *rx_buf; /* receive buffer: holds at least one packet of max_packet bytes */
    size_t rx_cap;
    uint8_t *tx_buf; /* packets queued for the transport; bounds the largest packet we send */
    size_t tx_cap;
    struct lade_mqtt_inflight *inflight; /* QoS 1 slots: at most this many unacknowledged */
    size_t inflight_cap;
    uint8_t *store_buf; /* copies of the encoded in-flight PUBLISH packets */
    size_t store_cap;
    uint8_t *sub_buf; /* remembered subscriptions (as SUBSCRIBE payloads) */
    size_t sub_cap;
};

/* All optional (NULL). Views are valid only during the call. */
struct lade_mqtt_callbacks {
    void (*on_connack)(void *ud, bool session_present, uint8_t return_code);
    void (*on_message)(void *ud, const struct lade_mqtt_publish *msg);
    void (*on_puback)(void *ud, uint16_t packet_id);
    void (*on_suback)(void *ud, uint16_t packet_id, const uint8_t *codes, size_t n);
};

/* Counted at the transport boundary (MQTT bytes, not TLS/TCP), cumulative over reconnects. */
struct lade_mqtt_stats {
    uint64_t bytes_in;    /* bytes returned by transport recv */
    uint64_t bytes_out;   /* bytes accepted by transport send */
    uint64_t packets_in;  /* complete packets received and decoded */
    uint64_t packets_out; /* packets whose last byte was accepted by transport send */
    uint64_t connects;    /* accepted CONNACKs */
    uint64_t resends;     /* QoS 1 PUBLISH sent again with DUP=1 */
};

/* Caller-allocated; all fields private. */
struct lade_mqtt_session {
    struct lade_mqtt_session_cfg cfg;
    struct lade_mqtt_callbacks cb;
    void *ud;
    struct lade_transport t;
    enum lade_mqtt_state state;
    size_t rx_len;
    bool rx_held; /* a received packet waits for tx room (its PUBACK) */
    size_t tx_off, tx_len, tx_pkt_left;
    size_t n_inflight, store_len;
    size_t sub_len, sub_sent;
    uint16_t next_id;
    bool ping_outstanding;
    uint64_t connack_deadline_ms, last_send_ms, last_recv_ms, pingresp_deadline_ms;
    struct lade_mqtt_stats stats;
};

/* Validates cfg (LADE_ERR_CONFIG: missing buffers, max_packet > rx_cap or < 16, zero
 * timeouts, client_id NULL) and sets the session to DISCONNECTED. cfg, cb are copied. */
lade_err lade_mqtt_session_init(struct lade_mqtt_session *s,
                                const struct lade_mqtt_session_cfg *cfg,
                                const struct lade_mqtt_callbacks *cb, void *ud) LADE_MUST_CHECK;

/* The transport has just connected: queue CONNECT (password may be NULL; it is not kept) and
 * start the CONNACK timer. DISCONNECTED → CONNECTING. t is copied.
 * LADE_ERR_STATE if not DISCONNECTED; encoder errors (LADE_ERR_UTF8, LADE_ERR_INVAL,
 * LADE_ERR_NOSPACE if CONNECT does not fit tx_cap) leave the session DISCONNECTED. */
lade_err lade_mqtt_session_start(struct lade_mqtt_session *s, const struct lade_transport *t,
                                 const char *password, uint64_t now_ms) LADE_MUST_CHECK;

/* Reads until the transport reports AGAIN, decodes and dispatches every complete packet,
 * answers incoming QoS 1 with PUBACK (after on_message). If a QoS 1 message arrives while tx has
 * no room for its PUBACK, reading pauses (LADE_OK, wants_write() is true) until flush makes
 * room. LADE_ERR_STATE when DISCONNECTED; see above for the other errors. */
lade_err lade_mqtt_session_on_readable(struct lade_mqtt_session *s,
                                       uint64_t now_ms) LADE_MUST_CHECK;

/* Writes queued bytes until done (LADE_OK) or the transport would block (LADE_ERR_AGAIN).
 * A PINGREQ is due one keep-alive after the last byte sent, or two after the last byte
 * received if that is earlier (so a link that only swallows what we send is still probed). In
 * DISCONNECTING, returns LADE_OK and
 * moves to DISCONNECTED once DISCONNECT is written. LADE_ERR_STATE when DISCONNECTED. */
lade_err lade_mqtt_session_flush(struct lade_mqtt_session *s, uint64_t now_ms) LADE_MUST_CHECK;
bool lade_mqtt_session_wants_write(const struct lade_mqtt_session *s);

/* Runs timers. *next_deadline_ms = when to call again (UINT64_MAX: no timer). May queue a
 * PINGREQ (check wants_write afterwards). LADE_ERR_TIMEOUT as described above. */
lade_err lade_mqtt_session_tick(struct lade_mqtt_session *s, uint64_t now_ms,
                                uint64_t *next_deadline_ms) LADE_MUST_CHECK;

/* Queues a PUBLISH. topic and payload are copied (into tx, and for QoS 1 into the store).
 *   QoS 0: only when CONNECTED (else LADE_ERR_STATE); LADE_ERR_FULL if tx has no room now.
 *   QoS 1: in any state: stored in flight until PUBACK, sent now if CONNECTED and tx has room,
 *          else after the next CONNACK or when tx drains. *packet_id (may be NULL) = its id.
 *          LADE_ERR_FULL when no in-flight slot, store room or free packet id is left.
 *   LADE_ERR_NOSPACE: the packet can never fit tx_cap (or store_cap); LADE_ERR_INVAL: bad qos
 *   or topic; LADE_ERR_UTF8: topic not UTF-8; LADE_ERR_TOO_BIG: over the protocol maximum. */
lade_err lade_mqtt_publish(struct lade_mqtt_session *s, const char *topic, const void *payload,
                           size_t len, int qos, bool retain, uint16_t *packet_id) LADE_MUST_CHECK;

/* Remembers n filters (copied) as one SUBSCRIBE, sent now when CONNECTED (and tx has room) and
 * again after every accepted CONNACK, in call order, with a fresh packet id each time (reported
 * by on_suback). *packet_id (may be NULL) = the id used now, or 0 if it was not sent yet.
 * LADE_ERR_FULL when sub_buf is full; LADE_ERR_NOSPACE if the SUBSCRIBE can never fit tx_cap;
 * LADE_ERR_INVAL for n == 0, a bad filter or qos > 1; LADE_ERR_UTF8. A refused filter (0x80)
 * stays remembered. */
lade_err lade_mqtt_subscribe(struct lade_mqtt_session *s, const char *const *filters,
                             const uint8_t *qos, size_t n, uint16_t *packet_id) LADE_MUST_CHECK;

/* The transport dropped (or the caller closes it): → DISCONNECTED, drop rx/tx bytes and QoS 0
 * messages not yet written, keep in-flight QoS 1 and subscriptions. Idempotent. */
void lade_mqtt_session_lost(struct lade_mqtt_session *s);

/* Clean shutdown: queue DISCONNECT after what is already queued → DISCONNECTING; flush until
 * the state is DISCONNECTED, then close the transport. From CONNECTING, or when tx has no
 * room, goes straight to DISCONNECTED. In-flight messages are kept. */
void lade_mqtt_session_disconnect(struct lade_mqtt_session *s);

enum lade_mqtt_state lade_mqtt_session_state(const struct lade_mqtt_session *s);
const struct lade_mqtt_stats *lade_mqtt_session_stats(const struct lade_mqtt_session *s);
/* QoS 1 messages awaiting PUBACK. */
size_t lade_mqtt_session_inflight(const struct lade_mqtt_session *s);

#endif
