#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# ringmaster as a Type=notify service, against a fake NOTIFY_SOCKET: the
# exact datagrams and their order (durations as N), each from ringmaster's
# own pid (the ranks talk to the run's socket, never to systemd's):
#   - while two ranks start, stepped one notification at a time: STATUS=
#     naming the rank furthest behind, EXTEND_TIMEOUT_USEC= forwarded while
#     starting (not after READY), READY=1 with STATUS= and MAINPID= once both
#     are ready, STOPPING=1 at the teardown, the final STATUS= with the
#     failing rank's ERRNO=;
#   - a success (no ERRNO=), a stop by SIGTERM (no ERRNO=), a deadline
#     (ERRNO=110), a missing command (ERRNO=2), restarts (STOPPING=1 once,
#     at the end), a failure before any rank started;
#   - no NOTIFY_SOCKET: nothing sent (the ranks still get the run's socket).
import socket
import tempfile
from rmtest import *
from systemdtest import NotifyReceiver, normalized

tmp = tempfile.mkdtemp(prefix="rmtest-")


def gate(name):
    path = os.path.join(tmp, name)
    os.mkfifo(path)
    # Ours stays open: a byte written is there for the rank's next wait-fifo step.
    return path, os.open(path, os.O_RDWR)


def release(fd):
    os.write(fd, b"x")


class Stepper:
    """Reads datagrams one at a time; a repeat of the last one (a duration ticking) is skipped."""

    def __init__(self, rx, pid):
        self.rx = rx
        self.pid = pid
        self.last = None
        self.ticks = 0

    def expect(self, want, what):
        end = time.monotonic() + 30
        while True:
            d = self.rx.recv(end - time.monotonic())
            if d is None:
                check(False, "%s: datagram %r came (nothing within 30 s)" % (what, want))
                return None
            check(d.pid == self.pid, "%s: sent by ringmaster itself (pid %s)" % (what, d.pid))
            n = normalized(d.text)
            if n == self.last and n.startswith("STATUS="):
                self.ticks += 1
                continue
            self.last = n
            check(n == want, "%s: %r (got %r)" % (what, want, d.text))
            return d


# ---------------------------------------------------------------- stepped start, then a failure
rx = NotifyReceiver(tmp)
g0, fd0 = gate("g0")
g1, fd1 = gate("g1")
rank0 = ["wait-fifo=" + g0, "phase=cuda-init", "wait-fifo=" + g0, "phase=load-weights", "wait-fifo=" + g0, "ready",
         "wait-fifo=" + g0, "extend=5000000", "wait-fifo=" + g0]
rank1 = ["wait-fifo=" + g1, "phase=cuda-init", "wait-fifo=" + g1, "extend=30000000", "wait-fifo=" + g1,
         "phase=nccl-init", "wait-fifo=" + g1, "ready", "wait-fifo=" + g1, "errno=42", "exit=3"]
rid = run_id("sdnotify")
p = start(rid, ["--no-preflight", "-n", "2", "--", FAKE, "--rank", "0", "script"] + rank0 + ["--others", "script"] +
          rank1, env=clean_env(NOTIFY_SOCKET=rx.path))
st = Stepper(rx, p.pid)
st.expect("STATUS=starting: 0/2 ready, rank 0: before any phase N s", "at the start")
release(fd0)
st.expect("STATUS=starting: 0/2 ready, rank 1: before any phase N s", "rank 0 in cuda-init: rank 1 is behind")
release(fd1)
st.expect("STATUS=starting: 0/2 ready, rank 0: cuda-init N s", "both in cuda-init: rank 0, there longer")
release(fd1)
d = st.expect("EXTEND_TIMEOUT_USEC=N", "rank 1 extends its start by 30 s")
if d:
    v = int(d.text.split("=", 1)[1])
    check(29000000 < v <= 30000000, "the extension forwarded is what rank 1 asked for (%d us)" % v)
release(fd0)
st.expect("STATUS=starting: 0/2 ready, rank 1: cuda-init N s", "rank 0 in load-weights")
release(fd1)
st.expect("STATUS=starting: 0/2 ready, rank 0: load-weights N s", "rank 1 in nccl-init")
release(fd0)
st.expect("STATUS=starting: 1/2 ready, rank 1: nccl-init N s", "rank 0 ready")
release(fd1)
st.expect("READY=1\nSTATUS=2/2 ready\nMAINPID=%d" % p.pid, "both ready")
release(fd0)     # rank 0 extends after READY=1: not forwarded
release(fd1)     # rank 1: ERRNO=42, exit 3
st.expect("STOPPING=1\nSTATUS=stopping: rank 1 exited with status 3", "the teardown")
st.expect("STATUS=failed: rank 1 exited with status 3; exit status 3\nERRNO=42", "the end, with rank 1's ERRNO")
rc = p.wait(timeout=TIMEOUT)
rx.drain(p)
err = p.stderr.read().decode(errors="replace")
log(err)
check(rc == 3, "exit status 3 (%s)" % rc)
texts = [d.text for d in rx.all]
check(sum("EXTEND_TIMEOUT_USEC" in t for t in texts) == 1, "one EXTEND_TIMEOUT_USEC= only (none after READY=1)")
check(sum("READY=1" in t for t in texts) == 1 and sum("STOPPING=1" in t for t in texts) == 1,
      "READY=1 once, STOPPING=1 once")
check(texts and "ERRNO=42" in texts[-1], "the last datagram is the final one")
log("%d duration ticks skipped" % st.ticks)
check_nothing_left(rid)
for fd in (fd0, fd1):
    os.close(fd)
