/* lade-sim — many simulated chargers in one process (issue 8, SPEC U5, R11).
 *
 *   lade-sim provision --registry DB --hub-host HOST --ca CA --count N --out DIR
 *                      [--prefix SIM] [--hub-port 8883] [--hub-addr 127.0.0.1]
 *                      [--hosts-file F]
 *   lade-sim run --fleet DIR [--count N] [--scenario steady|peak|storm|partition]
 *                [--duration S] [--start-rate R] [--stats-interval S] [--stats FILE]
 *                [--state-root DIR] [--keepalive S] [--telemetry-interval S]
 *                [--backoff-min-ms MS] [--backoff-max-ms MS] [--token-ttl S]
 *                [--plugged P] [--peak-window S] [--peak-fraction F] [--sim-time-scale X]
 *                [--partition F] [--partition-at S] [--partition-s S]
 *                [--no-source-addrs] [--allow-remote] [--port P] [--outbox auto|files|memory]
 *                [--log-level L]
 *   lade-sim ids --fleet DIR
 *
 * Every charger is a struct lade_charger (the library lade-charger runs), with its own identity,
 * TLS connection, MQTT session, outbox and simulated car (evse = sim), all on one event loop and
 * one shared lade_tls_ctx. See docs/lade-sim.md for the scenarios and the stats format.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <netinet/in.h>
#include <sqlite3.h>

#include "lade/charger.h"
#include "lade/clock.h"
#include "lade/codec.h"
#include "lade/iothub.h"
#include "lade/log.h"
#include "lade/loop.h"
#include "lade/registry.h"
#include "lade/resolve.h"
#include "lade/settings.h"
#include "lade/tls.h"

#define FLEET_FILE "fleet.conf"
#define MAX_COUNT  1000000L

static void usage(FILE *f)
{
    fputs("usage:\n"
          "  lade-sim provision --registry DB --hub-host HOST --ca CA --count N --out DIR\n"
          "                     [--prefix SIM] [--hub-port 8883] [--hub-addr 127.0.0.1]\n"
          "                     [--hosts-file F]\n"
          "  lade-sim run --fleet DIR [--count N] [--scenario steady|peak|storm|partition]\n"
          "               [--duration S] [--start-rate R] [--stats-interval S] [--stats FILE]\n"
          "               [--state-root DIR] [--keepalive S] [--telemetry-interval S]\n"
          "               [--backoff-min-ms MS] [--backoff-max-ms MS] [--token-ttl S]\n"
          "               [--plugged P] [--peak-window S] [--peak-fraction F]\n"
          "               [--sim-time-scale X] [--partition F] [--partition-at S]\n"
          "               [--partition-s S] [--no-source-addrs] [--allow-remote]\n"
          "               [--port P] [--outbox auto|files|memory]\n"
          "               [--log-level error|warn|info|debug]\n"
          "  lade-sim ids --fleet DIR      (the fleet's device ids, one a line)\n",
          f);
}

static double parse_num(const char *s, const char *flag, double min, double max)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !(v >= min && v <= max)) {
        fprintf(stderr, "lade-sim: %s must be a number in %g..%g\n", flag, min, max);
        exit(2);
    }
    return v;
}

static double now_s(uint64_t t0)
{
    return (double)(lade_mono_ms() - t0) / 1000.0;
}

/* ======================================================================================== */
/* provision                                                                                */
/* ======================================================================================== */

