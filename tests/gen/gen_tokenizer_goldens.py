#!/usr/bin/env python3
"""gen_tokenizer_goldens.py - run Hugging Face `tokenizers` over the corpus
(tests/data/tokenizers/corpus.txt, one JSON string per line) for every
tests/data/tokenizers/<name>/tokenizer.json.zst and write
tests/data/tokenizers/<name>/golden.jsonl.zst.

Each golden line is a JSON object:
  "i": corpus line index, or "text": an extra input (lines embedding this
       tokenizer's own added/special tokens),
  "ids": encode(text, add_special_tokens=True).ids,
  "raw": encode(text, add_special_tokens=False).ids (every 4th line only),
  "d":  decode(ids, skip_special_tokens=False),
  "ds": decode(ids, skip_special_tokens=True).
Truncation and padding are switched off (the C API encodes one unpadded text).
Usage: python3 tests/gen/gen_tokenizer_goldens.py [name ...]
MT_TOK_DATA=DIR overrides the data directory (stress runs: DIR/corpus.txt and
DIR/<name>/tokenizer.json.zst); the C test honours the same variable.
MT_TOK_ALL_ADDED=1 embeds every added token (not 40) in the extra lines."""
import glob
import json
import os
import random
import subprocess
import sys

from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("MT_TOK_DATA") or os.path.join(HERE, "..", "data", "tokenizers")


def zread(path):
    return subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout


def zwrite(path, data):
    subprocess.run(["zstd", "-q", "-19", "-f", "-o", path], input=data, check=True)


def extra_lines(tok_json, seed):
    rng = random.Random(seed)
    added = [a for a in tok_json.get("added_tokens", []) if a.get("content")]
    rng.shuffle(added)
    added = sorted(added if os.environ.get("MT_TOK_ALL_ADDED") else added[:40], key=lambda a: a["id"])
    out = []
    for a in added:
        c = a["content"]
        out += [c, f"Hello {c} world", f"{c}{c}x", f" {c}\n", f"pre{c}post", c[:-1], f"a {c[1:]}"]
    return out


def main():
    names = sys.argv[1:] or sorted(os.path.basename(os.path.dirname(p))
                                   for p in glob.glob(os.path.join(DATA, "*", "tokenizer.json.zst")))
    corpus = [json.loads(l) for l in open(os.path.join(DATA, "corpus.txt"), encoding="utf-8")]
    for name in names:
        raw = zread(os.path.join(DATA, name, "tokenizer.json.zst"))
        tok = Tokenizer.from_str(raw.decode("utf-8"))
        tok.no_truncation()
        tok.no_padding()
        tj = json.loads(raw)
        cases = [(i, t) for i, t in enumerate(corpus)] + [(None, t) for t in extra_lines(tj, name)]
        lines = []
        for k, (i, text) in enumerate(cases):
            ids = tok.encode(text, add_special_tokens=True).ids
            rec = {"i": i} if i is not None else {"text": text}
            rec["ids"] = ids
            if k % 4 == 0:
                rec["raw"] = tok.encode(text, add_special_tokens=False).ids
            rec["d"] = tok.decode(ids, skip_special_tokens=False)
            rec["ds"] = tok.decode(ids, skip_special_tokens=True)
            lines.append(json.dumps(rec, ensure_ascii=False))
        out = os.path.join(DATA, name, "golden.jsonl.zst")
        zwrite(out, ("\n".join(lines) + "\n").encode("utf-8"))
        print(f"{name}: {len(lines)} cases -> {out} ({os.path.getsize(out)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
