# SPDX-License-Identifier: MIT
"""torchrun parity: the same small torch.distributed programs (gloo, CPU;
RM_PARITY_BACKEND=nccl: NCCL, one GPU per rank) under
`torchrun --nproc-per-node N` and under `ringmaster run -n N`.

    parity.py --ringmaster PATH [--nproc N] [--cases env,all_reduce,...] [--cli run|torchrun]
    parity.py worker CASE          (what both launchers run, per rank)

Cases:
  env          the environment contract: torchrun's variables, and what
               init_process_group makes of them; compared between launchers
  all_reduce   sums of integer and float tensors; compared
  barrier      ranks arrive at different times, none leaves early; compared
  raise        rank 1 raises after init: both fail; ringmaster's output names
               rank 1 and the Python exception
  hang         rank 1 hangs inside init_process_group (its init_method names
               a port nobody listens on, a wrong MASTER_ADDR as it happens);
               ringmaster must end the job within its phase deadline with
               the faulthandler traceback inside init_process_group, where
               torchrun waits for gloo's 30-minute timeout
--cli torchrun starts ringmaster as `ringmaster torchrun` with the very
options given to torchrun (its command-line translation, torchrun-cli.c),
rather than as `ringmaster run -n N`; the hang case needs run's
--phase-timeout and is left out there.
Each rank prints its results as `PARITY {json}` lines; launchers may
prefix lines (rank tags), so the records are found anywhere in a line.
Exit: 0 all cases as expected, 1 a difference, 77 torch missing.
"""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRCDIR = os.environ.get("top_srcdir") or os.path.normpath(os.path.join(HERE, os.pardir, os.pardir, os.pardir))
RECORD = re.compile(r"PARITY (\{)")

# torchrun's environment contract (see shared/REFERENCE.md).
CONTRACT = ["RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE",
            "ROLE_RANK", "ROLE_NAME", "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
            "TORCHELASTIC_RESTART_COUNT", "TORCHELASTIC_MAX_RESTARTS", "TORCHELASTIC_RUN_ID",
            "TORCHELASTIC_USE_AGENT_STORE", "TORCHELASTIC_ERROR_FILE", "TORCH_NCCL_ASYNC_ERROR_HANDLING",
            "OMP_NUM_THREADS"]
# Their values must agree too, except these (ports, ids, paths differ by run).
VALUE_FREE = {"MASTER_PORT", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_ERROR_FILE", "TORCHELASTIC_USE_AGENT_STORE"}


# ------------------------------------------------------------ per rank

def record(**fields):
    print("PARITY " + json.dumps(fields, sort_keys=True), flush=True)


def worker(case):
    import datetime
    import torch
    import torch.distributed as dist

    try:
        from ringmaster import worker as rm
    except ImportError:
        rm = None
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    timeout = datetime.timedelta(minutes=30)            # gloo's default, named
    backend = os.environ.get("RM_PARITY_BACKEND", "gloo")
    device = "cpu"
    if backend == "nccl":
        device = "cuda:%d" % int(os.environ["LOCAL_RANK"])
        torch.cuda.set_device(device)

    if case == "hang" and rank == 1:
        # A wrong master address on one rank: its store client retries
        # inside init_process_group, the others wait for it there.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead_port = s.getsockname()[1]
        dist.init_process_group(backend, init_method="tcp://127.0.0.1:%d" % dead_port,
                                rank=rank, world_size=world, timeout=timeout)
    else:
        dist.init_process_group(backend, timeout=timeout)
    if rm is not None:
        rm.ready()

    if case == "env":
        record(rank=rank, env={k: os.environ.get(k) for k in CONTRACT},
               dist_rank=dist.get_rank(), dist_world=dist.get_world_size(),
               backend=str(dist.get_backend()))
    elif case == "all_reduce":
        t = torch.tensor([rank + 1], dtype=torch.int64, device=device)
        dist.all_reduce(t)
        f = torch.arange(1000, dtype=torch.float64, device=device) * (rank + 1)
        dist.all_reduce(f, op=dist.ReduceOp.SUM)
        m = torch.tensor([float(rank)], device=device)
        dist.all_reduce(m, op=dist.ReduceOp.MAX)
        record(rank=rank, sum=int(t.item()), fsum=float(f.sum().item()), max=float(m.item()))
    elif case == "barrier":
        time.sleep(0.3 * rank)
        arrived = torch.tensor([time.time()], dtype=torch.float64, device=device)
        dist.barrier()
        left = time.time()
        latest = arrived.clone()
        dist.all_reduce(latest, op=dist.ReduceOp.MAX)
        record(rank=rank, left_after_last_arrival=bool(left >= latest.item() - 0.01))
    elif case == "raise":
        if rank == 1:
            raise ValueError("rank 1 fails on purpose")
        dist.barrier()
        record(rank=rank, unexpected="passed the barrier")
    elif case == "hang":
        record(rank=rank, unexpected="init_process_group returned")
    dist.destroy_process_group()
    return 0


# ------------------------------------------------------------ driver

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(argv, env, timeout):
    start = time.monotonic()
    try:
        p = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=timeout, start_new_session=True)
        return p.returncode, p.stdout, time.monotonic() - start
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return None, out, time.monotonic() - start


