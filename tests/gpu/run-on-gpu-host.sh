#!/bin/sh
# Builds ringmaster with CUDA (and NCCL) on a GPU host and runs the GPU
# tests with all GPUs (through `make check`) and with two, then the
# peer-read benchmark.  Logs go to $OUT (default ./gpu-out):
#   machine.txt  nvidia-smi -L, driver, nvidia-smi topo -m, nvcc, kernel
#   gpu-log.txt  every test's output and exit status
#   bench.txt    the benchmark's output (a markdown table among it)
# Run it from a configured source tree (tools/device-prep makes one):
#   cd .devcarry/src && sh tests/gpu/run-on-gpu-host.sh
# Environment: RM_GPU_STEPS (default "build check two bench"; "spawned": the
# spawned workers' NCCL test alone, which check runs too),
# RMTEST_* knobs of the tests (see each test's header).
set -u
. "$(dirname "$0")/gpu-host-env.sh"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
out=${OUT:-$PWD/gpu-out}
steps=${RM_GPU_STEPS:-build check two bench}
mkdir -p "$out"
log=$out/gpu-log.txt
: > "$log"

say() { echo "$*" | tee -a "$log"; }

# One test program, with its exit status and wall time in the log.
run_test() {
        name=$1
        shift
        start=$(date +%s%N)
        say "==== $name: $*"
        timeout 300 "$@" >> "$log" 2>&1
        rc=$?
        say "==== $name: exit $rc after $((($(date +%s%N) - start) / 1000000)) ms"
}

{
        echo "== nvidia-smi -L"; nvidia-smi -L
        echo "== driver"; nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv
        echo "== nvidia-smi topo -m"; nvidia-smi topo -m
        echo "== nvcc"; nvcc --version | tail -2
        echo "== kernel"; uname -r
        echo "== cpus"; nproc
} > "$out/machine.txt" 2>&1

case " $steps " in
*" build "*)
        gpu_host_find_nccl
        say "==== configure $nccl_flag"
        if ! gpu_host_configure > "$out/configure.txt" 2>&1; then
                tail -40 "$out/configure.txt" | tee -a "$log"
                exit 1
        fi
        grep -E "CUDA:|NCCL:|GPU parts:" "$out/configure.txt" | tee -a "$log"
        if ! make -j"$(nproc)" > "$out/make.txt" 2>&1; then
                grep -E "error|Error" "$out/make.txt" | head -40 | tee -a "$log"
                exit 1
        fi
        if ! make -j"$(nproc)" check TESTS= > "$out/make-check-build.txt" 2>&1; then
                grep -E "error|Error" "$out/make-check-build.txt" | head -40 | tee -a "$log"
                exit 1
        fi
        say "==== built"
        ;;
esac

case " $steps " in
*" check "*)
        # Every test, the GPU ones with all GPUs, under the automake harness.
        say "==== make check (all GPUs)"
        make -j4 check > "$out/make-check.txt" 2>&1
        say "==== make check: exit $?"
        grep -E "^(PASS|FAIL|SKIP|ERROR|XPASS|XFAIL):|^# " "$out/make-check.txt" | tee -a "$log"
        for f in tests/gpu/*.log; do
                [ -e "$f" ] || continue
                say "---- $f"
                cat "$f" >> "$log"
        done
        ;;
esac

case " $steps " in
*" spawned "*)
        # The spawned workers with NCCL on one GPU (make check ran it with the rest; this step
        # alone, for a quick look: RM_GPU_STEPS="build spawned").
        run_test "test-spawned-nccl (1 GPU)" env CUDA_VISIBLE_DEVICES=0 top_builddir="$PWD" \
                ${PYTHON3:-python3} tests/gpu/test-spawned-nccl.py
        ;;
esac

case " $steps " in
*" two "*)
        # The same with two GPUs.
        for t in test-tensor-roundtrip test-tensor-ordering test-tensor-errors test-nccl; do
                [ -x tests/gpu/$t ] || continue
                run_test "$t (2 GPUs)" env CUDA_VISIBLE_DEVICES=0,1 tests/gpu/$t
        done
        ;;
esac

case " $steps " in
*" bench "*)
        say "==== bench-tensor-peer (all GPUs)"
        timeout 400 tests/gpu/bench-tensor-peer > "$out/bench.txt" 2>&1
        say "==== bench-tensor-peer: exit $?"
        cat "$out/bench.txt" >> "$log"
        ;;
esac
