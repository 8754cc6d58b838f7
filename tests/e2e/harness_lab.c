/* The site-network lab for e2e tests (see harness_lab.h; the work is done by tests/lab/lab.sh). */
#include "harness_lab.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define MAX_LABS      8
#define CMD_TIMEOUT   120000 /* lab.sh up/down: a few seconds normally */
#define RUN_TIMEOUT   60000
#define RUN_BASE_PATH "/run/lade-lab"

/* Labs of this process that are up, by name (the test's structs may be gone at exit). */
static char g_up[MAX_LABS][32];
static char g_script[600];
static pid_t g_owner;
static int g_made;
static bool g_hooks;
static const int g_sigs[] = {SIGINT, SIGTERM, SIGABRT};
static struct sigaction g_old[3];
static volatile pid_t g_child; /* the command run() is waiting for */

static void teardown_name(const char *name)
{
    char cmd[800];
    snprintf(cmd, sizeof cmd, "'%s' -n '%s' down >/dev/null 2>&1", g_script, name);
    if (system(cmd) != 0)
        fprintf(stderr, "harness_lab: '%s' did not tear down cleanly\n", name);
}

static void teardown_all(void)
{
    if (getpid() != g_owner) /* a forked child exiting */
        return;
    for (int i = 0; i < MAX_LABS; i++) {
        if (g_up[i][0]) {
            teardown_name(g_up[i]);
            g_up[i][0] = 0;
        }
    }
}

static void on_signal(int sig)
{
    /* a lab.sh command halfway through (starting a service, say) must not race the teardown */
    pid_t child = g_child;
    if (child > 0) {
        kill(-child, SIGKILL);
        waitpid(child, NULL, 0);
        g_child = 0;
    }
    teardown_all();
    /* then whatever was there before (harness.c's cleanup, which re-raises) */
    for (size_t i = 0; i < sizeof g_sigs / sizeof g_sigs[0]; i++) {
        if (g_sigs[i] == sig) {
            sigaction(sig, &g_old[i], NULL);
            raise(sig);
            return;
        }
    }
}

static void install_hooks(void)
{
    if (g_hooks)
        return;
    g_hooks = true;
    g_owner = getpid();
    /* harness.c registered its cleanup first (h_tmpdir), so this runs before it removes
     * anything and before it kills the tracked children. */
    atexit(teardown_all);
    for (size_t i = 0; i < sizeof g_sigs / sizeof g_sigs[0]; i++) {
        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(g_sigs[i], &sa, &g_old[i]);
    }
}

static void remember(const char *name, bool up)
{
    for (int i = 0; i < MAX_LABS; i++) {
        if (up && !g_up[i][0]) {
            snprintf(g_up[i], sizeof g_up[i], "%s", name);
            return;
        }
        if (!up && strcmp(g_up[i], name) == 0)
            g_up[i][0] = 0;
    }
    if (up)
        fail_msg("more than %d labs in one test", MAX_LABS);
}

/* Runs argv; with out, stdout+stderr are captured into it (cap bytes, NUL-terminated), else
 * inherited. Killed (its process group) after timeout_ms. Returns the exit code or 128+sig. */
