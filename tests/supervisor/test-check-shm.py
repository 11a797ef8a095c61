#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# /dev/shm against the run's needs, in a private mount namespace with a small
# tmpfs on /dev/shm (Docker's default is 64 MiB): `ringmaster check -n 4`
# fails on /dev/shm with the fix, `ringmaster run -n 4` refuses to start with
# the same message and exit status and starts no rank, and --no-preflight
# skips the check (then shmring_create()'s own -ENOSPC error stops the run
# when the ring itself does not fit).  Also: the estimate follows peer
# access, a CPU-only run counts the ring alone, /dev/shm missing, and
# /dev/shm that is not a tmpfs.  Skipped where mount namespaces are not allowed.
import re
from checktest import *

if not shutil.which("unshare"):
    skip("no unshare")
probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                        "mount -t tmpfs -o size=64m tmpfs /dev/shm"], capture_output=True)
if probe.returncode != 0:
    skip("cannot mount a tmpfs in a mount namespace: %s" % probe.stderr.decode().strip())

MiB = 1 << 20


def in_ns(setup, argv, env):
    """Runs argv in a new mount namespace after the shell commands setup; returns (rc, stdout, stderr)."""
    cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", setup + ' && exec "$@"', "sh"] + argv
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=TIMEOUT)
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    log("$ [%s] %s -> %d\n%s%s" % (setup, " ".join(argv[1:]), p.returncode, out, ("stderr:\n" + err) if err else ""))
    return p.returncode, out, err


shm64 = "mount -t tmpfs -o size=64m tmpfs /dev/shm"
marker_dir = tempfile.mkdtemp(prefix="rm-check-shm-")
marker = os.path.join(marker_dir, "started")
worker = ["sh", "-c", "touch %s" % marker]

# ---- Docker's 64 MiB, 4 GPU ranks, peer access unknown: a clear failure with the fix.
env = gpu_env("0,1,2,3")
rc, out, err = in_ns(shm64, [RINGMASTER, "check", "-n", "4"], env)
line = line_of(out, "/dev/shm")
check(rc == 111, "check -n 4 in 64 MiB: exit 111")
check(re.match(r"fail  /dev/shm: 64\.0 MiB total, 6[34]\.\d MiB free; this run needs about [0-9.]+ MiB \(ring "
               r"[0-9.]+ MiB \+ NCCL ~118\.3 MiB per rank for 4 ranks; peer access unknown: its SHM transport "
               r"counted; no NCCL found here to tell its version: NCCL before 2\.23's needs assumed\)\. "
               r"Fix: give /dev/shm at least 1g: docker run --shm-size=1g \(or --ipc=host", line),
      "says what there is, what the run needs and the fix")
check("Kubernetes" in line and "mount -o remount,size=1g /dev/shm" in line, "the fix for Kubernetes and a host too")
message = line[len("fail  "):]

rid = run_id("check-shm")
rc, out, err = in_ns(shm64, [RINGMASTER, "run", "--run-id", rid, "-n", "4", "--"] + worker, env)
check(rc == 111, "run -n 4 in 64 MiB: exit 111")
check("ringmaster: preflight: fail  " + message in err, "run says the same as check")
check("not starting: 1 preflight check failed" in err and "--no-preflight skips them" in err,
      "run says it does not start, and how to skip the checks")
check(not os.path.exists(marker), "no rank started")
check_nothing_left(rid)

# --no-preflight: the ring (35 MiB) fits, NCCL is the workers' business: the run goes on.
rc, out, err = in_ns(shm64, [RINGMASTER, "run", "--run-id", rid, "--no-preflight", "-n", "4", "--"] + worker, env)
check(rc == 0 and os.path.exists(marker) and "preflight" not in err, "--no-preflight: no check, the run starts")
os.unlink(marker)

# ---- The estimate follows peer access: 8 MiB per rank when every pair has P2P.
full = fake_gpu_dir()
for size, want in ((64, 111), (128, 0)):
    rc, out, err = in_ns("mount -t tmpfs -o size=%dm tmpfs /dev/shm" % size, [RINGMASTER, "check", "-n", "4"],
                         gpu_env("0,1,2,3", full))
    line = line_of(out, "/dev/shm")
    check(rc == want and "NCCL ~8.0 MiB per rank for 4 ranks; every GPU pair has peer access" in line,
          "P2P everywhere, %d MiB: exit %d" % (size, want))
rc, out, err = in_ns("mount -t tmpfs -o size=128m tmpfs /dev/shm", [RINGMASTER, "check", "-n", "4"],
                     gpu_env("0,1,2,3", full, FAKE_GPU_NO_P2P="1-2"))
check(rc == 111 and line_of(out, "/dev/shm").startswith("fail  /dev/shm: 128.0 MiB total"),
      "a pair without P2P, 128 MiB: NCCL's SHM transport does not fit")

