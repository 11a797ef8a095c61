#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# EXTEND_TIMEOUT_USEC=N: none of the rank's deadlines falls within N
# microseconds of the datagram.  Without the extension the first job below
# would die at 1 s; with it, it finishes.  In the second, the extension
# moves the deadline to 3 s, where it fires.
from rmtest import *

rid = run_id("extend-ok")
res = run(rid, ["-n", "1", "--phase-timeout", "init=1", "--", FAKE, "script", "phase=init", "extend=4000000",
                "sleep=2", "end=init", "exit=0"], env=clean_env())
check(res.rc == 0 and res.report["deadline"] is None, "the extension held: exit 0 after 2 s in a 1 s phase")
e = rank_entry(res.report, 0)
check(e["extended_until_s"] is not None and e["extended_until_s"] - e["phase_started_s"] >= 4.0,
      "extended_until_s is 4 s on")
check_nothing_left(rid)

rid = run_id("extend-expires")
res = run(rid, ["-n", "1", "--phase-timeout", "init=1", "--", FAKE, "script", "phase=init", "extend=3000000", "hang"],
          env=clean_env())
check(res.rc == 124, "exit status 124 once the extension ran out")
d = res.report["deadline"]
e = rank_entry(res.report, 0)
check(d["kind"] == "phase-timeout" and d["time_s"] - e["phase_started_s"] >= 3.0,
      "fired 3 s into the phase, not 1 (%.3f s)" % (d["time_s"] - e["phase_started_s"]))
check(res.elapsed >= 3.0, "the run lasted at least 3 s (%.3f s)" % res.elapsed)
check_nothing_left(rid)

# It extends the straggler and ready deadlines too.
rid = run_id("extend-ready")
res = run(rid, ["-n", "1", "--ready-timeout", "0.5", "--", FAKE, "script", "extend=2000000", "sleep=1", "ready",
                "exit=0"], env=clean_env())
check(res.rc == 0 and res.report["deadline"] is None, "--ready-timeout extended")
check_nothing_left(rid)
finish()
