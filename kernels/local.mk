# kernels: the production device code (nvcc, through the top Makefile.am's
# .cu rules; -I$(top_srcdir)/kernels is in NVCC_FLAGS), with C-callable
# launchers.  The GPU tests' own kernels are in tests/gpu (libtestkernels).
EXTRA_DIST += kernels/rm_allreduce_kernels.h kernels/allreduce.cuh

# The custom all-reduce's kernels (rm_allreduce_kernels.h), linked into
# librmworker-cuda (engine/allreduce.c) and driven directly by
# tests/gpu/test-allreduce and tests/gpu/bench-allreduce.
if HAVE_CUDA
noinst_LTLIBRARIES += kernels/librmallreduce.la
kernels_librmallreduce_la_SOURCES = \
	kernels/rm_allreduce_kernels.h \
	kernels/allreduce.cuh \
	kernels/allreduce.cu
kernels_librmallreduce_la_LIBADD = $(CUDA_LIBS) -lstdc++
# Only .cu sources: link with the C compiler's libtool rule.
kernels_librmallreduce_la_LINK = $(LIBTOOL) $(AM_V_lt) --tag=CC $(AM_LIBTOOLFLAGS) $(LIBTOOLFLAGS) \
	--mode=link $(CCLD) $(AM_CFLAGS) $(CFLAGS) $(AM_LDFLAGS) $(LDFLAGS) -o $@
kernels/allreduce.lo: $(srcdir)/kernels/allreduce.cuh $(srcdir)/kernels/rm_allreduce_kernels.h
endif
