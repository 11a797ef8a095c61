#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Every way an engine starts its workers (multiprocessing spawn, fork,
# forkserver, subprocess.Popen, nested spawns): a healthy run of 4 gloo
# workers under `ringmaster run -n 1` exits 0, each worker's stdout and
# stderr lines come under its own prefix ([rank 0/p<pid>] until it joins
# its group, then [rank 0/wI]), and the JSON
# report lists the 4 workers with their group, parent and exit status.
import re
from spawntest import *

env = torch_env()
methods = sys.argv[1:] or ["spawn", "fork", "forkserver", "popen", "nested"]
for method in methods:
    log("==== method %s" % method)
    rid = run_id("spawned-" + method)
    res = run(rid, ["-n", "1", "--"] + engine_cmd("--method", method, "--workers", "4"), env=env)
    check(res.rc == 0, "%s: exit status 0" % method)
    r = res.report
    require(r is not None, "JSON report written")
    pids = worker_pids_from_stdout(res.stdout)
    check(len(pids) == 4, "%s: 4 workers up" % method)
    for i, pid in pids.items():
        # Before its group is known a worker's label is its pid (no index: not torch's spawn).
        check("[rank 0/p%d] worker %d pid %d up" % (pid, i, pid) in res.stdout, "%s: worker %d's first line, p<pid>"
              % (method, i))
        check("[rank 0/w%d] worker %d formed the group" % (i, i) in res.stderr, "%s: worker %d's stderr line" % (method, i))
        e = worker_entry(r, pid)
        check(e is not None and e["group"] is not None and e["group"]["rank"] == i and e["group"]["world"] == 4,
              "%s: JSON: worker %d, member %d of 4" % (method, i, i))
        check(e is not None and e["state"] == "exited" and e["exit_code"] == 0, "%s: JSON: worker %d exited 0" % (method, i))
        check(e is not None and e["stdout"]["lines"] >= 1 and e["stderr"]["lines"] >= 1,
              "%s: JSON: worker %d's own streams" % (method, i))
    # No worker line under the engine's own prefix.
    check(not re.search(r"^\[rank 0\] worker \d", res.stdout + res.stderr, re.M), "%s: no worker line as rank 0's" % method)
    check_nothing_left(rid)
finish()