static int cmd_provision(int argc, char **argv)
{
    const char *registry = NULL, *hub_host = NULL, *ca = NULL, *out = NULL, *prefix = "SIM",
               *hub_addr = "127.0.0.1", *hosts_file = NULL;
    long count = 0, hub_port = 8883;
    static const struct option lo[] = {
        {"registry", required_argument, 0, 'r'},
        {"hub-host", required_argument, 0, 'H'},
        {"ca", required_argument, 0, 'c'},
        {"count", required_argument, 0, 'n'},
        {"out", required_argument, 0, 'o'},
        {"prefix", required_argument, 0, 'p'},
        {"hub-port", required_argument, 0, 'P'},
        {"hub-addr", required_argument, 0, 'a'},
        {"hosts-file", required_argument, 0, 'f'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'r':
            registry = optarg;
            break;
        case 'H':
            hub_host = optarg;
            break;
        case 'c':
            ca = optarg;
            break;
        case 'n':
            count = (long)parse_num(optarg, "--count", 1, MAX_COUNT);
            break;
        case 'o':
            out = optarg;
            break;
        case 'p':
            prefix = optarg;
            break;
        case 'P':
            hub_port = (long)parse_num(optarg, "--hub-port", 1, 65535);
            break;
        case 'a':
            hub_addr = optarg;
            break;
        case 'f':
            hosts_file = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!registry || !hub_host || !ca || !out || count <= 0 || optind != argc) {
        usage(stderr);
        return 2;
    }
    char probe[LADE_IOTHUB_DEVICE_ID_MAX + 1];
    snprintf(probe, sizeof probe, "%s0000000", prefix);
    if (strlen(prefix) > 100 || !lade_iothub_device_id_valid(probe)) {
        fprintf(stderr, "lade-sim: --prefix must be characters of [A-Za-z0-9-]\n");
        return 2;
    }
    struct lade_sockaddr ha;
    if (lade_sockaddr_parse(hub_addr, &ha) != LADE_OK) {
        fprintf(stderr, "lade-sim: --hub-addr must be an IP address\n");
        return 2;
    }
    char ca_abs[PATH_MAX];
    if (!realpath(ca, ca_abs)) {
        fprintf(stderr, "lade-sim: --ca %s: %s\n", ca, strerror(errno));
        return 1;
    }
    if (mkdir(out, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "lade-sim: mkdir %s: %s\n", out, strerror(errno));
        return 1;
    }
    char out_abs[PATH_MAX];
    if (!realpath(out, out_abs)) {
        fprintf(stderr, "lade-sim: --out %s: %s\n", out, strerror(errno));
        return 1;
    }
    char hosts_abs[PATH_MAX + 16];
    if (hosts_file) {
        if (!realpath(hosts_file, hosts_abs)) {
            fprintf(stderr, "lade-sim: --hosts-file %s: %s\n", hosts_file, strerror(errno));
            return 1;
        }
    } else {
        /* The hub's name resolves from a hosts file of the fleet's own: no DNS at all. */
        snprintf(hosts_abs, sizeof hosts_abs, "%s/hosts", out_abs);
        FILE *hf = fopen(hosts_abs, "w");
        if (!hf || fprintf(hf, "%s %s\n", hub_addr, hub_host) < 0 || fclose(hf) != 0) {
            fprintf(stderr, "lade-sim: cannot write %s\n", hosts_abs);
            return 1;
        }
    }

    uint64_t t0 = lade_mono_ms();
    size_t n = (size_t)count;
    char(*ids)[24] = calloc(n, sizeof *ids);
    uint8_t(*keys)[LADE_REGISTRY_KEY_LEN] = calloc(n, sizeof *keys);
    struct lade_registry_new_device *devs = calloc(n, sizeof *devs);
    if (!ids || !keys || !devs) {
        fprintf(stderr, "lade-sim: out of memory\n");
        return 1;
    }
    if (lade_random(keys, n * sizeof *keys) != LADE_OK) {
        fprintf(stderr, "lade-sim: no random bytes\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], sizeof ids[i], "%s%07zu", prefix, i + 1);
        devs[i] = (struct lade_registry_new_device){ids[i], keys[i], sizeof keys[i]};
    }
    struct lade_registry *reg = NULL;
    lade_err err = lade_registry_open(registry, &reg);
    if (err) {
        fprintf(stderr, "lade-sim: registry %s: %s\n", registry, lade_strerror(err));
        return 1;
    }
    size_t bad = 0;
    err = lade_registry_device_add_many(reg, devs, n, lade_wall_s(), &bad);
    lade_registry_close(reg);
    uint64_t t_reg = lade_mono_ms();
    if (err) {
        fprintf(stderr, "lade-sim: registering %s: %s (nothing was added%s)\n", ids[bad],
                lade_strerror(err),
                err == LADE_ERR_EXISTS ? "; use another --prefix or a fresh registry" : "");
        return 1;
    }

    /* One file for the fleet, written atomically with mode 0600 (it holds every key). */
    char path[PATH_MAX + 32], tmp[PATH_MAX + 40];
    snprintf(path, sizeof path, "%s/" FLEET_FILE, out_abs);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "lade-sim: %s: %s\n", tmp, strerror(errno));
        return 1;
    }
    fprintf(f,
            "# lade-sim fleet (%zu chargers): the factory settings they share, then one\n"
            "# 'device = ID BASE64-KEY' line each. Secret: mode 0600.\n"
            "hub_host = %s\nhub_port = %ld\nca_file = %s\nhosts_file = %s\n"
            "ntp_host = %s\nfirmware_hosts = %s\nfallback_dns = 127.0.0.1\n"
            "evse = sim\ntime_source = host\n",
            n, hub_host, hub_port, ca_abs, hosts_abs, hub_host, hub_host);
    for (size_t i = 0; i < n; i++) {
        char b64[64];
        if (lade_base64_encode(keys[i], sizeof keys[i], b64, sizeof b64, NULL) != LADE_OK)
            return 1;
        fprintf(f, "device = %s %s\n", ids[i], b64);
        memset(b64, 0, sizeof b64);
    }
    memset(keys, 0, n * sizeof *keys);
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        fprintf(stderr, "lade-sim: cannot write %s\n", path);
        return 1;
    }
    uint64_t t1 = lade_mono_ms();
    printf("{\"event\":\"provisioned\",\"count\":%zu,\"first\":\"%s\",\"last\":\"%s\","
           "\"fleet\":\"%s\",\"registry_s\":%.3f,\"total_s\":%.3f}\n",
           n, ids[0], ids[n - 1], path, (double)(t_reg - t0) / 1000.0, (double)(t1 - t0) / 1000.0);
    free(ids);
    free(keys);
    free(devs);
    return 0;
}

/* ======================================================================================== */
/* run                                                                                      */
/* ======================================================================================== */

enum scenario { SC_STEADY, SC_PEAK, SC_STORM, SC_PARTITION };
static const char *const scenario_names[] = {"steady", "peak", "storm", "partition"};

struct dev {
    char id[LADE_IOTHUB_DEVICE_ID_MAX + 1];
    uint8_t key[LADE_REGISTRY_KEY_MAX];
    size_t key_len;
};

struct simc {
    struct lade_charger *c;
    enum lade_link_state last;
    bool partitioned;
    bool seen_down;     /* went offline during the current outage */
    uint64_t offer_car; /* car_since_ms of the car whose plug-in → offer is recorded */
};

struct sim {
    struct lade_loop *loop;
    struct lade_tls_ctx *tls;
    struct simc *ch;
    size_t n;
    enum scenario sc;
    FILE *out;
    uint64_t t0;
    /* stats */
    struct lade_timer stats_timer, tick_timer, end_timer, part_timer;
    uint32_t stats_ms;
    uint64_t last_stats_ms, last_stats_connects;
    uint64_t last_tick_connects;
    /* outage tracking (storm, partition, anything): from the first charger that drops after
     * all were online, to all online again */
    bool all_up_once;
    double all_up_at;
    bool in_outage;
    double outage_start;
    size_t outage_down_max, outage_min_online;
    uint64_t outage_peak_cps;
    unsigned outages;
    /* partition */
    double part_frac, part_at, part_s;
    bool part_active, part_done;
    size_t part_n;
    double part_start, part_end;
    char nft_table[64];
    bool src_addrs;
    /* per-second lines */
    bool per_second;
    /* plug-in → first offer (> 0) of every car, ms, as the chargers timed it */
    uint32_t *lat;
    size_t n_lat, cap_lat;
    size_t cars, cars_offered;
};

