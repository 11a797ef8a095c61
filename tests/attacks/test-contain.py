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
    # (A process in the middle of an exec may be missed by one look at /proc: keep the look that saw all 8.)
    seen = []

    def all_up():
        seen[:] = processes_with_run_id(rid)
        return len(seen) >= 8
    wait_until(all_up, 10.0)
    before = list(seen)
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


def own_cgroup_dir():
    """This process's cgroup v2 folder, or None."""
    try:
        with open("/proc/self/cgroup") as f:
            rel = [l[3:].strip() for l in f if l.startswith("0::")]
    except OSError:
        return None
    if not rel:
        return None
    for mnt in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if os.path.exists(os.path.join(mnt, "cgroup.controllers")):
            path = mnt + (rel[0] if rel[0] != "/" else "")
            return path if os.path.isdir(path) else None
    return None


def watcher_of(ringmaster_pid):
    """The rm-watcher whose pipe's write end this ringmaster holds."""
    def pipes(pid):
        out = set()
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("pipe:"):
                out.add(link)
        return out
    mine = pipes(ringmaster_pid)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/comm" % entry) as f:
                if f.read().strip() != "rm-watcher":
                    continue
            if pipes(int(entry)) & mine:
                return int(entry)
        except OSError:
            continue
    return None


def both_killed():
    """ringmaster AND its watcher SIGKILLed (an OOM kill of the session):
    the job's cgroup keeps its processes; the next ringmaster started in
    the same cgroup ends them and removes the cgroup.  In a cgroup of the
    test's own, so that no other test's ringmaster sweeps it first."""
    own = own_cgroup_dir()
    if os.geteuid() != 0 or not own:
        log("both-killed: skipped (needs root and cgroup v2)")
        return
    box = os.path.join(own, "rmtest-sweep-%d" % os.getpid())
    try:
        os.mkdir(box)
    except OSError as e:
        log("both-killed: skipped (cannot make a cgroup: %s)" % e)
        return

    def into_box():
        with open(os.path.join(box, "cgroup.procs"), "w") as f:
            f.write("0")
    tmp = tempfile.mkdtemp(prefix="rmtest-")
    ready = Fifo(tmp)
    rid = run_id("contain-both")
    p = subprocess.Popen(ringmaster_args(rid, ["--contain", "cgroup", "-n", "1", "--", "sh", "-c", SCRIPT, "sh",
                                               ready.path], None),
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         env=clean_env(), preexec_fn=into_box)
    try:
        wait_ready(ready, 1)
    except Exception:
        p.kill()
        err = p.communicate()[1]
        log("both-killed: skipped (no cgroup containment here: %s)" % err.decode(errors="replace")[-300:])
        os.rmdir(box)
        return
    wait_until(lambda: len(processes_with_run_id(rid)) >= 4, 10.0)
    job_cgroups = [d for d in os.listdir(box) if d.startswith("ringmaster-")]
    check(len(job_cgroups) == 1, "both-killed: the job's cgroup is in the test's (%s)" % job_cgroups)
    w = watcher_of(p.pid)
    check(w is not None, "both-killed: the watcher is found")
    os.kill(w, signal.SIGKILL)
    p.kill()
    p.wait()
    time.sleep(0.5)
    left = processes_with_run_id(rid)
    # The rank itself dies with ringmaster (PR_SET_PDEATHSIG); its three descendants stay.
    check(len(left) >= 3, "both-killed: with both dead, the job's processes are left (%d)" % len(left))
    # The next run in that cgroup sweeps it.
    q = subprocess.run(ringmaster_args(run_id("contain-next"), ["--contain", "cgroup", "--", "true"], None),
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       env=clean_env(), preexec_fn=into_box, timeout=TIMEOUT)
    err = q.stderr.decode(errors="replace")
    check(q.returncode == 0, "both-killed: the next run succeeds (%d: %s)" % (q.returncode, err[-500:]))
    check("removed 1 stale job cgroup" in err and "ending %d process" % len(left) in err,
          "both-killed: the next run says what it swept (%s)" % err[-500:])
    check(wait_until(lambda: processes_with_run_id(rid) == [], 5.0) is not None,
          "both-killed: the dead run's processes are gone (%s)" % processes_with_run_id(rid))
    check(not os.path.exists(os.path.join(box, job_cgroups[0])), "both-killed: its cgroup is removed")
    for pid in processes_with_run_id(rid):
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not open(os.path.join(box, "cgroup.procs")).read().strip(), 5.0)
    try:
        os.rmdir(box)
    except OSError:
        pass


attack("self")
two_nodes()
both_killed()
# The fallback, forced where the cgroup mode would be had.
attack("watcher", options=["--contain", "watcher"])
if os.geteuid() == 0:
    uid, gid = other_ids()
    attack("unprivileged", preexec=as_other_user(),
           extra_env={"XDG_RUNTIME_DIR": None, "HOME": "/"})
else:
    log("not root: the unprivileged case above is the only one")
finish()
