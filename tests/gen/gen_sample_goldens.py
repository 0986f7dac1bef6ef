#!/usr/bin/env python3
"""Generate tests/data/sample/golden.json.zst: mlx-lm 0.32 sampling goldens.

Vectors are stored as base64 little-endian int16 q with value = q / 256
(q = -32768 means -inf), so every value is exact in float32 and ties are common.

  vectors   [b64 int16]              shared input vectors
  filters   [{v, top_p, min_p, min_keep, top_k, xtc_thr, special, keep}]
            keep = base64 bitmask (bit i of byte i//8, LSB first) of the entries that
            are not -inf after mlx_lm.sample_utils apply_top_p -> apply_min_p ->
            apply_xtc (probability 1.0, i.e. forced on) -> apply_top_k, running only
            the filters whose option is active (0 = off), exactly as make_sampler chains them.
  procs     [{v, hist, bias_ids, bias_vals, rep, rep_ctx, pres, pres_ctx, freq, freq_ctx, out}]
            out = base64 float32 logits after make_logits_processors(...) applied in order
            to logits of shape (1, vocab) with history hist (mx.array int32).
  greedy    [{v, tok, lp, top}]  tok = argmax(logits - logsumexp(logits)) (generate_step +
            greedy_sampler); lp = base64 float32 of those logprobs; top = the sorted id set
            of the server's top-k logprobs (k = 1 + v % 10).

Requires mlx + mlx-lm (pip, cpu).  Run from the repository root:
  python3 tests/gen/gen_sample_goldens.py
"""
import base64
import json
import os
import subprocess

import numpy as np
import mlx.core as mx
from mlx_lm.sample_utils import (apply_min_p, apply_top_k, apply_top_p, apply_xtc,
                                 make_logits_processors)

OUT = "tests/data/sample"
NEG_INF_Q = -32768


def b64(b):
    return base64.b64encode(b).decode()


def to_float(q):
    x = q.astype(np.float32) / np.float32(256)
    x[q == NEG_INF_Q] = -np.inf
    return x


def quant(x):
    q = np.clip(np.round(np.asarray(x, dtype=np.float64) * 256), -32767, 32767).astype(np.int16)
    return q


def make_vectors(rng):
    vecs = []
    kinds = ["normal", "peaked", "flat", "levels", "zipf", "logsoftmax", "withinf", "twopeak"]
    for i in range(96):
        kind = kinds[i % len(kinds)]
        n = int(rng.integers(50, 1001)) if i % 3 else int(rng.integers(50, 160))
        if kind == "normal":
            x = rng.standard_normal(n) * rng.uniform(0.5, 4.0)
        elif kind == "peaked":
            x = rng.standard_normal(n) * 2.0 - 10.0
            k = int(rng.integers(1, 4))
            x[rng.choice(n, k, replace=False)] = rng.uniform(-0.5, 0.0, k)
        elif kind == "flat":
            x = rng.standard_normal(n) * 0.01 - 5.0        # quantizes to a few levels: ties
        elif kind == "levels":
            lv = rng.uniform(-12, 0, int(rng.integers(2, 6)))
            x = lv[rng.integers(0, len(lv), n)]
        elif kind == "zipf":
            r = rng.permutation(n) + 1
            x = -rng.uniform(0.8, 2.0) * np.log(r)
        elif kind == "logsoftmax":
            z = rng.standard_normal(n) * rng.uniform(1.0, 6.0)
            x = z - np.log(np.sum(np.exp(z - z.max()))) - z.max()
        elif kind == "withinf":
            x = rng.standard_normal(n) * 3.0
        else:  # twopeak: two equal tops and a tail
            x = rng.standard_normal(n) * 1.5 - 8.0
            a, b = rng.choice(n, 2, replace=False)
            x[a] = x[b] = -0.7
        q = quant(x)
        if kind == "withinf":
            q[rng.random(n) < 0.3] = NEG_INF_Q
            q[int(rng.integers(0, n))] = 0
        vecs.append(q)
    return vecs


