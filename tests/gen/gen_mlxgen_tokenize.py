#!/usr/bin/env python3
"""Goldens for `mlx-gen --tokenize`: for each shared tokenizer, run the records in
tests/data/mlxgen/records.jsonl through transformers' apply_chat_template (for
"messages", rendering only) and HF `tokenizers` (encoding the text exactly as
tokenizer.json defines it) and write tests/data/mlxgen/<name>.expected.jsonl in
mlx-gen's output format.  Rule for text (mlx-lm's): add special tokens unless
the text already starts with the BOS token.

Encoding goes through `tokenizers`, not transformers' tokenizer classes: since
transformers 5, classes such as LlamaTokenizer rebuild the pre-tokenizer from
their own defaults instead of using tokenizer.json as written.

usage: tests/gen/gen_mlxgen_tokenize.py [SHARED_FIXTURES_DIR]
"""
import json, os, subprocess, sys, tempfile
from transformers import AutoTokenizer
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "fixtures", "tokenizers")
OUT = os.path.join(ROOT, "tests", "data", "mlxgen")
NAMES = ["qwen3", "llama3_1", "gemma3", "deepseek_v3", "llama2"]


def tok_dir(name, tmp):
    d = os.path.join(tmp, name)
    os.makedirs(d)
    src = os.path.join(FIX, name)
    subprocess.run(["zstd", "-q", "-d", os.path.join(src, "tokenizer.json.zst"), "-o",
                    os.path.join(d, "tokenizer.json")], check=True)
    with open(os.path.join(src, "tokenizer_config.json")) as f, \
         open(os.path.join(d, "tokenizer_config.json"), "w") as g:
        g.write(f.read())
    return d


def bos_of(tok):
    return tok.bos_token or None


def main():
    records = [json.loads(l) for l in open(os.path.join(OUT, "records.jsonl")) if l.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        for name in NAMES:
            d = tok_dir(name, tmp)
            tok = AutoTokenizer.from_pretrained(d)
            raw = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
            lines = []
            for i, r in enumerate(records, 1):
                rid = r.get("id", i)
                try:
                    if "messages" in r:
                        if not tok.chat_template:
                            raise ValueError("no template")
                        prompt = tok.apply_chat_template(
                            r["messages"], tools=r.get("tools"), tokenize=False,
                            add_generation_prompt=r.get("add_generation_prompt", True),
                            **r.get("chat_template_kwargs", {}))
                        add = False
                    else:
                        prompt = r.get("text", r.get("prompt"))
                        bos = bos_of(tok)
                        add = not (bos and prompt.startswith(bos))
                    add = r.get("add_special_tokens", add)
                    ids = raw.encode(prompt, add_special_tokens=add).ids
                    lines.append({"id": rid, "prompt": prompt, "ids": ids, "n": len(ids)})
                except Exception:
                    lines.append({"id": rid, "error": True})
            with open(os.path.join(OUT, name + ".expected.jsonl"), "w") as f:
                for l in lines:
                    f.write(json.dumps(l, ensure_ascii=False, separators=(",", ":")) + "\n")
            print(name, len(lines), "records")


if __name__ == "__main__":
    main()
