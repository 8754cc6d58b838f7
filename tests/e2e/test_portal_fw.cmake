# e2e.test_portal_fw (tests/e2e/test_portal_fw.c): the portal's firmware repository and staged
# rollouts with a real hub, nginx serving the firmware directory and four real chargers.
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
target_link_libraries(e2e_test_portal_fw PRIVATE PkgConfig::CURL)
set_tests_properties(e2e.test_portal_fw PROPERTIES TIMEOUT 420 LABELS e2e)
