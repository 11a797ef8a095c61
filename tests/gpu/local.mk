# tests/gpu: GPU tests of librmworker-cuda.  Each exits 77 without a GPU.
# Run on a GPU host with tests/gpu/run-on-gpu-host.sh (docs/gpu-results.md).
EXTRA_DIST += tests/gpu/gpu-test.h tests/gpu/run-on-gpu-host.sh tests/gpu/gpu-host-env.sh tests/gpu/test-kernels.h \
	tests/gpu/allreduce-check.h tests/gpu/run-allreduce-on-gpu-host.sh tests/gpu/test-allreduce-torch.sh \
	tests/gpu/allreduce_torch_rank.py tests/gpu/test-spawned-nccl.py

# Spawned workers with NCCL on one GPU (torch with CUDA; skips 77 without): in every build,
# since it needs no CUDA of ringmaster's own.
TESTS += tests/gpu/test-spawned-nccl.py

if HAVE_CUDA
# The tests' device code (nvcc, through the top Makefile.am's .cu rules),
# with C-callable launchers (test-kernels.h).
check_LTLIBRARIES += tests/gpu/libtestkernels.la
tests_gpu_libtestkernels_la_SOURCES = \
	tests/gpu/test-kernels.h \
	tests/gpu/pattern.cu \
	tests/gpu/peer-read.cu
tests_gpu_libtestkernels_la_LIBADD = $(CUDA_LIBS) -lstdc++
# Only .cu sources: link with the C compiler's libtool rule.
tests_gpu_libtestkernels_la_LINK = $(LIBTOOL) $(AM_V_lt) --tag=CC $(AM_LIBTOOLFLAGS) $(LIBTOOLFLAGS) \
	--mode=link $(CCLD) $(AM_CFLAGS) $(CFLAGS) $(AM_LDFLAGS) $(LDFLAGS) -o $@

GPU_TESTS = \
	tests/gpu/test-tensor-roundtrip \
	tests/gpu/test-tensor-ordering \
	tests/gpu/test-tensor-errors \
	tests/gpu/test-tensor-pidns \
	tests/gpu/test-allreduce
if HAVE_NCCL
GPU_TESTS += tests/gpu/test-nccl
endif
check_PROGRAMS += $(GPU_TESTS) tests/gpu/bench-tensor-peer tests/gpu/bench-allreduce
TESTS += $(GPU_TESTS) tests/gpu/test-allreduce-torch.sh

RMTEST_GPU_CPPFLAGS = $(AM_CPPFLAGS) $(CUDA_CFLAGS) -I$(top_srcdir)/tests/engine
RMTEST_GPU_LIBS = tests/engine/librmtest.la engine/librmworker-cuda.la engine/librmworker.la \
	shmring/libshmring.la tests/gpu/libtestkernels.la $(CUDA_LIBS)

tests_gpu_test_tensor_roundtrip_SOURCES = tests/gpu/test-tensor-roundtrip.c
tests_gpu_test_tensor_roundtrip_CPPFLAGS = $(RMTEST_GPU_CPPFLAGS)
tests_gpu_test_tensor_roundtrip_LDADD = $(RMTEST_GPU_LIBS)
tests_gpu_test_tensor_roundtrip_LDFLAGS = $(AM_LDFLAGS) -no-install
tests_gpu_test_tensor_ordering_SOURCES = tests/gpu/test-tensor-ordering.c
tests_gpu_test_tensor_ordering_CPPFLAGS = $(RMTEST_GPU_CPPFLAGS)
tests_gpu_test_tensor_ordering_LDADD = $(RMTEST_GPU_LIBS)
tests_gpu_test_tensor_ordering_LDFLAGS = $(AM_LDFLAGS) -no-install
tests_gpu_test_tensor_errors_SOURCES = tests/gpu/test-tensor-errors.c
tests_gpu_test_tensor_errors_CPPFLAGS = $(RMTEST_GPU_CPPFLAGS)
tests_gpu_test_tensor_errors_LDADD = $(RMTEST_GPU_LIBS)
tests_gpu_test_tensor_errors_LDFLAGS = $(AM_LDFLAGS) -no-install
tests_gpu_test_tensor_pidns_SOURCES = tests/gpu/test-tensor-pidns.c
tests_gpu_test_tensor_pidns_CPPFLAGS = $(RMTEST_GPU_CPPFLAGS)
tests_gpu_test_tensor_pidns_LDADD = $(RMTEST_GPU_LIBS)
tests_gpu_test_tensor_pidns_LDFLAGS = $(AM_LDFLAGS) -no-install
tests_gpu_test_nccl_SOURCES = tests/gpu/test-nccl.c
tests_gpu_test_nccl_CPPFLAGS = $(RMTEST_GPU_CPPFLAGS) $(NCCL_CFLAGS)
tests_gpu_test_nccl_LDADD = $(RMTEST_GPU_LIBS) $(NCCL_LIBS)
tests_gpu_test_nccl_LDFLAGS = $(AM_LDFLAGS) -no-install
tests_gpu_bench_tensor_peer_SOURCES = tests/gpu/bench-tensor-peer.c
tests_gpu_bench_tensor_peer_CPPFLAGS = $(RMTEST_GPU_CPPFLAGS)
tests_gpu_bench_tensor_peer_LDADD = $(RMTEST_GPU_LIBS)
tests_gpu_bench_tensor_peer_LDFLAGS = $(AM_LDFLAGS) -no-install

# The all-reduce's tests and benchmark: random inputs and the reference sum on the GPU.
check_LTLIBRARIES += tests/gpu/librmarcheck.la
tests_gpu_librmarcheck_la_SOURCES = tests/gpu/allreduce-check.h tests/gpu/allreduce-check.cu
tests_gpu_librmarcheck_la_LIBADD = $(CUDA_LIBS) -lstdc++
tests_gpu_librmarcheck_la_LINK = $(kernels_librmallreduce_la_LINK)
RMTEST_AR_CPPFLAGS = $(RMTEST_GPU_CPPFLAGS) -I$(top_srcdir)/kernels
RMTEST_AR_LIBS = tests/gpu/librmarcheck.la kernels/librmallreduce.la $(RMTEST_GPU_LIBS)
tests_gpu_test_allreduce_SOURCES = tests/gpu/test-allreduce.c
tests_gpu_test_allreduce_CPPFLAGS = $(RMTEST_AR_CPPFLAGS)
tests_gpu_test_allreduce_LDADD = $(RMTEST_AR_LIBS)
tests_gpu_test_allreduce_LDFLAGS = $(AM_LDFLAGS) -no-install
tests_gpu_bench_allreduce_SOURCES = tests/gpu/bench-allreduce.c
tests_gpu_bench_allreduce_CPPFLAGS = $(RMTEST_AR_CPPFLAGS)
tests_gpu_bench_allreduce_LDADD = $(RMTEST_AR_LIBS)
tests_gpu_bench_allreduce_LDFLAGS = $(AM_LDFLAGS) -no-install
endif
