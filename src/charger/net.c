/* The charger's own network (SPEC R1-R4, R11, R13, R19; docs/network.md): the interfaces the
 * factory settings name are brought up here — DHCP with IPv4 link-local fallback on each
 * (lade_netif), WiFi through wpa_supplicant (lade_wpa), LTE-M through the modem's AT port
 * (lade_modem) — and the bearer manager (lade_bearer) picks the one the cloud link uses.
 *
 * What the rest of the agent sees:
 *   - net_ready(): may the cloud link try now, over which interface, and if not, why;
 *   - the DNS stub gets the DHCP servers of the bearer in use (the user's dns_servers when it
 *     gave none; then the factory fallbacks, inside the stub);
 *   - trusted time gets a fresh burst when an address arrives (not the minute-long retry);
 *   - the cloud link is redialled when the address it was made from goes away or changes, or
 *     when the bearer manager switches bearers; a carrier flap that keeps the address keeps
 *     the connection (no reconnect storm, R13);
 *   - the watchdog's RECONNECT/RESET/RESTART are carried out (RESTART deferred while a session
 *     is in progress);
 *   - the lease and the link-local address are kept in state_dir/net.json, so a restart asks
 *     for the same lease (INIT-REBOOT) and claims the same link-local address.
 * Without any of those settings the charger leaves the network to the operating system
 * (development machines, the demo) and only reports the configured bearer.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "agent.h"
#include "lade/clock.h"
#include "lade/file.h"
#include "lade/log.h"

#define NET_FILE        "net.json"
#define NET_RETRY_MS    10000 /* an interface that is not there yet (USB modem) */
#define NET_TICK_MAX_MS 60000
#define LEASE_MARGIN_S  10 /* a stored lease this close to expiry is not asked for */
static const char *const KIND_KEY[LADE_BEARER_COUNT] = {"wired", "wifi", "lte"};

static void ip4(uint32_t a, char *buf, size_t cap)
{
    if (!a) {
        snprintf(buf, cap, "%s", "");
        return;
    }
    snprintf(buf, cap, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255u, (a >> 8) & 255u, a & 255u);
}

static uint32_t ip4_parse(const char *s)
{
    struct in_addr in;
    if (!s || inet_pton(AF_INET, s, &in) != 1)
        return 0;
    return ntohl(in.s_addr);
}

static const char *ifname_of(const struct lade_charger *c, int k)
{
    switch (k) {
    case LADE_BEARER_WIRED:
        return c->set.net_interface;
    case LADE_BEARER_WIFI:
        return c->set.wifi_interface;
    case LADE_BEARER_LTE:
        return c->set.lte_interface;
    }
    return "";
}

bool net_managed(const struct lade_charger *c)
{
    return c->net.managed;
}

/* ---- the lease file ---- */

static void load_saved(struct lade_charger *c)
{
    struct agent_net *n = &c->net;
    char path[320];
    snprintf(path, sizeof path, "%s/" NET_FILE, c->set.state_dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char buf[2048];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    cJSON *o = cJSON_Parse(buf);
    if (!o) {
        LOG_W(c->log_tag, "%s: not JSON; ignored (a fresh DHCP attempt follows)", path);
        return;
    }
    for (int k = 0; k < LADE_BEARER_COUNT; k++) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, KIND_KEY[k]);
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(e, "address");
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(e, "expires_s");
        const cJSON *ll = cJSON_GetObjectItemCaseSensitive(e, "link_local");
        if (cJSON_IsString(a) && cJSON_IsNumber(x)) {
            n->saved[k].addr = ip4_parse(a->valuestring);
            n->saved[k].expires_s = (int64_t)x->valuedouble;
        }
        if (cJSON_IsString(ll))
            n->saved[k].ll = ip4_parse(ll->valuestring);
    }
    cJSON_Delete(o);
}

