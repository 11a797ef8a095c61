#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Python workers: ringmaster.worker and the start-up hook (with the fake
# torch of tests/python) speak to ringmaster's socket.  The hook's phases
# (dist-init, cuda-init) and the program's own land in the report in order;
# a rank hung in torch.distributed.init_process_group is caught by the
# straggler deadline and named with its phase.
import re
import sys
from rmtest import *

top = os.environ.get("top_srcdir") or os.path.join(os.path.dirname(__file__), "..", "..")
package = os.path.realpath(os.path.join(top, "engine", "python"))
hook = os.path.join(package, "hook")
fake_torch = os.path.realpath(os.path.join(top, "tests", "python", "fake_torch"))
if not os.path.isdir(hook) or not os.path.isdir(fake_torch):
    skip("no engine/python/hook or tests/python/fake_torch")
env = clean_env(PYTHONPATH=os.pathsep.join([hook, fake_torch, package]))

program = r"""
import os, time
import torch, torch.distributed as dist
from ringmaster import worker
if os.environ["RANK"] == os.environ.get("HANG_RANK"):
    os.environ["FAKE_TORCH_INIT"] = "hang"
dist.init_process_group("gloo")
torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
with worker.phase_scope("load-weights"):
    worker.progress(2, 2)
worker.ready("serving")
if os.environ.get("HANG_RANK"):
    time.sleep(3600)
worker.stopping()
"""

rid = run_id("notify-python")
res = run(rid, ["-n", "2", "--", sys.executable, "-c", program], env=env)
check(res.rc == 0, "exit 0")
r = res.report
require(r is not None, "JSON report written")
for i in range(2):
    e = rank_entry(r, i)
    names = [p["name"] for p in e["phases"]]
    check(names == ["dist-init", "cuda-init", "load-weights"], "rank %d: the hook's phases, then its own (%s)" % (i, names))
    check(all(p["ended_s"] is not None for p in e["phases"]), "rank %d: every phase ended" % i)
    check(e["ready"] and e["status"] == "serving" and e["stopping"] and e["progress"]["done"] == 2,
          "rank %d: ready, status, stopping, progress" % i)
# 9 of the program's and the hook's phases, and the hook's announcement of
# the process at start-up and of its exit (docs/spawned-workers.md).
check(r["notify"]["accepted"] == 2 * (9 + 2) and sum(r["notify"]["dropped"].values()) == 0,
      "11 datagrams per rank, none dropped (%s)" % r["notify"])
check(r["workers"] == [], "a rank's own process is not a worker")
check_nothing_left(rid)

rid = run_id("notify-python-hang")
env["HANG_RANK"] = "1"
res = run(rid, ["-n", "3", "--straggler-timeout", "1.5", "--", sys.executable, "-c", program], env=env)
check(res.rc == 124, "exit 124")
check(re.search(r"rank 1 stuck in phase dist-init for [\d.]+ s; ranks 0,2 reached READY [\d.]+ s ago", res.stderr),
      "the headline names rank 1 in dist-init")
check("fake-torch: hanging in init_process_group" in res.stdout, "rank 1 did hang there")
d = res.report["deadline"]
check(d["kind"] == "straggler-timeout" and d["ranks"] == [1] and d["phase"] == "dist-init", "JSON deadline")
check_nothing_left(rid)
finish()
