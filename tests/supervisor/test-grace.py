#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Ranks that ignore SIGTERM are killed with SIGKILL once --grace runs out.
import re
import tempfile
import time
from rmtest import *

tmp = tempfile.mkdtemp(prefix="rmtest-")
ready, go = Fifo(tmp), GoFifo(tmp)
rid = run_id("grace")
p = start(rid, ["-n", "3", "--grace", "1", "--", FAKE, "--ready", ready.path, "--go", go.path, "--rank", "0",
                "exit", "5", "--others", "ignore-term"], env=clean_env(), report_path=os.path.join(tmp, "r.json"))
pids = wait_ready(ready, 3)          # SIGTERM is ignored by now
t0 = time.monotonic()
go.go()
out, err = p.communicate(timeout=TIMEOUT)
elapsed = time.monotonic() - t0
res = Result(p.returncode, out, err, read_report(os.path.join(tmp, "r.json")), elapsed)
res.dump()
check(res.rc == 5, "exit status 5 (rank 0's)")
check(elapsed >= 0.9, "the grace was waited for (%.3f s)" % elapsed)
check(elapsed < 30, "and not much longer (%.3f s)" % elapsed)
check("2 process(es) still running after the 1.0 s grace: sending SIGKILL" in res.stderr, "says it sends SIGKILL")
for k in (1, 2):
    check(re.search(r"rank %d \(pid %d\): killed by SIGKILL" % (k, pids[k]), res.stderr),
          "rank %d killed by SIGKILL" % k)
    e = rank_entry(res.report, k)
    check(e["signal_name"] == "SIGKILL" and e["signal_sent"] == "SIGKILL", "JSON rank %d SIGKILL" % k)
check_nothing_left(rid)
finish()
