/* libFuzzer target: charger settings files (lade_settings_parse), both kinds.
 *
 * Input: byte 0 selects the starting state (bit 0: defaults, or defaults plus a complete factory
 * file); the rest is the file text (cut at the first NUL, as lade_settings_load refuses NULs).
 * The same text is parsed as a FACTORY and as a USER file from the same start. Invariants:
 *   - a USER parse never changes a factory-only field, and always returns LADE_OK;
 *   - a FACTORY parse returns LADE_OK or LADE_ERR_CONFIG (never anything else);
 *   - both kinds leave identical user fields (user lines are applied the same way);
 *   - every field stays within its type and range, strings stay NUL-terminated;
 *   - parsing the same text again changes nothing (idempotent);
 *   - a report message is a bounded C string and never echoes a device key value. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lade/iothub.h"
#include "lade/log.h"
#include "lade/settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            abort();                                                                               \
    } while (0)

/* Factory-only fields, as in the keys table of src/common/settings.c. */
#define FIELD(f)                                                                                   \
    {                                                                                              \
        offsetof(struct lade_settings, f), sizeof(((struct lade_settings *)0)->f)                  \
    }
static const struct {
    size_t off, size;
} factory_fields[] = {
    FIELD(device_id),      FIELD(device_key),   FIELD(device_key_len),  FIELD(hub_host),
    FIELD(hub_port),       FIELD(hosts_file),   FIELD(ca_file),         FIELD(ntp_host),
    FIELD(firmware_hosts), FIELD(fallback_dns), FIELD(firmware_pubkey),
};
static const struct {
    size_t off, size;
} user_fields[] = {
    FIELD(log_level),        FIELD(keepalive_s),
    FIELD(token_ttl_s),      FIELD(telemetry_interval_s),
    FIELD(backoff_min_ms),   FIELD(backoff_max_ms),
    FIELD(backoff_stable_s), FIELD(connect_timeout_ms),
};
#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char factory_file[] = "# lade factory settings\n"
                                   "device_id = fuzz-dev-1\n"
                                   "device_key = AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
                                   "hub_host = hub.example\n"
                                   "hub_port = 8883\n"
                                   "hosts_file = /tmp/hosts\n"
                                   "ca_file = /tmp/ca.pem\n"
                                   "ntp_host = ntp.example\n"
                                   "firmware_hosts = fw1.example,fw2.example\n"
                                   "fallback_dns = 192.0.2.53\n"
                                   "firmware_pubkey = abc\n";

/* Device key values seen in the text; a report must never contain one. */
struct secrets {
    char keys[8][128];
    unsigned line[8]; /* the line it is on: messages name their file:line */
    size_t n;
};

static void report(void *ud, const char *msg)
{
    const struct secrets *s = ud;
    size_t len = strnlen(msg, 512);
    CHECK(len < 512);
    const char *colon = strchr(msg, ':');
    unsigned line = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
    for (size_t i = 0; i < s->n; i++)
        CHECK(s->line[i] != line || !strstr(msg, s->keys[i]));
}

static bool b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* True if [q, q+n) is inside "device_key<name chars>" somewhere on the line [bol, eol): such
 * text may be echoed as an (unknown) key name, which is not a leak. */
static bool in_key_name(const char *bol, const char *eol, const char *q, size_t n)
{
    static const char tag[] = "device_key";
    for (const char *p = bol; (p = memmem(p, (size_t)(eol - p), tag, sizeof tag - 1)); p++) {
        const char *e = p + sizeof tag - 1;
        while (e < eol && name_char(*e))
            e++;
        if (memmem(p, (size_t)(e - p), q, n))
            return true;
    }
    return false;
}

/* On every line that mentions device_key, whatever follows the key name that looks like a key
 * (a Base64 run of 16 or more characters) is a secret, whether or not the line parses: a typo
 * such as "device_key: <key>" must not put the key into a log either. */
static void collect_secrets(const char *text, struct secrets *s)
{
    static const char tag[] = "device_key";
    s->n = 0;
    for (const char *p = strstr(text, tag); p && s->n < N(s->keys); p = strstr(p + 1, tag)) {
        unsigned line = 1;
        const char *bol = text;
        for (const char *c = text; c < p; c++)
            if (*c == '\n') {
                line++;
                bol = c + 1;
            }
        const char *eol = strchr(p, '\n');
        if (!eol)
            eol = p + strlen(p);
        const char *q = p + sizeof tag - 1;
        while (name_char(*q))
            q++; /* the rest of a (possibly mistyped) key name */
        while (q < eol && s->n < N(s->keys)) {
            if (!b64_char(*q)) {
                q++;
                continue;
            }
            const char *r = q;
            while (b64_char(*r))
                r++;
            size_t n = (size_t)(r - q);
            if (n >= 16 && n < sizeof s->keys[0] && !in_key_name(bol, eol, q, n)) {
                memcpy(s->keys[s->n], q, n);
                s->keys[s->n][n] = 0;
                s->line[s->n] = line;
                s->n++;
            }
            q = r;
        }
    }
}

