# e2e.test_api (tests/e2e/test_api.c): the portal's REST API over real HTTP (libcurl) against an
# in-process portal without a hub; a few seconds under ASan.
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
target_link_libraries(e2e_test_api PRIVATE PkgConfig::CURL)
set_tests_properties(e2e.test_api PROPERTIES TIMEOUT 120 LABELS e2e)
