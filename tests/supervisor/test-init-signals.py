#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Signals of ringmaster as a container's init, side by side with tini, in a PID
# namespace (unshare):
#   - dispositions: a signal ringmaster's parent ignores (nohup's SIGHUP) is
#     ignored in the ranks, as with tini; SIGPIPE, which ringmaster ignores
#     for itself, is not (unless the parent ignored it too); a stop signal
#     ignored at the start does not stop the job;
#   - SIGUSR2 asks for a diagnosis (not forwarded); --diagnose-signal none
#     forwards it under --init (the command's trap: 42, as with tini);
#     --diagnose-signal USR1 moves the diagnosis there and forwards SIGUSR2;
#     a stop signal, SIGKILL or an unknown name is a usage error.
import re
import select
import shutil
import tempfile
from inittest import *

require_namespaces()
tmp = tempfile.mkdtemp(prefix="rmtest-")
END = "======== end of the diagnosis ========"


def ignoring(*sigs):
    def pre():
        for s in sigs:
            signal.signal(s, signal.SIG_IGN)
    return pre


def start_init(tool, script, ignore=(), namespace=True, extra=()):
    """Starts tool with the command sh -c SCRIPT (FIFO replaced); returns (popen, fifo, pid to signal, rid)."""
    fifo = Fifo(tmp, "ready-%d" % len(os.listdir(tmp)))
    rid = run_id("init-signals")
    argv = init_command(tool, ["sh", "-c", script.replace("FIFO", fifo.path)], rid, extra)
    if not namespace:
        argv = [a for a in argv if a != "--init"]
    p = subprocess.Popen(in_namespace(argv) if namespace else argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env(), preexec_fn=ignoring(*ignore))
    return p, fifo, rid


def finish_init(tool, p, fifo, rid):
    out, err = p.communicate(timeout=TIMEOUT)
    fifo.close()
    out, err = out.decode(errors="replace"), err.decode(errors="replace")
    log("---- %s: exit status %s\n%s%s" % (tool, p.returncode, out, err[-4000:]))
    if tool == "ringmaster":
        check_nothing_left(rid)
    return p.returncode, out, err


def target(p, namespace=True):
    return init_pid(p.pid) if namespace else p.pid


# ---- Dispositions: the command reports its own (SigIgn), then ends.
REPORT = 'echo "$$" > FIFO; read -r line < /proc/$$/status; grep SigIgn /proc/$$/status'
for ignore, where in (((signal.SIGHUP,), "the parent ignores SIGHUP"),
                      ((signal.SIGHUP, signal.SIGPIPE), "the parent ignores SIGHUP and SIGPIPE"),
                      ((), "the parent ignores nothing")):
    seen = {}
    for tool, namespace in (("tini", True), ("ringmaster", True), ("ringmaster", False)):
        p, fifo, rid = start_init(tool, REPORT, ignore, namespace)
        fifo.wait_lines(1)
        rc, out, err = finish_init(tool, p, fifo, rid)
        m = re.search(r"SigIgn:\s*([0-9a-f]+)", out)
        mask = int(m.group(1), 16) if m else None
        seen[(tool, namespace)] = mask
        label = "%s%s" % (tool, "" if namespace else " (no --init, no namespace)")
        check(mask is not None, "%s: %s: the command's SigIgn read" % (where, label))
        if mask is None:
            continue
        for s in (signal.SIGHUP, signal.SIGPIPE):
            want = s in ignore
            check(bool(mask & (1 << (s - 1))) == want, "%s: %s: %s %s in the command" %
                  (where, label, signal.Signals(s).name, "ignored" if want else "not ignored"))
    check(seen[("ringmaster", True)] == seen[("tini", True)],
          "%s: ringmaster's command ignores what tini's does (%s, %s)" %
          (where, seen[("ringmaster", True)], seen[("tini", True)]))

# ---- nohup: SIGHUP ignored at the start does not stop the job; SIGTERM still does.
p, fifo, rid = start_init("ringmaster", 'trap "echo term; exit 0" TERM; echo ready > FIFO; sleep 1000 & wait',
                          (signal.SIGHUP,), namespace=False)
