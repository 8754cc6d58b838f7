/* Charger settings files (see include/lade/settings.h). */
#include "lade/settings.h"
#include "lade/dnsres.h"
#include "lade/fwmanifest.h"
#include "lade/fwsig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lade/codec.h"
#include "lade/iothub.h"
#include "lade/log.h"

enum kind { K_STR, K_HOST, K_U32, K_KEY, K_LOGLEVEL, K_DEVID, K_ENUM };

struct key {
    const char *name;
    enum kind kind;
    bool factory;
    size_t off;
    size_t size; /* K_STR/K_HOST: buffer size; K_U32: field size (2 or 4) */
    uint32_t min, max;
    const char *choices; /* K_ENUM: "a|b|c" */
};

#define F(field) offsetof(struct lade_settings, field), sizeof(((struct lade_settings *)0)->field)

static const struct key keys[] = {
    {"device_id", K_DEVID, true, F(device_id), 0, 0, NULL},
    {"device_key", K_KEY, true, F(device_key), 0, 0, NULL},
    {"hub_host", K_HOST, true, F(hub_host), 0, 0, NULL},
    {"hub_port", K_U32, true, F(hub_port), 1, 65535, NULL},
    {"hosts_file", K_STR, true, F(hosts_file), 0, 0, NULL},
    {"ca_file", K_STR, true, F(ca_file), 0, 0, NULL},
    {"ntp_host", K_HOST, true, F(ntp_host), 0, 0, NULL},
    {"firmware_hosts", K_STR, true, F(firmware_hosts), 0, 0, NULL},
    {"fallback_dns", K_STR, true, F(fallback_dns), 0, 0, NULL},
    {"firmware_pubkey", K_STR, true, F(firmware_pubkey), 0, 0, NULL},
    {"log_level", K_LOGLEVEL, false, F(log_level), 0, 0, NULL},
    {"keepalive_s", K_U32, false, F(keepalive_s), 5, 1177, NULL},
    {"token_ttl_s", K_U32, false, F(token_ttl_s), 20, 30u * 86400u, NULL},
    {"telemetry_interval_s", K_U32, false, F(telemetry_interval_s), 1, 86400, NULL},
    {"backoff_min_ms", K_U32, false, F(backoff_min_ms), 100, 600000, NULL},
    {"backoff_max_ms", K_U32, false, F(backoff_max_ms), 100, 3600000, NULL},
    {"backoff_stable_s", K_U32, false, F(backoff_stable_s), 1, 86400, NULL},
    {"connect_timeout_ms", K_U32, false, F(connect_timeout_ms), 500, 120000, NULL},
    {"evse", K_ENUM, true, F(evse), 0, 0, "sim|none"},
    {"time_source", K_ENUM, true, F(time_source), 0, 0, "ntp|host"},
    {"ntp_port", K_U32, true, F(ntp_port), 1, 65535, NULL},
    {"hardware_id", K_STR, true, F(hardware_id), 0, 0, NULL},
    {"firmware_port", K_U32, true, F(firmware_port), 1, 65535, NULL},
    {"firmware_confirm_s", K_U32, false, F(firmware_confirm_s), 30, 86400, NULL},
    {"net_interface", K_STR, true, F(net_interface), 0, 0, NULL},
    {"wifi_interface", K_STR, true, F(wifi_interface), 0, 0, NULL},
    {"wifi_ctrl", K_STR, true, F(wifi_ctrl), 0, 0, NULL},
    {"lte_device", K_STR, true, F(lte_device), 0, 0, NULL},
    {"lte_interface", K_STR, true, F(lte_interface), 0, 0, NULL},
    {"source_address", K_STR, true, F(source_address), 0, 0, NULL},
    {"lte_apn", K_STR, false, F(lte_apn), 0, 0, NULL},
    {"state_dir", K_STR, false, F(state_dir), 0, 0, NULL},
    {"max_current_a", K_U32, false, F(max_current_a), 6, 63, NULL},
    {"min_current_a", K_U32, false, F(min_current_a), 6, 63, NULL},
    {"max_phases", K_U32, false, F(max_phases), 1, 3, NULL},
    {"offline_current_a", K_U32, false, F(offline_current_a), 0, 63, NULL},
    {"offline_phases", K_U32, false, F(offline_phases), 1, 3, NULL},
    {"free_mode", K_U32, false, F(free_mode), 0, 1, NULL},
    {"link_grace_ms", K_U32, false, F(link_grace_ms), 0, 600000, NULL},
    {"checkpoint_interval_s", K_U32, false, F(checkpoint_interval_s), 1, 3600, NULL},
    {"report_min_interval_s", K_U32, false, F(report_min_interval_s), 1, 3600, NULL},
    {"bearer", K_ENUM, false, F(bearer), 0, 0, "Ethernet|Wifi|LTE|PLC"},
    {"dns_servers", K_STR, false, F(dns_servers), 0, 0, NULL},
    {"sim_car", K_ENUM, false, F(sim_car), 0, 0, "none|1p16a|3p11kw|3p22kw"},
    {"sim_soc", K_U32, false, F(sim_soc), 0, 100, NULL},
    {"sim_plug_s", K_U32, false, F(sim_plug_s), 0, 30u * 86400u, NULL},
    {"sim_unplug_s", K_U32, false, F(sim_unplug_s), 0, 30u * 86400u, NULL},
    {"sim_time_scale", K_U32, false, F(sim_time_scale), 1, 3600, NULL},
};

