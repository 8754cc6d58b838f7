/* TLS helpers for e2e tests: openssl s_server peers and an expired certificate. */
#include "harness_tls.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

void ht_s_server_start(struct ht_server *s, const char *dir, const char *cert, const char *key,
                       const char *const extra[])
{
    for (int attempt = 0; attempt < 5; attempt++) {
        memset(s, 0, sizeof *s);
        s->port = h_free_port();
        snprintf(s->log, sizeof s->log, "%s/s_server-%d.log", dir, s->port);
        char accept[64];
        snprintf(accept, sizeof accept, "127.0.0.1:%d", s->port);
        const char *argv[40] = {"openssl", "s_server", "-accept", accept, "-cert",
                                cert,      "-key",     key,       "-rev", NULL};
        int n = 9;
        for (int i = 0; extra && extra[i] && n < 39; i++)
            argv[n++] = extra[i];
        argv[n] = NULL;
        s->pid = h_spawn(argv, NULL, s->log);
        /* s_server prints ACCEPT once it listens; poll for it (or for its exit). */
        uint64_t deadline = h_now_ms() + 10000;
        while (h_now_ms() < deadline) {
            if (h_file_count(s->log, "ACCEPT") > 0)
                return;
            int st;
            if (!h_running(s->pid, &st))
                break;
            struct timespec ts = {0, 10 * 1000000};
            nanosleep(&ts, NULL);
        }
        char *log = h_read_file(s->log);
        fprintf(stderr, "s_server on %s did not come up; log:\n%s\n", accept, log ? log : "");
        free(log);
        h_stop(s->pid, SIGKILL, 2000);
    }
    fprintf(stderr, "s_server: giving up\n");
    abort();
}

void ht_s_server_stop(struct ht_server *s)
{
    if (s->pid > 0)
        h_stop(s->pid, SIGTERM, 5000);
    s->pid = 0;
}

void ht_make_expired_server_cert(const char *dir, const char *ca_dir, const char *host)
{
    /* openssl x509 in OpenSSL 3.0 cannot set notBefore/notAfter; `openssl ca` can. */
    char cnf[1024];
    snprintf(cnf, sizeof cnf, "%s/ca.cnf", dir);
    char text[2048];
    snprintf(text, sizeof text,
             "[ca]\ndefault_ca = d\n"
             "[d]\ndatabase = %s/index.txt\nnew_certs_dir = %s\nserial = %s/serial\n"
             "default_md = sha256\npolicy = p\nunique_subject = no\n"
             "[p]\ncommonName = supplied\n"
             "[ext]\nsubjectAltName = DNS:%s\nbasicConstraints = CA:FALSE\n"
             "keyUsage = critical,digitalSignature\nextendedKeyUsage = serverAuth\n",
             dir, dir, dir, host);
    h_write_file(cnf, text);
    char path[700];
    snprintf(path, sizeof path, "%s/index.txt", dir);
    h_write_file(path, "");
    snprintf(path, sizeof path, "%s/serial", dir);
    h_write_file(path, "1000\n");
    int rc = h_sh("set -e; cd '%s'; "
                  "openssl ecparam -name prime256v1 -genkey -noout -out server.key; "
                  "openssl req -new -key server.key -subj '/CN=%s' -out server.csr 2>/dev/null; "
                  "openssl ca -batch -config ca.cnf -cert '%s/ca.pem' -keyfile '%s/ca.key' "
                  "-in server.csr -out server.pem -startdate 20200101000000Z "
                  "-enddate 20210101000000Z -extensions ext -notext 2>/dev/null",
                  dir, host, ca_dir, ca_dir);
    if (rc != 0) {
        fprintf(stderr, "expired certificate: openssl failed (%d)\n", rc);
        abort();
    }
}