static void emit(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(struct sim *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(s->out, fmt, ap);
    va_end(ap);
    fputc('\n', s->out);
    fflush(s->out);
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
            break;
    fclose(f);
    return v;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own fd */
}

struct agg {
    size_t online, connecting, waiting, stopped;
    uint64_t connects, failures, telemetry, methods, bytes_in, bytes_out;
};

static void aggregate(struct sim *s, struct agg *a)
{
    memset(a, 0, sizeof *a);
    for (size_t i = 0; i < s->n; i++) {
        struct lade_charger_status st;
        lade_charger_status(s->ch[i].c, &st);
        switch (st.link) {
        case LADE_LINK_ONLINE:
            a->online++;
            break;
        case LADE_LINK_CONNECTING:
        case LADE_LINK_MQTT:
            a->connecting++;
            break;
        case LADE_LINK_WAITING:
            a->waiting++;
            break;
        default:
            a->stopped++;
            break;
        }
        a->connects += st.connects;
        a->failures += st.failures;
        a->telemetry += st.telemetry_sent;
        a->methods += st.methods_answered;
        a->bytes_in += st.bytes_in;
        a->bytes_out += st.bytes_out;
    }
}

static void latency_json(struct sim *s, char *buf, size_t cap);

static void on_stats(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    struct sim *s = ud;
    struct agg a;
    aggregate(s, &a);
    uint64_t now = lade_mono_ms();
    double dt = (double)(now - s->last_stats_ms) / 1000.0;
    double cps = dt > 0 ? (double)(a.connects - s->last_stats_connects) / dt : 0;
    s->last_stats_ms = now;
    s->last_stats_connects = a.connects;
    char lat[200];
    latency_json(s, lat, sizeof lat);
    emit(s,
         "{\"type\":\"stats\",\"t\":%.3f,\"scenario\":\"%s\",\"chargers\":%zu,\"connected\":%zu,"
         "\"online\":%zu,"
         "\"connecting\":%zu,\"waiting\":%zu,\"connects\":%" PRIu64
         ",\"connects_per_s\":%.1f,\"failures\":%" PRIu64 ",\"telemetry_sent\":%" PRIu64
         ",\"methods_answered\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64
         ",\"partitioned\":%zu,\"cpu_s\":%.2f,\"rss_kb\":%ld%s}",
         now_s(s->t0), scenario_names[s->sc], s->n, a.online, a.online, a.connecting, a.waiting,
         a.connects, cps, a.failures, a.telemetry, a.methods, a.bytes_in, a.bytes_out,
         s->part_active ? s->part_n : (size_t)0, cpu_s(), rss_kb(), lat);
    if (lade_timer_arm(loop, t, now + s->stats_ms) != LADE_OK)
        fprintf(stderr, "lade-sim: cannot arm the stats timer\n");
}

/* ---- partition: the partitioned chargers' source addresses are dropped on input ---- */

static void src_addr(size_t i, char *buf, size_t cap)
{
    unsigned a = (unsigned)i + 1; /* 127.1.0.1 ... 127.1.255.255 */
    snprintf(buf, cap, "127.1.%u.%u", (a >> 8) & 255u, a & 255u);
}

static int nft(const char *script)
{
    FILE *p = popen("nft -f -", "w");
    if (!p)
        return -1;
    fputs(script, p);
    int rc = pclose(p);
    return rc;
}

static void partition_heal(struct sim *s)
{
    if (!s->part_active)
        return;
    char cmd[160];
    snprintf(cmd, sizeof cmd, "delete table inet %s\n", s->nft_table);
    if (nft(cmd) != 0)
        fprintf(stderr, "lade-sim: could not delete nft table %s\n", s->nft_table);
    s->part_active = false;
    s->part_done = true;
    s->part_end = now_s(s->t0);
    size_t seen = 0;
    for (size_t i = 0; i < s->n; i++)
        if (s->ch[i].partitioned && s->ch[i].seen_down)
            seen++;
    emit(s,
         "{\"type\":\"event\",\"event\":\"heal\",\"t\":%.3f,\"partitioned\":%zu,"
         "\"went_offline\":%zu}",
         s->part_end, s->part_n, seen);
}

static void partition_begin(struct sim *s)
{
    if (s->part_active || s->part_done)
        return;
    double want = s->part_frac * (double)s->n;
    s->part_n = (size_t)want;
    if ((double)s->part_n < want)
        s->part_n++;
    if (s->part_n == 0 || !s->src_addrs)
        return;
    char lo[32], hi[32], script[1024];
    src_addr(0, lo, sizeof lo);
    src_addr(s->part_n - 1, hi, sizeof hi);
    /* Dropped silently on input, both directions: neither side gets an error, both see a
     * dead link (keep-alive timeouts), as with a cut cable behind a router. */
    snprintf(script, sizeof script,
             "table inet %s {\n"
             " chain in { type filter hook input priority -10; policy accept;\n"
             "  ip saddr %s-%s drop\n  ip daddr %s-%s drop\n }\n}\n",
             s->nft_table, lo, hi, lo, hi);
    if (nft(script) != 0) {
        fprintf(stderr, "lade-sim: nft failed: cannot make the partition (root/CAP_NET_ADMIN "
                        "and nftables are needed)\n");
        s->part_done = true;
        return;
    }
    s->part_active = true;
    s->part_start = now_s(s->t0);
    for (size_t i = 0; i < s->n; i++) {
        s->ch[i].partitioned = i < s->part_n;
        s->ch[i].seen_down = false;
    }
    emit(s,
         "{\"type\":\"event\",\"event\":\"partition\",\"t\":%.3f,\"partitioned\":%zu,"
         "\"addresses\":\"%s-%s\",\"for_s\":%.1f}",
         s->part_start, s->part_n, lo, hi, s->part_s);
}

static void on_part_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)t;
    struct sim *s = ud;
    if (s->part_active) {
        partition_heal(s);
        return;
    }
    partition_begin(s);
    if (s->part_active && lade_timer_arm_in(loop, &s->part_timer, (uint64_t)(s->part_s * 1000)))
        partition_heal(s);
}

/* ---- the 1 s tick: per-second counts, outages, partition start ---- */

