/* libFuzzer target: SAS token parser and verifier, and the hub's topic/ACL/username parsers
 * (src/hub/acl.c, added by fuzz_sas_parse.cmake). Input: the first byte selects a parser, the
 * rest is the untrusted text. Invariants: never crash, views stay inside the input, and a token
 * that parses either verifies or is refused with AUTH/EXPIRED (never anything else). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/hub/hub.h"
#include "lade/sas.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void in_input(struct lade_str s, const char *p, size_t n)
{
    if (s.p && (s.p < p || s.p + s.n > p + n))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    const char *in = (const char *)data + 1;
    size_t n = size - 1;

    if (sel < 128) {
        struct lade_sas t;
        if (lade_sas_parse(in, n, &t) != LADE_OK)
            return 0;
        in_input(t.sr, in, n);
        in_input(t.se, in, n);
        in_input(t.skn, in, n);
        if (!t.sr.p || !t.se.p || t.expiry_s < 0)
            abort();
        static const uint8_t key[32] = {1, 2, 3};
        lade_err err = lade_sas_verify(&t, key, sizeof key, 1000, sel, "hub/devices/dev");
        if (err != LADE_OK && err != LADE_ERR_AUTH && err != LADE_ERR_EXPIRED)
            abort();
        return 0;
    }

    /* The hub parsers take NUL-terminated strings (Mosquitto hands them C strings). */
    char *s = malloc(n + 1);
    if (!s)
        return 0;
    memcpy(s, in, n);
    s[n] = 0;
    struct hub_topic t;
    enum hub_who who = (sel & 1) ? HUB_SERVICE : HUB_DEVICE;
    if (hub_publish_allowed(who, "dev-1", s, (sel >> 1) & 3, (sel >> 3) & 1, &t)) {
        in_input(t.rid, s, n);
        in_input(t.device, s, n);
        in_input(t.method, s, n);
        if (t.route != HUB_ROUTE_PASS && !hub_rid_valid(t.rid))
            abort();
        if (((sel >> 1) & 3) > 1 || ((sel >> 3) & 1))
            abort(); /* QoS 2 and retain are never allowed */
    }
    (void)hub_subscribe_allowed(who, "dev-1", s);
    (void)hub_read_allowed(who, "dev-1", s);
    (void)hub_device_username_ok("hub.example", "dev-1", s);
    free(s);
    return 0;
}
