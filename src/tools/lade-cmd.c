/* lade-cmd — talk to chargers through the hub as a service identity (docs/lade-cmd.md).
 *
 *   lade-cmd --service FILE --ca CA [--port P] [--host H] [--hosts-file F] [--timeout S]
 *            [-v] SUBCOMMAND ...
 *     call DEVICE METHOD [JSON]       direct method; reply body on stdout, "status N" on stderr
 *     command DEVICE ID [JSON-ARGS]   = call DEVICE command {"id":ID, ...JSON-ARGS}
 *     twin-get DEVICE                 the twin document
 *     twin-set DEVICE JSON            desired-properties merge patch
 *     watch [--device ID] [--count N] [--duration S]
 *                                     DEVICE<TAB>PROPERTIES<TAB>PAYLOAD per message
 *
 * Exit: 0 success (2xx), 1 other non-2xx or link lost, 2 usage / bad argument / bad service
 * or CA file, 3 device offline (404 from the hub), 4 timeout (504 from the hub or no reply
 * within --timeout), 5 cannot connect (unreachable, certificate, credentials).
 *
 * A thin shell over include/lade/svc.h on a lade_loop; it never logs the key or the token.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lade/clock.h"
#include "lade/iothub.h"
#include "lade/log.h"
#include "lade/loop.h"
#include "lade/svc.h"

enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,
    EXIT_USAGE = 2,
    EXIT_OFFLINE = 3,
    EXIT_TIMEOUT = 4,
    EXIT_CONNECT = 5,
};

enum cmd { CMD_CALL, CMD_TWIN_GET, CMD_TWIN_SET, CMD_WATCH };

struct app {
    struct lade_loop *loop;
    struct lade_svc *svc;
    enum cmd cmd;
    const char *device;
    const char *method;
    char *body; /* request JSON (malloc'd) */
    uint32_t timeout_ms;
    const char *host;
    uint16_t port;
    const char *ca;
    const char *hosts_file;
    const char *service_file;
    char service_name[LADE_SVC_NAME_MAX + 1];
    /* watch */
    const char *watch_device;
    long watch_count;
    uint32_t watch_duration_ms;
    long seen;
    struct lade_timer duration_timer;

    bool ever_online;
    bool sent;
    bool done;
    int exit_code;
    int verbosity; /* 0: our own messages only; 1: + library info; 2: + debug */
    char tls_warn[256];
    char tls_info[256];
};

static void usage(FILE *f)
{
    fputs("usage: lade-cmd --service FILE --ca CA [--port 8883] [--host H] [--hosts-file F]\n"
          "                [--timeout S] [-v] SUBCOMMAND\n"
          "  call DEVICE METHOD [JSON]        call a direct method (JSON default {})\n"
          "  command DEVICE ID [JSON-ARGS]    call 'command' with {\"id\":ID, ...JSON-ARGS}\n"
          "  twin-get DEVICE                  print the device twin\n"
          "  twin-set DEVICE JSON             merge JSON into the desired properties\n"
          "  watch [--device ID] [--count N] [--duration S]\n"
          "                                   print DEVICE<TAB>PROPERTIES<TAB>PAYLOAD lines\n"
          "exit: 0 ok, 1 failed, 2 usage, 3 device offline, 4 timeout, 5 cannot connect\n",
          f);
}

static void finish(struct app *a, int code)
{
    if (a->done)
        return;
    a->done = true;
    a->exit_code = code;
    lade_loop_stop(a->loop);
}

/* Library log lines: kept for error details (the last TLS warning says why a certificate was
 * not trusted), printed only with -v. */
static void log_sink(void *ud, enum lade_log_level level, const char *module, const char *line)
{
    struct app *a = ud;
    if (strcmp(module, "tls") == 0) {
        if (level <= LADE_LOG_WARN)
            snprintf(a->tls_warn, sizeof a->tls_warn, "%s", line);
        else if (level == LADE_LOG_INFO)
            snprintf(a->tls_info, sizeof a->tls_info, "%s", line);
    }
    if ((a->verbosity >= 1 && level <= LADE_LOG_INFO) || a->verbosity >= 2)
        fprintf(stderr, "lade-cmd: [%s] %s\n", module, line);
}

