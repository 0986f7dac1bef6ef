#!/usr/bin/env python3
"""Validation perplexity of MLX models and the greedy acceptance rate of a draft for a target.

usage: evaluate.py --data DIR ppl MODEL...            perplexity on valid.txt (mlx, CPU)
       evaluate.py --data DIR windows > W.jsonl       the same windows as {"ids"} records, for
                                                      `mlx-gen -m MODEL --score < W.jsonl`
       evaluate.py --data DIR accept TARGET DRAFT     speculative acceptance, greedy

Perplexity: valid.txt is tokenized as in training (documents joined by <|endoftext|>), the
first --windows non-overlapping windows of --seq tokens are scored, every position but the
first of each window counts; ppl = exp(mean negative log-likelihood).

Acceptance: --prompts prompts, each the first 32 tokens of a validation document; for each,
--gen tokens are decoded greedily by mlx-lm's speculative_generate_step: the draft proposes
num_draft (3) greedy tokens, the target scores them in one pass and keeps the longest prefix
that equals its own greedy choice, then adds its own next token.  Reported: proposed,
accepted, accepted / proposed, and mean tokens per target pass.  The decoded text is
checked against plain greedy decoding with the target alone (it must be identical).
Models are loaded dequantized in float32 (see load_f32).
"""
import argparse
import json
import math
import os

import mlx.core as mx
from mlx_lm import load
from tokenizers import Tokenizer


def load_f32(path):
    """mlx-lm load, then floating parameters (bf16 norms, embeddings' scales and biases) cast
    to float32: exact for the stored values, and mlx's CPU backend is slow in bf16."""
    from mlx_lm.utils import dequantize_model
    model, tok = load(path)
    # quantized layers -> float layers holding the dequantized weights: the same numbers,
    # but float matmuls (mlx's CPU quantized matmul is slow); results equal up to summation order
    model = dequantize_model(model)
    model.set_dtype(mx.float32)
    return model, tok


def valid_docs(data):
    text = open(os.path.join(data, "valid.txt"), encoding="utf-8").read()
    return [d.strip("\n") for d in text.split("\n<|endoftext|>\n") if d.strip()]


def valid_ids(data, tok):
    eot = tok.token_to_id("<|endoftext|>")
    ids = []
    for e in tok.encode_batch(valid_docs(data), add_special_tokens=False):
        ids += e.ids + [eot]
    return ids


def ppl(model, ids, seq, windows):
    nll, n = 0.0, 0
    for w in range(windows):
        chunk = ids[w * seq:(w + 1) * seq + 1]
        if len(chunk) < seq + 1:
            break
        x = mx.array([chunk[:-1]])
        logits = model(x).astype(mx.float32)[0]
        lp = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
        tgt = mx.array(chunk[1:])
        nll += -mx.take_along_axis(lp, tgt[:, None], axis=-1).sum().item()
        n += seq
    return math.exp(nll / n), n


def accept(target, draft, prompts, gen, k):
    """mlx-lm's own speculative loop (greedy sampler); a round proposes min(k, tokens left)
    draft tokens and ends with one token of the target, so rounds = target tokens."""
    from mlx_lm.generate import generate_step, speculative_generate_step
    greedy = lambda lp: mx.argmax(lp, axis=-1)
    proposed = accepted = rounds = 0
    for p in prompts:
        ref = [int(t) for t, _ in generate_step(mx.array(p), target, max_tokens=gen, sampler=greedy)]
        out, ntoks, left = [], 0, 0
        for t, _, from_draft in speculative_generate_step(mx.array(p), target, draft, num_draft_tokens=k,
                                                          max_tokens=gen, sampler=greedy):
            if left == 0:  # a new round starts here
                n = min(k, gen - ntoks)
                proposed += n
                left = n + 1
                rounds += 1
            accepted += bool(from_draft)
            out.append(int(t))
            ntoks += 1
            left = 0 if not from_draft else left - 1
        assert out == ref, "speculative output differs from plain greedy"
    return {"prompts": len(prompts), "tokens_per_prompt": gen, "num_draft": k, "proposed": proposed,
            "accepted": accepted, "acceptance_rate": round(accepted / max(1, proposed), 4),
            "tokens_per_target_pass": round(len(prompts) * gen / max(1, rounds), 3)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--windows", type=int, default=128)
    ap.add_argument("--prompts", type=int, default=40)
    ap.add_argument("--gen", type=int, default=48)
    ap.add_argument("--num-draft", type=int, default=3)
    ap.add_argument("what", choices=["ppl", "accept", "windows"])
    ap.add_argument("models", nargs="*")
    a = ap.parse_args()
    mx.set_default_device(mx.cpu)
    tok = Tokenizer.from_file(os.path.join(a.data, "tokenizer.json"))
    if a.what == "windows":
        ids = valid_ids(a.data, tok)
        for w in range(a.windows):
            chunk = ids[w * a.seq:(w + 1) * a.seq + 1]
            if len(chunk) == a.seq + 1:
                print(json.dumps({"id": w, "ids": chunk}))
    elif a.what == "ppl":
        ids = valid_ids(a.data, tok)
        for m in a.models:
            model, _ = load_f32(m)
            p, n = ppl(model, ids, a.seq, a.windows)
            print(json.dumps({"model": m, "valid_tokens_scored": n, "perplexity": round(p, 3)}), flush=True)
    else:
        target, _ = load_f32(a.models[0])
        draft, _ = load_f32(a.models[1])
        docs = valid_docs(a.data)
        step = max(1, len(docs) // a.prompts)
        prompts = [tok.encode(d).ids[:32] for d in docs[::step][:a.prompts]]
        r = accept(target, draft, prompts, a.gen, a.num_draft)
        print(json.dumps(dict(target=a.models[0], draft=a.models[1], **r)), flush=True)


if __name__ == "__main__":
    main()
