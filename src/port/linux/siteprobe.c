/* lade — the site network check's probes: DHCP, DNS, NTP, outbound TCP/TLS (SPEC R3–R6, R18).
 * include/lade/siteprobe.h; docs/lade-check.md. */
#include "lade/siteprobe.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/x509_vfy.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lade/clock.h"
#include "lade/dhcpprobe.h"
#include "lade/dnsres.h"
#include "lade/log.h"
#include "lade/sntp.h"
#include "lade/tls.h"

#define MOD "check"

#define MAX_ADDRS 8
#define MAX_FW    6
#define NTP_TRIES 3

/* One name looked up through one resolver (the site's: via -1, or fallback via). */
struct lookup {
    struct lade_siteprobe *p;
    size_t name;
    int via;
    struct lade_dnsres_query *q;
    bool done;
    lade_err err;
    int rcode;
    uint32_t ms;
    struct lade_sockaddr addrs[MAX_ADDRS];
    size_t n;
};

struct name {
    char host[LADE_RESOLVE_NAME_MAX + 1];
    const char *role; /* "hub", "firmware", "NTP" */
    bool nowhere;     /* every DNS server says it does not exist */
    /* The addresses later steps use: the site's answer, else the first fallback's. */
    struct lade_sockaddr addrs[MAX_ADDRS];
    size_t n;
};

struct ntpq {
    struct lade_siteprobe *p;
    struct lade_sockaddr addr;
    int fd;
    int tries;
    uint64_t cookie;
    int64_t t1_us; /* wall time of the send */
    uint64_t sent_mono;
    bool done;
    enum lade_sntp_result result;
    int64_t offset_us, delay_us;
    unsigned stratum;
    struct lade_timer timer;
};

struct reach {
    struct lade_siteprobe *p;
    const char *host;
    uint16_t port;
    bool hub;
    struct lade_tls_conn *c;
    bool done;
    lade_err err;
    struct lade_tls_stats st;
    struct lade_tls_peer peer;
};

enum phase { PH_DHCP, PH_DNS, PH_NTP, PH_REACH, PH_DONE };

struct lade_siteprobe {
    struct lade_loop *loop;
    struct lade_siteprobe_cfg cfg;
    struct lade_check_report *r;
    void (*done)(void *ud);
    void *ud;
    enum phase phase;
    const char *self; /* "this computer" or "this charger" */
    unsigned pending;
    struct lade_timer kick; /* runs the next phase from the loop */

    /* DHCP */
    struct lade_dhcpprobe *dhcp;
    unsigned pool_round;                             /* 0: the first probe */
    uint32_t pool_addrs[LADE_DHCPPROBE_MAX_CLIENTS]; /* different addresses offered, all rounds */
    unsigned n_pool_addrs;
    unsigned pool_asked; /* made-up clients, all rounds */

    /* DNS */
    struct lade_sockaddr site[LADE_SITEPROBE_MAX_DNS];
    size_t n_site;
    const char *site_from; /* "DHCP", "--dns", "resolv.conf" */
    bool dhcp_ran, dhcp_no_dns;
    struct lade_dnsres *site_res;
    struct lade_dnsres *fb_res[LADE_SITEPROBE_MAX_DNS];
    struct name names[LADE_SITEPROBE_MAX_NAMES];
    size_t n_names;
    size_t hub_name, ntp_name;
    struct lookup *lookups;
    size_t n_lookups;

    /* NTP */
    struct ntpq ntp[4];
    size_t n_ntp;
    int64_t clock_offset_us; /* this computer's clock behind NTP by this (0: unknown) */
    bool have_offset;

    /* reach */
    struct lade_tls_ctx *tls;
    char fw_list[768];   /* as long as the factory setting firmware_hosts */
    unsigned fw_dropped; /* firmware hosts beyond MAX_FW: not checked (a note says so) */
    const char *fw[MAX_FW];
    size_t n_fw;
    struct reach reach[1 + MAX_FW];
    size_t n_reach;
};

static void next_phase(struct lade_siteprobe *p);

static void addr_text(const struct lade_sockaddr *a, char *buf, size_t cap)
{
    struct lade_sockaddr c = *a;
    lade_sockaddr_set_port(&c, 0);
    if (lade_sockaddr_format(&c, buf, cap) != LADE_OK)
        snprintf(buf, cap, "?");
}

/* "a, b and c" of the addresses. */
static void addr_list(const struct lade_sockaddr *a, size_t n, char *buf, size_t cap)
{
    buf[0] = '\0';
    size_t off = 0;
    for (size_t i = 0; i < n && off < cap; i++) {
        char s[LADE_SOCKADDR_STRLEN];
        addr_text(&a[i], s, sizeof s);
        off += (size_t)snprintf(buf + off, cap - off, "%s%s",
                                i == 0       ? ""
                                : i + 1 == n ? " and "
                                             : ", ",
                                s);
    }
}

static cJSON *addr_array(const struct lade_sockaddr *a, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < n; i++) {
        char s[LADE_SOCKADDR_STRLEN];
        addr_text(&a[i], s, sizeof s);
        cJSON_AddItemToArray(arr, cJSON_CreateString(s));
    }
    return arr;
}

static const char *err_words(lade_err e, int rcode)
{
    switch (e) {
    case LADE_OK:
        return "ok";
    case LADE_ERR_NOT_FOUND:
        return "the name does not exist (NXDOMAIN)";
    case LADE_ERR_TIMEOUT:
        return "no answer (timeout)";
    case LADE_ERR_RESOLVE:
        return rcode == 5   ? "the server refuses to answer (REFUSED)"
               : rcode == 2 ? "the server fails (SERVFAIL)"
                            : "no usable answer (the server is unreachable or answers errors)";
    default:
        return lade_strerror(e);
    }
}

/* ---------------------------------------------------------------- DHCP */

static void ip_text(uint32_t a, char buf[16])
{
    snprintf(buf, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

static void ip_list(const uint32_t *a, size_t n, char *buf, size_t cap)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && off < cap; i++) {
        char s[16];
        ip_text(a[i], s);
        off += (size_t)snprintf(buf + off, cap - off, "%s%s", i ? ", " : "", s);
    }
}

static cJSON *ip_array(const uint32_t *a, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < n; i++) {
        char s[16];
        ip_text(a[i], s);
        cJSON_AddItemToArray(arr, cJSON_CreateString(s));
    }
    return arr;
}

/* "12 h", "3 days", "45 min". */
static void duration_text(uint32_t s, char *buf, size_t cap)
{
    if (s == LADE_DHCP_INFINITE)
        snprintf(buf, cap, "infinite");
    else if (s >= 2 * 86400 && s % 86400 == 0)
        snprintf(buf, cap, "%u days", s / 86400);
    else if (s >= 3600 && s % 3600 == 0)
        snprintf(buf, cap, "%u h", s / 3600);
    else if (s >= 60 && s % 60 == 0)
        snprintf(buf, cap, "%u min", s / 60);
    else
        snprintf(buf, cap, "%u s", s);
}

static const char *const need_dhcp =
    "Turn on a DHCP server for the chargers' network (chargers get their address by DHCP, one "
    "address each), or check that it serves this network segment.";

