/* bench_plugin — time from a car plugging in to its charger applying the portal's setpoint, on
 * loopback, through the whole system (hub + lade-cloud + lade-charger with evse = sim), for
 * `make bench` (scripts/bench.sh, figure 10).
 *
 *   bench_plugin --service FILE --ca FILE --hosts-file FILE --port HUB_PORT
 *                --portal-port PORT [--rounds N] [--shared-rounds N] [--limit-a A]
 *                [--password-env VAR] DEVICE=STATUS_FILE...
 *
 * One persistent service connection to the hub (svc.h, as service "bench" — not lade-cmd, whose
 * connect would be in every sample). Every charger runs with no car (sim_car = none) and an
 * offline current of 0, so its offer is 0 until the portal sends a setpoint; STATUS_FILE is its
 * --status file (docs/charger.md), read every time the loop wakes, at most 1 ms apart.
 *
 * Measured, each a list of samples (median, p90, max printed as a Markdown table):
 *   - baseline: the round trip of the direct method `ping` to the first charger (service → hub →
 *     charger → hub → service), and of the `sim` calls themselves;
 *   - plug-in → setpoint, one car on the installation: `sim` {"plug":"3p22kw","soc":30} to the
 *     first charger. t0 = its 200 reply arrived (the car is plugged: the charger answers after
 *     the step that saw it, and that step already queued its mode change 710 for the portal);
 *     t1 = the first read of its status file with charging.offer_ma > 0 (the portal's setpoint is
 *     applied: the offer is on the pilot). Also from the call sent (an upper bound that includes
 *     the call's way to the charger), and t1' = the charger's telemetry with 710 = 3 (charging)
 *     seen by this service through the hub. Then {"unplug":true}, and the next round waits until
 *     the portal's setpoint 0 is applied and the portal has every setpoint answered
 *     (GET /metrics: lade_setpoints_acked_total = lade_setpoints_sent_total);
 *   - plug-in → setpoint while the others charge (with 2+ chargers): the other chargers' cars
 *     charge at an equal share of the installation, so the portal must lower them, have that
 *     confirmed, and only then start the last charger (decrease first). Between rounds the last
 *     car leaves and the others rise again (after the portal's 10 s increase hold);
 *   - limit lowered → load under it (with --password-env: the admin password): with every car
 *     charging, POST /api/installation/{id}/update {"availableCurrent": L}, L 1 A below the sum
 *     of the offers, down to 6 A per car. t0 = the request written; t1 = the first moment the sum
 *     of the chargers' offers (all 3-phase cars) is <= L.
 * Output: the table, then one line per list with every sample (ms).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "lade/err.h"
#include "lade/log.h"
#include "lade/loop.h"
#include "lade/svc.h"

#define MAX_CHARGERS 16
#define MAX_SAMPLES  256
#define HTTP_MAX     (256 * 1024)

struct charger {
    const char *id, *status;
    int32_t offer_ma, setpoint_ma;
    bool online;
    int32_t reported_ma; /* the last current L1 (507) it reported, -1 before any */
};

struct samples {
    const char *name;
    double v[MAX_SAMPLES];
    int n;
};

