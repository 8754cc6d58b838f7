/* libFuzzer target: the observation decoder (portal side, src/proto/obs/obs.c). Input: one
 * message as received. Invariants: never crash; views stay inside the input; known numeric
 * values stay within LADE_OBS_VALUE_MAX; every decoded string unescapes; and an accepted message
 * re-encoded by a reporter decodes to the same values (round trip). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lade/obs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct lade_obs_msg msg;
    struct lade_obs_item items[64];
    lade_err err = lade_obs_decode(in, size, &msg, items, 64);
    if (err != LADE_OK) {
        CHECK(err == LADE_ERR_PROTO || err == LADE_ERR_TOO_BIG);
        return 0;
    }
    CHECK(msg.count <= 64);
    CHECK(msg.wall_s >= 0 && msg.wall_s <= LADE_OBS_WALL_MAX);

    static struct lade_obs_reporter rep; /* re-initialised below for every input */
    CHECK(lade_obs_init(&rep, NULL, 0) == LADE_OK);
    size_t known = 0;
    for (size_t k = 0; k < msg.count; k++) {
        const struct lade_obs_item *it = &items[k];
        CHECK(it->raw.p >= in && it->raw.p + it->raw.n <= in + size);
        CHECK(it->def == lade_obs_find(it->id));
        char s[LADE_OBS_STR_MAX + 1];
        size_t sn = 0;
        if (it->is_str)
            CHECK(lade_obs_unescape(it->raw, s, sizeof s, &sn) == LADE_OK);
        if (!it->def)
            continue;
        known++;
        if (it->is_str) {
            CHECK(it->def->type == LADE_OBS_STR);
            CHECK(lade_obs_set_str(&rep, it->id, s, sn, 0) == LADE_OK);
        } else {
            CHECK(it->def->type != LADE_OBS_STR);
            CHECK(it->value <= LADE_OBS_VALUE_MAX && it->value >= -LADE_OBS_VALUE_MAX);
            CHECK(lade_obs_set_int(&rep, it->id, it->value, 0) == LADE_OK);
        }
    }
    if (known == 0)
        return 0;
    /* Round trip: the first message of a reporter is a full snapshot of what was set. */
    static char out[LADE_OBS_MSG_MAX + 1];
    size_t len = 0, seen = 0;
    bool more = true;
    while (more) {
        CHECK(lade_obs_encode(&rep, 0, msg.wall_s, out, sizeof out, &len, &more) == LADE_OK);
        CHECK(len > 0 && len <= LADE_OBS_MSG_MAX);
        struct lade_obs_msg m2;
        struct lade_obs_item it2[LADE_OBS_IDS];
        CHECK(lade_obs_decode(out, len, &m2, it2, LADE_OBS_IDS) == LADE_OK);
        CHECK(m2.snapshot && m2.wall_s == msg.wall_s);
        for (size_t j = 0; j < m2.count; j++) {
            size_t k = 0;
            while (k < msg.count && items[k].id != it2[j].id)
                k++;
            CHECK(k < msg.count);
            CHECK(items[k].is_str == it2[j].is_str);
            if (it2[j].is_str) {
                char a[LADE_OBS_STR_MAX + 1], b[LADE_OBS_STR_MAX + 1];
                size_t an, bn;
                CHECK(lade_obs_unescape(items[k].raw, a, sizeof a, &an) == LADE_OK);
                CHECK(lade_obs_unescape(it2[j].raw, b, sizeof b, &bn) == LADE_OK);
                CHECK(an == bn && memcmp(a, b, an) == 0);
            } else {
                CHECK(items[k].value == it2[j].value);
            }
            seen++;
        }
    }
    CHECK(seen == known);
    return 0;
}