static void save(struct lade_charger *c)
{
    struct agent_net *n = &c->net;
    char path[320];
    snprintf(path, sizeof path, "%s/" NET_FILE, c->set.state_dir);
    cJSON *o = cJSON_CreateObject();
    for (int k = 0; k < LADE_BEARER_COUNT; k++) {
        if (!n->saved[k].addr && !n->saved[k].ll)
            continue;
        cJSON *e = cJSON_AddObjectToObject(o, KIND_KEY[k]);
        char a[16];
        if (n->saved[k].addr) {
            ip4(n->saved[k].addr, a, sizeof a);
            cJSON_AddStringToObject(e, "address", a);
            cJSON_AddNumberToObject(e, "expires_s", (double)n->saved[k].expires_s);
        }
        if (n->saved[k].ll) {
            ip4(n->saved[k].ll, a, sizeof a);
            cJSON_AddStringToObject(e, "link_local", a);
        }
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text || lade_file_write_atomic(path, text, strlen(text), 0600, true) != LADE_OK)
        LOG_W(c->log_tag, "%s not written: %s", path, text ? strerror(errno) : "no memory");
    free(text);
}

/* Keeps net.json in step with what the interface has (written only when it changes). */
static void remember(struct lade_charger *c, int k, const struct lade_netif_status *st)
{
    struct agent_net *n = &c->net;
    uint32_t addr = 0;
    int64_t expires = 0;
    if (st->source == LADE_ADDR_DHCP && st->dhcp.addr && st->dhcp.lease_left_ms) {
        addr = st->dhcp.addr;
        expires = st->dhcp.lease_left_ms == UINT64_MAX
                      ? INT64_MAX / 2
                      : agent_wall_s(c) + (int64_t)(st->dhcp.lease_left_ms / 1000);
    }
    uint32_t ll = st->ll_addr ? st->ll_addr : n->saved[k].ll;
    /* A renewal moves the expiry: rewrite when it moved by more than a minute. */
    int64_t dx = expires - n->saved[k].expires_s;
    if (addr == n->saved[k].addr && ll == n->saved[k].ll && (dx < 60 && dx > -60))
        return;
    if (!addr && n->saved[k].addr && st->source != LADE_ADDR_NONE && st->carrier)
        return; /* link-local while DHCP is away: the stored lease may still be asked for */
    n->saved[k].addr = addr;
    n->saved[k].expires_s = expires;
    n->saved[k].ll = ll;
    save(c);
}

/* ---- bearers ---- */

static void schedule(struct lade_charger *c, uint64_t at)
{
    if (c->net.started) /* drivers report "down" while being stopped: no timer after that */
        agent_arm(c, &c->net.timer, at);
}

/* What the bearer manager is told about kind k, from its drivers. */
static void feed(struct lade_charger *c, int k)
{
    struct agent_net *n = &c->net;
    struct lade_bearer_link_state ls = {.signal = LADE_BEARER_SIGNAL_UNKNOWN};
    bool leased = n->netif[k] && n->st[k].source == LADE_ADDR_DHCP && n->st[k].addr;
    bool own_ip = ifname_of(c, k)[0] != 0; /* our DHCP runs on it: up needs our lease */
    switch (k) {
    case LADE_BEARER_WIRED:
        ls.up = n->st[k].carrier && leased;
        break;
    case LADE_BEARER_WIFI:
        ls = n->wifi_ls;
        if (own_ip)
            ls.up = ls.up && leased;
        break;
    case LADE_BEARER_LTE:
        ls = n->lte_ls;
        if (own_ip)
            ls.up = ls.up && leased;
        break;
    }
    if (lade_bearer_link(&n->bm, k, &ls, lade_mono_ms()) != LADE_OK)
        LOG_W(c->log_tag, "bearer %s: link state refused", lade_bearer_name(k));
    schedule(c, lade_mono_ms());
}

static uint32_t addr_of(const struct lade_charger *c, int k)
{
    if (k == LADE_BEARER_NONE || !c->net.netif[k])
        return 0;
    return c->net.st[k].source == LADE_ADDR_DHCP ? c->net.st[k].addr : 0;
}