static void eval_dhcp(struct lade_siteprobe *p, const struct lade_dhcpprobe_result *res)
{
    char s1[16], s2[16], list[96];
    const struct lade_dhcpprobe_answer *a = NULL; /* the options to judge */
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "interface", res->ifname);
    cJSON_AddNumberToObject(data, "clients", res->n_clients);
    cJSON_AddNumberToObject(data, "clients_answered", res->clients_answered);
    cJSON_AddNumberToObject(data, "distinct_addresses", res->distinct_addrs);
    cJSON_AddBoolToObject(data, "inform_answered", res->inform.answered);
    cJSON_AddNumberToObject(data, "servers", res->n_servers);
    if (!res->if_carrier) {
        lade_check_add(p->r, "dhcp.offer", LADE_CHECK_FAIL, data,
                       "Connect the cable (or the PLC/WiFi bridge) to the interface and run the "
                       "check again.",
                       "No link on %s: nothing could be asked.", res->ifname);
        return;
    }
    if (res->clients_answered > 0) {
        const struct lade_dhcpprobe_client *c = NULL;
        for (unsigned i = 0; i < res->n_clients && !c; i++)
            if (res->clients[i].answered)
                c = &res->clients[i];
        a = &c->offer;
        ip_text(a->addr, s1);
        ip_text(a->has_server_id ? a->server_id : a->src, s2);
        int prefix = a->has_subnet ? lade_ipv4_prefix_len(a->subnet_mask) : -1;
        char pfx[16] = "";
        if (prefix >= 0)
            snprintf(pfx, sizeof pfx, "/%d", prefix);
        lade_check_add(p->r, "dhcp.offer", LADE_CHECK_PASS, data, NULL,
                       "A new charger is offered an address: %s%s from the DHCP server %s (in %u "
                       "ms). No lease was taken.",
                       s1, pfx, s2, (unsigned)a->rtt_ms);
    } else if (res->inform.answered) {
        a = &res->inform.ack;
        ip_text(a->has_server_id ? a->server_id : a->src, s2);
        lade_check_add(p->r, "dhcp.offer", LADE_CHECK_FAIL, data,
                       "Enlarge the DHCP pool (one address per charger, plus spare), shorten the "
                       "lease time so that old leases free up, and keep the chargers' network "
                       "dedicated to them. If the server gives addresses only to devices it "
                       "knows, add every charger's MAC address to it.",
                       "The DHCP server %s answers (it told %s its settings) but offers no "
                       "address to a new device: its address pool is exhausted, or it serves "
                       "only devices it knows.",
                       s2, p->self);
    } else if (res->send_error != LADE_OK) {
        lade_check_add(p->r, "dhcp.offer", LADE_CHECK_WARN, data, NULL,
                       "DHCP was not checked: the questions could not be sent on %s (%s).",
                       res->ifname, strerror(res->send_errno));
        return;
    } else if (res->unexpected > 0) {
        lade_check_add(p->r, "dhcp.offer", LADE_CHECK_FAIL, data,
                       "Check the DHCP server's settings: it must give addresses to new "
                       "devices on this network.",
                       "A DHCP server answers on %s but refuses (DHCPNAK or an answer that does "
                       "not fit the question): a new charger gets no address.",
                       res->ifname);
        return;
    } else {
        lade_check_add(p->r, "dhcp.offer", LADE_CHECK_FAIL, data, need_dhcp,
                       "No DHCP server answers on %s (nothing in %u ms%s%s).", res->ifname,
                       (unsigned)res->elapsed_ms,
                       res->inform.sent ? ", neither to a new device nor to " : "",
                       res->inform.sent ? p->self : "");
        return;
    }
    p->dhcp_ran = true;
    if (res->if_addr == 0 || (res->if_addr >> 16) == 0xA9FE) {
        lade_check_add(p->r, "dhcp.address", LADE_CHECK_WARN, NULL,
                       "Let this computer take an address on the chargers' network (its own "
                       "DHCP client) and run the check again.",
                       "%s has no usable IPv4 address on %s: the DNS, NTP and connection checks "
                       "below go out through another network, or fail.",
                       p->self, res->ifname);
    }
    if (res->n_servers > 1 || res->servers_more) {
        uint32_t ids[LADE_DHCPPROBE_MAX_SERVERS];
        for (unsigned i = 0; i < res->n_servers; i++)
            ids[i] = res->servers[i].id;
        ip_list(ids, res->n_servers, list, sizeof list);
        lade_check_add(p->r, "dhcp.servers", LADE_CHECK_WARN, NULL,
                       "Keep one DHCP server on the chargers' network; a second one is often a "
                       "router or access point with its DHCP server left on.",
                       "%u%s DHCP servers answer (%s): a charger takes whichever answers first, "
                       "and may get wrong settings.",
                       res->n_servers, res->servers_more ? "+" : "", list);
    }
    if (a->has_lease) {
        char d[32];
        duration_text(a->lease_s, d, sizeof d);
        bool longl = a->lease_s == LADE_DHCP_INFINITE || a->lease_s > 86400;
        bool shortl = a->lease_s < 600;
        lade_check_add(p->r, "dhcp.lease", longl || shortl ? LADE_CHECK_WARN : LADE_CHECK_PASS,
                       NULL,
                       longl    ? "Set the lease time to a few hours, at most a day (e.g. 12 h)."
                       : shortl ? "Set the lease time to at least an hour (e.g. 12 h)."
                                : NULL,
                       longl    ? "The lease time is long (%s): the address of a replaced or "
                                  "moved charger stays taken that long, and a full pool frees up "
                                  "slowly."
                       : shortl ? "The lease time is very short (%s): chargers renew often, "
                                  "which costs data and breaks them quickly when the server is "
                                  "down."
                                : "The lease time is %s.",
                       d);
    }
    if (a->n_routers == 0)
        lade_check_add(p->r, "dhcp.router", LADE_CHECK_FAIL, NULL,
                       "Make the DHCP server hand out the gateway (option 3, \"router\").",
                       "The DHCP server gives no router (gateway): chargers would have no way to "
                       "the internet.");
    else {
        ip_list(a->routers, a->n_routers, list, sizeof list);
        lade_check_add(p->r, "dhcp.router", LADE_CHECK_PASS, NULL, NULL,
                       "The DHCP server gives the router %s.", list);
    }
    char fb[160];
    addr_list(p->cfg.fallbacks, p->cfg.n_fallbacks, fb, sizeof fb);
    if (a->n_dns == 0) {
        p->dhcp_no_dns = true;
        lade_check_add(p->r, "dhcp.dns", LADE_CHECK_WARN, NULL,
                       "Make the DHCP server hand out a DNS server (option 6), e.g. the "
                       "router's address.",
                       "The DHCP server gives no DNS server: chargers can only ask their "
                       "fallback servers (%s), across the internet.",
                       fb[0] ? fb : "none");
    } else {
        ip_list(a->dns, a->n_dns, list, sizeof list);
        lade_check_add(p->r, "dhcp.dns", LADE_CHECK_PASS, ip_array(a->dns, a->n_dns), NULL,
                       "The DHCP server gives the DNS server%s %s.", a->n_dns > 1 ? "s" : "", list);
        if (p->cfg.n_dns == 0) {
            for (size_t i = 0; i < a->n_dns && p->n_site < LADE_SITEPROBE_MAX_DNS; i++) {
                struct sockaddr_in *in = (struct sockaddr_in *)&p->site[p->n_site].ss;
                memset(&p->site[p->n_site], 0, sizeof p->site[0]);
                in->sin_family = AF_INET;
                in->sin_addr.s_addr = htonl(a->dns[i]);
                p->site[p->n_site++].len = sizeof *in;
            }
            p->site_from = "DHCP";
        }
    }
}

