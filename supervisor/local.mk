# supervisor: `ringmaster`, the supervisor (see ../Makefile.am).
#
# Everything but main.c is a convenience library, so that unit tests in
# tests/supervisor link the same objects the program does.

noinst_LTLIBRARIES += supervisor/libsupervisor.la
supervisor_libsupervisor_la_SOURCES = \
	engine/run-layout.c \
	engine/rm_run_layout.h \
	supervisor/capture.c \
	supervisor/capture.h \
	supervisor/check.c \
	supervisor/check.h \
	supervisor/contain.c \
	supervisor/contain.h \
	supervisor/deadline.c \
	supervisor/deadline.h \
	supervisor/diagnose.c \
	supervisor/diagnose.h \
	supervisor/environ.c \
	supervisor/environ.h \
	supervisor/exit-status.h \
	supervisor/gpus.c \
	supervisor/gpus.h \
	supervisor/gpuinfo.c \
	supervisor/gpuinfo.h \
	supervisor/init.c \
	supervisor/init.h \
	supervisor/job.c \
	supervisor/job.h \
	supervisor/journal.c \
	supervisor/journal.h \
	supervisor/json.c \
	supervisor/json.h \
	supervisor/lifecycle.c \
	supervisor/lifecycle.h \
	supervisor/log.c \
	supervisor/log.h \
	supervisor/memguard.c \
	supervisor/memguard.h \
	supervisor/notify-server.c \
	supervisor/notify-parse.c \
	supervisor/worker-message.h \
	supervisor/worker-message.c \
	supervisor/workers.h \
	supervisor/workers.c \
	supervisor/job-workers.h \
	supervisor/job-workers.c \
	supervisor/notify.h \
	supervisor/options.c \
	supervisor/options.h \
	supervisor/parse-util.c \
	supervisor/parse-util.h \
	supervisor/phase.c \
	supervisor/phase.h \
	supervisor/proctree.c \
	supervisor/proctree.h \
	supervisor/python-hooks.c \
	supervisor/python-hooks.h \
	supervisor/report-json.c \
	supervisor/report-text.c \
	supervisor/report.h \
	supervisor/run.c \
	supervisor/run.h \
	supervisor/safe-file.c \
	supervisor/safe-file.h \
	supervisor/run-model.c \
	supervisor/run-model.h \
	supervisor/run-segment.c \
	supervisor/run-segment.h \
	supervisor/rundir.c \
	supervisor/rundir.h \
	supervisor/sdnotify.c \
	supervisor/sdnotify.h \
	supervisor/sink.c \
	supervisor/sink.h \
	supervisor/spawn.c \
	supervisor/spawn.h \
	supervisor/stack.c \
	supervisor/stack.h \
	supervisor/status.c \
	supervisor/status.h \
	supervisor/tail.c \
	supervisor/tail.h \
	supervisor/util.c \
	supervisor/util.h
supervisor_libsupervisor_la_CFLAGS = $(AM_CFLAGS) $(LIBSYSTEMD_CFLAGS)
# Where --python-hooks finds the start-up hook and the ringmaster package:
# installed ($(pythonhookdir) is engine/python/local.mk's), or, for a
# ringmaster run from this build tree, the source tree's (python-hooks.c).
# The preflight's GPU probe looks for libnccl.so.2 beside the CUDA toolkit configure found, too.
supervisor_libsupervisor_la_CPPFLAGS = $(AM_CPPFLAGS) -DRINGMASTER_CUDA_LIBDIR='"$(CUDA_LIBDIR)"' \
	-DRINGMASTER_PYTHON_HOOK_DIR='"$(pythonhookdir)"' \
	-DRINGMASTER_PYTHON_PACKAGE_DIR='"$(pythondir)"' \
	-DRINGMASTER_ABS_TOP_SRCDIR='"$(abs_top_srcdir)"' \
	-DRINGMASTER_ABS_TOP_BUILDDIR='"$(abs_top_builddir)"'
supervisor_libsupervisor_la_LIBADD = shmring/libshmring.la $(LIBSYSTEMD_LIBS) -lm -ldl

bin_PROGRAMS += supervisor/ringmaster
supervisor_ringmaster_SOURCES = supervisor/main.c
supervisor_ringmaster_CFLAGS = $(AM_CFLAGS) $(LIBSYSTEMD_CFLAGS)
supervisor_ringmaster_LDADD = supervisor/libsupervisor.la

dist_man_MANS += man/ringmaster.1

EXTRA_DIST += docs/supervisor.md docs/bench-supervisor.md docs/ARCHITECTURE.md docs/multinode.md docs/spawned-workers.md \
	docs/engines.md docs/containment.md docs/attacks.md

# Several nodes and torchrun's command line (docs/multinode.md).
supervisor_libsupervisor_la_SOURCES += \
	supervisor/cluster.c \
	supervisor/cluster.h \
	supervisor/etcd.c \
	supervisor/etcd.h \
	supervisor/hostlist.c \
	supervisor/hostlist.h \
	supervisor/node-view.c \
	supervisor/node-view.h \
	supervisor/placement.c \
	supervisor/placement.h \
	supervisor/rdzv-c10d.c \
	supervisor/rendezvous.c \
	supervisor/rendezvous.h \
	supervisor/run-nodes.c \
	supervisor/run-nodes.h \
	supervisor/torchrun-cli.c \
	supervisor/torchrun-cli.h
supervisor_libsupervisor_la_CFLAGS += $(LIBCURL_CFLAGS)
supervisor_libsupervisor_la_LIBADD += $(LIBCURL_LIBS)

# ringmaster-torchrun: torchrun's command line (main.c looks at its own name).
install-exec-hook: install-ringmaster-torchrun
install-ringmaster-torchrun:
	cd $(DESTDIR)$(bindir) && rm -f ringmaster-torchrun && $(LN_S) ringmaster ringmaster-torchrun
uninstall-hook: uninstall-ringmaster-torchrun
uninstall-ringmaster-torchrun:
	rm -f $(DESTDIR)$(bindir)/ringmaster-torchrun
.PHONY: install-ringmaster-torchrun uninstall-ringmaster-torchrun