static void record_latency(struct sim *s, uint64_t ms)
{
    if (s->n_lat == s->cap_lat) {
        size_t cap = s->cap_lat ? s->cap_lat * 2 : 1024;
        uint32_t *p = realloc(s->lat, cap * sizeof *p);
        if (!p)
            return; /* (a statistic less; the run goes on) */
        s->lat = p;
        s->cap_lat = cap;
    }
    s->lat[s->n_lat++] = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* ,"cars":…,"cars_offered":…,"offer_ms":{"n":…,"p50":…,…} for the stats lines: plug-in →
 * offer over every car so far (nearest-rank percentiles). */
static void latency_json(struct sim *s, char *buf, size_t cap)
{
    int l = snprintf(buf, cap, ",\"cars\":%zu,\"cars_offered\":%zu", s->cars, s->cars_offered);
    if (l < 0 || (size_t)l >= cap || !s->n_lat)
        return;
    uint32_t *v = malloc(s->n_lat * sizeof *v);
    if (!v)
        return;
    memcpy(v, s->lat, s->n_lat * sizeof *v);
    qsort(v, s->n_lat, sizeof *v, cmp_u32);
    size_t n = s->n_lat, fast = 0;
    while (fast < n && v[fast] <= 100)
        fast++;
#define PCT(p) v[(size_t)((double)(p) / 100.0 * (double)(n - 1) + 0.5)]
    snprintf(buf + l, cap - (size_t)l,
             ",\"offer_ms\":{\"n\":%zu,\"le100\":%zu,\"p50\":%" PRIu32 ",\"p90\":%" PRIu32
             ",\"p99\":%" PRIu32 ",\"max\":%" PRIu32 "}",
             n, fast, PCT(50), PCT(90), PCT(99), v[n - 1]);
#undef PCT
    free(v);
}

static void on_tick(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    struct sim *s = ud;
    size_t online = 0, down_now = 0, cars = 0, offered = 0;
    uint64_t connects = 0;
    for (size_t i = 0; i < s->n; i++) {
        struct lade_charger_status st;
        lade_charger_status(s->ch[i].c, &st);
        connects += st.connects;
        if (st.link == LADE_LINK_ONLINE)
            online++;
        else if (s->ch[i].last == LADE_LINK_ONLINE || s->in_outage)
            s->ch[i].seen_down = true;
        if (st.link != LADE_LINK_ONLINE && s->all_up_once)
            down_now++;
        s->ch[i].last = st.link;
        if (st.car_since_ms)
            cars++;
        if (st.car_since_ms && st.offer_since_ms) {
            offered++;
            if (s->ch[i].offer_car != st.car_since_ms) {
                s->ch[i].offer_car = st.car_since_ms;
                record_latency(s, st.offer_since_ms - st.car_since_ms);
            }
        }
    }
    s->cars = cars;
    s->cars_offered = offered;
    uint64_t cps = connects - s->last_tick_connects;
    s->last_tick_connects = connects;
    double ts = now_s(s->t0);
    if (!s->all_up_once && online == s->n) {
        s->all_up_once = true;
        s->all_up_at = ts;
        emit(s, "{\"type\":\"event\",\"event\":\"all_online\",\"t\":%.3f,\"chargers\":%zu}", ts,
             s->n);
        if (s->sc == SC_PARTITION && s->part_at < 0)
            on_part_timer(loop, &s->part_timer, s);
    } else if (s->all_up_once && !s->in_outage && online < s->n) {
        s->in_outage = true;
        s->outage_start = ts;
        s->outage_down_max = 0;
        s->outage_min_online = online;
        s->outage_peak_cps = 0;
        emit(s, "{\"type\":\"event\",\"event\":\"outage\",\"t\":%.3f,\"connected\":%zu}", ts,
             online);
    }
    if (s->in_outage) {
        if (down_now > s->outage_down_max)
            s->outage_down_max = down_now;
        if (online < s->outage_min_online)
            s->outage_min_online = online;
        if (cps > s->outage_peak_cps)
            s->outage_peak_cps = cps;
    }
    if (s->per_second)
        emit(s, "{\"type\":\"second\",\"t\":%.3f,\"connected\":%zu,\"connects_per_s\":%" PRIu64 "}",
             ts, online, cps);
    if (s->in_outage && online == s->n && !s->part_active) {
        s->in_outage = false;
        s->outages++;
        size_t went = 0;
        for (size_t i = 0; i < s->n; i++)
            if (s->ch[i].seen_down) {
                went++;
                s->ch[i].seen_down = false;
            }
        emit(s,
             "{\"type\":\"summary\",\"event\":\"recovered\",\"scenario\":\"%s\",\"t\":%.3f,"
             "\"chargers\":%zu,\"outage_start\":%.3f,\"recovery_s\":%.3f,\"went_offline\":%zu,"
             "\"min_connected\":%zu,\"peak_connects_per_s\":%" PRIu64 "}",
             scenario_names[s->sc], ts, s->n, s->outage_start, ts - s->outage_start, went,
             s->outage_min_online, s->outage_peak_cps);
    }
    if (lade_timer_arm_in(loop, t, 1000) != LADE_OK)
        fprintf(stderr, "lade-sim: cannot arm the tick timer\n");
}

static void on_end(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)t;
    (void)ud;
    lade_loop_stop(loop);
}

static void on_signal(struct lade_loop *loop, int signo, void *ud)
{
    (void)signo;
    (void)ud;
    lade_loop_stop(loop);
}

/* ---- fleet file ---- */