#define POOL_ROUNDS 4

static void on_dhcp(void *ud, const struct lade_dhcpprobe_result *res);

static void eval_pool(struct lade_siteprobe *p)
{
    unsigned want = p->cfg.new_clients;
    bool ok = p->n_pool_addrs >= want;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "wanted", want);
    cJSON_AddNumberToObject(d, "distinct_addresses", p->n_pool_addrs);
    cJSON_AddNumberToObject(d, "clients_asked", p->pool_asked);
    cJSON_AddNumberToObject(d, "rounds", p->pool_round + 1);
    lade_check_add(p->r, "dhcp.pool", ok ? LADE_CHECK_PASS : LADE_CHECK_FAIL, d,
                   ok ? NULL
                      : "Enlarge the DHCP pool to at least one address per charger plus spare, "
                        "shorten the lease time, and keep the chargers' network dedicated.",
                   ok ? "The pool offered %u different addresses to made-up new chargers: there "
                        "is room for %u chargers."
                      : "Made-up new chargers were offered only %u different addresses (%u "
                        "wanted): the pool cannot give every charger an address.",
                   p->n_pool_addrs, want);
}

/* Counts the different addresses offered. A server that does not reserve what it offers
 * (dnsmasq) may offer one free address to several clients that only ask (their hashes lead to
 * the same free address); asking again as other made-up clients finds the rest, while an
 * exhausted pool keeps offering the same few. */
static bool pool_round(struct lade_siteprobe *p, const struct lade_dhcpprobe_result *res)
{
    p->pool_asked += res->n_clients;
    for (unsigned i = 0; i < res->n_clients; i++) {
        const struct lade_dhcpprobe_client *c = &res->clients[i];
        bool seen = !c->answered;
        for (unsigned k = 0; !seen && k < p->n_pool_addrs; k++)
            seen = p->pool_addrs[k] == c->offer.addr;
        if (!seen && p->n_pool_addrs < LADE_DHCPPROBE_MAX_CLIENTS)
            p->pool_addrs[p->n_pool_addrs++] = c->offer.addr;
    }
    if (p->n_pool_addrs >= p->cfg.new_clients || res->clients_answered == 0 ||
        p->pool_round + 1 >= POOL_ROUNDS)
        return false;
    lade_dhcpprobe_free(p->dhcp);
    p->dhcp = NULL;
    struct lade_dhcpprobe_cfg c;
    lade_dhcpprobe_cfg_default(&c);
    c.ifname = p->cfg.ifname;
    c.clients = p->cfg.new_clients;
    c.inform = false;
    c.timeout_ms = p->cfg.timeout_ms < 2000 ? 2000 : p->cfg.timeout_ms;
    p->pool_round++;
    return lade_dhcpprobe_start(p->loop, &c, on_dhcp, p, &p->dhcp, NULL) == LADE_OK;
}

static void on_dhcp(void *ud, const struct lade_dhcpprobe_result *res)
{
    struct lade_siteprobe *p = ud;
    if (p->pool_round == 0)
        eval_dhcp(p, res);
    if (p->cfg.new_clients > 1 && p->dhcp_ran) {
        if (pool_round(p, res))
            return; /* another round */
        eval_pool(p);
    }
    if (--p->pending == 0)
        next_phase(p);
}

static void start_dhcp(struct lade_siteprobe *p)
{
    if (!p->cfg.dhcp || !p->cfg.ifname) {
        if (p->cfg.on_charger)
            lade_check_add(p->r, "dhcp.offer", LADE_CHECK_NOTE, NULL, NULL,
                           "DHCP was not checked: the operating system configures this "
                           "charger's network, not the charger.");
        else
            lade_check_add(p->r, "dhcp.offer", LADE_CHECK_NOTE, NULL,
                           "Give the interface on the chargers' network (--interface) and run "
                           "as root to check DHCP.",
                           "DHCP was not checked.");
        return;
    }
    struct lade_dhcpprobe_cfg c;
    lade_dhcpprobe_cfg_default(&c);
    c.ifname = p->cfg.ifname;
    if (p->cfg.new_clients == 0)
        p->cfg.new_clients = 1;
    if (p->cfg.new_clients > LADE_DHCPPROBE_MAX_CLIENTS)
        p->cfg.new_clients = LADE_DHCPPROBE_MAX_CLIENTS;
    c.clients = p->cfg.new_clients;
    c.timeout_ms = p->cfg.timeout_ms < 2000 ? 2000 : p->cfg.timeout_ms;
    int os_errno = 0;
    lade_err e = lade_dhcpprobe_start(p->loop, &c, on_dhcp, p, &p->dhcp, &os_errno);
    if (e == LADE_OK) {
        p->pending++;
        return;
    }
    if (e == LADE_ERR_IO && (os_errno == EPERM || os_errno == EACCES))
        lade_check_add(p->r, "dhcp.offer", LADE_CHECK_WARN, NULL,
                       p->cfg.on_charger ? NULL : "Run lade-check as root (sudo) to check DHCP.",
                       "DHCP was not checked: asking the DHCP server needs root (a raw socket).");
    else if (e == LADE_ERR_NOT_FOUND)
        lade_check_add(p->r, "dhcp.offer", LADE_CHECK_FAIL, NULL,
                       "Give the interface on the chargers' network (see `ip link`).",
                       "There is no interface %s on %s.", p->cfg.ifname, p->self);
    else if (e == LADE_ERR_STATE)
        lade_check_add(p->r, "dhcp.offer", LADE_CHECK_FAIL, NULL,
                       "Bring the interface up and connect it to the chargers' network.",
                       "The interface %s is down (or not Ethernet-like).", p->cfg.ifname);
    else
        lade_check_add(p->r, "dhcp.offer", LADE_CHECK_WARN, NULL, NULL,
                       "DHCP was not checked: %s%s%s%s.", lade_strerror(e), os_errno ? " (" : "",
                       os_errno ? strerror(os_errno) : "", os_errno ? ")" : "");
}

/* ---------------------------------------------------------------- DNS */

static void on_lookup(void *ud, lade_err err, const struct lade_sockaddr *addrs, size_t n,
                      const struct lade_dnsres_info *info)
{
    struct lookup *l = ud;
    l->q = NULL;
    l->done = true;
    l->err = err;
    l->rcode = info ? info->rcode : -1;
    l->ms = info ? info->elapsed_ms : 0;
    for (size_t i = 0; err == LADE_OK && i < n && i < MAX_ADDRS; i++)
        l->addrs[l->n++] = addrs[i];
    if (--l->p->pending == 0)
        next_phase(l->p);
}