def keep_mask(x):
    bits = np.isfinite(np.array(x)).astype(np.uint8)
    return b64(np.packbits(bits, bitorder="little").tobytes())


F32 = lambda v: float(np.float32(v))  # option values exact in float32 (the C API uses float)


def run_filters(x, top_p, min_p, min_keep, top_k, xtc_thr, special):
    y = mx.array(x)
    if 0 < top_p < 1.0:
        y = apply_top_p(y, top_p)
    if min_p != 0.0:
        y = apply_min_p(y, min_p, min_keep)
    if xtc_thr is not None:
        y = apply_xtc(y, 1.0, xtc_thr, special)
    if top_k > 0:
        y = apply_top_k(y, top_k)
    mx.eval(y)
    return y


def filter_cases(rng, vecs):
    cases = []
    top_ps = [0.1, 0.5, 0.8, 0.9, 0.95, 0.99, 0.999]
    min_ps = [0.01, 0.05, 0.1, 0.3, 0.9, 1.0]
    xtcs = [0.0, 0.05, 0.1, 0.2, 0.5]
    for vi, q in enumerate(vecs):
        n = len(q)
        x = to_float(q)
        finite = int(np.isfinite(x).sum())
        sets = []
        for tp in rng.choice(top_ps, 2, replace=False):
            sets.append(dict(top_p=F32(tp)))
        for mp in rng.choice(min_ps, 2, replace=False):
            sets.append(dict(min_p=F32(mp)))
        sets.append(dict(min_p=F32(rng.choice(min_ps)), min_keep=int(rng.integers(2, 40))))
        sets.append(dict(min_p=1.0, min_keep=int(rng.integers(2, 8))))
        sets.append(dict(top_k=int(rng.integers(1, min(n, 60)))))
        sets.append(dict(top_k=int(rng.integers(1, n))))
        for xt in rng.choice(xtcs, 2, replace=False):
            sets.append(dict(xtc_thr=F32(xt)))
        sp = [int(t) for t in rng.choice(n, 3, replace=False)]
        # make a likely top token special
        sp.append(int(np.argmax(x)))
        sets.append(dict(xtc_thr=F32(rng.choice(xtcs[:3])), special=sp))
        # chains (make_sampler order)
        for _ in range(3):
            d = {}
            if rng.random() < 0.7:
                d["top_p"] = F32(rng.choice(top_ps))
            if rng.random() < 0.6:
                d["min_p"] = F32(rng.choice(min_ps[:4]))
                if rng.random() < 0.5:
                    d["min_keep"] = int(rng.integers(1, 10))
            if rng.random() < 0.5:
                d["xtc_thr"] = F32(rng.choice(xtcs))
                if rng.random() < 0.5:
                    d["special"] = [int(np.argmax(x))]
            if rng.random() < 0.6:
                d["top_k"] = int(rng.integers(1, min(n, 100)))
            sets.append(d)
        for d in sets:
            c = dict(v=vi, top_p=d.get("top_p", 0.0), min_p=d.get("min_p", 0.0),
                     min_keep=d.get("min_keep", 1), top_k=d.get("top_k", 0),
                     xtc_thr=d.get("xtc_thr", None), special=d.get("special", []))
            if c["min_keep"] > finite:  # mlx would keep -inf entries then; not interesting
                c["min_keep"] = 1
            y = run_filters(x, c["top_p"], c["min_p"], c["min_keep"], c["top_k"],
                            c["xtc_thr"], c["special"])
            c["keep"] = keep_mask(y)
            c["nkeep"] = int(np.isfinite(np.array(y)).sum())
            cases.append(c)
    return cases


