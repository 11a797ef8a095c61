#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The switches: --worker-failure=report (a crashed worker is said at once,
# the job is not torn down for it: here the engine itself then fails, as
# vLLM's does, and that is the first failure), --worker-capture=off (the
# workers' lines stay in their parent's streams, under the rank's prefix;
# they are still named and listed), --worker-prefix, and the workers' raw
# logs under --log-dir (DIR/ID/rank-R.worker-PID.out, .err).
import re
import tempfile
from spawntest import *

env = torch_env()

# --worker-failure=report
rid = run_id("spawned-report")
res = run(rid, ["-n", "1", "--worker-failure", "report", "--"] +
          engine_cmd("--method", "spawn", "--workers", "2", "--crash", "1"), env=env)
r = res.report
require(r is not None, "JSON report written")
pids = worker_pids_from_stdout(res.stdout)
check(re.search(r"ringmaster: worker 1 of 2 \(pid %d, child of rank 0\) was killed by SIGSEGV at [\d.]+ s; "
                r"the job goes on \(--worker-failure=report\)" % pids.get(1, -1), res.stderr),
      "the crash is said at once, and the job goes on")
check(res.rc == 1 and r["first_failure"]["rank"] == 0 and r["first_failure"]["worker"] is None,
      "the engine's own failure (status 1) is the first failure")
w1 = worker_entry(r, pids.get(1, -1))
check(w1 is not None and w1["failed"] and w1["signal_name"] == "SIGSEGV", "JSON: worker 1 failed, SIGSEGV")
check_nothing_left(rid)

# --worker-capture=off, --worker-prefix
rid = run_id("spawned-nocapture")
res = run(rid, ["-n", "1", "--worker-capture", "off", "--"] +
          engine_cmd("--method", "spawn", "--workers", "2"), env=env)
check(res.rc == 0, "exit status 0")
pids = worker_pids_from_stdout(res.stdout)
for i, pid in pids.items():
    # Not apart: its lines share the rank's pipe (two workers' writes may even meet on one line).
    check(re.search(r"^\[rank 0\] .*worker %d pid %d up" % (i, pid), res.stdout, re.M) and
          "[rank 0/" not in res.stdout, "worker %d's line under the rank's prefix" % i)
    e = worker_entry(res.report, pid)
    check(e is not None and e["stdout"] is None and e["group"]["rank"] == i, "JSON: worker %d named, not captured" % i)
check_nothing_left(rid)

rid = run_id("spawned-prefix")
logs = tempfile.mkdtemp(prefix="rmtest-logs-")
res = run(rid, ["-n", "1", "--log-dir", logs, "--worker-prefix", "<%w|%s> ", "--"] +
          engine_cmd("--method", "spawn", "--workers", "2"), env=env)
check(res.rc == 0, "exit status 0")
check("<w0|err> worker 0 formed the group" in res.stderr and "<w1|err> worker 1 formed the group" in res.stderr,
      "--worker-prefix's template, %w and %s expanded")
pids = worker_pids_from_stdout(res.stdout)
for i, pid in pids.items():
    path = os.path.join(logs, rid, "rank-0.worker-%d.err" % pid)
    check(os.path.exists(path) and "worker %d formed the group\n" % i in open(path).read(),
          "--log-dir: worker %d's raw stderr in %s" % (i, path))
check_nothing_left(rid)
finish()
