#!/usr/bin/env python3
"""gloo's all-reduce (torch.distributed, CPU), timed as ringmaster-engine --bench-allreduce times its own.

    ringmaster run -n N -- python3 gloo-allreduce.py SIZES [ITERS]

SIZES: comma-separated bytes (K, M suffixes).  Rank 0 prints one line per
size: bytes, "gloo", mean and p50 in microseconds, bus bandwidth.
"""
import os
import sys
import time


def parse(s):
    m = {"K": 1024, "M": 1 << 20}.get(s[-1:].upper(), 1)
    return int(float(s[:-1] if m > 1 else s) * m)


def main():
    import torch
    import torch.distributed as dist

    sizes = [parse(x) for x in sys.argv[1].split(",")]
    iters = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    for size in sizes:
        n = size // 4
        t = torch.full((n,), float(rank + 1))
        times = []
        for it in range(-10, iters):
            t.fill_(float(rank + 1))
            t0 = time.perf_counter_ns()
            dist.all_reduce(t)
            dt = time.perf_counter_ns() - t0
            if it >= 0:
                times.append(dt)
        assert t[0].item() == world * (world + 1) / 2
        times.sort()
        mean = sum(times) / len(times) / 1e3
        if rank == 0:
            print("%-10d %-10s %12.2f %12.2f %12.3f" % (n * 4, "gloo", mean, times[len(times) // 2] / 1e3,
                                                        2.0 * (world - 1) / world * n * 4 / (mean * 1e3)), flush=True)
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
