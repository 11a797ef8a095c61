#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The case: `ringmaster run -n 1 -- python3 engine.py`, whose
# torch.multiprocessing.spawn starts 4 gloo workers; worker 2 sleeps before
# init_process_group.  With only the default deadlines (straggler 60 s; 4 s
# here), ringmaster must end the run within the straggler timeout + 1 s of
# the first worker entering dist-init, with a headline that names worker 2
# of 4, its pid and its parent, the workers that wait, worker 2's Python
# traceback (faulthandler, from its own stderr) first among the diagnoses,
# every worker's lines under its own prefix, and nothing left behind.
import re
from spawntest import *

T = 4.0
env = torch_env()
method = sys.argv[1] if len(sys.argv) > 1 else "torch-spawn"
rid, res = run_ringmaster("spawned-straggler", ["-n", "1", "--straggler-timeout", str(T), "--grace", "5", "--"] +
                          engine_cmd("--method", method, "--workers", "4", "--sleep-before-init", "2:0"), env)
r = res.report
check(res.rc == 124, "exit status 124 (a deadline)")
pids = worker_pids_from_stdout(res.stdout)
require(len(pids) == 4, "the 4 workers said they were up: %r" % pids)
m = re.search(r"======== run %s: worker 2 of 4 \(pid (\d+), child of rank 0\) never entered dist-init; "
              r"workers 0,1,3 waiting ([\d.]+) s ========" % rid, res.stderr)
check(m is not None, "the headline names worker 2 of 4, its pid and parent, and the workers waiting")
check(m is not None and int(m.group(1)) == pids[2], "with worker 2's pid")
check(m is not None and T <= float(m.group(2)) <= T + 1.0, "named within --straggler-timeout + 1 s")
d = r["deadline"]
check(d["kind"] == "straggler-timeout" and d["limit_s"] == T, "JSON: a straggler deadline")
w2 = worker_entry(r, pids[2])
require(w2 is not None, "JSON: worker 2 in workers[]")
check(d.get("workers") == [w2["id"]], "JSON: the deadline names worker 2")
check(w2["label"] == "w2" and w2["group"] is None and w2["rank"] == 0, "JSON: worker 2 joined no group")
for i in (0, 1, 3):
    e = worker_entry(r, pids[i])
    check(e is not None and e["group"] is not None and e["group"]["rank"] == i and e["group"]["world"] == 4 and
          e["phase"] == "dist-init", "JSON: worker %d in the group, in dist-init" % i)
    check_prefixed(res.stdout, i, "worker %d pid %d up" % (i, pids[i]))
check_prefixed(res.stdout, 2, "worker 2 sleeps before init_process_group")
g = r["worker_groups"]
check(len(g) == 1 and g[0]["world"] == 4 and g[0]["members"] == [pids[0], pids[1], None, pids[3]],
      "JSON: one group of 4, member 2 missing")
# The diagnosis: worker 2 first, with its own traceback.
i = res.stderr.find("---- worker 2 of 4 (pid %d" % pids[2])
check(i >= 0, "worker 2 diagnosed")
others = [res.stderr.find("---- worker %d of 4 (pid %d" % (k, pids[k])) for k in (0, 1, 3)]
check(i >= 0 and all(o > i for o in others), "worker 2's diagnosis comes first, then the others'")
section = res.stderr[i:min([o for o in others if o > i] or [len(res.stderr)])]
check("Python traceback (faulthandler" in section and "in work" in section and "sleep" in section,
      "worker 2's Python traceback, in work(), sleeping")
check(w2["diagnosis"] is not None and any("in work" in l for l in w2["diagnosis"]["python_traceback"]),
      "JSON: worker 2's traceback")
check(wait_gone(list(pids.values()), 10.0) is not None, "every worker is gone")
check_nothing_left(rid)
finish()
