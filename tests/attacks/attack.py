# SPDX-License-Identifier: MIT
"""Helpers of the fault suite (tests/attacks/): rmtest.py's, plus what the
attacks need: another user to act as, a private mount namespace, a wait
for a condition with a bound."""

import os
import pwd
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "supervisor"))
from rmtest import *  # noqa: E402,F401,F403
import rmtest  # noqa: E402

OTHER_USER = "nobody"


def other_ids():
    """uid and gid of a user that is not us (root's tests plant files as it)."""
    pw = pwd.getpwnam(OTHER_USER)
    return pw.pw_uid, pw.pw_gid


def need_root(what):
    if os.geteuid() != 0:
        rmtest.skip("%s needs root (to act as another user)" % what)


def as_other_user():
    """A preexec_fn: become OTHER_USER (setpriv's job, done in Python)."""
    uid, gid = other_ids()

    def drop():
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    return drop


def wait_until(pred, timeout, step=0.02):
    """Polls pred (a state with no event to wait on, such as "no process
    left") until it is true or timeout passes; returns the seconds it took or None."""
    t0 = time.monotonic()
    while True:
        if pred():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            return None
        time.sleep(step)


def private_mounts(argv_inner):
    """Re-runs this test in a private mount namespace (for tmpfs mounts);
    returns False when none can be had."""
    if "--inner" in sys.argv:
        return True
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if probe.returncode != 0:
        return False
    inner = subprocess.run(["unshare", "--mount", "--propagation", "private", sys.executable] + argv_inner +
                           ["--inner"])
    sys.exit(inner.returncode)


def report_section(stderr):
    """The text report: from the last '======== run' line on."""
    i = stderr.rfind("======== run")
    return stderr[i:] if i >= 0 else ""