fifo.wait_lines(1)
os.kill(p.pid, signal.SIGHUP)
os.kill(p.pid, signal.SIGTERM)
rc, out, err = finish_init("ringmaster", p, fifo, rid)
check(rc == 0 and "term" in out, "nohup: SIGHUP then SIGTERM: the job stops on SIGTERM, exit status 0 (%s)" % rc)
check("SIGHUP" not in err, "nohup: SIGHUP was not acted on")

# ---- SIGUSR2.
TRAP_USR2 = 'trap "echo got-usr2; exit 42" USR2; echo ready > FIFO; sleep 1000 & wait'
p, fifo, rid = start_init("tini", TRAP_USR2)
fifo.wait_lines(1)
os.kill(target(p), signal.SIGUSR2)
t = finish_init("tini", p, fifo, rid)[0]
check(t == 42, "tini forwards SIGUSR2 (%s)" % t)

# Default: a diagnosis, not forwarded.
p, fifo, rid = start_init("ringmaster", 'trap "echo got-usr2" USR2; trap "exit 0" TERM; echo ready > FIFO; '
                          'sleep 1000 & wait; sleep 1000 & wait')
fifo.wait_lines(1)
errbuf = b""
os.kill(target(p), signal.SIGUSR2)
deadline = time.monotonic() + TIMEOUT
while END.encode() not in errbuf and time.monotonic() < deadline:
    r, _, _ = select.select([p.stderr], [], [], deadline - time.monotonic())
    if r:
        chunk = os.read(p.stderr.fileno(), 65536)
        if not chunk:
            break
        errbuf += chunk
check(END.encode() in errbuf, "SIGUSR2 by default: ringmaster prints a diagnosis")
os.kill(target(p), signal.SIGTERM)
rc, out, err = finish_init("ringmaster", p, fifo, rid)
check("got-usr2" not in out and rc == 0, "SIGUSR2 by default: not forwarded (%s)" % rc)

for extra in (["--diagnose-signal", "none"], ["--diagnose-signal", "USR1"], ["--diagnose-signal", "SIGUSR1"]):
    p, fifo, rid = start_init("ringmaster", TRAP_USR2, extra=extra)
    fifo.wait_lines(1)
    os.kill(target(p), signal.SIGUSR2)
    rc, out, err = finish_init("ringmaster", p, fifo, rid)
    check(rc == 42 and "got-usr2" in out, "%s: SIGUSR2 forwarded, the command's status (%s)" % (" ".join(extra), rc))

# --diagnose-signal USR1: USR1 diagnoses (the command's USR1 trap does not run).
p, fifo, rid = start_init("ringmaster", 'trap "echo got-usr1" USR1; trap "exit 0" TERM; echo ready > FIFO; '
                          'sleep 1000 & wait; sleep 1000 & wait', extra=["--diagnose-signal", "USR1"])
fifo.wait_lines(1)
os.kill(target(p), signal.SIGUSR1)
errbuf = b""
deadline = time.monotonic() + TIMEOUT
while END.encode() not in errbuf and time.monotonic() < deadline:
    r, _, _ = select.select([p.stderr], [], [], deadline - time.monotonic())
    if r:
        chunk = os.read(p.stderr.fileno(), 65536)
        if not chunk:
            break
        errbuf += chunk
check(END.encode() in errbuf, "--diagnose-signal USR1: SIGUSR1 diagnoses")
os.kill(target(p), signal.SIGTERM)
rc, out, err = finish_init("ringmaster", p, fifo, rid)
check("got-usr1" not in out, "--diagnose-signal USR1: SIGUSR1 not forwarded")

for bad in ("TERM", "KILL", "SIGNOPE", "CHLD", "0"):
    p = subprocess.run([RINGMASTER, "run", "--diagnose-signal", bad, "-n", "1", "--", "true"],
                       stdin=subprocess.DEVNULL, capture_output=True, env=clean_env())
    e = p.stderr.decode()
    check(p.returncode == 100 and "--diagnose-signal" in e, "--diagnose-signal %s: a usage error (%d: %s)" %
          (bad, p.returncode, e.strip()))

shutil.rmtree(tmp, True)
finish()
