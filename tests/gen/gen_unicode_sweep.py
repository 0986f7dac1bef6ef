#!/usr/bin/env python3
"""gen_unicode_sweep.py - the code-point sweep goldens: every code point
U+0001..U+31FFF (surrogates skipped) encoded as "x" + chr(c) + "x" by Hugging
Face `tokenizers` (add_special_tokens=False, no truncation or padding) for each
tests/data/tokenizers/<name>/tokenizer.json.zst, written to
tests/data/tokenizers/unicode/<name>.sweep.zst; and the same for small probe
tokenizers written beside them (unicode/probe_<name>.json.zst) that make one
Unicode property each visible in the ids: a normalizer over an identity
byte-level BPE (ids = the UTF-8 bytes of the normalized text; the normal forms
between a combining class 240 and a class 1 mark, so that a non-zero class
shows), or a pre-tokenizer / regex Split over a WordLevel vocabulary {x, [UNK]}
(the split shows); and probe_xlmr_graphemes, xlmr after U+00AA (the grapheme
clusters of its charsmap show). tests/unit/test_unicode_sweep.c runs lib/text/tokenizer over
the same inputs and compares id for id.

The sweep checks the Unicode tables the tokenizer consults (general categories
for BERT punctuation / control / strip-accents, NFC/NFD/NFKC, the regex \\p{..}
classes, Rust's char predicates and case mapping; lib/text/unicode_hf.h) against
the versions `tokenizers` itself was built with, which are older or newer than
the system's.

File layout (one zstd frame):
  a header line of space-separated key=value pairs, ending in "\\n":
    "mlx-tools-unicode-sweep 1 tokenizer=<name> json=<path under tests/data/tokenizers>
     tokenizers=<version> first=0x1 last=0x31fff skip=0xd800-0xdfff
     pre=<hex code points, comma-separated> post=<same> count=<n>"
  then, for each code point c in order (the text is pre + c + post), its id
  list delta-coded against the previous code point's list: varint(len), then
  for each position i varint(zigzag(ids[i] - prev[i])) (prev[i] = 0 past the
  previous list's end). Varints are LEB128 (7 bits a byte, low first).
Usage: python3 tests/gen/gen_unicode_sweep.py [name ...]   (default: all)"""
import glob
import os
import subprocess
import sys

import tokenizers
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "tokenizers")
OUT = os.path.join(DATA, "unicode")
FIRST, LAST = 0x1, 0x31FFF
WRAP = "x"


def code_points():
    return [c for c in range(FIRST, LAST + 1) if not 0xD800 <= c <= 0xDFFF]


def varint(out, v):
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return


def zigzag(v):
    return (v << 1) if v >= 0 else ((-v << 1) - 1)


def encode_lists(lists):
    out = bytearray()
    prev = []
    for ids in lists:
        varint(out, len(ids))
        for i, v in enumerate(ids):
            varint(out, zigzag(v - (prev[i] if i < len(prev) else 0)))
        prev = ids
    return bytes(out)


def zread(path):
    return subprocess.run(["zstd", "-dc", path], check=True, capture_output=True).stdout


def zwrite(path, data):
    subprocess.run(["zstd", "-q", "-19", "-f", "-o", path], input=data, check=True)


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + \
        list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def byte_probe(normalizer):
    """ids = the UTF-8 bytes of normalizer's output"""
    vocab = {ch: b for b, ch in bytes_to_unicode().items()}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    return tok


