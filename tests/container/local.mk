# tests/container: ringmaster as a real container's entrypoint (podman, an
# image made from a debootstrap base and this build; containertest.py says
# how).  Skips (77) where podman cannot run a container, with the reason;
# tests/supervisor/test-init-*.py check the same behaviour under unshare.
CONTAINER_TESTS = tests/container/test-container.py
TESTS += $(CONTAINER_TESTS)
EXTRA_DIST += tests/container/containertest.py $(CONTAINER_TESTS)
