#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""An engine that starts its own tensor-parallel workers, as vLLM and SGLang
do: ONE process under `ringmaster run -n 1` that starts N workers, which
form one torch.distributed group (gloo, CPU) through a tcp:// rendezvous.

    engine.py [--method M] [--workers N] [--port P] [--sleep-before-init I:SECS]
              [--crash I] [--raise I] [--exit I:CODE] [--hang-after-init I] [--serve SECS]

--method: how the workers start:
    torch-spawn  torch.multiprocessing.spawn (start method spawn)
    spawn, fork, forkserver   multiprocessing.Process with that start method
    popen        subprocess.Popen of this script (--worker I)
    nested       2 multiprocessing 'spawn' children, each starting N/2 workers
    native       subprocess.Popen of tests/spawned/announce-worker (no torch)
--sleep-before-init I:SECS   worker I sleeps before init_process_group (SECS 0: for ever)
--crash I        worker I kills itself with SIGSEGV after the group formed
--raise I        worker I raises RuntimeError after the group formed
--exit I:CODE    worker I exits with CODE after the group formed
--hang-after-init I  worker I sleeps for ever after the group formed
--serve SECS     every worker waits SECS after the group formed, then ends (0 default)
--no-group       the workers form no group (no torch needed)
--backend B      the group's backend: gloo (default), or nccl (each worker on GPU 0 first:
                 torch.cuda.set_device(0); NCCL allows one worker per GPU)
--say-ready      every worker says READY=1 (ringmaster.worker.ready()) after the group formed
--never-ready [R:]I  worker I (of rank R only, $RANK) enters phase load-weights and sleeps
                 (--serve SECS, else for ever) instead of saying READY (with --say-ready)
