#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# --ready-timeout: a rank not READY in time ends the job with exit status 124
# and a report naming it, its phase and progress, and the ranks that were
# ready; every process is gone.
import re
from rmtest import *

rid = run_id("deadline-ready")
res = run(rid, ["-n", "3", "--ready-timeout", "1", "--", FAKE, "--rank", "1", "script", "phase=load-weights",
                "progress=2/5", "hang", "--others", "script", "phase=load-weights", "end=load-weights", "ready",
                "hang"], env=clean_env())
check(res.rc == 124, "exit status 124")
check(1.0 <= res.elapsed < 30, "not before the limit, not much after (%.3f s)" % res.elapsed)
m = re.search(r"======== run %s: rank 1 not ready ([\d.]+) s after the start \(--ready-timeout 1\): in phase "
              r"load-weights for ([\d.]+) s \(progress 2/5\); ranks 0,2 reached READY ([\d.]+) s ago ========" % rid,
              res.stderr)
check(m is not None, "the headline names rank 1, its phase and progress, and the ready ranks")
check(m is not None and float(m.group(1)) >= 1.0, "at least the limit after the start")
check("exit status 124 (a deadline passed: --ready-timeout)" in res.stderr, "the last line says why")
check(re.search(r"rank 1 \(pid \d+\) LATE: in phase load-weights for [\d.]+ s \(progress 2/5\); not ready",
                res.stderr), "the per-rank section marks rank 1 late")
r = res.report
require(r is not None, "JSON report written")
d = r["deadline"]
check(r["outcome"] == "deadline" and r["exit_status"] == 124 and r["exit_status_rank"] is None and
      r["first_failure"] is None, "outcome deadline, 124, no failed rank")
check(d is not None and d["kind"] == "ready-timeout" and d["ranks"] == [1] and d["limit_s"] == 1.0 and
      d["phase"] == "load-weights" and d["trigger"] is False, "deadline object: ready-timeout, rank 1, its phase")
check(d["time_s"] >= d["due_s"] >= 1.0 and d["attempt_time_s"] >= 1.0, "fired at or after it was due")
check(d["message"] in res.stderr, "the JSON message is the headline")
e = rank_entry(r, 1)
check(e["ready"] is False and e["phase"] == "load-weights" and e["progress"]["done"] == 2, "rank 1: not ready")
check(e["diagnosis"] is not None and e["diagnosis"]["state"].isalpha(), "rank 1 was looked at before the signal")
for i in (0, 2):
    check(rank_entry(r, i)["ready"] is True, "rank %d ready" % i)
for i in range(3):
    check(rank_entry(r, i)["signal_sent"] == "SIGTERM" and rank_entry(r, i)["state"] == "signalled",
          "rank %d stopped with SIGTERM" % i)
check_nothing_left(rid)

# Nobody ready, no phase: every rank late, listed.
rid = run_id("deadline-ready-none")
res = run(rid, ["-n", "2", "--ready-timeout", "0.5", "--", FAKE, "hang"], env=clean_env())
check(res.rc == 124 and res.report["deadline"]["ranks"] == [0, 1], "every rank late when none is ready")
check(re.search(r"ranks 0,1 not ready [\d.]+ s after the start \(--ready-timeout 0.5\): rank 0 before any phase for "
                r"[\d.]+ s, rank 1 before any phase for [\d.]+ s", res.stderr), "both described")
check_nothing_left(rid)
finish()