/* The DNS stub asks the servers of the bearer in use; the user's dns_servers when it has none. */
static void update_dns(struct lade_charger *c)
{
    struct agent_net *n = &c->net;
    if (!c->dns)
        return;
    int k = n->bm.active;
    for (int i = 0; k == LADE_BEARER_NONE && i < LADE_BEARER_COUNT; i++)
        if (n->bm.cfg.order[i] != LADE_BEARER_NONE && addr_of(c, n->bm.cfg.order[i]))
            k = n->bm.cfg.order[i]; /* none chosen (penalties): the one link_ifname uses */
    struct lade_sockaddr a[LADE_DHCP_MAX_ADDRS];
    size_t cnt = 0;
    if (k != LADE_BEARER_NONE && n->netif[k]) {
        for (size_t i = 0; i < n->st[k].n_dns && cnt < LADE_DHCP_MAX_ADDRS; i++) {
            char s[16];
            ip4(n->st[k].dns[i], s, sizeof s);
            if (lade_sockaddr_parse(s, &a[cnt]) == LADE_OK) {
                lade_sockaddr_set_port(&a[cnt], 53);
                cnt++;
            }
        }
    }
    if (cnt == 0 && c->set.dns_servers[0]) {
        lade_err e = lade_dnsres_parse_servers(c->set.dns_servers, a, LADE_DHCP_MAX_ADDRS, &cnt);
        if (e != LADE_OK && e != LADE_ERR_NOSPACE)
            cnt = 0;
    }
    if (cnt == n->n_dns && memcmp(a, n->dns, cnt * sizeof a[0]) == 0)
        return;
    memcpy(n->dns, a, cnt * sizeof a[0]);
    n->n_dns = cnt;
    if (lade_dnsres_set_dhcp_servers(c->dns, a, cnt) != LADE_OK)
        LOG_W(c->log_tag, "DNS servers not taken");
}

/* The interface the cloud link should use now ("" = let routing decide), or NULL when no
 * network can carry it. */
static const char *link_ifname(const struct lade_charger *c)
{
    const struct agent_net *n = &c->net;
    if (n->bm.active != LADE_BEARER_NONE) {
        /* During the bearer manager's down hold the bearer stays chosen, but with its address
         * or carrier gone a new attempt cannot work: wait rather than fail in a loop. */
        if (n->bm.slot[n->bm.active].link.up)
            return ifname_of(c, n->bm.active);
    }
    /* No bearer chosen (all in a penalty after the watchdog gave up on them): a charger with a
     * working network must still try the cloud, or a single-bearer charger would sit out
     * penalties of up to half an hour after a firewall was fixed. Routing decides. */
    uint64_t now = lade_mono_ms();
    for (int k = 0; k < LADE_BEARER_COUNT; k++) {
        enum lade_bearer_why w = lade_bearer_usable(&n->bm, k, now);
        if (n->bm.slot[k].link.up && (w == LADE_BEARER_PENALTY || w == LADE_BEARER_CLOUD_FAILED))
            return ""; /* a working link the watchdog gave up on; not a weak or 5 GHz one */
    }
    return NULL;
}

bool net_ready(struct lade_charger *c, char *why, size_t cap, const char **bind_ifname)
{
    struct agent_net *n = &c->net;
    *bind_ifname = NULL;
    if (!n->managed)
        return true;
    const char *ifn = link_ifname(c);
    if (ifn) {
        *bind_ifname = ifn;
        n->conn_bearer = n->bm.active;
        n->conn_addr = addr_of(c, n->bm.active);
        return true;
    }
    /* Why not: the most preferred present bearer's story. */
    for (int i = 0; i < LADE_BEARER_COUNT; i++) {
        int k = n->bm.cfg.order[i];
        if (k == LADE_BEARER_NONE || !n->bm.cfg.present[k])
            continue;
        const struct lade_netif_status *st = &n->st[k];
        char ll[16];
        ip4(st->ll_addr, ll, sizeof ll);
        if (n->netif[k] && !st->carrier)
            snprintf(why, cap, "waiting for a network address on %s: no carrier (cable?)",
                     ifname_of(c, k));
        else if (n->netif[k] && st->source != LADE_ADDR_DHCP)
            snprintf(why, cap,
                     "waiting for a network address on %s: no DHCP lease (%s, %u DISCOVERs "
                     "unanswered%s%s)",
                     ifname_of(c, k), lade_dhcp_state_name(st->dhcp.state), st->dhcp.discovers,
                     ll[0] ? "; link-local " : "", ll);
        else if (!n->netif[k] && k == LADE_BEARER_WIRED)
            snprintf(why, cap, "waiting for a network address: %s is not there", ifname_of(c, k));
        else
            snprintf(why, cap, "waiting for a network address: %s bearer is %s",
                     lade_bearer_name(k),
                     lade_bearer_why_name(lade_bearer_usable(&n->bm, k, lade_mono_ms())));
        return false;
    }
    snprintf(why, cap, "waiting for a network address");
    return false;
}

