/* libFuzzer target: what the charger agent does with the messages the hub delivers — twin
 * documents, desired-property patches, direct-method calls, C2D and unknown topics — through
 * its real MQTT session and its real (static) handlers.
 *
 * The handlers are file-local in src/charger/charger.c, so this file includes that source
 * (the fuzz and replay builds link only the lade library, never lade_charger, so nothing is
 * defined twice). Only one internal is touched: the context's MQTT session, which is started
 * on an in-memory transport instead of TLS. Everything else goes through the public API and
 * the bytes on the wire, so charger.c can change freely as long as that field exists.
 *
 * Input: records [sel][alen][a: alen bytes][plen lo][plen hi][payload: plen bytes].
 *   sel & 3  topic: 0 "$iothub/twin/res/{200|204}/?$rid={the GET's rid}[&a]" (200 if sel & 4),
 *                   1 "$iothub/twin/PATCH/properties/desired/?$version={a}",
 *                   2 "$iothub/methods/POST/{a}/?$rid={sel}", 3 the topic is a, as is
 *   sel & 8  delivered at QoS 1
 * The charger has the simulated board (evse = sim, a car plugged in), so the charging
 * methods (command, setCurrent, authorize, sim) and the charging twin settings are reached too.
 * Invariants: the link stays ONLINE; every method call gets exactly one response on
 * "$iothub/methods/res/{status}/?$rid={rid}" (ping 200; charging methods 200/400/409; other
 * methods 404); the offer never exceeds the max in force, which never exceeds the installer's
 * fuse setting (R14); everything the charger publishes has a topic of
 * the dialect and a JSON payload (the twin GET: empty); QoS 1 deliveries are acknowledged; the
 * applied desired $version never goes back; the telemetry interval stays in 1..86400. */
#include "../../src/charger/charger.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

struct wire {
    const uint8_t *in;
    size_t in_len, in_off;
    uint8_t out[1 << 18];
    size_t out_len;
};

static lade_err w_send(void *ctx, const uint8_t *buf, size_t len, size_t *done)
{
    struct wire *w = ctx;
    size_t k = len;
    if (k > sizeof w->out - w->out_len)
        k = sizeof w->out - w->out_len;
    if (k == 0)
        return LADE_ERR_AGAIN;
    memcpy(w->out + w->out_len, buf, k);
    w->out_len += k;
    *done = k;
    return LADE_OK;
}

static lade_err w_recv(void *ctx, uint8_t *buf, size_t cap, size_t *done)
{
    struct wire *w = ctx;
    size_t k = w->in_len - w->in_off;
    if (k > cap)
        k = cap;
    if (k == 0)
        return LADE_ERR_AGAIN;
    memcpy(buf, w->in + w->in_off, k);
    w->in_off += k;
    *done = k;
    return LADE_OK;
}

static void discard(void *ud, enum lade_log_level level, const char *module, const char *line)
{
    (void)ud;
    (void)level;
    (void)module;
    (void)line;
}

/* What the charger wrote since the last call. */
struct sent {
    unsigned publishes, method_responses, pubacks;
    char last_method_topic[160];
    char get_topic[64];
};

static void drain(struct wire *w, struct sent *s)
{
    memset(s, 0, sizeof *s);
    size_t off = 0;
    while (off < w->out_len) {
        struct lade_mqtt_frame f;
        CHECK(lade_mqtt_frame(w->out + off, w->out_len - off, 0, &f) == LADE_OK);
        if (f.type == LADE_MQTT_PUBACK) {
            s->pubacks++;
        } else if (f.type == LADE_MQTT_PUBLISH) {
            struct lade_mqtt_publish p;
            CHECK(lade_mqtt_decode_publish(&f, &p) == LADE_OK);
            s->publishes++;
            if (lade_str_has_prefix(p.topic, "$iothub/twin/GET/?$rid=")) {
                CHECK(p.payload_len == 0 && p.topic.n < sizeof s->get_topic);
                memcpy(s->get_topic, p.topic.p, p.topic.n);
                s->get_topic[p.topic.n] = 0;
            } else {
                CHECK(lade_str_has_prefix(p.topic, "$iothub/methods/res/") ||
                      lade_str_has_prefix(p.topic, "$iothub/twin/PATCH/properties/reported/") ||
                      lade_str_has_prefix(p.topic, "devices/fuzz-dev/messages/events/"));
                cJSON *doc = cJSON_ParseWithLength((const char *)p.payload, p.payload_len);
                CHECK(doc != NULL);
                cJSON_Delete(doc);
            }
            if (lade_str_has_prefix(p.topic, "$iothub/methods/res/")) {
                s->method_responses++;
                CHECK(p.topic.n < sizeof s->last_method_topic);
                memcpy(s->last_method_topic, p.topic.p, p.topic.n);
                s->last_method_topic[p.topic.n] = 0;
            }
        } else {
            /* After CONNECT (and the SUBSCRIBE restored with it) only PUBLISH and PUBACK. */
            CHECK(f.type == LADE_MQTT_CONNECT || f.type == LADE_MQTT_SUBSCRIBE);
        }
        off += f.size;
    }
    w->out_len = 0;
}

