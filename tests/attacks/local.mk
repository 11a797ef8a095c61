# tests/attacks: the fault suite of issue 11, one test per attack that an
# adversarial review tried (docs/attacks.md lists them and their outcome).
# The Python ones drive the built ringmaster through rmtest.py
# (tests/supervisor/) and attack.py.

check_PROGRAMS += tests/attacks/test-kv-generation
tests_attacks_test_kv_generation_SOURCES = tests/attacks/test-kv-generation.c tests/shmring/tap.h
tests_attacks_test_kv_generation_LDADD = shmring/libshmring.la

ATTACK_PY_TESTS = \
	tests/attacks/test-contain.py \
	tests/attacks/test-report-file.py \
	tests/attacks/test-log-dir.py \
	tests/attacks/test-truncate.py \
	tests/attacks/test-escape.py \
	tests/attacks/test-tiny-duration.py \
	tests/attacks/test-log-dir-full.py \
	tests/attacks/test-drops-text.py \
	tests/attacks/test-stopped-rank.py \
	tests/attacks/test-privdrop.py \
	tests/attacks/test-nofile.py \
	tests/attacks/test-notify-stopped.py

TESTS += tests/attacks/test-kv-generation $(ATTACK_PY_TESTS)
EXTRA_DIST += tests/attacks/attack.py $(ATTACK_PY_TESTS)

# contain.c alone: a stand-in supervisor SIGKILLed in each mode the host gives.
check_PROGRAMS += tests/attacks/test-contain-unit
tests_attacks_test_contain_unit_SOURCES = tests/attacks/test-contain-unit.c tests/supervisor/unit.h
tests_attacks_test_contain_unit_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/supervisor
tests_attacks_test_contain_unit_CFLAGS = $(AM_CFLAGS) $(LIBSYSTEMD_CFLAGS)
tests_attacks_test_contain_unit_LDADD = supervisor/libsupervisor.la
TESTS += tests/attacks/test-contain-unit

check_PROGRAMS += tests/attacks/test-memguard
tests_attacks_test_memguard_SOURCES = tests/attacks/test-memguard.c tests/supervisor/unit.h
tests_attacks_test_memguard_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/supervisor
tests_attacks_test_memguard_CFLAGS = $(AM_CFLAGS) $(LIBSYSTEMD_CFLAGS)
tests_attacks_test_memguard_LDADD = supervisor/libsupervisor.la
TESTS += tests/attacks/test-memguard

# The fault suite alone: make check-attacks
ATTACK_TESTS = tests/attacks/test-kv-generation tests/attacks/test-contain-unit tests/attacks/test-memguard \
	$(ATTACK_PY_TESTS)
check-attacks:
	$(MAKE) $(AM_MAKEFLAGS) check TESTS="$(ATTACK_TESTS)"
.PHONY: check-attacks
