#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# ringmaster as a real container's entrypoint (podman; the image is
# tests/container/containertest.py's: Debian minbase by debootstrap, this
# build's ringmaster, ENTRYPOINT ["ringmaster", "run", "--init"]):
#   - start and output: the ranks' lines, ringmaster is PID 1;
#   - `podman stop`: the workload decides the exit status (a rank that traps
#     SIGTERM and exits 7: 7; exits 0: 0; dies of it: 143); a rank that ignores
#     it is killed after --grace, and the job says 143;
#   - a crashing rank: 139 at once, the report names it;
#   - a hung rank: the --ready-timeout report names it within the deadline;
#   - zombies: orphans are reaped (0 left; the control, the same program as
#     PID 1, leaves them);
#   - /dev/shm of podman's default 64 MiB: the preflight refuses a 4-GPU run
#     with the fix (exit 111), --shm-size=1g lets it start;
#   - stdin to rank 0 (`podman run -i`), a terminal (`podman run -it`: sh -i,
#     Ctrl-C), SIGUSR2 (a diagnosis; --diagnose-signal none forwards it).
# Skipped (77) where podman cannot run a container, with the reason.
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "supervisor"))
import atexit  # noqa: E402
import pty  # noqa: E402

from containertest import *  # noqa: E402

opts, image = setup()
atexit.register(remove_containers)
FAKE_IN = FIXTURES + "/fake-worker"

# ---- Start and output.
rc, out, err, _ = run_container(opts, image, ["-n", "2", "--", "sh", "-c",
                                              'read -r one < /proc/1/comm; echo "hello from $RANK of $WORLD_SIZE, '
                                              'PID 1 is $one"'], "start")
check(rc == 0, "start: exit status 0 (%s)" % rc)
for r in (0, 1):
    check("[rank %d] hello from %d of 2, PID 1 is ringmaster" % (r, r) in out,
          "start: rank %d's line, prefixed; ringmaster is PID 1" % r)

# ---- podman stop: the workload decides.
STOP_CASES = (
    ("trap-7", 'trap "echo draining; exit 7" TERM; echo ready; while :; do sleep 1; done', 7),
    ("trap-0", 'trap "echo draining; exit 0" TERM; echo ready; while :; do sleep 1; done', 0),
    ("default", 'echo ready; exec sleep 1000', 143),
    ("ignore", 'trap "" TERM; echo ready; exec sleep 1000', 143),
)
for what, script, want in STOP_CASES:
    c = Container(opts, image, ["-n", "2", "--grace", "2", "--", "sh", "-c", script], "stop-" + what)
    ready = c.out.wait_for(r"\[rank \d\] ready", count=2)
    check(ready, "stop %s: both ranks started" % what)
    t0 = time.monotonic()
    rc_stop, _, stop_err = podman(["stop", "--time", "30", c.name], timeout=60)
    took = time.monotonic() - t0
    rc = c.finish()
    check(rc == want, "podman stop, a workload that does %s: exit status %s (want %d)" % (what, rc, want))
    check(rc_stop == 0 and took < 20, "podman stop returned %d in %.1f s, before its 30 s" % (rc_stop, took))
    if what.startswith("trap"):
        check(c.out.text.count("draining") == 2, "stop %s: both ranks ran their handler" % what)
    if what == "ignore":
        check(2 <= took, "stop ignore: the ranks were given --grace 2 before SIGKILL (%.1f s)" % took)

# ---- A crashing rank.
rc, out, err, took = run_container(opts, image, ["-n", "2", "--", FAKE_IN, "--rank", "1", "segv", "--others",
                                                 "hang"], "crash")
check(rc == 139, "crash: exit status 139 (%s)" % rc)
check(re.search(r"rank 1 .*SIGSEGV", err) is not None, "crash: the report names rank 1 and SIGSEGV")
check(took < 30, "crash: the job ended at once (%.1f s)" % took)

# ---- A hung rank: reported within the deadline.
rc, out, err, took = run_container(opts, image, ["-n", "2", "--ready-timeout", "3", "--diagnose-timeout", "2",
                                                 "--", FAKE_IN, "--rank", "1", "hang", "--others", "script",
                                                 "ready", "hang"], "hang")
check(rc == 124, "hang: exit status 124 (%s)" % rc)
check(re.search(r"rank 1 not ready [\d.]+ s after the start \(--ready-timeout 3\)", err) is not None,
      "hang: the report names rank 1")
check(3 <= took < 3 + 2 + 10 + 15, "hang: reported after the 3 s deadline, within its diagnosis and grace "
      "(%.1f s)" % took)

# ---- Zombies.
ZOMBIES = r'''
for i in 1 2 3 4 5; do (sleep 0.05 &) ; done
sleep 0.3
count() {
    n=0
    for f in /proc/[0-9]*/stat; do
        read -r line < "$f" 2>/dev/null || continue
        s=${line##*) }
        [ "${s%% *}" = Z ] && n=$((n + 1))
    done
    echo $n
}
i=0
while [ "$(count)" -gt 0 ] && [ $i -lt 100 ]; do sleep 0.02; i=$((i + 1)); done
echo "zombies $(count)"
'''
rc, out, err, _ = run_container(opts, image, ["-n", "1", "--prefix", "none", "--", "sh", "-c", ZOMBIES], "zombies")
check(rc == 0 and "zombies 0" in out, "zombies: ringmaster reaps the rank's orphans (%s, %s)" % (rc, out.strip()))


def zombies_of_exec(name):
    """Runs the zombie maker with podman exec (its orphans go to the container's PID 1)."""
    rc, out, err = podman(["exec", name, "sh", "-c", ZOMBIES], timeout=60)
    m = re.search(r"zombies (\d+)", out)
    log("podman exec %s: %d %s%s" % (name, rc, out, err))
    return int(m.group(1)) if m else None


