# tests/bench: shmring-bench, the transport benchmark (a program, not a timed
# test), and a smoke test that runs it briefly.
noinst_PROGRAMS += tests/bench/shmring-bench
tests_bench_shmring_bench_SOURCES = \
	tests/bench/bench.h \
	tests/bench/bench-util.c \
	tests/bench/bench-baselines.c \
	tests/bench/bench-shmring.c \
	tests/bench/shmring-bench.c
tests_bench_shmring_bench_LDADD = shmring/libshmring.la
# A real binary, not a libtool wrapper script: perf and valgrind run it as is.
tests_bench_shmring_bench_LDFLAGS = $(AM_LDFLAGS) -no-install

TESTS += tests/bench/test-bench-smoke.sh
# The Python broadcast against a MessageQueue-like baseline (run briefly by
# tests/python/test_shmring.py).
EXTRA_DIST += tests/bench/broadcast-pybench.py
EXTRA_DIST += tests/bench/test-bench-smoke.sh
# What the benchmark's rows mean, and its figures on the machines it ran on.
EXTRA_DIST += docs/bench-shmring.md
