#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Weaker point: while ringmaster is stopped (SIGSTOP, a debugger, a frozen
# cgroup) for longer than the worker API's send bound (2 s), the ranks'
# datagrams found the socket's queue full (net.unix.max_dgram_qlen, 10 by
# default) and were lost: a lost READY failed a healthy job.  A state
# change (READY=1) now waits for room much longer (rm_notify.h); the job
# must succeed, every rank ready.
import tempfile
from attack import *

N = 16          # more READYs than the socket's queue holds
TOP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
PACKAGE = os.path.realpath(os.path.join(TOP, "engine", "python"))


def attack(label, worker, env):
    tmp = tempfile.mkdtemp(prefix="rmtest-")
    told = Fifo(tmp, "told")
    go = os.path.join(tmp, "go")
    os.mkfifo(go)
    rid = run_id("notify-stopped-" + label)
    p = start(rid, ["-n", str(N), "--ready-timeout", "120", "--"] + worker(told.path, go), env=env)
    wait_ready(told, N)
    p.send_signal(signal.SIGSTOP)
    # Held open (read-write, so it never blocks) until the end: a rank that opens the FIFO late still finds a writer.
    fd = os.open(go, os.O_RDWR)
    os.write(fd, b"g" * N)      # one byte each
    time.sleep(4)               # the attack: ringmaster stays stopped longer than the 2 s send bound
    p.send_signal(signal.SIGCONT)
    out, err = p.communicate(timeout=TIMEOUT)
    os.close(fd)
    log(err.decode(errors="replace")[-3000:])
    check(p.returncode == 0, "%s: exit 0: no rank's READY was lost (got %s)" % (label, p.returncode))
    check_nothing_left(rid)


# The C API (engine/notify.c), through the fake worker.
attack("c", lambda told, go: [FAKE, "script", "tell=" + told, "wait-fifo=" + go, "ready", "exit=0"], clean_env())

# The Python API (ringmaster.worker).
# The go FIFO is opened (read-write: never blocks, never sees EOF) before the rank says it is there.
PY = ("import os, sys\n"
      "from ringmaster import worker\n"
      "go = os.open(sys.argv[2], os.O_RDWR)\n"
      "open(sys.argv[1], 'w').write('ready %s %d\\n' % (os.environ['RANK'], os.getpid()))\n"
      "os.read(go, 1)\n"
      "sys.exit(0 if worker.ready() else 5)\n")
if os.path.isdir(os.path.join(PACKAGE, "ringmaster")):
    attack("python", lambda told, go: [sys.executable, "-c", PY, told, go], clean_env(PYTHONPATH=PACKAGE))
else:
    log("no engine/python: the Python API is not tested")
finish()