/* Something the cloud link depends on changed: redial when the connection's ground is gone,
 * connect when it was waiting. */
static void check_link(struct lade_charger *c)
{
    struct agent_net *n = &c->net;
    bool connected = c->link == LADE_LINK_CONNECTING || c->link == LADE_LINK_ONLINE;
    if (connected) {
        int k = n->conn_bearer;
        char why[120];
        if (n->bm.active != LADE_BEARER_NONE && k != LADE_BEARER_NONE && n->bm.active != k) {
            snprintf(why, sizeof why, "bearer changed from %s to %s", lade_bearer_name(k),
                     lade_bearer_name(n->bm.active));
            agent_redial(c, why);
        } else if (k != LADE_BEARER_NONE && n->conn_addr && addr_of(c, k) != n->conn_addr) {
            char a[16], b[16];
            ip4(n->conn_addr, a, sizeof a);
            ip4(addr_of(c, k), b, sizeof b);
            snprintf(why, sizeof why, "network address changed (%s -> %s)", a, b[0] ? b : "none");
            agent_redial(c, why);
        }
        return;
    }
    agent_net_changed(c);
}

static void on_netif(void *ud, const struct lade_netif_status *st)
{
    struct agent_net_slot *s = ud;
    struct lade_charger *c = s->c;
    struct agent_net *n = &c->net;
    int k = s->kind;
    struct lade_netif_status old = n->st[k];
    n->st[k] = *st;
    if (old.carrier != st->carrier)
        n->carrier_changes++;
    bool addr_changed = old.addr != st->addr || old.source != st->source;
    if (addr_changed) {
        n->address_changes++;
        char a[16];
        ip4(st->addr, a, sizeof a);
        LOG_I(c->log_tag, "%s: address %s (%s)", ifname_of(c, k), a[0] ? a : "none",
              lade_addr_source_name(st->source));
    }
    if (k == LADE_BEARER_WIFI && n->wpa)
        lade_wpa_set_address(n->wpa, st->source == LADE_ADDR_DHCP && st->addr);
    remember(c, k, st);
    feed(c, k);
    if (addr_changed && st->source == LADE_ADDR_DHCP && st->addr) {
        /* A new address: trusted time and the NTP host's name need not wait for their
         * retry back-off. */
        lade_timesync_network_changed(c->ts);
        agent_ntp_lookup_now(c);
    }
    update_dns(c);
    agent_write_status(c);
}

static void on_wifi(void *ud, const struct lade_bearer_link_state *ls)
{
    struct lade_charger *c = ud;
    c->net.wifi_ls = *ls;
    feed(c, LADE_BEARER_WIFI);
}

static void on_lte(void *ud, const struct lade_bearer_link_state *ls)
{
    struct lade_charger *c = ud;
    c->net.lte_ls = *ls;
    feed(c, LADE_BEARER_LTE);
}

/* Creates the interface of kind k (again). LADE_ERR_NOT_FOUND: retried later. */
static lade_err open_netif(struct lade_charger *c, int k)
{
    struct agent_net *n = &c->net;
    const char *ifn = ifname_of(c, k);
    if (!ifn[0] || n->netif[k])
        return LADE_OK;
    int64_t now_s = agent_wall_s(c);
    uint32_t reboot =
        n->saved[k].addr && n->saved[k].expires_s > now_s + LEASE_MARGIN_S ? n->saved[k].addr : 0;
    struct lade_netif_cfg cfg = {
        .ifname = ifn,
        .hostname = c->set.device_id,
        .reboot_addr = reboot,
        .ll_last_addr = n->saved[k].ll,
        /* the default route of a less preferred bearer is used only when the better one's
         * is gone; the cloud link itself is bound to the bearer in use */
        .route_metric = 100u * (uint32_t)(k + 1),
        .on_change = on_netif,
        .ud = &n->slot[k],
    };
    memset(&n->st[k], 0, sizeof n->st[k]);
    lade_err err = lade_netif_new(c->loop, &cfg, &n->netif[k]);
    if (err) {
        n->netif[k] = NULL;
        snprintf(n->error[k], sizeof n->error[k], "%s: %s", ifn, lade_strerror(err));
        LOG_W(c->log_tag, "network interface %s: %s%s", ifn, lade_strerror(err),
              err == LADE_ERR_IO ? " (needs CAP_NET_ADMIN and CAP_NET_RAW)" : "");
        return err;
    }
    n->error[k][0] = 0;
    lade_netif_status(n->netif[k], &n->st[k]);
    LOG_I(c->log_tag, "managing %s (%s)%s", ifn, lade_bearer_name(k),
          reboot ? ", asking for the stored lease" : "");
    return LADE_OK;
}

