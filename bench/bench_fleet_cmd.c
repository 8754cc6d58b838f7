/* bench_fleet_cmd — command round trip at fleet scale, for `make bench` (scripts/bench.sh,
 * issue 8): the direct method `ping` (service → hub → charger → hub → service) to chargers
 * picked at random from a connected fleet (lade-sim), on one persistent service connection.
 *
 *   bench_fleet_cmd --service FILE --ca FILE --hosts-file FILE --port HUB_PORT --ids FILE
 *                   [--calls N] [--concurrency C] [--timeout-ms T]
 *                   [--method NAME --payload JSON] [--distinct] [--rate R]
 *
 * FILE of --ids: one device id per line. C calls are kept in flight (a new one is sent as soon
 * as one is answered), N in all; each call's time runs from lade_svc_call to its reply.
 * --method/--payload: another direct method than `ping` (e.g. the simulator's `sim` with
 * {"plug":"3p11kw"} for an evening peak); --distinct: call i goes to the i-th id (each charger
 * once) instead of one picked at random; --rate: at most R calls a second, evenly paced. Output:
 * one Markdown row "| C | N | answered | p50 | p90 | p99 | max | calls/s |" (ms), then a line
 * "raw: ..." with every sample. Exit 1 when fewer than 99 % were answered with 200.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lade/clock.h"
#include "lade/err.h"
#include "lade/log.h"
#include "lade/loop.h"
#include "lade/svc.h"

#define MAX_IDS   200000
#define MAX_CALLS 100000

struct app {
    struct lade_loop *loop;
    struct lade_svc *svc;
    bool online;
    char **ids;
    size_t n_ids;
    double *rtt;
    size_t n_rtt;
    size_t sent, answered, failed, in_flight;
    const char *method, *payload;
    bool distinct;
};

struct pending {
    struct app *a;
    uint64_t t0;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_fleet_cmd: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void on_state(void *ud, enum lade_svc_state st, lade_err err, const char *reason)
{
    struct app *a = ud;
    a->online = st == LADE_SVC_ONLINE;
    if (err != LADE_OK)
        fprintf(stderr, "bench_fleet_cmd: hub link: %s (%s)\n", lade_strerror(err), reason);
}

static void on_reply(void *ud, const struct lade_svc_result *r)
{
    struct pending *p = ud;
    struct app *a = p->a;
    a->in_flight--;
    if (r->err == LADE_OK && r->status == 200) {
        a->answered++;
        a->rtt[a->n_rtt++] = (double)(now_ns() - p->t0) / 1e6;
    } else {
        a->failed++;
    }
    free(p);
}

static void send_one(struct app *a, uint32_t timeout_ms)
{
    struct pending *p = malloc(sizeof *p);
    if (!p)
        die("out of memory");
    p->a = a;
    const char *id = a->distinct ? a->ids[a->sent] : a->ids[lade_random_u32() % a->n_ids];
    p->t0 = now_ns();
    if (lade_svc_call(a->svc, id, a->method, a->payload, timeout_ms, on_reply, p) != LADE_OK)
        die("cannot call %s on %s", a->method, id);
    a->sent++;
    a->in_flight++;
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

static double pct(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static void load_ids(struct app *a, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die("cannot read %s", path);
    a->ids = calloc(MAX_IDS, sizeof *a->ids);
    char line[256];
    while (a->ids && a->n_ids < MAX_IDS && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0])
            a->ids[a->n_ids++] = strdup(line);
    }
    fclose(f);
    if (a->n_ids == 0)
        die("no ids in %s", path);
}

int main(int argc, char **argv)
{
    static struct app app;
    struct app *a = &app;
    const char *service = NULL, *ca = NULL, *hosts = NULL, *ids = NULL;
    long port = 0, calls = 1000, conc = 1, timeout_ms = 10000;
    double rate = 0;
    a->method = "ping";
    a->payload = "{}";
    static const struct option lo[] = {
        {"service", required_argument, 0, 's'},
        {"ca", required_argument, 0, 'c'},
        {"hosts-file", required_argument, 0, 'f'},
        {"port", required_argument, 0, 'p'},
        {"ids", required_argument, 0, 'i'},
        {"calls", required_argument, 0, 'n'},
        {"concurrency", required_argument, 0, 'C'},
        {"timeout-ms", required_argument, 0, 't'},
        {"method", required_argument, 0, 'm'},
        {"payload", required_argument, 0, 'P'},
        {"distinct", no_argument, 0, 'd'},
        {"rate", required_argument, 0, 'r'},
        {0, 0, 0, 0},
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
            port = strtol(optarg, NULL, 10);
            break;
        case 'i':
            ids = optarg;
            break;
        case 'n':
            calls = strtol(optarg, NULL, 10);
            break;
        case 'C':
            conc = strtol(optarg, NULL, 10);
            break;
        case 't':
            timeout_ms = strtol(optarg, NULL, 10);
            break;
        case 'm':
            a->method = optarg;
            break;
        case 'P':
            a->payload = optarg;
            break;
        case 'd':
            a->distinct = true;
            break;
        case 'r':
            rate = strtod(optarg, NULL);
            break;
        default:
            die("usage: see the comment at the top of bench/bench_fleet_cmd.c");
        }
    }
    if (!service || !ca || !ids || port < 1 || port > 65535 || calls < 1 || calls > MAX_CALLS ||
        conc < 1 || conc > 1000 || timeout_ms < 100 || rate < 0 || !a->method[0])
        die("usage: see the comment at the top of bench/bench_fleet_cmd.c");
    lade_log_set_level(LADE_LOG_WARN);
    load_ids(a, ids);
    if (a->distinct && (size_t)calls > a->n_ids)
        die("--distinct: %ld calls but only %zu ids", calls, a->n_ids);
    a->rtt = calloc((size_t)calls, sizeof *a->rtt);
    struct lade_svc_file sf;
    char why[160];
    if (!a->rtt || lade_svc_file_load(service, &sf, why, sizeof why) != LADE_OK)
        die("service file: %s", why);
    if (lade_loop_new(&a->loop) != LADE_OK)
        die("event loop");
    struct lade_svc_opts so = {
        .loop = a->loop,
        .hub_host = sf.hub_host,
        .port = (uint16_t)port,
        .ca_file = ca,
        .hosts_file = hosts,
        .service_name = sf.name,
        .key = sf.key,
        .key_len = sf.key_len,
        .cb = {.on_state = on_state},
        .ud = a,
    };
    if (lade_svc_new(&a->svc, &so) != LADE_OK || lade_svc_start(a->svc) != LADE_OK)
        die("service link");
    uint64_t deadline = now_ns() + 30000000000ull;
    while (!a->online) {
        if (now_ns() > deadline)
            die("the service link did not come up");
        if (lade_loop_run_once(a->loop, 10) != LADE_OK)
            die("event loop failed");
    }
    uint64_t t0 = now_ns();
    deadline = t0 + (uint64_t)calls * (uint64_t)timeout_ms * 1000000u / (uint64_t)conc +
               (rate > 0 ? (uint64_t)((double)calls / rate * 1e9) : 0) + 60000000000ull;
    while (a->answered + a->failed < (size_t)calls) {
        while (a->sent < (size_t)calls && a->in_flight < (size_t)conc &&
               (rate <= 0 || (double)(now_ns() - t0) >= (double)a->sent / rate * 1e9))
            send_one(a, (uint32_t)timeout_ms);
        if (now_ns() > deadline)
            die("calls did not finish");
        if (lade_loop_run_once(a->loop, 10) != LADE_OK)
            die("event loop failed");
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    qsort(a->rtt, a->n_rtt, sizeof *a->rtt, cmp_double);
    printf("| %ld | %ld | %zu | %.2f | %.2f | %.2f | %.2f | %.0f |\n", conc, calls, a->answered,
           pct(a->rtt, a->n_rtt, 50), pct(a->rtt, a->n_rtt, 90), pct(a->rtt, a->n_rtt, 99),
           a->n_rtt ? a->rtt[a->n_rtt - 1] : 0.0, (double)calls / secs);
    printf("raw:");
    for (size_t i = 0; i < a->n_rtt; i++)
        printf(" %.2f", a->rtt[i]);
    printf("\n");
    lade_svc_free(a->svc);
    lade_loop_free(a->loop);
    lade_svc_file_wipe(&sf);
    return a->answered * 100 >= (size_t)calls * 99 ? 0 : 1;
}