static bool same(const struct lade_settings *a, const struct lade_settings *b, size_t off,
                 size_t size)
{
    return memcmp((const char *)a + off, (const char *)b + off, size) == 0;
}

static void check_valid(const struct lade_settings *s)
{
    CHECK(memchr(s->device_id, 0, sizeof s->device_id));
    CHECK(!s->device_id[0] || lade_iothub_device_id_valid(s->device_id));
    CHECK(s->device_key_len == 0 ||
          (s->device_key_len >= 16 && s->device_key_len <= LADE_DEVICE_KEY_MAX));
    CHECK(memchr(s->hub_host, 0, sizeof s->hub_host));
    CHECK(s->hub_port >= 1);
    CHECK(memchr(s->hosts_file, 0, sizeof s->hosts_file));
    CHECK(memchr(s->ca_file, 0, sizeof s->ca_file));
    CHECK(memchr(s->ntp_host, 0, sizeof s->ntp_host));
    CHECK(memchr(s->firmware_hosts, 0, sizeof s->firmware_hosts));
    CHECK(memchr(s->fallback_dns, 0, sizeof s->fallback_dns));
    CHECK(memchr(s->firmware_pubkey, 0, sizeof s->firmware_pubkey));
    CHECK(s->log_level >= LADE_LOG_ERROR && s->log_level <= LADE_LOG_TRACE);
    CHECK(s->keepalive_s >= 5 && s->keepalive_s <= 1177);
    CHECK(s->token_ttl_s >= 20 && s->token_ttl_s <= 30u * 86400u);
    CHECK(s->telemetry_interval_s >= 1 && s->telemetry_interval_s <= 86400);
    CHECK(s->backoff_min_ms >= 100 && s->backoff_min_ms <= 600000);
    CHECK(s->backoff_max_ms >= s->backoff_min_ms && s->backoff_max_ms <= 3600000);
    CHECK(s->backoff_stable_s >= 1 && s->backoff_stable_s <= 86400);
    CHECK(s->connect_timeout_ms >= 500 && s->connect_timeout_ms <= 120000);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool once;
    if (!once) {
        once = true;
        lade_log_set_level(LADE_LOG_ERROR);
    }
    if (size < 1)
        return 0;
    char *text = malloc(size);
    if (!text)
        return 0;
    memcpy(text, data + 1, size - 1);
    text[size - 1] = 0;

    struct secrets sec;
    collect_secrets(text, &sec);
    struct secrets none = {.n = 0};

    static struct lade_settings start, fac, usr, again;
    lade_settings_defaults(&start);
    if (data[0] & 1)
        CHECK(lade_settings_parse(&start, "factory", factory_file, LADE_SETTINGS_FACTORY, report,
                                  &none) == LADE_OK);
    check_valid(&start);

    memcpy(&fac, &start, sizeof fac);
    lade_err ef = lade_settings_parse(&fac, "f", text, LADE_SETTINGS_FACTORY, report, &sec);
    CHECK(ef == LADE_OK || ef == LADE_ERR_CONFIG);
    check_valid(&fac);

    memcpy(&usr, &start, sizeof usr);
    CHECK(lade_settings_parse(&usr, "u", text, LADE_SETTINGS_USER, report, &sec) == LADE_OK);
    check_valid(&usr);

    for (size_t i = 0; i < N(factory_fields); i++)
        CHECK(same(&usr, &start, factory_fields[i].off, factory_fields[i].size));
    /* The same without trusting the list above (a field added later is factory-only unless
     * it is listed in user_fields): outside the user fields, nothing changed at all. */
    memcpy(&again, &usr, sizeof usr);
    for (size_t i = 0; i < N(user_fields); i++)
        memcpy((char *)&again + user_fields[i].off, (char *)&start + user_fields[i].off,
               user_fields[i].size);
    CHECK(memcmp(&again, &start, sizeof start) == 0);
    for (size_t i = 0; i < N(user_fields); i++)
        CHECK(same(&usr, &fac, user_fields[i].off, user_fields[i].size));

    memcpy(&again, &fac, sizeof fac);
    CHECK(lade_settings_parse(&again, "f", text, LADE_SETTINGS_FACTORY, report, &sec) == ef);
    CHECK(memcmp(&again, &fac, sizeof fac) == 0);
    memcpy(&again, &usr, sizeof usr);
    CHECK(lade_settings_parse(&again, "u", text, LADE_SETTINGS_USER, report, &sec) == LADE_OK);
    CHECK(memcmp(&again, &usr, sizeof usr) == 0);

    free(text);
    return 0;
}
