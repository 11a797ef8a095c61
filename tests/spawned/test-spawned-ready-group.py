#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# --ready-timeout per worker, vLLM's way: no worker says READY, a worker is
# ready once its init_process_group returned.  -n 1; the engine says READY
# itself once its 4 gloo workers started (a launcher's READY), so the rank
# is ready; worker 2 sleeps 20 s before init_process_group, far past
# --ready-timeout (the straggler timeout is far away).  The worker deadline
# fires: the headline names worker 2 of 4 first (the one the group misses),
# then the members waiting in dist-init, and worker 2 is diagnosed first.
import re
from spawntest import *

T = 3.0
env = torch_env()
rid, res = run_ringmaster("spawned-ready-group",
                          ["-n", "1", "--ready-timeout", str(T), "--straggler-timeout", "600", "--grace", "5", "--"] +
                          engine_cmd("--method", "fork", "--workers", "4", "--sleep-before-init", "2:20",
                                     "--engine-ready", "--preload-torch"), env)
r = res.report
check(res.rc == 124, "exit status 124 (a deadline)")
pids = worker_pids_from_stdout(res.stdout)
require(len(pids) == 4, "the 4 workers said they were up: %r" % pids)
m = re.search(r"======== run %s: worker 2 of 4 \(pid (\d+), child of rank 0\) not ready after ([\d.]+) s "
              r"\(--ready-timeout 3\): before any phase for [\d.]+ s; also not ready: "
              r"worker 0 in phase dist-init for [\d.]+ s, worker 1 in phase dist-init for [\d.]+ s, "
              r"worker 3 in phase dist-init for [\d.]+ s ========" % rid, res.stderr)
check(m is not None, "the headline names worker 2 of 4 first, then the members waiting in dist-init")
check(m is not None and int(m.group(1)) == pids[2], "with worker 2's pid")
check(m is not None and T <= float(m.group(2)) <= T + 1.0, "within --ready-timeout + 1 s of its start")
d = r["deadline"]
w2 = worker_entry(r, pids[2])
require(w2 is not None, "JSON: worker 2 in workers[]")
check(d["kind"] == "ready-timeout" and d.get("workers", [None])[0] == w2["id"] and len(d["workers"]) == 4,
      "JSON: a ready deadline, worker 2 first of the 4 late: %r" % d)
i = res.stderr.find("---- worker 2 of 4 (pid %d" % pids[2])
others = [res.stderr.find("---- worker %d of 4 (pid %d" % (k, pids[k])) for k in (0, 1, 3)]
check(i >= 0 and all(o > i for o in others), "worker 2's diagnosis comes first, then the others'")
check(wait_gone(list(pids.values()), 10.0) is not None, "every worker is gone")
check_nothing_left(rid)
finish()