def proc_cases(rng):
    cases = []
    for i in range(120):
        n = int(rng.integers(50, 300))
        q = quant(rng.standard_normal(n) * 4.0)
        x = to_float(q)
        hl = int(rng.integers(0, 70))
        pool = rng.choice(n, int(rng.integers(1, 12)), replace=False)  # repeats are likely
        hist = [int(t) for t in rng.choice(pool, hl)] if hl else []
        c = dict(q=b64(q.astype("<i2").tobytes()), hist=hist)
        nb = int(rng.integers(0, 6)) if i % 4 else 0
        c["bias_ids"] = [int(t) for t in rng.choice(n, nb, replace=False)]
        c["bias_vals"] = [F32(float(quant(v)) / 256) for v in rng.uniform(-5, 5, nb)]
        c["rep"] = F32(rng.choice([0.0, 1.0, 1.1, 1.3, 2.0, 0.8])) if i % 5 else 0.0
        c["rep_ctx"] = int(rng.choice([20, 20, 5, 1, 100, 0]))
        c["pres"] = F32(rng.choice([0.0, 0.5, 1.5, -0.3])) if i % 3 else 0.0
        c["pres_ctx"] = int(rng.choice([20, 20, 3, 64, 0]))
        c["freq"] = F32(rng.choice([0.0, 0.2, 1.0, -0.7])) if i % 2 else 0.0
        c["freq_ctx"] = int(rng.choice([20, 20, 7, 64, 0]))
        procs = make_logits_processors(
            logit_bias=dict(zip(c["bias_ids"], c["bias_vals"])) or None,
            repetition_penalty=c["rep"] or None, repetition_context_size=c["rep_ctx"],
            presence_penalty=c["pres"] or None, presence_context_size=c["pres_ctx"],
            frequency_penalty=c["freq"] or None, frequency_context_size=c["freq_ctx"])
        logits = mx.array(x)[None]
        toks = mx.array(hist, dtype=mx.int32)
        for p in procs:  # the penalties themselves skip an empty history
            logits = p(toks, logits)
        mx.eval(logits)
        c["out"] = b64(np.array(logits[0], dtype="<f4").tobytes())
        cases.append(c)
    return cases


def big_cases(vecs):
    """Realistic LLM-sized vocabularies (a separate RNG so the small cases stay stable)."""
    rng = np.random.default_rng(7)
    cases = []
    for n, scale in ((32000, 2.5), (50257, 3.5)):
        z = rng.standard_normal(n) * scale
        z[rng.choice(n, 5, replace=False)] += rng.uniform(5, 12, 5)   # a few likely tokens
        x = z - np.log(np.sum(np.exp(z - z.max()))) - z.max()
        vecs.append(quant(x))
        vi = len(vecs) - 1
        xf = to_float(vecs[vi])
        top = int(np.argmax(xf))
        sets = [dict(top_p=0.9), dict(top_p=0.95), dict(top_p=0.5), dict(min_p=F32(0.05)),
                dict(min_p=F32(0.01), min_keep=50), dict(top_k=40), dict(top_k=1000),
                dict(xtc_thr=F32(0.1)), dict(xtc_thr=F32(0.01), special=[top]),
                dict(top_p=F32(0.95), min_p=F32(0.02), xtc_thr=F32(0.05), top_k=20)]
        for d in sets:
            c = dict(v=vi, top_p=F32(d.get("top_p", 0.0)), min_p=d.get("min_p", 0.0),
                     min_keep=d.get("min_keep", 1), top_k=d.get("top_k", 0),
                     xtc_thr=d.get("xtc_thr", None), special=d.get("special", []))
            y = run_filters(xf, c["top_p"], c["min_p"], c["min_keep"], c["top_k"],
                            c["xtc_thr"], c["special"])
            c["keep"] = keep_mask(y)
            c["nkeep"] = int(np.isfinite(np.array(y)).sum())
            cases.append(c)
    return cases


