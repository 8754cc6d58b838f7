# e2e.test_dhcp (tests/e2e/test_dhcp.c): the DHCP client, ARP probing and link-local on Linux
# against a real dnsmasq, in network namespaces the test creates (root needed; it fails, never
# skips, when it cannot create them). The Linux shell uses libmnl for rtnetlink; this links it
# here until the lade library itself links it.
if(NOT TARGET PkgConfig::MNL)
  pkg_check_modules(MNL REQUIRED IMPORTED_TARGET libmnl)
endif()
target_link_libraries(e2e_test_dhcp PRIVATE PkgConfig::MNL)
set_tests_properties(e2e.test_dhcp PROPERTIES TIMEOUT 300 LABELS e2e RUN_SERIAL TRUE)
