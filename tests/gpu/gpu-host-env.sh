# Sourced (not run) by the scripts that build and test on a GPU host:
# tests/gpu/run-on-gpu-host.sh, tests/gpu/run-allreduce-on-gpu-host.sh and
# tests/engine-ref/run-engine-on-gpu-host.sh, from the top of a tree that
# tools/device-prep prepared (libsystemd's headers in ../sysinc).
#   gpu_host_find_nccl   sets nccl_flag: empty where the CUDA toolkit or the
#                        system has nccl.h, else --with-nccl=/tmp/rm-nccl
#                        (the nvidia-nccl Python wheel's headers and library,
#                        linked there), empty when there is no wheel either
#   gpu_host_configure   ./configure with CUDA, that NCCL, sm_90 and
#                        libsystemd from ../sysinc (call gpu_host_find_nccl
#                        first); the caller redirects its output

gpu_host_find_nccl() {
        nccl_flag=
        if [ ! -e /usr/local/cuda/include/nccl.h ] && [ ! -e /usr/include/nccl.h ]; then
                d=$(python3 -c 'import nvidia.nccl as n; print(list(n.__path__)[0])' 2>/dev/null)
                if [ -n "$d" ] && [ -e "$d/include/nccl.h" ]; then
                        mkdir -p /tmp/rm-nccl/lib
                        ln -sfn "$d/include" /tmp/rm-nccl/include
                        ln -sf "$(ls "$d"/lib/libnccl.so* | head -1)" /tmp/rm-nccl/lib/libnccl.so
                        nccl_flag=--with-nccl=/tmp/rm-nccl
                fi
        fi
}

gpu_host_configure() {
        ./configure --with-cuda $nccl_flag NVCC_GENCODE="-gencode arch=compute_90,code=sm_90" \
                LIBSYSTEMD_CFLAGS="-I$PWD/../sysinc" LIBSYSTEMD_LIBS=-l:libsystemd.so.0
}
