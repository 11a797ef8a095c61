# tests/shmring: libshmring's tests, one small program per area, and its
# fuzz harness.  tap.h holds the checks they share, payload.h the
# self-checking messages.

shmring_tests = \
	tests/shmring/test-segment \
	tests/shmring/test-ports \
	tests/shmring/test-messages \
	tests/shmring/test-liveness \
	tests/shmring/test-kill \
	tests/shmring/test-stress-broadcast \
	tests/shmring/test-stress-queue \
	tests/shmring/test-corrupt
check_PROGRAMS += $(shmring_tests)
TESTS += $(shmring_tests)

shmring_test_common = tests/shmring/tap.h tests/shmring/payload.h

tests_shmring_test_segment_SOURCES = tests/shmring/test-segment.c $(shmring_test_common)
tests_shmring_test_segment_LDADD = shmring/libshmring.la
tests_shmring_test_ports_SOURCES = tests/shmring/test-ports.c $(shmring_test_common)
tests_shmring_test_ports_LDADD = shmring/libshmring.la
tests_shmring_test_messages_SOURCES = tests/shmring/test-messages.c $(shmring_test_common)
tests_shmring_test_messages_LDADD = shmring/libshmring.la
tests_shmring_test_liveness_SOURCES = tests/shmring/test-liveness.c $(shmring_test_common)
tests_shmring_test_liveness_LDADD = shmring/libshmring.la
tests_shmring_test_kill_SOURCES = tests/shmring/test-kill.c $(shmring_test_common)
tests_shmring_test_kill_CFLAGS = $(AM_CFLAGS) -pthread
tests_shmring_test_kill_LDADD = shmring/libshmring.la -lpthread
tests_shmring_test_stress_broadcast_SOURCES = tests/shmring/test-stress.c $(shmring_test_common)
tests_shmring_test_stress_broadcast_LDADD = shmring/libshmring.la
tests_shmring_test_stress_queue_SOURCES = tests/shmring/test-stress.c $(shmring_test_common)
tests_shmring_test_stress_queue_CPPFLAGS = $(AM_CPPFLAGS) -DSTRESS_QUEUE
tests_shmring_test_stress_queue_LDADD = shmring/libshmring.la
tests_shmring_test_corrupt_SOURCES = tests/shmring/test-corrupt.c $(shmring_test_common)
tests_shmring_test_corrupt_LDADD = shmring/libshmring.la
