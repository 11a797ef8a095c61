#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# SIGTERM (or SIGINT, SIGHUP, SIGQUIT) to ringmaster is forwarded to every
# rank's process group; ringmaster exits 128 + the signal.
import re
import tempfile
from rmtest import *

tmp = tempfile.mkdtemp(prefix="rmtest-")
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
    name = signal.Signals(sig).name
    ready = Fifo(tmp, "ready-" + name)
    rid = run_id("stop-" + name.lower())
    rp = os.path.join(tmp, name + ".json")
    p = start(rid, ["-n", "3", "--", FAKE, "--ready", ready.path, "hang"], env=clean_env(), report_path=rp)
    pids = wait_ready(ready, 3)
    p.send_signal(sig)
    out, err = p.communicate(timeout=TIMEOUT)
    res = Result(p.returncode, out, err, read_report(rp), 0)
    res.dump()
    check(res.rc == 128 + sig, "%s: exit status %d" % (name, 128 + sig))
    check(("received %s: stopping the ranks" % name) in res.stderr, "%s: says so" % name)
    check(("stopped by %s" % name) in res.stderr, "%s: report headline" % name)
    r = res.report
    check(r["outcome"] == "stopped" and r["stop_signal"] == name and r["first_failure"] is None,
          "%s: JSON outcome stopped" % name)
    for k in range(3):
        e = rank_entry(r, k)
        check(e["signal_name"] == name and e["signal_sent"] == name, "%s: rank %d got it forwarded" % (name, k))
        check(not os.path.exists("/proc/%d" % pids[k]), "%s: rank %d gone" % (name, k))
    check_nothing_left(rid)
finish()
