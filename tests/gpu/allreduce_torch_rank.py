# SPDX-License-Identifier: MIT
"""One rank of test-allreduce-torch.sh: ringmaster.allreduce on torch tensors
against the fp32 sum in rank order, eager (in place and out of place) and
in a captured torch.cuda.CUDAGraph.  Exits 1 on any wrong element."""

import os
import sys

import torch

from ringmaster.allreduce import AllReduce

rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
torch.cuda.set_device(rank % torch.cuda.device_count())
ar = AllReduce("torch-test", max_bytes=4 << 20)
if rank == 0:
    print(ar.describe(), flush=True)


def inputs(n, dtype, seed):
    return [torch.randn(n, generator=torch.Generator("cuda").manual_seed(seed * 131 + r), device="cuda").to(dtype)
            for r in range(world)]


def reference(xs, dtype):
    acc = xs[0].float()
    for x in xs[1:]:
        acc = acc + x.float()
    return acc.to(dtype)


def same(out, ref, path):
    if path in ("one-shot", "two-shot", "copy"):
        return torch.equal(out, ref)
    return torch.allclose(out.float(), ref.float(), rtol=1e-2, atol=1e-2)


bad = 0
calls = 0
for dtype in (torch.bfloat16, torch.float16, torch.float32):
    for n in (1, 7, 8, 1000, 4096, 65536, 262147, 1000003):
        for inplace in (True, False):
            xs = inputs(n, dtype, n + calls)
            ref = reference(xs, dtype)
            x = xs[rank].clone()
            out = ar(x) if inplace else ar(x, out=torch.full_like(x, float("nan")))
            path = ar.algo(x)
            torch.cuda.synchronize()
            calls += 1
            if not same(out, ref, path):
                bad += 1
                print("rank %d: %s n=%d %s (%s): wrong, max error %g" % (rank, dtype, n, "in place" if inplace else
                      "out of place", path, (out.float() - ref.float()).abs().max().item()), flush=True)

# Captured once, replayed with new inputs.
static = torch.zeros(12345, dtype=torch.bfloat16, device="cuda")
ar(static)
torch.cuda.synchronize()
g = torch.cuda.CUDAGraph()
with torch.cuda.graph(g):
    ar(static)
for k in range(20):
    xs = inputs(static.numel(), torch.bfloat16, 7777 + k)
    static.copy_(xs[rank])
    g.replay()
    torch.cuda.synchronize()
    calls += 1
    if not torch.equal(static, reference(xs, torch.bfloat16)):
        bad += 1
        print("rank %d: graph replay %d wrong" % (rank, k), flush=True)

try:
    ar(torch.zeros(4, dtype=torch.int32, device="cuda"))
    bad += 1
    print("rank %d: an int32 all-reduce did not raise" % rank)
except TypeError:
    pass
ar.close()
print("rank %d: %d all-reduces through torch, %s" % (rank, calls, "FAILED" if bad else "all exact"), flush=True)
sys.exit(1 if bad else 0)
