#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# The preflight's GPU checks against a fake GPU stack (tests/supervisor/fake-gpu.c
# as libcuda.so.1, libnvidia-ml.so.1, libnccl.so.2): the devices and the
# peer-access matrix, pairs without P2P (a warning, and NCCL's SHM transport
# counted in /dev/shm's needs), NVLink vs PCIe, NCCL's version, CUDA or NVML
# alone, a driver that fails, crashes or hangs (bounded by the probe's
# timeout), GPUs against -n and --gpus.
from checktest import *

full = fake_gpu_dir()
MiB = 1 << 20
CONNECTION = 4194304 + 4915200 + 524288 + 4096   # NCCL's SHM receive buffer: "size 9637888"

# ---- every pair over NVLink
rc, doc, c = rm_check_json(["-n", "4"], gpu_env("0,1,2,3", full))
pa = c["peer-access"]
check(pa["status"] == "ok" and "every pair has peer access (6 of 6 over NVLink)" in pa["message"],
      "4 GPUs, NVLink everywhere: ok")
check([d["name"] for d in pa["facts"]["devices"]] == ["NVIDIA H200"] * 4
      and [d["pci_bus_id"] for d in pa["facts"]["devices"]] == ["0000:%02X:00.0" % (0x10 + i) for i in range(4)]
      and pa["facts"]["devices"][0]["memory_bytes"] == 143771 * MiB, "the devices: names, PCI bus ids, memory")
check(len(pa["facts"]["pairs"]) == 6 and all(p["p2p"] is True and p["nvlink"] is True for p in pa["facts"]["pairs"]),
      "every pair: P2P and NVLink")
check(pa["facts"]["cuda_driver_version"] == 12080 and pa["facts"]["nvml_driver_version"] == "570.86.15",
      "driver versions")
check(c["nccl"]["status"] == "ok" and c["nccl"]["facts"]["version"] == "2.21.5"
      and c["nccl"]["facts"]["path"].endswith("libnccl.so.2"), "NCCL 2.21.5 found")
s = c["shm"]["facts"]
check(not s["nccl_shm_transport"] and s["nccl_per_rank_bytes"] == 8 * MiB
      and s["needed_bytes"] == s["ring_bytes"] + 4 * 8 * MiB, "P2P everywhere: NCCL's fixed 8 MiB per rank only")
rc, out, err = rm_check(["-n", "4"], gpu_env("0,1,2,3", full))
check("GPU0  NVIDIA H200  0000:10:00.0  140.4 GiB" in out, "text: the device list")
check(any(l.split() == ["GPU0", "X", "NV", "NV", "NV"] for l in out.splitlines()), "text: the matrix row of GPU0")

# ---- a pair without peer access, PCIe elsewhere
env = gpu_env("0,1,2,3", full, FAKE_GPU_NO_P2P="0-2", FAKE_GPU_NVLINK="0")
rc, doc, c = rm_check_json(["-n", "4"], env)
pa = c["peer-access"]
check(pa["status"] == "warn" and "1 of 6 GPU pairs have no peer access (0-2)" in pa["message"]
      and "SHM transport" in pa["message"] and "nvidia-smi topo -m" in pa["fix"], "no P2P between 0 and 2: a warning")
pairs = {(p["a"], p["b"]): p for p in pa["facts"]["pairs"]}
check(pairs[(0, 2)]["p2p"] is False and pairs[(0, 2)]["topology"] == "SYS" and pairs[(0, 1)]["p2p"] is True
      and pairs[(0, 1)]["nvlink"] is False and pairs[(0, 1)]["topology"] == "PXB", "JSON: the pairs' P2P and paths")
s = c["shm"]["facts"]
check(s["nccl_shm_transport"] and "GPUs 0 and 2 have no peer access" in s["nccl_reason"]
      and s["nccl_connection_bytes"] == CONNECTION and s["nccl_channels"] == 4
      and s["nccl_per_rank_bytes"] == 8 * MiB + 4 * 3 * CONNECTION, "no P2P: NCCL's SHM transport counted")
