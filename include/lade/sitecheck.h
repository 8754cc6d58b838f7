/* lade — the site network check's report (src/common/sitecheck.c): what lade-check found, each
 * finding pass / note / warn / fail with the reason and the remedy in plain words (SPEC R18).
 *
 * The probes (DHCP, DNS, NTP, TCP/TLS, WiFi scan) add findings; the report renders them for
 * people (a table, colour on a terminal) or for tools (JSON), and gives the exit status. Pure:
 * no I/O except the FILE the renderers write to. docs/lade-check.md describes every check.
 */
#ifndef LADE_SITECHECK_H
#define LADE_SITECHECK_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include "lade/err.h"

typedef struct cJSON cJSON;

/* Ordered by severity. A note is advice that does not change the exit status. */
enum lade_check_status {
    LADE_CHECK_PASS = 0,
    LADE_CHECK_NOTE,
    LADE_CHECK_WARN,
    LADE_CHECK_FAIL,
};
/* "pass", "note", "warn", "fail". */
const char *lade_check_status_name(enum lade_check_status s);

#define LADE_CHECK_ID_MAX      272 /* "reach.fw." + a host name of up to 253 */
#define LADE_CHECK_TEXT_MAX    512
#define LADE_CHECK_SECTION_MAX 16

struct lade_check_item {
    char section[LADE_CHECK_SECTION_MAX]; /* "dhcp", "dns", "time", "reach", "wifi", "plan" */
    char id[LADE_CHECK_ID_MAX];           /* stable: "dhcp.offer", "reach.hub", ... */
    enum lade_check_status status;
    char summary[LADE_CHECK_TEXT_MAX]; /* what was found, one or two sentences */
    char remedy[LADE_CHECK_TEXT_MAX];  /* what to change; "" when nothing */
    cJSON *data;                       /* measured values for --json (owned; may be NULL) */
};

struct lade_check_report {
    struct lade_check_item *items;
    size_t n, cap;
    bool incomplete; /* a finding could not be recorded (out of memory): the verdict is void */
};

void lade_check_report_init(struct lade_check_report *r);
void lade_check_report_free(struct lade_check_report *r);

/* Appends a finding; summary is printf-formatted. remedy may be NULL or "". data (may be NULL)
 * is taken over (freed with the report, also on failure). Texts longer than the fields are cut
 * at a UTF-8 boundary with "…". Returns the item (valid until the next add) or NULL when out of
 * memory. */
struct lade_check_item *lade_check_add(struct lade_check_report *r, const char *id,
                                       enum lade_check_status status, cJSON *data,
                                       const char *remedy, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* The first item with this id, or NULL. */
const struct lade_check_item *lade_check_find(const struct lade_check_report *r, const char *id);

/* Worst status in the report (PASS when empty). */
enum lade_check_status lade_check_worst(const struct lade_check_report *r);

/* 0 when nothing is worse than a note, 1 when the worst is a warning, 2 when anything failed,
 * 3 when the report is incomplete (a finding was lost). */
int lade_check_exit_status(const struct lade_check_report *r);

/* The table for people: one block per section, each finding with its status, summary and
 * remedy, wrapped to width columns (0: 100); colour adds ANSI colours to the status words.
 * Ends with a one-line verdict. Errors: LADE_ERR_IO (write failed). */
lade_err lade_check_render_text(const struct lade_check_report *r, FILE *f, bool colour,
                                unsigned width) LADE_MUST_CHECK;

/* {"version":1,"status":"warn","exit":1,"checks":[{"id":…,"section":…,"status":…,
 *  "summary":…,"remedy":…,"data":{…}},…]} plus the members of extra (may be NULL; not taken).
 * Errors: LADE_ERR_NOMEM, LADE_ERR_IO. */
lade_err lade_check_render_json(const struct lade_check_report *r, const cJSON *extra,
                                FILE *f) LADE_MUST_CHECK;

/* ---------------------------------------------------------------- capacity planning
 *
 * lade's measured data use (bench/RESULTS.md: figure 4, the idle day; figure 5, a one-hour
 * session; figure 13, DHCP + DNS + NTP a day), counted at the IP layer as a metered bearer
 * bills it: TCP payload plus 52 bytes of IPv4 + TCP headers per segment. */
#define LADE_PLAN_IDLE_DAY_B    104677u  /* 58969 payload + 729 segments x 52 + 7800 DHCP/DNS/NTP */
#define LADE_PLAN_SESSION_B     69051u   /* 50123 payload + 364 segments x 52 */
#define LADE_PLAN_REF_DAY_B     3000000u /* the reference system, SPEC R12 */
#define LADE_PLAN_REF_SESSION_B 5000000u

struct lade_check_plan {
    unsigned chargers;            /* planned at the site (>= 1) */
    const char *bearer;           /* "wifi", "plc", "lte", "ethernet"; NULL or "": all */
    double sessions_per_day;      /* per charger; < 0: 2 */
    unsigned fw_updates_per_year; /* 0: 4 */
    double fw_image_mb;           /* 0: 16 */
};

/* Adds plan.addresses, plan.data and, for LTE (or all bearers), plan.lte. */
void lade_check_plan(struct lade_check_report *r, const struct lade_check_plan *in);

#endif
