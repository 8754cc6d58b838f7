/* TLS helpers for e2e tests on top of harness.h: openssl s_server peers and odd certificates.
 * Only 127.0.0.1; servers are registered with the harness and killed at exit. */
#ifndef LADE_E2E_HARNESS_TLS_H
#define LADE_E2E_HARNESS_TLS_H

#include <sys/types.h>

struct ht_server {
    pid_t pid;
    int port;
    char log[600];
};

/* Starts `openssl s_server -rev` (echoes each line reversed) on 127.0.0.1:<free port> with
 * cert/key and extra arguments (NULL-terminated, may be NULL); waits (with a deadline) until
 * it prints ACCEPT, retrying on another port if the first one was taken. Aborts on failure. */
void ht_s_server_start(struct ht_server *s, const char *dir, const char *cert, const char *key,
                       const char *const extra[]);
/* Stops it (SIGTERM, then SIGKILL). */
void ht_s_server_stop(struct ht_server *s);

/* dir/server.pem + dir/server.key for host (SAN DNS:host), signed by ca_dir/ca.{pem,key},
 * valid from 2020-01-01 to 2021-01-01 — i.e. expired. */
void ht_make_expired_server_cert(const char *dir, const char *ca_dir, const char *host);

#endif
