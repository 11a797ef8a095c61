#!/bin/sh
# The custom all-reduce on a GPU host, in one go: builds its test and
# benchmark, runs the correctness test, compute-sanitizer (memcheck and
# racecheck) on a small case, and the benchmark.  Logs go to $OUT (default
# ./gpu-out), five files (the device tool brings back at most eight):
#   machine.txt  nvidia-smi -L, the driver, topology, nvcc, CPUs
#   build.txt    configure and make
#   test.txt     tests/gpu/test-allreduce (streams and procs scenarios),
#                tests/gpu/test-allreduce-torch.sh (the Python binding)
#   sanitizer.txt  compute-sanitizer memcheck, racecheck, synccheck, RMTEST_AR_QUICK=1,
#                without NCCL (NCCL's init makes API calls that fail by design)
#   bench.txt    tests/gpu/bench-allreduce (procs, then streams 2, 4, 8)
# Run it from a configured-or-not source tree (tools/device-prep makes one):
#   cd .devcarry-allreduce/src && sh tests/gpu/run-allreduce-on-gpu-host.sh
# RM_AR_STEPS (default "build test sanitizer bench") picks steps; the test's
# and benchmark's RMTEST_* knobs pass through.  Unchanged on 2, 4, 8 GPUs:
# the procs scenarios then use one process per GPU and NCCL runs beside.
set -u
. "$(dirname "$0")/gpu-host-env.sh"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
out=${OUT:-$PWD/gpu-out}
steps=${RM_AR_STEPS:-build test sanitizer bench}
mkdir -p "$out"

step() { echo "==== $* ($(date +%T))"; }

{
        echo "== nvidia-smi -L"; nvidia-smi -L
        echo "== driver"; nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv
        echo "== nvidia-smi topo -m"; nvidia-smi topo -m
        echo "== nvcc"; nvcc --version | tail -2
        echo "== compute-sanitizer"; compute-sanitizer --version | tail -1
        echo "== kernel"; uname -r
        echo "== cpus"; nproc
} > "$out/machine.txt" 2>&1
ngpu=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')

case " $steps " in
*" build "*)
        step build | tee "$out/build.txt"
        gpu_host_find_nccl
        if [ ! -f Makefile ]; then
                gpu_host_configure >> "$out/build.txt" 2>&1 ||
                        { tail -30 "$out/build.txt"; exit 1; }
        fi
        grep -E "CUDA:|NCCL:|GPU parts:" "$out/build.txt"
        make -j"$(nproc)" tests/gpu/test-allreduce tests/gpu/bench-allreduce supervisor/ringmaster \
			engine/librmworker-cuda.la >> "$out/build.txt" 2>&1 ||
                { grep -E "error" "$out/build.txt" | head -30; exit 1; }
        step built | tee -a "$out/build.txt"
        ;;
esac

case " $steps " in
*" test "*)
        step "test-allreduce (streams ${RMTEST_AR_STREAM_WORLDS:-2 4 8}; procs ${RMTEST_AR_WORLDS:-2 4})" | tee "$out/test.txt"
        timeout "${RM_AR_TEST_TIMEOUT:-240}" tests/gpu/test-allreduce >> "$out/test.txt" 2>&1
        echo "==== test-allreduce: exit $?" | tee -a "$out/test.txt"
        step "test-allreduce-torch.sh" | tee -a "$out/test.txt"
        top_srcdir=$PWD top_builddir=$PWD timeout 120 sh tests/gpu/test-allreduce-torch.sh >> "$out/test.txt" 2>&1
        echo "==== test-allreduce-torch: exit $?" | tee -a "$out/test.txt"
        grep -E "^(== |streams|rank 0:)|FAILED|wrong|check failed|ok$|all exact|Error" "$out/test.txt" | head -60
        ;;
esac

case " $steps " in
*" sanitizer "*)
        : > "$out/sanitizer.txt"
        for tool in ${RM_AR_SANITIZER_TOOLS:-memcheck racecheck synccheck}; do
                step "compute-sanitizer --tool $tool (procs 2, quick)" | tee -a "$out/sanitizer.txt"
                RMTEST_AR_QUICK=1 RMTEST_AR_NCCL=off RMTEST_AR_STREAM_WORLDS=none RMTEST_AR_WORLDS=2 timeout "${RM_AR_SANITIZER_TIMEOUT:-150}" \
                        compute-sanitizer --tool "$tool" --target-processes all --error-exitcode 3 \
                        tests/gpu/test-allreduce >> "$out/sanitizer.txt" 2>&1
                echo "==== $tool: exit $?" | tee -a "$out/sanitizer.txt"
                grep -E "ERROR SUMMARY|RACECHECK SUMMARY|LEAK SUMMARY" "$out/sanitizer.txt" | tail -4
        done
        ;;
esac

case " $steps " in
*" bench "*)
        step bench | tee "$out/bench.txt"
        w=2
        [ "$ngpu" -ge 2 ] && w=$ngpu
        timeout "${RM_AR_BENCH_TIMEOUT:-150}" tests/gpu/bench-allreduce procs "$w" >> "$out/bench.txt" 2>&1
        echo "==== bench procs $w: exit $?" >> "$out/bench.txt"
        for s in 2 4 8; do
                timeout 60 tests/gpu/bench-allreduce streams $s >> "$out/bench.txt" 2>&1
                echo "==== bench streams $s: exit $?" >> "$out/bench.txt"
        done
        grep -vE "^rank [1-9]" "$out/bench.txt"
        ;;
esac
