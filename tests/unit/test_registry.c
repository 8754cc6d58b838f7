/* Unit tests for the device registry (SQLite file in a temporary directory). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "lade/registry.h"

struct fx {
    char dir[256];
    char path[300];
    struct lade_registry *reg;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/lade-registry-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/reg.db", f->dir);
    if (lade_registry_open(f->path, &f->reg) != LADE_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[400];
    lade_registry_close(f->reg);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static const uint8_t KEY[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

static void test_id_valid(void **state)
{
    (void)state;
    char id[LADE_REGISTRY_ID_MAX + 2];
    assert_true(lade_registry_id_valid("a"));
    assert_true(lade_registry_id_valid("Charger-0001-abc"));
    assert_false(lade_registry_id_valid(""));
    assert_false(lade_registry_id_valid(NULL));
    assert_false(lade_registry_id_valid("a/b"));
    assert_false(lade_registry_id_valid("a b"));
    assert_false(lade_registry_id_valid("a_b"));
    assert_false(lade_registry_id_valid("a.b"));
    assert_false(lade_registry_id_valid("svc:portal"));
    assert_false(lade_registry_id_valid("caf\xc3\xa9"));
    memset(id, 'x', LADE_REGISTRY_ID_MAX);
    id[LADE_REGISTRY_ID_MAX] = 0;
    assert_true(lade_registry_id_valid(id));
    id[LADE_REGISTRY_ID_MAX] = 'x';
    id[LADE_REGISTRY_ID_MAX + 1] = 0;
    assert_false(lade_registry_id_valid(id));
}

static void test_device_add_key(void **state)
{
    struct fx *f = *state;
    uint8_t key[64];
    size_t n = 0;
    bool en = false;
    assert_int_equal(lade_registry_device_add(f->reg, "dev-1", KEY, sizeof KEY, 1000), LADE_OK);
    assert_int_equal(lade_registry_device_key(f->reg, "dev-1", key, sizeof key, &n, &en), LADE_OK);
    assert_int_equal(n, 32);
    assert_memory_equal(key, KEY, 32);
    assert_true(en);

    assert_int_equal(lade_registry_device_add(f->reg, "dev-1", KEY, sizeof KEY, 1000),
                     LADE_ERR_EXISTS);
    assert_int_equal(lade_registry_device_add(f->reg, "bad id", KEY, sizeof KEY, 1000),
                     LADE_ERR_INVAL);
    assert_int_equal(lade_registry_device_add(f->reg, "dev-2", KEY, 0, 1000), LADE_ERR_INVAL);
    assert_int_equal(
        lade_registry_device_add(f->reg, "dev-2", KEY, LADE_REGISTRY_KEY_MAX + 1, 1000),
        LADE_ERR_INVAL);
    /* Ids are case-sensitive, as in Azure. */
    assert_int_equal(lade_registry_device_key(f->reg, "DEV-1", key, sizeof key, &n, &en),
                     LADE_ERR_NOT_FOUND);
    assert_false(en);
    assert_int_equal(lade_registry_device_key(f->reg, "dev-1", key, 31, &n, &en), LADE_ERR_NOSPACE);
    assert_int_equal(lade_registry_device_key(f->reg, "../x", key, sizeof key, &n, &en),
                     LADE_ERR_INVAL);

    /* Disable, enable, rotate, remove. */
    assert_int_equal(lade_registry_device_set_enabled(f->reg, "dev-1", false), LADE_OK);
    assert_int_equal(lade_registry_device_key(f->reg, "dev-1", key, sizeof key, &n, &en), LADE_OK);
    assert_false(en);
    assert_int_equal(lade_registry_device_set_enabled(f->reg, "nope", false), LADE_ERR_NOT_FOUND);
    uint8_t k2[16] = {0xff};
    assert_int_equal(lade_registry_device_set_key(f->reg, "dev-1", k2, sizeof k2), LADE_OK);
    assert_int_equal(lade_registry_device_key(f->reg, "dev-1", key, sizeof key, &n, &en), LADE_OK);
    assert_int_equal(n, 16);
    assert_memory_equal(key, k2, 16);
    assert_int_equal(lade_registry_device_remove(f->reg, "dev-1"), LADE_OK);
    assert_int_equal(lade_registry_device_remove(f->reg, "dev-1"), LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_registry_device_key(f->reg, "dev-1", key, sizeof key, &n, &en),
                     LADE_ERR_NOT_FOUND);
    char *json = NULL;
    assert_int_equal(lade_registry_twin_get(f->reg, "dev-1", &json, NULL), LADE_ERR_NOT_FOUND);
    /* Re-adding after removal starts a fresh twin. */
    assert_int_equal(lade_registry_device_add(f->reg, "dev-1", KEY, sizeof KEY, 1000), LADE_OK);
}

