#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# run's preflight keeps the GPU probe's answer: the driver's start-up (about
# half a second on a GPU host) is paid once per boot, driver, binary, GPU set
# and library environment, not by every run.  `check` always asks the driver
# and refreshes what is kept.  A different GPU set or environment is not
# answered from an answer made for another one.
import shutil
import tempfile
from checktest import *

libdir = fake_gpu_dir()
private = tempfile.mkdtemp(prefix="rmtest-cache-")      # the run directories' parent holds the cache
calls = os.path.join(private, "cuInit.log")


def probes():
    try:
        with open(calls) as f:
            return len(f.readlines())
    except FileNotFoundError:
        return 0


def env(**overrides):
    return gpu_env(libdir=libdir, XDG_RUNTIME_DIR=private, FAKE_GPU_LOG=calls, **overrides)


def rm_run(gpus, **overrides):
    rid = run_id("cache")
    res = run(rid, ["-n", "2", "--", FAKE, "true"], env=env(CUDA_VISIBLE_DEVICES=gpus, **overrides))
    check(res.rc == 0, "run on GPUs %s succeeds (%s)" % (gpus, overrides))
    check_nothing_left(rid)
    return res


rm_run("0,1")
check(probes() == 1, "the first run asks the driver (%d)" % probes())
rm_run("0,1")
check(probes() == 1, "the second run with the same GPUs does not (%d)" % probes())
check(os.path.exists(os.path.join(private, "ringmaster", "gpu-probe")), "the answer is kept in the run directories' parent")

rm_run("2,3")
check(probes() == 2, "other GPUs: the driver is asked (%d)" % probes())
rm_run("0,1", FAKE_GPU_NO_P2P="0-1")
check(probes() == 3, "another environment for the GPU libraries: asked again (%d)" % probes())

# Answered from the cache, the preflight judges as from the driver: no peer
# access between 0 and 1 is still a warning in a cached run.
res = rm_run("0,1", FAKE_GPU_NO_P2P="0-1")
check(probes() == 3, "and that answer is kept too (%d)" % probes())
check("peer access" in res.stderr and "warn" in res.stderr, "a cached answer still warns about peer access")

rc, out, err = rm_check(["-n", "2"], env(CUDA_VISIBLE_DEVICES="0,1"))
check(rc == 0 and probes() == 4, "check always asks the driver (%d)" % probes())

# A corrupt cache is ignored, not trusted.
with open(os.path.join(private, "ringmaster", "gpu-probe"), "w") as f:
    f.write("ringmaster-gpu-probe/1 0000000000000000\ngarbage\n")
rm_run("0,1")
check(probes() == 5, "a cache made under another key is not used (%d)" % probes())

shutil.rmtree(private, ignore_errors=True)
finish()