static void do_action(struct lade_charger *c, const struct lade_bearer_action *a)
{
    struct agent_net *n = &c->net;
    switch (a->kind) {
    case LADE_BEARER_ACT_BRING_UP:
        LOG_I(c->log_tag, "bearer %s in use", lade_bearer_name(a->bearer));
        break;
    case LADE_BEARER_ACT_TAKE_DOWN:
        LOG_I(c->log_tag, "bearer %s no longer used", lade_bearer_name(a->bearer));
        break;
    case LADE_BEARER_ACT_RESET:
        n->resets++;
        LOG_W(c->log_tag, "bearer %s reset (cloud unreachable over it)",
              lade_bearer_name(a->bearer));
        if (a->bearer == LADE_BEARER_WIFI && n->wpa && lade_wpa_reset(n->wpa) != LADE_OK)
            LOG_W(c->log_tag, "WiFi reset not sent");
        if (a->bearer == LADE_BEARER_LTE && n->modem && lade_modem_reset(n->modem) != LADE_OK)
            LOG_W(c->log_tag, "modem reset not sent");
        if (n->netif[a->bearer]) {
            /* a fresh DHCP attempt (R4) on that interface, asking for the same lease */
            lade_netif_free(n->netif[a->bearer]);
            n->netif[a->bearer] = NULL;
            n->st[a->bearer] = (struct lade_netif_status){0};
            if (open_netif(c, a->bearer) != LADE_OK)
                schedule(c, lade_mono_ms() + NET_RETRY_MS);
        }
        break;
    case LADE_BEARER_ACT_RECONNECT:
        n->reconnects++;
        if (c->link == LADE_LINK_CONNECTING || c->link == LADE_LINK_ONLINE)
            agent_redial(c, "watchdog: the cloud was unreachable; reconnecting");
        break;
    case LADE_BEARER_ACT_RESTART:
        agent_restart(c, "watchdog: the cloud stayed unreachable on every bearer");
        break;
    }
}

static void on_timer(struct lade_loop *loop, struct lade_timer *t, void *ud)
{
    (void)loop;
    (void)t;
    struct lade_charger *c = ud;
    struct agent_net *n = &c->net;
    if (!n->started)
        return;
    uint64_t now = lade_mono_ms();
    uint64_t next = now + NET_TICK_MAX_MS;
    for (int k = 0; k < LADE_BEARER_COUNT; k++)
        if (ifname_of(c, k)[0] && !n->netif[k]) {
            if (open_netif(c, k) == LADE_OK)
                feed(c, k);
            else if (now + NET_RETRY_MS < next)
                next = now + NET_RETRY_MS;
        }
    int before = n->bm.active;
    struct lade_bearer_out out;
    lade_bearer_step(&n->bm, now, &out);
    for (uint32_t i = 0; i < out.n_actions; i++)
        do_action(c, &out.actions[i]);
    if (out.next_step_ms < next)
        next = out.next_step_ms;
    int16_t sig = n->bm.active != LADE_BEARER_NONE ? n->bm.slot[n->bm.active].link.signal
                                                   : LADE_BEARER_SIGNAL_UNKNOWN;
    if (n->bm.active != before || sig != n->reported_signal) {
        /* the signal is reported when it moves by 3 dB or more (R12: every byte counts) */
        int d = sig - n->reported_signal;
        if (n->bm.active != before || d >= 3 || d <= -3 || sig == LADE_BEARER_SIGNAL_UNKNOWN) {
            n->reported_signal = sig;
            ctl_bearer_changed(c, sig);
        }
    }
    if (n->bm.active != before) {
        update_dns(c);
        agent_write_status(c);
    }
    check_link(c);
    schedule(c, next);
}

