/* e2e: the service client (include/lade/svc.h) and lade-cmd against the real hub (Mosquitto 2
 * + lade_hub.so) and a real lade-charger, provisioned with the real lade-factory.
 *
 * Covers: method call answered by the charger (200 "pong"), the charger's own 404 for an unknown
 * method, a hub-made 404 for an offline device, the hub's 504 and the client's local timeout
 * against a device (the harness's raw client) that never answers, a late reply dropped, twin
 * patch → applied and reported by the charger → seen by twin get, telemetry/lifecycle events,
 * a pending call failed exactly once by link loss and the reconnect after a hub restart,
 * argument validation without network, service-file errors, a wrong key (CONNACK 5) and an
 * untrusted hub certificate; and the lade-cmd binary's output and exit codes for the same.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "harness_charger.h"
#include "harness_hub.h"
#include "lade/clock.h"
#include "lade/log.h"
#include "lade/loop.h"
#include "lade/svc.h"

#define CHARGER "LDE0000001"
#define OFFLINE "LDE0000002" /* registered, never connected */
#define SILENT  "LDE0000099" /* connected through the raw test client; never answers */

static struct h_hub hub;
static char hosts[700];
static char portal_file[700];   /* service "portal": the in-process client */
static char operator_file[700]; /* service "operator": lade-cmd */
static char badkey_file[700];   /* "operator" with another (valid) key */
static char other_ca_dir[700];
static char charger_dir[700], charger_status[800], charger_log[800];
static pid_t charger_pid;
static struct hc silent;
static struct lade_loop *loop;

/* ---------------------------------------------------------------- helpers */

/* Runs the loop until *flag or the deadline. */
static bool spin(const bool *flag, uint32_t timeout_ms)
{
    uint64_t end = h_now_ms() + timeout_ms;
    while (!*flag && h_now_ms() < end)
        assert_int_equal(lade_loop_run_once(loop, 50), LADE_OK);
    return *flag;
}

struct client {
    struct lade_svc *svc;
    enum lade_svc_state state;
    lade_err last_err;
    char last_reason[160];
    int onlines;
    bool online, failed;
    /* events */
    int telemetry, lifecycle, reported;
    bool got_telemetry;
    char telemetry_props[256];
    char telemetry_payload[1024];
};

static void on_state(void *ud, enum lade_svc_state st, lade_err err, const char *reason)
{
    struct client *c = ud;
    c->state = st;
    c->online = st == LADE_SVC_ONLINE;
    if (c->online)
        c->onlines++;
    if (err) {
        c->failed = true;
        c->last_err = err;
        snprintf(c->last_reason, sizeof c->last_reason, "%s", reason);
    }
}

static void on_event(void *ud, const struct lade_svc_event *ev)
{
    struct client *c = ud;
    if (strcmp(ev->device, CHARGER) != 0)
        return;
    if (ev->kind == LADE_SVC_EV_TELEMETRY) {
        c->telemetry++;
        snprintf(c->telemetry_props, sizeof c->telemetry_props, "%.*s", (int)ev->props.n,
                 ev->props.p);
        snprintf(c->telemetry_payload, sizeof c->telemetry_payload, "%.*s", (int)ev->payload_len,
                 (const char *)ev->payload);
        c->got_telemetry = true;
    } else if (ev->kind == LADE_SVC_EV_LIFECYCLE) {
        c->lifecycle++;
    } else {
        c->reported++;
    }
}

struct reply {
    bool done;
    int calls; /* times the callback ran */
    lade_err err;
    int status;
    bool hub_made;
    int64_t version;
    char body[8192];
};

static void on_reply(void *ud, const struct lade_svc_result *r)
{
    struct reply *p = ud;
    p->calls++;
    p->done = true;
    p->err = r->err;
    p->status = r->status;
    p->hub_made = r->hub_made;
    p->version = r->version;
    snprintf(p->body, sizeof p->body, "%.*s", (int)r->body_len,
             r->body ? (const char *)r->body : "");
}

/* A reply callback that stops the client (deferred until the client's dispatch unwinds). */
struct stop_ctx {
    struct reply r;
    struct lade_svc *svc;
    enum lade_svc_state state_in_cb;
};
static void on_reply_stop(void *ud, const struct lade_svc_result *r)
{
    struct stop_ctx *x = ud;
    on_reply(&x->r, r);
    lade_svc_stop(x->svc);
    x->state_in_cb = lade_svc_state(x->svc);
}

static void client_new_ttl(struct client *c, const char *service_file, const char *ca,
                           uint32_t token_ttl_s);

/* Clients still alive when a test fails are freed by its teardown, so a failure cannot leave a
 * second client with the same identity fighting the next test's. */
#define MAX_LIVE 4
static struct client *live[MAX_LIVE];

static void live_add(struct client *c)
{
    for (int i = 0; i < MAX_LIVE; i++)
        if (!live[i]) {
            live[i] = c;
            return;
        }
    fail_msg("too many live clients");
}

static void client_free(struct client *c)
{
    for (int i = 0; i < MAX_LIVE; i++)
        if (live[i] == c)
            live[i] = NULL;
    lade_svc_free(c->svc);
    c->svc = NULL;
}

