#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Reproduce the seed: TP=4, rank 2 hangs in NCCL initialisation (its CPU at
# 100%, as the stuck GPU's rank is), while ranks 0, 1 and 3 got through
# their side of the init, said READY, and wait at a barrier as NCCL's first
# collective would (blocked on a FIFO that rank 2 never opens: idle).
#
# Under ringmaster that must end, within --straggler-timeout + 1 s of the
# others reaching READY, in a report that names rank 2, its phase, and what
# it was doing (the diagnosis: /proc state now, its stack once
# supervisor/diagnose.[ch] lands), every process gone, exit status 124.
import re
import tempfile
import time
from rmtest import *

T = 2.0
tmp = tempfile.mkdtemp(prefix="rmtest-")
barrier = os.path.join(tmp, "nccl-barrier")
os.mkfifo(barrier)
rid = run_id("seed")
rp = os.path.join(tmp, "r.json")
stuck = ["phase=cuda-init", "end=cuda-init", "phase=nccl-init", "spin"]
# The stamp comes just before warmup, the first milestone rank 2 is short of: the straggler clock starts after it.
waiting = ["phase=cuda-init", "end=cuda-init", "phase=nccl-init", "end=nccl-init", "stamp=ahead", "phase=warmup",
           "end=warmup", "ready", "wait-fifo=" + barrier]
p = start(rid, ["-n", "4", "--straggler-timeout", str(T), "--grace", "5", "--", FAKE, "--rank", "2", "script"] +
          stuck + ["--others", "script"] + waiting, env=clean_env(), report_path=rp)
out, err = p.communicate(timeout=TIMEOUT)
end = time.monotonic_ns()
res = Result(p.returncode, out, err, read_report(rp), 0)
res.dump()

check(res.rc == 124, "exit status 124 (a deadline), not a crash status")
stamps = [int(s) for s in re.findall(r"stamp ahead (\d+)", res.stderr)]
require(len(stamps) == 3, "ranks 0, 1, 3 got ahead of rank 2 (3 stamps, got %d)" % len(stamps))
over = (end - min(stamps)) / 1e9
check(T <= over <= T + 1.0, "over %.3f s after the first rank got ahead: within --straggler-timeout (%.0f s) + 1 s"
      % (over, T))

m = re.search(r"======== run %s: rank 2 stuck in phase nccl-init for ([\d.]+) s; ranks 0,1,3 reached READY "
              r"([\d.]+) s ago ========" % rid, res.stderr)
check(m is not None, "the headline names rank 2, its phase, and the ranks that were ready")
check(m is not None and float(m.group(1)) >= T and float(m.group(2)) >= T, "with times of at least the limit")
m = re.search(r"rank 2 \(pid (\d+)\) LATE: in phase nccl-init for [\d.]+ s; not ready; at the deadline: state R",
              res.stderr)
check(m is not None, "the per-rank section: rank 2 late, in nccl-init, running (state R) when looked at")
for i in (0, 1, 3):
    check(re.search(r"rank %d \(pid \d+\): after phase warmup .*; ready at [\d.]+ s; at the deadline: state S" % i,
                    res.stderr), "rank %d: ready, asleep at the barrier" % i)
r = res.report
require(r is not None, "JSON report written")
d = r["deadline"]
check(d["kind"] == "straggler-timeout" and d["ranks"] == [2] and d["phase"] == "nccl-init" and
      d["reached_ranks"] == [0, 1, 3] and d["limit_s"] == T, "JSON deadline: rank 2 in nccl-init, 0,1,3 ahead")
e = rank_entry(r, 2)
check(e["phase"] == "nccl-init" and e["phase_ended_s"] is None and e["ready"] is False, "JSON: rank 2 in nccl-init")
check(e["diagnosis"] is not None and e["diagnosis"]["state"] == "R", "JSON: rank 2 diagnosed while running")
# Once supervisor/diagnose.[ch] lands the diagnosis carries a stack too; when it does, it must be there.
if e["diagnosis"] and any(k in e["diagnosis"] for k in ("stack", "native_stack", "threads")):
    check(any(e["diagnosis"].get(k) for k in ("stack", "native_stack", "threads")), "JSON: rank 2's stack")
pids = [rank_entry(r, i)["pid"] for i in range(4)]
check(wait_gone(pids, 10.0) is not None, "every rank is gone")
check_nothing_left(rid)
finish()
