/* e2e: firmware updates on a real lade-charger (issue 6; docs/firmware.md "On the charger").
 * A real hub, a real nginx serving the image under two firmware host names (certificates from
 * the hub's test CA), images signed with lade-fw, UpgradeFirmware (200) sent as the portal
 * would (a direct method through the hub's service identity). A restart of lade-charger stands
 * in for the reboot (RestartCharger's exec of itself).
 *
 *   - a good update: downloaded, installed into slot b, restart, trial boot, confirmed once the
 *     hub is reached: the charger reports the new version and slot;
 *   - refused before any download: another key, a downgrade, another hardware id, a bad path;
 *   - new firmware that fails its self-test: rolled back to the old slot by itself, reported;
 *   - kill -9 in the middle of a (slow) download: the next start resumes it with a Range
 *     request and completes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "harness.h"
#include "harness_charger.h"
#include "harness_hub.h"
#include "harness_nginx.h"

static struct h_hub hub;
static struct hn_nginx ng;
static int fw_port;
static char work[600];
static char pub1[64], pub_other[64];
static char svc_token[1200];
static struct hc svc;
static int rid;
static int n_chargers;

/* dst = src, cut to cap - 1 bytes (no -Wformat-truncation games in -O2 builds). */
static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (h_sh("%s", cmd) != 0)
        fail_msg("command failed: %s", cmd);
}

/* The public key lade-fw keygen printed. */
static void keygen(const char *name, char *pub, size_t cap)
{
    char cmd[1400], line[200];
    snprintf(cmd, sizeof cmd, "'%s/lade-fw' keygen --out '%s/%s.pem' | grep '^public-key: '",
             h_build_dir(), work, name);
    h_capture(cmd, line, sizeof line);
    copy_str(pub, cap, line + strlen("public-key: "));
}

/* An image of size bytes (with the self-test failure marker when bad) in the web root as
 * name, and its manifest signed with key into <work>/<name>.manifest. */
/* <work>/<name with '/' as '_'>.manifest */
static void manifest_path(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s.manifest", work, name);
    for (char *p = out + strlen(work) + 1; *p; p++)
        if (*p == '/')
            *p = '_';
}

static void make_image(const char *name, size_t size, bool bad, const char *key,
                       const char *version, int counter, const char *hw)
{
    char mpath[800];
    manifest_path(name, mpath, sizeof mpath);
    sh("head -c %zu /dev/urandom > '%s/www/fw/%s'", size, work, name);
    if (bad)
        sh("printf 'LADE-SELFTEST-FAIL' >> '%s/www/fw/%s'", work, name);
    sh("rm -f '%s' && '%s/lade-fw' sign --key '%s/%s.pem' --image '%s/www/fw/%s' "
       "--hw %s --version %s --counter %d --out '%s' >/dev/null",
       mpath, h_build_dir(), work, key, work, name, hw, version, counter, mpath);
}

