#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A Python rank hung in hang_in_init_process_group(): with --python-hooks
# (on by default for a Python COMMAND, also through a script's "#!" line)
# the workers get ringmaster's start-up hook on PYTHONPATH and
# PYTHONFAULTHANDLER=1; SIGUSR2 to ringmaster sends each Python rank
# SIGUSR1, and faulthandler's all-threads traceback, naming that function,
# is in the diagnosis (text and JSON).  With --python-hooks=off no SIGUSR1
# is sent (it would kill the rank): the diagnosis says why there is no
# traceback, and the ranks live on.
import sys
import tempfile
from diagtest import *

SCRIPT = '''#!/usr/bin/env python3
import os, sys, threading

def helper_thread_waits(event):
    event.wait()

def hang_in_init_process_group(fifo):
    r, w = os.pipe()
    fd = os.open(fifo, os.O_WRONLY)
    os.write(fd, ("ready %s %d\\n" % (os.environ["RANK"], os.getpid())).encode())
    os.close(fd)
    os.read(r, 1)     # never comes, as a peer that never joins

threading.Thread(target=helper_thread_waits, args=(threading.Event(),), daemon=True).start()
hang_in_init_process_group(sys.argv[1])
'''

tmp = tempfile.mkdtemp(prefix="rmtest-")
script = os.path.join(tmp, "hang_worker.py")
with open(script, "w") as f:
    f.write(SCRIPT)
os.chmod(script, 0o755)
python = sys.executable
hook_dir = os.path.realpath(os.path.join(os.environ.get("top_srcdir", os.path.join(TOP_BUILDDIR, "..")),
                                         "engine", "python", "hook"))


def start_job(name, args, command):
    ready = Fifo(tmp, "ready-" + name)
    rid = run_id("diag-py-" + name)
    rp = os.path.join(tmp, name + ".json")
    env = clean_env(PYTHONFAULTHANDLER=None, PYTHONPATH=None)
    p = start(rid, ["-n", "2"] + args + ["--"] + command + [ready.path], env=env, report_path=rp,
              stdout=subprocess.DEVNULL)
    err = StderrReader(p)
    pids = wait_ready(ready, 2)
    ready.close()
    return rid, rp, p, err, pids


# ---- hooks on (auto: the command is a Python interpreter)
rid, rp, p, err, pids = start_job("on", ["--stack-tool", "none"], [python, script])
for rank, pid in pids.items():
    env = environ_of(pid)
    check(env.get("PYTHONFAULTHANDLER") == "1", "rank %d: PYTHONFAULTHANDLER=1" % rank)
    check(env.get("PYTHONPATH", "").split(":")[0] == hook_dir,
          "rank %d: the hook's folder first on PYTHONPATH (%s)" % (rank, env.get("PYTHONPATH")))
    check(os.path.isfile(os.path.join(env.get("PYTHONPATH", ":").split(":")[1], "ringmaster", "__init__.py")),
          "rank %d: the ringmaster package's folder next on PYTHONPATH" % rank)
    require(wait_catches_sigusr1(pid), "rank %d: the hook installed a SIGUSR1 handler" % rank)
    require(wait_threads_blocked(pid, 2), "rank %d: both threads blocked" % rank)
text, took = sigusr2(p, err)
require(text is not None, "SIGUSR2: a diagnosis is printed")
log(text)
check(p.poll() is None and all(os.path.exists("/proc/%d" % pid) for pid in pids.values()),
      "ringmaster and the ranks go on (SIGUSR1 did not kill them)")
# Both ranks wait in the same place: the first rank printed shows its
# traceback, the other one's is named as the same (the JSON has both, below).
shown = {}
for rank in pids:
    sec = rank_section(text, rank)
    check("Python traceback (faulthandler, on SIGUSR1 to %d):" % pids[rank] in sec,
          "rank %d: a Python traceback" % rank)
    check("in read" in sec, "rank %d: /proc says read" % rank)
    m = re.search(r"Python traceback \(faulthandler, on SIGUSR1 to \d+\): the same as rank (\d+)'s", sec)
    if m:
        shown[rank] = int(m.group(1))
        continue
    shown[rank] = rank
    check(re.search(r'\| +File "%s", line \d+ in hang_in_init_process_group' % re.escape(script), sec),
          "rank %d: it names hang_in_init_process_group" % rank)
    check(re.search(r'\| +File "[^"]*", line \d+ in helper_thread_waits', sec),
          "rank %d: and the other thread's function" % rank)
