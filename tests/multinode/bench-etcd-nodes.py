# SPDX-License-Identifier: MIT
"""Simulated node supervisors against one local etcd (docs/multinode.md,
"1000 nodes"): runs tests/multinode/bench-etcd-nodes for each node count
against a fresh etcd, and adds etcd's CPU time during the steady state and
its resident memory at the end.  With --rendezvous, runs
tests/multinode/bench-rendezvous instead: N nodes registering with static
ranks (the baseline) and then through the rendezvous, all at once, and
etcd's CPU time during the rendezvous.  A benchmark, not a test.

    python3 tests/multinode/bench-etcd-nodes.py [--nodes 10,100,1000] [--steady 10] [--rendezvous]
"""

import argparse
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from etcdtest import Etcd  # noqa: E402

TOP_BUILDDIR = os.environ.get("top_builddir") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
PROGRAM = os.path.join(TOP_BUILDDIR, "tests", "multinode", "bench-etcd-nodes")
RDZV_PROGRAM = os.path.join(TOP_BUILDDIR, "tests", "multinode", "bench-rendezvous")


def one(nodes, steady, limit, rendezvous):
    with Etcd(quota_mib=2048) as etcd:
        argv = [RDZV_PROGRAM, etcd.endpoint, str(nodes)] if rendezvous else \
            [PROGRAM, etcd.endpoint, str(nodes), str(steady)]
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        cpu0 = t0 = None
        deadline = time.monotonic() + limit
        out = []
        for line in p.stdout:
            line = line.rstrip("\n")
            if line in ("steady: start", "rendezvous: start"):
                cpu0, t0 = etcd.cpu_seconds(), time.monotonic()
                continue
            if line in ("steady: end", "rendezvous: end") and cpu0 is not None:
                cpu, dt = etcd.cpu_seconds() - cpu0, time.monotonic() - t0
                out.append("etcd: %.0f%% of a core in the %s (%.1f CPU s in %.1f s)" %
                           (100 * cpu / dt, line.split(":")[0].replace("steady", "steady state"), cpu, dt))
                continue
            out.append(line)
            if time.monotonic() > deadline:
                p.kill()
                out.append("(stopped: over %d s)" % limit)
                break
        rc = p.wait()
        out.append("etcd: %.0f MiB resident at the end" % (etcd.rss_kib() / 1024))
        if rc != 0:
            out.append("bench-etcd-nodes exited %d" % rc)
        return rc, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", default="10,100,1000")
    ap.add_argument("--steady", type=int, default=10)
    ap.add_argument("--limit", type=int, default=600, help="seconds per node count at most")
    ap.add_argument("--rendezvous", action="store_true", help="the rendezvous' cost (bench-rendezvous) instead")
    args = ap.parse_args()
    if not Etcd.available():
        print("no etcd server (Debian: apt-get install etcd-server)")
        return 77
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    print("machine: %d CPUs, %s" % (os.cpu_count(), subprocess.run(["etcd", "--version"], capture_output=True,
                                                                    text=True).stdout.splitlines()[0]))
    status = 0
    for n in [int(x) for x in args.nodes.split(",")]:
        rc, lines = one(n, args.steady, args.limit, args.rendezvous)
        print("\n".join(lines), flush=True)
        print()
        status = status or rc
    return status


if __name__ == "__main__":
    sys.exit(main())
