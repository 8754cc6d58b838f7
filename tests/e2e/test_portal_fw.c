/* e2e: the portal's firmware repository and staged rollouts (issue 6, cloud side;
 * docs/portal-api.md "Firmware") — a real hub, a real nginx serving lade-cloud's firmware
 * directory under fw1/fw2/fw3.lade.test (certificates from the hub's test CA), lade-cloud with
 * --firmware-dir/--firmware-keys, and four real lade-chargers that pin the release key.
 *
 *   - uploads: a manifest signed by a key that is not pinned, a tampered manifest and garbage
 *     are refused (400 naming the problem), the good one is taken (201, awaiting image), a second
 *     time 409; images of the wrong hash (400), too short (400) and too long (413, nothing left
 *     on disk) are refused; the right one is published under its name in the directory;
 *   - a rollout to 50 %: exactly the selected chargers (2 of 4) update and confirm (the new
 *     version reported back through the twin), the others stay; raised to 100 %: the rest
 *     update; the rollout's status shows each charger "updated";
 *   - sendCommand 200 on one charger sends the newest release for its hardware id; the
 *     reference firmware view shows current and available versions;
 *   - a rollout while one charger is offline, and a kill -9 of the portal in the middle: the
 *     restarted portal continues it, and the charger gets the release when it comes back.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <curl/curl.h>

#include "harness.h"
#include "harness_charger.h"
#include "harness_hub.h"
#include "harness_nginx.h"
#include "lade/store.h"

#include "../../src/cloud/portal_int.h"

#define N  4
#define PW "s3cret-test-password"

static struct h_hub hub;
static struct hn_nginx ng;
static struct h_charger ch[N];
static pid_t portal_pid;
static int portal_port, fw_port;
static char work[600], fwdir[700], db[700], plog[700], portal_conf[700];
static char pub1[64], pub_other[64];
static char token[128];
static int64_t inst_id, chg_id[N];
static char inst_gid[PORTAL_ID_LEN + 1], chg_gid[N][PORTAL_ID_LEN + 1];
static char fw_gid[PORTAL_ID_LEN + 1];

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

/* ---- HTTP ---- */

struct body {
    char *p;
    size_t n;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct body *b = ud;
    size_t k = size * nmemb;
    char *np = realloc(b->p, b->n + k + 1);
    if (!np)
        return 0;
    memcpy(np + b->n, ptr, k);
    b->p = np;
    b->n += k;
    b->p[b->n] = 0;
    return k;
}

static long http_once(const char *method, const char *path, const char *ctype, const char *body,
                      size_t len, char **out)
{
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[512], auth[256], ct[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", portal_port, path);
    struct curl_slist *h = NULL;
    if (token[0]) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    if (ctype) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        h = curl_slist_append(h, ct);
    }
    h = curl_slist_append(h, "Expect:");
    struct body b = {0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (out)
        *out = b.p;
    else
        free(b.p);
    return status;
}

/* The portal allows a user 15 calls at once, then 10 a second (docs/portal-api.md "Rate
 * limits"): this test is not about that, so a 429 is waited out (its Retry-After is 1 s) and
 * the call made again, up to 10 times. */
static long http_n(const char *method, const char *path, const char *ctype, const char *body,
                   size_t len, char **out)
{
    for (int tries = 0;; tries++) {
        char *b = NULL;
        long st = http_once(method, path, ctype, body, len, &b);
        if (st != 429 || tries == 10) {
            if (out)
                *out = b;
            else
                free(b);
            return st;
        }
        free(b);
        usleep(1100000);
    }
}

static long http(const char *method, const char *path, const char *ctype, const char *body,
                 char **out)
{
    return http_n(method, path, ctype, body, body ? strlen(body) : 0, out);
}

static cJSON *get_json(const char *path)
{
    char *b = NULL;
    long st = http("GET", path, NULL, NULL, &b);
    if (st != 200)
        fail_msg("GET %s: %ld %s", path, st, b ? b : "");
    cJSON *j = cJSON_Parse(b);
    free(b);
    assert_non_null(j);
    return j;
}

static void login(void)
{
    token[0] = 0;
    char *b = NULL;
    long st = 0;
    for (int i = 0; i < 100 && st != 200; i++) {
        free(b);
        b = NULL;
        st = http("POST", "/oauth/token", "application/x-www-form-urlencoded",
                  "grant_type=password&username=admin&password=" PW, &b);
        if (st != 200)
            usleep(200000);
    }
    if (st != 200)
        fail_msg("login: %ld %s", st, b ? b : "");
    cJSON *j = cJSON_Parse(b);
    free(b);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "access_token");
    assert_true(cJSON_IsString(t));
    snprintf(token, sizeof token, "%s", t->valuestring);
    cJSON_Delete(j);
}