check(sorted(set(shown.values())) == [min(shown.values())] and len(shown) == len(pids),
      "one traceback shown, the other rank's named as the same (%s)" % shown)
check(text.index("---- rank %d " % min(shown.values())) < text.index("---- rank %d " % max(pids)),
      "the traceback shown comes first")
rc, alltext = stop(p, err)
check(rc == sig_status(signal.SIGTERM), "exit status 143")
report = read_report(rp)
require(report is not None, "JSON report written")
for rank in pids:
    d = report["ranks"][rank]["diagnosis"]
    check(d["python"] is True, "JSON: rank %d: python" % rank)
    tb = d["python_traceback"]
    check(any("in hang_in_init_process_group" in line for line in tb),
          "JSON: rank %d: traceback names the function" % rank)
    check(tb and (tb[0].startswith("Thread 0x") or tb[0].startswith("Current thread 0x")) and tb[-1] != "",
          "JSON: rank %d: the traceback from its first line, no blank line at the end" % rank)
    check(d["errors"] == [], "JSON: rank %d: no errors (%s)" % (rank, d["errors"]))
    check(d["stack_tool"] is None and d["native_stack"] == [], "JSON: rank %d: --stack-tool none" % rank)
check_nothing_left(rid)

# ---- hooks on through the script's "#!/usr/bin/env python3" line, and a native stack too
tools = [t for t in ("eu-stack", "gdb") if have(t)]
rid, rp, p, err, pids = start_job("shebang", ["--stack-timeout", "30", "--diagnose-timeout", "40"], [script])
for rank, pid in pids.items():
    check(environ_of(pid).get("PYTHONFAULTHANDLER") == "1", "shebang: rank %d: PYTHONFAULTHANDLER=1" % rank)
    require(wait_catches_sigusr1(pid), "shebang: rank %d: SIGUSR1 handled" % rank)
    require(wait_threads_blocked(pid, 2), "shebang: rank %d: both threads blocked" % rank)
text, took = sigusr2(p, err)
require(text is not None, "shebang: a diagnosis is printed")
rc, alltext = stop(p, err)
report = read_report(rp)
for rank in pids:
    d = report["ranks"][rank]["diagnosis"]
    check(any("in hang_in_init_process_group" in line for line in d["python_traceback"]),
          "shebang: rank %d: traceback names the function" % rank)
    if tools:
        check(d["stack_tool"] == tools[0] and len(d["native_stack"]) > 0,
              "shebang: rank %d: a native stack by %s too" % (rank, tools[0]))
        check(any(re.search(r"\bread\b", line) for line in d["native_stack"]),
              "shebang: rank %d: the native stack shows read" % rank)
check_nothing_left(rid)

# ---- hooks off: no SIGUSR1 (it would kill a process without a handler)
rid, rp, p, err, pids = start_job("off", ["--python-hooks", "off", "--stack-tool", "none"], [python, script])
for rank, pid in pids.items():
    env = environ_of(pid)
    check("PYTHONFAULTHANDLER" not in env and hook_dir not in env.get("PYTHONPATH", ""),
          "off: rank %d: no hook, no PYTHONFAULTHANDLER" % rank)
    require(wait_threads_blocked(pid, 2), "off: rank %d: blocked" % rank)
    check(not catches_sigusr1(pid), "off: rank %d: no SIGUSR1 handler" % rank)
text, took = sigusr2(p, err)
require(text is not None, "off: a diagnosis is printed")
log(text)
check(all(os.path.exists("/proc/%d" % pid) for pid in pids.values()), "off: the ranks were not sent SIGUSR1")
check("does not handle SIGUSR1" in rank_section(text, 0), "off: the diagnosis says why there is no traceback")
rc, alltext = stop(p, err)
check(rc == sig_status(signal.SIGTERM), "off: exit status 143, the ranks stopped by ringmaster")
report = read_report(rp)
for rank in pids:
    d = report["ranks"][rank]["diagnosis"]
    check(d["python"] is True and d["python_traceback"] == [] and any("SIGUSR1" in e for e in d["errors"]),
          "off: JSON: rank %d: Python, no traceback, and why" % rank)
    check(report["ranks"][rank]["signal_name"] == "SIGTERM", "off: rank %d ended by the teardown's SIGTERM" % rank)
check_nothing_left(rid)

finish()