/* Writes bytes on one line: control characters become \t, \n, \r or \xHH. */
static void put_line_part(FILE *f, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == '\t')
            fputs("\\t", f);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c == '\r')
            fputs("\\r", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02x", c);
        else
            fputc(c, f);
    }
}

static bool parse_long(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_seconds_ms(const char *s, uint32_t *out_ms)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !(v > 0) || v > 86400)
        return false;
    double ms = v * 1000.0;
    uint32_t whole = (uint32_t)ms;
    *out_ms = whole == 0 ? 1 : whole + (ms > whole ? 1 : 0);
    return true;
}

/* ---- replies ---- */

static const char *hub_message(const struct lade_svc_result *r, char *buf, size_t cap)
{
    buf[0] = 0;
    cJSON *doc = r->body ? cJSON_ParseWithLength((const char *)r->body, r->body_len) : NULL;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(doc, "message");
    if (cJSON_IsString(m))
        snprintf(buf, cap, "%s", m->valuestring);
    cJSON_Delete(doc);
    return buf;
}

static void on_reply(void *ud, const struct lade_svc_result *r)
{
    struct app *a = ud;
    if (a->done)
        return; /* lade_svc_free at exit fails what is left */
    char msg[200];
    if (r->err == LADE_ERR_TIMEOUT) {
        fprintf(stderr, "status %d\n", r->status);
        fprintf(stderr, "lade-cmd: no reply from %s within %.3g s (local timeout)\n", r->device,
                a->timeout_ms / 1000.0);
        finish(a, EXIT_TIMEOUT);
        return;
    }
    if (r->err != LADE_OK) {
        fprintf(stderr, "lade-cmd: the connection to the hub was lost before the reply (%s)%s\n",
                lade_strerror(r->err),
                r->op == LADE_SVC_OP_METHOD ? "; the method may or may not have run" : "");
        finish(a, EXIT_FAIL);
        return;
    }
    fprintf(stderr, "status %d\n", r->status);
    if (r->op == LADE_SVC_OP_TWIN_PATCH) {
        if (r->status / 100 == 2)
            printf("{\"status\":%d,\"version\":%lld}\n", r->status, (long long)r->version);
    } else {
        put_line_part(stdout, r->body, r->body_len);
        fputc('\n', stdout);
    }
    fflush(stdout);
    int code = r->status / 100 == 2 ? EXIT_OK : EXIT_FAIL;
    if (r->op == LADE_SVC_OP_METHOD && r->hub_made) {
        if (r->status == 404) {
            fprintf(stderr, "lade-cmd: device %s is not connected to the hub (%s)\n", r->device,
                    hub_message(r, msg, sizeof msg));
            code = EXIT_OFFLINE;
        } else if (r->status == 504) {
            fprintf(stderr, "lade-cmd: device %s did not answer in time (the hub's timeout)\n",
                    r->device);
            code = EXIT_TIMEOUT;
        } else {
            fprintf(stderr, "lade-cmd: the hub refused the call: %s\n",
                    hub_message(r, msg, sizeof msg));
        }
    } else if (r->op != LADE_SVC_OP_METHOD && r->status == 404) {
        fprintf(stderr, "lade-cmd: no device %s in the hub's registry\n", r->device);
    } else if (r->op == LADE_SVC_OP_TWIN_PATCH && r->status == 400) {
        fprintf(stderr, "lade-cmd: the hub refused the patch (not an object, '$' names or too "
                        "deep)\n");
    }
    finish(a, code);
}

