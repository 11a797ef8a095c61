#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A worker's EXTEND_TIMEOUT_USEC moves its own deadline (no torch: the
# workers form no group).  -n 1, an engine with 3 multiprocessing workers
# that say READY=1, --ready-timeout 2:
#  - worker 1 extends by 6 s and says READY=1 4 s late: nothing fires, the
#    run ends with 0 (before, its own --ready-timeout caught it at 2 s);
#  - worker 1 extends by 3 s and never gets ready: named when the extension
#    runs out (about 3 s after its start, not 2), with extended_until_s in
#    its JSON.
import re
from spawntest import *

T = 2.0
env = clean_env()
common = ["--method", "spawn", "--workers", "3", "--no-group", "--say-ready"]

rid, res = run_ringmaster("spawned-extend-ok", ["-n", "1", "--ready-timeout", str(T), "--grace", "5", "--"] +
                          engine_cmd(*common, "--extend", "1:6", "--ready-after", "1:4", "--serve", "1"), env)
r = res.report
check(res.rc == 0, "extended past its --ready-timeout, ready late: exit 0 (got %d)" % res.rc)
check(r.get("deadline") is None, "JSON: no deadline fired: %r" % r.get("deadline"))
w1 = [w for w in r.get("workers") or [] if w["name"] == "Worker-1"]
require(len(w1) == 1, "JSON: Worker-1 announced")
check(w1[0]["extended_until_s"] is not None and w1[0]["extended_until_s"] >= w1[0]["announced_s"] + 5.5,
      "JSON: Worker-1 extended_until_s, 6 s after its start: %r" % w1[0]["extended_until_s"])
check(w1[0]["ready_said_s"] is not None and w1[0]["ready_said_s"] >= w1[0]["announced_s"] + T,
      "JSON: Worker-1 said READY after its --ready-timeout")
check_nothing_left(rid)

rid, res = run_ringmaster("spawned-extend-late", ["-n", "1", "--ready-timeout", str(T), "--grace", "5", "--"] +
                          engine_cmd(*common, "--extend", "1:3", "--never-ready", "1", "--serve", "30"), env)
r = res.report
check(res.rc == 124, "exit status 124 (a deadline)")
w1 = [w for w in r.get("workers") or [] if w["name"] == "Worker-1"]
require(len(w1) == 1, "JSON: Worker-1 announced")
m = re.search(r"======== run %s: worker p%d \(pid %d, child of rank 0\) not ready after ([\d.]+) s "
              r"\(--ready-timeout 2, extended by its EXTEND_TIMEOUT_USEC\)" % (rid, w1[0]["pid"], w1[0]["pid"]), res.stderr)
check(m is not None, "the headline names Worker-1")
check(m is not None and 3.0 - 0.1 <= float(m.group(1)) <= 3.0 + 1.5,
      "named when its 3 s extension ran out, not at --ready-timeout 2: %s" % (m and m.group(1)))
d = r["deadline"]
check(d["kind"] == "ready-timeout" and d.get("workers") == [w1[0]["id"]], "JSON: the deadline names Worker-1: %r" % d)
check(w1[0]["extended_until_s"] is not None, "JSON: its extended_until_s")
check(wait_gone([w["pid"] for w in r.get("workers") or []], 10.0) is not None, "every worker is gone")
check_nothing_left(rid)
finish()
