# tests/spawned: workers an engine spawns itself (docs/spawned-workers.md).
# The native worker uses rm_announce.h; it is a fixture (no sanitizers), as
# tests/supervisor/fake-worker.
check_PROGRAMS += tests/spawned/announce-worker
tests_spawned_announce_worker_SOURCES = tests/spawned/announce-worker.c engine/announce.c engine/notify.c \
	engine/rm_announce.h engine/rm_notify.h
tests_spawned_announce_worker_CFLAGS = -std=gnu11 $(WARN_CFLAGS)
tests_spawned_announce_worker_LDFLAGS =
