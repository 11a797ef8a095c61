#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# ringmaster as a container's init, side by side with tini, in a PID
# namespace of its own (unshare --pid --fork --mount-proc; skipped where not
# permitted or without tini), on tini's documented cases:
#   - a command whose orphans exit: every zombie reaped (the command counts
#     the zombies of its namespace; a PID 1 that does not reap is the control);
#   - SIGTERM to the init: forwarded, exit status 143;
#   - SIGUSR1 to the init: forwarded (the command's trap exits 42);
#   - exit 3 -> 3; killed by SIGKILL -> 137; a missing binary -> 127;
# as PID 1 (`tini -- CMD` vs `ringmaster run -n 1 -- CMD`), and as a
# subreaper under a PID 1 that reaps nothing (`tini -s -- CMD` vs
# `ringmaster run --init -n 1 -- CMD`).
import re
import shutil
import tempfile
from rmtest import *

TINI = shutil.which("tini") or "/usr/bin/tini"
UNSHARE = shutil.which("unshare")
PY = sys.executable

# A PID 1 that starts its command and waits for it alone: orphans stay zombies under it.
BAD_INIT = [PY, "-c", "import os, sys\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    os.execvp(sys.argv[1], sys.argv[1:])\n"
            "_, status = os.waitpid(pid, 0)\n"
            "sys.exit(os.waitstatus_to_exitcode(status) % 256)\n"]

# Leaves 5 grandchildren that exit 50 ms later (orphans of whoever reaps for it), then
# counts the zombies of its PID namespace until none is left or 2 s passed.  Waiting
# for someone else's reaping cannot be an event here: a bounded look every 20 ms.
ZOMBIE_MAKER = [PY, "-c", "import os, time\n"
                "for i in range(5):\n"
                "    pid = os.fork()\n"
                "    if pid == 0:\n"
                "        if os.fork() == 0:\n"
                "            time.sleep(0.05)\n"
                "            os._exit(0)\n"
                "        os._exit(0)\n"
                "    os.waitpid(pid, 0)\n"
                "def zombies():\n"
                "    n = 0\n"
                "    for d in os.listdir('/proc'):\n"
                "        try:\n"
                "            st = open('/proc/%s/stat' % d).read() if d.isdigit() else ''\n"
                "        except OSError:\n"
                "            continue\n"
                "        if st and st[st.rindex(')') + 2] == 'Z':\n"
                "            n += 1\n"
                "    return n\n"
                "time.sleep(0.1)\n"
                "end = time.monotonic() + 2\n"
                "while zombies() and time.monotonic() < end:\n"
                "    time.sleep(0.02)\n"
                "print('zombies %d' % zombies(), flush=True)\n"]


def in_namespace(argv):
    return [UNSHARE, "--pid", "--fork", "--mount-proc", "--"] + argv


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def children(pid):
    """pid's children, but ringmaster's containment watcher (docs/containment.md),
    which is re-parented to the init when it is not ringmaster itself."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split() if comm(int(x)) != "rm-watcher"]
    except OSError:
        return []


def init_argv(tool, subreaper, cmd, rid):
    if tool == "tini":
        argv = [TINI] + (["-s"] if subreaper else []) + ["--"] + cmd
    else:
        argv = [RINGMASTER, "run", "--run-id", rid, "--no-preflight", "--no-tty", "-n", "1"] + \
               (["--init"] if subreaper else []) + ["--"] + cmd
    return in_namespace(BAD_INIT + argv if subreaper else argv)


def run_case(tool, subreaper, cmd, signal_to_send=None, fifo=None):
    """Runs CMD under tool; returns (exit status, stdout text)."""
    rid = run_id("init-%s" % tool)
    p = subprocess.Popen(init_argv(tool, subreaper, cmd, rid), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=clean_env())
    if signal_to_send:
        fifo.wait_lines(1)
        # unshare's child is the namespace's PID 1; under the bad init, the tool is its child.
        target = children(p.pid)
        if subreaper and target:
            target = children(target[0])
        require(len(target) == 1, "%s: found the process to signal (%s)" % (tool, target))
        os.kill(target[0], signal_to_send)
    try:
        out, err = p.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        log("%s did not finish" % tool)
    log("---- %s%s: exit status %s\n%s%s" % (tool, " (subreaper)" if subreaper else "", p.returncode,
                                            out.decode(errors="replace"), err.decode(errors="replace")[-3000:]))
    if tool == "ringmaster":
        check_nothing_left(rid)
    return p.returncode, out.decode(errors="replace")


def zombie_count(text):
    m = re.search(r"zombies (\d+)", text)
    return int(m.group(1)) if m else None


if not UNSHARE or not os.path.exists(TINI):
    skip("unshare or tini is not installed")
probe = subprocess.run(in_namespace(["true"]), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
if probe.returncode != 0:
    skip("no PID namespace here: %s" % probe.stderr.decode(errors="replace").strip())

tmp = tempfile.mkdtemp(prefix="rmtest-")

# The control: under a PID 1 that does not reap, the orphans stay zombies (the check can fail).
p = subprocess.run(in_namespace(BAD_INIT + ZOMBIE_MAKER), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                   timeout=TIMEOUT)
control = zombie_count(p.stdout.decode())
check(control is not None and control > 0, "control: zombies pile up under a PID 1 that does not reap (%s)" % control)

for subreaper in (False, True):
    where = "subreaper under a non-reaping PID 1" if subreaper else "PID 1"
    results = {}
    for tool in ("tini", "ringmaster"):
        r = {}
        rc, out = run_case(tool, subreaper, ZOMBIE_MAKER)
        r["zombies"] = (rc, zombie_count(out))
        r["exit 3"] = run_case(tool, subreaper, ["sh", "-c", "exit 3"])[0]
        r["SIGKILL"] = run_case(tool, subreaper, ["sh", "-c", "kill -KILL $$"])[0]
        r["missing"] = run_case(tool, subreaper, ["/nonexistent/ringmaster-test-binary"])[0]
        fifo = Fifo(tmp, "ready-%s-%d" % (tool, subreaper))
        r["SIGTERM"] = run_case(tool, subreaper, ["sh", "-c", "echo ready > %s; exec sleep 1000" % fifo.path],
                                signal.SIGTERM, fifo)[0]
        r["SIGUSR1"] = run_case(tool, subreaper,
                                ["sh", "-c", "trap 'exit 42' USR1; echo ready > %s; sleep 1000 & wait" % fifo.path],
                                signal.SIGUSR1, fifo)[0]
        fifo.close()
        results[tool] = r
    t, m = results["tini"], results["ringmaster"]
    log("%s: tini %s, ringmaster %s" % (where, t, m))
    check(t["zombies"] == (0, 0), "%s: tini reaps every orphan (exit status, zombies: %s)" % (where, t["zombies"]))
    check(m["zombies"] == (0, 0),
          "%s: ringmaster reaps every orphan (exit status, zombies: %s)" % (where, m["zombies"]))
    for case, expected in (("exit 3", 3), ("SIGKILL", 137), ("missing", 127), ("SIGTERM", 143), ("SIGUSR1", 42)):
        check(t[case] == expected, "%s: %s: tini exits %d (%s)" % (where, case, expected, t[case]))
        check(m[case] == t[case], "%s: %s: ringmaster exits as tini does (%s, tini %s)" % (where, case, m[case],
                                                                                          t[case]))

shutil.rmtree(tmp)
finish()
