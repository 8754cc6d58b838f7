/* Unit tests for the HTTP server on the event loop (include/lade/http.h), with a raw socket
 * client in the same thread: the loop runs while the client waits for its answer. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "lade/clock.h"
#include "lade/http.h"
#include "lade/log.h"
#include "lade/loop.h"

static struct lade_loop *loop;
static struct lade_http *srv;
static struct lade_http_req *kept;
static struct lade_timer later;
static int handled;

static void on_later(struct lade_loop *l, struct lade_timer *t, void *ud)
{
    (void)l;
    (void)t;
    (void)ud;
    static const char b[] = "{\"late\":true}";
    lade_http_reply(kept, 200, "application/json", b, sizeof b - 1, NULL);
    kept = NULL;
}

static void handler(void *ud, struct lade_http_req *r)
{
    (void)ud;
    handled++;
    const char *path = lade_http_path(r);
    if (strcmp(path, "/hello") == 0) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "method", lade_http_method(r));
        const char *q = lade_http_query(r, "name");
        cJSON_AddStringToObject(o, "name", q ? q : "");
        const char *a = lade_http_header(r, "authorization");
        cJSON_AddStringToObject(o, "auth", a ? a : "");
        size_t n;
        const char *body = lade_http_body(r, &n);
        cJSON_AddNumberToObject(o, "body_len", (double)n);
        cJSON_AddStringToObject(o, "client", lade_http_client(r));
        char user[64];
        if (lade_http_form_value(body, n, "username", user, sizeof user) == LADE_OK)
            cJSON_AddStringToObject(o, "username", user);
        lade_http_reply_json_take(r, 200, o);
        lade_http_reply(r, 500, "text/plain", "x", 1, NULL); /* second answer: dropped */
    } else if (strcmp(path, "/later") == 0) {
        kept = r; /* answered from a timer */
        assert_int_equal(lade_timer_arm_in(loop, &later, 50), LADE_OK);
    } else if (strcmp(path, "/never") == 0) {
        kept = r; /* answered by lade_http_free */
    } else if (strcmp(path, "/limited") == 0) {
        lade_http_reply(r, 429, "application/json", "{}", 2, "Retry-After: 1\r\nX-Test: yes");
    } else {
        lade_http_reply(r, 404, "application/json", "{}", 2, NULL);
    }
}

/* Sends raw and returns the whole answer (the server closes after it: Connection: close). */
static char *fetch(const char *raw, size_t raw_len)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(lade_http_port(srv))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    size_t sent = 0;
    char *out = calloc(1, 1 << 20);
    size_t got = 0;
    uint64_t end = lade_mono_ms() + 5000;
    while (lade_mono_ms() < end) {
        if (sent < raw_len) {
            ssize_t k = send(fd, raw + sent, raw_len - sent, MSG_NOSIGNAL);
            if (k > 0)
                sent += (size_t)k;
        }
        assert_int_equal(lade_loop_run_once(loop, 5), LADE_OK);
        ssize_t k = recv(fd, out + got, (1 << 20) - 1 - got, 0);
        if (k == 0)
            break;
        if (k > 0)
            got += (size_t)k;
        else if (errno != EAGAIN && errno != EWOULDBLOCK)
            break;
    }
    close(fd);
    out[got] = 0;
    return out;
}

static char *get(const char *path)
{
    char raw[512];
    int n =
        snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    return fetch(raw, (size_t)n);
}

static int setup(void **state)
{
    (void)state;
    lade_log_set_level(LADE_LOG_WARN);
    if (lade_loop_new(&loop) != LADE_OK)
        return -1;
    lade_timer_init(&later, on_later, NULL);
    struct lade_http_opts o = {.loop = loop, .port = 0, .max_body = 1024, .handler = handler};
    return lade_http_new(&srv, &o) == LADE_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    lade_http_free(srv);
    lade_loop_free(loop);
    return 0;
}

