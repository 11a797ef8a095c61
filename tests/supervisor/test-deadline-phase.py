#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# --phase-timeout NAME=SECS: a rank in phase NAME longer ends the job (124);
# a phase that ended, or another phase, is not held to it; a name given
# twice takes the last value.
import re
from rmtest import *

rid = run_id("deadline-phase")
res = run(rid, ["-n", "3", "--phase-timeout", "load-weights=100", "--phase-timeout", "load-weights=1",
                "--phase-timeout", "warmup=100", "--", FAKE, "--rank", "0", "script", "phase=load-weights", "hang",
                "--others", "script", "phase=load-weights", "end=load-weights", "phase=warmup", "hang"],
          env=clean_env())
check(res.rc == 124, "exit status 124")
check(1.0 <= res.elapsed < 30, "not before the limit (%.3f s)" % res.elapsed)
check(re.search(r"======== run %s: rank 0 stuck in phase load-weights for ([\d.]+) s "
                r"\(--phase-timeout load-weights=1\); ranks 1,2 in phase warmup for [\d.]+ s ========" % rid,
                res.stderr), "the headline: rank 0 stuck in load-weights, the others in warmup")
check("deadline: --phase-timeout load-weights=1 passed at" in res.stderr, "the deadline line")
r = res.report
d = r["deadline"]
check(d["kind"] == "phase-timeout" and d["ranks"] == [0] and d["phase"] == "load-weights" and d["limit_s"] == 1.0,
      "deadline object: phase-timeout, rank 0, load-weights, 1 s")
e = rank_entry(r, 0)
check(d["time_s"] - e["phase_started_s"] >= 1.0, "fired at least 1 s after the phase began")
check(r["deadline_limits"]["phase_timeouts"] == {"load-weights": 1.0, "warmup": 100.0},
      "limits: the last value of a repeated name (%s)" % r["deadline_limits"]["phase_timeouts"])
check_nothing_left(rid)

# A phase with no limit runs as long as it likes; the job ends by itself.
rid = run_id("deadline-phase-other")
res = run(rid, ["-n", "2", "--phase-timeout", "load-weights=0.3", "--", FAKE, "script", "phase=load-weights",
                "end=load-weights", "phase=compile", "sleep=1", "end=compile", "exit=0"], env=clean_env())
check(res.rc == 0 and res.report["deadline"] is None, "ended and unlimited phases: no deadline, exit 0")
check_nothing_left(rid)
finish()
