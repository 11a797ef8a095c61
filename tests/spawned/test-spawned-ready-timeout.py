#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# --ready-timeout applies per worker (no torch: the workers form no group).
# -n 2: each rank's engine starts 3 multiprocessing workers that say
# READY=1, but rank 1's worker 2 enters phase load-weights and never does.
# Every rank is ready (its workers' READY counts for it), so only the
# worker's own deadline can catch it: within --ready-timeout + 1 s of its
# start the headline names it (its pid, its parent, where it is) and its
# ready siblings, the JSON deadline lists it, and it is diagnosed first.
# Without the per-worker deadline nothing fires and the run ends with 0
# after --serve.
import re
from spawntest import *

T = 3.0
env = clean_env()
rid, res = run_ringmaster("spawned-ready", ["-n", "2", "--ready-timeout", str(T), "--grace", "5", "--"] +
          engine_cmd("--method", "spawn", "--workers", "3", "--no-group", "--say-ready", "--never-ready", "1:2",
                     "--serve", "30"), env)
r = res.report
check(res.rc == 124, "exit status 124 (a deadline)")
workers = r.get("workers") or []
late = [w for w in workers if w["rank"] == 1 and w["name"] == "Worker-2"]
require(len(late) == 1, "JSON: rank 1's Worker-2 announced")
w2 = late[0]
m = re.search(r"======== run %s: worker p(\d+) \(pid (\d+), child of rank 1\) not ready after ([\d.]+) s "
              r"\(--ready-timeout 3\): in phase load-weights for [\d.]+ s; ready: (p\d+),(p\d+) ========" % rid,
              res.stderr)
check(m is not None, "the headline names the late worker, its parent, its phase and its ready siblings")
check(m is not None and int(m.group(2)) == w2["pid"], "with its pid")
check(m is not None and T <= float(m.group(3)) <= T + 1.0, "named within --ready-timeout + 1 s of its start")
siblings = sorted("p%d" % w["pid"] for w in workers if w["rank"] == 1 and w["name"] in ("Worker-0", "Worker-1"))
check(m is not None and sorted([m.group(4), m.group(5)]) == siblings, "the ready ones are its siblings")
d = r["deadline"]
check(d["kind"] == "ready-timeout" and d["limit_s"] == T and d["phase"] == "load-weights",
      "JSON: a ready deadline, in load-weights: %r" % d)
check(d.get("workers") == [w2["id"]], "JSON: the deadline names that worker only")
check(w2["ready_said_s"] is None and all(w["ready_said_s"] is not None for w in workers
                                         if w["name"] in ("Worker-0", "Worker-1")),
      "JSON: the siblings said READY, it did not")
i = res.stderr.find("---- worker p%d (pid %d" % (w2["pid"], w2["pid"]))
check(i >= 0 and all(res.stderr.find("---- worker p%d (" % w["pid"]) > i for w in workers if w is not w2
                     and res.stderr.find("---- worker p%d (" % w["pid"]) >= 0), "the late worker diagnosed first")
check(wait_gone([w["pid"] for w in workers], 10.0) is not None, "every worker is gone")
check_nothing_left(rid)
finish()
