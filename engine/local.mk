# engine: see ../Makefile.am
#
# librmnotify: the worker side of the notify protocol (rm_notify.h), for C
# and C++ workers.  A library of its own until librmworker lands on main;
# then engine/notify.c joins librmworker's sources (its map exports rm_*).
lib_LTLIBRARIES += engine/librmnotify.la
include_HEADERS += engine/rm_notify.h
engine_librmnotify_la_SOURCES = engine/rm_notify.h engine/notify.c
engine_librmnotify_la_LDFLAGS = $(AM_LDFLAGS) \
	-version-info 0:0:0 \
	-Wl,-z,defs \
	-Wl,--version-script=$(srcdir)/engine/librmnotify.map
engine_librmnotify_la_DEPENDENCIES = $(srcdir)/engine/librmnotify.map
EXTRA_DIST += engine/librmnotify.map
