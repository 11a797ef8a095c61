# tests/engine-ref: ringmaster-engine against transformers (exact tokens,
# logits within 1e-3, TP = 1, 2, 4), its fault switches under ringmaster,
# its CPU all-reduce, and the safetensors reader.  The tests that need
# torch + transformers skip (77) without them (RM_TORCH_PYTHONPATH).
ENGINE_REF_TESTS = \
	tests/engine-ref/test-safetensors \
	tests/engine-ref/test-engine-allreduce.sh \
	tests/engine-ref/test-engine-exact.sh \
	tests/engine-ref/test-engine-faults.sh \
	tests/engine-ref/test-engine-gpu.sh \
	tests/engine-ref/test-engine-gpu-tp2.sh
check_PROGRAMS += tests/engine-ref/test-safetensors
TESTS += $(ENGINE_REF_TESTS)
tests_engine_ref_test_safetensors_SOURCES = \
	tests/engine-ref/test-safetensors.c \
	engine/ref/safetensors.c \
	engine/ref/safetensors.h \
	supervisor/json.c \
	supervisor/util.c
tests_engine_ref_test_safetensors_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/engine/ref -I$(top_srcdir)/supervisor
EXTRA_DIST += \
	tests/engine-ref/common.sh \
	tests/engine-ref/compare.py \
	tests/engine-ref/hf-generate.py \
	tests/engine-ref/make-checkpoint.py \
	tests/engine-ref/test-engine-allreduce.sh \
	tests/engine-ref/test-engine-exact.sh \
	tests/engine-ref/test-engine-faults.sh \
	tests/engine-ref/test-engine-gpu.sh \
	tests/engine-ref/test-engine-gpu-tp2.sh \
	tests/engine-ref/bench-allreduce.sh \
	tests/engine-ref/bench-engine-cpu.sh \
	tests/engine-ref/gloo-allreduce.py \
	tests/engine-ref/run-engine-on-gpu-host.sh \
	docs/bench-engine.md