static void send_request(struct app *a)
{
    lade_err err = LADE_ERR_INVAL;
    switch (a->cmd) {
    case CMD_CALL:
        err = lade_svc_call(a->svc, a->device, a->method, a->body, a->timeout_ms, on_reply, a);
        break;
    case CMD_TWIN_GET:
        err = lade_svc_twin_get(a->svc, a->device, a->timeout_ms, on_reply, a);
        break;
    case CMD_TWIN_SET:
        err = lade_svc_twin_patch(a->svc, a->device, a->body, a->timeout_ms, on_reply, a);
        break;
    case CMD_WATCH:
        return;
    }
    if (err) {
        fprintf(stderr, "lade-cmd: request not sent: %s\n", lade_strerror(err));
        finish(a, err == LADE_ERR_INVAL || err == LADE_ERR_NOSPACE || err == LADE_ERR_TOO_BIG
                      ? EXIT_USAGE
                      : EXIT_FAIL);
        return;
    }
    a->sent = true;
}

/* ---- events ---- */

static void on_event(void *ud, const struct lade_svc_event *ev)
{
    struct app *a = ud;
    if (a->done || (a->watch_device && strcmp(a->watch_device, ev->device) != 0))
        return;
    fputs(ev->device, stdout);
    fputc('\t', stdout);
    switch (ev->kind) {
    case LADE_SVC_EV_TELEMETRY:
        put_line_part(stdout, (const uint8_t *)ev->props.p, ev->props.n);
        break;
    case LADE_SVC_EV_LIFECYCLE:
        fputs("$event", stdout);
        break;
    case LADE_SVC_EV_REPORTED:
        printf("$reported&$version=%lld", (long long)ev->version);
        break;
    }
    fputc('\t', stdout);
    put_line_part(stdout, ev->payload, ev->payload_len);
    fputc('\n', stdout);
    fflush(stdout);
    if (a->watch_count > 0 && ++a->seen >= a->watch_count)
        finish(a, EXIT_OK);
}

static void on_duration(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct app *a = ud;
    if (!a->ever_online)
        fprintf(stderr, "lade-cmd: never connected to the hub within --duration\n");
    finish(a, a->ever_online ? EXIT_OK : EXIT_CONNECT);
}

/* ---- link ---- */

static void explain_failure(struct app *a, lade_err err, const char *reason)
{
    switch (err) {
    case LADE_ERR_CERT:
        fprintf(stderr,
                "lade-cmd: the hub's certificate is not trusted (host %s, CA bundle %s): %s\n",
                a->host, a->ca, a->tls_warn[0] ? a->tls_warn : reason);
        break;
    case LADE_ERR_AUTH:
        fprintf(stderr,
                "lade-cmd: the hub refused the credentials of svc:%s (%s): wrong or rotated "
                "service_key, unknown service, hub_host not the hub's name, or this machine's "
                "clock is off\n",
                a->service_name, reason);
        break;
    case LADE_ERR_RESOLVE:
        fprintf(stderr, "lade-cmd: cannot resolve %s (literal address or hosts file %s)\n", a->host,
                a->hosts_file ? a->hosts_file : "/etc/hosts");
        break;
    case LADE_ERR_IO:
    case LADE_ERR_TIMEOUT:
        fprintf(stderr, "lade-cmd: cannot reach the hub at %s:%u: %s\n", a->host, a->port,
                a->tls_info[0] ? a->tls_info : reason);
        break;
    case LADE_ERR_TLS:
        fprintf(stderr, "lade-cmd: TLS with the hub at %s:%u failed: %s\n", a->host, a->port,
                a->tls_warn[0] ? a->tls_warn : reason);
        break;
    default:
        fprintf(stderr, "lade-cmd: cannot connect to the hub at %s:%u: %s (%s)\n", a->host, a->port,
                reason, lade_strerror(err));
        break;
    }
}

