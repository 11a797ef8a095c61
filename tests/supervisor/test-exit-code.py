#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Rank 2 of 4 exits 3 once every rank runs: ringmaster stops the others with
# SIGTERM, exits 3, and names rank 2 as the first failure (text and JSON).
# Then a rank that writes a torchrun error file: its message is in both.
import re
import tempfile
from rmtest import *

tmp = tempfile.mkdtemp(prefix="rmtest-")
ready, go = Fifo(tmp), GoFifo(tmp)
rid = run_id("exit-code")
p = start(rid, ["-n", "4", "--", FAKE, "--ready", ready.path, "--go", go.path, "--rank", "2",
                "exit", "3", "--others", "hang"], env=clean_env(), report_path=os.path.join(tmp, "r.json"))
pids = wait_ready(ready, 4)
go.go()
out, err = p.communicate(timeout=TIMEOUT)
res = Result(p.returncode, out, err, read_report(os.path.join(tmp, "r.json")), 0)
res.dump()
check(res.rc == 3, "exit status 3 (rank 2's)")
check(re.search(r"first failure: rank 2 \(pid %d, host [^,]+\) exited with status 3 at [0-9.]+ s" % pids[2],
                res.stderr), "report names rank 2, its pid and status")
check("phase unknown" in res.stderr, "report gives the phase (unknown)")
for k in (0, 1, 3):
    check(re.search(r"rank %d \(pid %d\): killed by SIGTERM" % (k, pids[k]), res.stderr),
          "rank %d reported killed by SIGTERM" % k)
check("exit status 3 (rank 2's)" in res.stderr, "last line gives the exit status and its rank")
r = res.report
require(r is not None, "JSON report")
check(r["outcome"] == "failure" and r["exit_status"] == 3 and r["exit_status_rank"] == 2, "JSON outcome")
ff = r["first_failure"]
check(ff["rank"] == 2 and ff["pid"] == pids[2] and ff["exit_code"] == 3 and ff["signal"] is None,
      "JSON first_failure rank 2 exit 3")
check(ff["host"] == os.uname().nodename and ff["time_s"] > 0, "JSON first_failure host and time")
for k in (0, 1, 3):
    e = rank_entry(r, k)
    check(e["state"] == "signalled" and e["signal_name"] == "SIGTERM" and e["signal_sent"] == "SIGTERM",
          "JSON rank %d signalled by the SIGTERM ringmaster sent" % k)
check_nothing_left(rid)

# A torchrun error file (torch.distributed.elastic's @record writes one).
rid = run_id("error-file")
res = run(rid, ["-n", "2", "--", FAKE, "--rank", "1", "error-file", "CUDA error: out of memory",
                "--others", "hang"], env=clean_env())
check(res.rc == 1, "exit status 1")
check("rank 1 error file: CUDA error: out of memory" in res.stderr, "error file message in the text report")
check("RuntimeError: CUDA error: out of memory" in res.stderr, "traceback / stderr tail in the text report")
ff = res.report["first_failure"]
check(ff["rank"] == 1 and ff["error_message"] == "CUDA error: out of memory", "JSON error_message")
ef = ff["error_file"]
check(isinstance(ef, dict) and ef["message"]["message"] == "CUDA error: out of memory" and
      "Traceback" in ef["message"]["extraInfo"]["py_callstack"], "JSON embeds the parsed error file")
check(rank_entry(res.report, 1)["stderr"]["tail"][-1] == "RuntimeError: CUDA error: out of memory",
      "stderr tail in the JSON")
check_nothing_left(rid)
finish()
