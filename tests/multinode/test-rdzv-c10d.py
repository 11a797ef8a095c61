# SPDX-License-Identifier: MIT
"""The c10d rendezvous on one machine (its join across nodes is test-netns-rdzv.py's case c10d): `ringmaster run
--nnodes 2 --rendezvous c10d://127.0.0.1:PORT` alone hosts the TCPStore, is node 0, and when nobody joins
within --join-timeout fails (status 100) naming how many joined and who; the same with --nnodes 1:2 closes
at the last call with one node and runs; a bad --rendezvous is refused.  Skips (77) without torch."""

import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mntest import RINGMASTER, check, summary  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args, timeout=120):
    env = dict(os.environ)
    if os.environ.get("RM_TORCH_PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join([os.environ["RM_TORCH_PYTHONPATH"]] +
                                            ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    t = time.monotonic()
    p = subprocess.run([RINGMASTER, "run"] + args, env=env, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr, time.monotonic() - t


def main():
    env = dict(os.environ)
    if os.environ.get("RM_TORCH_PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["RM_TORCH_PYTHONPATH"]
    if subprocess.run([sys.executable, "-c", "import torch.distributed"], env=env, capture_output=True).returncode:
        print("SKIP: torch is not installed (RM_TORCH_PYTHONPATH)")
        return 77
    cmd = ["--", "sh", "-c", 'echo "NODE $GROUP_RANK of $GROUP_WORLD_SIZE at $MASTER_ADDR:$MASTER_PORT"']

    port = free_port()
    rc, out, took = run(["--nnodes", "2", "--rendezvous", "c10d://127.0.0.1:%d" % port, "--join-timeout", "3",
                         "-n", "1"] + cmd)
    check(rc == 100 and "timed out" in out and "1 node joined" in out and "2 needed" in out,
          "alone of 2: the join timeout, naming how many joined (status %s, %.1f s)" % (rc, took), out)
    check("NODE" not in out, "no rank started", out)

    port = free_port()
    rc, out, took = run(["--nnodes", "1:2", "--last-call-timeout", "1", "--rendezvous", "c10d://127.0.0.1:%d" % port,
                         "--join-timeout", "60", "-n", "1"] + cmd)
    check(rc == 0 and "NODE 0 of 1 at 127.0.0.1:" in out and "Fatal" not in out,
          "1:2 alone: the round closes at the last call with one node, which runs (%s, %.1f s)" % (rc, took), out)

    rc, out, _ = run(["--nnodes", "2", "--rendezvous", "tcp://x:1", "-n", "1"] + cmd)
    check(rc == 100 and "give c10d://HOST:PORT" in out, "a bad --rendezvous is refused", out)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