def records(output):
    # Each record is decoded where it starts: under torchrun the ranks share
    # one stdout, so two records can land on one line.
    decoder = json.JSONDecoder()
    found = [decoder.raw_decode(output, m.start(1))[0] for m in RECORD.finditer(output)]
    return sorted(found, key=lambda r: r["rank"])


def normalise_env(recs):
    for r in recs:
        for k in VALUE_FREE:
            if r["env"].get(k) is not None:
                r["env"][k] = "<set>"
    return recs


class Driver:
    def __init__(self, args):
        self.args = args
        self.failures = []
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.join(TOP_SRCDIR, "engine", "python"),
                                                          env.get("PYTHONPATH")]))
        env.pop("OMP_NUM_THREADS", None)
        self.env = env

    def torchrun(self, case, timeout):
        argv = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(self.args.nproc),
                "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
                os.path.abspath(__file__), "worker", case]
        return launch(argv, self.env, timeout)

    def ringmaster(self, case, timeout, extra=()):
        if self.args.cli == "torchrun":
            argv = [self.args.ringmaster, "torchrun", "--nproc-per-node", str(self.args.nproc),
                    "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
                    os.path.abspath(__file__), "worker", case]
            return launch(argv, self.env, timeout)
        argv = [self.args.ringmaster, "run", "-n", str(self.args.nproc)] + list(extra) + \
            self.args.ringmaster_flags.split() + ["--", sys.executable, os.path.abspath(__file__), "worker", case]
        return launch(argv, self.env, timeout)

    def check(self, ok, what, output=""):
        print("%s: %s" % ("ok  " if ok else "FAIL", what), flush=True)
        if not ok:
            self.failures.append(what)
            if output:
                print("---- output\n" + output[-6000:] + "\n----", flush=True)

    def compared(self, case):
        t_rc, t_out, t_s = self.torchrun(case, 240)
        r_rc, r_out, r_s = self.ringmaster(case, 240)
        print("%s: torchrun %s in %.1f s, ringmaster %s in %.1f s" % (case, t_rc, t_s, r_rc, r_s))
        self.check(t_rc == 0, "%s: torchrun succeeds" % case, t_out)
        self.check(r_rc == 0, "%s: ringmaster succeeds" % case, r_out)
        t_rec, r_rec = records(t_out), records(r_out)
        if case == "env":
            t_rec, r_rec = normalise_env(t_rec), normalise_env(r_rec)
        self.check(len(t_rec) == self.args.nproc, "%s: one record per rank under torchrun" % case, t_out)
        self.check(t_rec == r_rec, "%s: the same results (torchrun %s, ringmaster %s)" % (
            case, json.dumps(t_rec), json.dumps(r_rec)))

    def raising(self):
        t_rc, t_out, t_s = self.torchrun("raise", 240)
        r_rc, r_out, r_s = self.ringmaster("raise", 240)
        print("raise: torchrun %s in %.1f s, ringmaster %s in %.1f s" % (t_rc, t_s, r_rc, r_s))
        self.check(t_rc not in (0, None), "raise: torchrun fails", t_out)
        self.check(r_rc not in (0, None), "raise: ringmaster fails", r_out)
        self.check("ValueError: rank 1 fails on purpose" in r_out, "raise: ringmaster shows the exception", r_out)
        self.check(re.search(r"rank[ =:]*1\b", r_out, re.I) is not None, "raise: ringmaster names rank 1", r_out)
        self.check("unexpected" not in r_out, "raise: no rank passed the barrier", r_out)

    def hanging(self):
        deadline = self.args.hang_deadline
        r_rc, r_out, r_s = self.ringmaster("hang", deadline + 60,
                                           ["--phase-timeout", "dist-init=%d" % deadline])
        print("hang: ringmaster %s in %.1f s (phase deadline %d s)" % (r_rc, r_s, deadline))
        self.check(r_rc not in (0, None), "hang: ringmaster ends the job with a failure", r_out)
        self.check(r_s < deadline + 30, "hang: within the deadline + 30 s", r_out)
        self.check("dist-init" in r_out, "hang: the report names the phase dist-init", r_out)
        self.check("init_process_group" in r_out, "hang: the traceback inside init_process_group", r_out)
        if self.args.torchrun_hang_seconds > 0:
            t_rc, t_out, t_s = self.torchrun("hang", self.args.torchrun_hang_seconds)
            print("hang: torchrun %s after %.1f s (None: still waiting, killed)" % (t_rc, t_s))

    def run(self):
        for case in self.args.cases.split(","):
            if case in ("env", "all_reduce", "barrier"):
                self.compared(case)
            elif case == "raise":
                self.raising()
            elif case == "hang":
                if self.args.cli == "torchrun":
                    raise SystemExit("the hang case needs `ringmaster run` (--cli run)")
                self.hanging()
            else:
                raise SystemExit("unknown case %r" % case)
        if self.failures:
            print("%d failed: %s" % (len(self.failures), "; ".join(self.failures)))
            return 1
        return 0


