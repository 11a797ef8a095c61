#!/bin/sh
# The engine's greedy tokens EQUAL transformers' generate(do_sample=False)
# on small random checkpoints made with transformers' own classes (fp32,
# CPU), at TP = 1, 2 and 4, with several prompts of different lengths
# batched together, and its logits within 1e-3 of transformers'.  The
# engine is told --device cpu: on a GPU host, auto would take the GPU (whose
# exactness test is test-engine-gpu.sh, in bf16).
#   A: untied embeddings, float32 file, 8 query / 4 key-value heads
#   B: tied embeddings, bfloat16 file, rope_theta 500000, head_dim 24,
#      4 query / 2 key-value heads (TP = 4 replicates the key-value heads)
#   C: tools/make-tiny-llama's checkpoint (no torch needed to make it)
# Also: a batch smaller than the requests with a step budget of 8 tokens,
# so requests join between steps and long prompts are prefilled in chunks;
# and requests streamed through standard input.
. "$(dirname "$0")/common.sh"
need_torch

run_case() {            # name, make-checkpoint flags
        name=$1
        shift
        dir=$scratch/$name
        "$python" "$here/make-checkpoint.py" "$dir" --requests "$dir.req" --n 6 "$@" >/dev/null 2>&1 ||
                fail "$name: make-checkpoint.py failed"
        "$python" "$here/hf-generate.py" "$dir" "$dir.req" "$dir.hf" --logits "$dir.hf-logits" >/dev/null 2>"$dir.hf-err" ||
                { cat "$dir.hf-err"; fail "$name: transformers failed"; }

        # TP = 1 without ringmaster.
        "$engine" --device cpu --model "$dir" --requests "$dir.req" --output "$dir.e1" --logits-out "$dir.e1-logits" --quiet ||
                fail "$name: the engine failed at TP=1"
        "$python" "$here/compare.py" "$dir.e1" "$dir.hf" --logits "$dir.e1-logits" "$dir.hf-logits" --tol 1e-3 \
                --label "$name TP=1" || exit 1

        for n in 2 4; do
                "$ringmaster" run -q -n $n -- "$engine" --device cpu --model "$dir" --requests "$dir.req" --output "$dir.e$n" \
                        --logits-out "$dir.e$n-logits" --quiet || fail "$name: the engine failed at TP=$n"
                "$python" "$here/compare.py" "$dir.e$n" "$dir.hf" --logits "$dir.e$n-logits" "$dir.hf-logits" \
                        --tol 1e-3 --label "$name TP=$n" || exit 1
        done

        # Continuous batching under pressure: 3 slots for 6 requests, 8 tokens a step.
        "$ringmaster" run -q -n 2 -- "$engine" --device cpu --model "$dir" --requests "$dir.req" --output "$dir.small" \
                --max-batch 3 --max-step-tokens 8 --step-log "$dir.steps" --quiet ||
                fail "$name: the engine failed with --max-batch 3 --max-step-tokens 8"
        "$python" "$here/compare.py" "$dir.small" "$dir.hf" --label "$name TP=2 batch 3, 8 tokens a step" || exit 1
        "$python" - "$dir.steps" <<'PY' || fail "$name: the step log does not show chunked prefill and joins"
import json, sys
steps = [json.loads(l) for l in open(sys.argv[1])]
assert all(s["tokens"] <= 8 and s["seqs"] <= 3 for s in steps), "a step over its budget"
assert any(s["tokens"] == 8 for s in steps), "no full step"
# a step mixing decodes with a prefill chunk: more tokens than sequences, more than one sequence
assert any(s["seqs"] > 1 and s["tokens"] > s["seqs"] for s in steps), "no mixed step"
print("step log: %d steps, largest %d tokens" % (len(steps), max(s["tokens"] for s in steps)))
PY
}

run_case A --layers 2 --hidden 128 --heads 8 --kv-heads 4 --intermediate 344 --vocab 512
run_case B --layers 3 --hidden 96 --heads 4 --kv-heads 2 --head-dim 24 --intermediate 200 --vocab 300 \
        --tied --dtype bfloat16 --rope-theta 500000 --seed 1

# C: the checkpoint tools/run-main makes without torch reads the same in transformers and the engine.
"$python" "$top_srcdir/tools/make-tiny-llama" "$scratch/C" --layers 2 --hidden 64 --heads 4 --kv-heads 2 \
        --intermediate 160 --vocab 256 --requests "$scratch/C.req" --n 4 --max-new-tokens 20 || fail "make-tiny-llama failed"
"$python" "$here/hf-generate.py" "$scratch/C" "$scratch/C.req" "$scratch/C.hf" >/dev/null 2>&1 || fail "C: transformers failed"
"$ringmaster" run -q -n 2 -- "$engine" --device cpu --model "$scratch/C" --requests "$scratch/C.req" --output "$scratch/C.e2" --quiet ||
        fail "C: the engine failed"
"$python" "$here/compare.py" "$scratch/C.e2" "$scratch/C.hf" --label "C (tools/make-tiny-llama) TP=2" || exit 1

# Requests through standard input (one rank: under ringmaster, standard input is /dev/null).
"$engine" --device cpu --model "$scratch/A" --output "$scratch/A.stdin" --quiet < "$scratch/A.req" ||
        fail "the engine failed reading standard input"
"$python" "$here/compare.py" "$scratch/A.stdin" "$scratch/A.hf" --label "A TP=1 from standard input" || exit 1

# Requests streamed through a FIFO while the engine runs: half now, half a moment later.
mkfifo "$scratch/fifo"
{ head -n 3 "$scratch/A.req"; sleep 1; tail -n +4 "$scratch/A.req"; } > "$scratch/fifo" &
"$ringmaster" run -q -n 2 -- "$engine" --device cpu --model "$scratch/A" --requests "$scratch/fifo" --output "$scratch/A.fifo" \
        --quiet || fail "the engine failed reading a FIFO"
wait
"$python" "$here/compare.py" "$scratch/A.fifo" "$scratch/A.hf" --label "A TP=2 from a FIFO, in two parts" || exit 1
echo "test-engine-exact: PASS"
