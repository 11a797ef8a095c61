# SPDX-License-Identifier: MIT
"""ringmaster's Python start-up hook.

`ringmaster run` puts this folder on PYTHONPATH (installed as
$(pkgdatadir)/python-hook; in the build tree engine/python/hook), so every
Python process of the job imports it at start-up, as site.py imports any
sitecustomize.  It installs _ringmaster_hook (beside it: faulthandler on
SIGUSR1, phase reports around torch.distributed and CUDA initialisation)
when RINGMASTER_RUN_ID is set, and then imports the sitecustomize it hides,
the next one on sys.path, so a distribution's or a user's sitecustomize
still runs.  It never raises: a failure is one line on stderr.
"""


def _ringmaster_start():
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    try:
        import _ringmaster_hook
    except Exception as e:
        sys.stderr.write("ringmaster hook: cannot import _ringmaster_hook from %s: %s\n" % (here, e))
        return
    if _ringmaster_hook.chaining:
        return                          # imported again while chaining: the next one is ours
    try:
        _ringmaster_hook.install()
    except Exception as e:
        sys.stderr.write("ringmaster hook: %s: %s\n" % (type(e).__name__, e))
    _ringmaster_hook.chain_sitecustomize(here)


_ringmaster_start()
del _ringmaster_start
