# SPDX-License-Identifier: MIT
"""What the multi-node Python tests share: where the build is, the checks
and their summary.

    from mntest import RINGMASTER, SCALE, check, summary
    check(rc == 0, "both nodes exit 0", output)     # prints ok/FAIL (and the output on FAIL)
    return summary()                                # 1 when a check failed, else 0
"""

import os

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
