#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# ringmaster is SIGKILLed: every worker dies within 1 s (PR_SET_PDEATHSIG),
# and the next run removes the segment and run directory left behind.
import shutil
import subprocess
import sys
import tempfile
from rmtest import *

# Every ringmaster removes every dead run's segment and run directory, so a
# ringmaster of a test running beside this one could clean up before "the
# next run" here does.  Run in a private /dev/shm and XDG_RUNTIME_DIR where
# a mount namespace can be had; elsewhere the assertions on who removed what
# may race with tests run in parallel.
PRIVATE_SHM = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
               'mount -t tmpfs -o size=256m,mode=1777 tmpfs /dev/shm && exec "$@"', "sh"]
if "--inner" not in sys.argv and shutil.which("unshare") and \
        subprocess.run(PRIVATE_SHM + ["true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0:
    private = tempfile.mkdtemp(prefix="rmtest-xdg-")
    inner = subprocess.run(PRIVATE_SHM + [sys.executable, __file__, "--inner"],
                           env=dict(os.environ, XDG_RUNTIME_DIR=private))
    shutil.rmtree(private, ignore_errors=True)
    sys.exit(inner.returncode)

tmp = tempfile.mkdtemp(prefix="rmtest-")
ready = Fifo(tmp)
rid = run_id("killed")
p = start(rid, ["-n", "4", "--", FAKE, "--ready", ready.path, "hang"], env=clean_env(),
          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
pids = wait_ready(ready, 4)
segs = segments_of(rid)
check(len(segs) == 1, "the run's segment exists (%s)" % segs)
p.kill()
p.wait()
took = wait_gone(list(pids.values()), 1.0)
check(took is not None, "every worker gone within 1 s of the SIGKILL (%s s)" % took)
check(processes_with_run_id(rid) == [], "no process left with the run id")
check(segments_of(rid) == segs, "the dead run's segment is still in /dev/shm")
check(os.path.exists(run_dir_of(rid)), "and its run directory")

rid2 = run_id("killed-next")
res = run(rid2, ["--", FAKE, "true"], env=clean_env())
check(res.rc == 0, "the next run succeeds")
check(segments_of(rid) == [], "the next run removed the stale segment")
check(res.report["shm"]["stale_segments_removed"] >= 1, "JSON: stale_segments_removed >= 1")
check("stale shared-memory segment" in res.stderr and "of dead runs from /dev/shm" in res.stderr,
      "it says how many it removed")
check(not os.path.exists(run_dir_of(rid)), "the stale run directory is gone too")
check(res.report["stale_run_dirs_removed"] >= 1, "JSON: stale_run_dirs_removed >= 1")
check_nothing_left(rid)
check_nothing_left(rid2)
finish()