/* ---- lifecycle ---- */

lade_err net_init(struct lade_charger *c)
{
    struct agent_net *n = &c->net;
    memset(n, 0, sizeof *n);
    n->conn_bearer = LADE_BEARER_NONE;
    n->reported_signal = LADE_BEARER_SIGNAL_UNKNOWN;
    lade_timer_init(&n->timer, on_timer, c);
    struct lade_bearer_config bc;
    lade_bearer_config_default(&bc);
    bc.present[LADE_BEARER_WIRED] = c->set.net_interface[0] != 0;
    bc.present[LADE_BEARER_WIFI] = c->set.wifi_ctrl[0] || c->set.wifi_interface[0];
    bc.present[LADE_BEARER_LTE] = c->set.lte_device[0] != 0;
    for (int k = 0; k < LADE_BEARER_COUNT; k++) {
        n->slot[k].c = c;
        n->slot[k].kind = k;
        n->managed |= bc.present[k];
    }
    lade_err err = lade_bearer_init(&n->bm, &bc, lade_mono_ms());
    if (err || !n->managed)
        return err;
    if (bc.present[LADE_BEARER_WIFI]) {
        struct lade_wpa_config wc;
        lade_wpa_config_default(&wc);
        char ctrl[160];
        if (c->set.wifi_ctrl[0])
            snprintf(ctrl, sizeof ctrl, "%s", c->set.wifi_ctrl);
        else
            snprintf(ctrl, sizeof ctrl, "/var/run/wpa_supplicant/%s", c->set.wifi_interface);
        wc.ctrl_path = ctrl;
        /* our own DHCP on wifi_interface tells it about the address; else the supplicant */
        wc.need_address = true;
        err = lade_wpa_new(c->loop, &wc, on_wifi, c, &n->wpa);
        if (err)
            return err;
    }
    if (bc.present[LADE_BEARER_LTE]) {
        struct lade_modem_config mc;
        lade_modem_config_default(&mc);
        mc.device = c->set.lte_device;
        mc.apn = c->set.lte_apn;
        err = lade_modem_new(c->loop, &mc, on_lte, c, &n->modem);
        if (err)
            return err;
    }
    load_saved(c);
    return LADE_OK;
}

lade_err net_start(struct lade_charger *c)
{
    struct agent_net *n = &c->net;
    if (!n->managed || n->started)
        return LADE_OK;
    n->started = true;
    for (int k = 0; k < LADE_BEARER_COUNT; k++) {
        lade_err err = open_netif(c, k);
        if (err && err != LADE_ERR_NOT_FOUND)
            return err; /* no permission, no sockets: not something a retry fixes */
    }
    if (n->wpa && lade_wpa_set_enabled(n->wpa, true) != LADE_OK)
        LOG_W(c->log_tag, "WiFi driver not started");
    if (n->modem && lade_modem_set_enabled(n->modem, true) != LADE_OK)
        LOG_W(c->log_tag, "modem driver not started");
    for (int k = 0; k < LADE_BEARER_COUNT; k++)
        if (n->bm.cfg.present[k])
            feed(c, k);
    update_dns(c);
    return LADE_OK;
}

void net_stop(struct lade_charger *c)
{
    struct agent_net *n = &c->net;
    if (!n->started)
        return;
    n->started = false;
    for (int k = 0; k < LADE_BEARER_COUNT; k++) {
        lade_netif_free(n->netif[k]); /* addresses removed; the lease stays in net.json */
        n->netif[k] = NULL;
    }
    if (n->wpa && lade_wpa_set_enabled(n->wpa, false) != LADE_OK)
        LOG_D(c->log_tag, "WiFi driver not stopped");
    if (n->modem && lade_modem_set_enabled(n->modem, false) != LADE_OK)
        LOG_D(c->log_tag, "modem driver not stopped");
    lade_timer_cancel(c->loop, &n->timer); /* last: the drivers' "down" reports come first */
}

void net_free(struct lade_charger *c)
{
    net_stop(c);
    lade_wpa_free(c->net.wpa);
    c->net.wpa = NULL;
    lade_modem_free(c->net.modem);
    c->net.modem = NULL;
}

