# SPDX-License-Identifier: MIT
"""What the multi-node Python tests share: where the build is, the checks
and their summary.

    from mntest import RINGMASTER, SCALE, check, summary
    check(rc == 0, "both nodes exit 0", output)     # prints ok/FAIL (and the output on FAIL)
    return summary()                                # 1 when a check failed, else 0
    procs = start_nodes([argv] * 2, {"VAR": "x"})   # ringmasters on this machine, each its own runtime dir
    [(rc, output), ...] = finish(procs, 60)         # killed (rc -9) past the timeout
"""

import os
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRCDIR = os.environ.get("top_srcdir") or os.path.abspath(os.path.join(HERE, "..", ".."))
TOP_BUILDDIR = os.environ.get("top_builddir") or TOP_SRCDIR
RINGMASTER = os.environ.get("RINGMASTER_BIN") or os.path.join(TOP_BUILDDIR, "supervisor", "ringmaster")
SCALE = float(os.environ.get("RM_TEST_TIMEOUT_SCALE", "1"))
failures = []


def check(cond, what, output=""):
    print("%s: %s" % ("ok  " if cond else "FAIL", what), flush=True)
    if not cond:
        failures.append(what)
        if output:
            print("---- output\n%s\n----" % output[-5000:], flush=True)
    return cond


def summary():
    if failures:
        print("%d failed: %s" % (len(failures), "; ".join(failures)))
        return 1
    return 0


def start_nodes(argvs, env_extra=None):
    """One process per argv (a ringmaster as a node of this machine), output and errors together."""
    procs = []
    for argv in argvs:
        env = dict(os.environ, XDG_RUNTIME_DIR=tempfile.mkdtemp(prefix="rm-node-"), **(env_extra or {}))
        procs.append(subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                      start_new_session=True))
    return procs


def finish(procs, timeout):
    """Each process's (exit status, output), in order; one still running after timeout is killed."""
    res = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            out, _ = p.communicate()
        res.append((p.returncode, out))
    return res
