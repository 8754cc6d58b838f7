# e2e.test_sessions (tests/e2e/test_sessions.c): >= 100 kill -9 rounds of a real charger plus a
# hub outage of an hour of simulated time; about 2.5 minutes under ASan on 2 cores.
set_tests_properties(e2e.test_sessions PROPERTIES TIMEOUT 240 LABELS e2e)
