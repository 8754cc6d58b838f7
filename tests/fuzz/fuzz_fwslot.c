/* libFuzzer target: the boot-state record codec (lade_fwslot_decode, lade_fwslot_decode2) and
 * the boot decision on whatever decodes (src/proto/fwslot). The record is read from flash at
 * every start, so a damaged one must never crash the agent or pick no slot. Input: one record
 * copy, or two (split at data[0] * 2). Invariants: decode answers OK, INVAL or CONFIG; a decoded
 * record re-encodes to the same bytes; decode2 takes a copy with the highest sequence; the boot
 * decision picks a or b, leaves no TRIAL slot it did not pick, and its result encodes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lade/fwslot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

static void one(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1); /* exact size: an over-read is an ASan report */
    if (!buf)
        return;
    if (size)
        memcpy(buf, data, size);
    struct lade_fwslot fs;
    lade_err err = lade_fwslot_decode(buf, size, &fs);
    CHECK(err == LADE_OK || err == LADE_ERR_INVAL || err == LADE_ERR_CONFIG);
    if (err == LADE_OK) {
        uint8_t again[LADE_FWSLOT_RECORD_LEN];
        size_t len = 0;
        CHECK(lade_fwslot_encode(&fs, again, sizeof again, &len) == LADE_OK);
        CHECK(len == size && memcmp(again, buf, len) == 0);
        struct lade_fwslot_res res;
        lade_fwslot_boot(&fs, &res);
        CHECK(res.slot == 0 || res.slot == 1);
        CHECK(fs.booted == res.slot && fs.primary == res.slot);
        CHECK(fs.slot[res.slot ^ 1].state != LADE_FWSLOT_TRIAL);
        CHECK(lade_fwslot_encode(&fs, again, sizeof again, &len) == LADE_OK);
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size);
    if (size > 1) {
        size_t cut = (size_t)data[0] * 2 < size - 1 ? (size_t)data[0] * 2 : size - 1;
        const uint8_t *c0 = data + 1, *c1 = data + 1 + cut;
        size_t n0 = cut, n1 = size - 1 - cut;
        struct lade_fwslot fs, a;
        int used, next, valid;
        lade_err err = lade_fwslot_decode2(c0, n0, c1, n1, &fs, &used, &next, &valid);
        CHECK(err == LADE_OK || err == LADE_ERR_NOT_FOUND || err == LADE_ERR_CONFIG);
        if (err == LADE_OK) {
            CHECK((used == 0 || used == 1) && next == (used ^ 1) && valid >= 1);
            if (lade_fwslot_decode(used ? c0 : c1, used ? n0 : n1, &a) == LADE_OK)
                CHECK(a.seq <= fs.seq);
        }
    }
    return 0;
}
