/* libFuzzer target: the firmware download's pure core (include/lade/fwfetch.h, part 1) — what a
 * server's response head and a state file on disk feed it.
 *
 * Input: byte 0 selects, the rest is the subject (copied to a buffer of its exact size, so an
 * over-read is an ASan report):
 *   0  a partial-state file: decode; a decoded state encodes, and decodes back to the same;
 *   1  a response head, fields separated by '\n': status, Content-Type, Content-Length ("-":
 *      none), Content-Range, ETag, the If-Range sent, the offset asked for (the image length
 *      is 1000; an empty field is an absent header). Invariants: BODY and REDIRECT carry no
 *      error, the others one and a reason; BODY starts at 0 or at the offset asked for, and
 *      never after the image's end; a 206 is taken only for a range request with exactly
 *      that range; the reason is a terminated string;
 *   2  a Content-Range value: parsed, first <= last < complete, and printed back it parses to
 *      the same;
 *   3  a redirect target "scheme\nuser\nhost\nport" against two allowed hosts on port 443:
 *      accepted only for https, no user, an allowed host and port 443. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lade/fwfetch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

#define LEN 1000u

static bool terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

static void state_file(const char *p, size_t n)
{
    struct lade_fwfetch_state st, back;
    if (lade_fwfetch_state_decode(p, n, &st) != LADE_OK)
        return;
    CHECK(st.offset <= st.length && st.length > 0);
    char buf[LADE_FWFETCH_STATE_MAX];
    size_t len;
    CHECK(lade_fwfetch_state_encode(&st, buf, sizeof buf, &len) == LADE_OK);
    CHECK(len == strlen(buf));
    CHECK(lade_fwfetch_state_decode(buf, len, &back) == LADE_OK);
    CHECK(memcmp(&st, &back, sizeof st) == 0);
}

/* Splits p[0..n) (NUL-terminated copy) at '\n' into up to max fields. */
static size_t split(char *p, char **f, size_t max)
{
    size_t k = 0;
    f[k++] = p;
    for (char *c = p; *c && k < max; c++)
        if (*c == '\n') {
            *c = '\0';
            f[k++] = c + 1;
        }
    return k;
}

static void response_head(char *p)
{
    char *f[7] = {0};
    size_t k = split(p, f, 7);
    for (size_t i = k; i < 7; i++)
        f[i] = "";
    struct lade_fwfetch_head h = {
        .status = strtol(f[0], NULL, 10),
        .content_type = *f[1] ? f[1] : NULL,
        .has_length = strcmp(f[2], "-") != 0,
        .length = strtoull(f[2], NULL, 10),
        .content_range = *f[3] ? f[3] : NULL,
        .etag = *f[4] ? f[4] : NULL,
    };
    const char *if_range = *f[5] ? f[5] : NULL;
    uint64_t offset = strtoull(f[6], NULL, 10) % LEN;
    struct lade_fwfetch_verdict v;
    memset(&v, 0xa5, sizeof v);
    lade_fwfetch_check_head(&h, offset, if_range, LEN, &v);
    CHECK(terminated(v.reason, sizeof v.reason));
    switch (v.kind) {
    case LADE_FWFETCH_V_BODY:
        CHECK(v.err == LADE_OK);
        CHECK(h.status == 200 || h.status == 206);
        CHECK(v.offset == 0 || v.offset == offset);
        CHECK(v.offset < LEN);
        CHECK(!h.has_length || h.length <= LEN);
        if (h.status == 206) {
            uint64_t a, b, c;
            CHECK(offset > 0 && v.offset == offset && !v.restart);
            CHECK(lade_fwfetch_parse_content_range(h.content_range, &a, &b, &c) == LADE_OK);
            CHECK(a == offset && b == LEN - 1 && c == LEN);
        } else {
            CHECK(v.offset == 0 && v.restart == (offset > 0));
        }
        break;
    case LADE_FWFETCH_V_REDIRECT:
        CHECK(v.err == LADE_OK);
        break;
    case LADE_FWFETCH_V_RETRY:
    case LADE_FWFETCH_V_HOST_FAIL:
        CHECK(v.err != LADE_OK && v.reason[0]);
        break;
    default:
        abort();
    }
}

static void content_range(const char *p)
{
    uint64_t a, b, c;
    if (lade_fwfetch_parse_content_range(p, &a, &b, &c) != LADE_OK)
        return;
    CHECK(a <= b && b < c);
    char buf[80];
    snprintf(buf, sizeof buf, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, a, b, c);
    uint64_t a2, b2, c2;
    CHECK(lade_fwfetch_parse_content_range(buf, &a2, &b2, &c2) == LADE_OK);
    CHECK(a == a2 && b == b2 && c == c2);
}

static void redirect(char *p)
{
    char *f[4] = {0};
    size_t k = split(p, f, 4);
    for (size_t i = k; i < 4; i++)
        f[i] = NULL;
    static const char *const hosts[] = {"fw1.example", "fw2.example"};
    char why[LADE_FWFETCH_REASON_MAX];
    size_t idx = 99;
    lade_err err = lade_fwfetch_redirect_check(f[0], f[1] && *f[1] ? f[1] : NULL, f[2], f[3], hosts,
                                               2, 443, &idx, why, sizeof why);
    CHECK(terminated(why, sizeof why));
    if (err == LADE_OK) {
        CHECK(idx < 2 && why[0] == '\0');
        CHECK(strcasecmp(f[0], "https") == 0);
        CHECK(!f[1] || !*f[1]);
        CHECK(strncasecmp(f[2], hosts[idx], strlen(hosts[idx])) == 0);
        CHECK(!f[3] || strtoul(f[3], NULL, 10) == 443);
    } else {
        CHECK(err == LADE_ERR_PROTO && why[0]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    uint8_t mode = data[0] % 4;
    data++;
    size--;
    if (mode == 0) {
        char *exact = malloc(size ? size : 1);
        if (!exact)
            return 0;
        memcpy(exact, data, size);
        state_file(exact, size);
        free(exact);
        return 0;
    }
    if (memchr(data, '\0', size))
        return 0; /* header values and URL parts are C strings by then */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (mode == 1)
        response_head(text);
    else if (mode == 2)
        content_range(text);
    else
        redirect(text);
    free(text);
    return 0;
}
