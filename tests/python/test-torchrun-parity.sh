#!/bin/sh
# torchrun parity (tests/python/parity/parity.py): small torch.distributed
# programs (gloo, CPU) under torchrun and under `ringmaster run`.  Skips (77)
# when the ringmaster binary ($RINGMASTER_BIN, else the build tree's) or
# torch is missing.  Knobs: RM_PARITY_NPROC (2), RM_PARITY_CASES,
# RM_PARITY_RINGMASTER_FLAGS, RM_PARITY_TORCHRUN_HANG_SECONDS (20),
# RM_PARITY_BACKEND (gloo; nccl on GPU hosts), RM_TORCH_PYTHONPATH (below).
# RM_TORCH_PYTHONPATH: a folder holding torch (pip install --target), for
# this test alone (.ci/run installs one there when PyPI allows).
if [ -n "${RM_TORCH_PYTHONPATH:-}" ]; then
        PYTHONPATH="$RM_TORCH_PYTHONPATH${PYTHONPATH:+:$PYTHONPATH}"
        export PYTHONPATH
fi
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
python=${PYTHON3:-python3}
ringmaster=${RINGMASTER_BIN:-$top_builddir/supervisor/ringmaster}

if [ ! -x "$ringmaster" ]; then
        echo "test-torchrun-parity: no ringmaster at $ringmaster: skipped"
        exit 77
fi
if ! "$python" -c 'import torch.distributed' 2>/dev/null; then
        echo "test-torchrun-parity: torch is not installed for $python: skipped"
        exit 77
fi
export top_srcdir top_builddir
exec "$python" "$top_srcdir/tests/python/parity/parity.py" --ringmaster "$ringmaster" "$@"