static void test_device_create(void **state)
{
    struct fx *f = *state;
    uint8_t k1[LADE_REGISTRY_KEY_LEN], k2[LADE_REGISTRY_KEY_LEN], got[64];
    size_t n;
    bool en;
    assert_int_equal(lade_registry_device_create(f->reg, "a", 1, k1), LADE_OK);
    assert_int_equal(lade_registry_device_create(f->reg, "b", 1, k2), LADE_OK);
    assert_memory_not_equal(k1, k2, sizeof k1);
    assert_int_equal(lade_registry_device_key(f->reg, "b", got, sizeof got, &n, &en), LADE_OK);
    assert_int_equal(n, LADE_REGISTRY_KEY_LEN);
    assert_memory_equal(got, k2, n);
    assert_int_equal(lade_registry_device_create(f->reg, "a", 1, k1), LADE_ERR_EXISTS);
}

struct list_ctx {
    int count;
    char ids[8][16];
    int stop_after;
};

static int list_cb(void *ud, const struct lade_registry_device *d)
{
    struct list_ctx *c = ud;
    snprintf(c->ids[c->count], sizeof c->ids[0], "%s", d->id);
    c->count++;
    return c->count == c->stop_after;
}

static void test_device_add_many(void **state)
{
    struct fx *f = *state;
    uint8_t key[LADE_REGISTRY_KEY_MAX];
    size_t n;
    bool en;
    struct lade_registry_new_device d[3] = {{"m1", KEY, 32}, {"m2", KEY, 16}, {"m3", KEY, 32}};
    size_t bad = 99;
    assert_int_equal(lade_registry_device_add_many(f->reg, d, 3, 100, &bad), LADE_OK);
    assert_int_equal(lade_registry_device_key(f->reg, "m2", key, sizeof key, &n, &en), LADE_OK);
    assert_int_equal(n, 16);
    assert_true(en);
    char *twin = NULL;
    size_t tl;
    assert_int_equal(lade_registry_twin_get(f->reg, "m3", &twin, &tl), LADE_OK);
    free(twin);
    /* all or none: a taken id in the middle adds nothing */
    struct lade_registry_new_device e[3] = {{"m4", KEY, 32}, {"m2", KEY, 32}, {"m5", KEY, 32}};
    assert_int_equal(lade_registry_device_add_many(f->reg, e, 3, 100, &bad), LADE_ERR_EXISTS);
    assert_int_equal(bad, 1);
    assert_int_equal(lade_registry_device_key(f->reg, "m4", key, sizeof key, &n, &en),
                     LADE_ERR_NOT_FOUND);
    struct lade_registry_new_device g[2] = {{"m6", KEY, 32}, {"bad id", KEY, 32}};
    assert_int_equal(lade_registry_device_add_many(f->reg, g, 2, 100, &bad), LADE_ERR_INVAL);
    assert_int_equal(bad, 1);
    assert_int_equal(lade_registry_device_key(f->reg, "m6", key, sizeof key, &n, &en),
                     LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_registry_device_add_many(f->reg, NULL, 0, 100, NULL), LADE_OK);
}

static void test_device_list(void **state)
{
    struct fx *f = *state;
    assert_int_equal(lade_registry_device_add(f->reg, "c", KEY, 32, 3), LADE_OK);
    assert_int_equal(lade_registry_device_add(f->reg, "a", KEY, 32, 1), LADE_OK);
    assert_int_equal(lade_registry_device_add(f->reg, "b", KEY, 32, 2), LADE_OK);
    struct list_ctx c = {0};
    assert_int_equal(lade_registry_device_list(f->reg, list_cb, &c), LADE_OK);
    assert_int_equal(c.count, 3);
    assert_string_equal(c.ids[0], "a");
    assert_string_equal(c.ids[2], "c");
    struct list_ctx c2 = {.stop_after = 2};
    assert_int_equal(lade_registry_device_list(f->reg, list_cb, &c2), LADE_OK);
    assert_int_equal(c2.count, 2);
}

static void test_service(void **state)
{
    struct fx *f = *state;
    uint8_t key[64];
    size_t n;
    assert_int_equal(lade_registry_service_add(f->reg, "portal", KEY, 32, 5), LADE_OK);
    assert_int_equal(lade_registry_service_add(f->reg, "portal", KEY, 32, 5), LADE_ERR_EXISTS);
    assert_int_equal(lade_registry_service_add(f->reg, "svc:portal", KEY, 32, 5), LADE_ERR_INVAL);
    assert_int_equal(lade_registry_service_key(f->reg, "portal", key, sizeof key, &n), LADE_OK);
    assert_int_equal(n, 32);
    assert_memory_equal(key, KEY, 32);
    /* Services and devices are separate namespaces. */
    bool en;
    assert_int_equal(lade_registry_device_key(f->reg, "portal", key, sizeof key, &n, &en),
                     LADE_ERR_NOT_FOUND);
    assert_int_equal(lade_registry_service_remove(f->reg, "portal"), LADE_OK);
    assert_int_equal(lade_registry_service_key(f->reg, "portal", key, sizeof key, &n),
                     LADE_ERR_NOT_FOUND);
}