static void on_state(void *ud, enum lade_svc_state st, lade_err err, const char *reason)
{
    struct app *a = ud;
    if (a->done)
        return;
    if (a->verbosity >= 1)
        fprintf(stderr, "lade-cmd: link %s%s%s\n", lade_svc_state_name(st), *reason ? ": " : "",
                reason);
    if (st == LADE_SVC_ONLINE) {
        a->ever_online = true;
        if (a->cmd == CMD_WATCH)
            fprintf(stderr, "lade-cmd: connected; watching\n");
        else if (!a->sent)
            send_request(a);
        return;
    }
    if (st != LADE_SVC_WAITING || err == LADE_OK)
        return;
    if (!a->ever_online) {
        explain_failure(a, err, reason);
        finish(a, EXIT_CONNECT);
    } else if (a->cmd == CMD_WATCH) {
        fprintf(stderr, "lade-cmd: link lost (%s); reconnecting\n", reason);
    }
    /* A request in flight gets LADE_ERR_CLOSED through on_reply. */
}

static void on_signal(struct lade_loop *loop, int signo, void *ud)
{
    (void)loop;
    (void)signo;
    struct app *a = ud;
    finish(a, a->cmd == CMD_WATCH ? EXIT_OK : EXIT_FAIL);
}

/* ---- arguments ---- */