static char *read_file_n(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[n] = 0;
        *len = (size_t)n;
    }
    return b;
}

/* ---- releases ---- */

static void keygen(const char *name, char *pub, size_t cap)
{
    char cmd[1400], line[200];
    snprintf(cmd, sizeof cmd, "'%s/lade-fw' keygen --out '%s/%s.pem' | grep '^public-key: '",
             h_build_dir(), work, name);
    h_capture(cmd, line, sizeof line);
    snprintf(pub, cap, "%.60s", line + strlen("public-key: "));
}

/* <work>/<name>.img of size bytes and <work>/<name>.manifest signed with key. */
static void make_release(const char *name, size_t size, const char *key, const char *version,
                         int counter)
{
    sh("head -c %zu /dev/urandom > '%s/%s.img'", size, work, name);
    sh("rm -f '%s/%s.manifest' && '%s/lade-fw' sign --key '%s/%s.pem' --image '%s/%s.img' "
       "--hw lade-sim-1 --version %s --counter %d --out '%s/%s.manifest' >/dev/null",
       work, name, h_build_dir(), work, key, work, name, version, counter, work, name);
}

static char *file_text(const char *name, const char *ext)
{
    char p[800];
    snprintf(p, sizeof p, "%s/%s.%s", work, name, ext);
    char *t = h_read_file(p);
    assert_non_null(t);
    return t;
}

static long post_manifest(const char *text, char **out)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "manifest", text);
    char *b = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    long st = http("POST", "/api/lade/firmware", "application/json", b, out);
    free(b);
    return st;
}

static long put_image(const char *gid, const char *data, size_t len, char **out)
{
    char path[200];
    snprintf(path, sizeof path, "/api/lade/firmware/%s/image", gid);
    return http_n("PUT", path, "application/octet-stream", data, len, out);
}

/* Uploads name's manifest and image; its id into gid. */
static void publish(const char *name, char gid[PORTAL_ID_LEN + 1])
{
    char *m = file_text(name, "manifest");
    char *b = NULL;
    long st = post_manifest(m, &b);
    free(m);
    if (st != 201)
        fail_msg("manifest %s: %ld %s", name, st, b ? b : "");
    cJSON *j = cJSON_Parse(b);
    free(b);
    snprintf(gid, PORTAL_ID_LEN + 1, "%s", cJSON_GetObjectItemCaseSensitive(j, "Id")->valuestring);
    cJSON_Delete(j);
    char p[800];
    snprintf(p, sizeof p, "%s/%s.img", work, name);
    size_t len = 0;
    char *img = read_file_n(p, &len);
    assert_non_null(img);
    st = put_image(gid, img, len, &b);
    free(img);
    if (st != 200)
        fail_msg("image %s: %ld %s", name, st, b ? b : "");
    assert_non_null(strstr(b, "\"State\":\"published\""));
    free(b);
}

/* ---- the portal ---- */

static void portal_dump(void)
{
    char *l = h_read_file(plog);
    if (l) {
        size_t n = strlen(l);
        fprintf(stderr, "portal log (tail):\n%s\n", n > 8000 ? l + n - 8000 : l);
    }
    free(l);
}