def main(argv):
    if len(argv) >= 3 and argv[1] == "worker":
        return worker(argv[2])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ringmaster", required=True)
    ap.add_argument("--nproc", type=int, default=int(os.environ.get("RM_PARITY_NPROC", "2")))
    ap.add_argument("--cases", default=os.environ.get("RM_PARITY_CASES", "env,all_reduce,barrier,raise,hang"))
    ap.add_argument("--ringmaster-flags", default=os.environ.get("RM_PARITY_RINGMASTER_FLAGS", ""),
                    help="extra options for `ringmaster run`")
    ap.add_argument("--cli", default=os.environ.get("RM_PARITY_CLI", "run"), choices=["run", "torchrun"],
                    help="ringmaster's command line: `ringmaster run -n N` or `ringmaster torchrun` with torchrun's")
    ap.add_argument("--hang-deadline", type=int, default=15, help="--phase-timeout dist-init for the hang case")
    ap.add_argument("--torchrun-hang-seconds", type=int,
                    default=int(os.environ.get("RM_PARITY_TORCHRUN_HANG_SECONDS", "20")),
                    help="how long to watch torchrun hang (0: do not)")
    args = ap.parse_args(argv[1:])
    try:
        import torch.distributed          # noqa: F401
    except ImportError:
        print("parity: torch is not installed for %s: skipped" % sys.executable)
        return 77
    return Driver(args).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
