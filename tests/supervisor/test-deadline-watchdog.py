#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# --watchdog SECS: a ready rank that sends no WATCHDOG=1 for that long is
# hung (124); ranks that keep sending are fine.  WATCHDOG=trigger fails at
# once, with or without --watchdog.  STOPPING=1 ends a rank's watchdog.
import re
from rmtest import *

rid = run_id("watchdog")
res = run(rid, ["-n", "3", "--watchdog", "1", "--", FAKE, "--rank", "1", "script", "ready", "watchdog", "hang",
                "--others", "script", "ready", "heartbeat=0.1"], env=clean_env())
check(res.rc == 124, "exit status 124")
check(1.0 <= res.elapsed < 30, "not before the limit (%.3f s)" % res.elapsed)
check(re.search(r"======== run %s: rank 1 sent no WATCHDOG=1 for ([\d.]+) s \(--watchdog 1\); ranks 0,2 reached "
                r"READY [\d.]+ s ago ========" % rid, res.stderr), "the headline names rank 1")
d = res.report["deadline"]
check(d["kind"] == "watchdog" and d["ranks"] == [1] and d["trigger"] is False and d["limit_s"] == 1.0,
      "deadline object: watchdog, rank 1")
e = rank_entry(res.report, 1)
check(d["time_s"] - e["last_watchdog_s"] >= 1.0, "at least 1 s after its last WATCHDOG=1")
check(all(rank_entry(res.report, i)["last_watchdog_s"] is not None for i in range(3)), "every rank pinged")
check_nothing_left(rid)

# WATCHDOG=trigger: at once, without --watchdog, with the rank's status.
rid = run_id("watchdog-trigger")
res = run(rid, ["-n", "2", "--", FAKE, "--rank", "0", "script", "ready", "status=lost the GPU", "trigger", "hang",
                "--others", "script", "ready", "hang"], env=clean_env())
check(res.rc == 124, "exit status 124")
check(res.elapsed < 30, "at once (%.3f s)" % res.elapsed)
check(re.search(r"rank 0 sent WATCHDOG=trigger \(status: lost the GPU\)", res.stderr),
      "the headline: a trigger, with the status")
d = res.report["deadline"]
check(d["kind"] == "watchdog" and d["trigger"] is True and d["limit_s"] is None and d["ranks"] == [0], "trigger")
check_nothing_left(rid)

# STOPPING=1: no watchdog while the rank shuts down.
rid = run_id("watchdog-stopping")
res = run(rid, ["-n", "1", "--watchdog", "0.3", "--", FAKE, "script", "ready", "stopping", "sleep=1", "exit=0"],
          env=clean_env())
check(res.rc == 0 and res.report["deadline"] is None, "a stopping rank has no watchdog")
check_nothing_left(rid)
finish()
