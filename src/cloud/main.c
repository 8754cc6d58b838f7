/* lade-cloud: the portal service (docs/portal.md). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lade/auth.h"
#include "lade/log.h"
#include "lade/loop.h"
#include "lade/portal.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: lade-cloud --db FILE [options]\n"
            "  --db FILE            the portal's SQLite store (created if missing)\n"
            "  --bind ADDR          listen address (default 127.0.0.1)\n"
            "  --port N             HTTP port (default 8080, or LADE_PORTAL_PORT)\n"
            "  --web-dir DIR        the web page's files (default: the source tree's)\n"
            "  --service FILE       service identity from `lade-factory service` (hub link)\n"
            "  --ca FILE            CA bundle the hub's certificate must chain to\n"
            "  --hosts-file FILE    name -> address file for the hub host (default /etc/hosts)\n"
            "  --registry FILE      the hub's device registry: its devices are listed as\n"
            "                       unassigned chargers until placed\n"
            "  --hub-port N         hub port (default: the service file's, else 8883)\n"
            "  --deadline-s N       longest charger link-loss deadline, s (default 370)\n"
            "  --site FILE          commission the installation in this site file unless one of\n"
            "                       its name exists (docs/portal.md, \"Site files\"); may be\n"
            "                       given several times (up to 64)\n"
            "  --admin NAME         create/reset user NAME as administrator with the password\n"
            "                       in LADE_ADMIN_PASSWORD\n"
            "  --firmware-dir DIR   firmware repository: published images (served as /fw/ by the\n"
            "                       firmware hosts)\n"
            "  --firmware-keys B64[,B64]  the pinned public keys uploads are verified with\n"
            "  --push-inflight N    settings pushes to chargers in flight at most (default 32)\n"
            "  --kdf-ln N           scrypt cost log2(N) for new password hashes (default 15;\n"
            "                       lower only for tests)\n"
            "  --log-level LEVEL    error, warn, info (default), debug, trace\n");
}

static void on_signal(struct lade_loop *loop, int signo, void *ud)
{
    (void)signo;
    (void)ud;
    lade_loop_stop(loop);
}

static int parse_u32(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || end == s || *end || v > max)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    struct lade_portal_opts o = {0};
    const char *admin = NULL;
    const char *sites[64]; /* --site, in the order given */
    size_t n_sites = 0;
    unsigned long port = 8080, v;
    const char *env_port = getenv("LADE_PORTAL_PORT");
    if (env_port && parse_u32(env_port, 65535, &port) != 0) {
        fprintf(stderr, "lade-cloud: LADE_PORTAL_PORT=%s is not a port number\n", env_port);
        return 2;
    }
    struct lade_auth_kdf kdf = lade_auth_kdf_default;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!val) {
            fprintf(stderr, "lade-cloud: %s needs a value (or is unknown)\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--db"))
            o.db_path = val;
        else if (!strcmp(a, "--bind"))
            o.bind_addr = val;
        else if (!strcmp(a, "--port")) {
            if (parse_u32(val, 65535, &port) != 0) {
                fprintf(stderr, "lade-cloud: --port %s is not a port number\n", val);
                return 2;
            }
        } else if (!strcmp(a, "--web-dir"))
            o.web_dir = val;
        else if (!strcmp(a, "--service"))
            o.svc_file = val;
        else if (!strcmp(a, "--ca"))
            o.ca_file = val;
        else if (!strcmp(a, "--registry"))
            o.registry = val;
        else if (!strcmp(a, "--hosts-file"))
            o.hosts_file = val;
        else if (!strcmp(a, "--hub-port")) {
            if (parse_u32(val, 65535, &v) != 0 || v == 0) {
                fprintf(stderr, "lade-cloud: --hub-port %s is not a port number\n", val);
                return 2;
            }
            o.hub_port = (uint16_t)v;
        } else if (!strcmp(a, "--deadline-s")) {
            if (parse_u32(val, 3600, &v) != 0 || v < 1) {
                fprintf(stderr, "lade-cloud: --deadline-s must be 1..3600\n");
                return 2;
            }
            o.link_loss_deadline_ms = (uint32_t)v * 1000;
        } else if (!strcmp(a, "--site")) {
            if (n_sites == sizeof sites / sizeof sites[0]) {
                fprintf(stderr, "lade-cloud: at most %zu --site files\n", n_sites);
                return 2;
            }
            sites[n_sites++] = val;
        } else if (!strcmp(a, "--firmware-dir"))
            o.firmware_dir = val;
        else if (!strcmp(a, "--firmware-keys"))
            o.firmware_keys = val;
        else if (!strcmp(a, "--admin"))
            admin = val;
        else if (!strcmp(a, "--push-inflight")) {
            if (parse_u32(val, 10000, &v) != 0 || v < 1) {
                fprintf(stderr, "lade-cloud: --push-inflight must be 1..10000\n");
                return 2;
            }
            o.settings_push_inflight = (uint32_t)v;
        } else if (!strcmp(a, "--kdf-ln")) {
            if (parse_u32(val, LADE_AUTH_KDF_LN_MAX, &v) != 0 || v < 4) {
                fprintf(stderr, "lade-cloud: --kdf-ln must be 4..%d\n", LADE_AUTH_KDF_LN_MAX);
                return 2;
            }
            kdf.log2_n = (uint8_t)v;
            o.kdf = &kdf;
        } else if (!strcmp(a, "--log-level")) {
            int l = lade_log_level_parse(val);
            if (l < 0) {
                fprintf(stderr, "lade-cloud: unknown log level %s\n", val);
                return 2;
            }
            lade_log_set_level((enum lade_log_level)l);
        } else {
            fprintf(stderr, "lade-cloud: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!o.db_path) {
        fprintf(stderr, "lade-cloud: --db is required\n");
        usage(stderr);
        return 2;
    }
    const char *admin_pw = getenv("LADE_ADMIN_PASSWORD");
    if (admin && (!admin_pw || !*admin_pw)) {
        fprintf(stderr, "lade-cloud: --admin needs the password in LADE_ADMIN_PASSWORD\n");
        return 2;
    }
    o.port = (uint16_t)port;
    signal(SIGPIPE, SIG_IGN);

    struct lade_loop *loop = NULL;
    if (lade_loop_new(&loop) != LADE_OK) {
        fprintf(stderr, "lade-cloud: cannot create the event loop\n");
        return 1;
    }
    o.loop = loop;
    struct lade_portal *p = NULL;
    char why[512] = "";
    lade_err err = lade_portal_new(&p, &o, why, sizeof why);
    if (err != LADE_OK) {
        fprintf(stderr, "lade-cloud: %s\n", why[0] ? why : lade_strerror(err));
        lade_loop_free(loop);
        return 1;
    }
    if (admin) {
        err = lade_portal_set_admin(p, admin, admin_pw);
        if (err != LADE_OK) {
            fprintf(stderr, "lade-cloud: cannot set up administrator %s: %s\n", admin,
                    lade_strerror(err));
            lade_portal_free(p);
            lade_loop_free(loop);
            return 1;
        }
    }
    for (size_t i = 0; i < n_sites; i++) {
        bool created = false;
        err = lade_portal_apply_site(p, sites[i], &created, why, sizeof why);
        if (err != LADE_OK) {
            fprintf(stderr, "lade-cloud: %s\n", why[0] ? why : lade_strerror(err));
            lade_portal_free(p);
            lade_loop_free(loop);
            return 1;
        }
    }
    if (lade_loop_on_signal(loop, SIGINT, on_signal, NULL) != LADE_OK ||
        lade_loop_on_signal(loop, SIGTERM, on_signal, NULL) != LADE_OK) {
        fprintf(stderr, "lade-cloud: cannot watch signals\n");
        lade_portal_free(p);
        lade_loop_free(loop);
        return 1;
    }
    /* Tests and scripts wait for this line. */
    printf("lade-cloud: listening on http://%s:%u\n", o.bind_addr ? o.bind_addr : "127.0.0.1",
           (unsigned)lade_portal_port(p));
    fflush(stdout);
    err = lade_loop_run(loop);
    LOG_I("portal", "stopping");
    lade_portal_free(p);
    lade_loop_free(loop);
    return err == LADE_OK ? 0 : 1;
}
