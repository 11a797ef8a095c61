# tests/supervisor: ringmaster run, end to end with fake workers (Python
# drivers), plus unit tests of the lifecycle tables and the JSON code.

# The fake worker is a fixture, not code under test: built without the
# sanitizers, so that its SIGSEGV is the kernel's and its floods are fast.
check_PROGRAMS += tests/supervisor/fake-worker
# It speaks the notify protocol through the C API (engine/notify.c), compiled in.
tests_supervisor_fake_worker_SOURCES = tests/supervisor/fake-worker.c engine/notify.c engine/rm_notify.h
tests_supervisor_fake_worker_CFLAGS = -std=gnu11 $(WARN_CFLAGS)
tests_supervisor_fake_worker_LDFLAGS =

# The hang diagnosis tests' worker: hangs in read, nanosleep or futex, in
# functions a stack tool must name, so built with symbols and no inlining
# (and no sanitizers, as the fake worker).
check_PROGRAMS += tests/supervisor/hang-worker
tests_supervisor_hang_worker_SOURCES = tests/supervisor/hang-worker.c
tests_supervisor_hang_worker_CFLAGS = -std=gnu11 -g -O0 -fno-inline -pthread $(WARN_CFLAGS)
tests_supervisor_hang_worker_LDFLAGS = -pthread

check_PROGRAMS += tests/supervisor/test-lifecycle
tests_supervisor_test_lifecycle_SOURCES = tests/supervisor/test-lifecycle.c
tests_supervisor_test_lifecycle_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/supervisor
tests_supervisor_test_lifecycle_CFLAGS = $(AM_CFLAGS) $(LIBSYSTEMD_CFLAGS)
tests_supervisor_test_lifecycle_LDADD = supervisor/libsupervisor.la

check_PROGRAMS += tests/supervisor/test-json
tests_supervisor_test_json_SOURCES = tests/supervisor/test-json.c
tests_supervisor_test_json_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/supervisor
tests_supervisor_test_json_CFLAGS = $(AM_CFLAGS) $(LIBSYSTEMD_CFLAGS)
tests_supervisor_test_json_LDADD = supervisor/libsupervisor.la

# The notify protocol: the parser (unit test and fuzz corpus), the worker-side C API.
check_PROGRAMS += tests/supervisor/test-notify-parse
tests_supervisor_test_notify_parse_SOURCES = tests/supervisor/test-notify-parse.c
tests_supervisor_test_notify_parse_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/supervisor
tests_supervisor_test_notify_parse_CFLAGS = $(AM_CFLAGS) $(LIBSYSTEMD_CFLAGS)
tests_supervisor_test_notify_parse_LDADD = supervisor/libsupervisor.la

check_PROGRAMS += tests/supervisor/test-deadline
tests_supervisor_test_deadline_SOURCES = tests/supervisor/test-deadline.c
tests_supervisor_test_deadline_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/supervisor
tests_supervisor_test_deadline_CFLAGS = $(AM_CFLAGS) $(LIBSYSTEMD_CFLAGS)
tests_supervisor_test_deadline_LDADD = supervisor/libsupervisor.la

# init_reap_unclaimed(): a container's init reaps what nobody claims, never a rank's zombie.
check_PROGRAMS += tests/supervisor/test-init-reap
tests_supervisor_test_init_reap_SOURCES = tests/supervisor/test-init-reap.c
tests_supervisor_test_init_reap_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/supervisor
tests_supervisor_test_init_reap_CFLAGS = $(AM_CFLAGS) $(LIBSYSTEMD_CFLAGS)
tests_supervisor_test_init_reap_LDADD = supervisor/libsupervisor.la

# spawn_process() with stdio fds below 3 (rotated, and in place).
check_PROGRAMS += tests/supervisor/test-spawn-stdio
tests_supervisor_test_spawn_stdio_SOURCES = tests/supervisor/test-spawn-stdio.c
tests_supervisor_test_spawn_stdio_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/supervisor
tests_supervisor_test_spawn_stdio_CFLAGS = $(AM_CFLAGS) $(LIBSYSTEMD_CFLAGS)
tests_supervisor_test_spawn_stdio_LDADD = supervisor/libsupervisor.la

