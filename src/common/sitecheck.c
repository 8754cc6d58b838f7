/* lade — the site network check's report: findings, the table for people, JSON for tools.
 * include/lade/sitecheck.h; docs/lade-check.md. */
#include "lade/sitecheck.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

const char *lade_check_status_name(enum lade_check_status s)
{
    switch (s) {
    case LADE_CHECK_PASS:
        return "pass";
    case LADE_CHECK_NOTE:
        return "note";
    case LADE_CHECK_WARN:
        return "warn";
    case LADE_CHECK_FAIL:
        return "fail";
    }
    return "?";
}

void lade_check_report_init(struct lade_check_report *r)
{
    memset(r, 0, sizeof *r);
}

void lade_check_report_free(struct lade_check_report *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        cJSON_Delete(r->items[i].data);
    free(r->items);
    memset(r, 0, sizeof *r);
}

/* Copies src into dst[cap], cutting at a UTF-8 character boundary with "…" when too long. */
static void copy_cut(char *dst, size_t cap, const char *src)
{
    size_t len = strlen(src);
    if (len < cap) {
        memcpy(dst, src, len + 1);
        return;
    }
    static const char ell[] = "\xe2\x80\xa6"; /* … */
    size_t keep = cap - sizeof ell;           /* room for the ellipsis and the NUL */
    while (keep > 0 && ((unsigned char)src[keep] & 0xC0) == 0x80)
        keep--; /* do not split a multi-byte character */
    memcpy(dst, src, keep);
    memcpy(dst + keep, ell, sizeof ell);
}

struct lade_check_item *lade_check_add(struct lade_check_report *r, const char *id,
                                       enum lade_check_status status, cJSON *data,
                                       const char *remedy, const char *fmt, ...)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct lade_check_item *items = realloc(r->items, cap * sizeof *items);
        if (!items) {
            cJSON_Delete(data);
            r->incomplete = true;
            return NULL;
        }
        r->items = items;
        r->cap = cap;
    }
    struct lade_check_item *it = &r->items[r->n++];
    memset(it, 0, sizeof *it);
    copy_cut(it->id, sizeof it->id, id);
    size_t sec = strcspn(id, ".");
    if (sec >= sizeof it->section)
        sec = sizeof it->section - 1;
    memcpy(it->section, id, sec);
    it->section[sec] = '\0';
    it->status = status;
    it->data = data;
    char buf[2 * LADE_CHECK_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    copy_cut(it->summary, sizeof it->summary, buf);
    copy_cut(it->remedy, sizeof it->remedy, remedy ? remedy : "");
    return it;
}

const struct lade_check_item *lade_check_find(const struct lade_check_report *r, const char *id)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->items[i].id, id) == 0)
            return &r->items[i];
    return NULL;
}

enum lade_check_status lade_check_worst(const struct lade_check_report *r)
{
    enum lade_check_status w = LADE_CHECK_PASS;
    for (size_t i = 0; i < r->n; i++)
        if (r->items[i].status > w)
            w = r->items[i].status;
    return w;
}

int lade_check_exit_status(const struct lade_check_report *r)
{
    if (r->incomplete)
        return 3;
    switch (lade_check_worst(r)) {
    case LADE_CHECK_FAIL:
        return 2;
    case LADE_CHECK_WARN:
        return 1;
    default:
        return 0;
    }
}

/* ---------------------------------------------------------------- text */