static void expect_twin(struct lade_registry *reg, const char *id, const char *want)
{
    char *json = NULL;
    size_t n = 0;
    assert_int_equal(lade_registry_twin_get(reg, id, &json, &n), LADE_OK);
    assert_string_equal(json, want);
    assert_int_equal(n, strlen(want));
    free(json);
}

static lade_err patch_c(struct lade_registry *reg, const char *id, enum lade_twin_part part,
                        const char *patch, int64_t *ver, char **out)
{
    return lade_registry_twin_patch(reg, id, part, patch, strlen(patch), ver, out);
}

static void test_twin_merge(void **state)
{
    struct fx *f = *state;
    int64_t v = 0;
    char *echo = NULL;
    assert_int_equal(lade_registry_device_add(f->reg, "d", KEY, 32, 1), LADE_OK);
    expect_twin(f->reg, "d", "{\"desired\":{\"$version\":1},\"reported\":{\"$version\":1}}");

    assert_int_equal(patch_c(f->reg, "d", LADE_TWIN_REPORTED,
                             "{\"fw\":\"1.0\",\"meter\":{\"a\":1,\"b\":2},\"$version\":77}", &v,
                             NULL),
                     LADE_OK);
    assert_int_equal(v, 2);
    /* null deletes, objects merge, scalars replace, arrays replace whole. */
    assert_int_equal(patch_c(f->reg, "d", LADE_TWIN_REPORTED,
                             " {\"fw\":null,\"meter\":{\"a\":null,\"c\":[1,2]},\"x\":true}\n", &v,
                             NULL),
                     LADE_OK);
    assert_int_equal(v, 3);
    expect_twin(f->reg, "d",
                "{\"desired\":{\"$version\":1},\"reported\":{\"meter\":{\"b\":2,\"c\":[1,2]},"
                "\"x\":true,\"$version\":3}}");
    assert_int_equal(patch_c(f->reg, "d", LADE_TWIN_REPORTED, "{\"meter\":5}", &v, NULL), LADE_OK);
    assert_int_equal(
        patch_c(f->reg, "d", LADE_TWIN_REPORTED, "{\"meter\":{\"z\":null,\"y\":1}}", &v, NULL),
        LADE_OK);

    /* Desired with the echo the hub forwards to the device. */
    assert_int_equal(
        patch_c(f->reg, "d", LADE_TWIN_DESIRED, "{\"maxCurrent\":16,\"$version\":3}", &v, &echo),
        LADE_OK);
    assert_int_equal(v, 2);
    assert_string_equal(echo, "{\"maxCurrent\":16,\"$version\":2}");
    free(echo);
    expect_twin(f->reg, "d",
                "{\"desired\":{\"maxCurrent\":16,\"$version\":2},\"reported\":{\"meter\":{\"y\":1},"
                "\"x\":true,\"$version\":5}}");

    char *part = NULL;
    assert_int_equal(lade_registry_twin_part(f->reg, "d", LADE_TWIN_DESIRED, &part, &v), LADE_OK);
    assert_string_equal(part, "{\"maxCurrent\":16}");
    assert_int_equal(v, 2);
    free(part);
    assert_int_equal(lade_registry_twin_part(f->reg, "zz", LADE_TWIN_DESIRED, &part, &v),
                     LADE_ERR_NOT_FOUND);
}

