#!/bin/sh
# ringmaster-engine on a GPU host, in one go (docs/bench-engine.md keeps
# what it printed).  Run from a tree prepared by tools/device-prep
# (DEST/src), with OpenBLAS's Debian packages unpacked in DEST/openblas
# when the host has no libopenblas-dev:
#   cd DEST/src && sh tests/engine-ref/run-engine-on-gpu-host.sh
# Steps (RM_ENGINE_STEPS, default all, in this order):
#   build    configure --with-cuda, build ringmaster and ringmaster-engine
#   exact    tests/engine-ref/test-engine-gpu.sh (bf16 against transformers)
#   tp2      tests/engine-ref/test-engine-gpu-tp2.sh (TP = 2 through the
#            custom all-reduce, two ranks sharing the GPU where there is one)
#   bench    TP=1 on the GPU against transformers' eager generate, same
#            checkpoint (about 0.5 B parameters, bf16): one request, then 8;
#            the kernels of a decode step timed (--profile-kernels); TP = 2
#            on the GPU (the control plane with GPU ranks)
#   control  the control plane at TP = 2 and 4 with CPU ranks, 8 requests
#            in flight
#   allreduce  the shm all-reduce against gloo at 4 ranks
# RM_ENGINE_QUICK=1 (bench): no transformers runs, no repeated or TP = 2
# runs (a short device lease: the engine and its profile alone).
# Logs go to $OUT (default ./gpu-out): engine-gpu.txt (everything),
# machine.txt, configure.txt.
set -u
. "$(dirname "$0")/../gpu/gpu-host-env.sh"
export NCCL_NVLS_ENABLE=0 PYTHONUNBUFFERED=1
out=${OUT:-$PWD/gpu-out}
steps=${RM_ENGINE_STEPS:-build exact tp2 bench control allreduce}
mkdir -p "$out"
log=$out/engine-gpu.txt
: > "$log"
say() { echo "$*" | tee -a "$log"; }
run() {         # label, command...: output into the log, with the exit status and time
        label=$1
        shift
        start=$(date +%s%N)
        say "==== $label: $*"
        timeout 240 "$@" >> "$log" 2>&1
        rc=$?
        say "==== $label: exit $rc after $((($(date +%s%N) - start) / 1000000)) ms"
        return $rc
}
{
        echo "== nvidia-smi -L"; nvidia-smi -L
        nvidia-smi --query-gpu=index,name,driver_version,memory.total,clocks.max.sm --format=csv
        echo "== nvcc"; nvcc --version | tail -2
        echo "== cpu"; nproc; grep -m1 'model name' /proc/cpuinfo
        echo "== os"; grep PRETTY /etc/os-release
        echo "== python"; python3 -c 'import torch, transformers; print(torch.__version__, transformers.__version__)'
        echo "== profilers"; command -v nsys ncu; ls /usr/local/cuda/bin 2>/dev/null | grep -i -e nsys -e ncu
} > "$out/machine.txt" 2>&1

ob=$(cd .. && pwd)/openblas
if [ -d "$ob/usr/lib/x86_64-linux-gnu/openblas-pthread" ]; then
        obl=$ob/usr/lib/x86_64-linux-gnu
        OPENBLAS_CFLAGS="-I$ob/usr/include/x86_64-linux-gnu/openblas-pthread"
        OPENBLAS_LIBS="-L$obl/openblas-pthread -Wl,-rpath,$obl/openblas-pthread -Wl,-rpath,$obl -Wl,-rpath-link,$obl -lopenblas"
        LD_LIBRARY_PATH=$obl/openblas-pthread:$obl${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
        export OPENBLAS_CFLAGS OPENBLAS_LIBS LD_LIBRARY_PATH
fi

case " $steps " in
*" build "*)
        gpu_host_find_nccl
        say "==== configure $nccl_flag"
        if ! gpu_host_configure > "$out/configure.txt" 2>&1; then
                tail -30 "$out/configure.txt" | tee -a "$log"
                exit 1
        fi
        tail -16 "$out/configure.txt" >> "$log"
        run build make -j"$(nproc)" engine/ref/ringmaster-engine supervisor/ringmaster || { tail -40 "$log"; exit 1; }
        ;;
esac
engine=$PWD/engine/ref/ringmaster-engine
ringmaster=$PWD/supervisor/ringmaster
top_srcdir=$PWD top_builddir=$PWD
export top_srcdir top_builddir
t=/tmp/rm-engine-bench
mkdir -p $t

case " $steps " in *" exact "*)
        run exact sh tests/engine-ref/test-engine-gpu.sh ;;
esac

case " $steps " in *" tp2 "*)
        run tp2 sh tests/engine-ref/test-engine-gpu-tp2.sh ;;
esac

