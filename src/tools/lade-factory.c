/* lade-factory — manufacturing tool: device identities, factory files, SAS tokens.
 *
 *   lade-factory create  --registry DB --hub-host H --ca FILE --out DIR
 *                        [--id ID | --prefix LDE --count N] [--hub-port P] [--ntp-host H]
 *                        [--firmware-hosts a,b,c] [--fallback-dns a,b] [--hosts-file F]
 *                        [--firmware-pubkey B64] [--evse sim|none]
 *   lade-factory service --registry DB --name NAME --hub-host H --out FILE
 *   lade-factory token   --registry DB (--device ID | --name SVC) --hub-host H [--ttl S]
 *   lade-factory list    --registry DB
 *   lade-factory disable|enable --registry DB --device ID
 *
 * Keys come from OpenSSL's CSPRNG (RAND_bytes) inside the registry; they are written only to
 * the registry and to the charger's factory file (mode 0600), never printed or logged.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lade/clock.h"
#include "lade/codec.h"
#include "lade/iothub.h"
#include "lade/registry.h"
#include "lade/sas.h"
#include "lade/settings.h"

struct opts {
    const char *registry, *hub_host, *ca, *out, *id, *prefix, *ntp_host, *firmware_hosts,
        *fallback_dns, *hosts_file, *firmware_pubkey, *device, *name, *evse, *time_source;
    const char *net_if, *wifi_if, *wifi_ctrl, *lte_dev, *lte_if, *hw_id;
    long ntp_port, fw_port;
    long hub_port, count, ttl;
};

static void usage(FILE *f)
{
    fputs("usage:\n"
          "  lade-factory create  --registry DB --hub-host HOST --ca FILE --out DIR\n"
          "                       [--id ID | --prefix LDE --count N] [--hub-port 8883]\n"
          "                       [--ntp-host H] [--firmware-hosts a,b,c] [--fallback-dns a,b]\n"
          "                       [--hosts-file F] [--firmware-pubkey B64] [--evse sim|none]\n"
          "                       [--time-source ntp|host] [--ntp-port N]\n"
          "                       [--net-interface IF] [--wifi-interface IF --wifi-ctrl PATH]\n"
          "                       [--lte-device TTY [--lte-interface IF]]\n"
          "                       [--hardware-id ID] [--firmware-port N]\n"
          "  lade-factory service --registry DB --name NAME --hub-host HOST --out FILE\n"
          "  lade-factory token   --registry DB (--device ID | --name SERVICE) --hub-host HOST\n"
          "                       [--ttl SECONDS]\n"
          "  lade-factory list    --registry DB\n"
          "  lade-factory enable|disable --registry DB --device ID\n",
          f);
}

static int fail(const char *what, lade_err err)
{
    fprintf(stderr, "lade-factory: %s: %s\n", what, lade_strerror(err));
    return 1;
}

static int need(const char *v, const char *flag)
{
    if (!v || !*v) {
        fprintf(stderr, "lade-factory: %s is required\n", flag);
        return 0;
    }
    return 1;
}

static long parse_long(const char *s, const char *flag, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < min || v > max) {
        fprintf(stderr, "lade-factory: %s must be a number in %ld..%ld\n", flag, min, max);
        exit(2);
    }
    return v;
}

/* Creates one device and writes DIR/<id>/factory.conf. */
static int create_one(struct lade_registry *reg, const struct opts *o, const char *id)
{
    struct lade_settings s;
    lade_settings_defaults(&s);
    snprintf(s.device_id, sizeof s.device_id, "%s", id);
    snprintf(s.hub_host, sizeof s.hub_host, "%s", o->hub_host);
    s.hub_port = (uint16_t)o->hub_port;
    if (!realpath(o->ca, s.ca_file)) {
        fprintf(stderr, "lade-factory: --ca %s: %s\n", o->ca, strerror(errno));
        return 1;
    }
    if (o->ntp_host)
        snprintf(s.ntp_host, sizeof s.ntp_host, "%s", o->ntp_host);
    if (o->firmware_hosts)
        snprintf(s.firmware_hosts, sizeof s.firmware_hosts, "%s", o->firmware_hosts);
    if (o->fallback_dns)
        snprintf(s.fallback_dns, sizeof s.fallback_dns, "%s", o->fallback_dns);
    if (o->hosts_file)
        snprintf(s.hosts_file, sizeof s.hosts_file, "%s", o->hosts_file);
    if (o->firmware_pubkey)
        snprintf(s.firmware_pubkey, sizeof s.firmware_pubkey, "%s", o->firmware_pubkey);
    if (o->evse)
        snprintf(s.evse, sizeof s.evse, "%s", o->evse);
    if (o->time_source)
        snprintf(s.time_source, sizeof s.time_source, "%s", o->time_source);
    if (o->ntp_port)
        s.ntp_port = (uint16_t)o->ntp_port;
    if (o->fw_port)
        s.firmware_port = (uint16_t)o->fw_port;
    const struct {
        const char *v;
        char *dst;
        size_t cap;
        const char *name;
    } strs[] = {
        {o->net_if, s.net_interface, sizeof s.net_interface, "--net-interface"},
        {o->wifi_if, s.wifi_interface, sizeof s.wifi_interface, "--wifi-interface"},
        {o->wifi_ctrl, s.wifi_ctrl, sizeof s.wifi_ctrl, "--wifi-ctrl"},
        {o->lte_dev, s.lte_device, sizeof s.lte_device, "--lte-device"},
        {o->lte_if, s.lte_interface, sizeof s.lte_interface, "--lte-interface"},
        {o->hw_id, s.hardware_id, sizeof s.hardware_id, "--hardware-id"},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        if (!strs[i].v)
            continue;
        if (strlen(strs[i].v) >= strs[i].cap) {
            fprintf(stderr, "lade-factory: %s is longer than %zu characters\n", strs[i].name,
                    strs[i].cap - 1);
            return 2;
        }
        snprintf(strs[i].dst, strs[i].cap, "%s", strs[i].v);
    }

    char dir[600], path[700];
    snprintf(dir, sizeof dir, "%s/%s", o->out, id);
    if (mkdir(o->out, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "lade-factory: mkdir %s: %s\n", o->out, strerror(errno));
        return 1;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "lade-factory: mkdir %s: %s\n", dir, strerror(errno));
        return 1;
    }
    snprintf(path, sizeof path, "%s/factory.conf", dir);

    uint8_t key[LADE_REGISTRY_KEY_LEN];
    lade_err err = lade_registry_device_create(reg, id, lade_wall_s(), key);
    if (err == LADE_ERR_EXISTS) {
        fprintf(stderr, "lade-factory: device %s already exists in the registry\n", id);
        return 1;
    }
    if (err)
        return fail("registering the device", err);
    memcpy(s.device_key, key, sizeof key);
    s.device_key_len = sizeof key;
    memset(key, 0, sizeof key);
    err = lade_settings_write_factory(&s, path);
    memset(&s, 0, sizeof s);
    if (err) {
        /* Do not leave an identity whose key nobody has. */
        if (lade_registry_device_remove(reg, id) != LADE_OK)
            fprintf(stderr, "lade-factory: could not roll back device %s\n", id);
        return fail("writing the factory file", err);
    }
    printf("%s %s\n", id, path);
    return 0;
}

