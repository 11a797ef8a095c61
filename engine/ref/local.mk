# engine/ref: ringmaster-engine, the reference tensor-parallel engine (a
# Llama-architecture model from a Hugging Face checkpoint, split over the
# ranks of a ringmaster run).  CPU path: fp32 with OpenBLAS, the all-reduce
# through shared memory.  GPU path (with CUDA): bf16, cuBLAS, the kernels of
# kernels/llama-kernels.cu, NCCL (or the custom all-reduce) between GPUs.
bin_PROGRAMS += engine/ref/ringmaster-engine
dist_man_MANS += man/ringmaster-engine.1

engine_ref_ringmaster_engine_SOURCES = \
	engine/ref/ringmaster-engine.c \
	engine/ref/backend.h \
	engine/ref/collective.h \
	engine/ref/collective-shm.c \
	engine/ref/llama-config.c \
	engine/ref/llama-config.h \
	engine/ref/llama-cpu.c \
	engine/ref/safetensors.c \
	engine/ref/safetensors.h \
	engine/ref/scheduler.c \
	engine/ref/scheduler.h \
	engine/ref/serve.c \
	engine/ref/serve.h \
	engine/ref/step.h \
	supervisor/json.c \
	supervisor/json.h \
	supervisor/util.c \
	supervisor/util.h
engine_ref_ringmaster_engine_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/supervisor -I$(top_srcdir)/engine/ref \
	$(OPENBLAS_CFLAGS)
engine_ref_ringmaster_engine_LDADD = engine/librmworker.la shmring/libshmring.la $(OPENBLAS_LIBS) -lm

EXTRA_DIST += tools/make-tiny-llama kernels/llama-kernels.cu kernels/llama-kernels.h engine/ref/llama-gpu.c engine/ref/collective-nccl.c

if HAVE_CUDA
engine_ref_ringmaster_engine_SOURCES += \
	engine/ref/llama-gpu.c \
	engine/ref/collective-nccl.c
engine_ref_ringmaster_engine_CPPFLAGS += $(CUDA_CFLAGS) -I$(top_srcdir)/kernels
engine_ref_ringmaster_engine_LDADD += engine/librmworker-cuda.la engine/ref/libllamakernels.la $(CUDA_LIBS) -lcublas

# The layer kernels (kernels/llama-kernels.cu), a convenience library of
# their own: nvcc through the top Makefile.am's .cu rules.
noinst_LTLIBRARIES += engine/ref/libllamakernels.la
engine_ref_libllamakernels_la_SOURCES = kernels/llama-kernels.cu kernels/llama-kernels.h
engine_ref_libllamakernels_la_LIBADD = $(CUDA_LIBS) -lstdc++
engine_ref_libllamakernels_la_LINK = $(LIBTOOL) $(AM_V_lt) --tag=CC $(AM_LIBTOOLFLAGS) $(LIBTOOLFLAGS) \
	--mode=link $(CCLD) $(AM_CFLAGS) $(CFLAGS) $(AM_LDFLAGS) $(LDFLAGS) -o $@
if HAVE_NCCL
engine_ref_ringmaster_engine_CPPFLAGS += $(NCCL_CFLAGS)
engine_ref_ringmaster_engine_LDADD += $(NCCL_LIBS)
endif
endif
