#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test-spawned-crash.py's case of a worker that raises an exception.
import os
import runpy
import sys

sys.argv = [os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-spawned-crash.py"), "raise"]
runpy.run_path(sys.argv[0], run_name="__main__")
