/* e2e helpers for lade-charger processes: provision with lade-factory against a test hub,
 * start, stop (checked clean), kill -9, read the --status file, print the log on failure.
 * Assertions are cmocka's: call these from a test. */
#ifndef LADE_E2E_HARNESS_CHARGER_H
#define LADE_E2E_HARNESS_CHARGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "harness.h"

struct h_charger {
    char id[32];
    char dir[600];       /* <hub dir>/chargers/<id>: factory.conf, user.conf, status, log */
    char state_dir[700]; /* <dir>/state: outbox, checkpoint, settings, simulator */
    char factory[700];
    char user[700];
    char status[700];
    char log[700];
    pid_t pid; /* 0: not running */
};

/* The first line a shell command prints (asserts exit status 0). */
void h_capture(const char *cmd, char *out, size_t cap);
/* A service identity (lade-factory service, once per name) and a token for it (1 h). */
void h_service_token(const struct h_hub *hub, const char *name, char *token, size_t cap);

/* lade-factory create for id against hub (hosts file <hub dir>/hosts), with factory_args
 * appended (e.g. "--evse sim", may be NULL), then writes user.conf = user_conf followed by
 * "state_dir = <state_dir>". */
void h_charger_provision(struct h_charger *c, const struct h_hub *hub, const char *id,
                         const char *factory_args, const char *user_conf);
void h_charger_start(struct h_charger *c);
/* SIGTERM; asserts a clean exit (status 0, no sanitizer report in the log). */
void h_charger_stop(struct h_charger *c);
/* SIGKILL; asserts it was running and died of it. */
void h_charger_kill9(struct h_charger *c);
/* Fails the test (with the log) if the process exited by itself. */
void h_charger_expect_running(struct h_charger *c);
/* Prints the status file and the log's tail. */
void h_charger_dump(const struct h_charger *c, const char *why);
/* Polls the status file for needle; dumps and returns false after timeout_ms. */
bool h_charger_wait_status(const struct h_charger *c, const char *needle, uint32_t timeout_ms);
/* A number (or bool as 0/1) from the status file: the "charging" object first, then the top
 * level, or a dotted path such as "net.lease_left_s". Retries while the file is being
 * replaced; fails the test if the key is missing. */
double h_charger_num(const struct h_charger *c, const char *key);
/* Polls h_charger_num(key) == want. */
bool h_charger_wait_num(const struct h_charger *c, const char *key, double want,
                        uint32_t timeout_ms);

#endif
