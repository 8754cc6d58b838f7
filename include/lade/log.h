/* lade — logging with levels.
 *
 * Lines go to a sink (stderr by default) as "<wall time> <LEVEL> <module>: <message>".
 * Never pass secrets (keys, tokens, passwords) to a log call.
 * Thread-compatible: configure before starting threads.
 */
#ifndef LADE_LOG_H
#define LADE_LOG_H

#include <stdarg.h>

enum lade_log_level {
    LADE_LOG_ERROR = 0,
    LADE_LOG_WARN = 1,
    LADE_LOG_INFO = 2,
    LADE_LOG_DEBUG = 3,
    LADE_LOG_TRACE = 4,
};

typedef void (*lade_log_sink_fn)(void *ud, enum lade_log_level level, const char *module,
                                 const char *line);

void lade_log_set_level(enum lade_log_level level);
enum lade_log_level lade_log_get_level(void);
/* Parses "error", "warn", "info", "debug", "trace"; returns -1 for anything else. */
int lade_log_level_parse(const char *s);
/* Replace the sink; NULL restores stderr. */
void lade_log_set_sink(lade_log_sink_fn fn, void *ud);

void lade_log(enum lade_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void lade_vlog(enum lade_log_level level, const char *module, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define LADE_LOG_ENABLED(lvl) ((lvl) <= lade_log_get_level())
#define LOG_E(mod, ...)       lade_log(LADE_LOG_ERROR, mod, __VA_ARGS__)
#define LOG_W(mod, ...)       lade_log(LADE_LOG_WARN, mod, __VA_ARGS__)
#define LOG_I(mod, ...)       lade_log(LADE_LOG_INFO, mod, __VA_ARGS__)
#define LOG_D(mod, ...)                                                                            \
    do {                                                                                           \
        if (LADE_LOG_ENABLED(LADE_LOG_DEBUG))                                                      \
            lade_log(LADE_LOG_DEBUG, mod, __VA_ARGS__);                                            \
    } while (0)
#define LOG_T(mod, ...)                                                                            \
    do {                                                                                           \
        if (LADE_LOG_ENABLED(LADE_LOG_TRACE))                                                      \
            lade_log(LADE_LOG_TRACE, mod, __VA_ARGS__);                                            \
    } while (0)

#endif
