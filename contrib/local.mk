# contrib: deployment (docs/deploy.md): the systemd unit, the container image.

# ringmaster@.service with the installed ringmaster's path; installed where
# configure says (--with-systemdsystemunitdir), or not at all.
contrib/systemd/ringmaster@.service: $(srcdir)/contrib/systemd/ringmaster@.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) contrib/systemd && \
	sed -e 's|@bindir[@]|$(bindir)|g' $(srcdir)/contrib/systemd/ringmaster@.service.in > $@-t && \
	mv $@-t $@
CLEANFILES += contrib/systemd/ringmaster@.service contrib/systemd/ringmaster@.service-t

if INSTALL_SYSTEMD_UNIT
systemdsystemunit_DATA = contrib/systemd/ringmaster@.service
endif
# make distcheck installs under its own prefix, not into the host's unit directory.
AM_DISTCHECK_CONFIGURE_FLAGS = --with-systemdsystemunitdir=$$dc_install_base/lib/systemd/system

# The instance's environment file and a drop-in, as examples.
systemdexamplesdir = $(docdir)/examples/systemd
dist_systemdexamples_DATA = contrib/systemd/example.env contrib/systemd/ringmaster@.service.d/example.conf

EXTRA_DIST += \
	contrib/systemd/ringmaster@.service.in \
	contrib/docker/Dockerfile \
	contrib/docker/Dockerfile.dockerignore \
	docs/deploy.md