static int next_free_id(struct lade_registry *reg, const char *prefix, long *counter, char *id,
                        size_t cap)
{
    for (; *counter < 10000000; (*counter)++) {
        snprintf(id, cap, "%s%07ld", prefix, *counter);
        uint8_t k[LADE_REGISTRY_KEY_MAX];
        size_t n;
        bool en;
        lade_err err = lade_registry_device_key(reg, id, k, sizeof k, &n, &en);
        memset(k, 0, sizeof k);
        if (err == LADE_ERR_NOT_FOUND) {
            (*counter)++;
            return 0;
        }
        if (err)
            return fail("reading the registry", err);
    }
    fprintf(stderr, "lade-factory: no free id with prefix %s\n", prefix);
    return 1;
}

static int cmd_create(struct lade_registry *reg, const struct opts *o)
{
    if (!need(o->hub_host, "--hub-host") || !need(o->ca, "--ca") || !need(o->out, "--out"))
        return 2;
    if (o->id) {
        if (!lade_iothub_device_id_valid(o->id)) {
            fprintf(stderr, "lade-factory: --id must be 1-128 characters of [A-Za-z0-9-]\n");
            return 2;
        }
        return create_one(reg, o, o->id);
    }
    const char *prefix = o->prefix ? o->prefix : "LDE";
    char probe[LADE_IOTHUB_DEVICE_ID_MAX + 1];
    snprintf(probe, sizeof probe, "%s0000000", prefix);
    if (strlen(prefix) > 100 || !lade_iothub_device_id_valid(probe)) {
        fprintf(stderr, "lade-factory: --prefix must be characters of [A-Za-z0-9-]\n");
        return 2;
    }
    long counter = 1;
    for (long i = 0; i < o->count; i++) {
        char id[LADE_IOTHUB_DEVICE_ID_MAX + 1];
        int rc = next_free_id(reg, prefix, &counter, id, sizeof id);
        if (rc)
            return rc;
        rc = create_one(reg, o, id);
        if (rc)
            return rc;
    }
    return 0;
}

