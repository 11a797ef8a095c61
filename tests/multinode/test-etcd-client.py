# SPDX-License-Identifier: MIT
"""The etcd v3 client (supervisor/etcd.c) and the cross-node view
(supervisor/cluster.c) and the rendezvous (supervisor/rendezvous.c)
against a real etcd: runs tests/multinode/test-etcd, test-cluster and
test-rendezvous with RM_ETCD_ENDPOINT set.  Skips (77) without
Debian's etcd-server or when ringmaster was built without libcurl."""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from etcdtest import Etcd  # noqa: E402

TOP_BUILDDIR = os.environ.get("top_builddir") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
PROGRAMS = [os.path.join(TOP_BUILDDIR, "tests", "multinode", p) for p in ("test-etcd", "test-cluster", "test-rendezvous")]

if not Etcd.available():
    print("SKIP: no etcd server (Debian: apt-get install etcd-server)")
    sys.exit(77)
with Etcd() as etcd:
    env = dict(os.environ, RM_ETCD_ENDPOINT=etcd.endpoint)
    rcs = []
    for program in PROGRAMS:
        print("== " + os.path.basename(program), flush=True)
        rcs.append(subprocess.call([program], env=env))
    if any(rc not in (0, 77) for rc in rcs):
        print("---- etcd's log\n" + etcd.tail())
        sys.exit(1)
sys.exit(0 if 0 in rcs else 77)