def split_probe(pre_tokenizer):
    """ids show the split: "x" = 0, any other piece [UNK] = 1"""
    tok = Tokenizer(models.WordLevel(vocab={"x": 0, "[UNK]": 1}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizer
    return tok


def regex_probe(rx):
    return split_probe(pre_tokenizers.Split(Regex(rx), behavior="isolated"))


MARKS = ("x\u0345", "\u0334x")  # combining classes 240 and 1 around c


def probes(real):
    """name -> (tokenizer or the name of a real one, pre, post)"""
    pt = pre_tokenizers
    out = {}
    for f in ("NFD", "NFKD", "NFC", "NFKC"):
        out["nf_" + f.lower()] = (byte_probe(getattr(normalizers, f)()),) + MARKS
    out["lowercase"] = (byte_probe(normalizers.Lowercase()), "x", "x")
    # xlmr itself after U+00AA, which its SentencePiece charsmap maps to "a": a grapheme
    # cluster shorter than 6 bytes that starts with a mapped character is replaced
    # whole, so the cluster rules show for code points of up to 3 bytes
    out["xlmr_graphemes"] = ("xlmr", "\u00aa", "x")
    out["strip_accents"] = (byte_probe(normalizers.StripAccents()), "x", "x")
    out["bert_normalizer"] = (byte_probe(normalizers.BertNormalizer()), "x", "x")
    out["punctuation"] = (split_probe(pt.Punctuation()), "x", "x")
    out["digits"] = (split_probe(pt.Digits(individual_digits=True)), "x", "x")
    out["whitespace"] = (split_probe(pt.Whitespace()), "x", "x")
    out["bert_pre"] = (split_probe(pt.BertPreTokenizer()), "x", "x")
    # the classes whose Oniguruma members differ from PCRE2's (gen_unicode_tables.py), as
    # runs (a class containing 'x' then keeps "xcx" whole), negations and in brackets
    for k in ("L", "Lu", "Ll", "Lm", "Lo", "M", "Mn", "Mc", "N", "Nd", "No", "P", "Pd", "Po", "S", "Sm", "So",
              "Cf"):
        out["re_" + k] = (regex_probe("\\p{%s}+" % k), "x", "x")
    for name, rx in (("re_d", "\\d+"), ("re_w", "\\w+"), ("re_notL", "\\P{L}+"), ("re_notw", "\\W+"),
                     ("re_notd", "\\D+"), ("re_notLN", "[^\\s\\p{L}\\p{N}]+"), ("re_PSM", "[\\p{P}\\p{S}\\p{M}]+")):
        out[name] = (regex_probe(rx), "x", "x")
    return out


def golden(name, tok, pre, post, json_rel, cps):
    tok.no_truncation()
    tok.no_padding()
    lists = []
    for i in range(0, len(cps), 16384):
        texts = [pre + chr(c) + post for c in cps[i:i + 16384]]
        lists += [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    hexs = lambda t: ",".join("%x" % ord(ch) for ch in t)
    head = ("mlx-tools-unicode-sweep 1 tokenizer=%s json=%s tokenizers=%s first=0x%x last=0x%x "
            "skip=0xd800-0xdfff pre=%s post=%s count=%d\n"
            % (name, json_rel, tokenizers.__version__, FIRST, LAST, hexs(pre), hexs(post), len(cps)))
    blob = head.encode("ascii") + encode_lists(lists)
    path = os.path.join(OUT, name + ".sweep.zst")
    zwrite(path, blob)
    print("%s: %d code points, %d bytes raw -> %s (%d bytes)"
          % (name, len(cps), len(blob), os.path.relpath(path), os.path.getsize(path)), file=sys.stderr)


def main():
    real = sorted(os.path.basename(os.path.dirname(p))
                  for p in glob.glob(os.path.join(DATA, "*", "tokenizer.json.zst")))
    pr = probes(real)
    names = sys.argv[1:] or real + ["probe_" + k for k in pr]
    os.makedirs(OUT, exist_ok=True)
    cps = code_points()
    for name in names:
        if name.startswith("probe_") and isinstance(pr[name[6:]][0], str):
            real_name, pre, post = pr[name[6:]]
            json_rel = "%s/tokenizer.json.zst" % real_name
            tok = Tokenizer.from_str(zread(os.path.join(DATA, json_rel)).decode("utf-8"))
        elif name.startswith("probe_"):
            tok, pre, post = pr[name[6:]]
            json_rel = "unicode/%s.json.zst" % name
            zwrite(os.path.join(DATA, json_rel), tok.to_str().encode("utf-8"))
            tok = Tokenizer.from_str(zread(os.path.join(DATA, json_rel)).decode("utf-8"))
        else:
            json_rel = "%s/tokenizer.json.zst" % name
            tok = Tokenizer.from_str(zread(os.path.join(DATA, json_rel)).decode("utf-8"))
            pre = post = WRAP
        golden(name, tok, pre, post, json_rel, cps)


if __name__ == "__main__":
    main()