static void portal_start(void)
{
    char bin[600], port[16], hosts[600], hubport[16];
    snprintf(bin, sizeof bin, "%s/lade-cloud", h_build_dir());
    snprintf(port, sizeof port, "%d", portal_port);
    snprintf(hosts, sizeof hosts, "%s/hosts", hub.dir);
    snprintf(hubport, sizeof hubport, "%d", hub.port);
    const char *argv[] = {
        bin,         "--db",           db,      "--port",          port,  "--service",
        portal_conf, "--ca",           hub.ca,  "--hosts-file",    hosts, "--hub-port",
        hubport,     "--admin",        "admin", "--kdf-ln",        "6",   "--log-level",
        "debug",     "--firmware-dir", fwdir,   "--firmware-keys", pub1,  NULL};
    const char *env[] = {"LADE_ADMIN_PASSWORD=" PW, NULL};
    portal_pid = h_spawn(argv, env, plog);
    uint64_t end = h_now_ms() + 30000;
    while (h_running(portal_pid, NULL) && !h_wait_port(portal_port, 200) && h_now_ms() < end)
        ;
    if (!h_wait_port(portal_port, 100)) {
        portal_dump();
        fail_msg("portal did not start");
    }
}

static void seed_store(void)
{
    struct lade_store *st = NULL;
    assert_int_equal(lade_store_open_sqlite(db, &st), LADE_OK);
    struct lade_store_installation in = {.network_type = LADE_NET_TN_3_PHASE, .created_s = 1};
    snprintf(in.name, sizeof in.name, "Firmware site");
    for (int k = 0; k < 3; k++)
        in.available_ma[k] = in.fuse_ma[k] = 63000;
    assert_int_equal(lade_store_installation_add(st, &in, &inst_id), LADE_OK);
    for (int i = 0; i < N; i++) {
        struct lade_store_charger c;
        lade_store_charger_defaults(&c);
        snprintf(c.device_id, sizeof c.device_id, "%.31s", ch[i].id);
        snprintf(c.name, sizeof c.name, "Bay %d", i + 1);
        c.installation_id = inst_id;
        c.offline_current_ma = 6000;
        c.offline_phases = 1;
        c.created_s = 1;
        assert_int_equal(lade_store_charger_add(st, &c, &chg_id[i]), LADE_OK);
        portal_id_format(PORTAL_ID_CHARGER, chg_id[i], chg_gid[i]);
    }
    portal_id_format(PORTAL_ID_INSTALLATION, inst_id, inst_gid);
    lade_store_close(st);
}

static int group_setup(void **state)
{
    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    snprintf(work, sizeof work, "%s", h_tmpdir("portalfw"));
    snprintf(fwdir, sizeof fwdir, "%s/repo", work);
    sh("mkdir -p '%s'", fwdir);
    h_hub_prepare(&hub, "hub.lade.test");
    char hosts[700];
    snprintf(hosts, sizeof hosts, "%s/hosts", hub.dir);
    h_write_file(hosts, "127.0.0.1 hub.lade.test\n127.0.0.1 fw1.lade.test\n"
                        "127.0.0.1 fw2.lade.test\n127.0.0.1 fw3.lade.test\n");
    h_hub_start(&hub, NULL);
    char tok[1200];
    h_service_token(&hub, "portal", tok, sizeof tok);
    snprintf(portal_conf, sizeof portal_conf, "%s/portal.conf", hub.dir);

    /* nginx serves the portal's firmware directory as /fw/ under the three host names. */
    fw_port = h_free_port();
    char servers[8000] = "";
    size_t off = 0;
    for (int k = 1; k <= 3; k++) {
        char d[700], host[32];
        snprintf(host, sizeof host, "fw%d.lade.test", k);
        snprintf(d, sizeof d, "%s/fw%d", work, k);
        sh("mkdir -p '%s'", d);
        h_make_server_cert(d, hub.dir, host);
        off += (size_t)snprintf(servers + off, sizeof servers - off,
                                "server { listen 127.0.0.1:%d ssl; server_name %s;\n"
                                "  ssl_certificate %s/server.pem; ssl_certificate_key "
                                "%s/server.key;\n  location /fw/ { alias %s/; } }\n",
                                fw_port, host, d, d, fwdir);
    }
    hn_prepare(&ng, "portalfw-nginx");
    hn_start(&ng, servers, &fw_port, 1);

    keygen("k1", pub1, sizeof pub1);
    keygen("kother", pub_other, sizeof pub_other);

    for (int i = 0; i < N; i++) {
        char id[32], fargs[1200];
        snprintf(id, sizeof id, "LDEPF%05d", i + 1);
        snprintf(fargs, sizeof fargs,
                 "--evse sim --firmware-pubkey %s --firmware-hosts "
                 "fw1.lade.test,fw2.lade.test,fw3.lade.test --firmware-port %d "
                 "--hardware-id lade-sim-1",
                 pub1, fw_port);
        h_charger_provision(&ch[i], &hub, id, fargs,
                            "backoff_min_ms = 200\nbackoff_max_ms = 1000\nlog_level = debug\n"
                            "report_min_interval_s = 1\nfirmware_confirm_s = 30\n"
                            "keepalive_s = 30\n");
    }
    const char *dir = h_tmpdir("portalfw-cloud");
    snprintf(db, sizeof db, "%s/portal.db", dir);
    snprintf(plog, sizeof plog, "%s/portal.log", dir);
    seed_store();
    portal_port = h_free_port();
    portal_start();
    for (int i = 0; i < N; i++)
        h_charger_start(&ch[i]);
    for (int i = 0; i < N; i++)
        assert_true(h_charger_wait_status(&ch[i], "\"link\":\"online\"", 30000));
    login();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < N; i++)
        if (ch[i].pid)
            h_charger_stop(&ch[i]);
    int rc = 0;
    if (portal_pid) {
        int ws = h_stop(portal_pid, SIGTERM, 20000);
        char *l = h_read_file(plog);
        bool san = l && (strstr(l, "AddressSanitizer") || strstr(l, "runtime error") ||
                         strstr(l, "LeakSanitizer"));
        if (san || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
            portal_dump();
            fprintf(stderr, "portal did not stop cleanly (status %d)\n", ws);
            rc = -1;
        }
        free(l);
    }
    hn_stop(&ng);
    h_hub_stop(&hub);
    curl_global_cleanup();
    return rc;
}