static void test_twin_rejects(void **state)
{
    struct fx *f = *state;
    int64_t v = 0;
    char *echo = (char *)"sentinel";
    assert_int_equal(lade_registry_device_add(f->reg, "d", KEY, 32, 1), LADE_OK);
    static const char *const bad[] = {
        "",
        "[]",
        "1",
        "\"x\"",
        "null",
        "{",
        "{}x",
        "{} {}",
        "{\"a\":}",
        "{\"$meta\":1}",
        "{\"a\":{\"$b\":1}}",
        "{\"a\":[{\"$b\":1}]}",
        "{\"a\":\"\xff\"}",
        "{'a':1}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (patch_c(f->reg, "d", LADE_TWIN_REPORTED, bad[i], &v, &echo) != LADE_ERR_INVAL)
            fail_msg("accepted patch: %s", bad[i]);
        assert_null(echo);
    }
    /* Embedded NUL. */
    assert_int_equal(
        lade_registry_twin_patch(f->reg, "d", LADE_TWIN_REPORTED, "{}\0{}", 5, &v, NULL),
        LADE_ERR_INVAL);
    /* Nesting: 10 levels below the root are fine, 11 are not. */
    char deep[256] = "";
    for (int i = 0; i < 11; i++) /* the root and 10 levels below it */
        strcat(deep, "{\"a\":");
    strcat(deep, "1");
    for (int i = 0; i < 11; i++)
        strcat(deep, "}");
    assert_int_equal(patch_c(f->reg, "d", LADE_TWIN_REPORTED, deep, &v, NULL), LADE_OK);
    char deeper[256] = "{\"b\":";
    strcat(deeper, deep);
    strcat(deeper, "}");
    assert_int_equal(patch_c(f->reg, "d", LADE_TWIN_REPORTED, deeper, &v, NULL), LADE_ERR_INVAL);

    /* Size: a patch over the limit, and a document that grows over it. */
    size_t big_n = LADE_REGISTRY_TWIN_MAX + 1;
    char *big = malloc(big_n + 1);
    memset(big, ' ', big_n);
    memcpy(big, "{}", 2);
    big[big_n] = 0;
    assert_int_equal(
        lade_registry_twin_patch(f->reg, "d", LADE_TWIN_REPORTED, big, big_n, &v, NULL),
        LADE_ERR_TOO_BIG);
    size_t half = LADE_REGISTRY_TWIN_MAX / 2;
    snprintf(big, big_n, "{\"p1\":\"");
    size_t off = strlen(big);
    memset(big + off, 'x', half - 20);
    strcpy(big + off + half - 20, "\"}");
    int64_t before = 0;
    char *cur = NULL;
    assert_int_equal(patch_c(f->reg, "d", LADE_TWIN_REPORTED, big, &v, NULL), LADE_OK);
    assert_int_equal(lade_registry_twin_part(f->reg, "d", LADE_TWIN_REPORTED, &cur, &before),
                     LADE_OK);
    free(cur);
    big[3] = '2'; /* "p2": the same size again → over 32 KB in total */
    assert_int_equal(patch_c(f->reg, "d", LADE_TWIN_REPORTED, big, &v, NULL), LADE_ERR_TOO_BIG);
    assert_int_equal(lade_registry_twin_part(f->reg, "d", LADE_TWIN_REPORTED, &cur, &v), LADE_OK);
    assert_int_equal(v, before); /* unchanged */
    free(cur);
    free(big);

    assert_int_equal(patch_c(f->reg, "nope", LADE_TWIN_REPORTED, "{}", &v, NULL),
                     LADE_ERR_NOT_FOUND);
    assert_int_equal(patch_c(f->reg, "d", (enum lade_twin_part)7, "{}", &v, NULL), LADE_ERR_INVAL);
}

/* Two handles on one file (plugin and portal), reopen keeps data, a newer schema is refused. */
static void test_shared_and_schema(void **state)
{
    struct fx *f = *state;
    struct lade_registry *r2 = NULL;
    uint8_t key[64];
    size_t n;
    bool en;
    int64_t v;
    assert_int_equal(lade_registry_open(f->path, &r2), LADE_OK);
    assert_int_equal(lade_registry_device_add(r2, "x", KEY, 32, 1), LADE_OK);
    assert_int_equal(lade_registry_device_key(f->reg, "x", key, sizeof key, &n, &en), LADE_OK);
    assert_int_equal(patch_c(f->reg, "x", LADE_TWIN_DESIRED, "{\"a\":1}", &v, NULL), LADE_OK);
    assert_int_equal(patch_c(r2, "x", LADE_TWIN_DESIRED, "{\"b\":1}", &v, NULL), LADE_OK);
    assert_int_equal(v, 3);
    lade_registry_close(r2);

    lade_registry_close(f->reg);
    f->reg = NULL;
    assert_int_equal(lade_registry_open(f->path, &f->reg), LADE_OK);
    assert_int_equal(lade_registry_device_key(f->reg, "x", key, sizeof key, &n, &en), LADE_OK);

    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE schema_version SET version = 99", 0, 0, 0),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(lade_registry_open(f->path, &r2), LADE_ERR_CONFIG);
    assert_null(r2);

    char bogus[320];
    snprintf(bogus, sizeof bogus, "%s/not-a-db", f->dir);
    FILE *fp = fopen(bogus, "w");
    fputs("this is not an SQLite database, it is long enough to have a header..........", fp);
    fclose(fp);
    assert_int_equal(lade_registry_open(bogus, &r2), LADE_ERR_DB);
    snprintf(bogus, sizeof bogus, "%s/missing-dir/x.db", f->dir);
    assert_int_equal(lade_registry_open(bogus, &r2), LADE_ERR_DB);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_valid),
        cmocka_unit_test_setup_teardown(test_device_add_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_add_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_device_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twin_merge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twin_rejects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_and_schema, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
