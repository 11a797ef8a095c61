#!/bin/sh
# ringmaster-engine on the CPU against transformers' eager generate (fp32,
# CPU), same checkpoint, same run: about 106 M parameters (hidden 1024,
# 8 layers, 16 heads of 64, 4 KV heads, MLP 2816, vocab 8192; made by
# tools/make-tiny-llama, no torch needed), prompts of 32 tokens, 64 new
# tokens each (--ignore-eos / min_new_tokens): one request, then 8 batched.
# The engine at TP = 1 and 2 under ringmaster.  Prints each program's
# tokens/s line; docs/bench-engine.md keeps the figures.
#   tests/engine-ref/bench-engine-cpu.sh
. "$(dirname "$0")/common.sh"
need_torch
ck=$scratch/ck
"$python" "$top_srcdir/tools/make-tiny-llama" "$ck" --layers 8 --hidden 1024 --heads 16 --kv-heads 4 \
        --intermediate 2816 --vocab 8192 --std 0.02 --requests "$scratch/req" --n 8 --max-new-tokens 64 ||
        fail "make-tiny-llama"
"$python" - "$scratch/req" <<'PY'
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
for r in reqs:
    r["prompt"] = (r["prompt"] * 40)[:32]     # one length: transformers' batch needs no padding
open(sys.argv[1], "w").write("".join(json.dumps(r) + "\n" for r in reqs))
open(sys.argv[1] + "1", "w").write(json.dumps(reqs[0]) + "\n")
PY
echo "== machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), load $(cut -d' ' -f1-3 /proc/loadavg)"
"$python" "$here/hf-generate.py" "$ck" "$scratch/req1" "$scratch/hf1" --bench --ignore-eos 2>/dev/null
"$python" "$here/hf-generate.py" "$ck" "$scratch/req" "$scratch/hf8" --bench --ignore-eos --batch 2>/dev/null
for n in 1 2; do
        for r in req1 req; do
                echo "== engine TP=$n, $r"
                "$ringmaster" run -q --no-preflight -n $n -- "$engine" --model "$ck" --requests "$scratch/$r" \
                        --output "$scratch/e$n$r" --ignore-eos 2>&1 | grep -E "tokens/s|decode-only|control plane|compute|all-reduce|  step"
        done
done
"$python" "$here/compare.py" "$scratch/e1req1" "$scratch/hf1" --label "TP=1, 1 request, against transformers"
"$python" "$here/compare.py" "$scratch/e2req" "$scratch/hf8" --label "TP=2, 8 requests, against transformers' batch"
