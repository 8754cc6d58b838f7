/* Unit tests for the static resolver (src/port/linux/resolve.c): literals, hosts-file parsing
 * edges, file errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lade/resolve.h"

static const char *fmt(const struct lade_sockaddr *a)
{
    static char buf[LADE_SOCKADDR_STRLEN];
    assert_int_equal(lade_sockaddr_format(a, buf, sizeof buf), LADE_OK);
    return buf;
}

static void test_literals(void **state)
{
    (void)state;
    struct lade_sockaddr a;
    assert_int_equal(lade_sockaddr_parse("192.0.2.7", &a), LADE_OK);
    assert_int_equal(a.ss.ss_family, AF_INET);
    assert_int_equal(a.len, sizeof(struct sockaddr_in));
    assert_string_equal(fmt(&a), "192.0.2.7");
    lade_sockaddr_set_port(&a, 8883);
    assert_int_equal(lade_sockaddr_port(&a), 8883);
    assert_string_equal(fmt(&a), "192.0.2.7:8883");

    assert_int_equal(lade_sockaddr_parse("2001:db8::1", &a), LADE_OK);
    assert_int_equal(a.ss.ss_family, AF_INET6);
    assert_int_equal(a.len, sizeof(struct sockaddr_in6));
    lade_sockaddr_set_port(&a, 443);
    assert_string_equal(fmt(&a), "[2001:db8::1]:443");
    assert_int_equal(lade_sockaddr_parse("[::1]", &a), LADE_OK);
    assert_string_equal(fmt(&a), "::1");

    const char *bad[] = {"",     "1.2.3",         "1.2.3.4.5", "256.1.1.1", "01.2.3.4x", "::g",
                         "[::1", "hub.lade.test", " 1.2.3.4",  "[1.2.3.4]", "fe80::1%lo"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(lade_sockaddr_parse(bad[i], &a), LADE_ERR_INVAL);

    char small[8];
    assert_int_equal(lade_sockaddr_parse("192.0.2.77", &a), LADE_OK);
    assert_int_equal(lade_sockaddr_format(&a, small, sizeof small), LADE_ERR_NOSPACE);

    struct lade_sockaddr b;
    assert_int_equal(lade_sockaddr_parse("192.0.2.77", &b), LADE_OK);
    assert_true(lade_sockaddr_equal(&a, &b));
    lade_sockaddr_set_port(&b, 1);
    assert_false(lade_sockaddr_equal(&a, &b));
}

static void test_resolve_literal_needs_no_file(void **state)
{
    (void)state;
    struct lade_sockaddr out[4];
    size_t n = 99;
    assert_int_equal(lade_resolve_static("127.0.0.1", NULL, out, 4, &n), LADE_OK);
    assert_int_equal(n, 1);
    assert_string_equal(fmt(&out[0]), "127.0.0.1");
    assert_int_equal(lade_resolve_static("::1", "/nonexistent/hosts", out, 4, &n), LADE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(lade_resolve_static("hub.lade.test", NULL, out, 4, &n), LADE_ERR_RESOLVE);
    assert_int_equal(n, 0);
    assert_int_equal(lade_resolve_static("", NULL, out, 4, &n), LADE_ERR_INVAL);
    assert_int_equal(lade_resolve_static(NULL, NULL, out, 4, &n), LADE_ERR_INVAL);
    assert_int_equal(lade_resolve_static("a b", NULL, out, 4, &n), LADE_ERR_INVAL);
    assert_int_equal(lade_resolve_static("x", NULL, out, 0, &n), LADE_ERR_INVAL);
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(lade_resolve_static(longname, NULL, out, 4, &n), LADE_ERR_INVAL);
}

static const char HOSTS[] = "# test hosts file\n"
                            "127.0.0.1\tlocalhost\n"
                            "::1 localhost ip6-localhost   # v6 too\n"
                            "\n"
                            "   # indented comment\n"
                            "10.0.0.1 Hub.Lade.Test hub   mqtt.lade.test\n"
                            "10.0.0.2 other.lade.test\n"
                            "bogus-address hub.lade.test\n"
                            "10.0.0.3 hub.lade.test.\r\n"
                            "10.0.0.1 hub.lade.test\n" /* duplicate */
                            "2001:db8::5 hub.lade.test\n"
                            "10.0.0.9 #hub.lade.test (commented out)\n"
                            "10.0.0.4 fw.lade.test"; /* no final newline */

static void lookup(const char *name, lade_err want_err, size_t want_n, const char *const *want)
{
    struct lade_sockaddr out[8];
    size_t n = 99;
    assert_int_equal(lade_resolve_hosts_buf(HOSTS, strlen(HOSTS), name, out, 8, &n), want_err);
    assert_int_equal(n, want_n);
    for (size_t i = 0; i < want_n; i++)
        assert_string_equal(fmt(&out[i]), want[i]);
}

