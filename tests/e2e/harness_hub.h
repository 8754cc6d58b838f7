/* A minimal blocking MQTT 3.1.1 client over TLS for hub e2e tests.
 *
 * Deliberately independent of lade's own MQTT client, so the hub is tested against a second
 * implementation, and with raw control of every packet (CONNACK and SUBACK codes, QoS 2,
 * retain, seeing the server close the connection). One connection per struct; not
 * thread-safe. Every wait has a deadline.
 */
#ifndef LADE_E2E_HARNESS_HUB_H
#define LADE_E2E_HARNESS_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HC_QUEUE 64

struct hc_msg {
    char topic[512];
    char payload[8192];
    size_t len;
    int qos;
    bool retain;
};

struct hc {
    void *ctx; /* SSL_CTX */
    void *ssl; /* SSL */
    int fd;
    bool closed;
    uint16_t next_id;
    uint8_t rx[65536];
    size_t rx_n;
    struct hc_msg queue[HC_QUEUE];
    size_t q_head, q_n;
};

/* TLS to 127.0.0.1:port verifying the server certificate against ca_file and host, then
 * CONNECT (keep-alive 60 s). Returns the CONNACK return code (0 accepted, 5 not authorised,
 * ...) or -1 when the transport failed or the server closed without a CONNACK. On anything but
 * 0 the connection is closed. */
int hc_connect(struct hc *c, int port, const char *ca_file, const char *host, const char *client_id,
               const char *username, const char *password, bool clean_session);
/* SUBSCRIBE one filter; returns the granted QoS (0, 1, 2) or 0x80 (refused), -1 on failure. */
int hc_subscribe(struct hc *c, const char *filter, int qos);
/* PUBLISH; for QoS 1 waits for PUBACK, for QoS 2 for PUBREC (and sends PUBREL, waits PUBCOMP).
 * Returns 0, or -1 when the connection failed/closed or the acknowledgement did not come. */
int hc_publish(struct hc *c, const char *topic, const void *payload, size_t len, int qos,
               bool retain);
int hc_publish_str(struct hc *c, const char *topic, const char *payload, int qos);
/* Next PUBLISH received (QoS 1 ones are acknowledged). 1 got one, 0 timeout, -1 closed. */
int hc_recv(struct hc *c, struct hc_msg *m, uint32_t timeout_ms);
/* Waits for a message whose topic starts with prefix, dropping others; 1/0/-1 as hc_recv. */
int hc_recv_topic(struct hc *c, const char *prefix, struct hc_msg *m, uint32_t timeout_ms);
/* True if the server closes the connection within timeout_ms (messages are discarded). */
bool hc_wait_closed(struct hc *c, uint32_t timeout_ms);
/* Sends DISCONNECT (if still open) and frees everything. Safe on a closed/zeroed struct. */
void hc_close(struct hc *c);
/* Closes every connection still open (for a test's teardown, so a failed assertion leaks
 * nothing). */
void hc_close_all(void);

#endif
