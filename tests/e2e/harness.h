/* lade e2e test harness: processes, ports, temp dirs, PKI and a real Mosquitto hub.
 *
 * Everything a test starts is registered and torn down at exit (also on SIGINT/SIGTERM/abort),
 * so a failing test leaves no servers behind. Only 127.0.0.1 is used. Waits poll with deadlines.
 */
#ifndef LADE_E2E_HARNESS_H
#define LADE_E2E_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* $LADE_BUILD_DIR / $LADE_SOURCE_DIR (set by CTest); abort with a message when unset. */
const char *h_build_dir(void);
const char *h_source_dir(void);
/* True when the build under test is instrumented (LADE_SANITIZE=1). */
bool h_sanitized(void);

/* Creates a fresh directory under $TMPDIR (removed at exit unless LADE_KEEP_TMP=1) and returns
 * its path (static storage per call, valid until exit). */
const char *h_tmpdir(const char *tag);
/* Returns a free TCP port on 127.0.0.1 (bound then released). */
int h_free_port(void);
/* Polls until 127.0.0.1:port accepts a TCP connection; false after timeout_ms. */
bool h_wait_port(int port, uint32_t timeout_ms);
/* Polls until the file contains needle; false after timeout_ms. */
bool h_wait_file_contains(const char *path, const char *needle, uint32_t timeout_ms);
/* Counts occurrences of needle in the file (0 when missing). */
int h_file_count(const char *path, const char *needle);
/* Reads a whole file into a malloc'd NUL-terminated string (NULL if missing). */
char *h_read_file(const char *path);
/* Writes a string to a file (aborts on failure). */
void h_write_file(const char *path, const char *text);

/* Starts argv[0] (PATH lookup) with extra "K=V" env entries (NULL-terminated, may be NULL),
 * stdout+stderr appended to log_path. The child gets its own process group and is killed at
 * exit. Returns the pid. */
pid_t h_spawn(const char *const argv[], const char *const env[], const char *log_path);
/* Registers a child the test forked itself, so it is killed at exit like h_spawn's. */
void h_track(pid_t pid);
/* Sends sig to the process group and waits up to timeout_ms; SIGKILL after. Returns the
 * wait status, or -1 if it was already reaped. */
int h_stop(pid_t pid, int sig, uint32_t timeout_ms);
/* True while the child is running (reaps it if it exited; *status gets its wait status). */
bool h_running(pid_t pid, int *status);
/* Runs a shell command, returns its exit code (127 on failure to start). */
int h_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The environment entries that let an uninstrumented program (mosquitto) load an ASan+UBSan
 * built plugin: LD_PRELOAD of the sanitizer runtimes. NULL-terminated; empty if not sanitized. */
const char *const *h_sanitizer_preload_env(void);

/* PKI from scripts/gen-certs.sh: dir/ca.pem + dir/ca.key, dir/server.pem + server.key. */
void h_make_ca(const char *dir, const char *cn);
void h_make_server_cert(const char *dir, const char *ca_dir, const char *host);

/* A real Mosquitto 2 with lade's hub plugin on 127.0.0.1:<port>, TLS, registry in dir. */
struct h_hub {
    char dir[512];
    char conf[600];
    char log[600];
    char registry[600];
    char ca[600]; /* CA the chargers trust */
    char host[128];
    int port;
    pid_t pid;
};
/* Prepares dir (CA, server cert for host, registry path) and picks a port; does not start. */
void h_hub_prepare(struct h_hub *hub, const char *host);
/* Writes the config (extra_conf appended verbatim, may be NULL) and starts mosquitto; waits for
 * the port. Aborts the test if it does not come up. */
void h_hub_start(struct h_hub *hub, const char *extra_conf);
/* Stops the hub (SIGTERM, then SIGKILL). */
void h_hub_stop(struct h_hub *hub);

/* Milliseconds, monotonic. */
uint64_t h_now_ms(void);

#endif
