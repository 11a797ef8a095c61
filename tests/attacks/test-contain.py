#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Attack 1: ringmaster is SIGKILLed while ranks have descendants, one in the
# rank's session, one that left it (setsid), one that double-forked away.
# PR_SET_PDEATHSIG reaches only the ranks; nothing of the job may outlive
# ringmaster, as root and as an unprivileged user (docs/containment.md).
import tempfile
from attack import *

# Each rank: a child in its session, a child in a session of its own, then the rank itself.
SCRIPT = ('sleep 3001 & setsid sleep 3002 & (setsid sh -c "sleep 3003 &" &) ; '
          'sleep 0.2; echo "ready $RANK $$" > "$1"; exec sleep 3004')


def attack(label, preexec=None, extra_env=None, options=()):
    tmp = tempfile.mkdtemp(prefix="rmtest-")
    os.chmod(tmp, 0o755)
    ready = Fifo(tmp)
    os.chmod(ready.path, 0o666)
    rid = run_id("contain-" + label)
    env = clean_env(**(extra_env or {}))
    p = subprocess.Popen(ringmaster_args(rid, list(options) + ["-n", "2", "--", "sh", "-c", SCRIPT, "sh", ready.path], None),
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=env, preexec_fn=preexec)
    wait_ready(ready, 2)
    # Every rank's descendants are up (they started before the rank said ready).
    # Each rank started its descendants before saying ready; the double-forked one may lag on a busy host.
    wait_until(lambda: len(processes_with_run_id(rid)) >= 8, 10.0)
    before = processes_with_run_id(rid)
    # cudaIpc between ranks needs them in one PID namespace, and ptrace/proc
    # diagnosis needs them in ringmaster's: containment changes no namespace.
    for ns in ("pid", "user", "ipc", "mnt"):
        mine = os.readlink("/proc/%d/ns/%s" % (p.pid, ns))
        theirs = set(os.readlink("/proc/%d/ns/%s" % (pid, ns)) for pid in before)
        check(theirs == {mine}, "%s: every process of the job is in ringmaster's %s namespace" % (label, ns))
    check(len(before) >= 8, "%s: the job's processes are up (%d)" % (label, len(before)))
    p.kill()
    p.wait()
    took = wait_until(lambda: processes_with_run_id(rid) == [], 5.0)
    left = processes_with_run_id(rid)
    names = []
    for pid in left:
        try:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                names.append("%d:%s" % (pid, f.read().replace(b"\0", b" ").decode(errors="replace")))
        except OSError:
            pass
    check(took is not None, "%s: nothing of the job outlives a SIGKILLed ringmaster (left: %s)" % (label, names))
    for pid in left:        # do not leak them into the next test
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    # The next run cleans the dead run's segment and run directory (test-supervisor-killed.py).




def two_nodes():
    """Two ringmasters of one run id on one host (two simulated nodes, each
    its own run directory), in watcher mode: the SIGKILLed one's watcher
    must not take the other's ranks along (it matches RINGMASTER_RUN_DIR,
    not the run id)."""
    tmp = tempfile.mkdtemp(prefix="rmtest-")
    ready = Fifo(tmp)
    rid = run_id("contain-nodes")
    procs = []
    for node in ("a", "b"):
        xdg = os.path.join(tmp, "xdg-" + node)
        os.mkdir(xdg, 0o700)
        procs.append(subprocess.Popen(
            ringmaster_args(rid, ["--contain", "watcher", "--", "sh", "-c", SCRIPT, "sh", ready.path], None),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env=clean_env(XDG_RUNTIME_DIR=xdg)))
    wait_ready(ready, 2)

    def of_node(node):
        marker = ("RINGMASTER_RUN_DIR=%s" % os.path.join(tmp, "xdg-" + node, "ringmaster", rid)).encode()
        found = []
        for pid in processes_with_run_id(rid):
            try:
                with open("/proc/%d/environ" % pid, "rb") as f:
                    if marker in f.read().split(b"\0"):
                        found.append(pid)
            except OSError:
                pass
        return found
    wait_until(lambda: len(of_node("a")) >= 4 and len(of_node("b")) >= 4, 10.0)
    b_before = of_node("b")
    procs[0].kill()
    procs[0].wait()
    check(wait_until(lambda: of_node("a") == [], 5.0) is not None, "nodes: the killed node's job is gone")
    check(sorted(of_node("b")) == sorted(b_before), "nodes: the other node's job is untouched (%d of %d left)" % (
        len(of_node("b")), len(b_before)))
    procs[1].send_signal(signal.SIGTERM)
    procs[1].wait(timeout=TIMEOUT)
    check(wait_until(lambda: processes_with_run_id(rid) == [], 10.0) is not None, "nodes: all gone at the end")


attack("self")
two_nodes()
# The fallback, forced where the cgroup mode would be had.
attack("watcher", options=["--contain", "watcher"])
if os.geteuid() == 0:
    uid, gid = other_ids()
    attack("unprivileged", preexec=as_other_user(),
           extra_env={"XDG_RUNTIME_DIR": None, "HOME": "/"})
else:
    log("not root: the unprivileged case above is the only one")
finish()