/* Parses a JSON argument; object_only: it must be an object. NULL + message on failure. */
static cJSON *json_arg(const char *what, const char *text, bool object_only)
{
    const char *end = NULL;
    cJSON *doc = cJSON_ParseWithOpts(text, &end, true);
    if (!doc) {
        fprintf(stderr, "lade-cmd: %s is not valid JSON (near byte %ld)\n", what,
                end ? (long)(end - text) : 0L);
        return NULL;
    }
    if (object_only && !cJSON_IsObject(doc)) {
        fprintf(stderr, "lade-cmd: %s must be a JSON object\n", what);
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

static bool device_arg(const char *id)
{
    if (lade_iothub_device_id_valid(id))
        return true;
    fprintf(stderr, "lade-cmd: invalid device id '%.140s' (1-128 of [A-Za-z0-9-])\n", id);
    return false;
}

/* Parses the subcommand and its arguments. Returns 0 or an exit code. */
static int parse_cmd(struct app *a, int argc, char **argv)
{
    if (argc < 1) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[0];
    if (strcmp(cmd, "call") == 0 || strcmp(cmd, "command") == 0) {
        if (argc < 3 || argc > 4) {
            usage(stderr);
            return EXIT_USAGE;
        }
        a->cmd = CMD_CALL;
        a->device = argv[1];
        if (!device_arg(a->device))
            return EXIT_USAGE;
        if (strcmp(cmd, "call") == 0) {
            a->method = argv[2];
            if (!lade_svc_method_valid(a->method)) {
                fprintf(stderr,
                        "lade-cmd: invalid method name '%.140s' (1-128 of "
                        "[A-Za-z0-9._~-])\n",
                        a->method);
                return EXIT_USAGE;
            }
            cJSON *doc = json_arg("the JSON argument", argc == 4 ? argv[3] : "{}", false);
            if (!doc)
                return EXIT_USAGE;
            a->body = cJSON_PrintUnformatted(doc);
            cJSON_Delete(doc);
        } else {
            long id;
            if (!parse_long(argv[2], 0, 2147483647L, &id)) {
                fprintf(stderr, "lade-cmd: command ID must be a non-negative integer\n");
                return EXIT_USAGE;
            }
            a->method = "command";
            cJSON *args = json_arg("JSON-ARGS", argc == 4 ? argv[3] : "{}", true);
            if (!args)
                return EXIT_USAGE;
            if (cJSON_GetObjectItemCaseSensitive(args, "id")) {
                fprintf(stderr, "lade-cmd: JSON-ARGS must not contain \"id\" (it is ID)\n");
                cJSON_Delete(args);
                return EXIT_USAGE;
            }
            cJSON *body = cJSON_CreateObject();
            cJSON_AddNumberToObject(body, "id", (double)id);
            while (args->child) {
                cJSON *it = cJSON_DetachItemViaPointer(args, args->child);
                cJSON_AddItemToObject(body, it->string, it);
            }
            cJSON_Delete(args);
            a->body = cJSON_PrintUnformatted(body);
            cJSON_Delete(body);
        }
        if (!a->body) {
            fprintf(stderr, "lade-cmd: out of memory\n");
            return EXIT_FAIL;
        }
        return 0;
    }
    if (strcmp(cmd, "twin-get") == 0) {
        if (argc != 2) {
            usage(stderr);
            return EXIT_USAGE;
        }
        a->cmd = CMD_TWIN_GET;
        a->device = argv[1];
        return device_arg(a->device) ? 0 : EXIT_USAGE;
    }
    if (strcmp(cmd, "twin-set") == 0) {
        if (argc != 3) {
            usage(stderr);
            return EXIT_USAGE;
        }
        a->cmd = CMD_TWIN_SET;
        a->device = argv[1];
        if (!device_arg(a->device))
            return EXIT_USAGE;
        cJSON *doc = json_arg("the desired patch", argv[2], true);
        if (!doc)
            return EXIT_USAGE;
        a->body = cJSON_PrintUnformatted(doc);
        cJSON_Delete(doc);
        return a->body ? 0 : EXIT_FAIL;
    }
    if (strcmp(cmd, "watch") == 0) {
        a->cmd = CMD_WATCH;
        static const struct option lo[] = {
            {"device", required_argument, 0, 'd'},
            {"count", required_argument, 0, 'n'},
            {"duration", required_argument, 0, 't'},
            {0, 0, 0, 0},
        };
        optind = 1;
        int ch;
        while ((ch = getopt_long(argc, argv, "+", lo, NULL)) != -1) {
            switch (ch) {
            case 'd':
                a->watch_device = optarg;
                if (!device_arg(optarg))
                    return EXIT_USAGE;
                break;
            case 'n':
                if (!parse_long(optarg, 1, 1000000000L, &a->watch_count)) {
                    fprintf(stderr, "lade-cmd: --count must be a positive integer\n");
                    return EXIT_USAGE;
                }
                break;
            case 't':
                if (!parse_seconds_ms(optarg, &a->watch_duration_ms)) {
                    fprintf(stderr, "lade-cmd: --duration must be seconds (0 < S <= 86400)\n");
                    return EXIT_USAGE;
                }
                break;
            default:
                usage(stderr);
                return EXIT_USAGE;
            }
        }
        if (optind != argc) {
            usage(stderr);
            return EXIT_USAGE;
        }
        return 0;
    }
    fprintf(stderr, "lade-cmd: unknown subcommand '%.40s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}

static int run(struct app *a, const struct lade_svc_file *sf)
{
    lade_err err = lade_loop_new(&a->loop);
    if (err) {
        fprintf(stderr, "lade-cmd: event loop: %s\n", lade_strerror(err));
        return EXIT_FAIL;
    }
    if (lade_loop_on_signal(a->loop, SIGINT, on_signal, a) != LADE_OK ||
        lade_loop_on_signal(a->loop, SIGTERM, on_signal, a) != LADE_OK) {
        fprintf(stderr, "lade-cmd: cannot handle signals\n");
        lade_loop_free(a->loop);
        return EXIT_FAIL;
    }
    struct lade_svc_opts o = {
        .loop = a->loop,
        .hub_host = a->host,
        .port = a->port,
        .ca_file = a->ca,
        .hosts_file = a->hosts_file,
        .service_name = sf->name,
        .key = sf->key,
        .key_len = sf->key_len,
        .token_ttl_s = 3600,
        .call_timeout_ms = a->timeout_ms,
        .cb = {.on_state = on_state, .on_event = on_event},
        .ud = a,
    };
    err = lade_svc_new(&a->svc, &o);
    if (err) {
        if (err == LADE_ERR_CONFIG)
            fprintf(stderr, "lade-cmd: CA bundle %s: unreadable or holds no certificate\n", a->ca);
        else
            fprintf(stderr, "lade-cmd: cannot set up the client: %s\n", lade_strerror(err));
        lade_loop_free(a->loop);
        return err == LADE_ERR_CONFIG || err == LADE_ERR_INVAL ? EXIT_USAGE : EXIT_FAIL;
    }
    lade_timer_init(&a->duration_timer, on_duration, a);
    if (a->cmd == CMD_WATCH) {
        err = lade_svc_subscribe_events(a->svc, true);
        if (err == LADE_OK && a->watch_duration_ms)
            err = lade_timer_arm_in(a->loop, &a->duration_timer, a->watch_duration_ms);
    }
    if (err == LADE_OK)
        err = lade_svc_start(a->svc);
    if (err == LADE_OK && !a->done)
        err = lade_loop_run(a->loop);
    if (err) {
        fprintf(stderr, "lade-cmd: %s\n", lade_strerror(err));
        a->exit_code = EXIT_FAIL;
    }
    a->done = true; /* callbacks from free (pending requests failing) are ignored */
    lade_timer_cancel(a->loop, &a->duration_timer);
    lade_svc_free(a->svc);
    lade_loop_free(a->loop);
    return a->exit_code;
}

int main(int argc, char **argv)
{
    static struct app app;
    struct app *a = &app;
    a->timeout_ms = 30000;
    long port = 0;
    static const struct option lo[] = {
        {"service", required_argument, 0, 's'},
        {"ca", required_argument, 0, 'c'},
        {"port", required_argument, 0, 'p'},
        {"host", required_argument, 0, 'H'},
        {"hosts-file", required_argument, 0, 'f'},
        {"timeout", required_argument, 0, 't'},
        {"verbose", no_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "+v", lo, NULL)) != -1) {
        switch (ch) {
        case 's':
            a->service_file = optarg;
            break;
        case 'c':
            a->ca = optarg;
            break;
        case 'p':
            if (!parse_long(optarg, 1, 65535, &port)) {
                fprintf(stderr, "lade-cmd: --port must be 1-65535\n");
                return EXIT_USAGE;
            }
            break;
        case 'H':
            a->host = optarg;
            break;
        case 'f':
            a->hosts_file = optarg;
            break;
        case 't':
            if (!parse_seconds_ms(optarg, &a->timeout_ms)) {
                fprintf(stderr, "lade-cmd: --timeout must be seconds (0 < S <= 86400)\n");
                return EXIT_USAGE;
            }
            break;
        case 'v':
            a->verbosity++;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!a->service_file || !a->ca) {
        fprintf(stderr, "lade-cmd: --service and --ca are required\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    int rc = parse_cmd(a, argc - optind, argv + optind);
    if (rc) {
        free(a->body);
        return rc;
    }

    lade_log_set_sink(log_sink, a);
    lade_log_set_level(a->verbosity >= 2 ? LADE_LOG_DEBUG : LADE_LOG_INFO);
    signal(SIGPIPE, SIG_IGN);

    struct lade_svc_file sf;
    char why[200];
    lade_err err = lade_svc_file_load(a->service_file, &sf, why, sizeof why);
    if (err) {
        if (err == LADE_ERR_NOT_FOUND)
            fprintf(stderr, "lade-cmd: service file %s does not exist\n", a->service_file);
        else if (err == LADE_ERR_IO)
            fprintf(stderr, "lade-cmd: cannot read the service file %s: %s\n", a->service_file,
                    why);
        else
            fprintf(stderr, "lade-cmd: service file %s: %s\n", a->service_file, why);
        free(a->body);
        return EXIT_USAGE;
    }
    snprintf(a->service_name, sizeof a->service_name, "%s", sf.name);
    if (!a->host)
        a->host = sf.hub_host;
    a->port = port ? (uint16_t)port : sf.hub_port ? sf.hub_port : 8883;

    rc = run(a, &sf);
    lade_svc_file_wipe(&sf);
    free(a->body);
    lade_log_set_sink(NULL, NULL);
    return rc;
}
