#!/usr/bin/env python3
"""Writes a small random Llama checkpoint with transformers' own classes.

    make-checkpoint.py DIR [--layers 2] [--hidden 128] [--heads 8] [--kv-heads 4]
                           [--intermediate 344] [--vocab 512] [--dtype float32|bfloat16]
                           [--tied] [--rope-theta 10000] [--seed 0] [--requests FILE --n 4]

LlamaConfig + LlamaForCausalLM(config).save_pretrained(DIR): config.json,
generation_config.json, model.safetensors, exactly as a real checkpoint of
that shape.  The weights are drawn with a larger spread than transformers'
default initialisation (std 0.02 gives near-uniform logits, whose argmax is
decided by rounding): std --init-std (0.2), so the greedy tokens are well
separated and an exact comparison means something.  With --requests, also
writes N requests of different prompt lengths as JSON lines.
"""
import argparse
import json
import os
import random
import sys


def main():
    p = argparse.ArgumentParser()
    p.add_argument("dir")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--kv-heads", type=int, default=4)
    p.add_argument("--head-dim", type=int, default=None)
    p.add_argument("--intermediate", type=int, default=344)
    p.add_argument("--vocab", type=int, default=512)
    p.add_argument("--max-positions", type=int, default=512)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--tied", action="store_true")
    p.add_argument("--rope-theta", type=float, default=10000.0)
    p.add_argument("--init-std", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="where to draw the weights (cuda: fast for large shapes)")
    p.add_argument("--requests")
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--max-new-tokens", type=int, default=12)
    p.add_argument("--prompt-len", type=int, default=0, help="every prompt this long (default: different lengths)")
    a = p.parse_args()

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(a.seed)
    kw = dict(vocab_size=a.vocab, hidden_size=a.hidden, intermediate_size=a.intermediate,
              num_hidden_layers=a.layers, num_attention_heads=a.heads, num_key_value_heads=a.kv_heads,
              max_position_embeddings=a.max_positions, rope_theta=a.rope_theta, rms_norm_eps=1e-5,
              tie_word_embeddings=a.tied, initializer_range=a.init_std, bos_token_id=1, eos_token_id=2)
    if a.head_dim:
        kw["head_dim"] = a.head_dim
    cfg = LlamaConfig(**kw)
    with torch.device(a.device):
        model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        for name, t in model.named_parameters():
            if "norm" in name:
                t.uniform_(0.8, 1.2)        # not all ones: the norm weights must be applied right
    model = model.to(getattr(torch, a.dtype))
    model.save_pretrained(a.dir, safe_serialization=True)

    if a.requests:
        rnd = random.Random(a.seed)
        with open(a.requests, "w") as f:
            for i in range(a.n):
                n = a.prompt_len or (1 + (i * 7 + 3) % 23 if i else 1)   # 1, 11, 18, 2, ...: one of 1
                prompt = [rnd.randrange(3, a.vocab) for _ in range(n)]
                f.write(json.dumps({"id": "r%d" % i, "prompt": prompt, "max_new_tokens": a.max_new_tokens}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