/* The UpgradeFirmware arguments for name: {"id":200,"manifest":...,"path":"/fw/<name>"}. */
static char *upgrade_args(const char *name)
{
    char path[800];
    manifest_path(name, path, sizeof path);
    char *m = h_read_file(path);
    assert_non_null(m);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", 200);
    cJSON_AddStringToObject(o, "manifest", m);
    char p[200];
    snprintf(p, sizeof p, "/fw/%s", name);
    cJSON_AddStringToObject(o, "path", p);
    free(m);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* A direct method as the portal; returns the status; body copied into out. */
static int call_method(const char *dev, const char *method, const char *body, char *out, size_t cap)
{
    char topic[256], prefix[256];
    rid++;
    snprintf(topic, sizeof topic, "$lade/svc/methods/%s/%s/?$rid=%d", dev, method, rid);
    assert_int_equal(hc_publish_str(&svc, topic, body, 0), 0);
    snprintf(prefix, sizeof prefix, "$lade/svc/methods-res/%s/", dev);
    struct hc_msg m;
    uint64_t end = h_now_ms() + 15000;
    while (h_now_ms() < end) {
        if (hc_recv(&svc, &m, 1000) != 1 || strncmp(m.topic, prefix, strlen(prefix)) != 0)
            continue;
        char want[32];
        snprintf(want, sizeof want, "/?$rid=%d", rid);
        if (!strstr(m.topic, want))
            continue;
        copy_str(out, cap, m.payload);
        return atoi(m.topic + strlen(prefix));
    }
    fail_msg("no answer to the method from %s", dev);
    return 0;
}

static int call(const char *dev, const char *body, char *out, size_t cap)
{
    return call_method(dev, "command", body, out, cap);
}

static void connect_service(void)
{
    memset(&svc, 0, sizeof svc);
    assert_int_equal(
        hc_connect(&svc, hub.port, hub.ca, hub.host, "svc:portal", "svc:portal", svc_token, true),
        0);
    assert_int_equal(hc_subscribe(&svc, "$lade/svc/#", 0), 0);
}

static int setup(void **state)
{
    (void)state;
    snprintf(work, sizeof work, "%s", h_tmpdir("fwupd"));
    h_hub_prepare(&hub, "hub.lade.test");
    char hosts[700];
    snprintf(hosts, sizeof hosts, "%s/hosts", hub.dir);
    h_write_file(hosts, "127.0.0.1 hub.lade.test\n127.0.0.1 fw1.lade.test\n"
                        "127.0.0.1 fw2.lade.test\n");
    h_service_token(&hub, "portal", svc_token, sizeof svc_token);
    h_hub_start(&hub, NULL);
    connect_service();

    /* nginx: fw1 and fw2 on one port (SNI), certificates from the hub's CA; /fw/slow/ is rate
     * limited so a test can kill the charger in the middle of a download. */
    sh("mkdir -p '%s/www/fw/slow' '%s/fw1' '%s/fw2'", work, work, work);
    char d1[620], d2[620];
    snprintf(d1, sizeof d1, "%s/fw1", work);
    snprintf(d2, sizeof d2, "%s/fw2", work);
    h_make_server_cert(d1, hub.dir, "fw1.lade.test");
    h_make_server_cert(d2, hub.dir, "fw2.lade.test");
    fw_port = h_free_port();
    char servers[8000];
    snprintf(servers, sizeof servers,
             "server { listen 127.0.0.1:%d ssl; server_name fw1.lade.test;\n"
             "  ssl_certificate %s/server.pem; ssl_certificate_key %s/server.key;\n"
             "  root %s/www; location /fw/slow/ { limit_rate 128k; } }\n"
             "server { listen 127.0.0.1:%d ssl; server_name fw2.lade.test;\n"
             "  ssl_certificate %s/server.pem; ssl_certificate_key %s/server.key;\n"
             "  root %s/www; }\n",
             fw_port, d1, d1, work, fw_port, d2, d2, work);
    hn_prepare(&ng, "fwupd-nginx");
    hn_start(&ng, servers, &fw_port, 1);

    keygen("k1", pub1, sizeof pub1);
    keygen("kother", pub_other, sizeof pub_other);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    hc_close_all();
    hn_stop(&ng);
    h_hub_stop(&hub);
    return 0;
}

static void start_charger(struct h_charger *c, const char *user_extra)
{
    char id[32], fargs[1200], user[800];
    snprintf(id, sizeof id, "LDEFW%05d", ++n_chargers);
    snprintf(fargs, sizeof fargs,
             "--evse sim --firmware-pubkey %s --firmware-hosts fw1.lade.test,fw2.lade.test "
             "--firmware-port %d --hardware-id lade-sim-1",
             pub1, fw_port);
    snprintf(user, sizeof user,
             "backoff_min_ms = 200\nbackoff_max_ms = 1000\nlog_level = debug\n"
             "report_min_interval_s = 1\nfirmware_confirm_s = 30\n%s",
             user_extra ? user_extra : "");
    h_charger_provision(c, &hub, id, fargs, user);
    h_charger_start(c);
    assert_true(h_charger_wait_status(c, "\"link\":\"online\"", 20000));
}

static void test_update_confirmed(void **state)
{
    (void)state;
    struct h_charger c;
    start_charger(&c, NULL);
    assert_true(h_charger_wait_status(&c, "\"slot\":\"a\"", 5000));
    make_image("good.img", 300 * 1024, false, "k1", "9.1.0", 5, "lade-sim-1");
    char *args = upgrade_args("good.img");
    char out[1024];
    int st = call(c.id, args, out, sizeof out);
    free(args);
    assert_int_equal(st, 200);
    /* Downloaded, installed, restarted, tried, confirmed once online again. */
    assert_true(h_charger_wait_status(&c, "\"version\":\"9.1.0\"", 60000));
    assert_true(h_charger_wait_status(&c, "\"slot\":\"b\"", 5000));
    assert_true(h_charger_wait_status(&c, "\"state\":\"idle\"", 30000));
    assert_true(h_charger_wait_status(&c, "\"link\":\"online\"", 20000));
    assert_true(h_wait_file_contains(c.log, "confirmed (self-test passed, hub reached)", 5000));
    assert_true(hn_log_count(&ng, "\"GET /fw/good.img") >= 1);
    /* Counter 5 is now the device's: an image with counter 4 is a downgrade, refused before
     * any byte is fetched. */
    make_image("older.img", 4096, false, "k1", "9.0.9", 4, "lade-sim-1");
    args = upgrade_args("older.img");
    st = call(c.id, args, out, sizeof out);
    free(args);
    fprintf(stderr, "older.img: %d %s\n", st, out);
    assert_int_equal(st, 400);
    assert_non_null(strstr(out, "manifest refused"));
    assert_int_equal(hn_log_count(&ng, "older.img"), 0);
    assert_true(h_charger_wait_status(&c, "\"security_counter\":5", 2000));
    /* The same image again: nothing to do. */
    args = upgrade_args("good.img");
    st = call(c.id, args, out, sizeof out);
    free(args);
    assert_int_equal(st, 200);
    assert_non_null(strstr(out, "already running"));
    h_charger_stop(&c);
}

static void test_refused(void **state)
{
    (void)state;
    struct h_charger c;
    start_charger(&c, NULL);
    char out[1024];
    struct {
        const char *name, *key, *hw, *why;
        int counter;
    } cases[] = {
        {"otherkey.img", "kother", "lade-sim-1", "key", 5},
        {"otherhw.img", "k1", "lade-other-2", "hardware", 5},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        make_image(cases[i].name, 4096, false, cases[i].key, "9.9.9", cases[i].counter,
                   cases[i].hw);
        char *args = upgrade_args(cases[i].name);
        int st = call(c.id, args, out, sizeof out);
        free(args);
        fprintf(stderr, "%s: %d %s\n", cases[i].name, st, out);
        assert_int_equal(st, 400);
        assert_non_null(strstr(out, "manifest refused"));
    }
    /* A path outside /fw/. */
    const char *bad = "{\"id\":200,\"manifest\":\"x\",\"path\":\"/etc/passwd\"}";
    assert_int_equal(call(c.id, bad, out, sizeof out), 400);
    /* Nothing was fetched for any of them, and the charger still runs slot a. */
    assert_int_equal(hn_log_count(&ng, "otherkey.img"), 0);
    assert_int_equal(hn_log_count(&ng, "otherhw.img"), 0);
    assert_true(h_charger_wait_status(&c, "\"slot\":\"a\"", 2000));
    h_charger_stop(&c);
}

static void test_selftest_fails_rollback(void **state)
{
    (void)state;
    struct h_charger c;
    start_charger(&c, NULL);
    make_image("broken.img", 64 * 1024, true, "k1", "9.2.0", 6, "lade-sim-1");
    char *args = upgrade_args("broken.img");
    char out[1024];
    assert_int_equal(call(c.id, args, out, sizeof out), 200);
    free(args);
    /* Installed, tried, failed its self-test, rolled back to slot a by itself, reported. */
    assert_true(h_wait_file_contains(c.log, "slot b: trial -> bad (self-test failed", 60000));
    assert_true(h_charger_wait_status(&c, "\"rollbacks\":1", 30000));
    assert_true(h_charger_wait_status(&c, "9.2.0 was rolled back: self-test", 10000));
    assert_true(h_charger_wait_status(&c, "\"slot\":\"a\"", 10000));
    assert_true(h_charger_wait_status(&c, "\"link\":\"online\"", 20000));
    char *s = h_read_file(c.status);
    assert_non_null(s);
    assert_null(strstr(s, "\"version\":\"9.2.0\""));
    free(s);
    h_charger_stop(&c);
}

static void test_kill9_resume(void **state)
{
    (void)state;
    struct h_charger c;
    start_charger(&c, NULL);
    make_image("slow/big.img", 1024 * 1024, false, "k1", "9.3.0", 7, "lade-sim-1");
    char *args = upgrade_args("slow/big.img");
    char out[1024];
    assert_int_equal(call(c.id, args, out, sizeof out), 200);
    free(args);
    /* 128 KiB/s: kill -9 once the resume state has been saved (every 256 KiB). */
    assert_true(h_charger_wait_status(&c, "\"state\":\"downloading\"", 10000));
    uint64_t end = h_now_ms() + 20000;
    while (h_charger_num(&c, "firmware.progress") < 30 && h_now_ms() < end)
        usleep(100000);
    assert_true(h_charger_num(&c, "firmware.progress") >= 30);
    h_charger_kill9(&c);
    h_charger_start(&c);
    assert_true(h_charger_wait_status(&c, "\"version\":\"9.3.0\"", 90000));
    assert_true(h_charger_wait_status(&c, "\"state\":\"idle\"", 30000));
    /* The second request asked for the rest only. */
    assert_true(hn_log_count(&ng, "fw1.lade.test 206 \"GET /fw/slow/big.img") >= 1);
    h_charger_stop(&c);
}

/* A car is charging when the new firmware is installed: the restart waits for the session to
 * end, says so, and happens once the car is unplugged. */
static void test_restart_deferred_while_charging(void **state)
{
    (void)state;
    struct h_charger c;
    start_charger(&c, "sim_car = 3p22kw\nsim_soc = 10\noffline_current_a = 10\n");
    assert_true(h_charger_wait_status(&c, "\"state\":\"charging\"", 20000));
    make_image("defer.img", 64 * 1024, false, "k1", "9.4.0", 8, "lade-sim-1");
    char *args = upgrade_args("defer.img");
    char out[1024];
    assert_int_equal(call(c.id, args, out, sizeof out), 200);
    free(args);
    assert_true(h_charger_wait_status(&c, "\"restart_deferred\":true", 20000));
    assert_true(h_charger_wait_status(&c, "\"state\":\"restart-pending\"", 1000));
    /* Still the old firmware, still charging, a few seconds later. */
    sleep(2);
    char *s = h_read_file(c.status);
    assert_non_null(s);
    assert_non_null(strstr(s, "\"state\":\"charging\""));
    assert_non_null(strstr(s, "\"slot\":\"a\""));
    free(s);
    /* The car leaves: the session ends, the restart follows (checked every 5 s). */
    assert_int_equal(call_method(c.id, "sim", "{\"unplug\":true}", out, sizeof out), 200);
    assert_true(h_charger_wait_status(&c, "\"version\":\"9.4.0\"", 60000));
    assert_true(h_charger_wait_status(&c, "\"state\":\"idle\"", 30000));
    h_charger_stop(&c);
}

/* The new firmware cannot reach the hub: after firmware_confirm_s it rolls back by itself. */
static void test_no_hub_rollback(void **state)
{
    (void)state;
    struct h_charger c;
    start_charger(&c, NULL);
    make_image("slow/nohub.img", 320 * 1024, false, "k1", "9.5.0", 9, "lade-sim-1");
    char *args = upgrade_args("slow/nohub.img");
    char out[1024];
    assert_int_equal(call(c.id, args, out, sizeof out), 200);
    free(args);
    assert_true(h_charger_wait_status(&c, "\"state\":\"downloading\"", 10000));
    hc_close(&svc);
    h_hub_stop(&hub); /* the trial boot will find no hub */
    assert_true(h_wait_file_contains(c.log, "(9.5.0, trial boot)", 30000));
    assert_true(h_wait_file_contains(c.log, "did not reach the hub in time: rolled back", 45000));
    h_hub_start(&hub, NULL);
    connect_service();
    assert_true(h_charger_wait_status(&c, "\"slot\":\"a\"", 30000));
    assert_true(h_charger_wait_status(&c, "\"rollbacks\":1", 5000));
    assert_true(h_charger_wait_status(&c, "\"link\":\"online\"", 30000));
    char *s = h_read_file(c.status);
    assert_non_null(s);
    assert_null(strstr(s, "\"version\":\"9.5.0\""));
    assert_non_null(strstr(s, "hub"));
    free(s);
    h_charger_stop(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_update_confirmed),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_selftest_fails_rollback),
        cmocka_unit_test(test_kill9_resume),
        cmocka_unit_test(test_restart_deferred_while_charging),
        cmocka_unit_test(test_no_hub_rollback),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
