#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A rank leaves a grandchild behind (in its own session, out of reach of any
# group signal) and exits 0.  ringmaster, a child subreaper, inherits it,
# kills and reaps it: nothing is left, and the job still succeeds.
import tempfile
import time
from rmtest import *

tmp = tempfile.mkdtemp(prefix="rmtest-")
pidfile = os.path.join(tmp, "grandchild.pid")
rid = run_id("orphan")
res = run(rid, ["-n", "2", "--grace", "2", "--", FAKE, "--rank", "0", "orphan", pidfile, "--others", "true"],
          env=clean_env())
check(res.rc == 0, "exit status 0: leftovers do not make the job fail")
require(os.path.exists(pidfile), "the grandchild wrote its pid")
gpid = int(open(pidfile).read())
check(not os.path.exists("/proc/%d" % gpid), "grandchild %d is gone (killed and reaped)" % gpid)
check(res.report["orphans"]["seen"] >= 1 and res.report["orphans"]["unreapable"] == [],
      "JSON: orphan seen, none unreapable")
check_nothing_left(rid)

# The same while the job fails: the orphan goes with the teardown.
pidfile2 = os.path.join(tmp, "grandchild2.pid")
ready, go = Fifo(tmp), GoFifo(tmp)
rid = run_id("orphan-fail")
p = start(rid, ["-n", "2", "--", FAKE, "--ready", ready.path, "--go", go.path, "--rank", "1", "exit", "4",
                "--others", "orphan", pidfile2], env=clean_env(), report_path=os.path.join(tmp, "r.json"))
wait_ready(ready, 2)
deadline = time.monotonic() + TIMEOUT
while not os.path.exists(pidfile2) and time.monotonic() < deadline:
    time.sleep(0.01)    # the grandchild's pid file: written once, then the worker exits
go.go()
out, err = p.communicate(timeout=TIMEOUT)
Result(p.returncode, out, err, None, 0).dump()
check(p.returncode == 4, "failing job: exit status 4")
gpid = int(open(pidfile2).read())
check(not os.path.exists("/proc/%d" % gpid), "failing job: grandchild %d gone" % gpid)
check_nothing_left(rid)
finish()
