# SPDX-License-Identifier: MIT
"""One rank of the multi-node tests (torch.distributed, gloo, CPU).

    worker.py env                 init, an all-reduce, then a record:
                                  MULTINODE {"rank":..,"env":{torchrun's variables},"sum":..}
    worker.py raise RANK          RANK raises after init; the others wait in a barrier
    worker.py hang-node NODE      every rank of node NODE (GROUP_RANK) stays short of
                                  READY after init; the others say READY and wait
"""

import datetime
import json
import os
import sys
import time

CONTRACT = ["RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE",
            "ROLE_RANK", "ROLE_NAME", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
            "TORCHELASTIC_RESTART_COUNT", "TORCHELASTIC_MAX_RESTARTS", "TORCHELASTIC_RUN_ID",
            "TORCHELASTIC_USE_AGENT_STORE", "TORCH_NCCL_ASYNC_ERROR_HANDLING", "OMP_NUM_THREADS"]


def main(argv):
    import torch
    import torch.distributed as dist
    try:
        from ringmaster import worker as rm
    except ImportError:
        rm = None
    case = argv[1]
    rank = int(os.environ["RANK"])
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=120))
    if case == "env":
        t = torch.tensor([rank + 1])
        dist.all_reduce(t)
        print("MULTINODE " + json.dumps({"rank": rank, "env": {k: os.environ.get(k) for k in CONTRACT},
                                         "dist_rank": dist.get_rank(), "dist_world": dist.get_world_size(),
                                         "sum": int(t.item())}, sort_keys=True), flush=True)
        if rm:
            rm.ready()
        dist.barrier()
    elif case == "raise":
        if rank == int(argv[2]):
            raise ValueError("rank %d fails on purpose" % rank)
        dist.barrier()
    elif case == "hang-node":
        if int(os.environ["GROUP_RANK"]) == int(argv[2]):
            time.sleep(3600)
        if rm:
            rm.ready()
        print("READY_AT %.3f rank %d" % (time.time(), rank), flush=True)
        dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
