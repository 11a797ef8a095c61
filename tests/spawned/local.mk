# tests/spawned: workers an engine spawns itself (docs/spawned-workers.md).
# The native worker uses rm_announce.h; it is a fixture (no sanitizers), as
# tests/supervisor/fake-worker.
check_PROGRAMS += tests/spawned/announce-worker
tests_spawned_announce_worker_SOURCES = tests/spawned/announce-worker.c engine/announce.c engine/notify.c engine/notify-internal.h \
	engine/rm_announce.h engine/rm_notify.h
tests_spawned_announce_worker_CFLAGS = -std=gnu11 $(WARN_CFLAGS)
tests_spawned_announce_worker_LDFLAGS =

# The workers' model and keys (supervisor/workers.c, supervisor/worker-message.c).
check_PROGRAMS += tests/spawned/test-workers-model
tests_spawned_test_workers_model_SOURCES = tests/spawned/test-workers-model.c
tests_spawned_test_workers_model_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/supervisor -I$(top_srcdir)/tests/supervisor
tests_spawned_test_workers_model_CFLAGS = $(AM_CFLAGS) $(LIBSYSTEMD_CFLAGS)
tests_spawned_test_workers_model_LDADD = supervisor/libsupervisor.la
TESTS += tests/spawned/test-workers-model

# End to end: tests/spawned/engine.py under ringmaster run -n 1 (torch: skip 77 without it).
SPAWNED_PY_TESTS = \
	tests/spawned/test-spawned-straggler.py \
	tests/spawned/test-spawned-phase-timeout.py \
	tests/spawned/test-spawned-crash.py \
	tests/spawned/test-spawned-raise.py \
	tests/spawned/test-spawned-methods.py \
	tests/spawned/test-spawned-native.py \
	tests/spawned/test-spawned-options.py \
	tests/spawned/test-spawned-ready-timeout.py \
	tests/spawned/test-spawned-ready-group.py \
	tests/spawned/test-spawned-ready-ok.py \
	tests/spawned/test-spawned-extend.py \
	tests/spawned/test-spawned-fork.py
TESTS += $(SPAWNED_PY_TESTS)
EXTRA_DIST += $(SPAWNED_PY_TESTS) tests/spawned/spawntest.py tests/spawned/engine.py tests/spawned/forker.py
EXTRA_DIST += tests/spawned/bench-fork-capture