check_PROGRAMS += tests/supervisor/test-notify-api
tests_supervisor_test_notify_api_SOURCES = tests/supervisor/test-notify-api.c
tests_supervisor_test_notify_api_CFLAGS = $(AM_CFLAGS) -pthread
tests_supervisor_test_notify_api_LDADD = engine/librmworker.la -lpthread

# fuzz-notify.c is a libFuzzer target for notify_parse(); fuzz-notify-replay
# (tests/fuzz-replay.c) runs its seed corpus (tests/supervisor/notify-corpus/) in make check.  With
# libFuzzer, `make fuzz` also fuzzes it for FUZZ_SECONDS (crashes land in
# tests/supervisor/fuzz-notify-crash-*; replay one with
# tests/supervisor/fuzz-notify-replay FILE).
check_PROGRAMS += tests/supervisor/fuzz-notify-replay
tests_supervisor_fuzz_notify_replay_SOURCES = \
	tests/fuzz-replay.c \
	tests/supervisor/fuzz-notify.c \
	supervisor/notify-parse.c \
	supervisor/notify.h \
	supervisor/worker-message.c \
	supervisor/worker-message.h \
	supervisor/util.c \
	supervisor/util.h
tests_supervisor_fuzz_notify_replay_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/supervisor \
	-DFUZZ_CORPUS='"tests/supervisor/notify-corpus"'
tests_supervisor_fuzz_notify_replay_CFLAGS = $(AM_CFLAGS) $(LIBSYSTEMD_CFLAGS)
EXTRA_DIST += tests/supervisor/notify-corpus

if HAVE_LIBFUZZER
tests/supervisor/fuzz-notify: $(srcdir)/tests/supervisor/fuzz-notify.c $(srcdir)/supervisor/notify-parse.c \
		$(srcdir)/supervisor/notify.h $(srcdir)/supervisor/worker-message.c $(srcdir)/supervisor/worker-message.h \
		$(srcdir)/supervisor/util.c $(srcdir)/supervisor/util.h
	@$(MKDIR_P) tests/supervisor
	$(AM_V_CCLD)$(FUZZ_CC) $(FUZZ_CFLAGS) $(DEFS) $(AM_CPPFLAGS) $(CPPFLAGS) -I$(top_srcdir)/supervisor \
		$(LIBSYSTEMD_CFLAGS) -o $@ $(srcdir)/tests/supervisor/fuzz-notify.c $(srcdir)/supervisor/notify-parse.c \
		$(srcdir)/supervisor/worker-message.c $(srcdir)/supervisor/util.c

