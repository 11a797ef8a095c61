#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# --straggler-timeout: a rank still short of a milestone that long after the
# first rank reached it.  Milestones are phases in the order ranks first
# entered them, then READY; a rank that skipped a phase but went further is
# not short of it.  A deadline is a failure for --max-restarts.
import re
from rmtest import *

# Ranks 0,1: a, b, c.  Rank 2: a, c (skips b: not late).  Rank 3: a only: late, short of b.
rid = run_id("straggler-phase")
res = run(rid, ["-n", "4", "--straggler-timeout", "1", "--", FAKE, "--rank", "3", "script", "phase=a", "hang",
                "--others", "script", "phase=a", "sleep=0.05", "phase=b", "sleep=0.05", "phase=c", "hang"],
          env=clean_env())
# Rank 2 runs the same script as 0 and 1 here; the skip is checked in the next run.
check(res.rc == 124, "exit status 124")
check(1.0 <= res.elapsed < 30, "not before the limit (%.3f s)" % res.elapsed)
check(re.search(r"======== run %s: rank 3 stuck in phase a for ([\d.]+) s; ranks 0-2 reached phase b ([\d.]+) s "
                r"ago ========" % rid, res.stderr), "headline: rank 3 stuck in a; ranks 0-2 reached b")
d = res.report["deadline"]
check(d["kind"] == "straggler-timeout" and d["ranks"] == [3] and d["target"] == "phase" and
      d["target_phase"] == "b" and d["phase"] == "a" and d["reached_ranks"] == [0, 1, 2] and d["limit_s"] == 1.0,
      "deadline object: rank 3, in a, short of b, reached by 0-2")
check(d["time_s"] - d["reached_s"] >= 1.0, "fired at least 1 s after b was first reached")
check([m["phase"] for m in res.report["milestones"]] == ["a", "b", "c"], "milestones a, b, c")
check_nothing_left(rid)

# Skipping a phase is not straggling: rank 1 goes a, c while rank 0 goes a, b, c.  Both then exit 0.
rid = run_id("straggler-skip")
res = run(rid, ["-n", "2", "--straggler-timeout", "0.5", "--", FAKE, "--rank", "1", "script", "phase=a", "sleep=0.2",
                "phase=c", "sleep=1", "exit=0", "--others", "script", "phase=a", "phase=b", "sleep=0.1", "phase=c",
                "sleep=1", "exit=0"], env=clean_env())
check(res.rc == 0 and res.report["deadline"] is None, "a rank that went further than a phase is not short of it")
check_nothing_left(rid)

# Short of READY: two ranks ready, one still loading.
rid = run_id("straggler-ready")
res = run(rid, ["-n", "3", "--straggler-timeout", "1", "--", FAKE, "--rank", "0", "script", "phase=load-weights",
                "progress=1/8", "hang", "--others", "script", "ready", "hang"], env=clean_env())
check(res.rc == 124, "exit status 124")
check(re.search(r"rank 0 stuck in phase load-weights for [\d.]+ s \(progress 1/8\); ranks 1,2 reached READY "
                r"([\d.]+) s ago", res.stderr), "headline: rank 0 short of READY")
d = res.report["deadline"]
check(d["target"] == "ready" and d["target_phase"] is None and d["reached_ranks"] == [1, 2], "target READY")
check_nothing_left(rid)

# A deadline is a failure for --max-restarts: two attempts, both stuck, exit 124, both recorded.
rid = run_id("straggler-restart")
res = run(rid, ["-n", "2", "--straggler-timeout", "0.5", "--max-restarts", "1", "--", FAKE, "--rank", "1", "script",
                "hang", "--others", "script", "ready", "hang"], env=clean_env())
check(res.rc == 124 and res.report["restart_count"] == 1, "restarted once, then 124")
a = res.report["attempts"]
check(len(a) == 2 and all(x["deadline"] == "straggler-timeout" and x["failed_rank"] is None for x in a),
      "both attempts ended by the straggler deadline")
check(re.search(r"attempt 1: deadline passed \(--straggler-timeout\): rank 1 stuck before any phase for [\d.]+ s; rank 0 reached READY", res.stderr),
      "the report tells the first attempt's deadline")
check_nothing_left(rid)

# --straggler-timeout 0 turns it off (here --ready-timeout ends the job instead).
rid = run_id("straggler-off")
res = run(rid, ["-n", "2", "--straggler-timeout", "0", "--ready-timeout", "1.5", "--", FAKE, "--rank", "1", "script",
                "hang", "--others", "script", "ready", "hang"], env=clean_env())
check(res.rc == 124 and res.report["deadline"]["kind"] == "ready-timeout", "0: no straggler deadline")
check(res.report["deadline_limits"]["straggler_timeout_s"] is None, "limits: straggler off")
check_nothing_left(rid)
finish()