static int cmd_service(struct lade_registry *reg, const struct opts *o)
{
    if (!need(o->name, "--name") || !need(o->out, "--out") || !need(o->hub_host, "--hub-host"))
        return 2;
    if (!lade_registry_id_valid(o->name)) {
        fprintf(stderr, "lade-factory: --name must be characters of [A-Za-z0-9-]\n");
        return 2;
    }
    uint8_t key[LADE_REGISTRY_KEY_LEN];
    lade_err err = lade_random(key, sizeof key);
    if (err)
        return fail("generating a key", err);
    err = lade_registry_service_add(reg, o->name, key, sizeof key, lade_wall_s());
    if (err) {
        memset(key, 0, sizeof key);
        return fail("registering the service", err);
    }
    char b64[64];
    err = lade_base64_encode(key, sizeof key, b64, sizeof b64, NULL);
    memset(key, 0, sizeof key);
    if (err)
        return fail("encoding the key", err);
    FILE *f = fopen(o->out, "wx");
    if (!f) {
        fprintf(stderr, "lade-factory: %s: %s\n", o->out, strerror(errno));
        memset(b64, 0, sizeof b64);
        return 1;
    }
    chmod(o->out, 0600);
    fprintf(f,
            "# lade service identity (portal backend); secret\nservice_name = %s\n"
            "service_key = %s\nhub_host = %s\n",
            o->name, b64, o->hub_host);
    memset(b64, 0, sizeof b64);
    if (fclose(f) != 0)
        return fail("writing the service file", LADE_ERR_IO);
    printf("svc:%s %s\n", o->name, o->out);
    return 0;
}

static int cmd_token(struct lade_registry *reg, const struct opts *o)
{
    if (!need(o->hub_host, "--hub-host"))
        return 2;
    if (o->name && !o->device) {
        /* Service identity token: sr = hub, skn = service name. */
        uint8_t skey[LADE_REGISTRY_KEY_MAX];
        size_t sn;
        lade_err serr = lade_registry_service_key(reg, o->name, skey, sizeof skey, &sn);
        if (serr == LADE_ERR_NOT_FOUND) {
            fprintf(stderr, "lade-factory: no service %s in the registry\n", o->name);
            return 1;
        }
        if (serr)
            return fail("reading the registry", serr);
        char stok[LADE_SAS_TOKEN_MAX + 1];
        serr = lade_sas_token_build(o->hub_host, NULL, skey, sn, lade_wall_s() + o->ttl, o->name,
                                    stok, sizeof stok, &sn);
        memset(skey, 0, sizeof skey);
        if (serr)
            return fail("building the token", serr);
        puts(stok);
        return 0;
    }
    if (!need(o->device, "--device or --name"))
        return 2;
    uint8_t key[LADE_REGISTRY_KEY_MAX];
    size_t n;
    bool enabled;
    lade_err err = lade_registry_device_key(reg, o->device, key, sizeof key, &n, &enabled);
    if (err == LADE_ERR_NOT_FOUND) {
        fprintf(stderr, "lade-factory: no device %s in the registry\n", o->device);
        return 1;
    }
    if (err)
        return fail("reading the registry", err);
    if (!enabled)
        fprintf(stderr, "lade-factory: warning: device %s is disabled; the hub will refuse it\n",
                o->device);
    char tok[LADE_SAS_TOKEN_MAX + 1];
    err = lade_sas_token_build(o->hub_host, o->device, key, n, lade_wall_s() + o->ttl, NULL, tok,
                               sizeof tok, &n);
    memset(key, 0, sizeof key);
    if (err)
        return fail("building the token", err);
    puts(tok);
    return 0;
}

