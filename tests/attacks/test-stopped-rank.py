#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Weaker point: a stopped (T-state) rank gets SIGTERM but cannot act on it
# until continued: the stop waited the whole grace, then SIGKILLed it.
# ringmaster sends SIGCONT after the stop signal, as systemd does.
import tempfile
from attack import *

tmp = tempfile.mkdtemp(prefix="rmtest-")
ready = Fifo(tmp)
rid = run_id("stopped-rank")
rp = os.path.join(tmp, "r.json")
p = start(rid, ["-n", "2", "--grace", "60", "--", FAKE, "--ready", ready.path, "hang"], env=clean_env(),
          report_path=rp)
pids = wait_ready(ready, 2)
os.kill(pids[0], signal.SIGSTOP)
wait_until(lambda: open("/proc/%d/stat" % pids[0]).read().split(") ")[1][0] == "T", 10)
t0 = time.monotonic()
p.send_signal(signal.SIGTERM)
out, err = p.communicate(timeout=TIMEOUT)
took = time.monotonic() - t0
log(err.decode(errors="replace")[-2000:])
check(took < 30, "the stop took %.1f s, not the 60 s grace" % took)
rep = read_report(rp)
check(rep and rep["ranks"][0]["signal_name"] == "SIGTERM",
      "the stopped rank ended by SIGTERM, not SIGKILL (%s)" % (rep and rep["ranks"][0]["signal_name"]))
check_nothing_left(rid)
finish()
