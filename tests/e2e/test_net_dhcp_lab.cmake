# e2e.test_net_dhcp_lab (tests/e2e/test_net_dhcp_lab.c): a lade-charger running its own DHCP
# client in the site-network lab (tests/lab; root needed). Nine scenarios; the DHCP back-off
# (DISCOVERs up to 64 s apart) and a lease expiry (dnsmasq's minimum lease is 120 s) run in real
# time: about 6 minutes under ASan. The lab is private to the process (namespaces lade<pid>...),
# so it may run alongside other tests.
set_tests_properties(e2e.test_net_dhcp_lab PROPERTIES TIMEOUT 600 LABELS e2e)