rc, out, err = rm_check(["-n", "4"], env)
check(any(l.split() == ["GPU0", "X", "PXB", "SYS*", "PXB"] for l in out.splitlines()), "text: SYS* marks the pair")
check(rc == 0, "a warning does not fail the check")
# NCCL's own knobs move the estimate.
rc, doc, c = rm_check_json(["-n", "4"], gpu_env("0,1,2,3", full, FAKE_GPU_NO_P2P="0-2", NCCL_BUFFSIZE="1048576",
                                                  NCCL_MAX_NCHANNELS="2"))
s = c["shm"]["facts"]
check(s["nccl_channels"] == 2 and s["nccl_connection_bytes"] == CONNECTION - 4194304 + 1048576,
      "NCCL_BUFFSIZE, NCCL_MAX_NCHANNELS are followed")
rc, doc, c = rm_check_json(["-n", "4"], gpu_env("0,1,2,3", full, FAKE_GPU_NO_P2P="0-2", NCCL_SHM_DISABLE="1"))
check(not c["shm"]["facts"]["nccl_shm_transport"], "NCCL_SHM_DISABLE=1: no SHM transport counted")
rc, doc, c = rm_check_json(["-n", "4"], gpu_env("0,1,2,3", full, NCCL_P2P_DISABLE="1"))
check(c["shm"]["facts"]["nccl_shm_transport"], "NCCL_P2P_DISABLE=1: SHM transport counted")

# ---- --gpus picks the GPUs, as CUDA ordinals in the rank's order
rc, doc, c = rm_check_json(["-n", "2", "--gpus", "3,1"], gpu_env("0,1,2,3", full))
check([d["pci_bus_id"] for d in c["peer-access"]["facts"]["devices"]] == ["0000:13:00.0", "0000:11:00.0"],
      "--gpus 3,1: the probe sees GPU 3 then GPU 1")
rc, doc, c = rm_check_json(["-n", "2"], gpu_env("2,3", full))
check([d["pci_bus_id"] for d in c["peer-access"]["facts"]["devices"]] == ["0000:12:00.0", "0000:13:00.0"],
      "CUDA_VISIBLE_DEVICES=2,3: those two")

# ---- GPUs against -n
rc, doc, c = rm_check_json(["-n", "4", "--gpus", "0,1"], gpu_env("0,1,2,3", full))
check(rc == 111 and c["gpus"]["status"] == "fail" and "4 ranks but 2 GPUs (--gpus: 0,1)" in c["gpus"]["message"]
      and "give -n 2" in c["gpus"]["fix"], "-n 4 --gpus 0,1: fails")
rc, doc, c = rm_check_json(["-n", "4"], gpu_env("0,1", full))
check(rc == 0 and c["gpus"]["status"] == "warn" and "ranks 2 to 3 have no GPU of their own" in c["gpus"]["message"],
      "-n 4 on 2 visible GPUs: a warning")
rc, doc, c = rm_check_json(["-n", "2"], gpu_env("0,1,2,3", full))
check(c["gpus"]["status"] == "ok" and "the first 2 of 4 GPUs" in c["gpus"]["message"]
      and len(c["peer-access"]["facts"]["devices"]) == 2, "-n 2 of 4: the first two are checked")
rc, doc, c = rm_check_json([], gpu_env("0,1,2", full))
check(doc["nproc"] == 3, "no -n: the visible GPUs")
res = run(run_id("check-gpus"), ["-n", "3", "--gpus", "0,1", "--", FAKE, "true"], env=gpu_env("0,1,2,3", full))
check(res.rc == 111 and "3 ranks but 2 GPUs (--gpus: 0,1)" in res.stderr, "run: -n 3 --gpus 0,1 does not start")