static void test_sync_answer(void **state)
{
    (void)state;
    assert_true(lade_http_port(srv) > 0);
    static const char raw[] = "POST /hello?name=a%20b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                              "Authorization: Bearer abc\r\n"
                              "Content-Type: application/x-www-form-urlencoded\r\n"
                              "Content-Length: 32\r\n\r\n"
                              "grant_type=password&username=j+d";
    char *r = fetch(raw, sizeof raw - 1);
    assert_non_null(strstr(r, "HTTP/1.1 200"));
    assert_non_null(strstr(r, "Cache-Control: no-store"));
    assert_non_null(strstr(r, "\"method\":\"POST\""));
    assert_non_null(strstr(r, "\"name\":\"a b\""));
    assert_non_null(strstr(r, "\"auth\":\"Bearer abc\""));
    assert_non_null(strstr(r, "\"body_len\":32"));
    assert_non_null(strstr(r, "\"username\":\"j d\""));
    assert_non_null(strstr(r, "\"client\":\"127.0.0.1\""));
    free(r);
}

static void test_deferred_and_headers(void **state)
{
    (void)state;
    char *r = get("/later");
    assert_non_null(strstr(r, "HTTP/1.1 200"));
    assert_non_null(strstr(r, "{\"late\":true}"));
    free(r);
    r = get("/limited");
    assert_non_null(strstr(r, "HTTP/1.1 429"));
    assert_non_null(strstr(r, "Retry-After: 1"));
    assert_non_null(strstr(r, "X-Test: yes"));
    free(r);
    r = get("/nothing");
    assert_non_null(strstr(r, "HTTP/1.1 404"));
    free(r);
}

static void test_body_too_big(void **state)
{
    (void)state;
    int before = handled;
    char raw[4096];
    int n = snprintf(raw, sizeof raw,
                     "POST /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Content-Length: 2000\r\n\r\n");
    memset(raw + n, 'a', 2000);
    char *r = fetch(raw, (size_t)n + 2000);
    assert_non_null(strstr(r, "HTTP/1.1 413"));
    assert_int_equal(handled, before); /* the handler never saw it */
    free(r);
}

static void test_form_values(void **state)
{
    (void)state;
    char v[16];
    const char *b = "a=1&user=x%2By+z&empty=&flag";
    assert_int_equal(lade_http_form_value(b, strlen(b), "user", v, sizeof v), LADE_OK);
    assert_string_equal(v, "x+y z");
    assert_int_equal(lade_http_form_value(b, strlen(b), "empty", v, sizeof v), LADE_OK);
    assert_string_equal(v, "");
    assert_int_equal(lade_http_form_value(b, strlen(b), "flag", v, sizeof v), LADE_OK);
    assert_int_equal(lade_http_form_value(b, strlen(b), "nope", v, sizeof v), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_http_form_value("u=%zz", 5, "u", v, sizeof v), LADE_ERR_PROTO);
    assert_int_equal(lade_http_form_value("u=0123456789abcdefgh", 20, "u", v, sizeof v),
                     LADE_ERR_NOSPACE);
}

static void test_pending_answered_at_free(void **state)
{
    (void)state;
    /* A request kept by the handler and never answered gets 503 when the server stops. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(lade_http_port(srv))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    static const char raw[] = "GET /never HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_int_equal(send(fd, raw, sizeof raw - 1, 0), (ssize_t)(sizeof raw - 1));
    kept = NULL;
    for (int i = 0; i < 200 && !kept; i++)
        assert_int_equal(lade_loop_run_once(loop, 5), LADE_OK);
    assert_non_null(kept);
    lade_http_free(srv);
    srv = NULL;
    char buf[2048] = {0};
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    assert_true(n > 0);
    assert_non_null(strstr(buf, "HTTP/1.1 503"));
    close(fd);
    struct lade_http_opts o = {.loop = loop, .port = 0, .max_body = 1024, .handler = handler};
    assert_int_equal(lade_http_new(&srv, &o), LADE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sync_answer),
        cmocka_unit_test(test_deferred_and_headers),
        cmocka_unit_test(test_body_too_big),
        cmocka_unit_test(test_form_values),
        cmocka_unit_test(test_pending_answered_at_free),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
