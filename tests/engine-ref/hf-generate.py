#!/usr/bin/env python3
"""transformers' answers for a request file, the reference the engine must equal.

    hf-generate.py MODEL_DIR REQUESTS OUT [--logits LOGITS_OUT] [--device cpu|cuda]
                   [--dtype float32|bfloat16] [--bench]

For each request: model.generate(prompt, max_new_tokens, do_sample=False)
one prompt at a time (no padding), written as the engine writes answers:
{"id", "tokens", "finish_reason"}.  --logits writes the logits row of
every generated position (output_scores), as the engine's --logits-out.
--bench times generate over all requests (after a warm-up call) and
prints tokens/s; --batch makes it one generate call over all requests,
left-padded; --ignore-eos generates max_new_tokens whatever the tokens.
"""
import argparse
import json
import sys
import time


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("requests")
    p.add_argument("out")
    p.add_argument("--logits")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--bench", action="store_true")
    p.add_argument("--ignore-eos", action="store_true", help="generate max_new_tokens (min_new_tokens), as the engine's")
    p.add_argument("--batch", action="store_true", help="one generate call for all requests (left padding)")
    a = p.parse_args()

    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=getattr(torch, a.dtype),
                                                 attn_implementation="eager").to(a.device)
    model.eval()
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
    reqs = [json.loads(l) for l in open(a.requests) if l.strip()]
    logits_f = open(a.logits, "w") if a.logits else None
    generated = 0
    if a.bench:         # warm up: CUDA context, cuBLAS handles, kernels
        with torch.no_grad():
            ids = torch.tensor([reqs[0]["prompt"]], device=a.device)
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=4, do_sample=False, pad_token_id=0)
        if a.device != "cpu":
            torch.cuda.synchronize()
    t0 = time.perf_counter()
    if a.batch:
        with open(a.out, "w") as f, torch.no_grad():
            n = max(len(r["prompt"]) for r in reqs)
            ids = torch.tensor([[0] * (n - len(r["prompt"])) + r["prompt"] for r in reqs], device=a.device)
            mask = torch.tensor([[0] * (n - len(r["prompt"])) + [1] * len(r["prompt"]) for r in reqs], device=a.device)
            m = max(r["max_new_tokens"] for r in reqs)
            out = model.generate(ids, attention_mask=mask, max_new_tokens=m, do_sample=False, pad_token_id=0,
                                 min_new_tokens=m if a.ignore_eos else None)
            if a.device != "cpu":
                torch.cuda.synchronize()
            for i, r in enumerate(reqs):
                toks = out[i, n:].tolist()
                generated += len(toks)
                f.write(json.dumps({"id": r["id"], "tokens": toks}) + "\n")
        dt = time.perf_counter() - t0
        print("transformers generate, batched: %d requests, %d tokens in %.3f s: %.1f tokens/s"
              % (len(reqs), generated, dt, generated / dt))
        return 0
    with open(a.out, "w") as f, torch.no_grad():
        for r in reqs:
            ids = torch.tensor([r["prompt"]], device=a.device)
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=r["max_new_tokens"],
                                 do_sample=False, output_scores=logits_f is not None,
                                 output_logits=logits_f is not None, return_dict_in_generate=True,
                                 pad_token_id=0, min_new_tokens=r["max_new_tokens"] if a.ignore_eos else None)
            toks = out.sequences[0, ids.shape[1]:].tolist()
            generated += len(toks)
            reason = "eos" if toks and toks[-1] in eos else "length"
            f.write(json.dumps({"id": r["id"], "tokens": toks, "finish_reason": reason}) + "\n")
            if logits_f:
                for i, row in enumerate(out.logits):
                    logits_f.write(json.dumps({"id": r["id"], "position": i,
                                               "logits": row[0].float().tolist()}) + "\n")
    if a.device != "cpu":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    if a.bench:
        print("transformers generate: %d requests, %d tokens in %.3f s: %.1f tokens/s"
              % (len(reqs), generated, dt, generated / dt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
