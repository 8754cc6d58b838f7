# e2e.test_dhcpprobe (tests/e2e/test_dhcpprobe.c): lade-check's DHCP probe against the lab
# router's dnsmasq in the site-network lab (tests/lab; root needed). Eight scenarios in about
# 15 s; the lab is private to the process (namespaces lade<pid>...), so it may run alongside
# other tests.
set_tests_properties(e2e.test_dhcpprobe PROPERTIES TIMEOUT 120 LABELS e2e)
