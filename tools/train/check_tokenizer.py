#!/usr/bin/env python3
"""Check that mlx-gen's C tokenizer gives the same ids as HF on the validation text.

usage: tools/train/check_tokenizer.py MODEL_DIR [MLX_GEN] [--data DIR]
Each validation document is one record; ids from `MLX_GEN -m MODEL_DIR --tokenize` are
compared with HF `tokenizers` (tokenizer.json) and with transformers' AutoTokenizer (what
mlx-lm loads).  Prints the counts and exits 1 on the first difference.
"""
import argparse
import json
import os
import subprocess
import sys

from tokenizers import Tokenizer


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("mlx_gen", nargs="?", default="build/bin/mlx-gen")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "data"))
    a = ap.parse_args()
    text = open(os.path.join(a.data, "valid.txt"), encoding="utf-8").read()
    docs = [d.strip("\n") for d in text.split("\n<|endoftext|>\n") if d.strip()]
    docs.append("Special <|im_start|>user\nHi<|im_end|> and <|endoftext|> tokens, émoji 🎉, tabs\tand  spaces.")
    inp = "".join(json.dumps({"id": i, "text": d}) + "\n" for i, d in enumerate(docs))
    r = subprocess.run([a.mlx_gen, "-m", a.model, "--tokenize"], input=inp.encode(), capture_output=True, check=True)
    got = [json.loads(l)["ids"] for l in r.stdout.decode().splitlines()]
    hf = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    from transformers import AutoTokenizer
    at = AutoTokenizer.from_pretrained(a.model)
    n = 0
    for i, d in enumerate(docs):
        want = hf.encode(d).ids
        want2 = at.encode(d)
        if got[i] != want or want2 != want:
            print(f"document {i}: mlx-gen {len(got[i])} ids, tokenizers {len(want)}, transformers {len(want2)}; differ")
            sys.exit(1)
        n += len(want)
    print(f"{len(docs)} documents, {n} ids: mlx-gen == tokenizers == transformers")


if __name__ == "__main__":
    main()
