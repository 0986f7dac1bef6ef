#!/usr/bin/env python3
"""Validation perplexity of MLX models and the greedy acceptance rate of a draft for a target.

usage: evaluate.py --data DIR ppl MODEL...            perplexity on valid.txt (mlx, CPU)
       evaluate.py --data DIR accept TARGET DRAFT     speculative acceptance, greedy

Perplexity: valid.txt is tokenized as in training (documents joined by <|endoftext|>), the
first --windows non-overlapping windows of --seq tokens are scored, every position but the
first of each window counts; ppl = exp(mean negative log-likelihood).

Acceptance: --prompts prompts, each the first 32 tokens of a validation document; for each,
--gen tokens are decoded greedily with mlx-lm's speculative rule: the draft proposes
num_draft (3) greedy tokens, the target scores them in one pass and keeps the longest prefix
that equals its own greedy choice, then adds its own next token.  Reported: proposed,
accepted, accepted / proposed, and mean tokens per target pass.  The decoded text is
checked against plain greedy decoding with the target alone (it must be identical).
"""
import argparse
import json
import math
import os

import mlx.core as mx
from mlx_lm import load
from tokenizers import Tokenizer


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


def greedy_next(model, seq):
    """Greedy choice after every position of seq (no cache: short sequences, exactness first)."""
    return mx.argmax(model(mx.array([seq]))[0], axis=-1).tolist()


def accept(target, draft, prompts, gen, k):
    proposed = accepted = passes = 0
    for p in prompts:
        seq = list(p)
        # plain greedy with the target, for the identity check
        ref = list(p)
        for _ in range(gen):
            ref.append(greedy_next(target, ref)[-1])
        while len(seq) - len(p) < gen:
            n = min(k, gen - (len(seq) - len(p)) - 1)
            props = []
            for _ in range(n):
                props.append(greedy_next(draft, seq + props)[-1])
            tg = greedy_next(target, seq + props)[len(seq) - 1:]
            passes += 1
            m = 0
            while m < n and props[m] == tg[m]:
                m += 1
            proposed += n
            accepted += m
            seq += props[:m] + [tg[m]]
        assert seq[:len(ref)] == ref, "speculative output differs from plain greedy"
    return {"prompts": len(prompts), "tokens_per_prompt": gen, "num_draft": k, "proposed": proposed,
            "accepted": accepted, "acceptance_rate": round(accepted / max(1, proposed), 4),
            "tokens_per_target_pass": round(len(prompts) * gen / max(1, passes), 3)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--windows", type=int, default=128)
    ap.add_argument("--prompts", type=int, default=40)
    ap.add_argument("--gen", type=int, default=48)
    ap.add_argument("--num-draft", type=int, default=3)
    ap.add_argument("what", choices=["ppl", "accept"])
    ap.add_argument("models", nargs="+")
    a = ap.parse_args()
    mx.set_default_device(mx.cpu)
    tok = Tokenizer.from_file(os.path.join(a.data, "tokenizer.json"))
    if a.what == "ppl":
        ids = valid_ids(a.data, tok)
        for m in a.models:
            model, _ = load(m)
            p, n = ppl(model, ids, a.seq, a.windows)
            print(json.dumps({"model": m, "valid_tokens_scored": n, "perplexity": round(p, 3)}), flush=True)
    else:
        target, _ = load(a.models[0])
        draft, _ = load(a.models[1])
        docs = valid_docs(a.data)
        step = max(1, len(docs) // a.prompts)
        prompts = [tok.encode(d).ids[:32] for d in docs[::step][:a.prompts]]
        r = accept(target, draft, prompts, a.gen, a.num_draft)
        print(json.dumps(dict(target=a.models[0], draft=a.models[1], **r)), flush=True)


if __name__ == "__main__":
    main()
