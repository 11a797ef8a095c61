#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The environment contract: torchrun's variables for every rank, the
# RINGMASTER_* ones, the defaults that apply only when unset, what must not
# leak from the supervisor's own environment, and GPU selection.
from rmtest import *


def envs(res, n):
    """{rank: {KEY: VALUE}} from the workers' "env KEY=VALUE" lines."""
    out = {k: {} for k in range(n)}
    for line in res.stdout.splitlines():
        prefix, _, rest = line.partition("] env ")
        if not rest:
            continue
        rank = int(prefix.split()[-1])
        key, _, value = rest.partition("=")
        out[rank][key] = value
    return out


N = 3
rid = run_id("environ")
base = clean_env(NOTIFY_SOCKET="/run/fake-notify", WATCHDOG_USEC="1000000", LISTEN_FDS="3",
                 RINGMASTER_TEST_INHERITED="kept")
res = run(rid, ["-n", str(N), "--max-restarts", "2", "--", FAKE, "env"], env=base)
check(res.rc == 0, "exit 0")
e = envs(res, N)
run_dir = None
errfiles = set()
port = None
for r in range(N):
    v = e[r]
    expect = {
        "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": str(N), "LOCAL_WORLD_SIZE": str(N),
        "GROUP_RANK": "0", "GROUP_WORLD_SIZE": "1", "ROLE_RANK": str(r), "ROLE_NAME": "default",
        "ROLE_WORLD_SIZE": str(N), "MASTER_ADDR": "127.0.0.1", "TORCHELASTIC_RUN_ID": rid,
        "TORCHELASTIC_RESTART_COUNT": "0", "TORCHELASTIC_MAX_RESTARTS": "2",
        "TORCHELASTIC_USE_AGENT_STORE": "False", "OMP_NUM_THREADS": "1", "TORCH_NCCL_ASYNC_ERROR_HANDLING": "1",
        "RINGMASTER_RUN_ID": rid, "RINGMASTER_NPROC": str(N), "RINGMASTER_TEST_INHERITED": "kept",
    }
    for k, want in expect.items():
        check(v.get(k) == want, "rank %d: %s=%s (got %r)" % (r, k, want, v.get(k)))
    for k in ("WATCHDOG_USEC", "LISTEN_FDS", "CUDA_VISIBLE_DEVICES", "JOURNAL_STREAM"):
        check(k not in v, "rank %d: %s not passed on" % (r, k))
    # NOTIFY_SOCKET is ringmaster's own socket, not the one it inherited.
    check(v.get("NOTIFY_SOCKET") == v.get("RINGMASTER_NOTIFY_SOCKET") == run_dir_of(rid) + "/notify",
          "rank %d: NOTIFY_SOCKET and RINGMASTER_NOTIFY_SOCKET are the run's notify socket (got %r)" %
          (r, v.get("NOTIFY_SOCKET")))
    check(v.get("MASTER_PORT", "").isdigit() and 0 < int(v["MASTER_PORT"]) < 65536, "rank %d: MASTER_PORT" % r)
    port = port or v.get("MASTER_PORT")
    check(v.get("MASTER_PORT") == port, "rank %d: the same MASTER_PORT as rank 0" % r)
    run_dir = run_dir or v.get("RINGMASTER_RUN_DIR")
    check(v.get("RINGMASTER_RUN_DIR") == run_dir == run_dir_of(rid), "rank %d: RINGMASTER_RUN_DIR" % r)
    ef = v.get("TORCHELASTIC_ERROR_FILE", "")
    check(ef.startswith(run_dir + "/") and ef.endswith(".json"), "rank %d: its error file is in the run dir" % r)
    errfiles.add(ef)
    check(v.get("RINGMASTER_SHM") == res.report["shm"]["segment"] and
          v.get("RINGMASTER_SHM", "").startswith("/shmring-%s-" % rid), "rank %d: RINGMASTER_SHM names the segment" % r)
check(len(errfiles) == N, "one error file per rank")
check_nothing_left(rid)

# Values the user set are kept; options change the rest.
rid = run_id("environ-set")
res = run(rid, ["-n", "2", "--master-port", "29555", "--master-addr", "localhost", "--role", "worker",
                "--no-shm", "--", FAKE, "env"],
          env=clean_env(OMP_NUM_THREADS="4", TORCH_NCCL_ASYNC_ERROR_HANDLING="0", MASTER_PORT="1"))