void net_cloud(struct lade_charger *c, bool up)
{
    struct agent_net *n = &c->net;
    if (!n->managed)
        return;
    lade_bearer_cloud(&n->bm, up, lade_mono_ms());
    if (n->started)
        schedule(c, lade_mono_ms());
}

const char *net_bearer_label(const struct lade_charger *c)
{
    if (!c->net.managed)
        return c->set.bearer;
    switch (c->net.bm.active) {
    case LADE_BEARER_WIRED:
        return strcmp(c->set.bearer, "PLC") == 0 ? "PLC" : "Ethernet";
    case LADE_BEARER_WIFI:
        return "Wifi";
    case LADE_BEARER_LTE:
        return "LTE";
    }
    return "";
}

/* ---- diagnostics (R19) ---- */

static void iface_json(const struct lade_charger *c, int k, cJSON *o, bool camel)
{
    const struct agent_net *n = &c->net;
    const struct lade_netif_status *st = &n->st[k];
    char a[16];
    cJSON_AddStringToObject(o, "interface", ifname_of(c, k));
    cJSON_AddBoolToObject(o, "carrier", st->carrier);
    cJSON_AddStringToObject(o, "source", lade_addr_source_name(st->source));
    ip4(st->addr, a, sizeof a);
    cJSON_AddStringToObject(o, "address", a);
    cJSON_AddNumberToObject(o, "prefix", st->prefix_len);
    ip4(st->router, a, sizeof a);
    cJSON_AddStringToObject(o, "router", a);
    cJSON *d = cJSON_AddArrayToObject(o, camel ? "dnsServers" : "dns");
    for (size_t i = 0; i < st->n_dns; i++) {
        ip4(st->dns[i], a, sizeof a);
        cJSON_AddItemToArray(d, cJSON_CreateString(a));
    }
    double left = st->dhcp.lease_left_ms == UINT64_MAX ? -1.0
                  : st->dhcp.addr                      ? (double)(st->dhcp.lease_left_ms / 1000)
                                                       : 0.0;
    cJSON_AddNumberToObject(o, camel ? "leaseLeftS" : "lease_left_s", left);
    cJSON_AddStringToObject(o, camel ? "dhcpState" : "dhcp_state",
                            lade_dhcp_state_name(st->dhcp.state));
    cJSON_AddStringToObject(o, camel ? "dhcpEvent" : "dhcp_event",
                            st->dhcp.last_event ? st->dhcp.last_event : "");
    ip4(st->ll_addr, a, sizeof a);
    cJSON_AddStringToObject(o, camel ? "linkLocal" : "ll_address", a);
    cJSON_AddNumberToObject(o, "discovers", st->dhcp.discovers);
    cJSON_AddNumberToObject(o, "naks", st->dhcp.naks);
    cJSON_AddNumberToObject(o, "declines", st->dhcp.declines);
    cJSON_AddNumberToObject(o, "expiries", st->dhcp.expiries);
    if (n->error[k][0])
        cJSON_AddStringToObject(o, camel ? "lastError" : "error", n->error[k]);
    else if (st->last_os_error)
        cJSON_AddStringToObject(o, camel ? "lastError" : "error", lade_strerror(st->last_os_error));
}

/* The interface the top-level fields describe: the bearer in use, else the most preferred. */
static int primary(const struct lade_charger *c)
{
    const struct agent_net *n = &c->net;
    if (n->bm.active != LADE_BEARER_NONE && ifname_of(c, n->bm.active)[0])
        return n->bm.active;
    for (int i = 0; i < LADE_BEARER_COUNT; i++) {
        int k = n->bm.cfg.order[i];
        if (k != LADE_BEARER_NONE && ifname_of(c, k)[0])
            return k;
    }
    return LADE_BEARER_NONE;
}