static struct lookup *find_lookup(struct lade_siteprobe *p, size_t name, int via)
{
    for (size_t i = 0; i < p->n_lookups; i++)
        if (p->lookups[i].name == name && p->lookups[i].via == via)
            return &p->lookups[i];
    return NULL;
}

static void pick_site_servers(struct lade_siteprobe *p)
{
    if (p->cfg.n_dns > 0) {
        memcpy(p->site, p->cfg.dns, p->cfg.n_dns * sizeof p->site[0]);
        p->n_site = p->cfg.n_dns;
        p->site_from = p->cfg.on_charger ? "its settings" : "--dns";
        return;
    }
    if (p->n_site > 0 || p->dhcp_ran)
        return; /* DHCP's (possibly none) */
    const char *path = p->cfg.resolv_conf ? p->cfg.resolv_conf : "/etc/resolv.conf";
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char text[4096];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    struct lade_sockaddr all[LADE_SITEPROBE_MAX_DNS];
    size_t n = lade_siteprobe_parse_resolv(text, all, LADE_SITEPROBE_MAX_DNS);
    for (size_t i = 0; i < n; i++) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&all[i].ss;
        if (all[i].ss.ss_family == AF_INET && (ntohl(in->sin_addr.s_addr) >> 24) == 127)
            continue; /* a local stub (systemd-resolved, dnsmasq): not the site's server */
        if (all[i].ss.ss_family == AF_INET6 &&
            IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&all[i].ss)->sin6_addr))
            continue;
        p->site[p->n_site++] = all[i];
    }
    p->site_from = "resolv.conf";
}

static lade_err start_dns(struct lade_siteprobe *p)
{
    pick_site_servers(p);
    struct lade_dnsres_opts o = {.deadline_ms = p->cfg.timeout_ms, .no_cache = true};
    lade_err e = LADE_OK;
    if (p->n_site > 0) {
        e = lade_dnsres_new(p->loop, &o, &p->site_res);
        if (e == LADE_OK)
            e = lade_dnsres_set_dhcp_servers(p->site_res, p->site, p->n_site);
    }
    for (size_t i = 0; e == LADE_OK && i < p->cfg.n_fallbacks; i++) {
        o.fallbacks = &p->cfg.fallbacks[i];
        o.n_fallbacks = 1;
        e = lade_dnsres_new(p->loop, &o, &p->fb_res[i]);
    }
    if (e != LADE_OK)
        return e;
    size_t per = 1 + p->cfg.n_fallbacks;
    p->lookups = calloc(p->n_names * per, sizeof *p->lookups);
    if (!p->lookups)
        return LADE_ERR_NOMEM;
    for (size_t i = 0; i < p->n_names; i++) {
        for (int via = -1; via < (int)p->cfg.n_fallbacks; via++) {
            struct lade_dnsres *res = via < 0 ? p->site_res : p->fb_res[via];
            if (!res)
                continue;
            struct lookup *l = &p->lookups[p->n_lookups++];
            l->p = p;
            l->name = i;
            l->via = via;
            p->pending++;
            e = lade_dnsres_resolve(res, p->names[i].host, AF_INET, on_lookup, l, &l->q);
            if (e != LADE_OK) {
                p->pending--;
                l->done = true;
                l->err = e;
                l->rcode = -1;
            }
        }
    }
    return LADE_OK;
}