/* ---- tests ---- */

static void expect(long st, long want, const char *b, const char *needle)
{
    if (st != want || (needle && (!b || !strstr(b, needle))))
        fail_msg("expected %ld with \"%s\", got %ld %s", want, needle ? needle : "", st,
                 b ? b : "");
}

static void test_upload(void **state)
{
    (void)state;
    char *b = NULL;
    /* Signed by a key the chargers do not pin. */
    make_release("other", 4096, "kother", "9.1.0", 5);
    char *m = file_text("other", "manifest");
    long st = post_manifest(m, &b);
    free(m);
    expect(st, 400, b, "not pinned");
    free(b);
    /* Tampered: the counter changed after signing. */
    make_release("r1", 300 * 1024, "k1", "9.1.0", 5);
    m = file_text("r1", "manifest");
    char *t = strdup(m);
    char *p = strstr(t, "security-counter: 5");
    assert_non_null(p);
    p[strlen("security-counter: ")] = '9';
    st = post_manifest(t, &b);
    free(t);
    expect(st, 400, b, "signature does not verify");
    free(b);
    /* Not a manifest at all. */
    st = post_manifest("<html>hello</html>\n", &b);
    expect(st, 400, b, "not a lade firmware manifest");
    free(b);
    /* The good one, then again. */
    st = post_manifest(m, &b);
    expect(st, 201, b, "\"State\":\"awaiting image\"");
    cJSON *j = cJSON_Parse(b);
    free(b);
    snprintf(fw_gid, sizeof fw_gid, "%s", cJSON_GetObjectItemCaseSensitive(j, "Id")->valuestring);
    cJSON_Delete(j);
    st = post_manifest(m, &b);
    free(m);
    expect(st, 409, b, "exists already");
    free(b);
    /* Images: wrong bytes, too short, too long (2 MiB for a 300 KiB image). */
    size_t len = 0;
    char ip[800];
    snprintf(ip, sizeof ip, "%s/r1.img", work);
    char *img = read_file_n(ip, &len);
    assert_non_null(img);
    img[100] ^= 1;
    st = put_image(fw_gid, img, len, &b);
    expect(st, 400, b, "SHA-256");
    free(b);
    img[100] ^= 1;
    st = put_image(fw_gid, img, len - 1, &b);
    expect(st, 400, b, "differs from the manifest's image-length");
    free(b);
    char *big = calloc(1, 2u << 20);
    memcpy(big, img, len);
    st = put_image(fw_gid, big, 2u << 20, &b);
    free(big);
    expect(st, 413, b, "too long");
    free(b);
    /* Nothing of those is left in the directory. */
    char cmd[900], line[64];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", fwdir);
    h_capture(cmd, line, sizeof line);
    assert_int_equal(atoi(line), 0);
    /* Without a token: 401, and nothing written. */
    char saved[sizeof token];
    memcpy(saved, token, sizeof token);
    token[0] = 0;
    st = put_image(fw_gid, img, len, &b);
    expect(st, 401, b, NULL);
    free(b);
    memcpy(token, saved, sizeof token);
    /* The right image: published under <sha prefix>-9.1.0.img, and nginx serves it. */
    st = put_image(fw_gid, img, len, &b);
    free(img);
    expect(st, 200, b, "\"State\":\"published\"");
    free(b);
    h_capture(cmd, line, sizeof line);
    assert_int_equal(atoi(line), 1);
    sh("cmp '%s/r1.img' \"$(ls '%s'/*-9.1.0.img)\"", work, fwdir);
    st = put_image(fw_gid, "x", 1, &b);
    expect(st, 409, b, "published already");
    free(b);
    /* The list. */
    j = get_json("/api/lade/firmware");
    assert_int_equal(cJSON_GetArraySize(j), 1);
    const cJSON *e = cJSON_GetArrayItem(j, 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "Version")->valuestring, "9.1.0");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "HardwareId")->valuestring,
                        "lade-sim-1");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(e, "SecurityCounter")->valueint, 5);
    cJSON_Delete(j);
}

