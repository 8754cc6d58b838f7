#include "lade/log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static enum lade_log_level g_level = LADE_LOG_INFO;
static lade_log_sink_fn g_sink;
static void *g_sink_ud;

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};

void lade_log_set_level(enum lade_log_level level)
{
    g_level = level;
}

enum lade_log_level lade_log_get_level(void)
{
    return g_level;
}

int lade_log_level_parse(const char *s)
{
    static const char *const names[] = {"error", "warn", "info", "debug", "trace"};
    for (int i = 0; i < 5; i++) {
        if (s && strcmp(s, names[i]) == 0)
            return i;
    }
    return -1;
}

void lade_log_set_sink(lade_log_sink_fn fn, void *ud)
{
    g_sink = fn;
    g_sink_ud = ud;
}

void lade_vlog(enum lade_log_level level, const char *module, const char *fmt, va_list ap)
{
    if (level > g_level)
        return;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (g_sink) {
        g_sink(g_sink_ud, level, module, msg);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: %s\n", tm.tm_year + 1900,
            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
            level_names[level], module ? module : "-", msg);
}

void lade_log(enum lade_log_level level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lade_vlog(level, module, fmt, ap);
    va_end(ap);
}
