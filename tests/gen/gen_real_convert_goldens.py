#!/usr/bin/env python3
"""Goldens for mlx-quant convert and mlx-gen --score on the real-weight models of
`make real-models` (local-models/, never committed).  For each model, with mlx-lm 0.32:

  float32    python -m mlx_lm convert -d --dtype float32 on the imported folder
             (the GGUF's values as a float model)
  q4g64      python -m mlx_lm convert -q --q-bits 4 --q-group-size 64 --dtype float32
             from float32
  q8g64      the same with --q-bits 8
  mixed_3_6  the same with --quant-predicate mixed_3_6
  imported   the imported folder itself (the GGUF's own quantization)

float32 throughout: mlx's CPU kernels compute 16-bit matmuls element by element (a
float16 q4 forward pass of SmolLM2 over 32 tokens takes minutes), and in float32 the
reference is as exact as it is fast.

For every form made by mlx_lm.convert: the sha256 of each .safetensors file and of
config.json (mlx-quant must write the same bytes).  For every form: mlx-lm's log-probability
of each token of the 3 records of tests/data/real/ppl_text.jsonl given its prefix (one
forward pass per record over the ids HF `tokenizers` gives with the imported
tokenizer.json, special tokens added as mlx-lm adds them; logits in the model's dtype,
log-softmax in float64), their sums and the perplexity over all scored tokens.  And
llama.cpp (llama-cpp-python) on the original GGUF file, same ids: the same figures, as
the reference for what the GGUF itself scores.

Output: tests/data/real/<name>/convert.json (no weights).
Usage (after `make real-models`): /work/venv-mlx/bin/python tests/gen/gen_real_convert_goldens.py [name ...]
"""
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = {
    "smollm2": ("local-models/SmolLM2-135M-Instruct", "local-models/gguf/SmolLM2-135M-Instruct.Q4_1.gguf"),
    "gemma3": ("local-models/gemma-3-270m", "local-models/gguf/gemma-3-270m-q4_k_m.gguf"),
}
FORMS = [
    ("q4g64", ["-q", "--q-bits", "4", "--q-group-size", "64", "--dtype", "float32"]),
    ("q8g64", ["-q", "--q-bits", "8", "--q-group-size", "64", "--dtype", "float32"]),
    ("mixed_3_6", ["-q", "--quant-predicate", "mixed_3_6", "--dtype", "float32"]),
]
PY = sys.executable


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def convert(src, dst, args):
    subprocess.run([PY, "-m", "mlx_lm", "convert", "--hf-path", src, "--mlx-path", dst] + args,
                   check=True, stdout=subprocess.DEVNULL)
    return {f: sha256(os.path.join(dst, f)) for f in sorted(os.listdir(dst))
            if f.endswith(".safetensors") or f == "config.json"}


def records():
    with open(os.path.join(ROOT, "tests/data/real/ppl_text.jsonl")) as f:
        return [json.loads(l) for l in f]


def text_ids(folder):
    from mlx_lm import load
    from tokenizers import Tokenizer
    _, tok = load(folder)
    raw = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    out = []
    for r in records():
        bos = tok.bos_token
        out.append(raw.encode(r["text"], add_special_tokens=not (bos and r["text"].startswith(bos))).ids)
    return out


def summary(lps):
    n = sum(len(x) for x in lps)
    s = sum(sum(x) for x in lps)
    return {"sums": [sum(x) for x in lps], "n": [len(x) for x in lps], "ppl": math.exp(-s / n),
            "logprobs": [[round(v, 6) for v in x] for x in lps]}


def mlx_lm_score(folder, ids):
    import mlx.core as mx
    import numpy as np
    from mlx_lm import load
    model, _ = load(folder)
    lps = []
    for t in ids:
        logits = model(mx.array([t]))[0]
        a = np.array(logits.astype(mx.float32), dtype=np.float64)
        m = a.max(axis=-1, keepdims=True)
        lp = a - (m + np.log(np.exp(a - m).sum(axis=-1, keepdims=True)))
        lps.append([float(lp[i, t[i + 1]]) for i in range(len(t) - 1)])
    return summary(lps)


def llama_cpp_score(gguf, ids):
    import numpy as np
    from llama_cpp import Llama
    llm = Llama(model_path=gguf, n_ctx=1024, n_threads=2, logits_all=True, verbose=False)
    lps = []
    for t in ids:
        llm.reset()
        llm.eval(t)
        a = np.array(llm.scores[:len(t)], dtype=np.float64)
        m = a.max(axis=-1, keepdims=True)
        lp = a - (m + np.log(np.exp(a - m).sum(axis=-1, keepdims=True)))
        lps.append([float(lp[i, t[i + 1]]) for i in range(len(t) - 1)])
    import llama_cpp
    r = summary(lps)
    r["version"] = llama_cpp.__version__
    return r


def main():
    import mlx.core as mx
    import mlx_lm
    names = sys.argv[1:] or list(MODELS)
    os.chdir(ROOT)
    for name in names:
        folder, gguf = MODELS[name]
        if not os.path.isdir(folder):
            sys.exit(f"{folder} is missing: run make real-models first")
        ids = text_ids(folder)
        g = {"model": folder, "gguf_sha256": sha256(gguf), "mlx": mx.__version__, "mlx_lm": mlx_lm.__version__,
             "text": "tests/data/real/ppl_text.jsonl", "ids": ids, "forms": {}}
        tmp = tempfile.mkdtemp(prefix="realconv-")
        try:
            bf = os.path.join(tmp, "float32")
            g["forms"]["float32"] = {"convert": ["-d", "--dtype", "float32"],
                                     "files": convert(folder, bf, ["-d", "--dtype", "float32"])}
            g["forms"]["float32"].update(mlx_lm_score(bf, ids))
            for form, args in FORMS:
                d = os.path.join(tmp, form)
                g["forms"][form] = {"convert": args, "from": "float32", "files": convert(bf, d, args)}
                g["forms"][form].update(mlx_lm_score(d, ids))
                shutil.rmtree(d)
            g["forms"]["imported"] = mlx_lm_score(folder, ids)
            g["llama_cpp"] = llama_cpp_score(gguf, ids)
        finally:
            shutil.rmtree(tmp)
        out = os.path.join("tests/data/real", name, "convert.json")
        with open(out, "w") as f:
            json.dump(g, f, indent=1)
            f.write("\n")
        print(name, {k: round(v["ppl"], 3) for k, v in g["forms"].items()}, "llama.cpp", round(g["llama_cpp"]["ppl"], 3))


if __name__ == "__main__":
    main()
