/* Unit tests for the site check's report (src/common/sitecheck.c): findings, exit status, the
 * table (wrapping, colour, sections, verdict), JSON, the capacity plan; and resolv.conf parsing
 * of the probes (src/port/linux/siteprobe.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "lade/siteprobe.h"
#include "lade/sitecheck.h"

/* Renders into a malloc'd string. */
static char *render(const struct lade_check_report *r, bool json, bool colour, unsigned width)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    if (json)
        assert_int_equal(lade_check_render_json(r, NULL, f), LADE_OK);
    else
        assert_int_equal(lade_check_render_text(r, f, colour, width), LADE_OK);
    fclose(f);
    return buf;
}

static void test_exit_status(void **state)
{
    (void)state;
    struct lade_check_report r;
    lade_check_report_init(&r);
    assert_int_equal(lade_check_exit_status(&r), 0);
    assert_non_null(lade_check_add(&r, "dns.site", LADE_CHECK_PASS, NULL, NULL, "ok"));
    assert_non_null(lade_check_add(&r, "reach.inbound", LADE_CHECK_NOTE, NULL, NULL, "note"));
    assert_int_equal(lade_check_exit_status(&r), 0);
    assert_non_null(lade_check_add(&r, "wifi.channel", LADE_CHECK_WARN, NULL, "fix", "w"));
    assert_int_equal(lade_check_exit_status(&r), 1);
    assert_non_null(lade_check_add(&r, "reach.hub", LADE_CHECK_FAIL, NULL, "fix", "f"));
    assert_int_equal(lade_check_exit_status(&r), 2);
    assert_int_equal(lade_check_worst(&r), LADE_CHECK_FAIL);
    const struct lade_check_item *it = lade_check_find(&r, "wifi.channel");
    assert_non_null(it);
    assert_string_equal(it->section, "wifi");
    assert_null(lade_check_find(&r, "nope"));
    lade_check_report_free(&r);
}

static void test_long_text_cut_at_character(void **state)
{
    (void)state;
    struct lade_check_report r;
    lade_check_report_init(&r);
    char big[2000];
    /* "é" is two bytes: a cut in the middle of one would leave invalid UTF-8. */
    for (size_t i = 0; i + 2 < sizeof big; i += 2)
        memcpy(big + i, "\xc3\xa9", 2);
    big[sizeof big - 2] = '\0';
    struct lade_check_item *it = lade_check_add(&r, "x.y", LADE_CHECK_PASS, NULL, big, "%s", big);
    assert_non_null(it);
    size_t len = strlen(it->summary);
    assert_true(len < LADE_CHECK_TEXT_MAX);
    assert_memory_equal(it->summary + len - 3, "\xe2\x80\xa6", 3);
    /* Before the ellipsis: whole characters only. */
    assert_int_equal((len - 3) % 2, 0);
    assert_int_equal(strlen(it->remedy), len);
    lade_check_report_free(&r);
}

static void test_text_table(void **state)
{
    (void)state;
    struct lade_check_report r;
    lade_check_report_init(&r);
    lade_check_add(&r, "dns.site", LADE_CHECK_PASS, NULL, NULL, "All 5 names resolve.");
    lade_check_add(&r, "reach.hub", LADE_CHECK_FAIL, NULL,
                   "Allow outbound TCP port 8883 to hub.example in the firewall.",
                   "hub.example port 8883: no answer to the connection attempt: a firewall drops "
                   "outbound TCP 8883, which is what the chargers need for the cloud link.");
    lade_check_add(&r, "dns.fallback", LADE_CHECK_WARN, NULL, "Allow DNS.", "Blocked.");
    char *out = render(&r, false, false, 60);
    /* The DNS section holds both DNS findings, before the reach section. */
    char *dns = strstr(out, "DNS (names");
    char *reach = strstr(out, "Outbound connections");
    assert_non_null(dns);
    assert_non_null(reach);
    assert_true(dns < reach);
    assert_true(strstr(out, "  WARN  Blocked.") < reach);
    assert_non_null(strstr(out, "  FAIL  hub.example port 8883"));
    assert_non_null(strstr(out, "→ Allow outbound TCP port 8883"));
    assert_non_null(strstr(out, "NOT READY"));
    assert_non_null(strstr(out, "\npassed 1, warnings 1, failed 1, notes 0\n"));
    assert_null(strstr(out, "\x1b["));
    /* Wrapped at 60 columns, continuation lines indented. */
    for (char *line = out; *line;) {
        char *nl = strchr(line, '\n');
        size_t cols = 0;
        for (char *c = line; c < nl; c++)
            cols += ((unsigned char)*c & 0xC0) != 0x80;
        assert_true(cols <= 60);
        line = nl + 1;
    }
    assert_non_null(strstr(out, "\n        "));
    free(out);
    out = render(&r, false, true, 100);
    assert_non_null(strstr(out, "\x1b[1;31mFAIL\x1b[0m"));
    free(out);
    lade_check_report_free(&r);
}

