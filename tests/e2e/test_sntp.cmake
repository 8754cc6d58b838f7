# e2e.test_sntp (tests/e2e/test_sntp.c): the timesync shell against real chronyd instances and
# hand-written UDP peers on 127.0.0.0/8; about 45 s (bursts and retries run in real time).
set_tests_properties(e2e.test_sntp PROPERTIES TIMEOUT 180 LABELS e2e)
