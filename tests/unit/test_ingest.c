/* Unit tests for the portal's reading of charger messages (include/lade/ingest.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lade/ingest.h"
#include "lade/obs.h"

static const char MID[] = "0123456789abcdef0123456789abcdef";

static void parse(const char *props, const char *payload, struct lade_ingest_msg *m)
{
    lade_ingest_parse(lade_str_c(props), (const uint8_t *)payload, strlen(payload), m);
}

static void test_state(void **state)
{
    (void)state;
    static struct lade_ingest_msg m;
    parse("%24.ct=application%2Fjson&%24.ce=utf-8",
          "{\"t\":1795460000,\"s\":1,\"o\":{\"710\":3,\"507\":16.5,\"150\":\"LTE\"}}", &m);
    assert_int_equal(m.kind, LADE_INGEST_STATE);
    assert_int_equal(m.wall_s, 1795460000);
    assert_true(m.snapshot);
    assert_int_equal(m.n_items, 3);
    assert_int_equal(m.items[0].id, 710);
    assert_int_equal(m.items[0].value, 3);
    assert_int_equal(m.items[1].value, 165); /* dA */
    assert_true(m.items[2].is_str);

    /* What a charger's reporter writes is read back. */
    static struct lade_obs_reporter r;
    assert_int_equal(lade_obs_init(&r, NULL, 0), LADE_OK);
    assert_int_equal(lade_obs_set_int(&r, 513, 11040, 0), LADE_OK);
    assert_int_equal(lade_obs_set_int(&r, 553, 12345, 0), LADE_OK);
    char buf[LADE_OBS_MSG_MAX + 1];
    size_t len;
    bool more;
    assert_int_equal(lade_obs_encode(&r, 0, 1795460001, buf, sizeof buf, &len, &more), LADE_OK);
    parse("", buf, &m);
    assert_int_equal(m.kind, LADE_INGEST_STATE);
    assert_int_equal(m.n_items, 2);
    assert_int_equal(m.items[1].value, 12345);
}

static void session_payload(char *out, size_t cap, const char *inner)
{
    /* escape quotes as the charger does */
    size_t o = (size_t)snprintf(out, cap, "{\"t\":1795460100,\"o\":{\"723\":\"");
    for (const char *p = inner; *p && o + 3 < cap; p++) {
        if (*p == '"')
            out[o++] = '\\';
        out[o++] = *p;
    }
    snprintf(out + o, cap - o, "\"}}");
}

static void test_session(void **state)
{
    (void)state;
    static struct lade_ingest_msg m;
    char inner[400], payload[800], props[200];
    snprintf(inner, sizeof inner,
             "{\"SessionId\":\"%s\",\"Energy\":12.345,\"StartDateTime\":\"2026-11-23T18:50:34Z\","
             "\"EndDateTime\":\"2026-11-23T19:50:34Z\",\"ReliableClock\":false,\"PeakPowerW\":"
             "11040,\"Phases\":3,\"EndReason\":\"unplugged\",\"EndEstimated\":true}",
             MID);
    session_payload(payload, sizeof payload, inner);
    snprintf(props, sizeof props, "%%24.ct=application%%2Fjson&%%24.ce=utf-8&%%24.mid=%s", MID);
    parse(props, payload, &m);
    assert_int_equal(m.kind, LADE_INGEST_SESSION);
    assert_string_equal(m.session.id, MID);
    assert_int_equal(m.session.energy_wh, 12345);
    assert_int_equal(m.session.start_s, 1795459834);
    assert_int_equal(m.session.end_s, 1795459834 + 3600);
    assert_false(m.session.reliable_clock);
    assert_true(m.session.end_estimated);
    assert_int_equal(m.session.peak_power_w, 11040);
    assert_int_equal(m.session.phases, 3);
    assert_string_equal(m.session.end_reason, "unplugged");

    /* The compact form (optional fields left out) is fine too. */
    snprintf(inner, sizeof inner,
             "{\"SessionId\":\"%s\",\"Energy\":0,\"StartDateTime\":\"2026-11-23T18:50:34.5Z\","
             "\"EndDateTime\":\"2026-11-23T18:50:34Z\",\"ReliableClock\":true}",
             MID);
    session_payload(payload, sizeof payload, inner);
    parse(props, payload, &m);
    assert_int_equal(m.kind, LADE_INGEST_SESSION);
    assert_int_equal(m.session.energy_wh, 0);
}