--engine-ready   the engine says READY=1 as it starts its workers (a launcher's READY: the
                 rank is ready, only the workers' own readiness is left)
--preload-torch  the engine (fork) or the forkserver imports torch.distributed before
                 the workers start, so that they join their group within a second

Each worker prints "worker I pid P up" on stdout and "worker I formed the
group" on stderr.  The engine joins its workers and exits 0 when all
exited 0, else 1 (as vLLM's engine does when a worker dies).
"""

import argparse
import os
import signal
import subprocess
import sys
import time


def parse_args(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--method", default="torch-spawn")
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--sleep-before-init", default=None)
    p.add_argument("--crash", type=int, default=-1)
    p.add_argument("--raise", dest="raise_", type=int, default=-1)
    p.add_argument("--exit", default=None)
    p.add_argument("--hang-after-init", type=int, default=-1)
    p.add_argument("--serve", type=float, default=0.0)
    p.add_argument("--no-group", action="store_true")
    p.add_argument("--backend", default="gloo", choices=("gloo", "nccl"))
    p.add_argument("--say-ready", action="store_true")
    p.add_argument("--never-ready", default=None)
    p.add_argument("--extend", default=None)           # W:SECS: worker W says EXTEND_TIMEOUT_USEC first
    p.add_argument("--ready-after", default=None)      # W:SECS: worker W says READY=1 SECS late
    p.add_argument("--engine-ready", action="store_true")
    p.add_argument("--preload-torch", action="store_true")
    p.add_argument("--worker", type=int, default=None)
    p.add_argument("--native-worker", default=None)
    return p.parse_args(argv)


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def never_ready(i, opts):
    if not opts.never_ready:
        return False
    who = opts.never_ready.split(":")
    if len(who) == 2 and int(who[0]) != int(os.environ.get("RANK", "0")):
        return False
    return int(who[-1]) == i


def work(i, opts):
    print("worker %d pid %d up" % (i, os.getpid()), flush=True)
    if opts.no_group:
        return work_after_group(i, opts)
    import torch.distributed as dist
    if opts.sleep_before_init:
        who, secs = opts.sleep_before_init.split(":")
        if int(who) == i:
            secs = float(secs)
            print("worker %d sleeps before init_process_group" % i, flush=True)
            if secs == 0:
                while True:
                    time.sleep(3600)
            time.sleep(secs)
    if opts.backend == "nccl":
        import torch
        torch.cuda.set_device(0)
    dist.init_process_group(opts.backend, init_method="tcp://127.0.0.1:%d" % opts.port,
                            world_size=opts.workers, rank=i)
    dist.barrier()
    print("worker %d formed the group" % i, file=sys.stderr, flush=True)
    work_after_group(i, opts)
    dist.destroy_process_group()


def worker_and_secs(spec, i):
    """SECS when spec ("W:SECS") names worker i, else None."""
    if not spec:
        return None
    who, secs = spec.split(":")
    return float(secs) if int(who) == i else None


def work_after_group(i, opts):
    extend = worker_and_secs(opts.extend, i)
    if extend is not None:
        from ringmaster import worker
        worker.extend_timeout(extend)
        print("worker %d extended its deadlines by %g s" % (i, extend), flush=True)
    late = worker_and_secs(opts.ready_after, i)
    if late is not None:
        time.sleep(late)
    if never_ready(i, opts):
        from ringmaster import worker
        worker.phase("load-weights")
        print("worker %d never gets ready" % i, file=sys.stderr, flush=True)
        if opts.serve:
            time.sleep(opts.serve)
            return
        while True:
            time.sleep(3600)
    if opts.say_ready:
        from ringmaster import worker
        worker.ready()
    if opts.crash == i:
        print("worker %d crashes now" % i, file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGSEGV)
    if opts.raise_ == i:
        raise RuntimeError("worker %d failed on purpose" % i)
    if opts.exit:
        who, code = opts.exit.split(":")
        if int(who) == i:
            sys.exit(int(code))
    if opts.hang_after_init == i:
        while True:
            time.sleep(3600)
    if opts.serve:
        time.sleep(opts.serve)


def torch_spawn_entry(i, opts):
    work(i, opts)


def mp_entry(i, opts):
    work(i, opts)


def nested_entry(node, opts, per_node):
    import multiprocessing as mp
    ctx = mp.get_context("spawn")
    ps = [ctx.Process(target=mp_entry, args=(node * per_node + j, opts), name="Worker-%d" % (node * per_node + j))
          for j in range(per_node)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    sys.exit(0 if all(p.exitcode == 0 for p in ps) else 1)


def main(argv):
    opts = parse_args(argv)
    if opts.worker is not None:
        work(opts.worker, opts)
        return 0
    if not opts.port:
        opts.port = free_port()
    print("engine pid %d starts %d workers (%s)" % (os.getpid(), opts.workers, opts.method), flush=True)
    if opts.method == "torch-spawn":
        import torch.multiprocessing as tmp
        try:
            tmp.spawn(torch_spawn_entry, args=(opts,), nprocs=opts.workers, join=True)
        except Exception as e:
            print("engine: %s: %s" % (type(e).__name__, e), file=sys.stderr, flush=True)
            return 1
        return 0
    if opts.method in ("spawn", "fork", "forkserver"):
        import multiprocessing as mp
        ctx = mp.get_context(opts.method)
        engine_ready(opts)
        if opts.preload_torch and opts.method == "fork":
            import torch.distributed    # noqa: F401
        elif opts.preload_torch and opts.method == "forkserver":
            ctx.set_forkserver_preload(["torch.distributed"])
        ps = [ctx.Process(target=mp_entry, args=(i, opts), name="Worker-%d" % i) for i in range(opts.workers)]
        for p in ps:
            p.start()
        return join_all(ps, lambda p: p.exitcode)
    if opts.method == "nested":
        import multiprocessing as mp
        ctx = mp.get_context("spawn")
        per_node = opts.workers // 2
        ps = [ctx.Process(target=nested_entry, args=(n, opts, per_node), name="Node-%d" % n) for n in range(2)]
        for p in ps:
            p.start()
        return join_all(ps, lambda p: p.exitcode)
    if opts.method in ("popen", "native"):
        ps = []
        for i in range(opts.workers):
            if opts.method == "popen":
                cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(i)] + list(argv) + [
                    "--port", str(opts.port)]
            else:
                cmd = [opts.native_worker, "--index", str(i), "--name", "native-%d" % i,
                       "--group", "tcp://127.0.0.1:%d" % opts.port, str(i), str(opts.workers),
                       "--print", "native worker %d up" % i]
                if opts.sleep_before_init and int(opts.sleep_before_init.split(":")[0]) == i:
                    cmd = [opts.native_worker, "--index", str(i), "--print", "native worker %d hangs" % i, "--hang"]
                elif opts.crash == i:
                    cmd += ["--crash"]
                elif opts.hang_after_init == i:
                    cmd += ["--hang"]
            ps.append(subprocess.Popen(cmd))
        return join_all(ps, lambda p: p.returncode)
    print("engine: unknown --method %s" % opts.method, file=sys.stderr)
    return 2


def engine_ready(opts):
    if opts.engine_ready:
        from ringmaster import worker
        worker.ready("workers started")


def join_all(ps, code_of):
    """Waits for every worker, as an engine's supervisor loop would: the
    first to fail ends the engine (the others are left to the caller)."""
    while True:
        alive = False
        for p in ps:
            if hasattr(p, "join"):
                p.join(0.1)
                code = p.exitcode
            else:
                try:
                    code = p.wait(0.1)
                except subprocess.TimeoutExpired:
                    code = None
            if code is None:
                alive = True
            elif code != 0:
                print("engine: a worker exited with %d" % code, file=sys.stderr, flush=True)
                return 1
        if not alive:
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
