# kernels: device code (nvcc, through the top Makefile.am's .cu rules) for
# the GPU tests and benchmarks, with C-callable launchers (rm_kernels.h).
EXTRA_DIST += kernels/rm_kernels.h

if HAVE_CUDA
noinst_LTLIBRARIES += kernels/librmkernels.la
kernels_librmkernels_la_SOURCES = \
	kernels/rm_kernels.h \
	kernels/pattern.cu \
	kernels/peer-read.cu
kernels_librmkernels_la_LIBADD = $(CUDA_LIBS) -lstdc++
# Only .cu sources: link with the C compiler's libtool rule.
kernels_librmkernels_la_LINK = $(LIBTOOL) $(AM_V_lt) --tag=CC $(AM_LIBTOOLFLAGS) $(LIBTOOLFLAGS) \
	--mode=link $(CCLD) $(AM_CFLAGS) $(CFLAGS) $(AM_LDFLAGS) $(LDFLAGS) -o $@
endif
