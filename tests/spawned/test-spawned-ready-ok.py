#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# --ready-timeout per worker must not fire when every worker gets ready:
# -n 1, forkserver (the forkserver and multiprocessing's helpers are
# workers that are never ready: they must not be watched), 3 gloo workers
# that join their group at once, then serve twice the timeout; a second
# run whose workers say READY=1 themselves.  Both end with 0 and no
# deadline; every worker counted ready in the JSON report.
from spawntest import *

T = 5.0
env = torch_env()
for extra in ([], ["--say-ready"]):
    rid, res = run_ringmaster("spawned-ready-ok%d" % len(extra), ["-n", "1", "--ready-timeout", str(T), "--"] +
                              engine_cmd("--method", "forkserver", "--workers", "3", "--serve", str(2 * T),
                                         "--engine-ready", "--preload-torch", *extra), env)
    r = res.report
    check(res.rc == 0, "%s: exit status 0" % (extra or "joined"))
    check("not ready" not in res.stderr and r.get("deadline") is None, "no deadline: %r" % r.get("deadline"))
    pids = worker_pids_from_stdout(res.stdout)
    require(len(pids) == 3, "the 3 workers said they were up: %r" % pids)
    for i, pid in pids.items():
        e = worker_entry(r, pid)
        check(e is not None and e["joined_s"] is not None and (not extra or e["ready_said_s"] is not None),
              "worker %d ready" % i)
    check(len(r["workers"]) > 3, "the forkserver (never ready) is a worker too: %d" % len(r["workers"]))
    check_nothing_left(rid)
finish()
