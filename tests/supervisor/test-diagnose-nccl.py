#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# NCCL's debug log per rank: with NCCL_DEBUG set and no NCCL_DEBUG_FILE,
# each rank gets NCCL_DEBUG_FILE=<run dir>/nccl-rank-N.%p.log (in the
# --log-dir folder when there is one, so that it outlives the run); a
# user's NCCL_DEBUG_FILE is left alone, and nothing is set without
# NCCL_DEBUG.  A hung rank's diagnosis has the tail of its log: ours, and
# the user's (%h, %p and a relative path resolved as NCCL does).
import tempfile
from diagtest import *


def envs(res, n):
    """{rank: {KEY: VALUE}} from fake-worker's "env KEY=VALUE" lines."""
    out = {}
    for line in res.stdout.splitlines():
        prefix, _, rest = line.partition("] env ")
        if not rest:
            continue
        rank = int(prefix.split()[-1])
        k, _, v = rest.partition("=")
        out.setdefault(rank, {})[k] = v
    check(sorted(out) == list(range(n)), "env lines from %d ranks" % n)
    return out


tmp = tempfile.mkdtemp(prefix="rmtest-")

# ---- the environment
rid = run_id("nccl-env")
res = run(rid, ["-n", "2", "--", FAKE, "env"], env=clean_env(NCCL_DEBUG="INFO", NCCL_DEBUG_FILE=None))
check(res.rc == 0, "env: exit 0")
e = envs(res, 2)
for rank in range(2):
    check(e[rank].get("NCCL_DEBUG_FILE") == "%s/nccl-rank-%d.%%p.log" % (run_dir_of(rid), rank),
          "NCCL_DEBUG set: rank %d gets NCCL_DEBUG_FILE in the run directory (%s)"
          % (rank, e[rank].get("NCCL_DEBUG_FILE")))

rid = run_id("nccl-logdir")
logdir = os.path.join(tmp, "logs")
res = run(rid, ["-n", "2", "--log-dir", logdir, "--", FAKE, "env"],
          env=clean_env(NCCL_DEBUG="WARN", NCCL_DEBUG_FILE=None))
e = envs(res, 2)
check(all(e[r].get("NCCL_DEBUG_FILE") == "%s/%s/nccl-rank-%d.%%p.log" % (logdir, rid, r) for r in range(2)),
      "with --log-dir: NCCL_DEBUG_FILE in DIR/RUN-ID")

rid = run_id("nccl-user")
res = run(rid, ["-n", "2", "--", FAKE, "env"], env=clean_env(NCCL_DEBUG="INFO", NCCL_DEBUG_FILE="/var/tmp/n.%h.%p"))
e = envs(res, 2)
check(all(e[r].get("NCCL_DEBUG_FILE") == "/var/tmp/n.%h.%p" for r in range(2)), "the user's NCCL_DEBUG_FILE is kept")

rid = run_id("nccl-none")
res = run(rid, ["-n", "2", "--", FAKE, "env"], env=clean_env(NCCL_DEBUG=None, NCCL_DEBUG_FILE=None))
e = envs(res, 2)
check(all("NCCL_DEBUG_FILE" not in e[r] for r in range(2)), "no NCCL_DEBUG: no NCCL_DEBUG_FILE")


# ---- the tail in a diagnosis
def hung(name, env, lines):
    ready = Fifo(tmp, "ready-" + name)
    rid = run_id("nccl-" + name)
    rp = os.path.join(tmp, name + ".json")
    p = start(rid, ["-n", "2", "--stack-tool", "none", "--", HANG, "--ready", ready.path, "--nccl-lines", str(lines),
                    "read"], env=env, report_path=rp, stdout=subprocess.DEVNULL)
    err = StderrReader(p)
    pids = wait_ready(ready, 2)
    ready.close()
    text, took = sigusr2(p, err)
    require(text is not None, "%s: a diagnosis is printed" % name)
    log(text)
    rc, alltext = stop(p, err)
    check(rc == sig_status(signal.SIGTERM), "%s: exit 143" % name)
    report = read_report(rp)
    check_nothing_left(rid)
    return rid, pids, text, report


rid, pids, text, report = hung("ours", clean_env(NCCL_DEBUG="INFO", NCCL_DEBUG_FILE=None), 30)
for rank in range(2):
    d = report["ranks"][rank]["diagnosis"]
    path = "%s/nccl-rank-%d.%d.log" % (run_dir_of(rid), rank, pids[rank])
    check(d["nccl_log_files"] == [path], "ours: rank %d: its log file %s" % (rank, d["nccl_log_files"]))
    tail = d["nccl_log_tail"]
    check(len(tail) == 20 and tail[0].endswith("NCCL INFO fake line 10 of rank %d" % rank)
          and tail[-1].endswith("NCCL INFO fake line 29 of rank %d" % rank),
          "ours: rank %d: the last 20 lines (--tail-lines), in order" % rank)
    check("NCCL log %s, last 20 lines:" % path in rank_section(text, rank) and
          "fake line 29 of rank %d" % rank in rank_section(text, rank), "ours: rank %d: the tail in the text" % rank)

# The user's file, relative (to the rank's working directory) with %h and %p.
cwd = os.getcwd()
os.chdir(tmp)
try:
    rid, pids, text, report = hung("user", clean_env(NCCL_DEBUG="INFO", NCCL_DEBUG_FILE="nccl.%h.%p.txt"), 5)
finally:
    os.chdir(cwd)
host = os.uname().nodename.split(".")[0]
for rank in range(2):
    d = report["ranks"][rank]["diagnosis"]
    name = "nccl.%s.%d.txt" % (host, pids[rank])
    check(len(d["nccl_log_files"]) == 1 and d["nccl_log_files"][0].endswith("/" + name),
          "user: rank %d: its file %s found (%s)" % (rank, name, d["nccl_log_files"]))
    check(len(d["nccl_log_tail"]) == 5 and d["nccl_log_tail"][-1].endswith("fake line 4 of rank %d" % rank),
          "user: rank %d: the whole short file" % rank)
    check(os.path.exists(os.path.join(tmp, name)), "user: rank %d: the file stays where the user wanted it" % rank)

finish()