# ---- CUDA visible devices that the driver does not have
rc, doc, c = rm_check_json(["-n", "2"], gpu_env("0,7", full))
check(c["peer-access"]["status"] == "warn" and "CUDA sees 1 of the 2 GPUs" in c["peer-access"]["message"],
      "CUDA_VISIBLE_DEVICES naming a GPU the driver lacks: a warning")

# ---- NCCL versions, or none
rc, doc, c = rm_check_json(["-n", "2"], gpu_env("0,1", full, FAKE_NCCL_VERSION="2708"))
check(c["nccl"]["status"] == "warn" and c["nccl"]["facts"]["version"] == "2.7.8" and "older than 2.14" in
      c["nccl"]["message"], "NCCL 2.7.8 (old version code): a warning")
rc, doc, c = rm_check_json(["-n", "2"], gpu_env("0,1", fake_gpu_dir(("cuda", "nvml"))))
check(c["nccl"]["status"] == "warn" and "no NCCL" in c["nccl"]["message"] and c["peer-access"]["status"] == "ok",
      "no libnccl.so.2: a warning; the GPUs are still checked")

# ---- CUDA alone, NVML alone
rc, doc, c = rm_check_json(["-n", "4"], gpu_env("0,1,2,3", fake_gpu_dir(("cuda",)), FAKE_GPU_NO_P2P="1-3"))
pairs = {(p["a"], p["b"]): p for p in c["peer-access"]["facts"]["pairs"]}
check(pairs[(1, 3)]["p2p"] is False and pairs[(0, 1)]["p2p"] is True and pairs[(0, 1)]["nvlink"] is None
      and pairs[(0, 1)]["topology"] is None, "CUDA without NVML: P2P known, links unknown")
rc, doc, c = rm_check_json(["-n", "4"], gpu_env("0,1,2,3", fake_gpu_dir(("nvml",)), FAKE_GPU_NO_P2P="1-3"))
pairs = {(p["a"], p["b"]): p for p in c["peer-access"]["facts"]["pairs"]}
check(c["peer-access"]["facts"]["cuda_error"].startswith("no CUDA driver") and len(pairs) == 6
      and pairs[(1, 3)]["p2p"] is False and pairs[(0, 1)]["nvlink"] is True, "NVML without CUDA: P2P and NVLink known")

# ---- a driver that fails, crashes, hangs
rc, doc, c = rm_check_json(["-n", "2"], gpu_env("0,1", fake_gpu_dir(("cuda", "nccl")), FAKE_GPU_INIT_ERROR="804"))
check(c["peer-access"]["status"] == "warn" and "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE (804)" in
      c["peer-access"]["message"], "cuInit fails: a warning naming the error")
rc, doc, c = rm_check_json(["-n", "2"], gpu_env("0,1", full, FAKE_GPU_CRASH="1"))
check(c["peer-access"]["status"] == "warn" and "killed by SIGSEGV" in c["peer-access"]["message"],
      "the driver crashes the probe: a warning, and ringmaster carries on")
t0 = time.monotonic()
rc, doc, c = rm_check_json(["-n", "2"], gpu_env("0,1", full, FAKE_GPU_HANG="1", RINGMASTER_TEST_PROBE_TIMEOUT="1"))
check(rc == 111 and c["peer-access"]["status"] == "fail" and "did not answer within 1 s" in c["peer-access"]["message"]
      and "dmesg" in c["peer-access"]["fix"], "a driver that hangs: the check fails")
check(time.monotonic() - t0 < 30, "... within the probe's timeout (%.1f s)" % (time.monotonic() - t0))
rid = run_id("check-hang")
res = run(rid, ["-n", "2", "--", FAKE, "true"], env=gpu_env("0,1", full, FAKE_GPU_HANG="1",
                                                             RINGMASTER_TEST_PROBE_TIMEOUT="1"))
check(res.rc == 111 and "the driver does not answer" in res.stderr and "not starting" in res.stderr,
      "run: a hanging driver stops the run before it starts")
check_nothing_left(rid)
finish()
