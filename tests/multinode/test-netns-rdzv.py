# SPDX-License-Identifier: MIT
"""test-netns.py's cases rdzv,elastic,c10d: three namespaces with no --node-rank number themselves through
etcd's rendezvous (or torch's TCPStore, c10d) and run gloo across them (a test of its own, to stay within run-with-timeout's bound on a busy
two-core machine)."""

import os
import runpy

os.environ.setdefault("RM_MULTINODE_CASES", "rdzv,elastic,c10d")
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-netns.py"), run_name="__main__")