static void test_bad(void **state)
{
    (void)state;
    static struct lade_ingest_msg m;
    char props[200], payload[800], inner[400];
    snprintf(props, sizeof props, "%%24.mid=%s", MID);
    static const char *const bad_inner[] = {
        "{\"SessionId\":\"ffffffffffffffffffffffffffffffff\",\"Energy\":1,\"StartDateTime\":"
        "\"2026-11-23T18:50:34Z\",\"EndDateTime\":\"2026-11-23T18:50:34Z\",\"ReliableClock\":true}",
        "{\"SessionId\":\"%s\",\"Energy\":-1,\"StartDateTime\":\"2026-11-23T18:50:34Z\","
        "\"EndDateTime\":\"2026-11-23T18:50:34Z\",\"ReliableClock\":true}",
        "{\"SessionId\":\"%s\",\"Energy\":1.0001,\"StartDateTime\":\"2026-11-23T18:50:34Z\","
        "\"EndDateTime\":\"2026-11-23T18:50:34Z\",\"ReliableClock\":true}",
        "{\"SessionId\":\"%s\",\"Energy\":1,\"StartDateTime\":\"2026-02-30T18:50:34Z\","
        "\"EndDateTime\":\"2026-11-23T18:50:34Z\",\"ReliableClock\":true}",
        "{\"SessionId\":\"%s\",\"Energy\":1,\"StartDateTime\":\"2026-11-23T18:50:35Z\","
        "\"EndDateTime\":\"2026-11-23T18:50:34Z\",\"ReliableClock\":true}",
        "{\"SessionId\":\"%s\",\"Energy\":1,\"StartDateTime\":\"2026-11-23T18:50:34Z\","
        "\"EndDateTime\":\"2026-11-23T18:50:34Z\",\"ReliableClock\":1}",
        "[1,2]",
    };
    for (size_t i = 0; i < sizeof bad_inner / sizeof bad_inner[0]; i++) {
        /* "%s" in the template stands for the mid */
        const char *at = strstr(bad_inner[i], "%s");
        if (at)
            snprintf(inner, sizeof inner, "%.*s%s%s", (int)(at - bad_inner[i]), bad_inner[i], MID,
                     at + 2);
        else
            snprintf(inner, sizeof inner, "%s", bad_inner[i]);
        session_payload(payload, sizeof payload, inner);
        parse(props, payload, &m);
        assert_int_equal(m.kind, LADE_INGEST_INVALID);
        assert_true(m.reason[0] != 0);
    }
    /* $.mid without 723, 723 without $.mid, a bad mid, 723 with other values */
    parse(props, "{\"t\":1,\"o\":{\"710\":3}}", &m);
    assert_int_equal(m.kind, LADE_INGEST_INVALID);
    parse("", "{\"t\":1,\"o\":{\"723\":\"{}\"}}", &m);
    assert_int_equal(m.kind, LADE_INGEST_INVALID);
    parse("%24.mid=ABC", "{\"t\":1,\"o\":{\"723\":\"{}\"}}", &m);
    assert_int_equal(m.kind, LADE_INGEST_INVALID);
    /* not observations */
    parse("", "{\"type\":\"state\",\"fw\":\"0.1.0\"}", &m);
    assert_int_equal(m.kind, LADE_INGEST_OTHER);
    parse("", "garbage", &m);
    assert_int_equal(m.kind, LADE_INGEST_INVALID);
    parse("", "", &m);
    assert_int_equal(m.kind, LADE_INGEST_INVALID);
}

static void test_iso_time(void **state)
{
    (void)state;
    int64_t t;
    assert_int_equal(lade_ingest_iso_time("1970-01-01T00:00:00Z", &t), LADE_OK);
    assert_int_equal(t, 0);
    assert_int_equal(lade_ingest_iso_time("2024-02-29T12:00:00.123Z", &t), LADE_OK);
    assert_int_equal(t, 1709208000);
    assert_int_equal(lade_ingest_iso_time("2023-02-29T12:00:00Z", &t), LADE_ERR_PROTO);
    assert_int_equal(lade_ingest_iso_time("2024-13-01T00:00:00Z", &t), LADE_ERR_PROTO);
    assert_int_equal(lade_ingest_iso_time("2024-01-01T00:00:00", &t), LADE_ERR_PROTO);
    assert_int_equal(lade_ingest_iso_time("2024-01-01T00:00:00+01:00", &t), LADE_ERR_PROTO);
    assert_int_equal(lade_ingest_iso_time("2024-01-01 00:00:00Z", &t), LADE_ERR_PROTO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state),
        cmocka_unit_test(test_session),
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_iso_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
