/* lade-charger — the charger agent process.
 *
 *   lade-charger --factory FILE [--user FILE] [--status FILE] [--log-level LEVEL]
 *
 * Loads the factory settings (identity, key, hub, CA) and the user settings, then keeps the
 * cloud link up until SIGINT/SIGTERM. It opens outbound connections only (SPEC R2).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lade/charger.h"
#include "lade/log.h"
#include "lade/loop.h"
#include "lade/settings.h"

static void usage(FILE *f)
{
    fputs("usage: lade-charger --factory FILE [--user FILE] [--status FILE] "
          "[--log-level error|warn|info|debug|trace]\n",
          f);
}

static void report(void *ud, const char *msg)
{
    (void)ud;
    LOG_E("settings", "%s", msg);
}

static bool g_restart;

/* RestartCharger (102): leave the loop, clean up (the session in progress is checkpointed by
 * lade_charger_stop), then exec this program again with the same arguments. */
static void on_restart(void *ud)
{
    g_restart = true;
    lade_loop_stop(ud);
}

static void on_signal(struct lade_loop *loop, int signo, void *ud)
{
    (void)ud;
    LOG_I("charger", "signal %d: stopping", signo);
    lade_loop_stop(loop);
}

int main(int argc, char **argv)
{
    const char *factory = NULL, *user = NULL, *status = NULL, *level = NULL;
    static const struct option lo[] = {
        {"factory", required_argument, 0, 'f'}, {"user", required_argument, 0, 'u'},
        {"status", required_argument, 0, 's'},  {"log-level", required_argument, 0, 'l'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'f':
            factory = optarg;
            break;
        case 'u':
            user = optarg;
            break;
        case 's':
            status = optarg;
            break;
        case 'l':
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
    if (!factory || optind != argc) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    struct lade_settings s;
    lade_settings_defaults(&s);
    lade_err err = lade_settings_load(&s, factory, LADE_SETTINGS_FACTORY, report, NULL);
    if (err) {
        LOG_E("charger", "factory settings %s: %s", factory, lade_strerror(err));
        return 1;
    }
    if (user) {
        err = lade_settings_load(&s, user, LADE_SETTINGS_USER, report, NULL);
        if (err == LADE_ERR_NOT_FOUND)
            LOG_I("charger", "no user settings at %s; using defaults", user);
        else if (err)
            LOG_E("charger", "user settings %s: %s; using defaults", user, lade_strerror(err));
    }
    lade_log_set_level((enum lade_log_level)s.log_level);
    if (level) {
        int l = lade_log_level_parse(level);
        if (l < 0) {
            usage(stderr);
            return 2;
        }
        lade_log_set_level((enum lade_log_level)l);
    }
    if (lade_settings_check(&s, report, NULL) != LADE_OK)
        return 1;

    struct lade_loop *loop = NULL;
    struct lade_charger *c = NULL;
    int rc = 1;
    if ((err = lade_loop_new(&loop)) != LADE_OK) {
        LOG_E("charger", "event loop: %s", lade_strerror(err));
        goto out;
    }
    if (lade_loop_on_signal(loop, SIGINT, on_signal, NULL) != LADE_OK ||
        lade_loop_on_signal(loop, SIGTERM, on_signal, NULL) != LADE_OK) {
        LOG_E("charger", "cannot handle signals");
        goto out;
    }
    struct lade_charger_opts o = {.settings = &s,
                                  .loop = loop,
                                  .status_file = status,
                                  .on_restart = on_restart,
                                  .restart_ud = loop};
    if ((err = lade_charger_new(&c, &o)) != LADE_OK) {
        LOG_E("charger", "cannot create the charger: %s", lade_strerror(err));
        goto out;
    }
    memset(s.device_key, 0, sizeof s.device_key);
    if ((err = lade_charger_start(c, 0)) != LADE_OK) {
        LOG_E("charger", "cannot start: %s", lade_strerror(err));
        goto out;
    }
    LOG_I("charger", "%s starting (firmware %s, build " LADE_FIRMWARE_VERSION ")",
          lade_charger_id(c), lade_charger_firmware_version(c));
    if ((err = lade_loop_run(loop)) != LADE_OK) {
        LOG_E("charger", "event loop failed: %s", lade_strerror(err));
        goto out;
    }
    rc = 0;
out:
    lade_charger_free(c);
    lade_loop_free(loop);
    if (g_restart && rc == 0) {
        LOG_I("charger", "restarting");
        fflush(NULL);
        execv("/proc/self/exe", argv);
        LOG_E("charger", "restart failed: %s", strerror(errno));
        return 1;
    }
    return rc;
}
