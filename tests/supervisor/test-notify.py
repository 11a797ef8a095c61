#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The notify protocol end to end, through the C API (fake-worker script):
# every key lands in the JSON report exactly (phase history in order with
# start and end, progress, status, ERRNO, STOPPING, READY and its time),
# datagrams from a rank's child and grandchild count as the rank's, the
# workers get NOTIFY_SOCKET = RINGMASTER_NOTIFY_SOCKET = <run dir>/notify,
# and the run succeeds (no deadline fires for a well-behaved job).
import tempfile
from rmtest import *

tmp = tempfile.mkdtemp(prefix="rmtest-")
told = Fifo(tmp, "told")
barrier = os.path.join(tmp, "barrier")
os.mkfifo(barrier)
rid = run_id("notify")
rp = os.path.join(tmp, "r.json")
rank0 = ["phase=cuda-init", "progress=1/4", "end=cuda-init",
         "phase=load-weights", "progress=4/4", "status=weights loaded",
         r"raw=X_RINGMASTER_PHASE_END=load-weights\nX_RINGMASTER_PHASE=warmup",
         "child=status=from a child", "grandchild=errno=5", "end=warmup", "ready",
         "tell=" + told.path, "wait-fifo=" + barrier, "stopping", "exit=0"]
rank1 = ["phase=only-rank-1", "ready", "tell=" + told.path, "wait-fifo=" + barrier, "stopping", "exit=0"]
p = start(rid, ["-n", "2", "--", FAKE, "--rank", "0", "script"] + rank0 + ["--others", "script"] + rank1,
          env=clean_env(), report_path=rp)
wait_ready(told, 2)
# Both ranks sent everything up to READY; they wait at the barrier.  Release them (one byte each).
fd = os.open(barrier, os.O_RDWR)
os.write(fd, b"xx")
out, err = p.communicate(timeout=TIMEOUT)
os.close(fd)
res = Result(p.returncode, out, err, read_report(rp), 0)
res.dump()
check(res.rc == 0, "exit status 0: no deadline fired")
r = res.report
require(r is not None, "JSON report written")
check(r["outcome"] == "success" and r["deadline"] is None, "outcome success, no deadline")

e = rank_entry(r, 0)
names = [ph["name"] for ph in e["phases"]]
check(names == ["cuda-init", "load-weights", "warmup"], "rank 0: phases in order (%s)" % names)
check(all(ph["ended_s"] is not None and ph["ended_s"] >= ph["started_s"] for ph in e["phases"]),
      "rank 0: every phase ended after it started")
check(all(a["ended_s"] <= b["started_s"] for a, b in zip(e["phases"], e["phases"][1:])),
      "rank 0: each phase started after the previous one ended")
check(e["phase"] == "warmup" and e["phase_ended_s"] is not None, "rank 0: last phase warmup, ended")
check(e["progress"] is not None and e["progress"]["done"] == 4 and e["progress"]["total"] == 4, "rank 0: progress 4/4")
check(e["status"] == "from a child", "rank 0: the status its child sent (%r)" % e["status"])
check(e["errno"] == 5, "rank 0: the ERRNO its grandchild sent")
check(e["ready"] is True and e["ready_s"] is not None and e["ready_s"] >= e["phases"][-1]["ended_s"],
      "rank 0: ready after its warmup ended")
check(e["stopping"] is True, "rank 0: STOPPING=1 recorded")
check(e["notify_datagrams"] == 12, "rank 0: 12 datagrams (got %s)" % e["notify_datagrams"])

e = rank_entry(r, 1)
check([ph["name"] for ph in e["phases"]] == ["only-rank-1"] and e["phase"] == "only-rank-1" and
      e["phase_ended_s"] is None and e["phases"][0]["ended_s"] is None, "rank 1: one phase, never ended")
check(e["ready"] is True and e["progress"] is None and e["status"] is None and e["errno"] is None,
      "rank 1: ready, no progress, status or ERRNO")
check(e["notify_datagrams"] == 3, "rank 1: 3 datagrams")

n = r["notify"]
check(n["socket"] == run_dir_of(rid) + "/notify", "the socket is <run dir>/notify (%s)" % n["socket"])
check(n["accepted"] == 15 and n["barriers"] == 3 and n["received"] == 18 and all(v == 0 for v in n["dropped"].values()),
      "15 datagrams accepted and the descendants' 3 barriers, none dropped (%s)" % n)
check(r["all_ready_s"] is not None and r["all_ready_s"] >= max(rank_entry(r, i)["ready_s"] for i in range(2)),
      "all_ready_s once both were ready")
ms = [m["phase"] for m in r["milestones"]]
check(sorted(ms) == sorted(["cuda-init", "load-weights", "warmup", "only-rank-1"]) and
      ms.index("cuda-init") < ms.index("load-weights") < ms.index("warmup"), "milestones in first-reached order")
check(r["deadline_limits"]["straggler_timeout_s"] == 60.0 and r["deadline_limits"]["ready_timeout_s"] is None,
      "deadline limits: the default straggler timeout only")
check("all 2 ranks ready after" in res.stderr, "says when every rank is ready")
check_nothing_left(rid)

# The environment: both variables name the socket (fake-worker env).
rid = run_id("notify-env")
res = run(rid, ["-n", "1", "--", FAKE, "env"], env=clean_env(NOTIFY_SOCKET="/run/inherited"))
env = dict(line.split("] env ", 1)[1].split("=", 1) for line in res.stdout.splitlines() if "] env " in line)
check(env.get("NOTIFY_SOCKET") == env.get("RINGMASTER_NOTIFY_SOCKET") == run_dir_of(rid) + "/notify",
      "NOTIFY_SOCKET and RINGMASTER_NOTIFY_SOCKET name the run's socket, not the inherited one")
check_nothing_left(rid)

# A run directory too long for a socket path: an abstract socket, which works the same.
rid = run_id("notify-abstract")
long_dir = os.path.join(tmp, "d" * 60, "e" * 60)
os.makedirs(os.path.dirname(long_dir))
res = run(rid, ["-n", "2", "--run-dir", long_dir, "--", FAKE, "script", "phase=x", "ready", "exit=0"], env=clean_env())
check(res.rc == 0, "exit 0 with an abstract notify socket")
check(res.report["notify"]["socket"].startswith("@ringmaster/%s/" % rid), "abstract socket @ringmaster/<id>/...")
check(all(rank_entry(res.report, i)["ready"] and rank_entry(res.report, i)["phase"] == "x" for i in range(2)),
      "both ranks' datagrams arrived")
check_nothing_left(rid)
finish()
