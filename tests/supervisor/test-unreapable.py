#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A rank that survives SIGKILL (as one stuck in D state does) cannot wedge
# ringmaster: after --kill-timeout it gives up, reports the rank's state and
# wait channel, and exits.  A process in D state cannot be made on demand,
# so the test-only RINGMASTER_TEST_KILL_SIGNAL swaps SIGKILL for SIGCONT,
# which the rank survives; it dies later with ringmaster (PR_SET_PDEATHSIG).
import re
import tempfile
import time
from rmtest import *

tmp = tempfile.mkdtemp(prefix="rmtest-")
ready, go = Fifo(tmp), GoFifo(tmp)
rid = run_id("unreapable")
rp = os.path.join(tmp, "r.json")
p = start(rid, ["-n", "2", "--grace", "0.5", "--kill-timeout", "1", "--", FAKE, "--ready", ready.path, "--go",
                go.path, "--rank", "0", "exit", "7", "--others", "ignore-term"],
          env=clean_env(RINGMASTER_TEST_KILL_SIGNAL=str(int(signal.SIGCONT))), report_path=rp)
pids = wait_ready(ready, 2)
t0 = time.monotonic()
go.go()
out, err = p.communicate(timeout=TIMEOUT)
elapsed = time.monotonic() - t0
res = Result(p.returncode, out, err, read_report(rp), elapsed)
res.dump()
check(res.rc == 7, "exit status 7 (the first failure's), despite the stuck rank")
check(1.4 <= elapsed < 30, "bounded: grace 0.5 s + kill timeout 1 s (%.3f s)" % elapsed)
check(re.search(r"rank 1 \(pid %d\) is still there 1.0 s after SIGKILL \(state [A-Z], in [^)]*\): cannot reap it"
                % pids[1], res.stderr), "says it cannot reap rank 1")
check(re.search(r"rank 1 \(pid %d\): could not be reaped after SIGKILL: state [A-Z], waiting in " % pids[1],
                res.stderr), "the report lists it")
e = rank_entry(res.report, 1)
check(e["state"] == "unreapable" and e["unreapable"] and e["unreapable"]["state"].isalpha(),
      "JSON: rank 1 unreapable, with its state")
check(res.report["shm"]["segment"] and segments_of(rid) == [],
      "the segment is unlinked even so")
took = wait_gone([pids[1]], 10.0)
check(took is not None, "the stuck rank died with ringmaster (PR_SET_PDEATHSIG)")
check_nothing_left(rid)
finish()
