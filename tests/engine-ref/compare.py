#!/usr/bin/env python3
"""Compares the engine's answers (and logits) with transformers'.

    compare.py ENGINE_ANSWERS HF_ANSWERS [--logits ENGINE_LOGITS HF_LOGITS --tol 1e-4]
               [--allow-near-ties] [--label TEXT]

Fails (exit 1) when a request is missing, or its tokens or finish reason
differ, or (with --logits) a logit differs by more than --tol; prints the
first difference and the largest logit difference seen.  Logits are
compared up to a request's first differing token (after it, the two
models read different inputs).  At a differing token, the gap between the
two candidates in transformers' own logits is printed: within --tol it is
a near tie, which --allow-near-ties accepts (bf16 logits tie often).
"""
import argparse
import json
import sys


def load(path, key):
    out = {}
    for line in open(path):
        if line.strip():
            d = json.loads(line)
            out[key(d)] = d
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("engine")
    p.add_argument("hf")
    p.add_argument("--logits", nargs=2)
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--label", default="")
    p.add_argument("--allow-near-ties", action="store_true")
    a = p.parse_args()

    eng = load(a.engine, lambda d: d["id"])
    ref = load(a.hf, lambda d: d["id"])
    el = load(a.logits[0], lambda d: (d["id"], d["position"])) if a.logits else {}
    hl = load(a.logits[1], lambda d: (d["id"], d["position"])) if a.logits else {}
    bad = ties = 0
    upto = {}                   # request -> last position whose logits compare
    for rid, r in ref.items():
        e = eng.get(rid)
        upto[rid] = len(r["tokens"]) - 1
        if e is None:
            print("%s: request %s: no answer from the engine" % (a.label, rid))
            bad += 1
        elif "error" in e:
            print("%s: request %s: the engine said: %s" % (a.label, rid, e["error"]))
            bad += 1
        elif e["tokens"] != r["tokens"] or e["finish_reason"] != r.get("finish_reason", e["finish_reason"]):
            n = next((i for i, (x, y) in enumerate(zip(e["tokens"], r["tokens"])) if x != y),
                     min(len(e["tokens"]), len(r["tokens"])))
            upto[rid] = n
            gap = None
            if (rid, n) in hl and n < len(e["tokens"]) and n < len(r["tokens"]):
                row = hl[(rid, n)]["logits"]
                gap = row[r["tokens"][n]] - row[e["tokens"][n]]
            near = gap is not None and gap <= a.tol
            print("%s: request %s: tokens differ from position %d%s:\n  engine       %s (%s)\n  transformers %s (%s)"
                  % (a.label, rid, n, "" if gap is None else
                     " (transformers' logits of the two tokens differ by %.4g: %s)" % (gap, "a near tie" if near
                                                                                         else "NOT a tie"),
                     e["tokens"], e["finish_reason"], r["tokens"], r.get("finish_reason", "?")))
            if near and a.allow_near_ties:
                ties += 1
            else:
                bad += 1
    if len(eng) != len(ref):
        print("%s: the engine answered %d requests, transformers %d" % (a.label, len(eng), len(ref)))
        bad += 1
    worst = 0.0
    if a.logits:
        for k, h in hl.items():
            if k[1] > upto.get(k[0], -1):
                continue
            if k not in el:
                print("%s: no engine logits for request %s position %d" % (a.label, k[0], k[1]))
                bad += 1
                continue
            x, y = el[k]["logits"], h["logits"]
            if len(x) != len(y):
                print("%s: logits rows of %d and %d" % (a.label, len(x), len(y)))
                bad += 1
                continue
            d = max(abs(u - v) for u, v in zip(x, y))
            worst = max(worst, d)
        if worst > a.tol:
            print("%s: the largest logit difference is %.3g, above the tolerance %.3g" % (a.label, worst, a.tol))
            bad += 1
    ntok = sum(len(r["tokens"]) for r in ref.values())
    print("%s: %d requests, %d tokens: %s%s%s" % (a.label, len(ref), ntok,
                                               "DIFFERENT" if bad else "EQUAL" if not ties else "EQUAL but for near ties",
                                               " (%d near ties)" % ties if ties else "",
                                               ", largest logit difference %.3g" % worst if a.logits else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
