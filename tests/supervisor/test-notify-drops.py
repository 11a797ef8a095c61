#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# What must not be trusted is dropped and counted, and ringmaster goes on:
# a rank's garbage (oversized, not UTF-8, malformed lines and values, empty,
# a NUL, a READY=1 carrying an fd) and datagrams from processes that are not
# ranks (the test itself, and a child of the test).  Nothing of them
# applies: the rank that sent garbage is not ready, no phase appears.
import socket
import tempfile
from rmtest import *

tmp = tempfile.mkdtemp(prefix="rmtest-")
told = Fifo(tmp, "told")
barrier = os.path.join(tmp, "barrier")
os.mkfifo(barrier)
rid = run_id("notify-drops")
rp = os.path.join(tmp, "r.json")
steps = ["garbage", "tell=" + told.path, "wait-fifo=" + barrier, "exit=0"]
p = start(rid, ["-n", "2", "--", FAKE, "--rank", "0", "script"] + steps +
          ["--others", "script", "tell=" + told.path, "wait-fifo=" + barrier, "exit=0"],
          env=clean_env(), report_path=rp)
wait_ready(told, 2)

# Strangers: this process, and a child of it (neither is a rank nor a rank's descendant).
address = run_dir_of(rid) + "/notify"
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1\nX_RINGMASTER_PHASE=stranger", address)
child = os.fork()
if child == 0:
    try:
        s.sendto(b"WATCHDOG=trigger", address)
    finally:
        os._exit(0)
os.waitpid(child, 0)
s.close()

fd = os.open(barrier, os.O_RDWR)
os.write(fd, b"xx")
out, err = p.communicate(timeout=TIMEOUT)
os.close(fd)
res = Result(p.returncode, out, err, read_report(rp), 0)
res.dump()
check(res.rc == 0, "exit status 0: nothing dropped changed the job (no WATCHDOG=trigger applied)")
r = res.report
require(r is not None, "JSON report written")
d = r["notify"]["dropped"]
want = {"oversized": 1, "not_utf8": 1, "malformed": 4, "with_fds": 1, "unknown_sender": 2, "no_credentials": 0}
check(d == want, "drops counted by reason: %s (want %s)" % (d, want))
check(r["notify"]["accepted"] == 0 and r["notify"]["received"] == 9, "9 received, none accepted (%s)" % r["notify"])
for i in range(2):
    e = rank_entry(r, i)
    check(e["ready"] is False and e["phase"] is None and e["phases"] == [] and e["notify_datagrams"] == 0,
          "rank %d: nothing applied" % i)
check(r["milestones"] == [], "no milestone from a stranger")
for reason in ("it is longer than 4096 bytes", "it is not UTF-8", "it carried file descriptors",
               "its sender is neither a rank nor a descendant of one", "it is not KEY=VALUE lines"):
    check(res.stderr.count(reason) == 1, "warned once: %s" % reason)
check_nothing_left(rid)
finish()