static const char *section_title(const char *s)
{
    static const struct {
        const char *id, *title;
    } t[] = {
        {"dhcp", "DHCP (addresses for the chargers)"},
        {"dns", "DNS (names of the cloud services)"},
        {"time", "Time (NTP)"},
        {"reach", "Outbound connections (firewall)"},
        {"wifi", "WiFi"},
        {"plan", "Capacity and data plan"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(s, t[i].id) == 0)
            return t[i].title;
    return s;
}

/* Display width of a UTF-8 string (every code point one column: the texts are Latin). */
static size_t cols(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

/* Writes text wrapped at width columns; continuation lines start with indent spaces, the
 * first line is assumed to be at column indent already. */
static void wrap(FILE *f, const char *text, unsigned indent, unsigned width)
{
    size_t col = indent;
    const char *p = text;
    bool first = true;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        size_t wl = strcspn(p, " ");
        size_t wc = cols(p, wl);
        if (!first && col + 1 + wc > width) {
            fprintf(f, "\n%*s", (int)indent, "");
            col = indent;
        } else if (!first) {
            fputc(' ', f);
            col++;
        }
        fwrite(p, 1, wl, f);
        col += wc;
        p += wl;
        first = false;
    }
    fputc('\n', f);
}

static const char *colour_of(enum lade_check_status s)
{
    switch (s) {
    case LADE_CHECK_PASS:
        return "\x1b[32m"; /* green */
    case LADE_CHECK_NOTE:
        return "\x1b[36m"; /* cyan */
    case LADE_CHECK_WARN:
        return "\x1b[33m"; /* yellow */
    case LADE_CHECK_FAIL:
        return "\x1b[1;31m"; /* bold red */
    }
    return "";
}

lade_err lade_check_render_text(const struct lade_check_report *r, FILE *f, bool colour,
                                unsigned width)
{
    if (width < 40)
        width = 100;
    const unsigned indent = 8; /* "  PASS  " */
    bool *done = calloc(r->n ? r->n : 1, sizeof *done);
    if (!done)
        return LADE_ERR_NOMEM;
    /* Sections in the order they first appear; a section's findings together. */
    for (size_t i = 0; i < r->n; i++) {
        if (done[i])
            continue;
        const char *sec = r->items[i].section;
        fprintf(f, "%s%s%s\n", colour ? "\x1b[1m" : "", section_title(sec),
                colour ? "\x1b[0m" : "");
        for (size_t j = i; j < r->n; j++) {
            const struct lade_check_item *it = &r->items[j];
            if (done[j] || strcmp(it->section, sec) != 0)
                continue;
            done[j] = true;
            char word[8];
            const char *name = lade_check_status_name(it->status);
            for (size_t k = 0; k < 5; k++)
                word[k] = (char)(name[k] >= 'a' && name[k] <= 'z' ? name[k] - 32 : name[k]);
            fprintf(f, "  %s%s%s  ", colour ? colour_of(it->status) : "", word,
                    colour ? "\x1b[0m" : "");
            wrap(f, it->summary, indent, width);
            if (it->remedy[0]) {
                fprintf(f, "%*s%s→%s ", (int)indent, "", colour ? "\x1b[1m" : "",
                        colour ? "\x1b[0m" : "");
                wrap(f, it->remedy, indent + 2, width);
            }
        }
        fputc('\n', f);
    }
    free(done);
    size_t count[4] = {0};
    for (size_t i = 0; i < r->n; i++)
        count[r->items[i].status]++;
    enum lade_check_status w = lade_check_worst(r);
    const char *verdict = r->incomplete          ? "INCOMPLETE: out of memory, findings were lost"
                          : w == LADE_CHECK_FAIL ? "NOT READY: fix the failed checks"
                          : w == LADE_CHECK_WARN ? "READY WITH WARNINGS: read the warnings"
                          : count[LADE_CHECK_PASS] == 0 ? "NOTHING CHECKED: only notes"
                          : count[LADE_CHECK_NOTE] ? "READY: every check passed (read the notes)"
                                                   : "READY: every check passed";
    fprintf(f, "%s%s%s\n", colour ? colour_of(w == LADE_CHECK_NOTE ? LADE_CHECK_PASS : w) : "",
            verdict, colour ? "\x1b[0m" : "");
    fprintf(f, "passed %zu, warnings %zu, failed %zu, notes %zu\n", count[LADE_CHECK_PASS],
            count[LADE_CHECK_WARN], count[LADE_CHECK_FAIL], count[LADE_CHECK_NOTE]);
    return ferror(f) ? LADE_ERR_IO : LADE_OK;
}

/* ---------------------------------------------------------------- JSON */

lade_err lade_check_render_json(const struct lade_check_report *r, const cJSON *extra, FILE *f)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return LADE_ERR_NOMEM;
    bool ok =
        cJSON_AddNumberToObject(root, "version", 1) &&
        cJSON_AddStringToObject(root, "status", lade_check_status_name(lade_check_worst(r))) &&
        cJSON_AddNumberToObject(root, "exit", lade_check_exit_status(r)) &&
        cJSON_AddBoolToObject(root, "complete", !r->incomplete);
    cJSON *arr = ok ? cJSON_AddArrayToObject(root, "checks") : NULL;
    ok = arr != NULL;
    for (size_t i = 0; ok && i < r->n; i++) {
        const struct lade_check_item *it = &r->items[i];
        cJSON *o = cJSON_CreateObject();
        ok = o && cJSON_AddItemToArray(arr, o) && cJSON_AddStringToObject(o, "id", it->id) &&
             cJSON_AddStringToObject(o, "section", it->section) &&
             cJSON_AddStringToObject(o, "status", lade_check_status_name(it->status)) &&
             cJSON_AddStringToObject(o, "summary", it->summary) &&
             cJSON_AddStringToObject(o, "remedy", it->remedy);
        if (ok && it->data) {
            cJSON *d = cJSON_Duplicate(it->data, true);
            ok = d && cJSON_AddItemToObject(o, "data", d);
        }
    }
    if (ok && extra) {
        for (const cJSON *c = extra->child; ok && c; c = c->next) {
            cJSON *d = c->string ? cJSON_Duplicate(c, true) : NULL;
            ok = d && cJSON_AddItemToObject(root, c->string, d);
        }
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return LADE_ERR_NOMEM;
    fputs(text, f);
    fputc('\n', f);
    free(text);
    return ferror(f) ? LADE_ERR_IO : LADE_OK;
}

/* ---------------------------------------------------------------- capacity planning */

/* "104.7 kB", "3.2 MB". */
static void size_text(double bytes, char *buf, size_t cap)
{
    if (bytes >= 1e6)
        snprintf(buf, cap, "%.1f MB", bytes / 1e6);
    else
        snprintf(buf, cap, "%.1f kB", bytes / 1e3);
}

void lade_check_plan(struct lade_check_report *r, const struct lade_check_plan *in)
{
    unsigned n = in->chargers ? in->chargers : 1;
    double spd = in->sessions_per_day < 0 ? 2 : in->sessions_per_day;
    unsigned upd = in->fw_updates_per_year ? in->fw_updates_per_year : 4;
    double img = in->fw_image_mb > 0 ? in->fw_image_mb : 16;
    const char *bearer = in->bearer && in->bearer[0] ? in->bearer : NULL;
    bool lte = !bearer || strcmp(bearer, "lte") == 0;

    /* Addresses: one per charger on a LAN bearer (R4); LTE chargers use their own SIM. */
    if (!bearer || strcmp(bearer, "lte") != 0) {
        unsigned want = n + (n + 4) / 5; /* 20 % spare: replacements, a laptop, gateways */
        cJSON *d = cJSON_CreateObject();
        cJSON_AddNumberToObject(d, "chargers", n);
        cJSON_AddNumberToObject(d, "addresses_advised", want);
        lade_check_add(r, "plan.addresses", LADE_CHECK_NOTE, d,
                       "Keep the chargers' network dedicated: on a shared network other devices "
                       "take the addresses and chargers lose their connection.",
                       "%u charger%s need%s %u address%s, one each; plan the DHCP pool for at "
                       "least %u (20 %% spare).",
                       n, n == 1 ? "" : "s", n == 1 ? "s" : "", n, n == 1 ? "" : "es", want);
    }

    double day = LADE_PLAN_IDLE_DAY_B + spd * LADE_PLAN_SESSION_B;
    double month = day * 30.5 + img * 1e6 * upd / 12.0;
    double ref_day = LADE_PLAN_REF_DAY_B + spd * LADE_PLAN_REF_SESSION_B;
    char s_day[32], s_month[32], s_site[32], s_ref[32], s_sess[32], s_idle[32];
    size_text(day, s_day, sizeof s_day);
    size_text(month, s_month, sizeof s_month);
    size_text(month * n, s_site, sizeof s_site);
    size_text(ref_day * 30.5, s_ref, sizeof s_ref);
    size_text(LADE_PLAN_SESSION_B, s_sess, sizeof s_sess);
    size_text(LADE_PLAN_IDLE_DAY_B, s_idle, sizeof s_idle);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "idle_day_bytes", LADE_PLAN_IDLE_DAY_B);
    cJSON_AddNumberToObject(d, "session_bytes", LADE_PLAN_SESSION_B);
    cJSON_AddNumberToObject(d, "sessions_per_day", spd);
    cJSON_AddNumberToObject(d, "per_charger_day_bytes", day);
    cJSON_AddNumberToObject(d, "per_charger_month_bytes", month);
    cJSON_AddNumberToObject(d, "site_month_bytes", month * n);
    cJSON_AddNumberToObject(d, "reference_month_bytes", ref_day * 30.5);
    /* Where the bytes go: a LAN bearer's chargers share the site's internet connection; an
     * LTE-M charger carries its own on its SIM. */
    bool lan = !bearer || strcmp(bearer, "lte") != 0;
    char where[200];
    if (lan && lte)
        snprintf(where, sizeof where,
                 "on WiFi, PLC or Ethernet the site's internet connection carries %s a month for "
                 "the %u charger%s; on LTE-M each SIM carries %s",
                 s_site, n, n == 1 ? "" : "s", s_month);
    else if (lan)
        snprintf(where, sizeof where,
                 "the site's internet connection carries %s a month for the %u charger%s", s_site,
                 n, n == 1 ? "" : "s");
    else
        snprintf(where, sizeof where, "each charger's SIM carries it (%s a month for all %u)",
                 s_site, n);
    lade_check_add(r, "plan.data", LADE_CHECK_NOTE, d, NULL,
                   "Data per charger: %s a day (idle %s, plus %.1f sessions of about %s), about "
                   "%s a month counting %u firmware updates of %.0f MB a year; %s. The reference "
                   "system uses about %s a month per charger. Measured by lade's benchmark "
                   "(bench/RESULTS.md), IP headers included.",
                   s_day, s_idle, spd, s_sess, s_month, upd, img, where, s_ref);
    if (lte) {
        double plan_mb = month * 2 / 1e6; /* twice the expected use: retries, diagnostics */
        lade_check_add(r, "plan.lte", LADE_CHECK_NOTE, NULL,
                       "Test LTE-M coverage at every charger position with a phone on the SIM's "
                       "operator (also with garage doors closed), before installing.",
                       "LTE-M: every charger needs its own SIM (never shared); a data plan of at "
                       "least %.0f MB a month per SIM covers it twice over. LTE-M reaches "
                       "further indoors than ordinary 4G, but coverage varies from spot to spot.",
                       plan_mb < 1 ? 1 : plan_mb);
    }
}