static void eval_dns(struct lade_siteprobe *p)
{
    char servers[160];
    addr_list(p->site, p->n_site, servers, sizeof servers);
    /* Which names each path resolved. A name every server that answered calls NXDOMAIN does
     * not exist (a typo in the settings): not the site's fault, reported on its own. */
    size_t site_ok = 0, site_nx = 0, any_ok = 0, n_nowhere = 0;
    uint32_t site_slowest = 0;
    char failed[400] = "", nowhere[400] = "";
    size_t foff = 0, noff = 0;
    for (size_t i = 0; i < p->n_names; i++) {
        struct name *nm = &p->names[i];
        struct lookup *s = find_lookup(p, i, -1);
        size_t ran = 0, nx = 0;
        for (int via = -1; via < (int)p->cfg.n_fallbacks; via++) {
            struct lookup *l = find_lookup(p, i, via);
            ran += l != NULL;
            nx += l && l->err == LADE_ERR_NOT_FOUND;
        }
        if (ran > 0 && nx == ran) {
            n_nowhere++;
            nm->nowhere = true;
            if (noff < sizeof nowhere)
                noff += (size_t)snprintf(nowhere + noff, sizeof nowhere - noff, "%s%s (%s)",
                                         noff ? ", " : "", nm->host, nm->role);
            continue;
        }
        if (s && s->err == LADE_OK) {
            site_ok++;
            if (s->ms > site_slowest)
                site_slowest = s->ms;
            memcpy(nm->addrs, s->addrs, s->n * sizeof s->addrs[0]);
            nm->n = s->n;
        } else if (s) {
            if (s->err == LADE_ERR_NOT_FOUND)
                site_nx++;
            if (foff < sizeof failed)
                foff += (size_t)snprintf(failed + foff, sizeof failed - foff, "%s%s: %s",
                                         foff ? "; " : "", nm->host, err_words(s->err, s->rcode));
        }
        for (size_t f = 0; nm->n == 0 && f < p->cfg.n_fallbacks; f++) {
            struct lookup *l = find_lookup(p, i, (int)f);
            if (l && l->err == LADE_OK) {
                memcpy(nm->addrs, l->addrs, l->n * sizeof l->addrs[0]);
                nm->n = l->n;
            }
        }
        if (nm->n > 0)
            any_ok++;
    }
    /* Fallback servers: which answer at all. */
    size_t fb_answering = 0;
    char fb_dead[160] = "", fb_all[160] = "";
    size_t doff = 0;
    addr_list(p->cfg.fallbacks, p->cfg.n_fallbacks, fb_all, sizeof fb_all);
    for (size_t f = 0; f < p->cfg.n_fallbacks; f++) {
        size_t ok = 0;
        for (size_t i = 0; i < p->n_names; i++) {
            struct lookup *l = find_lookup(p, i, (int)f);
            ok += l && (l->err == LADE_OK || l->err == LADE_ERR_NOT_FOUND);
        }
        if (ok > 0) {
            fb_answering++;
        } else if (doff < sizeof fb_dead) {
            char s[LADE_SOCKADDR_STRLEN];
            addr_text(&p->cfg.fallbacks[f], s, sizeof s);
            doff += (size_t)snprintf(fb_dead + doff, sizeof fb_dead - doff, "%s%s",
                                     doff ? ", " : "", s);
        }
    }
    bool fb_ok = p->cfg.n_fallbacks > 0 && fb_answering == p->cfg.n_fallbacks;

    /* The names per lookup path, for tools. */
    cJSON *data = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(data, "lookups");
    for (size_t k = 0; k < p->n_lookups; k++) {
        const struct lookup *l = &p->lookups[k];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, o);
        cJSON_AddStringToObject(o, "name", p->names[l->name].host);
        char via[LADE_SOCKADDR_STRLEN] = "site";
        if (l->via >= 0)
            addr_text(&p->cfg.fallbacks[l->via], via, sizeof via);
        cJSON_AddStringToObject(o, "via", via);
        cJSON_AddStringToObject(o, "result", l->err == LADE_OK ? "ok" : lade_strerror(l->err));
        cJSON_AddNumberToObject(o, "ms", l->ms);
        cJSON_AddItemToObject(o, "addresses", addr_array(l->addrs, l->n));
    }
    cJSON_AddItemToObject(data, "site_servers", addr_array(p->site, p->n_site));
    cJSON_AddStringToObject(data, "site_servers_from", p->site_from ? p->site_from : "none");
    if (n_nowhere > 0)
        lade_check_add(p->r, "dns.names", LADE_CHECK_FAIL, NULL,
                       p->cfg.on_charger
                           ? "Check the charger's factory settings (hub and firmware hosts, NTP "
                             "host)."
                           : "Check the host names lade-check was given (--hub, "
                             "--firmware-hosts, --ntp, --factory): they must be the chargers' "
                             "factory settings.",
                       "%s: every DNS server says %s not exist.", nowhere,
                       n_nowhere == 1 ? "this name does" : "these names do");
    size_t n_exist = p->n_names - n_nowhere;

    if (p->n_site == 0) {
        if (p->dhcp_ran) {
            /* dhcp.dns has the warning and the remedy. */
            lade_check_add(p->r, "dns.site", fb_ok ? LADE_CHECK_NOTE : LADE_CHECK_FAIL, data,
                           fb_ok ? NULL
                                 : "Make the DHCP server hand out a working DNS server, or allow "
                                   "DNS to the fallback servers (below).",
                           "No site DNS server to check (DHCP gives none); the names were "
                           "checked through the fallback servers (%s)%s.",
                           fb_all,
                           fb_ok ? "" : ", which do not answer: chargers cannot find the cloud");
        } else {
            lade_check_add(p->r, "dns.site", LADE_CHECK_NOTE, data,
                           p->cfg.on_charger
                               ? NULL
                               : "Run lade-check as root on the chargers' network (it then asks "
                                 "the DHCP server), or give the site's DNS server with --dns.",
                           "The site's DNS server is not known: %s uses only a local resolver. "
                           "The names were checked through the fallback servers.",
                           p->self);
        }
    } else if (site_ok == n_exist) {
        bool slow = site_slowest > 1000;
        lade_check_add(p->r, "dns.site", slow ? LADE_CHECK_WARN : LADE_CHECK_PASS, data,
                       slow ? "Check the DNS server's upstream; chargers wait for slow answers "
                              "before they can connect."
                            : NULL,
                       "All %zu names resolve through %s (from %s), the slowest in %u ms.", n_exist,
                       servers, p->site_from, (unsigned)site_slowest);
    } else if (site_nx > 0 && any_ok == n_exist) {
        lade_check_add(p->r, "dns.site", LADE_CHECK_FAIL, data,
                       "Allow these names in the DNS filter of the site (the chargers' cloud "
                       "services must resolve).",
                       "%s (from %s) says these names do not exist, while public DNS resolves "
                       "them: %s. A DNS filter blocks them.",
                       servers, p->site_from, failed);
    } else {
        bool covered = any_ok == n_exist && fb_answering > 0;
        lade_check_add(p->r, "dns.site", covered ? LADE_CHECK_WARN : LADE_CHECK_FAIL, data,
                       "Fix the site's DNS server (it must answer for these names on UDP and "
                       "TCP port 53), or hand out a working one by DHCP.",
                       "The site's DNS server %s (from %s) fails: %s.%s", servers, p->site_from,
                       failed,
                       covered ? " Chargers get by with the fallback servers, after a delay." : "");
    }
    if (p->cfg.n_fallbacks == 0)
        return;
    if (fb_ok) {
        lade_check_add(p->r, "dns.fallback", LADE_CHECK_PASS, NULL, NULL,
                       "The fallback DNS servers %s answer (DNS port 53 is open outbound).",
                       fb_all);
    } else if (fb_answering > 0) {
        lade_check_add(p->r, "dns.fallback", LADE_CHECK_WARN, NULL,
                       "Allow DNS (UDP and TCP port 53) outbound to every fallback server.",
                       "No answer from the fallback DNS server %s, while the others of %s "
                       "answer: DNS to it is blocked, or it is down.",
                       fb_dead, fb_all);
    } else {
        bool site_fine = p->n_site > 0 && site_ok == n_exist;
        lade_check_add(
            p->r, "dns.fallback", site_fine ? LADE_CHECK_WARN : LADE_CHECK_FAIL, NULL,
            "Allow DNS (UDP and TCP port 53) outbound to the fallback servers.",
            "No answer from the fallback DNS server%s %s: DNS to the internet is blocked. %s",
            p->cfg.n_fallbacks > 1 ? "s" : "", fb_dead,
            site_fine ? "Chargers work through the site's DNS, but have no way around it when "
                        "it fails."
                      : "Together with the site's DNS failing, chargers cannot find the cloud.");
    }
}

/* ---------------------------------------------------------------- NTP */

static int64_t wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void ntp_finish(struct ntpq *q, enum lade_sntp_result res)
{
    struct lade_siteprobe *p = q->p;
    q->done = true;
    q->result = res;
    lade_timer_cancel(p->loop, &q->timer);
    if (q->fd >= 0) {
        lade_loop_unwatch(p->loop, q->fd);
        close(q->fd);
        q->fd = -1;
    }
    if (--p->pending == 0)
        next_phase(p);
}

static void ntp_send(struct ntpq *q)
{
    uint8_t pkt[LADE_SNTP_PACKET_LEN];
    size_t len = 0;
    if (lade_random(&q->cookie, sizeof q->cookie) != LADE_OK ||
        lade_sntp_encode_request(q->cookie, pkt, sizeof pkt, &len) != LADE_OK) {
        ntp_finish(q, LADE_SNTP_E_SEND);
        return;
    }
    q->tries++;
    q->t1_us = wall_us();
    if (send(q->fd, pkt, len, 0) < 0 && errno != ECONNREFUSED) {
        ntp_finish(q, LADE_SNTP_E_SEND);
        return;
    }
    uint32_t per = q->p->cfg.timeout_ms / NTP_TRIES;
    if (lade_timer_arm_in(q->p->loop, &q->timer, per < 500 ? 500 : per) != LADE_OK)
        ntp_finish(q, LADE_SNTP_E_SEND);
}

static void on_ntp_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct ntpq *q = ud;
    if (q->tries >= NTP_TRIES)
        ntp_finish(q, LADE_SNTP_E_TIMEOUT);
    else
        ntp_send(q);
}

static void on_ntp_read(struct lade_loop *loop, int fd, uint32_t events, void *ud)
{
    (void)loop;
    (void)events;
    struct ntpq *q = ud;
    uint8_t buf[512];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    int64_t t4 = wall_us();
    if (n < 0) {
        if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH)
            ntp_finish(q, LADE_SNTP_E_REFUSED);
        return;
    }
    struct lade_sntp_reply rep;
    enum lade_sntp_result res = lade_sntp_decode_reply(buf, (size_t)n, q->cookie, &rep);
    if (res == LADE_SNTP_E_ORIGIN)
        return; /* a stale or forged reply: keep waiting */
    if (res == LADE_SNTP_OK) {
        uint64_t t1 = lade_ntp_from_unix_ms(q->t1_us / 1000);
        uint64_t t4n = lade_ntp_from_unix_ms(t4 / 1000);
        lade_sntp_offset_delay(t1, rep.pkt.rx_ts, rep.pkt.tx_ts, t4n, &q->offset_us, &q->delay_us);
        q->stratum = rep.pkt.stratum;
    }
    ntp_finish(q, res);
}