static int count_status(const cJSON *ro, const char *status)
{
    int n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(ro, "Chargers")) n +=
        strcmp(cJSON_GetObjectItemCaseSensitive(c, "Status")->valuestring, status) == 0;
    return n;
}

static cJSON *wait_updated(const char *rpath, int want, uint32_t timeout_ms)
{
    uint64_t end = h_now_ms() + timeout_ms;
    for (;;) {
        cJSON *j = get_json(rpath);
        if (count_status(j, "updated") >= want)
            return j;
        if (h_now_ms() > end) {
            char *t = cJSON_Print(j);
            fprintf(stderr, "rollout: %s\n", t);
            free(t);
            cJSON_Delete(j);
            portal_dump();
            fail_msg("not %d chargers updated in time", want);
        }
        cJSON_Delete(j);
        usleep(300000);
    }
}

static bool runs(int i, const char *version)
{
    char needle[64];
    snprintf(needle, sizeof needle, "\"version\":\"%s\"", version);
    char *s = h_read_file(ch[i].status);
    bool r = s && strstr(s, needle);
    free(s);
    return r;
}

static void test_rollout(void **state)
{
    (void)state;
    char path[200], *b = NULL;
    snprintf(path, sizeof path, "/api/lade/firmware/%s/rollout", fw_gid);
    char body[200];
    snprintf(body, sizeof body, "{\"installationId\":\"%s\",\"percent\":50,\"delayMaxS\":1}",
             inst_gid);
    long st = http("POST", path, "application/json", body, &b);
    expect(st, 201, b, "\"Selected\":2");
    cJSON *j = cJSON_Parse(b);
    free(b);
    char rpath[200];
    snprintf(rpath, sizeof rpath, "/api/lade/rollouts/%s",
             cJSON_GetObjectItemCaseSensitive(j, "Id")->valuestring);
    cJSON_Delete(j);
    /* Exactly the two selected chargers update and confirm. */
    j = wait_updated(rpath, 2, 90000);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "Chargers")), 2);
    bool sel[N] = {false};
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(j, "Chargers"))
    {
        const char *gid = cJSON_GetObjectItemCaseSensitive(c, "ChargerId")->valuestring;
        const cJSON *fw = cJSON_GetObjectItemCaseSensitive(c, "Firmware");
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(fw, "Version")->valuestring, "9.1.0");
        for (int i = 0; i < N; i++)
            if (!strcmp(gid, chg_gid[i]))
                sel[i] = true;
    }
    cJSON_Delete(j);
    for (int i = 0; i < N; i++) {
        if (sel[i])
            assert_true(h_charger_wait_status(&ch[i], "\"version\":\"9.1.0\"", 10000));
        else
            assert_false(runs(i, "9.1.0"));
    }
    /* Lowering is refused; raising to 100 % adds the other two. */
    st = http("POST", rpath, "application/json", "{\"percent\":20}", &b);
    expect(st, 409, b, "raised");
    free(b);
    st = http("POST", rpath, "application/json", "{\"percent\":100}", &b);
    expect(st, 200, b, "\"Selected\":4");
    free(b);
    j = wait_updated(rpath, 4, 90000);
    cJSON_Delete(j);
    for (int i = 0; i < N; i++)
        assert_true(h_charger_wait_status(&ch[i], "\"version\":\"9.1.0\"", 10000));
    /* Each charger's download came from the portal's directory through nginx. */
    assert_true(hn_log_count(&ng, "-9.1.0.img") >= N);
    /* Stop it. */
    st = http("POST", rpath, "application/json", "{\"stop\":true}", &b);
    expect(st, 200, b, "\"State\":\"stopped\"");
    free(b);
}

