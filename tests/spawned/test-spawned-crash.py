#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A worker that dies while its engine lives on: killed by SIGSEGV
# (`crash`), or raising an exception (`raise`).  ringmaster reports it at
# once, naming the worker and showing its last lines, and tears the job down
# as for a rank failure; the report's first failure is the worker, its
# exception with the traceback from its error file.
import re
from spawntest import *

case = sys.argv[1] if len(sys.argv) > 1 else "crash"
env = torch_env()
rid, res = run_ringmaster("spawned-" + case, ["-n", "1", "--grace", "5", "--"] +
                          engine_cmd("--method", "spawn", "--workers", "3", "--" + case, "1", "--serve", "60"), env)
r = res.report
pids = worker_pids_from_stdout(res.stdout)
require(len(pids) == 3, "3 workers up: %r" % pids)
check(res.elapsed < 40 if res.elapsed else True, "torn down well before the workers' 60 s")
if case == "crash":
    end = "was killed by SIGSEGV"
    check(res.rc == 128 + 11, "exit status 139, the worker's")
else:
    end = "raised RuntimeError: worker 1 failed on purpose"
    check(res.rc == 1, "exit status 1, the worker's")
who = r"worker 1 of 3 \(pid %d, child of rank 0\)" % pids[1]
check(re.search(r"ringmaster: %s %s at [\d.]+ s; the job is torn down" % (who, re.escape(end)), res.stderr),
      "reported at once, with the worker's identity")
check(re.search(r"======== run %s: %s %s ========" % (rid, who, re.escape(end)), res.stderr), "the headline")
check(re.search(r"worker 1 stderr, last \d+ lines:\n(ringmaster:   \| .*\n)*ringmaster:   \| worker 1 formed the group",
                res.stderr), "its last lines in the report")
f = r["first_failure"]
w1 = worker_entry(r, pids[1])
require(w1 is not None, "JSON: worker 1 in workers[]")
check(f is not None and f.get("worker") == w1["id"] and f["rank"] == 0, "JSON: the first failure is worker 1")
if case == "crash":
    check(w1["state"] in ("signalled", "gone"), "JSON: worker 1 signalled (or gone: reaped by its parent first)")
    check(any("crashes now" in l for l in w1["stderr"]["tail"]), "JSON: its stderr tail")
else:
    check(w1["exception"] == "RuntimeError: worker 1 failed on purpose", "JSON: its exception")
    check(w1["error_file"] is not None and "in work" in w1["error_file"]["message"]["extraInfo"]["py_callstack"],
          "JSON: its traceback, from its error file")
check(r["outcome"] == "failure", "outcome failure")
check(wait_gone(list(pids.values()), 10.0) is not None, "every worker is gone")
check_nothing_left(rid)
finish()