rx.close()


def run_notify(name, args, env_extra=None, stop_after_ready=False):
    """ringmaster with a fake NOTIFY_SOCKET to the end; returns (exit status, datagrams' texts)."""
    rx = NotifyReceiver(tmp)
    rid = run_id(name)
    env = clean_env(NOTIFY_SOCKET=rx.path, **(env_extra or {}))
    p = start(rid, args, env=env)
    if stop_after_ready:
        while True:
            d = rx.recv(30)
            require(d is not None, "%s: READY=1 came" % name)
            if "READY=1" in d.text:
                break
        p.send_signal(signal.SIGTERM)
    rx.drain(p)
    rc = p.wait(timeout=TIMEOUT)
    log(p.stderr.read().decode(errors="replace"))
    check(all(d.pid == p.pid for d in rx.all), "%s: every datagram from ringmaster's pid" % name)
    texts = [normalized(d.text) for d in rx.all]
    rx.close()
    check_nothing_left(rid)
    return rc, texts


# ---------------------------------------------------------------- success
rc, texts = run_notify("sdnotify-ok", ["--no-preflight", "-n", "2", "--", FAKE, "script", "ready", "exit=0"])
check(rc == 0, "success: exit status 0")
check(texts[-1] == "STOPPING=1\nSTATUS=done: every rank exited 0", "success: STOPPING=1 and the final STATUS, no ERRNO "
      "(%r)" % texts[-1:])
check(any(t.startswith("READY=1\nSTATUS=2/2 ready\nMAINPID=") for t in texts), "success: READY=1")

# ---------------------------------------------------------------- stopped by SIGTERM
rc, texts = run_notify("sdnotify-term", ["--no-preflight", "-n", "2", "--", FAKE, "script", "ready", "hang"],
                       stop_after_ready=True)
check(rc == 143, "SIGTERM: exit status 143")
check(texts[-2:] == ["STOPPING=1\nSTATUS=stopping: received SIGTERM", "STATUS=stopped by SIGTERM"],
      "SIGTERM: STOPPING=1 at the teardown, the final STATUS without ERRNO (%r)" % texts[-2:])

# ---------------------------------------------------------------- a deadline
rc, texts = run_notify("sdnotify-deadline", ["--no-preflight", "-n", "1", "--ready-timeout", "0.5", "--grace", "1",
                                             "--", FAKE, "script", "phase=nccl-init", "hang"])
check(rc == 124, "deadline: exit status 124")
check(any(t.startswith("STOPPING=1\nSTATUS=stopping: rank 0 ") for t in texts), "deadline: STOPPING=1 with the "
      "headline")
check(texts[-1].startswith("STATUS=failed: rank 0 ") and texts[-1].endswith("; exit status 124\nERRNO=110"),
      "deadline: the final STATUS and ERRNO=110 (ETIMEDOUT) (%r)" % texts[-1:])
check(not any("READY=1" in t for t in texts), "deadline: no READY=1")

# ---------------------------------------------------------------- a missing command
rc, texts = run_notify("sdnotify-missing", ["--no-preflight", "-n", "1", "--", "/nonexistent/ringmaster-test-binary"])
check(rc == 127, "missing command: exit status 127")
check(texts[-1] == "STOPPING=1\nSTATUS=failed: rank 0 could not execute the command: No such file or directory; "
      "exit status 127\nERRNO=2", "missing command: ERRNO=2 (ENOENT) (%r)" % texts[-1:])

# ---------------------------------------------------------------- restarts
rc, texts = run_notify("sdnotify-restart", ["--no-preflight", "-n", "1", "--max-restarts", "1", "--restart-delay", "1",
                                            "--", FAKE, "exit", "1"])
check(rc == 1, "restarts: exit status 1")
check(sum("STOPPING=1" in t for t in texts) == 1 and "STOPPING=1" in texts[-1],
      "restarts: STOPPING=1 only at the end, not before the restart")
check(any(t.startswith("STATUS=restarting (restart 1 of 1) after: rank 0 exited with status 1") for t in texts),
      "restarts: the restart shows in STATUS")
check(texts[-1].endswith("STATUS=failed: rank 0 exited with status 1; exit status 1\nERRNO=5"),
      "restarts: the final STATUS, ERRNO=5 (EIO: no ERRNO from the rank) (%r)" % texts[-1:])

# ---------------------------------------------------------------- before any rank started
# The preflight refuses a busy --master-port: ringmaster exits 111 before starting anything.
busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
busy.bind(("0.0.0.0", 0))
busy.listen(1)
rc, texts = run_notify("sdnotify-early", ["-n", "1", "--master-port", str(busy.getsockname()[1]), "--", FAKE,
                                          "true"])
busy.close()
log("early failure: exit status %s, %r" % (rc, texts))
check(rc == 111, "early failure: exit status 111")
check(len(texts) == 1 and texts[0].startswith("STOPPING=1\nSTATUS=failed before any rank started; exit status 111\n"
                                              "ERRNO="),
      "early failure: one datagram with the status and an ERRNO (%r)" % texts)

# ---------------------------------------------------------------- no NOTIFY_SOCKET
rid = run_id("sdnotify-none")
res = run(rid, ["--no-preflight", "-n", "1", "--", FAKE, "env"], env=clean_env())
env = dict(line.split("] env ", 1)[1].split("=", 1) for line in res.stdout.splitlines() if "] env " in line)
check(res.rc == 0 and env.get("NOTIFY_SOCKET") == run_dir_of(rid) + "/notify",
      "no NOTIFY_SOCKET: the run works, the rank gets the run's socket")

finish()