static int print_device(void *ud, const struct lade_registry_device *d)
{
    (void)ud;
    printf("%s\t%s\t%lld\n", d->id, d->enabled ? "enabled" : "disabled", (long long)d->created_s);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    struct opts o = {.hub_port = 8883, .count = 1, .ttl = 3600};
    static const struct option lo[] = {
        {"registry", required_argument, 0, 'r'},
        {"hub-host", required_argument, 0, 'H'},
        {"hub-port", required_argument, 0, 'P'},
        {"ca", required_argument, 0, 'c'},
        {"out", required_argument, 0, 'o'},
        {"id", required_argument, 0, 'i'},
        {"prefix", required_argument, 0, 'p'},
        {"count", required_argument, 0, 'n'},
        {"ntp-host", required_argument, 0, 'N'},
        {"firmware-hosts", required_argument, 0, 'F'},
        {"fallback-dns", required_argument, 0, 'D'},
        {"hosts-file", required_argument, 0, 'h'},
        {"firmware-pubkey", required_argument, 0, 'K'},
        {"evse", required_argument, 0, 'E'},
        {"time-source", required_argument, 0, 'T'},
        {"ntp-port", required_argument, 0, 'R'},
        {"net-interface", required_argument, 0, 'I'},
        {"wifi-interface", required_argument, 0, 'W'},
        {"wifi-ctrl", required_argument, 0, 'w'},
        {"lte-device", required_argument, 0, 'L'},
        {"lte-interface", required_argument, 0, 'l'},
        {"hardware-id", required_argument, 0, 'x'},
        {"firmware-port", required_argument, 0, 'X'},
        {"device", required_argument, 0, 'd'},
        {"name", required_argument, 0, 'm'},
        {"ttl", required_argument, 0, 't'},
        {0, 0, 0, 0},
    };
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'r':
            o.registry = optarg;
            break;
        case 'H':
            o.hub_host = optarg;
            break;
        case 'P':
            o.hub_port = parse_long(optarg, "--hub-port", 1, 65535);
            break;
        case 'c':
            o.ca = optarg;
            break;
        case 'o':
            o.out = optarg;
            break;
        case 'i':
            o.id = optarg;
            break;
        case 'p':
            o.prefix = optarg;
            break;
        case 'n':
            o.count = parse_long(optarg, "--count", 1, 100000);
            break;
        case 'N':
            o.ntp_host = optarg;
            break;
        case 'F':
            o.firmware_hosts = optarg;
            break;
        case 'D':
            o.fallback_dns = optarg;
            break;
        case 'h':
            o.hosts_file = optarg;
            break;
        case 'K':
            o.firmware_pubkey = optarg;
            break;
        case 'E':
            if (strcmp(optarg, "sim") != 0 && strcmp(optarg, "none") != 0) {
                fprintf(stderr, "lade-factory: --evse must be sim or none\n");
                return 2;
            }
            o.evse = optarg;
            break;
        case 'T':
            if (strcmp(optarg, "ntp") != 0 && strcmp(optarg, "host") != 0) {
                fprintf(stderr, "lade-factory: --time-source must be ntp or host\n");
                return 2;
            }
            o.time_source = optarg;
            break;
        case 'R':
            o.ntp_port = parse_long(optarg, "--ntp-port", 1, 65535);
            break;
        case 'I':
            o.net_if = optarg;
            break;
        case 'W':
            o.wifi_if = optarg;
            break;
        case 'w':
            o.wifi_ctrl = optarg;
            break;
        case 'L':
            o.lte_dev = optarg;
            break;
        case 'l':
            o.lte_if = optarg;
            break;
        case 'x':
            o.hw_id = optarg;
            break;
        case 'X':
            o.fw_port = parse_long(optarg, "--firmware-port", 1, 65535);
            break;
        case 'd':
            o.device = optarg;
            break;
        case 'm':
            o.name = optarg;
            break;
        case 't':
            o.ttl = parse_long(optarg, "--ttl", 1, 365L * 86400L);
            break;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "lade-factory: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!need(o.registry, "--registry"))
        return 2;

    struct lade_registry *reg;
    lade_err err = lade_registry_open(o.registry, &reg);
    if (err)
        return fail(o.registry, err);
    int rc;
    if (strcmp(cmd, "create") == 0) {
        rc = cmd_create(reg, &o);
    } else if (strcmp(cmd, "service") == 0) {
        rc = cmd_service(reg, &o);
    } else if (strcmp(cmd, "token") == 0) {
        rc = cmd_token(reg, &o);
    } else if (strcmp(cmd, "list") == 0) {
        err = lade_registry_device_list(reg, print_device, NULL);
        rc = err ? fail("listing", err) : 0;
    } else if (strcmp(cmd, "enable") == 0 || strcmp(cmd, "disable") == 0) {
        if (!need(o.device, "--device")) {
            rc = 2;
        } else {
            err = lade_registry_device_set_enabled(reg, o.device, cmd[0] == 'e');
            rc = err ? fail(o.device, err) : 0;
        }
    } else {
        fprintf(stderr, "lade-factory: unknown command '%s'\n", cmd);
        usage(stderr);
        rc = 2;
    }
    lade_registry_close(reg);
    return rc;
}
