#!/usr/bin/env python3
"""make_unigram.py - build tests/data/tokenizers/xlmr/tokenizer.json.zst, an
XLM-R-style Unigram tokenizer with SentencePiece's Precompiled (nmt_nfkc)
normalizer. No real XLM-R/T5 tokenizer ships in a small PyPI package, so a
small SentencePiece Unigram model is trained here (sentencepiece, seeded,
one thread) on stdlib docstrings plus the test corpus, and converted with
transformers' XLMRobertaConverter exactly as HF converts xlm-roberta-base.
Usage: python3 tests/gen/make_unigram.py"""
import json
import os
import subprocess
import sys
import tempfile

import sentencepiece as spm
from transformers.convert_slow_tokenizer import XLMRobertaConverter

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "tokenizers")


class _Slow:
    """The attributes XLMRobertaConverter reads from a slow tokenizer."""

    def __init__(self, path):
        self.vocab_file = path
        self.sp = spm.SentencePieceProcessor(model_file=path)
        self.fairseq = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}

    def convert_tokens_to_ids(self, tok):
        if tok in self.fairseq:
            return self.fairseq[tok]
        return self.sp.piece_to_id(tok) + 1


def training_text():
    import inspect, json as j, os as o, random as r, collections, email, http.client, argparse, textwrap
    lines = []
    for mod in (inspect, j, o, r, collections, email, http.client, argparse, textwrap):
        for name, obj in sorted(vars(mod).items()):
            d = getattr(obj, "__doc__", None)
            if isinstance(d, str):
                lines += [ln.strip() for ln in d.splitlines() if ln.strip()]
    corpus = [j.loads(l) for l in open(os.path.join(DATA, "corpus.txt"), encoding="utf-8")]
    lines += [c.replace("\n", " ") for c in corpus]
    return lines


def main():
    os.makedirs(os.path.join(DATA, "xlmr"), exist_ok=True)
    with tempfile.TemporaryDirectory() as td:
        txt = os.path.join(td, "train.txt")
        with open(txt, "w", encoding="utf-8") as f:
            f.write("\n".join(training_text()) + "\n")
        prefix = os.path.join(td, "spm")
        spm.SentencePieceTrainer.train(
            input=txt, model_prefix=prefix, model_type="unigram", vocab_size=4000,
            character_coverage=0.9995, normalization_rule_name="nmt_nfkc", num_threads=1,
            seed_sentencepiece_size=200000, minloglevel=2, max_sentence_length=100000)
        conv = XLMRobertaConverter(_Slow(prefix + ".model"))
        tok = conv.converted()
        from tokenizers import AddedToken
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in ["<s>", "<pad>", "</s>", "<unk>"]])
        tok.add_special_tokens([AddedToken("<mask>", special=True, lstrip=True, normalized=False)])
        raw = tok.to_str().encode("utf-8")
        out = os.path.join(DATA, "xlmr", "tokenizer.json.zst")
        subprocess.run(["zstd", "-q", "-19", "-f", "-o", out], input=raw, check=True)
        print(f"wrote {out} ({os.path.getsize(out)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
