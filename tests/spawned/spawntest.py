# SPDX-License-Identifier: MIT
"""Helpers of the spawned-workers tests (tests/spawned/test-*.py): the
engine (tests/spawned/engine.py) under `ringmaster run -n 1`, torch from
RM_TORCH_PYTHONPATH (skip 77 without torch, or without the native worker
for the tests that need it)."""

import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, "supervisor"))

from rmtest import *        # noqa: E402,F401,F403

ENGINE = os.path.join(HERE, "engine.py")
NATIVE = os.path.join(TOP_BUILDDIR, "tests", "spawned", "announce-worker")


def torch_env(**overrides):
    """clean_env() with torch on PYTHONPATH; skips (77) without torch."""
    env = clean_env(**overrides)
    extra = os.environ.get("RM_TORCH_PYTHONPATH")
    if extra:
        env["PYTHONPATH"] = extra + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    r = subprocess.run([sys.executable, "-c", "import torch.distributed"], env=env, capture_output=True)
    if r.returncode != 0:
        skip("torch is not installed (set RM_TORCH_PYTHONPATH to a folder holding it)")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def engine_cmd(*args):
    return [sys.executable, ENGINE] + list(args)


def worker_entry(report, pid):
    for w in report.get("workers") or []:
        if w["pid"] == pid:
            return w
    return None


def worker_pids_from_stdout(text):
    """{index: pid} from the workers' "worker I pid P up" lines."""
    return {int(i): int(p) for i, p in re.findall(r"worker (\d+) pid (\d+) up", text)}


def check_prefixed(text, index, line):
    """The worker's line came with its own prefix."""
    return check("[rank 0/w%d] %s" % (index, line) in text, "worker %d's line has its prefix: %s" % (index, line))


def run_ringmaster(name, args, env):
    """`ringmaster run ARGS` under a new run id (t-NAME-PID) with a JSON
    report; waits for it.  (run id, Result with the report read), dumped;
    the report is required."""
    rid = run_id(name)
    rp = os.path.join(tempfile.mkdtemp(prefix="rmtest-"), "r.json")
    p = start(rid, args, env=env, report_path=rp)
    out, err = p.communicate(timeout=TIMEOUT)
    res = Result(p.returncode, out, err, read_report(rp), 0)
    res.dump()
    require(res.report is not None, "%s: JSON report written" % name)
    return rid, res
