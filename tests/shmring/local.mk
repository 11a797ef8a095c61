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
	tests/shmring/test-corrupt \
	tests/shmring/test-foreign-uid \
	tests/shmring/test-small-shm \
	tests/shmring/test-kv \
	tests/shmring/test-wait \
	tests/shmring/test-wait-policy
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
tests_shmring_test_foreign_uid_SOURCES = tests/shmring/test-foreign-uid.c $(shmring_test_common)
tests_shmring_test_foreign_uid_LDADD = shmring/libshmring.la
tests_shmring_test_small_shm_SOURCES = tests/shmring/test-small-shm.c $(shmring_test_common)
tests_shmring_test_small_shm_LDADD = shmring/libshmring.la
tests_shmring_test_kv_SOURCES = tests/shmring/test-kv.c $(shmring_test_common)
tests_shmring_test_kv_LDADD = shmring/libshmring.la
tests_shmring_test_wait_SOURCES = tests/shmring/test-wait.c $(shmring_test_common)
tests_shmring_test_wait_CFLAGS = $(AM_CFLAGS) -pthread
tests_shmring_test_wait_LDADD = shmring/libshmring.la -lpthread
tests_shmring_test_wait_policy_SOURCES = tests/shmring/test-wait-policy.c $(shmring_test_common)
tests_shmring_test_wait_policy_LDADD = shmring/libshmring.la

# ------------------------------------------------------------ fuzzing
# fuzz-segment.c is a libFuzzer target.  fuzz-replay links it with the
# replay main every fuzz target shares (tests/fuzz-replay.c), which runs the
# seed corpus (tests/shmring/corpus/) in make check, and with
# fuzz-replay-check.c (no shm object may be left behind).  With
# libFuzzer (configure's HAVE_LIBFUZZER), `make fuzz` builds the target with
# the library's sources compiled in and fuzzes a copy of the corpus for
# FUZZ_SECONDS; crashes land in tests/shmring/fuzz-crash-*.  Replay one with
# tests/shmring/fuzz-replay FILE.
check_PROGRAMS += tests/shmring/fuzz-replay
TESTS += tests/shmring/fuzz-replay
tests_shmring_fuzz_replay_SOURCES = tests/fuzz-replay.c tests/shmring/fuzz-replay-check.c tests/shmring/fuzz-segment.c
tests_shmring_fuzz_replay_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_CORPUS='"tests/shmring/corpus"'
tests_shmring_fuzz_replay_LDADD = shmring/libshmring.la
EXTRA_DIST += tests/shmring/corpus

FUZZ_SECONDS = 60
FUZZ_CFLAGS = -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_RUN_FLAGS = -timeout=10 -rss_limit_mb=2048 -print_final_stats=1

if HAVE_LIBFUZZER
tests/shmring/fuzz-segment: $(srcdir)/tests/shmring/fuzz-segment.c $(shmring_libshmring_la_SOURCES)
	@$(MKDIR_P) tests/shmring
	$(AM_V_CCLD)$(FUZZ_CC) $(FUZZ_CFLAGS) $(DEFS) $(AM_CPPFLAGS) $(CPPFLAGS) -o $@ \
		$(srcdir)/tests/shmring/fuzz-segment.c $(top_srcdir)/shmring/*.c $(LIBS)

fuzz: tests/shmring/fuzz-segment
	rm -rf tests/shmring/fuzz-corpus
	$(MKDIR_P) tests/shmring/fuzz-corpus
	cp $(srcdir)/tests/shmring/corpus/* tests/shmring/fuzz-corpus/
	tests/shmring/fuzz-segment $(FUZZ_RUN_FLAGS) -max_total_time=$(FUZZ_SECONDS) \
		-artifact_prefix=tests/shmring/fuzz-crash- tests/shmring/fuzz-corpus
else
fuzz:
	@echo "make fuzz: configure found no libFuzzer (clang with -fsanitize=fuzzer); nothing to fuzz"
endif
.PHONY: fuzz clean-shmring-fuzz
clean-local: clean-shmring-fuzz
clean-shmring-fuzz:
	rm -rf tests/shmring/fuzz-segment tests/shmring/fuzz-corpus tests/shmring/fuzz-crash-*
