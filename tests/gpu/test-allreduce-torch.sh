#!/bin/sh
# ringmaster.allreduce (the Python binding) with torch tensors: two ranks
# (or one per GPU, up to 8) under `ringmaster run`, each running
# tests/gpu/allreduce_torch_rank.py.  Skips (77) without a GPU or without
# torch with CUDA ($RM_TORCH_PYTHONPATH is added to PYTHONPATH).
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
python=${PYTHON3:-python3}
export PYTHONPATH="$top_srcdir/engine/python${RM_TORCH_PYTHONPATH:+:$RM_TORCH_PYTHONPATH}${PYTHONPATH:+:$PYTHONPATH}"
export RINGMASTER_LIBRMWORKER_CUDA="$top_builddir/engine/.libs/librmworker-cuda.so.0"
export NCCL_NVLS_ENABLE=0
if ! [ -e "$RINGMASTER_LIBRMWORKER_CUDA" ]; then
        echo "test-allreduce-torch: $RINGMASTER_LIBRMWORKER_CUDA is not built: skipped"
        exit 77
fi
n=$("$python" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)' 2>/dev/null)
if [ -z "$n" ] || [ "$n" -eq 0 ]; then
        echo "test-allreduce-torch: no torch with a CUDA GPU: skipped"
        exit 77
fi
case $n in 1|2|3) w=2 ;; 4|5) w=4 ;; 6|7) w=6 ;; *) w=8 ;; esac
exec "$top_builddir/supervisor/ringmaster" run -n "$w" -- "$python" "$top_srcdir/tests/gpu/allreduce_torch_rank.py"