c = Container(opts, image, ["-n", "1", "--", "sh", "-c", "echo ready; exec sleep 1000"], "zombies-exec")
check(c.out.wait_for(r"ready"), "zombies exec: started")
n = zombies_of_exec(c.name)
check(n == 0, "zombies: ringmaster reaps the orphans of a podman exec too (%s)" % n)
podman(["stop", "--time", "30", c.name], timeout=60)
c.finish()
# The control: PID 1 a program that never waits.
c = Container(opts, image, ["1000"], "zombies-control", podman_args=["--entrypoint", "sleep"])
for _ in range(100):
    if podman(["exec", c.name, "true"])[0] == 0:
        break
    time.sleep(0.1)
n = zombies_of_exec(c.name)
check(n is not None and n > 0, "zombies, the control: under a PID 1 that does not reap, they stay (%s)" % n)
podman(["rm", "--force", "--time", "0", c.name], timeout=60)
c.finish()

# ---- /dev/shm: podman's default 64 MiB, 4 GPU ranks.
gpus = ["-e", "CUDA_VISIBLE_DEVICES=0,1,2,3", "-e", "RINGMASTER_TEST_GPU_LIBDIR=/nonexistent"]
rc, out, err, _ = run_container(opts, image, ["-n", "4", "--", "sh", "-c", "echo started"], "shm", podman_args=gpus)
check(rc == 111, "/dev/shm 64 MiB: exit status 111 (%s)" % rc)
check(re.search(r"preflight: fail  /dev/shm: 6\d\.\d MiB total", err) is not None and "--shm-size=1g" in err,
      "/dev/shm 64 MiB: the preflight says so, with the fix")
check("started" not in out, "/dev/shm 64 MiB: no rank started")
rc, out, err, _ = run_container(opts, image, ["-n", "4", "--", "sh", "-c", "echo started"], "shm-1g",
                                podman_args=gpus + ["--shm-size", "1g"])
check(rc == 0 and out.count("started") == 4, "--shm-size=1g: the preflight passes, 4 ranks start (%s)" % rc)

# ---- stdin: podman run -i gives the container's stdin to rank 0.
rc, out, err, _ = run_container(opts, image, ["-n", "1", "--prefix", "none", "--", "cat"], "stdin",
                                podman_args=["-i"], input=b"line one\nline two\n")
check(rc == 0 and out == "line one\nline two\n", "stdin: podman run -i ... cat echoes its input (%s, %r)" % (rc, out))

# ---- SIGUSR2: ringmaster's diagnosis; with --diagnose-signal none, the workload's.
TRAP_USR2 = 'trap "echo got-usr2; exit 42" USR2; echo ready; while :; do sleep 1; done'
c = Container(opts, image, ["-n", "1", "--", "sh", "-c", TRAP_USR2], "usr2")
check(c.out.wait_for(r"ready"), "usr2: started")
podman(["kill", "--signal", "USR2", c.name])
check(c.err.wait_for(r"======== end of the diagnosis ========"), "SIGUSR2: ringmaster prints a diagnosis")
podman(["stop", "--time", "30", c.name], timeout=60)
rc = c.finish()
check("got-usr2" not in c.out.text, "SIGUSR2: not forwarded by default")
c = Container(opts, image, ["-n", "1", "--diagnose-signal", "none", "--", "sh", "-c", TRAP_USR2], "usr2-fwd")
check(c.out.wait_for(r"ready"), "usr2 forwarded: started")
podman(["kill", "--signal", "USR2", c.name])
rc = c.finish()
check(rc == 42 and "got-usr2" in c.out.text, "--diagnose-signal none: SIGUSR2 reaches the workload (%s)" % rc)

# ---- A terminal: podman run -it, an interactive shell as the one rank.
pid, master = pty.fork()
if pid == 0:
    name = container_name("tty")
    os.execv(PODMAN, [PODMAN, "run", "--rm", "-it", "--name", name] + opts + [image, "-n", "1", "--", "sh", "-i"])
buf = b""


def expect(pattern, timeout=30):
    global buf
    deadline = time.monotonic() + timeout
    while not re.search(pattern, buf):
        r, _, _ = select.select([master], [], [], max(deadline - time.monotonic(), 0))
        if not r:
            return False
        try:
            chunk = os.read(master, 4096)
        except OSError:
            return False
        if not chunk:
            return False
        buf += chunk
    return True


check(expect(rb"# "), "tty: sh -i prints its prompt")
os.write(master, b"echo $((6 * 7))\n")
check(expect(rb"\n42\r?\n"), "tty: the shell runs a command")
os.write(master, b"tty; echo fg=$(ps -o tpgid= -p $$ 2>/dev/null || echo ?)\n")
check(expect(rb"/dev/pts/\d+"), "tty: the rank's stdin is the container's terminal")
os.write(master, b"sleep 100\n")
time.sleep(0.5)
os.write(master, b"\x03")
os.write(master, b"echo after-$?\n")
check(expect(rb"after-130"), "tty: Ctrl-C interrupts the foreground command, the shell lives on")
os.write(master, b"exit 3\n")
_, status = os.waitpid(pid, 0)
while select.select([master], [], [], 1)[0]:
    try:
        chunk = os.read(master, 4096)
    except OSError:
        break
    if not chunk:
        break
    buf += chunk
log("---- the terminal:\n" + buf.decode(errors="replace"))
check(os.waitstatus_to_exitcode(status) == 3, "tty: the shell's exit status (%s)" % os.waitstatus_to_exitcode(status))
os.close(master)

finish()
