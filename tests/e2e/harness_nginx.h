/* nginx for e2e tests on top of harness.h: a real nginx (Debian's /usr/sbin/nginx) with its own
 * config, prefix, pid file, logs and temp paths in a temp dir, listening only where the test's
 * server blocks say (127.0.0.x ports from h_free_port). Never the system service: the process
 * runs in the foreground (daemon off) under the harness, which kills it at exit.
 *
 * The access log (hn.access_log) has one line per request in the format "lade":
 *     <host> <status> "<request line>" range="<Range>" if_range="<If-Range>" sent=<body bytes>
 *         content_range="<Content-Range sent>" etag=<ETag sent>
 * (one line; <host> is the Host header's name, lower case, without the port), so a test can
 * count e.g. `fw2.lade.test 206 "GET /fw/image.bin` or `range="bytes=65536-"`.
 */
#ifndef LADE_E2E_HARNESS_NGINX_H
#define LADE_E2E_HARNESS_NGINX_H

#include <stddef.h>
#include <sys/types.h>

struct hn_nginx {
    char dir[512]; /* prefix: nginx.conf, logs, nginx.pid, tmp/ */
    char conf[600];
    char access_log[600];
    char error_log[600];
    char pid_file[600];
    int ports[8]; /* the ports hn_start waits for */
    size_t n_ports;
    pid_t pid; /* the master */
};

/* A fresh directory under h_tmpdir(tag); nothing started. */
void hn_prepare(struct hn_nginx *n, const char *tag);
/* Writes dir/nginx.conf — the global part (one worker, logs and temp paths in dir, `user` of
 * the caller when root) and `http { <common settings> <servers> }` where servers is the text of
 * the test's server blocks — starts nginx and waits (deadline 10 s) until every port in
 * ports[0..n_ports) on 127.0.0.1 accepts. Aborts the test with nginx's error log if it does not
 * come up. The common settings: access log as above, default_type application/octet-stream,
 * sendfile, keepalive_timeout 5s. May be called again after hn_stop (same config when servers
 * is NULL). */
void hn_start(struct hn_nginx *n, const char *servers, const int *ports, size_t n_ports);
/* Stops it (SIGTERM: fast shutdown; SIGKILL after 5 s). */
void hn_stop(struct hn_nginx *n);
/* SIGKILLs the worker processes (a crash in the middle of a response: connections are cut);
 * the master keeps the listening sockets and starts new workers. Returns how many were killed
 * and waits (deadline 5 s) until a new worker runs. */
int hn_kill_workers(struct hn_nginx *n);
/* Occurrences of needle in the access log. */
int hn_log_count(const struct hn_nginx *n, const char *needle);

#endif
