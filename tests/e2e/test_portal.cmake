# e2e.test_portal (tests/e2e/test_portal.c): a real hub, four real chargers and lade-cloud
# balancing them, with a safety monitor all through, a portal kill -9 and the browser test of
# the web page (tests/web/run.sh: Debian's chromium driven by playwright-core).
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
target_link_libraries(e2e_test_portal PRIVATE PkgConfig::CURL)
set_tests_properties(e2e.test_portal PROPERTIES TIMEOUT 420 LABELS e2e)
