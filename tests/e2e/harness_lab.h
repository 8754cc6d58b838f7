/* The site-network lab for e2e tests: chargers on a site LAN behind a NAT router with DHCP,
 * DNS and a firewall (optionally TLS-inspecting), and an "internet" with the hub, NTP servers,
 * three HTTPS firmware hosts and two public resolvers,
 * each in a network namespace of its own with no route off the machine. A C face over
 * tests/lab/lab.sh (which does the work, and can be used by hand): docs/lab.md has the
 * topology, the addresses and every knob.
 *
 * Needs root (CI runs as root). h_lab_up fails the test with lab.sh's message when the lab
 * cannot be built (no namespaces, a tool missing); it never skips. Everything the lab starts is
 * torn down by h_lab_down, and also at exit and on SIGINT/SIGTERM/SIGABRT (so a failed
 * assertion leaves nothing behind); a lab whose process was SIGKILLed is removed by the next
 * h_lab_up (lab.sh gc). Assertions are cmocka's: call these from a test or a group setup.
 */
#ifndef LADE_E2E_HARNESS_LAB_H
#define LADE_E2E_HARNESS_LAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "harness.h"

#define H_LAB_MAX_CHARGERS 16

/* Addresses (fixed; see docs/lab.md). The site LAN is 192.168.77.0/24 (DHCP pool from .100,
 * static chargers .10+I); the WAN link 203.0.113.0/24; the internet's hosts 198.51.100.x. */
#define H_LAB_LAN_ROUTER     "192.168.77.1"
#define H_LAB_WAN_ROUTER     "203.0.113.2" /* the source address the internet sees (NAT) */
#define H_LAB_WAN_INET       "203.0.113.1"
#define H_LAB_HUB_ADDR       "198.51.100.10"
#define H_LAB_HUB_HOST       "hub.lade.test"
#define H_LAB_HUB_PORT       8883
#define H_LAB_NTP_HOST       "ntp.lade.test" /* A records: every NTP server of the lab */
#define H_LAB_NTP1_ADDR      "198.51.100.21" /* ntp1.lade.test */
#define H_LAB_NTP2_ADDR      "198.51.100.22"
#define H_LAB_NTP3_ADDR      "198.51.100.23"
#define H_LAB_FW1_ADDR       "198.51.100.31" /* fw1..3.lade.test: HTTPS with opts.fw */
#define H_LAB_FW2_ADDR       "198.51.100.32"
#define H_LAB_FW3_ADDR       "198.51.100.33"
#define H_LAB_RESOLVER1_ADDR "198.51.100.53" /* stands in for 8.8.8.8 */
#define H_LAB_RESOLVER2_ADDR "198.51.100.54" /* stands in for 1.1.1.1 */
#define H_LAB_CHARGER_IF     "eth0"
#define H_LAB_SPOOF_ANSWER   "198.51.100.99" /* H_LAB_DNS_SPOOF_*'s forgeries: nothing there */

#define H_LAB_FW1_HOST "fw1.lade.test"
#define H_LAB_FW2_HOST "fw2.lade.test"
#define H_LAB_FW3_HOST "fw3.lade.test"
#define H_LAB_FW_PORT  443
/* A file every firmware host serves (from lab.fw_www), and its content (one line). */
#define H_LAB_FW_FILE      "lab-fw.txt"
#define H_LAB_FW_FILE_TEXT "lade lab firmware host\n"
/* Subject CNs of the two CAs: lab.ca (hub, firmware hosts) and lab.intercept_ca. */
#define H_LAB_CA_CN           "lade lab CA"
#define H_LAB_INTERCEPT_CA_CN "lade lab inspection CA"
/* With h_lab_intercept on, LAN -> internet TCP to these ports ends at the router's own TLS
 * server (192.168.77.1:H_LAB_INTERCEPT_PORT_443 / _8883). */
#define H_LAB_INTERCEPT_PORT_443  10443
#define H_LAB_INTERCEPT_PORT_8883 18883

/* lade-factory arguments that point a charger's factory settings at the lab (append them to
 * h_charger_provision's factory_args; the hub host, port and CA come from lab.hub). The hosts
 * file h_charger_provision names (<lab.hub.dir>/hosts) maps the lab's names statically; a test
 * of the charger's own DNS adds "--hosts-file /dev/null". */
#define H_LAB_FACTORY_ARGS                                                                         \
    "--ntp-host " H_LAB_NTP_HOST " --fallback-dns " H_LAB_RESOLVER1_ADDR "," H_LAB_RESOLVER2_ADDR  \
    " --firmware-hosts fw1.lade.test,fw2.lade.test,fw3.lade.test"

/* How the chargers' eth0 starts. */
enum h_lab_addr {
    H_LAB_ADDR_NONE,   /* up, no address: the charger's own DHCP client configures it */
    H_LAB_ADDR_STATIC, /* 192.168.77.(10+I)/24, default route via the router */
    H_LAB_ADDR_UDHCPC, /* configured once by busybox udhcpc from the lab's DHCP server */
};

