# SPDX-License-Identifier: MIT
"""Helpers for the tests of `ringmaster check` and run's preflight (tests/supervisor/test-check*.py).

The GPU stack is played by tests/supervisor/fake-gpu.c: fake_gpu_dir() links it
as libcuda.so.1, libnvidia-ml.so.1 and libnccl.so.2 into a directory that the
probe is told to use (RINGMASTER_TEST_GPU_LIBDIR), so that every result is the
same on a machine with GPUs and on one without.
"""

import atexit
import json
import os
import shutil
import subprocess
import tempfile

from rmtest import *

FAKE_GPU_LIB = os.path.join(TOP_BUILDDIR, "tests", "supervisor", ".libs", "libfakegpu.so")
NO_GPU_LIBS = "/nonexistent/ringmaster-test-no-gpu-libs"

SONAMES = {"cuda": "libcuda.so.1", "nvml": "libnvidia-ml.so.1", "nccl": "libnccl.so.2"}
CHECK_NAMES = ["shm", "memlock", "gpus", "peer-access", "nccl", "master-port", "cpus", "ptrace"]


def fake_gpu_dir(libs=("cuda", "nvml", "nccl")):
    """A directory holding the fake stack under the names in libs."""
    if not os.path.exists(FAKE_GPU_LIB):
        log("no %s: was tests/supervisor/libfakegpu.la built?" % FAKE_GPU_LIB)
        sys.exit(99)
    d = tempfile.mkdtemp(prefix="rm-fake-gpu-")
    atexit.register(shutil.rmtree, d, True)
    # Copies, not links: the loader would take links to one file for one library.
    for lib in libs:
        shutil.copy(FAKE_GPU_LIB, os.path.join(d, SONAMES[lib]))
    return d


def gpu_env(gpus="0,1,2,3", libdir=NO_GPU_LIBS, **overrides):
    """clean_env() with CUDA_VISIBLE_DEVICES and the probe's library directory."""
    env = clean_env(CUDA_VISIBLE_DEVICES=gpus, RINGMASTER_TEST_GPU_LIBDIR=libdir)
    for k in list(env):
        if k.startswith("NCCL_") or k.startswith("FAKE_"):
            del env[k]
    for k, v in overrides.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def rm_check(args, env, prefix=()):
    """Runs [prefix...] ringmaster check ARGS; returns (rc, stdout, stderr)."""
    p = subprocess.run(list(prefix) + [RINGMASTER, "check"] + list(args), stdin=subprocess.DEVNULL,
                       capture_output=True, env=env, timeout=TIMEOUT)
    out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    log("$ %s ringmaster check %s -> %d\n%s%s" % (" ".join(prefix), " ".join(args), p.returncode, out,
                                                  ("stderr:\n" + err) if err else ""))
    return p.returncode, out, err


def rm_check_json(args, env, prefix=()):
    """ringmaster check --json: (rc, the parsed document, {name: check})."""
    rc, out, err = rm_check(["--json"] + list(args), env, prefix)
    doc = json.loads(out)
    return rc, doc, {c["name"]: c for c in doc["checks"]}


def line_of(out, title):
    """The line of one check in the text output ("ok    /dev/shm: ..."), or ""."""
    for line in out.splitlines():
        if line[6:].startswith(title + ":"):
            return line
    return ""


__all__ = [name for name in dir() if not name.startswith("_")]
