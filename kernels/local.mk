# kernels: the production device code (nvcc, through the top Makefile.am's
# .cu rules; -I$(top_srcdir)/kernels is in NVCC_FLAGS), with C-callable
# launchers.  The GPU tests' own kernels are in tests/gpu (libtestkernels).
# Nothing is built here yet.
