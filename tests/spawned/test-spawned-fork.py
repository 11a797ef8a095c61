#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A worker started with a plain os.fork() (tests/spawned/forker.py) gets
# its own output, as multiprocessing's children do: its lines carry its own
# prefix ([rank 0/pPID]), its parent's the rank's; when it aborts, it is
# reported at once and its stderr tail is its own (not its parent's lines),
# the exit status its 134.  With --worker-capture off, or
# RINGMASTER_WORKER_ANNOUNCE=0 in the environment, its lines stay in its
# parent's streams (today's behaviour, as for any process that does not
# announce itself).  No torch needed.
import re
from spawntest import *

FORKER = os.path.join(HERE, "forker.py")


def run(name, args, env, secs=30):
    rid, res = run_ringmaster("spawned-fork-" + name,
                              ["-n", "1", "--grace", "5"] + args + ["--", sys.executable, FORKER, str(secs)], env)
    check_nothing_left(rid)
    return res


def pids_of(res):
    parent = re.search(r"parent pid (\d+) up", res.stdout)
    child = re.search(r"child pid (\d+) up", res.stdout)
    require(parent and child, "the parent and the child said they were up")
    return int(parent.group(1)), int(child.group(1))


# Captured apart (the default).
res = run("on", [], clean_env())
parent, child = pids_of(res)
check("[rank 0] parent pid %d up" % parent in res.stdout, "the parent's line under the rank's prefix")
check("[rank 0/p%d] child pid %d up" % (child, child) in res.stdout, "the child's line under its own prefix")
check("[rank 0/p%d] child about to crash" % child in res.stderr, "its stderr line under its own prefix too")
check(res.rc == 128 + 6, "exit status 134, the child's SIGABRT: %d" % res.rc)
check(re.search(r"ringmaster: worker p%d \(pid %d, child of rank 0\) was killed by SIGABRT at [\d.]+ s; "
                r"the job is torn down" % (child, child), res.stderr), "reported at once, by its identity")
w = worker_entry(res.report, child)
require(w is not None and w["stderr"] is not None, "JSON: the child is a worker with streams of its own")
tail = w["stderr"]["tail"]
check(any("child about to crash" in l for l in tail), "JSON: its stderr tail has its last line: %r" % tail)
check(not any("parent" in l for l in tail), "JSON: and none of its parent's")
check(not any("child about to crash" in l for l in res.report["ranks"][0]["stderr"]["tail"]),
      "JSON: the rank's tail has none of the child's")
check(res.report["first_failure"] is not None and res.report["first_failure"].get("worker") == w["id"],
      "JSON: the first failure is the child")

# Not captured apart: --worker-capture off, and RINGMASTER_WORKER_ANNOUNCE=0.
for name, args, env in (("off", ["--worker-capture", "off"], clean_env()),
                        ("noannounce", [], clean_env(RINGMASTER_WORKER_ANNOUNCE="0"))):
    res = run(name, args, env, 30 if name == "off" else 1)
    parent, child = pids_of(res)
    check("[rank 0] child pid %d up" % child in res.stdout, "%s: the child's line under the rank's prefix" % name)
    check("[rank 0/p%d]" % child not in res.stdout + res.stderr, "%s: no prefix of its own" % name)
    w = worker_entry(res.report, child)
    if name == "off":
        check(w is not None and w["stderr"] is None, "off: announced (a worker) but not captured apart")
        # Its parent reaped it first and its stderr is not its own: "ended without exiting", status 1.
        check(res.rc in (128 + 6, 1), "off: still reported as the failure: %d" % res.rc)
    else:
        check(w is None, "noannounce: not a worker")
        check(res.rc == 0, "noannounce: the parent's status, 0: %d" % res.rc)
finish()