static void test_json(void **state)
{
    (void)state;
    struct lade_check_report r;
    lade_check_report_init(&r);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "ms", 12);
    lade_check_add(&r, "time.ntp", LADE_CHECK_PASS, d, NULL, "answers \"quoted\"");
    lade_check_add(&r, "wifi.signal", LADE_CHECK_WARN, NULL, "Use PLC.", "-73 dBm");
    char *out = render(&r, true, false, 0);
    cJSON *j = cJSON_Parse(out);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "status")->valuestring, "warn");
    assert_int_equal(cJSON_GetObjectItem(j, "exit")->valueint, 1);
    cJSON *checks = cJSON_GetObjectItem(j, "checks");
    assert_int_equal(cJSON_GetArraySize(checks), 2);
    cJSON *c0 = cJSON_GetArrayItem(checks, 0);
    assert_string_equal(cJSON_GetObjectItem(c0, "id")->valuestring, "time.ntp");
    assert_string_equal(cJSON_GetObjectItem(c0, "section")->valuestring, "time");
    assert_string_equal(cJSON_GetObjectItem(c0, "summary")->valuestring, "answers \"quoted\"");
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(c0, "data"), "ms")->valueint, 12);
    cJSON *c1 = cJSON_GetArrayItem(checks, 1);
    assert_string_equal(cJSON_GetObjectItem(c1, "remedy")->valuestring, "Use PLC.");
    assert_null(cJSON_GetObjectItem(c1, "data"));
    cJSON_Delete(j);
    free(out);
    lade_check_report_free(&r);
}

static double num(const struct lade_check_item *it, const char *key)
{
    const cJSON *v = cJSON_GetObjectItem(it->data, key);
    assert_non_null(v);
    return v->valuedouble;
}

static void test_plan(void **state)
{
    (void)state;
    struct lade_check_report r;
    lade_check_report_init(&r);
    struct lade_check_plan p = {.chargers = 20, .sessions_per_day = 2};
    lade_check_plan(&r, &p);
    const struct lade_check_item *a = lade_check_find(&r, "plan.addresses");
    assert_non_null(a);
    assert_int_equal(a->status, LADE_CHECK_NOTE);
    assert_int_equal((int)num(a, "addresses_advised"), 24);
    assert_non_null(strstr(a->remedy, "dedicated"));
    const struct lade_check_item *d = lade_check_find(&r, "plan.data");
    assert_non_null(d);
    double day = num(d, "per_charger_day_bytes");
    assert_true(day == LADE_PLAN_IDLE_DAY_B + 2.0 * LADE_PLAN_SESSION_B);
    /* Well below the reference system's 3 MB a day + 5 MB a session. */
    assert_true(day * 20 < 13e6);
    assert_true(num(d, "site_month_bytes") == num(d, "per_charger_month_bytes") * 20);
    assert_non_null(lade_check_find(&r, "plan.lte")); /* no bearer given: all, LTE included */
    assert_int_equal(lade_check_exit_status(&r), 0);
    lade_check_report_free(&r);

    /* WiFi: no LTE note. */
    lade_check_report_init(&r);
    p = (struct lade_check_plan){.chargers = 1, .bearer = "wifi"};
    lade_check_plan(&r, &p);
    a = lade_check_find(&r, "plan.addresses");
    assert_non_null(strstr(a->summary, "1 charger needs 1 address,"));
    assert_null(lade_check_find(&r, "plan.lte"));
    lade_check_report_free(&r);

    /* LTE: no addresses from the site, a SIM each. */
    lade_check_report_init(&r);
    p = (struct lade_check_plan){.chargers = 3, .bearer = "lte", .sessions_per_day = -1};
    lade_check_plan(&r, &p);
    assert_null(lade_check_find(&r, "plan.addresses"));
    const struct lade_check_item *l = lade_check_find(&r, "plan.lte");
    assert_non_null(l);
    assert_non_null(strstr(l->summary, "own SIM"));
    lade_check_report_free(&r);
}

static void test_parse_resolv(void **state)
{
    (void)state;
    const char *text = "# generated\nsearch lan\nnameserver 192.168.1.1\n"
                       "nameserver   2001:db8::53\noptions edns0\nnameserver bogus\n"
                       "nameserver 127.0.0.53\nnameserver 10.0.0.1\nnameserver 10.0.0.2\n";
    struct lade_sockaddr a[4];
    size_t n = lade_siteprobe_parse_resolv(text, a, 4);
    assert_int_equal(n, 4);
    char s[LADE_SOCKADDR_STRLEN];
    assert_int_equal(lade_sockaddr_format(&a[0], s, sizeof s), LADE_OK);
    assert_string_equal(s, "192.168.1.1");
    assert_int_equal(lade_sockaddr_format(&a[1], s, sizeof s), LADE_OK);
    assert_string_equal(s, "2001:db8::53");
    assert_int_equal(lade_sockaddr_format(&a[3], s, sizeof s), LADE_OK);
    assert_string_equal(s, "10.0.0.1"); /* the cap: 10.0.0.2 is not read */
    assert_int_equal(lade_siteprobe_parse_resolv("", a, 4), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_status), cmocka_unit_test(test_long_text_cut_at_character),
        cmocka_unit_test(test_text_table),  cmocka_unit_test(test_json),
        cmocka_unit_test(test_plan),        cmocka_unit_test(test_parse_resolv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