/* The router's DNS on 192.168.77.1:53 (the server DHCP hands out by default). */
enum h_lab_dns {
    H_LAB_DNS_FORWARD,  /* dnsmasq forwarding to both public resolvers */
    H_LAB_DNS_REFUSE,   /* answers REFUSED */
    H_LAB_DNS_NXDOMAIN, /* answers NXDOMAIN for every name */
    H_LAB_DNS_OFF,      /* nothing listens: ICMP port unreachable */
    H_LAB_DNS_SILENT,   /* queries are dropped: timeouts */
    H_LAB_DNS_SLOW,     /* forwards to resolver1 after dns_delay_ms */
    /* Forged answers first, then the real one: for each query the router sends answers giving
     * the asked name H_LAB_SPOOF_ANSWER, each logged as a "forged ..." line in
     * <lab.dir>/log/dns.log, then relays resolver1's real answer dns_delay_ms later (0: 100). */
    H_LAB_DNS_SPOOF_ID,       /* the right question, a wrong transaction id */
    H_LAB_DNS_SPOOF_QUESTION, /* the right id, another name / another type in the question */
    H_LAB_DNS_SPOOF_ADDR,     /* the right id and question, from 192.168.77.2:53 (an address
                                 no host has), 203.0.113.2:53 (the router's WAN side) and
                                 192.168.77.1 from a port other than 53 */
};

/* Firewall knobs of the router (LAN -> internet). */
enum h_lab_block {
    H_LAB_BLOCK_8883, /* TCP 8883 (MQTT/TLS) */
    H_LAB_BLOCK_443,  /* TCP 443 (HTTPS) */
    H_LAB_BLOCK_DNS,  /* UDP+TCP 53 to the internet (the router's own DNS still works) */
    H_LAB_BLOCK_NTP,  /* UDP 123 */
    H_LAB_BLOCK_WAN,  /* everything to the internet; the LAN (DHCP, router DNS) works */
    H_LAB_BLOCK_ALL,  /* every LAN port drops everything: links up, nothing passes */
};

/* Zero means the default everywhere. */
struct h_lab_opts {
    int chargers; /* 1..16 (default 1): namespaces charger0.. */
    enum h_lab_addr addr;
    bool no_dhcp;               /* start without the DHCP server */
    int pool;                   /* DHCP pool size (default 50) */
    int lease_s;                /* default 3600; dnsmasq's minimum is 120 */
    int t1_s, t2_s;             /* DHCP options 58/59 (default: dnsmasq's) */
    const char *dhcp_dns;       /* option 6: "router" (default), "none", "public", "A,B" */
    bool no_dhcp_router;        /* no option 3 */
    const char *dhcp_ntp;       /* option 42: "off" (default), "on" (the lab's), "A,B" */
    enum h_lab_dns dns;         /* the router's DNS (default forward) */
    int dns_delay_ms;           /* for H_LAB_DNS_SLOW */
    bool no_ntp;                /* no NTP server at all */
    int ntp_servers;            /* 1..3 (default 1): ntp1..N, all named ntp.lade.test */
    int ntp_offset_s[3];        /* [0] is ntp1: non-zero = a scripted server that far off */
    bool hub;                   /* Mosquitto + lade_hub.so on hub.lade.test:8883 */
    bool fw;                    /* the firmware hosts: HTTPS on fw1..3.lade.test:443 */
    bool intercept;             /* start with h_lab_intercept on (a TLS-inspecting router) */
    const char *hub_extra_conf; /* lines appended to its mosquitto.conf (may be NULL) */
};

struct h_lab {
    char name[32];    /* lade<pid>[-k]: namespaces <name>-router, -inet, -c<I> */
    char dir[400];    /* state: configs, log/<service>.log, dhcp.leases, pki/, hub/ */
    char script[600]; /* tests/lab/lab.sh */
    int chargers;
    char ns_router[64];
    char ns_inet[64];
    char ns_charger[H_LAB_MAX_CHARGERS][64];
    char mac[H_LAB_MAX_CHARGERS][18]; /* charger I's eth0: 02:1a:de:00:00:<I> */
    char leases[600];                 /* dnsmasq's lease file */
    /* The hub as harness.h describes one, for h_charger_provision and friends: dir, registry,
     * ca (the lab CA the chargers trust), log, host hub.lade.test, port 8883. pid stays 0:
     * stop and start it with h_lab_cmd(lab, "stop hub") / ("start hub"). */
    struct h_hub hub;
    char ca[600]; /* the lab CA (<dir>/pki/ca.pem, same as hub.ca): hub and firmware hosts */
    /* The inspecting firewall's own CA (<dir>/pki-intercept/ca.pem, CN H_LAB_INTERCEPT_CA_CN),
     * made at h_lab_up: what its certificates are signed with while h_lab_intercept is on. */
    char intercept_ca[600];
    /* What the firmware hosts serve (<dir>/fw/www/, shared by fw1..3; H_LAB_FW_FILE is there
     * from the start): put firmware images here. Their access logs are
     * <dir>/log/fw<I>-access.log. Stop or start them with h_lab_cmd(lab, "stop fw") / "start
     * fw" (all three) or "stop fw2"; silence one with h_lab_host(lab, "fw1", false). */
    char fw_www[600];
    char tmp[512]; /* a scratch directory of the test's (removed at exit) */
    pid_t spawned[32];
    int nspawned;
    bool up;
};