/* Hands one encoded packet to the session as if the hub had sent it. */
static void deliver(struct lade_charger *c, struct wire *w, const uint8_t *pkt, size_t len)
{
    w->in = pkt;
    w->in_len = len;
    w->in_off = 0;
    CHECK(lade_mqtt_session_on_readable(&c->mqtt, lade_mono_ms()) == LADE_OK);
    CHECK(w->in_off == w->in_len);
    while (lade_mqtt_session_wants_write(&c->mqtt))
        CHECK(lade_mqtt_session_flush(&c->mqtt, lade_mono_ms()) == LADE_OK);
}

static char state_dir[64];

/* The agent's files in the state directory (outbox, simulator, settings). */
static void remove_state_dir(void)
{
    static const char *const names[] = {"outbox.db",        "outbox.db-wal", "outbox.db-shm",
                                        "sim.json",         "sim.json.tmp",  "settings.json",
                                        "settings.json.tmp"};
    char path[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", state_dir, names[i]);
        unlink(path);
    }
    rmdir(state_dir);
}

static char dummy_tls; /* never dereferenced: the charger only connects from its retry timer */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct lade_loop *loop;
    static struct wire w;
    static uint8_t pkt[70000];
    if (!loop) {
        lade_log_set_sink(discard, NULL);
        lade_log_set_level(LADE_LOG_DEBUG);
        CHECK(lade_loop_new(&loop) == LADE_OK);
    }

    if (!state_dir[0]) {
        snprintf(state_dir, sizeof state_dir, "/tmp/lade-fuzz-charger-XXXXXX");
        CHECK(mkdtemp(state_dir) != NULL);
        atexit(remove_state_dir);
    }
    struct lade_settings set;
    lade_settings_defaults(&set);
    snprintf(set.evse, sizeof set.evse, "sim");
    snprintf(set.sim_car, sizeof set.sim_car, "3p11kw");
    snprintf(set.state_dir, sizeof set.state_dir, "%s", state_dir);
    set.max_current_a = 20;
    snprintf(set.device_id, sizeof set.device_id, "fuzz-dev");
    set.device_key_len = 32;
    snprintf(set.ca_file, sizeof set.ca_file, "/dev/null"); /* readable: passes the check */
    struct lade_charger_opts o = {
        .settings = &set, .loop = loop, .tls = (struct lade_tls_ctx *)(void *)&dummy_tls};
    struct lade_charger *c;
    CHECK(lade_charger_new(&c, &o) == LADE_OK);

    /* Connect: CONNECT out, CONNACK in; the charger asks for its twin and sends telemetry. */
    struct lade_transport tr = {&w, w_send, w_recv};
    w.out_len = 0;
    CHECK(lade_mqtt_session_start(&c->mqtt, &tr, "pw", lade_mono_ms()) == LADE_OK);
    deliver(c, &w, (const uint8_t *)"\x20\x02\x00\x00", 4);
    struct sent s;
    drain(&w, &s);
    CHECK(s.get_topic[0]);
    char get_rid[sizeof s.get_topic];
    snprintf(get_rid, sizeof get_rid, "%s", s.get_topic + strlen("$iothub/twin/GET/?$rid="));
    struct lade_charger_status st, before;
    lade_charger_status(c, &st);
    CHECK(st.link == LADE_LINK_ONLINE);

    uint16_t next_id = 1;
    size_t off = 0;
    while (off + 2 <= size) {
        uint8_t sel = data[off++];
        size_t alen = data[off++];
        if (alen > size - off)
            alen = size - off;
        const char *a = (const char *)data + off;
        off += alen;
        size_t plen = 0;
        if (off + 2 <= size) {
            plen = (size_t)data[off] | (size_t)data[off + 1] << 8;
            off += 2;
        }
        if (plen > size - off)
            plen = size - off;
        const uint8_t *payload = data + off;
        off += plen;

        char topic[400];
        int k;
        switch (sel & 3) {
        case 0:
            k = snprintf(topic, sizeof topic, "$iothub/twin/res/%d/?$rid=%s%s%.*s",
                         sel & 4 ? 200 : 204, get_rid, alen ? "&" : "", (int)alen, a);
            break;
        case 1:
            k = snprintf(topic, sizeof topic,
                         "$iothub/twin/PATCH/properties/desired/?$version=%.*s", (int)alen, a);
            break;
        case 2:
            k = snprintf(topic, sizeof topic, "$iothub/methods/POST/%.*s/?$rid=%u", (int)alen, a,
                         sel);
            break;
        default:
            k = snprintf(topic, sizeof topic, "%.*s", (int)alen, a);
            break;
        }
        if (k < 0 || (size_t)k >= sizeof topic || memchr(topic, 0, (size_t)k))
            continue;
        struct lade_mqtt_publish p = {
            .topic = {topic, (size_t)k},
            .payload = payload,
            .payload_len = plen,
            .qos = (sel & 8) ? 1 : 0,
            .packet_id = (sel & 8) ? next_id++ : 0,
        };
        if (next_id == 0)
            next_id = 1;
        size_t n;
        if (lade_mqtt_encode_publish(&p, pkt, sizeof pkt, &n) != LADE_OK)
            continue; /* not something a broker could deliver (e.g. not UTF-8) */

        lade_charger_status(c, &before);
        deliver(c, &w, pkt, n);
        drain(&w, &s);
        lade_charger_status(c, &st);

        CHECK(st.link == LADE_LINK_ONLINE);
        CHECK(lade_mqtt_session_state(&c->mqtt) == LADE_MQTT_CONNECTED);
        CHECK(s.pubacks == p.qos);
        CHECK(st.desired_version >= before.desired_version);
        CHECK(st.telemetry_interval_s >= 1 && st.telemetry_interval_s <= 86400);
        CHECK(c->ctl.cs.cfg.max_current_ma <= 20000);
        CHECK(c->ctl.out.offer_ma <= c->ctl.cs.cfg.max_current_ma);
        CHECK(c->ctl.sim.offer_ma == c->ctl.out.offer_ma);

        struct lade_iothub_msg m;
        bool method = lade_iothub_parse_topic(set.device_id, topic, (size_t)k, &m) == LADE_OK &&
                      m.kind == LADE_IOTHUB_METHOD;
        if (method) {
            CHECK(s.method_responses == 1 && st.methods_answered == before.methods_answered + 1);
            char want[160];
            bool charging = lade_str_eq_c(m.method, "command") ||
                            lade_str_eq_c(m.method, "setCurrent") ||
                            lade_str_eq_c(m.method, "authorize") || lade_str_eq_c(m.method, "sim");
            static const int any[] = {200, 400, 409};
            bool found = false;
            for (size_t i = 0; i < (charging ? 3u : 1u); i++) {
                int status = charging ? any[i] : lade_str_eq_c(m.method, "ping") ? 200 : 404;
                CHECK(lade_iothub_method_response_topic(status, m.rid, want, sizeof want, NULL) ==
                      LADE_OK);
                found = found || strcmp(want, s.last_method_topic) == 0;
            }
            CHECK(found);
        } else {
            CHECK(s.method_responses == 0 && st.methods_answered == before.methods_answered);
        }
    }
    lade_charger_free(c);
    return 0;
}
