#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CHILDREN 256
#define MAX_DIRS     64

static pid_t g_children[MAX_CHILDREN];
static int g_nchildren;
static char *g_dirs[MAX_DIRS];
static int g_ndirs;
static bool g_cleanup_installed;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "harness: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(99);
}

static void cleanup(void)
{
    for (int i = 0; i < g_nchildren; i++) {
        if (g_children[i] > 0) {
            kill(-g_children[i], SIGKILL);
            waitpid(g_children[i], NULL, 0);
            g_children[i] = 0;
        }
    }
    const char *keep = getenv("LADE_KEEP_TMP");
    for (int i = 0; i < g_ndirs; i++) {
        if (!(keep && strcmp(keep, "1") == 0)) {
            char cmd[600];
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dirs[i]);
            if (system(cmd) != 0)
                fprintf(stderr, "harness: could not remove %s\n", g_dirs[i]);
        }
        free(g_dirs[i]);
    }
    g_ndirs = 0;
}

static void on_signal(int sig)
{
    cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void install_cleanup(void)
{
    if (g_cleanup_installed)
        return;
    g_cleanup_installed = true;
    atexit(cleanup);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGABRT, on_signal);
    signal(SIGPIPE, SIG_IGN);
}

uint64_t h_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

const char *h_build_dir(void)
{
    const char *d = getenv("LADE_BUILD_DIR");
    if (!d)
        die("LADE_BUILD_DIR is not set (run through ctest)");
    return d;
}

const char *h_source_dir(void)
{
    const char *d = getenv("LADE_SOURCE_DIR");
    if (!d)
        die("LADE_SOURCE_DIR is not set (run through ctest)");
    return d;
}

bool h_sanitized(void)
{
    const char *s = getenv("LADE_SANITIZE");
    return s && strcmp(s, "1") == 0;
}

const char *h_tmpdir(const char *tag)
{
    install_cleanup();
    if (g_ndirs >= MAX_DIRS)
        die("too many temp dirs");
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/lade-%s-XXXXXX", base ? base : "/tmp", tag ? tag : "t");
    if (!mkdtemp(tmpl))
        die("mkdtemp: %s", strerror(errno));
    chmod(tmpl, 0755);
    g_dirs[g_ndirs] = strdup(tmpl);
    return g_dirs[g_ndirs++];
}

int h_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0)
        die("bind: %s", strerror(errno));
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

bool h_wait_port(int port, uint32_t timeout_ms)
{
    uint64_t end = h_now_ms() + timeout_ms;
    do {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
        close(fd);
        if (rc == 0)
            return true;
        sleep_ms(20);
    } while (h_now_ms() < end);
    return false;
}

char *h_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    fclose(f);
    if (buf)
        buf[n] = '\0';
    return buf;
}

void h_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        die("cannot write %s: %s", path, strerror(errno));
}

int h_file_count(const char *path, const char *needle)
{
    char *s = h_read_file(path);
    int n = 0;
    for (const char *p = s; p && (p = strstr(p, needle)); p += strlen(needle))
        n++;
    free(s);
    return n;
}

bool h_wait_file_contains(const char *path, const char *needle, uint32_t timeout_ms)
{
    uint64_t end = h_now_ms() + timeout_ms;
    do {
        if (h_file_count(path, needle) > 0)
            return true;
        sleep_ms(25);
    } while (h_now_ms() < end);
    return false;
}

pid_t h_spawn(const char *const argv[], const char *const env[], const char *log_path)
{
    install_cleanup();
    if (g_nchildren >= MAX_CHILDREN)
        die("too many children");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        setpgid(0, 0);
        int fd = open(log_path ? log_path : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        signal(SIGPIPE, SIG_DFL);
        execvp(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    g_children[g_nchildren++] = pid;
    return pid;
}

void h_track(pid_t pid)
{
    install_cleanup();
    if (g_nchildren >= MAX_CHILDREN)
        die("too many children");
    g_children[g_nchildren++] = pid;
}

static void forget_child(pid_t pid)
{
    for (int i = 0; i < g_nchildren; i++)
        if (g_children[i] == pid)
            g_children[i] = 0;
}

bool h_running(pid_t pid, int *status)
{
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == 0)
        return true;
    if (r == pid) {
        forget_child(pid);
        if (status)
            *status = st;
    }
    return false;
}

int h_stop(pid_t pid, int sig, uint32_t timeout_ms)
{
    if (pid <= 0)
        return -1;
    kill(-pid, sig);
    uint64_t end = h_now_ms() + timeout_ms;
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            forget_child(pid);
            kill(-pid, SIGKILL); /* stray grandchildren */
            return st;
        }
        if (r < 0)
            return -1;
        if (h_now_ms() >= end) {
            kill(-pid, SIGKILL);
            waitpid(pid, &st, 0);
            forget_child(pid);
            return st;
        }
        sleep_ms(10);
    }
}

