# e2e.test_fwfetch (tests/e2e/test_fwfetch.c): the firmware download (lade_fwfetch) against a real
# nginx with TLS on 127.0.0.1 (tests/e2e/harness_nginx.c): failover, resume after a server crash
# and after kill -9, changed ETag, endless data, HTML page, 404/503 budgets, redirects, wrong
# certificates, plain HTTP. About 6 s under ASan (the slow cases are rate-limited by nginx).
set_tests_properties(e2e.test_fwfetch PROPERTIES TIMEOUT 120 LABELS e2e)
