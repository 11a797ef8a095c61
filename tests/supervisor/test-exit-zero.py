#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Every rank exits 0: ringmaster exits 0, prints no report, and the JSON
# report says success with each rank "exited" 0.
from rmtest import *

rid = run_id("exit-zero")
res = run(rid, ["-n", "3", "--", FAKE, "true"], env=clean_env())
check(res.rc == 0, "exit status 0")
check("first failure" not in res.stderr and "========" not in res.stderr, "no failure report on stderr")
r = res.report
require(r is not None, "JSON report written")
check(r["schema"] == "ringmaster-report/1", "schema ringmaster-report/1")
check(r["outcome"] == "success" and r["exit_status"] == 0, "outcome success, exit_status 0")
check(r["first_failure"] is None and r["exit_status_rank"] is None, "no first failure")
check(r["run_id"] == rid and r["nproc"] == 3, "run id and nproc")
check(r["command"] == [FAKE, "true"], "command recorded")
for i in range(3):
    e = rank_entry(r, i)
    check(e["rank"] == i and e["state"] == "exited" and e["exit_code"] == 0 and e["signal"] is None,
          "rank %d exited 0" % i)
    check(e["pid"] > 0 and e["signal_sent"] is None, "rank %d has a pid and was sent no signal" % i)
    check(e["phase"] is None and e["ready"] is False, "rank %d: phase unknown, not ready" % i)
check(r["shm"]["segment"].startswith("/shmring-%s-" % rid) and r["shm"]["size"] > 0, "segment named after the run")
check(r["supervisor"]["peak_rss_kib"] > 0, "supervisor peak RSS reported")
check_nothing_left(rid)

# One rank by default without GPUs (no CUDA_VISIBLE_DEVICES, no /dev/nvidiaN here).
if not any(n.startswith("nvidia") and n[6:].isdigit() for n in os.listdir("/dev")):
    rid = run_id("exit-zero-default")
    res = run(rid, ["--", FAKE, "true"], env=clean_env())
    check(res.rc == 0 and res.report["nproc"] == 1, "default -n is 1 without GPUs")
    check_nothing_left(rid)
finish()
