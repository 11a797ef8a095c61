# SPDX-License-Identifier: MIT
"""test-netns.py's cases failure,straggler: a failure and a straggler through etcd across two namespaces (a test of its own, to stay
within run-with-timeout's bound on a busy two-core machine)."""

import os
import runpy

os.environ.setdefault("RM_MULTINODE_CASES", "failure,straggler")
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-netns.py"), run_name="__main__")
