# tests/supervisor: ringmaster run, end to end with fake workers (Python
# drivers), plus unit tests of the lifecycle tables and the JSON code.

# The fake worker is a fixture, not code under test: built without the
# sanitizers, so that its SIGSEGV is the kernel's and its floods are fast.
check_PROGRAMS += tests/supervisor/fake-worker
tests_supervisor_fake_worker_SOURCES = tests/supervisor/fake-worker.c
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

SUPERVISOR_TESTS = \
	tests/supervisor/test-lifecycle \
	tests/supervisor/test-json \
	tests/supervisor/test-usage.py \
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
	tests/supervisor/test-check.py \
	tests/supervisor/test-check-gpus.py \
	tests/supervisor/test-check-shm.py \
	tests/supervisor/test-diagnose-units \
	tests/supervisor/test-diagnose-native.py \
	tests/supervisor/test-diagnose-python.py \
	tests/supervisor/test-diagnose-stack-tool.py \
	tests/supervisor/test-diagnose-nccl.py
TESTS += $(SUPERVISOR_TESTS)

EXTRA_DIST += \
	tests/supervisor/rmtest.py \
	tests/supervisor/checktest.py \
	tests/supervisor/test-usage.py \
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
	tests/supervisor/test-check.py \
	tests/supervisor/test-check-gpus.py \
	tests/supervisor/test-check-shm.py \
	tests/supervisor/diagtest.py \
	tests/supervisor/test-diagnose-native.py \
	tests/supervisor/test-diagnose-python.py \
	tests/supervisor/test-diagnose-stack-tool.py \
	tests/supervisor/test-diagnose-nccl.py

# The launch and teardown benchmark: a program, not a test (docs/bench-supervisor.md).
EXTRA_DIST += tests/supervisor/bench-launch
