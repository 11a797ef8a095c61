#!/bin/sh
# make check's entry to the Python tests: runs pytest on tests/python with
# the package from the source tree (engine/python) and libshmring from the
# build tree.  Skips (77) when pytest is not installed (Debian/Ubuntu:
# python3-pytest).  Extra arguments go to pytest, e.g. -k hook -v.
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
# The first interpreter that has pytest: $PYTHON3, python3 on PATH (which
# may be a pyenv or venv without it), then the system's (python3-pytest).
python=
for candidate in ${PYTHON3:-} python3 /usr/bin/python3; do
        if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import pytest' 2>/dev/null; then
                python=$candidate
                break
        fi
done
if [ -z "$python" ]; then
        echo "test-python: no python3 with pytest (Debian/Ubuntu: apt-get install python3-pytest): skipped"
        exit 77
fi
lib=$top_builddir/shmring/.libs/libshmring.so.1
if [ ! -e "$lib" ]; then
        echo "test-python: $lib is not built" >&2
        exit 99
fi

# A library built with --enable-sanitizers needs its runtimes loaded
# before anything else in the (uninstrumented) interpreter.
runtimes=$(ldd "$lib" 2>/dev/null | awk '/lib(asan|ubsan)\.so/ { print $3 }' | tr '\n' ' ')
if [ -n "$runtimes" ]; then
        LD_PRELOAD="$runtimes${LD_PRELOAD:+ $LD_PRELOAD}"
        # The interpreter itself leaks by ASan's standards, and it installs
        # its own SIGINT/SIGSEGV handlers.
        ASAN_OPTIONS="detect_leaks=0:allow_user_segv_handler=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
        export LD_PRELOAD ASAN_OPTIONS
fi

PYTHONPATH="$top_srcdir/engine/python${PYTHONPATH:+:$PYTHONPATH}"
RINGMASTER_LIBSHMRING=$lib
PYTHONDONTWRITEBYTECODE=1       # the source tree may be read-only (distcheck)
export PYTHONPATH RINGMASTER_LIBSHMRING PYTHONDONTWRITEBYTECODE top_srcdir top_builddir

"$python" -m pytest -q -p no:cacheprovider --rootdir="$top_srcdir/tests/python" "$top_srcdir/tests/python" "$@"
rc=$?
case $rc in
0|1) exit $rc ;;        # passed, or some test failed
*) exit 99 ;;           # interrupted, internal or usage error, nothing collected
esac