def edge_cases():
    """Exact-boundary cases on float32 vectors whose exps are exact (powers of two):
    top_p where top_p * total == mass_above exactly (mlx drops: >=), min_p where a
    logprob equals max + log(min_p) (kept: strict <), XTC where a prob equals the
    threshold (not above it: strict >).  Stored with an "f32" vector instead of "v"."""
    ln2 = np.log(2)
    v = np.array([-3 * ln2, -ln2, 0.0, -2 * ln2, -3 * ln2, -5 * ln2], np.float32)
    tot = np.float32(np.exp(v.astype(np.float64)).sum())
    exact = np.float32(np.float32(1.0) / tot)
    tps, t = [], exact
    for _ in range(3):
        t = np.nextafter(t, np.float32(0))
    for _ in range(7):
        tps.append(float(t))
        t = np.nextafter(t, np.float32(1))
    for m in (0.5, 0.25, 0.125):
        tps.append(float(np.float32(m / float(tot) * 4)))
    sets = [dict(top_p=tp) for tp in tps]
    mp = np.float32(0.25)
    w = v.copy()
    w[0] = np.float32(np.float32(0.0) + np.float32(np.log(np.float64(mp))))  # == scaled threshold
    w[5] = np.nextafter(w[0], np.float32(-1))
    sets += [dict(min_p=float(mp), vec=w), dict(min_p=float(mp), min_keep=5, vec=w)]
    pr = np.array(mx.softmax(mx.array(v), -1))    # thresholds exactly at mlx's probs
    for k in (1, 3):
        p = np.float32(pr[k])
        for thr in (p, np.nextafter(p, np.float32(0)), np.nextafter(p, np.float32(1))):
            if thr <= 0.5:
                sets.append(dict(xtc_thr=float(thr)))
    cases = []
    for d in sets:
        x = d.get("vec", v)
        c = dict(f32=b64(x.astype("<f4").tobytes()), top_p=d.get("top_p", 0.0),
                 min_p=d.get("min_p", 0.0), min_keep=d.get("min_keep", 1), top_k=0,
                 xtc_thr=d.get("xtc_thr", None), special=[])
        y = run_filters(x, c["top_p"], c["min_p"], c["min_keep"], 0, c["xtc_thr"], [])
        c["keep"] = keep_mask(y)
        c["nkeep"] = int(np.isfinite(np.array(y)).sum())
        cases.append(c)
    return cases


def greedy_cases(vecs):
    cases = []
    for vi, q in enumerate(vecs):
        x = mx.array(to_float(q))[None]
        lp = x - mx.logsumexp(x, keepdims=True)
        tok = int(mx.argmax(lp, axis=-1).item())
        k = 1 + vi % 10  # mlx_lm.server _format_top_logprobs: argpartition(-lp, kth=k-1)[:k]
        top = np.array(mx.argpartition(-lp[0], kth=k - 1)[:k]).tolist()
        cases.append(dict(v=vi, tok=tok, lp=b64(np.array(lp[0], dtype="<f4").tobytes()),
                          top=sorted(int(t) for t in top)))
    return cases


def main():
    rng = np.random.default_rng(20261123)
    vecs = make_vectors(rng)
    filters = filter_cases(rng, vecs)
    procs = proc_cases(rng)
    filters += big_cases(vecs)
    filters += edge_cases()
    data = dict(
        mlx_lm_version=__import__("mlx_lm").__version__,
        mlx_version=mx.__version__,
        vectors=[b64(q.astype("<i2").tobytes()) for q in vecs],
        filters=filters,
        procs=procs,
        greedy=greedy_cases(vecs),
    )
    os.makedirs(OUT, exist_ok=True)
    raw = json.dumps(data, separators=(",", ":")).encode()
    path = os.path.join(OUT, "golden.json.zst")
    subprocess.run(["zstd", "-19", "-q", "-f", "-o", path], input=raw, check=True)
    print(f"{path}: {len(data['filters'])} filter cases, {len(data['procs'])} processor cases, "
          f"{len(data['greedy'])} greedy cases, {len(raw)} bytes raw, "
          f"{os.path.getsize(path)} bytes compressed")


if __name__ == "__main__":
    main()
