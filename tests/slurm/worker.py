# SPDX-License-Identifier: MIT
"""One rank of tests/slurm/test-srun.py (needs no torch).

    worker.py env DIR          writes DIR/env-RANK.json: the variables ringmaster and
                               Slurm gave this rank
    worker.py fail RANK DIR    every other rank writes DIR/pid-R and sleeps until it is
                               stopped; rank RANK waits for all of those files, then
                               raises (so the failure hits ranks that are running)
"""

import json
import os
import sys
import time

VARIABLES = ["RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE",
             "ROLE_RANK", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID",
             "SLURM_NODEID", "SLURM_PROCID", "SLURMD_NODENAME", "SLURM_STEP_NODELIST"]


def write_atomically(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def main(argv):
    rank = int(os.environ["RANK"])
    if argv[1] == "env":
        record = {k: os.environ.get(k) for k in VARIABLES}
        write_atomically(os.path.join(argv[2], "env-%d.json" % rank), json.dumps(record))
        return 0
    if argv[1] == "fail":
        failing, folder = int(argv[2]), argv[3]
        if rank != failing:
            write_atomically(os.path.join(folder, "pid-%d" % rank), "%d\n" % os.getpid())
            time.sleep(600)
            return 0
        others = ["pid-%d" % r for r in range(int(os.environ["WORLD_SIZE"])) if r != failing]
        deadline = time.monotonic() + 60
        while not all(os.path.exists(os.path.join(folder, p)) for p in others):
            if time.monotonic() > deadline:
                print("the other ranks did not start within 60 s", file=sys.stderr, flush=True)
                return 2
            time.sleep(0.05)
        raise ValueError("rank %d fails on purpose" % rank)
    print("worker.py: unknown case %r" % argv[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