fuzz-notify: tests/supervisor/fuzz-notify
	rm -rf tests/supervisor/fuzz-notify-corpus
	$(MKDIR_P) tests/supervisor/fuzz-notify-corpus
	cp $(srcdir)/tests/supervisor/notify-corpus/* tests/supervisor/fuzz-notify-corpus/
	tests/supervisor/fuzz-notify $(FUZZ_RUN_FLAGS) -max_len=4200 -max_total_time=$(FUZZ_SECONDS) \
		-artifact_prefix=tests/supervisor/fuzz-notify-crash- tests/supervisor/fuzz-notify-corpus
fuzz: fuzz-notify
endif
.PHONY: fuzz-notify clean-notify-fuzz
clean-local: clean-notify-fuzz
clean-notify-fuzz:
	rm -rf tests/supervisor/fuzz-notify tests/supervisor/fuzz-notify-corpus tests/supervisor/fuzz-notify-crash-*

# The preflight's fake GPU stack: one shared object that a test links as
# libcuda.so.1, libnvidia-ml.so.1 and libnccl.so.2 (tests/supervisor/fake-gpu.c).
# A fixture like fake-worker: no sanitizers.  -rpath makes libtool build it shared.
check_LTLIBRARIES = tests/supervisor/libfakegpu.la
tests_supervisor_libfakegpu_la_SOURCES = tests/supervisor/fake-gpu.c
tests_supervisor_libfakegpu_la_CFLAGS = -std=gnu11 $(WARN_CFLAGS)
tests_supervisor_libfakegpu_la_LDFLAGS = -module -avoid-version -shared -rpath /nowhere

check_PROGRAMS += tests/supervisor/test-diagnose-units
tests_supervisor_test_diagnose_units_SOURCES = tests/supervisor/test-diagnose-units.c
tests_supervisor_test_diagnose_units_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/supervisor
tests_supervisor_test_diagnose_units_CFLAGS = $(AM_CFLAGS) $(LIBSYSTEMD_CFLAGS)
tests_supervisor_test_diagnose_units_LDADD = supervisor/libsupervisor.la

SUPERVISOR_C_TESTS = \
	tests/supervisor/test-lifecycle \
	tests/supervisor/test-notify-parse \
	tests/supervisor/test-deadline \
	tests/supervisor/test-spawn-stdio \
	tests/supervisor/test-notify-api \
	tests/supervisor/fuzz-notify-replay \
	tests/supervisor/test-json \
	tests/supervisor/test-diagnose-units

SUPERVISOR_PY_TESTS = \
	tests/supervisor/test-usage.py \
	tests/supervisor/test-options-man.py \
	tests/supervisor/test-exit-zero.py \
	tests/supervisor/test-exit-code.py \
	tests/supervisor/test-crash-signals.py \
	tests/supervisor/test-exec-failure.py \
	tests/supervisor/test-flood.py \
	tests/supervisor/test-binary.py \
	tests/supervisor/test-orphan.py \
	tests/supervisor/test-grace.py \
	tests/supervisor/test-unreapable.py \
	tests/supervisor/test-stop-signal.py \
	tests/supervisor/test-supervisor-killed.py \
	tests/supervisor/test-environ.py \
	tests/supervisor/test-log-dir.py \
	tests/supervisor/test-journal.py \
	tests/supervisor/test-restarts.py \
	tests/supervisor/test-capture.py \
	tests/supervisor/test-shm-too-small.py \
	tests/supervisor/test-notify.py \
	tests/supervisor/test-notify-drops.py \
	tests/supervisor/test-notify-python.py \
	tests/supervisor/test-deadline-ready.py \
	tests/supervisor/test-deadline-phase.py \
	tests/supervisor/test-deadline-straggler.py \
	tests/supervisor/test-deadline-watchdog.py \
	tests/supervisor/test-deadline-extend.py \
	tests/supervisor/test-deadline-options.py \
	tests/supervisor/test-seed.py \
	tests/supervisor/test-check.py \
	tests/supervisor/test-check-gpus.py \
	tests/supervisor/test-check-shm.py \
	tests/supervisor/test-check-cache.py \
	tests/supervisor/test-diagnose-native.py \
	tests/supervisor/test-diagnose-python.py \
	tests/supervisor/test-diagnose-stack-tool.py \
	tests/supervisor/test-diagnose-nccl.py \
	tests/supervisor/test-diagnose-deadline.py

SUPERVISOR_TESTS = $(SUPERVISOR_C_TESTS) $(SUPERVISOR_PY_TESTS)
TESTS += $(SUPERVISOR_TESTS)

EXTRA_DIST += \
	tests/supervisor/rmtest.py \
	tests/supervisor/unit.h \
	tests/supervisor/checktest.py \
	tests/supervisor/diagtest.py \
	$(SUPERVISOR_PY_TESTS)

# ringmaster as a systemd service and as a container's init (sdnotify.c, init.c), the live status (status.c).
SUPERVISOR_SYSTEMD_TESTS = \
	tests/supervisor/test-init.py \
	tests/supervisor/test-init-stop.py \
	tests/supervisor/test-init-stdin.py \
	tests/supervisor/test-init-signals.py \
	tests/supervisor/test-init-tty.py \
	tests/supervisor/test-systemd-notify.py \
	tests/supervisor/test-systemd-watchdog.py \
	tests/supervisor/test-systemd-unit.sh \
	tests/supervisor/test-status.py
TESTS += tests/supervisor/test-init-reap $(SUPERVISOR_SYSTEMD_TESTS)
EXTRA_DIST += tests/supervisor/systemdtest.py tests/supervisor/inittest.py $(SUPERVISOR_SYSTEMD_TESTS)

# The launch and teardown benchmark, and the deadline one: programs, not tests (docs/bench-supervisor.md).
EXTRA_DIST += tests/supervisor/bench-launch tests/supervisor/bench-deadline