case " $steps " in *" bench "*)
        # About 0.5 B parameters: hidden 1536, 16 layers, 12 heads of 128, 4 KV heads, MLP 4096, vocab 32000.
        run make-checkpoint python3 tests/engine-ref/make-checkpoint.py $t/ck --device cuda --dtype bfloat16 \
                --layers 16 --hidden 1536 --heads 12 --kv-heads 4 --intermediate 4096 --vocab 32000 \
                --max-positions 1024 --init-std 0.02 --requests $t/req8 --n 8 --prompt-len 32 --max-new-tokens 128
        head -n 1 $t/req8 > $t/req1
        quick=${RM_ENGINE_QUICK:-0}
        [ "$quick" = 1 ] || run hf-1 python3 tests/engine-ref/hf-generate.py $t/ck $t/req1 $t/hf1 --device cuda --dtype bfloat16 --bench --ignore-eos
        [ "$quick" = 1 ] || run hf-8 python3 tests/engine-ref/hf-generate.py $t/ck $t/req8 $t/hf8 --device cuda --dtype bfloat16 --bench --ignore-eos --batch
        run engine-1 "$ringmaster" run -n 1 -- "$engine" --device gpu --model $t/ck --requests $t/req1 --output $t/e1 --ignore-eos
        run engine-8 "$ringmaster" run -n 1 -- "$engine" --device gpu --model $t/ck --requests $t/req8 --output $t/e8 --ignore-eos
        [ "$quick" = 1 ] || run engine-1-again "$engine" --device gpu --model $t/ck --requests $t/req1 --output $t/e1b --ignore-eos
        run engine-1-no-graphs "$engine" --device gpu --model $t/ck --requests $t/req1 --output $t/e1n --ignore-eos --no-cuda-graphs
        run engine-8-no-graphs "$engine" --device gpu --model $t/ck --requests $t/req8 --output $t/e8n --ignore-eos --no-cuda-graphs
        python3 tests/engine-ref/compare.py $t/e1 $t/e1n --label "CUDA graphs against none, 1 request" >> "$log" 2>&1
        python3 tests/engine-ref/compare.py $t/e8 $t/e8n --label "CUDA graphs against none, 8 requests" >> "$log" 2>&1
        python3 tests/engine-ref/compare.py $t/e1 $t/hf1 --label "bench checkpoint, 1 request, 128 tokens" >> "$log" 2>&1
        python3 tests/engine-ref/compare.py $t/e8 $t/hf8 --label "bench checkpoint, 8 requests batched" >> "$log" 2>&1
        run profile-1 "$engine" --device gpu --model $t/ck --requests $t/req1 --output /dev/null --ignore-eos \
                --profile-kernels
        run profile-8 "$engine" --device gpu --model $t/ck --requests $t/req8 --output /dev/null --ignore-eos \
                --profile-kernels
        # TP = 2 on the GPU (two ranks share it where there is one): the custom all-reduce, graphs and not.
        if [ "$quick" != 1 ]; then
        run engine-tp2-1 "$ringmaster" run -n 2 -- "$engine" --device gpu --model $t/ck --requests $t/req1 \
                --output $t/t1 --ignore-eos --collective-timeout 60
        run engine-tp2-8 "$ringmaster" run -n 2 -- "$engine" --device gpu --model $t/ck --requests $t/req8 \
                --output $t/t8 --ignore-eos --collective-timeout 60
        run engine-tp2-8-no-graphs "$ringmaster" run -n 2 -- "$engine" --device gpu --model $t/ck --requests $t/req8 \
                --output $t/t8n --ignore-eos --collective-timeout 60 --no-cuda-graphs
        run profile-tp2-8 "$ringmaster" run -n 2 -- "$engine" --device gpu --model $t/ck --requests $t/req8 \
                --output /dev/null --ignore-eos --collective-timeout 60 --profile-kernels
        python3 tests/engine-ref/compare.py $t/t8 $t/e8 --label "TP=2 against TP=1, 8 requests" >> "$log" 2>&1
        python3 tests/engine-ref/compare.py $t/t8n $t/t8 --label "TP=2 without graphs against with" >> "$log" 2>&1
        fi
        ;;
esac

case " $steps " in *" control "*)
        python3 tools/make-tiny-llama $t/tiny --requests $t/tiny.req --n 8 --max-new-tokens 64 >> "$log" 2>&1
        for n in 2 4; do
                run control-tp$n "$ringmaster" run -n $n -- "$engine" --device cpu --threads 2 --model $t/tiny \
                        --requests $t/tiny.req --output /dev/null --ignore-eos
        done
        ;;
esac

case " $steps " in *" allreduce "*)
        run allreduce-4 sh tests/engine-ref/bench-allreduce.sh 4 ;;
esac
say "==== done"
