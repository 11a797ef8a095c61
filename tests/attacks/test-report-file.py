#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Attack 2: --report FILE in a directory another user can write to.
#  a. A symlink planted at the temporary name (FILE.tmp-PID) or at FILE
#     itself must not be followed: the file it points to stays as it was.
#  b. A directory that is group/world-writable without the sticky bit and
#     owned by someone else (not us, not root) is refused before any rank
#     starts, with a message naming it.
import tempfile
from attack import *

tmp = tempfile.mkdtemp(prefix="rmtest-")
os.chmod(tmp, 0o1777)            # like /tmp: writable by all, sticky
victim = os.path.join(tmp, "victim")
with open(victim, "w") as f:
    f.write("precious\n")
go = GoFifo(tmp)
ready = Fifo(tmp)
report = os.path.join(tmp, "report.json")
rid = run_id("report-symlink")
p = start(rid, ["--", FAKE, "--ready", ready.path, "--go", go.path, "true"], env=clean_env(), report_path=report)
wait_ready(ready, 1)
# The attacker knows ringmaster's pid (ps): plants the temporary name.
os.symlink(victim, "%s.tmp-%d" % (report, p.pid))
go.go()
out, err = p.communicate(timeout=TIMEOUT)
log(err.decode(errors="replace")[-3000:])
with open(victim) as f:
    check(f.read() == "precious\n", "the symlink at FILE.tmp-PID was not followed: the victim is untouched")
check(os.path.islink("%s.tmp-%d" % (report, p.pid)), "the planted link is still a link")
check(os.path.isfile(report) and not os.path.islink(report), "the report was still written, as a plain file")
check_nothing_left(rid)

# FILE itself a symlink: rename() replaces the link, never writes through it.
for name in (report, "%s.tmp-%d" % (report, p.pid)):
    if os.path.lexists(name):
        os.unlink(name)
with open(victim, "w") as f:
    f.write("precious\n")
os.symlink(victim, report)
rid = run_id("report-symlink-final")
p = start(rid, ["--", FAKE, "true"], env=clean_env(), report_path=report)
p.communicate(timeout=TIMEOUT)
with open(victim) as f:
    check(f.read() == "precious\n", "a symlink at FILE is replaced, not written through")
check(not os.path.islink(report) and read_report(report)["run_id"] == rid, "FILE is now the report")

if os.geteuid() == 0:
    uid, gid = other_ids()
    bad = tempfile.mkdtemp(prefix="rmtest-")
    os.chmod(bad, 0o777)                 # world-writable, no sticky bit
    os.chown(bad, uid, gid)              # and not ours
    ready = Fifo(tmp, "ready2")
    rid = run_id("report-baddir")
    p = start(rid, ["--", FAKE, "--ready", ready.path, "true"], env=clean_env(),
              report_path=os.path.join(bad, "report.json"))
    out, err = p.communicate(timeout=TIMEOUT)
    err = err.decode(errors="replace")
    log(err[-2000:])
    check(p.returncode == 100, "a report directory others can write to is refused: exit 100 (got %s)" % p.returncode)
    check(bad in err and "--report" in err, "the message names the option and the directory")
    try:
        started = ready.wait_lines(1, timeout=0.5)
    except TimeoutError:
        started = []
    check(started == [], "no rank was started")
    check(os.listdir(bad) == [], "nothing was written there")
else:
    log("not root: the foreign-directory case needs another user")
finish()
