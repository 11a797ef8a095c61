#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A terminal (`docker run -it`, or a user's): with one rank on a terminal the
# rank runs in the terminal's foreground process group, so that an
# interactive shell, Ctrl-C and Ctrl-Z behave.  On a pseudo-terminal driven
# as a user would:
#   - as a container's PID 1 (unshare --pid, setsid --ctty: the terminal is
#     PID 1's, as runc makes it), side by side with tini: `sh -i` has job
#     control, runs a command, Ctrl-C interrupts the foreground command and
#     the shell lives on, Ctrl-Z stops it, `exit 3` is the exit status;
#     a rank that is not a shell (cat) stopped by Ctrl-Z is continued (no job
#     control above PID 1), Ctrl-D ends it;
#   - under a user's interactive bash, without --init (--foreground on):
#     Ctrl-Z stops the rank and ringmaster with it (bash says Stopped), `fg`
#     brings both back, Ctrl-C ends the rank and ringmaster exits 130;
#   - --foreground on with 2 ranks, or without a terminal: a usage error.
import re
import shutil
from inittest import *

require_namespaces()
if not SETSID or not shutil.which("bash"):
    skip("setsid or bash is not installed")


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        for c in children(todo.pop()):
            out.append(c)
            todo.append(c)
    return out


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def wait_running(term, name, timeout=30):
    """Waits until a process called name runs under the terminal's process (polled: it is not our child)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in descendants(term.pid):
            try:
                with open("/proc/%d/stat" % p) as f:
                    st = f.read()
            except OSError:
                continue
            if comm(p) == name and st[st.rindex(")") + 2] in "SR":
                return p
        time.sleep(0.01)
    return None


env = clean_env(PS1="# ", ENV="", TERM="dumb")
rid = run_id("init-tty")


def container_like(tool, cmd):
    return Terminal(in_namespace([SETSID, "--ctty", "--"] + init_command(tool, cmd, rid)), env)


results = {}
for tool in ("tini", "ringmaster"):
    r = {}
    t = container_like(tool, ["sh", "-i"])
    r["prompt"] = t.expect(rb"# ")
    r["job control"] = b"can't access tty" not in t.buf and b"job control turned off" not in t.buf
    t.type(b"echo $((6 * 7))\n")
    r["command"] = t.expect(rb"\n42\r?\n")
    t.type(b"sleep 100\n")
    r["sleep running"] = wait_running(t, "sleep") is not None
    t.type(b"\x03")
    t.type(b"echo after-$?\n")
    r["Ctrl-C"] = t.expect(rb"after-130")
    t.type(b"sleep 200\n")
    r["sleep 200 running"] = wait_running(t, "sleep") is not None
    t.type(b"\x1a")
    r["Ctrl-Z"] = t.expect(rb"Stopped")
    t.type(b"fg\n")
    r["fg"] = t.expect(rb"sleep 200") and wait_running(t, "sleep") is not None
    t.type(b"\x03")
    t.type(b"echo back-$?\n")
    r["Ctrl-C after fg"] = t.expect(rb"back-130")
    t.type(b"exit 3\n")
    r["exit status"] = t.wait()
    results[tool] = r
    log("%s: %s" % (tool, r))
for case, value in results["tini"].items():
    check(value == (3 if case == "exit status" else True), "PID 1, sh -i: %s: tini (%s)" % (case, value))
    check(results["ringmaster"][case] == value, "PID 1, sh -i: %s: ringmaster as tini (%s)" %
          (case, results["ringmaster"][case]))
check_nothing_left(rid)

# A rank that is no shell, Ctrl-Z under PID 1: continued, with a notice.
t = container_like("ringmaster", ["cat"])
ok = wait_running(t, "cat") is not None
t.type(b"one\n")
check(ok and t.expect(rb"one\r?\none\r?\n"), "PID 1, cat: the terminal's line comes back")
t.type(b"\x1a")
check(t.expect(rb"rank 0 was stopped by SIGTSTP"), "PID 1, cat, Ctrl-Z: ringmaster says it continues the rank")
t.type(b"two\n")
check(t.expect(rb"two\r?\ntwo\r?\n"), "PID 1, cat, after Ctrl-Z: it runs on")
t.type(b"\x04")
check(t.wait() == 0, "PID 1, cat, Ctrl-D: exit status 0")
check_nothing_left(rid)

# Under a user's interactive shell.
t = Terminal([shutil.which("bash"), "--norc", "--noprofile", "-i"], clean_env(PS1="$ ", TERM="dumb"))
check(t.expect(rb"\$ "), "bash: prompt")
t.type(("%s run --run-id %s --no-preflight --foreground on -n 1 --prefix none -- cat\n" % (RINGMASTER, rid)).encode())
cat = wait_running(t, "cat")
t.type(b"hello\n")
check(cat is not None and t.expect(rb"hello\r?\nhello\r?\n"), "bash, ringmaster --foreground on: cat echoes a line")
t.type(b"\x1a")
check(t.expect(rb"Stopped"), "bash, Ctrl-Z: the job (ringmaster and its rank) stopped")
t.type(b"fg\n")
check(wait_running(t, "cat") is not None, "bash, fg: the rank runs again")
t.type(b"again\n")
check(t.expect(rb"again\r?\nagain\r?\n"), "bash, fg: the rank has the terminal again")
t.type(b"\x03")
check(t.expect(rb"exit status 130"), "bash, Ctrl-C: ringmaster's report")
t.type(b"echo rc=$?\n")
check(t.expect(rb"rc=130"), "bash, Ctrl-C: the rank ends, ringmaster exits 130")
check(b"rank 0" in t.buf and b"SIGINT" in t.buf, "bash, Ctrl-C: the report names SIGINT")
t.type(b"exit 0\n")
t.wait()
check_nothing_left(rid)

for args, why in ((["--foreground", "on", "-n", "2"], "2 ranks"), (["--foreground", "on", "-n", "1"], "no terminal"),
                  (["--foreground", "sometimes", "-n", "1"], "a bad value")):
    p = subprocess.run([RINGMASTER, "run"] + args + ["--", "true"], stdin=subprocess.DEVNULL, capture_output=True,
                       env=clean_env())
    check(p.returncode == 100 and "--foreground" in p.stderr.decode(),
          "--foreground on, %s: a usage error (%d: %s)" % (why, p.returncode, p.stderr.decode().strip()))
finish()