void lade_settings_defaults(struct lade_settings *s)
{
    memset(s, 0, sizeof *s);
    /* Production factory settings (SPEC R3, R5, R6); every test overrides them. */
    snprintf(s->hub_host, sizeof s->hub_host, "zapcloud.azure-devices.net");
    s->hub_port = 8883;
    snprintf(s->hosts_file, sizeof s->hosts_file, "/etc/hosts");
    snprintf(s->ca_file, sizeof s->ca_file, "/etc/ssl/certs/ca-certificates.crt");
    snprintf(s->ntp_host, sizeof s->ntp_host, "no.pool.ntp.org");
    snprintf(s->firmware_hosts, sizeof s->firmware_hosts,
             "zapcloud-api.azurewebsites.net,devices.zaptec.com,api.zaptec.com");
    snprintf(s->fallback_dns, sizeof s->fallback_dns, "8.8.8.8,1.1.1.1");
    s->log_level = LADE_LOG_INFO;
    s->keepalive_s = 240;
    /* Data budget (R12): each renewal is a reconnect (~2.4 kB with TLS resumption), each
     * snapshot ~320 B on the wire; see bench/RESULTS.md. */
    s->token_ttl_s = 21600;
    s->telemetry_interval_s = 900;
    s->backoff_min_ms = 1000;
    s->backoff_max_ms = 100000;
    s->backoff_stable_s = 60;
    s->connect_timeout_ms = 10000;
    snprintf(s->evse, sizeof s->evse, "none");
    snprintf(s->time_source, sizeof s->time_source, "ntp");
    s->ntp_port = 123;
    snprintf(s->hardware_id, sizeof s->hardware_id, "lade-linux-1");
    s->firmware_port = 443;
    s->firmware_confirm_s = 600;
    snprintf(s->state_dir, sizeof s->state_dir, "/var/lib/lade");
    s->max_current_a = 32;
    s->min_current_a = 6;
    s->max_phases = 3;
    s->offline_current_a = 6;
    s->offline_phases = 1;
    s->free_mode = 1;
    s->link_grace_ms = 10000;
    s->checkpoint_interval_s = 60;
    s->report_min_interval_s = 10;
    snprintf(s->bearer, sizeof s->bearer, "Ethernet");
    snprintf(s->sim_car, sizeof s->sim_car, "none");
    s->sim_soc = 20;
    s->sim_time_scale = 1;
}

