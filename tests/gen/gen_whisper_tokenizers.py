#!/usr/bin/env python3
"""gen_whisper_tokenizers.py - build Hugging Face tokenizer.json files that are
equivalent to openai-whisper's tiktoken encodings (whisper/assets/gpt2.tiktoken
and multilingual.tiktoken), base vocabulary only (the special tokens that
follow it are derived from n_vocab in lib/stt/wtok.c), and check them.

tiktoken's BPE repeatedly merges the adjacent pair whose concatenation has the
lowest rank.  The equivalent HF byte-level BPE lists, for every token of two or
more bytes, every split into two vocabulary tokens as a merge, ordered by the
rank of the merged token (so the merge priority is the rank of its result).
The pre-split regex of whisper's encodings is GPT-2's, which is exactly HF's
ByteLevel(use_regex=True) pattern.

Check: the HF `tokenizers` library must encode and decode a varied corpus
(tests/data/tokenizers/corpus.txt plus extra whisper-flavoured lines) exactly
like whisper.tokenizer.get_tokenizer(...).encoding.

Output: share/whisper/{gpt2,multilingual}.tokenizer.json.zst and the goldens
of tests/unit/test_wtok.c, tests/data/stt/wtok_golden.json (special ids for
the three vocabulary sizes, non_speech_tokens, encode / decode /
decode_with_timestamps of sample texts, by whisper.tokenizer).
Run:    python3 tests/gen/gen_whisper_tokenizers.py   (from the repo root)
"""
import base64
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def bytes_to_unicode():
    # GPT-2's reversible byte <-> printable character map
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def build(name):
    import whisper
    path = os.path.join(os.path.dirname(whisper.__file__), "assets", f"{name}.tiktoken")
    ranks = {}
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            tok, rank = line.split()
            ranks[base64.b64decode(tok)] = int(rank)
    b2u = bytes_to_unicode()
    enc = lambda bs: "".join(b2u[b] for b in bs)
    vocab = {}
    for tok, r in ranks.items():
        vocab[enc(tok)] = r
    assert sorted(vocab.values()) == list(range(len(vocab)))
    merges = []
    for tok, r in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(tok) < 2:
            continue
        local = []
        for i in range(1, len(tok)):
            a, b = tok[:i], tok[i:]
            if a in ranks and b in ranks:
                local.append((ranks[a], ranks[b], a, b))
        assert local, f"token {tok!r} has no split"
        local.sort()
        for _, _, a, b in local:
            merges.append([enc(a), enc(b)])
    tj = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
            "vocab": vocab, "merges": merges,
        },
    }
    return json.dumps(tj, ensure_ascii=False, separators=(",", ":"))


EXTRA = [
    "", " ", "  ", " Hello world.", "And so, my fellow Americans: ask not what your country can do for you!",
    " ♪♪♪ ( SPEAKING FOREIGN LANGUAGE ) [DAVID] Hey there,", " -- --- << >> 「」『』 ♩♪♫♬♭♮♯",
    " 我们今天去北京。", " こんにちは、世界！", " สวัสดีครับ", " Привет, мир!", " Grüß Gott, Straße",
    " 'll 've 're 's 't 'm 'd", "  leading spaces\n\nand\ttabs   ", " 12345 3.14159 1,000,000",
    " émoji 😀🎉👍🏽", " <|endoftext|> <|en|>",
]


def check(name, text):
    import tokenizers
    from whisper.tokenizer import get_tokenizer
    hf = tokenizers.Tokenizer.from_str(text)
    wt = get_tokenizer(name == "multilingual")
    corpus = []
    with open(os.path.join(ROOT, "tests/data/tokenizers/corpus.txt")) as f:
        for line in f:
            line = line.strip()
            if line:
                corpus.append(json.loads(line))
    corpus += EXTRA
    n = 0
    for s in corpus:
        a = wt.encoding.encode(s, disallowed_special=())
        b = hf.encode(s, add_special_tokens=False).ids
        if a != b:
            print(f"{name}: encode mismatch on {s!r}\n tiktoken {a}\n hf {b}", file=sys.stderr)
            return False
        da = wt.encoding.decode(a)
        db = hf.decode(b, skip_special_tokens=False)
        if da != db:
            print(f"{name}: decode mismatch on {s!r}", file=sys.stderr)
            return False
        n += 1
    # every single token decodes the same (incl. partial UTF-8)
    for i in range(hf.get_vocab_size()):
        if wt.encoding.decode([i]) != hf.decode([i]):
            print(f"{name}: single-token decode mismatch at {i}", file=sys.stderr)
            return False
    print(f"{name}: {n} texts + {hf.get_vocab_size()} single tokens identical")
    return True


def goldens():
    from whisper.tokenizer import get_tokenizer
    out = {"vocab": [], "texts": EXTRA + [
        " The quick brown fox jumps over the lazy dog.", " Ça va? Très bien, merci.",
        " 東京は日本の首都です。", " 3:45 p.m. -- (laughs) [music] ♪",
    ]}
    for multi, nl in ((False, 99), (True, 99), (True, 100)):
        t = get_tokenizer(multi, num_languages=nl)
        e = {"n_vocab": t.encoding.n_vocab, "multilingual": multi, "n_langs": nl}
        for k in ("eot", "sot", "translate", "transcribe", "sot_lm", "sot_prev", "no_speech",
                  "no_timestamps", "timestamp_begin"):
            e[k] = getattr(t, k)
        e["lang_begin"] = min(t.all_language_tokens)
        e["lang_last"] = max(t.all_language_tokens)
        e["non_speech"] = list(t.non_speech_tokens)
        cases = []
        for s in out["texts"]:
            ids = t.encoding.encode(s, disallowed_special=())
            cases.append({"ids": ids, "dec": t.decode(ids)})
        # decoding of special / timestamp ids and of partial UTF-8
        ts = t.timestamp_begin
        mixed = [t.sot, t.sot + 1, t.transcribe, ts + 54] + t.encoding.encode(" 東京 ok") + [ts + 150, t.eot]
        e["mixed"] = {"ids": mixed, "dec": t.decode(mixed), "dec_ts": t.decode_with_timestamps(mixed)}
        part = t.encoding.encode(" 東京")
        e["partial"] = [{"ids": part[:k], "dec": t.decode(part[:k])} for k in range(len(part) + 1)]
        e["cases"] = cases
        out["vocab"].append(e)
    os.makedirs(os.path.join(ROOT, "tests/data/stt"), exist_ok=True)
    with open(os.path.join(ROOT, "tests/data/stt/wtok_golden.json"), "w") as f:
        json.dump(out, f, ensure_ascii=False)


def main():
    out = os.path.join(ROOT, "share/whisper")
    os.makedirs(out, exist_ok=True)
    ok = True
    for name in ("gpt2", "multilingual"):
        text = build(name)
        ok = check(name, text) and ok
        path = os.path.join(out, f"{name}.tokenizer.json.zst")
        subprocess.run(["zstd", "-q", "-19", "-f", "-o", path], input=text.encode("utf-8"), check=True)
        data = open(path, "rb").read()
        print(f"{name}: {len(text)} bytes json, {len(data)} zstd")
    goldens()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