/* Builds the lab (about 1-3 s). Fails the test with lab.sh's message when it cannot. */
void h_lab_up(struct h_lab *lab, const struct h_lab_opts *opts);
/* Stops the processes h_lab_spawn started, then everything in the lab's namespaces, and
 * deletes them. Safe to call twice. */
void h_lab_down(struct h_lab *lab);
/* True when no namespace, state dir or process of the lab named name is left. */
bool h_lab_gone(const char *name);

/* The namespace of a node: "router", "inet", "charger<I>" (or "c<I>"). */
const char *h_lab_ns(const struct h_lab *lab, const char *node);

/* Runs `lab.sh -n <name> <args>` (args split by the shell); its output is printed when it
 * fails. Returns the exit code. h_lab_must fails the test on a non-zero one. */
int h_lab_cmd(struct h_lab *lab, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void h_lab_must(struct h_lab *lab, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs argv in node's namespace (via `ip netns exec`, so /sys and /etc/resolv.conf are the
 * node's) and waits; output goes to the test's. Returns the exit code (128+signal). */
int h_lab_exec(struct h_lab *lab, const char *node, const char *const argv[]);
/* Runs a shell command line in node's namespace, stdout+stderr into out (NUL-terminated,
 * truncated to cap). Killed after 60 s. Returns the exit code (128+signal). */
int h_lab_run(struct h_lab *lab, const char *node, char *out, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Starts argv in node's namespace like h_spawn (own process group, log, killed at exit). */
pid_t h_lab_spawn(struct h_lab *lab, const char *node, const char *const argv[],
                  const char *const env[], const char *log_path);
/* A socket (AF_INET, type | SOCK_CLOEXEC) created in node's namespace, for the test's own
 * clients: it stays in that namespace whatever the test does with it. -1 on failure. */
int h_lab_socket(struct h_lab *lab, const char *node, int type);

/* Knobs; each fails the test if lab.sh refuses. */
void h_lab_firewall(struct h_lab *lab, enum h_lab_block what, bool on);
void h_lab_dhcp(struct h_lab *lab, bool on);
void h_lab_dns(struct h_lab *lab, enum h_lab_dns mode, int delay_ms);
/* An internet host (hub ntp1-3 resolver1-2 fw1-3) silent (every packet to it dropped) or back. */
void h_lab_host(struct h_lab *lab, const char *host, bool up);
/* Charger I's cable: the router's port goes down (the charger sees NO-CARRIER) or up. */
void h_lab_link(struct h_lab *lab, int charger, bool up);
/* Drops percent % of charger I's packets both ways (100: link up but dead). */
void h_lab_loss(struct h_lab *lab, int charger, int percent);
/* The router as a TLS-inspecting firewall (on) or not (off). On: every new LAN -> internet TCP
 * connection to port 8883 or 443 is redirected (nftables, in the router) to the router's own
 * TLS server, which presents a certificate for the asked name (*.lade.test, hub, fw1..3 and
 * their addresses) signed by lab.intercept_ca, never by lab.ca. On 443 it then proxies to the
 * real host (the firmware hosts' files still arrive, with "X-Lade-Lab-Intercepted: 1"); on 8883
 * the handshake completes, then the MQTT bytes get an HTTP 400 and the connection is closed.
 * The router's own connections are not redirected, nor is a port h_lab_firewall blocks. Off:
 * the redirect is removed, then the server stopped. */
void h_lab_intercept(struct h_lab *lab, bool on);

/* The address DHCP leased to charger I (from the lease file), into ip[16]. */
bool h_lab_lease(const struct h_lab *lab, int charger, char ip[16]);
/* Polls h_lab_lease; false after timeout_ms. */
bool h_lab_wait_lease(const struct h_lab *lab, int charger, char ip[16], uint32_t timeout_ms);
/* The address on charger I's eth0 (what its DHCP client configured), into ip[16]. */
bool h_lab_charger_addr(struct h_lab *lab, int charger, char ip[16]);

/* Prints `lab.sh status` and the tail of every service log (for a failing test). */
void h_lab_dump(struct h_lab *lab);

#endif
