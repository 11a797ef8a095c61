#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# --phase-timeout applies per worker: with dist-init=3 (and the straggler
# timeout far away), workers 0,1,3 sit in dist-init waiting for worker 2,
# which sleeps before init_process_group; the phase deadline fires for them
# and the headline names the missing worker rather than the waiting ones.
import re
from spawntest import *

env = torch_env()
rid, res = run_ringmaster("spawned-phase", ["-n", "1", "--phase-timeout", "dist-init=3", "--straggler-timeout", "600",
                                           "--grace", "5", "--"] +
                          engine_cmd("--method", "fork", "--workers", "4", "--sleep-before-init", "2:0"), env)
r = res.report
check(res.rc == 124, "exit status 124")
pids = worker_pids_from_stdout(res.stdout)
m = re.search(r"======== run %s: worker 2 of 4 \(pid (\d+), child of rank 0\) never entered dist-init; "
              r"workers 0,1,3 waiting ([\d.]+) s ========" % rid, res.stderr)
check(m is not None and int(m.group(1)) == pids.get(2), "the headline names worker 2 (fork: found as the one sibling)")
check(r["deadline"]["kind"] == "phase-timeout" and r["deadline"]["phase"] == "dist-init", "JSON: a phase deadline")
check_nothing_left(rid)
finish()
