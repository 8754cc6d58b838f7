# e2e.test_portal_fleet (tests/e2e/test_portal_fleet.c): the portal pushing the stored settings
# to 40 lade-sim chargers that come online together, at most one push in flight; ~20 s.
add_dependencies(e2e_test_portal_fleet lade-sim lade-cloud lade-factory lade_hub)
set_tests_properties(e2e.test_portal_fleet PROPERTIES TIMEOUT 180 LABELS e2e)
