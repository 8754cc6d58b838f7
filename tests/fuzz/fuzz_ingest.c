/* libFuzzer target: the portal's reading of charger messages (src/cloud/ingest.c). Input: the
 * topic's property bag, a NUL byte, then the payload. Invariants: never crash; a SESSION has a
 * 32-hex id equal to its $.mid, an end not before its start and a plausible energy; INVALID
 * always says why; STATE items stay within the decoder's limits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lade/ingest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t plen = nul ? (size_t)(nul - data) : size;
    struct lade_str props = {(const char *)data, plen};
    const uint8_t *payload = nul ? nul + 1 : data + size;
    size_t len = nul ? size - plen - 1 : 0;
    static struct lade_ingest_msg m;
    lade_ingest_parse(props, payload, len, &m);
    switch (m.kind) {
    case LADE_INGEST_INVALID:
        CHECK(m.reason[0] != 0);
        break;
    case LADE_INGEST_STATE:
        CHECK(m.n_items <= LADE_INGEST_ITEMS);
        for (size_t i = 0; i < m.n_items; i++)
            CHECK(m.items[i].raw.p >= (const char *)payload &&
                  m.items[i].raw.p + m.items[i].raw.n <= (const char *)payload + len);
        break;
    case LADE_INGEST_SESSION:
        CHECK(strlen(m.session.id) == 32);
        CHECK(m.session.end_s >= m.session.start_s);
        CHECK(m.session.energy_wh <= 1000000000000ull);
        CHECK(m.session.phases <= 3);
        break;
    case LADE_INGEST_OTHER:
        break;
    }
    return 0;
}