static void bearers_json(const struct lade_charger *c, cJSON *o, bool camel, bool with_ip)
{
    const struct agent_net *n = &c->net;
    uint64_t now = lade_mono_ms();
    cJSON *b = cJSON_AddObjectToObject(o, "bearers");
    for (int k = 0; k < LADE_BEARER_COUNT; k++) {
        if (!n->bm.cfg.present[k])
            continue;
        cJSON *e = cJSON_AddObjectToObject(b, lade_bearer_name(k));
        cJSON_AddBoolToObject(e, "up", n->bm.slot[k].link.up);
        cJSON_AddStringToObject(e, "usable",
                                lade_bearer_why_name(lade_bearer_usable(&n->bm, k, now)));
        if (n->bm.slot[k].link.signal != LADE_BEARER_SIGNAL_UNKNOWN)
            cJSON_AddNumberToObject(e, camel ? "signalDbm" : "signal_dbm",
                                    n->bm.slot[k].link.signal);
        if (n->bm.slot[k].link.channel)
            cJSON_AddNumberToObject(e, "channel", n->bm.slot[k].link.channel);
        cJSON_AddNumberToObject(e, "failures", n->bm.slot[k].failures);
        if (k == LADE_BEARER_WIFI && n->wpa) {
            struct lade_wpa_info wi;
            lade_wpa_info(n->wpa, &wi);
            cJSON_AddStringToObject(e, "state", lade_wpa_state_name(wi.state));
            cJSON_AddStringToObject(e, "ssid", wi.ssid);
            if (wi.last_temp_disabled[0])
                cJSON_AddStringToObject(e, camel ? "lastError" : "error", wi.last_temp_disabled);
        }
        if (k == LADE_BEARER_LTE && n->modem) {
            struct lade_modem_info mi;
            lade_modem_info(n->modem, &mi);
            cJSON_AddStringToObject(e, "state", lade_modem_state_name(mi.state));
            cJSON_AddStringToObject(e, "operator", mi.oper);
            cJSON_AddStringToObject(e, "sim", mi.sim);
            if (mi.last_error[0])
                cJSON_AddStringToObject(e, camel ? "lastError" : "error", mi.last_error);
        }
        if (with_ip && ifname_of(c, k)[0]) {
            cJSON *i = cJSON_AddObjectToObject(e, "ip");
            iface_json(c, k, i, camel);
        }
    }
    cJSON_AddStringToObject(o, camel ? "lastSwitch" : "last_switch", n->bm.last_reason);
}

void net_status_json(const struct lade_charger *c, cJSON *o)
{
    const struct agent_net *n = &c->net;
    cJSON *j = cJSON_AddObjectToObject(o, "net");
    cJSON_AddBoolToObject(j, "managed", n->managed);
    cJSON_AddStringToObject(j, "bearer",
                            n->managed ? lade_bearer_name(n->bm.active) : c->set.bearer);
    if (!n->managed)
        return;
    int k = primary(c);
    if (k != LADE_BEARER_NONE)
        iface_json(c, k, j, false);
    cJSON_AddNumberToObject(j, "carrier_changes", n->carrier_changes);
    cJSON_AddNumberToObject(j, "address_changes", n->address_changes);
    cJSON_AddNumberToObject(j, "watchdog_reconnects", n->reconnects);
    cJSON_AddNumberToObject(j, "bearer_resets", n->resets);
    bearers_json(c, j, false, true);
}

void net_reported(const struct lade_charger *c, cJSON *network)
{
    const struct agent_net *n = &c->net;
    if (!n->managed)
        return;
    int k = primary(c);
    if (k != LADE_BEARER_NONE) {
        const struct lade_netif_status *st = &n->st[k];
        char a[16];
        ip4(st->addr, a, sizeof a);
        cJSON_AddStringToObject(network, "address", a);
        cJSON_AddStringToObject(network, "addressSource", lade_addr_source_name(st->source));
        cJSON_AddStringToObject(network, "interface", ifname_of(c, k));
        /* minutes: the twin is patched only when a value changes (billing, R12) */
        double left = st->dhcp.lease_left_ms == UINT64_MAX ? -1.0
                      : st->dhcp.addr ? (double)(st->dhcp.lease_left_ms / 60000)
                                      : 0.0;
        cJSON_AddNumberToObject(network, "leaseLeftMin", left);
        cJSON *d = cJSON_AddArrayToObject(network, "dhcpDnsServers");
        for (size_t i = 0; i < st->n_dns; i++) {
            ip4(st->dns[i], a, sizeof a);
            cJSON_AddItemToArray(d, cJSON_CreateString(a));
        }
    }
    bearers_json(c, network, true, false);
    cJSON_AddNumberToObject(network, "carrierChanges", n->carrier_changes);
    cJSON_AddNumberToObject(network, "addressChanges", n->address_changes);
}