struct app {
    struct lade_loop *loop;
    struct lade_svc *svc;
    bool online;
    struct charger ch[MAX_CHARGERS];
    int n;
    uint16_t portal_port;
    /* the pending call */
    bool replied;
    int status;
    uint64_t reply_ns;
    char body[512];
    /* the watched charger: when its offer was first seen > 0, and its charging telemetry */
    int watch;
    uint64_t apply_ns, tel_ns;
    int32_t apply_ma;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double ms_between(uint64_t a, uint64_t b)
{
    return ((double)b - (double)a) / 1e6;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_plugin: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static void add(struct samples *s, double v)
{
    if (s->n < MAX_SAMPLES)
        s->v[s->n++] = v;
}

/* ---- the chargers' status files ---- */

static bool json_int(const char *buf, const char *key, int32_t *out)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(buf, k);
    if (!p)
        return false;
    *out = (int32_t)strtol(p + strlen(k), NULL, 10);
    return true;
}

static void read_status(struct charger *c)
{
    char buf[16384];
    int fd = open(c->status, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return; /* not written yet, or between rename and open: keep the last values */
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return;
    buf[n] = 0;
    int32_t v;
    if (json_int(buf, "offer_ma", &v))
        c->offer_ma = v;
    if (json_int(buf, "setpoint_ma", &v))
        c->setpoint_ma = v;
    c->online = strstr(buf, "\"link\":\"online\"") != NULL;
}

static void read_all(struct app *a)
{
    for (int i = 0; i < a->n; i++)
        read_status(&a->ch[i]);
    if (a->watch >= 0 && !a->apply_ns && a->ch[a->watch].offer_ma > 0) {
        a->apply_ns = now_ns();
        a->apply_ma = a->ch[a->watch].offer_ma;
    }
}

/* One loop round (at most 1 ms), then every status file. */
static void pump(struct app *a)
{
    if (lade_loop_run_once(a->loop, 1) != LADE_OK)
        die("%s", "event loop failed");
    read_all(a);
}

#define WAIT_FOR(a, timeout_ms, what, cond)                                                        \
    do {                                                                                           \
        uint64_t end_ = now_ns() + (uint64_t)(timeout_ms)*1000000u;                                \
        while (!(cond)) {                                                                          \
            if (now_ns() > end_)                                                                   \
                die("timed out waiting for %s", what);                                             \
            pump(a);                                                                               \
        }                                                                                          \
    } while (0)

/* ---- the service link ---- */

static void on_state(void *ud, enum lade_svc_state st, lade_err err, const char *reason)
{
    struct app *a = ud;
    a->online = st == LADE_SVC_ONLINE;
    if (err != LADE_OK)
        fprintf(stderr, "bench_plugin: hub link: %s (%s)\n", lade_strerror(err), reason);
}

static void on_event(void *ud, const struct lade_svc_event *ev)
{
    struct app *a = ud;
    if (ev->kind != LADE_SVC_EV_TELEMETRY || !ev->payload)
        return;
    int i = 0;
    while (i < a->n && strcmp(ev->device, a->ch[i].id) != 0)
        i++;
    if (i == a->n)
        return;
    /* the current it reports on L1, in A (docs/observations.md, "Wire format") */
    char buf[4200];
    size_t n = ev->payload_len < sizeof buf - 1 ? ev->payload_len : sizeof buf - 1;
    memcpy(buf, ev->payload, n);
    buf[n] = 0;
    const char *p = strstr(buf, "\"507\":");
    if (p)
        a->ch[i].reported_ma = (int32_t)(strtod(p + 6, NULL) * 1000 + 0.5);
    if (i == a->watch && !a->tel_ns && strstr(buf, "\"710\":3"))
        a->tel_ns = now_ns();
}

static void on_reply(void *ud, const struct lade_svc_result *r)
{
    struct app *a = ud;
    a->reply_ns = now_ns();
    a->replied = true;
    a->status = r->err == LADE_OK ? r->status : 0;
    size_t n = r->body_len < sizeof a->body - 1 ? r->body_len : sizeof a->body - 1;
    if (r->body)
        memcpy(a->body, r->body, n);
    a->body[n] = 0;
}

/* Calls method on charger i; returns the time the call was handed to the link (the reply's time
 * is a->reply_ns). Waits for the reply; anything but 200 is fatal. */
static uint64_t call(struct app *a, int i, const char *method, const char *json)
{
    a->replied = false;
    uint64_t t = now_ns();
    if (lade_svc_call(a->svc, a->ch[i].id, method, json, 10000, on_reply, a) != LADE_OK)
        die("cannot call %s", method);
    WAIT_FOR(a, 15000, method, a->replied);
    if (a->status != 200) {
        fprintf(stderr, "bench_plugin: %s %s on %s: status %d %s\n", method, json, a->ch[i].id,
                a->status, a->body);
        exit(1);
    }
    return t;
}

/* ---- HTTP to the portal (loopback; blocking except where timed) ---- */

struct http {
    int fd;
    char *buf;
    size_t len;
    bool done;
    uint64_t done_ns;
};

static void http_begin(struct app *a, struct http *h, const char *method, const char *path,
                       const char *token, const char *ctype, const char *body)
{
    memset(h, 0, sizeof *h);
    h->buf = malloc(HTTP_MAX);
    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!h->buf || h->fd < 0)
        die("%s", "http: out of resources");
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(a->portal_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(h->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        die("http: cannot connect to the portal: %s", strerror(errno));
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%s"
                     "%s%s%sContent-Length: %zu\r\n\r\n%s",
                     method, path, token ? "Authorization: Bearer " : "", token ? token : "",
                     token ? "\r\n" : "", ctype ? "Content-Type: " : "", ctype ? ctype : "",
                     ctype ? "\r\n" : "", body ? strlen(body) : 0, body ? body : "");
    if (n < 0 || (size_t)n >= sizeof req)
        die("%s", "http: request too long");
    for (int off = 0; off < n;) {
        ssize_t w = write(h->fd, req + off, (size_t)(n - off));
        if (w < 0 && errno != EINTR)
            die("http: write: %s", strerror(errno));
        off += w > 0 ? (int)w : 0;
    }
    if (fcntl(h->fd, F_SETFL, O_NONBLOCK) != 0)
        die("http: %s", strerror(errno));
}

/* Reads what has arrived; done at EOF. */
static void http_step(struct http *h)
{
    while (!h->done) {
        if (h->len + 1 >= HTTP_MAX)
            die("%s", "http: response too large");
        ssize_t r = read(h->fd, h->buf + h->len, HTTP_MAX - 1 - h->len);
        if (r > 0) {
            h->len += (size_t)r;
            continue;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        h->done = true;
        h->done_ns = now_ns();
        h->buf[h->len] = 0;
        close(h->fd);
    }
}

static int http_status(const struct http *h)
{
    return strncmp(h->buf, "HTTP/1.", 7) == 0 && h->len > 12 ? atoi(h->buf + 9) : 0;
}

static const char *http_body(const struct http *h)
{
    const char *p = strstr(h->buf, "\r\n\r\n");
    return p ? p + 4 : "";
}

/* A whole request, blocking (outside the timed windows). */
static void http_do(struct app *a, struct http *h, const char *method, const char *path,
                    const char *token, const char *ctype, const char *body)
{
    http_begin(a, h, method, path, token, ctype, body);
    uint64_t end = now_ns() + 10000000000u;
    while (!h->done) {
        struct pollfd p = {.fd = h->fd, .events = POLLIN};
        (void)poll(&p, 1, 10);
        http_step(h);
        if (now_ns() > end)
            die("http: %s timed out", path);
    }
}

static void http_free(struct http *h)
{
    free(h->buf);
    h->buf = NULL;
}

static long metric(const char *text, const char *name)
{
    char k[96];
    snprintf(k, sizeof k, "\n%s ", name);
    const char *p = strstr(text, k);
    return p ? strtol(p + strlen(k), NULL, 10) : -1;
}

/* The portal's setpoint counters: sent, and answered 200. */
static void setpoint_counts(struct app *a, long *sent, long *acked)
{
    struct http h;
    http_do(a, &h, "GET", "/metrics", NULL, NULL, NULL);
    if (http_status(&h) != 200)
        die("%s", "GET /metrics failed");
    *sent = metric(http_body(&h) - 1, "lade_setpoints_sent_total");
    *acked = metric(http_body(&h) - 1, "lade_setpoints_acked_total");
    http_free(&h);
    if (*sent < 0 || *acked < 0)
        die("%s", "/metrics has no setpoint counters");
}

/* Waits until every setpoint the portal sent is answered and stays so for 50 ms; returns how
 * many it has sent. Polls /metrics every 10 ms, pumping the loop in between. */
static long portal_quiet(struct app *a)
{
    uint64_t end = now_ns() + 30000000000u, since = 0;
    long sent = 0, acked = 0, last = -1;
    for (;;) {
        setpoint_counts(a, &sent, &acked);
        uint64_t t = now_ns();
        if (sent != acked || sent != last) {
            since = t;
            last = sent;
        } else if (t - since >= 50000000u) {
            return sent;
        }
        if (t > end)
            die("%s", "timed out waiting for the portal's setpoints to be answered");
        for (uint64_t until = now_ns() + 10000000u; now_ns() < until;)
            pump(a);
    }
}

/* ---- statistics ---- */

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static void row(const struct samples *s)
{
    if (!s->n)
        return;
    double v[MAX_SAMPLES];
    memcpy(v, s->v, sizeof v[0] * (size_t)s->n);
    qsort(v, (size_t)s->n, sizeof v[0], cmp_double);
    double med = s->n % 2 ? v[s->n / 2] : (v[s->n / 2 - 1] + v[s->n / 2]) / 2;
    int k90 = (int)((s->n * 9 + 9) / 10) - 1; /* nearest rank */
    printf("| %s | %d | %.2f | %.2f | %.2f | %.2f |\n", s->name, s->n, med, v[k90], v[s->n - 1],
           v[0]);
}

static void raw(const struct samples *s)
{
    if (!s->n)
        return;
    printf("- %s:", s->name);
    for (int i = 0; i < s->n; i++)
        printf("%s %.2f", i ? "," : "", s->v[i]);
    printf("\n");
}

/* ---- the measurements ---- */

static const char PLUG[] = "{\"plug\":\"3p22kw\",\"soc\":30}";
static const char UNPLUG[] = "{\"unplug\":true}";

static bool equal_shares(struct app *a, int n, int32_t share_ma)
{
    for (int k = 0; k < n; k++)
        if (a->ch[k].offer_ma != share_ma)
            return false;
    return true;
}

/* Chargers 0..n-1 offer share_ma and the last current each reported is that too (within the
 * reporter's 0.5 A deadband): they charge steadily, as cars do most of the time. */
static bool steady(struct app *a, int n, int32_t share_ma)
{
    for (int k = 0; k < n; k++)
        if (a->ch[k].offer_ma != share_ma || a->ch[k].reported_ma < share_ma - 500 ||
            a->ch[k].reported_ma > share_ma + 500)
            return false;
    return true;
}

static bool all_below(struct app *a, int n, int32_t share_ma)
{
    for (int k = 0; k < n; k++)
        if (a->ch[k].setpoint_ma >= share_ma)
            return false;
    return true;
}

/* Plugs a car into charger i and waits for the portal's setpoint; fills the samples. */
static void plug_round(struct app *a, int i, struct samples *from_reply, struct samples *from_send,
                       struct samples *tel, struct samples *sim_rtt, int32_t *first_offer,
                       int others, int32_t share_ma, struct samples *lowered)
{
    if (a->ch[i].offer_ma != 0)
        die("%s offers current before the plug-in", a->ch[i].id);
    a->watch = i;
    a->tel_ns = a->apply_ns = 0;
    uint64_t sent = call(a, i, "sim", PLUG);
    uint64_t replied = a->reply_ns;
    uint64_t end = now_ns() + 60000000000u, low = 0;
    while (!a->apply_ns || !a->tel_ns || (others && !low)) {
        pump(a);
        if (others && !low && all_below(a, others, share_ma))
            low = now_ns();
        if (now_ns() > end)
            die("timed out waiting for %s's setpoint after the plug-in", a->ch[i].id);
    }
    if (others)
        add(lowered, ms_between(replied, low));
    uint64_t applied = a->apply_ns;
    *first_offer = a->apply_ma;
    add(from_reply, ms_between(replied, applied));
    add(from_send, ms_between(sent, applied));
    if (tel)
        add(tel, ms_between(replied, a->tel_ns));
    add(sim_rtt, ms_between(sent, replied));
    a->watch = -1;
}

static void unplug(struct app *a, int i, struct samples *sim_rtt)
{
    uint64_t sent = call(a, i, "sim", UNPLUG);
    add(sim_rtt, ms_between(sent, a->reply_ns));
    WAIT_FOR(a, 10000, "the offer to drop after an unplug",
             a->ch[i].offer_ma == 0 && a->ch[i].setpoint_ma == 0);
}

static int32_t offers_sum(struct app *a)
{
    int32_t s = 0;
    for (int k = 0; k < a->n; k++)
        s += a->ch[k].offer_ma;
    return s;
}

static char *login(struct app *a, const char *password, char *inst, size_t inst_cap)
{
    char body[512];
    snprintf(body, sizeof body, "grant_type=password&username=admin&password=%s", password);
    struct http h;
    http_do(a, &h, "POST", "/oauth/token", NULL, "application/x-www-form-urlencoded", body);
    cJSON *o = http_status(&h) == 200 ? cJSON_Parse(http_body(&h)) : NULL;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "access_token");
    if (!cJSON_IsString(t))
        die("login failed: %s", h.buf);
    char *token = strdup(t->valuestring);
    cJSON_Delete(o);
    http_free(&h);
    http_do(a, &h, "GET", "/api/installation", token, NULL, NULL);
    o = http_status(&h) == 200 ? cJSON_Parse(http_body(&h)) : NULL;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "Data"), 0), "Id");
    if (!cJSON_IsString(id))
        die("GET /api/installation: %s", h.buf);
    snprintf(inst, inst_cap, "%s", id->valuestring);
    cJSON_Delete(o);
    http_free(&h);
    return token;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_plugin --service FILE --ca FILE --hosts-file FILE --port HUB_PORT\n"
            "         --portal-port PORT [--rounds N] [--shared-rounds N] [--limit-a A]\n"
            "         [--password-env VAR] DEVICE=STATUS_FILE...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static struct app app;
    struct app *a = &app;
    const char *service = NULL, *ca = NULL, *hosts = NULL, *password_env = NULL;
    long hub_port = 0, portal_port = 0, rounds = 10, shared_rounds = 10, limit_a = 0;
    static const struct option lo[] = {
        {"service", required_argument, 0, 's'},       {"ca", required_argument, 0, 'c'},
        {"hosts-file", required_argument, 0, 'f'},    {"port", required_argument, 0, 'p'},
        {"portal-port", required_argument, 0, 'P'},   {"rounds", required_argument, 0, 'r'},
        {"shared-rounds", required_argument, 0, 'R'}, {"limit-a", required_argument, 0, 'l'},
        {"password-env", required_argument, 0, 'w'},  {0, 0, 0, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (o) {
        case 's':
            service = optarg;
            break;
        case 'c':
            ca = optarg;
            break;
        case 'f':
            hosts = optarg;
            break;
        case 'p':
            hub_port = strtol(optarg, NULL, 10);
            break;
        case 'P':
            portal_port = strtol(optarg, NULL, 10);
            break;
        case 'r':
            rounds = strtol(optarg, NULL, 10);
            break;
        case 'R':
            shared_rounds = strtol(optarg, NULL, 10);
            break;
        case 'l':
            limit_a = strtol(optarg, NULL, 10);
            break;
        case 'w':
            password_env = optarg;
            break;
        default:
            usage();
        }
    }
    if (!service || !ca || hub_port < 1 || hub_port > 65535 || portal_port < 1 ||
        portal_port > 65535 || rounds < 1 || rounds > MAX_SAMPLES || shared_rounds < 0 ||
        shared_rounds > MAX_SAMPLES || optind >= argc || argc - optind > MAX_CHARGERS)
        usage();
    a->portal_port = (uint16_t)portal_port;
    a->watch = -1;
    for (int i = optind; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq)
            usage();
        *eq = 0;
        a->ch[a->n++] = (struct charger){.id = argv[i], .status = eq + 1, .reported_ma = -1};
    }
    lade_log_set_level(LADE_LOG_WARN);

    struct lade_svc_file sf;
    char why[160];
    if (lade_svc_file_load(service, &sf, why, sizeof why) != LADE_OK)
        die("service file: %s", why);
    if (lade_loop_new(&a->loop) != LADE_OK)
        die("%s", "event loop");
    struct lade_svc_opts so = {
        .loop = a->loop,
        .hub_host = sf.hub_host,
        .port = (uint16_t)hub_port,
        .ca_file = ca,
        .hosts_file = hosts,
        .service_name = sf.name,
        .key = sf.key,
        .key_len = sf.key_len,
        .token_ttl_s = 3600,
        .call_timeout_ms = 10000,
        .cb = {.on_state = on_state, .on_event = on_event},
        .ud = a,
    };
    if (lade_svc_new(&a->svc, &so) != LADE_OK || lade_svc_subscribe_events(a->svc, true) ||
        lade_svc_start(a->svc) != LADE_OK)
        die("%s", "cannot start the service link");
    lade_svc_file_wipe(&sf);
    WAIT_FOR(a, 20000, "the service link", a->online);
    for (int i = 0; i < a->n; i++)
        WAIT_FOR(a, 20000, "every charger online", a->ch[i].online);
    /* the portal has paused every charger it saw come online (their state was unknown) */
    long start_sent = portal_quiet(a);

    static struct samples
        ping = {.name = "`ping` round trip (baseline)"},
        sim = {.name = "`sim` call round trip"},
        one = {.name = "plug-in → setpoint applied, 1 car (from the `sim` reply)"},
        one_send = {.name = "plug-in → setpoint applied, 1 car (from the call sent)"},
        one_tel = {.name = "plug-in → its charging telemetry (710 = 3) at a service, 1 car"},
        shared = {.name = "plug-in → setpoint applied, the others lowered first"},
        shared_send = {.name = "same, from the call sent"},
        lowered = {.name = "plug-in → the others' lower setpoints applied"},
        lim = {.name = "limit lowered (API request) → Σ offers ≤ the new limit"},
        lim_api = {.name = "limit lowered: the API's response"};
    long per_cycle = 0;
    int32_t first_offer = 0;

    /* baseline: the hub round trip of a plain direct method to the same charger (one call first
     * that is not counted: the link's first request) */
    (void)call(a, 0, "ping", "{}");
    for (long r = 0; r < rounds * 2; r++) {
        uint64_t t = call(a, 0, "ping", "{}");
        add(&ping, ms_between(t, a->reply_ns));
    }

    /* 1: one car on the installation */
    for (long r = 0; r < rounds; r++) {
        long before = portal_quiet(a);
        plug_round(a, 0, &one, &one_send, &one_tel, &sim, &first_offer, 0, 0, NULL);
        unplug(a, 0, &sim);
        per_cycle += portal_quiet(a) - before;
    }

    /* 2: the last charger's car plugs in while every other charges at an equal share */
    int last = a->n - 1;
    int32_t share_ma = 0, shared_first[MAX_SAMPLES] = {0};
    if (a->n >= 2 && shared_rounds > 0) {
        for (int k = 0; k < last; k++) {
            (void)call(a, k, "sim", PLUG);
            WAIT_FOR(a, 15000, "a car to start", a->ch[k].offer_ma > 0);
        }
        /* wait for the increases held after partial starts: everyone at one share */
        WAIT_FOR(a, 30000, "the others at an equal share",
                 a->ch[0].offer_ma > 0 && equal_shares(a, last, a->ch[0].offer_ma));
        share_ma = a->ch[0].offer_ma;
        for (long r = 0; r < shared_rounds; r++) {
            WAIT_FOR(a, 60000, "the others charging steadily", steady(a, last, share_ma));
            (void)portal_quiet(a);
            plug_round(a, last, &shared, &shared_send, NULL, &sim, &shared_first[r], last, share_ma,
                       &lowered);
            if (r + 1 == shared_rounds && password_env)
                break; /* the limit sweep starts with every car charging */
            unplug(a, last, &sim);
            WAIT_FOR(a, 30000, "the others back at their share", equal_shares(a, last, share_ma));
        }
    }

    /* 3: lower the installation's limit in 1 A steps with every car charging */
    if (a->n >= 2 && shared_rounds > 0 && password_env && limit_a > 0) {
        const char *pw = getenv(password_env);
        if (!pw)
            die("%s is not set", password_env);
        char inst[64], path[128], body[64];
        char *token = login(a, pw, inst, sizeof inst);
        snprintf(path, sizeof path, "/api/installation/%s/update", inst);
        for (;;) {
            (void)portal_quiet(a);
            int32_t sum = offers_sum(a);
            long l = sum / 1000 - (sum % 1000 ? 0 : 1);
            if (l < 6L * a->n)
                break;
            snprintf(body, sizeof body, "{\"availableCurrent\":%ld}", l);
            struct http h;
            uint64_t t0 = now_ns(), fit = 0;
            http_begin(a, &h, "POST", path, token, "application/json", body);
            uint64_t end = t0 + 10000000000u;
            while (!fit || !h.done) {
                pump(a);
                http_step(&h);
                if (!fit && offers_sum(a) <= l * 1000)
                    fit = now_ns();
                if (now_ns() > end)
                    die("%s", "timed out waiting for the load to fit a lowered limit");
            }
            if (http_status(&h) != 200)
                die("limit update refused: %s", h.buf);
            http_free(&h);
            add(&lim, ms_between(t0, fit));
            add(&lim_api, ms_between(t0, h.done_ns));
        }
        free(token);
    }

    printf("| measured | n | median (ms) | p90 (ms) | max (ms) | min (ms) |\n");
    printf("|---|---:|---:|---:|---:|---:|\n");
    row(&one);
    row(&one_send);
    row(&one_tel);
    row(&shared);
    row(&shared_send);
    row(&lowered);
    row(&lim);
    row(&lim_api);
    row(&ping);
    row(&sim);
    printf("\nsetpoints=%ld per_cycle=%.1f first_offer_ma=%d share_ma=%d chargers=%d", start_sent,
           (double)per_cycle / (double)rounds, first_offer, share_ma, a->n);
    printf(" shared_first_ma=");
    for (long r = 0; r < shared.n; r++)
        printf("%s%d", r ? "," : "", shared_first[r]);
    printf("\n\nSamples (ms):\n\n");
    raw(&one);
    raw(&one_tel);
    raw(&shared);
    raw(&lowered);
    raw(&lim);
    raw(&ping);
    lade_svc_free(a->svc);
    lade_loop_free(a->loop);
    return 0;
}
