#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The stack tool is bounded and never breaks the diagnosis.  Fake tools
# found first on PATH: one that hangs (with a child of its own) is killed
# at --stack-timeout, it and its child are reaped, neither is counted as
# an orphan of the job; --diagnose-timeout bounds the whole diagnosis even
# when the tool's own limit is longer; a tool that fails (as eu-stack does
# without ptrace rights) gives its message in the diagnosis; a missing one
# is said so.
import tempfile
from diagtest import *

tmp = tempfile.mkdtemp(prefix="rmtest-")
bindir = os.path.join(tmp, "bin")
os.mkdir(bindir)


def fake_tool(name, body):
    path = os.path.join(bindir, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)


def read_pid(path):
    with open(path) as f:
        return int(f.read())


def alive_or_zombie(pid):
    return os.path.exists("/proc/%d" % pid)


def hung_job(name, args, path=None):
    ready = Fifo(tmp, "ready-" + name)
    rid = run_id("diag-tool-" + name)
    rp = os.path.join(tmp, name + ".json")
    env = clean_env(PATH=path or bindir + ":" + os.environ.get("PATH", "/usr/bin:/bin"))
    p = start(rid, ["-n", "1"] + args + ["--", HANG, "--ready", ready.path, "read"], env=env, report_path=rp,
              stdout=subprocess.DEVNULL)
    err = StderrReader(p)
    pids = wait_ready(ready, 1)
    ready.close()
    require(wait_threads_blocked(pids[0], 1), "%s: the rank is blocked" % name)
    return rid, rp, p, err, pids


# A tool that never finishes; its child (in its process group) neither.
# tool.pid appears whole (renamed into place), after child.pid is written.
fake_tool("eu-stack", 'sleep 1000 &\necho $! > %s/child.pid\necho $$ > %s/tool.pid.new\n'
          'mv %s/tool.pid.new %s/tool.pid\nwait\n' % (tmp, tmp, tmp, tmp))

rid, rp, p, err, pids = hung_job("timeout", ["--stack-tool", "eu-stack", "--stack-timeout", "1"])
text, took = sigusr2(p, err)
require(text is not None, "timeout: a diagnosis is printed")
log(text)
check(1.0 <= took < 4.5, "timeout: ended by --stack-timeout 1 s, before --diagnose-timeout 5 s (%.2f s)" % took)
check("eu-stack did not finish within 1.0 s: killed" in text, "timeout: the diagnosis says the tool was killed")
tool, child = read_pid(os.path.join(tmp, "tool.pid")), read_pid(os.path.join(tmp, "child.pid"))
check(p.poll() is None, "timeout: ringmaster goes on")
rc, alltext = stop(p, err)
check(rc == sig_status(signal.SIGTERM), "timeout: exit status 143")
check(not alive_or_zombie(tool), "timeout: the tool %d was killed and reaped (before the diagnosis ended)" % tool)
check(wait_gone([child], 10.0) is not None, "timeout: its child %d was killed" % child)
check("re-parented" not in alltext, "timeout: the tool's child was not taken for the job's orphan")
report = read_report(rp)
d = report["ranks"][0]["diagnosis"]
check(d["stack_tool"] == "eu-stack" and any("did not finish within 1.0 s" in e for e in d["errors"]),
      "timeout: JSON: the tool and why it has no stack")
check(report["orphans"]["seen"] == 0, "timeout: JSON: no orphans seen")
check(d["syscall"] == "read", "timeout: JSON: /proc part still there")
check_nothing_left(rid)

# --diagnose-timeout bounds the whole, even below --stack-timeout.
rid, rp, p, err, pids = hung_job("overall", ["--stack-tool", "eu-stack", "--stack-timeout", "60",
                                             "--diagnose-timeout", "1"])
text, took = sigusr2(p, err)
require(text is not None, "overall: a diagnosis is printed")
check(1.0 <= took < 4.5, "overall: ended by --diagnose-timeout 1 s (%.2f s)" % took)
check("eu-stack did not finish within 1.0 s: killed" in text or
      "the diagnosis ran out of time (--diagnose-timeout 1.0 s) while eu-stack ran: it was killed" in text,
      "overall: the diagnosis says the tool was stopped")
