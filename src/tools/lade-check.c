/* lade-check — is this site's network ready for lade chargers? (SPEC R18; docs/lade-check.md)
 *
 * Run on a laptop on the chargers' network (root for the DHCP check): DHCP, DNS, NTP, the
 * outbound ports with full TLS verification, WiFi from scans, and a capacity / data plan.
 * Every finding is pass / note / warn / fail with the reason and the remedy.
 *
 * Exit status: 0 every check passed (notes allowed), 1 warnings, 2 failures, 3 the checks could
 * not run (bad option, unreadable file).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lade/dhcpprobe.h"
#include "lade/dnsres.h"
#include "lade/log.h"
#include "lade/loop.h"
#include "lade/settings.h"
#include "lade/siteprobe.h"
#include "lade/sitecheck.h"
#include "lade/wifiscan.h"

#define EXIT_USAGE 3
#define MAX_SCANS  8
#define SCAN_MAX   LADE_WIFI_INPUT_MAX /* the parser decides what it keeps */

struct opts {
    struct lade_settings s; /* hosts, CA, fallbacks: factory defaults or --factory */
    const char *ifname;
    bool no_dhcp, offline, json, verbose;
    int colour; /* -1 auto, 0 never, 1 always */
    unsigned chargers, new_clients;
    bool probe_pool;
    const char *bearer;
    double sessions_per_day;
    const char *dns;
    const char *ssid;
    const char *scan_files[MAX_SCANS];
    size_t n_scan_files;
    const char *wifi_if;
    uint32_t timeout_ms;
};

static void usage(FILE *f)
{
    fputs(
        "usage: lade-check [options]\n"
        "Checks that this network is ready for lade chargers; run it where the chargers will be.\n"
        "\n"
        "what to check against (default: lade's factory settings, or a charger's file):\n"
        "  --factory FILE          a charger's factory settings (hub, CA, NTP, firmware hosts,\n"
        "                          fallback DNS); its device key is never read out or printed\n"
        "  --hub HOST[:PORT]       the hub (default port 8883)\n"
        "  --ca FILE               CA bundle chargers trust for the hub and firmware hosts\n"
        "  --firmware-hosts LIST   comma-separated; --firmware-port PORT (default 443)\n"
        "  --ntp HOST              the NTP host; --ntp-port PORT (default 123)\n"
        "  --fallback-dns LIST     the chargers' fallback DNS servers (default 8.8.8.8,1.1.1.1)\n"
        "\n"
        "the site:\n"
        "  -i, --interface IF      the interface on the chargers' network (DHCP check; the\n"
        "                          connections use it)\n"
        "  --dns LIST              the site's DNS servers (default: DHCP's, else resolv.conf)\n"
        "  --no-dhcp               skip the DHCP check\n"
        "  --chargers N            chargers planned here: addresses and data plan\n"
        "  --probe-pool            ask the DHCP server for N offers (N <= 256; never takes a\n"
        "                          lease, but a server that holds what it offers is briefly\n"
        "                          shorter of addresses)\n"
        "  --bearer wifi|plc|lte|ethernet   the bearer of the plan (default: all)\n"
        "  --sessions-per-day S    charge sessions per charger a day (default 2)\n"
        "  --ssid NAME             the chargers' WiFi network\n"
        "  --wifi-scan FILE        a scan (`iw dev IF scan` or `wpa_cli scan_results` output);\n"
        "                          give two taken minutes apart to see a changing channel\n"
        "  --wifi IF               scan now with `iw dev IF scan` (root)\n"
        "  --offline               no network checks (WiFi scans and plan only)\n"
        "\n"
        "output:\n"
        "  --json                  one JSON object for tools\n"
        "  --color auto|always|never\n"
        "  --timeout MS            per step (default 5000)\n"
        "  -v, --verbose           log the probes to stderr\n"
        "\n"
        "exit status: 0 all passed, 1 warnings, 2 failures, 3 could not run\n",
        f);
}

__attribute__((format(printf, 1, 2))) static int bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("lade-check: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_USAGE;
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || !end || *end || end == s || s[0] == '-' || v > max)
        return false;
    *out = v;
    return true;
}

static void settings_msg(void *ud, const char *msg)
{
    (void)ud;
    fprintf(stderr, "lade-check: %s\n", msg);
}

/* Splits "host[:port]". */
static int set_hub(struct opts *o, const char *arg)
{
    const char *colon = strrchr(arg, ':');
    size_t hl = colon ? (size_t)(colon - arg) : strlen(arg);
    if (hl == 0 || hl >= sizeof o->s.hub_host)
        return bad("--hub: '%s' is not HOST[:PORT]", arg);
    memcpy(o->s.hub_host, arg, hl);
    o->s.hub_host[hl] = '\0';
    if (colon) {
        unsigned long port;
        if (!parse_uint(colon + 1, 65535, &port) || port == 0)
            return bad("--hub: bad port in '%s'", arg);
        o->s.hub_port = (uint16_t)port;
    }
    return 0;
}