static void test_send_command(void **state)
{
    (void)state;
    char gid[PORTAL_ID_LEN + 1], path[200], *b = NULL;
    make_release("r2", 64 * 1024, "k1", "9.2.0", 6);
    publish("r2", gid);
    /* The reference view: 9.2.0 available for every charger, none up to date. */
    snprintf(path, sizeof path, "/api/chargerfirmware/installation/%s", inst_gid);
    cJSON *j = get_json(path);
    const cJSON *c;
    cJSON_ArrayForEach(c, j)
    {
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(c, "AvailableVersion")->valuestring,
                            "9.2.0");
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(c, "CurrentVersion")->valuestring,
                            "9.1.0");
        assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(c, "IsUpToDate")));
    }
    cJSON_Delete(j);
    snprintf(path, sizeof path, "/api/chargers/%s/sendcommand/200", chg_gid[0]);
    long st = http("POST", path, NULL, NULL, &b);
    expect(st, 200, b, "\"CommandId\":200");
    free(b);
    assert_true(h_charger_wait_status(&ch[0], "\"version\":\"9.2.0\"", 60000));
    assert_true(h_charger_wait_status(&ch[0], "\"state\":\"idle\"", 30000));
    assert_false(runs(1, "9.2.0"));
    /* Deleting a release with a stopped rollout works; its file goes. */
    snprintf(path, sizeof path, "/api/lade/firmware/%s", gid);
    st = http("DELETE", path, NULL, NULL, &b);
    expect(st, 204, b, NULL);
    free(b);
}

static void test_offline_and_restart(void **state)
{
    (void)state;
    char gid[PORTAL_ID_LEN + 1], path[200], *b = NULL;
    make_release("r3", 32 * 1024, "k1", "9.3.0", 7);
    publish("r3", gid);
    h_charger_stop(&ch[3]);
    snprintf(path, sizeof path, "/api/lade/firmware/%s/rollout", gid);
    long st = http("POST", path, "application/json", "{\"percent\":100}", &b);
    expect(st, 201, b, "\"Selected\":4");
    cJSON *j = cJSON_Parse(b);
    free(b);
    char rpath[200];
    snprintf(rpath, sizeof rpath, "/api/lade/rollouts/%s",
             cJSON_GetObjectItemCaseSensitive(j, "Id")->valuestring);
    cJSON_Delete(j);
    j = wait_updated(rpath, 3, 90000);
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(j, "Chargers"))
    {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(c, "ChargerId")->valuestring, chg_gid[3]))
            continue;
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(c, "Status")->valuestring, "pending");
        assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(c, "Online")));
    }
    cJSON_Delete(j);
    /* The portal dies and comes back; the rollout is still there and goes on. */
    kill(portal_pid, SIGKILL);
    int ws = 0;
    waitpid(portal_pid, &ws, 0);
    portal_start();
    login();
    h_charger_start(&ch[3]);
    j = wait_updated(rpath, 4, 90000);
    cJSON_Delete(j);
    assert_true(h_charger_wait_status(&ch[3], "\"version\":\"9.3.0\"", 10000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upload),
        cmocka_unit_test(test_rollout),
        cmocka_unit_test(test_send_command),
        cmocka_unit_test(test_offline_and_restart),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
