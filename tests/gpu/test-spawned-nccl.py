#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Spawned workers with NCCL on one GPU (docs/spawned-workers.md): the engine
# (tests/spawned/engine.py) under `ringmaster run -n 1` starts its workers
# with multiprocessing 'spawn', as vLLM does.
#   one   ONE worker: torch.cuda.set_device(0), init_process_group('nccl')
#         of world 1, a barrier (NCCL's communicator), then it ends: the run
#         ends 0, the worker is announced, named w0, captured apart, in its
#         group of 1, joined, and the phases cuda-init, dist-init and
#         nccl-init were seen.
#   hang  a world of 2 where worker 1 sleeps before init_process_group (it
#         never touches the GPU: NCCL allows one worker per GPU): within
#         --straggler-timeout the headline names worker 1 of 2, its pid and
#         parent, worker 0 waits, and worker 1's Python traceback is in its
#         diagnosis, first.
# Skips (77) without torch with CUDA and a GPU (RM_TORCH_PYTHONPATH is put
# on PYTHONPATH).  More workers than GPUs is NCCL's limit: the runs with
# several NCCL workers belong to the multi-GPU runs.
# RMTEST_SPAWNED_BACKEND=gloo runs the same on the CPU (a check of the test
# itself, without the GPU's phases cuda-init and nccl-init).
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "spawned"))
from spawntest import *     # noqa: E402,F401,F403

# The GPUs are wanted here: not clean_env()'s empty device folder.
env = torch_env(RINGMASTER_TEST_DEV_DIR=None, RINGMASTER_TEST_GPU_LIBDIR=None, NCCL_NVLS_ENABLE="0")
BACKEND = os.environ.get("RMTEST_SPAWNED_BACKEND", "nccl")
require(BACKEND in ("nccl", "gloo"), "RMTEST_SPAWNED_BACKEND is nccl or gloo: %r" % BACKEND)
probe = subprocess.run([sys.executable, "-c", "import torch, torch.distributed as d; "
                        "print(torch.cuda.device_count() if torch.cuda.is_available() and d.is_nccl_available() "
                        "else 0)"], env=env, capture_output=True, text=True)
if BACKEND == "nccl" and (probe.returncode != 0 or not probe.stdout.strip().isdigit() or
                          int(probe.stdout.strip()) == 0):
    skip("no torch with CUDA, NCCL and a GPU")


def run(name, args, engine_args):
    rid, res = run_ringmaster("spawned-nccl-" + name, ["-n", "1", "--grace", "10"] + args + ["--"] +
                              engine_cmd("--method", "spawn", "--backend", BACKEND, *engine_args), env)
    check_nothing_left(rid)
    return res


# one: a group of 1 on GPU 0.
res = run("one", [], ["--workers", "1"])
r = res.report
check(res.rc == 0, "one: exit status 0")
pids = worker_pids_from_stdout(res.stdout)
require(len(pids) == 1, "one: the worker said it was up: %r" % pids)
w = worker_entry(r, pids[0])
require(w is not None, "one: the worker announced itself")
check(w["label"] == "w0" and w["group"] is not None and w["group"]["world"] == 1 and w["group"]["rank"] == 0,
      "one: w0, in a group of 1: %r" % w["group"])
check(w["joined_s"] is not None, "one: its init_process_group returned")
check(w["stdout"] is not None and any("worker 0 pid" in l for l in w["stdout"]["tail"]), "one: captured apart")
# Its first line came before it joined its group: under its pid's label.
check("[rank 0/p%d] worker 0 pid %d up" % (pids[0], pids[0]) in res.stdout, "one: its line under its own prefix")
seen = [p["name"] for p in r["ranks"][0]["phases"]]
for phase in ("cuda-init", "dist-init", "nccl-init") if BACKEND == "nccl" else ("dist-init",):
    check(phase in seen, "one: phase %s seen: %r" % (phase, seen))
check(not w["failed"], "one: the worker ended well: %s" % w["state"])

# hang: worker 1 of 2 never enters init_process_group.
T = 8.0
res = run("hang", ["--straggler-timeout", str(T)], ["--workers", "2", "--sleep-before-init", "1:0"])
r = res.report
check(res.rc == 124, "hang: exit status 124 (a deadline)")
pids = worker_pids_from_stdout(res.stdout)
require(len(pids) == 2, "hang: the 2 workers said they were up: %r" % pids)
m = re.search(r"worker 1 of 2 \(pid (\d+), child of rank 0\) never entered dist-init; worker 0 waiting ([\d.]+) s",
              res.stderr)
check(m is not None and int(m.group(1)) == pids[1], "hang: the headline names worker 1 of 2 and its pid")
check(m is not None and T <= float(m.group(2)) <= T + 2.0, "hang: within --straggler-timeout")
w1 = worker_entry(r, pids[1])
check(w1 is not None and r["deadline"].get("workers") == [w1["id"]], "hang: JSON: the deadline names worker 1")
check(w1 is not None and w1["diagnosis"] is not None and
      any("in work" in l for l in w1["diagnosis"]["python_traceback"]), "hang: worker 1's Python traceback")
check(wait_gone(list(pids.values()), 10.0) is not None, "hang: every worker is gone")
finish()