int h_sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    fflush(NULL);
    int st = system(cmd);
    if (st == -1)
        return 127;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

const char *const *h_sanitizer_preload_env(void)
{
    static char preload[1024];
    static const char *env[4];
    if (env[0] || !h_sanitized())
        return env;
    /* The runtimes of the compiler that built the plugin (gcc or clang). */
    const char *cc = getenv("LADE_CC");
    char cmd[512], asan[400] = "", ubsan[400] = "";
    snprintf(cmd, sizeof cmd, "%s -print-file-name=libasan.so", cc && *cc ? cc : "cc");
    FILE *p = popen(cmd, "r");
    if (p && fgets(asan, sizeof asan, p))
        asan[strcspn(asan, "\n")] = 0;
    if (p)
        pclose(p);
    snprintf(cmd, sizeof cmd, "%s -print-file-name=libubsan.so", cc && *cc ? cc : "cc");
    p = popen(cmd, "r");
    if (p && fgets(ubsan, sizeof ubsan, p))
        ubsan[strcspn(ubsan, "\n")] = 0;
    if (p)
        pclose(p);
    snprintf(preload, sizeof preload, "LD_PRELOAD=%s %s", asan, ubsan);
    env[0] = preload;
    /* mosquitto itself is not instrumented; it frees some memory lazily at exit. */
    env[1] = "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:verify_asan_link_order=0";
    env[2] = "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1";
    env[3] = NULL;
    return env;
}

void h_make_ca(const char *dir, const char *cn)
{
    if (h_sh("'%s/scripts/gen-certs.sh' ca '%s' '%s'", h_source_dir(), dir, cn) != 0)
        die("gen-certs ca failed");
}

void h_make_server_cert(const char *dir, const char *ca_dir, const char *host)
{
    if (h_sh("'%s/scripts/gen-certs.sh' server '%s' '%s' '%s'", h_source_dir(), dir, ca_dir,
             host) != 0)
        die("gen-certs server failed");
}

void h_hub_prepare(struct h_hub *hub, const char *host)
{
    memset(hub, 0, sizeof *hub);
    snprintf(hub->dir, sizeof hub->dir, "%s", h_tmpdir("hub"));
    snprintf(hub->host, sizeof hub->host, "%s", host);
    h_make_ca(hub->dir, "lade test CA");
    h_make_server_cert(hub->dir, hub->dir, host);
    snprintf(hub->ca, sizeof hub->ca, "%s/ca.pem", hub->dir);
    snprintf(hub->conf, sizeof hub->conf, "%s/mosquitto.conf", hub->dir);
    snprintf(hub->log, sizeof hub->log, "%s/mosquitto.log", hub->dir);
    snprintf(hub->registry, sizeof hub->registry, "%s/registry.db", hub->dir);
    hub->port = h_free_port();
}

void h_hub_start(struct h_hub *hub, const char *extra_conf)
{
    struct passwd *pw = getpwuid(getuid());
    char conf[8192];
    snprintf(conf, sizeof conf,
             "# generated by the lade e2e harness\n"
             "user %s\n"
             "per_listener_settings false\n"
             "allow_anonymous false\n"
             "persistence false\n"
             "set_tcp_nodelay true\n"
             "log_dest stderr\n"
             "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
             "connection_messages true\n"
             "listener %d 127.0.0.1\n"
             "certfile %s/server.pem\n"
             "keyfile %s/server.key\n"
             "tls_version tlsv1.2\n"
             "plugin %s/lade_hub.so\n"
             "plugin_opt_registry %s\n"
             "plugin_opt_hub_host %s\n"
             "%s\n",
             pw ? pw->pw_name : "root", hub->port, hub->dir, hub->dir, h_build_dir(), hub->registry,
             hub->host, extra_conf ? extra_conf : "");
    h_write_file(hub->conf, conf);
    const char *argv[] = {"/usr/sbin/mosquitto", "-c", hub->conf, NULL};
    hub->pid = h_spawn(argv, h_sanitizer_preload_env(), hub->log);
    if (!h_wait_port(hub->port, 15000)) {
        char *log = h_read_file(hub->log);
        die("mosquitto did not listen on %d; log:\n%s", hub->port, log ? log : "(none)");
    }
}

void h_hub_stop(struct h_hub *hub)
{
    if (hub->pid > 0)
        h_stop(hub->pid, SIGTERM, 5000);
    hub->pid = 0;
}