static lade_err load_fleet(const char *dir, struct lade_settings *base, struct dev **devs_out,
                           size_t *n_out)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/" FLEET_FILE, dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "lade-sim: %s: %s\n", path, strerror(errno));
        return LADE_ERR_NOT_FOUND;
    }
    size_t cap = 1024, n = 0, text_len = 0, text_cap = 4096;
    struct dev *devs = malloc(cap * sizeof *devs);
    char *text = malloc(text_cap);
    char line[1024];
    unsigned lineno = 0;
    lade_err err = LADE_OK;
    while (devs && text && fgets(line, sizeof line, f)) {
        lineno++;
        char id[LADE_IOTHUB_DEVICE_ID_MAX + 1], b64[128];
        if (strncmp(line, "device", 6) == 0 && sscanf(line, "device = %128s %127s", id, b64) == 2) {
            if (n == cap) {
                struct dev *nd = realloc(devs, cap * 2 * sizeof *devs);
                if (!nd) {
                    err = LADE_ERR_NOMEM;
                    break;
                }
                devs = nd;
                cap *= 2;
            }
            struct dev *d = &devs[n];
            snprintf(d->id, sizeof d->id, "%s", id);
            if (!lade_iothub_device_id_valid(id) ||
                lade_base64_decode(b64, strlen(b64), d->key, sizeof d->key, &d->key_len) !=
                    LADE_OK ||
                d->key_len == 0) {
                fprintf(stderr, "lade-sim: %s:%u: bad device line\n", path, lineno);
                err = LADE_ERR_CONFIG;
                break;
            }
            memset(b64, 0, sizeof b64);
            n++;
            continue;
        }
        size_t l = strlen(line);
        if (text_len + l + 1 > text_cap) {
            char *nt = realloc(text, text_cap * 2 + l);
            if (!nt) {
                err = LADE_ERR_NOMEM;
                break;
            }
            text = nt;
            text_cap = text_cap * 2 + l;
        }
        memcpy(text + text_len, line, l);
        text_len += l;
        text[text_len] = 0;
    }
    fclose(f);
    memset(line, 0, sizeof line); /* may hold a key */
    if (!devs || !text)
        err = LADE_ERR_NOMEM;
    if (err == LADE_OK) {
        lade_settings_defaults(base);
        err = lade_settings_parse(base, path, text_len ? text : "", LADE_SETTINGS_FACTORY, NULL,
                                  NULL);
        if (err)
            fprintf(stderr, "lade-sim: %s: bad settings (%s)\n", path, lade_strerror(err));
    }
    free(text);
    if (err == LADE_OK && n == 0) {
        fprintf(stderr, "lade-sim: %s holds no devices\n", path);
        err = LADE_ERR_CONFIG;
    }
    if (err) {
        free(devs);
        return err;
    }
    *devs_out = devs;
    *n_out = n;
    return LADE_OK;
}

