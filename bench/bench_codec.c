/* bench_codec — CPU cost of lade's pure cores, for `make bench` (scripts/bench.sh).
 *
 *   bench_codec [RUNS [MS_PER_RUN]]        defaults: 7 runs, 200 ms per run
 *
 * Each operation is timed against a baseline doing comparable raw work on the same bytes, in
 * the same process, interleaved run by run (subject, baseline, subject, ...) so frequency
 * changes and noisy neighbours hit both alike. A run is a clock_gettime(CLOCK_MONOTONIC) loop of
 * N calls through a function pointer (the same call overhead for subject and baseline), N
 * calibrated once so one run lasts about MS_PER_RUN. Prints a Markdown table: the median ns per
 * operation over the runs, the spread (min..max) and median(subject) / median(baseline).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "lade/iothub.h"
#include "lade/mqtt.h"
#include "lade/sas.h"

#define HUB_HOST  "hub.lade.test"
#define DEVICE_ID "LDE0000001"
#define EXPIRY_S  1900000000

static volatile uint64_t sink; /* keeps results observable so nothing is optimised away */

/* Inputs built once in setup(). */
static uint8_t pkt[1024]; /* an encoded telemetry PUBLISH */
static size_t pkt_len;
static char topic[256];
static char payload[512];
static size_t payload_len;
static uint8_t out[1024];
static uint8_t key[32];
static char token[LADE_SAS_TOKEN_MAX + 1];
static size_t token_len;
static char string_to_sign[256]; /* what the SAS HMAC covers: sr "\n" se */
static size_t sts_len;

static void fail(const char *what)
{
    fprintf(stderr, "bench_codec: %s failed\n", what);
    exit(1);
}

static void setup(void)
{
    /* The telemetry the charger sends (src/charger/charger.c send_telemetry), QoS 1. */
    struct lade_iothub_prop props[] = {{"$.ct", "application/json"}, {"$.ce", "utf-8"}};
    if (lade_iothub_telemetry_topic(DEVICE_ID, props, 2, topic, sizeof topic, NULL))
        fail("telemetry topic");
    payload_len = (size_t)snprintf(payload, sizeof payload,
                                   "{\"type\":\"state\",\"fw\":\"0.1.0\",\"uptime_s\":86400,"
                                   "\"connects\":3,\"failures\":1,\"bytes_in\":123456,"
                                   "\"bytes_out\":234567,\"time\":1767225600}");
    struct lade_mqtt_publish p = {.topic = lade_str_c(topic),
                                  .payload = (const uint8_t *)payload,
                                  .payload_len = payload_len,
                                  .qos = 1,
                                  .packet_id = 7};
    if (lade_mqtt_encode_publish(&p, pkt, sizeof pkt, &pkt_len))
        fail("encode publish");

    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(i * 37 + 11);
    if (lade_sas_token_build(HUB_HOST, DEVICE_ID, key, sizeof key, EXPIRY_S, NULL, token,
                             sizeof token, &token_len))
        fail("token build");
    sts_len = (size_t)snprintf(string_to_sign, sizeof string_to_sign, "%s%%2Fdevices%%2F%s\n%d",
                               HUB_HOST, DEVICE_ID, EXPIRY_S);
}

/* ---- operations ---- */

static void op_frame_decode(void)
{
    struct lade_mqtt_frame f;
    struct lade_mqtt_publish p;
    if (lade_mqtt_frame(pkt, pkt_len, 0, &f) || lade_mqtt_decode_publish(&f, &p))
        fail("frame/decode");
    sink += p.payload_len + p.topic.n + p.packet_id;
}

static void op_encode(void)
{
    struct lade_mqtt_publish p = {.topic = lade_str_c(topic),
                                  .payload = (const uint8_t *)payload,
                                  .payload_len = payload_len,
                                  .qos = 1,
                                  .packet_id = 7};
    size_t size, n;
    if (lade_mqtt_publish_size(&p, &size) || lade_mqtt_encode_publish(&p, out, sizeof out, &n))
        fail("encode");
    sink += n + out[n - 1];
}

static void op_memcpy_packet(void)
{
    memcpy(out, pkt, pkt_len);
    sink += out[pkt_len - 1];
}