e = envs(res, 2)
for r in range(2):
    check(e[r].get("OMP_NUM_THREADS") == "4" and e[r].get("TORCH_NCCL_ASYNC_ERROR_HANDLING") == "0",
          "rank %d: OMP_NUM_THREADS and TORCH_NCCL_ASYNC_ERROR_HANDLING kept when set" % r)
    check(e[r].get("MASTER_PORT") == "29555" and e[r].get("MASTER_ADDR") == "localhost", "rank %d: --master-*" % r)
    check(e[r].get("ROLE_NAME") == "worker", "rank %d: --role" % r)
    check("RINGMASTER_SHM" not in e[r], "rank %d: --no-shm, no RINGMASTER_SHM" % r)
check(res.report["shm"]["segment"] is None, "--no-shm: no segment")
check_nothing_left(rid)

# One rank: OMP_NUM_THREADS is left alone (torchrun sets it only for nproc > 1).
rid = run_id("environ-one")
res = run(rid, ["-n", "1", "--", FAKE, "env"], env=clean_env())
check("OMP_NUM_THREADS" not in envs(res, 1)[0], "-n 1: OMP_NUM_THREADS not set")
check_nothing_left(rid)

# GPUs: the default -n is the visible GPUs; --gpus narrows; --bind-gpu=visible gives one per rank.
# The GPU ids are made up: --no-preflight, so that a GPU host's driver and /dev/shm play no part.
rid = run_id("environ-gpus-default")
res = run(rid, ["--no-preflight", "--", FAKE, "env"], env=clean_env(CUDA_VISIBLE_DEVICES="0,1,2,3"))
check(res.report["nproc"] == 4, "default -n: the 4 GPUs of CUDA_VISIBLE_DEVICES")
check(all(v.get("CUDA_VISIBLE_DEVICES") == "0,1,2,3" for v in envs(res, 4).values()), "--bind-gpu=none: all see all")
check_nothing_left(rid)

rid = run_id("environ-gpus-visible")
res = run(rid, ["--no-preflight", "-n", "2", "--gpus", "3,1", "--bind-gpu=visible", "--", FAKE, "env"],
          env=clean_env())
e = envs(res, 2)
check(e[0].get("CUDA_VISIBLE_DEVICES") == "3" and e[1].get("CUDA_VISIBLE_DEVICES") == "1",
      "--gpus 3,1 --bind-gpu=visible: rank 0 sees 3, rank 1 sees 1")
check(e[0].get("LOCAL_RANK") == "0" and e[1].get("LOCAL_RANK") == "1", "LOCAL_RANK unchanged")
check(res.report["ranks"][1]["cuda_visible_devices"] == "1", "JSON records each rank's GPU")
check_nothing_left(rid)

rid = run_id("environ-gpus-none")
res = run(rid, ["--no-preflight", "-n", "2", "--gpus", "3,1", "--", FAKE, "env"], env=clean_env())
check(all(v.get("CUDA_VISIBLE_DEVICES") == "3,1" for v in envs(res, 2).values()),
      "--gpus 3,1 --bind-gpu=none: every rank sees 3,1")
check_nothing_left(rid)

rid = run_id("environ-gpus-nested")
res = run(rid, ["--no-preflight", "--gpus", "1,3", "--bind-gpu=visible", "--", FAKE, "env"],
          env=clean_env(CUDA_VISIBLE_DEVICES="4,5,6,GPU-abc"))
e = envs(res, 2)
check(res.report["nproc"] == 2, "default -n with --gpus: one rank per listed GPU")
check(e[0].get("CUDA_VISIBLE_DEVICES") == "5" and e[1].get("CUDA_VISIBLE_DEVICES") == "GPU-abc",
      "--gpus indexes into the supervisor's CUDA_VISIBLE_DEVICES")
check_nothing_left(rid)

rid = run_id("environ-gpus-hidden")
res = run(rid, ["--no-preflight", "--", FAKE, "env"], env=clean_env(CUDA_VISIBLE_DEVICES="0,-1,2"))
check(res.report["nproc"] == 1, "CUDA_VISIBLE_DEVICES=0,-1,2: one GPU visible, as CUDA counts")
check_nothing_left(rid)
finish()
