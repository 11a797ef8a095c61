#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# ringmaster check: the command line, the JSON document (every check, its
# facts), RLIMIT_MEMLOCK, a busy --master-port (check fails, run refuses to
# start with the same message and exit status), CPUs, and the GPU checks
# skipping cleanly where there is no CUDA driver.
import shutil
import socket
from checktest import *

# ---- the command line
rc, out, err = rm_check(["--help"], clean_env())
check(rc == 0 and "Usage: ringmaster check" in out and "--json" in out, "check --help")
p = subprocess.run([RINGMASTER, "--help"], capture_output=True, env=clean_env(), timeout=TIMEOUT)
check(b"  check " in p.stdout and b"__gpu-probe" not in p.stdout, "ringmaster --help lists check, not the probe")
rc, out, err = rm_check(["--no-preflight"], clean_env())
check(rc == 100 and "ringmaster check: --no-preflight" in err, "check --no-preflight: usage error")
rc, out, err = rm_check(["-n", "zero"], clean_env())
check(rc == 100 and "ringmaster check: --nproc: 'zero' is not a whole number" in err, "check -n zero: usage error")
p = subprocess.run([RINGMASTER, "run", "--json", "--", FAKE, "true"], capture_output=True, env=clean_env(),
                   timeout=TIMEOUT)
check(p.returncode == 100 and b"--json is an option of ringmaster check" in p.stderr, "run --json: usage error")
p = subprocess.run([RINGMASTER, "run", "--help"], capture_output=True, env=clean_env(), timeout=TIMEOUT)
check(b"--no-preflight" in p.stdout, "run --help mentions --no-preflight")
rc, out, err = rm_check(["-n", "2", "--", "python3", "serve.py"], clean_env())
check(rc == 0 and line_of(out, "/dev/shm"), "check takes run's command line, COMMAND and all")

# ---- text: one line per check, each ok/info/skip/warn/fail
rc, out, err = rm_check(["-n", "2"], clean_env())
titles = ["/dev/shm", "memlock", "GPUs", "peer access", "NCCL", "MASTER_PORT", "CPUs", "ptrace"]
for t in titles:
    line = line_of(out, t)
    check(line[:6].strip() in ("ok", "info", "skip", "warn", "fail"), "a line for %s: %r" % (t, line))
check(rc == 0, "nothing fails on this machine for a CPU-only run of 2")

# ---- JSON: every check, with its facts
rc, doc, c = rm_check_json(["-n", "2"], clean_env())
check(doc["schema"] == "ringmaster-check/1" and doc["nproc"] == 2 and doc["exit_status"] == rc,
      "JSON: schema, nproc, exit_status")
check([x["name"] for x in doc["checks"]] == CHECK_NAMES, "JSON: every check, in order")
for x in doc["checks"]:
    check(x["status"] in ("ok", "info", "skip", "warn", "fail") and x["message"] and isinstance(x["facts"], dict)
          and isinstance(x["details"], list) and (x["fix"] is None or isinstance(x["fix"], str)),
          "JSON: %s has status, message, fix, details, facts" % x["name"])
check(c["shm"]["facts"]["ring_bytes"] > 0 and c["shm"]["facts"]["needed_bytes"] == c["shm"]["facts"]["ring_bytes"],
      "CPU-only: /dev/shm needs the ring and nothing for NCCL")
check(c["gpus"]["facts"]["gpus_used"] == 0 and c["peer-access"]["status"] == "skip" and c["nccl"]["status"] == "skip",
      "CPU-only: the GPU checks are skipped")
rc, doc, c = rm_check_json(["-n", "2", "--no-shm"], clean_env())
check(c["shm"]["facts"]["ring_bytes"] == 0, "--no-shm: no ring counted")

# The ring's size is the segment's: run --report says how big the segment it made was.
rc, doc, c = rm_check_json(["-n", "3", "--shm-overflow", "2M"], clean_env())
res = run(run_id("check-size"), ["-n", "3", "--shm-overflow", "2M", "--", FAKE, "true"], env=clean_env())
check(res.rc == 0 and res.report["shm"]["size"] == c["shm"]["facts"]["ring_bytes"],
      "the ring's size is the segment's size (%s, %s)" % (res.report and res.report["shm"]["size"],
                                                         c["shm"]["facts"]["ring_bytes"]))

# ---- GPUs without a CUDA driver or NVML: skipped, cleanly
rc, doc, c = rm_check_json(["-n", "2"], gpu_env("0,1"))
check(c["peer-access"]["status"] == "skip" and "no CUDA runtime/driver" in c["peer-access"]["message"],
      "no driver: peer access skipped ('no CUDA runtime/driver')")
check(c["gpus"]["status"] == "ok" and c["gpus"]["facts"]["gpus_used"] == 2, "no driver: 2 GPUs from CUDA_VISIBLE_DEVICES")
check(c["nccl"]["status"] == "warn" and "libnccl.so.2" in c["nccl"]["message"], "no NCCL there: a warning")
check(c["shm"]["facts"]["nccl_shm_transport"] and "peer access unknown" in c["shm"]["facts"]["nccl_reason"],
      "peer access unknown: NCCL's SHM transport counted")