static void op_token_build(void)
{
    char t[LADE_SAS_TOKEN_MAX + 1];
    size_t n;
    if (lade_sas_token_build(HUB_HOST, DEVICE_ID, key, sizeof key, EXPIRY_S, NULL, t, sizeof t, &n))
        fail("token build");
    sink += n + (uint8_t)t[n - 1];
}

static void op_token_verify(void)
{
    struct lade_sas s;
    if (lade_sas_parse(token, token_len, &s) ||
        lade_sas_verify(&s, key, sizeof key, EXPIRY_S - 1800, 86400,
                        HUB_HOST "/devices/" DEVICE_ID))
        fail("token parse/verify");
    sink += (uint64_t)s.expiry_s + s.sig[0];
}

static void op_raw_hmac(void)
{
    uint8_t mac[32];
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), key, (int)sizeof key, (const uint8_t *)string_to_sign, sts_len, mac,
              &n))
        fail("HMAC");
    sink += n + mac[0];
}

/* ---- timing ---- */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static double run_ns_per_op(void (*fn)(void), uint64_t iters)
{
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++)
        fn();
    return (double)(now_ns() - t0) / (double)iters;
}

/* Iterations for about ms milliseconds (doubling until a probe lasts >= 20 ms). */
static uint64_t calibrate(void (*fn)(void), unsigned ms)
{
    uint64_t n = 256;
    for (;;) {
        uint64_t t0 = now_ns();
        for (uint64_t i = 0; i < n; i++)
            fn();
        uint64_t dt = now_ns() - t0;
        if (dt >= 20000000u)
            return n * (uint64_t)ms * 1000000u / dt + 1;
        n *= 2;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#define MAX_RUNS 99

static void compare(const char *name, void (*fn)(void), const char *base_name, void (*base)(void),
                    int runs, unsigned ms)
{
    double a[MAX_RUNS], b[MAX_RUNS];
    uint64_t na = calibrate(fn, ms), nb = calibrate(base, ms);
    for (int r = 0; r < runs; r++) {
        a[r] = run_ns_per_op(fn, na);
        b[r] = run_ns_per_op(base, nb);
    }
    double ma = median(a, runs), mb = median(b, runs);
    printf("| %s | %.1f | %.1f–%.1f | %s | %.1f | %.1f–%.1f | %.2f |\n", name, ma, a[0],
           a[runs - 1], base_name, mb, b[0], b[runs - 1], ma / mb);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 7;
    unsigned ms = argc > 2 ? (unsigned)atoi(argv[2]) : 200;
    if (runs < 1 || runs > MAX_RUNS || ms < 1) {
        fputs("usage: bench_codec [RUNS (1..99) [MS_PER_RUN]]\n", stderr);
        return 2;
    }
    setup();
    printf("Inputs: a telemetry PUBLISH, QoS 1, %zu B (topic %zu B, JSON payload %zu B); a device "
           "SAS token of %zu characters, 32-byte key, HMAC over %zu B.\n"
           "%d runs per operation, each ~%u ms; subject and baseline runs interleaved.\n\n",
           pkt_len, strlen(topic), payload_len, token_len, sts_len, runs, ms);
    printf("| operation | median ns/op | min–max | baseline (same bytes) | baseline ns/op | "
           "min–max | ratio |\n");
    printf("|---|---:|---:|---|---:|---:|---:|\n");
    compare("MQTT frame + decode PUBLISH (`lade_mqtt_frame` + `lade_mqtt_decode_publish`)",
            op_frame_decode, "memcpy of the packet", op_memcpy_packet, runs, ms);
    compare("MQTT encode PUBLISH (`lade_mqtt_publish_size` + `lade_mqtt_encode_publish`)",
            op_encode, "memcpy of the packet", op_memcpy_packet, runs, ms);
    compare("SAS token build (`lade_sas_token_build`)", op_token_build,
            "raw OpenSSL `HMAC()` SHA-256 of the string-to-sign", op_raw_hmac, runs, ms);
    compare("SAS parse + verify (`lade_sas_parse` + `lade_sas_verify`)", op_token_verify,
            "raw OpenSSL `HMAC()` SHA-256 of the string-to-sign", op_raw_hmac, runs, ms);
    return 0;
}
