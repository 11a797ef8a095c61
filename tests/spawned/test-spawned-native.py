#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Non-Python workers using the C API (rm_announce.h): an engine Popens 4
# tests/spawned/announce-worker processes that join one group through
# rm_announce_group(); worker 2 announces itself but hangs before joining.
# Named as the Python ones are, with its native stack in the diagnosis; the
# others' lines under their own prefixes.
import re
import tempfile
from spawntest import *

if not os.access(NATIVE, os.X_OK):
    skip("tests/spawned/announce-worker is not built")
T = 2.0
rid = run_id("spawned-native")
tmp = tempfile.mkdtemp(prefix="rmtest-")
rp = os.path.join(tmp, "r.json")
p = start(rid, ["-n", "1", "--straggler-timeout", str(T), "--grace", "5", "--"] +
          engine_cmd("--method", "native", "--native-worker", NATIVE, "--workers", "4", "--sleep-before-init", "2:0",
                     "--hang-after-init", "0"),
          env=clean_env(), report_path=rp)
# Workers 1 and 3 end at once; worker 0 hangs after joining, 2 before.
out, err = p.communicate(timeout=TIMEOUT)
res = Result(p.returncode, out, err, read_report(rp), 0)
res.dump()
r = res.report
require(r is not None, "JSON report written")
check(res.rc == 124, "exit status 124")
m = re.search(r"======== run %s: worker 2 of 4 \(pid (\d+), child of rank 0\) never entered dist-init; "
              r"workers 0,1,3 waiting [\d.]+ s ========" % rid, res.stderr)
check(m is not None, "the headline names native worker 2 (found by its index)")
check("[rank 0/w2] native worker 2 hangs" in res.stdout, "worker 2's line under its prefix")
check("[rank 0/w0] native worker 0 up" in res.stdout, "worker 0's line under its prefix")
w2 = [w for w in r["workers"] if w["index"] == 2]
check(len(w2) == 1 and w2[0]["kind"] == "native", "JSON: worker 2, native")
check_nothing_left(rid)
finish()
