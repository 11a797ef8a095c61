# libshmring: the shared-memory transport.  Depends on libc alone.
lib_LTLIBRARIES += shmring/libshmring.la
include_HEADERS += shmring/shmring.h
pkgconfig_DATA += shmring/libshmring.pc
dist_man_MANS += man/shmring.3

shmring_libshmring_la_SOURCES = \
	shmring/shmring.h \
	shmring/layout.h \
	shmring/internal.h \
	shmring/names.h \
	shmring/wait-policy.h \
	shmring/segment.c \
	shmring/peer.c \
	shmring/ring.c \
	shmring/kv.c \
	shmring/wait.c
shmring_libshmring_la_LDFLAGS = $(AM_LDFLAGS) \
	-version-info $(LIBSHMRING_LT_VERSION) \
	-Wl,-z,defs \
	-Wl,--version-script=$(srcdir)/shmring/libshmring.map
shmring_libshmring_la_DEPENDENCIES = $(srcdir)/shmring/libshmring.map
EXTRA_DIST += shmring/libshmring.map shmring/libshmring.pc.in
