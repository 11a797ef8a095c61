#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The deadline path: ranks that never report READY pass --ready-timeout;
# before any signal every rank is diagnosed (job_diagnose(), reason
# "deadline"), the failure report prints each diagnosis with its native
# stack, the JSON has it, and the job still ends promptly with status 124.
import tempfile
from diagtest import *

tmp = tempfile.mkdtemp(prefix="rmtest-")
ready = Fifo(tmp)
rid = run_id("diag-deadline")
rp = os.path.join(tmp, "r.json")
p = start(rid, ["-n", "2", "--ready-timeout", "2", "--grace", "1", "--stack-timeout", "30", "--diagnose-timeout", "40",
                "--", HANG, "--ready", ready.path, "--threads", "1", "futex", "read"], env=clean_env(), report_path=rp, stdout=subprocess.DEVNULL)
err = StderrReader(p)
pids = wait_ready(ready, 2)
t0 = time.monotonic()
rc = p.wait(timeout=TIMEOUT)
took = time.monotonic() - t0
text = err.read_to_eof()
log(text)
check(rc == 124, "exit status 124: a deadline passed (%s)" % rc)
check(took < 2 + 40 + 1 + 10, "over within the deadline, the diagnosis bound and the grace (%.2f s)" % took)
for rank, mode in enumerate(["futex", "read"]):
    sec = rank_section(text, rank)
    check("(deadline)" in sec, "rank %d: a diagnosis before the teardown, in the report" % rank)
    check(re.search(r"process %d \(hang-worker\): S \(sleeping\) in %s" % (pids[rank], mode), sec),
          "rank %d: /proc says %s" % (rank, mode))
    check("before any phase for" in sec, "rank %d: where it stood (no phase reported)" % rank)
    if have("eu-stack") or have("gdb"):
        check("hang_in_" + mode in sec, "rank %d: its native stack names hang_in_%s" % (rank, mode))
report = read_report(rp)
require(report is not None, "JSON report written")
for rank, mode in enumerate(["futex", "read"]):
    d = report["ranks"][rank]["diagnosis"]
    require(d is not None, "JSON: rank %d has a diagnosis" % rank)
    check(d["reason"] == "deadline" and d["syscall"] == mode and len(d["threads"]) == 2,
          "JSON: rank %d: reason deadline, in %s, 2 threads" % (rank, mode))
    check(d["position"].startswith("before any phase for"), "JSON: rank %d: position" % rank)
    check(report["ranks"][rank]["signal_name"] == "SIGTERM", "rank %d: stopped by the teardown after it" % rank)
check(report["orphans"]["seen"] == 0, "JSON: no orphans (the stack tools are not)")
check_nothing_left(rid)
ready.close()
finish()
