#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The command line: --help and --version, and every kind of bad input exits
# 100 with a message naming the problem and the fix, starting nothing.
import subprocess
import tempfile
from rmtest import *


def rm(args, env=None):
    p = subprocess.run([RINGMASTER] + args, stdin=subprocess.DEVNULL, capture_output=True,
                       env=env or clean_env(), timeout=TIMEOUT)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


rc, out, err = rm(["--help"])
check(rc == 0 and "Usage: ringmaster COMMAND" in out and "run" in out, "ringmaster --help")
rc, out, err = rm(["--version"])
check(rc == 0 and out.startswith("ringmaster "), "ringmaster --version")
rc, out, err = rm(["run", "--help"])
check(rc == 0 and "--max-restarts" in out and "--bind-gpu" in out and "Exit status" in out, "ringmaster run --help")
rc, out, err = rm([])
check(rc == 100 and "Usage" in err, "no command: 100 with usage")
rc, out, err = rm(["frobnicate"])
check(rc == 100 and "unknown command 'frobnicate'" in err, "unknown command: 100")
rc, out, err = rm(["-n", "2"])
check(rc == 100 and "options come after the command" in err, "option before the command: 100 with a hint")

bad = [
    (["run"], "no command: give one"),
    (["run", "-n", "0", "true"], "--nproc: 0 is out of range: give a number from 1 to 1024"),
    (["run", "-n", "two", "true"], "'two' is not a whole number"),
    (["run", "-n", "5000", "true"], "out of range"),
    (["run", "--grace", "10x", "true"], "--grace: '10x' is not a duration"),
    (["run", "--grace"], "--grace needs a value"),
    (["run", "--bind-gpu", "all", "true"], "--bind-gpu: 'all' is not a mode: give none or visible"),
    (["run", "--prefix", "%q", "true"], "--prefix: '%q' has an unknown %-sequence"),
    (["run", "--run-id", "../etc", "true"], "--run-id: '../etc' is not a run id"),
    (["run", "--run-dir", "relative/dir", "true"], "not an absolute path"),
    (["run", "--gpus", "0,,1", "true"], "--gpus: '0,,1' has an empty entry"),
    (["run", "--gpus", "zero", "true"], "--gpus: 'zero' is not a GPU"),
    (["run", "--master-port", "70000", "true"], "--master-port: 70000 is out of range"),
    (["run", "--shm-slots", "100", "true"], "--shm-slots: 100 is not a power of two: try 128"),
    (["run", "--shm-overflow", "lots", "true"], "--shm-overflow: 'lots' is not a size"),
    (["run", "--restart-delay", "0.5", "true"], "--restart-delay: 0.5 is below the minimum of 1 s"),
    (["run", "--restart-delay", "10", "--restart-delay-max", "5", "true"], "--restart-delay-max is shorter"),
    (["run", "--frobnicate", "true"], "unknown option '--frobnicate'"),
    (["run", "--bind-gpu", "visible", "-n", "2", "true"], "no GPU is visible"),
]
for args, needle in bad:
    env = clean_env(CUDA_VISIBLE_DEVICES="") if "visible" in args else None
    rc, out, err = rm(args, env)
    check(rc == 100 and needle in err, "%s: exit 100 and says %r (got %d: %s)" % (" ".join(args), needle, rc,
                                                                                    err.strip()[:300]))

rc, out, err = rm(["run", "--", FAKE, "true"], clean_env(CUDA_VISIBLE_DEVICES="0,abc"))
check(rc == 100 and "CUDA_VISIBLE_DEVICES='0,abc': 'abc' is neither a GPU index nor a GPU-/MIG- UUID" in err,
      "malformed CUDA_VISIBLE_DEVICES: 100, names it")
rc, out, err = rm(["run", "--gpus", "2", "--", FAKE, "true"], clean_env(CUDA_VISIBLE_DEVICES="0,1"))
check(rc == 100 and "--gpus: 2 is past the 2 GPU(s) of CUDA_VISIBLE_DEVICES" in err, "--gpus past the visible ones")
rc, out, err = rm(["run", "--bind-gpu=visible", "-n", "3", "--", FAKE, "true"], clean_env(CUDA_VISIBLE_DEVICES="0,1"))
check(rc == 100 and "3 ranks but 2 GPU(s)" in err, "--bind-gpu=visible with too few GPUs")
rc, out, err = rm(["run", "--", FAKE, "true"], clean_env(XDG_RUNTIME_DIR="relative"))
check(rc == 100 and "XDG_RUNTIME_DIR='relative' is not an absolute path" in err, "relative XDG_RUNTIME_DIR")

# --run-dir: a non-empty directory is refused; a missing one is made and removed.
tmp = tempfile.mkdtemp(prefix="rmtest-")
open(os.path.join(tmp, "precious"), "w").close()
rc, out, err = rm(["run", "--run-dir", tmp, "--", FAKE, "true"])
check(rc == 100 and "exists and is not empty" in err and os.path.exists(os.path.join(tmp, "precious")),
      "--run-dir refuses a non-empty directory and leaves it alone")
fresh = os.path.join(tmp, "fresh")
rc, out, err = rm(["run", "--run-dir", fresh, "--", FAKE, "env"])
check(rc == 0 and ("env RINGMASTER_RUN_DIR=%s" % fresh) in out and not os.path.exists(fresh),
      "--run-dir: used, then removed")

# A run id in use by a live ringmaster is refused.
ready = Fifo(tmp)
rid = run_id("usage-busy")
p = start(rid, ["--", FAKE, "--ready", ready.path, "hang"], env=clean_env())
wait_ready(ready, 1)
rc, out, err = rm(["run", "--run-id", rid, "--", FAKE, "true"])
check(rc == 100 and ("run id '%s' is in use" % rid) in err, "a live run's id is refused")
p.send_signal(signal.SIGTERM)
p.communicate(timeout=TIMEOUT)
check(p.returncode == 128 + signal.SIGTERM, "the first run stops on SIGTERM")
check_nothing_left(rid)
finish()
