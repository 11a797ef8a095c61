#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# ringmaster's WATCHDOG=1 to a fake NOTIFY_SOCKET (sd-event's watchdog
# support, from WATCHDOG_USEC and WATCHDOG_PID):
#   - pings while every rank is healthy; none while a ready rank that sent
#     WATCHDOG=1 has been silent for longer than WatchdogSec (STATUS= says
#     which); again, at once, when it pings again;
#   - WATCHDOG_PID naming another process: no pings at all;
#   - WATCHDOG_PID unset: pings;
#   - a deadline that passed (ringmaster's own --watchdog) stops them too.
import tempfile
from rmtest import *
from systemdtest import NotifyReceiver

tmp = tempfile.mkdtemp(prefix="rmtest-")


def start_with_watchdog(rid, args, rx, watchdog_usec, watchdog_pid="self", report_path=None):
    """ringmaster with NOTIFY_SOCKET and WATCHDOG_USEC; WATCHDOG_PID its own pid ("self"), a number, or unset (None)."""
    env = clean_env(NOTIFY_SOCKET=rx.path, WATCHDOG_USEC=str(watchdog_usec),
                    WATCHDOG_PID=None if watchdog_pid in (None, "self") else str(watchdog_pid))
    argv = ringmaster_args(rid, args, report_path)
    if watchdog_pid == "self":
        # The shell's pid is ringmaster's after the exec.
        argv = ["sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"', "sh"] + argv
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def pings(rx, t_from=0.0, t_to=1e9):
    return [d for d in rx.all if d.text == "WATCHDOG=1" and t_from <= d.t <= t_to]


# ---------------------------------------------------------------- a rank falls silent, then pings again
rx = NotifyReceiver(tmp)
told = Fifo(tmp, "told")
g = os.path.join(tmp, "g")
os.mkfifo(g)
gfd = os.open(g, os.O_RDWR)
rid = run_id("sdwatchdog")
script = ["ready", "watchdog", "sleep=0.1", "watchdog", "sleep=0.1", "watchdog", "tell=" + told.path,
          "wait-fifo=" + g, "heartbeat=0.1"]
p = start_with_watchdog(rid, ["--no-preflight", "-n", "1", "--", FAKE, "script"] + script, rx, 500000)
# Datagrams come while we wait for the rank to go silent.
end = time.monotonic() + 30
while not told.buf and time.monotonic() < end:
    rx.recv(0.05)
    r, _, _ = select.select([told.rfd], [], [], 0)
    if r:
        told.buf += os.read(told.rfd, 4096)
silent_at = rx.recv(0) and None
silent_at = time.monotonic() - rx.t0
log("the rank went silent at %.3f s" % silent_at)
check(len(pings(rx)) >= 1, "pings while the rank heartbeats (%d)" % len(pings(rx)))
# WatchdogSec is 0.5 s: from 0.5 s after its last WATCHDOG=1 the rank is late; a ping may still be on its way.
t_end = time.monotonic() + 2.5
while time.monotonic() < t_end:
    rx.recv(t_end - time.monotonic())
late = pings(rx, silent_at + 1.0, silent_at + 2.5)
check(late == [], "no ping from 1 s after the rank fell silent (got %s)" % late)
check(any(d.text.startswith("STATUS=1/1 ready, rank 0: no WATCHDOG=1 for ") for d in rx.all),
      "STATUS= names the silent rank")
resumed_at = time.monotonic() - rx.t0
os.write(gfd, b"x")
t_end = time.monotonic() + 5
while time.monotonic() < t_end and not pings(rx, resumed_at):
    rx.recv(0.2)
check(len(pings(rx, resumed_at)) >= 1, "pings again once the rank heartbeats again")
t_end = time.monotonic() + 1
while time.monotonic() < t_end:
    rx.recv(t_end - time.monotonic())
check(any(d.text == "STATUS=1/1 ready" and d.t > resumed_at for d in rx.all), "STATUS= back to 1/1 ready")
p.send_signal(signal.SIGTERM)
rx.drain(p)
out, err = p.communicate(timeout=TIMEOUT)
log(err.decode(errors="replace"))
check(p.returncode == 143, "stopped by SIGTERM: 143 (%s)" % p.returncode)
check(b"rank 0 sent no WATCHDOG=1 for" in err and b"pinging systemd's watchdog again" in err,
      "it says when it stops and resumes the pings")
check(all(d.pid == p.pid for d in rx.all), "every datagram from ringmaster's pid")
check_nothing_left(rid)
told.close()
os.close(gfd)
rx.close()

# ---------------------------------------------------------------- WATCHDOG_PID of another process: no pings
rx = NotifyReceiver(tmp)
rid = run_id("sdwatchdog-other")
p = start_with_watchdog(rid, ["--no-preflight", "-n", "1", "--", FAKE, "script", "ready", "watchdog", "sleep=0.3",
                              "watchdog", "sleep=0.3", "exit=0"], rx, 200000, watchdog_pid=1)
rx.drain(p)
out, err = p.communicate(timeout=TIMEOUT)
check(p.returncode == 0, "WATCHDOG_PID=1: exit status 0")
check(pings(rx) == [] and any("READY=1" in d.text for d in rx.all),
      "WATCHDOG_PID=1 (not ringmaster): READY=1, no WATCHDOG=1 (%d)" % len(pings(rx)))
check_nothing_left(rid)
rx.close()

# ---------------------------------------------------------------- WATCHDOG_PID unset: pings
rx = NotifyReceiver(tmp)
rid = run_id("sdwatchdog-unset")
p = start_with_watchdog(rid, ["--no-preflight", "-n", "1", "--", FAKE, "script", "ready", "sleep=0.6", "exit=0"], rx,
                        200000, watchdog_pid=None)
rx.drain(p)
out, err = p.communicate(timeout=TIMEOUT)
check(p.returncode == 0 and len(pings(rx)) >= 2, "WATCHDOG_PID unset: pings (%d)" % len(pings(rx)))
check_nothing_left(rid)
rx.close()

# ---------------------------------------------------------------- a deadline stops the pings
rx = NotifyReceiver(tmp)
rid = run_id("sdwatchdog-deadline")
p = start_with_watchdog(rid, ["--no-preflight", "-n", "1", "--watchdog", "0.5", "--", FAKE, "script", "ready",
                              "watchdog", "hang"], rx, 2000000)
rx.drain(p)
out, err = p.communicate(timeout=TIMEOUT)
log(err.decode(errors="replace"))
check(p.returncode == 124, "--watchdog deadline: exit status 124")
check(b"a deadline passed: no more pings to systemd's watchdog" in err, "a passed deadline stops the pings")
stop = [d for d in rx.all if d.text.startswith("STOPPING=1")]
check(stop and not pings(rx, stop[0].t), "no ping after STOPPING=1")
check_nothing_left(rid)
rx.close()

finish()
