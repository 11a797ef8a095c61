# SPDX-License-Identifier: MIT
"""A program that starts a worker with a plain os.fork() (no
multiprocessing), as some engines do: the parent prints on stdout and
stderr, forks; the child prints "child pid P up" and "child about to
crash", then aborts (SIGABRT); the parent waits for it and lives on for
SECS (argv[1], default 30), then exits 0."""
import os
import sys
import time

print("parent pid %d up" % os.getpid(), flush=True)
print("parent on stderr", file=sys.stderr, flush=True)
pid = os.fork()
if pid == 0:
    print("child pid %d up" % os.getpid(), flush=True)
    print("child about to crash", file=sys.stderr, flush=True)
    os.abort()
os.waitpid(pid, 0)
print("parent saw the child end", file=sys.stderr, flush=True)
time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 30)
