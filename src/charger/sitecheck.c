/* The site check on demand (SPEC R18, R19): the direct method siteCheck runs the probes of
 * lade-check (include/lade/siteprobe.h: DHCP, DNS, NTP, outbound TCP + TLS) on the charger's
 * own loop, from where the charger stands, with its factory hosts; the verdict goes to the twin
 * (reported "siteCheck"), the status file and the log. docs/charger.md "Site check".
 *
 * What it sends is kept small (R12: metered links; twin patches are billed in 4 KB blocks and
 * the reported document is limited to 32 KB): per finding only its id, status, summary and
 * remedy (no measured "data"), texts shortened until the patch fits SC_PATCH_MAX. Nothing in
 * it comes from the charger's secrets: the findings name hosts, addresses and certificates.
 */
#include "agent.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lade/clock.h"
#include "lade/dnsres.h"
#include "lade/iothub.h"
#include "lade/log.h"
#include "lade/siteprobe.h"
#include "lade/sitecheck.h"

/* The patch {"siteCheck":{...}} at most: a quarter of the reported document's 32 KB. */
#define SC_PATCH_MAX 8192u

static void on_done_timer(struct lade_loop *loop, struct lade_timer *t, void *ud);

void sc_init(struct lade_charger *c)
{
    memset(&c->sc, 0, sizeof c->sc);
    lade_check_report_init(&c->sc.report);
    lade_timer_init(&c->sc.done_timer, on_done_timer, c);
}

/* Frees the probe and its findings (the result is kept in c->sc.last). */
static void release(struct lade_charger *c)
{
    lade_timer_cancel(c->loop, &c->sc.done_timer);
    lade_siteprobe_free(c->sc.probe);
    c->sc.probe = NULL;
    lade_check_report_free(&c->sc.report);
    lade_check_report_init(&c->sc.report);
}

static void on_done_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    release(ud);
}

/* text cut to at most max bytes at a UTF-8 boundary, "…" marking the cut. */
static void cut(const char *text, size_t max, char *out, size_t cap)
{
    size_t n = strlen(text);
    if (n <= max || max < 8) {
        snprintf(out, cap, "%s", n <= max ? text : "");
        return;
    }
    size_t k = max - 3; /* room for "…" */
    while (k > 0 && ((unsigned char)text[k] & 0xC0) == 0x80)
        k--;
    snprintf(out, cap, "%.*s\xE2\x80\xA6", (int)k, text);
}

/* {"at","status","exit","checks":[{"id","status","summary","remedy"}]}, texts cut to max
 * bytes each; only the findings worse than a pass when problems_only. */
static cJSON *compact(const struct lade_check_report *r, int64_t at_s, size_t max,
                      bool problems_only)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "at", (double)at_s);
    cJSON_AddStringToObject(o, "status", lade_check_status_name(lade_check_worst(r)));
    cJSON_AddNumberToObject(o, "exit", lade_check_exit_status(r));
    cJSON *arr = cJSON_AddArrayToObject(o, "checks");
    char text[LADE_CHECK_TEXT_MAX + 4];
    for (size_t i = 0; arr && i < r->n; i++) {
        const struct lade_check_item *it = &r->items[i];
        if (problems_only && it->status == LADE_CHECK_PASS)
            continue;
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(arr, e)) {
            cJSON_Delete(e);
            break;
        }
        cJSON_AddStringToObject(e, "id", it->id);
        cJSON_AddStringToObject(e, "status", lade_check_status_name(it->status));
        cut(it->summary, max, text, sizeof text);
        cJSON_AddStringToObject(e, "summary", text);
        cut(it->remedy, max, text, sizeof text);
        cJSON_AddStringToObject(e, "remedy", text);
    }
    return o;
}

/* The result to report: the whole texts when they fit SC_PATCH_MAX, else shorter ones, else
 * only the problems. *len is the patch's size. */
static cJSON *fit(const struct lade_check_report *r, int64_t at_s, size_t *len)
{
    static const size_t caps[] = {LADE_CHECK_TEXT_MAX, 240, 160, 100, 60};
    *len = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
            cJSON *o = compact(r, at_s, caps[k], pass == 1);
            char *s = o ? cJSON_PrintUnformatted(o) : NULL;
            size_t n = s ? strlen(s) + sizeof "{\"siteCheck\":}" - 1 : 0;
            free(s);
            if (o && n <= SC_PATCH_MAX) {
                *len = n;
                return o;
            }
            cJSON_Delete(o);
        }
    }
    return NULL;
}

/* Sends {"siteCheck":last} as a reported patch; false when it could not go out now. */
static bool report_twin(struct lade_charger *c)
{
    if (!c->sc.last || c->link != LADE_LINK_ONLINE)
        return false;
    cJSON *patch = cJSON_CreateObject();
    if (!patch)
        return false;
    cJSON_AddItemReferenceToObject(patch, "siteCheck", c->sc.last);
    char *body = cJSON_PrintUnformatted(patch);
    cJSON_Delete(patch);
    char topic[96];
    bool ok = body && !lade_iothub_twin_report_topic(++c->rid, topic, sizeof topic, NULL) &&
              agent_publish(c, topic, body, strlen(body), 0, NULL) == LADE_OK;
    free(body);
    return ok;
}

