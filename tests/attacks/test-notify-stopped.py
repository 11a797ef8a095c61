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
tmp = tempfile.mkdtemp(prefix="rmtest-")
told = Fifo(tmp, "told")
go = os.path.join(tmp, "go")
os.mkfifo(go)
rid = run_id("notify-stopped")
rp = os.path.join(tmp, "r.json")
steps = ["tell=" + told.path, "wait-fifo=" + go, "ready", "exit=0"]
p = start(rid, ["-n", str(N), "--ready-timeout", "120", "--", FAKE, "script"] + steps, env=clean_env(),
          report_path=rp)
wait_ready(told, N)
p.send_signal(signal.SIGSTOP)
fd = os.open(go, os.O_WRONLY)
os.write(fd, b"g" * N)      # one byte each
os.close(fd)
time.sleep(4)               # the attack: ringmaster stays stopped longer than the 2 s send bound
p.send_signal(signal.SIGCONT)
out, err = p.communicate(timeout=TIMEOUT)
log(err.decode(errors="replace")[-3000:])
check(p.returncode == 0, "exit 0: no rank's READY was lost (got %s)" % p.returncode)
check_nothing_left(rid)
finish()
