# tests/engine: CPU-side tests of the worker runtime (librmworker), and the
# rank launcher (a stand-in for `ringmaster run`) that tests/gpu uses too.
noinst_LTLIBRARIES += tests/engine/librmtest.la
tests_engine_librmtest_la_SOURCES = tests/engine/rank-launcher.c tests/engine/rank-launcher.h
tests_engine_librmtest_la_LIBADD = engine/librmworker.la shmring/libshmring.la

ENGINE_TESTS = \
	tests/engine/test-worker-env \
	tests/engine/test-run-spec \
	tests/engine/test-tensor-record \
	tests/engine/test-bootstrap \
	tests/engine/test-fdshare
check_PROGRAMS += $(ENGINE_TESTS)
TESTS += $(ENGINE_TESTS)

RMTEST_LIBS = tests/engine/librmtest.la engine/librmworker.la shmring/libshmring.la
# -no-install: real binaries, so a test can re-exec itself as a rank.
RMTEST_LINK_FLAGS = $(AM_LDFLAGS) -no-install

tests_engine_test_worker_env_SOURCES = tests/engine/test-worker-env.c
tests_engine_test_worker_env_LDADD = $(RMTEST_LIBS)
tests_engine_test_worker_env_LDFLAGS = $(RMTEST_LINK_FLAGS)
tests_engine_test_run_spec_SOURCES = tests/engine/test-run-spec.c
tests_engine_test_run_spec_LDADD = $(RMTEST_LIBS)
tests_engine_test_run_spec_LDFLAGS = $(RMTEST_LINK_FLAGS)
tests_engine_test_tensor_record_SOURCES = tests/engine/test-tensor-record.c
tests_engine_test_tensor_record_LDADD = $(RMTEST_LIBS)
tests_engine_test_tensor_record_LDFLAGS = $(RMTEST_LINK_FLAGS)
tests_engine_test_bootstrap_SOURCES = tests/engine/test-bootstrap.c
tests_engine_test_bootstrap_LDADD = $(RMTEST_LIBS)
tests_engine_test_bootstrap_LDFLAGS = $(RMTEST_LINK_FLAGS)
tests_engine_test_fdshare_SOURCES = tests/engine/test-fdshare.c
tests_engine_test_fdshare_LDADD = $(RMTEST_LIBS)
tests_engine_test_fdshare_LDFLAGS = $(RMTEST_LINK_FLAGS)