static int free_live(void **state)
{
    (void)state;
    for (int i = 0; i < MAX_LIVE; i++)
        if (live[i])
            client_free(live[i]);
    return 0;
}
static void client_new(struct client *c, const char *service_file, const char *ca)
{
    client_new_ttl(c, service_file, ca, 0);
}

static void client_new_ttl(struct client *c, const char *service_file, const char *ca,
                           uint32_t token_ttl_s)
{
    memset(c, 0, sizeof *c);
    struct lade_svc_file sf;
    char why[200];
    assert_int_equal(lade_svc_file_load(service_file, &sf, why, sizeof why), LADE_OK);
    struct lade_svc_opts o = {
        .loop = loop,
        .hub_host = sf.hub_host,
        .port = (uint16_t)hub.port,
        .ca_file = ca,
        .hosts_file = hosts,
        .service_name = sf.name,
        .key = sf.key,
        .key_len = sf.key_len,
        .keepalive_s = 30,
        .token_ttl_s = token_ttl_s,
        .backoff_min_ms = 100,
        .backoff_max_ms = 500,
        .connect_timeout_ms = 3000,
        .cb = {.on_state = on_state, .on_event = on_event},
        .ud = c,
    };
    assert_int_equal(lade_svc_new(&c->svc, &o), LADE_OK);
    lade_svc_file_wipe(&sf);
    live_add(c);
}

static void client_online(struct client *c, const char *service_file)
{
    client_new(c, service_file, hub.ca);
    assert_int_equal(lade_svc_start(c->svc), LADE_OK);
    if (!spin(&c->online, 10000))
        fail_msg("service client not online: %s (%s)", c->last_reason, lade_strerror(c->last_err));
}

static void wait_reply(struct reply *r, uint32_t timeout_ms)
{
    if (!spin(&r->done, timeout_ms))
        fail_msg("no reply within %u ms", timeout_ms);
}

static bool wait_charger(const char *needle, uint32_t timeout_ms)
{
    if (h_wait_file_contains(charger_status, needle, timeout_ms))
        return true;
    char *s = h_read_file(charger_status);
    char *l = h_read_file(charger_log);
    fprintf(stderr, "charger: no '%s' in status %s\nlog:\n%s\n", needle, s ? s : "(none)",
            l ? l : "");
    free(s);
    free(l);
    return false;
}

static void start_charger(void)
{
    char bin[600], factory[800], user[800];
    snprintf(bin, sizeof bin, "%s/lade-charger", h_build_dir());
    snprintf(factory, sizeof factory, "%s/factory.conf", charger_dir);
    snprintf(user, sizeof user, "%s/user.conf", charger_dir);
    unlink(charger_status);
    const char *argv[] = {bin,  "--factory", factory,        "--user",
                          user, "--status",  charger_status, NULL};
    charger_pid = h_spawn(argv, NULL, charger_log);
    assert_true(wait_charger("\"link\":\"online\"", 15000));
}