static void test_hosts_parsing(void **state)
{
    (void)state;
    const char *hub[] = {"10.0.0.1", "10.0.0.3", "2001:db8::5"};
    lookup("hub.lade.test", LADE_OK, 3, hub);
    lookup("HUB.lade.TEST", LADE_OK, 3, hub);
    lookup("hub.lade.test.", LADE_OK, 3, hub);
    const char *alias[] = {"10.0.0.1"};
    lookup("hub", LADE_OK, 1, alias);
    lookup("mqtt.lade.test", LADE_OK, 1, alias);
    const char *lh[] = {"127.0.0.1", "::1"};
    lookup("localhost", LADE_OK, 2, lh);
    const char *fw[] = {"10.0.0.4"};
    lookup("fw.lade.test", LADE_OK, 1, fw);
    lookup("lade.test", LADE_ERR_RESOLVE, 0, NULL);
    lookup("hub.lade", LADE_ERR_RESOLVE, 0, NULL);
    lookup("v6", LADE_ERR_RESOLVE, 0, NULL); /* "too" in the comment is not a name */
    lookup("too", LADE_ERR_RESOLVE, 0, NULL);
    lookup("bogus-address", LADE_ERR_RESOLVE, 0, NULL);

    /* More addresses than room: the first ones in file order, and NOSPACE says so. */
    struct lade_sockaddr out[2];
    size_t n = 0;
    assert_int_equal(lade_resolve_hosts_buf(HOSTS, strlen(HOSTS), "hub.lade.test", out, 2, &n),
                     LADE_ERR_NOSPACE);
    assert_int_equal(n, 2);
    assert_string_equal(fmt(&out[0]), "10.0.0.1");
    assert_string_equal(fmt(&out[1]), "10.0.0.3");

    /* Empty and odd buffers. */
    assert_int_equal(lade_resolve_hosts_buf("", 0, "x", out, 2, &n), LADE_ERR_RESOLVE);
    assert_int_equal(lade_resolve_hosts_buf(NULL, 0, "x", out, 2, &n), LADE_ERR_RESOLVE);
    const char nul[] = "10.0.0.1 a\0b\n10.0.0.2 c";
    assert_int_equal(lade_resolve_hosts_buf(nul, sizeof nul - 1, "c", out, 2, &n), LADE_OK);
    assert_string_equal(fmt(&out[0]), "10.0.0.2");
    const char longaddr[] = "1111:2222:3333:4444:5555:6666:7777:8888:9999 x\n";
    assert_int_equal(lade_resolve_hosts_buf(longaddr, strlen(longaddr), "x", out, 2, &n),
                     LADE_ERR_RESOLVE);
}

static char *write_tmp(const char *text, size_t len)
{
    char *path = strdup("/tmp/lade-test-hosts-XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        assert_true(w > 0);
        off += (size_t)w;
    }
    close(fd);
    return path;
}

static void test_hosts_file(void **state)
{
    (void)state;
    char *path = write_tmp(HOSTS, strlen(HOSTS));
    struct lade_sockaddr out[8];
    size_t n = 0;
    assert_int_equal(lade_resolve_static("Hub.Lade.Test", path, out, 8, &n), LADE_OK);
    assert_int_equal(n, 3);
    assert_string_equal(fmt(&out[0]), "10.0.0.1");
    assert_int_equal(lade_resolve_static("nope.lade.test", path, out, 8, &n), LADE_ERR_RESOLVE);
    unlink(path);
    free(path);

    /* Missing file: nothing to find. A directory: an I/O error. */
    assert_int_equal(lade_resolve_static("hub.lade.test", "/nonexistent/hosts", out, 8, &n),
                     LADE_ERR_RESOLVE);
    assert_int_equal(lade_resolve_static("hub.lade.test", "/tmp", out, 8, &n), LADE_ERR_IO);

    /* Too big: refused rather than read in part. */
    size_t big = LADE_RESOLVE_HOSTS_MAX + 1;
    char *blob = malloc(big);
    assert_non_null(blob);
    memset(blob, '#', big);
    path = write_tmp(blob, big);
    assert_int_equal(lade_resolve_static("hub.lade.test", path, out, 8, &n), LADE_ERR_TOO_BIG);
    unlink(path);
    free(path);
    /* Exactly at the limit is fine. */
    memcpy(blob, "10.0.0.1 hub.lade.test\n", 23);
    path = write_tmp(blob, big - 1);
    assert_int_equal(lade_resolve_static("hub.lade.test", path, out, 8, &n), LADE_OK);
    assert_int_equal(n, 1);
    unlink(path);
    free(path);
    free(blob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_resolve_literal_needs_no_file),
        cmocka_unit_test(test_hosts_parsing),
        cmocka_unit_test(test_hosts_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
