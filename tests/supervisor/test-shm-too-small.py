#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# /dev/shm too small for the run's segment (Docker's 64 MiB default against
# many ranks): ringmaster refuses at once with exit 111, saying how much it
# needs and how to fix it, and starts no worker.  Runs in a private mount
# namespace with a small tmpfs on /dev/shm; skipped where that is not allowed.
import re
import shutil
import subprocess
from rmtest import *

if not shutil.which("unshare"):
    skip("no unshare")
probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        "mount -t tmpfs -o size=16m tmpfs /dev/shm"], capture_output=True)
if probe.returncode != 0:
    skip("cannot mount a tmpfs in a mount namespace: %s" % probe.stderr.decode().strip())

rid = run_id("shm-small")
inner = "mount -t tmpfs -o size=16m tmpfs /dev/shm && exec \"$@\""
# --no-preflight: shmring_create()'s own -ENOSPC path (the preflight is test-check-shm.py's).
cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", inner, "sh",
       RINGMASTER, "run", "--no-preflight", "--run-id", rid, "-n", "4", "--", FAKE, "true"]
p = subprocess.run(cmd, capture_output=True, env=clean_env(), timeout=TIMEOUT)
err = p.stderr.decode()
log(err)
check(p.returncode == 111, "exit status 111 (got %d)" % p.returncode)
check("/dev/shm is too small for this run" in err, "says /dev/shm is too small")
check(re.search(r"needs [0-9.]+ MiB \(4 ranks\), /dev/shm has [0-9.]+ MiB free of 16.0 MiB", err),
      "says how much it needs and what there is")
check("--shm-size" in err and "--shm-overflow" in err, "gives the fixes")
check("rank 0" not in err.split("ringmaster failed")[0] or "not started" in err, "no rank started")

# The same run fits with smaller areas.
cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", inner, "sh",
       RINGMASTER, "run", "--no-preflight", "--run-id", rid, "-n", "4", "--shm-overflow", "1M",
       "--shm-queue-overflow", "1M",
       "--", FAKE, "true"]
p = subprocess.run(cmd, capture_output=True, env=clean_env(), timeout=TIMEOUT)
log(p.stderr.decode())
check(p.returncode == 0, "fits with --shm-overflow 1M --shm-queue-overflow 1M")
check_nothing_left(rid)
finish()
