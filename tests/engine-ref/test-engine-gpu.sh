#!/bin/sh
# The GPU path (bf16, cuBLAS, kernels/llama-kernels.cu) against
# transformers in bf16 on the same GPU (attn_implementation="eager"): the
# greedy tokens must be EQUAL on a fixed prompt set, and every logit within
# RM_GPU_LOGIT_TOL (default 0.25: bf16 logits of these checkpoints reach
# about 10, where a bf16 step is 0.0625; the engine's attention and norms
# accumulate in fp32, transformers' GEMMs round differently) of
# transformers'.  Two checkpoints: fp32 file (converted to bf16 by both),
# and a bf16 file with tied embeddings and rope_theta 500000.  TP = 1
# (TP = 2: test-engine-gpu-tp2.sh).  Then the same requests with the decode steps
# replayed from CUDA graphs (no --logits-out): the same tokens.  Skips
# without a GPU, torch or a CUDA build.
. "$(dirname "$0")/common.sh"
need_torch
if ! "$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        echo "test-engine-gpu: no GPU visible to torch: skipped"
        exit 77
fi
tol=${RM_GPU_LOGIT_TOL:-0.25}

run_case() {
        name=$1
        shift
        dir=$scratch/$name
        "$python" "$here/make-checkpoint.py" "$dir" --requests "$dir.req" --n 8 --max-new-tokens 24 "$@" >/dev/null 2>&1 ||
                fail "$name: make-checkpoint.py failed"
        "$python" "$here/hf-generate.py" "$dir" "$dir.req" "$dir.hf" --logits "$dir.hf-logits" --device cuda \
                --dtype bfloat16 >/dev/null 2>"$dir.hf-err" || { cat "$dir.hf-err"; fail "$name: transformers failed"; }
        "$ringmaster" run -q -n 1 -- "$engine" --device gpu --model "$dir" --requests "$dir.req" --output "$dir.e1" \
                --logits-out "$dir.e1-logits" --quiet 2>"$dir.err"
        rc=$?
        if [ $rc != 0 ] && grep -q "no GPU path" "$dir.err"; then
                echo "test-engine-gpu: the engine was built without CUDA: skipped"
                exit 77
        fi
        [ $rc = 0 ] || { cat "$dir.err"; fail "$name: the engine failed on the GPU"; }
        "$python" "$here/compare.py" "$dir.e1" "$dir.hf" --logits "$dir.e1-logits" "$dir.hf-logits" --tol "$tol" \
                --label "$name GPU bf16 TP=1" || exit 1
        # Without --logits-out, decode steps are replayed from CUDA graphs: the same tokens.
        "$engine" --device gpu --model "$dir" --requests "$dir.req" --output "$dir.graphs" --quiet ||
                fail "$name: the engine failed with CUDA graphs"
        "$python" "$here/compare.py" "$dir.graphs" "$dir.hf" --label "$name GPU bf16 TP=1, CUDA graphs" || exit 1
}

run_case A --layers 2 --hidden 128 --heads 8 --kv-heads 4 --intermediate 344 --vocab 512
run_case B --layers 3 --hidden 256 --heads 4 --kv-heads 2 --intermediate 512 --vocab 1000 --tied --dtype bfloat16 \
        --rope-theta 500000 --seed 1
echo "test-engine-gpu: PASS"