tool, child = read_pid(os.path.join(tmp, "tool.pid")), read_pid(os.path.join(tmp, "child.pid"))
rc, alltext = stop(p, err)
# Killed; ringmaster may exit before its reaping (then PID 1 reaps them).
check(wait_gone([tool, child], 10.0) is not None, "overall: the tool and its child were killed")
check(read_report(rp)["orphans"]["seen"] == 0, "overall: JSON: no orphans seen")
check_nothing_left(rid)

# The rank dies during the diagnosis: the job ends as usual, at once, and
# the tool still running is killed.
rid, rp, p, err, pids = hung_job("dies", ["--stack-tool", "eu-stack", "--stack-timeout", "60",
                                          "--diagnose-timeout", "60"])
os.unlink(os.path.join(tmp, "tool.pid"))
os.kill(p.pid, signal.SIGUSR2)
deadline = time.monotonic() + TIMEOUT
while not os.path.exists(os.path.join(tmp, "tool.pid")) and time.monotonic() < deadline:
    time.sleep(0.01)    # the fake tool writes its pid once started
tool, child = read_pid(os.path.join(tmp, "tool.pid")), read_pid(os.path.join(tmp, "child.pid"))
t0 = time.monotonic()
os.kill(pids[0], signal.SIGKILL)
rc = p.wait(timeout=TIMEOUT)
took = time.monotonic() - t0
alltext = err.read_to_eof()
log(alltext)
check(rc == sig_status(signal.SIGKILL), "dies: exit status 137, the rank's")
check(took < 30, "dies: ringmaster did not wait for the diagnosis (%.2f s)" % took)
check(wait_gone([tool, child], 10.0) is not None, "dies: the tool and its child are gone")
check_nothing_left(rid)

# A tool killed at its timeout that left the rank stopped (as a tracer killed
# right after PTRACE_ATTACH can): the rank gets SIGCONT and goes on.
fake_tool("eu-stack", 'kill -STOP "$2"\nexec sleep 1000\n')
rid, rp, p, err, pids = hung_job("stopped", ["--stack-tool", "eu-stack", "--stack-timeout", "0.5"])
text, took = sigusr2(p, err)
require(text is not None, "stopped: a diagnosis is printed")
check("eu-stack left process %d stopped: it was sent SIGCONT" % pids[0] in text, "stopped: the diagnosis says so")
check(wait_threads_blocked(pids[0], 1, timeout=10), "stopped: the rank runs again (blocked in read, not stopped)")
rc, alltext = stop(p, err)
check(rc == sig_status(signal.SIGTERM), "stopped: exit status 143")
check_nothing_left(rid)

# A failing tool: its message is the reason.
fake_tool("eu-stack", 'echo "eu-stack: dwfl_linux_proc_attach pid $2: Operation not permitted" >&2\nexit 1\n')
rid, rp, p, err, pids = hung_job("fails", ["--stack-tool", "eu-stack"])
text, took = sigusr2(p, err)
require(text is not None, "fails: a diagnosis is printed")
log(text)
check("eu-stack exited with status 1" in text and "dwfl_linux_proc_attach pid %d: Operation not permitted" % pids[0]
      in text, "fails: the diagnosis gives the tool's status and message")
rc, alltext = stop(p, err)
d = read_report(rp)["ranks"][0]["diagnosis"]
check(d["native_stack"] == [] and "eu-stack exited with status 1" in d["errors"], "fails: JSON errors")
check(read_report(rp)["orphans"]["seen"] == 0, "fails: JSON: no orphans seen")
check_nothing_left(rid)

# No such tool on PATH (an empty folder).
empty = os.path.join(tmp, "empty")
os.mkdir(empty)
rid, rp, p, err, pids = hung_job("missing", ["--stack-tool", "gdb"], path=empty)
text, took = sigusr2(p, err)
require(text is not None, "missing: a diagnosis is printed")
check("no native stack: gdb is not on PATH (--stack-tool)" in text, "missing: the diagnosis says gdb is not on PATH")
rc, alltext = stop(p, err)
d = read_report(rp)["ranks"][0]["diagnosis"]
check(d["stack_tool"] is None and any("gdb is not on PATH" in e for e in d["errors"]), "missing: JSON says so too")
check_nothing_left(rid)

finish()
