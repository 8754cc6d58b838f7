/* e2e helpers for lade-charger processes (see harness_charger.h). */
#include "harness_charger.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

void h_capture(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    out[strcspn(out, "\n")] = 0;
    assert_int_equal(pclose(p), 0);
}

void h_service_token(const struct h_hub *hub, const char *name, char *token, size_t cap)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "[ -f '%s/%s.conf' ] || '%s/lade-factory' service --registry '%s' --name %s "
             "--hub-host %s --out '%s/%s.conf' >/dev/null && "
             "'%s/lade-factory' token --registry '%s' --name %s --hub-host %s --ttl 3600",
             hub->dir, name, h_build_dir(), hub->registry, name, hub->host, hub->dir, name,
             h_build_dir(), hub->registry, name, hub->host);
    h_capture(cmd, token, cap);
    assert_non_null(strstr(token, "skn="));
}

void h_charger_provision(struct h_charger *c, const struct h_hub *hub, const char *id,
                         const char *factory_args, const char *user_conf)
{
    memset(c, 0, sizeof *c);
    snprintf(c->id, sizeof c->id, "%s", id);
    assert_int_equal(
        h_sh("'%s/lade-factory' create --registry '%s' --id %s --hub-host %s "
             "--hub-port %d --ca '%s' --out '%s/chargers' --hosts-file '%s/hosts' "
             "--ntp-host ntp.lade.test --fallback-dns 127.0.0.1 --time-source host %s >/dev/null",
             h_build_dir(), hub->registry, id, hub->host, hub->port, hub->ca, hub->dir, hub->dir,
             factory_args ? factory_args : ""),
        0);
    snprintf(c->dir, sizeof c->dir, "%s/chargers/%s", hub->dir, id);
    snprintf(c->state_dir, sizeof c->state_dir, "%s/state", c->dir);
    snprintf(c->factory, sizeof c->factory, "%s/factory.conf", c->dir);
    snprintf(c->user, sizeof c->user, "%s/user.conf", c->dir);
    snprintf(c->status, sizeof c->status, "%s/status.json", c->dir);
    snprintf(c->log, sizeof c->log, "%s/charger.log", c->dir);
    size_t n = strlen(user_conf ? user_conf : "") + strlen(c->state_dir) + 32;
    char *text = malloc(n);
    assert_non_null(text);
    snprintf(text, n, "%sstate_dir = %s\n", user_conf ? user_conf : "", c->state_dir);
    h_write_file(c->user, text);
    free(text);
}

void h_charger_start(struct h_charger *c)
{
    char bin[600];
    snprintf(bin, sizeof bin, "%s/lade-charger", h_build_dir());
    unlink(c->status);
    const char *argv[] = {bin,     "--factory", c->factory, "--user",
                          c->user, "--status",  c->status,  NULL};
    c->pid = h_spawn(argv, NULL, c->log);
}

void h_charger_dump(const struct h_charger *c, const char *why)
{
    char *s = h_read_file(c->status);
    char *l = h_read_file(c->log);
    size_t n = l ? strlen(l) : 0;
    fprintf(stderr, "%s: %s\nstatus: %s\nlog (tail):\n%s\n", c->id, why, s ? s : "(none)",
            l ? l + (n > 6000 ? n - 6000 : 0) : "(none)");
    free(s);
    free(l);
}

void h_charger_expect_running(struct h_charger *c)
{
    int ws = 0;
    if (!h_running(c->pid, &ws)) {
        c->pid = 0;
        h_charger_dump(c, "exited by itself");
        fail_msg("%s exited by itself (wait status 0x%x)", c->id, ws);
    }
}

void h_charger_kill9(struct h_charger *c)
{
    h_charger_expect_running(c);
    int ws = h_stop(c->pid, SIGKILL, 5000);
    c->pid = 0;
    assert_true(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
}

void h_charger_stop(struct h_charger *c)
{
    h_charger_expect_running(c);
    int ws = h_stop(c->pid, SIGTERM, 10000);
    c->pid = 0;
    if (!WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
        h_charger_dump(c, "did not exit cleanly");
        fail_msg("%s did not exit cleanly (wait status 0x%x)", c->id, ws);
    }
    assert_int_equal(h_file_count(c->log, "AddressSanitizer"), 0);
    assert_int_equal(h_file_count(c->log, "runtime error:"), 0);
}

bool h_charger_wait_status(const struct h_charger *c, const char *needle, uint32_t timeout_ms)
{
    if (h_wait_file_contains(c->status, needle, timeout_ms))
        return true;
    char why[300];
    snprintf(why, sizeof why, "no '%s' in the status", needle);
    h_charger_dump(c, why);
    return false;
}

double h_charger_num(const struct h_charger *c, const char *key)
{
    for (int tries = 0; tries < 100; tries++) {
        char *s = h_read_file(c->status);
        cJSON *o = s ? cJSON_Parse(s) : NULL;
        free(s);
        if (!o) { /* not written yet */
            usleep(20000);
            continue;
        }
        const cJSON *v = NULL;
        if (strchr(key, '.')) { /* a path: "net.lease_left_s", "dns.ms" */
            char part[64];
            const char *p = key;
            v = o;
            while (v && *p) {
                size_t n = strcspn(p, ".");
                snprintf(part, sizeof part, "%.*s", (int)(n < 63 ? n : 63), p);
                v = cJSON_GetObjectItemCaseSensitive(v, part);
                p += n + (p[n] == '.');
            }
        } else {
            const cJSON *ch = cJSON_GetObjectItemCaseSensitive(o, "charging");
            v = ch ? cJSON_GetObjectItemCaseSensitive(ch, key) : NULL;
            if (!v)
                v = cJSON_GetObjectItemCaseSensitive(o, key);
        }
        if (!cJSON_IsNumber(v) && !cJSON_IsBool(v)) {
            cJSON_Delete(o);
            h_charger_dump(c, key);
            fail_msg("%s: no number '%s' in the status", c->id, key);
        }
        double d = cJSON_IsBool(v) ? cJSON_IsTrue(v) : v->valuedouble;
        cJSON_Delete(o);
        return d;
    }
    fail_msg("%s: status file %s unreadable", c->id, c->status);
    return 0;
}

bool h_charger_wait_num(const struct h_charger *c, const char *key, double want,
                        uint32_t timeout_ms)
{
    uint64_t end = h_now_ms() + timeout_ms;
    do {
        if (h_charger_num(c, key) == want)
            return true;
        usleep(20000);
    } while (h_now_ms() < end);
    char why[200];
    snprintf(why, sizeof why, "%s never became %g", key, want);
    h_charger_dump(c, why);
    return false;
}