static void on_probe_done(void *ud)
{
    struct lade_charger *c = ud;
    const struct lade_check_report *r = &c->sc.report;
    c->sc.running = false;
    c->sc.last_done_ms = lade_mono_ms();
    size_t len = 0;
    cJSON *res = fit(r, agent_wall_s(c), &len);
    unsigned cnt[4] = {0};
    const char *worst_id = "";
    enum lade_check_status worst = LADE_CHECK_PASS;
    for (size_t i = 0; i < r->n; i++) {
        cnt[r->items[i].status & 3]++;
        if (r->items[i].status > worst) {
            worst = r->items[i].status;
            worst_id = r->items[i].id;
        }
    }
    LOG_I(c->log_tag,
          "site check: %s (exit %d): %u pass, %u note, %u warn, %u fail%s%s; report %zu bytes",
          lade_check_status_name(lade_check_worst(r)), lade_check_exit_status(r), cnt[0], cnt[1],
          cnt[2], cnt[3], worst_id[0] ? "; first worst: " : "", worst_id, len);
    if (res) {
        cJSON_Delete(c->sc.last);
        c->sc.last = res;
        c->sc.pending = !report_twin(c);
    } else {
        LOG_E(c->log_tag, "site check: report not made (out of memory)");
    }
    agent_write_status(c);
    /* The probe is freed from the loop, not from inside its own callback. */
    agent_arm(c, &c->sc.done_timer, lade_mono_ms());
}

static void answer(char *body, size_t cap, const char *json)
{
    snprintf(body, cap, "%s", json);
}

void sc_method(struct lade_charger *c, int *status, char *body, size_t cap)
{
    uint64_t now = lade_mono_ms();
    if (c->sc.running) {
        *status = 409;
        answer(body, cap, "{\"error\":\"running\"}");
        return;
    }
    if (c->sc.last_done_ms && now - c->sc.last_done_ms < SC_MIN_GAP_MS) {
        uint64_t left_ms = SC_MIN_GAP_MS - (now - c->sc.last_done_ms);
        *status = 429;
        snprintf(body, cap, "{\"error\":\"too soon\",\"retryAfterS\":%" PRIu64 "}",
                 (left_ms + 999) / 1000);
        return;
    }
    release(c); /* a finished probe not freed yet */
    const struct lade_settings *s = &c->set;
    struct lade_siteprobe_cfg cfg = {
        .ifname = s->net_interface[0] ? s->net_interface : NULL,
        .dhcp = s->net_interface[0] != 0,
        .new_clients = 1,
        .hub_host = s->hub_host,
        .hub_port = s->hub_port,
        .ca_file = s->ca_file,
        .fw_hosts = s->firmware_hosts,
        .fw_port = s->firmware_port,
        .ntp_host = s->ntp_host,
        .ntp_port = s->ntp_port,
        .on_charger = true,
    };
    lade_err e = lade_dnsres_parse_servers(s->fallback_dns, cfg.fallbacks, LADE_SITEPROBE_MAX_DNS,
                                           &cfg.n_fallbacks);
    if (e != LADE_OK && e != LADE_ERR_NOSPACE)
        cfg.n_fallbacks = 0;
    /* The site's servers as the charger uses them now: its network's (DHCP), else the user's
     * dns_servers; none known: the probe asks DHCP (managed interface) or reads resolv.conf. */
    if (c->net.n_dns) {
        cfg.n_dns = c->net.n_dns < LADE_SITEPROBE_MAX_DNS ? c->net.n_dns : LADE_SITEPROBE_MAX_DNS;
        memcpy(cfg.dns, c->net.dns, cfg.n_dns * sizeof cfg.dns[0]);
    } else if (s->dns_servers[0]) {
        e = lade_dnsres_parse_servers(s->dns_servers, cfg.dns, LADE_SITEPROBE_MAX_DNS, &cfg.n_dns);
        if (e != LADE_OK && e != LADE_ERR_NOSPACE)
            cfg.n_dns = 0;
    }
    e = lade_siteprobe_start(c->loop, &cfg, &c->sc.report, on_probe_done, c, &c->sc.probe);
    if (e != LADE_OK) {
        c->sc.probe = NULL;
        LOG_W(c->log_tag, "site check not started: %s", lade_strerror(e));
        *status = 500;
        snprintf(body, cap, "{\"error\":\"%s\"}", lade_strerror(e));
        return;
    }
    c->sc.running = true;
    LOG_I(c->log_tag, "site check started (%s, DHCP %s, %zu site DNS server%s, %zu fallback%s)",
          cfg.ifname ? cfg.ifname : "routing table", cfg.dhcp ? "probed" : "not probed", cfg.n_dns,
          cfg.n_dns == 1 ? "" : "s", cfg.n_fallbacks, cfg.n_fallbacks == 1 ? "" : "s");
    agent_write_status(c);
    *status = 202;
    answer(body, cap, "{\"started\":true}");
}

void sc_link_up(struct lade_charger *c)
{
    if (c->sc.pending && report_twin(c))
        c->sc.pending = false;
}

void sc_status_json(const struct lade_charger *c, cJSON *o)
{
    cJSON_AddBoolToObject(o, "site_check_running", c->sc.running);
    if (c->sc.last)
        cJSON_AddItemToObject(o, "siteCheck", cJSON_Duplicate(c->sc.last, true));
    else
        cJSON_AddNullToObject(o, "siteCheck");
}

void sc_stop(struct lade_charger *c)
{
    if (c->sc.running)
        LOG_I(c->log_tag, "site check stopped unfinished");
    c->sc.running = false;
    release(c);
}

void sc_free(struct lade_charger *c)
{
    sc_stop(c);
    cJSON_Delete(c->sc.last);
    c->sc.last = NULL;
}
