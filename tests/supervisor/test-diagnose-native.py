#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# SIGUSR2 to ringmaster diagnoses every rank and the job goes on.  Three
# multi-threaded C workers hang in read, nanosleep and futex; the diagnosis
# (text on stderr, then the JSON report) gives each one's state, system
# call, wait channel and threads, and, with eu-stack and with gdb, a native
# stack naming the function it is blocked in.  The stack tools are
# ringmaster's children: never counted as orphans, and reaped.
import tempfile
from diagtest import *

MODES = ["read", "nanosleep", "futex"]
SYSCALLS = {"read": ["read"], "nanosleep": ["nanosleep", "clock_nanosleep"], "futex": ["futex"]}
THREADS = 3     # the main thread and two more, all blocked the same way

tools = [t for t in ("eu-stack", "gdb") if have(t)]
if not tools:
    log("neither eu-stack nor gdb is installed: the stacks are not checked")
    tools = ["none"]

for tool in tools:
    log("==== --stack-tool %s" % tool)
    tmp = tempfile.mkdtemp(prefix="rmtest-")
    ready = Fifo(tmp)
    rid = run_id("diag-" + tool)
    rp = os.path.join(tmp, "r.json")
    # Generous bounds: this checks what the tools find, not their limits (test-diagnose-stack-tool.py).
    p = start(rid, ["-n", "3", "--stack-tool", tool, "--stack-timeout", "30", "--diagnose-timeout", "40", "--", HANG,
                    "--ready", ready.path, "--threads", str(THREADS - 1)] + MODES, env=clean_env(), report_path=rp, stdout=subprocess.DEVNULL)
    err = StderrReader(p)
    pids = wait_ready(ready, 3)
    for rank, pid in pids.items():
        require(wait_threads_blocked(pid, THREADS), "rank %d: its %d threads are blocked" % (rank, THREADS))

    text, took = sigusr2(p, err)
    require(text is not None, "SIGUSR2: a diagnosis is printed")
    log(text)
    check(p.poll() is None, "ringmaster goes on after the diagnosis")
    check(all(os.path.exists("/proc/%d" % pid) for pid in pids.values()), "the ranks go on too")
    check(took < 40.0 + 2.0, "the diagnosis took %.2f s: within --diagnose-timeout and some" % took)

    for rank, mode in enumerate(MODES):
        sec = rank_section(text, rank)
        calls = "|".join(SYSCALLS[mode])
        check(re.search(r"process %d \(hang-worker\): S \(sleeping\) in (%s), waiting in \w+" % (pids[rank], calls),
                        sec), "rank %d: text says sleeping in %s, with a wait channel" % (rank, mode))
        check(re.search(r"threads \(%d\):\n[^\n]* %d S \(sleeping\) in (%s), waiting in \w+: hang-worker x%d"
                        % (THREADS, THREADS, calls, THREADS), sec),
              "rank %d: text groups its %d threads, all in %s" % (rank, THREADS, mode))
        if tool != "none":
            check("native stack of %d (%s" % (pids[rank], tool) in sec and "hang_in_" + mode in sec,
                  "rank %d: text has a %s stack naming hang_in_%s" % (rank, tool, mode))
            check("with the same stack)" in sec, "rank %d: threads with the same stack are shown once" % rank)

    rc, alltext = stop(p, err)
    check(rc == sig_status(signal.SIGTERM), "stopped by SIGTERM: exit status 143 (%s)" % rc)
    check("re-parented" not in alltext, "no stack tool was taken for an orphan")
    check(alltext.count("---- rank 0 (pid") == 1, "the SIGUSR2 diagnosis is not repeated in the final report")
    report = read_report(rp)
    require(report is not None, "JSON report written")
    for rank, mode in enumerate(MODES):
        d = report["ranks"][rank]["diagnosis"]
        require(d is not None, "JSON: rank %d has a diagnosis" % rank)
        check(d["reason"] == "SIGUSR2" and d["pid"] == pids[rank] and d["principal_pid"] == pids[rank],
              "JSON: rank %d: reason and pids" % rank)
        check(d["state"] == "S" and d["syscall"] in SYSCALLS[mode] and d["wchan"],
              "JSON: rank %d: state S, syscall %s, wchan %s" % (rank, d["syscall"], d["wchan"]))
        th = d["threads"]
        check(len(th) == THREADS and d["n_threads"] == THREADS and
              all(t["syscall"] in SYSCALLS[mode] and t["state"] == "S" and t["wchan"] for t in th) and
              th[0]["tid"] == pids[rank],
              "JSON: rank %d: %d threads, each in %s, the main thread first" % (rank, THREADS, mode))
        check(d["python"] is False and d["python_traceback"] == [], "JSON: rank %d: not Python" % rank)
        check(d["descendants"] == [], "JSON: rank %d: no descendants" % rank)
        if tool != "none":
            check(d["stack_tool"] == tool, "JSON: rank %d: stack_tool %s" % (rank, d["stack_tool"]))
            check(any("hang_in_" + mode in line for line in d["native_stack"]),
                  "JSON: rank %d: native_stack names hang_in_%s" % (rank, mode))
            check(sum(1 for line in d["native_stack"] if "hang_in_" + mode in line) == THREADS,
                  "JSON: rank %d: every thread's stack is there" % rank)
            check(d["errors"] == [], "JSON: rank %d: no errors (%s)" % (rank, d["errors"]))
        check(d["time_s"] > 0 and 0 <= d["duration_s"] < 7, "JSON: rank %d: times" % rank)
    check(report["orphans"]["seen"] == 0, "JSON: the stack tools were not counted as orphans")
    check_nothing_left(rid)
    ready.close()

finish()
