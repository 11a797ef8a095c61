# engine: the worker runtime.
#   librmworker       the CPU part: the run from the environment, the
#                     rendezvous, fd sharing, tensor records, the run layout,
#                     the notify protocol (rm_notify.h: phases, READY, ...)
#   librmworker-cuda  GPU tensors between ranks and NCCL with a deadline;
#                     built only when configure found CUDA (NCCL parts: NCCL)
lib_LTLIBRARIES += engine/librmworker.la
include_HEADERS += engine/rm_worker.h engine/rm_run_layout.h engine/rm_notify.h engine/rm_announce.h

engine_librmworker_la_SOURCES = \
	engine/rm_worker.h \
	engine/rm_run_layout.h \
	engine/internal.h \
	engine/worker.c \
	engine/rmpriv.c \
	engine/run-layout.c \
	engine/bootstrap.c \
	engine/fdshare.c \
	engine/tensor-record.c \
	engine/rm_notify.h \
	engine/notify.c \
	engine/notify-internal.h \
	engine/rm_announce.h \
	engine/announce.c
engine_librmworker_la_LIBADD = shmring/libshmring.la
engine_librmworker_la_LDFLAGS = $(AM_LDFLAGS) \
	-version-info 0:0:0 \
	-Wl,-z,defs \
	-Wl,--version-script=$(srcdir)/engine/librmworker.map
engine_librmworker_la_DEPENDENCIES = shmring/libshmring.la $(srcdir)/engine/librmworker.map
EXTRA_DIST += engine/librmworker.map engine/librmworker-cuda.map \
	engine/rm_cuda.h engine/rm_nccl.h engine/cuda-internal.h engine/rm_allreduce.h

if HAVE_CUDA
lib_LTLIBRARIES += engine/librmworker-cuda.la
include_HEADERS += engine/rm_cuda.h engine/rm_allreduce.h

engine_librmworker_cuda_la_SOURCES = \
	engine/rm_cuda.h \
	engine/cuda-internal.h \
	engine/cuda-driver.c \
	engine/tensor.c \
	engine/rm_allreduce.h \
	engine/allreduce.c
engine_librmworker_cuda_la_CPPFLAGS = $(AM_CPPFLAGS) $(CUDA_CFLAGS) -I$(top_srcdir)/kernels
engine_librmworker_cuda_la_LIBADD = engine/librmworker.la shmring/libshmring.la kernels/librmallreduce.la \
	$(CUDA_LIBS)
engine_librmworker_cuda_la_LDFLAGS = $(AM_LDFLAGS) \
	-version-info 0:0:0 \
	-Wl,-z,defs \
	-Wl,--version-script=$(srcdir)/engine/librmworker-cuda.map
engine_librmworker_cuda_la_DEPENDENCIES = engine/librmworker.la shmring/libshmring.la kernels/librmallreduce.la \
	$(srcdir)/engine/librmworker-cuda.map

if HAVE_NCCL
include_HEADERS += engine/rm_nccl.h
engine_librmworker_cuda_la_SOURCES += engine/rm_nccl.h engine/nccl.c
engine_librmworker_cuda_la_CPPFLAGS += $(NCCL_CFLAGS)
engine_librmworker_cuda_la_LIBADD += $(NCCL_LIBS)
endif
endif