# ---- NCCL 2.23 and later keep the SHM transport's buffers in cuMem host memory:
# 1 MiB a rank, P2P or not (measured on NCCL 2.28: docs/supervisor.md); with
# NCCL_CUMEM_HOST_ENABLE=0 they are back in /dev/shm.
for extra, want, what in (({}, 0, "NCCL 2.28, a pair without P2P, 64 MiB: fits"),
                          ({"NCCL_CUMEM_HOST_ENABLE": "0"}, 111, "the same with NCCL_CUMEM_HOST_ENABLE=0: does not")):
    rc, out, err = in_ns(shm64, [RINGMASTER, "check", "-n", "4"],
                         gpu_env("0,1,2,3", full, FAKE_GPU_NO_P2P="1-2", FAKE_NCCL_VERSION="22803", **extra))
    line = line_of(out, "/dev/shm")
    check(rc == want and ("NCCL ~1.0 MiB per rank" in line and "cuMem host memory" in line if want == 0
                          else "NCCL 2.28.3 with NCCL_CUMEM_HOST_ENABLE=0" in line), "%s (%s)" % (what, line))

# ---- CPU-only: the ring alone.
rc, doc, c = rm_check_json(["-n", "4"], clean_env())
ring = c["shm"]["facts"]["ring_bytes"]
check(32 * MiB < ring < 64 * MiB, "the default ring for 4 ranks is between 32 and 64 MiB (%d)" % ring)
rc, out, err = in_ns(shm64, [RINGMASTER, "check", "-n", "4"], clean_env())
check(rc == 0 and line_of(out, "/dev/shm").startswith("ok    /dev/shm: 64.0 MiB total")
      and "NCCL not counted: no GPU" in out, "CPU-only, 64 MiB: the ring fits")

# A ring larger than /dev/shm: check and run fail; --no-preflight meets shmring_create's -ENOSPC.
big = ["-n", "4", "--shm-overflow", "48M"]
rc, out, err = in_ns(shm64, [RINGMASTER, "check"] + big, clean_env())
line = line_of(out, "/dev/shm")
check(rc == 111 and line.startswith("fail  /dev/shm") and "or a smaller ring (--shm-overflow, --shm-queue-overflow)"
      in line, "a ring larger than /dev/shm: check fails, and suggests a smaller ring")
rc, out, err = in_ns(shm64, [RINGMASTER, "run", "--run-id", rid] + big + ["--"] + worker, clean_env())
check(rc == 111 and "preflight: fail  " + line[len("fail  "):] in err and not os.path.exists(marker),
      "run: the same failure, nothing started")
rc, out, err = in_ns(shm64, [RINGMASTER, "run", "--run-id", rid, "--no-preflight"] + big + ["--"] + worker,
                     clean_env())
check(rc == 111 and "/dev/shm is too small for this run" in err and "preflight" not in err
      and not os.path.exists(marker), "--no-preflight: shmring_create's own -ENOSPC error, exit 111")
check_nothing_left(rid)

# Space taken by others counts: free, not total.
rc, out, err = in_ns(shm64 + " && head -c 40M /dev/zero > /dev/shm/other", [RINGMASTER, "check", "-n", "4"],
                     clean_env())
line = line_of(out, "/dev/shm")
check(rc == 111 and re.match(r"fail  /dev/shm: 64\.0 MiB total, 2[34]\.\d MiB free", line)
      and "other files take part of it: ls -la /dev/shm" in line, "a /dev/shm filled by others: fails, says so")

# ---- No /dev/shm at all (an empty /dev), and /dev/shm on a disk.
rc, out, err = in_ns("mount -t tmpfs -o size=1m tmpfs /dev", [RINGMASTER, "check", "-n", "2"], clean_env())
line = line_of(out, "/dev/shm")
check(rc == 111 and line.startswith("fail  /dev/shm: not there (No such file or directory)")
      and "mount -t tmpfs" in line, "no /dev/shm: fails with the fix")
disk = subprocess.run(["stat", "-f", "-c", "%T", marker_dir], capture_output=True).stdout.decode().strip()
if disk not in ("tmpfs", "ramfs"):
    rc, out, err = in_ns("mount --bind %s /dev/shm" % marker_dir, [RINGMASTER, "check", "-n", "2"], clean_env())
    check(rc == 0 and line_of(out, "/dev/shm").startswith("warn  /dev/shm:") and "not a tmpfs" in out,
          "/dev/shm on %s: a warning" % disk)
else:
    log("SKIP part: %s is on %s" % (marker_dir, disk))

# A tmpfs without a size: unlimited.
rc, out, err = in_ns("mount -t tmpfs -o size=0 tmpfs /dev/shm", [RINGMASTER, "check", "-n", "4"], gpu_env())
check(line_of(out, "/dev/shm").startswith("ok    /dev/shm: a tmpfs without a size limit"), "size=0: unlimited, ok")
shutil.rmtree(marker_dir, True)
finish()