static int run(const char *const argv[], char *out, size_t cap, uint32_t timeout_ms)
{
    int p[2] = {-1, -1};
    if (out && pipe2(p, O_CLOEXEC) != 0)
        return 127;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return 127;
    if (pid == 0) {
        setpgid(0, 0);
        if (out) {
            dup2(p[1], 1);
            dup2(p[1], 2);
        }
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, 0);
        signal(SIGPIPE, SIG_DFL);
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    g_child = pid;
    uint64_t deadline = h_now_ms() + timeout_ms;
    bool killed = false;
    if (out) {
        close(p[1]);
        size_t n = 0;
        for (;;) {
            uint64_t now = h_now_ms();
            if (now >= deadline) {
                kill(-pid, SIGKILL);
                killed = true;
                break;
            }
            struct pollfd pfd = {.fd = p[0], .events = POLLIN};
            int r = poll(&pfd, 1, (int)(deadline - now));
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                continue;
            char buf[4096];
            ssize_t got = read(p[0], buf, sizeof buf);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                break;
            size_t take = (size_t)got < cap - 1 - n ? (size_t)got : cap - 1 - n;
            memcpy(out + n, buf, take);
            n += take;
        }
        out[n] = 0;
        close(p[0]);
    }
    int st = 0;
    for (;;) {
        pid_t r = waitpid(pid, &st, out ? 0 : WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR) {
            g_child = 0;
            return 127;
        }
        if (r == 0) {
            if (h_now_ms() >= deadline) {
                kill(-pid, SIGKILL);
                killed = true;
                waitpid(pid, &st, 0);
                break;
            }
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    g_child = 0;
    if (killed)
        fprintf(stderr, "harness_lab: %s killed after %u ms\n", argv[0], timeout_ms);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* lab.sh's output is printed only when it fails. */
static int vcmd(struct h_lab *lab, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static int vcmd(struct h_lab *lab, const char *fmt, va_list ap)
{
    char args[2048], cmd[3000];
    vsnprintf(args, sizeof args, fmt, ap);
    snprintf(cmd, sizeof cmd, "'%s' -n '%s' %s", lab->script, lab->name, args);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    static char out[65536];
    int rc = run(argv, out, sizeof out, CMD_TIMEOUT);
    if (rc != 0)
        fprintf(stderr, "lab.sh %s -> %d\n%s", args, rc, out);
    return rc;
}

int h_lab_cmd(struct h_lab *lab, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vcmd(lab, fmt, ap);
    va_end(ap);
    return rc;
}

void h_lab_must(struct h_lab *lab, const char *fmt, ...)
{
    char args[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    if (h_lab_cmd(lab, "%s", args) != 0)
        fail_msg("lab.sh %s failed (output above)", args);
}

const char *h_lab_ns(const struct h_lab *lab, const char *node)
{
    if (strcmp(node, "router") == 0)
        return lab->ns_router;
    if (strcmp(node, "inet") == 0)
        return lab->ns_inet;
    const char *digits = NULL;
    if (strncmp(node, "charger", 7) == 0)
        digits = node + 7;
    else if (node[0] == 'c')
        digits = node + 1;
    if (digits && *digits) {
        char *end;
        long i = strtol(digits, &end, 10);
        if (!*end && i >= 0 && i < lab->chargers)
            return lab->ns_charger[i];
    }
    fail_msg("no node '%s' in the lab (router, inet, charger0..%d)", node, lab->chargers - 1);
    return NULL;
}

static const char *dns_mode_name(enum h_lab_dns m)
{
    switch (m) {
    case H_LAB_DNS_FORWARD:
        return "forward";
    case H_LAB_DNS_REFUSE:
        return "refuse";
    case H_LAB_DNS_NXDOMAIN:
        return "nxdomain";
    case H_LAB_DNS_OFF:
        return "off";
    case H_LAB_DNS_SILENT:
        return "silent";
    case H_LAB_DNS_SLOW:
        return "slow";
    case H_LAB_DNS_SPOOF_ID:
        return "spoof-id";
    case H_LAB_DNS_SPOOF_QUESTION:
        return "spoof-question";
    case H_LAB_DNS_SPOOF_ADDR:
        return "spoof-addr";
    }
    return "forward";
}

/* Appends " fmt" to buf. */
static void add(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void add(char *buf, size_t cap, const char *fmt, ...)
{
    size_t n = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
}

void h_lab_up(struct h_lab *lab, const struct h_lab_opts *opts)
{
    static const struct h_lab_opts defaults;
    if (!opts)
        opts = &defaults;
    memset(lab, 0, sizeof *lab);
    /* harness.c's exit cleanup first (see install_hooks) */
    snprintf(lab->tmp, sizeof lab->tmp, "%s", h_tmpdir("lab"));
    install_hooks();
    snprintf(g_script, sizeof g_script, "%s/tests/lab/lab.sh", h_source_dir());
    snprintf(lab->script, sizeof lab->script, "%s", g_script);
    if (g_made++ == 0)
        snprintf(lab->name, sizeof lab->name, "lade%d", (int)getpid());
    else
        snprintf(lab->name, sizeof lab->name, "lade%d-%d", (int)getpid(), g_made - 1);
    lab->chargers = opts->chargers > 0 ? opts->chargers : 1;
    if (lab->chargers > H_LAB_MAX_CHARGERS)
        fail_msg("at most %d chargers", H_LAB_MAX_CHARGERS);

    /* labs left by test processes that were SIGKILLed */
    h_lab_cmd(lab, "gc");

    static const char *const addr_names[] = {"none", "static", "udhcpc"};
    char args[2048] = "up";
    add(args, sizeof args, " --owner %d --chargers %d --addr %s", (int)getpid(), lab->chargers,
        addr_names[opts->addr]);
    if (opts->no_dhcp)
        add(args, sizeof args, " --no-dhcp");
    if (opts->pool)
        add(args, sizeof args, " --pool %d", opts->pool);
    if (opts->lease_s)
        add(args, sizeof args, " --lease %d", opts->lease_s);
    if (opts->t1_s)
        add(args, sizeof args, " --t1 %d", opts->t1_s);
    if (opts->t2_s)
        add(args, sizeof args, " --t2 %d", opts->t2_s);
    if (opts->dhcp_dns)
        add(args, sizeof args, " --dhcp-dns '%s'", opts->dhcp_dns);
    if (opts->no_dhcp_router)
        add(args, sizeof args, " --dhcp-router off");
    if (opts->dhcp_ntp)
        add(args, sizeof args, " --dhcp-ntp '%s'", opts->dhcp_ntp);
    add(args, sizeof args, " --dns %s --dns-delay %d", dns_mode_name(opts->dns),
        opts->dns_delay_ms);
    int ntp = opts->no_ntp ? 0 : opts->ntp_servers > 0 ? opts->ntp_servers : 1;
    add(args, sizeof args, " --ntp %d", ntp);
    for (int i = 0; i < 3; i++)
        if (opts->ntp_offset_s[i])
            add(args, sizeof args, " --ntp-offset %d:%d", i + 1, opts->ntp_offset_s[i]);
    if (opts->fw)
        add(args, sizeof args, " --fw");
    if (opts->intercept)
        add(args, sizeof args, " --intercept");
    if (opts->hub) {
        add(args, sizeof args, " --hub --build '%s'", h_build_dir());
        if (opts->hub_extra_conf) {
            char extra[600];
            snprintf(extra, sizeof extra, "%s/hub-extra.conf", lab->tmp);
            h_write_file(extra, opts->hub_extra_conf);
            add(args, sizeof args, " --hub-extra '%s'", extra);
        }
    }
    remember(lab->name, true); /* torn down at exit even if up fails halfway */
    if (h_lab_cmd(lab, "%s", args) != 0)
        fail_msg("the site-network lab could not be built (lab.sh's message above). It needs "
                 "root, network namespaces and the tools of scripts/install-deps.sh");

    snprintf(lab->dir, sizeof lab->dir, "%s/%s", RUN_BASE_PATH, lab->name);
    const char *base = getenv("LADE_LAB_RUN");
    if (base && *base)
        snprintf(lab->dir, sizeof lab->dir, "%s/%s", base, lab->name);
    snprintf(lab->ns_router, sizeof lab->ns_router, "%s-router", lab->name);
    snprintf(lab->ns_inet, sizeof lab->ns_inet, "%s-inet", lab->name);
    for (int i = 0; i < lab->chargers; i++) {
        snprintf(lab->ns_charger[i], sizeof lab->ns_charger[i], "%s-c%d", lab->name, i);
        snprintf(lab->mac[i], sizeof lab->mac[i], "02:1a:de:00:00:%02x", (unsigned)i & 0xffu);
    }
    snprintf(lab->leases, sizeof lab->leases, "%s/dhcp.leases", lab->dir);
    struct h_hub *hub = &lab->hub;
    snprintf(hub->dir, sizeof hub->dir, "%s/hub", lab->dir);
    snprintf(hub->conf, sizeof hub->conf, "%s/mosquitto.conf", hub->dir);
    snprintf(hub->log, sizeof hub->log, "%s/log/hub.log", lab->dir);
    snprintf(hub->registry, sizeof hub->registry, "%s/registry.db", hub->dir);
    snprintf(hub->ca, sizeof hub->ca, "%s/pki/ca.pem", lab->dir);
    snprintf(hub->host, sizeof hub->host, "%s", H_LAB_HUB_HOST);
    hub->port = H_LAB_HUB_PORT;
    snprintf(lab->ca, sizeof lab->ca, "%s/pki/ca.pem", lab->dir);
    snprintf(lab->intercept_ca, sizeof lab->intercept_ca, "%s/pki-intercept/ca.pem", lab->dir);
    snprintf(lab->fw_www, sizeof lab->fw_www, "%s/fw/www", lab->dir);
    lab->up = true;
}

void h_lab_down(struct h_lab *lab)
{
    if (!lab->up)
        return;
    for (int i = 0; i < lab->nspawned; i++)
        if (lab->spawned[i] > 0 && h_running(lab->spawned[i], NULL)) /* not stopped already */
            h_stop(lab->spawned[i], SIGTERM, 3000);
    lab->nspawned = 0;
    if (h_lab_cmd(lab, "down") != 0)
        fprintf(stderr, "harness_lab: lab.sh down failed for %s\n", lab->name);
    remember(lab->name, false);
    lab->up = false;
}

bool h_lab_gone(const char *name)
{
    char cmd[600], out[4096];
    snprintf(cmd, sizeof cmd,
             "ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^%s-(router|inet|c[0-9]+)$'; "
             "ls -d '%s/%s' /etc/netns/%s-* 2>/dev/null; true",
             name, RUN_BASE_PATH, name, name);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    run(argv, out, sizeof out, RUN_TIMEOUT);
    if (out[0])
        fprintf(stderr, "lab %s left:\n%s", name, out);
    return out[0] == 0;
}

int h_lab_exec(struct h_lab *lab, const char *node, const char *const argv[])
{
    const char *full[64] = {"ip", "netns", "exec", h_lab_ns(lab, node)};
    int n = 4;
    for (int i = 0; argv[i]; i++) {
        if (n >= 63)
            fail_msg("h_lab_exec: too many arguments");
        full[n++] = argv[i];
    }
    full[n] = NULL;
    return run(full, NULL, 0, RUN_TIMEOUT);
}

int h_lab_run(struct h_lab *lab, const char *node, char *out, size_t cap, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    const char *argv[] = {"ip", "netns", "exec", h_lab_ns(lab, node), "/bin/sh", "-c", cmd, NULL};
    return run(argv, out, cap, RUN_TIMEOUT);
}

pid_t h_lab_spawn(struct h_lab *lab, const char *node, const char *const argv[],
                  const char *const env[], const char *log_path)
{
    const char *full[64] = {"ip", "netns", "exec", h_lab_ns(lab, node)};
    int n = 4;
    for (int i = 0; argv[i]; i++) {
        if (n >= 63)
            fail_msg("h_lab_spawn: too many arguments");
        full[n++] = argv[i];
    }
    full[n] = NULL;
    pid_t pid = h_spawn(full, env, log_path); /* `ip netns exec` execs argv: same pid */
    if (lab->nspawned < (int)(sizeof lab->spawned / sizeof lab->spawned[0]))
        lab->spawned[lab->nspawned++] = pid;
    return pid;
}

int h_lab_socket(struct h_lab *lab, const char *node, int type)
{
    char path[128];
    snprintf(path, sizeof path, "/run/netns/%s", h_lab_ns(lab, node));
    int target = open(path, O_RDONLY | O_CLOEXEC);
    int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int fd = -1;
    if (target >= 0 && self >= 0 && setns(target, CLONE_NEWNET) == 0) {
        fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
        if (setns(self, CLONE_NEWNET) != 0) {
            fprintf(stderr, "harness_lab: cannot return to the test's namespace: %s\n",
                    strerror(errno));
            abort();
        }
    } else {
        fprintf(stderr, "harness_lab: cannot enter %s: %s\n", path, strerror(errno));
    }
    if (target >= 0)
        close(target);
    if (self >= 0)
        close(self);
    return fd;
}

void h_lab_firewall(struct h_lab *lab, enum h_lab_block what, bool on)
{
    static const char *const knob[] = {"8883", "443", "dns", "ntp", "wan", "all"};
    h_lab_must(lab, "firewall %s %s", on ? "block" : "allow", knob[what]);
}

void h_lab_dhcp(struct h_lab *lab, bool on)
{
    h_lab_must(lab, "dhcp %s", on ? "on" : "off");
}

void h_lab_dns(struct h_lab *lab, enum h_lab_dns mode, int delay_ms)
{
    if (mode == H_LAB_DNS_SLOW)
        h_lab_must(lab, "dns slow %d", delay_ms);
    else if ((mode == H_LAB_DNS_SPOOF_ID || mode == H_LAB_DNS_SPOOF_QUESTION ||
              mode == H_LAB_DNS_SPOOF_ADDR) &&
             delay_ms > 0)
        h_lab_must(lab, "dns %s %d", dns_mode_name(mode), delay_ms);
    else
        h_lab_must(lab, "dns %s", dns_mode_name(mode));
}

void h_lab_host(struct h_lab *lab, const char *host, bool up)
{
    h_lab_must(lab, "host %s %s", host, up ? "up" : "down");
}

void h_lab_link(struct h_lab *lab, int charger, bool up)
{
    h_lab_must(lab, "link %d %s", charger, up ? "up" : "down");
}

void h_lab_loss(struct h_lab *lab, int charger, int percent)
{
    h_lab_must(lab, "loss %d %d", charger, percent);
}

void h_lab_intercept(struct h_lab *lab, bool on)
{
    h_lab_must(lab, "intercept %s", on ? "on" : "off");
}

bool h_lab_lease(const struct h_lab *lab, int charger, char ip[16])
{
    /* dnsmasq: "<expiry> <mac> <ip> <hostname|*> <client-id|*>" per line */
    char *text = h_read_file(lab->leases);
    bool found = false;
    for (char *line = text, *next; line && *line && !found; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = 0;
        char mac[32], addr[32];
        if (sscanf(line, "%*s %31s %31s", mac, addr) == 2 &&
            strcasecmp(mac, lab->mac[charger]) == 0 && strlen(addr) < 16) {
            memcpy(ip, addr, strlen(addr) + 1);
            found = true;
        }
        if (!next)
            break;
    }
    free(text);
    return found;
}

bool h_lab_wait_lease(const struct h_lab *lab, int charger, char ip[16], uint32_t timeout_ms)
{
    uint64_t end = h_now_ms() + timeout_ms;
    do {
        if (h_lab_lease(lab, charger, ip))
            return true;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    } while (h_now_ms() < end);
    return false;
}

bool h_lab_charger_addr(struct h_lab *lab, int charger, char ip[16])
{
    char node[32], out[1024];
    snprintf(node, sizeof node, "charger%d", charger);
    if (h_lab_run(lab, node, out, sizeof out, "ip -4 -o addr show dev %s", H_LAB_CHARGER_IF) != 0)
        return false;
    const char *p = strstr(out, " inet ");
    if (!p)
        return false;
    p += 6;
    size_t n = strcspn(p, "/ ");
    if (n == 0 || n >= 16)
        return false;
    memcpy(ip, p, n);
    ip[n] = 0;
    return true;
}

void h_lab_dump(struct h_lab *lab)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s' -n '%s' status >&2; for f in '%s'/log/*.log; do echo \"--- $f\" >&2; "
             "tail -n 15 \"$f\" >&2; done",
             lab->script, lab->name, lab->dir);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    run(argv, NULL, 0, RUN_TIMEOUT);
}
