# Shared test helpers.  Each area's tests live in tests/AREA/local.mk.