/* Waits for a message to the silent device while running our loop (which writes requests). */
static int silent_recv(const char *prefix, struct hc_msg *m, uint32_t timeout_ms)
{
    for (uint64_t end = h_now_ms() + timeout_ms; h_now_ms() < end;) {
        assert_int_equal(lade_loop_run_once(loop, 10), LADE_OK);
        int rc = hc_recv_topic(&silent, prefix, m, 20);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void connect_silent(void)
{
    char cmd[2048], tok[1200], user[200];
    snprintf(cmd, sizeof cmd,
             "'%s/lade-factory' token --registry '%s' --device " SILENT " --hub-host %s --ttl 3600",
             h_build_dir(), hub.registry, hub.host);
    h_capture(cmd, tok, sizeof tok);
    snprintf(user, sizeof user, "%s/" SILENT "/?api-version=2021-04-12", hub.host);
    assert_int_equal(hc_connect(&silent, hub.port, hub.ca, hub.host, SILENT, user, tok, false), 0);
    assert_int_equal(hc_subscribe(&silent, "$iothub/methods/POST/#", 0), 0);
}

/* lade-cmd with the operator identity; stdout/stderr to files in the hub dir. Returns the exit
 * code. */
static char cmd_out[800], cmd_err[800];
static int lade_cmd(const char *service_file, const char *ca, const char *args)
{
    return h_sh("'%s/lade-cmd' --service '%s' --ca '%s' --port %d --hosts-file '%s' %s "
                ">'%s' 2>'%s'",
                h_build_dir(), service_file, ca, hub.port, hosts, args, cmd_out, cmd_err);
}

static void expect_out(const char *path, const char *needle)
{
    char *s = h_read_file(path);
    if (!s || !strstr(s, needle)) {
        char *e = h_read_file(cmd_err);
        fail_msg("'%s' not in %s: '%s' (stderr: %s)", needle, path, s ? s : "(none)", e ? e : "");
    }
    free(s);
}

/* ---------------------------------------------------------------- fixture */

static void make_service(const char *name, const char *path)
{
    assert_int_equal(h_sh("'%s/lade-factory' service --registry '%s' --name %s --hub-host %s "
                          "--out '%s' >/dev/null",
                          h_build_dir(), hub.registry, name, hub.host, path),
                     0);
}

static void create_device(const char *id)
{
    assert_int_equal(h_sh("'%s/lade-factory' create --registry '%s' --id %s --hub-host %s "
                          "--hub-port %d --ca '%s' --out '%s/chargers' --hosts-file '%s' "
                          "--ntp-host ntp.lade.test --fallback-dns 127.0.0.1 --time-source host "
                          ">/dev/null",
                          h_build_dir(), hub.registry, id, hub.host, hub.port, hub.ca, hub.dir,
                          hosts),
                     0);
}

static int setup(void **state)
{
    (void)state;
    lade_log_set_level(LADE_LOG_WARN);
    h_hub_prepare(&hub, "hub.lade.test");
    snprintf(hosts, sizeof hosts, "%s/hosts", hub.dir);
    h_write_file(hosts, "127.0.0.1 hub.lade.test\n");
    snprintf(cmd_out, sizeof cmd_out, "%s/cmd.out", hub.dir);
    snprintf(cmd_err, sizeof cmd_err, "%s/cmd.err", hub.dir);
    snprintf(portal_file, sizeof portal_file, "%s/portal.conf", hub.dir);
    snprintf(operator_file, sizeof operator_file, "%s/operator.conf", hub.dir);
    snprintf(badkey_file, sizeof badkey_file, "%s/badkey.conf", hub.dir);
    make_service("portal", portal_file);
    make_service("operator", operator_file);
    /* Same name, another valid 32-byte key. */
    assert_int_equal(h_sh("sed 's|^service_key = .*|service_key = "
                          "K2hGxT0mKq5r0s8m8y0aQWx7vX4m2ZKQn0cW2+Gm3+o=|' '%s' >'%s'",
                          operator_file, badkey_file),
                     0);
    snprintf(other_ca_dir, sizeof other_ca_dir, "%s/other-ca", hub.dir);
    h_make_ca(other_ca_dir, "some other CA");

    create_device(CHARGER);
    create_device(OFFLINE);
    create_device(SILENT);
    snprintf(charger_dir, sizeof charger_dir, "%s/chargers/" CHARGER, hub.dir);
    snprintf(charger_status, sizeof charger_status, "%s/status.json", charger_dir);
    snprintf(charger_log, sizeof charger_log, "%s/charger.log", charger_dir);
    char user[800];
    snprintf(user, sizeof user, "%s/user.conf", charger_dir);
    h_write_file(user, "keepalive_s = 30\ntelemetry_interval_s = 1\nbackoff_min_ms = 100\n"
                       "backoff_max_ms = 500\nbackoff_stable_s = 1\nconnect_timeout_ms = 2000\n"
                       "log_level = debug\n");

    /* The hub answers 504 for a silent device after 1-2 s (its clock ticks in seconds). */
    h_hub_start(&hub, "plugin_opt_method_timeout_s 2\n");
    start_charger();
    connect_silent();
    assert_int_equal(lade_loop_new(&loop), LADE_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hc_close_all();
    if (charger_pid > 0) {
        int ws = h_stop(charger_pid, SIGTERM, 5000);
        charger_pid = 0;
        if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
            fprintf(stderr, "charger did not exit cleanly (status 0x%x)\n", ws);
    }
    h_hub_stop(&hub);
    lade_loop_free(loop);
    return 0;
}

/* ---------------------------------------------------------------- in-process client */

static void test_methods(void **state)
{
    (void)state;
    struct client c;
    client_online(&c, portal_file);

    /* The charger answers ping. */
    struct reply r = {0};
    assert_int_equal(lade_svc_call(c.svc, CHARGER, "ping", "{}", 5000, on_reply, &r), LADE_OK);
    assert_false(r.done); /* never called back from inside the request */
    wait_reply(&r, 10000);
    assert_int_equal(r.err, LADE_OK);
    assert_int_equal(r.status, 200);
    assert_false(r.hub_made);
    assert_non_null(strstr(r.body, "\"pong\":true"));
    assert_non_null(strstr(r.body, "\"device\":\"" CHARGER "\""));

    /* An unknown method: the charger's own 404, not the hub's. */
    memset(&r, 0, sizeof r);
    assert_int_equal(lade_svc_call(c.svc, CHARGER, "no-such-method", NULL, 5000, on_reply, &r),
                     LADE_OK);
    wait_reply(&r, 10000);
    assert_int_equal(r.err, LADE_OK);
    assert_int_equal(r.status, 404);
    assert_false(r.hub_made);
    assert_non_null(strstr(r.body, "unknown method"));

    /* A device that is not connected: the hub's 404. */
    memset(&r, 0, sizeof r);
    assert_int_equal(lade_svc_call(c.svc, OFFLINE, "ping", "{}", 5000, on_reply, &r), LADE_OK);
    wait_reply(&r, 10000);
    assert_int_equal(r.err, LADE_OK);
    assert_int_equal(r.status, 404);
    assert_true(r.hub_made);
    assert_non_null(strstr(r.body, "not connected"));

    /* Several calls in flight at once each get their own answer. */
    struct reply many[5];
    memset(many, 0, sizeof many);
    for (int i = 0; i < 5; i++)
        assert_int_equal(lade_svc_call(c.svc, CHARGER, "ping", "{}", 5000, on_reply, &many[i]),
                         LADE_OK);
    struct lade_svc_status st;
    lade_svc_status(c.svc, &st);
    assert_int_equal(st.pending, 5);
    for (int i = 0; i < 5; i++) {
        wait_reply(&many[i], 10000);
        assert_int_equal(many[i].status, 200);
    }
    lade_svc_status(c.svc, &st);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.failures, 0);

    /* Stopping from a reply callback: takes effect once the callback returned; the pending
     * request still ends exactly once; the client can start again. */
    struct stop_ctx x = {.svc = c.svc};
    struct reply other = {0};
    assert_int_equal(lade_svc_call(c.svc, CHARGER, "ping", "{}", 5000, on_reply_stop, &x), LADE_OK);
    assert_int_equal(lade_svc_call(c.svc, SILENT, "slow-stop", "{}", 5000, on_reply, &other),
                     LADE_OK);
    wait_reply(&x.r, 10000);
    assert_int_equal(x.r.status, 200);
    assert_int_equal(x.state_in_cb, LADE_SVC_ONLINE); /* deferred */
    assert_int_equal(lade_svc_state(c.svc), LADE_SVC_STOPPED);
    assert_true(other.done);
    assert_int_equal(other.err, LADE_ERR_CLOSED);
    assert_int_equal(other.calls, 1);
    c.online = false;
    assert_int_equal(lade_svc_start(c.svc), LADE_OK);
    assert_true(spin(&c.online, 10000));
    memset(&other, 0, sizeof other);
    assert_int_equal(lade_svc_call(c.svc, CHARGER, "ping", "{}", 5000, on_reply, &other), LADE_OK);
    wait_reply(&other, 10000);
    assert_int_equal(other.status, 200);
    client_free(&c);
}

static void test_token_renewal(void **state)
{
    (void)state;
    /* A 5 s token is renewed at 4-4.5 s by a clean reconnect that resumes the TLS session. */
    struct client c;
    client_new_ttl(&c, portal_file, hub.ca, 5);
    assert_int_equal(lade_svc_start(c.svc), LADE_OK);
    assert_true(spin(&c.online, 10000));
    struct lade_svc_status st;
    for (uint64_t end = h_now_ms() + 15000; h_now_ms() < end;) {
        lade_svc_status(c.svc, &st);
        if (st.connects == 2 && st.state == LADE_SVC_ONLINE)
            break;
        assert_int_equal(lade_loop_run_once(loop, 50), LADE_OK);
    }
    assert_int_equal(st.connects, 2);
    assert_int_equal(st.token_renewals, 1);
    assert_int_equal(st.failures, 0);
    assert_int_equal(st.tls_resumptions, 1);
    assert_int_equal(c.onlines, 2);
    assert_false(c.failed);
    struct reply r = {0};
    assert_int_equal(lade_svc_call(c.svc, CHARGER, "ping", "{}", 5000, on_reply, &r), LADE_OK);
    wait_reply(&r, 10000);
    assert_int_equal(r.status, 200);
    assert_int_equal(h_file_count(hub.log, "svc:portal' from"), 0); /* never refused */
    client_free(&c);
}

static void test_timeouts(void **state)
{
    (void)state;
    struct client c;
    client_online(&c, portal_file);
    struct hc_msg m;

    /* Local timeout, well before the hub's (1-2 s): TIMEOUT with a 504-like status. */
    struct reply local = {0};
    uint64_t t0 = h_now_ms();
    assert_int_equal(lade_svc_call(c.svc, SILENT, "slow-local", "{\"a\":1}", 300, on_reply, &local),
                     LADE_OK);
    wait_reply(&local, 5000);
    uint64_t took = h_now_ms() - t0;
    assert_int_equal(local.err, LADE_ERR_TIMEOUT);
    assert_int_equal(local.status, 504);
    assert_false(local.hub_made);
    assert_true(took >= 300 && took < 900);
    /* The request did reach the device. */
    assert_int_equal(silent_recv("$iothub/methods/POST/slow-local/", &m, 5000), 1);
    assert_string_equal(m.payload, "{\"a\":1}");

    /* The hub's own timeout: 504, hub-made. Meanwhile the hub's late 504 for the first call
     * arrives and is dropped (the callback above must not run again). */
    struct reply hub504 = {0};
    assert_int_equal(lade_svc_call(c.svc, SILENT, "slow-hub", NULL, 10000, on_reply, &hub504),
                     LADE_OK);
    wait_reply(&hub504, 5000);
    assert_int_equal(hub504.err, LADE_OK);
    assert_int_equal(hub504.status, 504);
    assert_true(hub504.hub_made);
    assert_int_equal(local.calls, 1);
    assert_int_equal(hub504.calls, 1);
    client_free(&c);
}

static void test_twin_and_events(void **state)
{
    (void)state;
    struct client c;
    client_new(&c, portal_file, hub.ca);
    assert_int_equal(lade_svc_subscribe_events(c.svc, true), LADE_OK);
    assert_int_equal(lade_svc_start(c.svc), LADE_OK);
    assert_true(spin(&c.online, 10000));

    /* Telemetry (the charger sends every second) with its property bag. */
    assert_true(spin(&c.got_telemetry, 10000));
    assert_non_null(strstr(c.telemetry_props, "%24.ct=application%2Fjson"));
    assert_non_null(strstr(c.telemetry_payload, "\"type\":\"state\""));

    /* Desired patch → applied by the charger → reported → visible in the twin. */
    struct reply r = {0};
    assert_int_equal(
        lade_svc_twin_patch(c.svc, CHARGER, "{\"telemetryIntervalS\":2}", 5000, on_reply, &r),
        LADE_OK);
    wait_reply(&r, 10000);
    assert_int_equal(r.err, LADE_OK);
    assert_int_equal(r.status, 204);
    assert_true(r.version >= 2);
    assert_true(wait_charger("\"telemetry_interval_s\":2", 10000));
    bool seen = false;
    for (uint64_t end = h_now_ms() + 10000; !seen && h_now_ms() < end;) {
        memset(&r, 0, sizeof r);
        assert_int_equal(lade_svc_twin_get(c.svc, CHARGER, 5000, on_reply, &r), LADE_OK);
        wait_reply(&r, 10000);
        assert_int_equal(r.status, 200);
        const char *rep = strstr(r.body, "\"reported\"");
        seen = rep && strstr(rep, "\"telemetryIntervalS\":2");
        if (!seen) {
            bool never = false;
            spin(&never, 100);
        }
    }
    assert_true(seen);
    assert_true(c.reported >= 1); /* the reported patch was broadcast */

    /* A patch the hub refuses, and a twin of a device it does not know. */
    memset(&r, 0, sizeof r);
    assert_int_equal(lade_svc_twin_patch(c.svc, CHARGER, "[1]", 5000, on_reply, &r), LADE_OK);
    wait_reply(&r, 10000);
    assert_int_equal(r.status, 400);
    assert_int_equal(r.version, -1);
    memset(&r, 0, sizeof r);
    assert_int_equal(lade_svc_twin_get(c.svc, "LDE-NOBODY", 5000, on_reply, &r), LADE_OK);
    wait_reply(&r, 10000);
    assert_int_equal(r.status, 404);

    /* Events off: no more deliveries. */
    assert_int_equal(lade_svc_subscribe_events(c.svc, false), LADE_OK);
    int before = c.telemetry;
    memset(&r, 0, sizeof r);
    assert_int_equal(lade_svc_call(c.svc, CHARGER, "ping", "{}", 5000, on_reply, &r), LADE_OK);
    wait_reply(&r, 10000);
    bool never = false;
    spin(&never, 2500); /* two telemetry intervals */
    assert_int_equal(c.telemetry, before);
    client_free(&c);
}

static void test_arguments_without_network(void **state)
{
    (void)state;
    struct client c;
    client_new(&c, portal_file, hub.ca); /* never started */
    struct reply r = {0};
    char long_id[200];
    memset(long_id, 'A', 129);
    long_id[129] = 0;
    const char *bad_ids[] = {"", "bad/id", "a+b", "#", "d\xc3\xa9vice", "with space", long_id};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        assert_int_equal(lade_svc_call(c.svc, bad_ids[i], "ping", "{}", 0, on_reply, &r),
                         LADE_ERR_INVAL);
        assert_int_equal(lade_svc_twin_get(c.svc, bad_ids[i], 0, on_reply, &r), LADE_ERR_INVAL);
        assert_int_equal(lade_svc_twin_patch(c.svc, bad_ids[i], "{}", 0, on_reply, &r),
                         LADE_ERR_INVAL);
    }
    assert_int_equal(lade_svc_call(c.svc, NULL, "ping", "{}", 0, on_reply, &r), LADE_ERR_INVAL);
    const char *bad_methods[] = {"", "a/b", "a?b", "a#", "a+", "a b", long_id};
    for (size_t i = 0; i < sizeof bad_methods / sizeof bad_methods[0]; i++)
        assert_int_equal(lade_svc_call(c.svc, CHARGER, bad_methods[i], "{}", 0, on_reply, &r),
                         LADE_ERR_INVAL);
    assert_int_equal(lade_svc_call(c.svc, CHARGER, "ping", "{}", 0, NULL, &r), LADE_ERR_INVAL);
    assert_int_equal(lade_svc_twin_patch(c.svc, CHARGER, NULL, 0, on_reply, &r), LADE_ERR_INVAL);
    /* Valid arguments while not online: refused, not queued. */
    assert_int_equal(lade_svc_call(c.svc, CHARGER, "ping", "{}", 0, on_reply, &r), LADE_ERR_STATE);
    assert_int_equal(lade_svc_twin_get(c.svc, CHARGER, 0, on_reply, &r), LADE_ERR_STATE);
    assert_int_equal(r.calls, 0);
    assert_int_equal(lade_svc_state(c.svc), LADE_SVC_STOPPED);
    assert_true(lade_svc_method_valid("set.current_A~2-x"));
    client_free(&c);

    /* Options. */
    uint8_t key[32] = {1};
    struct lade_svc *s = NULL;
    struct lade_svc_opts o = {.loop = loop,
                              .hub_host = "h",
                              .ca_file = hub.ca,
                              .service_name = "svc:x",
                              .key = key,
                              .key_len = sizeof key};
    assert_int_equal(lade_svc_new(&s, &o), LADE_ERR_INVAL); /* ':' in the name */
    o.service_name = "x";
    o.key_len = 0;
    assert_int_equal(lade_svc_new(&s, &o), LADE_ERR_INVAL);
    o.key_len = sizeof key;
    o.ca_file = "/nonexistent/ca.pem";
    assert_int_equal(lade_svc_new(&s, &o), LADE_ERR_CONFIG);
    assert_null(s);

    /* Service files. */
    struct lade_svc_file sf;
    char why[200], path[800];
    snprintf(path, sizeof path, "%s/nonexistent.conf", hub.dir);
    assert_int_equal(lade_svc_file_load(path, &sf, why, sizeof why), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_svc_file_load(hub.dir, &sf, why, sizeof why), LADE_ERR_IO);
    snprintf(path, sizeof path, "%s/broken.conf", hub.dir);
    h_write_file(path, "service_name = x\nservice_key = not!base64-SECRET\nhub_host = h\n");
    assert_int_equal(lade_svc_file_load(path, &sf, why, sizeof why), LADE_ERR_CONFIG);
    assert_non_null(strstr(why, "line 2"));
    assert_null(strstr(why, "SECRET")); /* values are never echoed */
    h_write_file(path, "service_name = x\nhub_host = h\n");
    assert_int_equal(lade_svc_file_load(path, &sf, why, sizeof why), LADE_ERR_CONFIG);
    assert_non_null(strstr(why, "service_key"));
    h_write_file(path, "service_name = x\nservice_key = AAAA\nhub_host = h\ncolour = red\n");
    assert_int_equal(lade_svc_file_load(path, &sf, why, sizeof why), LADE_ERR_CONFIG);
    assert_non_null(strstr(why, "line 4"));
    h_write_file(path, "# c\n\nservice_name = x\nservice_key = AAAA\nhub_host = h\nhub_port = 9\n");
    assert_int_equal(lade_svc_file_load(path, &sf, why, sizeof why), LADE_OK);
    assert_string_equal(sf.name, "x");
    assert_int_equal(sf.key_len, 3);
    assert_int_equal(sf.hub_port, 9);
    lade_svc_file_wipe(&sf);
}

static void test_topic_parser(void **state)
{
    (void)state;
    struct lade_svc_topic t;
#define PARSE(s) lade_svc_topic_parse((s), strlen(s), &t)
    assert_int_equal(PARSE("$lade/svc/methods-res/dev-1/200/?$rid=ab-1"), LADE_OK);
    assert_int_equal(t.kind, LADE_SVC_T_METHOD_RES);
    assert_true(lade_str_eq_c(t.device, "dev-1"));
    assert_int_equal(t.status, 200);
    assert_true(lade_str_eq_c(t.rid, "ab-1"));
    assert_false(t.hub_made);
    assert_int_equal(PARSE("$lade/svc/methods-res/d/404/?$rid=7&$origin=hub"), LADE_OK);
    assert_true(t.hub_made);
    assert_int_equal(PARSE("$lade/svc/twin-res/d/204/?$rid=7&$version=12"), LADE_OK);
    assert_int_equal(t.kind, LADE_SVC_T_TWIN_RES);
    assert_int_equal(t.version, 12);
    assert_int_equal(PARSE("$lade/svc/reported/d/?$version=3"), LADE_OK);
    assert_int_equal(t.kind, LADE_SVC_T_REPORTED);
    assert_int_equal(t.version, 3);
    assert_int_equal(PARSE("$lade/svc/events/d"), LADE_OK);
    assert_int_equal(t.kind, LADE_SVC_T_EVENT);
    assert_int_equal(PARSE("devices/d/messages/events/%24.ct=x&a=b"), LADE_OK);
    assert_int_equal(t.kind, LADE_SVC_T_TELEMETRY);
    assert_true(lade_str_eq_c(t.props, "%24.ct=x&a=b"));
    assert_int_equal(PARSE("devices/d/messages/events"), LADE_OK);
    assert_int_equal(t.kind, LADE_SVC_T_TELEMETRY);
    assert_int_equal(t.props.n, 0);
    assert_int_equal(PARSE("devices/d/messages/devicebound/x"), LADE_OK);
    assert_int_equal(t.kind, LADE_SVC_T_UNKNOWN);
    assert_int_equal(PARSE("something/else"), LADE_OK);
    assert_int_equal(t.kind, LADE_SVC_T_UNKNOWN);
    const char *bad[] = {
        "$lade/svc/methods-res/d/200/",
        "$lade/svc/methods-res/d/200/?x=1",
        "$lade/svc/methods-res/d/20/?$rid=1",
        "$lade/svc/methods-res/d/2000/?$rid=1",
        "$lade/svc/methods-res/d/-20/?$rid=1",
        "$lade/svc/methods-res/d/abc/?$rid=1",
        "$lade/svc/methods-res/a+b/200/?$rid=1",
        "$lade/svc/methods-res//200/?$rid=1",
        "$lade/svc/methods-res/d",
        "$lade/svc/twin-res/d/204/?$rid=1&$version=x",
        "$lade/svc/twin-res/d/204/?$rid=",
        "$lade/svc/reported/d/?$version=",
        "$lade/svc/reported/d",
        "$lade/svc/events/d/x",
        "$lade/svc/events/",
        "devices/a b/messages/events/",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (PARSE(bad[i]) != LADE_ERR_PROTO)
            fail_msg("accepted malformed topic %s", bad[i]);
#undef PARSE
}

static void test_wrong_key_and_ca(void **state)
{
    (void)state;
    /* A valid key that is not the service's: CONNACK 5, reported as LADE_ERR_AUTH. */
    struct client c;
    client_new(&c, badkey_file, hub.ca);
    assert_int_equal(lade_svc_start(c.svc), LADE_OK);
    assert_true(spin(&c.failed, 10000));
    assert_int_equal(c.last_err, LADE_ERR_AUTH);
    assert_non_null(strstr(c.last_reason, "CONNACK 5"));
    assert_int_equal(c.onlines, 0);
    struct lade_svc_status st;
    lade_svc_status(c.svc, &st);
    assert_true(st.next_retry_ms >= 50); /* auth failures back off at least max/10 */
    client_free(&c);

    /* A hub whose certificate does not chain to the CA we trust. */
    char other_ca[800];
    snprintf(other_ca, sizeof other_ca, "%s/ca.pem", other_ca_dir);
    client_new(&c, portal_file, other_ca);
    assert_int_equal(lade_svc_start(c.svc), LADE_OK);
    assert_true(spin(&c.failed, 10000));
    assert_int_equal(c.last_err, LADE_ERR_CERT);
    assert_int_equal(c.onlines, 0);
    client_free(&c);
}

/* Must run last: restarts the hub. */
static void test_link_loss(void **state)
{
    (void)state;
    struct client c;
    client_online(&c, portal_file);
    /* A call the silent device will not answer, pending when the hub goes away. */
    struct reply r = {0};
    assert_int_equal(lade_svc_call(c.svc, SILENT, "slow-loss", "{}", 20000, on_reply, &r), LADE_OK);
    struct hc_msg m;
    assert_int_equal(silent_recv("$iothub/methods/POST/slow-loss/", &m, 5000), 1);
    h_hub_stop(&hub);
    wait_reply(&r, 10000);
    assert_int_equal(r.err, LADE_ERR_CLOSED);
    assert_int_equal(r.status, 0);
    assert_false(c.online);
    /* Requests are refused while the link is down. */
    struct reply r2 = {0};
    assert_int_equal(lade_svc_call(c.svc, CHARGER, "ping", "{}", 0, on_reply, &r2), LADE_ERR_STATE);

    /* Back after the restart, within the back-off (max 0.5 s here). */
    h_hub_start(&hub, "plugin_opt_method_timeout_s 2\n");
    assert_true(spin(&c.online, 10000));
    assert_int_equal(c.onlines, 2);
    assert_true(wait_charger("\"connects\":2", 15000));
    assert_true(wait_charger("\"link\":\"online\"", 5000));
    assert_int_equal(lade_svc_call(c.svc, CHARGER, "ping", "{}", 5000, on_reply, &r2), LADE_OK);
    wait_reply(&r2, 10000);
    assert_int_equal(r2.status, 200);
    assert_int_equal(r.calls, 1); /* exactly once */
    client_free(&c);
}

/* ---------------------------------------------------------------- lade-cmd */

static void test_cli(void **state)
{
    (void)state;
    /* call: body on stdout, status on stderr. */
    assert_int_equal(lade_cmd(operator_file, hub.ca, "call " CHARGER " ping"), 0);
    expect_out(cmd_out, "\"pong\":true");
    expect_out(cmd_err, "status 200");
    assert_int_equal(h_file_count(cmd_out, "\n"), 1);
    /* The charger's 404: exit 1, its body on stdout. */
    assert_int_equal(lade_cmd(operator_file, hub.ca, "call " CHARGER " frobnicate '{}'"), 1);
    expect_out(cmd_out, "unknown method");
    expect_out(cmd_err, "status 404");
    /* Offline: exit 3. */
    assert_int_equal(lade_cmd(operator_file, hub.ca, "call " OFFLINE " ping"), 3);
    expect_out(cmd_err, "status 404");
    expect_out(cmd_err, "not connected");
    /* Timeouts: local (exit 4), and the hub's 504 (exit 4). */
    assert_int_equal(lade_cmd(operator_file, hub.ca, "--timeout 0.3 call " SILENT " slow"), 4);
    expect_out(cmd_err, "local timeout");
    assert_int_equal(lade_cmd(operator_file, hub.ca, "--timeout 10 call " SILENT " slow"), 4);
    expect_out(cmd_err, "status 504");
    expect_out(cmd_err, "did not answer");

    /* command: {"id":ID, ...args} reaches the device as the body of method "command". */
    struct hc_msg m;
    while (hc_recv(&silent, &m, 0) == 1) {
    }
    assert_int_equal(lade_cmd(operator_file, hub.ca,
                              "--timeout 0.5 command " SILENT
                              " 20002 '{\"current\":16,\"phases\":3}'"),
                     4);
    assert_int_equal(hc_recv_topic(&silent, "$iothub/methods/POST/command/", &m, 5000), 1);
    assert_string_equal(m.payload, "{\"id\":20002,\"current\":16,\"phases\":3}");

    /* Twin. */
    assert_int_equal(
        lade_cmd(operator_file, hub.ca, "twin-set " CHARGER " '{\"telemetryIntervalS\":1}'"), 0);
    expect_out(cmd_out, "\"status\":204");
    expect_out(cmd_err, "status 204");
    assert_true(wait_charger("\"telemetry_interval_s\":1,", 10000));
    bool seen = false;
    for (uint64_t end = h_now_ms() + 10000; !seen && h_now_ms() < end;) {
        assert_int_equal(lade_cmd(operator_file, hub.ca, "twin-get " CHARGER), 0);
        char *out = h_read_file(cmd_out);
        const char *rep = out ? strstr(out, "\"reported\"") : NULL;
        seen = rep && strstr(rep, "\"telemetryIntervalS\":1");
        free(out);
    }
    assert_true(seen);
    assert_int_equal(lade_cmd(operator_file, hub.ca, "twin-get LDE-NOBODY"), 1);
    expect_out(cmd_err, "status 404");

    /* watch: the charger's telemetry, one line per message, tab-separated. */
    assert_int_equal(
        lade_cmd(operator_file, hub.ca, "watch --device " CHARGER " --count 2 --duration 15"), 0);
    assert_int_equal(h_file_count(cmd_out, "\n"), 2);
    expect_out(cmd_out, CHARGER "\t%24.ct=application%2Fjson");
    expect_out(cmd_out, "\t{\"type\":\"state\"");
    /* --duration alone ends with 0 too. */
    assert_int_equal(lade_cmd(operator_file, hub.ca, "watch --device " OFFLINE " --duration 0.5"),
                     0);
    assert_int_equal(h_file_count(cmd_out, "\n"), 0);

    /* Usage and argument errors: exit 2 before any network (the port is closed). */
    char args[1200];
    int closed = h_free_port();
    const char *local[] = {"call 'bad/id' ping",
                           "call " CHARGER " 'a/b'",
                           "call " CHARGER " ping '{bad'",
                           "twin-set " CHARGER " '[1]'",
                           "command " CHARGER " x",
                           "command " CHARGER " 1 '{\"id\":2}'",
                           "frobnicate",
                           "watch --count 0"};
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++) {
        snprintf(args, sizeof args, "--port %d %s", closed, local[i]);
        if (lade_cmd(operator_file, hub.ca, args) != 2)
            fail_msg("lade-cmd %s: expected exit 2", local[i]);
    }
    expect_out(cmd_err, "--count");
    snprintf(args, sizeof args, "%s/missing.conf", hub.dir);
    assert_int_equal(lade_cmd(args, hub.ca, "call " CHARGER " ping"), 2);
    expect_out(cmd_err, "does not exist");
    assert_int_equal(lade_cmd(hub.dir, hub.ca, "call " CHARGER " ping"), 2);
    expect_out(cmd_err, "cannot read the service file");

    /* Connection failures: exit 5 with the reason. */
    assert_int_equal(lade_cmd(badkey_file, hub.ca, "call " CHARGER " ping"), 5);
    expect_out(cmd_err, "refused the credentials");
    expect_out(cmd_err, "CONNACK 5");
    assert_int_equal(h_file_count(cmd_err, "K2hGxT0m"), 0); /* the key is never printed */
    char other_ca[800];
    snprintf(other_ca, sizeof other_ca, "%s/ca.pem", other_ca_dir);
    assert_int_equal(lade_cmd(operator_file, other_ca, "call " CHARGER " ping"), 5);
    expect_out(cmd_err, "certificate is not trusted");
    expect_out(cmd_err, "unable to get local issuer certificate");
    snprintf(args, sizeof args, "--port %d call " CHARGER " ping", closed);
    assert_int_equal(lade_cmd(operator_file, hub.ca, args), 5);
    expect_out(cmd_err, "cannot reach the hub");
    expect_out(cmd_err, "refused");
    /* A name the hosts file does not know fails before any connect (and is still reported). */
    assert_int_equal(
        lade_cmd(operator_file, hub.ca, "--host nowhere.lade.test call " CHARGER " ping"), 5);
    expect_out(cmd_err, "cannot resolve nowhere.lade.test");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_topic_parser, free_live),
        cmocka_unit_test_teardown(test_arguments_without_network, free_live),
        cmocka_unit_test_teardown(test_methods, free_live),
        cmocka_unit_test_teardown(test_timeouts, free_live),
        cmocka_unit_test_teardown(test_token_renewal, free_live),
        cmocka_unit_test_teardown(test_twin_and_events, free_live),
        cmocka_unit_test_teardown(test_wrong_key_and_ca, free_live),
        cmocka_unit_test_teardown(test_cli, free_live),
        cmocka_unit_test_teardown(test_link_loss, free_live),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
