#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A graceful stop (docker stop, Kubernetes: SIGTERM to PID 1) ends with the
# workload's exit status, side by side with tini, ringmaster as PID 1 of a PID
# namespace (unshare):
#   - the command traps SIGTERM and exits 7: 7; exits 0: 0 (also for SIGINT,
#     SIGHUP, SIGQUIT); dies of it: 143;
#   - ringmaster with 2 ranks: the first failing rank's status (3), 0 when
#     both exit 0, and so by default, without --init and outside a namespace;
#   - a rank that ignores SIGTERM is killed after --grace: 143, the stop
#     signal's (tini has no grace: the runtime's SIGKILL would end it).
# The JSON report's exit status and stop signal agree.
import json
import tempfile
from inittest import *

require_namespaces()
tmp = tempfile.mkdtemp(prefix="rmtest-")


def stop_case(tool, script, sig=signal.SIGTERM, nproc=1, namespace=True, extra=()):
    """Starts the command under tool, waits for nproc "ready" lines, sends sig to the init.
    Returns (exit status, seconds from the signal to the end, stdout, the JSON report or None)."""
    fifo = Fifo(tmp, "ready-%d" % len(os.listdir(tmp)))
    rid = run_id("init-stop")
    report = os.path.join(tmp, "report-%d.json" % len(os.listdir(tmp)))
    cmd = ["sh", "-c", script.replace("FIFO", fifo.path)]
    if tool == "tini":
        argv = [TINI, "--"] + cmd
    else:
        argv = [RINGMASTER, "run", "--run-id", rid, "--report", report, "--no-preflight", "--no-tty", "-n",
                str(nproc), "--prefix", "none"] + (["--init"] if namespace else []) + list(extra) + ["--"] + cmd
    p = subprocess.Popen(in_namespace(argv) if namespace else argv, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_env())
    fifo.wait_lines(nproc)
    target = init_pid(p.pid) if namespace else p.pid
    t0 = time.monotonic()
    os.kill(target, sig)
    out, err = p.communicate(timeout=TIMEOUT)
    took = time.monotonic() - t0
    fifo.close()
    log("---- %s %s, %s: exit status %s after %.2f s\n%s%s" % (tool, script, signal.Signals(sig).name, p.returncode,
                                                                took, out.decode(errors="replace"),
                                                                err.decode(errors="replace")[-3000:]))
    doc = None
    if tool == "ringmaster":
        check_nothing_left(rid)
        if os.path.exists(report):
            doc = json.load(open(report))
    return p.returncode, took, out.decode(errors="replace"), doc


TRAP = 'trap "echo handled; exit %d" %s; echo ready > FIFO; sleep 1000 & wait'
for sig, code in ((signal.SIGTERM, 7), (signal.SIGTERM, 0), (signal.SIGINT, 0), (signal.SIGHUP, 5),
                  (signal.SIGQUIT, 0)):
    name = signal.Signals(sig).name
    script = TRAP % (code, name[3:])
    t = stop_case("tini", script, sig)[0]
    rc, took, out, doc = stop_case("ringmaster", script, sig)
    check(t == code, "%s, the command exits %d: tini exits %d (%s)" % (name, code, code, t))
    check(rc == t, "%s, the command exits %d: ringmaster exits as tini does (%s)" % (name, code, rc))
    check("handled" in out, "%s: the command's handler ran" % name)
    check(doc is not None and doc["exit_status"] == rc and doc["stop_signal"] == name,
          "%s: the report says exit status %s, stopped by %s" % (name, rc, name))

script = 'echo ready > FIFO; exec sleep 1000'
t = stop_case("tini", script)[0]
rc = stop_case("ringmaster", script)[0]
check(t == 143 and rc == 143, "SIGTERM, the command dies of it: 143 from both (tini %s, ringmaster %s)" % (t, rc))

# Two ranks: the first failing one's status; 0 when both exit 0.
script = 'trap "[ $RANK = 1 ] && exit 3; exit 0" TERM; echo ready > FIFO; sleep 1000 & wait'
rc, took, out, doc = stop_case("ringmaster", script, nproc=2)
check(rc == 3, "2 ranks, rank 1 exits 3 on SIGTERM: exit status 3 (%s)" % rc)
check(doc is not None and doc["exit_status"] == 3 and doc["exit_status_rank"] == 1,
      "the report names rank 1's status")
script = 'trap "exit 0" TERM; echo ready > FIFO; sleep 1000 & wait'
rc = stop_case("ringmaster", script, nproc=2)[0]
check(rc == 0, "2 ranks exit 0 on SIGTERM: 0 (%s)" % rc)
# By default too: no --init, no namespace.
rc = stop_case("ringmaster", script, nproc=2, namespace=False)[0]
check(rc == 0, "without --init, outside a namespace: 0 too (%s)" % rc)
script = 'trap "exit 7" INT; echo ready > FIFO; sleep 1000 & wait'
rc = stop_case("ringmaster", script, sig=signal.SIGINT, nproc=2, namespace=False)[0]
check(rc == 7, "SIGINT (Ctrl-C), both ranks exit 7: 7 (%s)" % rc)

# A rank that ignores SIGTERM: SIGKILL after --grace; the stop's status.
script = 'trap "" TERM; echo ready > FIFO; exec sleep 1000'
rc, took, out, doc = stop_case("ringmaster", script, extra=["--grace", "1"])
check(rc == 143, "a rank that ignores SIGTERM: killed after --grace, exit status 143 (%s)" % rc)
check(1.0 <= took < 30, "it was given its --grace 1 (%.2f s)" % took)
check(doc is not None and doc["exit_status"] == 143, "the report says 143")

shutil.rmtree(tmp, True)
finish()