static int copy_opt(char *dst, size_t cap, const char *arg, const char *flag)
{
    if (strlen(arg) >= cap)
        return bad("%s: too long", flag);
    memcpy(dst, arg, strlen(arg) + 1);
    return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    enum {
        O_FACTORY = 256,
        O_HUB,
        O_CA,
        O_FWHOSTS,
        O_FWPORT,
        O_NTP,
        O_NTPPORT,
        O_FALLBACK,
        O_DNS,
        O_NODHCP,
        O_CHARGERS,
        O_POOL,
        O_BEARER,
        O_SPD,
        O_SSID,
        O_SCAN,
        O_WIFI,
        O_OFFLINE,
        O_JSON,
        O_COLOR,
        O_TIMEOUT,
    };
    static const struct option lo[] = {
        {"factory", required_argument, 0, O_FACTORY},
        {"hub", required_argument, 0, O_HUB},
        {"ca", required_argument, 0, O_CA},
        {"firmware-hosts", required_argument, 0, O_FWHOSTS},
        {"firmware-port", required_argument, 0, O_FWPORT},
        {"ntp", required_argument, 0, O_NTP},
        {"ntp-port", required_argument, 0, O_NTPPORT},
        {"fallback-dns", required_argument, 0, O_FALLBACK},
        {"interface", required_argument, 0, 'i'},
        {"dns", required_argument, 0, O_DNS},
        {"no-dhcp", no_argument, 0, O_NODHCP},
        {"chargers", required_argument, 0, O_CHARGERS},
        {"probe-pool", no_argument, 0, O_POOL},
        {"bearer", required_argument, 0, O_BEARER},
        {"sessions-per-day", required_argument, 0, O_SPD},
        {"ssid", required_argument, 0, O_SSID},
        {"wifi-scan", required_argument, 0, O_SCAN},
        {"wifi", required_argument, 0, O_WIFI},
        {"offline", no_argument, 0, O_OFFLINE},
        {"json", no_argument, 0, O_JSON},
        {"color", required_argument, 0, O_COLOR},
        {"colour", required_argument, 0, O_COLOR},
        {"timeout", required_argument, 0, O_TIMEOUT},
        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    lade_settings_defaults(&o->s);
    o->colour = -1;
    o->new_clients = 1;
    o->sessions_per_day = -1;
    o->timeout_ms = 5000;
    int ch, rc = 0;
    unsigned long v = 0;
    while (rc == 0 && (ch = getopt_long(argc, argv, "i:vh", lo, NULL)) != -1) {
        switch (ch) {
        case O_FACTORY: {
            lade_err e =
                lade_settings_load(&o->s, optarg, LADE_SETTINGS_FACTORY, settings_msg, NULL);
            if (e != LADE_OK)
                rc = bad("--factory: cannot use '%s'", optarg);
            break;
        }
        case O_HUB:
            rc = set_hub(o, optarg);
            break;
        case O_CA:
            rc = copy_opt(o->s.ca_file, sizeof o->s.ca_file, optarg, "--ca");
            break;
        case O_FWHOSTS:
            rc = copy_opt(o->s.firmware_hosts, sizeof o->s.firmware_hosts, optarg,
                          "--firmware-hosts");
            break;
        case O_FWPORT:
            if (!parse_uint(optarg, 65535, &v) || v == 0)
                rc = bad("--firmware-port: '%s' is not a port", optarg);
            o->s.firmware_port = (uint16_t)v;
            break;
        case O_NTP:
            rc = copy_opt(o->s.ntp_host, sizeof o->s.ntp_host, optarg, "--ntp");
            break;
        case O_NTPPORT:
            if (!parse_uint(optarg, 65535, &v) || v == 0)
                rc = bad("--ntp-port: '%s' is not a port", optarg);
            o->s.ntp_port = (uint16_t)v;
            break;
        case O_FALLBACK:
            rc = copy_opt(o->s.fallback_dns, sizeof o->s.fallback_dns, optarg, "--fallback-dns");
            break;
        case 'i':
            o->ifname = optarg;
            break;
        case O_DNS:
            o->dns = optarg;
            break;
        case O_NODHCP:
            o->no_dhcp = true;
            break;
        case O_CHARGERS:
            if (!parse_uint(optarg, 100000, &v) || v == 0)
                rc = bad("--chargers: '%s' is not a number from 1 to 100000", optarg);
            o->chargers = (unsigned)v;
            break;
        case O_POOL:
            o->probe_pool = true;
            break;
        case O_BEARER:
            if (strcmp(optarg, "wifi") && strcmp(optarg, "plc") && strcmp(optarg, "lte") &&
                strcmp(optarg, "ethernet"))
                rc = bad("--bearer: '%s' is not wifi, plc, lte or ethernet", optarg);
            o->bearer = optarg;
            break;
        case O_SPD: {
            char *end = NULL;
            double d = strtod(optarg, &end);
            if (!end || *end || end == optarg || !(d >= 0 && d <= 50))
                rc = bad("--sessions-per-day: '%s' is not a number from 0 to 50", optarg);
            o->sessions_per_day = d;
            break;
        }
        case O_SSID:
            o->ssid = optarg;
            break;
        case O_SCAN:
            if (o->n_scan_files == MAX_SCANS)
                rc = bad("--wifi-scan: at most %d scans", MAX_SCANS);
            else
                o->scan_files[o->n_scan_files++] = optarg;
            break;
        case O_WIFI:
            o->wifi_if = optarg;
            break;
        case O_OFFLINE:
            o->offline = true;
            break;
        case O_JSON:
            o->json = true;
            break;
        case O_COLOR:
            if (strcmp(optarg, "auto") == 0)
                o->colour = -1;
            else if (strcmp(optarg, "always") == 0)
                o->colour = 1;
            else if (strcmp(optarg, "never") == 0)
                o->colour = 0;
            else
                rc = bad("--color: '%s' is not auto, always or never", optarg);
            break;
        case O_TIMEOUT:
            if (!parse_uint(optarg, 120000, &v) || v < 100)
                rc = bad("--timeout: '%s' is not 100 to 120000 ms", optarg);
            o->timeout_ms = (uint32_t)v;
            break;
        case 'v':
            o->verbose = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            fputs("try 'lade-check --help'\n", stderr);
            return EXIT_USAGE;
        }
    }
    if (rc == 0 && optind < argc)
        rc = bad("unexpected argument '%s'", argv[optind]);
    if (rc == 0 && o->probe_pool && o->chargers > LADE_DHCPPROBE_MAX_CLIENTS)
        rc = bad("--probe-pool asks at most %u made-up chargers; --chargers is %u",
                 LADE_DHCPPROBE_MAX_CLIENTS, o->chargers);
    if (rc == 0 && o->probe_pool && !o->chargers)
        rc = bad("--probe-pool needs --chargers N");
    return rc;
}

/* ---------------------------------------------------------------- WiFi */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(SCAN_MAX + 1);
    errno = 0;
    size_t n = buf ? fread(buf, 1, SCAN_MAX + 1, f) : 0;
    int e = ferror(f) ? (errno ? errno : EIO) : !buf ? ENOMEM : n > SCAN_MAX ? EFBIG : 0;
    fclose(f);
    if (e) {
        free(buf);
        errno = e;
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* `iw dev IF scan` now; its output in a malloc'd buffer. */
static char *scan_now(const char *ifname, size_t *len)
{
    int pfd[2];
    if (pipe(pfd) != 0)
        return NULL;
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return NULL;
    }
    if (pid == 0) {
        dup2(pfd[1], 1);
        close(pfd[0]);
        close(pfd[1]);
        execlp("iw", "iw", "dev", ifname, "scan", (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    char *buf = malloc(SCAN_MAX + 1);
    size_t n = 0;
    ssize_t r = 0;
    char sink[4096];
    /* Read to the end (iw must not die on a closed pipe); keep what fits. */
    while ((r = read(pfd[0], buf && n < SCAN_MAX ? buf + n : sink,
                     buf && n < SCAN_MAX ? SCAN_MAX - n : sizeof sink)) > 0)
        if (buf && n < SCAN_MAX)
            n += (size_t)r;
    close(pfd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    if (!buf || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

struct scans {
    struct lade_wifi_scan s[MAX_SCANS + 1];
    size_t n;
};

/* Reads and parses every scan (files, then a live one) before anything else runs, so that a
 * wrong file name does not throw away a whole network check. */
static int load_scans(const struct opts *o, struct scans *sc)
{
    for (size_t i = 0; i <= o->n_scan_files; i++) {
        bool live = i == o->n_scan_files;
        if (live && !o->wifi_if)
            break;
        size_t len = 0;
        char *text = live ? scan_now(o->wifi_if, &len) : read_file(o->scan_files[i], &len);
        const char *what = live ? o->wifi_if : o->scan_files[i];
        if (!text) {
            fprintf(stderr, "lade-check: %s %s: %s\n", live ? "cannot scan with" : "cannot read",
                    what,
                    live ? "`iw dev IF scan` failed (root? the interface up?)" : strerror(errno));
            return EXIT_USAGE;
        }
        lade_err e = lade_wifi_scan_parse(text, len, &sc->s[sc->n]);
        free(text);
        if (e != LADE_OK) {
            fprintf(stderr, "lade-check: %s: not a WiFi scan: %s\n", what,
                    sc->s[sc->n].error[0] ? sc->s[sc->n].error : lade_strerror(e));
            lade_wifi_scan_free(&sc->s[sc->n]);
            return EXIT_USAGE;
        }
        sc->n++;
    }
    return 0;
}

/* ---------------------------------------------------------------- main */

struct run {
    bool done;
    struct lade_loop *loop;
};

static void on_done(void *ud)
{
    struct run *run = ud;
    run->done = true;
    lade_loop_stop(run->loop);
}

static int parse_list(const char *text, struct lade_sockaddr *out, size_t *n, const char *flag)
{
    lade_err e = lade_dnsres_parse_servers(text, out, LADE_SITEPROBE_MAX_DNS, n);
    if (e != LADE_OK)
        return bad("%s: not a list of at most 4 addresses", flag);
    return 0;
}

static int run_network(const struct opts *o, struct lade_check_report *r)
{
    struct lade_siteprobe_cfg cfg = {
        .ifname = o->ifname,
        .dhcp = o->ifname && !o->no_dhcp,
        .new_clients = o->probe_pool ? o->chargers : o->new_clients,
        .chargers = o->chargers,
        .hub_host = o->s.hub_host,
        .hub_port = o->s.hub_port,
        .ca_file = o->s.ca_file,
        .fw_hosts = o->s.firmware_hosts,
        .fw_port = o->s.firmware_port,
        .ntp_host = o->s.ntp_host,
        .ntp_port = o->s.ntp_port,
        .timeout_ms = o->timeout_ms,
    };
    if (o->dns && parse_list(o->dns, cfg.dns, &cfg.n_dns, "--dns"))
        return EXIT_USAGE;
    if (parse_list(o->s.fallback_dns, cfg.fallbacks, &cfg.n_fallbacks, "--fallback-dns"))
        return EXIT_USAGE;
    struct run run = {0};
    struct lade_siteprobe *p = NULL;
    lade_err e = lade_loop_new(&run.loop);
    if (e == LADE_OK)
        e = lade_siteprobe_start(run.loop, &cfg, r, on_done, &run, &p);
    if (e == LADE_ERR_CONFIG) {
        fprintf(stderr, "lade-check: the CA file '%s' cannot be read or holds no certificate\n",
                o->s.ca_file);
    } else if (e != LADE_OK) {
        fprintf(stderr, "lade-check: cannot start the checks: %s\n", lade_strerror(e));
    }
    while (e == LADE_OK && !run.done)
        e = lade_loop_run(run.loop);
    lade_siteprobe_free(p);
    lade_loop_free(run.loop);
    return e == LADE_OK ? 0 : EXIT_USAGE;
}

int main(int argc, char **argv)
{
    static struct opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    lade_log_set_level(o.verbose ? LADE_LOG_DEBUG : LADE_LOG_ERROR);
    static struct scans scans;
    rc = load_scans(&o, &scans);
    struct lade_check_report r;
    lade_check_report_init(&r);
    if (rc == 0 && !o.offline)
        rc = run_network(&o, &r);
    if (rc == 0 && scans.n > 0) {
        lade_err e = lade_wifi_check(scans.s, scans.n, o.ssid, &r);
        if (e != LADE_OK)
            rc = bad("the WiFi checks failed: %s", lade_strerror(e));
    }
    for (size_t i = 0; i < scans.n; i++)
        lade_wifi_scan_free(&scans.s[i]);
    if (rc == 0 && o.chargers) {
        struct lade_check_plan plan = {
            .chargers = o.chargers,
            .bearer = o.bearer,
            .sessions_per_day = o.sessions_per_day,
        };
        lade_check_plan(&r, &plan);
    }
    if (rc == 0 && r.n == 0)
        rc = bad("nothing to check: --offline needs --wifi-scan or --chargers");
    if (rc == 0) {
        lade_err e;
        if (o.json) {
            e = lade_check_render_json(&r, NULL, stdout);
        } else {
            bool tty = isatty(STDOUT_FILENO);
            bool colour = o.colour == 1 || (o.colour < 0 && tty && !getenv("NO_COLOR"));
            struct winsize ws;
            unsigned width = tty && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 60
                                 ? (ws.ws_col > 120 ? 120 : ws.ws_col)
                                 : 100;
            e = lade_check_render_text(&r, stdout, colour, width);
        }
        if (fflush(stdout) != 0 || e != LADE_OK)
            rc = EXIT_USAGE;
        else
            rc = lade_check_exit_status(&r);
    }
    lade_check_report_free(&r);
    return rc;
}