rc, out, err = rm_check(["-n", "2"], gpu_env("0,1"))
check("skip  peer access: no CUDA runtime/driver" in out, "text: 'skip  peer access: no CUDA runtime/driver'")
# Whatever this machine has (GPUs or not), the real probe answers and the document parses.
rc, doc, c = rm_check_json(["-n", "2"], clean_env(CUDA_VISIBLE_DEVICES="0,1"))
check(c["peer-access"]["status"] in ("ok", "info", "skip", "warn"), "the real probe: %s" % c["peer-access"]["message"])

# ---- RLIMIT_MEMLOCK
prefix = ["prlimit", "--memlock=65536"]
if shutil.which("setpriv") and os.geteuid() == 0:
    prefix = ["setpriv", "--bounding-set=-ipc_lock", "--inh-caps=-ipc_lock"] + prefix
if shutil.which("prlimit"):
    rc, doc, c = rm_check_json(["-n", "2"], gpu_env("0,1"), prefix)
    m = c["memlock"]
    if m["facts"]["cap_ipc_lock"]:
        check(m["status"] == "ok" and "CAP_IPC_LOCK" in m["message"], "CAP_IPC_LOCK: the limit does not matter")
    else:
        check(m["status"] == "warn" and m["facts"]["soft_bytes"] == 65536 and "64.0 KiB" in m["message"]
              and "--ulimit memlock=-1" in m["fix"] and "LimitMEMLOCK=infinity" in m["fix"],
              "memlock 64 KiB on a GPU run: a warning with the fix")
        rc2, out, err = rm_check(["-n", "2"], gpu_env("0,1"), prefix)
        check(rc2 == 0 and line_of(out, "memlock").startswith("warn  memlock: RLIMIT_MEMLOCK 64.0 KiB"),
              "text: warn  memlock: RLIMIT_MEMLOCK 64.0 KiB")
        rc, doc, c = rm_check_json(["-n", "2"], clean_env(), prefix)
        check(c["memlock"]["status"] == "ok", "memlock 64 KiB on a CPU-only run: ok")
    if subprocess.run(["prlimit", "--memlock=unlimited", "true"], capture_output=True).returncode == 0:
        rc, doc, c = rm_check_json(["-n", "2"], gpu_env("0,1"), ["prlimit", "--memlock=unlimited"])
        check(c["memlock"]["status"] == "ok" and c["memlock"]["facts"]["soft_bytes"] is None, "memlock unlimited: ok")
    else:
        log("SKIP part: cannot raise RLIMIT_MEMLOCK to unlimited here")
else:
    log("SKIP part: no prlimit")

# ---- MASTER_PORT
busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
busy.bind(("127.0.0.1", 0))
busy.listen(1)
port = busy.getsockname()[1]
rc, out, err = rm_check(["-n", "2", "--master-port", str(port)], clean_env())
line = line_of(out, "MASTER_PORT")
check(rc == 111 and line.startswith("fail  MASTER_PORT: %d (--master-port) cannot be bound: Address already in use"
                                    % port) and "Fix: give another --master-port" in line,
      "a busy --master-port fails, with the fix")
message = line[len("fail  "):]
rid = run_id("check-port")
res = run(rid, ["-n", "2", "--master-port", str(port), "--", FAKE, "true"], env=clean_env())
check(res.rc == 111 and message in res.stderr and "not starting: 1 preflight check failed" in res.stderr,
      "run refuses to start with the same message and exit status")
check(res.report is None and "rank 0" not in res.stderr, "no rank started")
check_nothing_left(rid)
res = run(rid, ["--no-preflight", "-n", "1", "--master-port", str(port), "--", FAKE, "true"], env=clean_env())
check(res.rc == 0 and "preflight" not in res.stderr, "--no-preflight: no check, the run goes on")
busy.close()
rc, doc, c = rm_check_json(["-n", "2", "--master-port", str(port)], clean_env())
check(c["master-port"]["status"] == "ok" and c["master-port"]["facts"] == {"port": port, "given": True, "free": True},
      "a free --master-port: ok")
rc, doc, c = rm_check_json(["-n", "2"], clean_env())
check(c["master-port"]["status"] == "ok" and not c["master-port"]["facts"]["given"]
      and c["master-port"]["facts"]["port"] > 0, "no --master-port: ok, a free one is chosen")

# ---- CPUs
rc, doc, c = rm_check_json(["-n", "2"], clean_env(OMP_NUM_THREADS="4096"))
check(c["cpus"]["status"] == "warn" and c["cpus"]["facts"]["threads_per_rank"] == 4096
      and "OMP_NUM_THREADS" in c["cpus"]["message"], "ranks x OMP_NUM_THREADS over the CPUs: a warning")
rc, doc, c = rm_check_json(["-n", "1"], clean_env(OMP_NUM_THREADS="1"))
check(c["cpus"]["status"] == "ok", "one rank, one thread: ok")

# ---- ptrace: reported, never a failure
check(c["ptrace"]["status"] in ("ok", "info"), "ptrace: ok or info")

# ---- run's preflight is quiet when all is well, and says everything with -v
res = run(run_id("check-quiet"), ["-n", "1", "--", FAKE, "true"], env=clean_env(OMP_NUM_THREADS="1"))
check(res.rc == 0 and "preflight" not in res.stderr, "run: no preflight line when every check passes")
res = run(run_id("check-verbose"), ["-v", "-n", "1", "--", FAKE, "true"], env=clean_env(OMP_NUM_THREADS="1"))
check(res.rc == 0 and "preflight: ok    /dev/shm: " in res.stderr and "preflight: ok    GPUs: " in res.stderr,
      "run -v: the preflight's ok lines")
finish()