static void start_ntp(struct lade_siteprobe *p)
{
    struct name *nm = &p->names[p->ntp_name];
    for (size_t i = 0; i < nm->n && p->n_ntp < 4; i++) {
        struct ntpq *q = &p->ntp[p->n_ntp++];
        q->p = p;
        q->addr = nm->addrs[i];
        lade_sockaddr_set_port(&q->addr, p->cfg.ntp_port ? p->cfg.ntp_port : LADE_SNTP_PORT);
        lade_timer_init(&q->timer, on_ntp_timer, q);
        p->pending++;
        q->fd = socket(q->addr.ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (q->fd >= 0 && p->cfg.ifname && p->cfg.ifname[0] &&
            setsockopt(q->fd, SOL_SOCKET, SO_BINDTODEVICE, p->cfg.ifname,
                       (socklen_t)strlen(p->cfg.ifname)) < 0)
            LOG_D(MOD, "NTP socket not bound to %s: %s", p->cfg.ifname, strerror(errno));
        if (q->fd < 0 || connect(q->fd, (struct sockaddr *)&q->addr.ss, q->addr.len) < 0 ||
            lade_loop_watch(p->loop, q->fd, LADE_IO_READ, on_ntp_read, q) != LADE_OK) {
            ntp_finish(q, LADE_SNTP_E_SEND);
            continue;
        }
        ntp_send(q);
    }
}

static void eval_ntp(struct lade_siteprobe *p)
{
    struct name *nm = &p->names[p->ntp_name];
    const char *remedy = "Allow NTP (UDP port 123) outbound to the NTP host. Chargers need "
                         "trusted time before they can log in to the cloud.";
    if (nm->n == 0) {
        lade_check_add(p->r, "time.ntp", LADE_CHECK_FAIL, NULL,
                       "Fix DNS first (see above); chargers need this name to set their clock.",
                       "The NTP host %s was not checked: its name does not resolve.", nm->host);
        return;
    }
    size_t ok = 0, refused = 0, unusable = 0, send_failed = 0;
    const char *why = "";
    int64_t best_delay = -1, offset = 0;
    unsigned stratum = 0;
    cJSON *data = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(data, "servers");
    for (size_t i = 0; i < p->n_ntp; i++) {
        struct ntpq *q = &p->ntp[i];
        char s[LADE_SOCKADDR_STRLEN];
        addr_text(&q->addr, s, sizeof s);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToArray(arr, o);
        cJSON_AddStringToObject(o, "address", s);
        cJSON_AddStringToObject(o, "result", lade_sntp_result_name(q->result));
        if (q->result == LADE_SNTP_OK) {
            ok++;
            cJSON_AddNumberToObject(o, "offset_ms", (double)q->offset_us / 1000.0);
            cJSON_AddNumberToObject(o, "delay_ms", (double)q->delay_us / 1000.0);
            cJSON_AddNumberToObject(o, "stratum", q->stratum);
            if (best_delay < 0 || q->delay_us < best_delay) {
                best_delay = q->delay_us;
                offset = q->offset_us;
                stratum = q->stratum;
            }
        } else if (q->result == LADE_SNTP_E_REFUSED) {
            refused++;
        } else if (q->result == LADE_SNTP_E_SEND) {
            send_failed++;
        } else if (q->result != LADE_SNTP_E_TIMEOUT) {
            unusable++; /* it answered: Kiss-o'-Death, unsynchronised, bad stratum, ... */
            why = lade_sntp_result_name(q->result);
        }
    }
    if (ok == 0 && unusable > 0) {
        lade_check_add(p->r, "time.ntp", LADE_CHECK_FAIL, data,
                       "Check the NTP host: it must be a synchronised server that serves "
                       "clients (chargers cannot set their clock from it).",
                       "%s answers NTP, but not usably (%s): the server is not synchronised, "
                       "rate-limits or refuses clients.",
                       nm->host, why);
        return;
    }
    if (ok == 0 && send_failed == p->n_ntp) {
        lade_check_add(p->r, "time.ntp", LADE_CHECK_FAIL, data,
                       "Check the route to the internet from the chargers' network.",
                       "No NTP request to %s could be sent (no route to it).", nm->host);
        return;
    }
    if (ok == 0) {
        lade_check_add(p->r, "time.ntp", LADE_CHECK_FAIL, data, remedy,
                       "No NTP answer from %s (%zu address%s tried, %s): UDP port 123 is "
                       "blocked or the host is down.",
                       nm->host, p->n_ntp, p->n_ntp == 1 ? "" : "es",
                       refused ? "port unreachable" : "no reply");
        return;
    }
    p->clock_offset_us = offset;
    p->have_offset = true;
    lade_check_add(p->r, "time.ntp", LADE_CHECK_PASS, data, NULL,
                   "%s answers NTP (%zu of %zu address%s, stratum %u, round trip %.1f ms).",
                   nm->host, ok, p->n_ntp, p->n_ntp == 1 ? "" : "es", stratum,
                   best_delay > 0 ? (double)best_delay / 1000.0 : 0.0);
    double off_s = (double)offset / 1e6;
    bool far = off_s > 60 || off_s < -60;
    /* A charger keeps its own trusted time (docs/time.md): its system clock is only noted. */
    bool warn = far && !p->cfg.on_charger;
    lade_check_add(p->r, "time.clock", warn ? LADE_CHECK_WARN : LADE_CHECK_NOTE, NULL,
                   warn ? "Set this computer's clock right (it does not affect the chargers, "
                          "which set theirs by NTP; the TLS checks below use NTP's time)."
                        : NULL,
                   "The system clock of %s is %.3f s %s the NTP time.", p->self,
                   off_s < 0 ? -off_s : off_s, offset > 0 ? "behind" : "ahead of");
}

/* ---------------------------------------------------------------- outbound TCP + TLS */

static void on_tls(struct lade_tls_conn *c, lade_err err, uint32_t events, void *ud)
{
    (void)events;
    struct reach *x = ud;
    if (x->done)
        return;
    x->done = true;
    x->err = err;
    lade_tls_conn_stats(c, &x->st);
    lade_tls_conn_peer(c, &x->peer);
    struct lade_siteprobe *p = x->p;
    if (--p->pending == 0)
        next_phase(p);
}

static struct name *name_of(struct lade_siteprobe *p, const char *host)
{
    for (size_t i = 0; i < p->n_names; i++)
        if (strcmp(p->names[i].host, host) == 0)
            return &p->names[i];
    return NULL;
}

static void start_reach(struct lade_siteprobe *p)
{
    int64_t verify = p->have_offset ? (wall_us() + p->clock_offset_us) / 1000000 : 0;
    for (size_t i = 0; i < p->n_reach; i++) {
        struct reach *x = &p->reach[i];
        struct name *nm = name_of(p, x->host);
        if (!nm || nm->n == 0) {
            x->done = true;
            x->err = LADE_ERR_RESOLVE;
            continue;
        }
        struct lade_tls_conn_opts o = {
            .host = x->host,
            .addrs = nm->addrs,
            .n_addrs = nm->n,
            .port = x->port,
            .connect_timeout_ms = p->cfg.timeout_ms,
            .handshake_timeout_ms = p->cfg.timeout_ms,
            .bind_ifname = p->cfg.ifname,
            .verify_time_s = verify,
        };
        lade_err e = lade_tls_conn_new(&x->c, p->tls, &o);
        if (e == LADE_OK) {
            p->pending++;
            e = lade_tls_conn_attach(x->c, p->loop, on_tls, x);
            if (e != LADE_OK)
                p->pending--;
        }
        if (e != LADE_OK) {
            x->done = true;
            x->err = e;
        }
    }
}

static bool issuer_problem(long code)
{
    return code == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
           code == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT ||
           code == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN ||
           code == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
           code == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE;
}

/* One finding for one host:port. soft: another firmware host works (warn, not fail). */
static void eval_one(struct lade_siteprobe *p, const struct reach *x, bool soft)
{
    char id[LADE_CHECK_ID_MAX];
    if (x->hub)
        snprintf(id, sizeof id, "reach.hub");
    else
        snprintf(id, sizeof id, "reach.fw.%s", x->host);
    char allow[200];
    snprintf(allow, sizeof allow,
             "Allow outbound TCP port %u to %s in the firewall (chargers open the connection "
             "themselves; nothing inbound is needed).",
             (unsigned)x->port, x->host);
    enum lade_check_status bad = soft ? LADE_CHECK_WARN : LADE_CHECK_FAIL;
    const char *also = soft ? " Chargers use the other firmware hosts meanwhile." : "";
    cJSON *data = cJSON_CreateObject();
    cJSON_AddStringToObject(data, "host", x->host);
    cJSON_AddNumberToObject(data, "port", x->port);
    cJSON_AddStringToObject(data, "result", x->err == LADE_OK ? "ok" : lade_strerror(x->err));
    cJSON_AddBoolToObject(data, "tcp_connected", x->st.addr_index >= 0);
    if (x->st.addr_index >= 0)
        cJSON_AddNumberToObject(data, "connect_ms", (double)x->st.connect_ms);
    if (x->peer.have_cert) {
        cJSON_AddStringToObject(data, "subject", x->peer.subject);
        cJSON_AddStringToObject(data, "issuer", x->peer.issuer);
        cJSON_AddStringToObject(data, "root_issuer", x->peer.top_issuer);
        cJSON_AddStringToObject(data, "not_after", x->peer.not_after);
        if (x->peer.verify_error[0])
            cJSON_AddStringToObject(data, "verify_error", x->peer.verify_error);
    }
    if (x->err == LADE_OK) {
        cJSON_AddStringToObject(data, "tls_version", x->st.version);
        lade_check_add(p->r, id, LADE_CHECK_PASS, data, NULL,
                       "%s port %u: %s, certificate verified (%s, issued by %s), %llu ms.", x->host,
                       (unsigned)x->port, x->st.version, x->peer.subject, x->peer.issuer,
                       (unsigned long long)(x->st.connect_ms + x->st.handshake_ms));
        return;
    }
    if (x->err == LADE_ERR_RESOLVE) {
        const struct name *nm = name_of(p, x->host);
        bool nowhere = nm && nm->nowhere;
        lade_check_add(p->r, id, bad, data,
                       nowhere ? "Check the host name (see the DNS findings)."
                               : "Fix DNS first (see above).",
                       "%s port %u was not checked: the name %s.%s", x->host, (unsigned)x->port,
                       nowhere ? "does not exist" : "does not resolve", also);
        return;
    }
    if (!x->c) {
        lade_check_add(p->r, id, bad, data, NULL, "%s port %u was not checked: %s.%s", x->host,
                       (unsigned)x->port, lade_strerror(x->err), also);
        return;
    }
    if (x->st.addr_index < 0 && x->err == LADE_ERR_TIMEOUT) {
        lade_check_add(p->r, id, bad, data, allow,
                       "%s port %u: no answer to the connection attempt (%u ms): a firewall "
                       "drops outbound TCP %u.%s",
                       x->host, (unsigned)x->port, (unsigned)p->cfg.timeout_ms, (unsigned)x->port,
                       also);
        return;
    }
    if (x->st.addr_index < 0) {
        lade_check_add(p->r, id, bad, data, allow,
                       "%s port %u: the connection is refused (reset or unreachable): a firewall "
                       "rejects outbound TCP %u, or the service is down.%s",
                       x->host, (unsigned)x->port, (unsigned)x->port, also);
        return;
    }
    if (x->err == LADE_ERR_CERT && x->peer.have_cert && issuer_problem(x->peer.verify_code)) {
        lade_check_add(p->r, id, bad, data,
                       "Exempt this host and port from TLS (SSL) inspection in the firewall. "
                       "Chargers verify the cloud's certificate and never connect through an "
                       "inspecting proxy.",
                       "%s port %u: the certificate presented is issued by \"%s\", which chargers "
                       "do not trust (%s): a firewall or proxy intercepts TLS.%s",
                       x->host, (unsigned)x->port, x->peer.top_issuer, x->peer.verify_error, also);
        return;
    }
    if (x->err == LADE_ERR_CERT && x->peer.have_cert &&
        x->peer.verify_code == X509_V_ERR_HOSTNAME_MISMATCH) {
        lade_check_add(p->r, id, bad, data,
                       "Make sure the name is right and resolves to the real service (check the "
                       "settings, the DNS filter and any proxy in between).",
                       "%s port %u: the server presents a certificate for other names (%s, "
                       "issued by %s), not for %s: a wrong host name, a wrong DNS answer or a "
                       "proxy.%s",
                       x->host, (unsigned)x->port, x->peer.subject, x->peer.issuer, x->host, also);
        return;
    }
    if (x->err == LADE_ERR_CERT && x->peer.have_cert) {
        bool time = x->peer.verify_code == X509_V_ERR_CERT_HAS_EXPIRED ||
                    x->peer.verify_code == X509_V_ERR_CERT_NOT_YET_VALID;
        lade_check_add(p->r, id, bad, data,
                       time ? "The certificate was checked at NTP's time when NTP answered, else "
                              "at the system clock; if that is right, the service's certificate "
                              "is out of date."
                            : "Check that nothing between the site and the internet answers in "
                              "place of the service.",
                       "%s port %u: the certificate (%s, issued by %s) is not accepted: %s.%s",
                       x->host, (unsigned)x->port, x->peer.subject, x->peer.issuer,
                       x->peer.verify_error, also);
        return;
    }
    lade_check_add(p->r, id, bad, data,
                   "Check that nothing between the site and the internet (a proxy, a captive "
                   "portal) answers in place of the service on this port.",
                   "%s port %u: TCP connects but the TLS handshake fails (%s): something other "
                   "than the service answers.%s",
                   x->host, (unsigned)x->port, lade_strerror(x->err), also);
}

static void eval_reach(struct lade_siteprobe *p)
{
    bool fw_any = false;
    for (size_t i = 0; i < p->n_reach; i++)
        fw_any |= !p->reach[i].hub && p->reach[i].err == LADE_OK;
    for (size_t i = 0; i < p->n_reach; i++)
        eval_one(p, &p->reach[i], !p->reach[i].hub && fw_any);
    if (p->fw_dropped)
        lade_check_add(p->r, "reach.fw", LADE_CHECK_NOTE, NULL, NULL,
                       "%u more firmware host%s not checked (at most %d are).", p->fw_dropped,
                       p->fw_dropped == 1 ? " was" : "s were", MAX_FW);
    lade_check_add(p->r, "reach.inbound", LADE_CHECK_NOTE, NULL, NULL,
                   "No inbound port is needed: chargers open every connection themselves and "
                   "work behind NAT without port forwarding.");
}

/* ---------------------------------------------------------------- phases */

static void on_kick(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_siteprobe *p = ud;
    if (p->phase == PH_DONE) {
        p->done(p->ud);
        return;
    }
    if (p->pending == 0)
        next_phase(p);
}

/* Ends the current phase (its results are complete) and starts the next one; a phase with
 * nothing to wait for ends at once through the kick timer (never recursing). */
static void next_phase(struct lade_siteprobe *p)
{
    /* Held while a phase starts: a probe that fails at once (no route) must not end the phase
     * before its siblings are started. */
    p->pending++;
    switch (p->phase) {
    case PH_DHCP:
        lade_dhcpprobe_free(p->dhcp);
        p->dhcp = NULL;
        p->phase = PH_DNS;
        if (start_dns(p) != LADE_OK)
            LOG_E(MOD, "DNS probe: out of memory");
        break;
    case PH_DNS:
        eval_dns(p);
        p->phase = PH_NTP;
        start_ntp(p);
        break;
    case PH_NTP:
        eval_ntp(p);
        p->phase = PH_REACH;
        start_reach(p);
        break;
    case PH_REACH:
        eval_reach(p);
        p->phase = PH_DONE;
        break;
    case PH_DONE:
        break;
    }
    p->pending--;
    if (p->pending == 0 && lade_timer_arm_in(p->loop, &p->kick, 0) != LADE_OK)
        LOG_E(MOD, "timer: out of memory");
}

/* False when the table is full (the name is not checked). */
static bool add_name(struct lade_siteprobe *p, const char *host, const char *role, size_t *index)
{
    for (size_t i = 0; i < p->n_names; i++) {
        if (strcmp(p->names[i].host, host) == 0) {
            if (index)
                *index = i;
            return true;
        }
    }
    if (p->n_names == LADE_SITEPROBE_MAX_NAMES)
        return false;
    struct name *nm = &p->names[p->n_names];
    snprintf(nm->host, sizeof nm->host, "%s", host);
    nm->role = role;
    if (index)
        *index = p->n_names;
    p->n_names++;
    return true;
}

lade_err lade_siteprobe_start(struct lade_loop *loop, const struct lade_siteprobe_cfg *cfg,
                              struct lade_check_report *report, void (*done)(void *ud), void *ud,
                              struct lade_siteprobe **out)
{
    if (!loop || !cfg || !report || !done || !out || !cfg->hub_host || !cfg->hub_host[0] ||
        !cfg->ca_file || !cfg->ntp_host || !cfg->ntp_host[0] ||
        cfg->n_dns > LADE_SITEPROBE_MAX_DNS || cfg->n_fallbacks > LADE_SITEPROBE_MAX_DNS)
        return LADE_ERR_INVAL;
    struct lade_siteprobe *p = calloc(1, sizeof *p);
    if (!p)
        return LADE_ERR_NOMEM;
    p->loop = loop;
    p->cfg = *cfg;
    if (!p->cfg.timeout_ms)
        p->cfg.timeout_ms = 5000;
    if (!p->cfg.hub_port)
        p->cfg.hub_port = 8883;
    if (!p->cfg.fw_port)
        p->cfg.fw_port = 443;
    p->r = report;
    p->self = cfg->on_charger ? "this charger" : "this computer";
    p->done = done;
    p->ud = ud;
    lade_timer_init(&p->kick, on_kick, p);
    lade_err e = lade_tls_ctx_new(&p->tls, cfg->ca_file);
    if (e != LADE_OK) {
        free(p);
        return e;
    }
    add_name(p, cfg->hub_host, "hub", &p->hub_name);
    p->reach[p->n_reach++] = (struct reach){.p = p,
                                            .host = p->names[p->hub_name].host,
                                            .port = p->cfg.hub_port,
                                            .hub = true,
                                            .st.addr_index = -1};
    snprintf(p->fw_list, sizeof p->fw_list, "%s", cfg->fw_hosts ? cfg->fw_hosts : "");
    char *save = NULL;
    for (char *h = strtok_r(p->fw_list, ", ", &save); h; h = strtok_r(NULL, ", ", &save)) {
        size_t idx = 0;
        if (p->n_fw == MAX_FW || !add_name(p, h, "firmware", &idx)) {
            p->fw_dropped++;
            continue;
        }
        p->reach[p->n_reach++] = (struct reach){
            .p = p, .host = p->names[idx].host, .port = p->cfg.fw_port, .st.addr_index = -1};
        p->n_fw++;
    }
    add_name(p, cfg->ntp_host, "NTP", &p->ntp_name);
    p->phase = PH_DHCP;
    start_dhcp(p);
    if (p->pending == 0 && lade_timer_arm_in(loop, &p->kick, 0) != LADE_OK) {
        lade_siteprobe_free(p);
        return LADE_ERR_NOMEM;
    }
    *out = p;
    return LADE_OK;
}

void lade_siteprobe_free(struct lade_siteprobe *p)
{
    if (!p)
        return;
    lade_timer_cancel(p->loop, &p->kick);
    lade_dhcpprobe_free(p->dhcp);
    for (size_t i = 0; i < p->n_lookups; i++)
        lade_dnsres_cancel(p->lookups[i].q);
    free(p->lookups);
    lade_dnsres_free(p->site_res);
    for (size_t i = 0; i < LADE_SITEPROBE_MAX_DNS; i++)
        lade_dnsres_free(p->fb_res[i]);
    for (size_t i = 0; i < p->n_ntp; i++) {
        struct ntpq *q = &p->ntp[i];
        lade_timer_cancel(p->loop, &q->timer);
        if (q->fd >= 0) {
            lade_loop_unwatch(p->loop, q->fd);
            close(q->fd);
        }
    }
    for (size_t i = 0; i < p->n_reach; i++)
        lade_tls_conn_free(p->reach[i].c);
    lade_tls_ctx_free(p->tls);
    free(p);
}

size_t lade_siteprobe_parse_resolv(const char *text, struct lade_sockaddr *out, size_t cap)
{
    size_t n = 0;
    const char *line = text;
    while (line && *line && n < cap) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[128];
        if (len < sizeof buf) {
            memcpy(buf, line, len);
            buf[len] = '\0';
            char word[16], addr[64];
            if (sscanf(buf, " %15s %63s", word, addr) == 2 && strcmp(word, "nameserver") == 0 &&
                lade_sockaddr_parse(addr, &out[n]) == LADE_OK)
                n++;
        }
        line = end ? end + 1 : NULL;
    }
    return n;
}
