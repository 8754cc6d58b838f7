# e2e.test_lade_sim (tests/e2e/test_lade_sim.c): lade-sim provision + run (50 chargers) against a
# real hub — storm (hub restart), partition (nftables in the test's own network namespace), peak;
# about 35 s under ASan.
add_dependencies(e2e_test_lade_sim lade-sim lade_hub)
set_tests_properties(e2e.test_lade_sim PROPERTIES TIMEOUT 180 LABELS e2e)