bool lade_settings_is_factory_key(const char *key)
{
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(keys[i].name, key) == 0)
            return keys[i].factory;
    return false;
}

static void report(lade_settings_report_fn fn, void *ud, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report(lade_settings_report_fn fn, void *ud, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (fn)
        fn(ud, msg);
    else
        LOG_E("settings", "%s", msg);
}

static bool host_valid(const char *v)
{
    size_t n = strlen(v);
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = v[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == ':'))
            return false;
    }
    return true;
}

/* Returns NULL on success or a static reason. */
static const char *apply(struct lade_settings *s, const struct key *k, const char *v)
{
    char *field = (char *)s + k->off;
    switch (k->kind) {
    case K_DEVID:
        if (!lade_iothub_device_id_valid(v))
            return "device id must be 1-128 characters of [A-Za-z0-9-]";
        break;
    case K_HOST:
        if (!host_valid(v))
            return "not a valid host name";
        break;
    case K_STR:
        if (strstr(k->name, "_interface")) {
            /* a Linux interface name: 1-15 characters, no '/', ':' or white space */
            if (!*v)
                break;
            for (const char *p = v; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
                    return "not an interface name (letters, digits, '-', '_', '.')";
        }
        break;
    case K_ENUM: {
        size_t n = strlen(v);
        const char *c = k->choices;
        while (c) {
            const char *bar = strchr(c, '|');
            size_t m = bar ? (size_t)(bar - c) : strlen(c);
            if (m == n && memcmp(c, v, n) == 0)
                break;
            c = bar ? bar + 1 : NULL;
        }
        if (!c)
            return k->choices; /* the reason names the allowed values */
        break;
    }
    case K_U32: {
        if (*v == '\0' || strlen(v) > 10 || v[0] == '-' || v[0] == '+')
            return "not a number";
        char *end;
        errno = 0;
        unsigned long long x = strtoull(v, &end, 10);
        if (*end || errno)
            return "not a number";
        if (x < k->min || x > k->max)
            return "out of range";
        if ((k->off == offsetof(struct lade_settings, max_phases) ||
             k->off == offsetof(struct lade_settings, offline_phases)) &&
            x == 2)
            return "phases must be 1 or 3";
        if (k->size == sizeof(uint16_t)) {
            uint16_t y = (uint16_t)x;
            memcpy(field, &y, sizeof y);
        } else {
            uint32_t y = (uint32_t)x;
            memcpy(field, &y, sizeof y);
        }
        return NULL;
    }
    case K_KEY: {
        size_t n;
        uint8_t tmp[LADE_DEVICE_KEY_MAX];
        if (lade_base64_decode(v, strlen(v), tmp, sizeof tmp, &n) != LADE_OK || n < 16)
            return "device key must be Base64 of 16-64 bytes";
        memcpy(s->device_key, tmp, n);
        s->device_key_len = n;
        memset(tmp, 0, sizeof tmp);
        return NULL;
    }
    case K_LOGLEVEL: {
        int l = lade_log_level_parse(v);
        if (l < 0)
            return "log level must be error, warn, info, debug or trace";
        s->log_level = l;
        return NULL;
    }
    }
    /* String kinds. */
    if (strlen(v) >= k->size)
        return "value too long";
    memcpy(field, v, strlen(v) + 1);
    return NULL;
}

lade_err lade_settings_parse(struct lade_settings *s, const char *name, const char *text,
                             enum lade_settings_file kind, lade_settings_report_fn fn, void *ud)
{
    bool bad = false;
    unsigned lineno = 0;
    const char *p = text;
    while (*p) {
        lineno++;
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char line[1024];
        if (len >= sizeof line) {
            report(fn, ud, "%s:%u: line too long", name, lineno);
            bad = true;
            p += len + (eol ? 1 : 0);
            continue;
        }
        memcpy(line, p, len);
        line[len] = '\0';
        p += len + (eol ? 1 : 0);

        char *l = line;
        while (*l == ' ' || *l == '\t')
            l++;
        size_t n = strlen(l);
        while (n && (l[n - 1] == ' ' || l[n - 1] == '\t' || l[n - 1] == '\r'))
            l[--n] = '\0';
        if (*l == '\0' || *l == '#')
            continue;
        char *eq = strchr(l, '=');
        if (!eq) {
            report(fn, ud, "%s:%u: expected 'key = value'", name, lineno);
            bad = true;
            continue;
        }
        char *kend = eq;
        while (kend > l && (kend[-1] == ' ' || kend[-1] == '\t'))
            kend--;
        *kend = '\0';
        char *v = eq + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        const struct key *k = NULL;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (strcmp(keys[i].name, l) == 0)
                k = &keys[i];
        if (!k) {
            /* Echo only what looks like a key name: "device_key: <key>" is a typo whose '='
             * is the key's Base64 padding, and the key must not reach a log. */
            bool plain = strlen(l) <= 32;
            for (const char *c = l; *c && plain; c++)
                plain = (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_';
            if (plain)
                report(fn, ud, "%s:%u: unknown setting '%s'", name, lineno, l);
            else
                report(fn, ud, "%s:%u: unknown setting (not a key name; not shown)", name, lineno);
            bad = true;
            continue;
        }
        if (k->factory && kind == LADE_SETTINGS_USER) {
            report(fn, ud, "%s:%u: '%s' is a factory setting and cannot be changed here; ignored",
                   name, lineno, l);
            bad = true;
            continue;
        }
        const char *why = apply(s, k, v);
        if (why) {
            /* Never echo the value: it may be the device key. */
            report(fn, ud, "%s:%u: '%s': %s%s", name, lineno, l,
                   why == k->choices ? "must be one of " : "", why);
            bad = true;
        }
        memset(line, 0, sizeof line);
    }
    if (s->backoff_max_ms < s->backoff_min_ms)
        s->backoff_max_ms = s->backoff_min_ms;
    if (bad && kind == LADE_SETTINGS_FACTORY)
        return LADE_ERR_CONFIG;
    return LADE_OK;
}

lade_err lade_settings_load(struct lade_settings *s, const char *path, enum lade_settings_file kind,
                            lade_settings_report_fn fn, void *ud)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? LADE_ERR_NOT_FOUND : LADE_ERR_IO;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    lade_err err = LADE_OK;
    for (;;) {
        if (cap - n < 4096) {
            if (cap > (1u << 20)) {
                err = LADE_ERR_TOO_BIG;
                goto out;
            }
            char *nb = realloc(buf, cap + 8192);
            if (!nb) {
                err = LADE_ERR_NOMEM;
                goto out;
            }
            buf = nb;
            cap += 8192;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
    }
    if (ferror(f)) {
        err = LADE_ERR_IO;
        goto out;
    }
    buf[n] = '\0';
    if (strlen(buf) != n) {
        report(fn, ud, "%s: contains a NUL byte", path);
        err = LADE_ERR_CONFIG;
        goto out;
    }
    err = lade_settings_parse(s, path, buf, kind, fn, ud);
out:
    if (buf) {
        memset(buf, 0, cap); /* the factory file holds the device key */
        free(buf);
    }
    fclose(f);
    return err;
}

lade_err lade_settings_check(const struct lade_settings *s, lade_settings_report_fn fn, void *ud)
{
    lade_err err = LADE_OK;
    if (!lade_iothub_device_id_valid(s->device_id)) {
        report(fn, ud, "factory settings: device_id is missing");
        err = LADE_ERR_CONFIG;
    }
    if (s->device_key_len == 0) {
        report(fn, ud, "factory settings: device_key is missing");
        err = LADE_ERR_CONFIG;
    }
    if (!s->hub_host[0]) {
        report(fn, ud, "factory settings: hub_host is missing");
        err = LADE_ERR_CONFIG;
    }
    if (access(s->ca_file, R_OK) != 0) {
        report(fn, ud, "factory settings: ca_file '%s' cannot be read", s->ca_file);
        err = LADE_ERR_CONFIG;
    }
    struct lade_sockaddr tmp[8];
    size_t n = 0;
    lade_err e = lade_dnsres_parse_servers(s->fallback_dns, tmp, 8, &n);
    if (e != LADE_OK && e != LADE_ERR_NOSPACE) {
        report(fn, ud, "factory settings: fallback_dns is not a list of addresses");
        err = LADE_ERR_CONFIG;
    }
    if (!lade_fwm_hw_id_valid(lade_str_c(s->hardware_id))) {
        report(fn, ud, "factory settings: hardware_id is not a valid hardware id");
        err = LADE_ERR_CONFIG;
    }
    if (s->firmware_pubkey[0]) {
        struct lade_fwsig_keys ks;
        if (lade_fwsig_keys_parse(s->firmware_pubkey, &ks) != LADE_OK) {
            report(fn, ud,
                   "factory settings: firmware_pubkey is not one or two Base64 Ed25519 keys");
            err = LADE_ERR_CONFIG;
        }
    }
    if (s->dns_servers[0]) {
        e = lade_dnsres_parse_servers(s->dns_servers, tmp, 8, &n);
        if (e != LADE_OK && e != LADE_ERR_NOSPACE)
            report(fn, ud, "user settings: dns_servers is not a list of addresses; ignored");
    }
    return err;
}

lade_err lade_settings_write_factory(const struct lade_settings *s, const char *path)
{
    char tmp[600];
    char key_b64[LADE_DEVICE_KEY_MAX * 2];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return LADE_ERR_INVAL;
    if (lade_base64_encode(s->device_key, s->device_key_len, key_b64, sizeof key_b64, NULL))
        return LADE_ERR_INVAL;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return LADE_ERR_IO;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return LADE_ERR_IO;
    }
    fprintf(f,
            "# lade factory settings, written by lade-factory at manufacturing.\n"
            "# Holds the device secret: keep this file readable by the charger only.\n"
            "device_id = %s\n"
            "device_key = %s\n"
            "hub_host = %s\n"
            "hub_port = %u\n"
            "hosts_file = %s\n"
            "ca_file = %s\n"
            "ntp_host = %s\n"
            "firmware_hosts = %s\n"
            "fallback_dns = %s\n",
            s->device_id, key_b64, s->hub_host, s->hub_port, s->hosts_file, s->ca_file, s->ntp_host,
            s->firmware_hosts, s->fallback_dns);
    if (s->firmware_pubkey[0])
        fprintf(f, "firmware_pubkey = %s\n", s->firmware_pubkey);
    fprintf(f, "evse = %s\n", s->evse);
    fprintf(f, "time_source = %s\n", s->time_source);
    if (s->ntp_port != 123)
        fprintf(f, "ntp_port = %u\n", s->ntp_port);
    if (strcmp(s->hardware_id, "lade-linux-1") != 0)
        fprintf(f, "hardware_id = %s\n", s->hardware_id);
    if (s->firmware_port != 443)
        fprintf(f, "firmware_port = %u\n", s->firmware_port);
    if (s->net_interface[0])
        fprintf(f, "net_interface = %s\n", s->net_interface);
    if (s->wifi_interface[0])
        fprintf(f, "wifi_interface = %s\n", s->wifi_interface);
    if (s->wifi_ctrl[0])
        fprintf(f, "wifi_ctrl = %s\n", s->wifi_ctrl);
    if (s->lte_device[0])
        fprintf(f, "lte_device = %s\n", s->lte_device);
    if (s->lte_interface[0])
        fprintf(f, "lte_interface = %s\n", s->lte_interface);
    if (s->source_address[0])
        fprintf(f, "source_address = %s\n", s->source_address);
    memset(key_b64, 0, sizeof key_b64);
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return LADE_ERR_IO;
    }
    return LADE_OK;
}