static bool is_loopback(const struct lade_sockaddr *a)
{
    if (a->ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&a->ss;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return false;
}

static int mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return mkdir(tmp, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fputs(text, f) >= 0;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* RLIMIT_NOFILE: each charger holds its TLS socket and its outbox (SQLite database, WAL and
 * shared-memory files) — about 4 descriptors. */
#define FDS_PER_CHARGER 4
static int raise_nofile(size_t n, int per_charger, bool quiet)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    rlim_t want = (rlim_t)n * (rlim_t)per_charger + 256;
    if (rl.rlim_max < want) {
        struct rlimit up = {want, want}; /* works with CAP_SYS_RESOURCE */
        if (setrlimit(RLIMIT_NOFILE, &up) == 0)
            rl = up;
    }
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur < want) {
        if (quiet)
            return 1;
        fprintf(stderr,
                "lade-sim: RLIMIT_NOFILE is %llu, too low for %zu chargers (about %llu "
                "needed: %d per charger); raise it (ulimit -n / prlimit), run fewer%s\n",
                (unsigned long long)rl.rlim_cur, n, (unsigned long long)want, per_charger,
                per_charger > 1 ? " or use --outbox memory" : "");
        return 1;
    }
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    const char *fleet = NULL, *stats_path = NULL, *state_root = NULL, *level = "warn";
    long count = 0;
    double duration = 0, start_rate = 100, stats_interval = 10, plugged = 0, peak_window = 300,
           peak_fraction = 0.9, part_frac = 0.1, part_at = -1, part_s = 60;
    long keepalive = -1, telemetry = -1, bmin = -1, bmax = -1, ttl = -1, scale = 1;
    long port = 0;
    int outbox_mode = 0; /* 0 auto, 1 files, 2 memory */
    bool allow_remote = false, src_addrs = true;
    enum scenario sc = SC_STEADY;
    enum {
        O_STATE = 256,
        O_KA,
        O_TEL,
        O_BMIN,
        O_BMAX,
        O_TTL,
        O_PLUG,
        O_PWIN,
        O_PFRAC,
        O_SCALE,
        O_PART,
        O_PAT,
        O_PS,
        O_NOSRC,
        O_REMOTE,
        O_LOG,
        O_PORT,
        O_OUTBOX
    };
    static const struct option lo[] = {
        {"fleet", required_argument, 0, 'f'},
        {"count", required_argument, 0, 'n'},
        {"scenario", required_argument, 0, 's'},
        {"duration", required_argument, 0, 'd'},
        {"start-rate", required_argument, 0, 'r'},
        {"stats-interval", required_argument, 0, 'i'},
        {"stats", required_argument, 0, 'o'},
        {"state-root", required_argument, 0, O_STATE},
        {"keepalive", required_argument, 0, O_KA},
        {"telemetry-interval", required_argument, 0, O_TEL},
        {"backoff-min-ms", required_argument, 0, O_BMIN},
        {"backoff-max-ms", required_argument, 0, O_BMAX},
        {"token-ttl", required_argument, 0, O_TTL},
        {"plugged", required_argument, 0, O_PLUG},
        {"peak-window", required_argument, 0, O_PWIN},
        {"peak-fraction", required_argument, 0, O_PFRAC},
        {"sim-time-scale", required_argument, 0, O_SCALE},
        {"partition", required_argument, 0, O_PART},
        {"partition-at", required_argument, 0, O_PAT},
        {"partition-s", required_argument, 0, O_PS},
        {"no-source-addrs", no_argument, 0, O_NOSRC},
        {"allow-remote", no_argument, 0, O_REMOTE},
        {"log-level", required_argument, 0, O_LOG},
        {"port", required_argument, 0, O_PORT},
        {"outbox", required_argument, 0, O_OUTBOX},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'f':
            fleet = optarg;
            break;
        case 'n':
            count = (long)parse_num(optarg, "--count", 1, MAX_COUNT);
            break;
        case 's': {
            size_t k;
            for (k = 0; k < 4 && strcmp(optarg, scenario_names[k]) != 0; k++)
                ;
            if (k == 4) {
                fprintf(stderr, "lade-sim: --scenario is steady, peak, storm or partition\n");
                return 2;
            }
            sc = (enum scenario)k;
            break;
        }
        case 'd':
            duration = parse_num(optarg, "--duration", 0, 1e7);
            break;
        case 'r':
            start_rate = parse_num(optarg, "--start-rate", 0.01, 1e6);
            break;
        case 'i':
            stats_interval = parse_num(optarg, "--stats-interval", 0.1, 86400);
            break;
        case 'o':
            stats_path = optarg;
            break;
        case O_STATE:
            state_root = optarg;
            break;
        case O_KA:
            keepalive = (long)parse_num(optarg, "--keepalive", 5, 1177);
            break;
        case O_TEL:
            telemetry = (long)parse_num(optarg, "--telemetry-interval", 1, 86400);
            break;
        case O_BMIN:
            bmin = (long)parse_num(optarg, "--backoff-min-ms", 100, 600000);
            break;
        case O_BMAX:
            bmax = (long)parse_num(optarg, "--backoff-max-ms", 100, 3600000);
            break;
        case O_TTL:
            ttl = (long)parse_num(optarg, "--token-ttl", 20, 30 * 86400);
            break;
        case O_PLUG:
            plugged = parse_num(optarg, "--plugged", 0, 1);
            break;
        case O_PWIN:
            peak_window = parse_num(optarg, "--peak-window", 0, 86400);
            break;
        case O_PFRAC:
            peak_fraction = parse_num(optarg, "--peak-fraction", 0, 1);
            break;
        case O_SCALE:
            scale = (long)parse_num(optarg, "--sim-time-scale", 1, 3600);
            break;
        case O_PART:
            part_frac = parse_num(optarg, "--partition", 0, 1);
            break;
        case O_PAT:
            part_at = parse_num(optarg, "--partition-at", 0, 1e7);
            break;
        case O_PS:
            part_s = parse_num(optarg, "--partition-s", 0.1, 1e7);
            break;
        case O_NOSRC:
            src_addrs = false;
            break;
        case O_REMOTE:
            allow_remote = true;
            break;
        case O_PORT:
            port = (long)parse_num(optarg, "--port", 1, 65535);
            break;
        case O_OUTBOX:
            if (strcmp(optarg, "files") != 0 && strcmp(optarg, "memory") != 0 &&
                strcmp(optarg, "auto") != 0) {
                fprintf(stderr, "lade-sim: --outbox is auto, files or memory\n");
                return 2;
            }
            outbox_mode = strcmp(optarg, "memory") == 0 ? 2 : strcmp(optarg, "files") == 0 ? 1 : 0;
            break;
        case O_LOG:
            level = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!fleet || optind != argc) {
        usage(stderr);
        return 2;
    }
    int lvl = lade_log_level_parse(level);
    if (lvl < 0) {
        usage(stderr);
        return 2;
    }
    lade_log_set_level((enum lade_log_level)lvl);
    if (sc == SC_PARTITION && !src_addrs) {
        fprintf(stderr, "lade-sim: the partition scenario needs the chargers' own source "
                        "addresses (drop --no-source-addrs)\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Memory per charger (docs/lade-sim.md): by default SQLite gives every connection an
     * initial page-cache block of 20 pages (~87 kB) and a lookaside allocator (~120 kB) —
     * about 2 GB for 10 000 outboxes that each do a few small statements a minute. Without
     * them pages are allocated as they are used. Process-wide, before SQLite initialises; a
     * real charger has one outbox, so lade-charger keeps SQLite's defaults.
     * LADE_SIM_SQLITE_DEFAULTS=1 keeps them here too (to measure the difference). */
    if (getenv("LADE_SIM_SQLITE_DEFAULTS") == NULL &&
        (sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0) != SQLITE_OK ||
         sqlite3_config(SQLITE_CONFIG_LOOKASIDE, 0, 0) != SQLITE_OK))
        fprintf(stderr, "lade-sim: could not tune SQLite's memory\n");
    /* A charger context is ~140 kB, mostly MQTT buffers sized for the largest message (64 kB
     * receive, 16 kB send and store) that stay untouched in steady state. With a fixed mmap
     * threshold each context is its own zero-filled mapping and only the pages used become
     * resident; glibc's dynamic threshold would move them to the heap, where calloc
     * touches every byte. */
    if (mallopt(M_MMAP_THRESHOLD, 64 * 1024) != 1)
        fprintf(stderr, "lade-sim: mallopt failed\n");

    static struct sim S;
    struct sim *s = &S;
    s->sc = sc;
    s->out = stdout;
    if (stats_path && !(s->out = fopen(stats_path, "a"))) {
        fprintf(stderr, "lade-sim: --stats %s: %s\n", stats_path, strerror(errno));
        return 1;
    }
    struct lade_settings base;
    struct dev *devs = NULL;
    size_t ndev = 0;
    if (load_fleet(fleet, &base, &devs, &ndev) != LADE_OK)
        return 1;
    if (port)
        base.hub_port = (uint16_t)port;
    size_t n = count ? (size_t)count : ndev;
    if (n > ndev) {
        fprintf(stderr, "lade-sim: --count %zu but the fleet has %zu chargers\n", n, ndev);
        return 2;
    }
    if (n > 65535 && src_addrs) {
        fprintf(stderr, "lade-sim: at most 65535 chargers with source addresses\n");
        return 2;
    }
    /* Never any traffic off this machine unless asked: the hub must resolve to loopback. */
    {
        struct lade_sockaddr addrs[LADE_TLS_MAX_ADDRS];
        size_t na = 0;
        lade_err e =
            lade_resolve_static(base.hub_host, base.hosts_file, addrs, LADE_TLS_MAX_ADDRS, &na);
        if (e != LADE_OK && e != LADE_ERR_NOSPACE) {
            fprintf(stderr, "lade-sim: the hub %s is not in %s: %s\n", base.hub_host,
                    base.hosts_file, lade_strerror(e));
            return 1;
        }
        for (size_t i = 0; i < na && !allow_remote; i++)
            if (!is_loopback(&addrs[i])) {
                fprintf(stderr,
                        "lade-sim: the hub %s resolves to a non-loopback address; refusing "
                        "(--allow-remote to run against another machine)\n",
                        base.hub_host);
                return 1;
            }
    }
    /* --outbox auto (default): files when the descriptor limit allows, else memory. */
    bool outbox_mem = outbox_mode == 2;
    if (outbox_mode == 0 && raise_nofile(n, FDS_PER_CHARGER, true) != 0) {
        outbox_mem = true;
        fprintf(stderr,
                "lade-sim: RLIMIT_NOFILE too low for %zu file outboxes (%d descriptors "
                "each): outboxes in memory (--outbox files to refuse instead)\n",
                n, FDS_PER_CHARGER);
    }
    if (raise_nofile(n, outbox_mem ? 1 : FDS_PER_CHARGER, false) != 0)
        return 1;
    /* --outbox memory: SQLite's in-memory VFS becomes the default, so each outbox lives in
     * memory (no file descriptors: a file outbox holds three — database, WAL, WAL index).
     * Sessions then do not survive a restart of the sim; everything else is unchanged. */
    if (outbox_mem) {
        sqlite3_vfs *mem = sqlite3_vfs_find("memdb");
        if (!mem || sqlite3_vfs_register(mem, 1) != SQLITE_OK) {
            fprintf(stderr, "lade-sim: this SQLite has no in-memory VFS (memdb)\n");
            return 1;
        }
    }

    char root[PATH_MAX];
    snprintf(root, sizeof root, "%s", state_root ? state_root : fleet);
    if (!state_root)
        snprintf(root + strlen(root), sizeof root - strlen(root), "/state");
    if (mkdirs(root) != 0) {
        fprintf(stderr, "lade-sim: mkdir %s: %s\n", root, strerror(errno));
        return 1;
    }

    s->t0 = lade_mono_ms();
    s->n = n;
    s->stats_ms = (uint32_t)(stats_interval * 1000);
    s->part_frac = part_frac;
    s->part_at = sc == SC_PARTITION ? part_at : -1;
    s->part_s = part_s;
    s->src_addrs = src_addrs;
    s->per_second = sc == SC_STORM;
    snprintf(s->nft_table, sizeof s->nft_table, "lade_sim_%ld", (long)getpid());
    lade_err err = lade_loop_new(&s->loop);
    if (err == LADE_OK)
        err = lade_tls_ctx_new(&s->tls, base.ca_file);
    if (err == LADE_OK && (lade_loop_on_signal(s->loop, SIGINT, on_signal, s) != LADE_OK ||
                           lade_loop_on_signal(s->loop, SIGTERM, on_signal, s) != LADE_OK))
        err = LADE_ERR_IO;
    if (err) {
        fprintf(stderr, "lade-sim: setting up: %s\n", lade_strerror(err));
        return 1;
    }
    s->ch = calloc(n, sizeof *s->ch);
    if (!s->ch) {
        fprintf(stderr, "lade-sim: out of memory\n");
        return 1;
    }
    long rss0 = rss_kb();
    long fds0 = open_fds();
    int rc = 1;
    size_t made = 0, n_plugged = 0;
    uint32_t seed = lade_random_u32();
    for (size_t i = 0; i < n; i++) {
        struct lade_settings st = base;
        snprintf(st.device_id, sizeof st.device_id, "%s", devs[i].id);
        memcpy(st.device_key, devs[i].key, devs[i].key_len);
        st.device_key_len = devs[i].key_len;
        memset(devs[i].key, 0, sizeof devs[i].key);
        snprintf(st.evse, sizeof st.evse, "sim");
        snprintf(st.time_source, sizeof st.time_source, "host");
        if (keepalive > 0)
            st.keepalive_s = (uint32_t)keepalive;
        if (telemetry > 0)
            st.telemetry_interval_s = (uint32_t)telemetry;
        if (bmin > 0)
            st.backoff_min_ms = (uint32_t)bmin;
        if (bmax > 0)
            st.backoff_max_ms = (uint32_t)bmax;
        if (st.backoff_max_ms < st.backoff_min_ms)
            st.backoff_max_ms = st.backoff_min_ms;
        if (ttl > 0)
            st.token_ttl_s = (uint32_t)ttl;
        st.sim_time_scale = (uint32_t)scale;
        if (src_addrs)
            src_addr(i, st.source_address, sizeof st.source_address);
        int l = snprintf(st.state_dir, sizeof st.state_dir, "%s/%s", root, devs[i].id);
        if (l < 0 || (size_t)l >= sizeof st.state_dir || mkdirs(st.state_dir) != 0) {
            fprintf(stderr, "lade-sim: state directory %s: %s\n", st.state_dir,
                    l >= 0 && (size_t)l < sizeof st.state_dir ? strerror(errno) : "too long");
            goto out;
        }
        /* The car: the simulator's own state file (evse = sim restores it at start, as after
         * an agent restart), so each charger gets its car without any extra API. */
        char simjson[200], path[PATH_MAX];
        seed = seed * 1664525u + 1013904223u;
        double u = (double)(seed >> 8) / (double)(1u << 24);
        snprintf(st.sim_car, sizeof st.sim_car, "3p11kw");
        st.sim_plug_s = 0;
        st.sim_unplug_s = 0;
        if (sc == SC_PEAK && u < peak_fraction) {
            /* plugs in at a random moment of the window; stays plugged */
            seed = seed * 1664525u + 1013904223u;
            double at = peak_window * (double)(seed >> 8) / (double)(1u << 24);
            snprintf(simjson, sizeof simjson, "{\"plugged\":false,\"phaseLeftMs\":%" PRIu64 "}\n",
                     (uint64_t)(at * 1000.0 * (double)scale) + 1);
            n_plugged++;
        } else if (sc != SC_PEAK && u < plugged) {
            snprintf(simjson, sizeof simjson,
                     "{\"plugged\":true,\"profile\":\"3p11kw\",\"batteryNj\":0}\n");
            n_plugged++;
        } else {
            snprintf(simjson, sizeof simjson, "{\"plugged\":false}\n");
        }
        snprintf(path, sizeof path, "%s/sim.json", st.state_dir);
        if (write_text(path, simjson) != 0) {
            fprintf(stderr, "lade-sim: %s: %s\n", path, strerror(errno));
            goto out;
        }
        /* Report phases spread over the interval, as in a fleet that came up over hours
         * (else all N periodic snapshots would come in the same minute, every interval). */
        seed = seed * 1664525u + 1013904223u;
        uint32_t phase = (uint32_t)((double)st.telemetry_interval_s * 1000.0 *
                                    ((double)(seed >> 8) / (double)(1u << 24)));
        struct lade_charger_opts o = {.settings = &st,
                                      .loop = s->loop,
                                      .tls = s->tls,
                                      .status_file = NULL,
                                      .snapshot_phase_ms = phase ? phase : 1};
        err = lade_charger_new(&s->ch[i].c, &o);
        memset(st.device_key, 0, sizeof st.device_key);
        if (err) {
            fprintf(stderr, "lade-sim: charger %s: %s\n", devs[i].id, lade_strerror(err));
            goto out;
        }
        made++;
        s->ch[i].last = LADE_LINK_STOPPED;
    }
    free(devs);
    devs = NULL;
    {
        long rss1 = rss_kb(), fds1 = open_fds();
        emit(s,
             "{\"type\":\"event\",\"event\":\"created\",\"t\":%.3f,\"chargers\":%zu,"
             "\"scenario\":\"%s\",\"cars\":%zu,\"rss_kb\":%ld,\"rss_per_charger_kb\":%.1f,"
             "\"fds\":%ld,\"fds_per_charger\":%.2f,\"outbox\":\"%s\",\"state_root\":\"%s\"}",
             now_s(s->t0), n, scenario_names[sc], n_plugged, rss1,
             (double)(rss1 - rss0) / (double)n, fds1, (double)(fds1 - fds0) / (double)n,
             outbox_mem ? "memory" : "files", root);
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t delay = (uint32_t)((double)i * 1000.0 / start_rate);
        if ((err = lade_charger_start(s->ch[i].c, delay)) != LADE_OK) {
            fprintf(stderr, "lade-sim: start %zu: %s\n", i, lade_strerror(err));
            goto out;
        }
    }
    s->last_stats_ms = lade_mono_ms();
    lade_timer_init(&s->stats_timer, on_stats, s);
    lade_timer_init(&s->tick_timer, on_tick, s);
    lade_timer_init(&s->end_timer, on_end, s);
    lade_timer_init(&s->part_timer, on_part_timer, s);
    if (lade_timer_arm_in(s->loop, &s->stats_timer, s->stats_ms) != LADE_OK ||
        lade_timer_arm_in(s->loop, &s->tick_timer, 1000) != LADE_OK ||
        (duration > 0 &&
         lade_timer_arm_in(s->loop, &s->end_timer, (uint64_t)(duration * 1000)) != LADE_OK) ||
        (sc == SC_PARTITION && part_at >= 0 &&
         lade_timer_arm_in(s->loop, &s->part_timer, (uint64_t)(part_at * 1000)) != LADE_OK)) {
        fprintf(stderr, "lade-sim: cannot arm timers\n");
        goto out;
    }
    if ((err = lade_loop_run(s->loop)) != LADE_OK) {
        fprintf(stderr, "lade-sim: event loop: %s\n", lade_strerror(err));
        goto out;
    }
    rc = 0;
out:
    partition_heal(s);
    if (made) {
        struct agg a;
        aggregate(s, &a);
        char lat[200];
        latency_json(s, lat, sizeof lat);
        emit(s,
             "{\"type\":\"summary\",\"event\":\"end\",\"scenario\":\"%s\",\"t\":%.3f,"
             "\"chargers\":%zu,\"connected\":%zu,\"connects\":%" PRIu64 ",\"failures\":%" PRIu64
             ",\"all_online_at\":%.3f,\"outages\":%u,\"in_outage\":%s,\"telemetry_sent\":%" PRIu64
             ",\"methods_answered\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64
             ",\"cpu_s\":%.2f,\"rss_kb\":%ld%s}",
             scenario_names[sc], now_s(s->t0), made, a.online, a.connects, a.failures,
             s->all_up_once ? s->all_up_at : -1.0, s->outages, s->in_outage ? "true" : "false",
             a.telemetry, a.methods, a.bytes_in, a.bytes_out, cpu_s(), rss_kb(), lat);
    }
    for (size_t i = 0; i < s->n; i++)
        lade_charger_free(s->ch[i].c);
    free(s->ch);
    free(s->lat);
    free(devs);
    lade_tls_ctx_free(s->tls);
    lade_loop_free(s->loop);
    if (s->out != stdout)
        fclose(s->out);
    return rc;
}

/* lade-sim ids --fleet DIR: the fleet's device ids, one a line (no keys). */
static int cmd_ids(int argc, char **argv)
{
    const char *fleet = NULL;
    static const struct option lo[] = {{"fleet", required_argument, 0, 'f'}, {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (ch != 'f') {
            usage(stderr);
            return 2;
        }
        fleet = optarg;
    }
    if (!fleet || optind != argc) {
        usage(stderr);
        return 2;
    }
    struct lade_settings base;
    struct dev *devs = NULL;
    size_t n = 0;
    if (load_fleet(fleet, &base, &devs, &n) != LADE_OK)
        return 1;
    memset(&base, 0, sizeof base);
    for (size_t i = 0; i < n; i++) {
        printf("%s\n", devs[i].id);
        memset(devs[i].key, 0, sizeof devs[i].key);
    }
    free(devs);
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "provision") == 0)
        return cmd_provision(argc - 1, argv + 1);
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(argv[1], "ids") == 0)
        return cmd_ids(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
